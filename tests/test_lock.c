/*
 * test_lock.c: the engine's reader-writer lock (cy_rwlock, lock.h) and the
 * fair hand-over of its locks between the batches of a long job.
 *
 * - exclusion: writers update two counters non-atomically under the write
 *   lock while readers check, under the read lock, that they are equal;
 *   at the end every increment is there (TSan sees the lock's ordering);
 * - sharing: two readers hold the lock at once;
 * - writers first: once a writer waits, a new reader holds off until the
 *   writer has had its turn, and the writer gets in as soon as the readers
 *   before it leave;
 * - release: cy_unlock after a read hold and after a write hold leaves the
 *   lock free;
 * - letting waiters in: a writer between the batches of a long job lets a
 *   reader that waits for it in before it takes the lock again
 *   (cy_rw_let_readers), and a holder of a mutex taken through
 *   cy_mutex_lock_counted lets the thread waiting for it in the same way
 *   (cy_let_waiters); without that both would take it straight back; the
 *   wait for waiters that never come in ends after its bound.
 * Threads never call cmocka asserts; the main thread checks what they
 * recorded. An alarm ends the run if a lock never lets go.
 */
#include "testutil.h"
#include "engine.h"

#include <pthread.h>
#include <unistd.h>

#define READERS 3
#define WRITERS 2
#define WRITES  20000

typedef struct shared {
    cy_rwlock lock;
    uint64_t  a, b;          /* equal whenever the lock is not held for writing */
    int       stop;
    uint64_t  bad_reads;
    uint64_t  reads;
} shared;

static void *excl_writer(void *arg)
{
    shared *s = arg;
    for (int i = 0; i < WRITES; i++) {
        cy_wrlock(&s->lock);
        s->a++;
        if ((i & 7) == 0) sched_yield();     /* hold it a while now and then */
        s->b++;
        cy_unlock(&s->lock);
    }
    return NULL;
}

static void *excl_reader(void *arg)
{
    shared *s = arg;
    while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) {
        cy_rdlock(&s->lock);
        if (s->a != s->b) __atomic_add_fetch(&s->bad_reads, 1, __ATOMIC_RELAXED);
        cy_unlock(&s->lock);
        __atomic_add_fetch(&s->reads, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_exclusion(void **state)
{
    (void)state;
    static shared s;
    memset(&s, 0, sizeof s);
    cy_rwlock_init(&s.lock);
    pthread_t r[READERS], w[WRITERS];
    for (int i = 0; i < READERS; i++)
        assert_int_equal(pthread_create(&r[i], NULL, excl_reader, &s), 0);
    for (int i = 0; i < WRITERS; i++)
        assert_int_equal(pthread_create(&w[i], NULL, excl_writer, &s), 0);
    for (int i = 0; i < WRITERS; i++) assert_int_equal(pthread_join(w[i], NULL), 0);
    __atomic_store_n(&s.stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < READERS; i++) assert_int_equal(pthread_join(r[i], NULL), 0);
    print_message("%d writers x %d writes beside %llu reads\n", WRITERS, WRITES,
                  (unsigned long long)s.reads);
    assert_int_equal(s.bad_reads, 0);
    assert_int_equal(s.a, (uint64_t)WRITERS * WRITES);
    assert_int_equal(s.b, (uint64_t)WRITERS * WRITES);
    assert_int_equal(__atomic_load_n(&s.lock.state, __ATOMIC_RELAXED), 0);
    assert_int_equal(__atomic_load_n(&s.lock.readers_waiting, __ATOMIC_RELAXED), 0);
    assert_true(s.reads > 0);
}

typedef struct step {
    cy_rwlock *lock;
    int        done;         /* set once the thread holds the lock */
} step;

static void *take_write(void *arg)
{
    step *t = arg;
    cy_wrlock(t->lock);
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    cy_unlock(t->lock);
    return NULL;
}

static void *take_read(void *arg)
{
    step *t = arg;
    cy_rdlock(t->lock);
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    cy_unlock(t->lock);
    return NULL;
}

static uint32_t lock_state(cy_rwlock *l)
{
    return __atomic_load_n(&l->state, __ATOMIC_ACQUIRE);
}

/* Waits up to 5 s for cond(l) to hold. */
static int wait_for(cy_rwlock *l, uint32_t mask, uint32_t want)
{
    for (int i = 0; i < 5000; i++) {
        if ((lock_state(l) & mask) == want) return 1;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    return 0;
}

static void test_shared_then_writer_first(void **state)
{
    (void)state;
    cy_rwlock l;
    cy_rwlock_init(&l);
    /* Two read holds at once. */
    cy_rdlock(&l);
    cy_rdlock(&l);
    assert_int_equal(lock_state(&l), 2);
    /* A writer waits for them and raises WAITING ... */
    step w = { &l, 0 }, r = { &l, 0 };
    pthread_t tw, tr;
    assert_int_equal(pthread_create(&tw, NULL, take_write, &w), 0);
    assert_true(wait_for(&l, CY_RW_WAITING, CY_RW_WAITING));
    assert_false(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
    /* ... so a new reader holds off while the old readers stay. */
    assert_int_equal(pthread_create(&tr, NULL, take_read, &r), 0);
    struct timespec pause = { 0, 20000000 };
    nanosleep(&pause, NULL);
    assert_false(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE));
    assert_false(__atomic_load_n(&w.done, __ATOMIC_ACQUIRE));
    assert_int_equal(lock_state(&l) & CY_RW_READERS, 2);
    /* The old readers leave: the writer gets in, then the reader. */
    cy_unlock(&l);
    cy_unlock(&l);
    assert_int_equal(pthread_join(tw, NULL), 0);
    assert_int_equal(pthread_join(tr, NULL), 0);
    assert_true(w.done);
    assert_true(r.done);
    assert_int_equal(lock_state(&l), 0);
}

static void test_release(void **state)
{
    (void)state;
    cy_rwlock l;
    cy_rwlock_init(&l);
    cy_wrlock(&l);
    assert_int_equal(lock_state(&l), CY_RW_WRITER);
    cy_unlock(&l);
    assert_int_equal(lock_state(&l), 0);
    cy_rdlock(&l);
    assert_int_equal(lock_state(&l), 1);
    cy_unlock(&l);
    assert_int_equal(lock_state(&l), 0);
    /* A writer released with WAITING raised by another keeps the bit. */
    cy_wrlock(&l);
    __atomic_fetch_or(&l.state, CY_RW_WAITING, __ATOMIC_RELAXED);
    cy_unlock(&l);
    assert_int_equal(lock_state(&l), CY_RW_WAITING);
}

/* Waits up to 5 s for *count to reach want. */
static int wait_count(const uint32_t *count, uint32_t want)
{
    for (int i = 0; i < 5000; i++) {
        if (__atomic_load_n(count, __ATOMIC_ACQUIRE) == want) return 1;
        struct timespec ms = { 0, 1000000 };
        nanosleep(&ms, NULL);
    }
    return 0;
}

static void test_writer_lets_readers_in(void **state)
{
    (void)state;
    cy_rwlock l;
    cy_rwlock_init(&l);
    for (int round = 0; round < 20; round++) {
        cy_wrlock(&l);
        step r = { &l, 0 };
        pthread_t tr;
        assert_int_equal(pthread_create(&tr, NULL, take_read, &r), 0);
        assert_true(wait_count(&l.readers_waiting, 1));   /* it waits, counted */
        /* Let 200 us pass: the reader is napping now, past its spins. */
        struct timespec nap = { 0, 200000 };
        nanosleep(&nap, NULL);
        cy_unlock(&l);
        cy_rw_let_readers(&l, 10000000000ull);
        cy_wrlock(&l);                       /* the next batch */
        assert_true(__atomic_load_n(&r.done, __ATOMIC_ACQUIRE));
        assert_int_equal(l.readers_waiting, 0);
        cy_unlock(&l);
        assert_int_equal(pthread_join(tr, NULL), 0);
    }
    assert_int_equal(lock_state(&l), 0);
    /* Nobody waiting: it returns at once, and a reader that gets the lock
     * on its first try is never counted. */
    cy_rw_let_readers(&l, 10000000000ull);
    cy_rdlock(&l);
    assert_int_equal(l.readers_waiting, 0);
    cy_unlock(&l);
}

typedef struct mstep {
    pthread_mutex_t *mu;
    uint32_t        *waiting;
    int              done;     /* set once the thread holds the mutex */
} mstep;

static void *take_counted(void *arg)
{
    mstep *t = arg;
    cy_mutex_lock_counted(t->mu, t->waiting);
    __atomic_store_n(&t->done, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(t->mu);
    return NULL;
}

static void test_mutex_holder_lets_waiters_in(void **state)
{
    (void)state;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    uint32_t waiting = 0;
    for (int round = 0; round < 20; round++) {
        pthread_mutex_lock(&mu);
        mstep t = { &mu, &waiting, 0 };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, take_counted, &t), 0);
        assert_true(wait_count(&waiting, 1));
        pthread_mutex_unlock(&mu);
        cy_let_waiters(&waiting, 10000000000ull);
        pthread_mutex_lock(&mu);
        assert_true(__atomic_load_n(&t.done, __ATOMIC_ACQUIRE));
        assert_int_equal(waiting, 0);
        pthread_mutex_unlock(&mu);
        assert_int_equal(pthread_join(th, NULL), 0);
    }
    /* Free, it is taken without being counted. */
    cy_mutex_lock_counted(&mu, &waiting);
    assert_int_equal(waiting, 0);
    pthread_mutex_unlock(&mu);
}

static void test_let_waiters_bounded(void **state)
{
    (void)state;
    uint32_t waiting = 1;                 /* one that never gets its turn */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    cy_let_waiters(&waiting, 20000000);   /* 20 ms */
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    assert_true(ns >= 20000000);
    assert_int_equal(waiting, 1);
}

int main(void)
{
    alarm(120);                 /* a lock that never lets go must not hang the suite */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exclusion),
        cmocka_unit_test(test_shared_then_writer_first),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_writer_lets_readers_in),
        cmocka_unit_test(test_mutex_holder_lets_waiters_in),
        cmocka_unit_test(test_let_waiters_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
