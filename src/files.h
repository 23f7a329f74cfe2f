/*
 * files.h: the file table (files.c): datafiles, their descriptors and
 * mappings, the table published behind one atomic pointer, appends to the
 * active file, and dead-byte accounting.
 *
 * Locks: write_mu for every change to the table and to dead bytes;
 * cy_file.mu for one file's descriptor and mapping; readers take none
 * (inside an epoch).
 */
#ifndef CY_FILES_H
#define CY_FILES_H

#include "epoch.h"
#include "internal.h"

#include <pthread.h>

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
    uint32_t pins;        /* group-commit leaders syncing fd, and the
                             sealing list (atomic): the descriptor is not
                             closed, nor the file freed, while pinned      */
    uint64_t alloc;       /* active file: bytes allocated on disk            */
    uint64_t alloc_bg;    /* allocated up to here by the background thread,
                             for the writer to take up (atomic: files.c,
                             cy_files_allocate_ahead)                       */
    int      allocating;  /* the background thread allocates in it (atomic) */
    uint64_t zeroed;      /* active file under SYNC_ALWAYS (or after a
                             calypso_sync): zeros written ahead of the data
                             up to here (files.c)                          */
    uint64_t populated;   /* active file: page tables filled for writing up
                             to here (files.c)                              */
    uint64_t size;        /* bytes of records (the active file grows)       */
    uint64_t dead;        /* bytes of records no longer live                 */
    uint64_t hint_size;   /* bytes of its hint file, 0 if none (atomic; set
                             through cy_files_set_hint)                    */
    uint64_t hint_covers; /* bytes of the datafile its hint describes: all
                             of a sealed file, a prefix of the active one   */
    uint64_t last_used;   /* tick of the last read, for LRU eviction         */
    int      sealed;      /* never written again (atomic: set under write_mu) */
    int      unsynced;    /* sealed, its sync still to come (atomic: set
                             under write_mu and seal_mu, cleared under
                             seal_mu): no hint describes it before (files.c) */
    uint32_t head;        /* bytes of the seal record the file starts with
                             (0: none): a file holding only that is empty;
                             not in `dead` (files.c, cy_files_append_seal) */
    int      hint_failed; /* its hint could not be written: do not retry     */
    int      mixed;       /* holds records besides puts: tombstones, catalog
                             records (atomic; set by cy_files_mark_mixed)  */
    uint64_t counted_size, counted_disk; /* what the table's totals hold
                             for it (files.c, under write_mu)              */
} cy_file;

/* The published file table: immutable once published, replaced whole. */
typedef struct cy_ftab {
    cy_retired retired;   /* on the limbo list once replaced              */
    uint32_t   n;
    cy_file   *f[];       /* sorted by fid                                */
} cy_ftab;

/* Sealed files waiting for their sync at most: past this many, or past
 * CY_SEALING_BYTES of them (or two datafiles' worth, if more), the writer
 * that rotates syncs the oldest itself. Each keeps its descriptor open. */
#define CY_SEALING_MAX   64
#define CY_SEALING_BYTES (64ull << 20)

/* The handle's file table state (db->files). */
typedef struct cy_files_state {
    cy_ftab         *ftab;        /* the file table (atomic; replaced under
                                     write_mu)                               */
    uint32_t         open;        /* files with a descriptor or mapping (atomic) */
    /* Running totals over the table, so that figures never walk it
     * (files.c; atomic for readers, changed under write_mu but hints'). */
    uint32_t         n;           /* files in the table                     */
    uint64_t         size;        /* bytes of records                       */
    uint64_t         disk;        /* bytes on disk, space allocated ahead of
                                     the active file's data included        */
    uint64_t         hints_disk;  /* bytes of hint files                    */
    cy_file         *active;      /* NULL on a read-only handle (write_mu)   */
    uint64_t         tick;        /* advanced when a file is opened: reads
                                     stamp their file with it (cy_files_touch) */
    uint64_t         dead;        /* dead bytes over all files (kd_lock
                                     exclusive and write_mu to change)       */
    int              zero_ahead;  /* calypso_sync was called: zeros go ahead
                                     of the data as under SYNC_ALWAYS
                                     (write_mu)                              */
    /* Files rotation sealed whose sync has not run yet (cy_files_sync_sealed),
     * oldest first, each pinned; added under write_mu and seal_mu, taken
     * off under seal_mu by the holder of seal_turn, which syncs them in
     * order without holding seal_mu across a sync. */
    pthread_mutex_t  seal_mu;
    pthread_mutex_t  seal_turn;
    cy_file         *sealing[CY_SEALING_MAX];
    uint32_t         nsealing;
    uint64_t         sealing_bytes; /* their sizes, summed                   */
    uint32_t         dir_made;    /* datafiles rotation created (seal_mu)... */
    uint32_t         dir_synced;  /* ... of those, the names a directory
                                     fsync made durable (seal_turn)          */
    uint32_t         seal_fid;    /* the seal the active file is to start
                                     with, written with its first record:
                                     the file before it (0: none) and ...  */
    uint64_t         seal_size;   /* ... its size (write_mu)                */
} cy_files_state;
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
/* Allocates a chunk ahead of the active file's data, outside write_mu (the
 * background thread, when cy_files_reserve asked it through bg.allocate). */
CY_INTERNAL void cy_files_allocate_ahead(calypso *db);
/* Cuts the active file's preallocated tail (at close). */
CY_INTERNAL int      cy_files_trim_active(calypso *db);
/* Releases every file, the table and the limbo list. Nothing else runs. */
CY_INTERNAL void     cy_files_close_all(calypso *db);
/* Seals the active file and makes a new one, with the next regular id
 * (cy_ids_take), active; the new file starts with a seal record naming the
 * old one. The old file's sync is left to cy_files_sync_sealed. */
CY_INTERNAL int      cy_files_rotate(calypso *db);
/* Creates datafile fid, makes its name durable and makes it the active
 * file, empty; when prev_fid is not 0 its first record will be the seal
 * naming regular file prev_fid at prev_size bytes. write_mu held. */
CY_INTERNAL int      cy_files_create(calypso *db, uint32_t fid, uint32_t prev_fid,
                                     uint64_t prev_size);
/* Makes durable what rotation left to sync: the sealed files' data, oldest
 * first, and the new files' names. Called by group-commit leaders before
 * their own fdatasync, by calypso_sync, the background thread, merge (for
 * its inputs) and close; a rotating writer calls it only when more than
 * CY_SEALING_MAX files or CY_SEALING_BYTES wait. Returns the sync's error,
 * which is sticky (cy_db_sync_failed). */
CY_INTERNAL int      cy_files_sync_sealed(calypso *db);
/* Writes the seal record the active file is to start with, if it does
 * not yet: before its first record. Returns the bytes appended (0 when
 * none were due) or an error. write_mu held. */
CY_INTERNAL int64_t  cy_files_append_seal(calypso *db);
/* 1 when the active file holds nothing but its seal record. write_mu. */
static inline int    cy_files_active_empty(const cy_file *a)
{
    return a->size <= a->head;
}
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
/* Starts writing back [from, to) of f (fd: its descriptor, pinned), a
 * range the writer no longer writes, without waiting for the disk and
 * without stalling the writer (files.c, "write-back through the
 * mapping"). 0 or a negative errno. */
CY_INTERNAL int      cy_files_writeback(calypso *db, cy_file *f, int fd, uint64_t from, uint64_t to);
/* The two halves of that, around a sync the caller runs itself: drop
 * [from, to) of f from the mapping before, map it back read-only after. */
CY_INTERNAL void     cy_files_drop_pages(calypso *db, cy_file *f, uint64_t from, uint64_t to);
CY_INTERNAL void     cy_files_fill_pages(calypso *db, cy_file *f, uint64_t from, uint64_t to);
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
    uint64_t dead;        /* of those, no longer live (its seal included)  */
    uint64_t hint_size;   /* bytes of its hint file, 0 if none             */
    int      held_fd;     /* a read-only handle's descriptor of it, open for
                             the handle's life (borrowed), or -1           */
} cy_file_info;
/* Every file of the table, by fid, as it is now: n entries, freed with
 * cy_free; NULL (and *n = 0) when memory is short. write_mu held. */
CY_INTERNAL cy_file_info *cy_files_snapshot(calypso *db, uint32_t *n);
/* The id of a sealed file whose hint is owed (missing or covering less
 * than the file, not failed before, and synced: a hint describes synced
 * data only), or 0 when none is. */
CY_INTERNAL uint32_t cy_files_hint_owed(calypso *db);
/* Notes that file fid holds a record other than a put (write path or
 * replay, applying it). */
CY_INTERNAL void     cy_files_mark_mixed(calypso *db, uint32_t fid);
/* Counts bytes of file fid dead (db->files.dead and the file's own count). Under
 * write_mu and kd_lock exclusive, or while the handle is not yet shared. */
CY_INTERNAL void cy_files_dead_add(calypso *db, uint32_t fid, uint64_t bytes);
/* File f left the table: its dead bytes leave db->files.dead with it. write_mu
 * and kd_lock exclusive. */
CY_INTERNAL void cy_files_dead_drop(calypso *db, const cy_file *f);

#endif /* CY_FILES_H */
