/*
 * db.c: the handle's life: options, locks, open, close and reopen (start
 * and stop). The checks every call makes first (cy_db_usable,
 * cy_db_writable, cy_db_check_key) are in guard.c. The paths a handle serves are in
 * files of their own: commit.c (group commit, sticky sync failures),
 * write.c (puts and deletes), read.c (gets and figures).
 *
 * start acquires, in order: the directory and its LOCK, recovery (the file
 * table and the keydir), the space reserve, the background thread; stop
 * releases them in reverse, after a final sync (close returns its error,
 * or the error that broke the handle). A reopen is a stop and a start on
 * the same handle; if its start fails, the handle only closes (`failed`).
 *
 * A handle belongs to the process that opened it: after fork(), every call
 * in the child returns CALYPSO_EINVAL and touches no file (the fork
 * generation, counted by a pthread_atfork handler, tells them apart
 * without a getpid() system call per call).
 */
#include "engine.h"

#include <errno.h>
#include <math.h>
#include <string.h>

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
    pthread_mutex_init(&db->sync.mu, NULL);
    pthread_cond_init(&db->sync.cv, NULL);
    pthread_mutex_init(&db->bg.wake.mu, NULL);
    pthread_cond_init(&db->bg.wake.cv, NULL);
    pthread_mutex_init(&db->maint_mu, NULL);
    pthread_mutex_init(&db->exp_mu, NULL);
    pthread_mutex_init(&db->views.mu, NULL);
    pthread_mutex_init(&db->ids.mu, NULL);
    pthread_mutex_init(&db->files.seal_mu, NULL);
    pthread_mutex_init(&db->files.seal_turn, NULL);
    pthread_mutex_init(&db->space.mu, NULL);
}

static void cy_db_destroy_locks(calypso *db)
{
    pthread_mutex_destroy(&db->write_mu);
    pthread_mutex_destroy(&db->sync.mu);
    pthread_cond_destroy(&db->sync.cv);
    pthread_mutex_destroy(&db->bg.wake.mu);
    pthread_cond_destroy(&db->bg.wake.cv);
    pthread_mutex_destroy(&db->maint_mu);
    pthread_mutex_destroy(&db->exp_mu);
    pthread_mutex_destroy(&db->views.mu);
    pthread_mutex_destroy(&db->ids.mu);
    pthread_mutex_destroy(&db->files.seal_mu);
    pthread_mutex_destroy(&db->files.seal_turn);
    pthread_mutex_destroy(&db->space.mu);
    cy_epoch_destroy(&db->epoch);
}

/* Releases what cy_db_start acquired; returns the final sync's result. */
static int cy_db_stop(calypso *db)
{
    cy_bg_stop(db);
    int rc = CALYPSO_OK;
    cy_hint_active hint = { { 0 }, 0, 0, 0, NULL };
    if ((rc = cy_db_sync_error(db))) {
        /* a failed sync: reported, never tried again */
    } else if (__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED))
        rc = cy_db_writable(db);   /* the error that broke it, with its detail */
    else if (db->files.active && db->sync.written_seq > db->sync.synced_seq)
        rc = cy_db_sync_to(db, db->sync.written_seq);
    /* Files rotation sealed with nothing written after them. */
    if (!rc && db->files.active) rc = cy_files_sync_sealed(db);
    if (db->files.active && !__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) {
        int trc = cy_files_trim_active(db);   /* drop the preallocated tail */
        if (!rc) rc = trc;
        /* A hint for what the active file holds now (synced above) lets the
         * next open skip reading its values; anything written after it is
         * scanned then. Without one, open only takes longer. */
        cy_file *a = db->files.active;
        if (!rc && !cy_files_active_empty(a) && a->hint_covers < a->size &&
            cy_hint_active_build(db, &hint) == CALYPSO_OK) {
            /* A compacted hint is being written by a thread of its own
             * (most of it while the keydir was walked): it finishes while
             * the files are closed. One built from the file is written
             * now. A failure only slows the next open. */
            if (!hint.stream) cy_hint_active_write(db, &hint);
        }
    }
    cy_wm_close(db);
    cy_view_release_all(db);
    cy_files_close_all(db);
    cy_ns_close_all(db);
    if (hint.stream) cy_hint_active_write(db, &hint);   /* before the lock goes */
    cy_dir_unlock(db);
    db->files.dead = 0;
    db->sync.written_seq = 0;
    __atomic_store_n(&db->sync.synced_seq, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->sync.time_ns, 0, __ATOMIC_RELAXED);
    db->bg.hints_pending = 0;
    __atomic_store_n(&db->health.broken, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->health.sync_err, 0, __ATOMIC_RELAXED);
    return rc;
}

static int cy_db_start(calypso *db)
{
    uint64_t dsize = 0;
    int is_dir = 0;
    db->lock_fd = -1;
    db->note[0] = 0;
    cy_ns_init(&db->catalog.ns0, 0);
    db->ns = &db->catalog.ns0;
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
    db->health.fork_gen = cy_db_fork_gen();
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
    int rc = db->health.failed ? CALYPSO_OK : cy_db_stop(db);
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
    int rc = db->health.failed ? CALYPSO_OK : cy_db_stop(db);
    db->health.failed = 0;
    int rc2 = cy_db_start(db);
    if (rc2) {
        db->health.failed = 1;
        return rc2;
    }
    return rc;
}
