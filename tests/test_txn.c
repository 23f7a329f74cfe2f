/*
 * test_txn.c: update transactions.
 *
 *   - Reads inside see the transaction's own writes; commit applies them
 *     all, rollback (or a callback's error) leaves nothing on disk or in
 *     memory.
 *   - From inside, writes through the handle are refused, not deadlocked;
 *     reads through it work.
 *   - Writers are serialized: concurrent read-modify-write updates of one
 *     counter lose no increment, while plain puts go on in another thread.
 *   - Readers are not held up by an open transaction.
 *   - Isolation: updates move amounts between accounts (the sum is
 *     constant) while cursor walks check the sum of every window they read,
 *     and other keys keep expiring (TTLs of 1-20 ms, run_gc, the sweeper):
 *     a view reads each expiring key the same twice.
 *   - Views: the state as of their start through overwrites, deletes,
 *     expiry, run_gc and merges (whose removed files stay readable for
 *     them); writes refused; repeated reads stable and the sum constant
 *     while updates and merges run; memory failing while a write notes a
 *     view's snapshot fails the view's next read, never answers wrongly.
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"

#include <pthread.h>
#include <signal.h>

static calypso_options tx_opts(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 256 << 10;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

static void tx_expect(calypso *db, const char *key, const char *want)
{
    void *v = NULL;
    size_t vl = 0;
    int rc = calypso_get(db, key, strlen(key), &v, &vl);
    if (!want) {
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        return;
    }
    TU_OK(db, rc);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(v, want, vl);
    calypso_free(v);
}

static void tx_expect_in(calypso_txn *tx, calypso *db, const char *key, const char *want)
{
    char buf[64];
    size_t vl = 0;
    int rc = calypso_txn_get_buf(tx, key, strlen(key), buf, sizeof buf, &vl);
    if (!want) {
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        assert_int_equal(calypso_txn_has(tx, key, strlen(key)), 0);
        return;
    }
    TU_OK(db, rc);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(buf, want, vl);
    assert_int_equal(calypso_txn_has(tx, key, strlen(key)), 1);
    void *v = NULL;
    TU_OK(db, calypso_txn_get(tx, key, strlen(key), &v, &vl));
    assert_memory_equal(v, want, vl);
    calypso_free(v);
}

static void test_txn_read_own_writes_commit_rollback(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "a", 1, "a0", 2));
    TU_OK(db, calypso_put(db, "b", 1, "b0", 2));

    struct calypso_stats s0, s1;
    TU_OK(db, calypso_stats(db, &s0));
    calypso_txn *tx;
    TU_OK(db, calypso_update_begin(db, &tx));
    tx_expect_in(tx, db, "a", "a0");                 /* the database */
    TU_OK(db, calypso_txn_put(tx, "a", 1, "a1", 2));
    TU_OK(db, calypso_txn_delete(tx, "b", 1));
    TU_OK(db, calypso_txn_put(tx, "c", 1, "c1", 2));
    tx_expect_in(tx, db, "a", "a1");                 /* its own writes */
    tx_expect_in(tx, db, "b", NULL);
    tx_expect_in(tx, db, "c", "c1");
    char small[1];
    size_t need = 0;
    assert_int_equal(calypso_txn_get_buf(tx, "c", 1, small, 1, &need), CALYPSO_ETRUNC);
    assert_int_equal(need, 2);
    tx_expect(db, "a", "a0");                        /* nobody else sees them */
    /* from inside: writes through the handle are refused, reads work */
    assert_int_equal(calypso_put(db, "x", 1, "x", 1), CALYPSO_EINVAL);
    assert_non_null(strstr(calypso_errmsg(db), "update transaction"));
    assert_int_equal(calypso_delete(db, "a", 1), CALYPSO_EINVAL);
    assert_int_equal(calypso_sync(db), CALYPSO_EINVAL);
    assert_int_equal(calypso_merge(db), CALYPSO_EINVAL);
    struct calypso_stats st;
    assert_int_equal(calypso_stats(db, &st), CALYPSO_EINVAL);
    calypso_txn *nested;
    assert_int_equal(calypso_update_begin(db, &nested), CALYPSO_EINVAL);
    calypso_batch *b;
    assert_int_equal(calypso_batch_open(db, &b), CALYPSO_EINVAL);
    assert_int_equal(calypso_has(db, "a", 1), 1);
    calypso_txn_rollback(tx);
    TU_OK(db, calypso_stats(db, &s1));
    assert_int_equal(s1.size, s0.size);              /* nothing written */
    tx_expect(db, "a", "a0");
    tx_expect(db, "b", "b0");
    tx_expect(db, "c", NULL);

    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_put(tx, "a", 1, "a1", 2));
    TU_OK(db, calypso_txn_delete(tx, "b", 1));
    TU_OK(db, calypso_txn_put_ttl(tx, "c", 1, "c1", 2, 3600000));
    TU_OK(db, calypso_txn_commit(tx));
    tx_expect(db, "a", "a1");
    tx_expect(db, "b", NULL);
    tx_expect(db, "c", "c1");
    TU_OK(db, calypso_put(db, "after", 5, "ok", 2)); /* the writer lock was released */
    /* an empty transaction commits nothing */
    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_commit(tx));
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    tx_expect(db, "a", "a1");
    tx_expect(db, "b", NULL);
    tx_expect(db, "c", "c1");
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static int tx_fail_fn(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    if (calypso_txn_put(tx, "f", 1, "f", 1)) return -100;
    return 42;   /* any non-zero: roll back */
}

static int tx_ok_fn(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    return calypso_txn_put(tx, "g", 1, "g", 1);
}

static void test_update_callback(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    assert_int_equal(calypso_update(db, tx_fail_fn, NULL), 42);
    tx_expect(db, "f", NULL);
    TU_OK(db, calypso_update(db, tx_ok_fn, NULL));
    tx_expect(db, "g", "g");
    assert_int_equal(calypso_update(db, NULL, NULL), CALYPSO_EINVAL);
    TU_OK(db, calypso_close(db));
    calypso_options ro = o;
    ro.read_only = 1;
    TU_OK(NULL, calypso_open(dir, &ro, &db));
    assert_int_equal(calypso_update(db, tx_ok_fn, NULL), CALYPSO_EREADONLY);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

// >> serialization --------------------------------------------------------------------

typedef struct tx_run { calypso *db; int stop; int bad; uint64_t done, seed; } tx_run;

static int tx_increment(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    char buf[32];
    size_t vl = 0;
    long n = 0;
    int rc = calypso_txn_get_buf(tx, "counter", 7, buf, sizeof buf - 1, &vl);
    if (rc == CALYPSO_OK) {
        buf[vl] = 0;
        n = atol(buf);
    } else if (rc != CALYPSO_ENOTFOUND) {
        return rc;
    }
    int l = snprintf(buf, sizeof buf, "%ld", n + 1);
    return calypso_txn_put(tx, "counter", 7, buf, (size_t)l);
}

static void *tx_incrementer(void *arg)
{
    tx_run *r = arg;
    for (int i = 0; i < 300; i++)
        if (calypso_update(r->db, tx_increment, NULL)) { __atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED); break; }
    return NULL;
}

static void *tx_plain_writer(void *arg)
{
    tx_run *r = arg;
    char k[16];
    for (uint64_t i = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); i++) {
        int kl = snprintf(k, sizeof k, "p%llu", (unsigned long long)(i % 500));
        if (calypso_put(r->db, k, (size_t)kl, "v", 1)) { __atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED); break; }
        __atomic_add_fetch(&r->done, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_updates_are_serialized(void **state)
{
    (void)state;
    alarm(120);
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    tx_run r = { 0 };
    TU_OK(NULL, calypso_open(dir, &o, &r.db));
    pthread_t inc[4], w;
    assert_int_equal(pthread_create(&w, NULL, tx_plain_writer, &r), 0);
    for (int i = 0; i < 4; i++) assert_int_equal(pthread_create(&inc[i], NULL, tx_incrementer, &r), 0);
    for (int i = 0; i < 4; i++) pthread_join(inc[i], NULL);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(w, NULL);
    assert_false(r.bad);
    tx_expect(r.db, "counter", "1200");
    print_message("4 x 300 increments lost none, beside %llu plain puts\n",
                  (unsigned long long)r.done);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
    alarm(0);
}

typedef struct tx_reader { calypso *db; int ok; } tx_reader;

static void *tx_read_once(void *arg)
{
    tx_reader *t = arg;
    void *v = NULL;
    size_t vl = 0;
    t->ok = calypso_get(t->db, "a", 1, &v, &vl) == CALYPSO_OK && vl == 2;
    calypso_free(v);
    calypso_cursor *c;
    if (calypso_cursor_open(t->db, &c) == CALYPSO_OK) {
        t->ok &= calypso_cursor_first(c) == CALYPSO_OK;
        calypso_cursor_close(c);
    }
    t->ok &= calypso_len(t->db) == 1;
    return NULL;
}

static void test_readers_not_held_by_an_open_update(void **state)
{
    (void)state;
    alarm(60);   /* a reader waiting on the transaction would hang here */
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "a", 1, "a0", 2));
    calypso_txn *tx;
    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_put(tx, "a", 1, "a1", 2));
    tx_reader t = { db, 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, tx_read_once, &t), 0);
    pthread_join(th, NULL);
    assert_true(t.ok);
    TU_OK(db, calypso_txn_commit(tx));
    tx_expect(db, "a", "a1");
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
    alarm(0);
}

// >> isolation: the sum of the accounts is constant ---------------------------------------

#define ACCOUNTS 40

typedef struct mv { uint64_t rng; } mv;

static int tx_move(calypso_txn *tx, void *ctx)
{
    mv *m = ctx;
    int from = (int)tu_below(&m->rng, ACCOUNTS), to = (int)tu_below(&m->rng, ACCOUNTS);
    char kf[16], kt[16], buf[32];
    snprintf(kf, sizeof kf, "acct%02d", from);
    snprintf(kt, sizeof kt, "acct%02d", to);
    size_t vl;
    int rc = calypso_txn_get_buf(tx, kf, 6, buf, sizeof buf - 1, &vl);
    if (rc) return rc;
    buf[vl] = 0;
    long a = atol(buf);
    rc = calypso_txn_get_buf(tx, kt, 6, buf, sizeof buf - 1, &vl);
    if (rc) return rc;
    buf[vl] = 0;
    long b = atol(buf);
    long amount = (long)tu_below(&m->rng, 50);
    if (from == to) return 0;
    int l = snprintf(buf, sizeof buf, "%ld", a - amount);
    if ((rc = calypso_txn_put(tx, kf, 6, buf, (size_t)l))) return rc;
    l = snprintf(buf, sizeof buf, "%ld", b + amount);
    return calypso_txn_put(tx, kt, 6, buf, (size_t)l);
}

static void *tx_mover(void *arg)
{
    tx_run *r = arg;
    mv m = { r->seed ^ (uint64_t)(uintptr_t)&m };
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
        if (calypso_update(r->db, tx_move, &m)) { __atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED); break; }
        else __atomic_add_fetch(&r->done, 1, __ATOMIC_RELAXED);
    return NULL;
}

/* Keys that keep expiring: puts with TTLs of 1-20 ms, through update
 * transactions and plain puts, and run_gc now and then (the sweeper runs
 * too when the test turns it on). Their values count writes, so a view
 * can tell one version from the next. */
#define TTL_KEYS 20

static void *tx_expirer(void *arg)
{
    tx_run *r = arg;
    uint64_t rng = r->seed * 7 + 1;
    char k[16], v[24];
    for (uint64_t n = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); n++) {
        int kl = snprintf(k, sizeof k, "ttl%02d", (int)tu_below(&rng, TTL_KEYS));
        int vl = snprintf(v, sizeof v, "%llu", (unsigned long long)n);
        uint64_t ttl = 1 + tu_below(&rng, 20);
        int rc = calypso_put_ttl(r->db, k, (size_t)kl, v, (size_t)vl, ttl);
        if (!rc && n % 64 == 0) rc = calypso_run_gc(r->db);
        if (rc) { __atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED); break; }
        usleep(200);
    }
    return NULL;
}

static void test_isolation_sum_constant(void **state)
{
    (void)state;
    alarm(120);
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    tx_run r = { 0 };
    r.seed = tu_seed("test_isolation_sum_constant");
    TU_OK(NULL, calypso_open(dir, &o, &r.db));
    char k[16];
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(k, sizeof k, "acct%02d", i);
        TU_OK(r.db, calypso_put(r.db, k, 6, "1000", 4));
    }
    pthread_t th[3];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, tx_mover, &r), 0);
    assert_int_equal(pthread_create(&th[2], NULL, tx_expirer, &r), 0);
    calypso_cursor *c;
    TU_OK(r.db, calypso_cursor_open(r.db, &c));
    int walks = 0;
    uint64_t t0 = (uint64_t)time(NULL);
    while ((uint64_t)time(NULL) - t0 < 2) {
        long sum = 0;
        int n = 0;
        for (int rc = calypso_cursor_first(c); rc == CALYPSO_OK; rc = calypso_cursor_next(c)) {
            const void *v, *key;
            size_t vl, kl;
            TU_OK(r.db, calypso_cursor_key(c, &key, &kl));
            if (kl < 4 || memcmp(key, "acct", 4)) continue;   /* the expiring keys */
            rc = calypso_cursor_value(c, &v, &vl);
            TU_OK(r.db, rc);
            char buf[32];
            snprintf(buf, sizeof buf, "%.*s", (int)vl, (const char *)v);
            sum += atol(buf);
            n++;
        }
        assert_int_equal(n, ACCOUNTS);
        if (sum != 1000L * ACCOUNTS) print_error("walk %d: sum %ld\n", walks, sum);
        assert_int_equal(sum, 1000L * ACCOUNTS);
        walks++;
    }
    calypso_cursor_close(c);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 3; i++) pthread_join(th[i], NULL);
    assert_false(r.bad);
    print_message("%d walks saw the sum constant while %llu updates moved amounts\n", walks,
                  (unsigned long long)r.done);
    assert_true(walks > 0 && r.done > 0);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
    alarm(0);
}

// >> views ----------------------------------------------------------------------------

static void vw_expect(calypso_txn *tx, calypso *db, const char *key, const char *want, int rc_absent)
{
    char buf[64];
    size_t vl = 0;
    int rc = calypso_txn_get_buf(tx, key, strlen(key), buf, sizeof buf, &vl);
    if (!want) {
        assert_int_equal(rc, rc_absent);
        assert_int_equal(calypso_txn_has(tx, key, strlen(key)), 0);
        return;
    }
    TU_OK(db, rc);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(buf, want, vl);
    assert_int_equal(calypso_txn_has(tx, key, strlen(key)), 1);
    void *v = NULL;
    TU_OK(db, calypso_txn_get(tx, key, strlen(key), &v, &vl));
    assert_memory_equal(v, want, vl);
    calypso_free(v);
}

static void test_view_sees_its_start(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    o.max_datafile_size = 4096;     /* many files, for the merge */
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char k[16], v[32];
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "old%03d", i);
        TU_OK(db, calypso_put(db, k, 4, v, strlen(v)));
    }
    TU_OK(db, calypso_put_ttl(db, "ttl", 3, "t", 1, 10000));
    TU_OK(db, calypso_put_ttl(db, "gone", 4, "g", 1, 1));
    usleep(5000);                   /* "gone" expired before the view */
    calypso_txn *vw;
    TU_OK(db, calypso_view_begin(db, &vw));
    /* writes after the view began */
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "new%03d", i);
        if (i % 4 == 0) TU_OK(db, calypso_delete(db, k, 4));
        else TU_OK(db, calypso_put(db, k, 4, v, strlen(v)));
    }
    TU_OK(db, calypso_put(db, "fresh", 5, "f", 1));
    calypso_batch *b;
    TU_OK(db, calypso_batch_open(db, &b));
    TU_OK(db, calypso_batch_put(b, "k001", 4, "batched", 7));
    TU_OK(db, calypso_batch_delete(b, "k002", 4));
    TU_OK(db, calypso_batch_commit(b));
    cy_clock_shift(20000);          /* "ttl" expires after the view began */
    TU_OK(db, calypso_run_gc(db));  /* ... and is swept */
    TU_OK(db, calypso_merge(db));   /* the files the view reads are replaced */
    TU_OK(db, calypso_merge(db));
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "old%03d", i);
        vw_expect(vw, db, k, v, 0);
    }
    vw_expect(vw, db, "ttl", "t", 0);
    vw_expect(vw, db, "fresh", NULL, CALYPSO_ENOTFOUND);
    vw_expect(vw, db, "gone", NULL, CALYPSO_EEXPIRED);
    assert_int_equal(calypso_txn_put(vw, "x", 1, "x", 1), CALYPSO_EREADONLY);
    assert_int_equal(calypso_txn_delete(vw, "k000", 4), CALYPSO_EREADONLY);
    /* a second view sees the present */
    calypso_txn *now;
    TU_OK(db, calypso_view_begin(db, &now));
    vw_expect(now, db, "k000", NULL, CALYPSO_ENOTFOUND);
    vw_expect(now, db, "k001", "batched", 0);
    vw_expect(now, db, "fresh", "f", 0);
    vw_expect(now, db, "ttl", NULL, CALYPSO_ENOTFOUND);
    TU_OK(db, calypso_txn_commit(now));
    TU_OK(db, calypso_txn_commit(vw));
    /* the database itself has moved on; the retained files are gone */
    tx_expect(db, "k001", "batched");
    tx_expect(db, "k003", "new003");
    tx_expect(db, "k004", NULL);
    struct calypso_stats st;
    TU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, 200 - 50 - 1 + 1);
    cy_clock_shift(-20000);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static int vw_fn(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    char buf[8];
    size_t n;
    int rc = calypso_txn_get_buf(tx, "a", 1, buf, sizeof buf, &n);
    return rc ? rc : (int)n;
}

static void test_view_callback_and_read_only_handle(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "a", 1, "abc", 3));
    assert_int_equal(calypso_view(db, vw_fn, NULL), 3);
    TU_OK(db, calypso_close(db));
    calypso_options ro = o;
    ro.read_only = 1;
    TU_OK(NULL, calypso_open(dir, &ro, &db));
    assert_int_equal(calypso_view(db, vw_fn, NULL), 3);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_view_memory_lost_is_an_error(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "a", 1, "a0", 2));
    calypso_txn *vw;
    TU_OK(db, calypso_view_begin(db, &vw));
    /* the first allocation of the next put is the view's note */
    cy_alloc_fail_at(1, 0);
    int rc = calypso_put(db, "a", 1, "a1", 2);
    cy_alloc_fail_at(0, 0);
    TU_OK(db, rc);                      /* the write itself goes through */
    char buf[8];
    size_t n;
    assert_int_equal(calypso_txn_get_buf(vw, "a", 1, buf, sizeof buf, &n), CALYPSO_ENOMEM);
    /* Its cursor says the same, rather than show the later value. */
    calypso_cursor *c = NULL;
    TU_OK(db, calypso_txn_cursor_open(vw, &c));
    assert_int_equal(calypso_cursor_first(c), CALYPSO_ENOMEM);
    assert_non_null(strstr(calypso_errmsg(db), "snapshot could not be kept"));
    calypso_cursor_close(c);
    TU_OK(db, calypso_txn_commit(vw));
    TU_OK(db, calypso_view_begin(db, &vw));   /* a new view is whole again */
    TU_OK(db, calypso_txn_cursor_open(vw, &c));
    TU_OK(db, calypso_cursor_first(c));
    const void *cv = NULL;
    size_t cvl = 0;
    TU_OK(db, calypso_cursor_value(c, &cv, &cvl));
    assert_int_equal(cvl, 2);
    assert_memory_equal(cv, "a1", 2);
    calypso_cursor_close(c);
    TU_OK(db, calypso_txn_get_buf(vw, "a", 1, buf, sizeof buf, &n));
    assert_memory_equal(buf, "a1", 2);
    calypso_txn_rollback(vw);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

typedef struct vw_run { tx_run *r; int bad; char why[160]; uint64_t views, ttl_seen; } vw_run;

static void *vw_checker(void *arg)
{
    vw_run *v = arg;
    calypso *db = v->r->db;
    while (!__atomic_load_n(&v->r->stop, __ATOMIC_ACQUIRE) && !v->bad) {
        calypso_txn *vw;
        if (calypso_view_begin(db, &vw)) { v->bad = 1; break; }
        long first[ACCOUNTS], sum = 0;
        char seen[TTL_KEYS][24];   /* each expiring key's value, or "(rc)" */
        for (int pass = 0; pass < 2 && !v->bad; pass++) {
            /* Every 8th view waits between its reads: keys it saw expire,
             * are swept and written again meanwhile. */
            if (pass == 1 && v->views % 8 == 0) usleep(3000);
            for (int i = 0; i < TTL_KEYS && !v->bad; i++) {
                char k[16], buf[24];
                size_t vl = 0;
                snprintf(k, sizeof k, "ttl%02d", i);
                int rc = calypso_txn_get_buf(vw, k, 5, buf, sizeof buf - 1, &vl);
                if (rc && rc != CALYPSO_ENOTFOUND && rc != CALYPSO_EEXPIRED) { v->bad = 1; snprintf(v->why, sizeof v->why, "get %s: %s", k, calypso_strerror(rc)); break; }
                if (rc) snprintf(buf, sizeof buf, "(%d)", rc);   /* absent, or expired */
                else buf[vl] = 0;
                if (pass == 0) memcpy(seen[i], buf, sizeof buf);
                else if (strcmp(seen[i], buf)) { v->bad = 1; snprintf(v->why, sizeof v->why, "%.15s read '%.23s' then '%.23s'", k, seen[i], buf); }
                if (pass == 1 && !rc) v->ttl_seen++;
            }
            for (int i = 0; i < ACCOUNTS; i++) {
                char k[16], buf[32];
                size_t vl;
                snprintf(k, sizeof k, "acct%02d", i);
                int rc = calypso_txn_get_buf(vw, k, 6, buf, sizeof buf - 1, &vl);
                if (rc) { v->bad = 1; snprintf(v->why, sizeof v->why, "get %s: %s", k, calypso_strerror(rc)); break; }
                buf[vl] = 0;
                long a = atol(buf);
                if (pass == 0) { first[i] = a; sum += a; }
                else if (first[i] != a) { v->bad = 1; snprintf(v->why, sizeof v->why, "%s read %ld then %ld", k, first[i], a); break; }
            }
        }
        if (!v->bad && sum != 1000L * ACCOUNTS) {
            v->bad = 1;
            snprintf(v->why, sizeof v->why, "sum %ld", sum);
        }
        calypso_txn_rollback(vw);
        v->views++;
    }
    return NULL;
}

static void *vw_merger(void *arg)
{
    tx_run *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int rc = calypso_merge(r->db);
        if (rc && rc != CALYPSO_EMERGING) { __atomic_store_n(&r->bad, 1, __ATOMIC_RELAXED); break; }
        usleep(20000);
    }
    return NULL;
}

static void test_view_isolation_under_updates_and_merges(void **state)
{
    (void)state;
    alarm(120);
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    o.max_datafile_size = 16 << 10;
    o.ttl_sweep_interval_ms = 5;
    tx_run r = { 0 };
    r.seed = tu_seed("test_view_isolation_under_updates_and_merges");
    TU_OK(NULL, calypso_open(dir, &o, &r.db));
    char k[16];
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(k, sizeof k, "acct%02d", i);
        TU_OK(r.db, calypso_put(r.db, k, 6, "1000", 4));
    }
    pthread_t mover, merger, expirer, chk[2];
    vw_run v[2] = { { &r, 0, "", 0, 0 }, { &r, 0, "", 0, 0 } };
    assert_int_equal(pthread_create(&mover, NULL, tx_mover, &r), 0);
    assert_int_equal(pthread_create(&expirer, NULL, tx_expirer, &r), 0);
    assert_int_equal(pthread_create(&merger, NULL, vw_merger, &r), 0);
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&chk[i], NULL, vw_checker, &v[i]), 0);
    sleep(2);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(mover, NULL);
    pthread_join(expirer, NULL);
    pthread_join(merger, NULL);
    for (int i = 0; i < 2; i++) pthread_join(chk[i], NULL);
    for (int i = 0; i < 2; i++) if (v[i].bad) print_error("view checker %d: %s\n", i, v[i].why);
    assert_false(r.bad || v[0].bad || v[1].bad);
    struct calypso_stats st;
    TU_OK(r.db, calypso_stats(r.db, &st));
    print_message("%llu + %llu views each read every account twice, stable, sum constant, "
                  "and %llu expiring keys still there at their second read, beside %llu "
                  "updates, %llu merges, run_gc and the sweeper\n", (unsigned long long)v[0].views,
                  (unsigned long long)v[1].views,
                  (unsigned long long)(v[0].ttl_seen + v[1].ttl_seen), (unsigned long long)r.done,
                  (unsigned long long)st.merges);
    assert_true(v[0].views > 0 && st.merges > 0);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
    alarm(0);
}

// >> cursors in transactions --------------------------------------------------------------

/* Walks tx's cursor both ways and compares with want[0..n) (key=value). */
static void cur_expect(calypso *db, calypso_txn *tx, const char *const *want, int n,
                       const char *prefix)
{
    calypso_cursor *c;
    TU_OK(db, calypso_txn_cursor_open(tx, &c));
    for (int dir = 0; dir < 2; dir++) {
        int i = dir ? n - 1 : 0, rc;
        if (prefix) rc = dir ? CALYPSO_OK : calypso_cursor_seek_prefix(c, prefix, strlen(prefix));
        else rc = dir ? calypso_cursor_last(c) : calypso_cursor_first(c);
        if (prefix && dir) {   /* walk back from the end of the prefix run */
            rc = calypso_cursor_seek_prefix(c, prefix, strlen(prefix));
            while (rc == CALYPSO_OK && calypso_cursor_next(c) == CALYPSO_OK) {}
            rc = n ? calypso_cursor_seek_le(c, want[n - 1], strchr(want[n - 1], '=') - want[n - 1])
                   : CALYPSO_ENOTFOUND;
        }
        for (; rc == CALYPSO_OK; rc = dir ? calypso_cursor_prev(c) : calypso_cursor_next(c)) {
            const void *k, *v;
            size_t kl, vl;
            TU_OK(db, calypso_cursor_key(c, &k, &kl));
            if (prefix && (kl < strlen(prefix) || memcmp(k, prefix, strlen(prefix)))) break;
            TU_OK(db, calypso_cursor_value(c, &v, &vl));
            char got[64];
            snprintf(got, sizeof got, "%.*s=%.*s", (int)kl, (const char *)k, (int)vl, (const char *)v);
            if (i < 0 || i >= n || strcmp(got, want[i]) != 0)
                print_error("dir %d step %d: got %s, want %s\n", dir, i, got,
                            i >= 0 && i < n ? want[i] : "(end)");
            assert_true(i >= 0 && i < n);
            assert_string_equal(got, want[i]);
            i += dir ? -1 : 1;
        }
        assert_int_equal(i, dir ? -1 : n);
    }
    calypso_cursor_close(c);
}

static void test_cursor_in_update(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "b", 1, "b0", 2));
    TU_OK(db, calypso_put(db, "d", 1, "d0", 2));
    TU_OK(db, calypso_put(db, "f", 1, "f0", 2));
    TU_OK(db, calypso_put(db, "x1", 2, "x0", 2));
    calypso_txn *tx;
    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_put(tx, "a", 1, "a1", 2));     /* before everything */
    TU_OK(db, calypso_txn_put(tx, "d", 1, "d1", 2));     /* overwrites */
    TU_OK(db, calypso_txn_delete(tx, "f", 1));           /* hides */
    TU_OK(db, calypso_txn_put(tx, "e", 1, "e1", 2));
    TU_OK(db, calypso_txn_put(tx, "z", 1, "z1", 2));     /* after everything */
    TU_OK(db, calypso_txn_put(tx, "gone", 4, "g", 1));
    TU_OK(db, calypso_txn_delete(tx, "gone", 4));        /* put then deleted */
    TU_OK(db, calypso_txn_put(tx, "x2", 2, "x2", 2));
    const char *want[] = { "a=a1", "b=b0", "d=d1", "e=e1", "x1=x0", "x2=x2", "z=z1" };
    cur_expect(db, tx, want, 7, NULL);
    const char *wantx[] = { "x1=x0", "x2=x2" };
    cur_expect(db, tx, wantx, 2, "x");
    TU_OK(db, calypso_txn_commit(tx));
    /* many own writes across several windows */
    TU_OK(db, calypso_update_begin(db, &tx));
    char k[16];
    for (int i = 0; i < 700; i++) {
        snprintf(k, sizeof k, "m%04d", i);
        if (i % 3 == 0) TU_OK(db, calypso_put(db, "m-never", 7, "x", 1) == CALYPSO_EINVAL ? 0 : -1);
        TU_OK(db, calypso_txn_put(tx, k, 5, "v", 1));
    }
    calypso_cursor *c;
    TU_OK(db, calypso_txn_cursor_open(tx, &c));
    int n = 0;
    for (int rc = calypso_cursor_seek_prefix(c, "m", 1); rc == CALYPSO_OK; rc = calypso_cursor_next(c)) n++;
    assert_int_equal(n, 700);
    calypso_cursor_close(c);
    calypso_txn_rollback(tx);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_cursor_in_view(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tx_opts();
    o.max_datafile_size = 4096;
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char k[16], v[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        snprintf(v, sizeof v, "v%03d", i);
        TU_OK(db, calypso_put(db, k, 4, v, 4));
    }
    calypso_txn *vw;
    TU_OK(db, calypso_view_begin(db, &vw));
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        if (i % 2) TU_OK(db, calypso_delete(db, k, 4));
        else TU_OK(db, calypso_put(db, k, 4, "new", 3));
    }
    TU_OK(db, calypso_put(db, "k999", 4, "late", 4));
    TU_OK(db, calypso_merge(db));
    static char bufs[300][32];
    const char *want[300];
    for (int i = 0; i < 300; i++) {
        snprintf(bufs[i], sizeof bufs[i], "k%03d=v%03d", i, i);
        want[i] = bufs[i];
    }
    cur_expect(db, vw, want, 300, NULL);
    cur_expect(db, vw, want + 100, 10, "k10");
    TU_OK(db, calypso_txn_commit(vw));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txn_read_own_writes_commit_rollback),
        cmocka_unit_test(test_update_callback),
        cmocka_unit_test(test_updates_are_serialized),
        cmocka_unit_test(test_readers_not_held_by_an_open_update),
        cmocka_unit_test(test_isolation_sum_constant),
        cmocka_unit_test(test_view_sees_its_start),
        cmocka_unit_test(test_view_callback_and_read_only_handle),
        cmocka_unit_test(test_view_memory_lost_is_an_error),
        cmocka_unit_test(test_view_isolation_under_updates_and_merges),
        cmocka_unit_test(test_cursor_in_update),
        cmocka_unit_test(test_cursor_in_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
