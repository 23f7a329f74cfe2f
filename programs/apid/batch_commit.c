/*
 * batch_commit.c: commits a validated batch to the database as one calypso
 * batch: the one place a batch is committed.
 *
 * Validation (batch.c) has checked every operation (and opened the
 * namespaces they name), so bad input writes nothing; each operation goes
 * to its namespace through calypso_batch_ns; the operations then go into one calypso_batch, which commits
 * all of them or none, on disk (a crash leaves the whole batch or no trace
 * of it) and for readers (no request sees part of it). *done is n after a
 * commit, and 0 otherwise: nothing is applied when it fails.
 */
#include "apid.h"

int apid_batch_apply(calypso *db, const apid_batch_op *ops, size_t n, size_t *done)
{
    *done = 0;
    calypso_batch *b = NULL;
    int rc = calypso_batch_open(db, &b);
    calypso *cur = db;
    for (size_t i = 0; i < n && rc == CALYPSO_OK; i++) {
        const apid_batch_op *op = &ops[i];
        calypso *want = op->db ? op->db : db;
        if (want != cur && (rc = calypso_batch_ns(b, want)) != CALYPSO_OK) break;
        cur = want;
        rc = op->del ? calypso_batch_delete(b, op->key, op->klen)
                     : calypso_batch_put_ttl(b, op->key, op->klen, op->val, op->vlen, op->ttl_ms);
    }
    if (rc != CALYPSO_OK) {
        calypso_batch_abort(b);
        return rc;
    }
    rc = calypso_batch_commit(b);
    if (rc == CALYPSO_OK) *done = n;
    return rc;
}
