/*
 * ns.c: namespace names for the calypso tool: checking a name before the
 * engine sees it (so that the message says what is wrong with it), the
 * message for a missing namespace, opening one (creating it and its
 * missing parents for load), and listing every namespace of a subtree,
 * parents before children, for ns list --recursive, dump, check and gc.
 *
 * Names are byte strings; messages quote them escaped (cli_escape), since
 * a name may hold any byte.
 */
#define _GNU_SOURCE 1
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* >> names */
const char *cli_ns_bad_name(const char *name, size_t len)
{
    if (len == 0) return "the name is empty";
    if (len > CALYPSO_NS_MAX_NAME) return "the name is too long (at most 255 bytes)";
    if (name[0] == '/' || name[len - 1] == '/' || memmem(name, len, "//", 2))
        return "the name has an empty part (a leading, trailing or doubled '/')";
    return NULL;
}

int cli_ns_missing(const cli_ctx *c, const char *name, size_t len)
{
    fprintf(stderr, "calypso %s: no namespace '", c->cmd->name);
    cli_escape(stderr, name, len);
    fprintf(stderr, "' (calypso ns create makes one)\n");
    return CLI_DBERR;
}

/* >> opening */
int cli_ns_open_create(calypso *db, const char *name, size_t len, calypso **ns, uint64_t *created)
{
    /* Parents first: calypso_ns_open creates one level, its parent must
     * exist. A namespace that exists already is simply opened. */
    for (size_t i = 1; i <= len; i++) {
        if (i < len && name[i] != '/') continue;
        calypso *h;
        int rc = calypso_ns_open(db, name, i, 0, &h);
        if (rc == CALYPSO_ENOTFOUND) {
            rc = calypso_ns_open(db, name, i, 1, &h);
            if (rc == CALYPSO_OK && created) (*created)++;
        }
        if (rc != CALYPSO_OK) return rc;
        if (i == len) { *ns = h; return CALYPSO_OK; }
        calypso_close(h);
    }
    return CALYPSO_EINVAL;      /* len == 0: refused by cli_ns_bad_name before */
}

/* >> listing */
void cli_ns_names_free(cli_ns_names *n)
{
    for (size_t i = 0; i < n->n; i++) free(n->name[i]);
    free(n->name);
    free(n->len);
    memset(n, 0, sizeof *n);
}

static int cli_ns_push(cli_ns_names *n, const void *name, size_t len)
{
    if (n->n == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 16;
        char **names = realloc(n->name, cap * sizeof *names);
        if (!names) return -1;
        n->name = names;
        size_t *lens = realloc(n->len, cap * sizeof *lens);
        if (!lens) return -1;
        n->len = lens;
        n->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, name, len);
    copy[len] = '\0';
    n->name[n->n] = copy;
    n->len[n->n++] = len;
    return 0;
}

static int cli_ns_push_cb(const void *name, size_t len, void *ctx)
{
    return cli_ns_push(ctx, name, len) == 0 ? 0 : 1;
}

/* The direct children of parent into *kids (emptied first). */
static int cli_ns_children(calypso *db, const char *parent, size_t plen, cli_ns_names *kids)
{
    memset(kids, 0, sizeof *kids);
    int rc = calypso_ns_list(db, parent, plen, cli_ns_push_cb, kids);
    if (rc == 1) rc = CALYPSO_ENOMEM;
    if (rc != CALYPSO_OK) cli_ns_names_free(kids);
    return rc;
}

/* The children are collected before recursing, since the list callback
 * cannot recurse in order: each level is a sorted list, and every name is
 * followed by its own subtree (a parent always comes before its
 * children, which is the order load needs). */
int cli_ns_collect(calypso *db, const char *parent, size_t plen, int recursive, cli_ns_names *out)
{
    cli_ns_names kids;
    int rc = cli_ns_children(db, parent, plen, &kids);
    for (size_t i = 0; rc == CALYPSO_OK && i < kids.n; i++) {
        if (cli_ns_push(out, kids.name[i], kids.len[i]) != 0) { rc = CALYPSO_ENOMEM; break; }
        if (recursive) rc = cli_ns_collect(db, kids.name[i], kids.len[i], 1, out);
    }
    cli_ns_names_free(&kids);
    return rc;
}

/* >> every namespace */
int cli_ns_each(calypso *db, const cli_ns_names *names, cli_ns_fn fn, void *arg)
{
    int rc = fn(db, NULL, 0, arg);
    for (size_t i = 0; rc == 0 && names && i < names->n; i++) {
        calypso *h;
        rc = calypso_ns_open(db, names->name[i], names->len[i], 0, &h);
        if (rc == CALYPSO_ENOTFOUND) { rc = 0; continue; }   /* dropped since listed */
        if (rc != CALYPSO_OK) break;
        rc = fn(h, names->name[i], names->len[i], arg);
        calypso_close(h);
    }
    return rc;
}
