/*
 * scan.h: datafile scans (scan.c): reading a datafile record by record.
 *
 * Locks: none: a scan belongs to its caller.
 */
#ifndef CY_SCAN_H
#define CY_SCAN_H

#include "internal.h"

typedef struct cy_scan {
    calypso  *db;
    uint32_t  fid;
    int       fd;
    int       own_fd;     /* opened by cy_scan_open: closed by cy_scan_close */
    uint64_t  size;       /* file size                                       */
    uint8_t  *buf;
    size_t    cap;
    uint64_t  buf_off;    /* file offset of buf[0]                           */
    size_t    buf_len;
    char      path[4096];
} cy_scan;
/* Starts a scan of datafile fid through fd, or through a descriptor of its
 * own when fd < 0. */
CY_INTERNAL int     cy_scan_open(cy_scan *s, calypso *db, uint32_t fid, int fd);
CY_INTERNAL void    cy_scan_close(cy_scan *s);
/* Makes [off, off+n) available in s->buf; returns the bytes available from
 * off (fewer than n only at the end of the file) or a negative code. */
CY_INTERNAL int64_t cy_scan_fill(cy_scan *s, uint64_t off, size_t n);
/* The record at off: 1 with *r parsed and *rec its verified bytes (valid
 * until the next call); 0 when it is damaged (*why says how); or an error. */
CY_INTERNAL int     cy_scan_record(cy_scan *s, uint64_t off, cy_rec *r, const uint8_t **rec,
                                   const char **why);

#endif /* CY_SCAN_H */
