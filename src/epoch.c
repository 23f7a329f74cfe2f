/*
 * epoch.c: when memory and files that readers may still be using can be
 * released. The scheme is a grace period in the manner of userspace RCU's
 * counter flavour, with LMDB's reader table as the model of "a reader
 * announces what it reads":
 *
 *   - A reader announces itself (cy_epoch_enter) before it looks a key up
 *     in the keydir and leaves (cy_epoch_leave) once it has copied the
 *     value out. It counts itself in one of two counters (by the current
 *     phase) of a stripe chosen per thread; striping keeps readers on
 *     different cores off each other's cache lines. Entering is one atomic
 *     add (a full barrier on x86), leaving one atomic subtract; a reader
 *     never waits for anything here.
 *   - Whoever unpublishes something a reader could reach (a file table
 *     replaced by a new one, a datafile a merge removed, a mapping evicted)
 *     either waits for a grace period (cy_epoch_sync: every reader that
 *     was inside when it began has left) and then releases it, or hands it
 *     to the limbo list (cy_epoch_retire), whose items are released by
 *     cy_epoch_reclaim after a grace period that began after they were
 *     retired. Readers may retire (eviction happens on their path); only
 *     threads outside any epoch and holding no engine lock may wait.
 *
 * Why two flips per grace period: a reader may read the phase, be
 * preempted across a flip, and count itself in the old phase's counter
 * after the flip's wait saw it empty. Such a reader loads the published
 * pointers after its count (the count is a full barrier), so it already
 * sees the new state and is safe for this grace period; the second flip
 * makes the next grace period wait for it.
 *
 * Invariants: no user callback runs inside an epoch; no engine lock is
 * held by a thread that waits in cy_epoch_sync; ep_mu serializes grace
 * periods, limbo_mu guards the limbo list (never held while waiting).
 */
#include "engine.h"

#include <time.h>

static uint32_t cy_epoch_next_slot;
static _Thread_local uint32_t cy_epoch_tls_slot;   /* 1 + stripe, 0 unset */

CY_INTERNAL uint32_t cy_epoch_slot(void)
{
    uint32_t s = cy_epoch_tls_slot;
    if (CY_UNLIKELY(!s)) {
        s = 1 + __atomic_fetch_add(&cy_epoch_next_slot, 1, __ATOMIC_RELAXED) % CY_EPOCH_STRIPES;
        cy_epoch_tls_slot = s;
    }
    return s - 1;
}

CY_INTERNAL void cy_epoch_init(cy_epoch *e)
{
    for (unsigned i = 0; i < CY_EPOCH_STRIPES; i++)
        e->stripe[i].cnt[0] = e->stripe[i].cnt[1] = 0;
    e->phase = 0;
    e->started = e->done = 0;
    e->limbo = NULL;
    e->nlimbo = 0;
    pthread_mutex_init(&e->sync_mu, NULL);
    pthread_mutex_init(&e->limbo_mu, NULL);
}

CY_INTERNAL void cy_epoch_destroy(cy_epoch *e)
{
    pthread_mutex_destroy(&e->sync_mu);
    pthread_mutex_destroy(&e->limbo_mu);
}

/* Waits until no reader counts itself in phase p. */
static void cy_epoch_drain(cy_epoch *e, uint32_t p)
{
    for (unsigned i = 0; i < CY_EPOCH_STRIPES; i++) {
        unsigned tries = 0;
        while (__atomic_load_n(&e->stripe[i].cnt[p], __ATOMIC_SEQ_CST) != 0)
            cy_lock_backoff(&tries);
    }
}

CY_INTERNAL void cy_epoch_sync(cy_epoch *e)
{
    pthread_mutex_lock(&e->sync_mu);
    uint64_t s = __atomic_load_n(&e->started, __ATOMIC_RELAXED) + 1;
    __atomic_store_n(&e->started, s, __ATOMIC_SEQ_CST);
    for (int flip = 0; flip < 2; flip++) {
        uint32_t p = __atomic_load_n(&e->phase, __ATOMIC_RELAXED) & 1;
        /* Sequentially consistent store, then sequentially consistent
         * loads of the counters: the loads cannot pass the flip. */
        __atomic_store_n(&e->phase, p ^ 1, __ATOMIC_SEQ_CST);
        cy_epoch_drain(e, p);
    }
    __atomic_store_n(&e->done, s, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&e->sync_mu);
}

CY_INTERNAL void cy_epoch_retire(cy_epoch *e, cy_retired *r, void (*release)(cy_retired *))
{
    r->release = release;
    pthread_mutex_lock(&e->limbo_mu);
    /* Read under limbo_mu, after the caller unpublished r: a grace period
     * numbered above this began after r was out of readers' reach. */
    r->tag = __atomic_load_n(&e->started, __ATOMIC_SEQ_CST);
    r->next = e->limbo;
    e->limbo = r;
    __atomic_store_n(&e->nlimbo, e->nlimbo + 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&e->limbo_mu);
}

/* Releases the retired items whose grace period has passed. */
static void cy_epoch_release_done(cy_epoch *e)
{
    uint64_t done = __atomic_load_n(&e->done, __ATOMIC_ACQUIRE);
    cy_retired *ready = NULL;
    pthread_mutex_lock(&e->limbo_mu);
    cy_retired **pp = &e->limbo;
    while (*pp) {
        cy_retired *r = *pp;
        if (r->tag < done) {
            *pp = r->next;
            r->next = ready;
            ready = r;
            __atomic_store_n(&e->nlimbo, e->nlimbo - 1, __ATOMIC_RELAXED);
        } else {
            pp = &r->next;
        }
    }
    pthread_mutex_unlock(&e->limbo_mu);
    while (ready) {
        cy_retired *r = ready;
        ready = r->next;
        r->release(r);
    }
}

CY_INTERNAL int cy_epoch_pending(cy_epoch *e)
{
    return __atomic_load_n(&e->nlimbo, __ATOMIC_RELAXED) != 0;
}

CY_INTERNAL void cy_epoch_reclaim(cy_epoch *e)
{
    if (!cy_epoch_pending(e)) return;
    cy_epoch_sync(e);
    cy_epoch_release_done(e);
}
