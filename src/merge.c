/*
 * merge.c: compaction. A merge rewrites the live records of every sealed
 * datafile into new "merged" datafiles and removes the old ones, so that
 * disk use follows the live data.
 *
 * Merged files have ids with CY_FID_MERGED set and are replayed before all
 * regular datafiles at open. A merge takes ALL sealed files as input
 * (everything older than the active file) and works through them in replay
 * order, in steps: each step takes the oldest inputs left, as many as one
 * output file's worth of live bytes holds (a run of wholly dead files
 * alone), writes their live records, commits, and removes them before the
 * next step writes. So a merge needs one output file's worth of free space
 * at a time, which a full disk's released reserve can give (space.c).
 *
 * Why that is sound: when a step runs, every input older than its own has
 * been removed by an earlier step, whose outputs hold only records that
 * were the newest of their keys (nothing any input tombstone kills). A
 * tombstone in the step's inputs can therefore only kill records in the
 * step's inputs, which the step drops anyway: outputs hold each live key
 * once and no tombstones, and no deleted key can come back. A merged file
 * holds only newest records, so replaying it before regular files that are
 * left is right: they hold no record of its keys older than its own.
 * Tombstones written while the merge runs go to the active file, which is
 * not an input.
 *
 * Steps of a step, each durable before the next relies on it (a crash
 * anywhere finds the whole old state or the whole new one, step by step):
 *   1. (once per merge) seal the active file (writers go on in a new one);
 *      on a full disk the active file stays out instead;
 *   2. copy live, unexpired records (checksums verified) into merge/, with
 *      hint files; fdatasync each; fsync merge/. The copy walks the keydir
 *      in key order, so a step's merged files hold their records sorted by
 *      key: an ordered scan reads them front to back, and the next open
 *      builds the keydir from hints in key order. When the step's inputs
 *      outnumber max_open_files, reading them in key order would map and
 *      unmap files over and over, so the copy scans each input front to
 *      back instead (file order);
 *   3. take the file set lock (LOCK byte 2, dir.c), which readers in
 *      other processes hold while they list and replay, and keep it to the
 *      end of step 6, so that none of them lists a half-swapped step; then
 *      write merge/COMMIT naming the inputs, atomically: the step is now
 *      decided; open finishes it if we crash after this point;
 *   4. rename the outputs into the database directory; fsync it;
 *   5. point the keydir at the new copies, in batches, by compare-and-swap
 *      (keydir.c): an entry moves only if it still names the old copy, so a
 *      write that landed during the merge wins over the merged record;
 *   6. wait for a grace period (epoch.c: every get that may have found an
 *      input's location in the keydir before the swap has finished), take
 *      the inputs off the file table, wait for another (every reader that
 *      may have loaded the old table has finished), then unmap, close and
 *      unlink them (views still open keep them mapped: view.c); fsync;
 *      remove merge/COMMIT and merge/.
 * A step that finds no live record in its inputs writes nothing at all (no
 * merge/, no COMMIT): it drops expired keys from the keydir and removes
 * its inputs oldest first, each removal durable before the next (a
 * tombstone only kills older records, so any prefix of removals is safe).
 * Readers and writers keep going throughout; the exclusive moments are the
 * per-batch keydir swaps (kd_lock) and the table replacements (write_mu).
 * No read of a live key can fail for the merge: a reader's epoch keeps
 * every file it can reach mapped. Output ids come from ids.c and are never
 * reused.
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CY_MERGE_SWAP_BATCH 128          /* keydir moves per lock hold     */
#define CY_MERGE_LET_NS     1000000      /* waiters let in between, at most */
#define CY_MERGE_WALK_BATCH 512          /* keys per keydir visit          */
#define CY_MERGE_OUT_BUF    (1u << 20)   /* output written in 1 MiB pieces */

/* Test hook: called at each named step of a merge (see cy_merge_run), so
 * that a test can stop the process dead there and check what open finds. */
static void (*cy_merge_hook)(const char *point);

CY_INTERNAL void cy_merge_set_hook(void (*fn)(const char *point))
{
    cy_merge_hook = fn;
}

static int cy_merge_cmp_fid(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void cy_merge_at(const char *point)
{
    if (cy_merge_hook) cy_merge_hook(point);
}

typedef struct cy_reloc {
    cy_kd_move mv;            /* what the swap applies (keydir.c)    */
    size_t     key;           /* index into the key list             */
} cy_reloc;

typedef struct cy_merge_fidstep { uint32_t fid, step; } cy_merge_fidstep;
typedef struct cy_merge_locs { cy_loc *v; size_t n, cap; } cy_merge_locs;

typedef struct cy_merge {
    calypso   *db;
    char       dir[4200];     /* <db>/merge                            */
    uint32_t  *all;     uint32_t nall;       /* every input, replay order */
    uint32_t  *step_at; uint32_t nsteps;     /* step s: all[step_at[s]..step_at[s+1]) */
    uint32_t   step;                         /* the step running         */
    cy_merge_fidstep *fid_step;              /* input fid -> step, by fid */
    cy_merge_locs    *locs;                  /* per step copying by key  */
    uint64_t  *live;                         /* live bytes of each      */
    uint32_t  *inputs;  uint32_t ninputs;    /* this step's: a run of all */
    uint32_t  *sorted_inputs;                /* the same, by fid        */
    cy_file  **dropped;                      /* inputs taken off the table */
    uint32_t  *outputs; uint32_t noutputs, outcap;
    uint64_t  *out_sizes, *hint_sizes;       /* per output, as written  */
    int        out_fd;
    uint64_t   out_size;                     /* of the current output, buffered bytes included */
    uint8_t   *obuf;  size_t olen, ocap;     /* its tail not yet written */
    cy_hint_buf hint;                        /* hint of the current output */
    cy_keylist keys;
    cy_reloc  *relocs;  size_t nrelocs, rcap;
    uint64_t   now;
} cy_merge;

// >> merge directory and COMMIT --------------------------------------------------

static void cy_merge_path(const cy_merge *m, uint32_t fid, const char *ext, char *out,
                          size_t cap)
{
    snprintf(out, cap, "%s/%010u.%s", m->dir, fid, ext);
}

static int cy_merge_rm_entry(const char *name, void *ctx)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", (const char *)ctx, name);
    cy_os_unlink(path);
    return 0;
}

/* Removes merge/ and everything in it. */
static void cy_merge_rmdir(const char *dir)
{
    cy_os_list_dir(dir, cy_merge_rm_entry, (void *)dir);
    cy_os_rmdir(dir);
}

/* Parses COMMIT: "inputs N\n" then N fids, "outputs M\n" then M fids. */
static int cy_merge_read_commit(calypso *db, const char *path, uint32_t **in, uint32_t *nin,
                                uint32_t **out, uint32_t *nout)
{
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return fd;
    uint64_t size = 0;
    char *buf = NULL;
    int rc = cy_os_fsize(fd, &size);
    if (!rc && size > (64u << 20)) rc = -EINVAL;
    if (!rc && !(buf = cy_malloc((size_t)size + 1))) rc = -ENOMEM;
    int64_t got = rc ? 0 : cy_os_pread(fd, buf, (size_t)size, 0);
    if (!rc && got < 0) rc = (int)got;
    else if (!rc && got != (int64_t)size) rc = -EINVAL;
    cy_os_close(fd);
    if (rc) {
        cy_free(buf);
        return rc;
    }
    buf[size] = 0;
    char *p = buf;
    uint32_t **lists[2] = { in, out };
    uint32_t *counts[2] = { nin, nout };
    const char *words[2] = { "inputs ", "outputs " };
    for (int l = 0; l < 2 && !rc; l++) {
        size_t wl = strlen(words[l]);
        if (strncmp(p, words[l], wl) != 0) { rc = -EINVAL; break; }
        unsigned long n = strtoul(p + wl, &p, 10);
        if (n > 10000000) { rc = -EINVAL; break; }
        if (!(*lists[l] = cy_calloc(n ? n : 1, sizeof(uint32_t)))) { rc = -ENOMEM; break; }
        for (unsigned long i = 0; i < n; i++) (*lists[l])[i] = (uint32_t)strtoul(p, &p, 10);
        *counts[l] = (uint32_t)n;
        while (*p == '\n') p++;
    }
    if (rc == 0 && strcmp(p, "end\n") != 0 && strcmp(p, "end") != 0) rc = -EINVAL;
    cy_free(buf);
    (void)db;
    return rc;
}

/* Moves the outputs of a decided merge into the database directory.
 * Idempotent: run by the merge after COMMIT, and again by open after a
 * crash (an output already moved is simply not in merge/ any more). */
static int cy_merge_move_outputs(calypso *db, const char *mdir, const uint32_t *out,
                                 uint32_t nout)
{
    char from[4400], to[4200];
    int rc;
    for (uint32_t i = 0; i < nout; i++) {
        snprintf(from, sizeof from, "%s/%010u.data", mdir, out[i]);
        cy_dir_data_path(db, out[i], to, sizeof to);
        if ((rc = cy_os_rename(from, to)) < 0 && rc != -ENOENT)
            return cy_err_errno(db, rc, "rename", from);
        snprintf(from, sizeof from, "%s/%010u.hint", mdir, out[i]);
        cy_dir_hint_path(db, out[i], to, sizeof to);
        if ((rc = cy_os_rename(from, to)) < 0 && rc != -ENOENT)
            return cy_err_errno(db, rc, "rename", from);
    }
    if ((rc = cy_os_sync_dir(db->path)) < 0) return cy_err_errno(db, rc, "fsync", db->path);
    return CALYPSO_OK;
}

/* Unlinks the inputs of a decided merge. Idempotent. Each hint goes
 * before its datafile, so that a crash in between leaves a datafile that
 * open scans (and a later merge removes), never a stray hint. */
static int cy_merge_remove_inputs(calypso *db, const uint32_t *in, uint32_t nin)
{
    char path[4200];
    int rc;
    for (uint32_t i = 0; i < nin; i++) {
        cy_dir_hint_path(db, in[i], path, sizeof path);
        if ((rc = cy_os_unlink(path)) < 0 && rc != -ENOENT)
            return cy_err_errno(db, rc, "unlink", path);
        cy_dir_data_path(db, in[i], path, sizeof path);
        if ((rc = cy_os_unlink(path)) < 0 && rc != -ENOENT)
            return cy_err_errno(db, rc, "unlink", path);
    }
    if ((rc = cy_os_sync_dir(db->path)) < 0) return cy_err_errno(db, rc, "fsync", db->path);
    return CALYPSO_OK;
}

/* A reader beside a decided step that nobody is finishing (its writer
 * died: a live one holds the file set lock from COMMIT to the end) reads
 * one whole side of it without changing a file: the old files while every
 * input is still there (outputs moved in already are left out), else the
 * new ones (outputs all moved in before the first input went; the inputs
 * left are left out). */
static int cy_merge_recover_read_only(calypso *db, const char *commit, uint32_t *in,
                                      uint32_t nin, uint32_t *out, uint32_t nout)
{
    char path[4200];
    int all_in = 1;
    for (uint32_t i = 0; i < nin && all_in; i++) {
        cy_dir_data_path(db, in[i], path, sizeof path);
        int rc = cy_os_stat(path, NULL, NULL);
        if (rc < 0 && rc != -ENOENT) return cy_err_errno(db, rc, "stat", path);
        all_in = rc == 0;
    }
    for (uint32_t i = 0; i < nout && !all_in; i++) {
        cy_dir_data_path(db, out[i], path, sizeof path);
        int rc = cy_os_stat(path, NULL, NULL);
        if (rc == -ENOENT)
            return cy_err(db, CALYPSO_ECORRUPT, "%s: inputs of the merge step are gone but its "
                          "output %s is missing", commit, path);
        if (rc < 0) return cy_err_errno(db, rc, "stat", path);
    }
    uint32_t n = all_in ? nout : nin;
    db->merge.skip_fids = cy_calloc(n ? n : 1, sizeof *db->merge.skip_fids);
    if (!db->merge.skip_fids) return cy_err(db, CALYPSO_ENOMEM, "reading %s", commit);
    memcpy(db->merge.skip_fids, all_in ? out : in, n * sizeof *db->merge.skip_fids);
    qsort(db->merge.skip_fids, n, sizeof *db->merge.skip_fids, cy_merge_cmp_fid);
    db->merge.nskip = n;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_merge_recover(calypso *db)
{
    char mdir[4200], commit[4300];
    snprintf(mdir, sizeof mdir, "%s/merge", db->path);
    snprintf(commit, sizeof commit, "%s/COMMIT", mdir);
    uint32_t *in = NULL, *out = NULL, nin = 0, nout = 0;
    int rc = cy_merge_read_commit(db, commit, &in, &nin, &out, &nout);
    if (rc == -ENOENT || rc == -ENOTDIR) {
        /* No decided merge: whatever merge/ holds is an abandoned attempt. */
        if (!db->opt.read_only) cy_merge_rmdir(mdir);
        return CALYPSO_OK;
    }
    if (rc < 0) {
        cy_free(in);
        cy_free(out);
        if (rc == -EINVAL) return cy_err(db, CALYPSO_ECORRUPT, "%s does not parse", commit);
        if (rc == -ENOMEM) return cy_err(db, CALYPSO_ENOMEM, "reading %s", commit);
        return cy_err_errno(db, rc, "read", commit);
    }
    if (db->opt.read_only) {
        rc = cy_merge_recover_read_only(db, commit, in, nin, out, nout);
    } else if (!(rc = cy_dir_files_lock(db))) {
        rc = cy_merge_move_outputs(db, mdir, out, nout);
        if (!rc) rc = cy_merge_remove_inputs(db, in, nin);
        if (!rc) {
            cy_merge_rmdir(mdir);
            cy_os_sync_dir(db->path);
        }
        cy_dir_files_unlock(db);
    }
    cy_free(in);
    cy_free(out);
    return rc;
}

// >> writing outputs ---------------------------------------------------------------

/* Syncs and closes the current output and writes its hint. */
/* Writes the buffered tail of the current output. */
static int cy_merge_flush(cy_merge *m)
{
    if (m->olen == 0) return CALYPSO_OK;
    int rc = cy_os_pwrite(m->out_fd, m->obuf, m->olen, m->out_size - m->olen);
    if (rc < 0) {
        char path[4400];
        cy_merge_path(m, m->outputs[m->noutputs - 1], "data", path, sizeof path);
        return cy_err_errno(m->db, rc, "write", path);
    }
    m->olen = 0;
    return CALYPSO_OK;
}

static int cy_merge_close_output(cy_merge *m)
{
    if (m->out_fd < 0) return CALYPSO_OK;
    calypso *db = m->db;
    uint32_t fid = m->outputs[m->noutputs - 1];
    char path[4400];
    int rc = cy_merge_flush(m);
    if (rc) return rc;
    cy_merge_path(m, fid, "data", path, sizeof path);
    rc = cy_os_fdatasync(m->out_fd);
    cy_os_close(m->out_fd);
    m->out_fd = -1;
    if (rc < 0) return cy_err_errno(db, rc, "fdatasync", path);
    if (cy_hint_finish(&m->hint, m->out_size)) return cy_err(db, CALYPSO_ENOMEM, "merge hint");
    char name[32];
    snprintf(name, sizeof name, "%010u.hint", fid);
    m->out_sizes[m->noutputs - 1] = m->out_size;
    m->hint_sizes[m->noutputs - 1] = m->hint.len;
    rc = cy_dir_write_file(db, m->dir, name, m->hint.p, m->hint.len);
    m->hint.len = 0;
    m->hint.count = 0;
    return rc;
}

static int cy_merge_open_output(cy_merge *m)
{
    calypso *db = m->db;
    if (m->noutputs == m->outcap) {
        uint32_t nc = m->outcap ? m->outcap * 2 : 8;
        uint32_t *p = cy_realloc(m->outputs, nc * sizeof *p);
        if (p) m->outputs = p;
        uint64_t *q = p ? cy_realloc(m->out_sizes, nc * sizeof *q) : NULL;
        if (q) m->out_sizes = q;
        uint64_t *r = q ? cy_realloc(m->hint_sizes, nc * sizeof *r) : NULL;
        if (r) m->hint_sizes = r;
        if (!r) return cy_err(db, CALYPSO_ENOMEM, "merge outputs");
        m->outcap = nc;
    }
    uint32_t fid;
    int rc;
    if (m->noutputs == 0) {
        /* The step's first output: a fresh merge/ (created only by steps
         * that write, so that a step that drops dead files needs no space). */
        cy_merge_rmdir(m->dir);
        if ((rc = cy_os_mkdir(m->dir, db->opt.dir_mode)) < 0)
            return cy_err_errno(db, rc, "create", m->dir);
    }
    if ((rc = cy_ids_take(db, CY_IDS_MERGED, &fid))) return rc;
    char path[4400];
    cy_merge_path(m, fid, "data", path, sizeof path);
    int fd = cy_os_open(path, O_RDWR | O_CREAT | O_TRUNC, db->opt.file_mode);
    if (fd < 0) return cy_err_errno(db, fd, "create", path);
    m->outputs[m->noutputs++] = fid;
    m->out_fd = fd;
    m->out_size = 0;
    return CALYPSO_OK;
}

/* Makes room for a record of size bytes at the end of the output buffer:
 * starts a new output when the current one would pass max_datafile_size,
 * writes the buffer out when it is full. */
static int cy_merge_reserve(cy_merge *m, uint64_t size)
{
    calypso *db = m->db;
    int rc;
    if (m->out_fd >= 0 && m->out_size > 0 && m->out_size + size > db->opt.max_datafile_size)
        if ((rc = cy_merge_close_output(m))) return rc;
    if (m->out_fd < 0 && (rc = cy_merge_open_output(m))) return rc;
    if (m->olen + size <= m->ocap) return CALYPSO_OK;
    if ((rc = cy_merge_flush(m))) return rc;
    if (size <= m->ocap) return CALYPSO_OK;
    size_t cap = size > CY_MERGE_OUT_BUF ? (size_t)size : CY_MERGE_OUT_BUF;
    uint8_t *p = cy_realloc(m->obuf, cap);
    if (!p) return cy_err(db, CALYPSO_ENOMEM, "merge buffer of %zu bytes", cap);
    m->obuf = p;
    m->ocap = cap;
    return CALYPSO_OK;
}

static int cy_merge_grow_relocs(cy_merge *m)
{
    if (m->nrelocs < m->rcap) return CALYPSO_OK;
    size_t nc = m->rcap ? m->rcap * 2 : 1024;
    cy_reloc *p = cy_realloc(m->relocs, nc * sizeof *p);
    if (!p) return cy_err(m->db, CALYPSO_ENOMEM, "merge relocations");
    m->relocs = p;
    m->rcap = nc;
    return CALYPSO_OK;
}

/* Takes the record just copied to the end of the buffer (size bytes,
 * parsed as r) into the output: hint entry, key, relocation. */
static int cy_merge_note_copy(cy_merge *m, const cy_rec *r, uint64_t size, uint32_t old_fid,
                              uint64_t old_off)
{
    const uint8_t *key = m->obuf + m->olen + r->hdr;
    int rc = cy_merge_grow_relocs(m);
    if (rc) return rc;
    if (cy_hint_add(&m->hint, r, key, m->out_size, size) ||
        cy_keylist_push(&m->keys, key, (size_t)r->klen))
        return cy_err(m->db, CALYPSO_ENOMEM, "merge bookkeeping");
    m->relocs[m->nrelocs++] = (cy_reloc){
        { old_fid, m->outputs[m->noutputs - 1], (uint32_t)size, old_off, m->out_size, r->ns,
          r->type == CY_REC_NS_CREATE },
        m->keys.n - 1 };
    m->olen += (size_t)size;
    m->out_size += size;
    if (m->nrelocs == 1) cy_merge_at("copying");
    return CALYPSO_OK;
}

/* Appends one live record to the outputs and notes its move. */
static int cy_merge_emit(cy_merge *m, const cy_rec *r, const uint8_t *rec, uint64_t size,
                         uint32_t old_fid, uint64_t old_off)
{
    int rc = cy_merge_reserve(m, size);
    if (rc) return rc;
    memcpy(m->obuf + m->olen, rec, (size_t)size);
    return cy_merge_note_copy(m, r, size, old_fid, old_off);
}

/* 1 if the record at (fid, off) is what the keydir points at (for a
 * namespace's create record: what the catalog points at). Tombstones and
 * drop records are never copied: every record they could kill is in
 * this step's inputs or was dropped by an earlier step. */
static int cy_merge_is_live(cy_merge *m, const cy_rec *r, const uint8_t *key, uint32_t fid,
                            uint64_t off)
{
    if (r->type == CY_REC_DEL || r->type == CY_REC_NS_DROP) return 0;
    return cy_keydir_is_at(m->db, r->ns, r->type == CY_REC_NS_CREATE, key, (size_t)r->klen, fid,
                           off);
}

/* An expired record is not copied: no older copy of its key survives the
 * merge (every older file is an input), so no tombstone is needed. The swap
 * drops the key from the keydir if it still points here. */
static int cy_merge_note_expired(cy_merge *m, uint32_t ns, const uint8_t *key, size_t klen,
                                 uint32_t fid, uint64_t off, uint64_t size)
{
    int rc = cy_merge_grow_relocs(m);
    if (rc) return rc;
    if (cy_keylist_push(&m->keys, key, (size_t)klen))
        return cy_err(m->db, CALYPSO_ENOMEM, "merge bookkeeping");
    m->relocs[m->nrelocs++] =
        (cy_reloc){ { fid, 0, (uint32_t)size, off, 0, ns, 0 }, m->keys.n - 1 };
    if (m->nrelocs == 1) cy_merge_at("copying");
    return CALYPSO_OK;
}

typedef struct cy_merge_entry { cy_merge *m; uint32_t fid; uint64_t off; } cy_merge_entry;

/* Copies one record (or one record of a batch) if the keydir still points
 * at it. Batches are not kept as batches: every record of a batch was
 * applied, so each live one is copied alone. */
static int cy_merge_copy_entry(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    cy_merge_entry *q = ctx;
    uint64_t size = r->hdr + r->klen + r->vlen, at = q->off + rel;
    if (!cy_merge_is_live(q->m, r, rec + r->hdr, q->fid, at)) return CALYPSO_OK;
    if (r->expiry && r->expiry <= q->m->now)
        return cy_merge_note_expired(q->m, r->ns, rec + r->hdr, (size_t)r->klen, q->fid, at,
                                     size);
    return cy_merge_emit(q->m, r, rec, size, q->fid, at);
}

/* Copies the live records of one input datafile, in file order. */
static int cy_merge_copy_file(cy_merge *m, uint32_t fid)
{
    calypso *db = m->db;
    cy_scan s;
    int rc = cy_scan_open(&s, db, fid, -1);
    for (uint64_t off = 0; !rc && off < s.size;) {
        cy_rec r;
        const uint8_t *p = NULL;
        const char *why = NULL;
        if (__atomic_load_n(&db->bg.stop, __ATOMIC_RELAXED)) {
            rc = cy_err(db, CALYPSO_EIO, "merge cancelled: the database is closing");
            break;
        }
        int got = cy_scan_record(&s, off, &r, &p, &why);
        if (got <= 0) {
            rc = got < 0 ? got : cy_err(db, CALYPSO_ECORRUPT, "%s at offset %llu: %s; merge "
                                        "abandoned", s.path, (unsigned long long)off, why);
            break;
        }
        uint64_t rsize = r.hdr + r.klen + r.vlen;
        cy_merge_entry q = { m, fid, off };
        rc = cy_rec_entries(p, &r, cy_merge_copy_entry, &q);
        if (rc == CALYPSO_ECORRUPT)
            rc = cy_err(db, rc, "%s at offset %llu: a batch whose records do not parse; merge "
                        "abandoned", s.path, (unsigned long long)off);
        off += rsize;
    }
    cy_scan_close(&s);
    return rc;
}

/* The inputs of the step that starts at all[at]: a run of wholly dead
 * files on its own (it writes nothing), else as many files as one output
 * file's worth of live bytes takes (at least one). Returns how many. */
static uint32_t cy_merge_plan_step(const cy_merge *m, uint32_t at)
{
    uint32_t j = at;
    if (m->live[at] == 0) {
        while (j < m->nall && m->live[j] == 0) j++;
        return j - at;
    }
    uint64_t sum = m->live[j++];
    while (j < m->nall && sum + m->live[j] <= m->db->opt.max_datafile_size) sum += m->live[j++];
    return j - at;
}

/* Copying in key order. One walk of the keydir at the start of a merge
 * notes, for each step that copies by key, where its inputs' live records
 * are, in key order: 16 bytes a key (the record itself holds the key).
 * Walking the keydir once, not once per step, keeps a merge linear in the
 * keys however many steps it takes. A record noted here that is
 * overwritten or deleted before its step copies it is copied all the same;
 * the swap's compare-and-swap then counts the copy as dead. */

/* The step whose inputs hold fid, or -1 when fid is no input. */
static int cy_merge_step_of(const cy_merge *m, uint32_t fid)
{
    uint32_t lo = 0, hi = m->nall;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->fid_step[mid].fid < fid) lo = mid + 1;
        else hi = mid;
    }
    return lo < m->nall && m->fid_step[lo].fid == fid ? (int)m->fid_step[lo].step : -1;
}

static int cy_merge_cmp_fid_step(const void *a, const void *b)
{
    uint32_t x = ((const cy_merge_fidstep *)a)->fid, y = ((const cy_merge_fidstep *)b)->fid;
    return x < y ? -1 : x > y;
}

static int cy_merge_by_key(const cy_merge *m, uint32_t step)
{
    return m->step_at[step + 1] - m->step_at[step] <= m->db->opt.max_open_files;
}

static int cy_merge_note_loc(cy_merge *m, uint32_t step, const cy_loc *l)
{
    cy_merge_locs *L = &m->locs[step];
    if (L->n == L->cap) {
        size_t nc = L->cap ? L->cap * 2 : 1024;
        cy_loc *p = cy_realloc(L->v, nc * sizeof *p);
        if (!p) return CALYPSO_ENOMEM;
        L->v = p;
        L->cap = nc;
    }
    L->v[L->n++] = (cy_loc){ l->off, l->fid & CY_LOC_FIDMASK, l->size };
    return CALYPSO_OK;
}

/* The keydir walk that notes where live records are: the step of the
 * last file seen is kept, as consecutive keys often share a file. */
typedef struct cy_merge_walk { cy_merge *m; uint32_t last_fid; int last_step; } cy_merge_walk;

static int cy_merge_note_key(const cy_kd_ent *e, void *ctx)
{
    cy_merge_walk *w = ctx;
    uint32_t fid = e->loc->fid & CY_LOC_FIDMASK;
    if (fid != w->last_fid || w->last_step == -2) {
        w->last_fid = fid;
        w->last_step = cy_merge_step_of(w->m, fid);
        if (w->last_step >= 0 && !cy_merge_by_key(w->m, (uint32_t)w->last_step))
            w->last_step = -1;
    }
    if (w->last_step >= 0 && cy_merge_note_loc(w->m, (uint32_t)w->last_step, e->loc))
        return CALYPSO_ENOMEM;
    return CY_KD_PASS;
}

/* Notes the records of one namespace's keydir, CY_MERGE_WALK_BATCH keys
 * per hold of kd_lock. */
static int cy_merge_collect_ns(calypso *db, cy_ns *ns, void *ctx)
{
    cy_merge_walk w = { ctx, 0, -2 };
    cy_kd_iter it;
    cy_kd_iter_init(&it, db, ns, CY_SEEK_FIRST, NULL, 0);
    it.step = it.visit = CY_MERGE_WALK_BATCH;
    int rc = CALYPSO_OK;
    for (int more = 1; !rc && more;) {
        if (__atomic_load_n(&db->bg.stop, __ATOMIC_RELAXED)) {
            rc = cy_err(db, CALYPSO_EIO, "merge cancelled: the database is closing");
            break;
        }
        more = cy_kd_iter_gather(&it, SIZE_MAX, cy_merge_note_key, &w);
        if (more < 0) rc = cy_err(db, more, "merge walk");
    }
    cy_kd_iter_free(&it);
    return rc;
}

/* Plans the steps (cy_merge_plan_step, from live bytes noted at the start:
 * they can only fall) and notes the records of those that copy by key. */
static int cy_merge_collect(cy_merge *m)
{
    calypso *db = m->db;
    m->step_at = cy_calloc((size_t)m->nall + 1, sizeof *m->step_at);
    m->fid_step = cy_calloc((size_t)m->nall + 1, sizeof *m->fid_step);
    m->locs = cy_calloc((size_t)m->nall + 1, sizeof *m->locs);
    if (!m->step_at || !m->fid_step || !m->locs) return cy_err(db, CALYPSO_ENOMEM, "merge plan");
    for (uint32_t at = 0; at < m->nall; m->nsteps++) {
        m->step_at[m->nsteps] = at;
        uint32_t n = cy_merge_plan_step(m, at);
        for (uint32_t i = at; i < at + n; i++)
            m->fid_step[i] = (cy_merge_fidstep){ m->all[i], m->nsteps };
        at += n;
    }
    m->step_at[m->nsteps] = m->nall;
    qsort(m->fid_step, m->nall, sizeof *m->fid_step, cy_merge_cmp_fid_step);
    /* The namespaces' create records first: in a step's output a create
     * comes before the records of its namespace (doc/format.md). */
    int rc = CALYPSO_OK;
    cy_rdlock(&db->kd_lock);
    for (uint32_t i = 0; i < db->catalog.n && !rc; i++) {
        const cy_loc *l = &db->catalog.cat[i]->created;
        int step = cy_merge_step_of(m, l->fid);
        if (step >= 0 && cy_merge_by_key(m, (uint32_t)step) &&
            cy_merge_note_loc(m, (uint32_t)step, l))
            rc = CALYPSO_ENOMEM;
    }
    cy_unlock(&db->kd_lock);
    if (rc) return cy_err(db, rc, "merge walk");
    return cy_ns_each(db, cy_merge_collect_ns, m);
}

typedef struct cy_merge_read {
    cy_merge   *m;
    uint32_t    fid, size;
    uint64_t    off;
    cy_rec      rec;
} cy_merge_read;

/* Verifies one input record (whole, a put, its checksum) and copies it to
 * the end of the output buffer (room reserved). Runs on the mapped bytes,
 * inside an epoch: no I/O here. */
static int cy_merge_copy_record(const uint8_t *rec, void *ctx)
{
    cy_merge_read *q = ctx;
    cy_rec *r = &q->rec;
    if (cy_rec_verify(rec, q->size, r) || r->type == CY_REC_DEL || r->type == CY_REC_BATCH ||
        r->type == CY_REC_NS_DROP) {
        char path[4096];
        cy_dir_data_path(q->m->db, q->fid, path, sizeof path);
        return cy_err(q->m->db, CALYPSO_ECORRUPT, "%s at offset %llu: record does not match "
                      "the keydir; merge abandoned", path, (unsigned long long)q->off);
    }
    memcpy(q->m->obuf + q->m->olen, rec, q->size);
    return CALYPSO_OK;
}

/* Copies the records noted for this step, in key order (see the file
 * comment): read through the file table's mappings, verified, written out
 * through the output buffer; expired ones are dropped. */
static int cy_merge_copy_by_key(cy_merge *m, uint32_t step)
{
    calypso *db = m->db;
    const cy_merge_locs *L = &m->locs[step];
    int rc = CALYPSO_OK;
    for (size_t i = 0; i < L->n && !rc; i++) {
        if (!(i % 4096) && __atomic_load_n(&db->bg.stop, __ATOMIC_RELAXED))
            return cy_err(db, CALYPSO_EIO, "merge cancelled: the database is closing");
        cy_merge_read q = { .m = m, .fid = L->v[i].fid, .size = L->v[i].size,
                            .off = L->v[i].off };
        if ((rc = cy_merge_reserve(m, q.size))) break;
        /* Inputs leave the table only at the end of this step, but their
         * mappings may be evicted and made again: the epoch keeps the one
         * read from. */
        uint32_t ep = cy_epoch_enter(&db->epoch);
        cy_file *f = cy_files_find(db, q.fid);
        CY_ASSERT(f != NULL);
        rc = cy_files_with_record(db, f, q.off, q.size, cy_merge_copy_record, &q);
        cy_epoch_leave(&db->epoch, ep);
        if (rc) break;
        const uint8_t *key = m->obuf + m->olen + q.rec.hdr;
        if (q.rec.expiry && q.rec.expiry <= m->now)
            rc = cy_merge_note_expired(m, q.rec.ns, key, (size_t)q.rec.klen, q.fid, q.off,
                                       q.size);
        else
            rc = cy_merge_note_copy(m, &q.rec, q.size, q.fid, q.off);
    }
    return rc;
}

// >> the swap ---------------------------------------------------------------------

static int cy_merge_write_commit(cy_merge *m)
{
    size_t cap = 64 + 12 * ((size_t)m->ninputs + m->noutputs);
    char *buf = cy_malloc(cap);
    if (!buf) return cy_err(m->db, CALYPSO_ENOMEM, "merge commit");
    size_t n = (size_t)snprintf(buf, cap, "inputs %u\n", m->ninputs);
    for (uint32_t i = 0; i < m->ninputs; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%u\n", m->inputs[i]);
    n += (size_t)snprintf(buf + n, cap - n, "outputs %u\n", m->noutputs);
    for (uint32_t i = 0; i < m->noutputs; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%u\n", m->outputs[i]);
    n += (size_t)snprintf(buf + n, cap - n, "end\n");
    int rc = cy_dir_write_file(m->db, m->dir, "COMMIT", buf, n);
    cy_free(buf);
    return rc;
}

/* Adds the outputs to the file table (sealed, descriptors opened lazily),
 * with the sizes the merge wrote. */
static int cy_merge_add_outputs(cy_merge *m)
{
    calypso *db = m->db;
    int rc = CALYPSO_OK;
    pthread_mutex_lock(&db->write_mu);
    for (uint32_t i = 0; i < m->noutputs && !rc; i++) {
        if (!(rc = cy_files_add(db, m->outputs[i], -1, m->out_sizes[i], 1))) {
            cy_file *f = cy_files_find(db, m->outputs[i]);
            cy_files_set_hint(db, f, m->hint_sizes[i], m->out_sizes[i]);
        }
    }
    pthread_mutex_unlock(&db->write_mu);
    return rc ? cy_err(db, rc, "adding merged files") : CALYPSO_OK;
}

/* Points the keydir at the merged copies, batch by batch (a batch of
 * moves takes tens of microseconds). Between two batches the gets
 * and writes that wait for the locks go first (lock.h): both locks favour
 * whoever takes them again at once, so otherwise a get or a put would
 * wait out the whole swap, tens of milliseconds for a large output. */
static void cy_merge_swap_keydir(cy_merge *m)
{
    calypso *db = m->db;
    for (size_t i = 0; i < m->nrelocs;) {
        size_t end = i + CY_MERGE_SWAP_BATCH < m->nrelocs ? i + CY_MERGE_SWAP_BATCH : m->nrelocs;
        if (i > 0) {
            cy_rw_let_readers(&db->kd_lock, CY_MERGE_LET_NS);
            cy_let_waiters(&db->write_waiting, CY_MERGE_LET_NS);
        }
        /* The lookups' cache misses are taken under the shared lock (gets
         * go on beside it; a put waits for a quarter of the batch at most):
         * the exclusive hold below then finds the paths cached, a few
         * times shorter. */
        for (size_t j = i; j < end;) {
            size_t to = j + CY_MERGE_SWAP_BATCH / 4 < end ? j + CY_MERGE_SWAP_BATCH / 4 : end;
            cy_rdlock(&db->kd_lock);
            for (; j < to; j++) {
                size_t klen;
                const uint8_t *k = cy_keylist_at(&m->keys, m->relocs[j].key, &klen);
                cy_keydir_touch(db, &m->relocs[j].mv, k, klen);
            }
            cy_unlock(&db->kd_lock);
        }
        pthread_mutex_lock(&db->write_mu);
        cy_wrlock(&db->kd_lock);
        for (; i < end; i++) {
            size_t klen;
            const uint8_t *k = cy_keylist_at(&m->keys, m->relocs[i].key, &klen);
            cy_keydir_move(db, &m->relocs[i].mv, k, klen);
        }
        cy_unlock(&db->kd_lock);
        pthread_mutex_unlock(&db->write_mu);
    }
}

/* Drops the inputs from the table; their dead bytes go with them. No
 * lock is held while it waits for readers. */
static int cy_merge_drop_inputs(cy_merge *m)
{
    calypso *db = m->db;
    /* Every reader that found an input's location before the swap leaves
     * its epoch; readers after it find only the outputs' locations. */
    cy_epoch_sync(&db->epoch);
    /* Views open now may still read the inputs through their history:
     * they are kept mapped (unlinked all the same) until the views close.
     * views.mu is held from their leaving the table to their joining the
     * retained list, so that a view's read finds them in one place or the
     * other (cy_view_file). A view that opens after this saw the swap and
     * never needs them. */
    pthread_mutex_lock(&db->views.mu);
    pthread_mutex_lock(&db->write_mu);
    cy_wrlock(&db->kd_lock);
    int rc = cy_files_remove(db, m->sorted_inputs, m->ninputs, m->dropped);
    if (!rc)
        for (uint32_t i = 0; i < m->ninputs; i++)
            if (m->dropped[i]) cy_files_dead_drop(db, m->dropped[i]);
    int keep = db->views.open > 0;
    cy_unlock(&db->kd_lock);
    pthread_mutex_unlock(&db->write_mu);
    int lost = 0;
    for (uint32_t i = 0; !rc && keep && i < m->ninputs; i++) {
        cy_file *f = m->dropped[i];
        if (f && cy_files_hold_open(db, f) == CALYPSO_OK && cy_view_retain(db, f) == CALYPSO_OK)
            m->dropped[i] = NULL;                      /* the views have it now */
        else if (f)
            lost = 1;
    }
    pthread_mutex_unlock(&db->views.mu);
    if (rc) return cy_err(db, rc, "dropping merged files from the table");
    if (lost) {
        /* Could not keep one for the views open now: they fail their next
         * read instead of reading a file that is gone. */
        cy_wrlock(&db->kd_lock);
        db->views.lost = db->views.commit_seq + 1;
        cy_unlock(&db->kd_lock);
    }
    /* Every reader that loaded the old table leaves its epoch: the inputs
     * are out of reach. Unmapping (tearing down the page tables of a large
     * file takes milliseconds) needs no lock. */
    cy_epoch_sync(&db->epoch);
    for (uint32_t i = 0; i < m->ninputs; i++) {
        cy_files_release(db, m->dropped[i]);
        m->dropped[i] = NULL;
    }
    return CALYPSO_OK;   /* the replaced tables wait in limbo for the background thread */
}

// >> running a merge ------------------------------------------------------------------

/* Seals the active file and lists every sealed file as input, merged ones
 * first (replay order), each with its live bytes (size less dead bytes,
 * stable under write_mu; they can only fall from here on). */
static int cy_merge_pick_inputs(cy_merge *m)
{
    calypso *db = m->db;
    int rc = CALYPSO_OK;
    pthread_mutex_lock(&db->write_mu);
    if (!cy_files_active_empty(db->files.active)) rc = cy_files_rotate(db);
    /* On a full disk the active file stays out: the sealed files are a
     * prefix of the replay order all the same, and dropping dead ones
     * needs no new file. */
    if (rc == CALYPSO_ENOSPC) rc = CALYPSO_OK;
    uint32_t nf = 0;
    cy_file_info *t = rc ? NULL : cy_files_snapshot(db, &nf);
    uint32_t n = 0, cap = nf + 1;
    m->all = !t ? NULL : cy_calloc(cap, sizeof *m->all);
    m->live = !t ? NULL : cy_calloc(cap, sizeof *m->live);
    m->sorted_inputs = !t ? NULL : cy_calloc(cap, sizeof *m->sorted_inputs);
    m->dropped = !t ? NULL : cy_calloc(cap, sizeof *m->dropped);
    for (uint32_t pass = 0; pass < 2 && m->all && m->live; pass++) {
        for (uint32_t i = 0; i < nf; i++) {
            const cy_file_info *f = &t[i];
            int merged = (f->fid & CY_FID_MERGED) != 0;
            if (f->active || merged != (pass == 0)) continue;
            m->live[n] = f->size > f->dead ? f->size - f->dead : 0;
            m->all[n++] = f->fid;
        }
    }
    pthread_mutex_unlock(&db->write_mu);
    /* Inputs are synced files: those rotation sealed (the last maybe just
     * now) are synced before the merge may remove them. */
    if (!rc) rc = cy_files_sync_sealed(db);
    cy_free(t);
    if (rc) return rc;
    if (!m->all || !m->live || !m->sorted_inputs || !m->dropped)
        return cy_err(db, CALYPSO_ENOMEM, "merge inputs");
    m->nall = n;
    return CALYPSO_OK;
}

static void cy_merge_free(cy_merge *m)
{
    if (m->out_fd >= 0) cy_os_close(m->out_fd);
    cy_free(m->all);
    cy_free(m->live);
    for (uint32_t i = 0; m->locs && i < m->nsteps; i++) cy_free(m->locs[i].v);
    cy_free(m->locs);
    cy_free(m->step_at);
    cy_free(m->fid_step);
    cy_free(m->sorted_inputs);
    cy_free(m->dropped);
    cy_free(m->outputs);
    cy_free(m->out_sizes);
    cy_free(m->hint_sizes);
    cy_free(m->hint.p);
    cy_free(m->relocs);
    cy_free(m->obuf);
    cy_keylist_free(&m->keys);
}

/* Removes the inputs of a step that wrote nothing (every record in them
 * dead or expired), oldest first, each removal durable before the next:
 * a tombstone can only kill a record older than itself, so whatever prefix
 * of them a crash leaves removed, no deleted key comes back. No COMMIT, no
 * merge/ directory: on a full disk this needs no space at all. */
static int cy_merge_drop_dead(cy_merge *m)
{
    cy_merge_swap_keydir(m);                 /* expired keys leave the keydir */
    cy_merge_at("swapped");
    int rc = cy_merge_drop_inputs(m);
    if (!rc && !(rc = cy_dir_files_lock(m->db))) {
        for (uint32_t i = 0; i < m->ninputs && !rc; i++)
            rc = cy_merge_remove_inputs(m->db, m->inputs + i, 1);
        cy_dir_files_unlock(m->db);
    }
    if (!rc) cy_merge_at("removed");
    return rc;
}

/* One step (steps 2-6 of the file comment) over m->inputs. A failure
 * before COMMIT leaves nothing behind and the handle as it was; after
 * COMMIT it leaves the job to the next open and the handle refuses
 * writes. */
static int cy_merge_step(cy_merge *m)
{
    calypso *db = m->db;
    m->noutputs = 0;
    m->nrelocs = 0;
    m->olen = 0;
    m->hint.len = m->hint.count = 0;
    cy_keylist_clear(&m->keys);
    memcpy(m->sorted_inputs, m->inputs, m->ninputs * sizeof *m->inputs);
    qsort(m->sorted_inputs, m->ninputs, sizeof *m->sorted_inputs, cy_merge_cmp_fid);
    int rc = CALYPSO_OK;
    if (__atomic_load_n(&db->bg.stop, __ATOMIC_RELAXED))
        return cy_err(db, CALYPSO_EIO, "merge cancelled: the database is closing");
    if (cy_merge_by_key(m, m->step))
        rc = cy_merge_copy_by_key(m, m->step);
    else
        for (uint32_t i = 0; i < m->ninputs && !rc; i++) rc = cy_merge_copy_file(m, m->inputs[i]);
    if (!rc) rc = cy_merge_close_output(m);
    if (!rc && m->noutputs == 0) return cy_merge_drop_dead(m);
    if (!rc && (rc = cy_os_sync_dir(m->dir)) < 0) rc = cy_err_errno(db, rc, "fsync", m->dir);
    if (!rc) cy_merge_at("copied");
    /* From COMMIT to the inputs' removal the file set changes: readers in
     * other processes must not list it half-changed (dir.c). */
    int files_locked = 0;
    if (!rc && !(rc = cy_dir_files_lock(db))) files_locked = 1;
    if (!rc) rc = cy_merge_write_commit(m);
    if (rc) {
        if (files_locked) cy_dir_files_unlock(db);
        /* Not decided: throw the attempt away; the old files are intact. */
        if (m->out_fd >= 0) { cy_os_close(m->out_fd); m->out_fd = -1; }
        cy_merge_rmdir(m->dir);
        return rc;
    }
    /* Decided. From here a failure leaves COMMIT behind and the next open
     * finishes the job; this handle stops writing until then. */
    cy_merge_at("committed");
    rc = cy_merge_move_outputs(db, m->dir, m->outputs, m->noutputs);
    if (!rc) cy_merge_at("moved");
    if (!rc) rc = cy_merge_add_outputs(m);
    if (!rc) {
        cy_merge_swap_keydir(m);
        cy_merge_at("swapped");
        /* Off the table first (no reader can reach them after this), then
         * off the disk. */
        rc = cy_merge_drop_inputs(m);
        if (!rc) rc = cy_merge_remove_inputs(db, m->inputs, m->ninputs);
    }
    if (!rc) {
        cy_merge_at("removed");
        cy_merge_rmdir(m->dir);
        cy_os_sync_dir(db->path);
    } else {
        __atomic_store_n(&db->health.broken, 1, __ATOMIC_RELAXED);
    }
    cy_dir_files_unlock(db);
    return rc;
}

/* Whole merge, step after step; maint_mu held. A step that meets a full
 * disk before its COMMIT releases the space reserve and runs once more. */
static int cy_merge_run(calypso *db)
{
    cy_merge m = { .db = db, .out_fd = -1, .now = cy_now_ms() };
    snprintf(m.dir, sizeof m.dir, "%s/merge", db->path);
    int rc = cy_merge_pick_inputs(&m);
    if (rc || m.nall == 0) {
        cy_merge_free(&m);
        return rc;
    }
    cy_merge_rmdir(m.dir);
    rc = cy_merge_collect(&m);
    if (!rc) cy_merge_at("started");
    for (m.step = 0; m.step < m.nsteps && !rc; m.step++) {
        m.inputs = m.all + m.step_at[m.step];
        m.ninputs = m.step_at[m.step + 1] - m.step_at[m.step];
        rc = cy_merge_step(&m);
        if (rc == CALYPSO_ENOSPC && !__atomic_load_n(&db->health.broken, __ATOMIC_RELAXED) &&
            cy_space_full(db))
            rc = cy_merge_step(&m);
        /* A step that freed space lets the handle hold its reserve again,
         * to give back if a later step meets a full disk. */
        if (!rc && cy_space_low(db)) cy_space_retake(db);
        cy_free(m.locs[m.step].v);             /* done with: give it back now */
        m.locs[m.step] = (cy_merge_locs){ 0 };
    }
    if (!rc) {
        cy_merge_at("done");
        cy_wrlock(&db->kd_lock);
        db->merge.count++;
        cy_unlock(&db->kd_lock);
    }
    /* Space the merge freed may let the handle take its reserve back. */
    if (cy_space_low(db)) cy_space_retake(db);
    cy_merge_free(&m);
    return rc;
}

int calypso_merge(calypso *h)
{
    calypso *db = cy_base(h);   /* the whole database, from any of its handles */
    int rc = cy_db_writable(db);
    if (rc) return rc;
    int idle = 0;
    if (!__atomic_compare_exchange_n(&db->merge.running, &idle, 1, 0, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return cy_err(db, CALYPSO_EMERGING, "another merge is running");
    pthread_mutex_lock(&db->maint_mu);   /* waits out a backup or a hint */
    rc = cy_merge_run(db);
    pthread_mutex_unlock(&db->maint_mu);
    __atomic_store_n(&db->merge.running, 0, __ATOMIC_RELEASE);
    return rc;
}

CY_INTERNAL int cy_merge_due(calypso *db)
{
    if (db->opt.merge_trigger_ratio < 0) return 0;
    uint64_t total = 0, disk, dead;
    uint32_t files;
    cy_rdlock(&db->kd_lock);
    dead = db->files.dead;
    cy_unlock(&db->kd_lock);
    cy_files_totals(db, &files, &total, &disk);
    return total > 0 && dead >= db->opt.merge_min_dead_bytes &&
           (double)dead / (double)total >= db->opt.merge_trigger_ratio;
}
