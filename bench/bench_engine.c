/*
 * bench_engine.c: calypso's own figures, one line per measurement:
 * put and get throughput in each sync mode, durable puts with 1 and 4
 * writer threads (group commit), and open time with and without hint
 * files. Peer comparisons live in the bench harness (make bench); this is
 * the quick self-check behind `make bench-engine`.
 *
 *   BENCH_N      keys (default 1000000), 16-byte keys, 100-byte values
 *   BENCH_DIR    where the databases go (default build/bench-engine)
 *   BENCH_SECS   seconds per durable-write run (default 2)
 */
#define _GNU_SOURCE 1
#include "calypso.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t mix(uint64_t x)
{
    x ^= x >> 33; x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* Latency samples of one measurement, in seconds; percentiles by sorting. */
typedef struct lat { double *v; size_t n, cap; } lat;

static void lat_add(lat *l, double dt)
{
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1 << 16;
        double *p = realloc(l->v, nc * sizeof *p);
        if (!p) return;   /* out of memory: the figure covers fewer samples */
        l->v = p;
        l->cap = nc;
    }
    l->v[l->n++] = dt;
}

static int lat_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) in microseconds; sorts the samples. */
static double lat_us(lat *l, double q)
{
    if (!l->n) return 0;
    qsort(l->v, l->n, sizeof *l->v, lat_cmp);
    size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);
    return l->v[i] * 1e6;
}

static void make_key(uint64_t i, char key[16])
{
    uint64_t h = mix(i);
    memcpy(key, &h, 8);
    memcpy(key + 8, &i, 8);
}

static void die(calypso *db, const char *what, int rc)
{
    fprintf(stderr, "%s: %s (%s)\n", what, calypso_strerror(rc), calypso_errmsg(db));
    exit(1);
}

static calypso *open_db(const char *path, int sync, int fresh)
{
    char cmd[4200];
    if (fresh) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
        if (system(cmd) != 0) exit(1);
    }
    calypso_options o;
    calypso_options_default(&o);
    o.sync = sync;
    o.merge_trigger_ratio = -1;
    calypso *db;
    int rc = calypso_open(path, &o, &db);
    if (rc) die(NULL, "open", rc);
    return db;
}

static void fill(calypso *db, uint64_t n)
{
    char key[16], val[100];
    memset(val, 'v', sizeof val);
    for (uint64_t i = 0; i < n; i++) {
        make_key(i, key);
        memcpy(val, &i, 8);
        int rc = calypso_put(db, key, 16, val, 100);
        if (rc) die(db, "put", rc);
    }
}

/* The same random gets, 16 keys a call through calypso_get_many, against
 * the single-get rate just measured. */
static void bench_get_many(calypso *db, uint64_t count, double single_rate)
{
    enum { G = 16 };
    char key[G][16];
    const void *keys[G];
    size_t klens[G], vlens[G];
    void *vals[G];
    int rcs[G];
    for (int j = 0; j < G; j++) { keys[j] = key[j]; klens[j] = 16; }
    double t0 = now_s();
    for (uint64_t i = 0; i + G <= count; i += G) {
        for (int j = 0; j < G; j++) make_key(mix(i + (uint64_t)j + 7) % count, key[j]);
        int rc = calypso_get_many(db, G, keys, klens, vals, vlens, rcs);
        if (rc) die(db, "get_many", rc);
        for (int j = 0; j < G; j++) calypso_free(vals[j]);
    }
    double t1 = now_s();
    uint64_t done = count / G * G;
    double rate = (double)done / (t1 - t0);
    printf("get_many sync=none    %9llu keys  %10.0f ops/s  %8.2f us/op  (16 a call: %.2fx single gets)\n",
           (unsigned long long)done, rate, (t1 - t0) * 1e6 / (double)done, rate / single_rate);
}

static void bench_put_get(const char *dir, uint64_t n)
{
    static const char *names[] = { "none", "interval", "always" };
    for (int mode = 0; mode < 3; mode++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/sync-%s", dir, names[mode]);
        /* Every put under ALWAYS waits for the disk: time a bounded count. */
        uint64_t count = mode == CALYPSO_SYNC_ALWAYS ? (n < 5000 ? n : 5000) : n;
        calypso *db = open_db(path, mode, 1);
        double t0 = now_s();
        fill(db, count);
        double t1 = now_s();
        printf("put     sync=%-8s %9llu keys  %10.0f ops/s  %8.2f us/op\n", names[mode],
               (unsigned long long)count, (double)count / (t1 - t0), (t1 - t0) * 1e6 / (double)count);
        char key[16], buf[128];
        size_t vlen;
        t0 = now_s();
        for (uint64_t i = 0; i < count; i++) {
            make_key(mix(i + 7) % count, key);
            int rc = calypso_get_buf(db, key, 16, buf, sizeof buf, &vlen);
            if (rc) die(db, "get", rc);
        }
        t1 = now_s();
        printf("get     sync=%-8s %9llu keys  %10.0f ops/s  %8.2f us/op\n", names[mode],
               (unsigned long long)count, (double)count / (t1 - t0), (t1 - t0) * 1e6 / (double)count);
        if (mode == CALYPSO_SYNC_NONE) bench_get_many(db, count, (double)count / (t1 - t0));
        calypso_close(db);
    }
}

typedef struct { calypso *db; int id; double until; uint64_t done; } writer_arg;

static void *durable_writer(void *p)
{
    writer_arg *a = p;
    char key[16], val[100];
    memset(val, 'd', sizeof val);
    for (uint64_t i = 0; now_s() < a->until; i++) {
        make_key(((uint64_t)a->id << 40) | i, key);
        int rc = calypso_put(a->db, key, 16, val, 100);
        if (rc) die(a->db, "durable put", rc);
        a->done++;
    }
    return NULL;
}

static void bench_durable(const char *dir, double secs)
{
    for (int threads = 1; threads <= 4; threads *= 4) {
        char path[4096];
        snprintf(path, sizeof path, "%s/durable-%d", dir, threads);
        calypso *db = open_db(path, CALYPSO_SYNC_ALWAYS, 1);
        writer_arg args[4];
        pthread_t tid[4];
        double t0 = now_s();
        for (int i = 0; i < threads; i++) {
            args[i] = (writer_arg){ db, i, t0 + secs, 0 };
            pthread_create(&tid[i], NULL, durable_writer, &args[i]);
        }
        uint64_t total = 0;
        for (int i = 0; i < threads; i++) {
            pthread_join(tid[i], NULL);
            total += args[i].done;
        }
        double t1 = now_s();
        printf("durable %d writer%s          %9llu puts  %10.0f puts/s\n", threads,
               threads > 1 ? "s" : " ", (unsigned long long)total, (double)total / (t1 - t0));
        calypso_close(db);
    }
}

static int count_hints(const char *path, int remove_them)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.hint$' %s", path, remove_them ? "" : "");
    if (remove_them) {
        snprintf(cmd, sizeof cmd, "rm -f '%s'/*.hint", path);
        return system(cmd);
    }
    return 0;
}

static void bench_open(const char *dir, uint64_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/open", dir);
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 16ull << 20;   /* several sealed files with hints */
    o.merge_trigger_ratio = -1;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) exit(1);
    calypso *db;
    int rc = calypso_open(path, &o, &db);
    if (rc) die(NULL, "open", rc);
    fill(db, n);
    calypso_close(db);   /* waits for the hint files */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) count_hints(path, 1);
        double best = 1e9;
        for (int rep = 0; rep < 3; rep++) {
            double t0 = now_s();
            if ((rc = calypso_open(path, &o, &db))) die(NULL, "reopen", rc);
            double t1 = now_s();
            if (calypso_len(db) != n) { fprintf(stderr, "open lost keys\n"); exit(1); }
            calypso_close(db);   /* pass 1: rewrites the hints; remove again */
            if (pass == 1) count_hints(path, 1);
            if (t1 - t0 < best) best = t1 - t0;
        }
        printf("open    %-16s %9llu keys  %10.1f ms\n", pass ? "datafile scan" : "with hints",
               (unsigned long long)n, best * 1e3);
    }
}

typedef struct { calypso *db; uint64_t n; volatile int stop; double worst; uint64_t gets; lat l; } reader_arg;

static void *merge_reader(void *p)
{
    reader_arg *a = p;
    char key[16], buf[128];
    size_t vlen;
    for (uint64_t i = 0; !a->stop; i++) {
        make_key(mix(i) % a->n, key);
        double t0 = now_s();
        int rc = calypso_get_buf(a->db, key, 16, buf, sizeof buf, &vlen);
        double dt = now_s() - t0;
        if (rc) die(a->db, "get during merge", rc);
        if (dt > a->worst) a->worst = dt;
        lat_add(&a->l, dt);
        a->gets++;
    }
    return NULL;
}

/* Gets while the readers keep mapping cold files: many more datafiles
 * than max_open_files, so most gets of a random key open (map) a file
 * and evict another. The latency a get sees when it has to open one. */
static void bench_cold_open(const char *dir, uint64_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/cold", dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) exit(1);
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 1ull << 20;   /* ~120 files at N = 1M */
    o.max_open_files = 4;
    o.merge_trigger_ratio = -1;
    calypso *db;
    int rc = calypso_open(path, &o, &db);
    if (rc) die(NULL, "open", rc);
    fill(db, n);
    reader_arg ra = { db, n, 0, 0, 0, { 0 } };
    double t0 = now_s();
    for (uint64_t i = 0; i < n && now_s() - t0 < 3.0; i++) {
        char key[16], buf[128];
        size_t vlen;
        make_key(mix(i * 31 + 5) % n, key);
        double s0 = now_s();
        if ((rc = calypso_get_buf(db, key, 16, buf, sizeof buf, &vlen))) die(db, "get", rc);
        lat_add(&ra.l, now_s() - s0);
    }
    printf("coldget %9llu gets over %u+ files, 4 mapped: p50 %.1f us  p99 %.1f us  max %.1f us\n",
           (unsigned long long)ra.l.n, (unsigned)(n * 123 / (1u << 20)), lat_us(&ra.l, 0.5),
           lat_us(&ra.l, 0.99), lat_us(&ra.l, 1.0));
    free(ra.l.v);
    calypso_close(db);
}

/* Puts under SYNC_NONE with small datafiles: many rotations. The tail a
 * writer sees when its put seals a file and starts the next. */
static void bench_rotation(const char *dir, uint64_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/rotation", dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) exit(1);
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 4ull << 20;
    o.merge_trigger_ratio = -1;
    calypso *db;
    int rc = calypso_open(path, &o, &db);
    if (rc) die(NULL, "open", rc);
    lat l = { 0 };
    char key[16], val[100];
    memset(val, 'v', sizeof val);
    for (uint64_t i = 0; i < n; i++) {
        make_key(i, key);
        memcpy(val, &i, 8);
        double s0 = now_s();
        if ((rc = calypso_put(db, key, 16, val, 100))) die(db, "put", rc);
        lat_add(&l, now_s() - s0);
    }
    struct calypso_stats st;
    calypso_stats(db, &st);
    printf("rotput  %9llu puts, %u datafiles of 4 MiB: p50 %.2f us  p99.9 %.1f us  max %.1f us\n",
           (unsigned long long)l.n, st.datafiles, lat_us(&l, 0.5), lat_us(&l, 0.999),
           lat_us(&l, 1.0));
    free(l.v);
    calypso_close(db);
}

static void bench_merge(const char *dir, uint64_t n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/merge", dir);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) exit(1);
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 64ull << 20;
    o.merge_trigger_ratio = -1;
    calypso *db;
    int rc = calypso_open(path, &o, &db);
    if (rc) die(NULL, "open", rc);
    fill(db, n);
    fill(db, n);                        /* every key overwritten once: half dead */
    struct calypso_stats before, after;
    calypso_stats(db, &before);
    reader_arg ra = { db, n, 0, 0, 0, { 0 } };
    pthread_t tid;
    pthread_create(&tid, NULL, merge_reader, &ra);
    double t0 = now_s();
    if ((rc = calypso_merge(db))) die(db, "merge", rc);
    double t1 = now_s();
    ra.stop = 1;
    pthread_join(tid, NULL);
    calypso_stats(db, &after);
    printf("merge   %9llu keys  %7.1f MB in %6.2f s = %6.1f MB/s; %7.1f MB after; "
           "reader: %llu gets, longest %.2f ms\n", (unsigned long long)n,
           (double)before.size / 1e6, t1 - t0, (double)before.size / 1e6 / (t1 - t0),
           (double)after.size / 1e6, (unsigned long long)ra.gets, ra.worst * 1e3);
    printf("mergeget %8llu gets during the merge: p50 %.1f us  p99 %.1f us  max %.1f us\n",
           (unsigned long long)ra.l.n, lat_us(&ra.l, 0.5), lat_us(&ra.l, 0.99),
           lat_us(&ra.l, 1.0));
    free(ra.l.v);
    calypso_close(db);
}

/* 100 puts as one batch against 100 single puts, under SYNC_NONE and
 * SYNC_ALWAYS; and a get inside an update transaction against a plain one. */
static void bench_batch(const char *dir, uint64_t n)
{
    static const char *names[] = { "none", "interval", "always" };
    for (int mode = 0; mode < 3; mode += 2) {
        char path[4096];
        snprintf(path, sizeof path, "%s/batch-%s", dir, names[mode]);
        calypso *db = open_db(path, mode, 1);
        uint64_t groups = mode == CALYPSO_SYNC_ALWAYS ? 200 : n / 100;
        char key[16], val[100];
        memset(val, 'v', sizeof val);
        double t0 = now_s();
        for (uint64_t g = 0; g < groups; g++)
            for (uint64_t i = 0; i < 100; i++) {
                make_key(g * 100 + i, key);
                int rc = calypso_put(db, key, 16, val, 100);
                if (rc) die(db, "put", rc);
            }
        double single = now_s() - t0;
        t0 = now_s();
        for (uint64_t g = 0; g < groups; g++) {
            calypso_batch *b;
            int rc = calypso_batch_open(db, &b);
            if (rc) die(db, "batch", rc);
            for (uint64_t i = 0; i < 100; i++) {
                make_key(g * 100 + i, key);
                if ((rc = calypso_batch_put(b, key, 16, val, 100))) die(db, "batch put", rc);
            }
            if ((rc = calypso_batch_commit(b))) die(db, "batch commit", rc);
        }
        double batched = now_s() - t0;
        printf("batch   sync=%-8s %6llu x 100 puts: single %10.0f puts/s  batched %10.0f puts/s  "
               "(%.1fx)\n", names[mode], (unsigned long long)groups,
               (double)(groups * 100) / single, (double)(groups * 100) / batched, single / batched);
        if (mode == CALYPSO_SYNC_NONE) {
            uint64_t count = groups * 100;
            char buf[128];
            size_t vlen;
            t0 = now_s();
            for (uint64_t i = 0; i < count; i++) {
                make_key(mix(i + 3) % count, key);
                int rc = calypso_get_buf(db, key, 16, buf, sizeof buf, &vlen);
                if (rc) die(db, "get", rc);
            }
            double plain = now_s() - t0;
            calypso_txn *tx;
            int rc = calypso_update_begin(db, &tx);
            if (rc) die(db, "update", rc);
            t0 = now_s();
            for (uint64_t i = 0; i < count; i++) {
                make_key(mix(i + 3) % count, key);
                if ((rc = calypso_txn_get_buf(tx, key, 16, buf, sizeof buf, &vlen))) die(db, "txn get", rc);
            }
            double intx = now_s() - t0;
            calypso_txn_rollback(tx);
            if ((rc = calypso_view_begin(db, &tx))) die(db, "view", rc);
            t0 = now_s();
            for (uint64_t i = 0; i < count; i++) {
                make_key(mix(i + 3) % count, key);
                if ((rc = calypso_txn_get_buf(tx, key, 16, buf, sizeof buf, &vlen))) die(db, "view get", rc);
            }
            double inview = now_s() - t0;
            calypso_txn_rollback(tx);
            printf("txnget  %9llu gets: plain %10.0f ops/s  inside an update %10.0f ops/s  "
                   "inside a view %10.0f ops/s\n", (unsigned long long)count, (double)count / plain,
                   (double)count / intx, (double)count / inview);
            /* what a view costs to open and close, and what it costs the
             * writes made while it is open */
            uint64_t views = 100000;
            t0 = now_s();
            for (uint64_t i = 0; i < views; i++) {
                if ((rc = calypso_view_begin(db, &tx))) die(db, "view", rc);
                calypso_txn_rollback(tx);
            }
            double vopen = now_s() - t0;
            if ((rc = calypso_view_begin(db, &tx))) die(db, "view", rc);
            t0 = now_s();
            for (uint64_t i = 0; i < count; i++) {
                make_key(i, key);
                if ((rc = calypso_put(db, key, 16, val, 100))) die(db, "put", rc);
            }
            double putview = now_s() - t0;
            calypso_txn_rollback(tx);
            printf("view    open+close %8.0f ns;  %llu overwrites while a view is open: "
                   "%10.0f puts/s\n", vopen * 1e9 / (double)views, (unsigned long long)count,
                   (double)count / putview);
        }
        calypso_close(db);
    }
}

int main(void)
{
    const char *e = getenv("BENCH_N");
    uint64_t n = e ? strtoull(e, NULL, 10) : 1000000;
    const char *dir = getenv("BENCH_DIR");
    if (!dir) dir = "build/bench-engine";
    e = getenv("BENCH_SECS");
    double secs = e ? atof(e) : 2.0;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) return 1;
#if defined(__OPTIMIZE__)
    printf("# calypso %s bench-engine: N=%llu, 16-byte keys, 100-byte values, dir %s\n",
           calypso_version(), (unsigned long long)n, dir);
#else
    printf("# WARNING: unoptimized build; figures are not representative\n");
#endif
    bench_put_get(dir, n);
    bench_durable(dir, secs);
    bench_open(dir, n);
    bench_merge(dir, n);
    bench_cold_open(dir, n);
    bench_rotation(dir, n);
    bench_batch(dir, n);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) != 0;
}
