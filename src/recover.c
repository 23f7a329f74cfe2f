/*
 * recover.c: rebuilding the keydir at open, and the one function that
 * applies a record to the keydir (used by replay and by the write path, so
 * that both agree on what a record means and on dead-byte accounting).
 *
 * Open replays datafiles oldest to newest. A datafile with a valid hint
 * file is loaded from the hint (keys and locations, no values) for the
 * bytes the hint describes, and scanned record by record (every checksum
 * verified) after them; one without is scanned whole. There is no "index
 * is up to date" flag anywhere: a hint says how many bytes it describes,
 * and everything past them is always scanned, so nothing written after the
 * last clean close can be hidden.
 *
 * Damage: a bad record in the newest datafile with no valid record after it
 * is a torn tail (writes a crash interrupted, or the zeros of space
 * allocated ahead; never acknowledged under SYNC_ALWAYS): the file is cut
 * back to its last whole record. Any other bad record is CALYPSO_ECORRUPT
 * naming file and offset, unless auto_recovery is set: then that file is
 * cut at its last good record and the note says so.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

CY_INTERNAL void cy_dead_add(calypso *db, uint32_t fid, uint64_t bytes)
{
    db->dead += bytes;
    cy_file *f = cy_files_find(db, fid);
    if (f) f->dead += bytes;
}

CY_INTERNAL const cy_loc *cy_keydir_get(calypso *db, const void *key, size_t klen,
                                        uint64_t *expiry)
{
    const cy_loc *l = cy_art_search(&db->keydir, key, klen);
    *expiry = l && (l->fid & CY_LOC_TTL) ? cy_ttl_get(db, key, klen) : 0;
    return l;
}

CY_INTERNAL int cy_keydir_apply(calypso *db, int type, const uint8_t *key, size_t klen,
                                uint64_t expiry, uint32_t fid, uint64_t off, uint32_t size)
{
    cy_loc old;
    if (type == CY_REC_DEL) {
        if (cy_art_delete(&db->keydir, key, klen, &old)) {
            if (old.fid & CY_LOC_TTL) cy_ttl_clear(db, key, klen);
            cy_dead_add(db, old.fid & CY_LOC_FIDMASK, old.size);
        }
        cy_dead_add(db, fid, size);   /* a tombstone is dead once applied */
        return CALYPSO_OK;
    }
    cy_loc loc = { off, fid | (expiry ? CY_LOC_TTL : 0), size };
    int rc = cy_art_insert(&db->keydir, key, klen, &loc, &old);
    if (rc < 0) return rc;
    int replaced = rc == 1;
    if (expiry) {
        if ((rc = cy_ttl_set(db, key, klen, expiry)) < 0) {
            /* Put the keydir back as it was: replacing allocates nothing. */
            if (replaced) cy_art_insert(&db->keydir, key, klen, &old, NULL);
            else cy_art_delete(&db->keydir, key, klen, NULL);
            return rc;
        }
    } else if (replaced && (old.fid & CY_LOC_TTL)) {
        cy_ttl_clear(db, key, klen);
    }
    if (replaced) cy_dead_add(db, old.fid & CY_LOC_FIDMASK, old.size);
    return CALYPSO_OK;
}

// >> datafile scan -------------------------------------------------------------

/* 1 if a whole, valid record starts anywhere in (off, end of file). A
 * crash can leave only unfinished writes after the last good record: a
 * record torn part-way, zeros of preallocated or never-written pages, or
 * bytes garbled by a power loss. A valid record after the damage instead
 * means the damage is not a torn tail. Costs one pass over the rest of the
 * file, and only when damage is found. */
static int cy_scan_valid_after(cy_scan *s, uint64_t off)
{
    for (uint64_t at = off + 1; at + 6 <= s->size; at++) {
        int64_t got = cy_scan_fill(s, at, CY_REC_MAX_HDR);
        if (got < 6) return 0;
        const uint8_t *p = s->buf + (at - s->buf_off);
        if (p[4] < CY_REC_PUT || p[4] > CY_REC_DEL) continue;
        cy_rec r;
        if (cy_rec_parse(p, (size_t)got, &r) != 1) continue;
        uint64_t rsize = r.hdr + r.klen + r.vlen;
        if (at + rsize > s->size || rsize > (256u << 20)) continue;
        if ((got = cy_scan_fill(s, at, (size_t)rsize)) != (int64_t)rsize) continue;
        p = s->buf + (at - s->buf_off);
        if (cy_crc(p + 4, (size_t)rsize - 4, NULL, 0) == r.crc) return 1;
    }
    return 0;
}

/* Handles a bad record at off; returns OK to stop scanning this file (it
 * was cut or its tail ignored) or an error. */
static int cy_scan_damage(cy_scan *s, uint64_t off, int newest, int torn, const char *why)
{
    calypso *db = s->db;
    if (!(newest && torn) && !db->opt.auto_recovery)
        return cy_err(db, CALYPSO_ECORRUPT, "%s at offset %llu: %s", s->path,
                      (unsigned long long)off, why);
    uint64_t dropped = s->size - off;
    if (!db->opt.read_only) {
        int rc = cy_os_ftruncate(s->fd, off);
        if (!rc) rc = cy_os_fdatasync(s->fd);
        if (rc) return cy_err_errno(db, rc, "truncate", s->path);
    }
    if (!(newest && torn)) {
        size_t used = strlen(db->note);
        snprintf(db->note + used, sizeof db->note - used,
                 "%sdropped %llu bytes of %s from offset %llu (%s)", used ? "; " : "",
                 (unsigned long long)dropped, s->path, (unsigned long long)off, why);
    }
    s->size = off;
    return CALYPSO_OK;
}

/* Replays the records of datafile fid from `off` to its end. */
static int cy_scan_file(calypso *db, uint32_t fid, int fd, uint64_t *size, int newest,
                        uint64_t off)
{
    cy_scan s;
    int rc = cy_scan_open(&s, db, fid, fd);
    if (rc) return rc;
    s.size = *size;
    while (off < s.size && rc == CALYPSO_OK) {
        cy_rec r;
        const uint8_t *p = NULL;
        const char *why = NULL;
        int got = cy_scan_record(&s, off, &r, &p, &why);
        if (got < 0) { rc = got; break; }
        if (got == 0) {
            int torn = newest && !cy_scan_valid_after(&s, off);
            rc = cy_scan_damage(&s, off, newest, torn, why);
            break;
        }
        uint64_t rsize = r.hdr + r.klen + r.vlen;
        rc = cy_keydir_apply(db, r.type, p + r.hdr, (size_t)r.klen, r.expiry, fid, off,
                             (uint32_t)rsize);
        if (rc) rc = cy_err(db, rc, "loading %s", s.path);
        off += rsize;
    }
    *size = s.size;
    cy_scan_close(&s);
    return rc;
}

// >> open-time replay -------------------------------------------------------------

static int cy_recover_file(calypso *db, uint32_t fid, int has_hint, int newest)
{
    char path[4096];
    cy_dir_data_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, db->opt.read_only || !newest ? O_RDONLY : O_RDWR, 0);
    if (fd < 0 && !newest && db->opt.auto_recovery && !db->opt.read_only)
        fd = cy_os_open(path, O_RDWR, 0);
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    uint64_t size = 0;
    int rc = cy_os_fsize(fd, &size);
    if (rc < 0) {
        cy_os_close(fd);
        return cy_err_errno(db, rc, "stat", path);
    }
    if ((rc = cy_files_add(db, fid, -1, size, !newest))) {
        cy_os_close(fd);
        return cy_err(db, rc, "loading %s", path);
    }
    cy_file *f = cy_files_find(db, fid);
    uint64_t covers = 0;
    rc = CALYPSO_ECORRUPT;
    if (has_hint) {
        uint64_t hint_bytes = 0;
        rc = cy_hint_load(db, fid, size, &covers, &hint_bytes);
        if (rc == CALYPSO_ENOMEM || covers == UINT64_MAX) {
            cy_os_close(fd);
            return rc == CALYPSO_ENOMEM ? cy_err(db, rc, "loading the hint of %s", path) : rc;
        }
        if (!rc) {
            f->hint_size = hint_bytes;
            f->hint_covers = covers;
        }
    }
    if (rc || covers < size) {
        if (rc && db->opt.auto_recovery && !newest && !db->opt.read_only) {
            /* A sealed file may be cut by auto-recovery: it needs a
             * writable descriptor for that. */
            int wfd = cy_os_open(path, O_RDWR, 0);
            if (wfd >= 0) { cy_os_close(fd); fd = wfd; }
        }
        rc = cy_scan_file(db, fid, fd, &size, newest, rc ? 0 : covers);
        f->size = size;
    }
    if (rc || !newest) {
        cy_os_close(fd);
        return rc;
    }
    f->fd = fd;          /* the newest file's descriptor stays open */
    db->open_files++;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_recover(calypso *db)
{
    uint32_t *fids = NULL, n = 0;
    uint8_t *has_hint = NULL;
    int rc = cy_merge_recover(db);
    if (rc) return rc;
    if ((rc = cy_dir_scan(db, &fids, &n, &has_hint))) return rc;
    if ((rc = cy_dir_meta(db, n == 0))) goto out;
    if ((rc = cy_ids_load(db, fids, n))) goto out;
    /* Merged files (ids with CY_FID_MERGED, which sort last) replay first;
     * then regular files oldest to newest. The newest regular file is the
     * one that may have a torn tail, and becomes the active file. */
    uint32_t nreg = 0;
    while (nreg < n && !(fids[nreg] & CY_FID_MERGED)) nreg++;
    for (uint32_t j = 0; j < n && !rc; j++) {
        uint32_t i = (j + nreg) % n;
        rc = cy_recover_file(db, fids[i], has_hint[i], nreg > 0 && i == nreg - 1);
    }
    if (rc || db->opt.read_only) goto out;
    cy_file *newest = nreg ? cy_files_find(db, fids[nreg - 1]) : NULL;
    if (!newest) {
        uint32_t fid;
        if (!(rc = cy_ids_take(db, CY_IDS_REGULAR, &fid))) rc = cy_files_create(db, fid);
    } else {
        rc = cy_files_activate(db, newest);
        if (!rc && newest->size >= db->opt.max_datafile_size) rc = cy_files_rotate(db);
        /* On a full disk the full file stays active (the next write tries
         * to rotate again): the database must open so that keys can be
         * read, deleted and merged away. */
        if (rc == CALYPSO_ENOSPC) rc = CALYPSO_OK;
    }
    /* Sealed files without a valid hint get one in the background. */
    for (uint32_t i = 0; i < n; i++)
        if (i + 1 != nreg && cy_files_find(db, fids[i])->hint_covers < cy_files_find(db, fids[i])->size)
            __atomic_add_fetch(&db->bg_hints_pending, 1, __ATOMIC_RELAXED);
out:
    cy_free(fids);
    cy_free(has_hint);
    return rc;
}
