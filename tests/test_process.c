/*
 * test_process.c: several processes and one database directory.
 *
 * - a second writer (a child process, and a second handle in this process)
 *   gets CALYPSO_ELOCKED while a writer holds the directory, and its errmsg
 *   names the holder's pid; a read-only open beside the writer succeeds;
 * - read-only handles coexist: two in this process and one in a child, all
 *   reading; a writer opens beside them (one at a time);
 * - a writer killed with SIGKILL leaves no stale lock behind;
 * - a read-only open of a missing directory fails cleanly and creates
 *   nothing.
 *
 * Children are this binary run again (fork + exec), so they start with no
 * threads and no state inherited from the parent's handles.
 */
#include "testutil.h"
#include "engine_util.h"
#include "internal.h"

#define CHILD_CHECK(x)                                                          \
    do {                                                                        \
        if (!(x)) {                                                             \
            fprintf(stderr, "child %ld: check failed at line %d: %s\n",         \
                    (long)getpid(), __LINE__, #x);                              \
            _exit(3);                                                           \
        }                                                                       \
    } while (0)

/* argv: "open" dir rw|ro expected_rc holder_pid
 *   opens, checks the code; on ELOCKED with holder_pid != 0 checks that the
 *   errmsg names it; on success reads "k" (must be "v") and, for rw, puts
 *   "child" = "c"; exits 0 when all held.
 * argv: "die" dir: opens for writing, puts "died" = "d", SIGKILLs itself. */
static int child_main(int argc, char **argv)
{
    CHILD_CHECK(argc >= 3);
    const char *dir = argv[2];
    calypso_options o;
    memset(&o, 0, sizeof o);
    calypso *db = (calypso *)&db;
    if (!strcmp(argv[1], "die")) {
        CHILD_CHECK(calypso_open(dir, &o, &db) == CALYPSO_OK);
        CHILD_CHECK(calypso_put(db, "died", 4, "d", 1) == CALYPSO_OK);
        raise(SIGKILL);
        _exit(4);
    }
    CHILD_CHECK(!strcmp(argv[1], "open") && argc >= 6);
    o.read_only = !strcmp(argv[3], "ro");
    int want = atoi(argv[4]);
    long holder = atol(argv[5]);
    int rc = calypso_open(dir, &o, &db);
    const char *m = calypso_errmsg(NULL);
    if (rc != want)
        fprintf(stderr, "child: open -> %d (%s), want %d: %s\n", rc, calypso_strerror(rc),
                want, m);
    CHILD_CHECK(rc == want);
    if (rc != CALYPSO_OK) {
        CHILD_CHECK(db == NULL);
        CHILD_CHECK(m && *m);
        if (rc == CALYPSO_ELOCKED && holder) {
            char pid[32];
            snprintf(pid, sizeof pid, "%ld", holder);
            if (!strstr(m, pid)) fprintf(stderr, "child: errmsg '%s' lacks pid %s\n", m, pid);
            CHILD_CHECK(strstr(m, pid) != NULL);
        }
        return 0;
    }
    void *v = NULL;
    size_t vlen = 0;
    CHILD_CHECK(calypso_get(db, "k", 1, &v, &vlen) == CALYPSO_OK);
    CHILD_CHECK(vlen == 1 && memcmp(v, "v", 1) == 0);
    calypso_free(v);
    if (!o.read_only) CHILD_CHECK(calypso_put(db, "child", 5, "c", 1) == CALYPSO_OK);
    else CHILD_CHECK(calypso_put(db, "child", 5, "c", 1) == CALYPSO_EREADONLY);
    CHILD_CHECK(calypso_close(db) == CALYPSO_OK);
    return 0;
}

/* Runs "open dir mode want holder" and asserts the child passed. */
static void child_open(const char *dir, const char *mode, int want, long holder)
{
    char w[16], h[32];
    snprintf(w, sizeof w, "%d", want);
    snprintf(h, sizeof h, "%ld", holder);
    char *args[] = { (char *)"open", (char *)dir, (char *)mode, w, h, NULL };
    int st = eu_run_self(args);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        print_error("child open %s %s want %d: status %#x\n", dir, mode, want, st);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

static void make_db(const char *dir)
{
    calypso *db = eu_open(dir, NULL);
    eu_put_str(db, "k", "v");
    eu_close(db);
}

static void test_second_writer_locked(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    make_db(dir);
    calypso *db = eu_open(dir, NULL);
    long me = (long)getpid();

    /* Another process: a writer is refused, a reader gets in. */
    child_open(dir, "rw", CALYPSO_ELOCKED, me);
    child_open(dir, "ro", CALYPSO_OK, 0);

    /* A second handle in this process is refused as well. */
    calypso *db2 = (calypso *)&db2;
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_open(dir, NULL, &db2));
    assert_null(db2);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", me);
    print_message("ELOCKED errmsg: %s\n", calypso_errmsg(NULL));
    assert_non_null(strstr(calypso_errmsg(NULL), pid));
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    db2 = eu_open(dir, &ro);                /* a reader in this process too */
    eu_expect_str(db2, "k", "v");
    EU_RC(db2, CALYPSO_EREADONLY, calypso_put(db2, "x", 1, "y", 1));
    eu_close(db2);

    /* The holder works on, undisturbed by the other openers. */
    eu_put_str(db, "parent", "p");
    eu_expect_str(db, "k", "v");
    EU_OK(db, calypso_reopen(db));          /* keeps its lock across reopen */
    child_open(dir, "rw", CALYPSO_ELOCKED, me);
    eu_close(db);

    /* Once released, a child gets in and writes. */
    child_open(dir, "rw", CALYPSO_OK, 0);
    db = eu_open(dir, NULL);
    eu_expect_str(db, "child", "c");
    eu_expect_str(db, "parent", "p");
    eu_close(db);
    tu_rmrf(dir);
}

static void test_readers_coexist(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    make_db(dir);
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    calypso *r1 = eu_open(dir, &ro);
    calypso *r2 = eu_open(dir, &ro);
    eu_expect_str(r1, "k", "v");
    eu_expect_str(r2, "k", "v");

    /* A reader in another process too; a writer in another process gets
     * in beside them all. */
    child_open(dir, "ro", CALYPSO_OK, 0);
    child_open(dir, "rw", CALYPSO_OK, 0);
    eu_expect_str(r1, "k", "v");

    /* A writer in this process too, and while it holds the directory a
     * second writer is refused, readers are not. */
    calypso *w = eu_open(dir, NULL);
    eu_expect_str(w, "child", "c");
    child_open(dir, "rw", CALYPSO_ELOCKED, (long)getpid());
    child_open(dir, "ro", CALYPSO_OK, 0);
    eu_put_str(w, "k2", "v2");
    EU_OK(r2, calypso_reopen(r2));           /* catches up with the writer */
    eu_expect_str(r2, "k2", "v2");
    eu_close(r1);
    eu_close(w);
    eu_expect_str(r2, "k", "v");
    eu_close(r2);
    tu_rmrf(dir);
}

static void test_no_stale_lock_after_kill(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    make_db(dir);
    char *args[] = { (char *)"die", dir, NULL };
    int st = eu_run_self(args);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    calypso *db = eu_open(dir, NULL);
    eu_expect_str(db, "died", "d");
    eu_expect_str(db, "k", "v");
    eu_close(db);
    /* And read-only too. */
    st = eu_run_self(args);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    db = eu_open(dir, &ro);
    eu_expect_str(db, "died", "d");
    eu_close(db);
    tu_rmrf(dir);
}

static void test_readonly_missing_dir(void **state)
{
    (void)state;
    char *base = tu_tmpdir();
    char dir[1024];
    eu_path(dir, sizeof dir, base, "nope");
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    calypso *db = (calypso *)&db;
    int rc = calypso_open(dir, &ro, &db);
    print_message("read-only open of a missing dir: %d (%s): %s\n", rc, calypso_strerror(rc),
                  calypso_errmsg(NULL));
    assert_true(rc < 0);
    assert_null(db);
    assert_true(strlen(calypso_errmsg(NULL)) > 0);
    assert_false(eu_exists(dir));
    assert_int_equal(eu_dir_entries(base), 0);
    /* In a child process as well (no stray lock or file left behind). */
    child_open(dir, "ro", rc, 0);
    assert_false(eu_exists(dir));
    /* A writer then creates it. */
    db = eu_open(dir, NULL);
    eu_put_str(db, "k", "v");
    eu_close(db);
    child_open(dir, "ro", CALYPSO_OK, 0);
    tu_rmrf(base);
}

int main(int argc, char **argv)
{
    if (argc > 1) return child_main(argc, argv);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_writer_locked),
        cmocka_unit_test(test_readers_coexist),
        cmocka_unit_test(test_no_stale_lock_after_kill),
        cmocka_unit_test(test_readonly_missing_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
