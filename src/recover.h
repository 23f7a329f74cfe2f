/*
 * recover.h: recovery (recover.c): open's replay of the datafiles.
 *
 * Locks: none: the handle is not yet shared.
 */
#ifndef CY_RECOVER_H
#define CY_RECOVER_H

#include "internal.h"

CY_INTERNAL int  cy_recover(calypso *db);

#endif /* CY_RECOVER_H */
