/*
 * recover.c: rebuilding the keydir at open. Each record replayed goes to
 * the keydir through cy_keydir_apply_rec (keydir.c), as the write path's
 * do, so that both agree on what a record means and on dead bytes.
 *
 * Open replays datafiles oldest to newest. A datafile with a valid hint
 * file is loaded from the hint (keys and locations, no values) for the
 * bytes the hint describes, and scanned record by record (every checksum
 * verified) after them; one without is scanned whole. There is no "index
 * is up to date" flag anywhere: a hint says how many bytes it describes,
 * and everything past them is always scanned, so nothing written after the
 * last clean close can be hidden.
 *
 * Damage (doc/format.md, "The torn-tail rule"): what a successful sync
 * covered is never lost. Rotation seals a file before its sync (files.c),
 * so the regular datafiles the watermark does not cover whole (the newest,
 * and those sealed after the last sync) can hold anything else. With a
 * WATERMARK (watermark.c: a lower bound of what the syncs covered), a bad
 * record in such a file at or past the watermark is a torn tail: the file
 * is cut there and the cut reported (unless all it drops is zeros, the
 * space allocated ahead). A sealed file can also come back shorter with
 * no bad record at all (its length not yet durable): the seal record at
 * the head of the next file names the length it was sealed at, and a file
 * found shorter than that ends what open keeps: the regular files from the
 * one with that seal on are dropped, none of them covered by a sync, since
 * syncs go in file order (cy_recover_chain). A file the seal names that is
 * not there was merged away (a merge syncs its inputs first, and a name
 * made after it could not be durable without its own). That holds
 * even with valid records after the damage, because the kernel writes a
 * shared mapping's pages back in any order and a power loss can leave a
 * hole before pages that reached the disk. A bad record below the
 * watermark, in any file the watermark covers whole, or a newest file
 * shorter than the watermark, is damage of synced data:
 * CALYPSO_ECORRUPT naming file and offset, unless auto_recovery is set:
 * then that file is cut at its last good record and the note says so.
 * Without a WATERMARK (a database no writable open of this release has
 * seen) the older rule holds: a bad record in the newest file is a torn
 * tail only when no valid record follows it.
 *
 * A read-only handle changes nothing: a torn tail is left in place (and
 * reported, unless a writer is live: then it is a write under way), and
 * it keeps the descriptor of every datafile it replays (files.c, hold_fd),
 * so that a writer's merge can unlink them beneath it.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// >> datafile scan -------------------------------------------------------------

/* 1 if a whole, valid record starts anywhere in (off, end of file). A
 * crash can leave only unfinished writes after the last good record: a
 * record torn part-way, zeros of preallocated or never-written pages, or
 * bytes garbled by a power loss. A valid record after the damage instead
 * means the damage is not a torn tail. Costs one pass over the rest of the
 * file, and only when damage is found. */
static int cy_scan_valid_after(cy_scan *s, uint64_t off)
{
    uint64_t start = off + 1;
    /* The records inside a batch carry checksums of their own: when the
     * damaged record is a batch whose header still parses, only what
     * follows the whole batch counts. */
    int64_t hgot = cy_scan_fill(s, off, CY_REC_MAX_HDR);
    cy_rec b;
    if (hgot > 0 && cy_rec_parse(s->buf + (off - s->buf_off), (size_t)hgot, &b) == 1 &&
        b.type == CY_REC_BATCH) {
        uint64_t end = off + b.hdr + b.vlen;
        if (end >= s->size) return 0;
        start = end;
    }
    for (uint64_t at = start; at + 6 <= s->size; at++) {
        int64_t got = cy_scan_fill(s, at, CY_REC_MAX_HDR);
        if (got < 6) return 0;
        const uint8_t *p = s->buf + (at - s->buf_off);
        if ((p[4] & ~CY_REC_NS) < CY_REC_PUT || (p[4] & ~CY_REC_NS) > CY_REC_SEAL) continue;
        cy_rec r;
        if (cy_rec_parse(p, (size_t)got, &r) != 1) continue;
        uint64_t rsize = r.hdr + r.klen + r.vlen;
        if (at + rsize > s->size || rsize > (256u << 20)) continue;
        if ((got = cy_scan_fill(s, at, (size_t)rsize)) != (int64_t)rsize) continue;
        p = s->buf + (at - s->buf_off);
        if (!cy_rec_verify(p, (size_t)rsize, &r)) return 1;
    }
    return 0;
}

/* 1 if every byte from off to the end of the file is zero (space allocated
 * ahead of the data, or pages that never reached the disk), 0 if not, or a
 * negative code. */
static int cy_scan_zeros_after(cy_scan *s, uint64_t off)
{
    while (off < s->size) {
        uint64_t left = s->size - off;
        int64_t got = cy_scan_fill(s, off, left < (1u << 20) ? (size_t)left : (1u << 20));
        if (got <= 0) return got < 0 ? (int)got : 1;
        const uint8_t *p = s->buf + (off - s->buf_off);
        for (int64_t i = 0; i < got; i++)
            if (p[i]) return 0;
        off += (uint64_t)got;
    }
    return 1;
}

/* Handles a bad record at off; returns OK to stop scanning this file (it
 * was cut or its tail ignored) or an error. `newest`: the file may have a
 * torn tail (the newest regular file, or a sealed one the watermark does
 * not cover whole); `synced` is what the watermark says a sync covered of
 * it (CY_WM_NONE: no watermark). */
static int cy_scan_damage(cy_scan *s, uint64_t off, int newest, int torn, uint64_t synced,
                          const char *why)
{
    calypso *db = s->db;
    int below = newest && synced != CY_WM_NONE;   /* damage of synced data */
    if (!(newest && torn) && !db->opt.auto_recovery)
        return cy_err(db, CALYPSO_ECORRUPT, "%s at offset %llu: %s%s", s->path,
                      (unsigned long long)off, why,
                      below ? " (in data a sync covered)" : "");
    if (newest && torn && db->writer_live) {
        s->size = off;   /* read-only beside a writer: nothing to report */
        return CALYPSO_OK;
    }
    uint64_t dropped = s->size - off;
    int zeros = 1;
    if (newest && torn && synced != CY_WM_NONE && (zeros = cy_scan_zeros_after(s, off)) < 0)
        return zeros;
    if (!db->opt.read_only) {
        int rc = cy_os_ftruncate(s->fd, off);
        if (!rc) rc = cy_os_fdatasync(s->fd);
        if (rc) return cy_err_errno(db, rc, "truncate", s->path);
    }
    if (!(newest && torn))
        cy_note(db, "auto-recovery dropped %llu bytes of %s from offset %llu (%s)",
                        (unsigned long long)dropped, s->path, (unsigned long long)off, why);
    else if (!zeros)
        cy_note(db, "cut %llu bytes off the end of %s at offset %llu, past the %llu "
                        "bytes a sync covered: writes no sync covered, left unfinished by a "
                        "crash (%s)", (unsigned long long)dropped, s->path,
                        (unsigned long long)off, (unsigned long long)synced, why);
    s->size = off;
    return CALYPSO_OK;
}

typedef struct cy_replay { calypso *db; uint32_t fid; uint64_t off; } cy_replay;

/* Applies one entry of a record at its place in the file. */
static int cy_replay_entry(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    cy_replay *q = ctx;
    return cy_keydir_apply_rec(q->db, r, rec + r->hdr, q->fid, q->off + rel,
                               (uint32_t)(r->hdr + r->klen + r->vlen));
}

/* Replays the records of datafile fid from `off` to its end. For a file
 * that may have a torn tail (`newest`, as cy_scan_damage says), `synced`
 * is the watermark's bound (CY_WM_NONE: none). A batch is
 * applied whole: its one checksum covers every record in it, so a batch
 * torn by a crash fails as one record (the torn-tail rule cuts it off). */
static int cy_scan_file(calypso *db, uint32_t fid, int fd, uint64_t *size, int newest,
                        uint64_t off, uint64_t synced)
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
            /* Beside a live writer, what follows the last whole record of
             * its file is a write under way: the end of what there is. */
            int torn = newest && (synced == CY_WM_NONE
                                      ? db->writer_live || !cy_scan_valid_after(&s, off)
                                      : off >= synced);
            rc = cy_scan_damage(&s, off, newest, torn, synced, why);
            break;
        }
        uint64_t rsize = r.hdr + r.klen + r.vlen;
        cy_replay q = { db, fid, off };
        rc = cy_rec_entries(p, &r, cy_replay_entry, &q);
        if (rc == CALYPSO_ECORRUPT)
            rc = cy_err(db, rc, "%s at offset %llu: a batch whose records do not parse", s.path,
                        (unsigned long long)off);
        else if (rc) rc = cy_err(db, rc, "loading %s", s.path);
        else if (r.type == CY_REC_BATCH) cy_files_dead_add(db, fid, r.hdr);   /* its header */
        off += rsize;
    }
    *size = s.size;
    cy_scan_close(&s);
    return rc;
}

// >> open-time replay -------------------------------------------------------------

/* Replays datafile fid. `newest`: the newest regular file, which becomes
 * the active one. A sealed regular file the watermark does not cover whole
 * may have a torn tail too (rotation seals a file before its sync). Such a
 * file is synced here (a read-write open), so that its hint, written
 * later, describes synced data only: after a crash of the process alone
 * what it holds may still be in the page cache only. */
static int cy_recover_file(calypso *db, uint32_t fid, int has_hint, int newest, uint32_t head,
                           int *synced_here)
{
    uint64_t synced = cy_wm_limit(db, fid);
    int maytorn = newest || (!(fid & CY_FID_MERGED) && synced != CY_WM_NONE &&
                             synced != CY_WM_ALL);
    if (!maytorn) synced = CY_WM_NONE;
    char path[4096];
    cy_dir_data_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, db->opt.read_only || !maytorn ? O_RDONLY : O_RDWR, 0);
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
    f->head = head;   /* before its hint is loaded: see cy_hint_load */
    uint64_t covers = 0;
    rc = CALYPSO_ECORRUPT;
    if (has_hint) {
        uint64_t hint_bytes = 0;
        rc = cy_hint_load(db, fid, size, &covers, &hint_bytes);
        if (rc == CALYPSO_ENOMEM || covers == UINT64_MAX) {
            cy_os_close(fd);
            return rc == CALYPSO_ENOMEM ? cy_err(db, rc, "loading the hint of %s", path) : rc;
        }
        if (!rc) cy_files_set_hint(db, f, hint_bytes, covers);
    }
    if (rc || covers < size) {
        if (rc && db->opt.auto_recovery && !newest && !db->opt.read_only) {
            /* A sealed file may be cut by auto-recovery: it needs a
             * writable descriptor for that. */
            int wfd = cy_os_open(path, O_RDWR, 0);
            if (wfd >= 0) { cy_os_close(fd); fd = wfd; }
        }
        rc = cy_scan_file(db, fid, fd, &size, maytorn, rc ? 0 : covers, synced);
        f->size = size;
        cy_files_recount(db, f);
    }
    if (!rc && maytorn && !newest && !db->opt.read_only) {
        if ((rc = cy_os_fdatasync(fd)) < 0) rc = cy_err_errno(db, rc, "fdatasync", path);
        *synced_here = 1;
    }
    if (!rc && !newest && db->opt.read_only) {
        /* Kept to the end: a writer may merge the file away meanwhile. */
        cy_files_hold_fd(f, fd);
        return CALYPSO_OK;
    }
    if (rc || !newest) {
        cy_os_close(fd);
        return rc;
    }
    f->fd = fd;          /* the newest file's descriptor stays open */
    __atomic_add_fetch(&db->files.open, 1, __ATOMIC_RELAXED);
    return CALYPSO_OK;
}

// >> the seal chain ----------------------------------------------------------------

/* The seal record datafile fid starts with: 1 with the file and size it
 * names, 0 when it starts with none (made by an earlier release, or at an
 * open), or an error. */
static int cy_recover_seal_of(calypso *db, uint32_t fid, uint32_t *prev, uint64_t *size,
                              uint32_t *head)
{
    char path[4096];
    cy_dir_data_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    uint8_t buf[CY_REC_SEAL_MAX];
    int64_t got = cy_os_pread(fd, buf, sizeof buf, 0);
    cy_os_close(fd);
    if (got < 0) return cy_err_errno(db, (int)got, "read", path);
    cy_rec r;
    if (cy_rec_parse(buf, (size_t)got, &r) != 1 || r.type != CY_REC_SEAL) return 0;
    uint64_t rsize = r.hdr + r.vlen;
    /* A damaged seal is the file's own damage: its scan judges it. */
    if (rsize > (uint64_t)got || cy_rec_verify(buf, (size_t)rsize, &r) ||
        cy_rec_seal_of(buf, &r, prev, size) || (*prev & CY_FID_MERGED))
        return 0;
    *head = (uint32_t)rsize;
    return 1;
}

/* Open dropped what regular datafiles fids[0..n) held: written after a
 * sealed file that came back shorter, none covered by a sync. A read-only
 * handle leaves them in place and does not replay them. */
static int cy_recover_drop(calypso *db, uint32_t short_fid, const uint32_t *fids, uint32_t n)
{
    char path[4096];
    if (!db->opt.read_only) {
        for (uint32_t i = 0; i < n; i++) {
            cy_dir_hint_path(db, fids[i], path, sizeof path);
            int rc = cy_os_unlink(path);
            if (rc < 0 && rc != -ENOENT) return cy_err_errno(db, rc, "remove", path);
            cy_dir_data_path(db, fids[i], path, sizeof path);
            if ((rc = cy_os_unlink(path)) < 0) return cy_err_errno(db, rc, "remove", path);
        }
        int rc = cy_os_sync_dir(db->path);
        if (rc < 0) return cy_err_errno(db, rc, "fsync directory", db->path);
    }
    cy_dir_data_path(db, short_fid, path, sizeof path);
    /* Beside a live writer (read-only) it is no crash: the file named was
     * still growing when this open read it, and the files after it are
     * left out of this view, which ends where that read did. */
    if (!db->writer_live)
        cy_note(db, "%s %u datafile%s written after %s, which lost its end to a crash before a "
                "sync covered it (writes no sync covered)",
                db->opt.read_only ? "left out" : "removed", n, n == 1 ? "" : "s", path);
    return CALYPSO_OK;
}

/* Checks the seal record at the head of regular datafile fid (not yet
 * replayed; *head: the seal's size, 0 if it has none) against the file it
 * names: 1 when that file came back shorter than it was sealed at, beyond
 * what the watermark covers (fid and the regular files after it are to be
 * dropped); 0 when the chain holds; or an error reading fid. */
static int cy_recover_chain(calypso *db, uint32_t fid, uint32_t *head)
{
    uint32_t prev = 0;
    uint64_t sealed_at = 0;
    *head = 0;
    int rc = cy_recover_seal_of(db, fid, &prev, &sealed_at, head);
    if (rc <= 0) return rc;
    cy_file *p = cy_files_find(db, prev);
    if (!p || p->size >= sealed_at) return 0;   /* merged away, or whole */
    /* Shorter where the watermark covers it, it is damage of synced data:
     * judged by the file's own records, as before seals existed (a bad
     * record fails open; auto-recovery cut it, and the files after it
     * stay). Beyond the watermark, none of the writes from this file on
     * were synced: open keeps what came before them. */
    uint64_t synced = cy_wm_limit(db, prev);
    if (synced == CY_WM_NONE || synced == CY_WM_ALL || synced >= sealed_at) return 0;
    return 1;
}

/* Leaves out of the listing the files db->merge.skip_fids names (a reader
 * beside an unfinished merge: see cy_merge_recover), and forgets them. */
static void cy_recover_skip(calypso *db, uint32_t *fids, uint32_t *n, uint8_t *has_hint)
{
    uint32_t w = 0;
    for (uint32_t i = 0; i < *n; i++) {
        int skip = 0;
        for (uint32_t j = 0; j < db->merge.nskip && !skip; j++)
            skip = db->merge.skip_fids[j] == fids[i];
        if (skip) continue;
        fids[w] = fids[i];
        has_hint[w++] = has_hint[i];
    }
    *n = w;
    cy_free(db->merge.skip_fids);
    db->merge.skip_fids = NULL;
    db->merge.nskip = 0;
}

/* Ends the bulk loads of the keydirs replay filled. */
static void cy_recover_loaded(calypso *db)
{
    db->loading = 0;
    cy_art_bulk(&db->catalog.ns0.keydir, 0);
    for (uint32_t i = 0; i < db->catalog.n; i++) cy_art_bulk(&db->catalog.cat[i]->keydir, 0);
}

CY_INTERNAL int cy_recover(calypso *db)
{
    uint32_t *fids = NULL, n = 0;
    uint8_t *has_hint = NULL;
    int rc = cy_merge_recover(db);
    if (rc) return rc;
    if ((rc = cy_dir_scan(db, &fids, &n, &has_hint))) {
        cy_free(db->merge.skip_fids);
        db->merge.skip_fids = NULL;
        db->merge.nskip = 0;
        return rc;
    }
    if (db->merge.skip_fids) cy_recover_skip(db, fids, &n, has_hint);
    if ((rc = cy_dir_meta(db, n == 0))) goto out;
    if ((rc = cy_wm_load(db))) goto out;
    if ((rc = cy_ids_load(db, fids, n))) goto out;
    /* Replay fills the keydirs in bulk: ns0's from here, each other
     * namespace's from its create (cy_ns_apply; open starts with none);
     * cy_recover_loaded ends it. */
    db->loading = 1;
    cy_art_bulk(&db->catalog.ns0.keydir, 1);
    /* Merged files (ids with CY_FID_MERGED, which sort last) replay first;
     * then regular files oldest to newest. The newest regular file is the
     * one that may have a torn tail, and becomes the active file. */
    uint32_t nreg = 0, dropped = 0;
    int synced_here = 0;
    while (nreg < n && !(fids[nreg] & CY_FID_MERGED)) nreg++;
    for (uint32_t j = 0; j < n && !rc; j++) {
        uint32_t i = (j + nreg) % n;
        uint32_t head = 0;
        if (i < nreg && (rc = cy_recover_chain(db, fids[i], &head)) == 1) {
            rc = cy_recover_drop(db, fids[i - 1], fids + i, nreg - i);
            dropped = nreg - i;
            nreg = i;
            break;
        }
        if (!rc)
            rc = cy_recover_file(db, fids[i], has_hint[i], nreg > 0 && i == nreg - 1, head,
                                 &synced_here);
    }
    cy_recover_loaded(db);
    if (rc) goto out;
    cy_ns_recovered(db);
    cy_file *newest = nreg ? cy_files_find(db, fids[nreg - 1]) : NULL;
    uint32_t newest_fid = newest ? newest->fid : 0;
    uint64_t newest_size = newest ? newest->size : 0;
    if ((rc = cy_wm_check(db, newest_fid, newest_size)) || db->opt.read_only) goto out;
    /* The names of the sealed files synced above may not be durable yet
     * (rotation leaves that to a later sync, which a crash may have
     * prevented). */
    if (synced_here && (rc = cy_os_sync_dir(db->path)) < 0) {
        rc = cy_err_errno(db, rc, "fsync directory", db->path);
        goto out;
    }
    if ((rc = cy_wm_open(db, newest_fid, newest_size))) goto out;
    if (!newest || dropped) {
        /* After a drop the newest file left stays sealed; a new one,
         * sealed onto it, becomes active. */
        uint32_t fid;
        if (!(rc = cy_ids_take(db, CY_IDS_REGULAR, &fid)))
            rc = cy_files_create(db, fid, newest_fid, newest_size);
    } else {
        rc = cy_files_activate(db, newest);
        /* On a full disk the full file stays active (the next write tries
         * to rotate again): the database must open so that keys can be
         * read, deleted and merged away. Only the rotation's failure is
         * forgiven: a file that could not be made active fails the open. */
        if (!rc && newest->size >= db->opt.max_datafile_size &&
            (rc = cy_files_rotate(db)) == CALYPSO_ENOSPC)
            rc = CALYPSO_OK;
    }
    /* Sealed files without a valid hint get one in the background (which
     * looks for them). */
    __atomic_add_fetch(&db->bg.hints_pending, 1, __ATOMIC_RELAXED);
out:
    cy_free(fids);
    cy_free(has_hint);
    return rc;
}
