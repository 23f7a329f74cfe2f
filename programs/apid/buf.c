/*
 * buf.c: apid_buf, the growable byte buffer responses are built in, and
 * HTML escaping, the one place the dashboard turns data into markup.
 *
 * A failed allocation sets oom and makes every later append a no-op, so
 * builders append freely and the reply code checks oom once (500).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apid.h"

static int apid_buf_grow(apid_buf *b, size_t more)
{
    if (b->oom) return -1;
    if (b->len + more + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) { b->oom = 1; return -1; }
    b->p = p;
    b->cap = cap;
    return 0;
}

void apid_buf_put(apid_buf *b, const void *p, size_t n)
{
    if (apid_buf_grow(b, n)) return;
    memcpy(b->p + b->len, p, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void apid_buf_puts(apid_buf *b, const char *s) { apid_buf_put(b, s, strlen(s)); }

void apid_buf_printf(apid_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || apid_buf_grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

/* Control bytes become numeric references too: a NUL or ESC in a key must
 * not reach the page raw. Bytes >= 0x80 pass through (the page is UTF-8;
 * callers show non-UTF-8 data as hex instead). */
void apid_buf_html(apid_buf *b, const void *p, size_t n)
{
    const unsigned char *s = p;
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        const char *rep = NULL;
        char num[16];
        switch (c) {
        case '&': rep = "&amp;"; break;
        case '<': rep = "&lt;"; break;
        case '>': rep = "&gt;"; break;
        case '"': rep = "&quot;"; break;
        case '\'': rep = "&#39;"; break;
        default:
            if ((c < 0x20 && c != '\t' && c != '\n' && c != '\r') || c == 0x7f) {
                snprintf(num, sizeof num, "&#%u;", c ? c : 0xFFFDu);
                rep = num;
            }
        }
        if (!rep) continue;
        apid_buf_put(b, s + run, i - run);
        apid_buf_puts(b, rep);
        run = i + 1;
    }
    apid_buf_put(b, s + run, n - run);
}

void apid_buf_free(apid_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
