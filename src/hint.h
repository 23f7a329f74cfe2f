/*
 * hint.h: hint files (hint.c): building, writing and loading them.
 *
 * Locks: maint_mu while one is written (bg.c, merge.c).
 */
#ifndef CY_HINT_H
#define CY_HINT_H

#include "internal.h"

/* A hint file being built in memory: entries, then the trailer. */
typedef struct cy_hint_buf { uint8_t *p; size_t len, cap; uint64_t count; } cy_hint_buf;
CY_INTERNAL int  cy_hint_add(cy_hint_buf *b, const cy_rec *r, const uint8_t *key, uint64_t off,
                             uint64_t size);
/* Puts the entries in key order, a key's records in file order (unless
 * they are already, or memory is short), and appends the trailer for a
 * datafile of data_size bytes. */
CY_INTERNAL int  cy_hint_finish(cy_hint_buf *b, uint64_t data_size);
/* Builds, from the datafile, and writes the hint of fid. */
CY_INTERNAL int  cy_hint_write(calypso *db, uint32_t fid);
/* The hint of the active file at a clean close (its data synced), in two
 * steps so that it is written on another thread while close frees the
 * rest: cy_hint_active_build reads the keydir (when the file holds puts
 * alone, the hint is a compacted one of its live records, built in key
 * order: from a walk of the keydir that frees it as it goes, so only
 * close may call this, or for a small file from reading the file; else
 * it is left to cy_hint_write, from the file). A compacted hint goes to a
 * writer thread (stream) a piece at a time as it is built, so that most
 * of it is written, and on its way to the disk, by the time the walk
 * ends. cy_hint_active_write finishes it: waits for that thread, or
 * writes the hint itself when no thread could be started (or from the
 * file), and frees what build left. */
typedef struct cy_hint_stream cy_hint_stream;
typedef struct cy_hint_active {
    cy_hint_buf     b;           /* entries not handed to the stream yet   */
    uint64_t        data_size;   /* bytes of the datafile it describes     */
    uint32_t        fid;
    int             from_file;
    cy_hint_stream *stream;      /* its writer thread, or NULL             */
} cy_hint_active;
CY_INTERNAL int  cy_hint_active_build(calypso *db, cy_hint_active *h);
CY_INTERNAL int  cy_hint_active_write(calypso *db, cy_hint_active *h);
/* Loads the hint of fid into the keydir when it is valid and describes at
 * most the file's `file_size` bytes; *covers receives how many (the caller
 * scans the rest) and *hint_bytes the hint file's size. CALYPSO_ECORRUPT if invalid: nothing applied then, and
 * the caller scans the whole datafile; but *covers = UINT64_MAX when the
 * hint's checksum held and its entries did not parse (some were applied):
 * then open must fail. */
CY_INTERNAL int  cy_hint_load(calypso *db, uint32_t fid, uint64_t file_size, uint64_t *covers,
                              uint64_t *hint_bytes);

#endif /* CY_HINT_H */
