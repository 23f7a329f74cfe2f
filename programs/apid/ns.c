/*
 * ns.c: namespaces in apid's API: the ?ns= parameter of the key routes
 * and the /v1/namespaces routes:
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
 * The handles come from ns_cache.c, which keeps them open between
 * requests; a request's reference is given back when it ends.
 */
#include <stdlib.h>
#include <string.h>

#include "apid.h"

static enum MHD_Result apid_ns_bad_name(apid_req *r)
{
    return apid_reply_error(r, 400, "bad_namespace",
                            "a namespace name is 1 to %u bytes, parts separated by '/', none empty",
                            CALYPSO_NS_MAX_NAME);
}

static enum MHD_Result apid_ns_reply_open(apid_req *r, apid *s, int rc)
{
    if (rc == CALYPSO_ENOTFOUND) return apid_reply_error(r, 404, "no_namespace", "no such namespace");
    if (rc == CALYPSO_EINVAL) return apid_ns_bad_name(r);
    return apid_reply_rc(r, s, rc);
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
    int rc = apid_ns_open(s, name, nlen, 0, &created, &e);
    if (rc != CALYPSO_OK) return apid_ns_reply_open(r, s, rc);
    r->ns = e;                          /* released when the request ends */
    struct calypso_stats st;
    rc = calypso_stats(apid_ns_handle(e), &st);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    json_t *o = json_object();
    if (!o || apid_json_bytes(o, "name", name, nlen)) {
        json_decref(o);
        return apid_reply_error(r, 500, "nomem", "out of memory");
    }
    json_object_set_new(o, "keys", json_integer((json_int_t)st.keys));
    return apid_reply_json(r, 200, o);
}

static enum MHD_Result apid_ns_create(apid *s, apid_req *r, const char *name, size_t nlen)
{
    struct apid_ns_ent *e = NULL;
    int created;
    int rc = apid_ns_open(s, name, nlen, 1, &created, &e);
    if (rc == CALYPSO_ENOTFOUND)
        return apid_reply_error(r, 404, "no_namespace", "the parent namespace does not exist");
    if (rc != CALYPSO_OK) return apid_ns_reply_open(r, s, rc);
    r->ns = e;
    return apid_reply_json(r, created ? 201 : 200, json_pack("{s:b,s:b}", "ok", 1, "created", created));
}

static enum MHD_Result apid_ns_drop(apid *s, apid_req *r, const char *name, size_t nlen)
{
    int rc = apid_ns_drop_all(s, name, nlen);
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
