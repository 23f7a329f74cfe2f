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

const struct bench_metric bench_metrics[] = {
    { "fillseq",        "main",     "fillseq",                          "ops/s",   0 },
    { "fillrandom",     "main",     "fillrandom",                       "ops/s",   0 },
    { "overwrite",      "main",     "overwrite",                        "ops/s",   0 },
    { "readrandom",     "main",     "readrandom (hits)",                "ops/s",   0 },
    { "readmissing",    "main",     "readmissing",                      "ops/s",   0 },
    { "readseq",        "main",     "readseq (ordered, keys+values)",   "keys/s",  0 },
    { "prefix100",      "main",     "prefix scan, 100 keys",            "scans/s", 0 },
    { "mixed",          "main",     "mixed 90% read, 2 threads",        "ops/s",   0 },
    { "deleterandom",   "main",     "deleterandom",                     "ops/s",   0 },
    { "durable1",       "durable",  "durable writes, 1 writer",         "ops/s",   0 },
    { "durable4",       "durable",  "durable writes, 4 writers",        "ops/s",   0 },
    { "fillrandom_1k",  "value1k",  "fillrandom, 1 KiB values",         "ops/s",   0 },
    { "readrandom_1k",  "value1k",  "readrandom, 1 KiB values",         "ops/s",   0 },
    { "fillrandom_16k", "value16k", "fillrandom, 16 KiB values",        "ops/s",   0 },
    { "readrandom_16k", "value16k", "readrandom, 16 KiB values",        "ops/s",   0 },
    { "open_ms",        "main",     "open filled db",                   "ms",      1 },
    { "disk_fill",      "main",     "disk after fill",                  "MiB",     1 },
    { "disk_overwrite", "main",     "disk after overwrite",             "MiB",     1 },
    { "disk_merge",     "main",     "disk after overwrite + merge",     "MiB",     1 },
    { "keydir_bpk",     "main",     "keydir bytes per key",             "B/key",   1 },
    { "rss",            "main",     "peak RSS (main group)",            "MiB",     1 },
};
const size_t bench_nmetrics = sizeof bench_metrics / sizeof bench_metrics[0];

int bench_metric_find(const char *name)
{
    for (size_t i = 0; i < bench_nmetrics; i++)
        if (strcmp(bench_metrics[i].name, name) == 0)
            return (int)i;
    return -1;
}

/* What calypso aims for. BEST: calypso / best peer >= x. LMDB: calypso /
 * lmdb >= x. MAX: calypso <= x (in the displayed unit). LIVE: calypso <= x
 * times the live bytes (N keys of 16 + 100 bytes). */
enum { T_BEST, T_LMDB, T_MAX, T_LIVE };
static const struct bench_target {
    const char *metric;
    int kind;
    double x;
} bench_targets[] = {
    { "fillrandom",  T_BEST, 1.2 },  { "overwrite",   T_BEST, 1.2 },
    { "readrandom",  T_BEST, 1.2 },  { "readmissing", T_BEST, 1.0 },
    { "readseq",     T_LMDB, 0.5 },  { "prefix100",   T_LMDB, 1.0 },
    { "durable1",    T_BEST, 1.0 },  { "durable4",    T_BEST, 2.0 },
    { "open_ms",     T_MAX, 200 },   { "keydir_bpk",  T_MAX, 48 },
    { "disk_merge",  T_LIVE, 1.35 },
};

static const struct bench_target *rep_target(const char *metric)
{
    for (size_t i = 0; i < sizeof bench_targets / sizeof bench_targets[0]; i++)
        if (strcmp(bench_targets[i].metric, metric) == 0)
            return &bench_targets[i];
    return NULL;
}

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

/* The best peer's median for metric m: index in *best_e, or -1. */
static int rep_best_peer(const struct bench_results *r, size_t m, double *best)
{
    int be = -1;
    for (size_t e = 0; e < r->nengines; e++) {
        double v;
        if (rep_is_calypso(r, e) || rep_median(r, e, m, &v) != BENCH_V_OK)
            continue;
        if (be < 0 || (bench_metrics[m].lower ? v < *best : v > *best)) {
            *best = v;
            be = (int)e;
        }
    }
    return be;
}

static int rep_engine_index(const struct bench_results *r, const char *name)
{
    for (size_t e = 0; e < r->nengines; e++)
        if (strcmp(r->eng[e]->name, name) == 0)
            return (int)e;
    return -1;
}

/* >> the table --------------------------------------------------------------------- */

/* Target text and verdict for calypso's median cal of metric m. */
static void rep_verdict(const struct bench_params *p, const struct bench_results *r, size_t m,
                        int have_cal, double cal, char *tgt, size_t tcap, const char **verdict)
{
    const struct bench_target *t = rep_target(bench_metrics[m].name);
    double ref = 0, x = 0;
    int ok = 0, have = 0;
    *verdict = "";
    tgt[0] = '\0';
    if (!t)
        return;
    if (t->kind == T_BEST) {
        snprintf(tgt, tcap, ">= %.1fx best peer", t->x);
        have = rep_best_peer(r, m, &ref) >= 0 && ref > 0;
        x = cal / ref;
    } else if (t->kind == T_LMDB) {
        int le = rep_engine_index(r, "lmdb");
        snprintf(tgt, tcap, ">= %.1fx lmdb", t->x);
        have = le >= 0 && rep_median(r, (size_t)le, m, &ref) == BENCH_V_OK && ref > 0;
        x = cal / ref;
    } else if (t->kind == T_MAX) {
        snprintf(tgt, tcap, "<= %g %s", t->x, bench_metrics[m].unit);
        have = 1;
        ok = rep_display(m, cal) <= t->x;
    } else {
        double live = (double)p->n * (16 + 100);
        snprintf(tgt, tcap, "<= %.2fx live (%.0f MiB)", t->x, live / (1 << 20));
        have = 1;
        ok = cal <= t->x * live;
    }
    if (t->kind == T_BEST || t->kind == T_LMDB)
        ok = x >= t->x;
    if (have_cal && have)
        *verdict = ok ? "PASS" : "FAIL";
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
    char cell[64], tgt[96];
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

static void rep_table(FILE *f, const struct bench_params *p, const struct bench_results *r)
{
    fprintf(f, "| workload | unit |");
    for (size_t e = 0; e < r->nengines; e++)
        fprintf(f, " %s |", r->eng[e]->name);
    fprintf(f, " best peer | calypso/best | target | result |\n|---|---|");
    for (size_t e = 0; e < r->nengines; e++)
        fprintf(f, "---:|");
    fprintf(f, "---|---:|---|---|\n");
    for (size_t m = 0; m < bench_nmetrics; m++) {
        double v;
        int any = 0;
        for (size_t e = 0; e < r->nengines; e++)
            any |= rep_median(r, e, m, &v) != BENCH_V_NONE;
        if (any)
            rep_row(f, p, r, m);
    }
}

/* The run's parameters, as markdown bullets. */
static void rep_params(FILE *f, const struct bench_params *p)
{
    fprintf(f, "- Workloads: N = %llu keys of 16 bytes, 100-byte values; "
               "1 KiB values with N = %llu and 16 KiB values with N = %llu "
               "(N scaled down so that values stay within %.0f MiB); "
               "durable writes bounded to %g s or %llu ops per writer; every other "
               "workload but fillrandom stops after %g s if its N operations are not "
               "done by then (the rate is over the operations done).\n",
            (unsigned long long)p->n,
            (unsigned long long)bench_group_n(p, &bench_groups[2]),
            (unsigned long long)bench_group_n(p, &bench_groups[3]),
            (double)p->big_bytes / (1 << 20), p->durable_secs,
            (unsigned long long)p->durable_ops, p->work_secs);
    fprintf(f, "- Each figure is the median of %d runs; each engine and workload group "
               "runs in a process of its own, engines round-robin across runs.\n", p->reps);
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
               "better (faster, or smaller for ms, MiB and B/key).\n");
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

static const struct rep_chart {
    const char *file, *title, *ylabel;
    int logy;
    const char *metrics[5];
} rep_charts[] = {
    { "writes", "Writes (16 B keys, 100 B values)", "ops/s", 1,
      { "fillseq", "fillrandom", "overwrite", "deleterandom" } },
    { "reads", "Point reads", "ops/s", 1, { "readrandom", "readmissing", "mixed" } },
    { "scans", "Ordered scans", "keys/s (readseq), scans/s (prefix)", 1,
      { "readseq", "prefix100" } },
    { "durable", "Durable writes (every write synced)", "ops/s", 1,
      { "durable1", "durable4" } },
    { "values", "Big values", "ops/s", 1,
      { "fillrandom_1k", "readrandom_1k", "fillrandom_16k", "readrandom_16k" } },
    { "footprint", "Disk and memory (lower is better)", "MiB", 0,
      { "disk_fill", "disk_overwrite", "disk_merge", "rss" } },
};

/* The chart's data: one row per metric, one column per engine. Returns
 * 1 when no engine has a figure for it (nothing to draw). */
static int rep_chart_data(const char *path, const struct bench_results *r,
                          const struct rep_chart *c)
{
    int any = 0;
    double v;
    for (size_t i = 0; i < 5 && c->metrics[i]; i++)
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
    for (size_t i = 0; i < 5 && c->metrics[i]; i++) {
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
               "(%.0f minutes here; `make bench-quick` runs N = 100,000 in about two "
               "minutes, `make bench` N = 1,000,000). The harness is `bench/harness*.c` "
               "with one adapter per engine in `bench/adapters/`; all figures are in "
               "`%s/bench.csv`.\n\n", p->quick ? "bench-quick" : "bench",
            r->seconds / 60, p->results);
    rep_md_body(f, p, r);
    fprintf(f, "\n![writes](%s/writes.png)\n![reads](%s/reads.png)\n\n"
               "More charts: [scans](%s/scans.png), [durable writes](%s/durable.png), "
               "[big values](%s/values.png), [disk and memory](%s/footprint.png).\n\n",
            p->results, p->results, p->results, p->results, p->results, p->results);
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
               "the other engines write one key per call. Mixed and durable writes are "
               "one write per call (per transaction) everywhere. calypso's scans step a "
               "cursor, which reads each value where its key points; the main group merges "
               "calypso's files after the overwrite (the merge is calypso's compaction, "
               "as peers compact on their own), and a merge writes records in key order, so "
               "the scans that follow read the files front to back. Peak "
               "RSS counts file pages an engine maps (LMDB, Tkrzw, Kyoto Cabinet) and the "
               "harness's own key permutations (12 bytes per key). Bytes on disk are blocks "
               "allocated (st_blocks), so RocksDB's figure includes the space it "
               "preallocates for its WAL. Open times of LevelDB and RocksDB include "
               "replaying the log of writes still in the memtable at close.\n", BENCH_BATCH);
    return fclose(f) == 0 ? 0 : -1;
}

int bench_report(const struct bench_params *p, const struct bench_results *r)
{
    printf("\n");
    rep_params(stdout, p);
    printf("- Whole run: %.0f s.\n\n", r->seconds);
    rep_table(stdout, p, r);
    fflush(stdout);
    int rc = 0;
    rc |= rep_csv(p, r);
    rc |= rep_md(p, r);
    rc |= rep_readme(p, r);
    rc |= rep_charts_all(p, r);
    printf("\nresults: %s/bench.md, bench.csv, README-section.md, *.png\n", p->results);
    return rc ? -1 : 0;
}
