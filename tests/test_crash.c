/*
 * test_crash.c: crash torture, in the manner of RocksDB's db_crashtest.
 *
 * A child process (this binary again, run with --crash-child) opens the
 * database and writes to it under CALYPSO_SYNC_ALWAYS from two writer
 * threads (puts, overwrites, deletes, puts with a one-hour TTL; each thread
 * owns half of the keys, so that the order of writes to a key is the order
 * of its thread), while a third thread runs calypso_merge every few tens of
 * milliseconds; datafiles are 256 KiB so that rotations and merges are
 * frequent. Around every call it reports to the parent through a pipe: an
 * "intent" record before the call, an "ack" record after it returned OK.
 *
 * The parent kills the child with SIGKILL after a random 20-300 ms (one
 * cycle in eight after 1-12 ms, inside its open, that is inside recovery
 * of what the previous kill left), reads what the pipe
 * still holds, reopens the database and checks it: every acknowledged write
 * is there with its value, unless a later write of the same key was in
 * flight (then either is allowed); acknowledged deletes hold; no key that
 * was never written appears; every get verifies (checksums hold); a fold
 * agrees. The same database goes through every cycle, so recovery runs on
 * what recovery left. A child that dies of anything but the SIGKILL (an
 * assert, a sanitizer report) fails the test.
 *
 * CALYPSO_CRASH_CYCLES sets the number of cycles (20 by default; `make
 * crash-test` runs 200); CALYPSO_SEED replays the schedule of kill delays
 * and operations (thread interleavings differ from run to run);
 * CALYPSO_CRASH_VERBOSE=1 prints each cycle (delay, acks, reopen time,
 * files); CALYPSO_KEEP=1 leaves the database directory behind.
 */
#include "crash_util.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#define CR_KEYS      2000u
#define CR_TTL       3600000u
#define CR_FILE      (256u << 10)

enum { CR_INTENT = 1, CR_ACK = 2 };

static char cr_self[4096];     /* path of this binary, for the children */

/* One report on the pipe: 12 bytes, written with one write(2), so atomic. */
typedef struct cr_rec {
    uint32_t kind, key, ver;     /* ver CU_DEL for a delete */
} cr_rec;

static calypso_options cr_opts(void)
{
    calypso_options o = { 0 };
    o.sync = CALYPSO_SYNC_ALWAYS;
    o.max_datafile_size = CR_FILE;
    o.merge_trigger_ratio = -1;              /* merges come from the merge thread */
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

// >> the child ----------------------------------------------------------------------

typedef struct cr_child {
    calypso  *db;
    cu_model  m;             /* keys only: the child never reads it back */
    int       fd;            /* the pipe                                 */
    uint64_t  seed;
    uint32_t  base;          /* versions of this cycle start here        */
    int       stop;
} cr_child;

typedef struct cr_writer {
    cr_child *c;
    uint32_t  id;
} cr_writer;

static void cr_send(int fd, uint32_t kind, uint32_t key, uint32_t ver)
{
    cr_rec r = { kind, key, ver };
    if (write(fd, &r, sizeof r) != (ssize_t)sizeof r) _exit(3);   /* parent gone */
}

static void *cr_writer_main(void *arg)
{
    cr_writer *w = arg;
    cr_child *c = w->c;
    uint64_t r = c->seed * 7919 + w->id;
    /* A bounded number of writes per cycle, so that the merges (which take
     * every sealed file) keep up on a fast disk; the kill falls among
     * writes or, later in the cycle, among merges alone. */
    uint32_t budget = 300 + (uint32_t)tu_below(&r, 1500);
    for (uint32_t n = 0; !__atomic_load_n(&c->stop, __ATOMIC_RELAXED); n++) {
        if (n >= budget) {
            struct timespec ts = { 0, 5000000L };
            nanosleep(&ts, NULL);
            continue;
        }
        uint32_t key = (uint32_t)tu_below(&r, CR_KEYS / 2) * 2 + w->id;
        uint32_t dice = (uint32_t)tu_below(&r, 100);
        uint32_t ver = dice < 80 ? c->base + n * 2 + w->id + 1 : CU_DEL;
        cr_send(c->fd, CR_INTENT, key, ver);
        int rc = ver == CU_DEL ? cu_del(c->db, &c->m, key)
                               : cu_put(c->db, &c->m, key, ver, dice < 20 ? CR_TTL : 0);
        if (rc != CALYPSO_OK) {
            fprintf(stderr, "crash child: %s of key %u: %s\n", ver == CU_DEL ? "delete" : "put",
                    key, calypso_errmsg(c->db));
            _exit(4);
        }
        cr_send(c->fd, CR_ACK, key, ver);
    }
    return NULL;
}

static void *cr_merge_main(void *arg)
{
    cr_child *c = arg;
    uint64_t r = c->seed * 104729;
    while (!__atomic_load_n(&c->stop, __ATOMIC_RELAXED)) {
        struct timespec ts = { 0, (long)(20 + tu_below(&r, 60)) * 1000000L };
        nanosleep(&ts, NULL);
        int rc = calypso_merge(c->db);
        if (rc != CALYPSO_OK && rc != CALYPSO_EMERGING) {
            fprintf(stderr, "crash child: merge: %s\n", calypso_errmsg(c->db));
            _exit(5);
        }
    }
    return NULL;
}

/* Runs until killed (or for 20 s, then exits 0). */
static int cr_child_main(const char *dir, uint64_t seed, uint32_t cycle, int fd)
{
    cr_child c = { 0 };
    calypso_options o = cr_opts();
    c.fd = fd;
    c.seed = seed;
    c.base = (cycle + 1) * 4000000u;
    cu_model_init(&c.m, CR_KEYS);
    int rc = calypso_open(dir, &o, &c.db);
    if (rc) {
        fprintf(stderr, "crash child: open %s: %s\n", dir, calypso_errmsg(NULL));
        return 2;
    }
    pthread_t w[2], mt;
    cr_writer ws[2] = { { &c, 0 }, { &c, 1 } };
    for (int i = 0; i < 2; i++) pthread_create(&w[i], NULL, cr_writer_main, &ws[i]);
    pthread_create(&mt, NULL, cr_merge_main, &c);
    struct timespec ts = { 20, 0 };
    nanosleep(&ts, NULL);
    __atomic_store_n(&c.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 2; i++) pthread_join(w[i], NULL);
    pthread_join(mt, NULL);
    calypso_close(c.db);
    cu_model_free(&c.m);
    return 0;
}

// >> the parent ---------------------------------------------------------------------

static void cr_apply(cu_model *m, const cr_rec *r)
{
    if (r->key >= m->n) fail_msg("crash child reported key %u", r->key);
    if (r->kind == CR_INTENT) {
        m->k[r->key].alt = r->ver;
    } else {
        m->k[r->key].ver = r->ver;
        m->k[r->key].alt = CU_NONE;
    }
}

static double cr_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads whole records from fd into the model; partial ones wait in buf. */
static int cr_drain(int fd, cu_model *m, uint8_t *buf, size_t *have, uint64_t *acks)
{
    ssize_t n = read(fd, buf + *have, 4096 - *have);
    if (n <= 0) return (int)n;
    *have += (size_t)n;
    size_t used = 0;
    while (*have - used >= sizeof(cr_rec)) {
        cr_rec r;
        memcpy(&r, buf + used, sizeof r);
        cr_apply(m, &r);
        if (r.kind == CR_ACK) (*acks)++;
        used += sizeof r;
    }
    memmove(buf, buf + used, *have - used);
    *have -= used;
    return 1;
}

static void test_crash_cycles(void **state)
{
    (void)state;
    uint64_t seed = tu_seed("test_crash");
    const char *e = getenv("CALYPSO_CRASH_CYCLES");
    uint32_t cycles = e && *e ? (uint32_t)strtoul(e, NULL, 10) : (uint32_t)cu_scaled(20);
    char *root = cu_scratch();
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/db", root);
    cu_model m;
    cu_model_init(&m, CR_KEYS);
    uint64_t r = seed, total_acks = 0, in_open = 0;
    char why[512];

    for (uint32_t cycle = 0; cycle < cycles; cycle++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        char a_seed[32], a_cycle[32], a_fd[16];
        snprintf(a_seed, sizeof a_seed, "%llu", (unsigned long long)(seed + cycle));
        snprintf(a_cycle, sizeof a_cycle, "%u", cycle);
        snprintf(a_fd, sizeof a_fd, "%d", p[1]);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            char *argv[] = { "test_crash", "--crash-child", dir, a_seed, a_cycle, a_fd, NULL };
            execv(cr_self, argv);
            _exit(127);
        }
        close(p[1]);
        /* 20-300 ms; one cycle in eight much sooner, to land in the
         * child's open, that is in recovery. */
        double delay = tu_below(&r, 8) == 0 ? (1 + (double)tu_below(&r, 12)) / 1000.0
                                            : (20 + (double)tu_below(&r, 281)) / 1000.0;
        double t0 = cr_now();
        uint8_t buf[4096];
        size_t have = 0;
        uint64_t acks = 0;
        for (;;) {
            double left = delay - (cr_now() - t0);
            if (left <= 0) break;
            struct pollfd pf = { p[0], POLLIN, 0 };
            if (poll(&pf, 1, (int)(left * 1000) + 1) > 0 && cr_drain(p[0], &m, buf, &have, &acks) <= 0)
                break;   /* the child ended early: reported below */
        }
        kill(pid, SIGKILL);
        while (cr_drain(p[0], &m, buf, &have, &acks) > 0) {}
        close(p[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            fail_msg("cycle %u (CALYPSO_SEED=%llu): the child died by itself (status 0x%x)",
                     cycle, (unsigned long long)seed, status);
        if (acks == 0) in_open++;
        total_acks += acks;

        calypso_options o = cr_opts();
        calypso *db = NULL;
        double t1 = cr_now();
        int rc = calypso_open(dir, &o, &db);
        if (getenv("CALYPSO_CRASH_VERBOSE"))
            printf("cycle %u: killed after %.0f ms, %llu acks, reopen %.1f ms, %d datafiles, "
                   "%d hints\n", cycle, delay * 1000, (unsigned long long)acks,
                   (cr_now() - t1) * 1000, cu_count_files(dir, ".data"),
                   cu_count_files(dir, ".hint"));
        if (rc)
            fail_msg("cycle %u (CALYPSO_SEED=%llu, killed after %.0f ms): reopen: %s: %s", cycle,
                     (unsigned long long)seed, delay * 1000, calypso_strerror(rc),
                     calypso_errmsg(NULL));
        if (cu_verify(db, &m, why, sizeof why)) {
            calypso_close(db);
            fail_msg("cycle %u (CALYPSO_SEED=%llu, killed after %.0f ms): %s", cycle,
                     (unsigned long long)seed, delay * 1000, why);
        }
        assert_int_equal(calypso_close(db), CALYPSO_OK);
    }
    printf("[ CRASH    ] %u kill -9 cycles, %llu acknowledged operations checked, %llu kills "
           "before the first ack (during open/recovery)\n", cycles,
           (unsigned long long)total_acks, (unsigned long long)in_open);
    fflush(stdout);
    cu_model_free(&m);
    if (getenv("CALYPSO_KEEP")) {
        printf("kept %s\n", root);
        free(root);
    } else {
        cu_rmrf(root);
    }
}

int main(int argc, char **argv)
{
    /* This binary's own path, read now: under valgrind, /proc/self/exe is
     * valgrind itself to execv but this program to readlink. */
    ssize_t n = readlink("/proc/self/exe", cr_self, sizeof cr_self - 1);
    if (n > 0) cr_self[n] = 0;
    else snprintf(cr_self, sizeof cr_self, "/proc/self/exe");
    if (argc == 6 && strcmp(argv[1], "--crash-child") == 0)
        return cr_child_main(argv[2], strtoull(argv[3], NULL, 10),
                             (uint32_t)strtoul(argv[4], NULL, 10), atoi(argv[5]));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
