/*
 * art.c: the key directory, an Adaptive Radix Tree (after Leis et al. and the
 * layout of armon/libart) mapping binary keys of 0..CY_ART_MAX_KEY bytes to a
 * 16-byte cy_loc, kept in memcmp order (shorter key first on a tie).
 *
 * References. A child reference is a tagged pointer: bit 0 set means a leaf,
 * clear an inner node (nodes and leaves are 8-aligned, so the low bits are
 * free). For a leaf, bit 1 tells its layout, and bit 2 says
 * that a slab leaf's key length is in the reference's top 16 bits (on 64-bit
 * systems, whenever the address leaves them zero): a lookup then checks the
 * length without reading the page header, a cache line and usually a TLB
 * entry of its own. Without it the length comes from the header.
 *
 * Leaves. Each holds the value and the whole key. A key of up to
 * CY_ART_SLAB_KMAX bytes lives in the tree's slab:
 *   { cy_loc loc; uint8_t key[klen]; }   16 + klen rounded up to 8 bytes,
 * in a slot of a 64 KiB page aligned to 64 KiB whose header holds the key
 * length of all its slots: a leaf finds its length by masking its address,
 * so a 16-byte key takes a 32-byte slot, with no length field and no malloc
 * header. Each key length is a class with its own current page and a free
 * list of slots that deletes gave back (linked through the slot's first
 * word); pages are carved from chunks of 2, 4, ... 64 pages obtained with
 * cy_malloc (plus one page of slack to align them, or 2 MiB for chunks of
 * 2 MiB or more, aligned for huge pages), which only
 * cy_art_destroy returns. Longer keys get one allocation each,
 *   { cy_loc loc; uint16_t klen; uint8_t key[klen]; }   18 + klen bytes,
 * tagged with bit 1.
 * Inner nodes come from the same chunks: pages of their own, handed out
 * from the front, and a free list per node size. Growing a node frees its
 * old size as it takes the next, so the next node to grow that far takes
 * the slot; filling a tree costs no malloc per growth step, and its nodes
 * sit on the huge pages with its leaves. A large bulk load (cy_art_bulk)
 * takes its chunks 256 MiB at a time and has a second thread fill their
 * page tables just ahead of the inserts ("bulk loading" below).
 * Because every leaf has its full key, inner nodes keep no prefix bytes at
 * all, only the prefix length ("optimistic" path compression): a lookup skips
 * the prefix and compares the whole key once at the leaf; insert, delete and
 * seek read the prefix bytes out of any leaf below the node when they need
 * them. That keeps the node header at 8 bytes and makes collapsing a node
 * into its only child (path re-compression) pure arithmetic, so delete never
 * has to allocate to stay correct.
 *
 * Inner nodes. An 8-byte header { bits, n, plen, key4[4] } then, by kind:
 *   Node4    keys in key4, kids[cap]            cap 1, 2, 4: 8 + 8*cap
 *   Node16   keys[16], kids[cap]                cap 8, 12, 16
 *   Node48   bitmap[4] (uint64), kids[cap] sorted by byte: a child's
 *            slot is its rank, one popcount (running counts in key4)
 *                                               cap 24..224 in steps of 8
 *   Node256  kids[256]                          n kept in key4 as uint16
 * and, when bit CY_ART_TSLOT is set, one more slot kids[cap] for the
 * terminal leaf: the key that ends exactly where this node's prefix ends.
 * It sorts before every child, which is what makes keys that are prefixes
 * of other keys (and the empty key) work. The slot may hold NULL when a
 * delete could not afford to shrink the node. Node48 grows past libart's 48
 * in steps of 8 because for random keys the second-to-last level is full of
 * nodes with ~100-150 children, where a 2 KiB Node256 would cost more than
 * the leaves' own keys; past 224 children the Node256 is the smaller one.
 * The bitmap replaces libart's 256-byte index: 32 bytes instead of 256, and
 * header and bitmap share a cache line, so a lookup touches two lines
 * (bitmap, child slot) instead of three (header, index, child slot).
 *
 * Invariants: every inner node has n + (terminal present) >= 2; Node4/16
 * keys are sorted and unique; Node48 kids[0..n) are dense, in byte order,
 * and key4[0..2] hold its bitmap's running popcounts; a terminal leaf's
 * key has length depth + plen of its node; a leaf is in the slab exactly
 * when its key has at most CY_ART_SLAB_KMAX bytes; t->count is the leaves;
 * t->bytes is the sum of the sizes of live nodes and live leaves (slab
 * slots in use, big leaves as allocated). It does not count slab
 * overhead: a 64-byte header per 64 KiB leaf page (0.1%), the alignment
 * slack of each chunk (one page, or 2 MiB for the larger chunks; not
 * touched, so not resident), the never-used tail of each key length's
 * current page and of the node page (touched only as far as used), the
 * pages a bulk load's filler filled ahead (at most CY_ART_BULK_AHEAD), free
 * slots and nodes left by deletes and growth until inserts of that size
 * reuse them (memory the slab keeps until cy_art_destroy), and the class
 * tables made on the first insert (18 KiB);
 * t->max_klen is a high-water mark of key lengths since the tree was last
 * empty, which bounds the number of inner nodes on any path (max_klen + 1)
 * and so the iterator's stack.
 *
 * Building. Keys given in order (open reading a sorted hint into an empty
 * tree) can be built from instead of inserted (cy_art_build_*): each node
 * is made once, at its final size, when its last key has come.
 *
 * Memory. Insert allocates at most a leaf and one node (slab slots, each of
 * which may need a new chunk), both before it changes anything, so
 * CALYPSO_ENOMEM leaves the tree as it was (a chunk obtained for a leaf
 * whose node then failed stays in the slab, its slot on the free list). Delete
 * shrinks a node by allocating its smaller form; if that allocation fails it
 * keeps the larger node, which is still valid, so delete cannot fail. A
 * build allocates a key's leaf and the nodes it closes before it changes
 * anything; one that runs out of memory gives back all it made and leaves
 * the tree empty.
 *
 * Not thread-safe: the engine holds its keydir lock around every call. The
 * one thread of art.c's own, a bulk load's filler, touches no tree data:
 * it only asks the kernel to fill page tables of the slab's chunk.
 */
#include "internal.h"

#include <assert.h>
#include <pthread.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif

#if defined(__SSE2__)
#include <emmintrin.h>
#define CY_ART_SSE2 1
#endif

// >> layout ------------------------------------------------------------------

enum { CY_ART_N4, CY_ART_N16, CY_ART_N48, CY_ART_N256 };

#define CY_ART_KIND     0x03u  /* bits 0..1: node kind                        */
#define CY_ART_TSLOT    0x04u  /* bit 2: a terminal slot follows the kids     */
#define CY_ART_CAPSHIFT 3      /* bits 3..7: cap (Node48: cap / 8)            */
#define CY_ART_N48_MAX  224u   /* past this many kids a Node256 is smaller    */
#define CY_ART_POS_END  258    /* iteration position past the last child      */

typedef struct cy_art_node {
    uint8_t  bits;     /* kind | CY_ART_TSLOT | capacity code                 */
    uint8_t  n;        /* children (Node256 keeps its count in key4)          */
    uint16_t plen;     /* compressed path length; the bytes live in leaves    */
    uint8_t  key4[4];  /* Node4: the children's key bytes, sorted; Node48:
                          children in bitmap words 0..w, for w < 3          */
} cy_art_node;

/* Leaves. A slab leaf is { cy_loc loc; uint8_t key[klen]; } in a slot of
 * its page's class, the key length in the page header; a big leaf (klen >
 * CY_ART_SLAB_KMAX) is one allocation { cy_loc loc; uint16_t klen;
 * uint8_t key[klen]; }. A leaf reference is the address of its loc with
 * bit 0 set, and bit 1 set too for a big leaf. */
#define CY_ART_BIG        0x02u
#define CY_ART_KLEN       0x04u   /* slab leaf whose key length is in the
                                     reference's top 16 bits                */
#if UINTPTR_MAX > 0xffffffffu
#define CY_ART_KLEN_SHIFT 48
#endif
#define CY_ART_PAGE       65536u  /* slab page: size and alignment            */
#define CY_ART_PAGE_HDR   64u     /* page header: slots start a line in       */
#define CY_ART_SLAB_KMAX  1024u   /* longer keys get an allocation each       */
#define CY_ART_CHUNK_MAX  64u     /* pages per chunk, at most                 */
#define CY_ART_HUGE       ((size_t)2 << 20)   /* a transparent huge page  */

typedef struct cy_art_page {
    uint16_t klen;     /* the key length of every leaf on this page          */
} cy_art_page;

typedef struct cy_art_class {
    uint8_t *free;     /* freed slots, linked through their first word       */
    uint8_t *next;     /* next unused slot of the current page (NULL: none)  */
} cy_art_class;

/* Inner nodes are 8 + 8k bytes, at most a Node256 with its terminal slot:
 * 8 + 2048 + 8. Freed ones are kept by size in 8-byte units. */
#define CY_ART_NODE_MAX   2064u
#define CY_ART_NODE_CLS   (CY_ART_NODE_MAX / 8u + 1u)

struct cy_art_slab {
    cy_art_class cls[CY_ART_SLAB_KMAX + 1];   /* by key length               */
    uint8_t *node_free[CY_ART_NODE_CLS];      /* freed nodes by size / 8,
                                                 linked through their first
                                                 word                      */
    uint8_t *node_next, *node_end;  /* unused rest of the current node page  */
    uint64_t big;                   /* live big leaves (their own mallocs)   */
    struct cy_art_fill *fill;       /* the page filler of a bulk load       */
    uint8_t *page_next, *page_end;  /* aligned pages of the newest chunk not
                                       yet handed to a class              */
    uint8_t *chunks;                /* every chunk, linked through its first
                                       word (which precedes its first page) */
    uint32_t chunk_pages;           /* pages in the newest chunk           */
};

/* Offset of kids[] from the node start, by kind. */
static const uint16_t cy_art_kids_off[4] = { 8, 24, 40, 8 };

/* A node's children as sorted (byte, ref) pairs: the common currency of
 * growing, shrinking and adding a terminal slot. */
typedef struct cy_art_pairs {
    unsigned n;
    uint8_t  byte[256];
    void    *kid[256];
} cy_art_pairs;

static inline int cy_art_is_leaf(const void *ref)
{
    return ((uintptr_t)ref & 1u) != 0;
}

/* Where a leaf's loc is: the reference without its tags. */
static inline uintptr_t cy_art_leaf_addr(const void *ref)
{
    uintptr_t a = (uintptr_t)ref;
#if defined(CY_ART_KLEN_SHIFT)
    if (a & CY_ART_KLEN) return a & (((uintptr_t)1 << CY_ART_KLEN_SHIFT) - 8u);
#endif
    return a & ~(uintptr_t)3u;
}

static inline cy_loc *cy_art_leaf_loc(const void *ref)
{
    return (cy_loc *)cy_art_leaf_addr(ref);
}

/* Bit 1 of the reference is 2 exactly when the key sits 2 bytes further. */
static inline const uint8_t *cy_art_leaf_key(const void *ref)
{
    return (const uint8_t *)(cy_art_leaf_addr(ref) + sizeof(cy_loc) +
                             ((uintptr_t)ref & CY_ART_BIG));
}

/* From the reference itself when it carries the length, else from the big
 * leaf or from the slab page's header. */
static inline size_t cy_art_leaf_klen(const void *ref)
{
    uintptr_t a = (uintptr_t)ref;
    uint16_t klen;
#if defined(CY_ART_KLEN_SHIFT)
    if (a & CY_ART_KLEN) return (size_t)(a >> CY_ART_KLEN_SHIFT);
#endif
    if (a & CY_ART_BIG) memcpy(&klen, (const uint8_t *)(a - 3u) + sizeof(cy_loc), sizeof klen);
    else klen = ((const cy_art_page *)(a & ~(uintptr_t)(CY_ART_PAGE - 1u)))->klen;
    return klen;
}

static inline unsigned cy_art_kind(const cy_art_node *n)
{
    return n->bits & CY_ART_KIND;
}

static inline unsigned cy_art_cap(const cy_art_node *n)
{
    unsigned code = (unsigned)n->bits >> CY_ART_CAPSHIFT;
    switch (cy_art_kind(n)) {
    case CY_ART_N48:  return code * 8;
    case CY_ART_N256: return 256;
    default:          return code;
    }
}

static inline unsigned cy_art_count(const cy_art_node *n)
{
    if (cy_art_kind(n) != CY_ART_N256) return n->n;
    uint16_t c;
    memcpy(&c, n->key4, sizeof c);
    return c;
}

static inline void cy_art_set_count(cy_art_node *n, unsigned c)
{
    if (cy_art_kind(n) != CY_ART_N256) {
        n->n = (uint8_t)c;
    } else {
        uint16_t v = (uint16_t)c;
        memcpy(n->key4, &v, sizeof v);
    }
}

static inline void **cy_art_kids(const cy_art_node *n)
{
    return (void **)((uintptr_t)n + cy_art_kids_off[cy_art_kind(n)]);
}

/* Node4 and Node16: the sorted key bytes. */
static inline uint8_t *cy_art_keys(const cy_art_node *n)
{
    if (cy_art_kind(n) == CY_ART_N4) return (uint8_t *)(uintptr_t)n->key4;
    return (uint8_t *)((uintptr_t)n + 8);
}

/* Node48: which bytes have a child. */
static inline uint64_t *cy_art_bitmap(const cy_art_node *n)
{
    return (uint64_t *)((uintptr_t)n + 8);
}

/* Without -mpopcnt, __builtin_popcountll is a call into libgcc; the bit
 * trick inline is as short and needs no call (and the build must not
 * require a CPU flag). */
static inline unsigned cy_art_popcount(uint64_t x)
{
#if defined(__POPCNT__)
    return (unsigned)__builtin_popcountll(x);
#else
    x = x - ((x >> 1) & 0x5555555555555555ull);
    x = (x & 0x3333333333333333ull) + ((x >> 2) & 0x3333333333333333ull);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return (unsigned)((x * 0x0101010101010101ull) >> 56);
#endif
}

static inline unsigned cy_art_ctz(uint64_t x)   /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_ctzll(x);
#else
    unsigned i = 0;
    while (!(x & 1u)) { x >>= 1; i++; }
    return i;
#endif
}

static inline unsigned cy_art_clz(uint64_t x)   /* x != 0 */
{
#if defined(__GNUC__) || defined(__clang__)
    return (unsigned)__builtin_clzll(x);
#else
    unsigned i = 0;
    while (!(x & 0x8000000000000000ull)) { x <<= 1; i++; }
    return i;
#endif
}

/* Node48: the slot of byte c's child (or where it would go) is the number
 * of children with smaller bytes: one popcount, thanks to the running
 * counts kept in key4. */
static inline unsigned cy_art_rank(const cy_art_node *n, unsigned c)
{
    unsigned w = c >> 6;
    uint64_t below = cy_art_bitmap(n)[w] & ((1ull << (c & 63)) - 1u);
    return (w ? n->key4[w - 1] : 0u) + cy_art_popcount(below);
}

static void cy_art_recount(cy_art_node *n)
{
    const uint64_t *bm = cy_art_bitmap(n);
    unsigned run = 0;
    for (unsigned w = 0; w < 3; w++) {
        run += cy_art_popcount(bm[w]);
        n->key4[w] = (uint8_t)run;
    }
}

static inline int cy_art_has_bit(const cy_art_node *n, unsigned b)
{
    return (int)((cy_art_bitmap(n)[b >> 6] >> (b & 63)) & 1u);
}

static inline void **cy_art_tslot(const cy_art_node *n)
{
    return (n->bits & CY_ART_TSLOT) ? cy_art_kids(n) + cy_art_cap(n) : NULL;
}

static inline void *cy_art_term(const cy_art_node *n)
{
    void **s = cy_art_tslot(n);
    return s ? *s : NULL;
}

static size_t cy_art_node_size(unsigned kind, unsigned cap, int tslot)
{
    return cy_art_kids_off[kind] + sizeof(void *) * (cap + (tslot ? 1u : 0u));
}

/* A slab slot keeps the next slot's loc 8-aligned; a big leaf is exact. */
static inline size_t cy_art_leaf_size(size_t klen)
{
    if (klen > CY_ART_SLAB_KMAX) return sizeof(cy_loc) + sizeof(uint16_t) + klen;
    return (sizeof(cy_loc) + klen + 7u) & ~(size_t)7u;
}

/* Short keys compare 8 bytes at a time inline; long ones with memcmp. */
static inline int cy_art_key_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    if (n > 32) return memcmp(a, b, n) == 0;
    uint64_t diff = 0, x, y;
    for (; n >= 8; n -= 8, a += 8, b += 8) {
        memcpy(&x, a, 8);
        memcpy(&y, b, 8);
        diff |= x ^ y;
    }
    for (; n > 0; n--) diff |= (uint64_t)(*a++ ^ *b++);
    return diff == 0;
}

static inline int cy_art_leaf_eq(const void *ref, const uint8_t *k, size_t klen)
{
    return cy_art_leaf_klen(ref) == klen && cy_art_key_eq(cy_art_leaf_key(ref), k, klen);
}

/* memcmp order, the shorter key first on a tie. */
static int cy_art_keycmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    size_t m = alen < blen ? alen : blen;
    int r = m ? memcmp(a, b, m) : 0;
    if (r) return r;
    return (alen > blen) - (alen < blen);
}

// >> allocation ----------------------------------------------------------------

// >> bulk loading ---------------------------------------------------------------
/* A tree being bulk loaded (open replaying hints: cy_art_bulk) that has
 * grown past CY_ART_BULK_MIN takes its chunks CY_ART_BULK_CHUNK at a time,
 * and a second thread fills their page tables a little ahead of the pages
 * handed out (MADV_POPULATE_WRITE); when it is that far ahead it sleeps,
 * and the inserting thread wakes it as soon as it has used one huge page
 * of the lead (cy_art_fill_used). The lead then stays nearly constant: a
 * filler woken only after half of it was used, filling 4 MiB in a burst,
 * made a 10M-key open 30% slower here. The kernel zeroes each fresh page on
 * its first touch, which otherwise falls on the inserting thread: a third
 * of the time of opening a large database. The filler stays at most
 * CY_ART_BULK_AHEAD plus one huge page past the last page handed out, so
 * a load that ends early leaves that much resident and unused at most;
 * the rest of the chunk is address space the tree fills as it grows. */
#define CY_ART_BULK_MIN    ((uint64_t)32 << 20)
#define CY_ART_BULK_CHUNK  ((size_t)256 << 20)
#define CY_ART_BULK_AHEAD  ((size_t)8 << 20)

#if defined(__linux__) && defined(MADV_POPULATE_WRITE)
#define CY_ART_FILL 1
struct cy_art_fill {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint8_t *from, *to;    /* the chunk being filled (mu)                   */
    uint8_t *done;         /* filled below this (mu)                        */
    uint8_t *use;          /* pages below this are handed out (atomic)      */
    uint8_t *wake;         /* the filler sleeps until use reaches this, or
                              NULL (atomic; set under mu)                  */
    uint64_t filled;       /* bytes filled in all (mu)                      */
    int stop;              /* (mu)                                          */
};

static void *cy_art_fill_main(void *arg)
{
    struct cy_art_fill *f = arg;
    pthread_mutex_lock(&f->mu);
    while (!f->stop) {
        uint8_t *use = __atomic_load_n(&f->use, __ATOMIC_SEQ_CST);
        if (f->done < use) f->done = use;   /* the inserts overtook it */
        if (f->done < f->to && (size_t)(f->done - use) < CY_ART_BULK_AHEAD) {
            uint8_t *a = f->done, *b = a + CY_ART_HUGE, *from = f->from;
            if (b > f->to) b = f->to;
            pthread_mutex_unlock(&f->mu);
            int ok = madvise(a, (size_t)(b - a), MADV_POPULATE_WRITE) == 0;
            pthread_mutex_lock(&f->mu);
            if (ok) f->filled += (uint64_t)(b - a);
            if (f->from == from) f->done = b;   /* else a new chunk came */
            continue;
        }
        /* Ahead, or at the chunk's end: sleep until a new chunk, the end,
         * or (ahead) until the inserts have used a huge page of the lead
         * (cy_art_fill_used). Publishing wake, then reading use again,
         * against the inserter's store of use, then read of wake (both
         * sequentially consistent): either the inserter sees wake and
         * signals under mu, which it can take only once this thread waits,
         * or this thread sees the use that would have woken it. */
        uint8_t *wake = f->done < f->to ? f->done - (CY_ART_BULK_AHEAD - CY_ART_HUGE) : NULL;
        __atomic_store_n(&f->wake, wake, __ATOMIC_SEQ_CST);
        if (!wake || (uintptr_t)__atomic_load_n(&f->use, __ATOMIC_SEQ_CST) < (uintptr_t)wake)
            pthread_cond_wait(&f->cv, &f->mu);
        __atomic_store_n(&f->wake, NULL, __ATOMIC_RELAXED);
    }
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* Hands the filler a new chunk [from, to); starts it on the first. A
 * filler that cannot start leaves the faults to the inserting thread. */
static void cy_art_fill_chunk(struct cy_art_slab *s, uint8_t *from, uint8_t *to)
{
    struct cy_art_fill *f = s->fill;
    if (!f) {
        f = cy_calloc(1, sizeof *f);
        if (!f) return;
        pthread_mutex_init(&f->mu, NULL);
        pthread_cond_init(&f->cv, NULL);
        f->from = f->done = f->use = from;
        f->to = to;
        if (pthread_create(&f->thread, NULL, cy_art_fill_main, f) != 0) {
            pthread_cond_destroy(&f->cv);
            pthread_mutex_destroy(&f->mu);
            cy_free(f);
            return;
        }
        s->fill = f;
        return;
    }
    pthread_mutex_lock(&f->mu);
    f->from = f->done = from;
    f->to = to;
    __atomic_store_n(&f->use, from, __ATOMIC_RELAXED);
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* The inserting thread has handed out the pages below use: wakes the
 * filler when it sleeps ahead and the inserts have come far enough. */
static void cy_art_fill_used(struct cy_art_fill *f, uint8_t *use)
{
    __atomic_store_n(&f->use, use, __ATOMIC_SEQ_CST);
    uint8_t *wake = __atomic_load_n(&f->wake, __ATOMIC_SEQ_CST);
    if (wake && (uintptr_t)use >= (uintptr_t)wake) {
        pthread_mutex_lock(&f->mu);
        pthread_cond_signal(&f->cv);
        pthread_mutex_unlock(&f->mu);
    }
}

/* Stops and joins the filler; returns the bytes it filled. */
static uint64_t cy_art_fill_stop(struct cy_art_slab *s)
{
    struct cy_art_fill *f = s ? s->fill : NULL;
    if (!f) return 0;
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    pthread_cond_signal(&f->cv);
    pthread_mutex_unlock(&f->mu);
    pthread_join(f->thread, NULL);
    uint64_t filled = f->filled;
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    cy_free(f);
    s->fill = NULL;
    return filled;
}
#else
static void cy_art_fill_chunk(struct cy_art_slab *s, uint8_t *from, uint8_t *to)
{
    (void)s;
    (void)from;
    (void)to;
}
static uint64_t cy_art_fill_stop(struct cy_art_slab *s)
{
    (void)s;
    return 0;
}
#endif

#ifndef CY_AMALGAMATION
/* testhooks.h. tools/amalgamate drops this block. */
CY_INTERNAL uint64_t cy_art_bulk_filled(cy_art *t)
{
    uint64_t filled = 0;
#if defined(CY_ART_FILL)
    struct cy_art_fill *f = t->slab ? t->slab->fill : NULL;
    if (f) {
        pthread_mutex_lock(&f->mu);
        filled = f->filled;
        pthread_mutex_unlock(&f->mu);
    }
#else
    (void)t;
#endif
    return filled;
}
#endif

CY_INTERNAL uint64_t cy_art_bulk(cy_art *t, int on)
{
    t->bulk = on != 0;
    return on ? 0 : cy_art_fill_stop(t->slab);
}

// >> allocation ----------------------------------------------------------------

/* A fresh aligned page from the newest chunk, or from a new chunk twice
 * the size of the last (up to CY_ART_CHUNK_MAX pages; a large tree being
 * bulk loaded takes CY_ART_BULK_CHUNK). A chunk is one allocation of its
 * pages plus slack for the alignment. */
static uint8_t *cy_art_slab_page(cy_art *t, struct cy_art_slab *s, int prefault)
{
    if (s->page_next == s->page_end) {
        uint32_t np = s->chunk_pages ? s->chunk_pages * 2u : 2u;
        if (np > CY_ART_CHUNK_MAX) np = CY_ART_CHUNK_MAX;
        int bulk = t->bulk && t->bytes >= CY_ART_BULK_MIN;
        if (bulk) np = (uint32_t)(CY_ART_BULK_CHUNK / CY_ART_PAGE);
        /* A chunk of 2 MiB or more starts on a 2 MiB boundary, so that
         * transparent huge pages can cover all of it (one TLB entry per
         * 2 MiB of leaves): malloc's mmap gives page alignment only, and a
         * 4 MiB chunk then holds one whole huge page, not two. */
        size_t span = (size_t)np * CY_ART_PAGE;
        size_t align = span >= CY_ART_HUGE ? CY_ART_HUGE : CY_ART_PAGE;
        size_t bytes = span + align + sizeof(uint8_t *);
        uint8_t *c = cy_malloc(bytes);
        if (!c) return NULL;
        memcpy(c, &s->chunks, sizeof s->chunks);
        s->chunks = c;
        uintptr_t first = ((uintptr_t)c + sizeof(uint8_t *) + align - 1u) & ~(uintptr_t)(align - 1u);
        cy_alloc_hugepages((uint8_t *)first, span);
        s->page_next = (uint8_t *)first;
        s->page_end = (uint8_t *)first + (size_t)np * CY_ART_PAGE;
        s->chunk_pages = bulk ? CY_ART_CHUNK_MAX : np;
        if (bulk) cy_art_fill_chunk(s, s->page_next, s->page_end);
    }
    uint8_t *p = s->page_next;
    s->page_next += CY_ART_PAGE;
#if defined(CY_ART_FILL)
    if (s->fill) cy_art_fill_used(s->fill, s->page_next);
#endif
    /* A leaf page's slots are handed out in order from now on: its page
     * tables are filled at once, not by a fault per 4 KiB. A node page is
     * not: a small tree's nodes touch only the first lines of theirs. */
    if (prefault) cy_alloc_prefault(p, CY_ART_PAGE);
    return p;
}

/* The tree's slab, made on first use; NULL when that allocation fails. */
static struct cy_art_slab *cy_art_slab_get(cy_art *t)
{
    if (CY_UNLIKELY(!t->slab)) t->slab = cy_calloc(1, sizeof *t->slab);
    return t->slab;
}

/* A node comes from the slab too: a freed node of its size, or the next
 * bytes of the current node page, or the start of a fresh page (the rest
 * of the old one, when a node fits there, goes on the free list of its
 * size). Node growth frees one size and takes the next: the one it frees
 * is what the next node to grow that far takes, so filling a tree reuses
 * the same few slots per size instead of going through malloc for each
 * step, and the nodes share the slab's huge pages with the leaves. */
static cy_art_node *cy_art_node_new(cy_art *t, unsigned kind, unsigned cap, int tslot)
{
    size_t size = cy_art_node_size(kind, cap, tslot);
    struct cy_art_slab *s = cy_art_slab_get(t);
    if (!s) return NULL;
    uint8_t **fl = &s->node_free[size / 8u];
    uint8_t *p = *fl;
    if (p) {
        memcpy(fl, p, sizeof *fl);
    } else {
        if (CY_UNLIKELY((size_t)(s->node_end - s->node_next) < size)) {
            uint8_t *page = cy_art_slab_page(t, s, 0);
            if (!page) return NULL;
            size_t rest = (size_t)(s->node_end - s->node_next);
            if (rest >= 16u) {
                memcpy(s->node_next, &s->node_free[rest / 8u], sizeof(uint8_t *));
                s->node_free[rest / 8u] = s->node_next;
            }
            s->node_next = page;
            s->node_end = page + CY_ART_PAGE;
        }
        p = s->node_next;
        s->node_next += size;
    }
    cy_art_node *n = (cy_art_node *)(void *)p;
    memset(n, 0, size);
    unsigned code = kind == CY_ART_N48 ? cap / 8 : kind == CY_ART_N256 ? 0 : cap;
    n->bits = (uint8_t)(kind | (tslot ? CY_ART_TSLOT : 0u) | code << CY_ART_CAPSHIFT);
    t->bytes += size;
    return n;
}

static void cy_art_node_free(cy_art *t, cy_art_node *n)
{
    size_t size = cy_art_node_size(cy_art_kind(n), cy_art_cap(n), n->bits & CY_ART_TSLOT);
    uint8_t **fl = &t->slab->node_free[size / 8u];
    t->bytes -= size;
    memcpy(n, fl, sizeof *fl);
    *fl = (uint8_t *)(void *)n;
}

#ifndef CY_AMALGAMATION
/* testhooks.h. tools/amalgamate drops this block. */
CY_INTERNAL void cy_art_slab_drain(cy_art *t)
{
    struct cy_art_slab *s = t->slab;
    if (!s) return;
    memset(s->node_free, 0, sizeof s->node_free);
    s->node_next = s->node_end;
    s->page_next = s->page_end;
}
#endif

/* A slot for a klen-byte key: a freed one, the next of the class's page, or
 * the first of a new page. NULL when a needed allocation fails. */
static uint8_t *cy_art_slab_alloc(cy_art *t, size_t klen, size_t size)
{
    struct cy_art_slab *s = cy_art_slab_get(t);
    if (!s) return NULL;
    cy_art_class *c = &s->cls[klen];
    uint8_t *p = c->free;
    if (p) {
        memcpy(&c->free, p, sizeof c->free);
        return p;
    }
    p = c->next;
    uintptr_t off = (uintptr_t)p & (CY_ART_PAGE - 1u);
    if (CY_UNLIKELY(!p || off == 0 || off + size > CY_ART_PAGE)) {
        p = cy_art_slab_page(t, s, 1);
        if (!p) return NULL;
        ((cy_art_page *)(void *)p)->klen = (uint16_t)klen;
        p += CY_ART_PAGE_HDR;
    }
    c->next = p + size;
    return p;
}

/* A new leaf's reference, or NULL when out of memory. */
static void *cy_art_leaf_new(cy_art *t, const uint8_t *k, size_t klen, const cy_loc *loc)
{
    size_t size = cy_art_leaf_size(klen);
    uintptr_t tag = 1u;
    uint8_t *p;
    if (CY_LIKELY(klen <= CY_ART_SLAB_KMAX)) {
        p = cy_art_slab_alloc(t, klen, size);
        if (!p) return NULL;
#if defined(CY_ART_KLEN_SHIFT)
        /* Where the address leaves the top 16 bits free (every 64-bit
         * system but those that tag pointers there themselves), the length
         * rides in them: a lookup then never reads the page header. */
        if (((uintptr_t)p >> CY_ART_KLEN_SHIFT) == 0)
            tag |= CY_ART_KLEN | (uintptr_t)klen << CY_ART_KLEN_SHIFT;
#endif
    } else {
        uint16_t kl = (uint16_t)klen;
        struct cy_art_slab *s = cy_art_slab_get(t);
        if (!s) return NULL;
        p = cy_malloc(size);
        if (!p) return NULL;
        memcpy(p + sizeof(cy_loc), &kl, sizeof kl);
        tag |= CY_ART_BIG;
        s->big++;
    }
    memcpy(p, loc, sizeof *loc);
    void *ref = (void *)((uintptr_t)p | tag);
    assert(cy_art_leaf_addr(ref) == (uintptr_t)p && cy_art_leaf_klen(ref) == klen);
    if (klen) memcpy((uint8_t *)(uintptr_t)cy_art_leaf_key(ref), k, klen);
    t->bytes += size;
    return ref;
}

static void cy_art_leaf_free(cy_art *t, void *ref)
{
    size_t klen = cy_art_leaf_klen(ref);
    uint8_t *p = (uint8_t *)cy_art_leaf_loc(ref);
    t->bytes -= cy_art_leaf_size(klen);
    if ((uintptr_t)ref & CY_ART_BIG) {
        t->slab->big--;
        cy_free(p);
        return;
    }
    cy_art_class *c = &t->slab->cls[klen];
    memcpy(p, &c->free, sizeof c->free);
    c->free = p;
}

/* Returns every slab page (the slab leaves need no other freeing). */
static void cy_art_slab_destroy(cy_art *t)
{
    struct cy_art_slab *s = t->slab;
    if (!s) return;
    cy_art_fill_stop(s);
    while (s->chunks) {
        uint8_t *c = s->chunks;
        memcpy(&s->chunks, c, sizeof s->chunks);
        cy_free(c);
    }
    cy_free(s);
    t->slab = NULL;
}

/* The smallest kind and capacity that hold count children. */
static void cy_art_fit(unsigned count, unsigned *kind, unsigned *cap)
{
    if (count <= 4) {
        *kind = CY_ART_N4;
        *cap = count <= 2 ? (count ? count : 1) : 4;   /* a third kid: room for a fourth */
    } else if (count <= 16) {
        *kind = CY_ART_N16;
        *cap = (count + 3) & ~3u;
    } else if (count <= CY_ART_N48_MAX) {
        *kind = CY_ART_N48;
        *cap = (count + 7) & ~7u;
    } else {
        *kind = CY_ART_N256;
        *cap = 256;
    }
}

// >> child lookup ---------------------------------------------------------------

static inline void **cy_art_find16(const cy_art_node *n, uint8_t c)
{
    const uint8_t *keys = cy_art_keys(n);
    unsigned cnt = n->n;
#if defined(CY_ART_SSE2)
    __m128i hit = _mm_cmpeq_epi8(_mm_set1_epi8((char)c),
                                 _mm_loadu_si128((const __m128i *)(const void *)keys));
    unsigned mask = (unsigned)_mm_movemask_epi8(hit) & ((1u << cnt) - 1u);
    return mask ? cy_art_kids(n) + __builtin_ctz(mask) : NULL;
#else
    for (unsigned i = 0; i < cnt; i++)
        if (keys[i] == c) return cy_art_kids(n) + i;
    return NULL;
#endif
}

/* The hot path of every descent: inlined into search and insert even where
 * the compiler would rather call it. */
#if defined(__GNUC__) || defined(__clang__)
#define CY_ART_HOT inline __attribute__((always_inline))
#else
#define CY_ART_HOT inline
#endif

/* The slot of the child under byte c, or NULL. */
static CY_ART_HOT void **cy_art_find(const cy_art_node *n, uint8_t c)
{
    void **kids = cy_art_kids(n);
    switch (cy_art_kind(n)) {
    case CY_ART_N4:
        for (unsigned i = 0; i < n->n; i++)
            if (n->key4[i] == c) return kids + i;
        return NULL;
    case CY_ART_N16:
        return cy_art_find16(n, c);
    case CY_ART_N48:
        return cy_art_has_bit(n, c) ? kids + cy_art_rank(n, c) : NULL;
    default:
        return kids[c] ? kids + c : NULL;
    }
}

/* Some child of a node with children (any one will do). */
static void *cy_art_some_kid(const cy_art_node *n)
{
    void **kids = cy_art_kids(n);
    if (cy_art_kind(n) != CY_ART_N256) return kids[0];
    for (unsigned b = 0; b < 256; b++)
        if (kids[b]) return kids[b];
    return NULL;
}

/* Some leaf below ref: where a node's prefix bytes are read from. */
static const void *cy_art_any_leaf(const void *ref)
{
    while (!cy_art_is_leaf(ref)) {
        const cy_art_node *n = ref;
        void *term = cy_art_term(n);
        ref = term ? term : cy_art_some_kid(n);
    }
    return ref;
}

/* The key of some leaf below ref. */
static inline const uint8_t *cy_art_any_key(const void *ref)
{
    return cy_art_leaf_key(cy_art_any_leaf(ref));
}

// >> node surgery -----------------------------------------------------------------

static void cy_art_collect(const cy_art_node *n, cy_art_pairs *p)
{
    void **kids = cy_art_kids(n);
    unsigned cnt = cy_art_count(n), b;
    p->n = 0;
    switch (cy_art_kind(n)) {
    case CY_ART_N4:
    case CY_ART_N16:
        memcpy(p->byte, cy_art_keys(n), cnt);
        memcpy(p->kid, kids, cnt * sizeof *kids);
        p->n = cnt;
        break;
    case CY_ART_N48:
        for (b = 0; b < 256; b++) {
            if (!cy_art_has_bit(n, b)) continue;
            p->byte[p->n] = (uint8_t)b;
            p->kid[p->n] = kids[p->n];
            p->n++;
        }
        break;
    default:
        for (b = 0; b < 256; b++) {
            if (!kids[b]) continue;
            p->byte[p->n] = (uint8_t)b;
            p->kid[p->n++] = kids[b];
        }
        break;
    }
}

static void cy_art_pairs_add(cy_art_pairs *p, uint8_t c, void *kid)
{
    unsigned i = p->n;
    while (i > 0 && p->byte[i - 1] > c) {
        p->byte[i] = p->byte[i - 1];
        p->kid[i] = p->kid[i - 1];
        i--;
    }
    p->byte[i] = c;
    p->kid[i] = kid;
    p->n++;
}

/* Fills an empty node (fresh from cy_art_node_new) with sorted pairs. */
static void cy_art_fill(cy_art_node *n, const cy_art_pairs *p)
{
    void **kids = cy_art_kids(n);
    unsigned i;
    switch (cy_art_kind(n)) {
    case CY_ART_N4:
    case CY_ART_N16:
        memcpy(cy_art_keys(n), p->byte, p->n);
        memcpy(kids, p->kid, p->n * sizeof *kids);
        break;
    case CY_ART_N48:
        for (i = 0; i < p->n; i++) {
            cy_art_bitmap(n)[p->byte[i] >> 6] |= 1ull << (p->byte[i] & 63);
            kids[i] = p->kid[i];
        }
        cy_art_recount(n);
        break;
    default:
        for (i = 0; i < p->n; i++) kids[p->byte[i]] = p->kid[i];
        break;
    }
    cy_art_set_count(n, p->n);
}

/* Adds a child to a node that has room for it. */
static void cy_art_add_in_place(cy_art_node *n, uint8_t c, void *kid)
{
    void **kids = cy_art_kids(n);
    unsigned cnt = cy_art_count(n);
    assert(cnt < cy_art_cap(n));
    switch (cy_art_kind(n)) {
    case CY_ART_N4:
    case CY_ART_N16: {
        /* At most 15 moves: a loop beats a call to memmove. */
        uint8_t *keys = cy_art_keys(n);
        unsigned i = cnt;
        for (; i > 0 && keys[i - 1] > c; i--) {
            keys[i] = keys[i - 1];
            kids[i] = kids[i - 1];
        }
        keys[i] = c;
        kids[i] = kid;
        break;
    }
    case CY_ART_N48: {
        unsigned r = cy_art_rank(n, c);
        memmove(kids + r + 1, kids + r, (cnt - r) * sizeof *kids);
        kids[r] = kid;
        cy_art_bitmap(n)[c >> 6] |= 1ull << (c & 63);
        cy_art_recount(n);
        break;
    }
    default:
        kids[c] = kid;
        break;
    }
    cy_art_set_count(n, cnt + 1);
}

/* A copy of n as kind/cap (with a terminal slot if tslot), plus the child
 * kid under byte c when kid is not NULL. Returns NULL when the allocation
 * fails; n is not touched either way. */
static cy_art_node *cy_art_rebuild(cy_art *t, const cy_art_node *n, unsigned kind,
                                   unsigned cap, int tslot, uint8_t c, void *kid)
{
    cy_art_node *m = cy_art_node_new(t, kind, cap, tslot);
    if (!m) return NULL;
    unsigned from = cy_art_kind(n), cnt = cy_art_count(n);
    if (from == kind) {
        /* Same layout: header, keys or bitmap and the first cnt kids in
         * one copy (all 256 for a Node256), then the new capacity code. */
        uint8_t bits = m->bits;
        memcpy(m, n, cy_art_kids_off[kind] + sizeof(void *) * (kind == CY_ART_N256 ? 256u : cnt));
        m->bits = bits;
        if (kid) cy_art_add_in_place(m, c, kid);
    } else if (from <= CY_ART_N16 && kind <= CY_ART_N16) {
        memcpy(cy_art_keys(m), cy_art_keys(n), cnt);
        memcpy(cy_art_kids(m), cy_art_kids(n), sizeof(void *) * cnt);
        m->n = (uint8_t)cnt;
        m->plen = n->plen;
        if (kid) cy_art_add_in_place(m, c, kid);
    } else {
        cy_art_pairs p;
        cy_art_collect(n, &p);
        if (kid) cy_art_pairs_add(&p, c, kid);
        cy_art_fill(m, &p);
        m->plen = n->plen;
    }
    if (tslot) *cy_art_tslot(m) = cy_art_term(n);
    return m;
}

/* Removes the child under byte c (which must exist). */
static void cy_art_remove_in_place(cy_art_node *n, uint8_t c)
{
    void **kids = cy_art_kids(n);
    unsigned cnt = cy_art_count(n);
    switch (cy_art_kind(n)) {
    case CY_ART_N4:
    case CY_ART_N16: {
        uint8_t *keys = cy_art_keys(n);
        unsigned i = (unsigned)(cy_art_find(n, c) - kids);
        memmove(keys + i, keys + i + 1, cnt - i - 1);
        memmove(kids + i, kids + i + 1, (cnt - i - 1) * sizeof *kids);
        kids[cnt - 1] = NULL;
        break;
    }
    case CY_ART_N48: {
        unsigned r = cy_art_rank(n, c);
        memmove(kids + r, kids + r + 1, (cnt - r - 1) * sizeof *kids);
        kids[cnt - 1] = NULL;
        cy_art_bitmap(n)[c >> 6] &= ~(1ull << (c & 63));
        cy_art_recount(n);
        break;
    }
    default:
        kids[c] = NULL;
        break;
    }
    cy_art_set_count(n, cnt - 1);
}

/* Puts kid under byte c of the node at *slot, growing it when full. */
static int cy_art_put_child(cy_art *t, void **slot, uint8_t c, void *kid)
{
    cy_art_node *n = *slot;
    unsigned cnt = cy_art_count(n), kind, cap;
    if (cnt < cy_art_cap(n)) {
        cy_art_add_in_place(n, c, kid);
        return 0;
    }
    cy_art_fit(cnt + 1, &kind, &cap);
    cy_art_node *m = cy_art_rebuild(t, n, kind, cap, (n->bits & CY_ART_TSLOT) != 0, c, kid);
    if (!m) return CALYPSO_ENOMEM;
    *slot = m;
    cy_art_node_free(t, n);
    return 0;
}

/* Makes ref the terminal of the node at *slot, adding the slot if needed. */
static int cy_art_put_term(cy_art *t, void **slot, void *ref)
{
    cy_art_node *n = *slot;
    void **ts = cy_art_tslot(n);
    if (!ts) {
        cy_art_node *m = cy_art_rebuild(t, n, cy_art_kind(n), cy_art_cap(n), 1, 0, NULL);
        if (!m) return CALYPSO_ENOMEM;
        *slot = m;
        cy_art_node_free(t, n);
        ts = cy_art_tslot(m);
    }
    *ts = ref;
    return 0;
}

// >> insert ------------------------------------------------------------------

/* A new Node4 for two leaves that agree up to byte `at`: the one whose key
 * ends there becomes the terminal. */
static void cy_art_place(cy_art_node *n, void *leaf, const uint8_t *key, size_t klen,
                         size_t at)
{
    if (klen == at) *cy_art_tslot(n) = leaf;
    else cy_art_add_in_place(n, key[at], leaf);
}

/* *slot is a leaf with a different key: both go under a new Node4 whose
 * prefix is what they share past depth. */
static int cy_art_split_leaf(cy_art *t, void **slot, size_t depth, const uint8_t *k,
                             size_t klen, const cy_loc *loc)
{
    void *old = *slot;
    const uint8_t *okey = cy_art_leaf_key(old);
    size_t olen = cy_art_leaf_klen(old);
    size_t max = klen < olen ? klen : olen, i = depth;
    while (i < max && k[i] == okey[i]) i++;
    void *l = cy_art_leaf_new(t, k, klen, loc);
    if (!l) return CALYPSO_ENOMEM;
    int term = i == klen || i == olen;
    cy_art_node *n = cy_art_node_new(t, CY_ART_N4, term ? 1 : 2, term);
    if (!n) {
        cy_art_leaf_free(t, l);
        return CALYPSO_ENOMEM;
    }
    n->plen = (uint16_t)(i - depth);
    cy_art_place(n, old, okey, olen, i);
    cy_art_place(n, l, k, klen, i);
    *slot = n;
    return 0;
}

/* The key leaves the node at *slot after m < plen prefix bytes: a new Node4
 * takes the first m bytes, the old node hangs under its byte m. */
static int cy_art_split_prefix(cy_art *t, void **slot, size_t depth, size_t m,
                               const uint8_t *k, size_t klen, const cy_loc *loc)
{
    cy_art_node *n = *slot;
    uint8_t nb = cy_art_any_key(n)[depth + m];
    void *l = cy_art_leaf_new(t, k, klen, loc);
    if (!l) return CALYPSO_ENOMEM;
    int term = depth + m == klen;
    cy_art_node *top = cy_art_node_new(t, CY_ART_N4, term ? 1 : 2, term);
    if (!top) {
        cy_art_leaf_free(t, l);
        return CALYPSO_ENOMEM;
    }
    top->plen = (uint16_t)m;
    n->plen = (uint16_t)(n->plen - m - 1);
    cy_art_add_in_place(top, nb, n);
    if (term) *cy_art_tslot(top) = l;
    else cy_art_add_in_place(top, k[depth + m], l);
    *slot = top;
    return 0;
}

/* How many of the node's prefix bytes the key matches from depth. */
static size_t cy_art_prefix_match(const cy_art_node *n, size_t depth, const uint8_t *k,
                                  size_t klen)
{
    const uint8_t *lk = cy_art_any_key(n);
    size_t max = klen - depth < n->plen ? klen - depth : n->plen, i = 0;
    while (i < max && lk[depth + i] == k[depth + i]) i++;
    return i;
}

/* A new leaf as the terminal or as the child under k[depth] of *slot. */
static int cy_art_add_leaf(cy_art *t, void **slot, size_t depth, const uint8_t *k,
                           size_t klen, const cy_loc *loc)
{
    void *l = cy_art_leaf_new(t, k, klen, loc);
    if (!l) return CALYPSO_ENOMEM;
    int rc = depth == klen ? cy_art_put_term(t, slot, l)
                           : cy_art_put_child(t, slot, k[depth], l);
    if (rc) cy_art_leaf_free(t, l);
    return rc;
}

// >> the finger --------------------------------------------------------------------
/* The path of the last insert (cy_art_finger_on): for each inner node on
 * it, root first, the slot that holds it and the key depth at which it is
 * entered (before its prefix), and a copy of the key. The next insert
 * shares lcp leading bytes with that key, so it passes through every node
 * of the path entered at depth <= lcp (the branch that led there took a
 * byte before lcp), and the prefixes of those nodes, which are bytes of
 * the last key, match it wherever they end at or before lcp: the insert
 * starts at the deepest such node and compares no prefix it already
 * knows. Each insert changes the tree only at the last node it reaches,
 * and records the path anew from where it started, so no slot on the path
 * ever points into a node that a growth replaced. Every other change
 * (delete) forgets the path. The root is slot NULL, so that a tree moved
 * by copying (ns.c, view.c) keeps a valid finger. */
#define CY_ART_FINGER_LEVELS 24
#define CY_ART_FINGER_KMAX   64
#define CY_ART_FINGER_NONE   (CY_ART_FINGER_KMAX + 1)

typedef struct cy_art_finger {
    uint32_t n;        /* path entries                                     */
    uint32_t klen;     /* of the last key; CY_ART_FINGER_NONE: none kept    */
    struct { void **slot; size_t depth; } at[CY_ART_FINGER_LEVELS];
    uint8_t  key[CY_ART_FINGER_KMAX];
} cy_art_finger;

CY_INTERNAL void cy_art_finger_on(cy_art *t)
{
    t->fingered = 1;
}

/* The tree's finger, made on its first use; NULL without one. */
static cy_art_finger *cy_art_finger_get(cy_art *t)
{
    if (!t->finger && t->fingered) {
        cy_art_finger *f = cy_malloc(sizeof *f);
        if (!f) return NULL;   /* tried again at the next insert */
        f->n = 0;
        f->klen = CY_ART_FINGER_NONE;
        t->finger = f;
    }
    return t->finger;
}

static void cy_art_finger_forget(cy_art *t)
{
    if (t->finger) {
        t->finger->n = 0;
        t->finger->klen = CY_ART_FINGER_NONE;
    }
}

/* Where an insert of k starts: *slot and *depth of the deepest node the
 * key passes through for sure, and how many leading bytes (*known) are
 * the last key's. Truncates the path to the nodes above it. */
static void cy_art_finger_start(cy_art *t, cy_art_finger *f, const uint8_t *k, size_t klen,
                                void ***slot, size_t *depth, size_t *known)
{
    *slot = &t->root;
    *depth = *known = 0;
    if (f->klen == CY_ART_FINGER_NONE) {
        f->n = 0;
        return;
    }
    size_t max = klen < f->klen ? klen : f->klen, lcp = 0;
    while (lcp < max && k[lcp] == f->key[lcp]) lcp++;
    uint32_t i = f->n;
    while (i > 0 && f->at[i - 1].depth > lcp) i--;
    if (i > 0) {
        i--;
        *slot = f->at[i].slot ? f->at[i].slot : &t->root;
        *depth = f->at[i].depth;
    }
    f->n = i;
    *known = lcp;
}

static CY_INLINE void cy_art_finger_push(cy_art *t, cy_art_finger *f, void **slot, size_t depth)
{
    if (f && f->n < CY_ART_FINGER_LEVELS) {
        f->at[f->n].slot = slot == &t->root ? NULL : slot;
        f->at[f->n].depth = depth;
        f->n++;
    }
}

/* Walks down from *slot (entered at depth; the first `known` key bytes
 * need no prefix check) to where key belongs and adds or replaces it
 * there, recording the inner nodes it passes in f (when not NULL). */
static int cy_art_insert_at(cy_art *t, void **slot, size_t depth, size_t known,
                            const uint8_t *k, size_t klen, const cy_loc *loc, cy_loc *old,
                            cy_art_finger *f)
{
    for (;;) {
        void *ref = *slot;
        if (!ref) {
            void *l = cy_art_leaf_new(t, k, klen, loc);
            if (!l) return CALYPSO_ENOMEM;
            *slot = l;
            return 0;
        }
        if (cy_art_is_leaf(ref)) {
            if (!cy_art_leaf_eq(ref, k, klen)) {
                int rc = cy_art_split_leaf(t, slot, depth, k, klen, loc);
                if (rc == 0) cy_art_finger_push(t, f, slot, depth);   /* the new node */
                return rc;
            }
            if (old) *old = *cy_art_leaf_loc(ref);
            *cy_art_leaf_loc(ref) = *loc;
            return 1;
        }
        cy_art_node *n = ref;
        cy_art_finger_push(t, f, slot, depth);
        if (n->plen) {
            if (depth + n->plen > known) {
                size_t m = cy_art_prefix_match(n, depth, k, klen);
                if (m < n->plen) return cy_art_split_prefix(t, slot, depth, m, k, klen, loc);
            }
            depth += n->plen;
        }
        void **next = depth == klen ? cy_art_tslot(n) : cy_art_find(n, k[depth]);
        if (!next || !*next) return cy_art_add_leaf(t, slot, depth, k, klen, loc);
        slot = next;
        depth += depth < klen;
    }
}

CY_INTERNAL int cy_art_insert(cy_art *t, const void *key, size_t klen,
                              const cy_loc *loc, cy_loc *old)
{
    if (klen > CY_ART_MAX_KEY || (!key && klen) || !loc) return CALYPSO_EINVAL;
    cy_art_finger *f = cy_art_finger_get(t);
    void **slot = &t->root;
    size_t depth = 0, known = 0;
    if (f) cy_art_finger_start(t, f, key, klen, &slot, &depth, &known);
    int rc = cy_art_insert_at(t, slot, depth, known, key, klen, loc, old, f);
    if (f) {
        if (rc < 0 || klen > CY_ART_FINGER_KMAX) {
            cy_art_finger_forget(t);
        } else {
            memcpy(f->key, key, klen);
            f->klen = (uint32_t)klen;
        }
    }
    if (rc == 0) {
        t->count++;
        if (klen > t->max_klen) t->max_klen = (uint32_t)klen;
    }
    return rc;
}

// >> building from keys in order ----------------------------------------------------
/* cy_art_build_*: a tree made from keys given in strictly increasing order,
 * each node made once, at its final kind and size, when the last key under
 * it has come. An insert in order grows the lowest node through every size
 * on its way (a Node16 of ten children is made four times: 2, 4, 8, 12 slots) and compares each
 * key with the last one byte by byte; here a key costs its leaf, one
 * comparison with the key before it, and its share of one node.
 *
 * The keys still to be closed over form the path to the last key: a stack
 * of levels, root first, each a node to be that branches at byte `depth`
 * (strictly increasing up the stack), with the children finished so far in
 * byte order, its terminal leaf if a key ends at `depth`, and `cur`, the
 * byte under which the child being built hangs. The last key's leaf is
 * that child, or part of it. A new key sharing lcp bytes with the last one
 * closes every level deeper than lcp (each becomes a node, the child of the
 * level below it), then either continues the level at lcp or opens one
 * there. A node's prefix length is set when it is hung under its parent:
 * the bytes between the parent's branch byte and its own. */

typedef struct cy_art_level {
    size_t       depth;   /* the key byte this level's node branches on     */
    void        *term;    /* the leaf of the key that ends at depth, or NULL */
    uint8_t      cur;     /* the byte of the child being built               */
    cy_art_node *node;    /* being made, while the level closes              */
    cy_art_pairs kids;    /* finished children, in byte order                */
} cy_art_level;

/* Gives back the slots of a subtree that never joined the tree. */
static void cy_art_build_drop(cy_art *t, void *ref)
{
    if (!ref) return;
    if (cy_art_is_leaf(ref)) {
        cy_art_leaf_free(t, ref);
        return;
    }
    cy_art_node *n = ref;
    cy_art_pairs p;
    cy_art_collect(n, &p);
    cy_art_build_drop(t, cy_art_term(n));
    for (unsigned i = 0; i < p.n; i++) cy_art_build_drop(t, p.kid[i]);
    cy_art_node_free(t, n);
}

/* Hangs sub (a leaf, or a node branching at sub_depth) under byte c of
 * level l. */
static void cy_art_build_hang(cy_art_level *l, uint8_t c, void *sub, size_t sub_depth)
{
    if (!cy_art_is_leaf(sub)) ((cy_art_node *)sub)->plen = (uint16_t)(sub_depth - l->depth - 1);
    l->kids.byte[l->kids.n] = c;
    l->kids.kid[l->kids.n++] = sub;
}

/* How many leading bytes a and b share, of the first max: eight at a time. */
static size_t cy_art_lcp(const uint8_t *a, const uint8_t *b, size_t max)
{
    size_t i = 0;
    for (; i + 8 <= max; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        if (x == y) continue;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        return i + cy_art_ctz(x ^ y) / 8u;
#else
        break;
#endif
    }
    while (i < max && a[i] == b[i]) i++;
    return i;
}

CY_INTERNAL void cy_art_build_begin(cy_art *t, cy_art_build *b)
{
    assert(t->root == NULL && t->count == 0);
    *b = (cy_art_build){ .t = t };
}

/* Closes every level deeper than lcp (every level, with all): the last
 * leaf, and the nodes made of those levels, become one subtree (*sub,
 * branching at *sub_depth). The nodes are all allocated first, so that
 * when one cannot be, nothing has changed: CALYPSO_ENOMEM. */
static int cy_art_build_fold(cy_art_build *b, size_t lcp, int all, void **sub,
                             size_t *sub_depth)
{
    unsigned top = b->n, i = top;
    for (; i > 0 && (all || b->lv[i - 1].depth > lcp); i--) {
        cy_art_level *l = &b->lv[i - 1];
        unsigned kind, cap;
        cy_art_fit(l->kids.n + 1, &kind, &cap);
        if (!(l->node = cy_art_node_new(b->t, kind, cap, l->term != NULL))) {
            while (i < top) cy_art_node_free(b->t, b->lv[i++].node);
            return CALYPSO_ENOMEM;
        }
    }
    *sub = b->last;
    *sub_depth = 0;
    for (; b->n > i; b->n--) {
        cy_art_level *l = &b->lv[b->n - 1];
        cy_art_build_hang(l, l->cur, *sub, *sub_depth);
        cy_art_fill(l->node, &l->kids);
        if (l->term) *cy_art_tslot(l->node) = l->term;
        *sub = l->node;
        *sub_depth = l->depth;
    }
    return CALYPSO_OK;
}

CY_INTERNAL int cy_art_build_add(cy_art_build *b, const void *key, size_t klen,
                                 const cy_loc *loc)
{
    cy_art *t = b->t;
    const uint8_t *k = key;
    if (b->rc) return b->rc;
    if (klen > CY_ART_MAX_KEY || (!key && klen) || !loc) return CALYPSO_EINVAL;
    size_t lcp = 0;
    if (b->last) {
        const uint8_t *lk = cy_art_leaf_key(b->last);
        size_t llen = cy_art_leaf_klen(b->last);
        lcp = cy_art_lcp(k, lk, klen < llen ? klen : llen);
        if (lcp == klen || (lcp < llen && k[lcp] < lk[lcp])) return 1;   /* not after it */
    }
    if (b->last && b->n == b->cap) {   /* room for the level lcp may open */
        unsigned cap = b->cap ? b->cap * 2 : 8;
        cy_art_level *lv = cy_realloc(b->lv, cap * sizeof *lv);
        if (!lv) return b->rc = CALYPSO_ENOMEM;
        b->lv = lv;
        b->cap = cap;
    }
    void *leaf = cy_art_leaf_new(t, k, klen, loc);
    if (!leaf) return b->rc = CALYPSO_ENOMEM;
    if (b->last) {
        void *sub;
        size_t sub_depth;
        if (cy_art_build_fold(b, lcp, 0, &sub, &sub_depth)) {
            cy_art_leaf_free(t, leaf);
            return b->rc = CALYPSO_ENOMEM;
        }
        cy_art_level *l = &b->lv[b->n - (b->n > 0)];
        if (b->n > 0 && l->depth == lcp) {
            cy_art_build_hang(l, l->cur, sub, sub_depth);
        } else {
            /* A level at lcp, between the top one (or the root) and sub.
             * The last key ends at lcp only when no level was closed: every
             * level on its path branches before its end. */
            l = &b->lv[b->n++];
            l->depth = lcp;
            l->kids.n = 0;
            l->term = NULL;
            if (lcp == cy_art_leaf_klen(b->last)) l->term = sub;
            else cy_art_build_hang(l, cy_art_leaf_key(b->last)[lcp], sub, sub_depth);
        }
        l->cur = k[lcp];
    }
    b->last = leaf;
    t->count++;
    if (klen > t->max_klen) t->max_klen = (uint32_t)klen;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_art_build_end(cy_art_build *b)
{
    cy_art *t = b->t;
    void *sub = NULL;
    size_t sub_depth = 0;
    int rc = b->rc;
    if (!rc && b->last && !(rc = cy_art_build_fold(b, 0, 1, &sub, &sub_depth))) {
        if (!cy_art_is_leaf(sub)) ((cy_art_node *)sub)->plen = (uint16_t)sub_depth;
        t->root = sub;
    } else if (rc) {
        /* Out of memory: what was built goes, and the tree stays empty. */
        cy_art_build_drop(t, b->last);
        for (unsigned i = 0; i < b->n; i++) {
            cy_art_build_drop(t, b->lv[i].term);
            for (unsigned j = 0; j < b->lv[i].kids.n; j++) cy_art_build_drop(t, b->lv[i].kids.kid[j]);
        }
        t->count = 0;
    }
    cy_free(b->lv);
    cy_art_finger_forget(t);
    *b = (cy_art_build){ .t = t };
    return rc;
}

// >> search -----------------------------------------------------------------

CY_INTERNAL cy_loc *cy_art_search(const cy_art *t, const void *key, size_t klen)
{
    const uint8_t *k = key;
    const void *ref = t->root;
    size_t depth = 0;
    while (ref && !cy_art_is_leaf(ref)) {
        const cy_art_node *n = ref;
        depth += n->plen;   /* optimistic: the leaf check covers these bytes */
        if (depth >= klen) {
            if (depth > klen) return NULL;
            ref = cy_art_term(n);
            break;
        }
        void **next = cy_art_find(n, k[depth++]);
        if (!next) return NULL;
        ref = *next;
    }
    if (!ref) return NULL;
    return cy_art_leaf_eq(ref, k, klen) ? cy_art_leaf_loc(ref) : NULL;
}

/* n lookups at once, in lockstep: each round takes every unfinished key one
 * level down, in two passes, so that the cache misses of different keys
 * overlap instead of following one another. The first pass reads each
 * node (prefetched by the round before) and prefetches the child slot it
 * picks; the second reads the slots and prefetches the children. A lone
 * lookup waits for each of those misses in turn; here up to n are in
 * flight, which is what the memory system can overlap. */
CY_INTERNAL void cy_art_search_many(const cy_art *t, size_t n, const uint8_t *const *keys,
                                    const size_t *klens, cy_loc **out)
{
    const void *ref[CY_ART_MANY];
    void      **slot[CY_ART_MANY];
    size_t      depth[CY_ART_MANY];
    if (n > CY_ART_MANY) n = CY_ART_MANY;
    for (size_t i = 0; i < n; i++) {
        ref[i] = t->root;
        depth[i] = 0;
    }
    for (int inner = 1; inner;) {
        inner = 0;
        for (size_t i = 0; i < n; i++) {
            slot[i] = NULL;
            if (!ref[i] || cy_art_is_leaf(ref[i])) continue;
            const cy_art_node *nd = ref[i];
            depth[i] += nd->plen;   /* optimistic, as cy_art_search */
            if (depth[i] >= klens[i]) {
                ref[i] = depth[i] > klens[i] ? NULL : cy_art_term(nd);
            } else if (!(slot[i] = cy_art_find(nd, keys[i][depth[i]++]))) {
                ref[i] = NULL;
            } else {
                __builtin_prefetch(slot[i]);
            }
        }
        for (size_t i = 0; i < n; i++) {
            if (!slot[i]) continue;
            ref[i] = *slot[i];
            if (!ref[i]) continue;
            if (cy_art_is_leaf(ref[i])) {
                __builtin_prefetch(cy_art_leaf_loc(ref[i]));
            } else {
                __builtin_prefetch(ref[i]);
                inner = 1;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        out[i] = ref[i] && cy_art_leaf_eq(ref[i], keys[i], klens[i]) ? cy_art_leaf_loc(ref[i])
                                                                     : NULL;
}

// >> delete -----------------------------------------------------------------

/* Shrinks the node at *slot when it is well below its capacity or carries
 * an empty terminal slot. An allocation failure keeps the larger node. */
static void cy_art_shrink(cy_art *t, void **slot)
{
    cy_art_node *n = *slot;
    unsigned cnt = cy_art_count(n), cap = cy_art_cap(n), kind = cy_art_kind(n);
    /* Shrink to another kind well below the growth point (256 <-> 192,
     * 17 <-> 12, 5 <-> 3) so that alternating insert and delete at a
     * boundary does not rebuild every time; within a kind, drop spare
     * slots once there are plenty. */
    int want = 1;
    if ((kind == CY_ART_N256 && cnt <= 192) || (kind == CY_ART_N48 && cnt <= 12) ||
        (kind == CY_ART_N16 && cnt <= 3)) cy_art_fit(cnt, &kind, &cap);
    else if (kind == CY_ART_N48 && cap >= cnt + 16) cap = (cnt + 7) & ~7u;
    else if (kind == CY_ART_N16 && cap >= cnt + 8) cap = (cnt + 3) & ~3u;
    else if (kind == CY_ART_N4 && cap > (cnt > 2 ? 4u : cnt ? cnt : 1u)) cy_art_fit(cnt, &kind, &cap);
    else want = 0;
    int term = cy_art_term(n) != NULL;
    if (!want && (term || !(n->bits & CY_ART_TSLOT))) return;
    cy_art_node *m = cy_art_rebuild(t, n, kind, cap, term, 0, NULL);
    if (!m) return;
    *slot = m;
    cy_art_node_free(t, n);
}

/* Takes the leaf at *slot out of the node at *pslot (its terminal when
 * term, else its child under c), then collapses or shrinks that node. */
static void cy_art_unlink(cy_art *t, void **pslot, void **slot, int term, uint8_t c)
{
    cy_art_node *n = *pslot;
    if (term) *slot = NULL;
    else cy_art_remove_in_place(n, c);
    void *tl = cy_art_term(n);
    if (cy_art_count(n) + (tl != NULL) >= 2) {
        cy_art_shrink(t, pslot);
        return;
    }
    /* One entry left: it takes the node's place. An inner child absorbs
     * the node's prefix and the byte that led to it. */
    void *only = tl ? tl : cy_art_some_kid(n);
    if (!cy_art_is_leaf(only)) {
        cy_art_node *kid = only;
        kid->plen = (uint16_t)(kid->plen + n->plen + 1);
    }
    *pslot = only;
    cy_art_node_free(t, n);
}

CY_INTERNAL int cy_art_delete(cy_art *t, const void *key, size_t klen, cy_loc *old)
{
    const uint8_t *k = key;
    void **slot = &t->root, **pslot = NULL;
    size_t depth = 0;
    int term = 0;
    uint8_t c = 0;
    if (klen > CY_ART_MAX_KEY || (!key && klen)) return 0;
    cy_art_finger_forget(t);
    for (;;) {
        void *ref = *slot;
        if (!ref) return 0;
        if (cy_art_is_leaf(ref)) break;
        cy_art_node *n = ref;
        depth += n->plen;
        if (depth > klen) return 0;
        pslot = slot;
        term = depth == klen;
        if (term) {
            slot = cy_art_tslot(n);
            if (!slot) return 0;
        } else {
            c = k[depth++];
            slot = cy_art_find(n, c);
            if (!slot) return 0;
        }
    }
    void *l = *slot;
    if (!cy_art_leaf_eq(l, k, klen)) return 0;
    if (old) *old = *cy_art_leaf_loc(l);
    if (pslot) cy_art_unlink(t, pslot, slot, term, c);
    else t->root = NULL;
    cy_art_leaf_free(t, l);
    if (--t->count == 0) t->max_klen = 0;
    return 1;
}

// >> lifecycle -----------------------------------------------------------------

CY_INTERNAL void cy_art_init(cy_art *t)
{
    memset(t, 0, sizeof *t);
}

/* Frees the big leaves under ref; nodes and slab leaves go with the slab's
 * pages. Recursion depth is the tree's height: one level per branching
 * point on a path, small unless the keys nest thousands deep as prefixes.
 * A node's inner children are fetched all at once before the first is
 * visited, so that the walk waits on many node loads together. */
static void cy_art_free_ref(cy_art *t, void *ref)
{
    if (cy_art_is_leaf(ref)) {
        if ((uintptr_t)ref & CY_ART_BIG) cy_art_leaf_free(t, ref);
        return;
    }
    cy_art_node *n = ref;
    void **kids = cy_art_kids(n);
    /* Node4/16/48 keep their children packed in the first `count` slots;
     * a Node256 has a slot per byte, empty ones NULL. */
    unsigned slots = cy_art_kind(n) == CY_ART_N256 ? 256u : cy_art_count(n);
    for (unsigned i = 0; i < slots; i++)
        if (kids[i] && !cy_art_is_leaf(kids[i])) CY_PREFETCH(kids[i]);
    void *term = cy_art_term(n);
    if (term) cy_art_free_ref(t, term);
    for (unsigned i = 0; i < slots; i++)
        if (kids[i]) cy_art_free_ref(t, kids[i]);
}

/* Without big leaves there is nothing to walk: the slab holds every node
 * and leaf, and goes chunk by chunk. */
CY_INTERNAL void cy_art_destroy(cy_art *t)
{
    if (t->root && t->slab->big) cy_art_free_ref(t, t->root);
    cy_art_slab_destroy(t);
    cy_free(t->finger);
    cy_art_init(t);
}

/* cy_art_free_ref that also hands each leaf to fn first, until fn returns
 * nonzero (that value is returned; freeing goes on). Slot order is key
 * order in every kind (the terminal first), so leaves come in key order.
 * A node's children, leaves too, are fetched together before the first is
 * visited. */
static int cy_art_take_ref(cy_art *t, void *ref, cy_art_walk_fn fn, void *ctx, int rc)
{
    if (cy_art_is_leaf(ref)) {
        if (!rc) rc = fn(cy_art_leaf_key(ref), cy_art_leaf_klen(ref), cy_art_leaf_loc(ref), ctx);
        if ((uintptr_t)ref & CY_ART_BIG) cy_art_leaf_free(t, ref);
        return rc;
    }
    cy_art_node *n = ref;
    void **kids = cy_art_kids(n);
    unsigned slots = cy_art_kind(n) == CY_ART_N256 ? 256u : cy_art_count(n);
    for (unsigned i = 0; i < slots; i++) {
        if (!kids[i]) continue;
        if (cy_art_is_leaf(kids[i])) CY_PREFETCH(cy_art_leaf_loc(kids[i]));
        else CY_PREFETCH(kids[i]);
    }
    void *term = cy_art_term(n);
    if (term) rc = cy_art_take_ref(t, term, fn, ctx, rc);
    for (unsigned i = 0; i < slots; i++)
        if (kids[i]) rc = cy_art_take_ref(t, kids[i], fn, ctx, rc);
    return rc;
}

CY_INTERNAL int cy_art_destroy_walk(cy_art *t, cy_art_walk_fn fn, void *ctx)
{
    int rc = t->root ? cy_art_take_ref(t, t->root, fn, ctx, 0) : 0;
    cy_art_slab_destroy(t);
    cy_free(t->finger);
    cy_art_init(t);
    return rc;
}

// >> iteration positions ----------------------------------------------------------
/* A position names one entry of a node: 0 is the terminal, 1 + i the i-th
 * child of a Node4/16, 1 + b the child under byte b of a Node48/256. */

static void *cy_art_child_at(const cy_art_node *n, int pos)
{
    if (pos == 0) return cy_art_term(n);
    void **kids = cy_art_kids(n);
    if (cy_art_kind(n) == CY_ART_N48) return kids[cy_art_rank(n, (unsigned)pos - 1)];
    return kids[pos - 1];
}

static unsigned cy_art_byte_at(const cy_art_node *n, int pos)
{
    unsigned kind = cy_art_kind(n);
    if (kind == CY_ART_N4 || kind == CY_ART_N16) return cy_art_keys(n)[pos - 1];
    return (unsigned)pos - 1;
}

/* Node48 and Node256: the first byte >= b with a child, or -1. */
static int cy_art_byte_next(const cy_art_node *n, unsigned b)
{
    if (cy_art_kind(n) == CY_ART_N256) {
        void **kids = cy_art_kids(n);
        for (; b < 256; b++)
            if (kids[b]) return (int)b;
        return -1;
    }
    const uint64_t *bm = cy_art_bitmap(n);
    for (unsigned w = b >> 6; w < 4; w++) {
        uint64_t x = bm[w];
        if (w == b >> 6) x &= ~0ull << (b & 63);
        if (x) return (int)(w * 64 + cy_art_ctz(x));
    }
    return -1;
}

/* Node48 and Node256: the last byte <= b with a child, or -1. */
static int cy_art_byte_prev(const cy_art_node *n, int b)
{
    if (cy_art_kind(n) == CY_ART_N256) {
        void **kids = cy_art_kids(n);
        for (; b >= 0; b--)
            if (kids[b]) return b;
        return -1;
    }
    const uint64_t *bm = cy_art_bitmap(n);
    for (int w = b >> 6; w >= 0 && b >= 0; w--) {
        uint64_t x = bm[w];
        if (w == b >> 6 && (b & 63) != 63) x &= (1ull << ((b & 63) + 1)) - 1u;
        if (x) return w * 64 + 63 - (int)cy_art_clz(x);
    }
    return -1;
}

/* The first occupied position after pos (pos -1: from the start), or -1. */
static int cy_art_pos_next(const cy_art_node *n, int pos)
{
    if (pos < 0 && cy_art_term(n)) return 0;
    unsigned kind = cy_art_kind(n);
    if (kind == CY_ART_N4 || kind == CY_ART_N16) {
        int next = pos < 0 ? 1 : pos + 1;
        return next <= (int)cy_art_count(n) ? next : -1;
    }
    if (pos >= 256) return -1;
    int b = cy_art_byte_next(n, pos < 0 ? 0u : (unsigned)pos);
    return b < 0 ? -1 : b + 1;
}

/* The last occupied position before pos (CY_ART_POS_END: from the end),
 * or -1. */
static int cy_art_pos_prev(const cy_art_node *n, int pos)
{
    unsigned kind = cy_art_kind(n);
    if (kind == CY_ART_N4 || kind == CY_ART_N16) {
        int cand = pos - 1 < (int)cy_art_count(n) ? pos - 1 : (int)cy_art_count(n);
        if (cand >= 1) return cand;
    } else if (pos >= 2) {
        int b = cy_art_byte_prev(n, pos - 2 < 255 ? pos - 2 : 255);
        if (b >= 0) return b + 1;
    }
    return pos > 0 && cy_art_term(n) ? 0 : -1;
}

/* The position of the first child with byte >= c, or CY_ART_POS_END. */
static int cy_art_pos_lower(const cy_art_node *n, unsigned c)
{
    unsigned kind = cy_art_kind(n);
    if (kind == CY_ART_N4 || kind == CY_ART_N16) {
        const uint8_t *keys = cy_art_keys(n);
        unsigned cnt = cy_art_count(n), i = 0;
        while (i < cnt && keys[i] < c) i++;
        return i < cnt ? (int)i + 1 : CY_ART_POS_END;
    }
    int pos = cy_art_pos_next(n, (int)c);
    return pos < 0 ? CY_ART_POS_END : pos;
}

// >> iterator -------------------------------------------------------------------

CY_INTERNAL void cy_art_iter_init(cy_art_iter *it, const cy_art *t)
{
    memset(it, 0, sizeof *it);
    it->tree = t;
}

CY_INTERNAL void cy_art_iter_free(cy_art_iter *it)
{
    cy_free(it->stack);
    it->stack = NULL;
    it->slot = NULL;
    it->depth = it->cap = 0;
    it->leaf = NULL;
}

/* One allocation holds both arrays, sized for the tallest possible path so
 * that next and prev never allocate. */
static int cy_art_iter_reserve(cy_art_iter *it)
{
    size_t need = (size_t)it->tree->max_klen + 2;
    if (it->cap >= need) return 0;
    void **b = cy_malloc(need * (sizeof(void *) + sizeof(uint16_t)));
    if (!b) return CALYPSO_ENOMEM;
    cy_free(it->stack);
    it->stack = b;
    it->slot = (uint16_t *)(void *)(b + need);
    it->cap = (uint32_t)need;
    return 0;
}

static void cy_art_iter_push(cy_art_iter *it, const cy_art_node *n, int pos)
{
    assert(it->depth < it->cap);
    it->stack[it->depth] = (void *)(uintptr_t)n;
    it->slot[it->depth] = (uint16_t)pos;
    it->depth++;
}

/* Descends from ref to its first (dir > 0) or last leaf. Returns 1. */
static int cy_art_iter_edge(cy_art_iter *it, const void *ref, int dir)
{
    while (!cy_art_is_leaf(ref)) {
        const cy_art_node *n = ref;
        int pos = dir > 0 ? cy_art_pos_next(n, -1) : cy_art_pos_prev(n, CY_ART_POS_END);
        cy_art_iter_push(it, n, pos);
        ref = cy_art_child_at(n, pos);
    }
    it->leaf = ref;
    return 1;
}

/* Prefetches the lines of inner node ref that a walk reads first (its
 * header and, for a small node, all its kids); nothing for a leaf. */
static CY_INLINE void cy_art_prefetch_node(const void *ref)
{
    if (!ref || cy_art_is_leaf(ref)) return;
    CY_PREFETCH(ref);
    CY_PREFETCH((const uint8_t *)ref + 64);
    CY_PREFETCH((const uint8_t *)ref + 128);
}

/* Moves to the neighbour of the subtree the top frame points into. When
 * that is an inner node, the one after it is prefetched: nodes made by
 * random inserts lie scattered in memory, and a walk would otherwise wait
 * for each one's first line only once it has finished the one before. */
static int cy_art_iter_step(cy_art_iter *it, int dir)
{
    while (it->depth > 0) {
        const cy_art_node *n = it->stack[it->depth - 1];
        int pos = it->slot[it->depth - 1];
        pos = dir > 0 ? cy_art_pos_next(n, pos) : cy_art_pos_prev(n, pos);
        if (pos >= 0) {
            it->slot[it->depth - 1] = (uint16_t)pos;
            const void *kid = cy_art_child_at(n, pos);
            if (!cy_art_is_leaf(kid)) {
                int after = dir > 0 ? cy_art_pos_next(n, pos) : cy_art_pos_prev(n, pos);
                if (after >= 0) cy_art_prefetch_node(cy_art_child_at(n, after));
            }
            return cy_art_iter_edge(it, kid, dir);
        }
        it->depth--;
    }
    it->leaf = NULL;
    return 0;
}

CY_INTERNAL int cy_art_iter_next(cy_art_iter *it)
{
    return it->leaf ? cy_art_iter_step(it, 1) : 0;
}

CY_INTERNAL int cy_art_iter_prev(cy_art_iter *it)
{
    return it->leaf ? cy_art_iter_step(it, -1) : 0;
}

/* Compares the node's prefix with the key from depth: > 0 when the whole
 * subtree sorts after the key (including when the key ends inside the
 * prefix), < 0 when before, 0 when the key runs through the prefix. */
static int cy_art_prefix_cmp(const cy_art_node *n, size_t depth, const uint8_t *k,
                             size_t klen)
{
    const uint8_t *lk = cy_art_any_key(n);
    size_t avail = klen - depth, m = avail < n->plen ? avail : n->plen;
    int r = m ? memcmp(lk + depth, k + depth, m) : 0;
    if (r) return r;
    return avail < n->plen;
}

/* Seek lands on a leaf: settle the operator against it. */
static int cy_art_seek_leaf(cy_art_iter *it, const void *ref, int op, const uint8_t *k,
                            size_t klen)
{
    int c = cy_art_keycmp(cy_art_leaf_key(ref), cy_art_leaf_klen(ref), k, klen);
    it->leaf = ref;
    if (c == 0) {
        if (op == CY_SEEK_GT) return cy_art_iter_step(it, 1);
        if (op == CY_SEEK_LT) return cy_art_iter_step(it, -1);
        return 1;
    }
    int fwd = op == CY_SEEK_GE || op == CY_SEEK_GT;
    if (c > 0) return fwd ? 1 : cy_art_iter_step(it, -1);
    return fwd ? cy_art_iter_step(it, 1) : 1;
}

/* The key ends exactly at node n: its terminal equals the key, every child
 * is greater. */
static int cy_art_seek_end(cy_art_iter *it, const cy_art_node *n, int op)
{
    void *term = cy_art_term(n);
    if (term && op != CY_SEEK_GT && op != CY_SEEK_LT) {
        cy_art_iter_push(it, n, 0);
        it->leaf = term;
        return 1;
    }
    if (op == CY_SEEK_GE || op == CY_SEEK_GT) {
        int pos = cy_art_pos_next(n, 0);
        cy_art_iter_push(it, n, pos);
        return cy_art_iter_edge(it, cy_art_child_at(n, pos), 1);
    }
    return cy_art_iter_step(it, -1);
}

/* GE, GT, LE, LT: descend along the key; where it leaves the tree, the
 * answer is the edge of a neighbouring subtree. */
static int cy_art_seek_key(cy_art_iter *it, int op, const uint8_t *k, size_t klen)
{
    int fwd = op == CY_SEEK_GE || op == CY_SEEK_GT;
    const void *ref = it->tree->root;
    size_t depth = 0;
    for (;;) {
        if (cy_art_is_leaf(ref)) return cy_art_seek_leaf(it, ref, op, k, klen);
        const cy_art_node *n = ref;
        if (n->plen) {
            int c = cy_art_prefix_cmp(n, depth, k, klen);
            if (c > 0) return fwd ? cy_art_iter_edge(it, n, 1) : cy_art_iter_step(it, -1);
            if (c < 0) return fwd ? cy_art_iter_step(it, 1) : cy_art_iter_edge(it, n, -1);
            depth += n->plen;
        }
        if (depth == klen) return cy_art_seek_end(it, n, op);
        unsigned c = k[depth];
        int pos = cy_art_pos_lower(n, c);
        if (pos != CY_ART_POS_END && cy_art_byte_at(n, pos) == c) {
            cy_art_iter_push(it, n, pos);
            ref = cy_art_child_at(n, pos);
            depth++;
            continue;
        }
        if (!fwd) pos = cy_art_pos_prev(n, pos);
        if (pos < 0 || pos == CY_ART_POS_END) return cy_art_iter_step(it, fwd ? 1 : -1);
        cy_art_iter_push(it, n, pos);
        return cy_art_iter_edge(it, cy_art_child_at(n, pos), fwd ? 1 : -1);
    }
}

CY_INTERNAL int cy_art_iter_seek(cy_art_iter *it, int op, const void *key, size_t klen)
{
    it->depth = 0;
    it->leaf = NULL;
    if (!it->tree->root) return 0;
    if (op != CY_SEEK_FIRST && op != CY_SEEK_LAST && (klen > CY_ART_MAX_KEY || (!key && klen)))
        return CALYPSO_EINVAL;
    if (cy_art_iter_reserve(it)) return CALYPSO_ENOMEM;
    switch (op) {
    case CY_SEEK_FIRST: return cy_art_iter_edge(it, it->tree->root, 1);
    case CY_SEEK_LAST:  return cy_art_iter_edge(it, it->tree->root, -1);
    case CY_SEEK_EQ: {
        if (cy_art_seek_key(it, CY_SEEK_GE, key, klen) != 1) return 0;
        if (cy_art_leaf_eq(it->leaf, key, klen)) return 1;
        it->depth = 0;
        it->leaf = NULL;
        return 0;
    }
    case CY_SEEK_GE: case CY_SEEK_GT: case CY_SEEK_LE: case CY_SEEK_LT:
        return cy_art_seek_key(it, op, key, klen);
    default:
        return CALYPSO_EINVAL;
    }
}

CY_INTERNAL const uint8_t *cy_art_iter_key(const cy_art_iter *it, size_t *klen)
{
    const void *l = it->leaf;
    if (!l) {
        if (klen) *klen = 0;
        return NULL;
    }
    if (klen) *klen = cy_art_leaf_klen(l);
    return cy_art_leaf_key(l);
}

CY_INTERNAL const cy_loc *cy_art_iter_loc(const cy_art_iter *it)
{
    const void *l = it->leaf;
    return l ? cy_art_leaf_loc(l) : NULL;
}

CY_INTERNAL size_t cy_art_iter_gather(cy_art_iter *it, const void **refs, size_t max,
                                      int backward, int *rc)
{
    size_t n = 0;
    int state = it->leaf != NULL;
    while (state == 1 && n < max) {
        const uint8_t *leaf = (const uint8_t *)cy_art_leaf_addr(it->leaf);
        CY_PREFETCH(leaf);                          /* loc and key start */
        CY_PREFETCH(leaf + sizeof(cy_loc) + 31);    /* up to 32 key bytes */
        refs[n++] = it->leaf;
        state = backward ? cy_art_iter_prev(it) : cy_art_iter_next(it);
    }
    *rc = state;
    return n;
}

CY_INTERNAL const uint8_t *cy_art_ref_key(const void *ref, size_t *klen)
{
    *klen = cy_art_leaf_klen(ref);
    return cy_art_leaf_key(ref);
}

CY_INTERNAL const cy_loc *cy_art_ref_loc(const void *ref)
{
    return cy_art_leaf_loc(ref);
}

// >> walks ------------------------------------------------------------------------

/* Leaves gathered (their memory prefetched) ahead of the callback: a walk
 * of a large tree waits on many leaf loads at once, not one at a time. */
#define CY_ART_WALK_AHEAD 64

/* Runs fn on the leaves from the iterator's position while `stop` (a key
 * past the end) says to go on. */
static int cy_art_walk_from(cy_art_iter *it, int rc, const void *prefix, size_t plen,
                            const void *end, size_t elen, cy_art_walk_fn fn, void *ctx)
{
    const void *refs[CY_ART_WALK_AHEAD];
    int r = 0;
    while (rc == 1 && !r) {
        size_t n = cy_art_iter_gather(it, refs, CY_ART_WALK_AHEAD, 0, &rc);
        for (size_t i = 0; i < n && !r; i++) {
            size_t ll;
            const uint8_t *lk = cy_art_ref_key(refs[i], &ll);
            if (end ? cy_art_keycmp(lk, ll, end, elen) > 0
                    : ll < plen || (plen && memcmp(lk, prefix, plen) != 0)) {
                rc = 0;
                break;
            }
            r = fn(lk, ll, cy_art_ref_loc(refs[i]), ctx);
        }
    }
    return r ? r : rc < 0 ? rc : 0;
}

CY_INTERNAL int cy_art_walk_prefix(const cy_art *t, const void *prefix, size_t plen,
                                   cy_art_walk_fn fn, void *ctx)
{
    cy_art_iter it;
    cy_art_iter_init(&it, t);
    int rc = cy_art_iter_seek(&it, CY_SEEK_GE, prefix, plen);
    rc = cy_art_walk_from(&it, rc, prefix, plen, NULL, 0, fn, ctx);
    cy_art_iter_free(&it);
    return rc;
}

CY_INTERNAL int cy_art_walk_range(const cy_art *t, const void *start, size_t slen,
                                  const void *end, size_t elen,
                                  cy_art_walk_fn fn, void *ctx)
{
    cy_art_iter it;
    cy_art_iter_init(&it, t);
    int rc = cy_art_iter_seek(&it, CY_SEEK_GE, start, slen);
    rc = cy_art_walk_from(&it, rc, NULL, 0, end, elen, fn, ctx);
    cy_art_iter_free(&it);
    return rc;
}

// >> checks for tests -------------------------------------------------------------

typedef struct cy_art_census {
    uint64_t kinds[4], leaves, bytes;
    int bad;   /* first broken invariant (a line number), 0 when sound */
} cy_art_census;

#define CY_ART_CHECK(c, cond) do { if (!(cond) && !(c)->bad) (c)->bad = __LINE__; } while (0)

static void cy_art_census_node(cy_art_census *c, const cy_art_node *n, size_t depth);

/* ref sits at depth and every key below must start with path[0..depth). */
static void cy_art_census_ref(cy_art_census *c, const void *ref, size_t depth,
                              const uint8_t *path)
{
    const void *l = cy_art_any_leaf(ref);
    size_t ll = cy_art_leaf_klen(l);
    CY_ART_CHECK(c, ll >= depth && (!depth || memcmp(cy_art_leaf_key(l), path, depth) == 0));
    if (cy_art_is_leaf(ref)) {
        /* A slab leaf lies in a page of its key length; a big one is big. */
        CY_ART_CHECK(c, (ll > CY_ART_SLAB_KMAX) == (((uintptr_t)ref & CY_ART_BIG) != 0));
        /* A length carried in the reference agrees with the page's. */
        CY_ART_CHECK(c, ((uintptr_t)ref & CY_ART_BIG) ||
                        ((const cy_art_page *)(cy_art_leaf_addr(ref) &
                                               ~(uintptr_t)(CY_ART_PAGE - 1u)))->klen == ll);
        c->leaves++;
        c->bytes += cy_art_leaf_size(ll);
        return;
    }
    cy_art_census_node(c, ref, depth);
}

static void cy_art_census_node(cy_art_census *c, const cy_art_node *n, size_t depth)
{
    unsigned cnt = cy_art_count(n), kind = cy_art_kind(n);
    size_t end = depth + n->plen;
    const uint8_t *path = cy_art_any_key(n);
    void *term = cy_art_term(n);
    c->kinds[kind]++;
    c->bytes += cy_art_node_size(kind, cy_art_cap(n), n->bits & CY_ART_TSLOT);
    CY_ART_CHECK(c, cnt + (term != NULL) >= 2 && cnt <= cy_art_cap(n));
    if (term) {
        CY_ART_CHECK(c, cy_art_is_leaf(term) && cy_art_leaf_klen(term) == end);
        cy_art_census_ref(c, term, end, path);
    }
    cy_art_pairs p;
    cy_art_collect(n, &p);
    CY_ART_CHECK(c, p.n == cnt);
    if (kind == CY_ART_N48) {
        unsigned run = 0;
        for (unsigned w = 0; w < 3; w++) {
            run += cy_art_popcount(cy_art_bitmap(n)[w]);
            CY_ART_CHECK(c, n->key4[w] == run);
        }
        for (unsigned i = 0; i < cy_art_cap(n); i++) CY_ART_CHECK(c, (i < cnt) == (cy_art_kids(n)[i] != NULL));
    }
    for (unsigned i = 0; i < p.n; i++) {
        const void *l = cy_art_any_leaf(p.kid[i]);
        const uint8_t *lk = cy_art_leaf_key(l);
        CY_ART_CHECK(c, p.kid[i] != NULL && (i == 0 || p.byte[i - 1] < p.byte[i]));
        CY_ART_CHECK(c, cy_art_leaf_klen(l) > end && lk[end] == p.byte[i]);
        CY_ART_CHECK(c, !end || memcmp(lk, path, end) == 0);
        cy_art_census_ref(c, p.kid[i], end + 1, lk);
    }
}

CY_INTERNAL int cy_art_verify(const cy_art *t, uint64_t kinds[4])
{
    cy_art_census c;
    memset(&c, 0, sizeof c);
    if (t->root) cy_art_census_ref(&c, t->root, 0, NULL);
    CY_ART_CHECK(&c, c.leaves == t->count && c.bytes == t->bytes);
    if (kinds) memcpy(kinds, c.kinds, sizeof c.kinds);
    return c.bad;
}
