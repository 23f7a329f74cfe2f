/*
 * browse.c: GET /browse, the dashboard's main page: search by prefix, a
 * page of APID_PAGE_KEYS keys with a preview of each value and its TTL,
 * links to the next and previous pages, the insert form, and the stats
 * panel (figures, a chart of keys and disk bytes over the process's life,
 * the merge button).
 *
 * Paging: ?after=HEX starts after a key, ?before=HEX ends before one, both
 * within ?prefix=. Keys are copied out of the cursor as they are listed, so
 * writes between pages never make a page skip or repeat a key that exists
 * throughout. Nothing here changes data: the forms POST to browse_edit.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "browse.h"

#define APID_PAGE_KEYS 50         /* keys per dashboard page */

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
static void apid_list_row(apid_req *r, apid_buf *b, const apid_key_row *row)
{
    char *hx = malloc(2 * row->kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(row->k, row->kl, hx);
    apid_buf_printf(b, "<tr><td><a href=\"/browse/key?k=%s", hx);
    apid_browse_ns_arg(b, r, "&amp;");
    apid_buf_puts(b, "\">");
    free(hx);
    apid_key_html(b, row->k, row->kl);
    apid_buf_puts(b, "</a></td><td class=\"v\">");
    /* A preview of the first bytes; values over 4 KiB show their size only
     * (a page of 64 MiB values must not read them all). */
    char buf[4096];
    size_t vlen;
    int rc = calypso_get_buf(r->db, row->k, row->kl, buf, sizeof buf, &vlen);
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
    if (calypso_ttl(r->db, row->k, row->kl, &exp) == CALYPSO_OK && exp) {
        uint64_t now = apid_wall_ms();
        apid_buf_printf(b, "%llu s", (unsigned long long)(exp > now ? (exp - now + 999) / 1000 : 0));
    }
    apid_buf_puts(b, "</td></tr>\n");
}

/* A link to another page of the same prefix. */
static void apid_page_link(apid_req *r, apid_buf *b, const char *id, const char *label, const char *dir,
                           const char *p, size_t pl, const apid_key_row *row)
{
    char *hx = malloc(2 * row->kl + 1);
    if (!hx) { b->oom = 1; return; }
    apid_hex_encode(row->k, row->kl, hx);
    apid_buf_printf(b, "<a id=\"%s\" class=\"btn\" href=\"/browse?prefix=", id);
    apid_pct_encode(b, p, pl);
    apid_buf_printf(b, "&amp;%s=%s", dir, hx);
    apid_browse_ns_arg(b, r, "&amp;");
    apid_buf_printf(b, "\">%s</a> ", label);
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
    if (calypso_stats(r->db, &st) != CALYPSO_OK) return;
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

/* >> the namespace selector: "default", then every namespace depth first
 * (a child right after its parent), at most APID_NS_OPTIONS of them. */
#define APID_NS_OPTIONS 1000

typedef struct apid_ns_walk {
    calypso *db;
    apid_buf *b;
    const char *cur; size_t curl;    /* the page's namespace (NULL: default) */
    unsigned n;
} apid_ns_walk;

static int apid_ns_option(const void *name, size_t nl, void *ctx)
{
    apid_ns_walk *w = ctx;
    if (w->n++ == APID_NS_OPTIONS) return 1;
    char *hx = malloc(2 * nl + 1);
    if (!hx) { w->b->oom = 1; return 1; }
    apid_hex_encode(name, nl, hx);
    int sel = w->cur && w->curl == nl && memcmp(w->cur, name, nl) == 0;
    apid_buf_printf(w->b, "<option value=\"%s\"%s>", hx, sel ? " selected" : "");
    free(hx);
    if (apid_printable(name, nl)) apid_buf_html(w->b, name, nl);
    else apid_key_html(w->b, name, nl);
    apid_buf_puts(w->b, "</option>");
    int rc = calypso_ns_list(w->db, name, nl, apid_ns_option, w);
    return rc == CALYPSO_ENOTFOUND ? 0 : rc;    /* dropped meanwhile: skip it */
}

static void apid_ns_options(apid *s, apid_req *r, apid_buf *b)
{
    apid_ns_walk w = { s->db, b, NULL, 0, 0 };
    w.cur = apid_ns_name(r, &w.curl);
    apid_buf_printf(b, "<option value=\"\"%s>default</option>", w.cur ? "" : " selected");
    calypso_ns_list(s->db, NULL, 0, apid_ns_option, &w);
}

/* The search form's namespace field. */
static void apid_browse_ns_hidden(apid_req *r, apid_buf *b)
{
    apid_buf a = { 0 };
    apid_browse_ns_arg(&a, r, "");
    if (a.len > 4)
        apid_buf_printf(b, "<input type=\"hidden\" name=\"nsx\" value=\"%.*s\">", (int)(a.len - 4), a.p + 4);
    apid_buf_free(&a);
}

enum MHD_Result apid_route_browse(apid *s, apid_req *r)
{
    char *p = NULL, *after = NULL, *before = NULL;
    size_t pl = 0, al = 0, bl = 0;
    apid_listing l = { .n = 0 };
    enum MHD_Result res;
    if (apid_browse_ns(s, r, &res)) return res;
    if (apid_query_get(r->query, r->query_len, "prefix", &p, &pl) < 0 ||
        apid_hex_param(r, "after", &after, &al) < 0 || apid_hex_param(r, "before", &before, &bl) < 0) {
        free(p); free(after); free(before);
        return apid_page_message(s, r, 400, "Bad request", "The page address is malformed.", "");
    }
    calypso_cursor *cur;
    int rc = calypso_cursor_open(r->db, &cur);
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
        return apid_page_message(s, r, apid_status_of(rc), "Error", calypso_errmsg(r->db), "");
    }
    apid_buf rows = { 0 }, nav = { 0 }, stats = { 0 }, c = { 0 }, flash = { 0 }, form = { 0 };
    apid_buf nsopt = { 0 }, nshid = { 0 };
    apid_ns_options(s, r, &nsopt);
    apid_browse_ns_hidden(r, &nshid);
    for (size_t i = 0; i < l.n; i++) apid_list_row(r, &rows, &l.rows[i]);
    if (l.n == 0) apid_buf_puts(&rows, "<tr><td colspan=\"3\" id=\"empty\">No keys.</td></tr>");
    if (l.has_prev) apid_page_link(r, &nav, "prev", "‹ Previous", "before", p ? p : "", pl, &l.rows[0]);
    if (l.has_next && l.n) apid_page_link(r, &nav, "next", "Next ›", "after", p ? p : "", pl, &l.rows[l.n - 1]);
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
        { "ns_options", nsopt.p, nsopt.len, 1 }, { "ns_hidden", nshid.p, nshid.len, 1 },
    };
    apid_template_render(&c, "list.html", vars, sizeof vars / sizeof vars[0]);
    apid_buf_free(&rows); apid_buf_free(&nav); apid_buf_free(&stats); apid_buf_free(&flash); apid_buf_free(&form);
    apid_buf_free(&nsopt); apid_buf_free(&nshid);
    apid_listing_free(&l);
    free(p);
    return apid_page(s, r, 200, "Browse", &c);
}

