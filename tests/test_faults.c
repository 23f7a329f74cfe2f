/*
 * test_faults.c: countdown fault injection, in the manner of SQLite's test
 * VFS loops. For every operation that touches files (put, put with TTL,
 * delete, rotation, hint writing at close, merge, backup, open of several
 * kinds of directory, close, sift, reopen) and for every way to fail (the nth call of any
 * kind or of one kind; EIO or ENOSPC; once or from then on; a write that
 * stops half way), run the operation with the nth call failing, for n = 1,
 * 2, ... until the operation completes without reaching the nth call. Each
 * time:
 *
 *   - the call returns CALYPSO_OK or an error code with a non-empty
 *     calypso_errmsg (never a crash, never an assert);
 *   - an operation that returned OK is there; one that failed is either
 *     wholly there or wholly absent, in memory and after a reopen alike;
 *     everything acknowledged before it is there;
 *   - the handle still works, or refuses writes with a message;
 *   - reopening (faults off) succeeds, finds exactly that, and takes writes.
 *
 * Then the same countdown over allocations (cy_alloc_fail_at): puts into
 * the key directory and the TTL index, open of a populated database, merge,
 * get: CALYPSO_ENOMEM and an unchanged database. And EINTR, injected on
 * every call that a real EINTR can interrupt, is invisible; ENOSPC from
 * each fstat of an open either fails the open or leaves a handle that
 * works.
 *
 * Databases live on tmpfs when there is one (see crash_util.h): the point is
 * the engine's logic, not the disk. Failures are collected per scenario and
 * variant (the first of each) and printed together.
 */
#include "crash_util.h"
#include "engine.h"

#include <fcntl.h>
#include <unistd.h>

#define FX_KEYS   64
#define FX_TTL    3600000u          /* long enough never to expire here */
#define FX_MAXI   20000u            /* bound on a countdown             */

typedef struct fx {
    char      *root;
    char       tmpl[4096], work[4096], backup[4096], scratch[4096];
    calypso_options opt;
    calypso   *db;
    cu_model   base;     /* what the template holds                     */
    cu_model   m;        /* what this run must find                     */
} fx;

static uint32_t fx_ver = 1;   /* versions are unique over the whole run */

/* The first failure of each scenario and variant. */
static char fx_fail[256][768];
static int  fx_nfail;

static void fx_report(const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Runs where a put or delete returned an error and yet took effect (the
 * record was appended, then the sync failed). calypso.h says of a failed
 * put that "nothing is written"; counted and printed, not failed. */
static int fx_visible;

static int fx_quiet;          /* a variant already reported: count only */
static int fx_nquiet;

/* The shape of a failure message: without numbers and without the words
 * holding a '/' (paths, variant names), so that one bug seen from many
 * variants and call numbers prints once. */
static void fx_shape(const char *msg, char *out, size_t cap)
{
    size_t o = 0;
    while (*msg && o + 2 < cap) {
        const char *end = msg;
        while (*end && *end != ' ') end++;
        int slash = memchr(msg, '/', (size_t)(end - msg)) != NULL;
        if (slash) {
            out[o++] = '*';
        } else {
            for (const char *p = msg; p < end && o + 2 < cap; p++)
                if (*p < '0' || *p > '9') out[o++] = *p;
        }
        if (*end && o + 2 < cap) out[o++] = ' ';
        msg = *end ? end + 1 : end;
    }
    out[o] = 0;
}

static void fx_report(const char *fmt, ...)
{
    static char shapes[256][768];
    static int nshapes;
    char msg[768], shape[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fx_shape(msg, shape, sizeof shape);
    int seen = 0;
    for (int i = 0; i < nshapes && !seen; i++) seen = strcmp(shapes[i], shape) == 0;
    if (!seen && nshapes < 256) snprintf(shapes[nshapes++], sizeof shapes[0], "%s", shape);
    if (fx_quiet || seen) {
        fx_nquiet++;
        return;
    }
    if (fx_nfail < 256) snprintf(fx_fail[fx_nfail], sizeof fx_fail[0], "%s", msg);
    fprintf(stderr, "FAULT-TEST FAILURE: %s\n", msg);
    fx_nfail++;
}

static calypso_options fx_opts(int sync, uint64_t max_file)
{
    calypso_options o = { 0 };
    o.sync = sync;
    o.max_datafile_size = max_file;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

static calypso *fx_open_ok(const char *path, const calypso_options *o)
{
    calypso *db = NULL;
    int rc = calypso_open(path, o, &db);
    if (rc) print_error("open %s: %s: %s\n", path, calypso_strerror(rc), calypso_errmsg(NULL));
    assert_int_equal(rc, CALYPSO_OK);
    return db;
}

// >> model-tracking operations ---------------------------------------------------

/* A put of key i with a new version; the model calls it in flight until it
 * returns OK. */
static int fx_put(fx *x, calypso *db, uint32_t i, uint64_t ttl)
{
    uint32_t v = fx_ver++;
    x->m.k[i].alt = v;
    int rc = cu_put(db, &x->m, i, v, ttl);
    if (rc == CALYPSO_OK) {
        x->m.k[i].ver = v;
        x->m.k[i].alt = CU_NONE;
    }
    return rc;
}

static int fx_del(fx *x, calypso *db, uint32_t i)
{
    x->m.k[i].alt = CU_DEL;
    int rc = cu_del(db, &x->m, i);
    if (rc == CALYPSO_OK) {
        x->m.k[i].ver = CU_DEL;
        x->m.k[i].alt = CU_NONE;
    }
    return rc;
}

static void fx_put_ok(fx *x, calypso *db, uint32_t i, uint64_t ttl)
{
    int rc = fx_put(x, db, i, ttl);
    if (rc) print_error("put: %s\n", calypso_errmsg(db));
    assert_int_equal(rc, CALYPSO_OK);
}

static void fx_del_ok(fx *x, calypso *db, uint32_t i)
{
    assert_int_equal(fx_del(x, db, i), CALYPSO_OK);
}

// >> templates -------------------------------------------------------------------

/* Starts a template: an empty database with options o, and the model that
 * the fill below writes into (x->m), later kept as x->base. */
static calypso *fx_begin(fx *x, calypso_options o)
{
    x->opt = o;
    cu_rmtree(x->tmpl);
    cu_model_free(&x->m);
    cu_model_init(&x->m, FX_KEYS);
    return fx_open_ok(x->tmpl, &o);
}

static void fx_end(fx *x, calypso *db)
{
    if (db) assert_int_equal(calypso_close(db), CALYPSO_OK);
    cu_model_free(&x->base);
    cu_model_copy(&x->base, &x->m);
}

/* Keys 0..39 written, some overwritten, with TTLs, some deleted: a few
 * sealed files with hints when max_datafile_size is small. */
static void fx_fill(fx *x, calypso *db)
{
    for (uint32_t i = 0; i < 40; i++) fx_put_ok(x, db, i, i % 5 == 0 ? FX_TTL : 0);
    for (uint32_t i = 0; i < 40; i += 3) fx_put_ok(x, db, i, 0);
    for (uint32_t i = 1; i < 40; i += 7) fx_del_ok(x, db, i);
}

static void fx_tmpl_small(fx *x, int sync)
{
    calypso *db = fx_begin(x, fx_opts(sync, 64 << 10));
    fx_fill(x, db);
    fx_end(x, db);
}

static void fx_tmpl_always(fx *x) { fx_tmpl_small(x, CALYPSO_SYNC_ALWAYS); }
static void fx_tmpl_none(fx *x)   { fx_tmpl_small(x, CALYPSO_SYNC_NONE); }

/* Many 4 KiB datafiles, one merged file from an earlier merge, then more
 * writes on top. */
static void fx_tmpl_files(fx *x)
{
    calypso *db = fx_begin(x, fx_opts(CALYPSO_SYNC_ALWAYS, 4096));
    fx_fill(x, db);
    assert_int_equal(calypso_merge(db), CALYPSO_OK);
    for (uint32_t i = 30; i < 50; i++) fx_put_ok(x, db, i, i % 4 == 0 ? FX_TTL : 0);
    for (uint32_t i = 2; i < 50; i += 9) fx_del_ok(x, db, i);
    fx_end(x, db);
}

/* The database as it is on disk at a named step of a merge, copied from
 * inside the merge hook: what a crash at that step leaves. */
static const char *fx_capture_point, *fx_capture_from, *fx_capture_to;

static void fx_capture_hook(const char *point)
{
    if (fx_capture_point && strcmp(point, fx_capture_point) == 0) {
        cu_rmtree(fx_capture_to);
        assert_int_equal(cu_copy_tree(fx_capture_from, fx_capture_to), 0);
        fx_capture_point = NULL;
    }
}

static void fx_tmpl_merge_at(fx *x, const char *point)
{
    calypso *db = fx_begin(x, fx_opts(CALYPSO_SYNC_ALWAYS, 4096));
    fx_fill(x, db);
    char live[4200];
    snprintf(live, sizeof live, "%s/live", x->root);
    cu_rmtree(live);
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    assert_int_equal(rename(x->tmpl, live), 0);
    db = fx_open_ok(live, &x->opt);
    fx_capture_point = point;
    fx_capture_from = live;
    fx_capture_to = x->tmpl;
    cy_merge_set_hook(fx_capture_hook);
    assert_int_equal(calypso_merge(db), CALYPSO_OK);
    cy_merge_set_hook(NULL);
    assert_null(fx_capture_point);
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    cu_rmtree(live);
    fx_end(x, NULL);
}

static void fx_tmpl_committed(fx *x) { fx_tmpl_merge_at(x, "committed"); }
static void fx_tmpl_moved(fx *x)     { fx_tmpl_merge_at(x, "moved"); }

/* A torn record at the end of the newest datafile, a leftover temporary
 * file, and a sealed file whose hint is gone (open writes it again). */
static void fx_tmpl_damaged(fx *x)
{
    fx_tmpl_files(x);
    char path[4300];
    uint32_t newest = 0;
    DIR *d = opendir(x->tmpl);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned fid;
        char ext[8];
        if (sscanf(e->d_name, "%10u.%4s", &fid, ext) == 2 && strcmp(ext, "data") == 0 &&
            fid < 0x40000000u && fid > newest)
            newest = fid;
    }
    if (d) closedir(d);
    assert_true(newest > 2);
    snprintf(path, sizeof path, "%s/%010u.data", x->tmpl, newest);
    FILE *f = fopen(path, "ab");
    assert_non_null(f);
    fwrite("\x11\x22\x33\x44\x01\x05\x80", 1, 7, f);   /* a header cut short */
    fclose(f);
    snprintf(path, sizeof path, "%s/%010u.hint", x->tmpl, newest - 2);
    unlink(path);
    snprintf(path, sizeof path, "%s/META.tmp", x->tmpl);
    f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
}

// >> bodies ------------------------------------------------------------------------

static int fx_body_put(fx *x)      { return fx_put(x, x->db, 3, 0); }
static int fx_body_put_new(fx *x)  { return fx_put(x, x->db, 45, 0); }
static int fx_body_put_ttl(fx *x)  { return fx_put(x, x->db, 6, FX_TTL); }
static int fx_body_delete(fx *x)   { return fx_del(x, x->db, 9); }

/* Enough large-ish puts into 4 KiB files to rotate at least twice. */
static int fx_body_rotate(fx *x)
{
    int rc = CALYPSO_OK;
    for (uint32_t i = 50; i < 60 && !rc; i++) rc = fx_put(x, x->db, i, i % 3 ? 0 : FX_TTL);
    return rc;
}

/* Rotations, then close, which waits for the hints of the sealed files. */
static int fx_body_rotate_close(fx *x)
{
    int rc = fx_body_rotate(x);
    int crc = calypso_close(x->db);
    x->db = NULL;
    return rc ? rc : crc;
}

static int fx_body_merge(fx *x) { return calypso_merge(x->db); }

/* Keys 10..19 ("k00001" + one digit): what fx_body_sift deletes, all or
 * none. */
#define FX_GROUP_LO 10
#define FX_GROUP_HI 20

static int fx_sift_all(const void *key, size_t klen, void *ctx)
{
    (void)key;
    (void)klen;
    (void)ctx;
    return 1;
}

static int fx_body_sift(fx *x)
{
    for (uint32_t i = FX_GROUP_LO; i < FX_GROUP_HI; i++)
        if (x->m.k[i].ver != CU_DEL) x->m.k[i].alt = CU_DEL;
    int rc = calypso_sift_scan(x->db, "k00001", 6, fx_sift_all, NULL);
    if (rc == CALYPSO_OK)
        for (uint32_t i = FX_GROUP_LO; i < FX_GROUP_HI; i++) {
            x->m.k[i].ver = CU_DEL;
            x->m.k[i].alt = CU_NONE;
        }
    return rc;
}

static int fx_body_reopen(fx *x) { return calypso_reopen(x->db); }

static int fx_body_backup(fx *x) { return calypso_backup(x->db, x->backup); }

static int fx_body_open(fx *x)
{
    int rc = calypso_open(x->work, &x->opt, &x->db);
    if (rc && x->db) fx_report("open failed (%s) but left a handle", calypso_strerror(rc));
    return rc;
}

static int fx_body_close(fx *x)
{
    int rc = calypso_close(x->db);
    x->db = NULL;
    return rc;
}

/* Before close: writes not yet synced (SYNC_NONE) and a rotation whose hint
 * close must write. */
static void fx_prep_close(fx *x)
{
    for (uint32_t i = 50; i < 56; i++) fx_put_ok(x, x->db, i, 0);
}

/* A backup that returned OK opens with the same contents; one that failed
 * does not open, or opens empty, or (when only its last step failed) whole. */
static void fx_after_backup(fx *x, int rc, const char *where)
{
    calypso *b = NULL;
    int orc = calypso_open(x->backup, &x->opt, &b);
    if (orc != CALYPSO_OK) {
        if (rc == CALYPSO_OK)
            fx_report("%s: backup returned OK but does not open: %s", where,
                      calypso_errmsg(NULL));
        return;
    }
    cu_model bm;
    cu_model_copy(&bm, &x->m);
    char why[512];
    if (rc != CALYPSO_OK && calypso_len(b) == 0) {
        /* failed before any datafile was copied */
    } else if (cu_verify(b, &bm, why, sizeof why)) {
        fx_report("%s: backup (rc %s) holds the wrong data: %s", where, calypso_strerror(rc), why);
    }
    cu_model_free(&bm);
    calypso_close(b);
}

// >> the countdown -------------------------------------------------------------------

enum { FX_BODY_OPENS = 1, FX_BODY_CLOSES = 2, FX_BACKUP = 4, FX_ATOMIC = 8,
       FX_REOPENS = 16 };

typedef struct fx_scn {
    const char *name;
    void      (*setup)(fx *x);
    void      (*prep)(fx *x);
    int       (*body)(fx *x);
    int         flags;
} fx_scn;

typedef struct fx_var {
    int kind, err, sticky, shortw;
} fx_var;

static const char *fx_kind_name(int k)
{
    static const char *names[] = { "open", "close", "pread", "pwrite", "fsync", "fdatasync",
                                   "ftruncate", "rename", "unlink", "mkdir", "rmdir", "fstat",
                                   "flock", "mmap", "readdir", "fallocate", "stat" };
    if (k == CY_OS_ANY) return "any";
    return k >= 0 && k < (int)(sizeof names / sizeof *names) ? names[k] : "?";
}

static void fx_var_name(const fx_var *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s/%s%s", fx_kind_name(v->kind), strerror(v->err),
             v->sticky ? "sticky" : "once", v->shortw ? "/short" : "");
}

static int fx_full(void)
{
    const char *e = getenv("CALYPSO_FAULTS");
    return e && strcmp(e, "full") == 0;
}

/* With FX_ATOMIC: the keys of the group that base holds must now be all
 * there or all gone. */
static int fx_group_split(const fx *x)
{
    int kept = 0, gone = 0;
    for (uint32_t i = FX_GROUP_LO; i < FX_GROUP_HI; i++) {
        if (x->base.k[i].ver == CU_DEL) continue;
        if (x->m.k[i].ver == CU_DEL) gone++;
        else kept++;
    }
    return kept && gone;
}

/* One run with the ith call failing. Returns 1 when the fault was not
 * reached (the countdown is over), 0 to go on, -1 after a failure, -2
 * after a failure with the fault not reached. */
static int fx_run(fx *x, const fx_scn *s, const fx_var *v, uint64_t i)
{
    char vn[96], why[512];
    fx_var_name(v, vn, sizeof vn);
    cu_rmtree(x->work);
    cu_rmtree(x->backup);
    assert_int_equal(cu_copy_tree(x->tmpl, x->work), 0);
    cu_model_free(&x->m);
    cu_model_copy(&x->m, &x->base);
    x->db = NULL;
    if (!(s->flags & FX_BODY_OPENS)) {
        x->db = fx_open_ok(x->work, &x->opt);
        if (s->prep) s->prep(x);
    }

    cy_os_count_reset();
    cy_os_fail_at(v->kind, i, v->err, v->sticky, v->shortw);
    int rc = s->body(x);
    uint64_t calls = cy_os_count(v->kind);
    cy_os_fail_reset();
    int reached = calls >= i;

    if (rc != CALYPSO_OK) {
        const char *msg = (s->flags & FX_BODY_CLOSES) ? "(handle freed)"
                          : x->db ? calypso_errmsg(x->db) : calypso_errmsg(NULL);
        if (strcmp(calypso_strerror(rc), "unknown error") == 0 || rc > 0) {
            fx_report("%s %s n=%llu: returned %d, not a calypso code", s->name, vn,
                      (unsigned long long)i, rc);
            goto fail;
        }
        /* A full disk has its own code; every other failure is EIO. */
        if (rc != CALYPSO_EIO && !(v->err == ENOSPC && rc == CALYPSO_ENOSPC)) {
            fx_report("%s %s n=%llu: an I/O error reported as %s (%s)", s->name, vn,
                      (unsigned long long)i, calypso_strerror(rc), msg);
            goto fail;
        }
        if (!msg[0]) {
            fx_report("%s %s n=%llu: %s with an empty calypso_errmsg", s->name, vn,
                      (unsigned long long)i, calypso_strerror(rc));
            goto fail;
        }
        if (!reached) {
            fx_report("%s %s n=%llu: %s (%s) although the fault was not reached", s->name, vn,
                      (unsigned long long)i, calypso_strerror(rc), msg);
            goto fail;
        }
    }
    if (s->flags & FX_BACKUP) {
        char where[160];
        snprintf(where, sizeof where, "%s %s n=%llu", s->name, vn, (unsigned long long)i);
        fx_after_backup(x, rc, where);
    }
    if (x->db && (s->flags & FX_REOPENS) && rc != CALYPSO_OK) {
        /* A failed reopen leaves a handle that refuses everything but
         * close, and says so. */
        char k[16];
        size_t klen = cu_key_of(&x->m, 0, k);
        int has = calypso_has(x->db, k, klen);
        int prc = cu_put(x->db, &x->m, 0, fx_ver++, 0);
        if (prc == CALYPSO_OK || !calypso_errmsg(x->db)[0] || has > 0) {
            fx_report("%s %s n=%llu: after a failed reopen the handle still answers (put %s, "
                      "has %d)", s->name, vn, (unsigned long long)i, calypso_strerror(prc), has);
            goto fail;
        }
        calypso_close(x->db);
        x->db = NULL;
    }
    if (x->db) {
        uint32_t fkey = CU_NONE, fver = CU_NONE;
        for (uint32_t k = 0; k < x->m.n; k++)
            if (x->m.k[k].alt != CU_NONE) { fkey = k; fver = x->m.k[k].alt; }
        if (cu_verify(x->db, &x->m, why, sizeof why)) {
            fx_report("%s %s n=%llu (rc %s): the open handle after the fault: %s", s->name, vn,
                      (unsigned long long)i, calypso_strerror(rc), why);
            goto fail;
        }
        if (rc != CALYPSO_OK && fkey != CU_NONE && x->m.k[fkey].ver == fver) fx_visible++;
        if ((s->flags & FX_ATOMIC) && fx_group_split(x)) {
            fx_report("%s %s n=%llu (rc %s): the open handle shows part of the deletions", s->name,
                      vn, (unsigned long long)i, calypso_strerror(rc));
            goto fail;
        }
        /* In flight until it returns: a durable put whose sync fails (here
         * the sync of the file a rotation sealed) may be there after all. */
        uint32_t pv = fx_ver++;
        x->m.k[x->m.n].alt = pv;
        int prc = cu_put(x->db, &x->m, x->m.n, pv, 0);
        if (prc == CALYPSO_OK) {
            x->m.k[x->m.n].ver = pv;
            x->m.k[x->m.n].alt = CU_NONE;
        } else if (!calypso_errmsg(x->db)[0]) {
            fx_report("%s %s n=%llu: the handle refuses writes (%s) with no message", s->name,
                      vn, (unsigned long long)i, calypso_strerror(prc));
            goto fail;
        }
        calypso_close(x->db);
        x->db = NULL;
    }

    calypso *db = NULL;
    int orc = calypso_open(x->work, &x->opt, &db);
    if (orc) {
        fx_report("%s %s n=%llu (rc %s): reopen fails: %s: %s", s->name, vn,
                  (unsigned long long)i, calypso_strerror(rc), calypso_strerror(orc),
                  calypso_errmsg(NULL));
        goto fail;
    }
    if (cu_verify(db, &x->m, why, sizeof why)) {
        fx_report("%s %s n=%llu (rc %s): after reopen: %s", s->name, vn, (unsigned long long)i,
                  calypso_strerror(rc), why);
        calypso_close(db);
        goto fail;
    }
    if ((s->flags & FX_ATOMIC) && fx_group_split(x)) {
        fx_report("%s %s n=%llu (rc %s): after reopen, part of the deletions are there", s->name,
                  vn, (unsigned long long)i, calypso_strerror(rc));
        calypso_close(db);
        goto fail;
    }
    uint32_t pv = fx_ver++;
    if ((orc = cu_put(db, &x->m, x->m.n, pv, 0)) != CALYPSO_OK) {
        fx_report("%s %s n=%llu: the reopened database refuses a write: %s", s->name, vn,
                  (unsigned long long)i, calypso_errmsg(db));
        calypso_close(db);
        goto fail;
    }
    x->m.k[x->m.n].ver = pv;
    x->m.k[x->m.n].alt = CU_NONE;
    calypso_close(db);
    db = NULL;
    if ((orc = calypso_open(x->work, &x->opt, &db)) || cu_verify(db, &x->m, why, sizeof why)) {
        fx_report("%s %s n=%llu: second reopen: %s", s->name, vn, (unsigned long long)i,
                  orc ? calypso_errmsg(NULL) : why);
        if (db) calypso_close(db);
        goto fail;
    }
    calypso_close(db);
    return reached ? 0 : 1;
fail:
    if (x->db) calypso_close(x->db);
    x->db = NULL;
    cy_os_fail_reset();
    return reached ? -1 : -2;
}

/* The countdown for one scenario and variant; returns the runs made. Only
 * the first failure of a variant is reported; the countdown goes on. */
static uint64_t fx_countdown(fx *x, const fx_scn *s, const fx_var *v)
{
    uint64_t i;
    int failed = 0;
    /* Under CALYPSO_TEST_SCALE below 100 (valgrind), call points past the
     * first few are sampled with a stride instead of visited one by one. */
    uint64_t stride = 100 / cu_scaled(100);
    for (i = 1; i <= FX_MAXI; i += i < 4 ? 1 : stride) {
        fx_quiet = failed;
        int r = fx_run(x, s, v, i);
        fx_quiet = 0;
        if (r == -1) failed = 1;
        if (r == 1 || r == -2) break;
    }
    if (i > FX_MAXI) {
        char vn[96];
        fx_var_name(v, vn, sizeof vn);
        fx_report("%s %s: still reaching the fault after %u runs", s->name, vn, FX_MAXI);
    }
    return i;
}

/* Every variant over one scenario. */
static void fx_scenario(const fx_scn *s)
{
    fx x = { 0 };
    x.root = cu_scratch();
    assert_non_null(x.root);
    snprintf(x.tmpl, sizeof x.tmpl, "%s/tmpl", x.root);
    snprintf(x.work, sizeof x.work, "%s/work", x.root);
    snprintf(x.backup, sizeof x.backup, "%s/backup", x.root);
    s->setup(&x);

    /* The nth call of any kind failing once visits every call of the
     * operation; sticky failures of one kind test what a dead device or a
     * full disk does from some point on. The full set (CALYPSO_FAULTS=full,
     * run by `make crash-test`) adds the per-kind once and sticky loops. */
    fx_var vars[64];
    int nv = 0;
    vars[nv++] = (fx_var){ CY_OS_ANY, EIO, 0, 0 };
    vars[nv++] = (fx_var){ CY_OS_ANY, ENOSPC, 1, 1 };
    vars[nv++] = (fx_var){ CY_OS_PWRITE, ENOSPC, 1, 1 };
    vars[nv++] = (fx_var){ CY_OS_FALLOCATE, ENOSPC, 1, 0 };
    vars[nv++] = (fx_var){ CY_OS_FDATASYNC, EIO, 1, 0 };
    vars[nv++] = (fx_var){ CY_OS_FSYNC, EIO, 1, 0 };
    vars[nv++] = (fx_var){ CY_OS_RENAME, EIO, 1, 0 };
    vars[nv++] = (fx_var){ CY_OS_UNLINK, EIO, 1, 0 };
    if (fx_full()) {
        vars[nv++] = (fx_var){ CY_OS_ANY, EIO, 1, 0 };
        vars[nv++] = (fx_var){ CY_OS_ANY, ENOSPC, 0, 1 };
        for (int k = 0; k < CY_OS__COUNT; k++) {
            vars[nv++] = (fx_var){ k, EIO, 0, 0 };
            vars[nv++] = (fx_var){ k, EIO, 1, 0 };
        }
    }

    uint64_t runs = 0;
    int before = fx_nfail;
    for (int j = 0; j < nv; j++) runs += fx_countdown(&x, s, &vars[j]);
    printf("[ FAULTS   ] %-16s %llu runs over %d variants, %d distinct failures (%d more "
           "of the same kinds)\n", s->name, (unsigned long long)runs, nv, fx_nfail - before,
           fx_nquiet);
    fx_nquiet = 0;
    if (fx_visible)
        printf("[ NOTE     ] %-16s %d runs where the call failed but its write took effect "
               "(visible at once and after reopen)\n", s->name, fx_visible);
    fx_visible = 0;
    fflush(stdout);
    cu_model_free(&x.base);
    cu_model_free(&x.m);
    cu_rmrf(x.root);
}

static void fx_check_failures(void)
{
    if (fx_nfail == 0) return;
    print_error("%d fault-injection failures; first ones:\n", fx_nfail);
    for (int i = 0; i < fx_nfail && i < 256; i++) print_error("  %s\n", fx_fail[i]);
    fx_nfail = 0;
    fail();
}

#define FX_TEST(fn, ...)                                                        \
    static void fn(void **state)                                                \
    {                                                                           \
        (void)state;                                                            \
        static const fx_scn s = { __VA_ARGS__ };                                \
        fx_scenario(&s);                                                        \
        fx_check_failures();                                                    \
    }

FX_TEST(test_fault_put, "put", fx_tmpl_always, NULL, fx_body_put, 0)
FX_TEST(test_fault_put_nosync, "put-nosync", fx_tmpl_none, NULL, fx_body_put_new, 0)
FX_TEST(test_fault_put_ttl, "put-ttl", fx_tmpl_always, NULL, fx_body_put_ttl, 0)
FX_TEST(test_fault_delete, "delete", fx_tmpl_always, NULL, fx_body_delete, 0)
FX_TEST(test_fault_rotate, "rotate", fx_tmpl_files, NULL, fx_body_rotate, 0)
FX_TEST(test_fault_hints_at_close,
        "hints-at-close", fx_tmpl_files, NULL, fx_body_rotate_close, FX_BODY_CLOSES)
FX_TEST(test_fault_merge, "merge", fx_tmpl_files, NULL, fx_body_merge, 0)
FX_TEST(test_fault_sift, "sift", fx_tmpl_always, NULL, fx_body_sift, FX_ATOMIC)
FX_TEST(test_fault_reopen, "reopen", fx_tmpl_files, NULL, fx_body_reopen, FX_REOPENS)
FX_TEST(test_fault_backup, "backup", fx_tmpl_files, NULL, fx_body_backup, FX_BACKUP)
FX_TEST(test_fault_open, "open", fx_tmpl_files, NULL, fx_body_open, FX_BODY_OPENS)
FX_TEST(test_fault_open_committed_merge,
        "open-committed", fx_tmpl_committed, NULL, fx_body_open, FX_BODY_OPENS)
FX_TEST(test_fault_open_moved_merge,
        "open-moved", fx_tmpl_moved, NULL, fx_body_open, FX_BODY_OPENS)
FX_TEST(test_fault_open_damaged,
        "open-damaged", fx_tmpl_damaged, NULL, fx_body_open, FX_BODY_OPENS)
FX_TEST(test_fault_close,
        "close", fx_tmpl_files, fx_prep_close, fx_body_close, FX_BODY_CLOSES)

// >> EINTR ------------------------------------------------------------------------

/* Rotation creates the next datafile and then fails to take it as the
 * active one (its fstat fails): the descriptor is closed once, there. The
 * number it had goes to the next file anybody opens, here the test's own,
 * and closing the database must not close that one. */
static void test_failed_rotation_closes_its_descriptor_once(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tu_opts_small_files();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char v[1000];
    memset(v, 'v', sizeof v);
    /* The first fstat from here on is the new file's, in the put that
     * rotates (about the fourth): puts make none of their own. The
     * background thread's calls (hints of sealed files) are left out. */
    int rc = CALYPSO_OK, puts = 0;
    cy_os_fail_here(CY_OS_FSTAT, 1, EIO, 0, 0);
    while (rc == CALYPSO_OK && puts < 8) {
        char k[8];
        int kl = snprintf(k, sizeof k, "k%d", puts);
        if ((rc = calypso_put(db, k, (size_t)kl, v, sizeof v)) == CALYPSO_OK) puts++;
    }
    cy_os_fail_reset();
    assert_int_equal(rc, CALYPSO_EIO);
    assert_non_null(strstr(calypso_errmsg(db), "adding datafile"));
    int mine = open("/dev/null", O_RDONLY);
    assert_true(mine >= 0);
    calypso_close(db);
    assert_true(fcntl(mine, F_GETFD) != -1);   /* still open */
    close(mine);
    TU_OK(NULL, calypso_open(dir, &o, &db));
    assert_true(puts >= 1);
    tu_expect_keys(db, "k%d", puts, sizeof v);   /* every acknowledged put */
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* ENOSPC from each fstat of an open in turn (the active file's among them,
 * which open once took for the full disk its rotation may meet, and went
 * on without an active file): the open fails with a message, or the
 * handle it gives reads every key and takes a put (or refuses it with a
 * message, as after any full disk). */
static void test_open_fstat_enospc_fails_or_works(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tu_opts_small_files();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char v[1000];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 12; i++) {   /* a few sealed files and an active one */
        char k[8];
        int kl = snprintf(k, sizeof k, "k%d", i);
        TU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
    }
    TU_OK(db, calypso_close(db));
    int failed = 0, reached = 1;
    for (uint64_t n = 1; reached && n < 200; n++) {
        uint64_t before = cy_os_count_here(CY_OS_FSTAT);
        cy_os_fail_here(CY_OS_FSTAT, n, ENOSPC, 0, 0);
        int rc = calypso_open(dir, &o, &db);
        reached = cy_os_count_here(CY_OS_FSTAT) - before >= n;
        cy_os_fail_reset();
        if (rc != CALYPSO_OK) {
            assert_true(calypso_errmsg(NULL)[0] != 0);
            failed++;
            continue;
        }
        /* A put works, or is refused with a message (the open met a
         * full disk: puts stay off the space deletes need). */
        int prc = calypso_put(db, "after", 5, v, sizeof v);
        if (prc == CALYPSO_OK) {
            size_t vl = 0;
            char got[sizeof v];
            TU_OK(db, calypso_get_buf(db, "after", 5, got, sizeof got, &vl));
            assert_int_equal(vl, sizeof v);
            TU_OK(db, calypso_delete(db, "after", 5));
        } else {
            assert_int_equal(prc, CALYPSO_ENOSPC);
            assert_true(calypso_errmsg(db)[0] != 0);
        }
        tu_expect_keys(db, "k%d", 12, sizeof v);
        TU_OK(db, calypso_close(db));
    }
    assert_true(failed > 0);   /* the faults met the open's own calls */
    tu_rmrf(dir);
}

/* An EINTR on every interruptible call, from the first on: everything still
 * works, nothing is reported. */
static void test_eintr_is_invisible(void **state)
{
    (void)state;
    fx x = { 0 };
    x.root = cu_scratch();
    snprintf(x.tmpl, sizeof x.tmpl, "%s/tmpl", x.root);
    static const int kinds[] = { CY_OS_OPEN, CY_OS_CLOSE, CY_OS_PREAD, CY_OS_PWRITE,
                                 CY_OS_FSYNC, CY_OS_FDATASYNC, CY_OS_FTRUNCATE, CY_OS_FLOCK,
                                 CY_OS_FALLOCATE, CY_OS_ANY };
    for (size_t k = 0; k < sizeof kinds / sizeof *kinds; k++) {
        if (kinds[k] == CY_OS_ANY) continue;   /* ANY would include rename and unlink */
        cy_os_fail_at(kinds[k], 1, EINTR, 1, 0);
        calypso *db = fx_begin(&x, fx_opts(CALYPSO_SYNC_ALWAYS, 4096));
        fx_fill(&x, db);
        assert_int_equal(calypso_merge(db), CALYPSO_OK);
        fx_end(&x, db);
        db = fx_open_ok(x.tmpl, &x.opt);
        char why[512];
        if (cu_verify(db, &x.m, why, sizeof why)) fail_msg("EINTR on %s: %s", fx_kind_name(kinds[k]), why);
        assert_int_equal(calypso_close(db), CALYPSO_OK);
        cy_os_fail_reset();
    }
    cu_model_free(&x.base);
    cu_model_free(&x.m);
    cu_rmrf(x.root);
}

// >> allocation failures ---------------------------------------------------------------

typedef int (*fx_alloc_body)(fx *x);

static int fx_abody_put(fx *x)
{
    /* A new key (the tree grows), an overwrite, a TTL put (the TTL index). */
    int rc = fx_put(x, x->db, 50, 0);
    if (!rc) rc = fx_put(x, x->db, 4, 0);
    if (!rc) rc = fx_put(x, x->db, 51, FX_TTL);
    if (!rc) rc = fx_put(x, x->db, 10, FX_TTL);
    return rc;
}

static int fx_abody_merge(fx *x) { return calypso_merge(x->db); }

static int fx_abody_get(fx *x)
{
    char k[16];
    size_t klen = cu_key_of(&x->m, 3, k);
    void *v = NULL;
    size_t vlen;
    int rc = calypso_get(x->db, k, klen, &v, &vlen);
    calypso_free(v);
    return rc;
}

static int fx_abody_open(fx *x) { return fx_body_open(x); }

/* The allocation countdown over one body. An operation that fails must
 * fail with CALYPSO_ENOMEM and change nothing. */
static void fx_alloc_countdown(const char *name, void (*setup)(fx *x), fx_alloc_body body,
                               int opens, int sticky)
{
    fx x = { 0 };
    x.root = cu_scratch();
    snprintf(x.tmpl, sizeof x.tmpl, "%s/tmpl", x.root);
    snprintf(x.work, sizeof x.work, "%s/work", x.root);
    setup(&x);
    char why[512];
    uint64_t i;
    int failures = 0;
    for (i = 1; i <= FX_MAXI; i++) {
        fx_quiet = failures > 0;
        cu_rmtree(x.work);
        assert_int_equal(cu_copy_tree(x.tmpl, x.work), 0);
        cu_model_free(&x.m);
        cu_model_copy(&x.m, &x.base);
        x.db = opens ? NULL : fx_open_ok(x.work, &x.opt);
        cy_alloc_fail_at(i, sticky);
        int rc = body(&x);
        uint64_t made = cy_alloc_count();
        cy_alloc_fail_at(0, 0);
        const char *msg = x.db ? calypso_errmsg(x.db) : calypso_errmsg(NULL);
        if (rc != CALYPSO_OK && rc != CALYPSO_ENOMEM) {
            fx_report("alloc %s%s n=%llu: %s (%s), not ENOMEM", name, sticky ? "/sticky" : "",
                      (unsigned long long)i, calypso_strerror(rc), msg);
            failures++;
        } else if (rc == CALYPSO_ENOMEM && !msg[0]) {
            fx_report("alloc %s n=%llu: ENOMEM with no message", name, (unsigned long long)i);
            failures++;
        }
        /* Failed puts must have left no trace: nothing in flight. */
        for (uint32_t k = 0; k <= x.m.n && rc == CALYPSO_ENOMEM; k++) x.m.k[k].alt = CU_NONE;
        if (x.db) {
            if (cu_verify(x.db, &x.m, why, sizeof why)) {
                fx_report("alloc %s%s n=%llu (rc %s): in memory: %s", name,
                          sticky ? "/sticky" : "", (unsigned long long)i, calypso_strerror(rc),
                          why);
                failures++;
            }
            calypso_close(x.db);
            x.db = NULL;
        }
        calypso *db = NULL;
        int orc = calypso_open(x.work, &x.opt, &db);
        if (orc) {
            fx_report("alloc %s n=%llu: reopen: %s", name, (unsigned long long)i,
                      calypso_errmsg(NULL));
            failures++;
        } else if (!orc && cu_verify(db, &x.m, why, sizeof why)) {
            fx_report("alloc %s%s n=%llu (rc %s): after reopen: %s", name,
                      sticky ? "/sticky" : "", (unsigned long long)i, calypso_strerror(rc), why);
            failures++;
        }
        if (db) calypso_close(db);
        if (made < i) break;
    }
    fx_quiet = 0;
    printf("[ ALLOC    ] %-16s %s: %llu runs\n", name, sticky ? "sticky" : "once",
           (unsigned long long)i);
    fflush(stdout);
    cu_model_free(&x.base);
    cu_model_free(&x.m);
    cu_rmrf(x.root);
}

static void test_alloc_put(void **state)
{
    (void)state;
    fx_alloc_countdown("put", fx_tmpl_none, fx_abody_put, 0, 0);
    fx_alloc_countdown("put", fx_tmpl_none, fx_abody_put, 0, 1);
    fx_check_failures();
}

static void test_alloc_get(void **state)
{
    (void)state;
    fx_alloc_countdown("get", fx_tmpl_none, fx_abody_get, 0, 0);
    fx_check_failures();
}

static void test_alloc_open(void **state)
{
    (void)state;
    fx_alloc_countdown("open", fx_tmpl_files, fx_abody_open, 1, 0);
    fx_alloc_countdown("open", fx_tmpl_files, fx_abody_open, 1, 1);
    fx_alloc_countdown("open-committed", fx_tmpl_committed, fx_abody_open, 1, 0);
    fx_check_failures();
}

static void test_alloc_merge(void **state)
{
    (void)state;
    fx_alloc_countdown("merge", fx_tmpl_files, fx_abody_merge, 0, 0);
    fx_alloc_countdown("merge", fx_tmpl_files, fx_abody_merge, 0, 1);
    fx_check_failures();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fault_put),
        cmocka_unit_test(test_fault_put_nosync),
        cmocka_unit_test(test_fault_put_ttl),
        cmocka_unit_test(test_fault_delete),
        cmocka_unit_test(test_fault_rotate),
        cmocka_unit_test(test_fault_hints_at_close),
        cmocka_unit_test(test_fault_merge),
        cmocka_unit_test(test_fault_sift),
        cmocka_unit_test(test_fault_reopen),
        cmocka_unit_test(test_fault_backup),
        cmocka_unit_test(test_fault_open),
        cmocka_unit_test(test_fault_open_committed_merge),
        cmocka_unit_test(test_fault_open_moved_merge),
        cmocka_unit_test(test_fault_open_damaged),
        cmocka_unit_test(test_fault_close),
        cmocka_unit_test(test_failed_rotation_closes_its_descriptor_once),
        cmocka_unit_test(test_open_fstat_enospc_fails_or_works),
        cmocka_unit_test(test_eintr_is_invisible),
        cmocka_unit_test(test_alloc_put),
        cmocka_unit_test(test_alloc_get),
        cmocka_unit_test(test_alloc_open),
        cmocka_unit_test(test_alloc_merge),
    };
    const char *filter = getenv("CALYPSO_TEST_FILTER");
    if (filter && *filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
