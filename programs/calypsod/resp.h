/*
 * resp.h: the request parser of calypsod, RESP multibulk and inline, kept
 * free of the server's types so that the fuzz target (fuzz/fuzz_resp.c)
 * links it alone.
 *
 * The parser is incremental: bytes of a request may arrive split at any
 * point, and it keeps its progress (the element it is in, where that
 * element starts) between calls, so a long request is scanned once, not
 * once per read. Its positions are offsets from the start of the request
 * being parsed, so the caller may move its buffer (realloc, memmove of the
 * bytes before the request) between calls.
 */
#ifndef CALYPSOD_RESP_H
#define CALYPSOD_RESP_H

#include <stddef.h>

/* Redis's limits: PROTO_INLINE_MAX_SIZE and proto-max-bulk-len. */
#define CD_INLINE_MAX   (64 * 1024)
#define CD_BULK_MAX     (512ll * 1024 * 1024)
/* A client that must still authenticate may send at most this many
 * elements and this many bytes per element (Redis 7.0 does the same: an
 * unauthenticated peer cannot make the server allocate much). */
#define CD_UNAUTH_MB_MAX   10
#define CD_UNAUTH_BULK_MAX 16384

typedef struct cd_arg {
    const char *p;
    size_t len;
} cd_arg;

typedef struct cd_req {
    /* progress through the current request */
    int    kind;        /* 0: not started, 1: multibulk, 2: inline */
    long long mb_left;  /* elements still to read (multibulk) */
    long long bulk_len; /* length of the element being read, -1: its header */
    size_t pos;         /* offset of the next unparsed byte */
    /* elements found so far: their lengths in argv[i].len, their offsets
     * into the request (multibulk) or into ibuf (inline, where escapes are
     * undone) in aoff[i]; argv[i].p is set from aoff[i] once the request is
     * complete, valid until cd_req_reset */
    size_t argc, argcap;
    cd_arg *argv;
    size_t *aoff;
    char  *ibuf;
    size_t ibuf_cap;
    /* set by cd_req_parse on a protocol error: Redis's error text */
    const char *err;
} cd_req;

enum { CD_REQ_MORE = 0, CD_REQ_DONE = 1, CD_REQ_ERROR = -1, CD_REQ_NOMEM = -2 };

/* Parses the request starting at buf[0] (len bytes available).
 * Returns CD_REQ_DONE with r->argc elements in r->argv (argc may be 0: an
 * empty line or `*0`, which get no reply) and *used set to the bytes the
 * request took; CD_REQ_MORE when more bytes are needed; CD_REQ_ERROR with
 * r->err set (the connection must be closed after the error is sent);
 * CD_REQ_NOMEM. unauth != 0 applies the unauthenticated limits. */
int  cd_req_parse(cd_req *r, const char *buf, size_t len, int unauth, size_t *used);
/* The total bytes the request in progress needs to complete, when the
 * parser knows it (it is reading a bulk), else 0: lets the reader size its
 * buffer once for a big bulk. */
size_t cd_req_wants(const cd_req *r);
/* Ready for the next request (keeps the allocations). */
void cd_req_reset(cd_req *r);
void cd_req_free(cd_req *r);

/* Redis's string2ll: strict decimal (no '+', no leading zeros, no spaces).
 * 1 on success. */
int  cd_str2ll(const char *s, size_t len, long long *out);

#endif
