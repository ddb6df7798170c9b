/* SPDX-License-Identifier: Apache-2.0 */
/* Native histogram arithmetic in a sparse (index, count) form: add, scale, compare, bounds. */
#include "promql_int.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void pq_hist_free(struct pq_hist *h) {
    if (!h) return;
    free(h->pb);
    free(h->nb);
    free(h->cv);
    free(h);
}

static struct pq_bkt *spans_to_bkts(const struct re_span *sp, size_t nsp, const double *b,
                                    size_t nb, size_t *out_n) {
    struct pq_bkt *o = malloc((nb ? nb : 1) * sizeof(*o));
    if (!o) return NULL;
    size_t k = 0;
    int32_t idx = 0;
    for (size_t i = 0; i < nsp; i++) {
        idx += sp[i].offset;
        for (uint32_t j = 0; j < sp[i].length && k < nb; j++) {
            o[k].i = idx++;
            o[k].c = b[k];
            k++;
        }
    }
    *out_n = k;
    return o;
}

struct pq_hist *pq_hist_from_re(const struct re_hist *h) {
    struct pq_hist *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    o->schema = h->schema;
    o->hint = h->reset_hint;
    o->zt = h->zero_threshold;
    o->zc = h->zero_count;
    o->count = h->count;
    o->sum = h->sum;
    o->pb = spans_to_bkts(h->pspans, h->npspans, h->pbuckets, h->npbuckets, &o->npb);
    o->nb = spans_to_bkts(h->nspans, h->nnspans, h->nbuckets, h->nnbuckets, &o->nnb);
    o->cv = malloc((h->ncustom ? h->ncustom : 1) * sizeof(double));
    if (!o->pb || !o->nb || !o->cv) {
        pq_hist_free(o);
        return NULL;
    }
    if (h->ncustom) memcpy(o->cv, h->custom_values, h->ncustom * sizeof(double));
    o->ncv = h->ncustom;
    return o;
}

struct pq_hist *pq_hist_dup(const struct pq_hist *h) {
    struct pq_hist *o = malloc(sizeof(*o));
    if (!o) return NULL;
    *o = *h;
    o->pb = malloc((h->npb ? h->npb : 1) * sizeof(*o->pb));
    o->nb = malloc((h->nnb ? h->nnb : 1) * sizeof(*o->nb));
    o->cv = malloc((h->ncv ? h->ncv : 1) * sizeof(double));
    if (!o->pb || !o->nb || !o->cv) {
        pq_hist_free(o);
        return NULL;
    }
    if (h->npb) memcpy(o->pb, h->pb, h->npb * sizeof(*o->pb));
    if (h->nnb) memcpy(o->nb, h->nb, h->nnb * sizeof(*o->nb));
    if (h->ncv) memcpy(o->cv, h->cv, h->ncv * sizeof(double));
    return o;
}

static size_t count_spans(const struct pq_bkt *b, size_t n) {
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || b[i].i != b[i - 1].i + 1) s++;
    return s;
}

static void fill_spans(const struct pq_bkt *b, size_t n, struct re_span *sp, double *vals) {
    size_t s = 0;
    int32_t prev_end = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || b[i].i != b[i - 1].i + 1) {
            sp[s].offset = b[i].i - prev_end;
            sp[s].length = 0;
            s++;
        }
        sp[s - 1].length++;
        prev_end = b[i].i + 1;
        vals[i] = b[i].c;
    }
}

struct re_hist *pq_hist_to_re(const struct pq_hist *h) {
    size_t nps = count_spans(h->pb, h->npb), nns = count_spans(h->nb, h->nnb);
    size_t sz = sizeof(struct re_hist) + (nps + nns) * sizeof(struct re_span) +
                (h->npb + h->nnb + h->ncv) * sizeof(double);
    struct re_hist *o = calloc(1, sz);
    if (!o) return NULL;
    double *d = (double *)(o + 1);
    double *pb = d, *nb = pb + h->npb, *cv = nb + h->nnb;
    struct re_span *ps = (struct re_span *)(cv + h->ncv), *ns = ps + nps;
    o->schema = h->schema;
    o->reset_hint = h->hint;
    o->zero_threshold = h->zt;
    o->zero_count = h->zc;
    o->count = h->count;
    o->sum = h->sum;
    fill_spans(h->pb, h->npb, ps, pb);
    fill_spans(h->nb, h->nnb, ns, nb);
    if (h->ncv) memcpy(cv, h->cv, h->ncv * sizeof(double));
    o->pspans = ps;
    o->npspans = nps;
    o->pbuckets = pb;
    o->npbuckets = h->npb;
    o->nspans = ns;
    o->nnspans = nns;
    o->nbuckets = nb;
    o->nnbuckets = h->nnb;
    o->custom_values = cv;
    o->ncustom = h->ncv;
    return o;
}

static int32_t reduce_idx(int32_t i, int delta) {
    /* bucket i at schema s maps to ((i-1) >> delta) + 1 at schema s-delta */
    return ((i - 1) >> delta) + 1;
}

/* Reduces resolution of b[] in place by delta (merging). */
static void reduce(struct pq_bkt *b, size_t *n, int delta) {
    if (delta <= 0) return;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        int32_t ni = reduce_idx(b[i].i, delta);
        if (k && b[k - 1].i == ni)
            b[k - 1].c += b[i].c;
        else {
            b[k].i = ni;
            b[k].c = b[i].c;
            k++;
        }
    }
    *n = k;
}

/* Merges buckets whose upper bound <= zt into the zero bucket. */
static void widen_zero(struct pq_hist *h, double zt) {
    if (zt <= h->zt) return;
    for (int neg = 0; neg < 2; neg++) {
        struct pq_bkt *b = neg ? h->nb : h->pb;
        size_t *n = neg ? &h->nnb : &h->npb, k = 0;
        for (size_t i = 0; i < *n; i++) {
            double lo, hi;
            pq_hist_bounds(h, neg, b[i].i, &lo, &hi);
            if (hi <= zt) {
                h->zc += b[i].c;
            } else {
                b[k++] = b[i];
            }
        }
        *n = k;
    }
    h->zt = zt;
}

static double kinc(double inc, double sum, double *c) {
    double t = sum + inc;
    if (isinf(t))
        *c = 0;
    else if (fabs(sum) >= fabs(inc))
        *c += (sum - t) + inc;
    else
        *c += (inc - t) + sum;
    return t;
}

/* Prometheus adjustCounterReset: returns true on a reset/not_reset collision. */
static bool adjust_hint(struct pq_hist *h, const struct pq_hist *o) {
    if (o->hint == h->hint || h->hint == RE_HINT_GAUGE) return false;
    if (o->hint == RE_HINT_GAUGE) {
        h->hint = RE_HINT_GAUGE;
        return false;
    }
    if (h->hint == RE_HINT_UNKNOWN) return false;
    if (o->hint == RE_HINT_UNKNOWN) {
        h->hint = RE_HINT_UNKNOWN;
        return false;
    }
    h->hint = RE_HINT_UNKNOWN;
    return true;
}

/* Re-buckets a custom-bucket histogram onto bounds nb (a subset of its own bounds). */
static void rebucket_custom(struct pq_hist *h, const double *nb, size_t nnb) {
    size_t k = 0;
    for (size_t i = 0; i < h->npb; i++) {
        double ub = h->pb[i].i < (int32_t)h->ncv ? h->cv[h->pb[i].i] : INFINITY;
        int32_t ni = (int32_t)nnb;
        for (size_t j = 0; j < nnb; j++)
            if (nb[j] >= ub) {
                ni = (int32_t)j;
                break;
            }
        if (k && h->pb[k - 1].i == ni) {
            h->pb[k - 1].c += h->pb[i].c;
        } else {
            h->pb[k].i = ni;
            h->pb[k].c = h->pb[i].c;
            k++;
        }
    }
    h->npb = k;
    memcpy(h->cv, nb, nnb * sizeof(double));
    h->ncv = nnb;
}

/* Brings a and b (and comp c, may be NULL) to a common layout. Returns 0, -EINVAL (custom vs
 * exponential) or -ENOMEM; sets *reconciled when custom bounds had to be intersected. */
static int common_layout(struct pq_hist *a, struct pq_hist *c, struct pq_hist *b,
                         bool *reconciled) {
    bool ac = a->schema == PQ_SCHEMA_CUSTOM, bc = b->schema == PQ_SCHEMA_CUSTOM;
    if (ac != bc) return -EINVAL;
    if (ac) {
        if (a->ncv != b->ncv || (a->ncv && memcmp(a->cv, b->cv, a->ncv * sizeof(double)))) {
            double *nb = malloc((a->ncv + 1) * sizeof(double));
            if (!nb) return -ENOMEM;
            size_t n = 0, i = 0, j = 0;
            while (i < a->ncv && j < b->ncv) {
                if (a->cv[i] == b->cv[j]) {
                    nb[n++] = a->cv[i];
                    i++;
                    j++;
                } else if (a->cv[i] < b->cv[j]) {
                    i++;
                } else {
                    j++;
                }
            }
            rebucket_custom(a, nb, n);
            if (c) rebucket_custom(c, nb, n);
            rebucket_custom(b, nb, n);
            free(nb);
            if (reconciled) *reconciled = true;
        }
        return 0;
    }
    if (a->schema > b->schema) {
        int d = a->schema - b->schema;
        reduce(a->pb, &a->npb, d);
        reduce(a->nb, &a->nnb, d);
        if (c) {
            reduce(c->pb, &c->npb, d);
            reduce(c->nb, &c->nnb, d);
            c->schema = b->schema;
        }
        a->schema = b->schema;
    } else if (b->schema > a->schema) {
        reduce(b->pb, &b->npb, b->schema - a->schema);
        reduce(b->nb, &b->nnb, b->schema - a->schema);
        b->schema = a->schema;
    }
    if (a->zt < b->zt) {
        widen_zero(a, b->zt);
        if (c) widen_zero(c, b->zt);
    } else if (b->zt < a->zt) {
        widen_zero(b, a->zt);
    }
    return 0;
}

/* Bucket-wise s (+comp c) += sign*b over the union of indices. */
static int kahan_merge(struct pq_bkt **s, size_t *ns, struct pq_bkt **c, size_t *nc,
                       const struct pq_bkt *b, size_t nb, double sign) {
    /* The same buckets on both sides (a counter's samples usually have them): in place. */
    bool same = *ns == nb && (!c || *nc == nb);
    for (size_t i = 0; same && i < nb; i++)
        same = (*s)[i].i == b[i].i && (!c || (*c)[i].i == b[i].i);
    if (same) {
        for (size_t i = 0; i < nb; i++)
            if (c)
                (*s)[i].c = kinc(sign * b[i].c, (*s)[i].c, &(*c)[i].c);
            else
                (*s)[i].c += sign * b[i].c;
        return 0;
    }
    size_t cap = *ns + nb + (c ? *nc : 0) + 1;
    struct pq_bkt *os = malloc(cap * sizeof(*os)), *oc = c ? malloc(cap * sizeof(*oc)) : NULL;
    if (!os || (c && !oc)) {
        free(os);
        free(oc);
        return -ENOMEM;
    }
    size_t i = 0, j = 0, k = 0, n = 0;
    for (;;) {
        int64_t idx = INT64_MAX;
        if (i < *ns && (*s)[i].i < idx) idx = (*s)[i].i;
        if (j < nb && b[j].i < idx) idx = b[j].i;
        if (c && k < *nc && (*c)[k].i < idx) idx = (*c)[k].i;
        if (idx == INT64_MAX) break;
        double sv = 0, cv = 0, bv = 0;
        if (i < *ns && (*s)[i].i == idx) sv = (*s)[i++].c;
        if (j < nb && b[j].i == idx) bv = b[j++].c;
        if (c && k < *nc && (*c)[k].i == idx) cv = (*c)[k++].c;
        if (c)
            sv = kinc(sign * bv, sv, &cv);
        else
            sv += sign * bv;
        os[n].i = (int32_t)idx;
        os[n].c = sv;
        if (c) {
            oc[n].i = (int32_t)idx;
            oc[n].c = cv;
        }
        n++;
    }
    free(*s);
    *s = os;
    *ns = n;
    if (c) {
        free(*c);
        *c = oc;
        *nc = n;
    }
    return 0;
}

int pq_hist_add_ex(struct pq_hist *a, struct pq_hist *comp, const struct pq_hist *b, double sign,
                   bool *collision, bool *reconciled) {
    if ((a->schema == PQ_SCHEMA_CUSTOM) != (b->schema == PQ_SCHEMA_CUSTOM)) return -EINVAL;
    /* b is copied only when common_layout must change it (coarser schema, wider zero bucket,
     * other custom bounds); otherwise common_layout does not write to it. */
    bool b_changes =
        a->schema == PQ_SCHEMA_CUSTOM
            ? a->ncv != b->ncv || (a->ncv && memcmp(a->cv, b->cv, a->ncv * sizeof(double)))
            : b->schema > a->schema || b->zt < a->zt;
    struct pq_hist *copy = NULL;
    if (b_changes && !(copy = pq_hist_dup(b))) return -ENOMEM;
    struct pq_hist *bb = copy ? copy : (struct pq_hist *)b;
    bool coll = adjust_hint(a, bb);
    if (collision) *collision = *collision || coll;
    int rc = common_layout(a, comp, bb, reconciled);
    if (rc) {
        pq_hist_free(copy);
        return rc;
    }
    if (comp) {
        a->zc = kinc(sign * bb->zc, a->zc, &comp->zc);
        a->count = kinc(sign * bb->count, a->count, &comp->count);
        a->sum = kinc(sign * bb->sum, a->sum, &comp->sum);
    } else {
        a->zc += sign * bb->zc;
        a->count += sign * bb->count;
        a->sum += sign * bb->sum;
    }
    rc = kahan_merge(&a->pb, &a->npb, comp ? &comp->pb : NULL, comp ? &comp->npb : NULL, bb->pb,
                     bb->npb, sign);
    if (rc == 0)
        rc = kahan_merge(&a->nb, &a->nnb, comp ? &comp->nb : NULL, comp ? &comp->nnb : NULL, bb->nb,
                         bb->nnb, sign);
    pq_hist_free(copy);
    return rc;
}

int pq_hist_add(struct pq_hist *a, const struct pq_hist *b, double sign) {
    return pq_hist_add_ex(a, NULL, b, sign, NULL, NULL);
}

struct pq_hist *pq_hist_new_comp(const struct pq_hist *h) {
    struct pq_hist *c = pq_hist_dup(h);
    if (!c) return NULL;
    c->zc = c->count = c->sum = 0;
    for (size_t i = 0; i < c->npb; i++)
        c->pb[i].c = 0;
    for (size_t i = 0; i < c->nnb; i++)
        c->nb[i].c = 0;
    return c;
}

bool pq_hist_overflow(const struct pq_hist *h) {
    if (isinf(h->zc) || isinf(h->count) || isinf(h->sum)) return true;
    for (size_t i = 0; i < h->npb; i++)
        if (isinf(h->pb[i].c)) return true;
    for (size_t i = 0; i < h->nnb; i++)
        if (isinf(h->nb[i].c)) return true;
    return false;
}

void pq_hist_scale(struct pq_hist *h, double f) {
    h->zc *= f;
    h->count *= f;
    h->sum *= f;
    for (size_t i = 0; i < h->npb; i++)
        h->pb[i].c *= f;
    for (size_t i = 0; i < h->nnb; i++)
        h->nb[i].c *= f;
}

void pq_hist_div(struct pq_hist *h, double d) {
    h->zc /= d;
    h->count /= d;
    h->sum /= d;
    for (size_t i = 0; i < h->npb; i++)
        h->pb[i].c /= d;
    for (size_t i = 0; i < h->nnb; i++)
        h->nb[i].c /= d;
}

void pq_hist_compact(struct pq_hist *h) {
    size_t k = 0;
    for (size_t i = 0; i < h->npb; i++)
        if (h->pb[i].c != 0) h->pb[k++] = h->pb[i];
    h->npb = k;
    k = 0;
    for (size_t i = 0; i < h->nnb; i++)
        if (h->nb[i].c != 0) h->nb[k++] = h->nb[i];
    h->nnb = k;
}

static bool feq(double a, double b, double tol) {
    if (a == b || (isnan(a) && isnan(b))) return true;
    if (tol == 0) return false;
    if (a == 0 || b == 0) return fabs(a - b) < 1e-100;
    return fabs(a - b) / (fabs(a) + fabs(b)) < tol;
}

static bool bkts_equal(const struct pq_bkt *a, size_t na, const struct pq_bkt *b, size_t nb,
                       double tol) {
    size_t i = 0, j = 0;
    for (;;) {
        while (i < na && a[i].c == 0)
            i++;
        while (j < nb && b[j].c == 0)
            j++;
        if (i >= na || j >= nb) return i >= na && j >= nb;
        if (a[i].i != b[j].i || !feq(a[i].c, b[j].c, tol)) return false;
        i++;
        j++;
    }
}

bool pq_hist_equal(const struct pq_hist *a, const struct pq_hist *b, double tol, bool cmp_hint) {
    if (a->schema != b->schema || a->zt != b->zt || a->ncv != b->ncv) return false;
    if (a->ncv && memcmp(a->cv, b->cv, a->ncv * sizeof(double))) return false;
    if (cmp_hint && a->hint != b->hint) return false;
    return feq(a->count, b->count, tol) && feq(a->sum, b->sum, tol) && feq(a->zc, b->zc, tol) &&
           bkts_equal(a->pb, a->npb, b->pb, b->npb, tol) &&
           bkts_equal(a->nb, a->nnb, b->nb, b->nnb, tol);
}

double re_hist_bound(int32_t idx, int32_t schema) {
    /* Prometheus's getBound: the bucket just below the ±Inf overflow bucket ends at
     * math.MaxFloat64 instead of 2^1024 (which is +Inf). */
    if (schema < 0) {
        int64_t e = (int64_t)idx * ((int64_t)1 << -schema);
        if (e == 1024) return DBL_MAX;
        return ldexp(1, (int)e);
    }
    int32_t n = (int32_t)1 << schema;
    int32_t frac_idx = idx & (n - 1);
    int32_t e = (idx >> schema) + 1;
    if (frac_idx == 0 && e == 1025) return DBL_MAX;
    /* frac in [0.5, 1): 2^(frac_idx/2^schema) / 2. Prometheus keeps a precomputed table of
     * these; exp2 of the exact ratio agrees with it to within one unit in the last place. */
    double frac = frac_idx ? exp2((double)frac_idx / (double)n) / 2 : 0.5;
    return ldexp(frac, e);
}

void pq_hist_bounds(const struct pq_hist *h, bool neg, int32_t i, double *lo, double *hi) {
    if (h->schema == PQ_SCHEMA_CUSTOM) {
        *lo = i == 0 ? -INFINITY : (i - 1 < (int32_t)h->ncv ? h->cv[i - 1] : INFINITY);
        *hi = i < (int32_t)h->ncv ? h->cv[i] : INFINITY;
        return;
    }
    double u = re_hist_bound(i, h->schema), l = re_hist_bound(i - 1, h->schema);
    if (neg) {
        *lo = -u;
        *hi = -l;
    } else {
        *lo = l;
        *hi = u;
    }
}

bool pq_hist_detect_reset(const struct pq_hist *cur, const struct pq_hist *prev) {
    if (cur->hint == RE_HINT_RESET) return true;
    if (cur->hint == RE_HINT_NOT_RESET) return false;
    if (cur->count < prev->count) return true;
    if ((cur->schema == PQ_SCHEMA_CUSTOM) != (prev->schema == PQ_SCHEMA_CUSTOM)) return true;
    if (cur->schema == PQ_SCHEMA_CUSTOM) {
        if (cur->ncv != prev->ncv ||
            (cur->ncv && memcmp(cur->cv, prev->cv, cur->ncv * sizeof(double)))) {
            /* compare both rolled up onto the bounds they share */
            struct pq_hist *a = pq_hist_dup(cur), *b = pq_hist_dup(prev);
            bool reset = false;
            if (a && b && common_layout(a, NULL, b, NULL) == 0) {
                size_t i = 0;
                for (size_t j = 0; j < b->npb && !reset; j++) {
                    while (i < a->npb && a->pb[i].i < b->pb[j].i)
                        i++;
                    double c = (i < a->npb && a->pb[i].i == b->pb[j].i) ? a->pb[i].c : 0;
                    if (c < b->pb[j].c) reset = true;
                }
            }
            pq_hist_free(a);
            pq_hist_free(b);
            return reset;
        }
    } else if (cur->schema > prev->schema) {
        return true;
    }
    if (cur->zt < prev->zt) return true;
    if (cur->zc < prev->zc) return true;
    /* compare buckets after bringing prev to cur's schema (a copy only if it differs) */
    struct pq_hist *copy = NULL;
    if (cur->schema != PQ_SCHEMA_CUSTOM && prev->schema > cur->schema) {
        if (!(copy = pq_hist_dup(prev))) return false;
        reduce(copy->pb, &copy->npb, copy->schema - cur->schema);
        reduce(copy->nb, &copy->nnb, copy->schema - cur->schema);
        copy->schema = cur->schema;
    }
    const struct pq_hist *p = copy ? copy : prev;
    bool reset = false;
    for (int neg = 0; neg < 2 && !reset; neg++) {
        const struct pq_bkt *a = neg ? cur->nb : cur->pb, *b = neg ? p->nb : p->pb;
        size_t na = neg ? cur->nnb : cur->npb, nb = neg ? p->nnb : p->npb, i = 0;
        for (size_t j = 0; j < nb && !reset; j++) {
            while (i < na && a[i].i < b[j].i)
                i++;
            double c = (i < na && a[i].i == b[j].i) ? a[i].c : 0;
            if (c < b[j].c) reset = true;
        }
    }
    pq_hist_free(copy);
    return reset;
}
