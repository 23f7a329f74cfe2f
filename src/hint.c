/*
 * hint.c: hint files. A sealed datafile NNNNNNNNNN.data gets a hint file
 * NNNNNNNNNN.hint listing, for each of its records, the key, the record's
 * offset and size, its type and expiry: everything open needs, without the
 * values. Layout (doc/format.md):
 *
 *   "CYHINT01"
 *   entry*   type u8 | [expiry varint, type 2] | klen varint | off varint |
 *            size varint | key
 *   trailer  data_size u64le | entries u64le | crc u32le | "HEND"
 *
 * crc covers every byte before it. A hint describes the first data_size
 * bytes of its datafile: all of a sealed file, or what the active file held
 * at a clean close. Open uses a hint whose crc holds and whose data_size is
 * at most the datafile's size, then scans the datafile from data_size on,
 * so writes made after the hint are always found; an invalid hint makes
 * open scan the whole datafile, so a hint can be lost or damaged without
 * losing anything. A hint is written only after the bytes it describes were
 * synced, and atomically (tmp file, fdatasync, rename, directory fsync).
 */
#include "engine.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define CY_HINT_MAGIC   "CYHINT01"
#define CY_HINT_END     "HEND"
#define CY_HINT_TRAILER 24u

static int cy_hint_reserve(cy_hint_buf *b, size_t more)
{
    if (b->len + more <= b->cap) return 0;
    size_t nc = b->cap ? b->cap * 2 : 65536;
    while (nc < b->len + more) nc *= 2;
    uint8_t *p = cy_realloc(b->p, nc);
    if (!p) return CALYPSO_ENOMEM;
    b->p = p;
    b->cap = nc;
    return 0;
}

CY_INTERNAL int cy_hint_add(cy_hint_buf *b, const cy_rec *r, const uint8_t *key, uint64_t off,
                            uint64_t size)
{
    if (cy_hint_reserve(b, 8 + 1 + 40 + r->klen)) return CALYPSO_ENOMEM;
    if (b->len == 0) {
        memcpy(b->p, CY_HINT_MAGIC, 8);
        b->len = 8;
    }
    uint8_t *p = b->p + b->len;
    *p++ = (uint8_t)r->type;
    if (r->type == CY_REC_PUT_TTL) p += cy_varint_put(p, r->expiry);
    p += cy_varint_put(p, r->klen);
    p += cy_varint_put(p, off);
    p += cy_varint_put(p, size);
    memcpy(p, key, r->klen);
    b->len = (size_t)(p - b->p) + r->klen;
    b->count++;
    return 0;
}

CY_INTERNAL int cy_hint_finish(cy_hint_buf *b, uint64_t data_size)
{
    if (cy_hint_reserve(b, 8 + CY_HINT_TRAILER)) return CALYPSO_ENOMEM;
    if (b->len == 0) {
        memcpy(b->p, CY_HINT_MAGIC, 8);
        b->len = 8;
    }
    uint8_t *t = b->p + b->len;
    cy_put_u64(t, data_size);
    cy_put_u64(t + 8, b->count);
    cy_put_u32(t + 16, cy_crc(b->p, b->len + 16, NULL, 0));
    memcpy(t + 20, CY_HINT_END, 4);
    b->len += CY_HINT_TRAILER;
    return CALYPSO_OK;
}

/* Reads datafile fid (sealed, synced) and builds its hint in b. */
static int cy_hint_build(calypso *db, uint32_t fid, cy_hint_buf *b, uint64_t *data_size)
{
    cy_scan s;
    int rc = cy_scan_open(&s, db, fid, -1);
    if (rc) return rc;
    *data_size = s.size;
    for (uint64_t off = 0; off < s.size && !rc;) {
        cy_rec r;
        const uint8_t *p = NULL;
        const char *why = NULL;
        int got = cy_scan_record(&s, off, &r, &p, &why);
        if (got < 0) {
            rc = got;
        } else if (got == 0) {
            rc = cy_err(db, CALYPSO_ECORRUPT, "%s at offset %llu: %s, no hint written", s.path,
                        (unsigned long long)off, why);
        } else {
            uint64_t size = r.hdr + r.klen + r.vlen;
            if (cy_hint_add(b, &r, p + r.hdr, off, size))
                rc = cy_err(db, CALYPSO_ENOMEM, "building the hint of %s", s.path);
            off += size;
        }
    }
    cy_scan_close(&s);
    return rc;
}

CY_INTERNAL int cy_hint_write(calypso *db, uint32_t fid)
{
    cy_hint_buf b = { 0 };
    uint64_t data_size = 0;
    int rc = cy_hint_build(db, fid, &b, &data_size);
    if (!rc && cy_hint_finish(&b, data_size)) rc = cy_err(db, CALYPSO_ENOMEM, "hint trailer");
    if (!rc) {
        char name[32];
        snprintf(name, sizeof name, "%010u.hint", fid);
        rc = cy_dir_write_file(db, db->path, name, b.p, b.len);
    }
    if (!rc) {
        cy_rdlock(&db->files_lock);
        cy_file *f = cy_files_find(db, fid);
        if (f) {
            __atomic_store_n(&f->hint_size, (uint64_t)b.len, __ATOMIC_RELAXED);
            __atomic_store_n(&f->hint_covers, data_size, __ATOMIC_RELAXED);
        }
        cy_unlock(&db->files_lock);
    }
    cy_free(b.p);
    return rc;
}

/* Walks the entries of a hint body, feeding them to the keydir. Returns
 * CALYPSO_ECORRUPT at the first malformed entry. */
static int cy_hint_walk(calypso *db, uint32_t fid, const uint8_t *p, const uint8_t *end,
                        uint64_t data_size)
{
    while (p < end) {
        cy_rec r = { .type = *p++ };
        uint64_t off, size;
        size_t n;
        if (r.type < CY_REC_PUT || r.type > CY_REC_DEL) return CALYPSO_ECORRUPT;
        if (r.type == CY_REC_PUT_TTL) {
            if (!(n = cy_varint_get(p, end, &r.expiry))) return CALYPSO_ECORRUPT;
            p += n;
        }
        if (!(n = cy_varint_get(p, end, &r.klen))) return CALYPSO_ECORRUPT;
        p += n;
        if (!(n = cy_varint_get(p, end, &off))) return CALYPSO_ECORRUPT;
        p += n;
        if (!(n = cy_varint_get(p, end, &size))) return CALYPSO_ECORRUPT;
        p += n;
        if (r.klen == 0 || r.klen > CY_ART_MAX_KEY || r.klen > (uint64_t)(end - p) ||
            size > UINT32_MAX || off + size > data_size)
            return CALYPSO_ECORRUPT;
        int rc = cy_keydir_apply(db, r.type, p, (size_t)r.klen, r.expiry, fid, off,
                                 (uint32_t)size);
        if (rc) return rc;
        p += r.klen;
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_hint_load(calypso *db, uint32_t fid, uint64_t file_size, uint64_t *covers,
                             uint64_t *hint_bytes)
{
    char path[4096];
    cy_dir_hint_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return CALYPSO_ECORRUPT;
    uint64_t size = 0;
    uint8_t *buf = NULL;
    int rc = CALYPSO_ECORRUPT;
    if (cy_os_fsize(fd, &size) < 0 || size < 8 + CY_HINT_TRAILER || size > (1ull << 40))
        goto out;
    if (!(buf = cy_malloc((size_t)size))) { rc = CALYPSO_ENOMEM; goto out; }
    if (cy_os_pread(fd, buf, (size_t)size, 0) != (int64_t)size) goto out;
    const uint8_t *t = buf + size - CY_HINT_TRAILER;
    uint64_t data_size = cy_get_u64(t);
    if (memcmp(buf, CY_HINT_MAGIC, 8) != 0 || memcmp(t + 20, CY_HINT_END, 4) != 0 ||
        data_size > file_size || cy_get_u32(t + 16) != cy_crc(buf, (size_t)size - 8, NULL, 0))
        goto out;
    /* One pass, applying as it parses. The crc vouches that these are the
     * bytes calypso wrote; a hint that passes it yet does not parse was
     * made on purpose, and fails the open rather than half-load. */
    rc = cy_hint_walk(db, fid, buf + 8, t, data_size);
    if (rc == CALYPSO_ECORRUPT) {
        rc = cy_err(db, CALYPSO_ECORRUPT, "%s: entries do not parse though its checksum holds",
                    path);
        *covers = UINT64_MAX;   /* tells the caller not to fall back */
    } else if (!rc) {
        *covers = data_size;
        *hint_bytes = size;
    }
out:
    cy_free(buf);
    cy_os_close(fd);
    return rc;
}
