/* SPDX-License-Identifier: Apache-2.0 */
/* The series store: interned strings, chained hash tables, per-series sample chunks. */
#include "store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- hashing ------------------------------------------------------------------------------ */

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ULL;
    x ^= x >> 32;
    return x;
}

static inline uint64_t rotl64(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

/* Folds len bytes into h, 8 bytes per multiply; callers finish with mix64. */
static inline uint64_t hash_feed(uint64_t h, const char *s, size_t len) {
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        h = rotl64(h ^ (w * 0x9fb21c651e98df25ULL), 29) * 0xd6e8feb86659fd93ULL;
    }
    /* Tail: up to 7 bytes, assembled without a variable-length memcpy call. */
    uint64_t w = len;
    for (size_t k = 0; i + k < len; k++)
        w ^= (uint64_t)(unsigned char)s[i + k] << (8 * k + 8);
    return rotl64(h ^ (w * 0x9fb21c651e98df25ULL), 29) * 0xd6e8feb86659fd93ULL;
}

/* A fast non-cryptographic string hash. */
static uint64_t str_hash(const char *s, size_t len) {
    return mix64(hash_feed(0x9e3779b97f4a7c15ULL, s, len));
}

/* Hash of a sorted label set: every name and value with its length, so that
 * {a="bc"} and {ab="c"} differ. */
static uint64_t labels_hash(const struct re_label *l, size_t n) {
    uint64_t h = 0x243f6a8885a308d3ULL ^ n;
    for (size_t i = 0; i < n; i++) {
        h = hash_feed(h, l[i].name, strlen(l[i].name));
        h = hash_feed(h, l[i].value, strlen(l[i].value));
    }
    return mix64(h);
}

/* ---- interned strings ------------------------------------------------------------------------ */

struct istr {
    struct istr *next;
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    char s[];
};

static inline struct istr *istr_of(const char *s) {
    return (struct istr *)(void *)(s - offsetof(struct istr, s));
}

/* ---- samples --------------------------------------------------------------------------------- */

/* Chunk capacities grow so that a series with one sample stays small and a busy series
 * settles into 128-sample chunks that retention can free whole. */
#define CHUNK_MAX 128
static const uint16_t chunk_caps[] = {4, 16, 64, CHUNK_MAX};

struct chunk {
    struct chunk *next;
    uint16_t n, cap;
    uint8_t step; /* index into chunk_caps */
    int64_t *ts;
    double *v;
    struct re_hist **h; /* NULL for float-only chunks */
    /* ts[cap], v[cap], h[cap] follow */
};

static const struct re_hist *const null_hists[CHUNK_MAX];

struct series {
    struct series *hnext;         /* hash chain */
    struct series *pnext, *pprev; /* postings of the metric name */
    uint64_t hash;
    struct chunk *head, *tail;
    uint32_t nlabels;
    uint32_t slot; /* index in the ref table (fits the padding before labels) */
    struct re_label labels[];
};

struct postings {
    struct postings *next;
    const char *name; /* interned */
    struct series *first;
    size_t count;
};

/* Per-batch state for the atomic check pass: the newest timestamp seen per series. */
struct pend {
    struct series *se; /* NULL for a series the batch creates */
    uint64_t hash;
    size_t first; /* index of the batch sample that introduced it */
    int64_t ts;
    double v;
    bool hist, has;
};

struct store {
    pthread_rwlock_t lock;
    struct store_opts opts;
    store_touch_fn *touch;
    void *touch_arg;

    struct istr **strs;
    size_t nstrs, strs_mask;
    struct series **tab;
    size_t nseries, tab_mask;
    struct postings **post;
    size_t npost, post_mask;

    const char *empty;     /* interned "", held for the store's lifetime */
    struct series **slots; /* ref table: slot -> series, NULL when free */
    uint32_t *slot_gen;    /* bumped when a slot's series is removed */
    size_t nslots, slots_cap;
    uint32_t *free_slots;
    size_t nfree, free_cap;
    struct pend *pt; /* atomic-batch scratch, used under the write lock */
    size_t pt_cap, *slot, slot_cap;
    size_t nsamples, nhist;
    size_t label_bytes, sample_bytes;
    uint64_t appended_total, ooo_total, dup_total, limit_hits_total, created_total, removed_total,
        too_new_total;
};

static void *grow_table(void *old, size_t *mask, size_t count) {
    (void)old;
    (void)count;
    return calloc(*mask + 1, sizeof(void *));
}

static const char *intern(struct store *s, const char *str) {
    size_t len = strlen(str);
    uint64_t h = str_hash(str, len);
    for (struct istr *p = s->strs[h & s->strs_mask]; p; p = p->next)
        if (p->hash == h && p->len == len && memcmp(p->s, str, len) == 0) {
            p->refs++;
            return p->s;
        }
    struct istr *p = malloc(sizeof(*p) + len + 1);
    if (!p) return NULL;
    p->hash = h;
    p->refs = 1;
    p->len = (uint32_t)len;
    memcpy(p->s, str, len + 1);
    p->next = s->strs[h & s->strs_mask];
    s->strs[h & s->strs_mask] = p;
    s->nstrs++;
    s->label_bytes += sizeof(*p) + len + 1;
    if (s->nstrs > s->strs_mask + 1) {
        size_t nmask = s->strs_mask * 2 + 1;
        struct istr **nt = grow_table(s->strs, &nmask, s->nstrs);
        if (nt) {
            for (size_t i = 0; i <= s->strs_mask; i++)
                for (struct istr *q = s->strs[i], *nx; q; q = nx) {
                    nx = q->next;
                    q->next = nt[q->hash & nmask];
                    nt[q->hash & nmask] = q;
                }
            s->label_bytes += (nmask - s->strs_mask) * sizeof(void *);
            free(s->strs);
            s->strs = nt;
            s->strs_mask = nmask;
        }
    }
    return p->s;
}

static const char *lookup_str(struct store *s, const char *str) {
    size_t len = strlen(str);
    uint64_t h = str_hash(str, len);
    for (struct istr *p = s->strs[h & s->strs_mask]; p; p = p->next)
        if (p->hash == h && p->len == len && memcmp(p->s, str, len) == 0) return p->s;
    return NULL;
}

static void unintern(struct store *s, const char *str) {
    if (!str) return;
    struct istr *p = istr_of(str);
    if (--p->refs) return;
    struct istr **pp = &s->strs[p->hash & s->strs_mask];
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    s->nstrs--;
    s->label_bytes -= sizeof(*p) + p->len + 1;
    free(p);
}

/* ---- lifecycle ------------------------------------------------------------------------------- */

struct store *store_new(const struct store_opts *o) {
    struct store *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->opts = *o;
    s->strs_mask = s->tab_mask = 1023;
    s->post_mask = 255;
    s->strs = calloc(s->strs_mask + 1, sizeof(void *));
    s->tab = calloc(s->tab_mask + 1, sizeof(void *));
    s->post = calloc(s->post_mask + 1, sizeof(void *));
    if (!s->strs || !s->tab || !s->post || pthread_rwlock_init(&s->lock, NULL)) {
        free(s->strs);
        free(s->tab);
        free(s->post);
        free(s);
        return NULL;
    }
    s->label_bytes = sizeof(*s) + (s->strs_mask + s->tab_mask + s->post_mask + 3) * sizeof(void *);
    s->empty = intern(s, "");
    if (!s->empty) {
        store_free(s);
        return NULL;
    }
    return s;
}

static void chunk_free(struct store *s, struct chunk *c) {
    if (c->h)
        for (uint16_t i = 0; i < c->n; i++)
            if (c->h[i]) {
                free(c->h[i]);
                s->nhist--;
            }
    s->nsamples -= c->n;
    s->sample_bytes -= sizeof(*c) + (size_t)c->cap * (16 + (c->h ? 8 : 0));
    free(c);
}

static void series_destroy(struct store *s, struct series *se) {
    for (struct chunk *c = se->head, *nx; c; c = nx) {
        nx = c->next;
        chunk_free(s, c);
    }
    for (uint32_t i = 0; i < se->nlabels; i++) {
        unintern(s, se->labels[i].name);
        unintern(s, se->labels[i].value);
    }
    s->label_bytes -= sizeof(*se) + se->nlabels * sizeof(struct re_label);
    free(se);
}

void store_free(struct store *s) {
    if (!s) return;
    for (size_t i = 0; i <= s->tab_mask; i++)
        for (struct series *se = s->tab[i], *nx; se; se = nx) {
            nx = se->hnext;
            series_destroy(s, se);
        }
    for (size_t i = 0; i <= s->post_mask; i++)
        for (struct postings *p = s->post[i], *nx; p; p = nx) {
            nx = p->next;
            free(p);
        }
    unintern(s, s->empty);
    free(s->pt);
    free(s->slot);
    free(s->slots);
    free(s->slot_gen);
    free(s->free_slots);
    free(s->strs);
    free(s->tab);
    free(s->post);
    pthread_rwlock_destroy(&s->lock);
    free(s);
}

void store_set_opts(struct store *s, const struct store_opts *o) {
    pthread_rwlock_wrlock(&s->lock);
    s->opts = *o;
    pthread_rwlock_unlock(&s->lock);
}

void store_set_touch_hook(struct store *s, store_touch_fn *fn, void *arg) {
    s->touch = fn;
    s->touch_arg = arg;
}

/* ---- series lookup and creation -------------------------------------------------------------- */

static const char *metric_name(const struct re_label *l, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, "__name__") == 0) return l[i].value;
    return "";
}

static struct series *find_series(struct store *s, const struct re_label *l, size_t n, uint64_t h) {
    for (struct series *se = s->tab[h & s->tab_mask]; se; se = se->hnext) {
        if (se->hash != h || se->nlabels != n) continue;
        size_t i = 0;
        for (; i < n; i++)
            if (strcmp(se->labels[i].name, l[i].name) || strcmp(se->labels[i].value, l[i].value))
                break;
        if (i == n) return se;
    }
    return NULL;
}

static uint64_t ptr_hash(const void *p) {
    return mix64((uint64_t)(uintptr_t)p);
}

static struct postings *find_postings(struct store *s, const char *iname) {
    for (struct postings *p = s->post[ptr_hash(iname) & s->post_mask]; p; p = p->next)
        if (p->name == iname) return p;
    return NULL;
}

static void rehash_series(struct store *s) {
    size_t nmask = s->tab_mask * 2 + 1;
    struct series **nt = calloc(nmask + 1, sizeof(void *));
    if (!nt) return; /* keep the old table: longer chains, still correct */
    for (size_t i = 0; i <= s->tab_mask; i++)
        for (struct series *se = s->tab[i], *nx; se; se = nx) {
            nx = se->hnext;
            se->hnext = nt[se->hash & nmask];
            nt[se->hash & nmask] = se;
        }
    s->label_bytes += (nmask - s->tab_mask) * sizeof(void *);
    free(s->tab);
    s->tab = nt;
    s->tab_mask = nmask;
}

static void rehash_postings(struct store *s) {
    size_t nmask = s->post_mask * 2 + 1;
    struct postings **nt = calloc(nmask + 1, sizeof(void *));
    if (!nt) return;
    for (size_t i = 0; i <= s->post_mask; i++)
        for (struct postings *p = s->post[i], *nx; p; p = nx) {
            nx = p->next;
            p->next = nt[ptr_hash(p->name) & nmask];
            nt[ptr_hash(p->name) & nmask] = p;
        }
    s->label_bytes += (nmask - s->post_mask) * sizeof(void *);
    free(s->post);
    s->post = nt;
    s->post_mask = nmask;
}

/* Gives se a slot in the ref table, reusing freed ones first. */
static int take_slot(struct store *s, struct series *se) {
    if (s->nfree) {
        se->slot = s->free_slots[--s->nfree];
    } else {
        if (s->nslots == s->slots_cap) {
            size_t cap = s->slots_cap ? s->slots_cap * 2 : 1024;
            struct series **ns = realloc(s->slots, cap * sizeof(*ns));
            if (!ns) return -ENOMEM;
            s->slots = ns;
            uint32_t *ng = realloc(s->slot_gen, cap * sizeof(*ng));
            if (!ng) return -ENOMEM;
            s->slot_gen = ng;
            s->label_bytes += (cap - s->slots_cap) * (sizeof(*ns) + sizeof(*ng));
            s->slots_cap = cap;
        }
        se->slot = (uint32_t)s->nslots;
        s->slot_gen[s->nslots++] = 1; /* generation 1 up: no ref is 0 (until 2^32 reuses) */
    }
    s->slots[se->slot] = se;
    return 0;
}

static void release_slot(struct store *s, struct series *se) {
    s->slots[se->slot] = NULL;
    s->slot_gen[se->slot]++;
    if (s->nfree == s->free_cap) {
        size_t cap = s->free_cap ? s->free_cap * 2 : 256;
        uint32_t *nf = realloc(s->free_slots, cap * sizeof(*nf));
        if (!nf) return; /* the slot is leaked for reuse, the table stays correct */
        s->free_slots = nf;
        s->free_cap = cap;
    }
    s->free_slots[s->nfree++] = se->slot;
}

static struct series *create_series(struct store *s, const struct re_label *l, size_t n,
                                    uint64_t h) {
    struct series *se = calloc(1, sizeof(*se) + n * sizeof(struct re_label));
    if (!se) return NULL;
    se->hash = h;
    se->nlabels = (uint32_t)n;
    s->label_bytes += sizeof(*se) + n * sizeof(struct re_label);
    if (take_slot(s, se)) {
        free(se);
        s->label_bytes -= sizeof(*se) + n * sizeof(struct re_label);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        se->labels[i].name = intern(s, l[i].name);
        se->labels[i].value = intern(s, l[i].value);
        if (!se->labels[i].name || !se->labels[i].value) goto fail;
    }
    const char *name = "";
    for (size_t i = 0; i < n; i++)
        if (strcmp(se->labels[i].name, "__name__") == 0) name = se->labels[i].value;
    /* Series without __name__ are listed under the store's own interned "". */
    const char *iname = *name ? name : s->empty;
    struct postings *p = find_postings(s, iname);
    if (!p) {
        p = calloc(1, sizeof(*p));
        if (!p) goto fail;
        p->name = iname;
        p->next = s->post[ptr_hash(iname) & s->post_mask];
        s->post[ptr_hash(iname) & s->post_mask] = p;
        s->label_bytes += sizeof(*p);
        if (++s->npost > s->post_mask + 1) rehash_postings(s);
    }
    se->pnext = p->first;
    if (p->first) p->first->pprev = se;
    p->first = se;
    p->count++;
    se->hnext = s->tab[h & s->tab_mask];
    s->tab[h & s->tab_mask] = se;
    s->created_total++;
    if (++s->nseries > s->tab_mask + 1) rehash_series(s);
    return se;
fail:
    release_slot(s, se);
    series_destroy(s, se);
    return NULL;
}

static uint64_t series_ref(const struct store *s, const struct series *se) {
    return (uint64_t)s->slot_gen[se->slot] << 32 | se->slot;
}

/* The live series a ref names, or NULL (0, stale, or never handed out). */
static struct series *ref_series(const struct store *s, uint64_t ref) {
    uint32_t slot = (uint32_t)ref, gen = (uint32_t)(ref >> 32);
    return ref && slot < s->nslots && s->slot_gen[slot] == gen ? s->slots[slot] : NULL;
}

static const char *series_name(const struct series *se) {
    return metric_name(se->labels, se->nlabels);
}

static void remove_series(struct store *s, struct series *se) {
    struct series **pp = &s->tab[se->hash & s->tab_mask];
    while (*pp != se)
        pp = &(*pp)->hnext;
    *pp = se->hnext;
    /* Names are interned, so the postings entry is found by pointer. */
    const char *name = series_name(se);
    struct postings *p = find_postings(s, *name ? name : s->empty);
    if (p) {
        if (se->pprev)
            se->pprev->pnext = se->pnext;
        else
            p->first = se->pnext;
        if (se->pnext) se->pnext->pprev = se->pprev;
        if (--p->count == 0) {
            struct postings **qq = &s->post[ptr_hash(p->name) & s->post_mask];
            while (*qq != p)
                qq = &(*qq)->next;
            *qq = p->next;
            s->label_bytes -= sizeof(*p);
            s->npost--;
            free(p);
        }
    }
    s->nseries--;
    s->removed_total++;
    release_slot(s, se);
    series_destroy(s, se);
}

/* ---- appending ------------------------------------------------------------------------------- */

static bool newest(const struct series *se, int64_t *ts, double *v, bool *is_hist) {
    const struct chunk *c = se->tail;
    if (!c || !c->n) return false;
    *ts = c->ts[c->n - 1];
    *v = c->v[c->n - 1];
    *is_hist = c->h && c->h[c->n - 1];
    return true;
}

static struct re_hist *hist_copy(const struct re_hist *h) {
    size_t sz = sizeof(*h) + (h->npspans + h->nnspans) * sizeof(struct re_span) +
                (h->npbuckets + h->nnbuckets + h->ncustom) * sizeof(double);
    struct re_hist *c = malloc(sz);
    if (!c) return NULL;
    *c = *h;
    char *p = (char *)(c + 1);
#define COPY_ARR(field, cnt, type)                                                                 \
    do {                                                                                           \
        c->field = (const type *)(void *)p;                                                        \
        if (h->cnt) memcpy(p, h->field, h->cnt * sizeof(type));                                    \
        p += h->cnt * sizeof(type);                                                                \
    } while (0)
    COPY_ARR(pbuckets, npbuckets, double);
    COPY_ARR(nbuckets, nnbuckets, double);
    COPY_ARR(custom_values, ncustom, double);
    COPY_ARR(pspans, npspans, struct re_span);
    COPY_ARR(nspans, nnspans, struct re_span);
#undef COPY_ARR
    return c;
}

static struct chunk *chunk_new(struct store *s, uint8_t step, bool hist) {
    uint16_t cap = chunk_caps[step];
    size_t sz = sizeof(struct chunk) + (size_t)cap * (16 + (hist ? 8 : 0));
    struct chunk *c = malloc(sz);
    if (!c) return NULL;
    c->next = NULL;
    c->n = 0;
    c->cap = cap;
    c->step = step;
    c->ts = (int64_t *)(void *)(c + 1);
    c->v = (double *)(void *)(c->ts + cap);
    c->h = hist ? (struct re_hist **)(void *)(c->v + cap) : NULL;
    s->sample_bytes += sz;
    return c;
}

/* Appends one sample whose order has been checked. */
static int series_push(struct store *s, struct series *se, int64_t ts, double v,
                       const struct re_hist *h) {
    struct chunk *t = se->tail;
    if (!h && t && t->n && t->ts[t->n - 1] == ts && !(t->h && t->h[t->n - 1])) {
        /* Same timestamp as the newest float sample: only STORE_LAST_WINS gets here. */
        t->v[t->n - 1] = v;
        s->appended_total++;
        return 0;
    }
    if (!t || t->n == t->cap || (h && !t->h)) {
        uint8_t step = 0;
        if (t) step = t->step + (t->n == t->cap && t->step + 1 < (int)(sizeof(chunk_caps) / 2));
        struct chunk *c = chunk_new(s, step, h != NULL);
        if (!c) return -ENOMEM;
        if (t)
            t->next = c;
        else
            se->head = c;
        se->tail = t = c;
    }
    struct re_hist *hc = NULL;
    if (h) {
        hc = hist_copy(h);
        if (!hc) return -ENOMEM;
        s->nhist++;
    }
    t->ts[t->n] = ts;
    t->v[t->n] = h ? NAN : v;
    if (t->h) t->h[t->n] = hc;
    t->n++;
    s->nsamples++;
    s->appended_total++;
    return 0;
}

enum order { ORDER_OK, ORDER_SAME, ORDER_OOO, ORDER_DUP };

/* With STORE_LAST_WINS a float at the newest timestamp replaces the newest float. */
static bool last_wins(unsigned flags, enum order o, bool last_hist, const struct re_hist *h) {
    return (flags & STORE_LAST_WINS) && o == ORDER_DUP && !last_hist && !h;
}

/* The newest timestamp accepted now (INT64_MAX without a limit). */
static int64_t max_ts(const struct store *s) {
    if (s->opts.future_ms <= 0) return INT64_MAX;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + s->opts.future_ms;
}

static enum order check_order(int64_t last_ts, double last_v, bool last_hist, int64_t ts, double v,
                              const struct re_hist *h) {
    if (ts > last_ts) return ORDER_OK;
    if (ts < last_ts) return ORDER_OOO;
    /* Same timestamp: Prometheus ignores a bit-identical float, else a duplicate error. */
    if (!h && !last_hist && memcmp(&v, &last_v, sizeof(v)) == 0) return ORDER_SAME;
    return ORDER_DUP;
}

/* Names for the touch hook, handed over in batches of TOUCH_BATCH. */
#define TOUCH_BATCH 64
struct touched {
    const char *v[TOUCH_BATCH];
    size_t n;
};

/* Adds name unless it repeats the previous one (batches list a family's samples together). */
static void touched_add(struct store *s, struct touched *t, const char *name) {
    if (t->n && (t->v[t->n - 1] == name || strcmp(t->v[t->n - 1], name) == 0)) return;
    if (t->n == TOUCH_BATCH) {
        s->touch(s->touch_arg, t->v, t->n);
        t->n = 0;
    }
    t->v[t->n++] = name;
}

static void touched_flush(struct store *s, struct touched *t) {
    if (t->n) s->touch(s->touch_arg, t->v, t->n);
    t->n = 0;
}

static int touch_names(struct store *s, const struct store_sample *b, size_t n) {
    if (!s->touch) return 0;
    struct touched t;
    t.n = 0;
    for (size_t i = 0; i < n; i++)
        touched_add(s, &t, metric_name(b[i].labels, b[i].nlabels));
    touched_flush(s, &t);
    return 0;
}

/* Atomic batches: check every sample against its series' newest sample and the batch's
 * earlier samples, and the series limit, before anything is stored. The lookups are kept
 * (pt/slot in the store's scratch) so the commit pass neither hashes nor searches again. */
static int check_batch(struct store *s, const struct store_sample *b, size_t n, unsigned flags,
                       struct store_result *res, const uint64_t *refs) {
    size_t cap = 16;
    while (cap < n * 2)
        cap *= 2;
    if (cap > s->pt_cap) {
        struct pend *pt = realloc(s->pt, cap * sizeof(*pt));
        if (!pt) return -ENOMEM;
        s->pt = pt;
        s->pt_cap = cap;
    }
    if (n > s->slot_cap) {
        size_t *slot = realloc(s->slot, n * sizeof(*slot));
        if (!slot) return -ENOMEM;
        s->slot = slot;
        s->slot_cap = n;
    }
    struct pend *pt = s->pt;
    size_t *slot = s->slot;
    memset(pt, 0, cap * sizeof(*pt));
    size_t created = 0;
    int64_t limit = max_ts(s);
    for (size_t i = 0; i < n; i++) {
        if (b[i].ts > limit) {
            res->too_new++;
            res->first_bad = i;
            return -ERANGE;
        }
        struct series *known = refs ? ref_series(s, refs[i]) : NULL;
        uint64_t h = known ? known->hash : labels_hash(b[i].labels, b[i].nlabels);
        size_t j = h & (cap - 1);
        for (;; j = (j + 1) & (cap - 1)) {
            struct pend *p = &pt[j];
            if (!p->has) {
                p->has = true;
                p->hash = h;
                p->first = i;
                p->se = known ? known : find_series(s, b[i].labels, b[i].nlabels, h);
                p->ts = INT64_MIN;
                if (p->se)
                    (void)newest(p->se, &p->ts, &p->v, &p->hist);
                else
                    created++;
                break;
            }
            if (p->hash == h && known) {
                /* An existing series: the entry is it iff it was found (by ref or labels). */
                if (p->se == known) break;
            } else if (p->hash == h) {
                const struct store_sample *f = &b[p->first];
                size_t k = 0;
                if (f->nlabels == b[i].nlabels)
                    for (; k < f->nlabels; k++)
                        if (strcmp(f->labels[k].name, b[i].labels[k].name) ||
                            strcmp(f->labels[k].value, b[i].labels[k].value))
                            break;
                if (f->nlabels == b[i].nlabels && k == f->nlabels) break;
            }
        }
        slot[i] = j;
        struct pend *p = &pt[j];
        if (p->ts != INT64_MIN) {
            enum order o = check_order(p->ts, p->v, p->hist, b[i].ts, b[i].v, b[i].h);
            if (last_wins(flags, o, p->hist, b[i].h)) o = ORDER_OK;
            if (o == ORDER_SAME) {
                slot[i] = SIZE_MAX; /* accepted, nothing to store */
                continue;
            }
            if (o != ORDER_OK) {
                if (o == ORDER_OOO)
                    res->out_of_order++;
                else
                    res->duplicates++;
                res->first_bad = i;
                return -ERANGE;
            }
        }
        p->ts = b[i].ts;
        p->v = b[i].v;
        p->hist = b[i].h != NULL;
    }
    if (s->nseries + created > s->opts.max_series) {
        s->limit_hits_total++;
        return -ENOSPC;
    }
    return 0;
}

/* Commit pass of an atomic batch: everything was checked, only memory can fail. */
static int commit_checked(struct store *s, const struct store_sample *b, size_t n,
                          struct store_result *res, uint64_t *refs) {
    for (size_t i = 0; i < n; i++) {
        if (s->slot[i] == SIZE_MAX) {
            if (refs) refs[i] = 0;
            continue;
        }
        struct pend *p = &s->pt[s->slot[i]];
        if (!p->se) {
            p->se = create_series(s, b[i].labels, b[i].nlabels, p->hash);
            if (!p->se) return -ENOMEM;
            res->new_series++;
        }
        if (series_push(s, p->se, b[i].ts, b[i].v, b[i].h)) return -ENOMEM;
        if (refs) refs[i] = series_ref(s, p->se);
        res->appended++;
    }
    return 0;
}

int store_append_batch(struct store *s, const struct store_sample *b, size_t n, unsigned flags,
                       struct store_result *res) {
    return store_append_batch_refs(s, b, n, flags, res, NULL);
}

int store_append_batch_refs(struct store *s, const struct store_sample *b, size_t n, unsigned flags,
                            struct store_result *res, uint64_t *refs) {
    struct store_result dummy;
    if (!res) res = &dummy;
    memset(res, 0, sizeof(*res));
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    if (flags & STORE_ATOMIC) {
        rc = check_batch(s, b, n, flags, res, refs);
        if (rc) {
            res->rejected = true;
            s->ooo_total += res->out_of_order;
            s->dup_total += res->duplicates;
            s->too_new_total += res->too_new;
            goto out;
        }
        rc = commit_checked(s, b, n, res, refs);
        goto touched;
    }
    int64_t limit = max_ts(s);
    for (size_t i = 0; i < n; i++) {
        struct series *se = refs ? ref_series(s, refs[i]) : NULL;
        if (refs) refs[i] = 0;
        if (b[i].ts > limit) {
            res->too_new++, s->too_new_total++;
            continue;
        }
        uint64_t h = se ? se->hash : labels_hash(b[i].labels, b[i].nlabels);
        if (!se) se = find_series(s, b[i].labels, b[i].nlabels, h);
        if (!se) {
            if (s->nseries >= s->opts.max_series) {
                s->limit_hits_total++;
                rc = -ENOSPC;
                continue;
            }
            se = create_series(s, b[i].labels, b[i].nlabels, h);
            if (!se) {
                rc = -ENOMEM;
                break;
            }
            res->new_series++;
        }
        int64_t lts;
        double lv;
        bool lh;
        if (newest(se, &lts, &lv, &lh)) {
            enum order o = check_order(lts, lv, lh, b[i].ts, b[i].v, b[i].h);
            if (last_wins(flags, o, lh, b[i].h)) o = ORDER_OK;
            if (o == ORDER_SAME) continue;
            if (o != ORDER_OK) {
                if (o == ORDER_OOO)
                    res->out_of_order++, s->ooo_total++;
                else
                    res->duplicates++, s->dup_total++;
                continue;
            }
        }
        if (series_push(s, se, b[i].ts, b[i].v, b[i].h)) {
            rc = -ENOMEM;
            break;
        }
        if (refs) refs[i] = series_ref(s, se);
        res->appended++;
    }
touched:
    touch_names(s, b, n);
out:
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int store_append(struct store *s, const struct re_label *labels, size_t nlabels, int64_t ts,
                 double v) {
    struct store_sample one = {labels, nlabels, ts, v, NULL};
    return store_append_batch(s, &one, 1, STORE_ATOMIC, NULL);
}

/* ---- references ------------------------------------------------------------------------------ */

int store_ref_get(struct store *s, const struct re_label *labels, size_t nlabels, uint64_t *ref) {
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    uint64_t h = labels_hash(labels, nlabels);
    struct series *se = find_series(s, labels, nlabels, h);
    if (!se) {
        if (s->nseries >= s->opts.max_series) {
            s->limit_hits_total++;
            rc = -ENOSPC;
        } else if (!(se = create_series(s, labels, nlabels, h))) {
            rc = -ENOMEM;
        }
    }
    if (se) *ref = series_ref(s, se);
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

int store_append_refs(struct store *s, const uint64_t *refs, const int64_t *ts, const double *v,
                      size_t n) {
    int rc = 0;
    pthread_rwlock_wrlock(&s->lock);
    int64_t limit = max_ts(s);
    for (size_t i = 0; i < n; i++) {
        if (ts[i] > limit) {
            s->too_new_total++;
            rc = rc ? rc : -ERANGE;
            continue;
        }
        struct series *se = ref_series(s, refs[i]);
        if (!se) {
            rc = rc ? rc : -ENOENT;
            continue;
        }
        int64_t lts;
        double lv;
        bool lh;
        if (newest(se, &lts, &lv, &lh)) {
            enum order o = check_order(lts, lv, lh, ts[i], v[i], NULL);
            if (o == ORDER_SAME) continue;
            if (o != ORDER_OK) {
                if (o == ORDER_OOO)
                    s->ooo_total++;
                else
                    s->dup_total++;
                rc = rc ? rc : -ERANGE;
                continue;
            }
        }
        if (series_push(s, se, ts[i], v[i], NULL)) {
            rc = -ENOMEM;
            break;
        }
    }
    if (s->touch && n) {
        /* Refs carry no names; report each distinct name once per call. */
        struct touched t;
        t.n = 0;
        for (size_t i = 0; i < n; i++) {
            uint32_t slot = (uint32_t)refs[i];
            if (slot >= s->nslots || !s->slots[slot]) continue;
            touched_add(s, &t, series_name(s->slots[slot]));
        }
        touched_flush(s, &t);
    }
    pthread_rwlock_unlock(&s->lock);
    return rc;
}

/* ---- selecting ---------------------------------------------------------------------------------
 */

struct scratch {
    int64_t *ts;
    double *v;
    const struct re_hist **h;
    size_t cap;
};

static int scratch_reserve(struct scratch *sc, size_t n) {
    if (n <= sc->cap) return 0;
    size_t cap = sc->cap ? sc->cap : 256;
    while (cap < n)
        cap *= 2;
    int64_t *ts = realloc(sc->ts, cap * sizeof(*ts));
    if (ts) sc->ts = ts;
    double *v = realloc(sc->v, cap * sizeof(*v));
    if (v) sc->v = v;
    const struct re_hist **h = realloc(sc->h, cap * sizeof(*h));
    if (h) sc->h = h;
    if (!ts || !v || !h) return -ENOMEM;
    sc->cap = cap;
    return 0;
}

static const char *label_value(const struct series *se, const char *name) {
    for (uint32_t i = 0; i < se->nlabels; i++)
        if (strcmp(se->labels[i].name, name) == 0) return se->labels[i].value;
    return NULL;
}

static bool series_matches(const struct series *se, const struct re_matcher *m, size_t nm) {
    for (size_t i = 0; i < nm; i++)
        if (!re_matcher_matches(&m[i], label_value(se, m[i].name))) return false;
    return true;
}

static int visit_series(const struct series *se, int64_t mint, int64_t maxt, re_visit_fn *fn,
                        void *arg, struct scratch *sc) {
    const struct chunk *first = NULL;
    size_t first_off = 0, total = 0, nchunks = 0;
    for (const struct chunk *c = se->head; c; c = c->next) {
        if (!c->n || c->ts[c->n - 1] < mint) continue;
        if (c->ts[0] > maxt) break;
        size_t lo = 0, hi = c->n;
        while (lo < c->n && c->ts[lo] < mint)
            lo++;
        while (hi > lo && c->ts[hi - 1] > maxt)
            hi--;
        if (hi == lo) continue;
        if (!first) {
            first = c;
            first_off = lo;
        }
        total += hi - lo;
        nchunks++;
    }
    if (!total) return 0;
    if (nchunks == 1) {
        const struct re_hist *const *h =
            first->h ? (const struct re_hist *const *)first->h + first_off : null_hists;
        return fn(arg, se->labels, se->nlabels, first->ts + first_off, first->v + first_off, h,
                  total);
    }
    if (scratch_reserve(sc, total)) return -ENOMEM;
    size_t k = 0;
    for (const struct chunk *c = first; c && k < total; c = c->next)
        for (uint16_t i = 0; i < c->n && k < total; i++) {
            if (c->ts[i] < mint || c->ts[i] > maxt) continue;
            sc->ts[k] = c->ts[i];
            sc->v[k] = c->v[i];
            sc->h[k] = c->h ? c->h[i] : NULL;
            k++;
        }
    return fn(arg, se->labels, se->nlabels, sc->ts, sc->v, sc->h, k);
}

/* Visits the newest sample of se in [mint, maxt]. Samples are appended in time order, so
 * the tail chunk holds it unless maxt lies before the tail begins (a query in the past). */
static int visit_last(const struct series *se, int64_t mint, int64_t maxt, re_visit_fn *fn,
                      void *arg) {
    const struct chunk *c = se->tail;
    if (!c || !c->n || c->ts[0] > maxt) {
        const struct chunk *best = NULL;
        for (const struct chunk *k = se->head; k && k->n && k->ts[0] <= maxt; k = k->next)
            best = k;
        c = best;
    }
    if (!c) return 0;
    size_t lo = 0, hi = c->n; /* first index with ts > maxt */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->ts[mid] <= maxt)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == 0 || c->ts[lo - 1] < mint) return 0;
    size_t i = lo - 1;
    const struct re_hist *const *h = c->h ? (const struct re_hist *const *)c->h + i : null_hists;
    return fn(arg, se->labels, se->nlabels, c->ts + i, c->v + i, h, 1);
}

static int visit_one(const struct series *se, int64_t mint, int64_t maxt, bool last,
                     re_visit_fn *fn, void *arg, struct scratch *sc) {
    return last ? visit_last(se, mint, maxt, fn, arg) : visit_series(se, mint, maxt, fn, arg, sc);
}

static int select_ex(struct store *s, const struct re_matcher *m, size_t nm, int64_t mint,
                     int64_t maxt, bool last, re_visit_fn *fn, void *arg) {
    struct scratch sc = {0};
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    const struct re_matcher *byname = NULL;
    for (size_t i = 0; i < nm; i++)
        if (m[i].type == RE_MATCH_EQ && strcmp(m[i].name, "__name__") == 0) byname = &m[i];
    if (byname) {
        const char *iname = lookup_str(s, byname->value);
        struct postings *p = iname ? find_postings(s, iname) : NULL;
        for (struct series *se = p ? p->first : NULL; se && !rc; se = se->pnext)
            if (series_matches(se, m, nm)) rc = visit_one(se, mint, maxt, last, fn, arg, &sc);
    } else {
        for (size_t i = 0; i <= s->tab_mask && !rc; i++)
            for (struct series *se = s->tab[i]; se && !rc; se = se->hnext)
                if (series_matches(se, m, nm)) rc = visit_one(se, mint, maxt, last, fn, arg, &sc);
    }
    pthread_rwlock_unlock(&s->lock);
    free(sc.ts);
    free(sc.v);
    free(sc.h);
    return rc;
}

int store_select(struct store *s, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                 re_visit_fn *fn, void *arg) {
    return select_ex(s, m, nm, mint, maxt, false, fn, arg);
}

int store_select_last(struct store *s, const struct re_matcher *m, size_t nm, int64_t mint,
                      int64_t maxt, re_visit_fn *fn, void *arg) {
    return select_ex(s, m, nm, mint, maxt, true, fn, arg);
}

static int source_select(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint,
                         int64_t maxt, re_visit_fn *fn, void *arg) {
    return store_select(ctx, m, nm, mint, maxt, fn, arg);
}

static int source_select_last(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint,
                              int64_t maxt, re_visit_fn *fn, void *arg) {
    return store_select_last(ctx, m, nm, mint, maxt, fn, arg);
}

void store_source(struct store *s, struct re_source *out) {
    out->select = source_select;
    out->select_last = source_select_last;
    out->ctx = s;
}

/* A set of interned string pointers (open addressing), to list distinct names/values. */
struct ptrset {
    const char **v;
    size_t n, mask;
};

static int ptrset_add(struct ptrset *ps, const char *p) {
    if (!ps->v || ps->n * 2 >= ps->mask + 1) {
        size_t nmask = ps->v ? ps->mask * 2 + 1 : 63;
        const char **nv = calloc(nmask + 1, sizeof(*nv));
        if (!nv) return -ENOMEM;
        for (size_t i = 0; ps->v && i <= ps->mask; i++)
            if (ps->v[i]) {
                size_t j = ptr_hash(ps->v[i]) & nmask;
                while (nv[j])
                    j = (j + 1) & nmask;
                nv[j] = ps->v[i];
            }
        free(ps->v);
        ps->v = nv;
        ps->mask = nmask;
    }
    size_t j = ptr_hash(p) & ps->mask;
    while (ps->v[j] && ps->v[j] != p)
        j = (j + 1) & ps->mask;
    if (!ps->v[j]) {
        ps->v[j] = p;
        ps->n++;
    }
    return 0;
}

/* Collects distinct label names (name == NULL) or values of label `name`, then calls fn
 * for each, all under the read lock (the strings are interned and live while it is held). */
static int visit_distinct(struct store *s, const char *name, int (*fn)(void *arg, const char *str),
                          void *arg) {
    struct ptrset ps = {0};
    int rc = 0;
    pthread_rwlock_rdlock(&s->lock);
    for (size_t i = 0; i <= s->tab_mask && !rc; i++)
        for (struct series *se = s->tab[i]; se && !rc; se = se->hnext) {
            if (name) {
                const char *v = label_value(se, name);
                if (v) rc = ptrset_add(&ps, v);
                continue;
            }
            for (uint32_t l = 0; l < se->nlabels && !rc; l++)
                rc = ptrset_add(&ps, se->labels[l].name);
        }
    for (size_t i = 0; !rc && ps.v && i <= ps.mask; i++)
        if (ps.v[i]) rc = fn(arg, ps.v[i]);
    pthread_rwlock_unlock(&s->lock);
    free(ps.v);
    return rc;
}

int store_label_names(struct store *s, int (*fn)(void *arg, const char *name), void *arg) {
    return visit_distinct(s, NULL, fn, arg);
}

int store_label_values(struct store *s, const char *name, int (*fn)(void *arg, const char *value),
                       void *arg) {
    return visit_distinct(s, name, fn, arg);
}

/* ---- retention ------------------------------------------------------------------------------- */

void store_gc(struct store *s, int64_t now_ms) {
    pthread_rwlock_wrlock(&s->lock);
    int64_t cutoff = now_ms - s->opts.retention_ms;
    for (size_t i = 0; i <= s->tab_mask; i++) {
        for (struct series *se = s->tab[i], *nx; se; se = nx) {
            nx = se->hnext;
            while (se->head && (!se->head->n || se->head->ts[se->head->n - 1] < cutoff)) {
                struct chunk *c = se->head;
                se->head = c->next;
                if (se->tail == c) se->tail = NULL;
                chunk_free(s, c);
            }
            if (!se->head) remove_series(s, se);
        }
    }
    pthread_rwlock_unlock(&s->lock);
}

void store_get_stats(struct store *s, struct store_stats *out) {
    pthread_rwlock_rdlock(&s->lock);
    out->series = s->nseries;
    out->samples = s->nsamples;
    out->hist_samples = s->nhist;
    out->appended_total = s->appended_total;
    out->out_of_order_total = s->ooo_total;
    out->duplicate_total = s->dup_total;
    out->series_limit_hits_total = s->limit_hits_total;
    out->too_new_total = s->too_new_total;
    out->series_created_total = s->created_total;
    out->series_removed_total = s->removed_total;
    out->label_bytes = s->label_bytes;
    out->sample_bytes = s->sample_bytes;
    pthread_rwlock_unlock(&s->lock);
}
