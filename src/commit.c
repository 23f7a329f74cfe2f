/*
 * commit.c: appending records to the active file (cy_db_append, rotating
 * when full, and asking the background thread for write-back through
 * db->bg.wake), making them durable, and committing a record a caller
 * prepared (batches, transactions, namespaces: cy_db_commit).
 *
 * Group commit (SYNC_ALWAYS): appends advance sync.written_seq; a writer then
 * waits until sync.synced_seq covers its bytes. The first waiter becomes the
 * leader and runs one fdatasync for everything appended so far, with no
 * lock held that writers need, so appends go on beside it; the others
 * sleep on sync_cv and wake covered by the leader's sync or lead the next.
 * Before its fdatasync, a leader gives writers that have entered a durable
 * put or delete but not yet appended a moment to append (cy_db_gather), so
 * that one sync covers every writer about instead of half of them; while it
 * syncs, a few followers may spin instead of sleeping (cy_db_sync_spin), so
 * that they are back with their next write as soon as it returns, where
 * that is measured to pay (cy_spin_ctl_sync).
 *
 * A failed fdatasync is sticky (cy_db_sync_failed): the kernel may have
 * dropped the dirty pages it could not write and reports the error once,
 * so a second fdatasync would succeed over lost data. The first failure is
 * kept, the handle refuses writes from then on, every writer waiting for a
 * sync that did not happen gets CALYPSO_EIO, and no fdatasync is tried
 * again to clear it; close returns it. The syncs of the files rotation
 * sealed (files.c), which a leader runs before its own, fail the same way
 * (guard.c).
 *
 * Locks: sync.mu and sync.cv for the leader's hand-over; write_mu briefly,
 * to read how far appends have gone and to pin the active file's
 * descriptor (never across the fdatasync).
 */
#include "engine.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

// >> appending -------------------------------------------------------------------

/* Appends a record given as pieces; returns where it went. write_mu held. */
CY_INTERNAL int cy_db_append(calypso *db, struct iovec *iov, int cnt, size_t size,
                        uint32_t *fid, uint64_t *off)
{
    int rc;
    cy_file *a = db->files.active;
    if (!cy_files_active_empty(a) && a->size + size > db->opt.max_datafile_size) {
        if ((rc = cy_files_rotate(db))) return rc;
        a = db->files.active;
    }
    int64_t head = cy_files_append_seal(db);   /* a new file's first record */
    if (head < 0) return (int)head;
    db->sync.written_seq += (uint64_t)head;
    uint64_t at = a->size;
    if ((rc = cy_files_append(db, iov, cnt, size))) return rc;   /* a->size grows by size */
    *fid = a->fid;
    *off = at;
    db->sync.written_seq += size;
    /* Every CY_DB_WRITEBACK bytes, the background thread starts writing
     * them back (bg.c), so that the fdatasync of a close or of a sealed
     * file finds less left. Under SYNC_ALWAYS every write is synced
     * anyway. */
    if (db->sync.written_seq - db->bg.wb_kicked >= CY_DB_WRITEBACK &&
        db->opt.sync != CALYPSO_SYNC_ALWAYS) {
        db->bg.wb_kicked = db->sync.written_seq;
        __atomic_store_n(&db->bg.writeback, 1, __ATOMIC_RELAXED);
        cy_wake_kick(&db->bg.wake);
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_db_unappend(calypso *db, int rc, uint64_t off, size_t size)
{
    rc = cy_err(db, rc, "updating the key directory");
    cy_files_unappend(db, off, size);
    db->sync.written_seq -= size;
    return rc;
}

// >> durability ----------------------------------------------------------------

#define CY_GATHER_NS 50000   /* a leader waits this long, at most */

static uint64_t cy_db_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A durable write announces itself before it appends (enter) and when its
 * sync has returned (leave); cy_db_durable_appended counts its append into
 * the next sync's batch (write_mu held). */
CY_INTERNAL void cy_db_durable_enter(calypso *db)
{
    __atomic_add_fetch(&db->sync.durable_writers, 1, __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_db_durable_appended(calypso *db)
{
    __atomic_store_n(&db->sync.durable_batch, db->sync.durable_batch + 1, __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_db_durable_leave(calypso *db)
{
    __atomic_sub_fetch(&db->sync.durable_writers, 1, __ATOMIC_RELAXED);
}

/* The leader of a group commit, before its fdatasync: while other durable
 * writers are about, let them run until each has appended (those the last
 * sync released come back with their next write), for at most
 * CY_GATHER_NS. A lone writer never waits. The group the last sync covered
 * is expected again, so that a writer between two calls is waited for
 * too; a wait that times out lowers the expectation. */
static void cy_db_gather(calypso *db)
{
    uint32_t writers = __atomic_load_n(&db->sync.durable_writers, __ATOMIC_RELAXED);
    if (writers <= 1) return;
    uint32_t want = __atomic_load_n(&db->sync.durable_group, __ATOMIC_RELAXED);
    uint64_t t0 = cy_db_mono_ns();
    for (;;) {
        uint32_t batch = __atomic_load_n(&db->sync.durable_batch, __ATOMIC_RELAXED);
        writers = __atomic_load_n(&db->sync.durable_writers, __ATOMIC_RELAXED);
        if (writers > want) want = writers;
        if (batch >= want) break;
        if (cy_db_mono_ns() - t0 >= CY_GATHER_NS) {
            want = batch;
            break;
        }
        sched_yield();
    }
    __atomic_store_n(&db->sync.durable_group, want, __ATOMIC_RELAXED);
}

/* A follower whose bytes a leader's fdatasync is writing may wait for it
 * by spinning (yielding the CPU) instead of sleeping on sync_cv, as long
 * as syncs are short: waking a sleeper takes tens of microseconds on a
 * busy machine, a good part of a group commit's cycle, and all of it comes
 * before the next group can form. At most CY_SPINNERS followers spin, each
 * for at most twice the recent fdatasync time; where syncs take over
 * CY_SPIN_MAX_NS (a disk that really seeks) nobody spins.
 *
 * Whether spinning pays depends on the machine, so it is measured
 * (cy_spin_ctl_sync). On one VM of 2 cores it took 4 writers from 20.3k to
 * 23.5k puts/s; on the same VM another day the spinning cores slowed the
 * fdatasync itself, 135 -> 216 us (the host emulates the disk on the same
 * cores), and 4 writers made 9-11k puts/s spinning against 12-15k asleep. */
#define CY_SPINNERS    4
#define CY_SPIN_MAX_NS 1000000

CY_INTERNAL void cy_spin_ctl_sync(cy_spin_ctl *c, uint64_t now_ns, uint32_t batch,
                                  uint32_t writers)
{
    if (writers <= 1) {   /* nobody would spin: not a measure of either way */
        c->syncs = 0;
        return;
    }
    if (c->syncs == CY_SPIN_EPOCH) {
        uint32_t m = __atomic_load_n(&c->mode, __ATOMIC_RELAXED);
        uint64_t ns = now_ns > c->t0 ? now_ns - c->t0 : 1;
        uint64_t rate = (uint64_t)c->writes * 1000000000u / ns;
        c->rate[m] = c->rate[m] ? c->rate[m] / 2 + rate / 2 : rate;
        c->epoch++;
        if (!c->rate[0] || !c->rate[1]) {
            m = !c->rate[0] ? 0 : 1;   /* each way measured once first */
        } else {
            uint32_t best = c->rate[1] > c->rate[0];
            m = c->epoch % CY_SPIN_EXPLORE == 0 ? !best : best;
        }
        __atomic_store_n(&c->mode, m, __ATOMIC_RELAXED);
        c->syncs = 0;
    }
    if (c->syncs == 0) {
        c->t0 = now_ns;
        c->writes = 0;
    }
    c->syncs++;
    c->writes += batch;
}

static void cy_db_sync_spin(calypso *db, uint64_t seq)
{
    if (!__atomic_load_n(&db->sync.syncing, __ATOMIC_ACQUIRE)) return;
    if (!__atomic_load_n(&db->sync.spin.mode, __ATOMIC_RELAXED)) return;
    uint64_t avg = __atomic_load_n(&db->sync.time_ns, __ATOMIC_RELAXED);
    if (avg == 0 || avg > CY_SPIN_MAX_NS) return;
    if (__atomic_add_fetch(&db->sync.spinners, 1, __ATOMIC_RELAXED) <= CY_SPINNERS) {
        uint64_t t0 = cy_db_mono_ns();
        while (__atomic_load_n(&db->sync.synced_seq, __ATOMIC_ACQUIRE) < seq &&
               __atomic_load_n(&db->sync.syncing, __ATOMIC_ACQUIRE) &&
               cy_db_mono_ns() - t0 < 2 * avg)
            sched_yield();
    }
    __atomic_sub_fetch(&db->sync.spinners, 1, __ATOMIC_RELAXED);
}

/* The leader's record of how long its fdatasync took. */
static void cy_db_sync_took(calypso *db, uint64_t ns)
{
    uint64_t avg = __atomic_load_n(&db->sync.time_ns, __ATOMIC_RELAXED);
    avg = avg ? avg - avg / 8 + ns / 8 : ns;
    __atomic_store_n(&db->sync.time_ns, avg, __ATOMIC_RELAXED);
}

CY_INTERNAL int cy_db_sync_to(calypso *db, uint64_t seq)
{
    int rc = CALYPSO_OK;
    cy_db_sync_spin(db, seq);
    pthread_mutex_lock(&db->sync.mu);
    while (db->sync.synced_seq < seq && !rc) {
        /* A sync failed before covering these bytes: they may be lost,
         * and no later fdatasync can tell (the error is reported once). */
        if ((rc = cy_db_sync_error(db))) break;
        if (db->sync.syncing) {
            pthread_cond_wait(&db->sync.cv, &db->sync.mu);
            continue;
        }
        __atomic_store_n(&db->sync.syncing, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&db->sync.mu);
        cy_db_gather(db);
        /* The descriptor is pinned, not locked: rotation and eviction
         * leave a pinned descriptor open, and nothing else waits on it. */
        pthread_mutex_lock(&db->write_mu);
        uint64_t target = db->sync.written_seq;
        cy_spin_ctl_sync(&db->sync.spin, cy_db_mono_ns(), db->sync.durable_batch,
                         __atomic_load_n(&db->sync.durable_writers, __ATOMIC_RELAXED));
        __atomic_store_n(&db->sync.durable_batch, 0, __ATOMIC_RELAXED);   /* all in this sync */
        cy_file *a = cy_files_pin_active(db);
        uint64_t end = a ? a->size : 0;
        pthread_mutex_unlock(&db->write_mu);
        /* What rotation left to sync comes first: these writes follow
         * the sealed files' writes, and the new file's name must be
         * durable before its data counts. */
        int err = 0;
        rc = cy_files_sync_sealed(db);
        uint64_t t0 = cy_db_mono_ns();
        if (rc) err = -EIO;
        else if (a && a->fd >= 0 && (err = cy_os_fdatasync(a->fd)) != 0)
            rc = cy_db_sync_failed(db, err, a->fid);
        if (!rc) cy_db_sync_took(db, cy_db_mono_ns() - t0);
        cy_files_unpin(db, a);
        pthread_mutex_lock(&db->sync.mu);
        __atomic_store_n(&db->sync.syncing, 0, __ATOMIC_RELEASE);
        if (!err && target > db->sync.synced_seq) {
            __atomic_store_n(&db->sync.synced_seq, target, __ATOMIC_RELEASE);
            __atomic_store_n(&db->sync.synced_fid, a->fid, __ATOMIC_RELAXED);
            __atomic_store_n(&db->sync.synced_off, end, __ATOMIC_RELAXED);
        }
        pthread_cond_broadcast(&db->sync.cv);
    }
    pthread_mutex_unlock(&db->sync.mu);
    return rc;
}

int calypso_sync(calypso *h)
{
    calypso *db = cy_base(h);
    int rc = cy_db_usable(db);
    if (rc || db->opt.read_only) return rc;
    if (cy_txn_in_update(db)) return cy_db_in_update(db);
    if ((rc = cy_db_sync_error(db))) return rc;
    if (__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) return cy_db_writable(db);
    pthread_mutex_lock(&db->write_mu);
    uint64_t seq = db->sync.written_seq;
    /* An application that syncs itself (calypsod's --sync always: one
     * calypso_sync per round of requests) gets the zeros written ahead of
     * the data that SYNC_ALWAYS gets (files.c). */
    db->files.zero_ahead = 1;
    pthread_mutex_unlock(&db->write_mu);
    /* A file sealed with nothing written after it (the rotation at open)
     * has no group commit to cover it. */
    rc = cy_files_sync_sealed(db);
    return rc ? rc : cy_db_sync_to(db, seq);
}

// >> committing a prepared record ---------------------------------------------------

CY_INTERNAL int cy_db_commit(calypso *db, size_t bound, cy_build_fn build, cy_apply_fn apply,
                             void *ctx, int flags)
{
    int locked = flags & CY_COMMIT_LOCKED;
    int durable = db->opt.sync == CALYPSO_SYNC_ALWAYS;
    if (durable) cy_db_durable_enter(db);
    if (!locked) cy_mutex_lock_counted(&db->write_mu, &db->write_waiting);
    int rc = __atomic_load_n(&db->health.broken, __ATOMIC_RELAXED) ? cy_db_writable(db)
                                                                   : CALYPSO_OK;
    cy_file *a = db->files.active;
    /* Rotate first, so that build() knows the file the record goes to. */
    if (!rc && !cy_files_active_empty(a) && a->size + bound > db->opt.max_datafile_size)
        rc = cy_files_rotate(db);
    uint32_t fid = 0;
    uint64_t off = 0, seq = 0;
    size_t size = 0;
    const uint8_t *rec = NULL;
    if (!rc) rc = build(db, db->files.active->fid, &rec, &size, ctx);
    /* Low on space, what puts anything stays off the space the reserve
     * gave back to deletes and merge (space.c); deletes alone may use it. */
    if (!rc && size && !(flags & CY_COMMIT_DELETES_ONLY)) rc = cy_space_put_check(db);
    if (!rc && size) {
        struct iovec iov = { (void *)rec, size };
        rc = cy_db_append(db, &iov, 1, size, &fid, &off);
        if (rc == CALYPSO_ENOSPC && cy_space_full(db) && (flags & CY_COMMIT_DELETES_ONLY))
            rc = cy_db_append(db, &iov, 1, size, &fid, &off);
    }
    if (!rc && size) {
        cy_wrlock(&db->kd_lock);
        rc = apply(db, fid, off, rec, size, ctx);
        cy_unlock(&db->kd_lock);
        if (rc) rc = cy_db_unappend(db, rc, off, size);
        seq = db->sync.written_seq;
    }
    if (durable && !rc && size) cy_db_durable_appended(db);
    pthread_mutex_unlock(&db->write_mu);   /* an update's hold ends with its commit */
    if (durable) {
        if (!rc && size) rc = cy_db_sync_to(db, seq);
        cy_db_durable_leave(db);
    }
    return rc;
}
