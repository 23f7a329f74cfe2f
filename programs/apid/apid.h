/*
 * apid.h: what the files of apid, calypso's HTTP server, share: the server
 * state, one request's state, the route table's shape, and the helpers each
 * file exports (codec, buffers, replies, metrics, history, templates).
 *
 * apid serves one calypso handle to many libmicrohttpd threads. The handle
 * is thread-safe (calypso.h), so requests on the default namespace take no
 * lock of apid's own; the cache of namespace handles (ns.c) has a mutex,
 * the metrics are atomic counters and the history ring has a mutex of its
 * own.
 * Nothing here reaches into calypso's internals: only calypso.h.
 */
#ifndef APID_H
#define APID_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <microhttpd.h>
#include <jansson.h>

#include "calypso.h"

#define APID_VERSION CALYPSO_VERSION

/* The longest request target (path and query, as sent) apid accepts; a
 * longer one is answered 414. Room for a 4 KiB key percent-encoded three
 * times over (12 KiB) plus a query. libmicrohttpd itself answers 414 past
 * its per-connection memory (APID_CONN_MEMORY), which is larger. */
#define APID_MAX_URI        16384u
#define APID_CONN_MEMORY    (24u * 1024u)
/* Bodies that are not a value (a batch, a dashboard form): default cap. */
#define APID_DEFAULT_MAX_BODY (16ull << 20)
/* Operations in one POST /v1/batch. */
#define APID_MAX_BATCH_OPS  10000u
/* Keys on one page of GET /v1/keys (?limit=), and the default. */
#define APID_MAX_LIMIT      1000u
#define APID_DEFAULT_LIMIT  100u

/* >> configuration (main.c fills it from the command line) */
typedef struct apid_config {
    const char *dbpath;
    char        host[256];       /* numeric IPv4 or IPv6 address to bind */
    uint16_t    port;            /* 0: a free port, printed on start      */
    const char *token;           /* NULL: no token asked                  */
    int         read_only;
    uint64_t    max_value_size;  /* 0: calypso's default                  */
    uint32_t    max_key_size;    /* 0: calypso's default                  */
    uint64_t    max_body;        /* batch and form bodies                 */
    unsigned    threads;         /* libmicrohttpd thread pool size        */
    unsigned    max_conns;       /* concurrent connections                */
    const char *port_file;       /* write the bound port here (tests)     */
} apid_config;

/* >> the server: one per process */
typedef struct apid {
    calypso    *db;
    apid_config cfg;
    uint64_t    max_value;       /* the limits in force (defaults resolved) */
    uint32_t    max_key;
    uint64_t    started_ms;      /* wall clock at start                   */
} apid;

/* >> one request (created by the URI log callback, freed on completion) */
enum { APID_GET = 1, APID_HEAD = 2, APID_PUT = 4, APID_POST = 8, APID_DELETE = 16,
       APID_OTHER = 32 };

typedef struct apid_route apid_route;
struct apid_ns_ent;

typedef struct apid_req {
    struct MHD_Connection *conn;
    char       *uri;            /* the request target exactly as sent, NUL-terminated */
    size_t      uri_len;
    const char *path;  size_t path_len;    /* into uri: before '?'           */
    const char *query; size_t query_len;   /* into uri: after '?' (or "")    */
    const char *param; size_t param_len;   /* into path: after a route prefix */
    int         method;         /* APID_GET ...                          */
    const apid_route *route;
    int         started;        /* the first access-handler call is done */
    int         status;         /* the status queued, for the metrics    */
    uint64_t    t0_ns;          /* monotonic time the request began      */
    char       *body; size_t body_len, body_cap;
    uint64_t    body_limit;
    int         body_over;      /* a chunked body passed body_limit      */
    char        csrf[33];       /* the dashboard's CSRF token, once known */
    int         csrf_fresh;     /* 1: csrf is new, send it as a cookie   */
    calypso    *db;             /* the namespace ?ns= named (apid_ns_resolve) */
    struct apid_ns_ent *ns;     /* its cache reference; NULL for default */
} apid_req;

typedef enum MHD_Result (*apid_handler)(apid *s, apid_req *r);

/* Auth: which credential a route asks for when --token is set. */
enum { APID_AUTH_NONE = 0, APID_AUTH_BEARER = 1, APID_AUTH_COOKIE = 2 };
/* Body: what a route reads, and so which limit applies. */
enum { APID_BODY_NONE = 0, APID_BODY_VALUE = 1, APID_BODY_DATA = 2 };

struct apid_route {
    const char  *name;          /* the label in /metrics                 */
    const char  *path;          /* exact path, or a prefix ending in '/' */
    int          prefix;        /* 1: path is a prefix, the rest is r->param */
    int          methods;       /* allowed methods (HEAD follows GET)    */
    int          auth, body;
    apid_handler handler;
};

/* route.c */
const apid_route *apid_route_find(const char *path, size_t len, int *path_known);
size_t apid_route_count(void);
const apid_route *apid_route_at(size_t i);
enum MHD_Result apid_access(void *cls, struct MHD_Connection *conn, const char *url,
                            const char *method, const char *version,
                            const char *upload, size_t *upload_size, void **con_cls);
void *apid_uri_log(void *cls, const char *uri, struct MHD_Connection *conn);
void  apid_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                     enum MHD_RequestTerminationCode toe);

/* reply.c: every response goes through these (they record the status). */
enum MHD_Result apid_reply(apid_req *r, unsigned status, const char *ctype,
                           const void *body, size_t len);
/* As apid_reply, taking ownership of body (freed with free()). */
enum MHD_Result apid_reply_owned(apid_req *r, unsigned status, const char *ctype,
                                 void *body, size_t len, const char *const *headers);
enum MHD_Result apid_reply_json(apid_req *r, unsigned status, json_t *obj);
enum MHD_Result apid_reply_error(apid_req *r, unsigned status, const char *code,
                                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The status and error code for a calypso return code, and a reply. */
unsigned apid_status_of(int rc);
enum MHD_Result apid_reply_rc(apid_req *r, apid *s, int rc);
/* A header of the request (case-insensitive name), or NULL. */
const char *apid_header(apid_req *r, const char *name);
/* A cookie of the request, copied into out (cap bytes); 1 found, 0 not. */
int apid_cookie(apid_req *r, const char *name, char *out, size_t cap);
/* Constant-time comparison of two NUL-terminated secrets. */
int apid_secret_eq(const char *a, const char *b);

/* codec.c: percent-encoding, query strings, base64, hex, TTLs, UTF-8. */
/* Decodes n bytes of percent-encoding into out (n bytes at least); with
 * plus_space, '+' is a space (query strings and forms). -1 on a '%' not
 * followed by two hex digits. */
int    apid_pct_decode(const char *s, size_t n, int plus_space, char *out, size_t *outlen);
int    apid_pct_dup(const char *s, size_t n, int plus_space, char **out, size_t *outlen);
/* Appends the percent-encoding of n bytes (unreserved bytes kept). */
struct apid_buf;
void   apid_pct_encode(struct apid_buf *b, const void *p, size_t n);
/* Query string / form body access. apid_query_valid: 0 when every name and
 * value decodes, -1 when one does not. apid_query_get: 1 and a malloc'd,
 * NUL-terminated value in *val (its length in *vlen), 0 when absent, -1
 * when malformed. */
int    apid_query_valid(const char *q, size_t n);
int    apid_query_get(const char *q, size_t n, const char *name, char **val, size_t *vlen);
/* base64: the standard alphabet with padding (values, keys), or the URL-safe
 * one without padding (cursors). Decode returns -1 on any bad character,
 * length or padding; out needs apid_b64_declen(n) bytes. */
size_t apid_b64_enclen(size_t n);
void   apid_b64_encode(const void *p, size_t n, int url, char *out);
size_t apid_b64_declen(size_t n);
int    apid_b64_decode(const char *s, size_t n, int url, void *out, size_t *outlen);
/* hex: lower-case out of 2n bytes; decode -1 on odd length or a non-hex digit. */
void   apid_hex_encode(const void *p, size_t n, char *out);
int    apid_hex_decode(const char *s, size_t n, void *out, size_t *outlen);
/* A TTL: a count of milliseconds, or a number and a unit ms, s, m, h, d.
 * 0 on success; -1 when malformed, zero, or above 100 years. */
int    apid_ttl_parse(const char *s, size_t n, uint64_t *ms);
/* 1 when the bytes are valid UTF-8 (no overlongs, no surrogates). */
int    apid_utf8_valid(const void *p, size_t n);

/* buf.c: a growable byte buffer for building responses. */
typedef struct apid_buf { char *p; size_t len, cap; int oom; } apid_buf;
void   apid_buf_put(apid_buf *b, const void *p, size_t n);
void   apid_buf_puts(apid_buf *b, const char *s);
void   apid_buf_printf(apid_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* HTML-escapes n bytes (& < > " ' and every byte below 0x20 but \t \n \r). */
void   apid_buf_html(apid_buf *b, const void *p, size_t n);
void   apid_buf_free(apid_buf *b);

/* metrics.c */
void   apid_metrics_record(const apid_route *route, unsigned status, uint64_t ns);
enum MHD_Result apid_route_metrics(apid *s, apid_req *r);
uint64_t apid_now_ns(void);
uint64_t apid_wall_ms(void);

/* history.c: keys and disk bytes sampled over the process's life. */
typedef struct apid_sample { uint64_t t_ms, keys, bytes; } apid_sample;
int    apid_history_start(apid *s);
void   apid_history_stop(void);
/* Copies up to cap samples, oldest first; returns how many. */
size_t apid_history_copy(apid_sample *out, size_t cap);

/* template.c: the dashboard's templates, compiled in (templates_gen.c). */
typedef struct apid_var { const char *name; const char *val; size_t len; int raw; } apid_var;
/* Renders template `name` into b: {{x}} is var x HTML-escaped, {{{x}}} is
 * var x as is (fragments the caller built and escaped). -1: no such
 * template. A var that is not given renders as nothing. */
int    apid_template_render(apid_buf *b, const char *name, const apid_var *vars, size_t nvars);
/* A compiled-in file by name (static assets); NULL when absent. */
const unsigned char *apid_template_get(const char *name, size_t *len);

/* The route handlers: api.c, calypsodb.c, browse.c, browse_edit.c. */
enum MHD_Result apid_route_healthz(apid *s, apid_req *r);
enum MHD_Result apid_route_get(apid *s, apid_req *r);
enum MHD_Result apid_route_set(apid *s, apid_req *r);
enum MHD_Result apid_route_key(apid *s, apid_req *r);
enum MHD_Result apid_route_keys(apid *s, apid_req *r);
enum MHD_Result apid_route_batch(apid *s, apid_req *r);
enum MHD_Result apid_route_mget(apid *s, apid_req *r);
enum MHD_Result apid_route_stats(apid *s, apid_req *r);
enum MHD_Result apid_route_merge(apid *s, apid_req *r);
enum MHD_Result apid_route_namespaces(apid *s, apid_req *r);
enum MHD_Result apid_route_namespace(apid *s, apid_req *r);
enum MHD_Result apid_route_root(apid *s, apid_req *r);
enum MHD_Result apid_route_browse(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_key(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_static(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_login(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_put(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_delete(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_ttl(apid *s, apid_req *r);
enum MHD_Result apid_route_browse_merge(apid *s, apid_req *r);
/* The dashboard's answer to a request without the token cookie: 401 and
 * the login form. */
enum MHD_Result apid_browse_login_page(apid *s, apid_req *r, const char *error);

/* batch.c: one validated batch, applied by one function. */
typedef struct apid_batch_op {
    int       del;               /* 1: delete, 0: put                    */
    char     *key;  size_t klen;
    char     *val;  size_t vlen;
    uint64_t  ttl_ms;            /* 0: none                              */
    calypso  *db;                /* its "ns", or NULL: the request's one */
    struct apid_ns_ent *ns_ref;  /* the reference that keeps db open     */
} apid_batch_op;
int  apid_batch_apply(calypso *db, const apid_batch_op *ops, size_t n, size_t *done);

/* ns.c and ns_cache.c: namespaces. The ?ns= parameter: 0 with r->db the namespace's handle (the
 * database handle for the default namespace, or when ?ns= is absent), a
 * reference in r->ns that apid_completed gives back; 1 when a 400/404
 * reply has been queued into *res. */
int  apid_ns_resolve(apid *s, apid_req *r, enum MHD_Result *res);
/* Opens namespace name for r (the default one when nlen == 0 or name is
 * "default"): CALYPSO_OK with r->db set, CALYPSO_EINVAL for a bad name,
 * CALYPSO_ENOTFOUND when missing, or calypso's error. */
int  apid_ns_use(apid *s, apid_req *r, const char *name, size_t nlen);
/* The same outside a request's own namespace: *h the handle, *ref the
 * reference to give back with apid_ns_release (NULL for the default). */
int  apid_ns_ref(apid *s, const char *name, size_t nlen, calypso **h, struct apid_ns_ent **ref);
/* The name of r's namespace, or NULL for the default one. */
const char *apid_ns_name(const apid_req *r, size_t *len);
/* 1 when n is a namespace name calypso accepts (1..255 bytes, no empty part). */
int  apid_ns_name_ok(const char *n, size_t l);
/* 1 when n names the default namespace: empty or "default". */
int  apid_ns_is_default(const char *n, size_t l);
/* ns_cache.c: the cached handle of namespace name (created first when
 * create and missing: *created says so) with a reference taken. */
int  apid_ns_open(apid *s, const char *name, size_t nlen, int create, int *created,
                  struct apid_ns_ent **ref);
calypso *apid_ns_handle(const struct apid_ns_ent *e);
/* Drops name and everything under it, and forgets their cached handles. */
int  apid_ns_drop_all(apid *s, const char *name, size_t nlen);
void apid_ns_release(struct apid_ns_ent *e);
/* Closes every cached namespace handle: before the database handle closes. */
void apid_ns_close_all(void);

/* A JSON field for bytes: name as UTF-8 text when valid, else name_b64
 * (api.c). 0, or -1 out of memory. */
int apid_json_bytes(json_t *o, const char *name, const void *p, size_t n);

/* stats shared by the API and the dashboard: a JSON object of the figures. */
json_t *apid_stats_json(apid *s, calypso *db, int *rc);

#endif /* APID_H */
