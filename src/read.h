/*
 * read.h: the read path (read.c): gets, has, ttl, and figures.
 *
 * Locks: kd_lock shared for a lookup, inside an epoch for the copy.
 */
#ifndef CY_READ_H
#define CY_READ_H

#include "files.h"
#include "ns.h"

/* Reads and verifies the value of key stored at loc (with that expiry):
 * into a new buffer *out when out is not NULL, else into buf (cap bytes,
 * CALYPSO_ETRUNC when short). Inside an epoch. CALYPSO_ENOTFOUND when
 * loc's file is not in the table (a location kept from an earlier epoch
 * whose file a merge removed: look the key up again). */
CY_INTERNAL int  cy_db_read_at(calypso *db, const void *key, size_t klen, const cy_loc *loc,
                               uint64_t expiry, void **out, void *buf, size_t cap,
                               size_t *vlen);
/* The same from file f (which the caller found). */
CY_INTERNAL int  cy_db_read_file(calypso *db, cy_file *f, const void *key, size_t klen,
                                 const cy_loc *loc, uint64_t expiry, void **out, void *buf,
                                 size_t cap, size_t *vlen);
/* The public read of key in ns into buf or a new buffer (calypso_get). */
CY_INTERNAL int  cy_db_read(calypso *db, cy_ns *ns, const void *key, size_t klen, void **out,
                            void *buf, size_t cap, size_t *vlen);
/* calypso_has and calypso_ttl on ns. */
CY_INTERNAL int  cy_db_has(calypso *db, cy_ns *ns, const void *key, size_t klen);
CY_INTERNAL int  cy_db_ttl(calypso *db, cy_ns *ns, const void *key, size_t klen,
                           uint64_t *expires_at_ms);

#endif /* CY_READ_H */
