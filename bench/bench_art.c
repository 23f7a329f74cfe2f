/*
 * bench_art.c: the key directory's speed and memory, against the obvious
 * alternative. For two key sets of BENCH_N keys (default 10,000,000):
 * random16 (16 random bytes) and sequential ("user:%012d"), it times
 * insert, search in shuffled order and a full ordered iteration of the ART
 * (src/art.c), then the same on an open-addressing hash table written here
 * (linear probing, XXH3, 32-byte slots pointing at malloc'd key copies, the
 * 16-byte value inline). Both count their bytes the same way: every size
 * passed to the allocator, key copies included. One line per structure,
 * key set and operation, in the manner of LevelDB's db_bench; a header
 * names the machine and build, and warns when the build is not optimized.
 * The hash table has no order, so its "iterate" is an unordered scan: a
 * floor, not a peer, for the ART's ordered walk. BENCH_SETS=random16 or
 * BENCH_SETS=sequential runs one key set only.
 */
#define _GNU_SOURCE 1
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

// >> helpers -----------------------------------------------------------------

static double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t bench_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void *bench_xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "bench_art: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    return p;
}

static cy_loc bench_loc(size_t i)
{
    cy_loc l = { (uint64_t)i * 64u, (uint32_t)(i & 1023u), 64u };
    return l;
}

static void bench_line(const char *what, const char *set, const char *op, double secs,
                       size_t n, double bytes_per_key)
{
    printf("%-5s %-11s %-8s %8.1f ns/op", what, set, op, secs * 1e9 / (double)n);
    if (bytes_per_key > 0) printf("   %6.1f bytes/key", bytes_per_key);
    printf("\n");
    fflush(stdout);
}

static void bench_header(size_t n)
{
    char model[256] = "unknown";
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            char *colon = strchr(line, ':');
            if (strncmp(line, "model name", 10) == 0 && colon) {
                snprintf(model, sizeof model, "%s", colon + 2);
                model[strcspn(model, "\n")] = 0;
                break;
            }
        }
        fclose(f);
    }
    printf("bench_art: %zu keys per set\n", n);
    printf("machine:   %ld CPUs, %s\n", sysconf(_SC_NPROCESSORS_ONLN), model);
#if defined(__VERSION__)
    printf("compiler:  %s\n", __VERSION__);
#endif
    printf("build:     %s%s%s\n",
#if defined(__OPTIMIZE__)
           "optimized",
#else
           "NOT optimized",
#endif
#if defined(__SSE2__)
           ", SSE2 Node16 search",
#else
           ", portable Node16 search",
#endif
#if defined(__SANITIZE_ADDRESS__)
           ", AddressSanitizer"
#else
           ""
#endif
    );
#if !defined(__OPTIMIZE__)
    printf("WARNING:   built without optimization; timings are meaningless\n");
#endif
#if defined(__SANITIZE_ADDRESS__)
    printf("WARNING:   built with a sanitizer; timings are meaningless\n");
#endif
}

// >> key sets ------------------------------------------------------------------

typedef struct bench_keys {
    const char *name;
    size_t n, width;    /* every key of a set has the same length */
    uint8_t *k;         /* n * width bytes                         */
} bench_keys;

static void bench_keys_random(bench_keys *ks, size_t n, uint64_t seed)
{
    ks->name = "random16";
    ks->n = n;
    ks->width = 16;
    ks->k = bench_xmalloc(n * 16);
    for (size_t i = 0; i < n; i++) {
        uint64_t a = bench_rand(&seed), b = bench_rand(&seed);
        memcpy(ks->k + i * 16, &a, 8);
        memcpy(ks->k + i * 16 + 8, &b, 8);
    }
}

static void bench_keys_sequential(bench_keys *ks, size_t n)
{
    char buf[32];
    ks->name = "sequential";
    ks->n = n;
    ks->width = 17;
    ks->k = bench_xmalloc(n * 17);
    for (size_t i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, "user:%012zu", i);
        memcpy(ks->k + i * 17, buf, 17);
    }
}

static inline const uint8_t *bench_key(const bench_keys *ks, size_t i)
{
    return ks->k + i * ks->width;
}

static uint32_t *bench_shuffle(size_t n, uint64_t seed)
{
    uint32_t *p = bench_xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        size_t j = bench_rand(&seed) % i;
        uint32_t t = p[i - 1];
        p[i - 1] = p[j];
        p[j] = t;
    }
    return p;
}

// >> hash table baseline ---------------------------------------------------------

typedef struct bench_slot {
    uint8_t *key;       /* malloc'd copy; NULL = empty slot */
    uint32_t klen;
    uint32_t tag;       /* high hash bits: most misses skip the key */
    cy_loc   loc;
} bench_slot;

typedef struct bench_hash {
    bench_slot *s;
    size_t cap, n;      /* cap is a power of two, load <= 3/4 */
    uint64_t bytes;
} bench_hash;

static void bench_hash_place(bench_hash *h, bench_slot e, uint64_t hv)
{
    size_t i = (size_t)hv & (h->cap - 1);
    while (h->s[i].key) i = (i + 1) & (h->cap - 1);
    h->s[i] = e;
}

static void bench_hash_grow(bench_hash *h)
{
    bench_hash g = { NULL, h->cap ? h->cap * 2 : 1024, h->n, h->bytes };
    g.s = calloc(g.cap, sizeof *g.s);
    if (!g.s) {
        fprintf(stderr, "bench_art: out of memory\n");
        exit(1);
    }
    g.bytes += g.cap * sizeof *g.s;
    for (size_t i = 0; i < h->cap; i++)
        if (h->s[i].key) bench_hash_place(&g, h->s[i], XXH3_64bits(h->s[i].key, h->s[i].klen));
    g.bytes -= h->cap * sizeof *h->s;
    free(h->s);
    *h = g;
}

static void bench_hash_put(bench_hash *h, const uint8_t *k, size_t klen, cy_loc loc)
{
    if ((h->n + 1) * 4 > h->cap * 3) bench_hash_grow(h);
    uint64_t hv = XXH3_64bits(k, klen);
    size_t i = (size_t)hv & (h->cap - 1);
    for (; h->s[i].key; i = (i + 1) & (h->cap - 1)) {
        bench_slot *e = &h->s[i];
        if (e->tag == (uint32_t)(hv >> 32) && e->klen == klen && memcmp(e->key, k, klen) == 0) {
            e->loc = loc;
            return;
        }
    }
    bench_slot e = { bench_xmalloc(klen), (uint32_t)klen, (uint32_t)(hv >> 32), loc };
    memcpy(e.key, k, klen);
    h->s[i] = e;
    h->n++;
    h->bytes += klen;
}

static const cy_loc *bench_hash_get(const bench_hash *h, const uint8_t *k, size_t klen)
{
    uint64_t hv = XXH3_64bits(k, klen);
    for (size_t i = (size_t)hv & (h->cap - 1); h->s[i].key; i = (i + 1) & (h->cap - 1)) {
        const bench_slot *e = &h->s[i];
        if (e->tag == (uint32_t)(hv >> 32) && e->klen == klen && memcmp(e->key, k, klen) == 0)
            return &e->loc;
    }
    return NULL;
}

static void bench_hash_free(bench_hash *h)
{
    for (size_t i = 0; i < h->cap; i++) free(h->s[i].key);
    free(h->s);
    memset(h, 0, sizeof *h);
}

// >> workloads -------------------------------------------------------------------

/* Every search must hit; the sum keeps the compiler from dropping them. */
static void bench_check(const char *what, size_t hits, size_t n)
{
    if (hits != n) {
        fprintf(stderr, "bench_art: %s found %zu of %zu keys\n", what, hits, n);
        exit(1);
    }
}

static double bench_art_set(const bench_keys *ks, const uint32_t *order)
{
    cy_art t;
    cy_art_init(&t);
    size_t n = ks->n, hits = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        cy_loc l = bench_loc(i);
        if (cy_art_insert(&t, bench_key(ks, i), ks->width, &l, NULL) < 0) {
            fprintf(stderr, "bench_art: art insert failed\n");
            exit(1);
        }
    }
    double t1 = bench_now();
    double bpk = (double)t.bytes / (double)t.count;
    bench_line("art", ks->name, "insert", t1 - t0, n, bpk);

    t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        const cy_loc *l = cy_art_search(&t, bench_key(ks, order[i]), ks->width);
        hits += l && l->off == (uint64_t)order[i] * 64u;
    }
    t1 = bench_now();
    bench_check("art search", hits, n);
    double search = t1 - t0;
    bench_line("art", ks->name, "search", search, n, bpk);

    cy_art_iter it;
    cy_art_iter_init(&it, &t);
    size_t seen = 0, sum = 0;
    t0 = bench_now();
    for (int rc = cy_art_iter_seek(&it, CY_SEEK_FIRST, NULL, 0); rc == 1; rc = cy_art_iter_next(&it)) {
        size_t klen;
        sum += cy_art_iter_key(&it, &klen)[0] + klen;
        seen++;
    }
    t1 = bench_now();
    bench_check("art iterate", seen, n);
    bench_line("art", ks->name, "iterate", t1 - t0, n, bpk);
    cy_art_iter_free(&it);
    if (sum == 1) printf("\n");   /* uses sum */
    cy_art_destroy(&t);
    return search;
}

static double bench_hash_set(const bench_keys *ks, const uint32_t *order)
{
    bench_hash h;
    memset(&h, 0, sizeof h);
    size_t n = ks->n, hits = 0;
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++) bench_hash_put(&h, bench_key(ks, i), ks->width, bench_loc(i));
    double t1 = bench_now();
    double bpk = (double)h.bytes / (double)h.n;
    bench_line("hash", ks->name, "insert", t1 - t0, n, bpk);

    t0 = bench_now();
    for (size_t i = 0; i < n; i++) {
        const cy_loc *l = bench_hash_get(&h, bench_key(ks, order[i]), ks->width);
        hits += l && l->off == (uint64_t)order[i] * 64u;
    }
    t1 = bench_now();
    bench_check("hash search", hits, n);
    double search = t1 - t0;
    bench_line("hash", ks->name, "search", search, n, bpk);

    size_t seen = 0, sum = 0;
    t0 = bench_now();
    for (size_t i = 0; i < h.cap; i++) {
        if (!h.s[i].key) continue;
        sum += h.s[i].key[0] + h.s[i].klen;
        seen++;
    }
    t1 = bench_now();
    bench_check("hash scan", seen, n);
    bench_line("hash", ks->name, "iterate", t1 - t0, n, bpk);
    if (sum == 1) printf("\n");
    bench_hash_free(&h);
    return search;
}

static void bench_set(bench_keys *ks, uint64_t seed)
{
    uint32_t *order = bench_shuffle(ks->n, seed);
    double art = bench_art_set(ks, order);
    double hash = bench_hash_set(ks, order);
    printf("ratio %-11s search   art/hash = %.2f\n", ks->name, art / hash);
    fflush(stdout);
    free(order);
    free(ks->k);
}

int main(void)
{
    const char *env = getenv("BENCH_N");
    size_t n = env && *env ? (size_t)strtoull(env, NULL, 10) : 10000000u;
    if (n == 0 || n > UINT32_MAX) {
        fprintf(stderr, "bench_art: BENCH_N must be 1..%u\n", UINT32_MAX);
        return 2;
    }
    /* BENCH_SETS narrows the run to one key set: random16 or sequential. */
    const char *sets = getenv("BENCH_SETS");
    bench_header(n);
    bench_keys ks;
    if (!sets || !*sets || strstr(sets, "random16")) {
        bench_keys_random(&ks, n, 42);
        bench_set(&ks, 7);
    }
    if (!sets || !*sets || strstr(sets, "sequential")) {
        bench_keys_sequential(&ks, n);
        bench_set(&ks, 8);
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak RSS:  %.1f MiB\n", (double)ru.ru_maxrss / 1024.0);
    return 0;
}
