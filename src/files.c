/*
 * files.c: the table of datafiles, their mappings and descriptors, and
 * appending to the active file.
 *
 * The table (cy_ftab) is published whole behind db->files.ftab and never edited
 * in place: adding or removing a file builds a new table under write_mu,
 * publishes it, and hands the old one to the limbo list (epoch.c). So a
 * get takes no lock on it: inside its epoch it loads the pointer, finds the
 * file, and copies the record out of the mapping.
 *
 * Sealed files are read through a read-only mapping of the whole file,
 * made on first use by the reader that needs it, under that file's own
 * mutex (other files' readers never wait for it); the descriptor is closed
 * once mapped, so mappings do not hold descriptors. Past max_open_files,
 * the least recently used sealed file is evicted: its mapping goes to the
 * limbo list and is unmapped after a grace period, since a reader inside
 * its epoch may be copying from it. The active file has a writable shared
 * mapping of max_datafile_size bytes, made once; the file itself is
 * extended ahead of the data in chunks with fallocate, so a write through
 * the mapping never needs a syscall and cannot hit a full disk. Bytes
 * copied into a shared mapping are in the page cache at once: like a
 * write(2), they survive the process being killed. Under SYNC_ALWAYS,
 * where every write is followed by an fdatasync, the active file is
 * written with pwrite instead (cy_files_zeros says why); its readers
 * still read through the mapping. A record that does not
 * fit the mapping (larger than max_datafile_size, alone in its file) is
 * written with pwritev and read with pread under the file's mutex. At
 * sealing and at close, the file is cut back to its data.
 *
 * A descriptor is closed only under its file's mutex and only while no
 * group-commit leader has it pinned for an fdatasync (cy_files_pin_active).
 *
 * No other file walks the table or touches a mapping: they find a file by
 * id (cy_files_find), read a record (cy_files_with_record), or ask for a
 * list (cy_files_snapshot, cy_files_hint_owed) or the totals
 * (cy_files_totals). The totals (files, bytes of records, bytes on disk)
 * are kept as files come and go and grow, so that stats and the merge
 * trigger never walk the table: every change to a file's size or
 * allocation is followed by cy_files_recount, under write_mu (or before
 * the handle is shared); hint sizes change through cy_files_set_hint.
 *
 * A read-only handle keeps one more descriptor per sealed file, hold_fd,
 * from its open to its close: a writer in another process may merge the
 * file away and unlink it, so the handle never opens a datafile by name
 * after its open; it maps (and reads) through hold_fd. max_open_files
 * bounds its mappings; hold_fd is not counted.
 */
#include "engine.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Space is allocated ahead of the active file's data in chunks of an
 * eighth of what it holds, between 1 and 8 MiB: few fallocate calls, and
 * little space held ahead of the data. */
#define CY_FILES_CHUNK_MIN (1ull << 20)
#define CY_FILES_CHUNK_MAX (8ull << 20)

/* Under SYNC_ALWAYS (or once the application calls calypso_sync itself:
 * db->files.zero_ahead) every write ends in an fdatasync, and a sync that
 * covers the first write into a preallocated block must also commit the
 * block's change from unwritten to written: a journal commit, which made
 * such a sync about twice as slow (ext4 here), every 9th sync with four
 * writers. Writing, this far ahead of the data, the zeros that space reads
 * as anyway (by pwrite under SYNC_ALWAYS, through the mapping otherwise)
 * lets one sync convert 64 blocks at once. */
#define CY_FILES_ZERO_AHEAD (256u << 10)

/* Under SYNC_ALWAYS the active file is written with pwrite, not through
 * its mapping (which readers still use). An fdatasync must clean every
 * page written through a shared mapping: it write-protects the page and
 * flushes its TLB entry, and the next write into that page faults to make
 * it writable again, once per sync. Measured here (a VM, ext4): a 116-byte
 * write and fdatasync took 145-148 us through the mapping against 92-115
 * us with pwrite, and calypso's own syncs under one writer 140 us against
 * the machine's 92. The zeros written ahead then go by pwrite too, from
 * this buffer. */
static const uint8_t cy_files_zeros[64u << 10];

/* A write through the active file's mapping into a page not yet in its
 * page tables takes a fault, one per 4 KiB page; in a VM each fault costs
 * several microseconds, about a tenth of a 1M-key fill here. The writer
 * fills the page tables for the next CY_FILES_POPULATE bytes with one
 * call when it reaches them instead (MADV_POPULATE_WRITE, Linux 5.14; a
 * hint: without it the pages fault in as before). Those pages are dirty
 * zeros until the data reaches them, which is what the preallocated space
 * reads as anyway; a sync before then writes them once more, at most this
 * many bytes. */
#define CY_FILES_POPULATE (1u << 20)

/* Evicted mappings waiting in limbo before the background thread is woken
 * to unmap them (it also does every period). */
#define CY_FILES_LIMBO_KICK 64u

/* The current table. Inside an epoch, or with write_mu held (it is only
 * replaced under write_mu), the pointer and every file it lists stay
 * valid. */
static cy_ftab *cy_files_table(calypso *db)
{
    return __atomic_load_n(&db->files.ftab, __ATOMIC_ACQUIRE);
}

static int cy_files_index(const cy_ftab *t, uint32_t fid)
{
    uint32_t lo = 0, hi = t ? t->n : 0;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (t->f[mid]->fid < fid) lo = mid + 1;
        else hi = mid;
    }
    return t && lo < t->n && t->f[lo]->fid == fid ? (int)lo : -1;
}

CY_INTERNAL cy_file *cy_files_find(calypso *db, uint32_t fid)
{
    cy_ftab *t = cy_files_table(db);
    int i = cy_files_index(t, fid);
    return i < 0 ? NULL : t->f[i];
}

// >> totals -------------------------------------------------------------------

/* Moves a total from `from` to `to` for one file, atomically: the totals
 * change under write_mu, except the disk total when the syncer of sealed
 * files trims one (cy_files_trim_sealed), and readers take no lock. */
static void cy_files_total_move(uint64_t *total, uint64_t from, uint64_t to)
{
    __atomic_add_fetch(total, to - from, __ATOMIC_RELAXED);   /* modulo 2^64 */
}

CY_INTERNAL void cy_files_recount(calypso *db, cy_file *f)
{
    uint64_t disk = f->alloc > f->size ? f->alloc : f->size;
    cy_files_total_move(&db->files.size, f->counted_size, f->size);
    cy_files_total_move(&db->files.disk, f->counted_disk, disk);
    f->counted_size = f->size;
    f->counted_disk = disk;
}

/* Takes f's share out of the totals (it leaves the table). write_mu held. */
static void cy_files_uncount(calypso *db, cy_file *f)
{
    cy_files_total_move(&db->files.size, f->counted_size, 0);
    cy_files_total_move(&db->files.disk, f->counted_disk, 0);
    f->counted_size = f->counted_disk = 0;
    __atomic_sub_fetch(&db->files.hints_disk, __atomic_load_n(&f->hint_size, __ATOMIC_RELAXED),
                       __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_files_set_hint(calypso *db, cy_file *f, uint64_t size, uint64_t covers)
{
    uint64_t old = __atomic_exchange_n(&f->hint_size, size, __ATOMIC_RELAXED);
    __atomic_add_fetch(&db->files.hints_disk, size - old, __ATOMIC_RELAXED);
    __atomic_store_n(&f->hint_covers, covers, __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_files_totals(calypso *db, uint32_t *files, uint64_t *size, uint64_t *disk)
{
    *files = __atomic_load_n(&db->files.n, __ATOMIC_RELAXED);
    *size = __atomic_load_n(&db->files.size, __ATOMIC_RELAXED);
    *disk = __atomic_load_n(&db->files.disk, __ATOMIC_RELAXED) +
            __atomic_load_n(&db->files.hints_disk, __ATOMIC_RELAXED);
}

// >> the table ------------------------------------------------------------------

static void cy_files_free_table(cy_retired *r)
{
    cy_free(r);   /* the table begins with its cy_retired */
}

static cy_ftab *cy_files_new_table(uint32_t n)
{
    cy_ftab *t = cy_malloc(sizeof *t + (size_t)(n ? n : 1) * sizeof(cy_file *));
    if (t) t->n = n;
    return t;
}

/* Publishes t in place of the current table, which readers may still be
 * walking: it is released after a grace period. */
static void cy_files_publish(calypso *db, cy_ftab *t)
{
    cy_ftab *old = db->files.ftab;
    __atomic_store_n(&db->files.ftab, t, __ATOMIC_SEQ_CST);
    __atomic_store_n(&db->files.n, t->n, __ATOMIC_RELAXED);
    if (old) cy_epoch_retire(&db->epoch, &old->retired, cy_files_free_table);
}

CY_INTERNAL int cy_files_add(calypso *db, uint32_t fid, int fd, uint64_t size, int sealed)
{
    cy_ftab *old = db->files.ftab;
    uint32_t n = old ? old->n : 0;
    cy_ftab *t = cy_files_new_table(n + 1);
    cy_file *f = cy_calloc(1, sizeof *f);
    if (!t || !f) {
        cy_free(t);
        cy_free(f);
        return CALYPSO_ENOMEM;
    }
    f->fid = fid;
    f->fd = fd;
    f->hold_fd = -1;
    f->size = size;
    f->sealed = sealed;
    pthread_mutex_init(&f->mu, NULL);
    uint32_t j = 0;
    for (uint32_t i = 0; i < n && old->f[i]->fid < fid; i++) t->f[j++] = old->f[i];
    t->f[j++] = f;
    for (uint32_t i = j - 1; i < n; i++) t->f[j++] = old->f[i];
    cy_files_publish(db, t);
    cy_files_recount(db, f);
    if (fd >= 0) __atomic_add_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
    return CALYPSO_OK;
}

static int cy_files_cmp_fid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

CY_INTERNAL int cy_files_remove(calypso *db, const uint32_t *fids, uint32_t n, cy_file **out)
{
    cy_ftab *old = db->files.ftab;
    cy_ftab *t = cy_files_new_table(old->n);
    if (!t) return CALYPSO_ENOMEM;
    for (uint32_t i = 0; i < n; i++) out[i] = NULL;
    uint32_t w = 0;
    for (uint32_t i = 0; i < old->n; i++) {
        cy_file *f = old->f[i];
        const uint32_t *hit = bsearch(&f->fid, fids, n, sizeof *fids, cy_files_cmp_fid);
        if (hit) {
            out[hit - fids] = f;
            cy_files_uncount(db, f);
        } else {
            t->f[w++] = f;
        }
    }
    t->n = w;
    cy_files_publish(db, t);
    return CALYPSO_OK;
}

static int cy_files_is_open(const cy_file *f)
{
    return f->fd >= 0 || f->map;
}

CY_INTERNAL void cy_files_hold_fd(cy_file *f, int fd)
{
    f->hold_fd = fd;
}

/* Closes f's descriptor unless a leader has it pinned. f->mu held. */
static void cy_files_close_fd(calypso *db, cy_file *f)
{
    if (f->fd < 0 || __atomic_load_n(&f->pins, __ATOMIC_SEQ_CST)) return;
    if (f->fd != f->hold_fd) cy_os_close(f->fd);
    __atomic_store_n(&f->fd, -1, __ATOMIC_RELAXED);
    if (!f->map) __atomic_sub_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_files_release(calypso *db, cy_file *f)
{
    if (!f) return;
    /* A group-commit leader pins the active file for its fdatasync, and
     * the file may be sealed and merged away meanwhile: it is freed only
     * once that sync is over (a pin lasts one fdatasync at most). */
    while (__atomic_load_n(&f->pins, __ATOMIC_SEQ_CST)) sched_yield();
    if (cy_files_is_open(f)) __atomic_sub_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
    if (f->map) cy_os_munmap(f->map, f->map_len);
    if (f->fd >= 0 && f->fd != f->hold_fd) cy_os_close(f->fd);
    if (f->hold_fd >= 0) cy_os_close(f->hold_fd);
    pthread_mutex_destroy(&f->mu);
    cy_free(f);
}

/* A mapping taken from an evicted file, unmapped after a grace period. */
typedef struct cy_old_map {
    cy_retired retired;
    void      *map;
    uint64_t   len;
} cy_old_map;

static void cy_files_unmap_old(cy_retired *r)
{
    cy_old_map *o = (cy_old_map *)r;
    cy_os_munmap(o->map, o->len);
    cy_free(o);
}

/* Evicts victim's mapping and descriptor, if nobody is opening it and no
 * leader syncs it. 1 if it closed anything. */
static int cy_files_evict(calypso *db, cy_file *victim)
{
    if (pthread_mutex_trylock(&victim->mu) != 0) return 0;
    int was_open = cy_files_is_open(victim);
    if (victim->map) {
        cy_old_map *o = cy_malloc(sizeof *o);
        if (o) {
            o->map = victim->map;
            o->len = victim->map_len;
            __atomic_store_n(&victim->map, NULL, __ATOMIC_SEQ_CST);
            cy_epoch_retire(&db->epoch, &o->retired, cy_files_unmap_old);
        }
    }
    if (victim->fd >= 0 && !__atomic_load_n(&victim->pins, __ATOMIC_SEQ_CST)) {
        if (victim->fd != victim->hold_fd) cy_os_close(victim->fd);
        __atomic_store_n(&victim->fd, -1, __ATOMIC_RELAXED);
    }
    int closed = was_open && !cy_files_is_open(victim);
    if (closed) __atomic_sub_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&victim->mu);
    return closed;
}

/* Keeps open files within max_open_files (the active file aside) by
 * evicting the least recently used sealed ones, never `keep`. Inside an
 * epoch or under write_mu. */
static void cy_files_bound(calypso *db, cy_file *keep)
{
    cy_file *active = __atomic_load_n(&db->files.active, __ATOMIC_ACQUIRE);
    uint32_t cap = db->opt.max_open_files + (active ? 1u : 0u);
    int evicted = 0;
    while (__atomic_load_n(&db->files.open, __ATOMIC_RELAXED) > cap) {
        cy_ftab *t = cy_files_table(db);
        cy_file *victim = NULL;
        for (uint32_t i = 0; t && i < t->n; i++) {
            cy_file *f = t->f[i];
            /* Only sealed files: the active one and one being made active
             * are written through their descriptor. */
            if (f == active || f == keep || !__atomic_load_n(&f->sealed, __ATOMIC_ACQUIRE) ||
                __atomic_load_n(&f->pins, __ATOMIC_RELAXED) ||
                (!__atomic_load_n(&f->map, __ATOMIC_RELAXED) && __atomic_load_n(&f->fd, __ATOMIC_RELAXED) < 0))
                continue;
            if (!victim || __atomic_load_n(&f->last_used, __ATOMIC_RELAXED) <
                           __atomic_load_n(&victim->last_used, __ATOMIC_RELAXED))
                victim = f;
        }
        if (!victim || !cy_files_evict(db, victim)) break;
        evicted = 1;
    }
    /* The background thread unmaps what waits in limbo every period; a
     * long list gets it going sooner. */
    if (evicted && __atomic_load_n(&db->epoch.nlimbo, __ATOMIC_RELAXED) >= CY_FILES_LIMBO_KICK)
        cy_wake_kick(&db->bg.wake);
}

/* Maps a sealed file, or opens its descriptor when a mapping cannot cover
 * it (empty, unmappable, or a record written past the active mapping).
 * f->mu held. */
static int cy_files_open(calypso *db, cy_file *f)
{
    if (cy_files_is_open(f) && (f->fd >= 0 || f->size <= f->map_len)) return CALYPSO_OK;
    char path[4096];
    cy_dir_data_path(db, f->fid, path, sizeof path);
    /* A read-only handle opens nothing by name after its open: the writer
     * may have merged the file away since (its name gone, the descriptor
     * held since open still reads it). */
    int fd = f->hold_fd >= 0 ? f->hold_fd : cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    int was_open = cy_files_is_open(f);
    void *m = NULL;
    if (!f->map && f->size > 0 && cy_os_mmap(fd, f->size, &m) == 0) {
        if (fd != f->hold_fd) cy_os_close(fd);
        __atomic_store_n(&f->map_len, f->size, __ATOMIC_RELAXED);
        __atomic_store_n(&f->map, (uint8_t *)m, __ATOMIC_RELEASE);
    } else {
        __atomic_store_n(&f->fd, fd, __ATOMIC_RELAXED);
    }
    if (!was_open) __atomic_add_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
    /* Newest use, so that bounding the cache evicts some other file. */
    __atomic_store_n(&f->last_used, __atomic_add_fetch(&db->files.tick, 1, __ATOMIC_RELAXED),
                     __ATOMIC_RELAXED);
    return CALYPSO_OK;
}

/* The slow path of a record read: the file is not mapped, or its mapping
 * does not cover the record. Opens it under its own mutex; then either the
 * mapping covers the record, or it is read with pread (still under the
 * mutex, which keeps the descriptor open). */
static int cy_files_read_slow(calypso *db, cy_file *f, uint64_t off, uint32_t size,
                              cy_record_fn fn, void *ctx)
{
    uint8_t stackbuf[4096];
    uint8_t *buf = NULL;
    pthread_mutex_lock(&f->mu);
    int rc = cy_files_open(db, f);
    const uint8_t *rec = rc ? NULL : cy_files_mapped(f, off, size);
    if (!rc && !rec) {
        buf = size <= sizeof stackbuf ? stackbuf : cy_malloc(size);
        if (!buf) {
            rc = cy_err(db, CALYPSO_ENOMEM, "reading a record of %u bytes", size);
        } else {
            int64_t got = cy_os_pread(f->fd, buf, size, off);
            char path[4096];
            if (got < 0 || (uint64_t)got != size) cy_dir_data_path(db, f->fid, path, sizeof path);
            if (got < 0) rc = cy_err_errno(db, (int)got, "read", path);
            else if ((uint64_t)got != size)
                rc = cy_err(db, CALYPSO_ECORRUPT, "%s: record at offset %llu runs past the end",
                            path, (unsigned long long)off);
        }
    }
    pthread_mutex_unlock(&f->mu);
    if (!rc) cy_files_bound(db, f);
    /* A mapping stays valid to the end of the caller's epoch, even if an
     * eviction took it from f meanwhile. */
    if (!rc) rc = fn(rec ? rec : buf, ctx);
    if (buf && buf != stackbuf) cy_free(buf);
    return rc;
}

CY_INTERNAL int cy_files_with_record(calypso *db, cy_file *f, uint64_t off, uint32_t size,
                                     cy_record_fn fn, void *ctx)
{
    const uint8_t *rec = cy_files_mapped(f, off, size);
    if (CY_LIKELY(rec != NULL)) {
        /* The common case: verify and copy straight out of the page cache,
         * no syscall, no lock and no intermediate buffer. */
        cy_files_touch(db, f);
        return fn(rec, ctx);
    }
    return cy_files_read_slow(db, f, off, size, fn, ctx);
}

// >> lists for other modules ----------------------------------------------------

CY_INTERNAL cy_file_info *cy_files_snapshot(calypso *db, uint32_t *n)
{
    const cy_ftab *t = cy_files_table(db);   /* stable under write_mu */
    *n = t ? t->n : 0;
    cy_file_info *out = cy_calloc(*n ? *n : 1, sizeof *out);
    for (uint32_t i = 0; out && i < *n; i++) {
        const cy_file *f = t->f[i];
        out[i] = (cy_file_info){ f->fid, f == db->files.active, f->size, f->dead + f->head,
                                 __atomic_load_n(&f->hint_size, __ATOMIC_RELAXED), -1 };
        /* A read-only handle's files stay open for its life: the held
         * descriptor, or the newest file's, which is never closed. */
        if (db->opt.read_only) out[i].held_fd = f->hold_fd >= 0 ? f->hold_fd : f->fd;
    }
    if (!out) *n = 0;
    return out;
}

CY_INTERNAL uint32_t cy_files_hint_owed(calypso *db)
{
    uint32_t fid = 0;
    uint32_t ep = cy_epoch_enter(&db->epoch);
    const cy_ftab *t = cy_files_table(db);
    for (uint32_t i = 0; t && i < t->n && !fid; i++) {
        cy_file *f = t->f[i];
        if (__atomic_load_n(&f->sealed, __ATOMIC_ACQUIRE) &&
            !__atomic_load_n(&f->unsynced, __ATOMIC_ACQUIRE) &&
            !__atomic_load_n(&f->hint_failed, __ATOMIC_RELAXED) &&
            __atomic_load_n(&f->hint_covers, __ATOMIC_RELAXED) < f->size)
            fid = f->fid;
    }
    cy_epoch_leave(&db->epoch, ep);
    return fid;
}

CY_INTERNAL void cy_files_mark_mixed(calypso *db, uint32_t fid)
{
    cy_file *f = cy_files_find(db, fid);
    if (f && !__atomic_load_n(&f->mixed, __ATOMIC_RELAXED))
        __atomic_store_n(&f->mixed, 1, __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_files_close_all(calypso *db)
{
    /* Sealed files whose sync never ran (it failed, or the open did):
     * their pins go with the list. */
    for (uint32_t i = 0; i < db->files.nsealing; i++)
        __atomic_sub_fetch(&db->files.sealing[i]->pins, 1, __ATOMIC_SEQ_CST);
    db->files.nsealing = 0;
    cy_ftab *t = db->files.ftab;
    for (uint32_t i = 0; t && i < t->n; i++) cy_files_release(db, t->f[i]);
    __atomic_store_n(&db->files.ftab, NULL, __ATOMIC_RELEASE);
    cy_free(t);
    __atomic_store_n(&db->files.n, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->files.size, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->files.disk, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->files.hints_disk, 0, __ATOMIC_RELAXED);
    cy_epoch_reclaim(&db->epoch);   /* no reader is left: returns at once */
    db->files.open = 0;
    db->files.active = NULL;
    db->files.sealing_bytes = 0;
    db->files.dir_made = db->files.dir_synced = 0;
}

CY_INTERNAL int cy_files_hold_open(calypso *db, cy_file *f)
{
    pthread_mutex_lock(&f->mu);
    int rc = cy_files_open(db, f);
    pthread_mutex_unlock(&f->mu);
    return rc;
}

CY_INTERNAL cy_file *cy_files_pin_active(calypso *db)
{
    cy_file *a = db->files.active;
    if (a) __atomic_add_fetch(&a->pins, 1, __ATOMIC_SEQ_CST);
    return a;
}

CY_INTERNAL void cy_files_unpin(calypso *db, cy_file *f)
{
    (void)db;
    if (f) __atomic_sub_fetch(&f->pins, 1, __ATOMIC_SEQ_CST);
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
    cy_files_recount(db, f);
    void *m = NULL;
    if (cy_os_mmap_rw(f->fd, db->opt.max_datafile_size, &m) == 0) {
        __atomic_store_n(&f->map_len, db->opt.max_datafile_size, __ATOMIC_RELAXED);
        __atomic_store_n(&f->map, (uint8_t *)m, __ATOMIC_RELEASE);
#ifdef MADV_POPULATE_READ
        /* Fill the page tables for what the file holds (as MAP_POPULATE
         * does for sealed files); a hint only, so failure is fine. */
        if (len > 0) madvise(m, (size_t)(len < f->map_len ? len : f->map_len), MADV_POPULATE_READ);
#endif
    }
    __atomic_store_n(&db->files.active, f, __ATOMIC_RELEASE);
    return CALYPSO_OK;
}

/* Cuts f's file at the end of its records, with what its allocation and
 * the zeros and page tables ahead of the data say; the caller brings the
 * totals up to date. */
static int cy_files_cut_tail(calypso *db, cy_file *f)
{
    int rc = cy_os_ftruncate(f->fd, f->size);
    if (rc < 0) {
        char path[4096];
        cy_dir_data_path(db, f->fid, path, sizeof path);
        return cy_err_errno(db, rc, "truncate", path);
    }
    f->alloc = f->size;
    __atomic_store_n(&f->alloc_bg, f->size, __ATOMIC_RELAXED);
    if (f->zeroed > f->size) f->zeroed = f->size;
    if (f->populated > f->size) f->populated = f->size;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_trim_active(calypso *db)
{
    cy_file *a = db->files.active;
    if (!a) return CALYPSO_OK;
    uint64_t bg = __atomic_load_n(&a->alloc_bg, __ATOMIC_ACQUIRE);
    if (bg > a->alloc) a->alloc = bg;   /* the background thread is stopped */
    if (a->alloc == a->size) return CALYPSO_OK;
    int rc = cy_files_cut_tail(db, a);
    if (!rc) cy_files_recount(db, a);
    return rc;
}

static uint64_t cy_files_page_size(void)
{
    static uint64_t page;   /* the same value whoever sets it */
    if (!__atomic_load_n(&page, __ATOMIC_RELAXED))
        __atomic_store_n(&page, (uint64_t)sysconf(_SC_PAGESIZE), __ATOMIC_RELAXED);
    return __atomic_load_n(&page, __ATOMIC_RELAXED);
}

/* Fills the page tables of the active file's mapping for writing over
 * [a->populated, to), to <= a->alloc. */
static void cy_files_populate(cy_file *a, uint64_t to)
{
    if (to <= a->populated) return;
#ifdef MADV_POPULATE_WRITE
    uint64_t from = a->populated & ~(cy_files_page_size() - 1);
    madvise(a->map + from, (size_t)(to - from), MADV_POPULATE_WRITE);
#endif
    a->populated = to;
}

/* The next allocation's size for a. */
static uint64_t cy_files_chunk(const cy_file *a)
{
    uint64_t chunk = a->alloc / 8 < CY_FILES_CHUNK_MIN ? CY_FILES_CHUNK_MIN : a->alloc / 8;
    return chunk > CY_FILES_CHUNK_MAX ? CY_FILES_CHUNK_MAX : chunk;
}

/* Makes sure the file has disk blocks for `end` bytes. The background
 * thread allocates ahead of the writer (cy_files_allocate_ahead), asked
 * once less than half a chunk is left; the writer allocates itself only
 * when it has not kept up. write_mu held. */
static int cy_files_reserve(calypso *db, cy_file *a, uint64_t end)
{
    uint64_t bg = __atomic_load_n(&a->alloc_bg, __ATOMIC_ACQUIRE);
    if (bg > a->alloc) {   /* what the background thread allocated */
        a->alloc = bg;
        cy_files_recount(db, a);
    }
    if (end <= a->alloc) {
        if (a->alloc - end < cy_files_chunk(a) / 2 && a->alloc < a->map_len &&
            !__atomic_load_n(&db->bg.allocate, __ATOMIC_RELAXED)) {
            __atomic_store_n(&db->bg.allocate, 1, __ATOMIC_RELAXED);
            cy_wake_kick(&db->bg.wake);
        }
        return CALYPSO_OK;
    }
    uint64_t chunk = cy_files_chunk(a);
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
    cy_files_recount(db, a);
    return CALYPSO_OK;
}

/* Allocating ahead in the background: fallocate waits for the file
 * system's journal while another file's sync holds it (10-20 ms here
 * beside a merge writing its output), and a writer that allocated for
 * itself under write_mu made every put wait as long. The background
 * thread allocates the chunk after what is allocated, holding no lock
 * over the call, and leaves the end in a->alloc_bg, which the writer takes
 * up when it gets there (cy_files_reserve). `allocating` tells the syncer
 * of sealed files, which trims a file's allocation (cy_files_trim_sealed),
 * to wait for the call when rotation sealed the file meanwhile. */
CY_INTERNAL void cy_files_allocate_ahead(calypso *db)
{
    pthread_mutex_lock(&db->write_mu);
    cy_file *a = db->files.active;
    if (!a || !a->map || a->fd < 0 || __atomic_load_n(&db->health.broken, __ATOMIC_RELAXED)) {
        pthread_mutex_unlock(&db->write_mu);
        return;
    }
    uint64_t from = a->alloc, bg = __atomic_load_n(&a->alloc_bg, __ATOMIC_RELAXED);
    if (bg > from) from = bg;
    uint64_t target = from + cy_files_chunk(a);
    if (target > a->map_len) target = a->map_len;
    if (target <= from) {
        pthread_mutex_unlock(&db->write_mu);
        return;
    }
    cy_files_pin_active(db);   /* the descriptor stays open */
    int fd = a->fd;
    __atomic_store_n(&a->allocating, 1, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&db->write_mu);
    /* A failure (no space) is left to the writer, which reports it. */
    if (cy_os_fallocate(fd, from, target - from) == 0)
        __atomic_store_n(&a->alloc_bg, target, __ATOMIC_RELEASE);
    __atomic_store_n(&a->allocating, 0, __ATOMIC_RELEASE);
    cy_files_unpin(db, a);
}

/* Writes zeros into a's preallocated space from where its data will end
 * (end) on, CY_FILES_ZERO_AHEAD bytes ahead of it, by pwrite (see
 * cy_files_zeros). Returns OK or a negative errno. */
static int cy_files_zero_ahead_pwrite(cy_file *a, uint64_t end)
{
    if (end <= a->zeroed) return 0;
    uint64_t to = end + CY_FILES_ZERO_AHEAD;
    if (to > a->alloc) to = a->alloc;
    for (uint64_t at = a->zeroed > end ? a->zeroed : end; at < to;) {
        size_t n = to - at < sizeof cy_files_zeros ? (size_t)(to - at) : sizeof cy_files_zeros;
        int rc = cy_os_pwrite(a->fd, cy_files_zeros, n, at);
        if (rc < 0) return rc;
        at += n;
    }
    a->zeroed = to > end ? to : end;
    return 0;
}

CY_INTERNAL int cy_files_append(calypso *db, const struct iovec *iov, int cnt, size_t size)
{
    cy_file *a = db->files.active;
    uint64_t off = a->size;
    int rc;
    if (a->map && off + size <= a->map_len && db->opt.sync == CALYPSO_SYNC_ALWAYS) {
        /* Every write is synced: by pwrite, zeros first (see above). */
        if ((rc = cy_files_reserve(db, a, off + size))) return rc;
        rc = cy_files_zero_ahead_pwrite(a, off + size);
        if (!rc) rc = cy_os_pwritev(a->fd, iov, cnt, off);
    } else if (a->map && off + size <= a->map_len) {
        if ((rc = cy_files_reserve(db, a, off + size))) return rc;
        if (db->files.zero_ahead) {
            /* The application syncs after its writes (calypso_sync):
             * populate no further than the zeros go, which the next sync
             * writes anyway. */
            if (off + size > a->zeroed) {
                uint64_t from = a->zeroed > off ? a->zeroed : off;
                uint64_t to = off + size + CY_FILES_ZERO_AHEAD;
                if (to > a->alloc) to = a->alloc;
                cy_files_populate(a, to);
                memset(a->map + from, 0, (size_t)(to - from));
                a->zeroed = to;
            }
        } else if (off + size > a->populated) {
            uint64_t to = off + size + CY_FILES_POPULATE;
            cy_files_populate(a, to < a->alloc ? to : a->alloc);
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
    a->size = off + size;
    cy_files_recount(db, a);
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_unappend(calypso *db, uint64_t off, size_t size)
{
    cy_file *a = db->files.active;
    a->size = off;
    /* What a failed or undone write left must read as nothing: zeros in
     * the mapped, preallocated part; beyond it, a shorter file. */
    cy_files_recount(db, a);
    if (a->map && off + size <= a->alloc && a->alloc <= a->map_len) {
        memset(a->map + off, 0, size);
        return CALYPSO_OK;
    }
    /* No allocation ahead may land after the cut (none starts while
     * write_mu is held). */
    while (__atomic_load_n(&a->allocating, __ATOMIC_ACQUIRE)) sched_yield();
    if (cy_os_ftruncate(a->fd, off) == 0) {
        a->alloc = off;
        __atomic_store_n(&a->alloc_bg, off, __ATOMIC_RELAXED);
        if (a->zeroed > off) a->zeroed = off;
        if (a->populated > off) a->populated = off;
        cy_files_recount(db, a);
        return CALYPSO_OK;
    }
    __atomic_store_n(&db->health.broken, 1, __ATOMIC_RELAXED);
    return CALYPSO_EIO;
}

/* Creates an empty datafile fid and adds it to the table as the active
 * file. Its name is made durable here, or with `defer_dir_sync` (rotation)
 * by the next cy_files_sync_sealed, which runs before any sync of the new
 * file's data counts. write_mu held. */
static int cy_files_create_file(calypso *db, uint32_t fid, int defer_dir_sync)
{
    char path[4096];
    /* A hint left by a file of the same id that a merge removed must not
     * be taken for this file's. */
    cy_dir_hint_path(db, fid, path, sizeof path);
    cy_os_unlink(path);
    cy_dir_data_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDWR | O_CREAT | O_EXCL, db->opt.file_mode);
    if (fd < 0) return cy_err_errno(db, fd, "create", path);
    int rc = defer_dir_sync ? 0 : cy_os_sync_dir(db->path);
    if (rc < 0) {
        cy_os_close(fd);
        cy_os_unlink(path);
        return cy_err_errno(db, rc, "fsync directory", db->path);
    }
    rc = cy_files_add(db, fid, fd, 0, 0);
    if (!rc) {
        cy_file *f = cy_files_find(db, fid);
        if ((rc = cy_files_activate(db, f))) {
            /* The entry stays in the table (empty, never active), but not
             * the descriptor, closed below: the table's release at close
             * would close that number again, by then another file's. */
            __atomic_store_n(&f->fd, -1, __ATOMIC_RELAXED);
            __atomic_sub_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
        } else {
            cy_files_bound(db, NULL);   /* never evicts the active file */
        }
    }
    if (rc) {
        cy_os_close(fd);
        cy_os_unlink(path);
        return cy_err(db, rc, "adding datafile %s", path);
    }
    if (defer_dir_sync) db->files.dir_made++;   /* seal_mu held */
    return CALYPSO_OK;
}

CY_INTERNAL int64_t cy_files_append_seal(calypso *db)
{
    if (!db->files.seal_fid) return 0;
    uint8_t seal[CY_REC_SEAL_MAX];
    size_t n = cy_rec_encode_seal(seal, db->files.seal_fid, db->files.seal_size);
    struct iovec iov = { seal, n };
    cy_file *a = db->files.active;
    int rc = cy_files_append(db, &iov, 1, n);
    if (rc) return rc;
    a->head = (uint32_t)n;
    db->files.seal_fid = 0;
    return (int64_t)n;
}

CY_INTERNAL int cy_files_create(calypso *db, uint32_t fid, uint32_t prev_fid, uint64_t prev_size)
{
    int rc = cy_files_create_file(db, fid, 0);
    if (!rc) {
        db->files.seal_fid = prev_fid;
        db->files.seal_size = prev_size;
    }
    return rc;
}

// >> write-back through the mapping ------------------------------------------

/* Writing back pages that were written through the writable mapping
 * costs the writer more than the I/O itself when another thread does it:
 * to clean a page for I/O (fdatasync, sync_file_range) the kernel
 * write-protects each mapped page and flushes its TLB entry one page at a
 * time, interrupting every CPU that runs this process, the writer's among
 * them: one interrupt per 4 KiB page. (Measured: a background write-back
 * of every 64 MiB cost 25% of the put rate of a 1M-key fill.) So before
 * such a sync, the range's page-table entries are dropped (MADV_DONTNEED
 * on a shared file mapping keeps the data: the pages stay in the page
 * cache, still dirty), in one batched flush; the I/O then finds no mapped
 * page. Afterwards the range is mapped again, read-only and clean, so that
 * reads do not fault on it. Neither step can lose data, and a failure of
 * either is harmless (the sync only costs more), so both are hints.
 * Only ranges the writer no longer writes are dropped; a concurrent write
 * would still be safe (it faults the page back in). */
enum { CY_PAGES_DROP, CY_PAGES_FILL };

static void cy_files_pages(calypso *db, cy_file *f, uint64_t from, uint64_t to, int what)
{
    from &= ~(cy_files_page_size() - 1);
    uint32_t ep = cy_epoch_enter(&db->epoch);   /* keeps the mapping mapped */
    uint8_t *m = __atomic_load_n(&f->map, __ATOMIC_ACQUIRE);
    uint64_t len = m ? __atomic_load_n(&f->map_len, __ATOMIC_RELAXED) : 0;
    if (to > len) to = len;
    if (m && to > from) {
        if (what == CY_PAGES_DROP) madvise(m + from, (size_t)(to - from), MADV_DONTNEED);
#ifdef MADV_POPULATE_READ
        else madvise(m + from, (size_t)(to - from), MADV_POPULATE_READ);
#endif
    }
    cy_epoch_leave(&db->epoch, ep);
}

CY_INTERNAL void cy_files_drop_pages(calypso *db, cy_file *f, uint64_t from, uint64_t to)
{
    cy_files_pages(db, f, from, to, CY_PAGES_DROP);
}

CY_INTERNAL void cy_files_fill_pages(calypso *db, cy_file *f, uint64_t from, uint64_t to)
{
    cy_files_pages(db, f, from, to, CY_PAGES_FILL);
}

CY_INTERNAL int cy_files_writeback(calypso *db, cy_file *f, int fd, uint64_t from, uint64_t to)
{
    cy_files_pages(db, f, from, to, CY_PAGES_DROP);
    int rc = cy_os_writeback(fd, from, to - from);
    cy_files_pages(db, f, from, to, CY_PAGES_FILL);
    return rc;
}

/* Gives back the space allocated ahead of a sealed file's records, before
 * its sync. Rotation leaves this to the syncer of sealed files: shrinking
 * a file waits for the file system's journal, which the syncs of other
 * files may hold for milliseconds, and rotation runs under write_mu, so
 * every write would wait too. The file takes no more appends and only the
 * syncer (under seal_turn) changes its allocation now; its share of the
 * disk total moves atomically (cy_files_total_move). A crash before the
 * sync finds the zeros a crash before the sync always could. */
static int cy_files_trim_sealed(calypso *db, cy_file *f)
{
    while (__atomic_load_n(&f->allocating, __ATOMIC_ACQUIRE)) sched_yield();
    uint64_t bg = __atomic_load_n(&f->alloc_bg, __ATOMIC_ACQUIRE);
    if (f->alloc <= f->size && bg <= f->size) return CALYPSO_OK;
    int rc = cy_files_cut_tail(db, f);
    if (rc) return rc;
    cy_files_total_move(&db->files.disk, f->counted_disk, f->size);
    f->counted_disk = f->size;
    return CALYPSO_OK;
}

/* Syncs f, the oldest file on the sealing list, and takes it off. The
 * caller holds seal_turn (so that files are synced in order, and only it
 * takes files off), not seal_mu: a rotation meanwhile waits for no sync. */
static int cy_files_sync_oldest(calypso *db, cy_file *f)
{
    int trc = cy_files_trim_sealed(db, f);
    if (trc) return trc;   /* stays on the list: the next sync tries again */
    cy_files_pages(db, f, 0, f->size, CY_PAGES_DROP);   /* see above */
    int err = cy_os_fdatasync(f->fd);
    cy_files_pages(db, f, 0, f->size, CY_PAGES_FILL);
    if (err) return cy_db_sync_failed(db, err, f->fid);
    __atomic_store_n(&f->unsynced, 0, __ATOMIC_RELEASE);
    pthread_mutex_lock(&db->files.seal_mu);
    assert(db->files.nsealing && db->files.sealing[0] == f);
    db->files.nsealing--;
    memmove(db->files.sealing, db->files.sealing + 1,
            db->files.nsealing * sizeof *db->files.sealing);
    db->files.sealing_bytes -= f->size;
    pthread_mutex_unlock(&db->files.seal_mu);
    /* The watermark may name it whole: it is durable, and so is every
     * older regular file (they are synced in this order). */
    pthread_mutex_lock(&db->sync.mu);
    if (__atomic_load_n(&db->sync.synced_fid, __ATOMIC_RELAXED) <= f->fid) {
        __atomic_store_n(&db->sync.synced_fid, f->fid, __ATOMIC_RELAXED);
        __atomic_store_n(&db->sync.synced_off, f->size, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&db->sync.mu);
    /* Its mapping stays for reads; the descriptor is needed no more,
     * unless a record went past the mapping (or a group-commit leader still
     * syncs it: then eviction or close closes it later). */
    pthread_mutex_lock(&f->mu);
    __atomic_sub_fetch(&f->pins, 1, __ATOMIC_SEQ_CST);
    if (f->map && f->size <= f->map_len) cy_files_close_fd(db, f);
    pthread_mutex_unlock(&f->mu);
    return CALYPSO_OK;
}

/* Seals the active file and starts the next one. The sealed file's sync
 * and the new name's directory sync leave the writer's path: the file is
 * pinned on the sealing list and cy_files_sync_sealed makes it durable,
 * from the background thread (kicked here), from the next group commit
 * (whose writes come after it), or from whatever needs it synced first
 * (its hint, a merge, close). Until then a power loss can take any part
 * of it though newer files exist, so the new file starts with a seal
 * record naming the old file and its size (written with its first
 * record): open compares the two and,
 * when the sealed file came back shorter, keeps the files up to it and
 * drops the ones after (doc/format.md, "The torn-tail rule"). Only when
 * the syncs are CY_SEALING_MAX files or CY_SEALING_BYTES behind does the
 * writer sync the oldest itself. write_mu held. */
CY_INTERNAL int cy_files_rotate(calypso *db)
{
    cy_file *old = db->files.active;
    int rc;
    uint64_t cap = 2 * db->opt.max_datafile_size;
    if (cap < CY_SEALING_BYTES) cap = CY_SEALING_BYTES;
    uint32_t fid;
    if ((rc = cy_ids_take(db, CY_IDS_REGULAR, &fid))) return rc;
    /* Pinned before the new file exists: making it may evict the old one
     * (no longer active), which must keep its descriptor for the sync. */
    __atomic_add_fetch(&old->pins, 1, __ATOMIC_SEQ_CST);
    /* Only rotations add to the list, under write_mu: what is checked here
     * can only shrink before the add below. */
    pthread_mutex_lock(&db->files.seal_mu);
    int behind = db->files.nsealing &&
                 (db->files.nsealing == CY_SEALING_MAX || db->files.sealing_bytes + old->size > cap);
    pthread_mutex_unlock(&db->files.seal_mu);
    if (behind) rc = cy_files_sync_sealed(db);
    pthread_mutex_lock(&db->files.seal_mu);
    if (!rc && !(rc = cy_files_create_file(db, fid, 1))) {
        __atomic_store_n(&old->unsynced, 1, __ATOMIC_RELEASE);
        __atomic_store_n(&old->sealed, 1, __ATOMIC_RELEASE);
        db->files.sealing[db->files.nsealing++] = old;
        db->files.sealing_bytes += old->size;
    }
    pthread_mutex_unlock(&db->files.seal_mu);
    if (rc) {
        __atomic_sub_fetch(&old->pins, 1, __ATOMIC_SEQ_CST);
        return rc;
    }
    /* The seal goes in with the first record (cy_files_append_seal): a
     * new file takes no space before it holds something. */
    db->files.seal_fid = old->fid;
    db->files.seal_size = old->size;
    __atomic_add_fetch(&db->bg.hints_pending, 1, __ATOMIC_RELAXED);
    cy_wake_kick(&db->bg.wake);
    return CALYPSO_OK;
}

CY_INTERNAL int cy_files_sync_sealed(calypso *db)
{
    int rc = CALYPSO_OK;
    pthread_mutex_lock(&db->files.seal_turn);
    while (!rc) {
        pthread_mutex_lock(&db->files.seal_mu);
        cy_file *f = db->files.nsealing ? db->files.sealing[0] : NULL;
        uint32_t made = db->files.dir_made;
        pthread_mutex_unlock(&db->files.seal_mu);
        if (!f && made == db->files.dir_synced) break;
        if ((rc = cy_db_sync_error(db))) {
            /* no sync is tried again */
        } else if (f) {
            rc = cy_files_sync_oldest(db, f);
        } else {
            /* The names of the files rotation made up to `made`. */
            int err = cy_os_sync_dir(db->path);
            if (err < 0) rc = cy_db_sync_failed(db, err, 0);
            else db->files.dir_synced = made;
        }
    }
    pthread_mutex_unlock(&db->files.seal_turn);
    return rc;
}

// >> dead bytes ----------------------------------------------------------------

CY_INTERNAL void cy_files_dead_add(calypso *db, uint32_t fid, uint64_t bytes)
{
    db->files.dead += bytes;
    cy_file *f = cy_files_find(db, fid);
    if (f) f->dead += bytes;
}

CY_INTERNAL void cy_files_dead_drop(calypso *db, const cy_file *f)
{
    db->files.dead -= f->dead;
}
