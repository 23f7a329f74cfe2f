/*
 * files.c: the table of datafiles, their mappings and descriptors, and
 * appending to the active file.
 *
 * The table is an array of cy_file sorted by fid, guarded by files_lock;
 * every change to it also holds write_mu. Readers hold files_lock shared
 * while they copy a record out, so a mapping or descriptor is released
 * (LRU eviction past max_open_files, removal by a merge) only under the
 * exclusive lock, when no read is in flight.
 *
 * Sealed files are read through a read-only mapping of the whole file,
 * made on first use (the descriptor is closed once mapped, so mappings do
 * not hold descriptors). The active file has a writable shared mapping of
 * max_datafile_size bytes, made once; the file itself is extended ahead of
 * the data in chunks with fallocate, so a write through the mapping never
 * needs a syscall and cannot hit a full disk. Bytes copied into a shared
 * mapping are in the page cache at once: like a write(2), they survive the
 * process being killed. A record that does not fit the mapping (larger than
 * max_datafile_size, alone in its file) is written with pwritev and read
 * with pread. At sealing and at close, the file is cut back to its data.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

/* Space is allocated ahead of the active file's data in chunks of an
 * eighth of what it holds, between 1 and 8 MiB: few fallocate calls, and
 * little space held ahead of the data. */
#define CY_FILES_CHUNK_MIN (1ull << 20)
#define CY_FILES_CHUNK_MAX (8ull << 20)

/* Under SYNC_ALWAYS every write ends in an fdatasync, and a sync that
 * covers the first write into a preallocated block must also commit the
 * block's change from unwritten to written: a journal commit, which made
 * such a sync about twice as slow (ext4 here), every 9th sync with four
 * writers. Writing, through the mapping and this far ahead of the data,
 * the zeros that space reads as anyway lets one sync convert 64 blocks at
 * once. */
#define CY_FILES_ZERO_AHEAD (256u << 10)

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
    if (fd >= 0) db->open_files++;
    return CALYPSO_OK;
}

/* Releases a file's mapping and descriptor. files_lock exclusive. */
CY_INTERNAL void cy_files_release(calypso *db, cy_file *f)
{
    int was_open = f->fd >= 0 || f->map;
    if (f->map) cy_os_munmap(f->map, f->map_len);
    if (f->fd >= 0) cy_os_close(f->fd);
    f->map = NULL;
    f->map_len = 0;
    f->fd = -1;
    if (was_open) db->open_files--;
}

/* Releases the least recently used sealed file. files_lock exclusive. */
static void cy_files_evict_one(calypso *db)
{
    cy_file *victim = NULL;
    for (uint32_t i = 0; i < db->nfiles; i++) {
        cy_file *f = db->files[i];
        if ((f->fd < 0 && !f->map) || f == db->active) continue;
        if (!victim || f->last_used < victim->last_used) victim = f;
    }
    if (victim) cy_files_release(db, victim);
}

static void cy_files_bound(calypso *db)
{
    while (db->open_files > db->opt.max_open_files + (db->active ? 1u : 0u)) {
        uint32_t before = db->open_files;
        cy_files_evict_one(db);
        if (db->open_files == before) break;
    }
}

/* Maps a sealed file, or opens its descriptor when a mapping cannot cover
 * it (empty, unmappable, or a record written past the active mapping).
 * files_lock exclusive. */
static int cy_files_open(calypso *db, cy_file *f)
{
    int covered = f->map && f->size <= f->map_len;
    if (covered || f->fd >= 0) return CALYPSO_OK;
    char path[4096];
    cy_dir_data_path(db, f->fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    int was_open = f->map != NULL;
    void *m = NULL;
    if (!f->map && f->size > 0 && cy_os_mmap(fd, f->size, &m) == 0) {
        cy_os_close(fd);
        f->map = m;
        f->map_len = f->size;
    } else {
        f->fd = fd;
    }
    if (!was_open) db->open_files++;
    /* Newest use, so that bounding the cache evicts some other file. */
    f->last_used = __atomic_add_fetch(&db->tick, 1, __ATOMIC_RELAXED);
    cy_files_bound(db);
    return CALYPSO_OK;
}

/* Copies [off, off+alen+blen) of file fid into a then b, from the mapping
 * when it covers the range, else with a read. files_lock shared. */
static int cy_files_copy(calypso *db, cy_file *f, void *a, size_t alen, void *b, size_t blen,
                         uint64_t off)
{
    size_t want = alen + blen;
    if (f->map && off + want <= f->map_len) {
        memcpy(a, f->map + off, alen);
        if (blen) memcpy(b, f->map + off + alen, blen);
        return CALYPSO_OK;
    }
    int fd = f->fd;
    if (fd < 0) return 1;                       /* caller opens it */
    struct iovec iov[2] = { { a, alen }, { b, blen } };
    int64_t got = blen ? cy_os_preadv(fd, iov, 2, off) : cy_os_pread(fd, a, alen, off);
    char path[4096];
    if (got < 0) {
        cy_dir_data_path(db, f->fid, path, sizeof path);
        return cy_err_errno(db, (int)got, "read", path);
    }
    if ((size_t)got != want) {
        cy_dir_data_path(db, f->fid, path, sizeof path);
        return cy_err(db, CALYPSO_ECORRUPT, "%s: record at offset %llu runs past the end",
                      path, (unsigned long long)off);
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_preadv(calypso *db, uint32_t fid, void *a, size_t alen,
                                void *b, size_t blen, uint64_t off)
{
    cy_rdlock(&db->files_lock);
    cy_file *f = cy_files_find(db, fid);
    int rc = f ? cy_files_copy(db, f, a, alen, b, blen, off) : CALYPSO_ENOTFOUND;
    cy_unlock(&db->files_lock);
    if (rc != 1) return rc;
    /* Not open: open it and read under the exclusive lock, so that no
     * other reader can evict it in between. */
    cy_wrlock(&db->files_lock);
    f = cy_files_find(db, fid);
    rc = f ? cy_files_open(db, f) : CALYPSO_ENOTFOUND;
    if (!rc) rc = cy_files_copy(db, f, a, alen, b, blen, off);
    cy_unlock(&db->files_lock);
    return rc == 1 ? cy_err(db, CALYPSO_EIO, "datafile %u cannot be read", fid) : rc;
}

CY_INTERNAL int cy_files_with_record(calypso *db, uint32_t fid, uint64_t off, uint32_t size,
                                     cy_record_fn fn, void *ctx)
{
    cy_rdlock(&db->files_lock);
    cy_file *f = cy_files_find(db, fid);
    if (f && f->map && off + size <= f->map_len) {
        /* The common case: verify and copy straight out of the page cache,
         * no syscall and no intermediate buffer. */
        cy_files_touch(db, f);
        int rc = fn(f->map + off, ctx);
        cy_unlock(&db->files_lock);
        return rc;
    }
    cy_unlock(&db->files_lock);
    if (!f) return CALYPSO_ENOTFOUND;
    uint8_t stackbuf[4096];
    uint8_t *buf = size <= sizeof stackbuf ? stackbuf : cy_malloc(size);
    if (!buf) return cy_err(db, CALYPSO_ENOMEM, "reading a record of %u bytes", size);
    int rc = cy_files_preadv(db, fid, buf, size, NULL, 0, off);
    if (!rc) rc = fn(buf, ctx);
    if (buf != stackbuf) cy_free(buf);
    return rc;
}

CY_INTERNAL int cy_files_pread(calypso *db, uint32_t fid, void *buf, size_t n, uint64_t off)
{
    return cy_files_preadv(db, fid, buf, n, NULL, 0, off);
}

CY_INTERNAL void cy_files_close_all(calypso *db)
{
    for (uint32_t i = 0; i < db->nfiles; i++) {
        cy_files_release(db, db->files[i]);
        cy_free(db->files[i]);
    }
    cy_free(db->files);
    db->files = NULL;
    db->nfiles = db->files_cap = db->open_files = 0;
    db->active = NULL;
}

// >> the active file -----------------------------------------------------------

/* Gives f (open descriptor, `size` bytes of records) the writable mapping
 * of the active file. Without a mapping the file is written with pwritev. */
CY_INTERNAL int cy_files_activate(calypso *db, cy_file *f)
{
    uint64_t len = 0;
    int rc = cy_os_fsize(f->fd, &len);
    if (rc < 0) {
        char path[4096];
        cy_dir_data_path(db, f->fid, path, sizeof path);
        return cy_err_errno(db, rc, "stat", path);
    }
    f->alloc = len;
    void *m = NULL;
    if (cy_os_mmap_rw(f->fd, db->opt.max_datafile_size, &m) == 0) {
        f->map = m;
        f->map_len = db->opt.max_datafile_size;
#ifdef MADV_POPULATE_READ
        /* Fill the page tables for what the file holds (as MAP_POPULATE
         * does for sealed files); a hint only, so failure is fine. */
        if (len > 0) madvise(m, (size_t)(len < f->map_len ? len : f->map_len), MADV_POPULATE_READ);
#endif
    }
    db->active = f;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_trim_active(calypso *db)
{
    cy_file *a = db->active;
    if (!a || a->alloc == a->size) return CALYPSO_OK;
    int rc = cy_os_ftruncate(a->fd, a->size);
    if (rc < 0) {
        char path[4096];
        cy_dir_data_path(db, a->fid, path, sizeof path);
        return cy_err_errno(db, rc, "truncate", path);
    }
    a->alloc = a->size;
    if (a->zeroed > a->size) a->zeroed = a->size;
    return CALYPSO_OK;
}

/* Makes sure the file has disk blocks for `end` bytes. */
static int cy_files_reserve(calypso *db, cy_file *a, uint64_t end)
{
    if (end <= a->alloc) return CALYPSO_OK;
    uint64_t chunk = a->alloc / 8 < CY_FILES_CHUNK_MIN ? CY_FILES_CHUNK_MIN : a->alloc / 8;
    if (chunk > CY_FILES_CHUNK_MAX) chunk = CY_FILES_CHUNK_MAX;
    uint64_t target = a->alloc + chunk;
    if (target < end) target = end;
    if (target > a->map_len) target = a->map_len;
    int rc = cy_os_fallocate(a->fd, a->alloc, target - a->alloc);
    if (rc < 0 && target > end) {
        /* Short of space for a whole chunk: take just what this record needs. */
        target = end;
        rc = cy_os_fallocate(a->fd, a->alloc, target - a->alloc);
    }
    if (rc < 0) {
        char path[4096];
        cy_dir_data_path(db, a->fid, path, sizeof path);
        return cy_err_errno(db, rc, "allocate space in", path);
    }
    a->alloc = target;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_append(calypso *db, const struct iovec *iov, int cnt, size_t size)
{
    cy_file *a = db->active;
    uint64_t off = a->size;
    int rc;
    if (a->map && off + size <= a->map_len) {
        if ((rc = cy_files_reserve(db, a, off + size))) return rc;
        if (db->opt.sync == CALYPSO_SYNC_ALWAYS && off + size > a->zeroed) {
            uint64_t from = a->zeroed > off ? a->zeroed : off;
            uint64_t to = off + size + CY_FILES_ZERO_AHEAD;
            if (to > a->alloc) to = a->alloc;
            memset(a->map + from, 0, (size_t)(to - from));
            a->zeroed = to;
        }
        uint64_t at = off;
        for (int i = 0; i < cnt && rc == 0; i++) {
            rc = cy_os_map_write(a->fd, a->map, at, iov[i].iov_base, iov[i].iov_len);
            at += iov[i].iov_len;
        }
    } else {
        rc = cy_os_pwritev(a->fd, iov, cnt, off);
        if (!rc && off + size > a->alloc) a->alloc = off + size;
    }
    if (rc < 0) {
        char path[4096];
        cy_dir_data_path(db, a->fid, path, sizeof path);
        int code = cy_err_errno(db, rc, "write", path);
        cy_files_unappend(db, off, size);
        return code;
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_unappend(calypso *db, uint64_t off, size_t size)
{
    cy_file *a = db->active;
    a->size = off;
    /* What a failed or undone write left must read as nothing: zeros in
     * the mapped, preallocated part; beyond it, a shorter file. */
    if (a->map && off + size <= a->alloc && a->alloc <= a->map_len) {
        memset(a->map + off, 0, size);
        return CALYPSO_OK;
    }
    if (cy_os_ftruncate(a->fd, off) == 0) {
        a->alloc = off;
        if (a->zeroed > off) a->zeroed = off;
        return CALYPSO_OK;
    }
    __atomic_store_n(&db->broken, 1, __ATOMIC_RELAXED);
    return CALYPSO_EIO;
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
    cy_wrlock(&db->files_lock);
    rc = cy_files_add(db, fid, fd, 0, 0);
    if (!rc) {
        rc = cy_files_activate(db, cy_files_find(db, fid));
        cy_files_bound(db);   /* never evicts the active file */
    }
    cy_unlock(&db->files_lock);
    if (rc) {
        cy_os_close(fd);
        cy_os_unlink(path);
        return cy_err(db, rc, "adding datafile %s", path);
    }
    return CALYPSO_OK;
}

/* Seals the active file (its data made durable and its preallocated tail
 * cut first, so that a hint may point at it) and starts the next one.
 * write_mu held. */
CY_INTERNAL int cy_files_rotate(calypso *db)
{
    cy_file *old = db->active;
    char path[4096];
    int rc = cy_files_trim_active(db);
    if (!rc && (rc = cy_os_fdatasync(old->fd)) < 0) {
        cy_dir_data_path(db, old->fid, path, sizeof path);
        rc = cy_err_errno(db, rc, "fdatasync", path);
    }
    if (rc) return rc;
    pthread_mutex_lock(&db->sync_mu);
    __atomic_store_n(&db->synced_seq, db->written_seq, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&db->sync_cv);
    pthread_mutex_unlock(&db->sync_mu);
    uint32_t fid;
    if ((rc = cy_ids_take(db, CY_IDS_REGULAR, &fid)) || (rc = cy_files_create(db, fid))) return rc;
    cy_wrlock(&db->files_lock);
    old->sealed = 1;
    /* Its mapping stays for reads; the descriptor is needed no more,
     * unless a record went past the mapping. */
    if (old->map && old->fd >= 0 && old->size <= old->map_len) {
        cy_os_close(old->fd);
        old->fd = -1;
    }
    cy_unlock(&db->files_lock);
    __atomic_add_fetch(&db->bg_hints_pending, 1, __ATOMIC_RELAXED);
    cy_bg_kick(db);
    return CALYPSO_OK;
}
