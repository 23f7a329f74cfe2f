/*
 * alloc_fault.c: the allocation countdown, a test layer over the allocator
 * table of src/alloc.c. Test builds only.
 *
 * cy_alloc_fail_at(nth, sticky) makes the nth allocation from now fail (and
 * with sticky every later one), so that tests prove each caller turns
 * allocation failure into CALYPSO_ENOMEM with its state unchanged;
 * cy_alloc_count tells how many allocations were made since the last
 * arming. Every cy_malloc, cy_calloc and cy_realloc counts: the counter is a
 * process-wide atomic, shared by every thread, which is why it lives here
 * and not in alloc.c: a release build does not pay for it.
 *
 * The file sits in src/ beside alloc.c rather than in tests/ because it is
 * part of the allocator's module (it reaches the table through
 * cy_alloc_install, declared for the module build only) and is compiled by
 * the modules' rules for every tier (asan, tsan, valgrind, fuzz). The
 * amalgamation's file list (AMALG_SRC) leaves it out; the test binaries link
 * it (TEST_HOOK_OBJ), and a constructor installs the layer before main.
 */
#include "internal.h"

static cy_alloc_table cy_alloc_below;  /* libc's allocator            */
static uint64_t cy_alloc_fail_nth;     /* 0 = disarmed                */
static int      cy_alloc_fail_sticky;
static uint64_t cy_alloc_made;         /* allocations since arming    */

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

static void *cy_alloc_fault_malloc(size_t n)
{
    return cy_alloc_should_fail() ? NULL : cy_alloc_below.malloc(n);
}

static void *cy_alloc_fault_calloc(size_t count, size_t size)
{
    return cy_alloc_should_fail() ? NULL : cy_alloc_below.calloc(count, size);
}

static void *cy_alloc_fault_realloc(void *p, size_t n)
{
    return cy_alloc_should_fail() ? NULL : cy_alloc_below.realloc(p, n);
}

__attribute__((constructor(CY_TESTHOOK_FAULT)))
static void cy_alloc_fault_install(void)
{
    static const cy_alloc_table layer = {
        .malloc  = cy_alloc_fault_malloc,
        .calloc  = cy_alloc_fault_calloc,
        .realloc = cy_alloc_fault_realloc,
    };
    cy_alloc_install(&layer, &cy_alloc_below);
}
