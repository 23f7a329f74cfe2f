/*
 * browse_page.c: what every dashboard page shares: the page frame
 * (layout.html, with the Content-Security-Policy and no-store headers), the
 * CSRF token (a random 128-bit value in an HttpOnly, SameSite=Strict
 * cookie, echoed in every form: double-submit), form fields, how a key is
 * shown (escaped text when it is printable UTF-8, hex otherwise), flash
 * messages, the static assets and the login page.
 *
 * Every key and value reaches a page through apid_buf_html or as hex, never
 * raw; the CSP allows scripts and styles from apid itself only, so even a
 * missed escape could not run inline script.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "browse.h"

void apid_csrf_token(apid_req *r, char tok[APID_CSRF_LEN + 1], int *fresh)
{
    if (!r->csrf[0]) {
        char c[APID_CSRF_LEN + 8];
        size_t n;
        if (apid_cookie(r, "apid_csrf", c, sizeof c) && (n = strlen(c)) == APID_CSRF_LEN &&
            strspn(c, "0123456789abcdef") == n) {
            memcpy(r->csrf, c, APID_CSRF_LEN + 1);
        } else {
            unsigned char raw[APID_CSRF_LEN / 2];
            if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw) abort();   /* no entropy: never guess */
            apid_hex_encode(raw, sizeof raw, r->csrf);
            r->csrf_fresh = 1;
        }
    }
    memcpy(tok, r->csrf, APID_CSRF_LEN + 1);
    *fresh = r->csrf_fresh;
}

int apid_csrf_ok(apid_req *r)
{
    char cookie[APID_CSRF_LEN + 8];
    char *field;
    size_t fl;
    const char *site = apid_header(r, "Sec-Fetch-Site");
    if (site && !strcmp(site, "cross-site")) return 0;
    if (!apid_cookie(r, "apid_csrf", cookie, sizeof cookie) || strlen(cookie) != APID_CSRF_LEN) return 0;
    if (apid_form(r, "csrf", &field, &fl) != 1) return 0;
    int ok = fl == APID_CSRF_LEN && apid_secret_eq(field, cookie);
    free(field);
    return ok;
}

int apid_form(apid_req *r, const char *name, char **val, size_t *len)
{
    return apid_query_get(r->body ? r->body : "", r->body_len, name, val, len);
}

enum MHD_Result apid_page(apid *s, apid_req *r, unsigned status, const char *title, apid_buf *content)
{
    apid_buf b = { 0 };
    char tok[APID_CSRF_LEN + 1], cookie[128];
    int fresh;
    apid_csrf_token(r, tok, &fresh);
    apid_var vars[] = {
        { "title", title, 0, 0 },
        { "content", content->p ? content->p : "", content->len, 1 },
        { "mode", s->cfg.read_only ? "read-only" : "", 0, 0 },
    };
    apid_template_render(&b, "layout.html", vars, sizeof vars / sizeof vars[0]);
    apid_buf_free(content);
    if (b.oom) { apid_buf_free(&b); return apid_reply_error(r, 500, "nomem", "out of memory"); }
    snprintf(cookie, sizeof cookie, "apid_csrf=%s; Path=/browse; HttpOnly; SameSite=Strict", tok);
    const char *hdr[] = {
        "Content-Security-Policy", "default-src 'none'; style-src 'self'; script-src 'self'; "
                                   "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        "Cache-Control", "no-store",
        "Referrer-Policy", "no-referrer",
        "X-Frame-Options", "DENY",
        fresh ? "Set-Cookie" : NULL, cookie,
        NULL };
    return apid_reply_owned(r, status, "text/html; charset=utf-8", b.p, b.len, hdr);
}

enum MHD_Result apid_page_message(apid *s, apid_req *r, unsigned status, const char *title,
                                  const char *text, const char *html)
{
    apid_buf c = { 0 };
    apid_var vars[] = { { "title", title, 0, 0 }, { "text", text, 0, 0 }, { "extra", html, 0, 1 } };
    apid_template_render(&c, "message.html", vars, 3);
    return apid_page(s, r, status, title, &c);
}

enum MHD_Result apid_redirect(apid_req *r, const char *location)
{
    const char *hdr[] = { "Location", location, "Cache-Control", "no-store", NULL };
    char *body = strdup("");
    return body ? apid_reply_owned(r, 303, "text/plain; charset=utf-8", body, 0, hdr) : MHD_NO;
}

int apid_printable(const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f) return 0;
    return apid_utf8_valid(p, n);
}

void apid_key_html(apid_buf *b, const void *k, size_t kl)
{
    if (apid_printable(k, kl)) {
        apid_buf_puts(b, "<span class=\"k\">");
        apid_buf_html(b, k, kl);
        apid_buf_puts(b, "</span>");
        return;
    }
    char *hx = malloc(2 * kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(k, kl, hx);
    apid_buf_printf(b, "<span class=\"k hex\" title=\"hex\">0x%s</span>", hx);
    free(hx);
}

/* >> the namespace of a dashboard page */
int apid_browse_ns(apid *s, apid_req *r, enum MHD_Result *res)
{
    char *h, *name = NULL;
    size_t hl, nl = 0;
    r->db = s->db;
    int f = r->method == APID_POST ? apid_form(r, "nsx", &h, &hl)
                                   : apid_query_get(r->query, r->query_len, "nsx", &h, &hl);
    if (f == 0) return 0;
    if (f == 1) {
        name = malloc(hl / 2 + 1);
        if (!name || apid_hex_decode(h, hl, name, &nl)) f = -1;
        free(h);
    }
    int rc = f < 0 ? CALYPSO_EINVAL : apid_ns_use(s, r, name, nl);
    free(name);
    if (rc == CALYPSO_OK) return 0;
    if (rc == CALYPSO_ENOTFOUND)
        *res = apid_page_message(s, r, 404, "No such namespace", "The namespace does not exist (it may have been dropped).",
                                 "<p><a href=\"/browse\" id=\"back\">The default namespace</a></p>");
    else if (rc == CALYPSO_EINVAL)
        *res = apid_page_message(s, r, 400, "Bad request", "nsx must be a namespace name in hex.", "");
    else
        *res = apid_page_message(s, r, apid_status_of(rc), "Error", calypso_strerror(rc), "");
    return 1;
}

void apid_browse_ns_arg(apid_buf *b, apid_req *r, const char *sep)
{
    size_t nl;
    const char *n = apid_ns_name(r, &nl);
    if (!n) return;
    char *hx = malloc(2 * nl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(n, nl, hx);
    apid_buf_printf(b, "%snsx=%s", sep, hx);
    free(hx);
}

void apid_form_hidden(apid_buf *b, apid_req *r, const void *k, size_t kl)
{
    char tok[APID_CSRF_LEN + 1];
    int fresh;
    apid_csrf_token(r, tok, &fresh);
    apid_buf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", tok);
    size_t nl;
    const char *n = apid_ns_name(r, &nl);
    if (n) {
        char *nh = malloc(2 * nl + 1);
        if (!nh) { b->oom = 1; return; }
        apid_hex_encode(n, nl, nh);
        apid_buf_printf(b, "<input type=\"hidden\" name=\"nsx\" value=\"%s\">", nh);
        free(nh);
    }
    if (!k) return;
    char *hx = malloc(2 * kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(k, kl, hx);
    apid_buf_printf(b, "<input type=\"hidden\" name=\"k\" value=\"%s\">", hx);
    free(hx);
}

/* >> flash messages: only these fixed texts, chosen by a code in ?msg= */
void apid_flash(apid_req *r, apid_buf *b)
{
    static const char *const msgs[][2] = {
        { "saved", "Saved." }, { "created", "Key created." }, { "deleted", "Key deleted." },
        { "merged", "Merge complete." }, { "ttl_set", "TTL set." }, { "ttl_cleared", "TTL cleared." },
    };
    char *m;
    size_t ml;
    if (apid_query_get(r->query, r->query_len, "msg", &m, &ml) != 1) return;
    for (size_t i = 0; i < sizeof msgs / sizeof msgs[0]; i++)
        if (!strcmp(m, msgs[i][0])) apid_buf_printf(b, "<p class=\"flash\" id=\"flash\">%s</p>", msgs[i][1]);
    free(m);
}

int apid_hex_param(apid_req *r, const char *name, char **k, size_t *kl)
{
    char *h;
    size_t hl;
    *k = NULL;
    int f = apid_query_get(r->query, r->query_len, name, &h, &hl);
    if (f != 1) return f;
    *k = malloc(hl / 2 + 1);
    int bad = !*k || apid_hex_decode(h, hl, *k, kl);
    free(h);
    if (bad) { free(*k); *k = NULL; return -1; }
    return 1;
}

/* >> static assets and the login page */
enum MHD_Result apid_route_browse_static(apid *s, apid_req *r)
{
    (void)s;
    static const struct { const char *name, *ctype; } files[] = {
        { "style.css", "text/css; charset=utf-8" }, { "app.js", "text/javascript; charset=utf-8" } };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        if (strlen(files[i].name) != r->param_len || memcmp(files[i].name, r->param, r->param_len)) continue;
        size_t len;
        const unsigned char *d = apid_template_get(files[i].name, &len);
        if (!d) break;
        return apid_reply(r, 200, files[i].ctype, d, len);
    }
    return apid_reply_error(r, 404, "no_route", "no such file");
}

enum MHD_Result apid_browse_login_page(apid *s, apid_req *r, const char *error)
{
    apid_buf c = { 0 }, hidden = { 0 };
    apid_form_hidden(&hidden, r, NULL, 0);
    apid_var vars[] = { { "hidden", hidden.p, hidden.len, 1 }, { "error", error, 0, 0 } };
    apid_template_render(&c, "login.html", vars, 2);
    apid_buf_free(&hidden);
    return apid_page(s, r, 401, "Sign in", &c);
}

