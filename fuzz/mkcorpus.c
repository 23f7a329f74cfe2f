/*
 * mkcorpus.c: writes the seed corpus of the fuzz targets into fuzz/corpus/
 * (`make fuzz-corpus`; the output is committed).
 *
 *   open/  real database directories packed as fuzz_open reads them (flags
 *          part, then META, datafiles and hints in fz_files[] order): a
 *          small one, one with sealed files, hints and TTLs, one after a
 *          merge, one with a torn tail, one opened with auto_recovery;
 *   ops/   call sequences for fuzz_ops;
 *   art/   call sequences for fuzz_art.
 */
#include "fuzz_util.h"
#include "calypso.h"

static const char *const mk_files[] = {
    "META",
    "0000000001.data", "0000000001.hint",
    "0000000002.data", "0000000002.hint",
    "0000000003.data",
    "1073741824.data", "1073741824.hint",
    "merge/COMMIT", "merge/1073741825.data", "merge/1073741825.hint",
};

static void mk_write(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n)) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

/* Packs database directory db into one fuzz_open input. */
static void mk_pack(const char *db, uint8_t flags, const char *out)
{
    static uint8_t buf[1 << 20];
    size_t n = 0;
    buf[n++] = flags;
    for (size_t i = 0; i < sizeof mk_files / sizeof *mk_files; i++) {
        memcpy(buf + n, "CYSP", 4);
        n += 4;
        char path[600];
        snprintf(path, sizeof path, "%s/%s", db, mk_files[i]);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        n += fread(buf + n, 1, sizeof buf - n, f);
        fclose(f);
    }
    mk_write(out, buf, n);
}

static calypso *mk_open(const char *db, uint64_t file)
{
    calypso_options o = { 0 };
    o.max_datafile_size = file;
    o.merge_trigger_ratio = -1;
    o.ttl_sweep_interval_ms = CALYPSO_SWEEP_NEVER;
    calypso *h = NULL;
    if (calypso_open(db, &o, &h)) {
        fprintf(stderr, "open %s: %s\n", db, calypso_errmsg(NULL));
        exit(1);
    }
    return h;
}

static void mk_fill(calypso *h, int n, int vlen)
{
    char k[32], v[256];
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "key%03d", i % 37);
        memset(v, 'a' + i % 26, sizeof v);
        calypso_put_ttl(h, k, strlen(k), v, (size_t)(vlen + i % 7), i % 5 == 0 ? 3600000 : 0);
        if (i % 9 == 4) calypso_delete(h, k, strlen(k));
    }
}

int main(int argc, char **argv)
{
    const char *out = argc > 1 ? argv[1] : "fuzz/corpus";
    char db[600], path[700];
    snprintf(db, sizeof db, "%s/db", fz_scratch());

    /* open/ */
    fz_rmtree(db);
    calypso *h = mk_open(db, 64 << 10);
    mk_fill(h, 12, 20);
    calypso_close(h);
    snprintf(path, sizeof path, "%s/open/small", out);
    mk_pack(db, 0, path);

    fz_rmtree(db);
    h = mk_open(db, 4096);
    mk_fill(h, 90, 60);
    calypso_close(h);
    snprintf(path, sizeof path, "%s/open/sealed-hints", out);
    mk_pack(db, 4, path);
    snprintf(path, sizeof path, "%s/open/sealed-hints-recovery", out);
    mk_pack(db, 1 | 8, path);

    h = mk_open(db, 4096);
    calypso_merge(h);
    mk_fill(h, 20, 30);
    calypso_close(h);
    snprintf(path, sizeof path, "%s/open/merged", out);
    mk_pack(db, 4, path);

    fz_rmtree(db);
    h = mk_open(db, 64 << 10);
    mk_fill(h, 8, 40);
    calypso_close(h);
    snprintf(path, sizeof path, "%s/0000000001.data", db);
    FILE *f = fopen(path, "ab");
    fwrite("\x11\x22\x33\x44\x01\x05\x80", 1, 7, f);
    fclose(f);
    snprintf(path, sizeof path, "%s/open/torn-tail", out);
    mk_pack(db, 0, path);

    /* ops/: op byte, then the bytes each op reads (see fuzz_ops.c). */
    static const uint8_t ops1[] = { 0, 1, 0, 5, 1, 2, 3, 1, 2, 0, 1, 3, 3, 2, 1, 0, 7, 1, 0,
                                    10, 0, 1, 0, 13, 1, 0, 14, 1, 0, 7, 1, 0 };
    static const uint8_t ops2[] = { 4, 2, 2, 1, 8, 9, 9, 2, 18, 0, 0, 18, 0, 0, 7, 2, 2, 1, 16,
                                    0, 0, 19, 0, 0, 12, 1, 0, 11, 1, 0, 2, 3, 3 };
    snprintf(path, sizeof path, "%s/ops/puts-merge-reopen", out);
    mk_write(path, ops1, sizeof ops1);
    snprintf(path, sizeof path, "%s/ops/ttl-clock-gc", out);
    mk_write(path, ops2, sizeof ops2);
    uint8_t many[600];
    for (size_t i = 0; i < sizeof many; i++) many[i] = (uint8_t)((i * 7 + i / 13) % 23);
    snprintf(path, sizeof path, "%s/ops/mixed", out);
    mk_write(path, many, sizeof many);

    /* art/ */
    static const uint8_t art1[] = { 0, 3, 2, 3, 0, 2, 2, 0, 0, 0, 1, 2, 3, 4, 7, 3, 2, 3, 8, 1, 2,
                                    10, 0, 3, 2, 3, 3, 4, 1, 1, 5, 3, 2, 3, 11, 0 };
    static const uint8_t art2[] = { 0, 7, 20, 1, 2, 0, 7, 30, 3, 4, 9, 0, 6, 0, 1, 2, 3, 4, 5,
                                    10, 7, 7, 25, 1, 1, 4, 0, 1, 2, 2, 11, 0 };
    snprintf(path, sizeof path, "%s/art/short-keys", out);
    mk_write(path, art1, sizeof art1);
    snprintf(path, sizeof path, "%s/art/long-prefix", out);
    mk_write(path, art2, sizeof art2);
    snprintf(path, sizeof path, "%s/art/mixed", out);
    mk_write(path, many, sizeof many);
    return 0;
}
