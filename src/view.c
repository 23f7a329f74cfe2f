/*
 * view.c: read-only snapshot views (calypso_view, calypso_view_begin).
 *
 * A view sees the database as of its start while other threads write,
 * expire keys and merge. Nothing is copied when a view opens; the cost is
 * paid by writes made while views are open:
 *
 *   - Every change to the keydir is numbered (commit_seq, under kd_lock
 *     exclusive; a batch's records are applied under one hold, so a view
 *     starts before all of them or after all of them). A view notes the
 *     number current when it starts (its seq) and its start time (against
 *     which it judges expiry).
 *   - While views are open, each change first notes the key's previous
 *     state in the history tree: key -> a chain of (seq of the change,
 *     state before it), newest first (cy_view_note). The state of key k as
 *     a view of seq V sees it is the state before the oldest change of k
 *     numbered above V, or the keydir's current one when k has not changed
 *     since V (cy_view_state).
 *   - A merge that removes files while views are open hands them here
 *     (cy_view_retain) instead of releasing them: they are unlinked, but
 *     stay mapped, so the old locations the history holds stay readable.
 *   - When the last view closes, the history and the retained files are
 *     released.
 *
 * So a long view costs memory for every write made while it is open (a
 * history entry: the key and about 60 bytes) and keeps the files merges
 * replace on disk (unlinked, still allocated) until it closes.
 *
 * If memory runs out while noting a change, the views open at that moment
 * can no longer be served exactly: their next read fails with
 * CALYPSO_ENOMEM (lost_seq) rather than show a newer value.
 *
 * Locks: history and views.open are guarded by kd_lock; the retained list
 * by views.mu.
 */
#include "engine.h"

#include <string.h>

typedef struct cy_hist {
    struct cy_hist *next;     /* older change                              */
    uint64_t        seq;      /* the change's number                       */
    cy_loc          loc;      /* state before it: location (had)           */
    uint64_t        expiry;
    int             had;      /* the key existed before the change         */
} cy_hist;

CY_INTERNAL void cy_view_note(calypso *db, cy_ns *ns, const void *key, size_t klen)
{
    uint64_t seq = ++db->views.commit_seq;
    if (CY_LIKELY(!db->views.open)) return;
    cy_hist *h = cy_malloc(sizeof *h);
    if (!h) {
        db->views.lost = seq;
        return;
    }
    const cy_loc *l = cy_art_search(&ns->keydir, key, klen);
    *h = (cy_hist){ .seq = seq, .had = l != NULL };
    if (l) {
        h->loc = *l;
        h->expiry = (l->fid & CY_LOC_TTL) ? cy_ttl_get(ns, key, klen) : 0;
    }
    cy_loc *head = cy_art_search(&ns->history, key, klen);
    if (head) {
        h->next = (cy_hist *)(uintptr_t)head->off;
        head->off = (uint64_t)(uintptr_t)h;
        return;
    }
    cy_loc at = { (uint64_t)(uintptr_t)h, 0, 0 };
    if (cy_art_insert(&ns->history, key, klen, &at, NULL) < 0) {
        cy_free(h);
        db->views.lost = seq;
    }
}

CY_INTERNAL int cy_view_state(calypso *db, cy_ns *ns, uint64_t view_seq, const void *key,
                              size_t klen, cy_loc *loc, uint64_t *expiry)
{
    const cy_loc *head = cy_art_search(&ns->history, key, klen);
    const cy_hist *found = NULL;
    for (const cy_hist *h = head ? (const cy_hist *)(uintptr_t)head->off : NULL;
         h && h->seq > view_seq; h = h->next)
        found = h;   /* the oldest change after the view started */
    if (found) {
        if (!found->had) return 0;
        *loc = found->loc;
        *expiry = found->expiry;
        return 1;
    }
    const cy_loc *l = cy_keydir_get(db, ns, key, klen, expiry);
    if (!l) return 0;
    *loc = *l;
    return 1;
}

static int cy_view_free_chain(const uint8_t *key, size_t klen, const cy_loc *loc, void *ctx)
{
    (void)key; (void)klen; (void)ctx;
    for (cy_hist *h = (cy_hist *)(uintptr_t)loc->off; h;) {
        cy_hist *next = h->next;
        cy_free(h);
        h = next;
    }
    return 0;
}

CY_INTERNAL void cy_view_free_history(cy_art *history)
{
    cy_art_walk_prefix(history, NULL, 0, cy_view_free_chain, NULL);
    cy_art_destroy(history);
    cy_art_init(history);
}

/* Frees every namespace's history (the last view closed). kd_lock
 * exclusive. */
static int cy_view_free_ns(calypso *db, cy_ns *ns, void *ctx)
{
    (void)db; (void)ctx;
    cy_view_free_history(&ns->history);
    return 0;
}

CY_INTERNAL int cy_view_open(calypso *db, uint64_t *seq)
{
    cy_wrlock(&db->kd_lock);
    db->views.open++;
    *seq = db->views.commit_seq;
    cy_unlock(&db->kd_lock);
    return CALYPSO_OK;
}

CY_INTERNAL void cy_view_close(calypso *db)
{
    cy_wrlock(&db->kd_lock);
    int last = --db->views.open == 0;
    if (last) {
        cy_view_free_ns(db, &db->catalog.ns0, NULL);
        for (uint32_t i = 0; i < db->catalog.n; i++) cy_view_free_ns(db, db->catalog.cat[i], NULL);
        db->views.lost = 0;
    }
    cy_unlock(&db->kd_lock);
    if (!last) return;
    pthread_mutex_lock(&db->views.mu);
    cy_file **kept = db->views.retained;
    uint32_t n = db->views.n;
    db->views.retained = NULL;
    db->views.n = db->views.cap = 0;
    pthread_mutex_unlock(&db->views.mu);
    if (!n) {
        cy_free(kept);
        return;
    }
    cy_epoch_sync(&db->epoch);   /* a view's read in flight elsewhere: none left, but cheap */
    for (uint32_t i = 0; i < n; i++) cy_files_release(db, kept[i]);
    cy_free(kept);
}

CY_INTERNAL int cy_view_retain(calypso *db, cy_file *f)
{
    if (db->views.n == db->views.cap) {
        uint32_t nc = db->views.cap ? db->views.cap * 2 : 16;
        cy_file **p = cy_realloc(db->views.retained, nc * sizeof *p);
        if (!p) return CALYPSO_ENOMEM;
        db->views.retained = p;
        db->views.cap = nc;
    }
    db->views.retained[db->views.n++] = f;
    return CALYPSO_OK;
}

CY_INTERNAL cy_file *cy_view_file(calypso *db, uint32_t fid)
{
    cy_file *f = cy_files_find(db, fid);
    if (f) return f;
    pthread_mutex_lock(&db->views.mu);
    for (uint32_t i = 0; i < db->views.n && !f; i++)
        if (db->views.retained[i]->fid == fid) f = db->views.retained[i];
    pthread_mutex_unlock(&db->views.mu);
    return f;
}

CY_INTERNAL void cy_view_release_all(calypso *db)
{
    if (db->views.open) {
        cy_view_free_ns(db, &db->catalog.ns0, NULL);
        for (uint32_t i = 0; i < db->catalog.n; i++) cy_view_free_ns(db, db->catalog.cat[i], NULL);
        db->views.open = 0;
    }
    for (uint32_t i = 0; i < db->views.n; i++) cy_files_release(db, db->views.retained[i]);
    cy_free(db->views.retained);
    db->views.retained = NULL;
    db->views.n = db->views.cap = 0;
}
