/* SPDX-License-Identifier: Apache-2.0 */
/* An in-memory series store implementing re_source, for tests and `promlet test rules`. */
#include "promql_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct ms_series {
    struct re_label *labels;
    size_t nlabels;
    int64_t *ts;
    double *vals;
    struct re_hist **hists; /* NULL entries for floats; array NULL until first histogram */
    size_t n, cap;
};

struct re_memstore {
    struct ms_series *s;
    size_t n, cap;
    size_t *idx;      /* open-addressing hash of label sets -> series index + 1 */
    uint64_t *hashes; /* per series */
    size_t idxcap;
};

static uint64_t lhash(const struct re_label *l, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *p = l[i].name; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xff) * 1099511628211ULL;
        for (const char *p = l[i].value; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        h = (h ^ 0xfe) * 1099511628211ULL;
    }
    return h;
}

static int index_grow(struct re_memstore *s) {
    size_t nc = s->idxcap ? s->idxcap * 2 : 64;
    size_t *ni = calloc(nc, sizeof(*ni));
    if (!ni) return -ENOMEM;
    for (size_t i = 0; i < s->n; i++) {
        size_t j = s->hashes[i] & (nc - 1);
        while (ni[j])
            j = (j + 1) & (nc - 1);
        ni[j] = i + 1;
    }
    free(s->idx);
    s->idx = ni;
    s->idxcap = nc;
    return 0;
}

void re_labels_free(struct re_label *labels, size_t n) {
    if (!labels) return;
    for (size_t i = 0; i < n; i++) {
        free((char *)labels[i].name);
        free((char *)labels[i].value);
    }
    free(labels);
}

struct re_memstore *re_memstore_new(void) {
    return calloc(1, sizeof(struct re_memstore));
}

static void series_fini(struct ms_series *s) {
    re_labels_free(s->labels, s->nlabels);
    if (s->hists)
        for (size_t i = 0; i < s->n; i++)
            free(s->hists[i]);
    free(s->hists);
    free(s->ts);
    free(s->vals);
}

void re_memstore_clear(struct re_memstore *s) {
    for (size_t i = 0; i < s->n; i++)
        series_fini(&s->s[i]);
    s->n = 0;
    if (s->idx) memset(s->idx, 0, s->idxcap * sizeof(*s->idx));
}

void re_memstore_free(struct re_memstore *s) {
    if (!s) return;
    re_memstore_clear(s);
    free(s->s);
    free(s->idx);
    free(s->hashes);
    free(s);
}

static int lcmp(const void *a, const void *b) {
    return strcmp(((const struct re_label *)a)->name, ((const struct re_label *)b)->name);
}

static bool same_labels(const struct ms_series *s, const struct re_label *l, size_t n) {
    if (s->nlabels != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s->labels[i].name, l[i].name) || strcmp(s->labels[i].value, l[i].value))
            return false;
    return true;
}

int re_memstore_add(struct re_memstore *s, const struct re_label *labels, size_t n, int64_t t,
                    double v, const struct re_hist *h) {
    struct re_label *sorted = malloc((n ? n : 1) * sizeof(*sorted));
    if (!sorted) return -ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (labels[i].value && labels[i].value[0]) sorted[m++] = labels[i];
    if (m > 1) qsort(sorted, m, sizeof(*sorted), lcmp);
    struct ms_series *se = NULL;
    uint64_t lh = lhash(sorted, m);
    if ((s->n + 1) * 2 > s->idxcap && index_grow(s) < 0) {
        free(sorted);
        return -ENOMEM;
    }
    size_t slot = lh & (s->idxcap - 1);
    while (s->idx[slot]) {
        size_t i = s->idx[slot] - 1;
        if (s->hashes[i] == lh && same_labels(&s->s[i], sorted, m)) {
            se = &s->s[i];
            break;
        }
        slot = (slot + 1) & (s->idxcap - 1);
    }
    if (!se) {
        if (s->n == s->cap) {
            size_t nc = s->cap ? s->cap * 2 : 16;
            struct ms_series *ns = realloc(s->s, nc * sizeof(*ns));
            if (!ns) {
                free(sorted);
                return -ENOMEM;
            }
            s->s = ns;
            uint64_t *nh = realloc(s->hashes, nc * sizeof(*nh));
            if (!nh) {
                free(sorted);
                return -ENOMEM;
            }
            s->hashes = nh;
            s->cap = nc;
        }
        se = &s->s[s->n];
        memset(se, 0, sizeof(*se));
        se->labels = calloc(m ? m : 1, sizeof(*se->labels));
        if (!se->labels) {
            free(sorted);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m; i++) {
            se->labels[i].name = strdup(sorted[i].name);
            se->labels[i].value = strdup(sorted[i].value);
            se->nlabels = i + 1;
            if (!se->labels[i].name || !se->labels[i].value) {
                series_fini(se);
                free(sorted);
                return -ENOMEM;
            }
        }
        s->hashes[s->n] = lh;
        s->idx[slot] = s->n + 1;
        s->n++;
    }
    free(sorted);
    struct re_hist *hc = NULL;
    if (h) {
        struct pq_hist *ph = pq_hist_from_re(h);
        if (!ph) return -ENOMEM;
        /* As Prometheus's TSDB reads hints back: a counter histogram that continues a chunk
         * is "not_reset"; one that starts a chunk (first sample, after a float, a counter
         * reset or a layout change) is "unknown". Gauge histograms stay gauge. */
        if (ph->hint != RE_HINT_GAUGE) {
            uint8_t hint = RE_HINT_UNKNOWN;
            if (se->n && se->hists && se->hists[se->n - 1] && se->ts[se->n - 1] < t &&
                se->hists[se->n - 1]->reset_hint != RE_HINT_GAUGE) {
                struct pq_hist *prev = pq_hist_from_re(se->hists[se->n - 1]);
                if (!prev) {
                    pq_hist_free(ph);
                    return -ENOMEM;
                }
                bool newchunk = ph->hint == RE_HINT_RESET || pq_hist_detect_reset(ph, prev) ||
                                ph->schema != prev->schema || ph->zt != prev->zt ||
                                ph->ncv != prev->ncv ||
                                (ph->ncv && memcmp(ph->cv, prev->cv, ph->ncv * sizeof(double)));
                hint = newchunk ? RE_HINT_UNKNOWN : RE_HINT_NOT_RESET;
                pq_hist_free(prev);
            }
            ph->hint = hint;
        }
        hc = pq_hist_to_re(ph);
        pq_hist_free(ph);
        if (!hc) return -ENOMEM;
    }
    /* position: append fast path, else binary search */
    size_t pos = se->n;
    if (se->n && se->ts[se->n - 1] >= t) {
        size_t lo = 0, hi = se->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (se->ts[mid] < t)
                lo = mid + 1;
            else
                hi = mid;
        }
        pos = lo;
        if (pos < se->n && se->ts[pos] == t) {
            se->vals[pos] = v;
            if (se->hists) {
                free(se->hists[pos]);
                se->hists[pos] = hc;
            } else if (hc) {
                se->hists = calloc(se->cap, sizeof(*se->hists));
                if (!se->hists) {
                    free(hc);
                    return -ENOMEM;
                }
                se->hists[pos] = hc;
            }
            return 0;
        }
    }
    if (se->n == se->cap) {
        size_t nc = se->cap ? se->cap * 2 : 16;
        int64_t *nt = realloc(se->ts, nc * sizeof(*nt));
        if (nt) se->ts = nt;
        double *nv = nt ? realloc(se->vals, nc * sizeof(*nv)) : NULL;
        if (nv) se->vals = nv;
        bool hok = true;
        if (nv && se->hists) {
            struct re_hist **nh = realloc(se->hists, nc * sizeof(*nh));
            if (nh) se->hists = nh;
            hok = nh != NULL;
        }
        if (!nt || !nv || !hok) {
            free(hc);
            return -ENOMEM;
        }
        se->cap = nc;
    }
    if (hc && !se->hists) {
        se->hists = calloc(se->cap, sizeof(*se->hists));
        if (!se->hists) {
            free(hc);
            return -ENOMEM;
        }
    }
    memmove(se->ts + pos + 1, se->ts + pos, (se->n - pos) * sizeof(*se->ts));
    memmove(se->vals + pos + 1, se->vals + pos, (se->n - pos) * sizeof(*se->vals));
    if (se->hists)
        memmove(se->hists + pos + 1, se->hists + pos, (se->n - pos) * sizeof(*se->hists));
    se->ts[pos] = t;
    se->vals[pos] = v;
    if (se->hists) se->hists[pos] = hc;
    se->n++;
    return 0;
}

static const char *lookup(const struct ms_series *s, const char *name) {
    for (size_t i = 0; i < s->nlabels; i++)
        if (!strcmp(s->labels[i].name, name)) return s->labels[i].value;
    return NULL;
}

static int ms_select(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                     re_visit_fn *fn, void *arg) {
    struct re_memstore *s = ctx;
    for (size_t i = 0; i < s->n; i++) {
        struct ms_series *se = &s->s[i];
        bool ok = true;
        for (size_t j = 0; j < nm && ok; j++)
            ok = re_matcher_matches(&m[j], lookup(se, m[j].name));
        if (!ok) continue;
        size_t lo = 0, hi = se->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (se->ts[mid] < mint)
                lo = mid + 1;
            else
                hi = mid;
        }
        size_t a = lo;
        hi = se->n;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (se->ts[mid] <= maxt)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo == a) continue;
        int rc = fn(arg, se->labels, se->nlabels, se->ts + a, se->vals + a,
                    se->hists ? (const struct re_hist *const *)se->hists + a : NULL, lo - a);
        if (rc) return rc;
    }
    return 0;
}

void re_memstore_source(struct re_memstore *s, struct re_source *out) {
    out->select = ms_select;
    out->select_last = NULL; /* arrays: the caller's trim of the window is as cheap */
    out->ctx = s;
}
