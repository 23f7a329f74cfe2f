/*
 * test_destroy.c: calypso_destroy.
 *
 * - test_destroy_closed: every file calypso made goes (datafiles, hints,
 *   META, WATERMARK, IDS, RESERVE, LOCK, merge/, temporaries), and the
 *   directory with them when nothing else is left; open then makes a fresh,
 *   empty database.
 * - test_destroy_keeps_foreign_files: files and directories calypso did
 *   not make stay, the directory too, and so do look-alikes (a *.tmp of no
 *   calypso file, a datafile name with a wrong number of digits).
 * - test_destroy_refuses_non_database: no such path, a file, an empty
 *   directory, a directory whose META names no calypso format, a newer
 *   format version, bad arguments; nothing removed.
 * - test_destroy_refuses_open: a writer or a reader open in this process,
 *   or in another one: CALYPSO_ELOCKED, nothing removed; after they close
 *   it goes. A reader cannot open while a destroy holds the lock.
 */
#include "testutil.h"
#include "engine_util.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void make_db(const char *dir, int merge)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = -1;
    calypso *db = eu_open(dir, &o);
    char key[16], val[100];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%03d", i % 60);
        snprintf(val, sizeof val, "v%d-%060d", i, i);
        eu_put_str(db, key, val);
    }
    if (merge) EU_OK(db, calypso_merge(db));
    eu_close(db);
}

/* make_db's last value of k001 (i = 241). */
static const char *last_k001(void)
{
    static char v[100];
    snprintf(v, sizeof v, "v%d-%060d", 241, 241);
    return v;
}

/* Number of entries of dir (not . and ..). */
static int entries(const char *dir)
{
    return eu_dir_entries(dir);
}

static void test_destroy_closed(void **state)
{
    (void)state;
    char *base = tu_tmpdir();
    char dir[1024], p[1024], m[1024];
    eu_path(dir, sizeof dir, base, "db");
    make_db(dir, 1);
    /* What a crash can leave behind too: merge/ and temporaries. */
    eu_path(m, sizeof m, dir, "merge");
    assert_int_equal(mkdir(m, 0755), 0);
    eu_path(p, sizeof p, m, "1073741999.data");
    eu_write_file(p, "x", 1);
    eu_path(p, sizeof p, m, "COMMIT.tmp");
    eu_write_file(p, "x", 1);
    eu_path(p, sizeof p, dir, "0000000099.hint.tmp");
    eu_write_file(p, "x", 1);
    eu_path(p, sizeof p, dir, "WATERMARK.tmp");
    eu_write_file(p, "x", 1);
    assert_true(entries(dir) > 8);
    eu_path(p, sizeof p, dir, "RESERVE");
    assert_true(eu_exists(p));
    EU_OK(NULL, calypso_destroy(dir));
    assert_false(eu_exists(dir));
    assert_int_equal(entries(base), 0);

    /* Open makes a fresh database there; destroy it again, with a trailing
     * slash this time. */
    calypso *db = eu_open(dir, NULL);
    assert_int_equal(calypso_len(db), 0);
    eu_expect_absent_str(db, "k001");
    eu_put_str(db, "new", "1");
    eu_close(db);
    db = eu_open(dir, NULL);
    eu_expect_str(db, "new", "1");
    assert_int_equal(calypso_len(db), 1);
    eu_close(db);
    char slash[1100];
    snprintf(slash, sizeof slash, "%s/", dir);
    EU_OK(NULL, calypso_destroy(slash));
    assert_false(eu_exists(dir));
    tu_rmrf(base);
}

static void test_destroy_keeps_foreign_files(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    make_db(dir, 0);
    const char *foreign[] = { "notes.txt", "notes.tmp", "123.data", "00000000001.data",
                              "0000000001.data.bak", "LOCK.tmp", "META.bak" };
    char p[1024], sub[1024], m[1024];
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        eu_path(p, sizeof p, dir, foreign[i]);
        eu_write_file(p, "mine", 4);
    }
    eu_path(sub, sizeof sub, dir, "attachments");
    assert_int_equal(mkdir(sub, 0755), 0);
    eu_path(p, sizeof p, sub, "0000000001.data");   /* not in the database's own place */
    eu_write_file(p, "mine", 4);
    /* merge/ with a file of someone else's in it stays (with that file). */
    eu_path(m, sizeof m, dir, "merge");
    assert_int_equal(mkdir(m, 0755), 0);
    eu_path(p, sizeof p, m, "readme");
    eu_write_file(p, "mine", 4);
    eu_path(p, sizeof p, m, "COMMIT");
    eu_write_file(p, "inputs 0\noutputs 0\nend\n", 23);

    EU_OK(NULL, calypso_destroy(dir));
    assert_true(eu_exists(dir));
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        eu_path(p, sizeof p, dir, foreign[i]);
        assert_true(eu_exists(p));
    }
    eu_path(p, sizeof p, sub, "0000000001.data");
    assert_true(eu_exists(p));
    eu_path(p, sizeof p, m, "readme");
    assert_true(eu_exists(p));
    eu_path(p, sizeof p, m, "COMMIT");
    assert_false(eu_exists(p));
    /* Exactly the foreign entries are left: 7 files, attachments/, merge/. */
    assert_int_equal(entries(dir), 9);
    assert_int_equal(eu_newest_fid(dir), 0);
    const char *gone[] = { "META", "LOCK", "WATERMARK", "IDS", "RESERVE" };
    for (size_t i = 0; i < sizeof gone / sizeof *gone; i++) {
        eu_path(p, sizeof p, dir, gone[i]);
        assert_false(eu_exists(p));
    }
    /* No longer a database. */
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(dir));
    tu_rmrf(dir);
}

static void test_destroy_refuses_non_database(void **state)
{
    (void)state;
    char *base = tu_tmpdir();
    char p[1024], f[1024];
    eu_path(p, sizeof p, base, "missing");
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(p));
    print_message("missing: %s\n", calypso_errmsg(NULL));
    assert_non_null(strstr(calypso_errmsg(NULL), "missing"));
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(NULL));
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(""));
    char longp[5000];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = 0;
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(longp));

    /* A plain file. */
    eu_path(f, sizeof f, base, "file");
    eu_write_file(f, "x", 1);
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(f));
    assert_true(eu_exists(f));

    /* A directory without META, with things in it that look like ours. */
    char d[1024];
    eu_path(d, sizeof d, base, "plain");
    assert_int_equal(mkdir(d, 0755), 0);
    eu_path(p, sizeof p, d, "0000000001.data");
    eu_write_file(p, "x", 1);
    eu_path(p, sizeof p, d, "LOCK");
    eu_write_file(p, "x", 1);
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(d));
    print_message("no META: %s\n", calypso_errmsg(NULL));
    assert_non_null(strstr(calypso_errmsg(NULL), "META"));
    assert_int_equal(entries(d), 2);

    /* An empty directory. */
    char e[1024];
    eu_path(e, sizeof e, base, "empty");
    assert_int_equal(mkdir(e, 0755), 0);
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(e));
    assert_true(eu_exists(e));

    /* META that names no calypso format, and one of a newer format. */
    eu_path(p, sizeof p, d, "META");
    eu_write_file(p, "something else\n", 15);
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(d));
    eu_write_file(p, "calypso-format x\n", 17);
    EU_RC(NULL, CALYPSO_EINVAL, calypso_destroy(d));
    eu_write_file(p, "calypso-format 2\n", 17);
    EU_RC(NULL, CALYPSO_EVERSION, calypso_destroy(d));
    assert_int_equal(entries(d), 3);
    /* META unreadable (a directory in its place). */
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0755), 0);
    int rc = calypso_destroy(d);
    print_message("META a directory: %d %s\n", rc, calypso_errmsg(NULL));
    assert_true(rc == CALYPSO_EIO || rc == CALYPSO_EINVAL);
    assert_int_equal(entries(d), 3);
    tu_rmrf(base);
}

/* argv: "hold" dir rw|ro fifo: opens, writes one byte to fifo, waits to be
 * killed. */
static int child_main(char **argv)
{
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.read_only = !strcmp(argv[2], "ro");
    calypso *db = NULL;
    if (calypso_open(argv[1], &o, &db) != CALYPSO_OK) _exit(3);
    int fd = open(argv[3], O_WRONLY);
    if (fd < 0 || write(fd, "x", 1) != 1) _exit(4);
    for (;;) pause();
}

static pid_t spawn_holder(const char *dir, const char *mode, const char *fifo)
{
    static char self[4096];
    if (!self[0]) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(len > 0);
        self[len] = 0;
    }
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char *argv[] = { (char *)"child", (char *)"hold", (char *)dir, (char *)mode,
                         (char *)fifo, NULL };
        execv(self, argv);
        _exit(127);
    }
    int fd = open(fifo, O_RDONLY);
    assert_true(fd >= 0);
    char c;
    assert_int_equal(read(fd, &c, 1), 1);    /* the child has it open */
    close(fd);
    return pid;
}

static void stop_holder(pid_t pid)
{
    int st;
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0) assert_int_equal(errno, EINTR);
}

static void test_destroy_refuses_open(void **state)
{
    (void)state;
    char *base = tu_tmpdir();
    char dir[1024], fifo[1024];
    eu_path(dir, sizeof dir, base, "db");
    eu_path(fifo, sizeof fifo, base, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    make_db(dir, 0);
    int n = entries(dir);

    /* A writer in this process. */
    calypso *w = eu_open(dir, NULL);
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_destroy(dir));
    print_message("writer open: %s\n", calypso_errmsg(NULL));
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    assert_non_null(strstr(calypso_errmsg(NULL), pid));
    eu_expect_str(w, "k001", last_k001());
    eu_close(w);
    assert_int_equal(entries(dir), n);

    /* A reader in this process. */
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    calypso *r = eu_open(dir, &ro);
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_destroy(dir));
    print_message("reader open: %s\n", calypso_errmsg(NULL));
    EU_OK(r, calypso_reopen(r));             /* still refused after a reopen */
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_destroy(dir));
    eu_expect_str(r, "k001", last_k001());
    eu_close(r);
    assert_int_equal(entries(dir), n);

    /* A writer, then a reader, in another process. */
    pid_t h = spawn_holder(dir, "rw", fifo);
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_destroy(dir));
    snprintf(pid, sizeof pid, "%ld", (long)h);
    assert_non_null(strstr(calypso_errmsg(NULL), pid));
    stop_holder(h);
    h = spawn_holder(dir, "ro", fifo);
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_destroy(dir));
    stop_holder(h);
    assert_true(entries(dir) >= n);          /* the killed writer may have left a hint */

    /* While a destroy holds LOCK (byte 1 exclusive, as it does while it
     * removes files), a reader's open is refused. */
    char lock[1100];
    eu_path(lock, sizeof lock, dir, "LOCK");
    int lfd = open(lock, O_RDWR);
    assert_true(lfd >= 0);
    struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1, .l_len = 1 };
    assert_int_equal(fcntl(lfd, F_OFD_SETLK, &fl), 0);
    calypso *r2 = (calypso *)&r2;
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_open(dir, &ro, &r2));
    print_message("reader during destroy: %s\n", calypso_errmsg(NULL));
    assert_null(r2);
    close(lfd);

    /* All closed (the killed ones too: their locks died with them). */
    EU_OK(NULL, calypso_destroy(dir));
    assert_false(eu_exists(dir));
    tu_rmrf(base);
}

int main(int argc, char **argv)
{
    if (argc > 4 && !strcmp(argv[1], "hold")) return child_main(argv + 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_destroy_closed),
        cmocka_unit_test(test_destroy_keeps_foreign_files),
        cmocka_unit_test(test_destroy_refuses_non_database),
        cmocka_unit_test(test_destroy_refuses_open),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
