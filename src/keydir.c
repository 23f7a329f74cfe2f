/*
 * keydir.c: the key directory. Every change to a namespace's keydir made
 * for a record goes through here: applying a record (replay and the write
 * path agree on what a record means this way), merge's compare-and-swap of
 * a moved record, and the dead-byte accounting both imply. So does every
 * ordered walk of a keydir: one batched iterator serves walks (walk.c),
 * cursors (cursor.c), merge (merge.c) and delete_all (db.c).
 *
 * Invariants: a key's entry names the newest record of it (fid, offset,
 * size; CY_LOC_TTL when the TTL index holds its expiry); ns->live_bytes is
 * the sum of the sizes its keydir names; db->files.dead, and each file's dead,
 * count the bytes of records no entry names any more (overwritten,
 * deleted, tombstones, batch headers), which a merge reclaims.
 *
 * Locks: changes run under write_mu and kd_lock exclusive (or before the
 * handle is shared, at open); lookups under kd_lock, shared or not. The
 * iterator takes kd_lock shared itself, one batch at a time, and never
 * holds it across I/O or a user callback: a batch visits a bounded number
 * of keys, counting those its visitor passes over (expired keys not yet
 * swept), so a walk over millions of them holds the lock no longer per
 * batch than one over live keys.
 */
#include "engine.h"

#include <string.h>

#define CY_KD_STEP  32      /* leaves gathered (prefetched) at a time */
#define CY_KD_VISIT 1024    /* keys visited per batch                 */

// >> lookups and changes ---------------------------------------------------------

CY_INTERNAL int cy_keydir_apply(calypso *db, cy_ns *ns, int type, const uint8_t *key,
                                size_t klen, uint64_t expiry, uint32_t fid, uint64_t off,
                                uint32_t size)
{
    cy_view_note(db, ns, key, klen);
    cy_loc old;
    if (type == CY_REC_DEL) {
        if (cy_art_delete(&ns->keydir, key, klen, &old)) {
            if (old.fid & CY_LOC_TTL) cy_ttl_clear(ns, key, klen);
            cy_files_dead_add(db, old.fid & CY_LOC_FIDMASK, old.size);
            ns->live_bytes -= old.size;
        }
        cy_files_dead_add(db, fid, size);   /* a tombstone is dead once applied */
        cy_files_mark_mixed(db, fid);
        return CALYPSO_OK;
    }
    cy_loc loc = { off, fid | (expiry ? CY_LOC_TTL : 0), size };
    int rc = cy_art_insert(&ns->keydir, key, klen, &loc, &old);
    if (rc < 0) return rc;
    int replaced = rc == 1;
    if (expiry) {
        if ((rc = cy_ttl_set(ns, key, klen, expiry)) < 0) {
            /* Put the keydir back as it was: replacing allocates nothing. */
            if (replaced) cy_art_insert(&ns->keydir, key, klen, &old, NULL);
            else cy_art_delete(&ns->keydir, key, klen, NULL);
            return rc;
        }
    } else if (replaced && (old.fid & CY_LOC_TTL)) {
        cy_ttl_clear(ns, key, klen);
    }
    ns->live_bytes += size;
    if (replaced) {
        cy_files_dead_add(db, old.fid & CY_LOC_FIDMASK, old.size);
        ns->live_bytes -= old.size;
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_keydir_apply_rec(calypso *db, const cy_rec *r, const uint8_t *key,
                                    uint32_t fid, uint64_t off, uint32_t size)
{
    if (r->type == CY_REC_NS_CREATE || r->type == CY_REC_NS_DROP)
        return cy_ns_apply(db, r->type, r->ns, key, (size_t)r->klen, fid, off, size);
    cy_ns *ns = cy_ns_find(db, r->ns);
    if (!ns) {                    /* its namespace was dropped: dead */
        cy_files_dead_add(db, fid, size);
        return CALYPSO_OK;
    }
    return cy_keydir_apply(db, ns, r->type, key, (size_t)r->klen, r->expiry, fid, off, size);
}

// >> merge's compare-and-swap ------------------------------------------------------

CY_INTERNAL int cy_keydir_is_at(calypso *db, uint32_t nsid, int create, const uint8_t *key,
                                size_t klen, uint32_t fid, uint64_t off)
{
    cy_rdlock(&db->kd_lock);
    cy_ns *ns = cy_ns_find(db, nsid);
    int at;
    if (create) {
        at = ns && ns->created.fid == fid && ns->created.off == off;
    } else {
        const cy_loc *l = ns ? cy_art_search(&ns->keydir, key, klen) : NULL;
        at = l && (l->fid & CY_LOC_FIDMASK) == fid && l->off == off;
    }
    cy_unlock(&db->kd_lock);
    return at;
}

CY_INTERNAL void cy_keydir_touch(calypso *db, const cy_kd_move *mv, const uint8_t *key,
                                 size_t klen)
{
    cy_ns *ns = mv->create ? NULL : cy_ns_find(db, mv->ns);
    const cy_loc *l = ns ? cy_art_search(&ns->keydir, key, klen) : NULL;
    if (l) CY_PREFETCH(l);
}

CY_INTERNAL void cy_keydir_move(calypso *db, const cy_kd_move *mv, const uint8_t *key,
                                size_t klen)
{
    cy_ns *ns = cy_ns_find(db, mv->ns);   /* NULL: dropped meanwhile */
    if (mv->create) {
        cy_loc *c = ns ? &ns->created : NULL;
        if (c && c->fid == mv->old_fid && c->off == mv->old_off) {
            c->fid = mv->new_fid;
            c->off = mv->new_off;
        } else {
            cy_files_dead_add(db, mv->new_fid, mv->size);
        }
        return;
    }
    cy_loc *l = ns ? cy_art_search(&ns->keydir, key, klen) : NULL;
    int same = l && (l->fid & CY_LOC_FIDMASK) == mv->old_fid && l->off == mv->old_off;
    if (same && mv->new_fid == 0) {          /* expired, not copied */
        cy_view_note(db, ns, key, klen);
        cy_loc old;
        cy_art_delete(&ns->keydir, key, klen, &old);
        ns->live_bytes -= old.size;
        if (old.fid & CY_LOC_TTL) cy_ttl_clear(ns, key, klen);
    } else if (same) {
        l->fid = mv->new_fid | (l->fid & CY_LOC_TTL);
        l->off = mv->new_off;
    } else if (mv->new_fid) {
        cy_files_dead_add(db, mv->new_fid, mv->size);   /* overwritten meanwhile */
    }
}

// >> the batched iterator ----------------------------------------------------------

/* What one batch has done so far. */
typedef struct cy_kd_batch {
    size_t          visited, taken, max;
    const uint8_t  *vk;     size_t vkl;     /* the last key visited (in the tree) */
    cy_kd_visit_fn  fn;
    void           *ctx;
} cy_kd_batch;

/* What cy_kd_offer tells the loop that called it. */
enum { CY_KD_GO, CY_KD_END, CY_KD_STOP, CY_KD_FILLED };

CY_INTERNAL void cy_kd_iter_init(cy_kd_iter *it, calypso *db, cy_ns *ns, int op,
                                 const void *key, size_t klen)
{
    memset(it, 0, sizeof *it);
    it->db = db;
    it->ns = ns;
    it->op = op;
    it->key = key;
    it->klen = klen;
    it->step = CY_KD_STEP;
    it->visit = CY_KD_VISIT;
    it->last = it->inl;
    it->lastcap = sizeof it->inl;
}

CY_INTERNAL void cy_kd_iter_free(cy_kd_iter *it)
{
    if (it->last != it->inl) cy_free(it->last);
    it->last = it->inl;
    it->lastcap = sizeof it->inl;
}

CY_INTERNAL int cy_keydir_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    return c ? c : (alen > blen) - (alen < blen);
}

/* Offers one key to the visitor: CY_KD_END when it is past the walk's
 * bounds, CY_KD_STOP when the batch ends before it (budget spent or the
 * visitor full), CY_KD_FILLED when it was the max-th taken, else CY_KD_GO;
 * or the visitor's error. Inlined into the loops: it runs once a key. */
static CY_INLINE int cy_kd_offer(const cy_kd_iter *it, cy_kd_batch *b, cy_kd_ent *e)
{
    if (it->plen && (e->klen < it->plen || memcmp(e->key, it->pfx, it->plen) != 0))
        return CY_KD_END;
    if (it->hi) {
        int c = cy_keydir_cmp(e->key, e->klen, it->hi, it->hilen);
        if (it->backward ? c < 0 : c > 0) return CY_KD_END;
    }
    if (b->visited >= it->visit) return CY_KD_STOP;
    e->expiry = 0;
    if (e->loc && (it->flags & CY_KD_EXPIRY) && (e->loc->fid & CY_LOC_TTL))
        e->expiry = cy_ttl_get(it->ns, e->key, e->klen);
    e->expired = e->expiry && e->expiry <= it->now;
    int v = b->fn(e, b->ctx);
    if (v < 0) return v;
    if (v == CY_KD_FULL) return CY_KD_STOP;
    b->visited++;
    b->vk = e->key;
    b->vkl = e->klen;
    if (v == CY_KD_TAKE && ++b->taken >= b->max) return CY_KD_FILLED;
    return CY_KD_GO;
}

/* Positions a tree iterator where the batch starts: the first seek, or
 * past the last key the previous batch visited. */
static int cy_kd_seek(const cy_kd_iter *it, cy_art_iter *t)
{
    if (it->resume)
        return cy_art_iter_seek(t, it->backward ? CY_SEEK_LT : CY_SEEK_GT, it->last, it->lastlen);
    return cy_art_iter_seek(t, it->op, it->key, it->klen);
}

/* The keydir alone: leaves are gathered a step at a time (their cache
 * misses overlap), then read. Returns as cy_kd_iter_gather. */
static int cy_kd_walk_one(cy_kd_iter *it, cy_kd_batch *b)
{
    const void *refs[CY_KD_STEP_MAX];
    size_t step = it->step < 1 ? 1 : it->step > CY_KD_STEP_MAX ? CY_KD_STEP_MAX : it->step;
    cy_art_iter t;
    cy_art_iter_init(&t, &it->ns->keydir);
    int state = cy_kd_seek(it, &t), rc = state;
    while (state == 1) {
        /* Gather no more than the batch can take or visit (and one past
         * the budget, to tell the walk's end from more to come): a key
         * passed over makes room for another step. */
        size_t want = b->max - b->taken, left = it->visit - b->visited;
        if (left < SIZE_MAX) left++;
        if (want > left) want = left;
        if (want > step) want = step;
        size_t m = cy_art_iter_gather(&t, refs, want, it->backward, &state);
        rc = state;
        for (size_t i = 0; i < m; i++) {
            cy_kd_ent e;
            e.key = cy_art_ref_key(refs[i], &e.klen);
            e.loc = cy_art_ref_loc(refs[i]);
            e.other = NULL;
            int v = cy_kd_offer(it, b, &e);
            if (v == CY_KD_GO) continue;
            if (v == CY_KD_FILLED) rc = i + 1 < m ? 1 : state;
            else rc = v == CY_KD_END ? 0 : v == CY_KD_STOP ? 1 : v;
            state = 0;
            break;
        }
    }
    cy_art_iter_free(&t);
    return rc;
}

/* The keydir and it->other side by side, in key order: a key both hold
 * comes once, with both entries. */
static int cy_kd_walk_two(cy_kd_iter *it, cy_kd_batch *b)
{
    cy_art_iter ta, tb;
    cy_art_iter_init(&ta, &it->ns->keydir);
    cy_art_iter_init(&tb, it->other);
    int ra = cy_kd_seek(it, &ta), rb = cy_kd_seek(it, &tb), rc;
    for (;;) {
        if (ra < 0 || rb < 0) { rc = CALYPSO_ENOMEM; break; }
        if (ra != 1 && rb != 1) { rc = 0; break; }
        size_t al = 0, bl = 0;
        const uint8_t *ka = ra == 1 ? cy_art_iter_key(&ta, &al) : NULL;
        const uint8_t *kb = rb == 1 ? cy_art_iter_key(&tb, &bl) : NULL;
        /* cmp <= 0: the keydir's key comes first in the walk's direction;
         * >= 0: the other's */
        int cmp = !ka ? 1 : !kb ? -1 : cy_keydir_cmp(ka, al, kb, bl);
        if (ka && kb && it->backward) cmp = -cmp;
        cy_kd_ent e;
        e.key = cmp <= 0 ? ka : kb;
        e.klen = cmp <= 0 ? al : bl;
        e.loc = cmp <= 0 ? cy_art_iter_loc(&ta) : NULL;
        e.other = cmp >= 0 ? cy_art_iter_loc(&tb) : NULL;
        int v = cy_kd_offer(it, b, &e);
        if (v == CY_KD_END || v == CY_KD_STOP || v < 0) {
            rc = v == CY_KD_END ? 0 : v == CY_KD_STOP ? 1 : v;
            break;
        }
        if (cmp <= 0) ra = it->backward ? cy_art_iter_prev(&ta) : cy_art_iter_next(&ta);
        if (cmp >= 0) rb = it->backward ? cy_art_iter_prev(&tb) : cy_art_iter_next(&tb);
        if (v == CY_KD_FILLED) {
            rc = ra < 0 || rb < 0 ? CALYPSO_ENOMEM : ra == 1 || rb == 1;
            break;
        }
    }
    cy_art_iter_free(&ta);
    cy_art_iter_free(&tb);
    return rc;
}

/* Keeps a copy of the last key visited (in the tree: kd_lock held), where
 * the next batch starts. */
static int cy_kd_keep_last(cy_kd_iter *it, const cy_kd_batch *b)
{
    if (!b->vk) return CALYPSO_OK;
    if (b->vkl > it->lastcap) {
        uint8_t *p = cy_realloc(it->last == it->inl ? NULL : it->last, b->vkl);
        if (!p) return CALYPSO_ENOMEM;
        it->last = p;
        it->lastcap = b->vkl;
    }
    if (b->vkl) memcpy(it->last, b->vk, b->vkl);
    it->lastlen = b->vkl;
    it->resume = 1;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_kd_iter_gather(cy_kd_iter *it, size_t max, cy_kd_visit_fn fn, void *ctx)
{
    if (it->done || max == 0) return it->done ? 0 : 1;
    calypso *db = it->db;
    cy_kd_batch b = { 0, 0, max, NULL, 0, fn, ctx };
    int locked = (it->flags & CY_KD_LOCKED) != 0;
    if (!locked) cy_rdlock(&db->kd_lock);
    int rc = it->other ? cy_kd_walk_two(it, &b) : cy_kd_walk_one(it, &b);
    if (rc == 1 && cy_kd_keep_last(it, &b) < 0) rc = CALYPSO_ENOMEM;
    it->seq = db->views.commit_seq;
    if (!locked) cy_unlock(&db->kd_lock);
    if (rc == 0) it->done = 1;
    return rc;
}

CY_INTERNAL int cy_kd_take_key(const cy_kd_ent *e, void *ctx)
{
    cy_kd_keys *k = ctx;
    if (k->out->n >= k->max) return CY_KD_FULL;
    uint64_t used = k->used + k->per_key + e->klen;
    if (used > k->limit && k->out->n) return CY_KD_FULL;
    int rc = cy_keylist_push(k->out, e->key, e->klen);
    if (rc < 0) return rc;
    k->used = used;
    return CY_KD_TAKE;
}
