/*
 * calypso.c: the calypso adapter. It uses only the public API (calypso.h),
 * as a program that vendors calypso.c would.
 *
 * Default options, with sync = CALYPSO_SYNC_NONE (non-durable runs: every
 * write reaches the kernel before put returns) or CALYPSO_SYNC_ALWAYS
 * (durable runs: fdatasync before put returns, shared by concurrent
 * writers). The handle is shared by all threads; a session only adds a
 * per-thread value buffer, so gets use calypso_get_buf and allocate
 * nothing, and a cursor kept for scans: a scan bounds the cursor to the
 * prefix (calypso_cursor_seek_prefix) and steps with calypso_cursor_next,
 * reading each value with calypso_cursor_value (no second lookup). merge and the keydir size come
 * from calypso_merge and calypso_stats.
 *
 * CalypsoDB's own read patterns: scan_get walks keys with calypso_fold (or
 * calypso_scan for a prefix) and reads each value with calypso_get_buf
 * inside the callback; get_many is calypso_get_many, whose values are
 * freed with calypso_free as a caller would. The latency group's hints set
 * max_datafile_size and max_open_files.
 */
#include "../harness.h"

#include <stdlib.h>
#include <string.h>

#include "calypso.h"

struct cy_sess {
    calypso *db;
    char *buf;
    size_t cap;
    calypso_cursor *cur;                /* opened on the first scan */
};

static int cy_fail(calypso *db, const char *what, int rc)
{
    return bench_errf("calypso", "%s: %s (%s)", what, calypso_strerror(rc), calypso_errmsg(db));
}

static const char *cy_version(void)
{
    return calypso_version();
}

static int cy_open(const struct bench_config *cfg, void **out)
{
    calypso_options o;
    calypso *db;
    calypso_options_default(&o);
    o.sync = cfg->durable ? CALYPSO_SYNC_ALWAYS : CALYPSO_SYNC_NONE;
    if (cfg->file_bytes)
        o.max_datafile_size = cfg->file_bytes;
    if (cfg->open_files)
        o.max_open_files = cfg->open_files;
    int rc = calypso_open(cfg->dir, &o, &db);
    if (rc != CALYPSO_OK)
        return cy_fail(NULL, "open", rc);
    *out = db;
    return 0;
}

static int cy_close(void *db)
{
    int rc = calypso_close(db);
    return rc == CALYPSO_OK ? 0 : cy_fail(NULL, "close", rc);
}

static int cy_session_open(void *db, void **out)
{
    struct cy_sess *s = calloc(1, sizeof *s);
    if (!s)
        return bench_errf("calypso", "no memory");
    s->db = db;
    s->cap = 64 << 10;                  /* grown on CALYPSO_ETRUNC */
    s->buf = malloc(s->cap);
    if (!s->buf) {
        free(s);
        return bench_errf("calypso", "no memory");
    }
    *out = s;
    return 0;
}

static void cy_session_close(void *p)
{
    struct cy_sess *s = p;
    calypso_cursor_close(s->cur);
    free(s->buf);
    free(s);
}

static int cy_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    struct cy_sess *s = p;
    int rc = calypso_put(s->db, k, kl, v, vl);
    return rc == CALYPSO_OK ? 0 : cy_fail(s->db, "put", rc);
}

static int cy_del(void *p, const void *k, size_t kl)
{
    struct cy_sess *s = p;
    int rc = calypso_delete(s->db, k, kl);
    return rc == CALYPSO_OK ? 0 : cy_fail(s->db, "delete", rc);
}

/* Reads key into the session buffer, growing it once if it is short. */
static int cy_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct cy_sess *s = p;
    int rc = calypso_get_buf(s->db, k, kl, s->buf, s->cap, vl);
    if (rc == CALYPSO_ETRUNC) {
        char *nb = realloc(s->buf, *vl);
        if (!nb)
            return bench_errf("calypso", "no memory");
        s->buf = nb;
        s->cap = *vl;
        rc = calypso_get_buf(s->db, k, kl, s->buf, s->cap, vl);
    }
    if (rc == CALYPSO_OK)
        return BENCH_FOUND;
    *vl = 0;
    return rc == CALYPSO_ENOTFOUND ? BENCH_MISSING : cy_fail(s->db, "get", rc);
}

static int cy_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct cy_sess *s = p;
    int rc = s->cur ? CALYPSO_OK : calypso_cursor_open(s->db, &s->cur);
    if (rc != CALYPSO_OK)
        return cy_fail(s->db, "cursor", rc);
    for (rc = calypso_cursor_seek_prefix(s->cur, prefix, plen); rc == CALYPSO_OK;
         rc = calypso_cursor_next(s->cur)) {
        const void *k, *v;
        size_t kl, vl;
        if ((rc = calypso_cursor_key(s->cur, &k, &kl)) != CALYPSO_OK)
            break;
        rc = calypso_cursor_value(s->cur, &v, &vl);
        if (rc == CALYPSO_ENOTFOUND)
            continue;                   /* deleted since the cursor saw it */
        if (rc != CALYPSO_OK)
            break;
        if (fn(k, kl, v, vl, ctx) != 0)
            return 0;
    }
    return rc == CALYPSO_ENOTFOUND ? 0 : cy_fail(s->db, "scan", rc);
}

/* What a key walk's callback needs to read each value and hand it on. */
struct cy_walk {
    struct cy_sess *s;
    bench_kv_fn fn;
    void *ctx;
    int rc;                             /* a failed get: its code */
};

static int cy_walk_fn(const void *key, size_t klen, void *ctx)
{
    struct cy_walk *w = ctx;
    size_t vl;
    int rc = cy_get(w->s, key, klen, &vl);
    if (rc == BENCH_MISSING)
        return 0;                       /* deleted since the walk saw it */
    if (rc != BENCH_FOUND) {
        w->rc = rc;
        return 1;
    }
    return w->fn(key, klen, w->s->buf, vl, w->ctx) != 0 ? 2 : 0;
}

/* The scan-then-get pattern: calypso_fold (all keys) or calypso_scan (a
 * prefix), calypso_get_buf of each key inside the callback. */
static int cy_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct cy_sess *s = p;
    struct cy_walk w = { .s = s, .fn = fn, .ctx = ctx };
    int rc = plen ? calypso_scan(s->db, prefix, plen, cy_walk_fn, &w)
                  : calypso_fold(s->db, cy_walk_fn, &w);
    if (w.rc)
        return BENCH_ERR;               /* cy_get said why */
    return rc == CALYPSO_OK || rc == 2 ? 0 : cy_fail(s->db, plen ? "scan" : "fold", rc);
}

#define CY_MANY_MAX 64

static int cy_get_many(void *p, size_t n, const void *const *keys, const size_t *klens,
                       size_t *vlens, int *found)
{
    struct cy_sess *s = p;
    void *vals[CY_MANY_MAX];
    int rcs[CY_MANY_MAX];
    if (n > CY_MANY_MAX)
        return bench_errf("calypso", "get_many: %zu keys, at most %d", n, CY_MANY_MAX);
    for (size_t i = 0; i < n; i++)
        vals[i] = NULL;
    int rc = calypso_get_many(s->db, n, keys, klens, vals, vlens, rcs);
    for (size_t i = 0; i < n; i++) {
        found[i] = rcs[i] == CALYPSO_OK ? BENCH_FOUND : BENCH_MISSING;
        calypso_free(vals[i]);
    }
    return rc == CALYPSO_OK ? 0 : cy_fail(s->db, "get_many", rc);
}

static int cy_sync(void *db)
{
    int rc = calypso_sync(db);
    return rc == CALYPSO_OK ? 0 : cy_fail(db, "sync", rc);
}

static int cy_merge(void *db)
{
    int rc = calypso_merge(db);
    return rc == CALYPSO_OK ? 0 : cy_fail(db, "merge", rc);
}

static int cy_keydir(void *db, uint64_t *bytes, uint64_t *keys)
{
    struct calypso_stats st;
    int rc = calypso_stats(db, &st);
    if (rc != CALYPSO_OK)
        return cy_fail(db, "stats", rc);
    *bytes = st.keydir_bytes;
    *keys = st.keys;
    return 0;
}

static const struct bench_adapter cy_adapter = {
    .name = "calypso",
    .config = "default options, sync = CALYPSO_SYNC_NONE; scans step a cursor bounded to the "
              "prefix (calypso_cursor_seek_prefix); scan-then-get is calypso_fold / calypso_scan "
              "with calypso_get_buf in the callback; multi-get is calypso_get_many.",
    .durable = "CALYPSO_SYNC_ALWAYS: fdatasync before put returns, shared by concurrent "
               "writers (group commit).",
    .version = cy_version,
    .open = cy_open, .close = cy_close,
    .session_open = cy_session_open, .session_close = cy_session_close,
    .put = cy_put, .get = cy_get, .del = cy_del, .scan = cy_scan,
    .scan_get = cy_scan_get, .get_many = cy_get_many,
    .sync = cy_sync, .merge = cy_merge, .keydir_bytes = cy_keydir,
};

const struct bench_adapter *const bench_adapters_calypso[] = { &cy_adapter, NULL };
