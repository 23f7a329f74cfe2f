/*
 * txn.h: transactions (txn.c).
 *
 * Locks: an update holds write_mu from begin to commit or rollback.
 */
#ifndef CY_TXN_H
#define CY_TXN_H

#include "ns.h"

/* A transaction's kind and state: 1 a view (its seq and start time), 0 an
 * update (its batch). */
CY_INTERNAL int  cy_txn_info(const calypso_txn *tx, calypso **db, uint64_t *seq,
                             uint64_t *start_ms, calypso_batch **b);
/* The namespace the transaction works on now. */
CY_INTERNAL cy_ns *cy_txn_ns(const calypso_txn *tx);

#endif /* CY_TXN_H */
