/*
 * lock.h: the engine's locks: the reader-writer lock kd_lock is made of
 * (cy_rwlock), and the wake-up a thread sleeps on and others kick
 * (cy_wake).
 */
#ifndef CY_LOCK_H
#define CY_LOCK_H

#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <time.h>

/* kd_lock is a reader-writer lock of our own: one word,
 * readers counted in its low bits, a writer bit, and a bit by which a
 * waiting writer holds back new readers (writers are short and must not
 * starve behind a stream of gets). Taking or releasing one is a single
 * atomic operation, a few instructions against the hundred-odd of a
 * pthread_rwlock_t pair per call, and every get takes one.
 *
 * The critical sections are short (a tree lookup or update, a table
 * edit, a record copy), shorter than putting a thread to sleep and waking
 * it. So a thread that finds a lock taken spins a few microseconds, then
 * yields, then sleeps in short naps: nothing is ever woken, so a release
 * never makes a system call.
 *
 * A writer that does a long job in batches (a merge pointing the keydir at
 * its copies) releases the lock between them, but a reader napping through
 * the release would find it taken again when it wakes, and wait out the
 * whole job: writers come first. So a reader that has to wait counts
 * itself in readers_waiting (the fast path never touches it), and such a
 * writer lets those readers in before it takes the lock again
 * (cy_rw_let_readers): a get waits for one batch at most. */
typedef struct cy_rwlock {
    uint32_t state;
    uint32_t readers_waiting;   /* readers past their first try */
} cy_rwlock;

#define CY_RW_WRITER  0x80000000u   /* held by a writer                     */
#define CY_RW_WAITING 0x40000000u   /* a writer waits: new readers hold off  */
#define CY_RW_READERS 0x3fffffffu   /* readers holding it                    */
#define CY_LOCK_SPINS  256
#define CY_LOCK_YIELDS 64

static inline void cy_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits a little longer each time: pause, then yield, then 50 us naps. */
static inline void cy_lock_backoff(unsigned *tries)
{
    unsigned t = (*tries)++;
    if (t < CY_LOCK_SPINS) {
        cy_cpu_relax();
    } else if (t < CY_LOCK_SPINS + CY_LOCK_YIELDS) {
        sched_yield();
    } else {
        struct timespec nap = { 0, 50000 };
        nanosleep(&nap, NULL);
    }
}

static inline void cy_rwlock_init(cy_rwlock *l)
{
    __atomic_store_n(&l->state, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&l->readers_waiting, 0, __ATOMIC_RELAXED);
}

static inline void cy_rdlock(cy_rwlock *l)
{
    unsigned tries = 0;
    uint32_t s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    for (;;) {
        if (!(s & (CY_RW_WRITER | CY_RW_WAITING))) {
            if (__atomic_compare_exchange_n(&l->state, &s, s + 1, 1, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED)) {
                if (tries) __atomic_sub_fetch(&l->readers_waiting, 1, __ATOMIC_RELAXED);
                return;
            }
            continue;
        }
        if (!tries) __atomic_add_fetch(&l->readers_waiting, 1, __ATOMIC_RELAXED);
        cy_lock_backoff(&tries);
        s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    }
}

static inline void cy_wrlock(cy_rwlock *l)
{
    unsigned tries = 0;
    uint32_t s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    for (;;) {
        if (!(s & (CY_RW_WRITER | CY_RW_READERS))) {
            /* Free: take it (clearing WAITING; other waiting writers set
             * it again). */
            if (__atomic_compare_exchange_n(&l->state, &s, CY_RW_WRITER, 1, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
            continue;
        }
        if (!(s & CY_RW_WAITING) &&
            !__atomic_compare_exchange_n(&l->state, &s, s | CY_RW_WAITING, 1, __ATOMIC_RELAXED,
                                         __ATOMIC_RELAXED))
            continue;
        cy_lock_backoff(&tries);
        s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    }
}

/* Releases a read or a write hold: while a writer holds the lock no reader
 * can, so the writer bit says which this is. */
static inline void cy_unlock(cy_rwlock *l)
{
    if (__atomic_load_n(&l->state, __ATOMIC_RELAXED) & CY_RW_WRITER)
        __atomic_fetch_and(&l->state, ~CY_RW_WRITER, __ATOMIC_RELEASE);
    else
        __atomic_fetch_sub(&l->state, 1, __ATOMIC_RELEASE);
}

/* For a holder between the batches of a long job, after its release:
 * waits until no thread counted in *waiting is waiting any longer (each
 * has had its turn at the lock), or max_ns have passed, so that what
 * waits for the lock gets in before the job takes it again. */
static inline void cy_let_waiters(const uint32_t *waiting, uint64_t max_ns)
{
    if (!__atomic_load_n(waiting, __ATOMIC_ACQUIRE)) return;
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        sched_yield();
        if (!__atomic_load_n(waiting, __ATOMIC_ACQUIRE)) return;
        clock_gettime(CLOCK_MONOTONIC, &t);
        int64_t ns = (int64_t)(t.tv_sec - t0.tv_sec) * 1000000000 + (t.tv_nsec - t0.tv_nsec);
        if (ns >= (int64_t)max_ns) return;
    }
}

/* Lets the readers waiting for l in (cy_let_waiters). */
static inline void cy_rw_let_readers(cy_rwlock *l, uint64_t max_ns)
{
    cy_let_waiters(&l->readers_waiting, max_ns);
}

/* Takes mu, counted in *waiting while it has to wait: for a mutex whose
 * long holders let waiters in between batches (cy_let_waiters). A pthread
 * mutex is not fair either: its holder can take it again before the
 * waiter it woke has run. */
static inline void cy_mutex_lock_counted(pthread_mutex_t *mu, uint32_t *waiting)
{
    if (pthread_mutex_trylock(mu) == 0) return;
    __atomic_add_fetch(waiting, 1, __ATOMIC_RELAXED);
    pthread_mutex_lock(mu);
    __atomic_sub_fetch(waiting, 1, __ATOMIC_RELEASE);
}

/* A condition a thread sleeps on and others kick: the background thread
 * (bg.c) sleeps on the handle's bg_wake, and the modules below it (files.c
 * when a file is sealed, commit.c when write-back is due) kick it through
 * cy_wake_kick without calling up into bg.c. */
typedef struct cy_wake {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
} cy_wake;

static inline void cy_wake_kick(cy_wake *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

#endif /* CY_LOCK_H */
