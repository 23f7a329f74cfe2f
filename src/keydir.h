/*
 * keydir.h: the key directory (keydir.c): applying records, lookups,
 * merge's compare-and-swap, and the one batched iterator.
 *
 * Locks: kd_lock: exclusive to change, shared to look up; write_mu beside
 * it for changes.
 */
#ifndef CY_KEYDIR_H
#define CY_KEYDIR_H

#include "keylist.h"
#include "ns.h"
#include "ttl.h"

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
/* Reads the path cy_keydir_move will take for key into the cache, so that
 * the move itself, under kd_lock exclusive, is short. kd_lock shared. */
CY_INTERNAL void cy_keydir_touch(calypso *db, const cy_kd_move *mv, const uint8_t *key,
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
    uint64_t       seq;       /* db->views.commit_seq as the last batch ended */
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

#endif /* CY_KEYDIR_H */
