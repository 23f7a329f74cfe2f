/*
 * space.c: what calypso does when the disk fills up.
 *
 * In a log-structured store every change needs log space, deletes
 * included (a tombstone is a record), and a merge writes its output before
 * it removes its inputs. On a full disk, then, nothing could free space from
 * inside. So each read-write handle keeps a small reserve: the file RESERVE
 * in the database directory, allocated (fallocate) to cy_space_reserve_size
 * bytes at open.
 *
 * Policy:
 *   - The first write that meets ENOSPC (or EDQUOT) fails with
 *     CALYPSO_ENOSPC, writes nothing, and releases the reserve (RESERVE is
 *     cut to 0 bytes): the handle is then "low on space".
 *   - While low on space, puts fail at once with CALYPSO_ENOSPC, before
 *     writing anything, so that they cannot eat the released space.
 *     Deletes (delete, delete_all, sift, run_gc, the TTL sweeper) and merge
 *     go on and may use it; a delete or merge step that meets ENOSPC while
 *     the reserve is still held releases it and tries once more.
 *   - After a merge, and at most once a second from a refused put, the
 *     handle tries to take the reserve back; when that succeeds there is
 *     room again and puts are accepted.
 *   - A handle opened on a disk too full to take the reserve starts low on
 *     space. A read-only handle never creates, grows or cuts RESERVE.
 * The reserve is not data: it is never synced, and a crash that loses its
 * blocks only means the next open takes them again.
 *
 * Lock: space.mu guards the reserve's state, after write_mu; `low` is also
 * read without it (an atomic load on the put path).
 */
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <time.h>

/* The reserve is one datafile's worth (what one merge step writes at most),
 * within these bounds: enough for tens of thousands of tombstones at the
 * low end; at the high end 8 MiB, a quarter of a million tombstones, and
 * little beside the data (it is disk a user pays for: 32 MiB was 23% of a
 * merged 1M-key database of 100-byte values). */
#define CY_SPACE_MIN (64ull << 10)
#define CY_SPACE_MAX (8ull << 20)

/* A refused put tries to take the reserve back at most this often. */
#define CY_SPACE_RETRY_NS 1000000000ull

CY_INTERNAL uint64_t cy_space_reserve_size(const calypso *db)
{
    uint64_t want = db->opt.max_datafile_size;
    if (want < CY_SPACE_MIN) want = CY_SPACE_MIN;
    if (want > CY_SPACE_MAX) want = CY_SPACE_MAX;
    return want;
}

static uint64_t cy_space_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void cy_space_path(const calypso *db, char *out, size_t cap)
{
    snprintf(out, cap, "%s/RESERVE", db->path);
}

static void cy_space_set_low(calypso *db, int low)
{
    __atomic_store_n(&db->space.low, low, __ATOMIC_RELEASE);
}

/* Allocates RESERVE to its size. On failure it is cut back to nothing, so
 * that a partial allocation does not hold space the deletes need. Returns
 * OK or a negative errno. space.mu held. */
static int cy_space_take(calypso *db)
{
    char path[4200];
    cy_space_path(db, path, sizeof path);
    uint64_t want = cy_space_reserve_size(db), size = 0;
    int fd = cy_os_open(path, O_RDWR | O_CREAT, db->opt.file_mode);
    if (fd < 0) return fd;
    int rc = cy_os_fsize(fd, &size);
    if (!rc && size > want) rc = cy_os_ftruncate(fd, want);   /* options changed */
    if (!rc) rc = cy_os_fallocate(fd, 0, want);
    if (rc) cy_os_ftruncate(fd, 0);
    cy_os_close(fd);
    db->space.held = rc ? 0 : want;
    return rc;
}

/* Cuts RESERVE to 0 bytes; 1 if it held space. space.mu held. */
static int cy_space_release(calypso *db)
{
    char path[4200];
    cy_space_path(db, path, sizeof path);
    int held = db->space.held > 0;
    db->space.held = 0;
    int fd = cy_os_open(path, O_RDWR, 0);
    if (fd < 0) return held;
    int rc = cy_os_ftruncate(fd, 0);
    cy_os_close(fd);
    return held && rc == 0;
}

CY_INTERNAL int cy_space_open(calypso *db)
{
    pthread_mutex_lock(&db->space.mu);
    db->space.held = 0;
    db->space.last_try_ns = 0;
    int rc = cy_space_take(db);
    cy_space_set_low(db, rc != 0);
    if (rc) db->space.last_try_ns = cy_space_mono_ns();
    pthread_mutex_unlock(&db->space.mu);
    if (rc == -ENOSPC || rc == -EDQUOT || rc == 0) return CALYPSO_OK;
    char path[4200];
    cy_space_path(db, path, sizeof path);
    return cy_err_errno(db, rc, "allocate the space reserve", path);
}

CY_INTERNAL int cy_space_full(calypso *db)
{
    pthread_mutex_lock(&db->space.mu);
    int released = cy_space_release(db);
    cy_space_set_low(db, 1);
    /* The put that failed is likely followed by more: they wait a while
     * before trying to take the reserve back. */
    db->space.last_try_ns = cy_space_mono_ns();
    pthread_mutex_unlock(&db->space.mu);
    return released;
}

CY_INTERNAL int cy_space_retake(calypso *db)
{
    pthread_mutex_lock(&db->space.mu);
    int ok = db->space.held > 0 || cy_space_take(db) == 0;
    if (ok) cy_space_set_low(db, 0);
    pthread_mutex_unlock(&db->space.mu);
    return ok;
}

CY_INTERNAL int cy_space_put_check(calypso *db)
{
    if (CY_LIKELY(!cy_space_low(db))) return CALYPSO_OK;
    pthread_mutex_lock(&db->space.mu);
    uint64_t now = cy_space_mono_ns();
    int ok = 0;
    if (now - db->space.last_try_ns >= CY_SPACE_RETRY_NS) {
        db->space.last_try_ns = now;
        ok = cy_space_take(db) == 0;
        if (ok) cy_space_set_low(db, 0);
    }
    pthread_mutex_unlock(&db->space.mu);
    if (ok) return CALYPSO_OK;
    return cy_err(db, CALYPSO_ENOSPC, "the disk holding %s is full; puts are refused until "
                  "space is freed (delete keys, then calypso_merge)", db->path);
}
