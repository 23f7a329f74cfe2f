/*
 * error.h: errors (error.c): the detail of an error per thread and handle,
 * the note open reports, and the clock.
 */
#ifndef CY_ERROR_H
#define CY_ERROR_H

#include "internal.h"

/* Records the detail of an error for this thread and db and returns rc. */
CY_INTERNAL int cy_err(calypso *db, int rc, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* errno (positive or negative) to a code: ENOMEM -> CALYPSO_ENOMEM, ENOSPC
 * and EDQUOT -> CALYPSO_ENOSPC, anything else CALYPSO_EIO. */
CY_INTERNAL int cy_err_errno(calypso *db, int neg_errno, const char *what, const char *file);
CY_INTERNAL void cy_err_forget(calypso *db);
/* Appends to the note that open reports through calypso_errmsg (what
 * recovery cut or auto_recovery dropped). */
CY_INTERNAL void cy_note(calypso *db, const char *fmt, ...)
#if defined(__GNUC__) || defined(__clang__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Moves this thread's detail for `from` to `to` (open failures: to NULL). */
CY_INTERNAL void cy_err_move(calypso *from, calypso *to);
/* Milliseconds since the epoch. Tests move time with cy_clock_shift. */
CY_INTERNAL uint64_t cy_now_ms(void);
CY_INTERNAL void     cy_clock_shift(int64_t ms);

#endif /* CY_ERROR_H */
