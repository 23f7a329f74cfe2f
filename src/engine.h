/*
 * engine.h: the database handle and what the engine's modules share about
 * it: the file table (files.c), the on-disk directory (dir.c), the key
 * directory and its iterator (keydir.c), recovery (recover.c), the write
 * path (write.c) and durability (commit.c), walks (walk.c), the TTL index
 * (ttl.c), key lists (keylist.c), the background thread (bg.c) and backup
 * (backup.c).
 *
 * Locks, always taken in this order, never held across a user callback:
 *   maint_mu     one of merge, backup or hint writing at a time (they
 *                remove or read whole files).
 *   write_mu     serializes writers: appends, rotation, keydir changes. It
 *                is also held for every change to the file table and to
 *                dead-byte counts, so holding it makes those stable.
 *   kd_lock      rwlock over every namespace's keydir and TTL trees, the
 *                namespace catalog (ns.c) and `dead`. Readers take it
 *                shared for a lookup only, never across disk I/O.
 *   cy_file.mu   one file's descriptor, and the opening and eviction of
 *                its mapping (files.c). Never held across a wait for others.
 *   sync_mu      group commit state.
 *   ids.mu       file id allocation (ids.c); after write_mu.
 *   space.mu     the space reserve (space.c); after write_mu.
 *   bg_wake.mu   background thread's wake-ups.
 *
 * The file table takes no lock to read: it is published whole behind one
 * atomic pointer (db->ftab) and replaced, never edited, under write_mu.
 * What a reader reaches through it (the table, a file, a mapping) stays
 * valid while the reader is inside an epoch (epoch.c): a get enters before
 * its keydir lookup and leaves after copying the value, so a merge or an
 * eviction that retires a file releases it only once no reader that could
 * hold its locations remains.
 */
/*
 * The modules in layers, bottom-up: a module calls only modules on lower
 * lines (tools/check-layers --graph prints who calls whom; `make
 * check-layers` fails on any cycle, among modules or among headers).
 *
 *   alloc os record error epoch   the lower layer (internal.h), errors, epochs
 *   art dir keylist space         the ART, the directory, key lists, reserve
 *   guard ids scan ttl watermark  call checks and handle health, file ids,
 *                                 datafile scans, TTL index, WATERMARK
 *   files                         the file table, dead bytes
 *   commit view backup            append and group commit; snapshot views;
 *                                 backup
 *   ns                            the namespace catalog and its calls
 *   keydir                        apply, compare-and-swap, the iterator
 *   batch hint                    batches; hint files
 *   write merge                   puts and deletes; merge
 *   walk recover bg               walks; open's replay (which finishes an
 *                                 interrupted merge); the background thread
 *   read db                       gets and figures; the lifecycle (open
 *                                 starts recovery and the background thread)
 *   getmany txn                   multi-get; transactions
 *   cursor                        cursors
 *
 * Upward calls are not made; where a lower module must reach a higher one,
 * the handle owns the means: files.c and commit.c wake the background
 * thread through db->bg_wake (cy_wake_kick), not by calling bg.c; the
 * checks every call makes (cy_db_usable, cy_db_writable) and the record of
 * a failed fdatasync live in guard.c, below everything that serves calls,
 * not in the lifecycle (db.c); cy_keydir_get is inline over a namespace's
 * trees, so that view.c reads the keydir without calling keydir.c (which
 * calls view.c to note changes).
 */
#ifndef CY_ENGINE_H
#define CY_ENGINE_H

#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <time.h>

// >> locks --------------------------------------------------------------------
/* kd_lock is a reader-writer lock of our own: one word,
 * readers counted in its low bits, a writer bit, and a bit by which a
 * waiting writer holds back new readers (writers are short and must not
 * starve behind a stream of gets). Taking or releasing one is a single
 * atomic operation, a few instructions against the hundred-odd of a
 * pthread_rwlock_t pair per call, and every get takes one.
 *
 * The critical sections are short (a tree lookup or update, a table
 * edit, a record copy), shorter than putting a thread to sleep and waking
 * it. So a thread that finds a lock taken spins a few microseconds, then
 * yields, then sleeps in short naps: nothing is ever woken, so a release
 * never makes a system call. */
typedef struct cy_rwlock { uint32_t state; } cy_rwlock;

#define CY_RW_WRITER  0x80000000u   /* held by a writer                     */
#define CY_RW_WAITING 0x40000000u   /* a writer waits: new readers hold off  */
#define CY_RW_READERS 0x3fffffffu   /* readers holding it                    */
#define CY_LOCK_SPINS  256
#define CY_LOCK_YIELDS 64

static inline void cy_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Waits a little longer each time: pause, then yield, then 50 us naps. */
static inline void cy_lock_backoff(unsigned *tries)
{
    unsigned t = (*tries)++;
    if (t < CY_LOCK_SPINS) {
        cy_cpu_relax();
    } else if (t < CY_LOCK_SPINS + CY_LOCK_YIELDS) {
        sched_yield();
    } else {
        struct timespec nap = { 0, 50000 };
        nanosleep(&nap, NULL);
    }
}

static inline void cy_rwlock_init(cy_rwlock *l)
{
    __atomic_store_n(&l->state, 0, __ATOMIC_RELAXED);
}

static inline void cy_rdlock(cy_rwlock *l)
{
    unsigned tries = 0;
    uint32_t s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    for (;;) {
        if (!(s & (CY_RW_WRITER | CY_RW_WAITING))) {
            if (__atomic_compare_exchange_n(&l->state, &s, s + 1, 1, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
            continue;                       /* s reloaded by the failed exchange */
        }
        cy_lock_backoff(&tries);
        s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    }
}

static inline void cy_wrlock(cy_rwlock *l)
{
    unsigned tries = 0;
    uint32_t s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    for (;;) {
        if (!(s & (CY_RW_WRITER | CY_RW_READERS))) {
            /* Free: take it (clearing WAITING; other waiting writers set
             * it again). */
            if (__atomic_compare_exchange_n(&l->state, &s, CY_RW_WRITER, 1, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
            continue;
        }
        if (!(s & CY_RW_WAITING) &&
            !__atomic_compare_exchange_n(&l->state, &s, s | CY_RW_WAITING, 1, __ATOMIC_RELAXED,
                                         __ATOMIC_RELAXED))
            continue;
        cy_lock_backoff(&tries);
        s = __atomic_load_n(&l->state, __ATOMIC_RELAXED);
    }
}

/* Releases a read or a write hold: while a writer holds the lock no reader
 * can, so the writer bit says which this is. */
static inline void cy_unlock(cy_rwlock *l)
{
    if (__atomic_load_n(&l->state, __ATOMIC_RELAXED) & CY_RW_WRITER)
        __atomic_fetch_and(&l->state, ~CY_RW_WRITER, __ATOMIC_RELEASE);
    else
        __atomic_fetch_sub(&l->state, 1, __ATOMIC_RELEASE);
}

// >> epochs (epoch.c) ----------------------------------------------------------
#define CY_EPOCH_STRIPES 32

/* Readers counted per phase; 128 bytes apart so that stripes never share a
 * cache line, whatever the handle's alignment. */
typedef struct cy_epoch_stripe {
    uint32_t cnt[2];
    char     pad[120];
} cy_epoch_stripe;

/* Something unpublished, waiting on the limbo list for a grace period.
 * Embedded in what it releases. */
typedef struct cy_retired {
    struct cy_retired *next;
    uint64_t           tag;     /* grace periods begun when retired */
    void             (*release)(struct cy_retired *);
} cy_retired;

typedef struct cy_epoch {
    cy_epoch_stripe  stripe[CY_EPOCH_STRIPES];
    uint32_t         phase;     /* the counter new readers take (low bit) */
    uint64_t         started, done;   /* grace periods begun, completed   */
    pthread_mutex_t  sync_mu;
    pthread_mutex_t  limbo_mu;
    cy_retired      *limbo;
    uint32_t         nlimbo;
} cy_epoch;

CY_INTERNAL uint32_t cy_epoch_slot(void);
CY_INTERNAL void cy_epoch_init(cy_epoch *e);
CY_INTERNAL void cy_epoch_destroy(cy_epoch *e);
/* Waits for every reader inside an epoch now to leave. The caller is not
 * inside one and holds no engine lock. */
CY_INTERNAL void cy_epoch_sync(cy_epoch *e);
/* Hands r to the limbo list: release(r) runs after a grace period. */
CY_INTERNAL void cy_epoch_retire(cy_epoch *e, cy_retired *r, void (*release)(cy_retired *));
CY_INTERNAL int  cy_epoch_pending(cy_epoch *e);
/* Waits for a grace period and releases what it frees, if anything waits. */
CY_INTERNAL void cy_epoch_reclaim(cy_epoch *e);

/* Announces a reader; returns the token cy_epoch_leave needs. The add is
 * a full barrier: the reader's loads of published pointers come after it
 * (see epoch.c for why that matters). */
static inline uint32_t cy_epoch_enter(cy_epoch *e)
{
    uint32_t s = cy_epoch_slot();
    uint32_t p = __atomic_load_n(&e->phase, __ATOMIC_RELAXED) & 1;
    __atomic_fetch_add(&e->stripe[s].cnt[p], 1, __ATOMIC_SEQ_CST);
#if !defined(__x86_64__) && !defined(__i386__)
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
#endif
    return s << 1 | p;
}

static inline void cy_epoch_leave(cy_epoch *e, uint32_t token)
{
    __atomic_fetch_sub(&e->stripe[token >> 1].cnt[token & 1], 1, __ATOMIC_RELEASE);
}

// >> file table ---------------------------------------------------------------

typedef struct cy_file {
    uint32_t fid;
    int      fd;          /* -1 while a sealed file's descriptor is closed
                             (changed under mu; the active file's is read
                             under write_mu)                               */
    uint8_t *map;         /* shared mapping of the file, NULL if none:
                             stored with release after map_len, loaded with
                             acquire; a reader may use what it loaded until
                             it leaves its epoch                           */
    uint64_t map_len;     /* its length (the active file: max_datafile_size);
                             only ever shrinks while mapped               */
    int      hold_fd;     /* a read-only handle's descriptor on the file,
                             kept from open to close (-1 if none): a file
                             a writer's merge unlinks stays readable; fd
                             may borrow it (never closed through fd)      */
    pthread_mutex_t mu;   /* fd, and opening or evicting the mapping       */
    uint32_t pins;        /* group-commit leaders syncing fd (atomic): the
                             descriptor is not closed while pinned         */
    uint64_t alloc;       /* active file: bytes allocated on disk            */
    uint64_t zeroed;      /* active file under SYNC_ALWAYS: zeros written
                             through the mapping up to here (files.c)       */
    uint64_t size;        /* bytes of records (the active file grows)       */
    uint64_t dead;        /* bytes of records no longer live                 */
    uint64_t hint_size;   /* bytes of its hint file, 0 if none (atomic; set
                             through cy_files_set_hint)                    */
    uint64_t hint_covers; /* bytes of the datafile its hint describes: all
                             of a sealed file, a prefix of the active one   */
    uint64_t last_used;   /* tick of the last read, for LRU eviction         */
    int      sealed;      /* never written again (atomic: set under write_mu) */
    int      hint_failed; /* its hint could not be written: do not retry     */
    uint64_t counted_size, counted_disk; /* what the table's totals hold
                             for it (files.c, under write_mu)              */
} cy_file;

/* The published file table: immutable once published, replaced whole. */
typedef struct cy_ftab {
    cy_retired retired;   /* on the limbo list once replaced              */
    uint32_t   n;
    cy_file   *f[];       /* sorted by fid                                */
} cy_ftab;
// >> file ids (ids.c) and disk space (space.c) ---------------------------------

enum { CY_IDS_REGULAR = 0, CY_IDS_MERGED = 1, CY_IDS_NS = 2 };

typedef struct cy_ids {
    pthread_mutex_t mu;
    uint64_t        next[3];    /* next id to hand out, per space (mu)      */
    uint64_t        limit[3];   /* durable in IDS: no id at or above it was
                                   ever handed out (mu)                     */
} cy_ids;

typedef struct cy_space {
    pthread_mutex_t mu;
    int             low;        /* the disk filled: RESERVE released, puts
                                   refused (atomic; changed under mu)       */
    uint64_t        held;       /* bytes RESERVE holds (mu)                 */
    uint64_t        last_try_ns; /* last attempt to take it back from a put */
} cy_space;

// >> namespaces (ns.c) ----------------------------------------------------------
/* One namespace's key directory: the default namespace's is embedded in
 * the database handle (ns0), a named one's is allocated and listed in the
 * catalog (cat). Its trees and counts are under kd_lock like the handle's
 * were; exp_count also under exp_mu for a shared holder (ttl.c). */
typedef struct cy_ns {
    uint32_t id;          /* 0: the default namespace                        */
    int      dropped;     /* its drop was applied (write_mu and kd_lock
                             exclusive): no keys, refuses writes             */
    uint32_t refs;        /* handles and workers holding it (kd_lock
                             exclusive): a dropped one is freed at 0        */
    cy_loc   created;     /* its create record, for merge and dead bytes   */
    cy_art   keydir;
    cy_art   ttl_by_key;  /* key -> expiry (in loc.off)                      */
    cy_art   ttl_by_time; /* be64(expiry) || key -> nothing                  */
    cy_art   history;     /* views (view.c): key -> chain of earlier states */
    uint64_t live_bytes;  /* bytes of the records its keydir points at       */
    uint64_t exp_asof;    /* TTL entries expiring at or before this          */
    uint64_t exp_count;   /* ... number exp_count                            */
    uint32_t nlen;
    uint8_t  name[CALYPSO_NS_MAX_NAME];
} cy_ns;

// >> wake-ups -------------------------------------------------------------------
/* A condition a thread sleeps on and others kick: the background thread
 * (bg.c) sleeps on the handle's bg_wake, and the modules below it (files.c
 * when a file is sealed, commit.c when write-back is due) kick it through
 * cy_wake_kick without calling up into bg.c. */
typedef struct cy_wake {
    pthread_mutex_t mu;
    pthread_cond_t  cv;
} cy_wake;

static inline void cy_wake_kick(cy_wake *w)
{
    pthread_mutex_lock(&w->mu);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

// >> handle ---------------------------------------------------------------

struct calypso {
    char           *path;
    calypso_options opt;
    int             lock_fd;
    int             writer_live;  /* read-only: a writer held the database
                                     open when this handle opened          */
    uint32_t       *skip_fids;    /* read-only, during open: datafiles a
                                     decided, unfinished merge left that the
                                     replay leaves out (merge.c)           */
    uint32_t        nskip;
    int             failed;       /* reopen failed: refuse all but close     */
    int             broken;       /* a write could not be undone, or an
                                     fdatasync failed: no writes (atomic)    */
    int             sync_err;     /* the first failed fdatasync's -errno,
                                     sticky until close (atomic)             */
    uint32_t        fork_gen;     /* the process's fork generation at open   */

    /* A namespace handle (ns.c) is a struct calypso too: base names its
     * database handle and ns its namespace; nothing else in it is used
     * (the public calls go to base at once, cy_base). */
    calypso         *base;        /* NULL on the database handle            */
    cy_ns           *ns;          /* the namespace this handle works on:
                                     &ns0 on the database handle            */
    uint32_t         ns_handles;  /* namespace handles open (atomic)        */

    pthread_mutex_t  write_mu;
    cy_rwlock        kd_lock;
    cy_ns            ns0;         /* the default namespace                   */
    cy_ns          **cat;         /* named namespaces, by id (kd_lock)       */
    uint32_t         ncat, catcap;
    uint64_t         dead;        /* dead bytes over all files               */
    /* snapshot views (view.c): under kd_lock, the retained files under view_mu */
    uint64_t         commit_seq;  /* changes applied to the keydir           */
    uint32_t         views_open;
    uint64_t         view_lost;   /* a change not noted for views: its seq   */
    pthread_mutex_t  view_mu;
    cy_file        **retained;    /* files merges removed while views were open */
    uint32_t         nretained, retained_cap;
    pthread_mutex_t  exp_mu;

    cy_epoch         epoch;       /* readers, grace periods, limbo list      */
    cy_ftab         *ftab;        /* the file table (atomic; replaced under
                                     write_mu)                               */
    uint32_t         open_files;  /* files with a descriptor or mapping (atomic) */
    /* Running totals over the table, so that figures never walk it
     * (files.c; atomic for readers, changed under write_mu but hints'). */
    uint32_t         nfiles;      /* files in the table                     */
    uint64_t         files_size;  /* bytes of records                       */
    uint64_t         files_disk;  /* bytes on disk, space allocated ahead of
                                     the active file's data included        */
    uint64_t         hints_disk;  /* bytes of hint files                    */
    cy_file         *active;      /* NULL on a read-only handle (write_mu)   */
    uint64_t         tick;        /* advanced when a file is opened: reads
                                     stamp their file with it (cy_files_touch) */

    uint8_t         *wbuf;        /* record encoding buffer (write_mu)       */
    size_t           wcap;

    pthread_mutex_t  sync_mu;
    pthread_cond_t   sync_cv;
    int              syncing;     /* a leader's fdatasync is under way
                                     (written under sync_mu, atomically)     */
    uint64_t         written_seq; /* bytes appended since open (write_mu)    */
    uint64_t         synced_seq;  /* of those, durable (written under
                                     sync_mu, atomically: followers spin on
                                     it)                                     */
    uint64_t         sync_ns;     /* recent fdatasync time, a moving average
                                     (atomic)                                */
    uint32_t         sync_spinners; /* followers spinning (atomic)          */
    uint32_t         durable_writers;   /* SYNC_ALWAYS puts and deletes under
                                           way (atomic)                     */
    uint32_t         durable_batch;     /* durable appends the next sync
                                           will cover (written under write_mu) */
    uint32_t         durable_group;     /* writers the last sync covered    */
    uint32_t         synced_fid;  /* a successful fdatasync covered [0, synced_off) */
    uint64_t         synced_off;  /* of synced_fid: both stored under sync_mu (atomically) */
    struct cy_wm    *wm;          /* its durable copy (watermark.c)          */

    uint64_t         wb_kicked;   /* written_seq when write-back was last
                                     asked of the background thread (write_mu) */
    int              bg_writeback; /* write-back asked (atomic)              */
    pthread_t        bg;
    int              bg_started;
    cy_wake          bg_wake;     /* the background thread sleeps on it      */
    int              bg_stop;
    int              bg_hints_pending;
    pthread_mutex_t  maint_mu;    /* held by whoever removes or copies whole
                                     files: merge, backup, hint writing      */
    int              merging;     /* a merge runs (atomic)                   */
    uint64_t         last_merge_check;

    cy_ids           ids;
    cy_space         space;

    uint64_t         merges;
    char             note[512];   /* what auto_recovery dropped              */
};

// >> errors (error.c) ----------------------------------------------------------
/* Records the detail of an error for this thread and db and returns rc. */
CY_INTERNAL int cy_err(calypso *db, int rc, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* errno (positive or negative) to a code: ENOMEM -> CALYPSO_ENOMEM, ENOSPC
 * and EDQUOT -> CALYPSO_ENOSPC, anything else CALYPSO_EIO. */
CY_INTERNAL int cy_err_errno(calypso *db, int neg_errno, const char *what, const char *file);
CY_INTERNAL void cy_err_forget(calypso *db);
/* Appends to the note that open reports through calypso_errmsg (what
 * recovery cut or auto_recovery dropped). */
CY_INTERNAL void cy_note(calypso *db, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Moves this thread's detail for `from` to `to` (open failures: to NULL). */
CY_INTERNAL void cy_err_move(calypso *from, calypso *to);

// >> clock (error.c) -------------------------------------------------------------
/* Milliseconds since the epoch. Tests move time with cy_clock_shift. */
CY_INTERNAL uint64_t cy_now_ms(void);
CY_INTERNAL void     cy_clock_shift(int64_t ms);

// >> directory (dir.c) -----------------------------------------------------------
#define CY_FORMAT_VERSION 1
CY_INTERNAL void cy_dir_data_path(const calypso *db, uint32_t fid, char *out, size_t cap);
CY_INTERNAL void cy_dir_hint_path(const calypso *db, uint32_t fid, char *out, size_t cap);
/* Makes the creation of directory `path` durable: fsync of its parent. */
CY_INTERNAL int  cy_dir_sync_parent(const char *path);
/* mkdir -p: creates path and every missing directory above it (mode), each
 * made durable by an fsync of its parent. A component that exists and is
 * not a directory: CALYPSO_EINVAL naming it. */
CY_INTERNAL int  cy_dir_make_all(calypso *db, const char *path, uint32_t mode);
/* Takes LOCK as a writer (its flock, byte 0 and byte 1 shared) or as a
 * reader (byte 1 shared only): see dir.c. CALYPSO_ELOCKED when refused. */
CY_INTERNAL int  cy_dir_lock(calypso *db);
CY_INTERNAL void cy_dir_unlock(calypso *db);
/* 1 when a writer holds the database open (asked of LOCK; takes nothing). */
CY_INTERNAL int  cy_dir_writer_live(calypso *db);
/* The file set lock (LOCK byte 2): exclusive for a writer about to rename
 * or remove datafiles, shared for a reader listing and replaying them.
 * Waits (at most 30 s: CALYPSO_ELOCKED). No-op without a LOCK file. */
CY_INTERNAL int  cy_dir_files_lock(calypso *db);
CY_INTERNAL void cy_dir_files_unlock(calypso *db);
CY_INTERNAL int  cy_dir_meta(calypso *db, int fresh);
/* Lists datafile ids (sorted) and which have hint files; removes leftover
 * temporary files on a writable handle. */
CY_INTERNAL int  cy_dir_scan(calypso *db, uint32_t **fids, uint32_t *n,
                             uint8_t **has_hint);
/* Writes path atomically: tmp file, fdatasync, rename, directory fsync. */
CY_INTERNAL int  cy_dir_write_file(calypso *db, const char *dir, const char *name,
                                   const void *data, size_t len);

// >> synced-up-to watermark (watermark.c) -----------------------------------------
typedef struct cy_wm cy_wm;
#define CY_WM_INTERVAL_MS 250u           /* persisted at most this often   */
#define CY_WM_NONE UINT64_MAX            /* no WATERMARK: the older rule   */
#define CY_WM_ALL  (UINT64_MAX - 1)      /* the whole file was synced      */
/* At open, before replay: reads WATERMARK (absent: the older rule). */
CY_INTERNAL int      cy_wm_load(calypso *db);
/* Bytes of the newest regular datafile fid a sync is known to have covered. */
CY_INTERNAL uint64_t cy_wm_limit(calypso *db, uint32_t fid);
/* After replay: CALYPSO_ECORRUPT when the newest file (fid, size) lacks
 * bytes the watermark says were synced. */
CY_INTERNAL int      cy_wm_check(calypso *db, uint32_t fid, uint64_t size);
/* Writable open, after replay: writes WATERMARK if missing or now too high. */
CY_INTERNAL int      cy_wm_open(calypso *db, uint32_t fid, uint64_t size);
/* Writes (synced_fid, synced_off) if it moved; `limited`: not more often
 * than every CY_WM_INTERVAL_MS (the background thread). */
CY_INTERNAL void     cy_wm_persist(calypso *db, int limited);
/* At close, after the final sync: persists, then frees. */
CY_INTERNAL void     cy_wm_close(calypso *db);
/* Test hook: the interval of limited persists. */
CY_INTERNAL void     cy_wm_set_interval(uint32_t ms);
// >> namespaces (ns.c) -------------------------------------------------------------
/* The database handle of h (h itself, or a namespace handle's base). */
static inline calypso *cy_base(calypso *h)
{
    return h && h->base ? h->base : h;
}
/* The namespace h works on (NULL for NULL). */
static inline cy_ns *cy_ns_of(calypso *h)
{
    return h ? h->ns : NULL;
}
CY_INTERNAL void   cy_ns_init(cy_ns *ns, uint32_t id);
/* Frees a namespace's trees (not the struct). */
CY_INTERNAL void   cy_ns_clear(cy_ns *ns);
/* The namespace of id (0: the default), or NULL when not in the catalog.
 * kd_lock held (or write_mu, which every catalog change holds too). */
CY_INTERNAL cy_ns *cy_ns_find(calypso *db, uint32_t id);
/* Applies a catalog record (CY_REC_NS_CREATE or _DROP) at (fid, off,
 * size), as replay and the write path do. kd_lock exclusive. */
CY_INTERNAL int    cy_ns_apply(calypso *db, int type, uint32_t id, const uint8_t *name,
                               size_t nlen, uint32_t fid, uint64_t off, uint32_t size);
/* Frees the catalog (close). */
CY_INTERNAL void   cy_ns_close_all(calypso *db);
/* After replay: raises the namespace id limit past every id seen. */
CY_INTERNAL void   cy_ns_recovered(calypso *db);
/* Pins ns against being freed once dropped (kd_lock not held); unpin
 * frees a dropped one at the last reference. */
CY_INTERNAL void   cy_ns_pin(calypso *db, cy_ns *ns);
CY_INTERNAL void   cy_ns_unpin(calypso *db, cy_ns *ns);
/* Refuses a write to a dropped namespace (write_mu held). */
CY_INTERNAL int    cy_ns_check_live(calypso *db, const cy_ns *ns);
/* Runs fn(db, ns, ctx) for every namespace, the default first, each
 * pinned while fn runs (no lock held). Stops at fn's first non-zero. */
CY_INTERNAL int    cy_ns_each(calypso *db, int (*fn)(calypso *, cy_ns *, void *), void *ctx);
/* Closing a namespace handle (db.c's calypso_close). */
CY_INTERNAL int    cy_ns_close_handle(calypso *h);

// >> file ids (ids.c) -------------------------------------------------------------
/* At open, after any decided merge is finished: reads IDS (or derives the
 * limits from the datafiles fids[0..n), writing IDS on a read-write
 * handle) and starts each space at its limit. */
CY_INTERNAL int  cy_ids_load(calypso *db, const uint32_t *fids, uint32_t n);
/* Hands out the next id of space (CY_IDS_REGULAR or CY_IDS_MERGED), first
 * making a higher limit durable when the id reaches the current one.
 * Errors: CALYPSO_EIO when the space is exhausted, or writing IDS failed. */
CY_INTERNAL int  cy_ids_take(calypso *db, int space, uint32_t *fid);

// >> disk space (space.c) ----------------------------------------------------------
/* Bytes RESERVE holds for a database with these options. */
CY_INTERNAL uint64_t cy_space_reserve_size(const calypso *db);
/* At a read-write open: takes the reserve; a full disk leaves the handle
 * low on space (not an error). */
CY_INTERNAL int  cy_space_open(calypso *db);
/* A write met ENOSPC: releases the reserve and marks the handle low on
 * space. Returns 1 when it released space just now (a delete or a merge
 * step may try again), 0 when there was none to release. */
CY_INTERNAL int  cy_space_full(calypso *db);
/* Tries to take the reserve back; 1 when held again (the handle is no
 * longer low on space). */
CY_INTERNAL int  cy_space_retake(calypso *db);
/* CALYPSO_OK when a put may go ahead; CALYPSO_ENOSPC (with a message) while
 * the handle is low on space and the reserve cannot be taken back. */
CY_INTERNAL int  cy_space_put_check(calypso *db);
static inline int cy_space_low(calypso *db)
{
    return __atomic_load_n(&db->space.low, __ATOMIC_ACQUIRE);
}

// >> file table (files.c) --------------------------------------------------------
/* The file fid in the current table, or NULL. Inside an epoch or under
 * write_mu. */
CY_INTERNAL cy_file *cy_files_find(calypso *db, uint32_t fid);
/* Adds a file to the table (a new table is published). write_mu held, or
 * the handle not yet shared (open). */
CY_INTERNAL int      cy_files_add(calypso *db, uint32_t fid, int fd, uint64_t size, int sealed);
/* Takes the files named in fids (sorted) off the table and returns them in
 * out (n entries, in fids order; NULL for an id not in the table).
 * write_mu held. The files stay mapped: release them with
 * cy_files_release after a grace period. */
CY_INTERNAL int      cy_files_remove(calypso *db, const uint32_t *fids, uint32_t n,
                                     cy_file **out);
/* Marks f as read now, for LRU eviction. The clock only moves when a file
 * is opened, so a read stores (rarely) and never read-modify-writes a
 * shared word: readers on several cores do not bounce a cache line. Files
 * read since the last open tie, which is all eviction needs. */
static inline void cy_files_touch(calypso *db, cy_file *f)
{
    uint64_t now = __atomic_load_n(&db->tick, __ATOMIC_RELAXED);
    if (__atomic_load_n(&f->last_used, __ATOMIC_RELAXED) != now)
        __atomic_store_n(&f->last_used, now, __ATOMIC_RELAXED);
}
/* The mapped bytes of [off, off+size) of f when its mapping covers them,
 * else NULL. Inside an epoch: the bytes stay valid until it is left. */
static inline const uint8_t *cy_files_mapped(cy_file *f, uint64_t off, uint64_t size)
{
    uint8_t *m = __atomic_load_n(&f->map, __ATOMIC_ACQUIRE);
    if (!m || off + size > __atomic_load_n(&f->map_len, __ATOMIC_RELAXED)) return NULL;
    return m + off;
}

typedef int (*cy_record_fn)(const uint8_t *rec, void *ctx);
/* Calls fn(record bytes, ctx) for the record (f, off, size): on the mapping
 * itself when the file is mapped (mapping it first if it is not open), else
 * on a copy read with pread. Inside an epoch. Returns fn's result or an
 * I/O error. */
CY_INTERNAL int      cy_files_with_record(calypso *db, cy_file *f, uint64_t off,
                                          uint32_t size, cy_record_fn fn, void *ctx);
/* Appends size bytes given as iovecs to the active file: through its
 * mapping (blocks allocated ahead in chunks) or with pwritev when the record
 * does not fit the mapping. write_mu held. */
CY_INTERNAL int      cy_files_append(calypso *db, const struct iovec *iov, int cnt, size_t size);
/* Undoes an append of size bytes at `off` of the active file. write_mu
 * held. */
CY_INTERNAL int      cy_files_unappend(calypso *db, uint64_t off, size_t size);
/* Unmaps, closes and frees a file taken off the table once no reader can
 * reach it (after a grace period). */
CY_INTERNAL void     cy_files_release(calypso *db, cy_file *f);
/* Gives the (newest, recovered) file fid the writable mapping of the active
 * file. */
CY_INTERNAL int      cy_files_activate(calypso *db, cy_file *f);
/* Cuts the active file's preallocated tail (at close). */
CY_INTERNAL int      cy_files_trim_active(calypso *db);
/* Releases every file, the table and the limbo list. Nothing else runs. */
CY_INTERNAL void     cy_files_close_all(calypso *db);
/* Seals the active file and makes a new one, with the next regular id
 * (cy_ids_take), active. */
CY_INTERNAL int      cy_files_rotate(calypso *db);
CY_INTERNAL int      cy_files_create(calypso *db, uint32_t fid);
/* The active file's descriptor, pinned for an fdatasync outside write_mu:
 * it is not closed until cy_files_unpin. write_mu held to pin. */
CY_INTERNAL cy_file *cy_files_pin_active(calypso *db);
/* Keeps fd as f's descriptor for the handle's life (read-only handles:
 * see hold_fd). */
CY_INTERNAL void     cy_files_hold_fd(cy_file *f, int fd);
/* Maps f (or opens its descriptor) now, so that it stays readable once
 * unlinked. */
CY_INTERNAL int      cy_files_hold_open(calypso *db, cy_file *f);
CY_INTERNAL void     cy_files_unpin(calypso *db, cy_file *f);
/* After a change to f's size or allocation: brings the table's totals up
 * to date with it. write_mu held, or the handle not yet shared. */
CY_INTERNAL void     cy_files_recount(calypso *db, cy_file *f);
/* Records that f's hint file has `size` bytes and describes the first
 * `covers` bytes of f. */
CY_INTERNAL void     cy_files_set_hint(calypso *db, cy_file *f, uint64_t size,
                                       uint64_t covers);
/* The table's totals, without a lock and without walking it: files, bytes
 * of records, bytes on disk (datafiles, with the space allocated ahead of
 * the active file's data, and hint files). */
CY_INTERNAL void     cy_files_totals(calypso *db, uint32_t *files, uint64_t *size,
                                     uint64_t *disk);
/* One file of the table as a snapshot lists it. */
typedef struct cy_file_info {
    uint32_t fid;
    int      active;      /* the active file                               */
    uint64_t size;        /* bytes of records                              */
    uint64_t dead;        /* of those, no longer live                      */
    uint64_t hint_size;   /* bytes of its hint file, 0 if none             */
    int      held_fd;     /* a read-only handle's descriptor of it, open for
                             the handle's life (borrowed), or -1           */
} cy_file_info;
/* Every file of the table, by fid, as it is now: n entries, freed with
 * cy_free; NULL (and *n = 0) when memory is short. write_mu held. */
CY_INTERNAL cy_file_info *cy_files_snapshot(calypso *db, uint32_t *n);
/* The id of a sealed file whose hint is owed (missing or covering less
 * than the file, and not failed before), or 0 when none is. */
CY_INTERNAL uint32_t cy_files_hint_owed(calypso *db);

// >> datafile scan (scan.c) ----------------------------------------------------
typedef struct cy_scan {
    calypso  *db;
    uint32_t  fid;
    int       fd;
    int       own_fd;     /* opened by cy_scan_open: closed by cy_scan_close */
    uint64_t  size;       /* file size                                       */
    uint8_t  *buf;
    size_t    cap;
    uint64_t  buf_off;    /* file offset of buf[0]                           */
    size_t    buf_len;
    char      path[4096];
} cy_scan;

/* Starts a scan of datafile fid through fd, or through a descriptor of its
 * own when fd < 0. */
CY_INTERNAL int     cy_scan_open(cy_scan *s, calypso *db, uint32_t fid, int fd);
CY_INTERNAL void    cy_scan_close(cy_scan *s);
/* Makes [off, off+n) available in s->buf; returns the bytes available from
 * off (fewer than n only at the end of the file) or a negative code. */
CY_INTERNAL int64_t cy_scan_fill(cy_scan *s, uint64_t off, size_t n);
/* The record at off: 1 with *r parsed and *rec its verified bytes (valid
 * until the next call); 0 when it is damaged (*why says how); or an error. */
CY_INTERNAL int     cy_scan_record(cy_scan *s, uint64_t off, cy_rec *r, const uint8_t **rec,
                                   const char **why);

// >> hint files (hint.c) ----------------------------------------------------------
/* A hint file being built in memory: entries, then the trailer. */
typedef struct cy_hint_buf { uint8_t *p; size_t len, cap; uint64_t count; } cy_hint_buf;
CY_INTERNAL int  cy_hint_add(cy_hint_buf *b, const cy_rec *r, const uint8_t *key, uint64_t off,
                             uint64_t size);
/* Puts the entries in key order, a key's records in file order (unless
 * they are already, or memory is short), and appends the trailer for a
 * datafile of data_size bytes. */
CY_INTERNAL int  cy_hint_finish(cy_hint_buf *b, uint64_t data_size);
/* Builds, from the datafile, and writes the hint of fid. */
CY_INTERNAL int  cy_hint_write(calypso *db, uint32_t fid);
/* Loads the hint of fid into the keydir when it is valid and describes at
 * most the file's `file_size` bytes; *covers receives how many (the caller
 * scans the rest) and *hint_bytes the hint file's size. CALYPSO_ECORRUPT if invalid: nothing applied then, and
 * the caller scans the whole datafile; but *covers = UINT64_MAX when the
 * hint's checksum held and its entries did not parse (some were applied):
 * then open must fail. */
CY_INTERNAL int  cy_hint_load(calypso *db, uint32_t fid, uint64_t file_size, uint64_t *covers,
                              uint64_t *hint_bytes);

// >> key lists (keylist.c) --------------------------------------------------------
/* Keys copied back to back into one buffer: key i = buf[off[i] .. off[i+1]). */
typedef struct cy_keylist {
    uint8_t  *buf;   size_t blen, bcap;
    size_t   *off;   size_t n, ncap;
} cy_keylist;
CY_INTERNAL int  cy_keylist_push(cy_keylist *l, const void *key, size_t klen);
CY_INTERNAL const uint8_t *cy_keylist_at(const cy_keylist *l, size_t i, size_t *klen);
/* Empties l, keeping its buffers. */
CY_INTERNAL void cy_keylist_clear(cy_keylist *l);
CY_INTERNAL void cy_keylist_free(cy_keylist *l);

// >> ttl index (ttl.c) -------------------------------------------------------------
CY_INTERNAL int  cy_ttl_set(cy_ns *ns, const void *key, size_t klen, uint64_t expiry);
CY_INTERNAL void cy_ttl_clear(cy_ns *ns, const void *key, size_t klen);
CY_INTERNAL uint64_t cy_ttl_get(cy_ns *ns, const void *key, size_t klen);
CY_INTERNAL uint64_t cy_ttl_count_expired(calypso *db, cy_ns *ns, uint64_t now);
/* Copies up to max expired keys (expiry <= now) into a list. */
CY_INTERNAL int  cy_ttl_expired(cy_ns *ns, uint64_t now, size_t max, cy_keylist *out);

// >> key directory (keydir.c) ---------------------------------------------------------
/* Applies a record found at (fid, off, size) to the keydir, as replay does
 * and as the write path does after appending. kd_lock held exclusively. */
CY_INTERNAL int  cy_keydir_apply(calypso *db, cy_ns *ns, int type, const uint8_t *key,
                                 size_t klen, uint64_t expiry, uint32_t fid, uint64_t off,
                                 uint32_t size);
/* Applies any record entry r (its key at key) at (fid, off, size): a
 * catalog record to the catalog, a put or tombstone to its namespace's
 * keydir, or, when its namespace is not in the catalog, counts it dead.
 * kd_lock held exclusively. */
CY_INTERNAL int  cy_keydir_apply_rec(calypso *db, const cy_rec *r, const uint8_t *key,
                                     uint32_t fid, uint64_t off, uint32_t size);
/* Looks key up; returns its loc (NULL when absent) and its expiry.
 * kd_lock held. Inline over the namespace's trees, so that the modules
 * below keydir.c (view.c) may look keys up too. */
static inline const cy_loc *cy_keydir_get(calypso *db, cy_ns *ns, const void *key, size_t klen,
                                          uint64_t *expiry)
{
    (void)db;
    const cy_loc *l = cy_art_search(&ns->keydir, key, klen);
    *expiry = l && (l->fid & CY_LOC_TTL) ? cy_ttl_get(ns, key, klen) : 0;
    return l;
}
/* Counts bytes of file fid dead (db->dead and the file's own count). Under
 * write_mu and kd_lock exclusive, or while the handle is not yet shared. */
CY_INTERNAL void cy_files_dead_add(calypso *db, uint32_t fid, uint64_t bytes);
/* File f left the table: its dead bytes leave db->dead with it. write_mu
 * and kd_lock exclusive. */
CY_INTERNAL void cy_files_dead_drop(calypso *db, const cy_file *f);

/* A record a merge copied (or dropped as expired): where it was, where its
 * copy is. */
typedef struct cy_kd_move {
    uint32_t old_fid, new_fid;  /* new_fid 0: not copied (expired)          */
    uint32_t size;              /* bytes of the record                       */
    uint64_t old_off, new_off;
    uint32_t ns;                /* its namespace, or the id a create makes  */
    int      create;            /* a namespace's create record (the catalog) */
} cy_kd_move;
/* 1 when the keydir of namespace ns (for a create record: the catalog)
 * still points at (fid, off) for key. Takes kd_lock shared. */
CY_INTERNAL int  cy_keydir_is_at(calypso *db, uint32_t ns, int create, const uint8_t *key,
                                 size_t klen, uint32_t fid, uint64_t off);
/* Merge's compare-and-swap: points key at its copy only if the keydir still
 * points at the old record (a write that landed meanwhile wins, and the
 * copy is dead); an expired record not copied takes its key out. write_mu
 * and kd_lock exclusive. */
CY_INTERNAL void cy_keydir_move(calypso *db, const cy_kd_move *mv, const uint8_t *key,
                                size_t klen);

/* The batched iterator: the one way to walk a namespace's keydir in order
 * (walks, cursors, merge, delete_all). Each gather takes kd_lock shared for
 * one batch, hands each key to a visitor under it, and releases it: the
 * visitor copies what it needs and does no I/O and calls no user code. A
 * batch visits at most `visit` keys, whatever the visitor makes of them
 * (expired keys passed over count too), so no lock hold grows with the
 * data; the next gather goes on after the last key visited. */
typedef struct cy_kd_ent {
    const uint8_t *key;    size_t klen;   /* valid during the visit only    */
    const cy_loc  *loc;     /* in the keydir; NULL: only `other` has the key */
    const cy_loc  *other;   /* in the other tree, or NULL                    */
    uint64_t       expiry;  /* loc's expiry (with CY_KD_EXPIRY), 0 none      */
    int            expired; /* expiry at or before the iterator's now        */
} cy_kd_ent;
/* A visitor returns CY_KD_FULL (the batch ends before this key, which is
 * not visited), CY_KD_PASS (visited), CY_KD_TAKE (visited and taken: counts
 * against the gather's max), or a negative code that ends the walk. */
enum { CY_KD_FULL = 0, CY_KD_PASS = 1, CY_KD_TAKE = 2 };
typedef int (*cy_kd_visit_fn)(const cy_kd_ent *e, void *ctx);
enum { CY_KD_EXPIRY = 1,    /* look up each key's expiry                    */
       CY_KD_LOCKED = 2 };  /* the caller holds kd_lock: gather takes none  */
#define CY_KD_STEP_MAX 512
typedef struct cy_kd_iter {
    calypso       *db;
    cy_ns         *ns;
    const cy_art  *other;     /* a tree walked beside the keydir, or NULL   */
    int            backward;  /* towards smaller keys                       */
    int            flags;     /* CY_KD_*                                    */
    uint64_t       now;       /* for cy_kd_ent.expired (ms)                 */
    const uint8_t *pfx;  size_t plen;    /* every key has this prefix      */
    const uint8_t *hi;   size_t hilen;   /* the walk's far end, inclusive,
                                            or NULL                        */
    size_t         step;      /* leaves prefetched at a time (at most
                                 CY_KD_STEP_MAX; default 32)                */
    size_t         visit;     /* keys visited per batch (default 1024)      */
    uint64_t       seq;       /* db->commit_seq as the last batch ended     */
    /* private */
    int            op;        /* the first seek: CY_SEEK_* from key         */
    const void    *key;  size_t klen;
    int            resume;    /* last holds the last key visited            */
    int            done;
    uint8_t       *last; size_t lastlen, lastcap;   /* inl, or allocated  */
    uint8_t        inl[128];
} cy_kd_iter;
/* Starts a walk of ns's keydir with a seek (op, key: CY_SEEK_FIRST, LAST,
 * GE, GT, LE or LT; key must stay valid until the first gather); the
 * caller then sets the bounds and fields it needs. */
CY_INTERNAL void cy_kd_iter_init(cy_kd_iter *it, calypso *db, cy_ns *ns, int op,
                                 const void *key, size_t klen);
/* One batch: visits the next keys in order until the bounds end the walk,
 * `visit` keys were visited, max were taken or the visitor is full.
 * Returns 1 if the walk may have more, 0 at its end, or a negative code. */
CY_INTERNAL int  cy_kd_iter_gather(cy_kd_iter *it, size_t max, cy_kd_visit_fn fn, void *ctx);
CY_INTERNAL void cy_kd_iter_free(cy_kd_iter *it);

/* Orders keys as the keydir does: bytewise, a prefix first. */
CY_INTERNAL int  cy_keydir_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/* A visitor that copies keys into out: at most max of them, and while the
 * cost of a batch deleting them fits `limit` (it starts at `used`; each key
 * adds per_key + klen; the first is always taken). */
typedef struct cy_kd_keys {
    cy_keylist *out;
    size_t      max;
    uint64_t    limit, used, per_key;
} cy_kd_keys;
CY_INTERNAL int  cy_kd_take_key(const cy_kd_ent *e, void *ctx);

// >> recovery (recover.c) --------------------------------------------------------------
CY_INTERNAL int  cy_recover(calypso *db);

// >> write path (write.c) and commit (commit.c) ----------------------------------------
/* Deletes, in namespace ns, the keys of `chosen`, then those of `expired`
 * that are still expired when their batch commits (either list may be
 * NULL), skipping absent ones, in as few batches as fit a datafile each:
 * one atomic batch when all their tombstones fit. write_mu is taken for
 * one batch at a time. */
CY_INTERNAL int  cy_db_delete_keys(calypso *db, cy_ns *ns, const cy_keylist *chosen,
                                   const cy_keylist *expired);
/* calypso_run_gc on one namespace. */
CY_INTERNAL int  cy_db_run_gc(calypso *db, cy_ns *ns);
/* Waits until a sync covers the first seq bytes appended since open,
 * leading a group commit when no sync is under way (commit.c). */
CY_INTERNAL int  cy_db_sync_to(calypso *db, uint64_t seq);
/* A SYNC_ALWAYS write announces itself before it appends (enter), counts
 * its append into the next sync's batch (appended, write_mu held), and
 * leaves when its sync has returned (commit.c). */
CY_INTERNAL void cy_db_durable_enter(calypso *db);
CY_INTERNAL void cy_db_durable_appended(calypso *db);
CY_INTERNAL void cy_db_durable_leave(calypso *db);
/* Appends a record given as pieces to the active file, rotating first when
 * it would not fit; returns where it went. write_mu held. */
CY_INTERNAL int  cy_db_append(calypso *db, struct iovec *iov, int cnt, size_t size,
                              uint32_t *fid, uint64_t *off);
/* A keydir update failed (rc) after the append of size bytes at off: cuts
 * the record back out of the active file. Returns the error to report.
 * write_mu held. */
CY_INTERNAL int  cy_db_unappend(calypso *db, int rc, uint64_t off, size_t size);
CY_INTERNAL int  cy_db_check_key(calypso *db, const void *key, size_t klen);
/* The write path's commit step for a record prepared by the caller: under
 * write_mu, rotates when a record of `bound` bytes would not fit the active
 * file; build() encodes the record for file fid (it may read the keydir:
 * write_mu keeps it still) and returns it; it is appended whole, then
 * apply() applies it under kd_lock exclusive, all of it or, failing, none
 * (it undoes its own partial work); a failed apply cuts the append back.
 * Then waits for durability as the sync mode says. */
typedef int (*cy_build_fn)(calypso *db, uint32_t fid, const uint8_t **rec, size_t *size,
                           void *ctx);
typedef int (*cy_apply_fn)(calypso *db, uint32_t fid, uint64_t off, const uint8_t *rec,
                           size_t size, void *ctx);
enum { CY_COMMIT_LOCKED = 1,        /* the caller holds write_mu (released here) */
       CY_COMMIT_DELETES_ONLY = 2 };  /* may use the space reserve when the disk fills */
CY_INTERNAL int  cy_db_commit(calypso *db, size_t bound, cy_build_fn build, cy_apply_fn apply,
                              void *ctx, int flags);

// >> snapshot views (view.c) -------------------------------------------------------------
/* Numbers a keydir change and, while views are open, notes the key's state
 * before it. kd_lock exclusive, before the change. */
CY_INTERNAL void cy_view_note(calypso *db, cy_ns *ns, const void *key, size_t klen);
/* The state of key as a view of seq view_seq sees it: 1 with its location
 * and expiry, or 0 absent. kd_lock held. */
CY_INTERNAL int  cy_view_state(calypso *db, cy_ns *ns, uint64_t view_seq, const void *key,
                               size_t klen, cy_loc *loc, uint64_t *expiry);
/* Frees one namespace's history (its chains). kd_lock exclusive. */
CY_INTERNAL void cy_view_free_history(cy_art *history);
CY_INTERNAL int  cy_view_open(calypso *db, uint64_t *seq);
CY_INTERNAL void cy_view_close(calypso *db);
/* Keeps a file a merge removed (mapped) until the views close. view_mu
 * held, from the file's leaving the table on. */
CY_INTERNAL int  cy_view_retain(calypso *db, cy_file *f);
/* The file fid from the table or the retained ones. Inside an epoch. */
CY_INTERNAL cy_file *cy_view_file(calypso *db, uint32_t fid);
/* At close: releases the history and the retained files. */
CY_INTERNAL void cy_view_release_all(calypso *db);

// >> batches (batch.c) ----------------------------------------------------------------
/* A delete that the commit makes only if key is then expired (TTL passed):
 * a key written again since it was found expired survives. */
CY_INTERNAL int  cy_batch_delete_expired(calypso_batch *b, const void *key, size_t klen);
/* Keeps an index of the batch's keys from now on, for cy_batch_find. */
CY_INTERNAL int  cy_batch_keep_index(calypso_batch *b);
/* The batch's last operation on key: 1 a put (its value and TTL), -1 a
 * delete, 0 none. Needs the index. */
CY_INTERNAL int  cy_batch_find(const calypso_batch *b, const void *key, size_t klen,
                               const uint8_t **val, size_t *vlen, uint64_t *ttl_ms);
/* Operations added from now on go to ns (calypso_batch_ns). */
CY_INTERNAL int  cy_batch_set_ns(calypso_batch *b, cy_ns *ns);

CY_INTERNAL int  cy_batch_ops(const calypso_batch *b);
/* The index of ns's operations (key -> operation number in loc.off), NULL
 * when none; operation i: 1 a put
 * whose value is at arena + *at (the arena only grows: offsets stay
 * good), -1 a delete. */
CY_INTERNAL const cy_art *cy_batch_index(const calypso_batch *b, const cy_ns *ns);
CY_INTERNAL int  cy_batch_op_value(const calypso_batch *b, uint64_t i, size_t *at, size_t *vlen);
CY_INTERNAL const uint8_t *cy_batch_arena(const calypso_batch *b);

// >> transactions (txn.c) --------------------------------------------------------------
/* A transaction's kind and state: 1 a view (its seq and start time), 0 an
 * update (its batch). */
CY_INTERNAL int  cy_txn_info(const calypso_txn *tx, calypso **db, uint64_t *seq,
                             uint64_t *start_ms, calypso_batch **b);
/* The namespace the transaction works on now. */
CY_INTERNAL cy_ns *cy_txn_ns(const calypso_txn *tx);
/* Commits and frees b; `locked`: write_mu is held by the caller, and is
 * released by the commit. */
CY_INTERNAL int  cy_batch_commit_locked(calypso_batch *b, int locked);
/* Records a failed fdatasync of datafile fid (err = -errno): sticky, the
 * handle refuses writes from now on. Returns the error to report. */
CY_INTERNAL int  cy_db_sync_failed(calypso *db, int err, uint32_t fid);
CY_INTERNAL int  cy_db_writable(calypso *db);
/* The error for a call that needs the writer lock from inside an update
 * transaction on db on this thread (txn.c), which holds it. */
CY_INTERNAL int  cy_db_in_update(calypso *db);
CY_INTERNAL int  cy_txn_in_update(const calypso *db);
CY_INTERNAL int  cy_db_usable(calypso *db);
/* 1 when db was opened by this process (not inherited through fork). */
CY_INTERNAL int  cy_db_ours(const calypso *db);
/* The process's fork generation, for a handle opening now (guard.c). */
CY_INTERNAL uint32_t cy_db_fork_gen(void);
/* Marks the handle whose update transaction this thread is in (NULL: none). */
CY_INTERNAL void cy_txn_set_update(const calypso *db);
/* Reads and verifies the value of key stored at loc (with that expiry):
 * into a new buffer *out when out is not NULL, else into buf (cap bytes,
 * CALYPSO_ETRUNC when short). Inside an epoch. CALYPSO_ENOTFOUND when
 * loc's file is not in the table (a location kept from an earlier epoch
 * whose file a merge removed: look the key up again). */
CY_INTERNAL int  cy_db_read_at(calypso *db, const void *key, size_t klen, const cy_loc *loc,
                               uint64_t expiry, void **out, void *buf, size_t cap,
                               size_t *vlen);
/* The same from file f (which the caller found). */
CY_INTERNAL int  cy_db_read_file(calypso *db, cy_file *f, const void *key, size_t klen,
                                 const cy_loc *loc, uint64_t expiry, void **out, void *buf,
                                 size_t cap, size_t *vlen);
/* The public read of key in ns into buf or a new buffer (calypso_get). */
CY_INTERNAL int  cy_db_read(calypso *db, cy_ns *ns, const void *key, size_t klen, void **out,
                            void *buf, size_t cap, size_t *vlen);
/* calypso_has and calypso_ttl on ns. */
CY_INTERNAL int  cy_db_has(calypso *db, cy_ns *ns, const void *key, size_t klen);
CY_INTERNAL int  cy_db_ttl(calypso *db, cy_ns *ns, const void *key, size_t klen,
                           uint64_t *expires_at_ms);

// >> walks (walk.c) ------------------------------------------------------------------
/* 1 with where the key was when a walk on db handed it to the callback now
 * running on this thread, if it is that key and the keydir has not changed
 * since (its loc may be in a file a merge has since removed: then look the
 * key up). kd_lock held. */
CY_INTERNAL int  cy_walk_hint(const calypso *db, const cy_ns *ns, const void *key, size_t klen,
                              cy_loc *loc, uint64_t *expiry);

// >> merge (merge.c) -----------------------------------------------------------------
/* Ids of merged datafiles have this bit; they replay before regular ones. */
#define CY_FID_MERGED 0x40000000u
/* At open, before replay: finishes a merge that committed, or discards one
 * that did not. A read-only handle changes nothing: for a decided step it
 * notes in db->skip_fids the datafiles to leave out (its outputs while
 * every input is still there, else its inputs). */
CY_INTERNAL int  cy_merge_recover(calypso *db);
/* Test hook, called at the named steps of a merge: "started" (once,
 * inputs chosen), then for each of its steps "copying" (after the first
 * record is copied or dropped as expired), "copied" (outputs synced, no
 * COMMIT yet), "committed", "moved" (outputs renamed in), "swapped" (keydir
 * points at the outputs), "removed" (inputs unlinked) -- a step that
 * writes nothing has only "swapped" and "removed" -- and "done" (once,
 * after the last step). NULL disarms. */
CY_INTERNAL void cy_merge_set_hook(void (*fn)(const char *point));
/* 1 when dead bytes pass the auto-merge trigger. */
CY_INTERNAL int  cy_merge_due(calypso *db);

// >> background thread (bg.c) -------------------------------------------------------
/* Bytes appended between two write-backs the background thread starts. */
#define CY_DB_WRITEBACK (8u << 20)
CY_INTERNAL int  cy_bg_start(calypso *db);
CY_INTERNAL void cy_bg_stop(calypso *db);

#endif /* CY_ENGINE_H */
