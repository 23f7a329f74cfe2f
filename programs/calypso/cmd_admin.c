/*
 * cmd_admin.c: the commands that look after a whole database: stats,
 * merge, gc, check and backup.
 *
 * gc and check act on every namespace, the default one first, unless
 * --ns names one; stats reports the key figures of the default namespace
 * or of --ns (the file figures are always the whole database's); merge
 * and backup act on the whole database and take no --ns.
 *
 * stats and check open the database read-only; backup does too (falling
 * back to a writable handle should the engine want one); merge and gc take
 * the writer's lock. check can only use the public API: open verifies the
 * hint files and the framing of the datafiles (CALYPSO_ECORRUPT names file
 * and offset), and calypso_get verifies the checksum of the record it
 * reads (CALYPSO_ECHECKSUM names file and offset), so reading every live
 * key verifies every record the key directory points at.
 */
#define _GNU_SOURCE 1
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* >> stats */
static void cli_stats_print(const cli_ctx *c, const struct calypso_stats *st)
{
    const struct { const char *name; uint64_t v; } f[] = {
        { "datafiles", st->datafiles }, { "keys", st->keys },
        { "size", st->size },           { "reclaimable", st->reclaimable },
        { "keydir_bytes", st->keydir_bytes }, { "merges", st->merges },
    };
    size_t n = sizeof f / sizeof f[0];
    for (size_t i = 0; i < n; i++) {
        unsigned long long v = (unsigned long long)f[i].v;
        if (c->json) printf("%s\"%s\":%llu", i ? "," : "{", f[i].name, v);
        else printf("%-13s %llu\n", f[i].name, v);
    }
    if (c->json) printf("}\n");
}

int cli_cmd_stats(cli_ctx *c)
{
    calypso *db;
    struct calypso_stats st;
    int code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_stats(db, &st);
    if (rc != CALYPSO_OK) {
        code = cli_fail(c, db, rc, "stats");
    } else {
        cli_stats_print(c, &st);
        code = cli_finish_output(c, CLI_OK);
    }
    return cli_close(c, db, code);
}

/* >> merge and gc */
int cli_cmd_merge(cli_ctx *c)
{
    calypso *db;
    struct calypso_stats before, after;
    int code = cli_open(c, c->args[0], CLI_WRITE, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_stats(db, &before);
    uint64_t t0 = cli_mono_ms();
    if (rc == CALYPSO_OK) {
        cli_progress *p = cli_progress_start(c, "merging", 0);
        rc = calypso_merge(db);
        cli_progress_stop(p);
    }
    if (rc == CALYPSO_OK) rc = calypso_stats(db, &after);
    if (rc != CALYPSO_OK) return cli_close(c, db, cli_fail(c, db, rc, "merge"));
    uint64_t freed = before.size > after.size ? before.size - after.size : 0;
    printf("merged in %.1fs: %llu bytes on disk before, %llu after, %llu reclaimed\n",
           (double)(cli_mono_ms() - t0) / 1000.0, (unsigned long long)before.size,
           (unsigned long long)after.size, (unsigned long long)freed);
    return cli_close(c, db, cli_finish_output(c, CLI_OK));
}

static int cli_gc_one(calypso *h, const char *name, size_t len, void *arg)
{
    (void)name; (void)len; (void)arg;
    return calypso_run_gc(h);
}

int cli_cmd_gc(cli_ctx *c)
{
    calypso *db;
    cli_ns_names names = { 0 };
    int code = cli_open(c, c->args[0], CLI_WRITE, &db);
    if (code != CLI_OK) return code;
    int rc = c->ns ? CALYPSO_OK : cli_ns_collect(db, NULL, 0, 1, &names);
    if (rc == CALYPSO_OK) rc = cli_ns_each(db, &names, cli_gc_one, NULL);
    cli_ns_names_free(&names);
    int64_t dead = rc == CALYPSO_OK ? calypso_reclaimable(db) : rc;
    if (dead < 0) return cli_close(c, db, cli_fail(c, db, (int)dead, "gc"));
    printf("expired keys deleted; %lld bytes reclaimable by merge\n", (long long)dead);
    return cli_close(c, db, cli_finish_output(c, CLI_OK));
}

/* >> check */
typedef struct cli_check {
    cli_ctx      *c;
    calypso      *db;             /* the handle being walked            */
    const char   *ns;             /* its namespace's name, NULL: default */
    size_t        nslen;
    cli_progress *progress;
    uint64_t      seen, ok, damaged, errors;
    int           first_error;     /* calypso code of the first non-damage error */
} cli_check;

static void cli_check_report(cli_check *k, const char *what, const void *key, size_t klen)
{
    printf("%s: ", what);
    if (k->ns) {
        printf("namespace '");
        cli_escape(stdout, k->ns, k->nslen);
        printf("' ");
    }
    printf("key '");
    cli_escape(stdout, key, klen);
    printf("': %s\n", calypso_errmsg(k->db));
}

static int cli_check_key(const void *key, size_t klen, void *ctx)
{
    cli_check *k = ctx;
    void *val;
    size_t vlen;
    int rc = calypso_get(k->db, key, klen, &val, &vlen);
    cli_progress_set(k->progress, ++k->seen);
    if (rc == CALYPSO_OK) { calypso_free(val); k->ok++; return 0; }
    if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED) return 0;   /* gone meanwhile */
    if (rc == CALYPSO_ECHECKSUM || rc == CALYPSO_ECORRUPT) {
        k->damaged++;
        cli_check_report(k, "damaged", key, klen);
        return 0;
    }
    if (!k->errors++) k->first_error = rc;
    cli_check_report(k, "error", key, klen);
    return 0;
}

static int cli_check_summary(cli_check *k, int rc)
{
    printf("checked %llu keys: %llu ok, %llu damaged, %llu unreadable\n",
           (unsigned long long)k->seen, (unsigned long long)k->ok,
           (unsigned long long)k->damaged, (unsigned long long)k->errors);
    if (rc < 0) return cli_fail(k->c, k->db, rc, "walking the keys");
    if (k->damaged) {
        cli_warn(k->c, "damage found");
        return CLI_CORRUPT;
    }
    if (k->errors) return cli_exit_code(k->first_error);
    return CLI_OK;
}

static int cli_check_ns(calypso *h, const char *name, size_t len, void *arg)
{
    cli_check *k = arg;
    k->db = h;
    k->ns = name;
    k->nslen = len;
    return calypso_fold(h, cli_check_key, k);
}

static int cli_check_count(calypso *h, const char *name, size_t len, void *arg)
{
    (void)name; (void)len;
    *(uint64_t *)arg += calypso_len(h);
    return 0;
}

int cli_cmd_check(cli_ctx *c)
{
    cli_check k = { .c = c };
    cli_ns_names names = { 0 };
    calypso *db;
    uint64_t total = 0;
    int code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = c->ns ? CALYPSO_OK : cli_ns_collect(db, NULL, 0, 1, &names);
    if (rc == CALYPSO_OK) rc = cli_ns_each(db, &names, cli_check_count, &total);
    k.progress = cli_progress_start(c, "checking", total);
    if (rc == CALYPSO_OK) rc = cli_ns_each(db, &names, cli_check_ns, &k);
    cli_progress_stop(k.progress);
    cli_ns_names_free(&names);
    k.db = db;
    code = cli_check_summary(&k, rc);
    return cli_close(c, db, cli_finish_output(c, code));
}

/* >> backup */
int cli_cmd_backup(cli_ctx *c)
{
    calypso *db;
    int code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_backup(db, c->args[1]);
    if (rc == CALYPSO_EREADONLY) {          /* the engine wants a writable handle */
        code = cli_close(c, db, CLI_OK);
        if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_WRITE, &db);
        if (code != CLI_OK) return code;
        rc = calypso_backup(db, c->args[1]);
    }
    if (rc != CALYPSO_OK) code = cli_fail(c, db, rc, "backup");
    return cli_close(c, db, code);
}
