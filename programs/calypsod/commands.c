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

/* The table is small (under 80 names): a linear scan over names compared
 * case-insensitively costs less than hashing the name. */
const cd_cmd *cd_cmd_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < cd_ncmds; i++) {
        const char *n = cd_cmds[i].name;
        if (strlen(n) == len && strncasecmp(n, name, len) == 0) return &cd_cmds[i];
    }
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

/* 1 when argv[1] is a subcommand cmd knows (or cmd has none). */
static int cd_cmd_sub_ok(cd_client *c, const cd_cmd *cmd, int argc, cd_arg *argv)
{
    if (argc < 2) return 1;
    for (size_t i = 0; i < sizeof cd_containers / sizeof cd_containers[0]; i++) {
        if (strcmp(cd_containers[i].cmd, cmd->name) != 0) continue;
        for (const char *const *s = cd_containers[i].subs; *s; s++)
            if (cd_arg_is(&argv[1], *s)) return 1;
        char msg[256];
        snprintf(msg, sizeof msg, "unknown subcommand '%.*s'. Try %s HELP.",
                 cd_cmd_cstrlen(&argv[1], 128), argv[1].p, cd_containers[i].upper);
        cd_cmd_reject(c, msg);
        return 0;
    }
    return 1;
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
    c->last_ms = cd_now_ms();
    /* Redis closes a connection that looks like an HTTP request sent to
     * it by a browser tricked into it (cross-protocol scripting). */
    if (cd_arg_is(&argv[0], "host:") || cd_arg_is(&argv[0], "post")) {
        cd_log(CD_LOG_WARNING, "Possible SECURITY ATTACK detected from %s; connection closed", c->addr);
        cd_client_kill(c);
        return;
    }
    const cd_cmd *cmd = cd_cmd_lookup(argv[0].p, argv[0].len);
    if (!cmd) {
        cd_cmd_unknown(c, argc, argv);
        return;
    }
    snprintf(c->last_cmd, sizeof c->last_cmd, "%s", cmd->name);
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
