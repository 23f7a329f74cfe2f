/*
 * history.c: keys and bytes on disk sampled over the process's life, for
 * the dashboard's chart.
 *
 * A thread samples calypso_stats every period into a ring of APID_HIST
 * points. When the ring is full, every other point is dropped and the
 * period doubles, so the chart always spans the whole life of the process
 * in at most APID_HIST points, the recent past at the finest resolution
 * kept. The ring has its own mutex; the sampler sleeps on a condition
 * variable so that stop wakes it at once.
 */
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "apid.h"

#define APID_HIST 240
#define APID_HIST_PERIOD_MS 1000u

static pthread_mutex_t apid_hist_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t  apid_hist_cv;
static apid_sample     apid_hist_ring[APID_HIST];
static size_t          apid_hist_n;
static uint64_t        apid_hist_period = APID_HIST_PERIOD_MS;
static int             apid_hist_stop, apid_hist_running;
static pthread_t       apid_hist_thread;

static void apid_history_add(apid *s)
{
    struct calypso_stats st;
    if (calypso_stats(s->db, &st) != CALYPSO_OK) return;
    pthread_mutex_lock(&apid_hist_mu);
    if (apid_hist_n == APID_HIST) {
        for (size_t i = 0; i < APID_HIST / 2; i++) apid_hist_ring[i] = apid_hist_ring[2 * i + 1];
        apid_hist_n = APID_HIST / 2;
        apid_hist_period *= 2;
    }
    apid_hist_ring[apid_hist_n++] = (apid_sample){ apid_wall_ms(), st.keys, st.size };
    pthread_mutex_unlock(&apid_hist_mu);
}

static void *apid_history_main(void *arg)
{
    apid *s = arg;
    pthread_mutex_lock(&apid_hist_mu);
    while (!apid_hist_stop) {
        pthread_mutex_unlock(&apid_hist_mu);
        apid_history_add(s);
        pthread_mutex_lock(&apid_hist_mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + apid_hist_period * 1000000u;
        ts.tv_sec += (time_t)(ns / 1000000000u);
        ts.tv_nsec = (long)(ns % 1000000000u);
        while (!apid_hist_stop && pthread_cond_timedwait(&apid_hist_cv, &apid_hist_mu, &ts) == 0) {}
    }
    pthread_mutex_unlock(&apid_hist_mu);
    return NULL;
}

int apid_history_start(apid *s)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&apid_hist_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&apid_hist_thread, NULL, apid_history_main, s)) return -1;
    apid_hist_running = 1;
    return 0;
}

void apid_history_stop(void)
{
    if (!apid_hist_running) return;
    pthread_mutex_lock(&apid_hist_mu);
    apid_hist_stop = 1;
    pthread_cond_signal(&apid_hist_cv);
    pthread_mutex_unlock(&apid_hist_mu);
    pthread_join(apid_hist_thread, NULL);
    apid_hist_running = 0;
}

size_t apid_history_copy(apid_sample *out, size_t cap)
{
    pthread_mutex_lock(&apid_hist_mu);
    size_t n = apid_hist_n < cap ? apid_hist_n : cap;
    memcpy(out, apid_hist_ring + (apid_hist_n - n), n * sizeof *out);
    pthread_mutex_unlock(&apid_hist_mu);
    return n;
}
