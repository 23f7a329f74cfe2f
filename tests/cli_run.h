/*
 * cli_run.h: running the calypso command-line tool from a test, as a user
 * runs it: the built binary with fork/exec, stdin fed from a buffer,
 * stdout, stderr and the exit code captured (run_in, RUN, EXPECT,
 * EXPECT_ERR), and a scratch directory per test. Shared by test_cli.c and
 * test_cli_ns.c.
 *
 * The binary is $CALYPSO_CLI, else `calypso` in the directory of the test
 * binary (make builds both into $(BUILD)); find_binary sets cli_bin.
 */
#ifndef CLI_RUN_H
#define CLI_RUN_H

#include "testutil.h"
#include "calypso.h"

#include <errno.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#if defined(__GNUC__)
#define CLI_RUN_UNUSED __attribute__((unused))
#else
#define CLI_RUN_UNUSED
#endif

static char cli_bin[4096];

/* >> running the tool */
typedef struct run {
    int    code;              /* exit code, 128 + signal when killed */
    char  *out, *err;         /* NUL-terminated, may hold NULs       */
    size_t outlen, errlen;
} run_t;

CLI_RUN_UNUSED static void run_free(run_t *r)
{
    free(r->out);
    free(r->err);
}

static char *slurp_fd(int fd, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *p = malloc(cap + 1);
    assert_non_null(p);
    lseek(fd, 0, SEEK_SET);
    for (ssize_t k; (k = read(fd, p + n, cap - n)) > 0;) {
        n += (size_t)k;
        if (n == cap) { p = realloc(p, (cap *= 2) + 1); assert_non_null(p); }
    }
    p[n] = '\0';
    *len = n;
    return p;
}

static int tmp_fd(void)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    int fd = dup(fileno(f));
    fclose(f);
    return fd;
}

/* Runs the tool with args (NULL-terminated, without argv[0]) and in as
 * stdin; when tty_out, stdout is a pseudo-terminal. */
static run_t run_in(const void *in, size_t inlen, const char *const *args)
{
    const char *argv[64] = { cli_bin };
    size_t n = 1;
    for (; args[n - 1]; n++) { assert_true(n < 63); argv[n] = args[n - 1]; }
    argv[n] = NULL;
    int fin = tmp_fd(), fout = tmp_fd(), ferr = tmp_fd();
    if (inlen) assert_int_equal(write(fin, in, inlen), (ssize_t)inlen);
    lseek(fin, 0, SEEK_SET);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fin, 0); dup2(fout, 1); dup2(ferr, 2);
        execv(cli_bin, (char *const *)argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    run_t r = { .code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st) };
    r.out = slurp_fd(fout, &r.outlen);
    r.err = slurp_fd(ferr, &r.errlen);
    close(fin); close(fout); close(ferr);
    return r;
}

#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })
#define RUN(...) run_in(NULL, 0, ARGS(__VA_ARGS__))
#define RUN_IN(in, inlen, ...) run_in(in, inlen, ARGS(__VA_ARGS__))

/* Runs and checks the exit code and the whole of stdout. */
#define EXPECT(code_, out_, ...) do {                                    \
        run_t r_ = RUN(__VA_ARGS__);                                      \
        if (r_.code != (code_)) fprintf(stderr, "stderr: %s\n", r_.err);  \
        assert_int_equal(r_.code, (code_));                               \
        if ((out_) != NULL) assert_string_equal(r_.out, (const char *)(out_)); \
        run_free(&r_);                                                    \
    } while (0)

/* Runs and checks the exit code and that stderr contains needle. */
#define EXPECT_ERR(code_, needle_, ...) do {                              \
        run_t r_ = RUN(__VA_ARGS__);                                      \
        if (r_.code != (code_) || !strstr(r_.err, (needle_)))             \
            fprintf(stderr, "code %d, stderr: %s\n", r_.code, r_.err);    \
        assert_int_equal(r_.code, (code_));                               \
        assert_non_null(strstr(r_.err, (needle_)));                       \
        assert_int_equal(r_.outlen, 0);                                   \
        run_free(&r_);                                                    \
    } while (0)

/* A scratch directory and the path of a database inside it. */
typedef struct scratch {
    char *dir;
    char  db[512];
} scratch;

CLI_RUN_UNUSED static scratch scratch_new(void)
{
    scratch s = { .dir = tu_tmpdir() };
    assert_non_null(s.dir);
    snprintf(s.db, sizeof s.db, "%s/db", s.dir);
    return s;
}

CLI_RUN_UNUSED static int path_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

CLI_RUN_UNUSED static void find_binary(const char *argv0)
{
    const char *env = getenv("CALYPSO_CLI");
    if (env && *env) {
        snprintf(cli_bin, sizeof cli_bin, "%s", env);
        return;
    }
    const char *slash = strrchr(argv0, '/');
    int dirlen = slash ? (int)(slash - argv0) : 1;
    snprintf(cli_bin, sizeof cli_bin, "%.*s/calypso", dirlen, slash ? argv0 : ".");
}

#endif
