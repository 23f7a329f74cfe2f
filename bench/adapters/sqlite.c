/*
 * sqlite.c: the SQLite adapter (libsqlite3), as a careful user runs it as
 * a key-value store.
 *
 * One WITHOUT ROWID table kv(k BLOB PRIMARY KEY, v BLOB), WAL journal,
 * synchronous=NORMAL (durable runs: FULL, so every commit syncs the WAL),
 * a 64 MiB page cache, prepared statements. Every session is its own
 * connection (SQLite connections must not be shared across threads for
 * speed), with a busy timeout so that concurrent writers wait for the
 * write lock instead of failing. Fills, overwrites and deletes are batched
 * by the harness in transactions of 1000 writes; mixed and durable writes
 * are one autocommit statement each. A scan is one range query in key
 * order that stops at the first key outside the prefix. Scan-then-get is a
 * range query over the keys alone with the get statement run for each key
 * on the same connection; SQLite has no multi-get (single gets).
 */
#include "../harness.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sq_db {
    char path[4096];
    int durable;
    sqlite3 *main;        /* schema, sync and checkpoint */
};

struct sq_sess {
    sqlite3 *c;
    sqlite3_stmt *put, *get, *del, *scan, *keys, *begin, *commit;
    char *buf;
    size_t cap;
};

static int sq_fail(sqlite3 *c, const char *what)
{
    return bench_errf("sqlite", "%s: %s", what, c ? sqlite3_errmsg(c) : "out of memory");
}

static const char *sq_version(void)
{
    return sqlite3_libversion();
}

/* Opens a connection with the pragmas of this run. */
static int sq_connect(const struct sq_db *d, sqlite3 **out)
{
    char pragmas[256];
    snprintf(pragmas, sizeof pragmas,
             "PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; PRAGMA cache_size=-65536;",
             d->durable ? "FULL" : "NORMAL");
    if (sqlite3_open(d->path, out) != SQLITE_OK) {
        sq_fail(*out, "open");
        sqlite3_close(*out);
        return BENCH_ERR;
    }
    sqlite3_busy_timeout(*out, 60000);
    if (sqlite3_exec(*out, pragmas, NULL, NULL, NULL) != SQLITE_OK) {
        sq_fail(*out, "pragmas");
        sqlite3_close(*out);
        return BENCH_ERR;
    }
    return 0;
}

static int sq_open(const struct bench_config *cfg, void **out)
{
    struct sq_db *d = calloc(1, sizeof *d);
    if (!d)
        return bench_errf("sqlite", "no memory");
    snprintf(d->path, sizeof d->path, "%s/kv.sqlite", cfg->dir);
    d->durable = cfg->durable;
    if (sq_connect(d, &d->main) != 0) {
        free(d);
        return BENCH_ERR;
    }
    if (sqlite3_exec(d->main, "CREATE TABLE IF NOT EXISTS kv(k BLOB PRIMARY KEY, v BLOB) "
                     "WITHOUT ROWID", NULL, NULL, NULL) != SQLITE_OK) {
        sq_fail(d->main, "create table");
        sqlite3_close(d->main);
        free(d);
        return BENCH_ERR;
    }
    *out = d;
    return 0;
}

static int sq_close(void *p)
{
    struct sq_db *d = p;
    int rc = sqlite3_close(d->main) == SQLITE_OK ? 0 : sq_fail(d->main, "close");
    free(d);
    return rc;
}

static void sq_session_close(void *p)
{
    struct sq_sess *s = p;
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->del);
    sqlite3_finalize(s->scan);
    sqlite3_finalize(s->keys);
    sqlite3_finalize(s->begin);
    sqlite3_finalize(s->commit);
    sqlite3_close(s->c);
    free(s->buf);
    free(s);
}

static int sq_session_open(void *p, void **out)
{
    struct sq_sess *s = calloc(1, sizeof *s);
    if (!s)
        return bench_errf("sqlite", "no memory");
    if (sq_connect(p, &s->c) != 0) {
        free(s);
        return BENCH_ERR;
    }
    if (sqlite3_prepare_v2(s->c, "INSERT OR REPLACE INTO kv(k, v) VALUES(?1, ?2)", -1, &s->put, NULL) ||
        sqlite3_prepare_v2(s->c, "SELECT v FROM kv WHERE k = ?1", -1, &s->get, NULL) ||
        sqlite3_prepare_v2(s->c, "DELETE FROM kv WHERE k = ?1", -1, &s->del, NULL) ||
        sqlite3_prepare_v2(s->c, "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k", -1, &s->scan, NULL) ||
        sqlite3_prepare_v2(s->c, "SELECT k FROM kv WHERE k >= ?1 ORDER BY k", -1, &s->keys, NULL) ||
        sqlite3_prepare_v2(s->c, "BEGIN", -1, &s->begin, NULL) ||
        sqlite3_prepare_v2(s->c, "COMMIT", -1, &s->commit, NULL)) {
        sq_fail(s->c, "prepare");
        sq_session_close(s);
        return BENCH_ERR;
    }
    *out = s;
    return 0;
}

/* Runs a statement that returns no rows, then resets it. */
static int sq_step_done(struct sq_sess *s, sqlite3_stmt *st, const char *what)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : sq_fail(s->c, what);
}

static int sq_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    struct sq_sess *s = p;
    sqlite3_bind_blob(s->put, 1, k, (int)kl, SQLITE_STATIC);
    sqlite3_bind_blob(s->put, 2, v, (int)vl, SQLITE_STATIC);
    return sq_step_done(s, s->put, "put");
}

static int sq_del(void *p, const void *k, size_t kl)
{
    struct sq_sess *s = p;
    sqlite3_bind_blob(s->del, 1, k, (int)kl, SQLITE_STATIC);
    return sq_step_done(s, s->del, "delete");
}

static int sq_begin(void *p)
{
    struct sq_sess *s = p;
    return sq_step_done(s, s->begin, "begin");
}

static int sq_commit(void *p)
{
    struct sq_sess *s = p;
    return sq_step_done(s, s->commit, "commit");
}

static int sq_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct sq_sess *s = p;
    sqlite3_bind_blob(s->get, 1, k, (int)kl, SQLITE_STATIC);
    int rc = sqlite3_step(s->get);
    *vl = 0;
    if (rc == SQLITE_ROW) {
        size_t n = (size_t)sqlite3_column_bytes(s->get, 0);
        if (n > s->cap) {
            free(s->buf);
            s->buf = malloc(n);
            s->cap = s->buf ? n : 0;
        }
        if (s->buf)
            memcpy(s->buf, sqlite3_column_blob(s->get, 0), n);
        *vl = n;
    }
    sqlite3_reset(s->get);
    if (rc == SQLITE_ROW)
        return BENCH_FOUND;
    return rc == SQLITE_DONE ? BENCH_MISSING : sq_fail(s->c, "get");
}

static int sq_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct sq_sess *s = p;
    int rc;
    sqlite3_bind_blob(s->scan, 1, prefix, (int)plen, SQLITE_STATIC);
    while ((rc = sqlite3_step(s->scan)) == SQLITE_ROW) {
        const void *k = sqlite3_column_blob(s->scan, 0);
        size_t kl = (size_t)sqlite3_column_bytes(s->scan, 0);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        const void *v = sqlite3_column_blob(s->scan, 1);
        if (fn(k, kl, v, (size_t)sqlite3_column_bytes(s->scan, 1), ctx) != 0)
            break;
    }
    sqlite3_reset(s->scan);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(s->c, "scan");
}

static int sq_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct sq_sess *s = p;
    int rc, got = BENCH_FOUND;
    size_t vl;
    sqlite3_bind_blob(s->keys, 1, prefix, (int)plen, SQLITE_STATIC);
    while ((rc = sqlite3_step(s->keys)) == SQLITE_ROW) {
        const void *k = sqlite3_column_blob(s->keys, 0);
        size_t kl = (size_t)sqlite3_column_bytes(s->keys, 0);
        if (kl < plen || memcmp(k, prefix, plen) != 0)
            break;
        if ((got = sq_get(s, k, kl, &vl)) == BENCH_ERR)
            break;
        if (got == BENCH_FOUND && fn(k, kl, s->buf, vl, ctx) != 0)
            break;
    }
    sqlite3_reset(s->keys);
    if (got == BENCH_ERR)
        return BENCH_ERR;
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sq_fail(s->c, "scan+get");
}

/* A full checkpoint: the WAL is synced and copied into the database. */
static int sq_sync(void *p)
{
    struct sq_db *d = p;
    int rc = sqlite3_wal_checkpoint_v2(d->main, NULL, SQLITE_CHECKPOINT_FULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : sq_fail(d->main, "checkpoint");
}

static const struct bench_adapter sq_adapter = {
    .name = "sqlite",
    .config = "WITHOUT ROWID table, WAL, synchronous=NORMAL, 64 MiB page cache, prepared "
              "statements, a connection per thread, fills batched 1000 writes per transaction; "
              "scan-then-get: a key-only range query + the get statement per key.",
    .durable = "synchronous=FULL, one autocommit statement per write (the WAL is synced "
               "at every commit).",
    .version = sq_version,
    .open = sq_open, .close = sq_close,
    .session_open = sq_session_open, .session_close = sq_session_close,
    .put = sq_put, .get = sq_get, .del = sq_del, .scan = sq_scan, .scan_get = sq_scan_get,
    .begin = sq_begin, .commit = sq_commit, .sync = sq_sync,
};

const struct bench_adapter *const bench_adapters_sqlite[] = { &sq_adapter, NULL };
