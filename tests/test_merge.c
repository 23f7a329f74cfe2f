/*
 * test_merge.c: the merge (compaction) and what it promises.
 *
 * - contents: every kind of record (overwrites, deletes, empty values,
 *   binary and prefix keys, values larger than a datafile, TTLs) reads back
 *   the same after a merge and after reopening from the merged hint files;
 *   on disk only the live records remain, no tombstone, no dead byte; the
 *   merged files hold them in key order (and with more inputs than
 *   max_open_files, where the merge copies file by file, the contents are
 *   the same);
 * - a second calypso_merge while one runs gets CALYPSO_EMERGING, at every
 *   step of the first (held there by the merge hook), and reads, writes,
 *   deletes and walks go on meanwhile; what they did wins over the merge;
 * - merge under load: two writers with disjoint keys, a deleter and two
 *   readers run while merges run back to back (plus auto-merges): readers
 *   only ever see whole values of their key and never an older version
 *   after a newer one; the final contents equal the writers' record, before
 *   and after reopen;
 * - walks during merges see every key that exists throughout exactly once,
 *   in order, and their callbacks can read;
 * - with far more datafiles than max_open_files, reads racing each other's
 *   descriptor evictions and merges never fail;
 * - auto-merge: merge_trigger_ratio 0.5 merges on its own once half the
 *   bytes are dead (once, not over and over); a negative ratio never does;
 * - crashes: a child process dies (_exit, or SIGKILL) at each named step
 *   of a merge, having written to the database from the hook; reopening
 *   finds every key as the reference says, the merge either entirely
 *   undone (before COMMIT) or entirely done (after), no merge/ left, and a
 *   later merge and reopen check out. The Bitcask resurrection scenario
 *   (put, rotate, delete, rotate, merge crashed, restart) never brings a
 *   deleted key back;
 * - failures: the first, a middle and the last two syscalls of each kind a
 *   merge makes fail in turn; nothing is lost, the handle either goes on
 *   or refuses writes until reopened, and the next open completes the job;
 * - space: 100,000 keys overwritten ten times take, after one merge, at
 *   most 1.35x their live bytes on disk, hint files included (10,000 keys
 *   under ThreadSanitizer, which makes the million puts take minutes);
 * - a merge holding still does not make the background thread spin;
 * - a read-only handle refuses to merge.
 */
#include "merge_util.h"
#include "hint_util.h"

#include <signal.h>
#include <sys/wait.h>

#define SEC 1000ll

#if MU_TSAN
/* A crash child _exits with the engine's background thread still running;
 * ThreadSanitizer would then sleep a second at each such exit
 * (atexit_sleep_ms) for nothing: the child's death is the point. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "atexit_sleep_ms=0";
}
#endif

static const char *const merge_points[] = { "started", "copying", "copied", "committed",
                                            "moved", "swapped", "removed", "done" };
#define NPOINTS 8
/* Points at and after which the merge is decided (COMMIT is durable). */
static int point_committed(int p) { return p >= 3; }

/* A watchdog for tests that could deadlock: SIGALRM kills the process,
 * which fails the run instead of hanging it. */
static void watchdog(unsigned seconds)
{
    alarm(seconds);
}

// >> a prepared database -----------------------------------------------------------

/* Several files (16 KiB each), overwrites, deletes, delete+put, an empty
 * value, a key that is a prefix of another, a 0 byte in a key, a value
 * larger than a datafile, TTL keys that will be expired (i % 10 == 3, 50 s)
 * and TTL keys that will not (i % 10 == 7, 10000 s). The caller then moves
 * the clock 100 s on. */
#define PREP_N 600

static void prep_db(calypso *db, mu_ref *r)
{
    char k[16];
    for (int i = 0; i < PREP_N; i++) {
        int n = snprintf(k, sizeof k, "c%04d", i);
        uint64_t ttl = i % 10 == 3 ? 50 * SEC : i % 10 == 7 ? 10000 * SEC : 0;
        mu_ref_put(db, mu_ref_new(r, k, (size_t)n), 1, (uint32_t)(20 + i % 100), ttl);
    }
    for (int i = 0; i < PREP_N; i += 2) mu_ref_put(db, &r->e[i], 2, (uint32_t)(30 + i % 70), 0);
    for (int i = 1; i < PREP_N; i += 5) mu_ref_del(db, &r->e[i]);
    for (int i = 0; i < PREP_N; i += 50) {
        mu_ref_del(db, &r->e[i]);
        mu_ref_put(db, &r->e[i], 3, 40, 0);
    }
    mu_ref_put(db, mu_ref_new(r, "empty", 5), 1, 0, 0);
    mu_ref_put(db, mu_ref_new(r, "c", 1), 1, 17, 0);
    mu_ref_put(db, mu_ref_new(r, "c\0z", 3), 1, 18, 0);
    mu_ref_put(db, mu_ref_new(r, "big", 3), 1, 20000, 0);     /* > a datafile */
    mu_ref_put(db, mu_ref_new(r, "gone", 4), 1, 50, 0);
    mu_ref_del(db, mu_ref_find(r, "gone", 4));
    for (int i = 0; i < PREP_N; i += 7) mu_ref_put(db, &r->e[i], 4, 25, 0);
    /* i % 7 == 0 may have cleared the TTL of an i % 10 == 3 key */
}

static void prep_expire(mu_ref *r)
{
    for (int i = 0; i < PREP_N; i++) {
        mu_ent *e = &r->e[i];
        if (i % 10 == 3 && e->state == MU_LIVE && e->version == 1) e->state = MU_EXPIRED;
    }
}

static mu_ref ref_copy(const mu_ref *r)
{
    mu_ref c = { malloc(r->cap * sizeof *r->e), r->n, r->cap };
    assert_non_null(c.e);
    memcpy(c.e, r->e, r->n * sizeof *r->e);
    return c;
}

static void copy_dir(const char *from, const char *to)
{
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/", from, to);
    assert_int_equal(system(cmd), 0);
}

static void expect_no_merge_dir(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/merge", dir);
    assert_false(mu_exists(p));
}

/* stats.size must agree with the datafiles and hint files on disk. Hints
 * owed to files sealed before a crash are written by the background thread
 * after open, so give it a moment to converge. */
static void expect_size_matches_dir(calypso *db, const char *dir)
{
    struct calypso_stats st;
    uint64_t disk = 0, t0 = mu_now_us();
    for (;;) {
        MU_OK(db, calypso_stats(db, &st));
        disk = mu_data_hint_bytes(dir);
        if (st.size == disk || mu_now_us() - t0 > 3000000) break;
        mu_sleep_ms(5);
    }
    if (st.size != disk)
        print_error("stats.size %llu, datafiles + hints on disk %llu\n",
                    (unsigned long long)st.size, (unsigned long long)disk);
    assert_int_equal(st.size, disk);
}

/* Merges until it is not refused for a merge already running (a
 * background auto-merge). */
static void merge_now(calypso *db)
{
    int rc;
    while ((rc = calypso_merge(db)) == CALYPSO_EMERGING) mu_sleep_ms(5);
    MU_OK(db, rc);
}

/* Checks that each merged file holds its records in strictly ascending key
 * order. (A merge works in steps of one output file's worth, each step
 * copying its inputs' live records in key order: the order holds within a
 * file, not across the files of different steps.) */
typedef struct sorted_check {
    uint8_t  prev[64];
    size_t   prev_len;
    uint32_t prev_fid;
    int      have_prev;
    uint64_t merged_records, out_of_order;
} sorted_check;

static void sorted_check_cb(const cy_rec *r, const uint8_t *key, uint32_t fid, void *ctx)
{
    sorted_check *c = ctx;
    if (!(fid & CY_FID_MERGED)) return;
    assert_true(r->klen <= sizeof c->prev);
    if (fid != c->prev_fid) c->have_prev = 0;
    c->prev_fid = fid;
    if (c->have_prev && mu_keycmp(c->prev, c->prev_len, key, (size_t)r->klen) >= 0)
        c->out_of_order++;
    memcpy(c->prev, key, (size_t)r->klen);
    c->prev_len = (size_t)r->klen;
    c->have_prev = 1;
    c->merged_records++;
}

static void expect_merged_sorted(const char *dir)
{
    sorted_check c = { 0 };
    mu_census_dir(dir, cy_now_ms(), sorted_check_cb, &c);
    assert_true(c.merged_records > 0);
    if (c.out_of_order)
        print_error("%llu of %llu merged records out of key order\n",
                    (unsigned long long)c.out_of_order, (unsigned long long)c.merged_records);
    assert_int_equal(c.out_of_order, 0);
}

/* by_key: the default, where the merge copies in key order; otherwise
 * max_open_files is smaller than the number of inputs and the merge copies
 * each file in turn. Both must keep every live record and only those. */
static void merge_keeps_contents(int by_key)
{
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    if (!by_key) o.max_open_files = 2;
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    prep_db(db, &r);
    mu_shift(100 * SEC);
    prep_expire(&r);
    mu_ref_check(db, &r);
    struct calypso_stats before, after;
    MU_OK(db, calypso_stats(db, &before));
    assert_true(before.datafiles >= 5);
    assert_true(before.reclaimable > 0);

    MU_OK(db, calypso_merge(db));
    MU_OK(db, calypso_stats(db, &after));
    assert_int_equal(after.merges, 1);
    assert_int_equal(after.reclaimable, 0);
    assert_true(after.size < before.size);
    for (size_t i = 0; i < r.n; i++)
        if (r.e[i].state == MU_EXPIRED) r.e[i].state = MU_ABSENT;   /* dropped */
    mu_ref_check(db, &r);
    expect_size_matches_dir(db, dir);
    expect_no_merge_dir(dir);

    /* Disk: merged files (with hints) plus an empty active file; one record
     * per live key, no tombstone. */
    mu_census c = mu_census_dir(dir, cy_now_ms(), NULL, NULL);
    assert_int_equal(c.records, mu_ref_live(&r));
    assert_int_equal(c.tombstones, 0);
    assert_int_equal(c.expired_ttl_puts, 0);
    assert_int_equal(c.files, c.merged_files + 1);
    uint32_t fids[256];
    int nhint = mu_list_fids(dir, "hint", fids, 256);
    assert_int_equal((uint64_t)nhint, c.merged_files);
    for (int i = 0; i < nhint; i++) {
        assert_true(fids[i] & CY_FID_MERGED);
        char hp[1024];
        snprintf(hp, sizeof hp, "%s/%010u.hint", dir, fids[i]);
        hu_check_sorted(hp);   /* in key order whichever way the merge copied */
    }
    if (by_key) expect_merged_sorted(dir);

    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    expect_size_matches_dir(db, dir);
    /* Writes after the merge, then merge the merged files again. */
    mu_ref_put(db, &r.e[5], 9, 33, 0);
    mu_ref_del(db, &r.e[10]);
    MU_OK(db, calypso_merge(db));
    MU_OK(db, calypso_merge(db));              /* nothing to do: fine too */
    mu_ref_check(db, &r);
    c = mu_census_dir(dir, cy_now_ms(), NULL, NULL);
    assert_int_equal(c.records, mu_ref_live(&r));
    assert_int_equal(c.tombstones, 0);
    if (by_key) expect_merged_sorted(dir);
    mu_close(db);
    db = mu_open(dir, &o);
    mu_ref_check(db, &r);
    mu_close(db);
    mu_clock_reset();
    mu_ref_free(&r);
    tu_rmrf(dir);
}

static void test_merge_keeps_contents(void **state)
{
    (void)state;
    merge_keeps_contents(1);
}

static void test_merge_keeps_contents_in_file_order(void **state)
{
    (void)state;
    merge_keeps_contents(0);
}

static void test_merge_empty_and_readonly(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(0);
    calypso *db = mu_open(dir, &o);
    MU_OK(db, calypso_merge(db));              /* nothing at all */
    assert_int_equal(calypso_len(db), 0);
    MU_OK(db, calypso_put(db, "k", 1, "v", 1));
    MU_OK(db, calypso_merge(db));
    MU_OK(db, calypso_reopen(db));
    void *v = NULL;
    size_t vl = 0;
    MU_OK(db, calypso_get(db, "k", 1, &v, &vl));
    assert_int_equal(vl, 1);
    calypso_free(v);
    mu_close(db);
    o.read_only = 1;
    db = mu_open(dir, &o);
    MU_RC(db, CALYPSO_EREADONLY, calypso_merge(db));
    mu_close(db);
    tu_rmrf(dir);
}

// >> holding a merge at a step ------------------------------------------------------

static struct hold {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    const char     *point;     /* where to hold                          */
    int             held;      /* the merge waits there                  */
    int             release;
    int             fired;
    double          cpu_ms_at_hold;
    double          cpu_ms_held;   /* process CPU while held, when measured */
    unsigned        hold_ms;       /* > 0: hold this long on its own        */
} hold = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, NULL, 0, 0, 0, 0, 0, 0 };

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void hold_hook(const char *point)
{
    if (!hold.point || strcmp(point, hold.point) != 0) return;
    pthread_mutex_lock(&hold.mu);
    if (hold.fired) {
        pthread_mutex_unlock(&hold.mu);
        return;
    }
    hold.fired = 1;
    if (hold.hold_ms) {
        pthread_mutex_unlock(&hold.mu);
        double c0 = cpu_ms();
        mu_sleep_ms(hold.hold_ms);
        hold.cpu_ms_held = cpu_ms() - c0;
        return;
    }
    hold.held = 1;
    pthread_cond_broadcast(&hold.cv);
    while (!hold.release) pthread_cond_wait(&hold.cv, &hold.mu);
    hold.held = 0;
    pthread_mutex_unlock(&hold.mu);
}

static void hold_arm(const char *point)
{
    pthread_mutex_lock(&hold.mu);
    hold.point = point;
    hold.held = hold.release = hold.fired = 0;
    hold.hold_ms = 0;
    pthread_mutex_unlock(&hold.mu);
    cy_merge_set_hook(hold_hook);
}

static void hold_wait(void)
{
    pthread_mutex_lock(&hold.mu);
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    while (!hold.held)
        if (pthread_cond_timedwait(&hold.cv, &hold.mu, &dl) != 0) break;
    int held = hold.held;
    pthread_mutex_unlock(&hold.mu);
    if (!held) print_error("the merge never reached '%s'\n", hold.point);
    assert_true(held);
}

static void hold_release(void)
{
    pthread_mutex_lock(&hold.mu);
    hold.release = 1;
    pthread_cond_broadcast(&hold.cv);
    pthread_mutex_unlock(&hold.mu);
}

typedef struct merge_job {
    calypso  *db;
    pthread_t th;
    int       rc;
} merge_job;

static void *merge_main(void *arg)
{
    merge_job *j = arg;
    j->rc = calypso_merge(j->db);
    return NULL;
}

static void merge_start(merge_job *j, calypso *db)
{
    j->db = db;
    j->rc = 12345;
    assert_int_equal(pthread_create(&j->th, NULL, merge_main, j), 0);
}

static void merge_join(merge_job *j)
{
    assert_int_equal(pthread_join(j->th, NULL), 0);
}

static void test_second_merge_gets_emerging_at_every_step(void **state)
{
    (void)state;
    watchdog(120);
    char *tmpl = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    calypso *db = mu_open(tmpl, &o);
    mu_ref base = { 0 };
    prep_db(db, &base);
    mu_close(db);
    mu_shift(100 * SEC);
    prep_expire(&base);

    for (int p = 0; p < NPOINTS; p++) {
        char *dir = tu_tmpdir();
        copy_dir(tmpl, dir);
        mu_ref r = ref_copy(&base);
        db = mu_open(dir, &o);
        mu_ref_put(db, mu_ref_new(&r, "fresh", 5), 1, 30, 0);   /* in the active file */
        hold_arm(merge_points[p]);
        merge_job j;
        merge_start(&j, db);
        hold_wait();

        /* While the merge holds at this step: */
        MU_RC(db, CALYPSO_EMERGING, calypso_merge(db));
        mu_ref_check(db, &r);                              /* reads and a fold */
        mu_ref_put(db, &r.e[0], 20, 44, 0);                /* overwrite (record in inputs) */
        mu_ref_put(db, &r.e[2], 20, 0, 0);
        mu_ref_del(db, &r.e[4]);                           /* delete (record in inputs) */
        mu_ref_put(db, &r.e[7], 20, 21, 5000 * SEC);       /* a TTL key, new TTL */
        mu_ref_put(db, mu_ref_new(&r, "during", 6), 1, 60, 0);
        mu_ref_del(db, mu_ref_find(&r, "fresh", 5));       /* not an input */
        mu_ref_check(db, &r);
        MU_RC(db, CALYPSO_EMERGING, calypso_merge(db));

        hold_release();
        merge_join(&j);
        cy_merge_set_hook(NULL);
        MU_OK(db, j.rc);
        for (size_t i = 0; i < r.n; i++)
            if (r.e[i].state == MU_EXPIRED) r.e[i].state = MU_ABSENT;
        mu_ref_check(db, &r);
        expect_size_matches_dir(db, dir);
        MU_OK(db, calypso_merge(db));                      /* free again */
        mu_ref_check(db, &r);
        mu_close(db);
        db = mu_open(dir, &o);
        mu_ref_check(db, &r);
        mu_close(db);
        mu_ref_free(&r);
        tu_rmrf(dir);
    }
    mu_clock_reset();
    mu_ref_free(&base);
    tu_rmrf(tmpl);
    watchdog(0);
}

/* While a merge holds still (here: sleeps in its hook for 400 ms), the
 * process must not burn CPU: the background thread, which wants to write
 * the hint of the file the merge just sealed, has to wait for the merge,
 * not poll for it. */
static void test_merge_in_progress_does_not_spin(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    prep_db(db, &r);                 /* the active file has records: merge seals it */
    mu_sleep_ms(50);                 /* hints of earlier files written */
    hold_arm("copying");
    hold.hold_ms = 400;
    MU_OK(db, calypso_merge(db));
    cy_merge_set_hook(NULL);
    assert_true(hold.fired);
    print_message("process CPU while the merge held still for %u ms: %.1f ms\n", hold.hold_ms,
                  hold.cpu_ms_held);
    assert_true(hold.cpu_ms_held < 60.0);
    mu_ref_check(db, &r);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

// >> merge under load -------------------------------------------------------------

#define LOAD_KEYS 1500
#define LOAD_SETS 3              /* writer 0, writer 1, deleter */

typedef struct load_set {
    uint64_t version[LOAD_KEYS]; /* last version put (0: never)          */
    uint32_t vlen[LOAD_KEYS];
    uint8_t  live[LOAD_KEYS];    /* after the last operation              */
    uint64_t puts, dels;
} load_set;

typedef struct load {
    calypso *db;
    int      stop;               /* atomic */
    int      failed;             /* atomic */
    char     why[512];
    uint64_t seed;
    load_set set[LOAD_SETS];
    uint64_t merges_ok, merges_busy, reads, hits, walks;   /* atomics */
} load;

static int load_key(char *buf, int set, int i)
{
    static const char *const prefix[LOAD_SETS] = { "w0:", "w1:", "d:" };
    return snprintf(buf, 16, "%s%05d", prefix[set], i);
}

static void load_fail(load *L, const char *fmt, ...)
{
    if (__atomic_exchange_n(&L->failed, 1, __ATOMIC_ACQ_REL)) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->why, sizeof L->why, fmt, ap);
    va_end(ap);
}

static int load_stopped(load *L)
{
    return __atomic_load_n(&L->stop, __ATOMIC_ACQUIRE) ||
           __atomic_load_n(&L->failed, __ATOMIC_ACQUIRE);
}

typedef struct load_arg {
    load *L;
    int   id;
} load_arg;

static void *load_writer(void *arg)
{
    load_arg *a = arg;
    load *L = a->L;
    load_set *s = &L->set[a->id];
    uint64_t rng = L->seed ^ (0x1234567ull * (uint64_t)(a->id + 1));
    uint8_t val[256];
    char k[16];
    unsigned del_pct = a->id == 2 ? 50 : 10;
    while (!load_stopped(L)) {
        int i = (int)tu_below(&rng, LOAD_KEYS);
        int kl = load_key(k, a->id, i);
        if (tu_below(&rng, 100) < del_pct) {
            int rc = calypso_delete(L->db, k, (size_t)kl);
            if (rc) { load_fail(L, "delete %s -> %s: %s", k, calypso_strerror(rc), calypso_errmsg(L->db)); break; }
            s->live[i] = 0;
            s->dels++;
        } else {
            uint64_t v = s->version[i] + 1;
            uint32_t vl = 16 + (uint32_t)tu_below(&rng, 200);
            mu_value(val, vl, k, (size_t)kl, v);
            int rc = calypso_put(L->db, k, (size_t)kl, val, vl);
            if (rc) { load_fail(L, "put %s -> %s: %s", k, calypso_strerror(rc), calypso_errmsg(L->db)); break; }
            s->version[i] = v;
            s->vlen[i] = vl;
            s->live[i] = 1;
            s->puts++;
        }
    }
    return NULL;
}

typedef struct walk_order {
    load    *L;
    uint8_t  last[16];
    size_t   lastlen;
    int      have;
    uint64_t n;
} walk_order;

static int walk_order_cb(const void *k, size_t klen, void *ctx)
{
    walk_order *w = ctx;
    if (w->have && mu_keycmp(w->last, w->lastlen, k, klen) >= 0)
        load_fail(w->L, "walk out of order: '%.*s' after '%.*s'", (int)klen, (const char *)k,
                  (int)w->lastlen, (const char *)w->last);
    if (klen > sizeof w->last) { load_fail(w->L, "walk gave a %zu-byte key", klen); return 1; }
    memcpy(w->last, k, klen);
    w->lastlen = klen;
    w->have = 1;
    w->n++;
    return 0;
}

static void *load_reader(void *arg)
{
    load_arg *a = arg;
    load *L = a->L;
    uint64_t rng = L->seed ^ (0xabcdefull * (uint64_t)(a->id + 7));
    uint64_t (*seen)[LOAD_KEYS] = calloc(LOAD_SETS, sizeof *seen);
    if (!seen) { load_fail(L, "out of memory"); return NULL; }
    char k[16];
    uint8_t buf[512];
    uint64_t n = 0;
    while (!load_stopped(L)) {
        if (++n % 512 == 0) {                       /* now and then a walk */
            walk_order w = { L, { 0 }, 0, 0, 0 };
            int rc = calypso_scan(L->db, "w", 1, walk_order_cb, &w);
            if (rc) { load_fail(L, "scan -> %s: %s", calypso_strerror(rc), calypso_errmsg(L->db)); break; }
            __atomic_add_fetch(&L->walks, 1, __ATOMIC_RELAXED);
            continue;
        }
        int set = (int)tu_below(&rng, LOAD_SETS), i = (int)tu_below(&rng, LOAD_KEYS);
        int kl = load_key(k, set, i);
        size_t vl = 0;
        int rc = calypso_get_buf(L->db, k, (size_t)kl, buf, sizeof buf, &vl);
        __atomic_add_fetch(&L->reads, 1, __ATOMIC_RELAXED);
        if (rc == CALYPSO_ENOTFOUND) continue;
        if (rc) { load_fail(L, "get %s -> %s: %s", k, calypso_strerror(rc), calypso_errmsg(L->db)); break; }
        uint64_t v = 0;
        if (!mu_value_ok(buf, vl, k, (size_t)kl, &v)) {
            load_fail(L, "get %s gave %zu bytes that are not a value of that key", k, vl);
            break;
        }
        if (v < seen[set][i]) {
            load_fail(L, "get %s gave version %llu after version %llu", k,
                      (unsigned long long)v, (unsigned long long)seen[set][i]);
            break;
        }
        seen[set][i] = v;
        __atomic_add_fetch(&L->hits, 1, __ATOMIC_RELAXED);
    }
    free(seen);
    return NULL;
}

static void *load_merger(void *arg)
{
    load *L = arg;
    while (!__atomic_load_n(&L->failed, __ATOMIC_ACQUIRE)) {
        if (__atomic_load_n(&L->stop, __ATOMIC_ACQUIRE) &&
            __atomic_load_n(&L->merges_ok, __ATOMIC_RELAXED) >= 2)
            break;
        int rc = calypso_merge(L->db);
        if (rc == CALYPSO_OK) __atomic_add_fetch(&L->merges_ok, 1, __ATOMIC_RELAXED);
        else if (rc == CALYPSO_EMERGING) {
            __atomic_add_fetch(&L->merges_busy, 1, __ATOMIC_RELAXED);
            mu_sleep_ms(1);
        } else {
            load_fail(L, "merge -> %s: %s", calypso_strerror(rc), calypso_errmsg(L->db));
            break;
        }
    }
    return NULL;
}

static void load_to_ref(const load *L, mu_ref *r)
{
    char k[16];
    for (int s = 0; s < LOAD_SETS; s++)
        for (int i = 0; i < LOAD_KEYS; i++) {
            int kl = load_key(k, s, i);
            mu_ent *e = mu_ref_new(r, k, (size_t)kl);
            if (L->set[s].live[i]) {
                e->state = MU_LIVE;
                e->version = L->set[s].version[i];
                e->vlen = L->set[s].vlen[i];
            }
        }
}

static void test_merge_under_load(void **state)
{
    (void)state;
    watchdog(180);
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 64 << 10;
    o.merge_trigger_ratio = 0.5;        /* auto-merges too, beside ours */
    o.merge_min_dead_bytes = 1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    /* Room for every descriptor: reads racing descriptor evictions are
     * test_reads_with_evicted_descriptors_during_merges's business. */
    o.max_open_files = 4096;
    load *L = calloc(1, sizeof *L);
    assert_non_null(L);
    L->seed = tu_seed("test_merge_under_load");
    L->db = mu_open(dir, &o);

    pthread_t th[6];
    load_arg args[5] = { { L, 0 }, { L, 1 }, { L, 2 }, { L, 0 }, { L, 1 } };
    for (int i = 0; i < 3; i++) assert_int_equal(pthread_create(&th[i], NULL, load_writer, &args[i]), 0);
    for (int i = 3; i < 5; i++) assert_int_equal(pthread_create(&th[i], NULL, load_reader, &args[i]), 0);
    assert_int_equal(pthread_create(&th[5], NULL, load_merger, L), 0);
    unsigned ms = MU_SANITIZED ? 1500 : 2500;
    uint64_t t0 = mu_now_us();
    while (mu_now_us() - t0 < (uint64_t)ms * 1000 && !__atomic_load_n(&L->failed, __ATOMIC_ACQUIRE))
        mu_sleep_ms(20);
    __atomic_store_n(&L->stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 6; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    if (L->failed) print_error("%s\n", L->why);
    assert_false(L->failed);

    struct calypso_stats st;
    MU_OK(L->db, calypso_stats(L->db, &st));
    print_message("load: %llu+%llu+%llu puts, %llu+%llu+%llu deletes, %llu reads (%llu hits), "
                  "%llu walks, %llu merges (+%llu refused while one ran), %llu merges counted, "
                  "%u datafiles\n",
                  (unsigned long long)L->set[0].puts, (unsigned long long)L->set[1].puts,
                  (unsigned long long)L->set[2].puts, (unsigned long long)L->set[0].dels,
                  (unsigned long long)L->set[1].dels, (unsigned long long)L->set[2].dels,
                  (unsigned long long)L->reads, (unsigned long long)L->hits,
                  (unsigned long long)L->walks, (unsigned long long)L->merges_ok,
                  (unsigned long long)L->merges_busy, (unsigned long long)st.merges,
                  st.datafiles);
    assert_true(L->merges_ok >= 2);
    assert_true(st.merges >= L->merges_ok);
    assert_true(L->hits > 0);

    mu_ref r = { 0 };
    load_to_ref(L, &r);
    mu_ref_check(L->db, &r);
    MU_OK(L->db, calypso_reopen(L->db));
    mu_ref_check(L->db, &r);
    merge_now(L->db);
    mu_ref_check(L->db, &r);
    mu_close(L->db);
    L->db = mu_open(dir, &o);
    mu_ref_check(L->db, &r);
    mu_close(L->db);
    mu_ref_free(&r);
    free(L);
    tu_rmrf(dir);
    watchdog(0);
}

// >> walks during merges ------------------------------------------------------------

#define WALK_KEYS 4000

typedef struct walk_check {
    calypso *db;
    int      next;          /* index of the next static key expected    */
    int      bad;
    char     why[256];
    uint8_t  last[16];
    size_t   lastlen;
    int      have;
    int      lo, hi;        /* the static keys the walk must cover      */
} walk_check;

static int walk_check_cb(const void *k, size_t klen, void *ctx)
{
    walk_check *w = ctx;
    if (w->bad) return 0;
    if (w->have && mu_keycmp(w->last, w->lastlen, k, klen) >= 0) {
        w->bad = 1;
        snprintf(w->why, sizeof w->why, "'%.*s' after '%.*s'", (int)klen, (const char *)k,
                 (int)w->lastlen, (const char *)w->last);
        return 0;
    }
    memcpy(w->last, k, klen < 16 ? klen : 16);
    w->lastlen = klen < 16 ? klen : 16;
    w->have = 1;
    if (klen != 6 || ((const char *)k)[0] != 's') return 0;   /* churn keys */
    int i = 0;
    for (int d = 1; d < 6; d++) i = i * 10 + (((const char *)k)[d] - '0');
    if (i != w->next) {
        w->bad = 1;
        snprintf(w->why, sizeof w->why, "static key s%05d seen where s%05d was due", i, w->next);
        return 0;
    }
    w->next++;
    if (i % 64 == 0) {                     /* a callback may read the store */
        uint8_t buf[128];
        size_t vl = 0;
        int rc = calypso_get_buf(w->db, k, klen, buf, sizeof buf, &vl);
        uint64_t v = 0;
        if (rc != CALYPSO_OK || !mu_value_ok(buf, vl, k, klen, &v) || v != 1) {
            w->bad = 1;
            snprintf(w->why, sizeof w->why, "get s%05d in a callback -> %s", i,
                     calypso_strerror(rc));
        }
    }
    return 0;
}

static int walk_sift_cb(const void *k, size_t klen, void *ctx)
{
    walk_check_cb(k, klen, ctx);
    return 0;               /* delete nothing */
}

typedef struct churn {
    calypso *db;
    int      stop;
    int      failed;
    uint64_t merges;
    uint64_t seed;
} churn;

static void *churn_writer(void *arg)
{
    churn *c = arg;
    uint64_t rng = c->seed;
    char k[16];
    uint8_t v[64];
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        /* keys between and around the static ones */
        int kl = snprintf(k, sizeof k, "s%05d%c", (int)tu_below(&rng, WALK_KEYS), 'x');
        if (tu_below(&rng, 3) == 0) kl = snprintf(k, sizeof k, "t%05d", (int)tu_below(&rng, 1000));
        int rc;
        if (tu_below(&rng, 4) == 0) rc = calypso_delete(c->db, k, (size_t)kl);
        else {
            mu_value(v, 40, k, (size_t)kl, 1);
            rc = calypso_put(c->db, k, (size_t)kl, v, 40);
        }
        if (rc) { __atomic_store_n(&c->failed, 1, __ATOMIC_RELEASE); break; }
    }
    return NULL;
}

static void *churn_merger(void *arg)
{
    churn *c = arg;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        int rc = calypso_merge(c->db);
        if (rc == CALYPSO_OK) __atomic_add_fetch(&c->merges, 1, __ATOMIC_RELAXED);
        else if (rc != CALYPSO_EMERGING) { __atomic_store_n(&c->failed, 1, __ATOMIC_RELEASE); break; }
    }
    return NULL;
}

static void test_walks_during_merges_see_each_key_once(void **state)
{
    (void)state;
    watchdog(120);
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(64 << 10);
    churn c = { 0 };
    c.seed = tu_seed("test_walks_during_merges_see_each_key_once");
    c.db = mu_open(dir, &o);
    char k[16];
    for (int i = 0; i < WALK_KEYS; i++) {
        int kl = snprintf(k, sizeof k, "s%05d", i);
        mu_put_version(c.db, k, (size_t)kl, 1, 40, 0);
    }
    pthread_t tw, tm;
    assert_int_equal(pthread_create(&tw, NULL, churn_writer, &c), 0);
    assert_int_equal(pthread_create(&tm, NULL, churn_merger, &c), 0);
    unsigned budget_ms = MU_SANITIZED ? 1500 : 2000;
    uint64_t t0 = mu_now_us();
    int walks = 0;
    while (!__atomic_load_n(&c.failed, __ATOMIC_ACQUIRE) &&
           (mu_now_us() - t0 < (uint64_t)budget_ms * 1000 ||
                         __atomic_load_n(&c.merges, __ATOMIC_RELAXED) < 3)) {
        walk_check w = { .db = c.db, .lo = 0, .hi = WALK_KEYS };
        int kind = walks % 4, rc;
        if (kind == 0) rc = calypso_fold(c.db, walk_check_cb, &w);
        else if (kind == 1) rc = calypso_scan(c.db, "s", 1, walk_check_cb, &w);
        else if (kind == 2) {
            w.next = w.lo = 1000;
            w.hi = 3000;
            rc = calypso_range(c.db, "s01000", 6, "s02999", 6, walk_check_cb, &w);
        } else rc = calypso_sift_scan(c.db, "s", 1, walk_sift_cb, &w);
        MU_OK(c.db, rc);
        if (!w.bad && w.next != w.hi)
            w.bad = 1, snprintf(w.why, sizeof w.why, "walk ended at s%05d, want s%05d", w.next, w.hi);
        if (w.bad) print_error("walk kind %d #%d: %s\n", kind, walks, w.why);
        assert_false(w.bad);
        walks++;
        if (mu_now_us() - t0 > 60000000ull) break;   /* never reached: merges stalled */
    }
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
    pthread_join(tw, NULL);
    pthread_join(tm, NULL);
    print_message("%d walks during %llu merges\n", walks, (unsigned long long)c.merges);
    assert_false(c.failed);
    assert_true(c.merges >= 3);
    assert_true(walks >= 4);
    mu_close(c.db);
    tu_rmrf(dir);
    watchdog(0);
}

// >> the descriptor cache under merges ---------------------------------------------------

typedef struct evict_run {
    calypso *db;
    uint64_t seed;
    int      stop, failed;
    char     why[256];
    uint64_t reads, merges;
} evict_run;

typedef struct evict_arg {
    evict_run *e;
    uint64_t   id;
} evict_arg;

static void *evict_reader(void *arg)
{
    evict_run *e = ((evict_arg *)arg)->e;
    uint64_t rng = e->seed ^ (((evict_arg *)arg)->id * 0x9e3779b97f4a7c15ull);
    char k[16];
    uint8_t buf[128];
    while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
        int i = (int)tu_below(&rng, 3000);
        int kl = snprintf(k, sizeof k, "k%05d", i);
        size_t vl = 0;
        uint64_t v = 0;
        int rc = calypso_get_buf(e->db, k, (size_t)kl, buf, sizeof buf, &vl);
        if (rc != CALYPSO_OK || !mu_value_ok(buf, vl, k, (size_t)kl, &v) || v != 1) {
            if (!__atomic_exchange_n(&e->failed, 1, __ATOMIC_ACQ_REL))
                snprintf(e->why, sizeof e->why, "get %s -> %s: %s", k, calypso_strerror(rc),
                         calypso_errmsg(e->db));
            break;
        }
        __atomic_add_fetch(&e->reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* A cursor walking every key forward and back, checking each value: its
 * window keeps locations from one fill while merges remove their files. */
static void *evict_cursor(void *arg)
{
    evict_run *e = ((evict_arg *)arg)->e;
    calypso_cursor *c = NULL;
    int rc = calypso_cursor_open(e->db, &c);
    const char *step = "open";
    while (!rc && !__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
        int backward = (int)(__atomic_load_n(&e->reads, __ATOMIC_RELAXED) & 1);
        step = backward ? "last" : "first";
        rc = backward ? calypso_cursor_last(c) : calypso_cursor_first(c);
        int seen = 0;
        while (!rc && !__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
            const void *k, *v;
            size_t kl, vl;
            uint64_t ver = 0;
            step = "key";
            if ((rc = calypso_cursor_key(c, &k, &kl))) break;
            step = "value";
            if ((rc = calypso_cursor_value(c, &v, &vl))) break;
            if (!mu_value_ok(v, vl, k, kl, &ver) || ver != 1) {
                rc = CALYPSO_ECORRUPT;
                break;
            }
            seen++;
            __atomic_add_fetch(&e->reads, 1, __ATOMIC_RELAXED);
            step = "step";
            rc = backward ? calypso_cursor_prev(c) : calypso_cursor_next(c);
        }
        if (rc == CALYPSO_ENOTFOUND && !strcmp(step, "step") && seen == 3000) rc = CALYPSO_OK;
        else if (rc == CALYPSO_OK && !__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) rc = CALYPSO_EIO;
    }
    if (rc && !__atomic_exchange_n(&e->failed, 1, __ATOMIC_ACQ_REL))
        snprintf(e->why, sizeof e->why, "cursor %s -> %s: %s", step, calypso_strerror(rc),
                 calypso_errmsg(e->db));
    calypso_cursor_close(c);
    return NULL;
}

static void *evict_merger(void *arg)
{
    evict_run *e = arg;
    while (!__atomic_load_n(&e->stop, __ATOMIC_ACQUIRE)) {
        int rc = calypso_merge(e->db);
        if (rc != CALYPSO_OK) {
            if (!__atomic_exchange_n(&e->failed, 1, __ATOMIC_ACQ_REL))
                snprintf(e->why, sizeof e->why, "merge -> %s: %s", calypso_strerror(rc),
                         calypso_errmsg(e->db));
            break;
        }
        __atomic_add_fetch(&e->merges, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

/* Many more datafiles than max_open_files: readers keep opening evicted
 * mappings (evicting each other's) while merges back to back replace the
 * files. A get or a cursor read of a live key must never fail for it. */
static void test_reads_with_evicted_descriptors_during_merges(void **state)
{
    (void)state;
    watchdog(60);
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    o.max_open_files = 2;
    evict_run e = { 0 };
    e.seed = tu_seed("test_reads_with_evicted_descriptors_during_merges");
    e.db = mu_open(dir, &o);
    char k[16];
    for (int i = 0; i < 3000; i++) {
        int kl = snprintf(k, sizeof k, "k%05d", i);
        mu_put_version(e.db, k, (size_t)kl, 1, 40, 0);
    }
    struct calypso_stats st;
    MU_OK(e.db, calypso_stats(e.db, &st));
    assert_true(st.datafiles > 20);
    pthread_t th[4];
    evict_arg args[3] = { { &e, 1 }, { &e, 2 }, { &e, 3 } };
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, evict_reader, &args[i]), 0);
    assert_int_equal(pthread_create(&th[2], NULL, evict_cursor, &args[2]), 0);
    assert_int_equal(pthread_create(&th[3], NULL, evict_merger, &e), 0);
    /* At least a second and three merges (ten seconds at most). */
    uint64_t t0 = mu_now_us();
    while (!__atomic_load_n(&e.failed, __ATOMIC_ACQUIRE) && mu_now_us() - t0 < 10000000 &&
           (mu_now_us() - t0 < 1000000 || __atomic_load_n(&e.merges, __ATOMIC_ACQUIRE) < 3))
        mu_sleep_ms(10);
    __atomic_store_n(&e.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    print_message("%llu reads beside %llu merges over %u+ datafiles, 2 descriptors cached\n",
                  (unsigned long long)e.reads, (unsigned long long)e.merges, st.datafiles);
    if (e.failed) print_error("%s\n", e.why);
    assert_false(e.failed);
    assert_true(e.reads > 0);
    assert_true(e.merges >= 3);
    mu_close(e.db);
    tu_rmrf(dir);
    watchdog(0);
}

// >> auto-merge ------------------------------------------------------------------------

/* 2000 keys written three times over: two thirds of the bytes are dead. */
static void overwrite_workload(calypso *db, mu_ref *r)
{
    char k[16];
    for (int round = 1; round <= 3; round++)
        for (int i = 0; i < 2000; i++) {
            int kl = snprintf(k, sizeof k, "a%05d", i);
            mu_ent *e = round == 1 ? mu_ref_new(r, k, (size_t)kl) : &r->e[i];
            mu_ref_put(db, e, (uint64_t)round, 80, 0);
        }
}

/* The workload is written with auto-merge off, then the database is
 * reopened with merge_trigger_ratio 0.5: the background thread finds two
 * thirds of the bytes dead and merges, once. */
static void test_auto_merge_on_dead_ratio(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(64 << 10);
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    overwrite_workload(db, &r);
    /* The figures before the merge come from this handle (which never
     * merges): the one opened next may merge before its first call. */
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    uint64_t dead_before = st.reclaimable, size_before = st.size;
    assert_true(dead_before * 2 > size_before);
    mu_close(db);
    o.merge_trigger_ratio = 0.5;
    o.merge_min_dead_bytes = 1;
    uint64_t t0 = mu_now_us();
    db = mu_open(dir, &o);
    while (mu_now_us() - t0 < 3000000) {
        MU_OK(db, calypso_stats(db, &st));
        if (st.merges >= 1) break;
        mu_sleep_ms(10);
    }
    print_message("auto-merge after %.0f ms: %llu dead of %llu bytes before; %llu merges\n",
                  (double)(mu_now_us() - t0) / 1000.0, (unsigned long long)dead_before,
                  (unsigned long long)size_before, (unsigned long long)st.merges);
    assert_true(st.merges >= 1);
    mu_ref_check(db, &r);
    /* It does not go on merging what is already merged. */
    mu_sleep_ms(1200);
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.merges, 1);
    assert_true(st.size * 2 < size_before);
    assert_int_equal(st.reclaimable, 0);
    mu_ref_check(db, &r);
    /* Writes that kill half the bytes again trigger the next one. */
    for (int i = 0; i < 2000; i++) mu_ref_put(db, &r.e[i], 4, 80, 0);
    for (int i = 0; i < 2000; i++) mu_ref_put(db, &r.e[i], 5, 80, 0);
    t0 = mu_now_us();
    while (mu_now_us() - t0 < 3000000) {
        MU_OK(db, calypso_stats(db, &st));
        if (st.merges >= 2) break;
        mu_sleep_ms(10);
    }
    assert_true(st.merges >= 2);
    mu_ref_check(db, &r);
    mu_close(db);
    db = mu_open(dir, &o);
    mu_ref_check(db, &r);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

static void test_no_auto_merge_with_negative_ratio(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(64 << 10);
    o.merge_trigger_ratio = -1;
    o.merge_min_dead_bytes = 1;
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    overwrite_workload(db, &r);
    struct calypso_stats st0, st;
    MU_OK(db, calypso_stats(db, &st0));
    assert_true(st0.reclaimable * 2 > st0.size);        /* past the 0.5 ratio */
    uint64_t t0 = mu_now_us();
    while (mu_now_us() - t0 < 1500000) {
        MU_OK(db, calypso_stats(db, &st));
        assert_int_equal(st.merges, 0);
        mu_sleep_ms(50);
    }
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.merges, 0);
    assert_int_equal(st.reclaimable, st0.reclaimable);
    assert_int_equal(st.datafiles, st0.datafiles);
    MU_OK(db, calypso_merge(db));                        /* by hand it still works */
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.merges, 1);
    mu_ref_check(db, &r);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

// >> crashes at each step ----------------------------------------------------------------

enum { DIE_EXIT = 0, DIE_KILL = 1 };

static struct {
    const char *point;
    int         how;
    calypso    *db;
    int         writes;       /* the hook writes before it dies */
} crash;

/* What the dying hook writes (the parent applies the same to its
 * reference): delete c0002, overwrite c0004, add "hook". */
static void crash_writes_ref(mu_ref *r)
{
    r->e[2].state = MU_ABSENT;
    mu_ent *e = &r->e[4];
    e->state = MU_LIVE;
    e->version = 77;
    e->vlen = 55;
    e = mu_ref_new(r, "hook", 4);
    e->state = MU_LIVE;
    e->version = 1;
    e->vlen = 10;
}

static void crash_hook(const char *point)
{
    if (strcmp(point, crash.point) != 0) return;
    if (crash.writes) {
        uint8_t v[64];
        if (calypso_delete(crash.db, "c0002", 5)) _exit(5);
        mu_value(v, 55, "c0004", 5, 77);
        if (calypso_put(crash.db, "c0004", 5, v, 55)) _exit(5);
        mu_value(v, 10, "hook", 4, 1);
        if (calypso_put(crash.db, "hook", 4, v, 10)) _exit(5);
    }
    if (crash.how == DIE_KILL) raise(SIGKILL);
    _exit(0);
}

/* Forks a child that opens dir, merges and dies at `point`; checks that it
 * died there. */
static void crash_child(const char *dir, const calypso_options *o, int point, int how,
                        int writes)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        crash.point = merge_points[point];
        crash.how = how;
        crash.writes = writes;
        cy_merge_set_hook(crash_hook);
        calypso *db = NULL;
        if (calypso_open(dir, o, &db) != CALYPSO_OK) _exit(6);
        crash.db = db;
        int rc = calypso_merge(db);
        _exit(rc == CALYPSO_OK ? 3 : 4);      /* the hook did not fire */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (how == DIE_EXIT) {
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            print_error("child at '%s': status 0x%x\n", merge_points[point], status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    } else {
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            print_error("child at '%s': status 0x%x\n", merge_points[point], status);
        assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    }
}

static int any_fid_in(const uint32_t *a, int na, const uint32_t *b, int nb)
{
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            if (a[i] == b[j]) return 1;
    return 0;
}

static int all_fids_in(const uint32_t *a, int na, const uint32_t *b, int nb)
{
    for (int i = 0; i < na; i++) {
        int found = 0;
        for (int j = 0; j < nb; j++) found |= a[i] == b[j];
        if (!found) return 0;
    }
    return 1;
}

static int count_merged(const uint32_t *f, int n)
{
    int m = 0;
    for (int i = 0; i < n; i++) m += (f[i] & CY_FID_MERGED) != 0;
    return m;
}

static void test_crash_at_each_merge_step(void **state)
{
    (void)state;
    watchdog(300);
    char *tmpl = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    calypso *db = mu_open(tmpl, &o);
    mu_ref base = { 0 };
    prep_db(db, &base);
    mu_close(db);
    mu_shift(100 * SEC);                 /* i % 10 == 3 keys expired: the merge drops them */
    prep_expire(&base);
    uint32_t inputs[256];
    int ninputs = mu_list_fids(tmpl, "data", inputs, 256);
    assert_true(ninputs >= 5 && ninputs < 256);
    assert_int_equal(count_merged(inputs, ninputs), 0);

    for (int how = DIE_EXIT; how <= DIE_KILL; how++)
        for (int p = 0; p < NPOINTS; p++) {
            char *dir = tu_tmpdir();
            copy_dir(tmpl, dir);
            mu_ref r = ref_copy(&base);
            crash_child(dir, &o, p, how, 1);
            crash_writes_ref(&r);

            db = mu_open(dir, &o);
            expect_no_merge_dir(dir);
            uint32_t now[256];
            int n = mu_list_fids(dir, "data", now, 256);
            assert_true(n < 256);
            if (point_committed(p)) {
                /* decided: the open finished the first step (the merge
                 * works in steps of one output file's worth, oldest
                 * inputs first, and the crash came in the first) */
                assert_false(any_fid_in(inputs, 1, now, n));
                if (p == NPOINTS - 1)   /* "done": after the last step */
                    assert_false(any_fid_in(inputs, ninputs, now, n));
                assert_true(count_merged(now, n) >= 1);
            } else {
                /* not decided: thrown away, the inputs untouched */
                assert_true(all_fids_in(inputs, ninputs, now, n));
                assert_int_equal(count_merged(now, n), 0);
            }
            mu_ref_check(db, &r);
            expect_size_matches_dir(db, dir);

            /* A merge afterwards works and leaves only live records. */
            MU_OK(db, calypso_merge(db));
            for (size_t i = 0; i < r.n; i++)
                if (r.e[i].state == MU_EXPIRED) r.e[i].state = MU_ABSENT;
            mu_ref_check(db, &r);
            mu_census c = mu_census_dir(dir, cy_now_ms(), NULL, NULL);
            assert_int_equal(c.records, mu_ref_live(&r));
            assert_int_equal(c.tombstones, 0);
            mu_close(db);
            db = mu_open(dir, &o);
            mu_ref_check(db, &r);
            expect_size_matches_dir(db, dir);
            mu_close(db);
            mu_ref_free(&r);
            tu_rmrf(dir);
        }
    mu_clock_reset();
    mu_ref_free(&base);
    tu_rmrf(tmpl);
    watchdog(0);
}

/* Fills the active file with other keys until the database has `files`
 * datafiles. */
static void fill_until_files(calypso *db, int *counter, uint32_t files)
{
    char k[16];
    uint8_t v[200];
    memset(v, 'f', sizeof v);
    for (;;) {
        struct calypso_stats st;
        MU_OK(db, calypso_stats(db, &st));
        if (st.datafiles >= files) return;
        int kl = snprintf(k, sizeof k, "fill%06d", (*counter)++);
        MU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
    }
}

/* Basho's resurrection bug: put k, rotate, delete k, rotate, merge
 * interrupted, restart: k must stay deleted. Variant B has k's put in a
 * merged file from an earlier merge. */
static void test_crash_merge_never_resurrects_deleted_keys(void **state)
{
    (void)state;
    watchdog(300);
    calypso_options o = mu_quiet_opts(4096);
    for (int variant = 0; variant < 2; variant++) {
        char *tmpl = tu_tmpdir();
        calypso *db = mu_open(tmpl, &o);
        int fill = 0;
        MU_OK(db, calypso_put(db, "k", 1, "old value of k", 14));
        MU_OK(db, calypso_put(db, "k2", 2, "first", 5));
        MU_OK(db, calypso_put_ttl(db, "kt", 2, "ttl value", 9, 10000 * SEC));
        fill_until_files(db, &fill, 2);
        if (variant == 1) {
            MU_OK(db, calypso_merge(db));      /* k now lives in a merged file */
            MU_OK(db, calypso_put(db, "pad", 3, "p", 1));
        }
        struct calypso_stats st;
        MU_OK(db, calypso_stats(db, &st));
        fill_until_files(db, &fill, st.datafiles + 1);
        MU_OK(db, calypso_delete(db, "k", 1));
        MU_OK(db, calypso_delete(db, "kt", 2));
        MU_OK(db, calypso_put(db, "k2", 2, "second", 6));
        MU_OK(db, calypso_stats(db, &st));
        fill_until_files(db, &fill, st.datafiles + 1);
        MU_OK(db, calypso_put(db, "last", 4, "x", 1));
        mu_close(db);

        for (int how = DIE_EXIT; how <= DIE_KILL; how++)
            for (int p = 0; p < NPOINTS; p++) {
                char *dir = tu_tmpdir();
                copy_dir(tmpl, dir);
                crash_child(dir, &o, p, how, 0);
                for (int round = 0; round < 3; round++) {
                    /* after the crash; after another merge; after a reopen */
                    if (round == 0 || round == 2) db = mu_open(dir, &o);
                    if (round == 1) MU_OK(db, calypso_merge(db));
                    void *v = NULL;
                    size_t vl = 0;
                    int rc = calypso_get(db, "k", 1, &v, &vl);
                    if (rc != CALYPSO_ENOTFOUND)
                        print_error("variant %d, %s at '%s', round %d: deleted key k -> %s\n",
                                    variant, how ? "SIGKILL" : "_exit", merge_points[p], round,
                                    calypso_strerror(rc));
                    assert_int_equal(rc, CALYPSO_ENOTFOUND);
                    MU_RC(db, CALYPSO_ENOTFOUND, calypso_get(db, "kt", 2, &v, &vl));
                    MU_OK(db, calypso_get(db, "k2", 2, &v, &vl));
                    assert_int_equal(vl, 6);
                    assert_memory_equal(v, "second", 6);
                    calypso_free(v);
                    assert_int_equal(calypso_has(db, "last", 4), 1);
                    assert_int_equal(calypso_len(db), (uint64_t)fill + 2 + variant);
                    if (round == 1) mu_close(db);
                }
                mu_close(db);
                tu_rmrf(dir);
            }
        tu_rmrf(tmpl);
    }
    watchdog(0);
}

// >> syscall failures during a merge --------------------------------------------------------

static const struct { int kind; const char *name; } fault_kinds[] = {
    { CY_OS_OPEN, "open" },           { CY_OS_CLOSE, "close" },
    { CY_OS_PREAD, "pread" },         { CY_OS_PWRITE, "pwrite" },
    { CY_OS_FSYNC, "fsync" },         { CY_OS_FDATASYNC, "fdatasync" },
    { CY_OS_FTRUNCATE, "ftruncate" }, { CY_OS_RENAME, "rename" },
    { CY_OS_UNLINK, "unlink" },       { CY_OS_MKDIR, "mkdir" },
    { CY_OS_RMDIR, "rmdir" },         { CY_OS_FSTAT, "fstat" },
    { CY_OS_READDIR, "readdir" },     { CY_OS_MMAP, "mmap" },
    { CY_OS_FALLOCATE, "fallocate" }, { CY_OS_STAT, "stat" },
};
#define NFAULT_KINDS (int)(sizeof fault_kinds / sizeof fault_kinds[0])

static void test_merge_survives_syscall_failures(void **state)
{
    (void)state;
    watchdog(300);
    char *tmpl = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    calypso *db = mu_open(tmpl, &o);
    mu_ref base = { 0 };
    prep_db(db, &base);
    mu_close(db);
    mu_shift(100 * SEC);
    prep_expire(&base);

    /* How many calls of each kind a clean merge of this database makes. */
    uint64_t counts[CY_OS__COUNT];
    {
        char *dir = tu_tmpdir();
        copy_dir(tmpl, dir);
        db = mu_open(dir, &o);
        uint64_t c0[CY_OS__COUNT];
        for (int k = 0; k < CY_OS__COUNT; k++) c0[k] = cy_os_count(k);
        MU_OK(db, calypso_merge(db));
        for (int k = 0; k < CY_OS__COUNT; k++) counts[k] = cy_os_count(k) - c0[k];
        mu_close(db);
        tu_rmrf(dir);
    }
    int runs = 0, failed_merges = 0, broken = 0;
    for (int f = 0; f < NFAULT_KINDS; f++) {
        uint64_t c = counts[fault_kinds[f].kind];
        /* the first, the middle, and the last two (the last calls are
         * where a merge finishes: its outputs join the file table) */
        uint64_t picks[4] = { 1, (c + 1) / 2, c > 1 ? c - 1 : 1, c };
        for (int pi = 0; pi < 4 && c > 0; pi++) {
            int dup = 0;
            for (int pj = 0; pj < pi; pj++) dup |= picks[pj] == picks[pi];
            if (dup) continue;
            char *dir = tu_tmpdir();
            copy_dir(tmpl, dir);
            mu_ref r = ref_copy(&base);
            db = mu_open(dir, &o);
            cy_os_fail_at(fault_kinds[f].kind, picks[pi], EIO, 0, 0);
            int rc = calypso_merge(db);
            cy_os_fail_reset();
            int wrote_after = 0;
            runs++;
            print_message("%s #%llu of %llu fails: merge -> %s\n", fault_kinds[f].name,
                          (unsigned long long)picks[pi], (unsigned long long)c,
                          calypso_strerror(rc));
            /* Whatever happened, every key reads as before. */
            /* An injected EIO is an I/O error, not damage: it must not
             * come back as CALYPSO_ECORRUPT (or anything else). */
            if (rc != CALYPSO_OK && rc != CALYPSO_EIO)
                print_error("%s #%llu failed with EIO: merge -> %s (%s)\n", fault_kinds[f].name,
                            (unsigned long long)picks[pi], calypso_strerror(rc),
                            calypso_errmsg(db));
            assert_true(rc == CALYPSO_OK || rc == CALYPSO_EIO);
            if (rc == CALYPSO_OK) {
                for (size_t i = 0; i < r.n; i++)
                    if (r.e[i].state == MU_EXPIRED) r.e[i].state = MU_ABSENT;
                mu_ref_check(db, &r);
                expect_size_matches_dir(db, dir);
            } else {
                failed_merges++;
                mu_ref_check(db, &r);
                /* The handle either takes writes, or refuses them all
                 * (the merge was decided and the next open finishes it). */
                int wrc = calypso_put(db, "after", 5, "x", 1);
                if (wrc == CALYPSO_OK) {
                    wrote_after = 1;
                } else {
                    broken++;
                    if (wrc != CALYPSO_EIO)
                        print_error("%s #%llu: write after a failed merge -> %s\n",
                                    fault_kinds[f].name, (unsigned long long)picks[pi],
                                    calypso_strerror(wrc));
                    assert_int_equal(wrc, CALYPSO_EIO);
                }
            }
            /* A handle that refuses writes says so at close too. */
            if (rc != CALYPSO_OK && !wrote_after) assert_int_equal(calypso_close(db), CALYPSO_EIO);
            else mu_close(db);
            db = mu_open(dir, &o);
            expect_no_merge_dir(dir);
            if (wrote_after) {          /* a write the handle took is there */
                void *v = NULL;
                size_t vl = 0;
                MU_OK(db, calypso_get(db, "after", 5, &v, &vl));
                assert_int_equal(vl, 1);
                assert_memory_equal(v, "x", 1);
                calypso_free(v);
                MU_OK(db, calypso_delete(db, "after", 5));
            }
            mu_ref_check(db, &r);
            expect_size_matches_dir(db, dir);
            MU_OK(db, calypso_merge(db));
            for (size_t i = 0; i < r.n; i++)
                if (r.e[i].state == MU_EXPIRED) r.e[i].state = MU_ABSENT;
            mu_ref_check(db, &r);
            expect_size_matches_dir(db, dir);
            mu_close(db);
            db = mu_open(dir, &o);
            mu_ref_check(db, &r);
            mu_close(db);
            mu_ref_free(&r);
            tu_rmrf(dir);
        }
    }
    print_message("%d merges with one failing syscall: %d failed, %d left the handle "
                  "refusing writes\n", runs, failed_merges, broken);
    assert_true(failed_merges > 0);
    mu_clock_reset();
    mu_ref_free(&base);
    tu_rmrf(tmpl);
    watchdog(0);
}

// >> space ---------------------------------------------------------------------------------

static void test_merge_space_after_overwrites(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4 << 20);
    calypso *db = mu_open(dir, &o);
    const int N = MU_TSAN ? 10000 : 100000, ROUNDS = 10;
    char k[17];
    uint8_t v[100];
    uint64_t t0 = mu_now_us();
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < N; i++) {
            snprintf(k, sizeof k, "key%013d", i);                /* 16 bytes */
            mu_value(v, sizeof v, k, 16, (uint64_t)round + 1);
            MU_OK(db, calypso_put(db, k, 16, v, sizeof v));
        }
    double write_s = (double)(mu_now_us() - t0) / 1e6;
    struct calypso_stats before, after;
    MU_OK(db, calypso_stats(db, &before));
    t0 = mu_now_us();
    MU_OK(db, calypso_merge(db));
    double merge_s = (double)(mu_now_us() - t0) / 1e6;
    MU_OK(db, calypso_stats(db, &after));
    const double live = (double)N * (16 + 100);
    int nfiles = 0;
    uint64_t disk = mu_dir_bytes(dir, &nfiles);
    print_message("space: %d keys x %d writes in %.2f s; before merge %.1f MB in %u datafiles "
                  "(%.1f MB dead); merge %.2f s = %.0f MB/s of input; after: %.2f MB on disk "
                  "in %d files, stats.size %.2f MB, ratio %.3f to the %.2f MB of live keys and "
                  "values; reclaimable %llu\n",
                  N, ROUNDS, write_s, (double)before.size / 1e6, before.datafiles,
                  (double)before.reclaimable / 1e6, merge_s,
                  (double)before.size / 1e6 / merge_s, (double)disk / 1e6, nfiles,
                  (double)after.size / 1e6, (double)disk / live, live / 1e6,
                  (unsigned long long)after.reclaimable);
    assert_true((double)disk <= 1.35 * live);
    assert_true((double)after.size <= 1.35 * live);
    assert_true(after.size <= disk);
    assert_true((double)after.reclaimable < 0.01 * live);
    assert_int_equal(after.merges, 1);
    assert_int_equal(after.keys, (uint64_t)N);
    expect_no_merge_dir(dir);
    /* Spot checks of the newest values (a full check would double the
     * test's time). */
    for (int i = 0; i < N; i += 997) {
        snprintf(k, sizeof k, "key%013d", i);
        uint8_t buf[128];
        size_t vl = 0;
        uint64_t ver = 0;
        MU_OK(db, calypso_get_buf(db, k, 16, buf, sizeof buf, &vl));
        assert_true(mu_value_ok(buf, vl, k, 16, &ver));
        assert_int_equal(ver, (uint64_t)ROUNDS);
    }
    MU_OK(db, calypso_reopen(db));
    assert_int_equal(calypso_len(db), (uint64_t)N);
    mu_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    mu_default_tmpdir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_keeps_contents),
        cmocka_unit_test(test_merge_keeps_contents_in_file_order),
        cmocka_unit_test(test_merge_empty_and_readonly),
        cmocka_unit_test(test_second_merge_gets_emerging_at_every_step),
        cmocka_unit_test(test_merge_in_progress_does_not_spin),
        cmocka_unit_test(test_merge_under_load),
        cmocka_unit_test(test_walks_during_merges_see_each_key_once),
        cmocka_unit_test(test_reads_with_evicted_descriptors_during_merges),
        cmocka_unit_test(test_auto_merge_on_dead_ratio),
        cmocka_unit_test(test_no_auto_merge_with_negative_ratio),
        cmocka_unit_test(test_crash_at_each_merge_step),
        cmocka_unit_test(test_crash_merge_never_resurrects_deleted_keys),
        cmocka_unit_test(test_merge_survives_syscall_failures),
        cmocka_unit_test(test_merge_space_after_overwrites),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
