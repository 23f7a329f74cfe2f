/*
 * test_model.c: model-based randomized test of the engine. Thousands of
 * random operations (put, put_ttl, get, get_buf, has, delete, delete_all,
 * scan, range, sift, sift_scan, sift_range with and without abort, merge,
 * reopen, batches, update transactions committed and rolled back) run
 * against the engine and against a plain sorted array; every
 * answer must agree. The operations run in three namespaces, one model
 * each: the default one, "n1" and its child "n1/n2"; batches and updates
 * take operations from several of them; "n1" is dropped (and with it
 * "n1/n2") and created again, empty, now and then. Keys come from a 4-letter alphabet including 0x00 and
 * 0xff, 1..5 bytes long, so prefixes collide constantly; datafiles are small
 * so they rotate, get hint files and merge. Prints its seed; replay with
 * CALYPSO_SEED=<n>.
 */
#include "testutil.h"
#include "engine_util.h"
#include "internal.h"

// >> the reference model: a sorted array --------------------------------------

typedef struct m_ent {
    uint8_t  key[8];
    size_t   klen;
    uint8_t *val;
    size_t   vlen;
} m_ent;

typedef struct model {
    m_ent *e;
    size_t n, cap;
} model;

/* Index of key, or -(insertion point) - 1. */
static long m_find(const model *m, const void *key, size_t klen)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = eu_keycmp(m->e[mid].key, m->e[mid].klen, key, klen);
        if (c == 0) return (long)mid;
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return -(long)lo - 1;
}

static void m_put(model *m, const void *key, size_t klen, const void *val, size_t vlen)
{
    long i = m_find(m, key, klen);
    m_ent *e;
    if (i >= 0) {
        e = &m->e[i];
        free(e->val);
    } else {
        size_t at = (size_t)(-i - 1);
        if (m->n == m->cap) {
            m->cap = m->cap ? m->cap * 2 : 256;
            m->e = realloc(m->e, m->cap * sizeof *m->e);
            assert_non_null(m->e);
        }
        memmove(&m->e[at + 1], &m->e[at], (m->n - at) * sizeof *m->e);
        m->n++;
        e = &m->e[at];
        memcpy(e->key, key, klen);
        e->klen = klen;
    }
    e->val = malloc(vlen ? vlen : 1);
    assert_non_null(e->val);
    if (vlen) memcpy(e->val, val, vlen);
    e->vlen = vlen;
}

static void m_del_at(model *m, size_t i)
{
    free(m->e[i].val);
    memmove(&m->e[i], &m->e[i + 1], (m->n - i - 1) * sizeof *m->e);
    m->n--;
}

static void m_del(model *m, const void *key, size_t klen)
{
    long i = m_find(m, key, klen);
    if (i >= 0) m_del_at(m, (size_t)i);
}

static void m_clear(model *m)
{
    for (size_t i = 0; i < m->n; i++) free(m->e[i].val);
    m->n = 0;
}

static void m_free(model *m)
{
    m_clear(m);
    free(m->e);
    memset(m, 0, sizeof *m);
}

static int m_has_prefix(const m_ent *e, const uint8_t *p, size_t plen)
{
    return e->klen >= plen && (plen == 0 || memcmp(e->key, p, plen) == 0);
}

static int m_in_range(const m_ent *e, const uint8_t *s, size_t sl, const uint8_t *t, size_t tl)
{
    return eu_keycmp(e->key, e->klen, s, sl) >= 0 && eu_keycmp(e->key, e->klen, t, tl) <= 0;
}

// >> random keys and values ----------------------------------------------------

static const uint8_t g_alpha[4] = { 'a', 'b', 0x00, 0xff };

/* 1..5 bytes, short keys likelier. */
static size_t rand_key(uint64_t *rs, uint8_t *k)
{
    static const size_t lens[10] = { 1, 2, 2, 3, 3, 3, 4, 4, 4, 5 };
    size_t len = lens[tu_below(rs, 10)];
    for (size_t i = 0; i < len; i++) k[i] = g_alpha[tu_below(rs, 4)];
    return len;
}

/* 0..4 bytes (0 = empty key, used as a prefix or range bound). */
static size_t rand_bound(uint64_t *rs, uint8_t *k)
{
    size_t len = (size_t)tu_below(rs, 5);
    for (size_t i = 0; i < len; i++) k[i] = g_alpha[tu_below(rs, 4)];
    return len;
}

static size_t rand_value(uint64_t *rs, uint8_t *v, size_t cap)
{
    uint64_t r = tu_below(rs, 100);
    size_t len;
    if (r < 5) len = 0;
    else if (r < 85) len = 1 + (size_t)tu_below(rs, 64);
    else if (r < 98) len = 64 + (size_t)tu_below(rs, 512);
    else len = 1000 + (size_t)tu_below(rs, 3000);
    if (len > cap) len = cap;
    for (size_t i = 0; i < len; i++) v[i] = (uint8_t)tu_rand(rs);
    return len;
}

static void hexkey(char *out, const uint8_t *k, size_t klen)
{
    for (size_t i = 0; i < klen; i++) sprintf(out + 2 * i, "%02x", k[i]);
    out[2 * klen] = 0;
}

// >> checks --------------------------------------------------------------------

#define NSLOTS 3
static const char *const g_ns_name[NSLOTS] = { NULL, "n1", "n1/n2" };

typedef struct run {
    calypso        *db;     /* the handle of the current namespace          */
    char           *dir;
    calypso_options opt;
    model           m;      /* the current namespace's model                */
    uint64_t        rs;
    long            op;     /* index of the current operation, for messages */
    calypso        *h[NSLOTS];   /* h[0]: the database handle; NULL: absent */
    model           ms[NSLOTS];  /* the models of the others (m is cur's)  */
    int             cur;
    int             drops, creates, switches;
} run;

/* Makes namespace slot the current one. */
static void ns_select(run *r, int slot)
{
    r->ms[r->cur] = r->m;
    r->cur = slot;
    r->m = r->ms[slot];
    r->db = r->h[slot];
}

/* A random namespace that exists. */
static int ns_pick(run *r)
{
    for (;;) {
        int s = (int)tu_below(&r->rs, NSLOTS);
        if (r->h[s]) return s;
    }
}

static void check_get(run *r, const uint8_t *key, size_t klen)
{
    long i = m_find(&r->m, key, klen);
    void *v = (void *)&v;
    size_t vlen = 999;
    int rc = calypso_get(r->db, key, klen, &v, &vlen);
    char hk[20];
    hexkey(hk, key, klen);
    if (i < 0) {
        if (rc != CALYPSO_ENOTFOUND)
            print_error("op %ld: get %s -> %d (%s), model: absent\n", r->op, hk, rc,
                        calypso_errmsg(r->db));
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        assert_null(v);
        assert_int_equal(vlen, 0);
        return;
    }
    const m_ent *e = &r->m.e[i];
    if (rc != CALYPSO_OK || vlen != e->vlen || (vlen && memcmp(v, e->val, vlen)))
        print_error("op %ld: get %s -> %d (%s) vlen %zu, model vlen %zu\n", r->op, hk, rc,
                    calypso_errmsg(r->db), vlen, e->vlen);
    assert_int_equal(rc, CALYPSO_OK);
    assert_non_null(v);
    assert_int_equal(vlen, e->vlen);
    if (vlen) assert_memory_equal(v, e->val, vlen);
    calypso_free(v);
}

static void check_get_buf(run *r, const uint8_t *key, size_t klen)
{
    long i = m_find(&r->m, key, klen);
    uint8_t buf[4096 + 8];
    size_t cap = (size_t)tu_below(&r->rs, 200);
    if (tu_below(&r->rs, 2)) cap = sizeof buf - 8;
    memset(buf, 0xee, sizeof buf);
    size_t vlen = 999;
    int rc = calypso_get_buf(r->db, key, klen, buf, cap, &vlen);
    if (i < 0) {
        assert_int_equal(rc, CALYPSO_ENOTFOUND);
        return;
    }
    const m_ent *e = &r->m.e[i];
    if (e->vlen > cap) {
        assert_int_equal(rc, CALYPSO_ETRUNC);
        assert_int_equal(vlen, e->vlen);
        for (size_t j = 0; j < sizeof buf; j++) assert_int_equal(buf[j], 0xee);
    } else {
        EU_OK(r->db, rc);
        assert_int_equal(vlen, e->vlen);
        if (vlen) assert_memory_equal(buf, e->val, vlen);
        assert_int_equal(buf[vlen], 0xee);
    }
}

/* The engine's keys from a walk must be exactly the model's, in order. */
static void check_keys(run *r, const eu_keys *ks, const uint8_t *p, size_t pl,
                       const uint8_t *s, size_t sl, const uint8_t *t, size_t tl, int is_range)
{
    size_t j = 0;
    for (size_t i = 0; i < r->m.n; i++) {
        const m_ent *e = &r->m.e[i];
        if (is_range ? !m_in_range(e, s, sl, t, tl) : !m_has_prefix(e, p, pl)) continue;
        if (j >= ks->n || ks->v[j].len != e->klen || memcmp(ks->v[j].k, e->key, e->klen)) {
            char hk[20], he[20] = "nothing";
            hexkey(hk, e->key, e->klen);
            if (j < ks->n && ks->v[j].len < 8) hexkey(he, ks->v[j].k, ks->v[j].len);
            char hp[20] = "", hs[20] = "", ht[20] = "";
            if (p) hexkey(hp, p, pl);
            if (s) hexkey(hs, s, sl);
            if (t) hexkey(ht, t, tl);
            print_error("op %ld: %s walk (prefix '%s', range '%s'..'%s') position %zu: "
                        "model has %s, engine %s\n", r->op, is_range ? "range" : "prefix",
                        hp, hs, ht, j, hk, he);
        }
        assert_true(j < ks->n);
        assert_int_equal(ks->v[j].len, e->klen);
        assert_memory_equal(ks->v[j].k, e->key, e->klen);
        j++;
    }
    if (j != ks->n) print_error("op %ld: walk gave %zu keys, model %zu\n", r->op, ks->n, j);
    assert_int_equal(j, ks->n);
}

static void check_one(run *r)
{
    eu_keys ks = {0};
    EU_OK(r->db, calypso_fold(r->db, eu_collect, &ks));
    check_keys(r, &ks, NULL, 0, NULL, 0, NULL, 0, 0);
    eu_keys_free(&ks);
    for (size_t i = 0; i < r->m.n; i++) check_get(r, r->m.e[i].key, r->m.e[i].klen);
    assert_int_equal(calypso_len(r->db), r->m.n);
    struct calypso_stats st;
    EU_OK(r->db, calypso_stats(r->db, &st));
    assert_int_equal(st.keys, r->m.n);
    assert_true(st.datafiles >= 1);
    assert_true(st.reclaimable <= st.size);
    assert_true(calypso_reclaimable(r->db) >= 0);
}

static int ns_list_fn(const void *k, size_t klen, void *ctx)
{
    char *out = ctx;
    size_t n = strlen(out);
    snprintf(out + n, 256 - n, "%.*s,", (int)klen, (const char *)k);
    return 0;
}

/* Every namespace against its model, and the catalog against which exist. */
static void check_all(run *r)
{
    int home = r->cur;
    for (int s = 0; s < NSLOTS; s++) {
        if (!r->h[s]) continue;
        ns_select(r, s);
        check_one(r);
    }
    ns_select(r, home);
    char names[256] = "";
    EU_OK(r->h[0], calypso_ns_list(r->h[0], NULL, 0, ns_list_fn, names));
    assert_string_equal(names, r->h[1] ? "n1," : "");
    if (r->h[1]) {
        names[0] = 0;
        EU_OK(r->h[0], calypso_ns_list(r->h[0], "n1", 2, ns_list_fn, names));
        assert_string_equal(names, r->h[2] ? "n1/n2," : "");
    }
}

/* Opens the namespaces the model has (create: making them). */
static void ns_open_handles(run *r, int create)
{
    for (int s = 1; s < NSLOTS; s++) {
        if (!create && !r->h[s]) continue;
        calypso *h = NULL;
        EU_OK(r->h[0], calypso_ns_open(r->h[0], g_ns_name[s], strlen(g_ns_name[s]), create, &h));
        r->h[s] = h;
    }
    r->db = r->h[r->cur];
}

static void ns_close_handles(run *r)
{
    for (int s = 1; s < NSLOTS; s++)
        if (r->h[s]) EU_OK(r->h[0], calypso_close(r->h[s]));
}

/* Namespace operations: switch, drop "n1" (and "n1/n2"), create both
 * again; each drop or create checked at once, and by check_all later. */
static void ns_op(run *r)
{
    uint64_t d = tu_below(&r->rs, 1000);
    if (d < 100) {
        ns_select(r, ns_pick(r));
        r->switches++;
    } else if (d < 103 && r->h[1]) {
        ns_select(r, 0);
        ns_close_handles(r);
        r->h[1] = r->h[2] = NULL;
        EU_OK(r->h[0], calypso_ns_drop(r->h[0], "n1", 2));
        m_clear(&r->ms[1]);
        m_clear(&r->ms[2]);
        calypso *gone = NULL;
        EU_RC(r->h[0], CALYPSO_ENOTFOUND, calypso_ns_open(r->h[0], "n1/n2", 5, 0, &gone));
        r->drops++;
    } else if (d < 110 && !r->h[1]) {
        ns_open_handles(r, 1);
        for (int s = 1; s < NSLOTS; s++) assert_int_equal(calypso_len(r->h[s]), 0);
        r->creates++;
    }
}

// >> sift ------------------------------------------------------------------------

struct sift_ctx {
    uint64_t salt;
    long     calls;
    long     abort_at;   /* > 0: return -42 on this call */
    eu_keys  asked;
};

static int sift_pick(const void *key, size_t klen, uint64_t salt)
{
    return eu_hash(key, klen, salt) % 3 == 0;
}

static int sift_fn(const void *key, size_t klen, void *ctx)
{
    struct sift_ctx *c = ctx;
    c->calls++;
    eu_keys_add(&c->asked, key, klen);
    if (c->abort_at > 0 && c->calls == c->abort_at) return -42;
    return sift_pick(key, klen, c->salt) ? (int)(1 + c->salt % 3) : 0;   /* 1..3 */
}

/* kind 0 sift, 1 sift_scan, 2 sift_range. */
static void do_sift(run *r, int kind)
{
    uint8_t p[8], s[8], t[8];
    size_t pl = 0, sl = 0, tl = 0;
    if (kind == 1) pl = rand_bound(&r->rs, p);
    if (kind == 2) {
        sl = rand_bound(&r->rs, s);
        tl = rand_bound(&r->rs, t);
        if (eu_keycmp(s, sl, t, tl) > 0 && tu_below(&r->rs, 4)) {
            uint8_t tmp[8];
            size_t tml = sl;
            memcpy(tmp, s, sl); memcpy(s, t, tl); sl = tl; memcpy(t, tmp, tml); tl = tml;
        }
    }
    /* Which model keys are in scope. */
    size_t in_scope = 0;
    for (size_t i = 0; i < r->m.n; i++) {
        const m_ent *e = &r->m.e[i];
        if (kind == 1 && !m_has_prefix(e, p, pl)) continue;
        if (kind == 2 && !m_in_range(e, s, sl, t, tl)) continue;
        in_scope++;
    }
    struct sift_ctx c;
    memset(&c, 0, sizeof c);
    c.salt = tu_rand(&r->rs);
    int aborting = in_scope > 0 && tu_below(&r->rs, 4) == 0;
    if (aborting) c.abort_at = 1 + (long)tu_below(&r->rs, in_scope);
    int rc;
    if (kind == 0) rc = calypso_sift(r->db, sift_fn, &c);
    else if (kind == 1) rc = calypso_sift_scan(r->db, p, pl, sift_fn, &c);
    else rc = calypso_sift_range(r->db, s, sl, t, tl, sift_fn, &c);

    if (kind == 2 && eu_keycmp(s, sl, t, tl) > 0) {
        EU_RC(r->db, CALYPSO_EINVALIDRANGE, rc);
        assert_int_equal(c.calls, 0);
        eu_keys_free(&c.asked);
        return;
    }
    if (aborting) {
        assert_int_equal(rc, -42);
        assert_int_equal(c.calls, c.abort_at);
    } else {
        EU_OK(r->db, rc);
        /* Asked of exactly the keys in scope, in order. */
        check_keys(r, &c.asked, p, pl, s, sl, t, tl, kind == 2);
        for (size_t i = r->m.n; i-- > 0;) {
            const m_ent *e = &r->m.e[i];
            if (kind == 1 && !m_has_prefix(e, p, pl)) continue;
            if (kind == 2 && !m_in_range(e, s, sl, t, tl)) continue;
            if (sift_pick(e->key, e->klen, c.salt)) m_del_at(&r->m, i);
        }
    }
    eu_keys_free(&c.asked);
}

// >> the run -----------------------------------------------------------------------

static void reopen(run *r)
{
    ns_close_handles(r);
    if (tu_below(&r->rs, 2)) {
        EU_OK(r->h[0], calypso_reopen(r->h[0]));
    } else {
        eu_close(r->h[0]);
        r->h[0] = eu_open(r->dir, &r->opt);
    }
    ns_open_handles(r, 0);
}

/* A batch of 1..12 puts and deletes (keys often repeated, so later
 * operations must win), or the same through an update transaction that
 * checks it reads its own writes, committed or rolled back. */
static void do_batch(run *r, uint8_t *vbuf, size_t vcap, int kind)
{
    calypso_batch *b = NULL;
    calypso_txn *tx = NULL;
    if (kind == 0) EU_OK(r->db, calypso_batch_open(r->db, &b));
    else EU_OK(r->db, calypso_update_begin(r->db, &tx));
    int n = 1 + (int)tu_below(&r->rs, 12);
    struct { uint8_t k[8]; size_t kl; int del; uint8_t *v; size_t vl; int slot; } ops[12];
    int slot = r->cur;
    for (int i = 0; i < n; i++) {
        if (tu_below(&r->rs, 4) == 0) {                /* on to another namespace */
            slot = ns_pick(r);
            EU_OK(r->db, kind == 0 ? calypso_batch_ns(b, r->h[slot])
                                   : calypso_txn_ns(tx, r->h[slot]));
        }
        ops[i].slot = slot;
        ops[i].kl = rand_key(&r->rs, ops[i].k);
        if (i > 0 && tu_below(&r->rs, 3) == 0 && ops[i - 1].slot == slot) {   /* again */
            memcpy(ops[i].k, ops[i - 1].k, ops[i - 1].kl);
            ops[i].kl = ops[i - 1].kl;
        }
        ops[i].del = tu_below(&r->rs, 3) == 0;
        ops[i].vl = ops[i].del ? 0 : rand_value(&r->rs, vbuf, vcap);
        ops[i].v = ops[i].vl ? malloc(ops[i].vl) : NULL;
        if (ops[i].vl) memcpy(ops[i].v, vbuf, ops[i].vl);
        int rc;
        if (kind == 0)
            rc = ops[i].del ? calypso_batch_delete(b, ops[i].k, ops[i].kl)
                            : calypso_batch_put(b, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
        else
            rc = ops[i].del ? calypso_txn_delete(tx, ops[i].k, ops[i].kl)
                            : calypso_txn_put(tx, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
        EU_OK(r->db, rc);
        if (tx) {   /* reads its own write */
            size_t got = 0;
            rc = calypso_txn_get_buf(tx, ops[i].k, ops[i].kl, vbuf, vcap, &got);
            if (ops[i].del) {
                assert_int_equal(rc, CALYPSO_ENOTFOUND);
            } else {
                EU_OK(r->db, rc);
                assert_int_equal(got, ops[i].vl);
                if (got) assert_memory_equal(vbuf, ops[i].v, got);
            }
        }
    }
    int commit = kind != 2;
    if (kind == 0) EU_OK(r->db, calypso_batch_commit(b));
    else if (commit) EU_OK(r->db, calypso_txn_commit(tx));
    else calypso_txn_rollback(tx);
    int home = r->cur;
    ns_select(r, home);                         /* r->ms[home] is current now */
    for (int i = 0; i < n; i++) {
        model *m = &r->ms[ops[i].slot];
        if (commit) {
            if (ops[i].del) m_del(m, ops[i].k, ops[i].kl);
            else m_put(m, ops[i].k, ops[i].kl, ops[i].v, ops[i].vl);
        }
        free(ops[i].v);
    }
    r->m = r->ms[home];
    for (int i = 0; i < n; i++) {
        ns_select(r, ops[i].slot);
        check_get(r, ops[i].k, ops[i].kl);
    }
    ns_select(r, home);
}

static void one_op(run *r, uint8_t *vbuf, size_t vcap)
{
    uint8_t k[8], k2[8];
    size_t kl, kl2;
    uint64_t dice = tu_below(&r->rs, 1000);
    if (dice < 400) {                                    /* put */
        kl = rand_key(&r->rs, k);
        size_t vl = rand_value(&r->rs, vbuf, vcap);
        EU_OK(r->db, calypso_put(r->db, k, kl, vl ? vbuf : NULL, vl));
        m_put(&r->m, k, kl, vbuf, vl);
    } else if (dice < 480) {                             /* put with a long TTL */
        kl = rand_key(&r->rs, k);
        size_t vl = rand_value(&r->rs, vbuf, vcap);
        uint64_t ttl = 3600000ull * (1 + tu_below(&r->rs, 48));
        EU_OK(r->db, calypso_put_ttl(r->db, k, kl, vbuf, vl, ttl));
        m_put(&r->m, k, kl, vbuf, vl);
    } else if (dice < 580) {                             /* delete */
        kl = rand_key(&r->rs, k);
        if (r->m.n && tu_below(&r->rs, 2)) {             /* often a live key */
            const m_ent *e = &r->m.e[tu_below(&r->rs, r->m.n)];
            memcpy(k, e->key, e->klen);
            kl = e->klen;
        }
        EU_OK(r->db, calypso_delete(r->db, k, kl));
        m_del(&r->m, k, kl);
    } else if (dice < 700) {                             /* get */
        kl = rand_key(&r->rs, k);
        check_get(r, k, kl);
    } else if (dice < 715) {                             /* batch */
        do_batch(r, vbuf, vcap, 0);
    } else if (dice < 723) {                             /* update, committed */
        do_batch(r, vbuf, vcap, 1);
    } else if (dice < 730) {                             /* update, rolled back */
        do_batch(r, vbuf, vcap, 2);
    } else if (dice < 780) {                             /* get_buf */
        kl = rand_key(&r->rs, k);
        check_get_buf(r, k, kl);
    } else if (dice < 830) {                             /* has */
        kl = rand_key(&r->rs, k);
        assert_int_equal(calypso_has(r->db, k, kl), m_find(&r->m, k, kl) >= 0);
    } else if (dice < 885) {                             /* scan */
        kl = rand_bound(&r->rs, k);
        eu_keys ks = {0};
        EU_OK(r->db, calypso_scan(r->db, k, kl, eu_collect, &ks));
        check_keys(r, &ks, k, kl, NULL, 0, NULL, 0, 0);
        eu_keys_free(&ks);
    } else if (dice < 940) {                             /* range */
        kl = rand_bound(&r->rs, k);
        kl2 = rand_bound(&r->rs, k2);
        eu_keys ks = {0};
        int rc = calypso_range(r->db, k, kl, k2, kl2, eu_collect, &ks);
        if (eu_keycmp(k, kl, k2, kl2) > 0) {
            EU_RC(r->db, CALYPSO_EINVALIDRANGE, rc);
            assert_int_equal(ks.n, 0);
        } else {
            EU_OK(r->db, rc);
            check_keys(r, &ks, NULL, 0, k, kl, k2, kl2, 1);
        }
        eu_keys_free(&ks);
    } else if (dice < 943) {
        do_sift(r, 0);
    } else if (dice < 963) {
        do_sift(r, 1);
    } else if (dice < 985) {
        do_sift(r, 2);
    } else if (dice < 999) {                             /* len */
        assert_int_equal(calypso_len(r->db), r->m.n);
    } else if (tu_below(&r->rs, 4) == 0) {               /* rarely: delete_all */
        EU_OK(r->db, calypso_delete_all(r->db));
        m_clear(&r->m);
    }
}

static void model_run(long ops, int automerge, const char *what)
{
    run r;
    memset(&r, 0, sizeof r);
    r.rs = tu_seed(what) ^ (automerge ? 0x5eed : 0);
    r.dir = tu_tmpdir();
    r.opt.max_datafile_size = 64 * 1024;
    r.opt.max_value_size = 8192;
    if (automerge) {
        /* The background thread wakes every 5 ms (sync interval) and then
         * merges whenever 30% of the bytes are dead. */
        r.opt.merge_trigger_ratio = 0.3;
        r.opt.merge_min_dead_bytes = 1;
        r.opt.sync = CALYPSO_SYNC_INTERVAL;
        r.opt.sync_interval_ms = 5;
    } else {
        r.opt.merge_trigger_ratio = -1;
        r.opt.max_open_files = 2;        /* sealed files get closed and reopened */
    }
    r.db = r.h[0] = eu_open(r.dir, &r.opt);
    ns_open_handles(&r, 1);
    size_t vcap = 4096;
    uint8_t *vbuf = malloc(vcap);
    assert_non_null(vbuf);
    /* Reopens every ~500 ops; with auto-merge every ~2000, so that the
     * background merges (which close stops) get time to finish. */
    long reopen_every = automerge ? 1500 : 300;
    long next_reopen = reopen_every + (long)tu_below(&r.rs, 400);
    long next_merge = 1500 + (long)tu_below(&r.rs, 2000);
    int reopens = 0, merges = 0;
    uint64_t merges_done = 0;     /* explicit and automatic, over all opens */
    uint64_t merges_base = 0;     /* stats.merges right after the last (re)open */
    struct calypso_stats st;
    for (r.op = 0; r.op < ops; r.op++) {
        ns_op(&r);
        one_op(&r, vbuf, vcap);
        if (r.op == next_reopen) {
            EU_OK(r.db, calypso_stats(r.db, &st));
            merges_done += st.merges - merges_base;
            reopen(&r);
            EU_OK(r.db, calypso_stats(r.db, &st));
            merges_base = st.merges;
            reopens++;
            check_all(&r);
            next_reopen = r.op + reopen_every + (long)tu_below(&r.rs, 400);
        }
        if (r.op == next_merge) {
            int rc = calypso_merge(r.db);
            if (!(automerge && rc == CALYPSO_EMERGING)) EU_OK(r.db, rc);
            if (rc == CALYPSO_OK) merges++;
            check_all(&r);
            next_merge = r.op + 1500 + (long)tu_below(&r.rs, 2000);
        }
    }
    check_all(&r);
    EU_OK(r.db, calypso_stats(r.db, &st));
    merges_done += st.merges - merges_base;
    print_message("%s: %ld ops, %d reopens, %d explicit merges, %llu merges in all, "
                  "%zu keys, %u datafiles; namespaces: %d switches, %d drops, %d creates\n",
                  what, ops, reopens, merges, (unsigned long long)merges_done, r.m.n,
                  st.datafiles, r.switches, r.drops, r.creates);
    if (automerge) assert_true(merges_done >= (uint64_t)merges);
    else assert_int_equal(merges_done, merges);     /* a negative ratio never merges */
    ns_close_handles(&r);
    eu_close(r.h[0]);
    r.h[0] = eu_open(r.dir, &r.opt);
    ns_open_handles(&r, 0);
    check_all(&r);
    ns_close_handles(&r);
    eu_close(r.h[0]);
    /* Read-only, the same contents. */
    calypso_options ro = r.opt;
    ro.read_only = 1;
    r.h[0] = eu_open(r.dir, &ro);
    ns_open_handles(&r, 0);
    check_all(&r);
    ns_close_handles(&r);
    eu_close(r.h[0]);
    free(vbuf);
    ns_select(&r, 0);
    for (int s = 0; s < NSLOTS; s++) m_free(&r.ms[s]);
    tu_rmrf(r.dir);
}

static void test_model_explicit_merges(void **state)
{
    (void)state;
    model_run(20000, 0, "test_model_explicit_merges");
}

static void test_model_auto_merge(void **state)
{
    (void)state;
    model_run(10000, 1, "test_model_auto_merge");
}

/* Deleted keys stay deleted through merges and reopens (the Bitcask
 * family's resurrection bugs): values and tombstones spread over many
 * files, merged in several rounds, with reopens between. */
static void test_deletes_survive_merges(void **state)
{
    (void)state;
    char *dir = tu_tmpdir();
    calypso_options o;
    memset(&o, 0, sizeof o);
    o.max_datafile_size = 4096;
    o.merge_trigger_ratio = -1;
    calypso *db = eu_open(dir, &o);
    enum { NK = 200 };
    int live[NK] = {0};
    uint64_t version[NK] = {0};
    char k[16];
    uint8_t v[64];
    for (int round = 1; round <= 6; round++) {
        for (int i = 0; i < NK; i++) {
            /* Round 1 puts all; later rounds put a third, delete a third. */
            int kl = snprintf(k, sizeof k, "d%03d", i);
            int what = round == 1 ? 0 : (i + round) % 3;
            if (what == 0) {
                version[i] = (uint64_t)round;
                eu_make_value(v, sizeof v, k, (size_t)kl, version[i]);
                EU_OK(db, calypso_put(db, k, (size_t)kl, v, sizeof v));
                live[i] = 1;
            } else if (what == 1) {
                EU_OK(db, calypso_delete(db, k, (size_t)kl));
                live[i] = 0;
            }
        }
        if (round % 2 == 0) EU_OK(db, calypso_merge(db));
        if (round % 3 == 0) EU_OK(db, calypso_merge(db));   /* twice in a row */
        if (round % 2 == 1) EU_OK(db, calypso_reopen(db));
        else { eu_close(db); db = eu_open(dir, &o); }
        uint64_t n = 0;
        for (int i = 0; i < NK; i++) {
            int kl = snprintf(k, sizeof k, "d%03d", i);
            if (!live[i]) { eu_expect_rc(db, k, (size_t)kl, CALYPSO_ENOTFOUND); continue; }
            n++;
            eu_make_value(v, sizeof v, k, (size_t)kl, version[i]);
            eu_expect(db, k, (size_t)kl, v, sizeof v);
        }
        assert_int_equal(calypso_len(db), n);
    }
    /* Everything deleted, merged, reopened: empty. */
    EU_OK(db, calypso_delete_all(db));
    EU_OK(db, calypso_merge(db));
    eu_close(db);
    db = eu_open(dir, &o);
    assert_int_equal(calypso_len(db), 0);
    EU_OK(db, calypso_merge(db));
    EU_OK(db, calypso_reopen(db));
    assert_int_equal(calypso_len(db), 0);
    eu_close(db);
    tu_rmrf(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_explicit_merges),
        cmocka_unit_test(test_model_auto_merge),
        cmocka_unit_test(test_deletes_survive_merges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
