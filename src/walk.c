/*
 * walk.c: ordered walks over the keydir: fold, scan (prefix), range, and
 * the sift family that deletes what a callback picks.
 *
 * A walk never runs user code under an engine lock. It copies a batch of
 * keys (at most CY_WALK_BATCH keys or CY_WALK_BYTES bytes) out of the tree
 * with the keydir's iterator (keydir.c: kd_lock shared for the batch),
 * calls back for each, and resumes past the last key the batch visited.
 * So a callback may write to the same handle, writers are never blocked
 * for more than one batch, and every key that exists for the whole walk
 * is seen exactly once, in order.
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
        db->views.commit_seq != cy_walk_given.seq || memcmp(cy_walk_given.key, key, klen) != 0)
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

/* A batch being filled: live keys to `batch` (with where each is, in
 * ents), expired ones to `expired` unless that is NULL. */
typedef struct cy_walk_fill {
    cy_keylist  *batch;
    cy_walk_ent *ents;
    cy_keylist  *expired;
} cy_walk_fill;

/* The iterator's visitor (keydir.c), under kd_lock shared. */
static int cy_walk_take(const cy_kd_ent *e, void *ctx)
{
    cy_walk_fill *f = ctx;
    if (f->batch->n >= CY_WALK_BATCH || f->batch->blen >= CY_WALK_BYTES) return CY_KD_FULL;
    cy_keylist *to = f->batch;
    if (e->expired) {
        if (!f->expired) return CY_KD_PASS;
        to = f->expired;
    }
    if (to == f->batch) f->ents[f->batch->n] = (cy_walk_ent){ *e->loc, e->expiry, NULL };
    int rc = cy_keylist_push(to, e->key, e->klen);
    return rc < 0 ? rc : CY_KD_TAKE;
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
    cy_keylist batch = { 0 };
    cy_walk_ent *ents = cy_malloc(CY_WALK_BATCH * sizeof *ents);
    if (!ents) return cy_err(db, CALYPSO_ENOMEM, "walking the keys");
    cy_walk_fill fill = { &batch, ents, expired };
    cy_kd_iter it;
    cy_kd_iter_init(&it, db, w->ns, w->lo ? CY_SEEK_GE : CY_SEEK_FIRST, w->lo, w->lolen);
    it.pfx = w->pfx;
    it.plen = w->plen;
    it.hi = w->hi;
    it.hilen = w->hilen;
    it.step = CY_WALK_STEP;
    it.visit = CY_WALK_VISIT;
    it.flags = CY_KD_EXPIRY;
    int rc = 0;
    for (int more = 1; more && !rc;) {
        cy_keylist_clear(&batch);
        it.now = cy_now_ms();
        more = cy_kd_iter_gather(&it, SIZE_MAX, cy_walk_take, &fill);
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
            cy_walk_given.seq = it.seq;
            rc = fn(k, klen, ctx);
            cy_walk_given.db = NULL;
        }
    }
    cy_kd_iter_free(&it);
    cy_free(ents);
    cy_keylist_free(&batch);
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
    const uint8_t *none = (const uint8_t *)"";
    if (cy_keydir_cmp(start ? start : none, slen, end ? end : none, elen) > 0)
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
