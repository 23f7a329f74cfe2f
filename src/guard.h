/*
 * guard.h: the checks every call makes first and the handle's health
 * (guard.c).
 *
 * Locks: none: failed, broken, sync_err and fork_gen are atomics or set
 * before the handle is shared.
 */
#ifndef CY_GUARD_H
#define CY_GUARD_H

#include "internal.h"

/* The handle's health (db->health), read by every call's first check. */
typedef struct cy_health {
    int             failed;       /* reopen failed: refuse all but close     */
    int             broken;       /* a write could not be undone, or an
                                     fdatasync failed: no writes (atomic)    */
    int             sync_err;     /* the first failed fdatasync's -errno,
                                     sticky until close (atomic)             */
    uint32_t        fork_gen;     /* the process's fork generation at open   */
} cy_health;

CY_INTERNAL int  cy_db_check_key(calypso *db, const void *key, size_t klen);
/* Records a failed fdatasync of datafile fid (err = -errno), or with fid 0
 * a failed fsync of the database directory: sticky, the handle refuses
 * writes from now on. Returns the error to report. */
CY_INTERNAL int  cy_db_sync_failed(calypso *db, int err, uint32_t fid);
/* CALYPSO_EIO, saying which sync failed, once an fdatasync has failed
 * (whether or not `broken` is set yet); CALYPSO_OK before. */
CY_INTERNAL int  cy_db_sync_error(calypso *db);
CY_INTERNAL int  cy_db_writable(calypso *db);
/* The error for a call that needs the writer lock from inside an update
 * transaction on db on this thread (txn.c), which holds it. */
CY_INTERNAL int  cy_db_in_update(calypso *db);
CY_INTERNAL int  cy_txn_in_update(const calypso *db);
CY_INTERNAL int  cy_db_usable(calypso *db);
/* 1 when db was opened by this process (not inherited through fork). */
CY_INTERNAL int  cy_db_ours(const calypso *db);
/* The process's fork generation, for a handle opening now (guard.c). */
CY_INTERNAL uint32_t cy_db_fork_gen(void);
/* Marks the handle whose update transaction this thread is in (NULL: none). */
CY_INTERNAL void cy_txn_set_update(const calypso *db);

#endif /* CY_GUARD_H */
