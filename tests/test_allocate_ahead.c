/*
 * test_allocate_ahead.c: the disk space allocated ahead of the active
 * file's data (files.c), and its cut when the file is sealed or closed.
 *
 * - The background thread's allocation (cy_files_allocate_ahead) is
 *   taken up by the writer without a fallocate of its own: with every
 *   fallocate of the writer's thread failing, puts past the writer's
 *   allocation but within the background one succeed; a value past both
 *   then fails with the error (the fault is real), and every value put
 *   before reads back, then and after a reopen.
 * - The writer asks for it: once less than half a chunk is left, the
 *   background thread allocates the next chunk (bg.allocate), within 5 s.
 * - Rotation does not cut the sealed file's allocated tail (shrinking a
 *   file waits for the file system's journal, and rotation runs under
 *   write_mu): with every ftruncate of the writer's thread failing, puts
 *   across rotations succeed. The sync of the sealed files cuts them:
 *   each datafile then holds its records and nothing more, and every
 *   value reads back after a reopen.
 * - A background allocation that rotation overtook (the file sealed with
 *   the allocation not taken up) is cut by the sync as well; one the
 *   active file holds at close is cut by the close.
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"
#include "testhooks.h"
#include "engine_util.h"

#include <errno.h>

#define AA_VLEN 1000

static calypso *aa_open(const char *dir, uint64_t file_bytes)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = file_bytes;
    o.merge_trigger_ratio = -1;
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    return db;
}

static void aa_value(char *val, int i)
{
    memset(val, 'a' + i % 26, AA_VLEN);
    snprintf(val, 16, "v%08d", i);
}

/* Puts keys [from, to); returns the first failure's code (OK if none). */
static int aa_put(calypso *db, int from, int to)
{
    char k[16], val[AA_VLEN];
    for (int i = from; i < to; i++) {
        snprintf(k, sizeof k, "k%08d", i);
        aa_value(val, i);
        int rc = calypso_put(db, k, 9, val, sizeof val);
        if (rc) return rc;
    }
    return CALYPSO_OK;
}

static void aa_expect(calypso *db, int n)
{
    char k[16], val[AA_VLEN], got[AA_VLEN + 8];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "k%08d", i);
        aa_value(val, i);
        size_t vl = 0;
        TU_OK(db, calypso_get_buf(db, k, 9, got, sizeof got, &vl));
        assert_int_equal(vl, AA_VLEN);
        assert_memory_equal(got, val, AA_VLEN);
    }
    assert_int_equal(calypso_len(db), (uint64_t)n);
}

/* Waits (up to 5 s) until the background thread has served the writer's
 * last request for allocation, if any. */
static void aa_wait_background(calypso *db)
{
    for (int i = 0; i < 5000 && __atomic_load_n(&db->bg.allocate, __ATOMIC_RELAXED); i++)
        eu_sleep_ms(1);
}

/* One allocation ahead of the active file, made here, after any the
 * background thread was asked for. */
static void aa_allocate_now(calypso *db)
{
    aa_wait_background(db);
    cy_files_allocate_ahead(db);
}

/* Keys of one record each that fit in `bytes` of a datafile. */
static int aa_keys_in(uint64_t bytes)
{
    return (int)(bytes / (AA_VLEN + 9 + CY_REC_MAX_HDR));
}

/* Every datafile in dir holds its records and nothing more: its size on
 * disk is the size the handle knows (db open). */
static void aa_files_cut(calypso *db, const char *dir)
{
    unsigned fids[64];
    int n = eu_list_fids(dir, "data", fids, 64);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        cy_file *f = cy_files_find(db, fids[i]);
        assert_non_null(f);
        if (f == db->files.active) continue;
        assert_int_equal(eu_fid_size(dir, fids[i], "data"), (int64_t)f->size);
    }
}

static void test_writer_takes_up_background_allocation(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = aa_open(dir, 64u << 20);
    int n = aa_keys_in(64u << 10);          /* well inside the first chunk */
    TU_OK(db, aa_put(db, 0, n));
    cy_file *a = db->files.active;
    /* The background thread may be asked already; wait for it, then
     * allocate one chunk more here. */
    aa_wait_background(db);
    pthread_mutex_lock(&db->write_mu);
    uint64_t writer_alloc = a->alloc;
    pthread_mutex_unlock(&db->write_mu);
    cy_files_allocate_ahead(db);
    uint64_t bg = __atomic_load_n(&a->alloc_bg, __ATOMIC_ACQUIRE);
    assert_true(bg > writer_alloc);
    char path[4096];
    eu_fid_path(path, sizeof path, dir, a->fid, "data");
    assert_true(eu_file_size(path) >= (int64_t)bg);
    /* Past the writer's allocation, within the background one: no
     * fallocate of the writer's own. */
    cy_os_fail_here(CY_OS_FALLOCATE, 1, ENOSPC, 1, 0);
    int m = n + aa_keys_in(writer_alloc - a->size) + aa_keys_in((bg - writer_alloc) / 2);
    int rc = aa_put(db, n, m);
    cy_os_fail_reset();
    TU_OK(db, rc);
    assert_true(a->size > writer_alloc);
    pthread_mutex_lock(&db->write_mu);
    assert_true(a->alloc >= bg);
    pthread_mutex_unlock(&db->write_mu);
    /* The fault is real: a value past anything allocated needs the
     * writer's own fallocate, which fails the put; nothing is lost. */
    size_t big = 16u << 20;
    char *v = calloc(1, big);
    assert_non_null(v);
    cy_os_fail_here(CY_OS_FALLOCATE, 1, ENOSPC, 1, 0);
    rc = calypso_put(db, "big", 3, v, big);
    cy_os_fail_reset();
    assert_int_equal(rc, CALYPSO_ENOSPC);
    assert_int_equal(db->files.active, a);
    free(v);
    int k = m;
    aa_expect(db, k);
    TU_OK(db, calypso_close(db));
    db = aa_open(dir, 64u << 20);
    aa_expect(db, k);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_writer_asks_for_allocation(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = aa_open(dir, 64u << 20);
    cy_file *a = db->files.active;
    TU_OK(db, aa_put(db, 0, 1));
    pthread_mutex_lock(&db->write_mu);
    uint64_t alloc = a->alloc, size = a->size;
    pthread_mutex_unlock(&db->write_mu);
    assert_true(alloc >= (1u << 20));
    /* Up to past the mark of half a chunk left: the writer asks. */
    uint64_t chunk = alloc / 8 < (1u << 20) ? (1u << 20) : alloc / 8;
    int n = 1 + aa_keys_in(alloc - size - chunk / 2) + 64;
    TU_OK(db, aa_put(db, 1, n));
    uint64_t bg = 0;
    for (int i = 0; i < 5000 && (bg = __atomic_load_n(&a->alloc_bg, __ATOMIC_ACQUIRE)) <= alloc;
         i++)
        eu_sleep_ms(1);
    assert_true(bg > alloc);
    aa_expect(db, n);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_rotation_leaves_the_cut_to_the_sync(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t file_bytes = 3u << 20;
    calypso *db = aa_open(dir, file_bytes);
    uint32_t first = db->files.active->fid;
    int n = aa_keys_in(file_bytes) * 3;      /* about three rotations */
    uint64_t cuts = cy_os_count_here(CY_OS_FTRUNCATE);
    cy_os_fail_here(CY_OS_FTRUNCATE, 1, EIO, 1, 0);
    int rc = aa_put(db, 0, n);
    cuts = cy_os_count_here(CY_OS_FTRUNCATE) - cuts;
    cy_os_fail_reset();
    TU_OK(db, rc);
    assert_int_equal(cuts, 0);
    assert_true(db->files.active->fid > first + 1);
    TU_OK(db, calypso_sync(db));            /* syncs the sealed files too */
    aa_files_cut(db, dir);
    aa_expect(db, n);
    TU_OK(db, calypso_close(db));
    db = aa_open(dir, file_bytes);
    aa_expect(db, n);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_overtaken_allocation_is_cut(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    uint64_t file_bytes = 8u << 20;
    calypso *db = aa_open(dir, file_bytes);
    int n = aa_keys_in(32u << 10);
    TU_OK(db, aa_put(db, 0, n));
    cy_file *a = db->files.active;
    uint32_t fid = a->fid;
    aa_allocate_now(db);
    uint64_t bg = __atomic_load_n(&a->alloc_bg, __ATOMIC_ACQUIRE);
    assert_true(bg > a->alloc);
    assert_true(eu_fid_size(dir, fid, "data") >= (int64_t)bg);
    /* A value too large for what is left seals the file. */
    size_t big = (size_t)(file_bytes - a->size);
    char *v = calloc(1, big);
    assert_non_null(v);
    TU_OK(db, calypso_put(db, "big", 3, v, big));
    assert_int_not_equal(db->files.active->fid, fid);
    TU_OK(db, calypso_sync(db));
    assert_int_equal(eu_fid_size(dir, fid, "data"), (int64_t)cy_files_find(db, fid)->size);
    TU_OK(db, calypso_delete(db, "big", 3));
    aa_expect(db, n);
    TU_OK(db, calypso_close(db));
    db = aa_open(dir, file_bytes);
    aa_expect(db, n);
    TU_OK(db, calypso_close(db));
    free(v);
    tu_rmrf(dir);
    /* One the active file holds at close: the close cuts it. */
    dir = tu_tmpdir();
    db = aa_open(dir, file_bytes);
    TU_OK(db, aa_put(db, 0, 8));
    a = db->files.active;
    uint32_t last = a->fid;
    aa_allocate_now(db);
    assert_true(__atomic_load_n(&a->alloc_bg, __ATOMIC_ACQUIRE) > a->size);
    assert_true(eu_fid_size(dir, last, "data") > (int64_t)a->size);
    uint64_t size = a->size;
    TU_OK(db, calypso_close(db));
    assert_int_equal(eu_fid_size(dir, last, "data"), (int64_t)size);
    db = aa_open(dir, file_bytes);
    aa_expect(db, 8);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writer_takes_up_background_allocation),
        cmocka_unit_test(test_writer_asks_for_allocation),
        cmocka_unit_test(test_rotation_leaves_the_cut_to_the_sync),
        cmocka_unit_test(test_overtaken_allocation_is_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
