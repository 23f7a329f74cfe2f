/*
 * dir.c: the database directory: file names, the LOCK file, the META file,
 * the listing of datafiles and hint files at open, and destroying a
 * database.
 *
 * LOCK carries four locks (doc/format.md, "Lock file"):
 *   - a flock, exclusive, held by the one writer: a second writer (in this
 *     process or another) gets CALYPSO_ELOCKED. The writer writes its pid
 *     into the file so that a refused opener can say who holds it.
 *   - byte 0, locked exclusive (an open file description lock) by the
 *     writer for as long as it is open: a reader asks (F_OFD_GETLK, which
 *     takes nothing) whether a writer is live.
 *   - byte 1, locked shared by every handle, writer or reader: destroy
 *     takes it exclusive, so it sees every handle open.
 *   - byte 2, the file set: the writer holds it exclusive while it renames
 *     or removes datafiles (a merge step from its COMMIT to the removal of
 *     its inputs, and finishing a decided merge at open), a reader shared
 *     while it lists and replays the directory at open. So a reader never
 *     lists a half-moved merge, nor finds a file gone that it just listed;
 *     once replayed it holds a descriptor on every datafile, and later
 *     removals cannot touch what it reads.
 * Readers take no flock: they neither block a writer nor wait for one.
 * These locks belong to the open file, so a process that dies releases
 * them all: no stale lock can block an open.
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
#include <time.h>
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
    n = (int64_t)strcspn(pid, "\n ");
    pid[n] = 0;
    if (!n) snprintf(pid, cap, "unknown (an earlier release's reader, or a destroy)");
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

enum { CY_LOCK_WRITER = 0, CY_LOCK_OPEN = 1, CY_LOCK_FILES = 2 };
#define CY_DIR_WAIT_MS   30000u   /* longest wait for the file set lock     */

/* Takes one byte lock of LOCK (shared or exclusive) without waiting. */
static int cy_dir_range(int fd, int byte, int excl)
{
    return cy_os_flock(fd, CY_OS_RANGE | (excl ? CY_OS_RANGE_WR : CY_OS_RANGE_RD) |
                               CY_OS_RANGE_AT(byte));
}

/* The writer's locks: the flock, then its byte and the open byte. */
static int cy_dir_lock_writer(calypso *db, int fd, const char *path)
{
    int rc = cy_os_flock(fd, LOCK_EX | LOCK_NB);
    if (!rc) rc = cy_dir_range(fd, CY_LOCK_WRITER, 1);
    if (!rc) rc = cy_dir_range(fd, CY_LOCK_OPEN, 0);
    if (rc == -EWOULDBLOCK) {
        char pid[64];
        cy_dir_read_holder(fd, pid, sizeof pid);
        return cy_err(db, CALYPSO_ELOCKED, "%s is held by process %s", path, pid);
    }
    if (rc < 0) return cy_err_errno(db, rc, "lock", path);
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if ((rc = cy_os_ftruncate(fd, 0)) < 0 || (rc = cy_os_pwrite(fd, pid, (size_t)n, 0)) < 0)
        return cy_err_errno(db, rc, "write", path);
    return CALYPSO_OK;
}

CY_INTERNAL int cy_dir_lock(calypso *db)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/LOCK", db->path);
    int ro = db->opt.read_only;
    db->lock_fd = -1;
    int fd = cy_os_open(path, ro ? O_RDONLY : (O_RDWR | O_CREAT), db->opt.file_mode);
    if (fd < 0 && ro && fd == -ENOENT) {
        /* A read-only handle never creates files; a database without LOCK
         * (copied, or made by hand, never opened for writing) is still
         * readable, though destroy cannot see this handle. */
        return CALYPSO_OK;
    }
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    int rc;
    if (!ro) {
        rc = cy_dir_lock_writer(db, fd, path);
    } else {
        /* A reader only shows that it is open; writers go on beside it. */
        rc = cy_dir_range(fd, CY_LOCK_OPEN, 0);
        if (rc == -EWOULDBLOCK)
            rc = cy_err(db, CALYPSO_ELOCKED, "%s: the database is being destroyed", path);
        else if (rc < 0)
            rc = cy_err_errno(db, rc, "lock", path);
    }
    if (rc) {
        cy_os_close(fd);
        return rc;
    }
    db->lock_fd = fd;
    return CALYPSO_OK;
}

CY_INTERNAL void cy_dir_unlock(calypso *db)
{
    if (db->lock_fd < 0) return;
    if (!db->opt.read_only) cy_os_ftruncate(db->lock_fd, 0);
    cy_os_close(db->lock_fd);   /* releases the flock and the byte locks */
    db->lock_fd = -1;
}

CY_INTERNAL int cy_dir_writer_live(calypso *db)
{
    if (db->lock_fd < 0) return 0;
    return cy_os_flock(db->lock_fd, CY_OS_RANGE | CY_OS_RANGE_RD | CY_OS_RANGE_TEST |
                                        CY_OS_RANGE_AT(CY_LOCK_WRITER)) == -EWOULDBLOCK;
}

CY_INTERNAL int cy_dir_files_lock(calypso *db)
{
    if (db->lock_fd < 0) return CALYPSO_OK;
    int excl = !db->opt.read_only;
    /* Whoever holds it moves a few files (a writer) or replays (a reader):
     * short waits. Polled, so that a stuck holder makes an error, not a
     * hang. */
    for (uint32_t waited = 0;; waited++) {
        int rc = cy_dir_range(db->lock_fd, CY_LOCK_FILES, excl);
        if (!rc) return CALYPSO_OK;
        if (rc != -EWOULDBLOCK) return cy_err_errno(db, rc, "lock the file set of", db->path);
        if (waited >= CY_DIR_WAIT_MS)
            return cy_err(db, CALYPSO_ELOCKED, "%s: %s held the file set for %u ms", db->path,
                          excl ? "a reader opening" : "the writer's merge", CY_DIR_WAIT_MS);
        struct timespec nap = { 0, 1000000 };
        nanosleep(&nap, NULL);
    }
}

CY_INTERNAL void cy_dir_files_unlock(calypso *db)
{
    if (db->lock_fd >= 0)
        cy_os_flock(db->lock_fd, CY_OS_RANGE | CY_OS_RANGE_AT(CY_LOCK_FILES));
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

static int cy_dir_scan_once(calypso *db, uint32_t **fids, uint32_t *n, uint8_t **has_hint);

/* A reader lists until two listings in a row name the same datafiles. A
 * writer may create a datafile (rotation) during a listing, and a
 * directory read in several pieces can then miss one created early in it
 * and show one created later: a gap in the log. Two equal listings cannot
 * both have it: whatever the first one showed existed before the second
 * began, and so did every file created before it, which the second one
 * shows. (Renames and removals happen under the file set lock, which the
 * reader holds.) */
CY_INTERNAL int cy_dir_scan(calypso *db, uint32_t **fids, uint32_t *n, uint8_t **has_hint)
{
    int rc = cy_dir_scan_once(db, fids, n, has_hint);
    for (int tries = 0; !rc && db->opt.read_only && tries < 1000; tries++) {
        uint32_t *f2 = NULL, n2 = 0;
        uint8_t *h2 = NULL;
        if ((rc = cy_dir_scan_once(db, &f2, &n2, &h2))) break;
        int same = n2 == *n && (n2 == 0 || !memcmp(f2, *fids, n2 * sizeof *f2));
        cy_free(*fids);
        cy_free(*has_hint);
        *fids = f2;
        *n = n2;
        *has_hint = h2;
        if (same) return CALYPSO_OK;
    }
    if (rc) {
        cy_free(*fids);
        cy_free(*has_hint);
        *fids = NULL;
        *has_hint = NULL;
        return rc;
    }
    if (db->opt.read_only)
        return cy_err(db, CALYPSO_EIO, "%s: the datafiles kept changing while listed",
                      db->path);
    return CALYPSO_OK;
}

static int cy_dir_scan_once(calypso *db, uint32_t **fids, uint32_t *n, uint8_t **has_hint)
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

// >> destroy ------------------------------------------------------------------

/* 1 when name is one calypso writes in a database directory (doc/format.md,
 * the file table): datafiles, hints, META, WATERMARK, IDS, RESERVE, LOCK
 * and the temporary files of its atomic writes. `in_merge`: the names of
 * merge/ instead (outputs, their hints, COMMIT). */
static int cy_dir_is_ours(const char *name, int in_merge)
{
    static const char *const top[] = { "META", "WATERMARK", "IDS", "RESERVE", "LOCK" };
    size_t len = strlen(name);
    char base[64];
    if (len > 4 && strcmp(name + len - 4, ".tmp") == 0 && len - 4 < sizeof base) {
        memcpy(base, name, len - 4);   /* an unfinished atomic write of one of ours */
        base[len - 4] = 0;
        if (!strcmp(base, "LOCK") || !strcmp(base, "RESERVE") || !strcmp(base, "COMMIT"))
            return in_merge && !strcmp(base, "COMMIT");
        if (strstr(base, ".data")) return 0;
        name = base;
    }
    if (cy_dir_parse_name(name, ".data") || cy_dir_parse_name(name, ".hint")) return 1;
    if (in_merge) return !strcmp(name, "COMMIT");
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (!strcmp(name, top[i])) return 1;
    return 0;
}

typedef struct cy_dir_rm {
    const char *dir;
    int         in_merge;
    int         last;      /* pass 2: META, then LOCK (kept to the end) */
    int         err;       /* first failure, -errno                      */
    char        failed[4400];
} cy_dir_rm;

static int cy_dir_rm_entry(const char *name, void *ctx)
{
    cy_dir_rm *r = ctx;
    if (!cy_dir_is_ours(name, r->in_merge)) return 0;
    /* META goes last but LOCK, so that a destroy cut short can be run
     * again: the directory is still a database until then. */
    if (!r->in_merge && (!strcmp(name, "META") || !strcmp(name, "LOCK"))) return 0;
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", r->dir, name);
    int rc = cy_os_unlink(path);
    if (rc < 0 && rc != -ENOENT && !r->err) {
        r->err = rc;
        snprintf(r->failed, sizeof r->failed, "%s", path);
    }
    return 0;
}

/* Checks META: CALYPSO_OK for a database of this format. */
static int cy_dir_destroy_check(const char *path)
{
    char meta[4200], buf[64];
    snprintf(meta, sizeof meta, "%s/META", path);
    int fd = cy_os_open(meta, O_RDONLY, 0);
    if (fd == -ENOENT)
        return cy_err(NULL, CALYPSO_EINVAL, "%s is not a calypso database (no META)", path);
    if (fd < 0) return cy_err_errno(NULL, fd, "open", meta);
    int64_t n = cy_os_pread(fd, buf, sizeof buf - 1, 0);
    cy_os_close(fd);
    if (n < 0) return cy_err_errno(NULL, (int)n, "read", meta);
    buf[n] = 0;
    char *end = NULL;
    long v = strncmp(buf, "calypso-format ", 15) ? -1 : strtol(buf + 15, &end, 10);
    if (v < 0 || end == buf + 15 || (*end != '\n' && *end != 0))
        return cy_err(NULL, CALYPSO_EINVAL, "%s is not a calypso database (%s does not name "
                      "a calypso format)", path, meta);
    if (v != CY_FORMAT_VERSION)
        return cy_err(NULL, CALYPSO_EVERSION, "%s: format version %ld, this build knows the "
                      "files of %d only", path, v, CY_FORMAT_VERSION);
    return CALYPSO_OK;
}

/* Takes LOCK as destroy needs it: the flock (no writer) and byte 1
 * exclusive (no handle at all). Returns the descriptor or an error. */
static int cy_dir_destroy_lock(const char *path, int *out)
{
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/LOCK", path);
    int fd = cy_os_open(lock, O_RDWR | O_CREAT, 0600);
    if (fd < 0) return cy_err_errno(NULL, fd, "open", lock);
    int rc = cy_os_flock(fd, LOCK_EX | LOCK_NB);
    if (rc == -EWOULDBLOCK) {
        char pid[64];
        cy_dir_read_holder(fd, pid, sizeof pid);
        cy_os_close(fd);
        return cy_err(NULL, CALYPSO_ELOCKED, "%s is open for writing by process %s", path, pid);
    }
    if (!rc) rc = cy_dir_range(fd, CY_LOCK_OPEN, 1);
    if (rc == -EWOULDBLOCK) {
        cy_os_close(fd);
        return cy_err(NULL, CALYPSO_ELOCKED, "%s is open read-only by a handle", path);
    }
    if (rc < 0) {
        cy_os_close(fd);
        return cy_err_errno(NULL, rc, "lock", lock);
    }
    *out = fd;
    return CALYPSO_OK;
}

int calypso_destroy(const char *path)
{
    if (!path || !*path)
        return cy_err(NULL, CALYPSO_EINVAL, "calypso_destroy needs a path");
    size_t plen = strlen(path);
    while (plen > 1 && path[plen - 1] == '/') plen--;
    if (plen > 4000) return cy_err(NULL, CALYPSO_EINVAL, "path longer than 4000 bytes");
    char dir[4001];
    memcpy(dir, path, plen);
    dir[plen] = 0;
    int is_dir = 0;
    int rc = cy_os_stat(dir, NULL, &is_dir);
    if (rc == -ENOENT) return cy_err(NULL, CALYPSO_EINVAL, "no database at %s", dir);
    if (rc < 0) return cy_err_errno(NULL, rc, "stat", dir);
    if (!is_dir) return cy_err(NULL, CALYPSO_EINVAL, "%s is not a directory", dir);
    if ((rc = cy_dir_destroy_check(dir))) return rc;
    int lock_fd = -1;
    if ((rc = cy_dir_destroy_lock(dir, &lock_fd))) return rc;
    /* Nobody has it open, and an opener now is refused (ELOCKED) while the
     * files go: merge/ first, then datafiles, hints and the small files,
     * META, and LOCK last (removed while still held). */
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/merge", dir);
    cy_dir_rm r = { .dir = mdir, .in_merge = 1 };
    int lrc = cy_os_list_dir(mdir, cy_dir_rm_entry, &r);
    if (lrc == 0) {
        int drc = cy_os_rmdir(mdir);
        if (drc < 0 && drc != -ENOTEMPTY && drc != -EEXIST && !r.err) {
            r.err = drc;
            snprintf(r.failed, sizeof r.failed, "%s", mdir);
        }
    }
    cy_dir_rm top = { .dir = dir };
    if (!r.err) {
        lrc = cy_os_list_dir(dir, cy_dir_rm_entry, &top);
        if (lrc < 0) {
            top.err = lrc;
            snprintf(top.failed, sizeof top.failed, "%s", dir);
        }
    } else {
        top = r;
    }
    char meta[4200], lock[4200];
    snprintf(meta, sizeof meta, "%s/META", dir);
    snprintf(lock, sizeof lock, "%s/LOCK", dir);
    if (!top.err && (rc = cy_os_unlink(meta)) < 0 && rc != -ENOENT) {
        top.err = rc;
        snprintf(top.failed, sizeof top.failed, "%s", meta);
    }
    if (!top.err) cy_os_unlink(lock);
    cy_os_close(lock_fd);
    if (top.err) return cy_err_errno(NULL, top.err, "remove", top.failed);
    /* The directory itself only when nothing else is left in it. */
    rc = cy_os_rmdir(dir);
    if (rc == 0) cy_dir_sync_parent(dir);
    else cy_os_sync_dir(dir);
    cy_err_forget(NULL);
    return CALYPSO_OK;
}
