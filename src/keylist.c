/*
 * keylist.c: key lists, the flat arrays of copied keys that carry keys out
 * from under kd_lock: a walk's batch, a cursor's window, the keys a sift
 * or a sweep deletes, the keys a merge moved.
 *
 * All keys share one buffer, back to back, and an array of offsets says
 * where each starts (key i is buf[off[i] .. off[i+1])), so a list of a
 * thousand keys costs two allocations, not a thousand. Clearing keeps both
 * buffers for the next use. A list is owned by whoever declared it and is
 * never shared between threads; it takes no lock.
 */
#include "engine.h"

#include <string.h>

CY_INTERNAL int cy_keylist_push(cy_keylist *l, const void *key, size_t klen)
{
    if (l->blen + klen > l->bcap) {
        size_t nc = l->bcap ? l->bcap * 2 : 4096;
        while (nc < l->blen + klen) nc *= 2;
        uint8_t *p = cy_realloc(l->buf, nc);
        if (!p) return CALYPSO_ENOMEM;
        l->buf = p;
        l->bcap = nc;
    }
    if (l->n + 2 > l->ncap) {
        size_t nc = l->ncap ? l->ncap * 2 : 64;
        size_t *p = cy_realloc(l->off, nc * sizeof *p);
        if (!p) return CALYPSO_ENOMEM;
        l->off = p;
        l->ncap = nc;
    }
    if (l->n == 0) l->off[0] = 0;
    memcpy(l->buf + l->blen, key, klen);
    l->blen += klen;
    l->off[++l->n] = l->blen;
    return CALYPSO_OK;
}

CY_INTERNAL const uint8_t *cy_keylist_at(const cy_keylist *l, size_t i, size_t *klen)
{
    *klen = l->off[i + 1] - l->off[i];
    return l->buf + l->off[i];
}

CY_INTERNAL void cy_keylist_clear(cy_keylist *l)
{
    l->n = 0;
    l->blen = 0;
}

CY_INTERNAL void cy_keylist_free(cy_keylist *l)
{
    cy_free(l->buf);
    cy_free(l->off);
    memset(l, 0, sizeof *l);
}
