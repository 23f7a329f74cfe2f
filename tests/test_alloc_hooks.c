/*
 * test_alloc_hooks.c: calypso_config_allocator, the application's allocator.
 *
 * A counting allocator keeps every block it hands out in a registry (a
 * pointer set) and behind a header that holds its size, so it knows the
 * live blocks and bytes at any moment and can tell a block it allocated
 * from one it did not. Installed through the public API, it serves:
 *
 * - a whole life of a database: open, puts with and without TTL, gets
 *   (freed with calypso_free), get_buf, has, walks, sift, batches
 *   (committed and aborted), update and view transactions (function and
 *   begin/commit/rollback forms, a read into a new buffer, a cursor inside
 *   a view), cursors, delete_all, stats, run_gc, merge over several
 *   datafiles, reopen, backup (and the copy opened), a second thread
 *   writing and reading beside the first, close. Afterwards no block is
 *   live (nothing leaked through it), it saw no free or realloc of a block
 *   it did not allocate (nothing bypassed it on the way in), and its
 *   allocation count grew (the calls really went through it);
 * - out of memory: an allocator that fails its nth allocation, for every n
 *   an open needs: the open fails with CALYPSO_ENOMEM or succeeds, and
 *   nothing stays live once it is closed; the same for a get;
 * - the test layer (the allocation countdown of src/alloc_fault.c) lies
 *   over it: a failure it injects never reaches the configured allocator;
 * - when it may change: refused (CALYPSO_EINVAL, nothing changed) while a
 *   handle is open, two handles too until the second is closed, accepted
 *   once every handle is closed and after a failed open; a NULL among the
 *   three is CALYPSO_EINVAL; all three NULL restores libc (the counter then
 *   sees nothing).
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"

#include <pthread.h>
#include <sys/stat.h>

// >> the counting allocator ----------------------------------------------------------

#define CA_HDR 16u                 /* keeps malloc's 16-byte alignment */
#define CA_SLOTS (1u << 20)        /* registry capacity (live blocks)  */

static pthread_mutex_t ca_mu = PTHREAD_MUTEX_INITIALIZER;
static void *ca_set[CA_SLOTS];     /* user pointers of the live blocks */
static uint64_t ca_live, ca_bytes, ca_allocs, ca_foreign;
static uint64_t ca_fail_at;        /* 1-based allocation that fails; 0 never */

static size_t ca_slot(const void *p)
{
    uint64_t h = (uint64_t)(uintptr_t)p * 0x9e3779b97f4a7c15ull;
    return (size_t)(h >> 44) & (CA_SLOTS - 1);
}

static void ca_add(void *p)
{
    size_t i = ca_slot(p);
    while (ca_set[i]) i = (i + 1) & (CA_SLOTS - 1);
    ca_set[i] = p;
}

/* Removes p (backward-shift deletion keeps linear probing exact); 0 if p
 * is not a block of ours. */
static int ca_remove(void *p)
{
    size_t i = ca_slot(p);
    while (ca_set[i] && ca_set[i] != p) i = (i + 1) & (CA_SLOTS - 1);
    if (!ca_set[i]) return 0;
    size_t j = i;
    for (;;) {
        ca_set[i] = NULL;
        for (;;) {
            j = (j + 1) & (CA_SLOTS - 1);
            if (!ca_set[j]) return 1;
            size_t home = ca_slot(ca_set[j]);
            /* move ca_set[j] into the hole at i unless its home lies in (i, j] */
            int stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
            if (!stays) break;
        }
        ca_set[i] = ca_set[j];
        i = j;
    }
}

static int ca_should_fail(void)
{
    ca_allocs++;
    return ca_fail_at && ca_allocs == ca_fail_at;
}

static void *ca_malloc(size_t n)
{
    pthread_mutex_lock(&ca_mu);
    void *p = NULL;
    if (n && !ca_should_fail() && ca_live < CA_SLOTS / 2) {
        char *b = malloc(CA_HDR + n);
        if (b) {
            memcpy(b, &n, sizeof n);
            p = b + CA_HDR;
            ca_add(p);
            ca_live++;
            ca_bytes += n;
        }
    }
    pthread_mutex_unlock(&ca_mu);
    return p;
}

static void ca_free(void *p)
{
    if (!p) return;
    pthread_mutex_lock(&ca_mu);
    if (!ca_remove(p)) {
        ca_foreign++;   /* not ours: something bypassed us; leave it alone */
    } else {
        char *b = (char *)p - CA_HDR;
        size_t n;
        memcpy(&n, b, sizeof n);
        ca_live--;
        ca_bytes -= n;
        free(b);
    }
    pthread_mutex_unlock(&ca_mu);
}

static void *ca_realloc(void *p, size_t n)
{
    pthread_mutex_lock(&ca_mu);
    void *q = NULL;
    if (!p || !n) {
        ca_foreign++;   /* calypso promises neither */
    } else if (!ca_remove(p)) {
        ca_foreign++;
    } else if (ca_should_fail()) {
        ca_add(p);      /* a failed realloc leaves the block alone */
    } else {
        char *b = (char *)p - CA_HDR;
        size_t old;
        memcpy(&old, b, sizeof old);
        char *nb = realloc(b, CA_HDR + n);
        if (!nb) {
            ca_add(p);
        } else {
            memcpy(nb, &n, sizeof n);
            q = nb + CA_HDR;
            ca_add(q);
            ca_bytes = ca_bytes - old + n;
        }
    }
    pthread_mutex_unlock(&ca_mu);
    return q;
}

typedef struct { uint64_t live, bytes, allocs, foreign; } ca_counts;

static ca_counts ca_now(void)
{
    pthread_mutex_lock(&ca_mu);
    ca_counts c = { ca_live, ca_bytes, ca_allocs, ca_foreign };
    pthread_mutex_unlock(&ca_mu);
    return c;
}

static void ca_fail_nth(uint64_t nth)
{
    pthread_mutex_lock(&ca_mu);
    ca_allocs = 0;
    ca_fail_at = nth;
    pthread_mutex_unlock(&ca_mu);
}

static void ca_install(void)
{
    assert_int_equal(calypso_config_allocator(ca_malloc, ca_realloc, ca_free), CALYPSO_OK);
}

static void ca_uninstall(void)
{
    assert_int_equal(calypso_config_allocator(NULL, NULL, NULL), CALYPSO_OK);
}

/* Nothing live, nothing foreign. */
static void ca_expect_clean(const char *after)
{
    ca_counts c = ca_now();
    if (c.live || c.bytes || c.foreign)
        print_error("after %s: %llu blocks (%llu bytes) live, %llu frees/reallocs of blocks "
                    "the allocator never made\n", after, (unsigned long long)c.live,
                    (unsigned long long)c.bytes, (unsigned long long)c.foreign);
    assert_int_equal(c.live, 0);
    assert_int_equal(c.bytes, 0);
    assert_int_equal(c.foreign, 0);
}

// >> helpers ---------------------------------------------------------------------------

static calypso_options ah_opts(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 4096;   /* several datafiles, so merge has work */
    o.ttl_sweep_interval_ms = 1;  /* the sweeper allocates on its thread */
    return o;
}

static calypso *ah_open(const char *path)
{
    calypso_options o = ah_opts();
    calypso *db = NULL;
    TU_OK(NULL, calypso_open(path, &o, &db));
    return db;
}

static void ah_put(calypso *db, int i, int ver)
{
    char k[32], v[64];
    int kl = snprintf(k, sizeof k, "key%05d", i);
    int vl = snprintf(v, sizeof v, "value-%d-%d-%040d", i, ver, i);
    TU_OK(db, calypso_put(db, k, (size_t)kl, v, (size_t)vl));
}

static void ah_expect(calypso *db, int i, int ver)
{
    char k[32], v[64];
    int kl = snprintf(k, sizeof k, "key%05d", i);
    int vl = snprintf(v, sizeof v, "value-%d-%d-%040d", i, ver, i);
    void *got = NULL;
    size_t glen = 0;
    TU_OK(db, calypso_get(db, k, (size_t)kl, &got, &glen));
    assert_int_equal(glen, (size_t)vl);
    assert_memory_equal(got, v, glen);
    calypso_free(got);
}

static int ah_count_key(const void *k, size_t kl, void *ctx)
{
    (void)k; (void)kl;
    (*(int *)ctx)++;
    return 0;
}

static int ah_sift_odd(const void *k, size_t kl, void *ctx)
{
    (void)ctx;
    return (((const char *)k)[kl - 1] - '0') % 2;
}

static int ah_update_fn(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    TU_OK(NULL, calypso_txn_put(tx, "tx-a", 4, "1", 1));
    TU_OK(NULL, calypso_txn_delete(tx, "key00000", 8));
    void *v = NULL;
    size_t vl = 0;
    TU_OK(NULL, calypso_txn_get(tx, "tx-a", 4, &v, &vl));
    assert_int_equal(vl, 1);
    calypso_free(v);
    return 0;
}

static int ah_view_fn(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    void *v = NULL;
    size_t vl = 0;
    TU_OK(NULL, calypso_txn_get(tx, "tx-a", 4, &v, &vl));
    calypso_free(v);
    calypso_cursor *c = NULL;
    TU_OK(NULL, calypso_txn_cursor_open(tx, &c));
    int n = 0;
    for (int rc = calypso_cursor_first(c); rc == CALYPSO_OK; rc = calypso_cursor_next(c)) n++;
    calypso_cursor_close(c);
    assert_true(n > 0);
    return 0;
}

typedef struct { calypso *db; int base; } ah_worker;

static void *ah_work(void *arg)
{
    ah_worker *w = arg;
    for (int i = 0; i < 300; i++) {
        ah_put(w->db, w->base + i, 1);
        ah_expect(w->db, w->base + i, 1);
    }
    return NULL;
}

static void ah_exercise(calypso *db, const char *backup_path)
{
    /* puts over several datafiles, overwrites (dead bytes for merge), TTLs */
    for (int ver = 0; ver < 3; ver++)
        for (int i = 0; i < 400; i++) ah_put(db, i, ver);
    for (int i = 0; i < 50; i++) {
        char k[32];
        int kl = snprintf(k, sizeof k, "ttl%03d", i);
        TU_OK(db, calypso_put_ttl(db, k, (size_t)kl, "x", 1, 1));   /* expire at once */
    }
    for (int i = 0; i < 400; i++) ah_expect(db, i, 2);
    char buf[128];
    size_t bl = 0;
    TU_OK(db, calypso_get_buf(db, "key00001", 8, buf, sizeof buf, &bl));
    assert_int_equal(calypso_has(db, "key00001", 8), 1);

    /* a second thread beside this one */
    pthread_t th;
    ah_worker w = { db, 10000 };
    assert_int_equal(pthread_create(&th, NULL, ah_work, &w), 0);
    for (int i = 0; i < 200; i++) ah_expect(db, i, 2);
    assert_int_equal(pthread_join(th, NULL), 0);

    /* walks and sift */
    int n = 0;
    TU_OK(db, calypso_fold(db, ah_count_key, &n));
    TU_OK(db, calypso_scan(db, "key001", 6, ah_count_key, &n));
    TU_OK(db, calypso_range(db, "key002", 6, "key003", 6, ah_count_key, &n));
    TU_OK(db, calypso_sift_scan(db, "key0003", 7, ah_sift_odd, NULL));

    /* batches: committed and aborted */
    calypso_batch *b = NULL;
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_put(b, "b1", 2, "v", 1));
    TU_OK(db, calypso_batch_put_ttl(b, "b2", 2, "v", 1, 3600000));
    TU_OK(db, calypso_batch_delete(b, "key00002", 8));
    TU_OK(db, calypso_batch_commit(b));
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_put(b, "b3", 2, "v", 1));
    calypso_batch_abort(b);

    /* transactions and views */
    TU_OK(db, calypso_update(db, ah_update_fn, NULL));
    calypso_txn *tx = NULL;
    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_put(tx, "tx-b", 4, "2", 1));
    TU_OK(db, calypso_txn_commit(tx));
    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_put(tx, "tx-c", 4, "3", 1));
    calypso_txn_rollback(tx);
    TU_OK(db, calypso_view(db, ah_view_fn, NULL));
    TU_OK(db, calypso_view_begin(db, &tx));
    assert_int_equal(calypso_txn_has(tx, "tx-b", 4), 1);
    calypso_txn_rollback(tx);

    /* cursors, both ways, with values */
    calypso_cursor *c = NULL;
    TU_OK(db, calypso_cursor_open(db, &c));
    int fwd = 0, back = 0;
    for (int rc = calypso_cursor_first(c); rc == CALYPSO_OK; rc = calypso_cursor_next(c)) {
        const void *v;
        size_t vl;
        TU_OK(db, calypso_cursor_value(c, &v, &vl));
        fwd++;
    }
    for (int rc = calypso_cursor_last(c); rc == CALYPSO_OK; rc = calypso_cursor_prev(c)) back++;
    assert_int_equal(fwd, back);
    TU_OK(db, calypso_cursor_seek_prefix(c, "key003", 6));
    calypso_cursor_close(c);

    /* maintenance */
    struct calypso_stats st;
    TU_OK(db, calypso_stats(db, &st));
    TU_OK(db, calypso_run_gc(db));
    TU_OK(db, calypso_merge(db));
    TU_OK(db, calypso_reopen(db));
    ah_expect(db, 398, 2);
    TU_OK(db, calypso_backup(db, backup_path));
    for (int i = 0; i < 400; i++) ah_put(db, i, 3);
    TU_OK(db, calypso_delete_all(db));
    assert_int_equal(calypso_len(db), 0);
}

// >> tests -----------------------------------------------------------------------------

/* Every allocation of a database's whole life goes through the configured
 * allocator and comes back to it. */
static void test_counts_a_whole_life(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char path[512], copy[512];
    snprintf(path, sizeof path, "%s/db", dir);
    snprintf(copy, sizeof copy, "%s/copy", dir);

    ca_install();
    ca_counts before = ca_now();
    calypso *db = ah_open(path);
    ah_exercise(db, copy);
    assert_true(ca_now().live > 0);
    TU_OK(NULL, calypso_close(db));
    ca_expect_clean("a database's life");

    /* the backup opens, holds what it was given, and closes clean */
    db = ah_open(copy);
    ah_expect(db, 4, 2);
    ah_expect(db, 398, 2);
    TU_OK(NULL, calypso_close(db));
    ca_expect_clean("opening the backup");

    /* a reopen from disk (hints, datafiles) */
    db = ah_open(path);
    assert_int_equal(calypso_len(db), 0);
    TU_OK(NULL, calypso_close(db));
    ca_expect_clean("the reopen");

    ca_counts after = ca_now();
    assert_true(after.allocs > before.allocs + 1000);
    ca_uninstall();
    tu_rmrf(dir);
}

/* The allocator failing at each allocation of an open, then of a get: a
 * clean CALYPSO_ENOMEM, and nothing live once all is closed. */
static void test_out_of_memory_through_it(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    ca_install();
    calypso *db = ah_open(path);
    for (int i = 0; i < 100; i++) ah_put(db, i, 0);
    TU_OK(NULL, calypso_close(db));
    ca_expect_clean("the setup");

    int opened = 0;
    uint64_t nth;
    for (nth = 1; nth < 100000 && !opened; nth++) {
        calypso_options o = ah_opts();
        o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
        ca_fail_nth(nth);
        db = NULL;
        int rc = calypso_open(path, &o, &db);
        ca_fail_nth(0);
        if (rc == CALYPSO_OK) {
            opened = 1;
            ah_expect(db, 99, 0);
            TU_OK(NULL, calypso_close(db));
        } else {
            if (rc != CALYPSO_ENOMEM)
                print_error("failing allocation %llu: open -> %d (%s): %s\n",
                            (unsigned long long)nth, rc, calypso_strerror(rc),
                            calypso_errmsg(NULL));
            assert_int_equal(rc, CALYPSO_ENOMEM);
            assert_null(db);
        }
        ca_expect_clean("a failed open");
    }
    assert_true(opened);
    assert_true(nth > 3);

    db = ah_open(path);
    void *v = (void *)&v;
    size_t vl = 7;
    ca_fail_nth(1);
    TU_RC(db, CALYPSO_ENOMEM, calypso_get(db, "key00005", 8, &v, &vl));
    ca_fail_nth(0);
    assert_null(v);
    assert_int_equal(vl, 0);
    ah_expect(db, 5, 0);
    TU_OK(NULL, calypso_close(db));
    ca_expect_clean("a failed get");
    ca_uninstall();
    tu_rmrf(dir);
}

/* The test layer's countdown lies over the configured allocator: the
 * failure it injects is not passed down, the next call is. */
static void test_fault_layer_over_it(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char path[512];
    snprintf(path, sizeof path, "%s/db", dir);
    ca_install();
    calypso_options o = ah_opts();
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    calypso *db = NULL;
    TU_OK(NULL, calypso_open(path, &o, &db));
    ah_put(db, 1, 0);
    uint64_t before = ca_now().allocs;
    void *v = NULL;
    size_t vl = 0;
    cy_alloc_fail_at(1, 0);
    TU_RC(db, CALYPSO_ENOMEM, calypso_get(db, "key00001", 8, &v, &vl));
    cy_alloc_fail_at(0, 0);
    assert_int_equal(ca_now().allocs, before);
    ah_expect(db, 1, 0);
    assert_true(ca_now().allocs > before);
    TU_OK(NULL, calypso_close(db));
    ca_expect_clean("the fault layer");
    ca_uninstall();
    tu_rmrf(dir);
}

static void *ah_boom_malloc(size_t n) { (void)n; abort(); }
static void *ah_boom_realloc(void *p, size_t n) { (void)p; (void)n; abort(); }
static void ah_boom_free(void *p) { (void)p; abort(); }

/* When the allocator may change, and what NULLs mean. */
static void test_when_it_may_change(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    assert_non_null(dir);
    char a[512], b[512];
    snprintf(a, sizeof a, "%s/a", dir);
    snprintf(b, sizeof b, "%s/b", dir);

    /* a NULL among the three: refused, nothing changed */
    assert_int_equal(calypso_config_allocator(ca_malloc, NULL, ca_free), CALYPSO_EINVAL);
    assert_int_equal(calypso_config_allocator(NULL, ca_realloc, NULL), CALYPSO_EINVAL);
    assert_int_equal(calypso_config_allocator(ca_malloc, ca_realloc, NULL), CALYPSO_EINVAL);
    assert_int_equal(calypso_config_allocator(NULL, NULL, ca_free), CALYPSO_EINVAL);
    uint64_t allocs = ca_now().allocs;
    calypso *db1 = ah_open(a);
    TU_OK(NULL, calypso_close(db1));
    assert_int_equal(ca_now().allocs, allocs);   /* still libc's */

    /* refused while any handle is open: the allocator in use stays */
    ca_install();
    db1 = ah_open(a);
    assert_int_equal(calypso_config_allocator(ah_boom_malloc, ah_boom_realloc, ah_boom_free),
                     CALYPSO_EINVAL);
    assert_int_equal(calypso_config_allocator(NULL, NULL, NULL), CALYPSO_EINVAL);
    calypso *db2 = ah_open(b);
    TU_OK(NULL, calypso_close(db1));
    assert_int_equal(calypso_config_allocator(NULL, NULL, NULL), CALYPSO_EINVAL);
    ah_put(db2, 1, 0);
    ah_expect(db2, 1, 0);                        /* the counter, not boom, serves */
    TU_OK(NULL, calypso_close(db2));
    ca_expect_clean("two handles");

    /* a failed open holds nothing */
    calypso *bad = NULL;
    calypso_options o = ah_opts();
    o.max_key_size = CALYPSO_MAX_KEY_SIZE + 1;
    assert_int_equal(calypso_open(a, &o, &bad), CALYPSO_EINVAL);
    assert_null(bad);
    char file[512];
    snprintf(file, sizeof file, "%s/plain", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_not_equal(calypso_open(file, NULL, &bad), CALYPSO_OK);
    ca_expect_clean("failed opens");

    /* all NULL restores libc: the counter sees nothing any more */
    ca_uninstall();
    allocs = ca_now().allocs;
    db1 = ah_open(a);
    ah_put(db1, 2, 0);
    ah_expect(db1, 2, 0);
    TU_OK(NULL, calypso_close(db1));
    assert_int_equal(ca_now().allocs, allocs);
    ca_expect_clean("libc restored");
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts_a_whole_life),
        cmocka_unit_test(test_out_of_memory_through_it),
        cmocka_unit_test(test_fault_layer_over_it),
        cmocka_unit_test(test_when_it_may_change),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
