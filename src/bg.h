/*
 * bg.h: the background thread (bg.c).
 *
 * Locks: bg.wake.mu for its sleep and wake-ups (cy_wake).
 */
#ifndef CY_BG_H
#define CY_BG_H

#include "internal.h"
#include "lock.h"

#include <pthread.h>

/* The handle's background thread (db->bg). The requests below the thread's
 * own fields are how the modules under bg.c reach it without calling it:
 * they set a flag and kick `wake` (cy_wake_kick). */
typedef struct cy_bg {
    pthread_t        thread;
    int              started;
    int              stop;        /* asked to exit (atomic; under wake.mu)   */
    cy_wake          wake;        /* the thread sleeps on it                 */
    int              hints_pending; /* a file was sealed: hints owed (atomic) */
    int              writeback;   /* write-back asked (atomic)               */
    int              allocate;    /* allocation ahead of the active file's
                                     data asked (atomic: files.c)            */
    uint64_t         wb_kicked;   /* written_seq when write-back was last
                                     asked (write_mu)                        */
} cy_bg;

CY_INTERNAL int  cy_bg_start(calypso *db);
CY_INTERNAL void cy_bg_stop(calypso *db);

#endif /* CY_BG_H */
