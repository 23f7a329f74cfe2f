/*
 * merge_util.h: what test_ttl.c and test_merge.c share.
 *
 * - MU_OK / MU_RC: assert a return code, printing its name and the
 *   handle's errmsg first when it is not the one wanted;
 * - the test clock: mu_shift() moves the engine clock (cy_clock_shift) and
 *   remembers by how much, mu_clock_reset() moves it back (every test that
 *   shifts calls it before it ends);
 * - self-describing values: a value carries its version, its length and a
 *   hash of (key, version), so any reader can tell whether what it got is a
 *   whole value written for that key, and which one;
 * - a reference ("model") of what a database must hold, key by key, and
 *   mu_ref_check() which compares EVERY key of it with the database through
 *   get, get_buf, has, len, stats and a full fold (order included);
 * - the files of a database directory: total bytes on disk, datafile ids,
 *   and a census of the records in datafiles (by type), parsed with the
 *   engine's own record codec.
 *
 * Unit tests link the engine's modules one by one, so engine.h (and the
 * test hooks in it) is available here.
 */
#ifndef CY_MERGE_UTIL_H
#define CY_MERGE_UTIL_H

#include "testutil.h"
#include "engine.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/types.h>

#define MU_OK TU_OK
#define MU_RC TU_RC

/* Sanitizer builds run the same tests with a shorter budget for the
 * time-bounded ones (the checks are the same). */
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define MU_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define MU_SANITIZED 1
#endif
#endif
#ifndef MU_SANITIZED
#define MU_SANITIZED 0
#endif
/* ThreadSanitizer slows single-threaded bulk work ~20x: data-volume tests
 * run a smaller volume there (same checks). */
#if defined(__SANITIZE_THREAD__)
#define MU_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define MU_TSAN 1
#endif
#endif
#ifndef MU_TSAN
#define MU_TSAN 0
#endif

/* Scratch directories go to /dev/shm unless TMPDIR says otherwise: these
 * tests crash processes, not machines (the page cache survives a killed
 * process), so they do not need a disk, and on a slow one the fsyncs of
 * hundreds of merges and rotations would dominate the run. */
static inline void mu_default_tmpdir(void)
{
    const char *t = getenv("TMPDIR");
    if ((!t || !*t) && access("/dev/shm", W_OK | X_OK) == 0) setenv("TMPDIR", "/dev/shm", 1);
}

static inline calypso *mu_open(const char *path, const calypso_options *o)
{
    calypso *db = NULL;
    int rc = calypso_open(path, o, &db);
    if (rc != CALYPSO_OK)
        print_error("calypso_open(%s) -> %d (%s): %s\n", path, rc, calypso_strerror(rc),
                    calypso_errmsg(NULL));
    assert_int_equal(rc, CALYPSO_OK);
    assert_non_null(db);
    return db;
}

static inline void mu_close(calypso *db)
{
    MU_OK(NULL, calypso_close(db));
}

/* Options for deterministic tests: no sweeper, no auto-merge. */
static inline calypso_options mu_quiet_opts(uint64_t max_datafile_size)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = max_datafile_size;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    o.merge_trigger_ratio = -1;
    return o;
}

static inline uint64_t mu_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void mu_sleep_ms(unsigned ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

// >> the test clock --------------------------------------------------------------

static int64_t mu_clock_total;

static inline void mu_shift(int64_t ms)
{
    cy_clock_shift(ms);
    mu_clock_total += ms;
}

static inline void mu_clock_reset(void)
{
    cy_clock_shift(-mu_clock_total);
    mu_clock_total = 0;
}

// >> self-describing values ----------------------------------------------------------

static inline uint32_t mu_hash(const void *p, size_t n, uint64_t seed)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull ^ (seed * 0x9e3779b97f4a7c15ull);
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 1099511628211ull; }
    h ^= h >> 29;
    return (uint32_t)(h ^ (h >> 32));
}

/* Value of (key, version) of len bytes. Lengths below 16 are allowed (then
 * the value is a plain hash stream and not self-describing). */
static inline void mu_value(uint8_t *out, size_t len, const void *key, size_t klen,
                            uint64_t version)
{
    uint32_t h = mu_hash(key, klen, version);
    uint64_t s = ((uint64_t)h << 32) ^ version ^ ((uint64_t)len << 48);
    for (size_t i = 0; i < len; i++) {
        if ((i & 7) == 0) s = s * 6364136223846793005ull + 1442695040888963407ull;
        out[i] = (uint8_t)(s >> (8 * (i & 7)));
    }
    if (len >= 16) {
        for (int i = 0; i < 8; i++) out[i] = (uint8_t)(version >> (8 * i));
        for (int i = 0; i < 4; i++) out[8 + i] = (uint8_t)((uint32_t)len >> (8 * i));
        for (int i = 0; i < 4; i++) out[12 + i] = (uint8_t)(h >> (8 * i));
    }
}

/* 1 and *version if val (len >= 16) is exactly a value written for key. */
static inline int mu_value_ok(const uint8_t *val, size_t len, const void *key, size_t klen,
                              uint64_t *version)
{
    if (len < 16) return 0;
    uint64_t v = 0;
    uint32_t l = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | val[i];
    for (int i = 3; i >= 0; i--) l = l << 8 | val[8 + i];
    if (l != len) return 0;
    uint8_t stackbuf[1024];
    uint8_t *want = len <= sizeof stackbuf ? stackbuf : malloc(len);
    if (!want) return 0;
    mu_value(want, len, key, klen, v);
    int ok = memcmp(want, val, len) == 0;
    if (want != stackbuf) free(want);
    if (ok && version) *version = v;
    return ok;
}

static inline void mu_put_version(calypso *db, const void *key, size_t klen, uint64_t version,
                                  size_t vlen, uint64_t ttl_ms)
{
    uint8_t stackbuf[4096];
    uint8_t *v = vlen <= sizeof stackbuf ? stackbuf : malloc(vlen);
    assert_non_null(v);
    mu_value(v, vlen, key, klen, version);
    MU_OK(db, calypso_put_ttl(db, key, klen, v, vlen, ttl_ms));
    if (v != stackbuf) free(v);
}

// >> reference of a database's contents ----------------------------------------------

enum { MU_ABSENT = 0, MU_LIVE = 1, MU_EXPIRED = 2 };

typedef struct mu_ent {
    uint8_t  key[64];
    uint32_t klen;
    int      state;      /* MU_ABSENT, MU_LIVE, MU_EXPIRED (hidden)     */
    uint64_t version;    /* when live: the value is mu_value(key, version, vlen) */
    uint32_t vlen;
} mu_ent;

typedef struct mu_ref {
    mu_ent *e;
    size_t  n, cap;
} mu_ref;

static inline void mu_ref_free(mu_ref *r)
{
    free(r->e);
    memset(r, 0, sizeof *r);
}

/* The entry of key, added (absent) if new. Linear for few keys; tests with
 * many keys index entries by number with mu_ref_at instead. */
static inline mu_ent *mu_ref_find(mu_ref *r, const void *key, size_t klen)
{
    for (size_t i = 0; i < r->n; i++)
        if (r->e[i].klen == klen && memcmp(r->e[i].key, key, klen) == 0) return &r->e[i];
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
        assert_non_null(r->e);
    }
    assert_true(klen > 0 && klen <= sizeof r->e[0].key);
    mu_ent *e = &r->e[r->n++];
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    e->klen = (uint32_t)klen;
    return e;
}

/* Appends an entry without looking for duplicates (the caller knows the
 * key is new); returns its index. */
static inline size_t mu_ref_add(mu_ref *r, const void *key, size_t klen)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 256;
        r->e = realloc(r->e, r->cap * sizeof *r->e);
        assert_non_null(r->e);
    }
    assert_true(klen > 0 && klen <= sizeof r->e[0].key);
    mu_ent *e = &r->e[r->n];
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, klen);
    e->klen = (uint32_t)klen;
    return r->n++;
}

/* A new entry (see mu_ref_add), as a pointer valid until the next add. */
static inline mu_ent *mu_ref_new(mu_ref *r, const void *key, size_t klen)
{
    size_t at = mu_ref_add(r, key, klen);
    return &r->e[at];
}

/* Writes a put of (version, vlen) to db and records it in e. */
static inline void mu_ref_put(calypso *db, mu_ent *e, uint64_t version, uint32_t vlen,
                              uint64_t ttl_ms)
{
    mu_put_version(db, e->key, e->klen, version, vlen, ttl_ms);
    e->state = MU_LIVE;
    e->version = version;
    e->vlen = vlen;
}

static inline void mu_ref_del(calypso *db, mu_ent *e)
{
    MU_OK(db, calypso_delete(db, e->key, e->klen));
    e->state = MU_ABSENT;
}

static inline int mu_keycmp(const void *a, size_t al, const void *b, size_t bl)
{
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int mu_ent_cmp(const void *a, const void *b)
{
    const mu_ent *x = *(const mu_ent *const *)a, *y = *(const mu_ent *const *)b;
    return mu_keycmp(x->key, x->klen, y->key, y->klen);
}

typedef struct mu_fold {
    mu_ent **want;       /* live entries in key order */
    size_t   n, at;
    int      bad;
    char     why[256];
} mu_fold;

static int mu_fold_cb(const void *key, size_t klen, void *ctx)
{
    mu_fold *f = ctx;
    if (f->bad) return 0;
    if (f->at >= f->n) {
        f->bad = 1;
        snprintf(f->why, sizeof f->why, "fold gave more than the %zu live keys", f->n);
        return 0;
    }
    const mu_ent *e = f->want[f->at];
    if (e->klen != klen || memcmp(e->key, key, klen) != 0) {
        f->bad = 1;
        snprintf(f->why, sizeof f->why, "fold key #%zu is '%.*s' (%zu bytes), want '%.*s'",
                 f->at, (int)klen, (const char *)key, klen, (int)e->klen,
                 (const char *)e->key);
        return 0;
    }
    f->at++;
    return 0;
}

/* How far an expired entry may be from gone: strict means get must say
 * CALYPSO_EEXPIRED (the key is known to be still in the keydir). */
enum { MU_EXPIRED_EITHER = 0, MU_EXPIRED_STRICT = 1 };

/* Checks every entry of r against db, then len, stats.keys and a full fold
 * against the live entries. */
static inline void mu_ref_check_mode(calypso *db, const mu_ref *r, int expired_mode)
{
    size_t live = 0;
    mu_ent **order = malloc((r->n ? r->n : 1) * sizeof *order);
    assert_non_null(order);
    uint8_t *want = malloc(1u << 20);
    assert_non_null(want);
    for (size_t i = 0; i < r->n; i++) {
        const mu_ent *e = &r->e[i];
        void *got = NULL;
        size_t glen = 0;
        int rc = calypso_get(db, e->key, e->klen, &got, &glen);
        if (e->state == MU_LIVE) {
            order[live++] = (mu_ent *)e;
            if (rc != CALYPSO_OK)
                print_error("key '%.*s': get -> %d (%s), want version %llu: %s\n",
                            (int)e->klen, (const char *)e->key, rc, calypso_strerror(rc),
                            (unsigned long long)e->version, calypso_errmsg(db));
            assert_int_equal(rc, CALYPSO_OK);
            assert_true(e->vlen <= (1u << 20));
            mu_value(want, e->vlen, e->key, e->klen, e->version);
            if (glen != e->vlen || (glen && memcmp(got, want, glen) != 0)) {
                uint64_t v = 0;
                int ok = mu_value_ok(got, glen, e->key, e->klen, &v);
                print_error("key '%.*s': value of %zu bytes (%s version %llu), want version "
                            "%llu of %u bytes\n", (int)e->klen, (const char *)e->key, glen,
                            ok ? "a whole" : "NOT a whole", (unsigned long long)v,
                            (unsigned long long)e->version, e->vlen);
                fail();
            }
            calypso_free(got);
            assert_int_equal(calypso_has(db, e->key, e->klen), 1);
        } else {
            int ok = e->state == MU_ABSENT ? rc == CALYPSO_ENOTFOUND
                     : expired_mode == MU_EXPIRED_STRICT ? rc == CALYPSO_EEXPIRED
                     : (rc == CALYPSO_EEXPIRED || rc == CALYPSO_ENOTFOUND);
            if (!ok) {
                print_error("key '%.*s' (%s): get -> %d (%s)\n", (int)e->klen,
                            (const char *)e->key,
                            e->state == MU_ABSENT ? "deleted or never written" : "expired",
                            rc, calypso_strerror(rc));
                fail();
            }
            assert_null(got);
            assert_int_equal(glen, 0);
            assert_int_equal(calypso_has(db, e->key, e->klen), 0);
        }
    }
    free(want);
    assert_int_equal(calypso_len(db), live);
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, live);
    qsort(order, live, sizeof *order, mu_ent_cmp);
    mu_fold f = { order, live, 0, 0, "" };
    MU_OK(db, calypso_fold(db, mu_fold_cb, &f));
    if (!f.bad && f.at != live)
        snprintf(f.why, sizeof f.why, "fold gave %zu keys, want %zu", f.at, live), f.bad = 1;
    if (f.bad) print_error("%s\n", f.why);
    assert_false(f.bad);
    free(order);
}

static inline void mu_ref_check(calypso *db, const mu_ref *r)
{
    mu_ref_check_mode(db, r, MU_EXPIRED_EITHER);
}

static inline size_t mu_ref_live(const mu_ref *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n; i++) n += r->e[i].state == MU_LIVE;
    return n;
}

// >> database directories ----------------------------------------------------------------

/* Returns 1 and the fid if name is "%010u.<ext>". */
static inline int mu_parse_fid(const char *name, const char *ext, uint32_t *fid)
{
    size_t el = strlen(ext);
    if (strlen(name) != 11 + el) return 0;
    for (int i = 0; i < 10; i++)
        if (name[i] < '0' || name[i] > '9') return 0;
    if (name[10] != '.' || strcmp(name + 11, ext) != 0) return 0;
    *fid = (uint32_t)strtoul(name, NULL, 10);
    return 1;
}

static int mu_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Ids of the "%010u.<ext>" files in dir, sorted, into fids (cap entries);
 * returns how many there are. */
static inline int mu_list_fids(const char *dir, const char *ext, uint32_t *fids, int cap)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        uint32_t fid;
        if (!mu_parse_fid(de->d_name, ext, &fid)) continue;
        if (n < cap) fids[n] = fid;
        n++;
    }
    closedir(d);
    qsort(fids, (size_t)(n < cap ? n : cap), sizeof *fids, mu_u32_cmp);
    return n;
}

/* Bytes of every regular file in dir (not recursing), and how many. */
static inline uint64_t mu_dir_bytes(const char *dir, int *nfiles)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    uint64_t total = 0;
    int n = 0;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat st;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        /* The space reserve (space.c) is a fixed allowance, not data. */
        if (!strcmp(de->d_name, "RESERVE")) continue;
        total += (uint64_t)st.st_size;
        n++;
    }
    closedir(d);
    if (nfiles) *nfiles = n;
    return total;
}

/* Bytes of the datafiles and hint files of dir: what stats.size counts. */
static inline uint64_t mu_data_hint_bytes(const char *dir)
{
    uint32_t fids[8192];
    uint64_t total = 0;
    char path[4096];
    const char *exts[2] = { "data", "hint" };
    for (int x = 0; x < 2; x++) {
        int n = mu_list_fids(dir, exts[x], fids, 8192);
        assert_true(n <= 8192);
        for (int i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%010u.%s", dir, fids[i], exts[x]);
            struct stat st;
            assert_int_equal(stat(path, &st), 0);
            total += (uint64_t)st.st_size;
        }
    }
    return total;
}

static inline int mu_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* What the datafiles of a directory hold. */
typedef struct mu_census {
    uint64_t records, puts, ttl_puts, tombstones, bytes;
    uint64_t files, merged_files;
    uint64_t expired_ttl_puts;   /* records with expiry <= the `now` given */
    uint64_t batches;            /* batch records (their records count above) */
    uint64_t seals;              /* seal records (at the head of a file a
                                    rotation started; not counted above) */
} mu_census;

static inline void mu_census_count(mu_census *c, const cy_rec *r, uint64_t now)
{
    c->records++;
    if (r->type == CY_REC_PUT) c->puts++;
    else if (r->type == CY_REC_PUT_TTL) {
        c->ttl_puts++;
        if (r->expiry <= now) c->expired_ttl_puts++;
    } else c->tombstones++;
}

typedef struct mu_census_batch {
    mu_census *c;
    uint64_t   now;
    void     (*fn)(const cy_rec *r, const uint8_t *key, uint32_t fid, void *ctx);
    void      *ctx;
    uint32_t   fid;
} mu_census_batch;

static inline int mu_census_entry(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    (void)rel;
    mu_census_batch *mb = ctx;
    mu_census_count(mb->c, r, mb->now);
    if (mb->fn) mb->fn(r, rec + r->hdr, mb->fid, mb->ctx);
    return 0;
}

/* Parses every record of every datafile in dir (all must be whole and
 * verify; only regular files may end in zeros, space allocated ahead: the
 * active file's, or a sealed one's before its sync). When fn is given it
 * is called for each record. */
static inline mu_census mu_census_dir(const char *dir, uint64_t now,
                                      void (*fn)(const cy_rec *r, const uint8_t *key,
                                                 uint32_t fid, void *ctx),
                                      void *ctx)
{
    mu_census c;
    memset(&c, 0, sizeof c);
    uint32_t fids[8192];
    int n = mu_list_fids(dir, "data", fids, 8192);
    assert_true(n <= 8192);
    char path[4096];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%010u.data", dir, fids[i]);
        FILE *f = fopen(path, "rb");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        long size = ftell(f);
        assert_true(size >= 0);
        rewind(f);
        uint8_t *buf = malloc((size_t)size + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
        fclose(f);
        c.files++;
        if (fids[i] & CY_FID_MERGED) c.merged_files++;
        /* Space allocated ahead of the data reads as zeros: in the
         * newest regular file (the active one of an open handle), and in
         * one rotation sealed until its sync cuts it (files.c). */
        int regular = !(fids[i] & CY_FID_MERGED);
        size_t off = 0;
        while (off < (size_t)size) {
            cy_rec r;
            int pr = cy_rec_parse(buf + off, (size_t)size - off, &r);
            if (pr != 1 && regular) {
                size_t z = off;
                while (z < (size_t)size && buf[z] == 0) z++;
                if (z == (size_t)size) break;
            }
            if (pr != 1) print_error("%s: bad record at %zu\n", path, off);
            assert_int_equal(pr, 1);
            uint64_t rsize = r.hdr + r.klen + r.vlen;
            assert_true(off + rsize <= (size_t)size);
            assert_int_equal(cy_crc(buf + off + 4, (size_t)rsize - 4, NULL, 0), r.crc);
            c.bytes += rsize;
            if (r.type == CY_REC_BATCH) {
                /* Its records count one by one, as a reader sees them. */
                mu_census_batch mb = { &c, now, fn, ctx, fids[i] };
                c.batches++;
                assert_int_equal(cy_rec_entries(buf + off, &r, mu_census_entry, &mb), 0);
            } else if (r.type == CY_REC_SEAL) {
                assert_int_equal(off, 0);   /* only ever a file's first record */
                assert_false(fids[i] & CY_FID_MERGED);
                c.seals++;
            } else {
                mu_census_count(&c, &r, now);
                if (fn) fn(&r, buf + off + r.hdr, fids[i], ctx);
            }
            off += (size_t)rsize;
        }
        free(buf);
    }
    return c;
}

#endif
