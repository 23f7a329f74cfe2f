/*
 * lmdb.c: the LMDB adapter (liblmdb, C API).
 *
 * One environment, the unnamed database. Non-durable runs open with
 * MDB_NOSYNC | MDB_NOMETASYNC (commits skip fsync; the OS writes the map
 * back); durable runs use LMDB's default, a synced commit per transaction.
 * MDB_NOTLS ties read transactions to sessions, not threads. Each session
 * keeps one read transaction that it renews for every get and scan, so a
 * read always sees the newest commit, and copies the value out before it
 * resets the transaction (a pointer into the map is valid only until then).
 * Writes outside begin/commit are one transaction each; fills are batched
 * by the harness through begin/commit. Scan-then-get is a cursor over the
 * keys with an mdb_get of each key in the same read transaction; a
 * multi-get is the n mdb_gets in one read transaction (LMDB has no
 * multi-get call: that is how its user reads several keys).
 */
#include "../harness.h"

#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LMDB_MAPSIZE (64ull << 30)   /* address space only: the file grows as used */

struct lmdb_db {
    MDB_env *env;
    MDB_dbi dbi;
};

struct lmdb_sess {
    struct lmdb_db *db;
    MDB_txn *rtxn;    /* reset between reads */
    MDB_txn *wtxn;    /* open between begin and commit */
    char *buf;
    size_t cap;
};

static int lmdb_err(const char *what, int rc)
{
    return bench_errf("lmdb", "%s: %s", what, mdb_strerror(rc));
}

static const char *lmdb_version(void)
{
    static char v[32];
    int maj, min, pat;
    mdb_version(&maj, &min, &pat);
    snprintf(v, sizeof v, "%d.%d.%d", maj, min, pat);
    return v;
}

static int lmdb_open(const struct bench_config *cfg, void **out)
{
    struct lmdb_db *db = calloc(1, sizeof *db);
    unsigned flags = MDB_NOTLS | (cfg->durable ? 0 : MDB_NOSYNC | MDB_NOMETASYNC);
    MDB_txn *txn;
    int rc;
    if (!db)
        return bench_errf("lmdb", "no memory");
    if ((rc = mdb_env_create(&db->env)) != 0) {
        free(db);
        return lmdb_err("mdb_env_create", rc);
    }
    if ((rc = mdb_env_set_mapsize(db->env, LMDB_MAPSIZE)) != 0 ||
        (rc = mdb_env_open(db->env, cfg->dir, flags, 0644)) != 0 ||
        (rc = mdb_txn_begin(db->env, NULL, 0, &txn)) != 0) {
        mdb_env_close(db->env);
        free(db);
        return lmdb_err("open", rc);
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &db->dbi)) != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        mdb_env_close(db->env);
        free(db);
        return lmdb_err("mdb_dbi_open", rc);
    }
    *out = db;
    return 0;
}

static int lmdb_close(void *p)
{
    struct lmdb_db *db = p;
    mdb_env_close(db->env);
    free(db);
    return 0;
}

static int lmdb_session_open(void *p, void **out)
{
    struct lmdb_sess *s = calloc(1, sizeof *s);
    int rc;
    if (!s)
        return bench_errf("lmdb", "no memory");
    s->db = p;
    if ((rc = mdb_txn_begin(s->db->env, NULL, MDB_RDONLY, &s->rtxn)) != 0) {
        free(s);
        return lmdb_err("read txn", rc);
    }
    mdb_txn_reset(s->rtxn);
    *out = s;
    return 0;
}

static void lmdb_session_close(void *p)
{
    struct lmdb_sess *s = p;
    if (s->wtxn)
        mdb_txn_abort(s->wtxn);
    mdb_txn_abort(s->rtxn);
    free(s->buf);
    free(s);
}

static int lmdb_begin(void *p)
{
    struct lmdb_sess *s = p;
    int rc = mdb_txn_begin(s->db->env, NULL, 0, &s->wtxn);
    return rc ? lmdb_err("mdb_txn_begin", rc) : 0;
}

static int lmdb_commit(void *p)
{
    struct lmdb_sess *s = p;
    int rc = mdb_txn_commit(s->wtxn);
    s->wtxn = NULL;
    return rc ? lmdb_err("mdb_txn_commit", rc) : 0;
}

/* One write in the open batch, or in a transaction of its own. */
static int lmdb_write(struct lmdb_sess *s, const void *k, size_t kl, const void *v, size_t vl,
                      int del)
{
    MDB_val key = { kl, (void *)k }, val = { vl, (void *)v };
    int own = s->wtxn == NULL, rc;
    if (own && lmdb_begin(s) != 0)
        return BENCH_ERR;
    rc = del ? mdb_del(s->wtxn, s->db->dbi, &key, NULL) : mdb_put(s->wtxn, s->db->dbi, &key, &val, 0);
    if (rc != 0 && !(del && rc == MDB_NOTFOUND)) {
        mdb_txn_abort(s->wtxn);
        s->wtxn = NULL;
        return lmdb_err(del ? "mdb_del" : "mdb_put", rc);
    }
    return own ? lmdb_commit(s) : 0;
}

static int lmdb_put(void *p, const void *k, size_t kl, const void *v, size_t vl)
{
    return lmdb_write(p, k, kl, v, vl, 0);
}

static int lmdb_del(void *p, const void *k, size_t kl)
{
    return lmdb_write(p, k, kl, NULL, 0, 1);
}

/* The transaction reads run in: the open batch, or the renewed reader. */
static MDB_txn *lmdb_read_txn(struct lmdb_sess *s)
{
    if (s->wtxn)
        return s->wtxn;
    return mdb_txn_renew(s->rtxn) == 0 ? s->rtxn : NULL;
}

static void lmdb_read_done(struct lmdb_sess *s, MDB_txn *txn)
{
    if (txn == s->rtxn)
        mdb_txn_reset(s->rtxn);
}

/* One mdb_get in txn, the value copied out into the session buffer. */
static int lmdb_get_in(struct lmdb_sess *s, MDB_txn *txn, const void *k, size_t kl, size_t *vl)
{
    MDB_val key = { kl, (void *)k }, val;
    int rc = mdb_get(txn, s->db->dbi, &key, &val);
    if (rc == 0 && val.mv_size > s->cap) {
        free(s->buf);
        s->buf = malloc(val.mv_size);
        s->cap = s->buf ? val.mv_size : 0;
    }
    if (rc == 0 && s->buf)
        memcpy(s->buf, val.mv_data, val.mv_size);
    *vl = rc == 0 ? val.mv_size : 0;
    if (rc == MDB_NOTFOUND)
        return BENCH_MISSING;
    return rc ? lmdb_err("mdb_get", rc) : BENCH_FOUND;
}

static int lmdb_get(void *p, const void *k, size_t kl, size_t *vl)
{
    struct lmdb_sess *s = p;
    MDB_txn *txn = lmdb_read_txn(s);
    if (!txn)
        return bench_errf("lmdb", "mdb_txn_renew failed");
    int rc = lmdb_get_in(s, txn, k, kl, vl);
    lmdb_read_done(s, txn);
    return rc;
}

static int lmdb_get_many(void *p, size_t n, const void *const *keys, const size_t *klens,
                         size_t *vlens, int *found)
{
    struct lmdb_sess *s = p;
    MDB_txn *txn = lmdb_read_txn(s);
    int rc = 0;
    if (!txn)
        return bench_errf("lmdb", "mdb_txn_renew failed");
    for (size_t i = 0; i < n && rc == 0; i++)
        if ((found[i] = lmdb_get_in(s, txn, keys[i], klens[i], &vlens[i])) == BENCH_ERR)
            rc = BENCH_ERR;
    lmdb_read_done(s, txn);
    return rc;
}

static int lmdb_scan(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct lmdb_sess *s = p;
    MDB_txn *txn = lmdb_read_txn(s);
    MDB_cursor *cur;
    MDB_val key = { plen, (void *)prefix }, val;
    if (!txn || mdb_cursor_open(txn, s->db->dbi, &cur) != 0) {
        if (txn)
            lmdb_read_done(s, txn);
        return bench_errf("lmdb", "cannot open a cursor");
    }
    int rc = mdb_cursor_get(cur, &key, &val, plen ? MDB_SET_RANGE : MDB_FIRST);
    while (rc == 0 && key.mv_size >= plen && memcmp(key.mv_data, prefix, plen) == 0) {
        if (fn(key.mv_data, key.mv_size, val.mv_data, val.mv_size, ctx) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    lmdb_read_done(s, txn);
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err("mdb_cursor_get", rc);
}

/* A cursor over the keys (the values it passes are not touched) and an
 * mdb_get of each key in the same transaction. */
static int lmdb_scan_get(void *p, const void *prefix, size_t plen, bench_kv_fn fn, void *ctx)
{
    struct lmdb_sess *s = p;
    MDB_txn *txn = lmdb_read_txn(s);
    MDB_cursor *cur;
    MDB_val key = { plen, (void *)prefix }, val;
    size_t vl;
    if (!txn || mdb_cursor_open(txn, s->db->dbi, &cur) != 0) {
        if (txn)
            lmdb_read_done(s, txn);
        return bench_errf("lmdb", "cannot open a cursor");
    }
    int rc = mdb_cursor_get(cur, &key, &val, plen ? MDB_SET_RANGE : MDB_FIRST), got = 0;
    while (rc == 0 && key.mv_size >= plen && memcmp(key.mv_data, prefix, plen) == 0) {
        if ((got = lmdb_get_in(s, txn, key.mv_data, key.mv_size, &vl)) == BENCH_ERR)
            break;
        if (got == BENCH_FOUND && fn(key.mv_data, key.mv_size, s->buf, vl, ctx) != 0)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    lmdb_read_done(s, txn);
    if (got == BENCH_ERR)
        return BENCH_ERR;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : lmdb_err("mdb_cursor_get", rc);
}

static int lmdb_sync(void *p)
{
    struct lmdb_db *db = p;
    int rc = mdb_env_sync(db->env, 1);
    return rc ? lmdb_err("mdb_env_sync", rc) : 0;
}

static const struct bench_adapter lmdb_adapter = {
    .name = "lmdb",
    .config = "MDB_NOSYNC|MDB_NOMETASYNC, 64 GiB map, one read txn per session renewed per read, "
              "fills batched 1000 writes per txn; scan-then-get: cursor + mdb_get in one txn; "
              "multi-get: the mdb_gets in one read txn.",
    .durable = "default flags: each commit (one write) is synced.",
    .version = lmdb_version,
    .open = lmdb_open, .close = lmdb_close,
    .session_open = lmdb_session_open, .session_close = lmdb_session_close,
    .put = lmdb_put, .get = lmdb_get, .del = lmdb_del, .scan = lmdb_scan,
    .scan_get = lmdb_scan_get, .get_many = lmdb_get_many,
    .begin = lmdb_begin, .commit = lmdb_commit, .sync = lmdb_sync,
};

const struct bench_adapter *const bench_adapters_lmdb[] = { &lmdb_adapter, NULL };
