/*
 * engine.h: the database handle (struct calypso) and the modules' headers,
 * included bottom-up in the order of their layers (below). Each module's
 * header (files.h, keydir.h, commit.h, ...) holds its types, its state and
 * what it exports to the modules above it, and says which locks guard them;
 * engine.h holds the handle that embeds that state, and the few inline
 * functions that need the whole handle.
 *
 * Locks, always taken in this order, never held across a user callback:
 *   maint_mu     one of merge, backup or hint writing at a time (they
 *                remove or read whole files).
 *   write_mu     serializes writers: appends, rotation, keydir changes. It
 *                is also held for every change to the file table and to
 *                dead-byte counts, so holding it makes those stable.
 *   kd_lock      rwlock over every namespace's keydir and TTL trees, the
 *                namespace catalog (ns.c) and `dead`. Readers take it
 *                shared for a lookup only, never across disk I/O.
 *   files.seal_turn  one syncer of the files rotation sealed at a time
 *                (files.c): group-commit leaders, the background thread,
 *                merge, close, and a rotation far behind (under write_mu).
 *   files.seal_mu  the list of those files, held briefly, never across a
 *                sync: rotation under write_mu, the syncer under seal_turn.
 *   cy_file.mu   one file's descriptor, and the opening and eviction of
 *                its mapping (files.c). Never held across a wait for others.
 *   sync.mu      group commit state (commit.h).
 *   ids.mu       file id allocation (ids.c); after write_mu.
 *   space.mu     the space reserve (space.c); after write_mu.
 *   bg.wake.mu   the background thread's wake-ups (bg.h).
 *   views.mu     files retained for views (view.h).
 *
 * The file table takes no lock to read: it is published whole behind one
 * atomic pointer (db->files.ftab) and replaced, never edited, under write_mu.
 * What a reader reaches through it (the table, a file, a mapping) stays
 * valid while the reader is inside an epoch (epoch.c): a get enters before
 * its keydir lookup and leaves after copying the value, so a merge or an
 * eviction that retires a file releases it only once no reader that could
 * hold its locations remains.
 */
/*
 * The modules in layers, bottom-up: a module calls only modules on lower
 * lines (tools/check-layers --graph prints who calls whom; `make
 * check-layers` fails on any cycle, among modules or among headers).
 *
 *   alloc os record error epoch   the lower layer (internal.h), errors, epochs
 *   art dir keylist space         the ART, the directory, key lists, reserve
 *   guard ids scan ttl watermark  call checks and handle health, file ids,
 *                                 datafile scans, TTL index, WATERMARK
 *   files                         the file table, dead bytes
 *   commit view backup            append and group commit; snapshot views;
 *                                 backup
 *   ns                            the namespace catalog and its calls
 *   keydir                        apply, compare-and-swap, the iterator
 *   batch hint                    batches; hint files
 *   write merge                   puts and deletes; merge
 *   walk recover bg               walks; open's replay (which finishes an
 *                                 interrupted merge); the background thread
 *   read db                       gets and figures; the lifecycle (open
 *                                 starts recovery and the background thread)
 *   getmany txn                   multi-get; transactions
 *   cursor                        cursors
 *
 * Upward calls are not made; where a lower module must reach a higher one,
 * the handle owns the means: files.c and commit.c wake the background
 * thread through db->bg.wake (cy_wake_kick), not by calling bg.c; the
 * checks every call makes (cy_db_usable, cy_db_writable) and the record of
 * a failed fdatasync live in guard.c, below everything that serves calls,
 * not in the lifecycle (db.c); cy_keydir_get is inline over a namespace's
 * trees, so that view.c reads the keydir without calling keydir.c (which
 * calls view.c to note changes).
 */
#ifndef CY_ENGINE_H
#define CY_ENGINE_H

#include "internal.h"

#include "lock.h"
#include "epoch.h"
#include "error.h"
#include "dir.h"
#include "guard.h"
#include "watermark.h"
#include "ids.h"
#include "space.h"
#include "keylist.h"
#include "ns.h"
#include "ttl.h"
#include "scan.h"
#include "files.h"
#include "commit.h"
#include "view.h"
#include "keydir.h"
#include "batch.h"
#include "hint.h"
#include "write.h"
#include "merge.h"
#include "walk.h"
#include "recover.h"
#include "bg.h"
#include "read.h"
#include "txn.h"

#include <pthread.h>

// >> handle ---------------------------------------------------------------
struct calypso {
    char           *path;
    calypso_options opt;
    int             lock_fd;
    int             writer_live;  /* read-only: a writer held the database
                                     open when this handle opened          */
    cy_health       health;       /* usable, writable, ours (guard.h)        */

    /* A namespace handle (ns.c) is a struct calypso too: base names its
     * database handle and ns its namespace; nothing else in it is used but
     * health.fork_gen (the public calls go to base at once, cy_base). */
    calypso         *base;        /* NULL on the database handle            */
    cy_ns           *ns;          /* the namespace this handle works on:
                                     &catalog.ns0 on the database handle    */
    uint32_t         ns_handles;  /* namespace handles open (atomic)        */

    pthread_mutex_t  write_mu;
    uint32_t         write_waiting; /* puts and deletes waiting for write_mu
                                       (cy_mutex_lock_counted), atomic      */
    cy_rwlock        kd_lock;
    cy_catalog       catalog;     /* the namespaces (ns.h)                   */
    int              loading;     /* cy_recover is replaying: the keydirs
                                     it fills are bulk loads (cy_art_bulk)   */
    cy_views         views;       /* snapshot views (view.h)                 */
    pthread_mutex_t  exp_mu;

    cy_epoch         epoch;       /* readers, grace periods, limbo list
                                     (epoch.h)                               */
    cy_files_state   files;       /* the file table (files.h)                */

    cy_sync          sync;        /* group commit (commit.h)                 */
    struct cy_wm    *wm;          /* the durable copy of sync.synced_fid and
                                     synced_off (watermark.h)                */

    cy_bg            bg;          /* the background thread (bg.h)           */
    pthread_mutex_t  maint_mu;    /* held by whoever removes or copies whole
                                     files: merge, backup, hint writing      */
    cy_merge_state   merge;       /* merge (merge.h)                         */

    cy_ids           ids;         /* file ids (ids.h)                        */
    cy_space         space;       /* the space reserve (space.h)             */

    char             note[512];   /* what auto_recovery dropped              */
};

// >> what needs the handle whole ----------------------------------------------

/* The database handle of h (h itself, or a namespace handle's base). */
static inline calypso *cy_base(calypso *h)
{
    return h && h->base ? h->base : h;
}

/* The namespace h works on (NULL for NULL). */
static inline cy_ns *cy_ns_of(calypso *h)
{
    return h ? h->ns : NULL;
}

static inline int cy_space_low(calypso *db)
{
    return __atomic_load_n(&db->space.low, __ATOMIC_ACQUIRE);
}

/* Marks f as read now, for LRU eviction. The clock only moves when a file
 * is opened, so a read stores (rarely) and never read-modify-writes a
 * shared word: readers on several cores do not bounce a cache line. Files
 * read since the last open tie, which is all eviction needs. */
static inline void cy_files_touch(calypso *db, cy_file *f)
{
    uint64_t now = __atomic_load_n(&db->files.tick, __ATOMIC_RELAXED);
    if (__atomic_load_n(&f->last_used, __ATOMIC_RELAXED) != now)
        __atomic_store_n(&f->last_used, now, __ATOMIC_RELAXED);
}

#endif /* CY_ENGINE_H */
