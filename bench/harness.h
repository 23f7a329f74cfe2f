/*
 * harness.h: the one small interface every benchmarked engine implements,
 * and what the parts of the harness share.
 *
 * The harness is one program with two roles. As the driver (`harness` with
 * no "run" argument) it prints the machine, then for each repetition, each
 * workload group and each engine it fork/execs itself as a child
 * (`harness run ENGINE GROUP ...`), reads the child's RESULT lines from a
 * pipe, takes the median of the repetitions and writes the markdown table,
 * the CSV and the charts. As a child it opens one engine in a fresh
 * directory, runs one workload group and exits, so that no engine's caches,
 * threads or memory leak into another's figures.
 *
 * An engine is one file in bench/adapters/ that defines a NULL-terminated
 * array `bench_adapters_<file>[]` of struct bench_adapter (a file may hold
 * variants: Tkrzw and Kyoto Cabinet each give a hash and a tree), plus one
 * line in mk/bench.mk that names the file and its libraries.
 *
 * Threads: the driver is single-threaded. In a child, the multi-threaded
 * workloads open one session per thread (bench_adapter.session_open), so an
 * adapter whose engine needs per-thread state (an SQLite connection, an
 * LMDB read transaction) keeps it in the session.
 */
#ifndef BENCH_HARNESS_H
#define BENCH_HARNESS_H

#include <stddef.h>
#include <stdint.h>

/* How an engine is opened for one workload group. */
struct bench_config {
    const char *dir;      /* an empty directory the engine owns until close  */
    int      durable;     /* 1: every acknowledged write survives power loss */
    uint64_t n;           /* keys the group will hold (for sizing hashes)    */
    size_t   vsize;       /* value size of the group, in bytes               */
    /* Hints for the latency group, 0 = the engine's default. Only engines
     * that rotate files of their own use them (calypso: max_datafile_size
     * and max_open_files); the others ignore them. */
    uint64_t file_bytes;  /* size at which a log file is sealed            */
    uint32_t open_files;  /* how many sealed files may be mapped at once     */
};

/* Scan callback: key and value are borrowed for the call. Non-zero stops. */
typedef int (*bench_kv_fn)(const void *key, size_t klen,
                           const void *val, size_t vlen, void *ctx);

/* get() returns BENCH_FOUND, BENCH_MISSING or BENCH_ERR. Every other call
 * returns 0 or BENCH_ERR; an adapter prints the engine's message on stderr
 * (with bench_errf) before it returns BENCH_ERR. */
enum { BENCH_FOUND = 0, BENCH_MISSING = 1, BENCH_ERR = -1 };

/* One engine in one configuration. Optional members may be NULL. */
struct bench_adapter {
    const char *name;     /* short, [a-z0-9-]: column header, CLI argument */
    const char *config;   /* one line: how it is configured, for the notes */
    const char *durable;  /* what "durable" means for it, or NULL:
                             unsupported (no sync-on-write mode)           */
    const char *(*version)(void);
    int  (*open)(const struct bench_config *cfg, void **db);
    int  (*close)(void *db);           /* frees db even on error           */
    /* Per-thread state. NULL: the session is db itself. */
    int  (*session_open)(void *db, void **s);
    void (*session_close)(void *s);
    int  (*put)(void *s, const void *k, size_t kl, const void *v, size_t vl);
    /* Reads the value (copying it out, as a user would) and sets *vl. */
    int  (*get)(void *s, const void *k, size_t kl, size_t *vl);
    int  (*del)(void *s, const void *k, size_t kl);
    /* Ordered walk over keys starting with prefix (plen 0: all), keys and
     * values, in byte order. NULL: the engine keeps no order. */
    int  (*scan)(void *s, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx);
    /* Optional: the ordered walk as a user of the engine writes "visit
     * each key, then read its value": the engine's key walk (a cursor, an
     * iterator, calypso_fold / calypso_scan) with a point get of each key
     * inside it; fn gets the key and the value the get returned. NULL:
     * unordered engine. */
    int  (*scan_get)(void *s, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx);
    /* Optional: n point reads in one call (the engine's multi-get); found[i]
     * is BENCH_FOUND or BENCH_MISSING, vlens[i] the value's length. Returns
     * 0 or BENCH_ERR. NULL: the harness makes n calls of get. */
    int  (*get_many)(void *s, size_t n, const void *const *keys, const size_t *klens,
                     size_t *vlens, int *found);
    /* Optional write batching for transactional engines: the harness puts
     * begin/commit around every BENCH_BATCH writes of the fill, overwrite
     * and delete workloads (not around durable or mixed writes). */
    int  (*begin)(void *s);
    int  (*commit)(void *s);
    int  (*sync)(void *db);            /* everything written is durable    */
    int  (*merge)(void *db);           /* optional: reclaim dead bytes     */
    int  (*keydir_bytes)(void *db, uint64_t *bytes, uint64_t *keys); /* optional */
};

#define BENCH_BATCH 1000

/* The adapter table (harness_adapters.c). */
const struct bench_adapter *const *bench_adapter_list(void);
const struct bench_adapter *bench_adapter_find(const char *name);

/* Prints "bench: <engine>: <message>" on stderr; returns BENCH_ERR. */
int bench_errf(const char *engine, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ---- shared by the driver and the child --------------------------------- */

/* What a run is asked to do (parsed from the command line). */
struct bench_params {
    uint64_t n;              /* keys, 100-byte values                      */
    uint64_t n_large;        /* keys of the "large" group; 0: not run      */
    int      reps;           /* repetitions (median of them)               */
    double   durable_secs;   /* time bound of each durable workload        */
    uint64_t durable_ops;    /* op bound per writer thread                 */
    uint64_t big_bytes;      /* data budget of the big-value groups        */
    double   work_secs;      /* workloads but fillrandom stop after this   */
    int      quick;          /* set by --quick: labels the output          */
    double   timeout_secs;   /* a child running longer is killed           */
    const char *dir;         /* where databases live while measured        */
    const char *results;     /* where CSV, markdown, PNG go                */
    const char *plot;        /* the gnuplot script                         */
    const char *engines;     /* comma list or NULL: all                    */
    const char *groups;      /* comma list or NULL: all                    */
};

/* Workload groups: each is one child process per engine and repetition. */
struct bench_group {
    const char *name;
    size_t      vsize;       /* value size; N is scaled for big values     */
    int         durable;
    const char *suffix;      /* appended to its metric names ("_1k")       */
    int         large;       /* 1: N is --n-large (the group is skipped when 0) */
};
extern const struct bench_group bench_groups[];
extern const size_t bench_ngroups;

/* Keys of a group: N scaled so that N * vsize stays within big_bytes. */
uint64_t bench_group_n(const struct bench_params *p, const struct bench_group *g);

/* Child: runs group g on adapter a; prints RESULT lines on stdout. */
int bench_child(const struct bench_params *p, const struct bench_adapter *a,
                const struct bench_group *g, const char *dir);

/* Driver: the whole benchmark; each child is this program re-executed. */
int bench_driver(const struct bench_params *p);

/* ---- results (harness_report.c) ----------------------------------------- */

enum { BENCH_V_NONE, BENCH_V_OK, BENCH_V_UNSUPPORTED, BENCH_V_FAILED };
#define BENCH_MAX_ENGINES 32
#define BENCH_MAX_REPS    15
#define BENCH_MAX_METRICS 96

/* A figure of the table: produced by group `group` as "<name>". */
struct bench_metric {
    const char *name;
    const char *group;
    const char *label;     /* row label in the table                       */
    const char *unit;      /* ops/s, keys/s, scans/s, ms, us, MiB, B/key   */
    int         lower;     /* 1: lower is better                           */
    int         latency;   /* 1: a percentile, shown in the latency table  */
};
extern const struct bench_metric bench_metrics[];
extern const size_t bench_nmetrics;
int bench_metric_find(const char *name);   /* index, or -1 */

/* Everything the driver gathered: value[e][m][rep] with a state each. */
struct bench_results {
    size_t nengines;
    const struct bench_adapter *eng[BENCH_MAX_ENGINES];
    int    reps;
    double value[BENCH_MAX_ENGINES][BENCH_MAX_METRICS][BENCH_MAX_REPS];
    unsigned char state[BENCH_MAX_ENGINES][BENCH_MAX_METRICS][BENCH_MAX_REPS];
    double fsync_us[BENCH_MAX_REPS]; /* fdatasync of a small overwrite, median
                              of one probe per repetition (0: none)        */
    double fsync_p99_us[BENCH_MAX_REPS];
    char   machine[4096];  /* markdown lines describing machine and build  */
    double seconds;        /* wall time of the whole run                   */
};

/* Prints the table on stdout and writes bench.md, bench.csv, the charts
 * and README-section.md into p->results. Returns 0, or -1 if a file could
 * not be written. */
int bench_report(const struct bench_params *p, const struct bench_results *res);

/* Driver: the median latency, in microseconds, of fdatasync after a small
 * overwrite inside an already written and synced block of a file in dir
 * (what a durable put of a log engine waits for); p99 in *p99. 0 on error. */
double bench_fsync_probe(const char *dir, int quick, double *p99);

/* Monotonic seconds. */
double bench_now(void);

#endif /* BENCH_HARNESS_H */
