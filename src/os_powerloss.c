/*
 * os_powerloss.c: the power-loss simulator, a test layer over the syscall
 * table of src/os.c. Test builds only.
 *
 * Between cy_os_powerloss_begin and _end the layer keeps, per file, what it
 * held at its last sync and, per directory, the name changes since its last
 * fsync; a simulated crash (now, or before the nth call) throws away or
 * garbles everything not yet durable, the way a machine losing power would,
 * and freezes the table (testhooks.h has the contract). Outside a
 * simulation each entry is one relaxed load and the call passed down.
 *
 * A test build stacks it over the fault-and-counting layer (os_fault.c):
 * its constructor runs after that one's (CY_TESTHOOK_POWERLOSS), so what
 * the simulator itself reads and writes of the disk is counted and can
 * fail, as before the layers were split. It lives in src/ beside os.c for
 * the reasons os_fault.c gives; the amalgamation's file list (AMALG_SRC)
 * leaves it out, so calypso.c does not ship a simulator.
 */
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static cy_os_table cy_os_pl_below;   /* the fault layer, over libc's */

// >> power-loss simulation ------------------------------------------------------
/*
 * State, all under cy_os_pl.mu: a map from descriptor to the path it was
 * opened with; per file (by device and inode) what it held at its last sync
 * and the range changed since; and a stack of name changes not yet made
 * durable by an fsync of their directory. Everything here runs only between
 * cy_os_powerloss_begin and _end; the helpers use libc directly because they
 * act for the simulated machine, not for the engine.
 */

typedef struct cy_os_pl_file {
    dev_t    dev;
    ino_t    ino;
    char    *path;        /* its name now, NULL when unknown                */
    uint8_t *synced;      /* content at the last sync                       */
    uint64_t synced_len;
    uint64_t dirty_lo;    /* lowest offset changed since; UINT64_MAX: clean */
    uint64_t dirty_hi;    /* end of the bytes written since                 */
    struct cy_os_pl_file *next;
} cy_os_pl_file;

enum { CY_OS_PL_CREATE, CY_OS_PL_RENAME, CY_OS_PL_UNLINK, CY_OS_PL_MKDIR, CY_OS_PL_RMDIR };

typedef struct cy_os_pl_op {
    int      kind;
    char    *path;        /* created, removed or made; a rename's source    */
    char    *to;          /* a rename's target                              */
    char    *dir;         /* an fsync of this directory makes it durable    */
    dev_t    dev;
    ino_t    ino;         /* create, rename: the file concerned             */
    uint8_t *data;        /* unlink, rename over a file: what the removed   */
    uint64_t len;         /* file held at its last sync                     */
    int      has_data;
    struct cy_os_pl_op *prev;
} cy_os_pl_op;

typedef struct cy_os_pl_fd {
    char *path;
    int   is_dir;
} cy_os_pl_fd;

static struct {
    pthread_mutex_t mu;
    int             on;         /* atomic: tracking is active              */
    int             frozen;     /* atomic: the crash happened              */
    cy_os_pl_fd    *fds;
    int             nfds;
    cy_os_pl_file  *files;
    cy_os_pl_op    *ops;        /* newest first                            */
    uint64_t        calls;      /* table calls since crash_at              */
    uint64_t        crash_at;   /* 0 = not armed                           */
    int             crash_mode;
    uint64_t        seed;
} cy_os_pl = { .mu = PTHREAD_MUTEX_INITIALIZER };

static uint64_t cy_os_pl_rand(void)
{
    uint64_t z = (cy_os_pl.seed += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static char *cy_os_pl_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* The directory holding path ("." for a bare name). */
static char *cy_os_pl_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return cy_os_pl_strdup(".");
    size_t n = slash == path ? 1 : (size_t)(slash - path);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, path, n);
        p[n] = 0;
    }
    return p;
}

static int cy_os_pl_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Reads all of the file open as fd (any access mode: it is reopened for
 * reading through /proc) or at path. */
static int cy_os_pl_slurp(int fd, const char *path, uint8_t **data, uint64_t *len)
{
    char proc[64];
    if (fd >= 0) {
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        path = proc;
    }
    int rfd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    *data = NULL;
    *len = 0;
    if (rfd < 0) return -1;
    if (fstat(rfd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(rfd);
        return -1;
    }
    uint8_t *p = malloc(st.st_size ? (size_t)st.st_size : 1);
    int64_t got = p ? cy_os_pl_below.pread(rfd, p, (size_t)st.st_size, 0) : -1;
    close(rfd);
    if (got < 0) {
        free(p);
        return -1;
    }
    *data = p;
    *len = (uint64_t)got;
    return 0;
}

static cy_os_pl_file *cy_os_pl_find(dev_t dev, ino_t ino)
{
    for (cy_os_pl_file *f = cy_os_pl.files; f; f = f->next)
        if (f->dev == dev && f->ino == ino) return f;
    return NULL;
}

static void cy_os_pl_forget(cy_os_pl_file *gone)
{
    for (cy_os_pl_file **pp = &cy_os_pl.files; *pp; pp = &(*pp)->next) {
        if (*pp != gone) continue;
        *pp = gone->next;
        free(gone->path);
        free(gone->synced);
        free(gone);
        return;
    }
}

/* The record of a file about to change, made on first sight: a file not
 * seen since begin holds what it held then, and that counts as synced. */
static cy_os_pl_file *cy_os_pl_file_of(int fd, const char *path)
{
    struct stat st;
    if (fd >= 0 ? fstat(fd, &st) < 0 : lstat(path, &st) < 0) return NULL;
    if (!S_ISREG(st.st_mode)) return NULL;
    cy_os_pl_file *f = cy_os_pl_find(st.st_dev, st.st_ino);
    if (f) return f;
    if (!(f = calloc(1, sizeof *f))) return NULL;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->dirty_lo = UINT64_MAX;
    if (!path && fd < cy_os_pl.nfds) path = cy_os_pl.fds[fd].path;
    struct stat at;
    if (path && lstat(path, &at) == 0 && at.st_ino == st.st_ino && at.st_dev == st.st_dev)
        f->path = cy_os_pl_strdup(path);
    if (cy_os_pl_slurp(fd, path, &f->synced, &f->synced_len) < 0) {
        free(f->path);
        free(f);
        return NULL;
    }
    f->next = cy_os_pl.files;
    cy_os_pl.files = f;
    return f;
}

/* Notes that [lo, hi) of the file behind fd changes (hi = lo: a size
 * change at lo). */
static void cy_os_pl_touch(int fd, uint64_t lo, uint64_t hi)
{
    cy_os_pl_file *f = cy_os_pl_file_of(fd, NULL);
    if (!f) return;
    if (lo < f->dirty_lo) f->dirty_lo = lo;
    if (hi > f->dirty_hi) f->dirty_hi = hi;
}

static void cy_os_pl_push(int kind, const char *path, const char *to, const struct stat *st)
{
    cy_os_pl_op *op = calloc(1, sizeof *op);
    if (!op) return;
    op->kind = kind;
    op->path = cy_os_pl_strdup(path);
    op->to = to ? cy_os_pl_strdup(to) : NULL;
    op->dir = cy_os_pl_parent(to ? to : path);
    if (st) {
        op->dev = st->st_dev;
        op->ino = st->st_ino;
    }
    op->prev = cy_os_pl.ops;
    cy_os_pl.ops = op;
}

static void cy_os_pl_free_op(cy_os_pl_op *op)
{
    free(op->path);
    free(op->to);
    free(op->dir);
    free(op->data);
    free(op);
}

/* Saves what a file about to be removed (unlinked or renamed over) held at
 * its last sync, into op; forgets its record. */
static void cy_os_pl_save_removed(cy_os_pl_op *op, const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0 || !S_ISREG(st.st_mode)) return;
    cy_os_pl_file *f = cy_os_pl_find(st.st_dev, st.st_ino);
    if (f) {
        op->data = f->synced;
        op->len = f->synced_len;
        f->synced = NULL;
        op->has_data = 1;
        cy_os_pl_forget(f);
    } else if (cy_os_pl_slurp(-1, path, &op->data, &op->len) == 0) {
        op->has_data = 1;
    }
}

static void cy_os_pl_set_fd(int fd, const char *path)
{
    if (fd < 0) return;
    if (fd >= cy_os_pl.nfds) {
        int n = fd + 64;
        cy_os_pl_fd *p = realloc(cy_os_pl.fds, (size_t)n * sizeof *p);
        if (!p) return;
        memset(p + cy_os_pl.nfds, 0, (size_t)(n - cy_os_pl.nfds) * sizeof *p);
        cy_os_pl.fds = p;
        cy_os_pl.nfds = n;
    }
    struct stat st;
    free(cy_os_pl.fds[fd].path);
    cy_os_pl.fds[fd].path = path ? cy_os_pl_strdup(path) : NULL;
    cy_os_pl.fds[fd].is_dir = path && fstat(fd, &st) == 0 && S_ISDIR(st.st_mode);
}

/* An fsync of a file makes its content durable; of a directory, the name
 * changes in it. */
static void cy_os_pl_synced(int fd)
{
    if (fd < cy_os_pl.nfds && cy_os_pl.fds[fd].is_dir) {
        const char *dir = cy_os_pl.fds[fd].path;
        for (cy_os_pl_op **pp = &cy_os_pl.ops; *pp;) {
            cy_os_pl_op *op = *pp;
            if (strcmp(op->dir, dir) == 0) {
                *pp = op->prev;
                cy_os_pl_free_op(op);
            } else {
                pp = &op->prev;
            }
        }
        return;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) return;
    cy_os_pl_file *f = cy_os_pl_find(st.st_dev, st.st_ino);
    if (!f) return;
    uint64_t size = (uint64_t)st.st_size;
    uint64_t lo = f->dirty_lo < f->synced_len ? f->dirty_lo : f->synced_len;
    if (lo > size) lo = size;
    uint8_t *p = realloc(f->synced, size ? (size_t)size : 1);
    if (!p) return;
    f->synced = p;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    int rfd = open(proc, O_RDONLY | O_CLOEXEC);
    if (rfd >= 0) {
        int64_t got = cy_os_pl_below.pread(rfd, p + lo, (size_t)(size - lo), lo);
        if (got >= 0) size = lo + (uint64_t)got;
        close(rfd);
    }
    f->synced_len = size;
    f->dirty_lo = UINT64_MAX;
    f->dirty_hi = 0;
}

/* Writes len bytes of data as the whole content of a new file at path. */
static void cy_os_pl_recreate(const char *path, const uint8_t *data, uint64_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return;
    if (len && cy_os_pl_below.pwrite(fd, data, (size_t)len, 0) < 0)
        fprintf(stderr, "calypso powerloss: could not restore %s\n", path);
    close(fd);
}

static int cy_os_pl_rm_entry(const char *name, void *ctx);

/* rm -rf */
static void cy_os_pl_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            cy_os_pl_rm_entry(e->d_name, (void *)path);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static int cy_os_pl_rm_entry(const char *name, void *ctx)
{
    size_t n = strlen(ctx) + strlen(name) + 2;
    char *p = malloc(n);
    if (!p) return 0;
    snprintf(p, n, "%s/%s", (const char *)ctx, name);
    cy_os_pl_rmtree(p);
    free(p);
    return 0;
}

static int cy_os_pl_is(const char *path, dev_t dev, ino_t ino)
{
    struct stat st;
    return lstat(path, &st) == 0 && st.st_dev == dev && st.st_ino == ino;
}

/* Undoes one name change that its directory's fsync did not cover. A change
 * inside a directory that is gone for good has nothing left to undo. */
static void cy_os_pl_undo(cy_os_pl_op *op)
{
    cy_os_pl_file *f;
    switch (op->kind) {
    case CY_OS_PL_CREATE:
        if (cy_os_pl_is(op->path, op->dev, op->ino)) {
            unlink(op->path);
            if ((f = cy_os_pl_find(op->dev, op->ino))) cy_os_pl_forget(f);
        }
        break;
    case CY_OS_PL_RENAME: {
        char *from_dir = cy_os_pl_parent(op->path);
        int ok = from_dir && cy_os_pl_exists(from_dir) && cy_os_pl_is(op->to, op->dev, op->ino);
        free(from_dir);
        if (!ok || rename(op->to, op->path) < 0) break;
        if ((f = cy_os_pl_find(op->dev, op->ino))) {
            free(f->path);
            f->path = cy_os_pl_strdup(op->path);
        }
        if (op->has_data) cy_os_pl_recreate(op->to, op->data, op->len);
        break;
    }
    case CY_OS_PL_UNLINK:
        if (op->has_data && cy_os_pl_exists(op->dir) && !cy_os_pl_exists(op->path))
            cy_os_pl_recreate(op->path, op->data, op->len);
        break;
    case CY_OS_PL_MKDIR:
        cy_os_pl_rmtree(op->path);
        break;
    case CY_OS_PL_RMDIR:
        if (cy_os_pl_exists(op->dir)) mkdir(op->path, 0755);
        break;
    }
}

/* PAGES: each 4 KiB page of [lo, end) is one write-back, done or not, in
 * no order: it holds its new bytes, or what it held at the last sync
 * (zeros past the synced length). The size change since the sync (an
 * extension by fallocate or by writing past the end, or a cut) reached the
 * disk or did not, independently too. Each page survives with a
 * probability drawn per crash, so that some crashes lose most pages and
 * others few. */
#define CY_OS_PL_PAGE 4096u

static int cy_os_pl_rewind_pages(cy_os_pl_file *f, int fd, uint64_t cur, uint64_t lo)
{
    uint64_t base = f->synced_len;
    uint64_t len = cur != base && (cy_os_pl_rand() & 1) ? base : cur;
    uint64_t keep_in_8 = 1 + cy_os_pl_rand() % 7;
    uint8_t page[CY_OS_PL_PAGE];
    int rc = 0;
    for (uint64_t p = lo - lo % CY_OS_PL_PAGE; p < len; p += CY_OS_PL_PAGE) {
        size_t n = len - p < CY_OS_PL_PAGE ? (size_t)(len - p) : CY_OS_PL_PAGE;
        int keep = cy_os_pl_rand() % 8 < keep_in_8;
        /* Start from the synced bytes, zeros past them... */
        memset(page, 0, n);
        if (p < base) memcpy(page, f->synced + p, base - p < n ? (size_t)(base - p) : n);
        /* ...and take the new ones of a page that reached the disk. */
        if (keep && p < cur) {
            size_t m = cur - p < n ? (size_t)(cur - p) : n;
            if (cy_os_pl_below.pread(fd, page, m, p) != (int64_t)m) rc = -1;
        }
        rc |= cy_os_pl_below.pwrite(fd, page, n, p);
    }
    return rc | ftruncate(fd, (off_t)len);
}

/* Rewinds a file changed since its last sync, as the crash mode says. The
 * changed range is [lo, hi): lo the lowest offset touched since the sync,
 * hi the end of the bytes written (or the synced length, if more). TORN and
 * GARBLE keep the new bytes of a random prefix [lo, keep) of it (writes
 * reach the disk in order); past keep, TORN has the old bytes back (or the
 * file ends there) and GARBLE has random bytes up to hi. PAGES keeps a
 * random subset of the pages from lo on (cy_os_pl_rewind_pages). */
static void cy_os_pl_rewind(cy_os_pl_file *f, int mode)
{
    if (f->dirty_lo == UINT64_MAX || !f->path || !cy_os_pl_is(f->path, f->dev, f->ino)) return;
    int fd = open(f->path, O_RDWR | O_CLOEXEC);
    struct stat st;
    if (fd < 0) return;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return;
    }
    uint64_t cur = (uint64_t)st.st_size, base = f->synced_len;
    uint64_t lo = f->dirty_lo < base ? f->dirty_lo : base;
    uint64_t hi = f->dirty_hi > base ? f->dirty_hi : base;
    if (hi > cur) hi = cur > base ? cur : base;
    if (hi < lo) hi = lo;
    if (mode == CY_OS_PL_PAGES) {
        if (cy_os_pl_rewind_pages(f, fd, cur, lo))
            fprintf(stderr, "calypso powerloss: could not rewind %s\n", f->path);
        close(fd);
        return;
    }
    uint64_t keep = lo;
    if (mode == CY_OS_PL_TORN || mode == CY_OS_PL_GARBLE) {
        keep = lo + cy_os_pl_rand() % (hi - lo + 1);
        if (keep > cur) keep = cur;
    }
    int rc = 0;
    if (keep < base) rc |= cy_os_pl_below.pwrite(fd, f->synced + keep, (size_t)(base - keep), keep);
    switch (mode) {
    case CY_OS_PL_DROP:
        rc |= ftruncate(fd, (off_t)base);
        break;
    case CY_OS_PL_ZERO:
        rc |= ftruncate(fd, (off_t)base);
        if (cur > base) rc |= ftruncate(fd, (off_t)cur);
        break;
    case CY_OS_PL_TORN:
        rc |= ftruncate(fd, (off_t)(keep > base ? keep : base));
        break;
    default: {                                   /* CY_OS_PL_GARBLE */
        uint8_t junk[4096];
        for (uint64_t at = keep; at < hi;) {
            size_t n = hi - at < sizeof junk ? (size_t)(hi - at) : sizeof junk;
            for (size_t i = 0; i < n; i++) junk[i] = (uint8_t)cy_os_pl_rand();
            rc |= cy_os_pl_below.pwrite(fd, junk, n, at);
            at += n;
        }
        break;
    }
    }
    if (rc) fprintf(stderr, "calypso powerloss: could not rewind %s\n", f->path);
    close(fd);
}

/* The crash itself; mu held. With CY_OS_PL_EXIT the process ends here, as
 * a machine losing power does: nothing of the engine runs after it (which
 * matters: a mapping of a file the crash cut back would fault). */
/* Another thread of a process that is losing power may touch a mapping
 * past the end the crash cuts its file back to: it waits here for the
 * _exit that ends the process, as a machine's other cores stop with it,
 * instead of dying of SIGBUS in the middle of the rewinding. */
static void cy_os_pl_hang(int sig)
{
    (void)sig;
    for (;;) pause();
}

static void cy_os_pl_do_crash(int mode)
{
    if (mode & CY_OS_PL_EXIT) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = cy_os_pl_hang;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGBUS, &sa, NULL);
    }
    __atomic_store_n(&cy_os_pl.frozen, 1, __ATOMIC_RELEASE);
    while (cy_os_pl.ops) {
        cy_os_pl_op *op = cy_os_pl.ops;
        cy_os_pl.ops = op->prev;
        cy_os_pl_undo(op);
        cy_os_pl_free_op(op);
    }
    for (cy_os_pl_file *f = cy_os_pl.files; f; f = f->next)
        cy_os_pl_rewind(f, mode & ~CY_OS_PL_EXIT);
    if (mode & CY_OS_PL_EXIT) _exit(0);
}

static void cy_os_pl_clear(void)
{
    while (cy_os_pl.ops) {
        cy_os_pl_op *op = cy_os_pl.ops;
        cy_os_pl.ops = op->prev;
        cy_os_pl_free_op(op);
    }
    while (cy_os_pl.files) cy_os_pl_forget(cy_os_pl.files);
    for (int i = 0; i < cy_os_pl.nfds; i++) free(cy_os_pl.fds[i].path);
    free(cy_os_pl.fds);
    cy_os_pl.fds = NULL;
    cy_os_pl.nfds = 0;
    cy_os_pl.calls = cy_os_pl.crash_at = 0;
}

CY_INTERNAL void cy_os_powerloss_begin(void)
{
    pthread_mutex_lock(&cy_os_pl.mu);
    cy_os_pl_clear();
    __atomic_store_n(&cy_os_pl.frozen, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&cy_os_pl.on, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&cy_os_pl.mu);
}

CY_INTERNAL void cy_os_powerloss_crash(int mode, uint64_t seed)
{
    pthread_mutex_lock(&cy_os_pl.mu);
    if (__atomic_load_n(&cy_os_pl.on, __ATOMIC_ACQUIRE) &&
        !__atomic_load_n(&cy_os_pl.frozen, __ATOMIC_ACQUIRE)) {
        cy_os_pl.seed = seed;
        cy_os_pl_do_crash(mode);
    }
    pthread_mutex_unlock(&cy_os_pl.mu);
}

CY_INTERNAL void cy_os_powerloss_crash_at(uint64_t nth, int mode, uint64_t seed)
{
    pthread_mutex_lock(&cy_os_pl.mu);
    cy_os_pl.calls = 0;
    cy_os_pl.crash_at = nth;
    cy_os_pl.crash_mode = mode;
    cy_os_pl.seed = seed;
    pthread_mutex_unlock(&cy_os_pl.mu);
}

CY_INTERNAL int cy_os_powerloss_crashed(void)
{
    return __atomic_load_n(&cy_os_pl.frozen, __ATOMIC_ACQUIRE);
}

CY_INTERNAL void cy_os_powerloss_end(void)
{
    pthread_mutex_lock(&cy_os_pl.mu);
    cy_os_pl_clear();
    __atomic_store_n(&cy_os_pl.on, 0, __ATOMIC_RELEASE);
    __atomic_store_n(&cy_os_pl.frozen, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&cy_os_pl.mu);
}

// >> the layer ------------------------------------------------------------------
/*
 * The table entries. Outside a simulation each passes its call down (one
 * relaxed load more). Inside one, the call runs under cy_os_pl.mu, after
 * the crash countdown, and records what the simulated machine needs; once
 * crashed, it fails with EIO.
 */

static inline int cy_os_pl_active(void)
{
    return CY_UNLIKELY(__atomic_load_n(&cy_os_pl.on, __ATOMIC_ACQUIRE) != 0);
}

/* Takes the lock and counts the call; -EIO (lock released) once crashed. */
static int cy_os_pl_enter(void)
{
    pthread_mutex_lock(&cy_os_pl.mu);
    if (!cy_os_pl.frozen && cy_os_pl.crash_at && ++cy_os_pl.calls >= cy_os_pl.crash_at)
        cy_os_pl_do_crash(cy_os_pl.crash_mode);
    if (cy_os_pl.frozen) {
        pthread_mutex_unlock(&cy_os_pl.mu);
        return -EIO;
    }
    return 0;
}

static void cy_os_pl_leave(void)
{
    pthread_mutex_unlock(&cy_os_pl.mu);
}

static int cy_os_pl_open(const char *path, int flags, uint32_t mode)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.open(path, flags, mode);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    int existed = cy_os_pl_exists(path);
    if (existed && (flags & O_TRUNC) && (flags & O_ACCMODE) != O_RDONLY) {
        cy_os_pl_file *f = cy_os_pl_file_of(-1, path);
        if (f) f->dirty_lo = 0;
    }
    int fd = cy_os_pl_below.open(path, flags, mode);
    if (fd >= 0) {
        cy_os_pl_set_fd(fd, path);
        struct stat st;
        if (!existed && fstat(fd, &st) == 0) {
            cy_os_pl_push(CY_OS_PL_CREATE, path, NULL, &st);
            cy_os_pl_file *f = cy_os_pl_file_of(fd, path);   /* synced: empty */
            if (f) f->dirty_lo = UINT64_MAX;
        }
    }
    cy_os_pl_leave();
    return fd;
}

static int cy_os_pl_close(int fd)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.close(fd);
    /* A crashed machine still lets the process release its descriptors. */
    pthread_mutex_lock(&cy_os_pl.mu);
    if (fd >= 0 && fd < cy_os_pl.nfds) cy_os_pl_set_fd(fd, NULL);
    int rc = cy_os_pl.frozen ? (close(fd), 0) : cy_os_pl_below.close(fd);
    cy_os_pl_leave();
    return rc;
}

static int64_t cy_os_pl_pread(int fd, void *buf, size_t n, uint64_t off)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.pread(fd, buf, n, off);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    int64_t got = cy_os_pl_below.pread(fd, buf, n, off);
    cy_os_pl_leave();
    return got;
}

static int64_t cy_os_pl_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.preadv(fd, iov, cnt, off);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    int64_t got = cy_os_pl_below.preadv(fd, iov, cnt, off);
    cy_os_pl_leave();
    return got;
}

static int cy_os_pl_pwrite(int fd, const void *buf, size_t n, uint64_t off)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.pwrite(fd, buf, n, off);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    cy_os_pl_touch(fd, off, off + n);
    rc = cy_os_pl_below.pwrite(fd, buf, n, off);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.pwritev(fd, iov, cnt, off);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    uint64_t n = 0;
    for (int i = 0; i < cnt && i < 4; i++) n += iov[i].iov_len;
    cy_os_pl_touch(fd, off, off + n);
    rc = cy_os_pl_below.pwritev(fd, iov, cnt, off);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_map_write(int fd, uint8_t *map, uint64_t off, const void *src, size_t n)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.map_write(fd, map, off, src, n);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    cy_os_pl_touch(fd, off, off + n);
    rc = cy_os_pl_below.map_write(fd, map, off, src, n);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_fsync(int fd)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.fsync(fd);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    if (!(rc = cy_os_pl_below.fsync(fd))) cy_os_pl_synced(fd);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_fdatasync(int fd)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.fdatasync(fd);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    if (!(rc = cy_os_pl_below.fdatasync(fd))) cy_os_pl_synced(fd);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_ftruncate(int fd, uint64_t size)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.ftruncate(fd, size);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    struct stat st;
    uint64_t cur = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    cy_os_pl_touch(fd, size < cur ? size : cur, 0);
    rc = cy_os_pl_below.ftruncate(fd, size);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_fallocate(int fd, uint64_t off, uint64_t len)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.fallocate(fd, off, len);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    struct stat st;
    uint64_t cur = fstat(fd, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (off + len > cur) cy_os_pl_touch(fd, cur, 0);   /* only the size changes */
    rc = cy_os_pl_below.fallocate(fd, off, len);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_rename(const char *from, const char *to)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.rename(from, to);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    struct stat st;
    int known = lstat(from, &st) == 0;
    cy_os_pl_op saved = { 0 };
    if (known) cy_os_pl_save_removed(&saved, to);
    rc = cy_os_pl_below.rename(from, to);
    if (!rc && known) {
        cy_os_pl_push(CY_OS_PL_RENAME, from, to, &st);
        cy_os_pl.ops->data = saved.data;
        cy_os_pl.ops->len = saved.len;
        cy_os_pl.ops->has_data = saved.has_data;
        saved.data = NULL;
        cy_os_pl_file *f = cy_os_pl_find(st.st_dev, st.st_ino);
        if (f) {
            free(f->path);
            f->path = cy_os_pl_strdup(to);
        }
    }
    free(saved.data);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_unlink(const char *path)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.unlink(path);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    cy_os_pl_op saved = { 0 };
    cy_os_pl_save_removed(&saved, path);
    rc = cy_os_pl_below.unlink(path);
    if (!rc) {
        cy_os_pl_push(CY_OS_PL_UNLINK, path, NULL, NULL);
        cy_os_pl.ops->data = saved.data;
        cy_os_pl.ops->len = saved.len;
        cy_os_pl.ops->has_data = saved.has_data;
        saved.data = NULL;
    }
    free(saved.data);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_mkdir(const char *path, uint32_t mode)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.mkdir(path, mode);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    if (!(rc = cy_os_pl_below.mkdir(path, mode))) cy_os_pl_push(CY_OS_PL_MKDIR, path, NULL, NULL);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_rmdir(const char *path)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.rmdir(path);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    if (!(rc = cy_os_pl_below.rmdir(path))) cy_os_pl_push(CY_OS_PL_RMDIR, path, NULL, NULL);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_fsize(int fd, uint64_t *size)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.fsize(fd, size);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    rc = cy_os_pl_below.fsize(fd, size);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_stat(const char *path, uint64_t *size, int *is_dir)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.stat(path, size, is_dir);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    rc = cy_os_pl_below.stat(path, size, is_dir);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_flock(int fd, int op)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.flock(fd, op);
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    rc = cy_os_pl_below.flock(fd, op);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_mmap(int fd, uint64_t size, void **out)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.mmap(fd, size, out);
    *out = NULL;
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    rc = cy_os_pl_below.mmap(fd, size, out);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_mmap_rw(int fd, uint64_t size, void **out)
{
    if (!cy_os_pl_active()) return cy_os_pl_below.mmap_rw(fd, size, out);
    *out = NULL;
    int rc = cy_os_pl_enter();
    if (rc) return rc;
    rc = cy_os_pl_below.mmap_rw(fd, size, out);
    cy_os_pl_leave();
    return rc;
}

static int cy_os_pl_list_dir(const char *path,
                             int (*fn)(const char *name, void *ctx), void *ctx)
{
    if (cy_os_pl_active()) {
        /* The callback may call the table (removing entries): the listing
         * itself changes nothing, so it runs outside the lock. */
        int rc = cy_os_pl_enter();
        if (rc) return rc;
        cy_os_pl_leave();
    }
    return cy_os_pl_below.list_dir(path, fn, ctx);
}

__attribute__((constructor(CY_TESTHOOK_POWERLOSS)))
static void cy_os_pl_install(void)
{
    static const cy_os_table layer = {
        .open       = cy_os_pl_open,
        .close      = cy_os_pl_close,
        .pread      = cy_os_pl_pread,
        .preadv     = cy_os_pl_preadv,
        .pwrite     = cy_os_pl_pwrite,
        .pwritev    = cy_os_pl_pwritev,
        .fsync      = cy_os_pl_fsync,
        .fdatasync  = cy_os_pl_fdatasync,
        .ftruncate  = cy_os_pl_ftruncate,
        .fallocate  = cy_os_pl_fallocate,
        .map_write  = cy_os_pl_map_write,
        .rename     = cy_os_pl_rename,
        .unlink     = cy_os_pl_unlink,
        .mkdir      = cy_os_pl_mkdir,
        .rmdir      = cy_os_pl_rmdir,
        .fsize      = cy_os_pl_fsize,
        .stat       = cy_os_pl_stat,
        .flock      = cy_os_pl_flock,
        .mmap       = cy_os_pl_mmap,
        .mmap_rw    = cy_os_pl_mmap_rw,
        .list_dir   = cy_os_pl_list_dir,
    };
    cy_os_install(&layer, &cy_os_pl_below);
}
