/*
 * os_fault.c: fault injection and counting, a test layer over the syscall
 * table of src/os.c. Test builds only.
 *
 *  - fault injection: a test arms cy_os_fail_at(kind, n, errno, sticky,
 *    short_write) and the nth call of that kind (or of any kind) fails with
 *    that errno, once or from then on; a failing pwrite can first write half
 *    its bytes, as a full disk does. This is how the countdown tests prove
 *    that every I/O error turns into a clean error code and loses nothing;
 *  - counting: tests assert on how many calls of a kind were made (group
 *    commit shares one fdatasync between writers).
 *
 * Every call through the table bumps two process-wide atomic counters and
 * reads the fault's state: that is the cost a release build must not pay,
 * so it lives here and not in os.c. The file sits in src/ beside os.c
 * rather than in tests/ because it is a layer of the syscall table (it
 * knows its entries and reaches it through cy_os_install, declared for the
 * module build only) and is compiled by the modules' rules for every tier
 * (asan, tsan, valgrind, fuzz). The amalgamation's file list (AMALG_SRC)
 * leaves it out; the test binaries link it (TEST_HOOK_OBJ). A constructor
 * installs the layer before main, right over libc, so calls are counted
 * from the start; the power-loss layer (os_powerloss.c) goes over it.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static cy_os_table cy_os_fault_below;   /* libc's table */

// >> the fault and the counters -----------------------------------------------

static uint64_t cy_os_calls[CY_OS__COUNT + 1];

static struct {
    int      call;        /* kind armed, or CY_OS_ANY                      */
    uint64_t nth;         /* 0 = disarmed                                  */
    uint64_t seen;        /* calls of that kind since arming               */
    int      err;
    int      sticky;
    int      short_write;
    const void *owner;    /* a thread's cy_os_calls_here, or NULL: any thread */
} cy_os_fault;

static int cy_os_fault_armed;     /* read without the lock on the fast path */

/* 1 for the kinds whose wrapper retries EINTR (close treats it as done). */
static int cy_os_eintr_retried(int kind)
{
    switch (kind) {
    case CY_OS_OPEN: case CY_OS_CLOSE: case CY_OS_PREAD: case CY_OS_PWRITE:
    case CY_OS_FSYNC: case CY_OS_FDATASYNC: case CY_OS_FTRUNCATE: case CY_OS_FLOCK:
    case CY_OS_FALLOCATE:
        return 1;
    default:
        return 0;
    }
}

/* Counts a call of `kind` and returns 0, or the errno it must fail with.
 * The fault's fields are atomics: a test re-arms while background threads
 * are in the table. */
/* The calling thread's own counts (cy_os_count_here). */
static _Thread_local uint64_t cy_os_calls_here[CY_OS_ANY + 1];

static int cy_os_enter(int kind)
{
    cy_os_calls_here[kind]++;
    cy_os_calls_here[CY_OS_ANY]++;
    __atomic_add_fetch(&cy_os_calls[kind], 1, __ATOMIC_RELAXED);
    __atomic_add_fetch(&cy_os_calls[CY_OS_ANY], 1, __ATOMIC_RELAXED);
    if (CY_LIKELY(!__atomic_load_n(&cy_os_fault_armed, __ATOMIC_ACQUIRE))) return 0;
    int call = __atomic_load_n(&cy_os_fault.call, __ATOMIC_RELAXED);
    if (call != CY_OS_ANY && call != kind) return 0;
    const void *owner = __atomic_load_n(&cy_os_fault.owner, __ATOMIC_RELAXED);
    if (owner && owner != (const void *)cy_os_calls_here) return 0;
    uint64_t nth = __atomic_load_n(&cy_os_fault.nth, __ATOMIC_RELAXED);
    uint64_t n = __atomic_add_fetch(&cy_os_fault.seen, 1, __ATOMIC_RELAXED);
    if (nth == 0 || (n != nth && !(n > nth && __atomic_load_n(&cy_os_fault.sticky,
                                                               __ATOMIC_RELAXED))))
        return 0;
    int err = __atomic_load_n(&cy_os_fault.err, __ATOMIC_RELAXED);
    /* A call that a real EINTR can interrupt is retried by its wrapper: an
     * injected EINTR there costs one attempt and must not surface. */
    if (err == EINTR && cy_os_eintr_retried(kind)) return 0;
    return err;
}

/* 1 when a failing write is to write half its bytes first. */
static int cy_os_fault_short(void)
{
    return __atomic_load_n(&cy_os_fault.short_write, __ATOMIC_RELAXED);
}

/* Arms the fault for the calls of `owner`'s thread, or of any with NULL. */
static void cy_os_fail_arm(const void *owner, int call, uint64_t nth, int err, int sticky,
                           int short_write)
{
    __atomic_store_n(&cy_os_fault_armed, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&cy_os_fault.owner, owner, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault.call, call, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault.nth, nth, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault.seen, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault.err, err ? err : EIO, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault.sticky, sticky, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault.short_write, short_write, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_os_fault_armed, nth != 0, __ATOMIC_RELEASE);
}

CY_INTERNAL void cy_os_fail_at(int call, uint64_t nth, int err, int sticky, int short_write)
{
    cy_os_fail_arm(NULL, call, nth, err, sticky, short_write);
}

CY_INTERNAL void cy_os_fail_here(int call, uint64_t nth, int err, int sticky, int short_write)
{
    cy_os_fail_arm(cy_os_calls_here, call, nth, err, sticky, short_write);
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

CY_INTERNAL uint64_t cy_os_count_here(int call)
{
    if (call < 0 || call > CY_OS_ANY) return 0;
    return cy_os_calls_here[call];
}

CY_INTERNAL void cy_os_count_reset(void)
{
    for (int i = 0; i <= CY_OS_ANY; i++)
        __atomic_store_n(&cy_os_calls[i], 0, __ATOMIC_RELAXED);
}

// >> the syncs in scope -----------------------------------------------------------
/* A name suffix set by cy_os_sync_scope (empty: every file), written only
 * while no other thread is in the table. */
static char cy_os_scope[32];

CY_INTERNAL void cy_os_sync_scope(const char *suffix)
{
    size_t n = suffix ? strlen(suffix) : 0;
    if (n >= sizeof cy_os_scope) n = sizeof cy_os_scope - 1;
    memcpy(cy_os_scope, suffix ? suffix : "", n);
    cy_os_scope[n] = 0;
}

/* 1 if a sync of fd is counted and may be failed: no scope is set, or
 * fd's file name ends in the scope's suffix. */
static int cy_os_sync_in_scope(int fd)
{
    size_t sl = strlen(cy_os_scope);
    if (!sl) return 1;
    char link[32], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 0) return 1;
    path[n] = 0;
    return (size_t)n >= sl && memcmp(path + n - sl, cy_os_scope, sl) == 0;
}

// >> the layer ------------------------------------------------------------------
/* Each entry counts its call, fails it if armed to, and otherwise passes it
 * down to libc's. */

static int cy_os_fault_open(const char *path, int flags, uint32_t mode)
{
    int err = cy_os_enter(CY_OS_OPEN);
    return err ? -err : cy_os_fault_below.open(path, flags, mode);
}

static int cy_os_fault_close(int fd)
{
    int err = cy_os_enter(CY_OS_CLOSE);
    /* The descriptor is released even when the injected failure fires:
     * after close(2) fails, POSIX leaves its state unspecified and Linux has
     * freed it. */
    int rc = cy_os_fault_below.close(fd);
    return err ? -err : rc;
}

static int64_t cy_os_fault_pread(int fd, void *buf, size_t n, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PREAD);
    return err ? -err : cy_os_fault_below.pread(fd, buf, n, off);
}

static int64_t cy_os_fault_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PREAD);
    return err ? -err : cy_os_fault_below.preadv(fd, iov, cnt, off);
}

static int cy_os_fault_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PWRITE);
    if (!err) return cy_os_fault_below.pwrite(fd, buf, n, off);
    if (cy_os_fault_short() && n > 1) {
        int rc = cy_os_fault_below.pwrite(fd, buf, n / 2, off);
        (void)rc;   /* the half write is the point; the call fails anyway */
    }
    return -err;
}

static int cy_os_fault_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    int err = cy_os_enter(CY_OS_PWRITE);
    if (!err) return cy_os_fault_below.pwritev(fd, iov, cnt, off);
    if (cnt < 1 || cnt > 4) return -EINVAL;
    if (cy_os_fault_short() && iov[0].iov_len > 1) {
        int rc = cy_os_fault_below.pwrite(fd, iov[0].iov_base, iov[0].iov_len / 2, off);
        (void)rc;   /* the half write is the point; the call fails anyway */
    }
    return -err;
}

static int cy_os_fault_fsync(int fd)
{
    if (!cy_os_sync_in_scope(fd)) return cy_os_fault_below.fsync(fd);
    int err = cy_os_enter(CY_OS_FSYNC);
    return err ? -err : cy_os_fault_below.fsync(fd);
}

static int cy_os_fault_fdatasync(int fd)
{
    if (!cy_os_sync_in_scope(fd)) return cy_os_fault_below.fdatasync(fd);
    int err = cy_os_enter(CY_OS_FDATASYNC);
    return err ? -err : cy_os_fault_below.fdatasync(fd);
}

static int cy_os_fault_writeback(int fd, uint64_t off, uint64_t len)
{
    int err = cy_os_enter(CY_OS_WRITEBACK);
    return err ? -err : cy_os_fault_below.writeback(fd, off, len);
}

static int cy_os_fault_ftruncate(int fd, uint64_t size)
{
    int err = cy_os_enter(CY_OS_FTRUNCATE);
    return err ? -err : cy_os_fault_below.ftruncate(fd, size);
}

static int cy_os_fault_fallocate(int fd, uint64_t off, uint64_t len)
{
    int err = cy_os_enter(CY_OS_FALLOCATE);
    return err ? -err : cy_os_fault_below.fallocate(fd, off, len);
}

/* A write through a mapping fails as a pwrite does, half-done if asked. */
static int cy_os_fault_map_write(int fd, uint8_t *map, uint64_t off, const void *src, size_t n)
{
    int err = cy_os_enter(CY_OS_PWRITE);
    if (!err) return cy_os_fault_below.map_write(fd, map, off, src, n);
    if (cy_os_fault_short() && n > 1) memcpy(map + off, src, n / 2);
    return -err;
}

static int cy_os_fault_rename(const char *from, const char *to)
{
    int err = cy_os_enter(CY_OS_RENAME);
    return err ? -err : cy_os_fault_below.rename(from, to);
}

static int cy_os_fault_unlink(const char *path)
{
    int err = cy_os_enter(CY_OS_UNLINK);
    return err ? -err : cy_os_fault_below.unlink(path);
}

static int cy_os_fault_mkdir(const char *path, uint32_t mode)
{
    int err = cy_os_enter(CY_OS_MKDIR);
    return err ? -err : cy_os_fault_below.mkdir(path, mode);
}

static int cy_os_fault_rmdir(const char *path)
{
    int err = cy_os_enter(CY_OS_RMDIR);
    return err ? -err : cy_os_fault_below.rmdir(path);
}

static int cy_os_fault_fsize(int fd, uint64_t *size)
{
    int err = cy_os_enter(CY_OS_FSTAT);
    return err ? -err : cy_os_fault_below.fsize(fd, size);
}

static int cy_os_fault_stat(const char *path, uint64_t *size, int *is_dir)
{
    int err = cy_os_enter(CY_OS_STAT);
    return err ? -err : cy_os_fault_below.stat(path, size, is_dir);
}

static int cy_os_fault_flock(int fd, int op)
{
    int err = cy_os_enter(CY_OS_FLOCK);
    return err ? -err : cy_os_fault_below.flock(fd, op);
}

static int cy_os_fault_mmap(int fd, uint64_t size, void **out)
{
    *out = NULL;
    int err = cy_os_enter(CY_OS_MMAP);
    return err ? -err : cy_os_fault_below.mmap(fd, size, out);
}

static int cy_os_fault_mmap_rw(int fd, uint64_t size, void **out)
{
    *out = NULL;
    int err = cy_os_enter(CY_OS_MMAP);
    return err ? -err : cy_os_fault_below.mmap_rw(fd, size, out);
}

static int cy_os_fault_list_dir(const char *path,
                                int (*fn)(const char *name, void *ctx), void *ctx)
{
    int err = cy_os_enter(CY_OS_READDIR);
    return err ? -err : cy_os_fault_below.list_dir(path, fn, ctx);
}

__attribute__((constructor(CY_TESTHOOK_FAULT)))
static void cy_os_fault_install(void)
{
    static const cy_os_table layer = {
        .open       = cy_os_fault_open,
        .close      = cy_os_fault_close,
        .pread      = cy_os_fault_pread,
        .preadv     = cy_os_fault_preadv,
        .pwrite     = cy_os_fault_pwrite,
        .pwritev    = cy_os_fault_pwritev,
        .fsync      = cy_os_fault_fsync,
        .fdatasync  = cy_os_fault_fdatasync,
        .writeback  = cy_os_fault_writeback,
        .ftruncate  = cy_os_fault_ftruncate,
        .fallocate  = cy_os_fault_fallocate,
        .map_write  = cy_os_fault_map_write,
        .rename     = cy_os_fault_rename,
        .unlink     = cy_os_fault_unlink,
        .mkdir      = cy_os_fault_mkdir,
        .rmdir      = cy_os_fault_rmdir,
        .fsize      = cy_os_fault_fsize,
        .stat       = cy_os_fault_stat,
        .flock      = cy_os_fault_flock,
        .mmap       = cy_os_fault_mmap,
        .mmap_rw    = cy_os_fault_mmap_rw,
        .list_dir   = cy_os_fault_list_dir,
    };
    cy_os_install(&layer, &cy_os_fault_below);
}
