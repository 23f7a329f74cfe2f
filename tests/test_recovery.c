/*
 * test_recovery.c: what open makes of a directory after a crash or damage.
 *
 * - torn tail: the newest datafile cut at every byte offset inside its last
 *   record (a put, a put with TTL, a tombstone): open succeeds, everything
 *   before is there, the torn record is not, the file is cut back to the
 *   last whole record, and new writes land and survive; also with many
 *   datafiles, and read-only (nothing changed on disk);
 * - a flipped byte in a sealed datafile: CALYPSO_ECORRUPT naming file and
 *   offset; with auto_recovery the file is cut there and open goes on; a
 *   flipped byte in the middle of the newest file is damage, not a torn
 *   tail; a flipped byte under a valid hint surfaces as CALYPSO_ECHECKSUM
 *   on get;
 * - the synced-up-to watermark (WATERMARK): damage in the newest file
 *   below it is CALYPSO_ECORRUPT, at or past it a torn tail cut and
 *   reported (valid records after it or not), at the record on each side
 *   of it; a newest file shorter than it, or missing, is CALYPSO_ECORRUPT;
 *   auto_recovery lowers it; a damaged slot falls back to the other, two
 *   damaged slots are CALYPSO_ECORRUPT; it follows syncs without a close;
 * - damaged, truncated, emptied or missing hint files: open falls back to
 *   the datafiles and loses nothing;
 * - under SYNC_ALWAYS, the zeros written ahead of the active file's data
 *   never land on records (many value sizes, reopen, rotations);
 * - hint files list entries in key order, a key's records in file order,
 *   and open from them equals open from the datafiles (keys that differ
 *   only by trailing zero bytes, long shared prefixes, repeated keys);
 * - kill -9 (a child process raising SIGKILL) after a clean close and
 *   reopen, and in the middle of rotations: nothing acknowledged is lost;
 * - META naming a newer format: CALYPSO_EVERSION;
 * - a put whose write fails half way (fault injection) returns an error,
 *   leaves no trace, and the database stays writable and opens cleanly.
 */
#include "testutil.h"
#include "engine_util.h"
#include "internal.h"
#include "hint_util.h"

#define KLEN 16
#define VLEN 100

static void key_of(char *k, int i)
{
    char tmp[32];
    snprintf(tmp, sizeof tmp, "key-%012d", i);
    memcpy(k, tmp, KLEN);
}

static void val_of(uint8_t *v, const char *k, int version)
{
    eu_make_value(v, VLEN, k, KLEN, (uint64_t)version);
}

static void put_i(calypso *db, int i, int version)
{
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, i);
    val_of(v, k, version);
    EU_OK(db, calypso_put(db, k, KLEN, v, VLEN));
}

static void expect_i(calypso *db, int i, int version)
{
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, i);
    val_of(v, k, version);
    eu_expect(db, k, KLEN, v, VLEN);
}

static void expect_absent_i(calypso *db, int i)
{
    char k[KLEN];
    key_of(k, i);
    eu_expect_rc(db, k, KLEN, CALYPSO_ENOTFOUND);
}

/* Where a record sits, found by content after close (the active file may
 * be preallocated while open, so live file sizes say nothing): the datafile
 * holding its key, and [off, end) with off -1 when the record begins its
 * file (then its header's size is not known from the outside). */
typedef struct rec_pos {
    unsigned fid;
    int64_t  off, end;
} rec_pos;

/* Locates records 0..n-1 (each written once, in order, KLEN + VLEN). */
static void locate_records(const char *dir, int n, rec_pos *pos)
{
    unsigned fids[4096];
    int nf = eu_list_fids(dir, "data", fids, 4096);
    assert_true(nf > 0 && nf <= 4096);
    for (int i = 0; i < n; i++) pos[i].fid = 0;
    for (int f = 0; f < nf; f++) {
        char path[1024];
        eu_fid_path(path, sizeof path, dir, fids[f], "data");
        size_t len;
        char *data = eu_read_file(path, &len);
        int64_t prev_end = -1;
        for (int i = 0; i < n; i++) {
            char k[KLEN];
            key_of(k, i);
            char *at = memmem(data, len, k, KLEN);
            if (!at) continue;
            assert_int_equal(pos[i].fid, 0);          /* in one file only */
            assert_null(memmem(at + 1, len - (size_t)(at + 1 - data), k, KLEN));
            int64_t koff = at - data;
            pos[i].fid = fids[f];
            pos[i].end = koff + KLEN + VLEN;
            pos[i].off = i > 0 && pos[i - 1].fid == fids[f] ? prev_end : -1;
            assert_true(pos[i].off < 0 || pos[i].off < koff);
            prev_end = pos[i].end;
        }
        free(data);
    }
    for (int i = 0; i < n; i++) assert_true(pos[i].fid != 0);
}

/* Where the record of key i starts in the datafile at path (its key found
 * by content), -1 if the file does not hold it. */
static int64_t record_start(const char *path, int i, int64_t hdr)
{
    size_t len;
    char *data = eu_read_file(path, &len);
    char k[KLEN];
    key_of(k, i);
    char *at = memmem(data, len, k, KLEN);
    int64_t r = at ? (at - data) - hdr : -1;
    free(data);
    return r;
}

/* The newest datafile's size: call with the database closed (close cuts
 * the active file back to its data). */
static int64_t newest_size(const char *dir, unsigned *fid)
{
    *fid = eu_newest_fid(dir);
    if (!*fid) return 0;
    int64_t s = eu_fid_size(dir, *fid, "data");
    return s < 0 ? 0 : s;
}

/* The WATERMARK file (what syncs covered, a lower bound) as it is now:
 * restored later, it makes the writes made since look unsynced, as they
 * are when a crash comes before their sync. */
static char *wm_save(const char *dir, size_t *len)
{
    char path[1024];
    eu_path(path, sizeof path, dir, "WATERMARK");
    assert_true(eu_exists(path));
    return eu_read_file(path, len);
}

static void wm_restore(const char *dir, const char *saved, size_t len)
{
    char path[1024];
    eu_path(path, sizeof path, dir, "WATERMARK");
    eu_write_file(path, saved, len);
}

// >> torn tail ---------------------------------------------------------------

enum { LAST_PUT, LAST_PUT_TTL, LAST_DELETE };

static void torn_tail_case(int last_kind, int many_files, int step)
{
    enum { N = 40 };
    char *dir = tu_tmpdir(), *pristine = tu_tmpdir(), *work = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    if (many_files) o.max_datafile_size = 4096;
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < N - 1; i++) put_i(db, i, 1);
    eu_close(db);
    unsigned fid, fid_after;
    int64_t s0 = newest_size(dir, &fid);
    /* The header size of a plain record, from where the records sit. */
    rec_pos pos[N - 1];
    locate_records(dir, N - 1, pos);
    int64_t hdr = -1;
    for (int i = 0; i < N - 1; i++)
        if (pos[i].off >= 0) hdr = pos[i].end - pos[i].off - KLEN - VLEN;
    assert_true(hdr > 0 && hdr <= 32);
    assert_int_equal(pos[N - 2].end, s0);
    /* The last record is written after this, and its sync is lost: the
     * watermark says s0. */
    size_t wm_len;
    char *wm_s0 = wm_save(dir, &wm_len);
    db = eu_open(dir, &o);
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, N - 1);
    val_of(v, k, 1);
    if (last_kind == LAST_PUT) {
        EU_OK(db, calypso_put(db, k, KLEN, v, VLEN));
    } else if (last_kind == LAST_PUT_TTL) {
        EU_OK(db, calypso_put_ttl(db, k, KLEN, v, VLEN, 3600 * 1000));
    } else {
        key_of(k, 5);
        EU_OK(db, calypso_delete(db, k, KLEN));
    }
    eu_close(db);
    int64_t s1 = newest_size(dir, &fid_after);
    assert_int_equal(fid_after, fid);     /* appended to the same file */
    assert_true(s1 > s0);
    if (last_kind != LAST_DELETE) assert_true(s1 - s0 > KLEN + VLEN);
    if (many_files) assert_true(fid > 1);
    wm_restore(dir, wm_s0, wm_len);
    free(wm_s0);
    eu_copy_dir(dir, pristine);

    char path[1024];
    eu_fid_path(path, sizeof path, work, fid, "data");
    int checked = 0;
    for (int64_t off = s0; off < s1; off += (off == s0 || off + step >= s1) ? 1 : step) {
        eu_copy_dir(pristine, work);
        eu_truncate(path, off);

        /* Read-only first: it must see the same and change nothing. */
        if (off == s0 + 1 || off == s1 - 1) {
            calypso_options ro = o;
            ro.read_only = 1;
            db = eu_open(work, &ro);
            for (int i = 0; i < N - 1; i++) expect_i(db, i, 1);
            expect_absent_i(db, N - 1);
            eu_close(db);
            assert_int_equal(eu_file_size(path), off);
        }

        db = eu_open(work, &o);
        for (int i = 0; i < N - 1; i++) expect_i(db, i, 1);   /* the tombstone was torn */
        expect_absent_i(db, N - 1);
        assert_int_equal(calypso_len(db), N - 1);
        /* New writes land right at the cut and survive. */
        put_i(db, 1000, 7);
        put_i(db, 3, 2);
        eu_close(db);
        int64_t new_at = record_start(path, 1000, hdr);
        if (new_at < 0) new_at = eu_file_size(path);   /* it went to a new file */
        if (new_at != s0)
            print_error("torn at %lld of [%lld, %lld): the file was cut at %lld\n",
                        (long long)off, (long long)s0, (long long)s1, (long long)new_at);
        assert_int_equal(new_at, s0);
        db = eu_open(work, &o);
        expect_i(db, 1000, 7);
        expect_i(db, 3, 2);
        expect_i(db, 0, 1);
        expect_i(db, N - 2, 1);
        expect_absent_i(db, N - 1);
        assert_int_equal(calypso_len(db), N);
        eu_close(db);
        checked++;
    }
    assert_true(checked >= 2);

    /* The whole record, for contrast, is there. */
    db = eu_open(pristine, &o);
    if (last_kind == LAST_DELETE) {
        expect_absent_i(db, 5);
        expect_i(db, N - 1 - 1, 1);
    } else {
        expect_i(db, N - 1, 1);
    }
    eu_close(db);
    tu_rmrf(work);
    tu_rmrf(pristine);
    tu_rmrf(dir);
}

static void test_torn_tail_put(void **state)
{
    (void)state;
    torn_tail_case(LAST_PUT, 0, 1);
}

static void test_torn_tail_put_ttl(void **state)
{
    (void)state;
    torn_tail_case(LAST_PUT_TTL, 0, 1);
}

static void test_torn_tail_delete(void **state)
{
    (void)state;
    torn_tail_case(LAST_DELETE, 0, 1);
}

static void test_torn_tail_many_files(void **state)
{
    (void)state;
    torn_tail_case(LAST_PUT, 1, 5);
}

/* Garbage (zeros, as a crashed file system may leave) after the last
 * record is a torn tail too. */
static void test_zero_filled_tail(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    for (int i = 0; i < 10; i++) put_i(db, i, 1);
    eu_close(db);
    unsigned fid = eu_newest_fid(dir);
    int64_t s = eu_fid_size(dir, fid, "data");
    char path[1024];
    eu_fid_path(path, sizeof path, dir, fid, "data");
    eu_truncate(path, s + 4096);
    db = eu_open(dir, NULL);
    for (int i = 0; i < 10; i++) expect_i(db, i, 1);
    assert_int_equal(eu_file_size(path), s);
    put_i(db, 10, 1);
    eu_close(db);
    db = eu_open(dir, NULL);
    for (int i = 0; i <= 10; i++) expect_i(db, i, 1);
    eu_close(db);
    tu_rmrf(dir);
}

// >> flipped bytes -------------------------------------------------------------

enum { NREC = 120 };

/* Writes NREC records into 4 KiB datafiles and records where each went. */
static void write_tracked(const char *dir, const calypso_options *o, rec_pos *pos)
{
    calypso *db = eu_open(dir, o);
    for (int i = 0; i < NREC; i++) put_i(db, i, 1);
    eu_close(db);
    locate_records(dir, NREC, pos);
}

/* The first record of fid 1 after `skip` others whose offset is known. */
static int pick_record(const rec_pos *pos, unsigned fid, int skip)
{
    for (int i = 0; i < NREC; i++)
        if (pos[i].fid == fid && pos[i].off > 0 && skip-- == 0) return i;
    fail_msg("no record to pick in fid %u", fid);
    return -1;
}

static void test_flipped_byte_sealed_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *pristine = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    rec_pos pos[NREC];
    write_tracked(dir, &o, pos);
    assert_true(eu_newest_fid(dir) >= 3);
    int bad = pick_record(pos, 1, 8);
    int64_t bad_size = pos[bad].end - pos[bad].off;
    assert_true(bad_size > KLEN + VLEN && bad_size <= KLEN + VLEN + 32);
    eu_copy_dir(dir, pristine);

    char data[1024], hint[1024];
    eu_fid_path(data, sizeof data, dir, 1, "data");
    eu_fid_path(hint, sizeof hint, dir, 1, "hint");
    /* A byte of the value (the header and key stay intact). */
    eu_flip_byte(data, pos[bad].end - 40, 0x10);
    unlink(hint);          /* so that open reads the datafile itself */

    calypso *db = (calypso *)&db;
    int rc = calypso_open(dir, &o, &db);
    EU_RC(NULL, CALYPSO_ECORRUPT, rc);
    assert_null(db);
    const char *m = calypso_errmsg(NULL);
    char offs[32];
    snprintf(offs, sizeof offs, "%lld", (long long)pos[bad].off);
    print_message("ECORRUPT errmsg: %s\n", m);
    assert_non_null(strstr(m, "0000000001.data"));
    assert_non_null(strstr(m, offs));
    /* Read-only opens refuse it the same way. */
    calypso_options ro = o;
    ro.read_only = 1;
    db = (calypso *)&db;
    EU_RC(NULL, CALYPSO_ECORRUPT, calypso_open(dir, &ro, &db));
    assert_null(db);
    int64_t damaged_size = eu_file_size(data);

    /* auto_recovery: cut at the damaged record; later files untouched. */
    calypso_options ar = o;
    ar.auto_recovery = 1;
    db = eu_open(dir, &ar);
    m = calypso_errmsg(db);
    print_message("auto_recovery note: %s\n", m);
    assert_true(strlen(m) > 0);
    assert_non_null(strstr(m, "0000000001"));
    for (int i = 0; i < NREC; i++) {
        if (pos[i].fid == 1 && i >= bad) expect_absent_i(db, i);
        else expect_i(db, i, 1);
    }
    assert_true(eu_file_size(data) < damaged_size);
    assert_int_equal(eu_file_size(data), pos[bad].off);
    put_i(db, 5000, 1);
    eu_close(db);
    /* Now it opens without auto_recovery, with the same contents. */
    db = eu_open(dir, &o);
    for (int i = 0; i < NREC; i++) {
        if (pos[i].fid == 1 && i >= bad) expect_absent_i(db, i);
        else expect_i(db, i, 1);
    }
    expect_i(db, 5000, 1);
    eu_close(db);

    /* A read-only open with auto_recovery goes on but changes nothing. */
    eu_copy_dir(pristine, dir);
    eu_flip_byte(data, pos[bad].end - 40, 0x10);
    unlink(hint);
    ro.auto_recovery = 1;
    int64_t before = eu_file_size(data);
    db = (calypso *)&db;
    rc = calypso_open(dir, &ro, &db);
    if (rc == CALYPSO_OK) {
        for (int i = 0; i < bad; i++)
            if (pos[i].fid == 1) expect_i(db, i, 1);
        expect_absent_i(db, bad);
        eu_close(db);
    } else {
        EU_RC(NULL, CALYPSO_ECORRUPT, rc);
    }
    assert_int_equal(eu_file_size(data), before);
    tu_rmrf(pristine);
    tu_rmrf(dir);
}

/* A bad record in the middle of the newest file, with good records after
 * it, is damage: dropping it silently would drop acknowledged writes. */
static void test_flipped_byte_newest_file_middle(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    rec_pos pos[NREC];
    calypso *db = eu_open(dir, NULL);
    for (int i = 0; i < 20; i++) put_i(db, i, 1);
    eu_close(db);
    locate_records(dir, 20, pos);
    unsigned fid = eu_newest_fid(dir);
    assert_int_equal(pos[10].fid, fid);
    char data[1024];
    eu_fid_path(data, sizeof data, dir, fid, "data");
    /* Close wrote a hint for the active file, so open would not read these
     * bytes (get would find the damage, see the next test): remove it to
     * make open scan the file. */
    char hint[1024];
    eu_fid_path(hint, sizeof hint, dir, fid, "hint");
    assert_int_equal(unlink(hint), 0);
    eu_flip_byte(data, pos[10].end - 1, 0x01);
    db = (calypso *)&db;
    EU_RC(NULL, CALYPSO_ECORRUPT, calypso_open(dir, NULL, &db));
    assert_null(db);
    char offs[32];
    snprintf(offs, sizeof offs, "%lld", (long long)pos[10].off);
    assert_non_null(strstr(calypso_errmsg(NULL), offs));
    /* The last record too: close synced it, and the watermark says so. */
    eu_flip_byte(data, pos[10].end - 1, 0x01);
    eu_flip_byte(data, pos[19].end - VLEN - 3, 0x04);   /* in its key */
    db = (calypso *)&db;
    EU_RC(NULL, CALYPSO_ECORRUPT, calypso_open(dir, NULL, &db));
    snprintf(offs, sizeof offs, "%lld", (long long)pos[19].off);
    assert_non_null(strstr(calypso_errmsg(NULL), offs));
    /* A database without WATERMARK (as an older release wrote it) cannot
     * tell: a flipped byte in the last record is indistinguishable from a
     * torn write, and cut off. */
    char wm[1024];
    eu_path(wm, sizeof wm, dir, "WATERMARK");
    assert_int_equal(unlink(wm), 0);
    db = eu_open(dir, NULL);
    for (int i = 0; i < 19; i++) expect_i(db, i, 1);
    expect_absent_i(db, 19);
    eu_close(db);
    assert_int_equal(eu_file_size(data), pos[19].off);
    assert_true(eu_exists(wm));      /* the writable open made one */
    tu_rmrf(dir);
}

/* Under a valid hint, a damaged value is found when it is read. */
static void test_flipped_byte_found_on_get(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    rec_pos pos[NREC];
    write_tracked(dir, &o, pos);
    char data[1024], hint[1024];
    eu_fid_path(data, sizeof data, dir, 2, "data");
    eu_fid_path(hint, sizeof hint, dir, 2, "hint");
    assert_true(eu_exists(hint));
    int bad = pick_record(pos, 2, 3);
    eu_flip_byte(data, pos[bad].end - 2, 0x80);
    calypso *db = eu_open(dir, &o);
    char k[KLEN];
    key_of(k, bad);
    eu_expect_rc(db, k, KLEN, CALYPSO_ECHECKSUM);
    const char *m = calypso_errmsg(db);
    print_message("ECHECKSUM errmsg: %s\n", m);
    assert_non_null(strstr(m, "0000000002.data"));
    char offs[32];
    snprintf(offs, sizeof offs, "%lld", (long long)pos[bad].off);
    assert_non_null(strstr(m, offs));
    uint8_t buf[VLEN];
    size_t vlen = 0;
    EU_RC(db, CALYPSO_ECHECKSUM, calypso_get_buf(db, k, KLEN, buf, sizeof buf, &vlen));
    for (int i = 0; i < NREC; i++)
        if (i != bad) expect_i(db, i, 1);
    /* Overwriting the key heals it. */
    put_i(db, bad, 2);
    expect_i(db, bad, 2);
    eu_close(db);
    tu_rmrf(dir);
}

// >> hint files ----------------------------------------------------------------

enum { HN = 300 };

/* Writes a mix of puts, overwrites, TTL puts and deletes into 4 KiB files;
 * version[i] is the live version of key i, 0 if deleted. */
static void write_mixed(const char *dir, const calypso_options *o, int *version)
{
    calypso *db = eu_open(dir, o);
    for (int i = 0; i < HN; i++) { put_i(db, i, 1); version[i] = 1; }
    for (int i = 0; i < HN; i += 3) { put_i(db, i, 2); version[i] = 2; }
    for (int i = 1; i < HN; i += 5) {
        char k[KLEN];
        key_of(k, i);
        EU_OK(db, calypso_delete(db, k, KLEN));
        version[i] = 0;
    }
    for (int i = 2; i < HN; i += 7) {
        char k[KLEN];
        uint8_t v[VLEN];
        key_of(k, i);
        val_of(v, k, 3);
        EU_OK(db, calypso_put_ttl(db, k, KLEN, v, VLEN, 3600 * 1000));
        version[i] = 3;
    }
    eu_close(db);
}

static void expect_mixed(calypso *db, const int *version)
{
    uint64_t live = 0;
    for (int i = 0; i < HN; i++) {
        if (version[i]) { expect_i(db, i, version[i]); live++; }
        else expect_absent_i(db, i);
    }
    assert_int_equal(calypso_len(db), live);
    eu_keys ks = {0};
    EU_OK(db, calypso_fold(db, eu_collect, &ks));
    assert_int_equal(ks.n, live);
    eu_keys_free(&ks);
}

// >> SYNC_ALWAYS zeros ahead ---------------------------------------------------------

/* Under SYNC_ALWAYS the active file gets zeros written ahead of its data
 * (so that syncs convert preallocated blocks in bulk). Those zeros must
 * never land on records: not across the 256 KiB steps, not in a file
 * reopened with data in it, not across rotations, not after a close trims
 * the file and a reopen allocates again. Values of many sizes, a reopen
 * half way, and every value checked after each phase and in a copy of the
 * files taken while the handle is open (what a crash leaves). */
static void zero_ahead_value(uint8_t *v, size_t len, int i)
{
    char k[KLEN];
    key_of(k, i);
    eu_make_value(v, len, k, KLEN, (uint64_t)i);
}

static void zero_ahead_check(calypso *db, int n)
{
    static uint8_t want[9000];
    for (int i = 0; i < n; i++) {
        char k[KLEN];
        key_of(k, i);
        size_t len = 16 + (size_t)(i * 7919) % 8000;
        zero_ahead_value(want, len, i);
        eu_expect(db, k, KLEN, want, len);
    }
}

static void test_sync_always_zeros_ahead(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    o.sync = CALYPSO_SYNC_ALWAYS;
    o.max_datafile_size = 3 << 20;     /* a rotation or two, chunks grow */
    o.merge_trigger_ratio = -1;
    static uint8_t v[9000];
    enum { N = 1200 };
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < N / 2; i++) {
        char k[KLEN];
        key_of(k, i);
        size_t len = 16 + (size_t)(i * 7919) % 8000;
        zero_ahead_value(v, len, i);
        EU_OK(db, calypso_put(db, k, KLEN, v, len));
    }
    zero_ahead_check(db, N / 2);
    eu_close(db);                      /* trims the preallocated tail */
    db = eu_open(dir, &o);             /* the active file holds data */
    for (int i = N / 2; i < N; i++) {
        char k[KLEN];
        key_of(k, i);
        size_t len = 16 + (size_t)(i * 7919) % 8000;
        zero_ahead_value(v, len, i);
        EU_OK(db, calypso_put(db, k, KLEN, v, len));
    }
    zero_ahead_check(db, N);
    struct calypso_stats st;
    EU_OK(db, calypso_stats(db, &st));
    assert_true(st.datafiles >= 2);
    /* The files as a crash leaves them (copied while open, preallocated
     * tail and all): the same values. */
    char *crashed = tu_tmpdir();
    eu_copy_dir(dir, crashed);
    calypso *again = eu_open(crashed, &o);
    zero_ahead_check(again, N);
    eu_close(again);
    tu_rmrf(crashed);
    eu_close(db);
    db = eu_open(dir, &o);
    zero_ahead_check(db, N);
    eu_close(db);
    tu_rmrf(dir);
}

// >> hint order ---------------------------------------------------------------------

/* The keys of the hint-order test: random binary keys of 1..40 bytes, and
 * families that only a careful sort keeps apart: keys that are prefixes of
 * each other and differ only by trailing zero bytes ("a", "a\0", "a\0\0"),
 * long shared prefixes (so runs agree on 8, 16, 24 bytes), and one key
 * written again and again. */
enum { HO_RANDOM = 3000, HO_KEYS = HO_RANDOM + 64 * 3 + 200 + 1 };

typedef struct ho_key { uint8_t k[48]; size_t len; int version; } ho_key;

static void ho_make_keys(ho_key *ks, uint64_t *seed)
{
    size_t n = 0;
    for (; n < HO_RANDOM; n++) {
        ks[n].len = 1 + (size_t)tu_below(seed, 40);
        for (size_t i = 0; i < ks[n].len; i++)
            ks[n].k[i] = (uint8_t)(tu_below(seed, 4) == 0 ? 0 : tu_rand(seed));
    }
    for (int f = 0; f < 3; f++)          /* "x", "x\0", "x\0\0", ... */
        for (size_t z = 0; z < 64; z++, n++) {
            memset(ks[n].k, 0, sizeof ks[n].k);
            ks[n].k[0] = (uint8_t)("a\0\xff"[f]);
            ks[n].len = 1 + z % 40;
            if (z >= 40) ks[n].k[ks[n].len - 1] = (uint8_t)z;
        }
    for (int i = 0; i < 200; i++, n++) {  /* 30 shared bytes, then a tail */
        memset(ks[n].k, 'p', 30);
        ks[n].len = 30 + (size_t)tu_below(seed, 12);
        for (size_t j = 30; j < ks[n].len; j++) ks[n].k[j] = (uint8_t)tu_below(seed, 3);
    }
    memcpy(ks[n].k, "again", 5);
    ks[n].len = 5;
    n++;
    assert_int_equal(n, HO_KEYS);
    for (size_t i = 0; i < n; i++) ks[i].version = 0;
}

static void ho_expect(calypso *db, const ho_key *ks)
{
    uint64_t live = 0;
    for (size_t i = 0; i < HO_KEYS; i++) {
        /* Families repeat keys: only the last entry for a key is its truth. */
        int last = 1;
        for (size_t j = i + 1; j < HO_KEYS && last; j++)
            last = !(ks[j].len == ks[i].len && memcmp(ks[j].k, ks[i].k, ks[i].len) == 0);
        if (!last) continue;
        void *v = NULL;
        size_t vlen = 0;
        int rc = calypso_get(db, ks[i].k, ks[i].len, &v, &vlen);
        if (ks[i].version) {
            uint64_t ver = 0;
            EU_RC(db, CALYPSO_OK, rc);
            assert_true(eu_check_value(v, vlen, ks[i].k, ks[i].len, &ver));
            assert_int_equal(ver, (uint64_t)ks[i].version);
            calypso_free(v);
            live++;
        } else {
            EU_RC(db, CALYPSO_ENOTFOUND, rc);
        }
    }
    assert_int_equal(calypso_len(db), live);
}

/* Writes puts, overwrites, TTL puts, deletes and re-puts of ks in random
 * order (a key's writes in sequence, so its last record decides). */
static uint64_t ho_write(calypso *db, ho_key *ks, uint64_t *seed)
{
    uint64_t records = 0;
    for (int round = 0; round < 3; round++) {
        for (size_t c = 0; c < HO_KEYS; c++) {
            size_t i = (size_t)tu_below(seed, HO_KEYS);
            ho_key *k = &ks[i];
            unsigned op = (unsigned)tu_below(seed, 8);
            if (op == 0) {
                int rc = calypso_delete(db, k->k, k->len);
                EU_OK(db, rc);
                records += k->version != 0;   /* a live key gets a tombstone */
                k->version = 0;
            } else {
                uint8_t v[VLEN];
                k->version = round * 100 + (int)op;
                eu_make_value(v, VLEN, k->k, k->len, (uint64_t)k->version);
                if (op == 1) EU_OK(db, calypso_put_ttl(db, k->k, k->len, v, VLEN, 3600 * 1000));
                else EU_OK(db, calypso_put(db, k->k, k->len, v, VLEN));
                records++;
            }
            /* Keep the family duplicates in step: the same bytes are the
             * same key. */
            for (size_t j = 0; j < HO_KEYS; j++)
                if (j != i && ks[j].len == k->len && memcmp(ks[j].k, k->k, k->len) == 0)
                    ks[j].version = k->version;
        }
        for (int r = 0; r < 40; r++) {   /* one key, many records in one file */
            ho_key *k = &ks[HO_KEYS - 1];
            uint8_t v[VLEN];
            k->version = round * 100 + 50 + r;
            eu_make_value(v, VLEN, k->k, k->len, (uint64_t)k->version);
            EU_OK(db, calypso_put(db, k->k, k->len, v, VLEN));
            records++;
        }
    }
    return records;
}

/* Hint files list their entries in key order (so open inserts keys in
 * order), and a database opened from them is the one the datafiles hold:
 * in one big active file (the hint written at close) and in many small
 * sealed files (hints written in the background). */
static void test_hint_order(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_hint_order");
    ho_key *ks = calloc(HO_KEYS, sizeof *ks);
    assert_non_null(ks);
    for (int small = 0; small < 2; small++) {
        char *dir = tu_tmpdir();
        calypso_options o;
        calypso_options_default(&o);
        o.merge_trigger_ratio = -1;
        if (small) o.max_datafile_size = 64 * 1024;
        ho_make_keys(ks, &seed);
        calypso *db = eu_open(dir, &o);
        uint64_t records = ho_write(db, ks, &seed);
        eu_close(db);
        unsigned hints[4096];
        int nh = eu_list_fids(dir, "hint", hints, 4096);
        assert_true(small ? nh > 10 : nh == 1);
        uint64_t entries = 0;
        int compacted = 0;
        for (int h = 0; h < nh; h++) {
            char hp[1024];
            eu_fid_path(hp, sizeof hp, dir, hints[h], "hint");
            entries += hu_check_sorted(hp);
            size_t hl = 0;
            char *hb = eu_read_file(hp, &hl);
            compacted += hl >= 8 && memcmp(hb, "CYHINT02", 8) == 0;
            free(hb);
        }
        print_message("%d hint files (%d compacted), %llu entries in key order\n", nh,
                      compacted, (unsigned long long)entries);
        /* Every record, tombstones too; a compacted hint (the active
         * file's at close, when it holds puts alone) leaves out dead puts. */
        if (compacted) assert_true(entries < records);
        else assert_int_equal(entries, records);
        db = eu_open(dir, &o);
        ho_expect(db, ks);
        eu_keys with_hints = {0};
        EU_OK(db, calypso_fold(db, eu_collect, &with_hints));
        eu_close(db);
        /* Without hints, open reads the datafiles in file order: the same
         * keys come back. */
        for (int h = 0; h < nh; h++) {
            char hp[1024];
            eu_fid_path(hp, sizeof hp, dir, hints[h], "hint");
            assert_int_equal(unlink(hp), 0);
        }
        db = eu_open(dir, &o);
        ho_expect(db, ks);
        eu_keys scanned = {0};
        EU_OK(db, calypso_fold(db, eu_collect, &scanned));
        assert_int_equal(scanned.n, with_hints.n);
        for (size_t i = 0; i < scanned.n; i++) {
            assert_int_equal(scanned.v[i].len, with_hints.v[i].len);
            assert_memory_equal(scanned.v[i].k, with_hints.v[i].k, scanned.v[i].len);
        }
        eu_keys_free(&scanned);
        eu_keys_free(&with_hints);
        eu_close(db);
        tu_rmrf(dir);
    }
    free(ks);
}

enum { HINT_FLIP_MIDDLE, HINT_FLIP_FIRST, HINT_FLIP_LAST, HINT_TRUNC_HALF,
       HINT_TRUNC_ONE, HINT_EMPTY, HINT_MISSING, HINT_GARBAGE, HINT__N };

static void test_damaged_hints(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *pristine = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = -1;
    int version[HN];
    write_mixed(dir, &o, version);
    unsigned hints[1024];
    int nh = eu_list_fids(dir, "hint", hints, 1024);
    unsigned ndata = eu_newest_fid(dir);
    print_message("%d hint files for %u datafiles\n", nh, ndata);
    assert_true(nh >= 5);
    assert_true(nh <= (int)ndata);           /* close writes one for the active file */
    /* The undamaged hints give the same answers. */
    calypso *db = eu_open(dir, &o);
    expect_mixed(db, version);
    eu_close(db);
    eu_copy_dir(dir, pristine);

    for (int kind = 0; kind < HINT__N; kind++) {
        eu_copy_dir(pristine, dir);
        for (int h = 0; h < nh; h++) {
            char hp[1024];
            eu_fid_path(hp, sizeof hp, dir, hints[h], "hint");
            int64_t hs = eu_file_size(hp);
            assert_true(hs > 24);
            switch (kind) {
            case HINT_FLIP_MIDDLE: eu_flip_byte(hp, hs / 2, 0x01); break;
            case HINT_FLIP_FIRST:  eu_flip_byte(hp, 0, 0x20); break;
            case HINT_FLIP_LAST:   eu_flip_byte(hp, hs - 1, 0x02); break;
            case HINT_TRUNC_HALF:  eu_truncate(hp, hs / 2); break;
            case HINT_TRUNC_ONE:   eu_truncate(hp, hs - 1); break;
            case HINT_EMPTY:       eu_truncate(hp, 0); break;
            case HINT_MISSING:     assert_int_equal(unlink(hp), 0); break;
            case HINT_GARBAGE: {
                uint8_t junk[512];
                uint64_t s = (uint64_t)h * 7919 + 1;
                for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)tu_rand(&s);
                eu_write_file(hp, junk, sizeof junk);
                break;
            }
            }
        }
        db = eu_open(dir, &o);
        expect_mixed(db, version);
        put_i(db, 0, 9);
        eu_close(db);
        version[0] = 9;
        db = eu_open(dir, &o);
        expect_mixed(db, version);
        eu_close(db);
        version[0] = 2;
    }

    /* A hint that disagrees with its datafile's size (the datafile was
     * cut after the hint was written) is not trusted. */
    eu_copy_dir(pristine, dir);
    char dp[1024];
    eu_fid_path(dp, sizeof dp, dir, hints[0], "data");
    int64_t ds = eu_file_size(dp);
    eu_truncate(dp, ds - 1);
    calypso_options ar = o;
    ar.auto_recovery = 1;
    db = (calypso *)&db;
    int rc = calypso_open(dir, &o, &db);
    EU_RC(NULL, CALYPSO_ECORRUPT, rc);     /* a sealed file with a torn end */
    db = eu_open(dir, &ar);
    assert_true(strlen(calypso_errmsg(db)) > 0);
    /* Only the cut record's key may differ (gone, or back to an older
     * version of itself); everything else is as written. */
    int differ = 0;
    for (int i = 0; i < HN; i++) {
        char k[KLEN];
        key_of(k, i);
        void *v = NULL;
        size_t vlen = 0;
        rc = calypso_get(db, k, KLEN, &v, &vlen);
        uint64_t ver = 0;
        if (rc == CALYPSO_OK) {
            assert_true(eu_check_value(v, vlen, k, KLEN, &ver));
            calypso_free(v);
        } else {
            assert_int_equal(rc, CALYPSO_ENOTFOUND);
        }
        if ((int)ver != version[i]) differ++;
    }
    assert_true(differ <= 1);
    eu_close(db);
    tu_rmrf(pristine);
    tu_rmrf(dir);
}

// >> kill -9 -----------------------------------------------------------------------

#define CHILD_CHECK(x)                                                          \
    do {                                                                        \
        if (!(x)) {                                                             \
            fprintf(stderr, "child: check failed at line %d: %s\n", __LINE__, #x); \
            _exit(3);                                                           \
        }                                                                       \
    } while (0)

static void child_put(calypso *db, int i, int version)
{
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, i);
    eu_make_value(v, VLEN, k, KLEN, (uint64_t)version);
    int rc = calypso_put(db, k, KLEN, v, VLEN);
    if (rc) fprintf(stderr, "child put: %s\n", calypso_errmsg(db));
    CHILD_CHECK(rc == CALYPSO_OK);
}


// >> the synced-up-to watermark --------------------------------------------------
/* WATERMARK, per doc/format.md: two 32-byte slots at 0 and 512, each
 * "CYWMARK1" | seq u64 | fid u32 | off u64 | crc u32 (of the 28 bytes
 * before); the valid slot with the higher seq holds the value. */

static void wm_slot(uint8_t *p, uint64_t seq, uint32_t fid, uint64_t off)
{
    memcpy(p, "CYWMARK1", 8);
    cy_put_u64(p + 8, seq);
    cy_put_u32(p + 16, fid);
    cy_put_u64(p + 20, off);
    cy_put_u32(p + 28, cy_crc(p, 28, NULL, 0));
}

/* Writes WATERMARK whole: slot 0 (seq 1) and, when seq1 is not 0, slot 1. */
static void wm_write(const char *dir, uint32_t fid0, uint64_t off0, uint64_t seq1,
                     uint32_t fid1, uint64_t off1)
{
    uint8_t buf[1024] = { 0 };
    wm_slot(buf, 1, fid0, off0);
    if (seq1) wm_slot(buf + 512, seq1, fid1, off1);
    char path[1024];
    eu_path(path, sizeof path, dir, "WATERMARK");
    eu_write_file(path, buf, sizeof buf);
}

/* The watermark WATERMARK holds; fails when neither slot is valid. */
static void wm_read(const char *dir, uint32_t *fid, uint64_t *off)
{
    size_t len;
    char path[1024];
    eu_path(path, sizeof path, dir, "WATERMARK");
    uint8_t *buf = (uint8_t *)eu_read_file(path, &len);
    assert_int_equal(len, 1024);
    uint64_t best = 0;
    int found = 0;
    for (int i = 0; i < 2; i++) {
        const uint8_t *p = buf + 512 * i;
        if (memcmp(p, "CYWMARK1", 8) || cy_get_u32(p + 28) != cy_crc(p, 28, NULL, 0)) continue;
        if (found && cy_get_u64(p + 8) <= best) continue;
        found = 1;
        best = cy_get_u64(p + 8);
        *fid = cy_get_u32(p + 16);
        *off = cy_get_u64(p + 20);
    }
    free(buf);
    assert_true(found);
}

/* Opening dir must fail with CALYPSO_ECORRUPT, the message naming all of
 * the given pieces. */
static void expect_corrupt(const char *dir, const calypso_options *o, const char *a,
                           const char *b)
{
    calypso *db = (calypso *)&db;
    EU_RC(NULL, CALYPSO_ECORRUPT, calypso_open(dir, o, &db));
    assert_null(db);
    const char *m = calypso_errmsg(NULL);
    print_message("ECORRUPT errmsg: %s\n", m);
    assert_non_null(strstr(m, a));
    if (b) assert_non_null(strstr(m, b));
}

/* 20 records in one datafile, the first 10 synced (close), the rest written
 * after and, as far as WATERMARK says, never synced; the active file's hint
 * gone so that open reads it. Fills pos and returns the watermark. */
static uint64_t wm_setup(const char *dir, rec_pos *pos, unsigned *fid)
{
    calypso *db = eu_open(dir, NULL);
    for (int i = 0; i < 10; i++) put_i(db, i, 1);
    eu_close(db);
    size_t wm_len;
    char *wm10 = wm_save(dir, &wm_len);
    db = eu_open(dir, NULL);
    for (int i = 10; i < 20; i++) put_i(db, i, 1);
    eu_close(db);
    wm_restore(dir, wm10, wm_len);
    free(wm10);
    locate_records(dir, 20, pos);
    *fid = eu_newest_fid(dir);
    assert_int_equal(pos[0].fid, *fid);
    assert_int_equal(pos[19].fid, *fid);
    uint32_t wfid;
    uint64_t woff;
    wm_read(dir, &wfid, &woff);
    assert_int_equal(wfid, *fid);
    assert_int_equal((int64_t)woff, pos[9].end);       /* what the first close synced */
    assert_int_equal(pos[10].off, pos[9].end);
    char hint[1024];
    eu_fid_path(hint, sizeof hint, dir, *fid, "hint");
    assert_int_equal(unlink(hint), 0);
    return woff;
}

/* Damage in the newest file on each side of the watermark: the record
 * just below it is synced data (CALYPSO_ECORRUPT), the record at it and
 * any after are a torn tail (cut and reported, even with valid records
 * after the damage, as pages written back out of order leave them). */
static void test_watermark_boundary(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *work = tu_tmpdir();
    rec_pos pos[20];
    unsigned fid;
    uint64_t w = wm_setup(dir, pos, &fid);
    char data[1024], offs[32];
    eu_fid_path(data, sizeof data, work, fid, "data");

    /* The last record below the watermark. */
    eu_copy_dir(dir, work);
    eu_flip_byte(data, pos[9].end - 1, 0x01);
    snprintf(offs, sizeof offs, "offset %lld", (long long)pos[9].off);
    expect_corrupt(work, NULL, "0000000001.data", offs);
    assert_non_null(strstr(calypso_errmsg(NULL), "sync covered"));

    /* The first record at the watermark, then one further on. */
    int at[] = { 10, 15 };
    for (int c = 0; c < 2; c++) {
        int bad = at[c];
        eu_copy_dir(dir, work);
        eu_flip_byte(data, pos[bad].end - 1, 0x01);
        /* Read-only: the same view, nothing changed on disk. */
        int64_t before = eu_file_size(data);
        calypso_options ro = { 0 };
        ro.read_only = 1;
        calypso *db = eu_open(work, &ro);
        for (int i = 0; i < 20; i++) {
            if (i < bad) expect_i(db, i, 1);
            else expect_absent_i(db, i);
        }
        eu_close(db);
        assert_int_equal(eu_file_size(data), before);

        db = eu_open(work, NULL);
        const char *m = calypso_errmsg(db);
        print_message("open reports: %s\n", m);
        snprintf(offs, sizeof offs, "offset %lld", (long long)pos[bad].off);
        assert_non_null(strstr(m, "cut"));
        assert_non_null(strstr(m, offs));
        for (int i = 0; i < 20; i++) {
            if (i < bad) expect_i(db, i, 1);
            else expect_absent_i(db, i);
        }
        put_i(db, 100, 2);
        eu_close(db);
        db = eu_open(work, NULL);
        assert_int_equal(calypso_errmsg(db)[0], 0);     /* nothing more to cut */
        expect_i(db, 100, 2);
        assert_int_equal(calypso_len(db), (uint64_t)bad + 1);
        eu_close(db);
    }

    /* The file cut cleanly right at the watermark: nothing synced is
     * missing; one record shorter, it is. */
    eu_copy_dir(dir, work);
    eu_truncate(data, (int64_t)w);
    calypso *db = eu_open(work, NULL);
    assert_int_equal(calypso_len(db), 10);
    eu_close(db);
    eu_copy_dir(dir, work);
    eu_truncate(data, pos[9].off);
    snprintf(offs, sizeof offs, "%llu", (unsigned long long)w);
    expect_corrupt(work, NULL, "a sync covered", offs);
    assert_non_null(strstr(calypso_errmsg(NULL), "fewer than"));

    /* auto_recovery cuts synced data, says so, and lowers the watermark so
     * that the next open, without it, does not refuse the shorter file. */
    eu_copy_dir(dir, work);
    eu_flip_byte(data, pos[5].end - 1, 0x01);
    calypso_options ar = { 0 };
    ar.auto_recovery = 1;
    db = eu_open(work, &ar);
    print_message("auto_recovery note: %s\n", calypso_errmsg(db));
    assert_non_null(strstr(calypso_errmsg(db), "auto-recovery dropped"));
    uint32_t wfid;
    uint64_t woff;
    wm_read(work, &wfid, &woff);
    assert_int_equal(wfid, fid);
    assert_int_equal((int64_t)woff, pos[5].off);
    for (int i = 0; i < 20; i++) {
        if (i < 5) expect_i(db, i, 1);
        else expect_absent_i(db, i);
    }
    eu_close(db);
    db = eu_open(work, NULL);
    assert_int_equal(calypso_len(db), 5);
    eu_close(db);
    tu_rmrf(work);
    tu_rmrf(dir);
}

/* The WATERMARK file itself: a slot torn by a crash falls back to the
 * other; both damaged, or naming a datafile that is gone, is
 * CALYPSO_ECORRUPT (auto_recovery goes on and rewrites it); a database
 * without one opens by the older rule and gets one at its first writable
 * open, not at a read-only one. */
static void test_watermark_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *work = tu_tmpdir();
    rec_pos pos[20];
    unsigned fid;
    uint64_t w = wm_setup(dir, pos, &fid);
    char data[1024], wmp[1024];
    eu_fid_path(data, sizeof data, work, fid, "data");
    eu_path(wmp, sizeof wmp, work, "WATERMARK");

    /* Slot 1 (seq 2) says w, slot 0 (seq 1) says 0; damage at record 5. */
    for (int torn = 0; torn < 3; torn++) {
        eu_copy_dir(dir, work);
        wm_write(work, fid, 0, 2, fid, w);
        if (torn == 1) eu_flip_byte(wmp, 512 + 20, 0x01);   /* slot 1 torn: seq 1 holds */
        if (torn == 2) eu_flip_byte(wmp, 20, 0x01);         /* slot 0 torn: seq 2 holds */
        eu_flip_byte(data, pos[5].end - 1, 0x01);
        if (torn == 1) {
            calypso *db = eu_open(work, NULL);          /* 0 synced: a torn tail */
            assert_int_equal(calypso_len(db), 5);
            eu_close(db);
        } else {
            expect_corrupt(work, NULL, "0000000001.data", "sync covered");
        }
    }

    /* Both slots damaged. */
    eu_copy_dir(dir, work);
    eu_flip_byte(wmp, 3, 0x01);
    eu_flip_byte(wmp, 512 + 3, 0x01);
    expect_corrupt(work, NULL, "WATERMARK", NULL);
    calypso_options ar = { 0 };
    ar.auto_recovery = 1;
    calypso *db = eu_open(work, &ar);
    assert_non_null(strstr(calypso_errmsg(db), "WATERMARK"));
    assert_int_equal(calypso_len(db), 20);
    eu_close(db);
    uint32_t wfid;
    uint64_t woff;
    wm_read(work, &wfid, &woff);                    /* rewritten: nothing known synced */
    assert_int_equal(woff, 0);
    db = eu_open(work, NULL);
    put_i(db, 20, 1);
    eu_close(db);                                   /* whose sync moves it */
    wm_read(work, &wfid, &woff);
    assert_int_equal(wfid, fid);
    assert_true((int64_t)woff > pos[19].end);

    /* Naming a datafile after the newest: it was synced, and is gone. */
    eu_copy_dir(dir, work);
    wm_write(work, fid + 1, 100, 0, 0, 0);
    expect_corrupt(work, NULL, "is missing", "0000000002.data");
    db = eu_open(work, &ar);
    assert_non_null(strstr(calypso_errmsg(db), "is missing"));
    wm_read(work, &wfid, &woff);
    assert_int_equal(wfid, fid);
    assert_int_equal(woff, 0);
    assert_int_equal(calypso_len(db), 20);
    eu_close(db);
    /* ... but naming it with nothing of it synced, only that the newest
     * file was sealed (synced whole): open goes on. */
    eu_copy_dir(dir, work);
    wm_write(work, fid + 1, 0, 0, 0, 0);
    db = eu_open(work, NULL);
    assert_int_equal(calypso_len(db), 20);
    eu_close(db);

    /* No WATERMARK: the older rule (valid records after the damage make it
     * damage, not a torn tail). A read-only open creates nothing. */
    eu_copy_dir(dir, work);
    assert_int_equal(unlink(wmp), 0);
    eu_flip_byte(data, pos[15].end - 1, 0x01);
    expect_corrupt(work, NULL, "0000000001.data", NULL);
    assert_null(strstr(calypso_errmsg(NULL), "sync covered"));
    eu_flip_byte(data, pos[15].end - 1, 0x01);
    calypso_options ro = { 0 };
    ro.read_only = 1;
    db = eu_open(work, &ro);
    eu_close(db);
    assert_false(eu_exists(wmp));
    db = eu_open(work, NULL);
    eu_close(db);
    assert_true(eu_exists(wmp));
    wm_read(work, &wfid, &woff);
    assert_int_equal(woff, 0);      /* what an earlier release synced is not known */
    tu_rmrf(work);
    tu_rmrf(dir);
}

/* The background thread writes the watermark after syncs, without a close
 * (the write path never does). */
static void test_watermark_follows_syncs(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = { 0 };
    o.ttl_sweep_interval_ms = 10;        /* the background thread wakes often */
    calypso *db = eu_open(dir, &o);
    uint32_t wfid;
    uint64_t woff;
    wm_read(dir, &wfid, &woff);
    assert_int_equal(woff, 0);           /* written at open: nothing synced yet */
    for (int i = 0; i < 50; i++) put_i(db, i, 1);
    EU_OK(db, calypso_sync(db));
    uint64_t t0 = eu_now_ms();
    do {
        eu_sleep_ms(10);
        wm_read(dir, &wfid, &woff);
    } while (woff == 0 && eu_now_ms() - t0 < 20000);
    assert_int_equal(wfid, 1);
    assert_true(woff > 50 * (KLEN + VLEN));
    uint64_t synced = woff;
    for (int i = 50; i < 60; i++) put_i(db, i, 1);   /* not synced: it stays */
    eu_sleep_ms(400);
    wm_read(dir, &wfid, &woff);
    assert_int_equal(woff, synced);
    eu_close(db);
    wm_read(dir, &wfid, &woff);
    assert_int_equal((int64_t)woff, eu_fid_size(dir, 1, "data"));
    tu_rmrf(dir);
}

// >> seal records -------------------------------------------------------------------

static int seal_entry_called(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    (void)r; (void)rec; (void)rel;
    (*(int *)ctx)++;
    return 0;
}

/* The seal record's codec at its limits: the largest id and size fit (a
 * value of 15 bytes), a value of 1 or 16 bytes is not a seal, nor one with
 * bytes past its two numbers; it yields no entry, and inside a batch it is
 * damage. */
static void test_seal_record_codec(void **state)
{
    (void)state;
    uint8_t rec[CY_REC_SEAL_MAX + 8];
    cy_rec r;
    uint32_t fid = 0;
    uint64_t size = 0;
    size_t n = cy_rec_encode_seal(rec, 7, 4059);
    assert_null(cy_rec_verify(rec, n, &r));
    assert_int_equal(r.type, CY_REC_SEAL);
    assert_int_equal(r.klen, 0);
    assert_int_equal(cy_rec_seal_of(rec, &r, &fid, &size), 0);
    assert_int_equal(fid, 7);
    assert_int_equal(size, 4059);
    int called = 0;
    assert_int_equal(cy_rec_entries(rec, &r, seal_entry_called, &called), CALYPSO_OK);
    assert_int_equal(called, 0);                    /* never an entry */

    n = cy_rec_encode_seal(rec, UINT32_MAX, UINT64_MAX);   /* 5 + 10 bytes */
    assert_int_equal(n, CY_REC_SEAL_MAX);
    assert_null(cy_rec_verify(rec, n, &r));
    assert_int_equal(r.vlen, 15);
    assert_int_equal(cy_rec_seal_of(rec, &r, &fid, &size), 0);
    assert_int_equal(fid, UINT32_MAX);
    assert_true(size == UINT64_MAX);

    /* A value of 1 byte, and of 16: not a seal header. */
    for (uint64_t vlen = 1; vlen <= 16; vlen += 15) {
        uint8_t h[CY_REC_MAX_HDR];
        cy_rec_header(h, CY_REC_SEAL, 0, 0, vlen);
        assert_int_equal(cy_rec_parse(h, sizeof h, &r), -1);
    }
    /* A third number after the two: parses, but names nothing. */
    uint8_t odd[32], pay[3] = { 7, 9, 1 };
    uint32_t h = cy_rec_header(odd, CY_REC_SEAL, 0, 0, sizeof pay);
    memcpy(odd + h, pay, sizeof pay);
    cy_put_u32(odd, cy_crc(odd + 4, h + sizeof pay - 4, NULL, 0));
    assert_null(cy_rec_verify(odd, h + sizeof pay, &r));
    assert_int_equal(cy_rec_seal_of(odd, &r, &fid, &size), -1);

    /* Inside a batch it is damage. */
    uint8_t batch[64];
    n = cy_rec_encode_seal(rec, 3, 100);
    h = cy_rec_header(batch, CY_REC_BATCH, 0, 0, n);
    memcpy(batch + h, rec, n);
    cy_put_u32(batch, cy_crc(batch + 4, h + n - 4, NULL, 0));
    assert_null(cy_rec_verify(batch, h + n, &r));
    assert_int_equal(cy_rec_entries(batch, &r, seal_entry_called, &called), CALYPSO_ECORRUPT);
}

/* Rotation seals a file before its sync (the background thread syncs it
 * soon after). A power loss before that can leave that file shorter, cut clean at a record
 * boundary (its length not yet durable) with no bad record to see, while
 * files written after it survive. The seal record at the head of the next
 * file names the length the file was sealed at: open keeps the writes up
 * to the lost part, drops the files after it (none was synced), and says
 * so; a read-only open leaves them in place and out of its view. */
static void test_sealed_file_shorter_than_its_seal(void **state)
{
    (void)state;
    enum { N = 200 };
    char *dir = tu_tmpdir(), *crash = tu_tmpdir(), *ro_copy = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;                 /* 33 records of 123 bytes */
    o.merge_trigger_ratio = -1;
    calypso *db = eu_open(dir, &o);
    /* The watermark as open wrote it: nothing synced yet. The background
     * thread syncs the sealed files and moves it soon after; a power loss
     * before that leaves this one, which the crashed copy gets. */
    char wm[1024];
    eu_path(wm, sizeof wm, dir, "WATERMARK");
    size_t wm_len = 0;
    char *wm_at_open = eu_read_file(wm, &wm_len);
    for (int i = 0; i < N; i++) put_i(db, i, 1);
    eu_copy_dir(dir, crash);                    /* as the machine lost power */
    eu_close(db);
    eu_path(wm, sizeof wm, crash, "WATERMARK");
    eu_write_file(wm, wm_at_open, wm_len);
    free(wm_at_open);

    rec_pos pos[N];
    locate_records(crash, N, pos);
    unsigned short_fid = pos[80].fid;
    int k = 0;
    while (pos[k].fid != short_fid) k++;
    k += 2;                                     /* its third record */
    assert_int_equal(pos[k].fid, short_fid);
    assert_true(pos[N - 1].fid > short_fid + 1); /* files after it */
    char path[1024];
    eu_fid_path(path, sizeof path, crash, short_fid, "data");
    eu_truncate(path, pos[k].off);              /* a record boundary */
    eu_copy_dir(crash, ro_copy);
    unsigned last = pos[N - 1].fid;

    db = eu_open(crash, &o);
    const char *m = calypso_errmsg(db);
    print_message("open said: %s\n", m);
    assert_non_null(strstr(m, "lost its end to a crash"));
    for (int i = 0; i < N; i++) {
        if (i < k) expect_i(db, i, 1);
        else expect_absent_i(db, i);
    }
    assert_int_equal(calypso_len(db), (uint64_t)k);
    for (unsigned f = short_fid + 1; f <= last; f++) {
        eu_fid_path(path, sizeof path, crash, f, "data");
        assert_false(eu_exists(path));
    }
    put_i(db, 1000, 1);
    eu_close(db);
    db = eu_open(crash, &o);                    /* the chain holds again */
    assert_string_equal(calypso_errmsg(db), "");
    for (int i = 0; i < k; i++) expect_i(db, i, 1);
    expect_i(db, 1000, 1);
    assert_int_equal(calypso_len(db), (uint64_t)k + 1);
    EU_OK(db, calypso_merge(db));               /* seals naming merged files */
    eu_close(db);
    db = eu_open(crash, &o);
    assert_string_equal(calypso_errmsg(db), "");
    assert_int_equal(calypso_len(db), (uint64_t)k + 1);
    eu_close(db);

    calypso_options ro = o;
    ro.read_only = 1;
    db = eu_open(ro_copy, &ro);
    assert_non_null(strstr(calypso_errmsg(db), "left out"));
    assert_int_equal(calypso_len(db), (uint64_t)k);
    eu_close(db);
    eu_fid_path(path, sizeof path, ro_copy, last, "data");
    assert_true(eu_exists(path));
    tu_rmrf(dir);
    tu_rmrf(crash);
    tu_rmrf(ro_copy);
}

/* argv: "kill" dir from to version [small]: opens, puts keys [from, to) at
 * version, deletes key `from - 1` if from > 0, then dies by SIGKILL without
 * closing. */
static int child_main(int argc, char **argv)
{
    CHILD_CHECK(argc >= 6 && strcmp(argv[1], "kill") == 0);
    const char *dir = argv[2];
    int from = atoi(argv[3]), to = atoi(argv[4]), version = atoi(argv[5]);
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.sync = CALYPSO_SYNC_NONE;
    if (argc > 6) o.max_datafile_size = 4096;
    calypso *db = NULL;
    int rc = calypso_open(dir, &o, &db);
    if (rc) fprintf(stderr, "child open: %s\n", calypso_errmsg(NULL));
    CHILD_CHECK(rc == CALYPSO_OK);
    for (int i = from; i < to; i++) child_put(db, i, version);
    if (from > 0) {
        char k[KLEN];
        key_of(k, from - 1);
        CHILD_CHECK(calypso_delete(db, k, KLEN) == CALYPSO_OK);
    }
    raise(SIGKILL);
    _exit(4);
}

static void run_killed_child(const char *dir, int from, int to, int version, int small)
{
    char a[16], b[16], c[16];
    snprintf(a, sizeof a, "%d", from);
    snprintf(b, sizeof b, "%d", to);
    snprintf(c, sizeof c, "%d", version);
    char *args[] = { (char *)"kill", (char *)dir, a, b, c, small ? (char *)"small" : NULL, NULL };
    int st = eu_run_self(args);
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
        print_error("child status %#x (exit %d)\n", st, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

static void test_kill9_after_clean_reopen(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    /* open, put a, close (clean). */
    calypso *db = eu_open(dir, NULL);
    put_i(db, 0, 1);
    eu_close(db);
    /* reopen, put b (and c), delete a2, kill -9. */
    db = eu_open(dir, NULL);
    put_i(db, 50, 1);
    eu_close(db);
    run_killed_child(dir, 1, 3, 1, 0);    /* puts 1, 2; deletes 0 */
    db = eu_open(dir, NULL);
    expect_absent_i(db, 0);
    expect_i(db, 1, 1);
    expect_i(db, 2, 1);
    expect_i(db, 50, 1);
    assert_int_equal(calypso_len(db), 3);
    eu_close(db);
    /* Killed twice in a row, then once more after a clean cycle. */
    run_killed_child(dir, 3, 5, 2, 0);    /* puts 3, 4; deletes 2 */
    run_killed_child(dir, 5, 6, 3, 0);    /* puts 5; deletes 4 */
    db = eu_open(dir, NULL);
    eu_close(db);
    run_killed_child(dir, 6, 7, 4, 0);    /* puts 6; deletes 5 */
    db = eu_open(dir, NULL);
    expect_i(db, 1, 1);
    expect_absent_i(db, 2);
    expect_i(db, 3, 2);
    expect_absent_i(db, 4);
    expect_absent_i(db, 5);
    expect_i(db, 6, 4);
    expect_i(db, 50, 1);
    assert_int_equal(calypso_len(db), 4);
    eu_close(db);
    tu_rmrf(dir);
}

static void test_kill9_during_rotations(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    int total = 0;
    int version[1000] = {0};      /* 0: absent */
    for (int round = 0; round < 4; round++) {
        int n = 150 + round * 40;
        run_killed_child(dir, total, total + n, round + 1, 1);
        for (int i = total; i < total + n; i++) version[i] = round + 1;
        if (total > 0) version[total - 1] = 0;
        total += n;
        calypso *db = eu_open(dir, &o);
        uint64_t live = 0;
        for (int i = 0; i < total; i++) {
            if (version[i]) { expect_i(db, i, version[i]); live++; }
            else expect_absent_i(db, i);
        }
        assert_int_equal(calypso_len(db), live);
        eu_close(db);
    }
    assert_true(eu_newest_fid(dir) > 10);
    tu_rmrf(dir);
}

// >> META ---------------------------------------------------------------------------

static void test_meta_newer_version(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    put_i(db, 1, 1);
    eu_close(db);
    char meta[1024];
    eu_path(meta, sizeof meta, dir, "META");
    size_t len;
    char *orig = eu_read_file(meta, &len);
    print_message("META: %s", orig);
    /* The first number in it is the format version. */
    size_t d = 0;
    while (d < len && !(orig[d] >= '0' && orig[d] <= '9')) d++;
    assert_true(d < len);
    char *end;
    long ver = strtol(orig + d, &end, 10);
    assert_true(ver >= 1);
    long bumps[] = { ver + 1, ver + 1000 };
    for (int b = 0; b < 2; b++) {
        char buf[256];
        int n = snprintf(buf, sizeof buf, "%.*s%ld%s", (int)d, orig, bumps[b], end);
        eu_write_file(meta, buf, (size_t)n);
        db = (calypso *)&db;
        EU_RC(NULL, CALYPSO_EVERSION, calypso_open(dir, NULL, &db));
        assert_null(db);
        assert_true(strlen(calypso_errmsg(NULL)) > 0);
        calypso_options ro;
        memset(&ro, 0, sizeof ro);
        ro.read_only = 1;
        EU_RC(NULL, CALYPSO_EVERSION, calypso_open(dir, &ro, &db));
        /* Refusing does not rewrite it. */
        size_t l2;
        char *now = eu_read_file(meta, &l2);
        assert_int_equal(l2, (size_t)n);
        assert_memory_equal(now, buf, l2);
        free(now);
    }
    eu_write_file(meta, orig, len);
    db = eu_open(dir, NULL);
    expect_i(db, 1, 1);
    eu_close(db);
    free(orig);
    tu_rmrf(dir);
}

/* A reopen that fails (here: META now names a newer format) leaves a
 * handle that refuses every call but close, and closing it is clean. */
static void test_failed_reopen_refuses_calls(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    put_i(db, 1, 1);
    char meta[1024];
    eu_path(meta, sizeof meta, dir, "META");
    size_t len;
    char *orig = eu_read_file(meta, &len);
    eu_write_file(meta, "calypso-format 999\n", 19);
    EU_RC(db, CALYPSO_EVERSION, calypso_reopen(db));
    assert_true(strlen(calypso_errmsg(db)) > 0);
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, 1);
    val_of(v, k, 1);
    void *got = (void *)&got;
    size_t glen = 3;
    assert_true(calypso_get(db, k, KLEN, &got, &glen) < 0);
    assert_null(got);
    assert_true(calypso_put(db, k, KLEN, v, VLEN) < 0);
    assert_true(calypso_delete(db, k, KLEN) < 0);
    assert_true(calypso_sync(db) < 0);
    assert_true(calypso_merge(db) < 0);
    struct calypso_stats st;
    assert_true(calypso_stats(db, &st) < 0);
    eu_keys ks = {0};
    assert_true(calypso_fold(db, eu_collect, &ks) < 0);
    assert_int_equal(ks.n, 0);
    calypso_close(db);
    /* Nothing was lost meanwhile. */
    eu_write_file(meta, orig, len);
    free(orig);
    db = eu_open(dir, NULL);
    expect_i(db, 1, 1);
    assert_int_equal(calypso_len(db), 1);
    eu_close(db);
    tu_rmrf(dir);
}

// >> failed writes -------------------------------------------------------------------

static void test_short_write_leaves_no_trace(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = eu_open(dir, NULL);
    for (int i = 0; i < 5; i++) put_i(db, i, 1);
    eu_close(db);
    rec_pos pos[5];
    locate_records(dir, 5, pos);
    int64_t rec = pos[4].end - pos[4].off;
    assert_true(rec > KLEN + VLEN);
    unsigned fid;
    int64_t s0 = newest_size(dir, &fid);
    db = eu_open(dir, NULL);

    cy_os_fail_at(CY_OS_PWRITE, 1, ENOSPC, 0, 1);
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, 5);
    val_of(v, k, 1);
    int rc = calypso_put(db, k, KLEN, v, VLEN);
    cy_os_fail_reset();
    assert_true(rc < 0);
    EU_RC(db, CALYPSO_ENOSPC, rc);
    assert_true(strlen(calypso_errmsg(db)) > 0);
    expect_absent_i(db, 5);
    assert_int_equal(calypso_len(db), 5);
    /* The disk is full: puts are refused at once, writing nothing, until
     * the space reserve is taken back (here by a reopen). */
    EU_RC(db, CALYPSO_ENOSPC, calypso_put(db, k, KLEN, v, VLEN));
    expect_absent_i(db, 5);
    eu_close(db);
    db = eu_open(dir, NULL);

    /* Still writable; the half record does not sit between good ones. */
    put_i(db, 6, 1);
    put_i(db, 2, 2);
    expect_i(db, 6, 1);
    eu_close(db);
    unsigned fid2;
    int64_t s1 = newest_size(dir, &fid2);
    assert_int_equal(fid2, fid);
    assert_int_equal(s1 - s0, 2 * rec);
    db = eu_open(dir, NULL);
    for (int i = 0; i < 5; i++) expect_i(db, i, i == 2 ? 2 : 1);
    expect_absent_i(db, 5);
    expect_i(db, 6, 1);
    eu_close(db);

    /* A failed tombstone write: the key stays. */
    db = eu_open(dir, NULL);
    cy_os_fail_at(CY_OS_PWRITE, 1, EIO, 0, 1);
    key_of(k, 3);
    rc = calypso_delete(db, k, KLEN);
    cy_os_fail_reset();
    EU_RC(db, CALYPSO_EIO, rc);
    expect_i(db, 3, 1);
    eu_close(db);
    db = eu_open(dir, NULL);
    expect_i(db, 3, 1);
    eu_close(db);
    tu_rmrf(dir);
}

static void test_failed_fdatasync_reported(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.sync = CALYPSO_SYNC_ALWAYS;
    calypso *db = eu_open(dir, &o);
    for (int i = 0; i < 3; i++) put_i(db, i, 1);
    cy_os_fail_at(CY_OS_FDATASYNC, 1, EIO, 0, 0);
    char k[KLEN];
    uint8_t v[VLEN];
    key_of(k, 3);
    val_of(v, k, 1);
    int rc = calypso_put(db, k, KLEN, v, VLEN);
    cy_os_fail_reset();
    /* Not acknowledged as durable. */
    EU_RC(db, CALYPSO_EIO, rc);
    assert_true(strlen(calypso_errmsg(db)) > 0);
    calypso_close(db);
    db = eu_open(dir, &o);
    for (int i = 0; i < 3; i++) expect_i(db, i, 1);
    put_i(db, 4, 1);
    eu_close(db);
    db = eu_open(dir, NULL);
    expect_i(db, 4, 1);
    eu_close(db);
    tu_rmrf(dir);
}

int main(int argc, char **argv)
{
    if (argc > 1) return child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_torn_tail_put),
        cmocka_unit_test(test_torn_tail_put_ttl),
        cmocka_unit_test(test_torn_tail_delete),
        cmocka_unit_test(test_torn_tail_many_files),
        cmocka_unit_test(test_zero_filled_tail),
        cmocka_unit_test(test_flipped_byte_sealed_file),
        cmocka_unit_test(test_flipped_byte_newest_file_middle),
        cmocka_unit_test(test_flipped_byte_found_on_get),
        cmocka_unit_test(test_damaged_hints),
        cmocka_unit_test(test_hint_order),
        cmocka_unit_test(test_sync_always_zeros_ahead),
        cmocka_unit_test(test_watermark_boundary),
        cmocka_unit_test(test_watermark_file),
        cmocka_unit_test(test_watermark_follows_syncs),
        cmocka_unit_test(test_kill9_after_clean_reopen),
        cmocka_unit_test(test_kill9_during_rotations),
        cmocka_unit_test(test_seal_record_codec),
        cmocka_unit_test(test_sealed_file_shorter_than_its_seal),
        cmocka_unit_test(test_meta_newer_version),
        cmocka_unit_test(test_failed_reopen_refuses_calls),
        cmocka_unit_test(test_short_write_leaves_no_trace),
        cmocka_unit_test(test_failed_fdatasync_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
