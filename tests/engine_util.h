/*
 * engine_util.h: helpers shared by the engine's test binaries (test_api,
 * test_model, test_recovery, test_concurrency, test_process). Only libc and
 * the public calypso.h: test_api links the amalgamation and must not see
 * internals.
 *
 * - EU_OK(db, expr): asserts expr returns CALYPSO_OK and, when it does not,
 *   prints the code, its name and calypso_errmsg(db) first;
 * - files of a database directory: paths of datafiles and hint files, the
 *   newest fid, sizes, byte flips, truncation, copying a directory;
 * - key collection for walks (fold/scan/range) into an ordered list;
 * - deterministic values derived from a key and a version, self-describing
 *   so that a reader can check any value it sees;
 * - running this same binary as a child process (fork + exec of
 *   /proc/self/exe), which stays clean under TSan, unlike a bare fork of a
 *   process with threads.
 */
#ifndef CY_ENGINE_UTIL_H
#define CY_ENGINE_UTIL_H

#include "testutil.h"
#include "calypso.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#define EU_OK TU_OK
#define EU_RC TU_RC

/* Opens path with opts (NULL: defaults), asserting success. */
static inline calypso *eu_open(const char *path, const calypso_options *opts)
{
    calypso *db = NULL;
    int rc = calypso_open(path, opts, &db);
    if (rc != CALYPSO_OK)
        print_error("calypso_open(%s) -> %d (%s): %s\n", path, rc,
                    calypso_strerror(rc), calypso_errmsg(NULL));
    assert_int_equal(rc, CALYPSO_OK);
    assert_non_null(db);
    return db;
}

static inline void eu_close(calypso *db)
{
    EU_OK(NULL, calypso_close(db));
}

static inline void eu_put_str(calypso *db, const char *k, const char *v)
{
    EU_OK(db, calypso_put(db, k, strlen(k), v, strlen(v)));
}

/* Asserts key holds exactly val/vlen, through get and get_buf. */
static inline void eu_expect(calypso *db, const void *key, size_t klen,
                             const void *val, size_t vlen)
{
    void *got = NULL;
    size_t glen = 12345;
    int rc = calypso_get(db, key, klen, &got, &glen);
    if (rc != CALYPSO_OK)
        print_error("get of a %zu-byte key -> %d (%s): %s\n", klen, rc,
                    calypso_strerror(rc), calypso_errmsg(db));
    assert_int_equal(rc, CALYPSO_OK);
    assert_non_null(got);
    assert_int_equal(glen, vlen);
    if (vlen) assert_memory_equal(got, val, vlen);
    calypso_free(got);
}

static inline void eu_expect_str(calypso *db, const char *k, const char *v)
{
    eu_expect(db, k, strlen(k), v, strlen(v));
}

/* Asserts get of key fails with want, *val NULL and *vlen 0. */
static inline void eu_expect_rc(calypso *db, const void *key, size_t klen, int want)
{
    void *got = (void *)&got;
    size_t glen = 777;
    int rc = calypso_get(db, key, klen, &got, &glen);
    if (rc != want)
        print_error("get of a %zu-byte key -> %d (%s), want %d (%s)\n", klen,
                    rc, calypso_strerror(rc), want, calypso_strerror(want));
    assert_int_equal(rc, want);
    assert_null(got);
    assert_int_equal(glen, 0);
}

static inline void eu_expect_absent_str(calypso *db, const char *k)
{
    eu_expect_rc(db, k, strlen(k), CALYPSO_ENOTFOUND);
}

// >> files -------------------------------------------------------------------

static inline void eu_path(char *buf, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(buf, cap, "%s/%s", dir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

static inline void eu_fid_path(char *buf, size_t cap, const char *dir,
                               unsigned fid, const char *ext)
{
    int n = snprintf(buf, cap, "%s/%010u.%s", dir, fid, ext);
    assert_true(n > 0 && (size_t)n < cap);
}

/* Size of a file, -1 if it does not exist. */
static inline int64_t eu_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    return (int64_t)st.st_size;
}

static inline int eu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Returns 1 and the fid if name is "%010u.<ext>". */
static inline int eu_parse_fid(const char *name, const char *ext, unsigned *fid)
{
    size_t el = strlen(ext);
    if (strlen(name) != 11 + el) return 0;
    for (int i = 0; i < 10; i++)
        if (name[i] < '0' || name[i] > '9') return 0;
    if (name[10] != '.' || strcmp(name + 11, ext) != 0) return 0;
    *fid = (unsigned)strtoul(name, NULL, 10);
    return 1;
}

/* Fids of the files "%010u.<ext>" in dir, sorted ascending, into fids (at
 * most cap); returns how many there are. */
static inline int eu_list_fids(const char *dir, const char *ext, unsigned *fids, int cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned fid;
        if (!eu_parse_fid(e->d_name, ext, &fid)) continue;
        if (n < cap) fids[n] = fid;
        n++;
    }
    closedir(d);
    int m = n < cap ? n : cap;
    for (int i = 1; i < m; i++)           /* insertion sort: few files */
        for (int j = i; j > 0 && fids[j - 1] > fids[j]; j--) {
            unsigned t = fids[j]; fids[j] = fids[j - 1]; fids[j - 1] = t;
        }
    return n;
}

/* The highest datafile fid in dir (the active file), 0 if none. */
static inline unsigned eu_newest_fid(const char *dir)
{
    unsigned fids[4096];
    int n = eu_list_fids(dir, "data", fids, 4096);
    assert_true(n <= 4096);
    return n ? fids[n - 1] : 0;
}

static inline int64_t eu_fid_size(const char *dir, unsigned fid, const char *ext)
{
    char p[1024];
    eu_fid_path(p, sizeof p, dir, fid, ext);
    return eu_file_size(p);
}

static inline void eu_truncate(const char *path, int64_t size)
{
    assert_int_equal(truncate(path, (off_t)size), 0);
}

/* XORs the byte at off with mask (non-zero). */
static inline void eu_flip_byte(const char *path, int64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* Reads a whole file into a malloc'd, NUL-terminated buffer. */
static inline char *eu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    size_t r;
    while ((r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = 0;
    if (len) *len = n;
    return buf;
}

static inline void eu_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (len) assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Empties dst (which must exist) and copies every regular file of src into
 * it. Database directories are flat. */
static inline void eu_copy_dir(const char *src, const char *dst)
{
    char a[1024], b[1024];
    DIR *d = opendir(dst);
    assert_non_null(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        eu_path(b, sizeof b, dst, e->d_name);
        assert_int_equal(unlink(b), 0);
    }
    closedir(d);
    d = opendir(src);
    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        eu_path(a, sizeof a, src, e->d_name);
        eu_path(b, sizeof b, dst, e->d_name);
        struct stat st;
        assert_int_equal(stat(a, &st), 0);
        if (!S_ISREG(st.st_mode)) continue;
        size_t len;
        char *data = eu_read_file(a, &len);
        eu_write_file(b, data, len);
        free(data);
    }
    closedir(d);
}

/* The bytes of the newest datafile as they are now (writes through the
 * engine's shared mapping included): a snapshot to compare against, since
 * file sizes say little while the active file is allocated ahead. */
typedef struct eu_snap {
    unsigned fid;
    int      nfiles;
    char    *data;
    size_t   len;
} eu_snap;

static inline eu_snap eu_snap_newest(const char *dir)
{
    eu_snap sn;
    unsigned fids[4096];
    sn.nfiles = eu_list_fids(dir, "data", fids, 4096);
    sn.fid = eu_newest_fid(dir);
    sn.data = NULL;
    sn.len = 0;
    if (sn.fid) {
        char p[1024];
        eu_fid_path(p, sizeof p, dir, sn.fid, "data");
        sn.data = eu_read_file(p, &sn.len);
    }
    return sn;
}

/* 1 if the datafiles look exactly as in the snapshot (same files, same
 * newest-file bytes); frees the snapshot. */
static inline int eu_snap_unchanged(const char *dir, eu_snap *sn)
{
    eu_snap now = eu_snap_newest(dir);
    int same = now.fid == sn->fid && now.nfiles == sn->nfiles && now.len == sn->len &&
               (now.len == 0 || memcmp(now.data, sn->data, now.len) == 0);
    free(now.data);
    free(sn->data);
    sn->data = NULL;
    return same;
}

/* Number of entries in a directory (without . and ..), -1 if missing. */
static inline int eu_dir_entries(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

/* Makes "<base>/<name>" into buf and returns buf. */
static inline char *eu_sub(char *buf, size_t cap, const char *base, const char *name)
{
    eu_path(buf, cap, base, name);
    return buf;
}

// >> key lists ---------------------------------------------------------------

typedef struct eu_key {
    uint8_t *k;
    size_t   len;
} eu_key;

typedef struct eu_keys {
    eu_key *v;
    size_t  n, cap;
    int     stop_after;   /* > 0: the callback returns stop_rc after this many */
    int     stop_rc;
} eu_keys;

static inline void eu_keys_add(eu_keys *ks, const void *k, size_t len)
{
    if (ks->n == ks->cap) {
        ks->cap = ks->cap ? ks->cap * 2 : 64;
        ks->v = realloc(ks->v, ks->cap * sizeof *ks->v);
        assert_non_null(ks->v);
    }
    ks->v[ks->n].k = malloc(len ? len : 1);
    assert_non_null(ks->v[ks->n].k);
    if (len) memcpy(ks->v[ks->n].k, k, len);
    ks->v[ks->n].len = len;
    ks->n++;
}

static inline void eu_keys_free(eu_keys *ks)
{
    for (size_t i = 0; i < ks->n; i++) free(ks->v[i].k);
    free(ks->v);
    memset(ks, 0, sizeof *ks);
}

/* A calypso_key_fn collecting into an eu_keys. */
static inline int eu_collect(const void *key, size_t klen, void *ctx)
{
    eu_keys *ks = ctx;
    eu_keys_add(ks, key, klen);
    if (ks->stop_after > 0 && ks->n >= (size_t)ks->stop_after) return ks->stop_rc;
    return 0;
}

/* memcmp order, shorter first on a tie. */
static inline int eu_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Asserts ks holds exactly the n keys want[] (C strings) in this order. */
static inline void eu_keys_expect(const eu_keys *ks, const char *const *want, size_t n)
{
    if (ks->n != n) print_error("walk gave %zu keys, want %zu\n", ks->n, n);
    assert_int_equal(ks->n, n);
    for (size_t i = 0; i < n; i++) {
        if (ks->v[i].len != strlen(want[i]) ||
            memcmp(ks->v[i].k, want[i], ks->v[i].len) != 0)
            print_error("walk key %zu is '%.*s', want '%s'\n", i,
                        (int)ks->v[i].len, (const char *)ks->v[i].k, want[i]);
        assert_int_equal(ks->v[i].len, strlen(want[i]));
        assert_memory_equal(ks->v[i].k, want[i], ks->v[i].len);
    }
}

// >> self-checking values ------------------------------------------------------

/* A value for (key, version) of length len >= 16:
 *   bytes 0..7   version, little endian
 *   bytes 8..11  len, little endian
 *   bytes 12..15 hash of (key, version)
 *   bytes 16..   filler derived from (key, version, position)
 * so a reader can check that what it got is a whole value written for that
 * key, and which version. */
static inline uint32_t eu_hash(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull ^ seed;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

static inline void eu_make_value(uint8_t *out, size_t len, const void *key,
                                 size_t klen, uint64_t version)
{
    assert_true(len >= 16);
    uint32_t h = eu_hash(key, klen, version);
    for (int i = 0; i < 8; i++) out[i] = (uint8_t)(version >> (8 * i));
    for (int i = 0; i < 4; i++) out[8 + i] = (uint8_t)((uint32_t)len >> (8 * i));
    for (int i = 0; i < 4; i++) out[12 + i] = (uint8_t)(h >> (8 * i));
    uint64_t s = ((uint64_t)h << 32) ^ version;
    for (size_t i = 16; i < len; i++) {
        if ((i & 7) == 0) s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (uint8_t)(s >> (8 * (i & 7)));
    }
}

/* Returns 1 and the version if val is a well-formed value for key. */
static inline int eu_check_value(const uint8_t *val, size_t len, const void *key,
                                 size_t klen, uint64_t *version)
{
    if (len < 16) return 0;
    uint64_t v = 0;
    uint32_t l = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)val[i] << (8 * i);
    for (int i = 0; i < 4; i++) l |= (uint32_t)val[8 + i] << (8 * i);
    if (l != len) return 0;
    uint8_t *want = malloc(len);
    if (!want) return 0;
    eu_make_value(want, len, key, klen, v);
    int ok = memcmp(want, val, len) == 0;
    free(want);
    if (ok && version) *version = v;
    return ok;
}

// >> child processes -------------------------------------------------------------

/* Runs this binary again as "<self> <args...>" and returns its wait status
 * (see WIFEXITED etc.). */
static inline int eu_run_self(char *const args[])
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)"child";
    for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
    argv[n] = NULL;
    /* The path /proc/self/exe names, read before the fork: under valgrind
     * /proc/self/exe itself would exec valgrind's tool binary. */
    static char self[4096];
    if (!self[0]) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(len > 0);
        self[len] = 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(self, argv);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        assert_int_equal(errno, EINTR);
    return status;
}

static inline uint64_t eu_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline void eu_sleep_ms(unsigned ms)
{
    struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

#endif
