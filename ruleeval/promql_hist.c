/* SPDX-License-Identifier: Apache-2.0 */
/* Native histogram arithmetic in a sparse (index, count) form: add, scale, compare, bounds. */
#include "promql_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void pq_hist_free(struct pq_hist *h)
{
    if (!h)
        return;
    free(h->pb);
    free(h->nb);
    free(h->cv);
    free(h);
}

static struct pq_bkt *spans_to_bkts(const struct re_span *sp, size_t nsp, const double *b,
                                    size_t nb, size_t *out_n)
{
    struct pq_bkt *o = malloc((nb ? nb : 1) * sizeof(*o));
    if (!o)
        return NULL;
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

struct pq_hist *pq_hist_from_re(const struct re_hist *h)
{
    struct pq_hist *o = calloc(1, sizeof(*o));
    if (!o)
        return NULL;
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
    if (h->ncustom)
        memcpy(o->cv, h->custom_values, h->ncustom * sizeof(double));
    o->ncv = h->ncustom;
    return o;
}

struct pq_hist *pq_hist_dup(const struct pq_hist *h)
{
    struct pq_hist *o = malloc(sizeof(*o));
    if (!o)
        return NULL;
    *o = *h;
    o->pb = malloc((h->npb ? h->npb : 1) * sizeof(*o->pb));
    o->nb = malloc((h->nnb ? h->nnb : 1) * sizeof(*o->nb));
    o->cv = malloc((h->ncv ? h->ncv : 1) * sizeof(double));
    if (!o->pb || !o->nb || !o->cv) {
        pq_hist_free(o);
        return NULL;
    }
    if (h->npb)
        memcpy(o->pb, h->pb, h->npb * sizeof(*o->pb));
    if (h->nnb)
        memcpy(o->nb, h->nb, h->nnb * sizeof(*o->nb));
    if (h->ncv)
        memcpy(o->cv, h->cv, h->ncv * sizeof(double));
    return o;
}

static size_t count_spans(const struct pq_bkt *b, size_t n)
{
    size_t s = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || b[i].i != b[i - 1].i + 1)
            s++;
    return s;
}

static void fill_spans(const struct pq_bkt *b, size_t n, struct re_span *sp, double *vals)
{
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

struct re_hist *pq_hist_to_re(const struct pq_hist *h)
{
    size_t nps = count_spans(h->pb, h->npb), nns = count_spans(h->nb, h->nnb);
    size_t sz = sizeof(struct re_hist) + (nps + nns) * sizeof(struct re_span) +
                (h->npb + h->nnb + h->ncv) * sizeof(double);
    struct re_hist *o = calloc(1, sz);
    if (!o)
        return NULL;
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
    if (h->ncv)
        memcpy(cv, h->cv, h->ncv * sizeof(double));
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

static int32_t reduce_idx(int32_t i, int delta)
{
    /* bucket i at schema s maps to ((i-1) >> delta) + 1 at schema s-delta */
    return ((i - 1) >> delta) + 1;
}

/* Reduces resolution of b[] in place by delta (merging). */
static void reduce(struct pq_bkt *b, size_t *n, int delta)
{
    if (delta <= 0)
        return;
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
static void widen_zero(struct pq_hist *h, double zt)
{
    if (zt <= h->zt)
        return;
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

static int merge_into(struct pq_bkt **a, size_t *na, const struct pq_bkt *b, size_t nb,
                      double sign)
{
    struct pq_bkt *o = malloc((*na + nb + 1) * sizeof(*o));
    if (!o)
        return -ENOMEM;
    size_t i = 0, j = 0, k = 0;
    while (i < *na || j < nb) {
        if (j >= nb || (i < *na && (*a)[i].i < b[j].i)) {
            o[k++] = (*a)[i++];
        } else if (i >= *na || b[j].i < (*a)[i].i) {
            o[k].i = b[j].i;
            o[k].c = sign * b[j].c;
            k++;
            j++;
        } else {
            o[k].i = (*a)[i].i;
            o[k].c = (*a)[i].c + sign * b[j].c;
            k++;
            i++;
            j++;
        }
    }
    free(*a);
    *a = o;
    *na = k;
    return 0;
}

int pq_hist_add(struct pq_hist *a, const struct pq_hist *b, double sign)
{
    bool ac = a->schema == PQ_SCHEMA_CUSTOM, bc = b->schema == PQ_SCHEMA_CUSTOM;
    if (ac != bc)
        return -EINVAL;
    struct pq_hist *bb = pq_hist_dup(b);
    if (!bb)
        return -ENOMEM;
    if (ac) {
        if (a->ncv != b->ncv || (a->ncv && memcmp(a->cv, b->cv, a->ncv * sizeof(double)))) {
            pq_hist_free(bb);
            return -EDOM;
        }
    } else {
        if (a->schema > bb->schema) {
            reduce(a->pb, &a->npb, a->schema - bb->schema);
            reduce(a->nb, &a->nnb, a->schema - bb->schema);
            a->schema = bb->schema;
        } else if (bb->schema > a->schema) {
            reduce(bb->pb, &bb->npb, bb->schema - a->schema);
            reduce(bb->nb, &bb->nnb, bb->schema - a->schema);
            bb->schema = a->schema;
        }
        if (a->zt < bb->zt)
            widen_zero(a, bb->zt);
        else if (bb->zt < a->zt)
            widen_zero(bb, a->zt);
    }
    a->zc += sign * bb->zc;
    a->count += sign * bb->count;
    a->sum += sign * bb->sum;
    int rc = merge_into(&a->pb, &a->npb, bb->pb, bb->npb, sign);
    if (rc == 0)
        rc = merge_into(&a->nb, &a->nnb, bb->nb, bb->nnb, sign);
    pq_hist_free(bb);
    return rc;
}

void pq_hist_scale(struct pq_hist *h, double f)
{
    h->zc *= f;
    h->count *= f;
    h->sum *= f;
    for (size_t i = 0; i < h->npb; i++)
        h->pb[i].c *= f;
    for (size_t i = 0; i < h->nnb; i++)
        h->nb[i].c *= f;
}

void pq_hist_compact(struct pq_hist *h)
{
    size_t k = 0;
    for (size_t i = 0; i < h->npb; i++)
        if (h->pb[i].c != 0)
            h->pb[k++] = h->pb[i];
    h->npb = k;
    k = 0;
    for (size_t i = 0; i < h->nnb; i++)
        if (h->nb[i].c != 0)
            h->nb[k++] = h->nb[i];
    h->nnb = k;
}

static bool feq(double a, double b, double tol)
{
    if (a == b || (isnan(a) && isnan(b)))
        return true;
    if (tol == 0)
        return false;
    if (a == 0 || b == 0)
        return fabs(a - b) < 1e-100;
    return fabs(a - b) / (fabs(a) + fabs(b)) < tol;
}

static bool bkts_equal(const struct pq_bkt *a, size_t na, const struct pq_bkt *b, size_t nb,
                       double tol)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < na && a[i].c == 0)
            i++;
        while (j < nb && b[j].c == 0)
            j++;
        if (i >= na || j >= nb)
            return i >= na && j >= nb;
        if (a[i].i != b[j].i || !feq(a[i].c, b[j].c, tol))
            return false;
        i++;
        j++;
    }
}

bool pq_hist_equal(const struct pq_hist *a, const struct pq_hist *b, double tol, bool cmp_hint)
{
    if (a->schema != b->schema || a->zt != b->zt || a->ncv != b->ncv)
        return false;
    if (a->ncv && memcmp(a->cv, b->cv, a->ncv * sizeof(double)))
        return false;
    if (cmp_hint && a->hint != b->hint)
        return false;
    return feq(a->count, b->count, tol) && feq(a->sum, b->sum, tol) && feq(a->zc, b->zc, tol) &&
           bkts_equal(a->pb, a->npb, b->pb, b->npb, tol) &&
           bkts_equal(a->nb, a->nnb, b->nb, b->nnb, tol);
}

void pq_hist_bounds(const struct pq_hist *h, bool neg, int32_t i, double *lo, double *hi)
{
    if (h->schema == PQ_SCHEMA_CUSTOM) {
        *lo = i == 0 ? -INFINITY : (i - 1 < (int32_t)h->ncv ? h->cv[i - 1] : INFINITY);
        *hi = i < (int32_t)h->ncv ? h->cv[i] : INFINITY;
        return;
    }
    double u = ldexp(1.0, 0), l;
    if (h->schema > 0) {
        double base = pow(2.0, pow(2.0, -h->schema));
        u = pow(base, i);
        l = pow(base, i - 1);
        /* exact powers of two where possible */
        int32_t per = 1 << h->schema;
        if (i % per == 0)
            u = ldexp(1.0, i / per);
        if ((i - 1) % per == 0)
            l = ldexp(1.0, (i - 1) / per);
    } else {
        int sh = -h->schema;
        u = ldexp(1.0, i << sh);
        l = ldexp(1.0, (i - 1) << sh);
    }
    if (neg) {
        *lo = -u;
        *hi = -l;
    } else {
        *lo = l;
        *hi = u;
    }
}

bool pq_hist_detect_reset(const struct pq_hist *cur, const struct pq_hist *prev)
{
    if (cur->hint == RE_HINT_RESET)
        return true;
    if (cur->hint == RE_HINT_NOT_RESET)
        return false;
    if (cur->hint == RE_HINT_GAUGE)
        return false;
    if (cur->count < prev->count)
        return true;
    if ((cur->schema == PQ_SCHEMA_CUSTOM) != (prev->schema == PQ_SCHEMA_CUSTOM))
        return true;
    if (cur->schema == PQ_SCHEMA_CUSTOM) {
        if (cur->ncv != prev->ncv ||
            (cur->ncv && memcmp(cur->cv, prev->cv, cur->ncv * sizeof(double))))
            return true;
    } else if (cur->schema > prev->schema) {
        return true;
    }
    if (cur->zt < prev->zt)
        return true;
    if (cur->zc < prev->zc)
        return true;
    /* compare buckets after bringing prev to cur's schema */
    struct pq_hist *p = pq_hist_dup(prev);
    if (!p)
        return false;
    if (cur->schema != PQ_SCHEMA_CUSTOM && p->schema > cur->schema) {
        reduce(p->pb, &p->npb, p->schema - cur->schema);
        reduce(p->nb, &p->nnb, p->schema - cur->schema);
        p->schema = cur->schema;
    }
    bool reset = false;
    for (int neg = 0; neg < 2 && !reset; neg++) {
        const struct pq_bkt *a = neg ? cur->nb : cur->pb, *b = neg ? p->nb : p->pb;
        size_t na = neg ? cur->nnb : cur->npb, nb = neg ? p->nnb : p->npb, i = 0;
        for (size_t j = 0; j < nb && !reset; j++) {
            while (i < na && a[i].i < b[j].i)
                i++;
            double c = (i < na && a[i].i == b[j].i) ? a[i].c : 0;
            if (c < b[j].c)
                reset = true;
        }
    }
    pq_hist_free(p);
    return reset;
}
