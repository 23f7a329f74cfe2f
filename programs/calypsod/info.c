/*
 * info.c: INFO and CONFIG. INFO answers Redis's sections (server, clients,
 * memory, persistence, stats, replication, keyspace) with the fields
 * clients parse (ioredis's ready check waits while `loading:1`, redis-py
 * splits `key:value` lines under `# Section` headers), plus calypso's own
 * figures prefixed calypso_. CONFIG GET knows the parameters clients and
 * tools read; CONFIG SET changes the few that can change at run time.
 */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "calypsod.h"
#include "commands.h"

int cd_srv_merge_running(void);

static void cd_info_add(cd_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void cd_info_add(cd_buf *b, const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (k < 0) return;
    if (k >= (int)sizeof line) k = (int)sizeof line - 1;
    cd_buf_append(b, line, (size_t)k);
    cd_buf_append(b, "\r\n", 2);
}

static const char *cd_info_sync_name(void)
{
    return cd_srv.sync_mode == CALYPSO_SYNC_ALWAYS ? "always"
         : cd_srv.sync_mode == CALYPSO_SYNC_INTERVAL ? "everysec" : "no";
}

static long cd_info_rss(void)
{
    long pages = 0, rss = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
        fclose(f);
    }
    return rss * sysconf(_SC_PAGESIZE);
}

static void cd_info_human(char *out, size_t n, double v)
{
    const char *u = "B";
    if (v >= 1024.0 * 1024 * 1024) { v /= 1024.0 * 1024 * 1024; u = "G"; }
    else if (v >= 1024.0 * 1024) { v /= 1024.0 * 1024; u = "M"; }
    else if (v >= 1024.0) { v /= 1024.0; u = "K"; }
    snprintf(out, n, "%.2f%s", v, u);
}

struct cd_info_expires { calypso *h; uint64_t n; };

static int cd_info_count_expires(const void *k, size_t klen, void *ctx)
{
    struct cd_info_expires *e = ctx;
    uint64_t at;
    if (calypso_ttl(e->h, k, klen, &at) == CALYPSO_OK && at) e->n++;
    return 0;
}

/* One "dbN:keys=...,expires=...,avg_ttl=0" line per database with keys.
 * The engine keeps no count of keys with a TTL: counted here by one walk
 * of the database's keys (about 0.3 s per million keys), done again only
 * when the last count is over 10 s old or the number of keys changed, so
 * that clients that send INFO on connect (ioredis) do not each stall the
 * loop. */
static void cd_info_keyspace(cd_buf *b, int64_t now)
{
    for (int i = 0; i < cd_srv.databases; i++) {
        cd_db *d = &cd_srv.dbs[i];
        uint64_t n = d->h ? calypso_len(d->h) : 0;
        if (!n) continue;
        if (d->counted_ms == 0 || now - d->counted_ms > 10000 || d->counted_keys != n) {
            struct cd_info_expires e = { d->h, 0 };
            calypso_fold(d->h, cd_info_count_expires, &e);
            d->expires = e.n;
            d->counted_ms = now;
            d->counted_keys = n;
        }
        cd_info_add(b, "db%d:keys=%llu,expires=%llu,avg_ttl=0", i, (unsigned long long)n,
                    (unsigned long long)(d->expires < n ? d->expires : n));
    }
}

static void cd_info_section(cd_buf *b, const char *s)
{
    int64_t now = cd_now_ms();
    if (!strcmp(s, "server")) {
        struct utsname u;
        uname(&u);
        char exe[512] = "";
        ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (k > 0) exe[k] = '\0';
        cd_info_add(b, "# Server");
        cd_info_add(b, "redis_version:%s", CD_REDIS_VERSION);
        cd_info_add(b, "redis_git_sha1:00000000");
        cd_info_add(b, "redis_git_dirty:0");
        cd_info_add(b, "redis_mode:standalone");
        cd_info_add(b, "calypsod_version:%s", CALYPSOD_VERSION);
        cd_info_add(b, "calypso_version:%s", calypso_version());
        cd_info_add(b, "os:%s %s %s", u.sysname, u.release, u.machine);
        cd_info_add(b, "arch_bits:%d", (int)(sizeof(void *) * 8));
        cd_info_add(b, "multiplexing_api:epoll");
        cd_info_add(b, "process_id:%d", (int)getpid());
        cd_info_add(b, "process_supervised:no");
        cd_info_add(b, "tcp_port:%d", cd_srv.port);
        cd_info_add(b, "server_time_usec:%lld", (long long)now * 1000);
        cd_info_add(b, "uptime_in_seconds:%lld", (long long)(now - cd_srv.start_ms) / 1000);
        cd_info_add(b, "uptime_in_days:%lld", (long long)(now - cd_srv.start_ms) / 86400000);
        cd_info_add(b, "hz:10");
        cd_info_add(b, "executable:%s", exe);
        cd_info_add(b, "config_file:");
        cd_info_add(b, "io_threads_active:0");
    } else if (!strcmp(s, "clients")) {
        cd_info_add(b, "# Clients");
        cd_info_add(b, "connected_clients:%ld", cd_srv.nclients);
        cd_info_add(b, "cluster_connections:0");
        cd_info_add(b, "maxclients:%ld", cd_srv.maxclients);
        cd_info_add(b, "blocked_clients:0");
        cd_info_add(b, "tracking_clients:0");
        cd_info_add(b, "clients_in_timeout_table:0");
    } else if (!strcmp(s, "memory")) {
        struct mallinfo2 mi = mallinfo2();
        struct calypso_stats st = { 0 };
        /* a namespace handle's keydir_bytes is its namespace's own */
        uint64_t keydir = 0;
        for (int i = 0; i < cd_srv.databases; i++) {
            if (!cd_srv.dbs[i].h || calypso_stats(cd_srv.dbs[i].h, &st) != CALYPSO_OK) continue;
            keydir += st.keydir_bytes;
        }
        char h1[32], h2[32];
        long rss = cd_info_rss();
        cd_info_human(h1, sizeof h1, (double)mi.uordblks);
        cd_info_human(h2, sizeof h2, (double)rss);
        cd_info_add(b, "# Memory");
        cd_info_add(b, "used_memory:%zu", mi.uordblks);
        cd_info_add(b, "used_memory_human:%s", h1);
        cd_info_add(b, "used_memory_rss:%ld", rss);
        cd_info_add(b, "used_memory_rss_human:%s", h2);
        cd_info_add(b, "maxmemory:0");
        cd_info_add(b, "maxmemory_human:0B");
        cd_info_add(b, "maxmemory_policy:noeviction");
        cd_info_add(b, "mem_allocator:libc");
        cd_info_add(b, "calypso_keydir_bytes:%llu", (unsigned long long)keydir);
    } else if (!strcmp(s, "persistence")) {
        struct calypso_stats st = { 0 };
        calypso_stats(cd_srv.db, &st);
        cd_info_add(b, "# Persistence");
        cd_info_add(b, "loading:0");
        cd_info_add(b, "async_loading:0");
        cd_info_add(b, "rdb_changes_since_last_save:%llu", (unsigned long long)cd_srv.dirty_since_save);
        cd_info_add(b, "rdb_bgsave_in_progress:0");
        cd_info_add(b, "rdb_last_save_time:%lld", (long long)cd_srv.last_save_s);
        cd_info_add(b, "rdb_last_bgsave_status:ok");
        cd_info_add(b, "aof_enabled:1");
        cd_info_add(b, "aof_rewrite_in_progress:%d", cd_srv_merge_running());
        cd_info_add(b, "aof_last_bgrewrite_status:ok");
        cd_info_add(b, "aof_last_write_status:ok");
        cd_info_add(b, "calypso_sync:%s", cd_info_sync_name());
        cd_info_add(b, "calypso_dbpath:%s", cd_srv.dbpath);
        cd_info_add(b, "calypso_datafiles:%u", st.datafiles);
        cd_info_add(b, "calypso_disk_bytes:%llu", (unsigned long long)st.size);
        cd_info_add(b, "calypso_reclaimable_bytes:%llu", (unsigned long long)st.reclaimable);
        cd_info_add(b, "calypso_merges:%llu", (unsigned long long)st.merges);
    } else if (!strcmp(s, "stats")) {
        cd_info_add(b, "# Stats");
        cd_info_add(b, "total_connections_received:%llu", (unsigned long long)cd_srv.stat_conns);
        cd_info_add(b, "total_commands_processed:%llu", (unsigned long long)cd_srv.stat_cmds);
        cd_info_add(b, "total_net_input_bytes:%llu", (unsigned long long)cd_srv.stat_net_in);
        cd_info_add(b, "total_net_output_bytes:%llu", (unsigned long long)cd_srv.stat_net_out);
        cd_info_add(b, "rejected_connections:%llu", (unsigned long long)cd_srv.stat_rejected);
        cd_info_add(b, "expired_keys:%llu", (unsigned long long)cd_srv.stat_expired);
        cd_info_add(b, "evicted_keys:0");
        cd_info_add(b, "keyspace_hits:%llu", (unsigned long long)cd_srv.stat_hits);
        cd_info_add(b, "keyspace_misses:%llu", (unsigned long long)cd_srv.stat_misses);
    } else if (!strcmp(s, "replication")) {
        cd_info_add(b, "# Replication");
        cd_info_add(b, "role:master");
        cd_info_add(b, "connected_slaves:0");
        cd_info_add(b, "master_repl_offset:0");
    } else if (!strcmp(s, "keyspace")) {
        cd_info_add(b, "# Keyspace");
        cd_info_keyspace(b, now);
    }
}

static const char *cd_info_default[] = {
    "server", "clients", "memory", "persistence", "stats", "replication", "keyspace",
};

void cd_info_info(cd_client *c, int argc, cd_arg *argv)
{
    cd_buf b = { 0 };
    size_t nd = sizeof cd_info_default / sizeof cd_info_default[0];
    int want[sizeof cd_info_default / sizeof cd_info_default[0]] = { 0 };
    if (argc == 1) {
        for (size_t i = 0; i < nd; i++) want[i] = 1;
    }
    for (int a = 1; a < argc; a++) {
        if (cd_arg_is(&argv[a], "all") || cd_arg_is(&argv[a], "everything") ||
            cd_arg_is(&argv[a], "default")) {
            for (size_t i = 0; i < nd; i++) want[i] = 1;
            continue;
        }
        for (size_t i = 0; i < nd; i++)
            if (cd_arg_is(&argv[a], cd_info_default[i])) want[i] = 1;
    }
    int first = 1;
    for (size_t i = 0; i < nd; i++) {
        if (!want[i]) continue;
        if (!first) cd_buf_append(&b, "\r\n", 2);
        first = 0;
        cd_info_section(&b, cd_info_default[i]);
    }
    cd_reply_verbatim(c, b.p ? b.p : "", b.len);
    cd_buf_free(&b);
}

/* >> CONFIG */
typedef struct cd_param {
    const char *name;
    int settable;
} cd_param;

static const cd_param cd_params[] = {
    { "save", 0 }, { "appendonly", 0 }, { "appendfsync", 0 }, { "databases", 0 },
    { "maxclients", 1 }, { "requirepass", 1 }, { "port", 0 }, { "bind", 0 }, { "dir", 0 },
    { "protected-mode", 1 }, { "timeout", 0 }, { "maxmemory", 0 },
    { "maxmemory-policy", 0 }, { "proto-max-bulk-len", 0 },
    { "client-query-buffer-limit", 0 }, { "client-output-buffer-limit", 0 },
    { "loglevel", 1 }, { "logfile", 0 }, { "daemonize", 0 }, { "hz", 0 },
    { "tcp-keepalive", 0 }, { "notify-keyspace-events", 0 }, { "cluster-enabled", 0 },
    { "slowlog-log-slower-than", 0 }, { "slowlog-max-len", 0 }, { "io-threads", 0 },
};

static const char *cd_loglevel_names[] = { "debug", "verbose", "notice", "warning" };

static void cd_param_value(const char *name, char *out, size_t n)
{
    out[0] = '\0';
    if (!strcmp(name, "appendonly")) snprintf(out, n, "yes");
    else if (!strcmp(name, "appendfsync")) snprintf(out, n, "%s", cd_info_sync_name());
    else if (!strcmp(name, "databases")) snprintf(out, n, "%d", cd_srv.databases);
    else if (!strcmp(name, "maxclients")) snprintf(out, n, "%ld", cd_srv.maxclients);
    else if (!strcmp(name, "requirepass")) snprintf(out, n, "%s", cd_srv.requirepass ? cd_srv.requirepass : "");
    else if (!strcmp(name, "port")) snprintf(out, n, "%d", cd_srv.port);
    else if (!strcmp(name, "bind")) snprintf(out, n, "%s", cd_srv.bind_any ? "* -::*" : cd_srv.bind_host);
    else if (!strcmp(name, "dir")) snprintf(out, n, "%s", cd_srv.dbpath);
    else if (!strcmp(name, "protected-mode")) snprintf(out, n, "%s", cd_srv.protected_mode ? "yes" : "no");
    else if (!strcmp(name, "timeout") || !strcmp(name, "maxmemory")) snprintf(out, n, "0");
    else if (!strcmp(name, "maxmemory-policy")) snprintf(out, n, "noeviction");
    else if (!strcmp(name, "proto-max-bulk-len")) snprintf(out, n, "%lld", CD_BULK_MAX);
    else if (!strcmp(name, "client-query-buffer-limit")) snprintf(out, n, "1073741824");
    else if (!strcmp(name, "client-output-buffer-limit"))
        snprintf(out, n, "normal %llu %llu 0 slave 0 0 0 pubsub 0 0 0",
                 (unsigned long long)cd_srv.output_limit, (unsigned long long)cd_srv.output_limit);
    else if (!strcmp(name, "loglevel")) snprintf(out, n, "%s", cd_loglevel_names[cd_srv.loglevel & 3]);
    else if (!strcmp(name, "logfile")) snprintf(out, n, "%s", cd_srv.logfile ? cd_srv.logfile : "");
    else if (!strcmp(name, "daemonize") || !strcmp(name, "cluster-enabled")) snprintf(out, n, "no");
    else if (!strcmp(name, "hz")) snprintf(out, n, "10");
    else if (!strcmp(name, "tcp-keepalive")) snprintf(out, n, "300");
    else if (!strcmp(name, "slowlog-log-slower-than")) snprintf(out, n, "10000");
    else if (!strcmp(name, "slowlog-max-len")) snprintf(out, n, "128");
    else if (!strcmp(name, "io-threads")) snprintf(out, n, "1");
}

static void cd_config_get(cd_client *c, int argc, cd_arg *argv)
{
    size_t np = sizeof cd_params / sizeof cd_params[0];
    int hit[sizeof cd_params / sizeof cd_params[0]] = { 0 };
    long long n = 0;
    for (int a = 2; a < argc; a++)
        for (size_t i = 0; i < np; i++)
            if (!hit[i] && cd_glob_match(argv[a].p, argv[a].len, cd_params[i].name,
                                         strlen(cd_params[i].name), 1)) {
                hit[i] = 1;
                n++;
            }
    cd_reply_map(c, n);
    for (size_t i = 0; i < np; i++) {
        if (!hit[i]) continue;
        char val[256];
        cd_param_value(cd_params[i].name, val, sizeof val);
        cd_reply_cstr(c, cd_params[i].name);
        cd_reply_cstr(c, val);
    }
}

static int cd_config_set_one(cd_client *c, const cd_arg *name, const cd_arg *val)
{
    char v[512];
    size_t vl = val->len < sizeof v - 1 ? val->len : sizeof v - 1;
    memcpy(v, val->p, vl);
    v[vl] = '\0';
    long long ll;
    if (cd_arg_is(name, "maxclients")) {
        if (!cd_str2ll(val->p, val->len, &ll) || ll < 1) goto bad;
        cd_srv.maxclients = (long)ll;
    } else if (cd_arg_is(name, "requirepass")) {
        free(cd_srv.requirepass);
        cd_srv.requirepass = vl ? strdup(v) : NULL;
    } else if (cd_arg_is(name, "loglevel")) {
        int lv = -1;
        for (int i = 0; i < 4; i++)
            if (!strcasecmp(v, cd_loglevel_names[i])) lv = i;
        if (lv < 0) goto bad;
        cd_srv.loglevel = lv;
    } else if (cd_arg_is(name, "protected-mode")) {
        if (!strcasecmp(v, "yes")) cd_srv.protected_mode = 1;
        else if (!strcasecmp(v, "no")) cd_srv.protected_mode = 0;
        else goto bad;
    } else {
        for (size_t i = 0; i < sizeof cd_params / sizeof cd_params[0]; i++)
            if (cd_arg_is(name, cd_params[i].name)) {
                cd_reply_errf(c, "CONFIG SET failed (possibly related to argument '%s') - can't set immutable config",
                              cd_params[i].name);
                return 0;
            }
        cd_reply_errf(c, "Unknown option or number of arguments for CONFIG SET - '%.*s'",
                      (int)strnlen(name->p, name->len > 128 ? 128 : name->len), name->p);
        return 0;
    }
    return 1;
bad:
    cd_reply_errf(c, "CONFIG SET failed (possibly related to argument '%.*s') - argument couldn't be parsed into an integer",
                  (int)strnlen(name->p, name->len > 128 ? 128 : name->len), name->p);
    return 0;
}

void cd_info_config(cd_client *c, int argc, cd_arg *argv)
{
    if (cd_arg_is(&argv[1], "get")) {
        if (argc < 3) { cd_reply_err(c, "wrong number of arguments for 'config|get' command"); return; }
        cd_config_get(c, argc, argv);
    } else if (cd_arg_is(&argv[1], "set")) {
        if (argc < 4 || argc % 2) { cd_reply_err(c, "wrong number of arguments for 'config|set' command"); return; }
        for (int i = 2; i < argc; i += 2)
            if (!cd_config_set_one(c, &argv[i], &argv[i + 1])) return;
        cd_reply_ok(c);
    } else if (cd_arg_is(&argv[1], "resetstat")) {
        cd_srv.stat_cmds = cd_srv.stat_conns = cd_srv.stat_rejected = 0;
        cd_srv.stat_net_in = cd_srv.stat_net_out = 0;
        cd_srv.stat_hits = cd_srv.stat_misses = cd_srv.stat_expired = 0;
        cd_reply_ok(c);
    } else if (cd_arg_is(&argv[1], "rewrite")) {
        cd_reply_err(c, "The server is running without a config file");
    } else if (cd_arg_is(&argv[1], "help")) {
        cd_reply_array(c, 4);
        cd_reply_str(c, "CONFIG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        cd_reply_str(c, "GET <pattern> [<pattern> ...]");
        cd_reply_str(c, "SET <directive> <value> [<directive> <value> ...]");
        cd_reply_str(c, "RESETSTAT");
    } else {
        cd_reply_errf(c, "unknown subcommand '%.*s'. Try CONFIG HELP.",
                      (int)strnlen(argv[1].p, argv[1].len > 128 ? 128 : argv[1].len), argv[1].p);
    }
}
