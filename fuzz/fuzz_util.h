/*
 * fuzz_util.h: what the libFuzzer targets in fuzz/ share: a byte reader
 * over the input, a scratch directory per process (tmpfs when there is
 * one), and abort-with-a-message for broken invariants (libFuzzer keeps the
 * input that made it).
 */
#ifndef CY_FUZZ_UTIL_H
#define CY_FUZZ_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct fz_in {
    const uint8_t *p, *end;
} fz_in;

/* The next byte; 0 once the input is used up. */
static inline uint8_t fz_byte(fz_in *in)
{
    return in->p < in->end ? *in->p++ : 0;
}

static inline int fz_done(const fz_in *in)
{
    return in->p >= in->end;
}

#define FZ_CHECK(cond, ...)                                                   \
    do {                                                                      \
        if (!(cond)) {                                                        \
            fprintf(stderr, "fuzz invariant failed at %s:%d: %s: ", __FILE__, \
                    __LINE__, #cond);                                         \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
            abort();                                                          \
        }                                                                     \
    } while (0)

/* rm -rf path (the path itself too). */
static inline void fz_rmtree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) < 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
            char p[4096];
            int n = snprintf(p, sizeof p, "%s/%s", path, e->d_name);
            if (n > 0 && (size_t)n < sizeof p) fz_rmtree(p);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

/* This process's scratch directory, made once and removed at exit. */
static char fz_root[256];

static void fz_cleanup(void)
{
    if (fz_root[0]) fz_rmtree(fz_root);
}

static inline const char *fz_scratch(void)
{
    if (!fz_root[0]) {
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fz_root, sizeof fz_root, "%s/calypso-fuzz-%ld", base, (long)getpid());
        fz_rmtree(fz_root);
        if (mkdir(fz_root, 0755) < 0) abort();
        atexit(fz_cleanup);
    }
    return fz_root;
}

#endif
