/*
 * alloc.c: the one door through which the engine allocates memory.
 *
 * cy_malloc and friends call through cy_alloc_sys, a table that holds libc's
 * allocator. The table is the seam for tests: a test binary links
 * src/alloc_fault.c, which lays a countdown over it before main so that the
 * Nth allocation fails and tests can prove each caller turns allocation
 * failure into CALYPSO_ENOMEM with its state unchanged. Neither that layer nor its door (the end of this
 * file) is in calypso.c or the release libraries: there an allocation
 * counts nothing and touches no shared counter.
 */
#include "internal.h"

#include <stdlib.h>

static cy_alloc_table cy_alloc_sys = {
    .malloc  = malloc,
    .calloc  = calloc,
    .realloc = realloc,
};

/* A zero size asks for one byte: NULL then always means out of memory. */
CY_INTERNAL void *cy_malloc(size_t n)
{
    return cy_alloc_sys.malloc(n ? n : 1);
}

CY_INTERNAL void *cy_calloc(size_t count, size_t size)
{
    return cy_alloc_sys.calloc(count ? count : 1, size ? size : 1);
}

CY_INTERNAL void *cy_realloc(void *p, size_t n)
{
    return cy_alloc_sys.realloc(p, n ? n : 1);
}

CY_INTERNAL void cy_free(void *p)
{
    free(p);
}

#ifndef CY_AMALGAMATION
/* A test layer's door, as cy_os_install. tools/amalgamate drops this block:
 * calypso.c has no test layer. */
CY_INTERNAL void cy_alloc_install(const cy_alloc_table *layer, cy_alloc_table *below)
{
    *below = cy_alloc_sys;
    cy_alloc_sys = *layer;
}
#endif
