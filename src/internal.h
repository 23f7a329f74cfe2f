/*
 * internal.h: the interfaces that calypso's modules share with each other.
 *
 * Nothing here is public. Every name is cy_<module>_*; each function is
 * declared CY_INTERNAL, which is empty in a normal build (so unit tests can
 * link the modules one by one) and `static` in the amalgamation (so that
 * calypso.c exports only calypso_* symbols). The amalgamation tool defines
 * CY_AMALGAMATION before it inlines this header, exactly once.
 *
 * Sections: // >> alloc, // >> os, // >> art, // >> record, // >> engine.
 * The test hooks have a header of their own, for the module build only.
 */
#ifndef CY_INTERNAL_H
#define CY_INTERNAL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "calypso.h"

#if defined(__GNUC__) || defined(__clang__)
#define CY_LIKELY(x)   __builtin_expect(!!(x), 1)
#define CY_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CY_UNUSED      __attribute__((unused))
#define CY_INLINE      inline __attribute__((always_inline))
#define CY_PREFETCH(p) __builtin_prefetch(p)
#else
#define CY_LIKELY(x)   (x)
#define CY_UNLIKELY(x) (x)
#define CY_UNUSED
#define CY_INLINE      inline
#define CY_PREFETCH(p) ((void)(p))
#endif

/* Our own invariants (never the disk's: damage there is an error code).
 * Always checked: a broken invariant stops the process with its place
 * rather than let it damage a database. */
#define CY_ASSERT(c) \
    do { if (CY_UNLIKELY(!(c))) cy_assert_fail(#c, __FILE__, __LINE__); } while (0)

/* A prefetch must sit in the function that wants the data, or in a
 * CY_INLINE helper: GCC judges a function whose only effect is a prefetch
 * to be pure and deletes every call to it. */

/* In the amalgamation, internals are static; test hooks and helpers that a
 * given build does not call are then unused, which is fine. */
#ifdef CY_AMALGAMATION
#define CY_INTERNAL static CY_UNUSED
#else
#define CY_INTERNAL
#endif

CY_INTERNAL void cy_assert_fail(const char *what, const char *file, int line)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((noreturn, cold))
#endif
    ;

// >> alloc -------------------------------------------------------------------
/* Every allocation of the engine goes through these (src/alloc.c), which
 * call through a small table holding libc's allocator or the one the
 * application configured (calypso_config_allocator): a test build lays a
 * countdown over it (src/alloc_fault.c) to make the Nth allocation fail and
 * check that the caller reports CALYPSO_ENOMEM and leaves its state
 * unchanged. */
CY_INTERNAL void *cy_malloc(size_t n);
CY_INTERNAL void *cy_calloc(size_t count, size_t size);
CY_INTERNAL void *cy_realloc(void *p, size_t n);
/* For a block about to be written through: fills the page tables of the
 * whole pages inside [p, p + len) in one system call (MADV_POPULATE_WRITE)
 * instead of a page fault per 4 KiB, which in a VM costs an exit each
 * (opening 1M keys took 18.7k faults, 5.2k with this). A hint: without
 * the kernel's support nothing changes. */
CY_INTERNAL void  cy_alloc_prefault(void *p, size_t len);
/* Asks for transparent huge pages under the 2 MiB-aligned part of
 * [p, p + len): for memory read at random, as the key directory is, fewer
 * TLB misses. A hint. */
CY_INTERNAL void  cy_alloc_hugepages(void *p, size_t len);
CY_INTERNAL void  cy_free(void *p);

/* Every calypso_open holds the allocator before its first allocation and
 * releases it after its handle's last free (close, or a failed open):
 * calypso_config_allocator refuses while any handle holds it. */
CY_INTERNAL void cy_alloc_hold(void);
CY_INTERNAL void cy_alloc_release(void);

typedef struct cy_alloc_table {
    void *(*malloc)(size_t n);
    void *(*calloc)(size_t count, size_t size);
    void *(*realloc)(void *p, size_t n);
} cy_alloc_table;

// >> os ----------------------------------------------------------------------
/* Every file-system call of the engine goes through the table in src/os.c
 * (as SQLite's os_unix.c aSyscall[]), so that a test build can lay layers
 * over it (src/os_fault.c, src/os_powerloss.c) that count calls, make the
 * Nth call of a kind fail with a chosen errno (once or from then on), make a
 * write short, and simulate a power loss. Each wrapper returns >= 0 on
 * success or a negative errno; EINTR is retried inside. */
CY_INTERNAL int     cy_os_open(const char *path, int flags, uint32_t mode);
CY_INTERNAL int     cy_os_close(int fd);
/* Reads up to n bytes at off, looping over short reads; returns the bytes
 * read (fewer than n only at end of file) or -errno. */
CY_INTERNAL int64_t cy_os_pread(int fd, void *buf, size_t n, uint64_t off);
/* As cy_os_pread, scattering into cnt buffers (counted as a pread). */
CY_INTERNAL int64_t cy_os_preadv(int fd, const struct iovec *iov, int cnt, uint64_t off);
/* Writes all n bytes at off; returns 0 or -errno (after a partial write). */
CY_INTERNAL int     cy_os_pwrite(int fd, const void *buf, size_t n, uint64_t off);
/* As cy_os_pwrite, gathering from cnt (at most 4) buffers. */
CY_INTERNAL int     cy_os_pwritev(int fd, const struct iovec *iov, int cnt, uint64_t off);
CY_INTERNAL int     cy_os_fsync(int fd);
CY_INTERNAL int     cy_os_fdatasync(int fd);
/* Starts writing back [off, off+len) of fd without waiting and without
 * making anything durable (sync_file_range WRITE; 0 where there is none):
 * a later fdatasync then has less left to do. */
CY_INTERNAL int     cy_os_writeback(int fd, uint64_t off, uint64_t len);
CY_INTERNAL int     cy_os_ftruncate(int fd, uint64_t size);
CY_INTERNAL int     cy_os_rename(const char *from, const char *to);
CY_INTERNAL int     cy_os_unlink(const char *path);
CY_INTERNAL int     cy_os_mkdir(const char *path, uint32_t mode);
CY_INTERNAL int     cy_os_rmdir(const char *path);
CY_INTERNAL int     cy_os_fsize(int fd, uint64_t *size);
/* stat(2) of a path: its size and whether it is a directory (either pointer
 * may be NULL); -ENOENT when it does not exist. */
CY_INTERNAL int     cy_os_stat(const char *path, uint64_t *size, int *is_dir);
/* flock(LOCK_EX or LOCK_SH | LOCK_NB); -EWOULDBLOCK when held elsewhere.
 * With CY_OS_RANGE in op, a lock on one byte of the file instead (an open
 * file description lock, fcntl F_OFD_SETLK; never waits): CY_OS_RANGE_RD
 * (shared), CY_OS_RANGE_WR (exclusive, needs a writable descriptor) or
 * neither (unlock), of byte CY_OS_RANGE_AT(n); -EWOULDBLOCK when another
 * open file holds a conflicting lock. With CY_OS_RANGE_TEST as well it only
 * asks (F_OFD_GETLK): 0 when the lock could be taken, -EWOULDBLOCK when
 * not. Range locks and flocks on one file do not interact (Linux). */
CY_INTERNAL int     cy_os_flock(int fd, int op);
#define CY_OS_RANGE        0x10000
#define CY_OS_RANGE_RD     0x20000
#define CY_OS_RANGE_WR     0x40000
#define CY_OS_RANGE_TEST   0x80000
#define CY_OS_RANGE_AT(n)  ((n) << 8)
#define CY_OS_RANGE_BYTE(op) (((op) >> 8) & 0xff)
/* Read-only shared mapping of [0, size); *out = NULL and -errno on failure. */
CY_INTERNAL int     cy_os_mmap(int fd, uint64_t size, void **out);
/* Read-write shared mapping of [0, size) of fd (which may be shorter: only
 * the part below the file's end may be touched). */
CY_INTERNAL int     cy_os_mmap_rw(int fd, uint64_t size, void **out);
/* Allocates disk blocks for [off, off+len) and extends the file to cover
 * it, so that writes through a mapping cannot fail for lack of space. */
CY_INTERNAL int     cy_os_fallocate(int fd, uint64_t off, uint64_t len);
/* A write into a shared writable mapping of fd (map + off), counted and
 * fault-injectable as a pwrite: the bytes are in the page cache when it
 * returns, so they survive the process being killed. */
CY_INTERNAL int     cy_os_map_write(int fd, uint8_t *map, uint64_t off, const void *src,
                                    size_t n);
CY_INTERNAL void    cy_os_munmap(void *p, uint64_t size);
/* fsync of the directory at path: makes creations, renames, removals in it
 * durable. */
CY_INTERNAL int     cy_os_sync_dir(const char *path);
/* Calls fn(name, ctx) for each entry of a directory except . and ..;
 * stops when fn returns non-zero and returns that; -errno on failure. */
CY_INTERNAL int     cy_os_list_dir(const char *path,
                                   int (*fn)(const char *name, void *ctx), void *ctx);

/* The table's entries, one per wrapper above except munmap and sync_dir
 * (sync_dir is open, fsync and close through the table). */
typedef struct cy_os_table {
    int     (*open)(const char *path, int flags, uint32_t mode);
    int     (*close)(int fd);
    int64_t (*pread)(int fd, void *buf, size_t n, uint64_t off);
    int64_t (*preadv)(int fd, const struct iovec *iov, int cnt, uint64_t off);
    int     (*pwrite)(int fd, const void *buf, size_t n, uint64_t off);
    int     (*pwritev)(int fd, const struct iovec *iov, int cnt, uint64_t off);
    int     (*fsync)(int fd);
    int     (*fdatasync)(int fd);
    int     (*ftruncate)(int fd, uint64_t size);
    int     (*fallocate)(int fd, uint64_t off, uint64_t len);
    int     (*map_write)(int fd, uint8_t *map, uint64_t off, const void *src, size_t n);
    int     (*rename)(const char *from, const char *to);
    int     (*unlink)(const char *path);
    int     (*mkdir)(const char *path, uint32_t mode);
    int     (*rmdir)(const char *path);
    int     (*fsize)(int fd, uint64_t *size);
    int     (*stat)(const char *path, uint64_t *size, int *is_dir);
    int     (*flock)(int fd, int op);
    int     (*mmap)(int fd, uint64_t size, void **out);
    int     (*mmap_rw)(int fd, uint64_t size, void **out);
    int     (*list_dir)(const char *path, int (*fn)(const char *name, void *ctx), void *ctx);
    int     (*writeback)(int fd, uint64_t off, uint64_t len);   /* NULL in a layer: below's */
} cy_os_table;

#ifndef CY_AMALGAMATION
/* The test layers and their hooks exist in the module build only:
 * tools/amalgamate drops this block, so calypso.c has neither the hooks nor
 * their names. */
#include "testhooks.h"
#endif

// >> art ---------------------------------------------------------------------
/* The key directory: an Adaptive Radix Tree (src/art.c) mapping binary keys
 * of 0..CY_ART_MAX_KEY bytes to a 16-byte value, in memcmp order with the
 * shorter key first on a tie. Keys may contain any byte and may be prefixes
 * of each other. The tree is not thread-safe: the engine holds its keydir
 * lock around every call. */
#define CY_ART_MAX_KEY 65535u

/* Where the newest record of a key lives. 16 bytes, stored inline in the
 * leaf. The ART treats it as opaque. */
typedef struct cy_loc {
    uint64_t off;   /* byte offset of the record in its datafile          */
    uint32_t fid;   /* datafile id, plus CY_LOC_* flag bits on top        */
    uint32_t size;  /* size of the whole record in bytes                  */
} cy_loc;

#define CY_LOC_TTL     0x80000000u  /* the key has an expiry (TTL index)  */
#define CY_LOC_FIDMASK 0x7fffffffu

typedef struct cy_art {
    void    *root;     /* tagged node pointer; NULL when empty            */
    uint64_t count;    /* keys in the tree                                 */
    uint64_t bytes;    /* bytes held by nodes and leaves (keys included)   */
    uint32_t max_klen; /* longest key since the tree was last empty: it
                          bounds the height, so iterator stacks            */
    uint32_t fingered; /* cy_art_finger_on was called                      */
    uint32_t bulk;     /* cy_art_bulk(t, 1): being loaded in bulk          */
    struct cy_art_slab *slab;  /* the nodes' and leaves' pages (art.c); NULL until the
                          first insert, kept until cy_art_destroy        */
    struct cy_art_finger *finger;  /* the last insert's path (art.c): made
                          by the first insert of a tree with `fingered`
                          (NULL if that allocation failed), kept until
                          cy_art_destroy, as the slab                    */
} cy_art;

CY_INTERNAL void cy_art_init(cy_art *t);
CY_INTERNAL void cy_art_destroy(cy_art *t);          /* frees everything */
/* Marks the tree as being loaded in bulk (on) or done with it (off: also
 * stops the thread a large load starts to fill its pages ahead, and
 * returns the bytes that thread filled; 0 for on). */
CY_INTERNAL uint64_t cy_art_bulk(cy_art *t, int on);
/* Makes inserts remember their path, so that an insert of a key near the
 * last one starts where the two keys' paths part instead of at the root
 * (keys inserted in order, as open replays a hint, skip most of the
 * descent). Until cy_art_destroy (or cy_art_init). Allocates nothing
 * itself: the first insert does, like the leaves' slab, and works the
 * same, only slower, when that allocation fails. */
CY_INTERNAL void cy_art_finger_on(cy_art *t);

/* Inserts or replaces. Returns 0 if the key was new, 1 if it replaced a
 * value (then *old, when not NULL, receives the previous value), or
 * CALYPSO_ENOMEM with the tree unchanged. */
CY_INTERNAL int cy_art_insert(cy_art *t, const void *key, size_t klen,
                              const cy_loc *loc, cy_loc *old);

/* Builds a tree from keys in strictly increasing order, each node made once
 * at its final size (open loads a hint's sorted entries so). Begin on an
 * empty tree; until end, the tree is not searchable and nothing but add may
 * touch it. add returns CALYPSO_OK, 1 when the key does not come after the
 * last one (nothing added: end the build and insert it), or
 * CALYPSO_ENOMEM (then every later add fails too). end makes the tree of
 * the keys added and returns CALYPSO_OK, or, after a failure, leaves the
 * tree empty and returns CALYPSO_ENOMEM. */
typedef struct cy_art_build {
    cy_art              *t;
    struct cy_art_level *lv;    /* the levels on the path to the last key   */
    unsigned             n, cap;
    void                *last;  /* the last key's leaf (art.c)              */
    int                  rc;    /* a failure: the build is lost             */
} cy_art_build;
CY_INTERNAL void cy_art_build_begin(cy_art *t, cy_art_build *b);
CY_INTERNAL int  cy_art_build_add(cy_art_build *b, const void *key, size_t klen,
                                  const cy_loc *loc);
CY_INTERNAL int  cy_art_build_end(cy_art_build *b);

/* Returns a pointer to the value stored for key, or NULL. The pointer stays
 * valid until the next insert or delete on the tree; the engine uses it to
 * compare-and-swap a location in place. */
CY_INTERNAL cy_loc *cy_art_search(const cy_art *t, const void *key, size_t klen);
/* Looks up keys[0..n) (n <= CY_ART_MANY) with their cache misses overlapped:
 * out[i] is what cy_art_search would return for key i. */
#define CY_ART_MANY 32
CY_INTERNAL void cy_art_search_many(const cy_art *t, size_t n, const uint8_t *const *keys,
                                    const size_t *klens, cy_loc **out);

/* Removes key. Returns 1 if it was there (*old receives its value when not
 * NULL), 0 if absent. Never fails: shrinking a node allocates its smaller
 * form, and if that allocation fails the larger node stays (still valid). */
CY_INTERNAL int cy_art_delete(cy_art *t, const void *key, size_t klen, cy_loc *old);

/* Walks run in key order and stop when fn returns non-zero, returning that
 * value; 0 when the walk completes. fn must not modify the tree. */
typedef int (*cy_art_walk_fn)(const uint8_t *key, size_t klen, const cy_loc *loc,
                              void *ctx);
CY_INTERNAL int cy_art_walk_prefix(const cy_art *t, const void *prefix, size_t plen,
                                   cy_art_walk_fn fn, void *ctx);
/* [start, end] inclusive; start > end walks nothing. */
CY_INTERNAL int cy_art_walk_range(const cy_art *t, const void *start, size_t slen,
                                  const void *end, size_t elen,
                                  cy_art_walk_fn fn, void *ctx);
/* Frees the whole tree, as cy_art_destroy, visiting its leaves in key
 * order as it goes (fn as for a walk; after fn returns nonzero it is not
 * called again, and that value is returned): one pass over the nodes
 * where a walk and then cy_art_destroy would take two. */
CY_INTERNAL int  cy_art_destroy_walk(cy_art *t, cy_art_walk_fn fn, void *ctx);

/* An ordered iterator in the manner of rax: seek with an operator, then step
 * with next/prev. Any insert or delete on the tree invalidates every
 * iterator on it; to go on after a change, seek again with CY_SEEK_GT (or
 * CY_SEEK_LT) from the last key seen: that is how a long scan avoids holding
 * the keydir lock for its whole length. */
enum { CY_SEEK_FIRST, CY_SEEK_LAST, CY_SEEK_GE, CY_SEEK_GT, CY_SEEK_LE, CY_SEEK_LT,
       CY_SEEK_EQ };

typedef struct cy_art_iter {
    const cy_art *tree;
    void   **stack;    /* path of inner nodes from the root (allocated,
                          max_klen + 2 entries, so next/prev never
                          allocate)                                        */
    uint16_t *slot;    /* position taken at each level: 0 the terminal,
                          1 + i a child (inside stack's allocation)        */
    uint32_t depth, cap;
    const void *leaf;  /* current leaf, NULL when not positioned          */
} cy_art_iter;

CY_INTERNAL void cy_art_iter_init(cy_art_iter *it, const cy_art *t);
CY_INTERNAL void cy_art_iter_free(cy_art_iter *it);
/* Positions the iterator. Returns 1 if positioned on a key, 0 if no key
 * satisfies the operator, CALYPSO_ENOMEM on allocation failure. key is
 * ignored for FIRST and LAST. */
CY_INTERNAL int cy_art_iter_seek(cy_art_iter *it, int op, const void *key, size_t klen);
CY_INTERNAL int cy_art_iter_next(cy_art_iter *it);   /* 1 moved, 0 at end */
CY_INTERNAL int cy_art_iter_prev(cy_art_iter *it);   /* 1 moved, 0 at end */
/* Borrowed from the leaf; valid until the tree changes. */
CY_INTERNAL const uint8_t *cy_art_iter_key(const cy_art_iter *it, size_t *klen);
CY_INTERNAL const cy_loc  *cy_art_iter_loc(const cy_art_iter *it);
/* Collects the leaves from the current position on as opaque references
 * (valid until the tree changes): at most max, stepping forward, or
 * backward with `backward`, prefetching each leaf as it goes. Leaves lie
 * in allocation order, not key order, so each is a cache miss; collecting
 * a run first and reading it after lets the misses overlap. Returns how
 * many it collected; *rc is then the iterator's state (1 positioned on
 * the next leaf, 0 at the end). */
CY_INTERNAL size_t cy_art_iter_gather(cy_art_iter *it, const void **refs, size_t max,
                                      int backward, int *rc);
CY_INTERNAL const uint8_t *cy_art_ref_key(const void *ref, size_t *klen);
CY_INTERNAL const cy_loc  *cy_art_ref_loc(const void *ref);

/* For tests: walks the whole tree checking its invariants (entries per
 * node, sorted children, prefixes agreeing with the leaves, count and bytes)
 * and fills kinds[] (when not NULL) with the number of Node4, Node16, Node48
 * and Node256. Returns 0 when sound, else a source line in art.c naming the
 * first broken check. Recursive: depth is the tree's height. */
CY_INTERNAL CY_UNUSED int cy_art_verify(const cy_art *t, uint64_t kinds[4]);

// >> record ------------------------------------------------------------------
/* The record codec (src/record.c); doc/format.md is the spec. A record is
 *   crc u32le | type u8 | [expiry varint] | klen varint | vlen varint | key | value
 * where crc is the low 32 bits of XXH3-64 over everything after it. A
 * batch (CY_REC_BATCH) has no key (klen 0) and its value is the batch's
 * records, whole, back to back: one checksum covers them all, so a batch
 * is read back whole or not at all, and each record inside keeps its own
 * checksum and can be read alone at its offset. */
enum { CY_REC_PUT = 1, CY_REC_PUT_TTL = 2, CY_REC_DEL = 3, CY_REC_BATCH = 4,
       CY_REC_NS_CREATE = 5, CY_REC_NS_DROP = 6, CY_REC_SEAL = 7 };
/* A seal (CY_REC_SEAL) opens every regular datafile a rotation starts: no
 * key (klen 0), and as its value the id of the file rotation sealed and
 * how many bytes it sealed it at (two varints), so that open can tell a
 * sealed file that lost its tail to a power loss (doc/format.md, "The
 * torn-tail rule"). It is never inside a batch and never live. */
#define CY_REC_SEAL_MAX 22u   /* crc, type, klen, vlen, and two varints (5 + 10) */
/* On disk, bit 7 of a put's or tombstone's type says a namespace id
 * follows the type byte (doc/format.md, Namespaces); cy_rec.type never has
 * it: the id is in cy_rec.ns (0 = the default namespace). */
#define CY_REC_NS 0x80
#define CY_REC_MAX_HDR 32u   /* crc + type + four varints (28 bytes at most) */

typedef struct cy_rec {
    int      type;
    uint32_t ns;         /* namespace id (types 1-3), or the id a catalog
                            record creates or drops (types 5, 6)          */
    uint64_t expiry;     /* absolute ms since the epoch; 0 = none        */
    uint64_t klen, vlen;
    uint32_t hdr;        /* header bytes, crc included                   */
    uint32_t crc;        /* as stored                                    */
} cy_rec;

CY_INTERNAL size_t   cy_varint_put(uint8_t *p, uint64_t v);
/* Decodes a varint from [p, end); returns bytes used, 0 if truncated or
 * over 10 bytes. */
CY_INTERNAL size_t   cy_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v);
CY_INTERNAL size_t   cy_varint_len(uint64_t v);
/* Writes a record header (crc left 0) for the given fields into out
 * (CY_REC_MAX_HDR bytes); returns its length. */
CY_INTERNAL uint32_t cy_rec_header(uint8_t *out, int type, uint64_t expiry,
                                   uint64_t klen, uint64_t vlen);
/* The same for a record of namespace ns (types 1-3: 0 is the default
 * namespace, written without the flag), or a catalog record of id ns. */
CY_INTERNAL uint32_t cy_rec_header_ns(uint8_t *out, int type, uint32_t ns, uint64_t expiry,
                                      uint64_t klen, uint64_t vlen);
/* Parses a header from [p, p+avail). 1: parsed into *r; 0: avail too
 * short to tell; -1: not a valid header. */
CY_INTERNAL int      cy_rec_parse(const uint8_t *p, size_t avail, cy_rec *r);
/* Verifies that the size bytes at rec are one whole record: its header
 * parses, its lengths add up to size, and its checksum holds. NULL when
 * they are (parsed into *r), else what is wrong, for a message. Every
 * reader of a record on disk verifies it here. */
CY_INTERNAL const char *cy_rec_verify(const uint8_t *rec, size_t size, cy_rec *r);
/* 1 if the size bytes at rec are a whole, checksummed put of key with that
 * expiry (as a keydir entry promises), parsed into *r (its value is at
 * rec + r->hdr + r->klen); 0 otherwise. */
CY_INTERNAL int      cy_rec_matches(const uint8_t *rec, uint32_t size, const void *key,
                                    size_t klen, uint64_t expiry, cy_rec *r);
/* XXH3-64 low 32 bits over one or two pieces, as the record crc. */
CY_INTERNAL uint32_t cy_crc(const void *a, size_t alen, const void *b, size_t blen);
/* The same crc over bytes that come in pieces: cy_crc_begin (NULL when out
 * of memory), cy_crc_add for each piece in order, cy_crc_end (which frees
 * the state) gives cy_crc of their concatenation. */
CY_INTERNAL void    *cy_crc_begin(void);
CY_INTERNAL void     cy_crc_add(void *st, const void *p, size_t n);
CY_INTERNAL uint32_t cy_crc_end(void *st);
CY_INTERNAL void     cy_put_u32(uint8_t *p, uint32_t v);
CY_INTERNAL uint32_t cy_get_u32(const uint8_t *p);
CY_INTERNAL void     cy_put_u64(uint8_t *p, uint64_t v);
CY_INTERNAL uint64_t cy_get_u64(const uint8_t *p);
/* Calls fn(r, rec, rel, ctx) for each entry of the verified record `rec`
 * (parsed as *r): the record itself, or for a batch each record inside it,
 * parsed, with its offset from the batch's start. Returns the first
 * non-zero result of fn, or CALYPSO_ECORRUPT when a batch's body does not
 * parse into whole records (only a crafted file can be like that: the
 * batch's checksum held). */
typedef int (*cy_rec_entry_fn)(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx);
CY_INTERNAL int      cy_rec_entries(const uint8_t *rec, const cy_rec *r, cy_rec_entry_fn fn,
                                    void *ctx);
/* Header length of a record with these fields, from its total size (the
 * vlen varint's width is solved for). 0 if no header fits. */
CY_INTERNAL uint32_t cy_rec_hdr_len(int type, uint64_t expiry, uint64_t klen, uint64_t size);
/* 1 when a record of this type carries a namespace id after its type byte. */
static inline int cy_rec_has_ns(int type, uint32_t ns)
{
    return type == CY_REC_NS_CREATE || type == CY_REC_NS_DROP ||
           (ns && type >= CY_REC_PUT && type <= CY_REC_DEL);
}

/* Encodes a tombstone for key into rec (CY_REC_MAX_HDR + klen + 10 bytes)
 * naming the file of the record it deletes; returns its size. */
CY_INTERNAL size_t cy_rec_encode_tombstone(uint8_t *rec, uint32_t ns, const void *key,
                                           size_t klen, uint32_t victim);
/* Encodes the seal naming file `fid` sealed at `size` bytes into rec
 * (CY_REC_SEAL_MAX bytes); returns its size. */
CY_INTERNAL size_t cy_rec_encode_seal(uint8_t *rec, uint32_t fid, uint64_t size);
/* The file and size a verified seal record (parsed as *r) names: 0, or -1
 * when its value does not hold exactly those two numbers. */
CY_INTERNAL int    cy_rec_seal_of(const uint8_t *rec, const cy_rec *r, uint32_t *fid,
                                  uint64_t *size);

#endif /* CY_INTERNAL_H */
