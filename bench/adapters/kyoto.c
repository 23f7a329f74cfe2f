/*
 * kyoto.c: the Kyoto Cabinet adapters (libkyotocabinet, C API kclangc.h):
 * HashDB (.kch, unordered, so scans are unsupported) and TreeDB (.kct, a
 * B+ tree in lexical order).
 *
 * HashDB gets 2N buckets and a memory map as large as its data will grow
 * (bnum, msiz), as its documentation advises; TreeDB keeps its defaults
 * (64 MiB page cache). Durable runs open with KCOAUTOSYNC: every update is
 * followed by a synchronization of the file. The handle is thread-safe
 * (it locks internally), so sessions are the handle itself. get returns a
 * malloc'd copy of the value, freed at once. TreeDB's scan-then-get is a
 * cursor over the keys (kccurgetkey) with a kcdbget of each; the C API has
 * no multi-get.
 */
#include "../harness.h"

#include <kclangc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct kc_db {
    KCDB *db;
    const char *name;
};

static int kc_fail(struct kc_db *d, const char *what)
{
    return bench_errf(d->name, "%s: %s", what, kcdbemsg(d->db));
}

static const char *kc_version(void)
{
    return KCVERSION;
}

static int kc_open_as(const struct bench_config *cfg, void **out, const char *name, int tree)
{
    struct kc_db *d = calloc(1, sizeof *d);
    char path[4096];
    uint32_t mode = KCOWRITER | KCOCREATE | (cfg->durable ? KCOAUTOSYNC : 0);
    if (!d)
        return bench_errf(name, "no memory");
    if (tree)
        snprintf(path, sizeof path, "%s/db.kct", cfg->dir);
    else
        snprintf(path, sizeof path, "%s/db.kch#bnum=%llu#msiz=%llu", cfg->dir,
                 (unsigned long long)cfg->n * 2,
                 (unsigned long long)cfg->n * (cfg->vsize + 64) * 2);
    d->name = name;
    d->db = kcdbnew();
    if (!kcdbopen(d->db, path, mode)) {
        kc_fail(d, "open");
        kcdbdel(d->db);
        free(d);
        return BENCH_ERR;
    }
    *out = d;
    return 0;
}

static int kc_open_hash(const struct bench_config *cfg, void **out)
{
    return kc_open_as(cfg, out, "kc-hash", 0);
}

static int kc_open_tree(const struct bench_config *cfg, void **out)
{
    return kc_open_as(cfg, out, "kc-tree", 1);
}

static int kc_close(void *p)
{
    struct kc_db *d = p;
    int rc = kcdbclose(d->db) ? 0 : kc_fail(d, "close");
    kcdbdel(d->db);
    free(d);
    return rc;
}

static int kc_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    struct kc_db *d = p;
    return kcdbset(d->db, k, kl, v, vl) ? 0 : kc_fail(d, "set");
}

static int kc_del(void *p, const void *k, size_t kl)
{
    struct kc_db *d = p;
    if (!kcdbremove(d->db, k, kl) && kcdbecode(d->db) != KCENOREC)
        return kc_fail(d, "remove");
    return 0;
}

static int kc_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct kc_db *d = p;
    char *v = kcdbget(d->db, k, kl, vl);
    if (v) {
        kcfree(v);
        return BENCH_FOUND;
    }
    *vl = 0;
    return kcdbecode(d->db) == KCENOREC ? BENCH_MISSING : kc_fail(d, "get");
}

/* TreeDB only: jump to the first key >= prefix, walk while it matches. */
static int kc_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct kc_db *d = p;
    KCCUR *cur = kcdbcursor(d->db);
    int stop = 0;
    if (plen ? !kccurjumpkey(cur, prefix, plen) : !kccurjump(cur)) {
        int empty = kccurecode(cur) == KCENOREC;
        kccurdel(cur);
        return empty ? 0 : kc_fail(d, "cursor jump");
    }
    while (!stop) {
        size_t kl, vl;
        const char *v;
        char *k = kccurget(cur, &kl, &v, &vl, 1);
        if (!k)
            break;                                    /* past the last record */
        stop = kl < plen || memcmp(k, prefix, plen) != 0 || fn(k, kl, v, vl, ctx) != 0;
        kcfree(k);
    }
    kccurdel(cur);
    return 0;
}

static int kc_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct kc_db *d = p;
    KCCUR *cur = kcdbcursor(d->db);
    int stop = 0, bad = 0;
    if (plen ? !kccurjumpkey(cur, prefix, plen) : !kccurjump(cur)) {
        int empty = kccurecode(cur) == KCENOREC;
        kccurdel(cur);
        return empty ? 0 : kc_fail(d, "cursor jump");
    }
    while (!stop) {
        size_t kl, vl;
        char *k = kccurgetkey(cur, &kl, 1);
        if (!k)
            break;                                    /* past the last record */
        stop = kl < plen || memcmp(k, prefix, plen) != 0;
        char *v = stop ? NULL : kcdbget(d->db, k, kl, &vl);
        if (!stop && !v && kcdbecode(d->db) != KCENOREC)
            stop = bad = 1;
        if (v)
            stop = fn(k, kl, v, vl, ctx) != 0;
        kcfree(v);
        kcfree(k);
    }
    kccurdel(cur);
    return bad ? kc_fail(d, "get in a walk") : 0;
}

static int kc_sync(void *p)
{
    struct kc_db *d = p;
    return kcdbsync(d->db, 1, NULL, NULL) ? 0 : kc_fail(d, "sync");
}

static const struct bench_adapter kc_hash = {
    .name = "kc-hash",
    .config = "HashDB, bnum = 2N, msiz sized for the data; unordered (no scans).",
    .durable = "KCOAUTOSYNC: every update is followed by a file synchronization.",
    .version = kc_version,
    .open = kc_open_hash, .close = kc_close,
    .put = kc_put, .get = kc_get, .del = kc_del, .sync = kc_sync,
};

static const struct bench_adapter kc_tree = {
    .name = "kc-tree",
    .config = "TreeDB (B+ tree), default page size and 64 MiB page cache.",
    .durable = "KCOAUTOSYNC: every update is followed by a file synchronization.",
    .version = kc_version,
    .open = kc_open_tree, .close = kc_close,
    .put = kc_put, .get = kc_get, .del = kc_del, .scan = kc_scan, .scan_get = kc_scan_get,
    .sync = kc_sync,
};

const struct bench_adapter *const bench_adapters_kyoto[] = { &kc_hash, &kc_tree, NULL };
