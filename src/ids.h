/*
 * ids.h: file ids (ids.c): the three id spaces and their durable limits.
 *
 * Locks: ids.mu, taken after write_mu.
 */
#ifndef CY_IDS_H
#define CY_IDS_H

#include "internal.h"

#include <pthread.h>

enum { CY_IDS_REGULAR = 0, CY_IDS_MERGED = 1, CY_IDS_NS = 2 };

typedef struct cy_ids {
    pthread_mutex_t mu;
    uint64_t        next[3];    /* next id to hand out, per space (mu)      */
    uint64_t        limit[3];   /* durable in IDS: no id at or above it was
                                   ever handed out (mu)                     */
} cy_ids;
/* Ids of merged datafiles have this bit; they replay before regular ones. */
#define CY_FID_MERGED 0x40000000u
/* At open, after any decided merge is finished: reads IDS (or derives the
 * limits from the datafiles fids[0..n), writing IDS on a read-write
 * handle) and starts each space at its limit. */
CY_INTERNAL int  cy_ids_load(calypso *db, const uint32_t *fids, uint32_t n);
/* Hands out the next id of space (CY_IDS_REGULAR or CY_IDS_MERGED), first
 * making a higher limit durable when the id reaches the current one.
 * Errors: CALYPSO_EIO when the space is exhausted, or writing IDS failed. */
CY_INTERNAL int  cy_ids_take(calypso *db, int space, uint32_t *fid);
/* Raises the limit of space ahead of need (the background thread), when
 * fewer than half a chunk of ids is left below it, so that a rotation
 * seldom writes IDS itself. */
CY_INTERNAL void cy_ids_ahead(calypso *db, int space);

#endif /* CY_IDS_H */
