/*
 * ns_cache.c: the open namespace handles apid keeps, one per namespace in
 * use, shared by libmicrohttpd's pool of threads under one mutex.
 *
 * Opening a handle per request would cost a lookup and an allocation in
 * calypso, so handles stay open, in a list (at most APID_NS_CACHE_MAX;
 * past it, handles no request uses are closed). A request takes a
 * reference (apid_ns_use, apid_ns_ref) that apid_completed gives back
 * (apid_ns_release), so a handle is never closed under a request still
 * using it. A drop through apid (apid_ns_drop_all) holds the mutex across
 * calypso_ns_drop and unhooks every cached handle of the dropped names: a
 * namespace created again after the drop (a new, empty one) is opened
 * afresh, never served by the old handle, and no request can open the old
 * one between the drop and the unhooking. An unhooked handle closes when
 * its last request ends; until then calypso makes it see no keys and
 * refuse writes. Before the database handle closes (or is reopened)
 * apid_ns_close_all closes every cached handle, as calypso asks. A
 * --read-only apid sees the database, namespaces included, as of its
 * open; a reopen would have to go through apid_ns_close_all first.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "apid.h"

/* Handles kept open at most; past it, unused ones are closed. */
#define APID_NS_CACHE_MAX 256u

struct apid_ns_ent {
    struct apid_ns_ent *next;
    calypso *h;
    unsigned refs;
    int      cached;            /* 0: unhooked, closes at refs == 0 */
    size_t   nlen;
    char     name[];
};

static pthread_mutex_t apid_ns_mu = PTHREAD_MUTEX_INITIALIZER;
static struct apid_ns_ent *apid_ns_head;
static unsigned apid_ns_count;

/* >> names */
int apid_ns_is_default(const char *n, size_t l)
{
    return l == 0 || (l == 7 && memcmp(n, "default", 7) == 0);
}

/* 1 when n is a name calypso accepts: 1..255 bytes, no empty part. */
int apid_ns_name_ok(const char *n, size_t l)
{
    if (l == 0 || l > CALYPSO_NS_MAX_NAME || n[0] == '/' || n[l - 1] == '/') return 0;
    for (size_t i = 1; i < l; i++)
        if (n[i] == '/' && n[i - 1] == '/') return 0;
    return 1;
}

/* >> the cache (callers hold apid_ns_mu) */
static void apid_ns_ent_free(struct apid_ns_ent *e)
{
    calypso_close(e->h);
    free(e);
}

static void apid_ns_unhook(struct apid_ns_ent **pp)
{
    struct apid_ns_ent *e = *pp;
    *pp = e->next;
    e->cached = 0;
    apid_ns_count--;
    if (e->refs == 0) apid_ns_ent_free(e);
}

/* Makes room under APID_NS_CACHE_MAX by closing handles no request uses. */
static void apid_ns_trim(void)
{
    for (struct apid_ns_ent **pp = &apid_ns_head; *pp && apid_ns_count >= APID_NS_CACHE_MAX;) {
        if ((*pp)->refs == 0) apid_ns_unhook(pp);
        else pp = &(*pp)->next;
    }
}

/* The cached entry of name, opened (with create: created) when missing,
 * with a reference taken. *created tells whether this call created it. */
static int apid_ns_get(apid *s, const char *name, size_t nlen, int create, int *created,
                       struct apid_ns_ent **out)
{
    *created = 0;
    for (struct apid_ns_ent *e = apid_ns_head; e; e = e->next) {
        if (e->nlen == nlen && memcmp(e->name, name, nlen) == 0) {
            e->refs++;
            *out = e;
            return CALYPSO_OK;
        }
    }
    calypso *h = NULL;
    int rc = calypso_ns_open(s->db, name, nlen, 0, &h);
    if (rc == CALYPSO_ENOTFOUND && create) {
        rc = calypso_ns_open(s->db, name, nlen, 1, &h);
        *created = rc == CALYPSO_OK;
    }
    if (rc != CALYPSO_OK) return rc;
    struct apid_ns_ent *e = malloc(sizeof *e + nlen);
    if (!e) { calypso_close(h); return CALYPSO_ENOMEM; }
    apid_ns_trim();
    e->h = h;
    e->refs = 1;
    e->cached = 1;
    e->nlen = nlen;
    memcpy(e->name, name, nlen);
    e->next = apid_ns_head;
    apid_ns_head = e;
    apid_ns_count++;
    *out = e;
    return CALYPSO_OK;
}

static void apid_ns_release_locked(struct apid_ns_ent *e)
{
    if (e && --e->refs == 0 && !e->cached) apid_ns_ent_free(e);
}

void apid_ns_release(struct apid_ns_ent *e)
{
    if (!e) return;
    pthread_mutex_lock(&apid_ns_mu);
    apid_ns_release_locked(e);
    pthread_mutex_unlock(&apid_ns_mu);
}

void apid_ns_close_all(void)
{
    pthread_mutex_lock(&apid_ns_mu);
    while (apid_ns_head) apid_ns_unhook(&apid_ns_head);
    pthread_mutex_unlock(&apid_ns_mu);
}

/* 1 when cached name n is name or lies under it. */
static int apid_ns_under(const struct apid_ns_ent *e, const char *name, size_t nlen)
{
    if (e->nlen < nlen || memcmp(e->name, name, nlen) != 0) return 0;
    return e->nlen == nlen || e->name[nlen] == '/';
}

int apid_ns_drop_all(apid *s, const char *name, size_t nlen)
{
    pthread_mutex_lock(&apid_ns_mu);
    int rc = calypso_ns_drop(s->db, name, nlen);
    if (rc == CALYPSO_OK) {
        for (struct apid_ns_ent **pp = &apid_ns_head; *pp;) {
            if (apid_ns_under(*pp, name, nlen)) apid_ns_unhook(pp);
            else pp = &(*pp)->next;
        }
    }
    pthread_mutex_unlock(&apid_ns_mu);
    return rc;
}

int apid_ns_open(apid *s, const char *name, size_t nlen, int create, int *created,
                 struct apid_ns_ent **ref)
{
    pthread_mutex_lock(&apid_ns_mu);
    int rc = apid_ns_get(s, name, nlen, create, created, ref);
    pthread_mutex_unlock(&apid_ns_mu);
    return rc;
}

calypso *apid_ns_handle(const struct apid_ns_ent *e) { return e->h; }

int apid_ns_use(apid *s, apid_req *r, const char *name, size_t nlen)
{
    r->db = s->db;
    if (apid_ns_is_default(name, nlen)) return CALYPSO_OK;
    if (!apid_ns_name_ok(name, nlen)) return CALYPSO_EINVAL;
    int created;
    pthread_mutex_lock(&apid_ns_mu);
    apid_ns_release_locked(r->ns);
    r->ns = NULL;
    int rc = apid_ns_get(s, name, nlen, 0, &created, &r->ns);
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc == CALYPSO_OK) r->db = r->ns->h;
    return rc;
}

int apid_ns_ref(apid *s, const char *name, size_t nlen, calypso **h, struct apid_ns_ent **ref)
{
    *ref = NULL;
    *h = s->db;
    if (apid_ns_is_default(name, nlen)) return CALYPSO_OK;
    if (!apid_ns_name_ok(name, nlen)) return CALYPSO_EINVAL;
    int created;
    pthread_mutex_lock(&apid_ns_mu);
    int rc = apid_ns_get(s, name, nlen, 0, &created, ref);
    pthread_mutex_unlock(&apid_ns_mu);
    if (rc == CALYPSO_OK) *h = (*ref)->h;
    return rc;
}

const char *apid_ns_name(const apid_req *r, size_t *len)
{
    if (!r->ns) { *len = 0; return NULL; }
    *len = r->ns->nlen;
    return r->ns->name;
}

