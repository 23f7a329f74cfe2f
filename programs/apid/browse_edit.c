/*
 * browse_edit.c: the dashboard's forms, the only dashboard requests that
 * change anything: insert or edit a value, set or clear a TTL, delete a
 * key (after a confirmation), start a merge, sign in with the token.
 *
 * Every one is a POST (x-www-form-urlencoded) and must carry the CSRF
 * token of its page (double-submit: the csrf field equals the apid_csrf
 * cookie, which is HttpOnly and SameSite=Strict) and must not come from
 * another site (Sec-Fetch-Site); otherwise 403 and nothing changes. On
 * success they answer 303 to a page that shows the result (post, redirect,
 * get: a reload never repeats a write).
 *
 * Keys travel as hex in the "k" field, so any byte string round-trips; a
 * new key comes as text or hex ("key" with "kenc"), a value as text or hex
 * ("value" with "enc").
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "browse.h"

/* 0 when the request may change data; else a 403 page is queued. */
static int apid_edit_guard(apid *s, apid_req *r, enum MHD_Result *res)
{
    if (s->cfg.read_only) {
        *res = apid_page_message(s, r, 403, "Read-only", "This apid serves the database read-only.", "");
        return -1;
    }
    if (!apid_csrf_ok(r)) {
        *res = apid_page_message(s, r, 403, "Refused",
                                 "The form's CSRF token is missing or stale: nothing was changed. "
                                 "Reload the page and try again.", "");
        return -1;
    }
    return apid_browse_ns(s, r, res) ? -1 : 0;
}

/* A field in text or hex (per the encoding field enc_name): 1, 0 absent, -1 bad. */
static int apid_field_bytes(apid_req *r, const char *name, const char *enc_name, char **out, size_t *len)
{
    char *enc = NULL;
    size_t el;
    int f = apid_form(r, name, out, len);
    if (f != 1) return f;
    if (apid_form(r, enc_name, &enc, &el) == 1 && !strcmp(enc, "hex")) {
        /* Whitespace is allowed between hex digits (as the hex view shows them). */
        size_t o = 0;
        for (size_t i = 0; i < *len; i++)
            if (!strchr(" \t\r\n", (*out)[i])) (*out)[o++] = (*out)[i];
        if (apid_hex_decode(*out, o, *out, len)) { free(enc); free(*out); *out = NULL; return -1; }
    }
    free(enc);
    return 1;
}

static int apid_field_key(apid_req *r, char **k, size_t *kl)
{
    char *h;
    size_t hl;
    int f = apid_form(r, "k", &h, &hl);
    if (f != 1) return f;
    *k = malloc(hl / 2 + 1);
    int bad = !*k || apid_hex_decode(h, hl, *k, kl);
    free(h);
    if (bad) { free(*k); *k = NULL; return -1; }
    return 1;
}

static enum MHD_Result apid_to_key(apid_req *r, const char *k, size_t kl, const char *msg)
{
    apid_buf loc = { 0 };
    char *hx = malloc(2 * kl + 1);
    if (!hx) return MHD_NO;
    apid_hex_encode(k, kl, hx);
    apid_buf_printf(&loc, "/browse/key?k=%s&msg=%s", hx, msg);
    apid_browse_ns_arg(&loc, r, "&");
    free(hx);
    enum MHD_Result res = loc.oom ? MHD_NO : apid_redirect(r, loc.p);
    apid_buf_free(&loc);
    return res;
}

/* The list page of the request's namespace, as an href or a Location. */
static void apid_list_url(apid_buf *b, apid_req *r, const char *msg, const char *amp)
{
    apid_buf_puts(b, "/browse");
    if (msg) apid_buf_printf(b, "?msg=%s", msg);
    apid_browse_ns_arg(b, r, msg ? amp : "?");
}

static enum MHD_Result apid_edit_error(apid *s, apid_req *r, unsigned status, const char *text)
{
    apid_buf l = { 0 };
    apid_buf_puts(&l, "<p><a href=\"");
    apid_list_url(&l, r, NULL, "&amp;");
    apid_buf_puts(&l, "\" id=\"back\">All keys</a></p>");
    enum MHD_Result res = apid_page_message(s, r, status, "Not saved", text, l.p ? l.p : "");
    apid_buf_free(&l);
    return res;
}

/* >> insert and edit */
enum MHD_Result apid_route_browse_put(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_edit_guard(s, r, &res)) return res;
    char *k = NULL, *v = NULL, *ttl = NULL, *keep = NULL;
    size_t kl = 0, vl = 0, tl = 0, keepl;
    int edit, has_k = apid_field_key(r, &k, &kl);      /* k: an edit; key: an insert */
    if (has_k == 1) edit = 1;
    else if (has_k == 0 && apid_field_bytes(r, "key", "kenc", &k, &kl) == 1) edit = 0;
    else edit = -1;
    if (edit < 0) { free(k); return apid_edit_error(s, r, 400, "The key is missing or is not valid hex."); }
    if (apid_field_bytes(r, "value", "enc", &v, &vl) < 0) {
        free(k);
        return apid_edit_error(s, r, 400, "The value is not valid hex.");
    }
    uint64_t ttl_ms = 0, exp = 0;
    if (apid_form(r, "ttl", &ttl, &tl) == 1 && tl && apid_ttl_parse(ttl, tl, &ttl_ms)) {
        free(k); free(v); free(ttl);
        return apid_edit_error(s, r, 400, "The TTL must be a number with a unit: ms, s, m, h or d (e.g. 90s).");
    }
    free(ttl);
    /* An edit keeps the key's remaining TTL unless a new one is given. */
    if (edit && !ttl_ms && apid_form(r, "keep_ttl", &keep, &keepl) == 1 &&
        calypso_ttl(r->db, k, kl, &exp) == CALYPSO_OK && exp) {
        uint64_t now = apid_wall_ms();
        ttl_ms = exp > now ? exp - now : 1;
    }
    free(keep);
    int rc = calypso_put_ttl(r->db, k, kl, v ? v : "", vl, ttl_ms);
    free(v);
    if (rc != CALYPSO_OK) {
        free(k);
        return apid_edit_error(s, r, apid_status_of(rc), calypso_strerror(rc));
    }
    res = apid_to_key(r, k, kl, edit ? "saved" : "created");
    free(k);
    return res;
}

/* >> TTL: set or clear. calypso.h has no call that changes a TTL alone, so
 * the value is read and written again with the new expiry; a write to the
 * same key between the two is overwritten by the value read. */
enum MHD_Result apid_route_browse_ttl(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_edit_guard(s, r, &res)) return res;
    char *k, *ttl = NULL;
    size_t kl, tl = 0;
    uint64_t ttl_ms = 0;
    if (apid_field_key(r, &k, &kl) != 1) return apid_edit_error(s, r, 400, "The key is missing or is not valid hex.");
    if (apid_form(r, "ttl", &ttl, &tl) < 0 || (tl && apid_ttl_parse(ttl, tl, &ttl_ms))) {
        free(k); free(ttl);
        return apid_edit_error(s, r, 400, "The TTL must be a number with a unit: ms, s, m, h or d (e.g. 90s).");
    }
    free(ttl);
    void *v;
    size_t vl;
    int rc = calypso_get(r->db, k, kl, &v, &vl);
    if (rc == CALYPSO_OK) rc = calypso_put_ttl(r->db, k, kl, v, vl, ttl_ms);
    calypso_free(v);
    if (rc != CALYPSO_OK) {
        free(k);
        return apid_edit_error(s, r, apid_status_of(rc), calypso_strerror(rc));
    }
    res = apid_to_key(r, k, kl, ttl_ms ? "ttl_set" : "ttl_cleared");
    free(k);
    return res;
}

/* >> delete: without confirm=1, a page asks first */
enum MHD_Result apid_route_browse_delete(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_edit_guard(s, r, &res)) return res;
    char *k, *confirm = NULL;
    size_t kl, cl;
    if (apid_field_key(r, &k, &kl) != 1) return apid_edit_error(s, r, 400, "The key is missing or is not valid hex.");
    int confirmed = apid_form(r, "confirm", &confirm, &cl) == 1 && !strcmp(confirm, "1");
    free(confirm);
    if (!confirmed) {
        apid_buf f = { 0 };
        apid_buf_puts(&f, "<p class=\"k\">");
        apid_key_html(&f, k, kl);
        apid_buf_puts(&f, "</p><form method=\"post\" action=\"/browse/delete\">");
        apid_form_hidden(&f, r, k, kl);
        apid_buf_puts(&f, "<input type=\"hidden\" name=\"confirm\" value=\"1\">"
                          "<button id=\"confirm-delete\" class=\"danger\" type=\"submit\">Delete</button> "
                          "<a href=\"");
        apid_list_url(&f, r, NULL, "&amp;");
        apid_buf_puts(&f, "\">Cancel</a></form>");
        free(k);
        res = apid_page_message(s, r, 200, "Delete this key?", "This cannot be undone.", f.p);
        apid_buf_free(&f);
        return res;
    }
    int rc = calypso_delete(r->db, k, kl);
    free(k);
    if (rc != CALYPSO_OK) return apid_edit_error(s, r, apid_status_of(rc), calypso_strerror(rc));
    apid_buf loc = { 0 };
    apid_list_url(&loc, r, "deleted", "&");
    res = loc.oom ? MHD_NO : apid_redirect(r, loc.p);
    apid_buf_free(&loc);
    return res;
}

/* >> merge */
enum MHD_Result apid_route_browse_merge(apid *s, apid_req *r)
{
    enum MHD_Result res;
    if (apid_edit_guard(s, r, &res)) return res;
    int rc = calypso_merge(s->db);
    if (rc != CALYPSO_OK) return apid_edit_error(s, r, apid_status_of(rc), calypso_strerror(rc));
    apid_buf loc = { 0 };
    apid_list_url(&loc, r, "merged", "&");
    res = loc.oom ? MHD_NO : apid_redirect(r, loc.p);
    apid_buf_free(&loc);
    return res;
}

/* >> sign in: the token becomes an HttpOnly cookie for /browse */
enum MHD_Result apid_route_browse_login(apid *s, apid_req *r)
{
    if (!apid_csrf_ok(r))
        return apid_page_message(s, r, 403, "Refused", "The form's CSRF token is missing or stale. Reload the page.", "");
    if (!s->cfg.token) return apid_redirect(r, "/browse");
    char *t;
    size_t tl;
    if (apid_form(r, "token", &t, &tl) != 1 || !apid_secret_eq(t, s->cfg.token)) {
        free(t);
        return apid_browse_login_page(s, r, "Wrong token.");
    }
    free(t);
    char cookie[600];
    snprintf(cookie, sizeof cookie, "apid_token=%s; Path=/browse; HttpOnly; SameSite=Strict", s->cfg.token);
    const char *hdr[] = { "Location", "/browse", "Set-Cookie", cookie, "Cache-Control", "no-store", NULL };
    char *body = strdup("");
    return body ? apid_reply_owned(r, 303, "text/plain; charset=utf-8", body, 0, hdr) : MHD_NO;
}
