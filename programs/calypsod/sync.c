/*
 * sync.c: durability for --sync always without an fdatasync per command.
 * The engine is opened in CALYPSO_SYNC_NONE mode (each write reaches the
 * kernel before its call returns); this thread makes them durable in
 * groups. At the end of each event-loop round that wrote anything, the
 * loop asks for a sync ("generation" g covers every write made so far);
 * the replies produced in that round are held until the sync of a
 * generation >= g has returned. Meanwhile the loop keeps reading and
 * running commands, whose replies wait for the next sync: one fdatasync
 * covers every write of every client since the previous one, which is
 * what Redis's appendfsync always does in its beforeSleep, minus the
 * stall of the loop.
 *
 * A failed sync is fatal, as in Redis under appendfsync always: the
 * replies it should have covered are never sent, and the process exits,
 * since the kernel may have dropped the data it could not write.
 *
 * Locks: one mutex and condition variable between the loop (requests) and
 * this thread; an eventfd wakes the loop when a sync completes.
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "calypsod.h"

typedef struct cd_sync {
    pthread_t       thread;
    pthread_mutex_t mu;
    pthread_cond_t  cv;
    uint64_t        requested;
    uint64_t        done;      /* read by the loop with an atomic load */
    int             stop;
    int             failed;
    int             efd;
} cd_sync;

static void *cd_sync_main(void *arg)
{
    cd_sync *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && s->requested == __atomic_load_n(&s->done, __ATOMIC_RELAXED))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop) break;
        uint64_t target = s->requested;
        pthread_mutex_unlock(&s->mu);
        int rc = calypso_sync(cd_srv.db);
        pthread_mutex_lock(&s->mu);
        if (rc < 0) {
            s->failed = 1;
            cd_log(CD_LOG_WARNING, "fdatasync of the database failed: %s (%s); exiting, "
                   "the writes not yet synced are not acknowledged", calypso_strerror(rc),
                   calypso_errmsg(cd_srv.db));
        } else {
            __atomic_store_n(&s->done, target, __ATOMIC_RELEASE);
        }
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof one) < 0) { /* the loop polls again anyway */ }
        if (s->failed) break;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int cd_sync_start(void)
{
    cd_sync *s = calloc(1, sizeof *s);
    if (!s) return -1;
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->efd < 0) { free(s); return -1; }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, cd_sync_main, s) != 0) {
        close(s->efd);
        free(s);
        return -1;
    }
    cd_srv.syncer = s;
    return 0;
}

void cd_sync_stop(void)
{
    cd_sync *s = cd_srv.syncer;
    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    close(s->efd);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
    cd_srv.syncer = NULL;
}

uint64_t cd_sync_request(void)
{
    cd_sync *s = cd_srv.syncer;
    pthread_mutex_lock(&s->mu);
    uint64_t g = ++s->requested;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return g;
}

uint64_t cd_sync_done(void)
{
    cd_sync *s = cd_srv.syncer;
    return s ? __atomic_load_n(&s->done, __ATOMIC_ACQUIRE) : UINT64_MAX;
}

/* The last generation asked for (0 when none, or no sync thread). */
uint64_t cd_sync_latest(void);
uint64_t cd_sync_latest(void)
{
    cd_sync *s = cd_srv.syncer;
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    uint64_t g = s->requested;
    pthread_mutex_unlock(&s->mu);
    return g;
}

int cd_sync_failed(void);
int cd_sync_failed(void)
{
    cd_sync *s = cd_srv.syncer;
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    int f = s->failed;
    pthread_mutex_unlock(&s->mu);
    return f;
}

int cd_sync_event_fd(void) { return cd_srv.syncer ? cd_srv.syncer->efd : -1; }

void cd_sync_ack(void)
{
    uint64_t v;
    if (read(cd_srv.syncer->efd, &v, sizeof v) < 0) { /* nothing to drain */ }
}
