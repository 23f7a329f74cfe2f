/*
 * multi.c: transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH, with
 * Redis 7.0's behaviour: inside MULTI, commands are checked (name, arity,
 * auth) and queued with +QUEUED; a refusal at queue time makes EXEC answer
 * EXECABORT and run nothing; errors while the block runs are elements of
 * EXEC's array and the other commands still run; a watched key written by
 * anyone (or expired) since WATCH makes EXEC answer a null array.
 *
 * Isolation: the event loop runs one command at a time on one thread, and
 * cd_multi_exec_block runs the whole queue before the loop looks at any
 * other client, so no other client's command can run inside a block.
 *
 * Crash atomicity: a block of key commands runs inside one engine update
 * transaction and commits as one batch, so a crash leaves all of its
 * writes or none (cd_multi_exec_block). A block that counts or clears the
 * whole database, or runs maintenance (DBSIZE, FLUSHDB, INFO, SAVE...),
 * runs command by command instead.
 *
 * WATCH: the daemon makes every write to its database (kv.c calls
 * cd_watch_touch), so it tracks modification itself: a hash table from
 * watched key (and the database it was watched in) to the clients
 * watching it. While nobody watches anything a
 * write costs one test of a counter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calypsod.h"
#include "commands.h"

#define CD_WATCH_BUCKETS 1024

typedef struct cd_watch {
    char      *key;
    size_t     klen;
    int        db;             /* the database the key was watched in */
    cd_client *c;
    uint64_t   expires_at;     /* the key's expiry when watched, 0: none */
    struct cd_watch *cnext;    /* the client's list */
    struct cd_watch *hnext;    /* the bucket's chain */
} cd_watch;

typedef struct cd_watch_table {
    size_t    count;
    cd_watch *bucket[CD_WATCH_BUCKETS];
} cd_watch_table;

static uint32_t cd_watch_hash(const void *k, size_t n)
{
    const unsigned char *p = k;
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h % CD_WATCH_BUCKETS;
}

void cd_watch_touch(const void *k, size_t klen)
{
    cd_watch_table *t = cd_srv.watched;
    if (!t || t->count == 0) return;
    for (cd_watch *w = t->bucket[cd_watch_hash(k, klen)]; w; w = w->hnext)
        if (w->db == cd_srv.cur_idx && w->klen == klen && memcmp(w->key, k, klen) == 0)
            w->c->cas_dirty = 1;
}

/* FLUSHDB (db) and FLUSHALL (db -1): as Redis, a watched key counts as
 * touched if it existed. */
void cd_watch_touch_all(int db)
{
    cd_watch_table *t = cd_srv.watched;
    if (!t || t->count == 0) return;
    for (size_t b = 0; b < CD_WATCH_BUCKETS; b++) {
        for (cd_watch *w = t->bucket[b]; w; w = w->hnext) {
            if (db >= 0 && w->db != db) continue;
            calypso *h = cd_db_handle(w->db);
            if (h && w->klen && calypso_has(h, w->key, w->klen) > 0) w->c->cas_dirty = 1;
        }
    }
}

static int cd_watch_add(cd_client *c, const cd_arg *key)
{
    if (!cd_srv.watched) {
        cd_srv.watched = calloc(1, sizeof *cd_srv.watched);
        if (!cd_srv.watched) return -1;
    }
    for (cd_watch *w = c->watches; w; w = w->cnext)
        if (w->db == cd_srv.cur_idx && w->klen == key->len && memcmp(w->key, key->p, key->len) == 0)
            return 0;
    cd_watch *w = calloc(1, sizeof *w);
    if (!w) return -1;
    w->key = malloc(key->len ? key->len : 1);
    if (!w->key) { free(w); return -1; }
    memcpy(w->key, key->p, key->len);
    w->klen = key->len;
    w->db = cd_srv.cur_idx;
    w->c = c;
    cd_kv_expiry(key, &w->expires_at);
    uint32_t h = cd_watch_hash(key->p, key->len);
    w->hnext = cd_srv.watched->bucket[h];
    cd_srv.watched->bucket[h] = w;
    w->cnext = c->watches;
    c->watches = w;
    cd_srv.watched->count++;
    return 0;
}

static void cd_watch_clear(cd_client *c)
{
    cd_watch *w = c->watches;
    while (w) {
        cd_watch *next = w->cnext;
        cd_watch **pp = &cd_srv.watched->bucket[cd_watch_hash(w->key, w->klen)];
        while (*pp != w) pp = &(*pp)->hnext;
        *pp = w->hnext;
        cd_srv.watched->count--;
        free(w->key);
        free(w);
        w = next;
    }
    c->watches = NULL;
    c->cas_dirty = 0;
}

/* A watched key whose expiry has passed since WATCH counts as touched. */
static int cd_watch_expired(cd_client *c)
{
    int64_t now = cd_now_ms();
    for (cd_watch *w = c->watches; w; w = w->cnext)
        if (w->expires_at && (int64_t)w->expires_at <= now) return 1;
    return 0;
}

static void cd_multi_free_queue(cd_client *c)
{
    for (size_t i = 0; i < c->nqueue; i++) {
        for (int j = 0; j < c->queue[i].argc; j++) free((void *)c->queue[i].argv[j].p);
        free(c->queue[i].argv);
    }
    free(c->queue);
    c->queue = NULL;
    c->nqueue = c->qcap = 0;
}

void cd_multi_reset(cd_client *c)
{
    cd_multi_free_queue(c);
    c->in_multi = 0;
    c->multi_dirty = 0;
    cd_watch_clear(c);
}

void cd_multi_flag_error(cd_client *c)
{
    if (c->in_multi) c->multi_dirty = 1;
}

void cd_multi_queue(cd_client *c, const cd_cmd *cmd, int argc, cd_arg *argv)
{
    if (c->nqueue == c->qcap) {
        size_t ncap = c->qcap ? c->qcap * 2 : 8;
        cd_queued *nq = realloc(c->queue, ncap * sizeof *nq);
        if (!nq) goto oom;
        c->queue = nq;
        c->qcap = ncap;
    }
    cd_queued *q = &c->queue[c->nqueue];
    q->cmd = cmd;
    q->argc = 0;
    q->argv = malloc((size_t)argc * sizeof *q->argv);
    if (!q->argv) goto oom;
    for (int i = 0; i < argc; i++) {
        char *p = malloc(argv[i].len ? argv[i].len : 1);
        if (!p) {
            for (int j = 0; j < i; j++) free((void *)q->argv[j].p);
            free(q->argv);
            goto oom;
        }
        memcpy(p, argv[i].p, argv[i].len);
        q->argv[i].p = p;
        q->argv[i].len = argv[i].len;
    }
    q->argc = argc;
    c->nqueue++;
    cd_reply_str(c, "QUEUED");
    return;
oom:
    cd_reply_err(c, "out of memory queueing the command");
    cd_multi_flag_error(c);
}

/* 1 if cmd can run inside EXEC's update transaction: it reads and writes
 * keys only through kv.c (or cursors, which follow the transaction), or
 * touches no key at all. Commands that count or clear the whole database,
 * or call the engine's maintenance (DBSIZE, FLUSHDB, INFO, SAVE, ...), run
 * outside one. */
static int cd_multi_in_txn(const cd_cmd *cmd)
{
    static const char *const outside[] = { "dbsize", "flushdb", "flushall", "info", "save",
                                           "bgsave", "bgrewriteaof", "lastsave", "config",
                                           "shutdown", "debug", "function", NULL };
    for (int i = 0; outside[i]; i++)
        if (!strcmp(cmd->name, outside[i])) return 0;
    return 1;
}

/* Creates, before the block's transaction begins (the engine creates no
 * namespace inside one), every database the block can reach: the
 * client's, and those named by SELECT, MOVE and COPY ... DB. 0, or an
 * engine error. */
static int cd_multi_create_dbs(cd_client *c)
{
    int idx, rc = cd_db_create(c->db);
    for (size_t i = 0; i < c->nqueue && rc >= 0; i++) {
        const cd_queued *q = &c->queue[i];
        const char *n = q->cmd->name;
        if (!strcmp(n, "select") && cd_db_parse(&q->argv[1], &idx) > 0) rc = cd_db_create(idx);
        else if (!strcmp(n, "move") && cd_db_parse(&q->argv[2], &idx) > 0) rc = cd_db_create(idx);
        else if (!strcmp(n, "copy"))
            for (int j = 3; j + 1 < q->argc && rc >= 0; j++)
                if (cd_arg_is(&q->argv[j], "db") && cd_db_parse(&q->argv[j + 1], &idx) > 0)
                    rc = cd_db_create(idx);
    }
    return rc < 0 ? rc : 0;
}

/* Runs a queued block: the array header, then each command's reply.
 * This is the single place a block executes. When every command can, the
 * block runs inside one update transaction and commits as one engine
 * batch: across a crash all of its writes are there or none; should the
 * commit fail, the replies it produced are taken back and EXEC answers an
 * error instead (nothing was applied). A block with a command that cannot
 * (see cd_multi_in_txn) runs command by command as Redis does: isolated
 * from other clients, not atomic across a crash. */
void cd_multi_exec_block(cd_client *c)
{
    int whole = 1, writes = 0;
    for (size_t i = 0; i < c->nqueue && whole; i++) {
        whole = cd_multi_in_txn(c->queue[i].cmd);
        writes |= c->queue[i].cmd->flags & CD_CMD_WRITE;
    }
    /* A block that writes nothing needs no transaction: no other command
     * runs inside it anyway, and it creates no database by reading one. */
    if (!writes) whole = 0;
    size_t mark = c->out.len;
    int crc = whole ? cd_multi_create_dbs(c) : 0;
    if (crc < 0) {
        cd_reply_engine_err(c, crc);
        return;
    }
    if (whole && calypso_update_begin(cd_srv.db, &cd_srv.tx) != CALYPSO_OK) {
        cd_srv.tx = NULL;
        char msg[600];
        snprintf(msg, sizeof msg, "EXEC could not start its transaction: %s",
                 calypso_errmsg(cd_srv.db));
        cd_reply_err(c, msg);
        return;
    }
    cd_reply_array(c, (long long)c->nqueue);
    for (size_t i = 0; i < c->nqueue; i++)
        cd_cmd_call(c, c->queue[i].cmd, c->queue[i].argc, c->queue[i].argv);
    if (!whole) return;
    calypso_txn *tx = cd_srv.tx;
    cd_srv.tx = NULL;
    int rc = calypso_txn_commit(tx);
    if (rc != CALYPSO_OK) {
        c->out.len = mark;
        char msg[600];
        snprintf(msg, sizeof msg, "EXEC failed, nothing was applied: %s", calypso_errmsg(cd_srv.db));
        cd_reply_err(c, msg);
    }
}

void cd_multi_multi(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    if (c->in_multi) {
        cd_reply_err(c, "MULTI calls can not be nested");
        return;
    }
    c->in_multi = 1;
    c->multi_dirty = 0;
    cd_reply_ok(c);
}

void cd_multi_exec(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    if (!c->in_multi) {
        cd_reply_err(c, "EXEC without MULTI");
        return;
    }
    if (cd_watch_expired(c)) c->cas_dirty = 1;
    if (c->multi_dirty) {
        cd_reply_err(c, "-EXECABORT Transaction discarded because of previous errors.");
        cd_multi_reset(c);
        return;
    }
    if (c->cas_dirty) {
        cd_reply_null_array(c);
        cd_multi_reset(c);
        return;
    }
    cd_watch_clear(c);
    c->in_multi = 0;
    cd_multi_exec_block(c);
    cd_multi_reset(c);
}

void cd_multi_discard(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    if (!c->in_multi) {
        cd_reply_err(c, "DISCARD without MULTI");
        return;
    }
    cd_multi_reset(c);
    cd_reply_ok(c);
}

void cd_multi_watch(cd_client *c, int argc, cd_arg *argv)
{
    if (c->in_multi) {
        cd_reply_err(c, "WATCH inside MULTI is not allowed");
        return;
    }
    for (int i = 1; i < argc; i++) {
        if (cd_watch_add(c, &argv[i]) < 0) {
            cd_reply_err(c, "out of memory");
            return;
        }
    }
    cd_reply_ok(c);
}

void cd_multi_unwatch(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    cd_watch_clear(c);
    cd_reply_ok(c);
}
