/*
 * test_scan_get.c: a get of the key a walk has just handed to its callback
 * (CalypsoDB's scan-then-get) takes where the walk found it instead of a
 * second tree descent; these tests show it is never stale.
 *
 *   - Inside the callback: the key overwritten, deleted, given a TTL that
 *     has passed, then read: the new state, every time.
 *   - A merge run from inside the callback moves the record: the get still
 *     finds it (it looks the key up again).
 *   - Other keys, other handles, the same key in another namespace and
 *     nested walks are read as usual.
 *   - Beside writer and merge threads, every value a fold+get reads is one
 *     written for its key.
 */
#include "testutil.h"
#include "calypso.h"

#include <pthread.h>

static calypso_options sg_opts(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 16 << 10;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

static void sg_expect(calypso *db, const void *k, size_t kl, const char *want)
{
    char buf[64];
    size_t vl = 0;
    int rc = calypso_get_buf(db, k, kl, buf, sizeof buf, &vl);
    if (!want) {
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        return;
    }
    TU_OK(db, rc);
    assert_int_equal(vl, strlen(want));
    assert_memory_equal(buf, want, vl);
}

typedef struct sg_ctx { calypso *db, *other; int n; } sg_ctx;

/* For key i: read it, change it in a way chosen by i % 5, read it again. */
static int sg_change_then_get(const void *k, size_t kl, void *arg)
{
    sg_ctx *c = arg;
    calypso *db = c->db;
    char was[16];
    snprintf(was, sizeof was, "v%.*s", (int)kl - 1, (const char *)k + 1);
    sg_expect(db, k, kl, was);                     /* the walk's own location */
    switch (c->n++ % 5) {
    case 0:
        TU_OK(db, calypso_put(db, k, kl, "new", 3));
        sg_expect(db, k, kl, "new");
        break;
    case 1:
        TU_OK(db, calypso_delete(db, k, kl));
        sg_expect(db, k, kl, NULL);
        break;
    case 2: {
        TU_OK(db, calypso_put_ttl(db, k, kl, "brief", 5, 1));
        usleep(3000);
        char buf[8];
        size_t vl;
        assert_int_equal(calypso_get_buf(db, k, kl, buf, sizeof buf, &vl), CALYPSO_EEXPIRED);
        break;
    }
    case 3:
        TU_OK(db, calypso_merge(db));               /* moves every record */
        sg_expect(db, k, kl, was);
        break;
    default:
        /* another key of the same handle, and the same key elsewhere */
        sg_expect(db, "k0000", 5, c->n > 1 ? "new" : "v0000");
        sg_expect(c->other, k, kl, NULL);
        sg_expect(db, k, kl, was);
    }
    return 0;
}

/* After the per-key walks: what each key became, read in one walk. */
static int sg_count(const void *k, size_t kl, void *arg)
{
    sg_ctx *c = arg;
    char num[8];
    snprintf(num, sizeof num, "%.*s", (int)kl - 1, (const char *)k + 1);   /* k is not a string */
    int i = atoi(num);
    char buf[16];
    size_t vl;
    int rc = calypso_get_buf(c->db, k, kl, buf, sizeof buf, &vl);
    switch (i % 5) {
    case 0: TU_OK(c->db, rc); assert_memory_equal(buf, "new", 3); break;
    case 1: case 2:                                  /* deleted, expired: not walked */
        print_error("%.*s walked: get -> %d\n", (int)kl, (const char *)k, rc);
        fail();
    default: TU_OK(c->db, rc); assert_int_equal(vl, 5); assert_true(buf[0] == 'v');
    }
    c->n++;
    return 0;
}

static void test_get_in_walk_is_never_stale(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *dir2 = tu_tmpdir();
    calypso_options o = sg_opts();
    sg_ctx c = { 0 };
    TU_OK(NULL, calypso_open(dir, &o, &c.db));
    TU_OK(NULL, calypso_open(dir2, &o, &c.other));
    char k[16], v[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%04d", i);
        snprintf(v, sizeof v, "v%04d", i);
        TU_OK(c.db, calypso_put(c.db, k, 5, v, 5));
        /* ... each followed by an overwrite of one filler key: the keys
         * sit in sealed files that are mostly dead, which a merge rewrites
         * (moving their records) */
        char big[200];
        memset(big, 'f', sizeof big);
        TU_OK(c.db, calypso_put(c.db, "filler", 6, big, sizeof big));
    }
    char big[200];
    memset(big, 'f', sizeof big);
    for (int i = 0; i < 100; i++) TU_OK(c.db, calypso_put(c.db, "filler", 6, big, sizeof big));
    /* One walk per key, so that each get starts from a fresh walk's
     * location (a walk's later keys see the keydir changed by the writes
     * of earlier callbacks, and look up as usual). */
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%04d", i);
        TU_OK(c.db, calypso_range(c.db, k, 5, k, 5, sg_change_then_get, &c));
    }
    assert_int_equal(c.n, 300);
    /* and in one walk, the keydir changing under it */
    c.n = 0;
    TU_OK(c.db, calypso_scan(c.db, "k", 1, sg_count, &c));
    TU_OK(c.db, calypso_close(c.db));
    TU_OK(c.other, calypso_close(c.other));
    tu_rmrf(dir);
    tu_rmrf(dir2);
}

/* A merge from the first callback moves every record the walk's batch
 * noted: the gets that follow find them where they went. */
static int sg_merge_first(const void *k, size_t kl, void *arg)
{
    sg_ctx *c = arg;
    if (c->n++ == 0) TU_OK(c->db, calypso_merge(c->db));
    char want[16];
    snprintf(want, sizeof want, "v%.*s", (int)kl - 1, (const char *)k + 1);
    sg_expect(c->db, k, kl, want);
    return 0;
}

static void test_get_in_walk_after_a_merge(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = sg_opts();
    sg_ctx c = { 0 };
    TU_OK(NULL, calypso_open(dir, &o, &c.db));
    char k[16], v[16], big[200];
    memset(big, 'f', sizeof big);
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%04d", i);
        snprintf(v, sizeof v, "v%04d", i);
        TU_OK(c.db, calypso_put(c.db, k, 5, v, 5));
        TU_OK(c.db, calypso_put(c.db, "filler", 6, big, sizeof big));   /* dead next time */
    }
    for (int i = 0; i < 100; i++) TU_OK(c.db, calypso_put(c.db, "filler", 6, big, sizeof big));
    struct calypso_stats before, after;
    TU_OK(c.db, calypso_stats(c.db, &before));
    TU_OK(c.db, calypso_scan(c.db, "k", 1, sg_merge_first, &c));
    TU_OK(c.db, calypso_stats(c.db, &after));
    assert_int_equal(c.n, 300);
    assert_int_equal(after.merges, before.merges + 1);
    assert_true(after.datafiles < before.datafiles);   /* the keys' files are gone */
    TU_OK(c.db, calypso_close(c.db));
    tu_rmrf(dir);
}

/* A walk inside a walk's callback: each reads its own keys right. */
static int sg_inner(const void *k, size_t kl, void *arg)
{
    sg_ctx *c = arg;
    char want[16];
    snprintf(want, sizeof want, "v%.*s", (int)kl - 1, (const char *)k + 1);
    sg_expect(c->db, k, kl, want);
    c->n++;
    return 0;
}

static int sg_outer(const void *k, size_t kl, void *arg)
{
    sg_ctx *c = arg;
    char want[16];
    snprintf(want, sizeof want, "v%.*s", (int)kl - 1, (const char *)k + 1);
    sg_expect(c->db, k, kl, want);
    TU_OK(c->db, calypso_scan(c->db, "k00", 3, sg_inner, c));
    sg_expect(c->db, k, kl, want);                 /* after the inner walk */
    return 0;
}

static void test_nested_walks(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = sg_opts();
    sg_ctx c = { 0 };
    TU_OK(NULL, calypso_open(dir, &o, &c.db));
    char k[16], v[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%04d", i);
        snprintf(v, sizeof v, "v%04d", i);
        TU_OK(c.db, calypso_put(c.db, k, 5, v, 5));
    }
    TU_OK(c.db, calypso_fold(c.db, sg_outer, &c));
    assert_int_equal(c.n, 300 * 100);
    TU_OK(c.db, calypso_close(c.db));
    tu_rmrf(dir);
}

/* The same key in another namespace, read from a callback walking this
 * one: its own value, not where the walk found this namespace's. */
typedef struct sg_ns { calypso *a, *b; int n; } sg_ns;

static int sg_other_ns(const void *k, size_t kl, void *arg)
{
    sg_ns *c = arg;
    char want[16];
    snprintf(want, sizeof want, "b%.*s", (int)kl - 1, (const char *)k + 1);
    sg_expect(c->b, k, kl, want);
    snprintf(want, sizeof want, "a%.*s", (int)kl - 1, (const char *)k + 1);
    sg_expect(c->a, k, kl, want);
    c->n++;
    return 0;
}

static void test_get_in_walk_across_namespaces(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = sg_opts();
    calypso *db;
    sg_ns c = { 0 };
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_ns_open(db, "a", 1, 1, &c.a));
    TU_OK(db, calypso_ns_open(db, "b", 1, 1, &c.b));
    char k[16], v[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%04d", i);
        snprintf(v, sizeof v, "a%04d", i);
        TU_OK(c.a, calypso_put(c.a, k, 5, v, 5));
        v[0] = 'b';
        TU_OK(c.b, calypso_put(c.b, k, 5, v, 5));
    }
    TU_OK(c.a, calypso_fold(c.a, sg_other_ns, &c));
    assert_int_equal(c.n, 300);
    calypso_close(c.a);
    calypso_close(c.b);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

// >> beside writers and merges --------------------------------------------------------

#define SG_KEYS 3000

typedef struct sg_run { calypso *db; int stop, bad; uint64_t seed, reads, merges; } sg_run;

static void *sg_writer(void *arg)
{
    sg_run *r = arg;
    uint64_t rng = r->seed;
    char k[16], v[48];
    for (uint64_t n = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); n++) {
        int i = (int)tu_below(&rng, SG_KEYS);
        snprintf(k, sizeof k, "s%05d", i);
        int vl = snprintf(v, sizeof v, "s%05d:%llu", i, (unsigned long long)n);
        if (calypso_put(r->db, k, 6, v, (size_t)vl)) { r->bad = 1; break; }
    }
    return NULL;
}

static void *sg_merger(void *arg)
{
    sg_run *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int rc = calypso_merge(r->db);
        if (rc && rc != CALYPSO_EMERGING) { r->bad = 1; break; }
        r->merges++;
        usleep(5000);
    }
    return NULL;
}

static int sg_check(const void *k, size_t kl, void *arg)
{
    sg_run *r = arg;
    char buf[64];
    size_t vl;
    int rc = calypso_get_buf(r->db, k, kl, buf, sizeof buf, &vl);
    if (rc) {
        print_error("get %.*s in a walk: %s\n", (int)kl, (const char *)k, calypso_strerror(rc));
        return rc;
    }
    /* the key itself (first write), or "key:version" */
    if (vl < kl || memcmp(buf, k, kl) != 0 || (vl > kl && buf[kl] != ':')) {
        print_error("get %.*s in a walk: %.*s\n", (int)kl, (const char *)k, (int)vl, buf);
        return CALYPSO_ECORRUPT;
    }
    r->reads++;
    return 0;
}

static void test_scan_get_beside_writers_and_merges(void **state)
{
    (void)state;
    alarm(120);
    char *dir = tu_tmpdir();
    calypso_options o = sg_opts();
    o.max_open_files = 4;
    sg_run r = { 0 };
    r.seed = tu_seed("test_scan_get_beside_writers_and_merges");
    TU_OK(NULL, calypso_open(dir, &o, &r.db));
    char k[16];
    for (int i = 0; i < SG_KEYS; i++) {
        snprintf(k, sizeof k, "s%05d", i);
        TU_OK(r.db, calypso_put(r.db, k, 6, k, 6));
    }
    pthread_t w, m;
    assert_int_equal(pthread_create(&w, NULL, sg_writer, &r), 0);
    assert_int_equal(pthread_create(&m, NULL, sg_merger, &r), 0);
    time_t t0 = time(NULL);
    int folds = 0;
    while (time(NULL) - t0 < 2) {
        TU_OK(r.db, calypso_fold(r.db, sg_check, &r));
        folds++;
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(w, NULL);
    pthread_join(m, NULL);
    assert_false(r.bad);
    print_message("%d folds read %llu values with a get each, beside overwrites and %llu "
                  "merges\n", folds, (unsigned long long)r.reads, (unsigned long long)r.merges);
    assert_true(folds > 0 && r.merges > 0);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_in_walk_is_never_stale),
        cmocka_unit_test(test_get_in_walk_after_a_merge),
        cmocka_unit_test(test_nested_walks),
        cmocka_unit_test(test_get_in_walk_across_namespaces),
        cmocka_unit_test(test_scan_get_beside_writers_and_merges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
