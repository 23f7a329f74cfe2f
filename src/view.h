/*
 * view.h: snapshot views (view.c): the history of keydir changes while
 * views are open, and the files merges removed meanwhile.
 *
 * Locks: kd_lock for the history and commit_seq; views.mu for the retained
 * files.
 */
#ifndef CY_VIEW_H
#define CY_VIEW_H

#include "files.h"
#include "ns.h"

#include <pthread.h>

/* The handle's view state (db->views). */
typedef struct cy_views {
    uint64_t         commit_seq;  /* changes applied to the keydir (kd_lock)  */
    uint32_t         open;        /* views open (kd_lock)                     */
    uint64_t         lost;        /* a change not noted for views: its seq
                                     (kd_lock)                                */
    pthread_mutex_t  mu;          /* the retained files                       */
    cy_file        **retained;    /* files merges removed while views were
                                     open (mu)                                */
    uint32_t         n, cap;
} cy_views;

/* What a view's reads say once a change could not be noted for it (memory
 * ran out) or a merge could not keep a file it reads (views.lost). */
#define CY_VIEW_LOST_MSG "this view's snapshot could not be kept (memory ran out while " \
                         "a write or a merge noted it): end the view and begin another"

/* Numbers a keydir change and, while views are open, notes the key's state
 * before it. kd_lock exclusive, before the change. */
CY_INTERNAL void cy_view_note(calypso *db, cy_ns *ns, const void *key, size_t klen);
/* The state of key as a view of seq view_seq sees it: 1 with its location
 * and expiry, or 0 absent. kd_lock held. */
CY_INTERNAL int  cy_view_state(calypso *db, cy_ns *ns, uint64_t view_seq, const void *key,
                               size_t klen, cy_loc *loc, uint64_t *expiry);
/* Frees one namespace's history (its chains). kd_lock exclusive. */
CY_INTERNAL void cy_view_free_history(cy_art *history);
CY_INTERNAL int  cy_view_open(calypso *db, uint64_t *seq);
CY_INTERNAL void cy_view_close(calypso *db);
/* Keeps a file a merge removed (mapped) until the views close. views.mu
 * held, from the file's leaving the table on. */
CY_INTERNAL int  cy_view_retain(calypso *db, cy_file *f);
/* The file fid from the table or the retained ones. Inside an epoch. */
CY_INTERNAL cy_file *cy_view_file(calypso *db, uint32_t fid);
/* At close: releases the history and the retained files. */
CY_INTERNAL void cy_view_release_all(calypso *db);

#endif /* CY_VIEW_H */
