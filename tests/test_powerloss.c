/*
 * test_powerloss.c: power loss, simulated by the syscall table (src/os.c,
 * cy_os_powerloss_*), in the manner of LevelDB's fault_injection_test and
 * SQLite's crash tests.
 *
 * First the simulator itself: what a crash keeps and loses of a file's
 * unsynced bytes (DROP, ZERO, TORN, GARBLE), of creations, renames and
 * removals whose directory was not synced, and that the table is frozen
 * afterwards.
 *
 * Then the engine: a seeded workload under CALYPSO_SYNC_ALWAYS (puts,
 * overwrites, deletes, puts with long TTLs, rotations into 4 KiB datafiles,
 * merges, syncs) runs in this process with a crash armed before its nth
 * call to the table. The crash rewinds the files as a power cut would and
 * freezes the table; the handle, now failing every call, is closed; the
 * directory is reopened with tracking off. Every write acknowledged before
 * the crash must be there with its value, every acknowledged delete must
 * hold, the one call in flight may have landed or not, and no key that was
 * never written may appear. For each seed, crash points are spread over the
 * whole workload, in each of the four modes.
 *
 * A crash in GARBLE mode may leave random bytes after the last durable
 * record of the newest datafile: open may then refuse with
 * CALYPSO_ECORRUPT (that is damage, per the torn-tail rule of
 * doc/format.md); the test then requires that open with auto_recovery
 * loses nothing acknowledged.
 *
 * CALYPSO_SEED replays a run; CALYPSO_TEST_SCALE (percent) scales it.
 */
#include "crash_util.h"
#include "internal.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>

static const char *pl_mode_name[] = { "drop", "zero", "torn", "garble" };

// >> the simulator ----------------------------------------------------------------

static char *pl_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Reads a whole file; returns its length, -1 when it does not exist. */
static int64_t pl_read(const char *path, uint8_t *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return n;
}

static int pl_write_file(const char *path, const char *data, int dir_sync)
{
    int fd = cy_os_open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return fd;
    int rc = cy_os_pwrite(fd, data, strlen(data), 0);
    if (!rc) rc = cy_os_fdatasync(fd);
    cy_os_close(fd);
    if (!rc && dir_sync) {
        char *dir = strdup(path);
        *strrchr(dir, '/') = 0;
        rc = cy_os_sync_dir(dir);
        free(dir);
    }
    return rc;
}

static void test_sim_file_content(void **state)
{
    (void)state;
    for (int mode = 0; mode < CY_OS_PL__COUNT; mode++) {
        char *dir = cu_scratch();
        char *f = pl_path(dir, "f");
        cy_os_powerloss_begin();
        int fd = cy_os_open(f, O_RDWR | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(cy_os_sync_dir(dir), 0);
        assert_int_equal(cy_os_pwrite(fd, "durable.", 8, 0), 0);
        assert_int_equal(cy_os_fdatasync(fd), 0);
        assert_int_equal(cy_os_pwrite(fd, "0123456789", 10, 8), 0);   /* unsynced */
        assert_int_equal(cy_os_pwrite(fd, "D", 1, 0), 0);              /* unsynced overwrite */
        cy_os_powerloss_crash(mode, 42);
        assert_true(cy_os_powerloss_crashed());
        assert_int_equal(cy_os_pwrite(fd, "x", 1, 0), -EIO);           /* frozen */
        assert_int_equal(cy_os_fdatasync(fd), -EIO);
        assert_int_equal(cy_os_close(fd), 0);                          /* still released */
        cy_os_powerloss_end();

        uint8_t buf[64];
        int64_t n = pl_read(f, buf, sizeof buf);
        switch (mode) {
        case CY_OS_PL_DROP:
            assert_int_equal(n, 8);
            assert_memory_equal(buf, "durable.", 8);
            break;
        case CY_OS_PL_ZERO:
            assert_int_equal(n, 18);
            assert_memory_equal(buf, "durable.", 8);
            for (int i = 8; i < 18; i++) assert_int_equal(buf[i], 0);
            break;
        case CY_OS_PL_TORN:
            /* A prefix of the new bytes, the old ones after it. */
            assert_true(n >= 8 && n <= 18);
            assert_true(buf[0] == 'd' || buf[0] == 'D');
            assert_memory_equal(buf + 1, "urable.", 7);
            assert_memory_equal(buf + 8, "0123456789", (size_t)(n - 8));
            break;
        default:
            assert_int_equal(n, 18);
            break;
        }
        /* A file written only before begin counts as durable. */
        free(f);
        cu_rmrf(dir);
    }
}

static void test_sim_names(void **state)
{
    (void)state;
    char *dir = cu_scratch();
    char *durable = pl_path(dir, "durable"), *fresh = pl_path(dir, "fresh");
    char *tmp = pl_path(dir, "x.tmp"), *final = pl_path(dir, "x");
    char *gone = pl_path(dir, "gone"), *sub = pl_path(dir, "sub"), *inner = pl_path(sub, "in");
    char *kept = pl_path(dir, "kept");
    uint8_t buf[64];

    /* Before begin: everything that exists counts as durable. */
    int fd = open(gone, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write(fd, "old", 3), 3);
    close(fd);
    fd = open(final, O_WRONLY | O_CREAT, 0644);
    assert_int_equal(write(fd, "v1", 2), 2);
    close(fd);

    cy_os_powerloss_begin();
    assert_int_equal(pl_write_file(durable, "made durable", 1), 0);
    assert_int_equal(pl_write_file(fresh, "data synced, name not", 0), 0);
    assert_int_equal(pl_write_file(tmp, "v2", 0), 0);
    assert_int_equal(cy_os_rename(tmp, final), 0);      /* over v1, no dir sync */
    assert_int_equal(cy_os_unlink(gone), 0);            /* no dir sync */
    assert_int_equal(cy_os_mkdir(sub, 0755), 0);
    assert_int_equal(pl_write_file(inner, "inside", 1), 0);   /* sub synced, dir not */
    assert_int_equal(pl_write_file(kept, "kept", 0), 0);
    /* A later fsync of the directory makes `kept` (and everything before
     * it in that directory) durable: do it for a second file only. */
    cy_os_powerloss_crash(CY_OS_PL_DROP, 1);
    cy_os_powerloss_end();

    assert_int_equal(pl_read(durable, buf, sizeof buf), 12);
    assert_int_equal(pl_read(fresh, buf, sizeof buf), -1);
    assert_int_equal(pl_read(tmp, buf, sizeof buf), -1);    /* created since: gone again */
    assert_int_equal(pl_read(final, buf, sizeof buf), 2);
    assert_memory_equal(buf, "v1", 2);                      /* rename undone */
    assert_int_equal(pl_read(gone, buf, sizeof buf), 3);    /* unlink undone */
    assert_memory_equal(buf, "old", 3);
    assert_int_equal(pl_read(inner, buf, sizeof buf), -1);  /* sub never made durable */
    assert_int_equal(access(sub, F_OK), -1);
    assert_int_equal(pl_read(kept, buf, sizeof buf), -1);

    /* The same with the directory synced at the end: all of it stays. */
    cu_rmtree(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    cy_os_powerloss_begin();
    assert_int_equal(pl_write_file(tmp, "v2", 0), 0);
    assert_int_equal(cy_os_rename(tmp, final), 0);
    assert_int_equal(cy_os_mkdir(sub, 0755), 0);
    assert_int_equal(pl_write_file(inner, "inside", 1), 0);
    assert_int_equal(cy_os_sync_dir(dir), 0);
    cy_os_powerloss_crash(CY_OS_PL_DROP, 1);
    cy_os_powerloss_end();
    assert_int_equal(pl_read(final, buf, sizeof buf), 2);
    assert_memory_equal(buf, "v2", 2);
    assert_int_equal(pl_read(inner, buf, sizeof buf), 6);

    free(durable); free(fresh); free(tmp); free(final); free(gone); free(inner); free(sub);
    free(kept);
    cu_rmrf(dir);
}

static void test_sim_crash_at(void **state)
{
    (void)state;
    char *dir = cu_scratch();
    char *f = pl_path(dir, "f");
    cy_os_powerloss_begin();
    cy_os_powerloss_crash_at(4, CY_OS_PL_DROP, 7);
    int fd = cy_os_open(f, O_RDWR | O_CREAT, 0644);          /* call 1 */
    assert_int_equal(cy_os_sync_dir(dir), 0);               /* 2 and 3 (close is no call) */
    assert_false(cy_os_powerloss_crashed());
    assert_int_equal(cy_os_pwrite(fd, "a", 1, 0), -EIO);    /* 4: the crash comes first */
    assert_true(cy_os_powerloss_crashed());
    cy_os_close(fd);
    cy_os_powerloss_end();
    /* The directory fsync (call 3) happened before the crash. */
    assert_int_equal(access(f, F_OK), 0);
    free(f);
    cu_rmrf(dir);
}

// >> the engine ---------------------------------------------------------------------

#define PL_KEYS 40
#define PL_TTL  3600000u

static calypso_options pl_opts(void)
{
    calypso_options o = { 0 };
    o.sync = CALYPSO_SYNC_ALWAYS;
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

/* Runs the seeded workload of nops operations against db, tracking the
 * model; stops at the first failure (the crash) and returns its code. */
static int pl_workload(calypso *db, cu_model *m, uint64_t seed, uint32_t nops, uint32_t *ver)
{
    uint64_t r = seed;
    for (uint32_t op = 0; op < nops; op++) {
        uint32_t dice = (uint32_t)tu_below(&r, 100);
        uint32_t k = (uint32_t)tu_below(&r, m->n);
        int rc;
        if (dice < 70) {
            uint32_t v = (*ver)++;
            m->k[k].alt = v;
            rc = cu_put(db, m, k, v, dice < 15 ? PL_TTL : 0);
            if (!rc) { m->k[k].ver = v; m->k[k].alt = CU_NONE; }
        } else if (dice < 92) {
            m->k[k].alt = CU_DEL;
            rc = cu_del(db, m, k);
            if (!rc) { m->k[k].ver = CU_DEL; m->k[k].alt = CU_NONE; }
        } else if (dice < 97) {
            rc = calypso_merge(db);
        } else {
            rc = calypso_sync(db);
        }
        if (rc) return rc;
    }
    return CALYPSO_OK;
}

typedef struct pl_stats {
    uint32_t runs, refused_garble, inflight_landed, inflight_lost, completed;
} pl_stats;

/* Shared between the parent and the child that runs the workload: the
 * child updates the model as calls return, the parent reads it after the
 * child is gone. */
typedef struct pl_shared {
    int    done;               /* the workload ran to its end, no crash  */
    int    failed;             /* a call failed before the crash         */
    char   msg[512];
    cu_key k[PL_KEYS + 1];
} pl_shared;

/* The child: the workload with a crash before table call n, which ends the
 * process. */
static void pl_child(pl_shared *sh, const char *dir, uint64_t seed, uint32_t nops, uint64_t n,
                     int mode)
{
    calypso_options o = pl_opts();
    cu_model m = { PL_KEYS, sh->k };
    uint32_t ver = 1;
    cy_os_powerloss_begin();
    cy_os_powerloss_crash_at(n, mode | CY_OS_PL_EXIT, seed ^ (n * 0x9e3779b97f4a7c15ull));
    calypso *db = NULL;
    int rc = calypso_open(dir, &o, &db);
    if (rc) {
        sh->failed = 1;
        snprintf(sh->msg, sizeof sh->msg, "open: %s", calypso_errmsg(NULL));
        _exit(0);
    }
    rc = pl_workload(db, &m, seed, nops, &ver);
    if (rc) {
        sh->failed = 1;
        snprintf(sh->msg, sizeof sh->msg, "%s", calypso_errmsg(db));
        _exit(0);
    }
    calypso_close(db);
    sh->done = 1;
    _exit(0);
}

/* One crash: the workload in a child with a crash before table call n;
 * then reopen here and check. Returns 0, or -1 after printing why. */
static int pl_one(const char *dir, uint64_t seed, uint32_t nops, uint64_t n, int mode,
                  pl_stats *st)
{
    calypso_options o = pl_opts();
    char why[512];
    int result = 0;
    cu_rmtree(dir);
    /* The directory exists, durably, before the database is created in it
     * (test_powerloss_new_directory covers its creation). */
    assert_int_equal(mkdir(dir, 0755), 0);

    pl_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                         -1, 0);
    assert_true(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    for (uint32_t i = 0; i <= PL_KEYS; i++) sh->k[i].alt = CU_NONE;
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) pl_child(sh, dir, seed, nops, n, mode);
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    cu_model m;
    cu_model_init(&m, PL_KEYS);
    memcpy(m.k, sh->k, sizeof sh->k);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        print_error("seed %llu n=%llu %s: the workload process died (status 0x%x)\n",
                    (unsigned long long)seed, (unsigned long long)n, pl_mode_name[mode],
                    status);
        result = -1;
    } else if (sh->failed) {
        print_error("seed %llu n=%llu %s: a call failed before the crash: %s\n",
                    (unsigned long long)seed, (unsigned long long)n, pl_mode_name[mode],
                    sh->msg);
        result = -1;
    }
    if (sh->done) st->completed++;
    munmap(sh, sizeof *sh);
    if (result) goto out;

    uint32_t flight = CU_NONE, fkey = 0;
    for (uint32_t k = 0; k < m.n; k++)
        if (m.k[k].alt != CU_NONE) { flight = m.k[k].alt; fkey = k; }
    calypso *db = NULL;
    int rc = calypso_open(dir, &o, &db);
    if (rc == CALYPSO_ECORRUPT && mode == CY_OS_PL_GARBLE) {
        st->refused_garble++;
        o.auto_recovery = 1;
        rc = calypso_open(dir, &o, &db);
    }
    if (rc) {
        print_error("seed %llu n=%llu %s: reopen after the crash fails: %s: %s\n",
                    (unsigned long long)seed, (unsigned long long)n, pl_mode_name[mode],
                    calypso_strerror(rc), calypso_errmsg(NULL));
        result = -1;
        goto out;
    }
    if (cu_verify(db, &m, why, sizeof why)) {
        print_error("seed %llu n=%llu %s: after the crash: %s\n", (unsigned long long)seed,
                    (unsigned long long)n, pl_mode_name[mode], why);
        result = -1;
    } else if (flight != CU_NONE) {
        if (m.k[fkey].ver == flight) st->inflight_landed++;
        else st->inflight_lost++;
    }
    /* The recovered database takes writes and keeps them. */
    uint32_t pv = 1u << 30;
    if (!result && (rc = cu_put(db, &m, m.n, pv, 0)) != CALYPSO_OK) {
        print_error("seed %llu n=%llu %s: the recovered database refuses a write: %s\n",
                    (unsigned long long)seed, (unsigned long long)n, pl_mode_name[mode],
                    calypso_errmsg(db));
        result = -1;
    }
    m.k[m.n].ver = pv;
    calypso_close(db);
    if (!result) {
        db = NULL;
        o.auto_recovery = 0;
        if ((rc = calypso_open(dir, &o, &db)) || cu_verify(db, &m, why, sizeof why)) {
            print_error("seed %llu n=%llu %s: second reopen: %s\n", (unsigned long long)seed,
                        (unsigned long long)n, pl_mode_name[mode],
                        rc ? calypso_errmsg(NULL) : why);
            result = -1;
        }
        if (db) calypso_close(db);
    }
out:
    st->runs++;
    cu_model_free(&m);
    return result;
}

/* How many table calls the workload of this seed makes (without a crash). */
static uint64_t pl_calls(const char *dir, uint64_t seed, uint32_t nops)
{
    calypso_options o = pl_opts();
    cu_model m;
    cu_model_init(&m, PL_KEYS);
    uint32_t ver = 1;
    cu_rmtree(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    cy_os_powerloss_begin();
    cy_os_count_reset();
    calypso *db = NULL;
    assert_int_equal(calypso_open(dir, &o, &db), CALYPSO_OK);
    assert_int_equal(pl_workload(db, &m, seed, nops, &ver), CALYPSO_OK);
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    uint64_t n = cy_os_count(CY_OS_ANY) - cy_os_count(CY_OS_CLOSE);   /* close is no crash point */
    cy_os_powerloss_end();
    cu_model_free(&m);
    return n;
}

static void pl_run_modes(const int *modes, int nmodes, uint32_t seeds, uint32_t points)
{
    uint64_t seed = tu_seed("test_powerloss");
    char *root = cu_scratch();
    char *dir = pl_path(root, "db");
    uint32_t nops = 160;
    pl_stats st = { 0 };
    int failures = 0;
    seeds = (uint32_t)cu_scaled(seeds);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    /* A fork of a sanitized process is slow (TSan: most of a second). */
    seeds = (seeds + 1) / 2;
    points = (points + 1) / 2;
#endif
    for (uint32_t s = 0; s < seeds && failures < 5; s++) {
        uint64_t sd = seed + s;
        uint64_t total = pl_calls(dir, sd, nops);
        uint64_t r = sd * 31 + 7;
        for (int mi = 0; mi < nmodes; mi++) {
            for (uint32_t p = 0; p < points && failures < 5; p++) {
                /* Spread over the run: one point per slice, at random in it. */
                uint64_t lo = total * p / points, hi = total * (p + 1) / points;
                uint64_t n = 1 + lo + tu_below(&r, hi > lo ? hi - lo : 1);
                if (pl_one(dir, sd, nops, n, modes[mi], &st)) {
                    failures++;
                    print_error("replay: CALYPSO_SEED=%llu (seed %llu = base + %u), crash before "
                                "call %llu of %llu, mode %s\n", (unsigned long long)seed,
                                (unsigned long long)sd, s, (unsigned long long)n,
                                (unsigned long long)total, pl_mode_name[modes[mi]]);
                }
            }
        }
    }
    printf("[ POWERLOSS] %u crash points (%u past the end of the workload); in-flight write "
           "landed %u, lost %u; garbled tail refused without auto_recovery %u\n", st.runs,
           st.completed, st.inflight_landed, st.inflight_lost, st.refused_garble);
    fflush(stdout);
    free(dir);
    cu_rmrf(root);
    if (failures) fail_msg("%d crashes lost acknowledged data or broke the database", failures);
}

static void test_powerloss_drop(void **state)
{
    (void)state;
    static const int modes[] = { CY_OS_PL_DROP, CY_OS_PL_ZERO };
    pl_run_modes(modes, 2, 2, 16);
}

static void test_powerloss_torn(void **state)
{
    (void)state;
    static const int modes[] = { CY_OS_PL_TORN };
    pl_run_modes(modes, 1, 3, 16);
}

static void test_powerloss_garble(void **state)
{
    (void)state;
    static const int modes[] = { CY_OS_PL_GARBLE };
    pl_run_modes(modes, 1, 3, 16);
}

/* calypso_open creates a missing database directory. Its name lives in
 * the parent directory, so it is durable only after an fsync of the parent;
 * without one, a power cut can take the whole database, acknowledged
 * SYNC_ALWAYS writes included (calypso.h: "every file creation ... is made
 * durable by an fsync of the directory before anything relies on it"). */
static void test_powerloss_new_directory(void **state)
{
    (void)state;
    char *root = cu_scratch();
    char *dir = pl_path(root, "db");
    calypso_options o = pl_opts();
    cy_os_powerloss_begin();
    calypso *db = NULL;
    assert_int_equal(calypso_open(dir, &o, &db), CALYPSO_OK);
    assert_int_equal(calypso_put(db, "k", 1, "v", 1), CALYPSO_OK);   /* durable, says ALWAYS */
    cy_os_powerloss_crash(CY_OS_PL_DROP, 1);
    calypso_close(db);
    cy_os_powerloss_end();
    db = NULL;
    int rc = calypso_open(dir, &o, &db);
    assert_int_equal(rc, CALYPSO_OK);
    void *v = NULL;
    size_t vlen = 0;
    rc = calypso_get(db, "k", 1, &v, &vlen);
    calypso_free(v);
    calypso_close(db);
    free(dir);
    cu_rmrf(root);
    if (rc != CALYPSO_OK)
        fail_msg("a write acknowledged under SYNC_ALWAYS into a new database is lost by a power "
                 "cut: the database directory's creation was never made durable (no fsync of "
                 "its parent after mkdir in calypso_open)");
}


// >> out-of-order write-back ----------------------------------------------------------

/* Writes n puts of 64-byte values, keys "ooo-%08u" from `from` on. */
static void pl_puts(calypso *db, uint32_t from, uint32_t n)
{
    for (uint32_t i = from; i < from + n; i++) {
        char k[16];
        uint8_t v[64];
        snprintf(k, sizeof k, "ooo-%08u", i);
        for (size_t j = 0; j < sizeof v; j++) v[j] = (uint8_t)(i * 31 + j);
        assert_int_equal(calypso_put(db, k, 12, v, sizeof v), CALYPSO_OK);
    }
}

/* 1 if key i holds its value, 0 if absent; fails on anything else. */
static int pl_has(calypso *db, uint32_t i)
{
    char k[16];
    snprintf(k, sizeof k, "ooo-%08u", i);
    void *v = NULL;
    size_t vlen = 0;
    int rc = calypso_get(db, k, 12, &v, &vlen);
    if (rc == CALYPSO_ENOTFOUND) return 0;
    assert_int_equal(rc, CALYPSO_OK);
    assert_int_equal(vlen, 64);
    for (size_t j = 0; j < 64; j++) assert_int_equal(((uint8_t *)v)[j], (uint8_t)(i * 31 + j));
    calypso_free(v);
    return 1;
}

/* The kernel writes a shared mapping's dirty pages back in any order: after
 * a power loss a later page of the active file can be on disk while an
 * earlier one is not. Nothing past the last sync was promised, so open must
 * cut the file at the hole and go on, without auto_recovery, keeping every
 * write the sync covered; the cut is reported through calypso_errmsg. */
static void test_powerloss_page_hole_after_sync(void **state)
{
    (void)state;
    char *root = cu_scratch();
    char *dir = pl_path(root, "db"), *copy = pl_path(root, "copy");
    calypso *db = NULL;
    assert_int_equal(calypso_open(dir, NULL, &db), CALYPSO_OK);
    pl_puts(db, 0, 1000);
    assert_int_equal(calypso_sync(db), CALYPSO_OK);
    pl_puts(db, 1000, 30000);
    /* The files as a power cut could leave them: copied while open (the
     * page cache), then one page 1.5 MiB into the active file lost. */
    assert_int_equal(cu_copy_tree(dir, copy), 0);
    char *active = pl_path(copy, "0000000001.data");
    int fd = open(active, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t zeros[4096] = { 0 };
    assert_int_equal(pwrite(fd, zeros, sizeof zeros, 3 << 19), (ssize_t)sizeof zeros);
    close(fd);
    assert_int_equal(calypso_close(db), CALYPSO_OK);

    db = NULL;
    int rc = calypso_open(copy, NULL, &db);
    if (rc != CALYPSO_OK)
        fail_msg("open after a lost page past the last sync: %s: %s", calypso_strerror(rc),
                 calypso_errmsg(NULL));
    const char *m = calypso_errmsg(db);
    print_message("open reports: %s\n", m);
    assert_non_null(strstr(m, "0000000001.data"));
    /* Every synced write is there; the rest is a prefix of what followed. */
    uint32_t present = 0;
    for (uint32_t i = 0; i < 31000; i++) {
        int has = pl_has(db, i);
        if (i < 1000) assert_true(has);
        if (has) assert_int_equal(present++, i);
    }
    assert_true(present > 1000 && present < 31000);
    assert_int_equal(calypso_len(db), present);
    /* The cut file takes writes, and a second open needs no cut. */
    pl_puts(db, 40000, 10);
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    db = NULL;
    assert_int_equal(calypso_open(copy, NULL, &db), CALYPSO_OK);
    assert_int_equal(calypso_len(db), present + 10);
    assert_true(pl_has(db, 40009));
    assert_int_equal(calypso_close(db), CALYPSO_OK);
    free(active);
    free(dir);
    free(copy);
    cu_rmrf(root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_file_content),
        cmocka_unit_test(test_sim_names),
        cmocka_unit_test(test_sim_crash_at),
        cmocka_unit_test(test_powerloss_new_directory),
        cmocka_unit_test(test_powerloss_page_hole_after_sync),
        cmocka_unit_test(test_powerloss_drop),
        cmocka_unit_test(test_powerloss_torn),
        cmocka_unit_test(test_powerloss_garble),
    };
    const char *filter = getenv("CALYPSO_TEST_FILTER");
    if (filter && *filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
