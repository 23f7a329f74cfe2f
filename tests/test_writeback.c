/*
 * test_writeback.c: the background write-back of appended data.
 *
 *   - Under SYNC_NONE and SYNC_INTERVAL, every CY_DB_WRITEBACK bytes
 *     appended make the background thread start writing them back
 *     (sync_file_range), from where the last one stopped, so that close
 *     and rotation's fdatasync find little left: for a fill of 5.5 chunks
 *     at least one call and at most one per chunk (kicks that come while
 *     the thread is busy are served by one call), none for a fill smaller
 *     than one chunk.
 *   - Under SYNC_ALWAYS (every write synced anyway) none.
 *   - A failing write-back changes nothing: every value reads back, close
 *     succeeds (it only starts I/O; durability is fdatasync's).
 *   - Write-back first drops the range's pages from the writable mapping
 *     (files.c, "write-back through the mapping"), while readers read
 *     them: every value reads back during and after it, and a copy of
 *     the files taken with the handle still open (what a kill -9 leaves)
 *     holds every value, so dropping the pages lost none.
 *   - Every CY_DB_WRITEBACK_SYNC bytes the round is a full sync: with no
 *     call to calypso_sync, the sync watermark passes that many bytes, and
 *     a power loss then (simulated: every unsynced byte dropped) keeps
 *     every put it covered.
 *   - The writer fills the mapping's page tables ahead of its data, a
 *     stretch at a time (files.c, CY_FILES_POPULATE): under SYNC_NONE up
 *     to 1 MiB past the data, never past the space allocated, the pages
 *     there in memory (mincore) where the kernel can populate; under
 *     SYNC_ALWAYS no further than the zeros it writes ahead; never past
 *     the data once the file is cut back; every value reads back after a
 *     reopen, nothing past the data.
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"
#include "testhooks.h"
#include "engine_util.h"

#include <pthread.h>

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

static calypso *wb_open(const char *dir, int sync)
{
    calypso_options o;
    calypso_options_default(&o);
    o.sync = sync;
    o.merge_trigger_ratio = -1;
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    return db;
}

/* Puts `bytes` of 1 KiB values; returns the number of keys. */
static int wb_fill(calypso *db, uint64_t bytes)
{
    static char val[1024];
    memset(val, 'w', sizeof val);
    char k[16];
    int n = 0;
    for (uint64_t done = 0; done < bytes; done += sizeof val + 16, n++) {
        snprintf(k, sizeof k, "w%08d", n);
        memcpy(val, k, 9);
        TU_OK(db, calypso_put(db, k, 9, val, sizeof val));
    }
    return n;
}

/* Closes db, opens dir again, checks that it holds n keys, and removes
 * dir. */
static void wb_close_expect(calypso *db, char *dir, int n)
{
    TU_OK(db, calypso_close(db));
    db = wb_open(dir, CALYPSO_SYNC_NONE);
    assert_int_equal(calypso_len(db), (uint64_t)n);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* Waits up to 5 s for at least `want` write-backs. */
static uint64_t wb_wait(uint64_t base, uint64_t want)
{
    for (int i = 0; i < 500 && cy_os_count(CY_OS_WRITEBACK) - base < want; i++) usleep(10000);
    return cy_os_count(CY_OS_WRITEBACK) - base;
}

/* Whether this kernel fills page tables on request (Linux 5.14). */
static int wb_can_populate(void)
{
#ifdef MADV_POPULATE_WRITE
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    void *p = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return 0;
    int ok = madvise(p, pg, MADV_POPULATE_WRITE) == 0;
    munmap(p, pg);
    return ok;
#else
    return 0;
#endif
}

/* Pages of [from, to) of the active file's mapping in memory. */
static size_t wb_resident(calypso *db, uint64_t from, uint64_t to)
{
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m = db->files.active->map;
    from &= ~(uint64_t)(pg - 1);
    size_t pages = (size_t)((to - from + pg - 1) / pg), n = 0;
    unsigned char *vec = malloc(pages);
    assert_non_null(vec);
    assert_int_equal(mincore(m + from, (size_t)(to - from), vec), 0);
    for (size_t i = 0; i < pages; i++) n += vec[i] & 1;
    free(vec);
    return n;
}

static void test_page_tables_filled_ahead_of_the_data(void **state)
{
    (void)state;
    int can = wb_can_populate();
    print_message("MADV_POPULATE_WRITE %s\n", can ? "works" : "is not available");
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *dir = tu_tmpdir();
    calypso *db = wb_open(dir, CALYPSO_SYNC_NONE);
    int n = wb_fill(db, 100 << 10);
    cy_file *a = db->files.active;
    uint64_t want = a->size + (1u << 20) < a->alloc ? a->size + (1u << 20) : a->alloc;
    assert_true(a->populated >= want);          /* up to 1 MiB ahead ...     */
    assert_true(a->populated <= a->alloc);      /* ... never past the space  */
    assert_true(a->populated - a->size <= (2u << 20));
    if (can) {
        uint64_t from = (a->size + pg - 1) & ~(uint64_t)(pg - 1);
        size_t pages = (size_t)((a->populated - from) / pg);
        assert_true(pages > 0);
        assert_int_equal(wb_resident(db, from, from + pages * pg), pages);
    }
    /* The stretch moves on with the data. */
    uint64_t before = a->populated;
    n = wb_fill(db, 2u << 20);                  /* the same keys and more */
    assert_true(a->populated > before);
    assert_true(a->populated >= a->size);
    wb_close_expect(db, dir, n);

    /* Every write synced (SYNC_ALWAYS): written by pwrite, not through the
     * mapping, whose page tables are then never filled for writing; the
     * zeros still go ahead of the data, within the space allocated. */
    dir = tu_tmpdir();
    db = wb_open(dir, CALYPSO_SYNC_ALWAYS);
    for (int i = 0; i < 40; i++) {
        n = wb_fill(db, 2000);
        a = db->files.active;
        assert_int_equal(a->populated, 0);
        assert_true(a->zeroed >= a->size);
        assert_true(a->zeroed <= a->alloc);
    }
    wb_close_expect(db, dir, n);

    /* An application that syncs after its writes (calypso_sync) writes
     * through the mapping, filled no further than the zeros ahead. */
    dir = tu_tmpdir();
    db = wb_open(dir, CALYPSO_SYNC_NONE);
    TU_OK(db, calypso_sync(db));
    for (int i = 0; i < 40; i++) {
        n = wb_fill(db, 2000);
        TU_OK(db, calypso_sync(db));
        a = db->files.active;
        assert_true(a->populated <= a->zeroed);
        assert_true(a->populated >= a->size);
    }
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_writeback_follows_the_writes(void **state)
{
    (void)state;
    for (int sync = CALYPSO_SYNC_NONE; sync <= CALYPSO_SYNC_INTERVAL; sync++) {
        char *dir = tu_tmpdir();
        calypso *db = wb_open(dir, sync);
        uint64_t base = cy_os_count(CY_OS_WRITEBACK);
        wb_fill(db, CY_DB_WRITEBACK / 2);
        usleep(200000);
        assert_int_equal(cy_os_count(CY_OS_WRITEBACK) - base, 0);   /* less than a chunk */
        wb_fill(db, 5ull * CY_DB_WRITEBACK);
        uint64_t got = wb_wait(base, 5);
        print_message("sync mode %d: %llu write-backs for %u MiB appended\n", sync,
                      (unsigned long long)got, 5 * (CY_DB_WRITEBACK >> 20) + (CY_DB_WRITEBACK >> 21));
        assert_true(got >= 1 && got <= 5);
        TU_OK(db, calypso_close(db));
        tu_rmrf(dir);
    }
}

static void test_no_writeback_when_every_write_syncs(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = wb_open(dir, CALYPSO_SYNC_ALWAYS);
    calypso_batch *b;
    static char val[60000];
    memset(val, 'a', sizeof val);
    uint64_t base = cy_os_count(CY_OS_WRITEBACK);
    char k[32];
    for (int j = 0; j < 12; j++) {              /* 12 batches of ~1.8 MB, one sync each */
        TU_OK(db, calypso_batch_open(db, &b));
        for (int i = 0; i < 30; i++) {
            snprintf(k, sizeof k, "a%02d%03d", j % 100, i % 1000);
            TU_OK(db, calypso_batch_put(b, k, 6, val, sizeof val));
        }
        TU_OK(db, calypso_batch_commit(b));
    }
    usleep(300000);
    assert_int_equal(cy_os_count(CY_OS_WRITEBACK) - base, 0);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

static void test_failing_writeback_changes_nothing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *db = wb_open(dir, CALYPSO_SYNC_NONE);
    cy_os_fail_at(CY_OS_WRITEBACK, 1, EIO, 1, 0);   /* every one fails */
    uint64_t base = cy_os_count(CY_OS_WRITEBACK);
    int n = wb_fill(db, 3ull * CY_DB_WRITEBACK);
    assert_true(wb_wait(base, 2) >= 2);
    cy_os_fail_reset();
    TU_OK(db, calypso_close(db));
    db = wb_open(dir, CALYPSO_SYNC_NONE);
    assert_int_equal(calypso_len(db), (uint64_t)n);
    char k[16], buf[1100];
    size_t vl;
    for (int i = 0; i < n; i += 97) {
        snprintf(k, sizeof k, "w%08d", i);
        TU_OK(db, calypso_get_buf(db, k, 9, buf, sizeof buf, &vl));
        assert_int_equal(vl, 1024);
        assert_memory_equal(buf, k, 9);
    }
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

struct wb_reader {
    calypso *db;
    int      stop;     /* atomic */
    int      upto;     /* keys below it exist (atomic) */
    uint64_t reads, bad;
};

static void *wb_read_loop(void *arg)
{
    struct wb_reader *r = arg;
    uint64_t s = 7;
    char k[16], buf[1100];
    size_t vl;
    while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE)) {
        int upto = __atomic_load_n(&r->upto, __ATOMIC_ACQUIRE);
        if (upto == 0) continue;
        snprintf(k, sizeof k, "w%08d", (int)tu_below(&s, (uint64_t)upto));
        int rc = calypso_get_buf(r->db, k, 9, buf, sizeof buf, &vl);
        if (rc != CALYPSO_OK || vl != 1024 || memcmp(buf, k, 9) != 0 || buf[1023] != 'w') r->bad++;
        r->reads++;
    }
    return NULL;
}

static void test_written_back_pages_stay_readable_and_in_the_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir(), *copy = tu_tmpdir();
    calypso *db = wb_open(dir, CALYPSO_SYNC_NONE);
    struct wb_reader r = { .db = db };
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, wb_read_loop, &r), 0);
    uint64_t base = cy_os_count(CY_OS_WRITEBACK);
    static char val[1024];
    memset(val, 'w', sizeof val);
    char k[16];
    int n = 0;
    for (uint64_t done = 0; done < 4ull * CY_DB_WRITEBACK; done += sizeof val + 16, n++) {
        snprintf(k, sizeof k, "w%08d", n);
        memcpy(val, k, 9);
        TU_OK(db, calypso_put(db, k, 9, val, sizeof val));
        __atomic_store_n(&r.upto, n + 1, __ATOMIC_RELEASE);
    }
    uint64_t got = wb_wait(base, 3);
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELEASE);
    pthread_join(t, NULL);
    print_message("%llu write-backs, %llu reads during them\n", (unsigned long long)got,
                  (unsigned long long)r.reads);
    assert_true(got >= 3);
    assert_int_equal(r.bad, 0);
    eu_copy_dir(dir, copy);   /* the handle is still open: no sync since */
    calypso *c = wb_open(copy, CALYPSO_SYNC_NONE);
    assert_int_equal(calypso_len(c), (uint64_t)n);
    char buf[1100];
    size_t vl;
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "w%08d", i);
        TU_OK(db, calypso_get_buf(db, k, 9, buf, sizeof buf, &vl));
        assert_true(vl == 1024 && memcmp(buf, k, 9) == 0 && buf[1023] == 'w');
        TU_OK(c, calypso_get_buf(c, k, 9, buf, sizeof buf, &vl));
        assert_true(vl == 1024 && memcmp(buf, k, 9) == 0 && buf[1023] == 'w');
    }
    TU_OK(c, calypso_close(c));
    TU_OK(db, calypso_close(db));
    tu_rmrf(copy);
    tu_rmrf(dir);
}

static void test_writeback_syncs_every_so_often(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    cy_os_powerloss_begin();
    calypso *db = wb_open(dir, CALYPSO_SYNC_NONE);
    uint64_t base = cy_os_count(CY_OS_FDATASYNC);
    enum { VLEN = 1024 };
    static char val[VLEN];
    memset(val, 's', sizeof val);
    int n = (int)((CY_DB_WRITEBACK_SYNC + 2ull * CY_DB_WRITEBACK) / (VLEN + 16)) + 1;
    uint64_t *seq_after = calloc((size_t)n, sizeof *seq_after);
    assert_non_null(seq_after);
    char k[16];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "s%08d", i);
        memcpy(val, k, 9);
        TU_OK(db, calypso_put(db, k, 9, val, sizeof val));
        seq_after[i] = db->sync.written_seq;   /* this thread is the writer */
    }
    uint64_t synced = 0;
    for (int i = 0; i < 1000 && synced < CY_DB_WRITEBACK_SYNC; i++) {
        synced = __atomic_load_n(&db->sync.synced_seq, __ATOMIC_ACQUIRE);
        if (synced < CY_DB_WRITEBACK_SYNC) usleep(10000);
    }
    print_message("synced %llu of %llu bytes appended, %llu fdatasyncs, no calypso_sync\n",
                  (unsigned long long)synced, (unsigned long long)seq_after[n - 1],
                  (unsigned long long)(cy_os_count(CY_OS_FDATASYNC) - base));
    assert_true(synced >= CY_DB_WRITEBACK_SYNC);
    int covered = 0;
    while (covered < n && seq_after[covered] <= synced) covered++;
    cy_os_powerloss_crash(CY_OS_PL_DROP, 1);   /* every unsynced byte is gone */
    calypso_close(db);                          /* fails: the table is frozen */
    cy_os_powerloss_end();
    db = wb_open(dir, CALYPSO_SYNC_NONE);
    char buf[VLEN + 8];
    size_t vl;
    for (int i = 0; i < covered; i++) {
        snprintf(k, sizeof k, "s%08d", i);
        TU_OK(db, calypso_get_buf(db, k, 9, buf, sizeof buf, &vl));
        assert_true(vl == VLEN && memcmp(buf, k, 9) == 0);
    }
    print_message("%d of %d puts covered by the background sync, all there after the power loss\n",
                  covered, n);
    assert_true(covered > 0);
    TU_OK(db, calypso_close(db));
    free(seq_after);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_writeback_follows_the_writes),
        cmocka_unit_test(test_no_writeback_when_every_write_syncs),
        cmocka_unit_test(test_failing_writeback_changes_nothing),
        cmocka_unit_test(test_written_back_pages_stay_readable_and_in_the_file),
        cmocka_unit_test(test_writeback_syncs_every_so_often),
        cmocka_unit_test(test_page_tables_filled_ahead_of_the_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
