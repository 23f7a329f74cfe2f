/*
 * cli.h: what the files of the calypso command-line tool share: the exit
 * codes, the parsed command line (cli_ctx), the command handlers that
 * main.c's table points at, and the helpers of util.c (opening a database,
 * reporting errors, printing keys and values) and progress.c.
 *
 * The tool uses the public API (calypso.h) and nothing else of the engine.
 * Every handler returns an exit code from the list below; handlers print
 * data to stdout and diagnostics to stderr, never the other way round.
 */
#ifndef CLI_H
#define CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "calypso.h"

/* Exit codes, documented in `calypso help` and the README. */
enum {
    CLI_OK       = 0,   /* success                                         */
    CLI_NOTFOUND = 1,   /* get/has/del: the key is absent or expired       */
    CLI_USAGE    = 2,   /* bad command line                                */
    CLI_DBERR    = 3,   /* database error, missing database, bad dump input */
    CLI_LOCKED   = 4,   /* another process holds the database's lock       */
    CLI_CORRUPT  = 5,   /* damaged record or file (checksum, corruption)   */
    CLI_IOERR    = 6    /* I/O error (database, stdin, stdout)             */
};

/* Options a command may accept: each command's table entry lists them as a
 * bit mask, and main.c parses only those. */
enum {
    CLI_O_TTL     = 1u << 0,   /* --ttl DURATION          */
    CLI_O_JSON    = 1u << 1,   /* --json                  */
    CLI_O_PREFIX  = 1u << 2,   /* --prefix P              */
    CLI_O_RANGE   = 1u << 3,   /* --range A B             */
    CLI_O_LIMIT   = 1u << 4,   /* --limit N               */
    CLI_O_REVERSE = 1u << 5,   /* --reverse               */
    CLI_O_HEX     = 1u << 6,   /* --hex                   */
    CLI_O_QUIET   = 1u << 7,   /* --quiet (no progress)   */
    CLI_O_NULL    = 1u << 8,   /* --null (NUL separators) */
    CLI_O_NS      = 1u << 9,   /* --ns NAME               */
    CLI_O_RECURSE = 1u << 10,  /* --recursive             */
    CLI_O_PARENTS = 1u << 11   /* --parents               */
};

struct cli_cmd;

/* One parsed command line. Strings point into argv. */
typedef struct cli_ctx {
    const struct cli_cmd *cmd;
    char   **args;            /* positional arguments, the database first */
    int      nargs;
    uint64_t ttl_ms;          /* --ttl, 0 when not given                  */
    const char *prefix;       /* --prefix, NULL when not given            */
    const char *lo, *hi;      /* --range A B, NULL when not given         */
    uint64_t limit;           /* --limit, when has_limit                  */
    int      has_limit;
    int      reverse, json, hex, quiet, null, recursive, parents;
    int      tty;             /* stdout is a terminal: escape output      */
    const char *ns;           /* --ns, NULL when not given (checked)      */
    calypso *root;            /* with --ns: the database handle that
                                 cli_open opened under the namespace one  */
} cli_ctx;

/* A command: name, handler, positional arity (min..max, the database
 * counted), accepted options, and the text of its --help. */
struct cli_cmd {
    const char *name;
    int       (*run)(cli_ctx *c);
    int         min_args, max_args;
    unsigned    opts;
    const char *synopsis;   /* after "calypso "                 */
    const char *summary;    /* one line for the command list    */
    const char *help;       /* paragraphs after the synopsis    */
};

/* >> handlers (cmd_*.c, main.c) */
int cli_cmd_put(cli_ctx *c);
int cli_cmd_get(cli_ctx *c);
int cli_cmd_del(cli_ctx *c);
int cli_cmd_has(cli_ctx *c);
int cli_cmd_keys(cli_ctx *c);
int cli_cmd_scan(cli_ctx *c);
int cli_cmd_stats(cli_ctx *c);
int cli_cmd_merge(cli_ctx *c);
int cli_cmd_gc(cli_ctx *c);
int cli_cmd_check(cli_ctx *c);
int cli_cmd_backup(cli_ctx *c);
int cli_cmd_dump(cli_ctx *c);
int cli_cmd_load(cli_ctx *c);
int cli_cmd_ns_list(cli_ctx *c);
int cli_cmd_ns_create(cli_ctx *c);
int cli_cmd_ns_drop(cli_ctx *c);

/* >> util.c */
/* How a command opens its database. */
enum cli_open_mode {
    CLI_READ,     /* read-only (shared lock); the database must exist */
    CLI_WRITE,    /* read-write; the database must exist              */
    CLI_CREATE    /* read-write; created when missing                 */
};

/* Opens the database at path; on failure prints why (naming the lock
 * holder when locked) and returns the exit code, else CLI_OK. With --ns,
 * *db is a handle of that namespace (which must exist: CLI_CREATE then
 * needs the database to exist too) and c->root the database's handle. */
int  cli_open(cli_ctx *c, const char *path, enum cli_open_mode mode, calypso **db);
/* Closes db (and c->root after it); a failing close is reported and
 * turned into an exit code. */
int  cli_close(cli_ctx *c, calypso *db, int code);
/* The exit code for a calypso return code. */
int  cli_exit_code(int rc);
/* Prints "calypso CMD: <what>: <detail>" to stderr, the detail being
 * calypso_errmsg(db) or, when that is empty, calypso_strerror(rc); returns
 * cli_exit_code(rc). */
int  cli_fail(const cli_ctx *c, calypso *db, int rc, const char *what);
/* Prints "calypso CMD: <printf text>" to stderr. */
void cli_warn(const cli_ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Prints a usage error and the command's synopsis; returns CLI_USAGE. */
int  cli_usage_error(const cli_ctx *c, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Writes bytes to f as the output mode asks: hex with --hex, escaped when
 * stdout is a terminal, raw otherwise. */
void cli_emit(const cli_ctx *c, FILE *f, const void *buf, size_t len);
/* Writes bytes with non-printables escaped (\n, \t, \\, \xNN): for
 * messages that quote a key, whatever the output mode. */
void cli_escape(FILE *f, const void *buf, size_t len);
/* The record separator of line output: '\0' with --null, else '\n'. */
int  cli_eol(const cli_ctx *c);
/* Flushes stdout; a write error (full disk, closed pipe) is reported and
 * turned into CLI_IOERR, else code is returned unchanged. */
int  cli_finish_output(const cli_ctx *c, int code);

/* Parses "10s", "5m", "1h", "2d", "250ms" or a bare number of seconds into
 * milliseconds (> 0). Returns 0 on success, -1 on a malformed value. */
int  cli_parse_duration(const char *s, uint64_t *ms);
/* Parses a decimal unsigned integer; -1 when malformed or out of range. */
int  cli_parse_u64(const char *s, uint64_t *out);
/* Reads all of f into a malloc'd buffer (*buf, *len; free() it). Returns 0,
 * or -1 with errno set. */
int  cli_read_all(FILE *f, char **buf, size_t *len);
/* Milliseconds of the monotonic clock, and of the wall clock (Unix ms). */
uint64_t cli_mono_ms(void);
uint64_t cli_wall_ms(void);

/* >> ns.c */
/* Why name is not a namespace name (empty, over 255 bytes, an empty
 * part), or NULL when it is one. */
const char *cli_ns_bad_name(const char *name, size_t len);
/* Prints "calypso CMD: no namespace 'NAME' ..." and returns CLI_DBERR. */
int  cli_ns_missing(const cli_ctx *c, const char *name, size_t len);
/* Opens namespace name into *ns, creating it and its missing parents
 * (counted into *created when not NULL). Returns a calypso code. */
int  cli_ns_open_create(calypso *db, const char *name, size_t len, calypso **ns, uint64_t *created);

/* A list of namespace names (each malloc'd, NUL-terminated too). */
typedef struct cli_ns_names {
    char  **name;
    size_t *len;
    size_t  n, cap;
} cli_ns_names;
/* Appends to out the children of parent (NULL, 0: the top level), in
 * byte order; with recursive, each followed by its whole subtree. Returns
 * a calypso code (CALYPSO_ENOTFOUND: parent missing). */
int  cli_ns_collect(calypso *db, const char *parent, size_t plen, int recursive, cli_ns_names *out);
void cli_ns_names_free(cli_ns_names *n);
/* Runs fn on db (name NULL: db's own namespace), then on a handle of each
 * namespace of names (NULL: none) that still exists, until fn returns
 * non-zero. Returns that value, or a calypso code from opening one. */
typedef int (*cli_ns_fn)(calypso *h, const char *name, size_t len, void *arg);
int  cli_ns_each(calypso *db, const cli_ns_names *names, cli_ns_fn fn, void *arg);

/* >> progress.c */
/* A progress indicator on stderr, drawn by a thread of its own every
 * 100 ms while the work runs. Disabled (all calls no-ops) unless stderr is
 * a terminal and --quiet was not given. total == 0: indeterminate (a
 * bouncing bar with the elapsed time); else a bar of done/total. */
typedef struct cli_progress cli_progress;
cli_progress *cli_progress_start(const cli_ctx *c, const char *label, uint64_t total);
/* Sets the amount done so far (thread-safe, cheap: call it per item). */
void cli_progress_set(cli_progress *p, uint64_t done);
/* Stops the thread, erases the line and frees p. NULL is a no-op. */
void cli_progress_stop(cli_progress *p);

#endif
