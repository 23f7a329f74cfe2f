/*
 * files.c: the table of datafiles and the cache of their descriptors.
 *
 * The table is an array of cy_file sorted by fid, guarded by files_lock.
 * Readers hold it shared while they pread, so a descriptor can be closed
 * (LRU eviction past max_open_files, removal by a merge) only under the
 * exclusive lock, when no read is in flight. The active file's descriptor
 * is never evicted. Opening an evicted descriptor needs the exclusive lock
 * too; readers upgrade by dropping the shared lock and retrying, since a
 * merge may have removed the file meanwhile (then they report
 * CALYPSO_ENOTFOUND and the caller looks its key up again).
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

static int cy_files_index(const calypso *db, uint32_t fid)
{
    uint32_t lo = 0, hi = db->nfiles;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (db->files[mid]->fid < fid) lo = mid + 1;
        else hi = mid;
    }
    return lo < db->nfiles && db->files[lo]->fid == fid ? (int)lo : -1;
}

CY_INTERNAL cy_file *cy_files_find(calypso *db, uint32_t fid)
{
    int i = cy_files_index(db, fid);
    return i < 0 ? NULL : db->files[i];
}

/* Adds a file; the caller holds files_lock exclusively or is alone. */
CY_INTERNAL int cy_files_add(calypso *db, uint32_t fid, int fd, uint64_t size, int sealed)
{
    if (db->nfiles == db->files_cap) {
        uint32_t nc = db->files_cap ? db->files_cap * 2 : 16;
        cy_file **p = cy_realloc(db->files, nc * sizeof *p);
        if (!p) return CALYPSO_ENOMEM;
        db->files = p;
        db->files_cap = nc;
    }
    cy_file *f = cy_calloc(1, sizeof *f);
    if (!f) return CALYPSO_ENOMEM;
    f->fid = fid;
    f->fd = fd;
    f->size = size;
    f->sealed = sealed;
    uint32_t i = db->nfiles;
    while (i > 0 && db->files[i - 1]->fid > fid) {
        db->files[i] = db->files[i - 1];
        i--;
    }
    db->files[i] = f;
    db->nfiles++;
    if (fd >= 0) db->open_fds++;
    return CALYPSO_OK;
}

/* Closes the least recently used sealed descriptor. files_lock exclusive. */
static void cy_files_evict_one(calypso *db)
{
    cy_file *victim = NULL;
    for (uint32_t i = 0; i < db->nfiles; i++) {
        cy_file *f = db->files[i];
        if (f->fd < 0 || f == db->active) continue;
        if (!victim || f->last_used < victim->last_used) victim = f;
    }
    if (!victim) return;
    cy_os_close(victim->fd);
    victim->fd = -1;
    db->open_fds--;
}

/* Opens the descriptor of fid if it is evicted. files_lock exclusive. */
static int cy_files_open_fd(calypso *db, cy_file *f)
{
    if (f->fd >= 0) return CALYPSO_OK;
    while (db->open_fds >= db->opt.max_open_files + (db->active ? 1u : 0u)) {
        uint32_t before = db->open_fds;
        cy_files_evict_one(db);
        if (db->open_fds == before) break;
    }
    char path[4096];
    cy_dir_data_path(db, f->fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    f->fd = fd;
    db->open_fds++;
    return CALYPSO_OK;
}

/* Runs a read of file fid with files_lock shared, opening its descriptor
 * first if needed. */
static int cy_files_read(calypso *db, uint32_t fid, struct iovec *iov, int iovcnt,
                         size_t want, uint64_t off)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        pthread_rwlock_rdlock(&db->files_lock);
        cy_file *f = cy_files_find(db, fid);
        if (!f) {
            pthread_rwlock_unlock(&db->files_lock);
            return CALYPSO_ENOTFOUND;
        }
        if (f->fd >= 0) {
            __atomic_store_n(&f->last_used, __atomic_add_fetch(&db->tick, 1, __ATOMIC_RELAXED),
                             __ATOMIC_RELAXED);
            int64_t got = iovcnt == 1 ? cy_os_pread(f->fd, iov[0].iov_base, iov[0].iov_len, off)
                                      : cy_os_preadv(f->fd, iov, iovcnt, off);
            int err = got < 0 ? (int)-got : 0;
            pthread_rwlock_unlock(&db->files_lock);
            char path[4096];
            if (err) {
                cy_dir_data_path(db, fid, path, sizeof path);
                return cy_err_errno(db, -err, "read", path);
            }
            if ((size_t)got != want) {
                cy_dir_data_path(db, fid, path, sizeof path);
                return cy_err(db, CALYPSO_ECORRUPT, "%s: record at offset %llu runs past the end",
                              path, (unsigned long long)off);
            }
            return CALYPSO_OK;
        }
        pthread_rwlock_unlock(&db->files_lock);
        pthread_rwlock_wrlock(&db->files_lock);
        f = cy_files_find(db, fid);
        int rc = f ? cy_files_open_fd(db, f) : CALYPSO_ENOTFOUND;
        pthread_rwlock_unlock(&db->files_lock);
        if (rc) return rc;
    }
    return cy_err(db, CALYPSO_EIO, "descriptor of datafile %u evicted twice", fid);
}

CY_INTERNAL int cy_files_pread(calypso *db, uint32_t fid, void *buf, size_t n, uint64_t off)
{
    struct iovec iov = { buf, n };
    return cy_files_read(db, fid, &iov, 1, n, off);
}

CY_INTERNAL int cy_files_preadv(calypso *db, uint32_t fid, void *a, size_t alen,
                                void *b, size_t blen, uint64_t off)
{
    struct iovec iov[2] = { { a, alen }, { b, blen } };
    if (!blen) return cy_files_read(db, fid, iov, 1, alen, off);
    return cy_files_read(db, fid, iov, 2, alen + blen, off);
}

CY_INTERNAL void cy_files_close_all(calypso *db)
{
    for (uint32_t i = 0; i < db->nfiles; i++) {
        if (db->files[i]->fd >= 0) cy_os_close(db->files[i]->fd);
        cy_free(db->files[i]);
    }
    cy_free(db->files);
    db->files = NULL;
    db->nfiles = db->files_cap = db->open_fds = 0;
    db->active = NULL;
}

/* Creates an empty datafile fid, makes its name durable and adds it to the
 * table as the active file. write_mu held. */
CY_INTERNAL int cy_files_create(calypso *db, uint32_t fid)
{
    char path[4096];
    /* A hint left by a file of the same id that a merge removed must not
     * be taken for this file's. */
    cy_dir_hint_path(db, fid, path, sizeof path);
    cy_os_unlink(path);
    cy_dir_data_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDWR | O_CREAT | O_EXCL, db->opt.file_mode);
    if (fd < 0) return cy_err_errno(db, fd, "create", path);
    int rc = cy_os_sync_dir(db->path);
    if (rc < 0) {
        cy_os_close(fd);
        cy_os_unlink(path);
        return cy_err_errno(db, rc, "fsync directory", db->path);
    }
    pthread_rwlock_wrlock(&db->files_lock);
    rc = cy_files_add(db, fid, fd, 0, 0);
    if (!rc) {
        db->active = cy_files_find(db, fid);
        /* The new descriptor may push the cache over its bound. */
        while (db->open_fds > db->opt.max_open_files + 1u) {
            uint32_t before = db->open_fds;
            cy_files_evict_one(db);
            if (db->open_fds == before) break;
        }
    }
    pthread_rwlock_unlock(&db->files_lock);
    if (rc) {
        cy_os_close(fd);
        cy_os_unlink(path);
        return cy_err(db, rc, "adding datafile %s", path);
    }
    return CALYPSO_OK;
}

/* Seals the active file (its data made durable first, so that a hint may
 * point at it) and starts the next one. write_mu held. */
CY_INTERNAL int cy_files_rotate(calypso *db)
{
    cy_file *old = db->active;
    char path[4096];
    int rc = cy_os_fdatasync(old->fd);
    if (rc < 0) {
        cy_dir_data_path(db, old->fid, path, sizeof path);
        return cy_err_errno(db, rc, "fdatasync", path);
    }
    pthread_mutex_lock(&db->sync_mu);
    db->synced_seq = db->written_seq;
    pthread_cond_broadcast(&db->sync_cv);
    pthread_mutex_unlock(&db->sync_mu);
    if ((rc = cy_files_create(db, old->fid + 1))) return rc;
    pthread_rwlock_wrlock(&db->files_lock);
    old->sealed = 1;
    pthread_rwlock_unlock(&db->files_lock);
    __atomic_add_fetch(&db->bg_hints_pending, 1, __ATOMIC_RELAXED);
    cy_bg_kick(db);
    return CALYPSO_OK;
}
