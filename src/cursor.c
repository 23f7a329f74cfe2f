/*
 * cursor.c: ordered cursors over the keydir (calypso_cursor_*), in the
 * manner of rax's iterator: seek, first, last, then next and prev, with the
 * key and value of the current position at hand.
 *
 * A cursor holds a window of up to CY_CURSOR_WINDOW consecutive live keys
 * with their locations, copied out of the tree under kd_lock shared; moving
 * inside the window takes no lock at all, and moving past its edge refills
 * it by seeking from the edge key (> for next, < for prev). So a cursor
 * never holds a lock between calls, writers are never blocked by it, and
 * reading the values of a window costs no tree lookups: each value is read
 * from the location noted with its key (one copy out of a mapping). Reads
 * run inside an epoch (epoch.c), which keeps every file in the table they
 * see mapped until they leave; a location noted in an earlier epoch whose
 * file a merge has removed since is not in the table any more, and then
 * the key is looked up again, once, inside the same epoch.
 *
 * Values are read ahead, like a file's pages: while the caller reads the
 * values of consecutive keys, each read verifies and copies the values of
 * the next 2, 4, ... 64 keys of the window too (at most CY_CURSOR_VBYTES
 * bytes) inside one epoch, so a scan pays for entering it once per run
 * instead of once per value. A record the run cannot take from a
 * mapping, or that fails verification, ends the run; it is then read on
 * its own, which reports what is wrong with it.
 *
 * What a cursor sees: every key that exists for the whole walk, once, in
 * order; keys written or deleted meanwhile may or may not be seen, and a
 * value is the one current when its window was filled (or newer). Expired
 * keys are skipped.
 *
 * A cursor opened in a transaction (calypso_txn_cursor_open) fills its
 * window by walking two trees side by side in key order: the keydir and,
 * in an update, the transaction's own writes (which win: a put shows its
 * value, a delete hides the key), or, in a view, the history of changes
 * made since the view began (each key shown as of the view's start,
 * view.c). Values of the transaction's own writes are copied from its
 * batch; a view's are read from the file that held them then, which stays
 * mapped for the view even once a merge removed it.
 */
#include "engine.h"

#include <string.h>

#define CY_CURSOR_WINDOW 128
#define CY_CURSOR_AHEAD  32   /* records prefetched ahead of the position */
#define CY_CURSOR_RUNMAX 64   /* values read ahead in one run, at most    */
#define CY_CURSOR_STEP   32   /* keys collected at a time inside a prefix */
#define CY_CURSOR_VBYTES (256u << 10)   /* ... and bytes, unless just one */
#define CY_CURSOR_VISIT  1024  /* keys visited per lock hold, expired ones too */

typedef struct cy_cursor_ent {
    cy_loc         loc;
    uint64_t       expiry;
    const uint8_t *at;    /* where the record was mapped at fill time: only
                             a prefetch hint, never read through          */
    size_t         vat;   /* its value in vals, for entries [vfrom, vto)  */
    size_t         vlen;
    int            own;   /* an update's own write: value in its batch     */
    size_t         own_at, own_len;
} cy_cursor_ent;

struct calypso_cursor {
    calypso      *db;
    cy_ns        *ns;               /* the namespace it walks               */
    cy_keylist    keys;             /* the window's keys, in key order      */
    cy_cursor_ent ent[CY_CURSOR_WINDOW];
    size_t        pos;              /* index in the window                  */
    int           valid;            /* positioned on a key                  */
    int           more_before;      /* the window may not reach the start   */
    int           more_after;       /* ... or the end                       */
    uint8_t      *val;              /* the current value (owned)            */
    size_t        vlen, vcap;
    int           have_val;
    uint8_t      *vals;             /* values read ahead, back to back      */
    size_t        vals_cap;
    size_t        vfrom, vto;       /* window entries whose values are in vals */
    unsigned      run;              /* consecutive runs read: sizes the next */
    uint8_t      *edge;             /* a copy of an edge key for refills    */
    size_t        edge_len, edge_cap;
    uint8_t      *pfx;              /* seek_prefix: every key must start so */
    size_t        plen, pcap;
    calypso_txn  *tx;               /* opened in a transaction, or NULL     */
};

int calypso_txn_cursor_open(calypso_txn *tx, calypso_cursor **out)
{
    if (out) *out = NULL;
    if (!tx) return CALYPSO_EINVAL;
    calypso *db;
    uint64_t seq, start;
    calypso_batch *b;
    cy_txn_info(tx, &db, &seq, &start, &b);
    int rc = calypso_cursor_open(db, out);
    if (!rc) {
        calypso_cursor *c = *out;
        c->tx = tx;
        cy_ns_unpin(db, c->ns);
        c->ns = cy_txn_ns(tx);
        cy_ns_pin(db, c->ns);
    }
    return rc;
}

int calypso_cursor_open(calypso *h, calypso_cursor **out)
{
    calypso *db = cy_base(h);
    if (out) *out = NULL;
    if (!out) return db ? cy_err(db, CALYPSO_EINVAL, "no cursor pointer") : CALYPSO_EINVAL;
    int rc = cy_db_usable(db);
    if (rc) return rc;
    calypso_cursor *c = cy_calloc(1, sizeof *c);
    if (!c) return cy_err(db, CALYPSO_ENOMEM, "allocating a cursor");
    c->db = db;
    c->ns = cy_ns_of(h);
    cy_ns_pin(db, c->ns);   /* a dropped namespace stays allocated for it */
    *out = c;
    return CALYPSO_OK;
}

void calypso_cursor_close(calypso_cursor *c)
{
    if (!c) return;
    cy_ns_unpin(c->db, c->ns);
    cy_keylist_free(&c->keys);
    cy_free(c->val);
    cy_free(c->vals);
    cy_free(c->edge);
    cy_free(c->pfx);
    cy_free(c);
}

/* Prefetches the lines of window record i (the first few lines of a big
 * one: past those the hardware prefetcher follows the copy). */
static CY_INLINE void cy_cursor_prefetch(calypso_cursor *c, size_t i)
{
    if (i >= c->keys.n || !c->ent[i].at) return;
    uintptr_t a = (uintptr_t)c->ent[i].at, end = a + c->ent[i].loc.size;
    a &= ~(uintptr_t)63u;
    for (int lines = 0; a < end && lines < 4; a += 64, lines++)
        CY_PREFETCH((const void *)a);
}

/* Notes where each record of the window is mapped, and prefetches the
 * first few: an ordered walk reads records in key order, which is random
 * order in the files, so each value is a cache miss that prefetching lets
 * overlap with the next. */
static void cy_cursor_locate(calypso_cursor *c, size_t n)
{
    calypso *db = c->db;
    uint32_t ep = cy_epoch_enter(&db->epoch);
    uint32_t fid = 0;
    cy_file *f = NULL;
    for (size_t i = 0; i < n; i++) {
        cy_cursor_ent *e = &c->ent[i];
        uint32_t want = e->loc.fid & CY_LOC_FIDMASK;
        if (!f || fid != want) {
            f = cy_files_find(db, want);
            fid = want;
        }
        e->at = f ? cy_files_mapped(f, e->loc.off, e->loc.size) : NULL;
    }
    cy_epoch_leave(&db->epoch, ep);
    for (size_t i = 0; i < n && i < CY_CURSOR_AHEAD; i++)
        cy_cursor_prefetch(c, i);
}

/* Takes key into the window with entry e. */
static int cy_cursor_push(calypso_cursor *c, const uint8_t *key, size_t klen,
                          const cy_cursor_ent *e)
{
    size_t n = c->keys.n;
    int rc = cy_keylist_push(&c->keys, key, klen);
    if (rc < 0) return rc;
    c->ent[n] = *e;
    return CY_KD_TAKE;
}

/* The iterator's visitor for a plain cursor (keydir.c), under kd_lock
 * shared: live keys fill the window, expired ones are passed over. */
static int cy_cursor_take(const cy_kd_ent *e, void *ctx)
{
    if (e->expired) return CY_KD_PASS;
    cy_cursor_ent ent = { *e->loc, e->expiry, NULL, 0, 0, 0, 0, 0 };
    return cy_cursor_push(ctx, e->key, e->klen, &ent);
}

/* A cursor opened in a transaction: the iterator walks the keydir and the
 * transaction's other tree (an update's own writes, a view's history) side
 * by side. */
typedef struct cy_cursor_txn_fill {
    calypso_cursor *c;
    calypso        *db;
    int             view;
    uint64_t        seq, now;
    calypso_batch  *b;
    int             lost;     /* the view's snapshot could not be kept      */
} cy_cursor_txn_fill;

static int cy_cursor_take_txn(const cy_kd_ent *e, void *ctx)
{
    cy_cursor_txn_fill *f = ctx;
    cy_cursor_ent ent;
    memset(&ent, 0, sizeof ent);
    if (f->view) {                          /* the key as of the view's start */
        cy_loc loc = { 0, 0, 0 };
        uint64_t exp = 0;
        /* A change the view could not note (view.c): its history is not
         * whole, and the keydir shows later states. kd_lock held. */
        if (f->db->views.lost && f->db->views.lost > f->seq) {
            f->lost = 1;
            return CALYPSO_ENOMEM;
        }
        if (!cy_view_state(f->db, f->c->ns, f->seq, e->key, e->klen, &loc, &exp) ||
            (exp && exp <= f->now))
            return CY_KD_PASS;
        ent.loc = loc;
        ent.expiry = exp;
    } else if (e->other) {                  /* the update wrote this key */
        size_t at, vl;
        if (cy_batch_op_value(f->b, e->other->off, &at, &vl) <= 0) return CY_KD_PASS;
        ent.own = 1;
        ent.own_at = at;
        ent.own_len = vl;
    } else {
        if (e->expired) return CY_KD_PASS;
        ent.loc = *e->loc;
        ent.expiry = e->expiry;
    }
    return cy_cursor_push(f->c, e->key, e->klen, &ent);
}

/* Fills the window from a seek; with `backward`, collects towards smaller
 * keys and stores them in ascending order. Returns CALYPSO_OK (valid tells
 * whether any key was found) or an error. */
static int cy_cursor_fill(calypso_cursor *c, int op, const void *key, size_t klen, int backward)
{
    calypso *db = c->db;
    cy_keylist_clear(&c->keys);
    c->valid = c->have_val = 0;
    c->vfrom = c->vto = 0;
    c->run = 0;
    cy_kd_iter it;
    cy_kd_iter_init(&it, db, c->ns, op, key, klen);
    it.backward = backward;
    it.pfx = c->pfx;
    it.plen = c->plen;
    /* Bounded by a prefix, collect in steps of CY_CURSOR_STEP so as not
     * to walk far past its end. */
    it.step = c->plen ? CY_CURSOR_STEP : CY_CURSOR_WINDOW;
    it.visit = CY_CURSOR_VISIT;
    it.flags = CY_KD_EXPIRY;
    it.now = cy_now_ms();
    cy_kd_visit_fn fn = cy_cursor_take;
    void *ctx = c;
    cy_cursor_txn_fill tf = { c, db, 0, 0, 0, NULL, 0 };
    if (c->tx) {
        uint64_t start;
        tf.view = cy_txn_info(c->tx, &tf.db, &tf.seq, &start, &tf.b);
        tf.now = it.now = tf.view ? start : it.now;
        it.other = tf.view ? &c->ns->history : cy_batch_index(tf.b, c->ns);
        fn = cy_cursor_take_txn;
        ctx = &tf;
    }
    /* Expired keys not yet swept are passed over but count as visited: one
     * hold of the lock visits at most CY_CURSOR_VISIT keys. A hold that
     * found none live goes on, after releasing the lock, from the last
     * key it visited. */
    int rc;
    do rc = cy_kd_iter_gather(&it, CY_CURSOR_WINDOW - c->keys.n, fn, ctx);
    while (rc == 1 && c->keys.n == 0);
    cy_kd_iter_free(&it);
    if (tf.lost) return cy_err(db, CALYPSO_ENOMEM, CY_VIEW_LOST_MSG);
    if (rc < 0) return cy_err(db, rc, "filling a cursor");
    size_t n = c->keys.n;
    cy_cursor_locate(c, n);
    int more = rc == 1;
    if (backward) {
        /* Collected descending: reverse keys and entries to ascending. */
        cy_keylist rev = { 0 };
        for (size_t i = n; i-- > 0;) {
            size_t kl;
            const uint8_t *k = cy_keylist_at(&c->keys, i, &kl);
            if (cy_keylist_push(&rev, k, kl) < 0) {
                cy_keylist_free(&rev);
                return cy_err(db, CALYPSO_ENOMEM, "filling a cursor");
            }
        }
        for (size_t i = 0; i < n / 2; i++) {
            cy_cursor_ent t = c->ent[i];
            c->ent[i] = c->ent[n - 1 - i];
            c->ent[n - 1 - i] = t;
        }
        cy_keylist_free(&c->keys);
        c->keys = rev;
        c->more_before = more;
        c->more_after = 1;
        c->pos = n ? n - 1 : 0;
    } else {
        c->more_after = more;
        c->more_before = 1;
        c->pos = 0;
    }
    c->valid = n > 0;
    return CALYPSO_OK;
}

static int cy_cursor_result(calypso_cursor *c, int rc)
{
    if (rc) return rc;
    return c->valid ? CALYPSO_OK : CALYPSO_ENOTFOUND;
}

int calypso_cursor_first(calypso_cursor *c)
{
    if (!c) return CALYPSO_EINVAL;
    c->plen = 0;
    return cy_cursor_result(c, cy_cursor_fill(c, CY_SEEK_FIRST, NULL, 0, 0));
}

int calypso_cursor_last(calypso_cursor *c)
{
    if (!c) return CALYPSO_EINVAL;
    c->plen = 0;
    return cy_cursor_result(c, cy_cursor_fill(c, CY_SEEK_LAST, NULL, 0, 1));
}

int calypso_cursor_seek(calypso_cursor *c, const void *key, size_t klen)
{
    if (!c) return CALYPSO_EINVAL;
    if (!key && klen) return cy_err(c->db, CALYPSO_EINVAL, "seek key is NULL");
    c->plen = 0;
    return cy_cursor_result(c, cy_cursor_fill(c, CY_SEEK_GE, key ? key : "", klen, 0));
}

int calypso_cursor_seek_prefix(calypso_cursor *c, const void *prefix, size_t plen)
{
    if (!c) return CALYPSO_EINVAL;
    if (!prefix && plen) return cy_err(c->db, CALYPSO_EINVAL, "prefix is NULL");
    c->plen = 0;
    if (plen > c->pcap) {
        uint8_t *p = cy_realloc(c->pfx, plen);
        if (!p) {
            c->valid = 0;
            return cy_err(c->db, CALYPSO_ENOMEM, "a prefix of %zu bytes", plen);
        }
        c->pfx = p;
        c->pcap = plen;
    }
    if (plen) memcpy(c->pfx, prefix, plen);
    c->plen = plen;
    return cy_cursor_result(c, cy_cursor_fill(c, CY_SEEK_GE, prefix ? prefix : "", plen, 0));
}

int calypso_cursor_seek_le(calypso_cursor *c, const void *key, size_t klen)
{
    if (!c) return CALYPSO_EINVAL;
    if (!key && klen) return cy_err(c->db, CALYPSO_EINVAL, "seek key is NULL");
    c->plen = 0;
    return cy_cursor_result(c, cy_cursor_fill(c, CY_SEEK_LE, key ? key : "", klen, 1));
}

/* Keeps a copy of window key i for a refill that replaces the window. */
static int cy_cursor_keep_edge(calypso_cursor *c, size_t i)
{
    size_t kl;
    const uint8_t *k = cy_keylist_at(&c->keys, i, &kl);
    if (kl > c->edge_cap) {
        uint8_t *p = cy_realloc(c->edge, kl ? kl : 1);
        if (!p) return cy_err(c->db, CALYPSO_ENOMEM, "moving a cursor");
        c->edge = p;
        c->edge_cap = kl;
    }
    memcpy(c->edge, k, kl);
    c->edge_len = kl;
    return CALYPSO_OK;
}

int calypso_cursor_next(calypso_cursor *c)
{
    if (!c) return CALYPSO_EINVAL;
    if (!c->valid) return CALYPSO_ENOTFOUND;
    c->have_val = 0;
    if (c->pos + 1 < c->keys.n) {
        c->pos++;
        cy_cursor_prefetch(c, c->pos + CY_CURSOR_AHEAD);
        return CALYPSO_OK;
    }
    if (!c->more_after) {
        c->valid = 0;
        return CALYPSO_ENOTFOUND;
    }
    int rc = cy_cursor_keep_edge(c, c->keys.n - 1);
    if (!rc) rc = cy_cursor_fill(c, CY_SEEK_GT, c->edge, c->edge_len, 0);
    return cy_cursor_result(c, rc);
}

int calypso_cursor_prev(calypso_cursor *c)
{
    if (!c) return CALYPSO_EINVAL;
    if (!c->valid) return CALYPSO_ENOTFOUND;
    c->have_val = 0;
    if (c->pos > 0) {
        c->pos--;
        if (c->pos >= CY_CURSOR_AHEAD) cy_cursor_prefetch(c, c->pos - CY_CURSOR_AHEAD);
        return CALYPSO_OK;
    }
    if (!c->more_before) {
        c->valid = 0;
        return CALYPSO_ENOTFOUND;
    }
    int rc = cy_cursor_keep_edge(c, 0);
    if (!rc) rc = cy_cursor_fill(c, CY_SEEK_LT, c->edge, c->edge_len, 1);
    return cy_cursor_result(c, rc);
}

int calypso_cursor_key(calypso_cursor *c, const void **key, size_t *klen)
{
    if (!c || !key || !klen) return CALYPSO_EINVAL;
    if (!c->valid) return CALYPSO_ENOTFOUND;
    *key = cy_keylist_at(&c->keys, c->pos, klen);
    return CALYPSO_OK;
}

/* Reads ahead the values of window entries from, from + 1, ... (at most
 * n) straight out of their mappings into vals, inside one epoch. Returns
 * how many it read: it stops at a record not mapped (or whose file is
 * gone), one that fails verification, or when vals is full. */
static size_t cy_cursor_read_ahead(calypso_cursor *c, size_t from, size_t n)
{
    calypso *db = c->db;
    size_t end = from + n < c->keys.n ? from + n : c->keys.n, used = 0, i;
    uint32_t fid = 0;
    cy_file *f = NULL;
    uint32_t ep = cy_epoch_enter(&db->epoch);
    calypso *tdb;
    uint64_t tseq, tstart;
    calypso_batch *tb = NULL;
    int view = c->tx ? cy_txn_info(c->tx, &tdb, &tseq, &tstart, &tb) : 0;
    for (i = from; i < end; i++) {
        cy_cursor_ent *e = &c->ent[i];
        /* Keep CY_CURSOR_AHEAD records in flight: verifying and copying one
         * is more work than the processor looks ahead over, so without it
         * the run's misses would come one after another. */
        cy_cursor_prefetch(c, i + CY_CURSOR_AHEAD);
        if (e->own) {                       /* an update's own write */
            size_t vl = e->own_len;
            if (used + vl > c->vals_cap) {
                if (i > from && used + vl > CY_CURSOR_VBYTES) break;
                size_t cap = c->vals_cap ? c->vals_cap : 4096;
                while (cap < used + vl) cap *= 2;
                uint8_t *p = cy_realloc(c->vals, cap);
                if (!p) break;
                c->vals = p;
                c->vals_cap = cap;
            }
            if (vl) memcpy(c->vals + used, cy_batch_arena(tb) + e->own_at, vl);
            e->vat = used;
            e->vlen = vl;
            used += vl;
            continue;
        }
        uint32_t want = e->loc.fid & CY_LOC_FIDMASK;
        if (!f || fid != want) {
            if (!(f = view ? cy_view_file(db, want) : cy_files_find(db, want))) break;
            fid = want;
            cy_files_touch(db, f);
        }
        const uint8_t *rec = cy_files_mapped(f, e->loc.off, e->loc.size);
        if (!rec) break;
        size_t klen;
        cy_rec r;
        const uint8_t *k = cy_keylist_at(&c->keys, i, &klen);
        if (!cy_rec_matches(rec, e->loc.size, k, klen, e->expiry, &r)) break;
        size_t vl = (size_t)r.vlen;
        if (used + vl > c->vals_cap) {
            if (i > from && used + vl > CY_CURSOR_VBYTES) break;
            size_t cap = c->vals_cap ? c->vals_cap : 4096;
            while (cap < used + vl) cap *= 2;
            uint8_t *p = cy_realloc(c->vals, cap);
            if (!p) break;
            c->vals = p;
            c->vals_cap = cap;
        }
        if (vl) memcpy(c->vals + used, rec + r.hdr + r.klen, vl);
        e->vat = used;
        e->vlen = vl;
        used += vl;
    }
    cy_epoch_leave(&db->epoch, ep);
    c->vfrom = from;
    c->vto = i;
    return i - from;
}

int calypso_cursor_value(calypso_cursor *c, const void **val, size_t *vlen)
{
    if (!c || !val || !vlen) return CALYPSO_EINVAL;
    if (!c->valid) return CALYPSO_ENOTFOUND;
    if (!c->have_val && (c->pos < c->vfrom || c->pos >= c->vto)) {
        /* A run that picks up where the last one ended doubles. */
        c->run = c->vto > c->vfrom && c->pos == c->vto ? c->run + 1 : 0;
        size_t n = c->run < 6 ? (size_t)1 << c->run : CY_CURSOR_RUNMAX;
        cy_cursor_read_ahead(c, c->pos, n);
    }
    if (!c->have_val && c->pos >= c->vfrom && c->pos < c->vto) {
        const cy_cursor_ent *e = &c->ent[c->pos];
        *val = c->vals ? (const void *)(c->vals + e->vat) : (const void *)"";
        *vlen = e->vlen;
        return CALYPSO_OK;
    }
    if (!c->have_val) {
        calypso *db = c->db;
        size_t klen;
        const uint8_t *k = cy_keylist_at(&c->keys, c->pos, &klen);
        cy_cursor_ent *e = &c->ent[c->pos];
        int rc;
        do {
            uint32_t ep = cy_epoch_enter(&db->epoch);
            calypso *tdb;
            uint64_t tseq, tstart;
            calypso_batch *tb;
            if (c->tx && cy_txn_info(c->tx, &tdb, &tseq, &tstart, &tb)) {
                /* A view reads where the value was at its start: that
                 * file stays reachable for it, never looked up anew. */
                cy_file *vf = cy_view_file(db, e->loc.fid & CY_LOC_FIDMASK);
                /* None: a merge could not keep the file for the views
                 * (it set view_lost), and the value is gone. */
                rc = vf ? cy_db_read_file(db, vf, k, klen, &e->loc, e->expiry, NULL, c->val,
                                          c->vcap, &c->vlen)
                        : cy_err(db, CALYPSO_ENOMEM, CY_VIEW_LOST_MSG);
            } else {
                rc = cy_db_read_at(db, k, klen, &e->loc, e->expiry, NULL, c->val, c->vcap,
                                   &c->vlen);
            }
            if (rc == CALYPSO_ENOTFOUND && !(c->tx && cy_txn_info(c->tx, &tdb, &tseq, &tstart, &tb))) {
                /* A merge moved the record since the window was filled:
                 * take the key's current location, in this epoch, whose
                 * file cannot be released before we leave it. */
                cy_rdlock(&db->kd_lock);
                const cy_loc *l = cy_keydir_get(db, c->ns, k, klen, &e->expiry);
                if (l) e->loc = *l;
                cy_unlock(&db->kd_lock);
                if (l) {
                    rc = cy_db_read_at(db, k, klen, &e->loc, e->expiry, NULL, c->val, c->vcap,
                                       &c->vlen);
                    CY_ASSERT(rc != CALYPSO_ENOTFOUND);
                }
                /* else deleted since the window was filled: not found */
            }
            cy_epoch_leave(&db->epoch, ep);
            if (rc == CALYPSO_ETRUNC) {
                uint8_t *p = cy_realloc(c->val, c->vlen ? c->vlen : 1);
                if (!p) return cy_err(db, CALYPSO_ENOMEM, "a value of %zu bytes", c->vlen);
                c->val = p;
                c->vcap = c->vlen;
            }
        } while (rc == CALYPSO_ETRUNC);
        if (rc) return rc;
        c->have_val = 1;
    }
    *val = c->val ? (const void *)c->val : (const void *)"";
    *vlen = c->vlen;
    return CALYPSO_OK;
}
