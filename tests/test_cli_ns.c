/*
 * test_cli_ns.c: namespaces in the calypso command-line tool, driven as a
 * user drives it (cli_run.h): ns list, create and drop with their errors,
 * --ns on every key command and the isolation between namespaces, the
 * name limits at the boundary (255 bytes) and past it, the read commands
 * beside a live writer, and dump/load: namespace sections, --ns on both,
 * old (version 1) dumps, malformed namespace lines, and a round trip of
 * random nested namespaces holding random binary data into an empty
 * directory, compared dump to dump and key by key (seed printed; replay
 * with CALYPSO_SEED).
 */
#include "cli_run.h"

/* A name of n bytes: "n" then 'x's, or parts of 9 bytes split by '/'. */
static void long_name(char *out, size_t n, int nested)
{
    for (size_t i = 0; i < n; i++) out[i] = nested && i % 10 == 9 ? '/' : 'x';
    out[0] = 'n';
    out[n] = '\0';
}

/* >> ns list, create, drop */
static void test_ns_create_list_drop(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "ns", "create", s.db, "b");           /* creates the database */
    EXPECT(0, "", "ns", "create", s.db, "a");
    EXPECT(0, "", "ns", "create", s.db, "a/y");
    EXPECT(0, "", "ns", "create", s.db, "a/x");
    EXPECT(0, "a\nb\n", "ns", "list", s.db);
    EXPECT(0, "a/x\na/y\n", "ns", "list", s.db, "a");
    EXPECT(0, "", "ns", "list", s.db, "a/x");
    EXPECT(0, "a\na/x\na/y\nb\n", "ns", "list", s.db, "--recursive");
    EXPECT(0, "a/x\na/y\n", "ns", "list", "-r", s.db, "a");
    EXPECT(0, "61\n62\n", "ns", "list", s.db, "--hex");
    run_t r = RUN("ns", "list", s.db, "-0");
    assert_int_equal(r.code, 0);
    assert_int_equal(r.outlen, 4);
    assert_memory_equal(r.out, "a\0b\0", 4);
    run_free(&r);

    EXPECT_ERR(3, "namespace 'a' exists", "ns", "create", s.db, "a");
    EXPECT(0, "", "ns", "create", s.db, "a", "--parents");
    EXPECT_ERR(3, "no namespace 'c/d', the parent of 'c/d/e'", "ns", "create", s.db, "c/d/e");
    EXPECT(0, "a\nb\n", "ns", "list", s.db);             /* the failure created nothing */
    EXPECT(0, "", "ns", "create", s.db, "-p", "c/d/e");
    EXPECT(0, "c/d\n", "ns", "list", s.db, "c");
    EXPECT(0, "c/d/e\n", "ns", "list", s.db, "c/d");
    EXPECT_ERR(3, "no namespace 'zz'", "ns", "list", s.db, "zz");

    /* Drop is recursive: a's children go with it, nothing else does. */
    EXPECT(0, "", "put", "--ns", "a/x", s.db, "k", "v");
    EXPECT(0, "", "ns", "drop", s.db, "a");
    EXPECT(0, "b\nc\nc/d\nc/d/e\n", "ns", "list", s.db, "-r");
    EXPECT_ERR(3, "no namespace 'a'", "ns", "drop", s.db, "a");
    EXPECT_ERR(3, "no namespace 'a/x'", "get", "--ns", "a/x", s.db, "k");
    EXPECT(0, "", "ns", "create", s.db, "-p", "a/x");    /* re-created: empty */
    EXPECT(1, "", "has", "--ns", "a/x", s.db, "k");
    EXPECT(0, "", "ns", "drop", s.db, "c/d");
    EXPECT(0, "a\na/x\nb\nc\n", "ns", "list", s.db, "-r");

    /* A missing database: only create makes one. */
    char other[600];
    snprintf(other, sizeof other, "%s/other", s.dir);
    EXPECT_ERR(3, "no database at", "ns", "list", other);
    EXPECT_ERR(3, "no database at", "ns", "drop", other, "a");
    assert_false(path_exists(other));
    tu_rmrf(s.dir);
}

static void test_ns_usage(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT_ERR(2, "a subcommand is needed", "ns");
    EXPECT_ERR(2, "unknown subcommand 'frob'", "ns", "frob", s.db);
    EXPECT_ERR(2, "wrong number of arguments", "ns", "create", s.db);
    EXPECT_ERR(2, "wrong number of arguments", "ns", "drop", s.db, "a", "b");
    EXPECT_ERR(2, "wrong number of arguments", "ns", "list", s.db, "a", "b");
    EXPECT_ERR(2, "bad option '--parents'", "ns", "drop", s.db, "a", "--parents");
    EXPECT_ERR(2, "bad option '--ns'", "merge", s.db, "--ns", "a");
    EXPECT_ERR(2, "bad option '--ns'", "backup", s.db, "x", "--ns", "a");
    EXPECT_ERR(2, "needs an argument", "get", s.db, "k", "--ns");
    const char *const sub[] = { "list", "create", "drop" };
    for (size_t i = 0; i < 3; i++) {
        char want[64];
        snprintf(want, sizeof want, "usage: calypso ns %s DB", sub[i]);
        run_t r = RUN("ns", sub[i], "--help");
        assert_int_equal(r.code, 0);
        assert_int_equal(r.errlen, 0);
        assert_non_null(strstr(r.out, want));
        run_free(&r);
        r = RUN("help", "ns", sub[i]);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, want));
        run_free(&r);
    }
    run_t r = RUN("ns", "drop", "--help");
    assert_non_null(strstr(r.out, "recursively"));
    run_free(&r);
    const char *const overview[][2] = { { "ns", "--help" }, { "help", "ns" } };
    for (size_t i = 0; i < 2; i++) {
        r = RUN(overview[i][0], overview[i][1]);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "calypso ns create DB NAME"));
        run_free(&r);
    }
    r = RUN("help");
    assert_non_null(strstr(r.out, "ns create"));
    assert_non_null(strstr(r.out, "--ns NAME"));
    run_free(&r);
    const char *const with_ns[] = { "put", "get", "del", "has", "stats", "keys",
                                    "scan", "gc", "check", "dump", "load" };
    for (size_t i = 0; i < sizeof with_ns / sizeof with_ns[0]; i++) {
        r = RUN(with_ns[i], "--help");
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "--ns NAME"));
        run_free(&r);
    }
    EXPECT_ERR(2, "unknown command 'ns frob'", "help", "ns", "frob");
    assert_false(path_exists(s.db));
    tu_rmrf(s.dir);
}

/* >> names at their limits */
static void test_ns_name_limits(void **state)
{
    (void)state;
    scratch s = scratch_new();
    char n255[300], n256[300], nested255[300];
    long_name(n255, 255, 0);
    long_name(n256, 256, 0);
    long_name(nested255, 255, 1);

    const char *const bad[] = { "a/", "/a", "a//b", "/" };
    for (size_t i = 0; i < 4; i++) {
        EXPECT_ERR(2, "empty part", "ns", "create", s.db, bad[i]);
        EXPECT_ERR(2, "empty part", "put", "--ns", bad[i], s.db, "k", "v");
    }
    EXPECT_ERR(2, "the name is empty", "ns", "create", s.db, "");
    EXPECT_ERR(2, "the name is empty", "get", "--ns", "", s.db, "k");
    EXPECT_ERR(2, "too long", "ns", "create", s.db, n256);
    EXPECT_ERR(2, "too long", "put", "--ns", n256, s.db, "k", "v");
    EXPECT_ERR(2, "too long", "ns", "list", s.db, n256);
    assert_false(path_exists(s.db));                   /* no bad name created it */

    EXPECT(0, "", "ns", "create", s.db, n255);
    EXPECT(0, "", "put", "--ns", n255, s.db, "k", "in255");
    EXPECT(0, "in255", "get", "--ns", n255, s.db, "k");
    EXPECT(0, "", "ns", "create", s.db, "--parents", nested255);
    EXPECT(0, "", "put", "--ns", nested255, s.db, "k", "deep");
    EXPECT(0, "deep", "get", "--ns", nested255, s.db, "k");
    char want[600];
    snprintf(want, sizeof want, "%s\n%s\n", "nxxxxxxxx", n255);   /* a prefix sorts first */
    EXPECT(0, want, "ns", "list", s.db);
    run_t r = RUN("ns", "list", "-r", s.db);
    assert_non_null(strstr(r.out, nested255));
    run_free(&r);
    EXPECT(0, "", "ns", "drop", s.db, n255);
    EXPECT_ERR(3, "no namespace", "get", "--ns", n255, s.db, "k");
    tu_rmrf(s.dir);
}

/* >> --ns on the key commands */
static void fill_three(const char *db)
{
    EXPECT(0, "", "ns", "create", db, "-p", "a/b");
    EXPECT(0, "", "put", db, "k", "in-default");
    EXPECT(0, "", "put", db, "only-default", "1");
    EXPECT(0, "", "put", "--ns", "a", db, "k", "in-a");
    EXPECT(0, "", "put", "--ns", "a", db, "a1", "x");
    EXPECT(0, "", "put", "--ns", "a", db, "a2", "y");
    EXPECT(0, "", "put", db, "k", "in-a/b", "--ns", "a/b");
}

static void test_ns_key_commands(void **state)
{
    (void)state;
    scratch s = scratch_new();
    fill_three(s.db);
    EXPECT(0, "in-default", "get", s.db, "k");
    EXPECT(0, "in-a", "get", s.db, "k", "--ns", "a");
    EXPECT(0, "in-a/b", "get", "--ns", "a/b", s.db, "k");
    EXPECT(0, "696e2d61\n", "get", "--ns", "a", "--hex", s.db, "k");
    EXPECT(1, "", "has", "--ns", "a", s.db, "only-default");
    EXPECT(0, "", "has", "--ns", "a", s.db, "a1");
    EXPECT(1, "", "has", s.db, "a1");
    EXPECT(0, "k\nonly-default\n", "keys", s.db);
    EXPECT(0, "a1\na2\nk\n", "keys", "--ns", "a", s.db);
    EXPECT(0, "a1\na2\n", "keys", "--ns", "a", s.db, "--prefix", "a");
    EXPECT(0, "a2\nk\n", "keys", "--ns", "a", s.db, "--range", "a2", "z");
    EXPECT(0, "k\na2\n", "keys", "--ns", "a", s.db, "--reverse", "--limit", "2");
    EXPECT(0, "k\tin-a/b\n", "scan", "--ns", "a/b", s.db);
    EXPECT(0, "a1\tx\n", "scan", "--ns", "a", s.db, "--limit", "1");

    run_t r = RUN("stats", "--ns", "a", s.db);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "keys          3\n"));
    run_free(&r);
    r = RUN("stats", "--ns", "a/b", s.db, "--json");
    assert_non_null(strstr(r.out, "\"keys\":1,"));
    run_free(&r);
    r = RUN("stats", s.db);
    assert_non_null(strstr(r.out, "keys          2\n"));
    run_free(&r);

    /* Deleting in one namespace leaves the namesakes in the others. */
    EXPECT(0, "", "del", "--ns", "a", s.db, "k");
    EXPECT_ERR(1, "key not found", "del", "--ns", "a", s.db, "k");
    EXPECT_ERR(1, "key not found", "get", "--ns", "a", s.db, "k");
    EXPECT(0, "in-default", "get", s.db, "k");
    EXPECT(0, "in-a/b", "get", "--ns", "a/b", s.db, "k");

    /* check walks every namespace, or the one --ns names. */
    EXPECT(0, "checked 5 keys: 5 ok, 0 damaged, 0 unreadable\n", "check", s.db);
    EXPECT(0, "checked 2 keys: 2 ok, 0 damaged, 0 unreadable\n", "check", s.db, "--ns", "a");

    /* Every key command refuses a missing namespace and creates nothing. */
    const char *const cmds[][4] = {
        { "get", "k" }, { "has", "k" }, { "del", "k" }, { "put", "k", "v" },
        { "keys" }, { "scan" }, { "stats" }, { "check" }, { "gc" }, { "dump" },
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        const char *argv[8] = { cmds[i][0], "--ns", "nope", s.db, cmds[i][1], cmds[i][2], NULL };
        r = run_in(NULL, 0, argv);
        if (r.code != 3) fprintf(stderr, "%s: code %d, stderr %s\n", cmds[i][0], r.code, r.err);
        assert_int_equal(r.code, 3);
        assert_non_null(strstr(r.err, "no namespace 'nope'"));
        assert_int_equal(r.outlen, 0);
        run_free(&r);
    }
    const char dump[] = "# calypso-dump 1\nx y 0\n# end 1\n";
    r = RUN_IN(dump, sizeof dump - 1, "load", "--ns", "nope", s.db);
    assert_int_equal(r.code, 3);
    assert_non_null(strstr(r.err, "no namespace 'nope'"));
    run_free(&r);
    EXPECT_ERR(3, "no namespace", "keys", "--ns", "a/b/c", s.db);
    EXPECT(0, "a\na/b\n", "ns", "list", "-r", s.db);

    /* With --ns even put needs the database: the namespace must exist. */
    char other[600];
    snprintf(other, sizeof other, "%s/other", s.dir);
    EXPECT_ERR(3, "no database at", "put", "--ns", "a", other, "k", "v");
    r = RUN_IN(dump, sizeof dump - 1, "load", "--ns", "a", other);
    assert_int_equal(r.code, 3);
    run_free(&r);
    assert_false(path_exists(other));
    tu_rmrf(s.dir);
}

static void test_ns_ttl_and_gc(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "ns", "create", s.db, "a");
    EXPECT(0, "", "put", "--ns", "a", s.db, "brief", "v", "--ttl", "1ms");
    EXPECT(0, "", "put", "--ns", "a", s.db, "long", "v", "--ttl", "1h");
    usleep(20 * 1000);
    EXPECT_ERR(1, "expired", "get", "--ns", "a", s.db, "brief");
    EXPECT(0, "v", "get", "--ns", "a", s.db, "long");
    /* gc without --ns reaches namespace a: the expired record becomes dead. */
    run_t r = RUN("gc", s.db);
    assert_int_equal(r.code, 0);
    unsigned long long dead = 0;
    assert_int_equal(sscanf(r.out, "expired keys deleted; %llu bytes", &dead), 1);
    assert_true(dead > 0);
    run_free(&r);
    EXPECT(0, "long\n", "keys", "--ns", "a", s.db);
    tu_rmrf(s.dir);
}

/* >> beside a live writer */
static void test_ns_beside_writer(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "k", "v");
    calypso *db = NULL, *ns = NULL;
    assert_int_equal(calypso_open(s.db, NULL, &db), CALYPSO_OK);
    assert_int_equal(calypso_ns_open(db, "live", 4, 1, &ns), CALYPSO_OK);
    assert_int_equal(calypso_put(ns, "k", 1, "from-writer", 11), CALYPSO_OK);
    EXPECT(0, "from-writer", "get", "--ns", "live", s.db, "k");
    EXPECT(0, "v", "get", s.db, "k");
    EXPECT(0, "k\n", "keys", "--ns", "live", s.db);
    EXPECT(0, "", "has", "--ns", "live", s.db, "k");
    EXPECT(0, "live\n", "ns", "list", s.db);
    EXPECT(0, "checked 2 keys: 2 ok, 0 damaged, 0 unreadable\n", "check", s.db);
    EXPECT(0, "# calypso-dump 2\nk v 0\n# ns live\nk from-writer 0\n# end 2\n", "dump", s.db);
    EXPECT(0, "# calypso-dump 1\nk from-writer 0\n# end 1\n", "dump", "--ns", "live", s.db);
    EXPECT_ERR(4, "locked", "put", "--ns", "live", s.db, "k", "v2");
    EXPECT_ERR(4, "locked", "ns", "create", s.db, "other");
    EXPECT_ERR(4, "locked", "ns", "drop", s.db, "live");
    /* A namespace the writer creates now is there for the next command. */
    calypso *later = NULL;
    assert_int_equal(calypso_ns_open(db, "later", 5, 1, &later), CALYPSO_OK);
    assert_int_equal(calypso_put(later, "x", 1, "y", 1), CALYPSO_OK);
    EXPECT(0, "y", "get", "--ns", "later", s.db, "x");
    assert_int_equal(calypso_close(later), CALYPSO_OK);
    assert_int_equal(calypso_close(ns), CALYPSO_OK);
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    tu_rmrf(s.dir);
}

/* >> dump and load */
static void test_ns_dump_format(void **state)
{
    (void)state;
    scratch s = scratch_new();
    EXPECT(0, "", "put", s.db, "d", "0");
    EXPECT(0, "", "ns", "create", s.db, "-p", "b/c");
    EXPECT(0, "", "ns", "create", s.db, "sp ace#%");
    EXPECT(0, "", "ns", "create", s.db, "-p", "a/empty");
    EXPECT(0, "", "ns", "create", s.db, "-");
    EXPECT(0, "", "put", "--ns", "b/c", s.db, "k", "v c");
    EXPECT(0, "", "put", "--ns", "b", s.db, "k", "vb");
    EXPECT(0, "", "put", "--ns", "sp ace#%", s.db, "-", "");
    const char *want =
        "# calypso-dump 2\n"
        "d 0 0\n"
        "# ns %2D\n"
        "# ns a\n"
        "# ns a/empty\n"
        "# ns b\n"
        "k vb 0\n"
        "# ns b/c\n"
        "k v%20c 0\n"
        "# ns sp%20ace%23%25\n"
        "%2D - 0\n"
        "# end 4\n";
    EXPECT(0, want, "dump", s.db);
    EXPECT(0, "# calypso-dump 1\nk v%20c 0\n# end 1\n", "dump", "--ns", "b/c", s.db);
    EXPECT(0, "# calypso-dump 1\n# end 0\n", "dump", "--ns", "a", s.db);

    /* Into an empty directory: every namespace back, empty ones included. */
    char copy[600];
    snprintf(copy, sizeof copy, "%s/copy", s.dir);
    run_t r = RUN_IN(want, strlen(want), "load", copy);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "loaded 4 records (0 already expired, skipped)\ncreated 6 namespaces\n");
    run_free(&r);
    EXPECT(0, want, "dump", copy);
    EXPECT(0, "", "get", "--ns", "sp ace#%", copy, "-");

    /* load --ns X: the dump's default namespace is X, its namespace N is X/N. */
    char graft[600];
    snprintf(graft, sizeof graft, "%s/graft", s.dir);
    EXPECT(0, "", "ns", "create", graft, "top");
    r = RUN_IN(want, strlen(want), "load", "--ns", "top", graft);
    assert_int_equal(r.code, 0);
    run_free(&r);
    EXPECT(0, "top\ntop/-\ntop/a\ntop/a/empty\ntop/b\ntop/b/c\ntop/sp ace#%\n", "ns", "list", "-r", graft);
    EXPECT(0, "0", "get", "--ns", "top", graft, "d");
    EXPECT(0, "v c", "get", "--ns", "top/b/c", graft, "k");
    EXPECT(1, "", "has", graft, "d");
    tu_rmrf(s.dir);
}

static void load_expect(const char *db, const char *ns, int want, const char *needle, const char *text)
{
    run_t r = ns ? RUN_IN(text, strlen(text), "load", "--ns", ns, db)
                 : RUN_IN(text, strlen(text), "load", db);
    if (r.code != want) fprintf(stderr, "stderr: %s\n", r.err);
    assert_int_equal(r.code, want);
    if (needle) assert_non_null(strstr(want ? r.err : r.out, needle));
    run_free(&r);
}

static void test_ns_load_input(void **state)
{
    (void)state;
    scratch s = scratch_new();
    /* A version 1 dump (as written before namespaces) loads into the
     * default namespace, or into --ns; a '# ns' line there is a comment. */
    const char *old = "# calypso-dump 1\nold v1 0\n# ns ignored\nold2 v2 0\n# end 2\n";
    load_expect(s.db, NULL, 0, "loaded 2 records", old);
    EXPECT(0, "old\nold2\n", "keys", s.db);
    EXPECT(0, "", "ns", "list", s.db);
    EXPECT(0, "", "ns", "create", s.db, "into");
    load_expect(s.db, "into", 0, "loaded 2 records", old);
    EXPECT(0, "v2", "get", "--ns", "into", s.db, "old2");
    EXPECT(0, "into\n", "ns", "list", "-r", s.db);

    /* '# ns -' goes back to the default namespace, and so does a new
     * section (concatenated dumps). */
    load_expect(s.db, NULL, 0, "created 1 namespaces",
                "# calypso-dump 2\n# ns n\nin-n 1 0\n# ns -\nback 1 0\n# ns n\n# end 2\n"
                "# calypso-dump 1\nnext 1 0\n# end 1\n");
    EXPECT(0, "in-n\n", "keys", "--ns", "n", s.db);
    EXPECT(0, "1", "get", s.db, "back");
    EXPECT(0, "1", "get", s.db, "next");

    /* Parents a dump does not name are created too. */
    load_expect(s.db, NULL, 0, "created 3 namespaces", "# calypso-dump 2\n# ns p/q/r\nx 1 0\n# end 1\n");
    EXPECT(0, "x\n", "keys", "--ns", "p/q/r", s.db);
    EXPECT(0, "p/q\n", "ns", "list", s.db, "p");
    tu_rmrf(s.dir);
}

static void test_ns_load_bad_lines(void **state)
{
    (void)state;
    scratch s = scratch_new();
    char n255[300], text[1024];
    long_name(n255, 255, 0);
    load_expect(s.db, NULL, 3, "line 2: a '# ns' line needs one NAME", "# calypso-dump 2\n# ns a b\n# end 0\n");
    load_expect(s.db, NULL, 3, "line 2: a '# ns' line needs one NAME", "# calypso-dump 2\n# ns \n# end 0\n");
    load_expect(s.db, NULL, 3, "line 2: bad %XX escape in the namespace", "# calypso-dump 2\n# ns a%zz\n# end 0\n");
    load_expect(s.db, NULL, 3, "unsupported dump version", "# calypso-dump 3\n# end 0\n");
    assert_false(path_exists(s.db));                   /* refused before opening */
    load_expect(s.db, NULL, 3, "line 3: bad namespace name: the name has an empty part",
                "# calypso-dump 2\nok 1 0\n# ns a//b\nx 1 0\n# end 2\n");
    EXPECT(0, "1", "get", s.db, "ok");                 /* what came before stays */
    EXPECT(0, "", "ns", "list", s.db);
    load_expect(s.db, NULL, 3, "line 2: bad namespace name: the name has an empty part",
                "# calypso-dump 2\n# ns %2Fa\n# end 0\n");
    snprintf(text, sizeof text, "# calypso-dump 2\n# ns %s\nk at255 0\n# end 1\n", n255);
    load_expect(s.db, NULL, 0, "created 1 namespaces", text);
    EXPECT(0, "at255", "get", "--ns", n255, s.db, "k");
    snprintf(text, sizeof text, "# calypso-dump 2\n# ns %sx\n# end 0\n", n255);
    load_expect(s.db, NULL, 3, "line 2: bad namespace name: the name is too long", text);
    /* Under --ns the full name counts: "g/" + 253 bytes is 255, one more is not. */
    EXPECT(0, "", "ns", "create", s.db, "g");
    char n253[300];
    long_name(n253, 253, 0);
    snprintf(text, sizeof text, "# calypso-dump 2\n# ns %s\nk under 0\n# end 1\n", n253);
    load_expect(s.db, "g", 0, "created 1 namespaces", text);
    char full[320];
    snprintf(full, sizeof full, "g/%s", n253);
    EXPECT(0, "under", "get", "--ns", full, s.db, "k");
    snprintf(text, sizeof text, "# calypso-dump 2\n# ns %sx\n# end 0\n", n253);
    load_expect(s.db, "g", 3, "too long", text);
    tu_rmrf(s.dir);
}

/* A random byte string biased towards the bytes the format must escape;
 * with no_slash, '/' is left out (a part of a namespace name). */
static size_t rand_bytes(uint64_t *rng, char *out, size_t min, size_t max, int no_slash)
{
    static const char special[] = { '\0', '\xff', '\n', '\r', ' ', '\t', '%', '#', '-', '\x7f' };
    size_t n = min + (size_t)tu_below(rng, max - min + 1);
    for (size_t i = 0; i < n; i++) {
        do {
            out[i] = tu_below(rng, 3) == 0 ? special[tu_below(rng, sizeof special)]
                                           : (char)tu_below(rng, 256);
        } while (no_slash && out[i] == '/');
    }
    return n;
}

/* Random namespaces, nested up to three deep, filled through the API
 * with random binary keys, values and TTLs (some namespaces left empty);
 * dumped, loaded into an empty directory, dumped again: the two dumps are
 * the same bytes, and every namespace holds the same keys and values. */
static void test_ns_dump_load_roundtrip(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("test_ns_dump_load_roundtrip");
    for (int round = 0; round < 3; round++) {
        scratch s = scratch_new();
        calypso *db;
        assert_int_equal(calypso_open(s.db, NULL, &db), CALYPSO_OK);
        char names[12][256];
        size_t nlen[12], nns = 0;
        for (size_t i = 0; i < 12; i++) {
            size_t parent = nns && tu_below(&rng, 2) ? (size_t)tu_below(&rng, nns) : SIZE_MAX;
            size_t off = 0;
            if (parent != SIZE_MAX && nlen[parent] < 200) {
                memcpy(names[nns], names[parent], nlen[parent]);
                names[nns][nlen[parent]] = '/';
                off = nlen[parent] + 1;
            }
            nlen[nns] = off + rand_bytes(&rng, names[nns] + off, 1, 12, 1);
            calypso *ns;
            int rc = calypso_ns_open(db, names[nns], nlen[nns], 1, &ns);
            assert_int_equal(rc, CALYPSO_OK);
            size_t nkeys = tu_below(&rng, 4) == 0 ? 0 : (size_t)tu_below(&rng, 40);
            for (size_t k = 0; k < nkeys; k++) {
                char key[40], val[200];
                size_t klen = rand_bytes(&rng, key, 1, 30, 0), vlen = rand_bytes(&rng, val, 0, 200, 0);
                uint64_t ttl = tu_below(&rng, 5) == 0 ? 3600000u + tu_below(&rng, 1000) : 0;
                assert_int_equal(calypso_put_ttl(ns, key, klen, val, vlen, ttl), CALYPSO_OK);
            }
            calypso_close(ns);
            nns++;
        }
        for (int k = 0; k < 20; k++) {
            char key[40], val[200];
            size_t klen = rand_bytes(&rng, key, 1, 30, 0), vlen = rand_bytes(&rng, val, 0, 200, 0);
            assert_int_equal(calypso_put(db, key, klen, val, vlen), CALYPSO_OK);
        }
        assert_int_equal(calypso_close(db), CALYPSO_OK);

        run_t dump = RUN("dump", s.db);
        assert_int_equal(dump.code, 0);
        assert_int_equal(strlen(dump.out), dump.outlen);
        assert_non_null(strstr(dump.out, "# calypso-dump 2\n"));
        char dst[600];
        snprintf(dst, sizeof dst, "%s/copy", s.dir);
        run_t load = RUN_IN(dump.out, dump.outlen, "load", dst);
        if (load.code) fprintf(stderr, "stderr: %s\n", load.err);
        assert_int_equal(load.code, 0);
        run_t again = RUN("dump", dst);
        assert_int_equal(again.code, 0);
        assert_int_equal(again.outlen, dump.outlen);
        assert_memory_equal(again.out, dump.out, dump.outlen);
        run_t l1 = RUN("ns", "list", "-r", "--hex", s.db), l2 = RUN("ns", "list", "-r", "--hex", dst);
        assert_int_equal(l1.code, 0);
        assert_string_equal(l1.out, l2.out);

        /* Key by key, through the API, for each namespace. */
        calypso_options o;
        calypso_options_default(&o);
        o.read_only = 1;
        calypso *a, *b;
        assert_int_equal(calypso_open(s.db, &o, &a), CALYPSO_OK);
        assert_int_equal(calypso_open(dst, &o, &b), CALYPSO_OK);
        for (size_t i = 0; i < nns; i++) {
            calypso *na, *nb;
            assert_int_equal(calypso_ns_open(a, names[i], nlen[i], 0, &na), CALYPSO_OK);
            assert_int_equal(calypso_ns_open(b, names[i], nlen[i], 0, &nb), CALYPSO_OK);
            assert_int_equal(calypso_len(na), calypso_len(nb));
            calypso_close(na);
            calypso_close(nb);
        }
        assert_int_equal(calypso_len(a), calypso_len(b));
        calypso_close(a);
        calypso_close(b);
        run_free(&dump); run_free(&load); run_free(&again); run_free(&l1); run_free(&l2);
        tu_rmrf(s.dir);
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    find_binary(argv[0]);
    if (access(cli_bin, X_OK) != 0) {
        fprintf(stderr, "test_cli_ns: no calypso binary at %s (run make, or set CALYPSO_CLI)\n", cli_bin);
        return 1;
    }
    unsetenv("CALYPSO_PROGRESS");
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ns_create_list_drop),
        cmocka_unit_test(test_ns_usage),
        cmocka_unit_test(test_ns_name_limits),
        cmocka_unit_test(test_ns_key_commands),
        cmocka_unit_test(test_ns_ttl_and_gc),
        cmocka_unit_test(test_ns_beside_writer),
        cmocka_unit_test(test_ns_dump_format),
        cmocka_unit_test(test_ns_load_input),
        cmocka_unit_test(test_ns_load_bad_lines),
        cmocka_unit_test(test_ns_dump_load_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
