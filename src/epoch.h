/*
 * epoch.h: epochs (epoch.c): readers announce themselves; what is retired
 * waits on the limbo list for a grace period.
 *
 * Locks: sync_mu (one grace period at a time), limbo_mu (the limbo list);
 * the reader counts are atomics.
 */
#ifndef CY_EPOCH_H
#define CY_EPOCH_H

#include "internal.h"

#include <pthread.h>

#define CY_EPOCH_STRIPES 32

/* Readers counted per phase; 128 bytes apart so that stripes never share a
 * cache line, whatever the handle's alignment. */
typedef struct cy_epoch_stripe {
    uint32_t cnt[2];
    char     pad[120];
} cy_epoch_stripe;

/* Something unpublished, waiting on the limbo list for a grace period.
 * Embedded in what it releases. */
typedef struct cy_retired {
    struct cy_retired *next;
    uint64_t           tag;     /* grace periods begun when retired */
    void             (*release)(struct cy_retired *);
} cy_retired;

typedef struct cy_epoch {
    cy_epoch_stripe  stripe[CY_EPOCH_STRIPES];
    uint32_t         phase;     /* the counter new readers take (low bit) */
    uint64_t         started, done;   /* grace periods begun, completed   */
    pthread_mutex_t  sync_mu;
    pthread_mutex_t  limbo_mu;
    cy_retired      *limbo;
    uint32_t         nlimbo;
} cy_epoch;

CY_INTERNAL uint32_t cy_epoch_slot(void);
CY_INTERNAL void cy_epoch_init(cy_epoch *e);
CY_INTERNAL void cy_epoch_destroy(cy_epoch *e);
/* Waits for every reader inside an epoch now to leave. The caller is not
 * inside one and holds no engine lock. */
CY_INTERNAL void cy_epoch_sync(cy_epoch *e);
/* Hands r to the limbo list: release(r) runs after a grace period. */
CY_INTERNAL void cy_epoch_retire(cy_epoch *e, cy_retired *r, void (*release)(cy_retired *));
CY_INTERNAL int  cy_epoch_pending(cy_epoch *e);
/* Waits for a grace period and releases what it frees, if anything waits. */
CY_INTERNAL void cy_epoch_reclaim(cy_epoch *e);

/* Announces a reader; returns the token cy_epoch_leave needs. The add is
 * a full barrier: the reader's loads of published pointers come after it
 * (see epoch.c for why that matters). */
static inline uint32_t cy_epoch_enter(cy_epoch *e)
{
    uint32_t s = cy_epoch_slot();
    uint32_t p = __atomic_load_n(&e->phase, __ATOMIC_RELAXED) & 1;
    __atomic_fetch_add(&e->stripe[s].cnt[p], 1, __ATOMIC_SEQ_CST);
#if !defined(__x86_64__) && !defined(__i386__)
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    return s << 1 | p;
}

static inline void cy_epoch_leave(cy_epoch *e, uint32_t token)
{
    __atomic_fetch_sub(&e->stripe[token >> 1].cnt[token & 1], 1, __ATOMIC_RELEASE);
}

#endif /* CY_EPOCH_H */
