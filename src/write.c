/*
 * write.c: the write path: put, put_ttl, delete, and deleting many keys
 * at once (delete_all, run_gc, and the batched deletion that sift and the
 * sweeper use).
 *
 * A writer validates and encodes its record outside any lock, then under
 * write_mu appends it at the end of the active datafile (rolling over to a
 * new file when full; files.c writes it) and applies it to the keydir
 * under kd_lock. If the append or the keydir update fails, the file is cut
 * back to where it was, so a failed write leaves nothing behind; if even
 * that fails, the handle refuses further writes (`broken`) until it is
 * reopened. Under SYNC_ALWAYS the writer then waits for its group commit
 * (commit.c) with no lock held.
 *
 * Deleting many keys lists them under kd_lock shared and deletes them in
 * batches that each fit a datafile, so that no lock is held for the whole
 * of a large deletion.
 */
#include "engine.h"

#include <string.h>

/* Writes one put record and applies it to ns's keydir. */
static int cy_db_write(calypso *db, cy_ns *ns, int type, const void *key, size_t klen,
                       const void *val, size_t vlen, uint64_t expiry)
{
    uint8_t stackbuf[4096];
    uint8_t hdr[CY_REC_MAX_HDR];
    uint32_t hlen = cy_rec_header_ns(hdr, type, ns->id, expiry, klen, vlen);
    size_t hk = hlen + klen, size = hk + vlen;
    /* A small record is built whole on the stack (one checksum pass, one
     * copy into the file); a large one is written from the caller's value. */
    int whole = size <= sizeof stackbuf;
    uint8_t *head = hk <= sizeof stackbuf ? stackbuf : cy_malloc(hk);
    if (!head) return cy_err(db, CALYPSO_ENOMEM, "encoding a record");
    memcpy(head, hdr, hlen);
    memcpy(head + hlen, key, klen);
    if (whole) {
        if (vlen) memcpy(head + hk, val, vlen);
        cy_put_u32(head, cy_crc(head + 4, size - 4, NULL, 0));
    } else {
        cy_put_u32(head, cy_crc(head + 4, hk - 4, val, vlen));
    }
    struct iovec iov[2] = { { head, whole ? size : hk }, { (void *)val, vlen } };

    int durable = db->opt.sync == CALYPSO_SYNC_ALWAYS;
    if (durable) cy_db_durable_enter(db);
    cy_mutex_lock_counted(&db->write_mu, &db->write_waiting);
    int rc = __atomic_load_n(&db->health.broken, __ATOMIC_RELAXED) ? cy_db_writable(db)
                                                                   : CALYPSO_OK;
    uint32_t fid = 0;
    uint64_t off = 0, seq = 0;
    /* Low on space, puts stay off the space the reserve gave back to
     * deletes and merge (space.c). */
    if (!rc) rc = cy_ns_check_live(db, ns);
    if (!rc) rc = cy_space_put_check(db);
    if (!rc) {
        rc = cy_db_append(db, iov, whole || !vlen ? 1 : 2, size, &fid, &off);
        if (rc == CALYPSO_ENOSPC) cy_space_full(db);
    }
    if (!rc) {
        cy_wrlock(&db->kd_lock);
        rc = cy_keydir_apply(db, ns, type, key, klen, expiry, fid, off, (uint32_t)size);
        cy_unlock(&db->kd_lock);
        if (rc) rc = cy_db_unappend(db, rc, off, size);
        seq = db->sync.written_seq;
    }
    if (durable && !rc) cy_db_durable_appended(db);
    pthread_mutex_unlock(&db->write_mu);
    if (head != stackbuf) cy_free(head);
    if (durable) {
        if (!rc) rc = cy_db_sync_to(db, seq);
        cy_db_durable_leave(db);
    }
    return rc;
}

int calypso_put_ttl(calypso *h, const void *key, size_t klen, const void *val, size_t vlen,
                    uint64_t ttl_ms)
{
    calypso *db = cy_base(h);
    int rc = cy_db_writable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    if (!val && vlen) return cy_err(db, CALYPSO_EINVAL, "value is NULL");
    if (vlen > db->opt.max_value_size)
        return cy_err(db, CALYPSO_EVALUETOOLARGE, "%zu bytes, max_value_size is %llu", vlen,
                      (unsigned long long)db->opt.max_value_size);
    uint64_t expiry = 0;
    if (ttl_ms) {
        uint64_t now = cy_now_ms();
        expiry = ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
    }
    return cy_db_write(db, h->ns, expiry ? CY_REC_PUT_TTL : CY_REC_PUT, key, klen, val ? val : "",
                       vlen, expiry);
}

int calypso_put(calypso *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    return calypso_put_ttl(db, key, klen, val, vlen, 0);
}

int calypso_delete(calypso *h, const void *key, size_t klen)
{
    calypso *db = cy_base(h);
    cy_ns *ns = cy_ns_of(h);
    int rc = cy_db_writable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    uint8_t stackbuf[4096];
    size_t need = CY_REC_MAX_HDR + klen + 10;
    uint8_t *rec = need <= sizeof stackbuf ? stackbuf : cy_malloc(need);
    if (!rec) return cy_err(db, CALYPSO_ENOMEM, "encoding a tombstone");
    uint64_t seq = 0;
    int wrote = 0, durable = db->opt.sync == CALYPSO_SYNC_ALWAYS;
    if (durable) cy_db_durable_enter(db);
    cy_mutex_lock_counted(&db->write_mu, &db->write_waiting);
    if (__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) rc = cy_db_writable(db);
    if (!rc) rc = cy_ns_check_live(db, ns);
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_art_search(&ns->keydir, key, klen);
    uint32_t victim = l ? l->fid & CY_LOC_FIDMASK : 0;
    cy_unlock(&db->kd_lock);
    if (!rc && l) {
        size_t size = cy_rec_encode_tombstone(rec, ns->id, key, klen, victim);
        struct iovec iov = { rec, size };
        uint32_t fid;
        uint64_t off;
        rc = cy_db_append(db, &iov, 1, size, &fid, &off);
        if (rc == CALYPSO_ENOSPC && cy_space_full(db)) rc = cy_db_append(db, &iov, 1, size, &fid, &off);
        if (!rc) {
            cy_wrlock(&db->kd_lock);
            cy_keydir_apply(db, ns, CY_REC_DEL, key, klen, 0, fid, off, (uint32_t)size);
            cy_unlock(&db->kd_lock);
            wrote = 1;
        }
        seq = db->sync.written_seq;
    }
    if (durable && wrote) cy_db_durable_appended(db);
    pthread_mutex_unlock(&db->write_mu);
    if (rec != stackbuf) cy_free(rec);
    if (durable) {
        if (wrote) rc = cy_db_sync_to(db, seq);
        cy_db_durable_leave(db);
    }
    return rc;
}

// >> deleting many ----------------------------------------------------------------

/* Per key, what its tombstone can take in a batch: as calypso_batch counts. */
#define CY_DB_TOMBSTONE_BOUND(klen) (CY_REC_MAX_HDR + 10u + (uint64_t)(klen))

/* The i-th key of the deletion chosen ++ expired, and whether it is one
 * of the expired (deleted only if still expired at commit). */
static const uint8_t *cy_db_doomed_at(const cy_keylist *chosen, const cy_keylist *expired,
                                      size_t i, size_t *klen, int *if_expired)
{
    size_t nc = chosen ? chosen->n : 0;
    *if_expired = i >= nc;
    return i < nc ? cy_keylist_at(chosen, i, klen) : cy_keylist_at(expired, i - nc, klen);
}

/* Commits, in ns, as many of the keys from *i on as one batch takes,
 * advancing *i. */
static int cy_db_delete_one_batch(calypso *db, cy_ns *ns, const cy_keylist *chosen,
                                  const cy_keylist *expired, size_t n, size_t *i)
{
    calypso_batch *b;
    int rc = calypso_batch_open(db, &b);
    if (rc) return rc;
    if ((rc = cy_batch_set_ns(b, ns))) {
        calypso_batch_abort(b);
        return rc;
    }
    size_t first = *i;
    for (; *i < n; (*i)++) {
        size_t klen;
        int if_expired;
        const uint8_t *k = cy_db_doomed_at(chosen, expired, *i, &klen, &if_expired);
        rc = if_expired ? cy_batch_delete_expired(b, k, klen) : calypso_batch_delete(b, k, klen);
        if (rc == CALYPSO_EVALUETOOLARGE && *i > first) {   /* full: commit what it holds */
            cy_err_forget(db);
            rc = CALYPSO_OK;
            break;
        }
        if (rc) break;
    }
    if (rc) {
        calypso_batch_abort(b);
        return rc;
    }
    return calypso_batch_commit(b);
}

CY_INTERNAL int cy_db_delete_keys(calypso *db, cy_ns *ns, const cy_keylist *chosen,
                                  const cy_keylist *expired)
{
    size_t n = (chosen ? chosen->n : 0) + (expired ? expired->n : 0);
    int rc = CALYPSO_OK;
    for (size_t i = 0; i < n && !rc;)
        rc = cy_db_delete_one_batch(db, ns, chosen, expired, n, &i);
    return rc;
}

/* Keys listed per round by run_gc: each round is one batch applied under
 * one hold of the keydir lock, so readers wait for at most this many. */
#define CY_DB_GC_ROUND 65536

/* Lists keys of ns from the start, at most max of them and no more than
 * one batch takes; *more: keys are left after them. kd_lock held. */
static int cy_db_list_first(calypso *db, cy_ns *ns, size_t max, cy_keylist *out, int *more)
{
    /* One batch under the caller's hold of kd_lock, bounded by the
     * tombstones that fit a datafile (so that delete_all is atomic when
     * they all fit), not by the iterator's visit budget. */
    cy_kd_keys keys = { out, max, db->opt.max_datafile_size, CY_REC_MAX_HDR,
                        CY_DB_TOMBSTONE_BOUND(0) };
    cy_kd_iter it;
    cy_kd_iter_init(&it, db, ns, CY_SEEK_FIRST, NULL, 0);
    it.flags = CY_KD_LOCKED;
    it.visit = SIZE_MAX;
    int rc = cy_kd_iter_gather(&it, SIZE_MAX, cy_kd_take_key, &keys);
    cy_kd_iter_free(&it);
    *more = rc == 1;
    return rc < 0 ? rc : CALYPSO_OK;
}

/* Lists up to max expired keys of ns. kd_lock held. */
static int cy_db_list_expired(calypso *db, cy_ns *ns, size_t max, cy_keylist *out, int *more)
{
    (void)db;
    int rc = cy_ttl_expired(ns, cy_now_ms(), max, out);
    *more = out->n == max;
    return rc;
}

/* Deletes, round by round, the keys of ns that `list` names until it names
 * none, or no more are left after a round. A round is one batch when its
 * tombstones fit a datafile; delete_all lists every key in one round when
 * they do, and so is atomic. */
static int cy_db_delete_listed(calypso *db, cy_ns *ns, size_t max,
                               int (*list)(calypso *, cy_ns *, size_t, cy_keylist *, int *),
                               int only_expired)
{
    int rc = cy_db_writable(db);
    if (rc) return rc;
    cy_keylist keys = { 0 };
    for (;;) {
        int more = 0;
        cy_keylist_clear(&keys);
        cy_rdlock(&db->kd_lock);
        rc = list(db, ns, max, &keys, &more);
        cy_unlock(&db->kd_lock);
        if (rc) { rc = cy_err(db, rc, "listing keys to delete"); break; }
        if (keys.n == 0) break;
        rc = only_expired ? cy_db_delete_keys(db, ns, NULL, &keys)
                          : cy_db_delete_keys(db, ns, &keys, NULL);
        if (rc || !more) break;
    }
    cy_keylist_free(&keys);
    return rc;
}

int calypso_delete_all(calypso *h)
{
    return cy_db_delete_listed(cy_base(h), cy_ns_of(h), SIZE_MAX, cy_db_list_first, 0);
}

CY_INTERNAL int cy_db_run_gc(calypso *db, cy_ns *ns)
{
    return cy_db_delete_listed(db, ns, CY_DB_GC_ROUND, cy_db_list_expired, 1);
}

int calypso_run_gc(calypso *h)
{
    return cy_db_run_gc(cy_base(h), cy_ns_of(h));
}
