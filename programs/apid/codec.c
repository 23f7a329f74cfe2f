/*
 * codec.c: the encodings apid reads and writes: percent-encoding (paths,
 * query strings, forms), base64 (JSON values and keys that are not UTF-8,
 * and the opaque paging cursor), hex (the dashboard's binary view and its
 * key references), TTL durations, and a strict UTF-8 check.
 *
 * Every decoder is strict and length-based: keys and values may hold any
 * byte, NUL included, so nothing here relies on C strings for data, and
 * malformed input is an error for the caller to answer 400, never guessed.
 */
#include <stdlib.h>
#include <string.h>

#include "apid.h"

static int apid_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* >> percent-encoding */
int apid_pct_decode(const char *s, size_t n, int plus_space, char *out, size_t *outlen)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            if (i + 2 >= n) return -1;          /* fewer than two bytes follow */
            int hi = apid_hexval((unsigned char)s[i + 1]), lo = apid_hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0) return -1;
            out[o++] = (char)(hi << 4 | lo);
            i += 2;
        } else if (c == '+' && plus_space) {
            out[o++] = ' ';
        } else {
            out[o++] = (char)c;
        }
    }
    *outlen = o;
    return 0;
}

void apid_pct_encode(apid_buf *b, const void *p, size_t n)
{
    static const char hx[] = "0123456789ABCDEF";
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~') {
            apid_buf_put(b, &c, 1);
        } else {
            char e[3] = { '%', hx[c >> 4], hx[c & 15] };
            apid_buf_put(b, e, 3);
        }
    }
}

/* >> query strings and form bodies: name=value pairs split by '&' */
typedef int (*apid_pair_fn)(const char *k, size_t kn, const char *v, size_t vn, void *ctx);

/* Calls fn on each raw (still encoded) pair; stops when fn returns non-zero. */
static int apid_query_each(const char *q, size_t n, apid_pair_fn fn, void *ctx)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && q[j] != '&') j++;
        size_t eq = i;
        while (eq < j && q[eq] != '=') eq++;
        if (j > i) {
            int rc = eq < j ? fn(q + i, eq - i, q + eq + 1, j - eq - 1, ctx)
                            : fn(q + i, j - i, q + j, 0, ctx);
            if (rc) return rc;
        }
        i = j + 1;
    }
    return 0;
}

static int apid_pair_check(const char *k, size_t kn, const char *v, size_t vn, void *ctx)
{
    (void)ctx;
    char *tmp = malloc(kn > vn ? kn + 1 : vn + 1);
    size_t len;
    int bad = !tmp || apid_pct_decode(k, kn, 1, tmp, &len) || apid_pct_decode(v, vn, 1, tmp, &len);
    free(tmp);
    return bad ? -1 : 0;
}

int apid_query_valid(const char *q, size_t n)
{
    return apid_query_each(q, n, apid_pair_check, NULL) ? -1 : 0;
}

typedef struct { const char *name; char **val; size_t *vlen; int found; } apid_lookup;

static int apid_pair_find(const char *k, size_t kn, const char *v, size_t vn, void *ctx)
{
    apid_lookup *l = ctx;
    char *kd = malloc(kn + 1);
    size_t kl;
    if (!kd) return -1;
    if (apid_pct_decode(k, kn, 1, kd, &kl)) { free(kd); return -1; }
    int match = strlen(l->name) == kl && memcmp(kd, l->name, kl) == 0;
    free(kd);
    if (!match) return 0;
    char *vd = malloc(vn + 1);
    if (!vd) return -1;
    if (apid_pct_decode(v, vn, 1, vd, l->vlen)) { free(vd); return -1; }
    vd[*l->vlen] = '\0';
    *l->val = vd;
    l->found = 1;
    return 1;
}

int apid_query_get(const char *q, size_t n, const char *name, char **val, size_t *vlen)
{
    apid_lookup l = { name, val, vlen, 0 };
    *val = NULL;
    *vlen = 0;
    int rc = apid_query_each(q, n, apid_pair_find, &l);
    if (rc < 0) return -1;
    return l.found;
}

/* >> base64 */
static const char apid_b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char apid_b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t apid_b64_enclen(size_t n) { return (n + 2) / 3 * 4; }

void apid_b64_encode(const void *p, size_t n, int url, char *out)
{
    const char *al = url ? apid_b64_url : apid_b64_std;
    const unsigned char *s = p;
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        out[o++] = al[v >> 18]; out[o++] = al[v >> 12 & 63];
        out[o++] = al[v >> 6 & 63]; out[o++] = al[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        out[o++] = al[v >> 18]; out[o++] = al[v >> 12 & 63];
        if (!url) { out[o++] = '='; out[o++] = '='; }
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        out[o++] = al[v >> 18]; out[o++] = al[v >> 12 & 63]; out[o++] = al[v >> 6 & 63];
        if (!url) out[o++] = '=';
    }
    out[o] = '\0';
}

size_t apid_b64_declen(size_t n) { return n / 4 * 3 + 3; }

static int apid_b64_val(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == (url ? '-' : '+')) return 62;
    if (c == (url ? '_' : '/')) return 63;
    return -1;
}

/* Standard base64 must be padded to a multiple of 4; the URL form must not
 * be padded. Bits left over in the last character must be zero, so every
 * byte string has exactly one encoding. */
int apid_b64_decode(const char *s, size_t n, int url, void *out, size_t *outlen)
{
    unsigned char *d = out;
    size_t pad = 0;
    if (!url) {
        if (n % 4) return -1;
        while (pad < 2 && n > pad && s[n - 1 - pad] == '=') pad++;
        n -= pad;
    } else if (n % 4 == 1) {
        return -1;
    }
    uint32_t acc = 0;
    size_t o = 0, bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = apid_b64_val((unsigned char)s[i], url);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[o++] = (unsigned char)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1)) return -1;
    *outlen = o;
    return 0;
}

/* >> hex */
void apid_hex_encode(const void *p, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[s[i] >> 4];
        out[2 * i + 1] = hx[s[i] & 15];
    }
    out[2 * n] = '\0';
}

int apid_hex_decode(const char *s, size_t n, void *out, size_t *outlen)
{
    unsigned char *d = out;
    if (n % 2) return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = apid_hexval((unsigned char)s[i]), lo = apid_hexval((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        d[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    *outlen = n / 2;
    return 0;
}

/* >> TTL durations */
int apid_ttl_parse(const char *s, size_t n, uint64_t *ms)
{
    const uint64_t max = 100ull * 365 * 24 * 3600 * 1000;   /* 100 years */
    size_t i = 0;
    uint64_t v = 0;
    if (n == 0) return -1;
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
        v = v * 10 + (uint64_t)(s[i] - '0');
        if (v > max) return -1;
    }
    if (i == 0) return -1;
    uint64_t mul;
    size_t ul = n - i;
    const char *u = s + i;
    if (ul == 0 || (ul == 2 && memcmp(u, "ms", 2) == 0)) mul = 1;
    else if (ul == 1 && *u == 's') mul = 1000;
    else if (ul == 1 && *u == 'm') mul = 60000;
    else if (ul == 1 && *u == 'h') mul = 3600000;
    else if (ul == 1 && *u == 'd') mul = 86400000;
    else return -1;
    if (v == 0 || v > max / mul) return -1;
    *ms = v * mul;
    return 0;
}

/* >> UTF-8 */
int apid_utf8_valid(const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c < 0x80) { i++; continue; }
        size_t len;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
        else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
        else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
        else return 0;
        if (i + len > n) return 0;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

/* A malloc'd, NUL-terminated decoding of n bytes: 0, -1 malformed, -2 no memory. */
int apid_pct_dup(const char *s, size_t n, int plus_space, char **out, size_t *outlen)
{
    *out = malloc(n + 1);
    if (!*out) return -2;
    if (apid_pct_decode(s, n, plus_space, *out, outlen)) {
        free(*out);
        *out = NULL;
        return -1;
    }
    (*out)[*outlen] = '\0';
    return 0;
}
