/*
 * cmd_walk.c: keys and scan, the commands that list keys in byte order,
 * with --prefix or --range, --limit and --reverse.
 *
 * The API walks forward only (fold, scan, range). --reverse therefore
 * collects the keys, then prints them newest first; with --limit N it keeps
 * only the last N in a ring, so memory stays bounded by N. Values (scan)
 * are read with calypso_get from inside the walk callback, which the API
 * allows; a key deleted or expired between the walk and the get is
 * skipped, as a walk may or may not see keys written while it runs.
 */
#define _GNU_SOURCE 1
#include <stdlib.h>
#include <string.h>

#include "cli.h"

#define CLI_WALK_STOP 1   /* a callback's "enough": not an error */

typedef struct cli_key {
    char  *key;
    size_t klen;
} cli_key;

/* The keys kept for --reverse: a growing array, or once bound keys are
 * held (bound > 0), a ring whose oldest entry is at head. */
typedef struct cli_ring {
    cli_key *items;
    size_t   len, cap, head, bound;
} cli_ring;

typedef struct cli_walk {
    cli_ctx  *c;
    calypso  *db;
    int       values;     /* scan: print values too            */
    uint64_t  printed;
    int       rc;         /* a calypso error met in a callback */
    int       nomem;
    cli_ring  ring;
} cli_walk;

/* >> printing */
/* Prints one key (and, for scan, its value). Returns 0, or a negative
 * calypso code from the get. */
static int cli_walk_print(cli_walk *w, const void *key, size_t klen)
{
    void *val = NULL;
    size_t vlen = 0;
    if (w->values) {
        int rc = calypso_get(w->db, key, klen, &val, &vlen);
        if (rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EEXPIRED) return 0;
        if (rc != CALYPSO_OK) return rc;
    }
    cli_emit(w->c, stdout, key, klen);
    if (w->values) {
        putchar(w->c->null ? '\0' : '\t');
        cli_emit(w->c, stdout, val, vlen);
        calypso_free(val);
    }
    putchar(cli_eol(w->c));
    w->printed++;
    return 0;
}

/* >> the ring of --reverse */
static int cli_ring_push(cli_ring *r, const void *key, size_t klen)
{
    char *copy = malloc(klen ? klen : 1);
    if (!copy) return -1;
    memcpy(copy, key, klen);
    if (r->bound && r->len == r->bound) {          /* full: drop the oldest */
        free(r->items[r->head].key);
        r->items[r->head] = (cli_key){ copy, klen };
        r->head = (r->head + 1) % r->len;
        return 0;
    }
    if (r->len == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 64;
        if (r->bound && cap > r->bound) cap = r->bound;
        cli_key *items = realloc(r->items, cap * sizeof *items);
        if (!items) { free(copy); return -1; }
        r->items = items;
        r->cap = cap;
    }
    r->items[r->len++] = (cli_key){ copy, klen };
    return 0;
}

static void cli_ring_free(cli_ring *r)
{
    for (size_t i = 0; i < r->len; i++) free(r->items[i].key);
    free(r->items);
    memset(r, 0, sizeof *r);
}

/* Prints the ring newest first. Returns 0 or a calypso code. */
static int cli_ring_print(cli_walk *w)
{
    cli_ring *r = &w->ring;
    int rc = 0;
    for (size_t i = r->len; i-- > 0 && rc == 0 && !ferror(stdout);) {
        cli_key *k = &r->items[(r->head + i) % r->len];
        rc = cli_walk_print(w, k->key, k->klen);
    }
    return rc;
}

/* >> the walk */
static int cli_walk_key(const void *key, size_t klen, void *ctx)
{
    cli_walk *w = ctx;
    if (w->c->reverse) {
        if (cli_ring_push(&w->ring, key, klen) != 0) { w->nomem = 1; return CLI_WALK_STOP; }
        return 0;
    }
    int rc = cli_walk_print(w, key, klen);
    if (rc != 0) { w->rc = rc; return CLI_WALK_STOP; }
    if (ferror(stdout)) return CLI_WALK_STOP;
    return w->c->has_limit && w->printed >= w->c->limit ? CLI_WALK_STOP : 0;
}

static int cli_walk_run(cli_walk *w)
{
    cli_ctx *c = w->c;
    if (c->prefix) return calypso_scan(w->db, c->prefix, strlen(c->prefix), cli_walk_key, w);
    if (c->lo)
        return calypso_range(w->db, c->lo, strlen(c->lo), c->hi, strlen(c->hi), cli_walk_key, w);
    return calypso_fold(w->db, cli_walk_key, w);
}

static int cli_walk_cmd(cli_ctx *c, int values)
{
    if (c->lo && strcmp(c->lo, c->hi) > 0)
        return cli_usage_error(c, "--range: the first bound sorts after the second");
    cli_walk w = { .c = c, .values = values };
    w.ring.bound = c->reverse && c->has_limit ? (size_t)c->limit : 0;
    int code = cli_open(c, c->args[0], CLI_READ, &w.db);
    if (code != CLI_OK) return code;
    int rc = c->has_limit && c->limit == 0 ? 0 : cli_walk_run(&w);
    if (rc < 0) code = cli_fail(c, w.db, rc, "walking the keys");
    else if (w.rc == 0 && c->reverse && !w.nomem) w.rc = cli_ring_print(&w);
    cli_ring_free(&w.ring);
    if (w.rc < 0) code = cli_fail(c, w.db, w.rc, "reading a value");
    if (w.nomem) {
        cli_warn(c, "collecting keys for --reverse: out of memory");
        code = CLI_DBERR;
    }
    return cli_close(c, w.db, cli_finish_output(c, code));
}

int cli_cmd_keys(cli_ctx *c) { return cli_walk_cmd(c, 0); }
int cli_cmd_scan(cli_ctx *c) { return cli_walk_cmd(c, 1); }
