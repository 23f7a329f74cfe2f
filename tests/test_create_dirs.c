/*
 * test_create_dirs.c: calypso_open and calypso_backup create the missing
 * directories of their path, parents included (as mkdir -p).
 *
 * - open of a path three levels below what exists creates every level with
 *   dir_mode, and the database works and reopens; a path with repeated and
 *   trailing slashes and a relative one work too;
 * - a regular file anywhere in the path (the path itself, a parent, a
 *   grandparent) fails with CALYPSO_EINVAL naming that file, creates
 *   nothing and leaves the file alone;
 * - a read-only open of a missing path fails and creates nothing, also
 *   when only the last level is missing;
 * - a mkdir failing halfway (injected EACCES on the second mkdir) fails the
 *   open with an error naming the directory; opening again completes it;
 * - every directory created is durable: a power cut (the simulator of
 *   src/os_powerloss.c, which undoes every mkdir whose parent was not
 *   fsynced since) right after open and an acknowledged SYNC_ALWAYS put,
 *   or right after a backup returned, loses nothing;
 * - calypso_backup into a missing nested path creates it and the copy
 *   opens with the data; a file in the way is CALYPSO_EINVAL naming it, and
 *   the source goes on.
 */
#include "crash_util.h"
#include "engine.h"

#include <sys/stat.h>

static char *cd_join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static int cd_is_dir(const char *path, mode_t *mode)
{
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    if (mode) *mode = st.st_mode & 07777;
    return S_ISDIR(st.st_mode);
}

static int cd_exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void cd_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void cd_expect_file(const char *path, const char *text)
{
    char buf[64] = { 0 };
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    assert_int_equal(n, strlen(text));
    assert_string_equal(buf, text);
}

static void cd_expect_value(calypso *db, const char *k, const char *v)
{
    void *got = NULL;
    size_t glen = 0;
    TU_OK(db, calypso_get(db, k, strlen(k), &got, &glen));
    assert_int_equal(glen, strlen(v));
    assert_memory_equal(got, v, glen);
    calypso_free(got);
}

/* The open fails with want, says errmsg_has, and leaves *db NULL. */
static void cd_open_fails(const char *path, const calypso_options *o, int want,
                          const char *errmsg_has)
{
    calypso *db = (calypso *)&db;
    int rc = calypso_open(path, o, &db);
    if (rc != want || (errmsg_has && !strstr(calypso_errmsg(NULL), errmsg_has)))
        print_error("open(%s) -> %d (%s): %s; want %d and a message naming %s\n", path, rc,
                    calypso_strerror(rc), calypso_errmsg(NULL), want,
                    errmsg_has ? errmsg_has : "-");
    assert_int_equal(rc, want);
    assert_null(db);
    if (errmsg_has) assert_non_null(strstr(calypso_errmsg(NULL), errmsg_has));
}

static void test_open_creates_missing_parents(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    char *path = cd_join(root, "a/b/c/db");
    calypso_options o;
    calypso_options_default(&o);
    o.dir_mode = 0750;
    mode_t um = umask(022);
    calypso *db = NULL;
    TU_OK(NULL, calypso_open(path, &o, &db));
    TU_OK(db, calypso_put(db, "k", 1, "v", 1));
    TU_OK(NULL, calypso_close(db));
    const char *levels[] = { "a", "a/b", "a/b/c", "a/b/c/db" };
    for (int i = 0; i < 4; i++) {
        char *p = cd_join(root, levels[i]);
        mode_t m = 0;
        assert_true(cd_is_dir(p, &m));
        assert_int_equal(m, 0750);
        free(p);
    }
    TU_OK(NULL, calypso_open(path, &o, &db));
    cd_expect_value(db, "k", "v");
    TU_OK(NULL, calypso_close(db));

    /* Repeated and trailing slashes. */
    char *odd = cd_join(root, "x//y///z/");
    TU_OK(NULL, calypso_open(odd, NULL, &db));
    TU_OK(NULL, calypso_close(db));
    char *xyz = cd_join(root, "x/y/z");
    assert_true(cd_is_dir(xyz, NULL));
    char *meta = cd_join(xyz, "META");
    assert_true(cd_exists(meta));

    /* A relative path, from the directory it is relative to. */
    char cwd[4096];
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(root), 0);
    int rc = calypso_open("rel/one/db", NULL, &db);
    if (!rc) rc = calypso_close(db);
    assert_int_equal(chdir(cwd), 0);
    TU_OK(NULL, rc);
    char *rel = cd_join(root, "rel/one/db/META");
    assert_true(cd_exists(rel));

    umask(um);
    free(rel);
    free(meta);
    free(xyz);
    free(odd);
    free(path);
    tu_rmrf(root);
}

static void test_open_refuses_a_file_in_the_way(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    char *f = cd_join(root, "plain");
    cd_write_file(f, "keep");
    char *a = cd_join(root, "a");
    assert_int_equal(mkdir(a, 0755), 0);
    char *af = cd_join(a, "file");
    cd_write_file(af, "keep2");

    /* the path itself, its parent, a grandparent */
    cd_open_fails(f, NULL, CALYPSO_EINVAL, f);
    char *p1 = cd_join(f, "db");
    cd_open_fails(p1, NULL, CALYPSO_EINVAL, f);
    char *p2 = cd_join(af, "x/y/db");
    cd_open_fails(p2, NULL, CALYPSO_EINVAL, af);
    assert_non_null(strstr(calypso_errmsg(NULL), "not a directory"));
    cd_expect_file(f, "keep");
    cd_expect_file(af, "keep2");

    /* Nothing was created beside them. */
    int n = 0;
    DIR *d = opendir(a);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 1);

    free(p2);
    free(p1);
    free(af);
    free(a);
    free(f);
    tu_rmrf(root);
}

static void test_read_only_open_creates_nothing(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    calypso_options o;
    calypso_options_default(&o);
    o.read_only = 1;
    char *deep = cd_join(root, "m/n/db");
    cd_open_fails(deep, &o, CALYPSO_EIO, deep);
    char *m = cd_join(root, "m");
    assert_false(cd_exists(m));
    char *last = cd_join(root, "db");
    cd_open_fails(last, &o, CALYPSO_EIO, "No such file");
    assert_false(cd_exists(last));
    /* and a file in the way: an error too, nothing created */
    char *f = cd_join(root, "plain");
    cd_write_file(f, "keep");
    char *pf = cd_join(f, "db");
    calypso *db = NULL;
    assert_true(calypso_open(pf, &o, &db) < 0);
    assert_null(db);
    cd_expect_file(f, "keep");
    free(pf);
    free(f);
    free(last);
    free(m);
    free(deep);
    tu_rmrf(root);
}

/* The second of three mkdirs fails: the open fails naming it, the first
 * level stays (as with mkdir -p), and the next open completes the path. */
static void test_open_mkdir_failing_halfway(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    char *path = cd_join(root, "p/q/db");
    cy_os_fail_at(CY_OS_MKDIR, 2, EACCES, 0, 0);
    char *q = cd_join(root, "p/q");
    cd_open_fails(path, NULL, CALYPSO_EIO, q);
    cy_os_fail_reset();
    char *p = cd_join(root, "p");
    assert_true(cd_is_dir(p, NULL));
    assert_false(cd_exists(q));
    calypso *db = NULL;
    TU_OK(NULL, calypso_open(path, NULL, &db));
    TU_OK(NULL, calypso_close(db));
    assert_true(cd_is_dir(path, NULL));
    free(p);
    free(q);
    free(path);
    tu_rmrf(root);
}

static calypso_options cd_always(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.sync = CALYPSO_SYNC_ALWAYS;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

/* A power cut right after an acknowledged SYNC_ALWAYS put into a database
 * whose directory and two parents open just created: all still there. */
static void test_created_parents_survive_a_power_cut(void **state)
{
    (void)state;
    char *root = cu_scratch();
    char *path = cd_join(root, "n1/n2/db");
    calypso_options o = cd_always();
    cy_os_powerloss_begin();
    calypso *db = NULL;
    assert_int_equal(calypso_open(path, &o, &db), CALYPSO_OK);
    assert_int_equal(calypso_put(db, "k", 1, "v", 1), CALYPSO_OK);
    cy_os_powerloss_crash(CY_OS_PL_DROP, 1);
    calypso_close(db);
    cy_os_powerloss_end();
    db = NULL;
    TU_OK(NULL, calypso_open(path, &o, &db));
    cd_expect_value(db, "k", "v");

    /* The same for a backup into a missing nested path. */
    TU_OK(db, calypso_put(db, "k2", 2, "v2", 2));
    char *copy = cd_join(root, "b1/b2/copy");
    cy_os_powerloss_begin();
    TU_OK(db, calypso_backup(db, copy));
    cy_os_powerloss_crash(CY_OS_PL_DROP, 2);
    calypso_close(db);
    cy_os_powerloss_end();
    TU_OK(NULL, calypso_open(copy, &o, &db));
    cd_expect_value(db, "k", "v");
    cd_expect_value(db, "k2", "v2");
    TU_OK(NULL, calypso_close(db));
    free(copy);
    free(path);
    cu_rmrf(root);
}

static void test_backup_creates_missing_parents(void **state)
{
    (void)state;
    char *root = tu_tmpdir();
    char *src = cd_join(root, "src");
    calypso *db = NULL;
    TU_OK(NULL, calypso_open(src, NULL, &db));
    TU_OK(db, calypso_put(db, "k", 1, "v", 1));
    char *copy = cd_join(root, "backups/2026/12/copy");
    TU_OK(db, calypso_backup(db, copy));

    /* a file in the way: EINVAL naming it, nothing created under it */
    char *f = cd_join(root, "plain");
    cd_write_file(f, "keep");
    char *bad = cd_join(f, "sub/copy");
    TU_RC(db, CALYPSO_EINVAL, calypso_backup(db, bad));
    assert_non_null(strstr(calypso_errmsg(db), f));
    cd_expect_file(f, "keep");
    /* the destination itself a file */
    TU_RC(db, CALYPSO_EINVAL, calypso_backup(db, f));
    cd_expect_file(f, "keep");

    TU_OK(db, calypso_put(db, "after", 5, "a", 1));
    TU_OK(NULL, calypso_close(db));
    TU_OK(NULL, calypso_open(copy, NULL, &db));
    cd_expect_value(db, "k", "v");
    assert_int_equal(calypso_len(db), 1);
    TU_OK(NULL, calypso_close(db));
    free(bad);
    free(f);
    free(copy);
    free(src);
    tu_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_creates_missing_parents),
        cmocka_unit_test(test_open_refuses_a_file_in_the_way),
        cmocka_unit_test(test_read_only_open_creates_nothing),
        cmocka_unit_test(test_open_mkdir_failing_halfway),
        cmocka_unit_test(test_created_parents_survive_a_power_cut),
        cmocka_unit_test(test_backup_creates_missing_parents),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
