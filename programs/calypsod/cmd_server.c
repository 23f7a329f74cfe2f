/*
 * cmd_server.c: connection and server commands: PING, ECHO, QUIT, HELLO,
 * AUTH, SELECT, CLIENT, COMMAND, TIME, SAVE/BGSAVE (a sync of the
 * database), BGREWRITEAOF (a merge, on a thread of its own), LASTSAVE,
 * WAIT, SHUTDOWN, FUNCTION, RESET, with Redis 7.0's replies.
 *
 * Authentication: one password (--requirepass) for Redis's "default"
 * user; AUTH with another user name is refused with WRONGPASS. Passwords
 * are compared in constant time.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "calypsod.h"
#include "commands.h"

int cd_key_check_db(cd_client *c, const cd_arg *a);

void cd_srv_ping(cd_client *c, int argc, cd_arg *argv)
{
    if (argc > 2) {
        cd_reply_err(c, "wrong number of arguments for 'ping' command");
        return;
    }
    if (argc == 2) cd_reply_bulk(c, argv[1].p, argv[1].len);
    else cd_reply_str(c, "PONG");
}

void cd_srv_echo(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_reply_bulk(c, argv[1].p, argv[1].len);
}

void cd_srv_quit(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    cd_reply_ok(c);
    c->close_after = 1;
}

/* >> authentication */
static int cd_srv_password_ok(const cd_arg *pw)
{
    const char *want = cd_srv.requirepass;
    if (!want) return 1;
    size_t wl = strlen(want);
    unsigned char diff = (unsigned char)(wl != pw->len);
    for (size_t i = 0; i < pw->len; i++)
        diff |= (unsigned char)(pw->p[i] ^ want[i % (wl ? wl : 1)]);
    return diff == 0;
}

/* Checks user/password; 1 ok (c becomes authenticated), 0 replied WRONGPASS. */
static int cd_srv_authenticate(cd_client *c, const cd_arg *user, const cd_arg *pw)
{
    if ((user && !cd_arg_is(user, "default")) || !cd_srv_password_ok(pw)) {
        cd_log(CD_LOG_VERBOSE, "failed AUTH from %s", c->addr);
        cd_reply_err(c, "-WRONGPASS invalid username-password pair or user is disabled.");
        return 0;
    }
    c->authed = 1;
    return 1;
}

void cd_srv_auth(cd_client *c, int argc, cd_arg *argv)
{
    if (argc > 3) { cd_reply_err(c, "syntax error"); return; }
    if (argc == 2 && !cd_srv.requirepass) {
        cd_reply_err(c, "AUTH <password> called without any password configured for the "
                        "default user. Are you sure your configuration is correct?");
        return;
    }
    if (cd_srv_authenticate(c, argc == 3 ? &argv[1] : NULL, &argv[argc - 1])) cd_reply_ok(c);
}

/* Redis's validateClientName: printable ASCII without spaces. */
static int cd_srv_name_ok(cd_client *c, const cd_arg *name)
{
    for (size_t i = 0; i < name->len; i++) {
        if (name->p[i] < '!' || name->p[i] > '~') {
            cd_reply_err(c, "Client names cannot contain spaces, newlines or special characters.");
            return 0;
        }
    }
    return 1;
}

static void cd_srv_set_name(cd_client *c, const cd_arg *name)
{
    free(c->name);
    c->name = NULL;
    if (name->len == 0) return;
    c->name = malloc(name->len + 1);
    if (!c->name) return;
    memcpy(c->name, name->p, name->len);
    c->name[name->len] = '\0';
}

void cd_srv_hello(cd_client *c, int argc, cd_arg *argv)
{
    long long ver = 0;
    int j = 1;
    if (argc >= 2) {
        if (!cd_str2ll(argv[1].p, argv[1].len, &ver)) {
            cd_reply_err(c, "Protocol version is not an integer or out of range");
            return;
        }
        j = 2;
        if (ver < 2 || ver > 3) {
            cd_reply_err(c, "-NOPROTO unsupported protocol version");
            return;
        }
    }
    const cd_arg *user = NULL, *pass = NULL, *name = NULL;
    for (; j < argc; j++) {
        int more = argc - 1 - j;
        if (cd_arg_is(&argv[j], "auth") && more >= 2) {
            user = &argv[j + 1];
            pass = &argv[j + 2];
            j += 2;
        } else if (cd_arg_is(&argv[j], "setname") && more >= 1) {
            name = &argv[j + 1];
            if (!cd_srv_name_ok(c, name)) return;
            j++;
        } else {
            cd_reply_errf(c, "Syntax error in HELLO option '%.*s'",
                          (int)strnlen(argv[j].p, argv[j].len), argv[j].p);
            return;
        }
    }
    if (user && !cd_srv_authenticate(c, user, pass)) return;
    if (cd_srv.requirepass && !c->authed) {
        cd_reply_err(c, "-NOAUTH HELLO must be called with the client already authenticated, "
                        "otherwise the HELLO <proto> AUTH <user> <pass> option can be used to "
                        "authenticate the client and select the RESP protocol version at the "
                        "same time");
        return;
    }
    if (name) cd_srv_set_name(c, name);
    if (ver) c->proto = (int)ver;
    cd_reply_map(c, 7);
    cd_reply_cstr(c, "server");
    cd_reply_cstr(c, "redis");
    cd_reply_cstr(c, "version");
    cd_reply_cstr(c, CD_REDIS_VERSION);
    cd_reply_cstr(c, "proto");
    cd_reply_int(c, c->proto);
    cd_reply_cstr(c, "id");
    cd_reply_int(c, (long long)c->id);
    cd_reply_cstr(c, "mode");
    cd_reply_cstr(c, "standalone");
    cd_reply_cstr(c, "role");
    cd_reply_cstr(c, "master");
    cd_reply_cstr(c, "modules");
    cd_reply_array(c, 0);
}

void cd_srv_select(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    int idx = cd_key_check_db(c, &argv[1]);
    if (idx < 0) return;
    /* inside EXEC the commands after it run in the new database */
    int rc = cd_db_use(idx);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    c->db = idx;
    cd_reply_ok(c);
}

/* >> CLIENT */
static void cd_srv_client_info(cd_client *c, cd_client *o, cd_buf *b)
{
    char line[1024];
    int64_t now = cd_now_ms();
    int k = snprintf(line, sizeof line,
        "id=%llu addr=%s laddr=%s fd=%d name=%s age=%lld idle=%lld flags=%s db=%d "
        "sub=0 psub=0 ssub=0 multi=%d qbuf=%zu qbuf-free=%zu argv-mem=0 multi-mem=0 "
        "rbs=%zu rbp=0 obl=0 oll=0 omem=%zu tot-mem=%zu events=r%s cmd=%s user=default "
        "redir=-1 resp=%d lib-name=%s lib-ver=%s\n",
        (unsigned long long)o->id, o->addr, o->laddr, o->fd, o->name ? o->name : "",
        (long long)((now - o->ctime_ms) / 1000), (long long)((now - o->last_ms) / 1000),
        o->in_multi ? "x" : "N", o->db, o->in_multi ? (int)o->nqueue : -1,
        o->in.len - o->in_start, o->in.cap - o->in.len, o->in.cap,
        o->out.len - o->out_sent, o->in.cap + o->out.cap,
        o->want_write ? "w" : "", o == c ? "client|list" : (o->last_cmd ? o->last_cmd : "NULL"),
        o->proto, o->lib_name ? o->lib_name : "", o->lib_ver ? o->lib_ver : "");
    cd_buf_append(b, line, (size_t)(k < (int)sizeof line ? k : (int)sizeof line - 1));
}

static void cd_srv_client_kill(cd_client *c, int argc, cd_arg *argv)
{
    if (argc == 3) { /* the old form: CLIENT KILL addr:port */
        for (cd_client *o = cd_srv.clients; o; o = o->next) {
            if (!o->closed && strlen(o->addr) == argv[2].len &&
                memcmp(o->addr, argv[2].p, argv[2].len) == 0) {
                cd_reply_ok(c);
                cd_client_kill(o);
                return;
            }
        }
        cd_reply_err(c, "No such client");
        return;
    }
    long long id = -1;
    const cd_arg *addr = NULL, *laddr = NULL;
    int skipme = 1;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) { cd_reply_err(c, "syntax error"); return; }
        if (cd_arg_is(&argv[i], "id")) {
            if (!cd_str2ll(argv[i + 1].p, argv[i + 1].len, &id) || id <= 0) {
                cd_reply_err(c, "client-id should be greater than 0");
                return;
            }
        } else if (cd_arg_is(&argv[i], "addr")) {
            addr = &argv[i + 1];
        } else if (cd_arg_is(&argv[i], "laddr")) {
            laddr = &argv[i + 1];
        } else if (cd_arg_is(&argv[i], "skipme")) {
            if (cd_arg_is(&argv[i + 1], "yes")) skipme = 1;
            else if (cd_arg_is(&argv[i + 1], "no")) skipme = 0;
            else { cd_reply_err(c, "syntax error"); return; }
        } else if (cd_arg_is(&argv[i], "type") || cd_arg_is(&argv[i], "user")) {
            continue; /* every client is a normal client of the default user */
        } else {
            cd_reply_err(c, "syntax error");
            return;
        }
    }
    long long killed = 0;
    int self = 0;
    for (cd_client *o = cd_srv.clients; o; o = o->next) {
        if (o->closed) continue;
        if (id > 0 && o->id != (uint64_t)id) continue;
        if (addr && (strlen(o->addr) != addr->len || memcmp(o->addr, addr->p, addr->len))) continue;
        if (laddr && (strlen(o->laddr) != laddr->len || memcmp(o->laddr, laddr->p, laddr->len))) continue;
        if (o == c) {
            if (skipme) continue;
            self = 1;
        } else {
            cd_client_kill(o);
        }
        killed++;
    }
    cd_reply_int(c, killed);
    if (self) c->close_after = 1;
}

void cd_srv_client(cd_client *c, int argc, cd_arg *argv)
{
    const cd_arg *sub = &argv[1];
#define CD_ARITY(n, nm) do { if (argc != (n)) { \
        cd_reply_err(c, "wrong number of arguments for 'client|" nm "' command"); return; } } while (0)
    if (cd_arg_is(sub, "id")) {
        CD_ARITY(2, "id");
        cd_reply_int(c, (long long)c->id);
    } else if (cd_arg_is(sub, "setname")) {
        CD_ARITY(3, "setname");
        if (!cd_srv_name_ok(c, &argv[2])) return;
        cd_srv_set_name(c, &argv[2]);
        cd_reply_ok(c);
    } else if (cd_arg_is(sub, "getname")) {
        CD_ARITY(2, "getname");
        if (c->name) cd_reply_cstr(c, c->name);
        else cd_reply_null(c);
    } else if (cd_arg_is(sub, "setinfo")) {
        CD_ARITY(4, "setinfo");
        char **slot = cd_arg_is(&argv[2], "lib-name") ? &c->lib_name
                    : cd_arg_is(&argv[2], "lib-ver") ? &c->lib_ver : NULL;
        if (!slot) {
            cd_reply_errf(c, "Unrecognized option '%.*s'", (int)strnlen(argv[2].p, argv[2].len), argv[2].p);
            return;
        }
        if (!cd_srv_name_ok(c, &argv[3])) return;
        free(*slot);
        *slot = strndup(argv[3].p, argv[3].len);
        cd_reply_ok(c);
    } else if (cd_arg_is(sub, "list") || cd_arg_is(sub, "info")) {
        int list = cd_arg_is(sub, "list");
        if (!list) CD_ARITY(2, "info");
        cd_buf b = { 0 };
        if (list) {
            for (cd_client *o = cd_srv.clients; o; o = o->next)
                if (!o->closed) cd_srv_client_info(c, o, &b);
        } else {
            cd_srv_client_info(c, c, &b);
        }
        cd_reply_verbatim(c, b.p ? b.p : "", b.len);
        cd_buf_free(&b);
    } else if (cd_arg_is(sub, "kill")) {
        if (argc < 3) { cd_reply_err(c, "wrong number of arguments for 'client|kill' command"); return; }
        cd_srv_client_kill(c, argc, argv);
    } else if (cd_arg_is(sub, "no-evict") || cd_arg_is(sub, "no-touch")) {
        CD_ARITY(3, "no-evict");
        if (cd_arg_is(&argv[2], "on") || cd_arg_is(&argv[2], "off")) cd_reply_ok(c);
        else cd_reply_err(c, "syntax error");
    } else if (cd_arg_is(sub, "help")) {
        static const char *lines[] = {
            "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
            "GETNAME", "    Return the name of the current connection.",
            "ID", "    Return the ID of the current connection.",
            "INFO", "    Return information about the current client connection.",
            "KILL <ip:port>", "    Kill connection made from <ip:port>.",
            "KILL <option> <value> [<option> <value> [...]]",
            "    Kill connections. Options are: ID <client-id>, ADDR <ip:port>, LADDR <ip:port>, SKIPME (YES|NO).",
            "LIST", "    Return information about client connections.",
            "SETINFO <LIB-NAME|LIB-VER> <value>", "    Set client library name or version.",
            "SETNAME <name>", "    Assign the name <name> to the current connection.",
            "HELP", "    Print this help.",
        };
        size_t n = sizeof lines / sizeof lines[0];
        cd_reply_array(c, (long long)n);
        for (size_t i = 0; i < n; i++) cd_reply_str(c, lines[i]);
    } else {
        cd_reply_errf(c, "unknown subcommand '%.*s'. Try CLIENT HELP.",
                      (int)strnlen(sub->p, sub->len > 128 ? 128 : sub->len), sub->p);
    }
#undef CD_ARITY
}

/* >> COMMAND */
static void cd_srv_command_entry(cd_client *c, const cd_cmd *cmd)
{
    static const struct { int flag; const char *name; } names[] = {
        { CD_CMD_WRITE, "write" }, { CD_CMD_READONLY, "readonly" }, { CD_CMD_ADMIN, "admin" },
        { CD_CMD_NOAUTH, "no_auth" }, { CD_CMD_NOMULTI, "no_multi" }, { CD_CMD_FAST, "fast" },
    };
    int nflags = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (cmd->flags & names[i].flag) nflags++;
    cd_reply_array(c, 10);
    cd_reply_cstr(c, cmd->name);
    cd_reply_int(c, cmd->arity);
    cd_reply_set(c, nflags);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (cmd->flags & names[i].flag) cd_reply_str(c, names[i].name);
    cd_reply_int(c, cmd->first_key);
    cd_reply_int(c, cmd->last_key);
    cd_reply_int(c, cmd->key_step);
    cd_reply_set(c, 0);   /* ACL categories */
    cd_reply_set(c, 0);   /* tips */
    cd_reply_array(c, 0); /* key specs */
    cd_reply_array(c, 0); /* subcommands */
}

void cd_srv_command(cd_client *c, int argc, cd_arg *argv)
{
    if (argc == 1) {
        cd_reply_array(c, (long long)cd_ncmds);
        for (size_t i = 0; i < cd_ncmds; i++) cd_srv_command_entry(c, &cd_cmds[i]);
    } else if (cd_arg_is(&argv[1], "count") && argc == 2) {
        cd_reply_int(c, (long long)cd_ncmds);
    } else if (cd_arg_is(&argv[1], "info")) {
        if (argc == 2) {
            cd_reply_array(c, (long long)cd_ncmds);
            for (size_t i = 0; i < cd_ncmds; i++) cd_srv_command_entry(c, &cd_cmds[i]);
            return;
        }
        cd_reply_array(c, argc - 2);
        for (int i = 2; i < argc; i++) {
            const cd_cmd *cmd = cd_cmd_lookup(argv[i].p, argv[i].len);
            if (cmd) cd_srv_command_entry(c, cmd);
            else cd_reply_null(c);
        }
    } else if (cd_arg_is(&argv[1], "docs")) {
        /* redis-cli asks for DOCS to show argument hints; it accepts an
         * empty answer and then shows none. */
        cd_reply_map(c, 0);
    } else if (cd_arg_is(&argv[1], "list") && argc == 2) {
        cd_reply_array(c, (long long)cd_ncmds);
        for (size_t i = 0; i < cd_ncmds; i++) cd_reply_cstr(c, cd_cmds[i].name);
    } else if (cd_arg_is(&argv[1], "help")) {
        cd_reply_array(c, 5);
        cd_reply_str(c, "COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        cd_reply_str(c, "(no subcommand): the details of every command.");
        cd_reply_str(c, "COUNT, DOCS [<command-name> ...], INFO [<command-name> ...],");
        cd_reply_str(c, "LIST: the names of the commands.");
        cd_reply_str(c, "HELP");
    } else {
        cd_reply_errf(c, "unknown subcommand '%.*s'. Try COMMAND HELP.",
                      (int)strnlen(argv[1].p, argv[1].len > 128 ? 128 : argv[1].len), argv[1].p);
    }
}

/* >> persistence commands */
void cd_srv_time(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    struct timeval tv;
    char s[32], us[32];
    gettimeofday(&tv, NULL);
    snprintf(s, sizeof s, "%lld", (long long)tv.tv_sec);
    snprintf(us, sizeof us, "%lld", (long long)tv.tv_usec);
    cd_reply_array(c, 2);
    cd_reply_cstr(c, s);
    cd_reply_cstr(c, us);
}

/* SAVE and BGSAVE make every acknowledged write durable: the database is
 * always on disk, so a sync is what "save" means here. */
static int cd_srv_do_save(cd_client *c)
{
    int rc = calypso_sync(cd_srv.db);
    if (rc < 0) { cd_reply_engine_err(c, rc); return 0; }
    cd_srv.last_save_s = cd_now_ms() / 1000;
    cd_srv.dirty_since_save = 0;
    return 1;
}

void cd_srv_save(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    if (cd_srv_do_save(c)) cd_reply_ok(c);
}

void cd_srv_bgsave(cd_client *c, int argc, cd_arg *argv)
{
    if (argc > 2 || (argc == 2 && !cd_arg_is(&argv[1], "schedule"))) {
        cd_reply_err(c, "syntax error");
        return;
    }
    if (cd_srv_do_save(c)) cd_reply_str(c, "Background saving started");
}

void cd_srv_lastsave(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    cd_reply_int(c, cd_srv.last_save_s);
}

/* BGREWRITEAOF: the log compaction of a Bitcask is its merge; it runs on
 * a thread of its own so that the loop keeps serving. */
static volatile int cd_srv_merging;

static void *cd_srv_merge_thread(void *arg)
{
    (void)arg;
    int rc = calypso_merge(cd_srv.db);
    if (rc < 0 && rc != CALYPSO_EMERGING)
        cd_log(CD_LOG_WARNING, "merge failed: %s", calypso_strerror(rc));
    else
        cd_log(CD_LOG_NOTICE, "merge (BGREWRITEAOF) finished");
    __atomic_store_n(&cd_srv_merging, 0, __ATOMIC_RELEASE);
    return NULL;
}

int cd_srv_merge_running(void);
int cd_srv_merge_running(void) { return __atomic_load_n(&cd_srv_merging, __ATOMIC_ACQUIRE); }

void cd_srv_bgrewriteaof(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    if (cd_srv_merge_running()) {
        cd_reply_err(c, "Background append only file rewriting already in progress");
        return;
    }
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    __atomic_store_n(&cd_srv_merging, 1, __ATOMIC_RELEASE);
    if (pthread_create(&t, &attr, cd_srv_merge_thread, NULL) != 0) {
        __atomic_store_n(&cd_srv_merging, 0, __ATOMIC_RELEASE);
        cd_reply_err(c, "could not start the merge thread");
    } else {
        cd_reply_str(c, "Background append only file rewriting started");
    }
    pthread_attr_destroy(&attr);
}

void cd_srv_wait(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    long long n, timeout;
    if (!cd_arg_ll(c, &argv[1], &n) || !cd_arg_ll(c, &argv[2], &timeout)) return;
    if (timeout < 0) { cd_reply_err(c, "timeout is negative"); return; }
    cd_reply_int(c, 0); /* no replicas */
}

void cd_srv_shutdown(cd_client *c, int argc, cd_arg *argv)
{
    for (int i = 1; i < argc; i++) {
        if (cd_arg_is(&argv[i], "abort")) {
            cd_reply_err(c, "No shutdown in progress.");
            return;
        }
        if (!cd_arg_is(&argv[i], "nosave") && !cd_arg_is(&argv[i], "save") &&
            !cd_arg_is(&argv[i], "now") && !cd_arg_is(&argv[i], "force")) {
            cd_reply_err(c, "syntax error");
            return;
        }
    }
    cd_log(CD_LOG_WARNING, "User requested shutdown...");
    cd_srv.shutdown = 1;
    cd_client_kill(c); /* Redis closes the connection without a reply */
}

void cd_srv_function(cd_client *c, int argc, cd_arg *argv)
{
    if (cd_arg_is(&argv[1], "flush")) {
        if (argc > 3 || (argc == 3 && !cd_arg_is(&argv[2], "async") && !cd_arg_is(&argv[2], "sync"))) {
            cd_reply_err(c, "syntax error");
            return;
        }
        cd_reply_ok(c);
    } else if (cd_arg_is(&argv[1], "list")) {
        cd_reply_array(c, 0);
    } else {
        cd_reply_errf(c, "unknown subcommand '%.*s'. Try FUNCTION HELP.",
                      (int)strnlen(argv[1].p, argv[1].len > 128 ? 128 : argv[1].len), argv[1].p);
    }
}

void cd_srv_reset(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    cd_multi_reset(c);
    c->proto = 2;
    c->db = 0;
    free(c->name);
    c->name = NULL;
    c->authed = cd_srv.requirepass == NULL;
    cd_reply_str(c, "RESET");
}
