/*
 * space.h: disk space (space.c): the space reserve and the low-space
 * state.
 *
 * Locks: space.mu, taken after write_mu; low is atomic.
 */
#ifndef CY_SPACE_H
#define CY_SPACE_H

#include "internal.h"

#include <pthread.h>

typedef struct cy_space {
    pthread_mutex_t mu;
    int             low;        /* the disk filled: RESERVE released, puts
                                   refused (atomic; changed under mu)       */
    uint64_t        held;       /* bytes RESERVE holds (mu)                 */
    uint64_t        last_try_ns; /* last attempt to take it back from a put */
} cy_space;
/* Bytes RESERVE holds for a database with these options. */
CY_INTERNAL uint64_t cy_space_reserve_size(const calypso *db);
/* At a read-write open: takes the reserve; a full disk leaves the handle
 * low on space (not an error). */
CY_INTERNAL int  cy_space_open(calypso *db);
/* A write met ENOSPC: releases the reserve and marks the handle low on
 * space. Returns 1 when it released space just now (a delete or a merge
 * step may try again), 0 when there was none to release. */
CY_INTERNAL int  cy_space_full(calypso *db);
/* Tries to take the reserve back; 1 when held again (the handle is no
 * longer low on space). */
CY_INTERNAL int  cy_space_retake(calypso *db);
/* CALYPSO_OK when a put may go ahead; CALYPSO_ENOSPC (with a message) while
 * the handle is low on space and the reserve cannot be taken back. */
CY_INTERNAL int  cy_space_put_check(calypso *db);

#endif /* CY_SPACE_H */
