/*
 * quickstart.c: calypso in one page. Opens a database, stores and reads a
 * value, stores one with a time to live, and walks the keys under a prefix.
 *
 *   cc -std=c11 -O2 quickstart.c calypso.c -lpthread -lm -o quickstart
 *   ./quickstart /tmp/quickstart-db
 */
#include "calypso.h"

#include <stdio.h>
#include <string.h>

static int print_key(const void *key, size_t klen, void *ctx)
{
    calypso *db = ctx;
    char val[64];
    size_t vlen = 0;
    /* Callbacks run with no engine lock held: reading from inside is fine. */
    if (calypso_get_buf(db, key, klen, val, sizeof val, &vlen) == CALYPSO_OK)
        printf("  %.*s = %.*s\n", (int)klen, (const char *)key, (int)vlen, val);
    return 0;   /* go on */
}

static int check(calypso *db, int rc, const char *what)
{
    if (rc < 0) fprintf(stderr, "%s: %s\n", what, calypso_errmsg(db));
    return rc < 0;
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "quickstart-db";
    calypso *db = NULL;
    if (calypso_open(path, NULL, &db) != CALYPSO_OK) {
        fprintf(stderr, "open %s: %s\n", path, calypso_errmsg(NULL));
        return 1;
    }
    printf("calypso %s, database in %s\n", calypso_version(), path);

    if (check(db, calypso_put(db, "hello", 5, "world", 5), "put")) return 1;
    void *val = NULL;
    size_t vlen = 0;
    if (check(db, calypso_get(db, "hello", 5, &val, &vlen), "get")) return 1;
    printf("get hello -> %.*s\n", (int)vlen, (const char *)val);
    calypso_free(val);

    /* A session key that expires after 60 seconds. */
    if (check(db, calypso_put_ttl(db, "session:42", 10, "alice", 5, 60000), "put_ttl")) return 1;

    const char *users[][2] = { { "user:1", "ada" }, { "user:2", "grace" }, { "user:3", "linus" } };
    for (size_t i = 0; i < sizeof users / sizeof users[0]; i++)
        if (check(db, calypso_put(db, users[i][0], strlen(users[i][0]), users[i][1],
                                  strlen(users[i][1])), "put"))
            return 1;

    printf("keys with prefix \"user:\":\n");
    if (check(db, calypso_scan(db, "user:", 5, print_key, db), "scan")) return 1;

    struct calypso_stats st;
    if (check(db, calypso_stats(db, &st), "stats")) return 1;
    printf("%llu keys, %u datafile(s), %llu bytes on disk, %llu bytes of key directory\n",
           (unsigned long long)st.keys, st.datafiles, (unsigned long long)st.size,
           (unsigned long long)st.keydir_bytes);
    return check(db, calypso_close(db), "close");
}
