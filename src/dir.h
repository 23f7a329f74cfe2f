/*
 * dir.h: the on-disk directory (dir.c): paths, LOCK, META, listing and
 * writing whole files.
 *
 * Locks: the LOCK file's byte locks (see dir.c); no mutex.
 */
#ifndef CY_DIR_H
#define CY_DIR_H

#include "internal.h"

#define CY_FORMAT_VERSION 1
CY_INTERNAL void cy_dir_data_path(const calypso *db, uint32_t fid, char *out, size_t cap);
CY_INTERNAL void cy_dir_hint_path(const calypso *db, uint32_t fid, char *out, size_t cap);
/* Makes the creation of directory `path` durable: fsync of its parent. */
CY_INTERNAL int  cy_dir_sync_parent(const char *path);
/* mkdir -p: creates path and every missing directory above it (mode), each
 * made durable by an fsync of its parent. A component that exists and is
 * not a directory: CALYPSO_EINVAL naming it. */
CY_INTERNAL int  cy_dir_make_all(calypso *db, const char *path, uint32_t mode);
/* Takes LOCK as a writer (its flock, byte 0 and byte 1 shared) or as a
 * reader (byte 1 shared only): see dir.c. CALYPSO_ELOCKED when refused. */
CY_INTERNAL int  cy_dir_lock(calypso *db);
CY_INTERNAL void cy_dir_unlock(calypso *db);
/* 1 when a writer holds the database open (asked of LOCK; takes nothing). */
CY_INTERNAL int  cy_dir_writer_live(calypso *db);
/* The file set lock (LOCK byte 2): exclusive for a writer about to rename
 * or remove datafiles, shared for a reader listing and replaying them.
 * Waits (at most 30 s: CALYPSO_ELOCKED). No-op without a LOCK file. */
CY_INTERNAL int  cy_dir_files_lock(calypso *db);
CY_INTERNAL void cy_dir_files_unlock(calypso *db);
CY_INTERNAL int  cy_dir_meta(calypso *db, int fresh);
/* Lists datafile ids (sorted) and which have hint files; removes leftover
 * temporary files on a writable handle. */
CY_INTERNAL int  cy_dir_scan(calypso *db, uint32_t **fids, uint32_t *n,
                             uint8_t **has_hint);
/* Writes path atomically: tmp file, fdatasync, rename, directory fsync. */
CY_INTERNAL int  cy_dir_write_file(calypso *db, const char *dir, const char *name,
                                   const void *data, size_t len);

#endif /* CY_DIR_H */
