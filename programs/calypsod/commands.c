/*
 * commands.c: the command table (built from commands.h) and the one place
 * where a request is checked before it runs, in Redis's order: the name
 * (case-insensitive), the arity, authentication, MULTI's restrictions,
 * then either the MULTI queue or the handler. A request refused here
 * inside MULTI marks the transaction so that EXEC answers EXECABORT, as
 * Redis's rejectCommand does. Also the argument helpers every handler
 * uses.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "calypsod.h"
#include "commands.h"

const cd_cmd cd_cmds[] = {
#define CD_ENTRY_(name, fn, arity, flags, fk, lk, st) { #name, fn, arity, flags, fk, lk, st },
    CD_COMMANDS(CD_ENTRY_)
#undef CD_ENTRY_
};
const size_t cd_ncmds = sizeof cd_cmds / sizeof cd_cmds[0];

int64_t cd_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cd_arg_is(const cd_arg *a, const char *s)
{
    size_t n = strlen(s);
    return a->len == n && strncasecmp(a->p, s, n) == 0;
}

int cd_arg_ll(cd_client *c, const cd_arg *a, long long *v)
{
    if (cd_str2ll(a->p, a->len, v)) return 1;
    cd_reply_err(c, "value is not an integer or out of range");
    return 0;
}

/* The subcommands of the container commands: an unknown one is refused
 * before the command runs (and dooms an EXEC), as in Redis, with Redis's
 * "unknown subcommand" text. */
static const char *const cd_client_subs[] = { "id", "setname", "getname", "setinfo", "list", "info",
                                              "kill", "no-evict", "no-touch", "help", NULL };
static const char *const cd_config_subs[] = { "get", "set", "resetstat", "rewrite", "help", NULL };
static const char *const cd_command_subs[] = { "count", "info", "docs", "list", "help", NULL };
static const char *const cd_object_subs[] = { "encoding", "idletime", "refcount", "help", NULL };
static const char *const cd_function_subs[] = { "flush", "list", NULL };

static const struct {
    const char *cmd, *upper;
    const char *const *subs;
} cd_containers[] = {
    { "client", "CLIENT", cd_client_subs }, { "config", "CONFIG", cd_config_subs },
    { "command", "COMMAND", cd_command_subs }, { "object", "OBJECT", cd_object_subs },
    { "function", "FUNCTION", cd_function_subs },
};

/* The name index: an open-addressing table of the command table's
 * entries hashed on the lowercased name, built on first use. A request's
 * name is hashed once and compared once (a linear scan compared it with
 * every name before its own: most of a GET's dispatch). */
#define CD_CMD_SLOTS    512  /* a power of two, over four times the commands */
#define CD_CMD_NAME_MAX 32   /* no command name is longer */

static uint16_t cd_cmd_slots[CD_CMD_SLOTS]; /* entry index + 1; 0: empty */
static int cd_cmd_indexed;
/* each command's entry in cd_containers, -1 for a command without subcommands */
static signed char cd_cmd_container[sizeof cd_cmds / sizeof cd_cmds[0]];

static uint32_t cd_cmd_hash(const char *p, size_t len)
{
    uint32_t h = 2166136261u;
    /* | 0x20 folds A-Z onto a-z; it also folds some other bytes together,
     * which the comparison then tells apart */
    for (size_t i = 0; i < len; i++) h = (h ^ (uint32_t)((unsigned char)p[i] | 0x20)) * 16777619u;
    return h;
}

static void cd_cmd_index(void)
{
    for (size_t i = 0; i < cd_ncmds; i++) {
        const char *n = cd_cmds[i].name;
        uint32_t at = cd_cmd_hash(n, strlen(n)) & (CD_CMD_SLOTS - 1);
        while (cd_cmd_slots[at]) at = (at + 1) & (CD_CMD_SLOTS - 1);
        cd_cmd_slots[at] = (uint16_t)(i + 1);
        cd_cmd_container[i] = -1;
        for (size_t k = 0; k < sizeof cd_containers / sizeof cd_containers[0]; k++)
            if (!strcmp(cd_containers[k].cmd, n)) cd_cmd_container[i] = (signed char)k;
    }
    cd_cmd_indexed = 1;
}

/* name[0..len) equals the lowercase table name n, ignoring case. */
static int cd_cmd_name_eq(const char *n, const char *name, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)name[i];
        if (ch >= 'A' && ch <= 'Z') ch = (unsigned char)(ch + ('a' - 'A'));
        if (n[i] == '\0' || (unsigned char)n[i] != ch) return 0;
    }
    return n[len] == '\0';
}

const cd_cmd *cd_cmd_lookup(const char *name, size_t len)
{
    if (len == 0 || len > CD_CMD_NAME_MAX) return NULL;
    if (!cd_cmd_indexed) cd_cmd_index();
    uint32_t at = cd_cmd_hash(name, len) & (CD_CMD_SLOTS - 1);
    for (uint16_t e; (e = cd_cmd_slots[at]) != 0; at = (at + 1) & (CD_CMD_SLOTS - 1))
        if (cd_cmd_name_eq(cd_cmds[e - 1].name, name, len)) return &cd_cmds[e - 1];
    return NULL;
}

/* A refusal before the command runs: inside MULTI it dooms the EXEC. */
static void cd_cmd_reject(cd_client *c, const char *msg)
{
    cd_reply_err(c, msg);
    cd_multi_flag_error(c);
}

/* `%.*s` of an argument as Redis's printf of a C string: up to its first
 * NUL byte and at most max bytes. */
static int cd_cmd_cstrlen(const cd_arg *a, size_t max)
{
    size_t n = 0;
    while (n < a->len && n < max && a->p[n] != '\0') n++;
    return (int)n;
}

static void cd_cmd_unknown(cd_client *c, int argc, cd_arg *argv)
{
    char args[512];
    size_t n = 0;
    args[0] = '\0';
    for (int i = 1; i < argc && n < 128; i++) {
        int k = snprintf(args + n, sizeof args - n, "'%.*s' ",
                         cd_cmd_cstrlen(&argv[i], 128 - n), argv[i].p);
        if (k > 0) n += (size_t)k;
    }
    char msg[800];
    snprintf(msg, sizeof msg, "unknown command '%.*s', with args beginning with: %s",
             cd_cmd_cstrlen(&argv[0], 128), argv[0].p, args);
    cd_cmd_reject(c, msg);
}

/* 1 when argv[1] is a subcommand cmd knows (or cmd has none). */
static int cd_cmd_sub_ok(cd_client *c, const cd_cmd *cmd, int argc, cd_arg *argv)
{
    int k = cd_cmd_container[cmd - cd_cmds];
    if (argc < 2 || k < 0) return 1;
    for (const char *const *s = cd_containers[k].subs; *s; s++)
        if (cd_arg_is(&argv[1], *s)) return 1;
    char msg[256];
    snprintf(msg, sizeof msg, "unknown subcommand '%.*s'. Try %s HELP.",
             cd_cmd_cstrlen(&argv[1], 128), argv[1].p, cd_containers[k].upper);
    cd_cmd_reject(c, msg);
    return 0;
}

void cd_cmd_call(cd_client *c, const cd_cmd *cmd, int argc, cd_arg *argv)
{
    cd_srv.stat_cmds++;
    if (cd_db_use(c->db) != CALYPSO_OK) {
        cd_reply_errf(c, "cannot switch to database %d", c->db);
        return;
    }
    cmd->fn(c, argc, argv);
}

void cd_cmd_dispatch(cd_client *c, int argc, cd_arg *argv)
{
    if (argc == 0) return;
    c->last_ms = cd_srv.round_ms;
    const cd_cmd *cmd = cd_cmd_lookup(argv[0].p, argv[0].len);
    if (!cmd) {
        /* Redis closes a connection that looks like an HTTP request sent
         * to it by a browser tricked into it (cross-protocol scripting);
         * neither name is a command, so only a failed lookup checks. */
        if (cd_arg_is(&argv[0], "host:") || cd_arg_is(&argv[0], "post")) {
            cd_log(CD_LOG_WARNING, "Possible SECURITY ATTACK detected from %s; connection closed",
                   c->addr);
            cd_client_kill(c);
            return;
        }
        cd_cmd_unknown(c, argc, argv);
        return;
    }
    c->last_cmd = cmd->name;
    if ((cmd->arity > 0 && argc != cmd->arity) || argc < -cmd->arity) {
        char msg[128];
        snprintf(msg, sizeof msg, "wrong number of arguments for '%s' command", cmd->name);
        cd_cmd_reject(c, msg);
        return;
    }
    if (!cd_cmd_sub_ok(c, cmd, argc, argv)) return;
    if (cd_srv.requirepass && !c->authed && !(cmd->flags & CD_CMD_NOAUTH)) {
        cd_cmd_reject(c, "-NOAUTH Authentication required.");
        return;
    }
    if (c->in_multi && (cmd->flags & CD_CMD_NOMULTI)) {
        cd_cmd_reject(c, "Command not allowed inside a transaction");
        return;
    }
    if (c->in_multi && !(cmd->flags & CD_CMD_NOQUEUE)) {
        cd_multi_queue(c, cmd, argc, argv);
        return;
    }
    cd_cmd_call(c, cmd, argc, argv);
}
