/* SPDX-License-Identifier: Apache-2.0 */
/* Metric family set for one scrape and its text-format 0.0.4 encoder (client_golang's order). */
#include "expose.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

/* Strings live in a bump arena owned by the set: a scrape adds a few thousand short
 * strings and frees them all at once, so per-string malloc would be pure overhead. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    char data[];
};

struct sample {
    const char *suffix;
    struct re_label *labels; /* sorted by name */
    uint32_t nlabels;
    bool has_ts;
    double value;
    int64_t ts_ms;
};

struct mfam {
    struct mset *set;
    uint64_t hash; /* of name */
    const char *name;
    const char *help;
    enum mtype type;
    struct sample *samples;
    size_t n, cap;
};

/* One open-addressing table serves two lookups: families by name (fam != NULL, idx == SIZE_MAX)
 * and series by (family, suffix, labels) for the duplicate check. */
struct slot {
    uint64_t hash;
    struct mfam *fam;
    size_t idx;
};

#define RECENT 8

struct mset {
    struct chunk *arena;
    struct mfam **fams;
    size_t nfams, capfams;
    struct slot *tab;
    size_t tabcap, tabused;
    /* label strings copied lately: collectors emit runs of samples sharing names and values
     * (a cgroup's ~25 series share its ~100-byte id), so these are reused, not copied */
    const char *recent[RECENT];
    unsigned recent_next;
};

#define FAM_IDX SIZE_MAX
#define MAX_VA_PAIRS 16

static void *arena_alloc(struct mset *s, size_t n, size_t align) {
    struct chunk *c = s->arena;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off + n <= c->cap) {
            c->used = off + n;
            return c->data + off;
        }
    }
    size_t cap = n + align > 16384 ? n + align : 16384;
    c = malloc(sizeof(*c) + cap);
    if (!c) return NULL;
    c->cap = cap;
    c->next = s->arena;
    s->arena = c;
    size_t off =
        ((uintptr_t)c->data & (align - 1)) ? align - ((uintptr_t)c->data & (align - 1)) : 0;
    c->used = off + n;
    return c->data + off;
}

static const char *arena_strdup(struct mset *s, const char *str) {
    size_t n = strlen(str) + 1;
    char *p = arena_alloc(s, n, 1);
    if (p) memcpy(p, str, n);
    return p;
}

/* A word-at-a-time string hash (multiply-xorshift per 8 bytes, length mixed in so "ab","c"
 * and "a","bc" differ). Series ids are ~100-byte label strings hashed once per sample, so
 * byte-wise FNV showed up in scrape profiles. */
static uint64_t hash_bytes(uint64_t h, const char *p) {
    size_t n = strlen(p);
    h ^= n * 0x9e3779b97f4a7c15ULL;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
        p += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, n);
    h = (h ^ w ^ ((uint64_t)n << 56)) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

struct mset *mset_new(void) {
    struct mset *s = calloc(1, sizeof(*s));
    if (!s) return NULL;
    s->tabcap = 256;
    s->tab = calloc(s->tabcap, sizeof(*s->tab));
    if (!s->tab) {
        mset_free(s);
        return NULL;
    }
    return s;
}

void mset_free(struct mset *s) {
    if (!s) return;
    for (size_t i = 0; i < s->nfams; i++) {
        free(s->fams[i]->samples);
        free(s->fams[i]);
    }
    free(s->fams);
    free(s->tab);
    struct chunk *c = s->arena;
    while (c) {
        struct chunk *next = c->next;
        free(c);
        c = next;
    }
    free(s);
}

static int tab_grow(struct mset *s) {
    size_t cap = s->tabcap * 2;
    struct slot *t = calloc(cap, sizeof(*t));
    if (!t) return -ENOMEM;
    for (size_t i = 0; i < s->tabcap; i++) {
        if (!s->tab[i].fam) continue;
        size_t j = s->tab[i].hash & (cap - 1);
        while (t[j].fam)
            j = (j + 1) & (cap - 1);
        t[j] = s->tab[i];
    }
    free(s->tab);
    s->tab = t;
    s->tabcap = cap;
    return 0;
}

static struct mfam *find_family(const struct mset *s, const char *name, uint64_t h) {
    for (size_t j = h & (s->tabcap - 1); s->tab[j].fam; j = (j + 1) & (s->tabcap - 1)) {
        const struct slot *e = &s->tab[j];
        if (e->hash == h && e->idx == FAM_IDX && strcmp(e->fam->name, name) == 0) return e->fam;
    }
    return NULL;
}

static int tab_insert(struct mset *s, uint64_t h, struct mfam *f, size_t idx) {
    if ((s->tabused + 1) * 4 > s->tabcap * 3 && tab_grow(s)) return -ENOMEM;
    size_t j = h & (s->tabcap - 1);
    while (s->tab[j].fam)
        j = (j + 1) & (s->tabcap - 1);
    s->tab[j] = (struct slot){.hash = h, .fam = f, .idx = idx};
    s->tabused++;
    return 0;
}

static uint64_t fam_hash(const char *name) {
    return hash_bytes(0xcbf29ce484222325ULL, name);
}

struct mfam *mset_family(struct mset *s, const char *name, const char *help, enum mtype type) {
    if (!s || !name) return NULL;
    uint64_t h = fam_hash(name);
    struct mfam *f = find_family(s, name, h);
    if (f) return f->type == type ? f : NULL;
    if (!re_valid_metric_name(name, strlen(name))) return NULL; /* checked once, at creation */
    if (s->nfams == s->capfams) {
        size_t cap = s->capfams ? s->capfams * 2 : 64;
        struct mfam **p = realloc(s->fams, cap * sizeof(*p));
        if (!p) return NULL;
        s->fams = p;
        s->capfams = cap;
    }
    f = calloc(1, sizeof(*f));
    if (!f) return NULL;
    f->set = s;
    f->hash = h;
    f->type = type;
    f->name = arena_strdup(s, name);
    f->help = help ? arena_strdup(s, help) : NULL; /* NULL: no HELP line (pushed families) */
    if (!f->name || (help && !f->help) || tab_insert(s, h, f, FAM_IDX)) {
        free(f);
        return NULL;
    }
    s->fams[s->nfams++] = f;
    return f;
}

bool mset_has(const struct mset *s, const char *name) {
    return s && name && find_family(s, name, fam_hash(name)) != NULL;
}

size_t mset_count(const struct mset *s, const char *name) {
    if (!s || !name) return 0;
    struct mfam *f = find_family(s, name, fam_hash(name));
    return f ? f->n : 0;
}

static int label_cmp(const void *a, const void *b) {
    return strcmp(((const struct re_label *)a)->name, ((const struct re_label *)b)->name);
}

static uint64_t series_hash(const struct mfam *f, const struct sample *x) {
    uint64_t h = hash_bytes(f->hash ^ 0x9e3779b97f4a7c15ULL, x->suffix);
    for (uint32_t i = 0; i < x->nlabels; i++) {
        h = hash_bytes(h, x->labels[i].name);
        h = hash_bytes(h, x->labels[i].value);
    }
    return h;
}

static bool same_series(const struct sample *a, const struct sample *b) {
    if (a->nlabels != b->nlabels || strcmp(a->suffix, b->suffix) != 0) return false;
    for (uint32_t i = 0; i < a->nlabels; i++)
        if (strcmp(a->labels[i].name, b->labels[i].name) != 0 ||
            strcmp(a->labels[i].value, b->labels[i].value) != 0)
            return false;
    return true;
}

/* An arena copy of str, shared with an equal string copied lately (see mset.recent). */
static const char *label_str(struct mset *s, const char *str) {
    for (unsigned i = 0; i < RECENT; i++)
        if (s->recent[i] && strcmp(s->recent[i], str) == 0) return s->recent[i];
    const char *p = arena_strdup(s, str);
    if (p) {
        s->recent[s->recent_next] = p;
        s->recent_next = (s->recent_next + 1) % RECENT;
    }
    return p;
}

/* ASCII is valid UTF-8; only values with high bytes need the full check. */
static bool valid_utf8(const char *s) {
    const char *p = s;
    while (*p && !((unsigned char)*p & 0x80))
        p++;
    return !*p || re_valid_utf8(s, strlen(s));
}

static int add(struct mfam *f, const char *suffix, const struct re_label *labels, size_t nlabels,
               double value, bool has_ts, int64_t ts_ms) {
    if (!f || (nlabels && !labels) || nlabels > UINT32_MAX) return -EINVAL;
    struct mset *s = f->set;
    for (size_t i = 0; i < nlabels; i++) {
        if (!labels[i].name || !labels[i].value ||
            !re_valid_label_name(labels[i].name, strlen(labels[i].name)) ||
            !valid_utf8(labels[i].value))
            return -EINVAL;
    }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        struct sample *p = realloc(f->samples, cap * sizeof(*p));
        if (!p) return -ENOMEM;
        f->samples = p;
        f->cap = cap;
    }
    struct sample x = {
        .nlabels = (uint32_t)nlabels, .has_ts = has_ts, .value = value, .ts_ms = ts_ms};
    x.suffix = arena_strdup(s, suffix ? suffix : "");
    if (!x.suffix) return -ENOMEM;
    if (nlabels) {
        x.labels = arena_alloc(s, nlabels * sizeof(*x.labels), _Alignof(struct re_label));
        if (!x.labels) return -ENOMEM;
        for (size_t i = 0; i < nlabels; i++) {
            x.labels[i].name = label_str(s, labels[i].name);
            x.labels[i].value = label_str(s, labels[i].value);
            if (!x.labels[i].name || !x.labels[i].value) return -ENOMEM;
        }
        if (nlabels > 1) qsort(x.labels, nlabels, sizeof(*x.labels), label_cmp);
        for (size_t i = 1; i < nlabels; i++)
            if (strcmp(x.labels[i - 1].name, x.labels[i].name) == 0) return -EINVAL;
    }
    uint64_t h = series_hash(f, &x);
    for (size_t j = h & (s->tabcap - 1); s->tab[j].fam; j = (j + 1) & (s->tabcap - 1)) {
        const struct slot *e = &s->tab[j];
        if (e->hash == h && e->fam == f && e->idx != FAM_IDX &&
            same_series(&f->samples[e->idx], &x))
            return -EEXIST;
    }
    if (tab_insert(s, h, f, f->n)) return -ENOMEM;
    f->samples[f->n++] = x;
    return 0;
}

int mfam_add(struct mfam *f, const char *suffix, const struct re_label *labels, size_t nlabels,
             double value) {
    return add(f, suffix, labels, nlabels, value, false, 0);
}

int mfam_add_ts(struct mfam *f, const char *suffix, const struct re_label *labels, size_t nlabels,
                double value, int64_t ts_ms) {
    return add(f, suffix, labels, nlabels, value, true, ts_ms);
}

int mfam_addf(struct mfam *f, const char *suffix, double value, size_t npairs, ...) {
    if (npairs > MAX_VA_PAIRS) return -EINVAL;
    struct re_label l[MAX_VA_PAIRS];
    va_list ap;
    va_start(ap, npairs);
    for (size_t i = 0; i < npairs; i++) {
        l[i].name = va_arg(ap, const char *);
        l[i].value = va_arg(ap, const char *);
    }
    va_end(ap);
    return add(f, suffix, l, npairs, value, false, 0);
}

/* ---- encoder ------------------------------------------------------------------------- */

static int fam_cmp(const void *a, const void *b) {
    return strcmp((*(struct mfam *const *)a)->name, (*(struct mfam *const *)b)->name);
}

/* The label that splits one histogram/summary "metric" into lines. */
static const char *split_label(enum mtype t) {
    return t == MTYPE_HISTOGRAM ? "le" : t == MTYPE_SUMMARY ? "quantile" : NULL;
}

/* Order of the lines of one histogram/summary metric, as client_golang writes them. */
static int suffix_rank(const char *sfx) {
    if (!*sfx || strcmp(sfx, "_bucket") == 0) return 0;
    if (strcmp(sfx, "_sum") == 0) return 1;
    if (strcmp(sfx, "_count") == 0) return 2;
    return 3;
}

static double parse_bound(const char *v) {
    if (strcmp(v, "+Inf") == 0) return INFINITY;
    if (strcmp(v, "-Inf") == 0) return -INFINITY;
    char *end;
    double d = strtod(v, &end);
    return *end ? NAN : d;
}

struct sort_ctx {
    const struct mfam *f;
    const char *split;
};

static __thread struct sort_ctx sctx;

/* client_golang's metricSorter: fewer labels first, then label values in name order, then
 * timestamp; for histograms and summaries the le/quantile label is left out of that key so
 * each metric's lines stay together, ordered by suffix and then numerically by bound. */
static int sample_cmp(const void *pa, const void *pb) {
    const struct sample *a = &sctx.f->samples[*(const size_t *)pa];
    const struct sample *b = &sctx.f->samples[*(const size_t *)pb];
    const char *sp = sctx.split;
    const char *abound = NULL, *bbound = NULL;
    uint32_t an = a->nlabels, bn = b->nlabels;
    if (sp) {
        for (uint32_t i = 0; i < a->nlabels; i++)
            if (strcmp(a->labels[i].name, sp) == 0) abound = a->labels[i].value, an--;
        for (uint32_t i = 0; i < b->nlabels; i++)
            if (strcmp(b->labels[i].name, sp) == 0) bbound = b->labels[i].value, bn--;
    }
    if (an != bn) return an < bn ? -1 : 1;
    uint32_t i = 0, j = 0;
    while (i < a->nlabels && j < b->nlabels) {
        if (sp && strcmp(a->labels[i].name, sp) == 0) {
            i++;
            continue;
        }
        if (sp && strcmp(b->labels[j].name, sp) == 0) {
            j++;
            continue;
        }
        int c = strcmp(a->labels[i].value, b->labels[j].value);
        if (c) return c;
        c = strcmp(a->labels[i].name, b->labels[j].name);
        if (c) return c;
        i++, j++;
    }
    if (sp) {
        int ra = suffix_rank(a->suffix), rb = suffix_rank(b->suffix);
        if (ra != rb) return ra < rb ? -1 : 1;
        if (abound && bbound) {
            double x = parse_bound(abound), y = parse_bound(bbound);
            if (x < y) return -1;
            if (x > y) return 1;
        }
    }
    int c = strcmp(a->suffix, b->suffix);
    if (c) return c;
    if (a->has_ts != b->has_ts) return a->has_ts ? 1 : -1;
    if (a->ts_ms != b->ts_ms) return a->ts_ms < b->ts_ms ? -1 : 1;
    return 0;
}

static void put_escaped(struct sbuf *out, const char *s, bool quote) {
    const char *special = quote ? "\\\n\"" : "\\\n";
    for (;;) {
        size_t n = strcspn(s, special); /* most values have nothing to escape */
        sbuf_add(out, s, n);
        s += n;
        if (!*s) return;
        sbuf_add(out, *s == '\n' ? "\\n" : *s == '"' ? "\\\"" : "\\\\", 2);
        s++;
    }
}

/* Writes digits d[0..nd) with decimal exponent exp in Go's 'g' layout (shortest mode):
 * d.ddde+XX when exp < -4 || exp >= 6 (strconv uses eprec 6 for shortest), plain otherwise. */
static void put_layout(struct sbuf *out, bool neg, const char *d, int nd, int exp) {
    char o[48];
    int n = 0;
    if (neg) o[n++] = '-';
    if (exp < -4 || exp >= 6) {
        o[n++] = d[0];
        if (nd > 1) {
            o[n++] = '.';
            for (int i = 1; i < nd; i++)
                o[n++] = d[i];
        }
        int e = exp < 0 ? -exp : exp;
        o[n++] = 'e';
        o[n++] = exp < 0 ? '-' : '+';
        if (e >= 100) o[n++] = (char)('0' + e / 100);
        o[n++] = (char)('0' + e / 10 % 10);
        o[n++] = (char)('0' + e % 10);
    } else if (exp < 0) {
        o[n++] = '0';
        o[n++] = '.';
        for (int i = -1; i > exp; i--)
            o[n++] = '0';
        for (int i = 0; i < nd; i++)
            o[n++] = d[i];
    } else {
        for (int i = 0; i <= exp || i < nd; i++) {
            if (i == exp + 1) o[n++] = '.';
            o[n++] = i < nd ? d[i] : '0';
        }
    }
    sbuf_add(out, o, (size_t)n);
}

/* Go's strconv.FormatFloat(v, 'g', -1, 64), the text format's float layout, faster than
 * sbuf_add_double's digit-by-digit search (checked equal in test_expose):
 * - an integral value below 2^53 is printed from its integer digits;
 * - otherwise the shortest round-trip digits come from trying 15, 16, then 17 significant
 *   digits: a double whose shortest form has k <= 15 digits prints as exactly that form at
 *   15 digits (DBL_DIG), and at 16 the correctly rounded candidate is the closest one, which
 *   is the one Go picks. */
static void put_double(struct sbuf *out, double v) {
    if (isnan(v) || isinf(v) || (v == 0 && signbit(v))) {
        sbuf_add_double(out, v);
        return;
    }
    char d[24];
    int nd = 0, exp;
    bool neg = v < 0;
    if (v > -9007199254740992.0 && v < 9007199254740992.0 && v == (double)(int64_t)v) {
        int64_t i = (int64_t)v;
        uint64_t u = i < 0 ? (uint64_t)0 - (uint64_t)i : (uint64_t)i;
        char r[24];
        int nr = 0;
        do {
            r[nr++] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        exp = nr - 1;
        while (nr)
            d[nd++] = r[--nr];
    } else {
        char tmp[40];
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
            if (prec == 17 || strtod(tmp, NULL) == v) break;
        }
        const char *p = tmp + (neg ? 1 : 0);
        for (; *p && *p != 'e'; p++)
            if (*p >= '0' && *p <= '9') d[nd++] = *p;
        exp = atoi(p + 1);
    }
    while (nd > 1 && d[nd - 1] == '0')
        nd--;
    put_layout(out, neg, d, nd, exp);
}

static const char *type_name(enum mtype t) {
    switch (t) {
    case MTYPE_COUNTER:
        return "counter";
    case MTYPE_GAUGE:
        return "gauge";
    case MTYPE_HISTOGRAM:
        return "histogram";
    case MTYPE_SUMMARY:
        return "summary";
    default:
        return "untyped";
    }
}

static void put_label(struct sbuf *out, const struct re_label *l) {
    sbuf_adds(out, l->name);
    sbuf_add(out, "=\"", 2);
    put_escaped(out, l->value, true);
    sbuf_addc(out, '"');
}

static void write_family(const struct mfam *f, size_t *order, struct sbuf *out) {
    /* client_golang writes no HELP line for a family without help (pushed families). */
    if (f->help) {
        sbuf_adds(out, "# HELP ");
        sbuf_adds(out, f->name);
        sbuf_addc(out, ' ');
        put_escaped(out, f->help, false);
        sbuf_addc(out, '\n');
    }
    sbuf_adds(out, "# TYPE ");
    sbuf_adds(out, f->name);
    sbuf_addc(out, ' ');
    sbuf_adds(out, type_name(f->type));
    sbuf_addc(out, '\n');
    for (size_t i = 0; i < f->n; i++)
        order[i] = i;
    sctx = (struct sort_ctx){.f = f, .split = split_label(f->type)};
    qsort(order, f->n, sizeof(*order), sample_cmp);
    for (size_t k = 0; k < f->n; k++) {
        const struct sample *x = &f->samples[order[k]];
        sbuf_adds(out, f->name);
        sbuf_adds(out, x->suffix);
        if (x->nlabels) {
            /* client_golang writes le/quantile after the metric's sorted labels. */
            const char *sp = sctx.split;
            uint32_t last = x->nlabels;
            sbuf_addc(out, '{');
            for (uint32_t i = 0, w = 0; i < x->nlabels; i++) {
                if (sp && last == x->nlabels && strcmp(x->labels[i].name, sp) == 0) {
                    last = i;
                    continue;
                }
                if (w++) sbuf_addc(out, ',');
                put_label(out, &x->labels[i]);
            }
            if (last < x->nlabels) {
                if (x->nlabels > 1) sbuf_addc(out, ',');
                put_label(out, &x->labels[last]);
            }
            sbuf_addc(out, '}');
        }
        sbuf_addc(out, ' ');
        put_double(out, x->value);
        if (x->has_ts) sbuf_printf(out, " %lld", (long long)x->ts_ms);
        sbuf_addc(out, '\n');
    }
}

int mset_write_text(const struct mset *s, struct sbuf *out) {
    if (!s || !out) return -EINVAL;
    size_t maxn = 0;
    for (size_t i = 0; i < s->nfams; i++)
        if (s->fams[i]->n > maxn) maxn = s->fams[i]->n;
    struct mfam **fams = malloc((s->nfams ? s->nfams : 1) * sizeof(*fams));
    size_t *order = malloc((maxn ? maxn : 1) * sizeof(*order));
    if (!fams || !order) {
        free(fams);
        free(order);
        return -ENOMEM;
    }
    if (s->nfams) memcpy(fams, s->fams, s->nfams * sizeof(*fams));
    qsort(fams, s->nfams, sizeof(*fams), fam_cmp);
    for (size_t i = 0; i < s->nfams; i++)
        if (fams[i]->n) /* client_golang never writes a family without metrics */
            write_family(fams[i], order, out);
    free(fams);
    free(order);
    return out->oom ? -ENOMEM : 0;
}

/* Level 1: a scrape body of ~100 KB compresses to about the same size as at level 6 for
 * text this repetitive, at a third of the CPU; scrape cost is what promlet competes on. */
#define EXPOSE_GZIP_LEVEL 1

int expose_gzip(const char *in, size_t len, struct sbuf *out) {
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (deflateInit2(&z, EXPOSE_GZIP_LEVEL, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) !=
        Z_OK)
        return -ENOMEM;
    if (len > UINT_MAX) {
        deflateEnd(&z);
        return -E2BIG;
    }
    unsigned char buf[16384];
    int rc = 0, zr;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    do {
        z.next_out = buf;
        z.avail_out = sizeof(buf);
        zr = deflate(&z, Z_FINISH);
        if (zr == Z_STREAM_ERROR) {
            rc = -EIO;
            break;
        }
        if (sbuf_add(out, buf, sizeof(buf) - z.avail_out)) {
            rc = -ENOMEM;
            break;
        }
    } while (zr != Z_STREAM_END);
    deflateEnd(&z);
    return rc;
}

int mset_foreach(const struct mset *s, mset_sample_fn *fn, void *arg) {
    char name[512];
    for (size_t i = 0; i < s->nfams; i++) {
        const struct mfam *f = s->fams[i];
        for (size_t k = 0; k < f->n; k++) {
            const struct sample *sm = &f->samples[k];
            /* Family names are checked metric names and suffixes are short constants. */
            int len = snprintf(name, sizeof(name), "%s%s", f->name, sm->suffix);
            if (len < 0 || (size_t)len >= sizeof(name)) continue;
            int rc = fn(arg, f->name, f->type, name, sm->labels, sm->nlabels, sm->value,
                        sm->has_ts ? sm->ts_ms : 0);
            if (rc) return rc;
        }
    }
    return 0;
}
