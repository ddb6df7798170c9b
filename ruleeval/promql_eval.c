/* SPDX-License-Identifier: Apache-2.0 */
/* PromQL evaluator: instant and range evaluation over an re_source, as Prometheus 3 does it. */
#include "promql_int.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- arena ------------------------------------------------------------------------------ */

struct achunk {
    struct achunk *next;
    size_t used, cap;
    max_align_t data[];
};

struct lset {
    size_t n;
    uint64_t hash; /* ls_hash's memo, 0 until computed (a set is not changed once hashed) */
    struct re_label l[];
};

struct smp {
    const struct lset *ls;
    double f;
    struct pq_hist *h; /* arena-tracked */
    int64_t t;         /* sample timestamp (for timestamp()) */
    bool drop;
};

struct vec {
    struct smp *s;
    size_t n, cap;
};

struct mser {
    const struct lset *ls;
    int64_t *t;
    double *f;
    struct pq_hist **h;
    size_t n, cap;
    bool drop;
};

struct mat {
    struct mser *s;
    size_t n, cap;
};

struct val {
    enum promql_vtype type;
    double scalar;
    const char *str;
    struct vec v;
    struct mat m; /* for matrix values */
};

struct oser;

struct selcache {
    const struct promql_expr *node;
    int64_t mint, maxt;
    int nneeds;
    bool single; /* instant selector read at exactly one time: keep the last sample only */
    bool stats;  /* decoded as by Prometheus's histogram stats iterator */
    bool loaded;
    struct mat data;
    struct gmemo *gm; /* aggregation nodes: grouping memo across steps (eval_agg) */
};

struct ev {
    struct achunk *arena;
    struct pq_hist **owned;
    size_t nowned, capowned;
    const struct re_source *src;
    const struct promql_opts *o;
    int64_t start, end, interval; /* query range, for @ start()/end() */
    struct selcache *sc;
    size_t nsc, capsc;
    size_t samples;
    jmp_buf jb;
    int err;
    char msg[160];
    char **warn;
    size_t nwarn;
    const char *qsrc;
    bool is_range;
    struct oser *os;
    size_t nos, capos;
    const struct promql_expr *zcall; /* compat_v2: call whose arguments see histograms as 0 */
};

static void fail(struct ev *ev, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
static void fail(struct ev *ev, int err, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ev->msg, sizeof(ev->msg), fmt, ap);
    va_end(ap);
    ev->err = err;
    longjmp(ev->jb, 1);
}

static void *ar_alloc_nz(struct ev *ev, size_t n);

static void *ar_alloc(struct ev *ev, size_t n) {
    void *p = ar_alloc_nz(ev, n);
    memset(p, 0, n);
    return p;
}

/* Arena allocation without zeroing, for memory the caller overwrites at once. */
static void *ar_alloc_nz(struct ev *ev, size_t n) {
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (!ev->arena || ev->arena->cap - ev->arena->used < n) {
        size_t cap = n > 98304 ? n : 98304; /* below glibc's mmap threshold: chunks are reused */
        struct achunk *c = malloc(sizeof(*c) + cap);
        if (!c) fail(ev, -ENOMEM, "out of memory");
        c->next = ev->arena;
        c->used = 0;
        c->cap = cap;
        ev->arena = c;
    }
    void *p = (char *)ev->arena->data + ev->arena->used;
    ev->arena->used += n;
    return p;
}

static char *ar_strdup(struct ev *ev, const char *s) {
    size_t l = strlen(s);
    char *p = ar_alloc_nz(ev, l + 1);
    memcpy(p, s, l + 1);
    return p;
}

static struct pq_hist *track(struct ev *ev, struct pq_hist *h) {
    if (!h) fail(ev, -ENOMEM, "out of memory");
    if (ev->nowned == ev->capowned) {
        size_t nc = ev->capowned ? ev->capowned * 2 : 64;
        struct pq_hist **n = realloc(ev->owned, nc * sizeof(*n));
        if (!n) {
            pq_hist_free(h);
            fail(ev, -ENOMEM, "out of memory");
        }
        ev->owned = n;
        ev->capowned = nc;
    }
    ev->owned[ev->nowned++] = h;
    return h;
}

static struct pq_hist *hdup(struct ev *ev, const struct pq_hist *h) {
    return track(ev, pq_hist_dup(h));
}

static void *grow(struct ev *ev, void *p, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return p;
    size_t nc = *cap ? *cap * 2 : 8;
    while (nc <= n)
        nc *= 2;
    void *np = ar_alloc(ev, nc * elem);
    if (p && *cap) memcpy(np, p, *cap * elem);
    *cap = nc;
    return np;
}

static void vec_push(struct ev *ev, struct vec *v, struct smp s) {
    v->s = grow(ev, v->s, &v->cap, v->n, sizeof(*v->s));
    v->s[v->n++] = s;
}

static void mser_push(struct ev *ev, struct mser *m, int64_t t, double f, struct pq_hist *h) {
    if (m->n >= m->cap) {
        size_t c1 = m->cap, c2 = m->cap, c3 = m->cap;
        m->t = grow(ev, m->t, &c1, m->n, sizeof(*m->t));
        m->f = grow(ev, m->f, &c2, m->n, sizeof(*m->f));
        m->h = grow(ev, m->h, &c3, m->n, sizeof(*m->h));
        m->cap = c1;
    }
    m->t[m->n] = t;
    m->f[m->n] = f;
    m->h[m->n] = h;
    m->n++;
}

static void warn(struct ev *ev, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(struct ev *ev, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (size_t i = 0; i < ev->nwarn; i++)
        if (!strcmp(ev->warn[i], buf)) return;
    char **nw = realloc(ev->warn, (ev->nwarn + 1) * sizeof(char *));
    if (!nw) fail(ev, -ENOMEM, "out of memory");
    ev->warn = nw;
    nw[ev->nwarn] = strdup(buf);
    if (!nw[ev->nwarn]) fail(ev, -ENOMEM, "out of memory");
    ev->nwarn++;
}

static void add_samples(struct ev *ev, size_t n) {
    ev->samples += n;
    if (ev->o->max_samples && ev->samples > ev->o->max_samples)
        fail(ev, -E2BIG,
             "query processing would load too many samples into memory in query execution");
}

/* ---- label sets ------------------------------------------------------------------------- */

static const char *ls_get(const struct lset *ls, const char *name) {
    for (size_t i = 0; i < ls->n; i++)
        if (!strcmp(ls->l[i].name, name)) return ls->l[i].value;
    return NULL;
}

static struct lset *ls_new(struct ev *ev, size_t n) {
    struct lset *l = ar_alloc(ev, sizeof(*l) + n * sizeof(struct re_label));
    l->n = 0;
    l->hash = 0;
    return l;
}

/* Returns a copy of ls with name set to value (value NULL or "" deletes). */
static const struct lset *ls_set(struct ev *ev, const struct lset *ls, const char *name,
                                 const char *value) {
    struct lset *o = ls_new(ev, ls->n + 1);
    bool done = false;
    for (size_t i = 0; i < ls->n; i++) {
        int c = strcmp(ls->l[i].name, name);
        if (c == 0) {
            done = true;
            if (value && value[0]) o->l[o->n++] = (struct re_label){ls->l[i].name, value};
            continue;
        }
        if (c > 0 && !done) {
            done = true;
            if (value && value[0]) o->l[o->n++] = (struct re_label){name, value};
        }
        o->l[o->n++] = ls->l[i];
    }
    if (!done && value && value[0]) o->l[o->n++] = (struct re_label){name, value};
    return o;
}

static const struct lset *ls_del(struct ev *ev, const struct lset *ls, const char *name) {
    if (!ls_get(ls, name)) return ls;
    return ls_set(ev, ls, name, NULL);
}

static bool in_list(char **l, size_t n, const char *s) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(l[i], s)) return true;
    return false;
}

/* Keep only (keep=true) or drop the listed names. */
static const struct lset *ls_filter(struct ev *ev, const struct lset *ls, char **names, size_t n,
                                    bool keep) {
    struct lset *o = ls_new(ev, ls->n);
    for (size_t i = 0; i < ls->n; i++)
        if (in_list(names, n, ls->l[i].name) == keep) o->l[o->n++] = ls->l[i];
    return o;
}

static int ls_cmp(const struct lset *a, const struct lset *b) {
    size_t n = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a->l[i].name, b->l[i].name);
        if (c) return c;
        c = strcmp(a->l[i].value, b->l[i].value);
        if (c) return c;
    }
    return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
}

/* Renders a label set as Prometheus's Labels.String(): {a="b", c="d"}. */
static void ls_str(const struct lset *ls, char *buf, size_t len) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, len - o, "{");
    for (size_t i = 0; i < ls->n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s=\"%s\"", i ? ", " : "", ls->l[i].name,
                              ls->l[i].value);
    if (o < len) snprintf(buf + o, len - o, "}");
}

/* ---- hash map (string key -> index) -------------------------------------------------------- */

struct hmap {
    struct hent {
        const char *k;
        size_t kl;
        uint64_t h;
        size_t v;
    } * e;
    size_t cap, n;
};

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Looks up key; if absent inserts with value *v (and returns false), else sets *v. */
static bool hm_get_or_put(struct ev *ev, struct hmap *m, const char *k, size_t kl, size_t *v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 8; /* most groupings have few keys */
        struct hent *ne = ar_alloc(ev, nc * sizeof(*ne));
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].k) {
                size_t j = m->e[i].h & (nc - 1);
                while (ne[j].k)
                    j = (j + 1) & (nc - 1);
                ne[j] = m->e[i];
            }
        m->e = ne;
        m->cap = nc;
    }
    uint64_t h = fnv(k, kl);
    size_t j = h & (m->cap - 1);
    while (m->e[j].k) {
        if (m->e[j].h == h && m->e[j].kl == kl && !memcmp(m->e[j].k, k, kl)) {
            *v = m->e[j].v;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    char *kc = ar_alloc(ev, kl + 1);
    memcpy(kc, k, kl);
    m->e[j] = (struct hent){kc, kl, h, *v};
    m->n++;
    return false;
}

/* Map keyed by whole label sets (hash + ls_cmp), no key building. */
struct lmap {
    struct lent {
        const struct lset *ls;
        uint64_t h;
        size_t v;
    } * e;
    size_t cap, n;
};

static uint64_t ls_hash(const struct lset *ls) {
    if (ls->hash) return ls->hash;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < ls->n; i++) {
        for (const char *p = ls->l[i].name; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = ls->l[i].value; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xfe) * 1099511628211ULL;
    }
    h |= 1; /* never 0, the memo's empty value */
    ((struct lset *)ls)->hash = h;
    return h;
}

static int ls_cmp(const struct lset *a, const struct lset *b);

static bool lm_get_or_put(struct ev *ev, struct lmap *m, const struct lset *ls, size_t *v) {
    if ((m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        struct lent *ne = ar_alloc(ev, nc * sizeof(*ne));
        for (size_t i = 0; i < m->cap; i++)
            if (m->e[i].ls) {
                size_t j = m->e[i].h & (nc - 1);
                while (ne[j].ls)
                    j = (j + 1) & (nc - 1);
                ne[j] = m->e[i];
            }
        m->e = ne;
        m->cap = nc;
    }
    uint64_t h = ls_hash(ls);
    size_t j = h & (m->cap - 1);
    while (m->e[j].ls) {
        if (m->e[j].h == h && (m->e[j].ls == ls || ls_cmp(m->e[j].ls, ls) == 0)) {
            *v = m->e[j].v;
            return true;
        }
        j = (j + 1) & (m->cap - 1);
    }
    m->e[j] = (struct lent){ls, h, *v};
    m->n++;
    return false;
}

struct kbuf {
    char *p;
    size_t n, cap;
};

static void kb_add(struct ev *ev, struct kbuf *b, const char *s) {
    size_t l = strlen(s) + 1;
    if (b->n + l > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 256) + l;
        char *np = ar_alloc(ev, nc);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, l);
    b->n += l;
}

/* Key of a label set restricted to names (on=true) or without names (+__name__ if
 * drop_name). */
static void sig_key(struct ev *ev, struct kbuf *b, const struct lset *ls, char **names, size_t n,
                    bool on, bool drop_name) {
    b->n = 0;
    for (size_t i = 0; i < ls->n; i++) {
        bool listed = in_list(names, n, ls->l[i].name);
        if (on ? !listed : (listed || (drop_name && !strcmp(ls->l[i].name, "__name__")))) continue;
        kb_add(ev, b, ls->l[i].name);
        kb_add(ev, b, ls->l[i].value);
    }
    if (b->n == 0) kb_add(ev, b, "");
}

/* ---- selection ---------------------------------------------------------------------------- */

static int64_t at_of(struct ev *ev, const struct promql_expr *e) {
    switch (e->at_kind) {
    case PQ_AT_START:
        return ev->start;
    case PQ_AT_END:
        return ev->end;
    default:
        return e->at;
    }
}

static struct selcache *cache_for(struct ev *ev, const struct promql_expr *n) {
    for (size_t i = 0; i < ev->nsc; i++)
        if (ev->sc[i].node == n) return &ev->sc[i];
    if (ev->nsc == ev->capsc) {
        size_t nc = ev->capsc ? ev->capsc * 2 : 8;
        struct selcache *s = realloc(ev->sc, nc * sizeof(*s));
        if (!s) fail(ev, -ENOMEM, "out of memory");
        ev->sc = s;
        ev->capsc = nc;
    }
    struct selcache *c = &ev->sc[ev->nsc++];
    memset(c, 0, sizeof(*c));
    c->node = n;
    c->mint = INT64_MAX;
    c->maxt = INT64_MIN;
    return c;
}

/* Records that selector n needs data for evaluation times [s,e] and lookback/range r. */
static void need(struct ev *ev, const struct promql_expr *n, int64_t s, int64_t e, int64_t r,
                 bool instant_sel) {
    if (n->at_kind) {
        s = e = at_of(ev, n);
    }
    bool single = s == e && instant_sel;
    s -= n->offset + r;
    e -= n->offset;
    struct selcache *c = cache_for(ev, n);
    c->single = c->nneeds++ == 0 ? single : (c->single && single && e == c->maxt);
    if (!instant_sel) c->single = false;
    if (s < c->mint) c->mint = s;
    if (e > c->maxt) c->maxt = e;
}

/* Subquery step times for evaluation time ts: returns first step and count. */
static void subq_times(struct ev *ev, const struct promql_expr *e, int64_t ts, int64_t *first,
                       int64_t *last, int64_t *step) {
    int64_t st = e->step ? e->step : 60000;
    if (e->at_kind) ts = at_of(ev, e);
    int64_t end = ts - e->offset;
    int64_t start = end - e->range;
    /* align to absolute multiples of step; window is left-open */
    int64_t s = start - (((start % st) + st) % st);
    if (s <= start) s += st;
    if (ev->o->compat_v2 && start % st == 0) s = start;
    *first = s;
    *last = end;
    *step = st;
}

/* stats: inside histogram_count/sum/avg (not through a subquery or a quantile/fraction), where
 * Prometheus decodes histograms with its stats iterator that derives reset hints on the fly. */
static void prep_ex(struct ev *ev, const struct promql_expr *e, int64_t s, int64_t t, bool stats) {
    if (!e) return;
    switch (e->kind) {
    case PQ_VSEL:
        need(ev, e, s, t, ev->o->lookback_ms, !stats);
        if (stats) cache_for(ev, e)->stats = true;
        return;
    case PQ_MSEL:
        need(ev, e->a, s, t, e->range, false);
        if (stats) cache_for(ev, e->a)->stats = true;
        return;
    case PQ_SUBQ: {
        int64_t f1, l1, st, f2, l2;
        subq_times(ev, e, s, &f1, &l1, &st);
        subq_times(ev, e, t, &f2, &l2, &st);
        prep_ex(ev, e->a, f1 - st, l2, false);
        return;
    }
    case PQ_CALL:
        if (e->fn->id == F_HCOUNT || e->fn->id == F_HSUM || e->fn->id == F_HAVG) stats = true;
        if (e->fn->id == F_HQUANTILE || e->fn->id == F_HFRACTION) stats = false;
        break;
    default:
        break;
    }
    prep_ex(ev, e->a, s, t, stats);
    prep_ex(ev, e->b, s, t, stats);
    prep_ex(ev, e->param, s, t, stats);
    for (size_t i = 0; i < e->nargs; i++)
        prep_ex(ev, e->args[i], s, t, stats);
}

static void prep(struct ev *ev, const struct promql_expr *e, int64_t s, int64_t t) {
    prep_ex(ev, e, s, t, false);
}

/* The stats iterator's hint for sample j of s: unknown hints become reset/not_reset by
 * comparison with the previous histogram sample (from index lo on). */
static struct pq_hist *stats_hint(struct ev *ev, const struct mser *s, size_t j, size_t lo) {
    struct pq_hist *h = s->h[j];
    if (!h || h->hint != RE_HINT_UNKNOWN || j <= lo || !s->h[j - 1]) return h;
    /* A shallow copy with its own hint, in the arena: the buckets stay h's (owned and freed
     * with it). Histograms are copied before any change, so none is written through it. */
    struct pq_hist *c = ar_alloc_nz(ev, sizeof(*c));
    *c = *h;
    c->hint = pq_hist_detect_reset(h, s->h[j - 1]) ? RE_HINT_RESET : RE_HINT_NOT_RESET;
    return c;
}

struct load_ctx {
    struct ev *ev;
    struct mat *m;
    bool last_only;
};

static int load_visit(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                      const double *vals, const struct re_hist *const *hists, size_t n) {
    struct load_ctx *c = arg;
    struct ev *ev = c->ev;
    struct mat *m = c->m;
    if (c->last_only && n > 1) {
        ts += n - 1;
        vals += n - 1;
        if (hists) hists += n - 1;
        n = 1;
    }
    m->s = grow(ev, m->s, &m->cap, m->n, sizeof(*m->s));
    struct mser *se = &m->s[m->n++];
    memset(se, 0, sizeof(*se));
    /* the label set and its strings in one arena block */
    size_t bytes = sizeof(struct lset) + nlabels * sizeof(struct re_label);
    size_t lens[2 * 64];
    for (size_t i = 0; i < nlabels; i++) {
        size_t nl = strlen(labels[i].name) + 1, vl = strlen(labels[i].value) + 1;
        if (i < 64) {
            lens[2 * i] = nl;
            lens[2 * i + 1] = vl;
        }
        bytes += nl + vl;
    }
    struct lset *ls = ar_alloc_nz(ev, bytes);
    char *sp = (char *)(ls->l + nlabels);
    for (size_t i = 0; i < nlabels; i++) {
        size_t nl = i < 64 ? lens[2 * i] : strlen(labels[i].name) + 1;
        size_t vl = i < 64 ? lens[2 * i + 1] : strlen(labels[i].value) + 1;
        memcpy(sp, labels[i].name, nl);
        ls->l[i].name = sp;
        sp += nl;
        memcpy(sp, labels[i].value, vl);
        ls->l[i].value = sp;
        sp += vl;
    }
    ls->n = nlabels;
    ls->hash = 0;
    se->ls = ls;
    se->t = ar_alloc_nz(ev, (n ? n : 1) * sizeof(int64_t));
    se->f = ar_alloc_nz(ev, (n ? n : 1) * sizeof(double));
    se->h = ar_alloc_nz(ev, (n ? n : 1) * sizeof(*se->h));
    se->cap = n;
    memcpy(se->t, ts, n * sizeof(int64_t));
    memcpy(se->f, vals, n * sizeof(double));
    for (size_t i = 0; i < n; i++)
        se->h[i] = hists && hists[i] ? track(ev, pq_hist_from_re(hists[i])) : NULL;
    se->n = n;
    return 0;
}

static struct mat *selected(struct ev *ev, const struct promql_expr *n) {
    struct selcache *c = cache_for(ev, n);
    if (!c->loaded) {
        c->loaded = true;
        if (c->mint > c->maxt) {
            c->mint = c->maxt = 0;
        }
        struct load_ctx lc = {ev, &c->data, c->single};
        int rc =
            c->single && ev->src->select_last
                ? ev->src->select_last(ev->src->ctx, n->m, n->nm, c->mint, c->maxt, load_visit, &lc)
                : ev->src->select(ev->src->ctx, n->m, n->nm, c->mint, c->maxt, load_visit, &lc);
        if (rc < 0 && rc != -ENOMEM) fail(ev, rc, "storage select failed");
        if (rc == -ENOMEM) fail(ev, rc, "out of memory");
        c = cache_for(ev, n);
    }
    return &c->data;
}

/* Index of first sample with t > x (strict) or t >= x. */
static size_t lower(const int64_t *t, size_t n, int64_t x, bool strict) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strict ? t[mid] <= x : t[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* ---- evaluation --------------------------------------------------------------------------- */

static struct val eval(struct ev *ev, const struct promql_expr *e, int64_t ts);

static struct val vval(void) {
    struct val v;
    memset(&v, 0, sizeof(v));
    v.type = PROMQL_VECTOR;
    return v;
}

static struct val eval_vsel(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    struct mat *m = selected(ev, e);
    bool stats = cache_for(ev, e)->stats;
    struct val r = vval();
    int64_t ref = (e->at_kind ? at_of(ev, e) : ts) - e->offset;
    int64_t from = ref - ev->o->lookback_ms;
    for (size_t i = 0; i < m->n; i++) {
        struct mser *s = &m->s[i];
        size_t j = lower(s->t, s->n, ref, true); /* first > ref */
        if (j == 0) continue;
        j--;
        if (ev->o->compat_v2 ? s->t[j] < from : s->t[j] <= from) continue;
        if (!s->h[j] && re_is_stale(s->f[j])) continue;
        struct pq_hist *h = stats ? stats_hint(ev, s, j, 0) : s->h[j];
        vec_push(ev, &r.v, (struct smp){s->ls, s->f[j], h, s->t[j], false});
    }
    add_samples(ev, r.v.n);
    return r;
}

/* Window of samples for one series: pointers into the series' arrays. */
struct win {
    const struct lset *ls;
    const int64_t *t;
    const double *f;
    struct pq_hist *const *h;
    size_t n;
    bool drop;
    int64_t *tbuf; /* for filtering stale markers */
};

/* Filters stale markers out of s[a..b) into arena copies. */
static void make_win(struct ev *ev, struct win *w, const struct mser *s, size_t a, size_t b) {
    bool stale = false;
    for (size_t i = a; i < b; i++)
        if (!s->h[i] && re_is_stale(s->f[i])) stale = true;
    w->ls = s->ls;
    w->drop = s->drop;
    if (!stale) {
        w->t = s->t + a;
        w->f = s->f + a;
        w->h = s->h + a;
        w->n = b - a;
        return;
    }
    int64_t *t = ar_alloc(ev, (b - a + 1) * sizeof(*t));
    double *f = ar_alloc(ev, (b - a + 1) * sizeof(*f));
    struct pq_hist **h = ar_alloc(ev, (b - a + 1) * sizeof(*h));
    size_t k = 0;
    for (size_t i = a; i < b; i++) {
        if (!s->h[i] && re_is_stale(s->f[i])) continue;
        t[k] = s->t[i];
        f[k] = s->f[i];
        h[k] = s->h[i];
        k++;
    }
    w->t = t;
    w->f = f;
    w->h = h;
    w->n = k;
}

/* Prometheus 2.42 stores a native histogram sample with the float value 0 beside it, and all
 * but a few functions and aggregations (rate, increase, delta, histogram_*, sum, sort, +)
 * read only that float: in compat_v2 those see each histogram sample as the float 0. */
static void v2_hist_zero_wins(struct ev *ev, struct win *w, size_t nw) {
    for (size_t i = 0; i < nw; i++) {
        bool any = false;
        for (size_t k = 0; k < w[i].n; k++)
            any |= w[i].h[k] != NULL;
        if (!any) continue;
        double *f = ar_alloc_nz(ev, (w[i].n + 1) * sizeof(*f));
        struct pq_hist **h = ar_alloc(ev, (w[i].n + 1) * sizeof(*h));
        for (size_t k = 0; k < w[i].n; k++)
            f[k] = w[i].h[k] ? 0 : w[i].f[k];
        w[i].f = f;
        w[i].h = h;
    }
}

static void v2_hist_zero(struct ev *ev, struct vec *v) {
    for (size_t i = 0; i < v->n; i++)
        if (v->s[i].h) {
            struct vec o = {0};
            for (size_t j = 0; j < v->n; j++) {
                struct smp x = v->s[j];
                if (x.h) {
                    x.h = NULL;
                    x.f = 0;
                }
                vec_push(ev, &o, x);
            }
            *v = o;
            return;
        }
}

/* Functions that read histogram samples in 2.42 (see v2_hist_zero_wins). */
static bool v2_reads_hists(int id) {
    switch (id) {
    case F_RATE:
    case F_INCREASE:
    case F_DELTA:
    case F_HQUANTILE:
    case F_HCOUNT:
    case F_HSUM:
    case F_HFRACTION:
    case F_SORT:
    case F_SORT_DESC:
    case F_TIMESTAMP:
    case F_ABSENT:
    case F_ABSENT_OT:
    case F_COUNT_OT:
    case F_PRESENT_OT:
        return true;
    }
    return false;
}

/* Evaluates a range-vector expression at ts into windows; *range_out = range ms. */
static struct win *eval_windows(struct ev *ev, const struct promql_expr *e, int64_t ts, size_t *nw,
                                int64_t *range_out, int64_t *rend_out) {
    while (e->kind == PQ_PAREN)
        e = e->a;
    struct mat *m;
    int64_t ref, range;
    struct mat tmp = {0};
    bool stats_sel = false;
    if (e->kind == PQ_MSEL) {
        const struct promql_expr *vs = e->a;
        m = selected(ev, vs);
        stats_sel = cache_for(ev, vs)->stats;
        ref = (vs->at_kind ? at_of(ev, vs) : ts) - vs->offset;
        range = e->range;
    } else if (e->kind == PQ_SUBQ) {
        int64_t first, last, step;
        subq_times(ev, e, ts, &first, &last, &step);
        struct hmap idx = {0};
        struct kbuf kb = {0};
        for (int64_t t = first; t <= last; t += step) {
            struct val v = eval(ev, e->a, t);
            if (v.type == PROMQL_SCALAR) {
                v.type = PROMQL_VECTOR;
                memset(&v.v, 0, sizeof(v.v));
                struct lset *ls = ls_new(ev, 0);
                vec_push(ev, &v.v, (struct smp){ls, v.scalar, NULL, t, false});
            }
            for (size_t i = 0; i < v.v.n; i++) {
                struct smp *s = &v.v.s[i];
                sig_key(ev, &kb, s->ls, NULL, 0, false, false);
                size_t k = tmp.n;
                if (!hm_get_or_put(ev, &idx, kb.p, kb.n, &k)) {
                    tmp.s = grow(ev, tmp.s, &tmp.cap, tmp.n, sizeof(*tmp.s));
                    memset(&tmp.s[tmp.n], 0, sizeof(tmp.s[0]));
                    tmp.s[tmp.n].ls = s->ls;
                    tmp.n++;
                }
                tmp.s[k].drop = tmp.s[k].drop || s->drop;
                struct pq_hist *hh = s->h;
                if (hh && (hh->hint == RE_HINT_RESET || hh->hint == RE_HINT_NOT_RESET)) {
                    /* hints do not survive sampling by a subquery */
                    hh = hdup(ev, hh);
                    hh->hint = RE_HINT_UNKNOWN;
                }
                mser_push(ev, &tmp.s[k], t, s->f, hh);
            }
        }
        m = &tmp;
        ref = last;
        range = e->range;
    } else {
        fail(ev, -EINVAL, "expected range vector");
    }
    int64_t from = ref - range;
    struct win *w = ar_alloc(ev, (m->n ? m->n : 1) * sizeof(*w));
    size_t k = 0, total = 0;
    for (size_t i = 0; i < m->n; i++) {
        struct mser *s = &m->s[i];
        size_t a = lower(s->t, s->n, from, !ev->o->compat_v2);
        size_t b = lower(s->t, s->n, ref, true);
        if (a >= b) continue;
        make_win(ev, &w[k], s, a, b);
        if (stats_sel && w[k].n) {
            bool any = false;
            for (size_t j = a + 1; j < b; j++)
                if (s->h[j] && s->h[j]->hint == RE_HINT_UNKNOWN) any = true;
            if (any) {
                struct pq_hist **hh = ar_alloc(ev, (b - a) * sizeof(*hh));
                size_t q = 0;
                for (size_t j = a; j < b; j++)
                    if (s->h[j] || !re_is_stale(s->f[j])) hh[q++] = stats_hint(ev, s, j, a);
                if (q == w[k].n) w[k].h = hh;
            }
        }
        if (w[k].n == 0) continue;
        total += w[k].n;
        k++;
    }
    add_samples(ev, total);
    *nw = k;
    *range_out = range;
    *rend_out = ref;
    return w;
}

/* Go's %q for a string: quotes, escapes, \xNN for invalid UTF-8. */
static void go_quote(const char *s, char *out, size_t len) {
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)s;
    if (len < 8) return;
    out[o++] = '"';
    while (*p && o + 6 < len) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p++;
        } else if (*p == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            p++;
        } else if (*p == '\t') {
            out[o++] = '\\';
            out[o++] = 't';
            p++;
        } else if (*p < 0x20 || *p == 0x7f) {
            o += (size_t)snprintf(out + o, len - o, "\\x%02x", *p++);
        } else if (*p < 0x80) {
            out[o++] = (char)*p++;
        } else {
            size_t n = (*p & 0xe0) == 0xc0   ? 2
                       : (*p & 0xf0) == 0xe0 ? 3
                       : (*p & 0xf8) == 0xf0 ? 4
                                             : 0;
            if (n && re_valid_utf8((const char *)p, n) && o + n + 1 < len) {
                memcpy(out + o, p, n);
                o += n;
                p += n;
            } else {
                o += (size_t)snprintf(out + o, len - o, "\\x%02x", *p++);
            }
        }
    }
    out[o++] = '"';
    out[o] = 0;
}

struct gbuf {
    char s[40];
};

/* Go's %g for a float64 (NaN, +Inf, -Inf spelled as Go does). */
static struct gbuf gfmt(double v) {
    struct gbuf b;
    if (isnan(v))
        snprintf(b.s, sizeof(b.s), "NaN");
    else if (isinf(v))
        snprintf(b.s, sizeof(b.s), v > 0 ? "+Inf" : "-Inf");
    else {
        int p = 1;
        for (; p <= 17; p++) {
            snprintf(b.s, sizeof(b.s), "%.*e", p - 1, v);
            if (strtod(b.s, NULL) == v) break;
        }
        int x = atoi(strchr(b.s, 'e') + 1);
        if (!(x < -4 || x >= 6)) /* Go's shortest %g: exponent form only outside [-4, 6) */
            snprintf(b.s, sizeof(b.s), "%.*f", p - 1 - x > 0 ? p - 1 - x : 0, v);
    }
    return b;
}

static double kahan_inc(double inc, double sum, double *c) {
    double t = sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(sum) >= fabs(inc))
        *c += (sum - t) + inc;
    else
        *c += (inc - t) + sum;
    return t;
}

static const char *metric_name(const struct lset *ls) {
    const char *n = ls_get(ls, "__name__");
    return n ? n : "";
}

static void pos_of(struct ev *ev, const struct promql_expr *e, int *l, int *c) {
    int line = 1, col = 1;
    for (int i = 0; i < e->pos && ev->qsrc[i]; i++) {
        if (ev->qsrc[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    *l = line;
    *c = col;
}

/* ---- range functions ------------------------------------------------------------------------ */

static bool has_hist(const struct win *w) {
    for (size_t i = 0; i < w->n; i++)
        if (w->h[i]) return true;
    return false;
}

static bool has_float(const struct win *w) {
    for (size_t i = 0; i < w->n; i++)
        if (!w->h[i]) return true;
    return false;
}

/* Histogram rate/increase/delta over a window of only histograms (Prometheus
 * histogramRate). Returns NULL (with a warning) when no result. */
static struct pq_hist *hist_rate(struct ev *ev, const struct win *w, bool counter,
                                 const struct promql_expr *arg) {
    int l, c;
    pos_of(ev, arg, &l, &c);
    const char *mn = metric_name(w->ls);
    struct pq_hist *prev = w->h[0], *last = w->h[w->n - 1];
    struct pq_hist empty = {0};
    struct pq_bkt dummy;
    bool custom = prev->schema == PQ_SCHEMA_CUSTOM;
    if (counter && (prev->hint == RE_HINT_GAUGE || last->hint == RE_HINT_GAUGE))
        warn(ev, "PromQL warning: this native histogram metric is not a counter: \"%s\" (%d:%d)",
             mn, l, c);
    if (counter && w->n > 1 && pq_hist_detect_reset(w->h[1], prev)) {
        empty.schema = w->h[1]->schema;
        empty.pb = empty.nb = &dummy;
        empty.cv = w->h[1]->cv;
        empty.ncv = w->h[1]->ncv;
        prev = &empty;
        custom = w->h[1]->schema == PQ_SCHEMA_CUSTOM;
    }
    if ((last->schema == PQ_SCHEMA_CUSTOM) != custom) {
        warn(ev,
             "PromQL warning: vector contains a mix of histograms with exponential and custom "
             "buckets schemas for metric name \"%s\" (%d:%d)",
             mn, l, c);
        return NULL;
    }
    int32_t minschema = last->schema < prev->schema ? last->schema : prev->schema;
    for (size_t i = 1; i + 1 < w->n; i++) {
        if (!counter) continue;
        if (w->h[i]->hint == RE_HINT_GAUGE)
            warn(ev,
                 "PromQL warning: this native histogram metric is not a counter: \"%s\" (%d:%d)",
                 mn, l, c);
        if (w->h[i]->schema < minschema) minschema = w->h[i]->schema;
        if ((w->h[i]->schema == PQ_SCHEMA_CUSTOM) != custom) {
            warn(ev,
                 "PromQL warning: vector contains a mix of histograms with exponential and custom "
                 "buckets schemas for metric name \"%s\" (%d:%d)",
                 mn, l, c);
            return NULL;
        }
    }
    struct pq_hist *r = hdup(ev, last);
    if (!custom && r->schema > minschema) {
        struct pq_hist z = {.schema = minschema};
        z.pb = z.nb = &dummy;
        pq_hist_add(r, &z, 0);
    }
    bool rec = false;
    int rc = pq_hist_add_ex(r, NULL, prev, -1, NULL, &rec);
    if (rc == -EINVAL) {
        warn(ev,
             "PromQL warning: vector contains a mix of histograms with exponential and custom "
             "buckets schemas for metric name \"%s\" (%d:%d)",
             mn, l, c);
        return NULL;
    }
    if (rc) fail(ev, rc, "out of memory");
    if (rec)
        warn(ev,
             "PromQL info: mismatched custom buckets were reconciled during subtraction (%d:%d)", l,
             c);
    if (counter) {
        for (size_t i = 1; i < w->n; i++) {
            struct pq_hist *cur = w->h[i];
            if (pq_hist_detect_reset(cur, prev)) {
                rec = false;
                rc = pq_hist_add_ex(r, NULL, prev, 1, NULL, &rec);
                if (rc == -EINVAL) {
                    warn(ev,
                         "PromQL warning: vector contains a mix of histograms with exponential and "
                         "custom buckets schemas for metric name \"%s\" (%d:%d)",
                         mn, l, c);
                    return NULL;
                }
                if (rec)
                    warn(ev,
                         "PromQL info: mismatched custom buckets were reconciled during addition "
                         "(%d:%d)",
                         l, c);
            }
            prev = cur;
        }
    } else if (w->h[0]->hint != RE_HINT_GAUGE || last->hint != RE_HINT_GAUGE) {
        warn(ev, "PromQL warning: this native histogram metric is not a gauge: \"%s\" (%d:%d)", mn,
             l, c);
    }
    r->hint = RE_HINT_GAUGE;
    pq_hist_compact(r);
    return r;
}

static bool extrapolated_rate(struct ev *ev, const struct win *w, int64_t rstart, int64_t rend,
                              int64_t range, bool counter, bool is_rate, double *out,
                              struct pq_hist **hout, const struct promql_expr *arg) {
    *hout = NULL;
    bool hh = has_hist(w), hf = has_float(w);
    if (hh && hf) {
        int l, c;
        pos_of(ev, arg, &l, &c);
        warn(ev,
             "PromQL warning: encountered a mix of histograms and floats for metric name \"%s\" "
             "(%d:%d)",
             metric_name(w->ls), l, c);
        return false;
    }
    size_t n = w->n;
    if (n < 2) return false;
    double result = 0;
    struct pq_hist *rh = NULL;
    if (hh) {
        rh = hist_rate(ev, w, counter, arg);
        if (!rh) return false;
    } else {
        result = w->f[n - 1] - w->f[0];
        if (counter)
            for (size_t i = 1; i < n; i++)
                if (w->f[i] < w->f[i - 1]) result += w->f[i - 1];
    }
    int64_t firstT = w->t[0], lastT = w->t[n - 1];
    double dstart = (double)(firstT - rstart) / 1000, dend = (double)(rend - lastT) / 1000;
    double sampled = (double)(lastT - firstT) / 1000;
    double avg = sampled / (double)(n - 1);
    double thr = avg * 1.1;
    if (ev->o->compat_v2) {
        /* 2.42 (extrapolatedRate) moves the start to a float counter's zero point before it
         * compares with the threshold, and has no zero point for histograms */
        if (counter && !hh && result > 0 && w->f[0] >= 0) {
            double dzero = sampled * (w->f[0] / result);
            if (dzero < dstart) dstart = dzero;
        }
        if (dstart >= thr) dstart = avg / 2;
    } else if (dstart >= thr) {
        dstart = avg / 2;
    }
    if (counter && !ev->o->compat_v2) {
        double dzero = dstart;
        if (!hh && result > 0 && w->f[0] >= 0)
            dzero = sampled * (w->f[0] / result);
        else if (hh && rh->count > 0 && w->h[0]->count >= 0)
            dzero = sampled * (w->h[0]->count / rh->count);
        if (dzero < dstart) dstart = dzero;
    }
    if (dend >= thr) dend = avg / 2;
    double factor = (sampled + dstart + dend) / sampled;
    if (is_rate) factor /= (double)range / 1000;
    if (rh) {
        pq_hist_scale(rh, factor);
        *hout = rh;
    } else {
        *out = result * factor;
    }
    return true;
}

static void linreg(const struct win *w, int64_t icept, double *slope, double *intercept) {
    double n = 0, sx = 0, cx = 0, sy = 0, cy = 0, sxy = 0, cxy = 0, sx2 = 0, cx2 = 0;
    double inity = 0;
    bool consty = true, first = true;
    for (size_t i = 0; i < w->n; i++) {
        if (w->h[i]) continue;
        if (first) {
            inity = w->f[i];
            first = false;
        } else if (consty && w->f[i] != inity) {
            consty = false;
        }
        n += 1;
        double x = (double)(w->t[i] - icept) / 1e3;
        sx = kahan_inc(x, sx, &cx);
        sy = kahan_inc(w->f[i], sy, &cy);
        sxy = kahan_inc(x * w->f[i], sxy, &cxy);
        sx2 = kahan_inc(x * x, sx2, &cx2);
    }
    if (consty) {
        if (isinf(inity)) {
            *slope = *intercept = NAN;
            return;
        }
        *slope = 0;
        *intercept = inity;
        return;
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    double cov = sxy - sx * sy / n, var = sx2 - sx * sx / n;
    *slope = cov / var;
    *intercept = sy / n - *slope * sx / n;
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return x < y ? -1 : x > y ? 1 : 0;
}

static double quantile_of(double q, double *v, size_t n) {
    if (n == 0 || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (n > 1) qsort(v, n, sizeof(double), dcmp);
    double rank = q * (double)(n - 1);
    double lo = fmax(0, floor(rank));
    double hi = fmin((double)n - 1, lo + 1);
    double wgt = rank - floor(rank);
    return v[(size_t)lo] * (1 - wgt) + v[(size_t)hi] * wgt;
}

static size_t nfloats(const struct win *w) {
    size_t k = 0;
    for (size_t i = 0; i < w->n; i++)
        if (!w->h[i]) k++;
    return k;
}

static void info_hist_ignored(struct ev *ev, const struct win *w, const struct promql_expr *arg) {
    int l, c;
    pos_of(ev, arg, &l, &c);
    warn(ev,
         "PromQL info: ignored histograms in a range containing both floats and histograms for "
         "metric name \"%s\" (%d:%d)",
         metric_name(w->ls), l, c);
}

static void warn_mixed(struct ev *ev, const struct win *w, const struct promql_expr *arg) {
    int l, c;
    pos_of(ev, arg, &l, &c);
    warn(
        ev,
        "PromQL warning: encountered a mix of histograms and floats for metric name \"%s\" (%d:%d)",
        metric_name(w->ls), l, c);
}

static struct val eval_range_func(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    int id = e->fn->id;
    const struct promql_expr *marg = e->args[id == F_QUANTILE_OT ? 1 : 0];
    double param = 0, param2 = 0;
    if (id == F_QUANTILE_OT) {
        struct val p = eval(ev, e->args[0], ts);
        param = p.scalar;
    } else if (id == F_PREDICT_LINEAR) {
        param = eval(ev, e->args[1], ts).scalar;
    } else if (id == F_DES) {
        param = eval(ev, e->args[1], ts).scalar;
        param2 = eval(ev, e->args[2], ts).scalar;
        if (param <= 0 || param >= 1)
            fail(ev, -EINVAL, "invalid smoothing factor. Expected: 0 < sf < 1, got: %f", param);
        if (param2 <= 0 || param2 >= 1)
            fail(ev, -EINVAL, "invalid trend factor. Expected: 0 < tf < 1, got: %f", param2);
    }
    size_t nw;
    int64_t range, rend;
    struct win *w = eval_windows(ev, marg, ts, &nw, &range, &rend);
    if (ev->o->compat_v2 && !v2_reads_hists(id)) v2_hist_zero_wins(ev, w, nw);
    struct val r = vval();
    if (id == F_ABSENT_OT) {
        if (nw > 0) return r;
        /* labels from equality matchers of the selector */
        const struct promql_expr *a = marg;
        while (a->kind == PQ_PAREN)
            a = a->a;
        struct lset *ls = ls_new(ev, 0);
        const struct lset *cur = ls;
        if (a->kind == PQ_MSEL) {
            const struct promql_expr *vs = a->a;
            bool dup[64] = {0};
            for (size_t i = 0; i < vs->nm && i < 64; i++)
                for (size_t j = 0; j < vs->nm; j++)
                    if (j != i && !strcmp(vs->m[i].name, vs->m[j].name)) dup[i] = true;
            for (size_t i = 0; i < vs->nm; i++)
                if (vs->m[i].type == RE_MATCH_EQ && strcmp(vs->m[i].name, "__name__") &&
                    (i >= 64 || !dup[i]))
                    cur = ls_set(ev, cur, vs->m[i].name, vs->m[i].value);
        }
        vec_push(ev, &r.v, (struct smp){cur, 1, NULL, ts, false});
        return r;
    }
    int64_t rstart = rend - range;
    for (size_t i = 0; i < nw; i++) {
        struct win *wi = &w[i];
        double out = 0;
        struct pq_hist *hout = NULL;
        bool keep_name = false;
        bool ok = true;
        size_t nf = nfloats(wi);
        bool hh = nf < wi->n;
        switch (id) {
        case F_RATE:
        case F_INCREASE:
        case F_DELTA:
            ok = extrapolated_rate(ev, wi, rstart, rend, range, id != F_DELTA, id == F_RATE, &out,
                                   &hout, marg);
            if (ok && !hout && id != F_DELTA) {
                const char *mn = ls_get(wi->ls, "__name__");
                if (mn) {
                    size_t ml = strlen(mn);
                    bool good = false;
                    static const char *suf[] = {"_total", "_sum", "_count", "_bucket"};
                    for (int k = 0; k < 4; k++) {
                        size_t sl = strlen(suf[k]);
                        if (ml >= sl && !strcmp(mn + ml - sl, suf[k])) good = true;
                    }
                    if (!good) {
                        int l, c;
                        pos_of(ev, marg, &l, &c);
                        warn(ev,
                             "PromQL info: metric might not be a counter, name does not end in "
                             "_total/_sum/_count/_bucket: \"%s\" (%d:%d)",
                             mn, l, c);
                    }
                }
            }
            break;
        case F_IRATE:
        case F_IDELTA: {
            if (wi->n < 2) {
                ok = false;
                break;
            }
            size_t a = wi->n - 2, b = wi->n - 1;
            int64_t dt = wi->t[b] - wi->t[a];
            if (dt == 0) {
                ok = false;
                break;
            }
            if (!wi->h[a] && !wi->h[b]) {
                out = wi->f[b] - wi->f[a];
                if (id == F_IRATE && wi->f[b] < wi->f[a]) out = wi->f[b];
                if (id == F_IRATE) out /= (double)dt / 1000;
            } else if (wi->h[a] && wi->h[b]) {
                hout = hdup(ev, wi->h[b]);
                int l, c;
                pos_of(ev, marg, &l, &c);
                if (id == F_IRATE &&
                    (wi->h[a]->hint == RE_HINT_GAUGE || wi->h[b]->hint == RE_HINT_GAUGE))
                    warn(ev,
                         "PromQL warning: this native histogram metric is not a counter: \"%s\" "
                         "(%d:%d)",
                         metric_name(wi->ls), l, c);
                if (id == F_IDELTA &&
                    (wi->h[a]->hint != RE_HINT_GAUGE || wi->h[b]->hint != RE_HINT_GAUGE))
                    warn(ev,
                         "PromQL warning: this native histogram metric is not a gauge: \"%s\" "
                         "(%d:%d)",
                         metric_name(wi->ls), l, c);
                if (id == F_IDELTA || !pq_hist_detect_reset(wi->h[b], wi->h[a])) {
                    bool rec = false;
                    int rc = pq_hist_add_ex(hout, NULL, wi->h[a], -1, NULL, &rec);
                    if (rec)
                        warn(ev,
                             "PromQL info: mismatched custom buckets were reconciled during "
                             "subtraction (%d:%d)",
                             l, c);
                    if (rc == -EINVAL) {
                        warn(ev,
                             "PromQL warning: vector contains a mix of histograms with exponential "
                             "and custom buckets schemas for metric name \"%s\" (%d:%d)",
                             metric_name(wi->ls), l, c);
                        ok = false;
                        break;
                    }
                }
                hout->hint = RE_HINT_GAUGE;
                pq_hist_compact(hout);
                if (id == F_IRATE) pq_hist_div(hout, (double)dt / 1000);
            } else {
                warn_mixed(ev, wi, marg);
                ok = false;
            }
            break;
        }
        case F_DERIV:
        case F_PREDICT_LINEAR: {
            if (nf < 2) {
                if (nf == 1 && hh) info_hist_ignored(ev, wi, marg);
                ok = false;
                break;
            }
            double slope, icpt;
            int64_t first = 0;
            for (size_t k = 0; k < wi->n; k++)
                if (!wi->h[k]) {
                    first = wi->t[k];
                    break;
                }
            linreg(wi, id == F_DERIV ? first : ts, &slope, &icpt);
            out = id == F_DERIV ? slope : slope * param + icpt;
            if (hh) info_hist_ignored(ev, wi, marg);
            break;
        }
        case F_RESETS:
        case F_CHANGES: {
            int cnt = 0;
            for (size_t k = 1; k < wi->n; k++) {
                struct pq_hist *ph = wi->h[k - 1], *ch = wi->h[k];
                if (id == F_RESETS) {
                    if (!ph && !ch)
                        cnt += wi->f[k] < wi->f[k - 1];
                    else if (!ph || !ch)
                        cnt++;
                    else
                        cnt += pq_hist_detect_reset(ch, ph);
                } else {
                    if (!ph && !ch)
                        cnt +=
                            !(wi->f[k] == wi->f[k - 1] || (isnan(wi->f[k]) && isnan(wi->f[k - 1])));
                    else if (!ph || !ch)
                        cnt++;
                    else
                        cnt += !pq_hist_equal(ch, ph, 0, false);
                }
            }
            out = cnt;
            break;
        }
        case F_AVG_OT:
        case F_SUM_OT: {
            if (hh && nf) {
                warn_mixed(ev, wi, marg);
                ok = false;
                break;
            }
            if (hh) {
                struct pq_hist *sum = hdup(ev, wi->h[0]), *comp = NULL, *mean = NULL;
                bool bad = false, incr = false, rec = false;
                bool rs = wi->h[0]->hint == RE_HINT_RESET,
                     nrs = wi->h[0]->hint == RE_HINT_NOT_RESET;
                for (size_t k = 1; k < wi->n && !bad; k++) {
                    struct pq_hist *hk = wi->h[k];
                    rs = rs || hk->hint == RE_HINT_RESET;
                    nrs = nrs || hk->hint == RE_HINT_NOT_RESET;
                    double cnt = (double)(k + 1);
                    int rc = 0;
                    if (id == F_SUM_OT || !incr) {
                        struct pq_hist *v = id == F_SUM_OT ? sum : hdup(ev, sum);
                        struct pq_hist *cc = comp ? (id == F_SUM_OT ? comp : hdup(ev, comp))
                                                  : track(ev, pq_hist_new_comp(sum));
                        rc = pq_hist_add_ex(v, cc, hk, 1, NULL, &rec);
                        if (rc == 0 && (id == F_SUM_OT || !pq_hist_overflow(v))) {
                            sum = v;
                            comp = cc;
                            continue;
                        }
                        if (rc == 0) {
                            incr = true;
                            mean = hdup(ev, sum);
                            pq_hist_div(mean, cnt - 1);
                            if (comp) pq_hist_div(comp, cnt - 1);
                        }
                    }
                    if (rc == 0 && incr) {
                        double q = (cnt - 1) / cnt;
                        if (comp)
                            pq_hist_scale(comp, q);
                        else
                            comp = track(ev, pq_hist_new_comp(mean));
                        struct pq_hist *ta = hdup(ev, hk);
                        pq_hist_div(ta, cnt);
                        pq_hist_scale(mean, q);
                        rc = pq_hist_add_ex(mean, comp, ta, 1, NULL, &rec);
                    }
                    if (rc == -ENOMEM) fail(ev, rc, "out of memory");
                    if (rc) {
                        int l, c;
                        pos_of(ev, marg, &l, &c);
                        warn(ev,
                             "PromQL warning: vector contains a mix of histograms with exponential "
                             "and custom buckets schemas for metric name \"%s\" (%d:%d)",
                             metric_name(wi->ls), l, c);
                        bad = true;
                    }
                }
                if (bad) {
                    ok = false;
                    break;
                }
                int l, c;
                pos_of(ev, marg, &l, &c);
                if (rec)
                    warn(ev,
                         "PromQL info: mismatched custom buckets were reconciled during "
                         "aggregation (%d:%d)",
                         l, c);
                if (rs && nrs)
                    warn(ev,
                         "PromQL warning: conflicting counter resets during histogram aggregation "
                         "(%d:%d)",
                         l, c);
                if (incr) {
                    if (comp) pq_hist_add(mean, comp, 1);
                    sum = mean;
                } else if (id == F_AVG_OT) {
                    pq_hist_div(sum, (double)wi->n);
                    if (comp) {
                        pq_hist_div(comp, (double)wi->n);
                        pq_hist_add(sum, comp, 1);
                    }
                } else if (comp) {
                    pq_hist_add(sum, comp, 1);
                }
                pq_hist_compact(sum);
                hout = sum;
                break;
            }
            if (id == F_SUM_OT) {
                double sum = 0, c = 0;
                for (size_t k = 0; k < wi->n; k++)
                    sum = kahan_inc(wi->f[k], sum, &c);
                out = isinf(sum) ? sum : sum + c;
            } else {
                double sum = wi->f[0], cnt = 1, mean = 0, c = 0;
                bool incr = false;
                for (size_t k = 1; k < wi->n; k++) {
                    cnt = (double)(k + 1);
                    if (!incr) {
                        double c2 = c;
                        double ns = kahan_inc(wi->f[k], sum, &c2);
                        if (!isinf(ns)) {
                            sum = ns;
                            c = c2;
                            continue;
                        }
                        incr = true;
                        mean = sum / (cnt - 1);
                        c /= (cnt - 1);
                    }
                    double q = (cnt - 1) / cnt;
                    double qc = q * c;
                    mean = kahan_inc(wi->f[k] / cnt, q * mean, &qc);
                    c = qc;
                }
                out = incr ? mean + c : sum / cnt + c / cnt;
            }
            break;
        }
        case F_MIN_OT:
        case F_MAX_OT:
        case F_TS_MIN_OT:
        case F_TS_MAX_OT: {
            if (!nf) {
                ok = false;
                break;
            }
            bool ismax = id == F_MAX_OT || id == F_TS_MAX_OT;
            double best = 0;
            int64_t bt = 0;
            bool first = true;
            for (size_t k = 0; k < wi->n; k++) {
                if (wi->h[k]) continue;
                double v = wi->f[k];
                if (first || (ismax ? (v > best || isnan(best)) : (v < best || isnan(best))) ||
                    (id >= F_TS_MIN_OT && !isnan(v) && v == best)) {
                    if (first || !(v == best) || id >= F_TS_MIN_OT) {
                        best = v;
                        bt = wi->t[k];
                    }
                    first = false;
                }
            }
            out = id == F_TS_MIN_OT || id == F_TS_MAX_OT ? (double)bt / 1000 : best;
            if (hh) info_hist_ignored(ev, wi, marg);
            break;
        }
        case F_COUNT_OT:
            out = (double)wi->n;
            break;
        case F_PRESENT_OT:
            out = 1;
            break;
        case F_LAST_OT:
        case F_FIRST_OT:
        case F_TS_LAST_OT:
        case F_TS_FIRST_OT: {
            size_t k = (id == F_LAST_OT || id == F_TS_LAST_OT) ? wi->n - 1 : 0;
            if (id == F_LAST_OT || id == F_FIRST_OT) {
                out = wi->f[k];
                hout = wi->h[k];
                keep_name = true;
            } else {
                out = (double)wi->t[k] / 1000;
            }
            break;
        }
        case F_QUANTILE_OT:
        case F_MAD_OT: {
            if (!nf) {
                ok = false;
                break;
            }
            if (id == F_QUANTILE_OT && (isnan(param) || param < 0 || param > 1)) {
                int l, c;
                pos_of(ev, e->args[0], &l, &c);
                warn(ev, "PromQL warning: quantile value should be between 0 and 1, got %s (%d:%d)",
                     gfmt(param).s, l, c);
            }
            double *vals = ar_alloc(ev, nf * sizeof(double));
            size_t k = 0;
            for (size_t j = 0; j < wi->n; j++)
                if (!wi->h[j]) vals[k++] = wi->f[j];
            bool hasnan = false;
            for (size_t j = 0; j < nf; j++)
                hasnan = hasnan || isnan(vals[j]);
            if (id == F_QUANTILE_OT) {
                out = quantile_of(param, vals, nf);
            } else if (hasnan) {
                out = NAN;
            } else {
                double med = quantile_of(0.5, vals, nf);
                for (size_t j = 0; j < nf; j++)
                    vals[j] = fabs(vals[j] - med);
                out = quantile_of(0.5, vals, nf);
            }
            if (hh) info_hist_ignored(ev, wi, marg);
            break;
        }
        case F_STDDEV_OT:
        case F_STDVAR_OT: {
            if (!nf) {
                ok = false;
                break;
            }
            double cnt = 0, mean = 0, cm = 0, aux = 0, ca = 0;
            for (size_t k = 0; k < wi->n; k++) {
                if (wi->h[k]) continue;
                double f = wi->f[k];
                cnt++;
                double delta = f - (mean + cm);
                mean = kahan_inc(delta / cnt, mean, &cm);
                aux = kahan_inc(delta * (f - (mean + cm)), aux, &ca);
            }
            out = (aux + ca) / cnt;
            if (id == F_STDDEV_OT) out = sqrt(out);
            if (hh) info_hist_ignored(ev, wi, marg);
            break;
        }
        case F_DES: {
            if (nf < 2) {
                ok = false;
                break;
            }
            double *v = ar_alloc(ev, nf * sizeof(double));
            size_t k = 0;
            for (size_t j = 0; j < wi->n; j++)
                if (!wi->h[j]) v[k++] = wi->f[j];
            double s0 = 0, s1 = v[0], b = v[1] - v[0];
            for (size_t j = 1; j < nf; j++) {
                double x = param * v[j];
                if (j > 1) b = param2 * (s1 - s0) + (1 - param2) * b;
                double y = (1 - param) * (s1 + b);
                s0 = s1;
                s1 = x + y;
            }
            out = s1;
            if (hh) info_hist_ignored(ev, wi, marg);
            break;
        }
        default:
            ok = false;
        }
        if (!ok) continue;
        vec_push(ev, &r.v, (struct smp){wi->ls, out, hout, ts, keep_name ? wi->drop : true});
    }
    return r;
}

/* ---- classic and native histogram quantiles ---------------------------------------------- */

struct bucket {
    double ub, c;
};

static int bcmp_ub(const void *a, const void *b) {
    double x = ((const struct bucket *)a)->ub, y = ((const struct bucket *)b)->ub;
    return x < y ? -1 : x > y ? 1 : 0;
}

static bool almost_eq(double a, double b, double eps) {
    if (a == b) return true;
    double abssum = fabs(a) + fabs(b), diff = fabs(a - b);
    const double minnormal = 2.2250738585072014e-308;
    if (a == 0 || b == 0 || abssum < minnormal) return diff < eps * minnormal;
    return diff / fmin(abssum, 1.7976931348623157e308) < eps;
}

static double bucket_quantile(double q, struct bucket *b, size_t n, bool *forced) {
    *forced = false;
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (n > 1) qsort(b, n, sizeof(*b), bcmp_ub);
    if (!isinf(b[n - 1].ub) || b[n - 1].ub < 0) return NAN;
    /* coalesce */
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].ub == b[k].ub)
            b[k].c += b[i].c;
        else
            b[++k] = b[i];
    }
    n = k + 1;
    double prev = b[0].c;
    for (size_t i = 1; i < n; i++) {
        double cur = b[i].c;
        if (cur == prev) continue;
        if (almost_eq(prev, cur, 1e-12)) {
            b[i].c = prev;
            continue;
        }
        if (cur < prev) {
            b[i].c = prev;
            *forced = true;
            continue;
        }
        prev = cur;
    }
    if (n < 2) return NAN;
    double obs = b[n - 1].c;
    if (obs == 0) return NAN;
    double rank = q * obs;
    size_t i = 0;
    while (i < n - 1 && !(b[i].c >= rank))
        i++;
    if (i == n - 1) return b[n - 2].ub;
    if (i == 0 && b[0].ub <= 0) return b[0].ub;
    double start = 0, end = b[i].ub, cnt = b[i].c;
    if (i > 0) {
        start = b[i - 1].ub;
        cnt -= b[i - 1].c;
        rank -= b[i - 1].c;
    }
    return start + (end - start) * (rank / cnt);
}

/* Iterates all buckets of h in ascending order of bounds: negative (reversed), zero, positive. */
struct hb {
    double lo, hi, c;
    bool zero;
};

static size_t hist_buckets(struct ev *ev, const struct pq_hist *h, struct hb **out) {
    size_t n = h->npb + h->nnb + 1;
    struct hb *b = ar_alloc(ev, n * sizeof(*b));
    size_t k = 0;
    for (size_t i = h->nnb; i-- > 0;) {
        if (h->nb[i].c == 0) continue;
        pq_hist_bounds(h, true, h->nb[i].i, &b[k].lo, &b[k].hi);
        if (b[k].hi < 0 && b[k].hi > -h->zt) b[k].hi = -h->zt;
        b[k].c = h->nb[i].c;
        k++;
    }
    if (h->zc != 0 && h->schema != PQ_SCHEMA_CUSTOM) {
        b[k].lo = -h->zt;
        b[k].hi = h->zt;
        b[k].c = h->zc;
        b[k].zero = true;
        k++;
    }
    for (size_t i = 0; i < h->npb; i++) {
        if (h->pb[i].c == 0) continue;
        pq_hist_bounds(h, false, h->pb[i].i, &b[k].lo, &b[k].hi);
        if (b[k].lo > 0 && b[k].lo < h->zt) b[k].lo = h->zt;
        b[k].c = h->pb[i].c;
        k++;
    }
    *out = b;
    return k;
}

static double frac_below(const struct hb *b, double v, bool linear) {
    if (linear) return (v - b->lo) / (b->hi - b->lo);
    double ll = log2(fabs(b->lo)), lu = log2(fabs(b->hi)), lv = log2(fabs(v));
    if (v > 0) return (lv - ll) / (lu - ll);
    return 1 - ((lv - lu) / (ll - lu));
}

/* Prometheus HistogramQuantile; nan_info set to 1 (NaN result) or 2 (skewed) for the
 * NaN-observation annotations. */
static double hist_quantile(struct ev *ev, double q, const struct pq_hist *h, int *nan_info) {
    *nan_info = 0;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    if (h->count == 0 || isnan(q)) return NAN;
    struct hb *b;
    size_t n = hist_buckets(ev, h, &b);
    bool custom = h->schema == PQ_SCHEMA_CUSTOM;
    bool fwd = isnan(h->sum) || q < 0.5;
    double rank = fwd ? q * h->count : (1 - q) * h->count, count = 0;
    struct hb bk = {0};
    size_t i = 0, consumed = 0;
    bool any = false;
    for (; i < n; i++) {
        bk = b[fwd ? i : n - 1 - i];
        any = true;
        consumed = i + 1;
        count += bk.c;
        if (count >= rank) break;
    }
    if (!any) memset(&bk, 0, sizeof(bk));
    if (!custom && bk.lo < 0 && bk.hi > 0) {
        if (h->nnb == 0 && h->npb > 0)
            bk.lo = 0;
        else if (h->npb == 0 && h->nnb > 0)
            bk.hi = 0;
    } else if (custom) {
        if (isinf(bk.lo) && bk.lo < 0) {
            if (bk.hi <= 0) return bk.hi;
            bk.lo = 0;
        } else if (isinf(bk.hi) && bk.hi > 0) {
            return bk.lo;
        }
    }
    if (count > h->count) count = h->count;
    if (count < rank) {
        if (isnan(h->sum)) {
            *nan_info = 1;
            return NAN;
        }
        return bk.hi;
    }
    if (fwd)
        rank -= count - bk.c;
    else
        rank = count - rank;
    if (isnan(h->sum)) {
        for (size_t k = consumed; k < n; k++)
            count += b[fwd ? k : n - 1 - k].c;
        if (count < h->count) *nan_info = 2;
    }
    double fraction = rank / bk.c;
    if (ev->o->compat_v2 || custom || (bk.lo <= 0 && bk.hi >= 0))
        return bk.lo + (bk.hi - bk.lo) * fraction;
    double ll = log2(fabs(bk.lo)), lu = log2(fabs(bk.hi));
    if (bk.lo > 0) return exp2(ll + (lu - ll) * fraction);
    return -exp2(lu + (ll - lu) * (1 - fraction));
}

static double hist_fraction(struct ev *ev, double lower, double upper, const struct pq_hist *h,
                            bool *nan_info) {
    *nan_info = false;
    if (h->count == 0 || isnan(lower) || isnan(upper)) return NAN;
    if (lower >= upper) return 0;
    struct hb *b;
    size_t n = hist_buckets(ev, h, &b);
    bool custom = h->schema == PQ_SCHEMA_CUSTOM;
    double count = 0, rank = 0, lr = 0, ur = 0;
    bool ls = false, us = false;
    size_t i = 0;
    for (; i < n; i++) {
        struct hb bk = b[i];
        count += bk.c;
        bool zero = false;
        if (bk.lo <= 0 && bk.hi >= 0) {
            zero = true;
            if (h->nnb == 0 && h->npb > 0)
                bk.lo = 0;
            else if (h->npb == 0 && h->nnb > 0)
                bk.hi = 0;
        }
        bool lin = ev->o->compat_v2 || custom || zero;
        if (!ls && bk.lo >= lower) {
            lr = rank;
            ls = true;
        }
        if (!us && bk.lo >= upper) {
            ur = rank;
            us = true;
        }
        if (ls && us) break;
        if (!ls && bk.lo < lower && bk.hi > lower) {
            lr = (lin && isinf(bk.lo) && bk.lo < 0) ? bk.c
                                                    : rank + bk.c * frac_below(&bk, lower, lin);
            ls = true;
        }
        if (!us && bk.lo < upper && bk.hi > upper) {
            ur = (lin && isinf(bk.lo) && bk.lo < 0) ? bk.c
                                                    : rank + bk.c * frac_below(&bk, upper, lin);
            us = true;
        }
        if (ls && us) break;
        rank += bk.c;
    }
    if (isnan(h->sum)) {
        for (size_t k = i + 1; k < n; k++)
            count += b[k].c;
        if (count < h->count) *nan_info = true;
    } else {
        count = h->count;
    }
    if (!ls || lr > count) lr = count;
    if (!us || ur > count) ur = count;
    return (ur - lr) / h->count;
}

static double bucket_fraction(double lower, double upper, struct bucket *b, size_t n) {
    if (n > 1) qsort(b, n, sizeof(*b), bcmp_ub);
    if (!(isinf(b[n - 1].ub) && b[n - 1].ub > 0)) return NAN;
    size_t k = 0;
    for (size_t i = 1; i < n; i++) {
        if (b[i].ub == b[k].ub)
            b[k].c += b[i].c;
        else
            b[++k] = b[i];
    }
    n = k + 1;
    double count = b[n - 1].c;
    if (count == 0 || isnan(lower) || isnan(upper)) return NAN;
    if (lower >= upper) return 0;
    double rank = 0, lr = 0, ur = 0;
    bool ls = false, us = false;
    double lb = b[0].ub <= 0 ? -INFINITY : 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0) lb = b[i - 1].ub;
        double ub = b[i].ub;
#define INTERP(v) (isinf(lb) && lb < 0 ? b[i].c : rank + (b[i].c - rank) * ((v)-lb) / (ub - lb))
        if (!ls && lb >= lower) {
            lr = rank;
            ls = true;
        }
        if (!us && lb >= upper) {
            ur = rank;
            us = true;
        }
        if (ls && us) break;
        if (!ls && lb < lower && ub > lower) {
            lr = INTERP(lower);
            ls = true;
        }
        if (!us && lb < upper && ub > upper) {
            ur = INTERP(upper);
            us = true;
        }
#undef INTERP
        if (ls && us) break;
        rank = b[i].c;
    }
    if (!ls || lr > count) lr = count;
    if (!us || ur > count) ur = count;
    return (ur - lr) / count;
}

/* FloatHistogram.String() as Go prints it, e.g. {count:20, sum:10, [-2,-1):2, (0.5,1]:1}. */
static void hist_go_string(struct ev *ev, const struct pq_hist *h, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "{count:%s, sum:%s", gfmt(h->count).s, gfmt(h->sum).s);
    struct hb *b;
    size_t n = hist_buckets(ev, h, &b);
    for (size_t i = 0; i < n && o < len; i++) {
        bool neg = b[i].hi <= 0 && !b[i].zero && h->schema != PQ_SCHEMA_CUSTOM;
        const char *l = b[i].zero || neg ? "[" : "(";
        const char *r = b[i].zero || !neg ? "]" : ")";
        o += (size_t)snprintf(buf + o, len - o, ", %s%s,%s%s:%s", l, gfmt(b[i].lo).s,
                              gfmt(b[i].hi).s, r, gfmt(b[i].c).s);
    }
    if (o < len) snprintf(buf + o, len - o, "}");
}

/* ---- aggregation ---------------------------------------------------------------------------- */

struct group {
    const struct lset *ls;
    double f, mean, c, cnt;
    struct pq_hist *h, *hc, *hmean;
    bool seen, hasf, hash, incr, hincr, incompat, drop, reset, notreset;
    double *vals;
    size_t nvals, capvals;
    struct smp *top; /* topk/bottomk heap-ish list */
    size_t ntop;
};

static const struct lset *group_labels(struct ev *ev, const struct lset *ls,
                                       const struct promql_expr *e) {
    if (e->without) {
        struct lset *o = ls_new(ev, ls->n);
        for (size_t i = 0; i < ls->n; i++)
            if (!in_list(e->grouping, e->ngrouping, ls->l[i].name) &&
                strcmp(ls->l[i].name, "__name__"))
                o->l[o->n++] = ls->l[i];
        return o;
    }
    return ls_filter(ev, ls, e->grouping, e->ngrouping, true);
}

static bool topk_better(const struct smp *a, const struct smp *b, bool top) {
    /* true if a should rank before b */
    if (isnan(a->f)) return false;
    if (isnan(b->f)) return true;
    return top ? a->f > b->f : a->f < b->f;
}

/* An aggregation's grouping, remembered across the steps of a range query: each input label
 * set (by pointer: the arena never reuses one within an evaluation, and selector and function
 * outputs keep theirs from step to step) maps to a group id whose label set is built once, so
 * a step costs a pointer lookup per sample, and the groups keep their label set pointers
 * (whose hashes are memoised) from step to step. */
struct gmemo {
    struct gment {
        const struct lset *in;
        size_t gid;
    } * p;
    size_t pcap, pn;
    struct hmap keys; /* grouping key -> gid */
    struct kbuf kb;
    const struct lset **gl; /* by gid */
    size_t *stamp, *slot;   /* per gid: the step that last used it and its group index there */
    size_t ng, capg, step;
};

static size_t gmemo_gid(struct ev *ev, struct gmemo *m, const struct lset *ls,
                        const struct promql_expr *e) {
    if ((m->pn + 1) * 2 > m->pcap) {
        size_t nc = m->pcap ? m->pcap * 2 : 16;
        struct gment *np = ar_alloc(ev, nc * sizeof(*np));
        for (size_t i = 0; i < m->pcap; i++)
            if (m->p[i].in) {
                size_t j = ((uintptr_t)m->p[i].in >> 4) * 0x9E3779B97F4A7C15ULL >> 32 & (nc - 1);
                while (np[j].in)
                    j = (j + 1) & (nc - 1);
                np[j] = m->p[i];
            }
        m->p = np;
        m->pcap = nc;
    }
    size_t j = ((uintptr_t)ls >> 4) * 0x9E3779B97F4A7C15ULL >> 32 & (m->pcap - 1);
    while (m->p[j].in) {
        if (m->p[j].in == ls) return m->p[j].gid;
        j = (j + 1) & (m->pcap - 1);
    }
    const struct lset *gl = group_labels(ev, ls, e);
    sig_key(ev, &m->kb, gl, NULL, 0, false, false);
    size_t gid = m->ng;
    if (!hm_get_or_put(ev, &m->keys, m->kb.p, m->kb.n, &gid)) {
        if (m->ng == m->capg) {
            size_t nc = m->capg ? m->capg * 2 : 8;
            const struct lset **ngl = ar_alloc_nz(ev, nc * sizeof(*ngl));
            size_t *nst = ar_alloc(ev, nc * sizeof(*nst));
            size_t *nsl = ar_alloc_nz(ev, nc * sizeof(*nsl));
            if (m->ng) {
                memcpy(ngl, m->gl, m->ng * sizeof(*ngl));
                memcpy(nst, m->stamp, m->ng * sizeof(*nst));
                memcpy(nsl, m->slot, m->ng * sizeof(*nsl));
            }
            m->gl = ngl;
            m->stamp = nst;
            m->slot = nsl;
            m->capg = nc;
        }
        m->gl[m->ng] = gl;
        m->stamp[m->ng] = 0;
        m->ng++;
    }
    m->p[j] = (struct gment){ls, gid};
    m->pn++;
    return gid;
}

static struct val eval_agg(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    double param = 0;
    const char *sparam = NULL;
    if (e->param) {
        struct val p = eval(ev, e->param, ts);
        if (e->agg == PQ_COUNT_VALUES)
            sparam = p.str;
        else
            param = p.scalar;
    }
    struct val in = eval(ev, e->a, ts);
    struct val r = vval();
    enum pq_agg op = e->agg;
    if (ev->o->compat_v2 && op != PQ_SUM) v2_hist_zero(ev, &in.v);
    if (op == PQ_COUNT_VALUES && !re_valid_label_name(sparam, strlen(sparam))) {
        char q[128];
        go_quote(sparam, q, sizeof(q));
        fail(ev, -EINVAL, "invalid label name %s", q);
    }
    if ((op == PQ_TOPK || op == PQ_BOTTOMK)) {
        if (isnan(param)) fail(ev, -EINVAL, "Parameter value is NaN");
        if (param > 9.2e18 || param < -9.2e18)
            fail(ev, -EINVAL, "Scalar value %g overflows int64", param);
    }
    if (op == PQ_QUANTILE && (isnan(param) || param < 0 || param > 1)) {
        int l, c;
        pos_of(ev, e->param, &l, &c);
        warn(ev, "PromQL warning: quantile value should be between 0 and 1, got %s (%d:%d)",
             gfmt(param).s, l, c);
    }
    struct hmap idx = {0};
    struct kbuf kb = {0};
    struct group *g = NULL;
    size_t ng = 0, capg = 0;
    size_t *gi = ar_alloc(ev, (in.v.n ? in.v.n : 1) * sizeof(size_t));
    struct gmemo *gm = NULL;
    if (op != PQ_COUNT_VALUES) {
        struct selcache *c = cache_for(ev, e);
        if (!c->gm) c->gm = ar_alloc(ev, sizeof(*c->gm));
        gm = c->gm;
        gm->step++;
    }
    for (size_t i = 0; gm && i < in.v.n; i++) {
        size_t gid = gmemo_gid(ev, gm, in.v.s[i].ls, e);
        if (gm->stamp[gid] != gm->step) {
            gm->stamp[gid] = gm->step;
            gm->slot[gid] = ng;
            g = grow(ev, g, &capg, ng, sizeof(*g));
            memset(&g[ng], 0, sizeof(g[0]));
            g[ng].ls = gm->gl[gid];
            ng++;
        }
        gi[i] = gm->slot[gid];
    }
    for (size_t i = 0; !gm && i < in.v.n; i++) {
        struct smp *s = &in.v.s[i];
        /* count_values: the value is part of the group's labels */
        char vb[2048];
        if (s->h)
            hist_go_string(ev, s->h, vb, sizeof(vb));
        else
            pq_fmt_float(s->f, vb, sizeof(vb));
        const struct lset *base = group_labels(ev, s->ls, e);
        const struct lset *gl = ls_set(ev, base, sparam, ar_strdup(ev, vb));
        sig_key(ev, &kb, gl, NULL, 0, false, false);
        size_t k = ng;
        if (!hm_get_or_put(ev, &idx, kb.p, kb.n, &k)) {
            g = grow(ev, g, &capg, ng, sizeof(*g));
            memset(&g[ng], 0, sizeof(g[0]));
            g[ng].ls = gl;
            ng++;
        }
        gi[i] = k;
    }
    int64_t kk = 0;
    if (op == PQ_TOPK || op == PQ_BOTTOMK) {
        kk = (int64_t)param;
        if (kk < 1) return r;
    }
    for (size_t i = 0; i < in.v.n; i++) {
        struct smp *s = &in.v.s[i];
        struct group *gr = &g[gi[i]];
        double f = s->f;
        struct pq_hist *h = s->h;
        if (!gr->seen) {
            gr->seen = true;
            gr->f = f;
            gr->mean = f;
            gr->cnt = 1;
            gr->drop = s->drop;
            switch (op) {
            case PQ_SUM:
            case PQ_AVG:
                if (!h) {
                    gr->hasf = true;
                } else {
                    gr->h = hdup(ev, h);
                    gr->hash = true;
                    gr->reset = h->hint == RE_HINT_RESET;
                    gr->notreset = h->hint == RE_HINT_NOT_RESET;
                }
                break;
            case PQ_STDDEV:
            case PQ_STDVAR:
                if (h) {
                    gr->seen = false;
                    int l, c;
                    pos_of(ev, e->a, &l, &c);
                    warn(ev, "PromQL info: ignored histogram in %s aggregation (%d:%d)",
                         pq_agg_str(op), l, c);
                } else {
                    gr->f = (isnan(f) || isinf(f)) ? NAN : 0;
                }
                break;
            case PQ_QUANTILE:
                if (h) {
                    gr->seen = false;
                    int l, c;
                    pos_of(ev, e->a, &l, &c);
                    warn(ev, "PromQL info: ignored histogram in quantile aggregation (%d:%d)", l,
                         c);
                    break;
                }
                gr->vals = grow(ev, gr->vals, &gr->capvals, gr->nvals, sizeof(double));
                gr->vals[gr->nvals++] = f;
                break;
            case PQ_GROUP:
                gr->f = 1;
                break;
            case PQ_MIN:
            case PQ_MAX:
                if (h) {
                    gr->seen = false;
                    int l, c;
                    pos_of(ev, e->a, &l, &c);
                    warn(ev, "PromQL info: ignored histogram in %s aggregation (%d:%d)",
                         pq_agg_str(op), l, c);
                }
                break;
            case PQ_TOPK:
            case PQ_BOTTOMK:
                if (h) {
                    gr->seen = false;
                    int l, c;
                    pos_of(ev, e->a, &l, &c);
                    warn(ev, "PromQL info: ignored histogram in %s aggregation (%d:%d)",
                         pq_agg_str(op), l, c);
                    break;
                }
                gr->top = ar_alloc(ev, (size_t)(kk < (int64_t)in.v.n ? kk : (int64_t)in.v.n) *
                                               sizeof(struct smp) +
                                           sizeof(struct smp));
                gr->top[0] = *s;
                gr->ntop = 1;
                break;
            default:
                break;
            }
            continue;
        }
        if (gr->incompat) continue;
        if (s->drop) gr->drop = true;
        switch (op) {
        case PQ_SUM:
            if (h) {
                gr->hash = true;
                if (gr->h) {
                    if (h->hint == RE_HINT_RESET) gr->reset = true;
                    if (h->hint == RE_HINT_NOT_RESET) gr->notreset = true;
                    if (!gr->hc) gr->hc = track(ev, pq_hist_new_comp(gr->h));
                    bool rec = false;
                    int rc = pq_hist_add_ex(gr->h, gr->hc, h, 1, NULL, &rec);
                    if (rc == -ENOMEM) fail(ev, rc, "out of memory");
                    if (rc) {
                        gr->incompat = true;
                        int l, c;
                        pos_of(ev, e->a, &l, &c);
                        warn(ev,
                             "PromQL warning: vector contains a mix of histograms with exponential "
                             "and custom buckets schemas for metric name \"%s\" (%d:%d)",
                             metric_name(s->ls), l, c);
                    }
                    if (rec) {
                        int l, c;
                        pos_of(ev, e->a, &l, &c);
                        warn(ev,
                             "PromQL info: mismatched custom buckets were reconciled during "
                             "aggregation (%d:%d)",
                             l, c);
                    }
                }
            } else {
                gr->hasf = true;
                gr->f = kahan_inc(f, gr->f, &gr->c);
            }
            break;
        case PQ_AVG:
            gr->cnt++;
            if (h) {
                gr->hash = true;
                if (gr->h) {
                    if (h->hint == RE_HINT_RESET) gr->reset = true;
                    if (h->hint == RE_HINT_NOT_RESET) gr->notreset = true;
                    bool rec = false;
                    int rc = 0;
                    if (!gr->hincr) {
                        struct pq_hist *v = hdup(ev, gr->h);
                        struct pq_hist *cc =
                            gr->hc ? hdup(ev, gr->hc) : track(ev, pq_hist_new_comp(gr->h));
                        rc = pq_hist_add_ex(v, cc, h, 1, NULL, &rec);
                        if (rc == 0 && !pq_hist_overflow(v)) {
                            gr->h = v;
                            gr->hc = cc;
                        } else if (rc == 0) {
                            gr->hincr = true;
                            gr->hmean = hdup(ev, gr->h);
                            pq_hist_div(gr->hmean, gr->cnt - 1);
                            if (gr->hc) pq_hist_div(gr->hc, gr->cnt - 1);
                        }
                    }
                    if (rc == 0 && gr->hincr) {
                        double q = (gr->cnt - 1) / gr->cnt;
                        if (gr->hc)
                            pq_hist_scale(gr->hc, q);
                        else
                            gr->hc = track(ev, pq_hist_new_comp(gr->hmean));
                        struct pq_hist *ta = hdup(ev, h);
                        pq_hist_div(ta, gr->cnt);
                        pq_hist_scale(gr->hmean, q);
                        rc = pq_hist_add_ex(gr->hmean, gr->hc, ta, 1, NULL, &rec);
                    }
                    if (rc == -ENOMEM) fail(ev, rc, "out of memory");
                    if (rc) {
                        gr->incompat = true;
                        int l, c;
                        pos_of(ev, e->a, &l, &c);
                        warn(ev,
                             "PromQL warning: vector contains a mix of histograms with exponential "
                             "and custom buckets schemas for metric name \"%s\" (%d:%d)",
                             metric_name(s->ls), l, c);
                    }
                    if (rec) {
                        int l, c;
                        pos_of(ev, e->a, &l, &c);
                        warn(ev,
                             "PromQL info: mismatched custom buckets were reconciled during "
                             "aggregation (%d:%d)",
                             l, c);
                    }
                }
            } else {
                gr->hasf = true;
                if (!gr->incr) {
                    double c2 = gr->c;
                    double nv = kahan_inc(f, gr->f, &c2);
                    if (!isinf(nv)) {
                        gr->f = nv;
                        gr->c = c2;
                        break;
                    }
                    gr->incr = true;
                    gr->mean = gr->f / (gr->cnt - 1);
                    gr->c /= gr->cnt - 1;
                }
                double q = (gr->cnt - 1) / gr->cnt;
                double qc = q * gr->c;
                gr->mean = kahan_inc(f / gr->cnt, q * gr->mean, &qc);
                gr->c = qc;
            }
            break;
        case PQ_GROUP:
            break;
        case PQ_MAX:
            if (h) {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev, "PromQL info: ignored histogram in max aggregation (%d:%d)", l, c);
                break;
            }
            if (gr->f < f || isnan(gr->f)) gr->f = f;
            break;
        case PQ_MIN:
            if (h) {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev, "PromQL info: ignored histogram in min aggregation (%d:%d)", l, c);
                break;
            }
            if (gr->f > f || isnan(gr->f)) gr->f = f;
            break;
        case PQ_COUNT:
        case PQ_COUNT_VALUES:
            gr->cnt++;
            break;
        case PQ_STDDEV:
        case PQ_STDVAR:
            if (!h) {
                gr->cnt++;
                double d = f - gr->mean;
                gr->mean += d / gr->cnt;
                gr->f += d * (f - gr->mean);
            } else {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev, "PromQL info: ignored histogram in %s aggregation (%d:%d)", pq_agg_str(op),
                     l, c);
            }
            break;
        case PQ_QUANTILE:
            if (h) {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev, "PromQL info: ignored histogram in quantile aggregation (%d:%d)", l, c);
                break;
            }
            gr->vals = grow(ev, gr->vals, &gr->capvals, gr->nvals, sizeof(double));
            gr->vals[gr->nvals++] = f;
            break;
        case PQ_TOPK:
        case PQ_BOTTOMK: {
            if (h) {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev, "PromQL info: ignored histogram in %s aggregation (%d:%d)", pq_agg_str(op),
                     l, c);
                break;
            }
            bool top = op == PQ_TOPK;
            size_t lim = (size_t)(kk < (int64_t)in.v.n ? kk : (int64_t)in.v.n);
            if (gr->ntop < lim) {
                gr->top[gr->ntop++] = *s;
            } else {
                /* replace the worst if s is better */
                size_t worst = 0;
                for (size_t j = 1; j < gr->ntop; j++)
                    if (topk_better(&gr->top[worst], &gr->top[j], top)) worst = j;
                if (topk_better(s, &gr->top[worst], top)) gr->top[worst] = *s;
            }
            break;
        }
        }
    }
    for (size_t i = 0; i < ng; i++) {
        struct group *gr = &g[i];
        if (!gr->seen) continue;
        struct pq_hist *hout = NULL;
        double out = gr->f;
        switch (op) {
        case PQ_AVG:
        case PQ_SUM:
            if (gr->hasf && gr->hash) {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev,
                     "PromQL warning: encountered a mix of histograms and floats for aggregation "
                     "(%d:%d)",
                     l, c);
                continue;
            }
            if (gr->incompat) continue;
            if (gr->hash) {
                if (op == PQ_AVG && gr->hincr) {
                    if (gr->hc) pq_hist_add(gr->hmean, gr->hc, 1);
                    gr->h = gr->hmean;
                } else if (op == PQ_AVG) {
                    pq_hist_div(gr->h, gr->cnt);
                    if (gr->hc) {
                        pq_hist_div(gr->hc, gr->cnt);
                        pq_hist_add(gr->h, gr->hc, 1);
                    }
                } else if (gr->hc) {
                    pq_hist_add(gr->h, gr->hc, 1);
                }
                pq_hist_compact(gr->h);
                hout = gr->h;
            } else if (op == PQ_SUM) {
                out = gr->f + gr->c;
            } else if (gr->incr) {
                out = gr->mean + gr->c;
            } else {
                out = gr->f / gr->cnt + gr->c / gr->cnt;
            }
            if (gr->reset && gr->notreset) {
                int l, c;
                pos_of(ev, e->a, &l, &c);
                warn(ev,
                     "PromQL warning: conflicting counter resets during histogram aggregation "
                     "(%d:%d)",
                     l, c);
            }
            break;
        case PQ_COUNT:
        case PQ_COUNT_VALUES:
            out = gr->cnt;
            break;
        case PQ_STDVAR:
            out = gr->f / gr->cnt;
            break;
        case PQ_STDDEV:
            out = sqrt(gr->f / gr->cnt);
            break;
        case PQ_QUANTILE:
            out = quantile_of(param, gr->vals, gr->nvals);
            break;
        case PQ_TOPK:
        case PQ_BOTTOMK: {
            /* emit sorted best-first */
            bool top = op == PQ_TOPK;
            for (size_t a = 1; a < gr->ntop; a++)
                for (size_t b = a; b > 0 && topk_better(&gr->top[b], &gr->top[b - 1], top); b--) {
                    struct smp t = gr->top[b];
                    gr->top[b] = gr->top[b - 1];
                    gr->top[b - 1] = t;
                }
            for (size_t a = 0; a < gr->ntop; a++) {
                struct smp s = gr->top[a];
                vec_push(ev, &r.v, s);
            }
            continue;
        }
        default:
            break;
        }
        vec_push(ev, &r.v, (struct smp){gr->ls, out, hout, ts, gr->drop});
    }
    return r;
}

/* ---- binary operators ------------------------------------------------------------------------ */

static double scalar_binop(enum pq_op op, double l, double r) {
    switch (op) {
    case PQ_ADD:
        return l + r;
    case PQ_SUB:
        return l - r;
    case PQ_MUL:
        return l * r;
    case PQ_DIV:
        return l / r;
    case PQ_POW:
        return pow(l, r);
    case PQ_MOD:
        return fmod(l, r);
    case PQ_EQLC:
        return l == r;
    case PQ_NEQ:
        return l != r;
    case PQ_GTR:
        return l > r;
    case PQ_LSS:
        return l < r;
    case PQ_GTE:
        return l >= r;
    case PQ_LTE:
        return l <= r;
    case PQ_ATAN2:
        return atan2(l, r);
    default:
        return NAN;
    }
}

static bool is_cmp_op(enum pq_op op) {
    return op >= PQ_EQLC && op <= PQ_LTE;
}
static bool changes_schema(enum pq_op op) {
    return op >= PQ_ADD && op <= PQ_ATAN2;
}
/* shouldDropMetricName: 2.42 keeps the name through atan2 (3.x drops it). */
static bool drops_name(const struct ev *ev, enum pq_op op) {
    return changes_schema(op) && !(ev->o->compat_v2 && op == PQ_ATAN2);
}

/* Element binop; returns keep. *info set to a message when types are incompatible. */
static int elem_binop(struct ev *ev, enum pq_op op, double l, double r, struct pq_hist *hl,
                      struct pq_hist *hr, double *res, struct pq_hist **hres,
                      const struct promql_expr *e) {
    *hres = NULL;
    if ((hl || hr) && ev->o->compat_v2 && !(hl && hr && op == PQ_ADD)) {
        /* 2.42's vectorElemBinop between vectors: hist + hist is the only histogram
         * operation; otherwise the float values (0 for histograms) are used, and a float
         * paired with a histogram gives no result */
        if (!hl || !hr) return -1;
        *res = is_cmp_op(op) ? 0 : scalar_binop(op, 0, 0);
        return !is_cmp_op(op) || scalar_binop(op, 0, 0) != 0;
    }
    if (!hl && !hr) {
        if (is_cmp_op(op)) {
            *res = l;
            return scalar_binop(op, l, r) != 0;
        }
        *res = scalar_binop(op, l, r);
        return true;
    }
    const char *lt = hl ? "histogram" : "float", *rt = hr ? "histogram" : "float";
    if (!hl && hr && op == PQ_MUL) {
        *hres = hdup(ev, hr);
        pq_hist_scale(*hres, l);
        return true;
    }
    if (hl && !hr && (op == PQ_MUL || op == PQ_DIV)) {
        *hres = hdup(ev, hl);
        if (op == PQ_DIV && r == 0) {
            /* as Prometheus's FloatHistogram.Div: division by zero removes all buckets */
            (*hres)->npb = (*hres)->nnb = 0;
            (*hres)->zc /= r;
            (*hres)->count /= r;
            (*hres)->sum /= r;
            return true;
        }
        if (op == PQ_MUL)
            pq_hist_scale(*hres, r);
        else
            pq_hist_div(*hres, r);
        return true;
    }
    if (hl && hr) {
        if (op == PQ_ADD || op == PQ_SUB) {
            *hres = hdup(ev, hl);
            bool coll = false, rec = false;
            int rc = pq_hist_add_ex(*hres, NULL, hr, op == PQ_ADD ? 1 : -1, &coll, &rec);
            int ln, c;
            pos_of(ev, e, &ln, &c);
            if (rc == -ENOMEM) fail(ev, rc, "out of memory");
            if (rc) {
                warn(ev,
                     "PromQL warning: vector contains a mix of histograms with exponential and "
                     "custom buckets schemas for metric name \"\" (%d:%d)",
                     ln, c);
                return -1;
            }
            if (op == PQ_SUB) (*hres)->hint = RE_HINT_GAUGE;
            if (coll)
                warn(ev, "PromQL warning: conflicting counter resets during histogram %s (%d:%d)",
                     op == PQ_ADD ? "addition" : "subtraction", ln, c);
            if (rec)
                warn(ev, "PromQL info: mismatched custom buckets were reconciled during %s (%d:%d)",
                     op == PQ_ADD ? "addition" : "subtraction", ln, c);
            pq_hist_compact(*hres);
            return true;
        }
        if (op == PQ_EQLC || op == PQ_NEQ) {
            *hres = hl;
            bool eq = pq_hist_equal(hl, hr, 0, false);
            return op == PQ_EQLC ? eq : !eq;
        }
    }
    int ln, c;
    pos_of(ev, e, &ln, &c);
    warn(ev,
         "PromQL info: incompatible sample types encountered for binary operator \"%s\": %s %s %s "
         "(%d:%d)",
         pq_op_str(op), lt, pq_op_str(op), rt, ln, c);
    return -1;
}

static struct val eval_binop(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    struct val l = eval(ev, e->a, ts);
    struct val r = eval(ev, e->b, ts);
    enum pq_op op = e->op;
    if (l.type == PROMQL_SCALAR && r.type == PROMQL_SCALAR) {
        struct val o = l;
        o.scalar = scalar_binop(op, l.scalar, r.scalar);
        return o;
    }
    struct val out = vval();
    if (l.type == PROMQL_SCALAR || r.type == PROMQL_SCALAR) {
        bool swap = l.type == PROMQL_SCALAR;
        struct vec *v = swap ? &r.v : &l.v;
        double sc = swap ? l.scalar : r.scalar;
        for (size_t i = 0; i < v->n; i++) {
            struct smp s = v->s[i];
            if (s.h && ev->o->compat_v2) {
                /* 2.42's VectorscalarBinop works on the float value, 0 for a histogram
                 * sample, and passes the histogram on unchanged when the element is kept */
                bool keep = !is_cmp_op(op) || scalar_binop(op, swap ? sc : 0, swap ? 0 : sc);
                if (!keep && !e->bool_mod) continue;
                if (drops_name(ev, op) || e->bool_mod) s.drop = true;
                vec_push(ev, &out.v, s);
                continue;
            }
            double lf = s.f, rf = sc;
            struct pq_hist *lh = s.h, *rh = NULL;
            if (swap) {
                lf = sc;
                rf = s.f;
                lh = NULL;
                rh = s.h;
            }
            double res;
            struct pq_hist *hres;
            int kr = elem_binop(ev, op, lf, rf, lh, rh, &res, &hres, e);
            if (kr < 0) continue;
            bool keep = kr > 0;
            if (!keep && !is_cmp_op(op)) continue;
            if (is_cmp_op(op) && swap) {
                res = rf;
                hres = rh;
            } else if (is_cmp_op(op) && !hres) {
                hres = lh;
            }
            if (e->bool_mod) {
                res = keep ? 1 : 0;
                hres = NULL;
                keep = true;
            }
            if (!keep) continue;
            s.f = res;
            s.h = hres;
            if (drops_name(ev, op) || e->bool_mod) s.drop = true;
            vec_push(ev, &out.v, s);
        }
        return out;
    }
    /* vector - vector */
    bool on = e->has_matching && e->on;
    char **ml = e->mlabels;
    size_t nml = e->nmlabels;
    struct kbuf kb = {0};
    if (op == PQ_LAND || op == PQ_LOR || op == PQ_LUNLESS) {
        if (op == PQ_LOR) {
            if (l.v.n == 0) {
                return r;
            }
            if (r.v.n == 0) return l;
        }
        if (op == PQ_LAND && (l.v.n == 0 || r.v.n == 0)) return out;
        if (op == PQ_LUNLESS && (l.v.n == 0 || r.v.n == 0)) return l;
        struct hmap hm = {0};
        size_t one = 1;
        struct vec *probe = op == PQ_LOR ? &l.v : &r.v;
        for (size_t i = 0; i < probe->n; i++) {
            sig_key(ev, &kb, probe->s[i].ls, ml, nml, on, true);
            hm_get_or_put(ev, &hm, kb.p, kb.n, &one);
        }
        if (op == PQ_LOR) {
            for (size_t i = 0; i < l.v.n; i++)
                vec_push(ev, &out.v, l.v.s[i]);
            for (size_t i = 0; i < r.v.n; i++) {
                sig_key(ev, &kb, r.v.s[i].ls, ml, nml, on, true);
                size_t x = 0;
                struct hmap tmp = hm;
                (void)tmp;
                bool found = false;
                uint64_t h = fnv(kb.p, kb.n);
                size_t j = h & (hm.cap - 1);
                while (hm.e[j].k) {
                    if (hm.e[j].h == h && hm.e[j].kl == kb.n && !memcmp(hm.e[j].k, kb.p, kb.n)) {
                        found = true;
                        break;
                    }
                    j = (j + 1) & (hm.cap - 1);
                }
                (void)x;
                if (!found) vec_push(ev, &out.v, r.v.s[i]);
            }
            return out;
        }
        for (size_t i = 0; i < l.v.n; i++) {
            sig_key(ev, &kb, l.v.s[i].ls, ml, nml, on, true);
            bool found = false;
            uint64_t h = fnv(kb.p, kb.n);
            size_t j = h & (hm.cap - 1);
            while (hm.e[j].k) {
                if (hm.e[j].h == h && hm.e[j].kl == kb.n && !memcmp(hm.e[j].k, kb.p, kb.n)) {
                    found = true;
                    break;
                }
                j = (j + 1) & (hm.cap - 1);
            }
            if (found == (op == PQ_LAND)) vec_push(ev, &out.v, l.v.s[i]);
        }
        return out;
    }
    if (l.v.n == 0 || r.v.n == 0) return out;
    enum pq_card card = e->card;
    struct vec *lhs = &l.v, *rhs = &r.v;
    if (card == PQ_ONE_MANY) {
        lhs = &r.v;
        rhs = &l.v;
    }
    struct hmap rm = {0};
    size_t *rsig = ar_alloc(ev, rhs->n * sizeof(size_t));
    for (size_t i = 0; i < rhs->n; i++) {
        sig_key(ev, &kb, rhs->s[i].ls, ml, nml, on, true);
        size_t k = i;
        if (hm_get_or_put(ev, &rm, kb.p, kb.n, &k)) {
            char a[256], b[256], mlb[256];
            ls_str(rhs->s[i].ls, a, sizeof(a));
            ls_str(rhs->s[k].ls, b, sizeof(b));
            const struct lset *mls =
                on ? ls_filter(ev, rhs->s[i].ls, ml, nml, true)
                   : ls_del(ev, ls_filter(ev, rhs->s[i].ls, ml, nml, false), "__name__");
            ls_str(mls, mlb, sizeof(mlb));
            if (strcmp(a, b) > 0) {
                char t[256];
                memcpy(t, a, sizeof(t));
                memcpy(a, b, sizeof(a));
                memcpy(b, t, sizeof(b));
            }
            fail(ev, -EINVAL,
                 "found duplicate series for the match group %s on the %s hand-side of the "
                 "operation: [%s, %s];many-to-many matching not allowed: matching labels must be "
                 "unique on one side",
                 mlb, card == PQ_ONE_MANY ? "left" : "right", a, b);
        }
        rsig[i] = k;
    }
    (void)rsig;
    struct hmap matched = {0};
    struct hmap outsig = {0};
    struct kbuf kb2 = {0};
    for (size_t i = 0; i < lhs->n; i++) {
        struct smp *ls = &lhs->s[i];
        sig_key(ev, &kb, ls->ls, ml, nml, on, true);
        size_t k = SIZE_MAX;
        /* lookup only */
        bool found = false;
        if (rm.cap) {
            uint64_t h = fnv(kb.p, kb.n);
            size_t j = h & (rm.cap - 1);
            while (rm.e[j].k) {
                if (rm.e[j].h == h && rm.e[j].kl == kb.n && !memcmp(rm.e[j].k, kb.p, kb.n)) {
                    found = true;
                    k = rm.e[j].v;
                    break;
                }
                j = (j + 1) & (rm.cap - 1);
            }
        }
        if (!found) continue;
        struct smp *rs = &rhs->s[k];
        double fl = ls->f, fr = rs->f;
        struct pq_hist *hl = ls->h, *hr = rs->h;
        if (card == PQ_ONE_MANY) {
            fl = rs->f;
            fr = ls->f;
            hl = rs->h;
            hr = ls->h;
        }
        double res;
        struct pq_hist *hres;
        int kr = elem_binop(ev, op, fl, fr, hl, hr, &res, &hres, e);
        bool keep = kr > 0;
        bool inc_ok = kr >= 0;
        if (!keep && !is_cmp_op(op)) inc_ok = false;
        if (e->bool_mod) {
            res = keep ? 1 : 0;
            hres = NULL;
        }
        /* result metric */
        const struct lset *m = ls->ls;
        if (drops_name(ev, op)) m = ls_del(ev, m, "__name__");
        if (card == PQ_ONE_ONE) {
            if (on)
                m = ls_filter(ev, m, ml, nml, true);
            else
                m = ls_filter(ev, m, ml, nml, false);
        }
        for (size_t j = 0; j < e->ninclude; j++) {
            const char *v = ls_get(rs->ls, e->include[j]);
            m = ls_set(ev, m, e->include[j], v);
        }
        if (card == PQ_ONE_ONE) {
            size_t one = 1;
            if (hm_get_or_put(ev, &matched, kb.p, kb.n, &one))
                fail(ev, -EINVAL,
                     "multiple matches for labels: many-to-one matching must be explicit "
                     "(group_left/group_right)");
        } else {
            /* signature + output labels must be unique */
            kb2.n = 0;
            kb_add(ev, &kb2, kb.p ? kb.p : "");
            struct kbuf kb3 = {0};
            sig_key(ev, &kb3, m, NULL, 0, false, false);
            char *key = ar_alloc(ev, kb.n + kb3.n + 2);
            memcpy(key, kb.p, kb.n);
            key[kb.n] = '\x01';
            memcpy(key + kb.n + 1, kb3.p, kb3.n);
            size_t one = 1;
            if (hm_get_or_put(ev, &outsig, key, kb.n + kb3.n + 1, &one))
                fail(ev, -EINVAL,
                     "multiple matches for labels: grouping labels must ensure unique matches");
        }
        if (!inc_ok) continue;
        if (!keep && !e->bool_mod) continue;
        if (is_cmp_op(op) && !e->bool_mod && !hres && !ev->o->compat_v2) hres = hl;
        vec_push(
            ev, &out.v,
            (struct smp){m, res, hres, ts, e->bool_mod ? true : (ls->drop && !drops_name(ev, op))});
    }
    return out;
}

/* ---- functions ------------------------------------------------------------------------------ */

struct rx {
    pcre2_code *code;
    pcre2_match_data *md;
};

static void rx_free(struct rx *r) {
    if (!r) return;
    pcre2_match_data_free(r->md);
    pcre2_code_free(r->code);
    free(r);
}

/* Compiles "^(?s:re)$" (3.x) or "^(?:re)$" (2.x) as Go's label_replace does. Returns new or NULL.
 */
static struct rx *rx_compile(const char *re, bool v2) {
    size_t l = strlen(re);
    char *pat = malloc(l + 16);
    struct rx *r = calloc(1, sizeof(*r));
    if (!pat || !r) {
        free(pat);
        free(r);
        return NULL;
    }
    snprintf(pat, l + 16, v2 ? "^(?:%s)$" : "^(?s:%s)$", re); /* 2.x: no (?s) */
    int ec;
    PCRE2_SIZE eo;
    r->code = pcre2_compile((PCRE2_SPTR)pat, PCRE2_ZERO_TERMINATED,
                            PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &ec, &eo, NULL);
    free(pat);
    if (!r->code) {
        free(r);
        return NULL;
    }
    r->md = pcre2_match_data_create_from_pattern(r->code, NULL);
    if (!r->md) {
        rx_free(r);
        return NULL;
    }
    return r;
}

/* Go Regexp.ExpandString semantics. Returns 1 and *out (new) on match, 0 if no match. */
static int rx_expand(struct rx *r, const char *subj, const char *tmpl, char **out) {
    size_t sl = strlen(subj);
    int rc = pcre2_match(r->code, (PCRE2_SPTR)subj, sl, 0, 0, r->md, NULL);
    if (rc < 0) return 0;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(r->md);
    uint32_t ng = pcre2_get_ovector_count(r->md);
    size_t cap = strlen(tmpl) + 1, n = 0;
    for (const char *p = tmpl; *p; p++)
        if (*p == '$') cap += sl;
    char *o = malloc(cap + 1);
    if (!o) return -ENOMEM;
    for (const char *p = tmpl; *p;) {
        if (*p != '$') {
            o[n++] = *p++;
            continue;
        }
        if (p[1] == '$') {
            o[n++] = '$';
            p += 2;
            continue;
        }
        const char *nm = p + 1, *ne;
        bool brace = *nm == '{';
        if (brace) nm++;
        ne = nm;
        while ((*ne >= 'a' && *ne <= 'z') || (*ne >= 'A' && *ne <= 'Z') ||
               (*ne >= '0' && *ne <= '9') || *ne == '_')
            ne++;
        if (ne == nm || (brace && *ne != '}')) {
            o[n++] = '$';
            p++;
            continue;
        }
        size_t nl = (size_t)(ne - nm);
        p = ne + (brace ? 1 : 0);
        long gi = -1;
        bool num = true;
        for (size_t k = 0; k < nl; k++)
            if (nm[k] < '0' || nm[k] > '9') num = false;
        char name[128];
        if (nl >= sizeof(name)) continue;
        memcpy(name, nm, nl);
        name[nl] = 0;
        if (num)
            gi = strtol(name, NULL, 10);
        else
            gi = pcre2_substring_number_from_name(r->code, (PCRE2_SPTR)name);
        if (gi < 0 || (uint32_t)gi >= ng || gi >= rc || ov[2 * gi] == PCRE2_UNSET) continue;
        size_t a = ov[2 * gi], b = ov[2 * gi + 1];
        memcpy(o + n, subj + a, b - a);
        n += b - a;
    }
    o[n] = 0;
    *out = o;
    return 1;
}

static double round_go(double x) {
    /* Go math.Round: half away from zero */
    return round(x);
}

static double days_in_month(int64_t y, int m) {
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) return 29;
    return d[m - 1];
}

/* The date functions as Go computes them for time.Unix(int64(v), 0).UTC(): int64() truncates
 * toward zero and turns NaN and out-of-range values into INT64_MIN (amd64), and Go's
 * (pre-1.23) calendar works on seconds since its absolute zero year as a wrapping uint64, so
 * even those give the numbers 2.42 answers (year(NaN) = 292277026596). */
static double date_fn(int id, double v, bool v2) {
    int64_t sec;
    if (isnan(v) || v >= 9223372036854775808.0 || v < -9223372036854775808.0) {
        if (!v2) return NAN;
        sec = INT64_MIN;
    } else {
        sec = (int64_t)v;
    }
    /* unixToInternal + internalToAbsolute of Go's time package */
    uint64_t abs = (uint64_t)sec + UINT64_C(9223372028715321600);
    switch (id) {
    case F_HOUR:
        return (double)(abs % 86400 / 3600);
    case F_MINUTE:
        return (double)(abs % 3600 / 60);
    case F_DAY_OF_WEEK: /* absolute zero is a Monday */
        return (double)((abs + 86400) % (7 * 86400) / 86400);
    }
    uint64_t d = abs / 86400, n, y;
    const uint64_t d400 = 365 * 400 + 97, d100 = 365 * 100 + 24, d4 = 365 * 4 + 1;
    n = d / d400;
    y = 400 * n;
    d -= d400 * n;
    n = d / d100;
    n -= n >> 2;
    y += 100 * n;
    d -= d100 * n;
    n = d / d4;
    y += 4 * n;
    d -= d4 * n;
    n = d / 365;
    n -= n >> 2;
    y += n;
    d -= 365 * n;
    int64_t year = (int64_t)y + INT64_C(-292277022399);
    int yday = (int)d; /* 0-based */
    if (id == F_YEAR) return (double)year;
    if (id == F_DAY_OF_YEAR) return yday + 1;
    bool leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    static const int before[] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365};
    int day = yday, month, mday;
    if (leap && day == 31 + 29 - 1) {
        month = 2;
        mday = 29;
    } else {
        if (leap && day > 31 + 29 - 1) day--;
        month = day / 31;
        int begin = before[month];
        if (day >= before[month + 1]) begin = before[++month];
        month++;
        mday = day - begin + 1;
    }
    if (id == F_MONTH) return month;
    if (id == F_DAY_OF_MONTH) return mday;
    if (id == F_DAYS_IN_MONTH) return days_in_month(year, month);
    return NAN;
}

/* Go's math.Max/Min: an infinity in the direction wins even over NaN, then NaN wins, and
 * +0 is larger than -0. */
static double go_max(double a, double b) {
    if (isinf(a) && a > 0) return a;
    if (isinf(b) && b > 0) return b;
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && a == b) return signbit(a) ? b : a;
    return a > b ? a : b;
}

static double go_min(double a, double b) {
    if (isinf(a) && a < 0) return a;
    if (isinf(b) && b < 0) return b;
    if (isnan(a) || isnan(b)) return NAN;
    if (a == 0 && a == b) return signbit(a) ? a : b;
    return a < b ? a : b;
}

static double math_fn(int id, double x, double a, double b) {
    switch (id) {
    case F_ABS:
        return fabs(x);
    case F_CEIL:
        return ceil(x);
    case F_FLOOR:
        return floor(x);
    case F_EXP:
        return exp(x);
    case F_LN:
        return log(x);
    case F_LOG2:
        return log2(x);
    case F_LOG10:
        return log10(x);
    case F_SQRT:
        return sqrt(x);
    case F_SGN:
        return x > 0 ? 1 : x < 0 ? -1 : x;
    case F_ACOS:
        return acos(x);
    case F_ACOSH:
        return acosh(x);
    case F_ASIN:
        return asin(x);
    case F_ASINH:
        return asinh(x);
    case F_ATAN:
        return atan(x);
    case F_ATANH:
        return atanh(x);
    case F_COS:
        return cos(x);
    case F_COSH:
        return cosh(x);
    case F_SIN:
        return sin(x);
    case F_SINH:
        return sinh(x);
    case F_TAN:
        return tan(x);
    case F_TANH:
        return tanh(x);
    case F_DEG:
        return x * 180 / M_PI;
    case F_RAD:
        return x * M_PI / 180;
    case F_CLAMP:
        return go_max(a, go_min(b, x));
    case F_CLAMP_MIN:
        return go_max(a, x);
    case F_CLAMP_MAX:
        return go_min(a, x);
    case F_ROUND: {
        double inv = 1 / a;
        return floor(x * inv + 0.5) / inv;
    }
    }
    return NAN;
}

struct sortent {
    struct smp s;
    const char *const *lbls;
    size_t nl;
    bool desc;
};

static int sort_asc(const void *a, const void *b) {
    const struct smp *x = a, *y = b;
    if (isnan(x->f)) return isnan(y->f) ? 0 : 1;
    if (isnan(y->f)) return -1;
    return x->f < y->f ? -1 : x->f > y->f ? 1 : 0;
}

static int sort_desc(const void *a, const void *b) {
    const struct smp *x = a, *y = b;
    if (isnan(x->f)) return isnan(y->f) ? 0 : 1;
    if (isnan(y->f)) return -1;
    return x->f > y->f ? -1 : x->f < y->f ? 1 : 0;
}

struct sbl {
    char **names;
    size_t n;
    bool desc;
};

static int natcmp(const char *a, const char *b) {
    /* natural sort as Go's natsort used by sort_by_label */
    while (*a && *b) {
        if (*a >= '0' && *a <= '9' && *b >= '0' && *b <= '9') {
            const char *ea = a, *eb = b;
            while (*ea == '0')
                ea++;
            while (*eb == '0')
                eb++;
            const char *da = ea, *db = eb;
            while (*da >= '0' && *da <= '9')
                da++;
            while (*db >= '0' && *db <= '9')
                db++;
            if (da - ea != db - eb) return (da - ea) < (db - eb) ? -1 : 1;
            int c = strncmp(ea, eb, (size_t)(da - ea));
            if (c) return c;
            a = da;
            b = db;
            continue;
        }
        if (*a != *b) return (unsigned char)*a < (unsigned char)*b ? -1 : 1;
        a++;
        b++;
    }
    return *a ? 1 : *b ? -1 : 0;
}

static int sort_by_label_cmp(const void *a, const void *b, void *arg) {
    const struct smp *x = a, *y = b;
    const struct sbl *o = arg;
    for (size_t i = 0; i < o->n; i++) {
        const char *va = ls_get(x->ls, o->names[i]), *vb = ls_get(y->ls, o->names[i]);
        int c = natcmp(va ? va : "", vb ? vb : "");
        if (c) return o->desc ? -c : c;
    }
    int c = ls_cmp(x->ls, y->ls);
    return o->desc ? -c : c;
}

struct qlab {
    const char *name, *value;
};

/* histogram_quantile / histogram_fraction over classic buckets and native histograms of *a;
 * results go to out (labelled with ql when not NULL, for histogram_quantiles). */
static void hist_fn(struct ev *ev, bool frac, double q, double lo, double hi, const struct val *a,
                    const struct promql_expr *varg, int64_t ts, const struct qlab *ql,
                    struct vec *out) {
    int l, c;
    pos_of(ev, varg, &l, &c);
    struct hmap idx = {0};
    struct kbuf kb = {0};
    struct cls {
        const struct lset *ls;
        struct bucket *b;
        size_t n, cap;
        const char *name;
    } *groups = NULL;
    size_t ng = 0, capg = 0;
    for (size_t i = 0; i < a->v.n; i++) {
        struct smp *s = &a->v.s[i];
        if (s->h) continue;
        const char *le = ls_get(s->ls, "le");
        char *endp = NULL;
        double ub = le ? strtod(le, &endp) : 0;
        bool badle = !le || !*le || *endp != 0;
        if (le && (!strcasecmp(le, "+inf") || !strcasecmp(le, "inf"))) ub = INFINITY, badle = false;
        if (le && !strcasecmp(le, "-inf")) ub = -INFINITY, badle = false;
        if (le && !strcasecmp(le, "nan")) ub = NAN, badle = false;
        if (badle) {
            warn(ev,
                 "PromQL warning: bucket label \"le\" is missing or has a malformed value of "
                 "\"%s\" for metric name \"%s\" (%d:%d)",
                 le ? le : "", metric_name(s->ls), l, c);
            continue;
        }
        const struct lset *gl = ls_del(ev, s->ls, "le");
        sig_key(ev, &kb, gl, NULL, 0, false, false);
        size_t k = ng;
        if (!hm_get_or_put(ev, &idx, kb.p, kb.n, &k)) {
            groups = grow(ev, groups, &capg, ng, sizeof(*groups));
            memset(&groups[ng], 0, sizeof(groups[0]));
            groups[ng].ls = gl;
            groups[ng].name = metric_name(s->ls);
            ng++;
        }
        groups[k].b = grow(ev, groups[k].b, &groups[k].cap, groups[k].n, sizeof(struct bucket));
        groups[k].b[groups[k].n++] = (struct bucket){ub, s->f};
    }
    for (size_t i = 0; i < a->v.n; i++) {
        struct smp *s = &a->v.s[i];
        if (!s->h) continue;
        sig_key(ev, &kb, s->ls, NULL, 0, false, false);
        size_t k = SIZE_MAX;
        bool found = false;
        if (idx.cap) {
            uint64_t hsh = fnv(kb.p, kb.n);
            size_t j = hsh & (idx.cap - 1);
            while (idx.e[j].k) {
                if (idx.e[j].h == hsh && idx.e[j].kl == kb.n && !memcmp(idx.e[j].k, kb.p, kb.n)) {
                    found = true;
                    k = idx.e[j].v;
                    break;
                }
                j = (j + 1) & (idx.cap - 1);
            }
        }
        if (found && groups[k].n > 0) {
            warn(ev,
                 "PromQL warning: vector contains a mix of classic and native histograms for "
                 "metric name \"%s\" (%d:%d)",
                 metric_name(s->ls), l, c);
            groups[k].n = 0;
            continue;
        }
        struct smp o = *s;
        if (frac) {
            bool ni;
            o.f = hist_fraction(ev, lo, hi, s->h, &ni);
            if (ni)
                warn(ev,
                     "PromQL info: input to histogram_fraction has NaN observations, which are "
                     "excluded from all fractions for metric name \"%s\" (%d:%d)",
                     metric_name(s->ls), l, c);
        } else {
            int ni;
            o.f = hist_quantile(ev, q, s->h, &ni);
            if (ni == 1)
                warn(ev,
                     "PromQL info: input to histogram_quantile has NaN observations, result is NaN "
                     "for metric name \"%s\" (%d:%d)",
                     metric_name(s->ls), l, c);
            else if (ni == 2)
                warn(ev,
                     "PromQL info: input to histogram_quantile has NaN observations, result is "
                     "skewed higher for metric name \"%s\" (%d:%d)",
                     metric_name(s->ls), l, c);
        }
        o.h = NULL;
        o.drop = true;
        if (ql) o.ls = ls_set(ev, o.ls, ql->name, ql->value);
        vec_push(ev, out, o);
    }
    for (size_t i = 0; i < ng; i++) {
        if (groups[i].n == 0) continue;
        double v;
        if (frac) {
            v = bucket_fraction(lo, hi, groups[i].b, groups[i].n);
        } else {
            bool forced;
            v = bucket_quantile(q, groups[i].b, groups[i].n, &forced);
            if (forced)
                warn(ev,
                     "PromQL info: input to histogram_quantile needed to be fixed for monotonicity "
                     "(see "
                     "https://prometheus.io/docs/prometheus/latest/querying/functions/"
                     "#histogram_quantile) for metric name \"%s\" (%d:%d)",
                     groups[i].name, l, c);
        }
        vec_push(ev, out,
                 (struct smp){ql ? ls_set(ev, groups[i].ls, ql->name, ql->value) : groups[i].ls, v,
                              NULL, ts, true});
    }
}

static struct val eval_call(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    int id = e->fn->id;
    struct val r = vval();
    switch (id) {
    case F_RATE:
    case F_IRATE:
    case F_INCREASE:
    case F_DELTA:
    case F_IDELTA:
    case F_DERIV:
    case F_PREDICT_LINEAR:
    case F_RESETS:
    case F_CHANGES:
    case F_AVG_OT:
    case F_MIN_OT:
    case F_MAX_OT:
    case F_SUM_OT:
    case F_COUNT_OT:
    case F_LAST_OT:
    case F_FIRST_OT:
    case F_PRESENT_OT:
    case F_QUANTILE_OT:
    case F_STDDEV_OT:
    case F_STDVAR_OT:
    case F_MAD_OT:
    case F_ABSENT_OT:
    case F_TS_MIN_OT:
    case F_TS_MAX_OT:
    case F_TS_LAST_OT:
    case F_TS_FIRST_OT:
    case F_DES:
        return eval_range_func(ev, e, ts);
    case F_TIME:
        r.type = PROMQL_SCALAR;
        r.scalar = (double)ts / 1000;
        return r;
    case F_STEP:
    case F_RANGE:
        r.type = PROMQL_SCALAR;
        r.scalar = (double)(id == F_STEP ? ev->interval : ev->end - ev->start) / 1000;
        return r;
    case F_START:
    case F_END:
        r.type = PROMQL_SCALAR;
        r.scalar = (double)(id == F_START ? ev->start : ev->end) / 1000;
        return r;
    case F_MIN_OF:
    case F_MAX_OF: {
        double x = eval(ev, e->args[0], ts).scalar, y = eval(ev, e->args[1], ts).scalar;
        r.type = PROMQL_SCALAR;
        if (isnan(x) || isnan(y))
            r.scalar = NAN;
        else if (x == y) /* Go: Min(-0, 0) = -0, Max(-0, 0) = 0 */
            r.scalar = id == F_MIN_OF ? (signbit(x) ? x : y) : (signbit(x) ? y : x);
        else
            r.scalar = id == F_MIN_OF ? (x < y ? x : y) : (x > y ? x : y);
        return r;
    }
    case F_PI:
        r.type = PROMQL_SCALAR;
        r.scalar = M_PI;
        return r;
    case F_VECTOR: {
        struct val a = eval(ev, e->args[0], ts);
        vec_push(ev, &r.v, (struct smp){ls_new(ev, 0), a.scalar, NULL, ts, false});
        return r;
    }
    case F_SCALAR: {
        struct val a = eval(ev, e->args[0], ts);
        r.type = PROMQL_SCALAR;
        r.scalar = NAN;
        size_t nf = 0;
        for (size_t i = 0; i < a.v.n; i++)
            if (!a.v.s[i].h) {
                nf++;
                r.scalar = a.v.s[i].f;
            }
        if (nf != 1) r.scalar = NAN;
        return r;
    }
    case F_ABSENT: {
        struct val a = eval(ev, e->args[0], ts);
        if (a.v.n > 0) return r;
        const struct lset *cur = ls_new(ev, 0);
        const struct promql_expr *x = e->args[0];
        while (x->kind == PQ_PAREN)
            x = x->a;
        if (x->kind == PQ_VSEL) {
            for (size_t i = 0; i < x->nm; i++) {
                if (x->m[i].type != RE_MATCH_EQ || !strcmp(x->m[i].name, "__name__")) continue;
                bool dup = false;
                for (size_t j = 0; j < x->nm; j++)
                    if (j != i && !strcmp(x->m[j].name, x->m[i].name)) dup = true;
                if (!dup) cur = ls_set(ev, cur, x->m[i].name, x->m[i].value);
            }
        }
        vec_push(ev, &r.v, (struct smp){cur, 1, NULL, ts, false});
        return r;
    }
    case F_TIMESTAMP: {
        struct val a = eval(ev, e->args[0], ts);
        const struct promql_expr *x = e->args[0];
        while (x->kind == PQ_PAREN)
            x = x->a;
        for (size_t i = 0; i < a.v.n; i++) {
            struct smp s = a.v.s[i];
            s.f = (double)(x->kind == PQ_VSEL ? s.t : ts) / 1000;
            s.h = NULL;
            s.drop = true;
            vec_push(ev, &r.v, s);
        }
        return r;
    }
    case F_LABEL_REPLACE: {
        struct val a = eval(ev, e->args[0], ts);
        const char *dst = eval(ev, e->args[1], ts).str, *repl = eval(ev, e->args[2], ts).str,
                   *srcl = eval(ev, e->args[3], ts).str, *regex = eval(ev, e->args[4], ts).str;
        if (!re_valid_label_name(dst, strlen(dst)))
            fail(ev, -EINVAL, "invalid destination label name in label_replace(): %s", dst);
        struct rx *rx = rx_compile(regex, ev->o->compat_v2);
        if (!rx) fail(ev, -EINVAL, "invalid regular expression in label_replace(): %s", regex);
        for (size_t i = 0; i < a.v.n; i++) {
            struct smp s = a.v.s[i];
            const char *sv = ls_get(s.ls, srcl);
            char *res = NULL;
            int rc = rx_expand(rx, sv ? sv : "", repl, &res);
            if (rc < 0) {
                rx_free(rx);
                fail(ev, rc, "out of memory");
            }
            if (rc > 0) {
                s.ls = ls_set(ev, s.ls, dst, ar_strdup(ev, res));
                if (!strcmp(dst, "__name__")) s.drop = false;
            }
            free(res);
            vec_push(ev, &r.v, s);
        }
        rx_free(rx);
        return r;
    }
    case F_LABEL_JOIN: {
        struct val a = eval(ev, e->args[0], ts);
        const char *dst = eval(ev, e->args[1], ts).str, *sep = eval(ev, e->args[2], ts).str;
        if (!re_valid_label_name(dst, strlen(dst)))
            fail(ev, -EINVAL, "invalid destination label name in label_join(): %s", dst);
        for (size_t i = 0; i < a.v.n; i++) {
            struct smp s = a.v.s[i];
            size_t len = 1;
            for (size_t j = 3; j < e->nargs; j++) {
                const char *v = ls_get(s.ls, eval(ev, e->args[j], ts).str);
                len += (v ? strlen(v) : 0) + strlen(sep);
            }
            char *buf = ar_alloc(ev, len);
            for (size_t j = 3; j < e->nargs; j++) {
                const char *v = ls_get(s.ls, eval(ev, e->args[j], ts).str);
                if (j > 3) strcat(buf, sep);
                strcat(buf, v ? v : "");
            }
            s.ls = ls_set(ev, s.ls, dst, buf);
            if (!strcmp(dst, "__name__")) s.drop = false;
            vec_push(ev, &r.v, s);
        }
        return r;
    }
    case F_SORT:
    case F_SORT_DESC:
    case F_SORT_BY_LABEL:
    case F_SORT_BY_LABEL_DESC: {
        struct val a = eval(ev, e->args[0], ts);
        if (ev->is_range) {
            int l, c;
            pos_of(ev, e, &l, &c);
            warn(ev,
                 "PromQL warning: sort is ineffective for range queries since results are always "
                 "ordered by labels (%d:%d)",
                 l, c);
        }
        struct vec out = {0};
        /* 3.x drops histograms here; 2.42 keeps them (sorted by their float value, 0) */
        for (size_t i = 0; i < a.v.n; i++)
            if (!a.v.s[i].h || id >= F_SORT_BY_LABEL || ev->o->compat_v2)
                vec_push(ev, &out, a.v.s[i]);
        if (id == F_SORT || id == F_SORT_DESC) {
            /* stable for equal values: Go uses sort.Sort (not stable); keep input order */
            if (out.n > 1) qsort(out.s, out.n, sizeof(*out.s), id == F_SORT ? sort_asc : sort_desc);
        } else {
            char **names = ar_alloc(ev, (e->nargs ? e->nargs : 1) * sizeof(char *));
            for (size_t j = 1; j < e->nargs; j++)
                names[j - 1] = (char *)eval(ev, e->args[j], ts).str;
            struct sbl o = {names, e->nargs - 1, id == F_SORT_BY_LABEL_DESC};
            if (out.n > 1) qsort_r(out.s, out.n, sizeof(*out.s), sort_by_label_cmp, &o);
        }
        r.v = out;
        return r;
    }
    case F_HCOUNT:
    case F_HSUM:
    case F_HAVG:
    case F_HSTDDEV:
    case F_HSTDVAR: {
        struct val a = eval(ev, e->args[0], ts);
        for (size_t i = 0; i < a.v.n; i++) {
            struct smp s = a.v.s[i];
            if (!s.h) continue;
            struct pq_hist *h = s.h;
            double v = 0;
            if (id == F_HCOUNT)
                v = h->count;
            else if (id == F_HSUM)
                v = h->sum;
            else if (id == F_HAVG)
                v = h->sum / h->count;
            else {
                /* variance from bucket midpoints (geometric for exponential) */
                struct hb *b;
                size_t n = hist_buckets(ev, h, &b);
                double mean = h->sum / h->count, var = 0, cv = 0;
                for (size_t k = 0; k < n; k++) {
                    double val;
                    if (b[k].zero)
                        val = 0;
                    else if (h->schema == PQ_SCHEMA_CUSTOM)
                        val = (b[k].lo + b[k].hi) / 2;
                    else if (b[k].hi > 0)
                        val = sqrt(b[k].lo * b[k].hi);
                    else
                        val = -sqrt(b[k].lo * b[k].hi);
                    if (h->schema == PQ_SCHEMA_CUSTOM) {
                        if (isinf(b[k].hi)) val = b[k].lo;
                        if (isinf(b[k].lo)) val = b[k].hi;
                    }
                    double d = val - mean;
                    var = kahan_inc(b[k].c * d * d, var, &cv);
                }
                var = (var + cv) / h->count;
                v = id == F_HSTDDEV ? sqrt(var) : var;
            }
            s.f = v;
            s.h = NULL;
            s.drop = true;
            vec_push(ev, &r.v, s);
        }
        return r;
    }
    case F_HFRACTION:
    case F_HQUANTILE: {
        bool frac = id == F_HFRACTION;
        double q = 0, lo = 0, hi = 0;
        const struct promql_expr *varg = e->args[frac ? 2 : 1];
        if (frac) {
            lo = eval(ev, e->args[0], ts).scalar;
            hi = eval(ev, e->args[1], ts).scalar;
        } else {
            q = eval(ev, e->args[0], ts).scalar;
        }
        struct val a = eval(ev, varg, ts);
        if (!frac && (isnan(q) || q < 0 || q > 1)) {
            int l0, c0;
            pos_of(ev, e->args[0], &l0, &c0);
            warn(ev, "PromQL warning: quantile value should be between 0 and 1, got %s (%d:%d)",
                 gfmt(q).s, l0, c0);
        }
        hist_fn(ev, frac, q, lo, hi, &a, varg, ts, NULL, &r.v);
        return r;
    }
    case F_HQUANTILES: {
        struct val a = eval(ev, e->args[0], ts);
        const char *qlabel = eval(ev, e->args[1], ts).str;
        for (size_t i = 2; i < e->nargs; i++) {
            double q = eval(ev, e->args[i], ts).scalar;
            if (isnan(q) || q < 0 || q > 1) {
                int l0, c0;
                pos_of(ev, e->args[i], &l0, &c0);
                warn(ev, "PromQL warning: quantile value should be between 0 and 1, got %s (%d:%d)",
                     gfmt(q).s, l0, c0);
            }
            char qs[48];
            if (q == 1 || q == 0 || q == -1)
                snprintf(qs, sizeof(qs), "%.1f", q);
            else {
                snprintf(qs, sizeof(qs), "%s", gfmt(q).s);
                if (!isnan(q) && !isinf(q) && !strpbrk(qs, "e.")) strcat(qs, ".0");
            }
            struct qlab ql = {qlabel, ar_strdup(ev, qs)};
            hist_fn(ev, false, q, 0, 0, &a, e->args[0], ts, &ql, &r.v);
        }
        return r;
    }
    case F_DAYS_IN_MONTH:
    case F_DAY_OF_MONTH:
    case F_DAY_OF_WEEK:
    case F_DAY_OF_YEAR:
    case F_HOUR:
    case F_MINUTE:
    case F_MONTH:
    case F_YEAR: {
        if (e->nargs == 0) {
            vec_push(ev, &r.v,
                     (struct smp){ls_new(ev, 0), date_fn(id, (double)(ts / 1000), ev->o->compat_v2),
                                  NULL, ts, false});
            return r;
        }
        struct val a = eval(ev, e->args[0], ts);
        for (size_t i = 0; i < a.v.n; i++) {
            struct smp s = a.v.s[i];
            if (s.h) continue;
            s.f = date_fn(id, s.f, ev->o->compat_v2);
            s.drop = true;
            vec_push(ev, &r.v, s);
        }
        return r;
    }
    default: {
        /* simple math over a vector */
        double pa = 0, pb = 0;
        if (id == F_ROUND) pa = 1;
        if (e->nargs > 1) pa = eval(ev, e->args[1], ts).scalar;
        if (e->nargs > 2) pb = eval(ev, e->args[2], ts).scalar;
        struct val a = eval(ev, e->args[0], ts);
        if (id == F_CLAMP && pa > pb) return r;
        for (size_t i = 0; i < a.v.n; i++) {
            struct smp s = a.v.s[i];
            if (s.h) {
                if (id == F_ABS || id == F_CEIL || id == F_FLOOR || id == F_ROUND || id == F_EXP ||
                    id == F_SQRT || id == F_LN || id == F_LOG2 || id == F_LOG10 || id == F_SGN ||
                    id == F_CLAMP || id == F_CLAMP_MIN || id == F_CLAMP_MAX || id >= F_ACOS) {
                    continue;
                }
                continue;
            }
            s.f = math_fn(id, s.f, pa, pb);
            s.drop = true;
            vec_push(ev, &r.v, s);
        }
        (void)round_go;
        return r;
    }
    }
}

/* ---- dispatcher ---------------------------------------------------------------------------- */

static struct val eval_node(struct ev *ev, const struct promql_expr *e, int64_t ts);

static struct val eval(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    bool zero = false;
    for (size_t i = 0; ev->zcall && i < ev->zcall->nargs; i++)
        zero |= ev->zcall->args[i] == e;
    struct val r = eval_node(ev, e, ts);
    if (zero && r.type == PROMQL_VECTOR) v2_hist_zero(ev, &r.v);
    return r;
}

static struct val eval_node(struct ev *ev, const struct promql_expr *e, int64_t ts) {
    if (ev->o->cancelled && ev->o->cancelled(ev->o->cancel_arg))
        fail(ev, -ECANCELED, "query cancelled");
    struct val r;
    memset(&r, 0, sizeof(r));
    switch (e->kind) {
    case PQ_NUM:
        r.type = PROMQL_SCALAR;
        r.scalar = e->num;
        return r;
    case PQ_STR:
        r.type = PROMQL_STRING;
        r.str = e->str;
        return r;
    case PQ_PAREN:
        return eval(ev, e->a, ts);
    case PQ_UNARY:
        r = eval(ev, e->a, ts);
        if (r.type == PROMQL_SCALAR) {
            r.scalar = -r.scalar;
        } else {
            struct vec o = {0};
            for (size_t i = 0; i < r.v.n; i++) {
                struct smp s = r.v.s[i];
                if (s.h && ev->o->compat_v2) {
                    /* 2.42 negates the float value only: the histogram is unchanged */
                } else if (s.h) {
                    s.h = hdup(ev, s.h);
                    pq_hist_scale(s.h, -1);
                    s.h->hint = RE_HINT_GAUGE;
                } else {
                    s.f = -s.f;
                }
                s.drop = true;
                vec_push(ev, &o, s);
            }
            r.v = o;
        }
        return r;
    case PQ_VSEL:
        return eval_vsel(ev, e, ts);
    case PQ_MSEL:
    case PQ_SUBQ: {
        size_t nw;
        int64_t range, rend;
        struct win *w = eval_windows(ev, e, ts, &nw, &range, &rend);
        r.type = PROMQL_MATRIX;
        for (size_t i = 0; i < nw; i++) {
            r.m.s = grow(ev, r.m.s, &r.m.cap, r.m.n, sizeof(*r.m.s));
            struct mser *ms = &r.m.s[r.m.n++];
            memset(ms, 0, sizeof(*ms));
            ms->ls = w[i].ls;
            ms->drop = w[i].drop;
            for (size_t k = 0; k < w[i].n; k++)
                mser_push(ev, ms, w[i].t[k], w[i].f[k], w[i].h[k]);
        }
        return r;
    }
    case PQ_BIN:
        return eval_binop(ev, e, ts);
    case PQ_AGG:
        return eval_agg(ev, e, ts);
    case PQ_CALL: {
        const struct promql_expr *saved = ev->zcall;
        ev->zcall = ev->o->compat_v2 && !v2_reads_hists(e->fn->id) ? e : NULL;
        r = eval_call(ev, e, ts);
        ev->zcall = saved;
        return r;
    }
    }
    return r;
}

/* ---- results ---------------------------------------------------------------------------- */

void promql_opts_default(struct promql_opts *o) {
    memset(o, 0, sizeof(*o));
    o->lookback_ms = 5 * 60 * 1000;
    o->max_samples = 50000000;
}

void promql_result_free(struct promql_result *r) {
    if (!r) return;
    free(r->str);
    for (size_t i = 0; i < r->nseries; i++) {
        struct promql_series *s = &r->series[i];
        free(s->labels); /* labels and their strings are one block */
        for (size_t j = 0; j < s->npoints; j++)
            free(s->points[j].h);
        free(s->points);
    }
    free(r->series);
    for (size_t i = 0; i < r->nwarnings; i++)
        free(r->warnings[i]);
    free(r->warnings);
    free(r);
}

static void ev_fini(struct ev *ev) {
    while (ev->arena) {
        struct achunk *n = ev->arena->next;
        free(ev->arena);
        ev->arena = n;
    }
    for (size_t i = 0; i < ev->nowned; i++)
        pq_hist_free(ev->owned[i]);
    free(ev->owned);
    free(ev->sc);
}

/* Out series being built during a range/instant evaluation. */
struct oser {
    const struct lset *ls;
    struct promql_point *p;
    size_t n, cap;
    bool drop;
};

static int oser_cmp(const void *a, const void *b) {
    return ls_cmp(((const struct oser *)a)->ls, ((const struct oser *)b)->ls);
}

static int run(const struct promql_expr *e, const struct re_source *src, int64_t start, int64_t end,
               int64_t step, bool instant, const struct promql_opts *o, struct promql_result **out,
               struct perr *err) {
    struct promql_opts def;
    if (!o) {
        promql_opts_default(&def);
        o = &def;
    } else if (o->lookback_ms <= 0) {
        /* as Prometheus: a zero lookback delta means the default 5m */
        def = *o;
        def.lookback_ms = 5 * 60 * 1000;
        o = &def;
    }
    *out = NULL;
    struct ev *ev = calloc(1, sizeof(*ev));
    struct promql_result *res = calloc(1, sizeof(*res));
    if (!ev || !res) {
        free(ev);
        free(res);
        perr_set(err, 0, 0, "out of memory");
        return -ENOMEM;
    }
    ev->src = src;
    ev->o = o;
    ev->start = start;
    ev->end = end;
    ev->interval = instant ? 0 : step;
    ev->is_range = !instant;
    ev->qsrc = "";
    /* os/nos live in ev (not in locals) so that they are valid after longjmp */
#define os (ev->os)
#define nos (ev->nos)
#define capos (ev->capos)
    if (setjmp(ev->jb)) {
        int rc = ev->err;
        perr_set(err, 0, 0, "%s", ev->msg);
        for (size_t i = 0; i < nos; i++)
            free(os[i].p);
        for (size_t i = 0; i < ev->nwarn; i++)
            free(ev->warn[i]);
        free(ev->warn);
        ev_fini(ev);
        free(ev);
        promql_result_free(res);
        return rc;
    }
    ev->qsrc = e->src ? e->src : "";
    prep(ev, e, start, end);
    enum promql_vtype t = pq_type(e);
    if (instant && (t == PROMQL_SCALAR || t == PROMQL_STRING)) {
        struct val v = eval(ev, e, start);
        res->type = t;
        res->scalar = v.scalar;
        res->t = start;
        if (t == PROMQL_STRING) {
            res->str = strdup(v.str);
            if (!res->str) fail(ev, -ENOMEM, "out of memory");
        }
    } else if (instant && t == PROMQL_MATRIX) {
        struct val v = eval(ev, e, start);
        res->type = PROMQL_MATRIX;
        for (size_t i = 0; i < v.m.n; i++) {
            os = grow(ev, os, &capos, nos, sizeof(*os));
            /* grow() allocates from the arena; copy points to malloc at the end */
            memset(&os[nos], 0, sizeof(os[0]));
            os[nos].ls = v.m.s[i].ls;
            os[nos].drop = v.m.s[i].drop;
            struct mser *ms = &v.m.s[i];
            os[nos].p = calloc(ms->n ? ms->n : 1, sizeof(struct promql_point));
            if (!os[nos].p) fail(ev, -ENOMEM, "out of memory");
            nos++;
            for (size_t k = 0; k < ms->n; k++)
                os[nos - 1].p[k] =
                    (struct promql_point){ms->t[k], ms->f[k], (struct re_hist *)ms->h[k]};
            os[nos - 1].n = ms->n;
        }
    } else {
        res->type = instant ? PROMQL_VECTOR : PROMQL_MATRIX;
        struct lmap idx = {0};
        for (int64_t ts = start; ts <= end; ts += step) {
            struct val v = eval(ev, e, ts);
            if (v.type == PROMQL_SCALAR) {
                v.v.n = 0;
                v.v.s = NULL;
                v.v.cap = 0;
                vec_push(ev, &v.v, (struct smp){ls_new(ev, 0), v.scalar, NULL, ts, false});
            }
            /* delayed name removal; two samples of one step with the same labels (the
             * second finds its series already holding a point at ts) are an error */
            for (size_t i = 0; i < v.v.n; i++) {
                struct smp *s = &v.v.s[i];
                const struct lset *ls = s->drop ? ls_del(ev, s->ls, "__name__") : s->ls;
                size_t k = nos;
                if (!lm_get_or_put(ev, &idx, ls, &k)) {
                    os = grow(ev, os, &capos, nos, sizeof(*os));
                    memset(&os[nos], 0, sizeof(os[0]));
                    os[nos].ls = ls;
                    nos++;
                }
                struct oser *se = &os[k];
                if (se->n == se->cap) {
                    size_t nc = se->cap ? se->cap * 2 : 4;
                    struct promql_point *np = realloc(se->p, nc * sizeof(*np));
                    if (!np) fail(ev, -ENOMEM, "out of memory");
                    se->p = np;
                    se->cap = nc;
                }
                if (se->n && (instant || se->p[se->n - 1].t == ts))
                    fail(ev, -EINVAL, "vector cannot contain metrics with the same labelset");
                se->p[se->n++] = (struct promql_point){ts, s->f, (struct re_hist *)s->h};
            }
        }
    }
    if (res->type == PROMQL_MATRIX)
        if (nos > 1) qsort(os, nos, sizeof(*os), oser_cmp);
    /* convert to the public result */
    res->series = calloc(nos ? nos : 1, sizeof(*res->series));
    if (!res->series) fail(ev, -ENOMEM, "out of memory");
    for (size_t i = 0; i < nos; i++) {
        struct promql_series *ps = &res->series[i];
        const struct lset *ls = os[i].drop ? ls_del(ev, os[i].ls, "__name__") : os[i].ls;
        /* one block per series: the label array followed by the strings */
        size_t bytes = (ls->n ? ls->n : 1) * sizeof(*ps->labels);
        for (size_t k = 0; k < ls->n; k++)
            bytes += strlen(ls->l[k].name) + strlen(ls->l[k].value) + 2;
        ps->labels = malloc(bytes);
        if (!ps->labels) fail(ev, -ENOMEM, "out of memory");
        res->nseries = i + 1;
        char *sp = (char *)(ps->labels + (ls->n ? ls->n : 1));
        for (size_t k = 0; k < ls->n; k++) {
            size_t nl = strlen(ls->l[k].name) + 1, vl = strlen(ls->l[k].value) + 1;
            memcpy(sp, ls->l[k].name, nl);
            ps->labels[k].name = sp;
            sp += nl;
            memcpy(sp, ls->l[k].value, vl);
            ps->labels[k].value = sp;
            sp += vl;
        }
        ps->nlabels = ls->n;
        ps->points = os[i].p;
        ps->npoints = os[i].n;
        os[i].p = NULL;
        for (size_t k = 0; k < ps->npoints; k++) {
            if (ps->points[k].h) {
                struct re_hist *h = pq_hist_to_re((struct pq_hist *)ps->points[k].h);
                ps->points[k].h = h;
                if (!h) fail(ev, -ENOMEM, "out of memory");
            }
        }
    }
    os = NULL;
    nos = 0;
    res->warnings = ev->warn;
    res->nwarnings = ev->nwarn;
    ev->warn = NULL;
    ev->nwarn = 0;
    ev_fini(ev);
    free(ev);
    *out = res;
    return 0;
#undef os
#undef nos
#undef capos
}

int promql_eval_instant(const struct promql_expr *e, const struct re_source *src, int64_t t_ms,
                        const struct promql_opts *o, struct promql_result **out, struct perr *err) {
    return run(e, src, t_ms, t_ms, 1, true, o, out, err);
}

int promql_eval_range(const struct promql_expr *e, const struct re_source *src, int64_t start_ms,
                      int64_t end_ms, int64_t step_ms, const struct promql_opts *o,
                      struct promql_result **out, struct perr *err) {
    if (step_ms <= 0 || end_ms < start_ms) {
        *out = NULL;
        return perr_set(err, 0, 0, "invalid range query: end before start or step <= 0");
    }
    enum promql_vtype t = pq_type(e);
    if (t != PROMQL_SCALAR && t != PROMQL_VECTOR) {
        *out = NULL;
        return perr_set(
            err, 0, 0,
            "invalid expression type \"%s\" for range query, must be Scalar or instant Vector",
            t == PROMQL_MATRIX ? "range vector" : "string");
    }
    return run(e, src, start_ms, end_ms, step_ms, false, o, out, err);
}
