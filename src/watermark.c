/*
 * watermark.c: the durable "synced up to" watermark, the file WATERMARK.
 *
 * It holds a lower bound (fid, off) of what successful fdatasyncs of the
 * regular datafiles covered: bytes [0, off) of datafile fid, and all of
 * every regular datafile with a lower id (sealed files are synced whole,
 * oldest first, before any sync of a newer file counts: files.c). Open
 * uses it to tell the two kinds of damage in the datafiles it does not
 * cover whole apart (doc/format.md, "The torn-tail rule"): past the watermark
 * it is what a power loss leaves of writes no sync covered (the kernel
 * writes a shared mapping's dirty pages back in any order, so a hole can
 * sit before pages that did reach the disk), and the file is cut there;
 * below it, synced data was damaged, which is CALYPSO_ECORRUPT.
 *
 * The write path never pays for it. The two places that see an fdatasync
 * of a datafile succeed (group commit in commit.c, the sync of a sealed
 * file in files.c) only store db->sync.synced_fid and db->sync.synced_off,
 * under sync.mu. This module
 * writes that pair to disk from the background thread, at most every
 * CY_WM_INTERVAL_MS and only when it moved, and at close after the final
 * sync. So the file lags behind the truth, which a lower bound may: damage
 * between the two counts as a torn tail.
 *
 * The file is two 32-byte slots, at offsets 0 and 512, updated in place:
 * each write goes to the slot not holding the newest value, then one
 * fdatasync; a write torn by a crash spoils that slot only, and open takes
 * the valid slot with the higher sequence number. The file is created
 * whole and atomically (cy_dir_write_file) at the first writable open, so
 * that a database this release has opened always has one; a database
 * without it (written by an earlier release, and not yet opened for
 * writing by this one) opens by the older rule.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define CY_WM_NAME     "WATERMARK"
#define CY_WM_MAGIC    "CYWMARK1"
#define CY_WM_SLOT     32u        /* bytes of one slot                        */
#define CY_WM_STRIDE   512u       /* slot i at i * 512: separate sectors      */
#define CY_WM_FILE     1024u

struct cy_wm {
    int      present;     /* open found a WATERMARK (or must write one)     */
    int      rewrite;     /* open lowered or replaced it: write it whole    */
    uint32_t fid;         /* the value on disk                              */
    uint64_t off;
    uint64_t seq;         /* sequence number of the slot holding it         */
    uint32_t slot;        /* which slot that is: the next write takes the
                             other                                          */
    int      fd;          /* writable handle: the file, kept open; else -1  */
    uint64_t last_ns;     /* monotonic time of the last write               */
};

static uint32_t cy_wm_interval_ms = CY_WM_INTERVAL_MS;

CY_INTERNAL void cy_wm_set_interval(uint32_t ms)
{
    __atomic_store_n(&cy_wm_interval_ms, ms, __ATOMIC_RELAXED);
}

static uint64_t cy_wm_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cy_wm_path(const calypso *db, char *out, size_t cap)
{
    snprintf(out, cap, "%s/" CY_WM_NAME, db->path);
}

// >> slots ----------------------------------------------------------------------

/* magic[8] | seq u64 | fid u32 | off u64 | crc u32 (of the 28 bytes before) */
static void cy_wm_encode(uint8_t *p, uint64_t seq, uint32_t fid, uint64_t off)
{
    memcpy(p, CY_WM_MAGIC, 8);
    cy_put_u64(p + 8, seq);
    cy_put_u32(p + 16, fid);
    cy_put_u64(p + 20, off);
    cy_put_u32(p + 28, cy_crc(p, 28, NULL, 0));
}

/* 1 when the slot at p holds a valid value. */
static int cy_wm_decode(const uint8_t *p, uint64_t *seq, uint32_t *fid, uint64_t *off)
{
    if (memcmp(p, CY_WM_MAGIC, 8) != 0 || cy_get_u32(p + 28) != cy_crc(p, 28, NULL, 0))
        return 0;
    *seq = cy_get_u64(p + 8);
    *fid = cy_get_u32(p + 16);
    *off = cy_get_u64(p + 20);
    return 1;
}

// >> open --------------------------------------------------------------------------

CY_INTERNAL int cy_wm_load(calypso *db)
{
    cy_wm *w = cy_calloc(1, sizeof *w);
    if (!w) return cy_err(db, CALYPSO_ENOMEM, "allocating the watermark");
    w->fd = -1;
    db->wm = w;
    __atomic_store_n(&db->sync.synced_fid, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&db->sync.synced_off, 0, __ATOMIC_RELAXED);
    char path[4096];
    cy_wm_path(db, path, sizeof path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd == -ENOENT) return CALYPSO_OK;      /* the older rule applies */
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    uint8_t buf[CY_WM_FILE];
    memset(buf, 0, sizeof buf);
    int64_t got = cy_os_pread(fd, buf, sizeof buf, 0);
    cy_os_close(fd);
    if (got < 0) return cy_err_errno(db, (int)got, "read", path);
    w->present = 1;
    int found = 0;
    for (uint32_t i = 0; i < 2; i++) {
        uint64_t seq, off;
        uint32_t fid;
        if (!cy_wm_decode(buf + i * CY_WM_STRIDE, &seq, &fid, &off)) continue;
        if (found && seq <= w->seq) continue;
        found = 1;
        w->slot = i;
        w->seq = seq;
        w->fid = fid;
        w->off = off;
    }
    if (!found) {
        if (!db->opt.auto_recovery)
            return cy_err(db, CALYPSO_ECORRUPT, "%s: neither slot holds a valid watermark",
                          path);
        /* Nothing is known to be synced: every damage in the newest
         * datafile is then cut as a torn tail. */
        cy_note(db, "auto-recovery ignored " CY_WM_NAME ", whose slots are both damaged");
        w->rewrite = 1;
    }
    __atomic_store_n(&db->sync.synced_fid, w->fid, __ATOMIC_RELAXED);
    __atomic_store_n(&db->sync.synced_off, w->off, __ATOMIC_RELAXED);
    return CALYPSO_OK;
}

CY_INTERNAL uint64_t cy_wm_limit(calypso *db, uint32_t fid)
{
    cy_wm *w = db->wm;
    if (!w || !w->present) return CY_WM_NONE;
    if (w->fid < fid) return 0;          /* synced so far: older files only */
    if (w->fid > fid) return CY_WM_ALL;  /* a later file was synced: fid was sealed */
    return w->off;
}

CY_INTERNAL int cy_wm_check(calypso *db, uint32_t fid, uint64_t size)
{
    cy_wm *w = db->wm;
    if (!w || !w->present || w->off == 0 || w->fid < fid) return CALYPSO_OK;
    if (w->fid == fid && size >= w->off) return CALYPSO_OK;
    char path[4096], what[4200];
    cy_dir_data_path(db, w->fid, path, sizeof path);
    if (w->fid == fid)
        snprintf(what, sizeof what, "%s holds %llu bytes, fewer than the %llu a sync covered",
                 path, (unsigned long long)size, (unsigned long long)w->off);
    else
        snprintf(what, sizeof what, "%s is missing, though a sync covered %llu bytes of it",
                 path, (unsigned long long)w->off);
    if (!db->opt.auto_recovery) return cy_err(db, CALYPSO_ECORRUPT, "%s", what);
    cy_note(db, "auto-recovery went on although %s", what);
    w->rewrite = 1;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_wm_open(calypso *db, uint32_t fid, uint64_t size)
{
    cy_wm *w = db->wm;
    char path[4096];
    cy_wm_path(db, path, sizeof path);
    /* What recovery found bounds what can still be claimed synced. */
    if (w->fid > fid) {
        w->fid = fid;
        w->off = 0;
        w->rewrite = 1;
    } else if (w->fid == fid && w->off > size) {
        w->off = size;
        w->rewrite = 1;
    }
    if (!w->present || w->rewrite) {
        uint8_t buf[CY_WM_FILE];
        memset(buf, 0, sizeof buf);
        cy_wm_encode(buf, w->seq + 1, w->fid, w->off);
        int rc = cy_dir_write_file(db, db->path, CY_WM_NAME, buf, sizeof buf);
        if (rc) return rc;
        w->seq++;
        w->slot = 0;
        w->present = 1;
        w->rewrite = 0;
    }
    int fd = cy_os_open(path, O_RDWR, 0);
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    w->fd = fd;
    w->last_ns = cy_wm_mono_ns();
    __atomic_store_n(&db->sync.synced_fid, w->fid, __ATOMIC_RELAXED);
    __atomic_store_n(&db->sync.synced_off, w->off, __ATOMIC_RELAXED);
    return CALYPSO_OK;
}

// >> persisting ------------------------------------------------------------------

CY_INTERNAL void cy_wm_persist(calypso *db, int limited)
{
    cy_wm *w = db->wm;
    if (!w || w->fd < 0) return;
    uint64_t now = cy_wm_mono_ns();
    uint64_t every = (uint64_t)__atomic_load_n(&cy_wm_interval_ms, __ATOMIC_RELAXED) * 1000000u;
    if (limited && now - w->last_ns < every) return;
    /* The pair is stored under sync.mu: read it whole. */
    pthread_mutex_lock(&db->sync.mu);
    uint32_t fid = __atomic_load_n(&db->sync.synced_fid, __ATOMIC_RELAXED);
    uint64_t off = __atomic_load_n(&db->sync.synced_off, __ATOMIC_RELAXED);
    pthread_mutex_unlock(&db->sync.mu);
    if (fid == w->fid && off == w->off) return;
    uint8_t slot[CY_WM_SLOT];
    cy_wm_encode(slot, w->seq + 1, fid, off);
    /* The slot not holding the current value; after a failure the next
     * attempt writes the same one, so the valid slot is never touched. */
    uint64_t at = (uint64_t)(1 - w->slot) * CY_WM_STRIDE;
    if (cy_os_pwrite(w->fd, slot, sizeof slot, at) < 0 || cy_os_fdatasync(w->fd) < 0)
        return;   /* the file lags further: still a lower bound */
    w->slot = 1 - w->slot;
    w->seq++;
    w->fid = fid;
    w->off = off;
    w->last_ns = now;
}

CY_INTERNAL void cy_wm_close(calypso *db)
{
    cy_wm *w = db->wm;
    if (!w) return;
    cy_wm_persist(db, 0);
    if (w->fd >= 0) cy_os_close(w->fd);
    cy_free(w);
    db->wm = NULL;
}
