/*
 * ns.c: namespaces in apid: the ?ns= parameter of the key routes, the
 * cache of open namespace handles, and the /v1/namespaces routes:
 *
 *   GET    /v1/namespaces[?parent=P]  {"namespaces":[{"name"} or {"name_b64"}]}:
 *                                    "default" first, then the top-level
 *                                    namespaces in byte order; with parent,
 *                                    P's direct children (full names)
 *   GET    /v1/namespaces/{name}      {"name", "keys"}; 404 no_namespace
 *   PUT    /v1/namespaces/{name}      creates it (its parent must exist):
 *                                    201 created, 200 already there
 *   DELETE /v1/namespaces/{name}      drops it and everything under it
 *
 * ?ns= absent, empty or "default" is the database's default namespace (the
 * database handle itself). Any other name must exist: a missing one is 404
 * no_namespace for reads and writes alike (a write never creates a
 * namespace by accident; PUT /v1/namespaces/{name} does). A malformed name
 * (over CALYPSO_NS_MAX_NAME bytes, an empty part) is 400 bad_namespace.
 *
 * The cache: opening a handle per request would cost a lookup and an
 * allocation in calypso, so handles stay open, one per namespace, in a
 * list under a mutex (libmicrohttpd runs apid's handlers on a pool of
 * threads). A request takes a reference (apid_ns_resolve) that
 * apid_completed gives back (apid_ns_release), so a handle is never
 * closed under a request still using it. A drop through apid holds the
 * mutex across calypso_ns_drop and unhooks every cached handle of the
 * dropped names: a namespace created again after the drop (a new, empty
 * one) is opened afresh, never served by the old handle. An unhooked
 * handle closes when its last request ends; until then calypso makes it
 * see no keys and refuse writes. Before the database handle closes (or is
 * reopened) apid_ns_close_all closes every cached handle, as calypso asks.
 * A --read-only apid sees the database, namespaces included, as of its
 * open; a reopen would have to go through apid_ns_close_all first.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "apid.h"

/* Handles kept open at most; past it, unused ones are closed. */
#define APID_NS_CACHE_MAX 256u

struct apid_ns_ent {
    struct apid_ns_ent *next;
    calypso *h;
    unsigned refs;
    int      cached;            /* 0: unhooked, closes at refs == 0 */
    size_t   nlen;
    char     name[];
};

static pthread_mutex_t apid_ns_mu = PTHREAD_MUTEX_INITIALIZER;
static struct apid_ns_ent *apid_ns_head;
static unsigned apid_ns_count;

/* >> names */
static int apid_ns_is_default(const char *n, size_t l)
{
    return l == 0 || (l == 7 && memcmp(n, "default", 7) == 0);
}

/* 1 when n is a name calypso accepts: 1..255 bytes, no empty part. */
int apid_ns_name_ok(const char *n, size_t l)
{
    if (l == 0 || l > CALYPSO_NS_MAX_NAME || n[0] == '/' || n[l - 1] == '/') return 0;
    for (size_t i = 1; i < l; i++)
        if (n[i] == '/' && n[i - 1] == '/') return 0;
    return 1;
}

static enum MHD_Result apid_ns_bad_name(apid_req *r)
{
    return apid_reply_error(r, 400, "bad_namespace",
                            "a namespace name is 1 to %u bytes, parts separated by '/', none empty",
                            CALYPSO_NS_MAX_NAME);
}

/* >> the cache (callers hold apid_ns_mu) */
static void apid_ns_ent_free(struct apid_ns_ent *e)
{
    calypso_close(e->h);
    free(e);
}

static void apid_ns_unhook(struct apid_ns_ent **pp)
{
    struct apid_ns_ent *e = *pp;
    *pp = e->next;
    e->cached = 0;
    apid_ns_count--;
    if (e->refs == 0) apid_ns_ent_free(e);
}

/* Makes room under APID_NS_CACHE_MAX by closing handles no request uses. */
static void apid_ns_trim(void)
{
    for (struct apid_ns_ent **pp = &apid_ns_head; *pp && apid_ns_count >= APID_NS_CACHE_MAX;) {
        if ((*pp)->refs == 0) apid_ns_unhook(pp);
        else pp = &(*pp)->next;
    }
}

/* The cached entry of name, opened (with create: created) when missing,
 * with a reference taken. *created tells whether this call created it. */
static int apid_ns_get(apid *s, const char *name, size_t nlen, int create, int *created,
                       struct apid_ns_ent **out)
{
    *created = 0;
    for (struct apid_ns_ent *e = apid_ns_head; e; e = e->next) {
        if (e->nlen == nlen && memcmp(e->name, name, nlen) == 0) {
            e->refs++;
            *out = e;
            return CALYPSO_OK;
        }
    }
    calypso *h = NULL;
    int rc = calypso_ns_open(s->db, name, nlen, 0, &h);
    if (rc == CALYPSO_ENOTFOUND && create) {
        rc = calypso_ns_open(s->db, name, nlen, 1, &h);
        *created = rc == CALYPSO_OK;
    }
    if (rc != CALYPSO_OK) return rc;
    struct apid_ns_ent *e = malloc(sizeof *e + nlen);
    if (!e) { calypso_close(h); return CALYPSO_ENOMEM; }
    apid_ns_trim();
    e->h = h;
    e->refs = 1;
    e->cached = 1;
    e->nlen = nlen;
    memcpy(e->name, name, nlen);
    e->next = apid_ns_head;
    apid_ns_head = e;
    apid_ns_count++;
    *out = e;
    return CALYPSO_OK;
}

static void apid_ns_release_locked(struct apid_ns_ent *e)
{
    if (e && --e->refs == 0 && !e->cached) apid_ns_ent_free(e);
}

void apid_ns_release(struct apid_ns_ent *e)
{
    if (!e) return;
    pthread_mutex_lock(&apid_ns_mu);
    apid_ns_release_locked(e);
    pthread_mutex_unlock(&apid_ns_mu);
}

void apid_ns_close_all(void)
{
    pthread_mutex_lock(&apid_ns_mu);
    while (apid_ns_head) apid_ns_unhook(&apid_ns_head);
    pthread_mutex_unlock(&apid_ns_mu);
}

/* >> ?ns= */
static enum MHD_Result apid_ns_reply_open(apid_req *r, apid *s, int rc)
{
    if (rc == CALYPSO_ENOTFOUND) return apid_reply_error(r, 404, "no_namespace", "no such namespace");
    if (rc == CALYPSO_EINVAL) return apid_ns_bad_name(r);
    return apid_reply_rc(r, s, rc);
}

int apid_ns_use(apid *s, apid_req *r, const char *name, size_t nlen)
{
    r->db = s->db;
    if (apid_ns_is_default(name, nlen)) return CALYPSO_OK;
    if (!apid_ns_name_ok(name, nlen)) return CALYPSO_EINVAL;
    int created;
    pthread_mutex_lock(&apid_ns_mu);
    apid_ns_release_locked(r->ns);
    r->ns = NULL;
    int rc = apid_ns_get(s, name, nlen, 0, &created, &r->ns);
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc == CALYPSO_OK) r->db = r->ns->h;
    return rc;
}

int apid_ns_ref(apid *s, const char *name, size_t nlen, calypso **h, struct apid_ns_ent **ref)
{
    *ref = NULL;
    *h = s->db;
    if (apid_ns_is_default(name, nlen)) return CALYPSO_OK;
    if (!apid_ns_name_ok(name, nlen)) return CALYPSO_EINVAL;
    int created;
    pthread_mutex_lock(&apid_ns_mu);
    int rc = apid_ns_get(s, name, nlen, 0, &created, ref);
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc == CALYPSO_OK) *h = (*ref)->h;
    return rc;
}

const char *apid_ns_name(const apid_req *r, size_t *len)
{
    if (!r->ns) { *len = 0; return NULL; }
    *len = r->ns->nlen;
    return r->ns->name;
}

int apid_ns_resolve(apid *s, apid_req *r, enum MHD_Result *res)
{
    char *ns;
    size_t n;
    r->db = s->db;
    int found = apid_query_get(r->query, r->query_len, "ns", &ns, &n);
    if (found < 0) {
        *res = apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in ns");
        return 1;
    }
    if (!found) return 0;
    int rc = apid_ns_use(s, r, ns, n);
    free(ns);
    if (rc != CALYPSO_OK) { *res = apid_ns_reply_open(r, s, rc); return 1; }
    return 0;
}

/* >> GET /v1/namespaces */
static int apid_ns_list_one(const void *name, size_t nlen, void *ctx)
{
    json_t *o = json_object();
    if (!o || apid_json_bytes(o, "name", name, nlen) || json_array_append_new(ctx, o)) {
        json_decref(o);
        return CALYPSO_ENOMEM;
    }
    return 0;
}

enum MHD_Result apid_route_namespaces(apid *s, apid_req *r)
{
    char *parent;
    size_t pl;
    int has = apid_query_get(r->query, r->query_len, "parent", &parent, &pl) == 1;
    json_t *arr = json_array();
    int rc = arr ? CALYPSO_OK : CALYPSO_ENOMEM;
    if (has && pl > 0 && !apid_ns_name_ok(parent, pl)) {
        free(parent);
        json_decref(arr);
        return apid_ns_bad_name(r);
    }
    if (!has || pl == 0) {
        if (rc == CALYPSO_OK) rc = apid_ns_list_one("default", 7, arr);
        if (rc == CALYPSO_OK) rc = calypso_ns_list(s->db, NULL, 0, apid_ns_list_one, arr);
    } else if (!apid_ns_is_default(parent, pl) && rc == CALYPSO_OK) {
        rc = calypso_ns_list(s->db, parent, pl, apid_ns_list_one, arr);   /* default has no children */
    }
    free(parent);
    if (rc != CALYPSO_OK) { json_decref(arr); return apid_ns_reply_open(r, s, rc); }
    return apid_reply_json(r, 200, json_pack("{s:o}", "namespaces", arr));
}

/* >> /v1/namespaces/{name} */
static enum MHD_Result apid_ns_info(apid *s, apid_req *r, const char *name, size_t nlen)
{
    struct apid_ns_ent *e = NULL;
    int created;
    pthread_mutex_lock(&apid_ns_mu);
    int rc = apid_ns_get(s, name, nlen, 0, &created, &e);
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc != CALYPSO_OK) return apid_ns_reply_open(r, s, rc);
    r->ns = e;                          /* released when the request ends */
    struct calypso_stats st;
    rc = calypso_stats(e->h, &st);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    json_t *o = json_object();
    if (!o || apid_json_bytes(o, "name", name, nlen)) { json_decref(o); return MHD_NO; }
    json_object_set_new(o, "keys", json_integer((json_int_t)st.keys));
    return apid_reply_json(r, 200, o);
}

static enum MHD_Result apid_ns_create(apid *s, apid_req *r, const char *name, size_t nlen)
{
    struct apid_ns_ent *e = NULL;
    int created;
    pthread_mutex_lock(&apid_ns_mu);
    int rc = apid_ns_get(s, name, nlen, 1, &created, &e);
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc == CALYPSO_ENOTFOUND)
        return apid_reply_error(r, 404, "no_namespace", "the parent namespace does not exist");
    if (rc != CALYPSO_OK) return apid_ns_reply_open(r, s, rc);
    r->ns = e;
    return apid_reply_json(r, created ? 201 : 200, json_pack("{s:b,s:b}", "ok", 1, "created", created));
}

/* 1 when cached name n is name or lies under it. */
static int apid_ns_under(const struct apid_ns_ent *e, const char *name, size_t nlen)
{
    if (e->nlen < nlen || memcmp(e->name, name, nlen) != 0) return 0;
    return e->nlen == nlen || e->name[nlen] == '/';
}

static enum MHD_Result apid_ns_drop(apid *s, apid_req *r, const char *name, size_t nlen)
{
    pthread_mutex_lock(&apid_ns_mu);
    int rc = calypso_ns_drop(s->db, name, nlen);
    if (rc == CALYPSO_OK) {
        for (struct apid_ns_ent **pp = &apid_ns_head; *pp;) {
            if (apid_ns_under(*pp, name, nlen)) apid_ns_unhook(pp);
            else pp = &(*pp)->next;
        }
    }
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc != CALYPSO_OK) return apid_ns_reply_open(r, s, rc);
    return apid_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

enum MHD_Result apid_route_namespace(apid *s, apid_req *r)
{
    char *name;
    size_t nlen;
    int drc = apid_pct_dup(r->param, r->param_len, 0, &name, &nlen);
    if (drc == -1) return apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in the name");
    if (drc) return apid_reply_error(r, 500, "nomem", "out of memory");
    enum MHD_Result res;
    if (nlen == 7 && memcmp(name, "default", 7) == 0) {
        if (r->method == APID_GET || r->method == APID_HEAD) {
            free(name);
            struct calypso_stats st;
            int rc = calypso_stats(s->db, &st);
            if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
            return apid_reply_json(r, 200, json_pack("{s:s,s:I}", "name", "default",
                                                     "keys", (json_int_t)st.keys));
        }
        free(name);
        return apid_reply_error(r, 400, "bad_namespace",
                                "\"default\" is the database's own namespace: it cannot be created or dropped");
    }
    if (!apid_ns_name_ok(name, nlen)) res = apid_ns_bad_name(r);
    else if (r->method == APID_PUT) res = apid_ns_create(s, r, name, nlen);
    else if (r->method == APID_DELETE) res = apid_ns_drop(s, r, name, nlen);
    else res = apid_ns_info(s, r, name, nlen);
    free(name);
    return res;
}
