/*
 * fuzz_art.c: libFuzzer target: the key directory's Adaptive Radix Tree
 * (src/art.c, cy_art_*) against a sorted array.
 *
 * Keys are 0-6 bytes over a five-letter alphabet {0x00, 0x01, 'a', 'b',
 * 0xff} (prefix keys, the empty key, bytes at both ends), or, one time in
 * eight, 7-40 bytes sharing a long common prefix (path compression). Calls:
 * insert (its return and the value it replaced), delete, search, prefix and
 * range walks, iterator seeks with every operator followed by a few
 * next/prev steps, and an insert whose nth allocation fails (it must
 * return CALYPSO_ENOMEM and leave the tree as it was). cy_art_verify checks
 * the tree's own invariants every few calls and at the end.
 */
#include "fuzz_util.h"
#include "internal.h"

#define FZ_MAXK 40

typedef struct fz_ent {
    uint8_t key[FZ_MAXK];
    size_t  klen;
    cy_loc  loc;
} fz_ent;

static fz_ent fz_ref[2048];
static size_t fz_nref;

static int fz_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* First index whose key is >= k. */
static size_t fz_lower(const uint8_t *k, size_t kl)
{
    size_t lo = 0, hi = fz_nref;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fz_cmp(fz_ref[mid].key, fz_ref[mid].klen, k, kl) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int fz_has(size_t i, const uint8_t *k, size_t kl)
{
    return i < fz_nref && fz_cmp(fz_ref[i].key, fz_ref[i].klen, k, kl) == 0;
}

static size_t fz_key(fz_in *in, uint8_t *k)
{
    static const uint8_t alphabet[5] = { 0x00, 0x01, 'a', 'b', 0xff };
    uint8_t shape = fz_byte(in);
    if (shape % 8 == 7) {
        size_t n = 7 + fz_byte(in) % (FZ_MAXK - 6);
        memset(k, 'p', n);
        k[n - 1] = alphabet[fz_byte(in) % 5];
        k[n / 2] = alphabet[fz_byte(in) % 5];
        return n;
    }
    size_t n = shape % 7;
    for (size_t i = 0; i < n; i++) k[i] = alphabet[fz_byte(in) % 5];
    return n;
}

static int fz_loc_eq(const cy_loc *a, const cy_loc *b)
{
    return a->off == b->off && a->fid == b->fid && a->size == b->size;
}

typedef struct fz_walk {
    size_t at, end;
    int    bad;
} fz_walk;

static int fz_walk_fn(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    fz_walk *w = ctx;
    if (w->at >= w->end || fz_cmp(key, klen, fz_ref[w->at].key, fz_ref[w->at].klen) != 0 ||
        !fz_loc_eq(loc, &fz_ref[w->at].loc))
        w->bad = 1;
    w->at++;
    return 0;
}

static void fz_verify(const cy_art *t)
{
    int line = cy_art_verify(t, NULL);
    FZ_CHECK(line == 0, "cy_art_verify fails at art.c:%d", line);
    FZ_CHECK(t->count == fz_nref, "count %llu, expected %zu", (unsigned long long)t->count,
             fz_nref);
}

/* Where an iterator positioned by op on k must land: an index, or -1. */
static long fz_seek_want(int op, const uint8_t *k, size_t kl)
{
    size_t lo = fz_lower(k, kl);
    switch (op) {
    case CY_SEEK_FIRST: return fz_nref ? 0 : -1;
    case CY_SEEK_LAST:  return fz_nref ? (long)fz_nref - 1 : -1;
    case CY_SEEK_EQ:    return fz_has(lo, k, kl) ? (long)lo : -1;
    case CY_SEEK_GE:    return lo < fz_nref ? (long)lo : -1;
    case CY_SEEK_GT: {
        size_t i = fz_has(lo, k, kl) ? lo + 1 : lo;
        return i < fz_nref ? (long)i : -1;
    }
    case CY_SEEK_LE:    return fz_has(lo, k, kl) ? (long)lo : (long)lo - 1;
    default:            return (long)lo - 1;                /* CY_SEEK_LT */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cy_art t;
    cy_art_init(&t);
    fz_nref = 0;
    fz_in in = { data, data + size };
    uint8_t k[FZ_MAXK], k2[FZ_MAXK];
    uint32_t stamp = 1;
    for (int ops = 0; !fz_done(&in) && ops < 5000; ops++) {
        uint8_t op = fz_byte(&in) % 12;
        size_t kl = fz_key(&in, k), kl2;
        size_t i = fz_lower(k, kl);
        int found = fz_has(i, k, kl);
        switch (op) {
        case 0: case 1: case 2: case 3: case 4: {
            cy_loc loc = { (uint64_t)stamp * 977, stamp, stamp * 3 }, old = { 0, 0, 0 };
            stamp++;
            int fail_alloc = op == 4 && (fz_byte(&in) & 1);
            if (fail_alloc) cy_alloc_fail_at(1 + fz_byte(&in) % 3, 0);
            int rc = cy_art_insert(&t, k, kl, &loc, &old);
            cy_alloc_fail_at(0, 0);
            if (rc == CALYPSO_ENOMEM) {
                FZ_CHECK(fail_alloc, "insert ran out of memory unasked");
                break;                               /* the tree must be unchanged */
            }
            FZ_CHECK(rc == (found ? 1 : 0), "insert returned %d, key %s", rc,
                     found ? "present" : "absent");
            if (found) {
                FZ_CHECK(fz_loc_eq(&old, &fz_ref[i].loc), "insert: wrong old value");
            } else {
                if (fz_nref == sizeof fz_ref / sizeof *fz_ref) abort();
                memmove(&fz_ref[i + 1], &fz_ref[i], (fz_nref - i) * sizeof *fz_ref);
                fz_nref++;
                memcpy(fz_ref[i].key, k, kl);
                fz_ref[i].klen = kl;
            }
            fz_ref[i].loc = loc;
            break;
        }
        case 5: case 6: {
            cy_loc old = { 0, 0, 0 };
            int rc = cy_art_delete(&t, k, kl, &old);
            FZ_CHECK(rc == found, "delete returned %d, key %s", rc, found ? "present" : "absent");
            if (found) {
                FZ_CHECK(fz_loc_eq(&old, &fz_ref[i].loc), "delete: wrong old value");
                memmove(&fz_ref[i], &fz_ref[i + 1], (fz_nref - i - 1) * sizeof *fz_ref);
                fz_nref--;
            }
            break;
        }
        case 7: {
            cy_loc *l = cy_art_search(&t, k, kl);
            FZ_CHECK((l != NULL) == found, "search: %s", found ? "missed" : "found a ghost");
            if (l) FZ_CHECK(fz_loc_eq(l, &fz_ref[i].loc), "search: wrong value");
            break;
        }
        case 8: {
            fz_walk w = { i, i, 0 };
            while (w.end < fz_nref && fz_ref[w.end].klen >= kl &&
                   memcmp(fz_ref[w.end].key, k, kl) == 0)
                w.end++;
            int rc = cy_art_walk_prefix(&t, k, kl, fz_walk_fn, &w);
            FZ_CHECK(rc == 0 && !w.bad && w.at == w.end, "prefix walk");
            break;
        }
        case 9: {
            kl2 = fz_key(&in, k2);
            size_t end = fz_lower(k2, kl2);
            if (fz_has(end, k2, kl2)) end++;
            fz_walk w = { i, end > i ? end : i, 0 };
            int rc = cy_art_walk_range(&t, k, kl, k2, kl2, fz_walk_fn, &w);
            FZ_CHECK(rc == 0 && !w.bad && w.at == w.end, "range walk");
            break;
        }
        case 10: {
            int sop = fz_byte(&in) % 7;
            cy_art_iter it;
            cy_art_iter_init(&it, &t);
            int rc = cy_art_iter_seek(&it, sop, k, kl);
            long want = fz_seek_want(sop, k, kl);
            FZ_CHECK(rc == (want >= 0), "seek op %d: %d, expected %ld", sop, rc, want);
            for (int steps = fz_byte(&in) % 6; rc == 1 && steps >= 0; steps--) {
                size_t il;
                const uint8_t *ik = cy_art_iter_key(&it, &il);
                FZ_CHECK(want >= 0 && fz_cmp(ik, il, fz_ref[want].key, fz_ref[want].klen) == 0 &&
                             fz_loc_eq(cy_art_iter_loc(&it), &fz_ref[want].loc),
                         "iterator on the wrong key");
                int fwd = fz_byte(&in) & 1;
                rc = fwd ? cy_art_iter_next(&it) : cy_art_iter_prev(&it);
                want += fwd ? 1 : -1;
                FZ_CHECK(rc == (want >= 0 && want < (long)fz_nref), "%s: %d",
                         fwd ? "next" : "prev", rc);
            }
            cy_art_iter_free(&it);
            break;
        }
        default:
            fz_verify(&t);
            break;
        }
    }
    fz_verify(&t);
    cy_art_destroy(&t);
    return 0;
}
