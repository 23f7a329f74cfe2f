/*
 * test_cli.c: the calypso command-line tool, driven as a user drives it:
 * the built binary is run with fork/exec, with stdin fed from a buffer and
 * stdout, stderr and the exit code captured. Covers every command's output
 * and exit code, usage errors, a missing database, a locked one (held by
 * this process through the public API), escaping on a terminal (a pty),
 * and dump -> load round trips of random binary data compared key by key
 * (seed printed; replay with CALYPSO_SEED). Namespaces are test_cli_ns.c's;
 * running the tool is cli_run.h's.
 */
#include "cli_run.h"

#include <fcntl.h>

/* >> one key */
static void test_put_get_del_has(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "k", "v1");
    EXPECT(0, "v1", "get", s.db, "k");              /* raw: no newline on a pipe */
    EXPECT(0, "", "put", s.db, "k", "value two");
    EXPECT(0, "value two", "get", s.db, "k");
    EXPECT(0, "76616c75652074776f\n", "get", "--hex", s.db, "k");
    EXPECT(0, "", "has", s.db, "k");
    EXPECT(1, "", "has", s.db, "nope");
    EXPECT_ERR(1, "key not found", "get", s.db, "nope");
    EXPECT(0, "", "put", s.db, "empty", "");
    EXPECT(0, "", "get", s.db, "empty");
    EXPECT(0, "", "has", s.db, "empty");
    EXPECT(0, "", "del", s.db, "k");
    EXPECT(1, "", "has", s.db, "k");
    EXPECT_ERR(1, "key not found", "del", s.db, "k");
    EXPECT(0, "", "put", s.db, "--", "-dash", "-5");   /* -- ends options */
    EXPECT(0, "-5", "get", s.db, "--", "-dash");
    tu_rmrf(s.dir);
}

static void test_put_from_stdin(void **state)
{
    (void)state;
    scratch s = scratch_new();
    const char bin[] = "a\0b\nc\xff";
    run_t r = RUN_IN(bin, sizeof bin - 1, "put", s.db, "bin", "-");
    assert_int_equal(r.code, 0);
    run_free(&r);
    r = RUN("get", s.db, "bin");
    assert_int_equal(r.code, 0);
    assert_int_equal(r.outlen, sizeof bin - 1);
    assert_memory_equal(r.out, bin, sizeof bin - 1);
    run_free(&r);
    EXPECT(0, "6100620a63ff\n", "get", s.db, "bin", "--hex");
    r = RUN_IN("", 0, "put", s.db, "none", "-");       /* empty stdin: empty value */
    assert_int_equal(r.code, 0);
    run_free(&r);
    EXPECT(0, "", "has", s.db, "none");
    tu_rmrf(s.dir);
}

static void test_put_ttl(void **state)
{
    (void)state;
    scratch s = scratch_new();
    /* No timing assumption: one TTL already passed when it is read, one
     * far in the future (a loaded machine may take any time between). */
    EXPECT(0, "", "put", s.db, "t", "v", "--ttl", "1ms");
    EXPECT(0, "", "put", "--ttl", "1h", s.db, "long", "v");
    usleep(20 * 1000);
    EXPECT(1, "", "has", s.db, "t");
    EXPECT_ERR(1, "expired", "get", s.db, "t");
    EXPECT(0, "v", "get", s.db, "long");
    EXPECT_ERR(2, "bad --ttl", "put", s.db, "k", "v", "--ttl", "10x");
    EXPECT_ERR(2, "bad --ttl", "put", s.db, "k", "v", "--ttl", "0");
    EXPECT_ERR(2, "bad --ttl", "put", s.db, "k", "v", "--ttl", "-5s");
    EXPECT_ERR(2, "needs an argument", "put", s.db, "k", "v", "--ttl");
    tu_rmrf(s.dir);
}

/* >> usage */
static const char *const all_cmds[] = {
    "put", "get", "del", "has", "stats", "keys", "scan", "merge", "gc",
    "check", "dump", "load", "backup", "version", "help",
};

static void test_usage_errors(void **state)
{
    (void)state;
    scratch s = scratch_new();
    run_t r = RUN("");
    assert_int_equal(r.code, 2);
    run_free(&r);
    r = run_in(NULL, 0, (const char *const[]){ NULL });    /* no command at all */
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "usage: calypso COMMAND"));
    assert_int_equal(r.outlen, 0);
    run_free(&r);
    EXPECT_ERR(2, "unknown command 'frob'", "frob", s.db);
    EXPECT_ERR(2, "wrong number of arguments", "get", s.db);
    EXPECT_ERR(2, "wrong number of arguments", "get", s.db, "a", "b");
    EXPECT_ERR(2, "wrong number of arguments", "put", s.db, "k");
    EXPECT_ERR(2, "wrong number of arguments", "stats");
    EXPECT_ERR(2, "usage: calypso get DB KEY", "get");
    EXPECT_ERR(2, "bad option '--frob'", "get", "--frob", s.db, "k");
    EXPECT_ERR(2, "bad option '--json=1'", "stats", "--json=1", s.db);
    EXPECT_ERR(2, "unknown option '-z'", "keys", "-z", s.db);
    EXPECT_ERR(2, "bad option '--ttl'", "get", s.db, "k", "--ttl", "5s");
    EXPECT_ERR(2, "bad --limit", "keys", s.db, "--limit", "many");
    EXPECT_ERR(2, "exclude each other", "keys", s.db, "--prefix", "a", "--range", "a", "b");
    EXPECT_ERR(2, "two bounds", "keys", s.db, "--range", "a");
    EXPECT_ERR(2, "sorts after", "keys", s.db, "--range", "b", "a");
    EXPECT_ERR(2, "the key is empty", "put", s.db, "", "v");
    assert_false(path_exists(s.db));          /* no usage error created it */
    tu_rmrf(s.dir);
}

static void test_help_and_version(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof all_cmds / sizeof all_cmds[0]; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: calypso %s", all_cmds[i]);
        run_t r = RUN(all_cmds[i], "--help");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, want));
        assert_int_equal(r.errlen, 0);
        run_free(&r);
        r = RUN("help", all_cmds[i]);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, want));
        run_free(&r);
    }
    const char *const overview[] = { "help", "--help", "-h" };
    for (size_t i = 0; i < 3; i++) {
        run_t r = RUN(overview[i]);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "Exit codes:"));
        assert_non_null(strstr(r.out, "4  database locked"));
        run_free(&r);
    }
    EXPECT_ERR(2, "unknown command 'nope'", "help", "nope");
    run_t r = RUN("version");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "calypso " CALYPSO_VERSION));
    run_free(&r);
    r = RUN("dump", "--help");
    assert_non_null(strstr(r.out, "# calypso-dump V"));
    assert_non_null(strstr(r.out, "# ns NAME"));
    run_free(&r);
}

/* >> missing and locked databases */
static void test_missing_database(void **state)
{
    (void)state;
    scratch s = scratch_new();
    const char *const ro[] = { "get", "has", "del" };
    for (size_t i = 0; i < 3; i++) EXPECT_ERR(3, "no database at", ro[i], s.db, "k");
    const char *const whole[] = { "stats", "keys", "scan", "check", "dump", "merge", "gc" };
    for (size_t i = 0; i < 7; i++) EXPECT_ERR(3, "no database at", whole[i], s.db);
    char dest[600];
    snprintf(dest, sizeof dest, "%s/copy", s.dir);
    EXPECT_ERR(3, "no database at", "backup", s.db, dest);
    assert_false(path_exists(s.db));
    assert_false(path_exists(dest));
    tu_rmrf(s.dir);
}

static void test_locked_database(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "k", "v");
    calypso *db = NULL;
    assert_int_equal(calypso_open(s.db, NULL, &db), CALYPSO_OK);
    char pid[32];
    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    EXPECT_ERR(4, pid, "put", s.db, "k", "v2");
    EXPECT_ERR(4, "locked", "put", s.db, "k", "v2");
    EXPECT_ERR(4, pid, "merge", s.db);
    /* Read-only commands run beside the writer and see what it wrote. */
    assert_int_equal(calypso_put(db, "k", 1, "w", 1), CALYPSO_OK);
    EXPECT(0, "w", "get", s.db, "k");
    EXPECT(0, "k\n", "keys", s.db);
    assert_int_equal(calypso_close(db), CALYPSO_OK);

    /* Read-only commands run beside another process's read-only handle,
     * and so do writing ones: a writer waits for no reader. */
    calypso_options o;
    calypso_options_default(&o);
    o.read_only = 1;
    assert_int_equal(calypso_open(s.db, &o, &db), CALYPSO_OK);
    EXPECT(0, "w", "get", s.db, "k");
    EXPECT(0, "k\n", "keys", s.db);
    EXPECT(0, "", "has", s.db, "k");
    EXPECT(0, "", "put", s.db, "k", "v2");
    EXPECT(0, "v2", "get", s.db, "k");
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    tu_rmrf(s.dir);
}

/* >> walks */
static void fill_abc(const char *db)
{
    const char *const keys[] = { "a", "ab", "b", "c", "d" };
    for (size_t i = 0; i < 5; i++) {
        char val[8];
        snprintf(val, sizeof val, "v%s", keys[i]);
        EXPECT(0, "", "put", db, keys[i], val);
    }
}

static void test_keys(void **state)
{
    (void)state;
    scratch s = scratch_new();
    fill_abc(s.db);
    EXPECT(0, "a\nab\nb\nc\nd\n", "keys", s.db);
    EXPECT(0, "a\nab\n", "keys", s.db, "--prefix", "a");
    EXPECT(0, "", "keys", s.db, "--prefix", "zz");
    EXPECT(0, "ab\nb\nc\n", "keys", s.db, "--range", "ab", "c");
    EXPECT(0, "ab\nb\nc\n", "keys", "--range", "ab", "c", s.db);
    EXPECT(0, "a\nab\n", "keys", s.db, "--limit", "2");
    EXPECT(0, "", "keys", s.db, "--limit", "0");
    EXPECT(0, "d\nc\nb\nab\na\n", "keys", s.db, "--reverse");
    EXPECT(0, "d\nc\n", "keys", s.db, "--reverse", "--limit", "2");
    EXPECT(0, "c\nb\n", "keys", s.db, "--range", "ab", "c", "--reverse", "--limit", "2");
    EXPECT(0, "ab\na\n", "keys", s.db, "--prefix", "a", "--reverse", "--limit", "9");
    EXPECT(0, "61\n6162\n", "keys", s.db, "--prefix", "a", "--hex");
    run_t r = RUN("keys", s.db, "-0", "--limit", "2");
    assert_int_equal(r.code, 0);
    assert_int_equal(r.outlen, 5);
    assert_memory_equal(r.out, "a\0ab\0", 5);
    run_free(&r);
    tu_rmrf(s.dir);
}

static void test_scan(void **state)
{
    (void)state;
    scratch s = scratch_new();
    fill_abc(s.db);
    EXPECT(0, "a\tva\nab\tvab\nb\tvb\nc\tvc\nd\tvd\n", "scan", s.db);
    EXPECT(0, "a\tva\nab\tvab\n", "scan", s.db, "--prefix", "a");
    EXPECT(0, "b\tvb\nc\tvc\n", "scan", s.db, "--range", "b", "c");
    EXPECT(0, "d\tvd\nc\tvc\n", "scan", s.db, "--reverse", "--limit", "2");
    EXPECT(0, "61\t7661\n", "scan", s.db, "--limit", "1", "--hex");
    run_t r = RUN("scan", s.db, "--null", "--limit", "1");
    assert_int_equal(r.outlen, 5);
    assert_memory_equal(r.out, "a\0va\0", 5);
    run_free(&r);
    tu_rmrf(s.dir);
}

/* The tool escapes output that is not printable when stdout is a terminal:
 * run it with stdout on a pseudo-terminal. */
static void test_terminal_escaping(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "k\x01", "x\ny\\z");
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    assert_true(master >= 0);
    assert_int_equal(grantpt(master), 0);
    assert_int_equal(unlockpt(master), 0);
    int slave = open(ptsname(master), O_RDWR | O_NOCTTY);
    assert_true(slave >= 0);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(slave, 1);
        execl(cli_bin, cli_bin, "scan", s.db, (char *)NULL);
        _exit(127);
    }
    close(slave);
    char buf[256];
    size_t n = 0;
    for (ssize_t k; n < sizeof buf - 1 && (k = read(master, buf + n, sizeof buf - 1 - n)) > 0;)
        n += (size_t)k;
    buf[n] = '\0';
    int st;
    waitpid(pid, &st, 0);
    close(master);
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_non_null(strstr(buf, "k\\x01\tx\\ny\\\\z"));
    tu_rmrf(s.dir);
}

/* >> whole-database commands */
static void test_stats(void **state)
{
    (void)state;
    scratch s = scratch_new();
    fill_abc(s.db);
    run_t r = RUN("stats", s.db);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "keys          5\n"));
    assert_non_null(strstr(r.out, "datafiles "));
    assert_non_null(strstr(r.out, "reclaimable "));
    run_free(&r);
    r = RUN("stats", s.db, "--json");
    assert_int_equal(r.code, 0);
    assert_int_equal(r.out[0], '{');
    assert_non_null(strstr(r.out, "\"keys\":5,"));
    assert_non_null(strstr(r.out, "\"merges\":0}\n"));
    run_free(&r);
    tu_rmrf(s.dir);
}

static void test_merge_gc_backup(void **state)
{
    (void)state;
    scratch s = scratch_new();
    fill_abc(s.db);
    for (int i = 0; i < 5; i++) EXPECT(0, "", "put", s.db, "a", "again");
    EXPECT(0, "", "put", s.db, "brief", "x", "--ttl", "1ms");
    setenv("CALYPSO_PROGRESS", "1", 1);          /* draw the bar though not a tty */
    run_t r = RUN("merge", s.db);
    unsetenv("CALYPSO_PROGRESS");
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "merged in "));
    assert_non_null(strstr(r.out, " reclaimed\n"));
    assert_non_null(strstr(r.err, "merging ["));
    run_free(&r);
    r = RUN("merge", s.db, "--quiet");
    assert_int_equal(r.code, 0);
    assert_int_equal(r.errlen, 0);
    run_free(&r);
    r = RUN("gc", s.db);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "bytes reclaimable by merge"));
    run_free(&r);
    EXPECT(0, "again", "get", s.db, "a");
    EXPECT(0, "a\nab\nb\nc\nd\n", "keys", s.db);

    char dest[600];
    snprintf(dest, sizeof dest, "%s/copy", s.dir);
    EXPECT(0, "", "backup", s.db, dest);
    EXPECT(0, "a\nab\nb\nc\nd\n", "keys", dest);
    EXPECT(0, "again", "get", dest, "a");
    run_t again = RUN("backup", s.db, dest);       /* DEST is not empty now */
    assert_true(again.code >= 3);
    run_free(&again);
    tu_rmrf(s.dir);
}

/* Flips one byte of the first occurrence of pat in the database's files. */
static int damage(const char *db, const char *pat)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls '%s'", db);
    FILE *ls = popen(cmd, "r");
    char name[256];
    int done = 0;
    while (!done && fgets(name, sizeof name, ls)) {
        name[strcspn(name, "\n")] = '\0';
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", db, name);
        int fd = open(path, O_RDWR);
        if (fd < 0) continue;
        char buf[1 << 16];
        ssize_t n = read(fd, buf, sizeof buf);
        char *hit = n > 0 ? memmem(buf, (size_t)n, pat, strlen(pat)) : NULL;
        if (hit) {
            char b = (char)(hit[1] ^ 0x20);
            done = pwrite(fd, &b, 1, hit + 1 - buf) == 1;
        }
        close(fd);
    }
    pclose(ls);
    return done;
}

static void test_check(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "victim", "PRECIOUS-DATA-PRECIOUS-DATA");
    fill_abc(s.db);
    EXPECT(0, "checked 6 keys: 6 ok, 0 damaged, 0 unreadable\n", "check", s.db);
    /* After a merge the records sit in a sealed file with a hint file: open
     * trusts the hints, and reading the record finds the damage. */
    run_t r = RUN("merge", s.db);
    assert_int_equal(r.code, 0);
    run_free(&r);
    EXPECT(0, "", "put", s.db, "after", "merge");
    assert_true(damage(s.db, "PRECIOUS-DATA"));
    r = RUN("check", s.db);
    if (r.code != 5) fprintf(stderr, "out: %s\nerr: %s\n", r.out, r.err);
    assert_int_equal(r.code, 5);
    assert_non_null(strstr(r.out, "damaged: key 'victim': checksum failed: "));
    assert_non_null(strstr(r.out, ".data at offset "));
    assert_non_null(strstr(r.out, "checked 7 keys: 6 ok, 1 damaged, 0 unreadable\n"));
    assert_non_null(strstr(r.err, "damage found"));
    run_free(&r);
    EXPECT_ERR(5, "checksum failed", "get", s.db, "victim");
    EXPECT(0, "merge", "get", s.db, "after");
    tu_rmrf(s.dir);
}

/* check walks every namespace: damage in a named one is found and named,
 * with --ns only that namespace is read. */
static void test_check_namespaces(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "ns", "create", s.db, "-p", "a/b");
    EXPECT(0, "", "ns", "create", s.db, "clean");
    EXPECT(0, "", "put", "--ns", "a/b", s.db, "victim", "PRECIOUS-DATA-PRECIOUS-DATA");
    EXPECT(0, "", "put", "--ns", "clean", s.db, "k", "v");
    EXPECT(0, "", "put", s.db, "k", "v");
    run_t r = RUN("merge", s.db);
    assert_int_equal(r.code, 0);
    run_free(&r);
    assert_true(damage(s.db, "PRECIOUS-DATA"));
    r = RUN("check", s.db);
    if (r.code != 5) fprintf(stderr, "out: %s\nerr: %s\n", r.out, r.err);
    assert_int_equal(r.code, 5);
    assert_non_null(strstr(r.out, "damaged: namespace 'a/b' key 'victim': checksum failed: "));
    assert_non_null(strstr(r.out, "checked 3 keys: 2 ok, 1 damaged, 0 unreadable\n"));
    run_free(&r);
    r = RUN("check", s.db, "--ns", "a/b");
    assert_int_equal(r.code, 5);
    assert_non_null(strstr(r.out, "checked 1 keys: 0 ok, 1 damaged, 0 unreadable\n"));
    run_free(&r);
    EXPECT(0, "checked 1 keys: 1 ok, 0 damaged, 0 unreadable\n", "check", s.db, "--ns", "clean");
    EXPECT_ERR(5, "checksum failed", "get", "--ns", "a/b", s.db, "victim");
    tu_rmrf(s.dir);
}

/* Damage in a datafile without a hint file, before its last record, is
 * found by open itself: corrupt, not a torn tail. */
static void test_check_corrupt_open(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "victim", "PRECIOUS-DATA-PRECIOUS-DATA");
    fill_abc(s.db);
    assert_true(damage(s.db, "PRECIOUS-DATA"));
    /* Without hint files open reads every record, and so meets the damage
     * itself (with them, check finds it by reading the record). */
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*.hint", s.db);
    assert_int_equal(system(cmd), 0);
    run_t r = RUN("check", s.db);
    if (r.code != 5) fprintf(stderr, "out: %s\nerr: %s\n", r.out, r.err);
    assert_int_equal(r.code, 5);
    assert_non_null(strstr(r.err, "corrupt"));
    assert_non_null(strstr(r.err, ".data at offset "));
    run_free(&r);
    tu_rmrf(s.dir);
}

/* >> dump and load */
static const char dump_head[] = "# calypso-dump 1\n";

static void test_dump_format(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "plain", "text/with:punct!");
    EXPECT(0, "", "put", s.db, "sp ace", "100%#");
    EXPECT(0, "", "put", s.db, "-", "");
    run_t r = RUN_IN("-", 1, "put", s.db, "#hash", "-");   /* the value '-', from stdin */
    assert_int_equal(r.code, 0);
    run_free(&r);
    EXPECT(0, "# calypso-dump 1\n"
              "%23hash %2D 0\n"
              "%2D - 0\n"
              "plain text/with:punct! 0\n"
              "sp%20ace 100%25%23 0\n"
              "# end 4\n", "dump", s.db);
    tu_rmrf(s.dir);
}

static void load_text(const char *db, int want, const char *needle, const char *text)
{
    run_t r = RUN_IN(text, strlen(text), "load", db);
    if (r.code != want) fprintf(stderr, "stderr: %s\n", r.err);
    assert_int_equal(r.code, want);
    if (needle) assert_non_null(strstr(want ? r.err : r.out, needle));
    run_free(&r);
}

static void test_load_input(void **state)
{
    (void)state;
    scratch s = scratch_new();
    load_text(s.db, 3, "not a calypso dump", "k v 0\n");
    load_text(s.db, 3, "empty input", "");
    assert_false(path_exists(s.db));            /* bad input creates nothing */
    char text[512];
    unsigned long long later = (unsigned long long)time(NULL) * 1000 + 3600000;
    snprintf(text, sizeof text, "%s"
             "k%%0Av v%%00w 0\r\n"                 /* CRLF tolerated, escapes decoded */
             "\n"
             "# a comment\n"
             "soon later %llu\n"
             "gone past 1000\n"
             "# end 3\n", dump_head, later);
    load_text(s.db, 0, "loaded 2 records (1 already expired, skipped)", text);
    run_t r = RUN("get", s.db, "k\nv");
    assert_int_equal(r.outlen, 3);
    assert_memory_equal(r.out, "v\0w", 3);
    run_free(&r);
    EXPECT(0, "later", "get", s.db, "soon");
    EXPECT(1, "", "has", s.db, "gone");

    load_text(s.db, 3, "line 2: bad %XX escape", "# calypso-dump 1\nk%zz v 0\n# end 1\n");
    load_text(s.db, 3, "line 2: a record needs 3 fields", "# calypso-dump 1\nk v\n# end 1\n");
    load_text(s.db, 3, "bad EXPIRY", "# calypso-dump 1\nk v soon\n# end 1\n");
    load_text(s.db, 3, "without its '# end' line", "# calypso-dump 1\ncut v 0\n");
    load_text(s.db, 3, "record count differs", "# calypso-dump 1\nx v 0\n# end 2\n");
    load_text(s.db, 3, "unsupported dump version", "# calypso-dump 9\n# end 0\n");
    load_text(s.db, 3, "line 2", "# calypso-dump 1\n- v 0\n# end 1\n");   /* empty key */
    load_text(s.db, 0, "loaded 2 records",                              /* concatenated */
              "# calypso-dump 1\nc1 v 0\n# end 1\n# calypso-dump 1\nc2 v 0\n# end 1\n");
    EXPECT(0, "v", "get", s.db, "c2");
    EXPECT(0, "v", "get", s.db, "cut");          /* records before an error stay */

    char file[600];
    snprintf(file, sizeof file, "%s/in.dump", s.dir);
    FILE *f = fopen(file, "w");
    fprintf(f, "%sfromfile yes 0\n# end 1\n", dump_head);
    fclose(f);
    EXPECT(0, "loaded 1 records (0 already expired, skipped)\n", "load", s.db, file);
    EXPECT(0, "yes", "get", s.db, "fromfile");
    EXPECT_ERR(6, "cannot open", "load", s.db, "/nonexistent/in.dump");
    tu_rmrf(s.dir);
}

/* A random byte string biased towards the bytes the format must escape. */
static size_t rand_bytes(uint64_t *rng, char *out, size_t min, size_t max)
{
    static const char special[] = { '\0', '\xff', '\n', '\r', ' ', '\t', '%', '#', '-', '\x7f' };
    size_t n = min + (size_t)tu_below(rng, max - min + 1);
    for (size_t i = 0; i < n; i++)
        out[i] = tu_below(rng, 3) == 0 ? special[tu_below(rng, sizeof special)]
                                       : (char)tu_below(rng, 256);
    return n;
}

typedef struct model {
    char   key[48], val[300];
    size_t klen, vlen;
} model;

static size_t make_model(uint64_t *rng, model *m, size_t n)
{
    size_t have = 0;
    for (size_t i = 0; i < n; i++) {
        model *e = &m[have];
        e->klen = rand_bytes(rng, e->key, 1, i < 20 ? 2 : 40);
        e->vlen = rand_bytes(rng, e->val, 0, tu_below(rng, 4) ? 40 : 300);
        int dup = 0;
        for (size_t j = 0; j < have && !dup; j++)
            dup = m[j].klen == e->klen && memcmp(m[j].key, e->key, e->klen) == 0;
        if (!dup) have++;
    }
    return have;
}

static void check_db_matches(const char *path, const model *m, size_t n)
{
    calypso_options o;
    calypso_options_default(&o);
    o.read_only = 1;
    calypso *db;
    assert_int_equal(calypso_open(path, &o, &db), CALYPSO_OK);
    assert_int_equal(calypso_len(db), n);
    for (size_t i = 0; i < n; i++) {
        void *v;
        size_t vlen;
        assert_int_equal(calypso_get(db, m[i].key, m[i].klen, &v, &vlen), CALYPSO_OK);
        assert_int_equal(vlen, m[i].vlen);
        assert_memory_equal(v, m[i].val, vlen);
        calypso_free(v);
    }
    calypso_close(db);
}

static void test_dump_load_roundtrip(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_dump_load_roundtrip");
    for (int round = 0; round < 3; round++) {
        scratch s = scratch_new();
        static model m[400];
        size_t n = make_model(&rng, m, 400);
        calypso *db;
        assert_int_equal(calypso_open(s.db, NULL, &db), CALYPSO_OK);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(calypso_put(db, m[i].key, m[i].klen, m[i].val, m[i].vlen), CALYPSO_OK);
        assert_int_equal(calypso_close(db), CALYPSO_OK);

        run_t dump = RUN("dump", s.db);
        assert_int_equal(dump.code, 0);
        assert_int_equal(strlen(dump.out), dump.outlen);     /* text: no raw NUL */
        char dst[600];
        snprintf(dst, sizeof dst, "%s/copy", s.dir);
        run_t load = RUN_IN(dump.out, dump.outlen, "load", dst);
        if (load.code) fprintf(stderr, "stderr: %s\n", load.err);
        assert_int_equal(load.code, 0);
        check_db_matches(dst, m, n);
        run_t again = RUN("dump", dst);                      /* the dump is canonical */
        assert_int_equal(again.code, 0);
        assert_int_equal(again.outlen, dump.outlen);
        assert_memory_equal(again.out, dump.out, dump.outlen);
        run_free(&dump);
        run_free(&load);
        run_free(&again);
        tu_rmrf(s.dir);
    }
}

/* A binary key put on the command line comes back out of dump and load. */
static void test_cli_roundtrip_via_pipe(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "tab\there", "line1\nline2");
    run_t d = RUN("dump", s.db);
    assert_int_equal(d.code, 0);
    assert_non_null(strstr(d.out, "tab%09here line1%0Aline2 0\n"));
    char dst[600];
    snprintf(dst, sizeof dst, "%s/copy", s.dir);
    run_t l = RUN_IN(d.out, d.outlen, "load", dst, "-");
    assert_int_equal(l.code, 0);
    EXPECT(0, "line1\nline2", "get", dst, "tab\there");
    run_free(&d);
    run_free(&l);
    tu_rmrf(s.dir);
}

/* A key's TTL survives dump and load: its absolute expiry is the same. */
static void test_dump_load_keeps_ttl(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "session", "tok", "--ttl", "1h");
    EXPECT(0, "", "put", s.db, "forever", "v");
    run_t d = RUN("dump", s.db);
    assert_int_equal(d.code, 0);
    assert_non_null(strstr(d.out, "forever v 0\n"));
    const char *line = strstr(d.out, "session tok ");
    assert_non_null(line);
    unsigned long long at = strtoull(line + strlen("session tok "), NULL, 10);
    unsigned long long now = (unsigned long long)time(NULL) * 1000ull;
    assert_true(at > now + 3500000ull && at <= now + 3600000ull + 2000ull);
    char dst[600];
    snprintf(dst, sizeof dst, "%s/copy", s.dir);
    run_t l = RUN_IN(d.out, d.outlen, "load", dst);
    assert_int_equal(l.code, 0);
    run_t again = RUN("dump", dst);
    assert_int_equal(again.code, 0);
    assert_string_equal(again.out, d.out);     /* same expiry, to the millisecond */
    run_free(&d);
    run_free(&l);
    run_free(&again);
    tu_rmrf(s.dir);
}

int main(int argc, char **argv)
{
    (void)argc;
    find_binary(argv[0]);
    if (access(cli_bin, X_OK) != 0) {
        fprintf(stderr, "test_cli: no calypso binary at %s (run make, or set CALYPSO_CLI)\n", cli_bin);
        return 1;
    }
    unsetenv("CALYPSO_PROGRESS");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_del_has),
        cmocka_unit_test(test_put_from_stdin),
        cmocka_unit_test(test_put_ttl),
        cmocka_unit_test(test_dump_load_keeps_ttl),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_help_and_version),
        cmocka_unit_test(test_missing_database),
        cmocka_unit_test(test_locked_database),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_scan),
        cmocka_unit_test(test_terminal_escaping),
        cmocka_unit_test(test_stats),
        cmocka_unit_test(test_merge_gc_backup),
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_check_corrupt_open),
        cmocka_unit_test(test_check_namespaces),
        cmocka_unit_test(test_dump_format),
        cmocka_unit_test(test_load_input),
        cmocka_unit_test(test_dump_load_roundtrip),
        cmocka_unit_test(test_cli_roundtrip_via_pipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
