/*
 * db.c: the handle's life (open, close, reopen), options, and the read and
 * write paths: put, get, has, delete, durability and group commit.
 *
 * Write path: a writer validates and encodes its record outside any lock,
 * then under write_mu appends it with one pwritev at the end of the active
 * datafile (rolling over to a new file when full) and applies it to the
 * keydir under kd_lock. If the append or the keydir update fails, the file
 * is cut back to where it was, so a failed write leaves nothing behind; if
 * even that fails, the handle refuses further writes (`broken`) until it is
 * reopened.
 *
 * Group commit (SYNC_ALWAYS): appends advance written_seq; a writer then
 * waits until synced_seq covers its bytes. The first waiter becomes the
 * leader and runs one fdatasync for everything appended so far, with no
 * lock held that writers need, so appends go on beside it; the others
 * sleep on sync_cv and wake covered by the leader's sync or lead the next.
 * Before its fdatasync, a leader gives writers that have entered a durable
 * put or delete but not yet appended a moment to append (cy_db_gather), so
 * that one sync covers every writer about instead of half of them; while it
 * syncs, a few followers spin instead of sleeping (cy_db_sync_spin), so
 * that they are back with their next write as soon as it returns.
 *
 * A failed fdatasync is sticky (cy_db_sync_failed): the kernel may have
 * dropped the dirty pages it could not write and reports the error once,
 * so a second fdatasync would succeed over lost data. The first failure is
 * kept, the handle refuses writes from then on, every writer waiting for a
 * sync that did not happen gets CALYPSO_EIO, and no fdatasync is tried
 * again to clear it; close returns it.
 *
 * Read path: inside an epoch (epoch.c), one keydir lookup under kd_lock
 * shared, then the record is verified and its value copied straight out of
 * the file's mapping. No other lock is taken; a merge cannot release the
 * file before the reader leaves its epoch.
 *
 * A handle belongs to the process that opened it: after fork(), every call
 * in the child returns CALYPSO_EINVAL and touches no file (the fork
 * generation, counted by a pthread_atfork handler, tells them apart
 * without a getpid() system call per call).
 */
#include "engine.h"

#include <errno.h>
#include <sched.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
static int cy_db_ours(const calypso *db)
{
    return __atomic_load_n(&cy_fork_gen, __ATOMIC_RELAXED) == db->fork_gen;
}

// >> options -----------------------------------------------------------------

void calypso_options_default(calypso_options *o)
{
    if (!o) return;
    memset(o, 0, sizeof *o);
    o->max_datafile_size = CALYPSO_DEFAULT_MAX_DATAFILE_SIZE;
    o->max_key_size = CALYPSO_DEFAULT_MAX_KEY_SIZE;
    o->max_value_size = CALYPSO_DEFAULT_MAX_VALUE_SIZE;
    o->sync = CALYPSO_SYNC_NONE;
    o->sync_interval_ms = CALYPSO_DEFAULT_SYNC_INTERVAL_MS;
    o->dir_mode = CALYPSO_DEFAULT_DIR_MODE;
    o->file_mode = CALYPSO_DEFAULT_FILE_MODE;
    o->merge_trigger_ratio = CALYPSO_DEFAULT_MERGE_TRIGGER;
    o->merge_min_dead_bytes = CALYPSO_DEFAULT_MERGE_MIN_DEAD;
    o->max_open_files = CALYPSO_DEFAULT_MAX_OPEN_FILES;
    o->ttl_sweep_interval_ms = CALYPSO_DEFAULT_TTL_SWEEP_MS;
}

/* Fills zero fields with defaults and checks ranges; the message names the
 * field at fault. */
static int cy_db_options(calypso *db, const calypso_options *in)
{
    calypso_options d, o;
    calypso_options_default(&d);
    if (in) o = *in;
    else o = d;
#define CY_DEFAULT(f) if (!o.f) o.f = d.f
    CY_DEFAULT(max_datafile_size);
    CY_DEFAULT(max_key_size);
    CY_DEFAULT(max_value_size);
    CY_DEFAULT(sync_interval_ms);
    CY_DEFAULT(dir_mode);
    CY_DEFAULT(file_mode);
    CY_DEFAULT(merge_trigger_ratio);
    CY_DEFAULT(merge_min_dead_bytes);
    CY_DEFAULT(max_open_files);
    CY_DEFAULT(ttl_sweep_interval_ms);
#undef CY_DEFAULT
#define CY_CHECK(cond, f, range) \
    if (!(cond)) return cy_err(db, CALYPSO_EINVAL, "option %s out of range (%s)", #f, range)
    CY_CHECK(o.max_datafile_size >= CALYPSO_MIN_DATAFILE_SIZE &&
             o.max_datafile_size <= CALYPSO_MAX_DATAFILE_SIZE, max_datafile_size, "4096..2^40");
    CY_CHECK(o.max_key_size <= CALYPSO_MAX_KEY_SIZE, max_key_size, "1..65527");
    CY_CHECK(o.max_value_size <= CALYPSO_MAX_VALUE_SIZE, max_value_size, "1..2^30");
    CY_CHECK(o.sync >= CALYPSO_SYNC_NONE && o.sync <= CALYPSO_SYNC_ALWAYS, sync,
             "CALYPSO_SYNC_NONE, _INTERVAL or _ALWAYS");
    CY_CHECK(o.sync_interval_ms <= 3600000u, sync_interval_ms, "1..3600000");
    CY_CHECK(o.dir_mode <= 07777u, dir_mode, "0..07777");
    CY_CHECK(o.file_mode <= 07777u, file_mode, "0..07777");
    CY_CHECK(!isnan(o.merge_trigger_ratio) && o.merge_trigger_ratio <= 1.0,
             merge_trigger_ratio, "negative for never, or up to 1");
    CY_CHECK(o.max_open_files <= 65536u, max_open_files, "1..65536");
    CY_CHECK(o.ttl_sweep_interval_ms <= 86400000u || o.ttl_sweep_interval_ms == CALYPSO_SWEEP_NEVER,
             ttl_sweep_interval_ms, "1..86400000 or CALYPSO_SWEEP_NEVER");
#undef CY_CHECK
    db->opt = o;
    return CALYPSO_OK;
}

// >> lifecycle ---------------------------------------------------------------

static void cy_db_init_locks(calypso *db)
{
    cy_rwlock_init(&db->kd_lock);
    cy_epoch_init(&db->epoch);
    /* Writers hold write_mu for an append and a keydir update: spin a
     * little before sleeping on it, as for the rwlocks (engine.h). */
    pthread_mutexattr_t ma;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&db->write_mu, &ma);
    pthread_mutexattr_destroy(&ma);
    pthread_mutex_init(&db->sync_mu, NULL);
    pthread_cond_init(&db->sync_cv, NULL);
    pthread_mutex_init(&db->bg_mu, NULL);
    pthread_cond_init(&db->bg_cv, NULL);
    pthread_mutex_init(&db->maint_mu, NULL);
    pthread_mutex_init(&db->exp_mu, NULL);
    pthread_mutex_init(&db->view_mu, NULL);
    pthread_mutex_init(&db->ids.mu, NULL);
    pthread_mutex_init(&db->space.mu, NULL);
}

static void cy_db_destroy_locks(calypso *db)
{
    pthread_mutex_destroy(&db->write_mu);
    pthread_mutex_destroy(&db->sync_mu);
    pthread_cond_destroy(&db->sync_cv);
    pthread_mutex_destroy(&db->bg_mu);
    pthread_cond_destroy(&db->bg_cv);
    pthread_mutex_destroy(&db->maint_mu);
    pthread_mutex_destroy(&db->exp_mu);
    pthread_mutex_destroy(&db->view_mu);
    pthread_mutex_destroy(&db->ids.mu);
    pthread_mutex_destroy(&db->space.mu);
    cy_epoch_destroy(&db->epoch);
}

/* Releases what cy_db_start acquired; returns the final sync's result. */
static int cy_db_stop(calypso *db)
{
    cy_bg_stop(db);
    int rc = CALYPSO_OK;
    if (__atomic_load_n(&db->broken, __ATOMIC_RELAXED))
        rc = cy_db_writable(db);   /* the error that broke it, with its detail */
    else if (db->active && db->written_seq > db->synced_seq)
        rc = cy_db_sync_to(db, db->written_seq);
    if (db->active && !__atomic_load_n(&db->broken, __ATOMIC_RELAXED)) {
        int trc = cy_files_trim_active(db);   /* drop the preallocated tail */
        if (!rc) rc = trc;
        /* A hint for what the active file holds now (synced above) lets the
         * next open skip reading its values; anything written after it is
         * scanned then. Without one, open only takes longer. */
        cy_file *a = db->active;
        if (!rc && a->size > 0 && a->hint_covers < a->size) cy_hint_write(db, a->fid);
    }
    cy_wm_close(db);
    cy_view_release_all(db);
    cy_files_close_all(db);
    cy_ns_close_all(db);
    cy_dir_unlock(db);
    db->dead = 0;
    db->written_seq = 0;
    __atomic_store_n(&db->synced_seq, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->sync_ns, 0, __ATOMIC_RELAXED);
    db->bg_hints_pending = 0;
    __atomic_store_n(&db->broken, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->sync_err, 0, __ATOMIC_RELAXED);
    return rc;
}

static int cy_db_start(calypso *db)
{
    uint64_t dsize = 0;
    int is_dir = 0;
    db->lock_fd = -1;
    db->note[0] = 0;
    cy_ns_init(&db->ns0, 0);
    db->ns = &db->ns0;
    int src = cy_os_stat(db->path, &dsize, &is_dir);
    if (src < 0) {
        /* A read-only open creates nothing; a writer creates the directory
         * and any missing parents (as mkdir -p). */
        if ((src != -ENOENT && src != -ENOTDIR) || db->opt.read_only)
            return cy_err_errno(db, src, "open database directory", db->path);
        int rc = cy_dir_make_all(db, db->path, db->opt.dir_mode);
        if (rc) return rc;
    } else if (!is_dir) {
        return cy_err(db, CALYPSO_EINVAL, "%s is not a directory", db->path);
    }
    int rc = cy_dir_lock(db);
    /* A reader lists and replays the files under the file set lock, so
     * that a writer's merge moves none of them meanwhile (dir.c). */
    int files_locked = 0;
    db->writer_live = 0;
    if (!rc && db->opt.read_only) {
        rc = cy_dir_files_lock(db);
        files_locked = !rc;
        db->writer_live = cy_dir_writer_live(db);
    }
    if (!rc) rc = cy_recover(db);
    if (files_locked) cy_dir_files_unlock(db);
    if (!rc && !db->opt.read_only) rc = cy_space_open(db);
    if (!rc) rc = cy_bg_start(db);   /* read-only too: it releases evicted mappings */
    if (rc) {
        cy_db_stop(db);
        return rc;
    }
    if (db->note[0]) cy_err(db, CALYPSO_OK, "%s", db->note);
    return CALYPSO_OK;
}

static int cy_db_open(const char *path, const calypso_options *opts, calypso **out)
{
    calypso *db = cy_calloc(1, sizeof *db);
    if (!db) return cy_err(NULL, CALYPSO_ENOMEM, "allocating the handle");
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    if (!(db->path = cy_malloc(n + 1))) {
        cy_free(db);
        return cy_err(NULL, CALYPSO_ENOMEM, "allocating the handle");
    }
    memcpy(db->path, path, n);
    db->path[n] = 0;
    int rc = cy_db_options(db, opts);
    if (!rc && n > 4000) rc = cy_err(db, CALYPSO_EINVAL, "path longer than 4000 bytes");
    if (rc) {
        cy_err_move(db, NULL);
        cy_free(db->path);
        cy_free(db);
        return rc;
    }
    pthread_once(&cy_fork_once, cy_db_watch_forks);
    db->fork_gen = __atomic_load_n(&cy_fork_gen, __ATOMIC_RELAXED);
    cy_db_init_locks(db);
    if ((rc = cy_db_start(db))) {
        cy_err_move(db, NULL);
        cy_db_destroy_locks(db);
        cy_free(db->path);
        cy_free(db);
        return rc;
    }
    cy_err_forget(NULL);
    *out = db;
    return CALYPSO_OK;
}

/* The handle holds the allocator from before its first allocation until
 * calypso_close has freed its last block (src/alloc.c). */
int calypso_open(const char *path, const calypso_options *opts, calypso **out)
{
    if (out) *out = NULL;
    if (!path || !*path || !out)
        return cy_err(NULL, CALYPSO_EINVAL, "calypso_open needs a path and a handle pointer");
    cy_alloc_hold();
    int rc = cy_db_open(path, opts, out);
    if (rc) cy_alloc_release();
    return rc;
}

int calypso_close(calypso *db)
{
    if (!db) return CALYPSO_OK;
    if (!cy_db_ours(db))
        return cy_db_usable(cy_base(db));   /* an inherited copy: touch nothing, free nothing */
    if (db->base) return cy_ns_close_handle(db);
    if (__atomic_load_n(&db->ns_handles, __ATOMIC_RELAXED))
        return cy_err(db, CALYPSO_EINVAL, "%u namespace handles of %s are still open: close "
                      "them first", __atomic_load_n(&db->ns_handles, __ATOMIC_RELAXED), db->path);
    int rc = db->failed ? CALYPSO_OK : cy_db_stop(db);
    cy_db_destroy_locks(db);
    cy_err_forget(db);
    cy_free(db->path);
    cy_free(db);
    cy_alloc_release();
    return rc;
}

int calypso_reopen(calypso *db)
{
    if (!db) return CALYPSO_EINVAL;
    if (!cy_db_ours(db)) return cy_db_usable(cy_base(db));
    if (db->base)
        return cy_err(db->base, CALYPSO_EINVAL, "calypso_reopen needs the database handle, not "
                      "a namespace handle");
    if (__atomic_load_n(&db->ns_handles, __ATOMIC_RELAXED))
        return cy_err(db, CALYPSO_EINVAL, "namespace handles of %s are open: close them before "
                      "a reopen", db->path);
    int rc = db->failed ? CALYPSO_OK : cy_db_stop(db);
    db->failed = 0;
    int rc2 = cy_db_start(db);
    if (rc2) {
        db->failed = 1;
        return rc2;
    }
    return rc;
}

/* CALYPSO_OK if db may serve calls at all. */
CY_INTERNAL int cy_db_usable(calypso *db)
{
    if (!db) return CALYPSO_EINVAL;
    if (CY_UNLIKELY(!cy_db_ours(db)))
        return cy_err(db, CALYPSO_EINVAL, "%s was opened by another process (this one is a "
                      "fork of it): open the database again in this process", db->path);
    if (db->failed)
        return cy_err(db, CALYPSO_EIO, "the handle failed to reopen; only close is possible");
    return CALYPSO_OK;
}

CY_INTERNAL int cy_db_writable(calypso *db)
{
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (db->opt.read_only) return cy_err(db, CALYPSO_EREADONLY, "%s is open read-only", db->path);
    if (CY_UNLIKELY(cy_txn_in_update(db))) return cy_db_in_update(db);
    if (__atomic_load_n(&db->broken, __ATOMIC_RELAXED)) {
        int err = __atomic_load_n(&db->sync_err, __ATOMIC_RELAXED);
        if (err)
            return cy_err(db, CALYPSO_EIO, "an fdatasync of %s failed (%s): writes since the last "
                          "successful sync may be lost, so the handle refuses writes; reopen the "
                          "database", db->path, strerror(-err));
        return cy_err(db, CALYPSO_EIO, "an earlier write to %s failed and could not be undone; "
                      "reopen the database", db->path);
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_db_in_update(calypso *db)
{
    return cy_err(db, CALYPSO_EINVAL, "this thread is inside an update transaction on %s: "
                  "write through the transaction (calypso_txn_*)", db->path);
}

CY_INTERNAL int cy_db_sync_failed(calypso *db, int err, uint32_t fid)
{
    int none = 0;
    __atomic_compare_exchange_n(&db->sync_err, &none, err, 0, __ATOMIC_ACQ_REL,
                                __ATOMIC_RELAXED);
    __atomic_store_n(&db->broken, 1, __ATOMIC_RELEASE);
    char path[4096];
    cy_dir_data_path(db, fid, path, sizeof path);
    return cy_err_errno(db, err, "fdatasync", path);
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
static void cy_db_durable_enter(calypso *db)
{
    __atomic_add_fetch(&db->durable_writers, 1, __ATOMIC_RELAXED);
}

static void cy_db_durable_appended(calypso *db)
{
    __atomic_store_n(&db->durable_batch, db->durable_batch + 1, __ATOMIC_RELAXED);
}

static void cy_db_durable_leave(calypso *db)
{
    __atomic_sub_fetch(&db->durable_writers, 1, __ATOMIC_RELAXED);
}

/* The leader of a group commit, before its fdatasync: while other durable
 * writers are about, let them run until each has appended (those the last
 * sync released come back with their next write), for at most
 * CY_GATHER_NS. A lone writer never waits. The group the last sync covered
 * is expected again, so that a writer between two calls is waited for
 * too; a wait that times out lowers the expectation. */
static void cy_db_gather(calypso *db)
{
    uint32_t writers = __atomic_load_n(&db->durable_writers, __ATOMIC_RELAXED);
    if (writers <= 1) return;
    uint32_t want = __atomic_load_n(&db->durable_group, __ATOMIC_RELAXED);
    uint64_t t0 = cy_db_mono_ns();
    for (;;) {
        uint32_t batch = __atomic_load_n(&db->durable_batch, __ATOMIC_RELAXED);
        writers = __atomic_load_n(&db->durable_writers, __ATOMIC_RELAXED);
        if (writers > want) want = writers;
        if (batch >= want) break;
        if (cy_db_mono_ns() - t0 >= CY_GATHER_NS) {
            want = batch;
            break;
        }
        sched_yield();
    }
    __atomic_store_n(&db->durable_group, want, __ATOMIC_RELAXED);
}

/* A follower whose bytes a leader's fdatasync is writing waits for it by
 * spinning (yielding the CPU) instead of sleeping on sync_cv, as long as
 * syncs are short: waking a sleeper takes tens of microseconds on a busy
 * machine, a good part of a group commit's cycle, and all of it comes
 * before the next group can form. At most CY_SPINNERS followers spin, each
 * for at most twice the recent fdatasync time; where syncs take over
 * CY_SPIN_MAX_NS (a disk that really seeks) nobody spins. */
#define CY_SPINNERS    4
#define CY_SPIN_MAX_NS 1000000

static void cy_db_sync_spin(calypso *db, uint64_t seq)
{
    if (!__atomic_load_n(&db->syncing, __ATOMIC_ACQUIRE)) return;
    uint64_t avg = __atomic_load_n(&db->sync_ns, __ATOMIC_RELAXED);
    if (avg == 0 || avg > CY_SPIN_MAX_NS) return;
    if (__atomic_add_fetch(&db->sync_spinners, 1, __ATOMIC_RELAXED) <= CY_SPINNERS) {
        uint64_t t0 = cy_db_mono_ns();
        while (__atomic_load_n(&db->synced_seq, __ATOMIC_ACQUIRE) < seq &&
               __atomic_load_n(&db->syncing, __ATOMIC_ACQUIRE) &&
               cy_db_mono_ns() - t0 < 2 * avg)
            sched_yield();
    }
    __atomic_sub_fetch(&db->sync_spinners, 1, __ATOMIC_RELAXED);
}

/* The leader's record of how long its fdatasync took. */
static void cy_db_sync_took(calypso *db, uint64_t ns)
{
    uint64_t avg = __atomic_load_n(&db->sync_ns, __ATOMIC_RELAXED);
    avg = avg ? avg - avg / 8 + ns / 8 : ns;
    __atomic_store_n(&db->sync_ns, avg, __ATOMIC_RELAXED);
}

CY_INTERNAL int cy_db_sync_to(calypso *db, uint64_t seq)
{
    int rc = CALYPSO_OK;
    cy_db_sync_spin(db, seq);
    pthread_mutex_lock(&db->sync_mu);
    while (db->synced_seq < seq && !rc) {
        if (__atomic_load_n(&db->sync_err, __ATOMIC_ACQUIRE)) {
            /* A sync failed before covering these bytes: they may be lost,
             * and no later fdatasync can tell (the error is reported once). */
            rc = cy_db_writable(db);
            break;
        }
        if (db->syncing) {
            pthread_cond_wait(&db->sync_cv, &db->sync_mu);
            continue;
        }
        __atomic_store_n(&db->syncing, 1, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&db->sync_mu);
        cy_db_gather(db);
        /* The descriptor is pinned, not locked: rotation and eviction
         * leave a pinned descriptor open, and nothing else waits on it. */
        pthread_mutex_lock(&db->write_mu);
        uint64_t target = db->written_seq;
        __atomic_store_n(&db->durable_batch, 0, __ATOMIC_RELAXED);   /* all in this sync */
        cy_file *a = cy_files_pin_active(db);
        uint64_t end = a ? a->size : 0;
        pthread_mutex_unlock(&db->write_mu);
        uint64_t t0 = cy_db_mono_ns();
        int err = a && a->fd >= 0 ? cy_os_fdatasync(a->fd) : 0;
        cy_db_sync_took(db, cy_db_mono_ns() - t0);
        if (err) rc = cy_db_sync_failed(db, err, a->fid);
        cy_files_unpin(db, a);
        pthread_mutex_lock(&db->sync_mu);
        __atomic_store_n(&db->syncing, 0, __ATOMIC_RELEASE);
        if (!err && target > db->synced_seq) {
            __atomic_store_n(&db->synced_seq, target, __ATOMIC_RELEASE);
            __atomic_store_n(&db->synced_fid, a->fid, __ATOMIC_RELAXED);
            __atomic_store_n(&db->synced_off, end, __ATOMIC_RELAXED);
        }
        pthread_cond_broadcast(&db->sync_cv);
    }
    pthread_mutex_unlock(&db->sync_mu);
    return rc;
}

int calypso_sync(calypso *h)
{
    calypso *db = cy_base(h);
    int rc = cy_db_usable(db);
    if (rc || db->opt.read_only) return rc;
    if (cy_txn_in_update(db)) return cy_db_in_update(db);
    if (__atomic_load_n(&db->broken, __ATOMIC_RELAXED)) return cy_db_writable(db);
    pthread_mutex_lock(&db->write_mu);
    uint64_t seq = db->written_seq;
    pthread_mutex_unlock(&db->write_mu);
    return cy_db_sync_to(db, seq);
}

// >> appending -------------------------------------------------------------------

/* Appends a record given as pieces; returns where it went. write_mu held. */
static int cy_db_append(calypso *db, struct iovec *iov, int cnt, size_t size,
                        uint32_t *fid, uint64_t *off)
{
    int rc;
    cy_file *a = db->active;
    if (a->size > 0 && a->size + size > db->opt.max_datafile_size) {
        if ((rc = cy_files_rotate(db))) return rc;
        a = db->active;
    }
    if ((rc = cy_files_append(db, iov, cnt, size))) return rc;
    *fid = a->fid;
    *off = a->size;
    a->size += size;
    db->written_seq += size;
    /* Every CY_DB_WRITEBACK bytes, the background thread starts writing
     * them back (bg.c), so that a close or rotation's fdatasync finds
     * little left. Under SYNC_ALWAYS every write is synced anyway. */
    if (db->written_seq - db->wb_kicked >= CY_DB_WRITEBACK &&
        db->opt.sync != CALYPSO_SYNC_ALWAYS) {
        db->wb_kicked = db->written_seq;
        __atomic_store_n(&db->bg_writeback, 1, __ATOMIC_RELAXED);
        cy_bg_kick(db);
    }
    return CALYPSO_OK;
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

/* Writes one put record and applies it to ns's keydir. */
static int cy_db_write(calypso *db, cy_ns *ns, int type, const void *key, size_t klen,
                       const void *val, size_t vlen, uint64_t expiry)
{
    uint8_t stackbuf[4096];
    uint8_t hdr[CY_REC_MAX_HDR];
    uint32_t hlen = cy_rec_header_ns(hdr, type, ns->id, expiry, klen, vlen);
    size_t hk = hlen + klen, size = hk + vlen;
    /* A small record is built whole on the stack (one checksum pass, one
     * copy into the file); a large one is written from the caller's value. */
    int whole = size <= sizeof stackbuf;
    uint8_t *head = hk <= sizeof stackbuf ? stackbuf : cy_malloc(hk);
    if (!head) return cy_err(db, CALYPSO_ENOMEM, "encoding a record");
    memcpy(head, hdr, hlen);
    memcpy(head + hlen, key, klen);
    if (whole) {
        if (vlen) memcpy(head + hk, val, vlen);
        cy_put_u32(head, cy_crc(head + 4, size - 4, NULL, 0));
    } else {
        cy_put_u32(head, cy_crc(head + 4, hk - 4, val, vlen));
    }
    struct iovec iov[2] = { { head, whole ? size : hk }, { (void *)val, vlen } };

    int durable = db->opt.sync == CALYPSO_SYNC_ALWAYS;
    if (durable) cy_db_durable_enter(db);
    pthread_mutex_lock(&db->write_mu);
    int rc = __atomic_load_n(&db->broken, __ATOMIC_RELAXED) ? cy_db_writable(db) : CALYPSO_OK;
    uint32_t fid = 0;
    uint64_t off = 0, seq = 0;
    /* Low on space, puts stay off the space the reserve gave back to
     * deletes and merge (space.c). */
    if (!rc) rc = cy_ns_check_live(db, ns);
    if (!rc) rc = cy_space_put_check(db);
    if (!rc) {
        rc = cy_db_append(db, iov, whole || !vlen ? 1 : 2, size, &fid, &off);
        if (rc == CALYPSO_ENOSPC) cy_space_full(db);
    }
    if (!rc) {
        cy_wrlock(&db->kd_lock);
        rc = cy_keydir_apply(db, ns, type, key, klen, expiry, fid, off, (uint32_t)size);
        cy_unlock(&db->kd_lock);
        if (rc) {
            rc = cy_err(db, rc, "updating the key directory");
            cy_files_unappend(db, off, size);
            db->written_seq -= size;
        }
        seq = db->written_seq;
    }
    if (durable && !rc) cy_db_durable_appended(db);
    pthread_mutex_unlock(&db->write_mu);
    if (head != stackbuf) cy_free(head);
    if (durable) {
        if (!rc) rc = cy_db_sync_to(db, seq);
        cy_db_durable_leave(db);
    }
    return rc;
}

int calypso_put_ttl(calypso *h, const void *key, size_t klen, const void *val, size_t vlen,
                    uint64_t ttl_ms)
{
    calypso *db = cy_base(h);
    int rc = cy_db_writable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    if (!val && vlen) return cy_err(db, CALYPSO_EINVAL, "value is NULL");
    if (vlen > db->opt.max_value_size)
        return cy_err(db, CALYPSO_EVALUETOOLARGE, "%zu bytes, max_value_size is %llu", vlen,
                      (unsigned long long)db->opt.max_value_size);
    uint64_t expiry = 0;
    if (ttl_ms) {
        uint64_t now = cy_now_ms();
        expiry = ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + ttl_ms;
    }
    return cy_db_write(db, h->ns, expiry ? CY_REC_PUT_TTL : CY_REC_PUT, key, klen, val ? val : "",
                       vlen, expiry);
}

int calypso_put(calypso *db, const void *key, size_t klen, const void *val, size_t vlen)
{
    return calypso_put_ttl(db, key, klen, val, vlen, 0);
}

/* Encodes a tombstone for key into rec (CY_REC_MAX_HDR + klen + 10 bytes).
 * Its payload names the file of the record it deletes, so that a merge can
 * tell when the tombstone may be dropped. */
CY_INTERNAL size_t cy_db_encode_tombstone(uint8_t *rec, uint32_t ns, const void *key,
                                         size_t klen, uint32_t victim)
{
    uint8_t payload[10];
    size_t plen = cy_varint_put(payload, victim);
    uint32_t hlen = cy_rec_header_ns(rec, CY_REC_DEL, ns, 0, klen, plen);
    memcpy(rec + hlen, key, klen);
    memcpy(rec + hlen + klen, payload, plen);
    cy_put_u32(rec, cy_crc(rec + 4, hlen + klen + plen - 4, NULL, 0));
    return hlen + klen + plen;
}

int calypso_delete(calypso *h, const void *key, size_t klen)
{
    calypso *db = cy_base(h);
    cy_ns *ns = cy_ns_of(h);
    int rc = cy_db_writable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    uint8_t stackbuf[4096];
    size_t need = CY_REC_MAX_HDR + klen + 10;
    uint8_t *rec = need <= sizeof stackbuf ? stackbuf : cy_malloc(need);
    if (!rec) return cy_err(db, CALYPSO_ENOMEM, "encoding a tombstone");
    uint64_t seq = 0;
    int wrote = 0, durable = db->opt.sync == CALYPSO_SYNC_ALWAYS;
    if (durable) cy_db_durable_enter(db);
    pthread_mutex_lock(&db->write_mu);
    if (__atomic_load_n(&db->broken, __ATOMIC_RELAXED)) rc = cy_db_writable(db);
    if (!rc) rc = cy_ns_check_live(db, ns);
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_art_search(&ns->keydir, key, klen);
    uint32_t victim = l ? l->fid & CY_LOC_FIDMASK : 0;
    cy_unlock(&db->kd_lock);
    if (!rc && l) {
        size_t size = cy_db_encode_tombstone(rec, ns->id, key, klen, victim);
        struct iovec iov = { rec, size };
        uint32_t fid;
        uint64_t off;
        rc = cy_db_append(db, &iov, 1, size, &fid, &off);
        if (rc == CALYPSO_ENOSPC && cy_space_full(db)) rc = cy_db_append(db, &iov, 1, size, &fid, &off);
        if (!rc) {
            cy_wrlock(&db->kd_lock);
            cy_keydir_apply(db, ns, CY_REC_DEL, key, klen, 0, fid, off, (uint32_t)size);
            cy_unlock(&db->kd_lock);
            wrote = 1;
        }
        seq = db->written_seq;
    }
    if (durable && wrote) cy_db_durable_appended(db);
    pthread_mutex_unlock(&db->write_mu);
    if (rec != stackbuf) cy_free(rec);
    if (durable) {
        if (wrote) rc = cy_db_sync_to(db, seq);
        cy_db_durable_leave(db);
    }
    return rc;
}

// >> committing a prepared record ---------------------------------------------------

CY_INTERNAL int cy_db_commit(calypso *db, size_t bound, cy_build_fn build, cy_apply_fn apply,
                             void *ctx, int flags)
{
    int locked = flags & CY_COMMIT_LOCKED;
    int durable = db->opt.sync == CALYPSO_SYNC_ALWAYS;
    if (durable) cy_db_durable_enter(db);
    if (!locked) pthread_mutex_lock(&db->write_mu);
    int rc = __atomic_load_n(&db->broken, __ATOMIC_RELAXED) ? cy_db_writable(db) : CALYPSO_OK;
    cy_file *a = db->active;
    /* Rotate first, so that build() knows the file the record goes to. */
    if (!rc && a->size > 0 && a->size + bound > db->opt.max_datafile_size)
        rc = cy_files_rotate(db);
    uint32_t fid = 0;
    uint64_t off = 0, seq = 0;
    size_t size = 0;
    const uint8_t *rec = NULL;
    if (!rc) rc = build(db, db->active->fid, &rec, &size, ctx);
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
        if (rc) {
            rc = cy_err(db, rc, "updating the key directory");
            cy_files_unappend(db, off, size);
            db->written_seq -= size;
        }
        seq = db->written_seq;
    }
    if (durable && !rc && size) cy_db_durable_appended(db);
    pthread_mutex_unlock(&db->write_mu);   /* an update's hold ends with its commit */
    if (durable) {
        if (!rc && size) rc = cy_db_sync_to(db, seq);
        cy_db_durable_leave(db);
    }
    return rc;
}

// >> reading ---------------------------------------------------------------------

typedef struct cy_read {
    calypso    *db;
    const void *key;
    size_t      klen;
    uint64_t    expiry;
    uint32_t    fid, size;
    uint64_t    off;
    void      **out;      /* allocate the value here, or ...           */
    void       *buf;      /* ... copy it into buf (cap bytes)          */
    size_t      cap;
    size_t     *vlen;
} cy_read;

CY_INTERNAL int cy_db_check_record(const uint8_t *rec, uint32_t size, const void *key,
                                   size_t klen, uint64_t expiry, cy_rec *r)
{
    int type = expiry ? CY_REC_PUT_TTL : CY_REC_PUT;
    return cy_rec_parse(rec, size, r) == 1 && r->type == type && r->expiry == expiry &&
           r->klen == klen && r->hdr + r->klen + r->vlen == size &&
           memcmp(rec + r->hdr, key, klen) == 0 && cy_crc(rec + 4, size - 4, NULL, 0) == r->crc;
}

/* Verifies a record against what the keydir promised and copies its value
 * out. Runs on the mapped bytes, inside the reader's epoch. */
static int cy_db_read_record(const uint8_t *rec, void *ctx)
{
    cy_read *q = ctx;
    cy_rec r;
    if (!cy_db_check_record(rec, q->size, q->key, q->klen, q->expiry, &r)) {
        char path[4096];
        cy_dir_data_path(q->db, q->fid, path, sizeof path);
        return cy_err(q->db, CALYPSO_ECHECKSUM, "%s at offset %llu", path,
                      (unsigned long long)q->off);
    }
    size_t n = (size_t)r.vlen;
    const uint8_t *val = rec + r.hdr + r.klen;
    /* On ENOMEM *vlen stays 0, as calypso_get promises; ETRUNC tells the
     * size needed. */
    if (q->out) {
        if (!(*q->out = cy_malloc(n ? n : 1)))
            return cy_err(q->db, CALYPSO_ENOMEM, "value of %zu bytes", n);
        memcpy(*q->out, val, n);
        *q->vlen = n;
        return CALYPSO_OK;
    }
    *q->vlen = n;
    if (n > q->cap) {
        return CALYPSO_ETRUNC;
    } else if (n) {
        memcpy(q->buf, val, n);
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_db_read_file(calypso *db, cy_file *f, const void *key, size_t klen,
                                const cy_loc *loc, uint64_t expiry, void **out, void *buf,
                                size_t cap, size_t *vlen)
{
    cy_read q = { db, key, klen, expiry,
                  loc->fid & CY_LOC_FIDMASK, loc->size, loc->off, out, buf, cap, vlen };
    return cy_files_with_record(db, f, loc->off, loc->size, cy_db_read_record, &q);
}

CY_INTERNAL int cy_db_read_at(calypso *db, const void *key, size_t klen, const cy_loc *loc,
                              uint64_t expiry, void **out, void *buf, size_t cap, size_t *vlen)
{
    cy_file *f = cy_files_find(db, loc->fid & CY_LOC_FIDMASK);
    if (!f) return CALYPSO_ENOTFOUND;
    return cy_db_read_file(db, f, key, klen, loc, expiry, out, buf, cap, vlen);
}

/* Reads and verifies the value of key into buf (cap bytes), or into a new
 * buffer (*out) when out is not NULL. The epoch spans the lookup and the
 * copy, so the file the keydir names is in the table and stays mapped:
 * its absence would be a broken invariant, not a race to retry. */
CY_INTERNAL int cy_db_read(calypso *db, cy_ns *ns, const void *key, size_t klen, void **out,
                           void *buf, size_t cap, size_t *vlen)
{
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    uint64_t expiry;
    cy_loc loc;
    uint32_t ep = cy_epoch_enter(&db->epoch);
    cy_rdlock(&db->kd_lock);
    /* The key a walk has just handed to this thread's callback: where the
     * walk found it, unless the keydir changed since (CalypsoDB's
     * scan-then-get pays for one tree descent, not two). */
    int hinted = cy_walk_hint(db, ns, key, klen, &loc, &expiry);
    const cy_loc *l = hinted ? &loc : cy_keydir_get(db, ns, key, klen, &expiry);
    if (l) loc = *l;
    cy_unlock(&db->kd_lock);
    if (!l) rc = CALYPSO_ENOTFOUND;
    else if (expiry && expiry <= cy_now_ms()) rc = CALYPSO_EEXPIRED;
    else {
        rc = cy_db_read_at(db, key, klen, &loc, expiry, out, buf, cap, vlen);
        if (rc == CALYPSO_ENOTFOUND && hinted) {
            /* A merge moved the record since the walk saw it (moves are not
             * keydir changes: the value is the same): look it up. */
            cy_rdlock(&db->kd_lock);
            l = cy_keydir_get(db, ns, key, klen, &expiry);
            if (l) loc = *l;
            cy_unlock(&db->kd_lock);
            rc = !l ? CALYPSO_ENOTFOUND
               : expiry && expiry <= cy_now_ms() ? CALYPSO_EEXPIRED
               : cy_db_read_at(db, key, klen, &loc, expiry, out, buf, cap, vlen);
            CY_ASSERT(!l || rc != CALYPSO_ENOTFOUND);
        }
        CY_ASSERT(rc != CALYPSO_ENOTFOUND || hinted);   /* the keydir named a file not in the table */
    }
    cy_epoch_leave(&db->epoch, ep);
    return rc;
}

int calypso_get(calypso *h, const void *key, size_t klen, void **val, size_t *vlen)
{
    calypso *db = cy_base(h);
    if (val) *val = NULL;
    if (vlen) *vlen = 0;
    if (!val || !vlen) return cy_err(db, CALYPSO_EINVAL, "calypso_get needs val and vlen");
    return cy_db_read(db, cy_ns_of(h), key, klen, val, NULL, 0, vlen);
}

int calypso_get_buf(calypso *h, const void *key, size_t klen, void *buf, size_t cap,
                    size_t *vlen)
{
    calypso *db = cy_base(h);
    if (!vlen || (!buf && cap)) return cy_err(db, CALYPSO_EINVAL, "calypso_get_buf needs vlen");
    *vlen = 0;
    return cy_db_read(db, cy_ns_of(h), key, klen, NULL, buf, cap, vlen);
}

void calypso_free(void *p)
{
    cy_free(p);
}

int calypso_has(calypso *h, const void *key, size_t klen)
{
    return cy_db_has(cy_base(h), cy_ns_of(h), key, klen);
}

CY_INTERNAL int cy_db_has(calypso *db, cy_ns *ns, const void *key, size_t klen)
{
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (rc) return rc;
    uint64_t expiry;
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_keydir_get(db, ns, key, klen, &expiry);
    cy_unlock(&db->kd_lock);
    return l && (!expiry || expiry > cy_now_ms());
}

int calypso_ttl(calypso *h, const void *key, size_t klen, uint64_t *expires_at_ms)
{
    return cy_db_ttl(cy_base(h), cy_ns_of(h), key, klen, expires_at_ms);
}

CY_INTERNAL int cy_db_ttl(calypso *db, cy_ns *ns, const void *key, size_t klen,
                          uint64_t *expires_at_ms)
{
    int rc = cy_db_usable(db);
    if (!rc) rc = cy_db_check_key(db, key, klen);
    if (!rc && !expires_at_ms) rc = cy_err(db, CALYPSO_EINVAL, "calypso_ttl needs an output");
    if (rc) return rc;
    uint64_t expiry;
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_keydir_get(db, ns, key, klen, &expiry);
    cy_unlock(&db->kd_lock);
    *expires_at_ms = 0;
    if (!l) return CALYPSO_ENOTFOUND;
    if (expiry && expiry <= cy_now_ms()) return CALYPSO_EEXPIRED;
    *expires_at_ms = expiry;
    return CALYPSO_OK;
}

uint64_t calypso_len(calypso *h)
{
    calypso *db = cy_base(h);
    if (cy_db_usable(db)) return 0;
    cy_ns *ns = cy_ns_of(h);
    cy_rdlock(&db->kd_lock);
    uint64_t n = ns->keydir.count - cy_ttl_count_expired(db, ns, cy_now_ms());
    cy_unlock(&db->kd_lock);
    return n;
}

// >> deleting many ----------------------------------------------------------------

/* Per key, what its tombstone can take in a batch: as calypso_batch counts. */
#define CY_DB_TOMBSTONE_BOUND(klen) (CY_REC_MAX_HDR + 10u + (uint64_t)(klen))

/* The i-th key of the deletion chosen ++ expired, and whether it is one
 * of the expired (deleted only if still expired at commit). */
static const uint8_t *cy_db_doomed_at(const cy_keylist *chosen, const cy_keylist *expired,
                                      size_t i, size_t *klen, int *if_expired)
{
    size_t nc = chosen ? chosen->n : 0;
    *if_expired = i >= nc;
    return i < nc ? cy_keylist_at(chosen, i, klen) : cy_keylist_at(expired, i - nc, klen);
}

/* Commits, in ns, as many of the keys from *i on as one batch takes,
 * advancing *i. */
static int cy_db_delete_one_batch(calypso *db, cy_ns *ns, const cy_keylist *chosen,
                                  const cy_keylist *expired, size_t n, size_t *i)
{
    calypso_batch *b;
    int rc = calypso_batch_open(db, &b);
    if (rc) return rc;
    if ((rc = cy_batch_set_ns(b, ns))) {
        calypso_batch_abort(b);
        return rc;
    }
    size_t first = *i;
    for (; *i < n; (*i)++) {
        size_t klen;
        int if_expired;
        const uint8_t *k = cy_db_doomed_at(chosen, expired, *i, &klen, &if_expired);
        rc = if_expired ? cy_batch_delete_expired(b, k, klen) : calypso_batch_delete(b, k, klen);
        if (rc == CALYPSO_EVALUETOOLARGE && *i > first) {   /* full: commit what it holds */
            cy_err_forget(db);
            rc = CALYPSO_OK;
            break;
        }
        if (rc) break;
    }
    if (rc) {
        calypso_batch_abort(b);
        return rc;
    }
    return calypso_batch_commit(b);
}

CY_INTERNAL int cy_db_delete_keys(calypso *db, cy_ns *ns, const cy_keylist *chosen,
                                  const cy_keylist *expired)
{
    size_t n = (chosen ? chosen->n : 0) + (expired ? expired->n : 0);
    int rc = CALYPSO_OK;
    for (size_t i = 0; i < n && !rc;)
        rc = cy_db_delete_one_batch(db, ns, chosen, expired, n, &i);
    return rc;
}

/* Keys listed per round by run_gc: each round is one batch applied under
 * one hold of the keydir lock, so readers wait for at most this many. */
#define CY_DB_GC_ROUND 65536

/* Lists keys of ns from the start, at most max of them and no more than
 * one batch takes; *more: keys are left after them. kd_lock held. */
static int cy_db_list_first(calypso *db, cy_ns *ns, size_t max, cy_keylist *out, int *more)
{
    /* One batch under the caller's hold of kd_lock, bounded by the
     * tombstones that fit a datafile (so that delete_all is atomic when
     * they all fit), not by the iterator's visit budget. */
    cy_kd_keys keys = { out, max, db->opt.max_datafile_size, CY_REC_MAX_HDR,
                        CY_DB_TOMBSTONE_BOUND(0) };
    cy_kd_iter it;
    cy_kd_iter_init(&it, db, ns, CY_SEEK_FIRST, NULL, 0);
    it.flags = CY_KD_LOCKED;
    it.visit = SIZE_MAX;
    int rc = cy_kd_iter_gather(&it, SIZE_MAX, cy_kd_take_key, &keys);
    cy_kd_iter_free(&it);
    *more = rc == 1;
    return rc < 0 ? rc : CALYPSO_OK;
}

/* Lists up to max expired keys of ns. kd_lock held. */
static int cy_db_list_expired(calypso *db, cy_ns *ns, size_t max, cy_keylist *out, int *more)
{
    (void)db;
    int rc = cy_ttl_expired(ns, cy_now_ms(), max, out);
    *more = out->n == max;
    return rc;
}

/* Deletes, round by round, the keys of ns that `list` names until it names
 * none, or no more are left after a round. A round is one batch when its
 * tombstones fit a datafile; delete_all lists every key in one round when
 * they do, and so is atomic. */
static int cy_db_delete_listed(calypso *db, cy_ns *ns, size_t max,
                               int (*list)(calypso *, cy_ns *, size_t, cy_keylist *, int *),
                               int only_expired)
{
    int rc = cy_db_writable(db);
    if (rc) return rc;
    cy_keylist keys = { 0 };
    for (;;) {
        int more = 0;
        cy_keylist_clear(&keys);
        cy_rdlock(&db->kd_lock);
        rc = list(db, ns, max, &keys, &more);
        cy_unlock(&db->kd_lock);
        if (rc) { rc = cy_err(db, rc, "listing keys to delete"); break; }
        if (keys.n == 0) break;
        rc = only_expired ? cy_db_delete_keys(db, ns, NULL, &keys)
                          : cy_db_delete_keys(db, ns, &keys, NULL);
        if (rc || !more) break;
    }
    cy_keylist_free(&keys);
    return rc;
}

int calypso_delete_all(calypso *h)
{
    return cy_db_delete_listed(cy_base(h), cy_ns_of(h), SIZE_MAX, cy_db_list_first, 0);
}

CY_INTERNAL int cy_db_run_gc(calypso *db, cy_ns *ns)
{
    return cy_db_delete_listed(db, ns, CY_DB_GC_ROUND, cy_db_list_expired, 1);
}

int calypso_run_gc(calypso *h)
{
    return cy_db_run_gc(cy_base(h), cy_ns_of(h));
}

// >> figures ---------------------------------------------------------------------

int calypso_stats(calypso *h, struct calypso_stats *st)
{
    calypso *db = cy_base(h);
    cy_ns *ns = cy_ns_of(h);
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (!st) return cy_err(db, CALYPSO_EINVAL, "calypso_stats needs a struct");
    if (cy_txn_in_update(db)) return cy_db_in_update(db);   /* it takes the writer lock */
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&db->write_mu);
    cy_rdlock(&db->kd_lock);
    const cy_ftab *t = cy_files_table(db);
    st->datafiles = t ? t->n : 0;
    /* Bytes the files hold on disk: the active file's space allocated
     * ahead of its data counts too. */
    for (uint32_t i = 0; i < st->datafiles; i++) {
        const cy_file *f = t->f[i];
        st->size += (f->alloc > f->size ? f->alloc : f->size) +
                    __atomic_load_n(&f->hint_size, __ATOMIC_RELAXED);
    }
    st->keys = ns->keydir.count - cy_ttl_count_expired(db, ns, cy_now_ms());
    st->live_bytes = ns->live_bytes;
    st->reclaimable = db->dead;
    st->keydir_bytes = ns->keydir.bytes + ns->ttl_by_key.bytes + ns->ttl_by_time.bytes;
    st->merges = db->merges;
    cy_unlock(&db->kd_lock);
    pthread_mutex_unlock(&db->write_mu);
    return CALYPSO_OK;
}

int64_t calypso_reclaimable(calypso *h)
{
    calypso *db = cy_base(h);
    int rc = cy_db_usable(db);
    if (rc) return rc;
    cy_rdlock(&db->kd_lock);
    int64_t dead = (int64_t)db->dead;
    cy_unlock(&db->kd_lock);
    return dead;
}
