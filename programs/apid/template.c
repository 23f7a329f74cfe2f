/*
 * template.c: renders the dashboard's templates. The templates are the
 * files of programs/apid/templates/, compiled into the binary at build
 * time (mk/apid.mk generates templates_gen.c with their bytes), so apid
 * serves its pages with no file or network access.
 *
 * The syntax is two forms only: {{name}} inserts a variable HTML-escaped,
 * {{{name}}} inserts it as is, for fragments the caller built with
 * apid_buf_html. No logic lives in templates: pages are assembled in C.
 */
#include <string.h>

#include "apid.h"

/* Generated: the table of compiled-in files. */
typedef struct apid_tpl { const char *name; const unsigned char *data; size_t len; } apid_tpl;
extern const apid_tpl apid_tpls[];
extern const size_t apid_ntpls;

const unsigned char *apid_template_get(const char *name, size_t *len)
{
    for (size_t i = 0; i < apid_ntpls; i++)
        if (!strcmp(apid_tpls[i].name, name)) {
            *len = apid_tpls[i].len;
            return apid_tpls[i].data;
        }
    return NULL;
}

static const apid_var *apid_var_find(const apid_var *vars, size_t n, const char *name, size_t nl)
{
    for (size_t i = 0; i < n; i++)
        if (strlen(vars[i].name) == nl && !memcmp(vars[i].name, name, nl)) return &vars[i];
    return NULL;
}

int apid_template_render(apid_buf *b, const char *name, const apid_var *vars, size_t nvars)
{
    size_t len;
    const char *t = (const char *)apid_template_get(name, &len);
    if (!t) return -1;
    size_t i = 0;
    while (i < len) {
        const char *open = memmem(t + i, len - i, "{{", 2);
        if (!open) break;
        apid_buf_put(b, t + i, (size_t)(open - (t + i)));
        int raw = (size_t)(open - t) + 2 < len && open[2] == '{';
        const char *nm = open + (raw ? 3 : 2);
        const char *close = memmem(nm, len - (size_t)(nm - t), raw ? "}}}" : "}}", raw ? 3 : 2);
        if (!close) { i = (size_t)(open - t); break; }
        const apid_var *v = apid_var_find(vars, nvars, nm, (size_t)(close - nm));
        if (v && v->val) {
            size_t vl = v->len ? v->len : strlen(v->val);
            if (raw || v->raw) apid_buf_put(b, v->val, vl);
            else apid_buf_html(b, v->val, vl);
        }
        i = (size_t)(close - t) + (raw ? 3 : 2);
    }
    apid_buf_put(b, t + i, len - i);
    return 0;
}
