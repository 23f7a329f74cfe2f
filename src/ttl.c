/*
 * ttl.c: the TTL index.
 *
 * Only keys that have an expiry pay for it. Such a key's keydir location
 * carries CY_LOC_TTL, and two trees hold its expiry:
 *   ttl_by_key   key -> expiry (in loc.off): answers "when does k expire";
 *   ttl_by_time  be64(expiry) || key: ordered by (expiry, key), so that the
 *                expired keys are a prefix of the tree and collecting them
 *                costs O(expired · log n), never a scan of every key.
 * Both are guarded by kd_lock with the keydir. An update first adds what it
 * needs (which may fail for memory) and only then removes the old entries
 * (which cannot fail), so a failed update leaves the index as it was.
 *
 * How many keys have expired (calypso_len, calypso_stats) is kept, not
 * counted each time: exp_count is the number of entries with an expiry at
 * or before exp_asof. Writers (kd_lock exclusive) adjust it as they add
 * and remove entries on either side of exp_asof; a reader (kd_lock shared,
 * exp_mu for the update) moves exp_asof up to now by counting only the
 * entries that expired since. Each entry is counted once as it expires, so
 * a count costs O(keys expired since the last one), not O(expired keys).
 */
#include "engine.h"

#include <string.h>

static void cy_ttl_time_key(uint8_t *out, uint64_t expiry, const void *key, size_t klen)
{
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(expiry >> (56 - 8 * i));
    if (klen) memcpy(out + 8, key, klen);   /* key may be NULL when klen is 0 */
}

CY_INTERNAL uint64_t cy_ttl_get(cy_ns *ns, const void *key, size_t klen)
{
    const cy_loc *l = cy_art_search(&ns->ttl_by_key, key, klen);
    return l ? l->off : 0;
}

/* An entry with this expiry joins (+1) or leaves (-1) the index. kd_lock
 * exclusive. */
static void cy_ttl_count_adjust(cy_ns *ns, uint64_t expiry, int delta)
{
    if (expiry && expiry <= ns->exp_asof) ns->exp_count += (uint64_t)(int64_t)delta;
}

CY_INTERNAL int cy_ttl_set(cy_ns *ns, const void *key, size_t klen, uint64_t expiry)
{
    uint8_t stackbuf[256];
    uint8_t *tk = klen + 8 <= sizeof stackbuf ? stackbuf : cy_malloc(klen + 8);
    if (!tk) return CALYPSO_ENOMEM;
    uint64_t old = cy_ttl_get(ns, key, klen);
    cy_loc none = { 0, 0, 0 }, at = { expiry, 0, 0 };
    int rc = CALYPSO_OK;
    if (old != expiry) {
        cy_ttl_time_key(tk, expiry, key, klen);
        rc = cy_art_insert(&ns->ttl_by_time, tk, klen + 8, &none, NULL);
        if (rc >= 0) {
            rc = cy_art_insert(&ns->ttl_by_key, key, klen, &at, NULL);
            if (rc < 0) {
                cy_art_delete(&ns->ttl_by_time, tk, klen + 8, NULL);
            } else if (old) {
                cy_ttl_time_key(tk, old, key, klen);
                cy_art_delete(&ns->ttl_by_time, tk, klen + 8, NULL);
            }
            if (rc >= 0) {
                cy_ttl_count_adjust(ns, expiry, +1);
                cy_ttl_count_adjust(ns, old, -1);
            }
        }
    }
    if (tk != stackbuf) cy_free(tk);
    return rc < 0 ? rc : CALYPSO_OK;
}

CY_INTERNAL void cy_ttl_clear(cy_ns *ns, const void *key, size_t klen)
{
    cy_loc old;
    if (!cy_art_delete(&ns->ttl_by_key, key, klen, &old)) return;
    cy_ttl_count_adjust(ns, old.off, -1);
    uint8_t stackbuf[256];
    uint8_t *tk = klen + 8 <= sizeof stackbuf ? stackbuf : cy_malloc(klen + 8);
    if (!tk) {
        /* Cannot build the time key: find the entry by walking the
         * entries that share its expiry instead of allocating. */
        uint8_t pfx[8];
        cy_ttl_time_key(pfx, old.off, key, 0);
        cy_art_iter it;
        cy_art_iter_init(&it, &ns->ttl_by_time);
        int ok = cy_art_iter_seek(&it, CY_SEEK_GE, pfx, 8);
        while (ok == 1) {
            size_t n;
            const uint8_t *k = cy_art_iter_key(&it, &n);
            if (n < 8 || memcmp(k, pfx, 8) != 0) break;
            if (n == klen + 8 && memcmp(k + 8, key, klen) == 0) {
                /* Deleting invalidates the iterator; we stop right here. */
                cy_art_iter_free(&it);
                cy_art_delete(&ns->ttl_by_time, k, n, NULL);
                return;
            }
            ok = cy_art_iter_next(&it);
        }
        cy_art_iter_free(&it);
        return;
    }
    cy_ttl_time_key(tk, old.off, key, klen);
    cy_art_delete(&ns->ttl_by_time, tk, klen + 8, NULL);
    if (tk != stackbuf) cy_free(tk);
}

/* Walks the entries that expire in (after, now], in expiry order; fn gets
 * the user key. */
static int cy_ttl_walk_expired(cy_ns *ns, uint64_t after, uint64_t now,
                               int (*fn)(const uint8_t *k, size_t n, void *ctx), void *ctx)
{
    cy_art_iter it;
    cy_art_iter_init(&it, &ns->ttl_by_time);
    int rc;
    if (after == 0) {
        rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0);
    } else {
        uint8_t from[8];
        cy_ttl_time_key(from, after, NULL, 0);
        rc = cy_art_iter_seek(&it, CY_SEEK_GT, from, 8);
        /* Keys of expiry `after` itself sort after its 8-byte prefix: */
        while (rc == 1) {
            size_t n;
            const uint8_t *k = cy_art_iter_key(&it, &n);
            if (n < 8 || memcmp(k, from, 8) != 0) break;
            rc = cy_art_iter_next(&it);
        }
    }
    while (rc == 1) {
        size_t n;
        const uint8_t *k = cy_art_iter_key(&it, &n);
        uint64_t exp = 0;
        for (int i = 0; i < 8; i++) exp = exp << 8 | k[i];
        if (exp > now) { rc = 0; break; }
        if ((rc = fn(k + 8, n - 8, ctx)) != 0) break;
        rc = cy_art_iter_next(&it);
    }
    cy_art_iter_free(&it);
    return rc < 0 ? rc : CALYPSO_OK;
}

static int cy_ttl_count_one(const uint8_t *k, size_t n, void *ctx)
{
    (void)k; (void)n;
    (*(uint64_t *)ctx)++;
    return 0;
}

CY_INTERNAL uint64_t cy_ttl_count_expired(calypso *db, cy_ns *ns, uint64_t now)
{
    pthread_mutex_lock(&db->exp_mu);
    if (now < ns->exp_asof) {
        /* The clock went back: count from the start again. */
        ns->exp_asof = 0;
        ns->exp_count = 0;
    }
    if (now > ns->exp_asof) {
        uint64_t n = 0;
        cy_ttl_walk_expired(ns, ns->exp_asof, now, cy_ttl_count_one, &n);
        ns->exp_count += n;
        ns->exp_asof = now;
    }
    uint64_t count = ns->exp_count;
    pthread_mutex_unlock(&db->exp_mu);
    return count;
}

typedef struct { cy_keylist *out; size_t max; } cy_ttl_collect;

static int cy_ttl_collect_one(const uint8_t *k, size_t n, void *ctx)
{
    cy_ttl_collect *c = ctx;
    if (c->out->n >= c->max) return 1;
    return cy_keylist_push(c->out, k, n);
}

CY_INTERNAL int cy_ttl_expired(cy_ns *ns, uint64_t now, size_t max, cy_keylist *out)
{
    cy_ttl_collect c = { out, max };
    int rc = cy_ttl_walk_expired(ns, 0, now, cy_ttl_collect_one, &c);
    return rc == 1 ? CALYPSO_OK : rc;
}
