/*
 * test_ns.c: namespaces (calypso_ns_open, calypso_ns_drop, calypso_ns_list,
 * calypso_batch_ns, calypso_txn_ns).
 *
 *   - every key function on the default namespace and two named ones
 *     holding the same keys: each sees only its own;
 *   - nesting, listing, recursive drop, handles of dropped namespaces;
 *   - a namespace dropped and created again is empty;
 *   - reopening keeps everything: with hints, without them, after a merge,
 *     after a drop and a merge;
 *   - a merge reclaims a dropped namespace's bytes (reclaimable, file sizes);
 *   - the name limit at its boundary and one past, bad names, the
 *     namespace id limit in IDS;
 *   - closing and reopening the database with namespace handles open;
 *   - batches and updates across namespaces;
 *   - a drop under an open view, cursor and batch; the TTL sweeper in
 *     every namespace; threads writing, dropping and walking at once;
 *   - crash atomicity of create, drop and a cross-namespace batch, under
 *     SIGKILL and under the power-loss simulator;
 *   - a database in the format written before namespaces (crafted byte by
 *     byte here) opens as the default namespace.
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

static calypso_options ns_opts(uint64_t max_file)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = max_file;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

static calypso *ns_open_db(const char *dir, const calypso_options *o)
{
    calypso *db = NULL;
    int rc = calypso_open(dir, o, &db);
    if (rc) print_error("open %s: %s\n", dir, calypso_errmsg(NULL));
    assert_int_equal(rc, CALYPSO_OK);
    return db;
}

static calypso *ns_get(calypso *db, const char *name, int create)
{
    calypso *h = NULL;
    TU_OK(db, calypso_ns_open(db, name, strlen(name), create, &h));
    assert_non_null(h);
    return h;
}

static void ns_put(calypso *h, const char *k, const char *v)
{
    TU_OK(h, calypso_put(h, k, strlen(k), v, strlen(v)));
}

/* Asserts h holds k = v (v NULL: absent). */
static void ns_expect(calypso *h, const char *k, const char *v)
{
    void *val = NULL;
    size_t vlen = 0;
    int rc = calypso_get(h, k, strlen(k), &val, &vlen);
    if (!v) {
        if (rc != CALYPSO_ENOTFOUND) print_error("%s: want absent, got rc %d\n", k, rc);
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        assert_int_equal(calypso_has(h, k, strlen(k)), 0);
        return;
    }
    if (rc) print_error("%s: want %s, got rc %d (%s)\n", k, v, rc, calypso_errmsg(h));
    assert_int_equal(rc, CALYPSO_OK);
    assert_int_equal(vlen, strlen(v));
    assert_memory_equal(val, v, vlen);
    calypso_free(val);
    char buf[64];
    TU_OK(h, calypso_get_buf(h, k, strlen(k), buf, sizeof buf, &vlen));
    assert_memory_equal(buf, v, vlen);
    assert_int_equal(calypso_has(h, k, strlen(k)), 1);
}

/* Keys a walk saw, joined as "k1,k2,". */
typedef struct { char s[4096]; } ns_seen;

static int ns_collect(const void *k, size_t klen, void *ctx)
{
    ns_seen *s = ctx;
    size_t n = strlen(s->s);
    snprintf(s->s + n, sizeof s->s - n, "%.*s,", (int)klen, (const char *)k);
    return 0;
}

static const char *ns_fold(calypso *h, ns_seen *s)
{
    s->s[0] = 0;
    TU_OK(h, calypso_fold(h, ns_collect, s));
    return s->s;
}

static const char *ns_names(calypso *db, const char *parent, ns_seen *s)
{
    s->s[0] = 0;
    TU_OK(db, calypso_ns_list(db, parent, parent ? strlen(parent) : 0, ns_collect, s));
    return s->s;
}

static int ns_sift_x(const void *k, size_t klen, void *ctx)
{
    (void)ctx;
    return klen > 0 && ((const char *)k)[0] == 'x';
}

static int ns_update_fn(calypso_txn *tx, void *ctx)
{
    (void)ctx;
    void *v;
    size_t vl;
    assert_int_equal(calypso_txn_get(tx, "k1", 2, &v, &vl), CALYPSO_OK);
    calypso_free(v);
    return calypso_txn_put(tx, "u", 1, "in-update", 9);
}

static int ns_view_fn(calypso_txn *tx, void *ctx)
{
    const char *want = ctx;
    void *v;
    size_t vl;
    int rc = calypso_txn_get(tx, "k1", 2, &v, &vl);
    if (rc) return rc;
    int same = vl == strlen(want) && memcmp(v, want, vl) == 0;
    calypso_free(v);
    return same ? 0 : -100;
}

/* Every key function on the default namespace and two named ones with the
 * same keys: each sees its own values and nothing of the others. */
static void test_ns_isolation(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    calypso *a = ns_get(db, "a", 1), *b = ns_get(db, "b", 1);
    calypso *hs[3] = { db, a, b };
    const char *tag[3] = { "d", "a", "b" };
    char k[16], v[16];
    for (int h = 0; h < 3; h++)
        for (int i = 0; i < 5; i++) {
            snprintf(k, sizeof k, "k%d", i);
            snprintf(v, sizeof v, "%s%d", tag[h], i);
            ns_put(hs[h], k, v);
        }
    ns_put(a, "xa", "only-a");
    TU_OK(b, calypso_put_ttl(b, "t", 1, "ttl", 3, 3600000));
    for (int h = 0; h < 3; h++)
        for (int i = 0; i < 5; i++) {
            snprintf(k, sizeof k, "k%d", i);
            snprintf(v, sizeof v, "%s%d", tag[h], i);
            ns_expect(hs[h], k, v);
        }
    ns_expect(db, "xa", NULL);
    ns_expect(b, "xa", NULL);
    ns_expect(a, "xa", "only-a");
    uint64_t exp = 0;
    TU_OK(b, calypso_ttl(b, "t", 1, &exp));
    assert_true(exp > 0);
    assert_int_equal(calypso_ttl(a, "t", 1, &exp), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_ttl(db, "t", 1, &exp), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_len(db), 5);
    assert_int_equal(calypso_len(a), 6);
    assert_int_equal(calypso_len(b), 6);
    ns_seen s;
    assert_string_equal(ns_fold(db, &s), "k0,k1,k2,k3,k4,");
    assert_string_equal(ns_fold(a, &s), "k0,k1,k2,k3,k4,xa,");
    assert_string_equal(ns_fold(b, &s), "k0,k1,k2,k3,k4,t,");
    s.s[0] = 0;
    TU_OK(a, calypso_scan(a, "x", 1, ns_collect, &s));
    assert_string_equal(s.s, "xa,");
    s.s[0] = 0;
    TU_OK(b, calypso_range(b, "k3", 2, "z", 1, ns_collect, &s));
    assert_string_equal(s.s, "k3,k4,t,");
    /* stats: keys and bytes per namespace, files of the database */
    struct calypso_stats sd, sa, sb;
    TU_OK(db, calypso_stats(db, &sd));
    TU_OK(a, calypso_stats(a, &sa));
    TU_OK(b, calypso_stats(b, &sb));
    assert_int_equal(sd.keys, 5);
    assert_int_equal(sa.keys, 6);
    assert_int_equal(sb.keys, 6);
    assert_true(sa.live_bytes > sd.live_bytes);
    assert_int_equal(sa.datafiles, sd.datafiles);
    assert_int_equal(sa.size, sd.size);
    /* cursors */
    calypso_cursor *c;
    TU_OK(a, calypso_cursor_open(a, &c));
    TU_OK(a, calypso_cursor_seek(c, "k4", 2));
    const void *ck, *cv;
    size_t ckl, cvl;
    TU_OK(a, calypso_cursor_key(c, &ck, &ckl));
    TU_OK(a, calypso_cursor_value(c, &cv, &cvl));
    assert_memory_equal(cv, "a4", 2);
    TU_OK(a, calypso_cursor_next(c));
    TU_OK(a, calypso_cursor_key(c, &ck, &ckl));
    assert_memory_equal(ck, "xa", 2);
    assert_int_equal(calypso_cursor_next(c), CALYPSO_ENOTFOUND);
    calypso_cursor_close(c);
    /* a batch opened on b writes b */
    calypso_batch *bt;
    TU_OK(b, calypso_batch_open(b, &bt));
    TU_OK(b, calypso_batch_put(bt, "k0", 2, "B0", 2));
    TU_OK(b, calypso_batch_delete(bt, "k1", 2));
    TU_OK(b, calypso_batch_commit(bt));
    ns_expect(b, "k0", "B0");
    ns_expect(b, "k1", NULL);
    ns_expect(db, "k1", "d1");
    ns_expect(a, "k0", "a0");
    /* update and view on a */
    TU_OK(a, calypso_update(a, ns_update_fn, NULL));
    ns_expect(a, "u", "in-update");
    ns_expect(db, "u", NULL);
    TU_OK(a, calypso_view(a, ns_view_fn, "a1"));
    TU_OK(db, calypso_view(db, ns_view_fn, "d1"));
    /* delete, sift, delete_all */
    TU_OK(a, calypso_delete(a, "k2", 2));
    ns_expect(a, "k2", NULL);
    ns_expect(db, "k2", "d2");
    ns_expect(b, "k2", "b2");
    TU_OK(a, calypso_sift(a, ns_sift_x, NULL));
    ns_expect(a, "xa", NULL);
    TU_OK(b, calypso_delete_all(b));
    assert_int_equal(calypso_len(b), 0);
    assert_int_equal(calypso_len(db), 5);
    assert_int_equal(calypso_len(a), 5);
    /* run_gc on a namespace deletes its expired keys only */
    TU_OK(a, calypso_put_ttl(a, "e", 1, "x", 1, 1));
    TU_OK(db, calypso_put_ttl(db, "e", 1, "x", 1, 1));
    cy_clock_shift(10);
    uint64_t before_a = a->ns->keydir.count, before_d = db->ns->keydir.count;
    TU_OK(a, calypso_run_gc(a));
    assert_int_equal(a->ns->keydir.count, before_a - 1);
    assert_int_equal(db->ns->keydir.count, before_d);
    cy_clock_shift(-10);
    /* errors of a namespace handle read through it */
    assert_int_equal(calypso_get(a, "", 0, (void **)&cv, &cvl), CALYPSO_EEMPTYKEY);
    assert_non_null(strstr(calypso_errmsg(a), "empty key"));
    TU_OK(a, calypso_close(a));
    TU_OK(b, calypso_close(b));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* Nesting, listing, recursive drop; handles of dropped namespaces. */
static void test_ns_nesting_list_drop(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    const char *names[] = { "x", "a", "a/c", "a/b", "a/b/d", "ab" };
    calypso *h[6];
    for (int i = 0; i < 6; i++) {
        h[i] = ns_get(db, names[i], 1);
        ns_put(h[i], "k", names[i]);
    }
    calypso *missing = NULL;
    assert_int_equal(calypso_ns_open(db, "q/r", 3, 1, &missing), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_ns_open(db, "q", 1, 0, &missing), CALYPSO_ENOTFOUND);
    assert_null(missing);
    ns_seen s;
    assert_string_equal(ns_names(db, NULL, &s), "a,ab,x,");
    assert_string_equal(ns_names(db, "a", &s), "a/b,a/c,");
    assert_string_equal(ns_names(db, "a/b", &s), "a/b/d,");
    assert_string_equal(ns_names(h[1], "x", &s), "");
    assert_int_equal(calypso_ns_list(db, "zz", 2, ns_collect, &s), CALYPSO_ENOTFOUND);
    /* a second handle of a namespace sees the same keys */
    calypso *again = ns_get(h[3], "a/b", 0);
    ns_expect(again, "k", "a/b");
    TU_OK(db, calypso_close(again));
    /* drop a: a, a/b, a/c, a/b/d go; ab and x stay */
    TU_OK(db, calypso_ns_drop(db, "a", 1));
    assert_int_equal(calypso_ns_drop(db, "a", 1), CALYPSO_ENOTFOUND);
    assert_string_equal(ns_names(db, NULL, &s), "ab,x,");
    assert_int_equal(calypso_ns_open(db, "a/b", 3, 0, &missing), CALYPSO_ENOTFOUND);
    ns_expect(h[5], "k", "ab");
    ns_expect(h[0], "k", "x");
    /* the dropped ones' handles: empty, writes refused */
    for (int i = 1; i <= 4; i++) {
        ns_expect(h[i], "k", NULL);
        assert_int_equal(calypso_len(h[i]), 0);
        assert_int_equal(calypso_put(h[i], "k", 1, "v", 1), CALYPSO_EINVAL);
        assert_non_null(strstr(calypso_errmsg(h[i]), "dropped"));
        assert_int_equal(calypso_delete(h[i], "k", 1), CALYPSO_EINVAL);
        calypso_batch *bt;
        TU_OK(h[i], calypso_batch_open(h[i], &bt));
        TU_OK(h[i], calypso_batch_put(bt, "k", 1, "v", 1));
        assert_int_equal(calypso_batch_commit(bt), CALYPSO_EINVAL);
    }
    for (int i = 0; i < 6; i++) TU_OK(db, calypso_close(h[i]));
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    assert_string_equal(ns_names(db, NULL, &s), "ab,x,");
    assert_int_equal(calypso_ns_open(db, "a", 1, 0, &missing), CALYPSO_ENOTFOUND);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* Dropped and created again: empty, across reopens too. */
static void test_ns_recreate_empty(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    calypso *a = ns_get(db, "a", 1);
    ns_put(a, "old", "1");
    uint32_t first_id = a->ns->id;
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_ns_drop(db, "a", 1));
    a = ns_get(db, "a", 1);
    assert_true(a->ns->id > first_id);
    ns_expect(a, "old", NULL);
    assert_int_equal(calypso_len(a), 0);
    ns_put(a, "new", "2");
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    a = ns_get(db, "a", 0);
    ns_expect(a, "old", NULL);
    ns_expect(a, "new", "2");
    uint32_t second_id = a->ns->id;
    TU_OK(db, calypso_close(a));
    /* ids are never reused, across a reopen too (IDS holds the limit) */
    TU_OK(db, calypso_ns_drop(db, "a", 1));
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    a = ns_get(db, "a", 1);
    assert_true(a->ns->id > second_id);
    assert_int_equal(calypso_len(a), 0);
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* The expected contents of the reopen test: key i in namespace n. */
static void ns_fill(calypso *db, calypso **hs, int nh, int n, int ver)
{
    char k[32], v[64];
    for (int i = 0; i < n; i++)
        for (int h = 0; h < nh; h++) {
            snprintf(k, sizeof k, "key%05d", i);
            snprintf(v, sizeof v, "v%d-ns%d-%05d-padding-padding", ver, h, i);
            TU_OK(db, calypso_put(hs[h], k, strlen(k), v, strlen(v)));
        }
}

static void ns_check(calypso **hs, int nh, int n, int ver)
{
    char k[32], v[64];
    for (int h = 0; h < nh; h++) {
        assert_int_equal(calypso_len(hs[h]), (uint64_t)n);
        for (int i = 0; i < n; i++) {
            snprintf(k, sizeof k, "key%05d", i);
            snprintf(v, sizeof v, "v%d-ns%d-%05d-padding-padding", ver, h, i);
            ns_expect(hs[h], k, v);
        }
    }
}

static void ns_open_all(calypso *db, calypso **hs)
{
    hs[0] = db;
    hs[1] = ns_get(db, "one", 0);
    hs[2] = ns_get(db, "one/two", 0);
    hs[3] = ns_get(db, "three", 0);
}

static void ns_close_all(calypso **hs)
{
    for (int i = 1; i < 4; i++) TU_OK(hs[0], calypso_close(hs[i]));
    TU_OK(hs[0], calypso_close(hs[0]));
}

static void ns_remove_hints(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*.hint", dir);
    assert_int_equal(system(cmd), 0);
}

/* Reopen keeps everything: with hints, without, after a merge, after a
 * drop and a merge. */
/* Open replays into the keydirs as bulk loads (cy_art_bulk), the named
 * namespaces' too, and ends every one of them before it returns. */
static void ns_check_loaded(calypso *db)
{
    assert_int_equal(db->loading, 0);
    assert_int_equal(db->catalog.ns0.keydir.bulk, 0);
    assert_true(db->catalog.n >= 1);
    for (uint32_t i = 0; i < db->catalog.n; i++)
        assert_int_equal(db->catalog.cat[i]->keydir.bulk, 0);
}

static void test_ns_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(16 << 10);   /* many files, rotations */
    calypso *db = ns_open_db(dir, &o);
    calypso *hs[4];
    hs[0] = db;
    hs[1] = ns_get(db, "one", 1);
    hs[2] = ns_get(db, "one/two", 1);
    hs[3] = ns_get(db, "three", 1);
    ns_fill(db, hs, 4, 300, 1);
    ns_fill(db, hs, 4, 300, 2);    /* overwrites: dead bytes in every namespace */
    ns_close_all(hs);
    for (int round = 0; round < 4; round++) {
        db = ns_open_db(dir, &o);
        ns_check_loaded(db);
        ns_open_all(db, hs);
        ns_check(hs, 4, 300, 2);
        if (round == 1) TU_OK(db, calypso_merge(hs[2]));   /* from a namespace handle */
        if (round == 2) ns_fill(db, hs, 4, 300, 2);
        ns_close_all(hs);
        if (round == 0 || round == 2) ns_remove_hints(dir);
    }
    /* drop one, merge, reopen: the others intact, the dropped one gone */
    db = ns_open_db(dir, &o);
    TU_OK(db, calypso_ns_drop(db, "three", 5));
    TU_OK(db, calypso_merge(db));
    TU_OK(db, calypso_close(db));
    for (int round = 0; round < 2; round++) {
        db = ns_open_db(dir, &o);
        calypso *h3[3] = { db, ns_get(db, "one", 0), ns_get(db, "one/two", 0) };
        ns_check(h3, 3, 300, 2);
        calypso *gone = NULL;
        assert_int_equal(calypso_ns_open(db, "three", 5, 0, &gone), CALYPSO_ENOTFOUND);
        TU_OK(db, calypso_close(h3[1]));
        TU_OK(db, calypso_close(h3[2]));
        TU_OK(db, calypso_close(db));
        ns_remove_hints(dir);
    }
    tu_rmrf(dir);
}

/* What open builds from hints equals what it builds by scanning the
 * datafiles, when one hint holds records of a namespace before (in key
 * order) that namespace's drop, and records of a namespace created in the
 * same file: the one-pass load (entries of known namespaces applied as
 * they come) and the catalog-first passes after it agree with the scan. */
struct ns_figures { uint64_t keys[3], live[3], reclaimable; uint32_t nss; };

static int ns_count_one(const void *name, size_t nlen, void *ctx)
{
    (void)name;
    (void)nlen;
    (*(uint32_t *)ctx)++;
    return 0;
}

static void ns_figures_of(const char *dir, const calypso_options *o, struct ns_figures *f)
{
    calypso *db = ns_open_db(dir, o);
    calypso *hs[3] = { db, ns_get(db, "n", 0), ns_get(db, "p", 0) };
    memset(f, 0, sizeof *f);
    for (int i = 0; i < 3; i++) {
        struct calypso_stats st;
        TU_OK(db, calypso_stats(hs[i], &st));
        f->keys[i] = st.keys;
        f->live[i] = st.live_bytes;
        f->reclaimable = st.reclaimable;
    }
    TU_OK(db, calypso_ns_list(db, NULL, 0, ns_count_one, &f->nss));
    calypso *gone = NULL;
    assert_int_equal(calypso_ns_open(db, "m", 1, 0, &gone), CALYPSO_ENOTFOUND);
    ns_expect(hs[1], "0-late", "n-late");
    ns_expect(hs[2], "0-new", "p-new");
    ns_expect(hs[2], "z-new", "p-new");
    for (int i = 1; i < 3; i++) TU_OK(db, calypso_close(hs[i]));
    TU_OK(db, calypso_close(db));
}

static void test_ns_hint_load_matches_scan(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(16 << 10);
    calypso *db = ns_open_db(dir, &o);
    calypso *m = ns_get(db, "m", 1), *n = ns_get(db, "n", 1);
    calypso *hs[3] = { db, m, n };
    ns_fill(db, hs, 3, 300, 1);   /* many files; the creates in the first */
    ns_fill(db, hs, 3, 100, 2);
    /* The active file now: records of m whose keys sort before "m" (the
     * drop's key), then the drop; a namespace created here with records on
     * both sides of its name; an overwrite in n. */
    ns_put(m, "0-late", "m-late");
    ns_put(n, "0-late", "n-late");
    TU_OK(db, calypso_close(m));
    TU_OK(db, calypso_ns_drop(db, "m", 1));
    calypso *p = ns_get(db, "p", 1);
    ns_put(p, "0-new", "p-new");
    ns_put(p, "z-new", "p-new");
    ns_put(db, "0-late", "default-late");
    TU_OK(db, calypso_close(p));
    TU_OK(db, calypso_close(n));
    TU_OK(db, calypso_close(db));
    struct ns_figures hinted, scanned;
    ns_figures_of(dir, &o, &hinted);
    ns_remove_hints(dir);
    ns_figures_of(dir, &o, &scanned);
    assert_int_equal(hinted.nss, 2);
    assert_int_equal(hinted.keys[0], 301);
    assert_int_equal(hinted.keys[1], 301);
    assert_int_equal(hinted.keys[2], 2);
    assert_memory_equal(&hinted, &scanned, sizeof hinted);
    tu_rmrf(dir);
}

static uint64_t ns_dir_bytes(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "du -sb --exclude=RESERVE '%s'", dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    unsigned long long n = 0;
    assert_int_equal(fscanf(f, "%llu", &n), 1);
    pclose(f);
    return n;
}

/* A drop's bytes count as reclaimable at once and a merge frees them. */
static void test_ns_merge_reclaims_drop(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(64 << 10);
    calypso *db = ns_open_db(dir, &o);
    calypso *big = ns_get(db, "big", 1);
    calypso *kid = ns_get(db, "big/kid", 1);
    char k[32], v[200];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "k%06d", i);
        TU_OK(big, calypso_put(big, k, strlen(k), v, sizeof v));
        if (i % 4 == 0) TU_OK(kid, calypso_put(kid, k, strlen(k), v, sizeof v));
    }
    ns_put(db, "keep", "me");
    struct calypso_stats st;
    TU_OK(big, calypso_stats(big, &st));
    uint64_t live = st.live_bytes;
    TU_OK(kid, calypso_stats(kid, &st));
    live += st.live_bytes;
    int64_t dead0 = calypso_reclaimable(db);
    TU_OK(db, calypso_close(kid));
    TU_OK(db, calypso_ns_drop(db, "big", 3));
    int64_t dead1 = calypso_reclaimable(db);
    assert_true(dead1 - dead0 >= (int64_t)live);
    uint64_t before = ns_dir_bytes(dir);
    TU_OK(db, calypso_merge(db));
    uint64_t after = ns_dir_bytes(dir);
    print_message("dropped %llu live bytes: reclaimable %lld -> %lld, directory %llu -> %llu "
                  "bytes after the merge\n", (unsigned long long)live, (long long)dead0,
                  (long long)dead1, (unsigned long long)before, (unsigned long long)after);
    assert_true(after + live / 2 < before);
    assert_true(calypso_reclaimable(db) < dead1 / 10);
    ns_expect(db, "keep", "me");
    ns_expect(big, "k000001", NULL);
    TU_OK(db, calypso_close(big));
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    ns_expect(db, "keep", "me");
    assert_true(calypso_reclaimable(db) < dead1 / 10);
    ns_seen s;
    assert_string_equal(ns_names(db, NULL, &s), "");
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* Names: the limit, one past it, empty parts. The namespace id limit. */
static void test_ns_names_and_ids(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    char name[CALYPSO_NS_MAX_NAME + 2];
    memset(name, 'n', sizeof name);
    calypso *h = NULL;
    assert_int_equal(calypso_ns_open(db, name, CALYPSO_NS_MAX_NAME + 1, 1, &h),
                     CALYPSO_EINVAL);
    assert_null(h);
    TU_OK(db, calypso_ns_open(db, name, CALYPSO_NS_MAX_NAME, 1, &h));
    ns_put(h, "k", "v");
    TU_OK(db, calypso_close(h));
    const char *bad[] = { "/a", "a/", "a//b", "/" };
    for (int i = 0; i < 4; i++)
        assert_int_equal(calypso_ns_open(db, bad[i], strlen(bad[i]), 1, &h), CALYPSO_EINVAL);
    assert_int_equal(calypso_ns_open(db, "a", 0, 1, &h), CALYPSO_EINVAL);
    assert_int_equal(calypso_ns_open(db, NULL, 1, 1, &h), CALYPSO_EINVAL);
    assert_int_equal(calypso_ns_open(db, "a", 1, 1, NULL), CALYPSO_EINVAL);
    assert_int_equal(calypso_ns_drop(db, name, CALYPSO_NS_MAX_NAME + 1), CALYPSO_EINVAL);
    /* names are bytes: a 0 byte is a byte */
    TU_OK(db, calypso_ns_open(db, "z\0z", 3, 1, &h));
    TU_OK(db, calypso_close(h));
    assert_int_equal(calypso_ns_open(db, "z", 1, 0, &h), CALYPSO_ENOTFOUND);
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    TU_OK(db, calypso_ns_open(db, name, CALYPSO_NS_MAX_NAME, 0, &h));
    ns_expect(h, "k", "v");
    TU_OK(db, calypso_close(h));
    TU_OK(db, calypso_close(db));
    /* IDS holds the namespace id limit; at the end of the id space the
     * last id is handed out and the next create fails, changing nothing */
    char path[4200];
    snprintf(path, sizeof path, "%s/IDS", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    unsigned long long r = 0, m = 0, n = 0;
    assert_int_equal(fscanf(f, "ids %llu %llu %llu", &r, &m, &n), 3);
    fclose(f);
    assert_true(n > 2);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "ids %llu %llu 4294967295\n", r, m);
    fclose(f);
    db = ns_open_db(dir, &o);
    TU_OK(db, calypso_ns_open(db, "last", 4, 1, &h));
    assert_int_equal(h->ns->id, 4294967295u);
    TU_OK(db, calypso_close(h));
    assert_int_equal(calypso_ns_open(db, "past", 4, 1, &h), CALYPSO_EIO);
    assert_non_null(strstr(calypso_errmsg(db), "exhausted"));
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    ns_seen s;
    assert_int_equal(calypso_ns_list(db, NULL, 0, ns_collect, &s), CALYPSO_OK);
    assert_null(strstr(s.s, "past"));
    assert_non_null(strstr(s.s, "last"));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* The database handle is not closed or reopened under its namespace
 * handles; a namespace handle is not reopened; handles of another database
 * are refused. */
static void test_ns_handles(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *dir2 = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o), *other = ns_open_db(dir2, &o);
    calypso *a = ns_get(db, "a", 1);
    ns_put(a, "k", "v");
    assert_int_equal(calypso_close(db), CALYPSO_EINVAL);
    assert_int_equal(calypso_reopen(db), CALYPSO_EINVAL);
    assert_int_equal(calypso_reopen(a), CALYPSO_EINVAL);
    ns_expect(a, "k", "v");                   /* nothing was closed */
    calypso_batch *b;
    TU_OK(db, calypso_batch_open(db, &b));
    assert_int_equal(calypso_batch_ns(b, other), CALYPSO_EINVAL);
    assert_int_equal(calypso_batch_ns(b, NULL), CALYPSO_EINVAL);
    calypso_batch_abort(b);
    calypso_txn *tx;
    TU_OK(db, calypso_view_begin(a, &tx));
    assert_int_equal(calypso_txn_ns(tx, other), CALYPSO_EINVAL);
    TU_OK(db, calypso_txn_commit(tx));
    /* database-wide calls work through a namespace handle */
    TU_OK(a, calypso_sync(a));
    char bdir[4200];
    snprintf(bdir, sizeof bdir, "%s/backup", dir2);
    TU_OK(a, calypso_backup(a, bdir));
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_reopen(db));
    TU_OK(db, calypso_close(db));
    TU_OK(other, calypso_close(other));
    /* the backup carries the namespace */
    db = ns_open_db(bdir, &o);
    a = ns_get(db, "a", 0);
    ns_expect(a, "k", "v");
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
    tu_rmrf(dir2);
}

static int ns_cross_update(calypso_txn *tx, void *ctx)
{
    calypso **hs = ctx;
    int rc = calypso_txn_put(tx, "u", 1, "default", 7);
    if (!rc) rc = calypso_txn_ns(tx, hs[1]);
    if (!rc) rc = calypso_txn_put(tx, "u", 1, "in-a", 4);
    void *v;
    size_t vl;
    /* read your writes, per namespace */
    if (!rc) rc = calypso_txn_get(tx, "u", 1, &v, &vl);
    if (!rc) {
        rc = vl == 4 && memcmp(v, "in-a", 4) == 0 ? 0 : -101;
        calypso_free(v);
    }
    if (!rc) rc = calypso_txn_ns(tx, hs[0]);
    if (!rc) rc = calypso_txn_get(tx, "u", 1, &v, &vl);
    if (!rc) {
        rc = vl == 7 && memcmp(v, "default", 7) == 0 ? 0 : -102;
        calypso_free(v);
    }
    if (!rc) rc = calypso_txn_ns(tx, hs[2]);
    if (!rc) rc = calypso_txn_delete(tx, "gone", 4);
    if (!rc && calypso_txn_has(tx, "gone", 4) != 0) rc = -103;
    /* a cursor in the update sees b's keys with the update's delete */
    calypso_cursor *c;
    if (!rc) rc = calypso_txn_cursor_open(tx, &c);
    if (!rc) {
        int n = 0;
        for (int r = calypso_cursor_first(c); r == CALYPSO_OK; r = calypso_cursor_next(c)) n++;
        calypso_cursor_close(c);
        if (n != 1) rc = -104;
    }
    return rc;
}

/* Batches and updates across namespaces: all of them commit, or none. */
static void test_ns_cross_namespace(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    calypso *a = ns_get(db, "a", 1), *b = ns_get(db, "b", 1);
    ns_put(b, "gone", "x");
    ns_put(b, "stays", "y");
    calypso_batch *bt;
    TU_OK(db, calypso_batch_open(db, &bt));
    TU_OK(db, calypso_batch_put(bt, "k", 1, "d", 1));
    TU_OK(db, calypso_batch_ns(bt, a));
    TU_OK(db, calypso_batch_put(bt, "k", 1, "a", 1));
    TU_OK(db, calypso_batch_ns(bt, b));
    TU_OK(db, calypso_batch_put(bt, "k", 1, "b", 1));
    TU_OK(db, calypso_batch_delete(bt, "k", 1));       /* b's k: put, then deleted */
    TU_OK(db, calypso_batch_ns(bt, db));
    TU_OK(db, calypso_batch_put(bt, "k2", 2, "d2", 2));
    TU_OK(db, calypso_batch_commit(bt));
    ns_expect(db, "k", "d");
    ns_expect(db, "k2", "d2");
    ns_expect(a, "k", "a");
    ns_expect(a, "k2", NULL);
    ns_expect(b, "k", NULL);
    /* a batch naming a dropped namespace commits nothing */
    calypso *gone = ns_get(db, "gone", 1);
    TU_OK(db, calypso_batch_open(a, &bt));
    TU_OK(db, calypso_batch_put(bt, "z", 1, "1", 1));
    TU_OK(db, calypso_batch_ns(bt, gone));
    TU_OK(db, calypso_batch_put(bt, "z", 1, "2", 1));
    TU_OK(db, calypso_ns_drop(db, "gone", 4));
    assert_int_equal(calypso_batch_commit(bt), CALYPSO_EINVAL);
    ns_expect(a, "z", NULL);
    TU_OK(db, calypso_close(gone));
    /* an update across three namespaces, then a rolled-back one */
    calypso *hs[3] = { db, a, b };
    TU_OK(db, calypso_update(db, ns_cross_update, hs));
    ns_expect(db, "u", "default");
    ns_expect(a, "u", "in-a");
    ns_expect(b, "gone", NULL);
    ns_expect(b, "stays", "y");
    calypso_txn *tx;
    TU_OK(db, calypso_update_begin(a, &tx));
    TU_OK(db, calypso_txn_put(tx, "r", 1, "1", 1));
    TU_OK(db, calypso_txn_ns(tx, b));
    TU_OK(db, calypso_txn_put(tx, "r", 1, "1", 1));
    calypso_txn_rollback(tx);
    ns_expect(a, "r", NULL);
    ns_expect(b, "r", NULL);
    /* a view sees every namespace as of its start */
    TU_OK(db, calypso_view_begin(db, &tx));
    ns_put(a, "u", "later");
    TU_OK(db, calypso_txn_ns(tx, a));
    void *v;
    size_t vl;
    TU_OK(db, calypso_txn_get(tx, "u", 1, &v, &vl));
    assert_int_equal(vl, 4);
    assert_memory_equal(v, "in-a", 4);
    calypso_free(v);
    TU_OK(db, calypso_txn_commit(tx));
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(b));
    TU_OK(db, calypso_close(db));
    /* and all of it after a reopen */
    db = ns_open_db(dir, &o);
    a = ns_get(db, "a", 0);
    b = ns_get(db, "b", 0);
    ns_expect(db, "k", "d");
    ns_expect(a, "k", "a");
    ns_expect(a, "u", "later");
    ns_expect(b, "k", NULL);
    ns_expect(b, "gone", NULL);
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(b));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* A drop under an open view, cursor and batch of the namespace; the
 * view keeps the other namespaces as of its start. */
static void test_ns_drop_under_readers(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    calypso *a = ns_get(db, "a", 1);
    ns_put(a, "k", "v");
    ns_put(db, "k", "d");
    calypso_txn *view;
    TU_OK(db, calypso_view_begin(a, &view));
    calypso_cursor *c;
    TU_OK(a, calypso_cursor_open(a, &c));
    calypso_batch *bt;
    TU_OK(a, calypso_batch_open(a, &bt));
    TU_OK(a, calypso_batch_put(bt, "k2", 2, "v2", 2));
    TU_OK(db, calypso_close(a));               /* the cursor, view, batch keep it */
    ns_put(db, "k", "d2");
    TU_OK(db, calypso_ns_drop(db, "a", 1));
    assert_int_equal(calypso_cursor_first(c), CALYPSO_ENOTFOUND);
    calypso_cursor_close(c);
    void *v;
    size_t vl;
    assert_int_equal(calypso_txn_get(view, "k", 1, &v, &vl), CALYPSO_ENOTFOUND);
    TU_OK(db, calypso_txn_ns(view, db));
    TU_OK(db, calypso_txn_get(view, "k", 1, &v, &vl));
    assert_int_equal(vl, 1);
    assert_memory_equal(v, "d", 1);            /* as of the view's start */
    calypso_free(v);
    TU_OK(db, calypso_txn_commit(view));
    assert_int_equal(calypso_batch_commit(bt), CALYPSO_EINVAL);
    ns_expect(db, "k", "d2");
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* The background sweeper deletes expired keys in every namespace. */
static void test_ns_ttl_sweep(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    o.ttl_sweep_interval_ms = 5;
    calypso *db = ns_open_db(dir, &o);
    calypso *a = ns_get(db, "a", 1), *b = ns_get(db, "a/b", 1);
    calypso *hs[3] = { db, a, b };
    for (int h = 0; h < 3; h++) {
        TU_OK(hs[h], calypso_put_ttl(hs[h], "e", 1, "x", 1, 1000));
        ns_put(hs[h], "keep", "y");
    }
    cy_clock_shift(5000);
    /* the sweeper wakes every 5 ms; give it up to 10 s of wake-ups */
    int swept = 0;
    for (int i = 0; i < 2000 && !swept; i++) {
        cy_rdlock(&db->kd_lock);
        swept = db->ns->keydir.count == 1 && a->ns->keydir.count == 1 &&
                b->ns->keydir.count == 1;
        cy_unlock(&db->kd_lock);
        if (!swept) usleep(5000);
    }
    cy_clock_shift(-5000);
    assert_true(swept);
    for (int h = 0; h < 3; h++) ns_expect(hs[h], "keep", "y");
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(b));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* Threads: writers in namespaces of their own, one creating, filling and
 * dropping a namespace over and over, one walking the default namespace,
 * with merges and the sweeper running; each writer's keys all there at
 * the end, after a reopen too. */
typedef struct {
    calypso *db;
    int      id;
    int      rounds;
} ns_worker;

static void *ns_writer(void *arg)
{
    ns_worker *w = arg;
    char name[16], k[32], v[32];
    snprintf(name, sizeof name, "w%d", w->id);
    calypso *h = NULL;
    if (calypso_ns_open(w->db, name, strlen(name), 1, &h)) return (void *)1;
    for (int i = 0; i < w->rounds; i++) {
        snprintf(k, sizeof k, "k%05d", i % 500);
        snprintf(v, sizeof v, "%d-%d", w->id, i);
        if (calypso_put(h, k, strlen(k), v, strlen(v))) return (void *)2;
        if (i % 3 == 0) {
            void *got;
            size_t gl;
            if (calypso_get(h, k, strlen(k), &got, &gl)) return (void *)3;
            int same = gl == strlen(v) && memcmp(got, v, gl) == 0;
            calypso_free(got);
            if (!same) return (void *)4;
        }
        if (i % 97 == 0) {
            calypso_batch *b;
            if (calypso_batch_open(h, &b)) return (void *)5;
            calypso_batch_put(b, "batch", 5, v, strlen(v));
            calypso_batch_ns(b, w->db);
            calypso_batch_put(b, name, strlen(name), v, strlen(v));
            if (calypso_batch_commit(b)) return (void *)6;
        }
    }
    calypso_close(h);
    return NULL;
}

static void *ns_dropper(void *arg)
{
    ns_worker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        calypso *t, *tc;
        if (calypso_ns_open(w->db, "tmp", 3, 1, &t)) return (void *)1;
        if (calypso_ns_open(w->db, "tmp/c", 5, 1, &tc)) return (void *)2;
        char k[16];
        for (int j = 0; j < 50; j++) {
            snprintf(k, sizeof k, "t%03d", j);
            if (calypso_put(t, k, strlen(k), "x", 1) || calypso_put(tc, k, strlen(k), "y", 1))
                return (void *)3;
        }
        if (i % 2) calypso_close(t);             /* else dropped under its handle */
        if (calypso_ns_drop(w->db, "tmp", 3)) return (void *)4;
        if (calypso_len(tc) != 0) return (void *)5;
        if (!(i % 2)) calypso_close(t);
        calypso_close(tc);
        int mrc = i % 10 == 0 ? calypso_merge(w->db) : CALYPSO_OK;
        if (mrc != CALYPSO_OK && mrc != CALYPSO_EMERGING) return (void *)6;   /* auto-merge */
    }
    return NULL;
}

static int ns_count(const void *k, size_t kl, void *ctx)
{
    (void)k;
    (void)kl;
    (*(int *)ctx)++;
    return 0;
}

static void *ns_walker(void *arg)
{
    ns_worker *w = arg;
    for (int i = 0; i < w->rounds; i++) {
        int n = 0;
        if (calypso_fold(w->db, ns_count, &n)) return (void *)1;
        ns_seen s = { "" };
        if (calypso_ns_list(w->db, NULL, 0, ns_collect, &s)) return (void *)2;
    }
    return NULL;
}

static void test_ns_concurrent(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(32 << 10);
    o.merge_trigger_ratio = 0.3;
    o.merge_min_dead_bytes = 1;
    o.ttl_sweep_interval_ms = 2;
    calypso *db = ns_open_db(dir, &o);
    enum { NW = 3 };
    ns_worker w[NW + 2];
    pthread_t th[NW + 2];
    for (int i = 0; i < NW; i++) {
        w[i] = (ns_worker){ db, i, 3000 };
        assert_int_equal(pthread_create(&th[i], NULL, ns_writer, &w[i]), 0);
    }
    w[NW] = (ns_worker){ db, NW, 40 };
    assert_int_equal(pthread_create(&th[NW], NULL, ns_dropper, &w[NW]), 0);
    w[NW + 1] = (ns_worker){ db, NW + 1, 200 };
    assert_int_equal(pthread_create(&th[NW + 1], NULL, ns_walker, &w[NW + 1]), 0);
    for (int i = 0; i < NW + 2; i++) {
        void *ret;
        pthread_join(th[i], &ret);
        if (ret) print_error("thread %d failed at step %ld: %s\n", i, (long)(intptr_t)ret,
                             calypso_errmsg(db));
        assert_null(ret);
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < NW; i++) {
            char name[16], k[32], v[32];
            snprintf(name, sizeof name, "w%d", i);
            calypso *h = ns_get(db, name, 0);
            assert_int_equal(calypso_len(h), 501);
            for (int j = 3000 - 500; j < 3000; j++) {
                snprintf(k, sizeof k, "k%05d", j % 500);
                snprintf(v, sizeof v, "%d-%d", i, j);
                ns_expect(h, k, v);
            }
            TU_OK(db, calypso_close(h));
        }
        calypso *gone;
        assert_int_equal(calypso_ns_open(db, "tmp", 3, 0, &gone), CALYPSO_ENOTFOUND);
        TU_OK(db, calypso_close(db));
        db = ns_open_db(dir, &o);
    }
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* What the database holds, as a string: namespaces and their keys. */
static void ns_state(calypso *db, char *out, size_t cap)
{
    ns_seen top, kids;
    ns_names(db, NULL, &top);
    snprintf(out, cap, "top:%.1000s", top.s);
    for (const char *p = top.s; *p;) {
        const char *e = strchr(p, ',');
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(e - p), p);
        kids.s[0] = 0;
        TU_OK(db, calypso_ns_list(db, name, strlen(name), ns_collect, &kids));
        calypso *h = ns_get(db, name, 0);
        ns_seen keys;
        size_t n = strlen(out);
        snprintf(out + n, cap - n, " %s[%.1000s]{%.1000s}", name, kids.s, ns_fold(h, &keys));
        TU_OK(db, calypso_close(h));
        p = e + 1;
    }
    ns_seen dk;
    size_t n = strlen(out);
    snprintf(out + n, cap - n, " default{%.1000s}", ns_fold(db, &dk));
}

/* Faults anywhere in a create, a recursive drop or a cross-namespace
 * batch, for n = 1, 2, ... until the call completes before the nth:
 * memory running out at the nth allocation (CALYPSO_ENOMEM), the nth file
 * system call failing once with EIO, or with ENOSPC from then on (under
 * CALYPSO_SYNC_ALWAYS). The call fails with that error or succeeds, and
 * what the handle shows is what a reopen (faults off) finds. */
static void test_ns_faults(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(1 << 20);
    calypso *db = ns_open_db(dir, &o);
    int failures = 0;
    for (int kind = 0; kind < 3; kind++)
    for (int op = 0; op < 3; op++) {
        o.sync = kind ? CALYPSO_SYNC_ALWAYS : CALYPSO_SYNC_NONE;
        TU_OK(db, calypso_close(db));
        db = ns_open_db(dir, &o);
        for (uint64_t nth = 1;; nth++) {
            /* the state each attempt starts from */
            calypso *f = ns_get(db, "f", 1);
            ns_put(f, "fk", "1");
            calypso *g = NULL;
            if (op != 0) {
                g = ns_get(db, "f/g", 1);
                ns_put(g, "gk", "1");
            } else if (calypso_ns_open(db, "f/g", 3, 0, &g) == CALYPSO_OK) {
                TU_OK(db, calypso_close(g));
                TU_OK(db, calypso_ns_drop(db, "f/g", 3));
                g = NULL;
            }
            calypso *made = NULL;
            calypso_batch *b = NULL;
            if (op == 2) {
                TU_OK(db, calypso_batch_open(db, &b));
                TU_OK(db, calypso_batch_put(b, "bk", 2, "d", 1));
                TU_OK(db, calypso_batch_ns(b, f));
                TU_OK(db, calypso_batch_put(b, "bk", 2, "f", 1));
                TU_OK(db, calypso_batch_ns(b, g));
                TU_OK(db, calypso_batch_delete(b, "gk", 2));
            }
            int want = kind == 0 ? CALYPSO_ENOMEM : kind == 1 ? CALYPSO_EIO : CALYPSO_ENOSPC;
            if (kind == 0) {
                cy_alloc_fail_at(nth, 0);
            } else {
                cy_os_count_reset();
                cy_os_fail_at(CY_OS_ANY, nth, kind == 1 ? EIO : ENOSPC, kind == 2, 0);
            }
            int rc = op == 0 ? calypso_ns_open(db, "f/g", 3, 1, &made)
                   : op == 1 ? calypso_ns_drop(db, "f", 1)
                             : calypso_batch_commit(b);
            uint64_t calls = kind == 0 ? cy_alloc_count() : cy_os_count(CY_OS_ANY);
            if (kind == 0) cy_alloc_fail_at(0, 0);
            else cy_os_fail_reset();
            /* A failed fdatasync is CALYPSO_EIO whatever its errno. */
            if (kind == 2 && rc == CALYPSO_EIO && strstr(calypso_errmsg(db), "fdatasync "))
                want = CALYPSO_EIO;
            if (rc != CALYPSO_OK && rc != want)
                print_error("kind %d, op %d, call %llu: rc %d (%s)\n", kind, op,
                            (unsigned long long)nth, rc, calypso_errmsg(db));
            assert_true(rc == CALYPSO_OK || rc == want);
            if (rc) {
                failures++;
                assert_true(calypso_errmsg(db)[0] != 0);
            }
            if (made) TU_OK(db, calypso_close(made));
            if (g) TU_OK(db, calypso_close(g));
            TU_OK(db, calypso_close(f));
            char mem[16384], disk[16384];
            ns_state(db, mem, sizeof mem);
            calypso_close(db);          /* may report the failed sync again */
            db = ns_open_db(dir, &o);
            ns_state(db, disk, sizeof disk);
            if (strcmp(mem, disk) != 0)
                print_error("kind %d, op %d, call %llu (rc %d): memory %s, disk %s\n", kind,
                            op, (unsigned long long)nth, rc, mem, disk);
            assert_string_equal(mem, disk);
            if (op == 1 && rc == CALYPSO_OK) assert_null(strstr(disk, " f["));
            if (calls < nth) {             /* the call made fewer: none failed */
                TU_OK(db, rc);
                break;
            }
        }
    }
    print_message("%d calls failed by injected faults (memory, EIO, ENOSPC): none left "
                  "memory and disk apart\n", failures);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

// >> crashes ----------------------------------------------------------------------

/* The child's loop, step i: create c<i> and c<i>/sub; one batch puts k<i>
 * in the default namespace, in "fixed", and "k" in c<i> and c<i>/sub;
 * drop c<i-1> (and so c<i-1>/sub); ack i. */
static void ns_crash_child(const char *dir, const calypso_options *o, uint32_t from, int fd)
{
    calypso *db;
    if (calypso_open(dir, o, &db)) _exit(0);   /* a power cut may come at open */
    calypso *fixed;
    if (calypso_ns_open(db, "fixed", 5, 1, &fixed)) _exit(0);
    /* what the last run left undropped */
    for (uint32_t j = from > 3 ? from - 3 : 0; j < from; j++) {
        char n[32];
        int nl = snprintf(n, sizeof n, "c%06u", j);
        int rc = calypso_ns_drop(db, n, (size_t)nl);
        if (rc && rc != CALYPSO_ENOTFOUND) _exit(0);
    }
    for (uint32_t i = from;; i++) {
        char n[32], sub[40], k[32];
        int nl = snprintf(n, sizeof n, "c%06u", i);
        int sl = snprintf(sub, sizeof sub, "c%06u/sub", i);
        int kl = snprintf(k, sizeof k, "k%06u", i);
        calypso *c, *s;
        if (calypso_ns_open(db, n, (size_t)nl, 1, &c)) _exit(0);
        if (calypso_ns_open(db, sub, (size_t)sl, 1, &s)) _exit(0);
        calypso_batch *b;
        if (calypso_batch_open(db, &b)) _exit(0);
        if (calypso_batch_put(b, k, (size_t)kl, n, (size_t)nl) ||
            calypso_batch_ns(b, fixed) || calypso_batch_put(b, k, (size_t)kl, n, (size_t)nl) ||
            calypso_batch_ns(b, c) || calypso_batch_put(b, "k", 1, n, (size_t)nl) ||
            calypso_batch_ns(b, s) || calypso_batch_put(b, "k", 1, n, (size_t)nl))
            _exit(5);
        if (calypso_batch_commit(b)) _exit(0);
        calypso_close(c);
        calypso_close(s);
        if (i > 0) {
            nl = snprintf(n, sizeof n, "c%06u", i - 1);
            int rc = calypso_ns_drop(db, n, (size_t)nl);
            if (rc && rc != CALYPSO_ENOTFOUND) _exit(0);
        }
        if (write(fd, &i, sizeof i) != (ssize_t)sizeof i) _exit(8);
    }
}

typedef struct { uint32_t seen[64]; int n; } ns_cnames;

static int ns_collect_c(const void *k, size_t klen, void *ctx)
{
    ns_cnames *c = ctx;
    unsigned v = 0;
    char buf[32];
    snprintf(buf, sizeof buf, "%.*s", (int)klen, (const char *)k);
    if (strcmp(buf, "fixed") == 0) return 0;
    assert_int_equal(sscanf(buf, "c%6u", &v), 1);
    assert_true(c->n < 64);
    c->seen[c->n++] = v;
    return 0;
}


/* The numbers of keys "k<n>", in key order. */
typedef struct { uint32_t *v; size_t n, cap; } ns_nums;

static int ns_collect_num(const void *k, size_t klen, void *ctx)
{
    ns_nums *x = ctx;
    char buf[32];
    unsigned v = 0;
    snprintf(buf, sizeof buf, "%.*s", (int)klen, (const char *)k);
    assert_int_equal(sscanf(buf, "k%6u", &v), 1);
    if (x->n == x->cap) {
        x->cap = x->cap ? x->cap * 2 : 256;
        x->v = realloc(x->v, x->cap * sizeof *x->v);
        assert_non_null(x->v);
    }
    x->v[x->n++] = v;
    return 0;
}

/* Checks the invariants after a crash; returns the next step to run. */
static uint32_t ns_crash_check(const char *dir, const calypso_options *o, int have_ack,
                               uint32_t acked, const char *what)
{
    calypso *db = ns_open_db(dir, o);
    calypso *fixed = NULL;
    int rc = calypso_ns_open(db, "fixed", 5, 0, &fixed);
    if (rc == CALYPSO_ENOTFOUND) {
        /* the crash came before "fixed" was created: nothing else either */
        assert_int_equal(calypso_len(db), 0);
        TU_OK(db, calypso_close(db));
        return 0;
    }
    TU_OK(db, rc);
    /* the cross-namespace batches: the same k<i> in default and fixed */
    ns_nums nd = { 0 }, nf = { 0 };
    TU_OK(db, calypso_fold(db, ns_collect_num, &nd));
    TU_OK(fixed, calypso_fold(fixed, ns_collect_num, &nf));
    if (nd.n != nf.n) print_error("%s: default %zu keys, fixed %zu\n", what, nd.n, nf.n);
    assert_int_equal(nd.n, nf.n);
    for (size_t i = 0; i < nd.n; i++) assert_int_equal(nd.v[i], nf.v[i]);
    int any = nd.n > 0;
    uint32_t top = any ? nd.v[nd.n - 1] : 0;
    free(nd.v);
    free(nf.v);
    if (have_ack) assert_true(any && top >= acked);
    /* at most three c namespaces (the newest, its predecessor while its
     * drop did not happen, and one a cut run left for the next to drop); a child never without its parent; each either
     * with its batch's key in both, or (a crash between the create and the
     * batch) in neither */
    ns_cnames c = { { 0 }, 0 };
    TU_OK(db, calypso_ns_list(db, NULL, 0, ns_collect_c, &c));
    assert_true(c.n <= 3);
    for (int i = 0; i < c.n; i++) {
        char n[32], sub[40];
        snprintf(n, sizeof n, "c%06u", c.seen[i]);
        snprintf(sub, sizeof sub, "c%06u/sub", c.seen[i]);
        calypso *h, *s = NULL;
        TU_OK(db, calypso_ns_open(db, n, strlen(n), 0, &h));
        int has_sub = calypso_ns_open(db, sub, strlen(sub), 0, &s) == CALYPSO_OK;
        int in_h = calypso_has(h, "k", 1) == 1;
        int in_s = has_sub && calypso_has(s, "k", 1) == 1;
        if (in_h != in_s) print_error("%s: %s has k %d, its sub %d\n", what, n, in_h, in_s);
        assert_int_equal(in_h, in_s);
        if (in_h) {
            char k[32];
            snprintf(k, sizeof k, "k%06u", c.seen[i]);
            assert_int_equal(calypso_has(db, k, strlen(k)), 1);
        }
        if (s) TU_OK(db, calypso_close(s));
        TU_OK(db, calypso_close(h));
    }
    /* no orphan: the sub of a namespace that is gone is gone too */
    uint32_t hi = top + 2;
    for (int i = 0; i < c.n; i++) if (c.seen[i] + 2 > hi) hi = c.seen[i] + 2;
    for (uint32_t j = hi > 6 ? hi - 6 : 0; j <= hi; j++) {
        int listed = 0;
        for (int i = 0; i < c.n; i++) listed |= c.seen[i] == j;
        if (listed) continue;
        char sub[40];
        snprintf(sub, sizeof sub, "c%06u/sub", j);
        calypso *s = NULL;
        assert_int_equal(calypso_ns_open(db, sub, strlen(sub), 0, &s), CALYPSO_ENOTFOUND);
    }
    TU_OK(db, calypso_close(fixed));
    TU_OK(db, calypso_close(db));
    uint32_t next = any ? top + 1 : 0;
    for (int i = 0; i < c.n; i++)
        if (c.seen[i] + 1 > next) next = c.seen[i] + 1;
    return next;
}

static void test_ns_crash_sigkill(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_ns_crash_sigkill");
    const char *env = getenv("CALYPSO_NS_CYCLES");
    int cycles = env ? atoi(env) : 10;
    uint64_t rng = seed;
    char *dir = tu_tmpdir();
    calypso_options o = ns_opts(64 << 10);
    uint32_t next = 0;
    for (int cyc = 0; cyc < cycles; cyc++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            ns_crash_child(dir, &o, next, p[1]);
            _exit(0);
        }
        close(p[1]);
        usleep((useconds_t)(5000 + tu_below(&rng, 60000)));
        kill(pid, SIGKILL);
        int st = 0;
        waitpid(pid, &st, 0);
        uint32_t n, acked = 0;
        int have = 0;
        while (read(p[0], &n, sizeof n) == (ssize_t)sizeof n) { acked = n; have = 1; }
        close(p[0]);
        next = ns_crash_check(dir, &o, have, acked, "sigkill");
    }
    print_message("%d kills: creates, drops and cross-namespace batches whole (step %u)\n",
                  cycles, next);
    tu_rmrf(dir);
}

static void ns_powerloss_child(const char *dir, uint64_t seed, uint64_t nth, int fd)
{
    calypso_options o = ns_opts(64 << 10);
    o.sync = CALYPSO_SYNC_ALWAYS;
    cy_os_powerloss_begin();
    cy_os_powerloss_crash_at(nth, CY_OS_PL_PAGES | CY_OS_PL_EXIT, seed);
    ns_crash_child(dir, &o, 0, fd);
}

static void test_ns_crash_powerloss(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_ns_crash_powerloss");
    const char *env = getenv("CALYPSO_NS_CYCLES");
    int cycles = env ? atoi(env) * 2 : 20;
    uint64_t rng = seed;
    for (int cyc = 0; cyc < cycles; cyc++) {
        char *dir = tu_tmpdir();
        uint64_t nth = 20 + tu_below(&rng, 600);
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            ns_powerloss_child(dir, seed + (uint64_t)cyc, nth, p[1]);
            _exit(0);
        }
        close(p[1]);
        int st = 0;
        waitpid(pid, &st, 0);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        uint32_t n, acked = 0;
        int have = 0;
        while (read(p[0], &n, sizeof n) == (ssize_t)sizeof n) { acked = n; have = 1; }
        close(p[0]);
        calypso_options o = ns_opts(64 << 10);
        calypso *db;
        int rc = calypso_open(dir, &o, &db);
        if (rc == CALYPSO_OK) {
            TU_OK(db, calypso_close(db));
            ns_crash_check(dir, &o, have, acked, "power loss");
        } else {
            /* a crash while the database was being created */
            assert_false(have);
            assert_true(rc == CALYPSO_ECORRUPT || rc == CALYPSO_EIO || rc == CALYPSO_EVERSION);
        }
        tu_rmrf(dir);
    }
    print_message("%d power losses: creates, drops and cross-namespace batches whole\n",
                  cycles);
}

// >> the format before namespaces ---------------------------------------------------

static size_t ns_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) { p[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    p[n++] = (uint8_t)v;
    return n;
}

/* A version-1 record as releases before namespaces wrote it. */
static size_t ns_old_record(uint8_t *out, int type, const char *k, const char *v)
{
    size_t klen = strlen(k), vlen = v ? strlen(v) : 1;
    size_t n = 4;
    out[n++] = (uint8_t)type;
    n += ns_varint(out + n, klen);
    n += ns_varint(out + n, vlen);
    memcpy(out + n, k, klen);
    n += klen;
    if (v) memcpy(out + n, v, vlen);
    else out[n] = 1;                        /* a tombstone's victim: file 1 */
    n += vlen;
    uint32_t crc = (uint32_t)XXH3_64bits(out + 4, n - 4);
    for (int i = 0; i < 4; i++) out[i] = (uint8_t)(crc >> (8 * i));
    return n;
}

static void test_ns_old_format_opens_as_default(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char path[4200];
    snprintf(path, sizeof path, "%s/META", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("calypso-format 1\n", f);
    fclose(f);
    uint8_t buf[4096];
    size_t n = 0;
    n += ns_old_record(buf + n, 1, "alpha", "1");
    n += ns_old_record(buf + n, 1, "beta", "2");
    n += ns_old_record(buf + n, 1, "gamma", "3");
    n += ns_old_record(buf + n, 3, "beta", NULL);
    n += ns_old_record(buf + n, 1, "alpha", "one");
    snprintf(path, sizeof path, "%s/0000000001.data", dir);
    f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    fclose(f);
    calypso_options o = ns_opts(1 << 20);
    o.read_only = 1;                        /* first as it is */
    calypso *db = ns_open_db(dir, &o);
    ns_expect(db, "alpha", "one");
    ns_expect(db, "beta", NULL);
    ns_expect(db, "gamma", "3");
    ns_seen s;
    assert_string_equal(ns_names(db, NULL, &s), "");
    TU_OK(db, calypso_close(db));
    o.read_only = 0;
    db = ns_open_db(dir, &o);
    ns_expect(db, "alpha", "one");
    /* a database without namespaces keeps the IDS of before */
    snprintf(path, sizeof path, "%s/IDS", dir);
    f = fopen(path, "r");
    assert_non_null(f);
    char line[128] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    unsigned long long r, m, extra;
    assert_int_equal(sscanf(line, "ids %llu %llu %llu", &r, &m, &extra), 2);
    calypso *a = ns_get(db, "a", 1);
    ns_put(a, "alpha", "in-a");
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(db));
    db = ns_open_db(dir, &o);
    a = ns_get(db, "a", 0);
    ns_expect(db, "alpha", "one");
    ns_expect(a, "alpha", "in-a");
    ns_expect(a, "gamma", NULL);
    TU_OK(db, calypso_close(a));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ns_isolation),
        cmocka_unit_test(test_ns_nesting_list_drop),
        cmocka_unit_test(test_ns_recreate_empty),
        cmocka_unit_test(test_ns_reopen),
        cmocka_unit_test(test_ns_hint_load_matches_scan),
        cmocka_unit_test(test_ns_merge_reclaims_drop),
        cmocka_unit_test(test_ns_names_and_ids),
        cmocka_unit_test(test_ns_handles),
        cmocka_unit_test(test_ns_cross_namespace),
        cmocka_unit_test(test_ns_drop_under_readers),
        cmocka_unit_test(test_ns_ttl_sweep),
        cmocka_unit_test(test_ns_concurrent),
        cmocka_unit_test(test_ns_faults),
        cmocka_unit_test(test_ns_crash_sigkill),
        cmocka_unit_test(test_ns_crash_powerloss),
        cmocka_unit_test(test_ns_old_format_opens_as_default),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
