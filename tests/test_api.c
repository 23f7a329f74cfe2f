/*
 * test_api.c: the public API against its contract in calypso.h, through
 * the amalgamation alone (links libcalypso.a, includes only calypso.h).
 *
 * Every function's success and error paths; each limit at its boundary and
 * one past it, with nothing written on a refused write; invalid options
 * naming their field; binary and prefix keys; walk order, early stop and
 * re-entrant callbacks; sift's all-or-nothing abort; TTL expiry; stats and
 * reclaimable; read-only handles; backup under concurrent writes; error
 * strings and messages.
 */
#include "testutil.h"
#include "engine_util.h"

#include <pthread.h>

static calypso_options small_opts(void)
{
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_key_size = 100;
    o.max_value_size = 1000;
    return o;
}

/* Bytes in the database's datafiles and hint files, as listed on disk. */
static uint64_t disk_bytes(const char *dir)
{
    unsigned fids[1024];
    uint64_t sum = 0;
    int n = eu_list_fids(dir, "data", fids, 1024);
    assert_true(n <= 1024);
    for (int i = 0; i < n; i++) sum += (uint64_t)eu_fid_size(dir, fids[i], "data");
    n = eu_list_fids(dir, "hint", fids, 1024);
    assert_true(n <= 1024);
    for (int i = 0; i < n; i++) sum += (uint64_t)eu_fid_size(dir, fids[i], "hint");
    return sum;
}

static struct calypso_stats stats_of(calypso *db)
{
    struct calypso_stats st;
    memset(&st, 0xab, sizeof st);
    EU_OK(db, calypso_stats(db, &st));
    return st;
}

// >> version, errors, options ------------------------------------------------

static void test_version_and_strerror(void **state)
{
    (void)state;
    assert_non_null(calypso_version());
    assert_string_equal(calypso_version(), CALYPSO_VERSION);

    struct { int rc; const char *msg; } codes[] = {
#define X_(name, value, msg) { CALYPSO_##name, msg },
        CALYPSO_ERROR_MAP(X_)
#undef X_
    };
    size_t n = sizeof codes / sizeof codes[0];
    assert_int_equal(n, 18);
    for (size_t i = 0; i < n; i++) {
        const char *s = calypso_strerror(codes[i].rc);
        assert_non_null(s);
        assert_string_equal(s, codes[i].msg);
        for (size_t j = 0; j < i; j++)          /* distinct strings */
            assert_string_not_equal(s, calypso_strerror(codes[j].rc));
    }
    assert_int_equal(CALYPSO_OK, 0);
    assert_int_equal(CALYPSO_ETRUNC, -16);
    assert_int_equal(CALYPSO_ENOSPC, -17);
    int unknown[] = { 1, 5, -18, -100, 12345, -2147483647 - 1, 2147483647 };
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *s = calypso_strerror(unknown[i]);
        assert_non_null(s);
        assert_string_equal(s, "unknown error");
    }
}

static void test_options_default(void **state)
{
    (void)state;
    calypso_options o;
    memset(&o, 0x5a, sizeof o);
    calypso_options_default(&o);
    assert_int_equal(o.max_datafile_size, CALYPSO_DEFAULT_MAX_DATAFILE_SIZE);
    assert_int_equal(o.max_key_size, CALYPSO_DEFAULT_MAX_KEY_SIZE);
    assert_int_equal(o.max_value_size, CALYPSO_DEFAULT_MAX_VALUE_SIZE);
    assert_int_equal(o.sync, CALYPSO_SYNC_NONE);
    assert_int_equal(o.sync_interval_ms, CALYPSO_DEFAULT_SYNC_INTERVAL_MS);
    assert_int_equal(o.auto_recovery, 0);
    assert_int_equal(o.read_only, 0);
    assert_int_equal(o.dir_mode, CALYPSO_DEFAULT_DIR_MODE);
    assert_int_equal(o.file_mode, CALYPSO_DEFAULT_FILE_MODE);
    assert_true(o.merge_trigger_ratio == CALYPSO_DEFAULT_MERGE_TRIGGER);
    assert_int_equal(o.merge_min_dead_bytes, CALYPSO_DEFAULT_MERGE_MIN_DEAD);
    assert_int_equal(o.max_open_files, CALYPSO_DEFAULT_MAX_OPEN_FILES);
    assert_int_equal(o.ttl_sweep_interval_ms, CALYPSO_DEFAULT_TTL_SWEEP_MS);

    /* The filled-in struct opens like a zeroed one. */
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, &o);
    eu_put_str(db, "k", "v");
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_str(db, "k", "v");
    eu_close(db);
    tu_rmrf(dir);
}

/* Opening with o must fail with EINVAL, *db NULL, and errmsg(NULL) must
 * name `field`. */
static void expect_bad_option(const char *dir, const calypso_options *o, const char *field)
{
    calypso *db = (calypso *)&db;
    int rc = calypso_open(dir, o, &db);
    if (rc != CALYPSO_EINVAL)
        print_error("bad %s: open -> %d (%s)\n", field, rc, calypso_strerror(rc));
    assert_int_equal(rc, CALYPSO_EINVAL);
    assert_null(db);
    const char *m = calypso_errmsg(NULL);
    assert_non_null(m);
    if (!strstr(m, field)) print_error("errmsg '%s' does not name %s\n", m, field);
    assert_non_null(strstr(m, field));
}

static void expect_good_option(const char *dir, const calypso_options *o, const char *what)
{
    calypso *db = NULL;
    int rc = calypso_open(dir, o, &db);
    if (rc != CALYPSO_OK)
        print_error("%s: open -> %d (%s): %s\n", what, rc, calypso_strerror(rc),
                    calypso_errmsg(NULL));
    assert_int_equal(rc, CALYPSO_OK);
    assert_non_null(db);
    eu_close(db);
}

static void test_open_invalid_args(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = (calypso *)&db;

    /* NULL path, NULL handle pointer. */
    assert_int_equal(calypso_open(NULL, NULL, &db), CALYPSO_EINVAL);
    assert_null(db);
    assert_true(strlen(calypso_errmsg(NULL)) > 0);
    assert_int_equal(calypso_open(dir, NULL, NULL), CALYPSO_EINVAL);

    calypso_options o;
#define BAD(field_, value_, name_)                                            \
    do {                                                                      \
        memset(&o, 0, sizeof o);                                              \
        o.field_ = (value_);                                                  \
        expect_bad_option(dir, &o, name_);                                    \
    } while (0)
#define GOOD(field_, value_)                                                  \
    do {                                                                      \
        memset(&o, 0, sizeof o);                                              \
        o.field_ = (value_);                                                  \
        expect_good_option(dir, &o, #field_ " = " #value_);                   \
    } while (0)

    BAD(max_key_size, CALYPSO_MAX_KEY_SIZE + 1, "max_key_size");
    BAD(max_key_size, 65536u, "max_key_size");
    BAD(max_key_size, 0xffffffffu, "max_key_size");
    GOOD(max_key_size, CALYPSO_MAX_KEY_SIZE);
    GOOD(max_key_size, 1);

    BAD(max_value_size, CALYPSO_MAX_VALUE_SIZE + 1, "max_value_size");
    BAD(max_value_size, UINT64_MAX, "max_value_size");
    memset(&o, 0, sizeof o);   /* the largest value with files to hold it */
    o.max_value_size = CALYPSO_MAX_VALUE_SIZE;
    o.max_datafile_size = 2 * CALYPSO_MAX_VALUE_SIZE;
    expect_good_option(dir, &o, "max_value_size = 1 GiB");
    GOOD(max_value_size, 1);

    BAD(max_datafile_size, CALYPSO_MIN_DATAFILE_SIZE - 1, "max_datafile_size");
    BAD(max_datafile_size, 1, "max_datafile_size");
    BAD(max_datafile_size, CALYPSO_MAX_DATAFILE_SIZE + 1, "max_datafile_size");
    GOOD(max_datafile_size, CALYPSO_MIN_DATAFILE_SIZE);
    GOOD(max_datafile_size, CALYPSO_MAX_DATAFILE_SIZE);

    BAD(sync, 7, "sync");
    BAD(sync, 3, "sync");
    BAD(sync, -1, "sync");
    GOOD(sync, CALYPSO_SYNC_ALWAYS);
    GOOD(sync, CALYPSO_SYNC_INTERVAL);

    BAD(sync_interval_ms, 3600001u, "sync_interval_ms");
    GOOD(sync_interval_ms, 3600000u);

    BAD(max_open_files, 65537u, "max_open_files");
    GOOD(max_open_files, 65536u);
    GOOD(max_open_files, 1u);

    BAD(ttl_sweep_interval_ms, 86400001u, "ttl_sweep_interval_ms");
    BAD(ttl_sweep_interval_ms, CALYPSO_SWEEP_NEVER - 1, "ttl_sweep_interval_ms");
    GOOD(ttl_sweep_interval_ms, 86400000u);
    GOOD(ttl_sweep_interval_ms, CALYPSO_SWEEP_NEVER);
#undef BAD
#undef GOOD

    /* A path that is a regular file is no database directory. */
    char file[1024];
    eu_path(file, sizeof file, dir, "plainfile");
    eu_write_file(file, "x", 1);
    db = (calypso *)&db;
    int rc = calypso_open(file, NULL, &db);
    assert_true(rc < 0);
    assert_null(db);
    assert_true(strlen(calypso_errmsg(NULL)) > 0);

    /* Missing parents are created (test_create_dirs.c), but not under a
     * regular file: that fails with CALYPSO_EINVAL. */
    char sub[1100];
    snprintf(sub, sizeof sub, "%s/db", file);
    db = (calypso *)&db;
    rc = calypso_open(sub, NULL, &db);
    assert_int_equal(rc, CALYPSO_EINVAL);
    assert_null(db);

    /* calypso_close(NULL) is a no-op. */
    assert_int_equal(calypso_close(NULL), CALYPSO_OK);
    assert_int_equal(calypso_len(NULL), 0);
    calypso_free(NULL);
    tu_rmrf(dir);
}

static void test_errmsg(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = small_opts();
    calypso *db = eu_open(dir, &o);
    const char *m = calypso_errmsg(db);
    assert_non_null(m);
    assert_string_equal(m, "");
    char big[101];
    memset(big, 'k', sizeof big);
    assert_int_equal(calypso_put(db, big, 101, "v", 1), CALYPSO_EKEYTOOLARGE);
    m = calypso_errmsg(db);
    assert_non_null(m);
    assert_true(strlen(m) > 0);
    eu_close(db);

    /* A failed open leaves its detail for this thread. */
    calypso_options bad;
    memset(&bad, 0, sizeof bad);
    bad.sync = 99;
    db = (calypso *)&db;
    assert_int_equal(calypso_open(dir, &bad, &db), CALYPSO_EINVAL);
    assert_null(db);
    assert_true(strlen(calypso_errmsg(NULL)) > 0);
    tu_rmrf(dir);
}

// >> puts and gets -----------------------------------------------------------

static void test_put_get_basic(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    assert_int_equal(calypso_len(db), 0);
    assert_int_equal(calypso_has(db, "a", 1), 0);
    eu_expect_rc(db, "a", 1, CALYPSO_ENOTFOUND);

    eu_put_str(db, "alpha", "one");
    eu_put_str(db, "beta", "two");
    eu_expect_str(db, "alpha", "one");
    eu_expect_str(db, "beta", "two");
    assert_int_equal(calypso_has(db, "alpha", 5), 1);
    assert_int_equal(calypso_has(db, "alph", 4), 0);
    assert_int_equal(calypso_has(db, "alphaa", 6), 0);
    assert_int_equal(calypso_len(db), 2);

    /* Overwrite. */
    eu_put_str(db, "alpha", "uno-longer-value");
    eu_expect_str(db, "alpha", "uno-longer-value");
    assert_int_equal(calypso_len(db), 2);

    /* get_buf: exact fit, room to spare, too small. */
    char buf[64];
    size_t vlen = 0;
    EU_OK(db, calypso_get_buf(db, "beta", 4, buf, 3, &vlen));
    assert_int_equal(vlen, 3);
    assert_memory_equal(buf, "two", 3);
    memset(buf, '#', sizeof buf);
    EU_OK(db, calypso_get_buf(db, "alpha", 5, buf, sizeof buf, &vlen));
    assert_int_equal(vlen, 16);
    assert_memory_equal(buf, "uno-longer-value", 16);
    assert_int_equal(buf[16], '#');
    memset(buf, '#', sizeof buf);
    vlen = 0;
    EU_RC(db, CALYPSO_ETRUNC, calypso_get_buf(db, "alpha", 5, buf, 15, &vlen));
    assert_int_equal(vlen, 16);
    for (size_t i = 0; i < sizeof buf; i++) assert_int_equal(buf[i], '#');
    vlen = 0;
    EU_RC(db, CALYPSO_ETRUNC, calypso_get_buf(db, "alpha", 5, buf, 0, &vlen));
    assert_int_equal(vlen, 16);
    EU_RC(db, CALYPSO_ENOTFOUND, calypso_get_buf(db, "gamma", 5, buf, sizeof buf, &vlen));

    /* Values are copied in: changing the caller's buffer after put is
     * harmless. */
    char kv[8] = "key1val";
    EU_OK(db, calypso_put(db, kv, 4, kv + 4, 3));
    memset(kv, 'z', sizeof kv);
    eu_expect(db, "key1", 4, "val", 3);

    /* Delete. */
    EU_OK(db, calypso_delete(db, "beta", 4));
    eu_expect_rc(db, "beta", 4, CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_has(db, "beta", 4), 0);
    assert_int_equal(calypso_len(db), 2);

    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_str(db, "alpha", "uno-longer-value");
    eu_expect(db, "key1", 4, "val", 3);
    eu_expect_rc(db, "beta", 4, CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_len(db), 2);
    eu_close(db);
    tu_rmrf(dir);
}

/* The refused write must change neither the stats nor a byte on disk. */
static void expect_refused_put(calypso *db, const char *dir, int want,
                               const void *k, size_t klen, const void *v, size_t vlen)
{
    struct calypso_stats before = stats_of(db);
    eu_snap sn = eu_snap_newest(dir);
    EU_RC(db, want, calypso_put(db, k, klen, v, vlen));
    EU_RC(db, want, calypso_put_ttl(db, k, klen, v, vlen, 60000));
    struct calypso_stats after = stats_of(db);
    assert_int_equal(after.size, before.size);
    assert_int_equal(after.keys, before.keys);
    assert_int_equal(after.reclaimable, before.reclaimable);
    assert_true(eu_snap_unchanged(dir, &sn));
}

static void test_limits_configured(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = small_opts();
    calypso *db = eu_open(dir, &o);
    uint8_t key[102], val[1002];
    for (size_t i = 0; i < sizeof key; i++) key[i] = (uint8_t)('a' + i % 26);
    for (size_t i = 0; i < sizeof val; i++) val[i] = (uint8_t)i;
    eu_put_str(db, "seed", "x");   /* so a datafile exists */

    /* Empty key: every call that takes a key. */
    expect_refused_put(db, dir, CALYPSO_EEMPTYKEY, key, 0, val, 1);
    expect_refused_put(db, dir, CALYPSO_EEMPTYKEY, "", 0, "", 0);
    eu_expect_rc(db, key, 0, CALYPSO_EEMPTYKEY);
    size_t vlen;
    EU_RC(db, CALYPSO_EEMPTYKEY, calypso_get_buf(db, key, 0, val, sizeof val, &vlen));
    assert_int_equal(calypso_has(db, key, 0), CALYPSO_EEMPTYKEY);
    {
        eu_snap sn = eu_snap_newest(dir);
        EU_RC(db, CALYPSO_EEMPTYKEY, calypso_delete(db, key, 0));
        assert_true(eu_snap_unchanged(dir, &sn));
    }

    /* Key size: == limit ok, one past refused. */
    EU_OK(db, calypso_put(db, key, 100, val, 10));
    eu_expect(db, key, 100, val, 10);
    assert_int_equal(calypso_has(db, key, 100), 1);
    expect_refused_put(db, dir, CALYPSO_EKEYTOOLARGE, key, 101, val, 10);
    eu_expect_rc(db, key, 101, CALYPSO_EKEYTOOLARGE);
    assert_int_equal(calypso_has(db, key, 101), CALYPSO_EKEYTOOLARGE);
    {
        eu_snap sn = eu_snap_newest(dir);
        EU_RC(db, CALYPSO_EKEYTOOLARGE, calypso_delete(db, key, 101));
        assert_true(eu_snap_unchanged(dir, &sn));
    }
    eu_expect(db, key, 100, val, 10);      /* the 100-byte key is untouched */

    /* Value size: == limit ok, one past refused (also as an overwrite:
     * the old value stays). */
    EU_OK(db, calypso_put(db, "v", 1, val, 1000));
    eu_expect(db, "v", 1, val, 1000);
    expect_refused_put(db, dir, CALYPSO_EVALUETOOLARGE, "v", 1, val, 1001);
    expect_refused_put(db, dir, CALYPSO_EVALUETOOLARGE, "new", 3, val, 1002);
    eu_expect(db, "v", 1, val, 1000);
    eu_expect_rc(db, "new", 3, CALYPSO_ENOTFOUND);
    /* Both limits at once. */
    EU_OK(db, calypso_put(db, key, 100, val, 1000));
    eu_expect(db, key, 100, val, 1000);

    /* The limits hold after a reopen (same options). */
    EU_OK(db, calypso_reopen(db));
    expect_refused_put(db, dir, CALYPSO_EKEYTOOLARGE, key, 101, val, 10);
    expect_refused_put(db, dir, CALYPSO_EVALUETOOLARGE, "v", 1, val, 1001);
    eu_expect(db, key, 100, val, 1000);
    eu_expect(db, "v", 1, val, 1000);
    assert_int_equal(calypso_len(db), 3);
    eu_close(db);
    tu_rmrf(dir);
}

static void test_limits_default(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    eu_put_str(db, "seed", "x");
    size_t kmax = CALYPSO_DEFAULT_MAX_KEY_SIZE;
    uint8_t *key = malloc(kmax + 1);
    assert_non_null(key);
    for (size_t i = 0; i <= kmax; i++) key[i] = (uint8_t)(i * 7);
    EU_OK(db, calypso_put(db, key, kmax, "kv", 2));
    eu_expect(db, key, kmax, "kv", 2);
    expect_refused_put(db, dir, CALYPSO_EKEYTOOLARGE, key, kmax + 1, "kv", 2);
    eu_expect_rc(db, key, kmax + 1, CALYPSO_EKEYTOOLARGE);

    size_t vmax = (size_t)CALYPSO_DEFAULT_MAX_VALUE_SIZE;
    uint8_t *val = malloc(vmax + 1);
    assert_non_null(val);
    /* A pattern with a period of 4093 bytes (prime, so no page or block
     * lines up with it), spread by doubling copies: fast under sanitizers. */
    for (size_t i = 0; i < 4093; i++) val[i] = (uint8_t)(i * 31 + (i >> 7));
    for (size_t have = 4093; have <= vmax; have *= 2)
        memcpy(val + have, val, have <= vmax + 1 - have ? have : vmax + 1 - have);
    expect_refused_put(db, dir, CALYPSO_EVALUETOOLARGE, "big", 3, val, vmax + 1);
    eu_expect_rc(db, "big", 3, CALYPSO_ENOTFOUND);
    EU_OK(db, calypso_put(db, "big", 3, val, vmax));
    void *got = NULL;
    size_t glen = 0;
    EU_OK(db, calypso_get(db, "big", 3, &got, &glen));
    assert_int_equal(glen, vmax);
    assert_true(memcmp(got, val, vmax) == 0);
    calypso_free(got);
    /* Delete it so close and rmrf have less to do with it. */
    EU_OK(db, calypso_delete(db, "big", 3));
    eu_close(db);
    free(val);
    free(key);
    tu_rmrf(dir);
}

/* Keys at the hard limit, records larger than a datafile, through hints,
 * merge and reopen. */
static void test_hard_key_limit(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_key_size = CALYPSO_MAX_KEY_SIZE;
    o.max_datafile_size = CALYPSO_MIN_DATAFILE_SIZE;
    o.merge_trigger_ratio = -1;
    size_t kmax = CALYPSO_MAX_KEY_SIZE;
    uint8_t *key = malloc(kmax + 1);
    assert_non_null(key);
    memset(key, 0xab, kmax + 1);
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < 4; i++) {
        key[kmax - 1] = (uint8_t)i;
        char v[8];
        snprintf(v, sizeof v, "v%d", i);
        if (i == 2) EU_OK(db, calypso_put_ttl(db, key, kmax, v, strlen(v), 3600000));
        else EU_OK(db, calypso_put(db, key, kmax, v, strlen(v)));
    }
    key[kmax - 1] = 3;
    EU_OK(db, calypso_delete(db, key, kmax));
    key[kmax - 1] = 0;
    EU_OK(db, calypso_put(db, key, kmax, "v0b", 3));            /* overwrite */
    EU_RC(db, CALYPSO_EKEYTOOLARGE, calypso_put(db, key, kmax + 1, "x", 1));
    for (int pass = 0; pass < 3; pass++) {
        key[kmax - 1] = 0;
        eu_expect(db, key, kmax, "v0b", 3);
        key[kmax - 1] = 1;
        eu_expect(db, key, kmax, "v1", 2);
        key[kmax - 1] = 2;
        eu_expect(db, key, kmax, "v2", 2);
        key[kmax - 1] = 3;
        eu_expect_rc(db, key, kmax, CALYPSO_ENOTFOUND);
        assert_int_equal(calypso_len(db), 3);
        eu_keys ks = {0};
        EU_OK(db, calypso_scan(db, key, 100, eu_collect, &ks));
        assert_int_equal(ks.n, 3);
        for (size_t i = 0; i < ks.n; i++) {
            assert_int_equal(ks.v[i].len, kmax);
            assert_int_equal(ks.v[i].k[kmax - 1], i);
        }
        eu_keys_free(&ks);
        if (pass == 0) { eu_close(db); db = eu_open(dir, &o); }   /* from hints */
        if (pass == 1) EU_OK(db, calypso_merge(db));
    }
    eu_close(db);
    db = eu_open(dir, &o);
    key[kmax - 1] = 2;
    eu_expect(db, key, kmax, "v2", 2);
    assert_int_equal(calypso_len(db), 3);
    eu_close(db);
    free(key);
    tu_rmrf(dir);
}

static void test_null_arguments(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    EU_RC(db, CALYPSO_EINVAL, calypso_put(db, NULL, 3, "v", 1));
    EU_RC(db, CALYPSO_EINVAL, calypso_put(db, "k", 1, NULL, 3));
    EU_RC(db, CALYPSO_EINVAL, calypso_put_ttl(db, "k", 1, NULL, 3, 1000));
    eu_expect_rc(db, "k", 1, CALYPSO_ENOTFOUND);
    /* NULL value with length 0 is the empty value. */
    EU_OK(db, calypso_put(db, "k", 1, NULL, 0));
    eu_expect(db, "k", 1, "", 0);
    void *v = (void *)&v;
    size_t vlen = 5;
    EU_RC(db, CALYPSO_EINVAL, calypso_get(db, NULL, 2, &v, &vlen));
    assert_true(calypso_has(db, NULL, 2) < 0);
    assert_int_equal(calypso_has(db, NULL, 2), CALYPSO_EINVAL);
    EU_RC(db, CALYPSO_EINVAL, calypso_delete(db, NULL, 2));
    assert_int_equal(calypso_len(db), 1);
    eu_close(db);
    tu_rmrf(dir);
}

static void test_empty_value(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    EU_OK(db, calypso_put(db, "e", 1, "", 0));
    EU_OK(db, calypso_put_ttl(db, "et", 2, "", 0, 3600 * 1000));
    eu_expect(db, "e", 1, "", 0);
    eu_expect(db, "et", 2, "", 0);
    assert_int_equal(calypso_has(db, "e", 1), 1);
    assert_int_equal(calypso_len(db), 2);
    char buf[4] = "###";
    size_t vlen = 99;
    EU_OK(db, calypso_get_buf(db, "e", 1, buf, 0, &vlen));
    assert_int_equal(vlen, 0);
    assert_string_equal(buf, "###");

    EU_OK(db, calypso_reopen(db));
    eu_expect(db, "e", 1, "", 0);
    eu_expect(db, "et", 2, "", 0);
    eu_close(db);

    db = eu_open(dir, NULL);
    eu_expect(db, "e", 1, "", 0);
    eu_expect(db, "et", 2, "", 0);
    assert_int_equal(calypso_len(db), 2);
    /* An empty value replaced by a value and back. */
    eu_put_str(db, "e", "full");
    EU_OK(db, calypso_put(db, "e", 1, "", 0));
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect(db, "e", 1, "", 0);
    eu_close(db);
    tu_rmrf(dir);
}

// >> binary keys, walks ------------------------------------------------------

/* Keys in their expected order (memcmp, shorter first). */
static const struct { const char *k; size_t len; } g_bin[] = {
    { "\x00", 1 },
    { "\x00\x00", 2 },
    { "\x00\x01", 2 },
    { "a", 1 },
    { "a\x00", 2 },
    { "a\x00\x00", 3 },
    { "a\x00" "b", 3 },
    { "a\x01", 2 },
    { "ab", 2 },
    { "abc", 3 },
    { "abc\x00", 4 },
    { "abd", 3 },
    { "b", 1 },
    { "\x7f", 1 },
    { "\x80", 1 },
    { "\xff", 1 },
    { "\xff\xff", 2 },
    { "\xff\xff\xff", 3 },
};
#define N_BIN (sizeof g_bin / sizeof g_bin[0])

static void put_bin_keys(calypso *db)
{
    /* In a scrambled order; the value is the index. */
    for (size_t j = 0; j < N_BIN; j++) {
        size_t i = (j * 7) % N_BIN;
        char v[8];
        snprintf(v, sizeof v, "v%zu", i);
        EU_OK(db, calypso_put(db, g_bin[i].k, g_bin[i].len, v, strlen(v)));
    }
}

static void expect_bin_walk(const eu_keys *ks, size_t from, size_t to)
{
    if (ks->n != to - from) print_error("walk gave %zu keys, want %zu\n", ks->n, to - from);
    assert_int_equal(ks->n, to - from);
    for (size_t i = from; i < to; i++) {
        assert_int_equal(ks->v[i - from].len, g_bin[i].len);
        assert_memory_equal(ks->v[i - from].k, g_bin[i].k, g_bin[i].len);
    }
}

static void test_binary_and_prefix_keys(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    put_bin_keys(db);
    for (int pass = 0; pass < 2; pass++) {
        assert_int_equal(calypso_len(db), N_BIN);
        for (size_t i = 0; i < N_BIN; i++) {
            char v[8];
            snprintf(v, sizeof v, "v%zu", i);
            eu_expect(db, g_bin[i].k, g_bin[i].len, v, strlen(v));
            assert_int_equal(calypso_has(db, g_bin[i].k, g_bin[i].len), 1);
        }
        eu_keys ks = {0};
        EU_OK(db, calypso_fold(db, eu_collect, &ks));
        expect_bin_walk(&ks, 0, N_BIN);
        eu_keys_free(&ks);
        EU_OK(db, calypso_scan(db, "", 0, eu_collect, &ks));
        expect_bin_walk(&ks, 0, N_BIN);
        eu_keys_free(&ks);
        EU_OK(db, calypso_scan(db, "a\x00", 2, eu_collect, &ks));
        expect_bin_walk(&ks, 4, 7);
        eu_keys_free(&ks);
        EU_OK(db, calypso_scan(db, "\x00", 1, eu_collect, &ks));
        expect_bin_walk(&ks, 0, 3);
        eu_keys_free(&ks);
        EU_OK(db, calypso_scan(db, "a", 1, eu_collect, &ks));
        expect_bin_walk(&ks, 3, 12);
        eu_keys_free(&ks);
        EU_OK(db, calypso_scan(db, "\xff\xff", 2, eu_collect, &ks));
        expect_bin_walk(&ks, 16, 18);
        eu_keys_free(&ks);
        EU_OK(db, calypso_range(db, "a", 1, "abc", 3, eu_collect, &ks));
        expect_bin_walk(&ks, 3, 10);
        eu_keys_free(&ks);
        EU_OK(db, calypso_range(db, "\x00\x00", 2, "a\x00", 2, eu_collect, &ks));
        expect_bin_walk(&ks, 1, 5);
        eu_keys_free(&ks);
        if (pass == 0) EU_OK(db, calypso_reopen(db));
    }

    /* Deleting one key of a prefix chain leaves its neighbours. */
    EU_OK(db, calypso_delete(db, "a\x00", 2));
    eu_expect_rc(db, "a\x00", 2, CALYPSO_ENOTFOUND);
    eu_expect(db, "a", 1, "v3", 2);
    eu_expect(db, "a\x00\x00", 3, "v5", 2);
    EU_OK(db, calypso_delete(db, "a", 1));
    eu_expect_rc(db, "a", 1, CALYPSO_ENOTFOUND);
    eu_expect(db, "ab", 2, "v8", 2);
    eu_expect(db, "a\x00" "b", 3, "v6", 2);
    EU_OK(db, calypso_delete(db, "\x00", 1));
    eu_expect(db, "\x00\x00", 2, "v1", 2);
    eu_close(db);
    db = eu_open(dir, NULL);
    assert_int_equal(calypso_len(db), N_BIN - 3);
    eu_expect_rc(db, "a\x00", 2, CALYPSO_ENOTFOUND);
    eu_expect_rc(db, "a", 1, CALYPSO_ENOTFOUND);
    eu_expect_rc(db, "\x00", 1, CALYPSO_ENOTFOUND);
    eu_expect(db, "a\x00\x00", 3, "v5", 2);
    eu_close(db);
    tu_rmrf(dir);
}

static const char *const g_words[] = {
    "apple", "apple/1", "apple/2", "apple/2/x", "applesauce", "apricot",
    "b", "ba", "banana", "band", "c", "cherry", "z", "zz",
};
#define N_WORDS (sizeof g_words / sizeof g_words[0])

static calypso *open_words(const char *dir)
{
    calypso *db = eu_open(dir, NULL);
    for (size_t j = 0; j < N_WORDS; j++) {
        size_t i = (j * 5 + 3) % N_WORDS;
        eu_put_str(db, g_words[i], g_words[i]);
    }
    return db;
}

static void test_walk_order_and_bounds(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = open_words(dir);
    eu_keys ks = {0};

    EU_OK(db, calypso_fold(db, eu_collect, &ks));
    eu_keys_expect(&ks, g_words, N_WORDS);
    eu_keys_free(&ks);

    EU_OK(db, calypso_scan(db, "apple", 5, eu_collect, &ks));
    eu_keys_expect(&ks, g_words, 5);
    eu_keys_free(&ks);
    EU_OK(db, calypso_scan(db, "apple/", 6, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 1, 3);
    eu_keys_free(&ks);
    EU_OK(db, calypso_scan(db, "ap", 2, eu_collect, &ks));
    eu_keys_expect(&ks, g_words, 6);
    eu_keys_free(&ks);
    EU_OK(db, calypso_scan(db, "b", 1, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 6, 4);
    eu_keys_free(&ks);
    EU_OK(db, calypso_scan(db, "cherry", 6, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 11, 1);
    eu_keys_free(&ks);
    EU_OK(db, calypso_scan(db, "cherryx", 7, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    EU_OK(db, calypso_scan(db, "d", 1, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    EU_OK(db, calypso_scan(db, "", 0, eu_collect, &ks));
    eu_keys_expect(&ks, g_words, N_WORDS);
    eu_keys_free(&ks);

    /* Inclusive bounds, bounds that are not keys, empty bounds. */
    EU_OK(db, calypso_range(db, "apple/1", 7, "apricot", 7, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 1, 5);
    eu_keys_free(&ks);
    EU_OK(db, calypso_range(db, "apple/", 6, "b", 1, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 1, 6);
    eu_keys_free(&ks);
    EU_OK(db, calypso_range(db, "", 0, "apple", 5, eu_collect, &ks));
    eu_keys_expect(&ks, g_words, 1);
    eu_keys_free(&ks);
    EU_OK(db, calypso_range(db, "", 0, "\xff", 1, eu_collect, &ks));
    eu_keys_expect(&ks, g_words, N_WORDS);
    eu_keys_free(&ks);
    EU_OK(db, calypso_range(db, "", 0, "", 0, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    EU_OK(db, calypso_range(db, "band", 4, "band", 4, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 9, 1);
    eu_keys_free(&ks);
    EU_OK(db, calypso_range(db, "bb", 2, "bz", 2, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    EU_OK(db, calypso_range(db, "cz", 2, "zz", 2, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 12, 2);
    eu_keys_free(&ks);
    EU_OK(db, calypso_range(db, "zz", 2, "zzz", 3, eu_collect, &ks));
    eu_keys_expect(&ks, g_words + 13, 1);
    eu_keys_free(&ks);

    /* start > end. */
    EU_RC(db, CALYPSO_EINVALIDRANGE, calypso_range(db, "b", 1, "a", 1, eu_collect, &ks));
    EU_RC(db, CALYPSO_EINVALIDRANGE, calypso_range(db, "a\x00", 2, "a", 1, eu_collect, &ks));
    EU_RC(db, CALYPSO_EINVALIDRANGE, calypso_range(db, "a", 1, "", 0, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    eu_close(db);
    tu_rmrf(dir);
}

static void test_walk_stops_on_nonzero(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = open_words(dir);
    eu_keys ks = {0};

    ks.stop_after = 3; ks.stop_rc = 42;
    assert_int_equal(calypso_fold(db, eu_collect, &ks), 42);
    eu_keys_expect(&ks, g_words, 3);
    eu_keys_free(&ks);

    ks.stop_after = 1; ks.stop_rc = -1000;
    assert_int_equal(calypso_fold(db, eu_collect, &ks), -1000);
    eu_keys_expect(&ks, g_words, 1);
    eu_keys_free(&ks);

    ks.stop_after = 2; ks.stop_rc = CALYPSO_ENOTFOUND;
    assert_int_equal(calypso_scan(db, "apple/", 6, eu_collect, &ks), CALYPSO_ENOTFOUND);
    eu_keys_expect(&ks, g_words + 1, 2);
    eu_keys_free(&ks);

    ks.stop_after = 4; ks.stop_rc = 1;
    assert_int_equal(calypso_range(db, "b", 1, "zz", 2, eu_collect, &ks), 1);
    eu_keys_expect(&ks, g_words + 6, 4);
    eu_keys_free(&ks);

    /* Stopping on the last key still returns the code. */
    ks.stop_after = (int)N_WORDS; ks.stop_rc = 7;
    assert_int_equal(calypso_fold(db, eu_collect, &ks), 7);
    assert_int_equal(ks.n, N_WORDS);
    eu_keys_free(&ks);
    eu_close(db);
    tu_rmrf(dir);
}

struct reenter_ctx {
    calypso *db;
    int      seen;
    int      errors;
};

/* Reads the key, writes "copy/<key>", deletes keys starting with 'b'. */
static int reenter_fn(const void *key, size_t klen, void *ctx)
{
    struct reenter_ctx *c = ctx;
    if (klen >= 5 && memcmp(key, "copy/", 5) == 0) return 0;
    c->seen++;
    void *v = NULL;
    size_t vlen = 0;
    if (calypso_get(c->db, key, klen, &v, &vlen) != CALYPSO_OK) { c->errors++; return 0; }
    if (vlen != klen || memcmp(v, key, klen) != 0) c->errors++;
    calypso_free(v);
    char ck[128];
    if (klen + 5 > sizeof ck) { c->errors++; return 0; }
    memcpy(ck, "copy/", 5);
    memcpy(ck + 5, key, klen);
    if (calypso_put(c->db, ck, klen + 5, key, klen) != CALYPSO_OK) c->errors++;
    if (((const char *)key)[0] == 'b' &&
        calypso_delete(c->db, key, klen) != CALYPSO_OK) c->errors++;
    if (calypso_has(c->db, ck, klen + 5) != 1) c->errors++;
    (void)calypso_len(c->db);
    struct calypso_stats st;
    if (calypso_stats(c->db, &st) != CALYPSO_OK) c->errors++;
    return 0;
}

static int reenter_sift_fn(const void *key, size_t klen, void *ctx)
{
    struct reenter_ctx *c = ctx;
    c->seen++;
    void *v = NULL;
    size_t vlen = 0;
    if (calypso_get(c->db, key, klen, &v, &vlen) != CALYPSO_OK) c->errors++;
    calypso_free(v);
    if (calypso_put(c->db, "zzz-side", 8, "s", 1) != CALYPSO_OK) c->errors++;
    return klen >= 5 && memcmp(key, "copy/", 5) == 0;
}

static void test_callbacks_reenter(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = open_words(dir);
    alarm(60);   /* a deadlock kills the binary instead of hanging it */
    struct reenter_ctx c = { db, 0, 0 };
    EU_OK(db, calypso_fold(db, reenter_fn, &c));
    assert_int_equal(c.errors, 0);
    assert_true(c.seen >= (int)N_WORDS);   /* each original key, maybe copies' */
    for (size_t i = 0; i < N_WORDS; i++) {
        char ck[64];
        snprintf(ck, sizeof ck, "copy/%s", g_words[i]);
        eu_expect_str(db, ck, g_words[i]);
        if (g_words[i][0] == 'b') eu_expect_absent_str(db, g_words[i]);
        else eu_expect_str(db, g_words[i], g_words[i]);
    }

    c.seen = 0;
    EU_OK(db, calypso_scan(db, "a", 1, reenter_fn, &c));
    assert_int_equal(c.errors, 0);
    assert_int_equal(c.seen, 6);
    c.seen = 0;
    EU_OK(db, calypso_range(db, "c", 1, "cz", 2, reenter_fn, &c));
    assert_int_equal(c.errors, 0);
    assert_int_equal(c.seen, 2);

    c.seen = 0;
    EU_OK(db, calypso_sift(db, reenter_sift_fn, &c));
    assert_int_equal(c.errors, 0);
    assert_true(c.seen >= 10 + (int)N_WORDS);   /* 10 words left + 14 copies */
    eu_keys ks = {0};
    EU_OK(db, calypso_scan(db, "copy/", 5, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    eu_keys_free(&ks);
    eu_expect_str(db, "zzz-side", "s");
    alarm(0);
    eu_close(db);
    tu_rmrf(dir);
}

// >> delete, delete_all, sift ------------------------------------------------

static void test_delete_absent_writes_nothing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    EU_OK(db, calypso_delete(db, "nothing", 7));
    eu_put_str(db, "k", "v");
    eu_snap sn = eu_snap_newest(dir);
    EU_OK(db, calypso_delete(db, "nothing", 7));
    EU_OK(db, calypso_delete(db, "k2", 2));
    EU_RC(db, CALYPSO_EEMPTYKEY, calypso_delete(db, "", 0));
    assert_true(eu_snap_unchanged(dir, &sn));
    /* Deleting a live key writes a tombstone; deleting it again writes
     * nothing. */
    sn = eu_snap_newest(dir);
    EU_OK(db, calypso_delete(db, "k", 1));
    assert_false(eu_snap_unchanged(dir, &sn));
    sn = eu_snap_newest(dir);
    EU_OK(db, calypso_delete(db, "k", 1));
    assert_true(eu_snap_unchanged(dir, &sn));
    eu_expect_absent_str(db, "k");
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_absent_str(db, "k");
    assert_int_equal(calypso_len(db), 0);
    /* A deleted key can come back. */
    eu_put_str(db, "k", "again");
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_str(db, "k", "again");
    eu_close(db);
    tu_rmrf(dir);
}

static void test_delete_all(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;       /* keys spread over several files */
    calypso *db = eu_open(dir, &o);
    char k[32], v[128];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 200; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        if (i % 10 == 0) EU_OK(db, calypso_put_ttl(db, k, strlen(k), v, 100, 3600000));
        else EU_OK(db, calypso_put(db, k, strlen(k), v, 100));
    }
    assert_int_equal(calypso_len(db), 200);
    EU_OK(db, calypso_delete_all(db));
    assert_int_equal(calypso_len(db), 0);
    eu_keys ks = {0};
    EU_OK(db, calypso_fold(db, eu_collect, &ks));
    assert_int_equal(ks.n, 0);
    eu_expect_absent_str(db, "key000");
    eu_expect_absent_str(db, "key199");
    assert_int_equal(stats_of(db).keys, 0);
    /* Deleting all of nothing is fine. */
    EU_OK(db, calypso_delete_all(db));
    eu_put_str(db, "after", "1");
    eu_close(db);

    db = eu_open(dir, &o);
    assert_int_equal(calypso_len(db), 1);
    EU_OK(db, calypso_fold(db, eu_collect, &ks));
    const char *want[] = { "after" };
    eu_keys_expect(&ks, want, 1);
    eu_keys_free(&ks);
    eu_expect_absent_str(db, "key050");
    eu_expect_str(db, "after", "1");
    /* Old values reappear only if put again. */
    snprintf(k, sizeof k, "key%03d", 7);
    eu_put_str(db, k, "x");
    EU_OK(db, calypso_reopen(db));
    eu_expect_str(db, k, "x");
    assert_int_equal(calypso_len(db), 2);
    eu_close(db);
    tu_rmrf(dir);
}

struct sift_ctx {
    int calls;
    int abort_at;      /* > 0: return abort_rc on this call */
    int abort_rc;
    char want_first;   /* 0: any */
};

/* Deletes keys whose last byte is an even digit (returning 2 for '8'). */
static int sift_even(const void *key, size_t klen, void *ctx)
{
    struct sift_ctx *c = ctx;
    c->calls++;
    if (c->abort_at > 0 && c->calls == c->abort_at) return c->abort_rc;
    char last = ((const char *)key)[klen - 1];
    if (last == '8') return 2;
    return last >= '0' && last <= '9' && (last - '0') % 2 == 0;
}

static calypso *open_sift_db(const char *dir)
{
    calypso *db = eu_open(dir, NULL);
    char k[16];
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "%c%d", 'a' + p, i);
            eu_put_str(db, k, k);
        }
    return db;
}

static void expect_sift_state(calypso *db, int deleted_a, int deleted_b, int deleted_c)
{
    char k[16];
    int del[3] = { deleted_a, deleted_b, deleted_c };
    int live = 0;
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < 10; i++) {
            snprintf(k, sizeof k, "%c%d", 'a' + p, i);
            int gone = del[p] && i % 2 == 0;
            int rc = calypso_has(db, k, strlen(k));
            if (rc != !gone) print_error("key %s: has %d, want %d\n", k, rc, !gone);
            assert_int_equal(rc, !gone);
            live += !gone;
        }
    assert_int_equal(calypso_len(db), live);
}

static void test_sift(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = open_sift_db(dir);
    struct sift_ctx c = {0};

    /* Abort mid-way: nothing deleted, the code returned. */
    c.abort_at = 15; c.abort_rc = -77;
    assert_int_equal(calypso_sift(db, sift_even, &c), -77);
    assert_int_equal(c.calls, 15);
    expect_sift_state(db, 0, 0, 0);
    memset(&c, 0, sizeof c);
    c.abort_at = 5; c.abort_rc = CALYPSO_EIO;
    assert_int_equal(calypso_sift_scan(db, "b", 1, sift_even, &c), CALYPSO_EIO);
    assert_int_equal(c.calls, 5);
    expect_sift_state(db, 0, 0, 0);
    memset(&c, 0, sizeof c);
    c.abort_at = 10; c.abort_rc = -1;
    assert_int_equal(calypso_sift_range(db, "a5", 2, "c4", 2, sift_even, &c), -1);
    assert_int_equal(c.calls, 10);
    expect_sift_state(db, 0, 0, 0);
    /* Aborting on the very last key still deletes nothing. */
    memset(&c, 0, sizeof c);
    c.abort_at = 30; c.abort_rc = -3;
    assert_int_equal(calypso_sift(db, sift_even, &c), -3);
    expect_sift_state(db, 0, 0, 0);

    /* sift_scan touches only the prefix. */
    memset(&c, 0, sizeof c);
    EU_OK(db, calypso_sift_scan(db, "b", 1, sift_even, &c));
    assert_int_equal(c.calls, 10);
    expect_sift_state(db, 0, 1, 0);

    /* sift_range: [c0, c9] only; a bad range is refused. */
    memset(&c, 0, sizeof c);
    EU_RC(db, CALYPSO_EINVALIDRANGE, calypso_sift_range(db, "c9", 2, "c0", 2, sift_even, &c));
    assert_int_equal(c.calls, 0);
    EU_OK(db, calypso_sift_range(db, "c0", 2, "c9", 2, sift_even, &c));
    assert_int_equal(c.calls, 10);
    expect_sift_state(db, 0, 1, 1);

    /* sift over everything: asks of the live keys only. */
    memset(&c, 0, sizeof c);
    EU_OK(db, calypso_sift(db, sift_even, &c));
    assert_int_equal(c.calls, 30 - 10);
    expect_sift_state(db, 1, 1, 1);

    eu_close(db);
    db = eu_open(dir, NULL);
    expect_sift_state(db, 1, 1, 1);
    eu_close(db);
    tu_rmrf(dir);
}

// >> TTL ---------------------------------------------------------------------

static int count_fn(const void *key, size_t klen, void *ctx)
{
    (void)key; (void)klen;
    (*(int *)ctx)++;
    return 0;
}

static int count_sift_fn(const void *key, size_t klen, void *ctx)
{
    (void)key; (void)klen;
    (*(int *)ctx)++;
    return 0;
}

/* 1 if every walk, sift, len and stats see exactly n keys (no asserts:
 * the caller decides, knowing how long it took). */
static int visible_count_is(calypso *db, int n)
{
    int c[6] = {0};
    int rc = calypso_fold(db, count_fn, &c[0]) |
             calypso_scan(db, "t", 1, count_fn, &c[1]) |
             calypso_range(db, "t", 1, "tz", 2, count_fn, &c[2]) |
             calypso_sift(db, count_sift_fn, &c[3]) |
             calypso_sift_scan(db, "t", 1, count_sift_fn, &c[4]) |
             calypso_sift_range(db, "t", 1, "tz", 2, count_sift_fn, &c[5]);
    struct calypso_stats st;
    rc |= calypso_stats(db, &st);
    int ok = rc == 0 && calypso_len(db) == (uint64_t)n && st.keys == (uint64_t)n;
    for (int i = 0; i < 6; i++) ok = ok && c[i] == n;
    if (!ok)
        print_error("want %d visible keys: rc %d, fold %d scan %d range %d sift %d/%d/%d, "
                    "len %llu, stats.keys %llu\n", n, rc, c[0], c[1], c[2], c[3], c[4], c[5],
                    (unsigned long long)calypso_len(db), (unsigned long long)st.keys);
    return ok;
}

static void expect_visible_count(calypso *db, int n)
{
    assert_true(visible_count_is(db, n));
}

/* 1 if key holds exactly the string v (no asserts). */
static int holds_str(calypso *db, const char *k, const char *v)
{
    void *got = NULL;
    size_t glen = 0;
    int rc = calypso_get(db, k, strlen(k), &got, &glen);
    int ok = rc == CALYPSO_OK && glen == strlen(v) && (!glen || !memcmp(got, v, glen));
    calypso_free(got);
    return ok;
}

static void test_ttl(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;   /* expired keys stay expired */
    calypso *db = NULL;
    /* TTLs of 150 ms. The checks before expiry must all be done 100 ms
     * after the first put; if the machine stalled this run for longer, its
     * answers prove nothing either way and it runs again (no sleep spent). */
    uint64_t t0 = 0, t_exp = 0;
    int attempt;
    for (attempt = 0; attempt < 5; attempt++) {
        if (attempt) {
            eu_close(db);
            tu_rmrf(dir);
            dir = tu_tmpdir();
        }
        db = eu_open(dir, &o);
        t0 = eu_now_ms();
        EU_OK(db, calypso_put_ttl(db, "t-exp1", 6, "a", 1, 150));
        EU_OK(db, calypso_put_ttl(db, "t-exp2", 6, "", 0, 150));
        t_exp = eu_now_ms();           /* the last of the keys that expire */
        EU_OK(db, calypso_put_ttl(db, "t-cleared", 9, "b", 1, 150));
        EU_OK(db, calypso_put(db, "t-cleared", 9, "B", 1));          /* clears TTL */
        EU_OK(db, calypso_put_ttl(db, "t-zero", 6, "c", 1, 150));
        EU_OK(db, calypso_put_ttl(db, "t-zero", 6, "C", 1, 0));       /* 0 = none */
        EU_OK(db, calypso_put_ttl(db, "t-long", 6, "d", 1, 3600000));
        eu_put_str(db, "t-plain", "e");
        EU_OK(db, calypso_put_ttl(db, "t-renew", 7, "f", 1, 150));
        EU_OK(db, calypso_put_ttl(db, "t-renew", 7, "F", 1, 3600000)); /* later expiry */

        /* Before expiry: all visible. */
        int ok = holds_str(db, "t-exp1", "a") && holds_str(db, "t-exp2", "") &&
                 calypso_has(db, "t-exp1", 6) == 1 && visible_count_is(db, 7);
        uint64_t took = eu_now_ms() - t0;
        if (took < 100) {
            assert_true(ok);
            break;
        }
        print_message("checks before expiry took %llu ms on a busy machine: again\n",
                      (unsigned long long)took);
    }
    assert_true(attempt < 5);

    /* Until well past the last expiry. */
    uint64_t now = eu_now_ms();
    if (now < t_exp + 190) eu_sleep_ms((unsigned)(t_exp + 190 - now));

    /* After: expired keys are invisible everywhere. */
    eu_expect_rc(db, "t-exp1", 6, CALYPSO_EEXPIRED);
    eu_expect_rc(db, "t-exp2", 6, CALYPSO_EEXPIRED);
    uint64_t at = 0;
    EU_RC(db, CALYPSO_EEXPIRED, calypso_ttl(db, "t-exp1", 6, &at));
    EU_OK(db, calypso_ttl(db, "t-cleared", 9, &at));
    assert_int_equal(at, 0);
    char buf[8];
    size_t vlen = 9;
    EU_RC(db, CALYPSO_EEXPIRED, calypso_get_buf(db, "t-exp1", 6, buf, sizeof buf, &vlen));
    assert_int_equal(calypso_has(db, "t-exp1", 6), 0);
    assert_int_equal(calypso_has(db, "t-exp2", 6), 0);
    eu_expect_str(db, "t-cleared", "B");
    eu_expect_str(db, "t-zero", "C");
    eu_expect_str(db, "t-long", "d");
    eu_expect_str(db, "t-plain", "e");
    eu_expect_str(db, "t-renew", "F");
    expect_visible_count(db, 5);
    eu_keys ks = {0};
    EU_OK(db, calypso_fold(db, eu_collect, &ks));
    const char *want[] = { "t-cleared", "t-long", "t-plain", "t-renew", "t-zero" };
    eu_keys_expect(&ks, want, 5);
    eu_keys_free(&ks);

    /* An expired key can be put again. */
    eu_put_str(db, "t-exp1", "again");
    eu_expect_str(db, "t-exp1", "again");
    expect_visible_count(db, 6);

    /* Across a reopen expired stays invisible, the rest stays. */
    eu_close(db);
    db = eu_open(dir, NULL);
    void *v = NULL;
    int rc = calypso_get(db, "t-exp2", 6, &v, &vlen);
    assert_true(rc == CALYPSO_EEXPIRED || rc == CALYPSO_ENOTFOUND);
    assert_null(v);
    assert_int_equal(calypso_has(db, "t-exp2", 6), 0);
    eu_expect_str(db, "t-exp1", "again");
    eu_expect_str(db, "t-cleared", "B");
    eu_expect_str(db, "t-zero", "C");
    eu_expect_str(db, "t-long", "d");
    eu_expect_str(db, "t-renew", "F");
    expect_visible_count(db, 6);

    /* run_gc deletes the expired ones for good; the live stay. */
    EU_OK(db, calypso_run_gc(db));
    eu_expect_rc(db, "t-exp2", 6, CALYPSO_ENOTFOUND);
    expect_visible_count(db, 6);
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_rc(db, "t-exp2", 6, CALYPSO_ENOTFOUND);
    expect_visible_count(db, 6);
    eu_close(db);
    tu_rmrf(dir);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void test_ttl_query(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = small_opts();
    calypso *db = eu_open(dir, &o);
    uint64_t t0 = wall_ms();
    EU_OK(db, calypso_put_ttl(db, "hour", 4, "h", 1, 3600000));
    uint64_t t1 = wall_ms();
    eu_put_str(db, "plain", "p");
    EU_OK(db, calypso_put_ttl(db, "zero", 4, "z", 1, 0));
    uint64_t at = 1;
    EU_OK(db, calypso_ttl(db, "hour", 4, &at));
    assert_in_range(at, t0 + 3600000, t1 + 3600000);
    at = 1;
    EU_OK(db, calypso_ttl(db, "plain", 5, &at));
    assert_int_equal(at, 0);
    at = 1;
    EU_OK(db, calypso_ttl(db, "zero", 4, &at));
    assert_int_equal(at, 0);
    EU_RC(db, CALYPSO_ENOTFOUND, calypso_ttl(db, "none", 4, &at));
    EU_RC(db, CALYPSO_EEMPTYKEY, calypso_ttl(db, "", 0, &at));
    char big[101];
    memset(big, 'b', sizeof big);
    EU_RC(db, CALYPSO_EKEYTOOLARGE, calypso_ttl(db, big, 101, &at));
    EU_RC(db, CALYPSO_EINVAL, calypso_ttl(db, "hour", 4, NULL));
    EU_RC(db, CALYPSO_EINVAL, calypso_ttl(db, NULL, 4, &at));
    /* Overwriting clears it; a delete removes the key. */
    eu_put_str(db, "hour", "h2");
    EU_OK(db, calypso_ttl(db, "hour", 4, &at));
    assert_int_equal(at, 0);
    EU_OK(db, calypso_put_ttl(db, "hour", 4, "h3", 2, 7200000));
    EU_OK(db, calypso_delete(db, "plain", 5));
    EU_RC(db, CALYPSO_ENOTFOUND, calypso_ttl(db, "plain", 5, &at));
    /* The expiry is absolute: the same after a reopen. */
    uint64_t before;
    EU_OK(db, calypso_ttl(db, "hour", 4, &before));
    assert_true(before >= t0 + 7200000);
    EU_OK(db, calypso_reopen(db));
    EU_OK(db, calypso_ttl(db, "hour", 4, &at));
    assert_int_equal(at, before);
    eu_close(db);
    tu_rmrf(dir);
}

/* A TTL so long that now + ttl overflows is "never" in practice, not a
 * wrap into the past. */
static void test_ttl_huge(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    EU_OK(db, calypso_put_ttl(db, "forever", 7, "f", 1, UINT64_MAX));
    EU_OK(db, calypso_put_ttl(db, "long", 4, "l", 1, UINT64_MAX / 2));
    uint64_t at = 0;
    EU_OK(db, calypso_ttl(db, "forever", 7, &at));
    assert_true(at > wall_ms() + 100ull * 365 * 86400 * 1000);
    eu_expect_str(db, "forever", "f");
    eu_expect_str(db, "long", "l");
    assert_int_equal(calypso_len(db), 2);
    EU_OK(db, calypso_run_gc(db));
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_str(db, "forever", "f");
    eu_expect_str(db, "long", "l");
    assert_int_equal(calypso_len(db), 2);
    EU_OK(db, calypso_merge(db));
    EU_OK(db, calypso_run_gc(db));
    eu_expect_str(db, "forever", "f");
    eu_close(db);
    tu_rmrf(dir);
}

// >> stats, merge, sync, reopen ----------------------------------------------

static void test_stats_and_reclaimable(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    struct calypso_stats st = stats_of(db);
    assert_int_equal(st.keys, 0);
    assert_int_equal(st.reclaimable, 0);
    assert_int_equal(st.merges, 0);
    assert_true(st.datafiles <= 1);
    assert_int_equal(calypso_reclaimable(db), 0);

    char key[17], val[100];
    memset(val, 'x', sizeof val);
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "key-%012d", i);
        EU_OK(db, calypso_put(db, key, 16, val, 100));
    }
    st = stats_of(db);
    assert_int_equal(st.keys, 10);
    assert_int_equal(st.datafiles, 1);
    assert_true(st.keydir_bytes > 0);
    assert_true(st.keydir_bytes >= 10 * 16);   /* it holds the keys */
    assert_int_equal(st.reclaimable, 0);
    /* Where the records sit once close has cut the active file back to its
     * data: back to back from offset 0, each the key, the value and a small
     * header. The size counts at least those bytes (and space allocated
     * ahead while open). */
    eu_close(db);
    /* Close also writes a hint for the active file: count the data alone. */
    uint64_t data_bytes = (uint64_t)eu_fid_size(dir, eu_newest_fid(dir), "data");
    assert_true(st.size >= data_bytes);
    char path[1024];
    eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "data");
    size_t flen;
    char *fdata = eu_read_file(path, &flen);
    assert_int_equal(flen, data_bytes);
    int64_t koff[10];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "key-%012d", i);
        char *at = memmem(fdata, flen, key, 16);
        assert_non_null(at);
        koff[i] = at - fdata;
    }
    free(fdata);
    uint64_t rec_size = (uint64_t)(koff[1] - koff[0]);
    assert_true(rec_size > 116 && rec_size <= 116 + 32);
    for (int i = 1; i < 10; i++) assert_int_equal(koff[i] - koff[i - 1], rec_size);
    assert_int_equal((uint64_t)koff[0], rec_size - 116);     /* the first at 0 */
    assert_int_equal(flen, 10 * rec_size);                   /* the last at the end */
    db = eu_open(dir, NULL);
    assert_true(stats_of(db).size >= data_bytes);

    /* Overwriting makes the old record dead. */
    snprintf(key, sizeof key, "key-%012d", 3);
    EU_OK(db, calypso_put(db, key, 16, "short", 5));
    st = stats_of(db);
    assert_true(st.reclaimable >= rec_size);
    assert_true(st.reclaimable <= st.size);
    assert_int_equal(calypso_reclaimable(db), (int64_t)st.reclaimable);
    uint64_t r1 = st.reclaimable;

    /* Deleting makes the record dead (and the tombstone is no live data). */
    snprintf(key, sizeof key, "key-%012d", 4);
    EU_OK(db, calypso_delete(db, key, 16));
    st = stats_of(db);
    assert_true(st.reclaimable >= r1 + rec_size);
    assert_int_equal(st.keys, 9);
    assert_int_equal(calypso_reclaimable(db), (int64_t)st.reclaimable);

    /* Reclaimable is rebuilt on open. */
    uint64_t r2 = st.reclaimable;
    eu_close(db);
    db = eu_open(dir, NULL);
    st = stats_of(db);
    assert_int_equal(st.keys, 9);
    assert_true(st.reclaimable <= st.size);
    assert_true(st.reclaimable >= 2 * rec_size);
    assert_true(st.reclaimable <= r2 + rec_size);
    eu_close(db);
    tu_rmrf(dir);
}

static int count_key(const void *key, size_t klen, void *ctx)
{
    (void)key; (void)klen;
    (*(uint64_t *)ctx)++;
    return 0;
}

/* The stats' running totals against a census: the datafiles and hint
 * files in the directory, and the keys a fold counts. The background
 * thread writes hints after rotations; a census that meets one half done
 * is taken again, but totals that stay wrong fail. */
static struct calypso_stats expect_census(calypso *db, const char *dir)
{
    struct calypso_stats st;
    unsigned fids[4096];
    uint64_t files = 0, bytes = 0;
    for (int attempt = 0; attempt < 300; attempt++) {
        st = stats_of(db);
        int n = eu_list_fids(dir, "data", fids, 4096);
        assert_true(n >= 0 && n < 4096);
        files = (uint64_t)n;
        bytes = disk_bytes(dir);
        if (st.datafiles == files && st.size == bytes) break;
        usleep(10000);
    }
    assert_int_equal(st.datafiles, files);
    assert_int_equal(st.size, bytes);
    uint64_t keys = 0;
    EU_OK(db, calypso_fold(db, count_key, &keys));
    assert_int_equal(st.keys, keys);
    assert_int_equal(calypso_len(db), keys);
    assert_int_equal(calypso_reclaimable(db), (int64_t)st.reclaimable);
    assert_true(st.live_bytes + st.reclaimable <= st.size);
    return st;
}

/* stats keeps its figures as running totals (it never walks the file
 * table): they must match a census after puts across many datafiles,
 * overwrites, deletes, a merge, and a reopen. */
static void test_stats_totals_census(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 8192;
    o.merge_trigger_ratio = -1;    /* merges only when asked */
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    calypso *db = eu_open(dir, &o);
    struct calypso_stats st = expect_census(db, dir);
    assert_int_equal(st.keys, 0);

    char key[32];
    uint8_t val[400];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "c%05d", i);
        size_t vlen = 50 + (size_t)(i * 7 % 300);
        eu_make_value(val, vlen, key, strlen(key), 0);
        EU_OK(db, calypso_put(db, key, strlen(key), val, vlen));
    }
    st = expect_census(db, dir);
    assert_int_equal(st.keys, 300);
    assert_true(st.datafiles > 5);
    assert_int_equal(st.reclaimable, 0);

    for (int i = 0; i < 300; i += 2) {          /* overwrites */
        snprintf(key, sizeof key, "c%05d", i);
        eu_make_value(val, 120, key, strlen(key), 1);
        EU_OK(db, calypso_put(db, key, strlen(key), val, 120));
    }
    st = expect_census(db, dir);
    assert_int_equal(st.keys, 300);
    assert_true(st.reclaimable > 150 * 50);
    for (int i = 0; i < 300; i += 5) {          /* deletes */
        snprintf(key, sizeof key, "c%05d", i);
        EU_OK(db, calypso_delete(db, key, strlen(key)));
    }
    EU_OK(db, calypso_sync(db));
    st = expect_census(db, dir);
    assert_int_equal(st.keys, 240);
    uint64_t dead = st.reclaimable, size = st.size;

    EU_OK(db, calypso_merge(db));
    st = expect_census(db, dir);
    assert_int_equal(st.merges, 1);
    assert_int_equal(st.keys, 240);
    assert_true(st.reclaimable < dead);
    assert_true(st.size < size);

    for (int i = 1; i < 300; i += 10) {         /* more after the merge */
        snprintf(key, sizeof key, "c%05d", i);
        EU_OK(db, calypso_put(db, key, strlen(key), "after", 5));
    }
    st = expect_census(db, dir);
    struct calypso_stats before = st;
    eu_close(db);

    db = eu_open(dir, &o);
    st = expect_census(db, dir);
    assert_int_equal(st.keys, before.keys);
    assert_int_equal(st.live_bytes, before.live_bytes);
    assert_int_equal(st.merges, 0);
    /* Freshly opened, nothing is allocated ahead of the data: every byte of
     * the datafiles is a record, live or dead, but the seal record at the
     * head of each file a rotation started (type 7, a value of vlen < 16
     * bytes: 7 + vlen in all; doc/format.md), which is neither. */
    unsigned fids[4096];
    int n = eu_list_fids(dir, "data", fids, 4096);
    uint64_t data = 0, seals = 0;
    for (int i = 0; i < n; i++) {
        data += (uint64_t)eu_fid_size(dir, fids[i], "data");
        char path[1024];
        eu_fid_path(path, sizeof path, dir, fids[i], "data");
        size_t len = 0;
        char *head = eu_read_file(path, &len);
        if (len >= 7 && head[4] == 7) seals += 7 + (uint64_t)(uint8_t)head[6];
        free(head);
    }
    assert_true(seals > 0);
    assert_int_equal(st.live_bytes + st.reclaimable + seals, data);
    eu_close(db);
    tu_rmrf(dir);
}

static void test_many_datafiles_and_merge(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = -1;    /* merges only when asked */
    calypso *db = eu_open(dir, &o);
    char key[32];
    uint8_t val[200];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 100; i++) {
            snprintf(key, sizeof key, "m%04d", i);
            eu_make_value(val, 100 + (size_t)(i % 50), key, strlen(key), (uint64_t)round);
            EU_OK(db, calypso_put(db, key, strlen(key), val, 100 + (size_t)(i % 50)));
        }
    for (int i = 0; i < 100; i += 3) {
        snprintf(key, sizeof key, "m%04d", i);
        EU_OK(db, calypso_delete(db, key, strlen(key)));
    }
    struct calypso_stats st = stats_of(db);
    assert_true(st.datafiles > 10);
    assert_int_equal(st.keys, 66);
    assert_int_equal(st.merges, 0);
    int64_t dead = calypso_reclaimable(db);
    assert_true(dead > 200 * 100);
    uint64_t size = st.size;
    unsigned fids[4096];
    assert_int_equal(eu_list_fids(dir, "data", fids, 4096), st.datafiles);

    EU_OK(db, calypso_merge(db));
    st = stats_of(db);
    assert_int_equal(st.merges, 1);
    assert_int_equal(st.keys, 66);
    assert_true(st.size < size);
    assert_true(calypso_reclaimable(db) < dead);
    assert_true(st.datafiles >= 1);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 100; i++) {
            snprintf(key, sizeof key, "m%04d", i);
            if (i % 3 == 0) { eu_expect_absent_str(db, key); continue; }
            eu_make_value(val, 100 + (size_t)(i % 50), key, strlen(key), 2);
            eu_expect(db, key, strlen(key), val, 100 + (size_t)(i % 50));
        }
        assert_int_equal(calypso_len(db), 66);
        if (pass == 0) {
            eu_close(db);
            db = eu_open(dir, &o);
        }
    }
    /* Merging again with nothing dead is fine. */
    EU_OK(db, calypso_merge(db));
    eu_close(db);
    tu_rmrf(dir);
}

static void test_sync_and_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = small_opts();
    calypso *db = eu_open(dir, &o);
    eu_put_str(db, "a", "1");
    EU_OK(db, calypso_sync(db));
    eu_put_str(db, "b", "2");
    EU_OK(db, calypso_reopen(db));
    eu_expect_str(db, "a", "1");
    eu_expect_str(db, "b", "2");
    assert_int_equal(calypso_len(db), 2);
    eu_put_str(db, "c", "3");
    EU_OK(db, calypso_delete(db, "a", 1));
    EU_OK(db, calypso_reopen(db));
    EU_OK(db, calypso_reopen(db));
    eu_expect_absent_str(db, "a");
    eu_expect_str(db, "c", "3");
    EU_OK(db, calypso_sync(db));
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_absent_str(db, "a");
    eu_expect_str(db, "b", "2");
    eu_expect_str(db, "c", "3");
    eu_close(db);

    for (int mode = CALYPSO_SYNC_NONE; mode <= CALYPSO_SYNC_ALWAYS; mode++) {
        memset(&o, 0, sizeof o);
        o.sync = mode;
        o.sync_interval_ms = 20;
        db = eu_open(dir, &o);
        char k[24];
        snprintf(k, sizeof k, "mode%d", mode);
        eu_put_str(db, k, "m");
        EU_OK(db, calypso_sync(db));
        eu_close(db);
    }
    db = eu_open(dir, NULL);
    eu_expect_str(db, "mode0", "m");
    eu_expect_str(db, "mode1", "m");
    eu_expect_str(db, "mode2", "m");
    eu_close(db);
    tu_rmrf(dir);
}

// >> read-only ----------------------------------------------------------------

static int sift_all(const void *key, size_t klen, void *ctx)
{
    (void)key; (void)klen; (void)ctx;
    return 1;
}

static void test_read_only(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    calypso *db = eu_open(dir, &o);
    char k[16];
    char v[100];
    memset(v, 'r', sizeof v);
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "ro%03d", i);
        EU_OK(db, calypso_put(db, k, strlen(k), v, sizeof v));
    }
    eu_close(db);
    uint64_t bytes = disk_bytes(dir);
    int entries = eu_dir_entries(dir);

    o.read_only = 1;
    db = eu_open(dir, &o);
    eu_expect(db, "ro042", 5, v, sizeof v);
    assert_int_equal(calypso_len(db), 100);
    EU_RC(db, CALYPSO_EREADONLY, calypso_put(db, "x", 1, "y", 1));
    EU_RC(db, CALYPSO_EREADONLY, calypso_put(db, "ro001", 5, "y", 1));
    EU_RC(db, CALYPSO_EREADONLY, calypso_put_ttl(db, "x", 1, "y", 1, 1000));
    EU_RC(db, CALYPSO_EREADONLY, calypso_delete(db, "ro001", 5));
    EU_RC(db, CALYPSO_EREADONLY, calypso_delete_all(db));
    EU_RC(db, CALYPSO_EREADONLY, calypso_sift(db, sift_all, NULL));
    EU_RC(db, CALYPSO_EREADONLY, calypso_sift_scan(db, "ro", 2, sift_all, NULL));
    EU_RC(db, CALYPSO_EREADONLY, calypso_sift_range(db, "a", 1, "z", 1, sift_all, NULL));
    EU_RC(db, CALYPSO_EREADONLY, calypso_merge(db));
    assert_true(strlen(calypso_errmsg(db)) > 0);
    eu_expect(db, "ro001", 5, v, sizeof v);
    eu_expect_absent_str(db, "x");
    assert_int_equal(calypso_len(db), 100);
    int c = 0;
    EU_OK(db, calypso_fold(db, count_fn, &c));
    assert_int_equal(c, 100);
    struct calypso_stats st = stats_of(db);
    assert_int_equal(st.keys, 100);
    EU_OK(db, calypso_reopen(db));
    eu_expect(db, "ro099", 5, v, sizeof v);
    EU_RC(db, CALYPSO_EREADONLY, calypso_put(db, "x", 1, "y", 1));
    eu_close(db);
    /* Nothing on disk changed. */
    assert_int_equal(disk_bytes(dir), bytes);
    assert_int_equal(eu_dir_entries(dir), entries);

    /* A read-only open never creates the directory. */
    char missing[1024];
    eu_path(missing, sizeof missing, dir, "missing");
    db = (calypso *)&db;
    int rc = calypso_open(missing, &o, &db);
    assert_true(rc < 0);
    assert_null(db);
    assert_true(strlen(calypso_errmsg(NULL)) > 0);
    assert_false(eu_exists(missing));
    tu_rmrf(dir);
}

// >> backup -------------------------------------------------------------------

struct bk_writer {
    calypso *db;
    int      stop;      /* atomic */
    int      written;
    int      errors;
};

static void *bk_writer_main(void *arg)
{
    struct bk_writer *w = arg;
    char k[32];
    uint8_t v[300];
    int i = 0;
    while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE) || i < 200) {
        snprintf(k, sizeof k, "live-%06d", i);
        size_t len = 16 + (size_t)(i % 250);
        eu_make_value(v, len, k, strlen(k), (uint64_t)i);
        if (calypso_put(w->db, k, strlen(k), v, len) != CALYPSO_OK) w->errors++;
        /* Rewrite an old pre key too, changing its version. */
        i++;
    }
    w->written = i;
    return NULL;
}

static void test_backup(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    char *bdir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 16384;
    calypso *db = eu_open(dir, &o);
    char k[32];
    uint8_t v[300];
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "pre-%05d", i);
        size_t len = 16 + (size_t)(i % 200);
        eu_make_value(v, len, k, strlen(k), 1);
        EU_OK(db, calypso_put(db, k, strlen(k), v, len));
    }
    for (int i = 0; i < 2000; i += 7) {
        snprintf(k, sizeof k, "pre-%05d", i);
        EU_OK(db, calypso_delete(db, k, strlen(k)));
    }
    EU_OK(db, calypso_put_ttl(db, "pre-ttl", 7, "t", 1, 3600000));

    struct bk_writer w = { db, 0, 0, 0 };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, bk_writer_main, &w), 0);
    eu_sleep_ms(5);
    char target[1024];
    eu_path(target, sizeof target, bdir, "copy");
    EU_OK(db, calypso_backup(db, target));
    __atomic_store_n(&w.stop, 1, __ATOMIC_RELEASE);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.errors, 0);

    /* The source is intact and writable. */
    eu_put_str(db, "post", "p");
    assert_int_equal(calypso_len(db), 2000 - 286 + 1 + (uint64_t)w.written + 1);

    /* Backing up into a non-empty directory fails and changes nothing. */
    char junk[1100];
    eu_path(junk, sizeof junk, bdir, "junkdir");
    assert_int_equal(mkdir(junk, 0755), 0);
    char jf[1200];
    eu_path(jf, sizeof jf, junk, "precious");
    eu_write_file(jf, "keep", 4);
    int rc = calypso_backup(db, junk);
    assert_true(rc < 0);
    assert_int_equal(eu_dir_entries(junk), 1);
    assert_int_equal(eu_file_size(jf), 4);
    /* ...and into the existing backup (a database) as well. */
    assert_true(calypso_backup(db, target) < 0);

    /* Into an existing empty directory works. */
    char empty[1100];
    eu_path(empty, sizeof empty, bdir, "empty");
    assert_int_equal(mkdir(empty, 0755), 0);
    EU_OK(db, calypso_backup(db, empty));
    eu_close(db);

    /* The backup opens and holds at least everything before it began. */
    calypso *b = eu_open(target, &o);
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "pre-%05d", i);
        if (i % 7 == 0) { eu_expect_absent_str(b, k); continue; }
        size_t len = 16 + (size_t)(i % 200);
        eu_make_value(v, len, k, strlen(k), 1);
        eu_expect(b, k, strlen(k), v, len);
    }
    eu_expect_str(b, "pre-ttl", "t");
    eu_expect_absent_str(b, "post");
    /* Whatever of the live keys it holds is whole: a prefix of them, since
     * one writer wrote them in order. */
    eu_keys ks = {0};
    EU_OK(b, calypso_scan(b, "live-", 5, eu_collect, &ks));
    assert_true(ks.n <= (size_t)w.written);
    for (size_t i = 0; i < ks.n; i++) {
        snprintf(k, sizeof k, "live-%06zu", i);
        assert_int_equal(ks.v[i].len, strlen(k));
        assert_memory_equal(ks.v[i].k, k, strlen(k));
        void *got = NULL;
        size_t glen = 0;
        EU_OK(b, calypso_get(b, k, strlen(k), &got, &glen));
        uint64_t ver = 0;
        assert_true(eu_check_value(got, glen, k, strlen(k), &ver));
        assert_int_equal(ver, i);
        calypso_free(got);
    }
    print_message("backup held %zu of %d keys written during it\n", ks.n, w.written);
    size_t held = ks.n;
    eu_keys_free(&ks);
    assert_int_equal(calypso_len(b), 2000 - 286 + 1 + held);
    /* The backup is a live database of its own. */
    eu_put_str(b, "in-backup", "1");
    eu_close(b);
    b = eu_open(target, &o);
    eu_expect_str(b, "in-backup", "1");
    eu_close(b);

    b = eu_open(empty, NULL);
    eu_expect_str(b, "post", "p");
    eu_expect_str(b, "pre-ttl", "t");
    assert_int_equal(calypso_len(b), 2000 - 286 + 1 + (uint64_t)w.written + 1);
    eu_close(b);
    /* The source still opens with everything. */
    db = eu_open(dir, &o);
    eu_expect_str(db, "post", "p");
    eu_expect_absent_str(db, "in-backup");
    eu_close(db);
    tu_rmrf(bdir);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version_and_strerror),
        cmocka_unit_test(test_options_default),
        cmocka_unit_test(test_open_invalid_args),
        cmocka_unit_test(test_errmsg),
        cmocka_unit_test(test_put_get_basic),
        cmocka_unit_test(test_limits_configured),
        cmocka_unit_test(test_limits_default),
        cmocka_unit_test(test_hard_key_limit),
        cmocka_unit_test(test_null_arguments),
        cmocka_unit_test(test_empty_value),
        cmocka_unit_test(test_binary_and_prefix_keys),
        cmocka_unit_test(test_walk_order_and_bounds),
        cmocka_unit_test(test_walk_stops_on_nonzero),
        cmocka_unit_test(test_callbacks_reenter),
        cmocka_unit_test(test_delete_absent_writes_nothing),
        cmocka_unit_test(test_delete_all),
        cmocka_unit_test(test_sift),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_ttl_query),
        cmocka_unit_test(test_ttl_huge),
        cmocka_unit_test(test_stats_and_reclaimable),
        cmocka_unit_test(test_stats_totals_census),
        cmocka_unit_test(test_many_datafiles_and_merge),
        cmocka_unit_test(test_sync_and_reopen),
        cmocka_unit_test(test_read_only),
        cmocka_unit_test(test_backup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
