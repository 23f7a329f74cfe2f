/*
 * fuzz_open.c: libFuzzer target: open a database directory whose files hold
 * the fuzzer's bytes.
 *
 * The input is split at every "CYSP" into parts. Part 0 is option flags
 * (bit 0 auto_recovery, bit 1 read_only, bit 2 write and merge after open,
 * bit 3 max_open_files 1); parts 1.. become, in order, the files of
 * fz_files[] below (a part that is absent or empty makes no file). Then
 * calypso_open must return an error or a handle; with a handle, every key a
 * fold yields must answer get (with a value or a clean error), and with bit
 * 2 a put, a merge and a reopen must keep that put. Never a crash, an
 * out-of-bounds read (ASan), undefined behaviour (UBSan) or a leak.
 */
#include "fuzz_util.h"
#include "calypso.h"

static const char *const fz_files[] = {
    "META",
    "0000000001.data", "0000000001.hint",
    "0000000002.data", "0000000002.hint",
    "0000000003.data",
    "1073741824.data", "1073741824.hint",
    "merge/COMMIT", "merge/1073741825.data", "merge/1073741825.hint",
};
#define FZ_NFILES (sizeof fz_files / sizeof *fz_files)

typedef struct fz_keys {
    uint8_t *buf;
    size_t   len, cap, n;
} fz_keys;

static int fz_collect(const void *key, size_t klen, void *ctx)
{
    fz_keys *k = ctx;
    if (k->n >= 4096) return 1;                     /* enough */
    if (k->len + klen + 2 > k->cap) {
        size_t nc = (k->cap + klen + 2) * 2;
        uint8_t *p = realloc(k->buf, nc);
        if (!p) return 1;
        k->buf = p;
        k->cap = nc;
    }
    k->buf[k->len++] = (uint8_t)(klen >> 8);
    k->buf[k->len++] = (uint8_t)klen;
    memcpy(k->buf + k->len, key, klen);
    k->len += klen;
    k->n++;
    return 0;
}

static void fz_write(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (strncmp(name, "merge/", 6) == 0) {
        char sub[512];
        snprintf(sub, sizeof sub, "%s/merge", dir);
        mkdir(sub, 0755);
    }
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (n && fwrite(p, 1, n, f) != n) abort();
    fclose(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/db", fz_scratch());
    fz_rmtree(dir);
    mkdir(dir, 0755);

    /* Split at "CYSP". */
    const uint8_t *part = data, *end = data + size;
    uint8_t flags = 0;
    for (size_t idx = 0; part <= end; idx++) {
        const uint8_t *sep = part;
        while (sep + 4 <= end && memcmp(sep, "CYSP", 4) != 0) sep++;
        if (sep + 4 > end) sep = end;
        size_t n = (size_t)(sep - part);
        if (idx == 0) flags = n ? part[0] : 0;
        else if (idx - 1 < FZ_NFILES && n) fz_write(dir, fz_files[idx - 1], part, n);
        if (sep == end) break;
        part = sep + 4;
    }

    calypso_options o = { 0 };
    o.auto_recovery = flags & 1;
    o.read_only = (flags >> 1) & 1;
    o.max_open_files = flags & 8 ? 1 : 0;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    o.max_datafile_size = 64 << 10;
    calypso *db = NULL;
    int rc = calypso_open(dir, &o, &db);
    if (rc != CALYPSO_OK) {
        FZ_CHECK(db == NULL, "failed open left a handle");
        FZ_CHECK(calypso_errmsg(NULL)[0], "open failed (%d) with no message", rc);
        return 0;
    }
    fz_keys keys = { 0 };
    rc = calypso_fold(db, fz_collect, &keys);
    FZ_CHECK(rc == CALYPSO_OK || rc == 1, "fold: %d %s", rc, calypso_errmsg(db));
    for (size_t at = 0, i = 0; i < keys.n; i++) {
        size_t klen = ((size_t)keys.buf[at] << 8) | keys.buf[at + 1];
        const uint8_t *k = keys.buf + at + 2;
        at += 2 + klen;
        void *v = NULL;
        size_t vlen = 0;
        rc = calypso_get(db, k, klen, &v, &vlen);
        FZ_CHECK(rc == CALYPSO_OK || rc == CALYPSO_ECHECKSUM || rc == CALYPSO_ECORRUPT ||
                 rc == CALYPSO_EEXPIRED || rc == CALYPSO_ENOTFOUND || rc == CALYPSO_EIO ||
                 rc == CALYPSO_EKEYTOOLARGE,
                 "get of a listed key: %d %s", rc, calypso_errmsg(db));
        if (rc == CALYPSO_OK) FZ_CHECK(v != NULL, "get OK without a buffer");
        calypso_free(v);
    }
    free(keys.buf);
    (void)calypso_len(db);
    if ((flags & 4) && !o.read_only) {
        rc = calypso_put(db, "fuzz-probe", 10, "v", 1);
        int mrc = calypso_merge(db);
        (void)mrc;
        if (rc == CALYPSO_OK && calypso_reopen(db) == CALYPSO_OK) {
            void *v = NULL;
            size_t vlen = 0;
            int grc = calypso_get(db, "fuzz-probe", 10, &v, &vlen);
            FZ_CHECK(grc == CALYPSO_OK && vlen == 1 && memcmp(v, "v", 1) == 0,
                     "a put acknowledged on a fuzzed database is lost: %d %s", grc,
                     calypso_errmsg(db));
            calypso_free(v);
        }
    }
    calypso_close(db);
    return 0;
}
