/*
 * harness.c: the benchmark's entry point: the command line, the adapter
 * table and the workload groups.
 *
 *   harness [options]                       the driver: every engine, every
 *                                           group, medians, table, charts
 *   harness run ENGINE GROUP DIR [options]  one child: one engine, one group
 *   harness list                            the engines built in
 *
 * Options: --quick, --n N, --reps R, --dir D, --results R, --plot FILE,
 * --engines a,b, --groups g,h, --durable-secs S, --durable-ops K,
 * --big-bytes B, --work-secs S, --timeout S, --n-large N (0: the large
 * group is not run). The driver passes its options on to every
 * child so that both sides agree on N and the bounds.
 *
 * The adapter table: mk/bench.mk compiles this file with
 * -DBENCH_ADAPTER_FILES='X(calypso) X(lmdb) ...', one X per file in
 * bench/adapters/, each of which defines bench_adapters_<file>[].
 */
#define _GNU_SOURCE
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* >> adapter table ---------------------------------------------------------- */

#ifndef BENCH_ADAPTER_FILES
#error "build with -DBENCH_ADAPTER_FILES='X(file) ...' (see mk/bench.mk)"
#endif

#define BENCH_DECLARE_(file) extern const struct bench_adapter *const bench_adapters_##file[];
BENCH_ADAPTER_FILES(BENCH_DECLARE_)
#undef BENCH_DECLARE_

#define BENCH_FILE_(file) bench_adapters_##file,
static const struct bench_adapter *const *const bench_files[] = {
    BENCH_ADAPTER_FILES(BENCH_FILE_)
};
#undef BENCH_FILE_

#define BENCH_MAX_ADAPTERS 32

/* The adapters of every file, flattened, NULL-terminated. */
const struct bench_adapter *const *bench_adapter_list(void)
{
    static const struct bench_adapter *list[BENCH_MAX_ADAPTERS + 1];
    static size_t n;
    if (n == 0) {
        for (size_t f = 0; f < sizeof bench_files / sizeof bench_files[0]; f++)
            for (size_t i = 0; bench_files[f][i] && n < BENCH_MAX_ADAPTERS; i++)
                list[n++] = bench_files[f][i];
    }
    return list;
}

const struct bench_adapter *bench_adapter_find(const char *name)
{
    for (const struct bench_adapter *const *a = bench_adapter_list(); *a; a++)
        if (strcmp((*a)->name, name) == 0)
            return *a;
    return NULL;
}

int bench_errf(const char *engine, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "bench: %s: ", engine);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BENCH_ERR;
}

double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* >> workload groups -------------------------------------------------------- */

/* name, value size, durable, metric suffix, large. "main" holds most
 * workloads (see harness_run.c); "latency" times single operations; the
 * value groups repeat fill and read with big values; "large" repeats the
 * point operations and open at N = --n-large. */
const struct bench_group bench_groups[] = {
    { "main",     100,   0, "",       0 },
    { "latency",  100,   0, "",       0 },
    { "durable",  100,   1, "",       0 },
    { "value1k",  1024,  0, "_1k",    0 },
    { "value16k", 16384, 0, "_16k",   0 },
    { "large",    100,   0, "_large", 1 },
};
const size_t bench_ngroups = sizeof bench_groups / sizeof bench_groups[0];

uint64_t bench_group_n(const struct bench_params *p, const struct bench_group *g)
{
    uint64_t n = g->large ? p->n_large : p->n;
    if (g->large)
        return n;
    if (g->vsize > 100 && n * g->vsize > p->big_bytes)
        n = p->big_bytes / g->vsize;
    return n < 100 ? 100 : n;
}

static const struct bench_group *bench_group_find(const char *name)
{
    for (size_t i = 0; i < bench_ngroups; i++)
        if (strcmp(bench_groups[i].name, name) == 0)
            return &bench_groups[i];
    return NULL;
}

/* >> command line ----------------------------------------------------------- */

static void bench_usage(void)
{
    fprintf(stderr,
        "usage: harness [--quick] [--n N] [--reps R] [--dir D] [--results R]\n"
        "               [--plot FILE] [--engines a,b] [--groups g,h]\n"
        "               [--durable-secs S] [--durable-ops K] [--big-bytes B]\n"
        "               [--work-secs S] [--timeout S] [--n-large N]\n"
        "       harness run ENGINE GROUP DIR [options]\n"
        "       harness list\n");
}

static void bench_defaults(struct bench_params *p, int quick)
{
    memset(p, 0, sizeof *p);
    p->quick = quick;
    p->n = quick ? 100000 : 1000000;
    p->reps = 3;
    p->durable_secs = quick ? 0.3 : 2.0;
    p->durable_ops = quick ? 300 : 2000;
    p->timeout_secs = quick ? 120 : 1200;
    p->work_secs = quick ? 20 : 10;
    p->dir = "build/bench-tmp";
    p->results = "bench/results";
    p->plot = "bench/plot.gp";
}

/* Parses "--opt value" pairs from argv[i..]; positional words go to pos[].
 * Returns the number of positional words, or -1 on a bad option. */
static int bench_parse(int argc, char **argv, struct bench_params *p,
                       char **pos, int maxpos)
{
    int npos = 0, big_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        if (strcmp(o, "--quick") == 0)
            continue;                      /* applied before, by main() */
        if (strncmp(o, "--", 2) != 0) {
            if (npos == maxpos)
                return -1;
            pos[npos++] = argv[i];
            continue;
        }
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        if (strcmp(o, "--n") == 0) p->n = strtoull(v, NULL, 10);
        else if (strcmp(o, "--reps") == 0) p->reps = atoi(v);
        else if (strcmp(o, "--dir") == 0) p->dir = v;
        else if (strcmp(o, "--results") == 0) p->results = v;
        else if (strcmp(o, "--plot") == 0) p->plot = v;
        else if (strcmp(o, "--engines") == 0) p->engines = v;
        else if (strcmp(o, "--groups") == 0) p->groups = v;
        else if (strcmp(o, "--durable-secs") == 0) p->durable_secs = atof(v);
        else if (strcmp(o, "--durable-ops") == 0) p->durable_ops = strtoull(v, NULL, 10);
        else if (strcmp(o, "--big-bytes") == 0) { p->big_bytes = strtoull(v, NULL, 10); big_set = 1; }
        else if (strcmp(o, "--timeout") == 0) p->timeout_secs = atof(v);
        else if (strcmp(o, "--work-secs") == 0) p->work_secs = atof(v);
        else if (strcmp(o, "--n-large") == 0) p->n_large = strtoull(v, NULL, 10);
        else return -1;
    }
    if (!big_set)
        p->big_bytes = p->n * 128;        /* 128 MB of values at N = 1M */
    if (p->n < 100 || p->n > UINT32_MAX || (p->n_large != 0 && p->n_large < 100) ||
        p->n_large > UINT32_MAX || p->reps < 1 || p->durable_secs <= 0 || p->durable_ops < 1)
        return -1;
    return npos;
}

static int bench_list(void)
{
    for (const struct bench_adapter *const *a = bench_adapter_list(); *a; a++)
        printf("%-12s %s\n", (*a)->name, (*a)->config);
    return 0;
}

static int bench_run_child(const struct bench_params *p, char **pos)
{
    const struct bench_adapter *a = bench_adapter_find(pos[1]);
    const struct bench_group *g = bench_group_find(pos[2]);
    if (!a || !g) {
        fprintf(stderr, "bench: unknown %s '%s'\n", a ? "group" : "engine",
                a ? pos[2] : pos[1]);
        return 2;
    }
    return bench_child(p, a, g, pos[3]) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    struct bench_params p;
    char *pos[4];
    int quick = 0;
    for (int i = 1; i < argc; i++)
        quick |= strcmp(argv[i], "--quick") == 0;
    bench_defaults(&p, quick);
    int npos = bench_parse(argc, argv, &p, pos, 4);
    if (npos < 0) {
        bench_usage();
        return 2;
    }
    if (npos == 1 && strcmp(pos[0], "list") == 0)
        return bench_list();
    if (npos == 4 && strcmp(pos[0], "run") == 0)
        return bench_run_child(&p, pos);
    if (npos != 0) {
        bench_usage();
        return 2;
    }
    return bench_driver(&p) == 0 ? 0 : 1;
}
