/*
 * txn.c: transactions: updates (calypso_update, calypso_update_begin) and
 * read-only snapshot views (calypso_view, calypso_view_begin; view.c keeps
 * their snapshot), and the calypso_txn_* calls that work inside both.
 *
 * An update transaction holds the handle's writer lock (write_mu) from its
 * beginning to its commit or rollback, so writers are serialized with it:
 * another thread's put, delete, batch or update waits and comes before or
 * after it, never in between. Readers are not held up: gets and cursors of
 * other threads take only kd_lock, which the transaction takes only for
 * the moment its commit applies (batch.c).
 *
 * Its writes collect in a batch with an index of its keys; reads inside
 * the transaction look there first (read your own writes), then in the
 * database. Commit is that batch's commit (atomic on disk and for readers);
 * rollback drops it: nothing was written.
 *
 * The writer lock belongs to the thread that began the transaction: the
 * transaction is that thread's until it ends. A write through the handle
 * itself from inside (which would wait for the lock the thread holds) is
 * refused with CALYPSO_EINVAL instead: a thread-local marker names the
 * handle in an update on this thread (cy_txn_in_update).
 */
#include "engine.h"

#include <string.h>

struct calypso_txn {
    calypso       *db;
    cy_ns         *ns;        /* the namespace it reads and writes now      */
    calypso_batch *b;         /* an update's writes; NULL in a view         */
    int            view;
    uint64_t       seq;       /* a view: the keydir change it sees up to    */
    uint64_t       start_ms;  /* a view: expiry is judged as of this         */
};

CY_INTERNAL int cy_txn_info(const calypso_txn *tx, calypso **db, uint64_t *seq,
                            uint64_t *start_ms, calypso_batch **b)
{
    *db = tx->db;
    *seq = tx->seq;
    *start_ms = tx->start_ms;
    *b = tx->b;
    return tx->view;
}

CY_INTERNAL cy_ns *cy_txn_ns(const calypso_txn *tx)
{
    return tx->ns;
}

int calypso_txn_ns(calypso_txn *tx, calypso *h)
{
    if (!tx || !h) return CALYPSO_EINVAL;
    if (cy_base(h) != tx->db)
        return cy_err(tx->db, CALYPSO_EINVAL, "calypso_txn_ns: a handle of another database");
    if (!tx->view) {
        int rc = calypso_batch_ns(tx->b, h);
        if (rc) return rc;
    }
    cy_ns_pin(tx->db, cy_ns_of(h));
    cy_ns_unpin(tx->db, tx->ns);
    tx->ns = cy_ns_of(h);
    return CALYPSO_OK;
}

int calypso_update_begin(calypso *h, calypso_txn **out)
{
    calypso *db = cy_base(h);
    if (out) *out = NULL;
    if (!out) return db ? cy_err(db, CALYPSO_EINVAL, "no transaction pointer") : CALYPSO_EINVAL;
    int rc = cy_db_writable(db);   /* refuses a nested update too */
    if (rc) return rc;
    calypso_txn *tx = cy_calloc(1, sizeof *tx);
    if (!tx) return cy_err(db, CALYPSO_ENOMEM, "allocating a transaction");
    tx->db = db;
    tx->ns = cy_ns_of(h);
    cy_ns_pin(db, tx->ns);
    if ((rc = calypso_batch_open(h, &tx->b)) == CALYPSO_OK && cy_batch_keep_index(tx->b))
        rc = cy_err(db, CALYPSO_ENOMEM, "allocating a transaction");
    if (rc) {
        calypso_batch_abort(tx->b);
        cy_ns_unpin(db, tx->ns);
        cy_free(tx);
        return rc;
    }
    pthread_mutex_lock(&db->write_mu);
    cy_txn_set_update(db);
    *out = tx;
    return CALYPSO_OK;
}

int calypso_view_begin(calypso *h, calypso_txn **out)
{
    calypso *db = cy_base(h);
    if (out) *out = NULL;
    if (!out) return db ? cy_err(db, CALYPSO_EINVAL, "no transaction pointer") : CALYPSO_EINVAL;
    int rc = cy_db_usable(db);
    if (rc) return rc;
    calypso_txn *tx = cy_calloc(1, sizeof *tx);
    if (!tx) return cy_err(db, CALYPSO_ENOMEM, "allocating a view");
    tx->db = db;
    tx->ns = cy_ns_of(h);
    cy_ns_pin(db, tx->ns);
    tx->view = 1;
    tx->start_ms = cy_now_ms();
    cy_view_open(db, &tx->seq);
    *out = tx;
    return CALYPSO_OK;
}

static void cy_txn_end_view(calypso_txn *tx)
{
    cy_view_close(tx->db);
    cy_ns_unpin(tx->db, tx->ns);
    cy_free(tx);
}

int calypso_view(calypso *db, calypso_txn_fn fn, void *ctx)
{
    if (!fn) return db ? cy_err(db, CALYPSO_EINVAL, "no view function") : CALYPSO_EINVAL;
    calypso_txn *tx;
    int rc = calypso_view_begin(db, &tx);
    if (rc) return rc;
    rc = fn(tx, ctx);
    cy_txn_end_view(tx);
    return rc;
}

int calypso_txn_commit(calypso_txn *tx)
{
    if (!tx) return CALYPSO_EINVAL;
    if (tx->view) {
        cy_txn_end_view(tx);
        return CALYPSO_OK;
    }
    calypso *db = tx->db;
    /* In a forked child the update begun in the parent writes nothing and
     * touches no lock: the files and write_mu are the parent's. */
    int urc = cy_db_usable(db);
    if (urc) return urc;
    cy_txn_set_update(NULL);
    /* Refused writes (a failed fdatasync meanwhile) are checked by the
     * commit itself, which also releases write_mu. */
    int rc = cy_batch_commit_locked(tx->b, 1);
    cy_ns_unpin(db, tx->ns);
    cy_free(tx);
    (void)db;
    return rc;
}

void calypso_txn_rollback(calypso_txn *tx)
{
    if (!tx) return;
    if (tx->view) {
        cy_txn_end_view(tx);
        return;
    }
    cy_txn_set_update(NULL);
    pthread_mutex_unlock(&tx->db->write_mu);
    calypso_batch_abort(tx->b);
    cy_ns_unpin(tx->db, tx->ns);
    cy_free(tx);
}

int calypso_update(calypso *db, calypso_txn_fn fn, void *ctx)
{
    if (!fn) return db ? cy_err(db, CALYPSO_EINVAL, "no transaction function") : CALYPSO_EINVAL;
    calypso_txn *tx;
    int rc = calypso_update_begin(db, &tx);
    if (rc) return rc;
    rc = fn(tx, ctx);
    if (rc) {
        calypso_txn_rollback(tx);
        return rc;
    }
    return calypso_txn_commit(tx);
}

// >> inside a transaction ------------------------------------------------------------

int calypso_txn_put_ttl(calypso_txn *tx, const void *key, size_t klen, const void *val,
                        size_t vlen, uint64_t ttl_ms)
{
    if (!tx) return CALYPSO_EINVAL;
    if (tx->view) return cy_err(tx->db, CALYPSO_EREADONLY, "a view is read-only");
    return calypso_batch_put_ttl(tx->b, key, klen, val, vlen, ttl_ms);
}

int calypso_txn_put(calypso_txn *tx, const void *key, size_t klen, const void *val, size_t vlen)
{
    return calypso_txn_put_ttl(tx, key, klen, val, vlen, 0);
}

int calypso_txn_delete(calypso_txn *tx, const void *key, size_t klen)
{
    if (!tx) return CALYPSO_EINVAL;
    if (tx->view) return cy_err(tx->db, CALYPSO_EREADONLY, "a view is read-only");
    return calypso_batch_delete(tx->b, key, klen);
}

/* The transaction's own write of key, if any: 1 put, -1 delete, 0 none. */
static int cy_txn_own(calypso_txn *tx, const void *key, size_t klen, const uint8_t **val,
                      size_t *vlen)
{
    uint64_t ttl;
    if (tx->view || !key || !klen) return 0;   /* the database's read reports errors */
    return cy_batch_find(tx->b, key, klen, val, vlen, &ttl);
}

/* A read in a view: the key's state as of the view, its record read from
 * the file that holds it (a file a merge removed since stays mapped for
 * the view). out/buf/cap/vlen as cy_db_read_at; out == NULL and cap == 0
 * with vlen == NULL: only whether it is there. */
static int cy_txn_view_read(calypso_txn *tx, const void *key, size_t klen, void **out,
                            void *buf, size_t cap, size_t *vlen)
{
    calypso *db = tx->db;
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    cy_loc loc = { 0, 0, 0 };
    uint64_t expiry = 0;
    uint32_t ep = cy_epoch_enter(&db->epoch);
    cy_rdlock(&db->kd_lock);
    int lost = db->views.lost && db->views.lost > tx->seq;
    int have = lost ? 0 : cy_view_state(db, tx->ns, tx->seq, key, klen, &loc, &expiry);
    cy_unlock(&db->kd_lock);
    if (lost)
        rc = cy_err(db, CALYPSO_ENOMEM, CY_VIEW_LOST_MSG);
    else if (!have) rc = CALYPSO_ENOTFOUND;
    else if (expiry && expiry <= tx->start_ms) rc = CALYPSO_EEXPIRED;
    else if (vlen) {
        cy_file *f = cy_view_file(db, loc.fid & CY_LOC_FIDMASK);
        /* None: a merge could not keep the file for the views (view_lost). */
        rc = f ? cy_db_read_file(db, f, key, klen, &loc, expiry, out, buf, cap, vlen)
               : cy_err(db, CALYPSO_ENOMEM, CY_VIEW_LOST_MSG);
    }
    cy_epoch_leave(&db->epoch, ep);
    return rc;
}

int calypso_txn_get(calypso_txn *tx, const void *key, size_t klen, void **val, size_t *vlen)
{
    if (val) *val = NULL;
    if (vlen) *vlen = 0;
    if (!tx || !val || !vlen) return tx ? cy_err(tx->db, CALYPSO_EINVAL, "calypso_txn_get needs val and vlen") : CALYPSO_EINVAL;
    const uint8_t *v;
    size_t n;
    if (tx->view) return cy_txn_view_read(tx, key, klen, val, NULL, 0, vlen);
    int own = cy_txn_own(tx, key, klen, &v, &n);
    if (own < 0) return CALYPSO_ENOTFOUND;
    if (own == 0) return cy_db_read(tx->db, tx->ns, key, klen, val, NULL, 0, vlen);
    if (!(*val = cy_malloc(n ? n : 1))) return cy_err(tx->db, CALYPSO_ENOMEM, "value of %zu bytes", n);
    if (n) memcpy(*val, v, n);
    *vlen = n;
    return CALYPSO_OK;
}

int calypso_txn_get_buf(calypso_txn *tx, const void *key, size_t klen, void *buf, size_t cap,
                        size_t *vlen)
{
    if (!tx || !vlen || (!buf && cap))
        return tx ? cy_err(tx->db, CALYPSO_EINVAL, "calypso_txn_get_buf needs vlen") : CALYPSO_EINVAL;
    *vlen = 0;
    const uint8_t *v;
    size_t n;
    if (tx->view) return cy_txn_view_read(tx, key, klen, NULL, buf, cap, vlen);
    int own = cy_txn_own(tx, key, klen, &v, &n);
    if (own < 0) return CALYPSO_ENOTFOUND;
    if (own == 0) return cy_db_read(tx->db, tx->ns, key, klen, NULL, buf, cap, vlen);
    *vlen = n;
    if (n > cap) return CALYPSO_ETRUNC;
    if (n) memcpy(buf, v, n);
    return CALYPSO_OK;
}

int calypso_txn_ttl(calypso_txn *tx, const void *key, size_t klen, uint64_t *expires_at_ms)
{
    if (!tx || !expires_at_ms)
        return tx ? cy_err(tx->db, CALYPSO_EINVAL, "calypso_txn_ttl needs an output") : CALYPSO_EINVAL;
    *expires_at_ms = 0;
    calypso *db = tx->db;
    if (tx->view) {
        int rc = cy_db_usable(db);
        if (!rc) rc = cy_db_check_key(db, key, klen);
        if (rc) return rc;
        cy_loc loc = { 0, 0, 0 };
        uint64_t expiry = 0;
        cy_rdlock(&db->kd_lock);
        int lost = db->views.lost && db->views.lost > tx->seq;
        int have = lost ? 0 : cy_view_state(db, tx->ns, tx->seq, key, klen, &loc, &expiry);
        cy_unlock(&db->kd_lock);
        if (lost) return cy_err(db, CALYPSO_ENOMEM, CY_VIEW_LOST_MSG);
        if (!have) return CALYPSO_ENOTFOUND;
        if (expiry && expiry <= tx->start_ms) return CALYPSO_EEXPIRED;
        *expires_at_ms = expiry;
        return CALYPSO_OK;
    }
    const uint8_t *v;
    size_t n;
    uint64_t ttl = 0;
    int own = key && klen ? cy_batch_find(tx->b, key, klen, &v, &n, &ttl) : 0;
    if (own < 0) return CALYPSO_ENOTFOUND;
    if (own > 0) {
        /* A TTL counts from the commit: as of now, it expires ttl from now. */
        if (ttl) {
            uint64_t now = cy_now_ms();
            *expires_at_ms = ttl > UINT64_MAX - now ? UINT64_MAX : now + ttl;
        }
        return CALYPSO_OK;
    }
    return cy_db_ttl(db, tx->ns, key, klen, expires_at_ms);
}

int calypso_txn_has(calypso_txn *tx, const void *key, size_t klen)
{
    if (!tx) return CALYPSO_EINVAL;
    if (tx->view) {
        int rc = cy_txn_view_read(tx, key, klen, NULL, NULL, 0, NULL);
        return rc == CALYPSO_OK ? 1 : rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED ? 0 : rc;
    }
    const uint8_t *v;
    size_t n;
    int own = cy_txn_own(tx, key, klen, &v, &n);
    if (own) return own > 0;
    return cy_db_has(tx->db, tx->ns, key, klen);
}
