/*
 * crash_util.h: what the reliability tests (test_faults, test_powerloss,
 * test_crash) share:
 *
 * - a model of the database: keys "k000000".."k<n-1>" (plus the probe key
 *   "probe" in slot n), each with the version of its acknowledged value (0:
 *   absent) and at most one possibly-in-flight alternative (an operation
 *   that returned an error or was cut by a crash, which may or may not have
 *   landed);
 * - values derived from (key, version): self-describing (version and key
 *   index in the first 8 bytes, the rest a keyed stream), of a length
 *   derived from both, so that any value read back can be checked whole;
 * - cu_verify: reads every key back (get, and a fold for keys that must not
 *   exist) and checks it against the model; the alternatives it sees become
 *   the model's truth;
 * - scratch directories (tmpfs when available: these tests are about
 *   logic, not disk speed), copying and removing directory trees.
 *
 * Only libc, cmocka's testutil.h and the public calypso.h.
 */
#ifndef CY_CRASH_UTIL_H
#define CY_CRASH_UTIL_H

#include "testutil.h"
#include "calypso.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#define CU_DEL      0u            /* version meaning "absent"               */
#define CU_NONE     UINT32_MAX    /* no alternative                         */
#define CU_MAXVAL   1500u         /* longest generated value                */

typedef struct cu_key {
    uint32_t ver;    /* acknowledged version, CU_DEL when absent           */
    uint32_t alt;    /* possibly-in-flight version (CU_DEL: a delete),
                        CU_NONE when there is none                          */
} cu_key;

typedef struct cu_model {
    uint32_t n;      /* keys 0..n-1, and the probe in slot n               */
    cu_key  *k;
} cu_model;

static inline void cu_model_init(cu_model *m, uint32_t n)
{
    m->n = n;
    m->k = calloc((size_t)n + 1, sizeof *m->k);
    assert_non_null(m->k);
    for (uint32_t i = 0; i <= n; i++) m->k[i].alt = CU_NONE;
}

static inline void cu_model_copy(cu_model *dst, const cu_model *src)
{
    cu_model_init(dst, src->n);
    memcpy(dst->k, src->k, ((size_t)src->n + 1) * sizeof *src->k);
}

static inline void cu_model_free(cu_model *m)
{
    free(m->k);
    m->k = NULL;
}

/* Key i's bytes ("probe" for i == n). Returns the length. */
static inline size_t cu_key_of(const cu_model *m, uint32_t i, char *out)
{
    if (i == m->n) {
        memcpy(out, "probe", 5);
        return 5;
    }
    return (size_t)snprintf(out, 16, "k%06u", i);
}

/* -1 if key is not one of the model's. */
static inline int64_t cu_index_of(const cu_model *m, const void *key, size_t klen)
{
    const char *k = key;
    if (klen == 5 && memcmp(k, "probe", 5) == 0) return m->n;
    if (klen != 7 || k[0] != 'k') return -1;
    uint32_t v = 0;
    for (int i = 1; i < 7; i++) {
        if (k[i] < '0' || k[i] > '9') return -1;
        v = v * 10 + (uint32_t)(k[i] - '0');
    }
    return v < m->n ? (int64_t)v : -1;
}

static inline uint64_t cu_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

static inline size_t cu_val_len(uint32_t key, uint32_t ver)
{
    return 8 + (size_t)(cu_mix(((uint64_t)key << 32) | ver) % (CU_MAXVAL - 8));
}

/* Value of (key, ver) into out (CU_MAXVAL bytes); returns its length. */
static inline size_t cu_val_of(uint32_t key, uint32_t ver, uint8_t *out)
{
    size_t n = cu_val_len(key, ver);
    memcpy(out, &ver, 4);
    memcpy(out + 4, &key, 4);
    uint64_t s = ((uint64_t)key << 32) ^ ver ^ 0x5eedull;
    for (size_t i = 8; i < n; i++) {
        if ((i & 7) == 0) s = cu_mix(s + i);
        out[i] = (uint8_t)(s >> (8 * (i & 7)));
    }
    return n;
}

/* The version a value read back for key claims, or CU_NONE when it is not
 * a whole, genuine value of that key. */
static inline uint32_t cu_val_check(uint32_t key, const uint8_t *v, size_t vlen)
{
    uint32_t ver, k;
    if (vlen < 8) return CU_NONE;
    memcpy(&ver, v, 4);
    memcpy(&k, v + 4, 4);
    if (k != key || ver == CU_DEL || ver == CU_NONE || vlen != cu_val_len(key, ver))
        return CU_NONE;
    uint8_t want[CU_MAXVAL];
    cu_val_of(key, ver, want);
    return memcmp(want, v, vlen) == 0 ? ver : CU_NONE;
}

typedef struct cu_fold_ctx {
    const cu_model *m;
    uint64_t        seen;
    char           *why;
    size_t          cap;
    int             bad;
} cu_fold_ctx;

static inline int cu_fold_fn(const void *key, size_t klen, void *ctx)
{
    cu_fold_ctx *c = ctx;
    int64_t i = cu_index_of(c->m, key, klen);
    c->seen++;
    if (i < 0 && !c->bad) {
        snprintf(c->why, c->cap, "fold found a key never written (%zu bytes: %.*s)", klen,
                 (int)(klen < 40 ? klen : 40), (const char *)key);
        c->bad = 1;
    }
    return 0;
}

/* Checks db against m: each key holds its acknowledged version or its
 * alternative (whichever it holds becomes the acknowledged one), every get
 * verifies, a fold sees exactly the present keys. With strict, there are no
 * alternatives to allow. Returns 0, or -1 with the reason in why. */
static inline int cu_verify(calypso *db, cu_model *m, char *why, size_t cap)
{
    uint64_t present = 0;
    for (uint32_t i = 0; i <= m->n; i++) {
        char k[16];
        size_t klen = cu_key_of(m, i, k);
        void *v = NULL;
        size_t vlen = 0;
        int rc = calypso_get(db, k, klen, &v, &vlen);
        uint32_t got;
        if (rc == CALYPSO_OK) {
            got = cu_val_check(i, v, vlen);
            calypso_free(v);
            if (got == CU_NONE) {
                snprintf(why, cap, "key %.*s: value of %zu bytes is not one that was written",
                         (int)klen, k, vlen);
                return -1;
            }
            present++;
        } else if (rc == CALYPSO_ENOTFOUND) {
            got = CU_DEL;
        } else {
            snprintf(why, cap, "get %.*s: %s (%s)", (int)klen, k, calypso_strerror(rc),
                     calypso_errmsg(db));
            return -1;
        }
        cu_key *e = &m->k[i];
        if (got != e->ver && got != e->alt) {
            if (e->alt == CU_NONE)
                snprintf(why, cap, "key %.*s: found version %u, acknowledged %u", (int)klen, k,
                         got, e->ver);
            else
                snprintf(why, cap, "key %.*s: found version %u, acknowledged %u, in flight %u",
                         (int)klen, k, got, e->ver, e->alt);
            return -1;
        }
        e->ver = got;
        e->alt = CU_NONE;
    }
    cu_fold_ctx c = { m, 0, why, cap, 0 };
    int rc = calypso_fold(db, cu_fold_fn, &c);
    if (c.bad) return -1;
    if (rc != CALYPSO_OK) {
        snprintf(why, cap, "fold: %s (%s)", calypso_strerror(rc), calypso_errmsg(db));
        return -1;
    }
    if (c.seen != present || calypso_len(db) != present) {
        snprintf(why, cap, "fold saw %llu keys, len says %llu, gets found %llu",
                 (unsigned long long)c.seen, (unsigned long long)calypso_len(db),
                 (unsigned long long)present);
        return -1;
    }
    return 0;
}

/* Writes version ver of key i (ttl_ms 0: no expiry). */
static inline int cu_put(calypso *db, const cu_model *m, uint32_t i, uint32_t ver,
                         uint64_t ttl_ms)
{
    char k[16];
    uint8_t v[CU_MAXVAL];
    size_t klen = cu_key_of(m, i, k);
    size_t vlen = cu_val_of(i, ver, v);
    return calypso_put_ttl(db, k, klen, v, vlen, ttl_ms);
}

static inline int cu_del(calypso *db, const cu_model *m, uint32_t i)
{
    char k[16];
    size_t klen = cu_key_of(m, i, k);
    return calypso_delete(db, k, klen);
}

// >> directories --------------------------------------------------------------

/* A fresh scratch directory: under $CALYPSO_TEST_DIR, else /dev/shm when it
 * is there, else $TMPDIR or /tmp. Free with cu_rmrf. */
static inline char *cu_scratch(void)
{
    const char *base = getenv("CALYPSO_TEST_DIR");
    if (!base || !*base) base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
    if (!base) return tu_tmpdir();
    size_t n = strlen(base) + 32;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/calypso-rel-XXXXXX", base);
    if (!mkdtemp(p)) {
        free(p);
        return tu_tmpdir();
    }
    return p;
}

/* rm -rf path (not freeing it). */
static inline void cu_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[4096];
            int n = snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof p) cu_rmtree(p);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static inline void cu_rmrf(char *path)
{
    if (!path) return;
    cu_rmtree(path);
    free(path);
}

static inline int cu_copy_file(const char *from, const char *to)
{
    int in = open(from, O_RDONLY), out = -1, rc = -1;
    if (in < 0) return -1;
    if ((out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644)) >= 0) {
        char buf[65536];
        ssize_t n;
        rc = 0;
        while ((n = read(in, buf, sizeof buf)) > 0)
            if (write(out, buf, (size_t)n) != n) { rc = -1; break; }
        if (n < 0) rc = -1;
        close(out);
    }
    close(in);
    return rc;
}

/* cp -r from to (to must not exist). */
static inline int cu_copy_tree(const char *from, const char *to)
{
    if (mkdir(to, 0755) < 0) return -1;
    DIR *d = opendir(from);
    if (!d) return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char a[4096], b[4096];
        struct stat st;
        int na = snprintf(a, sizeof a, "%s/%s", from, e->d_name);
        int nb = snprintf(b, sizeof b, "%s/%s", to, e->d_name);
        if (na < 0 || nb < 0 || (size_t)na >= sizeof a || (size_t)nb >= sizeof b) return -1;
        if (lstat(a, &st) < 0) continue;
        rc = S_ISDIR(st.st_mode) ? cu_copy_tree(a, b) : cu_copy_file(a, b);
    }
    closedir(d);
    return rc;
}

/* Number of entries in a directory whose name ends with suffix. */
static inline int cu_count_files(const char *dir, const char *suffix)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int n = 0;
    size_t sl = strlen(suffix);
    while ((e = readdir(d))) {
        size_t l = strlen(e->d_name);
        if (l >= sl && strcmp(e->d_name + l - sl, suffix) == 0) n++;
    }
    closedir(d);
    return n;
}

/* A multiplier for the size of randomized loops: CALYPSO_TEST_SCALE
 * (percent, default 100); `make valgrind` sets it low. */
static inline uint64_t cu_scaled(uint64_t n)
{
    const char *e = getenv("CALYPSO_TEST_SCALE");
    uint64_t pct = e && *e ? strtoull(e, NULL, 10) : 100;
    uint64_t r = n * pct / 100;
    return r ? r : 1;
}

#endif
