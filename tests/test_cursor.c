/*
 * test_cursor.c: calypso_cursor_* against a sorted reference: first, last,
 * seek, seek_le, next and prev across window refills, keys and values,
 * expired keys skipped, writes and merges between moves, bad arguments,
 * values read ahead (big and empty ones, a damaged record mid-run), and
 * seek_prefix bounds.
 */
#include "testutil.h"
#include "engine.h"

#include <fcntl.h>
#include <unistd.h>

#define NKEYS 1000

typedef struct ref {
    char   key[NKEYS][24];
    size_t klen[NKEYS];
    int    n;
} ref;

static int ref_cmp(const void *a, const void *b)
{
    const char *x = a, *y = b;
    return strcmp(x, y);
}

/* Keys "k" + decimal of a sparse spread, so that seeks can land between. */
static void make_ref(ref *r, calypso *db, uint64_t *seed)
{
    r->n = 0;
    for (int i = 0; i < NKEYS; i++) {
        snprintf(r->key[r->n], sizeof r->key[0], "k%06llu",
                 (unsigned long long)(tu_below(seed, 900000) + 100000));
        int dup = 0;
        for (int j = 0; j < r->n && !dup; j++) dup = strcmp(r->key[j], r->key[r->n]) == 0;
        if (!dup) r->n++;
    }
    qsort(r->key, (size_t)r->n, sizeof r->key[0], ref_cmp);
    for (int i = 0; i < r->n; i++) {
        r->klen[i] = strlen(r->key[i]);
        char val[64];
        int vl = snprintf(val, sizeof val, "value-of-%s", r->key[i]);
        assert_int_equal(calypso_put(db, r->key[i], r->klen[i], val, (size_t)vl), 0);
    }
}

static void expect_at(calypso_cursor *c, const ref *r, int i)
{
    const void *k, *v;
    size_t kl, vl;
    assert_int_equal(calypso_cursor_key(c, &k, &kl), 0);
    assert_int_equal(kl, r->klen[i]);
    assert_memory_equal(k, r->key[i], kl);
    assert_int_equal(calypso_cursor_value(c, &v, &vl), 0);
    char want[64];
    int wl = snprintf(want, sizeof want, "value-of-%s", r->key[i]);
    assert_int_equal(vl, (size_t)wl);
    assert_memory_equal(v, want, vl);
}

static calypso *open_db(char *dir)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 16 << 10;      /* many files: values come from several */
    o.merge_trigger_ratio = -1;
    calypso *db;
    assert_int_equal(calypso_open(dir, &o, &db), 0);
    return db;
}

static void test_walk_both_ways(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("cursor walk");
    char *dir = tu_tmpdir();
    calypso *db = open_db(dir);
    static ref r;
    make_ref(&r, db, &seed);
    calypso_cursor *c;
    assert_int_equal(calypso_cursor_open(db, &c), 0);
    const void *k;
    size_t kl;
    assert_int_equal(calypso_cursor_key(c, &k, &kl), CALYPSO_ENOTFOUND);   /* unpositioned */
    assert_int_equal(calypso_cursor_first(c), 0);
    for (int i = 0; i < r.n; i++) {
        expect_at(c, &r, i);
        int rc = calypso_cursor_next(c);
        assert_int_equal(rc, i + 1 < r.n ? 0 : CALYPSO_ENOTFOUND);
    }
    assert_int_equal(calypso_cursor_next(c), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_cursor_last(c), 0);
    for (int i = r.n - 1; i >= 0; i--) {
        expect_at(c, &r, i);
        int rc = calypso_cursor_prev(c);
        assert_int_equal(rc, i > 0 ? 0 : CALYPSO_ENOTFOUND);
    }
    /* Zig-zag across window edges. */
    assert_int_equal(calypso_cursor_seek(c, r.key[300], r.klen[300]), 0);
    int at = 300;
    for (int step = 0; step < 2000; step++) {
        int fwd = tu_below(&seed, 2);
        if (fwd && at + 1 < r.n) { assert_int_equal(calypso_cursor_next(c), 0); at++; }
        else if (!fwd && at > 0) { assert_int_equal(calypso_cursor_prev(c), 0); at--; }
        expect_at(c, &r, at);
    }
    calypso_cursor_close(c);
    calypso_close(db);
    tu_rmrf(dir);
}

static void test_seek_modes(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("cursor seek");
    char *dir = tu_tmpdir();
    calypso *db = open_db(dir);
    static ref r;
    make_ref(&r, db, &seed);
    calypso_cursor *c;
    assert_int_equal(calypso_cursor_open(db, &c), 0);
    for (int t = 0; t < 3000; t++) {
        char probe[24];
        snprintf(probe, sizeof probe, "k%06llu", (unsigned long long)tu_below(&seed, 1100000));
        if (t % 7 == 0) snprintf(probe, sizeof probe, "%s", r.key[tu_below(&seed, (uint64_t)r.n)]);
        size_t pl = strlen(probe);
        int ge = 0;
        while (ge < r.n && strcmp(r.key[ge], probe) < 0) ge++;
        int rc = calypso_cursor_seek(c, probe, pl);
        if (ge == r.n) assert_int_equal(rc, CALYPSO_ENOTFOUND);
        else { assert_int_equal(rc, 0); expect_at(c, &r, ge); }
        int le = ge < r.n && strcmp(r.key[ge], probe) == 0 ? ge : ge - 1;
        rc = calypso_cursor_seek_le(c, probe, pl);
        if (le < 0) assert_int_equal(rc, CALYPSO_ENOTFOUND);
        else { assert_int_equal(rc, 0); expect_at(c, &r, le); }
    }
    assert_int_equal(calypso_cursor_seek(c, "", 0), 0);               /* empty: the first */
    expect_at(c, &r, 0);
    assert_int_equal(calypso_cursor_seek(c, NULL, 3), CALYPSO_EINVAL);
    calypso_cursor_close(c);
    calypso_close(db);
    tu_rmrf(dir);
}

static void test_changes_between_moves(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("cursor changes");
    char *dir = tu_tmpdir();
    calypso *db = open_db(dir);
    static ref r;
    make_ref(&r, db, &seed);
    /* Keys that live through the walk are seen once, in order, even while
     * other keys come and go and merges move every record. */
    calypso_cursor *c;
    assert_int_equal(calypso_cursor_open(db, &c), 0);
    int rc = calypso_cursor_first(c), seen = 0;
    char last[32] = "";
    while (rc == 0) {
        const void *k;
        size_t kl;
        assert_int_equal(calypso_cursor_key(c, &k, &kl), 0);
        char key[32];
        memcpy(key, k, kl);
        key[kl] = 0;
        assert_true(strcmp(key, last) > 0);
        snprintf(last, sizeof last, "%s", key);
        if (key[0] == 'k') {
            int i = 0;
            while (i < r.n && strcmp(r.key[i], key) != 0) i++;
            assert_true(i < r.n);
            assert_int_equal(i, seen);
            expect_at(c, &r, i);
            seen++;
        }
        if (seen % 97 == 0) assert_int_equal(calypso_merge(db), 0);
        char other[32];
        int ol = snprintf(other, sizeof other, "j%06llu", (unsigned long long)tu_below(&seed, 999));
        if (tu_below(&seed, 2)) assert_int_equal(calypso_put(db, other, (size_t)ol, "x", 1), 0);
        else assert_int_equal(calypso_delete(db, other, (size_t)ol), 0);
        rc = calypso_cursor_next(c);
    }
    assert_int_equal(rc, CALYPSO_ENOTFOUND);
    assert_int_equal(seen, r.n);
    calypso_cursor_close(c);
    calypso_close(db);
    tu_rmrf(dir);
}

static void test_expired_skipped_and_empty(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = open_db(dir);
    calypso_cursor *c;
    assert_int_equal(calypso_cursor_open(db, &c), 0);
    assert_int_equal(calypso_cursor_first(c), CALYPSO_ENOTFOUND);         /* empty db */
    assert_int_equal(calypso_cursor_last(c), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_put(db, "a", 1, "1", 1), 0);
    assert_int_equal(calypso_put_ttl(db, "b", 1, "2", 1, 1000), 0);
    assert_int_equal(calypso_put(db, "c", 1, "", 0), 0);                 /* empty value */
    cy_clock_shift(2000);
    const void *k, *v;
    size_t kl, vl;
    assert_int_equal(calypso_cursor_first(c), 0);
    assert_int_equal(calypso_cursor_key(c, &k, &kl), 0);
    assert_memory_equal(k, "a", 1);
    assert_int_equal(calypso_cursor_next(c), 0);                          /* b expired */
    assert_int_equal(calypso_cursor_key(c, &k, &kl), 0);
    assert_memory_equal(k, "c", 1);
    assert_int_equal(calypso_cursor_value(c, &v, &vl), 0);
    assert_int_equal(vl, 0);
    assert_non_null(v);
    assert_int_equal(calypso_cursor_prev(c), 0);
    assert_int_equal(calypso_cursor_key(c, &k, &kl), 0);
    assert_memory_equal(k, "a", 1);
    cy_clock_shift(-2000);
    calypso_cursor *none = (calypso_cursor *)&none;
    assert_int_equal(calypso_cursor_open(NULL, &none), CALYPSO_EINVAL);
    assert_null(none);
    assert_int_equal(calypso_cursor_open(db, NULL), CALYPSO_EINVAL);
    assert_int_equal(calypso_cursor_next(NULL), CALYPSO_EINVAL);
    calypso_cursor_close(NULL);
    calypso_cursor_close(c);
    calypso_close(db);
    tu_rmrf(dir);
}

/* Values read ahead: every value right, through runs that outgrow the
 * byte budget (values of 300 KiB), empty values, and a damaged record in
 * the middle of a run, which fails with CALYPSO_ECHECKSUM when (and only
 * when) its own value is asked for. Then every third value only. */
static void test_read_ahead(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    o.merge_trigger_ratio = -1;
    calypso *db;
    assert_int_equal(calypso_open(dir, &o, &db), 0);
    enum { N = 300, BIG = 300 << 10 };
    uint8_t *big = malloc(BIG);
    assert_non_null(big);
    char key[16];
    for (int i = 0; i < N; i++) {
        int kl = snprintf(key, sizeof key, "r%03d", i);
        size_t vl = i % 50 == 7 ? BIG : i % 10 == 3 ? 0 : (size_t)(10 + i);
        for (size_t j = 0; j < vl; j++) big[j] = (uint8_t)(i * 31 + j);
        assert_int_equal(calypso_put(db, key, (size_t)kl, big, vl), 0);
    }
    /* Damage the last value byte of r150 behind the engine's back. */
    uint64_t exp;
    cy_rdlock(&db->kd_lock);
    const cy_loc *l = cy_keydir_get(db, db->ns, "r150", 4, &exp);
    assert_non_null(l);
    cy_loc bad = *l;
    cy_unlock(&db->kd_lock);
    char path[4096];
    cy_dir_data_path(db, bad.fid & CY_LOC_FIDMASK, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)(bad.off + bad.size - 1)), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)(bad.off + bad.size - 1)), 1);
    close(fd);

    calypso_cursor *c;
    assert_int_equal(calypso_cursor_open(db, &c), 0);
    for (int stride = 1; stride <= 3; stride += 2) {
        int i = 0, rc = calypso_cursor_first(c);
        for (; rc == 0; i++, rc = calypso_cursor_next(c)) {
            if (i % stride) continue;
            const void *v;
            size_t vl;
            int vrc = calypso_cursor_value(c, &v, &vl);
            if (i == 150) {
                assert_int_equal(vrc, CALYPSO_ECHECKSUM);
                continue;
            }
            assert_int_equal(vrc, 0);
            size_t want = i % 50 == 7 ? BIG : i % 10 == 3 ? 0 : (size_t)(10 + i);
            assert_int_equal(vl, want);
            for (size_t j = 0; j < vl; j++)
                if (((const uint8_t *)v)[j] != (uint8_t)(i * 31 + j)) fail_msg("r%03d byte %zu", i, j);
        }
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        assert_int_equal(i, N);
    }
    calypso_cursor_close(c);
    calypso_close(db);
    free(big);
    tu_rmrf(dir);
}

static void expect_key(calypso_cursor *c, const void *want, size_t wl)
{
    const void *k;
    size_t kl;
    assert_int_equal(calypso_cursor_key(c, &k, &kl), 0);
    assert_int_equal(kl, wl);
    assert_memory_equal(k, want, wl);
}

/* seek_prefix: the bound holds both ways and across window refills, for
 * binary prefixes (0x00 and 0xff bytes), keys equal to the prefix, and
 * prefixes that match nothing; a plain seek lifts it. */
static void test_seek_prefix(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = open_db(dir);
    static const uint8_t pre[3] = { 'p', 0x00, 0xff };
    uint8_t k[8];
    /* Around the prefix: "p\0" + 0xfe, the prefix itself, 300 keys under
     * it (more than a window), then "p\x01". */
    assert_int_equal(calypso_put(db, "p\0\xfe", 3, "before", 6), 0);
    assert_int_equal(calypso_put(db, pre, 3, "exact", 5), 0);
    for (int i = 0; i < 300; i++) {
        memcpy(k, pre, 3);
        k[3] = (uint8_t)(i >> 8);
        k[4] = (uint8_t)i;
        assert_int_equal(calypso_put(db, k, 5, "in", 2), 0);
    }
    assert_int_equal(calypso_put(db, "p\x01", 2, "after", 5), 0);
    calypso_cursor *c;
    assert_int_equal(calypso_cursor_open(db, &c), 0);
    int n = 0, rc;
    for (rc = calypso_cursor_seek_prefix(c, pre, 3); rc == 0; rc = calypso_cursor_next(c)) {
        const void *key, *v;
        size_t kl, vl;
        assert_int_equal(calypso_cursor_key(c, &key, &kl), 0);
        assert_true(kl >= 3 && memcmp(key, pre, 3) == 0);
        assert_int_equal(calypso_cursor_value(c, &v, &vl), 0);
        assert_memory_equal(v, n == 0 ? "exact" : "in", vl);
        n++;
    }
    assert_int_equal(rc, CALYPSO_ENOTFOUND);
    assert_int_equal(n, 301);
    assert_int_equal(calypso_cursor_next(c), CALYPSO_ENOTFOUND);       /* stays unpositioned */
    /* Backwards from the last key under the prefix stops at the prefix. */
    memcpy(k, pre, 3);
    k[3] = 1;
    k[4] = 43;                                                         /* key 299 */
    assert_int_equal(calypso_cursor_seek_prefix(c, k, 5), 0);
    expect_key(c, k, 5);
    assert_int_equal(calypso_cursor_next(c), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_cursor_seek_prefix(c, pre, 3), 0);
    for (int i = 0; i < 300; i++) assert_int_equal(calypso_cursor_next(c), 0);
    expect_key(c, k, 5);
    for (n = 0; (rc = calypso_cursor_prev(c)) == 0; n++) {}
    assert_int_equal(rc, CALYPSO_ENOTFOUND);
    assert_int_equal(n, 300);                                          /* back to the prefix */
    /* Nothing under "p\0\x80"; an empty prefix bounds nothing. */
    assert_int_equal(calypso_cursor_seek_prefix(c, "p\0\x80", 3), CALYPSO_ENOTFOUND);
    assert_int_equal(calypso_cursor_seek_prefix(c, "", 0), 0);
    expect_key(c, "p\0\xfe", 3);
    for (n = 1; calypso_cursor_next(c) == 0; n++) {}
    assert_int_equal(n, 303);
    /* A plain seek after a prefix seek walks on past the prefix. */
    assert_int_equal(calypso_cursor_seek_prefix(c, pre, 3), 0);
    assert_int_equal(calypso_cursor_seek(c, pre, 3), 0);
    for (n = 1; calypso_cursor_next(c) == 0; n++) {}
    assert_int_equal(n, 302);
    assert_int_equal(calypso_cursor_seek_prefix(c, NULL, 1), CALYPSO_EINVAL);
    assert_int_equal(calypso_cursor_seek_prefix(NULL, "p", 1), CALYPSO_EINVAL);
    calypso_cursor_close(c);
    calypso_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_walk_both_ways),
        cmocka_unit_test(test_seek_modes),
        cmocka_unit_test(test_changes_between_moves),
        cmocka_unit_test(test_expired_skipped_and_empty),
        cmocka_unit_test(test_read_ahead),
        cmocka_unit_test(test_seek_prefix),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
