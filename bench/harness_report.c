/*
 * harness_report.c: turns the driver's figures into what people read: the
 * markdown table (stdout and bench.md), bench.csv, one PNG chart per
 * workload group (gnuplot, bench/plot.gp) and README-section.md.
 *
 * Every figure is the median of the repetitions that produced it. The
 * table has one row per metric and one column per engine, then the best
 * peer, calypso relative to it (above 1 means calypso is better: faster,
 * or smaller for ms, MiB and bytes per key), the target and PASS/FAIL.
 * The targets are listed once, in bench_targets[].
 */
#define _GNU_SOURCE
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* >> metrics and targets ------------------------------------------------------ */

/* Rows in table order: writes, then every read as the fill left it (no
 * merge: as a user has it), then the same reads after a merge, then the
 * rest. Metrics with latency = 1 go to the latency table instead. */
#define LAT4(base, group, label) \
    { base "_p50", group, label, "us", 1, 1 }, { base "_p99", group, label, "us", 1, 1 }, \
    { base "_p999", group, label, "us", 1, 1 }, { base "_max", group, label, "us", 1, 1 }

const struct bench_metric bench_metrics[] = {
    { "fillseq",        "main",     "fillseq",                          "ops/s",   0, 0 },
    { "fillrandom",     "main",     "fillrandom",                       "ops/s",   0, 0 },
    { "overwrite",      "main",     "overwrite (every key)",            "ops/s",   0, 0 },
    { "readrandom_unmerged",  "main", "readrandom (hits), as filled",   "ops/s",   0, 0 },
    { "readmissing_unmerged", "main", "readmissing, as filled",         "ops/s",   0, 0 },
    { "getmany_unmerged",     "main", "multi-get 16 keys, as filled",   "keys/s",  0, 0 },
    { "readseq_unmerged",     "main", "cursor walk (keys+values), as filled", "keys/s", 0, 0 },
    { "prefix100_unmerged",   "main", "prefix scan 100 keys, as filled", "scans/s", 0, 0 },
    { "walkget_unmerged",     "main", "walk + get of each key, as filled", "keys/s", 0, 0 },
    { "prefixget_unmerged",   "main", "prefix walk + get, 100 keys, as filled", "scans/s", 0, 0 },
    { "mixed_unmerged",       "main", "mixed 90% read, 2 threads, as filled", "ops/s", 0, 0 },
    { "readrandom",     "main",     "readrandom (hits), after merge",   "ops/s",   0, 0 },
    { "readmissing",    "main",     "readmissing, after merge",         "ops/s",   0, 0 },
    { "getmany",        "main",     "multi-get 16 keys, after merge",   "keys/s",  0, 0 },
    { "readseq",        "main",     "cursor walk (keys+values), after merge", "keys/s", 0, 0 },
    { "prefix100",      "main",     "prefix scan 100 keys, after merge", "scans/s", 0, 0 },
    { "walkget",        "main",     "walk + get of each key, after merge", "keys/s", 0, 0 },
    { "prefixget",      "main",     "prefix walk + get, 100 keys, after merge", "scans/s", 0, 0 },
    { "mixed",          "main",     "mixed 90% read, 2 threads, after merge", "ops/s", 0, 0 },
    { "deleterandom",   "main",     "deleterandom",                     "ops/s",   0, 0 },
    { "durable1",       "durable",  "durable writes, 1 writer",         "ops/s",   0, 0 },
    { "durable4",       "durable",  "durable writes, 4 writers",        "ops/s",   0, 0 },
    { "fillrandom_1k",  "value1k",  "fillrandom, 1 KiB values",         "ops/s",   0, 0 },
    { "readrandom_1k",  "value1k",  "readrandom, 1 KiB values, as filled", "ops/s", 0, 0 },
    { "fillrandom_16k", "value16k", "fillrandom, 16 KiB values",        "ops/s",   0, 0 },
    { "readrandom_16k", "value16k", "readrandom, 16 KiB values, as filled", "ops/s", 0, 0 },
    { "close_fill_ms",  "main",     "close after fill",                 "ms",      1, 0 },
    { "open_fill_ms",   "main",     "open after fill",                  "ms",      1, 0 },
    { "close_over_ms",  "main",     "close after fill + overwrite",     "ms",      1, 0 },
    { "open_over_ms",   "main",     "open after fill + overwrite",      "ms",      1, 0 },
    { "open_ms",        "main",     "open after fill + overwrite + merge", "ms",   1, 0 },
    { "disk_fill",      "main",     "disk after fill",                  "MiB",     1, 0 },
    { "disk_overwrite", "main",     "disk after overwrite",             "MiB",     1, 0 },
    { "disk_merge",     "main",     "disk after overwrite + merge",     "MiB",     1, 0 },
    { "keydir_bpk",     "main",     "keydir bytes per key",             "B/key",   1, 0 },
    { "rss",            "main",     "peak RSS (main group)",            "MiB",     1, 0 },
    { "fillrandom_large",    "large", "N-large: fillrandom",            "ops/s",   0, 0 },
    { "readrandom_large",    "large", "N-large: readrandom, as filled", "ops/s",   0, 0 },
    { "readmissing_large",   "large", "N-large: readmissing, as filled", "ops/s",  0, 0 },
    { "getmany_large",       "large", "N-large: multi-get 16 keys",     "keys/s",  0, 0 },
    { "close_fill_ms_large", "large", "N-large: close after fill",      "ms",      1, 0 },
    { "open_fill_ms_large",  "large", "N-large: open after fill",       "ms",      1, 0 },
    { "overwrite_large",     "large", "N-large: overwrite",             "ops/s",   0, 0 },
    { "keydir_bpk_large",    "large", "N-large: keydir bytes per key",  "B/key",   1, 0 },
    LAT4("putlat_fill",  "latency", "put, fill across datafile rotations"),
    LAT4("putlat_merge", "latency", "put during a merge"),
    LAT4("getlat_merge", "latency", "get during a merge"),
    LAT4("getlat_cold",  "latency", "get, most files cold (4 mapped)"),
};
const size_t bench_nmetrics = sizeof bench_metrics / sizeof bench_metrics[0];
_Static_assert(sizeof bench_metrics / sizeof bench_metrics[0] <= BENCH_MAX_METRICS,
               "raise BENCH_MAX_METRICS in harness.h");

int bench_metric_find(const char *name)
{
    for (size_t i = 0; i < bench_nmetrics; i++)
        if (strcmp(bench_metrics[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* What calypso aims for; a metric may have several targets, all must hold.
 * BEST: calypso / best peer >= x. HASH: calypso / best hash engine (a peer
 * without order) >= x. LMDB: calypso / lmdb >= x. SELF: calypso / calypso's
 * own figure of metric `ref` (same run, same state) >= x. SYNC: calypso
 * >= x * 4 / the fdatasync latency measured in the run (what four writers
 * sharing every sync could reach). MAX: calypso <= x (in the displayed
 * unit). LIVE: calypso <= x times the live bytes (N keys of 16 + 100
 * bytes). */
enum { T_BEST, T_HASH, T_LMDB, T_SELF, T_SYNC, T_MAX, T_LIVE };
static const struct bench_target {
    const char *metric;
    int kind;
    double x;
    const char *ref;       /* T_SELF: the metric compared with */
} bench_targets[] = {
    { "fillrandom",           T_HASH, 1.0, NULL },
    { "overwrite",            T_HASH, 1.0, NULL },
    { "readrandom_unmerged",  T_HASH, 1.0, NULL },
    { "readmissing_unmerged", T_BEST, 1.0, NULL },
    { "getmany_unmerged",     T_SELF, 2.0, "readrandom_unmerged" },
    { "readseq_unmerged",     T_LMDB, 1.0, NULL },
    { "prefix100_unmerged",   T_LMDB, 1.0, NULL },
    { "walkget_unmerged",     T_SELF, 0.5, "readseq_unmerged" },
    { "prefixget_unmerged",   T_SELF, 0.5, "prefix100_unmerged" },
    { "readrandom",           T_HASH, 1.0, NULL },
    { "readmissing",          T_BEST, 1.0, NULL },
    { "getmany",              T_SELF, 2.0, "readrandom" },
    { "readseq",              T_LMDB, 1.0, NULL },
    { "prefix100",            T_LMDB, 1.0, NULL },
    { "walkget",              T_SELF, 0.5, "readseq" },
    { "prefixget",            T_SELF, 0.5, "prefix100" },
    { "durable1",             T_BEST, 1.0, NULL },
    { "durable4",             T_BEST, 2.0, NULL },
    { "durable4",             T_SYNC, 0.8, NULL },
    { "close_over_ms",        T_MAX,  200, NULL },
    { "open_over_ms",         T_MAX,  100, NULL },
    { "open_ms",              T_MAX,  100, NULL },
    { "keydir_bpk",           T_MAX,  48,  NULL },
    { "disk_merge",           T_LIVE, 1.35, NULL },
    { "fillrandom_large",     T_HASH, 1.0, NULL },
    { "overwrite_large",      T_HASH, 1.0, NULL },
    { "readrandom_large",     T_HASH, 1.0, NULL },
    { "readrandom_large",     T_LMDB, 1.5, NULL },
    { "getmany_large",        T_SELF, 2.0, "readrandom_large" },
    { "open_fill_ms_large",   T_MAX,  1000, NULL },
    { "keydir_bpk_large",     T_MAX,  48,  NULL },
};
#define BENCH_NTARGETS (sizeof bench_targets / sizeof bench_targets[0])

/* >> medians ---------------------------------------------------------------------- */

static int rep_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median of engine e's runs of metric m in *out; returns its state. */
static int rep_median(const struct bench_results *r, size_t e, size_t m, double *out)
{
    double v[BENCH_MAX_REPS];
    int n = 0, unsup = 0, failed = 0;
    for (int i = 0; i < r->reps; i++) {
        int st = r->state[e][m][i];
        if (st == BENCH_V_OK)
            v[n++] = r->value[e][m][i];
        unsup |= st == BENCH_V_UNSUPPORTED;
        failed |= st == BENCH_V_FAILED;
    }
    if (n == 0)
        return unsup ? BENCH_V_UNSUPPORTED : failed ? BENCH_V_FAILED : BENCH_V_NONE;
    qsort(v, (size_t)n, sizeof v[0], rep_cmp);
    *out = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    return BENCH_V_OK;
}

/* The displayed value: bytes become MiB. */
static double rep_display(size_t m, double v)
{
    return strcmp(bench_metrics[m].unit, "MiB") == 0 ? v / (1 << 20) : v;
}

static void rep_fmt(size_t m, double v, char *out, size_t cap)
{
    v = rep_display(m, v);
    if (strstr(bench_metrics[m].unit, "/s") == NULL)
        snprintf(out, cap, "%.1f", v);
    else if (v >= 1e6)
        snprintf(out, cap, "%.2fM", v / 1e6);
    else if (v >= 1e4)
        snprintf(out, cap, "%.0fk", v / 1e3);
    else if (v >= 1e3)
        snprintf(out, cap, "%.1fk", v / 1e3);
    else
        snprintf(out, cap, "%.0f", v);
}

static int rep_is_calypso(const struct bench_results *r, size_t e)
{
    return strcmp(r->eng[e]->name, "calypso") == 0;
}

/* The best peer's median for metric m (hash_only: among peers without
 * order, the hash engines): index, or -1. */
static int rep_best_of(const struct bench_results *r, size_t m, int hash_only, double *best)
{
    int be = -1;
    for (size_t e = 0; e < r->nengines; e++) {
        double v;
        if (rep_is_calypso(r, e) || (hash_only && r->eng[e]->scan) ||
            rep_median(r, e, m, &v) != BENCH_V_OK)
            continue;
        if (be < 0 || (bench_metrics[m].lower ? v < *best : v > *best)) {
            *best = v;
            be = (int)e;
        }
    }
    return be;
}

static int rep_best_peer(const struct bench_results *r, size_t m, double *best)
{
    return rep_best_of(r, m, 0, best);
}

/* The median over the repetitions of the run's fdatasync probe; 0: none. */
static double rep_fsync(const struct bench_results *r, double *p99)
{
    double v[BENCH_MAX_REPS], w[BENCH_MAX_REPS];
    int n = 0;
    for (int i = 0; i < r->reps; i++)
        if (r->fsync_us[i] > 0) {
            v[n] = r->fsync_us[i];
            w[n++] = r->fsync_p99_us[i];
        }
    if (n == 0)
        return 0;
    qsort(v, (size_t)n, sizeof v[0], rep_cmp);
    qsort(w, (size_t)n, sizeof w[0], rep_cmp);
    if (p99)
        *p99 = n % 2 ? w[n / 2] : (w[n / 2 - 1] + w[n / 2]) / 2;
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int rep_engine_index(const struct bench_results *r, const char *name)
{
    for (size_t e = 0; e < r->nengines; e++)
        if (strcmp(r->eng[e]->name, name) == 0)
            return (int)e;
    return -1;
}

/* >> the table --------------------------------------------------------------------- */

/* One target: its text in tgt; returns 1 met, 0 missed, -1 no figure to
 * judge by (have_cal says whether calypso has a figure, cal). */
static int rep_one_target(const struct bench_params *p, const struct bench_results *r, size_t m,
                          const struct bench_target *t, int have_cal, double cal,
                          char *tgt, size_t tcap)
{
    double ref = 0;
    int have = 0, e;
    switch (t->kind) {
    case T_BEST:
    case T_HASH:
        e = rep_best_of(r, m, t->kind == T_HASH, &ref);
        snprintf(tgt, tcap, ">= %.1fx best %s%s%s%s", t->x,
                 t->kind == T_HASH ? "hash engine" : "peer", e >= 0 ? " (" : "",
                 e >= 0 ? r->eng[e]->name : "", e >= 0 ? ")" : "");
        have = e >= 0 && ref > 0;
        break;
    case T_LMDB:
        e = rep_engine_index(r, "lmdb");
        snprintf(tgt, tcap, ">= %.1fx lmdb", t->x);
        have = e >= 0 && rep_median(r, (size_t)e, m, &ref) == BENCH_V_OK && ref > 0;
        break;
    case T_SELF: {
        int rm = bench_metric_find(t->ref);
        e = rep_engine_index(r, "calypso");
        snprintf(tgt, tcap, ">= %.1fx own %s", t->x, t->ref);
        have = rm >= 0 && e >= 0 &&
               rep_median(r, (size_t)e, (size_t)rm, &ref) == BENCH_V_OK && ref > 0;
        break;
    }
    case T_SYNC: {
        double us = rep_fsync(r, NULL);
        ref = us > 0 ? 4e6 / us : 0;
        snprintf(tgt, tcap, ">= %.1fx 4/fdatasync (%.0f/s)", t->x, ref);
        have = ref > 0;
        break;
    }
    case T_MAX:
        snprintf(tgt, tcap, "<= %g %s", t->x, bench_metrics[m].unit);
        return have_cal ? rep_display(m, cal) <= t->x : -1;
    default: {
        double live = (double)p->n * (16 + 100);
        snprintf(tgt, tcap, "<= %.2fx live (%.0f MiB)", t->x, live / (1 << 20));
        return have_cal ? cal <= t->x * live : -1;
    }
    }
    if (!have_cal || !have)
        return -1;
    return bench_metrics[m].lower ? ref / cal >= t->x : cal / ref >= t->x;
}

/* Target text (every target of metric m, joined) and verdict for
 * calypso's median cal: PASS when all are met, FAIL when one is missed,
 * "" when none can be judged. */
static void rep_verdict(const struct bench_params *p, const struct bench_results *r, size_t m,
                        int have_cal, double cal, char *tgt, size_t tcap, const char **verdict)
{
    int judged = 0, failed = 0;
    size_t len = 0;
    *verdict = "";
    tgt[0] = '\0';
    for (size_t i = 0; i < BENCH_NTARGETS; i++) {
        char one[160];
        if (strcmp(bench_targets[i].metric, bench_metrics[m].name) != 0)
            continue;
        int ok = rep_one_target(p, r, m, &bench_targets[i], have_cal, cal, one, sizeof one);
        int w = snprintf(tgt + len, tcap - len, "%s%s", len ? " and " : "", one);
        len = w < 0 || (size_t)w >= tcap - len ? tcap - 1 : len + (size_t)w;
        judged += ok >= 0;
        failed += ok == 0;
    }
    if (judged)
        *verdict = failed ? "FAIL" : "PASS";
}

static void rep_cell(const struct bench_results *r, size_t e, size_t m, char *out, size_t cap)
{
    double v;
    int st = rep_median(r, e, m, &v);
    if (st == BENCH_V_OK)
        rep_fmt(m, v, out, cap);
    else
        snprintf(out, cap, "%s", st == BENCH_V_UNSUPPORTED ? "n/a"
                                 : st == BENCH_V_FAILED ? "error" : "");
}

static void rep_row(FILE *f, const struct bench_params *p, const struct bench_results *r, size_t m)
{
    char cell[64], tgt[320];
    double cal = 0, best = 0;
    int ce = rep_engine_index(r, "calypso");
    int have_cal = ce >= 0 && rep_median(r, (size_t)ce, m, &cal) == BENCH_V_OK;
    int be = rep_best_peer(r, m, &best);
    const char *verdict;
    fprintf(f, "| %s | %s |", bench_metrics[m].label, bench_metrics[m].unit);
    for (size_t e = 0; e < r->nengines; e++) {
        rep_cell(r, e, m, cell, sizeof cell);
        fprintf(f, " %s |", cell);
    }
    fprintf(f, " %s |", be >= 0 ? r->eng[be]->name : "-");
    double x = bench_metrics[m].lower ? best / (cal > 0 ? cal : 1) : cal / (best > 0 ? best : 1);
    if (have_cal && be >= 0 && best > 0 && cal > 0)
        fprintf(f, x >= 0.01 ? " %.2fx |" : " <0.01x |", x);
    else
        fprintf(f, " - |");
    rep_verdict(p, r, m, have_cal, cal, tgt, sizeof tgt, &verdict);
    fprintf(f, " %s | %s |\n", tgt[0] ? tgt : "-", verdict[0] ? verdict : "-");
}

static int rep_any(const struct bench_results *r, size_t m)
{
    double v;
    for (size_t e = 0; e < r->nengines; e++)
        if (rep_median(r, e, m, &v) != BENCH_V_NONE)
            return 1;
    return 0;
}

static void rep_table(FILE *f, const struct bench_params *p, const struct bench_results *r)
{
    int any = 0;
    for (size_t m = 0; m < bench_nmetrics; m++)
        any |= !bench_metrics[m].latency && rep_any(r, m);
    if (!any)
        return;                         /* only the latency group ran */
    fprintf(f, "| workload | unit |");
    for (size_t e = 0; e < r->nengines; e++)
        fprintf(f, " %s |", r->eng[e]->name);
    fprintf(f, " best peer | calypso/best | target | result |\n|---|---|");
    for (size_t e = 0; e < r->nengines; e++)
        fprintf(f, "---:|");
    fprintf(f, "---|---:|---|---|\n");
    for (size_t m = 0; m < bench_nmetrics; m++)
        if (!bench_metrics[m].latency && rep_any(r, m))
            rep_row(f, p, r, m);
}

/* The latency table: one row per workload and engine that has figures;
 * the columns are the percentiles (each the median over the runs). */
static void rep_latency_table(FILE *f, const struct bench_results *r)
{
    int header = 0;
    for (size_t m = 0; m + 3 < bench_nmetrics; m++) {
        if (!bench_metrics[m].latency || strstr(bench_metrics[m].name, "_p50") == NULL)
            continue;
        for (size_t e = 0; e < r->nengines; e++) {
            double v;
            if (rep_median(r, e, m, &v) != BENCH_V_OK)
                continue;
            if (!header) {
                fprintf(f, "| latency (us) | engine | p50 | p99 | p99.9 | max |\n"
                           "|---|---|---:|---:|---:|---:|\n");
                header = 1;
            }
            fprintf(f, "| %s | %s |", bench_metrics[m].label, r->eng[e]->name);
            for (size_t q = 0; q < 4; q++) {
                char cell[64];
                rep_cell(r, e, m + q, cell, sizeof cell);
                fprintf(f, " %s |", cell);
            }
            fprintf(f, "\n");
        }
    }
}


/* The run's parameters, as markdown bullets. */
static void rep_params(FILE *f, const struct bench_params *p)
{
    fprintf(f, "- Workloads: N = %llu keys of 16 bytes, 100-byte values; "
               "1 KiB values with N = %llu and 16 KiB values with N = %llu "
               "(N scaled down so that values stay within %.0f MiB); "
               "durable writes bounded to %g s or %llu ops per writer; fillrandom and the "
               "main group's overwrite always complete (every key written, then every key "
               "overwritten); every other workload stops after %g s if its N operations are "
               "not done by then (the rate is over the operations done).\n",
            (unsigned long long)p->n,
            (unsigned long long)bench_group_n(p, &bench_groups[3]),
            (unsigned long long)bench_group_n(p, &bench_groups[4]),
            (double)p->big_bytes / (1 << 20), p->durable_secs,
            (unsigned long long)p->durable_ops, p->work_secs);
    fprintf(f, "- States: \"as filled\" rows run right after fillrandom in the same process "
               "(no merge, no reopen, no sync: the database as a user has it after loading "
               "it); \"after merge\" rows run after the overwrite of every key, calypso's "
               "merge (calypso_merge; peers have none and compact on their own, so their "
               "rows are the same database after overwrite and reopen) and a reopen. Close "
               "and open are timed separately after the fill and after the overwrite, "
               "before anything else syncs.\n");
    if (p->n_large)
        fprintf(f, "- N-large rows: N = %llu keys, point operations and open only "
                   "(fillrandom, reads as filled, multi-get, close and open, overwrite "
                   "bounded by time).\n", (unsigned long long)p->n_large);
    fprintf(f, "- Each figure is the median of %d runs; each engine and workload group "
               "runs in a process of its own, engines round-robin across runs.\n", p->reps);
}

/* The fdatasync probe and the tail-latency table, as markdown. */
static void rep_latency_body(FILE *f, const struct bench_results *r)
{
    double p99 = 0, us = rep_fsync(r, &p99);
    fprintf(f, "\nTail latency of single operations (the latency group: one put or get "
               "per call, each timed, in a database of its own). The fill puts N keys in "
               "random order, every engine alike, bounded by the time limit; calypso runs it "
               "with max_datafile_size = N x 128 / 10 bytes so that the fill seals about ten "
               "datafiles (peers' tails hold their own memtable flushes and compactions). "
               "Then, calypso alone (peers have no merge): every key overwritten, gets timed "
               "while calypso_merge runs on another thread; every key overwritten again, puts "
               "timed while the next merge runs; merged once more (untimed) and reopened with max_open_files = 4, random "
               "gets timed while most datafiles are cold (not mapped):\n\n");
    rep_latency_table(f, r);
    if (us > 0)
        fprintf(f, "\nfdatasync of a 100-byte overwrite inside a written block (measured "
                   "in this run next to each durable group): median %.0f us, p99 %.0f us; "
                   "four writers sharing every sync could reach 4 / %.0f us = %.0f writes/s.\n",
                us, p99, us, 4e6 / us);
}

/* >> files --------------------------------------------------------------------------- */

static FILE *rep_open(const struct bench_params *p, const char *name, char *path, size_t cap)
{
    snprintf(path, cap, "%s/%s", p->results, name);
    FILE *f = fopen(path, "w");
    if (!f)
        fprintf(stderr, "bench: cannot write %s\n", path);
    return f;
}

/* The machine's fdatasync probe as a CSV row of its own (engine "machine"). */
static void rep_csv_fsync(FILE *f, const struct bench_results *r, const char *metric,
                          const double *v)
{
    double med = rep_fsync(r, NULL);
    if (med <= 0)
        return;
    if (strcmp(metric, "fdatasync_p99") == 0)
        rep_fsync(r, &med);
    fprintf(f, "machine,%s,us,%.6g", metric, med);
    for (int i = 0; i < r->reps; i++) {
        if (v[i] > 0)
            fprintf(f, ",%.6g", v[i]);
        else
            fprintf(f, ",");
    }
    fprintf(f, ",ok\n");
}

static int rep_csv(const struct bench_params *p, const struct bench_results *r)
{
    char path[4096];
    FILE *f = rep_open(p, "bench.csv", path, sizeof path);
    if (!f)
        return -1;
    fprintf(f, "engine,metric,unit,median");
    for (int i = 0; i < r->reps; i++)
        fprintf(f, ",run%d", i + 1);
    fprintf(f, ",status\n");
    static const char *const st_name[] = { "none", "ok", "unsupported", "error" };
    for (size_t e = 0; e < r->nengines; e++)
        for (size_t m = 0; m < bench_nmetrics; m++) {
            double med = 0;
            int st = rep_median(r, e, m, &med);
            if (st == BENCH_V_NONE)
                continue;
            const char *unit = strcmp(bench_metrics[m].unit, "MiB") == 0 ? "bytes" : bench_metrics[m].unit;
            fprintf(f, "%s,%s,%s,", r->eng[e]->name, bench_metrics[m].name, unit);
            if (st == BENCH_V_OK)
                fprintf(f, "%.6g", med);
            for (int i = 0; i < r->reps; i++) {
                if (r->state[e][m][i] == BENCH_V_OK)
                    fprintf(f, ",%.6g", r->value[e][m][i]);
                else
                    fprintf(f, ",");
            }
            fprintf(f, ",%s\n", st_name[st]);
        }
    rep_csv_fsync(f, r, "fdatasync_p50", r->fsync_us);
    rep_csv_fsync(f, r, "fdatasync_p99", r->fsync_p99_us);
    return fclose(f) == 0 ? 0 : -1;
}

static void rep_engine_notes(FILE *f, const struct bench_results *r)
{
    for (size_t e = 0; e < r->nengines; e++) {
        const struct bench_adapter *a = r->eng[e];
        fprintf(f, "- **%s** %s: %s Durable mode: %s\n", a->name,
                a->version ? a->version() : "", a->config,
                a->durable ? a->durable : "none (reported n/a).");
    }
}

static void rep_md_body(FILE *f, const struct bench_params *p, const struct bench_results *r)
{
    fprintf(f, "%s", r->machine);
    rep_params(f, p);
    fprintf(f, "- Whole run: %.0f s.\n\n", r->seconds);
    rep_table(f, p, r);
    fprintf(f, "\nn/a: the engine has no such operation (no order, no sync-on-write "
               "mode, no merge, no keydir). calypso/best above 1 means calypso is "
               "better (faster, or smaller for ms, MiB and B/key). Targets are ratios "
               "to figures of the same run; \"own\" compares calypso with its own figure "
               "of another row; a hash engine is a peer without order (tkrzw-hash, "
               "kc-hash).\n");
    rep_latency_body(f, r);
}

static int rep_md(const struct bench_params *p, const struct bench_results *r)
{
    char path[4096];
    FILE *f = rep_open(p, "bench.md", path, sizeof path);
    if (!f)
        return -1;
    fprintf(f, "# calypso benchmark%s\n\n", p->quick ? " (quick)" : "");
    rep_md_body(f, p, r);
    fprintf(f, "\nEngines as configured:\n\n");
    rep_engine_notes(f, r);
    return fclose(f) == 0 ? 0 : -1;
}

/* >> charts ----------------------------------------------------------------------------- */

#define REP_CHART_MAX 8

static const struct rep_chart {
    const char *file, *title, *ylabel;
    int logy;
    const char *metrics[REP_CHART_MAX];
} rep_charts[] = {
    { "writes", "Writes (16 B keys, 100 B values)", "ops/s", 1,
      { "fillseq", "fillrandom", "overwrite", "deleterandom" } },
    { "reads", "Point reads (_unmerged: as filled; the others after a merge)", "ops/s, keys/s (getmany)", 1,
      { "readrandom_unmerged", "readrandom", "readmissing_unmerged", "readmissing",
        "getmany_unmerged", "getmany", "mixed_unmerged", "mixed" } },
    { "scans", "Ordered reads (_unmerged: as filled; the others after a merge)",
      "keys/s (walks), scans/s (prefix)", 1,
      { "readseq_unmerged", "readseq", "walkget_unmerged", "walkget",
        "prefix100_unmerged", "prefix100", "prefixget_unmerged", "prefixget" } },
    { "openclose", "Close and open (lower is better)", "ms", 1,
      { "close_fill_ms", "open_fill_ms", "close_over_ms", "open_over_ms", "open_ms" } },
    { "durable", "Durable writes (every write synced)", "ops/s", 1,
      { "durable1", "durable4" } },
    { "values", "Big values", "ops/s", 1,
      { "fillrandom_1k", "readrandom_1k", "fillrandom_16k", "readrandom_16k" } },
    { "footprint", "Disk and memory (lower is better)", "MiB", 0,
      { "disk_fill", "disk_overwrite", "disk_merge", "rss" } },
    { "large", "N-large: point operations", "ops/s, keys/s (getmany)", 1,
      { "fillrandom_large", "readrandom_large", "readmissing_large", "getmany_large",
        "overwrite_large" } },
};

/* The chart's data: one row per metric, one column per engine. Returns
 * 1 when no engine has a figure for it (nothing to draw). */
static int rep_chart_data(const char *path, const struct bench_results *r,
                          const struct rep_chart *c)
{
    int any = 0;
    double v;
    for (size_t i = 0; i < REP_CHART_MAX && c->metrics[i]; i++)
        for (size_t e = 0; e < r->nengines; e++)
            any |= rep_median(r, e, (size_t)bench_metric_find(c->metrics[i]), &v) == BENCH_V_OK;
    if (!any)
        return 1;
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    fprintf(f, "workload");
    for (size_t e = 0; e < r->nengines; e++)
        fprintf(f, " %s", r->eng[e]->name);
    fprintf(f, "\n");
    for (size_t i = 0; i < REP_CHART_MAX && c->metrics[i]; i++) {
        int m = bench_metric_find(c->metrics[i]);
        fprintf(f, "%s", c->metrics[i]);
        for (size_t e = 0; e < r->nengines; e++) {
            if (rep_median(r, e, (size_t)m, &v) == BENCH_V_OK)
                fprintf(f, " %.6g", rep_display((size_t)m, v));
            else
                fprintf(f, " -");
        }
        fprintf(f, "\n");
    }
    return fclose(f);
}

static int rep_gnuplot(const struct bench_params *p, const char *expr)
{
    pid_t pid = fork();
    if (pid == 0) {
        execlp("gnuplot", "gnuplot", "-e", expr, p->plot, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static int rep_charts_all(const struct bench_params *p, const struct bench_results *r)
{
    char dat[4096], png[4096], expr[12288];
    for (size_t i = 0; i < sizeof rep_charts / sizeof rep_charts[0]; i++) {
        const struct rep_chart *c = &rep_charts[i];
        snprintf(dat, sizeof dat, "%s/%s.dat", p->dir, c->file);
        snprintf(png, sizeof png, "%s/%s.png", p->results, c->file);
        int none = rep_chart_data(dat, r, c);
        if (none < 0)
            return -1;
        if (none) {
            unlink(png);                  /* no stale chart from an older run */
            continue;
        }
        snprintf(expr, sizeof expr,
                 "datafile='%s'; outfile='%s'; ttl='%s%s'; ylab='%s'; logy=%d; ncols=%zu",
                 dat, png, c->title, p->quick ? " (quick run)" : "", c->ylabel, c->logy,
                 r->nengines);
        int rc = rep_gnuplot(p, expr);
        unlink(dat);
        if (rc != 0) {
            fprintf(stderr, "bench: gnuplot failed for %s (is gnuplot-nox installed?)\n", png);
            return -1;
        }
    }
    return 0;
}

/* >> README section ------------------------------------------------------------------------ */

static int rep_readme(const struct bench_params *p, const struct bench_results *r)
{
    char path[4096];
    FILE *f = rep_open(p, "README-section.md", path, sizeof path);
    if (!f)
        return -1;
    fprintf(f, "## Benchmarks\n\n"
               "calypso against the engines a user would pick instead, on one machine, "
               "each in its natural fast configuration. Reproduce with `make %s` "
               "(%.0f minutes here; `make bench-quick` runs N = 100,000 in about four "
               "minutes, `make bench` N = 1,000,000; `BENCH_N_LARGE=10000000 make bench` adds "
               "the point operations and open at 10M keys). The harness is `bench/harness*.c` "
               "with one adapter per engine in `bench/adapters/`; all figures are in "
               "`%s/bench.csv`.\n\n", p->quick ? "bench-quick" : "bench",
            r->seconds / 60, p->results);
    fprintf(f, "What it measures: every read workload in two states, labelled: \"as filled\" "
               "(right after the random fill, in the process that wrote it, before any merge, "
               "reopen or sync: the database as a user has it) and \"after merge\" (after the "
               "overwrite of every key, calypso_merge and a reopen); point reads, misses, "
               "multi-get of 16 keys a call (calypso_get_many), the cursor walk, 100-key prefix "
               "scans, and CalypsoDB's walk-then-get pattern (calypso_fold or calypso_scan with "
               "calypso_get_buf in the callback; each peer's cursor or iterator with a point get "
               "of each key); close and open timed separately after the fill and after the "
               "overwrite; tail latency (p50, p99, p99.9, max) of puts across datafile "
               "rotations, puts and gets during a merge and gets while most files are cold, in "
               "a table of their own; and the fdatasync latency of the machine, measured in the "
               "same run, that the durable-write target is set against.\n\n");
    rep_md_body(f, p, r);
    fprintf(f, "\n![writes](%s/writes.png)\n![reads](%s/reads.png)\n![scans](%s/scans.png)\n\n"
               "More charts: [close and open](%s/openclose.png), [durable writes](%s/durable.png), "
               "[big values](%s/values.png), [disk and memory](%s/footprint.png)%s%s%s.\n\n",
            p->results, p->results, p->results, p->results, p->results, p->results, p->results,
            p->n_large ? ", [N-large](" : "", p->n_large ? p->results : "",
            p->n_large ? "/large.png)" : "");
    fprintf(f, "### What each engine promises\n\n"
               "The non-durable workloads compare engines that all skip the sync on "
               "write, but what survives a crash still differs: calypso (SYNC_NONE), "
               "LevelDB, RocksDB and SQLite (WAL, synchronous=NORMAL) have handed each "
               "write to the kernel and lose nothing when the process dies, only on "
               "power loss (SQLite then rolls back the last transactions); LMDB with "
               "MDB_NOSYNC survives a process crash, but a system crash can lose the last "
               "transactions or corrupt the database (lmdb.h); Tkrzw and Kyoto Cabinet "
               "update their files in place through a memory map, are consistent only "
               "after a clean close or a sync, and after a crash rebuild on open. The "
               "durable workloads use each engine's way of making every acknowledged "
               "write survive power loss:\n\n");
    rep_engine_notes(f, r);
    fprintf(f, "\nFairness notes: LMDB and SQLite fills, overwrites and deletes are batched "
               "%d writes per transaction (as a user of a transactional engine would); "
               "the other engines write one key per call. Mixed, durable and latency-group "
               "writes are one write per call (per transaction) everywhere. "
               "States: the \"as filled\" rows are the database right after the random fill, "
               "in the process that wrote it, before any merge, reopen or sync: calypso's "
               "records lie in the order they were written (random key order), so its "
               "ordered walks read records scattered over the file; calypso never merges on "
               "its own here (auto-merge needs 60%% dead bytes; fill and overwrite leave "
               "50%%). The \"after merge\" rows follow the overwrite of every key, "
               "calypso_merge (which rewrites live records in key order) and a reopen; "
               "peers have no merge: their rows are the same database after the overwrite "
               "and a reopen, with whatever compaction they ran on their own (LevelDB and "
               "RocksDB compact in the background at any time). Ordered reads: the cursor "
               "walk and prefix scan read keys and values from each engine's cursor or "
               "iterator (calypso: calypso_cursor_seek_prefix + calypso_cursor_next + "
               "calypso_cursor_value); \"walk + get\" is the pattern of a user who walks "
               "keys and reads each value with a point get (calypso: calypso_fold or "
               "calypso_scan with calypso_get_buf in the callback; LMDB: cursor + mdb_get in "
               "the same transaction; LevelDB, RocksDB: iterator + Get; SQLite: key-only "
               "range query + the get statement; Tkrzw, Kyoto Cabinet trees: key iterator + "
               "get). Multi-get reads 16 random keys a call: calypso_get_many, RocksDB's "
               "batched MultiGet, LMDB's 16 mdb_gets in one read transaction; engines "
               "without a multi-get make 16 single gets. Close is each engine's own close "
               "and does what that engine does at close: calypso fdatasyncs every datafile "
               "(SYNC_NONE defers all syncing to it), LevelDB and RocksDB leave their "
               "memtable in the log, LMDB with MDB_NOSYNC syncs nothing, Tkrzw and Kyoto "
               "Cabinet write back their maps; open after fill + overwrite is timed before "
               "the merge: a sealed datafile's hint lists its overwritten records too "
               "(the active file's, written at close, lists live ones only). "
               "Peak RSS counts file pages an engine maps (LMDB, Tkrzw, Kyoto Cabinet) and "
               "the harness's own key permutations (12 bytes per key). Bytes on disk are "
               "blocks allocated (st_blocks) after a sync, measured after the reopen, so "
               "RocksDB's figure includes the space it preallocates for its WAL. Open times "
               "of LevelDB and RocksDB include replaying the log of writes still in the "
               "memtable at close.\n", BENCH_BATCH);
    return fclose(f) == 0 ? 0 : -1;
}

int bench_report(const struct bench_params *p, const struct bench_results *r)
{
    printf("\n");
    rep_params(stdout, p);
    printf("- Whole run: %.0f s.\n\n", r->seconds);
    rep_table(stdout, p, r);
    rep_latency_body(stdout, r);
    fflush(stdout);
    int rc = 0;
    rc |= rep_csv(p, r);
    rc |= rep_md(p, r);
    rc |= rep_readme(p, r);
    rc |= rep_charts_all(p, r);
    printf("\nresults: %s/bench.md, bench.csv, README-section.md, *.png\n", p->results);
    return rc ? -1 : 0;
}
