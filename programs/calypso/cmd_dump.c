/*
 * cmd_dump.c: dump (every live key, value and expiry to stdout) and load
 * (store the records of a dump), in the format of dumpfmt.h.
 *
 * A dump is a walk that reads each key's value from its callback; a key
 * deleted or expired between the walk and the read is left out. Expiries
 * are absolute (Unix milliseconds), so a dump loaded later does not give
 * its keys a longer life: load skips records that have expired since.
 * load reads its first record before opening the database, so that input
 * that is not a dump never creates one.
 *
 * Namespaces: dump without --ns writes the default namespace's records,
 * then a '# ns NAME' line and the records of each named namespace, parents
 * before children (so load can create them in that order), in one
 * section; with --ns it writes that namespace's records alone, with no
 * namespace line. load keeps a handle of the namespace the records go to;
 * with --ns NAME, the dump's default namespace is NAME and its namespace
 * N is NAME/N.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "dumpfmt.h"

/* >> dump */
typedef struct cli_dumper {
    calypso *db;          /* the namespace being walked        */
    uint64_t count;
    int      rc;          /* a calypso error met in the walk */
    int      marks;       /* write a '# ns' line per namespace */
} cli_dumper;

/* The expiry of key in Unix milliseconds, 0 for none. */
static uint64_t cli_dump_expiry(calypso *db, const void *key, size_t klen)
{
    uint64_t at = 0;
    return calypso_ttl(db, key, klen, &at) == CALYPSO_OK ? at : 0;
}

static int cli_dump_key(const void *key, size_t klen, void *ctx)
{
    cli_dumper *d = ctx;
    void *val;
    size_t vlen;
    int rc = calypso_get(d->db, key, klen, &val, &vlen);
    if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED) return 0;
    if (rc != CALYPSO_OK) { d->rc = rc; return 1; }
    cli_dump_record(stdout, key, klen, val, vlen, cli_dump_expiry(d->db, key, klen));
    calypso_free(val);
    d->count++;
    return ferror(stdout) ? 1 : 0;
}

static int cli_dump_one_ns(calypso *h, const char *name, size_t len, void *arg)
{
    cli_dumper *d = arg;
    if (name && d->marks) cli_dump_ns(stdout, name, len);
    d->db = h;
    int rc = calypso_fold(h, cli_dump_key, d);
    if (rc < 0) return rc;
    if (d->rc < 0) return d->rc;
    return ferror(stdout) ? 1 : 0;
}

int cli_cmd_dump(cli_ctx *c)
{
    cli_dumper d = { 0 };
    cli_ns_names names = { 0 };
    calypso *db;
    int code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = c->ns ? CALYPSO_OK : cli_ns_collect(db, NULL, 0, 1, &names);
    if (rc == CALYPSO_OK) {
        d.marks = names.n > 0;
        cli_dump_header(stdout, d.marks ? CLI_DUMP_VERSION_NS : CLI_DUMP_VERSION);
        rc = cli_ns_each(db, &names, cli_dump_one_ns, &d);
    }
    cli_ns_names_free(&names);
    if (rc < 0) {
        /* No trailer: load refuses the cut dump rather than half-load it. */
        code = cli_fail(c, db, rc, "dump");
    } else if (rc == 0) {
        cli_dump_trailer(stdout, d.count);
    }
    return cli_close(c, db, cli_finish_output(c, code));
}

/* >> load */
typedef struct cli_loader {
    cli_ctx        *c;
    calypso        *db;       /* the database (with --ns: that namespace)   */
    calypso        *cur;      /* where records go now: db, or a handle of a
                                 namespace named by the dump                */
    cli_dump_reader r;
    cli_progress   *progress;
    uint64_t        stored, expired, created;
} cli_loader;

/* Stores one record; a record that already expired is skipped. */
static int cli_load_record(cli_loader *l, const cli_dump_rec *rec)
{
    uint64_t now = cli_wall_ms(), ttl = 0;
    if (rec->expires_ms) {
        if (rec->expires_ms <= now) { l->expired++; return CALYPSO_OK; }
        ttl = rec->expires_ms - now;
    }
    int rc = calypso_put_ttl(l->cur, rec->key, rec->klen, rec->val, rec->vlen, ttl);
    /* The expiry must come back as dumped: the engine reads its clock a
     * little after `now` above, and a millisecond may pass in between.
     * Put again with the difference taken off until it matches. */
    for (int tries = 0; rc == CALYPSO_OK && rec->expires_ms && tries < 4; tries++) {
        uint64_t at = 0;
        if (calypso_ttl(l->cur, rec->key, rec->klen, &at) != CALYPSO_OK ||
            at <= rec->expires_ms || at - rec->expires_ms >= ttl)
            break;
        ttl -= at - rec->expires_ms;
        rc = calypso_put_ttl(l->cur, rec->key, rec->klen, rec->val, rec->vlen, ttl);
    }
    if (rc == CALYPSO_OK) l->stored++;
    return rc;
}

static int cli_load_bad_input(cli_loader *l)
{
    const char *name = l->c->nargs > 1 && strcmp(l->c->args[1], "-") != 0 ? l->c->args[1] : "stdin";
    if (l->r.io_error) {
        cli_warn(l->c, "%s: %s", name, strerror(errno));
        return CLI_IOERR;
    }
    cli_warn(l->c, "%s: line %llu: %s", name, (unsigned long long)l->r.lineno, l->r.error);
    return CLI_DBERR;
}

/* A record the engine refuses (an empty or oversized key or value) is bad
 * input, not a usage error: exit 3 whatever the code. */
static int cli_load_refused(cli_loader *l, int rc)
{
    char what[64];
    snprintf(what, sizeof what, "line %llu", (unsigned long long)l->r.lineno);
    int code = cli_fail(l->c, l->db, rc, what);
    return code == CLI_USAGE ? CLI_DBERR : code;
}

static int cli_load_bad_ns(cli_loader *l, const char *why)
{
    cli_warn(l->c, "line %llu: bad namespace name: %s", (unsigned long long)l->r.lineno, why);
    return CLI_DBERR;
}

/* Switches to the namespace a '# ns' line names (r.ns NULL: back to the
 * default one), creating it and its parents when missing. */
static int cli_load_ns(cli_loader *l)
{
    if (l->cur != l->db) calypso_close(l->cur);
    l->cur = l->db;
    if (!l->r.ns) return CLI_OK;
    char full[CALYPSO_NS_MAX_NAME + 1];
    size_t blen = l->c->ns ? strlen(l->c->ns) : 0, len = blen + (blen ? 1 : 0) + l->r.nslen;
    const char *why = cli_ns_bad_name(l->r.ns, l->r.nslen);
    if (!why && len > CALYPSO_NS_MAX_NAME)
        why = "the name under the --ns namespace is too long (at most 255 bytes)";
    if (why) return cli_load_bad_ns(l, why);
    if (blen) {
        memcpy(full, l->c->ns, blen);
        full[blen] = '/';
    }
    memcpy(full + len - l->r.nslen, l->r.ns, l->r.nslen);
    calypso *root = l->c->root ? l->c->root : l->db;
    int rc = cli_ns_open_create(root, full, len, &l->cur, &l->created);
    if (rc == CALYPSO_OK) return CLI_OK;
    l->cur = l->db;
    return cli_load_refused(l, rc);
}

/* Stores first and every record after it. Returns an exit code. */
static int cli_load_all(cli_loader *l, cli_dump_rec *first, int kind)
{
    cli_dump_rec rec = *first;
    while (kind > 0) {
        int code = CLI_OK;
        if (kind == CLI_DUMP_NS) {
            code = cli_load_ns(l);
        } else {
            int rc = cli_load_record(l, &rec);
            if (rc != CALYPSO_OK) code = cli_load_refused(l, rc);
        }
        if (code != CLI_OK) return code;
        kind = cli_dump_next(&l->r, &rec);
        cli_progress_set(l->progress, l->r.bytes);
    }
    return kind < 0 ? cli_load_bad_input(l) : CLI_OK;
}

static uint64_t cli_input_size(FILE *f)
{
    struct stat st;
    return fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
}

static int cli_load_from(cli_loader *l, FILE *in)
{
    cli_dump_rec rec;
    cli_dump_reader_init(&l->r, in);
    int first = cli_dump_next(&l->r, &rec), code = CLI_OK;
    if (first < 0) code = cli_load_bad_input(l);
    if (code == CLI_OK) code = cli_open(l->c, l->c->args[0], CLI_CREATE, &l->db);
    l->cur = l->db;
    if (code == CLI_OK && first > 0) {
        l->progress = cli_progress_start(l->c, "loading", cli_input_size(in));
        code = cli_load_all(l, &rec, first);
        cli_progress_stop(l->progress);
    }
    if (l->cur != l->db) calypso_close(l->cur);
    if (l->db) code = cli_close(l->c, l->db, code);
    cli_dump_reader_free(&l->r);
    return code;
}

int cli_cmd_load(cli_ctx *c)
{
    cli_loader l = { .c = c };
    const char *path = c->nargs > 1 ? c->args[1] : "-";
    FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!in) {
        cli_warn(c, "cannot open '%s': %s", path, strerror(errno));
        return CLI_IOERR;
    }
    int code = cli_load_from(&l, in);
    if (in != stdin) fclose(in);
    if (code == CLI_OK) {
        printf("loaded %llu records (%llu already expired, skipped)\n",
               (unsigned long long)l.stored, (unsigned long long)l.expired);
        if (l.created) printf("created %llu namespaces\n", (unsigned long long)l.created);
    }
    return cli_finish_output(c, code);
}
