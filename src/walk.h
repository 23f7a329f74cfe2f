/*
 * walk.h: walks (walk.c): fold, scan, range and sift.
 *
 * Locks: kd_lock shared for one batch at a time.
 */
#ifndef CY_WALK_H
#define CY_WALK_H

#include "ns.h"

/* 1 with where the key was when a walk on db handed it to the callback now
 * running on this thread, if it is that key and the keydir has not changed
 * since (its loc may be in a file a merge has since removed: then look the
 * key up). kd_lock held. */
CY_INTERNAL int  cy_walk_hint(const calypso *db, const cy_ns *ns, const void *key, size_t klen,
                              cy_loc *loc, uint64_t *expiry);

#endif /* CY_WALK_H */
