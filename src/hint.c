/*
 * hint.c: hint files. A sealed datafile NNNNNNNNNN.data gets a hint file
 * NNNNNNNNNN.hint listing, for each of its records, the key, the record's
 * offset and size, its type and expiry: everything open needs, without the
 * values. Layout (doc/format.md):
 *
 *   "CYHINT01"
 *   entry*   type u8 | [expiry varint, type 2] | klen varint | off varint |
 *            size varint | key
 *   trailer  data_size u64le | entries u64le | crc u32le | "HEND"
 *
 * crc covers every byte before it. Entries are in key order, a key's
 * records in file order (cy_hint_sort), so that open inserts keys in
 * order; the loader accepts any order. A hint describes the first data_size
 * bytes of its datafile: all of a sealed file, or what the active file held
 * at a clean close. Open uses a hint whose crc holds and whose data_size is
 * at most the datafile's size, then scans the datafile from data_size on,
 * so writes made after the hint are always found; an invalid hint makes
 * open scan the whole datafile, so a hint can be lost or damaged without
 * losing anything. A hint is written only after the bytes it describes were
 * synced, and atomically (tmp file, fdatasync, rename, directory fsync).
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>

#define CY_HINT_MAGIC   "CYHINT01"
#define CY_HINT_MAGIC_COMPACT "CYHINT02"
#define CY_HINT_END     "HEND"
#define CY_HINT_TRAILER 24u

// >> key order ---------------------------------------------------------------------

/* Hints of more entries than this stay in file order: sorting needs
 * 48 bytes an entry besides a second copy of the body. */
#define CY_HINT_SORT_MAX (4u << 20)

typedef struct cy_hint_ent {
    const uint8_t *key;
    uint32_t       klen;
    uint32_t       head;   /* bytes from the entry's start to its key      */
} cy_hint_ent;

typedef struct cy_hint_item {
    uint64_t chunk;        /* 8 key bytes from the current depth, big-endian,
                              zero past the key's end                       */
    uint32_t ent;
    uint32_t klen;
} cy_hint_item;

static uint64_t cy_hint_chunk(const cy_hint_ent *e, size_t depth)
{
    uint64_t v = 0;
    for (size_t i = depth; i < depth + 8; i++) v = v << 8 | (i < e->klen ? e->key[i] : 0u);
    return v;
}

/* Stable sort of it[0..n) by chunk: insertion sort for a few, else an LSD
 * radix sort by bytes through tmp, skipping bytes every item shares. */
static void cy_hint_sort_chunks(cy_hint_item *it, cy_hint_item *tmp, size_t n)
{
    if (n < 32) {
        for (size_t i = 1; i < n; i++) {
            cy_hint_item x = it[i];
            size_t j = i;
            for (; j > 0 && it[j - 1].chunk > x.chunk; j--) it[j] = it[j - 1];
            it[j] = x;
        }
        return;
    }
    cy_hint_item *src = it, *dst = tmp;
    size_t cnt[256];
    for (unsigned shift = 0; shift < 64; shift += 8) {
        memset(cnt, 0, sizeof cnt);
        for (size_t i = 0; i < n; i++) cnt[(src[i].chunk >> shift) & 255u]++;
        if (cnt[(src[0].chunk >> shift) & 255u] == n) continue;
        size_t sum = 0;
        for (unsigned d = 0; d < 256; d++) {
            size_t c = cnt[d];
            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) dst[cnt[(src[i].chunk >> shift) & 255u]++] = src[i];
        cy_hint_item *t = src;
        src = dst;
        dst = t;
    }
    if (src != it) memcpy(it, src, n * sizeof *it);
}

/* Orders it[0..n), whose keys agree on their first depth bytes, by key
 * (memcmp order, shorter first), stably: a key's records keep their file
 * order. Runs that agree on 8 more bytes go one level deeper. */
static void cy_hint_order(const cy_hint_ent *e, cy_hint_item *it, cy_hint_item *tmp, size_t n,
                          size_t depth)
{
    for (;;) {
        for (size_t i = 0; i < n; i++) it[i].chunk = cy_hint_chunk(&e[it[i].ent], depth);
        cy_hint_sort_chunks(it, tmp, n);
        if (n == 0 || it[0].chunk != it[n - 1].chunk) break;
        /* One run: go deeper without recursing, unless every key ended. */
        size_t longer = 0;
        for (size_t i = 0; i < n && !longer; i++) longer = it[i].klen > depth + 8;
        if (!longer) break;
        depth += 8;
    }
    for (size_t a = 0; a < n;) {
        size_t b = a + 1, longer = 0;
        while (b < n && it[b].chunk == it[a].chunk) b++;
        for (size_t i = a; i < b && !longer; i++) longer = it[i].klen > depth + 8;
        if (b - a > 1 && longer) {
            cy_hint_order(e, it + a, tmp + a, b - a, depth + 8);
        } else if (b - a > 1) {
            /* Equal up to their ends (zero padding aside): shorter first. */
            for (size_t i = a; i < b; i++) it[i].chunk = it[i].klen;
            cy_hint_sort_chunks(it + a, tmp + a, b - a);
        }
        a = b;
    }
}

/* Puts the entries of b (as cy_hint_add wrote them) in key order, a key's
 * records in file order, so that applying them leaves the keydir as file
 * order would (a key's last record wins; records of different keys never
 * interact) while open inserts keys in order, which keeps the tree's path
 * in cache from one insert to the next. Without the memory for it the hint
 * stays in file order, which is just as correct. */
static void cy_hint_sort(cy_hint_buf *b)
{
    size_t n = (size_t)b->count;
    if (n < 2 || n > CY_HINT_SORT_MAX || b->len <= 8) return;
    cy_hint_ent *e = cy_malloc(n * sizeof *e);
    cy_hint_item *it = NULL;
    uint8_t *out = NULL;
    if (!e) return;
    const uint8_t *p = b->p + 8, *end = b->p + b->len;
    size_t i = 0;
    int sorted = 1;
    for (; p < end && i < n; i++) {
        const uint8_t *at = p++;
        uint64_t v;
        int type = *at & ~CY_REC_NS;
        if ((*at & CY_REC_NS) || type >= CY_REC_NS_CREATE) p += cy_varint_get(p, end, &v);
        if (type == CY_REC_PUT_TTL) p += cy_varint_get(p, end, &v);
        p += cy_varint_get(p, end, &v);
        e[i].klen = (uint32_t)v;
        p += cy_varint_get(p, end, &v);
        p += cy_varint_get(p, end, &v);
        e[i].key = p;
        e[i].head = (uint32_t)(p - at);
        p += e[i].klen;
        if (sorted && i > 0) {
            uint32_t a = e[i - 1].klen, m = a < e[i].klen ? a : e[i].klen;
            int c = memcmp(e[i - 1].key, e[i].key, m);
            sorted = c < 0 || (c == 0 && a <= e[i].klen);
        }
    }
    /* Already in order (a merge's output, keys written in order): done,
     * without the item arrays or a second copy of the body. */
    if (i != n || p != end || sorted) goto out;
    it = cy_malloc(2 * n * sizeof *it);
    out = cy_malloc(b->cap);
    if (!it || !out) goto out;
    for (i = 0; i < n; i++) {
        it[i].ent = (uint32_t)i;
        it[i].klen = e[i].klen;
    }
    cy_hint_order(e, it, it + n, n, 0);
    memcpy(out, b->p, 8);
    uint8_t *q = out + 8;
    for (i = 0; i < n; i++) {
        const cy_hint_ent *x = &e[it[i].ent];
        memcpy(q, x->key - x->head, x->head + x->klen);
        q += x->head + x->klen;
    }
    cy_free(b->p);
    b->p = out;
    out = NULL;
out:
    cy_free(out);
    cy_free(it);
    cy_free(e);
}

// >> building ----------------------------------------------------------------------

static int cy_hint_reserve(cy_hint_buf *b, size_t more)
{
    if (b->len + more <= b->cap) return 0;
    size_t nc = b->cap ? b->cap * 2 : 65536;
    while (nc < b->len + more) nc *= 2;
    uint8_t *p = cy_realloc(b->p, nc);
    if (!p) return CALYPSO_ENOMEM;
    b->p = p;
    b->cap = nc;
    return 0;
}

CY_INTERNAL int cy_hint_add(cy_hint_buf *b, const cy_rec *r, const uint8_t *key, uint64_t off,
                            uint64_t size)
{
    if (cy_hint_reserve(b, 8 + 1 + 50 + r->klen)) return CALYPSO_ENOMEM;
    if (b->len == 0) {
        memcpy(b->p, CY_HINT_MAGIC, 8);
        b->len = 8;
    }
    uint8_t *p = b->p + b->len;
    int has_ns = cy_rec_has_ns(r->type, r->ns);
    *p++ = (uint8_t)(r->type | (has_ns && r->type <= CY_REC_DEL ? CY_REC_NS : 0));
    if (has_ns) p += cy_varint_put(p, r->ns);
    if (r->type == CY_REC_PUT_TTL) p += cy_varint_put(p, r->expiry);
    p += cy_varint_put(p, r->klen);
    p += cy_varint_put(p, off);
    p += cy_varint_put(p, size);
    memcpy(p, key, r->klen);
    b->len = (size_t)(p - b->p) + r->klen;
    b->count++;
    return 0;
}

CY_INTERNAL int cy_hint_finish(cy_hint_buf *b, uint64_t data_size)
{
    cy_hint_sort(b);
    if (cy_hint_reserve(b, 8 + CY_HINT_TRAILER)) return CALYPSO_ENOMEM;
    if (b->len == 0) {
        memcpy(b->p, CY_HINT_MAGIC, 8);
        b->len = 8;
    }
    uint8_t *t = b->p + b->len;
    cy_put_u64(t, data_size);
    cy_put_u64(t + 8, b->count);
    cy_put_u32(t + 16, cy_crc(b->p, b->len + 16, NULL, 0));
    memcpy(t + 20, CY_HINT_END, 4);
    b->len += CY_HINT_TRAILER;
    return CALYPSO_OK;
}

// >> writing -------------------------------------------------------------------

/* Reads datafile fid (sealed, synced) and builds its hint in b. */
typedef struct cy_hint_entry {
    calypso     *db;
    cy_hint_buf *b;
    uint64_t     off;
    uint32_t     fid;
    int          live_only;   /* puts alone (for a compacted hint) */
} cy_hint_entry;

/* One hint entry per record, the records of a batch each with its own. */
static int cy_hint_add_entry(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    cy_hint_entry *q = ctx;
    if (q->live_only && r->type != CY_REC_PUT && r->type != CY_REC_PUT_TTL)
        return CALYPSO_OK;   /* which puts are live, cy_hint_keep_live tells */
    return cy_hint_add(q->b, r, rec + r->hdr, q->off + rel, r->hdr + r->klen + r->vlen)
               ? CALYPSO_ENOMEM : CALYPSO_OK;
}

/* Reads datafile fid and builds its hint in b: every record, or with
 * live_only its puts (of which cy_hint_keep_live then keeps the live). */
static int cy_hint_build(calypso *db, uint32_t fid, cy_hint_buf *b, uint64_t *data_size,
                         int live_only)
{
    cy_scan s;
    int rc = cy_scan_open(&s, db, fid, -1);
    if (rc) return rc;
    *data_size = s.size;
    for (uint64_t off = 0; off < s.size && !rc;) {
        cy_rec r;
        const uint8_t *p = NULL;
        const char *why = NULL;
        int got = cy_scan_record(&s, off, &r, &p, &why);
        if (got < 0) {
            rc = got;
        } else if (got == 0) {
            rc = cy_err(db, CALYPSO_ECORRUPT, "%s at offset %llu: %s, no hint written", s.path,
                        (unsigned long long)off, why);
        } else {
            uint64_t size = r.hdr + r.klen + r.vlen;
            cy_hint_entry q = { db, b, off, fid, live_only };
            rc = cy_rec_entries(p, &r, cy_hint_add_entry, &q);
            if (rc == CALYPSO_ENOMEM)
                rc = cy_err(db, CALYPSO_ENOMEM, "building the hint of %s", s.path);
            else if (rc)
                rc = cy_err(db, rc, "%s at offset %llu: a batch whose records do not parse",
                            s.path, (unsigned long long)off);
            off += size;
        }
    }
    cy_scan_close(&s);
    return rc;
}

CY_INTERNAL int cy_hint_write(calypso *db, uint32_t fid)
{
    cy_hint_buf b = { 0 };
    uint64_t data_size = 0;
    int rc = cy_hint_build(db, fid, &b, &data_size, 0);
    if (!rc && cy_hint_finish(&b, data_size)) rc = cy_err(db, CALYPSO_ENOMEM, "hint trailer");
    if (!rc) {
        char name[32];
        snprintf(name, sizeof name, "%010u.hint", fid);
        rc = cy_dir_write_file(db, db->path, name, b.p, b.len);
    }
    if (!rc) {
        uint32_t ep = cy_epoch_enter(&db->epoch);
        cy_file *f = cy_files_find(db, fid);
        if (f) cy_files_set_hint(db, f, (uint64_t)b.len, data_size);
        cy_epoch_leave(&db->epoch, ep);
    }
    cy_free(b.p);
    return rc;
}

/* Parses the entry at p (before end) of a hint describing data_size bytes:
 * fills r, *off, *size and returns its key (the next entry starts klen
 * bytes on), or NULL when it is malformed. */
static const uint8_t *cy_hint_parse(const uint8_t *p, const uint8_t *end, uint64_t data_size,
                                    cy_rec *r, uint64_t *off, uint64_t *size)
{
    int flagged = (*p & CY_REC_NS) != 0;
    *r = (cy_rec){ .type = *p++ & ~CY_REC_NS };
    uint64_t id;
    size_t n;
    if (r->type < CY_REC_PUT || r->type > CY_REC_NS_DROP || r->type == CY_REC_BATCH ||
        (flagged && r->type > CY_REC_DEL))
        return NULL;
    if (flagged || r->type >= CY_REC_NS_CREATE) {
        if (!(n = cy_varint_get(p, end, &id)) || id == 0 || id > UINT32_MAX) return NULL;
        r->ns = (uint32_t)id;
        p += n;
    }
    if (r->type == CY_REC_PUT_TTL) {
        if (!(n = cy_varint_get(p, end, &r->expiry))) return NULL;
        p += n;
    }
    if (!(n = cy_varint_get(p, end, &r->klen))) return NULL;
    p += n;
    if (!(n = cy_varint_get(p, end, off))) return NULL;
    p += n;
    if (!(n = cy_varint_get(p, end, size))) return NULL;
    p += n;
    if (r->klen == 0 || r->klen > CY_ART_MAX_KEY || r->klen > (uint64_t)(end - p) ||
        *size > UINT32_MAX || *off + *size > data_size ||
        (r->type >= CY_REC_NS_CREATE && r->klen > CALYPSO_NS_MAX_NAME))
        return NULL;
    return p;
}

// >> the active file's hint at close, from the key directory -------------------------

/* The active file is read for its hint, rather than the keydir walked,
 * when it holds less than 1/CY_HINT_SCAN_SHARE of the bytes of records. */
#define CY_HINT_SCAN_SHARE 4

/* Keeps the entries of b (puts, sorted by cy_hint_sort unless memory was
 * short) that the keydir still points at. They are looked up CY_ART_MANY
 * at a time (cy_art_search_many), in key order: one at a time, each
 * lookup in a large keydir waits on its misses in turn (about a
 * microsecond a record at 10M keys); in key order and in lockstep the
 * upper levels stay in cache and the rest overlap. Kept entries move down
 * over the dropped ones, in order, so none is overwritten before it
 * moves. */
static int cy_hint_keep_live(calypso *db, uint32_t fid, cy_hint_buf *b)
{
    uint8_t *p = b->p + 8, *end = b->p + b->len, *w = p;
    const uint8_t *keys[CY_ART_MANY];
    size_t klens[CY_ART_MANY];
    uint8_t *at[CY_ART_MANY];
    uint64_t offs[CY_ART_MANY];
    cy_loc *locs[CY_ART_MANY];
    uint64_t kept = 0;
    if (b->len <= 8) return CALYPSO_OK;
    while (p < end) {
        size_t n = 0;
        uint32_t nsid = 0;
        while (p < end && n < CY_ART_MANY) {
            cy_rec r;
            uint64_t off, size;
            const uint8_t *key = cy_hint_parse(p, end, UINT64_MAX, &r, &off, &size);
            if (!key) return CALYPSO_ECORRUPT;   /* not as cy_hint_add writes */
            if (n > 0 && r.ns != nsid) break;   /* one namespace a batch */
            nsid = r.ns;
            at[n] = p;
            keys[n] = key;
            klens[n] = (size_t)r.klen;
            offs[n] = off;
            n++;
            p = (uint8_t *)(uintptr_t)key + r.klen;
        }
        uint8_t *batch_end = p;
        cy_rdlock(&db->kd_lock);
        cy_ns *ns = cy_ns_find(db, nsid);
        if (ns) cy_art_search_many(&ns->keydir, n, keys, klens, locs);
        for (size_t i = 0; i < n; i++) {
            const cy_loc *l = ns ? locs[i] : NULL;
            uint8_t *next = i + 1 < n ? at[i + 1] : batch_end;
            if (!l || (l->fid & CY_LOC_FIDMASK) != fid || l->off != offs[i]) continue;
            size_t len = (size_t)(next - at[i]);
            if (w != at[i]) memmove(w, at[i], len);
            w += len;
            kept++;
        }
        cy_unlock(&db->kd_lock);
    }
    b->len = (size_t)(w - b->p);
    b->count = kept;
    return CALYPSO_OK;
}

// >> the active file's compacted hint, written as it is built ---------------------

/* Pieces of about this many bytes go to the writer thread. */
#define CY_HINT_PIECE (1u << 20)

typedef struct cy_hint_piece {
    struct cy_hint_piece *next;
    uint8_t              *p;          /* a cy_hint_buf's memory                  */
    size_t                from, to;   /* its bytes that go into the file         */
    size_t                cap;
} cy_hint_piece;

/* The writer thread takes pieces in order from a queue under mu; the
 * builder appends to it, then sets end (1: all handed over, count and
 * data_size set; -1: abandoned, nothing is renamed into place). */
struct cy_hint_stream {
    calypso         *db;
    pthread_mutex_t  mu;
    pthread_cond_t   cv;
    cy_hint_piece   *head, *tail;
    cy_hint_piece   *spare;       /* written pieces, their memory for reuse */
    int              end;
    uint64_t         data_size, count;
    uint64_t         handed;      /* bytes handed over (the builder's own) */
    uint32_t         fid;
    int              rc;          /* the writer's result, a -errno         */
    pthread_t        thread;
};

static void cy_hint_stream_paths(const cy_hint_stream *s, char *tmp, char *path, size_t cap)
{
    snprintf(tmp, cap, "%s/%010u.hint.tmp", s->db->path, s->fid);
    snprintf(path, cap, "%s/%010u.hint", s->db->path, s->fid);
}

/* Writes the pieces as they come, each started on its way to the disk at
 * once (cy_os_writeback), so that the final fdatasync has little left;
 * then the trailer, fdatasync, rename and directory sync, as
 * cy_dir_write_file does for a whole file. A written piece's memory goes
 * back to the builder for a later piece: freeing it would unmap it (the
 * pieces are past malloc's mmap threshold), and an unmap while the other
 * thread runs interrupts that thread's CPU to flush its TLB, which in a
 * VM costs more than the write; mapping a new one costs page faults. */
static void *cy_hint_stream_main(void *arg)
{
    cy_hint_stream *s = arg;
    char tmp[4096], path[4096];
    cy_hint_stream_paths(s, tmp, path, sizeof tmp);
    int fd = cy_os_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, s->db->opt.file_mode);
    int rc = fd < 0 ? fd : 0;
    void *crc = rc ? NULL : cy_crc_begin();
    if (!rc && !crc) rc = -ENOMEM;
    uint64_t off = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->head && !s->end) pthread_cond_wait(&s->cv, &s->mu);
        cy_hint_piece *pc = s->head;
        if (pc && !(s->head = pc->next)) s->tail = NULL;
        int end = s->end;
        pthread_mutex_unlock(&s->mu);
        if (!pc) {
            if (end < 0 && !rc) rc = -ECANCELED;
            break;
        }
        size_t n = pc->to - pc->from;
        if (!rc) rc = cy_os_pwrite(fd, pc->p + pc->from, n, off);
        if (!rc) {
            cy_crc_add(crc, pc->p + pc->from, n);
            cy_os_writeback(fd, off, n);   /* a hint only: errors show at the fdatasync */
            off += n;
        }
        pthread_mutex_lock(&s->mu);
        pc->next = s->spare;
        s->spare = pc;
        pthread_mutex_unlock(&s->mu);
    }
    if (!rc) {
        uint8_t t[CY_HINT_TRAILER];
        cy_put_u64(t, s->data_size);
        cy_put_u64(t + 8, s->count);
        cy_crc_add(crc, t, 16);
        cy_put_u32(t + 16, cy_crc_end(crc));
        crc = NULL;
        memcpy(t + 20, CY_HINT_END, 4);
        rc = cy_os_pwrite(fd, t, sizeof t, off);
        if (!rc) rc = cy_os_fdatasync(fd);
    }
    if (crc) cy_crc_end(crc);
    if (fd >= 0) {
        int rc2 = cy_os_close(fd);
        if (!rc) rc = rc2;
        if (!rc) rc = cy_os_rename(tmp, path);
        if (!rc) rc = cy_os_sync_dir(s->db->path);
        if (rc) cy_os_unlink(tmp);
    }
    s->rc = rc;
    return NULL;
}

/* Starts the writer of fid's hint, describing data_size bytes of it; NULL
 * when it cannot (the hint is then written whole by the caller). */
static cy_hint_stream *cy_hint_stream_start(calypso *db, uint32_t fid, uint64_t data_size)
{
    cy_hint_stream *s = cy_calloc(1, sizeof *s);
    if (!s) return NULL;
    s->db = db;
    s->fid = fid;
    s->data_size = data_size;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        cy_free(s);
        return NULL;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0 ||
        pthread_create(&s->thread, NULL, cy_hint_stream_main, s) != 0) {
        pthread_cond_destroy(&s->cv);   /* destroying an unused one is harmless */
        pthread_mutex_destroy(&s->mu);
        cy_free(s);
        return NULL;
    }
    return s;
}

/* Hands b's entries over: all of its bytes for the first piece (with the
 * compacted hint's magic), those after the 8 bytes cy_hint_add begins
 * every buffer with for the others. b is then empty, its count kept. */
static int cy_hint_stream_hand(cy_hint_stream *s, cy_hint_buf *b)
{
    int first = s->handed == 0;
    if (!first && b->len <= 8) return CALYPSO_OK;   /* nothing since the last */
    if (b->len < 8) {
        if (cy_hint_reserve(b, 8)) return CALYPSO_ENOMEM;
        b->len = 8;
    }
    cy_hint_piece *pc = cy_malloc(sizeof *pc);
    if (!pc) return CALYPSO_ENOMEM;
    if (first) memcpy(b->p, CY_HINT_MAGIC_COMPACT, 8);
    *pc = (cy_hint_piece){ NULL, b->p, first ? 0 : 8, b->len, b->cap };
    s->handed += pc->to - pc->from;
    b->p = NULL;
    b->len = b->cap = 0;
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = pc;
    else s->head = pc;
    s->tail = pc;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return CALYPSO_OK;
}

/* Ends what the builder hands over: with ok, the rest of b and its entry
 * count; else abandons the hint. b's memory is handed over or freed. */
static int cy_hint_stream_end(cy_hint_stream *s, cy_hint_buf *b, int ok)
{
    int rc = ok ? cy_hint_stream_hand(s, b) : CALYPSO_OK;
    cy_free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
    pthread_mutex_lock(&s->mu);
    s->count = b->count;
    s->end = ok && !rc ? 1 : -1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Waits for the writer; its result, with a message when it failed. */
static int cy_hint_stream_join(calypso *db, cy_hint_stream *s)
{
    pthread_join(s->thread, NULL);
    int rc = s->rc;
    while (s->spare) {
        cy_hint_piece *pc = s->spare;
        s->spare = pc->next;
        cy_free(pc->p);
        cy_free(pc);
    }
    char tmp[4096], path[4096];
    cy_hint_stream_paths(s, tmp, path, sizeof tmp);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    cy_free(s);
    if (rc == -ECANCELED) return CALYPSO_OK;   /* abandoned: the build said why */
    return rc ? cy_err_errno(db, rc, "write", path) : CALYPSO_OK;
}

typedef struct cy_hint_live {
    calypso        *db;
    cy_ns          *ns;
    cy_hint_buf    *b;
    uint32_t        fid;
    cy_hint_stream *stream;   /* pieces go to it as they fill, if any */
} cy_hint_live;

/* Memory for the next piece: a written one's, or a new buffer, given its
 * page tables in one call rather than a page fault at a time. */
static void cy_hint_live_room(cy_hint_stream *s, cy_hint_buf *b)
{
    if (b->cap) return;
    pthread_mutex_lock(&s->mu);
    cy_hint_piece *pc = s->spare;
    if (pc) s->spare = pc->next;
    pthread_mutex_unlock(&s->mu);
    if (pc) {
        b->p = pc->p;
        b->cap = pc->cap;
        cy_free(pc);
    } else if (cy_hint_reserve(b, CY_HINT_PIECE + 65536u) == 0) {
        cy_alloc_prefault(b->p, CY_HINT_PIECE + 65536u);
    }
}

static int cy_hint_live_key(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    cy_hint_live *q = ctx;
    if ((loc->fid & CY_LOC_FIDMASK) != q->fid) return 0;
    int ttl = (loc->fid & CY_LOC_TTL) != 0;
    cy_rec r = { .type = ttl ? CY_REC_PUT_TTL : CY_REC_PUT, .ns = q->ns->id, .klen = klen,
                 .expiry = ttl ? cy_ttl_get(q->ns, key, klen) : 0 };
    if (cy_hint_add(q->b, &r, key, loc->off, loc->size)) return CALYPSO_ENOMEM;
    if (q->stream && q->b->len >= CY_HINT_PIECE) {
        if (cy_hint_stream_hand(q->stream, q->b)) return CALYPSO_ENOMEM;
        cy_hint_live_room(q->stream, q->b);
    }
    return 0;
}

/* The namespace's keydir is freed as it is walked (cy_art_destroy_walk):
 * close frees it next anyway, and one pass over a large tree costs about
 * half of a walk and then a free. Without a writer thread to hand pieces
 * to, the buffer is given room for the
 * namespace's entries up front (at most one per key, each at most the key
 * and 29 bytes, and never more bytes than the file's records), instead of
 * doubling and copying as it grows, and the page tables of the part an
 * entry without expiry or namespace would fill (key and 9 bytes) are
 * filled in one call rather than page fault by page fault. */
static int cy_hint_live_ns(calypso *db, cy_ns *ns, void *ctx)
{
    cy_hint_live *q = ctx;
    q->ns = ns;
    if (q->stream) {
        cy_hint_live_room(q->stream, q->b);
        cy_wrlock(&db->kd_lock);
        int rc = cy_art_destroy_walk(&ns->keydir, cy_hint_live_key, q);
        cy_unlock(&db->kd_lock);
        return rc;
    }
    uint64_t keys = ns->keydir.count, klen = ns->keydir.max_klen;
    uint64_t need = keys * (klen + 29u), likely = keys * (klen + 9u);
    uint64_t fsize = db->files.active->size;
    if (need > fsize) need = fsize;
    if (likely > need) likely = need;
    if (need > q->b->cap - q->b->len && need < SIZE_MAX / 2 &&
        cy_hint_reserve(q->b, (size_t)need) == 0)
        cy_alloc_prefault(q->b->p + q->b->len, (size_t)likely);
    cy_wrlock(&db->kd_lock);
    int rc = cy_art_destroy_walk(&ns->keydir, cy_hint_live_key, q);
    cy_unlock(&db->kd_lock);
    return rc;
}

CY_INTERNAL int cy_hint_active_build(calypso *db, cy_hint_active *h)
{
    cy_file *a = db->files.active;
    memset(h, 0, sizeof *h);
    h->fid = a->fid;
    if (__atomic_load_n(&a->mixed, __ATOMIC_RELAXED)) {
        h->from_file = 1;   /* built and written by cy_hint_write */
        return CALYPSO_OK;
    }
    /* Puts only: its live records are the keydir's entries that point
     * into it. When the file holds a good part of the data, they are
     * taken from a walk of the keydir, already in key order, without
     * reading the file, and the walk frees the keydir as it goes (this
     * runs at close only); but a walk visits every key, so for a small file
     * beside a large keydir (a close after a few writes) the file is read
     * instead and each of its puts looked up (then sorted): close then
     * takes time in proportion to what the file holds, not to the
     * database. The two give the same hint. */
    cy_hint_buf *b = &h->b;
    uint32_t nfiles;
    uint64_t total, disk;
    cy_files_totals(db, &nfiles, &total, &disk);
    int rc;
    if (a->size < total / CY_HINT_SCAN_SHARE) {
        uint64_t data_size;
        rc = cy_hint_build(db, a->fid, b, &data_size, 1);
        if (!rc) cy_hint_sort(b);
        if (!rc) rc = cy_hint_keep_live(db, a->fid, b);
        if (!rc && (h->stream = cy_hint_stream_start(db, a->fid, a->size)) != NULL)
            rc = cy_hint_stream_end(h->stream, b, 1);
    } else {
        h->stream = cy_hint_stream_start(db, a->fid, a->size);
        cy_hint_live q = { db, NULL, b, a->fid, h->stream };
        rc = cy_ns_each(db, cy_hint_live_ns, &q);
        if (h->stream) {
            int erc = cy_hint_stream_end(h->stream, b, rc == 0);
            if (!rc) rc = erc;
        }
    }
    if (!rc && !h->stream && cy_hint_reserve(b, 8 + CY_HINT_TRAILER)) rc = CALYPSO_ENOMEM;
    if (rc) {
        if (h->stream) cy_hint_stream_join(db, h->stream);   /* abandoned */
        h->stream = NULL;
        cy_free(b->p);
        b->p = NULL;
        return rc == CALYPSO_ENOMEM ? cy_err(db, rc, "building the hint of the active file") : rc;
    }
    if (h->stream) return CALYPSO_OK;   /* handed over whole */
    memcpy(b->p, CY_HINT_MAGIC_COMPACT, 8);
    if (b->len == 0) b->len = 8;
    h->data_size = a->size;   /* the trailer is cy_hint_active_write's */
    return CALYPSO_OK;
}

CY_INTERNAL int cy_hint_active_write(calypso *db, cy_hint_active *h)
{
    if (h->from_file) return cy_hint_write(db, h->fid);
    if (h->stream) {
        int rc = cy_hint_stream_join(db, h->stream);
        h->stream = NULL;
        return rc;
    }
    /* No writer thread could be started: the whole hint is written now. */
    cy_hint_buf *b = &h->b;
    uint8_t *t = b->p + b->len;
    cy_put_u64(t, h->data_size);
    cy_put_u64(t + 8, b->count);
    cy_put_u32(t + 16, cy_crc(b->p, b->len + 16, NULL, 0));
    memcpy(t + 20, CY_HINT_END, 4);
    b->len += CY_HINT_TRAILER;
    char name[32];
    snprintf(name, sizeof name, "%010u.hint", h->fid);
    int rc = cy_dir_write_file(db, db->path, name, h->b.p, h->b.len);
    cy_free(h->b.p);
    h->b.p = NULL;
    return rc;
}

/* Walks the entries of a hint body, feeding them to the keydir: with
 * `catalog`, only catalog entries (creates and drops, applied first: see
 * doc/format.md), else only the others; adds the sizes of the records it
 * applied to *listed. Returns CALYPSO_ECORRUPT at the first malformed
 * entry. */
static int cy_hint_walk(calypso *db, uint32_t fid, const uint8_t *p, const uint8_t *end,
                        uint64_t data_size, int catalog, uint64_t *listed)
{
    while (p < end) {
        cy_rec r;
        uint64_t off, size;
        const uint8_t *key = cy_hint_parse(p, end, data_size, &r, &off, &size);
        if (!key) return CALYPSO_ECORRUPT;
        if (catalog == (r.type >= CY_REC_NS_CREATE)) {
            int rc = cy_keydir_apply_rec(db, &r, key, fid, off, (uint32_t)size);
            if (rc) return rc;
            *listed += size;
        }
        p = key + r.klen;
    }
    return CALYPSO_OK;
}

/* Entries from *p on, puts of ns, whose keydir is empty: the keydir is
 * built from them in one pass (cy_art_build) rather than inserted into key
 * by key, as far as they come in key order, which is as far as the hint is
 * sorted by key (cy_hint_sort) and lists each key once; it stops at the
 * first entry that is not a put of ns or does not come after the one
 * before (a key's second record), and sets *p there. The same keydir,
 * counts and expiry index as cy_keydir_apply would make: the keys are new,
 * so nothing is replaced, and no view is open while the database opens
 * (cy_view_note only counts the change). */
static int cy_hint_walk_build(calypso *db, uint32_t fid, cy_ns *ns, const uint8_t **p,
                              const uint8_t *end, uint64_t data_size, uint64_t *listed)
{
    cy_art_build b;
    cy_art_build_begin(&ns->keydir, &b);
    const uint8_t *q = *p;
    int rc = CALYPSO_OK;
    while (q < end) {
        cy_rec r;
        uint64_t off, size;
        const uint8_t *key = cy_hint_parse(q, end, data_size, &r, &off, &size);
        if (!key) {
            rc = CALYPSO_ECORRUPT;
            break;
        }
        if ((r.type != CY_REC_PUT && r.type != CY_REC_PUT_TTL) || r.ns != ns->id) break;
        cy_loc loc = { off, fid | (r.expiry ? CY_LOC_TTL : 0), (uint32_t)size };
        int added = cy_art_build_add(&b, key, (size_t)r.klen, &loc);
        if (added == 1) break;
        if (added < 0 || (r.expiry && (added = cy_ttl_set(ns, key, (size_t)r.klen, r.expiry)) < 0)) {
            rc = added;
            break;
        }
        cy_view_note(db, ns, key, (size_t)r.klen);
        ns->live_bytes += size;
        *listed += size;
        q = key + r.klen;
    }
    int built = cy_art_build_end(&b);
    *p = q;
    return rc ? rc : built;
}

/* The one pass most hints need: applies entries in file order up to the
 * first catalog entry or the first entry of a namespace not in the
 * catalog, and sets *p there (to end when there is none). The order the
 * format asks for, catalog entries first, gives the same keydir: an entry
 * applied here belongs to a namespace that existed before this file, so
 * no create further on concerns it, and a drop further on takes it out
 * and counts it dead, as applying the drop first would have. What is left
 * from *p on goes through cy_hint_walk's two passes. */
static int cy_hint_walk_known(calypso *db, uint32_t fid, const uint8_t **p, const uint8_t *end,
                              uint64_t data_size, uint64_t *listed)
{
    const uint8_t *q = *p;
    int rc = CALYPSO_OK;
    while (q < end) {
        cy_rec r;
        uint64_t off, size;
        const uint8_t *key = cy_hint_parse(q, end, data_size, &r, &off, &size);
        if (!key) {
            rc = CALYPSO_ECORRUPT;
            break;
        }
        cy_ns *ns = r.type >= CY_REC_NS_CREATE ? NULL : cy_ns_find(db, r.ns);
        if (!ns) break;
        if (!ns->keydir.root && (r.type == CY_REC_PUT || r.type == CY_REC_PUT_TTL)) {
            if ((rc = cy_hint_walk_build(db, fid, ns, &q, end, data_size, listed))) break;
            continue;
        }
        if ((rc = cy_keydir_apply(db, ns, r.type, key, (size_t)r.klen, r.expiry, fid, off,
                                  (uint32_t)size)))
            break;
        *listed += size;
        q = key + r.klen;
    }
    *p = q;
    return rc;
}

/* Reads the hint file of fid and checks it whole: magic (*compact: the
 * compacted kind), trailer, crc, and a data_size (*data_size) no larger
 * than file_size. CALYPSO_ECORRUPT when it is missing or invalid. The
 * file is mapped (*mapped set; give it back with cy_os_munmap) rather
 * than read: the page cache's pages are then used in place, where a read
 * copies every byte into memory that must first be zeroed and faulted in
 * (a third of open at 10M keys, whose hints are 230 MB). A hint is never
 * changed in place (written whole under another name, then renamed), so
 * the mapping cannot shrink beneath the reader. Where mapping fails, the
 * file is read. */
static int cy_hint_read(calypso *db, uint32_t fid, uint64_t file_size, uint8_t **out,
                        uint64_t *len, uint64_t *data_size, int *compact, int *mapped)
{
    char path[4096];
    cy_dir_hint_path(db, fid, path, sizeof path);
    int fd = cy_os_open(path, O_RDONLY, 0);
    if (fd < 0) return CALYPSO_ECORRUPT;
    uint64_t size = 0;
    uint8_t *buf = NULL;
    void *m = NULL;
    int rc = CALYPSO_ECORRUPT;
    *mapped = 0;
    if (cy_os_fsize(fd, &size) < 0 || size < 8 + CY_HINT_TRAILER || size > (1ull << 40))
        goto out;
    if (cy_os_mmap(fd, size, &m) == 0) {
        buf = m;
        *mapped = 1;
    } else {
        if (!(buf = cy_malloc((size_t)size))) { rc = CALYPSO_ENOMEM; goto out; }
        cy_alloc_prefault(buf, (size_t)size);   /* pread fills all of it */
        if (cy_os_pread(fd, buf, (size_t)size, 0) != (int64_t)size) goto out;
    }
    const uint8_t *t = buf + size - CY_HINT_TRAILER;
    *data_size = cy_get_u64(t);
    *compact = memcmp(buf, CY_HINT_MAGIC_COMPACT, 8) == 0;
    if ((!*compact && memcmp(buf, CY_HINT_MAGIC, 8) != 0) || memcmp(t + 20, CY_HINT_END, 4) != 0 ||
        *data_size > file_size || cy_get_u32(t + 16) != cy_crc(buf, (size_t)size - 8, NULL, 0))
        goto out;
    *out = buf;
    *len = size;
    buf = NULL;
    rc = CALYPSO_OK;
out:
    if (*mapped && buf) cy_os_munmap(buf, size);
    else cy_free(buf);
    if (rc) *mapped = 0;
    cy_os_close(fd);
    return rc;
}

CY_INTERNAL int cy_hint_load(calypso *db, uint32_t fid, uint64_t file_size, uint64_t *covers,
                             uint64_t *hint_bytes)
{
    uint8_t *buf = NULL;
    uint64_t size = 0, data_size = 0, listed = 0;
    int compact = 0, mapped = 0;
    int rc = cy_hint_read(db, fid, file_size, &buf, &size, &data_size, &compact, &mapped);
    if (rc) return rc;
    const uint8_t *t = buf + size - CY_HINT_TRAILER;
    /* Applying as it parses. The crc vouches that these are the bytes
     * calypso wrote; a hint that passes it yet does not parse was made on
     * purpose, and fails the open (the handle and all it loaded go). */
    const uint8_t *rest = buf + 8;
    rc = cy_hint_walk_known(db, fid, &rest, t, data_size, &listed);
    if (!rc && rest < t) rc = cy_hint_walk(db, fid, rest, t, data_size, 1, &listed);
    if (!rc && rest < t) rc = cy_hint_walk(db, fid, rest, t, data_size, 0, &listed);
    if (rc == CALYPSO_ECORRUPT) {
        char path[4096];
        cy_dir_hint_path(db, fid, path, sizeof path);
        rc = cy_err(db, CALYPSO_ECORRUPT, "%s: entries do not parse though its checksum holds",
                    path);
        *covers = UINT64_MAX;   /* tells the caller not to fall back */
    } else if (!rc) {
        /* What a hint does not list is dead as a scan would find it:
         * batch headers, and in a compacted hint the records that were
         * dead when it was written; the seal record at the file's head
         * (its size set before the load: recover.c) is not counted. */
        cy_file *f = cy_files_find(db, fid);
        uint64_t seal = f ? f->head : 0;
        if (data_size > listed + seal) cy_files_dead_add(db, fid, data_size - listed - seal);
        *covers = data_size;
        *hint_bytes = size;
    }
    if (mapped) cy_os_munmap(buf, size);
    else cy_free(buf);
    return rc;
}
