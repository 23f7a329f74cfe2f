/*
 * commit.h: appending and group commit (commit.c).
 *
 * Locks: write_mu for an append; sync.mu and sync.cv for the group
 * commit's hand-over (never held across fdatasync).
 */
#ifndef CY_COMMIT_H
#define CY_COMMIT_H

#include "internal.h"

#include <pthread.h>

/* Whether the followers of a group commit spin through the leader's
 * fdatasync or sleep, chosen by measurement (commit.c): the leaders time
 * epochs of CY_SPIN_EPOCH syncs that each had more than one durable writer
 * about, as writes made durable per second, one moving average for each
 * way of waiting. Leader only, except mode (atomic). */
typedef struct cy_spin_ctl {
    uint64_t         t0;          /* the epoch's first sync began (ns)       */
    uint32_t         syncs;       /* syncs of this epoch so far              */
    uint32_t         writes;      /* writes they covered                     */
    uint32_t         epoch;       /* epochs measured                         */
    uint32_t         mode;        /* 1: followers spin this epoch (atomic)   */
    uint64_t         rate[2];     /* writes/s by mode, moving averages; 0:
                                     not measured yet                        */
} cy_spin_ctl;

#define CY_SPIN_EPOCH   32   /* syncs an epoch */
#define CY_SPIN_EXPLORE 16   /* every this many epochs, the other way */

/* A leader about to sync `batch` writes at now_ns, with `writers` durable
 * writers about: counts the sync into the epoch and, at an epoch's end,
 * sets c->mode for the next. A lone writer ends the epoch unmeasured. */
CY_INTERNAL void cy_spin_ctl_sync(cy_spin_ctl *c, uint64_t now_ns, uint32_t batch,
                                  uint32_t writers);

/* The handle's group-commit state (db->sync). */
typedef struct cy_sync {
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    int              syncing;     /* a leader's fdatasync is under way
                                     (written under mu, atomically)          */
    uint64_t         written_seq; /* bytes appended since open (write_mu)    */
    uint64_t         synced_seq;  /* of those, durable (written under mu,
                                     atomically: followers spin on it)       */
    uint64_t         time_ns;     /* recent fdatasync time, a moving average
                                     (atomic)                                */
    uint32_t         spinners;    /* followers spinning (atomic)             */
    cy_spin_ctl      spin;        /* whether they spin (leader only)         */
    uint32_t         durable_writers;   /* SYNC_ALWAYS puts and deletes under
                                           way (atomic)                     */
    uint32_t         durable_batch;     /* durable appends the next sync
                                           will cover (written under write_mu) */
    uint32_t         durable_group;     /* writers the last sync covered    */
    uint32_t         synced_fid;  /* a successful fdatasync covered [0, synced_off) */
    uint64_t         synced_off;  /* of synced_fid: both stored under mu (atomically);
                                     watermark.c keeps their durable copy    */
} cy_sync;

/* Bytes appended between two write-backs the background thread starts.
 * Each saves close (and the sync of a sealed file) part of its final sync.
 * Write-back costs the writer nothing once the pages are dropped from the
 * mapping first (files.c, "write-back through the mapping"): 2M puts of
 * 100 bytes, this machine, 0.92M/s either way with write-back every 8 or
 * 64 MiB, and close 370-450 ms after every 8 MiB, 500-550 ms after every
 * 64 MiB (without the drop, every 64 MiB cost 25% of the put rate). */
#define CY_DB_WRITEBACK (8u << 20)
/* Every this many bytes appended, the write-back round is a full sync of
 * what was written (bg.c). */
#define CY_DB_WRITEBACK_SYNC (32u << 20)
/* Waits until a sync covers the first seq bytes appended since open,
 * leading a group commit when no sync is under way (commit.c). */
CY_INTERNAL int  cy_db_sync_to(calypso *db, uint64_t seq);
/* A SYNC_ALWAYS write announces itself before it appends (enter), counts
 * its append into the next sync's batch (appended, write_mu held), and
 * leaves when its sync has returned (commit.c). */
CY_INTERNAL void cy_db_durable_enter(calypso *db);
CY_INTERNAL void cy_db_durable_appended(calypso *db);
CY_INTERNAL void cy_db_durable_leave(calypso *db);
/* Appends a record given as pieces to the active file, rotating first when
 * it would not fit; returns where it went. write_mu held. */
CY_INTERNAL int  cy_db_append(calypso *db, struct iovec *iov, int cnt, size_t size,
                              uint32_t *fid, uint64_t *off);
/* A keydir update failed (rc) after the append of size bytes at off: cuts
 * the record back out of the active file. Returns the error to report.
 * write_mu held. */
CY_INTERNAL int  cy_db_unappend(calypso *db, int rc, uint64_t off, size_t size);
/* The write path's commit step for a record prepared by the caller: under
 * write_mu, rotates when a record of `bound` bytes would not fit the active
 * file; build() encodes the record for file fid (it may read the keydir:
 * write_mu keeps it still) and returns it; it is appended whole, then
 * apply() applies it under kd_lock exclusive, all of it or, failing, none
 * (it undoes its own partial work); a failed apply cuts the append back.
 * Then waits for durability as the sync mode says. */
typedef int (*cy_build_fn)(calypso *db, uint32_t fid, const uint8_t **rec, size_t *size,
                           void *ctx);
typedef int (*cy_apply_fn)(calypso *db, uint32_t fid, uint64_t off, const uint8_t *rec,
                           size_t size, void *ctx);
enum { CY_COMMIT_LOCKED = 1,        /* the caller holds write_mu (released here) */
       CY_COMMIT_DELETES_ONLY = 2 };  /* may use the space reserve when the disk fills */
CY_INTERNAL int  cy_db_commit(calypso *db, size_t bound, cy_build_fn build, cy_apply_fn apply,
                              void *ctx, int flags);

#endif /* CY_COMMIT_H */
