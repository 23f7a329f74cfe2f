/*
 * resp.c: the request parser (see resp.h): RESP multibulk requests
 * (`*N\r\n$len\r\nbytes\r\n...`) and inline commands (`SET a "b c"\n`),
 * following redis-server 7.0's processMultibulkBuffer and
 * processInlineBuffer byte for byte, errors included, since clients and
 * Redis's own test suite rely on those exact behaviours:
 *
 * - a count line is found by the first '\r' before any NUL byte (Redis
 *   uses strchr); the byte after that '\r' must have arrived, and is not
 *   checked; the two bytes after a bulk's data are skipped, not checked;
 * - an inline line ends at the first '\n' before any NUL byte, an optional
 *   '\r' before it is dropped, and its arguments are split as sdssplitargs
 *   does; an empty line is a request with no arguments (no reply);
 * - no count or line may run past 64 KiB without its terminator, no bulk
 *   may exceed 512 MiB, and nothing is allocated from a count before the
 *   bytes it announces have arrived (the element array grows as elements
 *   arrive), so a hostile header costs no memory.
 */
#include "resp.h"

#include <ctype.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

int cd_str2ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    int neg = 0;
    unsigned long long v = 0;

    if (len == 0 || len > 20) return 0;
    if (len == 1 && s[0] == '0') { *out = 0; return 1; }
    if (s[0] == '-') {
        neg = 1;
        if (++i == len) return 0;
    }
    if (s[i] < '1' || s[i] > '9') return 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9') return 0;
        if (v > (ULLONG_MAX - 9) / 10) return 0;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (neg) {
        if (v > (unsigned long long)LLONG_MAX + 1) return 0;
        *out = (v == (unsigned long long)LLONG_MAX + 1) ? LLONG_MIN : -(long long)v;
    } else {
        if (v > (unsigned long long)LLONG_MAX) return 0;
        *out = (long long)v;
    }
    return 1;
}

/* The offset of the first c in buf[from, len) that comes before any NUL
 * byte, or -1: strchr's view of the buffer, which Redis's parser has. */
static long cd_req_find(const char *buf, size_t from, size_t len, char c)
{
    for (size_t i = from; i < len; i++) {
        if (buf[i] == c) return (long)i;
        if (buf[i] == '\0') return -1;
    }
    return -1;
}

static int cd_req_push(cd_req *r, size_t off, size_t len)
{
    if (r->argc == r->argcap) {
        size_t ncap = r->argcap ? r->argcap * 2 : 16;
        size_t *no = realloc(r->aoff, ncap * sizeof *no);
        if (!no) return -1;
        r->aoff = no;
        cd_arg *na = realloc(r->argv, ncap * sizeof *na);
        if (!na) return -1;
        r->argv = na;
        r->argcap = ncap;
    }
    r->aoff[r->argc] = off;
    r->argv[r->argc].len = len;
    r->argc++;
    return 0;
}

/* Points r->argv into base once the request is complete. */
static int cd_req_finish(cd_req *r, const char *base)
{
    for (size_t i = 0; i < r->argc; i++) r->argv[i].p = base + r->aoff[i];
    return CD_REQ_DONE;
}

static int cd_req_fail(cd_req *r, const char *err)
{
    r->err = err;
    return CD_REQ_ERROR;
}

static int cd_hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* sdssplitargs over line[0, len), which holds no NUL byte: the unescaped
 * bytes go to r->ibuf, each argument's place to aoff and argv[].len. 0, -1 for
 * unbalanced quotes, -2 out of memory. */
static int cd_req_split_inline(cd_req *r, const char *line, size_t len)
{
    if (len + 1 > r->ibuf_cap) {
        char *nb = realloc(r->ibuf, len + 1);
        if (!nb) return -2;
        r->ibuf = nb;
        r->ibuf_cap = len + 1;
    }
    char *out = r->ibuf;
    size_t o = 0, i = 0;
#define AT(k) ((k) < len ? (unsigned char)line[k] : 0)
    for (;;) {
        while (i < len && isspace(AT(i))) i++;
        if (i >= len) return 0;
        size_t start = o;
        int inq = 0, insq = 0, done = 0;
        while (!done) {
            int c = AT(i);
            if (inq) {
                if (c == '\\' && AT(i + 1) == 'x' && cd_hexval(AT(i + 2)) >= 0 &&
                    cd_hexval(AT(i + 3)) >= 0) {
                    out[o++] = (char)(cd_hexval(AT(i + 2)) * 16 + cd_hexval(AT(i + 3)));
                    i += 3;
                } else if (c == '\\' && AT(i + 1)) {
                    i++;
                    switch (AT(i)) {
                    case 'n': out[o++] = '\n'; break;
                    case 'r': out[o++] = '\r'; break;
                    case 't': out[o++] = '\t'; break;
                    case 'b': out[o++] = '\b'; break;
                    case 'a': out[o++] = '\a'; break;
                    default:  out[o++] = (char)AT(i); break;
                    }
                } else if (c == '"') {
                    if (AT(i + 1) && !isspace(AT(i + 1))) return -1;
                    done = 1;
                } else if (!c) {
                    return -1;
                } else {
                    out[o++] = (char)c;
                }
            } else if (insq) {
                if (c == '\\' && AT(i + 1) == '\'') {
                    i++;
                    out[o++] = '\'';
                } else if (c == '\'') {
                    if (AT(i + 1) && !isspace(AT(i + 1))) return -1;
                    done = 1;
                } else if (!c) {
                    return -1;
                } else {
                    out[o++] = (char)c;
                }
            } else {
                switch (c) {
                case ' ': case '\n': case '\r': case '\t': case '\0':
                    done = 1;
                    break;
                case '"':  inq = 1; break;
                case '\'': insq = 1; break;
                default:   out[o++] = (char)c; break;
                }
            }
            if (AT(i)) i++;
        }
        if (cd_req_push(r, start, o - start) < 0) return -2;
    }
#undef AT
}

static int cd_req_inline(cd_req *r, const char *buf, size_t len, size_t *used)
{
    long nl = cd_req_find(buf, 0, len, '\n');
    if (nl < 0) {
        if (len > CD_INLINE_MAX) return cd_req_fail(r, "Protocol error: too big inline request");
        return CD_REQ_MORE;
    }
    size_t qlen = (size_t)nl;
    if (qlen > 0 && buf[qlen - 1] == '\r') qlen--;
    int rc = cd_req_split_inline(r, buf, qlen);
    if (rc == -1) return cd_req_fail(r, "Protocol error: unbalanced quotes in request");
    if (rc == -2) return CD_REQ_NOMEM;
    *used = (size_t)nl + 1;
    return cd_req_finish(r, r->ibuf);
}

/* The usual count line, 1 to 18 digits without a leading zero then
 * "\r\n", read in one pass (instead of a search for the '\r' and then a
 * parse of the digits): 1 with *ll and *end (the offset past the '\n'
 * position); 0 for anything else, which the general path then reads and
 * refuses with Redis's exact errors. */
static int cd_req_count_quick(const char *buf, size_t at, size_t len, long long *ll, size_t *end)
{
    const unsigned char *p = (const unsigned char *)buf + at + 1;
    if (len < at + 4 || *p < '1' || *p > '9') return 0; /* a digit, '\r' and '\n' at least */
    const unsigned char *last = (const unsigned char *)buf + len - 1; /* the '\n' must be in */
    size_t most = (size_t)(last - p) < 18 ? (size_t)(last - p) : 18; /* digits */
    const unsigned char *stop = p + most;
    long long v = 0;
    while (p < stop && (unsigned)(*p - '0') < 10) v = v * 10 + (*p++ - '0');
    if (p >= last || *p != '\r') return 0;
    *ll = v;
    *end = (size_t)((const char *)p - buf) + 2;
    return 1;
}

/* Reads a count line (`*N` or `$N`) at r->pos: 1 with *ll set, 0 when it
 * has not fully arrived, or an error. */
static int cd_req_count(cd_req *r, const char *buf, size_t len, long long *ll,
                        const char *toobig)
{
    size_t end;
    if (cd_req_count_quick(buf, r->pos, len, ll, &end)) {
        r->pos = end;
        return 1;
    }
    long cr = cd_req_find(buf, r->pos, len, '\r');
    if (cr < 0) {
        if (len - r->pos > CD_INLINE_MAX) return cd_req_fail(r, toobig);
        return 0;
    }
    if ((size_t)cr + 1 >= len) return 0; /* the '\n' has not arrived */
    if (!cd_str2ll(buf + r->pos + 1, (size_t)cr - r->pos - 1, ll)) *ll = LLONG_MIN;
    r->pos = (size_t)cr + 2;
    return 1;
}

static int cd_req_multibulk(cd_req *r, const char *buf, size_t len, int unauth,
                            size_t *used)
{
    long long ll;
    int rc;

    if (r->kind == 0) {
        rc = cd_req_count(r, buf, len, &ll, "Protocol error: too big mbulk count string");
        if (rc <= 0) return rc;
        if (ll == LLONG_MIN || ll > INT_MAX)
            return cd_req_fail(r, "Protocol error: invalid multibulk length");
        if (ll > CD_UNAUTH_MB_MAX && unauth)
            return cd_req_fail(r, "Protocol error: unauthenticated multibulk length");
        if (ll <= 0) {
            *used = r->pos;
            return cd_req_finish(r, buf);
        }
        r->kind = 1;
        r->mb_left = ll;
        r->bulk_len = -1;
    }
    while (r->mb_left > 0) {
        if (r->bulk_len == -1 && r->pos < len && buf[r->pos] == '$' &&
            cd_req_count_quick(buf, r->pos, len, &ll, &r->pos)) {
            if (ll > CD_BULK_MAX) return cd_req_fail(r, "Protocol error: invalid bulk length");
            if (ll > CD_UNAUTH_BULK_MAX && unauth)
                return cd_req_fail(r, "Protocol error: unauthenticated bulk length");
            r->bulk_len = ll;
        }
        if (r->bulk_len == -1) {
            size_t at = r->pos;
            long cr = cd_req_find(buf, at, len, '\r');
            if (cr < 0) {
                if (len - at > CD_INLINE_MAX)
                    return cd_req_fail(r, "Protocol error: too big bulk count string");
                return CD_REQ_MORE;
            }
            if ((size_t)cr + 1 >= len) return CD_REQ_MORE;
            if (buf[at] != '$') {
                /* one static buffer: the parser runs on one thread */
                static char msg[] = "Protocol error: expected '$', got ' '";
                msg[sizeof msg - 3] = buf[at];
                return cd_req_fail(r, msg);
            }
            if (!cd_str2ll(buf + at + 1, (size_t)cr - at - 1, &ll)) ll = -1;
            r->pos = (size_t)cr + 2;
            if (ll < 0 || ll > CD_BULK_MAX)
                return cd_req_fail(r, "Protocol error: invalid bulk length");
            if (ll > CD_UNAUTH_BULK_MAX && unauth)
                return cd_req_fail(r, "Protocol error: unauthenticated bulk length");
            r->bulk_len = ll;
        }
        if (len - r->pos < (size_t)r->bulk_len + 2) return CD_REQ_MORE;
        if (cd_req_push(r, r->pos, (size_t)r->bulk_len) < 0) return CD_REQ_NOMEM;
        r->pos += (size_t)r->bulk_len + 2;
        r->bulk_len = -1;
        r->mb_left--;
    }
    *used = r->pos;
    return cd_req_finish(r, buf);
}

int cd_req_parse(cd_req *r, const char *buf, size_t len, int unauth, size_t *used)
{
    if (len == 0) return CD_REQ_MORE;
    if (r->kind == 1 || (r->kind == 0 && buf[0] == '*'))
        return cd_req_multibulk(r, buf, len, unauth, used);
    return cd_req_inline(r, buf, len, used);
}

/* The bytes a request still needs before it can complete, as far as the
 * parser knows (0 when unknown): lets the reader size one read for a big
 * bulk instead of growing by small steps. */
size_t cd_req_wants(const cd_req *r)
{
    if (r->kind == 1 && r->bulk_len >= 0) return r->pos + (size_t)r->bulk_len + 2;
    return 0;
}

void cd_req_reset(cd_req *r)
{
    r->kind = 0;
    r->mb_left = 0;
    r->bulk_len = -1;
    r->pos = 0;
    r->argc = 0;
    r->err = NULL;
}

void cd_req_free(cd_req *r)
{
    free(r->aoff);
    free(r->ibuf);
    free(r->argv);
    memset(r, 0, sizeof *r);
}
