/*
 * util.c: the helpers every calypso command shares: opening a database the
 * way the command needs it (read-only commands never create one), turning
 * calypso return codes into exit codes and messages, writing keys and
 * values to stdout in the right mode (raw, escaped for a terminal, hex),
 * and parsing durations and numbers from the command line.
 *
 * Messages always go to stderr and start with "calypso COMMAND: "; only
 * data goes to stdout.
 */
#define _GNU_SOURCE 1
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "cli.h"

/* >> messages and exit codes */
static const char *cli_name(const cli_ctx *c)
{
    return c && c->cmd ? c->cmd->name : NULL;
}

static void cli_vwarn(const cli_ctx *c, const char *fmt, va_list ap)
{
    const char *name = cli_name(c);
    if (name) fprintf(stderr, "calypso %s: ", name);
    else fputs("calypso: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

void cli_warn(const cli_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vwarn(c, fmt, ap);
    va_end(ap);
}

int cli_usage_error(const cli_ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vwarn(c, fmt, ap);
    va_end(ap);
    if (c && c->cmd)
        fprintf(stderr, "usage: calypso %s\n(see calypso %s --help)\n",
                c->cmd->synopsis, c->cmd->name);
    return CLI_USAGE;
}

int cli_exit_code(int rc)
{
    switch (rc) {
    case CALYPSO_OK:             return CLI_OK;
    case CALYPSO_ENOTFOUND:
    case CALYPSO_EEXPIRED:       return CLI_NOTFOUND;
    case CALYPSO_EEMPTYKEY:
    case CALYPSO_EKEYTOOLARGE:
    case CALYPSO_EVALUETOOLARGE:
    case CALYPSO_EINVALIDRANGE:  return CLI_USAGE;
    case CALYPSO_ELOCKED:        return CLI_LOCKED;
    case CALYPSO_ECHECKSUM:
    case CALYPSO_ECORRUPT:       return CLI_CORRUPT;
    case CALYPSO_EIO:            return CLI_IOERR;
    default:                     return CLI_DBERR;
    }
}

int cli_fail(const cli_ctx *c, calypso *db, int rc, const char *what)
{
    const char *detail = calypso_errmsg(db);
    if (!detail || !*detail) detail = calypso_strerror(rc);
    cli_warn(c, "%s: %s", what, detail);
    return cli_exit_code(rc);
}

/* >> opening and closing */
/* A read-only command must not create a database, and calypso_open with
 * read_only set needs the directory anyway: say plainly that it is missing. */
static int cli_check_exists(const cli_ctx *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT) {
            cli_warn(c, "no database at '%s'", path);
            return CLI_DBERR;
        }
        cli_warn(c, "cannot open database '%s': %s", path, strerror(errno));
        return CLI_IOERR;
    }
    if (!S_ISDIR(st.st_mode)) {
        cli_warn(c, "'%s' is not a database (not a directory)", path);
        return CLI_DBERR;
    }
    return CLI_OK;
}

/* With --ns: the namespace must exist; a missing one is its own message,
 * and the database handle is kept in c->root for cli_close. */
static int cli_open_ns(cli_ctx *c, calypso *root, calypso **db)
{
    int rc = calypso_ns_open(root, c->ns, strlen(c->ns), 0, db);
    int code = CLI_OK;
    if (rc == CALYPSO_ENOTFOUND) code = cli_ns_missing(c, c->ns, strlen(c->ns));
    else if (rc != CALYPSO_OK) code = cli_fail(c, root, rc, "opening the namespace");
    if (code != CLI_OK) {
        *db = NULL;
        calypso_close(root);
        return code;
    }
    c->root = root;
    return CLI_OK;
}

int cli_open(cli_ctx *c, const char *path, enum cli_open_mode mode, calypso **db)
{
    *db = NULL;
    /* Namespaces are never created by a key command, so a database that
     * would need one is not worth creating either. */
    if (c->ns && mode == CLI_CREATE) mode = CLI_WRITE;
    if (mode != CLI_CREATE) {
        int code = cli_check_exists(c, path);
        if (code != CLI_OK) return code;
    }
    calypso_options o;
    calypso_options_default(&o);
    o.read_only = mode == CLI_READ;
    o.merge_trigger_ratio = -1;   /* a short-lived process: merge only on `merge` */
    calypso *root;
    int rc = calypso_open(path, &o, &root);
    if (rc == CALYPSO_OK) {
        if (c->ns) return cli_open_ns(c, root, db);
        *db = root;
        return CLI_OK;
    }
    const char *detail = calypso_errmsg(NULL);
    if (!detail || !*detail) detail = calypso_strerror(rc);
    if (rc == CALYPSO_ELOCKED)
        cli_warn(c, "database '%s' is locked by another process: %s", path, detail);
    else
        cli_warn(c, "cannot open database '%s': %s", path, detail);
    return cli_exit_code(rc);
}

int cli_close(cli_ctx *c, calypso *db, int code)
{
    /* A namespace handle goes first: the database handle refuses to close
     * while one of its namespace handles is open. */
    int rc = calypso_close(db);
    if (c->root && c->root != db) {
        int rc2 = calypso_close(c->root);
        if (rc == CALYPSO_OK) rc = rc2;
    }
    c->root = NULL;
    if (rc != CALYPSO_OK) {
        cli_warn(c, "closing the database: %s", calypso_strerror(rc));
        if (code == CLI_OK) code = cli_exit_code(rc);
    }
    return code;
}

/* >> output */
void cli_escape(FILE *f, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        unsigned char b = p[i];
        switch (b) {
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\t': fputs("\\t", f); break;
        case '\r': fputs("\\r", f); break;
        default:
            if (b >= 0x20 && b < 0x7f) fputc(b, f);
            else fprintf(f, "\\x%02x", b);
        }
    }
}

static void cli_hex(FILE *f, const void *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *p = buf;
    for (size_t i = 0; i < len; i++) {
        fputc(digits[p[i] >> 4], f);
        fputc(digits[p[i] & 15], f);
    }
}

void cli_emit(const cli_ctx *c, FILE *f, const void *buf, size_t len)
{
    if (c->hex) cli_hex(f, buf, len);
    else if (c->tty) cli_escape(f, buf, len);
    else if (len) fwrite(buf, 1, len, f);
}

int cli_eol(const cli_ctx *c)
{
    return c->null ? '\0' : '\n';
}

int cli_finish_output(const cli_ctx *c, int code)
{
    if (fflush(stdout) != 0 || ferror(stdout)) {
        cli_warn(c, "writing to stdout: %s", strerror(errno));
        return code == CLI_OK ? CLI_IOERR : code;
    }
    return code;
}

/* >> parsing */
int cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cli_parse_duration(const char *s, uint64_t *ms)
{
    static const struct { const char *unit; uint64_t ms; } units[] = {
        { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "m", 60000 },
        { "h", 3600000 }, { "d", 86400000 },
    };
    if (!s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    char *end;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno || n == 0) return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0) continue;
        if (n > UINT64_MAX / units[i].ms) return -1;
        *ms = n * units[i].ms;
        return 0;
    }
    return -1;
}

int cli_read_all(FILE *f, char **buf, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap);
    if (!p) return -1;
    for (;;) {
        n += fread(p + n, 1, cap - n, f);
        if (n < cap) break;
        char *q = cap <= SIZE_MAX / 2 ? realloc(p, cap * 2) : NULL;
        if (!q) { free(p); errno = ENOMEM; return -1; }
        p = q;
        cap *= 2;
    }
    if (ferror(f)) { int e = errno; free(p); errno = e ? e : EIO; return -1; }
    *buf = p;
    *len = n;
    return 0;
}

/* >> clocks */
static uint64_t cli_clock_ms(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cli_mono_ms(void) { return cli_clock_ms(CLOCK_MONOTONIC); }
uint64_t cli_wall_ms(void) { return cli_clock_ms(CLOCK_REALTIME); }
