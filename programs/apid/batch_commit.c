/*
 * batch_commit.c: applies a validated batch to the database: the one place
 * a batch is committed.
 *
 * calypso.h has no atomic batch yet, so the operations are applied one by
 * one in list order. Validation (batch.c) guarantees that bad input writes
 * nothing, and readers may see a batch half applied while it runs; a crash
 * or an I/O error in the middle leaves the operations before it applied
 * (*done says how many). Atomicity across crashes waits for calypso's batch
 * API: this function then becomes begin, the same loop, one commit.
 */
#include "apid.h"

int apid_batch_apply(apid *s, const apid_batch_op *ops, size_t n, size_t *done)
{
    for (*done = 0; *done < n; (*done)++) {
        const apid_batch_op *op = &ops[*done];
        int rc = op->del ? calypso_delete(s->db, op->key, op->klen)
                         : calypso_put_ttl(s->db, op->key, op->klen, op->val, op->vlen, op->ttl_ms);
        if (rc != CALYPSO_OK) return rc;
    }
    return CALYPSO_OK;
}
