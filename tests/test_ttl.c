/*
 * test_ttl.c: keys with a time to live, driven by the engine's test clock
 * (cy_clock_shift; no test sleeps past its TTLs).
 *
 * - a key with a TTL is visible until it expires, then invisible to get
 *   (CALYPSO_EEXPIRED), get_buf, has, len, stats, fold, scan, range and the
 *   sift family's callbacks;
 * - the sift family deletes the expired keys of its prefix or range along
 *   with the keys its callback picks, in the same batch record (a tear
 *   anywhere in it brings all of them back), never offering them to the
 *   callback; an expired key written again before the deletions are
 *   written survives; an abort deletes nothing; a list too long for one
 *   batch goes in chunks;
 * - overwriting with a TTL replaces the old expiry (longer or shorter),
 *   overwriting without one clears it, delete clears it, and the TTL index
 *   holds exactly the keys that have an expiry;
 * - expiries are absolute: they survive close+open and calypso_reopen (from
 *   hint files and from datafile scans) without being re-based, and survive
 *   merges; a merge drops expired keys from disk and keydir with no
 *   tombstone, and they stay gone after reopen even when the clock goes
 *   back (older versions of those keys do not come back either);
 * - calypso_run_gc deletes exactly the expired keys, with one tombstone
 *   each, and costs O(expired): among 200,000 keys, 10 expired ones cost 10
 *   tombstones, one write and no read;
 * - the background sweeper keeps the keydir bounded under short-lived keys;
 *   CALYPSO_SWEEP_NEVER leaves expired keys hidden until run_gc;
 * - a randomized model of puts, TTL puts, deletes, clock moves, run_gc,
 *   merges and reopens (seed printed; CALYPSO_SEED replays).
 */
#include "merge_util.h"

#define SEC 1000ll

/* The keydir and TTL index sizes, read under the keydir lock. */
static void kd_counts(calypso *db, uint64_t *keys, uint64_t *ttl_by_key, uint64_t *ttl_by_time)
{
    cy_rdlock(&db->kd_lock);
    if (keys) *keys = db->catalog.ns0.keydir.count;
    if (ttl_by_key) *ttl_by_key = db->catalog.ns0.ttl_by_key.count;
    if (ttl_by_time) *ttl_by_time = db->catalog.ns0.ttl_by_time.count;
    cy_unlock(&db->kd_lock);
}

static void expect_ttl_index(calypso *db, uint64_t keys, uint64_t with_ttl)
{
    uint64_t k, a, b;
    kd_counts(db, &k, &a, &b);
    if (k != keys || a != with_ttl || b != with_ttl)
        print_error("keydir holds %llu keys (want %llu), TTL index %llu/%llu (want %llu)\n",
                    (unsigned long long)k, (unsigned long long)keys, (unsigned long long)a,
                    (unsigned long long)b, (unsigned long long)with_ttl);
    assert_int_equal(k, keys);
    assert_int_equal(a, with_ttl);
    assert_int_equal(b, with_ttl);
}

static void put_str(calypso *db, const char *k, const char *v, uint64_t ttl)
{
    MU_OK(db, calypso_put_ttl(db, k, strlen(k), v, strlen(v), ttl));
}

static void expect_str(calypso *db, const void *k, size_t klen, const char *v)
{
    void *got = NULL;
    size_t glen = 0;
    MU_OK(db, calypso_get(db, k, klen, &got, &glen));
    assert_int_equal(glen, strlen(v));
    assert_memory_equal(got, v, glen);
    calypso_free(got);
    assert_int_equal(calypso_has(db, k, klen), 1);
}

static void expect_get_rc(calypso *db, const void *k, size_t klen, int want)
{
    void *got = (void *)&got;
    size_t glen = 99;
    MU_RC(db, want, calypso_get(db, k, klen, &got, &glen));
    assert_null(got);
    assert_int_equal(glen, 0);
    char buf[64];
    glen = 99;
    MU_RC(db, want, calypso_get_buf(db, k, klen, buf, sizeof buf, &glen));
    assert_int_equal(calypso_has(db, k, klen), 0);
}

// >> walks -------------------------------------------------------------------------

typedef struct walk_log {
    char   keys[64][16];
    size_t lens[64];
    int    n;
    int    verdict;     /* what a sift callback answers */
} walk_log;

static int log_key(const void *k, size_t klen, void *ctx)
{
    walk_log *w = ctx;
    assert_true(w->n < 64 && klen <= 16);
    memcpy(w->keys[w->n], k, klen);
    w->lens[w->n++] = klen;
    return 0;
}

static int log_sift(const void *k, size_t klen, void *ctx)
{
    log_key(k, klen, ctx);
    return ((walk_log *)ctx)->verdict;
}

/* Asserts the walk saw exactly the keys of want (NUL-free C strings, in
 * order). */
static void expect_walk(const walk_log *w, const char *const *want, int n)
{
    if (w->n != n) print_error("walk saw %d keys, want %d\n", w->n, n);
    assert_int_equal(w->n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(w->lens[i], strlen(want[i]));
        assert_memory_equal(w->keys[i], want[i], w->lens[i]);
    }
}

static void test_ttl_visible_then_invisible_everywhere(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(0);
    calypso *db = mu_open(dir, &o);
    put_str(db, "perm1", "p1", 0);
    put_str(db, "perm2", "p2", 0);
    put_str(db, "t", "short", 100 * SEC);
    MU_OK(db, calypso_put_ttl(db, "t\0x", 3, "bin", 3, 100 * SEC));
    put_str(db, "ta", "long", 300 * SEC);
    put_str(db, "tb", "short2", 100 * SEC);

    /* Before expiry: visible everywhere. */
    expect_str(db, "t", 1, "short");
    expect_str(db, "t\0x", 3, "bin");
    expect_str(db, "ta", 2, "long");
    assert_int_equal(calypso_len(db), 6);
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, 6);
    walk_log w = { .n = 0 };
    MU_OK(db, calypso_scan(db, "t", 1, log_key, &w));
    assert_int_equal(w.n, 4);
    expect_ttl_index(db, 6, 4);

    /* 200 s on: t, t\0x and tb expired; ta not yet. */
    mu_shift(200 * SEC);
    expect_get_rc(db, "t", 1, CALYPSO_EEXPIRED);
    expect_get_rc(db, "t\0x", 3, CALYPSO_EEXPIRED);
    expect_get_rc(db, "tb", 2, CALYPSO_EEXPIRED);
    expect_str(db, "ta", 2, "long");
    expect_str(db, "perm1", 5, "p1");
    assert_int_equal(calypso_len(db), 3);
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, 3);

    const char *all[] = { "perm1", "perm2", "ta" };
    const char *tonly[] = { "ta" };
    memset(&w, 0, sizeof w);
    MU_OK(db, calypso_fold(db, log_key, &w));
    expect_walk(&w, all, 3);
    memset(&w, 0, sizeof w);
    MU_OK(db, calypso_scan(db, "t", 1, log_key, &w));
    expect_walk(&w, tonly, 1);
    memset(&w, 0, sizeof w);
    MU_OK(db, calypso_scan(db, NULL, 0, log_key, &w));
    expect_walk(&w, all, 3);
    memset(&w, 0, sizeof w);
    MU_OK(db, calypso_range(db, "t", 1, "tz", 2, log_key, &w));
    expect_walk(&w, tonly, 1);
    memset(&w, 0, sizeof w);
    MU_OK(db, calypso_range(db, "a", 1, "z", 1, log_key, &w));
    expect_walk(&w, all, 3);

    /* Expired keys stay in the keydir, hidden (no sweeper here), until
     * something deletes them. */
    expect_ttl_index(db, 6, 4);

    /* The sift family never offers an expired key to its callback; it
     * deletes it (test_sift_* below). A sift over "perm" deletes what it
     * is told and leaves the expired keys outside its prefix alone. */
    memset(&w, 0, sizeof w);
    w.verdict = 1;
    MU_OK(db, calypso_sift_scan(db, "perm", 4, log_sift, &w));
    assert_int_equal(w.n, 2);
    expect_get_rc(db, "perm1", 5, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "t", 1, CALYPSO_EEXPIRED);
    assert_int_equal(calypso_len(db), 1);
    expect_ttl_index(db, 4, 4);
    memset(&w, 0, sizeof w);
    w.verdict = 1;
    MU_OK(db, calypso_sift_range(db, "t", 1, "tz", 2, log_sift, &w));
    expect_walk(&w, tonly, 1);   /* ta, deleted with the expired t, t\0x, tb */
    expect_get_rc(db, "t", 1, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "tb", 2, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "ta", 2, CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_len(db), 0);
    expect_ttl_index(db, 0, 0);
    put_str(db, "t", "short", 100 * SEC);
    MU_OK(db, calypso_put_ttl(db, "t\0x", 3, "bin", 3, 100 * SEC));
    put_str(db, "ta", "long", 300 * SEC);
    put_str(db, "tb", "short2", 100 * SEC);
    mu_shift(200 * SEC);
    assert_int_equal(calypso_len(db), 1);

    /* Deleting an expired key makes it absent; putting one revives it
     * without a TTL. */
    MU_OK(db, calypso_delete(db, "t", 1));
    expect_get_rc(db, "t", 1, CALYPSO_ENOTFOUND);
    put_str(db, "tb", "again", 0);
    expect_str(db, "tb", 2, "again");
    mu_shift(3650 * 86400 * SEC);
    expect_str(db, "tb", 2, "again");
    expect_get_rc(db, "ta", 2, CALYPSO_EEXPIRED);
    assert_int_equal(calypso_len(db), 1);
    /* left: t\0x and ta (expired, with TTL), tb (no TTL) */
    expect_ttl_index(db, 3, 2);

    mu_close(db);
    mu_clock_reset();
    tu_rmrf(dir);
}

// >> the sift family deletes expired keys ---------------------------------------------

/* A sift callback that logs what it is offered and deletes the keys named
 * in `kill` (NUL-separated, double-NUL-ended); with `reput` set, its first
 * call writes that key again without a TTL (a write that lands between the
 * walk finding the key expired and the deletions being written). */
typedef struct sift_ctx {
    walk_log    log;
    const char *kill;
    calypso    *db;
    const char *reput;
    int         abort_with;
} sift_ctx;

static int sift_pick(const void *k, size_t klen, void *ctx)
{
    sift_ctx *c = ctx;
    log_key(k, klen, &c->log);
    if (c->reput) {
        MU_OK(c->db, calypso_put(c->db, c->reput, strlen(c->reput), "again", 5));
        c->reput = NULL;
    }
    if (c->abort_with) return c->abort_with;
    for (const char *p = c->kill; p && *p; p += strlen(p) + 1)
        if (strlen(p) == klen && memcmp(p, k, klen) == 0) return 1;
    return 0;
}

/* Live a0..a9, x (TTL 1000 s); e0..e4 (TTL 100 s); after 200 s the e's are
 * expired. */
static void sift_fill(calypso *db)
{
    char k[16];
    for (int i = 0; i < 10; i++) {
        snprintf(k, sizeof k, "a%d", i);
        put_str(db, k, "live", 0);
    }
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof k, "e%d", i);
        put_str(db, k, "soon", 100 * SEC);
    }
    put_str(db, "x", "later", 1000 * SEC);
}

static void expect_e_keys(calypso *db, int want)
{
    char k[16];
    for (int i = 0; i < 5; i++) {
        snprintf(k, sizeof k, "e%d", i);
        if (want == CALYPSO_OK) expect_str(db, k, 2, "soon");
        else expect_get_rc(db, k, 2, want);
    }
}

typedef struct { int n, tombstones; } batch_census;

static int count_entry(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    (void)rec; (void)rel;
    batch_census *b = ctx;
    b->n++;
    b->tombstones += r->type == CY_REC_DEL;
    return 0;
}

/* The offset of the last record of a datafile of `size` bytes in buf. */
static uint64_t last_record(const uint8_t *buf, uint64_t size, cy_rec *last)
{
    uint64_t off = 0, at = 0;
    while (off < size) {
        cy_rec r;
        assert_int_equal(cy_rec_parse(buf + off, size - off, &r), 1);
        *last = r;
        at = off;
        off += r.hdr + r.klen + r.vlen;
    }
    assert_int_equal(off, size);
    return at;
}

static uint8_t *read_file(const char *path, uint64_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n > 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (uint64_t)n;
    return buf;
}

/* calypso_sift deletes the keys its callback picks and every expired key,
 * without offering those to the callback, in one batch record: a crash
 * that tears that record brings all of them back, chosen and expired. */
static void test_sift_deletes_expired_keys_with_the_chosen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *copy = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    sift_fill(db);
    mu_shift(200 * SEC);
    expect_e_keys(db, CALYPSO_EEXPIRED);
    expect_ttl_index(db, 16, 6);

    sift_ctx c = { .kill = "a1\0a3\0" };
    MU_OK(db, calypso_sift(db, sift_pick, &c));
    const char *offered[] = { "a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "a9", "x" };
    expect_walk(&c.log, offered, 11);   /* never an expired key */
    expect_get_rc(db, "a1", 2, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "a3", 2, CALYPSO_ENOTFOUND);
    expect_e_keys(db, CALYPSO_ENOTFOUND);
    expect_str(db, "a0", 2, "live");
    expect_str(db, "x", 1, "later");
    assert_int_equal(calypso_len(db), 9);
    expect_ttl_index(db, 9, 1);
    mu_close(db);

    /* On disk: the last record is one batch of the 7 tombstones. */
    char path[4200];
    snprintf(path, sizeof path, "%s/0000000001.data", dir);
    uint64_t size;
    uint8_t *buf = read_file(path, &size);
    cy_rec r;
    uint64_t from = last_record(buf, size, &r);
    assert_int_equal(r.type, CY_REC_BATCH);
    batch_census bc = { 0, 0 };
    MU_OK(NULL, cy_rec_entries(buf + from, &r, count_entry, &bc));
    assert_int_equal(bc.n, 7);
    assert_int_equal(bc.tombstones, 7);
    free(buf);

    /* The tombstones last: with the clock back where the e's are live
     * again, a reopen finds them deleted, not revived. */
    mu_clock_reset();
    db = mu_open(dir, &o);
    expect_e_keys(db, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "a1", 2, CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_len(db), 9);
    mu_close(db);

    /* Torn anywhere inside, the batch is gone whole: every key it
     * deleted is back, the e's live again at this clock. */
    for (uint64_t cut = from + 1; cut < size; cut += (size - from) / 5 + 1) {
        char cmd[8600];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", copy, dir, copy);
        assert_int_equal(system(cmd), 0);
        /* What a crash leaves: no hint past the sync, no watermark past it. */
        snprintf(path, sizeof path, "%s/0000000001.hint", copy);
        unlink(path);
        snprintf(path, sizeof path, "%s/WATERMARK", copy);
        unlink(path);
        snprintf(path, sizeof path, "%s/0000000001.data", copy);
        assert_int_equal(truncate(path, (off_t)cut), 0);
        db = mu_open(copy, &o);
        expect_e_keys(db, CALYPSO_OK);
        expect_str(db, "a1", 2, "live");
        expect_str(db, "a3", 2, "live");
        assert_int_equal(calypso_len(db), 16);
        mu_close(db);
    }
    tu_rmrf(dir);
    tu_rmrf(copy);
}

/* A key found expired but written again before the deletions are (here by
 * the callback itself) survives; the other expired keys go. */
static void test_sift_spares_an_expired_key_written_again(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    sift_fill(db);
    mu_shift(200 * SEC);
    sift_ctx c = { .db = db, .reput = "e2" };
    MU_OK(db, calypso_sift(db, sift_pick, &c));
    expect_str(db, "e2", 2, "again");
    expect_get_rc(db, "e0", 2, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "e4", 2, CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_len(db), 12);
    expect_ttl_index(db, 12, 1);
    MU_OK(db, calypso_reopen(db));
    expect_str(db, "e2", 2, "again");
    expect_get_rc(db, "e0", 2, CALYPSO_ENOTFOUND);
    mu_close(db);
    mu_clock_reset();
    tu_rmrf(dir);
}

/* sift_scan and sift_range delete the expired keys of their prefix or
 * range only; a callback's abort deletes nothing, expired keys neither; a
 * list too long for one batch (here: tombstones past a 4 KiB datafile)
 * goes in chunks and still deletes every expired key. */
static void test_sift_expired_bounds_abort_and_chunks(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    sift_fill(db);
    put_str(db, "b0", "soon", 100 * SEC);
    put_str(db, "f0", "soon", 100 * SEC);
    mu_shift(200 * SEC);

    sift_ctx c = { .abort_with = -42 };
    MU_RC(db, -42, calypso_sift(db, sift_pick, &c));
    assert_int_equal(c.log.n, 1);
    expect_e_keys(db, CALYPSO_EEXPIRED);
    expect_ttl_index(db, 18, 8);

    memset(&c, 0, sizeof c);
    MU_OK(db, calypso_sift_scan(db, "e", 1, sift_pick, &c));
    assert_int_equal(c.log.n, 0);
    expect_e_keys(db, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "b0", 2, CALYPSO_EEXPIRED);
    expect_get_rc(db, "f0", 2, CALYPSO_EEXPIRED);

    memset(&c, 0, sizeof c);
    MU_OK(db, calypso_sift_range(db, "a5", 2, "c", 1, sift_pick, &c));
    assert_int_equal(c.log.n, 5);   /* a5..a9 */
    expect_get_rc(db, "b0", 2, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "f0", 2, CALYPSO_EEXPIRED);
    expect_ttl_index(db, 12, 2);   /* a0..a9, f0, x */
    mu_close(db);

    /* Chunks: 300 expired keys and 30 chosen ones in 4 KiB datafiles. */
    char *dir2 = tu_tmpdir();
    o = mu_quiet_opts(4096);
    db = mu_open(dir2, &o);
    char k[16];
    for (int i = 0; i < 300; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        put_str(db, k, "v", i % 10 == 0 ? 0 : 100 * SEC);
    }
    mu_shift(200 * SEC);
    assert_int_equal(calypso_len(db), 30);
    memset(&c, 0, sizeof c);
    c.kill = "k000\0k010\0";
    MU_OK(db, calypso_sift(db, sift_pick, &c));
    assert_int_equal(c.log.n, 30);
    assert_int_equal(calypso_len(db), 28);
    expect_ttl_index(db, 28, 0);
    MU_OK(db, calypso_reopen(db));
    expect_ttl_index(db, 28, 0);
    expect_get_rc(db, "k001", 4, CALYPSO_ENOTFOUND);
    expect_get_rc(db, "k010", 4, CALYPSO_ENOTFOUND);
    expect_str(db, "k020", 4, "v");
    mu_close(db);
    mu_clock_reset();
    tu_rmrf(dir);
    tu_rmrf(dir2);
}

static void test_ttl_overwrite_and_delete_rules(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(0);
    calypso *db = mu_open(dir, &o);
    put_str(db, "a", "a1", 100 * SEC);
    put_str(db, "a", "a2", 300 * SEC);         /* longer replaces shorter */
    put_str(db, "b", "b1", 300 * SEC);
    put_str(db, "b", "b2", 100 * SEC);         /* shorter replaces longer */
    put_str(db, "c", "c1", 100 * SEC);
    put_str(db, "c", "c2", 0);                 /* no TTL clears it */
    put_str(db, "d", "d1", 100 * SEC);
    MU_OK(db, calypso_put(db, "d", 1, "d2", 2)); /* calypso_put clears it too */
    put_str(db, "e", "e1", 100 * SEC);
    MU_OK(db, calypso_delete(db, "e", 1));     /* delete clears it */
    put_str(db, "f", "f1", UINT64_MAX);        /* saturates: never expires */
    put_str(db, "g", "g1", 0);
    put_str(db, "g", "g2", 100 * SEC);         /* a TTL added to a plain key */
    expect_get_rc(db, "e", 1, CALYPSO_ENOTFOUND);
    /* a, b, f, g have expiries; c, d, e not (e is gone). */
    expect_ttl_index(db, 6, 4);

    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {            /* the same again after a reopen */
            mu_close(db);
            db = mu_open(dir, &o);
            mu_clock_reset();
        }
        expect_str(db, "a", 1, "a2");
        expect_str(db, "b", 1, "b2");
        mu_shift(200 * SEC);
        expect_str(db, "a", 1, "a2");
        expect_get_rc(db, "b", 1, CALYPSO_EEXPIRED);
        expect_get_rc(db, "g", 1, CALYPSO_EEXPIRED);
        expect_str(db, "c", 1, "c2");
        expect_str(db, "d", 1, "d2");
        expect_get_rc(db, "e", 1, CALYPSO_ENOTFOUND);
        mu_shift(200 * SEC);
        expect_get_rc(db, "a", 1, CALYPSO_EEXPIRED);
        mu_shift(3650 * 86400 * SEC);
        expect_str(db, "c", 1, "c2");
        expect_str(db, "d", 1, "d2");
        expect_str(db, "f", 1, "f1");
        expect_get_rc(db, "e", 1, CALYPSO_ENOTFOUND);
        assert_int_equal(calypso_len(db), 3);
        expect_ttl_index(db, 6, 4);
    }

    /* Putting an expired key without a TTL drops it from the TTL index;
     * deleting one drops it from both. */
    put_str(db, "a", "a3", 0);
    MU_OK(db, calypso_delete(db, "b", 1));
    expect_str(db, "a", 1, "a3");
    expect_get_rc(db, "b", 1, CALYPSO_ENOTFOUND);
    expect_ttl_index(db, 5, 2);
    mu_close(db);
    mu_clock_reset();
    tu_rmrf(dir);
}

// >> persistence -------------------------------------------------------------------

/* Keys k0000.. in three groups by i % 3: TTL 100 s, TTL 300 s, none. */
#define PERSIST_N 300

static void persist_fill(calypso *db, mu_ref *r)
{
    char k[16];
    for (int i = 0; i < PERSIST_N; i++) {
        int n = snprintf(k, sizeof k, "k%04d", i);
        size_t at = mu_ref_add(r, k, (size_t)n);
        uint64_t ttl = i % 3 == 0 ? 100 * SEC : i % 3 == 1 ? 300 * SEC : 0;
        mu_ref_put(db, &r->e[at], 1, 40, ttl);
        if (i % 5 == 0) mu_ref_put(db, &r->e[at], 2, 24, ttl);   /* overwrite, same TTL */
    }
}

static void persist_expire_group(mu_ref *r, int group)
{
    for (int i = 0; i < PERSIST_N; i++)
        if (i % 3 == group) r->e[i].state = MU_EXPIRED;
}

static void test_ttl_survives_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);   /* many sealed files, with hints */
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    persist_fill(db, &r);
    mu_ref_check_mode(db, &r, MU_EXPIRED_STRICT);
    mu_close(db);                              /* close writes the hints owed */
    uint32_t fids[256], hints[256];
    int ndata = mu_list_fids(dir, "data", fids, 256);
    int nhint = mu_list_fids(dir, "hint", hints, 256);
    assert_true(ndata >= 5 && ndata < 256);
    /* Every sealed file has its hint (the newest may have one too). */
    assert_true(nhint == ndata - 1 || nhint == ndata);
    for (int i = 0; i < ndata - 1; i++) assert_int_equal(hints[i], fids[i]);

    /* Open (from hints), 90 s on: nothing expired yet. Reopen there: an
     * engine that re-based expiries on open would now keep the 100 s keys
     * until 190 s. */
    db = mu_open(dir, &o);
    mu_ref_check(db, &r);
    mu_shift(90 * SEC);
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    mu_shift(20 * SEC);                        /* 110 s */
    persist_expire_group(&r, 0);
    mu_ref_check(db, &r);
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    mu_close(db);

    /* Without hints: expiries come from the datafile scans. */
    char path[4096];
    nhint = mu_list_fids(dir, "hint", hints, 256);
    for (int i = 0; i < nhint; i++) {
        snprintf(path, sizeof path, "%s/%010u.hint", dir, hints[i]);
        assert_int_equal(unlink(path), 0);
    }
    db = mu_open(dir, &o);
    mu_ref_check(db, &r);
    mu_shift(180 * SEC);                       /* 290 s */
    mu_ref_check(db, &r);
    mu_close(db);
    db = mu_open(dir, &o);
    mu_shift(20 * SEC);                        /* 310 s */
    persist_expire_group(&r, 1);
    mu_ref_check(db, &r);
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);

    /* And back to the real time: every expiry is still in the future. */
    mu_clock_reset();
    for (size_t i = 0; i < r.n; i++) r.e[i].state = MU_LIVE;
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

static void test_ttl_survives_merge(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    persist_fill(db, &r);
    mu_shift(90 * SEC);
    MU_OK(db, calypso_merge(db));              /* nothing expired: all copied */
    mu_ref_check(db, &r);
    mu_census c = mu_census_dir(dir, 0, NULL, NULL);
    assert_int_equal(c.records, PERSIST_N);
    assert_int_equal(c.ttl_puts, 2 * PERSIST_N / 3);
    assert_int_equal(c.tombstones, 0);
    MU_OK(db, calypso_reopen(db));             /* from the merged hints */
    mu_ref_check(db, &r);
    mu_shift(20 * SEC);                        /* 110 s: group 0 expired */
    persist_expire_group(&r, 0);
    mu_ref_check(db, &r);
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);

    /* Merging now drops group 0 from disk; group 1 keeps its expiry. */
    MU_OK(db, calypso_merge(db));
    for (int i = 0; i < PERSIST_N; i += 3) r.e[i].state = MU_ABSENT;
    mu_ref_check(db, &r);
    c = mu_census_dir(dir, 0, NULL, NULL);
    assert_int_equal(c.records, 2 * PERSIST_N / 3);
    assert_int_equal(c.ttl_puts, PERSIST_N / 3);
    assert_int_equal(c.tombstones, 0);
    mu_close(db);
    db = mu_open(dir, &o);
    mu_ref_check(db, &r);
    mu_shift(180 * SEC);                       /* 290 s */
    mu_ref_check(db, &r);
    mu_shift(20 * SEC);                        /* 310 s */
    persist_expire_group(&r, 1);
    mu_ref_check(db, &r);
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    mu_close(db);
    mu_clock_reset();
    mu_ref_free(&r);
    tu_rmrf(dir);
}

/* Expired keys: 2000 with TTL 50 s (a quarter of them with an older plain
 * version in an earlier file), 500 with TTL 1000 s, 1000 without. */
static void test_merge_drops_expired_without_tombstones(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(64 << 10);
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    char k[16];
    for (int i = 0; i < 2000; i++) {
        int n = snprintf(k, sizeof k, "e%05d", i);
        size_t at = mu_ref_add(&r, k, (size_t)n);
        if (i % 4 == 0) mu_ref_put(db, &r.e[at], 1, 100, 0);
    }
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(k, sizeof k, "p%05d", i);
        mu_ref_put(db, mu_ref_new(&r, k, (size_t)n), 1, 100, 0);
    }
    for (int i = 0; i < 2000; i++) mu_ref_put(db, &r.e[i], 2, 100, 50 * SEC);
    for (int i = 0; i < 500; i++) {
        int n = snprintf(k, sizeof k, "u%05d", i);
        mu_ref_put(db, mu_ref_new(&r, k, (size_t)n), 1, 100, 1000 * SEC);
    }
    mu_shift(100 * SEC);
    for (int i = 0; i < 2000; i++) r.e[i].state = MU_EXPIRED;
    mu_ref_check_mode(db, &r, MU_EXPIRED_STRICT);
    struct calypso_stats before, after;
    MU_OK(db, calypso_stats(db, &before));
    assert_int_equal(before.keys, 1500);
    expect_ttl_index(db, 3500, 2500);

    MU_OK(db, calypso_merge(db));
    MU_OK(db, calypso_stats(db, &after));
    print_message("merge dropping 2000 expired keys: size %llu -> %llu, reclaimable %llu -> "
                  "%llu, keydir %llu -> %llu bytes\n", (unsigned long long)before.size,
                  (unsigned long long)after.size, (unsigned long long)before.reclaimable,
                  (unsigned long long)after.reclaimable, (unsigned long long)before.keydir_bytes,
                  (unsigned long long)after.keydir_bytes);
    assert_int_equal(after.keys, 1500);
    assert_int_equal(calypso_len(db), 1500);
    assert_int_equal(after.merges, 1);
    /* The expired records (2000 x ~110 bytes) are gone from disk. */
    assert_true(after.size + 2000 * 100 < before.size);
    assert_true(after.reclaimable < before.reclaimable);
    assert_int_equal(after.reclaimable, 0);
    assert_true(after.keydir_bytes < before.keydir_bytes);
    expect_ttl_index(db, 1500, 500);
    for (int i = 0; i < 2000; i++) r.e[i].state = MU_ABSENT;
    mu_ref_check(db, &r);

    /* On disk: the live records only, and not one tombstone. */
    mu_census c = mu_census_dir(dir, cy_now_ms(), NULL, NULL);
    assert_int_equal(c.records, 1500);
    assert_int_equal(c.tombstones, 0);
    assert_int_equal(c.expired_ttl_puts, 0);
    assert_int_equal(c.ttl_puts, 500);
    assert_int_equal(mu_data_hint_bytes(dir), after.size);

    /* Reopen at the same time, then with the clock back at the real time:
     * neither the expired versions nor the plain older ones come back. */
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    mu_clock_reset();
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    MU_OK(db, calypso_run_gc(db));
    mu_ref_check(db, &r);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

// >> run_gc ------------------------------------------------------------------------

typedef struct tomb_scan {
    uint64_t tombs, foreign;    /* tombstones; those not for an "e" key */
} tomb_scan;

static void count_tombs(const cy_rec *rec, const uint8_t *key, uint32_t fid, void *ctx)
{
    (void)fid;
    tomb_scan *t = ctx;
    if (rec->type != CY_REC_DEL) return;
    t->tombs++;
    if (key[0] != 'e') t->foreign++;
}

static void test_run_gc_deletes_exactly_the_expired(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(32 << 10);
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    char k[16];
    /* e: 300 keys with TTL 50 s (every third had a plain version first),
     * u: 200 with TTL 500 s, p: 250 plain. */
    for (int i = 0; i < 300; i++) {
        int n = snprintf(k, sizeof k, "e%04d", i);
        size_t at = mu_ref_add(&r, k, (size_t)n);
        if (i % 3 == 0) mu_ref_put(db, &r.e[at], 1, 60, 0);
    }
    for (int i = 0; i < 200; i++) {
        int n = snprintf(k, sizeof k, "u%04d", i);
        mu_ref_put(db, mu_ref_new(&r, k, (size_t)n), 1, 60, 500 * SEC);
    }
    for (int i = 0; i < 250; i++) {
        int n = snprintf(k, sizeof k, "p%04d", i);
        mu_ref_put(db, mu_ref_new(&r, k, (size_t)n), 1, 60, 0);
    }
    for (int i = 0; i < 300; i++) mu_ref_put(db, &r.e[i], 2, 60, 50 * SEC);

    mu_shift(100 * SEC);
    for (int i = 0; i < 300; i++) r.e[i].state = MU_EXPIRED;
    mu_ref_check_mode(db, &r, MU_EXPIRED_STRICT);     /* fold, stats, len: 450 */
    expect_ttl_index(db, 750, 500);
    tomb_scan t0 = { 0, 0 };
    mu_census_dir(dir, 0, count_tombs, &t0);
    assert_int_equal(t0.tombs, 0);

    MU_OK(db, calypso_run_gc(db));
    for (int i = 0; i < 300; i++) r.e[i].state = MU_ABSENT;
    mu_ref_check(db, &r);
    for (int i = 0; i < 300; i++)                    /* deleted, not hidden */
        expect_get_rc(db, r.e[i].key, r.e[i].klen, CALYPSO_ENOTFOUND);
    expect_ttl_index(db, 450, 200);
    tomb_scan t1 = { 0, 0 };
    mu_census_dir(dir, 0, count_tombs, &t1);
    assert_int_equal(t1.tombs, 300);                 /* one per expired key */
    assert_int_equal(t1.foreign, 0);
    mu_census c1 = mu_census_dir(dir, 0, NULL, NULL);
    assert_int_equal(c1.batches, 1);                 /* all of them in one batch */

    /* Nothing left to do: a second run writes nothing. */
    struct calypso_stats s1, s2;
    MU_OK(db, calypso_stats(db, &s1));
    MU_OK(db, calypso_run_gc(db));
    MU_OK(db, calypso_stats(db, &s2));
    assert_int_equal(s1.size, s2.size);

    /* The tombstones are real: with the clock back (the e keys would be
     * unexpired again) and a reopen, they stay deleted, and so do their
     * older plain versions. */
    mu_clock_reset();
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);

    /* Later the u keys expire and go the same way. */
    mu_shift(600 * SEC);
    for (int i = 300; i < 500; i++) r.e[i].state = MU_EXPIRED;
    mu_ref_check_mode(db, &r, MU_EXPIRED_STRICT);
    MU_OK(db, calypso_run_gc(db));
    for (int i = 300; i < 500; i++) r.e[i].state = MU_ABSENT;
    mu_ref_check(db, &r);
    expect_ttl_index(db, 250, 0);
    mu_clock_reset();
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

/* Bytes of records in the active datafile (not the space allocated
 * ahead of them). */
static uint64_t active_data_size(calypso *db, uint32_t *fid)
{
    pthread_mutex_lock(&db->write_mu);
    uint64_t n = db->files.active->size;
    *fid = db->files.active->fid;
    pthread_mutex_unlock(&db->write_mu);
    return n;
}

static void test_run_gc_cost_is_per_expired_key(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(0);          /* one big datafile */
    calypso *db = mu_open(dir, &o);
    char k[16];
    const int N = 200000;
    for (int i = 0; i < N; i++) {
        int n = snprintf(k, sizeof k, "p%07d", i);
        MU_OK(db, calypso_put(db, k, (size_t)n, "v", 1));
    }
    size_t expected_bytes = 0;
    for (int i = 0; i < 10; i++) {
        int n = snprintf(k, sizeof k, "x%07d", i * 1000);
        MU_OK(db, calypso_put_ttl(db, k, (size_t)n, "short", 5, 50 * SEC));
        /* crc, type, klen, payload length, key, payload (victim fid 1) */
        expected_bytes += 4 + 1 + cy_varint_len((uint64_t)n) + 1 + (size_t)n + cy_varint_len(1);
    }
    /* ... in one batch: crc, type, klen 0, the records' length */
    expected_bytes += 4 + 1 + 1 + cy_varint_len(expected_bytes);
    mu_shift(100 * SEC);
    assert_int_equal(calypso_len(db), (uint64_t)N);
    uint32_t fid0, fid1;
    uint64_t before = active_data_size(db, &fid0);
    uint64_t pw = cy_os_count(CY_OS_PWRITE), pr = cy_os_count(CY_OS_PREAD);
    uint64_t any = cy_os_count(CY_OS_ANY);
    MU_OK(db, calypso_run_gc(db));
    uint64_t dpw = cy_os_count(CY_OS_PWRITE) - pw, dpr = cy_os_count(CY_OS_PREAD) - pr;
    uint64_t dany = cy_os_count(CY_OS_ANY) - any;
    uint64_t after = active_data_size(db, &fid1);
    print_message("run_gc of 10 expired among %d keys: %llu bytes, %llu writes, %llu reads, "
                  "%llu syscalls\n", N, (unsigned long long)(after - before),
                  (unsigned long long)dpw, (unsigned long long)dpr, (unsigned long long)dany);
    assert_int_equal(fid0, fid1);
    assert_int_equal(after - before, expected_bytes);   /* 10 tombstones */
    assert_true(dpw <= 2);
    assert_int_equal(dpr, 0);
    assert_true(dany <= 4);
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, (uint64_t)N);
    expect_ttl_index(db, (uint64_t)N, 0);

    /* Those bytes are exactly the 10 tombstones, one per expired key. */
    char path[4096];
    snprintf(path, sizeof path, "%s/%010u.data", dir, fid1);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[1024];
    assert_int_equal(fseek(f, (long)before, SEEK_SET), 0);
    size_t got = fread(buf, 1, (size_t)(after - before), f);
    fclose(f);
    assert_int_equal(got, expected_bytes);
    int seen[10] = { 0 };
    cy_rec batch;                                     /* one batch holds them */
    assert_int_equal(cy_rec_parse(buf, got, &batch), 1);
    assert_int_equal(batch.type, CY_REC_BATCH);
    assert_int_equal(batch.hdr + batch.vlen, got);
    for (size_t off = batch.hdr; off < got;) {
        cy_rec rec;
        assert_int_equal(cy_rec_parse(buf + off, got - off, &rec), 1);
        assert_int_equal(rec.type, CY_REC_DEL);
        assert_int_equal(rec.klen, 8);
        assert_int_equal(buf[off + rec.hdr], 'x');
        char kk[9];
        memcpy(kk, buf + off + rec.hdr, 8);
        kk[8] = 0;
        int i = atoi(kk + 1) / 1000;
        assert_true(i >= 0 && i < 10);
        seen[i]++;
        off += rec.hdr + rec.klen + rec.vlen;
    }
    for (int i = 0; i < 10; i++) assert_int_equal(seen[i], 1);
    mu_close(db);
    mu_clock_reset();
    tu_rmrf(dir);
}

// >> the background sweeper --------------------------------------------------------------

static uint64_t keydir_bytes(calypso *db)
{
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    return st.keydir_bytes;
}

static void put_short_lived(calypso *db, int round, int n, uint64_t ttl)
{
    char k[24];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "s%02d:%06d", round, i);
        mu_put_version(db, k, (size_t)kl, 1, 32, ttl);
    }
}

static void put_permanent(calypso *db, mu_ref *r, int n)
{
    char k[16];
    for (int i = 0; i < n; i++) {
        int kl = snprintf(k, sizeof k, "perm%05d", i);
        mu_ref_put(db, mu_ref_new(r, k, (size_t)kl), 1, 32, 0);
    }
}

static void test_sweeper_keeps_keydir_bounded(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    o.ttl_sweep_interval_ms = 10;
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    put_permanent(db, &r, 1000);
    uint64_t base = keydir_bytes(db);
    const int N = 5000;
    for (int round = 0; round < 3; round++) {
        put_short_lived(db, round, N, 60 * SEC);
        uint64_t full = keydir_bytes(db);
        assert_true(full > base);
        struct calypso_stats st;
        MU_OK(db, calypso_stats(db, &st));
        assert_int_equal(st.keys, 1000u + (uint64_t)N);
        mu_shift(120 * SEC);
        MU_OK(db, calypso_stats(db, &st));
        assert_int_equal(st.keys, 1000);        /* hidden at once */
        /* The sweeper deletes them within a few of its 10 ms periods:
         * wait up to 2 s for the keydir to give back 90% of what they
         * took. */
        uint64_t bound = base + (full - base) / 10, now = full, kd = 0;
        uint64_t t0 = mu_now_us();
        while (mu_now_us() - t0 < 2000000) {
            now = keydir_bytes(db);
            kd_counts(db, &kd, NULL, NULL);
            if (now <= bound && kd == 1000) break;
            usleep(2000);
        }
        print_message("round %d: keydir %llu -> %llu -> %llu bytes after %.0f ms\n", round,
                      (unsigned long long)base, (unsigned long long)full,
                      (unsigned long long)now, (double)(mu_now_us() - t0) / 1000.0);
        assert_int_equal(kd, 1000);
        assert_true(now <= bound);
        MU_OK(db, calypso_stats(db, &st));
        assert_int_equal(st.keys, 1000);
    }
    expect_ttl_index(db, 1000, 0);
    mu_ref_check(db, &r);

    /* They were deleted with tombstones, not just forgotten: back at the
     * real time (every short-lived key would be alive again) and after a
     * reopen, none is there. */
    mu_clock_reset();
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    expect_ttl_index(db, 1000, 0);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

static void test_sweep_never_keeps_expired_until_run_gc(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    assert_int_equal(o.ttl_sweep_interval_ms, CALYPSO_SWEEP_NEVER);
    calypso *db = mu_open(dir, &o);
    mu_ref r = { 0 };
    put_permanent(db, &r, 1000);
    uint64_t base = keydir_bytes(db);
    put_short_lived(db, 0, 5000, 60 * SEC);
    uint64_t full = keydir_bytes(db);
    /* 100 days on (more than any sweep period could be), then watch for
     * longer than the default sweep period: nothing may happen. */
    mu_shift(100ll * 86400 * SEC);
    uint64_t t0 = mu_now_us();
    while (mu_now_us() - t0 < 1200000) {
        uint64_t kd;
        kd_counts(db, &kd, NULL, NULL);
        assert_int_equal(kd, 6000);
        assert_int_equal(keydir_bytes(db), full);
        assert_int_equal(calypso_len(db), 1000);
        usleep(50000);
    }
    expect_ttl_index(db, 6000, 5000);
    mu_ref_check(db, &r);
    expect_get_rc(db, "s00:000000", 10, CALYPSO_EEXPIRED);
    MU_OK(db, calypso_run_gc(db));
    expect_ttl_index(db, 1000, 0);
    assert_true(keydir_bytes(db) <= base + (full - base) / 10);
    expect_get_rc(db, "s00:000000", 10, CALYPSO_ENOTFOUND);
    mu_clock_reset();
    MU_OK(db, calypso_reopen(db));
    mu_ref_check(db, &r);
    expect_get_rc(db, "s00:000000", 10, CALYPSO_ENOTFOUND);
    mu_close(db);
    mu_ref_free(&r);
    tu_rmrf(dir);
}

// >> randomized model ----------------------------------------------------------------------

/* Time moves in steps of 10 s and TTLs are multiples of 10 s, so the
 * milliseconds the test itself takes never decide whether a key expired:
 * a key put at model time P with TTL d is expired at model time T exactly
 * when T - P >= d (the run takes far less than 10 s). */
typedef struct model_key {
    uint8_t  key[8];
    size_t   klen;
    int      present;     /* in the keydir (maybe expired)  */
    uint64_t version;
    uint32_t vlen;
    int64_t  expiry;      /* model time in 10 s units; 0 = none */
} model_key;

#define MODEL_KEYS 48

static void model_check_key(calypso *db, const model_key *m, int64_t now)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = calypso_get(db, m->key, m->klen, &got, &glen);
    int visible = m->present && (!m->expiry || m->expiry > now);
    if (visible) {
        if (rc != CALYPSO_OK)
            print_error("model key %zu bytes [%02x..]: get -> %d (%s), want version %llu\n",
                        m->klen, m->key[0], rc, calypso_strerror(rc),
                        (unsigned long long)m->version);
        assert_int_equal(rc, CALYPSO_OK);
        uint8_t want[256];
        mu_value(want, m->vlen, m->key, m->klen, m->version);
        assert_int_equal(glen, m->vlen);
        if (glen) assert_memory_equal(got, want, glen);
        calypso_free(got);
    } else if (m->present) {
        /* expired, still in the keydir unless a reopen chose to drop it */
        if (rc != CALYPSO_EEXPIRED && rc != CALYPSO_ENOTFOUND)
            print_error("expired model key: get -> %d (%s)\n", rc, calypso_strerror(rc));
        assert_true(rc == CALYPSO_EEXPIRED || rc == CALYPSO_ENOTFOUND);
    } else {
        if (rc != CALYPSO_ENOTFOUND)
            print_error("absent model key [%02x..] (%zu bytes): get -> %d (%s)\n", m->key[0],
                        m->klen, rc, calypso_strerror(rc));
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
    }
    assert_int_equal(calypso_has(db, m->key, m->klen), visible);
}

typedef struct model_fold {
    model_key **want;
    size_t n, at;
    int bad;
} model_fold;

static int model_fold_cb(const void *k, size_t klen, void *ctx)
{
    model_fold *f = ctx;
    if (f->at >= f->n || f->want[f->at]->klen != klen ||
        memcmp(f->want[f->at]->key, k, klen) != 0)
        f->bad = 1;
    f->at++;
    return 0;
}

static int model_cmp(const void *a, const void *b)
{
    const model_key *x = *(model_key *const *)a, *y = *(model_key *const *)b;
    return mu_keycmp(x->key, x->klen, y->key, y->klen);
}

static void model_check_all(calypso *db, model_key *keys, int64_t now)
{
    model_key *vis[MODEL_KEYS];
    size_t n = 0;
    for (int i = 0; i < MODEL_KEYS; i++) {
        model_check_key(db, &keys[i], now);
        if (keys[i].present && (!keys[i].expiry || keys[i].expiry > now)) vis[n++] = &keys[i];
    }
    qsort(vis, n, sizeof *vis, model_cmp);
    model_fold f = { vis, n, 0, 0 };
    MU_OK(db, calypso_fold(db, model_fold_cb, &f));
    assert_false(f.bad);
    assert_int_equal(f.at, n);
    assert_int_equal(calypso_len(db), n);
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, n);
}

/* Walks over long runs of expired keys not yet swept: a batch that visits
 * only expired keys hands back nothing and the walk must go on after it,
 * in every walk and in a cursor. Runs of 5000 expired keys (several
 * batches' worth of visits) sit before, between and after live keys. */
static int walk_collect(const void *k, size_t klen, void *ctx)
{
    mu_ref *got = ctx;
    mu_ref_new(got, k, klen);
    return 0;
}

static void test_walks_over_runs_of_expired_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    char k[16];
    for (int run = 0; run < 3; run++) {
        for (int i = 0; i < 5000; i++) {
            int kl = snprintf(k, sizeof k, "k%d-e%05d", run, i);
            MU_OK(db, calypso_put_ttl(db, k, (size_t)kl, "x", 1, 60 * SEC));
        }
        int kl = snprintf(k, sizeof k, "k%d-live", run);
        MU_OK(db, calypso_put(db, k, (size_t)kl, "v", 1));
    }
    for (int i = 0; i < 5000; i++) {
        int kl = snprintf(k, sizeof k, "k9-e%05d", i);
        MU_OK(db, calypso_put_ttl(db, k, (size_t)kl, "x", 1, 60 * SEC));
    }
    mu_shift(120 * SEC);
    const char *want[] = { "k0-live", "k1-live", "k2-live" };
    for (int kind = 0; kind < 3; kind++) {
        mu_ref got = { 0 };
        int rc = kind == 0 ? calypso_fold(db, walk_collect, &got)
               : kind == 1 ? calypso_scan(db, "k", 1, walk_collect, &got)
                           : calypso_range(db, "a", 1, "z", 1, walk_collect, &got);
        MU_OK(db, rc);
        assert_int_equal(got.n, 3);
        for (size_t i = 0; i < 3; i++) {
            assert_int_equal(got.e[i].klen, strlen(want[i]));
            assert_memory_equal(got.e[i].key, want[i], got.e[i].klen);
        }
        mu_ref_free(&got);
    }
    calypso_cursor *c;
    MU_OK(db, calypso_cursor_open(db, &c));
    int n = 0;
    for (int rc = calypso_cursor_first(c); rc == CALYPSO_OK; rc = calypso_cursor_next(c)) {
        const void *key;
        size_t kl;
        MU_OK(db, calypso_cursor_key(c, &key, &kl));
        assert_true(n < 3);
        assert_int_equal(kl, strlen(want[n]));
        assert_memory_equal(key, want[n], kl);
        n++;
    }
    assert_int_equal(n, 3);
    for (int rc = calypso_cursor_last(c); rc == CALYPSO_OK; rc = calypso_cursor_prev(c)) {
        const void *key;
        size_t kl;
        MU_OK(db, calypso_cursor_key(c, &key, &kl));
        assert_true(n > 0);
        n--;
        assert_int_equal(kl, strlen(want[n]));
        assert_memory_equal(key, want[n], kl);
    }
    assert_int_equal(n, 0);
    calypso_cursor_close(c);
    assert_int_equal(calypso_len(db), 3);
    mu_close(db);
    tu_rmrf(dir);
}

/* calypso_len keeps its count of expired keys rather than walking every
 * expired key each call: the count must follow expiries, deletes and puts
 * over expired keys, sweeps, and a clock that goes back. */
static void test_len_follows_expiry_incrementally(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    char k[16];
    for (int i = 0; i < 3000; i++) {
        int kl = snprintf(k, sizeof k, "t%05d", i);
        /* 1000 keys expire at +10 s, 1000 at +20 s, 1000 never */
        uint64_t ttl = i < 1000 ? 10 * SEC : i < 2000 ? 20 * SEC : 0;
        MU_OK(db, ttl ? calypso_put_ttl(db, k, (size_t)kl, "x", 1, ttl)
                      : calypso_put(db, k, (size_t)kl, "x", 1));
    }
    assert_int_equal(calypso_len(db), 3000);
    mu_shift(15 * SEC);
    assert_int_equal(calypso_len(db), 2000);
    assert_int_equal(db->catalog.ns0.exp_count, 1000);
    MU_OK(db, calypso_delete(db, "t00000", 6));          /* an expired key */
    MU_OK(db, calypso_put(db, "t00001", 6, "y", 1));     /* revives one    */
    MU_OK(db, calypso_put_ttl(db, "t00002", 6, "y", 1, 60 * SEC));
    MU_OK(db, calypso_delete(db, "t01500", 6));          /* a live TTL key */
    assert_int_equal(calypso_len(db), 2001);
    struct calypso_stats st;
    MU_OK(db, calypso_stats(db, &st));
    assert_int_equal(st.keys, 2001);
    mu_shift(10 * SEC);                                  /* +25 s */
    assert_int_equal(calypso_len(db), 1002);
    mu_shift(-20 * SEC);                                 /* the clock goes back: +5 s */
    assert_int_equal(calypso_len(db), 2998);
    mu_shift(20 * SEC);
    MU_OK(db, calypso_run_gc(db));
    assert_int_equal(db->catalog.ns0.exp_count, 0);
    assert_int_equal(calypso_len(db), 1002);
    MU_OK(db, calypso_reopen(db));
    assert_int_equal(calypso_len(db), 1002);
    mu_shift(-25 * SEC);
    mu_close(db);
    tu_rmrf(dir);
}

static void test_ttl_model_random(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_ttl_model_random");
    uint64_t rng = seed;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    calypso *db = mu_open(dir, &o);
    model_key keys[MODEL_KEYS];
    memset(keys, 0, sizeof keys);
    /* Short keys over a tiny alphabet, 0x00 included, so that many keys
     * are prefixes of others. */
    for (int i = 0; i < MODEL_KEYS; i++) {
        for (;;) {
            keys[i].klen = 1 + tu_below(&rng, 4);
            for (size_t j = 0; j < keys[i].klen; j++) {
                static const uint8_t alpha[] = { 0x00, 'a', 'b', 0xff };
                keys[i].key[j] = alpha[tu_below(&rng, 4)];
            }
            int dup = 0;
            for (int j = 0; j < i; j++)
                dup |= keys[j].klen == keys[i].klen && !memcmp(keys[j].key, keys[i].key, keys[i].klen);
            if (!dup) break;
        }
    }
    int64_t now = 0;
    uint64_t version = 0;
    int merges = 0, reopens = 0, gcs = 0;
    for (int op = 0; op < 2500; op++) {
        model_key *m = &keys[tu_below(&rng, MODEL_KEYS)];
        unsigned dice = (unsigned)tu_below(&rng, 100);
        if (dice < 25) {                       /* put */
            uint32_t vlen = (uint32_t)tu_below(&rng, 200);
            mu_put_version(db, m->key, m->klen, ++version, vlen, 0);
            m->present = 1;
            m->version = version;
            m->vlen = vlen;
            m->expiry = 0;
        } else if (dice < 50) {                /* put with TTL */
            uint32_t vlen = (uint32_t)tu_below(&rng, 200);
            int64_t d = 1 + (int64_t)tu_below(&rng, 5);
            mu_put_version(db, m->key, m->klen, ++version, vlen, (uint64_t)d * 10 * SEC);
            m->present = 1;
            m->version = version;
            m->vlen = vlen;
            m->expiry = now + d;
        } else if (dice < 62) {                /* delete */
            MU_OK(db, calypso_delete(db, m->key, m->klen));
            m->present = 0;
            m->expiry = 0;
        } else if (dice < 72) {                /* time passes */
            int64_t d = 1 + (int64_t)tu_below(&rng, 3);
            mu_shift(d * 10 * SEC);
            now += d;
        } else if (dice < 76) {                /* gc: expired keys deleted */
            MU_OK(db, calypso_run_gc(db));
            for (int i = 0; i < MODEL_KEYS; i++)
                if (keys[i].present && keys[i].expiry && keys[i].expiry <= now)
                    keys[i].present = 0, keys[i].expiry = 0;
            gcs++;
        } else if (dice < 77) {                /* merge: expired keys dropped */
            MU_OK(db, calypso_merge(db));
            for (int i = 0; i < MODEL_KEYS; i++)
                if (keys[i].present && keys[i].expiry && keys[i].expiry <= now)
                    keys[i].present = 0, keys[i].expiry = 0;
            merges++;
        } else if (dice < 79) {
            MU_OK(db, calypso_reopen(db));
            reopens++;
        } else {
            model_check_key(db, m, now);
        }
        if (op % 100 == 99) model_check_all(db, keys, now);
    }
    model_check_all(db, keys, now);
    MU_OK(db, calypso_merge(db));
    for (int i = 0; i < MODEL_KEYS; i++)
        if (keys[i].present && keys[i].expiry && keys[i].expiry <= now)
            keys[i].present = 0, keys[i].expiry = 0;
    MU_OK(db, calypso_reopen(db));
    model_check_all(db, keys, now);
    print_message("model: %d merges, %d reopens, %d gc runs, %lld s of model time\n", merges,
                  reopens, gcs, (long long)now * 10);
    mu_close(db);
    mu_clock_reset();
    tu_rmrf(dir);
}

int main(void)
{
    mu_default_tmpdir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ttl_visible_then_invisible_everywhere),
        cmocka_unit_test(test_sift_deletes_expired_keys_with_the_chosen),
        cmocka_unit_test(test_sift_spares_an_expired_key_written_again),
        cmocka_unit_test(test_sift_expired_bounds_abort_and_chunks),
        cmocka_unit_test(test_ttl_overwrite_and_delete_rules),
        cmocka_unit_test(test_ttl_survives_reopen),
        cmocka_unit_test(test_ttl_survives_merge),
        cmocka_unit_test(test_merge_drops_expired_without_tombstones),
        cmocka_unit_test(test_run_gc_deletes_exactly_the_expired),
        cmocka_unit_test(test_run_gc_cost_is_per_expired_key),
        cmocka_unit_test(test_sweeper_keeps_keydir_bounded),
        cmocka_unit_test(test_sweep_never_keeps_expired_until_run_gc),
        cmocka_unit_test(test_walks_over_runs_of_expired_keys),
        cmocka_unit_test(test_len_follows_expiry_incrementally),
        cmocka_unit_test(test_ttl_model_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
