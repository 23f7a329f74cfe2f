/*
 * main.c: the calypso command-line tool's entry point: the command table,
 * the one place where a command line is parsed (getopt_long over the
 * options the command accepts) and its arity checked, and the help and
 * version commands. Handlers get a parsed cli_ctx and never look at argv.
 *
 * A command line is `calypso COMMAND [OPTIONS] ARGS...`; options may come
 * before, between or after the arguments (GNU getopt permutes them), and
 * `--` ends them, for keys and values that begin with '-'.
 */
#define _GNU_SOURCE 1
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "dumpfmt.h"

static int cli_cmd_help(cli_ctx *c);
static int cli_cmd_version(cli_ctx *c);

#define CLI_FILTER_HELP \
    "  --prefix P    only keys that begin with P\n" \
    "  --range A B   only keys k with A <= k <= B (byte order)\n" \
    "  --limit N     at most N keys\n" \
    "  --reverse     in descending order (with --limit: the last N keys)\n" \
    "  --hex         write keys and values as hex\n" \
    "  -0, --null    end each key and value with a NUL byte (for xargs -0)\n"

#define CLI_NS_HELP \
    "  --ns NAME     in namespace NAME (default: the default namespace); it\n" \
    "                must exist: create it with `calypso ns create`\n"

/* >> the command table */
static const struct cli_cmd cli_cmds[] = {
    { "put", cli_cmd_put, 3, 3, CLI_O_TTL | CLI_O_NS,
      "put DB KEY VALUE [--ttl DURATION] [--ns NAME]",
      "store VALUE under KEY (VALUE - reads stdin)",
      "Stores VALUE under KEY, creating the database when it is missing\n"
      "(not with --ns: the namespace, and so the database, must exist).\n"
      "VALUE - reads the value from stdin (any bytes).\n\n"
      "  --ttl DURATION  expire the key after DURATION: a number and a unit,\n"
      "                  ms, s, m, h or d (10s, 5m, 1h); a bare number is seconds\n"
      CLI_NS_HELP },
    { "get", cli_cmd_get, 2, 2, CLI_O_HEX | CLI_O_NS,
      "get DB KEY [--hex] [--ns NAME]",
      "print the value of KEY",
      "Prints the value of KEY: raw bytes when stdout is a pipe or a file,\n"
      "escaped and followed by a newline when it is a terminal.\n"
      "Exit 1 when the key is absent or expired.\n\n"
      "  --hex         write the value as hex, followed by a newline\n" CLI_NS_HELP },
    { "del", cli_cmd_del, 2, 2, CLI_O_NS,
      "del DB KEY [--ns NAME]",
      "delete KEY",
      "Deletes KEY. Exit 1 when the key was not there.\n\n" CLI_NS_HELP },
    { "has", cli_cmd_has, 2, 2, CLI_O_NS,
      "has DB KEY [--ns NAME]",
      "exit 0 if KEY is live, 1 if not",
      "Prints nothing; exit 0 when KEY is present and not expired, 1 when not.\n\n"
      CLI_NS_HELP },
    { "stats", cli_cmd_stats, 1, 1, CLI_O_JSON | CLI_O_NS,
      "stats DB [--json] [--ns NAME]",
      "print figures about the database",
      "Prints datafiles, live keys, bytes on disk, reclaimable (dead) bytes,\n"
      "key directory memory and merges, one `name value` per line. keys and\n"
      "keydir_bytes are those of the default namespace, or of --ns NAME; the\n"
      "other figures are the whole database's.\n\n"
      "  --json        one JSON object instead\n" CLI_NS_HELP },
    { "keys", cli_cmd_keys, 1, 1,
      CLI_O_PREFIX | CLI_O_RANGE | CLI_O_LIMIT | CLI_O_REVERSE | CLI_O_HEX | CLI_O_NULL | CLI_O_NS,
      "keys DB [--prefix P | --range A B] [--limit N] [--reverse] [--ns NAME]",
      "list keys in byte order",
      "Prints live keys in byte order, one per line.\n\n" CLI_FILTER_HELP CLI_NS_HELP },
    { "scan", cli_cmd_scan, 1, 1,
      CLI_O_PREFIX | CLI_O_RANGE | CLI_O_LIMIT | CLI_O_REVERSE | CLI_O_HEX | CLI_O_NULL | CLI_O_NS,
      "scan DB [--prefix P | --range A B] [--limit N] [--reverse] [--ns NAME]",
      "list keys with their values",
      "Prints live keys and their values in byte order, one `KEY<TAB>VALUE`\n"
      "per line. For a lossless copy of binary data use dump.\n\n"
      CLI_FILTER_HELP CLI_NS_HELP },
    { "merge", cli_cmd_merge, 1, 1, CLI_O_QUIET,
      "merge DB [--quiet]",
      "reclaim dead bytes now",
      "Rewrites the live records of sealed datafiles and removes the old files,\n"
      "then prints the bytes on disk before and after. Shows a progress line on\n"
      "stderr when it is a terminal. Merges the whole database, every\n"
      "namespace included.\n\n"
      "  -q, --quiet   no progress line\n" },
    { "gc", cli_cmd_gc, 1, 1, CLI_O_NS,
      "gc DB [--ns NAME]",
      "delete expired keys now",
      "Deletes every expired key now, in every namespace (only in NAME with\n"
      "--ns), and prints the bytes a merge may reclaim.\n\n" CLI_NS_HELP },
    { "check", cli_cmd_check, 1, 1, CLI_O_QUIET | CLI_O_NS,
      "check DB [--quiet] [--ns NAME]",
      "verify every record's checksum",
      "Opens the database read-only (which verifies hint files and datafile\n"
      "framing) and reads every live key's record, verifying its checksum.\n"
      "Prints each damaged record with its file and offset, then a summary.\n"
      "Checks every namespace, or only NAME with --ns.\n"
      "Exit 5 when damage was found.\n\n"
      "  -q, --quiet   no progress line\n" CLI_NS_HELP },
    { "dump", cli_cmd_dump, 1, 1, CLI_O_NS,
      "dump DB [--ns NAME]",
      "write every key, value and TTL to stdout",
      "Writes every live key with its value and expiry to stdout, in the dump\n"
      "format below; `calypso load` reads it back. Without --ns: every\n"
      "namespace, the default one first, then each named one (parents before\n"
      "their children), empty ones included. With --ns NAME: the keys of NAME\n"
      "alone (not those of NAME/...), without namespace lines, so that the\n"
      "dump loads into any namespace (load --ns).\n\n"
      "  --ns NAME     only the keys of namespace NAME\n\n" CLI_DUMP_FORMAT_HELP },
    { "load", cli_cmd_load, 1, 2, CLI_O_QUIET | CLI_O_NS,
      "load DB [FILE] [--ns NAME]",
      "store the records of a dump (FILE or stdin)",
      "Reads a dump (from FILE, or stdin when FILE is missing or -) and stores\n"
      "its records, creating the database when missing (not with --ns).\n"
      "Records whose expiry has passed are skipped. Namespaces the dump names\n"
      "are created when missing, with their parents; existing keys and\n"
      "namespaces stay, a key in the dump overwrites its namesake. Stops at the\n"
      "first malformed line (exit 3); the records before it stay stored.\n\n"
      "  -q, --quiet   no progress line\n"
      "  --ns NAME     load into namespace NAME (it must exist): the records\n"
      "                outside namespace lines go to NAME, and namespace N of\n"
      "                the dump becomes NAME/N\n\n" CLI_DUMP_FORMAT_HELP },
    { "backup", cli_cmd_backup, 2, 2, 0,
      "backup DB DEST",
      "copy a point-in-time image to DEST",
      "Copies a point-in-time image of the database into DEST, which must not\n"
      "exist or be empty. The copy opens as a database of its own, every\n"
      "namespace included.\n" },
    { "ns list", cli_cmd_ns_list, 1, 2, CLI_O_RECURSE | CLI_O_HEX | CLI_O_NULL,
      "ns list DB [PARENT] [--recursive] [--hex] [-0]",
      "list namespaces",
      "Prints the names of the namespaces at the top level, or the children\n"
      "of PARENT, in byte order, one full name (a/b, not b) per line.\n"
      "Exit 3 when PARENT does not exist.\n\n"
      "  -r, --recursive  the whole subtree: each name followed by its children\n"
      "  --hex            write the names as hex\n"
      "  -0, --null       end each name with a NUL byte\n" },
    { "ns create", cli_cmd_ns_create, 2, 2, CLI_O_PARENTS,
      "ns create DB NAME [--parents]",
      "create a namespace",
      "Creates namespace NAME, creating the database when it is missing. A\n"
      "name is 1 to 255 bytes; '/' nests (a/b is a child of a) and no part\n"
      "may be empty. The parent must exist. Exit 3 when NAME exists or its\n"
      "parent does not.\n\n"
      "  -p, --parents   create missing parents too; no error if NAME exists\n" },
    { "ns drop", cli_cmd_ns_drop, 2, 2, 0,
      "ns drop DB NAME",
      "drop a namespace and everything under it",
      "Drops namespace NAME with its keys and, recursively, every namespace\n"
      "under it (NAME/...), atomically. The space is reclaimed by the next\n"
      "merge. Exit 3 when NAME does not exist.\n" },
    { "version", cli_cmd_version, 0, 0, 0,
      "version",
      "print the tool's and the library's version",
      "Prints the version of the tool and of the calypso library it uses.\n" },
    { "help", cli_cmd_help, 0, 2, 0,
      "help [COMMAND]",
      "print help",
      "Prints the list of commands, or the help of COMMAND.\n" },
};

#define CLI_NCMDS (sizeof cli_cmds / sizeof cli_cmds[0])

static const char cli_help_tail[] =
    "Every command takes --help. Options may come before or after the\n"
    "arguments; put -- before a key or value that begins with '-'.\n"
    "\n"
    "Data goes to stdout, messages to stderr. Keys and values are written raw\n"
    "when stdout is a pipe or a file and escaped (\\n, \\t, \\\\, \\xNN) when it\n"
    "is a terminal; --hex writes them as hex.\n"
    "\n"
    "get, has, stats, keys, scan, check, dump, backup and ns list open the\n"
    "database read-only, beside other readers and beside a process writing to\n"
    "it (they see it as it was when they opened it); put, del, merge, gc,\n"
    "load, ns create and ns drop take the writer's lock. Only put, load and\n"
    "ns create create a missing database.\n"
    "\n"
    "Namespaces: every key command takes --ns NAME to work in namespace NAME\n"
    "instead of the default one. No key command creates a namespace (use\n"
    "`calypso ns create`; load creates the ones its dump names).\n"
    "\n"
    "Exit codes:\n"
    "  0  success\n"
    "  1  key not found (get, has, del)\n"
    "  2  usage error\n"
    "  3  database error: missing database or namespace, bad dump input\n"
    "  4  database locked by another process (the message names its pid)\n"
    "  5  damage found: a checksum failure or a corrupt file\n"
    "  6  I/O error (database, stdin or stdout)\n";

/* >> help and version */
static const struct cli_cmd *cli_find(const char *name)
{
    for (size_t i = 0; i < CLI_NCMDS; i++)
        if (strcmp(cli_cmds[i].name, name) == 0) return &cli_cmds[i];
    return NULL;
}

static void cli_print_overview(FILE *f)
{
    fprintf(f, "usage: calypso COMMAND [OPTIONS] ARGS...\n\n"
               "Manage a calypso database (a directory) from the shell.\n\n"
               "Commands:\n");
    for (size_t i = 0; i < CLI_NCMDS; i++)
        fprintf(f, "  %-10s %s\n", cli_cmds[i].name, cli_cmds[i].summary);
    fprintf(f, "\n%s", cli_help_tail);
}

static void cli_print_cmd_help(const struct cli_cmd *cmd)
{
    printf("usage: calypso %s\n\n%s", cmd->synopsis, cmd->help);
}

/* `calypso ns` alone, `calypso ns --help` and `calypso help ns`. */
static void cli_print_ns_overview(FILE *f)
{
    fprintf(f, "usage: calypso ns list|create|drop DB [NAME]\n\n"
               "Namespaces are key spaces of their own inside a database; the key\n"
               "commands reach one with --ns NAME.\n\n");
    for (size_t i = 0; i < CLI_NCMDS; i++)
        if (strncmp(cli_cmds[i].name, "ns ", 3) == 0)
            fprintf(f, "  calypso %s\n      %s\n", cli_cmds[i].synopsis, cli_cmds[i].summary);
    fprintf(f, "\nSee calypso ns SUBCOMMAND --help.\n");
}

/* The command named by words[0] (and words[1] after "ns"); *used says how
 * many words the name took. NULL when there is no such command. */
static const struct cli_cmd *cli_find_words(char **words, int nwords, int *used)
{
    *used = 1;
    if (strcmp(words[0], "ns") != 0) return cli_find(words[0]);
    if (nwords < 2) return NULL;
    char full[64];
    if ((size_t)snprintf(full, sizeof full, "ns %s", words[1]) >= sizeof full) return NULL;
    *used = 2;
    return cli_find(full);
}

static int cli_cmd_help(cli_ctx *c)
{
    if (c->nargs == 0) {
        cli_print_overview(stdout);
        return cli_finish_output(c, CLI_OK);
    }
    int used;
    if (c->nargs == 1 && strcmp(c->args[0], "ns") == 0) {
        cli_print_ns_overview(stdout);
        return cli_finish_output(c, CLI_OK);
    }
    const struct cli_cmd *cmd = cli_find_words(c->args, c->nargs, &used);
    if (!cmd || used != c->nargs)
        return cli_usage_error(c, "unknown command '%s%s%s'", c->args[0],
                               c->nargs > 1 ? " " : "", c->nargs > 1 ? c->args[1] : "");
    cli_print_cmd_help(cmd);
    return cli_finish_output(c, CLI_OK);
}

static int cli_cmd_version(cli_ctx *c)
{
    printf("calypso %s (library %s)\n", CALYPSO_VERSION, calypso_version());
    return cli_finish_output(c, CLI_OK);
}

/* >> parsing */
enum { CLI_V_TTL = 256, CLI_V_JSON, CLI_V_PREFIX, CLI_V_RANGE, CLI_V_LIMIT,
       CLI_V_REVERSE, CLI_V_NS, CLI_V_HELP };

static const struct { unsigned bit; struct option opt; } cli_optdefs[] = {
    { CLI_O_TTL,     { "ttl",     required_argument, NULL, CLI_V_TTL } },
    { CLI_O_JSON,    { "json",    no_argument,       NULL, CLI_V_JSON } },
    { CLI_O_PREFIX,  { "prefix",  required_argument, NULL, CLI_V_PREFIX } },
    { CLI_O_RANGE,   { "range",   required_argument, NULL, CLI_V_RANGE } },
    { CLI_O_LIMIT,   { "limit",   required_argument, NULL, CLI_V_LIMIT } },
    { CLI_O_REVERSE, { "reverse", no_argument,       NULL, CLI_V_REVERSE } },
    { CLI_O_HEX,     { "hex",     no_argument,       NULL, 'x' } },
    { CLI_O_QUIET,   { "quiet",   no_argument,       NULL, 'q' } },
    { CLI_O_NULL,    { "null",    no_argument,       NULL, '0' } },
    { CLI_O_NS,      { "ns",      required_argument, NULL, CLI_V_NS } },
    { CLI_O_RECURSE, { "recursive", no_argument,     NULL, 'r' } },
    { CLI_O_PARENTS, { "parents", no_argument,       NULL, 'p' } },
};
#define CLI_NOPTDEFS (sizeof cli_optdefs / sizeof cli_optdefs[0])

/* Fills longopts (room for CLI_NOPTDEFS + 2) and shortopts (room for 16)
 * with the options cmd accepts, --help always among them. */
static void cli_build_opts(const struct cli_cmd *cmd, struct option *longopts, char *shortopts)
{
    size_t n = 0, s = 0;
    shortopts[s++] = ':';           /* report a missing argument as ':' */
    shortopts[s++] = 'h';
    for (size_t i = 0; i < CLI_NOPTDEFS; i++) {
        if (!(cmd->opts & cli_optdefs[i].bit)) continue;
        longopts[n++] = cli_optdefs[i].opt;
        if (cli_optdefs[i].opt.val < 256) shortopts[s++] = (char)cli_optdefs[i].opt.val;
    }
    longopts[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    longopts[n] = (struct option){ 0, 0, 0, 0 };
    shortopts[s] = '\0';
}

/* Applies one option getopt_long returned. --range takes its second bound
 * from the next argv element. Returns CLI_OK, or an exit code to stop
 * with (-1 meaning: --help was printed, exit 0). */
static int cli_apply_opt(cli_ctx *c, int opt, int argc, char **argv)
{
    switch (opt) {
    case 'h':           cli_print_cmd_help(c->cmd); return -1;
    case CLI_V_JSON:    c->json = 1; return CLI_OK;
    case CLI_V_REVERSE: c->reverse = 1; return CLI_OK;
    case 'x':           c->hex = 1; return CLI_OK;
    case 'q':           c->quiet = 1; return CLI_OK;
    case '0':           c->null = 1; return CLI_OK;
    case 'r':           c->recursive = 1; return CLI_OK;
    case 'p':           c->parents = 1; return CLI_OK;
    case CLI_V_PREFIX:  c->prefix = optarg; return CLI_OK;
    case CLI_V_NS: {
        const char *why = cli_ns_bad_name(optarg, strlen(optarg));
        if (why) return cli_usage_error(c, "bad --ns: %s", why);
        c->ns = optarg;
        return CLI_OK;
    }
    case CLI_V_TTL:
        if (cli_parse_duration(optarg, &c->ttl_ms) != 0)
            return cli_usage_error(c, "bad --ttl '%s' (use e.g. 10s, 5m, 1h)", optarg);
        return CLI_OK;
    case CLI_V_LIMIT:
        if (cli_parse_u64(optarg, &c->limit) != 0)
            return cli_usage_error(c, "bad --limit '%s'", optarg);
        c->has_limit = 1;
        return CLI_OK;
    case CLI_V_RANGE:
        if (optind >= argc) return cli_usage_error(c, "--range needs two bounds");
        c->lo = optarg;
        c->hi = argv[optind++];
        return CLI_OK;
    case ':':
        return cli_usage_error(c, "option '%s' needs an argument", argv[optind - 1]);
    default:
        if (optopt > 0 && optopt < 256 && argv[optind - 1][1] != '-')
            return cli_usage_error(c, "unknown option '-%c'", optopt);
        return cli_usage_error(c, "bad option '%s'", argv[optind - 1]);
    }
}

/* Parses argv (argv[0] is the command's name) into c and checks the
 * positional arity and the options that exclude each other. */
static int cli_parse(cli_ctx *c, int argc, char **argv)
{
    struct option longopts[CLI_NOPTDEFS + 2];
    char shortopts[16];
    cli_build_opts(c->cmd, longopts, shortopts);
    opterr = 0;
    optind = 1;
    int opt, rc;
    while ((opt = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1)
        if ((rc = cli_apply_opt(c, opt, argc, argv)) != CLI_OK) return rc;
    c->args = argv + optind;
    c->nargs = argc - optind;
    if (c->nargs < c->cmd->min_args || c->nargs > c->cmd->max_args)
        return cli_usage_error(c, "wrong number of arguments");
    if (c->prefix && c->lo)
        return cli_usage_error(c, "--prefix and --range exclude each other");
    return CLI_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        cli_print_overview(stderr);
        return CLI_USAGE;
    }
    const char *name = argv[1];
    int used;
    cli_ctx c = { .cmd = cli_find_words(argv + 1, argc - 1, &used), .tty = isatty(STDOUT_FILENO) };
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        cli_print_overview(stdout);
        return cli_finish_output(&c, CLI_OK);
    }
    if (strcmp(name, "--version") == 0) return cli_cmd_version(&c);
    if (strcmp(name, "ns") == 0 && !c.cmd) {
        if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
            cli_print_ns_overview(stdout);
            return cli_finish_output(&c, CLI_OK);
        }
        if (argc > 2) fprintf(stderr, "calypso ns: unknown subcommand '%s'\n", argv[2]);
        else fprintf(stderr, "calypso ns: a subcommand is needed\n");
        cli_print_ns_overview(stderr);
        return CLI_USAGE;
    }
    if (!c.cmd) {
        fprintf(stderr, "calypso: unknown command '%s' (see calypso help)\n", argv[1]);
        return CLI_USAGE;
    }
    int rc = cli_parse(&c, argc - used, argv + used);
    if (rc == -1) return cli_finish_output(&c, CLI_OK);
    if (rc != CLI_OK) return rc;
    return c.cmd->run(&c);
}
