/*
 * testutil.h: what every calypso test binary shares: cmocka's includes in
 * the order it needs, a seed for randomized tests (printed, and taken from
 * CALYPSO_SEED to replay a run), a small fast PRNG, and scratch directories
 * under $TMPDIR that are removed when the test is done.
 */
#ifndef CY_TESTUTIL_H
#define CY_TESTUTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "calypso.h"

/* Asserts that expr (a calypso call on db) returns CALYPSO_OK, or want,
 * naming the call, both codes and the handle's message on failure. */
#define TU_OK(db, expr) TU_RC(db, CALYPSO_OK, expr)
#define TU_RC(db, want, expr)                                                 \
    do {                                                                      \
        int tu_rc_ = (expr);                                                  \
        if (tu_rc_ != (want))                                                 \
            print_error("%s:%d: %s -> %d (%s), want %d (%s) errmsg: %s\n",    \
                        __FILE__, __LINE__, #expr, tu_rc_,                    \
                        calypso_strerror(tu_rc_), (int)(want),                \
                        calypso_strerror(want), calypso_errmsg(db));          \
        assert_int_equal(tu_rc_, (want));                                     \
    } while (0)
#include <cmocka.h>

/* The seed of this run: CALYPSO_SEED if set, else from the clock. Printed
 * once so that a failing run can be replayed. */
static inline uint64_t tu_seed(const char *what)
{
    static uint64_t seed;
    static int have;
    if (!have) {
        const char *env = getenv("CALYPSO_SEED");
        if (env && *env) seed = strtoull(env, NULL, 0);
        else seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
        have = 1;
    }
    printf("[ SEED     ] %s: CALYPSO_SEED=%llu\n", what, (unsigned long long)seed);
    fflush(stdout);
    return seed;
}

/* splitmix64: small, fast, good enough for test data. */
static inline uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static inline uint64_t tu_below(uint64_t *s, uint64_t n)
{
    return n ? tu_rand(s) % n : 0;
}

/* Makes a fresh scratch directory and returns its path (static storage per
 * call site is the caller's business: copy it if needed). */
static inline char *tu_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    size_t n = strlen(base) + 32;
    char *p = malloc(n);
    if (!p) return NULL;
    snprintf(p, n, "%s/calypso-test-XXXXXX", base);
    if (!mkdtemp(p)) { free(p); return NULL; }
    return p;
}

/* Default options but with 4 KiB datafiles and no automatic merge. */
static inline calypso_options tu_opts_small_files(void)
{
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = -1;
    return o;
}

/* Asserts that keys printf(fmt, 0) .. printf(fmt, n - 1) are all found,
 * each with a value of vlen bytes: every acknowledged put, read back. */
static inline void tu_expect_keys(calypso *db, const char *fmt, int n, size_t vlen)
{
    for (int i = 0; i < n; i++) {
        char k[64];
        int kl = snprintf(k, sizeof k, fmt, i);
        assert_true(kl > 0 && (size_t)kl < sizeof k);
        void *got = NULL;
        size_t gl = 0;
        TU_OK(db, calypso_get(db, k, (size_t)kl, &got, &gl));
        assert_int_equal(gl, vlen);
        calypso_free(got);
    }
}

/* rm -rf path, then free it. */
static inline void tu_rmrf(char *path)
{
    if (!path) return;
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", path);
    free(path);
}

#endif
