/*
 * os.c: the syscall table. Every file-system call calypso makes goes through
 * here, never straight to libc (the design of SQLite's os_unix.c aSyscall[]).
 *
 * Each call does what every caller would otherwise repeat: retry on EINTR,
 * loop over short reads and writes, and return -errno instead of setting
 * errno. The engine calls cy_os_open and its kin; each is one call through
 * cy_os_sys, a table of function pointers that holds the libc
 * implementations below.
 *
 * The table is the seam for tests, and only tests: a test binary links
 * src/os_fault.c (count calls, fail the nth with a chosen errno, short
 * writes) and src/os_powerloss.c (drop what was not synced), which lay
 * themselves over the table before main, through a door at the end of this
 * file that only the module build has. Neither layer is in calypso.c,
 * libcalypso.a or the modules' library: in a release build nothing here
 * counts or checks for a fault, and a call costs one indirect call (in the
 * amalgamation the table is static and never written, so the compiler may
 * call the libc implementation directly).
 *
 * Layout: the libc implementations (cy_os_libc_*), then the table and the
 * functions the engine calls (cy_os_*).
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// >> the calls, over libc ---------------------------------------------------------

static int cy_os_libc_open(const char *path, int flags, uint32_t mode)
{
    int fd;
    do fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

static int cy_os_libc_close(int fd)
{
    /* Not retried on EINTR: after close(2) fails, POSIX leaves the
     * descriptor's state unspecified and Linux has freed it, so retrying
     * could close a descriptor another thread just opened. */
    int rc = close(fd);
    return rc < 0 && errno != EINTR ? -errno : 0;
}

static int64_t cy_os_libc_pread(int fd, void *buf, size_t n, uint64_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, (char *)buf + got, n - got, (off_t)(off + got));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    return (int64_t)got;
}

static int64_t cy_os_libc_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    struct iovec v[4];
    if (cnt < 1 || cnt > 4) return -EINVAL;
    memcpy(v, iov, (size_t)cnt * sizeof *v);
    struct iovec *p = v;
    uint64_t got = 0;
    while (cnt > 0) {
        ssize_t r = preadv(fd, p, cnt, (off_t)(off + got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) break;
        got += (uint64_t)r;
        /* Step over what a short read filled, then read the rest. */
        size_t left = (size_t)r;
        while (cnt > 0 && left >= p->iov_len) { left -= p->iov_len; p++; cnt--; }
        if (cnt > 0) { p->iov_base = (char *)p->iov_base + left; p->iov_len -= left; }
    }
    return (int64_t)got;
}

static int cy_os_libc_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    size_t put = 0;
    while (put < n) {
        ssize_t r = pwrite(fd, (const char *)buf + put, n - put, (off_t)(off + put));
        if (r < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (r == 0) return -EIO;
        put += (size_t)r;
    }
    return 0;
}

static int cy_os_libc_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    struct iovec v[4];
    if (cnt < 1 || cnt > 4) return -EINVAL;
    memcpy(v, iov, (size_t)cnt * sizeof *v);
    struct iovec *p = v;
    uint64_t put = 0;
    while (cnt > 0) {
        ssize_t r = pwritev(fd, p, cnt, (off_t)(off + put));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) return -EIO;
        put += (uint64_t)r;
        size_t left = (size_t)r;
        while (cnt > 0 && left >= p->iov_len) { left -= p->iov_len; p++; cnt--; }
        if (cnt > 0) { p->iov_base = (char *)p->iov_base + left; p->iov_len -= left; }
    }
    return 0;
}

static int cy_os_libc_fsync(int fd)
{
    int rc;
    do rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int cy_os_libc_fdatasync(int fd)
{
    int rc;
    do rc = fdatasync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int cy_os_libc_writeback(int fd, uint64_t off, uint64_t len)
{
#if defined(__linux__) && defined(SYNC_FILE_RANGE_WRITE)
    int rc;
    do rc = sync_file_range(fd, (off_t)off, (off_t)len, SYNC_FILE_RANGE_WRITE);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
#else
    (void)fd; (void)off; (void)len;
    return 0;
#endif
}

static int cy_os_libc_ftruncate(int fd, uint64_t size)
{
    int rc;
    do rc = ftruncate(fd, (off_t)size);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int cy_os_libc_rename(const char *from, const char *to)
{
    return rename(from, to) < 0 ? -errno : 0;
}

static int cy_os_libc_unlink(const char *path)
{
    return unlink(path) < 0 ? -errno : 0;
}

static int cy_os_libc_mkdir(const char *path, uint32_t mode)
{
    return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

static int cy_os_libc_rmdir(const char *path)
{
    return rmdir(path) < 0 ? -errno : 0;
}

static int cy_os_libc_fsize(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

static int cy_os_libc_stat(const char *path, uint64_t *size, int *is_dir)
{
    struct stat st;
    if (stat(path, &st) < 0) return -errno;
    if (size) *size = (uint64_t)st.st_size;
    if (is_dir) *is_dir = S_ISDIR(st.st_mode) != 0;
    return 0;
}

/* One byte of fd locked, unlocked or tested with an open file description
 * lock (F_OFD_SETLK: owned by the descriptor's open file, as a flock is, so
 * two handles in one process exclude each other as two processes do). */
static int cy_os_libc_range(int fd, int op)
{
    struct flock l;
    memset(&l, 0, sizeof l);
    l.l_whence = SEEK_SET;
    l.l_start = CY_OS_RANGE_BYTE(op);
    l.l_len = 1;
    l.l_type = (op & CY_OS_RANGE_WR) ? F_WRLCK : (op & CY_OS_RANGE_RD) ? F_RDLCK : F_UNLCK;
    int rc;
    if (op & CY_OS_RANGE_TEST) {
        do rc = fcntl(fd, F_OFD_GETLK, &l);
        while (rc < 0 && errno == EINTR);
        if (rc < 0) return -errno;
        return l.l_type == F_UNLCK ? 0 : -EWOULDBLOCK;
    }
    do rc = fcntl(fd, F_OFD_SETLK, &l);
    while (rc < 0 && errno == EINTR);
    if (rc < 0 && (errno == EAGAIN || errno == EACCES)) return -EWOULDBLOCK;
    return rc < 0 ? -errno : 0;
}

static int cy_os_libc_flock(int fd, int op)
{
    if (op & CY_OS_RANGE) return cy_os_libc_range(fd, op);
    int rc;
    do rc = flock(fd, op);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

static int cy_os_libc_mmap(int fd, uint64_t size, void **out)
{
    *out = NULL;
    if (size == 0) return -EINVAL;
    /* Populated at once: a sealed file is read at random (keys are not in
     * file order), and a page-table fault per first touch of each page
     * costs more than filling the table in one go. */
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

static int cy_os_libc_mmap_rw(int fd, uint64_t size, void **out)
{
    *out = NULL;
    if (size == 0) return -EINVAL;
    void *p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
}

static int cy_os_libc_fallocate(int fd, uint64_t off, uint64_t len)
{
    int rc;
    do rc = posix_fallocate(fd, (off_t)off, (off_t)len);
    while (rc == EINTR);
    if (rc == EOPNOTSUPP || rc == EINVAL) {
        /* A file system without fallocate: extend the size; blocks are
         * then allocated at write-back. */
        do rc = ftruncate(fd, (off_t)(off + len)) < 0 ? errno : 0;
        while (rc == EINTR);
    }
    return -rc;
}

static int cy_os_libc_map_write(int fd, uint8_t *map, uint64_t off, const void *src, size_t n)
{
    (void)fd;   /* names the file for the test layers */
    memcpy(map + off, src, n);
    return 0;
}

static int cy_os_libc_list_dir(const char *path,
                               int (*fn)(const char *name, void *ctx), void *ctx)
{
    DIR *d = opendir(path);
    if (!d) return -errno;
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno) rc = -errno;
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        rc = fn(e->d_name, ctx);
        if (rc) break;
    }
    closedir(d);
    return rc;
}

// >> the table ------------------------------------------------------------------

static cy_os_table cy_os_sys = {
    .open       = cy_os_libc_open,
    .close      = cy_os_libc_close,
    .pread      = cy_os_libc_pread,
    .preadv     = cy_os_libc_preadv,
    .pwrite     = cy_os_libc_pwrite,
    .pwritev    = cy_os_libc_pwritev,
    .fsync      = cy_os_libc_fsync,
    .fdatasync  = cy_os_libc_fdatasync,
    .writeback  = cy_os_libc_writeback,
    .ftruncate  = cy_os_libc_ftruncate,
    .fallocate  = cy_os_libc_fallocate,
    .map_write  = cy_os_libc_map_write,
    .rename     = cy_os_libc_rename,
    .unlink     = cy_os_libc_unlink,
    .mkdir      = cy_os_libc_mkdir,
    .rmdir      = cy_os_libc_rmdir,
    .fsize      = cy_os_libc_fsize,
    .stat       = cy_os_libc_stat,
    .flock      = cy_os_libc_flock,
    .mmap       = cy_os_libc_mmap,
    .mmap_rw    = cy_os_libc_mmap_rw,
    .list_dir   = cy_os_libc_list_dir,
};

CY_INTERNAL int cy_os_open(const char *path, int flags, uint32_t mode)
{
    return cy_os_sys.open(path, flags, mode);
}

CY_INTERNAL int cy_os_close(int fd)
{
    return cy_os_sys.close(fd);
}

CY_INTERNAL int64_t cy_os_pread(int fd, void *buf, size_t n, uint64_t off)
{
    return cy_os_sys.pread(fd, buf, n, off);
}

CY_INTERNAL int64_t cy_os_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    return cy_os_sys.preadv(fd, iov, cnt, off);
}

CY_INTERNAL int cy_os_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    return cy_os_sys.pwrite(fd, buf, n, off);
}

CY_INTERNAL int cy_os_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    return cy_os_sys.pwritev(fd, iov, cnt, off);
}

CY_INTERNAL int cy_os_fsync(int fd)
{
    return cy_os_sys.fsync(fd);
}

CY_INTERNAL int cy_os_fdatasync(int fd)
{
    return cy_os_sys.fdatasync(fd);
}

CY_INTERNAL int cy_os_writeback(int fd, uint64_t off, uint64_t len)
{
    return cy_os_sys.writeback(fd, off, len);
}

CY_INTERNAL int cy_os_ftruncate(int fd, uint64_t size)
{
    return cy_os_sys.ftruncate(fd, size);
}

CY_INTERNAL int cy_os_fallocate(int fd, uint64_t off, uint64_t len)
{
    return cy_os_sys.fallocate(fd, off, len);
}

CY_INTERNAL int cy_os_map_write(int fd, uint8_t *map, uint64_t off, const void *src,
                                size_t n)
{
    return cy_os_sys.map_write(fd, map, off, src, n);
}

CY_INTERNAL int cy_os_rename(const char *from, const char *to)
{
    return cy_os_sys.rename(from, to);
}

CY_INTERNAL int cy_os_unlink(const char *path)
{
    return cy_os_sys.unlink(path);
}

CY_INTERNAL int cy_os_mkdir(const char *path, uint32_t mode)
{
    return cy_os_sys.mkdir(path, mode);
}

CY_INTERNAL int cy_os_rmdir(const char *path)
{
    return cy_os_sys.rmdir(path);
}

CY_INTERNAL int cy_os_fsize(int fd, uint64_t *size)
{
    return cy_os_sys.fsize(fd, size);
}

CY_INTERNAL int cy_os_stat(const char *path, uint64_t *size, int *is_dir)
{
    return cy_os_sys.stat(path, size, is_dir);
}

CY_INTERNAL int cy_os_flock(int fd, int op)
{
    return cy_os_sys.flock(fd, op);
}

CY_INTERNAL int cy_os_mmap(int fd, uint64_t size, void **out)
{
    return cy_os_sys.mmap(fd, size, out);
}

CY_INTERNAL int cy_os_mmap_rw(int fd, uint64_t size, void **out)
{
    return cy_os_sys.mmap_rw(fd, size, out);
}

CY_INTERNAL int cy_os_list_dir(const char *path,
                               int (*fn)(const char *name, void *ctx), void *ctx)
{
    return cy_os_sys.list_dir(path, fn, ctx);
}

CY_INTERNAL void cy_os_munmap(void *p, uint64_t size)
{
    if (p) munmap(p, (size_t)size);
}

CY_INTERNAL int cy_os_sync_dir(const char *path)
{
    int fd = cy_os_open(path, O_RDONLY | O_DIRECTORY, 0);
    if (fd < 0) return fd;
    int rc = cy_os_fsync(fd);
    int rc2 = cy_os_close(fd);
    return rc ? rc : rc2;
}

#ifndef CY_AMALGAMATION
/* A test layer's door: *below gets the table as it stands and layer takes
 * its place. Called from the layers' constructors, before any thread runs.
 * tools/amalgamate drops this block: calypso.c has no test layer. */
CY_INTERNAL void cy_os_install(const cy_os_table *layer, cy_os_table *below)
{
    *below = cy_os_sys;
    cy_os_sys = *layer;
    if (!cy_os_sys.writeback) cy_os_sys.writeback = below->writeback;   /* passed through */
}
#endif
