/*
 * browse.h: what the dashboard's files share: browse_page.c's frame, CSRF
 * token, form fields and key display, used by the pages (browse.c, the
 * list; browse_key.c, one key) and the forms that change data
 * (browse_edit.c).
 */
#ifndef APID_BROWSE_H
#define APID_BROWSE_H

#include "apid.h"

#define APID_CSRF_LEN 32          /* hex characters of a CSRF token */

/* The request's CSRF token (cookie apid_csrf) into tok, or a new one; *fresh
 * is 1 when it is new and must be sent with Set-Cookie. */
void apid_csrf_token(apid_req *r, char tok[APID_CSRF_LEN + 1], int *fresh);
/* 1 when a POST carries the cookie's token in its csrf field and does not
 * come from another site. */
int  apid_csrf_ok(apid_req *r);
/* A form field, decoded; 1 found, 0 absent, -1 malformed. free() *val. */
int  apid_form(apid_req *r, const char *name, char **val, size_t *len);
/* Wraps content in layout.html and replies (with CSP and no-store). */
enum MHD_Result apid_page(apid *s, apid_req *r, unsigned status, const char *title,
                          apid_buf *content);
/* A page with one message (errors, confirmations). html is trusted markup. */
enum MHD_Result apid_page_message(apid *s, apid_req *r, unsigned status, const char *title,
                                  const char *text, const char *html);
/* 303 See Other to a location (a path apid built). */
enum MHD_Result apid_redirect(apid_req *r, const char *location);
/* Shows a key: escaped text when it is printable UTF-8, else hex. */
void apid_key_html(apid_buf *b, const void *k, size_t kl);
/* 1 when the bytes are UTF-8 without control characters. */
int  apid_printable(const void *p, size_t n);
/* Appends the flash message ?msg= names (a fixed text per code). */
void apid_flash(apid_req *r, apid_buf *b);
/* Reads ?name= as hex into a malloc'd key: 1 found, 0 absent, -1 bad. */
int  apid_hex_param(apid_req *r, const char *name, char **k, size_t *kl);
/* The dashboard's namespace: nsx=HEX (binary-safe, as keys are) from the
 * query of a GET or the form of a POST; absent is the default namespace.
 * 0 with r->db set, else an error page is queued into *res. */
int  apid_browse_ns(apid *s, apid_req *r, enum MHD_Result *res);
/* Appends sep and "nsx=HEX" when r's namespace is not the default one
 * (sep: "&amp;" in markup, "&" in a Location, "?" first). */
void apid_browse_ns_arg(apid_buf *b, apid_req *r, const char *sep);
/* The hidden form fields every POST form carries (the namespace too). */
void apid_form_hidden(apid_buf *b, apid_req *r, const void *k, size_t kl);

#endif
