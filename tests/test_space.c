/*
 * test_space.c: a full disk (space.c, the merge's steps in merge.c).
 *
 * - the error: CALYPSO_ENOSPC is in the list, ENOSPC and EDQUOT map to it;
 * - the reserve: RESERVE is one datafile's worth, 64 KiB at least and
 *   8 MiB at most (at and one past each bound), allocated on disk, cut
 *   down when the options shrink it, never made by a read-only handle;
 * - a full disk through the syscall table (fallocate failing with ENOSPC):
 *   fill until a put fails with CALYPSO_ENOSPC; the reserve is released
 *   and puts are refused at once without a syscall; nothing acknowledged is
 *   lost across a reopen; deleting the oldest 40% of the keys succeeds (the
 *   first allocation failing again: the reserve's space carries them);
 *   merge succeeds and frees space, the reserve is taken back and puts work
 *   again;
 * - the same on a real 24 MiB tmpfs when the machine lets the test mount
 *   one (it says so in its output when it cannot);
 * - the merge needs one output file's worth of space at a time: every step
 *   has at most max_datafile_size bytes in merge/ and removes its inputs
 *   before the next writes; wholly dead files are dropped without a write,
 *   a mkdir or a fallocate;
 * - a merge of many steps killed at every step of every step (each hook
 *   event in turn): reopening loses no key and brings back no deleted one,
 *   and a merge and a reopen afterwards agree.
 */
#include "merge_util.h"

#include <signal.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/wait.h>

static uint64_t file_size(const char *dir, const char *name, uint64_t *allocated)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0) return UINT64_MAX;
    if (allocated) *allocated = (uint64_t)st.st_blocks * 512u;
    return (uint64_t)st.st_size;
}

static size_t key_of(char *k, const char *prefix, int i)
{
    return (size_t)snprintf(k, 32, "%s%07d", prefix, i);
}

static int put_i(calypso *db, const char *prefix, int i, uint64_t version, size_t vlen)
{
    char k[32];
    uint8_t v[4096];
    assert_true(vlen <= sizeof v);
    size_t kl = key_of(k, prefix, i);
    mu_value(v, vlen, k, kl, version);
    return calypso_put(db, k, kl, v, vlen);
}

/* Key i is there with (version, vlen), or absent when version is 0. */
static void expect_i(calypso *db, const char *prefix, int i, uint64_t version, size_t vlen)
{
    char k[32];
    uint8_t v[4096];
    size_t kl = key_of(k, prefix, i), got = 0;
    int rc = calypso_get_buf(db, k, kl, v, sizeof v, &got);
    if (version == 0) {
        if (rc != CALYPSO_ENOTFOUND) print_error("%.*s: %s, want absent\n", (int)kl, k,
                                                 calypso_strerror(rc));
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        return;
    }
    if (rc) print_error("%.*s: %s (%s)\n", (int)kl, k, calypso_strerror(rc), calypso_errmsg(db));
    assert_int_equal(rc, CALYPSO_OK);
    uint64_t ver = 0;
    assert_int_equal(got, vlen);
    assert_true(mu_value_ok(v, got, k, kl, &ver));
    assert_int_equal(ver, version);
}

// >> the error code ------------------------------------------------------------------------

static void test_enospc_code_and_errno_mapping(void **state)
{
    (void)state;
    assert_int_equal(CALYPSO_ENOSPC, -17);
    assert_string_equal(calypso_strerror(CALYPSO_ENOSPC), "no space left on the device");
    assert_int_equal(cy_err_errno(NULL, -ENOSPC, "write", "f"), CALYPSO_ENOSPC);
    assert_int_equal(cy_err_errno(NULL, ENOSPC, "write", "f"), CALYPSO_ENOSPC);
    assert_int_equal(cy_err_errno(NULL, -EDQUOT, "write", "f"), CALYPSO_ENOSPC);
    assert_non_null(strstr(calypso_errmsg(NULL), "quota"));
    assert_int_equal(cy_err_errno(NULL, -EIO, "write", "f"), CALYPSO_EIO);
    assert_int_equal(cy_err_errno(NULL, -EFBIG, "write", "f"), CALYPSO_EIO);
    assert_int_equal(cy_err_errno(NULL, -ENOMEM, "mmap", "f"), CALYPSO_ENOMEM);
}

// >> the reserve ---------------------------------------------------------------------------

static void test_reserve_size_and_lifecycle(void **state)
{
    (void)state;
    static const struct { uint64_t file, reserve; } sizes[] = {
        { 4096, 64 << 10 },                       /* the smallest datafiles */
        { (64 << 10) - 4096, 64 << 10 },          /* below the floor */
        { 64 << 10, 64 << 10 },                   /* at it */
        { (64 << 10) + 4096, (64 << 10) + 4096 }, /* one step past it */
        { 1 << 20, 1 << 20 },
        { 8 << 20, 8 << 20 },                     /* at the cap */
        { (8 << 20) + 4096, 8 << 20 },            /* one step past it */
        { 0, 8 << 20 },                           /* the default, 256 MiB files */
    };
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *dir = tu_tmpdir();
        calypso_options o = mu_quiet_opts(sizes[i].file);
        calypso *db = mu_open(dir, &o);
        assert_int_equal(cy_space_reserve_size(db), sizes[i].reserve);
        uint64_t alloc = 0;
        assert_int_equal(file_size(dir, "RESERVE", &alloc), sizes[i].reserve);
        assert_true(alloc >= sizes[i].reserve);        /* blocks, not a hole */
        assert_false(cy_space_low(db));
        mu_close(db);
        /* Left in place by close; the next open finds it sized. */
        assert_int_equal(file_size(dir, "RESERVE", NULL), sizes[i].reserve);
        tu_rmrf(dir);
    }

    /* Smaller datafiles at a reopen: the reserve shrinks with them. */
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    MU_OK(db, calypso_put(db, "k", 1, "v", 1));
    mu_close(db);
    o.max_datafile_size = 128 << 10;
    db = mu_open(dir, &o);
    assert_int_equal(file_size(dir, "RESERVE", NULL), 128 << 10);
    mu_close(db);

    /* A read-only handle never creates it. */
    char path[4200];
    snprintf(path, sizeof path, "%s/RESERVE", dir);
    assert_int_equal(unlink(path), 0);
    calypso_options ro = o;
    ro.read_only = 1;
    db = mu_open(dir, &ro);
    assert_false(mu_exists(path));
    mu_close(db);
    assert_false(mu_exists(path));
    db = mu_open(dir, &o);
    assert_true(mu_exists(path));
    mu_close(db);
    tu_rmrf(dir);
}

// >> a full disk through the syscall table ------------------------------------------------

#define SYS_VLEN 300
/* Arms a full disk for the merge's first write after its start. */
static void enospc_after_start(const char *point)
{
    if (strcmp(point, "started")) return;
    cy_os_count_reset();
    cy_os_fail_here(CY_OS_PWRITE, 1, ENOSPC, 0, 0);
}

static void test_disk_full_through_the_syscall_table(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(64 << 10);
    calypso *db = mu_open(dir, &o);
    int n = 0;
    while (n < 1500) MU_OK(db, put_i(db, "k", n++, 1, SYS_VLEN));

    /* The disk fills: the next allocation of space for the log fails. */
    cy_os_fail_at(CY_OS_FALLOCATE, 1, ENOSPC, 1, 0);
    int rc = CALYPSO_OK;
    while (rc == CALYPSO_OK && n < 100000) {
        rc = put_i(db, "k", n, 1, SYS_VLEN);
        if (rc == CALYPSO_OK) n++;
    }
    assert_int_equal(rc, CALYPSO_ENOSPC);
    assert_non_null(strstr(calypso_errmsg(db), "No space left"));
    int acked = n;                     /* keys 0..acked-1; key `acked` failed */
    assert_true(cy_space_low(db));
    assert_int_equal(file_size(dir, "RESERVE", NULL), 0);     /* released */
    /* Low on space, a put is refused at once: no syscall of its own,
     * nothing written. (The background thread may make calls meanwhile,
     * write-back or hints: they are no calls of the put's.) */
    uint64_t calls = cy_os_count_here(CY_OS_ANY);
    assert_int_equal(put_i(db, "k", acked, 1, SYS_VLEN), CALYPSO_ENOSPC);
    assert_int_equal(cy_os_count_here(CY_OS_ANY), calls);
    assert_non_null(strstr(calypso_errmsg(db), "calypso_merge"));
    expect_i(db, "k", acked, 0, 0);
    /* Reads go on. */
    expect_i(db, "k", 0, 1, SYS_VLEN);
    cy_os_fail_reset();

    /* Nothing acknowledged is lost across a reopen (which takes the
     * reserve back: the space it had is free). */
    mu_close(db);
    db = mu_open(dir, &o);
    assert_false(cy_space_low(db));
    for (int i = 0; i <= acked; i++) expect_i(db, "k", i, i < acked ? 1 : 0, SYS_VLEN);

    /* Still full: the first write of the deletes of the oldest 40% meets
     * ENOSPC; the reserve is released and carries them. */
    struct calypso_stats before, after;
    MU_OK(db, calypso_stats(db, &before));
    cy_os_count_reset();
    /* This thread's first write: a hint the background thread writes
     * meanwhile must not take the failure meant for the deletes. */
    cy_os_fail_here(CY_OS_PWRITE, 1, ENOSPC, 0, 0);
    int del = acked * 2 / 5;
    for (int i = 0; i < del; i++) {
        char k[32];
        size_t kl = key_of(k, "k", i);
        MU_OK(db, calypso_delete(db, k, kl));
    }
    assert_true(cy_os_count(CY_OS_PWRITE) >= 2);      /* the failure, then the rest */
    cy_os_fail_reset();
    assert_true(cy_space_low(db));
    assert_int_equal(file_size(dir, "RESERVE", NULL), 0);
    assert_int_equal(put_i(db, "k", acked, 1, SYS_VLEN), CALYPSO_ENOSPC);

    /* The merge's first write meets ENOSPC too: its first step (the
     * deleted keys' files, wholly dead) wrote nothing and freed space, the
     * reserve was taken back, and is given up again for the step that
     * writes, which then runs once more. Space comes back: puts work. */
    cy_merge_set_hook(enospc_after_start);
    MU_OK(db, calypso_merge(db));
    cy_merge_set_hook(NULL);
    assert_true(cy_os_count(CY_OS_PWRITE) >= 2);      /* the failure, then the rest */
    cy_os_fail_reset();
    MU_OK(db, calypso_stats(db, &after));
    print_message("syscall-table disk full: %d puts acknowledged, %d deleted; %.2f MB "
                  "before the merge, %.2f MB after\n", acked, del, (double)before.size / 1e6,
                  (double)after.size / 1e6);
    assert_true((double)after.size < 0.7 * (double)before.size);
    assert_false(cy_space_low(db));
    assert_int_equal(file_size(dir, "RESERVE", NULL), cy_space_reserve_size(db));
    for (int i = acked; i < acked + 200; i++) MU_OK(db, put_i(db, "k", i, 2, SYS_VLEN));
    for (int i = 0; i < acked + 200; i++)
        expect_i(db, "k", i, i < del ? 0 : i < acked ? 1 : 2, SYS_VLEN);
    mu_close(db);
    db = mu_open(dir, &o);
    for (int i = 0; i < acked + 200; i++)
        expect_i(db, "k", i, i < del ? 0 : i < acked ? 1 : 2, SYS_VLEN);
    mu_close(db);
    tu_rmrf(dir);
}

/* While low on space a put tries to take the reserve back at most once a
 * second: space freed from outside is noticed without a merge. */
static void test_refused_puts_notice_space_coming_back(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(64 << 10);
    calypso *db = mu_open(dir, &o);
    int n = 0;
    cy_os_fail_at(CY_OS_FALLOCATE, 1, ENOSPC, 1, 0);
    while (put_i(db, "k", n, 1, 100) == CALYPSO_OK) n++;
    cy_os_fail_reset();                       /* space comes back */
    assert_true(cy_space_low(db));
    uint64_t t0 = mu_now_us();
    int rc;
    while ((rc = put_i(db, "k", n, 1, 100)) == CALYPSO_ENOSPC) {
        assert_true(mu_now_us() - t0 < 10 * 1000000u);
        mu_sleep_ms(50);
    }
    MU_OK(db, rc);
    uint64_t waited = mu_now_us() - t0;
    assert_true(waited >= 800000u);           /* not before a second passed */
    assert_false(cy_space_low(db));
    assert_int_equal(file_size(dir, "RESERVE", NULL), cy_space_reserve_size(db));
    for (int i = 0; i <= n; i++) expect_i(db, "k", i, 1, 100);
    mu_close(db);
    tu_rmrf(dir);
}

// >> a full disk for real: a 24 MiB tmpfs ----------------------------------------------------

#define TMPFS_VLEN 2000

static uint64_t fs_free(const char *path)
{
    struct statvfs sv;
    assert_int_equal(statvfs(path, &sv), 0);
    return (uint64_t)sv.f_bavail * sv.f_frsize;
}

static char *tmpfs_mnt;   /* mounted: unmounted by the teardown, even after a failure */

static int tmpfs_teardown(void **state)
{
    (void)state;
    if (tmpfs_mnt) {
        umount2(tmpfs_mnt, MNT_DETACH);
        tu_rmrf(tmpfs_mnt);
        tmpfs_mnt = NULL;
    }
    return 0;
}

static void test_disk_full_on_a_real_tmpfs(void **state)
{
    (void)state;
    char *mnt = tu_tmpdir();
    assert_non_null(mnt);
    if (mount("calypso-test", mnt, "tmpfs", 0, "size=24m") != 0) {
        int e = errno;
        print_message("NOTE: cannot mount a 24 MiB tmpfs at %s (%s): the real full-disk test "
                      "is not run here; the syscall-table variant covers the engine's side\n",
                      mnt ? mnt : "?", strerror(e));
        tu_rmrf(mnt);
        return;
    }
    tmpfs_mnt = mnt;
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/db", mnt);
    calypso_options o = mu_quiet_opts(1 << 20);
    calypso *db = mu_open(dir, &o);
    int n = 0, rc = CALYPSO_OK;
    while (rc == CALYPSO_OK && n < 1000000) {
        rc = put_i(db, "k", n, 1, TMPFS_VLEN);
        if (rc == CALYPSO_OK) n++;
    }
    if (rc != CALYPSO_ENOSPC) print_error("fill: %s: %s\n", calypso_strerror(rc), calypso_errmsg(db));
    assert_int_equal(rc, CALYPSO_ENOSPC);
    int acked = n;
    assert_true(acked > 5000);
    assert_true(cy_space_low(db));
    assert_int_equal(put_i(db, "k", acked, 1, TMPFS_VLEN), CALYPSO_ENOSPC);
    uint64_t free_full = fs_free(mnt);
    mu_close(db);

    db = mu_open(dir, &o);
    for (int i = 0; i <= acked; i++) expect_i(db, "k", i, i < acked ? 1 : 0, TMPFS_VLEN);

    int del = acked * 2 / 5;
    for (int i = 0; i < del; i++) {
        char k[32];
        size_t kl = key_of(k, "k", i);
        int drc = calypso_delete(db, k, kl);
        if (drc) print_error("delete %d of %d: %s\n", i, del, calypso_errmsg(db));
        assert_int_equal(drc, CALYPSO_OK);
    }
    int mrc = calypso_merge(db);
    if (mrc) print_error("merge: %s\n", calypso_errmsg(db));
    assert_int_equal(mrc, CALYPSO_OK);
    uint64_t free_after = fs_free(mnt);
    print_message("24 MiB tmpfs: %d puts acknowledged before ENOSPC (%llu KiB free then), "
                  "%d deleted, merge left %llu KiB free\n", acked,
                  (unsigned long long)(free_full >> 10), del,
                  (unsigned long long)(free_after >> 10));
    assert_true(free_after > free_full + (6u << 20));
    assert_false(cy_space_low(db));
    int more = 0;
    for (; more < 2000; more++) MU_OK(db, put_i(db, "n", more, 1, TMPFS_VLEN));
    for (int i = 0; i < acked; i++) expect_i(db, "k", i, i < del ? 0 : 1, TMPFS_VLEN);
    mu_close(db);
    db = mu_open(dir, &o);
    for (int i = 0; i < acked; i++) expect_i(db, "k", i, i < del ? 0 : 1, TMPFS_VLEN);
    for (int i = 0; i < more; i++) expect_i(db, "n", i, 1, TMPFS_VLEN);
    mu_close(db);
    tmpfs_mnt = NULL;
    assert_int_equal(umount(mnt), 0);
    tu_rmrf(mnt);
}

// >> the merge's steps -----------------------------------------------------------------------

static struct {
    const char *dir;
    uint64_t    max_merge_bytes;    /* most bytes of data seen in merge/ */
    int         copied;             /* "copied" events */
    int         regular_at[64];     /* regular datafiles at each */
    uint64_t    calls_started[3], calls_removed[3], calls_done[3];
    int         removed_seen;
} stepw;

static uint64_t dir_data_bytes(const char *dir)
{
    uint32_t fids[4096];
    int n = mu_list_fids(dir, "data", fids, 4096);
    uint64_t total = 0;
    char name[32];
    for (int i = 0; i < n && i < 4096; i++) {
        snprintf(name, sizeof name, "%010u.data", fids[i]);
        total += file_size(dir, name, NULL);
    }
    return total;
}

static void step_hook(const char *point)
{
    static const int kinds[3] = { CY_OS_PWRITE, CY_OS_MKDIR, CY_OS_FALLOCATE };
    if (!strcmp(point, "started"))
        for (int i = 0; i < 3; i++) stepw.calls_started[i] = cy_os_count(kinds[i]);
    if (!strcmp(point, "done"))
        for (int i = 0; i < 3; i++) stepw.calls_done[i] = cy_os_count(kinds[i]);
    if (!strcmp(point, "removed") && !stepw.removed_seen++)
        for (int i = 0; i < 3; i++) stepw.calls_removed[i] = cy_os_count(kinds[i]);
    if (strcmp(point, "copied")) return;
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/merge", stepw.dir);
    uint64_t b = dir_data_bytes(mdir);
    if (b > stepw.max_merge_bytes) stepw.max_merge_bytes = b;
    uint32_t fids[4096];
    int n = mu_list_fids(stepw.dir, "data", fids, 4096), reg = 0;
    for (int i = 0; i < n; i++) reg += !(fids[i] & CY_FID_MERGED);
    if (stepw.copied < 64) stepw.regular_at[stepw.copied] = reg;
    stepw.copied++;
}

static void test_merge_needs_one_output_file_at_a_time(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    const uint64_t file = 16 << 10;
    calypso_options o = mu_quiet_opts(file);
    calypso *db = mu_open(dir, &o);
    for (int i = 0; i < 2000; i++) MU_OK(db, put_i(db, "k", i, 1, 150));
    for (int i = 0; i < 2000; i += 3) MU_OK(db, put_i(db, "k", i, 2, 150));   /* a third dead */
    memset(&stepw, 0, sizeof stepw);
    stepw.dir = dir;
    cy_merge_set_hook(step_hook);
    MU_OK(db, calypso_merge(db));
    cy_merge_set_hook(NULL);
    print_message("merge of ~%d files: %d steps, at most %llu bytes in merge/ at a time\n",
                  stepw.regular_at[0], stepw.copied, (unsigned long long)stepw.max_merge_bytes);
    assert_true(stepw.copied >= 10);
    assert_true(stepw.max_merge_bytes > 0 && stepw.max_merge_bytes <= file);
    /* Each step removed its inputs before the next wrote its output. */
    for (int i = 1; i < stepw.copied && i < 64; i++)
        assert_true(stepw.regular_at[i] < stepw.regular_at[i - 1]);
    for (int i = 0; i < 2000; i++) expect_i(db, "k", i, i % 3 ? 1 : 2, 150);
    mu_close(db);
    db = mu_open(dir, &o);
    for (int i = 0; i < 2000; i++) expect_i(db, "k", i, i % 3 ? 1 : 2, 150);
    mu_close(db);
    tu_rmrf(dir);
}

static void test_merge_drops_dead_files_without_writing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    calypso *db = mu_open(dir, &o);
    for (int i = 0; i < 500; i++) MU_OK(db, put_i(db, "a", i, 1, 150));
    for (int i = 0; i < 500; i++) MU_OK(db, put_i(db, "b", i, 1, 150));
    uint32_t before[4096];
    int nbefore = mu_list_fids(dir, "data", before, 4096);
    for (int i = 0; i < 500; i++) {                        /* the oldest files die */
        char k[32];
        size_t kl = key_of(k, "a", i);
        MU_OK(db, calypso_delete(db, k, kl));
    }
    memset(&stepw, 0, sizeof stepw);
    stepw.dir = dir;
    cy_merge_set_hook(step_hook);
    MU_OK(db, calypso_merge(db));
    cy_merge_set_hook(NULL);
    /* The first step removed the dead files: no write, no merge/, no
     * allocation before it was done. */
    assert_true(stepw.removed_seen >= 1);
    for (int i = 0; i < 3; i++) assert_int_equal(stepw.calls_removed[i], stepw.calls_started[i]);
    uint32_t after[4096];
    int nafter = mu_list_fids(dir, "data", after, 4096);
    assert_true(nafter < nbefore / 2 + 3);
    assert_true(after[0] > before[nbefore / 3]);          /* the oldest are gone */
    for (int i = 0; i < 500; i++) {
        expect_i(db, "a", i, 0, 0);
        expect_i(db, "b", i, 1, 150);
    }

    /* Everything dead: the whole merge writes nothing at all. */
    MU_OK(db, calypso_delete_all(db));
    memset(&stepw, 0, sizeof stepw);
    stepw.dir = dir;
    cy_merge_set_hook(step_hook);
    MU_OK(db, calypso_merge(db));
    cy_merge_set_hook(NULL);
    assert_true(stepw.removed_seen >= 1);
    for (int i = 0; i < 3; i++) assert_int_equal(stepw.calls_done[i], stepw.calls_started[i]);
    assert_int_equal(calypso_len(db), 0);
    nafter = mu_list_fids(dir, "data", after, 4096);
    assert_int_equal(nafter, 1);                          /* the new active file */
    mu_close(db);
    db = mu_open(dir, &o);
    assert_int_equal(calypso_len(db), 0);
    mu_close(db);
    tu_rmrf(dir);
}

/* Sealing the active file needs a new file; on a full disk the merge
 * leaves the active file out and still drops the dead sealed files. */
static void test_merge_leaves_the_active_file_out_on_a_full_disk(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(16 << 10);
    calypso *db = mu_open(dir, &o);
    for (int i = 0; i < 300; i++) MU_OK(db, put_i(db, "a", i, 1, 150));
    for (int i = 0; i < 300; i++) MU_OK(db, put_i(db, "b", i, 1, 150));
    for (int i = 0; i < 300; i++) {
        char k[32];
        size_t kl = key_of(k, "a", i);
        MU_OK(db, calypso_delete(db, k, kl));
    }
    /* Let the background thread finish the hints it owes, so that the
     * next open(2) is the merge's. */
    uint32_t data[4096], hints[4096];
    uint64_t t0 = mu_now_us();
    int nd, nh;
    while ((nd = mu_list_fids(dir, "data", data, 4096)) - 1 >
           (nh = mu_list_fids(dir, "hint", hints, 4096)))
        assert_true(mu_now_us() - t0 < 10000000u), mu_sleep_ms(5);
    uint32_t active = data[nd - 1];
    cy_os_fail_at(CY_OS_OPEN, 1, ENOSPC, 0, 0);         /* creating its successor */
    MU_OK(db, calypso_merge(db));
    cy_os_fail_reset();
    nd = mu_list_fids(dir, "data", data, 4096);
    int regular = 0;
    for (int i = 0; i < nd; i++) regular += !(data[i] & CY_FID_MERGED);
    assert_int_equal(regular, 1);                        /* the active file, still */
    assert_int_equal(data[0], active);
    for (int i = 0; i < 300; i++) {
        expect_i(db, "a", i, 0, 0);
        expect_i(db, "b", i, 1, 150);
    }
    MU_OK(db, put_i(db, "c", 0, 1, 150));
    mu_close(db);
    db = mu_open(dir, &o);
    for (int i = 0; i < 300; i++) {
        expect_i(db, "a", i, 0, 0);
        expect_i(db, "b", i, 1, 150);
    }
    expect_i(db, "c", 0, 1, 150);
    mu_close(db);
    tu_rmrf(dir);
}

/* A database whose active file is full opens on a full disk: the file
 * stays active until a write can rotate. */
static void test_open_on_a_full_disk_with_a_full_active_file(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    calypso *db = mu_open(dir, &o);
    char k[16], v[64];
    memset(v, 'v', sizeof v);
    /* 64-byte records (7-byte header, 8-byte key, 49-byte value): 64 of
     * them fill a 4096-byte datafile exactly. */
    for (int i = 0; i < 64; i++) {
        snprintf(k, sizeof k, "key%05d", i);
        MU_OK(db, calypso_put(db, k, 8, v, 49));
    }
    mu_close(db);
    uint32_t fids[16];
    assert_int_equal(mu_list_fids(dir, "data", fids, 16), 1);
    assert_int_equal(file_size(dir, "0000000001.data", NULL), 4096);

    /* Rotating at open needs a new id (IDS is rewritten): the disk is full. */
    cy_os_fail_at(CY_OS_RENAME, 1, ENOSPC, 1, 0);
    db = mu_open(dir, &o);
    cy_os_fail_reset();
    assert_int_equal(mu_list_fids(dir, "data", fids, 16), 1);
    for (int i = 0; i < 64; i++) {
        snprintf(k, sizeof k, "key%05d", i);
        assert_int_equal(calypso_has(db, k, 8), 1);
    }
    MU_OK(db, calypso_delete(db, "key00000", 8));     /* the write rotates now */
    assert_int_equal(mu_list_fids(dir, "data", fids, 16), 2);
    MU_OK(db, calypso_put(db, "after", 5, v, 49));
    mu_close(db);
    db = mu_open(dir, &o);
    assert_int_equal(calypso_has(db, "key00000", 8), 0);
    assert_int_equal(calypso_has(db, "key00063", 8), 1);
    assert_int_equal(calypso_has(db, "after", 5), 1);
    mu_close(db);
    tu_rmrf(dir);
}

// >> crashes at every step of every step -----------------------------------------------------

static struct {
    int target;     /* die at this event (1-based); 0: count only */
    int events;
    int fd;
} kill_at;

static void kill_hook(const char *point)
{
    (void)point;
    kill_at.events++;
    if (kill_at.target && kill_at.events == kill_at.target) _exit(0);
}

/* A database whose merge takes many steps, with keys overwritten and
 * deleted across the step boundaries: tombstones in later files for puts
 * in earlier ones, keys deleted then put again, keys put in the first file
 * and deleted in the last. */
static void build_crash_db(const char *dir, const calypso_options *o, mu_ref *r)
{
    calypso *db = mu_open(dir, o);
    char k[32];
    for (int i = 0; i < 400; i++) {
        size_t kl = key_of(k, "x", i);
        mu_ref_put(db, mu_ref_new(r, k, kl), 1, 100 + (uint32_t)(i % 50), 0);
    }
    for (int i = 0; i < 400; i += 3) mu_ref_del(db, &r->e[i]);
    for (int i = 1; i < 400; i += 3) mu_ref_put(db, &r->e[i], 2, 80, 0);
    for (int i = 0; i < 400; i += 9) mu_ref_put(db, &r->e[i], 3, 60, 0);   /* back again */
    for (int i = 2; i < 400; i += 15) mu_ref_del(db, &r->e[i]);
    mu_close(db);
}

static void test_stepwise_merge_crash_anywhere_loses_nothing(void **state)
{
    (void)state;
    calypso_options o = mu_quiet_opts(8 << 10);
    char *tmpl = tu_tmpdir();
    mu_ref base = { 0 };
    build_crash_db(tmpl, &o, &base);

    /* How many hook events one merge of it has. */
    char *probe = tu_tmpdir();
    char cmd[8800];
    snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/", tmpl, probe);
    assert_int_equal(system(cmd), 0);
    memset(&kill_at, 0, sizeof kill_at);
    cy_merge_set_hook(kill_hook);
    calypso *db = mu_open(probe, &o);
    MU_OK(db, calypso_merge(db));
    cy_merge_set_hook(NULL);
    mu_ref_check(db, &base);
    mu_close(db);
    tu_rmrf(probe);
    int events = kill_at.events;
    print_message("a merge of %d hook events; a crash at each\n", events);
    assert_true(events > 20);

    for (int t = 1; t <= events; t++) {
        char *dir = tu_tmpdir();
        snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/", tmpl, dir);
        assert_int_equal(system(cmd), 0);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            kill_at.target = t;
            kill_at.events = 0;
            cy_merge_set_hook(kill_hook);
            calypso *c = NULL;
            if (calypso_open(dir, &o, &c) != CALYPSO_OK) _exit(6);
            calypso_merge(c);
            _exit(3);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            print_error("child dying at event %d: status 0x%x\n", t, status);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        db = mu_open(dir, &o);
        mu_ref_check(db, &base);               /* nothing lost, nothing back */
        MU_OK(db, calypso_merge(db));
        mu_ref_check(db, &base);
        mu_census c = mu_census_dir(dir, cy_now_ms(), NULL, NULL);
        assert_int_equal(c.records, mu_ref_live(&base));
        assert_int_equal(c.tombstones, 0);
        mu_close(db);
        db = mu_open(dir, &o);
        mu_ref_check(db, &base);
        mu_close(db);
        tu_rmrf(dir);
    }
    mu_ref_free(&base);
    tu_rmrf(tmpl);
}

int main(void)
{
    mu_default_tmpdir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enospc_code_and_errno_mapping),
        cmocka_unit_test(test_reserve_size_and_lifecycle),
        cmocka_unit_test(test_disk_full_through_the_syscall_table),
        cmocka_unit_test(test_refused_puts_notice_space_coming_back),
        cmocka_unit_test_teardown(test_disk_full_on_a_real_tmpfs, tmpfs_teardown),
        cmocka_unit_test(test_merge_needs_one_output_file_at_a_time),
        cmocka_unit_test(test_merge_drops_dead_files_without_writing),
        cmocka_unit_test(test_merge_leaves_the_active_file_out_on_a_full_disk),
        cmocka_unit_test(test_open_on_a_full_disk_with_a_full_active_file),
        cmocka_unit_test(test_stepwise_merge_crash_anywhere_loses_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
