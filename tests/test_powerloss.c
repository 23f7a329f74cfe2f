/*
 * test_powerloss.c: power loss, simulated by the syscall table (src/os.c,
 * cy_os_powerloss_*), in the manner of LevelDB's fault_injection_test and
 * SQLite's crash tests.
 *
 * First the simulator itself: what a crash keeps and loses of a file's
 * unsynced bytes (DROP, ZERO, TORN, GARBLE, and PAGES: any subset of the
 * unsynced pages, written with pwrite or through a mapping), of creations,
 * renames and removals whose directory was not synced, and that the table
 * is frozen afterwards.
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
 * Then out-of-order write-back: a page lost in the middle of the active
 * file after a sync (open cuts it there and reports it; every synced write
 * stays), and PAGES crashes under SYNC_NONE and SYNC_INTERVAL with syncs,
 * reopens and merges between writes: open always succeeds without
 * auto_recovery and shows the state after a prefix of the operations that
 * holds every one a sync covered.
 *
 * CALYPSO_SEED replays a run; CALYPSO_TEST_SCALE (percent) scales it.
 */
#include "crash_util.h"
#include "engine.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

static const char *pl_mode_name[] = { "drop", "zero", "torn", "garble", "pages" };

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
        case CY_OS_PL_PAGES:
            /* One page: it reached the disk or not; so did the new length. */
            assert_true(n == 8 || n == 18);
            if (buf[0] == 'D') assert_memory_equal(buf + 1, "urable.0123456789", (size_t)n - 1);
            else assert_memory_equal(buf, "durable.\0\0\0\0\0\0\0\0\0\0", (size_t)n);
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

#define PL_PG 4096

/* Byte of page i as written before the sync (gen 0) or after (gen 1). */
static uint8_t pl_page_byte(int i, int gen)
{
    return (uint8_t)(gen ? 0x80 + i : 'a' + i);
}

/* PAGES keeps any subset of the unsynced pages, not a prefix: a page
 * written after a lost one can survive. Pages written through a mapping
 * (cy_os_map_write) are unsynced pages like any other. Each page is whole,
 * new or old (its synced bytes, zeros past the synced length). */
static void test_sim_pages(void **state)
{
    (void)state;
    enum { SYNCED = 4, WRITTEN = 10, TOTAL = 16, SEEDS = 64 };
    uint8_t buf[PL_PG];
    int non_prefix = 0, mapped_lost = 0, mapped_kept = 0, short_len = 0, all_kept = 0;
    for (uint64_t seed = 1; seed <= SEEDS; seed++) {
        char *dir = cu_scratch();
        char *f = pl_path(dir, "f");
        cy_os_powerloss_begin();
        int fd = cy_os_open(f, O_RDWR | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(cy_os_sync_dir(dir), 0);
        for (int i = 0; i < SYNCED; i++) {
            memset(buf, pl_page_byte(i, 0), PL_PG);
            assert_int_equal(cy_os_pwrite(fd, buf, PL_PG, (uint64_t)i * PL_PG), 0);
        }
        assert_int_equal(cy_os_fdatasync(fd), 0);
        /* Unsynced: overwrite pages 1..3 and append up to WRITTEN with
         * pwrite, then the rest through a mapping, as the active datafile
         * is written. */
        for (int i = 1; i < WRITTEN; i++) {
            memset(buf, pl_page_byte(i, 1), PL_PG);
            assert_int_equal(cy_os_pwrite(fd, buf, PL_PG, (uint64_t)i * PL_PG), 0);
        }
        assert_int_equal(cy_os_fallocate(fd, WRITTEN * PL_PG, (TOTAL - WRITTEN) * PL_PG), 0);
        void *map = NULL;
        assert_int_equal(cy_os_mmap_rw(fd, TOTAL * PL_PG, &map), 0);
        for (int i = WRITTEN; i < TOTAL; i++) {
            memset(buf, pl_page_byte(i, 1), PL_PG);
            assert_int_equal(cy_os_map_write(fd, map, (uint64_t)i * PL_PG, buf, PL_PG), 0);
        }
        cy_os_powerloss_crash(CY_OS_PL_PAGES, seed);
        cy_os_munmap(map, TOTAL * PL_PG);
        cy_os_close(fd);
        cy_os_powerloss_end();

        int rfd = open(f, O_RDONLY);
        assert_true(rfd >= 0);
        struct stat st;
        assert_int_equal(fstat(rfd, &st), 0);
        assert_true(st.st_size == SYNCED * PL_PG || st.st_size == TOTAL * PL_PG);
        int pages = (int)(st.st_size / PL_PG), lost_before = 0, kept = 0;
        for (int i = 0; i < pages; i++) {
            assert_int_equal(pread(rfd, buf, PL_PG, (off_t)i * PL_PG), PL_PG);
            uint8_t old = i < SYNCED ? pl_page_byte(i, 0) : 0;
            uint8_t now = i == 0 ? old : pl_page_byte(i, 1);
            int is_new = buf[0] == now && now != old;
            for (int j = 0; j < PL_PG; j++)
                if (buf[j] != buf[0] || (buf[0] != old && buf[0] != now))
                    fail_msg("seed %llu: page %d byte %d is 0x%02x: neither its synced 0x%02x "
                             "nor its new 0x%02x", (unsigned long long)seed, i, j, buf[j], old,
                             now);
            if (i == 0) continue;
            kept += is_new;
            if (is_new && lost_before) non_prefix = 1;
            if (!is_new) lost_before = 1;
            if (i >= WRITTEN) {
                if (is_new) mapped_kept = 1;
                else mapped_lost = 1;
            }
        }
        close(rfd);
        if (pages < TOTAL) short_len = 1;
        if (kept == TOTAL - 1) all_kept = 1;
        free(f);
        cu_rmrf(dir);
    }
    /* Writes through a mapping alone, after a sync covering the whole
     * length: only tracking them can lose them. */
    int only_mapped_lost = 0;
    for (uint64_t seed = 1; seed <= SEEDS && !only_mapped_lost; seed++) {
        char *dir = cu_scratch();
        char *f = pl_path(dir, "f");
        cy_os_powerloss_begin();
        int fd = cy_os_open(f, O_RDWR | O_CREAT, 0644);
        assert_true(fd >= 0);
        assert_int_equal(cy_os_sync_dir(dir), 0);
        assert_int_equal(cy_os_fallocate(fd, 0, TOTAL * PL_PG), 0);
        assert_int_equal(cy_os_fdatasync(fd), 0);
        void *map = NULL;
        assert_int_equal(cy_os_mmap_rw(fd, TOTAL * PL_PG, &map), 0);
        memset(buf, 0x5a, PL_PG);
        for (int i = 0; i < TOTAL; i++)
            assert_int_equal(cy_os_map_write(fd, map, (uint64_t)i * PL_PG, buf, PL_PG), 0);
        cy_os_powerloss_crash(CY_OS_PL_PAGES, seed);
        cy_os_munmap(map, TOTAL * PL_PG);
        cy_os_close(fd);
        cy_os_powerloss_end();
        uint8_t all[TOTAL * PL_PG];
        assert_int_equal(pl_read(f, all, sizeof all), TOTAL * PL_PG);
        for (int i = 0; i < TOTAL; i++)
            if (all[i * PL_PG] == 0) only_mapped_lost = 1;
        free(f);
        cu_rmrf(dir);
    }
    assert_true(only_mapped_lost);
    print_message("over %d crashes: a page kept after a lost one %d, a mapped page lost %d, "
                  "kept %d, the old length %d, every page kept %d\n", SEEDS, non_prefix,
                  mapped_lost, mapped_kept, short_len, all_kept);
    assert_true(non_prefix);
    assert_true(mapped_lost && mapped_kept);
    assert_true(short_len);
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

static void test_powerloss_pages(void **state)
{
    (void)state;
    static const int modes[] = { CY_OS_PL_PAGES };
    pl_run_modes(modes, 1, 3, 16);
}

// >> page loss between syncs ---------------------------------------------------------
/*
 * Without SYNC_ALWAYS most of the active file is unsynced at any moment,
 * and a power loss keeps any subset of its pages. Records are appended in
 * order and open cuts the newest file at its first bad record, so what
 * open finds must be the state after some prefix of the operations: one
 * that holds every operation a successful sync (calypso_sync, or the final
 * sync of a close) covered, and at most the one in flight beyond what had
 * returned. The workload also closes and reopens the handle and merges;
 * with SYNC_INTERVAL the background thread syncs every millisecond and
 * writes the watermark at each wake, so crashes land with the watermark
 * anywhere in the active file, and open must never take the damage a power
 * loss leaves past a real sync for damage of synced data.
 */

#define PX_KEYS 24
#define PX_OPS  240

enum { PX_PUT, PX_DEL, PX_SYNC, PX_REOPEN, PX_MERGE };

typedef struct px_op { int kind; uint32_t key; } px_op;

static px_op px_next(uint64_t *r)
{
    uint32_t dice = (uint32_t)tu_below(r, 100);
    px_op op = { PX_PUT, (uint32_t)tu_below(r, PX_KEYS) };
    if (dice >= 80) op.kind = PX_DEL;
    if (dice >= 95) op.kind = PX_SYNC;
    if (dice >= 97) op.kind = PX_REOPEN;
    if (dice >= 99) op.kind = PX_MERGE;
    return op;
}

typedef struct px_shared {
    uint32_t done;       /* operations that returned                      */
    uint32_t synced;     /* the first `synced` of them a sync covered     */
    int      failed;
    char     msg[512];
} px_shared;

/* Datafile size of the workload: large enough for one rotation or so, or
 * 4 KiB for dozens, so that rotations happen between syncs and a power
 * loss finds sealed files whose sync had not run (files.c: rotation
 * leaves it to the background thread). */
static uint64_t px_file_size = 128 << 10;
/* Crashes after which open removed files written after a torn tail. */
static uint32_t px_drops;

static calypso_options px_opts(int interval)
{
    calypso_options o = { 0 };
    o.sync = interval ? CALYPSO_SYNC_INTERVAL : CALYPSO_SYNC_NONE;
    o.sync_interval_ms = 1;
    o.max_datafile_size = px_file_size;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    return o;
}

/* Runs the workload of seed; with n, a PAGES crash before table call n
 * ends the process (the parent reads sh). */
static void px_workload(px_shared *sh, const char *dir, int interval, uint64_t seed, uint64_t n)
{
    calypso_options o = px_opts(interval);
    cu_key keys[PX_KEYS + 1];
    cu_model m = { PX_KEYS, keys };
    cy_wm_set_interval(0);
    cy_os_powerloss_begin();
    if (n) cy_os_powerloss_crash_at(n, CY_OS_PL_PAGES | CY_OS_PL_EXIT, seed * 7919 + n);
    calypso *db = NULL;
    int rc = calypso_open(dir, &o, &db);
    uint64_t r = seed;
    for (uint32_t i = 0; i < PX_OPS && !rc; i++) {
        px_op op = px_next(&r);
        switch (op.kind) {
        case PX_PUT:    rc = cu_put(db, &m, op.key, i + 1, 0); break;
        case PX_DEL:    rc = cu_del(db, &m, op.key); break;
        case PX_MERGE:  rc = calypso_merge(db); break;
        case PX_SYNC:
            if (!(rc = calypso_sync(db))) sh->synced = i;
            break;
        default:
            rc = calypso_close(db);
            db = NULL;
            if (!rc) sh->synced = i;
            if (!rc) rc = calypso_open(dir, &o, &db);
            break;
        }
        if (!rc) sh->done = i + 1;
    }
    if (!rc && !(rc = calypso_close(db))) sh->synced = PX_OPS;
    if (rc) {
        sh->failed = 1;
        snprintf(sh->msg, sizeof sh->msg, "op %u: %s", sh->done,
                 db ? calypso_errmsg(db) : calypso_errmsg(NULL));
    }
    cy_os_powerloss_end();
    cy_wm_set_interval(CY_WM_INTERVAL_MS);
}

/* Runs the workload in a child (crash before call n, 0: none); returns
 * what it reported. */
static px_shared px_run(const char *dir, int interval, uint64_t seed, uint64_t n)
{
    cu_rmtree(dir);
    assert_int_equal(mkdir(dir, 0755), 0);
    px_shared *sh = mmap(NULL, sizeof *sh, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                         -1, 0);
    assert_true(sh != MAP_FAILED);
    memset(sh, 0, sizeof *sh);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        px_workload(sh, dir, interval, seed, n);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    px_shared out = *sh;
    munmap(sh, sizeof *sh);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        out.failed = 1;
        snprintf(out.msg, sizeof out.msg, "the workload process died (status 0x%x)", status);
    }
    return out;
}

/* Reopens dir after a crash that cut the workload of seed at sh: open must
 * succeed without auto_recovery and show the state after a prefix of the
 * operations between sh->synced and sh->done + 1. Returns 0, or -1 with
 * why. */
typedef struct px_stats { uint32_t cuts, cuts_past_synced; } px_stats;

static int px_check(const char *dir, uint64_t seed, const px_shared *sh, char *why, size_t cap,
                    px_stats *st)
{
    calypso_options o = px_opts(0);
    calypso *db = NULL;
    int rc = calypso_open(dir, &o, &db);
    if (rc) {
        snprintf(why, cap, "reopen fails: %s: %s", calypso_strerror(rc), calypso_errmsg(NULL));
        return -1;
    }
    /* How often open cut a hole out of the newest file, and how often the
     * watermark it used was past the file's start. */
    const char *cut = strstr(calypso_errmsg(db), "past the ");
    if (strstr(calypso_errmsg(db), "lost its end to a crash")) px_drops++;
    if (cut) {
        st->cuts++;
        if (strtoull(cut + 9, NULL, 10) > 0) st->cuts_past_synced++;
    }
    cu_key keys[PX_KEYS + 1];
    cu_model m = { PX_KEYS, keys };
    uint32_t got[PX_KEYS];
    uint64_t present = 0;
    for (uint32_t k = 0; k < PX_KEYS; k++) {
        char key[16];
        size_t klen = cu_key_of(&m, k, key);
        void *v = NULL;
        size_t vlen = 0;
        rc = calypso_get(db, key, klen, &v, &vlen);
        got[k] = rc == CALYPSO_OK ? cu_val_check(k, v, vlen) : 0;
        calypso_free(v);
        if (rc == CALYPSO_OK) present++;
        if ((rc != CALYPSO_OK && rc != CALYPSO_ENOTFOUND) || got[k] == CU_NONE) {
            snprintf(why, cap, "key %u: %s", k, rc ? calypso_errmsg(db) : "a value never written");
            calypso_close(db);
            return -1;
        }
    }
    uint64_t len = calypso_len(db);
    char note[600];
    snprintf(note, sizeof note, "%s", calypso_errmsg(db));
    calypso_close(db);
    if (len != present) {
        snprintf(why, cap, "len %llu, gets found %llu", (unsigned long long)len,
                 (unsigned long long)present);
        return -1;
    }
    /* The model after each prefix of the operations. */
    uint32_t state[PX_KEYS] = { 0 };
    uint32_t hi = sh->done + 1 < PX_OPS ? sh->done + 1 : PX_OPS;
    int64_t first = -1, last = -1;
    uint64_t r = seed;
    for (uint32_t p = 0; p <= hi; p++) {
        if (p > 0) {
            px_op op = px_next(&r);
            if (op.kind == PX_PUT) state[op.key] = p;   /* op p - 1 wrote version p */
            if (op.kind == PX_DEL) state[op.key] = 0;
        }
        if (memcmp(state, got, sizeof state) != 0) continue;
        if (first < 0) first = p;
        last = p;
        if (p >= sh->synced) return 0;
    }
    snprintf(why, cap, "the database is not the state after any prefix from operation %u (a "
             "sync covered those) to %u; it matches prefixes %lld..%lld (open said: %s)",
             sh->synced, hi, (long long)first, (long long)last, note[0] ? note : "nothing");
    return -1;
}

static void px_run_seeds(int interval, uint32_t seeds, uint32_t points)
{
    uint64_t seed = tu_seed("test_powerloss_pages_between_syncs");
    char *root = cu_scratch();
    char *dir = pl_path(root, "db");
    char why[1024];
    int failures = 0;
    uint32_t runs = 0, cut_short = 0;
    px_stats st = { 0, 0 };
    seeds = (uint32_t)cu_scaled(seeds);
#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
    seeds = (seeds + 1) / 2;
    points = (points + 1) / 2;
#endif
    for (uint32_t s = 0; s < seeds && failures < 5; s++) {
        uint64_t sd = seed + s;
        /* The table calls of a whole run, counted in a child like the rest. */
        cy_os_count_reset();
        px_shared full = px_run(dir, interval, sd, 0);
        if (full.failed) fail_msg("seed %llu: the workload fails without a crash: %s",
                                  (unsigned long long)sd, full.msg);
        assert_int_equal(full.synced, PX_OPS);
        assert_int_equal(px_check(dir, sd, &full, why, sizeof why, &st), 0);
        uint64_t total = 0;
        {
            /* Count in this process: the same workload with tracking on. */
            cu_rmtree(dir);
            assert_int_equal(mkdir(dir, 0755), 0);
            px_shared tmp = { 0 };
            cy_os_count_reset();
            px_workload(&tmp, dir, interval, sd, 0);
            total = cy_os_count(CY_OS_ANY) - cy_os_count(CY_OS_CLOSE);
            assert_false(tmp.failed);
        }
        uint64_t r = sd * 131 + 5;
        for (uint32_t p = 0; p < points && failures < 5; p++) {
            uint64_t lo = total * p / points, hi = total * (p + 1) / points;
            uint64_t n = 1 + lo + tu_below(&r, hi > lo ? hi - lo : 1);
            px_shared sh = px_run(dir, interval, sd, n);
            runs++;
            if (sh.synced < sh.done) cut_short++;
            if (!sh.failed && px_check(dir, sd, &sh, why, sizeof why, &st) == 0) continue;
            failures++;
            print_error("%s, seed %llu, crash before call %llu of ~%llu (after %u operations, "
                        "%u synced): %s\nreplay: CALYPSO_SEED=%llu (base + %u)\n",
                        interval ? "SYNC_INTERVAL" : "SYNC_NONE", (unsigned long long)sd,
                        (unsigned long long)n, (unsigned long long)total, sh.done, sh.synced,
                        sh.failed ? sh.msg : why, (unsigned long long)seed, s);
        }
    }
    printf("[ POWERLOSS] %s: %u crash points, %u with operations no sync covered; open cut "
           "the newest file %u times, %u of them past a watermark above 0\n",
           interval ? "SYNC_INTERVAL" : "SYNC_NONE", runs, cut_short, st.cuts,
           st.cuts_past_synced);
    fflush(stdout);
    free(dir);
    cu_rmrf(root);
    if (failures) fail_msg("%d crashes broke the database or lost synced writes", failures);
}

static void test_powerloss_pages_between_syncs(void **state)
{
    (void)state;
    px_run_seeds(0, 3, 16);
}

static void test_powerloss_pages_interval(void **state)
{
    (void)state;
    px_run_seeds(1, 3, 16);
}

/* The same across dozens of rotations (4 KiB datafiles), with the syncs
 * of sealed files left to the background thread: a crash finds sealed
 * files not yet synced, which lose pages or their length too, and open
 * keeps a prefix all the same (a sealed file found shorter than the seal
 * in the next file says ends what it keeps: the files after it go). */
static void test_powerloss_pages_across_rotations(void **state)
{
    (void)state;
    px_file_size = 4096;
    px_drops = 0;
    px_run_seeds(0, 4, 16);
    px_run_seeds(1, 3, 16);
    printf("[ POWERLOSS] across rotations: open removed the files after a torn sealed file "
           "%u times\n", px_drops);
    fflush(stdout);
    /* How often a crash lands between a rotation and the sync of the file
     * it sealed is up to the threads' timing, so it is reported, not
     * required: test_sealed_file_shorter_than_its_seal (test_recovery)
     * makes that case on purpose. */
    px_file_size = 128 << 10;
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
        cmocka_unit_test(test_sim_pages),
        cmocka_unit_test(test_sim_names),
        cmocka_unit_test(test_sim_crash_at),
        cmocka_unit_test(test_powerloss_new_directory),
        cmocka_unit_test(test_powerloss_page_hole_after_sync),
        cmocka_unit_test(test_powerloss_drop),
        cmocka_unit_test(test_powerloss_torn),
        cmocka_unit_test(test_powerloss_garble),
        cmocka_unit_test(test_powerloss_pages),
        cmocka_unit_test(test_powerloss_pages_between_syncs),
        cmocka_unit_test(test_powerloss_pages_interval),
        cmocka_unit_test(test_powerloss_pages_across_rotations),
    };
    const char *filter = getenv("CALYPSO_TEST_FILTER");
    if (filter && *filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
