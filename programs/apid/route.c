/*
 * route.c: the route table and the request lifecycle on libmicrohttpd.
 *
 * A request is born in the URI log callback (apid_uri_log), which sees the
 * request target exactly as sent, before libmicrohttpd parses it: apid
 * keeps that raw text and decodes paths and queries itself, so keys may
 * hold any byte (%00 included) and malformed escapes answer 400.
 *
 * The first access-handler call (headers read, body not yet) does every
 * check that needs no body, in this order: 414 target too long, 404 no
 * route, 405 method not allowed (with Allow), 401 token, 413 declared
 * Content-Length over the route's limit. Answering there means the body is
 * never read: libmicrohttpd sends the reply without "100 Continue" and
 * closes the connection. Bodies then accumulate (a chunked body past the
 * limit is discarded and answered 413 at its end), and the handler runs
 * once the body is complete. apid_completed records the metrics.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apid.h"

/* >> the table: exact paths first where a prefix would also match */
static const apid_route apid_routes[] = {
    { "healthz",    "/healthz",           0, APID_GET, APID_AUTH_NONE, APID_BODY_NONE, apid_route_healthz },
    { "metrics",    "/metrics",           0, APID_GET, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_metrics },
    { "get",        "/get/",              1, APID_GET, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_get },
    { "set",        "/set/",              1, APID_POST, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_set },
    { "keys",       "/v1/keys",           0, APID_GET, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_keys },
    { "key",        "/v1/keys/",          1, APID_GET | APID_PUT | APID_DELETE, APID_AUTH_BEARER, APID_BODY_VALUE, apid_route_key },
    { "batch",      "/v1/batch",          0, APID_POST, APID_AUTH_BEARER, APID_BODY_DATA, apid_route_batch },
    { "mget",       "/v1/mget",           0, APID_POST, APID_AUTH_BEARER, APID_BODY_DATA, apid_route_mget },
    { "stats",      "/v1/stats",          0, APID_GET, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_stats },
    { "merge",      "/v1/merge",          0, APID_POST, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_merge },
    { "namespaces", "/v1/namespaces",     0, APID_GET, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_namespaces },
    { "namespace",  "/v1/namespaces/",    1, APID_GET | APID_PUT | APID_DELETE, APID_AUTH_BEARER, APID_BODY_NONE, apid_route_namespace },
    { "root",       "/",                  0, APID_GET, APID_AUTH_NONE, APID_BODY_NONE, apid_route_root },
    { "browse",     "/browse",            0, APID_GET, APID_AUTH_COOKIE, APID_BODY_NONE, apid_route_browse },
    { "browse_key", "/browse/key",        0, APID_GET, APID_AUTH_COOKIE, APID_BODY_NONE, apid_route_browse_key },
    { "browse_put", "/browse/put",        0, APID_POST, APID_AUTH_COOKIE, APID_BODY_DATA, apid_route_browse_put },
    { "browse_delete", "/browse/delete",  0, APID_POST, APID_AUTH_COOKIE, APID_BODY_DATA, apid_route_browse_delete },
    { "browse_ttl", "/browse/ttl",        0, APID_POST, APID_AUTH_COOKIE, APID_BODY_DATA, apid_route_browse_ttl },
    { "browse_merge", "/browse/merge",    0, APID_POST, APID_AUTH_COOKIE, APID_BODY_DATA, apid_route_browse_merge },
    { "browse_login", "/browse/login",    0, APID_POST, APID_AUTH_NONE, APID_BODY_DATA, apid_route_browse_login },
    { "static",     "/browse/static/",    1, APID_GET, APID_AUTH_NONE, APID_BODY_NONE, apid_route_browse_static },
};
#define APID_NROUTES (sizeof apid_routes / sizeof apid_routes[0])

size_t apid_route_count(void) { return APID_NROUTES; }
const apid_route *apid_route_at(size_t i) { return i < APID_NROUTES ? &apid_routes[i] : NULL; }

const apid_route *apid_route_find(const char *path, size_t len, int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < APID_NROUTES; i++) {
        const apid_route *rt = &apid_routes[i];
        size_t pl = strlen(rt->path);
        if (rt->prefix ? (len > pl && memcmp(path, rt->path, pl) == 0)
                       : (len == pl && memcmp(path, rt->path, pl) == 0)) {
            *path_known = 1;
            return rt;
        }
    }
    return NULL;
}

static int apid_method_of(const char *m)
{
    if (!strcmp(m, "GET")) return APID_GET;
    if (!strcmp(m, "HEAD")) return APID_HEAD;
    if (!strcmp(m, "PUT")) return APID_PUT;
    if (!strcmp(m, "POST")) return APID_POST;
    if (!strcmp(m, "DELETE")) return APID_DELETE;
    return APID_OTHER;
}

static void apid_allow_list(const apid_route *rt, char *out, size_t cap)
{
    static const struct { int m; const char *name; } names[] = {
        { APID_GET, "GET, HEAD" }, { APID_PUT, "PUT" }, { APID_POST, "POST" }, { APID_DELETE, "DELETE" } };
    out[0] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(rt->methods & names[i].m)) continue;
        if (out[0]) strncat(out, ", ", cap - strlen(out) - 1);
        strncat(out, names[i].name, cap - strlen(out) - 1);
    }
}

/* >> request birth and death */
void *apid_uri_log(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    apid_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->conn = conn;
    r->t0_ns = apid_now_ns();
    r->uri_len = strlen(uri);
    r->uri = malloc(r->uri_len + 1);
    if (!r->uri) { free(r); return NULL; }
    memcpy(r->uri, uri, r->uri_len + 1);
    const char *q = memchr(r->uri, '?', r->uri_len);
    r->path = r->uri;
    r->path_len = q ? (size_t)(q - r->uri) : r->uri_len;
    r->query = q ? q + 1 : r->uri + r->uri_len;
    r->query_len = q ? r->uri_len - r->path_len - 1 : 0;
    return r;
}

void apid_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                    enum MHD_RequestTerminationCode toe)
{
    (void)cls; (void)conn; (void)toe;
    apid_req *r = *con_cls;
    if (!r) return;
    if (r->status) apid_metrics_record(r->route, (unsigned)r->status, apid_now_ns() - r->t0_ns);
    apid_ns_release(r->ns);
    free(r->body);
    free(r->uri);
    free(r);
    *con_cls = NULL;
}

/* >> the checks of the first call */
static int apid_auth_ok(apid *s, apid_req *r)
{
    if (!s->cfg.token || r->route->auth == APID_AUTH_NONE) return 1;
    if (r->route->auth == APID_AUTH_COOKIE) {
        char tok[512];
        return apid_cookie(r, "apid_token", tok, sizeof tok) && apid_secret_eq(tok, s->cfg.token);
    }
    const char *h = apid_header(r, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    return apid_secret_eq(h + 7, s->cfg.token);
}

static uint64_t apid_limit_of(apid *s, const apid_route *rt)
{
    if (rt->body == APID_BODY_VALUE) return s->max_value;
    return s->cfg.max_body;     /* data bodies; others are read and dropped */
}

/* Runs the first-call checks; returns 1 and sets *res when it answered. */
static int apid_precheck(apid *s, apid_req *r, const char *method, enum MHD_Result *res)
{
    int known;
    r->method = apid_method_of(method);
    if (r->uri_len > APID_MAX_URI) {
        *res = apid_reply_error(r, 414, "uri_too_long", "request target over %u bytes", APID_MAX_URI);
        return 1;
    }
    r->route = apid_route_find(r->path, r->path_len, &known);
    if (!r->route) {
        *res = apid_reply_error(r, 404, "no_route", "no such route");
        return 1;
    }
    int allowed = r->route->methods | ((r->route->methods & APID_GET) ? APID_HEAD : 0);
    if (!(r->method & allowed)) {
        char allow[64];
        apid_allow_list(r->route, allow, sizeof allow);
        const char *hdr[] = { "Allow", allow, NULL };
        const char *msg = "{\"error\":\"method not allowed\",\"code\":\"method_not_allowed\"}\n";
        char *body = strdup(msg);
        *res = body ? apid_reply_owned(r, 405, "application/json", body, strlen(msg), hdr) : MHD_NO;
        return 1;
    }
    if (r->route->prefix) {
        size_t pl = strlen(r->route->path);
        r->param = r->path + pl;
        r->param_len = r->path_len - pl;
    }
    if (!apid_auth_ok(s, r)) {
        if (r->route->auth == APID_AUTH_COOKIE && r->method & (APID_GET | APID_HEAD)) {
            *res = apid_browse_login_page(s, r, NULL);
            return 1;
        }
        *res = apid_reply_error(r, 401, "unauthorized", "missing or wrong bearer token");
        return 1;
    }
    if (apid_query_valid(r->query, r->query_len)) {
        *res = apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in the query");
        return 1;
    }
    r->body_limit = apid_limit_of(s, r->route);
    const char *cl = apid_header(r, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (*end == '\0' && n > r->body_limit) {
            *res = apid_reply_error(r, 413, "too_large", "body of %llu bytes over the limit of %llu",
                                    n, (unsigned long long)r->body_limit);
            return 1;
        }
    }
    return 0;
}

/* Appends one chunk of the body, or drops it once over the limit. */
static int apid_body_append(apid *s, apid_req *r, const char *data, size_t n)
{
    (void)s;
    if (r->body_over || r->body_len + n > r->body_limit) {
        r->body_over = 1;
        return 0;
    }
    if (r->route->body == APID_BODY_NONE) { r->body_len += n; return 0; }   /* counted, dropped */
    if (r->body_len + n + 1 > r->body_cap) {
        size_t cap = r->body_cap ? r->body_cap : 4096;
        while (cap < r->body_len + n + 1) cap *= 2;
        char *p = realloc(r->body, cap);
        if (!p) return -1;
        r->body = p;
        r->body_cap = cap;
    }
    memcpy(r->body + r->body_len, data, n);
    r->body_len += n;
    r->body[r->body_len] = '\0';
    return 0;
}

enum MHD_Result apid_access(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version,
                            const char *upload, size_t *upload_size, void **con_cls)
{
    (void)url; (void)version;
    apid *s = cls;
    apid_req *r = *con_cls;
    if (!r) return MHD_NO;                 /* out of memory at birth: drop */
    r->conn = conn;
    if (!r->started) {
        enum MHD_Result res;
        r->started = 1;
        if (apid_precheck(s, r, method, &res)) return res;
        /* The handler runs on a later call, once any body is in: a reply
         * queued on this first call would make libmicrohttpd close the
         * connection (it cannot know the body is empty), which costs
         * keep-alive clients a new connection per request. */
        return MHD_YES;
    }
    if (*upload_size) {
        if (apid_body_append(s, r, upload, *upload_size)) return MHD_NO;
        *upload_size = 0;
        return MHD_YES;
    }
    if (r->status) return MHD_YES;         /* already answered */
    if (r->body_over)
        return apid_reply_error(r, 413, "too_large", "body over the limit of %llu bytes",
                                (unsigned long long)r->body_limit);
    return r->route->handler(s, r);
}
