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
 *     constant) while cursor walks check the sum of every window they read.
 */
#include "testutil.h"
#include "calypso.h"

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
        if (calypso_update(r->db, tx_increment, NULL)) { r->bad = 1; break; }
    return NULL;
}

static void *tx_plain_writer(void *arg)
{
    tx_run *r = arg;
    char k[16];
    for (uint64_t i = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); i++) {
        int kl = snprintf(k, sizeof k, "p%llu", (unsigned long long)(i % 500));
        if (calypso_put(r->db, k, (size_t)kl, "v", 1)) { r->bad = 1; break; }
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
    char kf[8], kt[8], buf[32];
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
        if (calypso_update(r->db, tx_move, &m)) { r->bad = 1; break; }
        else __atomic_add_fetch(&r->done, 1, __ATOMIC_RELAXED);
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
    char k[8];
    for (int i = 0; i < ACCOUNTS; i++) {
        snprintf(k, sizeof k, "acct%02d", i);
        TU_OK(r.db, calypso_put(r.db, k, 6, "1000", 4));
    }
    pthread_t th[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&th[i], NULL, tx_mover, &r), 0);
    calypso_cursor *c;
    TU_OK(r.db, calypso_cursor_open(r.db, &c));
    int walks = 0;
    uint64_t t0 = (uint64_t)time(NULL);
    while ((uint64_t)time(NULL) - t0 < 2) {
        long sum = 0;
        int n = 0;
        for (int rc = calypso_cursor_first(c); rc == CALYPSO_OK; rc = calypso_cursor_next(c)) {
            const void *v;
            size_t vl;
            TU_OK(r.db, calypso_cursor_value(c, &v, &vl));
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
    for (int i = 0; i < 2; i++) pthread_join(th[i], NULL);
    assert_false(r.bad);
    print_message("%d walks saw the sum constant while %llu updates moved amounts\n", walks,
                  (unsigned long long)r.done);
    assert_true(walks > 0 && r.done > 0);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_txn_read_own_writes_commit_rollback),
        cmocka_unit_test(test_update_callback),
        cmocka_unit_test(test_updates_are_serialized),
        cmocka_unit_test(test_readers_not_held_by_an_open_update),
        cmocka_unit_test(test_isolation_sum_constant),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
