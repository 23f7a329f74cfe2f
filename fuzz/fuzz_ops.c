/*
 * fuzz_ops.c: libFuzzer target: a sequence of API calls decoded from the
 * input, checked call by call against a reference map.
 *
 * Each input starts from an empty database with 4 KiB datafiles (so that
 * rotations, hints and merges happen after a few puts) and one descriptor
 * in the cache. Keys are 1-4 bytes over {a, b, 0x00, 0xff}, so that keys
 * are prefixes of each other and sort across the byte range; values 0-96
 * bytes. Calls: put, put with a TTL of 1-4 hours, delete, get, get_buf,
 * has, scan of a prefix, range, sift of a prefix, a cursor placed by
 * first/last/seek/seek_le and stepped both ways, len, merge, reopen,
 * sync, run_gc, delete_all, and moving the engine's clock forward one hour
 * (cy_clock_shift) so that TTLs expire. The reference says, for every call,
 * what it must return; at the end a fold must list exactly the live keys.
 * An expired key may read as CALYPSO_EEXPIRED or, once a merge or gc has
 * dropped it, CALYPSO_ENOTFOUND.
 */
#include "fuzz_util.h"
#include "calypso.h"

void cy_clock_shift(int64_t ms);   /* src/engine.h: the engine's clock, for tests */

#define FZ_MAXK 4
#define FZ_MAXV 96
#define FZ_HOUR 3600000ll

typedef struct fz_ent {
    uint8_t  key[FZ_MAXK];
    size_t   klen;
    uint8_t  val[FZ_MAXV];
    size_t   vlen;
    int64_t  expiry_h;     /* hour (of fz_hour) from which it is expired; 0: never */
} fz_ent;

/* The reference: entries sorted in calypso's key order. */
static fz_ent  fz_ref[1024];
static size_t  fz_nref;
static int64_t fz_hour;     /* hours the clock has been moved by this input */

static int fz_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* Index of key, or -(insertion point) - 1. */
static long fz_find(const uint8_t *k, size_t kl)
{
    size_t lo = 0, hi = fz_nref;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = fz_cmp(fz_ref[mid].key, fz_ref[mid].klen, k, kl);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(long)lo - 1;
}

static int fz_live(const fz_ent *e)
{
    return !e->expiry_h || fz_hour < e->expiry_h;
}

static void fz_ref_put(const uint8_t *k, size_t kl, const uint8_t *v, size_t vl, int64_t exp)
{
    long i = fz_find(k, kl);
    if (i < 0) {
        size_t at = (size_t)(-i - 1);
        if (fz_nref == sizeof fz_ref / sizeof *fz_ref) abort();
        memmove(&fz_ref[at + 1], &fz_ref[at], (fz_nref - at) * sizeof *fz_ref);
        fz_nref++;
        i = (long)at;
        memcpy(fz_ref[i].key, k, kl);
        fz_ref[i].klen = kl;
    }
    memcpy(fz_ref[i].val, v, vl);
    fz_ref[i].vlen = vl;
    fz_ref[i].expiry_h = exp;
}

static void fz_ref_del(const uint8_t *k, size_t kl)
{
    long i = fz_find(k, kl);
    if (i < 0) return;
    memmove(&fz_ref[i], &fz_ref[i + 1], (fz_nref - (size_t)i - 1) * sizeof *fz_ref);
    fz_nref--;
}

static size_t fz_key(fz_in *in, uint8_t *k)
{
    static const uint8_t alphabet[4] = { 'a', 'b', 0x00, 0xff };
    size_t n = 1 + fz_byte(in) % FZ_MAXK;
    for (size_t i = 0; i < n; i++) k[i] = alphabet[fz_byte(in) % 4];
    return n;
}

/* A walk's keys, compared one by one against the expected list. */
typedef struct fz_walk {
    const fz_ent **want;
    size_t         n, at;
    int            bad;
} fz_walk;

static int fz_walk_fn(const void *key, size_t klen, void *ctx)
{
    fz_walk *w = ctx;
    if (w->at >= w->n || fz_cmp(key, klen, w->want[w->at]->key, w->want[w->at]->klen) != 0)
        w->bad = 1;
    w->at++;
    return 0;
}

static const fz_ent *fz_list[1024];

/* Expected live keys with the prefix (plen 0: all) or in [lo, hi]. */
static size_t fz_expect(const uint8_t *p, size_t plen, const uint8_t *lo, size_t ll,
                        const uint8_t *hi, size_t hl, int range)
{
    size_t n = 0;
    for (size_t i = 0; i < fz_nref; i++) {
        const fz_ent *e = &fz_ref[i];
        if (!fz_live(e)) continue;
        if (range) {
            if (fz_cmp(e->key, e->klen, lo, ll) < 0 || fz_cmp(e->key, e->klen, hi, hl) > 0)
                continue;
        } else if (plen && (e->klen < plen || memcmp(e->key, p, plen) != 0)) {
            continue;
        }
        fz_list[n++] = e;
    }
    return n;
}

static int fz_sift_fn(const void *key, size_t klen, void *ctx)
{
    (void)ctx;
    return ((const uint8_t *)key)[klen - 1] == 'a';   /* delete keys ending in 'a' */
}

static void fz_check_get(calypso *db, const uint8_t *k, size_t kl)
{
    long i = fz_find(k, kl);
    void *v = NULL;
    size_t vlen = 0;
    int rc = calypso_get(db, k, kl, &v, &vlen);
    if (i < 0) {
        FZ_CHECK(rc == CALYPSO_ENOTFOUND, "get of an absent key: %d %s", rc, calypso_errmsg(db));
    } else if (!fz_live(&fz_ref[i])) {
        FZ_CHECK(rc == CALYPSO_EEXPIRED || rc == CALYPSO_ENOTFOUND, "get of an expired key: %d",
                 rc);
    } else {
        FZ_CHECK(rc == CALYPSO_OK, "get: %d %s", rc, calypso_errmsg(db));
        FZ_CHECK(vlen == fz_ref[i].vlen && memcmp(v, fz_ref[i].val, vlen) == 0,
                 "get returned the wrong value");
    }
    calypso_free(v);
    int has = calypso_has(db, k, kl);
    FZ_CHECK(has == (i >= 0 && fz_live(&fz_ref[i])), "has: %d", has);
}

/* A cursor placed by first, last, seek or seek_le, then moved a few steps
 * either way: every key and value it shows is the reference's. */
static void fz_cursor(calypso *db, fz_in *in, const uint8_t *k, size_t kl)
{
    size_t n = fz_expect(NULL, 0, NULL, 0, NULL, 0, 0);
    calypso_cursor *cur = NULL;
    int rc = calypso_cursor_open(db, &cur);
    FZ_CHECK(rc == CALYPSO_OK, "cursor_open: %d", rc);
    long pos;
    size_t lo = 0;
    while (lo < n && fz_cmp(fz_list[lo]->key, fz_list[lo]->klen, k, kl) < 0) lo++;
    switch (fz_byte(in) % 4) {
    case 0:  rc = calypso_cursor_first(cur); pos = n ? 0 : -1; break;
    case 1:  rc = calypso_cursor_last(cur); pos = (long)n - 1; break;
    case 2:  rc = calypso_cursor_seek(cur, k, kl); pos = lo < n ? (long)lo : -1; break;
    default:
        rc = calypso_cursor_seek_le(cur, k, kl);
        pos = lo < n && fz_cmp(fz_list[lo]->key, fz_list[lo]->klen, k, kl) == 0 ? (long)lo
                                                                               : (long)lo - 1;
        break;
    }
    for (int steps = fz_byte(in) % 8;; steps--) {
        int in_range = pos >= 0 && pos < (long)n;
        FZ_CHECK(rc == (in_range ? CALYPSO_OK : CALYPSO_ENOTFOUND), "cursor move: %d, want %s",
                 rc, in_range ? "a key" : "none");
        if (!in_range || steps < 0) break;
        const void *ck, *cv;
        size_t ckl, cvl;
        FZ_CHECK(calypso_cursor_key(cur, &ck, &ckl) == CALYPSO_OK &&
                     fz_cmp(ck, ckl, fz_list[pos]->key, fz_list[pos]->klen) == 0,
                 "cursor on the wrong key");
        rc = calypso_cursor_value(cur, &cv, &cvl);
        FZ_CHECK(rc == CALYPSO_OK && cvl == fz_list[pos]->vlen &&
                     memcmp(cv, fz_list[pos]->val, cvl) == 0,
                 "cursor value: %d", rc);
        int fwd = fz_byte(in) & 1;
        rc = fwd ? calypso_cursor_next(cur) : calypso_cursor_prev(cur);
        pos += fwd ? 1 : -1;
    }
    calypso_cursor_close(cur);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/db", fz_scratch());
    fz_rmtree(dir);
    fz_nref = 0;
    cy_clock_shift(-fz_hour * FZ_HOUR);
    fz_hour = 0;
    calypso_options o = { 0 };
    o.max_datafile_size = 4096;
    o.max_open_files = 1;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    calypso *db = NULL;
    FZ_CHECK(calypso_open(dir, &o, &db) == CALYPSO_OK, "open: %s", calypso_errmsg(NULL));

    fz_in in = { data, data + size };
    uint8_t k[FZ_MAXK], k2[FZ_MAXK], v[FZ_MAXV];
    for (int ops = 0; !fz_done(&in) && ops < 2000; ops++) {
        uint8_t op = fz_byte(&in) % 21;
        size_t kl = fz_key(&in, k), kl2, vl;
        int rc;
        switch (op) {
        case 0: case 1: case 2: case 3: case 4: {
            vl = fz_byte(&in) % (FZ_MAXV + 1);
            for (size_t i = 0; i < vl; i++) v[i] = (uint8_t)(op * 31 + i + fz_byte(&in));
            int64_t ttl_h = op == 4 ? 1 + fz_byte(&in) % 4 : 0;
            rc = calypso_put_ttl(db, k, kl, v, vl, (uint64_t)(ttl_h * FZ_HOUR));
            FZ_CHECK(rc == CALYPSO_OK, "put: %d %s", rc, calypso_errmsg(db));
            fz_ref_put(k, kl, v, vl, ttl_h ? fz_hour + ttl_h : 0);
            break;
        }
        case 5: case 6:
            rc = calypso_delete(db, k, kl);
            FZ_CHECK(rc == CALYPSO_OK, "delete: %d %s", rc, calypso_errmsg(db));
            fz_ref_del(k, kl);
            break;
        case 7: case 8:
            fz_check_get(db, k, kl);
            break;
        case 9: {
            long i = fz_find(k, kl);
            size_t cap = fz_byte(&in) % (FZ_MAXV + 1);
            size_t got = 0;
            rc = calypso_get_buf(db, k, kl, v, cap, &got);
            if (i >= 0 && fz_live(&fz_ref[i])) {
                if (fz_ref[i].vlen > cap)
                    FZ_CHECK(rc == CALYPSO_ETRUNC && got == fz_ref[i].vlen, "get_buf: %d", rc);
                else
                    FZ_CHECK(rc == CALYPSO_OK && got == fz_ref[i].vlen &&
                                 memcmp(v, fz_ref[i].val, got) == 0, "get_buf: %d", rc);
            }
            break;
        }
        case 10: case 11: {
            fz_walk w = { fz_list, 0, 0, 0 };
            if (op == 10) {
                w.n = fz_expect(k, kl, NULL, 0, NULL, 0, 0);
                rc = calypso_scan(db, k, kl, fz_walk_fn, &w);
            } else {
                kl2 = fz_key(&in, k2);
                if (fz_cmp(k, kl, k2, kl2) > 0) {
                    rc = calypso_range(db, k, kl, k2, kl2, fz_walk_fn, &w);
                    FZ_CHECK(rc == CALYPSO_EINVALIDRANGE, "range with start > end: %d", rc);
                    break;
                }
                w.n = fz_expect(NULL, 0, k, kl, k2, kl2, 1);
                rc = calypso_range(db, k, kl, k2, kl2, fz_walk_fn, &w);
            }
            FZ_CHECK(rc == CALYPSO_OK && !w.bad && w.at == w.n,
                     "walk: rc %d, %zu keys seen, %zu expected, order %s", rc, w.at, w.n,
                     w.bad ? "wrong" : "right");
            break;
        }
        case 12: {
            rc = calypso_sift_scan(db, k, kl, fz_sift_fn, NULL);
            FZ_CHECK(rc == CALYPSO_OK, "sift: %d %s", rc, calypso_errmsg(db));
            size_t n = fz_expect(k, kl, NULL, 0, NULL, 0, 0);
            uint8_t dk[1024][FZ_MAXK];
            size_t dl[1024], nd = 0;
            for (size_t i = 0; i < n; i++)
                if (fz_list[i]->key[fz_list[i]->klen - 1] == 'a') {
                    memcpy(dk[nd], fz_list[i]->key, fz_list[i]->klen);
                    dl[nd++] = fz_list[i]->klen;
                }
            for (size_t i = 0; i < nd; i++) fz_ref_del(dk[i], dl[i]);
            break;
        }
        case 13:
            rc = calypso_merge(db);
            FZ_CHECK(rc == CALYPSO_OK, "merge: %d %s", rc, calypso_errmsg(db));
            break;
        case 14:
            rc = calypso_reopen(db);
            FZ_CHECK(rc == CALYPSO_OK, "reopen: %d %s", rc, calypso_errmsg(db));
            break;
        case 15:
            FZ_CHECK(calypso_sync(db) == CALYPSO_OK, "sync");
            break;
        case 16:
            rc = calypso_run_gc(db);
            FZ_CHECK(rc == CALYPSO_OK, "gc: %d %s", rc, calypso_errmsg(db));
            for (size_t i = fz_nref; i-- > 0;)
                if (!fz_live(&fz_ref[i])) fz_ref_del(fz_ref[i].key, fz_ref[i].klen);
            break;
        case 17:
            if (fz_byte(&in) % 8 == 0) {
                rc = calypso_delete_all(db);
                FZ_CHECK(rc == CALYPSO_OK, "delete_all: %d %s", rc, calypso_errmsg(db));
                fz_nref = 0;
            }
            break;
        case 18:
            cy_clock_shift(FZ_HOUR);
            fz_hour++;
            break;
        case 19:
            fz_cursor(db, &in, k, kl);
            break;
        default: {
            uint64_t live = 0;
            for (size_t i = 0; i < fz_nref; i++) live += fz_live(&fz_ref[i]);
            FZ_CHECK(calypso_len(db) == live, "len %llu, expected %llu",
                     (unsigned long long)calypso_len(db), (unsigned long long)live);
            break;
        }
        }
    }
    fz_walk w = { fz_list, fz_expect(NULL, 0, NULL, 0, NULL, 0, 0), 0, 0 };
    int rc = calypso_fold(db, fz_walk_fn, &w);
    FZ_CHECK(rc == CALYPSO_OK && !w.bad && w.at == w.n, "final fold: %zu of %zu keys", w.at,
             w.n);
    for (size_t i = 0; i < fz_nref; i++) fz_check_get(db, fz_ref[i].key, fz_ref[i].klen);
    FZ_CHECK(calypso_close(db) == CALYPSO_OK, "close");
    return 0;
}
