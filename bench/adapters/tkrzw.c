/*
 * tkrzw.c: the Tkrzw adapters (libtkrzw, C API tkrzw_langc.h): HashDBM
 * (unordered, so scans are unsupported) and TreeDBM (a B+ tree).
 *
 * HashDBM gets 2N buckets, as its documentation advises for N records;
 * TreeDBM keeps its defaults. Both are thread-safe, so sessions are the
 * handle itself. Tkrzw has no sync-on-write mode: its durable mode here is
 * what a user would write, a hard synchronize (fsync of the file and its
 * metadata) after every write; concurrent writers do not share syncs.
 * get returns a malloc'd copy of the value, freed at once. TreeDBM's
 * scan-then-get is its iterator over the keys (tkrzw_dbm_iter_get_key)
 * with a tkrzw_dbm_get of each; Tkrzw has no multi-get call in C.
 */
#include "../harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tkrzw_langc.h>

struct tk_db {
    TkrzwDBM *dbm;
    int durable;
    const char *name;
};

static int tk_fail(const char *name, const char *what)
{
    return bench_errf(name, "%s: %s", what, tkrzw_get_last_status_message());
}

static const char *tk_version(void)
{
    return TKRZW_PACKAGE_VERSION;
}

static int tk_open_as(const struct bench_config *cfg, void **out, const char *name, int tree)
{
    struct tk_db *d = calloc(1, sizeof *d);
    char path[4096], params[256];
    if (!d)
        return bench_errf(name, "no memory");
    snprintf(path, sizeof path, "%s/db.%s", cfg->dir, tree ? "tkt" : "tkh");
    if (tree)
        snprintf(params, sizeof params, "dbm=TreeDBM");
    else
        snprintf(params, sizeof params, "dbm=HashDBM,num_buckets=%llu",
                 (unsigned long long)cfg->n * 2);
    d->dbm = tkrzw_dbm_open(path, true, params);
    if (!d->dbm) {
        free(d);
        return tk_fail(name, "open");
    }
    d->durable = cfg->durable;
    d->name = name;
    *out = d;
    return 0;
}

static int tk_open_hash(const struct bench_config *cfg, void **out)
{
    return tk_open_as(cfg, out, "tkrzw-hash", 0);
}

static int tk_open_tree(const struct bench_config *cfg, void **out)
{
    return tk_open_as(cfg, out, "tkrzw-tree", 1);
}

static int tk_close(void *p)
{
    struct tk_db *d = p;
    int rc = tkrzw_dbm_close(d->dbm) ? 0 : tk_fail(d->name, "close");
    free(d);
    return rc;
}

static int tk_sync(void *p)
{
    struct tk_db *d = p;
    return tkrzw_dbm_synchronize(d->dbm, true, NULL, NULL, "") ? 0 : tk_fail(d->name, "synchronize");
}

static int tk_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    struct tk_db *d = p;
    if (!tkrzw_dbm_set(d->dbm, k, (int32_t)kl, v, (int32_t)vl, true))
        return tk_fail(d->name, "set");
    return d->durable ? tk_sync(d) : 0;
}

static int tk_del(void *p, const void *k, size_t kl)
{
    struct tk_db *d = p;
    if (!tkrzw_dbm_remove(d->dbm, k, (int32_t)kl) &&
        tkrzw_get_last_status_code() != TKRZW_STATUS_NOT_FOUND_ERROR)
        return tk_fail(d->name, "remove");
    return d->durable ? tk_sync(d) : 0;
}

static int tk_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct tk_db *d = p;
    int32_t n = 0;
    char *v = tkrzw_dbm_get(d->dbm, k, (int32_t)kl, &n);
    *vl = v ? (size_t)n : 0;
    if (v) {
        free(v);
        return BENCH_FOUND;
    }
    if (tkrzw_get_last_status_code() == TKRZW_STATUS_NOT_FOUND_ERROR)
        return BENCH_MISSING;
    return tk_fail(d->name, "get");
}

/* TreeDBM only: jump to the first key >= prefix, walk while it matches. */
static int tk_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct tk_db *d = p;
    TkrzwDBMIter *it = tkrzw_dbm_make_iterator(d->dbm);
    int stop = 0;
    bool ok = plen ? tkrzw_dbm_iter_jump(it, prefix, (int32_t)plen) : tkrzw_dbm_iter_first(it);
    while (ok && !stop) {
        char *k, *v;
        int32_t kl, vl;
        if (!tkrzw_dbm_iter_get(it, &k, &kl, &v, &vl))
            break;                                    /* past the last record */
        stop = (size_t)kl < plen || memcmp(k, prefix, plen) != 0 ||
               fn(k, (size_t)kl, v, (size_t)vl, ctx) != 0;
        free(k);
        free(v);
        ok = stop || tkrzw_dbm_iter_next(it);
    }
    tkrzw_dbm_iter_free(it);
    return ok ? 0 : tk_fail(d->name, "iterator");
}

static int tk_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct tk_db *d = p;
    TkrzwDBMIter *it = tkrzw_dbm_make_iterator(d->dbm);
    int stop = 0, bad = 0;
    bool ok = plen ? tkrzw_dbm_iter_jump(it, prefix, (int32_t)plen) : tkrzw_dbm_iter_first(it);
    while (ok && !stop) {
        int32_t kl, vl = 0;
        char *k = tkrzw_dbm_iter_get_key(it, &kl);
        if (!k)
            break;                                    /* past the last record */
        stop = (size_t)kl < plen || memcmp(k, prefix, plen) != 0;
        char *v = stop ? NULL : tkrzw_dbm_get(d->dbm, k, kl, &vl);
        if (!stop && !v && tkrzw_get_last_status_code() != TKRZW_STATUS_NOT_FOUND_ERROR)
            stop = bad = 1;
        if (v)
            stop = fn(k, (size_t)kl, v, (size_t)vl, ctx) != 0;
        free(k);
        free(v);
        ok = stop || tkrzw_dbm_iter_next(it);
    }
    tkrzw_dbm_iter_free(it);
    return ok && !bad ? 0 : tk_fail(d->name, "iterator + get");
}

static const struct bench_adapter tk_hash = {
    .name = "tkrzw-hash",
    .config = "HashDBM, 2N buckets, memory-mapped file; unordered (no scans).",
    .durable = "synchronize(hard) after every write (fsync, no sharing across writers).",
    .version = tk_version,
    .open = tk_open_hash, .close = tk_close,
    .put = tk_put, .get = tk_get, .del = tk_del, .sync = tk_sync,
};

static const struct bench_adapter tk_tree = {
    .name = "tkrzw-tree",
    .config = "TreeDBM (B+ tree on a HashDBM), default page size and page cache.",
    .durable = "synchronize(hard) after every write (fsync, no sharing across writers).",
    .version = tk_version,
    .open = tk_open_tree, .close = tk_close,
    .put = tk_put, .get = tk_get, .del = tk_del, .scan = tk_scan, .scan_get = tk_scan_get,
    .sync = tk_sync,
};

const struct bench_adapter *const bench_adapters_tkrzw[] = { &tk_hash, &tk_tree, NULL };
