/*
 * metrics.c: request counters and the latency histogram, and GET /metrics
 * in the Prometheus text exposition format (version 0.0.4).
 *
 * Counters are relaxed atomics indexed by (route, status): no lock on the
 * request path. Statuses apid never sends fall into an "other" slot. The
 * latency runs from the request's first byte seen (the URI callback) to
 * libmicrohttpd's completion notice, so it includes sending the reply.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "apid.h"

static const unsigned apid_statuses[] = { 200, 201, 204, 302, 303, 400, 401, 403, 404, 405,
                                          409, 413, 414, 500, 503, 0 /* other */ };
#define APID_NSTATUS (sizeof apid_statuses / sizeof apid_statuses[0])
#define APID_MAX_ROUTES 32   /* routes in route.c, plus one for "none" */

/* Upper bounds of the latency buckets, in seconds; +Inf follows. */
static const double apid_buckets[] = { 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                       0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 };
#define APID_NBUCKETS (sizeof apid_buckets / sizeof apid_buckets[0])

static _Atomic uint64_t apid_requests[APID_MAX_ROUTES][APID_NSTATUS];
static _Atomic uint64_t apid_hist[APID_NBUCKETS + 1];
static _Atomic uint64_t apid_hist_sum_ns;

uint64_t apid_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t apid_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static size_t apid_route_index(const apid_route *route)
{
    for (size_t i = 0; i < apid_route_count() && i + 1 < APID_MAX_ROUTES; i++)
        if (apid_route_at(i) == route) return i + 1;
    return 0;                                           /* "none" */
}

static size_t apid_status_index(unsigned status)
{
    for (size_t i = 0; i + 1 < APID_NSTATUS; i++)
        if (apid_statuses[i] == status) return i;
    return APID_NSTATUS - 1;
}

void apid_metrics_record(const apid_route *route, unsigned status, uint64_t ns)
{
    atomic_fetch_add_explicit(&apid_requests[apid_route_index(route)][apid_status_index(status)],
                              1, memory_order_relaxed);
    double sec = (double)ns / 1e9;
    size_t b = 0;
    while (b < APID_NBUCKETS && sec > apid_buckets[b]) b++;
    atomic_fetch_add_explicit(&apid_hist[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&apid_hist_sum_ns, ns, memory_order_relaxed);
}

static void apid_metrics_engine(apid *s, apid_buf *b)
{
    struct calypso_stats st;
    if (calypso_stats(s->db, &st) != CALYPSO_OK) return;
    apid_buf_printf(b,
        "# HELP calypso_keys Live keys.\n# TYPE calypso_keys gauge\ncalypso_keys %llu\n"
        "# HELP calypso_bytes Bytes on disk (datafiles and hint files).\n# TYPE calypso_bytes gauge\ncalypso_bytes %llu\n"
        "# HELP calypso_dead_bytes Bytes a merge would reclaim.\n# TYPE calypso_dead_bytes gauge\ncalypso_dead_bytes %llu\n"
        "# HELP calypso_datafiles Datafiles on disk.\n# TYPE calypso_datafiles gauge\ncalypso_datafiles %u\n"
        "# HELP calypso_keydir_bytes Memory held by the key directory.\n# TYPE calypso_keydir_bytes gauge\ncalypso_keydir_bytes %llu\n"
        "# HELP calypso_merges_total Merges completed since the database was opened.\n# TYPE calypso_merges_total counter\ncalypso_merges_total %llu\n",
        (unsigned long long)st.keys, (unsigned long long)st.size,
        (unsigned long long)st.reclaimable, st.datafiles,
        (unsigned long long)st.keydir_bytes, (unsigned long long)st.merges);
}

static void apid_metrics_requests(apid_buf *b)
{
    apid_buf_puts(b, "# HELP apid_requests_total HTTP requests answered, by route and status.\n"
                     "# TYPE apid_requests_total counter\n");
    for (size_t ri = 0; ri <= apid_route_count() && ri < APID_MAX_ROUTES; ri++) {
        const char *name = ri ? apid_route_at(ri - 1)->name : "none";
        for (size_t si = 0; si < APID_NSTATUS; si++) {
            uint64_t n = atomic_load_explicit(&apid_requests[ri][si], memory_order_relaxed);
            if (!n) continue;
            if (apid_statuses[si])
                apid_buf_printf(b, "apid_requests_total{route=\"%s\",status=\"%u\"} %llu\n",
                                name, apid_statuses[si], (unsigned long long)n);
            else
                apid_buf_printf(b, "apid_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                                name, (unsigned long long)n);
        }
    }
}

static void apid_metrics_latency(apid_buf *b)
{
    apid_buf_puts(b, "# HELP apid_request_duration_seconds Time from request to reply sent.\n"
                     "# TYPE apid_request_duration_seconds histogram\n");
    uint64_t cum = 0;
    for (size_t i = 0; i <= APID_NBUCKETS; i++) {
        cum += atomic_load_explicit(&apid_hist[i], memory_order_relaxed);
        if (i < APID_NBUCKETS)
            apid_buf_printf(b, "apid_request_duration_seconds_bucket{le=\"%g\"} %llu\n",
                            apid_buckets[i], (unsigned long long)cum);
        else
            apid_buf_printf(b, "apid_request_duration_seconds_bucket{le=\"+Inf\"} %llu\n",
                            (unsigned long long)cum);
    }
    apid_buf_printf(b, "apid_request_duration_seconds_sum %.6f\napid_request_duration_seconds_count %llu\n",
                    (double)atomic_load_explicit(&apid_hist_sum_ns, memory_order_relaxed) / 1e9,
                    (unsigned long long)cum);
}

enum MHD_Result apid_route_metrics(apid *s, apid_req *r)
{
    apid_buf b = { 0 };
    apid_metrics_engine(s, &b);
    apid_metrics_requests(&b);
    apid_metrics_latency(&b);
    apid_buf_printf(&b, "# HELP apid_uptime_seconds Seconds since apid started.\n"
                        "# TYPE apid_uptime_seconds gauge\napid_uptime_seconds %.3f\n",
                    (double)(apid_wall_ms() - s->started_ms) / 1000.0);
    if (b.oom) { apid_buf_free(&b); return apid_reply_error(r, 500, "nomem", "out of memory"); }
    return apid_reply_owned(r, 200, "text/plain; version=0.0.4; charset=utf-8", b.p, b.len, NULL);
}
