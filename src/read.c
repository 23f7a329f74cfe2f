/*
 * read.c: the read path (get, get_buf, has, ttl, and reading a value at a
 * location for cursors, transactions and get_many) and the figures about
 * a handle (len, stats, reclaimable).
 *
 * A read, inside an epoch (epoch.c), looks the key up once under kd_lock
 * shared, then the record is verified (record.c) and its value copied
 * straight out of the file's mapping (files.c). No other lock is taken; a
 * merge cannot release the file before the reader leaves its epoch.
 *
 * The figures take no lock that grows with the data: the file count and
 * bytes on disk are totals that files.c keeps as files come and go and
 * grow; dead bytes and the keydir's counts are read under kd_lock shared
 * (the count of expired keys is kept as time passes, ttl.c).
 */
#include "engine.h"

#include <string.h>

// >> reading ---------------------------------------------------------------------

typedef struct cy_read {
    calypso    *db;
    const void *key;
    size_t      klen;
    uint64_t    expiry;
    uint32_t    fid, size;
    uint64_t    off;
    void      **out;      /* allocate the value here, or ...           */
    void       *buf;      /* ... copy it into buf (cap bytes)          */
    size_t      cap;
    size_t     *vlen;
} cy_read;

/* Verifies a record against what the keydir promised and copies its value
 * out. Runs on the mapped bytes, inside the reader's epoch. */
static int cy_db_read_record(const uint8_t *rec, void *ctx)
{
    cy_read *q = ctx;
    cy_rec r;
    if (!cy_rec_matches(rec, q->size, q->key, q->klen, q->expiry, &r)) {
        char path[4096];
        cy_dir_data_path(q->db, q->fid, path, sizeof path);
        return cy_err(q->db, CALYPSO_ECHECKSUM, "%s at offset %llu", path,
                      (unsigned long long)q->off);
    }
    size_t n = (size_t)r.vlen;
    const uint8_t *val = rec + r.hdr + r.klen;
    /* On ENOMEM *vlen stays 0, as calypso_get promises; ETRUNC tells the
     * size needed. */
    if (q->out) {
        if (!(*q->out = cy_malloc(n ? n : 1)))
            return cy_err(q->db, CALYPSO_ENOMEM, "value of %zu bytes", n);
        memcpy(*q->out, val, n);
        *q->vlen = n;
        return CALYPSO_OK;
    }
    *q->vlen = n;
    if (n > q->cap) {
        return CALYPSO_ETRUNC;
    } else if (n) {
        memcpy(q->buf, val, n);
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_db_read_file(calypso *db, cy_file *f, const void *key, size_t klen,
                                const cy_loc *loc, uint64_t expiry, void **out, void *buf,
                                size_t cap, size_t *vlen)
{
    cy_read q = { db, key, klen, expiry,
                  loc->fid & CY_LOC_FIDMASK, loc->size, loc->off, out, buf, cap, vlen };
    return cy_files_with_record(db, f, loc->off, loc->size, cy_db_read_record, &q);
}

CY_INTERNAL int cy_db_read_at(calypso *db, const void *key, size_t klen, const cy_loc *loc,
                              uint64_t expiry, void **out, void *buf, size_t cap, size_t *vlen)
{
    cy_file *f = cy_files_find(db, loc->fid & CY_LOC_FIDMASK);
    if (!f) return CALYPSO_ENOTFOUND;
    return cy_db_read_file(db, f, key, klen, loc, expiry, out, buf, cap, vlen);
}

/* Reads and verifies the value of key into buf (cap bytes), or into a new
 * buffer (*out) when out is not NULL. The epoch spans the lookup and the
 * copy, so the file the keydir names is in the table and stays mapped:
 * its absence would be a broken invariant, not a race to retry. */
CY_INTERNAL int cy_db_read(calypso *db, cy_ns *ns, const void *key, size_t klen, void **out,
                           void *buf, size_t cap, size_t *vlen)
{
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    uint64_t expiry;
    cy_loc loc;
    uint32_t ep = cy_epoch_enter(&db->epoch);
    cy_rdlock(&db->kd_lock);
    /* The key a walk has just handed to this thread's callback: where the
     * walk found it, unless the keydir changed since (CalypsoDB's
     * scan-then-get pays for one tree descent, not two). */
    int hinted = cy_walk_hint(db, ns, key, klen, &loc, &expiry);
    const cy_loc *l = hinted ? &loc : cy_keydir_get(db, ns, key, klen, &expiry);
    if (l) loc = *l;
    cy_unlock(&db->kd_lock);
    if (!l) rc = CALYPSO_ENOTFOUND;
    else if (expiry && expiry <= cy_now_ms()) rc = CALYPSO_EEXPIRED;
    else {
        rc = cy_db_read_at(db, key, klen, &loc, expiry, out, buf, cap, vlen);
        if (rc == CALYPSO_ENOTFOUND && hinted) {
            /* A merge moved the record since the walk saw it (moves are not
             * keydir changes: the value is the same): look it up. */
            cy_rdlock(&db->kd_lock);
            l = cy_keydir_get(db, ns, key, klen, &expiry);
            if (l) loc = *l;
            cy_unlock(&db->kd_lock);
            rc = !l ? CALYPSO_ENOTFOUND
               : expiry && expiry <= cy_now_ms() ? CALYPSO_EEXPIRED
               : cy_db_read_at(db, key, klen, &loc, expiry, out, buf, cap, vlen);
            CY_ASSERT(!l || rc != CALYPSO_ENOTFOUND);
        }
        CY_ASSERT(rc != CALYPSO_ENOTFOUND || hinted);   /* the keydir named a file not in the table */
    }
    cy_epoch_leave(&db->epoch, ep);
    return rc;
}

int calypso_get(calypso *h, const void *key, size_t klen, void **val, size_t *vlen)
{
    calypso *db = cy_base(h);
    if (val) *val = NULL;
    if (vlen) *vlen = 0;
    if (!val || !vlen) return cy_err(db, CALYPSO_EINVAL, "calypso_get needs val and vlen");
    return cy_db_read(db, cy_ns_of(h), key, klen, val, NULL, 0, vlen);
}

int calypso_get_buf(calypso *h, const void *key, size_t klen, void *buf, size_t cap,
                    size_t *vlen)
{
    calypso *db = cy_base(h);
    if (!vlen || (!buf && cap)) return cy_err(db, CALYPSO_EINVAL, "calypso_get_buf needs vlen");
    *vlen = 0;
    return cy_db_read(db, cy_ns_of(h), key, klen, NULL, buf, cap, vlen);
}

void calypso_free(void *p)
{
    cy_free(p);
}

int calypso_has(calypso *h, const void *key, size_t klen)
{
    return cy_db_has(cy_base(h), cy_ns_of(h), key, klen);
}

CY_INTERNAL int cy_db_has(calypso *db, cy_ns *ns, const void *key, size_t klen)
{
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    uint64_t expiry;
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_keydir_get(db, ns, key, klen, &expiry);
    cy_unlock(&db->kd_lock);
    return l && (!expiry || expiry > cy_now_ms());
}

int calypso_ttl(calypso *h, const void *key, size_t klen, uint64_t *expires_at_ms)
{
    return cy_db_ttl(cy_base(h), cy_ns_of(h), key, klen, expires_at_ms);
}

CY_INTERNAL int cy_db_ttl(calypso *db, cy_ns *ns, const void *key, size_t klen,
                          uint64_t *expires_at_ms)
{
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (!rc && !expires_at_ms) rc = cy_err(db, CALYPSO_EINVAL, "calypso_ttl needs an output");
    if (rc) return rc;
    uint64_t expiry;
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_keydir_get(db, ns, key, klen, &expiry);
    cy_unlock(&db->kd_lock);
    *expires_at_ms = 0;
    if (!l) return CALYPSO_ENOTFOUND;
    if (expiry && expiry <= cy_now_ms()) return CALYPSO_EEXPIRED;
    *expires_at_ms = expiry;
    return CALYPSO_OK;
}

uint64_t calypso_len(calypso *h)
{
    calypso *db = cy_base(h);
    if (cy_db_usable(db)) return 0;
    cy_ns *ns = cy_ns_of(h);
    cy_rdlock(&db->kd_lock);
    uint64_t n = ns->keydir.count - cy_ttl_count_expired(db, ns, cy_now_ms());
    cy_unlock(&db->kd_lock);
    return n;
}

// >> figures ---------------------------------------------------------------------

int calypso_stats(calypso *h, struct calypso_stats *st)
{
    calypso *db = cy_base(h);
    cy_ns *ns = cy_ns_of(h);
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (!st) return cy_err(db, CALYPSO_EINVAL, "calypso_stats needs a struct");
    /* Refused inside an update on this thread, as calypso.h promises. */
    if (cy_txn_in_update(db)) return cy_db_in_update(db);
    memset(st, 0, sizeof *st);
    uint64_t records;
    /* Running totals (files.c): bytes on disk include the active file's
     * space allocated ahead of its data. Read under kd_lock with the dead
     * bytes: a merge takes files off the totals and their dead bytes off
     * `dead` under it, so the two agree (reclaimable <= size); appends
     * only add to the totals, before their records are applied. */
    cy_rdlock(&db->kd_lock);
    cy_files_totals(db, &st->datafiles, &records, &st->size);
    st->keys = ns->keydir.count - cy_ttl_count_expired(db, ns, cy_now_ms());
    st->live_bytes = ns->live_bytes;
    st->reclaimable = db->files.dead;
    st->keydir_bytes = ns->keydir.bytes + ns->ttl_by_key.bytes + ns->ttl_by_time.bytes;
    st->merges = db->merge.count;
    cy_unlock(&db->kd_lock);
    return CALYPSO_OK;
}

int64_t calypso_reclaimable(calypso *h)
{
    calypso *db = cy_base(h);
    int rc = cy_db_usable(db);
    if (rc) return rc;
    cy_rdlock(&db->kd_lock);
    int64_t dead = (int64_t)db->files.dead;
    cy_unlock(&db->kd_lock);
    return dead;
}
