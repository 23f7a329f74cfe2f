/*
 * testhooks.h: the test layers over the syscall table and the allocator,
 * and the hooks tests drive them with. Module build only: internal.h
 * includes this header outside the amalgamation, and tools/amalgamate
 * leaves it out, so calypso.c and libcalypso.a know none of these names.
 *
 * The layers (src/os_fault.c, src/os_powerloss.c, src/alloc_fault.c) are
 * linked into the test binaries alone (TEST_HOOK_OBJ in the Makefile); each
 * installs itself before main through cy_os_install or cy_alloc_install,
 * which src/os.c and src/alloc.c define in the module build only. The table
 * a test binary runs is then: power loss over faults and counting over libc.
 */
#ifndef CY_TESTHOOKS_H
#define CY_TESTHOOKS_H

// >> installing a layer ----------------------------------------------------------
/* *below gets the table as it stands and layer takes its place. For
 * constructors: not thread-safe, call before any thread uses the table. */
CY_INTERNAL void cy_os_install(const cy_os_table *layer, cy_os_table *below);
CY_INTERNAL void cy_alloc_install(const cy_alloc_table *layer, cy_alloc_table *below);

/* Constructor priorities: lower runs first, so installs lower in the stack.
 * Counting and faults sit right over libc, power loss over them (its own
 * reads and writes of the disk are then counted and can fail, as the
 * engine's are). */
#define CY_TESTHOOK_FAULT     101
#define CY_TESTHOOK_POWERLOSS 102

// >> allocation (src/alloc_fault.c) ----------------------------------------------
/* cy_alloc_fail_at: the nth allocation from now (1 = the next one) fails, and with
 * `sticky` every one after it too. nth = 0 disarms. Returns how many
 * allocations were made since the last arming (to size countdown loops). */
CY_INTERNAL void     cy_alloc_fail_at(uint64_t nth, int sticky);
CY_INTERNAL uint64_t cy_alloc_count(void);

// >> the key directory's slab (src/art.c) ----------------------------------------
/* Spends the slab of t as far as tests need: the free nodes and the rest of
 * the node page are dropped, and so are the unused pages of the newest
 * chunk. The next node and the next fresh page then need a new chunk, an
 * allocation a test can fail. What is dropped goes with the slab. */
struct cy_art;
CY_INTERNAL void cy_art_slab_drain(struct cy_art *t);

/* The bytes a bulk load's filler has filled ahead so far (0 without one):
 * what cy_art_bulk(t, 0) would return, read while the load goes on. */
CY_INTERNAL uint64_t cy_art_bulk_filled(struct cy_art *t);

// >> syscalls: counting and faults (src/os_fault.c) ------------------------------
/* The kinds of call, for cy_os_fail_at and cy_os_count. */
enum cy_os_call {
    CY_OS_OPEN, CY_OS_CLOSE, CY_OS_PREAD, CY_OS_PWRITE, CY_OS_FSYNC,
    CY_OS_FDATASYNC, CY_OS_FTRUNCATE, CY_OS_RENAME, CY_OS_UNLINK, CY_OS_MKDIR,
    CY_OS_RMDIR, CY_OS_FSTAT, CY_OS_FLOCK, CY_OS_MMAP, CY_OS_READDIR,
    CY_OS_FALLOCATE, CY_OS_STAT, CY_OS_WRITEBACK,
    CY_OS__COUNT,
    CY_OS_ANY = CY_OS__COUNT   /* for cy_os_fail_at: any kind of call */
};

/* cy_os_fail_at: the nth call of kind `call` from now fails with
 * errno err (and every later one with sticky). nth = 0 disarms. With
 * `short_write`, a failing pwrite first writes half its bytes. err = EINTR
 * on a call whose wrapper retries EINTR (open, close, reads, writes, syncs,
 * ftruncate, flock, fallocate) is absorbed as a real one would be: the call
 * succeeds. */
CY_INTERNAL void     cy_os_fail_at(int call, uint64_t nth, int err, int sticky, int short_write);
/* The same for the calling thread's calls alone: the background thread's
 * (hints, syncs of sealed files) neither fail nor count towards nth. For a
 * test whose fault must meet one particular call of its own. */
CY_INTERNAL void     cy_os_fail_here(int call, uint64_t nth, int err, int sticky, int short_write);
CY_INTERNAL void     cy_os_fail_reset(void);
/* Calls of a kind (or CY_OS_ANY) since start or the last cy_os_count_reset. */
CY_INTERNAL uint64_t cy_os_count(int call);
/* The same, made by the calling thread alone (never reset): what one call
 * did, whatever the background thread does meanwhile. */
CY_INTERNAL uint64_t cy_os_count_here(int call);
CY_INTERNAL void     cy_os_count_reset(void);
/* cy_os_sync_scope: from now on, fsync and fdatasync count and fail only
 * on files whose name ends in `suffix` (".data": the datafiles); a sync
 * of any other file (WATERMARK, IDS, a hint, the directory) passes
 * straight through. NULL or "" restores every file. Set while no other
 * thread makes calls. */
CY_INTERNAL void     cy_os_sync_scope(const char *suffix);

// >> syscalls: power loss (src/os_powerloss.c) -----------------------------------
/* Power-loss simulation (in the manner of SQLite's test6.c and
 * LevelDB's FaultInjectionTestEnv). Between begin and end, the table
 * remembers for every file what it held at its last fsync/fdatasync, and for
 * every directory the creations, renames, removals and mkdirs made since its
 * last fsync (a rename counts for its target's directory). A crash then:
 *   - undoes, newest first, every name change whose directory was not
 *     synced since (a created file vanishes, a removed one comes back with
 *     its synced content, a rename goes back);
 *   - rewinds the content of every file changed since its last sync, as
 *     `mode` says: DROP (back to the synced bytes), ZERO (the unsynced
 *     length stays but reads as zeros), TORN (a random prefix of the
 *     unsynced bytes survives, the rest is cut), GARBLE (a random prefix
 *     survives, the rest up to the current length is random bytes), PAGES
 *     (any subset: each 4 KiB page changed since the sync, whether written
 *     with pwrite or through a mapping with cy_os_map_write, independently
 *     holds its new bytes or its synced ones, zeros past the synced
 *     length, as a kernel writing dirty pages back in any order leaves
 *     them; the file's length is the new one or the synced one);
 *   - freezes the table: every later call fails with EIO (close still
 *     releases its descriptor), as if the machine were off, so a handle
 *     open at the crash can be closed without touching the disk.
 * Files that existed at begin count as synced. crash_at arms the crash to
 * happen just before the nth table call from now (any kind, any thread;
 * close is not counted). A mode or'ed with CY_OS_PL_EXIT ends the process
 * with _exit(0) right after the crash, as a power cut would: the test runs
 * the engine in a child process and checks the directory from the parent.
 * end forgets everything and thaws the table. Tracking serializes the
 * table's calls; it is for tests only. */
enum { CY_OS_PL_DROP, CY_OS_PL_ZERO, CY_OS_PL_TORN, CY_OS_PL_GARBLE, CY_OS_PL_PAGES,
       CY_OS_PL__COUNT, CY_OS_PL_EXIT = 0x100 };
CY_INTERNAL void     cy_os_powerloss_begin(void);
CY_INTERNAL void     cy_os_powerloss_crash(int mode, uint64_t seed);
CY_INTERNAL void     cy_os_powerloss_crash_at(uint64_t nth, int mode, uint64_t seed);
/* 1 once the simulated crash has happened (the table is frozen). */
CY_INTERNAL int      cy_os_powerloss_crashed(void);
CY_INTERNAL void     cy_os_powerloss_end(void);

#endif
