/*
 * leveldb.c: the LevelDB adapter (libleveldb, include/leveldb/c.h).
 *
 * Defaults, plus what a user tuning for this workload sets: a 64 MiB write
 * buffer, a 10-bit bloom filter (without one every miss reads a block per
 * level) and a 64 MiB block cache. Non-durable writes use the default write
 * options (written to the log, not synced); durable ones set sync = true,
 * which LevelDB groups across concurrent writers. LevelDB's C handle is
 * thread-safe, so sessions are the handle itself; get returns a malloc'd
 * copy of the value, freed at once. Scan-then-get is an iterator over the
 * keys with a leveldb_get of each; LevelDB has no multi-get (the harness
 * makes single gets).
 */
#include "../harness.h"

#include <leveldb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct ldb {
    leveldb_t *db;
    leveldb_options_t *opt;
    leveldb_filterpolicy_t *bloom;
    leveldb_cache_t *cache;
    leveldb_writeoptions_t *wo;
    leveldb_readoptions_t *ro;
};

static int ldb_fail(const char *what, char *err)
{
    bench_errf("leveldb", "%s: %s", what, err);
    leveldb_free(err);
    return BENCH_ERR;
}

static const char *ldb_version(void)
{
    static char v[32];
    snprintf(v, sizeof v, "%d.%d", leveldb_major_version(), leveldb_minor_version());
    return v;
}

static void ldb_free(struct ldb *d)
{
    if (d->db) leveldb_close(d->db);
    if (d->opt) leveldb_options_destroy(d->opt);
    if (d->bloom) leveldb_filterpolicy_destroy(d->bloom);
    if (d->cache) leveldb_cache_destroy(d->cache);
    if (d->wo) leveldb_writeoptions_destroy(d->wo);
    if (d->ro) leveldb_readoptions_destroy(d->ro);
    free(d);
}

static int ldb_open(const struct bench_config *cfg, void **out)
{
    struct ldb *d = calloc(1, sizeof *d);
    char *err = NULL;
    if (!d)
        return bench_errf("leveldb", "no memory");
    d->opt = leveldb_options_create();
    d->bloom = leveldb_filterpolicy_create_bloom(10);
    d->cache = leveldb_cache_create_lru(64 << 20);
    d->wo = leveldb_writeoptions_create();
    d->ro = leveldb_readoptions_create();
    leveldb_options_set_create_if_missing(d->opt, 1);
    leveldb_options_set_write_buffer_size(d->opt, 64 << 20);
    leveldb_options_set_filter_policy(d->opt, d->bloom);
    leveldb_options_set_cache(d->opt, d->cache);
    leveldb_writeoptions_set_sync(d->wo, cfg->durable);
    d->db = leveldb_open(d->opt, cfg->dir, &err);
    if (err) {
        ldb_free(d);
        return ldb_fail("open", err);
    }
    *out = d;
    return 0;
}

static int ldb_close(void *p)
{
    ldb_free(p);
    return 0;
}

static int ldb_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    struct ldb *d = p;
    char *err = NULL;
    leveldb_put(d->db, d->wo, k, kl, v, vl, &err);
    return err ? ldb_fail("put", err) : 0;
}

static int ldb_del(void *p, const void *k, size_t kl)
{
    struct ldb *d = p;
    char *err = NULL;
    leveldb_delete(d->db, d->wo, k, kl, &err);
    return err ? ldb_fail("delete", err) : 0;
}

static int ldb_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct ldb *d = p;
    char *err = NULL;
    char *v = leveldb_get(d->db, d->ro, k, kl, vl, &err);
    if (err)
        return ldb_fail("get", err);
    if (!v)
        return BENCH_MISSING;
    leveldb_free(v);
    return BENCH_FOUND;
}

static int ldb_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct ldb *d = p;
    leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->ro);
    char *err = NULL;
    if (plen)
        leveldb_iter_seek(it, prefix, plen);
    else
        leveldb_iter_seek_to_first(it);
    for (; leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl, vl;
        const char *k = leveldb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = leveldb_iter_value(it, &vl);
        if (fn(k, kl, v, vl, ctx) != 0)
            break;
    }
    leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    return err ? ldb_fail("iterator", err) : 0;
}

static int ldb_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct ldb *d = p;
    leveldb_iterator_t *it = leveldb_create_iterator(d->db, d->ro);
    char *err = NULL;
    if (plen)
        leveldb_iter_seek(it, prefix, plen);
    else
        leveldb_iter_seek_to_first(it);
    for (; leveldb_iter_valid(it); leveldb_iter_next(it)) {
        size_t kl, vl;
        const char *k = leveldb_iter_key(it, &kl);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        char *v = leveldb_get(d->db, d->ro, k, kl, &vl, &err);
        if (err)
            break;
        int stop = v && fn(k, kl, v, vl, ctx) != 0;
        leveldb_free(v);
        if (stop)
            break;
    }
    if (!err)
        leveldb_iter_get_error(it, &err);
    leveldb_iter_destroy(it);
    return err ? ldb_fail("scan+get", err) : 0;
}

/* LevelDB has no flush call: a synced empty batch syncs its log. */
static int ldb_sync(void *p)
{
    struct ldb *d = p;
    leveldb_writeoptions_t *wo = leveldb_writeoptions_create();
    leveldb_writebatch_t *b = leveldb_writebatch_create();
    char *err = NULL;
    leveldb_writeoptions_set_sync(wo, 1);
    leveldb_write(d->db, wo, b, &err);
    leveldb_writebatch_destroy(b);
    leveldb_writeoptions_destroy(wo);
    return err ? ldb_fail("sync", err) : 0;
}

static const struct bench_adapter ldb_adapter = {
    .name = "leveldb",
    .config = "64 MiB write buffer, 10-bit bloom filter, 64 MiB block cache, default "
              "compression; writes go to the log unsynced; scan-then-get: iterator + "
              "leveldb_get; no multi-get (single gets).",
    .durable = "WriteOptions.sync = true (concurrent writers share a log sync).",
    .version = ldb_version,
    .open = ldb_open, .close = ldb_close,
    .put = ldb_put, .get = ldb_get, .del = ldb_del, .scan = ldb_scan,
    .scan_get = ldb_scan_get,
    .sync = ldb_sync,
};

const struct bench_adapter *const bench_adapters_leveldb[] = { &ldb_adapter, NULL };
