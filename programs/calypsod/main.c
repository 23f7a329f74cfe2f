/*
 * main.c: calypsod's entry point: the command line, the file-descriptor
 * limit, opening the database, running the event loop, closing cleanly.
 *
 *   calypsod --bind [HOST]:PORT --dbpath DIR [--sync always|everysec|no]
 *            [--requirepass PW] [--maxclients N] [--databases N]
 *            [--protected-mode yes|no] [--output-limit BYTES]
 *            [--loglevel LEVEL] [--logfile FILE]
 *
 * A foreground process that logs to stderr; SIGTERM and SIGINT shut it
 * down cleanly (the database is closed, every write made durable),
 * SIGHUP reopens --logfile.
 */
#define _GNU_SOURCE 1
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calypsod.h"

cd_server cd_srv;

/* Descriptors calypsod needs besides its clients: the engine's datafile
 * cache (max_open_files, 64 by default) and a few of its own. */
#define CD_RESERVED_FDS (CALYPSO_DEFAULT_MAX_OPEN_FILES + 32)

static void cd_usage(FILE *f)
{
    fprintf(f,
        "Usage: calypsod --dbpath DIR [options]\n"
        "A Redis-protocol server over a calypso database: redis-cli and the Redis\n"
        "client libraries work with it unchanged (string keys).\n\n"
        "  --bind [HOST]:PORT      listen address (default 127.0.0.1:6379);\n"
        "                          :PORT listens on every interface\n"
        "  --dbpath DIR            the database directory (created if missing)\n"
        "  --sync MODE             always | everysec | no (default everysec), as\n"
        "                          Redis's appendfsync\n"
        "  --requirepass PW        clients must AUTH with PW\n"
        "  --protected-mode yes|no without a password, refuse clients that are\n"
        "                          not on the loopback interface (default yes)\n"
        "  --maxclients N          concurrent connections (default 10000)\n"
        "  --databases N           number of databases SELECT accepts (default 16):\n"
        "                          0 is the default namespace, i > 0 the\n"
        "                          namespace calypsod/i\n"
        "  --output-limit BYTES    unsent reply bytes past which a client is\n"
        "                          closed (default 1gb; k, kb, m, mb, g, gb)\n"
        "  --loglevel LEVEL        debug | verbose | notice | warning (default notice)\n"
        "  --logfile FILE          log there instead of stderr (SIGHUP reopens it)\n"
        "  --help, --version\n");
}

static int cd_parse_bytes(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || s[0] == '-') return -1;
    uint64_t mul = 1;
    if (!strcasecmp(end, "k")) mul = 1000;
    else if (!strcasecmp(end, "kb")) mul = 1024;
    else if (!strcasecmp(end, "m")) mul = 1000 * 1000;
    else if (!strcasecmp(end, "mb")) mul = 1024 * 1024;
    else if (!strcasecmp(end, "g")) mul = 1000ull * 1000 * 1000;
    else if (!strcasecmp(end, "gb")) mul = 1024ull * 1024 * 1024;
    else if (*end) return -1;
    *out = v * mul;
    return 0;
}

static int cd_parse_bind(const char *s)
{
    const char *colon = strrchr(s, ':');
    if (!colon) {
        fprintf(stderr, "calypsod: --bind wants [HOST]:PORT, got '%s'\n", s);
        return -1;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535) {
        fprintf(stderr, "calypsod: bad port in --bind '%s'\n", s);
        return -1;
    }
    cd_srv.port = (int)port;
    size_t hl = (size_t)(colon - s);
    if (hl >= 2 && s[0] == '[' && s[hl - 1] == ']') { s++; hl -= 2; } /* [::1]:6379 */
    if (hl >= sizeof cd_srv.bind_host) {
        fprintf(stderr, "calypsod: --bind host too long\n");
        return -1;
    }
    memcpy(cd_srv.bind_host, s, hl);
    cd_srv.bind_host[hl] = '\0';
    cd_srv.bind_any = hl == 0 || !strcmp(cd_srv.bind_host, "*");
    return 0;
}

static int cd_parse_args(int argc, char **argv)
{
    enum { O_BIND = 1, O_DBPATH, O_SYNC, O_PASS, O_MAXCL, O_DBS, O_LOGLEVEL, O_LOGFILE,
           O_PROTECTED, O_OUTLIMIT, O_HELP, O_VERSION };
    static const struct option opts[] = {
        { "bind", required_argument, 0, O_BIND }, { "dbpath", required_argument, 0, O_DBPATH },
        { "sync", required_argument, 0, O_SYNC }, { "requirepass", required_argument, 0, O_PASS },
        { "maxclients", required_argument, 0, O_MAXCL }, { "databases", required_argument, 0, O_DBS },
        { "loglevel", required_argument, 0, O_LOGLEVEL }, { "logfile", required_argument, 0, O_LOGFILE },
        { "protected-mode", required_argument, 0, O_PROTECTED },
        { "output-limit", required_argument, 0, O_OUTLIMIT },
        { "help", no_argument, 0, O_HELP }, { "version", no_argument, 0, O_VERSION },
        { 0, 0, 0, 0 },
    };
    static const char *levels[] = { "debug", "verbose", "notice", "warning" };
    int o;
    long long v;
    while ((o = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (o) {
        case O_BIND:
            if (cd_parse_bind(optarg) < 0) return -1;
            break;
        case O_DBPATH: cd_srv.dbpath = optarg; break;
        case O_SYNC:
            if (!strcmp(optarg, "always")) cd_srv.sync_mode = CALYPSO_SYNC_ALWAYS;
            else if (!strcmp(optarg, "everysec")) cd_srv.sync_mode = CALYPSO_SYNC_INTERVAL;
            else if (!strcmp(optarg, "no")) cd_srv.sync_mode = CALYPSO_SYNC_NONE;
            else { fprintf(stderr, "calypsod: --sync wants always, everysec or no\n"); return -1; }
            break;
        case O_PASS:
            if (!*optarg) { fprintf(stderr, "calypsod: --requirepass wants a password\n"); return -1; }
            cd_srv.requirepass = strdup(optarg);
            break;
        case O_MAXCL:
        case O_DBS:
            if (!cd_str2ll(optarg, strlen(optarg), &v) || v < 1 || v > 1000000) {
                fprintf(stderr, "calypsod: --%s wants a number from 1 to 1000000\n",
                        o == O_MAXCL ? "maxclients" : "databases");
                return -1;
            }
            if (o == O_MAXCL) cd_srv.maxclients = (long)v;
            else cd_srv.databases = (int)v;
            break;
        case O_LOGLEVEL:
            cd_srv.loglevel = -1;
            for (int i = 0; i < 4; i++)
                if (!strcmp(optarg, levels[i])) cd_srv.loglevel = i;
            if (cd_srv.loglevel < 0) {
                fprintf(stderr, "calypsod: --loglevel wants debug, verbose, notice or warning\n");
                return -1;
            }
            break;
        case O_LOGFILE: cd_srv.logfile = optarg; break;
        case O_PROTECTED:
            if (!strcmp(optarg, "yes")) cd_srv.protected_mode = 1;
            else if (!strcmp(optarg, "no")) cd_srv.protected_mode = 0;
            else { fprintf(stderr, "calypsod: --protected-mode wants yes or no\n"); return -1; }
            break;
        case O_OUTLIMIT:
            if (cd_parse_bytes(optarg, &cd_srv.output_limit) < 0 || cd_srv.output_limit == 0) {
                fprintf(stderr, "calypsod: --output-limit wants a size such as 64mb\n");
                return -1;
            }
            break;
        case O_HELP: cd_usage(stdout); exit(0);
        case O_VERSION:
            printf("calypsod %s (calypso %s; Redis protocol of %s)\n", CALYPSOD_VERSION,
                   calypso_version(), CD_REDIS_VERSION);
            exit(0);
        default: cd_usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "calypsod: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (!cd_srv.dbpath) {
        fprintf(stderr, "calypsod: --dbpath DIR is required (the database directory)\n");
        return -1;
    }
    return 0;
}

/* As Redis: raise RLIMIT_NOFILE to maxclients plus what the server needs
 * itself; when the system refuses, lower maxclients to fit and say how to
 * raise the limit. */
static int cd_adjust_fd_limit(void)
{
    rlim_t want = (rlim_t)cd_srv.maxclients + CD_RESERVED_FDS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return 0;
    if (rl.rlim_cur >= want) return 0;
    struct rlimit nr = { want, rl.rlim_max > want ? rl.rlim_max : want };
    if (setrlimit(RLIMIT_NOFILE, &nr) == 0) return 0;
    int err = errno;
    nr.rlim_cur = nr.rlim_max = rl.rlim_max;
    if (rl.rlim_max > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &nr) == 0) rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_cur <= CD_RESERVED_FDS) {
        cd_log(CD_LOG_WARNING, "Your current 'ulimit -n' of %llu is not enough for calypsod to "
               "start (it needs more than %d descriptors). Please increase 'ulimit -n' "
               "(or LimitNOFILE= in a systemd unit) to at least %llu.",
               (unsigned long long)rl.rlim_cur, CD_RESERVED_FDS, (unsigned long long)want);
        return -1;
    }
    long old = cd_srv.maxclients;
    cd_srv.maxclients = (long)(rl.rlim_cur - CD_RESERVED_FDS);
    cd_log(CD_LOG_WARNING, "You requested maxclients of %ld requiring at least %llu max file "
           "descriptors. Server can't set maximum open files to %llu because of OS error: %s. "
           "Current maximum open files is %llu. maxclients has been reduced to %ld to compensate "
           "for low ulimit. If you need higher maxclients increase 'ulimit -n' (as root, or "
           "LimitNOFILE= in a systemd unit).", old, (unsigned long long)want,
           (unsigned long long)want, strerror(err), (unsigned long long)rl.rlim_cur,
           cd_srv.maxclients);
    return 0;
}

/* mkdir -p of the directories above path: the engine creates the last one. */
static void cd_make_parents(const char *path)
{
    char *p = strdup(path);
    if (!p) return;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = '\0';
        mkdir(p, 0755);
        *s = '/';
    }
    free(p);
}

static int cd_open_db(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_key_size = CALYPSO_MAX_KEY_SIZE;
    o.max_value_size = (uint64_t)CD_BULK_MAX;
    /* --sync always: writes go to the kernel and the loop syncs once per
     * round for every client (loop.c), instead of one fdatasync per write */
    o.sync = cd_srv.sync_mode == CALYPSO_SYNC_INTERVAL ? CALYPSO_SYNC_INTERVAL : CALYPSO_SYNC_NONE;
    o.sync_interval_ms = 1000;
    cd_make_parents(cd_srv.dbpath);
    int rc = calypso_open(cd_srv.dbpath, &o, &cd_srv.db);
    if (rc < 0) {
        cd_log(CD_LOG_WARNING, "Could not open the database in %s: %s", cd_srv.dbpath,
               calypso_errmsg(NULL));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cd_srv.port = 6379;
    snprintf(cd_srv.bind_host, sizeof cd_srv.bind_host, "127.0.0.1");
    cd_srv.sync_mode = CALYPSO_SYNC_INTERVAL;
    cd_srv.maxclients = 10000;
    cd_srv.databases = 16;
    cd_srv.protected_mode = 1;
    cd_srv.loglevel = CD_LOG_NOTICE;
    cd_srv.output_limit = 1024ull * 1024 * 1024;
    cd_srv.lfd = cd_srv.epfd = -1;
    if (cd_parse_args(argc, argv) < 0) return 2;
    if (cd_signals_block() < 0) {
        fprintf(stderr, "calypsod: cannot block signals: %s\n", strerror(errno));
        return 1;
    }
    if (cd_log_open() < 0) {
        fprintf(stderr, "calypsod: cannot open the log file %s: %s\n", cd_srv.logfile, strerror(errno));
        return 1;
    }
    srandom((unsigned)time(NULL) ^ (unsigned)getpid());
    cd_srv.start_ms = cd_now_ms();
    cd_srv.last_save_s = cd_srv.start_ms / 1000;
    cd_log(CD_LOG_NOTICE, "calypsod %s (calypso %s) starting, pid %d, database %s, sync %s",
           CALYPSOD_VERSION, calypso_version(), (int)getpid(), cd_srv.dbpath,
           cd_srv.sync_mode == CALYPSO_SYNC_ALWAYS ? "always"
           : cd_srv.sync_mode == CALYPSO_SYNC_INTERVAL ? "everysec" : "no");
    if (cd_adjust_fd_limit() < 0) return 1;
    if (cd_open_db() < 0) return 1;
    if (cd_dbs_open() < 0) {
        cd_dbs_close();
        calypso_close(cd_srv.db);
        return 1;
    }
    uint64_t keys = 0;
    int used = 0;
    for (int i = 0; i < cd_srv.databases; i++) {
        if (!cd_srv.dbs[i].h) continue;
        keys += calypso_len(cd_srv.dbs[i].h);
        used++;
    }
    cd_log(CD_LOG_NOTICE, "database loaded: %llu keys in %d of %d databases",
           (unsigned long long)keys, used, cd_srv.databases);
    if (cd_srv.bind_any && cd_srv.protected_mode && !cd_srv.requirepass)
        cd_log(CD_LOG_NOTICE, "protected mode: listening on every interface without "
               "--requirepass, so only loopback clients are served");
    int rc = cd_loop_run();
    cd_dbs_close();
    int crc = calypso_close(cd_srv.db);
    if (crc < 0) cd_log(CD_LOG_WARNING, "closing the database: %s", calypso_strerror(crc));
    if (rc < 0) return 1;
    cd_log(CD_LOG_WARNING, "calypsod is now ready to exit, bye bye...");
    return crc < 0 ? 1 : 0;
}
