/*
 * test_ids.c: datafile ids are never reused (ids.c, the IDS file).
 *
 * - the repro that found it: a cursor positioned on a key in a merged
 *   file; delete_all and a merge that writes nothing; the keys put again
 *   and merged: the cursor's value read used to land in the new file that
 *   took the old id (CALYPSO_ECHECKSUM on a healthy database);
 * - across rotations, merges with and without output, delete_all and
 *   reopens, every id that appears (datafiles, and merge outputs still in
 *   merge/) is above every id seen before in its space, and below the
 *   limit IDS holds;
 * - across crashes: a child dies at each step of a merge (and right after
 *   rotations); the ids the parent then makes are above everything the
 *   child made, outputs of a merge that never committed included;
 * - a database without IDS (an earlier calypso) opens, derives the limits
 *   from its datafiles and writes IDS (a read-only open writes nothing); a
 *   limit below a file present is raised; a damaged IDS fails open with
 *   CALYPSO_ECORRUPT;
 * - the ends of both id spaces: the last id is handed out, the one past it
 *   fails cleanly (CALYPSO_EIO, nothing lost).
 */
#include "merge_util.h"

#include <signal.h>
#include <sys/wait.h>

static const char *const points[] = { "started", "copying", "copied", "committed",
                                      "moved", "swapped", "removed", "done" };
#define NPOINTS 8

// >> watching ids ---------------------------------------------------------------------

/* Every id seen so far, and the highest per space. */
typedef struct ids_seen {
    uint32_t seen[65536];
    int      n;
    uint32_t max[2];      /* regular, merged; 0 = none yet */
    int      bad;
} ids_seen;

static ids_seen watch;
static const char *watch_dir;   /* the directory the merge hook watches */

static int space_of(uint32_t fid)
{
    return (fid & CY_FID_MERGED) ? 1 : 0;
}

static void ids_note(ids_seen *w, uint32_t fid)
{
    for (int i = 0; i < w->n; i++)
        if (w->seen[i] == fid) return;
    int s = space_of(fid);
    if (fid <= w->max[s]) {
        print_error("id %u appeared after id %u of its space had been used\n", fid, w->max[s]);
        w->bad++;
    }
    if (fid > w->max[s]) w->max[s] = fid;
    if (w->n < (int)(sizeof w->seen / sizeof *w->seen)) w->seen[w->n++] = fid;
}

/* Notes the datafiles of dir and of dir/merge. */
static void ids_observe(ids_seen *w, const char *dir)
{
    uint32_t fids[4096];
    char mdir[4200];
    snprintf(mdir, sizeof mdir, "%s/merge", dir);
    int n = mu_list_fids(dir, "data", fids, 4096);
    assert_true(n < 4096);
    for (int i = 0; i < n; i++) ids_note(w, fids[i]);
    if (!mu_exists(mdir)) return;
    n = mu_list_fids(mdir, "data", fids, 4096);
    for (int i = 0; i < n; i++) ids_note(w, fids[i]);
}

/* Reads IDS: 1 with both limits, 0 when absent. */
static int ids_read(const char *dir, uint64_t *reg, uint64_t *mer)
{
    char path[4200], buf[128] = { 0 };
    snprintf(path, sizeof path, "%s/IDS", dir);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    size_t got = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[got] = 0;
    unsigned long long r = 0, m = 0;
    assert_int_equal(sscanf(buf, "ids %llu %llu", &r, &m), 2);
    *reg = r;
    *mer = m;
    return 1;
}

static void ids_write(const char *dir, const char *text)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/IDS", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* Every id seen lies below the limit of its space in IDS. */
static void expect_below_limits(const ids_seen *w, const char *dir)
{
    uint64_t lim[2];
    assert_true(ids_read(dir, &lim[0], &lim[1]));
    for (int s = 0; s < 2; s++)
        if (w->max[s] && w->max[s] >= lim[s]) {
            print_error("id %u used, IDS limit %llu\n", w->max[s], (unsigned long long)lim[s]);
            fail();
        }
}

static void observe_hook(const char *point)
{
    (void)point;
    ids_observe(&watch, watch_dir);
}

static void puts_of(calypso *db, const char *prefix, int from, int to, size_t vlen)
{
    char k[32];
    uint8_t v[256];
    assert_true(vlen <= sizeof v);
    for (int i = from; i < to; i++) {
        int kl = snprintf(k, sizeof k, "%s%06d", prefix, i);
        mu_value(v, vlen, k, (size_t)kl, 1);
        MU_OK(db, calypso_put(db, k, (size_t)kl, v, vlen));
    }
}

// >> the repro -------------------------------------------------------------------------

static void test_cursor_never_reads_a_file_that_took_an_old_id(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(0);
    calypso *db = mu_open(dir, &o);
    char k[16];
    uint8_t v64[64], v37[37];
    memset(v64, 'a', sizeof v64);
    memset(v37, 'b', sizeof v37);
    for (int i = 0; i < 1000; i++) {
        int kl = snprintf(k, sizeof k, "key%05d", i);
        MU_OK(db, calypso_put(db, k, (size_t)kl, v64, sizeof v64));
    }
    MU_OK(db, calypso_merge(db));
    calypso_cursor *c = NULL;
    MU_OK(db, calypso_cursor_open(db, &c));
    MU_OK(db, calypso_cursor_first(c));
    MU_OK(db, calypso_delete_all(db));
    MU_OK(db, calypso_merge(db));              /* writes nothing: no merged file left */
    for (int i = 0; i < 1000; i++) {
        int kl = snprintf(k, sizeof k, "key%05d", i);
        MU_OK(db, calypso_put(db, k, (size_t)kl, v37, sizeof v37));
    }
    MU_OK(db, calypso_merge(db));
    const void *val = NULL;
    size_t vlen = 0;
    int rc = calypso_cursor_value(c, &val, &vlen);
    if (rc != CALYPSO_OK && rc != CALYPSO_ENOTFOUND)
        print_error("cursor value: %s: %s\n", calypso_strerror(rc), calypso_errmsg(db));
    /* The record the cursor knew is gone: it finds the key's new value or
     * reports it gone; it never reads some other file's bytes. */
    assert_true(rc == CALYPSO_OK || rc == CALYPSO_ENOTFOUND);
    if (rc == CALYPSO_OK) {
        assert_int_equal(vlen, sizeof v37);
        assert_memory_equal(val, v37, sizeof v37);
    }
    calypso_cursor_close(c);
    mu_close(db);
    tu_rmrf(dir);
}

// >> across reopens ------------------------------------------------------------------------

static void test_ids_grow_across_merges_and_reopens(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    memset(&watch, 0, sizeof watch);
    watch_dir = dir;
    cy_merge_set_hook(observe_hook);
    calypso *db = mu_open(dir, &o);
    for (int round = 0; round < 6; round++) {
        puts_of(db, "a", 0, 200, 100);                 /* several rotations */
        ids_observe(&watch, dir);
        MU_OK(db, calypso_merge(db));                  /* writes outputs */
        ids_observe(&watch, dir);
        MU_OK(db, calypso_delete_all(db));
        MU_OK(db, calypso_merge(db));                  /* writes nothing */
        ids_observe(&watch, dir);
        assert_int_equal(calypso_len(db), 0);
        if (round % 2) {
            MU_OK(db, calypso_reopen(db));
        } else {
            mu_close(db);
            db = mu_open(dir, &o);
        }
        ids_observe(&watch, dir);
        expect_below_limits(&watch, dir);
    }
    cy_merge_set_hook(NULL);
    assert_true(watch.max[0] > 6 && watch.max[1] > CY_FID_MERGED);
    assert_int_equal(watch.bad, 0);
    /* IDS is rewritten once per chunk of ids, not once per id: the limit
     * is at most a chunk past the next id, which an open starts at the
     * limit it found (at most a chunk past the highest file then). */
    uint64_t reg, mer;
    assert_true(ids_read(dir, &reg, &mer));
    assert_true(reg > watch.max[0] && reg <= watch.max[0] + 2 * 64 + 1);
    mu_close(db);
    tu_rmrf(dir);
}

// >> across crashes ------------------------------------------------------------------------

static struct {
    const char *point;
    int         fd;        /* pipe to the parent */
} dying;

static void dying_hook(const char *point)
{
    ids_observe(&watch, watch_dir);
    if (strcmp(point, dying.point) != 0) return;
    if (write(dying.fd, watch.max, sizeof watch.max) != (ssize_t)sizeof watch.max) _exit(7);
    _exit(0);
}

/* A child opens dir, writes, and dies at merge step `point` (NULL: right
 * after its writes, without closing). Returns the highest ids it saw. */
static void crash_child(const char *dir, const calypso_options *o, const char *point,
                        uint32_t *max)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        memset(&watch, 0, sizeof watch);
        watch_dir = dir;
        dying.point = point ? point : "";
        dying.fd = p[1];
        cy_merge_set_hook(dying_hook);
        calypso *db = NULL;
        if (calypso_open(dir, o, &db) != CALYPSO_OK) _exit(6);
        puts_of(db, "c", 0, 100, 120);
        puts_of(db, "d", 0, 50, 120);
        if (calypso_delete(db, "c000001", 7)) _exit(6);
        ids_observe(&watch, dir);
        if (!point) {
            if (write(p[1], watch.max, sizeof watch.max) != (ssize_t)sizeof watch.max) _exit(7);
            _exit(0);
        }
        calypso_merge(db);
        _exit(3);                                /* the hook did not fire */
    }
    close(p[1]);
    ssize_t got = read(p[0], max, 2 * sizeof *max);
    close(p[0]);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || got != (ssize_t)(2 * sizeof *max))
        print_error("child at '%s': status 0x%x\n", point ? point : "(writes)", status);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_int_equal(got, (ssize_t)(2 * sizeof *max));
}

static void test_ids_grow_across_crashes(void **state)
{
    (void)state;
    calypso_options o = mu_quiet_opts(4096);
    char *tmpl = tu_tmpdir();
    calypso *db = mu_open(tmpl, &o);
    puts_of(db, "t", 0, 120, 90);
    MU_OK(db, calypso_merge(db));
    puts_of(db, "u", 0, 60, 90);
    mu_close(db);
    for (int p = -1; p < NPOINTS; p++) {
        char *dir = tu_tmpdir();
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "cp -a '%s'/. '%s'/", tmpl, dir);
        assert_int_equal(system(cmd), 0);
        uint32_t child_max[2] = { 0, 0 };
        crash_child(dir, &o, p < 0 ? NULL : points[p], child_max);
        assert_true(child_max[0] > 0);
        if (p >= 2) assert_true(child_max[1] > 0);   /* the child had merge outputs */

        /* Everything the parent makes from here is above what the child
         * made, ids of an uncommitted merge's outputs included. */
        memset(&watch, 0, sizeof watch);
        watch.max[0] = child_max[0];
        watch.max[1] = child_max[1];
        watch_dir = dir;
        db = mu_open(dir, &o);
        uint32_t fids[4096];
        int n = mu_list_fids(dir, "data", fids, 4096);
        for (int i = 0; i < n; i++) {                 /* files the child left */
            assert_true(fids[i] <= watch.max[space_of(fids[i])]);
            watch.seen[watch.n++] = fids[i];
        }
        cy_merge_set_hook(observe_hook);
        puts_of(db, "e", 0, 80, 120);
        ids_observe(&watch, dir);
        MU_OK(db, calypso_merge(db));
        ids_observe(&watch, dir);
        cy_merge_set_hook(NULL);
        assert_int_equal(watch.bad, 0);
        assert_true(watch.max[0] > child_max[0]);
        assert_true(watch.max[1] > child_max[1] || child_max[1] == 0);
        expect_below_limits(&watch, dir);
        /* And the data is whole: the child's acknowledged writes are there. */
        assert_int_equal(calypso_has(db, "t000007", 7), 1);
        assert_int_equal(calypso_has(db, "c000001", 7), 0);
        assert_int_equal(calypso_has(db, "d000049", 7), 1);
        mu_close(db);
        tu_rmrf(dir);
    }
    tu_rmrf(tmpl);
}

// >> databases without IDS, damaged IDS -------------------------------------------------------

static void remove_ids(const char *dir)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/IDS", dir);
    assert_int_equal(unlink(path), 0);
}

static void test_ids_derived_when_missing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    calypso *db = mu_open(dir, &o);
    puts_of(db, "a", 0, 200, 100);
    MU_OK(db, calypso_merge(db));
    puts_of(db, "b", 0, 100, 100);
    mu_close(db);
    memset(&watch, 0, sizeof watch);
    ids_observe(&watch, dir);
    assert_true(watch.max[0] > 1 && watch.max[1] >= CY_FID_MERGED);
    remove_ids(dir);

    /* A read-only open derives the limits in memory and writes nothing. */
    calypso_options ro = o;
    ro.read_only = 1;
    db = mu_open(dir, &ro);
    assert_int_equal(calypso_has(db, "a000005", 7), 1);
    mu_close(db);
    uint64_t reg, mer;
    assert_false(ids_read(dir, &reg, &mer));

    /* A read-write open writes them: one past the highest file of each,
     * and for regular files a chunk more, so that its rotations need no
     * IDS write of their own (the next regular file gets max + 1). */
    db = mu_open(dir, &o);
    assert_true(ids_read(dir, &reg, &mer));
    assert_int_equal(reg, (uint64_t)watch.max[0] + 1 + 64);
    assert_int_equal(mer, (uint64_t)watch.max[1] + 1);
    puts_of(db, "c", 0, 100, 100);
    MU_OK(db, calypso_merge(db));
    ids_observe(&watch, dir);
    assert_int_equal(watch.bad, 0);
    mu_close(db);

    /* Limits below the files present (a hand-copied IDS) are raised. */
    ids_write(dir, "ids 1 1073741824\n");
    db = mu_open(dir, &o);
    assert_true(ids_read(dir, &reg, &mer));
    assert_true(reg > watch.max[0] && mer > watch.max[1]);
    puts_of(db, "d", 0, 100, 100);
    MU_OK(db, calypso_merge(db));
    ids_observe(&watch, dir);
    assert_int_equal(watch.bad, 0);
    mu_close(db);
    tu_rmrf(dir);
}

static void test_ids_damaged_file_fails_open(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",                               /* empty */
        "ids 5\n",                        /* one limit */
        "ids 5 1073741824",               /* no newline */
        "ids 0 1073741824\n",             /* regular ids start at 1 */
        "ids 1073741825 1073741824\n",    /* past the regular space */
        "ids 5 1073741823\n",             /* below the merged space */
        "ids 5 2147483649\n",             /* past the merged space */
        "ids 5 1073741824\nx",            /* trailing bytes */
        "ids -5 1073741824\n",
        "ides 5 1073741824\n",
    };
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    calypso *db = mu_open(dir, &o);
    puts_of(db, "a", 0, 50, 100);
    mu_close(db);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ids_write(dir, bad[i]);
        db = NULL;
        int rc = calypso_open(dir, &o, &db);
        if (rc != CALYPSO_ECORRUPT) print_error("IDS \"%s\": open -> %s\n", bad[i], calypso_strerror(rc));
        assert_int_equal(rc, CALYPSO_ECORRUPT);
        assert_non_null(strstr(calypso_errmsg(NULL), "IDS"));
    }
    /* The ends of each space are valid limits. */
    ids_write(dir, "ids 1073741824 2147483648\n");
    db = mu_open(dir, &o);
    assert_int_equal(calypso_has(db, "a000049", 7), 1);
    mu_close(db);
    tu_rmrf(dir);
}

// >> the ends of the id spaces ---------------------------------------------------------------

static void test_ids_exhausted_at_the_end_of_each_space(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = mu_quiet_opts(4096);
    calypso *db = mu_open(dir, &o);
    puts_of(db, "a", 0, 20, 100);
    mu_close(db);

    /* Regular: the next rotation takes the last id, the one after fails. */
    ids_write(dir, "ids 1073741823 2147483647\n");
    db = mu_open(dir, &o);
    char k[32];
    uint8_t v[200];
    memset(v, 'v', sizeof v);
    int i = 0, rc = CALYPSO_OK, acked = 0;
    for (; i < 1000 && rc == CALYPSO_OK; i++) {
        int kl = snprintf(k, sizeof k, "b%06d", i);
        rc = calypso_put(db, k, (size_t)kl, v, sizeof v);
        if (rc == CALYPSO_OK) acked++;
    }
    assert_int_equal(rc, CALYPSO_EIO);
    assert_non_null(strstr(calypso_errmsg(db), "exhausted"));
    uint32_t fids[64];
    int n = mu_list_fids(dir, "data", fids, 64);
    assert_int_equal(fids[n - 1], CY_FID_MERGED - 1);    /* the last regular id is used */
    for (int j = 0; j < acked; j++) {
        int kl = snprintf(k, sizeof k, "b%06d", j);
        assert_int_equal(calypso_has(db, k, (size_t)kl), 1);
    }

    mu_close(db);
    tu_rmrf(dir);

    /* Merged: one merge takes the last merged id; the next that must write
     * fails before it decides anything, and the handle goes on. */
    dir = tu_tmpdir();
    db = mu_open(dir, &o);
    puts_of(db, "a", 0, 20, 100);
    mu_close(db);
    ids_write(dir, "ids 100 2147483647\n");
    db = mu_open(dir, &o);
    int mrc = calypso_merge(db);
    if (mrc) print_error("merge: %s\n", calypso_errmsg(db));
    n = mu_list_fids(dir, "data", fids, 64);
    assert_int_equal(mrc, CALYPSO_OK);
    assert_int_equal(fids[n - 1], CY_LOC_FIDMASK);
    MU_OK(db, calypso_delete(db, "a000001", 7));
    mu_close(db);
    db = mu_open(dir, &o);
    rc = calypso_merge(db);
    assert_int_equal(rc, CALYPSO_EIO);
    assert_non_null(strstr(calypso_errmsg(db), "exhausted"));
    for (int j = 2; j < 20; j++) {
        int kl = snprintf(k, sizeof k, "a%06d", j);
        assert_int_equal(calypso_has(db, k, (size_t)kl), 1);
    }
    MU_OK(db, calypso_delete(db, "a000002", 7));          /* not broken */
    mu_close(db);
    db = mu_open(dir, &o);
    assert_int_equal(calypso_has(db, "a000002", 7), 0);
    assert_int_equal(calypso_has(db, "a000019", 7), 1);
    mu_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    mu_default_tmpdir();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cursor_never_reads_a_file_that_took_an_old_id),
        cmocka_unit_test(test_ids_grow_across_merges_and_reopens),
        cmocka_unit_test(test_ids_grow_across_crashes),
        cmocka_unit_test(test_ids_derived_when_missing),
        cmocka_unit_test(test_ids_damaged_file_fails_open),
        cmocka_unit_test(test_ids_exhausted_at_the_end_of_each_space),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
