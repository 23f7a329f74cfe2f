/*
 * ns.h: namespaces (ns.c): one namespace's key directory and TTL trees
 * (cy_ns), the catalog of named ones, and the calls on namespace handles.
 *
 * Locks: kd_lock over every namespace's trees and the catalog; write_mu
 * for every catalog change; exp_mu for exp_count under a shared kd_lock
 * (ttl.c).
 */
#ifndef CY_NS_H
#define CY_NS_H

#include "internal.h"

/* One namespace's key directory: the default namespace's is embedded in
 * the database handle (catalog.ns0), a named one's is allocated and listed in the
 * catalog (cat). Its trees and counts are under kd_lock like the handle's
 * were; exp_count also under exp_mu for a shared holder (ttl.c). */
typedef struct cy_ns {
    uint32_t id;          /* 0: the default namespace                        */
    int      dropped;     /* its drop was applied (write_mu and kd_lock
                             exclusive): no keys, refuses writes             */
    uint32_t refs;        /* handles and workers holding it (kd_lock
                             exclusive): a dropped one is freed at 0        */
    cy_loc   created;     /* its create record, for merge and dead bytes   */
    cy_art   keydir;
    cy_art   ttl_by_key;  /* key -> expiry (in loc.off)                      */
    cy_art   ttl_by_time; /* be64(expiry) || key -> nothing                  */
    cy_art   history;     /* views (view.c): key -> chain of earlier states */
    uint64_t live_bytes;  /* bytes of the records its keydir points at       */
    uint64_t exp_asof;    /* TTL entries expiring at or before this          */
    uint64_t exp_count;   /* ... number exp_count                            */
    uint32_t nlen;
    uint8_t  name[CALYPSO_NS_MAX_NAME];
} cy_ns;

/* The handle's namespaces (db->catalog): the default one and the catalog
 * of named ones. kd_lock, and write_mu for every change. */
typedef struct cy_catalog {
    cy_ns            ns0;         /* the default namespace                   */
    cy_ns          **cat;         /* named namespaces, by id (kd_lock)       */
    uint32_t         n, cap;
} cy_catalog;
CY_INTERNAL void   cy_ns_init(cy_ns *ns, uint32_t id);
/* Frees a namespace's trees (not the struct). */
CY_INTERNAL void   cy_ns_clear(cy_ns *ns);
/* The namespace of id (0: the default), or NULL when not in the catalog.
 * kd_lock held (or write_mu, which every catalog change holds too). */
CY_INTERNAL cy_ns *cy_ns_find(calypso *db, uint32_t id);
/* Applies a catalog record (CY_REC_NS_CREATE or _DROP) at (fid, off,
 * size), as replay and the write path do. kd_lock exclusive. */
CY_INTERNAL int    cy_ns_apply(calypso *db, int type, uint32_t id, const uint8_t *name,
                               size_t nlen, uint32_t fid, uint64_t off, uint32_t size);
/* Frees the catalog (close). */
CY_INTERNAL void   cy_ns_close_all(calypso *db);
/* After replay: raises the namespace id limit past every id seen. */
CY_INTERNAL void   cy_ns_recovered(calypso *db);
/* Pins ns against being freed once dropped (kd_lock not held); unpin
 * frees a dropped one at the last reference. */
CY_INTERNAL void   cy_ns_pin(calypso *db, cy_ns *ns);
CY_INTERNAL void   cy_ns_unpin(calypso *db, cy_ns *ns);
/* Refuses a write to a dropped namespace (write_mu held). */
CY_INTERNAL int    cy_ns_check_live(calypso *db, const cy_ns *ns);
/* Runs fn(db, ns, ctx) for every namespace, the default first, each
 * pinned while fn runs (no lock held). Stops at fn's first non-zero. */
CY_INTERNAL int    cy_ns_each(calypso *db, int (*fn)(calypso *, cy_ns *, void *), void *ctx);
/* Closing a namespace handle (db.c's calypso_close). */
CY_INTERNAL int    cy_ns_close_handle(calypso *h);

#endif /* CY_NS_H */
