/*
 * test_get_many.c: calypso_get_many and the lockstep tree lookups under it.
 *
 *   - cy_art_search_many answers as cy_art_search for every key of random
 *     groups over a tree of keys that are prefixes of each other, the empty
 *     key, long keys and absent neighbours.
 *   - calypso_get_many gives, key by key, what calypso_get gives: values,
 *     absent and expired keys, bad keys (per key, and the call's result),
 *     n = 0, NULL arrays, groups of every size around 16.
 *   - A damaged record is CALYPSO_ECHECKSUM for its key only.
 *   - A namespace handle reads its own namespace's keys; a dropped one none.
 *   - Under overwrites and merges in other threads every value read is one
 *     that was written for its key, never a failure.
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"

#include <fcntl.h>
#include <pthread.h>

// >> the tree -----------------------------------------------------------------------

static size_t gm_key(uint64_t *rng, uint8_t *k)
{
    /* Short alphabets and lengths 0..40: many shared prefixes, and keys
     * that are prefixes of others. */
    size_t len = tu_below(rng, 6) == 0 ? 0 : (size_t)tu_below(rng, 41);
    for (size_t i = 0; i < len; i++) k[i] = (uint8_t)("ab\0\xff"[tu_below(rng, 4)]);
    if (len > 20 && tu_below(rng, 4) == 0) len = 30 + (size_t)tu_below(rng, 1100);
    for (size_t i = 41; i < len; i++) k[i] = (uint8_t)tu_below(rng, 256);
    return len;
}

static void test_search_many_matches_search(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_search_many_matches_search");
    cy_art t;
    cy_art_init(&t);
    static uint8_t key[CY_ART_MANY][1200];
    size_t len[CY_ART_MANY];
    const uint8_t *kp[CY_ART_MANY];
    uint8_t k[1200];
    for (int i = 0; i < 20000; i++) {
        size_t l = gm_key(&rng, k);
        cy_loc loc = { (uint64_t)i, (uint32_t)i, (uint32_t)l };
        assert_true(cy_art_insert(&t, k, l, &loc, NULL) >= 0);
    }
    uint64_t found = 0, total = 0;
    for (int round = 0; round < 20000; round++) {
        size_t n = (size_t)tu_below(&rng, CY_ART_MANY + 1);
        for (size_t i = 0; i < n; i++) {
            len[i] = gm_key(&rng, key[i]);
            kp[i] = key[i];
        }
        cy_loc *out[CY_ART_MANY];
        cy_art_search_many(&t, n, kp, len, out);
        for (size_t i = 0; i < n; i++) {
            assert_ptr_equal(out[i], cy_art_search(&t, key[i], len[i]));
            found += out[i] != NULL;
            total++;
        }
        if (round % 1000 == 0) {   /* and change the tree now and then */
            size_t l = gm_key(&rng, k);
            cy_art_delete(&t, k, l, NULL);
        }
    }
    print_message("%llu lookups in groups, %llu found, all as cy_art_search\n",
                  (unsigned long long)total, (unsigned long long)found);
    assert_true(found > 0 && found < total);
    cy_art_destroy(&t);
}

// >> calypso_get_many -----------------------------------------------------------------

static calypso_options gm_opts(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 64 << 10;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

/* Checks get_many over keys[0..n) against calypso_get, key by key. */
static void gm_check(calypso *db, size_t n, const void *const *keys, const size_t *klens)
{
    void **vals = calloc(n + 1, sizeof *vals);
    size_t *vlens = calloc(n + 1, sizeof *vlens);
    int *rcs = calloc(n + 1, sizeof *rcs);
    int rc = calypso_get_many(db, n, keys, klens, vals, vlens, rcs);
    int want_rc = CALYPSO_OK;
    for (size_t i = 0; i < n; i++) {
        void *v = NULL;
        size_t vl = 0;
        int r = calypso_get(db, keys[i], klens[i], &v, &vl);
        assert_int_equal(rcs[i], r);
        if (r && r != CALYPSO_ENOTFOUND && r != CALYPSO_EEXPIRED && !want_rc) want_rc = r;
        if (!r) {
            assert_non_null(vals[i]);
            assert_int_equal(vlens[i], vl);
            assert_memory_equal(vals[i], v, vl);
        } else {
            assert_null(vals[i]);
            assert_int_equal(vlens[i], 0);
        }
        calypso_free(v);
        calypso_free(vals[i]);
    }
    assert_int_equal(rc, want_rc);
    free(vals);
    free(vlens);
    free(rcs);
}

static void test_get_many_as_get(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_get_many_as_get");
    char *dir = tu_tmpdir();
    calypso_options o = gm_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char key[600][16];
    const void *keys[600];
    size_t klens[600];
    for (int i = 0; i < 600; i++) {
        klens[i] = (size_t)snprintf(key[i], sizeof key[i], "k%05d", i);
        keys[i] = key[i];
        if (i % 3 == 0) continue;                          /* absent */
        char val[200];
        size_t vl = (size_t)tu_below(&rng, sizeof val);
        for (size_t j = 0; j < vl; j++) val[j] = (char)tu_below(&rng, 256);
        if (i % 7 == 0) TU_OK(db, calypso_put_ttl(db, key[i], klens[i], val, vl, 1000));
        else TU_OK(db, calypso_put(db, key[i], klens[i], val, vl));
    }
    /* every group size around the group of 16, at every offset */
    for (size_t n = 0; n <= 40; n++) gm_check(db, n, keys + (n * 7) % 500, klens + (n * 7) % 500);
    gm_check(db, 600, keys, klens);
    cy_clock_shift(2000);                                   /* the TTL keys expire */
    gm_check(db, 600, keys, klens);
    /* bad keys: per key, and the first one is the call's result */
    char big[70000];
    memset(big, 'x', sizeof big);
    const void *bad[4] = { key[1], "", big, key[2] };
    size_t badl[4] = { klens[1], 0, sizeof big, klens[2] };
    void *vals[4];
    size_t vlens[4];
    int rcs[4];
    assert_int_equal(calypso_get_many(db, 4, bad, badl, vals, vlens, rcs), CALYPSO_EEMPTYKEY);
    assert_int_equal(rcs[0], CALYPSO_OK);
    assert_int_equal(rcs[1], CALYPSO_EEMPTYKEY);
    assert_int_equal(rcs[2], CALYPSO_EKEYTOOLARGE);
    assert_int_equal(rcs[3], CALYPSO_OK);
    assert_null(vals[1]);
    assert_null(vals[2]);
    calypso_free(vals[0]);
    calypso_free(vals[3]);
    /* NULL arrays */
    assert_int_equal(calypso_get_many(db, 1, NULL, badl, vals, vlens, rcs), CALYPSO_EINVAL);
    assert_int_equal(calypso_get_many(db, 1, bad, badl, vals, vlens, NULL), CALYPSO_EINVAL);
    TU_OK(db, calypso_get_many(db, 0, NULL, NULL, NULL, NULL, NULL));
    assert_int_equal(calypso_get_many(NULL, 1, bad, badl, vals, vlens, rcs), CALYPSO_EINVAL);
    TU_OK(db, calypso_close(db));
    cy_clock_shift(-2000);
    tu_rmrf(dir);
}

static void test_get_many_damaged_record(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = gm_opts();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "a", 1, "value-a", 7));
    TU_OK(db, calypso_put(db, "b", 1, "value-b", 7));
    TU_OK(db, calypso_put(db, "c", 1, "value-c", 7));
    TU_OK(db, calypso_close(db));
    /* flip a byte of b's value: records are 4+1+1+1 header, key, value */
    char path[4200];
    snprintf(path, sizeof path, "%s/0000000001.data", dir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t x;
    off_t at = 15 + 7 + 1 + 3;             /* second record, inside its value */
    assert_int_equal(pread(fd, &x, 1, at), 1);
    x ^= 0x40;
    assert_int_equal(pwrite(fd, &x, 1, at), 1);
    close(fd);
    TU_OK(NULL, calypso_open(dir, &o, &db));
    const void *keys[4] = { "a", "b", "c", "d" };
    size_t klens[4] = { 1, 1, 1, 1 };
    void *vals[4];
    size_t vlens[4];
    int rcs[4];
    assert_int_equal(calypso_get_many(db, 4, keys, klens, vals, vlens, rcs), CALYPSO_ECHECKSUM);
    assert_int_equal(rcs[0], CALYPSO_OK);
    assert_int_equal(rcs[1], CALYPSO_ECHECKSUM);
    assert_int_equal(rcs[2], CALYPSO_OK);
    assert_int_equal(rcs[3], CALYPSO_ENOTFOUND);
    assert_memory_equal(vals[0], "value-a", 7);
    assert_memory_equal(vals[2], "value-c", 7);
    calypso_free(vals[0]);
    calypso_free(vals[2]);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* A namespace handle reads its own keys only; a dropped one finds none. */
static void test_get_many_in_namespaces(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = gm_opts();
    calypso *db, *a, *b;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_ns_open(db, "a", 1, 1, &a));
    TU_OK(db, calypso_ns_open(db, "b", 1, 1, &b));
    TU_OK(db, calypso_put(db, "k1", 2, "default", 7));
    TU_OK(a, calypso_put(a, "k1", 2, "in a", 4));
    TU_OK(a, calypso_put(a, "k2", 2, "a2", 2));
    TU_OK(b, calypso_put(b, "k2", 2, "in b", 4));
    const void *keys[3] = { "k1", "k2", "k3" };
    size_t klens[3] = { 2, 2, 2 }, vlens[3];
    void *vals[3];
    int rcs[3];
    gm_check(db, 3, keys, klens);
    gm_check(a, 3, keys, klens);
    gm_check(b, 3, keys, klens);
    TU_OK(a, calypso_get_many(a, 3, keys, klens, vals, vlens, rcs));
    assert_int_equal(rcs[0], CALYPSO_OK);
    assert_memory_equal(vals[0], "in a", 4);
    assert_memory_equal(vals[1], "a2", 2);
    assert_int_equal(rcs[2], CALYPSO_ENOTFOUND);
    for (int i = 0; i < 3; i++) calypso_free(vals[i]);
    TU_OK(db, calypso_ns_drop(db, "a", 1));
    calypso_get_many(a, 3, keys, klens, vals, vlens, rcs);
    for (int i = 0; i < 3; i++) assert_null(vals[i]);
    assert_true(rcs[0] != CALYPSO_OK && rcs[1] != CALYPSO_OK);
    TU_OK(b, calypso_get_many(b, 3, keys, klens, vals, vlens, rcs));
    assert_int_equal(rcs[1], CALYPSO_OK);
    assert_memory_equal(vals[1], "in b", 4);
    calypso_free(vals[1]);
    calypso_close(a);
    calypso_close(b);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

// >> beside overwrites and merges ------------------------------------------------------

#define GM_KEYS 2000

typedef struct gm_run { calypso *db; int stop; int bad; uint64_t seed, reads, merges; } gm_run;

/* Values are "key:version", so a reader can tell a value belongs to its key. */
static void *gm_writer(void *arg)
{
    gm_run *r = arg;
    uint64_t rng = r->seed;
    char k[16], v[48];
    for (uint64_t n = 0; !__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE); n++) {
        int kl = snprintf(k, sizeof k, "g%05d", (int)tu_below(&rng, GM_KEYS));
        int vl = snprintf(v, sizeof v, "%s:%llu", k, (unsigned long long)n);
        if (calypso_put(r->db, k, (size_t)kl, v, (size_t)vl)) { r->bad = 1; break; }
    }
    return NULL;
}

static void *gm_merger(void *arg)
{
    gm_run *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int rc = calypso_merge(r->db);
        if (rc && rc != CALYPSO_EMERGING) { r->bad = 1; break; }
        r->merges++;
        usleep(10000);
    }
    return NULL;
}

static void test_get_many_beside_merges(void **state)
{
    (void)state;
    alarm(120);
    char *dir = tu_tmpdir();
    calypso_options o = gm_opts();
    o.max_datafile_size = 16 << 10;
    o.max_open_files = 4;
    gm_run r = { 0 };
    r.seed = tu_seed("test_get_many_beside_merges");
    TU_OK(NULL, calypso_open(dir, &o, &r.db));
    char key[GM_KEYS][16];
    const void *keys[64];
    size_t klens[64];
    for (int i = 0; i < GM_KEYS; i++) {
        int kl = snprintf(key[i], sizeof key[i], "g%05d", i);
        TU_OK(r.db, calypso_put(r.db, key[i], (size_t)kl, key[i], (size_t)kl));
    }
    pthread_t w, m;
    assert_int_equal(pthread_create(&w, NULL, gm_writer, &r), 0);
    assert_int_equal(pthread_create(&m, NULL, gm_merger, &r), 0);
    uint64_t rng = r.seed ^ 0x5555;
    time_t t0 = time(NULL);
    while (time(NULL) - t0 < 2) {
        size_t n = 1 + (size_t)tu_below(&rng, 64);
        for (size_t i = 0; i < n; i++) {
            int at = (int)tu_below(&rng, GM_KEYS);
            keys[i] = key[at];
            klens[i] = 6;
        }
        void *vals[64];
        size_t vlens[64];
        int rcs[64];
        TU_OK(r.db, calypso_get_many(r.db, n, keys, klens, vals, vlens, rcs));
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(rcs[i], CALYPSO_OK);
            /* the key itself, or "key:version" */
            assert_true(vlens[i] >= 6);
            assert_memory_equal(vals[i], keys[i], 6);
            assert_true(vlens[i] == 6 || ((char *)vals[i])[6] == ':');
            calypso_free(vals[i]);
        }
        r.reads += n;
    }
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(w, NULL);
    pthread_join(m, NULL);
    assert_false(r.bad);
    print_message("%llu keys read by get_many beside overwrites and %llu merges\n",
                  (unsigned long long)r.reads, (unsigned long long)r.merges);
    TU_OK(r.db, calypso_close(r.db));
    tu_rmrf(dir);
    alarm(0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_search_many_matches_search),
        cmocka_unit_test(test_get_many_as_get),
        cmocka_unit_test(test_get_many_damaged_record),
        cmocka_unit_test(test_get_many_in_namespaces),
        cmocka_unit_test(test_get_many_beside_merges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
