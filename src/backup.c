/*
 * backup.c: calypso_backup, a point-in-time copy of a live database.
 *
 * Datafiles are append-only and sealed ones never change, so a consistent
 * image is: every sealed file whole (with its hint), plus the active file up
 * to the length it had at one instant. That instant is taken under write_mu
 * (writers pause for the time it takes to note the lengths); the copying
 * runs with no engine lock, while writers append past the noted length.
 * Every file of the image is opened at that instant too, under maint_mu
 * (no merge is removing files then), and copied from its descriptor after
 * maint_mu is released: a merge that removes a file meanwhile unlinks a
 * name, not the bytes the open descriptor reads, so a long backup never
 * holds up merges or hint writing. Every copied
 * file is synced, then the directory, and META is written last: a backup
 * interrupted by a crash has no META and so never opens as a database.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

typedef struct cy_backup_item {
    uint32_t fid;
    uint64_t size;
    int      hint;            /* it has a hint file                        */
    int      data_fd, hint_fd; /* opened at the snapshot; -1 when not      */
    uint64_t hint_len;
    int      held;            /* a read-only handle's own descriptor of the
                                 datafile (its name may be gone: the writer
                                 merged it away): borrowed, not closed    */
} cy_backup_item;

/* Copies size bytes of the open file `in` (named from, for messages) into
 * a new file `to`, and syncs it. */
static int cy_backup_copy(calypso *db, int in, const char *from, const char *to, uint64_t size,
                          uint8_t *buf, size_t cap)
{
    int out = -1, rc = 0;
    out = cy_os_open(to, O_WRONLY | O_CREAT | O_EXCL, db->opt.file_mode);
    if (out < 0) return cy_err_errno(db, out, "create", to);
    for (uint64_t off = 0; off < size && !rc;) {
        size_t n = size - off < cap ? (size_t)(size - off) : cap;
        int64_t got = cy_os_pread(in, buf, n, off);
        if (got < 0) { rc = cy_err_errno(db, (int)got, "read", from); break; }
        if ((size_t)got != n) {
            rc = cy_err(db, CALYPSO_EIO, "%s shrank during the backup", from);
            break;
        }
        if ((rc = cy_os_pwrite(out, buf, n, off)) < 0) rc = cy_err_errno(db, rc, "write", to);
        off += n;
    }
    if (!rc && (rc = cy_os_fdatasync(out)) < 0) rc = cy_err_errno(db, rc, "fdatasync", to);
    cy_os_close(out);
    return rc;
}

static int cy_backup_is_empty(const char *name, void *ctx)
{
    (void)name;
    (void)ctx;
    return 1;
}

/* Creates dest with any missing parents, or accepts it when it is an
 * empty directory. */
static int cy_backup_dest(calypso *db, const char *dest)
{
    uint64_t size = 0;
    int is_dir = 0, rc = cy_os_stat(dest, &size, &is_dir);
    if (rc < 0 && rc != -ENOENT && rc != -ENOTDIR) return cy_err_errno(db, rc, "stat", dest);
    if (rc == 0) {
        if (!is_dir) return cy_err(db, CALYPSO_EINVAL, "%s is not a directory", dest);
        rc = cy_os_list_dir(dest, cy_backup_is_empty, NULL);
        if (rc == 1) return cy_err(db, CALYPSO_EINVAL, "backup directory %s is not empty", dest);
        if (rc < 0) return cy_err_errno(db, rc, "list", dest);
        return CALYPSO_OK;
    }
    return cy_dir_make_all(db, dest, db->opt.dir_mode);
}

/* Notes every file and its length at one instant, and opens each, data
 * and hint, under maint_mu (merges and hint writing wait that long). */
static int cy_backup_snapshot(calypso *db, cy_backup_item **items, uint32_t *n)
{
    pthread_mutex_lock(&db->maint_mu);
    pthread_mutex_lock(&db->write_mu);
    cy_file_info *fi = cy_files_snapshot(db, n);
    pthread_mutex_unlock(&db->write_mu);
    *items = fi ? cy_calloc(*n ? *n : 1, sizeof **items) : NULL;
    for (uint32_t i = 0; *items && i < *n; i++)
        (*items)[i] = (cy_backup_item){ fi[i].fid, fi[i].size, fi[i].hint_size > 0,
                                        -1, -1, 0, fi[i].held_fd };
    cy_free(fi);
    int rc = *items ? CALYPSO_OK : cy_err(db, CALYPSO_ENOMEM, "listing files to back up");
    for (uint32_t i = 0; !rc && i < *n; i++) {
        cy_backup_item *it = &(*items)[i];
        char path[4096];
        cy_dir_data_path(db, it->fid, path, sizeof path);
        if (it->held >= 0) {
            it->data_fd = it->held;
        } else if ((it->data_fd = cy_os_open(path, O_RDONLY, 0)) < 0) {
            rc = cy_err_errno(db, it->data_fd, "open", path);
            it->data_fd = -1;
            break;
        }
        if (!it->hint) continue;
        /* The hint is optional: a backup without it opens by scanning. */
        cy_dir_hint_path(db, it->fid, path, sizeof path);
        int fd = cy_os_open(path, O_RDONLY, 0);
        if (fd >= 0 && cy_os_fsize(fd, &it->hint_len) == 0) it->hint_fd = fd;
        else if (fd >= 0) cy_os_close(fd);
    }
    pthread_mutex_unlock(&db->maint_mu);
    return rc;
}

static void cy_backup_release(cy_backup_item *items, uint32_t n)
{
    for (uint32_t i = 0; items && i < n; i++) {
        if (items[i].data_fd >= 0 && items[i].data_fd != items[i].held)
            cy_os_close(items[i].data_fd);
        if (items[i].hint_fd >= 0) cy_os_close(items[i].hint_fd);
    }
    cy_free(items);
}

int calypso_backup(calypso *h, const char *dest)
{
    calypso *db = cy_base(h);   /* the whole database, from any of its handles */
    if (!db || !dest || !*dest) return db ? cy_err(db, CALYPSO_EINVAL, "no backup path") : CALYPSO_EINVAL;
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (cy_txn_in_update(db)) return cy_db_in_update(db);   /* it takes the writer lock */
    if (strlen(dest) > 4000) return cy_err(db, CALYPSO_EINVAL, "backup path too long");
    cy_backup_item *items = NULL;
    uint32_t n = 0;
    size_t cap = 1u << 20;
    uint8_t *buf = cy_malloc(cap);
    rc = buf ? cy_backup_dest(db, dest) : cy_err(db, CALYPSO_ENOMEM, "backup buffer");
    if (!rc) rc = cy_backup_snapshot(db, &items, &n);
    for (uint32_t i = 0; i < n && !rc; i++) {
        char from[4096], to[4200];
        cy_dir_data_path(db, items[i].fid, from, sizeof from);
        snprintf(to, sizeof to, "%s/%010u.data", dest, items[i].fid);
        rc = cy_backup_copy(db, items[i].data_fd, from, to, items[i].size, buf, cap);
        if (rc || items[i].hint_fd < 0) continue;
        cy_dir_hint_path(db, items[i].fid, from, sizeof from);
        snprintf(to, sizeof to, "%s/%010u.hint", dest, items[i].fid);
        rc = cy_backup_copy(db, items[i].hint_fd, from, to, items[i].hint_len, buf, cap);
    }
    if (!rc && (rc = cy_os_sync_dir(dest)) < 0) rc = cy_err_errno(db, rc, "fsync", dest);
    if (!rc) {
        char meta[64];
        int len = snprintf(meta, sizeof meta, "calypso-format %d\n", CY_FORMAT_VERSION);
        rc = cy_dir_write_file(db, dest, "META", meta, (size_t)len);
    }
    cy_backup_release(items, n);
    cy_free(buf);
    return rc;
}
