/*
 * harness_driver.c: the driver: describes the machine, runs one child
 * process per (repetition, group, engine), gathers the RESULT lines and
 * hands them to the report.
 *
 * Order: for each repetition, for each group, every engine once, starting
 * one engine further along the list each repetition (round-robin), so that
 * a slow phase of the machine (a neighbour, the page cache filling) is
 * spread across engines instead of hitting one engine's three runs.
 *
 * Children: each is this program re-executed (/proc/self/exe) with "run
 * ENGINE GROUP DIR". Its stdout is a pipe the driver reads with a deadline
 * (--timeout): a child past it is killed with SIGKILL and reaped, and its
 * missing figures count as failed. A child also dies with the driver
 * (PR_SET_PDEATHSIG). The child's directory is removed after it exits,
 * whatever happened, so only one engine's data is on disk at a time.
 */
#define _GNU_SOURCE
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef BENCH_CFLAGS
#define BENCH_CFLAGS "(unknown)"
#endif
#ifndef BENCH_COMMIT
#define BENCH_COMMIT ""
#endif

/* >> filesystem helpers -------------------------------------------------------- */

static int drv_rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st; (void)flag; (void)f;
    return remove(path);
}

static void drv_rmtree(const char *dir)
{
    nftw(dir, drv_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int drv_mkdirs(const char *path)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *s = tmp + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* >> fdatasync probe ------------------------------------------------------------ */

static int drv_dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* A 1 MiB file written and synced once; then each round overwrites 100
 * bytes inside a block already on disk and times the fdatasync that makes
 * them durable: what a durable put of a log engine waits for (the file's
 * size does not change, so no metadata is written). At most 400 rounds
 * (quick: 100) or 3 s. */
double bench_fsync_probe(const char *dir, int quick, double *p99)
{
    enum { PROBE_BYTES = 1 << 20, MAX_ROUNDS = 400 };
    static char block[PROBE_BYTES];
    double lat[MAX_ROUNDS];
    char path[PATH_MAX];
    int rounds = quick ? 100 : MAX_ROUNDS, done = 0;
    *p99 = 0;
    snprintf(path, sizeof path, "%s/fsync-probe", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return 0;
    memset(block, 'p', sizeof block);
    int ok = pwrite(fd, block, sizeof block, 0) == (ssize_t)sizeof block && fdatasync(fd) == 0;
    double t_end = bench_now() + 3.0;
    for (int i = 0; ok && i < rounds && bench_now() < t_end; i++) {
        off_t off = (off_t)((uint64_t)i * 4096 * 7 % (PROBE_BYTES - 4096)) + 100;
        block[i % 4096] ^= 1;
        double t0 = bench_now();
        ok = pwrite(fd, block, 100, off) == 100 && fdatasync(fd) == 0;
        lat[done++] = (bench_now() - t0) * 1e6;
    }
    close(fd);
    unlink(path);
    if (!ok || done == 0)
        return 0;
    qsort(lat, (size_t)done, sizeof lat[0], drv_dcmp);
    *p99 = lat[(size_t)((double)(done - 1) * 0.99 + 0.5)];
    return lat[done / 2];
}

/* >> the machine ------------------------------------------------------------------ */

static void drv_cpu_model(char *out, size_t cap)
{
    char line[512];
    FILE *f = fopen("/proc/cpuinfo", "r");
    snprintf(out, cap, "unknown CPU");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) == 0 && colon) {
            snprintf(out, cap, "%s", colon + 2);
            out[strcspn(out, "\n")] = '\0';
            break;
        }
    }
    if (f)
        fclose(f);
}

/* The filesystem and device holding path: the longest mount point that
 * is a prefix of its real path, from /proc/mounts. */
static void drv_fs_of(const char *path, char *out, size_t cap)
{
    char real[PATH_MAX], dev[256], mnt[PATH_MAX], type[64];
    size_t best = 0;
    snprintf(out, cap, "unknown filesystem");
    if (!realpath(path, real))
        return;
    FILE *f = fopen("/proc/mounts", "r");
    while (f && fscanf(f, "%255s %4095s %63s %*[^\n]", dev, mnt, type) == 3) {
        size_t l = strlen(mnt);
        int under = strncmp(real, mnt, l) == 0 && (real[l] == '/' || real[l] == '\0' || l == 1);
        if (under && l >= best) {
            best = l;
            snprintf(out, cap, "%s on %s (mounted at %s)", type, dev, mnt);
        }
    }
    if (f)
        fclose(f);
}

static const char *drv_build_warning(void)
{
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return "WARNING: sanitizer build: figures are meaningless";
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
    return "WARNING: sanitizer build: figures are meaningless";
#endif
#endif
#ifndef __OPTIMIZE__
    return "WARNING: debug build (no optimization): figures are meaningless";
#else
    if (strstr(BENCH_CFLAGS, "-fsanitize") || strstr(BENCH_CFLAGS, "-O0"))
        return "WARNING: debug or sanitizer flags in the build: figures are meaningless";
    return NULL;
#endif
}

/* Fills res->machine with markdown lines; prints them too. */
static void drv_machine(const struct bench_params *p, struct bench_results *res)
{
    char cpu[256], fs[PATH_MAX + 400], real[PATH_MAX], date[64];
    struct utsname u;
    time_t now = time(NULL);
    uname(&u);
    drv_cpu_model(cpu, sizeof cpu);
    drv_fs_of(p->dir, fs, sizeof fs);
    if (!realpath(p->dir, real))
        snprintf(real, sizeof real, "%s", p->dir);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    double ram = (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE) / (1u << 30);
    FILE *f = fmemopen(res->machine, sizeof res->machine - 1, "w");
    if (!f)
        return;
    double load[1] = { -1 };
    getloadavg(load, 1);
    fprintf(f, "- Machine: %ld cores, %s, %.1f GiB RAM, %s %s %s; load average %.2f at start\n",
            sysconf(_SC_NPROCESSORS_ONLN), cpu, ram, u.sysname, u.release, u.machine, load[0]);
    fprintf(f, "- Bench dir: %s: %s\n", real, fs);
    fprintf(f, "- Build: calypso at commit %s, cc %s, flags `%s`%s\n",
            BENCH_COMMIT[0] ? BENCH_COMMIT : "?", __VERSION__, BENCH_CFLAGS,
#ifdef NDEBUG
            "");
#else
            " (assertions on)");
#endif
    fprintf(f, "- Engines:");
    for (size_t e = 0; e < res->nengines; e++)
        fprintf(f, "%s %s %s", e ? "," : "", res->eng[e]->name,
                res->eng[e]->version ? res->eng[e]->version() : "?");
    fprintf(f, "\n- Date: %s\n", date);
    if (drv_build_warning())
        fprintf(f, "- **%s**\n", drv_build_warning());
    fclose(f);
    printf("%s", res->machine);
    fflush(stdout);
}

/* >> children ---------------------------------------------------------------------- */

static int drv_selected(const char *list, const char *name)
{
    if (!list)
        return 1;
    size_t l = strlen(name);
    for (const char *s = list; (s = strstr(s, name)) != NULL; s += l)
        if ((s == list || s[-1] == ',') && (s[l] == ',' || s[l] == '\0'))
            return 1;
    return 0;
}

/* Starts `self run engine group dir <bounds>` with stdout on a pipe. */
static pid_t drv_spawn(const struct bench_params *p, const char *engine,
                       const char *group, const char *dir, int *fd)
{
    char n[32], nl[32], ds[32], dops[32], big[32], rs[32];
    int pfd[2];
    snprintf(n, sizeof n, "%llu", (unsigned long long)p->n);
    snprintf(nl, sizeof nl, "%llu", (unsigned long long)p->n_large);
    snprintf(ds, sizeof ds, "%g", p->durable_secs);
    snprintf(dops, sizeof dops, "%llu", (unsigned long long)p->durable_ops);
    snprintf(big, sizeof big, "%llu", (unsigned long long)p->big_bytes);
    snprintf(rs, sizeof rs, "%g", p->work_secs);
    if (pipe(pfd) != 0)
        return -1;
    pid_t parent = getpid(), pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(pfd[1], STDOUT_FILENO);
        close(pfd[0]);
        close(pfd[1]);
        execl("/proc/self/exe", "harness", "run", engine, group, dir, "--n", n,
              "--n-large", nl, "--durable-secs", ds, "--durable-ops", dops, "--big-bytes", big,
              "--work-secs", rs, (char *)NULL);
        _exit(127);
    }
    close(pfd[1]);
    if (pid < 0) {
        close(pfd[0]);
        return -1;
    }
    *fd = pfd[0];
    return pid;
}

/* Reads all of fd into buf until EOF or the deadline. 0 on EOF. */
static int drv_read_all(int fd, char *buf, size_t cap, double deadline)
{
    size_t len = 0;
    for (;;) {
        int ms = (int)((deadline - bench_now()) * 1e3);
        if (ms <= 0)
            return -1;
        struct pollfd pf = { .fd = fd, .events = POLLIN };
        int rc = poll(&pf, 1, ms);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return -1;
        ssize_t got = read(fd, buf + len, cap - 1 - len);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        len += (size_t)got;
        if (len == cap - 1)
            break;
    }
    buf[len] = '\0';
    return 0;
}

/* Stores the RESULT lines of one child. */
static void drv_parse(struct bench_results *res, size_t e, int rep, char *out)
{
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char name[64], val[64];
        if (sscanf(line, "RESULT %63s %63s", name, val) != 2)
            continue;
        int m = bench_metric_find(name);
        if (m < 0) {
            fprintf(stderr, "bench: unknown metric %s from %s\n", name, res->eng[e]->name);
            continue;
        }
        int unsup = strcmp(val, "unsupported") == 0;
        res->state[e][m][rep] = unsup ? BENCH_V_UNSUPPORTED : BENCH_V_OK;
        res->value[e][m][rep] = unsup ? NAN : strtod(val, NULL);
    }
}

/* Runs one child to completion (or kills it) and records its figures; a
 * figure of the group it did not print is marked failed. */
static void drv_run_one(const struct bench_params *p, struct bench_results *res,
                        size_t e, const struct bench_group *g, int rep)
{
    static char out[1 << 16];
    char dir[PATH_MAX];
    int fd = -1, status = 0;
    snprintf(dir, sizeof dir, "%s/%s.%s", p->dir, res->eng[e]->name, g->name);
    drv_rmtree(dir);
    fprintf(stderr, "[run %d/%d] %s: %s (n=%llu)\n", rep + 1, p->reps, g->name,
            res->eng[e]->name, (unsigned long long)bench_group_n(p, g));
    double t0 = bench_now();
    pid_t pid = drv_spawn(p, res->eng[e]->name, g->name, dir, &fd);
    if (pid > 0) {
        int timed_out = drv_read_all(fd, out, sizeof out, bench_now() + p->timeout_secs) != 0;
        if (timed_out) {
            fprintf(stderr, "bench: %s %s: over %.0f s, killed\n", res->eng[e]->name,
                    g->name, p->timeout_secs);
            kill(pid, SIGKILL);
        }
        close(fd);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        if (!timed_out)
            drv_parse(res, e, rep, out);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "bench: %s %s failed (status %d)\n", res->eng[e]->name, g->name, status);
    }
    fprintf(stderr, "  %-14s done in %.1f s\n", res->eng[e]->name, bench_now() - t0);
    for (size_t m = 0; m < bench_nmetrics; m++)
        if (strcmp(bench_metrics[m].group, g->name) == 0 && res->state[e][m][rep] == BENCH_V_NONE)
            res->state[e][m][rep] = BENCH_V_FAILED;
    drv_rmtree(dir);
}

/* The fdatasync latency of this run, measured next to the durable group
 * of each repetition (the disk's speed drifts; the target uses it). */
static void drv_fsync(const struct bench_params *p, struct bench_results *res, int rep)
{
    res->fsync_us[rep] = bench_fsync_probe(p->dir, p->quick, &res->fsync_p99_us[rep]);
    fprintf(stderr, "[run %d/%d] fdatasync probe: median %.0f us, p99 %.0f us\n", rep + 1,
            p->reps, res->fsync_us[rep], res->fsync_p99_us[rep]);
}

static int drv_engines(const struct bench_params *p, struct bench_results *res)
{
    for (const struct bench_adapter *const *a = bench_adapter_list(); *a; a++)
        if (drv_selected(p->engines, (*a)->name) && res->nengines < BENCH_MAX_ENGINES)
            res->eng[res->nengines++] = *a;
    if (res->nengines == 0) {
        fprintf(stderr, "bench: no engine selected (see `harness list`)\n");
        return -1;
    }
    return 0;
}

int bench_driver(const struct bench_params *p)
{
    static struct bench_results res;
    if (p->reps > BENCH_MAX_REPS || drv_engines(p, &res) != 0)
        return -1;
    if (drv_mkdirs(p->dir) != 0 || drv_mkdirs(p->results) != 0) {
        fprintf(stderr, "bench: cannot create %s or %s\n", p->dir, p->results);
        return -1;
    }
    res.reps = p->reps;
    drv_machine(p, &res);
    double t0 = bench_now();
    for (int rep = 0; rep < p->reps; rep++)
        for (size_t gi = 0; gi < bench_ngroups; gi++) {
            const struct bench_group *g = &bench_groups[gi];
            if (!drv_selected(p->groups, g->name) || (g->large && p->n_large == 0))
                continue;
            if (g->durable)
                drv_fsync(p, &res, rep);
            for (size_t k = 0; k < res.nengines; k++)
                drv_run_one(p, &res, (k + (size_t)rep) % res.nengines, &bench_groups[gi], rep);
        }
    res.seconds = bench_now() - t0;
    return bench_report(p, &res);
}
