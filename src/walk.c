/*
 * walk.c: ordered walks over the keydir: fold, scan (prefix), range, and
 * the sift family that deletes what a callback picks.
 *
 * A walk never runs user code under an engine lock. It copies a batch of
 * keys (at most CY_WALK_BATCH keys or CY_WALK_BYTES bytes) out of the tree
 * under kd_lock shared, drops the lock, calls back for each, and resumes by
 * seeking past the last key it returned. So a callback may write to the
 * same handle, writers are never blocked for more than one batch, and
 * every key that exists for the whole walk is seen exactly once, in order.
 * Expired keys are skipped, and count against the batch like any other
 * key visited (at most CY_WALK_VISIT a batch): a walk over millions of
 * expired keys not yet swept holds the lock no longer per batch than one
 * over live keys. A sift collects the expired keys it passes instead of
 * skipping them, without asking its callback, and deletes them in the same
 * batch as the keys the callback chose (as CalypsoDB's Sift: "if the KV
 * pair is expired or the function returns true, that key is deleted"); the
 * batch deletes such a key only if it is still expired when it commits, so
 * a key written again meanwhile survives.
 */
#include "engine.h"

#include <string.h>

#define CY_WALK_BATCH 256
#define CY_WALK_BYTES (64u << 10)
#define CY_WALK_STEP  32        /* leaves prefetched ahead of reading them */
#define CY_WALK_VISIT 1024      /* keys visited per batch, expired ones too */
#define CY_WALK_AHEAD 16        /* records prefetched ahead of the callback */

/* Where each key of a batch was, for the get a callback makes of it. */
typedef struct cy_walk_ent {
    cy_loc         loc;
    uint64_t       expiry;
    const uint8_t *at;      /* its record's mapped bytes at batch time: a
                               prefetch hint only, never read through     */
} cy_walk_ent;

/* The key a walk has just handed to its callback on this thread, where it
 * was, and the keydir's change count then (cy_walk_hint). */
static _Thread_local struct {
    const calypso     *db;
    const cy_ns       *ns;
    const uint8_t     *key;
    size_t             klen;
    const cy_walk_ent *ent;
    uint64_t           seq;
} cy_walk_given;

CY_INTERNAL int cy_walk_hint(const calypso *db, const cy_ns *ns, const void *key, size_t klen,
                             cy_loc *loc, uint64_t *expiry)
{
    if (cy_walk_given.db != db || cy_walk_given.ns != ns || ns->dropped || cy_walk_given.klen != klen ||
        db->commit_seq != cy_walk_given.seq || memcmp(cy_walk_given.key, key, klen) != 0)
        return 0;
    *loc = cy_walk_given.ent->loc;
    *expiry = cy_walk_given.ent->expiry;
    return 1;
}

typedef struct cy_walk {
    const uint8_t *lo;  size_t lolen;  /* first key (inclusive), or NULL   */
    const uint8_t *hi;  size_t hilen;  /* last key (inclusive), or NULL    */
    const uint8_t *pfx; size_t plen;   /* prefix every key must have       */
    cy_ns         *ns;                 /* the namespace walked             */
} cy_walk;

static int cy_walk_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Fills `batch` with the next keys of the walk after `last` (all from the
 * start when last is NULL), and `resume` with the last key it visited (the
 * next batch starts after it); adds the expired keys it passes to
 * `expired` when that is not NULL. Returns 1 if the walk has more, 0 at its
 * end, or a negative code. */
static int cy_walk_batch(calypso *db, const cy_walk *w, const uint8_t *last, size_t lastlen,
                         cy_keylist *batch, cy_walk_ent *ents, uint64_t *seq,
                         cy_keylist *resume, cy_keylist *expired)
{
    cy_keylist_clear(batch);
    cy_keylist_clear(resume);
    size_t visited = 0;
    const uint8_t *vk = NULL;   /* the last key visited, under the lock */
    size_t vklen = 0;
    uint64_t now = cy_now_ms();
    const void *refs[CY_WALK_STEP];
    cy_rdlock(&db->kd_lock);
    cy_art_iter it;
    cy_art_iter_init(&it, &w->ns->keydir);
    int rc;
    if (last) rc = cy_art_iter_seek(&it, CY_SEEK_GT, last, lastlen);
    else if (w->lo) rc = cy_art_iter_seek(&it, CY_SEEK_GE, w->lo, w->lolen);
    else rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0);
    int full = 0;
    while (rc == 1 && !full) {
        /* Gather a step of leaves (prefetched), then read them. On
         * stopping early, the iterator stands past refs[i]: the caller
         * resumes by seeking (more = 1). */
        size_t m = cy_art_iter_gather(&it, refs, CY_WALK_STEP, 0, &rc);
        for (size_t i = 0; i < m; i++) {
            size_t klen;
            const uint8_t *k = cy_art_ref_key(refs[i], &klen);
            if ((w->pfx && (klen < w->plen || memcmp(k, w->pfx, w->plen) != 0)) ||
                (w->hi && cy_walk_cmp(k, klen, w->hi, w->hilen) > 0)) {
                rc = 0;                         /* past the end of the walk */
                break;
            }
            if (batch->n >= CY_WALK_BATCH || batch->blen >= CY_WALK_BYTES ||
                visited >= CY_WALK_VISIT) {
                rc = 1;                         /* full: the caller resumes */
                full = 1;
                break;
            }
            visited++;
            vk = k;
            vklen = klen;
            const cy_loc *l = cy_art_ref_loc(refs[i]);
            uint64_t exp = (l->fid & CY_LOC_TTL) ? cy_ttl_get(w->ns, k, klen) : 0;
            cy_keylist *to = batch;
            if (exp && exp <= now) {
                if (!expired) continue;
                to = expired;
            }
            if (to == batch) ents[batch->n] = (cy_walk_ent){ *l, exp, NULL };
            int prc = cy_keylist_push(to, k, klen);
            if (prc < 0) { rc = prc; full = 1; break; }
        }
    }
    *seq = db->commit_seq;
    if (rc == 1 && vk && cy_keylist_push(resume, vk, vklen) < 0) rc = CALYPSO_ENOMEM;
    cy_art_iter_free(&it);
    cy_unlock(&db->kd_lock);
    return rc;
}

/* Notes where the batch's records are mapped, and prefetches the first:
 * a callback that gets the value of each key it is handed (CalypsoDB's
 * scan-then-get) then finds it in the cache. */
static void cy_walk_locate(calypso *db, cy_walk_ent *ents, size_t n)
{
    uint32_t ep = cy_epoch_enter(&db->epoch), fid = 0;
    cy_file *f = NULL;
    for (size_t i = 0; i < n; i++) {
        uint32_t want = ents[i].loc.fid & CY_LOC_FIDMASK;
        if (!f || fid != want) {
            f = cy_files_find(db, want);
            fid = want;
        }
        ents[i].at = f ? cy_files_mapped(f, ents[i].loc.off, ents[i].loc.size) : NULL;
        if (i < CY_WALK_AHEAD && ents[i].at) CY_PREFETCH(ents[i].at);
    }
    cy_epoch_leave(&db->epoch, ep);
}

/* Runs the walk, calling fn(key, klen, ctx) for each live key, and
 * collecting the expired ones in `expired` (unless NULL). While fn runs,
 * a get of the key it was handed skips the tree (cy_walk_hint). */
static int cy_walk_run(calypso *db, const cy_walk *w, int (*fn)(const void *, size_t, void *),
                       void *ctx, cy_keylist *expired)
{
    cy_keylist batch = { 0 }, resume = { 0 };
    cy_walk_ent *ents = cy_malloc(CY_WALK_BATCH * sizeof *ents);
    if (!ents) return cy_err(db, CALYPSO_ENOMEM, "walking the keys");
    uint64_t seq = 0;
    uint8_t *last = NULL;
    size_t lastlen = 0, lastcap = 0;
    int rc, more = 1, have_last = 0;
    for (rc = 0; more && !rc;) {
        more = cy_walk_batch(db, w, have_last ? last : NULL, lastlen, &batch, ents, &seq,
                             &resume, expired);
        if (more < 0) { rc = cy_err(db, more, "walking the keys"); break; }
        cy_walk_locate(db, ents, batch.n);
        for (size_t i = 0; i < batch.n && !rc; i++) {
            size_t klen;
            const uint8_t *k = cy_keylist_at(&batch, i, &klen);
            if (i + CY_WALK_AHEAD < batch.n && ents[i + CY_WALK_AHEAD].at)
                CY_PREFETCH(ents[i + CY_WALK_AHEAD].at);
            cy_walk_given.db = db;
            cy_walk_given.ns = w->ns;
            cy_walk_given.key = k;
            cy_walk_given.klen = klen;
            cy_walk_given.ent = &ents[i];
            cy_walk_given.seq = seq;
            rc = fn(k, klen, ctx);
            cy_walk_given.db = NULL;
        }
        /* A batch ends early only when it is full, having visited at
         * least one key: the next starts after the last one visited. */
        if (rc || !more || resume.n == 0) break;
        size_t klen;
        const uint8_t *k = cy_keylist_at(&resume, 0, &klen);
        if (klen > lastcap) {
            uint8_t *p = cy_realloc(last, klen);
            if (!p) { rc = cy_err(db, CALYPSO_ENOMEM, "walking the keys"); break; }
            last = p;
            lastcap = klen;
        }
        memcpy(last, k, klen);
        lastlen = klen;
        have_last = 1;
    }
    cy_free(last);
    cy_free(ents);
    cy_keylist_free(&batch);
    cy_keylist_free(&resume);
    return rc;
}

// >> public walks -------------------------------------------------------------------

typedef struct { calypso_key_fn fn; void *ctx; } cy_walk_user;

static int cy_walk_call_user(const void *k, size_t klen, void *ctx)
{
    cy_walk_user *u = ctx;
    return u->fn(k, klen, u->ctx);
}

static int cy_walk_check(calypso *db, const void *a, size_t alen, const void *b, size_t blen,
                         int have_fn)
{
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (!have_fn) return cy_err(db, CALYPSO_EINVAL, "callback is NULL");
    if ((!a && alen) || (!b && blen)) return cy_err(db, CALYPSO_EINVAL, "bound is NULL");
    return CALYPSO_OK;
}

static int cy_walk_range_check(calypso *db, const void *start, size_t slen, const void *end,
                               size_t elen)
{
    if (cy_walk_cmp(start ? start : "", slen, end ? end : "", elen) > 0)
        return cy_err(db, CALYPSO_EINVALIDRANGE, NULL);
    return CALYPSO_OK;
}

int calypso_fold(calypso *db, calypso_key_fn fn, void *ctx)
{
    return calypso_scan(db, NULL, 0, fn, ctx);
}

int calypso_scan(calypso *db, const void *prefix, size_t plen, calypso_key_fn fn, void *ctx)
{
    cy_ns *ns = cy_ns_of(db);
    db = cy_base(db);
    int rc = cy_walk_check(db, prefix, plen, NULL, 0, fn != NULL);
    if (rc) return rc;
    cy_walk w = { .lo = plen ? prefix : NULL, .lolen = plen, .pfx = plen ? prefix : NULL,
                  .plen = plen, .ns = ns };
    cy_walk_user u = { fn, ctx };
    return cy_walk_run(db, &w, cy_walk_call_user, &u, NULL);
}

int calypso_range(calypso *db, const void *start, size_t slen, const void *end, size_t elen,
                  calypso_key_fn fn, void *ctx)
{
    cy_ns *ns = cy_ns_of(db);
    db = cy_base(db);
    int rc = cy_walk_check(db, start, slen, end, elen, fn != NULL);
    if (!rc) rc = cy_walk_range_check(db, start, slen, end, elen);
    if (rc) return rc;
    cy_walk w = { .lo = start ? start : (const uint8_t *)"", .lolen = slen,
                  .hi = end ? end : (const uint8_t *)"", .hilen = elen, .ns = ns };
    cy_walk_user u = { fn, ctx };
    return cy_walk_run(db, &w, cy_walk_call_user, &u, NULL);
}

// >> sift -------------------------------------------------------------------------

typedef struct { calypso_sift_fn fn; void *ctx; cy_keylist doomed, expired; } cy_sift;

static int cy_sift_one(const void *k, size_t klen, void *ctx)
{
    cy_sift *s = ctx;
    int v = s->fn(k, klen, s->ctx);
    if (v < 0) return v;
    if (v > 0 && cy_keylist_push(&s->doomed, k, klen) < 0) return CALYPSO_ENOMEM;
    return 0;
}

/* Walks, then deletes together every key the callback chose and every
 * expired key passed. A negative answer from the callback aborts with
 * nothing deleted. */
static int cy_sift_run(calypso *db, const cy_walk *w, calypso_sift_fn fn, void *ctx)
{
    int rc = cy_db_writable(db);
    if (rc) return rc;
    cy_sift s = { fn, ctx, { 0 }, { 0 } };
    rc = cy_walk_run(db, w, cy_sift_one, &s, &s.expired);
    if (rc == CALYPSO_ENOMEM) rc = cy_err(db, rc, "collecting keys to delete");
    if (!rc && (s.doomed.n || s.expired.n)) rc = cy_db_delete_keys(db, w->ns, &s.doomed, &s.expired);
    cy_keylist_free(&s.doomed);
    cy_keylist_free(&s.expired);
    return rc;
}

int calypso_sift(calypso *db, calypso_sift_fn fn, void *ctx)
{
    return calypso_sift_scan(db, NULL, 0, fn, ctx);
}

int calypso_sift_scan(calypso *db, const void *prefix, size_t plen, calypso_sift_fn fn, void *ctx)
{
    cy_ns *ns = cy_ns_of(db);
    db = cy_base(db);
    int rc = cy_walk_check(db, prefix, plen, NULL, 0, fn != NULL);
    if (rc) return rc;
    cy_walk w = { .lo = plen ? prefix : NULL, .lolen = plen, .pfx = plen ? prefix : NULL,
                  .plen = plen, .ns = ns };
    return cy_sift_run(db, &w, fn, ctx);
}

int calypso_sift_range(calypso *db, const void *start, size_t slen, const void *end, size_t elen,
                       calypso_sift_fn fn, void *ctx)
{
    cy_ns *ns = cy_ns_of(db);
    db = cy_base(db);
    int rc = cy_walk_check(db, start, slen, end, elen, fn != NULL);
    if (!rc) rc = cy_walk_range_check(db, start, slen, end, elen);
    if (rc) return rc;
    cy_walk w = { .lo = start ? start : (const uint8_t *)"", .lolen = slen,
                  .hi = end ? end : (const uint8_t *)"", .hilen = elen, .ns = ns };
    return cy_sift_run(db, &w, fn, ctx);
}
