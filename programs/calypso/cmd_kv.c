/*
 * cmd_kv.c: the commands on one key: put, get, del and has.
 *
 * get and has open the database read-only; put creates it when missing;
 * del needs it to exist. put reads a value given as '-' from stdin before
 * opening the database, so that the writer's lock is not held while a
 * slow producer writes to the pipe.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The KEY argument, c->args[1]; an empty key is a usage error (found here,
 * before a database is opened or created for nothing). */
static int cli_key_arg(cli_ctx *c, const char **key, size_t *klen)
{
    *key = c->args[1];
    *klen = strlen(*key);
    return *klen ? CLI_OK : cli_usage_error(c, "the key is empty");
}

static int cli_not_found(cli_ctx *c, const char *key, size_t klen, int rc)
{
    fprintf(stderr, "calypso %s: ", c->cmd->name);
    cli_escape(stderr, key, klen);
    fprintf(stderr, ": %s\n", calypso_strerror(rc));
    return CLI_NOTFOUND;
}

int cli_cmd_put(cli_ctx *c)
{
    const char *key, *val = c->args[2];
    size_t klen, vlen = strlen(val);
    char *in = NULL;
    int code = cli_key_arg(c, &key, &klen);
    if (code != CLI_OK) return code;
    if (strcmp(val, "-") == 0) {
        if (cli_read_all(stdin, &in, &vlen) != 0) {
            cli_warn(c, "reading the value from stdin: %s", strerror(errno));
            return CLI_IOERR;
        }
        val = in;
    }
    calypso *db;
    code = cli_open(c, c->args[0], CLI_CREATE, &db);
    if (code == CLI_OK) {
        int rc = calypso_put_ttl(db, key, klen, val, vlen, c->ttl_ms);
        if (rc != CALYPSO_OK) code = cli_fail(c, db, rc, "put");
        code = cli_close(c, db, code);
    }
    free(in);
    return code;
}

int cli_cmd_get(cli_ctx *c)
{
    const char *key;
    size_t klen, vlen;
    void *val;
    calypso *db;
    int code = cli_key_arg(c, &key, &klen);
    if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_get(db, key, klen, &val, &vlen);
    if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED) {
        code = cli_not_found(c, key, klen, rc);
    } else if (rc != CALYPSO_OK) {
        code = cli_fail(c, db, rc, "get");
    } else {
        cli_emit(c, stdout, val, vlen);
        if (c->tty || c->hex) putchar('\n');
        calypso_free(val);
        code = cli_finish_output(c, CLI_OK);
    }
    return cli_close(c, db, code);
}

int cli_cmd_del(cli_ctx *c)
{
    const char *key;
    size_t klen;
    calypso *db;
    int code = cli_key_arg(c, &key, &klen);
    if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_WRITE, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_has(db, key, klen);
    if (rc == 0) code = cli_not_found(c, key, klen, CALYPSO_ENOTFOUND);
    else if (rc < 0) code = cli_fail(c, db, rc, "del");
    else if ((rc = calypso_delete(db, key, klen)) != CALYPSO_OK) code = cli_fail(c, db, rc, "del");
    return cli_close(c, db, code);
}

int cli_cmd_has(cli_ctx *c)
{
    const char *key;
    size_t klen;
    calypso *db;
    int code = cli_key_arg(c, &key, &klen);
    if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_has(db, key, klen);
    if (rc < 0) code = cli_fail(c, db, rc, "has");
    else code = rc ? CLI_OK : CLI_NOTFOUND;
    return cli_close(c, db, code);
}
