/*
 * dumpfmt.c: writing and reading the dump format (grammar in dumpfmt.h).
 *
 * Why percent-escaping rather than base64: text keys and values, the common
 * case, stay readable and greppable in a dump, while every byte that could
 * break the line structure (space, tab, CR, LF, NUL) or be mangled by a
 * text tool (bytes >= 0x7f) is escaped. '#' is escaped too, so that a line
 * starting with '#' is never a record. Decoding is done in place: an
 * escaped field is never shorter than the bytes it stands for.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dumpfmt.h"

#define CLI_DUMP_MAGIC "# calypso-dump "
#define CLI_DUMP_END   "# end "
#define CLI_DUMP_NSTAG "# ns "

/* >> writing */
static int cli_dump_plain(unsigned char b)
{
    return b > 0x20 && b < 0x7f && b != '%' && b != '#';
}

static void cli_dump_field(FILE *f, const void *buf, size_t len)
{
    static const char digits[] = "0123456789ABCDEF";
    const unsigned char *p = buf;
    if (len == 0) { putc('-', f); return; }
    if (len == 1 && p[0] == '-') { fputs("%2D", f); return; }
    for (size_t i = 0; i < len; i++) {
        if (cli_dump_plain(p[i])) { putc(p[i], f); continue; }
        putc('%', f);
        putc(digits[p[i] >> 4], f);
        putc(digits[p[i] & 15], f);
    }
}

void cli_dump_header(FILE *f, int version)
{
    fprintf(f, CLI_DUMP_MAGIC "%d\n", version);
}

void cli_dump_ns(FILE *f, const void *name, size_t len)
{
    fputs(CLI_DUMP_NSTAG, f);
    cli_dump_field(f, name, name ? len : 0);
    putc('\n', f);
}

void cli_dump_record(FILE *f, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t expires_ms)
{
    cli_dump_field(f, key, klen);
    putc(' ', f);
    cli_dump_field(f, val, vlen);
    fprintf(f, " %llu\n", (unsigned long long)expires_ms);
}

void cli_dump_trailer(FILE *f, uint64_t count)
{
    fprintf(f, CLI_DUMP_END "%llu\n", (unsigned long long)count);
}

/* >> reading */
void cli_dump_reader_init(cli_dump_reader *r, FILE *f)
{
    memset(r, 0, sizeof *r);
    r->f = f;
}

void cli_dump_reader_free(cli_dump_reader *r)
{
    free(r->line);
    r->line = NULL;
}

static int cli_dump_hexval(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* Decodes the field at s (NUL-terminated) in place; -1 on a bad escape. */
static int cli_dump_decode(char *s, size_t *len)
{
    if (strcmp(s, "-") == 0) { *len = 0; return 0; }
    char *out = s;
    for (const char *in = s; *in; in++) {
        if (*in != '%') { *out++ = *in; continue; }
        int hi = cli_dump_hexval(in[1]), lo = hi < 0 ? -1 : cli_dump_hexval(in[2]);
        if (hi < 0 || lo < 0) return -1;
        *out++ = (char)(hi << 4 | lo);
        in += 2;
    }
    *len = (size_t)(out - s);
    return 0;
}

static int cli_dump_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

static int cli_dump_bad(cli_dump_reader *r, const char *why)
{
    r->error = why;
    return -1;
}

/* A '# ns NAME' line of a version 2 section: one field, decoded in place. */
static int cli_dump_nsline(cli_dump_reader *r, char *line)
{
    char *name = line + strlen(CLI_DUMP_NSTAG);
    size_t len;
    if (*name == '\0' || strpbrk(name, " \t"))
        return cli_dump_bad(r, "a '# ns' line needs one NAME (escaped like a key)");
    if (cli_dump_decode(name, &len) != 0) return cli_dump_bad(r, "bad %XX escape in the namespace name");
    r->ns = len ? name : NULL;
    r->nslen = len;
    r->in_named = len != 0;
    return CLI_DUMP_NS;
}

/* A line starting with '#': a header, a trailer, a namespace line or a
 * comment. Returns 0 (go on reading), CLI_DUMP_NS or -1. */
static int cli_dump_meta(cli_dump_reader *r, char *line)
{
    size_t ml = strlen(CLI_DUMP_MAGIC), el = strlen(CLI_DUMP_END);
    if (strncmp(line, CLI_DUMP_MAGIC, ml) == 0) {
        if (r->open) return cli_dump_bad(r, "a header inside a section (missing '# end' line)");
        if (strcmp(line + ml, "1") == 0) r->version = CLI_DUMP_VERSION;
        else if (strcmp(line + ml, "2") == 0) r->version = CLI_DUMP_VERSION_NS;
        else return cli_dump_bad(r, "unsupported dump version");
        r->open = 1;
        r->in_section = 0;
        if (!r->in_named) return 0;
        r->in_named = 0;              /* a new section starts in the default namespace */
        r->ns = NULL;
        r->nslen = 0;
        return CLI_DUMP_NS;
    }
    /* In a version 1 section a '# ns' line is the comment it always was. */
    if (r->open && r->version == CLI_DUMP_VERSION_NS &&
        strncmp(line, CLI_DUMP_NSTAG, strlen(CLI_DUMP_NSTAG)) == 0)
        return cli_dump_nsline(r, line);
    if (strncmp(line, CLI_DUMP_END, el) == 0) {
        uint64_t n;
        if (!r->open) return cli_dump_bad(r, "'# end' line without a header");
        if (cli_dump_u64(line + el, &n) != 0) return cli_dump_bad(r, "bad '# end' line");
        if (n != r->in_section) return cli_dump_bad(r, "record count differs from the '# end' line: the dump was cut or edited");
        r->open = 0;
        return 0;
    }
    if (r->lineno == 1) return cli_dump_bad(r, "not a calypso dump (no '# calypso-dump' header)");
    return 0;                       /* a comment */
}

/* Splits line into exactly three whitespace-separated fields. */
static int cli_dump_split(char *line, char *field[3])
{
    int n = 0;
    char *save = NULL;
    for (char *t = strtok_r(line, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (n == 3) return -1;
        field[n++] = t;
    }
    return n == 3 ? 0 : -1;
}

static int cli_dump_parse(cli_dump_reader *r, char *line, cli_dump_rec *rec)
{
    char *field[3];
    if (!r->open) return cli_dump_bad(r, r->lineno == 1
        ? "not a calypso dump (no '# calypso-dump' header)" : "a record after the '# end' line");
    if (cli_dump_split(line, field) != 0) return cli_dump_bad(r, "a record needs 3 fields: KEY VALUE EXPIRY");
    if (cli_dump_decode(field[0], &rec->klen) != 0) return cli_dump_bad(r, "bad %XX escape in the key");
    if (cli_dump_decode(field[1], &rec->vlen) != 0) return cli_dump_bad(r, "bad %XX escape in the value");
    if (cli_dump_u64(field[2], &rec->expires_ms) != 0) return cli_dump_bad(r, "bad EXPIRY (Unix milliseconds, or 0)");
    rec->key = field[0];
    rec->val = field[1];
    r->in_section++;
    return CLI_DUMP_REC;
}

int cli_dump_next(cli_dump_reader *r, cli_dump_rec *rec)
{
    for (;;) {
        errno = 0;
        ssize_t n = getline(&r->line, &r->cap, r->f);
        if (n < 0) {
            if (ferror(r->f)) { r->io_error = 1; return cli_dump_bad(r, "cannot read the dump"); }
            if (r->lineno == 0) return cli_dump_bad(r, "empty input: not a calypso dump");
            if (r->open) return cli_dump_bad(r, "the dump ends without its '# end' line: it was cut");
            return 0;
        }
        r->lineno++;
        r->bytes += (uint64_t)n;
        while (n > 0 && (r->line[n - 1] == '\n' || r->line[n - 1] == '\r')) r->line[--n] = '\0';
        if ((size_t)n != strlen(r->line)) return cli_dump_bad(r, "a raw NUL byte in a line");
        if (r->line[0] == '#') {
            int m = cli_dump_meta(r, r->line);
            if (m != 0) return m;
            continue;
        }
        if (n == 0 && r->lineno > 1) continue;     /* blank lines are allowed */
        return cli_dump_parse(r, r->line, rec);
    }
}
