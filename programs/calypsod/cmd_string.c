/*
 * cmd_string.c: the string commands (GET, SET and its options, the GET*
 * and SET* variants, APPEND, ranges, the INCR family, MGET/MSET/MSETNX)
 * with Redis 7.0's replies and error texts. Read-modify-write commands
 * (INCR, APPEND, SETRANGE...) are atomic because the event loop runs one
 * command at a time; they keep the key's expiry, as Redis does, while
 * SET, GETSET and MSET clear it.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calypsod.h"
#include "commands.h"

#define CD_STRING_MAX (512ll * 1024 * 1024)

/* Replies the value of key (or null). The value is read straight into
 * the output buffer (calypso_get_buf), after room left for the bulk
 * header, which is written in front of it once the length is known: GET
 * costs no allocation and one copy. */
static void cd_str_reply_value(cd_client *c, const cd_arg *key)
{
    enum { HDR = CD_HEADER_MAX }; /* "$" + up to 20 digits + CRLF */
    size_t vlen = 0;
    int rc = CALYPSO_ENOTFOUND;
    if (key->len && !c->closed && (cd_srv.tx || cd_srv.cur)) {
        size_t want = 4096;
        for (int tries = 0; tries < 3; tries++) {
            if (cd_buf_reserve(&c->out, HDR + want + 2) < 0) { rc = CALYPSO_ENOMEM; break; }
            void *at = c->out.p + c->out.len + HDR;
            size_t room = c->out.cap - c->out.len - HDR - 2;
            rc = cd_srv.tx ? calypso_txn_get_buf(cd_srv.tx, key->p, key->len, at, room, &vlen)
                           : calypso_get_buf(cd_srv.cur, key->p, key->len, at, room, &vlen);
            if (rc != CALYPSO_ETRUNC) break;
            want = vlen; /* the size it needs: room, and read again */
        }
    }
    if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED || rc == CALYPSO_EKEYTOOLARGE) {
        cd_srv.stat_misses++;
        cd_reply_null(c);
        return;
    }
    if (rc != CALYPSO_OK) {
        cd_reply_engine_err(c, rc);
        return;
    }
    cd_srv.stat_hits++;
    char hdr[HDR];
    size_t hl = cd_fmt_header(hdr, '$', (long long)vlen);
    char *at = c->out.p + c->out.len;
    memmove(at + hl, at + HDR, vlen);
    memcpy(at, hdr, hl);
    memcpy(at + hl + vlen, "\r\n", 2);
    c->out.len += hl + vlen + 2;
}

void cd_str_get(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_str_reply_value(c, &argv[1]);
}

/* >> SET and GETEX options */
enum {
    CD_SET_NX = 1, CD_SET_XX = 2, CD_SET_GET = 4, CD_SET_KEEPTTL = 8,
    CD_SET_EX = 16, CD_SET_PX = 32, CD_SET_EXAT = 64, CD_SET_PXAT = 128,
    CD_SET_PERSIST = 256,
};
#define CD_SET_EXPIRE (CD_SET_EX | CD_SET_PX | CD_SET_EXAT | CD_SET_PXAT)

/* Redis's parseExtendedStringArgumentsOrReply: options from argv[from];
 * *at_ms receives the absolute expiry asked for. 1 ok, 0 replied an error. */
static int cd_str_options(cd_client *c, int argc, cd_arg *argv, int from, int is_set,
                          int *flags, const cd_arg **expire)
{
    *expire = NULL;
    *flags = 0;
    for (int j = from; j < argc; j++) {
        const cd_arg *a = &argv[j];
        int has_next = j + 1 < argc;
        if (is_set && cd_arg_is(a, "nx") && !(*flags & CD_SET_XX)) {
            *flags |= CD_SET_NX;
        } else if (is_set && cd_arg_is(a, "xx") && !(*flags & CD_SET_NX)) {
            *flags |= CD_SET_XX;
        } else if (is_set && cd_arg_is(a, "get")) {
            *flags |= CD_SET_GET;
        } else if (is_set && cd_arg_is(a, "keepttl") && !(*flags & CD_SET_EXPIRE)) {
            *flags |= CD_SET_KEEPTTL;
        } else if (!is_set && cd_arg_is(a, "persist") && !(*flags & CD_SET_EXPIRE)) {
            *flags |= CD_SET_PERSIST;
        } else if (has_next && !(*flags & (CD_SET_KEEPTTL | CD_SET_PERSIST | CD_SET_EXPIRE)) &&
                   (cd_arg_is(a, "ex") || cd_arg_is(a, "px") || cd_arg_is(a, "exat") ||
                    cd_arg_is(a, "pxat"))) {
            if (cd_arg_is(a, "ex")) *flags |= CD_SET_EX;
            else if (cd_arg_is(a, "px")) *flags |= CD_SET_PX;
            else if (cd_arg_is(a, "exat")) *flags |= CD_SET_EXAT;
            else *flags |= CD_SET_PXAT;
            *expire = &argv[++j];
        } else {
            cd_reply_err(c, "syntax error");
            return 0;
        }
    }
    return 1;
}

/* The absolute expiry an EX/PX/EXAT/PXAT argument asks for (0: none);
 * 1 ok, 0 replied the error. */
static int cd_str_expire_at(cd_client *c, const cd_arg *expire, int flags,
                            const char *cmdname, uint64_t *at_ms)
{
    int unit_s = (flags & (CD_SET_EX | CD_SET_EXAT)) != 0;
    *at_ms = 0;
    if (!expire) return 1;
    long long ms;
    if (!cd_arg_ll(c, expire, &ms)) return 0;
    if (ms <= 0 || (unit_s && ms > LLONG_MAX / 1000)) goto invalid;
    if (unit_s) ms *= 1000;
    if (flags & (CD_SET_EX | CD_SET_PX)) {
        int64_t now = cd_now_ms();
        if (ms > LLONG_MAX - now) goto invalid;
        ms += now;
    }
    *at_ms = (uint64_t)ms;
    return 1;
invalid:
    cd_reply_errf(c, "invalid expire time in '%s' command", cmdname);
    return 0;
}

void cd_str_set(cd_client *c, int argc, cd_arg *argv)
{
    int flags;
    uint64_t at;
    const cd_arg *ex;
    if (!cd_str_options(c, argc, argv, 3, 1, &flags, &ex)) return;
    if (!cd_str_expire_at(c, ex, flags, "set", &at)) return;
    const cd_arg *key = &argv[1];
    void *old = NULL;
    size_t oldn = 0;
    int found = 0;
    if (flags & (CD_SET_GET | CD_SET_NX | CD_SET_XX)) {
        if (flags & CD_SET_GET) {
            found = cd_kv_get(key, &old, &oldn);
        } else {
            found = cd_kv_exists(key->p, key->len);
        }
        if (found < 0) { cd_reply_engine_err(c, found); return; }
    }
    int skip = ((flags & CD_SET_NX) && found) || ((flags & CD_SET_XX) && !found);
    if (!skip) {
        if (flags & CD_SET_KEEPTTL) {
            int rc = cd_kv_expiry(key, &at);
            if (rc < 0) { calypso_free(old); cd_reply_engine_err(c, rc); return; }
        }
        int rc = cd_kv_put(key->p, key->len, argv[2].p, argv[2].len, at);
        if (rc < 0) { calypso_free(old); cd_reply_engine_err(c, rc); return; }
    }
    if (flags & CD_SET_GET) {
        if (found) cd_reply_bulk(c, old, oldn);
        else cd_reply_null(c);
    } else if (skip) {
        cd_reply_null(c);
    } else {
        cd_reply_ok(c);
    }
    calypso_free(old);
}

void cd_str_setnx(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    int found = cd_kv_exists(argv[1].p, argv[1].len);
    if (found < 0) { cd_reply_engine_err(c, found); return; }
    if (found) { cd_reply_int(c, 0); return; }
    int rc = cd_kv_put(argv[1].p, argv[1].len, argv[2].p, argv[2].len, 0);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, 1);
}

static void cd_str_setex_generic(cd_client *c, cd_arg *argv, int unit_s, const char *name)
{
    long long t;
    if (!cd_arg_ll(c, &argv[2], &t)) return;
    int64_t now = cd_now_ms();
    if (t <= 0 || (unit_s && t > LLONG_MAX / 1000)) goto invalid;
    if (unit_s) t *= 1000;
    if (t > LLONG_MAX - now) goto invalid;
    int rc = cd_kv_put(argv[1].p, argv[1].len, argv[3].p, argv[3].len, (uint64_t)(t + now));
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_ok(c);
    return;
invalid:
    cd_reply_errf(c, "invalid expire time in '%s' command", name);
}

void cd_str_setex(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_str_setex_generic(c, argv, 1, "setex");
}

void cd_str_psetex(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_str_setex_generic(c, argv, 0, "psetex");
}

void cd_str_getset(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    void *old;
    size_t n;
    int found = cd_kv_get(&argv[1], &old, &n);
    if (found < 0) { cd_reply_engine_err(c, found); return; }
    int rc = cd_kv_put(argv[1].p, argv[1].len, argv[2].p, argv[2].len, 0);
    if (rc < 0) { calypso_free(old); cd_reply_engine_err(c, rc); return; }
    if (found) cd_reply_bulk(c, old, n);
    else cd_reply_null(c);
    calypso_free(old);
}

void cd_str_getdel(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    void *old;
    size_t n;
    int found = cd_kv_get(&argv[1], &old, &n);
    if (found < 0) { cd_reply_engine_err(c, found); return; }
    if (!found) { cd_reply_null(c); return; }
    int rc = cd_kv_del(argv[1].p, argv[1].len);
    if (rc < 0) { calypso_free(old); cd_reply_engine_err(c, rc); return; }
    cd_reply_bulk(c, old, n);
    calypso_free(old);
}

void cd_str_getex(cd_client *c, int argc, cd_arg *argv)
{
    int flags;
    uint64_t at;
    const cd_arg *ex;
    if (!cd_str_options(c, argc, argv, 2, 0, &flags, &ex)) return;
    void *v;
    size_t n;
    int found = cd_kv_get(&argv[1], &v, &n);
    if (found < 0) { cd_reply_engine_err(c, found); return; }
    if (!found) { cd_reply_null(c); return; }
    if (!cd_str_expire_at(c, ex, flags, "getex", &at)) { calypso_free(v); return; }
    int rc = 0;
    if (flags & CD_SET_EXPIRE) {
        rc = cd_kv_put(argv[1].p, argv[1].len, v, n, at);
    } else if (flags & CD_SET_PERSIST) {
        uint64_t cur;
        rc = cd_kv_expiry(&argv[1], &cur);
        if (rc > 0 && cur) rc = cd_kv_put(argv[1].p, argv[1].len, v, n, 0);
    }
    if (rc < 0) { calypso_free(v); cd_reply_engine_err(c, rc); return; }
    cd_reply_bulk(c, v, n);
    calypso_free(v);
}

/* Reads key with its expiry, for the commands that rewrite a value and
 * keep its TTL. 1 found, 0 missing; on error it has replied and returns -1. */
static int cd_str_read(cd_client *c, const cd_arg *key, void **v, size_t *n, uint64_t *at)
{
    int rc = cd_kv_get(key, v, n);
    if (rc > 0) rc = cd_kv_expiry(key, at);
    else *at = 0;
    if (rc < 0) {
        calypso_free(*v);
        *v = NULL;
        cd_reply_engine_err(c, rc);
        return -1;
    }
    return rc;
}

void cd_str_append(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    void *v;
    size_t n;
    uint64_t at;
    int found = cd_str_read(c, &argv[1], &v, &n, &at);
    if (found < 0) return;
    if (found && (long long)(n + argv[2].len) > CD_STRING_MAX) {
        calypso_free(v);
        cd_reply_err(c, "string exceeds maximum allowed size (proto-max-bulk-len)");
        return;
    }
    int rc;
    size_t total = n + argv[2].len;
    if (!found || n == 0) {
        rc = cd_kv_put(argv[1].p, argv[1].len, argv[2].p, argv[2].len, at);
    } else {
        char *nv = malloc(total ? total : 1);
        if (!nv) { calypso_free(v); cd_reply_err(c, "out of memory"); return; }
        memcpy(nv, v, n);
        memcpy(nv + n, argv[2].p, argv[2].len);
        rc = cd_kv_put(argv[1].p, argv[1].len, nv, total, at);
        free(nv);
    }
    calypso_free(v);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, (long long)total);
}

void cd_str_strlen(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    void *v;
    size_t n;
    int found = cd_kv_get(&argv[1], &v, &n);
    if (found < 0) { cd_reply_engine_err(c, found); return; }
    cd_reply_int(c, found ? (long long)n : 0);
    calypso_free(v);
}

void cd_str_getrange(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    long long start, end;
    if (!cd_arg_ll(c, &argv[2], &start) || !cd_arg_ll(c, &argv[3], &end)) return;
    void *v;
    size_t n;
    int found = cd_kv_get(&argv[1], &v, &n);
    if (found < 0) { cd_reply_engine_err(c, found); return; }
    long long len = (long long)n;
    if (!found || (start < 0 && end < 0 && start > end)) goto empty;
    if (start < 0) start = len + start;
    if (end < 0) end = len + end;
    if (start < 0) start = 0;
    if (end < 0) end = 0;
    if (end >= len) end = len - 1;
    if (start > end || len == 0) goto empty;
    cd_reply_bulk(c, (char *)v + start, (size_t)(end - start + 1));
    calypso_free(v);
    return;
empty:
    calypso_free(v);
    cd_reply_bulk(c, "", 0);
}

void cd_str_setrange(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    long long off;
    if (!cd_arg_ll(c, &argv[2], &off)) return;
    if (off < 0) { cd_reply_err(c, "offset is out of range"); return; }
    void *v;
    size_t n;
    uint64_t at;
    int found = cd_str_read(c, &argv[1], &v, &n, &at);
    if (found < 0) return;
    const cd_arg *val = &argv[3];
    if (val->len == 0) {
        calypso_free(v);
        cd_reply_int(c, found ? (long long)n : 0);
        return;
    }
    if (off + (long long)val->len > CD_STRING_MAX) {
        calypso_free(v);
        cd_reply_err(c, "string exceeds maximum allowed size (proto-max-bulk-len)");
        return;
    }
    size_t need = (size_t)off + val->len;
    size_t total = need > n ? need : n;
    char *nv = calloc(1, total);
    if (!nv) { calypso_free(v); cd_reply_err(c, "out of memory"); return; }
    if (found) memcpy(nv, v, n);
    memcpy(nv + off, val->p, val->len);
    calypso_free(v);
    int rc = cd_kv_put(argv[1].p, argv[1].len, nv, total, at);
    free(nv);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, (long long)total);
}

/* >> counters */
static void cd_str_incr_generic(cd_client *c, const cd_arg *key, long long incr)
{
    void *v;
    size_t n;
    uint64_t at;
    int found = cd_str_read(c, key, &v, &n, &at);
    if (found < 0) return;
    long long old = 0;
    if (found && (n > 20 || !cd_str2ll(v, n, &old))) {
        calypso_free(v);
        cd_reply_err(c, "value is not an integer or out of range");
        return;
    }
    calypso_free(v);
    if ((incr < 0 && old < 0 && incr < (LLONG_MIN - old)) ||
        (incr > 0 && old > 0 && incr > (LLONG_MAX - old))) {
        cd_reply_err(c, "increment or decrement would overflow");
        return;
    }
    long long nv = old + incr;
    char buf[32];
    int k = snprintf(buf, sizeof buf, "%lld", nv);
    int rc = cd_kv_put(key->p, key->len, buf, (size_t)k, at);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, nv);
}

void cd_str_incr(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_str_incr_generic(c, &argv[1], 1);
}

void cd_str_decr(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_str_incr_generic(c, &argv[1], -1);
}

void cd_str_incrby(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    long long incr;
    if (!cd_arg_ll(c, &argv[2], &incr)) return;
    cd_str_incr_generic(c, &argv[1], incr);
}

void cd_str_decrby(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    long long incr;
    if (!cd_arg_ll(c, &argv[2], &incr)) return;
    if (incr == LLONG_MIN) { cd_reply_err(c, "decrement would overflow"); return; }
    cd_str_incr_generic(c, &argv[1], -incr);
}

/* Redis's string2ld: a long double with no spaces, no NaN. */
static int cd_str2ld(const char *s, size_t len, long double *out)
{
    char buf[5120];
    if (len == 0 || len >= sizeof buf) return 0;
    memcpy(buf, s, len);
    buf[len] = '\0';
    if (isspace((unsigned char)buf[0])) return 0;
    char *end;
    errno = 0;
    long double v = strtold(buf, &end);
    if ((size_t)(end - buf) != len || (errno == ERANGE && (v == HUGE_VALL || v == -HUGE_VALL || fpclassify(v) == FP_ZERO)) ||
        isnan(v))
        return 0;
    *out = v;
    return 1;
}

void cd_str_incrbyfloat(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    long double incr, old = 0;
    if (!cd_str2ld(argv[2].p, argv[2].len, &incr)) {
        cd_reply_err(c, "value is not a valid float");
        return;
    }
    void *v;
    size_t n;
    uint64_t at;
    int found = cd_str_read(c, &argv[1], &v, &n, &at);
    if (found < 0) return;
    if (found && !cd_str2ld(v, n, &old)) {
        calypso_free(v);
        cd_reply_err(c, "value is not a valid float");
        return;
    }
    calypso_free(v);
    long double nv = old + incr;
    if (isnan(nv) || isinf(nv)) {
        cd_reply_err(c, "increment would produce NaN or Infinity");
        return;
    }
    /* Redis's ld2string in human mode: 17 decimals, trailing zeros cut */
    char buf[5120];
    int l = snprintf(buf, sizeof buf, "%.17Lf", nv);
    if (strchr(buf, '.')) {
        while (buf[l - 1] == '0') l--;
        if (buf[l - 1] == '.') l--;
    }
    if (l == 2 && buf[0] == '-' && buf[1] == '0') { buf[0] = '0'; l = 1; }
    int rc = cd_kv_put(argv[1].p, argv[1].len, buf, (size_t)l, at);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_bulk(c, buf, (size_t)l);
}

/* >> several keys */

/* Replies to keys[0..n) read together: a bulk or a null each; a key whose
 * read failed gets the engine's error when `errors` (GETs of a pipeline),
 * else a null (MGET: an error cannot break the array's shape). */
static void cd_str_reply_many(cd_client *c, size_t n, const cd_arg *keys, int errors)
{
    enum { GROUP = 64 };
    void *v[GROUP];
    size_t vl[GROUP];
    int found[GROUP];
    for (size_t at = 0; at < n; at += GROUP) {
        size_t m = n - at < GROUP ? n - at : GROUP;
        cd_kv_get_many(m, keys + at, v, vl, found);
        for (size_t j = 0; j < m; j++) {
            if (found[j] > 0) {
                cd_srv.stat_hits++;
                cd_reply_bulk(c, v[j], vl[j]);
                calypso_free(v[j]);
            } else if (found[j] < 0 && errors) {
                cd_reply_engine_err(c, found[j]);
            } else {
                cd_srv.stat_misses++;
                cd_reply_null(c);
            }
        }
    }
}

void cd_str_get_batch(cd_client *c, size_t n, const cd_arg *keys)
{
    cd_db_use(c->db);   /* the loop's GET runs skip cd_cmd_call */
    /* One GET alone (no pipelining) reads straight into the output buffer:
     * calypso_get_many would allocate the value and copy it twice. */
    if (n == 1) cd_str_reply_value(c, &keys[0]);
    else cd_str_reply_many(c, n, keys, 1);
}

void cd_str_mget(cd_client *c, int argc, cd_arg *argv)
{
    cd_reply_array(c, argc - 1);
    cd_str_reply_many(c, (size_t)argc - 1, argv + 1, 0);
}

static int cd_str_mset_check(cd_client *c, int argc, const char *name)
{
    if (argc % 2 == 1) return 1;
    cd_reply_errf(c, "wrong number of arguments for '%s' command", name);
    return 0;
}

static void cd_str_mset_write(cd_client *c, int argc, cd_arg *argv, int nx)
{
    for (int i = 1; i < argc; i += 2) {
        int rc = cd_kv_put(argv[i].p, argv[i].len, argv[i + 1].p, argv[i + 1].len, 0);
        if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    }
    if (nx) cd_reply_int(c, 1);
    else cd_reply_ok(c);
}

void cd_str_mset(cd_client *c, int argc, cd_arg *argv)
{
    if (!cd_str_mset_check(c, argc, "mset")) return;
    /* refuse the whole command before writing anything */
    for (int i = 1; i < argc; i += 2)
        if (argv[i].len == 0) { cd_reply_engine_err(c, CALYPSO_EEMPTYKEY); return; }
    cd_str_mset_write(c, argc, argv, 0);
}

void cd_str_msetnx(cd_client *c, int argc, cd_arg *argv)
{
    if (!cd_str_mset_check(c, argc, "msetnx")) return;
    for (int i = 1; i < argc; i += 2) {
        int rc = cd_kv_exists(argv[i].p, argv[i].len);
        if (rc < 0) { cd_reply_engine_err(c, rc); return; }
        if (rc) { cd_reply_int(c, 0); return; }
        if (argv[i].len == 0) { cd_reply_engine_err(c, CALYPSO_EEMPTYKEY); return; }
    }
    cd_str_mset_write(c, argc, argv, 1);
}
