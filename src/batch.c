/*
 * batch.c: atomic write batches (calypso_batch_*).
 *
 * A batch collects puts and deletes in memory and commits them as one
 * record of type CY_REC_BATCH (doc/format.md): the batch's records, whole,
 * back to back, under one checksum. So on disk a batch is all there or not
 * at all: a crash that tears it leaves a record that fails its checksum at
 * the tail, which open cuts off like any torn record. Inside, each record
 * keeps its own checksum and header, so the keydir points at it directly
 * and a get reads it alone, exactly like a record written by a plain put.
 *
 * In memory the records are applied under one hold of kd_lock (exclusive):
 * a reader sees all of a batch or none of it. If applying fails midway
 * (memory), what was applied is undone in reverse order before the lock is
 * released, and the append is cut back; should even the undo fail, the
 * handle refuses writes until reopened (as for any write it cannot undo).
 * Under CALYPSO_SYNC_ALWAYS a batch costs one fdatasync, shared with
 * concurrent writers through group commit (commit.c).
 *
 * A delete of a key that is absent when the batch commits (and was not put
 * earlier in the same batch) writes nothing, as calypso_delete. Later
 * operations on a key win over earlier ones, in the order they were added.
 *
 * A batch belongs to one thread at a time; committing takes db's locks as a
 * put does.
 */
#include "engine.h"

#include <string.h>

/* Framing a batch may add per operation, beyond its key and value: a
 * record header, and a tombstone's victim id. */
#define CY_BATCH_OP_OVERHEAD (CY_REC_MAX_HDR + 10u)

typedef struct cy_batch_op {
    uint8_t  type;        /* CY_REC_PUT or CY_REC_DEL (TTL decided at commit) */
    uint32_t nsi;         /* its namespace: index in the batch's nss        */
    uint64_t ttl_ms;      /* puts: 0 = none                                  */
    size_t   at;          /* key, then value, in the arena                   */
    uint32_t klen;
    uint64_t vlen;
    /* filled at commit */
    uint64_t expiry;
    uint32_t victim;      /* deletes: file of the record deleted             */
    int      skip;        /* a delete of an absent key: writes nothing       */
    int      if_expired;  /* deletes: only if the key is expired at commit   */
} cy_batch_op;

/* A namespace the batch writes to: pinned while the batch lives (ns.c),
 * with its part of the index when one is kept. */
typedef struct cy_batch_nsref {
    cy_ns  *ns;
    cy_art  index;        /* key -> its last operation (loc.off)             */
} cy_batch_nsref;

struct calypso_batch {
    calypso     *db;
    cy_batch_op *ops;
    size_t       nops, opcap;
    uint8_t     *arena;
    size_t       alen, acap;
    uint64_t     bound;   /* the encoded size can be at most this            */
    cy_batch_nsref *nss;  /* namespaces written or named                     */
    uint32_t     nns, nscap;
    uint32_t     cur;     /* operations go to nss[cur] (calypso_batch_ns)    */
    int          indexed; /* keep the index (cy_batch_keep_index)            */
    size_t       puts;    /* operations that put                             */
    /* commit state */
    uint8_t     *rec;
    size_t       size;
    struct cy_batch_undo *undo;
};

/* What applying one record changed, to put back if a later one fails. */
typedef struct cy_batch_undo {
    int      had;         /* the key was in the keydir before               */
    cy_loc   old;
    uint64_t old_expiry;
    uint32_t dead_fid[2]; /* dead bytes the apply added, to take back        */
    uint64_t dead[2];
} cy_batch_undo;

/* The index in b->nss of ns, added (and pinned) if new; -1 on ENOMEM. */
static int64_t cy_batch_ns_slot(calypso_batch *b, cy_ns *ns)
{
    for (uint32_t i = 0; i < b->nns; i++)
        if (b->nss[i].ns == ns) return i;
    if (b->nns == b->nscap) {
        uint32_t nc = b->nscap ? b->nscap * 2 : 4;
        cy_batch_nsref *p = cy_realloc(b->nss, nc * sizeof *p);
        if (!p) return -1;
        b->nss = p;
        b->nscap = nc;
    }
    cy_ns_pin(b->db, ns);
    b->nss[b->nns].ns = ns;
    cy_art_init(&b->nss[b->nns].index);
    return b->nns++;
}

int calypso_batch_open(calypso *h, calypso_batch **out)
{
    calypso *db = cy_base(h);
    if (out) *out = NULL;
    if (!out) return db ? cy_err(db, CALYPSO_EINVAL, "no batch pointer") : CALYPSO_EINVAL;
    int rc = cy_db_writable(db);
    if (rc) return rc;
    calypso_batch *b = cy_calloc(1, sizeof *b);
    if (!b) return cy_err(db, CALYPSO_ENOMEM, "allocating a batch");
    b->db = db;
    b->bound = CY_REC_MAX_HDR;   /* the batch record's own header */
    if (cy_batch_ns_slot(b, cy_ns_of(h)) < 0) {
        cy_free(b);
        return cy_err(db, CALYPSO_ENOMEM, "allocating a batch");
    }
    *out = b;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_batch_set_ns(calypso_batch *b, cy_ns *ns)
{
    int64_t i = cy_batch_ns_slot(b, ns);
    if (i < 0) return cy_err(b->db, CALYPSO_ENOMEM, "growing a batch");
    b->cur = (uint32_t)i;
    return CALYPSO_OK;
}

int calypso_batch_ns(calypso_batch *b, calypso *h)
{
    if (!b || !h) return CALYPSO_EINVAL;
    if (cy_base(h) != b->db)
        return cy_err(b->db, CALYPSO_EINVAL, "calypso_batch_ns: a handle of another database");
    int64_t i = cy_batch_ns_slot(b, cy_ns_of(h));
    if (i < 0) return cy_err(b->db, CALYPSO_ENOMEM, "growing a batch");
    b->cur = (uint32_t)i;
    return CALYPSO_OK;
}

void calypso_batch_abort(calypso_batch *b)
{
    if (!b) return;
    for (uint32_t i = 0; i < b->nns; i++) {
        cy_art_destroy(&b->nss[i].index);
        cy_ns_unpin(b->db, b->nss[i].ns);
    }
    cy_free(b->nss);
    cy_free(b->ops);
    cy_free(b->arena);
    cy_free(b->rec);
    cy_free(b->undo);
    cy_free(b);
}

static int cy_batch_add(calypso_batch *b, int type, const void *key, size_t klen,
                        const void *val, size_t vlen, uint64_t ttl_ms)
{
    if (!b) return CALYPSO_EINVAL;
    calypso *db = b->db;
    int rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    if (!val && vlen) return cy_err(db, CALYPSO_EINVAL, "value is NULL");
    if (vlen > db->opt.max_value_size)
        return cy_err(db, CALYPSO_EVALUETOOLARGE, "%zu bytes, max_value_size is %llu", vlen,
                      (unsigned long long)db->opt.max_value_size);
    uint64_t add = CY_BATCH_OP_OVERHEAD + klen + vlen;
    if (b->bound + add > db->opt.max_datafile_size)
        return cy_err(db, CALYPSO_EVALUETOOLARGE, "the batch would take more than %llu bytes "
                      "(max_datafile_size: a batch is one record in one datafile); commit it "
                      "and start another", (unsigned long long)db->opt.max_datafile_size);
    if (b->nops == b->opcap) {
        size_t nc = b->opcap ? b->opcap * 2 : 16;
        cy_batch_op *p = cy_realloc(b->ops, nc * sizeof *p);
        if (!p) return cy_err(db, CALYPSO_ENOMEM, "growing a batch");
        b->ops = p;
        b->opcap = nc;
    }
    if (b->alen + klen + vlen > b->acap) {
        size_t nc = b->acap ? b->acap : 4096;
        while (nc < b->alen + klen + vlen) nc *= 2;
        uint8_t *p = cy_realloc(b->arena, nc);
        if (!p) return cy_err(db, CALYPSO_ENOMEM, "growing a batch");
        b->arena = p;
        b->acap = nc;
    }
    if (b->indexed) {
        cy_loc at = { b->nops, 0, 0 };
        if (cy_art_insert(&b->nss[b->cur].index, key, klen, &at, NULL) < 0)
            return cy_err(db, CALYPSO_ENOMEM, "growing a batch");
    }
    cy_batch_op *op = &b->ops[b->nops++];
    *op = (cy_batch_op){ .type = (uint8_t)type, .nsi = b->cur, .ttl_ms = ttl_ms, .at = b->alen,
                         .klen = (uint32_t)klen, .vlen = vlen };
    memcpy(b->arena + b->alen, key, klen);
    if (vlen) memcpy(b->arena + b->alen + klen, val, vlen);
    b->alen += klen + vlen;
    b->bound += add;
    b->puts += type == CY_REC_PUT;
    return CALYPSO_OK;
}

int calypso_batch_put_ttl(calypso_batch *b, const void *key, size_t klen, const void *val,
                          size_t vlen, uint64_t ttl_ms)
{
    return cy_batch_add(b, CY_REC_PUT, key, klen, val, vlen, ttl_ms);
}

int calypso_batch_put(calypso_batch *b, const void *key, size_t klen, const void *val,
                      size_t vlen)
{
    return calypso_batch_put_ttl(b, key, klen, val, vlen, 0);
}

int calypso_batch_delete(calypso_batch *b, const void *key, size_t klen)
{
    return cy_batch_add(b, CY_REC_DEL, key, klen, NULL, 0, 0);
}

CY_INTERNAL int cy_batch_delete_expired(calypso_batch *b, const void *key, size_t klen)
{
    int rc = cy_batch_add(b, CY_REC_DEL, key, klen, NULL, 0, 0);
    if (!rc) b->ops[b->nops - 1].if_expired = 1;
    return rc;
}

CY_INTERNAL int cy_batch_keep_index(calypso_batch *b)
{
    if (b->indexed) return CALYPSO_OK;
    b->indexed = 1;
    for (size_t i = 0; i < b->nops; i++) {
        cy_loc at = { i, 0, 0 };
        if (cy_art_insert(&b->nss[b->ops[i].nsi].index, b->arena + b->ops[i].at,
                          b->ops[i].klen, &at, NULL) < 0)
            return CALYPSO_ENOMEM;
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_batch_find(const calypso_batch *b, const void *key, size_t klen,
                              const uint8_t **val, size_t *vlen, uint64_t *ttl_ms)
{
    const cy_loc *l = b->indexed ? cy_art_search(&b->nss[b->cur].index, key, klen) : NULL;
    if (!l) return 0;
    const cy_batch_op *op = &b->ops[l->off];
    if (op->type == CY_REC_DEL) return -1;
    *val = b->arena + op->at + op->klen;
    *vlen = (size_t)op->vlen;
    *ttl_ms = op->ttl_ms;
    return 1;
}

CY_INTERNAL const cy_art *cy_batch_index(const calypso_batch *b, const cy_ns *ns)
{
    for (uint32_t i = 0; b->indexed && i < b->nns; i++)
        if (b->nss[i].ns == ns) return &b->nss[i].index;
    return NULL;
}

CY_INTERNAL int cy_batch_op_value(const calypso_batch *b, uint64_t i, size_t *at, size_t *vlen)
{
    const cy_batch_op *op = &b->ops[i];
    if (op->type == CY_REC_DEL) return -1;
    *at = op->at + op->klen;
    *vlen = (size_t)op->vlen;
    return 1;
}

CY_INTERNAL const uint8_t *cy_batch_arena(const calypso_batch *b)
{
    return b->arena;
}

CY_INTERNAL int cy_batch_ops(const calypso_batch *b)
{
    return b->nops != 0;
}

// >> commit -----------------------------------------------------------------------

/* Decides, with the keydir held still by write_mu, what each delete kills
 * (or that it writes nothing), given what earlier operations of the batch
 * did to the same key; keys of the batch are tracked in a small tree. */
static int cy_batch_resolve(calypso_batch *b, uint32_t fid)
{
    calypso *db = b->db;
    for (uint32_t i = 0; i < b->nns; i++) {
        int rc = cy_ns_check_live(db, b->nss[i].ns);   /* write_mu: no drop meanwhile */
        if (rc) return rc;
    }
    /* key -> size 1: put in this batch; size 0: deleted; one tree per
     * namespace, reusing the index trees' slots is not possible (they
     * may be kept), so allocated here. */
    cy_art *seen = cy_malloc(b->nns * sizeof *seen);
    if (!seen) return cy_err(db, CALYPSO_ENOMEM, "committing a batch");
    for (uint32_t i = 0; i < b->nns; i++) cy_art_init(&seen[i]);
    int rc = CALYPSO_OK;
    uint64_t now = cy_now_ms();
    cy_rdlock(&db->kd_lock);
    for (size_t i = 0; i < b->nops && !rc; i++) {
        cy_batch_op *op = &b->ops[i];
        const uint8_t *k = b->arena + op->at;
        cy_art *sn = &seen[op->nsi];
        if (op->type == CY_REC_PUT) {
            op->expiry = op->ttl_ms ? (op->ttl_ms > UINT64_MAX - now ? UINT64_MAX
                                                                    : now + op->ttl_ms) : 0;
            cy_loc mark = { 0, 0, 1 };
            if (cy_art_insert(sn, k, op->klen, &mark, NULL) < 0) rc = CALYPSO_ENOMEM;
            continue;
        }
        const cy_loc *in = cy_art_search(sn, k, op->klen);
        if (in) {
            op->skip = in->size == 0;
            op->victim = fid;
        } else {
            uint64_t expiry = 0;
            cy_ns *ns = b->nss[op->nsi].ns;
            const cy_loc *l = op->if_expired ? cy_keydir_get(db, ns, k, op->klen, &expiry)
                                             : cy_art_search(&ns->keydir, k, op->klen);
            op->skip = l == NULL || (op->if_expired && (!expiry || expiry > now));
            op->victim = l ? l->fid & CY_LOC_FIDMASK : 0;
        }
        cy_loc gone = { 0, 0, 0 };
        if (!op->skip && cy_art_insert(sn, k, op->klen, &gone, NULL) < 0) rc = CALYPSO_ENOMEM;
    }
    cy_unlock(&db->kd_lock);
    for (uint32_t i = 0; i < b->nns; i++) cy_art_destroy(&seen[i]);
    cy_free(seen);
    return rc ? cy_err(db, rc, "committing a batch") : CALYPSO_OK;
}

/* Encodes one put (with its expiry) at p; returns its size. */
static size_t cy_batch_encode_put(uint8_t *p, uint32_t ns, const uint8_t *key, uint32_t klen,
                                  const uint8_t *val, uint64_t vlen, uint64_t expiry)
{
    uint32_t h = cy_rec_header_ns(p, expiry ? CY_REC_PUT_TTL : CY_REC_PUT, ns, expiry, klen,
                                  vlen);
    memcpy(p + h, key, klen);
    if (vlen) memcpy(p + h + klen, val, (size_t)vlen);
    size_t size = h + klen + (size_t)vlen;
    cy_put_u32(p, cy_crc(p + 4, size - 4, NULL, 0));
    return size;
}

/* cy_build_fn: the batch record for file fid. */
static int cy_batch_build(calypso *db, uint32_t fid, const uint8_t **rec, size_t *size,
                          void *ctx)
{
    calypso_batch *b = ctx;
    int rc = cy_batch_resolve(b, fid);
    if (rc) return rc;
    if (!b->rec && !(b->rec = cy_malloc((size_t)b->bound)))
        return cy_err(db, CALYPSO_ENOMEM, "a batch of %llu bytes", (unsigned long long)b->bound);
    /* The records first, after room for the batch header; then the header
     * (whose length depends on theirs) is put right before them. */
    uint8_t *body = b->rec + CY_REC_MAX_HDR;
    size_t blen = 0;
    for (size_t i = 0; i < b->nops; i++) {
        const cy_batch_op *op = &b->ops[i];
        const uint8_t *k = b->arena + op->at;
        uint32_t ns = b->nss[op->nsi].ns->id;
        if (op->type == CY_REC_PUT)
            blen += cy_batch_encode_put(body + blen, ns, k, op->klen, k + op->klen, op->vlen,
                                        op->expiry);
        else if (!op->skip)
            blen += cy_rec_encode_tombstone(body + blen, ns, k, op->klen, op->victim);
    }
    if (blen == 0) {        /* only deletes of absent keys: nothing to write */
        *size = 0;
        return CALYPSO_OK;
    }
    uint8_t hdr[CY_REC_MAX_HDR];
    uint32_t h = cy_rec_header(hdr, CY_REC_BATCH, 0, 0, blen);
    uint8_t *start = body - h;
    memcpy(start, hdr, h);
    cy_put_u32(start, cy_crc(start + 4, h - 4 + blen, NULL, 0));
    *rec = start;
    *size = h + blen;
    return CALYPSO_OK;
}

typedef struct cy_batch_apply {
    calypso_batch *b;
    uint32_t       fid;
    uint64_t       off;
    size_t         n;     /* records applied */
} cy_batch_apply;

static void cy_batch_dead(calypso *db, uint32_t fid, uint64_t bytes, int undo)
{
    cy_files_dead_add(db, fid, undo ? (uint64_t)0 - bytes : bytes);
}

/* Applies one record of the batch, noting how to undo it. */
static int cy_batch_apply_one(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    cy_batch_apply *q = ctx;
    calypso *db = q->b->db;
    const uint8_t *key = rec + r->hdr;
    size_t klen = (size_t)r->klen;
    uint32_t size = (uint32_t)(r->hdr + r->klen + r->vlen);
    cy_batch_undo *u = &q->b->undo[q->n];
    cy_ns *ns = cy_ns_find(db, r->ns);   /* live: checked under this write_mu hold */
    const cy_loc *l = cy_art_search(&ns->keydir, key, klen);
    *u = (cy_batch_undo){ .had = l != NULL };
    if (l) {
        u->old = *l;
        u->old_expiry = (l->fid & CY_LOC_TTL) ? cy_ttl_get(ns, key, klen) : 0;
        u->dead_fid[0] = l->fid & CY_LOC_FIDMASK;
        u->dead[0] = l->size;
    }
    if (r->type == CY_REC_DEL) {
        u->dead_fid[1] = q->fid;
        u->dead[1] = size;
    }
    int rc = cy_keydir_apply(db, ns, r->type, key, klen, r->expiry, q->fid, q->off + rel, size);
    if (!rc) q->n++;
    return rc;
}

/* Puts the keydir back as it was before the first n records, newest
 * first. 0 when it could, else an error (memory). */
static int cy_batch_undo_applied(calypso_batch *b, const uint8_t *rec, size_t n)
{
    calypso *db = b->db;
    cy_rec r;
    cy_rec_parse(rec, b->size, &r);
    /* Locate the records again (they are small to walk) into a list of
     * key pointers, then undo from the last. */
    const uint8_t **keys = cy_malloc((n ? n : 1) * sizeof *keys);
    size_t *klens = cy_malloc((n ? n : 1) * sizeof *klens);
    cy_ns **nss = cy_malloc((n ? n : 1) * sizeof *nss);
    int rc = keys && klens && nss ? CALYPSO_OK : CALYPSO_ENOMEM;
    uint64_t at = r.hdr;
    for (size_t i = 0; i < n && !rc; i++) {
        cy_rec s;
        cy_rec_parse(rec + at, b->size - at, &s);
        keys[i] = rec + at + s.hdr;
        klens[i] = (size_t)s.klen;
        nss[i] = cy_ns_find(db, s.ns);
        at += s.hdr + s.klen + s.vlen;
    }
    for (size_t i = n; i-- > 0 && !rc;) {
        const cy_batch_undo *u = &b->undo[i];
        cy_ns *ns = nss[i];
        for (int d = 0; d < 2; d++)
            if (u->dead[d]) cy_batch_dead(db, u->dead_fid[d], u->dead[d], 1);
        const cy_loc *cur = cy_art_search(&ns->keydir, keys[i], klens[i]);
        if (cur) ns->live_bytes -= cur->size;
        if (u->had) ns->live_bytes += u->old.size;
        if (u->had) {
            if (cy_art_insert(&ns->keydir, keys[i], klens[i], &u->old, NULL) < 0)
                rc = CALYPSO_ENOMEM;
            else if (u->old_expiry && cy_ttl_set(ns, keys[i], klens[i], u->old_expiry) < 0)
                rc = CALYPSO_ENOMEM;
            else if (!u->old_expiry)
                cy_ttl_clear(ns, keys[i], klens[i]);
        } else {
            cy_art_delete(&ns->keydir, keys[i], klens[i], NULL);
            cy_ttl_clear(ns, keys[i], klens[i]);
        }
    }
    cy_free(keys);
    cy_free(klens);
    cy_free(nss);
    return rc;
}

/* cy_apply_fn: every record of the batch, or (undone) none. */
static int cy_batch_apply_all(calypso *db, uint32_t fid, uint64_t off, const uint8_t *rec,
                              size_t size, void *ctx)
{
    calypso_batch *b = ctx;
    cy_rec r;
    if (cy_rec_parse(rec, size, &r) != 1) return CALYPSO_ECORRUPT;   /* we built it */
    b->size = size;
    cy_batch_apply q = { b, fid, off, 0 };
    int rc = cy_rec_entries(rec, &r, cy_batch_apply_one, &q);
    if (!rc) {
        cy_files_dead_add(db, fid, r.hdr);   /* the batch header is never read */
        return CALYPSO_OK;
    }
    if (cy_batch_undo_applied(b, rec, q.n)) {
        /* The keydir holds part of a batch that is being cut from the
         * file: stop writes; a reopen rebuilds the truth from disk. */
        __atomic_store_n(&db->health.broken, 1, __ATOMIC_RELEASE);
    }
    return rc;
}

/* Commits b; with `locked`, the caller (an update transaction) holds
 * write_mu already. */
CY_INTERNAL int cy_batch_commit_locked(calypso_batch *b, int locked)
{
    calypso *db = b->db;
    int rc = locked ? CALYPSO_OK : cy_db_writable(db);
    int committing = !rc && b->nops;
    if (committing && !(b->undo = cy_malloc(b->nops * sizeof *b->undo))) {
        rc = cy_err(db, CALYPSO_ENOMEM, "committing a batch of %zu operations", b->nops);
        committing = 0;
    }
    if (committing)
        rc = cy_db_commit(db, (size_t)b->bound, cy_batch_build, cy_batch_apply_all, b,
                          (locked ? CY_COMMIT_LOCKED : 0) |
                          (b->puts ? 0 : CY_COMMIT_DELETES_ONLY));
    else if (locked)
        pthread_mutex_unlock(&db->write_mu);   /* cy_db_commit would have */
    calypso_batch_abort(b);
    return rc;
}

int calypso_batch_commit(calypso_batch *b)
{
    if (!b) return CALYPSO_EINVAL;
    return cy_batch_commit_locked(b, 0);
}
