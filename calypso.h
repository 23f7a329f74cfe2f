/*
 * calypso.h: the public API of calypso, an embeddable key-value storage engine.
 *
 * ==========================================================================
 *  Overview
 * ==========================================================================
 * calypso keeps a database in a directory as append-only datafiles (the
 * Bitcask design). Every put and delete appends one record to the active
 * datafile; an in-memory Adaptive Radix Tree, the key directory ("keydir"),
 * holds for each live key where its newest record lives. So a get is one
 * tree lookup plus at most one disk read, and keys are kept in byte order:
 * prefix scans and ranges come from the tree. Overwritten and deleted
 * records become dead bytes that a merge reclaims by rewriting the live
 * records of sealed datafiles.
 *
 * Ship it by copying calypso.c and calypso.h into your tree (build with
 * `cc -std=c11 -O2 -c calypso.c`, link with -lpthread; calypso.c needs the
 * xxhash.h header), or link build/libcalypso.a (`pkg-config --cflags --libs
 * calypso` after `make install`).
 *
 * ==========================================================================
 *  Conventions
 * ==========================================================================
 * - Return codes: every function that can fail returns int; CALYPSO_OK (0)
 *   on success, a negative CALYPSO_E* code on failure. calypso_strerror()
 *   names a code; calypso_errmsg() gives the detail of the calling thread's
 *   last failure on a handle (file, offset, errno). CALYPSO_ENOTFOUND is an
 *   expected answer, not an error to log.
 * - Keys and values are byte strings (const void *, size_t). Keys may hold
 *   any byte, including 0; a key may be a prefix of another. Values may be
 *   empty: an empty value is a value, not a delete.
 * - Order: keys compare as memcmp over the shorter length, the shorter key
 *   first on a tie ("a" < "a\0" < "ab" < "b").
 * - Ownership: calypso never keeps a pointer the caller passed in after the
 *   call returns. Buffers it returns (calypso_get) belong to the caller and
 *   are freed with calypso_free(). Key pointers handed to callbacks are
 *   borrowed for the duration of that one callback call.
 * - Every function below has a comment block of its own that ends with two
 *   entries: "Errors:", the codes it can return and when, and
 *   "Thread-safe:", from which threads it may be called
 *   (tools/check-api-docs, run by `make test`, fails on a declaration that
 *   lacks either). Two causes recur, and are named there
 *   as "handle state":
 *     CALYPSO_EINVAL  the handle is NULL, or was inherited through fork()
 *                     (see Thread safety);
 *     CALYPSO_EIO     the handle's calypso_reopen failed (only close works).
 *   Functions that write also return, as "write refusal":
 *     CALYPSO_EREADONLY  the handle is read_only;
 *     CALYPSO_EINVAL     this thread is inside an update transaction on the
 *                        database (write through the transaction instead);
 *     CALYPSO_EIO        the handle refuses writes since an fdatasync or an
 *                        undoable write failed (see Durability).
 *   Any call that touches a file may also return CALYPSO_ENOMEM,
 *   CALYPSO_ENOSPC or CALYPSO_EIO for the errno of a failed system call
 *   (ENOMEM, ENOSPC or EDQUOT, anything else), with calypso_errmsg naming
 *   the call and the file.
 *
 * ==========================================================================
 *  Thread safety
 * ==========================================================================
 * One calypso handle may be shared by any number of threads. Reads (get,
 * has, len, walks, cursors) run in parallel and take no lock but a short
 * shared one on the key directory; writes (put, delete, sift, run_gc,
 * delete_all) are serialized by a writer lock. Each handle has one
 * background thread: it writes hint files for sealed datafiles, runs the
 * periodic fdatasync of CALYPSO_SYNC_INTERVAL, sweeps expired keys, runs
 * the automatic merges (merge_trigger_ratio) itself, starts the write-back
 * of what was appended, and unmaps files no reader can reach any more. It
 * never calls application code (but the allocator's functions, see
 * calypso_config_allocator). calypso_merge() runs the merge on the thread
 * that calls it, not on the background thread, and returns when it is
 * done; one merge runs at a time per database (the other one gets
 * CALYPSO_EMERGING); readers and writers go on beside it. A merge never
 * makes a read of a live key fail: a file it replaces is released only
 * once every read that could still reach it has finished. Callbacks
 * passed to fold, scan, range, the sift family, ns_list, update and view
 * run on the calling thread with no engine lock held (but an update's,
 * which holds the writer lock): a walk's callback may call get, put and
 * delete on the same handle. A walk sees each key that existed for its
 * whole duration exactly once, in order; keys written or deleted while it
 * runs may or may not be seen. calypso_close() and calypso_reopen() must
 * not race with other calls on the same handle, and the cursors, batches
 * and transactions of a handle must be ended before it is closed or
 * reopened. A cursor, a batch or a transaction is used by one thread at a
 * time (an update by the thread that began it). Each function's
 * "Thread-safe:" line says which case it is.
 *
 * A handle belongs to the process that opened it. After fork(), the child
 * must not use an inherited handle: every call on it there (close
 * included) returns CALYPSO_EINVAL and touches no file, so the parent's
 * database is safe; the child's copy of the handle's memory is simply not
 * freed. Nor may the child use a cursor, batch or transaction begun before
 * the fork (end them first, or leave them alone there). A child that needs
 * the database opens it itself.
 *
 * One handle at a time may open a directory for writing (an exclusive
 * flock on its LOCK file); a second writer, in another process or in the
 * same one, gets CALYPSO_ELOCKED, and its errmsg names the holder's pid.
 * Any number of handles, in any processes, may open the directory
 * read-only at the same time, beside the writer or not: readers and the
 * writer never refuse or block each other (only a reader's open and the
 * moment a writer's merge swaps its files wait for each other, briefly).
 * See read_only in calypso_options for what a reader sees, and
 * doc/format.md ("Lock file") for the locks.
 *
 * ==========================================================================
 *  Durability (calypso_options.sync)
 * ==========================================================================
 * - CALYPSO_SYNC_NONE (the default): each acknowledged write has been
 *   copied into the kernel's page cache before the call returns, so it
 *   survives the process being killed (kill -9), not a power loss or OS
 *   crash. calypso_sync() and calypso_close() make everything durable.
 *   Records are not written with write(2): they are copied into a shared
 *   (MAP_SHARED) mapping of the active datafile, whose disk space is
 *   allocated ahead of the data (fallocate, 1 to 8 MiB at a time), so a
 *   put in SYNC_NONE mode makes no system call as a rule; the kernel
 *   writes the dirty pages back, in any order, and fdatasync makes them
 *   durable. Only a record too large for the mapping
 *   (over max_datafile_size, alone in its file), or an active file that
 *   could not be mapped, is written with pwritev. So that close and
 *   calypso_sync find little left to do, the background thread starts the
 *   write-back of every 8 MiB appended and fdatasyncs every 32 MiB; a
 *   power loss keeps what such a sync covered, but SYNC_NONE promises no
 *   more than the process's death.
 * - CALYPSO_SYNC_INTERVAL: as NONE, plus a background thread fdatasyncs the
 *   active datafile every sync_interval_ms (default 1000): on power loss at
 *   most the last interval of writes is lost (Redis "appendfsync everysec").
 * - CALYPSO_SYNC_ALWAYS: a write returns only after its record is on stable
 *   storage (fdatasync). Threads writing at the same time share one
 *   fdatasync (group commit), so durable throughput grows with writers.
 * In every mode: what a sync covered is never lost; what a crash left
 * unfinished past the last sync (a torn record, pages the kernel wrote
 * back out of order, a datafile sealed since that came back shorter) is
 * cut off on open, with the files written after it, and the cut reported
 * through calypso_errmsg (it was never acknowledged under ALWAYS): open
 * keeps the writes up to the first one lost. A writer never waits for an
 * fdatasync it did not ask for: when the active datafile fills up, the
 * next one takes writes at once and the full one is synced in the
 * background (or by the next sync anyone asks for, which covers it first);
 * every file creation, rename and removal is made durable by an fsync of
 * the directory before anything relies on it; data is synced before any
 * hint or meta file that points at it.
 *
 * A failed fdatasync is final for the handle (as PostgreSQL treats it):
 * Linux reports a writeback error once and may drop the pages it could not
 * write, so calypso never calls fdatasync again to make the error go away.
 * The handle refuses every write from then on with CALYPSO_EIO (its errmsg
 * says which fdatasync failed); every write under CALYPSO_SYNC_ALWAYS that
 * the last successful sync did not cover returns CALYPSO_EIO; reads go on;
 * calypso_close() returns the error. Reopening reads back what reached the
 * disk.
 * ==========================================================================
 *  A full disk
 * ==========================================================================
 * In a log every change needs space, a delete too (it appends a
 * tombstone), and a merge writes its output before it removes its inputs.
 * So that a full disk can be recovered from inside, each read-write handle
 * keeps a space reserve: the file RESERVE in the database directory,
 * allocated at open to one max_datafile_size (at least 64 KiB, at most
 * 8 MiB). What you see and can do:
 * - The write that meets the full disk (ENOSPC, or EDQUOT: a quota) fails
 *   with CALYPSO_ENOSPC and writes nothing; everything acknowledged before
 *   it stays, across a reopen too. calypso releases the reserve.
 * - From then on calypso_put and calypso_put_ttl fail at once with
 *   CALYPSO_ENOSPC, so that they cannot eat the released space. Reads,
 *   walks and cursors work as ever.
 * - Deletes (calypso_delete, calypso_delete_all, the sift family,
 *   calypso_run_gc, the TTL sweeper) and calypso_merge go on, using the
 *   released space. Delete what you can spare, then call calypso_merge: it
 *   removes files whose records are all dead without writing anything, and
 *   otherwise needs one datafile's worth of free space at a time, freeing
 *   each step's inputs before the next step writes.
 * - After a merge, and at most once a second from a refused put, calypso
 *   takes the reserve back; once it can, there is room again and puts are
 *   accepted. Space freed outside calypso is noticed the same way, and a
 *   reopen also takes the reserve back when it can (a database opened on a
 *   full disk starts in the state above).
 * - Deleting keys frees nothing by itself: only a merge (or the auto-merge,
 *   see merge_trigger_ratio) gives their space back.
 * A database whose datafiles are larger than 8 MiB may need more than the
 * reserve for a merge step; free space outside calypso then, or delete the
 * oldest keys first (their files, once wholly dead, go without a write).
 * A read-only handle never creates or changes RESERVE.
 */
#ifndef CALYPSO_H
#define CALYPSO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ------------------------------------------------------------ */
#define CALYPSO_VERSION_MAJOR 0
#define CALYPSO_VERSION_MINOR 1
#define CALYPSO_VERSION_PATCH 0
#define CALYPSO_VERSION "0.1.0"

/* The version of the library linked in (CALYPSO_VERSION of its build), a
 * static string.
 * Errors: none; never NULL.
 * Thread-safe: yes, from any thread, before any handle is open too. */
const char *calypso_version(void);

/* ---- errors ------------------------------------------------------------- */
/* The one list of error codes: it generates the enum below and the strings
 * of calypso_strerror(). X(name, value, message). */
#define CALYPSO_ERROR_MAP(X)                                                  \
    X(OK,              0, "ok")                                               \
    X(ENOTFOUND,      -1, "key not found")                                    \
    X(EKEYTOOLARGE,   -2, "key too large")                                    \
    X(EEXPIRED,       -3, "key expired")                                      \
    X(EEMPTYKEY,      -4, "empty key")                                        \
    X(EVALUETOOLARGE, -5, "value too large")                                  \
    X(ECHECKSUM,      -6, "checksum failed")                                  \
    X(ELOCKED,        -7, "database locked by another process")               \
    X(EINVALIDRANGE,  -8, "invalid range: start > end")                       \
    X(EVERSION,       -9, "unsupported on-disk format version")               \
    X(EMERGING,      -10, "a merge is already in progress")                   \
    X(EIO,           -11, "I/O error")                                        \
    X(ENOMEM,        -12, "out of memory")                                    \
    X(EINVAL,        -13, "invalid argument")                                 \
    X(EREADONLY,     -14, "database is read-only")                            \
    X(ECORRUPT,      -15, "database file is corrupt")                         \
    X(ETRUNC,        -16, "buffer too small")                                 \
    X(ENOSPC,        -17, "no space left on the device")

enum {
#define CALYPSO_ERROR_ENUM_(name, value, msg) CALYPSO_##name = (value),
    CALYPSO_ERROR_MAP(CALYPSO_ERROR_ENUM_)
#undef CALYPSO_ERROR_ENUM_
};

/* A static, human-readable string for rc; "unknown error" for codes not in
 * the list.
 * Errors: none; never NULL.
 * Thread-safe: yes, from any thread. */
const char *calypso_strerror(int rc);

/* The opaque database handle. */
typedef struct calypso calypso;

/* The detail of the calling thread's last failed call on db: the error's
 * text plus the file, offset and errno involved, e.g.
 * "checksum failed: /data/db/000003.data at offset 4096". A namespace
 * handle shares its database handle's detail. After a successful
 * calypso_open, what recovery cut or auto_recovery dropped ("ok: ...").
 * db == NULL: the calling thread's last failed calypso_open() or
 * calypso_destroy() (a call given a NULL handle may leave its detail
 * there too); a successful open or destroy clears it.
 * Returns "" when that thread has no detail for db: it had no failure on
 * it, or it has failed on four other handles since (a thread keeps the
 * detail of the last four handles it failed on). The string is owned by
 * calypso, in the calling thread's storage, and stays valid until that
 * thread's next calypso call. db must be open (or NULL).
 * Errors: none; never NULL.
 * Thread-safe: yes, from any thread: each thread sees its own detail. */
const char *calypso_errmsg(calypso *db);

/* ---- options ------------------------------------------------------------ */
enum { CALYPSO_SYNC_NONE = 0, CALYPSO_SYNC_INTERVAL = 1, CALYPSO_SYNC_ALWAYS = 2 };

/* Defaults and hard limits. Why these defaults:
 * - datafiles of 256 MiB: large enough that a terabyte is ~4000 files (the
 *   1 MiB files of early Bitcask ports ran into "too many open files"),
 *   small enough that a merge rewrites a bounded amount per file and that
 *   a torn tail is found quickly on open;
 * - keys up to 4 KiB: room for long Redis-style composite keys, while every
 *   key lives in RAM in the keydir (the hard limit is 65527 bytes);
 * - values up to 64 MiB: a value is copied whole into one buffer;
 *   larger blobs belong in files (the hard limit is 1 GiB, and a value must
 *   fit in a datafile);
 * - auto-merge at 60% dead bytes and at least 64 MiB dead (Riak's
 *   reference trigger is 60% dead), so small databases are not rewritten
 *   for a few kilobytes. */
#define CALYPSO_DEFAULT_MAX_DATAFILE_SIZE (256ull << 20)
#define CALYPSO_DEFAULT_MAX_KEY_SIZE      4096u
#define CALYPSO_DEFAULT_MAX_VALUE_SIZE    (64ull << 20)
#define CALYPSO_DEFAULT_SYNC_INTERVAL_MS  1000u
#define CALYPSO_DEFAULT_DIR_MODE          0755u
#define CALYPSO_DEFAULT_FILE_MODE         0644u
#define CALYPSO_DEFAULT_MERGE_TRIGGER     0.6
#define CALYPSO_DEFAULT_MERGE_MIN_DEAD    (64ull << 20)
#define CALYPSO_DEFAULT_MAX_OPEN_FILES    64u
#define CALYPSO_DEFAULT_TTL_SWEEP_MS      1000u
#define CALYPSO_SWEEP_NEVER               UINT32_MAX

#define CALYPSO_MAX_KEY_SIZE       65527u        /* hard limit for max_key_size: 64 KiB less the 8 bytes the TTL index puts before a key */
#define CALYPSO_MAX_VALUE_SIZE     (1ull << 30)  /* hard limit for max_value_size */
#define CALYPSO_MIN_DATAFILE_SIZE  4096ull       /* bounds for max_datafile_size  */
#define CALYPSO_MAX_DATAFILE_SIZE  (1ull << 40)

/* Options for calypso_open. A zeroed struct means "all defaults": each field
 * left 0 takes the default named in its comment. A value out of range fails
 * calypso_open with CALYPSO_EINVAL and an errmsg naming the field. */
typedef struct calypso_options {
    /* Bytes after which the active datafile is sealed and a new one begun.
     * Default 256 MiB; CALYPSO_MIN_DATAFILE_SIZE..CALYPSO_MAX_DATAFILE_SIZE.
     * A single record larger than this still goes into a file of its own. */
    uint64_t max_datafile_size;
    /* Longest key accepted, in bytes. Default 4096; at most 65527. */
    uint32_t max_key_size;
    /* Longest value accepted, in bytes. Default 64 MiB; at most 1 GiB. */
    uint64_t max_value_size;
    /* CALYPSO_SYNC_NONE (0, default), _INTERVAL or _ALWAYS; see above. */
    int      sync;
    /* Period of the background fdatasync under CALYPSO_SYNC_INTERVAL, in
     * milliseconds. Default 1000; at most 3600000. */
    uint32_t sync_interval_ms;
    /* 0 (default): a damaged record that is not a torn tail fails open
     * with CALYPSO_ECORRUPT naming file and offset. Non-zero: the damaged
     * datafile is cut at its last good record and open goes on;
     * calypso_errmsg(db) then says what was dropped. */
    int      auto_recovery;
    /* Non-zero: a reader. It refuses writes (CALYPSO_EREADONLY), never
     * merges, and never creates, changes or removes a file (no torn tail is
     * cut, no interrupted merge finished, no temporary file removed). The
     * directory must exist. It opens whether or not a writer (in this
     * process or another) has the database open, and sees the database as
     * it was at its open: every record written whole by then (every write
     * acknowledged before the open began included), every batch and
     * transaction whole or not at all, nothing written after. Beside a live
     * writer, what follows the last whole record of the newest datafile is
     * a write under way, not damage: the reader stops there silently.
     * calypso_reopen() on it catches up with what the writer has written
     * since. A merge in the writer never makes its reads fail: it keeps a
     * descriptor on every datafile from its open to its close or reopen,
     * so a file the writer merges away and unlinks stays readable
     * (max_open_files then bounds its mappings; the descriptors, one per
     * datafile, come on top, and the files' space is freed once the reader
     * lets go of them). Without a writer it opens the same way; of a merge
     * step the writer left decided but unfinished (it died in the middle)
     * it reads one whole side, the files before the step while all of its
     * inputs are there, else the files after it, and finishes nothing (the
     * next read-write open does). A
     * reader's open waits (at most 30 s, then CALYPSO_ELOCKED) while a
     * writer's merge renames and removes files; CALYPSO_ELOCKED too while
     * calypso_destroy removes the database. */
    int      read_only;
    /* Permissions for the directory and files calypso creates, before the
     * umask. Defaults 0755 and 0644. */
    uint32_t dir_mode, file_mode;
    /* Auto-merge: the background thread runs a merge itself (as
     * calypso_merge, checked about once a second) when dead bytes / total
     * bytes >= this ratio (default 0.6) and dead bytes >=
     * merge_min_dead_bytes (default 64 MiB). A negative ratio never merges
     * on its own; calypso_merge() still works. */
    double   merge_trigger_ratio;
    uint64_t merge_min_dead_bytes;
    /* How many sealed datafiles may be open at once, open meaning mapped
     * or holding a descriptor: the cap bounds both the mappings and the
     * descriptors calypso keeps (a sealed file's descriptor is closed once
     * the file is mapped, so an open file is normally one mapping and no
     * descriptor; a file that cannot be mapped, or holds a record past
     * its mapping, keeps a descriptor instead). An LRU cache: past the
     * cap, the least recently read file is unmapped and closed (its
     * mapping only after the reads using it have finished), and opened
     * again on its next read. The active file (one mapping and one
     * descriptor) comes on top, as do a read-only handle's descriptors
     * held from its open (see read_only). The cap can be passed for a
     * moment while every file over it is in use (being opened, or synced
     * by a group commit). Default 64; 1..65536. */
    uint32_t max_open_files;
    /* How often the background sweeper deletes expired keys (writing their
     * tombstones in batches), in milliseconds: keeps memory and disk bounded
     * under short-lived keys (sessions, caches). Default 1000; at most
     * 86400000; CALYPSO_SWEEP_NEVER turns the sweeper off (calypso_run_gc
     * still works). */
    uint32_t ttl_sweep_interval_ms;
} calypso_options;

/* Fills *opts with every default spelled out (the same as zeroing it).
 * NULL is a no-op.
 * Errors: none (returns nothing).
 * Thread-safe: yes, from any thread (it writes only *opts). */
void calypso_options_default(calypso_options *opts);

/* ---- allocator ---------------------------------------------------------- */
/* Makes calypso allocate through the application's allocator, process-wide
 * (as SQLite's SQLITE_CONFIG_MALLOC): every block calypso allocates on the
 * heap comes from malloc_fn or realloc_fn and goes back through free_fn,
 * the buffers it hands to the caller included (calypso_get and
 * calypso_txn_get values, released by calypso_free through free_fn). calloc
 * is malloc_fn plus zeroing. realloc_fn is called only with a block from
 * malloc_fn or realloc_fn and a non-zero size, and must act as realloc
 * (move or grow the block keeping its bytes, or return NULL and leave it
 * alone); malloc_fn is never asked for 0 bytes. A NULL return is out of
 * memory: the call that needed the block fails with CALYPSO_ENOMEM and
 * changes nothing. The functions may be called from any thread at once,
 * calypso's background threads included, so they must be thread-safe.
 *
 * All three NULL restores libc's malloc, realloc and free. Anything else
 * with a NULL among them: CALYPSO_EINVAL, nothing changed.
 *
 * When: only while no handle is open in the process. From the start of a
 * calypso_open until the calypso_close of the handle it returned has
 * returned (a failed open holds nothing once it has returned), the call
 * fails with CALYPSO_EINVAL and changes nothing; once every handle is
 * closed it may be called again. Handles inherited across fork() count as
 * open in the child (they are never closed there). The caller must release
 * every buffer calypso handed out under one allocator (calypso_free) before
 * installing another: calypso does not track them. The call itself takes
 * only a mutex, but it must not race with another thread still inside a
 * calypso call that is not on a handle (calypso_free of an old buffer).
 *
 * Not through it: memory libc allocates for itself on calypso's behalf
 * (thread stacks of pthread_create, opendir's buffer while a directory is
 * listed, formatting in vsnprintf, the temporary buffer of qsort), which
 * libc allocates and frees with its own allocator, and the file mappings
 * (mmap), which are not heap.
 * Errors: CALYPSO_EINVAL (some but not all of the three are NULL; or a
 * handle is open in the process, or an open is under way); nothing is
 * changed then.
 * Thread-safe: yes, from any thread (a mutex orders it against opens and
 * closes), with the condition above: no other thread may be inside
 * calypso_free, or any call outside a handle, meanwhile. */
int  calypso_config_allocator(void *(*malloc_fn)(size_t),
                              void *(*realloc_fn)(void *, size_t),
                              void (*free_fn)(void *));

/* ---- lifecycle ---------------------------------------------------------- */
/* Opens (creating it if missing, unless read_only) the database in
 * directory `path` and stores a handle in *db. opts may be NULL for the
 * defaults. A missing directory is created together with any missing
 * parent directories (as mkdir -p, or Go's os.MkdirAll), each with
 * dir_mode and each made durable by an fsync of the directory above it
 * before open goes on; directories created before a failure stay. A
 * read_only open creates nothing: a missing path fails with CALYPSO_EIO
 * (errmsg: "No such file or directory"). Open rebuilds the keydir from
 * hint files and datafiles; damage past the last synced point of the
 * newest datafile is cut off and, on success, calypso_errmsg(*db) says
 * what was cut (doc/format.md). A
 * read-write open allocates the space reserve (see "A full disk"); a disk
 * too full for it does not fail the open, which then refuses puts until
 * there is room.
 * On error *db is set to NULL; calypso_errmsg(NULL) tells the detail.
 * Errors: CALYPSO_EINVAL (NULL or empty path, NULL db, a bad option: errmsg
 * names the field; a path over 4000 bytes; path or one of its parents
 * exists but is not a directory: errmsg names it); CALYPSO_ELOCKED (a
 * read-write open while another handle, in this process or another, has
 * the database open for writing: errmsg names its pid; any open while
 * calypso_destroy runs on it; a read_only open that waited 30 s for a
 * writer's merge to swap its files); CALYPSO_EVERSION (META names another
 * format version); CALYPSO_ECORRUPT (without auto_recovery: damage that is
 * not a torn tail, errmsg naming file and offset; a datafile shorter than
 * a sync covered; a WATERMARK with both slots damaged; and in any case:
 * META missing beside datafiles, or a META, IDS or merge/COMMIT file that
 * does not parse); CALYPSO_ENOSPC (no room to create the database's first
 * files); CALYPSO_EIO (a failed system call: errmsg names it and the file;
 * read_only and the directory is missing; read_only and the datafiles
 * kept changing while listed); CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread; any number of opens may run at once
 * (of one directory, one read-write handle at a time: see above). */
int  calypso_open(const char *path, const calypso_options *opts, calypso **db);

/* Stops background work (waiting for an automatic merge under way to
 * stop), makes every write durable (fdatasync), cuts the active file's
 * preallocated tail, releases the lock and frees the handle, even when it
 * returns an error. On a namespace handle, releases that handle alone
 * (always CALYPSO_OK but in a forked child). On a handle whose reopen
 * failed, frees it and returns CALYPSO_OK. NULL is a no-op (CALYPSO_OK).
 * Errors: CALYPSO_EIO when the final sync or the cut failed, or when the
 * handle already refused writes (an fdatasync or a write failed earlier):
 * the writes since the last successful sync may then not be durable, and
 * close does not try to sync again; CALYPSO_EINVAL, freeing nothing and
 * touching no file, in a forked child (see Thread safety), and while
 * namespace handles of db are open (see Namespaces: close them first).
 * Thread-safe: no: nothing else may use db (or its cursors, batches and
 * transactions, which must be ended first) meanwhile. */
int  calypso_close(calypso *db);

/* Closes and opens the database again with the same options, keeping the
 * handle: the keydir is rebuilt from disk. Returns the close's error (as
 * calypso_close) if the reopen succeeded, else the open's (as
 * calypso_open). On failure the handle refuses every call but close
 * (CALYPSO_EIO). A reopen clears a handle that refused writes after a
 * failed fdatasync.
 * Errors: CALYPSO_EINVAL (NULL, a forked child, a namespace handle, or
 * namespace handles of db open: nothing changed); else calypso_close's
 * (CALYPSO_EIO: writes since the last sync may not be durable) if the
 * open succeeded, or calypso_open's (CALYPSO_ELOCKED, CALYPSO_EVERSION,
 * CALYPSO_ECORRUPT, CALYPSO_ENOSPC, CALYPSO_EIO, CALYPSO_ENOMEM) if not.
 * Thread-safe: no: nothing else may use db (or its cursors, batches and
 * transactions, which must be ended first) meanwhile. */
int  calypso_reopen(calypso *db);

/* Removes the database in directory `path`: its datafiles, hint files,
 * META, WATERMARK, IDS, RESERVE, LOCK, the merge/ workspace and the
 * temporary files of its atomic writes, and nothing else: any other file
 * stays, and the directory itself is removed only if nothing else is left
 * in it. Refused, with nothing removed, when any handle has the database
 * open, in this process or another, writer or reader: CALYPSO_ELOCKED
 * (errmsg names a writer's pid). A reader that opened a database without a
 * LOCK file (one no writer ever opened) cannot be seen. While it runs,
 * opens are refused (CALYPSO_ELOCKED). Removes META last but LOCK, so a
 * destroy cut short (a crash, an I/O error) can simply be run again.
 * Errors: CALYPSO_EINVAL (NULL or empty path, a path over 4000 bytes, no
 * such directory, not a directory, or a directory that is not a calypso
 * database: no META, or a META that does not name a calypso format),
 * CALYPSO_EVERSION (a database of another format version, whose files
 * this build does not know), CALYPSO_ELOCKED, CALYPSO_EIO (META there but
 * unreadable, or a file that could not be removed: errmsg names it; what
 * was removed before stays removed, and a second call goes on),
 * CALYPSO_ENOMEM. calypso_errmsg(NULL) tells the detail.
 * Thread-safe: yes, from any thread (a destroy racing an open of the same
 * directory makes one of them fail with CALYPSO_ELOCKED). */
int  calypso_destroy(const char *path);

/* Makes every acknowledged write durable: fdatasync of the datafiles
 * sealed since the last sync (oldest first; the background thread usually
 * got there first), then of the active file. On a read-only handle
 * it does nothing and returns CALYPSO_OK. From the first call on, the
 * handle writes zeros ahead of its data into the space it allocated, as
 * under CALYPSO_SYNC_ALWAYS, so that each later sync has fewer new blocks
 * to commit: the pattern of an application that groups its own syncs.
 * Errors: CALYPSO_EIO (the fdatasync fails, or one failed before: see
 * Durability, the handle then refuses writes; handle state),
 * CALYPSO_EINVAL (handle state; inside an update transaction on db on this
 * thread).
 * Thread-safe: yes, from any thread, on any handle of the database; it
 * shares its fdatasync with concurrent syncs and CALYPSO_SYNC_ALWAYS
 * writers (group commit). */
int  calypso_sync(calypso *db);

/* Copies a point-in-time image of the database into directory `path`,
 * which must not exist or be empty; when missing it is created, with any
 * missing parent directories (as calypso_open does: dir_mode, each made
 * durable by an fsync of the directory above it). The copy opens as a
 * database with the same contents. db keeps serving reads, writes and
 * merges meanwhile: the image is taken at one instant and the files are
 * copied from descriptors opened then. A failed backup leaves a directory
 * without META, which never opens as a database; directories it created
 * stay.
 * Errors: CALYPSO_EINVAL (no path, path not a directory or not empty, a
 * parent of path that is not a directory: errmsg names it, path over 4000
 * bytes, or inside an update transaction on db; handle state), CALYPSO_EIO
 * (errmsg names the file; a file shrank while copied; handle state),
 * CALYPSO_ENOSPC, CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle of the database (a
 * read-only one too). It waits for a merge under way to finish before it
 * takes its image; merges wait for it only while it opens the files. */
int  calypso_backup(calypso *db, const char *path);

/* ---- keys and values ---------------------------------------------------- */
/* Stores val under key, replacing any value and clearing any TTL. The
 * record is copied into the active datafile's mapping (see Durability);
 * under CALYPSO_SYNC_ALWAYS the call returns after the fdatasync that
 * covers it.
 * Nothing is written when an error is returned, with one
 * exception: under CALYPSO_SYNC_ALWAYS, CALYPSO_EIO from the fdatasync that
 * follows the write means the write was applied (it is visible, and may or
 * may not survive a power loss); the handle then refuses every further
 * write until it is reopened, since the kernel may have dropped the data it
 * failed to sync.
 * Errors: CALYPSO_EEMPTYKEY (klen == 0), CALYPSO_EKEYTOOLARGE (klen >
 * max_key_size), CALYPSO_EVALUETOOLARGE (vlen > max_value_size),
 * CALYPSO_EINVAL (NULL key or val with a non-zero length; the namespace
 * was dropped; handle state; write refusal), CALYPSO_EREADONLY (write
 * refusal), CALYPSO_ENOSPC (the disk is full: see "A full disk"),
 * CALYPSO_EIO (a failed write, rotation or fdatasync; write refusal;
 * handle state), CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle of the database;
 * writers are serialized (a put waits for another thread's update
 * transaction to end). */
int  calypso_put(calypso *db, const void *key, size_t klen, const void *val, size_t vlen);

/* As calypso_put, and the key expires ttl_ms milliseconds from now: from
 * then on it is invisible (get returns CALYPSO_EEXPIRED). ttl_ms == 0 means
 * no expiry (same as calypso_put).
 * Errors: as calypso_put: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE,
 * CALYPSO_EVALUETOOLARGE, CALYPSO_EINVAL, CALYPSO_EREADONLY,
 * CALYPSO_ENOSPC, CALYPSO_EIO, CALYPSO_ENOMEM, in the same cases.
 * Thread-safe: yes, as calypso_put. */
int  calypso_put_ttl(calypso *db, const void *key, size_t klen,
                     const void *val, size_t vlen, uint64_t ttl_ms);

/* Reads the value of key into a new buffer: *val (calypso_free() it) and
 * *vlen. An empty value gives a valid non-NULL *val and *vlen == 0. On
 * error *val is NULL and *vlen 0. A merge running meanwhile never makes
 * it fail for a live key.
 * Errors: CALYPSO_ENOTFOUND, CALYPSO_EEXPIRED (the key exists but its TTL
 * passed), CALYPSO_ECHECKSUM (the record fails verification: errmsg names
 * file and offset), CALYPSO_ECORRUPT (the datafile ends before the record
 * the keydir names), CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE,
 * CALYPSO_EINVAL (NULL val or vlen; NULL key with a non-zero klen; handle
 * state), CALYPSO_EIO (a file could not be opened or read; handle state),
 * CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle; reads run in parallel
 * with each other, with writers and with merges. */
int  calypso_get(calypso *db, const void *key, size_t klen, void **val, size_t *vlen);

/* Reads n keys in one call, faster than n calls of calypso_get: the keys'
 * tree lookups and record reads are interleaved (groups of 16 under one
 * hold of the key directory's lock), so their cache misses overlap.
 * For each i, rcs[i] is what calypso_get(db, keys[i], klens[i], ...) would
 * return: CALYPSO_OK with vals[i] a new buffer of vlens[i] bytes (release
 * it with calypso_free), or a code (CALYPSO_ENOTFOUND, CALYPSO_EEXPIRED,
 * CALYPSO_EEMPTYKEY, CALYPSO_ECHECKSUM...) with vals[i] NULL and vlens[i]
 * 0. Returns CALYPSO_OK when every key was either found or absent
 * (ENOTFOUND, EEXPIRED); else the first other code in rcs (a bad key, a
 * failed read): the other keys were still read, and their values, like
 * every non-NULL vals[i], are the caller's to free. Each key is read as
 * of its group's lookup: a group of keys is one consistent state; the
 * whole call is not (use a view for that). n may be 0.
 * Errors: CALYPSO_EINVAL (an array is NULL and n > 0; handle state: then
 * nothing is written), CALYPSO_EIO (handle state); else the first code in
 * rcs other than CALYPSO_ENOTFOUND and CALYPSO_EEXPIRED: CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL (a NULL key with a non-zero
 * length), CALYPSO_ECHECKSUM, CALYPSO_ECORRUPT, CALYPSO_EIO,
 * CALYPSO_ENOMEM, each as for calypso_get.
 * Thread-safe: yes, as calypso_get. */
int  calypso_get_many(calypso *db, size_t n, const void *const *keys, const size_t *klens,
                      void **vals, size_t *vlens, int *rcs);

/* As calypso_get into the caller's buffer, with no allocation. If the value
 * is longer than cap, returns CALYPSO_ETRUNC with *vlen set to the size
 * needed and buf untouched. buf may be NULL when cap is 0 (a size query).
 * Errors: CALYPSO_ETRUNC (cap too small), CALYPSO_EINVAL (NULL vlen, NULL
 * buf with cap > 0, NULL key with a non-zero klen; handle state), and as
 * calypso_get: CALYPSO_ENOTFOUND, CALYPSO_EEXPIRED, CALYPSO_ECHECKSUM,
 * CALYPSO_ECORRUPT, CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EIO.
 * Thread-safe: yes, as calypso_get. */
int  calypso_get_buf(calypso *db, const void *key, size_t klen,
                     void *buf, size_t cap, size_t *vlen);

/* Frees a buffer returned by calypso (through the allocator configured by
 * calypso_config_allocator, which must be the one that allocated it). NULL
 * is a no-op.
 * Errors: none (returns nothing).
 * Thread-safe: yes, from any thread (a buffer may be freed by another
 * thread than the one that got it), but not while calypso_config_allocator
 * runs. */
void calypso_free(void *p);

/* 1 if key is live (present and not expired), 0 if not, or a negative
 * error. Reads memory only (the keydir), never the record.
 * Errors: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL (NULL key
 * with a non-zero klen; handle state), CALYPSO_EIO (handle state).
 * Thread-safe: yes, as calypso_get. */
int  calypso_has(calypso *db, const void *key, size_t klen);

/* The expiry of a live key: *expires_at_ms receives its absolute expiry in
 * Unix milliseconds (wall clock), or 0 when it has none (and 0 with
 * CALYPSO_ENOTFOUND or CALYPSO_EEXPIRED). Reads memory only.
 * Errors: CALYPSO_ENOTFOUND, CALYPSO_EEXPIRED, CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL (NULL expires_at_ms; NULL key with
 * a non-zero klen; handle state), CALYPSO_EIO (handle state).
 * Thread-safe: yes, as calypso_get. */
int  calypso_ttl(calypso *db, const void *key, size_t klen, uint64_t *expires_at_ms);

/* Deletes key (appends a tombstone). CALYPSO_OK also when the key was
 * absent (then nothing is written). On a full disk a delete may use the
 * space reserve (see "A full disk"). Durable as a put is; the
 * CALYPSO_SYNC_ALWAYS exception of calypso_put holds for it too.
 * Errors: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL (NULL
 * key with a non-zero klen; the namespace was dropped; handle state;
 * write refusal), CALYPSO_EREADONLY (write refusal), CALYPSO_ENOSPC (even
 * the reserve is used up), CALYPSO_EIO (a failed write, rotation or
 * fdatasync; write refusal; handle state), CALYPSO_ENOMEM.
 * Thread-safe: yes, as calypso_put. */
int  calypso_delete(calypso *db, const void *key, size_t klen);

/* Deletes every key: as one atomic batch (all or none, across a crash too,
 * and readers see them go at once) when their tombstones fit one datafile
 * (about max_datafile_size / (klen + 9) keys), else in rounds of as many
 * as one datafile takes, each round atomic. Keys written meanwhile by
 * other threads may survive. Readers wait for the keydir while a batch
 * applies (about 0.2 us per key). When a round fails, the rounds before it
 * stay done. May use the space reserve, as calypso_delete.
 * Errors: CALYPSO_EINVAL (the namespace was dropped; handle state; write
 * refusal), CALYPSO_EREADONLY (write refusal), CALYPSO_ENOSPC, CALYPSO_EIO
 * (as calypso_delete), CALYPSO_ENOMEM.
 * Thread-safe: yes, as calypso_put (each round waits for the writer lock
 * like one batch). */
int  calypso_delete_all(calypso *db);

/* The number of live (unexpired) keys, of the handle's namespace. Costs
 * O(1) plus the keys that expired since the last count.
 * Errors: none: 0 for NULL, for a handle in a forked child, or one whose
 * reopen failed.
 * Thread-safe: yes, as calypso_get. */
uint64_t calypso_len(calypso *db);

/* ---- iteration (byte order) --------------------------------------------- */
/* Return 0 to go on; any other value stops the walk and is returned by it.
 * Callbacks run with no engine lock held: they may call get/put/delete on
 * the same handle. Walks, sift, run_gc and merge return CALYPSO_OK (0) on
 * success. Expired keys are skipped. key is borrowed for the call. */
typedef int (*calypso_key_fn)(const void *key, size_t klen, void *ctx);
/* Return 1 to delete the key, 0 to keep it, a negative code to abort: then
 * nothing is deleted and that code is returned. */
typedef int (*calypso_sift_fn)(const void *key, size_t klen, void *ctx);

/* Walks (fold, scan, range) call fn on the calling thread with no engine
 * lock held; the walk holds the key directory's lock for one batch of keys
 * at a time (at most 1,024 visited, expired ones included), never across
 * fn. A walk on a namespace handle sees that namespace's keys. */

/* Every live key, in order.
 * Errors: CALYPSO_EINVAL (NULL fn; handle state), CALYPSO_EIO (handle
 * state), CALYPSO_ENOMEM, or fn's non-zero result.
 * Thread-safe: yes, from any thread, on any handle; fn runs on the calling
 * thread and may call get, put and delete on the same handle. */
int  calypso_fold(calypso *db, calypso_key_fn fn, void *ctx);
/* Every live key starting with prefix, in order; plen 0: every key.
 * Errors: CALYPSO_EINVAL (NULL fn; NULL prefix with a non-zero plen;
 * handle state), CALYPSO_EIO (handle state), CALYPSO_ENOMEM, or fn's
 * non-zero result.
 * Thread-safe: yes, as calypso_fold. */
int  calypso_scan(calypso *db, const void *prefix, size_t plen, calypso_key_fn fn, void *ctx);
/* Every live key k with start <= k <= end, in order. Empty bounds are
 * allowed (the empty key sorts first).
 * Errors: CALYPSO_EINVALIDRANGE (start > end), CALYPSO_EINVAL (NULL fn; a
 * NULL bound with a non-zero length; handle state), CALYPSO_EIO (handle
 * state), CALYPSO_ENOMEM, or fn's non-zero result.
 * Thread-safe: yes, as calypso_fold. */
int  calypso_range(calypso *db, const void *start, size_t slen,
                   const void *end, size_t elen, calypso_key_fn fn, void *ctx);
/* Ask fn of every live key (of the prefix, of the range) whether to delete
 * it, and delete every expired key of the prefix or range too, as
 * CalypsoDB's Sift does ("if the KV pair is expired or the function
 * returns true, that key is deleted"): fn is not called for an expired key
 * (it is deleted without asking). An expired key is deleted only if it is
 * still expired when the deletions are written: one written again
 * meanwhile (by another thread, or by fn) survives. The deletions are
 * written only after the walk completes, all together, the expired keys in
 * the same batch as the keys fn chose: as one atomic batch (all of them or
 * none, across a crash too, and readers see them go at once) when their
 * tombstones fit one datafile (as calypso_delete_all); a longer list is
 * deleted in batches of as many as one datafile takes, the chosen keys
 * first, in key order (when one of those batches fails, those before it
 * stay done).
 * If fn returns a negative code, nothing is deleted (expired keys neither)
 * and that code is returned. A value above 1 is treated as 1. The
 * deletions may use the space reserve, as calypso_delete.
 * Errors: CALYPSO_EINVAL (NULL fn; the namespace was dropped; handle
 * state; write refusal), CALYPSO_EREADONLY (write refusal), CALYPSO_ENOSPC,
 * CALYPSO_EIO (as calypso_delete), CALYPSO_ENOMEM, or fn's negative
 * result.
 * Thread-safe: yes, from any thread, on any handle; fn runs on the calling
 * thread with no lock held (it may call get, put and delete on the same
 * handle); the deletions are serialized with other writers. */
int  calypso_sift(calypso *db, calypso_sift_fn fn, void *ctx);
/* As calypso_sift over the keys starting with prefix (plen 0: every key).
 * Errors: as calypso_sift, and CALYPSO_EINVAL for a NULL prefix with a
 * non-zero plen: CALYPSO_EINVAL, CALYPSO_EREADONLY, CALYPSO_ENOSPC,
 * CALYPSO_EIO, CALYPSO_ENOMEM, or fn's negative result.
 * Thread-safe: yes, as calypso_sift. */
int  calypso_sift_scan(calypso *db, const void *prefix, size_t plen, calypso_sift_fn fn, void *ctx);
/* As calypso_sift over the keys k with start <= k <= end.
 * Errors: as calypso_sift, and CALYPSO_EINVALIDRANGE (start > end),
 * CALYPSO_EINVAL for a NULL bound with a non-zero length: CALYPSO_EINVAL,
 * CALYPSO_EINVALIDRANGE, CALYPSO_EREADONLY, CALYPSO_ENOSPC, CALYPSO_EIO,
 * CALYPSO_ENOMEM, or fn's negative result.
 * Thread-safe: yes, as calypso_sift. */
int  calypso_sift_range(calypso *db, const void *start, size_t slen,
                        const void *end, size_t elen, calypso_sift_fn fn, void *ctx);

/* ---- cursors (byte order) ----------------------------------------------- */
/* A cursor walks the live keys in order, both ways, with no callback and no
 * lock held between calls: it keeps a window of up to 128 consecutive keys
 * (with where their values live), copied out under a brief shared lock, and
 * refills it from its edge when it moves past it. Reading values needs no
 * further key lookups, so a full ordered scan of keys and values is about
 * one copy per value; while values of consecutive keys are read, the next
 * ones are read ahead in growing runs (up to 64 values or 256 KiB). After
 * a merge, records sit in key order on disk, so such a scan reads the
 * files front to back. A cursor sees every key that exists for its whole
 * walk exactly once, in order; keys written or deleted meanwhile may or may
 * not be seen. Expired keys are skipped. A cursor belongs to one thread at a
 * time; any number of cursors may be open on a handle, and they must be
 * closed before the handle.
 *
 * Moves return CALYPSO_OK when positioned on a key, CALYPSO_ENOTFOUND when
 * there is no such key (the cursor is then unpositioned: key and value
 * return CALYPSO_ENOTFOUND until a first/last/seek), or an error. */
typedef struct calypso_cursor calypso_cursor;

/* Opens an unpositioned cursor on db (on a namespace handle: over that
 * namespace); close it with calypso_cursor_close, before db is closed or
 * reopened. Moves take the key directory's lock for one window (128 keys)
 * at a time.
 * Errors: CALYPSO_EINVAL (NULL cur; handle state), CALYPSO_EIO (handle
 * state), CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle: any number of cursors
 * may be open on a handle; each then belongs to one thread at a time. */
int  calypso_cursor_open(calypso *db, calypso_cursor **cur);
/* Frees the cursor. NULL is a no-op.
 * Errors: none (returns nothing).
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
void calypso_cursor_close(calypso_cursor *cur);
/* Positions on the smallest key.
 * Errors: CALYPSO_ENOTFOUND (no key: the cursor is unpositioned),
 * CALYPSO_EINVAL (NULL cur), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_first(calypso_cursor *cur);
/* Positions on the largest key.
 * Errors: CALYPSO_ENOTFOUND (no key), CALYPSO_EINVAL (NULL cur),
 * CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_last(calypso_cursor *cur);
/* Positions on the first key >= key. An empty key is allowed.
 * Errors: CALYPSO_ENOTFOUND (no such key), CALYPSO_EINVAL (NULL cur; NULL
 * key with a non-zero klen), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_seek(calypso_cursor *cur, const void *key, size_t klen);
/* Positions on the last key <= key. An empty key is allowed.
 * Errors: CALYPSO_ENOTFOUND (no such key), CALYPSO_EINVAL (NULL cur; NULL
 * key with a non-zero klen), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_seek_le(calypso_cursor *cur, const void *key, size_t klen);
/* Positions on the first key that starts with prefix and keeps the cursor
 * inside the prefix: next and prev return CALYPSO_ENOTFOUND at its edges
 * (and the cursor never reads keys past them), until first, last, seek or
 * seek_le lift the bound. An empty prefix bounds nothing.
 * Errors: CALYPSO_ENOTFOUND (no key with the prefix), CALYPSO_EINVAL (NULL
 * cur; NULL prefix with a non-zero plen), CALYPSO_ENOMEM (the cursor is
 * then unpositioned).
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_seek_prefix(calypso_cursor *cur, const void *prefix, size_t plen);
/* Moves to the next key.
 * Errors: CALYPSO_ENOTFOUND (past the last key, or the prefix's end; or
 * unpositioned: the cursor is unpositioned after it), CALYPSO_EINVAL
 * (NULL cur), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_next(calypso_cursor *cur);
/* Moves to the previous key.
 * Errors: CALYPSO_ENOTFOUND (before the first key, or the prefix's start;
 * or unpositioned), CALYPSO_EINVAL (NULL cur), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_prev(calypso_cursor *cur);
/* The current key, borrowed: valid until the cursor next moves or is
 * closed.
 * Errors: CALYPSO_ENOTFOUND (unpositioned), CALYPSO_EINVAL (NULL argument).
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_key(calypso_cursor *cur, const void **key, size_t *klen);
/* The current value, borrowed: valid until the cursor next moves or is
 * closed. It is read (and its checksum verified) on first ask, with the
 * values of the next keys read ahead. A merge running meanwhile never
 * makes it fail for a live key. In a view whose snapshot could not be
 * kept (see snapshot views), CALYPSO_ENOMEM.
 * Errors: CALYPSO_ENOTFOUND (unpositioned; or the key was deleted and its
 * record merged away since the window was filled), CALYPSO_ECHECKSUM,
 * CALYPSO_ECORRUPT and CALYPSO_EIO (as for calypso_get), CALYPSO_EINVAL
 * (NULL argument), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per cursor (cursors of one handle
 * may be used by different threads at once). */
int  calypso_cursor_value(calypso_cursor *cur, const void **val, size_t *vlen);

/* ---- atomic batches ------------------------------------------------------ */
/* A batch of puts and deletes committed as one: all of it or none of it,
 * both on disk (a crash leaves the whole batch or no trace of it; a batch
 * torn at the tail is cut off on open) and for readers (other threads see
 * every change of a batch at once, never a part). Operations apply in the
 * order they were added: a later put or delete of the same key wins. A
 * delete of a key absent when the batch commits writes nothing.
 *
 * Cost: the operations are copied into the batch as they are added; commit
 * writes one record holding them all (each operation costs its key, its
 * value and up to 42 bytes of framing) and, under CALYPSO_SYNC_ALWAYS, one
 * fdatasync shared with concurrent writers. Limit: a batch is one record in
 * one datafile, so its operations may take at most max_datafile_size bytes
 * with their framing; the operation that would pass it fails with
 * CALYPSO_EVALUETOOLARGE and is not added (the batch stays usable).
 *
 * A batch belongs to one thread at a time; any number of batches may be
 * open on a handle. Keys and values are copied: the caller's buffers are
 * free to reuse as soon as a call returns. */
typedef struct calypso_batch calypso_batch;

/* Starts an empty batch on db (on a namespace handle: its operations go to
 * that namespace, see calypso_batch_ns). End it with calypso_batch_commit
 * or calypso_batch_abort, before db is closed or reopened.
 * Errors: CALYPSO_EINVAL (NULL b; handle state; write refusal),
 * CALYPSO_EREADONLY (write refusal), CALYPSO_EIO (write refusal; handle
 * state), CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle; the batch then
 * belongs to one thread at a time. */
int  calypso_batch_open(calypso *db, calypso_batch **b);
/* Adds a put. Checks as calypso_put does; an operation that fails is not
 * added and the batch stays usable. Memory only: nothing is written
 * before the commit.
 * Errors: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EVALUETOOLARGE
 * (the value is over max_value_size, or the batch would pass its limit),
 * CALYPSO_EINVAL (NULL b; NULL key or val with a non-zero length),
 * CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per batch (batches of one handle
 * may be filled by different threads at once). */
int  calypso_batch_put(calypso_batch *b, const void *key, size_t klen,
                       const void *val, size_t vlen);
/* Adds a put with a TTL, as calypso_put_ttl; the expiry counts from the
 * commit.
 * Errors: as calypso_batch_put: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE,
 * CALYPSO_EVALUETOOLARGE, CALYPSO_EINVAL, CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per batch (batches of one handle
 * may be filled by different threads at once). */
int  calypso_batch_put_ttl(calypso_batch *b, const void *key, size_t klen,
                           const void *val, size_t vlen, uint64_t ttl_ms);
/* Adds a delete (of a key absent at commit: nothing written).
 * Errors: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EVALUETOOLARGE
 * (the batch would pass its limit), CALYPSO_EINVAL (NULL b; NULL key with
 * a non-zero klen), CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per batch (batches of one handle
 * may be filled by different threads at once). */
int  calypso_batch_delete(calypso_batch *b, const void *key, size_t klen);
/* Commits the batch and frees it, whatever it returns. An empty batch
 * writes nothing and returns CALYPSO_OK. On an error nothing of the batch
 * is applied, with the exception calypso_put states for a failed fdatasync
 * under CALYPSO_SYNC_ALWAYS (then the whole batch is applied, never a
 * part). A batch of deletes only may use the space reserve, as
 * calypso_delete.
 * Errors: CALYPSO_EINVAL (NULL b; a namespace it writes to was dropped;
 * handle state; write refusal: this thread is inside an update on the
 * database), CALYPSO_ENOSPC, CALYPSO_EIO (a failed write, rotation or
 * fdatasync; write refusal; handle state), CALYPSO_ENOMEM.
 * Thread-safe: yes with respect to other threads' writes (commits are
 * serialized with every writer of the database); the batch itself
 * belongs to one thread at a time. */
int  calypso_batch_commit(calypso_batch *b);
/* Frees the batch without writing anything. NULL is a no-op.
 * Errors: none (returns nothing).
 * Thread-safe: no: one thread at a time per batch (batches of one handle
 * may be filled by different threads at once). */
void calypso_batch_abort(calypso_batch *b);

/* ---- transactions: updates and views ------------------------------------- */
/* A read-write transaction: its writes commit together as one batch (all or
 * nothing, on disk and for readers), or are dropped by a rollback, which
 * leaves nothing on disk or in memory. Reads inside it (get, get_buf, has)
 * see the database plus the transaction's own writes.
 *
 * Writers are serialized with it: from its beginning to its end the
 * transaction holds the handle's writer lock, so other threads' puts,
 * deletes, batches, updates, merges' final steps and CALYPSO_SYNC_ALWAYS
 * commits wait and come before or after it, never in between; keep
 * transactions short. Readers in other threads are never held up by it,
 * except for the moment its commit applies. A transaction belongs to the
 * thread that began it, which must end it (commit or rollback). From inside
 * one, calls on db that write or take the writer lock (put, delete, batch,
 * another update, merge, sync, stats, backup) return CALYPSO_EINVAL instead
 * of waiting on the thread's own lock; reads on db are fine.
 *
 * A cursor inside a transaction: calypso_txn_cursor_open. */
typedef struct calypso_txn calypso_txn;
/* fn's result decides: 0 commits (calypso_update then returns the
 * commit's result), anything else rolls back and is returned. */
typedef int (*calypso_txn_fn)(calypso_txn *tx, void *ctx);
/* Runs fn inside an update transaction, on the calling thread, and
 * commits it when fn returns 0; rolls it back and returns fn's result
 * otherwise.
 * Errors: CALYPSO_EINVAL (NULL fn), then as calypso_update_begin
 * (CALYPSO_EINVAL, CALYPSO_EREADONLY, CALYPSO_EIO, CALYPSO_ENOMEM) and
 * calypso_txn_commit (CALYPSO_EINVAL, CALYPSO_ENOSPC, CALYPSO_EIO,
 * CALYPSO_ENOMEM), or fn's non-zero result.
 * Thread-safe: yes, from any thread, on any handle; it waits for the
 * writer lock (other threads' writes and updates) and holds it while fn
 * runs. */
int  calypso_update(calypso *db, calypso_txn_fn fn, void *ctx);
/* The same without a callback: begin, then exactly one of commit or
 * rollback, on the same thread, before db is closed or reopened.
 * Errors: CALYPSO_EINVAL (NULL tx; handle state; write refusal: this
 * thread is in an update on the database already), CALYPSO_EREADONLY
 * (write refusal), CALYPSO_EIO (write refusal; handle state),
 * CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle; it waits for the
 * writer lock, and the transaction then belongs to this thread. */
int  calypso_update_begin(calypso *db, calypso_txn **tx);
/* Commits and frees tx, whatever it returns (an update: nothing applied on
 * an error, with the CALYPSO_SYNC_ALWAYS exception of calypso_put; a view:
 * just ends it, always CALYPSO_OK).
 * Errors: CALYPSO_EINVAL (NULL tx; a namespace the update wrote to was
 * dropped), CALYPSO_ENOSPC, CALYPSO_EIO (a failed write, rotation or
 * fdatasync; the handle refuses writes), CALYPSO_ENOMEM.
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_commit(calypso_txn *tx);
/* Drops tx's writes, ends it and frees it. NULL is a no-op.
 * Errors: none (returns nothing).
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
void calypso_txn_rollback(calypso_txn *tx);
/* ---- snapshot views --------------------------------------------------------
 * A read-only transaction that sees the database as of its start: every
 * calypso_txn_get, get_buf and has inside it answers from that one point
 * in time while other threads put, delete, expire keys (a key's expiry is
 * judged against the view's start) and merge. Views hold no lock: writers,
 * merges and readers go on beside them, and any number may be open at
 * once, in any threads (a view itself belongs to one thread at a time).
 *
 * Cost, paid only while views are open: every write made meanwhile keeps a
 * note of the key's previous state (the key plus about 60 bytes of memory),
 * and the datafiles merges replace stay on disk (unlinked, still allocated)
 * and mapped, until the last open view ends. So keep views short on a busy
 * database. Should memory run out for such a note, the views open then
 * fail their next read with CALYPSO_ENOMEM instead of answering from a
 * later state.
 *
 * calypso_view runs fn inside a view and returns fn's result; or begin one
 * with calypso_view_begin and end it with calypso_txn_commit or
 * calypso_txn_rollback (the same for a view). Writes inside a view return
 * CALYPSO_EREADONLY. A view works on a read-only handle too. */

/* Runs fn inside a view, on the calling thread, and returns fn's result.
 * Errors: CALYPSO_EINVAL (NULL fn; handle state), CALYPSO_EIO (handle
 * state), CALYPSO_ENOMEM, or fn's result.
 * Thread-safe: yes, from any thread, on any handle; takes no lock that
 * writers or merges wait for. */
int  calypso_view(calypso *db, calypso_txn_fn fn, void *ctx);
/* Begins a view; end it with calypso_txn_commit or calypso_txn_rollback,
 * before db is closed or reopened.
 * Errors: CALYPSO_EINVAL (NULL tx; handle state), CALYPSO_EIO (handle
 * state), CALYPSO_ENOMEM.
 * Thread-safe: yes, as calypso_view; the view then belongs to one thread
 * at a time. */
int  calypso_view_begin(calypso *db, calypso_txn **tx);

/* As calypso_get, through an update's own writes first (a key it deleted
 * is CALYPSO_ENOTFOUND), or as of a view's start.
 * Errors: as calypso_get (CALYPSO_ENOTFOUND, CALYPSO_EEXPIRED,
 * CALYPSO_ECHECKSUM, CALYPSO_ECORRUPT, CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL: also NULL tx, CALYPSO_EIO,
 * CALYPSO_ENOMEM: also a view whose snapshot could not be kept).
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_get(calypso_txn *tx, const void *key, size_t klen, void **val, size_t *vlen);
/* As calypso_get_buf, through the transaction as calypso_txn_get.
 * Errors: CALYPSO_ETRUNC, and as calypso_txn_get (CALYPSO_ENOTFOUND,
 * CALYPSO_EEXPIRED, CALYPSO_ECHECKSUM, CALYPSO_ECORRUPT, CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL, CALYPSO_EIO, CALYPSO_ENOMEM).
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_get_buf(calypso_txn *tx, const void *key, size_t klen, void *buf, size_t cap,
                         size_t *vlen);
/* As calypso_has, through the transaction as calypso_txn_get: 1, 0 or an
 * error.
 * Errors: CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL (NULL tx;
 * NULL key with a non-zero klen; handle state), CALYPSO_EIO (handle
 * state), CALYPSO_ENOMEM (a view whose snapshot could not be kept).
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_has(calypso_txn *tx, const void *key, size_t klen);
/* As calypso_ttl, through the transaction (an update's own put with a TTL
 * expires that long after now, as its commit would make it).
 * Errors: CALYPSO_ENOTFOUND, CALYPSO_EEXPIRED, CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EINVAL (NULL tx or expires_at_ms; NULL key
 * with a non-zero klen; handle state), CALYPSO_EIO (handle state),
 * CALYPSO_ENOMEM (a view whose snapshot could not be kept).
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_ttl(calypso_txn *tx, const void *key, size_t klen, uint64_t *expires_at_ms);
/* Adds a put to an update, checked as calypso_batch_put (the limit
 * included); applied at commit.
 * Errors: CALYPSO_EREADONLY (a view), and as calypso_batch_put:
 * CALYPSO_EEMPTYKEY, CALYPSO_EKEYTOOLARGE, CALYPSO_EVALUETOOLARGE,
 * CALYPSO_EINVAL (also NULL tx), CALYPSO_ENOMEM.
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_put(calypso_txn *tx, const void *key, size_t klen, const void *val, size_t vlen);
/* As calypso_txn_put with a TTL, as calypso_batch_put_ttl.
 * Errors: as calypso_txn_put: CALYPSO_EREADONLY, CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EVALUETOOLARGE, CALYPSO_EINVAL,
 * CALYPSO_ENOMEM.
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_put_ttl(calypso_txn *tx, const void *key, size_t klen, const void *val,
                         size_t vlen, uint64_t ttl_ms);
/* Adds a delete to an update, as calypso_batch_delete; applied at commit.
 * Errors: CALYPSO_EREADONLY (a view), CALYPSO_EEMPTYKEY,
 * CALYPSO_EKEYTOOLARGE, CALYPSO_EVALUETOOLARGE (the batch limit),
 * CALYPSO_EINVAL (NULL tx; NULL key with a non-zero klen), CALYPSO_ENOMEM.
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_delete(calypso_txn *tx, const void *key, size_t klen);
/* A cursor over what the transaction sees: in an update, the database with
 * the transaction's own writes merged in key order (its puts show their
 * values, its deletes hide keys); in a view, the database as of the view's
 * start. Moves and reads as any cursor (calypso_cursor_*); close it with
 * calypso_cursor_close before the transaction ends. An update's writes
 * made after a window was filled show from the next fill on.
 * Errors: CALYPSO_EINVAL (NULL tx or cur; handle state), CALYPSO_EIO
 * (handle state), CALYPSO_ENOMEM.
 * Thread-safe: no: by the transaction's thread (an update's, or the one
 * using the view); the cursor belongs to it too. */
int  calypso_txn_cursor_open(calypso_txn *tx, calypso_cursor **cur);

/* ---- maintenance -------------------------------------------------------- */
/* Runs a merge now, on the calling thread (not the background thread,
 * which runs only the automatic merges), and returns when it is done:
 * the live records of the sealed datafiles are rewritten into new files
 * and the old ones removed. The active file, unless empty, is sealed
 * first (writers go on in a new one). It works through the files oldest
 * first, in steps of one datafile's worth of live records, each step's
 * inputs removed before the next step writes; files with no live record
 * are removed without writing anything. Reads and writes go on meanwhile; the
 * old files are unmapped and removed only after every read that could
 * reach them has finished. A failure after a step was decided leaves the
 * handle refusing writes; the next open finishes it. Readers in other
 * processes keep reading the files a merge removes (their space is freed
 * when the last reader lets go).
 * Errors: CALYPSO_EMERGING (a merge is already running, the background
 * thread's automatic one included); CALYPSO_EREADONLY (write refusal);
 * CALYPSO_ENOSPC when a step found no room even with the space reserve
 * (the steps before it are done, nothing is lost, the handle goes on: free
 * space and merge again); CALYPSO_ECORRUPT when an input record fails its
 * checksum or does not parse (the step is abandoned, the steps before it
 * are done); CALYPSO_ELOCKED when readers opening in other processes kept
 * the file set locked for 30 s (a step waits for them before it swaps
 * files: see read_only; the steps before it are done, the handle goes on:
 * merge again); CALYPSO_EIO (a failed system call; the handle began to
 * close or reopen; write refusal; handle state); CALYPSO_EINVAL (handle
 * state; write refusal: inside an update on this thread); CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle of the database (it
 * merges the whole database); reads and writes go on beside it. */
int  calypso_merge(calypso *db);
/* Deletes every expired key now, in rounds of up to 65,536 tombstones,
 * each round one atomic batch (so readers wait for the keydir at most while
 * one round applies). A key written again meanwhile, without a TTL or with
 * a later expiry, is kept. An expired key is invisible before its tombstone
 * and after it, so a round left out by a crash changes nothing a reader
 * sees. On a namespace handle, that namespace's keys. The deletions may
 * use the space reserve, as calypso_delete; a failed round leaves the
 * rounds before it done.
 * Errors: CALYPSO_EINVAL (the namespace was dropped; handle state; write
 * refusal), CALYPSO_EREADONLY (write refusal), CALYPSO_ENOSPC, CALYPSO_EIO
 * (as calypso_delete), CALYPSO_ENOMEM.
 * Thread-safe: yes, as calypso_put (it may run beside the background
 * sweeper: a key is deleted once). */
int  calypso_run_gc(calypso *db);
/* Dead bytes a merge would free (overwritten, deleted and expired records),
 * over the whole database, or a negative error. O(1).
 * Errors: CALYPSO_EINVAL (handle state), CALYPSO_EIO (handle state).
 * Thread-safe: yes, from any thread, on any handle. */
int64_t calypso_reclaimable(calypso *db);

/* Figures about a database. A struct tag, not a typedef, so that it shares
 * its name with calypso_stats() (like POSIX struct stat and stat()). */
struct calypso_stats {
    uint32_t datafiles;     /* datafiles on disk, the active one included   */
    uint64_t keys;          /* live keys (as calypso_len)                   */
    uint64_t size;          /* bytes on disk: datafiles and hint files, with
                               the space allocated ahead of the active
                               file's data (up to 8 MiB, cut at close); not
                               the space reserve (RESERVE)                 */
    uint64_t reclaimable;   /* dead bytes                                   */
    uint64_t keydir_bytes;  /* memory held by the key directory             */
    uint64_t merges;        /* merges completed since open                  */
    uint64_t live_bytes;    /* bytes of the live keys' records on disk      */
};
/* Fills *st. On a namespace handle, keys, live_bytes and keydir_bytes are
 * that namespace's; datafiles, size, reclaimable and merges are the
 * database's (one log holds every namespace).
 * Errors: CALYPSO_EINVAL (NULL st; inside an update transaction on db on
 * this thread; handle state), CALYPSO_EIO (handle state).
 * Thread-safe: yes, from any thread, on any handle; it takes the writer
 * lock for a moment (so it waits for another thread's update). */
int  calypso_stats(calypso *db, struct calypso_stats *st);

/* ---- namespaces ------------------------------------------------------------
 * A database holds a default namespace, which is what the database handle
 * itself reads and writes (so code that knows nothing of namespaces, and
 * databases written before they existed, work unchanged), and any number
 * of named namespaces (CalicoDB's buckets; the Redis SELECT of calypsod).
 * Each namespace is a key space of its own: the same key in two namespaces
 * is two keys.
 *
 * A namespace handle is a calypso *: every key function works on it
 * unchanged and sees only that namespace's keys: put, put_ttl, get,
 * get_buf, has, ttl, delete, delete_all, len, fold, scan, range, the sift
 * family, cursors, batches, update, view, run_gc and stats (see
 * calypso_stats). Functions about the whole database work through any of
 * its handles and act on the whole database: merge, sync, backup,
 * reclaimable, errmsg. calypso_reopen on a namespace handle is
 * CALYPSO_EINVAL.
 *
 * Names are byte strings of 1 to CALYPSO_NS_MAX_NAME bytes, nested by `/`:
 * "a/b" is a child of "a", and a name has no empty part ("", "/a", "a/",
 * "a//b" are CALYPSO_EINVAL). Names are absolute: db may be the database
 * handle or any namespace handle of it.
 *
 * Handles: calypso_close on a namespace handle releases that handle alone.
 * The database handle cannot be closed or reopened while namespace handles
 * of it are open: calypso_close and calypso_reopen then return
 * CALYPSO_EINVAL and change nothing (close the namespace handles first).
 * Namespace handles are thread-safe as the database handle is.
 *
 * Durability and atomicity: creating and dropping are one record (a
 * recursive drop one batch), durable as a put is under the sync mode; a
 * crash leaves all of a create or drop or none of it. Each namespace has
 * its own key directory; a drop frees it at once and its records become
 * dead bytes that the next merge reclaims (calypso_reclaimable counts
 * them). Namespace ids are never reused: a namespace dropped and created
 * again is empty. A drop takes the namespace's keys away at once from
 * everything, snapshot views begun before it included (a view keeps the
 * other namespaces as of its start); handles, cursors, batches and
 * transactions on a dropped namespace stay valid until closed, see no
 * keys and refuse writes. */
#define CALYPSO_NS_MAX_NAME 255u

/* Opens the namespace `name`: into *ns a handle of it. With `create`, a
 * missing namespace is created first (its parent must exist); without,
 * it is CALYPSO_ENOTFOUND. Any number of handles of one namespace may be
 * open at once. On error *ns is NULL.
 * Errors: CALYPSO_EINVAL (NULL ns, a bad name: see above; handle state;
 * creating inside an update transaction on this thread),
 * CALYPSO_ENOTFOUND (missing, or its parent missing; or dropped by another
 * thread as it was created), CALYPSO_EREADONLY (creating on a read-only
 * handle), CALYPSO_ENOSPC (creating on a full disk), CALYPSO_EIO (a failed
 * write or sync; the 2^32 - 1 namespace ids are used up; write refusal;
 * handle state), CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle of the database;
 * creating is serialized with writers, as a put. */
int  calypso_ns_open(calypso *db, const void *name, size_t nlen, int create, calypso **ns);
/* Drops the namespace `name` and every namespace under it (`name/...`),
 * atomically: one batch of drop records, durable as a batch. Handles of
 * dropped namespaces stay valid until closed: they see no keys, and writes
 * through them return CALYPSO_EINVAL. Like a delete, a drop may use the
 * space reserve on a full disk.
 * Errors: CALYPSO_EINVAL (bad name; the drop records of the namespace and
 * its descendants would take more than a datafile: drop the deepest ones
 * first; handle state; write refusal, e.g. inside an update transaction on
 * this thread), CALYPSO_ENOTFOUND, CALYPSO_EREADONLY (write refusal),
 * CALYPSO_ENOSPC, CALYPSO_EIO (a failed write or sync; write refusal;
 * handle state), CALYPSO_ENOMEM.
 * Thread-safe: yes, from any thread, on any handle of the database;
 * serialized with writers. Handles of the dropped namespaces that other
 * threads use stay valid (see above). */
int  calypso_ns_drop(calypso *db, const void *name, size_t nlen);
/* Calls fn(name, nlen, ctx) for each direct child of `parent`, in byte
 * order of the names (full names: "a/b", not "b"); parent NULL (plen 0)
 * lists the top-level namespaces. Stops when fn returns non-zero and
 * returns that value. fn runs with no lock held and may open, create or
 * drop namespaces.
 * Errors: CALYPSO_EINVAL (NULL fn; bad parent name; handle state),
 * CALYPSO_ENOTFOUND (parent missing), CALYPSO_EIO (handle state),
 * CALYPSO_ENOMEM, or fn's non-zero result.
 * Thread-safe: yes, from any thread, on any handle; fn runs on the calling
 * thread with no lock held, over the names as they were when the call
 * began. */
int  calypso_ns_list(calypso *db, const void *parent, size_t plen, calypso_key_fn fn, void *ctx);
/* Cross-namespace batches: operations added to b from now on go to the
 * namespace of handle ns (a handle of the same database; the database
 * handle for the default namespace). A batch starts on the namespace of
 * the handle it was opened on. The batch commits all of its operations,
 * whatever their namespaces, atomically as ever.
 * Errors: CALYPSO_EINVAL (NULL b or ns, or ns of another database),
 * CALYPSO_ENOMEM.
 * Thread-safe: no: one thread at a time per batch. */
int  calypso_batch_ns(calypso_batch *b, calypso *ns);
/* The same for a transaction: its reads, writes and cursors from now on
 * are in ns's namespace (an update commits its writes in every namespace
 * as one batch; a view sees every namespace as of its start).
 * Errors: CALYPSO_EINVAL (NULL tx or ns, or ns of another database),
 * CALYPSO_ENOMEM.
 * Thread-safe: no: an update's calls are made by the thread that began it,
 * a view's by one thread at a time. */
int  calypso_txn_ns(calypso_txn *tx, calypso *ns);

#ifdef __cplusplus
}
#endif
#endif /* CALYPSO_H */
