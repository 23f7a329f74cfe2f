/*
 * ttl.h: the TTL index (ttl.c): a namespace's key -> expiry and expiry ->
 * key trees.
 *
 * Locks: kd_lock (the caller's); exp_mu for the expired count.
 */
#ifndef CY_TTL_H
#define CY_TTL_H

#include "ns.h"
#include "keylist.h"

CY_INTERNAL int  cy_ttl_set(cy_ns *ns, const void *key, size_t klen, uint64_t expiry);
CY_INTERNAL void cy_ttl_clear(cy_ns *ns, const void *key, size_t klen);
CY_INTERNAL uint64_t cy_ttl_get(cy_ns *ns, const void *key, size_t klen);
CY_INTERNAL uint64_t cy_ttl_count_expired(calypso *db, cy_ns *ns, uint64_t now);
/* Copies up to max expired keys (expiry <= now) into a list. */
CY_INTERNAL int  cy_ttl_expired(cy_ns *ns, uint64_t now, size_t max, cy_keylist *out);

#endif /* CY_TTL_H */
