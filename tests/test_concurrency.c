/*
 * test_concurrency.c: one handle shared by many threads (TSan-clean).
 *
 * - readers and writers: 2 writer threads own disjoint key sets and put,
 *   put_ttl, delete and sift_scan them with self-describing values (key and
 *   version inside); 4 reader threads get, get_buf, has, scan and range at
 *   the same time and check that every value is a whole value of its key
 *   and that versions never go backwards; a maintenance thread merges and
 *   reads stats. Bounded by a deadline. At the end the database (and the
 *   database reopened) must match what the writers recorded.
 * - group commit: under CALYPSO_SYNC_ALWAYS, 4 writers share fdatasyncs:
 *   fewer fdatasync calls than puts. Whether followers spin through a sync
 *   or sleep follows the measured rate (cy_spin_ctl_sync, on a simulated
 *   clock): the faster way in most epochs, the other now and then, and
 *   the other for good when the machine changes.
 * - CALYPSO_SYNC_INTERVAL: a background fdatasync happens on its own, and
 *   the data is there after reopen.
 *
 * Threads never call cmocka asserts: they count errors (atomics) and keep
 * the first message; the main thread asserts.
 */
#include "testutil.h"
#include "engine_util.h"
#include "internal.h"
#include "engine.h"

#include <pthread.h>

// >> error collection ---------------------------------------------------------

static int             g_errors;
static char            g_first_error[512];
static pthread_mutex_t g_err_mu = PTHREAD_MUTEX_INITIALIZER;

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2)))
#endif
static void t_error(const char *fmt, ...)
{
    if (__atomic_fetch_add(&g_errors, 1, __ATOMIC_RELAXED) == 0) {
        pthread_mutex_lock(&g_err_mu);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(g_first_error, sizeof g_first_error, fmt, ap);
        va_end(ap);
        pthread_mutex_unlock(&g_err_mu);
    }
}

static void expect_no_thread_errors(void)
{
    int n = __atomic_load_n(&g_errors, __ATOMIC_RELAXED);
    if (n) {
        pthread_mutex_lock(&g_err_mu);
        print_error("%d errors in threads; first: %s\n", n, g_first_error);
        pthread_mutex_unlock(&g_err_mu);
    }
    assert_int_equal(n, 0);
}

static void reset_thread_errors(void)
{
    __atomic_store_n(&g_errors, 0, __ATOMIC_RELAXED);
}

// >> readers and writers ---------------------------------------------------------

enum { NWRITERS = 2, NREADERS = 4, KEYS_PER_WRITER = 256 };

typedef struct shared {
    calypso *db;
    uint64_t deadline;     /* eu_now_ms() */
    int      stop;         /* atomic */
    uint64_t seed;
} shared;

typedef struct writer {
    shared  *sh;
    int      id;
    uint64_t version[KEYS_PER_WRITER];   /* last version put */
    int      live[KEYS_PER_WRITER];
    long     puts, deletes, sifts;
} writer;

static size_t wkey(char *k, int w, int i)
{
    return (size_t)snprintf(k, 32, "w%d-%04d", w, i);
}

static size_t vlen_for(int i, uint64_t version)
{
    return 16 + (size_t)((version * 131 + (uint64_t)i * 7) % 600);
}

struct wsift {
    writer *w;
    int     mod;
    int     chosen[KEYS_PER_WRITER];
};

/* The number in a key "wN-NNNN" (keys are not NUL-terminated). */
static int key_num(const void *key, size_t klen)
{
    char tmp[32];
    if (klen < 4 || klen >= sizeof tmp) return -1;
    memcpy(tmp, key, klen);
    tmp[klen] = 0;
    return atoi(tmp + 3);
}

static int writer_sift_fn(const void *key, size_t klen, void *ctx)
{
    struct wsift *c = ctx;
    char k[32];
    int i = key_num(key, klen);
    if (i < 0 || i >= KEYS_PER_WRITER || wkey(k, c->w->id, i) != klen ||
        memcmp(k, key, klen) != 0) {
        t_error("sift of writer %d was asked of a foreign key %.*s", c->w->id, (int)klen,
                (const char *)key);
        return -1;
    }
    if (!c->w->live[i]) t_error("sift asked of a deleted key %s", k);
    if (i % 13 == c->mod) { c->chosen[i] = 1; return 1; }
    return 0;
}

static void *writer_main(void *arg)
{
    writer *w = arg;
    shared *sh = w->sh;
    uint64_t rs = sh->seed ^ (0x1000u * (unsigned)(w->id + 1));
    uint8_t *v = malloc(1024);
    char k[32], prefix[8];
    snprintf(prefix, sizeof prefix, "w%d-", w->id);
    long n = 0;
    while (eu_now_ms() < sh->deadline) {
        int i = (int)tu_below(&rs, KEYS_PER_WRITER);
        size_t kl = wkey(k, w->id, i);
        uint64_t dice = tu_below(&rs, 100);
        if (dice < 80) {
            uint64_t ver = ++w->version[i];
            size_t vl = vlen_for(i, ver);
            eu_make_value(v, vl, k, kl, ver);
            int rc = dice < 10 ? calypso_put_ttl(sh->db, k, kl, v, vl, 3600000)
                               : calypso_put(sh->db, k, kl, v, vl);
            if (rc) t_error("put %s: %s", k, calypso_errmsg(sh->db));
            else { w->live[i] = 1; w->puts++; }
        } else if (dice < 98) {
            int rc = calypso_delete(sh->db, k, kl);
            if (rc) t_error("delete %s: %s", k, calypso_errmsg(sh->db));
            else { w->live[i] = 0; w->deletes++; }
        } else {
            struct wsift c;
            memset(&c, 0, sizeof c);
            c.w = w;
            c.mod = (int)tu_below(&rs, 13);
            int rc = calypso_sift_scan(sh->db, prefix, strlen(prefix), writer_sift_fn, &c);
            if (rc) t_error("sift_scan %s: %d %s", prefix, rc, calypso_errmsg(sh->db));
            for (int j = 0; j < KEYS_PER_WRITER; j++)
                if (c.chosen[j]) w->live[j] = 0;
            w->sifts++;
        }
        n++;
    }
    free(v);
    return NULL;
}

typedef struct reader {
    shared  *sh;
    int      id;
    uint64_t seen[NWRITERS][KEYS_PER_WRITER];   /* highest version seen */
    long     gets, found, scans;
} reader;

/* Checks a value read for writer w's key i; returns its version or 0. */
static uint64_t check_read(reader *r, int w, int i, const uint8_t *val, size_t vlen)
{
    char k[32];
    if (i < 0 || i >= KEYS_PER_WRITER) {
        t_error("reader %d: key number %d out of range", r->id, i);
        return 0;
    }
    size_t kl = wkey(k, w, i);
    uint64_t ver = 0;
    if (!eu_check_value(val, vlen, k, kl, &ver)) {
        t_error("reader %d: malformed value of %zu bytes for %s", r->id, vlen, k);
        return 0;
    }
    if (vlen != vlen_for(i, ver)) t_error("reader %d: %s has the wrong length", r->id, k);
    if (ver < r->seen[w][i])
        t_error("reader %d: %s went back from version %llu to %llu", r->id, k,
                (unsigned long long)r->seen[w][i], (unsigned long long)ver);
    else r->seen[w][i] = ver;
    return ver;
}

struct rscan {
    reader *r;
    int     w;
    uint8_t last[32];
    size_t  last_len;
    long    n;
};

static int reader_scan_fn(const void *key, size_t klen, void *ctx)
{
    struct rscan *c = ctx;
    char prefix[8];
    int pl = snprintf(prefix, sizeof prefix, "w%d-", c->w);
    if (klen != (size_t)pl + 4 || memcmp(key, prefix, (size_t)pl) != 0) {
        t_error("scan of %s gave key %.*s", prefix, (int)klen, (const char *)key);
        return 1;
    }
    if (c->n && eu_keycmp(c->last, c->last_len, key, klen) >= 0)
        t_error("scan out of order at %.*s", (int)klen, (const char *)key);
    memcpy(c->last, key, klen);
    c->last_len = klen;
    c->n++;
    /* Reading inside the callback: the key may have gone meanwhile. */
    if (c->n % 8 == 0) {
        void *v = NULL;
        size_t vlen = 0;
        int rc = calypso_get(c->r->sh->db, key, klen, &v, &vlen);
        if (rc == CALYPSO_OK) {
            check_read(c->r, c->w, key_num(key, klen), v, vlen);
            calypso_free(v);
        } else if (rc != CALYPSO_ENOTFOUND) {
            t_error("get in scan: %d %s", rc, calypso_errmsg(c->r->sh->db));
        }
    }
    return 0;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    shared *sh = r->sh;
    uint64_t rs = sh->seed ^ (0x777u * (unsigned)(r->id + 1));
    uint8_t buf[1024];
    char k[32];
    while (eu_now_ms() < sh->deadline) {
        int w = (int)tu_below(&rs, NWRITERS), i = (int)tu_below(&rs, KEYS_PER_WRITER);
        size_t kl = wkey(k, w, i);
        uint64_t dice = tu_below(&rs, 100);
        if (dice < 60) {
            void *v = NULL;
            size_t vlen = 0;
            int rc = calypso_get(sh->db, k, kl, &v, &vlen);
            r->gets++;
            if (rc == CALYPSO_OK) {
                r->found++;
                check_read(r, w, i, v, vlen);
                calypso_free(v);
            } else if (rc != CALYPSO_ENOTFOUND) {
                t_error("get %s: %d %s", k, rc, calypso_errmsg(sh->db));
            } else if (v != NULL || vlen != 0) {
                t_error("get %s: not found but *val/*vlen set", k);
            }
        } else if (dice < 85) {
            size_t cap = tu_below(&rs, 2) ? sizeof buf : (size_t)tu_below(&rs, 200);
            size_t vlen = 0;
            int rc = calypso_get_buf(sh->db, k, kl, buf, cap, &vlen);
            r->gets++;
            if (rc == CALYPSO_OK) {
                r->found++;
                check_read(r, w, i, buf, vlen);
            } else if (rc == CALYPSO_ETRUNC) {
                if (vlen <= cap) t_error("ETRUNC with vlen %zu <= cap %zu", vlen, cap);
            } else if (rc != CALYPSO_ENOTFOUND) {
                t_error("get_buf %s: %d %s", k, rc, calypso_errmsg(sh->db));
            }
        } else if (dice < 93) {
            int rc = calypso_has(sh->db, k, kl);
            if (rc != 0 && rc != 1) t_error("has %s: %d", k, rc);
        } else if (dice < 97) {
            struct rscan c;
            memset(&c, 0, sizeof c);
            c.r = r;
            c.w = w;
            char prefix[8];
            snprintf(prefix, sizeof prefix, "w%d-", w);
            int rc = calypso_scan(sh->db, prefix, strlen(prefix), reader_scan_fn, &c);
            if (rc) t_error("scan: %d %s", rc, calypso_errmsg(sh->db));
            if (c.n > KEYS_PER_WRITER) t_error("scan saw %ld keys", c.n);
            r->scans++;
        } else {
            struct rscan c;
            memset(&c, 0, sizeof c);
            c.r = r;
            c.w = w;
            char lo[32], hi[32];
            size_t ll = wkey(lo, w, i / 2), hl = wkey(hi, w, i);
            int rc = calypso_range(sh->db, lo, ll, hi, hl, reader_scan_fn, &c);
            if (rc) t_error("range: %d %s", rc, calypso_errmsg(sh->db));
            if (c.n > i - i / 2 + 1) t_error("range saw %ld keys", c.n);
            uint64_t len = calypso_len(sh->db);
            if (len > NWRITERS * KEYS_PER_WRITER) t_error("len %llu", (unsigned long long)len);
            r->scans++;
        }
    }
    return NULL;
}

static void *maint_main(void *arg)
{
    shared *sh = arg;
    long merges = 0;
    while (eu_now_ms() < sh->deadline) {
        eu_sleep_ms(150);
        int rc = calypso_merge(sh->db);
        if (rc != CALYPSO_OK && rc != CALYPSO_EMERGING)
            t_error("merge: %d %s", rc, calypso_errmsg(sh->db));
        if (rc == CALYPSO_OK) merges++;
        struct calypso_stats st;
        if ((rc = calypso_stats(sh->db, &st)) != CALYPSO_OK) t_error("stats: %d", rc);
        if (st.reclaimable > st.size) t_error("reclaimable > size");
        if (calypso_reclaimable(sh->db) < 0) t_error("reclaimable < 0");
    }
    return (void *)(intptr_t)merges;
}

static void verify_writers(calypso *db, writer *ws)
{
    uint8_t *v = malloc(1024);
    assert_non_null(v);
    char k[32];
    uint64_t live = 0;
    for (int w = 0; w < NWRITERS; w++)
        for (int i = 0; i < KEYS_PER_WRITER; i++) {
            size_t kl = wkey(k, w, i);
            if (!ws[w].live[i]) {
                eu_expect_rc(db, k, kl, CALYPSO_ENOTFOUND);
                continue;
            }
            live++;
            size_t vl = vlen_for(i, ws[w].version[i]);
            eu_make_value(v, vl, k, kl, ws[w].version[i]);
            eu_expect(db, k, kl, v, vl);
        }
    assert_int_equal(calypso_len(db), live);
    free(v);
}

static void test_readers_and_writers(void **state)
{
    (void)state;
    reset_thread_errors();
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 64 * 1024;
    o.merge_trigger_ratio = 0.5;        /* the background merges too */
    o.merge_min_dead_bytes = 256 * 1024;
    o.max_open_files = 2;                /* descriptors get evicted */
    shared sh;
    memset(&sh, 0, sizeof sh);
    sh.db = eu_open(dir, &o);
    sh.seed = tu_seed("test_readers_and_writers");
    sh.deadline = eu_now_ms() + 2000;

    static writer ws[NWRITERS];
    static reader rd[NREADERS];
    memset(ws, 0, sizeof ws);
    memset(rd, 0, sizeof rd);
    pthread_t wt[NWRITERS], rt[NREADERS], mt;
    for (int i = 0; i < NWRITERS; i++) {
        ws[i].sh = &sh;
        ws[i].id = i;
        assert_int_equal(pthread_create(&wt[i], NULL, writer_main, &ws[i]), 0);
    }
    for (int i = 0; i < NREADERS; i++) {
        rd[i].sh = &sh;
        rd[i].id = i;
        assert_int_equal(pthread_create(&rt[i], NULL, reader_main, &rd[i]), 0);
    }
    assert_int_equal(pthread_create(&mt, NULL, maint_main, &sh), 0);
    for (int i = 0; i < NWRITERS; i++) assert_int_equal(pthread_join(wt[i], NULL), 0);
    for (int i = 0; i < NREADERS; i++) assert_int_equal(pthread_join(rt[i], NULL), 0);
    void *mres = NULL;
    assert_int_equal(pthread_join(mt, &mres), 0);
    expect_no_thread_errors();

    long puts = 0, dels = 0, gets = 0, found = 0, scans = 0, sifts = 0;
    for (int i = 0; i < NWRITERS; i++) { puts += ws[i].puts; dels += ws[i].deletes; sifts += ws[i].sifts; }
    for (int i = 0; i < NREADERS; i++) { gets += rd[i].gets; found += rd[i].found; scans += rd[i].scans; }
    struct calypso_stats st;
    EU_OK(sh.db, calypso_stats(sh.db, &st));
    print_message("puts %ld, deletes %ld, sifts %ld, gets %ld (found %ld), walks %ld, "
                  "explicit merges %ld, merges %llu, datafiles %u\n", puts, dels, sifts, gets,
                  found, scans, (long)(intptr_t)mres, (unsigned long long)st.merges,
                  st.datafiles);
    assert_true(puts > 100 && gets > 100 && found > 0 && scans > 0);

    verify_writers(sh.db, ws);
    eu_close(sh.db);
    sh.db = eu_open(dir, &o);
    verify_writers(sh.db, ws);
    eu_close(sh.db);
    tu_rmrf(dir);
}

// >> group commit ------------------------------------------------------------------

enum { GC_THREADS = 4, GC_PUTS = 300 };

typedef struct gc_writer {
    calypso *db;
    int      id;
    int     *start;    /* atomic start flag */
} gc_writer;

static void *gc_main(void *arg)
{
    gc_writer *g = arg;
    while (!__atomic_load_n(g->start, __ATOMIC_ACQUIRE)) sched_yield();
    char k[32];
    uint8_t v[64];
    for (int i = 0; i < GC_PUTS; i++) {
        int kl = snprintf(k, sizeof k, "g%d-%05d", g->id, i);
        eu_make_value(v, sizeof v, k, (size_t)kl, (uint64_t)i);
        int rc = calypso_put(g->db, k, (size_t)kl, v, sizeof v);
        if (rc) t_error("put %s: %d %s", k, rc, calypso_errmsg(g->db));
    }
    return NULL;
}

/* Runs `epochs` epochs of 4-write syncs through the controller on a
 * simulated machine where sleeping and spinning make rate[0] and rate[1]
 * writes durable per second; counts the syncs run each way. */
static void spin_sim(cy_spin_ctl *c, uint64_t *now, const uint64_t rate[2], int epochs,
                     uint64_t count[2])
{
    for (int i = 0; i < epochs * CY_SPIN_EPOCH; i++) {
        cy_spin_ctl_sync(c, *now, 4, 4);
        uint32_t m = c->mode;
        count[m]++;
        *now += 4 * 1000000000ull / rate[m];
    }
}

static void test_group_commit_spins_where_it_pays(void **state)
{
    (void)state;
    cy_spin_ctl c;
    memset(&c, 0, sizeof c);
    uint64_t now = 1000000000ull;
    /* Each way is measured once, then spinning, faster here, wins. */
    const uint64_t spin_pays[2] = { 12000, 18000 };
    uint64_t first[2] = { 0, 0 }, n[2] = { 0, 0 };
    spin_sim(&c, &now, spin_pays, 2, first);
    assert_int_equal(first[0], CY_SPIN_EPOCH);
    assert_int_equal(first[1], CY_SPIN_EPOCH);
    spin_sim(&c, &now, spin_pays, 64, n);
    print_message("spinning pays: %llu syncs spinning, %llu asleep\n", (unsigned long long)n[1],
                  (unsigned long long)n[0]);
    assert_true(n[1] >= n[0] * 8);
    assert_true(n[0] > 0);   /* the other way is still tried */
    assert_int_equal(c.mode, 1);
    /* A lone writer neither measures nor changes the choice. */
    for (int i = 0; i < 10 * CY_SPIN_EPOCH; i++) cy_spin_ctl_sync(&c, now += 1000000, 1, 1);
    assert_int_equal(c.mode, 1);
    /* The machine changes: the spinning cores now slow the syncs. */
    const uint64_t sleep_pays[2] = { 18000, 12000 };
    uint64_t adapt[2] = { 0, 0 }, after[2] = { 0, 0 };
    spin_sim(&c, &now, sleep_pays, 16, adapt);
    spin_sim(&c, &now, sleep_pays, 64, after);
    print_message("sleeping pays: %llu syncs to adapt, then %llu asleep, %llu spinning\n",
                  (unsigned long long)adapt[1], (unsigned long long)after[0],
                  (unsigned long long)after[1]);
    assert_true(after[0] >= after[1] * 8);
    assert_true(after[1] > 0);
    /* Equal rates: neither way is stuck on. */
    const uint64_t same[2] = { 15000, 15000 };
    uint64_t eq[2] = { 0, 0 };
    spin_sim(&c, &now, same, 64, eq);
    assert_true(eq[0] > 0 && eq[1] > 0);
}

static void test_group_commit(void **state)
{
    (void)state;
    reset_thread_errors();
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.sync = CALYPSO_SYNC_ALWAYS;
    calypso *db = eu_open(dir, &o);
    int start = 0;
    gc_writer gs[GC_THREADS];
    pthread_t th[GC_THREADS];
    for (int i = 0; i < GC_THREADS; i++) {
        gs[i].db = db;
        gs[i].id = i;
        gs[i].start = &start;
        assert_int_equal(pthread_create(&th[i], NULL, gc_main, &gs[i]), 0);
    }
    cy_os_count_reset();
    uint64_t t0 = eu_now_ms();
    __atomic_store_n(&start, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < GC_THREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    uint64_t ms = eu_now_ms() - t0;
    uint64_t syncs = cy_os_count(CY_OS_FDATASYNC);
    expect_no_thread_errors();
    int total = GC_THREADS * GC_PUTS;
    print_message("group commit: %d puts, %llu fdatasyncs (%.2f puts per sync), %llu ms\n",
                  total, (unsigned long long)syncs, syncs ? (double)total / (double)syncs : 0.0,
                  (unsigned long long)ms);
    assert_true(syncs > 0);
    assert_true(syncs < (uint64_t)total);

    /* A single writer syncs every put. */
    cy_os_count_reset();
    for (int i = 0; i < 20; i++) {
        char k[32];
        snprintf(k, sizeof k, "single%02d", i);
        eu_put_str(db, k, "s");
    }
    assert_true(cy_os_count(CY_OS_FDATASYNC) >= 20);
    eu_close(db);

    db = eu_open(dir, NULL);
    assert_int_equal(calypso_len(db), (uint64_t)total + 20);
    char k[32];
    uint8_t v[64];
    for (int t = 0; t < GC_THREADS; t++)
        for (int i = 0; i < GC_PUTS; i += 17) {
            int kl = snprintf(k, sizeof k, "g%d-%05d", t, i);
            eu_make_value(v, sizeof v, k, (size_t)kl, (uint64_t)i);
            eu_expect(db, k, (size_t)kl, v, sizeof v);
        }
    eu_close(db);
    tu_rmrf(dir);
}

// >> SYNC_INTERVAL ---------------------------------------------------------------

static void *interval_writer(void *arg)
{
    calypso *db = *(calypso **)((void **)arg)[0];
    int id = *(int *)((void **)arg)[1];
    char k[32];
    for (int i = 0; i < 300; i++) {
        int kl = snprintf(k, sizeof k, "iv%d-%04d", id, i);
        if (calypso_put(db, k, (size_t)kl, k, (size_t)kl)) t_error("put %s", k);
    }
    return NULL;
}

static void test_sync_interval(void **state)
{
    (void)state;
    reset_thread_errors();
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.sync = CALYPSO_SYNC_INTERVAL;
    o.sync_interval_ms = 20;
    calypso *db = eu_open(dir, &o);
    cy_os_count_reset();
    uint64_t t_start = eu_now_ms();
    pthread_t th[2];
    int ids[2] = { 0, 1 };
    void *args[2][2] = { { &db, &ids[0] }, { &db, &ids[1] } };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, interval_writer, args[i]), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    uint64_t elapsed = eu_now_ms() - t_start;
    expect_no_thread_errors();
    /* Puts do not sync themselves: far fewer syncs than puts, about one per
     * interval (twice that allowed, and a few for slack)... */
    uint64_t during = cy_os_count(CY_OS_FDATASYNC);
    print_message("600 puts in %llu ms, %llu fdatasyncs\n", (unsigned long long)elapsed,
                  (unsigned long long)during);
    assert_true(during < 600);
    assert_true(during <= 2 * (elapsed / 20 + 1) + 5);
    /* ...the background does, within a few intervals, with no call from us. */
    cy_os_count_reset();
    eu_put_str(db, "unsynced", "u");
    uint64_t t0 = eu_now_ms();
    while (cy_os_count(CY_OS_FDATASYNC) == 0 && eu_now_ms() - t0 < 1000) eu_sleep_ms(5);
    uint64_t waited = eu_now_ms() - t0;
    print_message("background fdatasync after %llu ms (interval 20 ms)\n",
                  (unsigned long long)waited);
    assert_true(cy_os_count(CY_OS_FDATASYNC) > 0);
    eu_put_str(db, "last", "l");
    eu_close(db);
    db = eu_open(dir, &o);
    assert_int_equal(calypso_len(db), 602);
    eu_expect_str(db, "iv0-0000", "iv0-0000");
    eu_expect_str(db, "iv1-0299", "iv1-0299");
    eu_expect_str(db, "last", "l");
    eu_close(db);
    tu_rmrf(dir);
}

// >> auto-merge -------------------------------------------------------------------

/* Dead bytes past merge_trigger_ratio and merge_min_dead_bytes start a merge
 * on the background thread, with no call from the user. */
static void test_auto_merge_trigger(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = 0.5;
    o.merge_min_dead_bytes = 16 * 1024;
    o.sync = CALYPSO_SYNC_INTERVAL;     /* the background thread wakes often */
    o.sync_interval_ms = 10;
    calypso *db = eu_open(dir, &o);
    char k[32];
    uint8_t v[200];
    for (int round = 1; round <= 20; round++)
        for (int i = 0; i < 40; i++) {
            int kl = snprintf(k, sizeof k, "am%03d", i);
            eu_make_value(v, sizeof v, k, (size_t)kl, (uint64_t)round);
            EU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
        }
    /* 20 versions of 40 records of ~210 bytes were written (~170 KB): with
     * every overwritten record dead, anything above ~25 KB is past the
     * trigger, so the background merges until little more than the live
     * version (~8.5 KB) is left. */
    const uint64_t merged_size = 20 * 40 * 200 / 3;
    struct calypso_stats before, st;
    EU_OK(db, calypso_stats(db, &before));   /* merges may have run already */
    uint64_t t0 = eu_now_ms();
    do {
        eu_sleep_ms(10);
        EU_OK(db, calypso_stats(db, &st));
    } while ((st.merges == 0 || st.size >= merged_size) && eu_now_ms() - t0 < 5000);
    print_message("auto-merged down after %llu ms: %u -> %u datafiles, %llu -> %llu bytes, "
                  "%llu merges\n", (unsigned long long)(eu_now_ms() - t0), before.datafiles,
                  st.datafiles, (unsigned long long)before.size, (unsigned long long)st.size,
                  (unsigned long long)st.merges);
    assert_true(st.merges >= 1);
    assert_true(st.size < merged_size);
    assert_true(st.reclaimable < st.size);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 40; i++) {
            int kl = snprintf(k, sizeof k, "am%03d", i);
            eu_make_value(v, sizeof v, k, (size_t)kl, 20);
            eu_expect(db, k, (size_t)kl, v, sizeof v);
        }
        assert_int_equal(calypso_len(db), 40);
        if (pass == 0) {
            eu_close(db);
            db = eu_open(dir, &o);
        }
    }
    eu_close(db);
    tu_rmrf(dir);
}

// >> TTL sweeper ------------------------------------------------------------------

/* The background sweeper deletes expired keys on its own: get turns from
 * CALYPSO_EEXPIRED to CALYPSO_ENOTFOUND, tombstones are written (size
 * grows), live keys stay. */
static void test_ttl_sweeper(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.ttl_sweep_interval_ms = 20;
    calypso *db = eu_open(dir, &o);
    char k[32];
    for (int i = 0; i < 50; i++) {
        int kl = snprintf(k, sizeof k, "sw%03d", i);
        if (i % 5 == 0) EU_OK(db, calypso_put(db, k, (size_t)kl, "live", 4));
        else if (i % 5 == 1) EU_OK(db, calypso_put_ttl(db, k, (size_t)kl, "long", 4, 3600000));
        else EU_OK(db, calypso_put_ttl(db, k, (size_t)kl, "short", 5, 30));
    }
    struct calypso_stats st;
    uint64_t t0 = eu_now_ms();
    int rc;
    do {
        eu_sleep_ms(10);
        void *v = NULL;
        size_t vlen = 0;
        rc = calypso_get(db, "sw049", 5, &v, &vlen);
        calypso_free(v);
    } while (rc != CALYPSO_ENOTFOUND && eu_now_ms() - t0 < 3000);
    print_message("expired keys swept after %llu ms\n", (unsigned long long)(eu_now_ms() - t0));
    assert_int_equal(rc, CALYPSO_ENOTFOUND);
    /* Swept in batches: wait for the last of them with the same bound. */
    for (;;) {
        int left = 0;
        for (int i = 0; i < 50; i++) {
            int kl = snprintf(k, sizeof k, "sw%03d", i);
            if (i % 5 >= 2) {
                void *v = NULL;
                size_t vlen = 0;
                rc = calypso_get(db, k, (size_t)kl, &v, &vlen);
                assert_true(rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED);
                left += rc == CALYPSO_EEXPIRED;
            }
        }
        if (!left) break;
        assert_true(eu_now_ms() - t0 < 3000);
        eu_sleep_ms(10);
    }
    for (int i = 0; i < 50; i += 5) {
        int kl = snprintf(k, sizeof k, "sw%03d", i);
        eu_expect(db, k, (size_t)kl, "live", 4);
        kl = snprintf(k, sizeof k, "sw%03d", i + 1);
        eu_expect(db, k, (size_t)kl, "long", 4);
    }
    EU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, 20);
    /* The 30 expired records (and their tombstones) are dead bytes. */
    assert_true(st.reclaimable >= 30 * (5 + 5));
    eu_close(db);
    db = eu_open(dir, &o);
    assert_int_equal(calypso_len(db), 20);
    eu_expect_rc(db, "sw002", 5, CALYPSO_ENOTFOUND);
    eu_expect(db, "sw001", 5, "long", 4);
    eu_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readers_and_writers),
        cmocka_unit_test(test_group_commit),
        cmocka_unit_test(test_group_commit_spins_where_it_pays),
        cmocka_unit_test(test_sync_interval),
        cmocka_unit_test(test_auto_merge_trigger),
        cmocka_unit_test(test_ttl_sweeper),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
