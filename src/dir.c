/*
 * dir.c: the database directory: file names, the LOCK file, the META file
 * and the listing of datafiles and hint files at open.
 *
 * LOCK holds a flock: exclusive for a writer, shared for read-only handles.
 * A writer writes its pid into it so that a refused opener can say who holds
 * the database. flock locks belong to the open file description, so a
 * process that dies releases its lock: no stale lock can block an open.
 *
 * META holds the format version as one text line, "calypso-format N". It is
 * written once, atomically (tmp, fdatasync, rename, directory fsync), when a
 * database is created.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

CY_INTERNAL void cy_dir_data_path(const calypso *db, uint32_t fid, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%010u.data", db->path, fid);
}

CY_INTERNAL void cy_dir_hint_path(const calypso *db, uint32_t fid, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%010u.hint", db->path, fid);
}

static void cy_dir_read_holder(int fd, char *pid, size_t cap)
{
    int64_t n = cy_os_pread(fd, pid, cap - 1, 0);
    if (n < 0) n = 0;
    pid[n] = 0;
    while (n > 0 && (pid[n - 1] == '\n' || pid[n - 1] == ' ')) pid[--n] = 0;
    if (!n) snprintf(pid, cap, "unknown (a read-only opener)");
}

CY_INTERNAL int cy_dir_sync_parent(const char *path)
{
    char parent[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) return cy_os_sync_dir(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    if (n >= sizeof parent) return -ENAMETOOLONG;
    memcpy(parent, path, n);
    parent[n] = 0;
    return cy_os_sync_dir(parent);
}

/* Makes sure the directory `upto` (a prefix of the path being made, NUL
 * cut) exists: creates it if missing, and then fsyncs its parent so that
 * the new entry survives a power cut. */
static int cy_dir_make_one(calypso *db, const char *upto, const char *whole, uint32_t mode)
{
    uint64_t size;
    int is_dir = 0, rc = cy_os_stat(upto, &size, &is_dir);
    if (rc == 0 && is_dir) return CALYPSO_OK;
    if (rc == 0 || rc == -ENOTDIR)
        return cy_err(db, CALYPSO_EINVAL, "cannot create directory %s: %s is not a directory",
                      whole, upto);
    if (rc != -ENOENT) return cy_err_errno(db, rc, "stat", upto);
    rc = cy_os_mkdir(upto, mode);
    if (rc == -EEXIST) {        /* made meanwhile by someone else: fine if a directory */
        rc = cy_os_stat(upto, &size, &is_dir);
        if (rc == 0 && !is_dir)
            return cy_err(db, CALYPSO_EINVAL, "cannot create directory %s: %s is not a "
                          "directory", whole, upto);
        return rc < 0 ? cy_err_errno(db, rc, "stat", upto) : CALYPSO_OK;
    }
    if (rc < 0) return cy_err_errno(db, rc, "create directory", upto);
    if ((rc = cy_dir_sync_parent(upto)) < 0)
        return cy_err_errno(db, rc, "fsync the parent directory of", upto);
    return CALYPSO_OK;
}

CY_INTERNAL int cy_dir_make_all(calypso *db, const char *path, uint32_t mode)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof buf) return cy_err(db, CALYPSO_EINVAL, "path longer than 4095 bytes");
    memcpy(buf, path, n + 1);
    while (n > 1 && buf[n - 1] == '/') buf[--n] = 0;
    uint64_t size;
    int is_dir = 0;
    if (cy_os_stat(buf, &size, &is_dir) == 0 && is_dir) return CALYPSO_OK;
    /* From the root down: each component after a run of slashes. */
    for (size_t i = 1; i <= n; i++) {
        if (i < n && !(buf[i] == '/' && buf[i - 1] != '/')) continue;
        char c = buf[i];
        buf[i] = 0;
        int rc = cy_dir_make_one(db, buf, path, mode);
        buf[i] = c;
        if (rc) return rc;
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_dir_lock(calypso *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", db->path);
    int ro = db->opt.read_only;
    int fd = cy_os_open(path, ro ? O_RDONLY : (O_RDWR | O_CREAT), db->opt.file_mode);
    if (fd < 0 && ro && fd == -ENOENT) {
        /* A read-only handle never creates files; a database without LOCK
         * (copied, or made by hand) is still readable. */
        db->lock_fd = -1;
        return CALYPSO_OK;
    }
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    int rc = cy_os_flock(fd, (ro ? LOCK_SH : LOCK_EX) | LOCK_NB);
    if (rc == -EWOULDBLOCK) {
        char pid[64];
        cy_dir_read_holder(fd, pid, sizeof pid);
        cy_os_close(fd);
        return cy_err(db, CALYPSO_ELOCKED, "%s is held by process %s", path, pid);
    }
    if (rc < 0) {
        cy_os_close(fd);
        return cy_err_errno(db, rc, "flock", path);
    }
    if (!ro) {
        char pid[32];
        int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
        if ((rc = cy_os_ftruncate(fd, 0)) < 0 || (rc = cy_os_pwrite(fd, pid, (size_t)n, 0)) < 0) {
            cy_os_close(fd);
            return cy_err_errno(db, rc, "write", path);
        }
    }
    db->lock_fd = fd;
    return CALYPSO_OK;
}

CY_INTERNAL void cy_dir_unlock(calypso *db)
{
    if (db->lock_fd < 0) return;
    if (!db->opt.read_only) cy_os_ftruncate(db->lock_fd, 0);
    cy_os_close(db->lock_fd);   /* releases the flock */
    db->lock_fd = -1;
}

CY_INTERNAL int cy_dir_write_file(calypso *db, const char *dir, const char *name,
                                  const void *data, size_t len)
{
    char tmp[4096], path[4096];
    snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = cy_os_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, db->opt.file_mode);
    if (fd < 0) return cy_err_errno(db, fd, "create", tmp);
    int rc = cy_os_pwrite(fd, data, len, 0);
    if (!rc) rc = cy_os_fdatasync(fd);
    int rc2 = cy_os_close(fd);
    if (!rc) rc = rc2;
    if (!rc) rc = cy_os_rename(tmp, path);
    if (!rc) rc = cy_os_sync_dir(dir);
    if (rc) {
        cy_os_unlink(tmp);
        return cy_err_errno(db, rc, "write", path);
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_dir_meta(calypso *db, int fresh)
{
    char path[4096], buf[64];
    snprintf(path, sizeof path, "%s/META", db->path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd == -ENOENT) {
        if (!fresh)
            return cy_err(db, CALYPSO_ECORRUPT, "%s is missing but datafiles exist", path);
        if (db->opt.read_only) return CALYPSO_OK;
        int n = snprintf(buf, sizeof buf, "calypso-format %d\n", CY_FORMAT_VERSION);
        return cy_dir_write_file(db, db->path, "META", buf, (size_t)n);
    }
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    int64_t n = cy_os_pread(fd, buf, sizeof buf - 1, 0);
    cy_os_close(fd);
    if (n < 0) return cy_err_errno(db, (int)n, "read", path);
    buf[n] = 0;
    char *end = NULL;
    if (strncmp(buf, "calypso-format ", 15) != 0)
        return cy_err(db, CALYPSO_ECORRUPT, "%s does not name a calypso format", path);
    long v = strtol(buf + 15, &end, 10);
    if (end == buf + 15 || (*end != '\n' && *end != 0))
        return cy_err(db, CALYPSO_ECORRUPT, "%s: unreadable format version", path);
    if (v != CY_FORMAT_VERSION)
        return cy_err(db, CALYPSO_EVERSION, "%s: format version %ld, this build reads %d",
                      path, v, CY_FORMAT_VERSION);
    return CALYPSO_OK;
}

typedef struct cy_dir_listing {
    calypso  *db;
    uint32_t *fids;
    uint8_t  *hint;
    uint32_t  n, cap;
    uint32_t *hints;
    uint32_t  nh, caph;
    int       err;
} cy_dir_listing;

static int cy_dir_push(uint32_t **arr, uint32_t *n, uint32_t *cap, uint32_t v)
{
    if (*n == *cap) {
        uint32_t nc = *cap ? *cap * 2 : 16;
        uint32_t *p = cy_realloc(*arr, nc * sizeof *p);
        if (!p) return CALYPSO_ENOMEM;
        *arr = p;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return 0;
}

/* Parses "NNNNNNNNNN.ext"; returns the fid or 0. */
static uint32_t cy_dir_parse_name(const char *name, const char *ext)
{
    size_t len = strlen(name), elen = strlen(ext);
    if (len != 10 + elen || strcmp(name + 10, ext) != 0) return 0;
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (name[i] < '0' || name[i] > '9') return 0;
        v = v * 10 + (uint64_t)(name[i] - '0');
    }
    return v > CY_LOC_FIDMASK ? 0 : (uint32_t)v;
}

static int cy_dir_entry(const char *name, void *ctx)
{
    cy_dir_listing *l = ctx;
    uint32_t fid;
    size_t len = strlen(name);
    if ((fid = cy_dir_parse_name(name, ".data")))
        return cy_dir_push(&l->fids, &l->n, &l->cap, fid);
    if ((fid = cy_dir_parse_name(name, ".hint")))
        return cy_dir_push(&l->hints, &l->nh, &l->caph, fid);
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0 && !l->db->opt.read_only) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", l->db->path, name);
        cy_os_unlink(path);   /* an unfinished atomic write: never relied on */
    }
    return 0;
}

static int cy_dir_cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

CY_INTERNAL int cy_dir_scan(calypso *db, uint32_t **fids, uint32_t *n, uint8_t **has_hint)
{
    cy_dir_listing l = { .db = db };
    int rc = cy_os_list_dir(db->path, cy_dir_entry, &l);
    if (rc == CALYPSO_ENOMEM) {
        rc = cy_err(db, CALYPSO_ENOMEM, "listing %s", db->path);
    } else if (rc < 0) {
        rc = cy_err_errno(db, rc, "list", db->path);
    } else if (!(l.hint = cy_calloc(l.n ? l.n : 1, 1))) {
        rc = cy_err(db, CALYPSO_ENOMEM, "listing %s", db->path);
    }
    if (rc) {
        cy_free(l.fids);
        cy_free(l.hints);
        return rc;
    }
    if (l.n) qsort(l.fids, l.n, sizeof *l.fids, cy_dir_cmp_u32);
    if (l.nh) qsort(l.hints, l.nh, sizeof *l.hints, cy_dir_cmp_u32);
    for (uint32_t i = 0, j = 0; i < l.n; i++) {
        while (j < l.nh && l.hints[j] < l.fids[i]) j++;
        l.hint[i] = j < l.nh && l.hints[j] == l.fids[i];
    }
    cy_free(l.hints);
    *fids = l.fids;
    *n = l.n;
    *has_hint = l.hint;
    return CALYPSO_OK;
}
