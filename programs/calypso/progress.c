/*
 * progress.c: a one-line progress indicator on stderr for long commands
 * (merge, check, load).
 *
 * A thread of its own redraws the line every 100 ms, so that work which
 * reports nothing while it runs (calypso_merge blocks with no callback)
 * still shows it is alive: with no known total the line is a bouncing bar
 * and the elapsed time; with a total, a bar of done/total. The worker only
 * stores a counter (an atomic), so reporting costs nothing per item.
 *
 * The indicator is drawn only when stderr is a terminal and --quiet was not
 * given (CALYPSO_PROGRESS=1 in the environment forces it on, for tests);
 * otherwise every call is a no-op on a NULL handle.
 */
#define _GNU_SOURCE 1
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define CLI_BAR_WIDTH 24

struct cli_progress {
    pthread_t        thread;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    int              stop;      /* under mu */
    _Atomic uint64_t done;
    uint64_t         total;
    uint64_t         start_ms;
    unsigned         tick;
    const char      *label;
};

/* A bar of CLI_BAR_WIDTH cells into out (CLI_BAR_WIDTH + 1 bytes). */
static void cli_progress_bar(const cli_progress *p, uint64_t done, char *out)
{
    memset(out, ' ', CLI_BAR_WIDTH);
    out[CLI_BAR_WIDTH] = '\0';
    if (p->total == 0) {            /* indeterminate: a block bouncing */
        unsigned span = CLI_BAR_WIDTH - 3, step = p->tick % (2 * span);
        unsigned pos = step < span ? step : 2 * span - step;
        memcpy(out + pos, "<=>", 3);
        return;
    }
    uint64_t fill = (done > p->total ? p->total : done) * CLI_BAR_WIDTH / p->total;
    memset(out, '=', (size_t)fill);
    if (fill < CLI_BAR_WIDTH) out[fill] = '>';
}

static void cli_progress_draw(cli_progress *p)
{
    char bar[CLI_BAR_WIDTH + 1];
    uint64_t done = atomic_load(&p->done);
    double secs = (double)(cli_mono_ms() - p->start_ms) / 1000.0;
    cli_progress_bar(p, done, bar);
    if (p->total == 0)
        fprintf(stderr, "\r%s [%s] %.1fs\033[K", p->label, bar, secs);
    else
        fprintf(stderr, "\r%s [%s] %3u%% %llu/%llu %.1fs\033[K", p->label, bar,
                (unsigned)((done > p->total ? p->total : done) * 100 / p->total),
                (unsigned long long)done, (unsigned long long)p->total, secs);
    fflush(stderr);
    p->tick++;
}

static void *cli_progress_main(void *arg)
{
    cli_progress *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {                      /* draws at least once, however short the work */
        cli_progress_draw(p);
        if (p->stop) break;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100 * 1000000L;
        if (until.tv_nsec >= 1000000000L) { until.tv_sec++; until.tv_nsec -= 1000000000L; }
        pthread_cond_timedwait(&p->cv, &p->mu, &until);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

static int cli_progress_wanted(const cli_ctx *c)
{
    const char *force = getenv("CALYPSO_PROGRESS");
    if (force && strcmp(force, "1") == 0) return 1;
    return !c->quiet && isatty(STDERR_FILENO);
}

cli_progress *cli_progress_start(const cli_ctx *c, const char *label, uint64_t total)
{
    if (!cli_progress_wanted(c)) return NULL;
    cli_progress *p = calloc(1, sizeof *p);
    if (!p) return NULL;            /* no indicator is no failure */
    p->total = total;
    p->label = label;
    p->start_ms = cli_mono_ms();
    atomic_init(&p->done, 0);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->thread, NULL, cli_progress_main, p) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    return p;
}

void cli_progress_set(cli_progress *p, uint64_t done)
{
    if (p) atomic_store_explicit(&p->done, done, memory_order_relaxed);
}

void cli_progress_stop(cli_progress *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    fputs("\r\033[K", stderr);
    fflush(stderr);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
