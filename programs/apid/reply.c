/*
 * reply.c: how apid answers. Every response is queued through apid_reply*
 * so that the status lands in the request (for /metrics) and the common
 * headers are set in one place: errors are JSON {"error", "code"}, and the
 * mapping from calypso's return codes to HTTP statuses lives here alone.
 *
 * Also the request-side helpers the handlers share: a header, a cookie,
 * and a constant-time comparison for secrets (the token, CSRF tokens).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apid.h"

static void apid_reply_free(void *p) { free(p); }

enum MHD_Result apid_reply_owned(apid_req *r, unsigned status, const char *ctype,
                                 void *body, size_t len, const char *const *headers)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, body, apid_reply_free);
    if (!resp) { free(body); return MHD_NO; }
    if (ctype) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    for (size_t i = 0; headers && headers[i]; i += 2)
        MHD_add_response_header(resp, headers[i], headers[i + 1]);
    r->status = (int)status;
    enum MHD_Result ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

enum MHD_Result apid_reply(apid_req *r, unsigned status, const char *ctype,
                           const void *body, size_t len)
{
    void *copy = malloc(len ? len : 1);
    if (!copy) return MHD_NO;
    if (len) memcpy(copy, body, len);
    return apid_reply_owned(r, status, ctype, copy, len, NULL);
}

enum MHD_Result apid_reply_json(apid_req *r, unsigned status, json_t *obj)
{
    if (!obj) return apid_reply_error(r, 500, "nomem", "out of memory");
    char *txt = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    if (!txt) return apid_reply_error(r, 500, "nomem", "out of memory");
    size_t n = strlen(txt);
    /* A trailing newline makes curl output readable; clients ignore it. */
    char *body = realloc(txt, n + 2);
    if (!body) { free(txt); return MHD_NO; }
    body[n] = '\n';
    return apid_reply_owned(r, status, "application/json", body, n + 1, NULL);
}

enum MHD_Result apid_reply_error(apid_req *r, unsigned status, const char *code,
                                 const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* The message may quote user bytes that are not UTF-8 (a key): jansson
     * refuses those, so fall back to the code alone. */
    json_t *m = json_string(msg);
    json_t *o = json_pack("{s:o,s:s}", "error", m ? m : json_string(code), "code", code);
    char *txt = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!txt) return MHD_NO;
    size_t n = strlen(txt);
    char *body = realloc(txt, n + 2);
    if (!body) { free(txt); return MHD_NO; }
    body[n] = '\n';
    return apid_reply_owned(r, status, "application/json", body, n + 1, NULL);
}

/* >> calypso return codes */
unsigned apid_status_of(int rc)
{
    switch (rc) {
    case CALYPSO_OK:             return 200;
    case CALYPSO_ENOTFOUND:
    case CALYPSO_EEXPIRED:       return 404;
    case CALYPSO_EKEYTOOLARGE:
    case CALYPSO_EEMPTYKEY:
    case CALYPSO_EINVALIDRANGE:
    case CALYPSO_EINVAL:         return 400;
    case CALYPSO_EVALUETOOLARGE: return 413;
    case CALYPSO_EMERGING:       return 409;
    case CALYPSO_EREADONLY:      return 403;
    default:                     return 500;
    }
}

static const char *apid_code_of(int rc)
{
    switch (rc) {
    case CALYPSO_ENOTFOUND:      return "not_found";
    case CALYPSO_EEXPIRED:       return "not_found";
    case CALYPSO_EKEYTOOLARGE:   return "key_too_large";
    case CALYPSO_EEMPTYKEY:      return "empty_key";
    case CALYPSO_EINVALIDRANGE:  return "invalid_range";
    case CALYPSO_EINVAL:         return "invalid";
    case CALYPSO_EVALUETOOLARGE: return "value_too_large";
    case CALYPSO_EMERGING:       return "merge_running";
    case CALYPSO_EREADONLY:      return "read_only";
    case CALYPSO_ENOMEM:         return "nomem";
    case CALYPSO_ECHECKSUM:      return "checksum";
    case CALYPSO_ECORRUPT:       return "corrupt";
    case CALYPSO_EIO:            return "io";
    default:                     return "internal";
    }
}

/* 500s carry calypso_errmsg (file, offset, errno); expected answers carry
 * calypso_strerror. The errmsg belongs to this thread's last call on db, so
 * this must run right after the failing call, on the same thread. */
enum MHD_Result apid_reply_rc(apid_req *r, apid *s, int rc)
{
    unsigned st = apid_status_of(rc);
    const char *msg = calypso_strerror(rc);
    if (st == 500 && s && s->db) {
        const char *em = calypso_errmsg(s->db);
        if (em && *em) msg = em;
    }
    return apid_reply_error(r, st, apid_code_of(rc), "%s", msg);
}

/* >> request helpers */
const char *apid_header(apid_req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

/* Cookie header: "a=1; b=2". Names match exactly; the value is copied
 * verbatim (apid's own cookies hold only token-safe characters). */
int apid_cookie(apid_req *r, const char *name, char *out, size_t cap)
{
    const char *h = apid_header(r, MHD_HTTP_HEADER_COOKIE);
    size_t nl = strlen(name);
    while (h && *h) {
        while (*h == ' ' || *h == ';') h++;
        const char *end = strchr(h, ';');
        size_t len = end ? (size_t)(end - h) : strlen(h);
        if (len > nl && h[nl] == '=' && strncmp(h, name, nl) == 0) {
            size_t vl = len - nl - 1;
            if (vl >= cap) return 0;
            memcpy(out, h + nl + 1, vl);
            out[vl] = '\0';
            return 1;
        }
        h = end;
    }
    return 0;
}

int apid_secret_eq(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char diff = (unsigned char)(la != lb);
    for (size_t i = 0; i < la; i++) diff |= (unsigned char)(a[i] ^ b[i % (lb ? lb : 1)]);
    return diff == 0 && lb > 0;
}
