/*
 * getmany.c: calypso_get_many, many point reads in one call.
 *
 * A get is a few dependent cache misses (tree levels, then the record in
 * the page cache): each waits for the one before it. A single get cannot
 * overlap them; a group of keys can. Keys go in groups of
 * CY_GET_MANY_GROUP: the group's tree lookups descend in lockstep under one
 * hold of the keydir lock (cy_art_search_many), then every record the group
 * found is prefetched before the first is read, so the misses of different
 * keys are in flight together. Each key's answer is what calypso_get would
 * give: the same verification, the same errors.
 */
#include "engine.h"

#define CY_GET_MANY_GROUP 16

/* Prefetches the mapped bytes of the record at loc, if its file is mapped. */
static void cy_get_many_prefetch(cy_file *f, const cy_loc *loc)
{
    const uint8_t *p = cy_files_mapped(f, loc->off, loc->size);
    if (!p) return;
    for (uint32_t at = 0; at < loc->size; at += 64) __builtin_prefetch(p + at);
    __builtin_prefetch(p + loc->size - 1);
}

/* One group: keys[at .. at+m). Returns the first error that is not a
 * key's plain absence. */
static int cy_get_many_group(calypso *db, cy_ns *ns, size_t at, size_t m,
                             const void *const *keys, const size_t *klens, void **vals,
                             size_t *vlens, int *rcs)
{
    const uint8_t *k[CY_GET_MANY_GROUP];
    size_t kl[CY_GET_MANY_GROUP], idx[CY_GET_MANY_GROUP], cnt = 0;
    int err = CALYPSO_OK;
    for (size_t j = 0; j < m; j++) {
        size_t i = at + j;
        int rc = cy_db_check_key(db, keys[i], klens[i]);
        if (rc) {
            rcs[i] = rc;
            if (!err) err = rc;
            continue;
        }
        k[cnt] = keys[i];
        kl[cnt] = klens[i];
        idx[cnt++] = i;
    }
    cy_loc *found[CY_GET_MANY_GROUP], loc[CY_GET_MANY_GROUP];
    uint64_t expiry[CY_GET_MANY_GROUP];
    cy_file *f[CY_GET_MANY_GROUP];
    uint32_t ep = cy_epoch_enter(&db->epoch);
    cy_rdlock(&db->kd_lock);
    cy_art_search_many(&ns->keydir, cnt, k, kl, found);
    for (size_t j = 0; j < cnt; j++) {
        if (!found[j]) continue;
        loc[j] = *found[j];
        expiry[j] = loc[j].fid & CY_LOC_TTL ? cy_ttl_get(ns, k[j], kl[j]) : 0;
    }
    cy_unlock(&db->kd_lock);
    uint64_t now = cy_now_ms();
    for (size_t j = 0; j < cnt; j++) {
        if (!found[j]) continue;
        f[j] = cy_files_find(db, loc[j].fid & CY_LOC_FIDMASK);
        CY_ASSERT(f[j] != NULL);   /* the keydir named a file not in the table */
        cy_get_many_prefetch(f[j], &loc[j]);
    }
    for (size_t j = 0; j < cnt; j++) {
        size_t i = idx[j];
        int rc;
        if (!found[j]) rc = CALYPSO_ENOTFOUND;
        else if (expiry[j] && expiry[j] <= now) rc = CALYPSO_EEXPIRED;
        else rc = cy_db_read_file(db, f[j], k[j], kl[j], &loc[j], expiry[j], &vals[i], NULL, 0,
                                  &vlens[i]);
        rcs[i] = rc;
        if (rc && rc != CALYPSO_ENOTFOUND && rc != CALYPSO_EEXPIRED && !err) err = rc;
    }
    cy_epoch_leave(&db->epoch, ep);
    return err;
}

int calypso_get_many(calypso *h, size_t n, const void *const *keys, const size_t *klens,
                     void **vals, size_t *vlens, int *rcs)
{
    calypso *db = cy_base(h);
    cy_ns *ns = cy_ns_of(h);
    int rc = cy_db_usable(db);
    if (rc) return rc;
    if (n && (!keys || !klens || !vals || !vlens || !rcs))
        return cy_err(db, CALYPSO_EINVAL, "calypso_get_many needs keys, klens, vals, vlens "
                      "and rcs");
    for (size_t i = 0; i < n; i++) {
        vals[i] = NULL;
        vlens[i] = 0;
    }
    int err = CALYPSO_OK;
    for (size_t at = 0; at < n; at += CY_GET_MANY_GROUP) {
        size_t m = n - at < CY_GET_MANY_GROUP ? n - at : CY_GET_MANY_GROUP;
        rc = cy_get_many_group(db, ns, at, m, keys, klens, vals, vlens, rcs);
        if (rc && !err) err = rc;
    }
    return err;
}
