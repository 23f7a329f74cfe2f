/*
 * merge.h: merge (merge.c) and the recovery of an interrupted one at open.
 *
 * Locks: maint_mu for the whole merge; write_mu and kd_lock for each swap.
 */
#ifndef CY_MERGE_H
#define CY_MERGE_H

#include "internal.h"

/* The handle's merge state (db->merge). */
typedef struct cy_merge_state {
    int             running;      /* a merge runs (atomic)                   */
    uint64_t        count;        /* merges done (kd_lock exclusive)         */
    uint32_t       *skip_fids;    /* read-only, during open: datafiles a
                                     decided, unfinished merge left that the
                                     replay leaves out (merge.c)           */
    uint32_t        nskip;
} cy_merge_state;

/* At open, before replay: finishes a merge that committed, or discards one
 * that did not. A read-only handle changes nothing: for a decided step it
 * notes in db->merge.skip_fids the datafiles to leave out (its outputs while
 * every input is still there, else its inputs). */
CY_INTERNAL int  cy_merge_recover(calypso *db);
/* Test hook, called at the named steps of a merge: "started" (once,
 * inputs chosen), then for each of its steps "copying" (after the first
 * record is copied or dropped as expired), "copied" (outputs synced, no
 * COMMIT yet), "committed", "moved" (outputs renamed in), "swapped" (keydir
 * points at the outputs), "removed" (inputs unlinked) -- a step that
 * writes nothing has only "swapped" and "removed" -- and "done" (once,
 * after the last step). NULL disarms. */
CY_INTERNAL void cy_merge_set_hook(void (*fn)(const char *point));
/* 1 when dead bytes pass the auto-merge trigger. */
CY_INTERNAL int  cy_merge_due(calypso *db);

#endif /* CY_MERGE_H */
