/*
 * write.h: the write path (write.c): deleting many keys and the collector
 * of expired ones.
 *
 * Locks: write_mu for one batch at a time.
 */
#ifndef CY_WRITE_H
#define CY_WRITE_H

#include "keylist.h"
#include "ns.h"

/* Deletes, in namespace ns, the keys of `chosen`, then those of `expired`
 * that are still expired when their batch commits (either list may be
 * NULL), skipping absent ones, in as few batches as fit a datafile each:
 * one atomic batch when all their tombstones fit. write_mu is taken for
 * one batch at a time. */
CY_INTERNAL int  cy_db_delete_keys(calypso *db, cy_ns *ns, const cy_keylist *chosen,
                                   const cy_keylist *expired);
/* calypso_run_gc on one namespace. */
CY_INTERNAL int  cy_db_run_gc(calypso *db, cy_ns *ns);

#endif /* CY_WRITE_H */
