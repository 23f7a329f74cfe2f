/*
 * test_reader.c: read-only handles beside a live writer in another process.
 *
 * - test_reader_beside_writer: a writer process (this binary run again)
 *   puts, overwrites, deletes, commits batches and merges, with small
 *   datafiles (they rotate, and merges retire them) and max_open_files 2,
 *   logging every acknowledged operation to a file. This process opens,
 *   reopens and closes read-only handles (max_open_files 1) over and over
 *   and checks each snapshot against the log: every value whole and one the
 *   writer wrote, no read failing, and the snapshot equal to the writer's
 *   state after some prefix of its log (so every batch whole) that is no
 *   older than what was acknowledged before the open or reopen began. The
 *   reads are spread out in time, so that merges unlink files between a
 *   reader's open and its reads. Meanwhile the calypso CLI's read commands
 *   (get, keys, stats, dump, backup) run against the same directory and
 *   must succeed; each backup opens as a snapshot that passes the same
 *   check. Runs CALYPSO_READER_SECONDS seconds (default 3; make
 *   crash-test runs it longer); takes CALYPSO_SEED.
 * - test_reader_stops_at_write_under_way: bytes past the writer's last
 *   whole record are a write under way: a reader beside the writer stops
 *   there silently; without a writer it reports them (and cuts nothing).
 * - test_reader_changes_nothing: a reader opens a database with a torn
 *   tail, an abandoned merge/ and a leftover temporary file and changes no
 *   file; a COMMIT whose inputs are gone and outputs missing is damage.
 * - test_reader_beside_unfinished_merge: a writer dies in a merge step
 *   after its COMMIT (outputs in merge/; moved in; inputs removed; one
 *   input removed): a reader reads the whole database, finishing nothing,
 *   and after a writer's open finishes the step it reads the same.
 * - test_writer_beside_readers: a writer opens while readers are open, two
 *   writers never (CALYPSO_ELOCKED), readers catch up with reopen.
 */
#include "testutil.h"
#include "engine_util.h"
#include "engine.h"          /* the merge's test hook */

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define NKEYS 96

static char cli_bin[4096];

// >> values and the log ----------------------------------------------------------

static void key_name(char *buf, unsigned k)
{
    snprintf(buf, 16, "key%04u", k);
}

static size_t value_len(unsigned k, uint64_t seq)
{
    return 16 + (size_t)((seq * 7 + k * 13) % 700);
}

/* The writer's log: one line per acknowledged operation, in order,
 * "seq n k1 t1 k2 t2 ...", t 'p' (a put of version seq) or 'd' (a delete). */
typedef struct op {
    uint8_t n;
    uint8_t key[8];
    char    type[8];
} op;

typedef struct oplog {
    int     fd;
    op     *ops;          /* ops[seq], seq from 1                   */
    uint64_t nops, cap;   /* last seq read                          */
    char    buf[65536];
    size_t  blen;
} oplog;

static void log_parse_line(oplog *l, char *line)
{
    char *p = line;
    uint64_t seq = strtoull(p, &p, 10);
    unsigned n = (unsigned)strtoul(p, &p, 10);
    assert_int_equal(seq, l->nops + 1);
    assert_true(n >= 1 && n <= 8);
    if (seq >= l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->ops = realloc(l->ops, l->cap * sizeof *l->ops);
        assert_non_null(l->ops);
    }
    op *o = &l->ops[seq];
    o->n = (uint8_t)n;
    for (unsigned i = 0; i < n; i++) {
        o->key[i] = (uint8_t)strtoul(p, &p, 10);
        while (*p == ' ') p++;
        o->type[i] = *p++;
        assert_true(o->type[i] == 'p' || o->type[i] == 'd');
        assert_true(o->key[i] < NKEYS);
    }
    l->nops = seq;
}

/* Reads what the writer has logged since the last call. */
static void log_poll(oplog *l)
{
    for (;;) {
        ssize_t got = read(l->fd, l->buf + l->blen, sizeof l->buf - l->blen - 1);
        assert_true(got >= 0);
        if (got == 0) return;
        l->blen += (size_t)got;
        size_t start = 0;
        for (size_t i = 0; i < l->blen; i++) {
            if (l->buf[i] != '\n') continue;
            l->buf[i] = 0;
            log_parse_line(l, l->buf + start);
            start = i + 1;
        }
        memmove(l->buf, l->buf + start, l->blen - start);
        l->blen -= start;
    }
}

// >> the writer process --------------------------------------------------------

#define W_CHECK(x)                                                              \
    do {                                                                        \
        if (!(x)) {                                                             \
            fprintf(stderr, "writer: check failed at line %d: %s (%s)\n",       \
                    __LINE__, #x, calypso_errmsg(db));                          \
            _exit(3);                                                           \
        }                                                                       \
    } while (0)

static void writer_log(int fd, uint64_t seq, const op *o)
{
    char line[256];
    int n = snprintf(line, sizeof line, "%llu %u", (unsigned long long)seq, o->n);
    for (unsigned i = 0; i < o->n; i++)
        n += snprintf(line + n, sizeof line - (size_t)n, " %u %c", o->key[i], o->type[i]);
    line[n++] = '\n';
    if (write(fd, line, (size_t)n) != n) _exit(4);
}

static void writer_put(calypso *db, calypso_batch *b, unsigned k, uint64_t seq)
{
    char key[16];
    uint8_t val[800];
    key_name(key, k);
    size_t len = value_len(k, seq);
    eu_make_value(val, len, key, strlen(key), seq);
    if (b) W_CHECK(calypso_batch_put(b, key, strlen(key), val, len) == CALYPSO_OK);
    else W_CHECK(calypso_put(db, key, strlen(key), val, len) == CALYPSO_OK);
}

static void writer_del(calypso *db, calypso_batch *b, unsigned k)
{
    char key[16];
    key_name(key, k);
    if (b) {
        W_CHECK(calypso_batch_delete(b, key, strlen(key)) == CALYPSO_OK);
    } else {
        int rc = calypso_delete(db, key, strlen(key));
        W_CHECK(rc == CALYPSO_OK || rc == CALYPSO_ENOTFOUND);
    }
}

/* argv: "writer" dir log stopfile seed: writes until stopfile exists (at
 * most 10 minutes: then exits 5). */
static int writer_main(char **argv)
{
    const char *dir = argv[1];
    int lfd = open(argv[2], O_WRONLY | O_APPEND);
    const char *stop = argv[3];
    uint64_t rng = strtoull(argv[4], NULL, 10);
    calypso *db = NULL;
    W_CHECK(lfd >= 0);
    calypso_options o;
    calypso_options_default(&o);
    o.max_datafile_size = 16384;
    o.max_open_files = 2;
    o.merge_trigger_ratio = 0.4;
    o.merge_min_dead_bytes = 16384;
    W_CHECK(calypso_open(dir, &o, &db) == CALYPSO_OK);
    uint64_t end = eu_now_ms() + 600000u, seq = 0, merges = 0;
    while (access(stop, F_OK) != 0) {
        if (eu_now_ms() > end) _exit(5);
        for (int burst = 0; burst < 50; burst++) {
            op cur = { 0 };
            uint64_t r = tu_below(&rng, 100);
            seq++;
            if (r < 55) {
                cur.n = 1;
                cur.key[0] = (uint8_t)tu_below(&rng, NKEYS);
                cur.type[0] = 'p';
                writer_put(db, NULL, cur.key[0], seq);
            } else if (r < 70) {
                cur.n = 1;
                cur.key[0] = (uint8_t)tu_below(&rng, NKEYS);
                cur.type[0] = 'd';
                writer_del(db, NULL, cur.key[0]);
            } else {
                /* A batch of 2..8 distinct keys, puts and deletes. */
                calypso_batch *b = NULL;
                W_CHECK(calypso_batch_open(db, &b) == CALYPSO_OK);
                cur.n = (uint8_t)(2 + tu_below(&rng, 7));
                for (unsigned i = 0; i < cur.n; i++) {
                    unsigned k;
                    int dup;
                    do {
                        k = (unsigned)tu_below(&rng, NKEYS);
                        dup = 0;
                        for (unsigned j = 0; j < i; j++) dup |= cur.key[j] == k;
                    } while (dup);
                    cur.key[i] = (uint8_t)k;
                    cur.type[i] = tu_below(&rng, 4) ? 'p' : 'd';
                    if (cur.type[i] == 'p') writer_put(db, b, k, seq);
                    else writer_del(db, b, k);
                }
                W_CHECK(calypso_batch_commit(b) == CALYPSO_OK);
            }
            writer_log(lfd, seq, &cur);
        }
        if (tu_below(&rng, 6) == 0) {
            int rc = calypso_merge(db);
            W_CHECK(rc == CALYPSO_OK || rc == CALYPSO_EMERGING);
            merges++;
        }
    }
    struct calypso_stats st;
    W_CHECK(calypso_stats(db, &st) == CALYPSO_OK);
    fprintf(stderr, "writer: %llu operations, %llu explicit merges\n", (unsigned long long)seq,
            (unsigned long long)merges);
    W_CHECK(calypso_close(db) == CALYPSO_OK);
    close(lfd);
    return 0;
}

static pid_t spawn_self(char *const args[])
{
    char *argv[16];
    int n = 0;
    argv[n++] = (char *)"child";
    for (int i = 0; args[i] && n < 15; i++) argv[n++] = args[i];
    argv[n] = NULL;
    static char self[4096];
    if (!self[0]) {
        ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
        assert_true(len > 0);
        self[len] = 0;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        execv(self, argv);
        _exit(127);
    }
    return pid;
}

// >> the reader's check -----------------------------------------------------------

typedef struct model {
    uint64_t at;              /* log position applied                  */
    uint64_t ver[NKEYS];      /* version of each key there, 0 absent    */
} model;

static void model_apply(model *m, const oplog *l, uint64_t seq)
{
    const op *o = &l->ops[seq];
    for (unsigned i = 0; i < o->n; i++) m->ver[o->key[i]] = o->type[i] == 'p' ? seq : 0;
    m->at = seq;
}

static int model_matches(const model *m, const uint64_t *seen)
{
    for (unsigned k = 0; k < NKEYS; k++)
        if (m->ver[k] != seen[k]) return 0;
    return 1;
}

/* The snapshot `seen` must be the writer's state after some log prefix P
 * with P >= acked (acknowledged before the open began). Advances m to it. */
static void check_snapshot(model *m, oplog *l, const uint64_t *seen, uint64_t acked,
                           int writer_done)
{
    uint64_t max_seen = 0;
    for (unsigned k = 0; k < NKEYS; k++)
        if (seen[k] > max_seen) max_seen = seen[k];
    uint64_t floor = max_seen > acked ? max_seen : acked;
    /* The writer logs after the acknowledgement: wait for the log to reach
     * what the reader saw. */
    uint64_t t0 = eu_now_ms();
    while (l->nops < floor) {
        log_poll(l);
        if (l->nops >= floor) break;
        if (eu_now_ms() - t0 > 20000) fail_msg("log stuck at %llu, reader saw %llu",
                                               (unsigned long long)l->nops,
                                               (unsigned long long)floor);
        eu_sleep_ms(1);
    }
    /* m is at the earliest position an earlier snapshot can have been:
     * this one is at or after it (a later open sees a longer prefix). */
    while (m->at < floor) model_apply(m, l, m->at + 1);
    /* A later position may be it too: what it put since may have been
     * deleted again. Search forward (the first match is as good as any:
     * states that match are equal). */
    t0 = eu_now_ms();
    uint64_t start = m->at;
    model first = *m;
    for (;;) {
        if (model_matches(m, seen)) return;
        if (m->at - start > 200000) break;
        if (m->at + 1 > l->nops) {
            if (writer_done || eu_now_ms() - t0 > 5000) break;
            log_poll(l);
            if (m->at + 1 > l->nops) { eu_sleep_ms(1); continue; }
        }
        model_apply(m, l, m->at + 1);
    }
    *m = first;
    for (unsigned k = 0; k < NKEYS; k++)
        if (m->ver[k] != seen[k])
            print_error("key %u: reader saw version %llu, the writer's state at %llu has "
                        "%llu (acked before open %llu)\n", k, (unsigned long long)seen[k],
                        (unsigned long long)m->at, (unsigned long long)m->ver[k],
                        (unsigned long long)acked);
    fail_msg("the reader's snapshot is no prefix of the writer's log");
}

typedef struct walk_ctx { unsigned n; } walk_ctx;

static int count_key(const void *key, size_t klen, void *ctx)
{
    (void)key;
    (void)klen;
    ((walk_ctx *)ctx)->n++;
    return 0;
}

/* Reads every key through db, slowly enough for merges to run in between;
 * fills seen[] and checks each value whole. */
static void read_snapshot(calypso *db, uint64_t *seen, uint64_t *rng)
{
    unsigned present = 0;
    for (unsigned k = 0; k < NKEYS; k++) {
        char key[16];
        key_name(key, k);
        void *v = NULL;
        size_t vlen = 0;
        int rc = calypso_get(db, key, strlen(key), &v, &vlen);
        if (rc != CALYPSO_OK && rc != CALYPSO_ENOTFOUND)
            fail_msg("get %s: %s (%s)", key, calypso_strerror(rc), calypso_errmsg(db));
        seen[k] = 0;
        if (rc == CALYPSO_OK) {
            uint64_t ver = 0;
            if (!eu_check_value(v, vlen, key, strlen(key), &ver) || vlen != value_len(k, ver))
                fail_msg("get %s: a torn or foreign value of %zu bytes", key, vlen);
            seen[k] = ver;
            present++;
            calypso_free(v);
        }
        if (tu_below(rng, 16) == 0) eu_sleep_ms(1);
    }
    walk_ctx w = { 0 };
    int rc = calypso_fold(db, count_key, &w);
    if (rc) fail_msg("fold: %s (%s)", calypso_strerror(rc), calypso_errmsg(db));
    assert_int_equal(w.n, present);
    assert_int_equal(calypso_len(db), present);
}

/* Runs the CLI with args; returns its exit code (output discarded, and
 * its messages too when quiet: "key not found" is an answer here). */
static int run_cli(const char *const *args, int quiet)
{
    const char *argv[12];
    int n = 0;
    argv[n++] = cli_bin;
    for (int i = 0; args[i] && n < 11; i++) argv[n++] = args[i];
    argv[n] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        if (quiet) dup2(devnull, 2);
        execv(cli_bin, (char *const *)argv);
        _exit(127);
    }
    int st = 0;
    while (waitpid(pid, &st, 0) < 0) assert_int_equal(errno, EINTR);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static unsigned reader_seconds(void)
{
    const char *env = getenv("CALYPSO_READER_SECONDS");
    unsigned s = env && *env ? (unsigned)atoi(env) : 3;
    return s ? s : 1;
}

static void test_reader_beside_writer(void **state)
{
    (void)state;
    uint64_t rng = tu_seed("reader beside writer");
    unsigned seconds = reader_seconds();
    char *dir = tu_tmpdir();
    char logpath[1024], seedbuf[32], stoppath[1024];
    eu_path(logpath, sizeof logpath, dir, "writer.log");
    eu_path(stoppath, sizeof stoppath, dir, "stop");
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)tu_rand(&rng));
    char dbdir[1024];
    eu_path(dbdir, sizeof dbdir, dir, "db");
    int lfd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(lfd >= 0);
    close(lfd);
    /* The database exists before the reader's first open. */
    calypso *w0 = eu_open(dbdir, NULL);
    eu_close(w0);

    char *wargs[] = { (char *)"writer", dbdir, logpath, stoppath, seedbuf, NULL };
    pid_t writer = spawn_self(wargs);
    oplog l = { .fd = open(logpath, O_RDONLY) };
    assert_true(l.fd >= 0);
    model m = { 0 };
    calypso_options ro;
    calypso_options_default(&ro);
    ro.read_only = 1;
    ro.max_open_files = 1;
    calypso *db = NULL;
    uint64_t snaps = 0, reopens = 0, cli_runs = 0, seen[NKEYS];
    int done = 0, stopped = 0, st = 0;
    uint64_t end = eu_now_ms() + seconds * 1000u;
    while (!done) {
        /* Enough time and enough rounds of each kind: stop the writer,
         * then check once more after it is gone. */
        if (!stopped && eu_now_ms() >= end && snaps >= 20 && reopens >= 5 && cli_runs >= 2) {
            eu_write_file(stoppath, "", 0);
            stopped = 1;
        }
        done = waitpid(writer, &st, WNOHANG) == writer;
        if (done && !stopped) fail_msg("the writer stopped on its own: status %#x", st);
        log_poll(&l);
        uint64_t acked = l.nops;
        if (!db) {
            EU_OK(NULL, calypso_open(dbdir, &ro, &db));
        } else if (tu_below(&rng, 3) == 0) {
            eu_close(db);
            EU_OK(NULL, calypso_open(dbdir, &ro, &db));
        } else {
            EU_OK(db, calypso_reopen(db));
            reopens++;
        }
        /* Nothing reported: beside a writer, its tail is a write under way. */
        read_snapshot(db, seen, &rng);
        check_snapshot(&m, &l, seen, acked, done);
        /* The snapshot does not move until the next reopen. */
        if (tu_below(&rng, 4) == 0) {
            uint64_t again[NKEYS];
            eu_sleep_ms(5);
            read_snapshot(db, again, &rng);
            assert_memory_equal(again, seen, sizeof seen);
        }
        snaps++;
        if (tu_below(&rng, 8) == 0) {
            char key[16];
            key_name(key, (unsigned)tu_below(&rng, NKEYS));
            const char *get[] = { "get", dbdir, key, NULL };
            const char *keys[] = { "keys", dbdir, NULL };
            const char *stats[] = { "stats", dbdir, NULL };
            const char *dump[] = { "dump", dbdir, NULL };
            int rc = run_cli(get, 1);
            if (rc != 0 && rc != 1) fail_msg("calypso get beside the writer: exit %d", rc);
            assert_int_equal(run_cli(keys, 0), 0);
            assert_int_equal(run_cli(stats, 0), 0);
            assert_int_equal(run_cli(dump, 0), 0);
            /* A backup through a reader is a snapshot as well. */
            char bk[1100];
            snprintf(bk, sizeof bk, "%s/backup%llu", dir, (unsigned long long)cli_runs);
            log_poll(&l);
            uint64_t bk_acked = l.nops;
            const char *backup[] = { "backup", dbdir, bk, NULL };
            assert_int_equal(run_cli(backup, 0), 0);
            calypso *b = eu_open(bk, &ro);
            read_snapshot(b, seen, &rng);
            check_snapshot(&m, &l, seen, bk_acked, 0);
            eu_close(b);
            char *bkcopy = strdup(bk);
            tu_rmrf(bkcopy);
            cli_runs++;
        }
    }
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    /* The writer is gone: a last open sees its final state exactly. */
    log_poll(&l);
    eu_close(db);
    db = eu_open(dbdir, &ro);
    read_snapshot(db, seen, &rng);
    while (m.at < l.nops) model_apply(&m, &l, m.at + 1);
    assert_memory_equal(m.ver, seen, sizeof seen);
    eu_close(db);
    print_message("reader: %llu snapshots (%llu reopens, %llu CLI rounds) over %llu writer "
                  "operations\n", (unsigned long long)snaps, (unsigned long long)reopens,
                  (unsigned long long)cli_runs, (unsigned long long)l.nops);
    close(l.fd);
    free(l.ops);
    tu_rmrf(dir);
}

// >> tails, and changing nothing ------------------------------------------------

/* Every file under dir with its size and mtime, as one string. */
static void dir_state(const char *dir, char *out, size_t cap)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && find . -printf '%%p %%s %%T@\\n' | sort", dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    assert_int_equal(pclose(p), 0);
}

static void garbage_at(const char *path, int64_t off, size_t len)
{
    int fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    uint8_t junk[64];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(0xa5 ^ i);
    assert_true(len <= sizeof junk);
    assert_int_equal(pwrite(fd, junk, len, off), (ssize_t)len);
    close(fd);
}

static void test_reader_stops_at_write_under_way(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *w = eu_open(dir, NULL);
    eu_put_str(w, "a", "1");
    eu_put_str(w, "b", "2");
    EU_OK(w, calypso_sync(w));
    /* The next record's first bytes, as a copy under way leaves them. */
    unsigned fid = eu_newest_fid(dir);
    char path[1024];
    eu_fid_path(path, sizeof path, dir, fid, "data");
    /* Two records of a 1-byte key and a 1-byte value: 2 x (7 + 1 + 1). */
    garbage_at(path, 18, 11);
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    calypso *r = eu_open(dir, &ro);
    assert_string_equal(calypso_errmsg(r), "");
    eu_expect_str(r, "a", "1");
    eu_expect_str(r, "b", "2");
    eu_close(r);
    /* The writer goes on over it. */
    eu_put_str(w, "c", "3");
    r = eu_open(dir, &ro);
    eu_expect_str(r, "c", "3");
    eu_close(r);
    eu_close(w);

    /* No writer: the same bytes past the end are reported, not cut. */
    int64_t size = eu_file_size(path);
    garbage_at(path, size, 11);
    char before[8192], after[8192];
    dir_state(dir, before, sizeof before);
    r = eu_open(dir, &ro);
    print_message("read-only open of a torn tail, no writer: %s\n", calypso_errmsg(r));
    assert_non_null(strstr(calypso_errmsg(r), "cut"));
    eu_expect_str(r, "c", "3");
    eu_close(r);
    dir_state(dir, after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(eu_file_size(path), size + 11);
    tu_rmrf(dir);
}

static void test_reader_changes_nothing(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o = tu_opts_small_files();
    calypso *w = eu_open(dir, &o);
    char key[16], val[64];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%03d", i % 50);
        snprintf(val, sizeof val, "value-%d-%040d", i, i);
        eu_put_str(w, key, val);
    }
    eu_close(w);
    /* Leftovers a writer's open would clear: an abandoned merge/, a
     * temporary file, and a torn tail. */
    char p[1024], q[1024];
    eu_path(p, sizeof p, dir, "merge");
    assert_int_equal(mkdir(p, 0755), 0);
    eu_path(q, sizeof q, p, "1073741900.data");
    eu_write_file(q, "partial", 7);
    eu_path(q, sizeof q, dir, "IDS.tmp");
    eu_write_file(q, "ids", 3);
    char data[1024];
    eu_fid_path(data, sizeof data, dir, eu_newest_fid(dir), "data");
    garbage_at(data, eu_file_size(data), 9);
    char before[16384], after[16384];
    dir_state(dir, before, sizeof before);
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    calypso *r = eu_open(dir, &ro);
    snprintf(val, sizeof val, "value-%d-%040d", 199, 199);
    eu_expect_str(r, "k049", val);
    EU_OK(r, calypso_reopen(r));
    eu_expect_str(r, "k049", val);
    eu_close(r);
    dir_state(dir, after, sizeof after);
    assert_string_equal(before, after);

    /* A decided merge step left unfinished whose COMMIT names outputs that
     * are nowhere while an input is gone: damage, refused, untouched. */
    eu_path(q, sizeof q, p, "COMMIT");
    const char *commit = "inputs 1\n7\noutputs 1\n1073741900\nend\n";
    eu_write_file(q, commit, strlen(commit));
    dir_state(dir, before, sizeof before);
    calypso *bad = (calypso *)&bad;
    EU_RC(NULL, CALYPSO_ECORRUPT, calypso_open(dir, &ro, &bad));
    print_message("lost merge output: %s\n", calypso_errmsg(NULL));
    assert_null(bad);
    dir_state(dir, after, sizeof after);
    assert_string_equal(before, after);
    assert_int_equal(unlink(q), 0);
    /* A writer's open clears the leftovers; readers open again. */
    w = eu_open(dir, &o);
    eu_close(w);
    assert_false(eu_exists(p));
    r = eu_open(dir, &ro);
    eu_expect_str(r, "k049", val);
    eu_close(r);
    tu_rmrf(dir);
}

// >> a merge its writer left unfinished ---------------------------------------------

static const char *die_at;

static void die_hook(const char *point)
{
    if (!strcmp(point, die_at)) _exit(0);
}

/* The expected value of key i after fill_for_merge: NULL when deleted. */
static const char *merge_val(int i, char *buf, size_t cap)
{
    if (i % 7 == 3) return NULL;
    snprintf(buf, cap, "v%d-%d-%030d", i, 4, i);
    return buf;
}

static void fill_for_merge(const char *dir, const calypso_options *o)
{
    calypso *w = eu_open(dir, o);
    char key[32], val[64];
    for (int round = 0; round <= 4; round++)
        for (int i = 0; i < 60; i++) {
            snprintf(key, sizeof key, "k%02d", i);
            snprintf(val, sizeof val, "v%d-%d-%030d", i, round, i);
            eu_put_str(w, key, val);
            if (i % 6 == 0) {
                /* Never overwritten: no datafile is wholly dead, so the
                 * merge's first step writes outputs and commits. */
                snprintf(key, sizeof key, "p%d-%02d", round, i);
                eu_put_str(w, key, key);
            }
        }
    for (int i = 3; i < 60; i += 7) {
        snprintf(key, sizeof key, "k%02d", i);
        EU_OK(w, calypso_delete(w, key, strlen(key)));
    }
    eu_close(w);
}

static void expect_merge_vals(calypso *db)
{
    char key[32], val[64];
    for (int i = 0; i < 60; i++) {
        snprintf(key, sizeof key, "k%02d", i);
        const char *v = merge_val(i, val, sizeof val);
        if (v) eu_expect_str(db, key, v);
        else eu_expect_absent_str(db, key);
    }
    for (int round = 0; round <= 4; round++)
        for (int i = 0; i < 60; i += 6) {
            snprintf(key, sizeof key, "p%d-%02d", round, i);
            eu_expect_str(db, key, key);
        }
    assert_int_equal(calypso_len(db), 60 - 9 + 50);
}

/* The first input a COMMIT names. */
static unsigned commit_first_input(const char *dir)
{
    char p[1024];
    eu_path(p, sizeof p, dir, "merge/COMMIT");
    size_t len = 0;
    char *c = eu_read_file(p, &len);
    assert_non_null(c);
    unsigned n = 0, fid = 0;
    assert_int_equal(sscanf(c, "inputs %u\n%u", &n, &fid), 2);
    assert_true(n >= 1);
    free(c);
    return fid;
}

static void test_reader_beside_unfinished_merge(void **state)
{
    (void)state;
    /* Where the writer dies: COMMIT written (outputs still in merge/), all
     * outputs moved in (inputs all there), inputs removed (COMMIT still
     * there), and outputs moved with one input removed. */
    const char *points[] = { "committed", "moved", "removed", "moved" };
    for (int v = 0; v < 4; v++) {
        char *dir = tu_tmpdir();
        calypso_options o = tu_opts_small_files();
        fill_for_merge(dir, &o);
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            die_at = points[v];
            cy_merge_set_hook(die_hook);
            calypso *w = NULL;
            if (calypso_open(dir, &o, &w) != CALYPSO_OK) _exit(6);
            _exit(calypso_merge(w) == CALYPSO_OK ? 3 : 4);   /* the hook did not fire */
        }
        int st = 0;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        char p[1024];
        eu_path(p, sizeof p, dir, "merge/COMMIT");
        assert_true(eu_exists(p));
        if (v == 3) {
            unsigned fid = commit_first_input(dir);
            eu_fid_path(p, sizeof p, dir, fid, "hint");
            unlink(p);
            eu_fid_path(p, sizeof p, dir, fid, "data");
            assert_int_equal(unlink(p), 0);
        }
        char before[16384], after[16384];
        dir_state(dir, before, sizeof before);
        calypso_options ro;
        memset(&ro, 0, sizeof ro);
        ro.read_only = 1;
        calypso *r = eu_open(dir, &ro);
        expect_merge_vals(r);
        EU_OK(r, calypso_reopen(r));
        expect_merge_vals(r);
        eu_close(r);
        dir_state(dir, after, sizeof after);
        assert_string_equal(before, after);      /* the reader finished nothing */
        /* A writer finishes it; readers read the same. */
        calypso *w = eu_open(dir, &o);
        expect_merge_vals(w);
        eu_close(w);
        eu_path(p, sizeof p, dir, "merge");
        assert_false(eu_exists(p));
        r = eu_open(dir, &ro);
        expect_merge_vals(r);
        eu_close(r);
        tu_rmrf(dir);
    }
}

static void test_writer_beside_readers(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso *w = eu_open(dir, NULL);
    eu_put_str(w, "k", "1");
    eu_close(w);
    calypso_options ro;
    memset(&ro, 0, sizeof ro);
    ro.read_only = 1;
    calypso *r1 = eu_open(dir, &ro), *r2 = eu_open(dir, &ro);
    w = eu_open(dir, NULL);                    /* beside two readers */
    calypso *w2 = (calypso *)&w2;
    EU_RC(NULL, CALYPSO_ELOCKED, calypso_open(dir, NULL, &w2));   /* never two writers */
    assert_null(w2);
    eu_put_str(w, "k", "2");
    eu_put_str(w, "n", "new");
    EU_OK(w, calypso_merge(w));
    eu_expect_str(r1, "k", "1");               /* as of its open, merge or not */
    eu_expect_absent_str(r1, "n");
    EU_OK(r1, calypso_reopen(r1));
    eu_expect_str(r1, "k", "2");
    eu_expect_str(r1, "n", "new");
    eu_expect_str(r2, "k", "1");
    eu_close(w);
    eu_close(r2);
    eu_expect_str(r1, "n", "new");
    eu_close(r1);
    tu_rmrf(dir);
}

static void find_cli(const char *argv0)
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

int main(int argc, char **argv)
{
    if (argc > 5 && !strcmp(argv[1], "writer")) return writer_main(argv + 1);
    find_cli(argv[0]);
    if (access(cli_bin, X_OK) != 0) {
        fprintf(stderr, "test_reader: no calypso binary at %s (run make, or set CALYPSO_CLI)\n",
                cli_bin);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_beside_writer),
        cmocka_unit_test(test_reader_stops_at_write_under_way),
        cmocka_unit_test(test_reader_changes_nothing),
        cmocka_unit_test(test_reader_beside_unfinished_merge),
        cmocka_unit_test(test_writer_beside_readers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
