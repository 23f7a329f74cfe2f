/*
 * bg.c: the handle's background thread. It syncs the datafiles rotation
 * sealed and writes their hint files (so that rotation waits for neither),
 * keeps the next file ids' limit on disk ahead of rotations, and under
 * CALYPSO_SYNC_INTERVAL runs the periodic fdatasync, sweeps expired keys
 * (tombstones written in batches by calypso_run_gc), starts a merge when
 * dead bytes pass the trigger of the options, and starts the write-back of
 * every CY_DB_WRITEBACK bytes appended and syncs every
 * CY_DB_WRITEBACK_SYNC bytes (so that close and the syncs of sealed files
 * wait for less). It wakes when kicked
 * (a file was sealed) or when its period passes, and on stop it finishes
 * the hints still owed before it exits, so that close leaves every sealed
 * file with its hint. Its failures are not fatal: a missing hint only makes
 * the next open scan that datafile.
 */
#include "engine.h"

#include <errno.h>
#include <time.h>

/* Writes the hints owed: sealed files without one that did not fail.
 * Returns 1 when it had to leave some for later (a merge or backup holds
 * maint_mu). */
static int cy_bg_hints(calypso *db)
{
    /* On a full disk the space left is for deletes and merge (space.c);
     * a missing hint only makes an open slower. */
    if (cy_space_low(db)) return 1;
    /* A hint describes synced data only: the files rotation sealed are
     * synced first (a failure is sticky, and then no hint is written). */
    if (cy_files_sync_sealed(db)) return 0;
    for (;;) {
        uint32_t fid = cy_files_hint_owed(db);
        if (!fid) return 0;
        /* A merge may be removing this very file: leave it to the next
         * round rather than race it. */
        if (pthread_mutex_trylock(&db->maint_mu) != 0) return 1;
        uint32_t ep = cy_epoch_enter(&db->epoch);
        int still_there = cy_files_find(db, fid) != NULL;
        cy_epoch_leave(&db->epoch, ep);
        int rc = still_there ? cy_hint_write(db, fid) : CALYPSO_OK;
        if (rc != CALYPSO_OK) {
            ep = cy_epoch_enter(&db->epoch);
            cy_file *f = cy_files_find(db, fid);
            if (f) __atomic_store_n(&f->hint_failed, 1, __ATOMIC_RELAXED);
            cy_epoch_leave(&db->epoch, ep);
        }
        pthread_mutex_unlock(&db->maint_mu);
    }
}

#define CY_BG_WB_MARGIN (1u << 20)

/* Starts writing back what the active file gained since the last call
 * (fid, *done: how far it has started), without waiting for the disk: the
 * data reaches it while the writer goes on, and close, rotation or the
 * next periodic sync then wait only for what is left. Starting the I/O is
 * not all a close would wait for: the file system's own changes (ext4
 * turns the preallocated extents the data landed in into written ones)
 * wait for an fdatasync, and a close after a 250 MB fill spent 150 ms in
 * it with all the data already on disk. So every CY_DB_WRITEBACK_SYNC
 * bytes the round is a full sync instead (cy_db_sync_to: it also moves
 * the watermark, and its failure is sticky like any sync's). */
static void cy_bg_writeback(calypso *db, uint32_t *fid, uint64_t *done, uint64_t *synced_at)
{
    pthread_mutex_lock(&db->write_mu);
    cy_file *a = cy_files_pin_active(db);
    uint64_t size = a ? a->size : 0, seq = db->sync.written_seq;
    int fd = a ? a->fd : -1;            /* pinned: stays open until unpinned */
    pthread_mutex_unlock(&db->write_mu);
    if (!a) return;
    if (a->fid != *fid) {
        *fid = a->fid;
        *done = 0;
    }
    if (seq - *synced_at >= CY_DB_WRITEBACK_SYNC &&
        !__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) {
        /* The writer's pages up to its current one are dropped first, as
         * for any write-back (files.c). */
        uint64_t to = size & ~(uint64_t)4095;
        cy_files_drop_pages(db, a, *done, to);
        cy_db_sync_to(db, seq);
        cy_files_fill_pages(db, a, *done, to);
        if (to > *done) *done = to;
        *synced_at = seq;
        cy_files_unpin(db, a);
        return;
    }
    /* Not the last CY_BG_WB_MARGIN bytes: the writer is still filling
     * those pages, and a page under write-back that is written to again
     * makes the writer wait for it (stable pages). */
    uint64_t end = size > CY_BG_WB_MARGIN ? (size - CY_BG_WB_MARGIN) & ~(uint64_t)4095 : 0;
    if (end > *done && cy_files_writeback(db, a, fd, *done, end) == 0) *done = end;
    cy_files_unpin(db, a);
}

/* The wake-up period: the shortest of the flusher's and the sweeper's, and
 * at most a second (merge checks). */
static uint32_t cy_bg_period(const calypso *db)
{
    uint32_t period = 1000;
    if (db->opt.sync == CALYPSO_SYNC_INTERVAL && db->opt.sync_interval_ms < period)
        period = db->opt.sync_interval_ms;
    if (db->opt.ttl_sweep_interval_ms < period) period = db->opt.ttl_sweep_interval_ms;
    return period ? period : 1;
}

/* Deletes the expired keys of one namespace. */
static int cy_bg_sweep_ns(calypso *db, cy_ns *ns, void *ctx)
{
    uint64_t now = *(const uint64_t *)ctx;
    cy_rdlock(&db->kd_lock);
    uint64_t expired = ns->ttl_by_time.count ? cy_ttl_count_expired(db, ns, now) : 0;
    cy_unlock(&db->kd_lock);
    if (expired) cy_db_run_gc(db, ns);
    return __atomic_load_n(&db->bg.stop, __ATOMIC_RELAXED);
}

/* Deletes expired keys, in every namespace, when the sweep interval has
 * passed. */
static void cy_bg_sweep(calypso *db, uint64_t *last)
{
    if (db->opt.ttl_sweep_interval_ms == CALYPSO_SWEEP_NEVER) return;
    uint64_t now = cy_now_ms();
    if (now >= *last && now - *last < db->opt.ttl_sweep_interval_ms) return;
    *last = now;
    cy_ns_each(db, cy_bg_sweep_ns, &now);
}

static void *cy_bg_main(void *arg)
{
    calypso *db = arg;
    uint64_t last_sweep = cy_now_ms(), last_sync = last_sweep, wb_done = 0, wb_synced = 0;
    uint32_t wb_fid = 0;
    int deferred = 0;
    pthread_mutex_lock(&db->bg.wake.mu);
    while (!db->bg.stop) {
        uint32_t period = cy_bg_period(db);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += period / 1000;
        ts.tv_nsec += (long)(period % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) { ts.tv_sec++; ts.tv_nsec -= 1000000000L; }
        /* Hints left for later wait for the period (or a kick), so that
         * a long merge does not make this thread spin. */
        if ((deferred || !__atomic_load_n(&db->bg.hints_pending, __ATOMIC_RELAXED)) &&
            !__atomic_load_n(&db->bg.writeback, __ATOMIC_RELAXED) &&
            !__atomic_load_n(&db->bg.allocate, __ATOMIC_RELAXED))
            pthread_cond_timedwait(&db->bg.wake.cv, &db->bg.wake.mu, &ts);
        pthread_mutex_unlock(&db->bg.wake.mu);
        if (__atomic_exchange_n(&db->bg.allocate, 0, __ATOMIC_RELAXED) && !db->opt.read_only)
            cy_files_allocate_ahead(db);
        if (__atomic_exchange_n(&db->bg.writeback, 0, __ATOMIC_RELAXED) && !db->opt.read_only)
            cy_bg_writeback(db, &wb_fid, &wb_done, &wb_synced);
        /* Mappings evicted by readers, replaced tables. */
        cy_epoch_reclaim(&db->epoch);
        if (db->opt.read_only) {
            pthread_mutex_lock(&db->bg.wake.mu);
            continue;
        }
        if (__atomic_exchange_n(&db->bg.hints_pending, 0, __ATOMIC_RELAXED) || deferred)
            deferred = cy_bg_hints(db);
        /* The next ids' limit goes to disk here, not in a rotation. */
        if (!__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) cy_ids_ahead(db, CY_IDS_REGULAR);
        uint64_t now = cy_now_ms();
        if (db->opt.sync == CALYPSO_SYNC_INTERVAL &&
            (now < last_sync || now - last_sync >= db->opt.sync_interval_ms) &&
            !__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) {
            last_sync = now;
            pthread_mutex_lock(&db->write_mu);
            uint64_t seq = db->sync.written_seq;
            pthread_mutex_unlock(&db->write_mu);
            cy_db_sync_to(db, seq);
        }
        cy_wm_persist(db, 1);
        if (!__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) cy_bg_sweep(db, &last_sweep);
        if (!__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED) && cy_merge_due(db))
            calypso_merge(db);   /* EMERGING when the user runs one: fine */
        pthread_mutex_lock(&db->bg.wake.mu);
    }
    pthread_mutex_unlock(&db->bg.wake.mu);
    if (!db->opt.read_only) cy_bg_hints(db);
    return NULL;
}

CY_INTERNAL int cy_bg_start(calypso *db)
{
    db->bg.stop = 0;
    int e = pthread_create(&db->bg.thread, NULL, cy_bg_main, db);
    if (e) return cy_err_errno(db, -e, "start the background thread", "");
    db->bg.started = 1;
    return CALYPSO_OK;
}

CY_INTERNAL void cy_bg_stop(calypso *db)
{
    if (!db->bg.started) return;
    pthread_mutex_lock(&db->bg.wake.mu);
    __atomic_store_n(&db->bg.stop, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&db->bg.wake.cv);
    pthread_mutex_unlock(&db->bg.wake.mu);
    pthread_join(db->bg.thread, NULL);
    db->bg.started = 0;
}
