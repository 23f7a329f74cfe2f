/*
 * ids.c: handing out datafile ids, and the IDS file that makes sure no id
 * is ever handed out twice.
 *
 * Two id spaces: regular datafiles (1 .. CY_FID_MERGED-1, one per rotation)
 * and merged datafiles (CY_FID_MERGED .. CY_LOC_FIDMASK, one per merge
 * output). An id names a file for as long as anything may point at it: a
 * cursor's window, a reader between its keydir lookup and its read, a
 * tombstone's victim field. Reusing one after its file is gone (a merge that
 * wrote nothing leaves no merged file to count from) makes such a pointer
 * land in another file's bytes, so ids only ever grow.
 *
 * IDS holds, per space, a limit: no id at or above it has ever been handed
 * out. Before an id at or above the limit is used, a new limit (the id plus
 * CY_IDS_CHUNK, so that one atomic write covers many rotations or merge
 * outputs) is made durable. At open the next id of each space starts at its
 * limit: ids below it may have been used by an earlier process (even one
 * that crashed before it created the file). A database without IDS (written
 * by an earlier calypso, or whose IDS was lost) gets limits derived from
 * the datafiles present, written at once by a read-write open; a limit
 * below a file present is raised to it.
 *
 * Lock: ids.mu, taken after write_mu (rotation holds it) and alone by a
 * merge or the background thread (which raises the regular limit ahead of
 * rotations: cy_ids_ahead); it is held across the IDS write, which is rare.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CY_IDS_CHUNK 64u

/* The first id past the end of a space. */
static uint64_t cy_ids_end(int space)
{
    return space == CY_IDS_MERGED ? (uint64_t)CY_LOC_FIDMASK + 1
           : space == CY_IDS_NS   ? (uint64_t)UINT32_MAX + 1 : CY_FID_MERGED;
}

static uint64_t cy_ids_start(int space)
{
    return space == CY_IDS_MERGED ? CY_FID_MERGED : 1;
}

/* Writes limits lim[] as IDS, atomically and durably. The namespace limit
 * is written only once a namespace was created: a database that never had
 * one keeps the two-number IDS of before. */
static int cy_ids_write(calypso *db, const uint64_t *lim)
{
    char buf[96];
    int n = lim[CY_IDS_NS] > 1
                ? snprintf(buf, sizeof buf, "ids %llu %llu %llu\n", (unsigned long long)lim[0],
                           (unsigned long long)lim[1], (unsigned long long)lim[2])
                : snprintf(buf, sizeof buf, "ids %llu %llu\n", (unsigned long long)lim[0],
                           (unsigned long long)lim[1]);
    return cy_dir_write_file(db, db->path, "IDS", buf, (size_t)n);
}

/* Parses "ids R M\n" or "ids R M N\n" into lim[]; 0 on success, -1 if it does not parse or
 * a limit lies outside its space. */
static int cy_ids_parse(const char *buf, uint64_t *lim)
{
    if (strncmp(buf, "ids ", 4) != 0) return -1;
    const char *p = buf + 4;
    for (int s = 0; s < 3; s++) {
        char *end;
        if (*p < '0' || *p > '9') return -1;
        errno = 0;
        unsigned long long v = strtoull(p, &end, 10);
        if (errno || end == p || v < cy_ids_start(s) || v > cy_ids_end(s)) return -1;
        lim[s] = v;
        p = end;
        if (s == 1 && *p == '\n') break;     /* no namespace limit: 1 */
        if (s < 2 && *p++ != ' ') return -1;
    }
    return strcmp(p, "\n") == 0 ? 0 : -1;
}

/* Reads IDS into lim[]: CALYPSO_OK, 1 when it does not exist, or an error. */
static int cy_ids_read(calypso *db, uint64_t *lim)
{
    char path[4200], buf[80];
    snprintf(path, sizeof path, "%s/IDS", db->path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd == -ENOENT) return 1;
    if (fd < 0) return cy_err_errno(db, fd, "open", path);
    int64_t n = cy_os_pread(fd, buf, sizeof buf - 1, 0);
    cy_os_close(fd);
    if (n < 0) return cy_err_errno(db, (int)n, "read", path);
    buf[n] = 0;
    if (cy_ids_parse(buf, lim))
        return cy_err(db, CALYPSO_ECORRUPT, "%s does not hold two file id limits", path);
    return CALYPSO_OK;
}

CY_INTERNAL int cy_ids_load(calypso *db, const uint32_t *fids, uint32_t n)
{
    uint64_t lim[3] = { cy_ids_start(CY_IDS_REGULAR), cy_ids_start(CY_IDS_MERGED),
                        cy_ids_start(CY_IDS_NS) };
    int rc = cy_ids_read(db, lim);
    if (rc < 0) return rc;
    int write = rc == 1;
    for (uint32_t i = 0; i < n; i++) {
        int s = (fids[i] & CY_FID_MERGED) ? CY_IDS_MERGED : CY_IDS_REGULAR;
        if (fids[i] + 1ull > lim[s]) {
            lim[s] = fids[i] + 1ull;
            write = 1;
        }
    }
    uint64_t next[3] = { lim[0], lim[1], lim[2] };
    /* A writer raises the regular limit now rather than in its first
     * rotation: rotations make no IDS write of their own (the background
     * thread keeps the limit ahead: cy_ids_ahead). */
    if (write && !db->opt.read_only && (rc = cy_ids_write(db, lim))) return rc;
    if (!db->opt.read_only) {
        /* Best effort: on a full disk the first rotation tries again. */
        uint64_t end = cy_ids_end(CY_IDS_REGULAR), at = next[CY_IDS_REGULAR];
        uint64_t ahead[3] = { lim[0], lim[1], lim[2] };
        ahead[CY_IDS_REGULAR] = at + CY_IDS_CHUNK < end ? at + CY_IDS_CHUNK : end;
        if (ahead[CY_IDS_REGULAR] > lim[CY_IDS_REGULAR] && cy_ids_write(db, ahead) == CALYPSO_OK)
            lim[CY_IDS_REGULAR] = ahead[CY_IDS_REGULAR];
        else cy_err_forget(db);
    }
    for (int s = 0; s < 3; s++) {
        db->ids.next[s] = next[s];
        db->ids.limit[s] = lim[s];
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_ids_take(calypso *db, int space, uint32_t *fid)
{
    int rc = CALYPSO_OK;
    pthread_mutex_lock(&db->ids.mu);
    uint64_t id = db->ids.next[space], end = cy_ids_end(space);
    if (id >= end) {
        rc = cy_err(db, CALYPSO_EIO, "%s ids are exhausted (the last is %llu)",
                    space == CY_IDS_MERGED ? "merged datafile"
                    : space == CY_IDS_NS   ? "namespace" : "regular datafile",
                    (unsigned long long)end - 1);
    } else if (id >= db->ids.limit[space]) {
        uint64_t lim[3] = { db->ids.limit[0], db->ids.limit[1], db->ids.limit[2] };
        lim[space] = id + CY_IDS_CHUNK < end ? id + CY_IDS_CHUNK : end;
        if (!(rc = cy_ids_write(db, lim))) db->ids.limit[space] = lim[space];
    }
    if (!rc) {
        db->ids.next[space] = id + 1;
        *fid = (uint32_t)id;
    }
    pthread_mutex_unlock(&db->ids.mu);
    return rc;
}

CY_INTERNAL void cy_ids_ahead(calypso *db, int space)
{
    pthread_mutex_lock(&db->ids.mu);
    uint64_t next = db->ids.next[space], end = cy_ids_end(space);
    if (next < end && db->ids.limit[space] - next < CY_IDS_CHUNK / 2) {
        uint64_t lim[3] = { db->ids.limit[0], db->ids.limit[1], db->ids.limit[2] };
        lim[space] = next + CY_IDS_CHUNK < end ? next + CY_IDS_CHUNK : end;
        /* A failure changes nothing: cy_ids_take tries again and reports. */
        if (lim[space] > db->ids.limit[space] && cy_ids_write(db, lim) == CALYPSO_OK)
            db->ids.limit[space] = lim[space];
    }
    pthread_mutex_unlock(&db->ids.mu);
}
