/*
 * main.c: apid's entry point: the command line, opening the database, the
 * libmicrohttpd daemon, and a clean shutdown on SIGTERM or SIGINT.
 *
 *   apid --dbpath DIR [--bind HOST:PORT] [--token T] [--read-only]
 *        [--max-value-size N] [--max-key-size N] [--max-body N]
 *        [--threads N] [--max-connections N] [--port-file F]
 *
 * Threading: libmicrohttpd's epoll loop in a pool of --threads threads
 * (default: one per core), each with its own epoll set and the listening
 * socket shared. Measured on a 2-core machine with ab -k (see the README's
 * apid section): the pool beat thread-per-connection (a thread and a stack
 * per client, context switches on every request) and a single epoll
 * thread (one core idle while the other parses HTTP).
 *
 * Signals are blocked before any thread starts, and the main thread waits
 * for them with sigwait: the handler of a signal then runs no code in
 * async-signal context, and shutdown is ordinary code (stop the daemon,
 * which finishes the requests in flight, stop the sampler, close calypso).
 */
#define _GNU_SOURCE 1
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apid.h"

static const char apid_usage[] =
    "usage: apid --dbpath DIR [options]\n"
    "\n"
    "Serves a calypso database over HTTP: CalypsoDB's GET /get/{key} and\n"
    "POST /set/{key}/{value}, a JSON API under /v1, /metrics, /healthz, and\n"
    "a dashboard at /browse.\n"
    "\n"
    "  --dbpath DIR           the database directory (created unless --read-only)\n"
    "  --bind HOST:PORT       address to listen on (default 127.0.0.1:7777;\n"
    "                         numeric, IPv6 as [::1]:7777, or localhost;\n"
    "                         port 0 picks a free port)\n"
    "  --token T              require `Authorization: Bearer T` on the API; the\n"
    "                         dashboard asks for T once and keeps it in a cookie\n"
    "  --read-only            open the database read-only (beside a writer or not)\n"
    "  --max-value-size N     largest value accepted, bytes (default 64 MiB)\n"
    "  --max-key-size N       largest key accepted, bytes (default 4096)\n"
    "  --max-body N           largest batch or form body, bytes (default 16 MiB)\n"
    "  --threads N            HTTP threads (default: the number of cores)\n"
    "  --max-connections N    concurrent connections (default 4096)\n"
    "  --port-file F          write the bound port to F once listening\n"
    "  --help, --version\n";

enum { O_DBPATH = 256, O_BIND, O_TOKEN, O_RO, O_MAXVAL, O_MAXKEY, O_MAXBODY, O_THREADS,
       O_MAXCONN, O_PORTFILE, O_HELP, O_VERSION };

static int apid_parse_u64(const char *s, uint64_t max, uint64_t *out)
{
    char *e;
    errno = 0;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno || !*s || *e || s[0] == '-' || v > max) return -1;
    *out = v;
    return 0;
}

static int apid_parse_bind(const char *arg, apid_config *c)
{
    const char *colon = strrchr(arg, ':');
    uint64_t port;
    if (!colon || apid_parse_u64(colon + 1, 65535, &port)) return -1;
    size_t hl = (size_t)(colon - arg);
    if (hl >= 2 && arg[0] == '[' && arg[hl - 1] == ']') { arg++; hl -= 2; }
    if (hl == 0 || hl >= sizeof c->host) return -1;
    memcpy(c->host, arg, hl);
    c->host[hl] = '\0';
    if (!strcmp(c->host, "localhost")) strcpy(c->host, "127.0.0.1");
    unsigned char addr[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, c->host, addr) != 1 && inet_pton(AF_INET6, c->host, addr) != 1) return -1;
    c->port = (uint16_t)port;
    return 0;
}

/* The token travels in a header and a cookie: keep it to characters both
 * carry verbatim. */
static int apid_token_ok(const char *t)
{
    if (!*t || strlen(t) > 256) return 0;
    for (; *t; t++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=", *t)) return 0;
    return 1;
}

static int apid_parse_args(int argc, char **argv, apid_config *c)
{
    static const struct option opts[] = {
        { "dbpath", 1, 0, O_DBPATH }, { "bind", 1, 0, O_BIND }, { "token", 1, 0, O_TOKEN },
        { "read-only", 0, 0, O_RO }, { "max-value-size", 1, 0, O_MAXVAL },
        { "max-key-size", 1, 0, O_MAXKEY }, { "max-body", 1, 0, O_MAXBODY },
        { "threads", 1, 0, O_THREADS }, { "max-connections", 1, 0, O_MAXCONN },
        { "port-file", 1, 0, O_PORTFILE }, { "help", 0, 0, O_HELP }, { "version", 0, 0, O_VERSION },
        { 0, 0, 0, 0 } };
    uint64_t v;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case O_DBPATH: c->dbpath = optarg; break;
        case O_BIND:
            if (apid_parse_bind(optarg, c)) { fprintf(stderr, "apid: --bind wants ADDRESS:PORT (numeric IPv4, [IPv6] or localhost), got %s\n", optarg); return 2; }
            break;
        case O_TOKEN:
            if (!apid_token_ok(optarg)) { fprintf(stderr, "apid: --token: 1..256 characters of A-Z a-z 0-9 - . _ ~ + / =\n"); return 2; }
            c->token = optarg;
            break;
        case O_RO: c->read_only = 1; break;
        case O_MAXVAL:
            if (apid_parse_u64(optarg, CALYPSO_MAX_VALUE_SIZE, &v) || !v) { fprintf(stderr, "apid: --max-value-size: 1..%llu\n", (unsigned long long)CALYPSO_MAX_VALUE_SIZE); return 2; }
            c->max_value_size = v;
            break;
        case O_MAXKEY:
            if (apid_parse_u64(optarg, CALYPSO_MAX_KEY_SIZE, &v) || !v) { fprintf(stderr, "apid: --max-key-size: 1..%u\n", CALYPSO_MAX_KEY_SIZE); return 2; }
            c->max_key_size = (uint32_t)v;
            break;
        case O_MAXBODY:
            if (apid_parse_u64(optarg, 1ull << 32, &v) || !v) { fprintf(stderr, "apid: --max-body: 1..4294967296\n"); return 2; }
            c->max_body = v;
            break;
        case O_THREADS:
            if (apid_parse_u64(optarg, 256, &v) || !v) { fprintf(stderr, "apid: --threads: 1..256\n"); return 2; }
            c->threads = (unsigned)v;
            break;
        case O_MAXCONN:
            if (apid_parse_u64(optarg, 1000000, &v) || !v) { fprintf(stderr, "apid: --max-connections: 1..1000000\n"); return 2; }
            c->max_conns = (unsigned)v;
            break;
        case O_PORTFILE: c->port_file = optarg; break;
        case O_HELP: fputs(apid_usage, stdout); exit(0);
        case O_VERSION: printf("apid %s (calypso %s, libmicrohttpd %s)\n", APID_VERSION, calypso_version(), MHD_get_version()); exit(0);
        default: fputs(apid_usage, stderr); return 2;
        }
    }
    if (optind < argc) { fprintf(stderr, "apid: unexpected argument: %s\n", argv[optind]); return 2; }
    if (!c->dbpath) { fprintf(stderr, "apid: --dbpath DIR is required\n%s", apid_usage); return 2; }
    return 0;
}

static int apid_open_db(apid *s)
{
    calypso_options o;
    calypso_options_default(&o);
    o.read_only = s->cfg.read_only;
    if (s->cfg.max_value_size) o.max_value_size = s->cfg.max_value_size;
    if (s->cfg.max_key_size) o.max_key_size = s->cfg.max_key_size;
    int rc = calypso_open(s->cfg.dbpath, &o, &s->db);
    if (rc != CALYPSO_OK) {
        fprintf(stderr, "apid: cannot open %s: %s\n", s->cfg.dbpath, calypso_errmsg(NULL));
        return -1;
    }
    s->max_value = o.max_value_size;
    s->max_key = o.max_key_size;
    return 0;
}

/* Passes raw paths and queries through: apid decodes them itself (route.c). */
static size_t apid_no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls; (void)c;
    return strlen(s);
}

static struct MHD_Daemon *apid_listen(apid *s)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO |
                     MHD_USE_ERROR_LOG;
    struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
    if (inet_pton(AF_INET, s->cfg.host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons(s->cfg.port);
    } else if (inet_pton(AF_INET6, s->cfg.host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons(s->cfg.port);
        flags |= MHD_USE_IPv6;
    } else {
        fprintf(stderr, "apid: --bind: %s is not a numeric IPv4 or IPv6 address\n", s->cfg.host);
        return NULL;
    }
    return MHD_start_daemon(flags, s->cfg.port, NULL, NULL, apid_access, s,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, s->cfg.threads,
        MHD_OPTION_CONNECTION_LIMIT, s->cfg.max_conns,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)APID_CONN_MEMORY,
        MHD_OPTION_CONNECTION_TIMEOUT, 60u,
        MHD_OPTION_LISTEN_BACKLOG_SIZE, 4096u,
        MHD_OPTION_URI_LOG_CALLBACK, apid_uri_log, s,
        MHD_OPTION_NOTIFY_COMPLETED, apid_completed, s,
        MHD_OPTION_UNESCAPE_CALLBACK, apid_no_unescape, s,
        MHD_OPTION_END);
}

static int apid_announce(apid *s, struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    unsigned port = info ? info->port : s->cfg.port;
    printf("apid %s listening on %s:%u (database %s%s)\n", APID_VERSION, s->cfg.host, port,
           s->cfg.dbpath, s->cfg.read_only ? ", read-only" : "");
    fflush(stdout);
    if (!s->cfg.port_file) return 0;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", s->cfg.port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) || rename(tmp, s->cfg.port_file)) {
        fprintf(stderr, "apid: cannot write %s\n", s->cfg.port_file);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static apid s;
    strcpy(s.cfg.host, "127.0.0.1");
    s.cfg.port = 7777;
    s.cfg.max_body = APID_DEFAULT_MAX_BODY;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    s.cfg.threads = ncpu > 0 && ncpu < 64 ? (unsigned)ncpu : 2;
    s.cfg.max_conns = 4096;
    int rc = apid_parse_args(argc, argv, &s.cfg);
    if (rc) return rc;

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (apid_open_db(&s)) return 1;
    s.started_ms = apid_wall_ms();
    struct MHD_Daemon *d = apid_listen(&s);
    if (!d) {
        fprintf(stderr, "apid: cannot listen on %s:%u\n", s.cfg.host, s.cfg.port);
        calypso_close(s.db);
        return 1;
    }
    if (apid_history_start(&s) || apid_announce(&s, d)) {
        MHD_stop_daemon(d);
        apid_history_stop();
        calypso_close(s.db);
        return 1;
    }
    int sig;
    sigwait(&sigs, &sig);
    MHD_stop_daemon(d);
    apid_history_stop();
    apid_ns_close_all();
    rc = calypso_close(s.db);
    if (rc != CALYPSO_OK) {
        fprintf(stderr, "apid: close: %s\n", calypso_strerror(rc));
        return 1;
    }
    printf("apid: %s, database closed\n", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return 0;
}
