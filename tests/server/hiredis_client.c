/*
 * hiredis_client.c: calypsod through hiredis (Debian's libhiredis-dev),
 * from C: binary-safe keys and values holding NUL bytes (redisCommand's
 * %b), pipelining (redisAppendCommand then redisGetReply), reply types
 * (status, integer, bulk, nil, array, error), MULTI/EXEC, a 4 MiB value.
 *
 * Usage: hiredis_client PORT. Prints "N passed, N failed".
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

static int is_bulk(const redisReply *r, const void *p, size_t n)
{
    return r && r->type == REDIS_REPLY_STRING && r->len == n && memcmp(r->str, p, n) == 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: %s PORT\n", argv[0]); return 2; }
    redisContext *c = redisConnect("127.0.0.1", atoi(argv[1]));
    if (!c || c->err) { printf("FAIL: connect\n0 passed, 1 failed\n"); return 1; }

    const char key[] = "k\0ey";
    const char val[] = "v\0x\r\n\0";
    redisReply *r = redisCommand(c, "SET %b %b", key, sizeof key - 1, val, sizeof val - 1);
    check(r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "OK"), "SET with NUL bytes");
    freeReplyObject(r);
    r = redisCommand(c, "GET %b", key, sizeof key - 1);
    check(is_bulk(r, val, sizeof val - 1), "GET returns the NUL bytes");
    freeReplyObject(r);
    r = redisCommand(c, "GET %b", "k", (size_t)1);
    check(r && r->type == REDIS_REPLY_NIL, "a key that is a prefix of the NUL key is missing");
    freeReplyObject(r);
    r = redisCommand(c, "STRLEN %b", key, sizeof key - 1);
    check(r && r->type == REDIS_REPLY_INTEGER && r->integer == (long long)sizeof val - 1, "STRLEN");
    freeReplyObject(r);

    /* pipelining: 1000 commands appended, then the replies */
    for (int i = 0; i < 1000; i++) redisAppendCommand(c, "INCRBY ctr %d", i);
    long long last = -1;
    int ok = 1;
    for (int i = 0; i < 1000; i++) {
        if (redisGetReply(c, (void **)&r) != REDIS_OK) { ok = 0; break; }
        if (r->type != REDIS_REPLY_INTEGER) ok = 0;
        else last = r->integer;
        freeReplyObject(r);
    }
    check(ok && last == 999 * 1000 / 2, "1000 pipelined INCRBY");

    redisAppendCommand(c, "MULTI");
    redisAppendCommand(c, "SET %s %s", "a", "1");
    redisAppendCommand(c, "INCR %s", "a");
    redisAppendCommand(c, "LPUSH %s %s", "a", "x");
    redisAppendCommand(c, "EXEC");
    for (int i = 0; i < 4; i++) {
        redisGetReply(c, (void **)&r);
        check(r && (i == 0 ? r->type == REDIS_REPLY_STATUS
                    : i < 3 ? r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "QUEUED")
                            : r->type == REDIS_REPLY_ERROR), "MULTI replies");
        freeReplyObject(r);
    }
    redisGetReply(c, (void **)&r);
    check(r && r->type == REDIS_REPLY_ERROR &&
          !strcmp(r->str, "EXECABORT Transaction discarded because of previous errors."),
          "EXEC after an unknown command: EXECABORT");
    freeReplyObject(r);
    r = redisCommand(c, "MULTI");
    freeReplyObject(r);
    freeReplyObject(redisCommand(c, "SET %s %s", "a", "1"));
    freeReplyObject(redisCommand(c, "INCR %s", "a"));
    r = redisCommand(c, "EXEC");
    check(r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
          r->element[1]->type == REDIS_REPLY_INTEGER && r->element[1]->integer == 2, "EXEC array");
    freeReplyObject(r);

    size_t big = 4u << 20;
    char *blob = malloc(big);
    for (size_t i = 0; i < big; i++) blob[i] = (char)(i * 131 + 7);
    r = redisCommand(c, "SET %s %b", "blob", blob, big);
    freeReplyObject(r);
    r = redisCommand(c, "GET %s", "blob");
    check(is_bulk(r, blob, big), "a 4 MiB binary value");
    freeReplyObject(r);
    free(blob);

    r = redisCommand(c, "MGET %b %s %s", key, sizeof key - 1, "nope", "a");
    check(r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 && is_bulk(r->element[0], val, sizeof val - 1) &&
          r->element[1]->type == REDIS_REPLY_NIL && is_bulk(r->element[2], "2", 1), "MGET");
    freeReplyObject(r);
    r = redisCommand(c, "GETRANGE %s 0 -1", "nope");
    check(is_bulk(r, "", 0), "GETRANGE of a missing key: empty bulk");
    freeReplyObject(r);
    redisFree(c);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
