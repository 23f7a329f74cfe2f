/*
 * bg.h: the background thread (bg.c).
 *
 * Locks: bg_wake.mu for its sleep and wake-ups (cy_wake).
 */
#ifndef CY_BG_H
#define CY_BG_H

#include "internal.h"

CY_INTERNAL int  cy_bg_start(calypso *db);
CY_INTERNAL void cy_bg_stop(calypso *db);

#endif /* CY_BG_H */
