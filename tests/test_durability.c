/*
 * test_durability.c: what a failed fdatasync leaves, and what a handle
 * does in a process that did not open it.
 *
 *   - Sticky fsync errors: 8 writers under CALYPSO_SYNC_ALWAYS, the nth
 *     fdatasync of a datafile failing with EIO, for every n of a bounded
 *     run. Linux reports a writeback error once, so a second fdatasync
 *     would succeed over pages the kernel dropped: after the failure no
 *     datafile fdatasync may run again, no put may return OK unless a sync
 *     before the failure covered it, every later write fails with
 *     CALYPSO_EIO, close returns the error, and a reopen holds every
 *     acknowledged put. In every run, failing or clean, a put returns OK
 *     only after a datafile fdatasync that began after the put did. The
 *     counts and the failure cover datafiles only: the background thread
 *     syncs WATERMARK on its own schedule, which on a slow machine falls
 *     inside a run.
 *   - Rotation's fdatasync failing breaks the handle the same way.
 *   - fork: a child that uses or closes an inherited handle gets
 *     CALYPSO_EINVAL and touches no file; the parent goes on writing.
 */
#include "testutil.h"
#include "calypso.h"
#include "engine.h"

#include <errno.h>
#include <pthread.h>
#include <sys/wait.h>

#define DU_WRITERS 8
#define DU_PUTS    40      /* per writer and run */

typedef struct du_run {
    calypso  *db;
    uint64_t  fail_at;        /* the fdatasync number that fails          */
    int       stop;
    /* per writer: which puts were acknowledged, and how each ended */
    uint8_t   acked[DU_WRITERS][DU_PUTS];
    int       rc[DU_WRITERS][DU_PUTS];
    uint64_t  syncs_before[DU_WRITERS][DU_PUTS];   /* datafile fdatasyncs at put start */
    uint64_t  syncs_after[DU_WRITERS][DU_PUTS];    /* and when it returned             */
} du_run;

typedef struct du_arg { du_run *r; int id; } du_arg;

static void *du_writer(void *arg)
{
    du_run *r = ((du_arg *)arg)->r;
    int id = ((du_arg *)arg)->id;
    char k[32], v[64];
    for (int i = 0; i < DU_PUTS; i++) {
        int kl = snprintf(k, sizeof k, "w%d-%03d", id, i);
        int vl = snprintf(v, sizeof v, "value of w%d-%03d", id, i);
        r->syncs_before[id][i] = cy_os_count(CY_OS_FDATASYNC);
        int rc = calypso_put(r->db, k, (size_t)kl, v, (size_t)vl);
        r->syncs_after[id][i] = cy_os_count(CY_OS_FDATASYNC);
        r->rc[id][i] = rc;
        r->acked[id][i] = rc == CALYPSO_OK;
    }
    return NULL;
}

/* One run with the fail_at-th datafile fdatasync from now failing (0:
 * none). Returns how many datafile fdatasyncs the run made. The background
 * thread wakes every millisecond and writes WATERMARK whenever a sync moved
 * it, so that its syncs fall between the writers' in every run, as they do
 * now and then on a slow machine at the default period. */
static uint64_t du_run_once(const char *dir, uint64_t fail_at, int check)
{
    calypso_options o;
    calypso_options_default(&o);
    o.sync = CALYPSO_SYNC_ALWAYS;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = 1;
    du_run *r = calloc(1, sizeof *r);
    assert_non_null(r);
    TU_OK(NULL, calypso_open(dir, &o, &r->db));
    cy_os_count_reset();
    if (fail_at) cy_os_fail_at(CY_OS_FDATASYNC, fail_at, EIO, 0, 0);
    pthread_t th[DU_WRITERS];
    du_arg args[DU_WRITERS];
    for (int i = 0; i < DU_WRITERS; i++) {
        args[i] = (du_arg){ r, i };
        assert_int_equal(pthread_create(&th[i], NULL, du_writer, &args[i]), 0);
    }
    for (int i = 0; i < DU_WRITERS; i++) pthread_join(th[i], NULL);
    uint64_t syncs = cy_os_count(CY_OS_FDATASYNC);
    cy_os_fail_reset();
    /* An acknowledged put was covered by a sync its bytes preceded, which
     * began after the put did: one more datafile fdatasync at least. */
    int unsynced_ok = 0;
    for (int w = 0; w < DU_WRITERS; w++)
        for (int i = 0; i < DU_PUTS; i++)
            if (check && r->rc[w][i] == CALYPSO_OK &&
                r->syncs_after[w][i] <= r->syncs_before[w][i]) {
                if (!unsynced_ok++)
                    print_error("w%d-%03d returned OK with no datafile fdatasync begun during "
                                "it (%llu before and after)\n", w, i,
                                (unsigned long long)r->syncs_before[w][i]);
            }
    assert_int_equal(unsynced_ok, 0);
    int failed = fail_at && syncs >= fail_at;
    if (check && failed) {
        /* The failed call was the last: nothing tried to sync it clean. */
        if (syncs != fail_at)
            print_error("datafile fdatasync #%llu failed, yet %llu were made\n",
                        (unsigned long long)fail_at, (unsigned long long)syncs);
        assert_int_equal(syncs, fail_at);
        int later_ok = 0, errors = 0;
        for (int w = 0; w < DU_WRITERS; w++)
            for (int i = 0; i < DU_PUTS; i++) {
                int rc = r->rc[w][i];
                assert_true(rc == CALYPSO_OK || rc == CALYPSO_EIO);
                errors += rc == CALYPSO_EIO;
                /* A put that began once the failed call had been made
                 * cannot have been covered by a successful one. */
                if (rc == CALYPSO_OK && r->syncs_before[w][i] >= fail_at) later_ok++;
            }
        assert_int_equal(later_ok, 0);
        assert_true(errors > 0);
        /* Every write from now on fails, and says why. */
        int rc = calypso_put(r->db, "after", 5, "x", 1);
        assert_int_equal(rc, CALYPSO_EIO);
        assert_non_null(strstr(calypso_errmsg(r->db), "fdatasync"));
        assert_int_equal(calypso_delete(r->db, "w0-000", 6), CALYPSO_EIO);
        assert_int_equal(calypso_sync(r->db), CALYPSO_EIO);
        /* Reads still work. */
        void *v = NULL;
        size_t vl = 0;
        for (int w = 0; w < DU_WRITERS; w++)
            for (int i = 0; i < DU_PUTS; i++)
                if (r->acked[w][i]) {
                    char k[32];
                    int kl = snprintf(k, sizeof k, "w%d-%03d", w, i);
                    TU_OK(r->db, calypso_get(r->db, k, (size_t)kl, &v, &vl));
                    calypso_free(v);
                }
        assert_int_equal(calypso_close(r->db), CALYPSO_EIO);
    } else {
        TU_OK(r->db, calypso_close(r->db));
    }
    if (check) {
        /* A reopen holds every acknowledged put. */
        calypso *db;
        TU_OK(NULL, calypso_open(dir, &o, &db));
        for (int w = 0; w < DU_WRITERS; w++)
            for (int i = 0; i < DU_PUTS; i++) {
                if (!r->acked[w][i]) continue;
                char k[32], want[64];
                int kl = snprintf(k, sizeof k, "w%d-%03d", w, i);
                int wl = snprintf(want, sizeof want, "value of w%d-%03d", w, i);
                void *v = NULL;
                size_t vl = 0;
                TU_OK(db, calypso_get(db, k, (size_t)kl, &v, &vl));
                assert_int_equal(vl, (size_t)wl);
                assert_memory_equal(v, want, vl);
                calypso_free(v);
            }
        TU_OK(db, calypso_close(db));
    }
    free(r);
    return syncs;
}

static int du_scope_all(void **state)
{
    (void)state;
    cy_os_sync_scope(NULL);
    cy_wm_set_interval(CY_WM_INTERVAL_MS);
    return 0;
}

static void test_fsync_error_is_sticky(void **state)
{
    (void)state;
    cy_wm_set_interval(0);
    /* WATERMARK's syncs do fall inside runs. */
    uint64_t wm_syncs = 0;
    cy_os_sync_scope("WATERMARK");
    for (int i = 0; i < 5 && !wm_syncs; i++) {
        char *wdir = tu_tmpdir();
        wm_syncs = du_run_once(wdir, 0, 0);
        tu_rmrf(wdir);
    }
    print_message("WATERMARK synced %llu times during a run\n", (unsigned long long)wm_syncs);
    assert_true(wm_syncs > 0);
    cy_os_sync_scope(".data");
    char *dir = tu_tmpdir();
    uint64_t clean = du_run_once(dir, 0, 1);
    tu_rmrf(dir);
    print_message("a clean run of %d writers x %d puts made %llu fdatasyncs\n", DU_WRITERS,
                  DU_PUTS, (unsigned long long)clean);
    assert_true(clean > 2);
    /* Every n of the run (runs differ in how writers group, so the count
     * is a bound, not exact: n past a run's end fails nothing). */
    uint64_t runs = 0, hit = 0;
    for (uint64_t n = 1; n <= clean; n++) {
        dir = tu_tmpdir();
        uint64_t s = du_run_once(dir, n, 1);
        hit += s >= n;
        runs++;
        tu_rmrf(dir);
    }
    print_message("%llu runs, %llu with the failure injected\n", (unsigned long long)runs,
                  (unsigned long long)hit);
    assert_true(hit > 0);
}

/* Opens dir under CALYPSO_SYNC_ALWAYS, the options left in *o. */
static calypso *du_open_always(const char *dir, calypso_options *o)
{
    calypso_options_default(o);
    o->sync = CALYPSO_SYNC_ALWAYS;
    calypso *db;
    TU_OK(NULL, calypso_open(dir, o, &db));
    return db;
}

/* The failing leader records the error (sync_err) and then marks the
 * handle broken: a writer that looks in between, sees the error and not
 * yet the mark, gets CALYPSO_EIO for its unsynced put, never OK. The
 * handle is put in that state by hand, as the window leaves it; the
 * threaded test above meets it only now and then. */
static void test_sync_error_seen_before_broken(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso *db = du_open_always(dir, &o);
    TU_OK(db, calypso_put(db, "synced", 6, "1", 1));
    __atomic_store_n(&db->health.sync_err, -EIO, __ATOMIC_RELEASE);
    assert_int_equal(__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED), 0);
    cy_os_sync_scope(".data");
    uint64_t syncs = cy_os_count(CY_OS_FDATASYNC);
    assert_int_equal(calypso_put(db, "unsynced", 8, "2", 1), CALYPSO_EIO);
    assert_non_null(strstr(calypso_errmsg(db), "fdatasync"));
    assert_int_equal(calypso_sync(db), CALYPSO_EIO);
    assert_int_equal(calypso_close(db), CALYPSO_EIO);
    /* No datafile sync was tried over the error. */
    assert_int_equal(cy_os_count(CY_OS_FDATASYNC), syncs);
    cy_os_sync_scope(NULL);
    TU_OK(NULL, calypso_open(dir, &o, &db));
    void *v = NULL;
    size_t vl = 0;
    TU_OK(db, calypso_get(db, "synced", 6, &v, &vl));
    calypso_free(v);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* Rotation seals a file without waiting for its sync: the writer that
 * rotates makes no fdatasync and no directory fsync of its own under
 * CALYPSO_SYNC_NONE (the background thread makes them), yet every sealed
 * file and every new name is durable once calypso_sync returns, and the
 * data is all there after a reopen. */
static void test_rotation_does_not_sync_on_the_writer_path(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tu_opts_small_files();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char v[1000];
    memset(v, 'v', sizeof v);
    uint64_t data0 = cy_os_count_here(CY_OS_FDATASYNC), dir0 = cy_os_count_here(CY_OS_FSYNC);
    uint64_t all0 = cy_os_count(CY_OS_FDATASYNC);
    struct calypso_stats st;
    for (int i = 0; i < 200; i++) {
        char k[8];
        int kl = snprintf(k, sizeof k, "k%03d", i);
        TU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
    }
    TU_OK(db, calypso_stats(db, &st));
    assert_true(st.datafiles >= 40);   /* about 50 rotations */
    assert_int_equal(cy_os_count_here(CY_OS_FDATASYNC), data0);
    assert_int_equal(cy_os_count_here(CY_OS_FSYNC), dir0);
    /* calypso_sync makes the last sealed file and the active one durable
     * itself; the background thread made the others (or this call did). */
    TU_OK(db, calypso_sync(db));
    assert_true(cy_os_count(CY_OS_FDATASYNC) - all0 >= 40);
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    tu_expect_keys(db, "k%03d", 200, sizeof v);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* The sync of a sealed file, wherever it runs (the background thread, the
 * next calypso_sync), fails sticky like any other: the handle refuses
 * writes, close returns the error without syncing again, and a reopen has
 * what was there. */
static void test_rotation_fsync_error_breaks_the_handle(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tu_opts_small_files();
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char v[1000];
    memset(v, 'v', sizeof v);
    TU_OK(db, calypso_put(db, "a", 1, v, sizeof v));
    /* Closed and opened again, so that no sync moves the watermark after
     * this point: close has no fdatasync of WATERMARK to make below. The
     * open wrote the next id limit (ids.c), so the first fdatasync from
     * here is the sync of the first sealed file, which fails. */
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    cy_os_fail_at(CY_OS_FDATASYNC, 1, EIO, 0, 0);
    int rc = CALYPSO_OK;
    for (int i = 0; i < 20 && rc == CALYPSO_OK; i++) {   /* four rotations or so */
        char k[8];
        int kl = snprintf(k, sizeof k, "k%d", i);
        rc = calypso_put(db, k, (size_t)kl, v, sizeof v);
    }
    /* The background thread may have met the failure already (then a put
     * reported it); otherwise this sync meets it. */
    if (rc == CALYPSO_OK) rc = calypso_sync(db);
    cy_os_fail_reset();
    assert_int_equal(rc, CALYPSO_EIO);
    uint64_t before = cy_os_count(CY_OS_FDATASYNC);
    assert_int_equal(calypso_put(db, "b", 1, "x", 1), CALYPSO_EIO);
    assert_int_equal(calypso_sync(db), CALYPSO_EIO);
    assert_int_equal(calypso_close(db), CALYPSO_EIO);
    assert_int_equal(cy_os_count(CY_OS_FDATASYNC), before);   /* nothing retried */
    TU_OK(NULL, calypso_open(dir, &o, &db));
    void *got = NULL;
    size_t gl = 0;
    TU_OK(db, calypso_get(db, "a", 1, &got, &gl));
    calypso_free(got);
    TU_OK(db, calypso_put(db, "c", 1, "x", 1));
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* A forked child that closes an inherited handle used to cut the parent's
 * active file (the parent then died of SIGBUS on its next write). */
static void test_fork_child_cannot_use_the_handle(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    TU_OK(db, calypso_put(db, "before", 6, "1", 1));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int bad = 0;
        void *v = NULL;
        size_t vl = 0;
        bad |= calypso_put(db, "child", 5, "x", 1) != CALYPSO_EINVAL;
        bad |= calypso_get(db, "before", 6, &v, &vl) != CALYPSO_EINVAL;
        bad |= strstr(calypso_errmsg(db), "another process") == NULL;
        bad |= calypso_delete(db, "before", 6) != CALYPSO_EINVAL;
        bad |= calypso_merge(db) != CALYPSO_EINVAL;
        bad |= calypso_sync(db) != CALYPSO_EINVAL;
        bad |= calypso_close(db) != CALYPSO_EINVAL;
        _exit(bad ? 1 : 0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The parent's handle and files are untouched: writes go on. */
    char v[200];
    memset(v, 'p', sizeof v);
    for (int i = 0; i < 2000; i++) {
        char k[16];
        int kl = snprintf(k, sizeof k, "p%05d", i);
        TU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
    }
    assert_int_equal(calypso_has(db, "child", 5), 0);
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    assert_int_equal(calypso_has(db, "before", 6), 1);
    assert_int_equal(calypso_has(db, "p01999", 6), 1);
    assert_int_equal(calypso_len(db), 2001u);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* An update begun before fork() cannot be committed by the child: it
 * writes through the parent's mapping under the parent's lock. The child
 * gets CALYPSO_EINVAL; the parent rolls back and nothing of it is there. */
static void test_fork_child_cannot_commit_the_parents_update(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    calypso_txn *tx = NULL;
    TU_OK(db, calypso_update_begin(db, &tx));
    TU_OK(db, calypso_txn_put(tx, "child", 5, "x", 1));
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(calypso_txn_commit(tx) == CALYPSO_EINVAL ? 0 : 1);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    calypso_txn_rollback(tx);
    assert_int_equal(calypso_has(db, "child", 5), 0);
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    assert_int_equal(calypso_has(db, "child", 5), 0);
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

/* A failed fdatasync reports CALYPSO_EIO whatever its errno: ENOSPC from
 * the sync does not say that nothing was written (the record may be on
 * disk), which CALYPSO_ENOSPC would. */
static void test_sync_failure_is_eio_even_for_enospc(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso *db = du_open_always(dir, &o);
    cy_os_fail_at(CY_OS_FDATASYNC, 1, ENOSPC, 0, 0);
    int rc = calypso_put(db, "k", 1, "v", 1);
    cy_os_fail_reset();
    assert_int_equal(rc, CALYPSO_EIO);
    assert_non_null(strstr(calypso_errmsg(db), "fdatasync"));
    assert_int_equal(calypso_put(db, "k2", 2, "v", 1), CALYPSO_EIO);   /* sticky */
    assert_int_equal(calypso_close(db), CALYPSO_EIO);
    tu_rmrf(dir);
}

/* An application that calls calypso_sync itself (SYNC_NONE) gets the
 * zeros written ahead of its data, as SYNC_ALWAYS does, so that its syncs
 * do not each convert freshly allocated blocks; one that never syncs does
 * not pay for them. Reopened, the data is intact. */
static void test_explicit_syncs_zero_ahead(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    calypso *db;
    TU_OK(NULL, calypso_open(dir, &o, &db));
    char v[3000];
    memset(v, 'z', sizeof v);
    TU_OK(db, calypso_put(db, "a", 1, v, sizeof v));
    assert_int_equal(db->files.active->zeroed, 0);          /* never synced: no zeros */
    TU_OK(db, calypso_sync(db));
    for (int i = 0; i < 50; i++) {
        char k[8];
        int kl = snprintf(k, sizeof k, "k%02d", i);
        v[0] = (char)i;
        TU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
        assert_true(db->files.active->zeroed > db->files.active->size);   /* zeros ahead */
        TU_OK(db, calypso_sync(db));
    }
    TU_OK(db, calypso_close(db));
    TU_OK(NULL, calypso_open(dir, &o, &db));
    for (int i = 0; i < 50; i++) {
        char k[8], got[3000];
        int kl = snprintf(k, sizeof k, "k%02d", i);
        size_t gl = 0;
        TU_OK(db, calypso_get_buf(db, k, (size_t)kl, got, sizeof got, &gl));
        v[0] = (char)i;
        assert_int_equal(gl, sizeof v);
        assert_memory_equal(got, v, sizeof v);
    }
    TU_OK(db, calypso_close(db));
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_fsync_error_is_sticky, du_scope_all),
        cmocka_unit_test_teardown(test_sync_error_seen_before_broken, du_scope_all),
        cmocka_unit_test(test_rotation_does_not_sync_on_the_writer_path),
        cmocka_unit_test(test_rotation_fsync_error_breaks_the_handle),
        cmocka_unit_test(test_fork_child_cannot_use_the_handle),
        cmocka_unit_test(test_fork_child_cannot_commit_the_parents_update),
        cmocka_unit_test(test_sync_failure_is_eio_even_for_enospc),
        cmocka_unit_test(test_explicit_syncs_zero_ahead),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
