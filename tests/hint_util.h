/*
 * hint_util.h: test helpers for hint files: checks that a hint file lists
 * its entries in key order (doc/format.md), for tests that include the
 * engine's internal headers.
 */
#ifndef CALYPSO_TEST_HINT_UTIL_H
#define CALYPSO_TEST_HINT_UTIL_H

#include "engine_util.h"

/* Asserts that a hint file lists its entries in key order (memcmp, shorter
 * first), a key's records by increasing offset; returns how many. */
static inline uint64_t hu_check_sorted(const char *path)
{
    size_t len = 0;
    uint8_t *b = (uint8_t *)eu_read_file(path, &len);
    assert_true(len >= 8 + 24);
    /* CYHINT01, or CYHINT02: compacted (live puts, every tombstone) */
    assert_true(memcmp(b, "CYHINT01", 8) == 0 || memcmp(b, "CYHINT02", 8) == 0);
    const uint8_t *p = b + 8, *end = b + len - 24, *pk = NULL;
    uint64_t pklen = 0, poff = 0, n = 0;
    while (p < end) {
        uint64_t type = *p++, v, klen, off, size;
        if (type == CY_REC_PUT_TTL) p += cy_varint_get(p, end, &v);
        p += cy_varint_get(p, end, &klen);
        p += cy_varint_get(p, end, &off);
        p += cy_varint_get(p, end, &size);
        assert_true(klen > 0 && klen <= (uint64_t)(end - p));
        if (pk) {
            int c = eu_keycmp(pk, (size_t)pklen, p, (size_t)klen);
            if (c > 0 || (c == 0 && poff >= off))
                print_error("%s: entry %llu out of order\n", path, (unsigned long long)n);
            assert_true(c < 0 || (c == 0 && poff < off));
        }
        pk = p;
        pklen = klen;
        poff = off;
        p += klen;
        n++;
    }
    assert_true(p == end);
    assert_int_equal(n, cy_get_u64(end + 8));
    free(b);
    return n;
}

#endif
