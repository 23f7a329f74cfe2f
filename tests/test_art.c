/*
 * test_art.c: the ART key directory (src/art.c). Node growth and shrinking
 * through every kind, keys that are prefixes of each other (the empty key
 * and 0x00 bytes included), long keys, every seek operator at its
 * boundaries, walks, allocation failure at every allocation of an insert,
 * and a randomized differential test against a sorted array (seed printed;
 * CALYPSO_SEED replays it). Every test ends with cy_art_verify, which checks
 * the tree's invariants and its byte count. The deep chain, allocation
 * failure and differential tests run again with the finger on
 * (cy_art_finger_on: inserts start where the last insert's path parts from
 * theirs), the differential one with runs of keys inserted in order.
 */
#include "testutil.h"
#include "internal.h"

#if defined(__linux__)
#include <sys/mman.h>
#endif

// >> helpers ---------------------------------------------------------------

static cy_loc loc_of(uint64_t v)
{
    cy_loc l;
    l.off = v;
    l.fid = (uint32_t)(v * 7u) & CY_LOC_FIDMASK;
    l.size = (uint32_t)(v >> 3);
    return l;
}

static int loc_eq(const cy_loc *a, const cy_loc *b)
{
    return a->off == b->off && a->fid == b->fid && a->size == b->size;
}

static int keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int r = m ? memcmp(a, b, m) : 0;
    if (r) return r;
    return (alen > blen) - (alen < blen);
}

static void put(cy_art *t, const void *k, size_t klen, uint64_t v)
{
    cy_loc l = loc_of(v);
    assert_true(cy_art_insert(t, k, klen, &l, NULL) >= 0);
}

/* Inserts k with k[at] = b for b in [from, to), valued base + b, while every
 * allocation fails: none may be needed. */
static void put_run_without_allocating(cy_art *t, uint8_t *k, size_t klen, size_t at,
                                       unsigned from, unsigned to, uint64_t base)
{
    cy_alloc_fail_at(1, 1);
    for (unsigned b = from; b < to; b++) {
        k[at] = (uint8_t)b;
        cy_loc l = loc_of(base + b);
        assert_int_equal(cy_art_insert(t, k, klen, &l, NULL), 0);
    }
    assert_int_equal(cy_alloc_count(), 0);
    cy_alloc_fail_at(0, 0);
}

/* A random 16-byte key. */
static void rand_key16(uint64_t *s, uint8_t key[16])
{
    uint64_t a = tu_rand(s), b = tu_rand(s);
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
}

/* Fails naming the caller's line when key is absent or holds another value. */
#define must_find(t, k, klen, v) must_find_at((t), (k), (klen), (v), __LINE__)
static void must_find_at(const cy_art *t, const void *k, size_t klen, uint64_t v, int line)
{
    cy_loc want = loc_of(v);
    const cy_loc *got = cy_art_search(t, k, klen);
    if (!got) fail_msg("line %d: key of %zu bytes not found", line, klen);
    if (!loc_eq(got, &want)) fail_msg("line %d: key of %zu bytes holds %llu, not %llu", line,
                                      klen, (unsigned long long)got->off, (unsigned long long)v);
}

static void check_sound(const cy_art *t, uint64_t kinds[4])
{
    int bad = cy_art_verify(t, kinds);
    if (bad) fail_msg("cy_art_verify: broken check at art.c:%d", bad);
}

/* Iterates forward and backward, checking strict order both ways and the
 * count. */
static void check_order(const cy_art *t)
{
    cy_art_iter it;
    cy_art_iter_init(&it, t);
    uint8_t *prev = NULL;
    size_t plen = 0;
    uint64_t n = 0;
    for (int rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0); rc == 1; rc = cy_art_iter_next(&it)) {
        size_t klen;
        const uint8_t *k = cy_art_iter_key(&it, &klen);
        if (prev) assert_true(keycmp(prev, plen, k, klen) < 0);
        free(prev);
        prev = malloc(klen + 1);
        memcpy(prev, k, klen);
        plen = klen;
        n++;
    }
    assert_int_equal(n, t->count);
    free(prev);
    prev = NULL;
    n = 0;
    for (int rc = cy_art_iter_seek(&it, CY_SEEK_LAST, NULL, 0); rc == 1; rc = cy_art_iter_prev(&it)) {
        size_t klen;
        const uint8_t *k = cy_art_iter_key(&it, &klen);
        if (prev) assert_true(keycmp(prev, plen, k, klen) > 0);
        free(prev);
        prev = malloc(klen + 1);
        memcpy(prev, k, klen);
        plen = klen;
        n++;
    }
    assert_int_equal(n, t->count);
    free(prev);
    cy_art_iter_free(&it);
}

// >> basics ----------------------------------------------------------------

static void test_empty_tree(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    assert_null(cy_art_search(&t, "a", 1));
    assert_null(cy_art_search(&t, NULL, 0));
    assert_int_equal(cy_art_delete(&t, "a", 1, NULL), 0);
    for (int op = CY_SEEK_FIRST; op <= CY_SEEK_EQ; op++)
        assert_int_equal(cy_art_iter_seek(&it, op, "a", 1), 0);
    assert_int_equal(cy_art_iter_next(&it), 0);
    assert_int_equal(cy_art_iter_prev(&it), 0);
    assert_int_equal(t.bytes, 0);
    cy_art_iter_free(&it);
    cy_art_destroy(&t);
}

static void test_insert_replace_delete(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    cy_loc a = loc_of(1), b = loc_of(2), old;
    assert_int_equal(cy_art_insert(&t, "hello", 5, &a, &old), 0);
    assert_int_equal(cy_art_insert(&t, "hello", 5, &b, &old), 1);
    assert_true(loc_eq(&old, &a));
    must_find(&t, "hello", 5, 2);
    assert_null(cy_art_search(&t, "hell", 4));
    assert_null(cy_art_search(&t, "hello!", 6));
    assert_int_equal(t.count, 1);
    assert_int_equal(t.bytes, 24);   /* leaf: 18 + 5, but never below its sizeof */
    /* The returned pointer may be written in place. */
    cy_loc *p = cy_art_search(&t, "hello", 5);
    *p = loc_of(3);
    must_find(&t, "hello", 5, 3);
    assert_int_equal(cy_art_delete(&t, "hello", 5, &old), 1);
    cy_loc three = loc_of(3);
    assert_true(loc_eq(&old, &three));
    assert_int_equal(cy_art_delete(&t, "hello", 5, NULL), 0);
    assert_int_equal(t.count, 0);
    assert_int_equal(t.bytes, 0);
    assert_null(t.root);
    cy_art_destroy(&t);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    cy_loc l = loc_of(1);
    static uint8_t big[CY_ART_MAX_KEY + 1];
    assert_int_equal(cy_art_insert(&t, big, sizeof big, &l, NULL), CALYPSO_EINVAL);
    assert_int_equal(cy_art_insert(&t, NULL, 3, &l, NULL), CALYPSO_EINVAL);
    assert_null(cy_art_search(&t, big, sizeof big));
    assert_int_equal(cy_art_delete(&t, big, sizeof big, NULL), 0);
    assert_int_equal(t.count, 0);
    assert_int_equal(t.bytes, 0);
    cy_art_destroy(&t);
}

// >> prefix keys and binary keys ---------------------------------------------

struct kv { const char *k; size_t len; };
#define KV(s) { s, sizeof(s) - 1 }

static void test_prefix_and_binary_keys(void **state)
{
    (void)state;
    /* Already in memcmp order, shorter first. */
    static const struct kv keys[] = {
        KV(""), KV("\x00"), KV("\x00\x00"), KV("\x00\x00\x00"), KV("\x00\x01"),
        KV("\x00\xff"), KV("a"), KV("a\x00"), KV("a\x00" "b"), KV("ab"),
        KV("abc"), KV("abc\x00"), KV("abd"), KV("b"), KV("\xff"),
        KV("\xff\x00"), KV("\xff\xff"), KV("\xff\xff\xff"),
    };
    size_t n = sizeof keys / sizeof keys[0];
    /* Several insertion orders: each builds the tree differently. */
    for (int order = 0; order < 3; order++) {
        cy_art t;
        cy_art_init(&t);
        for (size_t i = 0; i < n; i++) {
            size_t j = order == 0 ? i : order == 1 ? n - 1 - i : (i * 7) % n;
            cy_loc l = loc_of(j);
            assert_int_equal(cy_art_insert(&t, keys[j].k, keys[j].len, &l, NULL), 0);
            check_sound(&t, NULL);
        }
        for (size_t i = 0; i < n; i++) must_find(&t, keys[i].k, keys[i].len, i);
        assert_null(cy_art_search(&t, "abcd", 4));
        assert_null(cy_art_search(&t, "\x00\x00\x00\x00", 4));
        cy_art_iter it;
        cy_art_iter_init(&it, &t);
        size_t i = 0;
        for (int rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0); rc == 1; rc = cy_art_iter_next(&it), i++) {
            size_t klen;
            const uint8_t *k = cy_art_iter_key(&it, &klen);
            assert_int_equal(klen, keys[i].len);
            assert_memory_equal(k, keys[i].k, klen);
            cy_loc want = loc_of(i);
            assert_true(loc_eq(cy_art_iter_loc(&it), &want));
        }
        assert_int_equal(i, n);
        cy_art_iter_free(&it);
        check_order(&t);
        /* Delete every other key, then the rest, checking as we go. */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t j = (size_t)pass; j < n; j += 2) {
                assert_int_equal(cy_art_delete(&t, keys[j].k, keys[j].len, NULL), 1);
                check_sound(&t, NULL);
                for (size_t q = 0; q < n; q++) {
                    int gone = q % 2 == (size_t)pass ? q <= j : pass == 1;
                    if (gone) assert_null(cy_art_search(&t, keys[q].k, keys[q].len));
                    else must_find(&t, keys[q].k, keys[q].len, q);
                }
            }
        }
        assert_int_equal(t.count, 0);
        assert_int_equal(t.bytes, 0);
        cy_art_destroy(&t);
    }
}

// >> long keys ------------------------------------------------------------------

static void test_long_keys(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    uint8_t *big = malloc(CY_ART_MAX_KEY);
    for (size_t i = 0; i < CY_ART_MAX_KEY; i++) big[i] = (uint8_t)(i * 31 + 7);
    put(&t, big, CY_ART_MAX_KEY, 1);
    put(&t, big, CY_ART_MAX_KEY - 1, 2);       /* a prefix of it */
    put(&t, big, 40000, 3);
    big[50000] ^= 1;
    put(&t, big, CY_ART_MAX_KEY, 4);           /* splits 50000 bytes in */
    must_find(&t, big, CY_ART_MAX_KEY, 4);
    big[50000] ^= 1;
    must_find(&t, big, CY_ART_MAX_KEY, 1);
    must_find(&t, big, CY_ART_MAX_KEY - 1, 2);
    must_find(&t, big, 40000, 3);
    assert_null(cy_art_search(&t, big, 40001));
    check_sound(&t, NULL);
    check_order(&t);
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    /* After big[..40000): the flipped key (its byte 50000 is lower), then
     * big[..65534), then big. */
    assert_int_equal(cy_art_iter_seek(&it, CY_SEEK_GT, big, 40000), 1);
    size_t klen;
    const uint8_t *got = cy_art_iter_key(&it, &klen);
    assert_int_equal(klen, CY_ART_MAX_KEY);
    assert_int_equal(got[50000], big[50000] ^ 1);
    assert_int_equal(cy_art_iter_next(&it), 1);
    cy_art_iter_key(&it, &klen);
    assert_int_equal(klen, CY_ART_MAX_KEY - 1);
    cy_art_iter_free(&it);

    /* 300-byte keys sharing 0..299 bytes: splits deep inside long prefixes. */
    uint8_t k[300];
    memset(k, 'p', sizeof k);
    for (size_t cut = 0; cut < 290; cut += 13) {
        k[cut] = 'q';
        put(&t, k, sizeof k, 100 + cut);
        put(&t, k, cut + 1, 1000 + cut);
        k[cut] = 'p';
    }
    put(&t, k, sizeof k, 99);
    check_sound(&t, NULL);
    check_order(&t);
    for (size_t cut = 0; cut < 290; cut += 13) {
        k[cut] = 'q';
        must_find(&t, k, sizeof k, 100 + cut);
        must_find(&t, k, cut + 1, 1000 + cut);
        k[cut] = 'p';
    }
    for (size_t cut = 0; cut < 290; cut += 13) {
        k[cut] = 'q';
        assert_int_equal(cy_art_delete(&t, k, sizeof k, NULL), 1);
        check_sound(&t, NULL);
        k[cut] = 'p';
    }
    must_find(&t, k, sizeof k, 99);
    cy_art_destroy(&t);
    assert_int_equal(t.bytes, 0);
    free(big);
}

/* "", "a", "aa", ... nested 2000 deep: a tall tree of terminal leaves. */
static void deep_prefix_chain(int finger)
{
    enum { DEPTH = 2000 };
    cy_art t;
    cy_art_init(&t);
    if (finger) cy_art_finger_on(&t);
    static uint8_t k[DEPTH];
    memset(k, 'a', sizeof k);
    for (size_t i = 0; i < DEPTH; i += 2) put(&t, k, i, i);
    for (size_t i = 1; i < DEPTH; i += 2) put(&t, k, i, i);
    check_sound(&t, NULL);
    check_order(&t);
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    assert_int_equal(cy_art_iter_seek(&it, CY_SEEK_LT, k, 1000), 1);
    size_t klen;
    cy_art_iter_key(&it, &klen);
    assert_int_equal(klen, 999);
    cy_art_iter_free(&it);
    for (size_t i = 0; i < DEPTH; i += 3) assert_int_equal(cy_art_delete(&t, k, i, NULL), 1);
    check_sound(&t, NULL);
    for (size_t i = 0; i < DEPTH; i++) {
        if (i % 3 == 0) assert_null(cy_art_search(&t, k, i));
        else must_find(&t, k, i, i);
    }
    /* Inserted again in order, deleted ones and all. */
    for (size_t i = 0; i < DEPTH; i++) put(&t, k, i, i + 1);
    for (size_t i = 0; i < DEPTH; i++) must_find(&t, k, i, i + 1);
    check_sound(&t, NULL);
    cy_art_destroy(&t);
}

static void test_deep_prefix_chain(void **state)
{
    (void)state;
    deep_prefix_chain(0);
}

static void test_deep_prefix_chain_finger(void **state)
{
    (void)state;
    deep_prefix_chain(1);
}

// >> node growth and shrinking -----------------------------------------------

static int kind_of_root_node(const cy_art *t)
{
    uint64_t kinds[4];
    check_sound(t, kinds);
    int kind = -1, nodes = 0;
    for (int i = 0; i < 4; i++)
        if (kinds[i]) { kind = i; nodes += (int)kinds[i]; }
    assert_true(nodes <= 1);
    return kind;   /* -1: no inner node (a lone leaf) */
}

/* Keys "k" + b: one node whose children are the bytes b. */
static void test_grow_and_shrink(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    uint8_t k[2] = { 'k', 0 };
    uint64_t peak = 0;
    for (unsigned i = 0; i < 256; i++) {
        k[1] = (uint8_t)((i * 101u) & 0xff);   /* out of order */
        put(&t, k, 2, i);
        int kind = kind_of_root_node(&t);
        unsigned n = i + 1;
        int want = n == 1 ? -1 : n <= 4 ? 0 : n <= 16 ? 1 : n <= 224 ? 2 : 3;
        assert_int_equal(kind, want);
    }
    peak = t.bytes;
    check_order(&t);
    for (unsigned i = 0; i < 256; i++) {
        k[1] = (uint8_t)((i * 101u) & 0xff);
        must_find(&t, k, 2, i);
    }
    /* Back down: 256 -> 48 -> 16 -> 4 -> a lone leaf, with hysteresis. */
    int last = 3;
    for (unsigned i = 0; i < 255; i++) {
        k[1] = (uint8_t)((i * 101u) & 0xff);
        assert_int_equal(cy_art_delete(&t, k, 2, NULL), 1);
        unsigned n = 255 - i;
        int kind = kind_of_root_node(&t);
        assert_true(kind <= last);
        last = kind;
        if (n == 193) assert_int_equal(kind, 3);
        if (n == 192) assert_int_equal(kind, 2);
        if (n == 13) assert_int_equal(kind, 2);
        if (n == 12) assert_int_equal(kind, 1);
        if (n == 5) assert_int_equal(kind, 1);
        if (n == 3) assert_int_equal(kind, 0);
        if (n == 1) assert_int_equal(kind, -1);
        for (unsigned j = i + 1; j < 256; j += 17) {
            k[1] = (uint8_t)((j * 101u) & 0xff);
            must_find(&t, k, 2, j);
        }
        if (n % 16 == 0) check_order(&t);
    }
    assert_true(t.bytes < peak);
    assert_int_equal(t.bytes, 24);   /* one leaf left */
    cy_art_destroy(&t);
}

/* Deleting the sibling of an inner node folds the parent into it: the
 * child's prefix grows by the parent's prefix and the byte between. */
static void test_collapse_recompresses_path(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    put(&t, "prefix-abc-1", 12, 1);
    put(&t, "prefix-abc-2", 12, 2);
    put(&t, "prefix-xyz", 10, 3);
    put(&t, "prefix-", 7, 4);          /* terminal of the top node */
    uint64_t kinds[4];
    check_sound(&t, kinds);
    assert_int_equal(kinds[0], 2);
    assert_int_equal(cy_art_delete(&t, "prefix-xyz", 10, NULL), 1);
    check_sound(&t, kinds);
    assert_int_equal(kinds[0], 2);      /* terminal + one child: no collapse */
    assert_int_equal(cy_art_delete(&t, "prefix-", 7, NULL), 1);
    check_sound(&t, kinds);
    assert_int_equal(kinds[0], 1);      /* collapsed */
    must_find(&t, "prefix-abc-1", 12, 1);
    must_find(&t, "prefix-abc-2", 12, 2);
    assert_null(cy_art_search(&t, "prefix-abd-1", 12));
    put(&t, "prefix-abd-1", 12, 5);     /* splits the recompressed prefix */
    put(&t, "pre", 3, 6);
    check_sound(&t, NULL);
    check_order(&t);
    must_find(&t, "prefix-abd-1", 12, 5);
    must_find(&t, "pre", 3, 6);
    cy_art_destroy(&t);
}

/* With every allocation failing, delete still works: nodes stay larger
 * than they need to be, and shrink on a later delete. The slab is spent
 * first, so that a smaller node would need a new chunk. */
static void test_delete_without_memory(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    uint8_t k[3] = { 'x', 'y', 0 };
    for (unsigned b = 0; b < 256; b++) { k[2] = (uint8_t)b; put(&t, k, 3, b); }
    put(&t, "xy", 2, 999);
    cy_art_slab_drain(&t);
    cy_alloc_fail_at(1, 1);
    for (unsigned b = 0; b < 250; b++) {
        k[2] = (uint8_t)b;
        assert_int_equal(cy_art_delete(&t, k, 3, NULL), 1);
    }
    assert_int_equal(cy_art_delete(&t, "xy", 2, NULL), 1);
    cy_alloc_fail_at(0, 0);
    assert_int_equal(kind_of_root_node(&t), 3);   /* still a Node256 */
    check_order(&t);
    k[2] = 250;
    assert_int_equal(cy_art_delete(&t, k, 3, NULL), 1);
    assert_int_equal(kind_of_root_node(&t), 1);   /* 5 left: a Node16 */
    for (unsigned b = 251; b < 256; b++) { k[2] = (uint8_t)b; must_find(&t, k, 3, b); }
    cy_art_destroy(&t);
}

// >> seek ---------------------------------------------------------------------------

/* Reference answer for a seek over a sorted key list: an index or -1. */
static long ref_seek(const struct kv *keys, long n, int op, const char *k, size_t klen)
{
    long ge = 0, gt;
    while (ge < n && keycmp((const uint8_t *)keys[ge].k, keys[ge].len, (const uint8_t *)k, klen) < 0) ge++;
    int eq = ge < n && keycmp((const uint8_t *)keys[ge].k, keys[ge].len, (const uint8_t *)k, klen) == 0;
    gt = ge + eq;
    switch (op) {
    case CY_SEEK_FIRST: return n ? 0 : -1;
    case CY_SEEK_LAST:  return n - 1;
    case CY_SEEK_GE:    return ge < n ? ge : -1;
    case CY_SEEK_GT:    return gt < n ? gt : -1;
    case CY_SEEK_LE:    return eq ? ge : ge - 1;
    case CY_SEEK_LT:    return ge - 1;
    default:            return eq ? ge : -1;
    }
}

static void test_seek_all_modes(void **state)
{
    (void)state;
    static const struct kv keys[] = {
        KV(""), KV("\x00"), KV("\x00\x01"), KV("b"), KV("ba"), KV("bab"), KV("bac"),
        KV("bb"), KV("c\x00"), KV("car"), KV("cart"), KV("cat"), KV("m"),
        KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm1"), KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm2"),
        KV("x\xff\xff"), KV("\xff"),
    };
    static const struct kv probes[] = {
        KV(""), KV("\x00"), KV("\x00\x00"), KV("\x00\x01"), KV("\x00\x02"), KV("a"),
        KV("b"), KV("b\x00"), KV("ba"), KV("baa"), KV("bab"), KV("babz"), KV("bad"),
        KV("bb"), KV("bc"), KV("c"), KV("c\x00"), KV("c\x00\x00"), KV("ca"), KV("car"),
        KV("carp"), KV("cart"), KV("cartz"), KV("cat"), KV("cb"), KV("m"), KV("mm"),
        KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm"), KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm0"),
        KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm1"), KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm15"),
        KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm3"), KV("mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmn"),
        KV("mmn"), KV("x"), KV("x\xff"), KV("x\xff\xff"), KV("x\xff\xff\x00"), KV("y"),
        KV("\xff"), KV("\xff\x00"), KV("\xff\xff"),
    };
    long n = (long)(sizeof keys / sizeof keys[0]);
    cy_art t;
    cy_art_init(&t);
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    /* Grow the set key by key so that every tree shape along the way is
     * probed, from a lone leaf up. */
    for (long have = 1; have <= n; have++) {
        put(&t, keys[have - 1].k, keys[have - 1].len, (uint64_t)have - 1);
        for (size_t p = 0; p < sizeof probes / sizeof probes[0]; p++) {
            for (int op = CY_SEEK_FIRST; op <= CY_SEEK_EQ; op++) {
                long want = ref_seek(keys, have, op, probes[p].k, probes[p].len);
                int rc = cy_art_iter_seek(&it, op, probes[p].k, probes[p].len);
                assert_int_equal(rc, want >= 0);
                if (want < 0) continue;
                size_t klen;
                const uint8_t *k = cy_art_iter_key(&it, &klen);
                assert_int_equal(klen, keys[want].len);
                assert_memory_equal(k, keys[want].k, klen);
                /* A step either way lands on the neighbour. */
                int dir = (int)(p + (size_t)op) % 2;
                rc = dir ? cy_art_iter_next(&it) : cy_art_iter_prev(&it);
                long nb = dir ? want + 1 : want - 1;
                assert_int_equal(rc, nb >= 0 && nb < have);
                if (!rc) continue;
                k = cy_art_iter_key(&it, &klen);
                assert_int_equal(klen, keys[nb].len);
                assert_memory_equal(k, keys[nb].k, klen);
            }
        }
    }
    cy_art_iter_free(&it);
    cy_art_destroy(&t);
}

// >> walks ------------------------------------------------------------------------

struct collect { int n, stop_at; char seen[64][40]; };

static int collect_fn(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    struct collect *c = ctx;
    (void)loc;
    assert_true(klen < 40);
    memcpy(c->seen[c->n], key, klen);
    c->seen[c->n][klen] = 0;
    c->n++;
    return c->n == c->stop_at ? 42 : 0;
}

static void test_walks(void **state)
{
    (void)state;
    static const char *keys[] = { "app", "apple", "apples", "applet", "apply", "apt", "b", "ba" };
    cy_art t;
    cy_art_init(&t);
    for (int i = 0; i < 8; i++) put(&t, keys[i], strlen(keys[i]), (uint64_t)i);
    struct collect c;
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_prefix(&t, "appl", 4, collect_fn, &c), 0);
    assert_int_equal(c.n, 4);
    assert_string_equal(c.seen[0], "apple");
    assert_string_equal(c.seen[3], "apply");
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_prefix(&t, "apple", 5, collect_fn, &c), 0);
    assert_int_equal(c.n, 3);
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_prefix(&t, "", 0, collect_fn, &c), 0);
    assert_int_equal(c.n, 8);
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_prefix(&t, "zz", 2, collect_fn, &c), 0);
    assert_int_equal(c.n, 0);
    memset(&c, 0, sizeof c);
    c.stop_at = 2;
    assert_int_equal(cy_art_walk_prefix(&t, "a", 1, collect_fn, &c), 42);
    assert_int_equal(c.n, 2);

    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_range(&t, "apple", 5, "apt", 3, collect_fn, &c), 0);
    assert_int_equal(c.n, 5);
    assert_string_equal(c.seen[0], "apple");
    assert_string_equal(c.seen[4], "apt");
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_range(&t, "applf", 5, "b", 1, collect_fn, &c), 0);
    assert_int_equal(c.n, 3);            /* apply, apt, b */
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_range(&t, "b", 1, "a", 1, collect_fn, &c), 0);
    assert_int_equal(c.n, 0);            /* start > end */
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_range(&t, "", 0, "\xff", 1, collect_fn, &c), 0);
    assert_int_equal(c.n, 8);
    memset(&c, 0, sizeof c);
    assert_int_equal(cy_art_walk_range(&t, "apt", 3, "apt", 3, collect_fn, &c), 0);
    assert_int_equal(c.n, 1);
    cy_art_destroy(&t);
}

/* A long scan in chunks: seek GT from the last key seen, with the tree
 * changing between chunks. */
static void test_resume_after_changes(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    char k[16];
    for (int i = 0; i < 1000; i += 2) put(&t, k, (size_t)snprintf(k, sizeof k, "key%04d", i), (uint64_t)i);
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    char last[16] = "";
    size_t lastlen = 0;
    int seen = 0, rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0);
    while (rc == 1) {
        for (int step = 0; step < 10 && rc == 1; step++, rc = cy_art_iter_next(&it)) {
            size_t klen;
            const uint8_t *key = cy_art_iter_key(&it, &klen);
            assert_true(keycmp((const uint8_t *)last, lastlen, key, klen) < 0);
            memcpy(last, key, klen);
            lastlen = klen;
            seen++;
        }
        if (rc != 1) break;
        /* Between chunks: add odd keys behind and ahead, delete one ahead. */
        int at = atoi(last + 3);
        if (at + 1 < 1000) put(&t, k, (size_t)snprintf(k, sizeof k, "key%04d", at + 1), 1);
        if (at > 0) put(&t, k, (size_t)snprintf(k, sizeof k, "key%04d", at - 1), 1);
        if (at + 4 < 1000) cy_art_delete(&t, k, (size_t)snprintf(k, sizeof k, "key%04d", at + 4), NULL);
        rc = cy_art_iter_seek(&it, CY_SEEK_GT, last, lastlen);
    }
    /* Each pause adds one key ahead (at + 1) and deletes one (at + 4). */
    assert_int_equal(seen, 500);
    assert_int_equal(rc, 0);
    cy_art_iter_free(&it);
    check_sound(&t, NULL);
    cy_art_destroy(&t);
}

// >> allocation failure -----------------------------------------------------------

struct snap { size_t n; uint8_t **k; size_t *len; cy_loc *loc; };

static void snap_take(const cy_art *t, struct snap *s)
{
    cy_art_iter it;
    cy_art_iter_init(&it, t);
    s->n = 0;
    s->k = malloc((t->count + 1) * sizeof *s->k);
    s->len = malloc((t->count + 1) * sizeof *s->len);
    s->loc = malloc((t->count + 1) * sizeof *s->loc);
    for (int rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0); rc == 1; rc = cy_art_iter_next(&it)) {
        size_t klen;
        const uint8_t *k = cy_art_iter_key(&it, &klen);
        s->k[s->n] = malloc(klen + 1);
        memcpy(s->k[s->n], k, klen);
        s->len[s->n] = klen;
        s->loc[s->n++] = *cy_art_iter_loc(&it);
    }
    cy_art_iter_free(&it);
}

static void snap_free(struct snap *s)
{
    for (size_t i = 0; i < s->n; i++) free(s->k[i]);
    free(s->k);
    free(s->len);
    free(s->loc);
}

static void snap_same(const cy_art *t, const struct snap *s)
{
    struct snap now;
    snap_take(t, &now);
    assert_int_equal(now.n, s->n);
    for (size_t i = 0; i < s->n; i++) {
        assert_int_equal(now.len[i], s->len[i]);
        assert_memory_equal(now.k[i], s->k[i], s->len[i]);
        assert_true(loc_eq(&now.loc[i], &s->loc[i]));
        assert_true(loc_eq(cy_art_search(t, s->k[i], s->len[i]), &s->loc[i]));
    }
    snap_free(&now);
}

static void insert_allocation_failure(int finger)
{
    cy_art t;
    cy_art_init(&t);
    if (finger) cy_art_finger_on(&t);
    char k[64];
    /* A populated tree with every node kind and some terminals. */
    for (int i = 0; i < 300; i++) put(&t, k, (size_t)snprintf(k, sizeof k, "n%c", i % 224 + 1), (uint64_t)i);
    for (int i = 0; i < 40; i++) put(&t, k, (size_t)snprintf(k, sizeof k, "m%c", 'A' + i), (uint64_t)i);
    for (int i = 0; i < 10; i++) put(&t, k, (size_t)snprintf(k, sizeof k, "s%c", 'A' + i), (uint64_t)i);
    for (int i = 0; i < 4; i++) put(&t, k, (size_t)snprintf(k, sizeof k, "f%c", 'A' + i), (uint64_t)i);
    put(&t, "longprefix-0123456789-abc", 25, 1);
    put(&t, "longprefix-0123456789-abd", 25, 2);
    put(&t, "leaf-alone", 10, 3);
    /* Each new key takes a different path through insert. */
    static const struct kv fresh[] = {
        KV("n\xf0"),          /* Node48 -> Node256 growth */
        KV("mz"),             /* Node48 capacity step */
        KV("sz"),             /* Node16 add */
        KV("fz"),             /* Node4 -> Node16 */
        KV("longprefix-01"),  /* split inside a compressed prefix, as terminal */
        KV("longprefix-0X"),  /* split inside a compressed prefix */
        KV("longprefix-0123456789-ab"), /* terminal slot on an existing node */
        KV("leaf-alone-2"),   /* split a leaf, the old one as terminal */
        KV("leaf-other"),     /* split a leaf */
        KV("n"),              /* terminal slot on the Node48 */
        KV("zzz"),            /* root add */
        KV("n\x01"),          /* overwrite: no allocation at all */
    };
    for (size_t f = 0; f < sizeof fresh / sizeof fresh[0]; f++) {
        struct snap before;
        snap_take(&t, &before);
        uint64_t count = t.count, bytes = t.bytes;
        cy_loc l = loc_of(777);
        for (uint64_t nth = 1;; nth++) {
            cy_alloc_fail_at(nth, 0);
            int rc = cy_art_insert(&t, fresh[f].k, fresh[f].len, &l, NULL);
            uint64_t made = cy_alloc_count();
            cy_alloc_fail_at(0, 0);
            if (rc == CALYPSO_ENOMEM) {
                assert_true(made >= nth);
                assert_int_equal(t.count, count);
                assert_int_equal(t.bytes, bytes);
                check_sound(&t, NULL);
                snap_same(&t, &before);
                continue;
            }
            assert_true(rc == 0 || rc == 1);
            assert_true(made < nth);
            must_find(&t, fresh[f].k, fresh[f].len, 777);
            break;
        }
        snap_free(&before);
        check_sound(&t, NULL);
    }
    /* A seek that cannot get its stack says so. */
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    cy_alloc_fail_at(1, 0);
    assert_int_equal(cy_art_iter_seek(&it, CY_SEEK_GE, "m", 1), CALYPSO_ENOMEM);
    cy_alloc_fail_at(0, 0);
    assert_int_equal(cy_art_iter_seek(&it, CY_SEEK_GE, "m", 1), 1);
    cy_art_iter_free(&it);
    cy_art_destroy(&t);
}

static void test_insert_allocation_failure(void **state)
{
    (void)state;
    insert_allocation_failure(0);
}

static void test_insert_allocation_failure_finger(void **state)
{
    (void)state;
    insert_allocation_failure(1);
}

// >> randomized differential test --------------------------------------------------

#define REF_MAXK 320

typedef struct ref_ent { uint8_t *k; size_t len; cy_loc loc; } ref_ent;
typedef struct ref { ref_ent *e; size_t n, cap; } ref;

/* Index of the first entry >= key; *eq tells whether it is the key. */
static size_t ref_lower(const ref *r, const uint8_t *k, size_t klen, int *eq)
{
    size_t lo = 0, hi = r->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (keycmp(r->e[mid].k, r->e[mid].len, k, klen) < 0) lo = mid + 1;
        else hi = mid;
    }
    *eq = lo < r->n && keycmp(r->e[lo].k, r->e[lo].len, k, klen) == 0;
    return lo;
}

static int ref_put(ref *r, const uint8_t *k, size_t klen, cy_loc loc, cy_loc *old)
{
    int eq;
    size_t i = ref_lower(r, k, klen, &eq);
    if (eq) {
        *old = r->e[i].loc;
        r->e[i].loc = loc;
        return 1;
    }
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 1024;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
    }
    memmove(r->e + i + 1, r->e + i, (r->n - i) * sizeof *r->e);
    r->e[i].k = malloc(klen + 1);
    memcpy(r->e[i].k, k, klen);
    r->e[i].len = klen;
    r->e[i].loc = loc;
    r->n++;
    return 0;
}

static int ref_del(ref *r, const uint8_t *k, size_t klen, cy_loc *old)
{
    int eq;
    size_t i = ref_lower(r, k, klen, &eq);
    if (!eq) return 0;
    *old = r->e[i].loc;
    free(r->e[i].k);
    memmove(r->e + i, r->e + i + 1, (r->n - i - 1) * sizeof *r->e);
    r->n--;
    return 1;
}

/* Keys from tiny alphabets (so that prefixes collide) and, one time in
 * eight, long keys sharing a 250-byte stem that differs at two places. */
static size_t gen_key(uint64_t *s, uint8_t *k)
{
    static const uint8_t alpha[4] = { 0x00, 'a', 'b', 0xff };
    size_t len = 0;
    if (tu_below(s, 8) == 0) {
        memset(k, 's', 250);
        k[100] = (uint8_t)('s' + tu_below(s, 2));
        k[200] = (uint8_t)('s' + tu_below(s, 2));
        len = 250;
    }
    unsigned a = 2 + (unsigned)tu_below(s, 3);
    size_t tail = (size_t)tu_below(s, 13);
    for (size_t i = 0; i < tail; i++) k[len++] = alpha[tu_below(s, a)];
    return len;
}

static void check_at(const cy_art_iter *it, int rc, const ref *r, long want)
{
    if (want < 0 || (size_t)want >= r->n) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, 1);
    size_t klen;
    const uint8_t *k = cy_art_iter_key(it, &klen);
    assert_int_equal(klen, r->e[want].len);
    if (klen) assert_memory_equal(k, r->e[want].k, klen);
    assert_true(loc_eq(cy_art_iter_loc(it), &r->e[want].loc));
}

static void diff_seek(uint64_t *s, cy_art_iter *it, const ref *r, const uint8_t *k, size_t klen)
{
    int op = (int)tu_below(s, 7), eq;
    long ge = (long)ref_lower(r, k, klen, &eq), n = (long)r->n, want;
    switch (op) {
    case CY_SEEK_FIRST: want = 0; break;
    case CY_SEEK_LAST:  want = n - 1; break;
    case CY_SEEK_GE:    want = ge; break;
    case CY_SEEK_GT:    want = ge + eq; break;
    case CY_SEEK_LE:    want = eq ? ge : ge - 1; break;
    case CY_SEEK_LT:    want = ge - 1; break;
    default:            want = eq ? ge : -1; break;
    }
    int rc = cy_art_iter_seek(it, op, k, klen);
    check_at(it, rc, r, want);
    for (int steps = (int)tu_below(s, 6); steps > 0 && rc == 1; steps--) {
        int fwd = (int)tu_below(s, 2);
        rc = fwd ? cy_art_iter_next(it) : cy_art_iter_prev(it);
        want += fwd ? 1 : -1;
        check_at(it, rc, r, want);
    }
}

struct diff_walk { const ref *r; size_t at, end, limit, seen; };

static int diff_walk_fn(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    struct diff_walk *w = ctx;
    assert_true(w->at < w->end);
    const ref_ent *e = &w->r->e[w->at++];
    assert_int_equal(klen, e->len);
    if (klen) assert_memory_equal(key, e->k, klen);
    assert_true(loc_eq(loc, &e->loc));
    return ++w->seen == w->limit ? 7 : 0;
}

static void diff_prefix(uint64_t *s, const cy_art *t, const ref *r, const uint8_t *k, size_t klen)
{
    size_t plen = (size_t)tu_below(s, klen + 1);
    int eq;
    struct diff_walk w = { r, ref_lower(r, k, plen, &eq), 0, 1 + (size_t)tu_below(s, 40), 0 };
    w.end = w.at;
    while (w.end < r->n && r->e[w.end].len >= plen && (!plen || memcmp(r->e[w.end].k, k, plen) == 0)) w.end++;
    int rc = cy_art_walk_prefix(t, k, plen, diff_walk_fn, &w);
    size_t expect = w.end - ref_lower(r, k, plen, &eq);
    assert_int_equal(rc, expect >= w.limit ? 7 : 0);
    assert_int_equal(w.seen, expect < w.limit ? expect : w.limit);
}

static void diff_range(uint64_t *s, const cy_art *t, const ref *r, const uint8_t *a, size_t alen)
{
    uint8_t b[REF_MAXK];
    size_t blen = gen_key(s, b);
    int eq;
    struct diff_walk w = { r, ref_lower(r, a, alen, &eq), 0, 1 + (size_t)tu_below(s, 40), 0 };
    size_t first = w.at;
    w.end = ref_lower(r, b, blen, &eq) + (size_t)eq;
    if (w.end < first) w.end = first;
    int rc = cy_art_walk_range(t, a, alen, b, blen, diff_walk_fn, &w);
    size_t expect = w.end - first;
    assert_int_equal(rc, expect >= w.limit ? 7 : 0);
    assert_int_equal(w.seen, expect < w.limit ? expect : w.limit);
}

static void diff_full_check(const cy_art *t, const ref *r)
{
    assert_int_equal(t->count, r->n);
    check_sound(t, NULL);
    cy_art_iter it;
    cy_art_iter_init(&it, t);
    long i = 0;
    for (int rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0); ; rc = cy_art_iter_next(&it), i++) {
        check_at(&it, rc, r, i);
        if (rc != 1) break;
    }
    i = (long)r->n - 1;
    for (int rc = cy_art_iter_seek(&it, CY_SEEK_LAST, NULL, 0); ; rc = cy_art_iter_prev(&it), i--) {
        check_at(&it, rc, r, i);
        if (rc != 1) break;
    }
    cy_art_iter_free(&it);
}

/* With the finger on, one operation in 50 is a run of up to 40 inserts in
 * key order: keys just after consecutive existing keys (a key with a byte
 * appended), as a hint's replay inserts them. */
static void differential(int finger)
{
    enum { OPS = 1000000, CHECK_EVERY = 50000, SOFT_MAX = 3000 };
    uint64_t seed = tu_seed(finger ? "art differential, finger" : "art differential"), s = seed;
    cy_art t;
    cy_art_init(&t);
    if (finger) cy_art_finger_on(&t);
    ref r = { NULL, 0, 0 };
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    uint8_t k[REF_MAXK];
    for (uint64_t op = 0; op < OPS; op++) {
        size_t klen;
        /* Half the time an existing key, so that hits are common. */
        if (r.n && tu_below(&s, 2)) {
            const ref_ent *e = &r.e[tu_below(&s, r.n)];
            memcpy(k, e->k, e->len);
            klen = e->len;
        } else {
            klen = gen_key(&s, k);
        }
        unsigned roll = (unsigned)tu_below(&s, 100);
        unsigned ins = r.n < SOFT_MAX ? 30 : 15, del = 45;
        cy_loc l = loc_of(op), old_t, old_r;
        if (finger && r.n && tu_below(&s, 50) == 0) {
            size_t at = (size_t)tu_below(&s, r.n), run = 1 + (size_t)tu_below(&s, 40);
            uint8_t sfx = (uint8_t)tu_below(&s, 256);
            for (size_t j = 0; j < run && at + j < r.n; j++) {
                size_t len = r.e[at + j].len;
                if (len + 1 > REF_MAXK) continue;
                memcpy(k, r.e[at + j].k, len);
                k[len] = sfx;
                /* the entry at + j may have moved up by one: skip over it */
                int want = ref_put(&r, k, len + 1, l, &old_r);
                assert_int_equal(cy_art_insert(&t, k, len + 1, &l, &old_t), want);
                if (want) assert_true(loc_eq(&old_t, &old_r));
                else j++;
            }
        } else if (roll < ins) {
            int want = ref_put(&r, k, klen, l, &old_r);
            assert_int_equal(cy_art_insert(&t, k, klen, &l, &old_t), want);
            if (want) assert_true(loc_eq(&old_t, &old_r));
        } else if (roll < del) {
            int want = ref_del(&r, k, klen, &old_r);
            assert_int_equal(cy_art_delete(&t, k, klen, &old_t), want);
            if (want) assert_true(loc_eq(&old_t, &old_r));
        } else if (roll < 65) {
            int eq;
            size_t i = ref_lower(&r, k, klen, &eq);
            const cy_loc *got = cy_art_search(&t, k, klen);
            if (eq) assert_true(got && loc_eq(got, &r.e[i].loc));
            else assert_null(got);
        } else if (roll < 90) {
            diff_seek(&s, &it, &r, k, klen);
        } else if (roll < 95) {
            diff_prefix(&s, &t, &r, k, klen);
        } else {
            diff_range(&s, &t, &r, k, klen);
        }
        if (op % CHECK_EVERY == CHECK_EVERY - 1) diff_full_check(&t, &r);
    }
    diff_full_check(&t, &r);
    cy_art_iter_free(&it);
    cy_art_destroy(&t);
    assert_int_equal(t.bytes, 0);
    for (size_t i = 0; i < r.n; i++) free(r.e[i].k);
    free(r.e);
}

static void test_differential(void **state)
{
    (void)state;
    differential(0);
}

static void test_differential_finger(void **state)
{
    (void)state;
    differential(1);
}

// >> leaf slab ---------------------------------------------------------------------

/* Deleted leaves' slots go back to their key length's free list: inserting
 * the same number of keys of that length again needs no allocation at all
 * once the nodes have room, and the bytes come back to what they were. */
static void test_slab_reuse_after_delete(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    uint8_t k[16];
    memset(k, 'r', sizeof k);
    for (unsigned b = 0; b < 256; b++) { k[0] = (uint8_t)b; put(&t, k, 16, b); }
    uint64_t full = t.bytes;
    assert_int_equal(kind_of_root_node(&t), 3);
    for (unsigned b = 0; b < 60; b++) {
        k[0] = (uint8_t)b;
        assert_int_equal(cy_art_delete(&t, k, 16, NULL), 1);
    }
    assert_int_equal(kind_of_root_node(&t), 3);   /* 196 left: still a Node256 */
    assert_int_equal(t.bytes, full - 60 * 32);    /* 16 + 16 bytes a slot */
    put_run_without_allocating(&t, k, 16, 0, 0, 60, 1000);
    assert_int_equal(t.bytes, full);
    for (unsigned b = 0; b < 256; b++) { k[0] = (uint8_t)b; must_find(&t, k, 16, b < 60 ? 1000 + b : b); }
    check_sound(&t, NULL);
    check_order(&t);
    /* Other key lengths have their own slots: a freed 16-byte slot is no
     * use to a 17-byte key, which needs a page of its own. */
    k[0] = 0;
    assert_int_equal(cy_art_delete(&t, k, 16, NULL), 1);
    uint8_t k17[17];
    memset(k17, 'r', sizeof k17);
    k17[0] = 0;
    cy_alloc_fail_at(1, 1);
    cy_loc l17 = loc_of(17);
    int rc17 = cy_art_insert(&t, k17, 17, &l17, NULL);
    cy_alloc_fail_at(0, 0);
    if (rc17 == CALYPSO_ENOMEM) assert_null(cy_art_search(&t, k17, 17));
    else must_find(&t, k17, 17, 17);   /* the chunk still had a page */
    check_sound(&t, NULL);
    cy_art_destroy(&t);
    assert_int_equal(t.bytes, 0);
    assert_null(t.root);
}

/* Leaves come from pages carved out of chunks; the insert that needs a new
 * chunk when its allocation fails reports CALYPSO_ENOMEM and leaves the
 * tree as it was, and the next try succeeds. The keys go into free slots of
 * a Node256 (kept large by deletes that could not shrink it), so the chunk
 * is the only allocation an insert can make. */
static void test_slab_page_boundary(void **state)
{
    (void)state;
    enum { KLEN = 1000 };
    cy_art t;
    cy_art_init(&t);
    uint8_t *k = calloc(1, KLEN);
    for (unsigned b = 0; b < 256; b++) { k[0] = (uint8_t)b; put(&t, k, KLEN, b); }
    cy_art_slab_drain(&t);
    cy_alloc_fail_at(1, 1);
    for (unsigned b = 0; b < 200; b++) {
        k[0] = (uint8_t)b;
        assert_int_equal(cy_art_delete(&t, k, KLEN, NULL), 1);
    }
    cy_alloc_fail_at(0, 0);
    assert_int_equal(kind_of_root_node(&t), 3);
    /* 999-byte keys: a class of their own, 64 slots of 1016 bytes a page. */
    unsigned failed = 0;
    for (unsigned b = 0; b < 200; b++) {
        struct snap before;
        snap_take(&t, &before);
        uint64_t count = t.count, bytes = t.bytes;
        k[0] = (uint8_t)b;
        cy_loc l = loc_of(5000 + b);
        cy_alloc_fail_at(1, 0);
        int rc = cy_art_insert(&t, k, KLEN - 1, &l, NULL);
        uint64_t made = cy_alloc_count();
        cy_alloc_fail_at(0, 0);
        if (rc == CALYPSO_ENOMEM) {
            failed++;
            assert_int_equal(made, 1);
            assert_int_equal(t.count, count);
            assert_int_equal(t.bytes, bytes);
            check_sound(&t, NULL);
            snap_same(&t, &before);
            assert_null(cy_art_search(&t, k, KLEN - 1));
            rc = cy_art_insert(&t, k, KLEN - 1, &l, NULL);
        } else {
            assert_int_equal(made, 0);
        }
        assert_int_equal(rc, 0);
        snap_free(&before);
    }
    /* 200 slots span 4 pages: at least one of them came from a new chunk. */
    assert_true(failed >= 1 && failed <= 4);
    for (unsigned b = 0; b < 256; b++) {
        k[0] = (uint8_t)b;
        if (b < 200) must_find(&t, k, KLEN - 1, 5000 + b);
        else must_find(&t, k, KLEN, b);
    }
    check_sound(&t, NULL);
    check_order(&t);
    cy_art_destroy(&t);
    free(k);
}

/* Keys longer than the slab's classes get an allocation each and mix with
 * slab leaves as siblings, terminals and split partners. */
static void test_slab_and_big_leaves(void **state)
{
    (void)state;
    enum { BIG = 1025 };
    cy_art t;
    cy_art_init(&t);
    uint8_t *k = calloc(1, BIG + 1);
    memset(k, 'q', BIG + 1);
    put(&t, k, 1024, 1);        /* the longest slab key */
    put(&t, k, BIG, 2);         /* the shortest big one: 1024 is its terminal */
    put(&t, k, BIG + 1, 3);
    put(&t, k, 10, 4);
    must_find(&t, k, 1024, 1);
    must_find(&t, k, BIG, 2);
    must_find(&t, k, BIG + 1, 3);
    must_find(&t, k, 10, 4);
    check_sound(&t, NULL);
    check_order(&t);
    assert_int_equal(cy_art_delete(&t, k, BIG, NULL), 1);
    assert_int_equal(cy_art_delete(&t, k, 1024, NULL), 1);
    must_find(&t, k, BIG + 1, 3);
    check_sound(&t, NULL);
    assert_int_equal(cy_art_delete(&t, k, BIG + 1, NULL), 1);
    assert_int_equal(t.bytes, 32);   /* the 10-byte key's slot: 16 + 10, rounded to 8 */
    assert_int_equal(cy_art_delete(&t, k, 10, NULL), 1);
    assert_int_equal(t.bytes, 0);
    cy_art_destroy(&t);
    free(k);
}

/* Every key length from 0 to past the slab's longest, as a chain of
 * prefixes of one key plus a sibling at each length: a leaf's key length
 * (carried in its reference, or read from its page or from the big leaf)
 * must never let a key match a longer or shorter one with the same bytes,
 * and the iterator reports each length. Then every other length deleted,
 * and lookups of the deleted lengths must miss their neighbours. */
static void test_every_key_length(void **state)
{
    (void)state;
    enum { MAXL = 1100 };
    cy_art t;
    cy_art_init(&t);
    uint8_t *k = malloc(MAXL + 1), *sib = malloc(MAXL + 1);
    for (size_t i = 0; i <= MAXL; i++) k[i] = (uint8_t)(i * 131u + 7u);
    memcpy(sib, k, MAXL + 1);
    for (size_t l = 0; l <= MAXL; l++) put(&t, k, l, l);
    for (size_t l = 1; l <= MAXL; l++) {
        sib[l - 1] ^= 0x80u;   /* differs from the chain in its last byte */
        put(&t, sib, l, 10000 + l);
        sib[l - 1] ^= 0x80u;
    }
    check_sound(&t, NULL);
    check_order(&t);
    assert_int_equal(t.count, 2 * MAXL + 1);
    for (size_t l = 0; l <= MAXL; l++) {
        must_find(&t, k, l, l);
        if (l) {
            sib[l - 1] ^= 0x80u;
            must_find(&t, sib, l, 10000 + l);
            sib[l - 1] ^= 0x80u;
        }
    }
    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    assert_int_equal(cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0), 1);
    size_t chain = 0;
    do {
        size_t kl;
        const uint8_t *ik = cy_art_iter_key(&it, &kl);
        if (kl == 0 || memcmp(ik, k, kl) == 0) {
            assert_int_equal(kl, chain);   /* the chain comes in length order */
            assert_int_equal(cy_art_iter_loc(&it)->off, kl);
            chain++;
        }
    } while (cy_art_iter_next(&it) == 1);
    assert_int_equal(chain, MAXL + 1);
    cy_art_iter_free(&it);
    /* Odd lengths go: searching them must not find the even neighbours. */
    for (size_t l = 1; l <= MAXL; l += 2) {
        cy_loc old;
        assert_int_equal(cy_art_delete(&t, k, l, &old), 1);
        assert_int_equal(old.off, l);
    }
    check_sound(&t, NULL);
    for (size_t l = 0; l <= MAXL; l++) {
        if (l & 1) assert_null(cy_art_search(&t, k, l));
        else must_find(&t, k, l, l);
    }
    /* Deleted lengths come back into reused slots with their own values. */
    for (size_t l = 1; l <= MAXL; l += 2) put(&t, k, l, 20000 + l);
    for (size_t l = 0; l <= MAXL; l++) must_find(&t, k, l, (l & 1) ? 20000 + l : l);
    check_sound(&t, NULL);
    check_order(&t);
    cy_art_destroy(&t);
    free(k);
    free(sib);
}

/* An order-sensitive digest of the leaves a walk hands over. */
struct digest {
    uint64_t h, n, stop_at;
};

static int digest_fn(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    struct digest *d = ctx;
    uint64_t h = d->h ^ klen;
    for (size_t i = 0; i < klen; i++) h = (h ^ key[i]) * 1099511628211ull;
    h = (h ^ loc->off) * 1099511628211ull;
    d->h = h;
    d->n++;
    return d->stop_at && d->n == d->stop_at ? 7 : 0;
}

/* cy_art_destroy_walk hands over the leaves a walk of the whole tree
 * visits, in the same order (terminal leaves of nested keys, keys past
 * the slab's length, nodes of every kind), frees the tree (the sanitizer
 * builds find a node left behind), and after its callback stops it keeps
 * freeing without calling it again. */
static void test_destroy_walk(void **state)
{
    (void)state;
    enum { MAXL = 1100 };
    for (int stop = 0; stop < 2; stop++) {
        cy_art t;
        cy_art_init(&t);
        uint8_t k[MAXL + 1];
        for (size_t i = 0; i <= MAXL; i++) k[i] = (uint8_t)(i * 131u + 7u);
        for (size_t l = 0; l <= MAXL; l += 3) put(&t, k, l, l);
        uint64_t x = 88172645463325252ull;
        for (int i = 0; i < 30000; i++) {
            uint8_t r[16];
            for (int j = 0; j < 16; j += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(r + j, &x, 8);
            }
            r[0] = (uint8_t)(r[0] % 3);   /* dense under a few first bytes: Node256s */
            put(&t, r, 2 + (size_t)(r[15] % 15), 100000 + (uint64_t)i);
        }
        check_sound(&t, NULL);
        uint64_t count = t.count;
        struct digest all = { 0, 0, 0 }, taken = { 0, 0, stop ? 1000 : 0 };
        assert_int_equal(cy_art_walk_prefix(&t, "", 0, digest_fn, &all), 0);
        assert_int_equal(all.n, count);
        if (stop) {
            struct digest first = { 0, 0, 1000 };
            assert_int_equal(cy_art_walk_prefix(&t, "", 0, digest_fn, &first), 7);
            assert_int_equal(cy_art_destroy_walk(&t, digest_fn, &taken), 7);
            assert_int_equal(taken.n, 1000);
            assert_true(taken.h == first.h);
        } else {
            assert_int_equal(cy_art_destroy_walk(&t, digest_fn, &taken), 0);
            assert_int_equal(taken.n, count);
            assert_true(taken.h == all.h);
        }
        assert_null(t.root);
        assert_int_equal(t.count, 0);
        assert_null(cy_art_search(&t, k, 3));
        put(&t, k, 5, 5);   /* usable again, as after cy_art_destroy */
        must_find(&t, k, 5, 5);
        cy_art_destroy(&t);
    }
}

/* 200k random 16-byte keys: the memory figure the benchmark reports at
 * 10M, here as a sanity bound, plus every key findable after churn. */
static void test_random16(void **state)
{
    (void)state;
    enum { N = 200000 };
    uint64_t s = tu_seed("art random16");
    cy_art t;
    cy_art_init(&t);
    uint8_t (*keys)[16] = malloc((size_t)N * 16);
    for (size_t i = 0; i < N; i++) {
        rand_key16(&s, keys[i]);
        put(&t, keys[i], 16, i);
    }
    print_message("[ INFO     ] %d random 16-byte keys: %.1f bytes/key\n", N,
                  (double)t.bytes / (double)t.count);
    assert_true(t.bytes / t.count < 56);
    for (size_t i = 0; i < N; i += 2) assert_int_equal(cy_art_delete(&t, keys[i], 16, NULL), 1);
    for (size_t i = 1; i < N; i += 2) must_find(&t, keys[i], 16, i);
    check_sound(&t, NULL);
    check_order(&t);
    cy_art_destroy(&t);
    free(keys);
}

/* Nodes come from the slab, and a node that growth frees is what the next
 * node to grow as far takes: a second node growing from 1 to 256 children
 * beside one that did makes no allocation at all (the leaves have room on
 * their page, the last Node256 on the node page). */
static void test_node_growth_reuses_nodes(void **state)
{
    (void)state;
    cy_art t;
    cy_art_init(&t);
    uint8_t k[2] = { 'a', 0 };
    for (unsigned b = 0; b < 256; b++) { k[1] = (uint8_t)b; put(&t, k, 2, b); }
    k[0] = 'b';
    k[1] = 0;
    put(&t, k, 2, 0);   /* the root's split may take a fresh node size */
    uint64_t bytes = t.bytes;
    put_run_without_allocating(&t, k, 2, 1, 1, 256, 1000);
    uint64_t kinds[4];
    check_sound(&t, kinds);
    assert_int_equal(kinds[0], 1);   /* a Node4 over 'a' and 'b' */
    assert_int_equal(kinds[1] + kinds[2], 0);
    assert_int_equal(kinds[3], 2);
    /* 255 more leaves of 24 bytes, and the second Node256 (8 + 2048). */
    assert_int_equal(t.bytes, bytes + 255 * 24 + 2056);
    for (unsigned b = 0; b < 256; b++) {
        k[0] = 'a';
        k[1] = (uint8_t)b;
        must_find(&t, k, 2, b);
        k[0] = 'b';
        must_find(&t, k, 2, b ? 1000 + b : 0);
    }
    check_sound(&t, NULL);
    check_order(&t);
    cy_art_destroy(&t);
}

#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
/* Kernels before 5.14 refuse MADV_POPULATE_WRITE: a bulk load then fills
 * nothing ahead. */
static int populate_write_supported(void)
{
    void *pg = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(pg != MAP_FAILED);
    int supported = madvise(pg, 4096, MADV_POPULATE_WRITE) == 0;
    munmap(pg, 4096);
    return supported;
}
#endif

/* Waits until the filler of t has stopped filling (no progress for 50 ms)
 * or at most 10 s; returns what it has filled. */
static uint64_t filler_settled(cy_art *t)
{
    uint64_t last = cy_art_bulk_filled(t);
    int still = 0;
    for (int ms = 0; ms < 10000 && still < 50; ms++) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
        uint64_t now = cy_art_bulk_filled(t);
        still = now == last ? still + 1 : 0;
        last = now;
    }
    return last;
}

/* The filler sleeps once it is a few MiB ahead of the inserts, and the
 * inserts wake it when they have used a huge page of that lead: a load
 * that pauses and goes on finds its pages filled again. A wake-up lost
 * between the two threads leaves the filler asleep for the rest of the
 * chunk. */
static void test_bulk_filler_wakes(void **state)
{
    (void)state;
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    int supported = populate_write_supported();
    if (!supported) skip();   /* kernels before 5.14: no filler to wake */
    uint64_t s = tu_seed("art filler");
    cy_art t;
    cy_art_init(&t);
    cy_art_bulk(&t, 1);
    size_t i = 0;
    uint8_t key[16];
    /* Past the 32 MiB at which bulk chunks start, and past the 4 MiB
     * chunk that may have been taken just before. */
    while (t.bytes < ((uint64_t)40 << 20)) {
        rand_key16(&s, key);
        put(&t, key, 16, i++);
    }
    uint64_t first = filler_settled(&t);
    assert_true(first >= ((uint64_t)2 << 20));
    /* Every round uses more of the lead than it takes to wake the filler. */
    for (int round = 0; round < 3; round++) {
        uint64_t to = t.bytes + ((uint64_t)6 << 20);
        while (t.bytes < to) {
            rand_key16(&s, key);
            put(&t, key, 16, i++);
        }
        uint64_t next = filler_settled(&t);
        print_message("[ INFO     ] round %d: %.1f MiB filled ahead\n", round,
                      (double)next / 1048576.0);
        assert_true(next > first);
        first = next;
    }
    assert_true(cy_art_bulk(&t, 0) >= first);
    assert_int_equal(cy_art_bulk_filled(&t), 0);
    check_sound(&t, NULL);
    cy_art_destroy(&t);
#else
    skip();
#endif
}

/* A bulk load large enough to start the page filler builds the same tree
 * as inserts without it: same keys, same bytes, same order. Destroying a
 * tree whose load is still marked stops the filler too. */
static void test_bulk_load(void **state)
{
    (void)state;
    enum { N = 1200000 };   /* past the 32 MiB at which the filler starts */
    uint64_t seed = tu_seed("art bulk"), s = seed;
    cy_art bulk, plain;
    cy_art_init(&bulk);
    cy_art_init(&plain);
    assert_int_equal(cy_art_bulk(&bulk, 1), 0);
    for (size_t i = 0; i < N; i++) {
        uint8_t key[16];
        rand_key16(&s, key);
        put(&bulk, key, 16, i);
        put(&plain, key, 16, i);
    }
    uint64_t filled = cy_art_bulk(&bulk, 0);
    print_message("[ INFO     ] %d keys loaded in bulk: %.1f MiB filled ahead\n", N,
                  (double)filled / 1048576.0);
#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
    int supported = populate_write_supported();
    if (supported) assert_true(filled >= ((uint64_t)2 << 20));
#endif
    assert_int_equal(bulk.count, plain.count);
    assert_int_equal(bulk.bytes, plain.bytes);
    check_sound(&bulk, NULL);
    check_order(&bulk);
    cy_art_iter a, b;
    cy_art_iter_init(&a, &bulk);
    cy_art_iter_init(&b, &plain);
    size_t seen = 0;
    int ra = cy_art_iter_seek(&a, CY_SEEK_FIRST, NULL, 0);
    int rb = cy_art_iter_seek(&b, CY_SEEK_FIRST, NULL, 0);
    while (ra == 1 || rb == 1) {
        assert_int_equal(ra, 1);
        assert_int_equal(rb, 1);
        size_t la, lb;
        const uint8_t *ka = cy_art_iter_key(&a, &la), *kb = cy_art_iter_key(&b, &lb);
        assert_int_equal(la, lb);
        assert_memory_equal(ka, kb, la);
        assert_memory_equal(cy_art_iter_loc(&a), cy_art_iter_loc(&b), sizeof(cy_loc));
        seen++;
        ra = cy_art_iter_next(&a);
        rb = cy_art_iter_next(&b);
    }
    assert_int_equal(ra, 0);
    assert_int_equal(rb, 0);
    assert_int_equal(seen, plain.count);
    cy_art_iter_free(&a);
    cy_art_iter_free(&b);
    /* A second load, destroyed while still marked. */
    cy_art_destroy(&plain);
    cy_art_bulk(&plain, 1);
    s = seed;
    for (size_t i = 0; i < N; i++) {
        uint8_t key[16];
        rand_key16(&s, key);
        put(&plain, key, 16, i);
    }
    cy_art_destroy(&plain);
    assert_int_equal(plain.bulk, 0);
    cy_art_destroy(&bulk);
}

// >> building from keys in order ---------------------------------------------------

/* Keys for a build: gen_key's small alphabets, random bytes of 0..20 (so
 * that nodes of every kind form), or 16 decimal digits (ten children a
 * level, as the benchmark's keys). */
static size_t gen_build_key(uint64_t *s, uint8_t *k)
{
    switch (tu_below(s, 3)) {
    case 0:
        return gen_key(s, k);
    case 1: {
        size_t len = (size_t)tu_below(s, 21);
        for (size_t i = 0; i < len; i++) k[i] = (uint8_t)tu_below(s, 256);
        return len;
    }
    default: {
        uint64_t v = tu_below(s, 100000);
        for (int i = 15; i >= 0; i--, v /= 10) k[i] = (uint8_t)('0' + v % 10);
        return 16;
    }
    }
}

/* Builds t from r's entries, in order. Before some keys, a key that does
 * not come after the last one (the same, a smaller one, a prefix of it) is
 * offered first and must be refused, changing nothing. */
static void build_from(uint64_t *s, cy_art *t, const ref *r)
{
    cy_art_build b;
    cy_art_build_begin(t, &b);
    for (size_t i = 0; i < r->n; i++) {
        if (i > 0 && tu_below(s, 8) == 0) {
            const ref_ent *p = &r->e[i - 1];
            cy_loc l = loc_of(1);
            uint64_t count = t->count;
            assert_int_equal(cy_art_build_add(&b, p->k, p->len, &l), 1);
            if (p->len) assert_int_equal(cy_art_build_add(&b, p->k, p->len - 1, &l), 1);
            if (i > 1) assert_int_equal(cy_art_build_add(&b, r->e[i - 2].k, r->e[i - 2].len, &l), 1);
            assert_int_equal(t->count, count);
        }
        assert_int_equal(cy_art_build_add(&b, r->e[i].k, r->e[i].len, &r->e[i].loc), 0);
    }
    assert_int_equal(cy_art_build_end(&b), 0);
}

static void ref_free(ref *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->e[i].k);
    free(r->e);
    *r = (ref){ NULL, 0, 0 };
}

/* Random key sets built in order, checked entry by entry against the
 * sorted array, then changed by inserts and deletes as any tree. */
static void test_build_in_order(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("art build"), s = seed;
    uint64_t kinds_seen[4] = { 0 };
    for (int round = 0; round < 60; round++) {
        ref r = { NULL, 0, 0 };
        size_t want = round < 3 ? (size_t)round : (size_t)tu_below(&s, 4000);
        uint8_t k[REF_MAXK];
        cy_loc old;
        for (size_t i = 0; i < want; i++) {
            size_t klen = gen_build_key(&s, k);
            ref_put(&r, k, klen, loc_of(tu_rand(&s)), &old);
        }
        cy_art t;
        cy_art_init(&t);
        if (round & 1) cy_art_finger_on(&t);
        build_from(&s, &t, &r);
        uint64_t kinds[4];
        check_sound(&t, kinds);
        for (int i = 0; i < 4; i++) kinds_seen[i] += kinds[i];
        diff_full_check(&t, &r);
        for (size_t i = 0; i < r.n; i++) {
            const cy_loc *got = cy_art_search(&t, r.e[i].k, r.e[i].len);
            assert_non_null(got);
            assert_true(loc_eq(got, &r.e[i].loc));
        }
        for (int op = 0; op < 3000; op++) {
            size_t klen = gen_build_key(&s, k);
            cy_loc l = loc_of(tu_rand(&s)), old_t, old_r;
            if (tu_below(&s, 2)) {
                int w = ref_put(&r, k, klen, l, &old_r);
                assert_int_equal(cy_art_insert(&t, k, klen, &l, &old_t), w);
                if (w) assert_true(loc_eq(&old_t, &old_r));
            } else {
                int w = ref_del(&r, k, klen, &old_r);
                assert_int_equal(cy_art_delete(&t, k, klen, &old_t), w);
                if (w) assert_true(loc_eq(&old_t, &old_r));
            }
        }
        diff_full_check(&t, &r);
        cy_art_destroy(&t);
        assert_int_equal(t.bytes, 0);
        ref_free(&r);
    }
    /* Every kind of node was built. */
    for (int i = 0; i < 4; i++) assert_true(kinds_seen[i] > 0);
}

/* Keys that nest as prefixes thousands deep (a level each), the empty key,
 * and keys too long for the slab or the finger. */
static void test_build_deep_and_long(void **state)
{
    (void)state;
    enum { DEEP = 3000, LONG = 1500 };
    uint64_t s = tu_seed("art build deep");
    ref r = { NULL, 0, 0 };
    cy_loc old;
    uint8_t *k = malloc(DEEP + LONG);
    memset(k, 'a', DEEP + LONG);
    for (size_t len = 0; len <= DEEP; len += 1 + (len > 100 ? 7 : 0))
        ref_put(&r, k, len, loc_of(len), &old);
    for (int i = 0; i < 40; i++) {
        k[DEEP + LONG - 1] = (uint8_t)('b' + i);
        k[DEEP / 2] = (uint8_t)('a' + i % 3);
        ref_put(&r, k, DEEP + LONG, loc_of(100000 + (uint64_t)i), &old);
        ref_put(&r, k + DEEP, LONG, loc_of(200000 + (uint64_t)i), &old);
    }
    memset(k, 'a', DEEP + LONG);
    cy_art t;
    cy_art_init(&t);
    build_from(&s, &t, &r);
    assert_int_equal(t.max_klen, DEEP + LONG);
    diff_full_check(&t, &r);
    must_find(&t, k, 0, 0);
    must_find(&t, k, 50, 50);
    must_find(&t, k, 2501, 2501);
    cy_art_destroy(&t);
    assert_int_equal(t.bytes, 0);
    ref_free(&r);
    free(k);
}

/* A failed allocation at every point of a build (a big leaf, a chunk of the
 * slab for a leaf or for the nodes a key closes, the levels): end reports
 * it, the tree is left empty with nothing counted, and it can be built
 * again. */
static void test_build_allocation_failure(void **state)
{
    (void)state;
    uint64_t s = tu_seed("art build enomem");
    ref r = { NULL, 0, 0 };
    uint8_t k[REF_MAXK + 1100];
    cy_loc old;
    for (int i = 0; i < 3000; i++) {
        size_t klen = gen_build_key(&s, k);
        if (i % 40 == 0) {   /* a big leaf: an allocation of its own */
            memset(k + klen, 'z', 1100);
            klen += 1100;
        }
        ref_put(&r, k, klen, loc_of((uint64_t)i), &old);
    }
    uint64_t failures = 0;
    for (uint64_t nth = 1;; nth++) {
        cy_art t;
        cy_art_init(&t);
        cy_art_build b;
        cy_art_build_begin(&t, &b);
        cy_alloc_fail_at(nth, 0);
        int rc = 0;
        for (size_t i = 0; i < r.n && !rc; i++) {
            /* Every so often the slab's node page and chunk are used up,
             * so that the nodes a key closes need a new chunk, which may
             * be the allocation that fails. */
            if (i % 16 == 0) cy_art_slab_drain(&t);
            rc = cy_art_build_add(&b, r.e[i].k, r.e[i].len, &r.e[i].loc);
        }
        if (rc) {   /* refused from then on */
            cy_loc l = loc_of(0);
            assert_int_equal(cy_art_build_add(&b, "\xff\xff\xff", 3, &l), CALYPSO_ENOMEM);
        }
        int end = cy_art_build_end(&b);
        uint64_t made = cy_alloc_count();
        cy_alloc_fail_at(0, 0);
        if (made < nth) {   /* nothing failed: the whole build is there */
            assert_int_equal(rc, 0);
            assert_int_equal(end, 0);
            diff_full_check(&t, &r);
            cy_art_destroy(&t);
            break;
        }
        failures++;
        assert_int_equal(end, CALYPSO_ENOMEM);
        assert_null(t.root);
        assert_int_equal(t.count, 0);
        assert_int_equal(t.bytes, 0);
        check_sound(&t, NULL);
        /* The same tree takes the keys again. */
        cy_art_build_begin(&t, &b);
        for (size_t i = 0; i < r.n; i++)
            assert_int_equal(cy_art_build_add(&b, r.e[i].k, r.e[i].len, &r.e[i].loc), 0);
        assert_int_equal(cy_art_build_end(&b), 0);
        diff_full_check(&t, &r);
        cy_art_destroy(&t);
    }
    assert_true(failures >= 75);   /* the big leaves, the slab's chunks, the levels */
    ref_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_tree),
        cmocka_unit_test(test_insert_replace_delete),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_prefix_and_binary_keys),
        cmocka_unit_test(test_long_keys),
        cmocka_unit_test(test_deep_prefix_chain),
        cmocka_unit_test(test_deep_prefix_chain_finger),
        cmocka_unit_test(test_grow_and_shrink),
        cmocka_unit_test(test_collapse_recompresses_path),
        cmocka_unit_test(test_delete_without_memory),
        cmocka_unit_test(test_seek_all_modes),
        cmocka_unit_test(test_walks),
        cmocka_unit_test(test_resume_after_changes),
        cmocka_unit_test(test_insert_allocation_failure),
        cmocka_unit_test(test_insert_allocation_failure_finger),
        cmocka_unit_test(test_differential),
        cmocka_unit_test(test_differential_finger),
        cmocka_unit_test(test_slab_reuse_after_delete),
        cmocka_unit_test(test_slab_page_boundary),
        cmocka_unit_test(test_slab_and_big_leaves),
        cmocka_unit_test(test_every_key_length),
        cmocka_unit_test(test_random16),
        cmocka_unit_test(test_node_growth_reuses_nodes),
        cmocka_unit_test(test_bulk_load),
        cmocka_unit_test(test_bulk_filler_wakes),
        cmocka_unit_test(test_build_in_order),
        cmocka_unit_test(test_build_deep_and_long),
        cmocka_unit_test(test_build_allocation_failure),
        cmocka_unit_test(test_destroy_walk),
    };
    return cmocka_run_group_tests_name("art", tests, NULL, NULL);
}
