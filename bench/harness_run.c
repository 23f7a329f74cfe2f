/*
 * harness_run.c: one child of the benchmark: one engine, one workload
 * group, in a fresh directory, in a process of its own.
 *
 * Keys are 16 bytes: the decimal index zero-padded ("0000000000012345"),
 * so that byte order is index order and the 100 keys of a prefix scan
 * share their first 14 bytes. A missing key is a present key with its last
 * byte replaced by 'x': it shares 15 bytes with live keys, the hardest miss
 * for a tree and no easier for a hash. Values come from a pool of random
 * bytes at an offset drawn from the key and a version, so writing them
 * costs no copy and overwritten values differ from the old ones.
 *
 * Every figure goes to stdout as "RESULT <metric> <value>" (or
 * "RESULT <metric> unsupported"); progress and errors go to stderr. Each
 * workload checks what it reads (every hit found with the right length,
 * every miss missing, scans in order with the expected count): a wrong
 * answer fails the group rather than printing a fast figure.
 *
 * Groups: main (writes; every read in two states, as the fill left it and
 * after a merge; close and open timed; disk and memory), latency (single
 * operations timed one by one: percentiles), durable, the value groups,
 * and large (the point operations and open at --n-large keys).
 *
 * Threads: the mixed and durable workloads start their own threads and
 * join all of them before they return; each thread has its own session.
 * The latency group runs the engine's merge on a thread of its own while
 * the main thread times its operations, and joins it.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#define KEYLEN    16
#define POOL_SIZE (1u << 20)

struct run {
    const struct bench_params *p;
    const struct bench_adapter *a;
    const struct bench_group *g;
    struct bench_config cfg;
    const char *root;    /* the child's directory; cfg.dir is root/db */
    void *db;
    void *s;             /* the main thread's session */
    uint64_t n;
    char *pool;          /* POOL_SIZE + vsize random bytes */
    int silent;          /* 1: steps that set up a measurement print no RESULT */
};

/* >> keys, values, randomness ----------------------------------------------- */

static inline uint64_t run_mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;           /* splitmix64 finalizer */
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static inline uint64_t run_rand(uint64_t *state)
{
    return run_mix((*state)++);
}

static inline void run_key(uint64_t i, char k[KEYLEN])
{
    for (int j = KEYLEN - 1; j >= 0; j--, i /= 10)
        k[j] = (char)('0' + i % 10);
}

static inline const char *run_value(const struct run *r, uint64_t i, uint64_t version)
{
    return r->pool + run_mix(i ^ (version << 48)) % POOL_SIZE;
}

/* A permutation of 0..n-1 (Fisher-Yates); NULL on no memory. */
static uint32_t *run_perm(uint64_t n, uint64_t seed)
{
    uint32_t *v = malloc(n * sizeof *v);
    if (!v)
        return NULL;
    for (uint64_t i = 0; i < n; i++)
        v[i] = (uint32_t)i;
    for (uint64_t i = n - 1; i > 0; i--) {
        uint64_t j = run_rand(&seed) % (i + 1);
        uint32_t t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    return v;
}

/* >> results ------------------------------------------------------------------ */

static void run_result(const struct run *r, const char *metric, double v)
{
    if (r->silent)
        return;
    printf("RESULT %s%s %.17g\n", metric, r->g->suffix, v);
    fflush(stdout);
}

static void run_unsupported(const struct run *r, const char *metric)
{
    printf("RESULT %s%s unsupported\n", metric, r->g->suffix);
    fflush(stdout);
}

static void run_rate(const struct run *r, const char *metric, uint64_t ops, double secs)
{
    fprintf(stderr, "  %-14s %-10s %12.0f ops/s  (%llu ops, %.2f s)\n", r->a->name,
            metric, ops / secs, (unsigned long long)ops, secs);
    run_result(r, metric, ops / secs);
}

/* The name of a read metric in a state: "" (after a merge: the names
 * the table has always had) or "_unmerged" (as the fill left it). */
static const char *run_name(char *buf, size_t cap, const char *base, const char *state)
{
    snprintf(buf, cap, "%s%s", base, state);
    return buf;
}

/* >> open, close, sessions ---------------------------------------------------- */

static int run_session_open(const struct run *r, void **s)
{
    if (!r->a->session_open) {
        *s = r->db;
        return 0;
    }
    return r->a->session_open(r->db, s);
}

static void run_session_close(const struct run *r, void *s)
{
    if (r->a->session_close && s)
        r->a->session_close(s);
}

static int run_open(struct run *r)
{
    if (r->a->open(&r->cfg, &r->db) != 0)
        return BENCH_ERR;
    if (run_session_open(r, &r->s) != 0) {
        r->a->close(r->db);
        r->db = NULL;
        return BENCH_ERR;
    }
    return 0;
}

static int run_close(struct run *r)
{
    if (!r->db)
        return 0;
    run_session_close(r, r->s);
    int rc = r->a->close(r->db);
    r->db = r->s = NULL;
    return rc;
}

/* >> disk and memory ---------------------------------------------------------- */

static uint64_t run_du_total;

static int run_du_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)path; (void)flag; (void)f;
    run_du_total += (uint64_t)st->st_blocks * 512;
    return 0;
}

/* Bytes allocated on disk under dir (sparse files count what they use). */
static uint64_t run_du(const char *dir)
{
    run_du_total = 0;
    nftw(dir, run_du_one, 16, FTW_PHYS);
    return run_du_total;
}

static void run_disk(struct run *r, const char *metric)
{
    if (r->a->sync(r->db) != 0)
        bench_errf(r->a->name, "sync before measuring disk failed");
    run_result(r, metric, (double)run_du(r->cfg.dir));
}

static double run_peak_rss(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss * 1024.0;   /* ru_maxrss is in KiB on Linux */
}

/* >> write workloads ---------------------------------------------------------- */

/* Whether a workload that started at t0 has used its time (--work-secs),
 * checked every 256 operations. Only fillrandom always completes: every
 * later workload needs all N keys. The others measure a steady rate, which
 * a part of N gives as well, and leave a state the next one accepts
 * (overwrites keep the key set; deleterandom is the last). */
static inline int run_over(const struct run *r, uint64_t i, double t0)
{
    return (i & 255) == 0 && i > 0 && bench_now() - t0 >= r->p->work_secs;
}

/* Writes keys order[0..n-1] (or 0..n-1 when order is NULL) with values of
 * `version`, or deletes them when del is set; stops early (at a batch
 * boundary) when bounded and over time. Transactional engines get a
 * begin/commit around every BENCH_BATCH operations. */
static int run_write(struct run *r, const char *metric, const uint32_t *order,
                     uint64_t version, int del, int bounded)
{
    const struct bench_adapter *a = r->a;
    char k[KEYLEN];
    double t0 = bench_now();
    uint64_t i;
    for (i = 0; i < r->n; i++) {
        uint64_t idx = order ? order[i] : i;
        if (bounded && i > 0 && i % BENCH_BATCH == 0 && bench_now() - t0 >= r->p->work_secs)
            break;
        if (a->begin && i % BENCH_BATCH == 0 && a->begin(r->s) != 0)
            return BENCH_ERR;
        run_key(idx, k);
        int rc = del ? a->del(r->s, k, KEYLEN)
                     : a->put(r->s, k, KEYLEN, run_value(r, idx, version), r->cfg.vsize);
        if (rc != 0)
            return BENCH_ERR;
        if (a->commit && (i + 1 == r->n || (i + 1) % BENCH_BATCH == 0) && a->commit(r->s) != 0)
            return BENCH_ERR;
    }
    run_rate(r, metric, i, bench_now() - t0);
    return 0;
}

/* >> read workloads ----------------------------------------------------------- */

/* n random gets of present keys (missing == 0) or of absent ones. */
static int run_read(struct run *r, const char *metric, int missing, uint64_t seed)
{
    char k[KEYLEN];
    size_t vl;
    double t0 = bench_now();
    uint64_t i;
    for (i = 0; i < r->n && !run_over(r, i, t0); i++) {
        run_key(run_rand(&seed) % r->n, k);
        if (missing)
            k[KEYLEN - 1] = 'x';
        int rc = r->a->get(r->s, k, KEYLEN, &vl);
        if (rc == BENCH_ERR)
            return BENCH_ERR;
        if (rc != (missing ? BENCH_MISSING : BENCH_FOUND) || (!missing && vl != r->cfg.vsize))
            return bench_errf(r->a->name, "%s: wrong answer for key %.16s (rc %d, vlen %zu)",
                              metric, k, rc, vl);
    }
    run_rate(r, metric, i, bench_now() - t0);
    return 0;
}

/* What a scan checks: order, count, and that values are really read. */
struct run_scan {
    char prev[KEYLEN + 1];
    size_t prevlen;
    uint64_t count;
    uint64_t sum;
    size_t vsize;
    int bad;
};

static int run_scan_fn(const void *key, size_t klen, const void *val, size_t vlen, void *ctx)
{
    struct run_scan *c = ctx;
    if (klen != KEYLEN || vlen != c->vsize ||
        (c->count > 0 && memcmp(c->prev, key, KEYLEN) >= 0)) {
        c->bad = 1;
        return 1;
    }
    memcpy(c->prev, key, KEYLEN);
    c->sum += ((const unsigned char *)val)[0] + ((const unsigned char *)val)[vlen - 1];
    c->count++;
    return 0;
}

/* An ordered walk over every key and value. */
static int run_readseq(struct run *r, const char *metric)
{
    struct run_scan c = { .vsize = r->cfg.vsize };
    double t0 = bench_now();
    if (r->a->scan(r->s, "", 0, run_scan_fn, &c) != 0 && !c.bad)
        return BENCH_ERR;
    if (c.bad || c.count != r->n)
        return bench_errf(r->a->name, "%s: %llu keys, %s (expected %llu in order)", metric,
                          (unsigned long long)c.count, c.bad ? "bad order or size" : "ok",
                          (unsigned long long)r->n);
    run_rate(r, metric, c.count, bench_now() - t0);
    return 0;
}

/* n/100 scans of a random 14-byte prefix (100 keys each, with values). */
static int run_prefix(struct run *r, const char *metric)
{
    uint64_t groups = r->n / 100, seed = 7, nscan = groups;
    char k[KEYLEN];
    double t0 = bench_now();
    uint64_t i;
    for (i = 0; i < nscan && !run_over(r, i, t0); i++) {
        uint64_t gi = run_rand(&seed) % groups;
        struct run_scan c = { .vsize = r->cfg.vsize };
        run_key(gi * 100, k);
        if (r->a->scan(r->s, k, KEYLEN - 2, run_scan_fn, &c) != 0 && !c.bad)
            return BENCH_ERR;
        if (c.bad || c.count != 100)
            return bench_errf(r->a->name, "%s: %llu keys under %.14s (expected 100)", metric,
                              (unsigned long long)c.count, k);
    }
    run_rate(r, metric, i, bench_now() - t0);
    return 0;
}

/* The walk of every key with a point get of each inside it (scan_get). */
static int run_walkget(struct run *r, const char *metric)
{
    struct run_scan c = { .vsize = r->cfg.vsize };
    double t0 = bench_now();
    if (r->a->scan_get(r->s, "", 0, run_scan_fn, &c) != 0 && !c.bad)
        return BENCH_ERR;
    if (c.bad || c.count != r->n)
        return bench_errf(r->a->name, "%s: %llu keys, %s (expected %llu in order)", metric,
                          (unsigned long long)c.count, c.bad ? "bad order or size" : "ok",
                          (unsigned long long)r->n);
    run_rate(r, metric, c.count, bench_now() - t0);
    return 0;
}

/* n/100 prefix walks of 100 keys, each key read with a point get. */
static int run_prefixget(struct run *r, const char *metric)
{
    uint64_t groups = r->n / 100, seed = 8;
    char k[KEYLEN];
    double t0 = bench_now();
    uint64_t i;
    for (i = 0; i < groups && !run_over(r, i, t0); i++) {
        uint64_t gi = run_rand(&seed) % groups;
        struct run_scan c = { .vsize = r->cfg.vsize };
        run_key(gi * 100, k);
        if (r->a->scan_get(r->s, k, KEYLEN - 2, run_scan_fn, &c) != 0 && !c.bad)
            return BENCH_ERR;
        if (c.bad || c.count != 100)
            return bench_errf(r->a->name, "%s: %llu keys under %.14s (expected 100)", metric,
                              (unsigned long long)c.count, k);
    }
    run_rate(r, metric, i, bench_now() - t0);
    return 0;
}

#define RUN_MANY 16

/* Random present keys, RUN_MANY a call: the engine's multi-get, or
 * RUN_MANY single gets where it has none. Reports keys per second. */
static int run_getmany(struct run *r, const char *metric, uint64_t seed)
{
    char k[RUN_MANY][KEYLEN];
    const void *keys[RUN_MANY];
    size_t klens[RUN_MANY], vlens[RUN_MANY];
    int found[RUN_MANY];
    for (int j = 0; j < RUN_MANY; j++) {
        keys[j] = k[j];
        klens[j] = KEYLEN;
    }
    double t0 = bench_now();
    uint64_t i;
    for (i = 0; i + RUN_MANY <= r->n && !run_over(r, i, t0); i += RUN_MANY) {
        for (int j = 0; j < RUN_MANY; j++)
            run_key(run_rand(&seed) % r->n, k[j]);
        if (r->a->get_many) {
            if (r->a->get_many(r->s, RUN_MANY, keys, klens, vlens, found) != 0)
                return BENCH_ERR;
        } else {
            for (int j = 0; j < RUN_MANY; j++)
                if ((found[j] = r->a->get(r->s, k[j], KEYLEN, &vlens[j])) == BENCH_ERR)
                    return BENCH_ERR;
        }
        for (int j = 0; j < RUN_MANY; j++)
            if (found[j] != BENCH_FOUND || vlens[j] != r->cfg.vsize)
                return bench_errf(r->a->name, "%s: wrong answer for key %.16s (rc %d, vlen %zu)",
                                  metric, k[j], found[j], vlens[j]);
    }
    run_rate(r, metric, i, bench_now() - t0);
    return 0;
}

/* >> threaded workloads ------------------------------------------------------- */

struct run_worker {
    struct run *r;
    pthread_t tid;
    void *s;
    uint64_t id, ops, limit;
    double deadline;     /* 0: none */
    int rc;
};

/* Mixed: 90% gets of present keys, 10% overwrites, limit ops. */
static void *run_mixed_thread(void *arg)
{
    struct run_worker *w = arg;
    const struct bench_adapter *a = w->r->a;
    uint64_t seed = 1000 + w->id * 7919;
    char k[KEYLEN];
    size_t vl;
    for (w->ops = 0; w->ops < w->limit && w->rc == 0; w->ops++) {
        uint64_t x = run_rand(&seed), idx = (x >> 8) % w->r->n;
        if ((w->ops & 255) == 255 && bench_now() >= w->deadline)
            break;
        run_key(idx, k);
        if (x % 10 == 0)
            w->rc = a->put(w->s, k, KEYLEN, run_value(w->r, idx, 3), w->r->cfg.vsize);
        else if (a->get(w->s, k, KEYLEN, &vl) != BENCH_FOUND || vl != w->r->cfg.vsize)
            w->rc = bench_errf(a->name, "mixed: key %.16s not found", k);
    }
    return NULL;
}

/* Durable: puts of random keys until limit ops or the deadline. */
static void *run_durable_thread(void *arg)
{
    struct run_worker *w = arg;
    const struct bench_adapter *a = w->r->a;
    uint64_t seed = 5000 + w->id * 104729;
    char k[KEYLEN];
    while (w->ops < w->limit && w->rc == 0 && bench_now() < w->deadline) {
        uint64_t idx = run_rand(&seed) % w->r->n;
        run_key(idx, k);
        w->rc = a->put(w->s, k, KEYLEN, run_value(w->r, idx, 4), w->r->cfg.vsize);
        w->ops += w->rc == 0;
    }
    return NULL;
}

/* Runs fn on nthreads threads (each with its own session) and reports the
 * total ops per second. Every thread started is joined. */
static int run_threads(struct run *r, const char *metric, int nthreads,
                       void *(*fn)(void *), uint64_t limit, double secs)
{
    struct run_worker w[8];
    int started = 0, rc = 0;
    uint64_t ops = 0;
    memset(w, 0, sizeof w);
    double t0 = bench_now();
    for (int i = 0; i < nthreads; i++) {
        w[i] = (struct run_worker){ .r = r, .id = (uint64_t)i, .limit = limit,
                                    .deadline = secs > 0 ? t0 + secs : 1e300 };
        if (run_session_open(r, &w[i].s) != 0) { rc = BENCH_ERR; break; }
        if (pthread_create(&w[i].tid, NULL, fn, &w[i]) != 0) {
            run_session_close(r, w[i].s);
            rc = bench_errf(r->a->name, "pthread_create failed");
            break;
        }
        started++;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(w[i].tid, NULL);
        run_session_close(r, w[i].s);
        ops += w[i].ops;
        if (w[i].rc != 0)
            rc = BENCH_ERR;
    }
    if (rc == 0)
        run_rate(r, metric, ops, bench_now() - t0);
    return rc;
}

/* >> groups --------------------------------------------------------------------- */

static int run_fresh(struct run *r)
{
    if (mkdir(r->cfg.dir, 0755) != 0)
        return bench_errf(r->a->name, "mkdir %s failed", r->cfg.dir);
    return run_open(r);
}

/* Drops the database of fillseq so that fillrandom starts empty. */
static int run_rmdir_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(path);
}

static int run_fillseq(struct run *r)
{
    char sub[4096];
    const char *dir = r->cfg.dir;
    snprintf(sub, sizeof sub, "%s/fillseq", r->root);
    r->cfg.dir = sub;
    int rc = run_fresh(r);
    if (rc == 0)
        rc = run_write(r, "fillseq", NULL, 1, 0, 1);
    if (run_close(r) != 0)
        rc = BENCH_ERR;
    nftw(sub, run_rmdir_one, 16, FTW_DEPTH | FTW_PHYS);
    r->cfg.dir = dir;
    return rc;
}

static void run_ms(struct run *r, const char *metric, double secs)
{
    fprintf(stderr, "  %-14s %-10s %12.1f ms\n", r->a->name, metric, secs * 1e3);
    run_result(r, metric, secs * 1e3);
}

/* Close, then open, each timed (close_metric NULL: close untimed). Close
 * is whatever the engine's close does (calypso: the final fdatasync). */
static int run_reopen_timed(struct run *r, const char *close_metric, const char *open_metric)
{
    double t0 = bench_now();
    if (run_close(r) != 0)
        return BENCH_ERR;
    if (close_metric)
        run_ms(r, close_metric, bench_now() - t0);
    t0 = bench_now();
    if (run_open(r) != 0)
        return BENCH_ERR;
    run_ms(r, open_metric, bench_now() - t0);
    return 0;
}

static void run_keydir(struct run *r)
{
    uint64_t bytes, keys;
    if (!r->a->keydir_bytes || r->a->keydir_bytes(r->db, &bytes, &keys) != 0 || keys == 0)
        run_unsupported(r, "keydir_bpk");
    else
        run_result(r, "keydir_bpk", (double)bytes / (double)keys);
}

static int run_merge(struct run *r)
{
    if (!r->a->merge) {
        run_unsupported(r, "disk_merge");
        return 0;
    }
    if (r->a->merge(r->db) != 0)
        return BENCH_ERR;
    run_disk(r, "disk_merge");
    return 0;
}

/* Every read workload in one state ("" after the merge, "_unmerged" as
 * the fill left it): point reads, multi-get, cursor walks and prefix
 * scans, the same walks with a get of each key, and mixed (its 10%
 * overwrites come last, so the reads before see the state untouched). */
static int run_reads(struct run *r, const char *st)
{
    char m[64];
    int rc = run_read(r, run_name(m, sizeof m, "readrandom", st), 0, 11);
    if (rc == 0) rc = run_read(r, run_name(m, sizeof m, "readmissing", st), 1, 12);
    if (rc == 0) rc = run_getmany(r, run_name(m, sizeof m, "getmany", st), 13);
    if (rc == 0 && r->a->scan) {
        rc = run_readseq(r, run_name(m, sizeof m, "readseq", st));
        if (rc == 0) rc = run_prefix(r, run_name(m, sizeof m, "prefix100", st));
    } else if (rc == 0) {
        run_unsupported(r, run_name(m, sizeof m, "readseq", st));
        run_unsupported(r, run_name(m, sizeof m, "prefix100", st));
    }
    if (rc == 0 && r->a->scan_get) {
        rc = run_walkget(r, run_name(m, sizeof m, "walkget", st));
        if (rc == 0) rc = run_prefixget(r, run_name(m, sizeof m, "prefixget", st));
    } else if (rc == 0) {
        run_unsupported(r, run_name(m, sizeof m, "walkget", st));
        run_unsupported(r, run_name(m, sizeof m, "prefixget", st));
    }
    if (rc == 0)
        rc = run_threads(r, run_name(m, sizeof m, "mixed", st), 2, run_mixed_thread, r->n / 2,
                         r->p->work_secs);
    return rc;
}

/* The main group, in this order (each step needs the state the one before
 * left): fillseq (own db); fillrandom; keydir size; every read as the fill
 * left it (the same process, no merge, no reopen, no sync: as a user has
 * it); close and open timed; disk; overwrite of every key; close and open
 * timed; disk; merge; close, open timed; every read again (after the
 * merge); deleterandom. Close is timed before anything syncs (the
 * disk figures sync, so they come after the reopen). */
static int run_main(struct run *r)
{
    uint32_t *fill = run_perm(r->n, 1), *over = run_perm(r->n, 2), *del = run_perm(r->n, 3);
    int rc = fill && over && del ? 0 : bench_errf(r->a->name, "no memory for permutations");
    if (rc == 0) rc = run_fillseq(r);
    if (rc == 0) rc = run_fresh(r);
    if (rc == 0) rc = run_write(r, "fillrandom", fill, 1, 0, 0);
    if (rc == 0) run_keydir(r);
    if (rc == 0) rc = run_reads(r, "_unmerged");
    if (rc == 0) rc = run_reopen_timed(r, "close_fill_ms", "open_fill_ms");
    if (rc == 0) run_disk(r, "disk_fill");
    if (rc == 0) rc = run_write(r, "overwrite", over, 2, 0, 0);
    if (rc == 0) rc = run_reopen_timed(r, "close_over_ms", "open_over_ms");
    if (rc == 0) run_disk(r, "disk_overwrite");
    if (rc == 0) rc = run_merge(r);
    if (rc == 0) rc = run_reopen_timed(r, NULL, "open_ms");
    if (rc == 0) rc = run_reads(r, "");
    if (rc == 0) rc = run_write(r, "deleterandom", del, 0, 1, 1);
    if (run_close(r) != 0)
        rc = BENCH_ERR;
    if (rc == 0)
        run_result(r, "rss", run_peak_rss());
    free(fill); free(over); free(del);
    return rc;
}

/* >> latency group --------------------------------------------------------------- */

/* Latency samples of one workload, in seconds. */
struct run_lat {
    double *v;
    size_t n, cap;
};

static int run_lat_add(struct run_lat *l, double dt)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1 << 16;
        double *nv = realloc(l->v, nc * sizeof *nv);
        if (!nv)
            return bench_errf("harness", "no memory for latency samples");
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = dt;
    return 0;
}

static int run_dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Prints <metric>_p50, _p99, _p999 and _max in microseconds, and frees. */
static void run_lat_report(struct run *r, const char *metric, struct run_lat *l)
{
    static const struct { const char *suffix; double q; } qs[] = {
        { "_p50", 0.5 }, { "_p99", 0.99 }, { "_p999", 0.999 }, { "_max", 1.0 },
    };
    char m[64];
    if (l->n == 0) {
        bench_errf(r->a->name, "%s: no samples", metric);
        free(l->v);
        memset(l, 0, sizeof *l);
        return;
    }
    qsort(l->v, l->n, sizeof l->v[0], run_dcmp);
    fprintf(stderr, "  %-14s %-14s %8zu ops:", r->a->name, metric, l->n);
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        double us = l->v[(size_t)(qs[i].q * (double)(l->n - 1) + 0.5)] * 1e6;
        fprintf(stderr, " %s %.1f us", qs[i].suffix + 1, us);
        run_result(r, run_name(m, sizeof m, metric, qs[i].suffix), us);
    }
    fprintf(stderr, "\n");
    free(l->v);
    memset(l, 0, sizeof *l);
}

static void run_lat_unsupported(struct run *r, const char *metric)
{
    static const char *const sfx[] = { "_p50", "_p99", "_p999", "_max" };
    char m[64];
    for (size_t i = 0; i < 4; i++)
        run_unsupported(r, run_name(m, sizeof m, metric, sfx[i]));
}

/* Whether the flag a timed loop waits for is set (NULL: never). */
static int run_stopped(atomic_int *stop)
{
    return stop && atomic_load_explicit(stop, memory_order_relaxed);
}

/* Timed puts of keys order[0..n-1] (version v), one per call, until all
 * are done or (bounded) work_secs passed; with stop, until *stop is set,
 * going round the keys again (versions v, v + 1, ...) for at most 4 n puts,
 * so that the puts cover the whole of what stop waits for. */
static int run_put_lat(struct run *r, const uint32_t *order, uint64_t v, int bounded,
                       atomic_int *stop, struct run_lat *l)
{
    char k[KEYLEN];
    double t_start = bench_now();
    uint64_t limit = stop ? 4 * r->n : r->n;
    for (uint64_t i = 0; i < limit && !run_stopped(stop); i++) {
        uint64_t idx = order[i % r->n], ver = v + i / r->n;
        if (bounded && run_over(r, i, t_start))
            break;
        run_key(idx, k);
        double t0 = bench_now();
        if (r->a->put(r->s, k, KEYLEN, run_value(r, idx, ver), r->cfg.vsize) != 0)
            return BENCH_ERR;
        if (run_lat_add(l, bench_now() - t0) != 0)
            return BENCH_ERR;
    }
    return 0;
}

/* Timed gets of random present keys until *stop is set or max_secs. */
static int run_get_lat(struct run *r, atomic_int *stop, double max_secs, uint64_t seed,
                       struct run_lat *l)
{
    char k[KEYLEN];
    size_t vl;
    double t_end = bench_now() + max_secs;
    for (uint64_t i = 0; !run_stopped(stop) && ((i & 255) || bench_now() < t_end); i++) {
        run_key(run_rand(&seed) % r->n, k);
        double t0 = bench_now();
        int rc = r->a->get(r->s, k, KEYLEN, &vl);
        double dt = bench_now() - t0;
        if (rc != BENCH_FOUND || vl != r->cfg.vsize)
            return rc == BENCH_ERR ? BENCH_ERR
                   : bench_errf(r->a->name, "get: key %.16s not found", k);
        if (run_lat_add(l, dt) != 0)
            return BENCH_ERR;
    }
    return 0;
}

struct run_merger {
    struct run *r;
    atomic_int done;     /* set by the merge thread when the merge returns */
    int rc;
};

static void *run_merge_thread(void *arg)
{
    struct run_merger *m = arg;
    m->rc = m->r->a->merge(m->r->db);
    atomic_store(&m->done, 1);
    return NULL;
}

/* Overwrites every key (version v, untimed) so that a merge has work, then
 * runs the merge on a thread of its own while this thread times gets
 * (put_version 0) or puts of version put_version until it ends. */
static int run_during_merge(struct run *r, const uint32_t *order, uint64_t v,
                            uint64_t put_version, const char *metric)
{
    struct run_merger m = { .r = r, .rc = 0 };
    atomic_init(&m.done, 0);
    struct run_lat l = { 0 };
    pthread_t tid;
    r->silent = 1;
    int rc = run_write(r, "overwrite", order, v, 0, 0);
    r->silent = 0;
    if (rc != 0)
        return rc;
    if (pthread_create(&tid, NULL, run_merge_thread, &m) != 0)
        return bench_errf(r->a->name, "pthread_create failed");
    double t0 = bench_now();
    rc = put_version ? run_put_lat(r, order, put_version, 0, &m.done, &l)
                     : run_get_lat(r, &m.done, 1e9, 21, &l);
    pthread_join(tid, NULL);
    fprintf(stderr, "  %-14s merge took %.2f s\n", r->a->name, bench_now() - t0);
    if (m.rc != 0)
        rc = bench_errf(r->a->name, "%s: merge failed", metric);
    if (rc == 0)
        run_lat_report(r, metric, &l);
    free(l.v);
    return rc;
}

/* Tail latency: puts of a fill that rotates files about ten times
 * (calypso: max_datafile_size = N * 128 / 10), one put per call, every
 * engine; then, for engines with a merge (calypso), gets and puts while a
 * merge runs, and gets while most files are cold (4 may be mapped). */
static int run_latency(struct run *r)
{
    uint32_t *fill = run_perm(r->n, 1), *over = run_perm(r->n, 2);
    struct run_lat l = { 0 };
    uint64_t fb = r->n * 128 / 10;
    r->cfg.file_bytes = fb < (64u << 10) ? (64u << 10) : fb;
    int rc = fill && over ? run_fresh(r) : bench_errf(r->a->name, "no memory");
    if (rc == 0) rc = run_put_lat(r, fill, 1, 1, NULL, &l);
    if (rc == 0) run_lat_report(r, "putlat_fill", &l);
    if (rc == 0 && r->a->merge) {
        rc = run_during_merge(r, over, 2, 0, "getlat_merge");
        if (rc == 0) rc = run_during_merge(r, over, 3, 4, "putlat_merge");
        /* A merge first, untimed: the puts during the last one left dead
         * bytes that could start an automatic merge under the cold gets. */
        if (rc == 0 && r->a->merge(r->db) != 0)
            rc = bench_errf(r->a->name, "merge before the cold gets failed");
        r->cfg.open_files = 4;
        r->silent = 1;
        if (rc == 0) rc = run_reopen_timed(r, NULL, "open_ms");
        r->silent = 0;
        if (rc == 0) rc = run_get_lat(r, NULL, r->p->work_secs < 3 ? r->p->work_secs : 3, 22, &l);
        if (rc == 0) run_lat_report(r, "getlat_cold", &l);
    } else if (rc == 0) {
        run_lat_unsupported(r, "getlat_merge");
        run_lat_unsupported(r, "putlat_merge");
        run_lat_unsupported(r, "getlat_cold");
    }
    free(l.v);
    if (run_close(r) != 0)
        rc = BENCH_ERR;
    free(fill);
    free(over);
    return rc;
}

/* >> large group ---------------------------------------------------------------- */

/* The point operations and open at N = --n-large: fillrandom, reads as
 * the fill left them, multi-get, close and open timed, overwrite. */
static int run_large(struct run *r)
{
    uint32_t *fill = run_perm(r->n, 1), *over = run_perm(r->n, 2);
    int rc = fill && over ? run_fresh(r) : bench_errf(r->a->name, "no memory for permutations");
    if (rc == 0) rc = run_write(r, "fillrandom", fill, 1, 0, 0);
    if (rc == 0) run_keydir(r);
    if (rc == 0) rc = run_read(r, "readrandom", 0, 11);
    if (rc == 0) rc = run_read(r, "readmissing", 1, 12);
    if (rc == 0) rc = run_getmany(r, "getmany", 13);
    if (rc == 0) rc = run_reopen_timed(r, "close_fill_ms", "open_fill_ms");
    if (rc == 0) rc = run_write(r, "overwrite", over, 2, 0, 1);
    if (run_close(r) != 0)
        rc = BENCH_ERR;
    free(fill);
    free(over);
    return rc;
}

/* Durable writes with 1 then 4 threads, each bounded in ops and time. */
static int run_durable(struct run *r)
{
    if (!r->a->durable) {
        run_unsupported(r, "durable1");
        run_unsupported(r, "durable4");
        return 0;
    }
    int rc = run_fresh(r);
    const struct bench_params *p = r->p;
    if (rc == 0) rc = run_threads(r, "durable1", 1, run_durable_thread, p->durable_ops, p->durable_secs);
    if (rc == 0) rc = run_threads(r, "durable4", 4, run_durable_thread, p->durable_ops, p->durable_secs);
    if (run_close(r) != 0)
        rc = BENCH_ERR;
    return rc;
}

/* Fill and read with big values. */
static int run_values(struct run *r)
{
    uint32_t *fill = run_perm(r->n, 1);
    int rc = fill ? run_fresh(r) : bench_errf(r->a->name, "no memory");
    if (rc == 0) rc = run_write(r, "fillrandom", fill, 1, 0, 0);
    if (rc == 0) rc = run_read(r, "readrandom", 0, 11);
    if (run_close(r) != 0)
        rc = BENCH_ERR;
    free(fill);
    return rc;
}

/* dir must not exist: the child creates it, keeps the database in dir/db
 * (and fillseq's in dir/fillseq); the driver removes it afterwards. */
int bench_child(const struct bench_params *p, const struct bench_adapter *a,
                const struct bench_group *g, const char *dir)
{
    static char db[4096];
    struct run r = { .p = p, .a = a, .g = g, .root = dir, .n = bench_group_n(p, g) };
    if (mkdir(dir, 0755) != 0)
        return bench_errf(a->name, "mkdir %s failed", dir);
    snprintf(db, sizeof db, "%s/db", dir);
    r.cfg = (struct bench_config){ .dir = db, .durable = g->durable, .n = r.n,
                                   .vsize = g->vsize };
    r.pool = malloc(POOL_SIZE + g->vsize);
    if (!r.pool)
        return bench_errf(a->name, "no memory");
    uint64_t seed = 42;
    for (size_t i = 0; i < POOL_SIZE + g->vsize; i++)
        r.pool[i] = (char)run_rand(&seed);
    int rc;
    if (g->durable)
        rc = run_durable(&r);
    else if (strcmp(g->name, "latency") == 0)
        rc = run_latency(&r);
    else if (g->large)
        rc = run_large(&r);
    else if (g->vsize == 100)
        rc = run_main(&r);
    else
        rc = run_values(&r);
    free(r.pool);
    return rc;
}
