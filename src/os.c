/*
 * os.c: the syscall table. Every file-system call calypso makes goes through
 * here, never straight to libc, for two reasons:
 *
 *  - fault injection: a test arms cy_os_fail_at(kind, n, errno, sticky,
 *    short_write) and the nth call of that kind (or of any kind) fails with
 *    that errno, once or from then on; a failing pwrite can first write half
 *    its bytes, as a full disk does. This is how the countdown tests prove
 *    that every I/O error turns into a clean error code and loses nothing;
 *  - counting: tests assert on how many calls of a kind were made (group
 *    commit shares one fdatasync between writers).
 *
 * The wrappers also do what every caller would otherwise repeat: retry on
 * EINTR, loop over short reads and writes, and return -errno instead of
 * setting errno. The counters are atomics; the disarmed fault check is one
 * relaxed load.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// >> fault injection and counting ---------------------------------------------

static uint64_t cy_os_calls[CY_OS__COUNT + 1];

static struct {
    int      call;        /* kind armed, or CY_OS_ANY                      */
    uint64_t nth;         /* 0 = disarmed                                  */
    uint64_t seen;        /* calls of that kind since arming               */
    int      err;
    int      sticky;
    int      short_write;
} cy_os_fault;

static int cy_os_fault_armed;     /* read without the lock on the fast path */

/* Counts a call of `kind` and returns 0, or the errno it must fail with. */
static int cy_os_enter(int kind)
{
    __atomic_add_fetch(&cy_os_calls[kind], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&cy_os_calls[CY_OS_ANY], 1, __ATOMIC_RELAXED);
    if (CY_LIKELY(!__atomic_load_n(&cy_os_fault_armed, __ATOMIC_ACQUIRE))) return 0;
    if (cy_os_fault.call != CY_OS_ANY && cy_os_fault.call != kind) return 0;
    uint64_t n = __atomic_add_fetch(&cy_os_fault.seen, 1, __ATOMIC_RELAXED);
    if (n == cy_os_fault.nth || (n > cy_os_fault.nth && cy_os_fault.sticky))
        return cy_os_fault.err;
    return 0;
}

CY_INTERNAL void cy_os_fail_at(int call, uint64_t nth, int err, int sticky, int short_write)
{
    __atomic_store_n(&cy_os_fault_armed, 0, __ATOMIC_RELEASE);
    cy_os_fault.call = call;
    cy_os_fault.nth = nth;
    cy_os_fault.seen = 0;
    cy_os_fault.err = err ? err : EIO;
    cy_os_fault.sticky = sticky;
    cy_os_fault.short_write = short_write;
    __atomic_store_n(&cy_os_fault_armed, nth != 0, __ATOMIC_RELEASE);
}

CY_INTERNAL void cy_os_fail_reset(void)
{
    cy_os_fail_at(CY_OS_ANY, 0, 0, 0, 0);
}

CY_INTERNAL uint64_t cy_os_count(int call)
{
    if (call < 0 || call > CY_OS_ANY) return 0;
    return __atomic_load_n(&cy_os_calls[call], __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_os_count_reset(void)
{
    for (int i = 0; i <= CY_OS_ANY; i++)
        __atomic_store_n(&cy_os_calls[i], 0, __ATOMIC_RELAXED);
}

// >> wrappers -----------------------------------------------------------------

CY_INTERNAL int cy_os_open(const char *path, int flags, uint32_t mode)
{
    int err = cy_os_enter(CY_OS_OPEN);
    if (err) return -err;
    int fd;
    do fd = open(path, flags | O_CLOEXEC, (mode_t)mode);
    while (fd < 0 && errno == EINTR);
    return fd < 0 ? -errno : fd;
}

CY_INTERNAL int cy_os_close(int fd)
{
    int err = cy_os_enter(CY_OS_CLOSE);
    /* The descriptor is released even when the injected failure fires:
     * after close(2) fails, POSIX leaves its state unspecified and Linux has
     * freed it, so retrying would be a bug. */
    int rc = close(fd);
    if (err) return -err;
    return rc < 0 && errno != EINTR ? -errno : 0;
}

CY_INTERNAL int64_t cy_os_pread(int fd, void *buf, size_t n, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PREAD);
    if (err) return -err;
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

CY_INTERNAL int64_t cy_os_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PREAD);
    if (err) return -err;
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

CY_INTERNAL int cy_os_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PWRITE);
    if (err) {
        if (cy_os_fault.short_write && n > 1) {
            ssize_t r = pwrite(fd, buf, n / 2, (off_t)off);
            (void)r;   /* the half write is the point; the call fails anyway */
        }
        return -err;
    }
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

CY_INTERNAL int cy_os_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PWRITE);
    struct iovec v[4];
    if (cnt < 1 || cnt > 4) return -EINVAL;
    memcpy(v, iov, (size_t)cnt * sizeof *v);
    if (err) {
        if (cy_os_fault.short_write && v[0].iov_len > 1) {
            ssize_t r = pwrite(fd, v[0].iov_base, v[0].iov_len / 2, (off_t)off);
            (void)r;   /* the half write is the point; the call fails anyway */
        }
        return -err;
    }
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

CY_INTERNAL int cy_os_fsync(int fd)
{
    int err = cy_os_enter(CY_OS_FSYNC);
    if (err) return -err;
    int rc;
    do rc = fsync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_fdatasync(int fd)
{
    int err = cy_os_enter(CY_OS_FDATASYNC);
    if (err) return -err;
    int rc;
    do rc = fdatasync(fd);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_ftruncate(int fd, uint64_t size)
{
    int err = cy_os_enter(CY_OS_FTRUNCATE);
    if (err) return -err;
    int rc;
    do rc = ftruncate(fd, (off_t)size);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_rename(const char *from, const char *to)
{
    int err = cy_os_enter(CY_OS_RENAME);
    if (err) return -err;
    return rename(from, to) < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_unlink(const char *path)
{
    int err = cy_os_enter(CY_OS_UNLINK);
    if (err) return -err;
    return unlink(path) < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_mkdir(const char *path, uint32_t mode)
{
    int err = cy_os_enter(CY_OS_MKDIR);
    if (err) return -err;
    return mkdir(path, (mode_t)mode) < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_rmdir(const char *path)
{
    int err = cy_os_enter(CY_OS_RMDIR);
    if (err) return -err;
    return rmdir(path) < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_fsize(int fd, uint64_t *size)
{
    int err = cy_os_enter(CY_OS_FSTAT);
    if (err) return -err;
    struct stat st;
    if (fstat(fd, &st) < 0) return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

CY_INTERNAL int cy_os_flock(int fd, int op)
{
    int err = cy_os_enter(CY_OS_FLOCK);
    if (err) return -err;
    int rc;
    do rc = flock(fd, op);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -errno : 0;
}

CY_INTERNAL int cy_os_mmap(int fd, uint64_t size, void **out)
{
    *out = NULL;
    int err = cy_os_enter(CY_OS_MMAP);
    if (err) return -err;
    if (size == 0) return -EINVAL;
    void *p = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return -errno;
    *out = p;
    return 0;
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

CY_INTERNAL int cy_os_list_dir(const char *path,
                               int (*fn)(const char *name, void *ctx), void *ctx)
{
    int err = cy_os_enter(CY_OS_READDIR);
    if (err) return -err;
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
