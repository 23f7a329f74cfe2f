/*
 * mget.c: POST /v1/mget: many keys read in one request,
 *
 *   ["a", "b", {"key_b64": "AAE="}]
 *
 * answered in the same order,
 *
 *   {"items": [{"key": "a", "found": true, "value": "1", "encoding": "utf8",
 *               "size": 1},
 *              {"key": "b", "found": false}, ...]}
 *
 * through calypso_get_many, whose lookups overlap their cache misses (one
 * request of 16 keys costs far less than 16 GETs). Keys are validated
 * first: a malformed list, a key that is not a string or {"key_b64"}, bad
 * base64, an empty or oversized key, or more than APID_MAX_BATCH_OPS keys
 * answer 400 naming the index, and nothing is read. A key that is absent or
 * expired is {"found": false}; a read that fails (a damaged record) fails
 * the request with the engine's status.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apid.h"

typedef struct apid_mget {
    void  **keys;
    size_t *klens;
    size_t  n;
} apid_mget;

static void apid_mget_free(apid_mget *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->keys[i]);
    free(m->keys);
    free(m->klens);
}

/* Key i of the list into m. 0, or 400 with err set. */
static unsigned apid_mget_key(apid *s, json_t *v, apid_mget *m, char *err, size_t cap)
{
    const char *p;
    size_t n;
    int b64 = 0;
    if (json_is_string(v)) {
        p = json_string_value(v);
        n = json_string_length(v);
    } else if (json_is_object(v) && json_is_string(json_object_get(v, "key_b64")) &&
               json_object_size(v) == 1) {
        json_t *b = json_object_get(v, "key_b64");
        p = json_string_value(b);
        n = json_string_length(b);
        b64 = 1;
    } else {
        snprintf(err, cap, "a key is a string or {\"key_b64\": ...}");
        return 400;
    }
    char *k = malloc(b64 ? apid_b64_declen(n) + 1 : n + 1);
    size_t kl = n;
    if (!k) { snprintf(err, cap, "out of memory"); return 500; }
    if (b64 && apid_b64_decode(p, n, 0, k, &kl)) {
        free(k);
        snprintf(err, cap, "key_b64 is not valid base64");
        return 400;
    }
    if (!b64) memcpy(k, p, n);
    m->keys[m->n] = k;
    m->klens[m->n++] = kl;
    if (kl == 0) { snprintf(err, cap, "empty key"); return 400; }
    if (kl > s->max_key) { snprintf(err, cap, "key over %u bytes", s->max_key); return 400; }
    return 0;
}

/* The answer for key i: its value, or found: false. */
static json_t *apid_mget_item(const void *key, size_t klen, int rc, const void *val, size_t vlen)
{
    json_t *o = json_object();
    if (!o || apid_json_bytes(o, "key", key, klen)) { json_decref(o); return NULL; }
    json_object_set_new(o, "found", json_boolean(rc == CALYPSO_OK));
    if (rc != CALYPSO_OK) return o;
    if (apid_json_bytes(o, "value", val, vlen)) { json_decref(o); return NULL; }
    json_object_set_new(o, "encoding", json_string(apid_utf8_valid(val, vlen) ? "utf8" : "base64"));
    json_object_set_new(o, "size", json_integer((json_int_t)vlen));
    return o;
}

enum MHD_Result apid_route_mget(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_ns_resolve(s, r, &res)) return res;
    json_error_t jerr;
    json_t *list = json_loadb(r->body ? r->body : "", r->body_len, 0, &jerr);
    if (!list) return apid_reply_error(r, 400, "bad_json", "invalid JSON: %s (line %d, column %d)",
                                       jerr.text, jerr.line, jerr.column);
    if (!json_is_array(list)) {
        json_decref(list);
        return apid_reply_error(r, 400, "bad_mget", "the body must be a JSON list of keys");
    }
    size_t n = json_array_size(list);
    if (n > APID_MAX_BATCH_OPS) {
        json_decref(list);
        return apid_reply_error(r, 400, "bad_mget", "%zu keys, over the limit of %u", n, APID_MAX_BATCH_OPS);
    }
    apid_mget m = { calloc(n ? n : 1, sizeof *m.keys), calloc(n ? n : 1, sizeof *m.klens), 0 };
    void **vals = calloc(n ? n : 1, sizeof *vals);
    size_t *vlens = calloc(n ? n : 1, sizeof *vlens);
    int *rcs = calloc(n ? n : 1, sizeof *rcs);
    json_t *items = json_array(), *out = json_object();
    unsigned st = !m.keys || !m.klens || !vals || !vlens || !rcs || !items || !out ? 500 : 0;
    char err[256] = "out of memory";
    for (size_t i = 0; i < n && !st; i++) {
        st = apid_mget_key(s, json_array_get(list, i), &m, err, sizeof err);
        if (st == 400) {
            char why[256];
            snprintf(why, sizeof why, "key %zu: %s; nothing was read", i, err);
            snprintf(err, sizeof err, "%s", why);
        }
    }
    json_decref(list);
    int rc = CALYPSO_OK;
    if (!st) rc = calypso_get_many(r->db, n, (const void *const *)m.keys, m.klens, vals, vlens, rcs);
    for (size_t i = 0; i < n && !st && rc == CALYPSO_OK; i++) {
        json_t *it = apid_mget_item(m.keys[i], m.klens[i], rcs[i], vals[i], vlens[i]);
        if (!it || json_array_append_new(items, it)) st = 500;
    }
    for (size_t i = 0; vals && i < n; i++) calypso_free(vals[i]);
    apid_mget_free(&m);
    free(vals);
    free(vlens);
    free(rcs);
    if (st || rc != CALYPSO_OK) {
        json_decref(items);
        json_decref(out);
        if (st == 400) return apid_reply_error(r, 400, "bad_mget", "%s", err);
        if (st) return apid_reply_error(r, 500, "nomem", "out of memory");
        return apid_reply_rc(r, s, rc);
    }
    json_object_set_new(out, "items", items);
    return apid_reply_json(r, 200, out);
}
