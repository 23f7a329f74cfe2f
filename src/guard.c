/*
 * guard.c: the checks every call makes first, and the handle's health that
 * they read: whether this process owns the handle (fork), whether it is
 * usable (a failed reopen), writable (read-only, inside an update
 * transaction on this thread, broken by a write that could not be undone
 * or by a failed fdatasync), and whether a key is acceptable. A failed
 * fdatasync is recorded here (cy_db_sync_failed), sticky until close, by
 * whichever module's sync failed (commit.c, files.c).
 *
 * It sits below every module that serves a call, so that none of them
 * needs the lifecycle (db.c) above them. State: the handle's `failed`,
 * `broken`, `sync_err` and `fork_gen` (atomics, no lock), a process-wide
 * fork generation, and a thread-local mark of the handle whose update
 * transaction this thread is in (txn.c sets it).
 */
#include "engine.h"

#include <stdio.h>
#include <string.h>

// >> process ownership ----------------------------------------------------------

static uint32_t cy_fork_gen;            /* bumped in every forked child  */
static pthread_once_t cy_fork_once = PTHREAD_ONCE_INIT;

static void cy_db_forked(void)
{
    __atomic_add_fetch(&cy_fork_gen, 1, __ATOMIC_RELAXED);
}

static void cy_db_watch_forks(void)
{
    pthread_atfork(NULL, NULL, cy_db_forked);
}

/* 1 when db was opened by this process (not inherited through fork). */
CY_INTERNAL int cy_db_ours(const calypso *db)
{
    return __atomic_load_n(&cy_fork_gen, __ATOMIC_RELAXED) == db->health.fork_gen;
}

CY_INTERNAL uint32_t cy_db_fork_gen(void)
{
    pthread_once(&cy_fork_once, cy_db_watch_forks);
    return __atomic_load_n(&cy_fork_gen, __ATOMIC_RELAXED);
}

// >> update transactions ---------------------------------------------------------

static _Thread_local const calypso *cy_txn_updating;   /* handle in an update here */

CY_INTERNAL int cy_txn_in_update(const calypso *db)
{
    return db && cy_txn_updating == db;
}

CY_INTERNAL void cy_txn_set_update(const calypso *db)
{
    cy_txn_updating = db;
}

// >> sync failures -----------------------------------------------------------

CY_INTERNAL int cy_db_sync_failed(calypso *db, int err, uint32_t fid)
{
    int none = 0;
    __atomic_compare_exchange_n(&db->health.sync_err, &none, err, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_RELAXED);
    __atomic_store_n(&db->health.broken, 1, __ATOMIC_RELEASE);
    /* CALYPSO_EIO whatever the errno (ENOSPC included): the write whose
     * sync failed may be on disk or not, which no other code says. */
    char path[4096];
    if (fid) cy_dir_data_path(db, fid, path, sizeof path);
    else snprintf(path, sizeof path, "%s", db->path);
    return cy_err(db, CALYPSO_EIO, "%s %s: %s (errno %d)", fid ? "fdatasync" : "fsync directory",
                  path, strerror(-err), -err);
}

// >> checks ----------------------------------------------------------------------

/* CALYPSO_OK if db may serve calls at all. */
CY_INTERNAL int cy_db_usable(calypso *db)
{
    if (!db) return CALYPSO_EINVAL;
    if (CY_UNLIKELY(!cy_db_ours(db)))
        return cy_err(db, CALYPSO_EINVAL, "%s was opened by another process (this one is a "
                      "fork of it): open the database again in this process", db->path);
    if (db->health.failed)
        return cy_err(db, CALYPSO_EIO, "the handle failed to reopen; only close is possible");
    return CALYPSO_OK;
}

/* sync_err is read on its own, never only once `broken` is seen: a writer
 * waiting for its sync can see the error before the failing thread has set
 * `broken` (cy_db_sync_failed sets sync_err first), and it must get the
 * error, not an acknowledgement. */
CY_INTERNAL int cy_db_sync_error(calypso *db)
{
    int err = __atomic_load_n(&db->health.sync_err, __ATOMIC_ACQUIRE);
    if (!err) return CALYPSO_OK;
    return cy_err(db, CALYPSO_EIO, "an fdatasync of %s failed (%s): writes since the last "
                  "successful sync may be lost, so the handle refuses writes; reopen the "
                  "database", db->path, strerror(-err));
}

CY_INTERNAL int cy_db_writable(calypso *db)
{
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (db->opt.read_only) return cy_err(db, CALYPSO_EREADONLY, "%s is open read-only", db->path);
    if (CY_UNLIKELY(cy_txn_in_update(db))) return cy_db_in_update(db);
    if ((rc = cy_db_sync_error(db))) return rc;
    if (__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED))
        return cy_err(db, CALYPSO_EIO, "an earlier write to %s failed and could not be undone; "
                      "reopen the database", db->path);
    return CALYPSO_OK;
}

CY_INTERNAL int cy_db_in_update(calypso *db)
{
    return cy_err(db, CALYPSO_EINVAL, "this thread is inside an update transaction on %s: "
                  "write through the transaction (calypso_txn_*)", db->path);
}


CY_INTERNAL int cy_db_check_key(calypso *db, const void *key, size_t klen)
{
    if (!key && klen) return cy_err(db, CALYPSO_EINVAL, "key is NULL");
    if (klen == 0) return cy_err(db, CALYPSO_EEMPTYKEY, NULL);
    if (klen > db->opt.max_key_size)
        return cy_err(db, CALYPSO_EKEYTOOLARGE, "%zu bytes, max_key_size is %u", klen,
                      db->opt.max_key_size);
    return CALYPSO_OK;
}
