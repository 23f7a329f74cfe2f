/*
 * test_keydir.c: the keydir's batched iterator (keydir.c) against a sorted
 * reference: every seek (first, last, >=, >, <=, <), both directions,
 * prefix and far-end bounds, prefetch steps past the cap, visit budgets,
 * take limits and a visitor that fills up, over a keydir with expired keys
 * and, beside it, a second tree walked in step. Each batch must hold
 * kd_lock shared while it visits, visit no more than its budget (expired
 * keys passed over included) and exactly its budget when nothing else
 * stopped it, and the batches together must give the reference's keys,
 * each once, in order. Randomized: CALYPSO_SEED replays a run.
 */
#include "testutil.h"
#include "engine.h"

#define NKEYS   1500
#define ROUNDS  300
#define MAXKLEN 10

typedef struct rkey {
    uint8_t k[MAXKLEN];
    size_t  klen;
    int     in_kd;      /* in the keydir                                */
    int     expired;    /* ... and expired                              */
    int     has_ttl;    /* ... with an expiry (expired or not)          */
    int     in_other;   /* in the other tree (its loc.off = its index)  */
} rkey;

static int rkey_cmp(const void *a, const void *b)
{
    const rkey *x = a, *y = b;
    return cy_keydir_cmp(x->k, x->klen, y->k, y->klen);
}

static const uint8_t alphabet[] = { 'a', 'b', 'c', 0x00, 0xff };

static void random_key(uint64_t *seed, uint8_t *k, size_t *klen, size_t maxlen)
{
    *klen = 1 + (size_t)tu_below(seed, maxlen);
    for (size_t i = 0; i < *klen; i++) k[i] = alphabet[tu_below(seed, sizeof alphabet)];
}

/* Sorted, unique keys; each in the keydir, the other tree or both. */
static size_t make_keys(uint64_t *seed, rkey *r)
{
    for (size_t i = 0; i < NKEYS; i++) {
        memset(&r[i], 0, sizeof r[i]);
        random_key(seed, r[i].k, &r[i].klen, MAXKLEN);
    }
    qsort(r, NKEYS, sizeof *r, rkey_cmp);
    size_t n = 0;
    for (size_t i = 0; i < NKEYS; i++)
        if (n == 0 || rkey_cmp(&r[n - 1], &r[i]) != 0) r[n++] = r[i];
    for (size_t i = 0; i < n; i++) {
        unsigned pick = (unsigned)tu_below(seed, 6);
        r[i].in_kd = pick != 0;
        r[i].in_other = pick <= 1;
        r[i].expired = r[i].in_kd && tu_below(seed, 3) == 0;
        r[i].has_ttl = r[i].expired || (r[i].in_kd && tu_below(seed, 4) == 0);
    }
    return n;
}

typedef struct visit_state {
    calypso      *db;
    const rkey   *r;
    size_t        n;
    uint64_t     *seed;
    int           two;                /* the other tree is walked too   */
    int           no_full;            /* the visitor is never full      */
    int           locked_by_caller;
    size_t        visited, taken;     /* this batch                    */
    int           refused;            /* this batch ended on CY_KD_FULL */
    size_t        got[NKEYS];         /* indexes of the keys taken      */
    size_t        ngot;
} visit_state;

static size_t find_key(const visit_state *v, const uint8_t *k, size_t klen)
{
    rkey probe;
    memcpy(probe.k, k, klen);
    probe.klen = klen;
    const rkey *hit = bsearch(&probe, v->r, v->n, sizeof *v->r, rkey_cmp);
    assert_non_null(hit);
    return (size_t)(hit - v->r);
}

static int visit(const cy_kd_ent *e, void *ctx)
{
    visit_state *v = ctx;
    uint32_t readers = __atomic_load_n(&v->db->kd_lock.state, __ATOMIC_RELAXED) & CY_RW_READERS;
    assert_true(readers >= 1);                     /* the batch holds it shared */
    if (v->locked_by_caller) assert_int_equal(readers, 1);   /* and not twice */
    /* Now and then the visitor is full: the key must come again. */
    if (!v->no_full && v->visited > 0 && tu_below(v->seed, 40) == 0) {
        v->refused = 1;
        return CY_KD_FULL;
    }
    size_t i = find_key(v, e->key, e->klen);
    const rkey *k = &v->r[i];
    assert_int_equal(e->loc != NULL, k->in_kd);
    assert_int_equal(e->other != NULL, v->two && k->in_other);
    if (e->other) assert_int_equal(e->other->off, i);
    assert_int_equal(e->expired, k->expired);
    assert_int_equal(e->expiry != 0, k->has_ttl);
    v->visited++;
    if (k->expired && !(v->two && k->in_other)) return CY_KD_PASS;   /* passed over */
    v->got[v->ngot++] = i;
    v->taken++;
    return CY_KD_TAKE;
}

/* The reference: from the seek, in the walk's order, every key until the
 * first outside the bounds; expired keydir-only keys are passed over. */
static size_t reference(const rkey *r, size_t n, int backward, long start, const uint8_t *pfx,
                        size_t plen, const uint8_t *hi, size_t hilen, int two, size_t *out)
{
    size_t m = 0;
    for (long i = start; i >= 0 && i < (long)n; i += backward ? -1 : 1) {
        const rkey *k = &r[i];
        if (!two && !k->in_kd) continue;
        if (!k->in_kd && !k->in_other) continue;
        if (plen && (k->klen < plen || memcmp(k->k, pfx, plen) != 0)) break;
        if (hi) {
            int c = cy_keydir_cmp(k->k, k->klen, hi, hilen);
            if (backward ? c < 0 : c > 0) break;
        }
        if (k->in_kd && !(two && k->in_other) && k->expired) continue;
        out[m++] = (size_t)i;
    }
    return m;
}

/* Where a seek starts in r: the first index the walk may visit. */
static long seek_start(const rkey *r, size_t n, int op, const uint8_t *k, size_t klen)
{
    long i;
    switch (op) {
    case CY_SEEK_FIRST: return 0;
    case CY_SEEK_LAST:  return (long)n - 1;
    case CY_SEEK_GE: case CY_SEEK_GT:
        for (i = 0; i < (long)n; i++) {
            int c = cy_keydir_cmp(r[i].k, r[i].klen, k, klen);
            if (op == CY_SEEK_GE ? c >= 0 : c > 0) break;
        }
        return i;
    default:
        for (i = (long)n - 1; i >= 0; i--) {
            int c = cy_keydir_cmp(r[i].k, r[i].klen, k, klen);
            if (op == CY_SEEK_LE ? c <= 0 : c < 0) break;
        }
        return i;
    }
}

static calypso *open_quiet(const char *dir)
{
    calypso_options o;
    calypso_options_default(&o);
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;   /* expired keys stay */
    o.merge_trigger_ratio = -1;
    calypso *db;
    assert_int_equal(calypso_open(dir, &o, &db), 0);
    return db;
}

/* Walks the keydir (two: and the other tree beside it) ROUNDS times in
 * random ways and checks each walk against the reference. */
static void run_rounds(int two)
{
    uint64_t seed = tu_seed(two ? "keydir iterator, two trees" : "keydir iterator");
    char *dir = tu_tmpdir();
    calypso *db = open_quiet(dir);
    static rkey r[NKEYS];
    size_t n = make_keys(&seed, r);
    cy_art other;
    cy_art_init(&other);
    for (size_t i = 0; i < n; i++) {
        if (r[i].in_kd) {
            int rc = r[i].has_ttl ? calypso_put_ttl(db, r[i].k, r[i].klen, "v", 1,
                                                    r[i].expired ? 1000 : 3600000)
                                  : calypso_put(db, r[i].k, r[i].klen, "v", 1);
            assert_int_equal(rc, 0);
        }
        cy_loc at = { i, 0, 0 };
        if (r[i].in_other) assert_true(cy_art_insert(&other, r[i].k, r[i].klen, &at, NULL) >= 0);
    }
    cy_clock_shift(2000);
    static visit_state v;
    static size_t want[NKEYS];
    uint64_t batches = 0, budget_stops = 0;
    for (int round = 0; round < ROUNDS; round++) {
        static const int fwd[] = { CY_SEEK_FIRST, CY_SEEK_GE, CY_SEEK_GT };
        static const int bwd[] = { CY_SEEK_LAST, CY_SEEK_LE, CY_SEEK_LT };
        int backward = (int)tu_below(&seed, 2);
        int op = backward ? bwd[tu_below(&seed, 3)] : fwd[tu_below(&seed, 3)];
        uint8_t sk[MAXKLEN], pfx[2], hi[MAXKLEN];
        size_t sklen, plen = 0, hilen = 0;
        random_key(&seed, sk, &sklen, MAXKLEN);
        if (tu_below(&seed, 3) == 0) random_key(&seed, pfx, &plen, 2);
        int have_hi = tu_below(&seed, 3) == 0;
        if (have_hi) random_key(&seed, hi, &hilen, MAXKLEN);
        size_t nwant = reference(r, n, backward, seek_start(r, n, op, sk, sklen), pfx, plen,
                                 have_hi ? hi : NULL, hilen, two, want);

        cy_kd_iter it;
        cy_kd_iter_init(&it, db, db->ns, op, sk, sklen);
        it.backward = backward;
        it.other = two ? &other : NULL;
        it.flags = CY_KD_EXPIRY;
        it.now = cy_now_ms();
        it.pfx = pfx;
        it.plen = plen;
        it.hi = have_hi ? hi : NULL;
        it.hilen = hilen;
        it.step = 1 + (size_t)tu_below(&seed, CY_KD_STEP_MAX + 100);   /* past the cap too */
        it.visit = 1 + (size_t)tu_below(&seed, 300);
        memset(&v, 0, sizeof v);
        v.db = db;
        v.r = r;
        v.n = n;
        v.seed = &seed;
        v.two = two;
        int rc;
        do {
            size_t max = 1 + (size_t)tu_below(&seed, 200);
            v.visited = v.taken = 0;
            v.refused = 0;
            rc = cy_kd_iter_gather(&it, max, visit, &v);
            batches++;
            assert_true(rc == 0 || rc == 1);
            assert_true(v.visited <= it.visit);
            assert_true(v.taken <= max);
            if (rc == 1) {
                assert_true(v.visited >= 1);
                /* Stopped by neither the visitor nor the take limit: by the
                 * budget, which expired keys passed over count against. */
                if (!v.refused && v.taken < max) {
                    assert_int_equal(v.visited, it.visit);
                    budget_stops++;
                }
            }
        } while (rc == 1);
        assert_int_equal(cy_kd_iter_gather(&it, 10, visit, &v), 0);   /* stays at the end */
        cy_kd_iter_free(&it);
        assert_int_equal(v.ngot, nwant);
        for (size_t i = 0; i < nwant; i++) assert_int_equal(v.got[i], want[i]);
    }
    printf("%zu keys, %d walks, %llu batches, %llu ended by the visit budget\n", n, ROUNDS,
           (unsigned long long)batches, (unsigned long long)budget_stops);
    assert_true(budget_stops > 0);
    cy_clock_shift(-2000);
    cy_art_destroy(&other);
    calypso_close(db);
    tu_rmrf(dir);
}

static void test_iter_one_tree(void **state)
{
    (void)state;
    run_rounds(0);
}

static void test_iter_two_trees(void **state)
{
    (void)state;
    run_rounds(1);
}

/* CY_KD_LOCKED: a gather under the caller's hold of kd_lock takes no hold
 * of its own (the visitor checks there is exactly one), and an unlimited
 * budget walks everything in one batch, as delete_all's listing needs. */
static void test_iter_under_callers_lock(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("keydir iterator, caller's lock");
    char *dir = tu_tmpdir();
    calypso *db = open_quiet(dir);
    static rkey r[NKEYS];
    size_t n = make_keys(&seed, r), inkd = 0;
    for (size_t i = 0; i < n; i++) {
        r[i].in_other = 0;
        r[i].expired = 0;
        r[i].has_ttl = 0;
        if (!r[i].in_kd) continue;
        assert_int_equal(calypso_put(db, r[i].k, r[i].klen, "v", 1), 0);
        inkd++;
    }
    static visit_state v;
    memset(&v, 0, sizeof v);
    v.db = db;
    v.r = r;
    v.n = n;
    v.seed = &seed;
    v.no_full = 1;
    v.locked_by_caller = 1;
    cy_kd_iter it;
    cy_kd_iter_init(&it, db, db->ns, CY_SEEK_FIRST, NULL, 0);
    it.flags = CY_KD_LOCKED;
    it.visit = SIZE_MAX;
    cy_rdlock(&db->kd_lock);
    int rc = cy_kd_iter_gather(&it, SIZE_MAX, visit, &v);
    cy_unlock(&db->kd_lock);
    cy_kd_iter_free(&it);
    assert_int_equal(rc, 0);
    assert_int_equal(v.ngot, inkd);
    assert_int_equal(v.visited, inkd);
    calypso_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iter_one_tree),
        cmocka_unit_test(test_iter_two_trees),
        cmocka_unit_test(test_iter_under_callers_lock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
