/*
 * calypsod.h: the types shared by calypsod's files: the server (one, owned
 * by the event loop's thread), a client connection, the reply writer and
 * the command table. Each file says what it owns; this header only
 * declares.
 *
 * Threads: everything here is touched by the event loop's thread alone.
 * The engine handle is shared with calypso's own background threads
 * (flusher, merge, TTL sweeper) and BGREWRITEAOF's merge thread, which the
 * engine's API makes safe.
 */
#ifndef CALYPSOD_H
#define CALYPSOD_H

#include <stddef.h>
#include <stdint.h>

#include "calypso.h"
#include "resp.h"

#define CALYPSOD_VERSION    "0.1.0"
/* What INFO's redis_version and HELLO's version report: clients switch
 * features on this number, and calypsod speaks Redis 7.0's protocol. */
#define CD_REDIS_VERSION    "7.0.15"

/* >> growable byte buffer */
typedef struct cd_buf {
    char  *p;
    size_t len, cap;
} cd_buf;

int  cd_buf_reserve(cd_buf *b, size_t extra);
int  cd_buf_append(cd_buf *b, const void *p, size_t n);
void cd_buf_free(cd_buf *b);

/* >> a queued MULTI command: its arguments copied */
typedef struct cd_queued {
    const struct cd_cmd *cmd;
    int     argc;
    cd_arg *argv; /* each p malloc'd */
} cd_queued;

/* >> a client connection */
typedef struct cd_client {
    int      fd;
    uint64_t id;
    int      proto;          /* 2 or 3 (HELLO) */
    int      authed;
    int      close_after;    /* close once the output is written (QUIT, errors) */
    int      closed;         /* freed at the end of the round */
    int      db;             /* SELECTed database index (dbs.c) */
    char     addr[64];       /* "ip:port" */
    char     laddr[64];
    int      local;          /* connected from 127.0.0.1 or ::1 */
    char    *name;           /* CLIENT SETNAME, or NULL */
    char    *lib_name, *lib_ver;
    int64_t  ctime_ms, last_ms;
    const char *last_cmd;    /* the last command's name (the table's), or NULL */

    cd_buf   in;             /* query buffer: in.p[in_start..in.len) unparsed */
    size_t   in_start;
    cd_req   req;

    cd_buf   out;            /* replies: out.p[out_sent..out.len) unsent */
    size_t   out_sent;
    size_t   out_ready;      /* out.p[0..out_ready) may be sent */
    int      want_write;     /* EPOLLOUT registered */
    int      pending;        /* in the server's list of clients to flush */

    /* MULTI state (multi.c) */
    int        in_multi;
    int        multi_dirty;  /* a queue-time error: EXEC answers EXECABORT */
    int        cas_dirty;    /* a watched key changed: EXEC answers nil */
    cd_queued *queue;
    size_t     nqueue, qcap;
    struct cd_watch *watches; /* this client's watched keys */

    struct cd_client *prev, *next;   /* all clients */
    struct cd_client *pnext;         /* pending writes */
    struct cd_client *fnext;         /* closed, to be freed */
} cd_client;

/* >> a numbered database (dbs.c) */
typedef struct cd_db {
    calypso *h;               /* its namespace handle; NULL: never written */
    uint64_t expires;         /* INFO keyspace's last count of keys with a TTL */
    int64_t  counted_ms;      /* when it was counted; 0: never */
    uint64_t counted_keys;    /* the database's keys then */
} cd_db;

/* >> the server */
typedef struct cd_server {
    calypso *db;              /* the database handle: database 0 */
    cd_db   *dbs;             /* [databases] (dbs.c) */
    calypso *cur;             /* the running command's database; NULL: never written */
    int      cur_idx;         /* its index */
    calypso_txn *tx;         /* EXEC's update transaction while a block runs
                                as one (multi.c), else NULL: kv.c goes
                                through it                                */
    char    *dbpath;
    char     bind_host[256];
    int      port;
    int      bind_any;        /* listening on every interface */
    int      protected_mode;
    char    *requirepass;
    int      sync_mode;       /* CALYPSO_SYNC_* as the user asked */
    int      databases;
    long     maxclients;
    uint64_t output_limit;    /* bytes of unsent replies past which a client is closed */
    int      loglevel;        /* 0 debug, 1 verbose, 2 notice, 3 warning */
    char    *logfile;

    int      epfd, lfd;
    int      shutdown;
    int      reopen_log;
    cd_client *clients;
    cd_client *pending;
    long     nclients;
    uint64_t next_client_id;
    int64_t  start_ms;
    uint64_t hz_ms;
    int      dirty;            /* a write happened this round (--sync always) */
    int64_t  round_ms;         /* when the round began (cd_now_ms): a client's
                                  last-command time for CLIENT LIST's idle */

    /* statistics for INFO */
    uint64_t stat_conns, stat_cmds, stat_rejected, stat_net_in, stat_net_out;
    uint64_t stat_hits, stat_misses, stat_expired;
    int64_t  last_save_s;
    uint64_t dirty_since_save;

    struct cd_watch_table *watched; /* multi.c */
    struct cd_scan_table  *scans;   /* cmd_keys.c */
} cd_server;

extern cd_server cd_srv;

/* >> log.c */
enum { CD_LOG_DEBUG, CD_LOG_VERBOSE, CD_LOG_NOTICE, CD_LOG_WARNING };
void cd_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int  cd_log_open(void);

/* >> reply.c: the reply writer (RESP2 and RESP3) */
/* Writes "<type><n>\r\n" to out (CD_HEADER_MAX bytes at most); returns its length. */
#define CD_HEADER_MAX 24
size_t cd_fmt_header(char *out, char type, long long n);
void cd_reply_raw(cd_client *c, const void *p, size_t n);
void cd_reply_str(cd_client *c, const char *s);            /* +s */
void cd_reply_ok(cd_client *c);
void cd_reply_err(cd_client *c, const char *s);            /* "-CODE msg" as is, else "-ERR msg" */
void cd_reply_errf(cd_client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cd_reply_int(cd_client *c, long long v);
void cd_reply_bulk(cd_client *c, const void *p, size_t n);
void cd_reply_cstr(cd_client *c, const char *s);           /* bulk of a C string */
void cd_reply_null(cd_client *c);                          /* $-1 / _ */
void cd_reply_null_array(cd_client *c);                    /* *-1 / _ */
void cd_reply_array(cd_client *c, long long n);
void cd_reply_map(cd_client *c, long long n);              /* %n / *2n */
void cd_reply_set(cd_client *c, long long n);              /* ~n / *n */
void cd_reply_verbatim(cd_client *c, const char *p, size_t n); /* =n txt: / $n */
/* The reply an engine error code gets. */
void cd_reply_engine_err(cd_client *c, int rc);

/* >> commands.c: the command table */
typedef void cd_cmd_fn(cd_client *c, int argc, cd_arg *argv);

enum {
    CD_CMD_WRITE    = 1 << 0,  /* changes keys: WATCH, sync */
    CD_CMD_NOAUTH   = 1 << 1,  /* allowed before AUTH */
    CD_CMD_NOMULTI  = 1 << 2,  /* refused inside MULTI */
    CD_CMD_NOQUEUE  = 1 << 3,  /* runs at once inside MULTI (EXEC, DISCARD, ...) */
    CD_CMD_READONLY = 1 << 4,
    CD_CMD_ADMIN    = 1 << 5,
    CD_CMD_FAST     = 1 << 6,
};

typedef struct cd_cmd {
    const char *name;        /* lowercase, as in errors */
    cd_cmd_fn  *fn;
    int         arity;       /* Redis's: N exact, -N at least N */
    int         flags;
    int         first_key, last_key, key_step; /* for COMMAND INFO */
} cd_cmd;

const cd_cmd *cd_cmd_lookup(const char *name, size_t len);
/* Runs one request of c (argv[0] is the name): checks, MULTI queueing. */
void cd_cmd_dispatch(cd_client *c, int argc, cd_arg *argv);
/* Runs cmd without the checks (EXEC's inner loop). */
void cd_cmd_call(cd_client *c, const cd_cmd *cmd, int argc, cd_arg *argv);
extern const cd_cmd cd_cmds[];
extern const size_t cd_ncmds;

/* >> argument helpers (commands.c) */
int  cd_arg_is(const cd_arg *a, const char *s);   /* case-insensitive */
/* Parses a strict integer; on failure replies the Redis error and returns 0. */
int  cd_arg_ll(cd_client *c, const cd_arg *a, long long *v);
int64_t cd_now_ms(void);

/* >> kv.c: the string store over the engine */
/* Reads key: 1 found (val/vlen set, caller calypso_free()s), 0 missing, <0 error. */
int  cd_kv_get(const cd_arg *key, void **val, size_t *vlen);
/* Replies to n GET requests of a pipeline, read together (cmd_string.c). */
void cd_str_get_batch(cd_client *c, size_t n, const cd_arg *keys);
/* Reads keys[0..n) at once (calypso_get_many), each as cd_kv_get: found[i]
 * 1 with vals[i] (calypso_free()) and vlens[i], 0 missing, <0 its error. */
void cd_kv_get_many(size_t n, const cd_arg *keys, void **vals, size_t *vlens, int *found);
/* The absolute expiry (ms) of a live key: 1 with *at (0 = none), 0 missing, <0 error. */
int  cd_kv_expiry(const cd_arg *key, uint64_t *at);
/* Stores val with absolute expiry at_ms (0 = none). An expiry already past
 * deletes the key instead. Marks the key modified for WATCH. */
int  cd_kv_put(const void *k, size_t klen, const void *v, size_t vlen, uint64_t at_ms);
/* 1 deleted, 0 was missing, <0 error. */
int  cd_kv_del(const void *k, size_t klen);
int  cd_kv_exists(const void *k, size_t klen);
void cd_kv_touched(const void *k, size_t klen);  /* a write: WATCH and sync */

/* >> dbs.c: the numbered databases as namespaces */
int  cd_dbs_open(void);          /* at start: the handles of the existing ones */
void cd_dbs_close(void);
calypso *cd_db_handle(int idx);  /* NULL: never written (or out of range) */
/* Creates database idx's namespace if missing (not inside a transaction). */
int  cd_db_create(int idx);
/* Makes idx the current database (and the transaction's namespace). */
int  cd_db_use(int idx);
/* The current database's handle, created if missing; NULL with *rc set on failure. */
calypso *cd_db_for_write(int *rc);
/* A database index argument: 1 in range (*idx set), 0 out of range, -1 not an integer. */
int  cd_db_parse(const cd_arg *a, int *idx);

/* >> multi.c */
void cd_multi_queue(cd_client *c, const cd_cmd *cmd, int argc, cd_arg *argv);
void cd_multi_flag_error(cd_client *c);
void cd_multi_reset(cd_client *c);             /* discard queue and watches */
void cd_watch_touch(const void *k, size_t klen);
void cd_watch_touch_all(int db);              /* db -1: every database */
void cd_multi_exec_block(cd_client *c);        /* runs the queued block */

/* >> loop.c */
int  cd_loop_run(void);
int  cd_signals_block(void);   /* before any thread starts */
/* Closes c: no more of its requests run; freed at the end of the round. */
void cd_client_kill(cd_client *c);

/* >> glob.c: Redis's stringmatchlen */
int  cd_glob_match(const char *pat, size_t plen, const char *s, size_t slen, int nocase);

#endif
