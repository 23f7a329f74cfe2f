/*
 * scan.c: reading a datafile from front to back, record by record, every
 * checksum verified. Open's replay, hint building and merge all read
 * datafiles this way; this is the one reader they share.
 *
 * Reads go through a buffer of at least 1 MiB (grown for a larger record),
 * so a scan costs one pread per megabyte rather than per record. A record
 * handed out points into that buffer and stays valid until the next call.
 */
#include "engine.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define CY_SCAN_CHUNK (1u << 20)

CY_INTERNAL int cy_scan_open(cy_scan *s, calypso *db, uint32_t fid, int fd)
{
    memset(s, 0, sizeof *s);
    s->db = db;
    s->fid = fid;
    s->fd = fd;
    s->own_fd = fd < 0;
    cy_dir_data_path(db, fid, s->path, sizeof s->path);
    if (fd < 0 && (s->fd = cy_os_open(s->path, O_RDONLY, 0)) < 0) {
        int rc = s->fd;
        s->fd = -1;
        return cy_err_errno(db, rc, "open", s->path);
    }
    int rc = cy_os_fsize(s->fd, &s->size);
    if (rc < 0) {
        rc = cy_err_errno(db, rc, "stat", s->path);
        cy_scan_close(s);
    }
    return rc;
}

CY_INTERNAL void cy_scan_close(cy_scan *s)
{
    if (s->own_fd && s->fd >= 0) cy_os_close(s->fd);
    s->fd = -1;
    cy_free(s->buf);
    s->buf = NULL;
}

CY_INTERNAL int64_t cy_scan_fill(cy_scan *s, uint64_t off, size_t n)
{
    if (off >= s->buf_off && off + n <= s->buf_off + s->buf_len)
        return (int64_t)n;
    size_t want = n > CY_SCAN_CHUNK ? n : CY_SCAN_CHUNK;
    if (want > s->cap) {
        uint8_t *p = cy_realloc(s->buf, want);
        if (!p) return cy_err(s->db, CALYPSO_ENOMEM, "a read buffer of %zu bytes for %s", want,
                              s->path);
        s->buf = p;
        s->cap = want;
    }
    int64_t got = cy_os_pread(s->fd, s->buf, s->cap, off);
    if (got < 0) return cy_err_errno(s->db, (int)got, "read", s->path);
    s->buf_off = off;
    s->buf_len = (size_t)got;
    return (int64_t)(got < (int64_t)n ? got : (int64_t)n);
}

CY_INTERNAL int cy_scan_record(cy_scan *s, uint64_t off, cy_rec *r, const uint8_t **rec,
                               const char **why)
{
    int64_t got = cy_scan_fill(s, off, CY_REC_MAX_HDR);
    if (got < 0) return (int)got;
    if (cy_rec_parse(s->buf + (off - s->buf_off), (size_t)got, r) != 1) {
        *why = "bad record header";
        return 0;
    }
    uint64_t size = r->hdr + r->klen + r->vlen;
    if (off + size > s->size) {
        *why = "record runs past the end of the file";
        return 0;
    }
    if ((got = cy_scan_fill(s, off, (size_t)size)) < 0) return (int)got;
    const uint8_t *p = s->buf + (off - s->buf_off);
    if ((*why = cy_rec_verify(p, (size_t)size, r))) return 0;
    *rec = p;
    return 1;
}
