/*
 * test_hint_compact.c: compacted hint files (doc/format.md, "Compacted
 * hints"), which list every tombstone and catalog record of a datafile and
 * only the puts still live when written.
 *
 * - at a clean close, the active file's hint comes from the key directory
 *   when the file holds puts alone: magic CYHINT02, one entry per live key
 *   in the file, keys in order; a tombstone or a namespace record in the
 *   file makes it a full hint (CYHINT01) again;
 *   built either from a walk of the key directory or, when
 *   the active file holds under a quarter of the data (a close after a few
 *   writes to a large database), from reading that file and keeping the
 *   puts the key directory points at: both give the same bytes;
 * - open from those hints finds what open from the datafiles
 *   alone finds: the same keys and values, expiries, namespaces, and the
 *   same live and dead byte counts (calypso_stats), the key directories
 *   that are empty when a hint's sorted entries come built from them in
 *   one pass (cy_art_build) included.
 */
#include "testutil.h"
#include "engine_util.h"
#include "internal.h"
#include "hint_util.h"
#include "testhooks.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

/* Entries and magic of a hint file. */
static uint64_t hc_entries(const char *path, char magic[9])
{
    size_t len = 0;
    char *b = eu_read_file(path, &len);
    assert_true(len >= 8 + 24);
    memcpy(magic, b, 8);
    magic[8] = 0;
    uint64_t n = cy_get_u64((const uint8_t *)b + len - 16);
    free(b);
    return n;
}

/* 1 when the hint file's checksum covers it as open checks it. */
static int hc_crc_ok(const char *path)
{
    size_t len = 0;
    char *b = eu_read_file(path, &len);
    assert_true(len >= 8 + 24);
    int ok = cy_get_u32((const uint8_t *)b + len - 8) == cy_crc(b, len - 8, NULL, 0) &&
             memcmp(b + len - 4, "HEND", 4) == 0;
    free(b);
    return ok;
}

/* Removes every hint file of dir. */
static void hc_drop_hints(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n > 5 && strcmp(e->d_name + n - 5, ".hint") == 0) {
            eu_path(path, sizeof path, dir, e->d_name);
            assert_int_equal(unlink(path), 0);
        }
    }
    closedir(d);
}

static void hc_rmrf(const char *path)
{
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

/* Copies dir to dir-scan (its name in copy) without its hint files: open
 * then reads the datafiles alone. */
static void hc_copy_without_hints(const char *dir, char *copy, size_t cap)
{
    snprintf(copy, cap, "%s-scan", dir);
    hc_rmrf(copy);
    assert_int_equal(mkdir(copy, 0755), 0);
    eu_copy_dir(dir, copy);
    hc_drop_hints(copy);
}

typedef struct hc_seen { uint64_t n; uint64_t sum; } hc_seen;

static int hc_fold(const void *key, size_t klen, void *ctx)
{
    hc_seen *s = ctx;
    s->n++;
    for (size_t i = 0; i < klen; i++) s->sum = s->sum * 131 + ((const uint8_t *)key)[i];
    return 0;
}

/* Opens dir as it is, and a copy of it without hint files (so from the
 * datafiles alone), and checks that both hold the same: stats, keys, and
 * for keys k000000.. the values and expiries. */
static void hc_same_as_scan(const char *dir, const calypso_options *o, int nkeys)
{
    char copy[4200];
    hc_copy_without_hints(dir, copy, sizeof copy);
    calypso *a = eu_open(dir, o), *b = eu_open(copy, o);
    struct calypso_stats sa, sb;
    TU_OK(a, calypso_stats(a, &sa));
    TU_OK(b, calypso_stats(b, &sb));
    assert_int_equal(sa.keys, sb.keys);
    assert_int_equal(sa.live_bytes, sb.live_bytes);
    assert_int_equal(sa.reclaimable, sb.reclaimable);
    hc_seen fa = { 0, 0 }, fb = { 0, 0 };
    TU_OK(a, calypso_fold(a, hc_fold, &fa));
    TU_OK(b, calypso_fold(b, hc_fold, &fb));
    assert_int_equal(fa.n, fb.n);
    assert_int_equal(fa.sum, fb.sum);
    for (int i = 0; i < nkeys; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%06d", i);
        void *va = NULL, *vb = NULL;
        size_t la = 0, lb = 0;
        int ra = calypso_get(a, k, 7, &va, &la), rb = calypso_get(b, k, 7, &vb, &lb);
        assert_int_equal(ra, rb);
        if (ra == CALYPSO_OK) {
            assert_int_equal(la, lb);
            assert_memory_equal(va, vb, la);
        }
        calypso_free(va);
        calypso_free(vb);
        uint64_t ea = 0, eb = 0;
        assert_int_equal(calypso_ttl(a, k, 7, &ea), calypso_ttl(b, k, 7, &eb));
        assert_int_equal(ea, eb);
    }
    eu_close(a);
    eu_close(b);
    hc_rmrf(copy);
}

/* Defaults, no automatic merge, datafiles of max_file bytes (0: default). */
static calypso_options hc_opts(uint64_t max_file)
{
    calypso_options o;
    calypso_options_default(&o);
    o.merge_trigger_ratio = -1;
    if (max_file) o.max_datafile_size = max_file;
    return o;
}

static void hc_put(calypso *db, int i, int version, uint64_t ttl_ms)
{
    char k[16], v[64];
    snprintf(k, sizeof k, "k%06d", i);
    int vl = snprintf(v, sizeof v, "value %d of key %d", version, i);
    TU_OK(db, calypso_put_ttl(db, k, 7, v, (size_t)vl, ttl_ms));
}

/* Puts alone, with overwrites and TTLs: the close writes a compacted hint
 * of exactly the live keys, in key order, and open from it equals open
 * from the datafile; a delete brings the full hint back. */
static void test_close_hint_of_puts_is_compacted(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = hc_opts(0);
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < 3000; i++) hc_put(db, i, 1, 0);
    for (int i = 0; i < 3000; i += 2) hc_put(db, i, 2, i % 4 == 0 ? 3600000 : 0);
    eu_close(db);
    char path[4096], magic[9];
    eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "hint");
    assert_int_equal(hc_entries(path, magic), 3000);   /* 4,500 records, 3,000 live */
    assert_string_equal(magic, "CYHINT02");
    assert_int_equal(hu_check_sorted(path), 3000);
    hc_same_as_scan(dir, &o, 3000);

    /* Reopened from the compacted hint, more puts: compacted again. */
    db = eu_open(dir, &o);
    for (int i = 0; i < 100; i++) hc_put(db, i, 3, 0);
    eu_close(db);
    assert_int_equal(hc_entries(path, magic), 3000);
    assert_string_equal(magic, "CYHINT02");
    hc_same_as_scan(dir, &o, 3000);

    /* A tombstone in the file: every record is listed. */
    db = eu_open(dir, &o);
    TU_OK(db, calypso_delete(db, "k000001", 7));
    eu_close(db);
    assert_int_equal(hc_entries(path, magic), 4500 + 100 + 1);   /* every record */
    assert_string_equal(magic, "CYHINT01");
    hc_same_as_scan(dir, &o, 3000);
    tu_rmrf(dir);
}

/* A close after a few writes to a large database: the active file holds
 * under a quarter of the data, so its hint is built by reading it (not by
 * walking every key): the same compacted hint, live puts alone in key
 * order, and open from it finds what open from the datafiles finds. A
 * database holding only such a file gets its hint from the walk: the same
 * entries. */
static void test_close_hint_from_a_small_active_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = hc_opts(64 << 10);
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < 20000; i++) hc_put(db, i, 1, 0);   /* hundreds of sealed files */
    /* One more key, overwritten until a rotation starts a new file with
     * it: the file the next session writes in. */
    uint32_t sealed = eu_newest_fid(dir);
    for (int v = 1; eu_newest_fid(dir) == sealed; v++) hc_put(db, 29999, v, 0);
    eu_close(db);
    uint32_t fid = eu_newest_fid(dir);
    o.max_datafile_size = 64 << 20;                     /* it stays active */
    db = eu_open(dir, &o);
    for (int i = 0; i < 6000; i += 10) hc_put(db, i, 2, i % 20 == 0 ? 3600000 : 0);
    for (int i = 0; i < 6000; i += 20) hc_put(db, i, 3, 0);   /* dead within the file */
    eu_close(db);
    assert_int_equal(eu_newest_fid(dir), fid);
    char path[4096], magic[9];
    eu_fid_path(path, sizeof path, dir, fid, "hint");
    /* 901 records, 601 live: 600 of the keys below 6000, and 29999 */
    assert_int_equal(hc_entries(path, magic), 601);
    assert_string_equal(magic, "CYHINT02");
    assert_int_equal(hu_check_sorted(path), 601);
    hc_same_as_scan(dir, &o, 30000);

    char copy[4200];
    snprintf(copy, sizeof copy, "%s-walk", dir);
    hc_rmrf(copy);
    calypso *w = eu_open(copy, &o);
    for (int i = 0; i < 6000; i += 10) hc_put(w, i, 2, i % 20 == 0 ? 3600000 : 0);
    for (int i = 0; i < 6000; i += 20) hc_put(w, i, 3, 0);
    eu_close(w);
    char wpath[4400];
    eu_fid_path(wpath, sizeof wpath, copy, eu_newest_fid(copy), "hint");
    assert_int_equal(hc_entries(wpath, magic), 600);
    assert_string_equal(magic, "CYHINT02");
    assert_int_equal(hu_check_sorted(wpath), 600);
    hc_rmrf(copy);
    tu_rmrf(dir);
}

/* The same, with the active file's puts in two namespaces under the same
 * key bytes, so that key order interleaves them (the live ones are looked
 * up a batch of one namespace at a time), with overwrites within the file
 * in both: the hint lists each live put once, and open from it finds what
 * open from the datafiles finds, in both namespaces. */
static void test_close_hint_from_a_small_active_file_in_two_namespaces(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = hc_opts(64 << 10);
    calypso *db = eu_open(dir, &o), *ns = NULL;
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 1, &ns));
    TU_OK(db, calypso_close(ns));
    for (int i = 0; i < 20000; i++) hc_put(db, i, 1, 0);
    uint32_t sealed = eu_newest_fid(dir);
    for (int v = 1; eu_newest_fid(dir) == sealed; v++) hc_put(db, 29999, v, 0);
    eu_close(db);
    uint32_t fid = eu_newest_fid(dir);
    o.max_datafile_size = 64 << 20;
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 0, &ns));
    for (int i = 0; i < 3000; i += 3) {
        hc_put(db, i, 2, 0);
        hc_put(ns, i, 2, i % 2 ? 3600000 : 0);
    }
    for (int i = 0; i < 3000; i += 6) hc_put(ns, i, 3, 0);   /* dead within the file */
    for (int i = 0; i < 3000; i += 9) hc_put(db, i, 3, 0);
    TU_OK(db, calypso_close(ns));
    eu_close(db);
    assert_int_equal(eu_newest_fid(dir), fid);
    char path[4096], magic[9];
    eu_fid_path(path, sizeof path, dir, fid, "hint");
    /* 1000 live keys in each namespace, and 29999 */
    assert_int_equal(hc_entries(path, magic), 2001);
    assert_string_equal(magic, "CYHINT02");
    hc_same_as_scan(dir, &o, 30000);
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 0, &ns));
    assert_int_equal(calypso_len(ns), 1000);
    for (int i = 0; i < 3000; i += 3) {
        char k[16], v[64];
        snprintf(k, sizeof k, "k%06d", i);
        int vl = snprintf(v, sizeof v, "value %d of key %d", i % 6 == 0 ? 3 : 2, i);
        eu_expect(ns, k, 7, v, (size_t)vl);
        vl = snprintf(v, sizeof v, "value %d of key %d", i % 9 == 0 ? 3 : 2, i);
        eu_expect(db, k, 7, v, (size_t)vl);
    }
    TU_OK(db, calypso_close(ns));
    eu_close(db);
    tu_rmrf(dir);
}

/* A compacted hint larger than the pieces it is handed to its writer
 * thread in (1 MiB) while the walk builds it: the file is the whole hint,
 * entries in key order, one per live key, its checksum over all of it;
 * in two namespaces too (the second's entries after the first's). */
static void test_close_hint_written_in_pieces(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = hc_opts(0);
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < 250000; i++) hc_put(db, i, 1, i % 7 == 0 ? 3600000 : 0);
    for (int i = 0; i < 250000; i += 3) hc_put(db, i, 2, 0);
    eu_close(db);
    char path[4096], magic[9];
    eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "hint");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(st.st_size > 3 * (1 << 20));   /* several pieces */
    assert_int_equal(hc_entries(path, magic), 250000);
    assert_string_equal(magic, "CYHINT02");
    assert_int_equal(hu_check_sorted(path), 250000);
    assert_true(hc_crc_ok(path));
    hc_same_as_scan(dir, &o, 250000);

    calypso *ns = NULL;
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 1, &ns));
    TU_OK(db, calypso_close(ns));
    eu_close(db);   /* the namespace record stays in that file: a full hint */
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 0, &ns));
    for (int i = 0; i < 60000; i++) hc_put(ns, i, 4, 0);
    TU_OK(db, calypso_close(ns));
    eu_close(db);
    hc_same_as_scan(dir, &o, 250000);
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 0, &ns));
    assert_int_equal(calypso_len(ns), 60000);
    eu_expect(ns, "k059999", 7, "value 4 of key 59999", 20);
    eu_expect(db, "k149999", 7, "value 1 of key 149999", 21);
    TU_OK(db, calypso_close(ns));
    eu_close(db);
    tu_rmrf(dir);
}

/* Out of memory at every allocation of a close in turn (the writer
 * thread's state, a piece, the checksum's state, ...): close still
 * succeeds, and what the next open finds is what the datafiles hold,
 * whether the hint was written or given up. */
static void test_close_hint_out_of_memory(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = hc_opts(0);
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < 60000; i++) hc_put(db, i, 1, 0);
    eu_close(db);
    uint64_t nth = 1, failed = 0;
    for (;; nth++) {
        db = eu_open(dir, &o);
        for (int i = 0; i < 60000; i += 1000) hc_put(db, i, (int)nth + 1, 0);
        cy_alloc_fail_at(nth, 0);
        int rc = calypso_close(db);
        uint64_t made = cy_alloc_count();
        cy_alloc_fail_at(0, 0);
        assert_int_equal(rc, CALYPSO_OK);
        if (made < nth) break;   /* the failure was not reached: done */
        failed++;
        /* A hint left in place is a whole, valid one. */
        char path[4096];
        eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "hint");
        if (access(path, F_OK) == 0) assert_true(hc_crc_ok(path));
        hc_same_as_scan(dir, &o, 60000);
        db = eu_open(dir, &o);
        char v[64];
        int vl = snprintf(v, sizeof v, "value %d of key %d", (int)nth + 1, 59000);
        eu_expect(db, "k059000", 7, v, (size_t)vl);
        eu_close(db);
    }
    assert_true(failed >= 3);   /* the close did allocate: thread, pieces, crc */
    tu_rmrf(dir);
}

/* A namespace created in an older file, its keys written in the active
 * one: the compacted hint lists them with their namespace; a file with a
 * namespace record in it gets a full hint. */
static void test_compacted_hint_with_namespaces(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = hc_opts(64 << 10);
    calypso *db = eu_open(dir, &o);
    calypso *ns = NULL;
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 1, &ns));
    for (int i = 0; i < 4000; i++) {          /* many rotations past the create */
        char k[16];
        snprintf(k, sizeof k, "k%06d", i);
        TU_OK(ns, calypso_put(ns, k, 7, "in tenant", 9));
        if (i % 3 == 0) hc_put(db, i, 1, 0);
    }
    TU_OK(db, calypso_close(ns));
    eu_close(db);
    char path[4096], magic[9];
    eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "hint");
    uint64_t n = hc_entries(path, magic);
    assert_string_equal(magic, "CYHINT02");
    assert_true(n > 0);
    hc_same_as_scan(dir, &o, 4000);
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "tenant", 6, 0, &ns));
    assert_int_equal(calypso_len(ns), 4000);
    eu_expect(ns, "k003999", 7, "in tenant", 9);
    TU_OK(db, calypso_close(ns));
    eu_close(db);

    /* A namespace created in the active file: a full hint. */
    db = eu_open(dir, &o);
    TU_OK(db, calypso_ns_open(db, "other", 5, 1, &ns));
    TU_OK(ns, calypso_put(ns, "x", 1, "y", 1));
    TU_OK(db, calypso_close(ns));
    eu_close(db);
    eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "hint");
    hc_entries(path, magic);
    assert_string_equal(magic, "CYHINT01");
    hc_same_as_scan(dir, &o, 4000);
    tu_rmrf(dir);
}

/* Keys of every length from 1 to 24 bytes, many of them prefixes of
 * others, written in random order with overwrites, expiries and deletes,
 * in the default namespace and in a named one: open builds each empty key
 * directory from the sorted entries of the first hint (cy_art_build) and
 * must find exactly what open from the datafiles alone finds, key by key
 * (value and expiry), with the same byte counts. Once with a single file
 * whose hint is compacted (puts alone), once with many sealed files whose
 * hints list every record, a key's overwrites included. */
static void hc_same_keys(calypso *a, calypso *b)
{
    eu_keys ka = { 0 }, kb = { 0 };
    TU_OK(a, calypso_fold(a, eu_collect, &ka));
    TU_OK(b, calypso_fold(b, eu_collect, &kb));
    assert_int_equal(ka.n, kb.n);
    for (size_t i = 0; i < ka.n; i++) {
        assert_int_equal(ka.v[i].len, kb.v[i].len);
        if (ka.v[i].len) assert_memory_equal(ka.v[i].k, kb.v[i].k, ka.v[i].len);
        void *va = NULL, *vb = NULL;
        size_t la = 0, lb = 0;
        TU_OK(a, calypso_get(a, ka.v[i].k, ka.v[i].len, &va, &la));
        TU_OK(b, calypso_get(b, kb.v[i].k, kb.v[i].len, &vb, &lb));
        assert_int_equal(la, lb);
        assert_memory_equal(va, vb, la);
        calypso_free(va);
        calypso_free(vb);
        uint64_t ea = 0, eb = 0;
        assert_int_equal(calypso_ttl(a, ka.v[i].k, ka.v[i].len, &ea),
                         calypso_ttl(b, kb.v[i].k, kb.v[i].len, &eb));
        assert_int_equal(ea, eb);
    }
    eu_keys_free(&ka);
    eu_keys_free(&kb);
}

static void test_open_builds_keydir_from_sorted_hint(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("open builds the keydir"), s = seed;
    for (int sealed = 0; sealed < 2; sealed++) {
        char *dir = tu_tmpdir();
        calypso_options o = hc_opts(sealed ? 32 << 10 : 0);
        /* The namespaces are made in a file of their own, sealed before
         * the keys come, so that the key directories of the default
         * namespace and of "tenant" are empty when the first hint that
         * holds their keys is read; "scratch" fills that file up. */
        calypso_options o1 = hc_opts(CALYPSO_MIN_DATAFILE_SIZE);
        calypso *db = eu_open(dir, &o1);
        calypso *ns = NULL, *scratch = NULL;
        TU_OK(db, calypso_ns_open(db, "tenant", 6, 1, &ns));
        TU_OK(db, calypso_ns_open(db, "scratch", 7, 1, &scratch));
        unsigned first = eu_newest_fid(dir);
        for (int i = 0; eu_newest_fid(dir) == first; i++) {
            char k[16];
            snprintf(k, sizeof k, "s%04d", i);
            TU_OK(scratch, calypso_put(scratch, k, 5, "0123456789abcdef0123456789abcdef", 32));
        }
        TU_OK(db, calypso_close(scratch));
        TU_OK(db, calypso_close(ns));
        eu_close(db);
        db = eu_open(dir, &o);
        TU_OK(db, calypso_ns_open(db, "tenant", 6, 0, &ns));
        /* One write in ten (in the sealed files, one in a hundred, so that
         * runs of new keys stay long) goes again to a key of the last 16,
         * so to a key the same file holds, which its hint then lists
         * twice, in file order; in the sealed files, one in a hundred
         * deletes one of them. One in fifty has an expiry. */
        uint8_t recent[16][24];
        size_t recent_len[16] = { 0 };
        for (int i = 0; i < 6000; i++) {
            uint8_t k[24];
            size_t klen;
            unsigned roll = (unsigned)tu_below(&s, 100), r = (unsigned)tu_below(&s, 16);
            int again = roll < (sealed ? 1u : 10u), del = sealed && roll == 99;
            if (i >= 16 && (again || del)) {
                klen = recent_len[r];
                memcpy(k, recent[r], klen);
            } else {
                klen = (sealed ? 6 : 1) + (size_t)tu_below(&s, sealed ? 19 : 24);
                for (size_t j = 0; j < klen; j++) k[j] = (uint8_t)"ab\0\xff"[tu_below(&s, 2 + (j % 3))];
                memcpy(recent[i % 16], k, klen);
                recent_len[i % 16] = klen;
            }
            /* A key stays in its namespace. A sealed file's hint is in
             * key order across namespaces, so that one namespace's
             * entries would take turns with the other's: those are in the
             * default namespace alone. */
            calypso *h = !sealed && k[0] == 'b' ? ns : db;
            char v[32];
            int vl = snprintf(v, sizeof v, "value %d", i);
            if (i >= 16 && del) {
                int rc = calypso_delete(h, k, klen);
                assert_true(rc == CALYPSO_OK || rc == CALYPSO_ENOTFOUND);
            } else {
                TU_OK(h, calypso_put_ttl(h, k, klen, v, (size_t)vl, roll % 50 == 17 ? 3600000 : 0));
            }
        }
        TU_OK(db, calypso_close(ns));
        eu_close(db);
        if (sealed) {
            unsigned fids[4096];
            int nh = eu_list_fids(dir, "hint", fids, 4096);
            print_message("[ INFO     ] %d hint files\n", nh);
            assert_true(nh > 4);
        } else {
            char path[4096], magic[9];
            eu_fid_path(path, sizeof path, dir, eu_newest_fid(dir), "hint");
            hc_entries(path, magic);
            assert_string_equal(magic, "CYHINT02");
        }
        hc_same_as_scan(dir, &o, 0);

        char copy[4200];
        hc_copy_without_hints(dir, copy, sizeof copy);
        calypso *a = eu_open(dir, &o), *b = eu_open(copy, &o);
        hc_same_keys(a, b);
        calypso *na = NULL, *nb = NULL;
        TU_OK(a, calypso_ns_open(a, "tenant", 6, 0, &na));
        TU_OK(b, calypso_ns_open(b, "tenant", 6, 0, &nb));
        hc_same_keys(na, nb);
        assert_true(sealed || calypso_len(na) > 0);
        TU_OK(a, calypso_close(na));
        TU_OK(b, calypso_close(nb));
        eu_close(a);
        eu_close(b);
        hc_rmrf(copy);
        tu_rmrf(dir);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_hint_of_puts_is_compacted),
        cmocka_unit_test(test_close_hint_from_a_small_active_file),
        cmocka_unit_test(test_close_hint_from_a_small_active_file_in_two_namespaces),
        cmocka_unit_test(test_close_hint_written_in_pieces),
        cmocka_unit_test(test_close_hint_out_of_memory),
        cmocka_unit_test(test_compacted_hint_with_namespaces),
        cmocka_unit_test(test_open_builds_keydir_from_sorted_hint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
