/*
 * api.c: the JSON API under /v1 (except the batch, batch.c), /healthz and
 * the root redirect.
 *
 *   GET|HEAD /v1/keys/{key}   raw value (application/octet-stream); with
 *                             ?format=json: {"key", "value" (UTF-8) or
 *                             "value_b64", "encoding", "size", "ttl_ms",
 *                             "expires_at_ms"}
 *   PUT    /v1/keys/{key}     body = the value; ?ttl=N (ms) or N{ms,s,m,h,d};
 *                             201 created, 200 replaced
 *   DELETE /v1/keys/{key}     200, or 404 when absent
 *   GET    /v1/keys           ?prefix= | ?start=&end=, ?limit= (1..1000,
 *                             default 100), ?after=CURSOR: one page in key
 *                             order and "next", the cursor of the next page
 *   GET    /v1/stats          the engine's figures
 *   POST   /v1/merge          runs a merge now (409 when one is running)
 *
 * The paging cursor is the last key of the page, base64url-encoded: the
 * next page starts strictly after it, so writes between pages never make
 * a page skip or repeat a key that exists throughout (keys inserted or
 * deleted meanwhile may or may not be seen, like calypso's cursors).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apid.h"

/* >> helpers */
int apid_json_bytes(json_t *o, const char *name, const void *p, size_t n)
{
    json_t *v = apid_utf8_valid(p, n) ? json_stringn(p, n) : NULL;
    if (v) return json_object_set_new(o, name, v);
    char *b64 = malloc(apid_b64_enclen(n) + 1);
    if (!b64) return -1;
    apid_b64_encode(p, n, 0, b64);
    char field[40];
    snprintf(field, sizeof field, "%s_b64", name);
    int rc = json_object_set_new(o, field, json_string(b64));
    free(b64);
    return rc;
}

static int apid_key_param(apid_req *r, char **key, size_t *klen, enum MHD_Result *res)
{
    int drc = apid_pct_dup(r->param, r->param_len, 0, key, klen);
    if (drc == -1) *res = apid_reply_error(r, 400, "bad_encoding", "malformed percent-encoding in the key");
    else if (drc) *res = apid_reply_error(r, 500, "nomem", "out of memory");
    return drc;
}

/* >> /v1/keys/{key} */
static enum MHD_Result apid_key_get(apid *s, apid_req *r, const char *key, size_t klen)
{
    char *fmt;
    size_t fl;
    void *val;
    size_t vlen;
    uint64_t exp = 0;
    apid_query_get(r->query, r->query_len, "format", &fmt, &fl);
    int json = fmt && !strcmp(fmt, "json");
    int bad = fmt && !json && strcmp(fmt, "raw") != 0;
    free(fmt);
    if (bad) return apid_reply_error(r, 400, "bad_request", "format must be raw or json");
    int rc = calypso_get(r->db, key, klen, &val, &vlen);
    if (rc == CALYPSO_OK && json) rc = calypso_ttl(r->db, key, klen, &exp);
    if (rc != CALYPSO_OK) { calypso_free(val); return apid_reply_rc(r, s, rc); }
    if (!json) {
        struct MHD_Response *resp =
            MHD_create_response_from_buffer_with_free_callback(vlen, val, calypso_free);
        if (!resp) { calypso_free(val); return MHD_NO; }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
        r->status = 200;
        enum MHD_Result res = MHD_queue_response(r->conn, 200, resp);
        MHD_destroy_response(resp);
        return res;
    }
    json_t *o = json_object();
    int utf8 = apid_utf8_valid(val, vlen);
    if (!o || apid_json_bytes(o, "key", key, klen) || apid_json_bytes(o, "value", val, vlen)) {
        calypso_free(val);
        json_decref(o);
        return apid_reply_error(r, 500, "nomem", "out of memory");
    }
    uint64_t now = apid_wall_ms();
    json_object_set_new(o, "encoding", json_string(utf8 ? "utf8" : "base64"));
    json_object_set_new(o, "size", json_integer((json_int_t)vlen));
    json_object_set_new(o, "ttl_ms", exp ? json_integer((json_int_t)(exp > now ? exp - now : 0)) : json_null());
    json_object_set_new(o, "expires_at_ms", exp ? json_integer((json_int_t)exp) : json_null());
    calypso_free(val);
    return apid_reply_json(r, 200, o);
}

static enum MHD_Result apid_key_put(apid *s, apid_req *r, const char *key, size_t klen)
{
    char *ttl;
    size_t tl;
    uint64_t ttl_ms = 0;
    if (apid_query_get(r->query, r->query_len, "ttl", &ttl, &tl) == 1) {
        int bad = apid_ttl_parse(ttl, tl, &ttl_ms);
        free(ttl);
        if (bad) return apid_reply_error(r, 400, "bad_ttl",
                                         "ttl must be a positive count of ms, or N with ms, s, m, h or d");
    }
    int existed = calypso_has(r->db, key, klen);
    if (existed < 0) return apid_reply_rc(r, s, existed);
    int rc = calypso_put_ttl(r->db, key, klen, r->body ? r->body : "", r->body_len, ttl_ms);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    return apid_reply_json(r, existed ? 200 : 201, json_pack("{s:b,s:b}", "ok", 1, "created", !existed));
}

static enum MHD_Result apid_key_delete(apid *s, apid_req *r, const char *key, size_t klen)
{
    int had = calypso_has(r->db, key, klen);
    if (had < 0) return apid_reply_rc(r, s, had);
    if (!had) return apid_reply_error(r, 404, "not_found", "key not found");
    int rc = calypso_delete(r->db, key, klen);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    return apid_reply_json(r, 200, json_pack("{s:b}", "ok", 1));
}

enum MHD_Result apid_route_key(apid *s, apid_req *r)
{
    enum MHD_Result res;
    char *key;
    size_t klen;
    if (apid_ns_resolve(s, r, &res)) return res;
    if (apid_key_param(r, &key, &klen, &res)) return res;
    if (r->method == APID_PUT) res = apid_key_put(s, r, key, klen);
    else if (r->method == APID_DELETE) res = apid_key_delete(s, r, key, klen);
    else res = apid_key_get(s, r, key, klen);
    free(key);
    return res;
}

/* >> /v1/keys: one page */
typedef struct apid_page_q {
    char *prefix, *start, *end, *after;
    size_t plen, slen, elen, alen;
    int has_prefix, has_start, has_end;
    unsigned limit;
} apid_page_q;

static void apid_page_q_free(apid_page_q *q)
{
    free(q->prefix); free(q->start); free(q->end); free(q->after);
}

static int apid_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

/* Parses the page query; 0, or a reply is queued into *res. */
static int apid_page_parse(apid_req *r, apid_page_q *q, enum MHD_Result *res)
{
    char *lim, *cur;
    size_t ll, cl;
    q->has_prefix = apid_query_get(r->query, r->query_len, "prefix", &q->prefix, &q->plen) == 1;
    q->has_start = apid_query_get(r->query, r->query_len, "start", &q->start, &q->slen) == 1;
    q->has_end = apid_query_get(r->query, r->query_len, "end", &q->end, &q->elen) == 1;
    if (q->has_prefix && (q->has_start || q->has_end)) {
        *res = apid_reply_error(r, 400, "bad_request", "give prefix, or start and end, not both");
        return -1;
    }
    if (q->has_start && q->has_end && apid_keycmp(q->start, q->slen, q->end, q->elen) > 0) {
        *res = apid_reply_error(r, 400, "invalid_range", "start > end");
        return -1;
    }
    q->limit = APID_DEFAULT_LIMIT;
    if (apid_query_get(r->query, r->query_len, "limit", &lim, &ll) == 1) {
        char *e;
        unsigned long v = strtoul(lim, &e, 10);
        int bad = ll == 0 || *e || lim[0] == '-' || v < 1 || v > APID_MAX_LIMIT;
        free(lim);
        if (bad) {
            *res = apid_reply_error(r, 400, "bad_limit", "limit must be 1..%u", APID_MAX_LIMIT);
            return -1;
        }
        q->limit = (unsigned)v;
    }
    if (apid_query_get(r->query, r->query_len, "after", &cur, &cl) == 1) {
        q->after = malloc(apid_b64_declen(cl));
        int bad = !q->after || cl == 0 || apid_b64_decode(cur, cl, 1, q->after, &q->alen) || q->alen == 0;
        free(cur);
        if (bad) {
            *res = apid_reply_error(r, 400, "bad_cursor", "after is not a cursor this API returned");
            return -1;
        }
    }
    return 0;
}

/* Whether the cursor's key is inside the query's bounds (upper side). */
static int apid_page_in(const apid_page_q *q, const void *k, size_t kl)
{
    if (q->has_prefix && (kl < q->plen || memcmp(k, q->prefix, q->plen) != 0)) return 0;
    if (q->has_end && apid_keycmp(k, kl, q->end, q->elen) > 0) return 0;
    return 1;
}

/* Positions cur on the first key of the page: >= the lower bound, > after. */
static int apid_page_seek(calypso_cursor *cur, const apid_page_q *q)
{
    const char *lo = q->has_prefix ? q->prefix : q->has_start ? q->start : "";
    size_t lol = q->has_prefix ? q->plen : q->has_start ? q->slen : 0;
    int after_wins = q->after && apid_keycmp(q->after, q->alen, lo, lol) >= 0;
    int rc = after_wins ? calypso_cursor_seek(cur, q->after, q->alen) : calypso_cursor_seek(cur, lo, lol);
    if (rc != CALYPSO_OK || !after_wins) return rc;
    const void *k;
    size_t kl;
    rc = calypso_cursor_key(cur, &k, &kl);
    if (rc == CALYPSO_OK && apid_keycmp(k, kl, q->after, q->alen) == 0) rc = calypso_cursor_next(cur);
    return rc;
}

static enum MHD_Result apid_page_reply(apid *s, apid_req *r, const apid_page_q *q)
{
    calypso_cursor *cur;
    int rc = calypso_cursor_open(r->db, &cur);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    json_t *arr = json_array(), *o = json_object();
    apid_buf last = { 0 };          /* a copy of the page's last key: the cursor */
    unsigned n = 0;
    int more = 0;
    for (rc = apid_page_seek(cur, q); rc == CALYPSO_OK; rc = calypso_cursor_next(cur)) {
        const void *nk;
        size_t nkl;
        if ((rc = calypso_cursor_key(cur, &nk, &nkl)) != CALYPSO_OK) break;
        if (!apid_page_in(q, nk, nkl)) break;
        if (n == q->limit) { more = 1; break; }
        json_t *item = json_object();
        if (!item || apid_json_bytes(item, "key", nk, nkl) || json_array_append_new(arr, item)) {
            rc = CALYPSO_ENOMEM;
            break;
        }
        last.len = 0;
        apid_buf_put(&last, nk, nkl);
        n++;
    }
    calypso_cursor_close(cur);
    char *next = NULL;
    if (more && rc == CALYPSO_OK && !last.oom) {
        next = malloc(apid_b64_enclen(last.len) + 1);
        if (next) apid_b64_encode(last.p, last.len, 1, next);
    }
    apid_buf_free(&last);
    if (rc != CALYPSO_OK && rc != CALYPSO_ENOTFOUND) {
        free(next); json_decref(arr); json_decref(o);
        return apid_reply_rc(r, s, rc);
    }
    json_object_set_new(o, "keys", arr);
    json_object_set_new(o, "count", json_integer(n));
    json_object_set_new(o, "next", next ? json_string(next) : json_null());
    free(next);
    return apid_reply_json(r, 200, o);
}

enum MHD_Result apid_route_keys(apid *s, apid_req *r)
{
    enum MHD_Result res;
    apid_page_q q = { 0 };
    if (apid_ns_resolve(s, r, &res)) return res;
    if (apid_page_parse(r, &q, &res)) { apid_page_q_free(&q); return res; }
    res = apid_page_reply(s, r, &q);
    apid_page_q_free(&q);
    return res;
}

/* >> stats, merge, health */
json_t *apid_stats_json(apid *s, calypso *db, int *rc)
{
    struct calypso_stats st;
    *rc = calypso_stats(db, &st);
    if (*rc != CALYPSO_OK) return NULL;
    return json_pack("{s:I,s:I,s:I,s:i,s:I,s:I,s:b,s:I,s:s}",
                     "keys", (json_int_t)st.keys, "bytes", (json_int_t)st.size,
                     "dead_bytes", (json_int_t)st.reclaimable, "datafiles", (int)st.datafiles,
                     "keydir_bytes", (json_int_t)st.keydir_bytes, "merges", (json_int_t)st.merges,
                     "read_only", s->cfg.read_only,
                     "uptime_ms", (json_int_t)(apid_wall_ms() - s->started_ms),
                     "version", calypso_version());
}

enum MHD_Result apid_route_stats(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_ns_resolve(s, r, &res)) return res;
    int rc;
    json_t *o = apid_stats_json(s, r->db, &rc);
    if (!o) return rc ? apid_reply_rc(r, s, rc) : apid_reply_error(r, 500, "nomem", "out of memory");
    return apid_reply_json(r, 200, o);
}

enum MHD_Result apid_route_merge(apid *s, apid_req *r)
{
    struct calypso_stats before, after;
    int rc = calypso_stats(s->db, &before);
    if (rc == CALYPSO_OK) rc = calypso_merge(s->db);
    if (rc == CALYPSO_OK) rc = calypso_stats(s->db, &after);
    if (rc != CALYPSO_OK) return apid_reply_rc(r, s, rc);
    return apid_reply_json(r, 200, json_pack("{s:b,s:I,s:I}", "ok", 1,
                                             "bytes_before", (json_int_t)before.size,
                                             "bytes_after", (json_int_t)after.size));
}

enum MHD_Result apid_route_healthz(apid *s, apid_req *r)
{
    (void)s;
    return apid_reply(r, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

enum MHD_Result apid_route_root(apid *s, apid_req *r)
{
    (void)s;
    const char *hdr[] = { "Location", "/browse", NULL };
    char *body = strdup("see /browse\n");
    return body ? apid_reply_owned(r, 302, "text/plain; charset=utf-8", body, strlen(body), hdr) : MHD_NO;
}
