/*
 * cmd_ns.c: the namespace commands: ns list, ns create and ns drop.
 *
 * ns list opens the database read-only (beside a live writer, like the
 * other read commands); create and drop take the writer's lock, and create
 * makes a missing database, as put does. Names are checked here before
 * the database is opened, so that a bad name creates nothing and gets a
 * message that says what is wrong with it.
 */
#define _GNU_SOURCE 1
#include <string.h>

#include "cli.h"

/* The NAME argument c->args[i], checked: CLI_OK or a usage error. */
static int cli_ns_arg(cli_ctx *c, int i, const char **name, size_t *len)
{
    *name = c->args[i];
    *len = strlen(*name);
    const char *why = cli_ns_bad_name(*name, *len);
    return why ? cli_usage_error(c, "bad namespace name: %s", why) : CLI_OK;
}

/* >> list */
int cli_cmd_ns_list(cli_ctx *c)
{
    const char *parent = NULL;
    size_t plen = 0;
    calypso *db;
    cli_ns_names names = { 0 };
    int code = c->nargs > 1 ? cli_ns_arg(c, 1, &parent, &plen) : CLI_OK;
    if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_READ, &db);
    if (code != CLI_OK) return code;
    int rc = cli_ns_collect(db, parent, plen, c->recursive, &names);
    if (rc == CALYPSO_ENOTFOUND) {
        code = cli_ns_missing(c, parent, plen);
    } else if (rc != CALYPSO_OK) {
        code = cli_fail(c, db, rc, "listing the namespaces");
    } else {
        for (size_t i = 0; i < names.n && !ferror(stdout); i++) {
            cli_emit(c, stdout, names.name[i], names.len[i]);
            putchar(cli_eol(c));
        }
        code = cli_finish_output(c, CLI_OK);
    }
    cli_ns_names_free(&names);
    return cli_close(c, db, code);
}

/* >> create */
static int cli_ns_exists_error(cli_ctx *c, const char *name, size_t len)
{
    fprintf(stderr, "calypso %s: namespace '", c->cmd->name);
    cli_escape(stderr, name, len);
    fprintf(stderr, "' exists\n");
    return CLI_DBERR;
}

static int cli_ns_no_parent(cli_ctx *c, const char *name, size_t len)
{
    size_t plen = len;
    while (plen > 0 && name[plen - 1] != '/') plen--;
    fprintf(stderr, "calypso %s: no namespace '", c->cmd->name);
    cli_escape(stderr, name, plen ? plen - 1 : 0);
    fprintf(stderr, "', the parent of '");
    cli_escape(stderr, name, len);
    fprintf(stderr, "' (create it first, or use --parents)\n");
    return CLI_DBERR;
}

int cli_cmd_ns_create(cli_ctx *c)
{
    const char *name;
    size_t len;
    calypso *db, *ns;
    int code = cli_ns_arg(c, 1, &name, &len);
    if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_CREATE, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_ns_open(db, name, len, 0, &ns);
    if (rc == CALYPSO_OK) {                         /* there already */
        calypso_close(ns);
        return cli_close(c, db, c->parents ? CLI_OK : cli_ns_exists_error(c, name, len));
    }
    if (rc == CALYPSO_ENOTFOUND)
        rc = c->parents ? cli_ns_open_create(db, name, len, &ns, NULL)
                        : calypso_ns_open(db, name, len, 1, &ns);
    if (rc == CALYPSO_OK) calypso_close(ns);
    else if (rc == CALYPSO_ENOTFOUND) code = cli_ns_no_parent(c, name, len);
    else code = cli_fail(c, db, rc, "creating the namespace");
    return cli_close(c, db, code);
}

/* >> drop */
int cli_cmd_ns_drop(cli_ctx *c)
{
    const char *name;
    size_t len;
    calypso *db;
    int code = cli_ns_arg(c, 1, &name, &len);
    if (code == CLI_OK) code = cli_open(c, c->args[0], CLI_WRITE, &db);
    if (code != CLI_OK) return code;
    int rc = calypso_ns_drop(db, name, len);
    if (rc == CALYPSO_ENOTFOUND) code = cli_ns_missing(c, name, len);
    else if (rc != CALYPSO_OK) code = cli_fail(c, db, rc, "dropping the namespace");
    return cli_close(c, db, code);
}
