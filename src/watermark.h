/*
 * watermark.h: the synced-up-to watermark (watermark.c).
 *
 * Locks: sync.mu for the values it persists (commit.c stores them).
 */
#ifndef CY_WATERMARK_H
#define CY_WATERMARK_H

#include "internal.h"

typedef struct cy_wm cy_wm;
#define CY_WM_INTERVAL_MS 250u           /* persisted at most this often   */
#define CY_WM_NONE UINT64_MAX            /* no WATERMARK: the older rule   */
#define CY_WM_ALL  (UINT64_MAX - 1)      /* the whole file was synced      */
/* At open, before replay: reads WATERMARK (absent: the older rule). */
CY_INTERNAL int      cy_wm_load(calypso *db);
/* Bytes of the newest regular datafile fid a sync is known to have covered. */
CY_INTERNAL uint64_t cy_wm_limit(calypso *db, uint32_t fid);
/* After replay: CALYPSO_ECORRUPT when the newest file (fid, size) lacks
 * bytes the watermark says were synced. */
CY_INTERNAL int      cy_wm_check(calypso *db, uint32_t fid, uint64_t size);
/* Writable open, after replay: writes WATERMARK if missing or now too high. */
CY_INTERNAL int      cy_wm_open(calypso *db, uint32_t fid, uint64_t size);
/* Writes (synced_fid, synced_off) if it moved; `limited`: not more often
 * than every CY_WM_INTERVAL_MS (the background thread). */
CY_INTERNAL void     cy_wm_persist(calypso *db, int limited);
/* At close, after the final sync: persists, then frees. */
CY_INTERNAL void     cy_wm_close(calypso *db);
/* Test hook: the interval of limited persists. */
CY_INTERNAL void     cy_wm_set_interval(uint32_t ms);

#endif /* CY_WATERMARK_H */
