/*
 * ns.c: namespaces: the catalog (names to ids), namespace handles, and
 * calypso_ns_open, calypso_ns_drop and calypso_ns_list.
 *
 * Every namespace has a key directory of its own (cy_ns: keydir, TTL
 * trees, view history, counts). The default namespace's is embedded in the
 * database handle; named ones are allocated and kept in db->catalog.cat, sorted by
 * id (ids only grow, so a create appends), under kd_lock, and every change
 * of the catalog also holds write_mu, so a holder of either sees it still.
 *
 * The catalog lives in the log (doc/format.md, Namespaces): a create
 * record (type 5: id and name) and a drop record (type 6). Replay and the
 * write path apply them through cy_ns_apply, as they apply puts through
 * cy_keydir_apply. A drop frees the namespace's trees at once (O(its
 * keys), in memory only) and counts every record they pointed at dead, so
 * that the auto-merge sees the bytes and the next merge reclaims them;
 * a record naming a namespace not in the catalog is dead.
 *
 * A namespace handle is a struct calypso with base (its database handle)
 * and ns set; the public calls resolve it with cy_base and cy_ns_of. A
 * dropped namespace stays allocated while handles (or the background
 * thread's sweep) hold it (refs), empty and refusing writes.
 */
#include "engine.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>


CY_INTERNAL void cy_ns_init(cy_ns *ns, uint32_t id)
{
    memset(ns, 0, offsetof(cy_ns, name));
    ns->id = id;
    cy_art_init(&ns->keydir);
    cy_art_finger_on(&ns->keydir);   /* open replays hints in key order */
    cy_art_init(&ns->ttl_by_key);
    cy_art_init(&ns->ttl_by_time);
    cy_art_init(&ns->history);
}

CY_INTERNAL void cy_ns_clear(cy_ns *ns)
{
    cy_view_free_history(&ns->history);
    cy_art_destroy(&ns->keydir);
    cy_art_destroy(&ns->ttl_by_key);
    cy_art_destroy(&ns->ttl_by_time);
    ns->live_bytes = ns->exp_asof = ns->exp_count = 0;
}

// >> the catalog ------------------------------------------------------------------

/* Index of the first catalog entry with id >= id. */
static uint32_t cy_ns_pos(const calypso *db, uint32_t id)
{
    uint32_t lo = 0, hi = db->catalog.n;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (db->catalog.cat[mid]->id < id) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

CY_INTERNAL cy_ns *cy_ns_find(calypso *db, uint32_t id)
{
    if (id == 0) return &db->catalog.ns0;
    uint32_t i = cy_ns_pos(db, id);
    return i < db->catalog.n && db->catalog.cat[i]->id == id ? db->catalog.cat[i] : NULL;
}

static cy_ns *cy_ns_by_name(calypso *db, const void *name, size_t nlen)
{
    for (uint32_t i = 0; i < db->catalog.n; i++)
        if (db->catalog.cat[i]->nlen == nlen && memcmp(db->catalog.cat[i]->name, name, nlen) == 0)
            return db->catalog.cat[i];
    return NULL;
}

/* Counts every record ns's keydir points at dead (its drop). */
static int cy_ns_dead_one(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    (void)key;
    (void)klen;
    cy_files_dead_add(ctx, loc->fid & CY_LOC_FIDMASK, loc->size);
    return 0;
}

static void cy_ns_free(cy_ns *ns)
{
    cy_ns_clear(ns);
    cy_free(ns);
}

/* Takes a dropped namespace off the catalog and returns what holds its
 * keys for the caller to count dead and free: the namespace itself when
 * nothing holds it, else a copy of its trees (it stays, empty, for its
 * handles); NULL when memory for the copy is short: then the trees are
 * counted and freed here. kd_lock exclusive. */
static cy_ns *cy_ns_unlink(calypso *db, cy_ns *ns)
{
    uint32_t i = cy_ns_pos(db, ns->id);
    memmove(db->catalog.cat + i, db->catalog.cat + i + 1,
            (db->catalog.n - i - 1) * sizeof *db->catalog.cat);
    db->catalog.n--;
    db->views.commit_seq++;
    ns->dropped = 1;
    if (!ns->refs) return ns;
    cy_ns *corpse = cy_malloc(sizeof *corpse);
    if (!corpse) {
        cy_art_walk_prefix(&ns->keydir, NULL, 0, cy_ns_dead_one, db);
        cy_files_dead_add(db, ns->created.fid, ns->created.size);
        cy_ns_clear(ns);
        return NULL;
    }
    memcpy(corpse, ns, offsetof(cy_ns, name));   /* the trees move (view.c does so too) */
    corpse->nlen = 0;
    /* Empty in place. id and the name stay untouched: pin and unpin read
     * id without the lock, so it must never change, not even for a moment
     * (as a memset and rewrite would). */
    ns->created = (cy_loc){ 0, 0, 0 };
    cy_art_init(&ns->keydir);
    cy_art_finger_on(&ns->keydir);
    cy_art_init(&ns->ttl_by_key);
    cy_art_init(&ns->ttl_by_time);
    cy_art_init(&ns->history);
    ns->live_bytes = ns->exp_asof = ns->exp_count = 0;
    return corpse;
}

/* Per-file sums of the bytes a dropped namespace's records held. */
typedef struct cy_ns_sums { struct { uint32_t fid; uint64_t bytes; } *v; uint32_t n, cap; int oom; } cy_ns_sums;

static void cy_ns_sum(cy_ns_sums *s, uint32_t fid, uint64_t bytes)
{
    for (uint32_t i = s->n; i-- > 0;)   /* keys of one file cluster: newest first */
        if (s->v[i].fid == fid) {
            s->v[i].bytes += bytes;
            return;
        }
    if (s->n == s->cap) {
        uint32_t nc = s->cap ? s->cap * 2 : 16;
        void *p = cy_realloc(s->v, nc * sizeof *s->v);
        if (!p) {
            s->oom = 1;
            return;
        }
        s->v = p;
        s->cap = nc;
    }
    s->v[s->n].fid = fid;
    s->v[s->n].bytes = bytes;
    s->n++;
}

static int cy_ns_sum_one(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    (void)key;
    (void)klen;
    cy_ns_sum(ctx, loc->fid & CY_LOC_FIDMASK, loc->size);
    return 0;
}

/* Counts a dropped namespace's records dead and frees its trees: the walk
 * and the freeing hold no lock (the trees are the caller's alone), the
 * sums are added under write_mu and kd_lock, to the files still there (a
 * merge since the drop copied none of these records). */
static void cy_ns_bury(calypso *db, cy_ns *corpse)
{
    cy_ns_sums s = { 0 };
    cy_art_walk_prefix(&corpse->keydir, NULL, 0, cy_ns_sum_one, &s);
    cy_ns_sum(&s, corpse->created.fid, corpse->created.size);
    pthread_mutex_lock(&db->write_mu);
    cy_wrlock(&db->kd_lock);
    if (s.oom) {
        /* Without the sums: count them now, under the locks. */
        cy_art_walk_prefix(&corpse->keydir, NULL, 0, cy_ns_dead_one, db);
        cy_files_dead_add(db, corpse->created.fid, corpse->created.size);
    } else {
        for (uint32_t i = 0; i < s.n; i++)
            if (cy_files_find(db, s.v[i].fid)) cy_files_dead_add(db, s.v[i].fid, s.v[i].bytes);
    }
    cy_unlock(&db->kd_lock);
    pthread_mutex_unlock(&db->write_mu);
    cy_free(s.v);
    cy_ns_free(corpse);
}

CY_INTERNAL int cy_ns_apply(calypso *db, int type, uint32_t id, const uint8_t *name,
                            size_t nlen, uint32_t fid, uint64_t off, uint32_t size)
{
    cy_files_mark_mixed(db, fid);   /* a catalog record: the file is not puts alone */
    cy_ns *ns = cy_ns_find(db, id);
    if (type == CY_REC_NS_DROP) {
        cy_files_dead_add(db, fid, size);   /* dead once applied, as a tombstone */
        if (!ns) return CALYPSO_OK;
        cy_ns *corpse = cy_ns_unlink(db, ns);
        if (corpse) {                 /* replay: nothing else runs */
            cy_art_walk_prefix(&corpse->keydir, NULL, 0, cy_ns_dead_one, db);
            cy_files_dead_add(db, corpse->created.fid, corpse->created.size);
            cy_ns_free(corpse);
        }
        return CALYPSO_OK;
    }
    if (ns) {
        /* The same create again (only a crafted log has it): the newest
         * copy is the live one. */
        cy_files_dead_add(db, ns->created.fid, ns->created.size);
        ns->created = (cy_loc){ off, fid, size };
        return CALYPSO_OK;
    }
    if (db->catalog.n == db->catalog.cap) {
        uint32_t nc = db->catalog.cap ? db->catalog.cap * 2 : 8;
        cy_ns **p = cy_realloc(db->catalog.cat, nc * sizeof *p);
        if (!p) return CALYPSO_ENOMEM;
        db->catalog.cat = p;
        db->catalog.cap = nc;
    }
    if (!(ns = cy_malloc(sizeof *ns))) return CALYPSO_ENOMEM;
    cy_ns_init(ns, id);
    if (db->loading) cy_art_bulk(&ns->keydir, 1);   /* cy_recover_loaded ends it */
    ns->created = (cy_loc){ off, fid, size };
    ns->nlen = (uint32_t)nlen;
    memcpy(ns->name, name, nlen);
    uint32_t i = cy_ns_pos(db, id);
    memmove(db->catalog.cat + i + 1, db->catalog.cat + i,
            (db->catalog.n - i) * sizeof *db->catalog.cat);
    db->catalog.cat[i] = ns;
    db->catalog.n++;
    return CALYPSO_OK;
}

CY_INTERNAL void cy_ns_close_all(calypso *db)
{
    for (uint32_t i = 0; i < db->catalog.n; i++) cy_ns_free(db->catalog.cat[i]);
    cy_free(db->catalog.cat);
    db->catalog.cat = NULL;
    db->catalog.n = db->catalog.cap = 0;
    cy_ns_clear(&db->catalog.ns0);
}

CY_INTERNAL void cy_ns_recovered(calypso *db)
{
    uint64_t top = db->catalog.n ? db->catalog.cat[db->catalog.n - 1]->id + 1ull : 1;
    pthread_mutex_lock(&db->ids.mu);
    if (top > db->ids.next[CY_IDS_NS]) db->ids.next[CY_IDS_NS] = top;
    pthread_mutex_unlock(&db->ids.mu);
}

CY_INTERNAL void cy_ns_pin(calypso *db, cy_ns *ns)
{
    if (ns->id == 0) return;
    cy_wrlock(&db->kd_lock);
    ns->refs++;
    cy_unlock(&db->kd_lock);
}

CY_INTERNAL void cy_ns_unpin(calypso *db, cy_ns *ns)
{
    if (ns->id == 0) return;
    cy_wrlock(&db->kd_lock);
    int gone = --ns->refs == 0 && ns->dropped;
    cy_unlock(&db->kd_lock);
    if (gone) cy_ns_free(ns);
}

CY_INTERNAL int cy_ns_check_live(calypso *db, const cy_ns *ns)
{
    if (!ns->dropped) return CALYPSO_OK;
    return cy_err(db, CALYPSO_EINVAL, "namespace \"%.*s\" was dropped", (int)ns->nlen,
                  (const char *)ns->name);
}

CY_INTERNAL int cy_ns_each(calypso *db, int (*fn)(calypso *, cy_ns *, void *), void *ctx)
{
    int rc = fn(db, &db->catalog.ns0, ctx);
    /* The ids to visit, then each pinned in turn: fn runs unlocked, and
     * namespaces may come and go meanwhile. */
    for (uint32_t after = 0; !rc;) {
        cy_wrlock(&db->kd_lock);
        uint32_t i = cy_ns_pos(db, after + 1);
        cy_ns *ns = i < db->catalog.n ? db->catalog.cat[i] : NULL;
        if (ns) ns->refs++;
        cy_unlock(&db->kd_lock);
        if (!ns) break;
        after = ns->id;
        rc = fn(db, ns, ctx);
        cy_ns_unpin(db, ns);
    }
    return rc;
}

// >> names ----------------------------------------------------------------------

static int cy_ns_check_name(calypso *db, const void *name, size_t nlen)
{
    if (!name || nlen == 0) return cy_err(db, CALYPSO_EINVAL, "a namespace needs a name");
    if (nlen > CALYPSO_NS_MAX_NAME)
        return cy_err(db, CALYPSO_EINVAL, "namespace name of %zu bytes, at most %u", nlen,
                      CALYPSO_NS_MAX_NAME);
    const uint8_t *p = name;
    for (size_t i = 0; i < nlen; i++)
        if (p[i] == '/' && (i == 0 || i + 1 == nlen || p[i - 1] == '/'))
            return cy_err(db, CALYPSO_EINVAL, "namespace name with an empty part");
    return CALYPSO_OK;
}

/* Length of the parent's name (0: top level). */
static size_t cy_ns_parent_len(const uint8_t *name, size_t nlen)
{
    while (nlen > 0 && name[nlen - 1] != '/') nlen--;
    return nlen ? nlen - 1 : 0;
}

// >> handles ----------------------------------------------------------------------

/* A handle of ns (pinned by the caller: the handle takes over the pin). */
static int cy_ns_handle(calypso *db, cy_ns *ns, calypso **out)
{
    calypso *h = cy_calloc(1, sizeof *h);
    if (!h) {
        cy_ns_unpin(db, ns);
        return cy_err(db, CALYPSO_ENOMEM, "allocating a namespace handle");
    }
    h->base = db;
    h->ns = ns;
    h->path = db->path;
    h->health.fork_gen = db->health.fork_gen;
    h->opt = db->opt;
    __atomic_add_fetch(&db->ns_handles, 1, __ATOMIC_RELAXED);
    *out = h;
    return CALYPSO_OK;
}

CY_INTERNAL int cy_ns_close_handle(calypso *h)
{
    calypso *db = h->base;
    cy_ns_unpin(db, h->ns);
    __atomic_sub_fetch(&db->ns_handles, 1, __ATOMIC_RELAXED);
    cy_free(h);
    return CALYPSO_OK;
}

// >> create --------------------------------------------------------------------------

typedef struct cy_ns_create {
    const uint8_t *name;
    size_t         nlen;
    uint32_t       id;        /* the namespace's, found or created */
    int            parent_missing;
    uint8_t        rec[CY_REC_MAX_HDR + CALYPSO_NS_MAX_NAME];
} cy_ns_create;

/* cy_build_fn: the create record, unless the namespace exists by now. */
static int cy_ns_build_create(calypso *db, uint32_t fid, const uint8_t **rec, size_t *size,
                              void *ctx)
{
    (void)fid;
    cy_ns_create *c = ctx;
    *size = 0;
    cy_ns *ns = cy_ns_by_name(db, c->name, c->nlen);   /* write_mu: the catalog is still */
    if (ns) {
        c->id = ns->id;
        return CALYPSO_OK;
    }
    size_t plen = cy_ns_parent_len(c->name, c->nlen);
    if (plen && !cy_ns_by_name(db, c->name, plen)) {
        c->parent_missing = 1;
        return CALYPSO_OK;
    }
    uint32_t id;
    int rc = cy_ids_take(db, CY_IDS_NS, &id);
    if (rc) return rc;
    uint32_t h = cy_rec_header_ns(c->rec, CY_REC_NS_CREATE, id, 0, c->nlen, 0);
    memcpy(c->rec + h, c->name, c->nlen);
    cy_put_u32(c->rec, cy_crc(c->rec + 4, h + c->nlen - 4, NULL, 0));
    c->id = id;
    *rec = c->rec;
    *size = h + c->nlen;
    return CALYPSO_OK;
}

static int cy_ns_apply_create(calypso *db, uint32_t fid, uint64_t off, const uint8_t *rec,
                              size_t size, void *ctx)
{
    (void)rec;
    cy_ns_create *c = ctx;
    return cy_ns_apply(db, CY_REC_NS_CREATE, c->id, c->name, c->nlen, fid, off, (uint32_t)size);
}

int calypso_ns_open(calypso *h, const void *name, size_t nlen, int create, calypso **out)
{
    calypso *db = cy_base(h);
    if (out) *out = NULL;
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (!out) return cy_err(db, CALYPSO_EINVAL, "calypso_ns_open needs a handle pointer");
    if ((rc = cy_ns_check_name(db, name, nlen))) return rc;
    cy_wrlock(&db->kd_lock);
    cy_ns *ns = cy_ns_by_name(db, name, nlen);
    if (ns) ns->refs++;
    cy_unlock(&db->kd_lock);
    if (ns) return cy_ns_handle(db, ns, out);
    if (!create)
        return cy_err(db, CALYPSO_ENOTFOUND, "no namespace \"%.*s\"", (int)nlen,
                      (const char *)name);
    if ((rc = cy_db_writable(db))) return rc;
    cy_ns_create c = { .name = name, .nlen = nlen };
    rc = cy_db_commit(db, CY_REC_MAX_HDR + nlen, cy_ns_build_create, cy_ns_apply_create, &c, 0);
    if (rc) return rc;
    if (c.parent_missing)
        return cy_err(db, CALYPSO_ENOTFOUND, "the parent of namespace \"%.*s\" does not exist",
                      (int)nlen, (const char *)name);
    cy_wrlock(&db->kd_lock);
    ns = cy_ns_find(db, c.id);
    if (ns) ns->refs++;
    cy_unlock(&db->kd_lock);
    if (!ns)   /* dropped by another thread between the commit and here */
        return cy_err(db, CALYPSO_ENOTFOUND, "namespace \"%.*s\" was dropped meanwhile",
                      (int)nlen, (const char *)name);
    return cy_ns_handle(db, ns, out);
}

// >> drop ----------------------------------------------------------------------------

typedef struct cy_ns_drop {
    calypso *db;
    cy_ns  **victims;      /* the namespace and its descendants, children first */
    uint32_t n;
    uint8_t *rec;
    cy_ns  **corpses;      /* what holds their keys, to count dead and free */
    uint32_t ncorpses;
    uint32_t fid;          /* the file the drop went to */
} cy_ns_drop;

/* cy_build_fn: one drop record, or a batch of them. */
static int cy_ns_build_drop(calypso *db, uint32_t fid, const uint8_t **rec, size_t *size,
                            void *ctx)
{
    (void)fid;
    cy_ns_drop *d = ctx;
    uint8_t *body = d->rec + CY_REC_MAX_HDR;
    size_t blen = 0;
    for (uint32_t i = 0; i < d->n; i++) {
        const cy_ns *ns = d->victims[i];
        uint32_t h = cy_rec_header_ns(body + blen, CY_REC_NS_DROP, ns->id, 0, ns->nlen, 0);
        memcpy(body + blen + h, ns->name, ns->nlen);
        cy_put_u32(body + blen, cy_crc(body + blen + 4, h + ns->nlen - 4, NULL, 0));
        blen += h + ns->nlen;
    }
    if (d->n == 1) {
        *rec = body;
        *size = blen;
        return CALYPSO_OK;
    }
    uint8_t hdr[CY_REC_MAX_HDR];
    uint32_t h = cy_rec_header(hdr, CY_REC_BATCH, 0, 0, blen);
    uint8_t *start = body - h;
    memcpy(start, hdr, h);
    cy_put_u32(start, cy_crc(start + 4, h - 4 + blen, NULL, 0));
    (void)db;
    *rec = start;
    *size = h + blen;
    return CALYPSO_OK;
}

/* The write path's drop: the namespace leaves the catalog under the
 * lock; its keys are counted dead and freed after it (cy_ns_bury), so
 * that readers do not wait for that walk. */
static int cy_ns_apply_drop_entry(const cy_rec *r, const uint8_t *rec, uint64_t rel, void *ctx)
{
    (void)rec;
    cy_ns_drop *d = ctx;
    cy_files_dead_add(d->db, d->fid, r->hdr + r->klen + r->vlen);
    cy_files_mark_mixed(d->db, d->fid);   /* a catalog record */
    cy_ns *ns = cy_ns_find(d->db, r->ns);
    cy_ns *corpse = ns ? cy_ns_unlink(d->db, ns) : NULL;
    (void)rel;
    if (corpse) d->corpses[d->ncorpses++] = corpse;
    return CALYPSO_OK;
}

static int cy_ns_apply_drop(calypso *db, uint32_t fid, uint64_t off, const uint8_t *rec,
                            size_t size, void *ctx)
{
    cy_ns_drop *d = ctx;
    cy_rec r;
    if (cy_rec_parse(rec, size, &r) != 1) return CALYPSO_ECORRUPT;   /* we built it */
    (void)off;
    d->fid = fid;
    int rc = cy_rec_entries(rec, &r, cy_ns_apply_drop_entry, d);
    if (!rc && r.type == CY_REC_BATCH) cy_files_dead_add(db, fid, r.hdr);
    return rc;
}

/* Descending byte order: "a/b/c" before "a/b" before "a". */
static int cy_ns_cmp_desc(const void *x, const void *y)
{
    const cy_ns *a = *(cy_ns *const *)x, *b = *(cy_ns *const *)y;
    uint32_t m = a->nlen < b->nlen ? a->nlen : b->nlen;
    int c = memcmp(a->name, b->name, m);
    if (c == 0) c = a->nlen < b->nlen ? -1 : a->nlen > b->nlen;
    return -c;
}

int calypso_ns_drop(calypso *h, const void *name, size_t nlen)
{
    calypso *db = cy_base(h);
    int rc = cy_db_writable(db);
    if (rc) return rc;
    if ((rc = cy_ns_check_name(db, name, nlen))) return rc;
    cy_ns_drop d = { .db = db };
    pthread_mutex_lock(&db->write_mu);   /* the catalog holds still until the commit */
    cy_ns *top = cy_ns_by_name(db, name, nlen);
    if (!top) {
        pthread_mutex_unlock(&db->write_mu);
        return cy_err(db, CALYPSO_ENOTFOUND, "no namespace \"%.*s\"", (int)nlen,
                      (const char *)name);
    }
    size_t bound = CY_REC_MAX_HDR;
    d.victims = cy_malloc(db->catalog.n * sizeof *d.victims);
    d.corpses = cy_malloc(db->catalog.n * sizeof *d.corpses);
    if (!d.victims || !d.corpses) {
        rc = CALYPSO_ENOMEM;
    } else {
        for (uint32_t i = 0; i < db->catalog.n; i++) {
            cy_ns *ns = db->catalog.cat[i];
            if (ns == top || (ns->nlen > nlen && ns->name[nlen] == '/' &&
                              memcmp(ns->name, name, nlen) == 0)) {
                d.victims[d.n++] = ns;
                bound += CY_REC_MAX_HDR + ns->nlen;
            }
        }
        qsort(d.victims, d.n, sizeof *d.victims, cy_ns_cmp_desc);
        if (bound > db->opt.max_datafile_size)
            rc = cy_err(db, CALYPSO_EINVAL, "dropping %u namespaces takes more than a datafile "
                        "(%llu bytes): drop the deepest ones first", d.n,
                        (unsigned long long)db->opt.max_datafile_size);
        else if (!(d.rec = cy_malloc(bound)))
            rc = CALYPSO_ENOMEM;
    }
    if (rc) {
        pthread_mutex_unlock(&db->write_mu);
        cy_free(d.victims);
        cy_free(d.corpses);
        return rc == CALYPSO_ENOMEM ? cy_err(db, rc, "dropping a namespace") : rc;
    }
    rc = cy_db_commit(db, bound, cy_ns_build_drop, cy_ns_apply_drop, &d,
                      CY_COMMIT_LOCKED | CY_COMMIT_DELETES_ONLY);
    for (uint32_t i = 0; i < d.ncorpses; i++) cy_ns_bury(db, d.corpses[i]);
    cy_free(d.rec);
    cy_free(d.victims);
    cy_free(d.corpses);
    return rc;
}

// >> list ----------------------------------------------------------------------------

static int cy_ns_cmp_asc(const void *x, const void *y)
{
    return cy_ns_cmp_desc(y, x);
}

int calypso_ns_list(calypso *h, const void *parent, size_t plen, calypso_key_fn fn, void *ctx)
{
    calypso *db = cy_base(h);
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (!fn) return cy_err(db, CALYPSO_EINVAL, "calypso_ns_list needs a function");
    if (plen && (rc = cy_ns_check_name(db, parent, plen))) return rc;
    /* Copies of the children's names, so that fn runs with no lock held. */
    cy_rdlock(&db->kd_lock);
    if (plen && !cy_ns_by_name(db, parent, plen)) {
        cy_unlock(&db->kd_lock);
        return cy_err(db, CALYPSO_ENOTFOUND, "no namespace \"%.*s\"", (int)plen,
                      (const char *)parent);
    }
    uint32_t n = 0;
    cy_ns *kids = db->catalog.n ? cy_malloc(db->catalog.n * sizeof *kids) : NULL;
    cy_ns **order = db->catalog.n ? cy_malloc(db->catalog.n * sizeof *order) : NULL;
    if (db->catalog.n && (!kids || !order)) {
        cy_unlock(&db->kd_lock);
        cy_free(kids);
        cy_free(order);
        return cy_err(db, CALYPSO_ENOMEM, "listing namespaces");
    }
    for (uint32_t i = 0; i < db->catalog.n; i++) {
        const cy_ns *ns = db->catalog.cat[i];
        size_t pl = cy_ns_parent_len(ns->name, ns->nlen);
        if (pl != plen || (plen && memcmp(ns->name, parent, plen) != 0)) continue;
        if (!plen && memchr(ns->name, '/', ns->nlen)) continue;
        kids[n].nlen = ns->nlen;
        memcpy(kids[n].name, ns->name, ns->nlen);
        order[n] = &kids[n];
        n++;
    }
    cy_unlock(&db->kd_lock);
    if (n) qsort(order, n, sizeof *order, cy_ns_cmp_asc);
    for (uint32_t i = 0; i < n && !rc; i++) rc = fn(order[i]->name, order[i]->nlen, ctx);
    cy_free(kids);
    cy_free(order);
    return rc;
}
