/*
 * batch.h: batches (batch.c): operations collected and committed as one
 * record.
 *
 * Locks: write_mu and kd_lock while one commits (commit.c).
 */
#ifndef CY_BATCH_H
#define CY_BATCH_H

#include "ns.h"

/* A delete that the commit makes only if key is then expired (TTL passed):
 * a key written again since it was found expired survives. */
CY_INTERNAL int  cy_batch_delete_expired(calypso_batch *b, const void *key, size_t klen);
/* Keeps an index of the batch's keys from now on, for cy_batch_find. */
CY_INTERNAL int  cy_batch_keep_index(calypso_batch *b);
/* The batch's last operation on key: 1 a put (its value and TTL), -1 a
 * delete, 0 none. Needs the index. */
CY_INTERNAL int  cy_batch_find(const calypso_batch *b, const void *key, size_t klen,
                               const uint8_t **val, size_t *vlen, uint64_t *ttl_ms);
/* Operations added from now on go to ns (calypso_batch_ns). */
CY_INTERNAL int  cy_batch_set_ns(calypso_batch *b, cy_ns *ns);
CY_INTERNAL int  cy_batch_ops(const calypso_batch *b);
/* The index of ns's operations (key -> operation number in loc.off), NULL
 * when none; operation i: 1 a put
 * whose value is at arena + *at (the arena only grows: offsets stay
 * good), -1 a delete. */
CY_INTERNAL const cy_art *cy_batch_index(const calypso_batch *b, const cy_ns *ns);
CY_INTERNAL int  cy_batch_op_value(const calypso_batch *b, uint64_t i, size_t *at, size_t *vlen);
CY_INTERNAL const uint8_t *cy_batch_arena(const calypso_batch *b);
/* Commits and frees b; `locked`: write_mu is held by the caller, and is
 * released by the commit. */
CY_INTERNAL int  cy_batch_commit_locked(calypso_batch *b, int locked);

#endif /* CY_BATCH_H */
