/*
 * alloc.c: the one door through which the engine allocates memory, and the
 * application's allocator behind it (calypso_config_allocator).
 *
 * cy_malloc and friends call through cy_alloc_sys, a table that holds the
 * process's allocator: libc's, or the three functions an application
 * configured (calloc is then their malloc plus memset; cy_free calls their
 * free). Every block calypso allocates, the buffers it hands to the caller
 * included (calypso_get's values, freed by calypso_free), comes from here,
 * so one configured allocator sees all of calypso's heap.
 *
 * The allocator may change only while no handle is open: a block allocated
 * by one allocator must never reach another's free. cy_alloc_hold (every
 * calypso_open, before its first allocation) and cy_alloc_release (the last
 * step of calypso_close, or of a failed open) count the open handles under
 * a mutex, which calypso_config_allocator takes too: it refuses while the
 * count is not zero, and the mutex orders its stores to the table before
 * the table's first use by any open. A plain count under a mutex rather
 * than an atomic: the allocator in calypso.c does no atomic
 * read-modify-write (check-release), and an open or close is rare.
 *
 * The table is also the seam for tests: a test binary links
 * src/alloc_fault.c, which lays a countdown over it before main so that the
 * Nth allocation fails and tests can prove each caller turns allocation
 * failure into CALYPSO_ENOMEM with its state unchanged. The layer calls down
 * into the configured allocator (cy_alloc_base), so a test can run both at
 * once. Neither that layer nor its door (the end of this file) is in
 * calypso.c or the release libraries: there an allocation counts nothing
 * and touches no shared counter.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* The configured allocator (libc's until calypso_config_allocator). */
static cy_alloc_table cy_alloc_base = {
    .malloc  = malloc,
    .calloc  = calloc,
    .realloc = realloc,
};
static void (*cy_alloc_free_fn)(void *) = free;

/* What cy_malloc calls: cy_alloc_base, or a test layer over it. */
static cy_alloc_table cy_alloc_sys = {
    .malloc  = malloc,
    .calloc  = calloc,
    .realloc = realloc,
};
static int cy_alloc_layered;           /* a test layer owns cy_alloc_sys */

static pthread_mutex_t cy_alloc_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t cy_alloc_handles;      /* open handles, under cy_alloc_mu */

/* A zero size asks for one byte: NULL then always means out of memory. */
CY_INTERNAL void *cy_malloc(size_t n)
{
    return cy_alloc_sys.malloc(n ? n : 1);
}

CY_INTERNAL void *cy_calloc(size_t count, size_t size)
{
    return cy_alloc_sys.calloc(count ? count : 1, size ? size : 1);
}

/* realloc of NULL is a malloc: a configured realloc_fn never sees NULL. */
CY_INTERNAL void *cy_realloc(void *p, size_t n)
{
    if (!p) return cy_malloc(n);
    return cy_alloc_sys.realloc(p, n ? n : 1);
}

CY_INTERNAL void cy_free(void *p)
{
    if (p) cy_alloc_free_fn(p);
}

/* An application's allocator has no calloc: its malloc, then zeroes. */
static void *cy_alloc_emulated_calloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size) return NULL;
    void *p = cy_alloc_base.malloc(count * size);
    if (p) memset(p, 0, count * size);
    return p;
}

CY_INTERNAL void cy_alloc_hold(void)
{
    pthread_mutex_lock(&cy_alloc_mu);
    cy_alloc_handles++;
    pthread_mutex_unlock(&cy_alloc_mu);
}

CY_INTERNAL void cy_alloc_release(void)
{
    pthread_mutex_lock(&cy_alloc_mu);
    CY_ASSERT(cy_alloc_handles > 0);
    cy_alloc_handles--;
    pthread_mutex_unlock(&cy_alloc_mu);
}

int calypso_config_allocator(void *(*malloc_fn)(size_t), void *(*realloc_fn)(void *, size_t),
                             void (*free_fn)(void *))
{
    int all = malloc_fn && realloc_fn && free_fn;
    int none = !malloc_fn && !realloc_fn && !free_fn;
    if (!all && !none) return CALYPSO_EINVAL;
    pthread_mutex_lock(&cy_alloc_mu);
    if (cy_alloc_handles) {
        pthread_mutex_unlock(&cy_alloc_mu);
        return CALYPSO_EINVAL;
    }
    if (all) {
        cy_alloc_base.malloc = malloc_fn;
        cy_alloc_base.calloc = cy_alloc_emulated_calloc;
        cy_alloc_base.realloc = realloc_fn;
        cy_alloc_free_fn = free_fn;
    } else {
        cy_alloc_base.malloc = malloc;
        cy_alloc_base.calloc = calloc;
        cy_alloc_base.realloc = realloc;
        cy_alloc_free_fn = free;
    }
    if (!cy_alloc_layered) cy_alloc_sys = cy_alloc_base;
    pthread_mutex_unlock(&cy_alloc_mu);
    return CALYPSO_OK;
}

/* [from, to): the whole pages inside [p, p + len). 0 when there are none. */
static int cy_alloc_pages(void *p, size_t len, uintptr_t *from, uintptr_t *to)
{
    static uintptr_t page;   /* the same value whoever sets it */
    if (!__atomic_load_n(&page, __ATOMIC_RELAXED))
        __atomic_store_n(&page, (uintptr_t)sysconf(_SC_PAGESIZE), __ATOMIC_RELAXED);
    uintptr_t ps = __atomic_load_n(&page, __ATOMIC_RELAXED);
    *from = ((uintptr_t)p + ps - 1) & ~(ps - 1);
    *to = ((uintptr_t)p + len) & ~(ps - 1);
    return *to > *from;
}

CY_INTERNAL void cy_alloc_prefault(void *p, size_t len)
{
    uintptr_t from, to;
    if (!cy_alloc_pages(p, len, &from, &to)) return;
#ifdef MADV_POPULATE_WRITE
    madvise((void *)from, to - from, MADV_POPULATE_WRITE);
#endif
}

CY_INTERNAL void cy_alloc_hugepages(void *p, size_t len)
{
#ifdef MADV_HUGEPAGE
    const uintptr_t hp = (uintptr_t)2 << 20;
    uintptr_t from = ((uintptr_t)p + hp - 1) & ~(hp - 1), to = ((uintptr_t)p + len) & ~(hp - 1);
    if (to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)p;
    (void)len;
#endif
}

#ifndef CY_AMALGAMATION
/* A test layer's door, as cy_os_install. tools/amalgamate drops this block:
 * calypso.c has no test layer. The layer gets entries that call whatever
 * allocator is configured at the time of each call, not the one configured
 * when it was installed (before main). */
static void *cy_alloc_base_malloc(size_t n) { return cy_alloc_base.malloc(n); }
static void *cy_alloc_base_calloc(size_t c, size_t s) { return cy_alloc_base.calloc(c, s); }
static void *cy_alloc_base_realloc(void *p, size_t n) { return cy_alloc_base.realloc(p, n); }

CY_INTERNAL void cy_alloc_install(const cy_alloc_table *layer, cy_alloc_table *below)
{
    if (cy_alloc_layered) {
        *below = cy_alloc_sys;
    } else {
        below->malloc = cy_alloc_base_malloc;
        below->calloc = cy_alloc_base_calloc;
        below->realloc = cy_alloc_base_realloc;
    }
    cy_alloc_sys = *layer;
    cy_alloc_layered = 1;
}
#endif
