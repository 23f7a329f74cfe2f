/*
 * browse_key.c: GET /browse/key?k=HEX[&view=text|hex]: one key: its size,
 * the TTL that remains, the value as text (escaped) or as a hex dump with
 * an ASCII column (values that are not UTF-8 always show in hex), and the
 * forms to edit it, set or clear its TTL, and delete it (with a
 * confirmation). Read-only: the forms POST to browse_edit.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "browse.h"

#define APID_SHOW_MAX  (64u << 10) /* value bytes shown on the key page */

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
    enum MHD_Result res;
    if (apid_browse_ns(s, r, &res)) return res;
    if (apid_hex_param(r, "k", &k, &kl) != 1)
        return apid_page_message(s, r, 400, "Bad request", "k must be the key in hex.", "");
    void *v;
    size_t vlen;
    uint64_t exp = 0;
    int rc = calypso_get(r->db, k, kl, &v, &vlen);
    if (rc == CALYPSO_OK) rc = calypso_ttl(r->db, k, kl, &exp);
    apid_buf back = { 0 };
    apid_buf_puts(&back, "/browse");
    apid_browse_ns_arg(&back, r, "?");
    if (rc != CALYPSO_OK) {
        free(k);
        calypso_free(v);
        apid_buf link = { 0 };
        apid_buf_printf(&link, "<p><a href=\"%s\">Back to the list</a></p>", back.p ? back.p : "/browse");
        res = apid_page_message(s, r, apid_status_of(rc), "Not found",
                                rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED ? "No such key (it may have expired)." : calypso_strerror(rc),
                                link.p ? link.p : "");
        apid_buf_free(&link);
        apid_buf_free(&back);
        return res;
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
    apid_buf_printf(&c, "<p><a id=\"all-keys\" href=\"%s\">‹ All keys</a></p><h1 id=\"key\">",
                    back.p ? back.p : "/browse");
    apid_buf_free(&back);
    apid_key_html(&c, k, kl);
    char *hx = malloc(2 * kl + 1);
    if (hx) apid_hex_encode(k, kl, hx);
    apid_buf_printf(&c, "</h1><p class=\"meta\"><span id=\"size\">%zu bytes</span> · <span id=\"ttl-left\">", vlen);
    uint64_t now = apid_wall_ms();
    if (exp) apid_buf_printf(&c, "expires in %llu s", (unsigned long long)(exp > now ? (exp - now + 999) / 1000 : 0));
    else apid_buf_puts(&c, "no TTL");
    apid_buf_printf(&c, "</span> · view as <a id=\"view-text\" href=\"/browse/key?k=%s&amp;view=text", hx ? hx : "");
    apid_browse_ns_arg(&c, r, "&amp;");
    apid_buf_printf(&c, "\">text</a> | <a id=\"view-hex\" href=\"/browse/key?k=%s&amp;view=hex", hx ? hx : "");
    apid_browse_ns_arg(&c, r, "&amp;");
    apid_buf_puts(&c, "\">hex</a></p>");
    free(hx);
    if (hex || text) apid_key_value_view(&c, v, vlen, hex);
    apid_key_forms(s, r, &c, k, kl, v, vlen, text);
    calypso_free(v);
    free(k);
    return apid_page(s, r, 200, "Key", &c);
}

