/*
 * dbs.c: Redis's numbered databases (SELECT, MOVE, FLUSHALL, INFO
 * keyspace) as calypso namespaces.
 *
 * Database 0 is the database's default namespace, so a database written
 * before namespaces existed, and any program that knows nothing of them,
 * sees calypsod's database 0. Database i (0 < i < --databases) is the
 * namespace "calypsod/i": under a parent of calypsod's own, so that it
 * cannot meet the namespaces other programs create unless they mean to.
 *
 * Handles are opened once and kept until shutdown: the existing
 * "calypsod/i" at start (a listing of "calypsod"), the others when a
 * write first goes to them, so that a database nobody wrote to costs
 * nothing on disk. A NULL handle means "never written": reads of it find
 * no key. Namespaces of index --databases or above (from a run with a
 * larger --databases) are left alone: reachable again with a larger one.
 *
 * The current database: the loop runs one command at a time, so the
 * database of the command that runs is server state (cd_srv.cur and
 * cd_srv.cur_idx), set from the client's SELECTed index before each
 * command (cd_cmd_call). kv.c and the key commands go through it. Inside
 * an update transaction (EXEC, MOVE) a switch of database also moves the
 * transaction to that namespace (calypso_txn_ns), so a transaction's
 * writes in several databases commit as one batch.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calypsod.h"

#define CD_DB_PARENT "calypsod"

/* The namespace name of database idx (> 0): "calypsod/idx". */
static size_t cd_db_name(int idx, char *out, size_t n)
{
    int k = snprintf(out, n, CD_DB_PARENT "/%d", idx);
    return k > 0 ? (size_t)k : 0;
}

/* ns_list callback: opens "calypsod/N" for each N in range. */
static int cd_dbs_found(const void *name, size_t nlen, void *ctx)
{
    (void)ctx;
    size_t pl = sizeof CD_DB_PARENT; /* "calypsod/" */
    long long idx;
    if (nlen <= pl || !cd_str2ll((const char *)name + pl, nlen - pl, &idx)) return 0;
    if (idx < 1 || idx >= cd_srv.databases) return 0;
    char canon[64];
    /* "calypsod/01" is not database 1: only the name calypsod writes */
    if (cd_db_name((int)idx, canon, sizeof canon) != nlen || memcmp(canon, name, nlen)) return 0;
    int rc = calypso_ns_open(cd_srv.db, name, nlen, 0, &cd_srv.dbs[idx].h);
    if (rc < 0) {
        cd_srv.dbs[idx].h = NULL;
        cd_log(CD_LOG_WARNING, "cannot open database %lld (namespace %.*s): %s", idx, (int)nlen,
               (const char *)name, calypso_strerror(rc));
        return rc;
    }
    return 0;
}

int cd_dbs_open(void)
{
    cd_srv.dbs = calloc((size_t)cd_srv.databases, sizeof *cd_srv.dbs);
    if (!cd_srv.dbs) {
        cd_log(CD_LOG_WARNING, "out of memory for %d databases", cd_srv.databases);
        return -1;
    }
    cd_srv.dbs[0].h = cd_srv.db;
    int rc = calypso_ns_list(cd_srv.db, CD_DB_PARENT, strlen(CD_DB_PARENT), cd_dbs_found, NULL);
    if (rc < 0 && rc != CALYPSO_ENOTFOUND) {
        cd_log(CD_LOG_WARNING, "cannot list the databases: %s", calypso_strerror(rc));
        return -1;
    }
    cd_db_use(0);
    return 0;
}

void cd_dbs_close(void)
{
    if (!cd_srv.dbs) return;
    for (int i = 1; i < cd_srv.databases; i++)
        if (cd_srv.dbs[i].h) calypso_close(cd_srv.dbs[i].h);
    free(cd_srv.dbs);
    cd_srv.dbs = NULL;
}

calypso *cd_db_handle(int idx)
{
    return idx >= 0 && idx < cd_srv.databases ? cd_srv.dbs[idx].h : NULL;
}

int cd_db_create(int idx)
{
    if (idx < 0 || idx >= cd_srv.databases) return CALYPSO_EINVAL;
    if (cd_srv.dbs[idx].h) return CALYPSO_OK;
    if (cd_srv.tx) return CALYPSO_EINVAL; /* the engine creates no namespace inside one */
    calypso *parent;
    int rc = calypso_ns_open(cd_srv.db, CD_DB_PARENT, strlen(CD_DB_PARENT), 1, &parent);
    if (rc < 0) return rc;
    calypso_close(parent);
    char name[64];
    size_t n = cd_db_name(idx, name, sizeof name);
    rc = calypso_ns_open(cd_srv.db, name, n, 1, &cd_srv.dbs[idx].h);
    if (rc < 0) {
        cd_srv.dbs[idx].h = NULL;
        return rc;
    }
    cd_log(CD_LOG_VERBOSE, "database %d created (namespace %s)", idx, name);
    if (idx == cd_srv.cur_idx) cd_srv.cur = cd_srv.dbs[idx].h;
    return CALYPSO_OK;
}

int cd_db_use(int idx)
{
    cd_srv.cur_idx = idx;
    cd_srv.cur = cd_db_handle(idx);
    if (!cd_srv.tx) return CALYPSO_OK;
    /* EXEC and MOVE create every database they reach before they begin */
    if (!cd_srv.cur) return CALYPSO_EINVAL;
    return calypso_txn_ns(cd_srv.tx, cd_srv.cur);
}

calypso *cd_db_for_write(int *rc)
{
    *rc = CALYPSO_OK;
    if (!cd_srv.cur) *rc = cd_db_create(cd_srv.cur_idx);
    return cd_srv.cur;
}

int cd_db_parse(const cd_arg *a, int *idx)
{
    long long v;
    if (!cd_str2ll(a->p, a->len, &v)) return -1;
    if (v < 0 || v >= cd_srv.databases) return 0;
    *idx = (int)v;
    return 1;
}
