/*
 * browse.c: the dashboard's pages, rendered on the server from the
 * compiled-in templates: /browse (search by prefix, pages of keys forward
 * and back, insert form, stats panel with a chart, merge button),
 * /browse/key (one key: its value as text or hex, TTL, edit, TTL and
 * delete forms), the login page, and the static assets.
 *
 * Nothing here changes data: every GET is read-only; the forms POST to
 * browse_edit.c with a CSRF token. Every key and value reaches the page
 * through apid_buf_html or as hex, never raw; the Content-Security-Policy
 * allows scripts and styles from apid itself only, so even a missed escape
 * could not run inline script.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "browse.h"

#define APID_PAGE_KEYS 50         /* keys per dashboard page */
#define APID_SHOW_MAX  (64u << 10) /* value bytes shown on the key page */

/* >> frame, CSRF, forms */
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

static int apid_printable(const void *p, size_t n)
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

void apid_form_hidden(apid_buf *b, apid_req *r, const void *k, size_t kl)
{
    char tok[APID_CSRF_LEN + 1];
    int fresh;
    apid_csrf_token(r, tok, &fresh);
    apid_buf_printf(b, "<input type=\"hidden\" name=\"csrf\" value=\"%s\">", tok);
    if (!k) return;
    char *hx = malloc(2 * kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(k, kl, hx);
    apid_buf_printf(b, "<input type=\"hidden\" name=\"k\" value=\"%s\">", hx);
    free(hx);
}

/* >> flash messages: only these fixed texts, chosen by a code in ?msg= */
static void apid_flash(apid_req *r, apid_buf *b)
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

/* >> /browse: one page of keys */
typedef struct apid_key_row { char *k; size_t kl; } apid_key_row;

typedef struct apid_listing {
    apid_key_row rows[APID_PAGE_KEYS];
    size_t n;
    int has_prev, has_next;
} apid_listing;

static int apid_cmp(const void *a, size_t al, const void *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al > bl) - (al < bl);
}

static int apid_has_prefix(const void *k, size_t kl, const char *p, size_t pl)
{
    return kl >= pl && memcmp(k, p, pl) == 0;
}

static int apid_row_add(apid_listing *l, const void *k, size_t kl)
{
    char *c = malloc(kl ? kl : 1);
    if (!c) return CALYPSO_ENOMEM;
    memcpy(c, k, kl);
    l->rows[l->n++] = (apid_key_row){ c, kl };
    return CALYPSO_OK;
}

/* Whether a key of the prefix lies beyond the cursor's position in the
 * direction of `step` (next or prev). */
static int apid_more(calypso_cursor *cur, int (*step)(calypso_cursor *), const char *p, size_t pl)
{
    const void *k;
    size_t kl;
    return step(cur) == CALYPSO_OK && calypso_cursor_key(cur, &k, &kl) == CALYPSO_OK &&
           apid_has_prefix(k, kl, p, pl);
}

/* Forward from the first key > after (or >= prefix). */
static int apid_list_forward(calypso_cursor *cur, apid_listing *l, const char *p, size_t pl,
                             const char *after, size_t al)
{
    const void *k;
    size_t kl;
    int use_after = after && apid_cmp(after, al, p, pl) >= 0;
    int rc = use_after ? calypso_cursor_seek(cur, after, al) : calypso_cursor_seek(cur, p, pl);
    if (rc == CALYPSO_OK && use_after && calypso_cursor_key(cur, &k, &kl) == CALYPSO_OK &&
        apid_cmp(k, kl, after, al) == 0)
        rc = calypso_cursor_next(cur);
    for (; rc == CALYPSO_OK; rc = calypso_cursor_next(cur)) {
        if ((rc = calypso_cursor_key(cur, &k, &kl)) != CALYPSO_OK) break;
        if (!apid_has_prefix(k, kl, p, pl)) break;
        if (l->n == APID_PAGE_KEYS) { l->has_next = 1; break; }
        if ((rc = apid_row_add(l, k, kl)) != CALYPSO_OK) return rc;
    }
    if (rc != CALYPSO_OK && rc != CALYPSO_ENOTFOUND) return rc;
    if (l->n && calypso_cursor_seek(cur, l->rows[0].k, l->rows[0].kl) == CALYPSO_OK)
        l->has_prev = apid_more(cur, calypso_cursor_prev, p, pl);
    return CALYPSO_OK;
}

/* Backward from the last key < before, then put in order. */
static int apid_list_backward(calypso_cursor *cur, apid_listing *l, const char *p, size_t pl,
                              const char *before, size_t bl)
{
    const void *k;
    size_t kl;
    int rc = calypso_cursor_seek_le(cur, before, bl);
    if (rc == CALYPSO_OK && calypso_cursor_key(cur, &k, &kl) == CALYPSO_OK && apid_cmp(k, kl, before, bl) == 0)
        rc = calypso_cursor_prev(cur);
    for (; rc == CALYPSO_OK; rc = calypso_cursor_prev(cur)) {
        if ((rc = calypso_cursor_key(cur, &k, &kl)) != CALYPSO_OK) break;
        if (!apid_has_prefix(k, kl, p, pl)) break;
        if (l->n == APID_PAGE_KEYS) { l->has_prev = 1; break; }
        if ((rc = apid_row_add(l, k, kl)) != CALYPSO_OK) return rc;
    }
    if (rc != CALYPSO_OK && rc != CALYPSO_ENOTFOUND) return rc;
    for (size_t i = 0; i < l->n / 2; i++) {
        apid_key_row t = l->rows[i];
        l->rows[i] = l->rows[l->n - 1 - i];
        l->rows[l->n - 1 - i] = t;
    }
    l->has_next = 1;
    return CALYPSO_OK;
}

static void apid_listing_free(apid_listing *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->rows[i].k);
}

/* One table row: the key (a link), a preview of the value, its TTL. */
static void apid_list_row(apid *s, apid_buf *b, const apid_key_row *row)
{
    char *hx = malloc(2 * row->kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(row->k, row->kl, hx);
    apid_buf_printf(b, "<tr><td><a href=\"/browse/key?k=%s\">", hx);
    free(hx);
    apid_key_html(b, row->k, row->kl);
    apid_buf_puts(b, "</a></td><td class=\"v\">");
    /* A preview of the first bytes; values over 4 KiB show their size only
     * (a page of 64 MiB values must not read them all). */
    char buf[4096];
    size_t vlen;
    int rc = calypso_get_buf(s->db, row->k, row->kl, buf, sizeof buf, &vlen);
    if (rc == CALYPSO_OK) {
        size_t cut = vlen < 60 ? vlen : 60;
        while (cut > 0 && cut < vlen && ((unsigned char)buf[cut] & 0xC0) == 0x80) cut--;   /* a UTF-8 boundary */
        if (apid_printable(buf, vlen)) {
            apid_buf_html(b, buf, cut);
        } else {
            char h[33];
            apid_hex_encode(buf, vlen < 16 ? vlen : 16, h);
            apid_buf_printf(b, "<span class=\"hex\">0x%s</span>", h);
            cut = vlen < 16 ? vlen : 16;
        }
        if (vlen > cut) apid_buf_puts(b, "…");
        apid_buf_printf(b, " <small>(%zu B)</small>", vlen);
    } else if (rc == CALYPSO_ETRUNC) {
        apid_buf_printf(b, "<small>(%zu B)</small>", vlen);
    } else {
        apid_buf_printf(b, "<em>%s</em>", calypso_strerror(rc));
    }
    uint64_t exp;
    apid_buf_puts(b, "</td><td class=\"ttl\">");
    if (calypso_ttl(s->db, row->k, row->kl, &exp) == CALYPSO_OK && exp) {
        uint64_t now = apid_wall_ms();
        apid_buf_printf(b, "%llu s", (unsigned long long)(exp > now ? (exp - now + 999) / 1000 : 0));
    }
    apid_buf_puts(b, "</td></tr>\n");
}

/* A link to another page of the same prefix. */
static void apid_page_link(apid_buf *b, const char *id, const char *label, const char *dir,
                           const char *p, size_t pl, const apid_key_row *row)
{
    char *hx = malloc(2 * row->kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(row->k, row->kl, hx);
    apid_buf_printf(b, "<a id=\"%s\" class=\"btn\" href=\"/browse?prefix=", id);
    apid_pct_encode(b, p, pl);
    apid_buf_printf(b, "&amp;%s=%s\">%s</a> ", dir, hx, label);
    free(hx);
}

static void apid_human(char *out, size_t cap, uint64_t n)
{
    static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double v = (double)n;
    size_t i = 0;
    while (v >= 1024 && i < 4) { v /= 1024; i++; }
    if (i == 0) snprintf(out, cap, "%llu B", (unsigned long long)n);
    else snprintf(out, cap, "%.1f %s", v, u[i]);
}

/* The stats panel's chart: keys in the upper band, bytes on disk in the
 * lower one, each scaled to its own maximum over the samples. */
static void apid_chart(apid_buf *b)
{
    enum { APID_CHART_POINTS = 240 };
    apid_sample *h = malloc(APID_CHART_POINTS * sizeof *h);
    if (!h) return;
    size_t n = apid_history_copy(h, APID_CHART_POINTS);
    uint64_t mk = 1, mb = 1;
    for (size_t i = 0; i < n; i++) { if (h[i].keys > mk) mk = h[i].keys; if (h[i].bytes > mb) mb = h[i].bytes; }
    apid_buf_puts(b, "<svg id=\"chart\" viewBox=\"0 0 300 80\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"keys and bytes over time\">"
                     "<line x1=\"0\" y1=\"40\" x2=\"300\" y2=\"40\" stroke=\"#dde1e7\" stroke-width=\"1\"/>");
    for (int series = 0; series < 2; series++) {
        apid_buf_printf(b, "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"%s\" points=\"",
                        series ? "#d9822b" : "#2b6cd9");
        for (size_t i = 0; i < n; i++) {
            double x = n > 1 ? 300.0 * (double)i / (double)(n - 1) : 0;
            double y = series ? (double)h[i].bytes / (double)mb : (double)h[i].keys / (double)mk;
            apid_buf_printf(b, "%.1f,%.1f ", x, (series ? 78.0 : 37.0) - 35.0 * y);
        }
        apid_buf_puts(b, "\"/>");
    }
    apid_buf_puts(b, "</svg>");
    free(h);
}

static void apid_stats_panel(apid *s, apid_req *r, apid_buf *b)
{
    struct calypso_stats st;
    if (calypso_stats(s->db, &st) != CALYPSO_OK) return;
    char by[32], dead[32];
    apid_human(by, sizeof by, st.size);
    apid_human(dead, sizeof dead, st.reclaimable);
    apid_buf_printf(b, "<dl class=\"stats\"><dt>keys</dt><dd id=\"st-keys\">%llu</dd><dt>bytes</dt><dd>%s</dd>"
                       "<dt>dead bytes</dt><dd>%s</dd><dt>datafiles</dt><dd>%u</dd><dt>merges</dt><dd id=\"st-merges\">%llu</dd>"
                       "<dt>uptime</dt><dd>%llu s</dd></dl>",
                    (unsigned long long)st.keys, by, dead, st.datafiles, (unsigned long long)st.merges,
                    (unsigned long long)((apid_wall_ms() - s->started_ms) / 1000));
    apid_chart(b);
    apid_buf_puts(b, "<p class=\"legend\"><span class=\"lk\">keys</span> <span class=\"lb\">bytes on disk</span></p>");
    if (!s->cfg.read_only) {
        apid_buf_puts(b, "<form method=\"post\" action=\"/browse/merge\">");
        apid_form_hidden(b, r, NULL, 0);
        apid_buf_puts(b, "<button id=\"merge\" type=\"submit\">Merge now</button></form>");
    }
}

/* Reads ?name= as hex into a malloc'd key: 1 found, 0 absent, -1 bad. */
static int apid_hex_param(apid_req *r, const char *name, char **k, size_t *kl)
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

enum MHD_Result apid_route_browse(apid *s, apid_req *r)
{
    char *p = NULL, *after = NULL, *before = NULL;
    size_t pl = 0, al = 0, bl = 0;
    apid_listing l = { .n = 0 };
    if (apid_query_get(r->query, r->query_len, "prefix", &p, &pl) < 0 ||
        apid_hex_param(r, "after", &after, &al) < 0 || apid_hex_param(r, "before", &before, &bl) < 0) {
        free(p); free(after); free(before);
        return apid_page_message(s, r, 400, "Bad request", "The page address is malformed.", "");
    }
    calypso_cursor *cur;
    int rc = calypso_cursor_open(s->db, &cur);
    if (rc == CALYPSO_OK) {
        rc = before ? apid_list_backward(cur, &l, p ? p : "", pl, before, bl)
                    : apid_list_forward(cur, &l, p ? p : "", pl, after, al);
        if (rc == CALYPSO_OK && before && l.n == 0) {        /* before the first key: show the first page */
            l.has_next = 0;
            rc = apid_list_forward(cur, &l, p ? p : "", pl, NULL, 0);
        }
        calypso_cursor_close(cur);
    }
    free(after); free(before);
    if (rc != CALYPSO_OK) {
        apid_listing_free(&l);
        free(p);
        return apid_page_message(s, r, apid_status_of(rc), "Error", calypso_errmsg(s->db), "");
    }
    apid_buf rows = { 0 }, nav = { 0 }, stats = { 0 }, c = { 0 }, flash = { 0 }, form = { 0 };
    for (size_t i = 0; i < l.n; i++) apid_list_row(s, &rows, &l.rows[i]);
    if (l.n == 0) apid_buf_puts(&rows, "<tr><td colspan=\"3\" id=\"empty\">No keys.</td></tr>");
    if (l.has_prev) apid_page_link(&nav, "prev", "‹ Previous", "before", p ? p : "", pl, &l.rows[0]);
    if (l.has_next && l.n) apid_page_link(&nav, "next", "Next ›", "after", p ? p : "", pl, &l.rows[l.n - 1]);
    apid_stats_panel(s, r, &stats);
    apid_flash(r, &flash);
    if (!s->cfg.read_only) apid_form_hidden(&form, r, NULL, 0);
    char count[32];
    snprintf(count, sizeof count, "%zu", l.n);
    apid_var vars[] = {
        { "prefix", p ? p : "", pl, 0 }, { "rows", rows.p, rows.len, 1 }, { "nav", nav.p, nav.len, 1 },
        { "stats", stats.p, stats.len, 1 }, { "flash", flash.p, flash.len, 1 },
        { "hidden", form.p, form.len, 1 }, { "count", count, 0, 0 },
        { "insert_hidden", s->cfg.read_only ? "hidden" : "", 0, 0 },
    };
    apid_template_render(&c, "list.html", vars, sizeof vars / sizeof vars[0]);
    apid_buf_free(&rows); apid_buf_free(&nav); apid_buf_free(&stats); apid_buf_free(&flash); apid_buf_free(&form);
    apid_listing_free(&l);
    free(p);
    return apid_page(s, r, 200, "Browse", &c);
}

/* >> /browse/key?k=HEX[&view=hex] */
static void apid_hexdump(apid_buf *b, const unsigned char *v, size_t n)
{
    for (size_t off = 0; off < n; off += 16) {
        apid_buf_printf(b, "%08zx  ", off);
        for (size_t i = 0; i < 16; i++) {
            if (off + i < n) apid_buf_printf(b, "%02x ", v[off + i]);
            else apid_buf_puts(b, "   ");
            if (i == 7) apid_buf_puts(b, " ");
        }
        apid_buf_puts(b, " |");
        for (size_t i = 0; i < 16 && off + i < n; i++) {
            unsigned char c = v[off + i];
            if (c >= 0x20 && c < 0x7f) apid_buf_html(b, &c, 1);
            else apid_buf_puts(b, ".");
        }
        apid_buf_puts(b, "|\n");
    }
}

static void apid_key_value_view(apid_buf *b, const void *v, size_t vlen, int hex)
{
    size_t shown = vlen > APID_SHOW_MAX ? APID_SHOW_MAX : vlen;
    if (hex) {
        apid_buf_puts(b, "<pre id=\"value\" class=\"hexdump\">");
        apid_hexdump(b, v, shown);
    } else {
        apid_buf_puts(b, "<pre id=\"value\">");
        apid_buf_html(b, v, shown);
    }
    apid_buf_puts(b, "</pre>");
    if (shown < vlen) apid_buf_printf(b, "<p>First %zu of %zu bytes shown.</p>", shown, vlen);
}

static void apid_key_forms(apid *s, apid_req *r, apid_buf *b, const char *k, size_t kl,
                           const void *v, size_t vlen, int text)
{
    if (s->cfg.read_only) return;
    apid_buf_puts(b, "<h2>Edit</h2><form id=\"edit\" method=\"post\" action=\"/browse/put\">");
    apid_form_hidden(b, r, k, kl);
    apid_buf_puts(b, "<input type=\"hidden\" name=\"keep_ttl\" value=\"1\"><textarea name=\"value\" id=\"edit-value\" rows=\"6\">");
    if (text) apid_buf_html(b, v, vlen);
    else {
        char *hx = malloc(2 * vlen + 1);
        if (hx) { apid_hex_encode(v, vlen, hx); apid_buf_put(b, hx, 2 * vlen); free(hx); }
    }
    apid_buf_printf(b, "</textarea><label>as <select name=\"enc\" id=\"edit-enc\"><option value=\"text\"%s>text</option>"
                       "<option value=\"hex\"%s>hex</option></select></label> <button id=\"save\" type=\"submit\">Save</button></form>",
                    text ? " selected" : "", text ? "" : " selected");
    apid_buf_puts(b, "<h2>TTL</h2><form id=\"ttl-form\" method=\"post\" action=\"/browse/ttl\">");
    apid_form_hidden(b, r, k, kl);
    apid_buf_puts(b, "<input name=\"ttl\" id=\"ttl\" placeholder=\"e.g. 90s, 10m, 2h\" required> <button id=\"set-ttl\" type=\"submit\">Set TTL</button></form>"
                     "<form method=\"post\" action=\"/browse/ttl\">");
    apid_form_hidden(b, r, k, kl);
    apid_buf_puts(b, "<input type=\"hidden\" name=\"ttl\" value=\"\"><button id=\"clear-ttl\" type=\"submit\">Clear TTL</button></form>"
                     "<h2>Delete</h2><form id=\"delete\" method=\"post\" action=\"/browse/delete\" data-confirm=\"Delete this key?\">");
    apid_form_hidden(b, r, k, kl);
    apid_buf_puts(b, "<button id=\"delete-btn\" class=\"danger\" type=\"submit\">Delete…</button></form>");
}

enum MHD_Result apid_route_browse_key(apid *s, apid_req *r)
{
    char *k, *view;
    size_t kl, vwl;
    if (apid_hex_param(r, "k", &k, &kl) != 1)
        return apid_page_message(s, r, 400, "Bad request", "k must be the key in hex.", "");
    void *v;
    size_t vlen;
    uint64_t exp = 0;
    int rc = calypso_get(s->db, k, kl, &v, &vlen);
    if (rc == CALYPSO_OK) rc = calypso_ttl(s->db, k, kl, &exp);
    if (rc != CALYPSO_OK) {
        free(k);
        calypso_free(v);
        return apid_page_message(s, r, apid_status_of(rc), "Not found",
                                 rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED ? "No such key (it may have expired)." : calypso_strerror(rc),
                                 "<p><a href=\"/browse\">Back to the list</a></p>");
    }
    int text = apid_printable(v, vlen) || (apid_utf8_valid(v, vlen) && !memchr(v, 0, vlen));
    int hex = !text;
    if (apid_query_get(r->query, r->query_len, "view", &view, &vwl) == 1) {
        hex = !strcmp(view, "hex") || !text;
        free(view);
    }
    apid_buf c = { 0 }, flash = { 0 };
    apid_flash(r, &flash);
    apid_buf_put(&c, flash.p ? flash.p : "", flash.len);
    apid_buf_free(&flash);
    apid_buf_puts(&c, "<p><a href=\"/browse\">‹ All keys</a></p><h1 id=\"key\">");
    apid_key_html(&c, k, kl);
    char *hx = malloc(2 * kl + 1);
    if (hx) apid_hex_encode(k, kl, hx);
    apid_buf_printf(&c, "</h1><p class=\"meta\"><span id=\"size\">%zu bytes</span> · <span id=\"ttl-left\">", vlen);
    uint64_t now = apid_wall_ms();
    if (exp) apid_buf_printf(&c, "expires in %llu s", (unsigned long long)(exp > now ? (exp - now + 999) / 1000 : 0));
    else apid_buf_puts(&c, "no TTL");
    apid_buf_printf(&c, "</span> · view as <a id=\"view-text\" href=\"/browse/key?k=%s&amp;view=text\">text</a> | "
                        "<a id=\"view-hex\" href=\"/browse/key?k=%s&amp;view=hex\">hex</a></p>", hx ? hx : "", hx ? hx : "");
    free(hx);
    if (hex || text) apid_key_value_view(&c, v, vlen, hex);
    apid_key_forms(s, r, &c, k, kl, v, vlen, text);
    calypso_free(v);
    free(k);
    return apid_page(s, r, 200, "Key", &c);
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
