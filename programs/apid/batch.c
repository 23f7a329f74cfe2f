/*
 * batch.c: POST /v1/batch: a JSON list of operations,
 *
 *   [{"op":"put","key":"a","value":"1","ttl":"10s"},
 *    {"op":"put","key_b64":"AAE=","value_b64":"/w=="},
 *    {"op":"delete","key":"b"},
 *    {"op":"put","ns":"users","key":"42","value":"x"}]
 *
 * An operation goes to the namespace ?ns= names (the default one without
 * it), or to its own "ns": one batch may span namespaces and still commits
 * whole or not at all.
 *
 * Every operation is validated before any is applied: a malformed list, an
 * unknown op, a missing or doubled key, bad base64, an empty or oversized
 * key, an oversized value, a bad TTL or namespace name answers 400 (413 for
 * a value over max_value_size, 404 no_namespace for a missing namespace)
 * naming the operation's index, and nothing is written.
 * Then batch_commit.c commits the list as one calypso batch (apid_batch_apply).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apid.h"

typedef struct apid_batch {
    apid_batch_op *ops;
    size_t n;
} apid_batch;

static void apid_batch_free(apid_batch *b)
{
    for (size_t i = 0; i < b->n; i++) {
        free(b->ops[i].key);
        free(b->ops[i].val);
        apid_ns_release(b->ops[i].ns_ref);
    }
    free(b->ops);
}

/* Reads field `name` (UTF-8 text) or `name_b64` (base64) of o into a
 * malloc'd buffer. 1 found, 0 absent, -1 error (text in err). */
static int apid_batch_bytes(json_t *o, const char *name, char **out, size_t *len,
                            char *err, size_t errcap)
{
    char b64name[32];
    snprintf(b64name, sizeof b64name, "%s_b64", name);
    json_t *t = json_object_get(o, name), *b = json_object_get(o, b64name);
    if (t && b) { snprintf(err, errcap, "both %s and %s given", name, b64name); return -1; }
    if (!t && !b) return 0;
    json_t *v = t ? t : b;
    if (!json_is_string(v)) { snprintf(err, errcap, "%s must be a string", t ? name : b64name); return -1; }
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (t) {
        *out = malloc(n + 1);
        if (!*out) { snprintf(err, errcap, "out of memory"); return -1; }
        memcpy(*out, s, n);
        *len = n;
        return 1;
    }
    *out = malloc(apid_b64_declen(n));
    if (!*out) { snprintf(err, errcap, "out of memory"); return -1; }
    if (apid_b64_decode(s, n, 0, *out, len)) {
        free(*out);
        *out = NULL;
        snprintf(err, errcap, "%s is not valid base64", b64name);
        return -1;
    }
    return 1;
}

/* Validates one operation into op. 0, or an HTTP status with err set. */
static unsigned apid_batch_op_parse(apid *s, json_t *o, apid_batch_op *op, char *err, size_t cap)
{
    if (!json_is_object(o)) { snprintf(err, cap, "not an object"); return 400; }
    const char *name = json_string_value(json_object_get(o, "op"));
    if (!name) { snprintf(err, cap, "missing \"op\""); return 400; }
    if (!strcmp(name, "delete") || !strcmp(name, "del")) op->del = 1;
    else if (strcmp(name, "put") != 0) { snprintf(err, cap, "unknown op \"%.32s\"", name); return 400; }
    int k = apid_batch_bytes(o, "key", &op->key, &op->klen, err, cap);
    if (k < 0) return 400;
    if (!k) { snprintf(err, cap, "missing key"); return 400; }
    if (op->klen == 0) { snprintf(err, cap, "empty key"); return 400; }
    if (op->klen > s->max_key) { snprintf(err, cap, "key over %u bytes", s->max_key); return 400; }
    json_t *ns = json_object_get(o, "ns");
    if (ns) {
        if (!json_is_string(ns)) { snprintf(err, cap, "ns must be a string"); return 400; }
        int rc = apid_ns_ref(s, json_string_value(ns), json_string_length(ns), &op->db, &op->ns_ref);
        if (rc == CALYPSO_ENOTFOUND) { snprintf(err, cap, "no such namespace"); return 404; }
        if (rc == CALYPSO_EINVAL) { snprintf(err, cap, "bad namespace name"); return 400; }
        if (rc != CALYPSO_OK) { snprintf(err, cap, "%s", calypso_strerror(rc)); return apid_status_of(rc); }
    }
    int v = apid_batch_bytes(o, "value", &op->val, &op->vlen, err, cap);
    if (v < 0) return 400;
    if (op->del) {
        if (v || json_object_get(o, "ttl")) { snprintf(err, cap, "delete takes no value or ttl"); return 400; }
        return 0;
    }
    if (!v) { snprintf(err, cap, "put without value"); return 400; }
    if (op->vlen > s->max_value) {
        snprintf(err, cap, "value over %llu bytes", (unsigned long long)s->max_value);
        return 413;
    }
    json_t *ttl = json_object_get(o, "ttl");
    if (json_is_integer(ttl)) {
        json_int_t t = json_integer_value(ttl);
        char tmp[32];
        snprintf(tmp, sizeof tmp, "%lld", (long long)t);
        if (t <= 0 || apid_ttl_parse(tmp, strlen(tmp), &op->ttl_ms)) { snprintf(err, cap, "bad ttl"); return 400; }
    } else if (json_is_string(ttl)) {
        if (apid_ttl_parse(json_string_value(ttl), json_string_length(ttl), &op->ttl_ms)) {
            snprintf(err, cap, "bad ttl"); return 400;
        }
    } else if (ttl && !json_is_null(ttl)) {
        snprintf(err, cap, "bad ttl"); return 400;
    }
    return 0;
}

enum MHD_Result apid_route_batch(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_ns_resolve(s, r, &res)) return res;
    json_error_t jerr;
    json_t *list = json_loadb(r->body ? r->body : "", r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!list) return apid_reply_error(r, 400, "bad_json", "invalid JSON: %s (line %d, column %d)",
                                       jerr.text, jerr.line, jerr.column);
    if (!json_is_array(list)) {
        json_decref(list);
        return apid_reply_error(r, 400, "bad_batch", "the body must be a JSON list of operations");
    }
    size_t n = json_array_size(list);
    if (n > APID_MAX_BATCH_OPS) {
        json_decref(list);
        return apid_reply_error(r, 400, "bad_batch", "%zu operations, over the limit of %u", n, APID_MAX_BATCH_OPS);
    }
    apid_batch b = { calloc(n ? n : 1, sizeof *b.ops), 0 };
    if (!b.ops) { json_decref(list); return apid_reply_error(r, 500, "nomem", "out of memory"); }
    for (; b.n < n; b.n++) {
        char err[256];
        unsigned st = apid_batch_op_parse(s, json_array_get(list, b.n), &b.ops[b.n], err, sizeof err);
        if (st) {
            b.n++;
            apid_batch_free(&b);
            json_decref(list);
            return apid_reply_error(r, st, st == 413 ? "too_large" : st == 404 ? "no_namespace" : "bad_batch",
                                    "operation %zu: %s; nothing was written", b.n - 1, err);
        }
    }
    json_decref(list);
    size_t done = 0;
    int rc = apid_batch_apply(r->db, b.ops, b.n, &done);
    apid_batch_free(&b);
    if (rc != CALYPSO_OK) {
        unsigned st = apid_status_of(rc);
        return apid_reply_error(r, st, "batch_failed", "the batch failed: %s; nothing was applied",
                                st == 500 ? calypso_errmsg(r->db) : calypso_strerror(rc));
    }
    return apid_reply_json(r, 200, json_pack("{s:b,s:I}", "ok", 1, "applied", (json_int_t)done));
}
