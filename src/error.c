/*
 * error.c: error codes and their texts, the per-thread error detail behind
 * calypso_errmsg(), the version string, and the engine's clock.
 *
 * The detail lives in thread-local slots keyed by handle, so that two
 * threads failing on one handle do not overwrite each other's message and
 * no lock is needed. A thread keeps the last CY_ERR_SLOTS handles it failed
 * on; the NULL handle's slot holds the last failed calypso_open.
 */
#include "engine.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CY_ERR_SLOTS 4

typedef struct cy_err_slot {
    const calypso *db;
    int            used;
    char           msg[640];
} cy_err_slot;

static _Thread_local cy_err_slot cy_err_slots[CY_ERR_SLOTS];
static _Thread_local unsigned    cy_err_next;

const char *calypso_version(void)
{
    return CALYPSO_VERSION;
}

const char *calypso_strerror(int rc)
{
    switch (rc) {
#define CY_ERR_CASE(name, value, msg) case (value): return msg;
        CALYPSO_ERROR_MAP(CY_ERR_CASE)
#undef CY_ERR_CASE
    default: return "unknown error";
    }
}

static cy_err_slot *cy_err_slot_for(const calypso *db, int create)
{
    if (db && db->base) db = db->base;   /* a namespace handle's are its database's */
    for (unsigned i = 0; i < CY_ERR_SLOTS; i++)
        if (cy_err_slots[i].used && cy_err_slots[i].db == db) return &cy_err_slots[i];
    if (!create) return NULL;
    cy_err_slot *s = &cy_err_slots[cy_err_next++ % CY_ERR_SLOTS];
    s->db = db;
    s->used = 1;
    return s;
}

CY_INTERNAL int cy_err(calypso *db, int rc, const char *fmt, ...)
{
    cy_err_slot *s = cy_err_slot_for(db, 1);
    int n = snprintf(s->msg, sizeof s->msg, "%s", calypso_strerror(rc));
    if (fmt && n > 0 && (size_t)n < sizeof s->msg - 2) {
        s->msg[n++] = ':';
        s->msg[n++] = ' ';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(s->msg + n, sizeof s->msg - (size_t)n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

CY_INTERNAL int cy_err_errno(calypso *db, int neg_errno, const char *what, const char *file)
{
    int e = neg_errno < 0 ? -neg_errno : neg_errno;
    int rc = e == ENOMEM ? CALYPSO_ENOMEM
             : e == ENOSPC || e == EDQUOT ? CALYPSO_ENOSPC : CALYPSO_EIO;
    return cy_err(db, rc, "%s %s: %s (errno %d)", what, file ? file : "", strerror(e), e);
}

CY_INTERNAL void cy_err_forget(calypso *db)
{
    cy_err_slot *s = cy_err_slot_for(db, 0);
    if (s) s->used = 0;
}

CY_INTERNAL void cy_err_move(calypso *from, calypso *to)
{
    cy_err_slot *s = cy_err_slot_for(from, 0);
    if (!s) return;
    cy_err_slot *d = cy_err_slot_for(to, 1);
    if (d != s) {
        memcpy(d->msg, s->msg, sizeof d->msg);
        s->used = 0;
    }
}

const char *calypso_errmsg(calypso *db)
{
    cy_err_slot *s = cy_err_slot_for(db, 0);
    return s ? s->msg : "";
}

static int64_t cy_clock_offset_ms;

CY_INTERNAL uint64_t cy_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t off = __atomic_load_n(&cy_clock_offset_ms, __ATOMIC_RELAXED);
    return (uint64_t)((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + off);
}

CY_INTERNAL void cy_clock_shift(int64_t ms)
{
    __atomic_add_fetch(&cy_clock_offset_ms, ms, __ATOMIC_RELAXED);
}

CY_INTERNAL void cy_assert_fail(const char *what, const char *file, int line)
{
    fprintf(stderr, "calypso: internal invariant broken at %s:%d: %s\n", file, line, what);
    abort();
}

CY_INTERNAL void cy_note(calypso *db, const char *fmt, ...)
{
    size_t used = strlen(db->note);
    if (used && used + 2 < sizeof db->note) {
        memcpy(db->note + used, "; ", 3);
        used += 2;
    }
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(db->note + used, sizeof db->note - used, fmt, ap);
    va_end(ap);
}
