/*
 * cmd_keys.c: the key-space commands: DEL/UNLINK, EXISTS/TOUCH, TYPE,
 * KEYS, SCAN, RANDOMKEY, RENAME(NX), COPY, MOVE, SWAPDB, the EXPIRE and
 * TTL families, PERSIST, OBJECT, DBSIZE, FLUSHDB/FLUSHALL. Each works on
 * the client's SELECTed database (cd_srv.cur, dbs.c).
 *
 * KEYS and SCAN walk the engine's keys in byte order with a cursor; a
 * pattern's literal prefix (the bytes before its first wildcard) bounds
 * the walk, so `KEYS user:*` reads only the user: keys.
 *
 * SCAN cursors: clients treat the cursor as a number (redis-cli and
 * redis-py parse it), so a key cannot travel in it. The server keeps, per
 * cursor number handed out, the last key that reply returned; the next
 * call resumes at the first key after it. Since keys are in order, a scan
 * that runs while keys are written still returns every key that existed
 * for its whole run exactly once (Redis only promises "at least once").
 * The table holds CD_SCAN_SLOTS cursors, reused oldest first; a cursor
 * that was reused answers "ERR invalid cursor", as does a number this
 * server never handed out.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calypsod.h"
#include "commands.h"

void cd_key_del(cd_client *c, int argc, cd_arg *argv)
{
    long long n = 0;
    for (int i = 1; i < argc; i++) {
        int rc = cd_kv_del(argv[i].p, argv[i].len);
        if (rc < 0) { cd_reply_engine_err(c, rc); return; }
        n += rc;
    }
    cd_reply_int(c, n);
}

/* EXISTS and TOUCH: duplicates count, as in Redis. */
void cd_key_exists(cd_client *c, int argc, cd_arg *argv)
{
    long long n = 0;
    for (int i = 1; i < argc; i++) {
        int rc = cd_kv_exists(argv[i].p, argv[i].len);
        if (rc < 0) { cd_reply_engine_err(c, rc); return; }
        n += rc;
    }
    cd_reply_int(c, n);
}

void cd_key_type(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    int rc = cd_kv_exists(argv[1].p, argv[1].len);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_str(c, rc ? "string" : "none");
}

/* The bytes of a glob pattern before its first special character. */
static size_t cd_key_literal_prefix(const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && p[i] != '*' && p[i] != '?' && p[i] != '[' && p[i] != '\\') i++;
    return i;
}

/* Opens a cursor on the current database (or EXEC's transaction): 1
 * opened, 0 the database was never written (it has no key), <0 error. */
static int cd_key_cursor(calypso_cursor **cur)
{
    int rc;
    if (cd_srv.tx) rc = calypso_txn_cursor_open(cd_srv.tx, cur);
    else if (!cd_srv.cur) return 0;
    else rc = calypso_cursor_open(cd_srv.cur, cur);
    return rc < 0 ? rc : 1;
}

/* >> KEYS */
void cd_key_keys(cd_client *c, int argc, cd_arg *argv)
{
    if (argc > 2) {
        cd_reply_err(c, "wrong number of arguments for 'keys' command");
        return;
    }
    const char *pat = argc == 2 ? argv[1].p : "*";
    size_t plen = argc == 2 ? argv[1].len : 1;
    int all = plen == 1 && pat[0] == '*';
    size_t pre = cd_key_literal_prefix(pat, plen);
    calypso_cursor *cur;
    int rc = cd_key_cursor(&cur);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (rc == 0) { cd_reply_array(c, 0); return; }
    /* The count is known only at the end: build the elements aside. */
    cd_buf items = { 0 };
    long long n = 0;
    cd_client tmp = { 0 };
    tmp.proto = c->proto;
    tmp.fd = -1;
    for (rc = calypso_cursor_seek_prefix(cur, pat, pre); rc == CALYPSO_OK;
         rc = calypso_cursor_next(cur)) {
        const void *k;
        size_t klen;
        if (calypso_cursor_key(cur, &k, &klen) != CALYPSO_OK) continue;
        if (!all && !cd_glob_match(pat, plen, k, klen, 0)) continue;
        cd_reply_bulk(&tmp, k, klen);
        n++;
    }
    calypso_cursor_close(cur);
    items = tmp.out;
    if (rc != CALYPSO_ENOTFOUND || tmp.closed) {
        cd_buf_free(&items);
        cd_reply_engine_err(c, rc == CALYPSO_ENOTFOUND ? CALYPSO_ENOMEM : rc);
        return;
    }
    cd_reply_array(c, n);
    cd_reply_raw(c, items.p, items.len);
    cd_buf_free(&items);
}

/* >> SCAN */
#define CD_SCAN_SLOTS 16384

typedef struct cd_scan_slot {
    uint64_t id;
    char    *key;
    size_t   klen;
} cd_scan_slot;

typedef struct cd_scan_table {
    uint64_t     next_id;
    cd_scan_slot slot[CD_SCAN_SLOTS];
} cd_scan_table;

static cd_scan_table *cd_scan_tab(void)
{
    if (!cd_srv.scans) {
        cd_srv.scans = calloc(1, sizeof *cd_srv.scans);
        if (cd_srv.scans) cd_srv.scans->next_id = 1 + (uint64_t)(cd_now_ms() % 1000) * CD_SCAN_SLOTS;
    }
    return cd_srv.scans;
}

/* Saves key as the resume point of a new cursor; its number, 0 on failure. */
static uint64_t cd_scan_save(const void *k, size_t klen)
{
    cd_scan_table *t = cd_scan_tab();
    if (!t) return 0;
    uint64_t id = t->next_id++;
    cd_scan_slot *s = &t->slot[id % CD_SCAN_SLOTS];
    char *copy = malloc(klen ? klen : 1);
    if (!copy) return 0;
    memcpy(copy, k, klen);
    free(s->key);
    s->id = id;
    s->key = copy;
    s->klen = klen;
    return id;
}

void cd_key_scan(cd_client *c, int argc, cd_arg *argv)
{
    char num[32];
    unsigned long long cursor;
    char *end;
    if (argv[1].len == 0 || argv[1].len >= sizeof num) goto badcursor;
    memcpy(num, argv[1].p, argv[1].len);
    num[argv[1].len] = '\0';
    cursor = strtoull(num, &end, 10);
    if (*end != '\0' || num[0] == '-' || num[0] == ' ') goto badcursor;

    const char *pat = "*";
    size_t plen = 1;
    long long count = 10;
    int want_string = 1;
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) { cd_reply_err(c, "syntax error"); return; }
        if (cd_arg_is(&argv[i], "count")) {
            if (!cd_arg_ll(c, &argv[i + 1], &count)) return;
            if (count < 1) { cd_reply_err(c, "syntax error"); return; }
        } else if (cd_arg_is(&argv[i], "match")) {
            pat = argv[i + 1].p;
            plen = argv[i + 1].len;
        } else if (cd_arg_is(&argv[i], "type")) {
            want_string = cd_arg_is(&argv[i + 1], "string");
        } else {
            cd_reply_err(c, "syntax error");
            return;
        }
    }

    const char *from = NULL;
    size_t fromlen = 0;
    if (cursor != 0) {
        cd_scan_table *t = cd_scan_tab();
        cd_scan_slot *s = t ? &t->slot[cursor % CD_SCAN_SLOTS] : NULL;
        if (!s || s->id != cursor || !s->key) goto badcursor;
        from = s->key;
        fromlen = s->klen;
    }
    int all = plen == 1 && pat[0] == '*';
    size_t pre = cd_key_literal_prefix(pat, plen);

    calypso_cursor *cur;
    int rc = cd_key_cursor(&cur);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (rc == 0) {
        cd_reply_array(c, 2);
        cd_reply_cstr(c, "0");
        cd_reply_array(c, 0);
        return;
    }
    /* Position: the first key after `from`, not before the prefix. */
    if (from && (fromlen > pre ? memcmp(from, pat, pre) >= 0 : memcmp(from, pat, fromlen) > 0)) {
        rc = calypso_cursor_seek(cur, from, fromlen);
        if (rc == CALYPSO_OK) {
            const void *k;
            size_t klen;
            if (calypso_cursor_key(cur, &k, &klen) == CALYPSO_OK && klen == fromlen &&
                memcmp(k, from, klen) == 0)
                rc = calypso_cursor_next(cur);
        }
    } else {
        rc = calypso_cursor_seek(cur, pat, pre);
    }
    cd_client tmp = { 0 };
    tmp.proto = c->proto;
    tmp.fd = -1;
    long long n = 0, seen = 0;
    const void *k = NULL;
    size_t klen = 0;
    for (; rc == CALYPSO_OK && seen < count; rc = calypso_cursor_next(cur)) {
        if (calypso_cursor_key(cur, &k, &klen) != CALYPSO_OK) continue;
        if (klen < pre || memcmp(k, pat, pre) != 0) { rc = CALYPSO_ENOTFOUND; break; }
        seen++;
        if (!want_string) continue;
        if (!all && !cd_glob_match(pat, plen, k, klen, 0)) continue;
        cd_reply_bulk(&tmp, k, klen);
        n++;
    }
    uint64_t next = 0;
    if (rc == CALYPSO_OK) {
        /* stopped on COUNT: is there a key after the last one taken? */
        if (calypso_cursor_key(cur, &k, &klen) == CALYPSO_OK && klen >= pre &&
            memcmp(k, pat, pre) == 0) {
            rc = calypso_cursor_prev(cur);
            if (rc == CALYPSO_OK && calypso_cursor_key(cur, &k, &klen) == CALYPSO_OK)
                next = cd_scan_save(k, klen);
            if (!next) rc = CALYPSO_ENOMEM;
            else rc = CALYPSO_ENOTFOUND;
        } else {
            rc = CALYPSO_ENOTFOUND;
        }
    }
    calypso_cursor_close(cur);
    if (rc != CALYPSO_ENOTFOUND || tmp.closed) {
        cd_buf_free(&tmp.out);
        cd_reply_engine_err(c, rc == CALYPSO_ENOTFOUND ? CALYPSO_ENOMEM : rc);
        return;
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)next);
    cd_reply_array(c, 2);
    cd_reply_cstr(c, num);
    cd_reply_array(c, n);
    cd_reply_raw(c, tmp.out.p, tmp.out.len);
    cd_buf_free(&tmp.out);
    return;
badcursor:
    cd_reply_err(c, "invalid cursor");
}

/* >> RANDOMKEY: a seek to a random point between the first and the last
 * key (their common prefix, then random bytes), the first key after it.
 * Keys in sparse regions of the key space come up more often: not
 * uniform, but O(log n) with no index of its own. */
void cd_key_randomkey(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    calypso_cursor *cur;
    int rc = cd_key_cursor(&cur);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (rc == 0) { cd_reply_null(c); return; }
    char lo[256], probe[264];
    size_t lolen = 0, plen = 0;
    const void *k;
    size_t klen;
    rc = calypso_cursor_first(cur);
    if (rc == CALYPSO_OK && calypso_cursor_key(cur, &k, &klen) == CALYPSO_OK) {
        lolen = klen < sizeof lo ? klen : sizeof lo;
        memcpy(lo, k, lolen);
        if (calypso_cursor_last(cur) == CALYPSO_OK &&
            calypso_cursor_key(cur, &k, &klen) == CALYPSO_OK) {
            const unsigned char *hi = k;
            size_t cp = 0;
            while (cp < lolen && cp < klen && (unsigned char)lo[cp] == hi[cp]) cp++;
            memcpy(probe, lo, cp);
            plen = cp;
            unsigned a = cp < lolen ? (unsigned char)lo[cp] : 0;
            unsigned b = cp < klen ? hi[cp] : 255;
            if (b < a) b = a;
            probe[plen++] = (char)(a + (unsigned)random() % (b - a + 1));
            for (int i = 0; i < 6; i++) probe[plen++] = (char)(random() & 0xff);
        }
        rc = calypso_cursor_seek(cur, probe, plen);
        if (rc == CALYPSO_ENOTFOUND) rc = calypso_cursor_first(cur);
    }
    if (rc == CALYPSO_OK && calypso_cursor_key(cur, &k, &klen) == CALYPSO_OK)
        cd_reply_bulk(c, k, klen);
    else if (rc == CALYPSO_ENOTFOUND)
        cd_reply_null(c);
    else
        cd_reply_engine_err(c, rc);
    calypso_cursor_close(cur);
}

/* A database index argument (SELECT, MOVE, COPY DB) with Redis's error
 * replies: its index, or -1 after replying. */
int cd_key_check_db(cd_client *c, const cd_arg *a);
int cd_key_check_db(cd_client *c, const cd_arg *a)
{
    int idx;
    int ok = cd_db_parse(a, &idx);
    if (ok < 0) cd_reply_err(c, "value is not an integer or out of range");
    else if (ok == 0) cd_reply_err(c, "DB index is out of range");
    return ok > 0 ? idx : -1;
}

/* Copies key of the current database to dkey of database dst, value and
 * expiry, unless dkey exists there and !replace; with move, deletes key
 * afterwards. The current database is the same on return. Replies
 * nothing; 1 copied, 0 key missing or dkey in the way, <0 engine error.
 * Inside a transaction every database it reaches must exist already
 * (cd_db_use). */
static int cd_key_transfer(const cd_arg *key, const cd_arg *dkey, int dst, int replace, int move)
{
    int src = cd_srv.cur_idx;
    void *v;
    size_t n;
    uint64_t at = 0;
    int rc = cd_kv_get(key, &v, &n);
    if (rc <= 0) return rc;
    rc = cd_kv_expiry(key, &at);
    if (rc > 0) rc = cd_db_use(dst);
    if (rc >= 0) rc = cd_kv_exists(dkey->p, dkey->len);
    if (rc == 0 || (rc > 0 && replace)) {
        rc = cd_kv_put(dkey->p, dkey->len, v, n, at);
        if (rc >= 0) rc = 1;
    } else if (rc > 0) {
        rc = 0;
    }
    calypso_free(v);
    int urc = cd_db_use(src);
    if (rc > 0 && urc < 0) rc = urc;
    if (rc > 0 && move) {
        int drc = cd_kv_del(key->p, key->len);
        if (drc < 0) rc = drc;
    }
    return rc;
}

/* >> RENAME, RENAMENX, COPY, MOVE */
static void cd_key_rename_generic(cd_client *c, cd_arg *argv, int nx)
{
    int rc = cd_kv_exists(argv[1].p, argv[1].len);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (!rc) { cd_reply_err(c, "no such key"); return; }
    if (argv[1].len == argv[2].len && memcmp(argv[1].p, argv[2].p, argv[1].len) == 0) {
        if (nx) cd_reply_int(c, 0);
        else cd_reply_ok(c);
        return;
    }
    rc = cd_key_transfer(&argv[1], &argv[2], cd_srv.cur_idx, !nx, 1);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (nx) cd_reply_int(c, rc);
    else cd_reply_ok(c);
}

void cd_key_rename(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_key_rename_generic(c, argv, 0);
}

void cd_key_renamenx(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    cd_key_rename_generic(c, argv, 1);
}

void cd_key_copy(cd_client *c, int argc, cd_arg *argv)
{
    int replace = 0, dst = cd_srv.cur_idx;
    for (int i = 3; i < argc; i++) {
        if (cd_arg_is(&argv[i], "replace")) {
            replace = 1;
        } else if (cd_arg_is(&argv[i], "db") && i + 1 < argc) {
            if ((dst = cd_key_check_db(c, &argv[++i])) < 0) return;
        } else {
            cd_reply_err(c, "syntax error");
            return;
        }
    }
    if (dst == cd_srv.cur_idx && argv[1].len == argv[2].len &&
        memcmp(argv[1].p, argv[2].p, argv[1].len) == 0) {
        cd_reply_err(c, "source and destination objects are the same");
        return;
    }
    /* the target is created only when there is something to copy, and
     * before a transaction of EXEC's (multi.c creates it then) */
    int rc = cd_kv_exists(argv[1].p, argv[1].len);
    if (rc > 0 && !cd_srv.tx) {
        int crc = cd_db_create(dst);
        if (crc < 0) rc = crc;
    }
    if (rc > 0) rc = cd_key_transfer(&argv[1], &argv[2], dst, replace, 0);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, rc);
}

/* MOVE key db: atomic across the two databases: the put in the target and
 * the delete in the source commit as one engine batch (an update
 * transaction moved between the two namespaces; inside EXEC, EXEC's own). */
void cd_key_move(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    int dst = cd_key_check_db(c, &argv[2]);
    if (dst < 0) return;
    if (dst == cd_srv.cur_idx) {
        cd_reply_err(c, "source and destination objects are the same");
        return;
    }
    int rc = cd_kv_exists(argv[1].p, argv[1].len);
    if (rc <= 0) {
        if (rc < 0) cd_reply_engine_err(c, rc);
        else cd_reply_int(c, 0);
        return;
    }
    if (cd_srv.tx) {
        rc = cd_key_transfer(&argv[1], &argv[1], dst, 0, 1);
        if (rc < 0) cd_reply_engine_err(c, rc);
        else cd_reply_int(c, rc);
        return;
    }
    rc = cd_db_create(dst);
    calypso_txn *tx = NULL;
    if (rc >= 0) rc = calypso_update_begin(cd_srv.db, &tx);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_srv.tx = tx;
    rc = cd_db_use(cd_srv.cur_idx);   /* the transaction starts in the source */
    if (rc >= 0) rc = cd_key_transfer(&argv[1], &argv[1], dst, 0, 1);
    cd_srv.tx = NULL;
    if (rc > 0) {
        rc = calypso_txn_commit(tx);
        if (rc == CALYPSO_OK) rc = 1;
    } else {
        calypso_txn_rollback(tx);
    }
    if (rc < 0) cd_reply_engine_err(c, rc);
    else cd_reply_int(c, rc);
}

/* SWAPDB: Redis swaps two in-memory tables; here a database is a
 * namespace on disk and swapping two is not one atomic step of the engine,
 * so it is refused rather than done halfway. */
void cd_key_swapdb(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    if (cd_key_check_db(c, &argv[1]) < 0 || cd_key_check_db(c, &argv[2]) < 0) return;
    cd_reply_err(c, "SWAPDB is not supported by calypsod: its databases are namespaces on disk "
                    "and cannot be swapped atomically");
}

/* >> expiry */
enum { CD_EXP_NX = 1, CD_EXP_XX = 2, CD_EXP_GT = 4, CD_EXP_LT = 8 };

static void cd_key_expire_generic(cd_client *c, int argc, cd_arg *argv, int64_t base,
                                  int unit_s, const char *name)
{
    int flags = 0;
    for (int j = 3; j < argc; j++) {
        if (cd_arg_is(&argv[j], "nx")) flags |= CD_EXP_NX;
        else if (cd_arg_is(&argv[j], "xx")) flags |= CD_EXP_XX;
        else if (cd_arg_is(&argv[j], "gt")) flags |= CD_EXP_GT;
        else if (cd_arg_is(&argv[j], "lt")) flags |= CD_EXP_LT;
        else {
            size_t n = strnlen(argv[j].p, argv[j].len);
            cd_reply_errf(c, "Unsupported option %.*s", (int)(n > 128 ? 128 : n), argv[j].p);
            return;
        }
    }
    if ((flags & CD_EXP_NX) && (flags & (CD_EXP_XX | CD_EXP_GT | CD_EXP_LT))) {
        cd_reply_err(c, "NX and XX, GT or LT options at the same time are not compatible");
        return;
    }
    if ((flags & CD_EXP_GT) && (flags & CD_EXP_LT)) {
        cd_reply_err(c, "GT and LT options at the same time are not compatible");
        return;
    }
    long long when;
    if (!cd_arg_ll(c, &argv[2], &when)) return;
    if (unit_s) {
        if (when > LLONG_MAX / 1000 || when < LLONG_MIN / 1000) goto invalid;
        when *= 1000;
    }
    if (when > LLONG_MAX - base) goto invalid;
    when += base;

    void *v;
    size_t n;
    uint64_t cur_at;
    int rc = cd_kv_get(&argv[1], &v, &n);
    if (rc > 0) rc = cd_kv_expiry(&argv[1], &cur_at);
    if (rc <= 0) {
        calypso_free(v);
        if (rc < 0) cd_reply_engine_err(c, rc);
        else cd_reply_int(c, 0);
        return;
    }
    long long cur = cur_at ? (long long)cur_at : -1;
    if (((flags & CD_EXP_NX) && cur != -1) || ((flags & CD_EXP_XX) && cur == -1) ||
        ((flags & CD_EXP_GT) && (when <= cur || cur == -1)) ||
        ((flags & CD_EXP_LT) && cur != -1 && when >= cur)) {
        calypso_free(v);
        cd_reply_int(c, 0);
        return;
    }
    if (when <= cd_now_ms()) rc = cd_kv_del(argv[1].p, argv[1].len);
    else rc = cd_kv_put(argv[1].p, argv[1].len, v, n, (uint64_t)when);
    calypso_free(v);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, 1);
    return;
invalid:
    cd_reply_errf(c, "invalid expire time in '%s' command", name);
}

void cd_key_expire(cd_client *c, int argc, cd_arg *argv)
{
    cd_key_expire_generic(c, argc, argv, cd_now_ms(), 1, "expire");
}

void cd_key_pexpire(cd_client *c, int argc, cd_arg *argv)
{
    cd_key_expire_generic(c, argc, argv, cd_now_ms(), 0, "pexpire");
}

void cd_key_expireat(cd_client *c, int argc, cd_arg *argv)
{
    cd_key_expire_generic(c, argc, argv, 0, 1, "expireat");
}

void cd_key_pexpireat(cd_client *c, int argc, cd_arg *argv)
{
    cd_key_expire_generic(c, argc, argv, 0, 0, "pexpireat");
}

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME: -2 missing, -1 no expiry. */
static void cd_key_ttl_generic(cd_client *c, const cd_arg *key, int ms, int absolute)
{
    uint64_t at;
    int rc = cd_kv_expiry(key, &at);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (rc == 0) { cd_reply_int(c, -2); return; }
    if (at == 0) { cd_reply_int(c, -1); return; }
    long long v = (long long)at;
    if (!absolute) {
        v -= cd_now_ms();
        if (v < 0) v = 0;
        cd_reply_int(c, ms ? v : (v + 500) / 1000);
    } else {
        cd_reply_int(c, ms ? v : v / 1000);
    }
}

void cd_key_ttl(cd_client *c, int argc, cd_arg *argv) { (void)argc; cd_key_ttl_generic(c, &argv[1], 0, 0); }
void cd_key_pttl(cd_client *c, int argc, cd_arg *argv) { (void)argc; cd_key_ttl_generic(c, &argv[1], 1, 0); }
void cd_key_expiretime(cd_client *c, int argc, cd_arg *argv) { (void)argc; cd_key_ttl_generic(c, &argv[1], 0, 1); }
void cd_key_pexpiretime(cd_client *c, int argc, cd_arg *argv) { (void)argc; cd_key_ttl_generic(c, &argv[1], 1, 1); }

void cd_key_persist(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    void *v;
    size_t n;
    uint64_t at = 0;
    int rc = cd_kv_get(&argv[1], &v, &n);
    if (rc > 0) rc = cd_kv_expiry(&argv[1], &at);
    if (rc > 0 && at) rc = cd_kv_put(argv[1].p, argv[1].len, v, n, 0) < 0 ? -1 : 1;
    calypso_free(v);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_reply_int(c, rc > 0 && at ? 1 : 0);
}

/* >> OBJECT: what Redis would answer for a string of this shape. */
void cd_key_object(cd_client *c, int argc, cd_arg *argv)
{
    if (cd_arg_is(&argv[1], "help")) {
        cd_reply_array(c, 4);
        cd_reply_str(c, "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:");
        cd_reply_str(c, "ENCODING <key>");
        cd_reply_str(c, "IDLETIME <key>");
        cd_reply_str(c, "REFCOUNT <key>");
        return;
    }
    int enc = cd_arg_is(&argv[1], "encoding"), idle = cd_arg_is(&argv[1], "idletime"),
        ref = cd_arg_is(&argv[1], "refcount");
    if (!enc && !idle && !ref) {
        cd_reply_errf(c, "unknown subcommand '%.*s'. Try OBJECT HELP.",
                      (int)(argv[1].len > 128 ? 128 : argv[1].len), argv[1].p);
        return;
    }
    if (argc != 3) {
        cd_reply_errf(c, "wrong number of arguments for 'object|%s' command",
                      enc ? "encoding" : idle ? "idletime" : "refcount");
        return;
    }
    void *v;
    size_t n;
    int rc = cd_kv_get(&argv[2], &v, &n);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    if (rc == 0) { cd_reply_null(c); return; }
    long long ll;
    if (enc) cd_reply_cstr(c, n <= 20 && cd_str2ll(v, n, &ll) ? "int" : n <= 44 ? "embstr" : "raw");
    else cd_reply_int(c, ref ? 1 : 0);
    calypso_free(v);
}

void cd_key_dbsize(cd_client *c, int argc, cd_arg *argv)
{
    (void)argc;
    (void)argv;
    cd_reply_int(c, cd_srv.cur ? (long long)calypso_len(cd_srv.cur) : 0);
}

static int cd_key_flush_args(cd_client *c, int argc, cd_arg *argv)
{
    if (argc > 2 || (argc == 2 && !cd_arg_is(&argv[1], "async") && !cd_arg_is(&argv[1], "sync"))) {
        cd_reply_err(c, "syntax error");
        return 0;
    }
    return 1;
}

static int cd_key_flush_one(int idx)
{
    calypso *h = cd_db_handle(idx);
    return h ? calypso_delete_all(h) : CALYPSO_OK;
}

void cd_key_flushdb(cd_client *c, int argc, cd_arg *argv)
{
    if (!cd_key_flush_args(c, argc, argv)) return;
    cd_watch_touch_all(cd_srv.cur_idx);
    int rc = cd_key_flush_one(cd_srv.cur_idx);
    if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    cd_srv.dirty = 1;
    cd_srv.dirty_since_save++;
    cd_reply_ok(c);
}

/* FLUSHALL: every database calypsod serves (namespaces of other programs
 * are not its to clear). */
void cd_key_flushall(cd_client *c, int argc, cd_arg *argv)
{
    if (!cd_key_flush_args(c, argc, argv)) return;
    cd_watch_touch_all(-1);
    for (int i = 0; i < cd_srv.databases; i++) {
        int rc = cd_key_flush_one(i);
        if (rc < 0) { cd_reply_engine_err(c, rc); return; }
    }
    cd_srv.dirty = 1;
    cd_srv.dirty_since_save++;
    cd_reply_ok(c);
}
