/*
 * reply.c: the reply writer. Every reply is appended to the client's
 * output buffer (sent by loop.c at the end of the event-loop round, after
 * the sync that covers it under --sync always). RESP3 clients (HELLO 3)
 * get nulls as `_`, maps as `%`, sets as `~`, verbatim text as `=`; RESP2
 * clients get Redis's RESP2 spellings of the same values.
 *
 * Errors, as Redis's addReplyError: a message that starts with '-' carries
 * its own code ("-WRONGPASS ...", "-NOAUTH ..."), any other gets "ERR ";
 * CR/LF inside an error become spaces (an error is one line).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calypsod.h"

int cd_buf_reserve(cd_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra) return 0;
    size_t need = b->len + extra;
    size_t ncap = b->cap ? b->cap : 1024;
    while (ncap < need) ncap = ncap < (64u << 20) ? ncap * 2 : ncap + (64u << 20);
    char *np = realloc(b->p, ncap);
    if (!np) return -1;
    b->p = np;
    b->cap = ncap;
    return 0;
}

int cd_buf_append(cd_buf *b, const void *p, size_t n)
{
    if (n == 0) return 0;
    if (cd_buf_reserve(b, n) < 0) return -1;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void cd_buf_free(cd_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static void cd_reply_oom(cd_client *c)
{
    cd_log(CD_LOG_WARNING, "client id=%llu: out of memory for a reply; closing it",
           (unsigned long long)c->id);
    if (c->fd < 0) c->closed = 1; /* a scratch buffer (KEYS, SCAN) */
    else cd_client_kill(c);
}

void cd_reply_raw(cd_client *c, const void *p, size_t n)
{
    if (c->closed) return;
    if (cd_buf_append(&c->out, p, n) < 0) cd_reply_oom(c);
}

/* The digits by hand: snprintf's format parsing cost more than the rest
 * of a GET's reply. */
size_t cd_fmt_header(char *out, char type, long long n)
{
    char digits[20];
    size_t nd = 0, k = 0;
    unsigned long long u = n < 0 ? 0ull - (unsigned long long)n : (unsigned long long)n;
    do {
        digits[nd++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    out[k++] = type;
    if (n < 0) out[k++] = '-';
    while (nd) out[k++] = digits[--nd];
    out[k++] = '\r';
    out[k++] = '\n';
    return k;
}

static void cd_reply_prefixed(cd_client *c, char type, long long n)
{
    char tmp[CD_HEADER_MAX];
    cd_reply_raw(c, tmp, cd_fmt_header(tmp, type, n));
}

void cd_reply_str(cd_client *c, const char *s)
{
    cd_reply_raw(c, "+", 1);
    cd_reply_raw(c, s, strlen(s));
    cd_reply_raw(c, "\r\n", 2);
}

void cd_reply_ok(cd_client *c) { cd_reply_raw(c, "+OK\r\n", 5); }

void cd_reply_err(cd_client *c, const char *s)
{
    size_t n = strlen(s);
    if (s[0] == '-') {
        s++;
        n--;
        cd_reply_raw(c, "-", 1);
    } else {
        cd_reply_raw(c, "-ERR ", 5);
    }
    size_t at = c->out.len;
    cd_reply_raw(c, s, n);
    if (!c->closed)
        for (size_t i = at; i < c->out.len; i++)
            if (c->out.p[i] == '\r' || c->out.p[i] == '\n') c->out.p[i] = ' ';
    cd_reply_raw(c, "\r\n", 2);
}

void cd_reply_errf(cd_client *c, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    cd_reply_err(c, tmp);
}

void cd_reply_int(cd_client *c, long long v) { cd_reply_prefixed(c, ':', v); }

/* One room check and three copies straight into the output buffer. */
void cd_reply_bulk(cd_client *c, const void *p, size_t n)
{
    if (c->closed) return;
    if (cd_buf_reserve(&c->out, CD_HEADER_MAX + n + 2) < 0) {
        cd_reply_oom(c);
        return;
    }
    char *at = c->out.p + c->out.len;
    size_t hl = cd_fmt_header(at, '$', (long long)n);
    if (n) memcpy(at + hl, p, n);
    memcpy(at + hl + n, "\r\n", 2);
    c->out.len += hl + n + 2;
}

void cd_reply_cstr(cd_client *c, const char *s) { cd_reply_bulk(c, s, strlen(s)); }

void cd_reply_null(cd_client *c)
{
    if (c->proto == 3) cd_reply_raw(c, "_\r\n", 3);
    else cd_reply_raw(c, "$-1\r\n", 5);
}

void cd_reply_null_array(cd_client *c)
{
    if (c->proto == 3) cd_reply_raw(c, "_\r\n", 3);
    else cd_reply_raw(c, "*-1\r\n", 5);
}

void cd_reply_array(cd_client *c, long long n) { cd_reply_prefixed(c, '*', n); }

void cd_reply_map(cd_client *c, long long n)
{
    if (c->proto == 3) cd_reply_prefixed(c, '%', n);
    else cd_reply_prefixed(c, '*', 2 * n);
}

void cd_reply_set(cd_client *c, long long n)
{
    cd_reply_prefixed(c, c->proto == 3 ? '~' : '*', n);
}

void cd_reply_verbatim(cd_client *c, const char *p, size_t n)
{
    if (c->proto == 3) {
        cd_reply_prefixed(c, '=', (long long)n + 4);
        cd_reply_raw(c, "txt:", 4);
        cd_reply_raw(c, p, n);
        cd_reply_raw(c, "\r\n", 2);
    } else {
        cd_reply_bulk(c, p, n);
    }
}

void cd_reply_engine_err(cd_client *c, int rc)
{
    switch (rc) {
    case CALYPSO_EKEYTOOLARGE:
        cd_reply_err(c, "key too large for this database (calypsod accepts keys up to 65527 bytes)");
        break;
    case CALYPSO_EVALUETOOLARGE:
        cd_reply_err(c, "string exceeds maximum allowed size (proto-max-bulk-len)");
        break;
    case CALYPSO_EEMPTYKEY:
        cd_reply_err(c, "empty keys are not supported by calypsod");
        break;
    case CALYPSO_ENOSPC:
        /* As Redis when its append-only file cannot be written: clients
         * and operators know MISCONF. Reads, deletes and BGREWRITEAOF (a
         * merge, which gives the space back) go on. */
        cd_reply_err(c, "-MISCONF Errors writing to the AOF file: No space left on device");
        cd_log(CD_LOG_WARNING, "disk full: %s", calypso_errmsg(cd_srv.db));
        break;
    default:
        cd_reply_errf(c, "storage error: %s", calypso_strerror(rc));
        cd_log(CD_LOG_WARNING, "engine error: %s", calypso_errmsg(cd_srv.db));
        break;
    }
}
