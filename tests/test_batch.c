/*
 * test_batch.c: atomic write batches.
 *
 *   - What a batch does: puts, deletes and overwrites of the same key in
 *     order, TTLs, deletes of absent keys, empty batches, abort; across a
 *     reopen (from the hint and from the datafile), and a merge in both of
 *     its copy modes.
 *   - The size limit at its boundary and one byte past it.
 *   - A batch torn at every byte of its tail is absent after open; a
 *     damaged batch followed by more records is CALYPSO_ECORRUPT (or, with
 *     auto_recovery, dropped whole).
 *   - Readers see a batch whole: a cursor window (filled under one lock
 *     hold) never mixes two batches' versions, while a writer commits.
 *   - One fdatasync per batch under CALYPSO_SYNC_ALWAYS.
 *   - Memory failing at every allocation of a commit: an error and the
 *     database unchanged.
 *   - Crash atomicity: a child commits batches of 1-50 keys tagged with the
 *     batch number and is killed with SIGKILL at random moments, under each
 *     sync mode; after every reopen each batch is whole or absent, and
 *     under SYNC_ALWAYS every batch whose commit returned is whole.
 *     The same under SYNC_ALWAYS with power losses (the simulator dropping
 *     any subset of unsynced pages) at random table calls.
 *     CALYPSO_BATCH_CYCLES sets the cycles per mode (make crash-test runs
 *     more); CALYPSO_SEED replays the schedule.
 *   - sift and delete_all delete as one batch while the tombstones fit a
 *     datafile (at the boundary, and one key past it: two batches).
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static calypso_options bt_opts(uint64_t file_size)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = file_size;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

static void bt_expect(calypso *db, const char *key, const char *want)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = calypso_get(db, key, strlen(key), &v, &vl);
    if (!want) {
        if (rc != CALYPSO_ENOTFOUND) print_error("%s: want absent, got %s\n", key, calypso_strerror(rc));
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        return;
    }
    TU_OK(db, rc);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(v, want, vl);
    calypso_free(v);
}

static void bt_semantics_check(calypso *db)
{
    bt_expect(db, "a", "a2");       /* put twice: the later wins            */
    bt_expect(db, "b", NULL);       /* put then deleted                     */
    bt_expect(db, "c", "c-again");  /* deleted then put again               */
    bt_expect(db, "old", NULL);     /* deleted: it existed before           */
    bt_expect(db, "keep", "k");     /* untouched                            */
    bt_expect(db, "empty", "");     /* an empty value is a value            */
    bt_expect(db, "ttl", "t");
    uint64_t at = 0;
    TU_OK(db, calypso_ttl(db, "ttl", 3, &at));
    assert_true(at > 0);
    assert_int_equal(calypso_len(db), 5);
}

static void test_batch_semantics(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = bt_opts(1 << 20);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "old", 3, "o", 1));
    TU_OK(db, calypso_put(db, "keep", 4, "k", 1));
    TU_OK(db, calypso_put(db, "c", 1, "c0", 2));

    /* empty batch; abort; only deletes of absent keys: nothing written */
    struct calypso_stats s0, s1;
    TU_OK(db, calypso_stats(db, &s0));
    calypso_batch *b;
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_commit(b));
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_put(b, "never", 5, "x", 1));
    calypso_batch_abort(b);
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_delete(b, "absent1", 7));
    TU_OK(db, calypso_batch_delete(b, "absent2", 7));
    TU_OK(db, calypso_batch_commit(b));
    TU_OK(db, calypso_stats(db, &s1));
    assert_int_equal(s1.size, s0.size);
    bt_expect(db, "never", NULL);

    /* bad input: refused, the batch stays usable */
    TU_OK(db, calypso_batch_open(db, &b));
    assert_int_equal(calypso_batch_put(b, "", 0, "x", 1), CALYPSO_EEMPTYKEY);
    assert_int_equal(calypso_batch_put(b, NULL, 3, "x", 1), CALYPSO_EINVAL);
    assert_int_equal(calypso_batch_put(b, "k", 1, NULL, 3), CALYPSO_EINVAL);
    char big[5000];
    memset(big, 'k', sizeof big);
    assert_int_equal(calypso_batch_put(b, big, sizeof big, "x", 1), CALYPSO_EKEYTOOLARGE);
    assert_int_equal(calypso_batch_delete(b, big, sizeof big), CALYPSO_EKEYTOOLARGE);

    TU_OK(db, calypso_batch_put(b, "a", 1, "a1", 2));
    TU_OK(db, calypso_batch_put(b, "b", 1, "b1", 2));
    TU_OK(db, calypso_batch_put(b, "a", 1, "a2", 2));
    TU_OK(db, calypso_batch_delete(b, "b", 1));
    TU_OK(db, calypso_batch_delete(b, "b", 1));      /* absent by then: nothing */
    TU_OK(db, calypso_batch_delete(b, "c", 1));
    TU_OK(db, calypso_batch_put(b, "c", 1, "c-again", 7));
    TU_OK(db, calypso_batch_delete(b, "old", 3));
    TU_OK(db, calypso_batch_put(b, "empty", 5, NULL, 0));
    TU_OK(db, calypso_batch_put_ttl(b, "ttl", 3, "t", 1, 3600000));
    /* not visible before the commit */
    bt_expect(db, "a", NULL);
    TU_OK(db, calypso_batch_commit(b));
    bt_semantics_check(db);

    /* across a reopen from the active file's hint, then from the datafile */
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    bt_semantics_check(db);
    TU_OK(db, calypso_close(db));
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -f %s/*.hint", dir);
    assert_int_equal(system(cmd), 0);
    TU_OK(NULL, calypso_open(dir, &o, &db));
    bt_semantics_check(db);
    /* a merge copying in key order, then one copying file by file */
    TU_OK(db, calypso_merge(db));
    bt_semantics_check(db);
    TU_OK(db, calypso_close(db));
    calypso_options few = o;
    few.max_open_files = 1;
    TU_OK(NULL, calypso_open(dir, &few, &db));
    TU_OK(db, calypso_put(db, "x", 1, "x", 1));
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_put(b, "a", 1, "a2", 2));
    TU_OK(db, calypso_batch_delete(b, "x", 1));
    TU_OK(db, calypso_batch_commit(b));
    TU_OK(db, calypso_merge(db));       /* rotates the batch into a sealed input */
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_put(b, "z", 1, "z", 1));
    TU_OK(db, calypso_batch_commit(b));
    TU_OK(db, calypso_merge(db));
    bt_expect(db, "z", "z");
    bt_expect(db, "x", NULL);
    TU_OK(db, calypso_delete(db, "z", 1));
    bt_semantics_check(db);
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    bt_semantics_check(db);
    TU_OK(db, calypso_close(db));

    /* read-only handles cannot open a batch */
    calypso_options ro = o;
    ro.read_only = 1;
    TU_OK(NULL, calypso_open(dir, &ro, &db));
    assert_int_equal(calypso_batch_open(db, &b), CALYPSO_EREADONLY);
    assert_null(b);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* The limit: operations of 8-byte keys and 4044-byte values take 4094
 * bytes each with their framing, and a batch's own header 32, so 16 fill
 * a 65536-byte datafile exactly. */
static void test_batch_size_limit(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = bt_opts(65536);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    static char val[4045];
    memset(val, 'v', sizeof val);
    calypso_batch *b;
    TU_OK(db, calypso_batch_open(db, &b));
    char k[16];
    for (int i = 0; i < 16; i++) {
        snprintf(k, sizeof k, "key%05d", i);
        TU_OK(db, calypso_batch_put(b, k, 8, val, 4044));
    }
    /* one more byte of anything is past the limit, and is not added */
    assert_int_equal(calypso_batch_put(b, "key99999", 8, val, 0), CALYPSO_EVALUETOOLARGE);
    assert_non_null(strstr(calypso_errmsg(db), "max_datafile_size"));
    TU_OK(db, calypso_batch_commit(b));
    assert_int_equal(calypso_len(db), 16);
    bt_expect(db, "key99999", NULL);

    /* one byte less room: the 16th operation is refused */
    TU_OK(db, calypso_batch_open(db, &b));
    for (int i = 0; i < 15; i++) {
        snprintf(k, sizeof k, "new%05d", i);
        TU_OK(db, calypso_batch_put(b, k, 8, val, 4044));
    }
    assert_int_equal(calypso_batch_put(b, "new00015", 8, val, 4045), CALYPSO_EVALUETOOLARGE);
    TU_OK(db, calypso_batch_put(b, "new00015", 8, val, 4044));
    TU_OK(db, calypso_batch_commit(b));
    assert_int_equal(calypso_len(db), 32);
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    assert_int_equal(calypso_len(db), 32);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

// >> torn and damaged batches ---------------------------------------------------------

static uint64_t bt_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static void bt_copy(const char *from, const char *to)
{
    char cmd[8400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", to, from, to);
    assert_int_equal(system(cmd), 0);
}

/* A database whose newest datafile ends with a batch: 100 plain puts, then
 * a batch of 20 puts and 5 deletes of the plain keys. Returns the batch's
 * offset range in 0000000001.data. */
static void bt_make_tail_batch(const char *dir, uint64_t *from, uint64_t *to)
{
    calypso_options o = bt_opts(1 << 20);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char k[16], v[64];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "p%03d", i);
        snprintf(v, sizeof v, "plain value %d", i);
        TU_OK(db, calypso_put(db, k, strlen(k), v, strlen(v)));
    }
    TU_OK(db, calypso_sync(db));
    char path[4200];
    snprintf(path, sizeof path, "%s/0000000001.data", dir);
    struct calypso_stats st;
    TU_OK(db, calypso_stats(db, &st));
    calypso_batch *b;
    TU_OK(db, calypso_batch_open(db, &b));
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "b%03d", i);
        snprintf(v, sizeof v, "batch value %d", i);
        TU_OK(db, calypso_batch_put(b, k, strlen(k), v, strlen(v)));
    }
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof k, "p%03d", i);
        TU_OK(db, calypso_batch_delete(b, k, strlen(k)));
    }
    TU_OK(db, calypso_batch_commit(b));
    (void)st;
    TU_OK(db, calypso_close(db));   /* cuts the preallocated tail */
    *to = bt_file_size(path);
    *from = 0;
    {
        /* The batch is the last record: find where it starts. */
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        uint8_t *buf = malloc(*to);
        assert_int_equal(pread(fd, buf, *to, 0), (ssize_t)*to);
        close(fd);
        uint64_t off = 0;
        while (off < *to) {
            cy_rec r;
            assert_int_equal(cy_rec_parse(buf + off, *to - off, &r), 1);
            if (r.type == CY_REC_BATCH) { *from = off; break; }
            off += r.hdr + r.klen + r.vlen;
        }
        free(buf);
    }
    assert_true(*from > 0 && *from < *to);
}

static void bt_check_tail(calypso *db, int batch_there)
{
    char k[16], v[64];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "p%03d", i);
        snprintf(v, sizeof v, "plain value %d", i);
        bt_expect(db, k, batch_there && i < 5 ? NULL : v);
    }
    for (int i = 0; i < 20; i++) {
        snprintf(k, sizeof k, "b%03d", i);
        snprintf(v, sizeof v, "batch value %d", i);
        bt_expect(db, k, batch_there ? v : NULL);
    }
}

static void test_batch_torn_at_every_byte(void **state)
{
    (void)state;
    char *tmpl = tu_tmpdir(), *dir = tu_tmpdir();
    uint64_t from, to;
    bt_make_tail_batch(tmpl, &from, &to);
    calypso_options o = bt_opts(1 << 20);
    int cuts = 0;
    for (uint64_t len = from; len <= to; len++) {
        bt_copy(tmpl, dir);
        char path[4200];
        /* What a crash leaves: no hint past the sync, no watermark past it. */
        snprintf(path, sizeof path, "%s/0000000001.hint", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/WATERMARK", dir);
        unlink(path);
        snprintf(path, sizeof path, "%s/0000000001.data", dir);
        assert_int_equal(truncate(path, (off_t)len), 0);
        calypso *db;
        int rc = calypso_open(dir, &o, &db);
        if (rc) print_error("cut at %llu of %llu..%llu: open -> %s: %s\n",
                            (unsigned long long)len, (unsigned long long)from,
                            (unsigned long long)to, calypso_strerror(rc), calypso_errmsg(NULL));
        TU_OK(NULL, rc);
        bt_check_tail(db, len == to);
        TU_OK(db, calypso_close(db));
        cuts++;
    }
    print_message("%d cuts of a %llu-byte batch: whole or absent each time\n", cuts,
                  (unsigned long long)(to - from));
    tu_rmrf(tmpl);
    tu_rmrf(dir);
}

/* A byte flipped in the batch (its header, its checksum, a record inside)
 * with a valid record after it: damage, not a torn tail. */
static void test_batch_damaged(void **state)
{
    (void)state;
    char *tmpl = tu_tmpdir(), *dir = tu_tmpdir();
    uint64_t from, to;
    bt_make_tail_batch(tmpl, &from, &to);
    calypso_options o = bt_opts(1 << 20);
    {
        calypso *db;   /* a record after the batch */
        TU_OK(NULL, calypso_open(tmpl, &o, &db));
        TU_OK(db, calypso_put(db, "after", 5, "a", 1));
        TU_OK(db, calypso_close(db));
    }
    uint64_t at[] = { from, from + 2, from + 4, from + 5, from + 6, (from + to) / 2, to - 1 };
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        for (int auto_rec = 0; auto_rec < 2; auto_rec++) {
            bt_copy(tmpl, dir);
            char path[4200];
            snprintf(path, sizeof path, "%s/0000000001.hint", dir);
            unlink(path);
            snprintf(path, sizeof path, "%s/0000000001.data", dir);
            int fd = open(path, O_RDWR);
            uint8_t c;
            assert_int_equal(pread(fd, &c, 1, (off_t)at[i]), 1);
            c ^= 0x5a;
            assert_int_equal(pwrite(fd, &c, 1, (off_t)at[i]), 1);
            close(fd);
            calypso_options oo = o;
            oo.auto_recovery = auto_rec;
            calypso *db;
            int rc = calypso_open(dir, &oo, &db);
            if (!auto_rec) {
                assert_int_equal(rc, CALYPSO_ECORRUPT);
                continue;
            }
            TU_OK(NULL, rc);
            bt_check_tail(db, 0);          /* the whole batch dropped, no part of it */
            TU_OK(db, calypso_close(db));
        }
    }
    tu_rmrf(tmpl);
    tu_rmrf(dir);
}

// >> readers see whole batches ------------------------------------------------------------

#define RW_KEYS 50

/* No merge runs here: a cursor whose window's file a merge removed reads
 * that key's current value instead, by design (calypso.h); a window is one
 * state of the keydir, which is what this checks. */

typedef struct rw_run { calypso *db; int stop; uint64_t commits; } rw_run;
typedef struct rw_reader_arg { rw_run *r; int bad; char why[200]; uint64_t windows; } rw_reader_arg;

static void *rw_writer(void *arg)
{
    rw_run *r = arg;
    for (uint64_t ver = 1; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); ver++) {
        calypso_batch *b;
        if (calypso_batch_open(r->db, &b)) break;
        char k[16], v[32];
        for (int i = 0; i < RW_KEYS; i++) {
            snprintf(k, sizeof k, "k%03d", i);
            int vl = snprintf(v, sizeof v, "%llu", (unsigned long long)ver);
            if (calypso_batch_put(b, k, 4, v, (size_t)vl)) break;
        }
        if (calypso_batch_commit(b)) break;
        __atomic_add_fetch(&r->commits, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void *rw_reader(void *arg)
{
    rw_reader_arg *me = arg;
    rw_run *r = me->r;
    calypso_cursor *c;
    if (calypso_cursor_open(r->db, &c)) return NULL;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE) && !me->bad) {
        if (calypso_cursor_first(c) != CALYPSO_OK) continue;   /* before the first batch */
        char first[32] = "";
        int n = 0;
        do {
            const void *v;
            size_t vl;
            if (calypso_cursor_value(c, &v, &vl)) { me->bad = 1; snprintf(me->why, sizeof me->why, "value failed"); break; }
            if (n == 0) snprintf(first, sizeof first, "%.*s", (int)vl, (const char *)v);
            else if (strlen(first) != vl || memcmp(first, v, vl) != 0) {
                me->bad = 1;
                snprintf(me->why, sizeof me->why, "key %d has version %.*s, key 0 has %s", n,
                         (int)vl, (const char *)v, first);
                break;
            }
            n++;
        } while (calypso_cursor_next(c) == CALYPSO_OK);
        if (!me->bad && n != RW_KEYS) { me->bad = 1; snprintf(me->why, sizeof me->why, "%d keys", n); }
        me->windows++;
    }
    calypso_cursor_close(c);
    return NULL;
}

static void test_batch_seen_whole(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = bt_opts(256 << 10);
    rw_run r = { 0 };
    TU_OK(NULL, calypso_open(dir, &o, &r.db));
    pthread_t w, rd[2];
    rw_reader_arg ra[2] = { { &r, 0, "", 0 }, { &r, 0, "", 0 } };
    assert_int_equal(pthread_create(&w, NULL, rw_writer, &r), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&rd[i], NULL, rw_reader, &ra[i]), 0);
    sleep(2);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(w, NULL);
    for (int i = 0; i < 2; i++) pthread_join(rd[i], NULL);
    print_message("%llu batches committed, %llu + %llu windows read whole\n",
                  (unsigned long long)r.commits, (unsigned long long)ra[0].windows,
                  (unsigned long long)ra[1].windows);
    for (int i = 0; i < 2; i++) if (ra[i].bad) print_error("%s\n", ra[i].why);
    assert_false(ra[0].bad || ra[1].bad);
    assert_true(r.commits > 0 && ra[0].windows > 0);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
}

// >> durability cost and memory ------------------------------------------------------------

static void test_batch_one_sync(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = bt_opts(1 << 20);
    o.sync = CALYPSO_SYNC_ALWAYS;
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    calypso_batch *b;
    TU_OK(db, calypso_batch_open(db, &b));
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        TU_OK(db, calypso_batch_put(b, k, 4, "v", 1));
    }
    uint64_t before = cy_os_count(CY_OS_FDATASYNC);
    TU_OK(db, calypso_batch_commit(b));
    assert_int_equal(cy_os_count(CY_OS_FDATASYNC) - before, 1);
    assert_int_equal(calypso_len(db), 100);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_batch_out_of_memory(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = bt_opts(1 << 20);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char k[16];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "base%03d", i);
        TU_OK(db, calypso_put_ttl(db, k, strlen(k), "old", 3, i % 2 ? 3600000 : 0));
    }
    int failures = 0;
    for (uint64_t nth = 1; nth < 2000; nth++) {
        calypso_batch *b;
        TU_OK(db, calypso_batch_open(db, &b));
        for (int i = 0; i < 300; i++) {
            snprintf(k, sizeof k, i < 200 ? "base%03d" : "new%03d", i);
            if (i % 3 == 0 && i < 200) TU_OK(db, calypso_batch_delete(b, k, strlen(k)));
            else TU_OK(db, calypso_batch_put_ttl(b, k, strlen(k), "new", 3, i % 4 ? 0 : 3600000));
        }
        struct calypso_stats s0, s1;
        TU_OK(db, calypso_stats(db, &s0));
        cy_alloc_fail_at(nth, 0);
        int rc = calypso_batch_commit(b);
        cy_alloc_fail_at(0, 0);
        if (rc == CALYPSO_OK) break;
        assert_int_equal(rc, CALYPSO_ENOMEM);
        failures++;
        /* nothing of it applied: every key as before */
        for (int i = 0; i < 300; i++) {
            snprintf(k, sizeof k, i < 200 ? "base%03d" : "new%03d", i);
            bt_expect(db, k, i < 200 ? "old" : NULL);
            if (i < 200) {
                uint64_t at = 0;
                TU_OK(db, calypso_ttl(db, k, strlen(k), &at));
                assert_int_equal(at != 0, i % 2);
            }
        }
        TU_OK(db, calypso_stats(db, &s1));
        assert_int_equal(s1.keys, 200);
        assert_int_equal(s1.reclaimable, s0.reclaimable);
    }
    print_message("%d commits failed for memory before one went through\n", failures);
    assert_true(failures > 0);
    assert_int_equal(calypso_len(db), 300 - 67);
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    assert_int_equal(calypso_len(db), 300 - 67);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

// >> crash atomicity -------------------------------------------------------------------

/* Batch n holds keys "n<n>-<i>" for i < size(n), each valued "<n>". */
static int bt_batch_size(uint64_t seed, uint32_t n)
{
    uint64_t x = seed ^ (n * 0x9e3779b97f4a7c15ull);
    x ^= x >> 31; x *= 0xbf58476d1ce4e5b9ull; x ^= x >> 29;
    return 1 + (int)(x % 50);
}

/* The child: commits batches from `first` on until killed, reporting each
 * returned commit's number on the pipe. */
static void bt_child(const char *dir, int sync, uint64_t seed, uint32_t first, int fd)
{
    calypso_options o = bt_opts(128 << 10);
    o.sync = sync;
    o.merge_trigger_ratio = 0.3;           /* merges happen too */
    o.merge_min_dead_bytes = 1;
    calypso *db;
    if (calypso_open(dir, &o, &db)) _exit(3);
    for (uint32_t n = first;; n++) {
        calypso_batch *b;
        if (calypso_batch_open(db, &b)) _exit(4);
        char k[32], v[16];
        int vl = snprintf(v, sizeof v, "%u", n);
        int size = bt_batch_size(seed, n);
        for (int i = 0; i < size; i++) {
            int kl = snprintf(k, sizeof k, "n%06u-%02d", n, i);
            if (calypso_batch_put(b, k, (size_t)kl, v, (size_t)vl)) _exit(5);
        }
        /* and delete the previous batch's first key: deletes ride along */
        if (n > 0) {
            int kl = snprintf(k, sizeof k, "n%06u-%02d", n - 1, 0);
            if (calypso_batch_delete(b, k, (size_t)kl)) _exit(6);
        }
        if (calypso_batch_commit(b)) _exit(7);
        if (write(fd, &n, sizeof n) != (ssize_t)sizeof n) _exit(8);
    }
}

typedef struct bt_seen { uint32_t max_n; int *count; } bt_seen;

static int bt_count_key(const void *k, size_t klen, void *ctx)
{
    bt_seen *s = ctx;
    unsigned n = 0;
    int i = 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)klen, (const char *)k);
    if (sscanf(buf, "n%6u-%2d", &n, &i) == 2 && n <= s->max_n) s->count[n]++;
    return 0;
}

static void test_batch_crash_atomicity(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_batch_crash_atomicity");
    const char *env = getenv("CALYPSO_BATCH_CYCLES");
    int cycles = env ? atoi(env) : 12;
    uint64_t rng = seed;
    for (int mode = 0; mode < 3; mode++) {
        char *dir = tu_tmpdir();
        uint32_t next = 0, acked_max = 0;
        int have_ack = 0;
        for (int cyc = 0; cyc < cycles; cyc++) {
            int p[2];
            assert_int_equal(pipe(p), 0);
            pid_t pid = fork();
            assert_true(pid >= 0);
            if (pid == 0) {
                close(p[0]);
                bt_child(dir, mode, seed, next, p[1]);
                _exit(0);
            }
            close(p[1]);
            usleep((useconds_t)(5000 + tu_below(&rng, 60000)));
            kill(pid, SIGKILL);
            int st = 0;
            waitpid(pid, &st, 0);
            assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
            uint32_t n;
            while (read(p[0], &n, sizeof n) == (ssize_t)sizeof n) {
                acked_max = n;
                have_ack = 1;
            }
            close(p[0]);
            calypso_options o = bt_opts(128 << 10);
            calypso *db;
            TU_OK(NULL, calypso_open(dir, &o, &db));
            uint32_t top = next + 100000;
            int *count = calloc(top + 1, sizeof *count);
            bt_seen s = { top, count };
            TU_OK(db, calypso_fold(db, bt_count_key, &s));
            /* Each batch whole or absent. A batch's key 0 is deleted by the
             * next batch: whole means size, or size - 1 when the next one
             * is there. */
            uint32_t last = 0;
            int any = 0;
            for (uint32_t b = 0; b <= top; b++) if (count[b]) last = b, any = 1;
            for (uint32_t b = 0; any && b <= last; b++) {
                int size = bt_batch_size(seed, b);
                int want = size - (b < last ? 1 : 0);
                if (count[b] != want) {
                    print_error("mode %d cycle %d: batch %u has %d of its %d keys (last %u)\n",
                                mode, cyc, b, count[b], want, last);
                }
                assert_int_equal(count[b], want);
            }
            /* every acknowledged batch is there under SYNC_ALWAYS (and,
             * since only the process died, under the others too) */
            if (have_ack) assert_true(any && last >= acked_max);
            next = any ? last + 1 : 0;
            free(count);
            TU_OK(db, calypso_close(db));
        }
        print_message("sync mode %d: %d kills, batches 0..%u whole\n", mode, cycles, next - 1);
        tu_rmrf(dir);
    }
}

/* Power loss during batch commits under SYNC_ALWAYS: the child commits
 * batches with the power-loss simulator tracking every file, a crash
 * before a random table call drops a random subset of the unsynced pages
 * and ends the child; reopened (no auto_recovery), every batch is whole or
 * absent and every batch whose commit returned is whole. */
static void bt_powerloss_child(const char *dir, uint64_t seed, uint64_t n, int fd)
{
    calypso_options o = bt_opts(64 << 10);
    o.sync = CALYPSO_SYNC_ALWAYS;
    cy_os_powerloss_begin();
    cy_os_powerloss_crash_at(n, CY_OS_PL_PAGES | CY_OS_PL_EXIT, seed ^ (n * 0x9e3779b97f4a7c15ull));
    calypso *db;
    if (calypso_open(dir, &o, &db)) _exit(0);   /* the crash may hit the open */
    for (uint32_t b = 0;; b++) {
        calypso_batch *bt;
        if (calypso_batch_open(db, &bt)) _exit(0);
        char k[32], v[16];
        int vl = snprintf(v, sizeof v, "%u", b);
        int size = bt_batch_size(seed, b);
        for (int i = 0; i < size; i++) {
            int kl = snprintf(k, sizeof k, "n%06u-%02d", b, i);
            if (calypso_batch_put(bt, k, (size_t)kl, v, (size_t)vl)) _exit(5);
        }
        if (calypso_batch_commit(bt)) _exit(0);   /* the machine is off */
        if (write(fd, &b, sizeof b) != (ssize_t)sizeof b) _exit(8);
    }
}

static void test_batch_power_loss(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_batch_power_loss");
    const char *env = getenv("CALYPSO_BATCH_CYCLES");
    int cycles = env ? atoi(env) * 2 : 24;
    uint64_t rng = seed;
    int crashed = 0;
    for (int cyc = 0; cyc < cycles; cyc++) {
        char *dir = tu_tmpdir();
        uint64_t n = 20 + tu_below(&rng, 400);
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            bt_powerloss_child(dir, seed + (uint64_t)cyc, n, p[1]);
            _exit(0);
        }
        close(p[1]);
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        uint32_t b, acked = 0;
        int have = 0;
        while (read(p[0], &b, sizeof b) == (ssize_t)sizeof b) { acked = b; have = 1; }
        close(p[0]);
        calypso_options o = bt_opts(64 << 10);
        calypso *db;
        int rc = calypso_open(dir, &o, &db);
        if (rc == CALYPSO_OK || have) {
            TU_OK(NULL, rc);
            int *count = calloc(100001, sizeof *count);
            bt_seen s = { 100000, count };
            TU_OK(db, calypso_fold(db, bt_count_key, &s));
            for (uint32_t i = 0; i <= 100000; i++) {
                int size = bt_batch_size(seed + (uint64_t)cyc, i);
                if (count[i] != 0 && count[i] != size)
                    print_error("cycle %d: batch %u has %d of its %d keys\n", cyc, i, count[i], size);
                assert_true(count[i] == 0 || count[i] == size);
                if (have && i <= acked) assert_int_equal(count[i], size);
            }
            free(count);
            TU_OK(db, calypso_close(db));
        } else {
            /* the crash came before the database was created whole: it
             * must still open empty or not at all, never half */
            assert_true(rc == CALYPSO_OK || rc == CALYPSO_ECORRUPT || rc == CALYPSO_EIO ||
                        rc == CALYPSO_EVERSION);
        }
        crashed++;
        tu_rmrf(dir);
    }
    print_message("%d power losses during batch commits: every batch whole or absent\n", crashed);
}

/* A sift's deletions are one batch: cut it anywhere by a crash and none of
 * them happened. */
static int bt_sift_odd(const void *k, size_t klen, void *ctx)
{
    (void)ctx;
    return (((const char *)k)[klen - 1] - '0') % 2;
}

static void test_sift_is_one_batch(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *cut = tu_tmpdir();
    calypso_options o = bt_opts(1 << 20);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "s%03d", i);
        TU_OK(db, calypso_put(db, k, 4, "v", 1));
    }
    TU_OK(db, calypso_sync(db));
    TU_OK(db, calypso_sift(db, bt_sift_odd, NULL));
    assert_int_equal(calypso_len(db), 50);
    TU_OK(db, calypso_close(db));
    char path[4200];
    snprintf(path, sizeof path, "%s/0000000001.data", dir);
    uint64_t size = bt_file_size(path);
    int fd = open(path, O_RDONLY);
    uint8_t *buf = malloc(size);
    assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
    close(fd);
    uint64_t off = 0, batch_at = 0;
    int batches = 0;
    while (off < size) {
        cy_rec r;
        assert_int_equal(cy_rec_parse(buf + off, size - off, &r), 1);
        if (r.type == CY_REC_BATCH) { batch_at = off; batches++; }
        off += r.hdr + r.klen + r.vlen;
    }
    free(buf);
    assert_int_equal(batches, 1);
    for (uint64_t len = batch_at + 1; len < size; len += 97) {
        bt_copy(dir, cut);
        snprintf(path, sizeof path, "%s/0000000001.hint", cut);
        unlink(path);
        snprintf(path, sizeof path, "%s/WATERMARK", cut);
        unlink(path);
        snprintf(path, sizeof path, "%s/0000000001.data", cut);
        assert_int_equal(truncate(path, (off_t)len), 0);
        TU_OK(NULL, calypso_open(cut, &o, &db));
        assert_int_equal(calypso_len(db), 100);    /* none of the deletions */
        TU_OK(db, calypso_close(db));
    }
    tu_rmrf(dir);
    tu_rmrf(cut);
}

/* Batch records in the regular datafiles of dir, and the records inside
 * them (into per[], one count per batch in file order). */
static int bt_count_batches(const char *dir, uint64_t *per, int cap)
{
    int batches = 0;
    char path[4200];
    for (uint32_t fid = 1; fid < 64; fid++) {
        snprintf(path, sizeof path, "%s/%010u.data", dir, fid);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        uint64_t size = bt_file_size(path);
        uint8_t *buf = malloc(size + 1);
        assert_int_equal(pread(fd, buf, size, 0), (ssize_t)size);
        close(fd);
        for (uint64_t off = 0; off < size;) {
            cy_rec r;
            assert_int_equal(cy_rec_parse(buf + off, size - off, &r), 1);
            if (r.type == CY_REC_BATCH) {
                assert_true(batches < cap);
                per[batches] = 0;
                for (uint64_t at = r.hdr; at < r.hdr + r.vlen;) {
                    cy_rec in;
                    assert_int_equal(cy_rec_parse(buf + off + at, r.hdr + r.vlen - at, &in), 1);
                    assert_int_equal(in.type, CY_REC_DEL);
                    per[batches]++;
                    at += in.hdr + in.klen + in.vlen;
                }
                batches++;
            }
            off += r.hdr + r.klen + r.vlen;
        }
        free(buf);
    }
    return batches;
}

/* delete_all is one batch exactly while every tombstone fits a datafile
 * (as calypso_batch counts: a record header and a victim id per key, one
 * header for the batch); one key more and it is two rounds, each one
 * batch. */
static void test_delete_all_one_batch_up_to_a_datafile(void **state)
{
    (void)state;
    const uint64_t file = 65536, per_key = CY_REC_MAX_HDR + 10 + 8;
    const int fit = (int)((file - CY_REC_MAX_HDR) / per_key);
    for (int extra = 0; extra <= 1; extra++) {
        char *dir = tu_tmpdir();
        calypso_options o = bt_opts(file);
        calypso *db;
        TU_OK(NULL, calypso_open(dir, &o, &db));
        char k[16];
        for (int i = 0; i < fit + extra; i++) {
            snprintf(k, sizeof k, "d%07d", i);
            TU_OK(db, calypso_put(db, k, 8, "v", 1));
        }
        TU_OK(db, calypso_delete_all(db));
        assert_int_equal(calypso_len(db), 0);
        TU_OK(db, calypso_close(db));
        uint64_t per[4];
        int n = bt_count_batches(dir, per, 4);
        print_message("delete_all of %d keys: %d batch(es), the first of %llu\n", fit + extra, n,
                      (unsigned long long)per[0]);
        assert_int_equal(n, 1 + extra);
        assert_int_equal(per[0], (uint64_t)fit);
        if (extra) assert_int_equal(per[1], 1);
        TU_OK(NULL, calypso_open(dir, &o, &db));
        assert_int_equal(calypso_len(db), 0);
        TU_OK(db, calypso_close(db));
        tu_rmrf(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_semantics),
        cmocka_unit_test(test_batch_size_limit),
        cmocka_unit_test(test_batch_torn_at_every_byte),
        cmocka_unit_test(test_batch_damaged),
        cmocka_unit_test(test_batch_seen_whole),
        cmocka_unit_test(test_batch_one_sync),
        cmocka_unit_test(test_batch_out_of_memory),
        cmocka_unit_test(test_batch_crash_atomicity),
        cmocka_unit_test(test_batch_power_loss),
        cmocka_unit_test(test_sift_is_one_batch),
        cmocka_unit_test(test_delete_all_one_batch_up_to_a_datafile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
