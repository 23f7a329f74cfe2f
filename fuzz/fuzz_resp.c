/*
 * fuzz_resp.c: libFuzzer target for calypsod's request parser
 * (programs/calypsod/resp.c).
 *
 * The input's first byte picks the unauthenticated limits (bit 0) and
 * seeds the chunking; the rest is a byte stream from a client. The stream
 * is parsed twice: all at once, and arriving in pieces of pseudo-random
 * sizes into a buffer that is compacted between reads as the daemon does
 * (loop.c). Both must produce the same requests, byte for byte, and the
 * same verdict (more input needed, or a protocol error). Inputs stay under
 * 64 KiB, below which the result cannot depend on how bytes arrive (past
 * it, Redis's "too big" checks do, by design). Along the way: every
 * element lies inside the bytes the parser was given, `used` never
 * exceeds them, and ASan/UBSan watch the rest.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "resp.h"

typedef struct fz_log {
    unsigned char *p;
    size_t len, cap;
} fz_log;

static void fz_log_add(fz_log *l, const void *p, size_t n)
{
    if (l->len + n > l->cap) {
        size_t ncap = (l->len + n) * 2 + 64;
        l->p = realloc(l->p, ncap);
        if (!l->p) abort();
        l->cap = ncap;
    }
    memcpy(l->p + l->len, p, n);
    l->len += n;
}

/* Records one parsed request into the log: argc, then each element. */
static void fz_record(fz_log *l, const cd_req *r, const char *buf, size_t len, size_t used)
{
    if (used == 0 || used > len) {
        fprintf(stderr, "used %zu of %zu\n", used, len);
        abort();
    }
    fz_log_add(l, "R", 1);
    fz_log_add(l, &r->argc, sizeof r->argc);
    for (size_t i = 0; i < r->argc; i++) {
        const char *p = r->argv[i].p;
        int in_buf = p >= buf && p + r->argv[i].len <= buf + len;
        int in_ibuf = r->ibuf && p >= r->ibuf && p + r->argv[i].len <= r->ibuf + r->ibuf_cap;
        if (!in_buf && !in_ibuf) {
            fprintf(stderr, "element %zu outside the parser's buffers\n", i);
            abort();
        }
        fz_log_add(l, &r->argv[i].len, sizeof r->argv[i].len);
        fz_log_add(l, p, r->argv[i].len);
    }
}

/* Parses everything in buf[*start, len): requests go to the log. Returns
 * 1 on a protocol error (logged with its text), 0 otherwise. */
static int fz_drain(cd_req *r, const char *buf, size_t len, size_t *start, int unauth, fz_log *l)
{
    while (*start < len) {
        size_t used = 0;
        int rc = cd_req_parse(r, buf + *start, len - *start, unauth, &used);
        if (rc == CD_REQ_MORE) return 0;
        if (rc == CD_REQ_ERROR) {
            fz_log_add(l, "E", 1);
            fz_log_add(l, r->err, strlen(r->err));
            return 1;
        }
        if (rc != CD_REQ_DONE) abort();
        fz_record(l, r, buf + *start, len - *start, used);
        *start += used;
        cd_req_reset(r);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 60000) return 0;
    int unauth = data[0] & 1;
    uint32_t rng = data[0] * 2654435761u + 1;
    const char *stream = (const char *)data + 1;
    size_t n = size - 1;

    fz_log whole = { 0 }, pieces = { 0 };
    cd_req r;
    memset(&r, 0, sizeof r);
    cd_req_reset(&r);
    size_t start = 0;
    int err1 = fz_drain(&r, stream, n, &start, unauth, &whole);
    cd_req_free(&r);

    /* the same bytes, arriving in pieces into a buffer compacted as loop.c does */
    char *buf = malloc(n + 1);
    size_t blen = 0, bstart = 0, fed = 0;
    int err2 = 0;
    memset(&r, 0, sizeof r);
    cd_req_reset(&r);
    while (fed < n && !err2) {
        rng = rng * 1103515245u + 12345u;
        size_t piece = 1 + (rng >> 16) % 64;
        if (piece > n - fed) piece = n - fed;
        if (bstart > 0) {
            memmove(buf, buf + bstart, blen - bstart);
            blen -= bstart;
            bstart = 0;
        }
        memcpy(buf + blen, stream + fed, piece);
        blen += piece;
        fed += piece;
        err2 = fz_drain(&r, buf, blen, &bstart, unauth, &pieces);
    }
    cd_req_free(&r);
    free(buf);

    if (err1 != err2 || whole.len != pieces.len ||
        (whole.len && memcmp(whole.p, pieces.p, whole.len) != 0)) {
        fprintf(stderr, "parsing all at once and in pieces differ (errors %d/%d, logs %zu/%zu bytes)\n",
                err1, err2, whole.len, pieces.len);
        abort();
    }
    free(whole.p);
    free(pieces.p);
    return 0;
}
