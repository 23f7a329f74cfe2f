/*
 * record.c: the byte layout of a datafile record (doc/format.md), its
 * varints and its checksum. Everything that reads or writes a record on
 * disk goes through these functions; nothing else includes xxhash.h.
 *
 *   crc    u32 little-endian: low 32 bits of XXH3-64 over every byte after
 *          it (type .. value)
 *   type   u8: 1 put, 2 put with expiry, 3 tombstone (4 batch, 5 and 6
 *          catalog records, 7 seal: doc/format.md)
 *   expiry varint, only for type 2: absolute ms since the Unix epoch
 *   klen   varint, 1..65535
 *   vlen   varint: value bytes (for a tombstone, its payload: the varint id
 *          of the datafile that held the record it deletes)
 *   key, value
 *
 * A put of a 16-byte key and 100-byte value costs 7 header bytes.
 */
#include "internal.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <string.h>

CY_INTERNAL size_t cy_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}

CY_INTERNAL size_t cy_varint_put(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

CY_INTERNAL size_t cy_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v)
{
    if (CY_LIKELY(p < end && *p < 0x80)) {     /* most lengths fit one byte */
        *v = *p;
        return 1;
    }
    uint64_t r = 0;
    for (size_t i = 0; i < 10 && p + i < end; i++) {
        uint64_t b = p[i];
        if (i == 9 && b > 1) return 0;          /* would overflow 64 bits */
        r |= (b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            /* Reject non-minimal encodings (a trailing 0x00 group) so that
             * every value has exactly one encoding and header lengths can be
             * derived from sizes. */
            if (i > 0 && b == 0) return 0;
            *v = r;
            return i + 1;
        }
    }
    return 0;
}

CY_INTERNAL void cy_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}

CY_INTERNAL uint32_t cy_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

CY_INTERNAL void cy_put_u64(uint8_t *p, uint64_t v)
{
    cy_put_u32(p, (uint32_t)v);
    cy_put_u32(p + 4, (uint32_t)(v >> 32));
}

CY_INTERNAL uint64_t cy_get_u64(const uint8_t *p)
{
    return (uint64_t)cy_get_u32(p) | (uint64_t)cy_get_u32(p + 4) << 32;
}

CY_INTERNAL uint32_t cy_rec_header_ns(uint8_t *out, int type, uint32_t ns, uint64_t expiry,
                                      uint64_t klen, uint64_t vlen)
{
    uint8_t *p = out;
    cy_put_u32(p, 0);
    p += 4;
    int has_ns = cy_rec_has_ns(type, ns);
    *p++ = (uint8_t)(type | (has_ns && type <= CY_REC_DEL ? CY_REC_NS : 0));
    if (has_ns) p += cy_varint_put(p, ns);
    if (type == CY_REC_PUT_TTL) p += cy_varint_put(p, expiry);
    p += cy_varint_put(p, klen);
    p += cy_varint_put(p, vlen);
    return (uint32_t)(p - out);
}

CY_INTERNAL uint32_t cy_rec_header(uint8_t *out, int type, uint64_t expiry,
                                   uint64_t klen, uint64_t vlen)
{
    return cy_rec_header_ns(out, type, 0, expiry, klen, vlen);
}

CY_INTERNAL int cy_rec_parse(const uint8_t *p, size_t avail, cy_rec *r)
{
    const uint8_t *end = p + avail, *q = p + 5;
    size_t n;
    if (avail < 5) return 0;
    r->crc = cy_get_u32(p);
    r->type = p[4] & ~CY_REC_NS;
    r->expiry = 0;
    r->ns = 0;
    int flagged = (p[4] & CY_REC_NS) != 0;
    if (r->type < CY_REC_PUT || r->type > CY_REC_SEAL) return -1;
    if (flagged && r->type > CY_REC_DEL) return -1;
    int catalog = r->type == CY_REC_NS_CREATE || r->type == CY_REC_NS_DROP;
    if (flagged || catalog) {
        uint64_t id;
        if (!(n = cy_varint_get(q, end, &id))) return end - q >= 10 ? -1 : 0;
        if (id == 0 || id > UINT32_MAX) return -1;
        r->ns = (uint32_t)id;
        q += n;
    }
    if (r->type == CY_REC_PUT_TTL) {
        if (!(n = cy_varint_get(q, end, &r->expiry)))
            return end - q >= 10 ? -1 : 0;
        if (r->expiry == 0) return -1;
        q += n;
    }
    if (!(n = cy_varint_get(q, end, &r->klen))) return end - q >= 10 ? -1 : 0;
    q += n;
    if (!(n = cy_varint_get(q, end, &r->vlen))) return end - q >= 10 ? -1 : 0;
    q += n;
    if ((r->klen == 0) != (r->type == CY_REC_BATCH || r->type == CY_REC_SEAL) ||
        r->klen > CY_ART_MAX_KEY || r->vlen > CALYPSO_MAX_VALUE_SIZE)
        return -1;
    if (r->type == CY_REC_SEAL && (r->vlen < 2 || r->vlen > 15)) return -1;
    if (catalog && (r->klen > CALYPSO_NS_MAX_NAME || r->vlen != 0)) return -1;
    r->hdr = (uint32_t)(q - p);
    return 1;
}

CY_INTERNAL const char *cy_rec_verify(const uint8_t *rec, size_t size, cy_rec *r)
{
    if (cy_rec_parse(rec, size, r) != 1) return "bad record header";
    if ((uint64_t)r->hdr + r->klen + r->vlen != size) return "record size does not match";
    if (cy_crc(rec + 4, size - 4, NULL, 0) != r->crc) return "checksum mismatch";
    return NULL;
}

CY_INTERNAL int cy_rec_matches(const uint8_t *rec, uint32_t size, const void *key, size_t klen,
                               uint64_t expiry, cy_rec *r)
{
    int type = expiry ? CY_REC_PUT_TTL : CY_REC_PUT;
    return cy_rec_verify(rec, size, r) == NULL && r->type == type && r->expiry == expiry &&
           r->klen == klen && memcmp(rec + r->hdr, key, klen) == 0;
}

CY_INTERNAL int cy_rec_entries(const uint8_t *rec, const cy_rec *r, cy_rec_entry_fn fn,
                               void *ctx)
{
    if (r->type == CY_REC_SEAL) return CALYPSO_OK;   /* no entry: never live */
    if (r->type != CY_REC_BATCH) return fn(r, rec, 0, ctx);
    uint64_t at = r->hdr, end = r->hdr + r->vlen;
    if (at == end) return CALYPSO_ECORRUPT;          /* a batch is never empty */
    while (at < end) {
        cy_rec s;
        if (cy_rec_parse(rec + at, (size_t)(end - at), &s) != 1 || s.type == CY_REC_BATCH ||
            s.type == CY_REC_SEAL)
            return CALYPSO_ECORRUPT;
        uint64_t size = s.hdr + s.klen + s.vlen;
        if (size > end - at) return CALYPSO_ECORRUPT;
        int rc = fn(&s, rec + at, at, ctx);
        if (rc) return rc;
        at += size;
    }
    return CALYPSO_OK;
}

CY_INTERNAL uint32_t cy_rec_hdr_len(int type, uint64_t expiry, uint64_t klen, uint64_t size)
{
    uint64_t fixed = 5 + cy_varint_len(klen) + klen;
    if (type == CY_REC_PUT_TTL) fixed += cy_varint_len(expiry);
    for (uint64_t w = 1; w <= 5; w++) {
        if (size < fixed + w) return 0;
        if (cy_varint_len(size - fixed - w) == w) return (uint32_t)(fixed - klen + w);
    }
    return 0;
}

/* The state comes from cy_malloc (the application's allocator, not
 * xxhash's own malloc), aligned to 64 bytes as XXH3 wants it, with the
 * address to free just below it. */
CY_INTERNAL void *cy_crc_begin(void)
{
    uint8_t *raw = cy_malloc(sizeof(XXH3_state_t) + 64 + sizeof(uint8_t *));
    if (!raw) return NULL;
    uintptr_t at = ((uintptr_t)raw + sizeof(uint8_t *) + 63u) & ~(uintptr_t)63u;
    memcpy((uint8_t *)at - sizeof raw, &raw, sizeof raw);
    XXH3_state_t *st = (XXH3_state_t *)at;
    XXH3_INITSTATE(st);
    XXH3_64bits_reset(st);
    return st;
}

CY_INTERNAL void cy_crc_add(void *st, const void *p, size_t n)
{
    XXH3_64bits_update(st, p, n);
}

CY_INTERNAL uint32_t cy_crc_end(void *st)
{
    uint32_t crc = (uint32_t)XXH3_64bits_digest(st);
    uint8_t *raw;
    memcpy(&raw, (uint8_t *)st - sizeof raw, sizeof raw);
    cy_free(raw);
    return crc;
}

CY_INTERNAL uint32_t cy_crc(const void *a, size_t alen, const void *b, size_t blen)
{
    if (blen == 0) return (uint32_t)XXH3_64bits(a, alen);
    XXH3_state_t st;
    XXH3_INITSTATE(&st);
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, a, alen);
    XXH3_64bits_update(&st, b, blen);
    return (uint32_t)XXH3_64bits_digest(&st);
}

/* Encodes a tombstone for key into rec (CY_REC_MAX_HDR + klen + 10 bytes).
 * Its payload names the file of the record it deletes, so that a merge can
 * tell when the tombstone may be dropped. */
CY_INTERNAL size_t cy_rec_encode_tombstone(uint8_t *rec, uint32_t ns, const void *key,
                                          size_t klen, uint32_t victim)
{
    uint8_t payload[10];
    size_t plen = cy_varint_put(payload, victim);
    uint32_t hlen = cy_rec_header_ns(rec, CY_REC_DEL, ns, 0, klen, plen);
    memcpy(rec + hlen, key, klen);
    memcpy(rec + hlen + klen, payload, plen);
    cy_put_u32(rec, cy_crc(rec + 4, hlen + klen + plen - 4, NULL, 0));
    return hlen + klen + plen;
}

CY_INTERNAL size_t cy_rec_encode_seal(uint8_t *rec, uint32_t fid, uint64_t size)
{
    uint8_t payload[15];
    size_t plen = cy_varint_put(payload, fid);
    plen += cy_varint_put(payload + plen, size);
    uint32_t hlen = cy_rec_header(rec, CY_REC_SEAL, 0, 0, plen);
    memcpy(rec + hlen, payload, plen);
    cy_put_u32(rec, cy_crc(rec + 4, hlen + plen - 4, NULL, 0));
    return hlen + plen;
}

CY_INTERNAL int cy_rec_seal_of(const uint8_t *rec, const cy_rec *r, uint32_t *fid,
                               uint64_t *size)
{
    const uint8_t *p = rec + r->hdr, *end = p + r->vlen;
    uint64_t id;
    size_t n = cy_varint_get(p, end, &id);
    if (!n || id == 0 || id > UINT32_MAX) return -1;
    p += n;
    if (!(n = cy_varint_get(p, end, size)) || p + n != end) return -1;
    *fid = (uint32_t)id;
    return 0;
}
