/*
 * kv.c: Redis string keys over the engine. Redis speaks of expiry as an
 * absolute time, the engine takes a TTL from now: these helpers turn one
 * into the other, treat an expired key as a missing one, and tell WATCH
 * and the --sync always machinery about every write (the daemon owns all
 * writes to its database, so this is the one place that sees them).
 *
 * The empty key: Redis allows it, the engine does not (CALYPSO_EEMPTYKEY).
 * Reads of "" find nothing; writes of "" get an error that says why.
 *
 * While EXEC runs a block as one update transaction (cd_srv.tx, multi.c),
 * every read and write here goes through it: the block's commands see the
 * block's own earlier writes, and the whole block commits as one batch.
 *
 * Outside one, reads and writes go to the current database (cd_srv.cur,
 * dbs.c); a database never written has no namespace yet: reads find
 * nothing, and the first write creates it.
 */
#include <stdlib.h>

#include "calypsod.h"

void cd_kv_touched(const void *k, size_t klen)
{
    cd_srv.dirty = 1;
    cd_srv.dirty_since_save++;
    cd_watch_touch(k, klen);
}

int cd_kv_get(const cd_arg *key, void **val, size_t *vlen)
{
    *val = NULL;
    *vlen = 0;
    if (key->len == 0) return 0;
    if (!cd_srv.tx && !cd_srv.cur) return 0;
    int rc = cd_srv.tx ? calypso_txn_get(cd_srv.tx, key->p, key->len, val, vlen)
                       : calypso_get(cd_srv.cur, key->p, key->len, val, vlen);
    if (rc == CALYPSO_OK) return 1;
    if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED || rc == CALYPSO_EKEYTOOLARGE) return 0;
    return rc;
}

void cd_kv_get_many(size_t n, const cd_arg *keys, void **vals, size_t *vlens, int *found)
{
    enum { GROUP = 64 };
    const void *k[GROUP];
    size_t kl[GROUP];
    int rcs[GROUP];
    for (size_t at = 0; at < n; at += GROUP) {
        size_t m = n - at < GROUP ? n - at : GROUP;
        if (cd_srv.tx) {   /* inside EXEC: through the transaction, one by one */
            for (size_t i = at; i < at + m; i++) found[i] = cd_kv_get(&keys[i], &vals[i], &vlens[i]);
            continue;
        }
        for (size_t j = 0; j < m; j++) {
            k[j] = keys[at + j].p;
            kl[j] = keys[at + j].len;
        }
        if (!cd_srv.cur) {   /* a database never written */
            for (size_t j = 0; j < m; j++) {
                vals[at + j] = NULL;
                vlens[at + j] = 0;
                found[at + j] = 0;
            }
            continue;
        }
        calypso_get_many(cd_srv.cur, m, k, kl, vals + at, vlens + at, rcs);
        for (size_t j = 0; j < m; j++) {
            int rc = rcs[j];
            found[at + j] = rc == CALYPSO_OK ? 1
                          : rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED ||
                            rc == CALYPSO_EKEYTOOLARGE || rc == CALYPSO_EEMPTYKEY ? 0 : rc;
        }
    }
}

int cd_kv_expiry(const cd_arg *key, uint64_t *at)
{
    *at = 0;
    if (key->len == 0) return 0;
    if (!cd_srv.tx && !cd_srv.cur) return 0;
    int rc = cd_srv.tx ? calypso_txn_ttl(cd_srv.tx, key->p, key->len, at)
                       : calypso_ttl(cd_srv.cur, key->p, key->len, at);
    if (rc == CALYPSO_OK) return 1;
    if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED || rc == CALYPSO_EKEYTOOLARGE) return 0;
    return rc;
}

int cd_kv_exists(const void *k, size_t klen)
{
    if (klen == 0) return 0;
    if (!cd_srv.tx && !cd_srv.cur) return 0;
    int rc = cd_srv.tx ? calypso_txn_has(cd_srv.tx, k, klen) : calypso_has(cd_srv.cur, k, klen);
    if (rc == CALYPSO_EKEYTOOLARGE) return 0;
    return rc;
}

int cd_kv_put(const void *k, size_t klen, const void *v, size_t vlen, uint64_t at_ms)
{
    int rc;
    if (klen == 0) return CALYPSO_EEMPTYKEY;
    calypso *db = cd_srv.tx ? NULL : cd_db_for_write(&rc);
    if (!cd_srv.tx && !db) return rc;
    if (at_ms) {
        int64_t now = cd_now_ms();
        if ((int64_t)at_ms <= now) {
            /* Redis stores the key and lets it expire at once; the result
             * a client can see is the key gone. */
            rc = cd_kv_del(k, klen);
            if (rc >= 0) cd_kv_touched(k, klen);
            cd_srv.stat_expired++;
            return rc < 0 ? rc : 0;
        }
        rc = cd_srv.tx ? calypso_txn_put_ttl(cd_srv.tx, k, klen, v, vlen, at_ms - (uint64_t)now)
                       : calypso_put_ttl(db, k, klen, v, vlen, at_ms - (uint64_t)now);
    } else {
        rc = cd_srv.tx ? calypso_txn_put(cd_srv.tx, k, klen, v, vlen)
                       : calypso_put(db, k, klen, v, vlen);
    }
    if (rc == CALYPSO_OK) cd_kv_touched(k, klen);
    return rc;
}

int cd_kv_del(const void *k, size_t klen)
{
    int had = cd_kv_exists(k, klen);
    if (had <= 0) return had;
    int rc = cd_srv.tx ? calypso_txn_delete(cd_srv.tx, k, klen) : calypso_delete(cd_srv.cur, k, klen);
    if (rc < 0) return rc;
    cd_kv_touched(k, klen);
    return 1;
}
