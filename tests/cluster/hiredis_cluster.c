/*
 * hiredis_cluster.c: calypsod shards through twemproxy, from C with
 * hiredis (Debian's libhiredis-dev): SET, GET, MGET, MSET, DEL, EXISTS,
 * EXPIRE, TTL and INCR one at a time, then 2000 commands pipelined on the
 * one connection (redisAppendCommand, then the replies in order), keys
 * binary-safe (NUL bytes, through %b). MGET, MSET and DEL with keys on
 * several shards are split by the proxy and their replies merged; EXISTS
 * is asked one key at a time (twemproxy sends a multi-key EXISTS to the
 * first key's shard alone).
 *
 * Usage: hiredis_cluster PORT [PASSWORD] (PASSWORD: the proxy's
 * redis_auth, sent as AUTH first). Keys start with "hc:". Prints
 * "N passed, N failed".
 */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what)
{
    if (ok) passed++;
    else { failed++; printf("FAIL: %s\n", what); }
}

static int is_status(const redisReply *r, const char *s)
{
    return r && r->type == REDIS_REPLY_STATUS && strcmp(r->str, s) == 0;
}

static int is_int(const redisReply *r, long long v)
{
    return r && r->type == REDIS_REPLY_INTEGER && r->integer == v;
}

static int is_bulk(const redisReply *r, const char *p, size_t n)
{
    return r && r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, p, n) == 0;
}

/* One command's reply checked by pred, then freed. */
#define CMD(pred, what, ...) do { \
        redisReply *r_ = redisCommand(c, __VA_ARGS__); \
        check(pred, what); \
        freeReplyObject(r_); \
    } while (0)

static void one_at_a_time(redisContext *c)
{
    const char key[] = "hc:\0bin";
    CMD(is_status(r_, "OK"), "SET", "SET %b %s", key, sizeof key - 1, "v1");
    CMD(is_bulk(r_, "v1", 2), "GET", "GET %b", key, sizeof key - 1);
    CMD(r_ && r_->type == REDIS_REPLY_NIL, "GET of a missing key: nil", "GET hc:missing");
    CMD(is_status(r_, "OK"), "MSET over shards",
        "MSET hc:a 1 hc:b 2 hc:c 3 hc:d 4 hc:e 5 hc:f 6 hc:g 7 hc:h 8");
    CMD(r_ && r_->type == REDIS_REPLY_ARRAY && r_->elements == 9 && is_bulk(r_->element[0], "1", 1) &&
        is_bulk(r_->element[3], "4", 1) && is_bulk(r_->element[7], "8", 1) &&
        r_->element[8]->type == REDIS_REPLY_NIL, "MGET over shards, in order, nil for the missing",
        "MGET hc:a hc:b hc:c hc:d hc:e hc:f hc:g hc:h hc:missing");
    CMD(is_int(r_, 1), "EXISTS", "EXISTS hc:h");
    CMD(is_int(r_, 0), "EXISTS of a missing key", "EXISTS hc:missing");
    CMD(is_int(r_, 1), "EXPIRE", "EXPIRE hc:a 100");
    CMD(r_ && r_->type == REDIS_REPLY_INTEGER && r_->integer >= 99 && r_->integer <= 100, "TTL", "TTL hc:a");
    CMD(is_int(r_, -1), "TTL without expiry", "TTL hc:b");
    CMD(is_int(r_, -2), "TTL of a missing key", "TTL hc:missing");
    CMD(is_int(r_, 1), "INCR of a missing key", "INCR hc:n");
    CMD(is_int(r_, 2), "INCR", "INCR hc:n");
    CMD(r_ && r_->type == REDIS_REPLY_ERROR && strstr(r_->str, "not an integer"), "INCR of text: the shard's error",
        "INCR %b", key, sizeof key - 1);
    CMD(is_int(r_, 4), "DEL over shards", "DEL hc:a hc:b hc:c hc:d hc:missing");
    CMD(is_int(r_, 0), "EXISTS after DEL", "EXISTS hc:d");
    CMD(r_ && r_->type == REDIS_REPLY_ARRAY && r_->elements == 8 && r_->element[3]->type == REDIS_REPLY_NIL &&
        is_bulk(r_->element[4], "5", 1), "MGET after DEL", "MGET hc:a hc:b hc:c hc:d hc:e hc:f hc:g hc:h");
}

/* 1000 SETs then 1000 GETs of distinct keys and values, appended before
 * any reply is read: the proxy spreads them over the shards and must give
 * the replies back in the order of the requests. */
static void pipelined(redisContext *c)
{
    enum { N = 1000 };
    char k[32], v[32];
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "hc:p:%d", i);
        snprintf(v, sizeof v, "value-%d", i * 7);
        redisAppendCommand(c, "SET %s %s", k, v);
    }
    for (int i = 0; i < N; i++) {
        snprintf(k, sizeof k, "hc:p:%d", i);
        redisAppendCommand(c, "GET %s", k);
    }
    int sets_ok = 1, gets_ok = 1;
    redisReply *r;
    for (int i = 0; i < 2 * N; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK) { sets_ok = gets_ok = 0; break; }
        if (i < N) sets_ok &= is_status(r, "OK");
        else {
            snprintf(v, sizeof v, "value-%d", (i - N) * 7);
            gets_ok &= is_bulk(r, v, strlen(v));
        }
        freeReplyObject(r);
    }
    check(sets_ok, "1000 pipelined SETs: OK each");
    check(gets_ok, "1000 pipelined GETs: each its own value, in order");
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) { fprintf(stderr, "usage: %s PORT [PASSWORD]\n", argv[0]); return 2; }
    redisContext *c = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) { printf("FAIL: connect\n0 passed, 1 failed\n"); return 1; }
    if (argc == 3)
        CMD(is_status(r_, "OK"), "AUTH to the proxy", "AUTH %s", argv[2]);
    one_at_a_time(c);
    pipelined(c);
    redisFree(c);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
