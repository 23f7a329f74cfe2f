/*
 * alloc.c: the one door through which the engine allocates memory.
 *
 * Routing every allocation through cy_malloc and friends gives two things:
 * a place for allocator hooks, and a countdown that makes the Nth allocation
 * fail so that tests can prove each caller turns allocation failure into
 * CALYPSO_ENOMEM with its state unchanged. The countdown is process-wide and
 * atomic; it costs one relaxed load per allocation when disarmed.
 */
#include "internal.h"

#include <stdlib.h>

static uint64_t cy_alloc_fail_nth;   /* 0 = disarmed */
static int      cy_alloc_fail_sticky;
static uint64_t cy_alloc_made;       /* allocations since the last arming */

static int cy_alloc_should_fail(void)
{
    uint64_t n = __atomic_add_fetch(&cy_alloc_made, 1, __ATOMIC_RELAXED);
    uint64_t nth = __atomic_load_n(&cy_alloc_fail_nth, __ATOMIC_RELAXED);
    if (CY_LIKELY(nth == 0)) return 0;
    return n == nth || (n > nth && __atomic_load_n(&cy_alloc_fail_sticky, __ATOMIC_RELAXED));
}

CY_INTERNAL void cy_alloc_fail_at(uint64_t nth, int sticky)
{
    __atomic_store_n(&cy_alloc_made, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_alloc_fail_sticky, sticky, __ATOMIC_RELAXED);
    __atomic_store_n(&cy_alloc_fail_nth, nth, __ATOMIC_RELAXED);
}

CY_INTERNAL uint64_t cy_alloc_count(void)
{
    return __atomic_load_n(&cy_alloc_made, __ATOMIC_RELAXED);
}

CY_INTERNAL void *cy_malloc(size_t n)
{
    if (cy_alloc_should_fail()) return NULL;
    return malloc(n ? n : 1);
}

CY_INTERNAL void *cy_calloc(size_t count, size_t size)
{
    if (cy_alloc_should_fail()) return NULL;
    return calloc(count ? count : 1, size ? size : 1);
}

CY_INTERNAL void *cy_realloc(void *p, size_t n)
{
    if (cy_alloc_should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

CY_INTERNAL void cy_free(void *p)
{
    free(p);
}
