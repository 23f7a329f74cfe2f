/*
 * rocksdb.c: the RocksDB adapter (librocksdb, rocksdb/c.h).
 *
 * Defaults, plus what a user tuning for this workload sets: background
 * threads for every core (increase_parallelism), a 64 MiB write buffer
 * (the default), a 10-bit bloom filter and a 64 MiB block cache.
 * Non-durable writes go to the WAL unsynced; durable ones set sync = true,
 * which RocksDB groups across concurrent writers. The handle is
 * thread-safe, so sessions are the handle itself. The database is opened
 * with its one column family named, so that the handle of the default
 * family is at hand for the batched MultiGet (rocksdb_batched_multi_get_cf,
 * the fast one: lookups of a batch share their work). Scan-then-get is an
 * iterator over the keys with a rocksdb_get of each.
 *
 * The version: RocksDB's version header is C++, so it is read from the
 * file name of the shared library that holds rocksdb_open.
 */
#define _GNU_SOURCE
#include "../harness.h"

#include <dlfcn.h>
#include <limits.h>
#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct rdb {
    rocksdb_t *db;
    rocksdb_options_t *opt;
    rocksdb_block_based_table_options_t *table;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo;
    rocksdb_readoptions_t *ro;
    rocksdb_column_family_handle_t *cf;   /* "default" */
};

static int rdb_fail(const char *what, char *err)
{
    bench_errf("rocksdb", "%s: %s", what, err);
    rocksdb_free(err);
    return BENCH_ERR;
}

static const char *rdb_version(void)
{
    static char v[64] = "?";
    Dl_info info;
    char real[PATH_MAX];
    void *addr;
    rocksdb_t *(*fn)(const rocksdb_options_t *, const char *, char **) = rocksdb_open;
    memcpy(&addr, &fn, sizeof addr);      /* ISO C has no function-to-void* cast */
    if (dladdr(addr, &info) && info.dli_fname && realpath(info.dli_fname, real)) {
        const char *so = strstr(real, ".so.");
        if (so)
            snprintf(v, sizeof v, "%s", so + 4);
    }
    return v;
}

static void rdb_free(struct rdb *d)
{
    if (d->cf) rocksdb_column_family_handle_destroy(d->cf);
    if (d->db) rocksdb_close(d->db);
    if (d->opt) rocksdb_options_destroy(d->opt);
    if (d->table) rocksdb_block_based_options_destroy(d->table);
    if (d->cache) rocksdb_cache_destroy(d->cache);
    if (d->wo) rocksdb_writeoptions_destroy(d->wo);
    if (d->ro) rocksdb_readoptions_destroy(d->ro);
    free(d);
}

static int rdb_open(const struct bench_config *cfg, void **out)
{
    struct rdb *d = calloc(1, sizeof *d);
    char *err = NULL;
    if (!d)
        return bench_errf("rocksdb", "no memory");
    d->opt = rocksdb_options_create();
    d->table = rocksdb_block_based_options_create();
    d->cache = rocksdb_cache_create_lru(64 << 20);
    d->wo = rocksdb_writeoptions_create();
    d->ro = rocksdb_readoptions_create();
    rocksdb_block_based_options_set_filter_policy(d->table, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_block_based_options_set_block_cache(d->table, d->cache);
    rocksdb_options_set_block_based_table_factory(d->opt, d->table);
    rocksdb_options_increase_parallelism(d->opt, (int)sysconf(_SC_NPROCESSORS_ONLN));
    rocksdb_options_set_create_if_missing(d->opt, 1);
    rocksdb_options_set_write_buffer_size(d->opt, 64 << 20);
    rocksdb_writeoptions_set_sync(d->wo, (unsigned char)cfg->durable);
    const char *cf_name = "default";
    const rocksdb_options_t *cf_opt = d->opt;
    d->db = rocksdb_open_column_families(d->opt, cfg->dir, 1, &cf_name, &cf_opt, &d->cf, &err);
    if (err) {
        rdb_free(d);
        return rdb_fail("open", err);
    }
    *out = d;
    return 0;
}

static int rdb_close(void *p)
{
    rdb_free(p);
    return 0;
}

static int rdb_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    struct rdb *d = p;
    char *err = NULL;
    rocksdb_put(d->db, d->wo, k, kl, v, vl, &err);
    return err ? rdb_fail("put", err) : 0;
}

static int rdb_del(void *p, const void *k, size_t kl)
{
    struct rdb *d = p;
    char *err = NULL;
    rocksdb_delete(d->db, d->wo, k, kl, &err);
    return err ? rdb_fail("delete", err) : 0;
}

static int rdb_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct rdb *d = p;
    char *err = NULL;
    char *v = rocksdb_get(d->db, d->ro, k, kl, vl, &err);
    if (err)
        return rdb_fail("get", err);
    if (!v)
        return BENCH_MISSING;
    rocksdb_free(v);
    return BENCH_FOUND;
}

static int rdb_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct rdb *d = p;
    rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->ro);
    char *err = NULL;
    if (plen)
        rocksdb_iter_seek(it, prefix, plen);
    else
        rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vl);
        if (fn(k, kl, v, vl, ctx) != 0)
            break;
    }
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? rdb_fail("iterator", err) : 0;
}

#define RDB_MANY_MAX 64

static int rdb_get_many(void *p, size_t n, const void *const *keys, const size_t *klens,
                        size_t *vlens, int *found)
{
    struct rdb *d = p;
    rocksdb_pinnableslice_t *vals[RDB_MANY_MAX];
    char *errs[RDB_MANY_MAX];
    int rc = 0;
    if (n > RDB_MANY_MAX)
        return bench_errf("rocksdb", "multi-get: %zu keys, at most %d", n, RDB_MANY_MAX);
    rocksdb_batched_multi_get_cf(d->db, d->ro, d->cf, n, (const char *const *)keys, klens,
                                 vals, errs, 0);
    for (size_t i = 0; i < n; i++) {
        if (errs[i]) {
            if (rc == 0)
                rc = rdb_fail("multi-get", errs[i]);
            else
                rocksdb_free(errs[i]);
            found[i] = BENCH_ERR;
        } else {
            found[i] = vals[i] ? BENCH_FOUND : BENCH_MISSING;
        }
        vlens[i] = 0;
        if (vals[i]) {
            rocksdb_pinnableslice_value(vals[i], &vlens[i]);
            rocksdb_pinnableslice_destroy(vals[i]);
        }
    }
    return rc;
}

static int rdb_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct rdb *d = p;
    rocksdb_iterator_t *it = rocksdb_create_iterator(d->db, d->ro);
    char *err = NULL;
    if (plen)
        rocksdb_iter_seek(it, prefix, plen);
    else
        rocksdb_iter_seek_to_first(it);
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        const char *k = rocksdb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        char *v = rocksdb_get(d->db, d->ro, k, kl, &vl, &err);
        if (err)
            break;
        int stop = v && fn(k, kl, v, vl, ctx) != 0;
        rocksdb_free(v);
        if (stop)
            break;
    }
    if (!err)
        rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    return err ? rdb_fail("scan+get", err) : 0;
}

static int rdb_sync(void *p)
{
    struct rdb *d = p;
    char *err = NULL;
    rocksdb_flush_wal(d->db, 1, &err);
    return err ? rdb_fail("flush_wal", err) : 0;
}

static const struct bench_adapter rdb_adapter = {
    .name = "rocksdb",
    .config = "increase_parallelism(cores), 64 MiB write buffer, 10-bit bloom filter, "
              "64 MiB block cache, default compression; writes go to the WAL unsynced; "
              "scan-then-get: iterator + rocksdb_get; multi-get: batched MultiGet.",
    .durable = "WriteOptions.sync = true (concurrent writers share a WAL sync).",
    .version = rdb_version,
    .open = rdb_open, .close = rdb_close,
    .put = rdb_put, .get = rdb_get, .del = rdb_del, .scan = rdb_scan,
    .scan_get = rdb_scan_get, .get_many = rdb_get_many,
    .sync = rdb_sync,
};

const struct bench_adapter *const bench_adapters_rocksdb[] = { &rdb_adapter, NULL };
