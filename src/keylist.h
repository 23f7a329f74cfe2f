/*
 * keylist.h: key lists (keylist.c): keys copied back to back into one
 * buffer.
 *
 * Locks: none: a list belongs to its caller.
 */
#ifndef CY_KEYLIST_H
#define CY_KEYLIST_H

#include "internal.h"

/* Keys copied back to back into one buffer: key i = buf[off[i] .. off[i+1]). */
typedef struct cy_keylist {
    uint8_t  *buf;   size_t blen, bcap;
    size_t   *off;   size_t n, ncap;
} cy_keylist;
CY_INTERNAL int  cy_keylist_push(cy_keylist *l, const void *key, size_t klen);
CY_INTERNAL const uint8_t *cy_keylist_at(const cy_keylist *l, size_t i, size_t *klen);
/* Empties l, keeping its buffers. */
CY_INTERNAL void cy_keylist_clear(cy_keylist *l);
CY_INTERNAL void cy_keylist_free(cy_keylist *l);

#endif /* CY_KEYLIST_H */
