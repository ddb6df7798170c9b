/* SPDX-License-Identifier: Apache-2.0 */
/* Runs one Prometheus promqltest .test file (FORMAT.md) against our engine; prints TAP. */
#include "promql_int.h"
#include "ruleeval.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int npass, nfail, nskip, ncase;

static char **lines;
static size_t nlines;

static char *trim(char *s) {
    while (isspace((unsigned char)*s))
        s++;
    size_t l = strlen(s);
    while (l && isspace((unsigned char)s[l - 1]))
        s[--l] = 0;
    return s;
}

static void read_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        printf("Bail out! cannot open %s\n", path);
        exit(1);
    }
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&buf, &cap, f)) >= 0) {
        lines = realloc(lines, (nlines + 1) * sizeof(char *));
        lines[nlines++] = strdup(buf);
    }
    free(buf);
    fclose(f);
}

static bool blank(const char *l) {
    while (isspace((unsigned char)*l))
        l++;
    return !*l || *l == '#';
}

/* Splits "desc values" at the first blank outside braces/quotes. */
static char *split_series(char *l) {
    int depth = 0;
    char q = 0;
    for (char *p = l; *p; p++) {
        if (q) {
            if (*p == '\\' && p[1])
                p++;
            else if (*p == q)
                q = 0;
            continue;
        }
        if (*p == '"' || *p == '\'' || *p == '`')
            q = *p;
        else if (*p == '{')
            depth++;
        else if (*p == '}')
            depth--;
        else if (isspace((unsigned char)*p) && depth == 0) {
            *p = 0;
            return trim(p + 1);
        }
    }
    return l + strlen(l);
}

/* ---- loading ----------------------------------------------------------------------------- */

struct re_memstore *store;

struct vals {
    size_t n;
    bool *missing;
    double *v;
    struct re_hist **h;
};

static int collect(void *arg, size_t idx, bool missing, double v, const struct re_hist *h) {
    struct vals *vs = arg;
    (void)idx;
    vs->missing = realloc(vs->missing, (vs->n + 1) * sizeof(bool));
    vs->v = realloc(vs->v, (vs->n + 1) * sizeof(double));
    vs->h = realloc(vs->h, (vs->n + 1) * sizeof(void *));
    vs->missing[vs->n] = missing;
    vs->v[vs->n] = v;
    vs->h[vs->n] = NULL;
    if (h) {
        struct pq_hist *ph = pq_hist_from_re(h);
        vs->h[vs->n] = pq_hist_to_re(ph);
        pq_hist_free(ph);
    }
    vs->n++;
    return 0;
}

static void vals_free(struct vals *v) {
    for (size_t i = 0; i < v->n; i++)
        free(v->h[i]);
    free(v->h);
    free(v->v);
    free(v->missing);
    memset(v, 0, sizeof(*v));
}

static bool file_has_st;
static bool loaded_type_unit; /* data with __type__/__unit__ labels is loaded */

/* load_with_nhcb: classic histogram families (name_bucket{le}, name_count, name_sum) are also
 * stored as native histograms with custom buckets under the base name, as Prometheus's
 * promqltest does with its convertnhcb package. */
struct nh_point {
    int64_t t;
    double *le, *cnt;
    size_t nb;
    double count, sum;
    bool has_count;
};
struct nh_family {
    struct re_label *lb; /* base labels (name without suffix, no le) */
    size_t nl;
    char key[2048];
    struct nh_point *p;
    size_t np;
};
static struct nh_family *nh_fam;
static size_t nh_nfam;

static struct nh_point *nh_point_for(const struct re_label *lb, size_t nl, const char *base,
                                     int64_t t) {
    char key[2048] = "";
    strncat(key, base, sizeof(key) - 1);
    for (size_t k = 0; k < nl; k++) {
        if (!strcmp(lb[k].name, "__name__") || !strcmp(lb[k].name, "le")) continue;
        size_t o = strlen(key);
        snprintf(key + o, sizeof(key) - o, "\x01%s\x02%s", lb[k].name, lb[k].value);
    }
    struct nh_family *f = NULL;
    for (size_t i = 0; i < nh_nfam; i++)
        if (!strcmp(nh_fam[i].key, key)) f = &nh_fam[i];
    if (!f) {
        nh_fam = realloc(nh_fam, (nh_nfam + 1) * sizeof(*nh_fam));
        f = &nh_fam[nh_nfam++];
        memset(f, 0, sizeof(*f));
        snprintf(f->key, sizeof(f->key), "%s", key);
        f->lb = calloc(nl + 1, sizeof(*f->lb));
        for (size_t k = 0; k < nl; k++) {
            if (!strcmp(lb[k].name, "le")) continue;
            f->lb[f->nl].name = strdup(lb[k].name);
            f->lb[f->nl].value = strdup(!strcmp(lb[k].name, "__name__") ? base : lb[k].value);
            f->nl++;
        }
    }
    for (size_t i = 0; i < f->np; i++)
        if (f->p[i].t == t) return &f->p[i];
    f->p = realloc(f->p, (f->np + 1) * sizeof(*f->p));
    struct nh_point *pt = &f->p[f->np++];
    memset(pt, 0, sizeof(*pt));
    pt->t = t;
    return pt;
}

static void nh_collect(const struct re_label *lb, size_t nl, const struct vals *v,
                       int64_t interval) {
    const char *name = NULL, *le = NULL;
    for (size_t k = 0; k < nl; k++) {
        if (!strcmp(lb[k].name, "__name__")) name = lb[k].value;
        if (!strcmp(lb[k].name, "le")) le = lb[k].value;
    }
    if (!name) return;
    size_t ln = strlen(name);
    int kind = -1;
    static const char *suf[] = {"_bucket", "_count", "_sum"};
    for (int i = 0; i < 3; i++) {
        size_t sl = strlen(suf[i]);
        if (ln > sl && !strcmp(name + ln - sl, suf[i])) {
            kind = i;
            ln -= sl;
            break;
        }
    }
    if (kind < 0) return;
    double lev = 0;
    if (kind == 0) {
        if (!le) return;
        char *end;
        lev = strtod(le, &end);
        if (!strcasecmp(le, "+Inf") || !strcasecmp(le, "Inf"))
            lev = INFINITY;
        else if (*end || isnan(lev))
            return;
    }
    char base[512];
    snprintf(base, sizeof(base), "%.*s", (int)ln, name);
    for (size_t k = 0; k < v->n; k++) {
        if (v->missing[k] || v->h[k]) continue;
        struct nh_point *pt = nh_point_for(lb, nl, base, (int64_t)k * interval);
        if (kind == 0) {
            pt->le = realloc(pt->le, (pt->nb + 1) * sizeof(double));
            pt->cnt = realloc(pt->cnt, (pt->nb + 1) * sizeof(double));
            pt->le[pt->nb] = lev;
            pt->cnt[pt->nb] = v->v[k];
            pt->nb++;
        } else if (kind == 1) {
            pt->count = v->v[k];
            pt->has_count = true;
        } else {
            pt->sum = v->v[k];
        }
    }
}

static void nh_flush(void) {
    for (size_t i = 0; i < nh_nfam; i++) {
        struct nh_family *f = &nh_fam[i];
        for (size_t j = 0; j < f->np; j++) {
            struct nh_point *pt = &f->p[j];
            /* sort buckets by le */
            for (size_t a = 1; a < pt->nb; a++)
                for (size_t b = a; b > 0 && pt->le[b] < pt->le[b - 1]; b--) {
                    double t1 = pt->le[b], t2 = pt->cnt[b];
                    pt->le[b] = pt->le[b - 1];
                    pt->cnt[b] = pt->cnt[b - 1];
                    pt->le[b - 1] = t1;
                    pt->cnt[b - 1] = t2;
                }
            if (!pt->has_count && pt->nb) pt->count = pt->cnt[pt->nb - 1];
            size_t nb = pt->nb;
            bool inf = nb && isinf(pt->le[nb - 1]);
            size_t total = inf ? nb : nb + 1;
            double *cv = calloc(total, sizeof(double)), *bk = calloc(total, sizeof(double));
            double prev = 0;
            for (size_t b = 0; b < total; b++) {
                double c = b < nb ? pt->cnt[b] : pt->count;
                bk[b] = c - prev;
                prev = c;
                if (b + 1 < total) cv[b] = pt->le[b];
            }
            struct re_span sp = {0, (uint32_t)total};
            struct re_hist h = {.schema = -53,
                                .count = pt->count,
                                .sum = pt->sum,
                                .pspans = &sp,
                                .npspans = 1,
                                .pbuckets = bk,
                                .npbuckets = total,
                                .custom_values = cv,
                                .ncustom = total - 1};
            re_memstore_add(store, f->lb, f->nl, pt->t, 0, &h);
            free(cv);
            free(bk);
            free(pt->le);
            free(pt->cnt);
        }
        free(f->p);
        re_labels_free(f->lb, f->nl);
    }
    free(nh_fam);
    nh_fam = NULL;
    nh_nfam = 0;
}

static int do_load(size_t *li, int64_t interval, bool nhcb) {
    /* later definitions of the same series in one block replace earlier ones: load in
     * reverse order, skipping series already seen */
    size_t start = *li + 1, end = start;
    while (end < nlines && !blank(lines[end]))
        end++;
    *li = end;
    char **seen = NULL;
    size_t nseen = 0;
    for (size_t i = end; i-- > start;) {
        char *l = strdup(trim(lines[i]));
        char *vals = split_series(l);
        if (strstr(l, "@st")) {
            file_has_st = true;
            free(l);
            continue;
        }
        struct re_label *lb;
        size_t nl;
        struct perr err;
        if (promql_parse_series_desc(l, &lb, &nl, &err) < 0) {
            printf("# load: bad series \"%s\": %s\n", l, err.msg);
            free(l);
            return -1;
        }
        /* key */
        char key[2048] = "";
        for (size_t k = 0; k < nl; k++) {
            strncat(key, lb[k].name, sizeof(key) - strlen(key) - 1);
            strncat(key, "\x01", sizeof(key) - strlen(key) - 1);
            strncat(key, lb[k].value, sizeof(key) - strlen(key) - 1);
            strncat(key, "\x02", sizeof(key) - strlen(key) - 1);
        }
        bool dup = false;
        for (size_t k = 0; k < nseen; k++)
            if (!strcmp(seen[k], key)) dup = true;
        if (dup) {
            re_labels_free(lb, nl);
            free(l);
            continue;
        }
        for (size_t k = 0; k < nl; k++)
            if (!strcmp(lb[k].name, "__type__") || !strcmp(lb[k].name, "__unit__"))
                loaded_type_unit = true;
        seen = realloc(seen, (nseen + 1) * sizeof(char *));
        seen[nseen++] = strdup(key);
        struct vals v = {0};
        if (promql_expand_values(vals, collect, &v, &err) < 0) {
            printf("# load: bad values \"%s\": %s\n", vals, err.msg);
            vals_free(&v);
            re_labels_free(lb, nl);
            free(l);
            return -1;
        }
        for (size_t k = 0; k < v.n; k++) {
            if (v.missing[k]) continue;
            re_memstore_add(store, lb, nl, (int64_t)k * interval, v.v[k], v.h[k]);
        }
        if (nhcb) nh_collect(lb, nl, &v, interval);
        vals_free(&v);
        re_labels_free(lb, nl);
        free(l);
    }
    for (size_t k = 0; k < nseen; k++)
        free(seen[k]);
    free(seen);
    if (nhcb) nh_flush();
    return 0;
}

/* ---- expectations ---------------------------------------------------------------------------- */

struct expser {
    struct re_label *lb;
    size_t nl;
    struct vals v;
    bool cmp_hint;
};

enum akind { A_WARN, A_INFO };
struct annexp {
    enum akind k;
    int mode; /* 0 any, 1 msg, 2 regex */
    char *text;
};

struct evalcase {
    size_t line;
    bool range;
    int64_t at, start, end, step;
    char *expr;
    bool fail;
    int failmode;
    char *failtext;
    bool ordered, no_warn, no_info;
    struct annexp ann[16];
    int nann;
    bool has_warn, has_info;
    bool rv; /* expect range vector */
    int64_t rv_start, rv_end, rv_step;
    bool is_string;
    char *str;
    bool is_scalar;
    double scalar;
    struct expser es[512];
    size_t nes;
};

static char failbuf[2048];

static void mismatch(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void mismatch(const char *fmt, ...) {
    if (failbuf[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failbuf, sizeof(failbuf), fmt, ap);
    va_end(ap);
}

static void prefix_fail(const char *pfx) {
    char tmp[sizeof(failbuf)];
    memcpy(tmp, failbuf, sizeof(tmp));
    size_t l = strlen(pfx);
    if (l >= sizeof(failbuf) - 1) l = sizeof(failbuf) - 2;
    memcpy(failbuf, pfx, l);
    snprintf(failbuf + l, sizeof(failbuf) - l, "%.*s", (int)(sizeof(failbuf) - l - 1), tmp);
}

static bool feq(double a, double b) {
    if (re_is_stale(a) || re_is_stale(b)) return re_is_stale(a) && re_is_stale(b);
    if (isnan(a) && isnan(b)) return true;
    if (a == b) return true;
    if (a == 0 || b == 0) return fabs(a - b) < 1e-100;
    return fabs(a - b) / (fabs(a) + fabs(b)) < 1e-6;
}

static bool re_search(const char *re, const char *s) {
    int ec;
    PCRE2_SIZE eo;
    pcre2_code *c = pcre2_compile((PCRE2_SPTR)re, PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
    if (!c) return false;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(c, NULL);
    int rc = pcre2_match(c, (PCRE2_SPTR)s, strlen(s), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    pcre2_code_free(c);
    return rc >= 0;
}

static char *go_unquote(const char *s) {
    size_t l = strlen(s);
    char *o = malloc(l + 1);
    size_t n = 0;
    if (l < 2) {
        o[0] = 0;
        return o;
    }
    char q = s[0];
    for (size_t i = 1; i + 1 < l; i++) {
        if (s[i] == '\\' && q != '`' && i + 2 < l) {
            i++;
            switch (s[i]) {
            case 'n':
                o[n++] = '\n';
                break;
            case 't':
                o[n++] = '\t';
                break;
            default:
                o[n++] = s[i];
            }
            continue;
        }
        o[n++] = s[i];
    }
    o[n] = 0;
    return o;
}

static bool labels_eq(const struct re_label *a, size_t na, const struct re_label *b, size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) || strcmp(a[i].value, b[i].value)) return false;
    return true;
}

static void lstr(const struct re_label *l, size_t n, char *buf, size_t len) {
    size_t o = (size_t)snprintf(buf, len, "{");
    for (size_t i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s%s=\"%s\"", i ? "," : "", l[i].name, l[i].value);
    if (o < len) snprintf(buf + o, len - o, "}");
}

static void hist_str(const struct re_hist *h, char *buf, size_t len) {
    if (!h) {
        snprintf(buf, len, "(float)");
        return;
    }
    struct pq_hist *p = pq_hist_from_re(h);
    size_t o = (size_t)snprintf(buf, len, "{{schema:%d count:%g sum:%g z:%g/%g hint:%d", p->schema,
                                p->count, p->sum, p->zc, p->zt, p->hint);
    for (size_t i = 0; i < p->npb && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, " p%d=%g", p->pb[i].i, p->pb[i].c);
    for (size_t i = 0; i < p->nnb && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, " n%d=%g", p->nb[i].i, p->nb[i].c);
    for (size_t i = 0; i < p->ncv && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, " cv=%g", p->cv[i]);
    if (o < len) snprintf(buf + o, len - o, "}}");
    pq_hist_free(p);
}

static bool point_eq(const struct promql_point *p, double ev, const struct re_hist *eh,
                     bool cmp_hint) {
    if ((p->h != NULL) != (eh != NULL)) return false;
    if (!eh) return feq(p->v, ev);
    struct pq_hist *a = pq_hist_from_re(p->h), *b = pq_hist_from_re(eh);
    bool ok = pq_hist_equal(a, b, 1e-6, cmp_hint);
    pq_hist_free(a);
    pq_hist_free(b);
    return ok;
}

/* Compares an instant-style vector result (series with one point each, or the point at t). */
static bool compare_vector(struct evalcase *c, struct promql_result *r, int64_t t,
                           bool check_order) {
    size_t got = 0;
    for (size_t i = 0; i < r->nseries; i++) {
        struct promql_series *s = &r->series[i];
        const struct promql_point *p = NULL;
        for (size_t k = 0; k < s->npoints; k++)
            if (s->points[k].t == t || r->type == PROMQL_VECTOR) p = &s->points[k];
        if (!p) continue;
        bool found = false;
        for (size_t j = 0; j < c->nes; j++) {
            struct expser *e = &c->es[j];
            if (!labels_eq(s->labels, s->nlabels, e->lb, e->nl)) continue;
            found = true;
            if (check_order && c->ordered && j != got) {
                mismatch("expected series at position %zu, got position %zu", j, got);
                return false;
            }
            if (e->v.n != 1 || e->v.missing[0]) {
                mismatch("bad expectation");
                return false;
            }
            if (!point_eq(p, e->v.v[0], e->v.h[0], e->cmp_hint)) {
                char b[512];
                lstr(s->labels, s->nlabels, b, sizeof(b));
                if (p->h || e->v.h[0]) {
                    char g[400], w[400];
                    hist_str(p->h, g, sizeof(g));
                    hist_str(e->v.h[0], w, sizeof(w));
                    mismatch("value mismatch for %s: got %s want %s", b, g, w);
                } else
                    mismatch("value mismatch for %s: got %.17g want %.17g", b, p->v, e->v.v[0]);
                return false;
            }
        }
        if (!found) {
            char b[512];
            lstr(s->labels, s->nlabels, b, sizeof(b));
            mismatch("unexpected series %s", b);
            return false;
        }
        got++;
    }
    if (got != c->nes) {
        mismatch("expected %zu series, got %zu", c->nes, got);
        return false;
    }
    return true;
}

static bool sorted_ok(struct promql_result *r) {
    for (size_t i = 1; i < r->nseries; i++) {
        struct promql_series *a = &r->series[i - 1], *b = &r->series[i];
        size_t n = a->nlabels < b->nlabels ? a->nlabels : b->nlabels;
        int cmp = 0;
        for (size_t k = 0; k < n && !cmp; k++) {
            cmp = strcmp(a->labels[k].name, b->labels[k].name);
            if (!cmp) cmp = strcmp(a->labels[k].value, b->labels[k].value);
        }
        if (!cmp) cmp = a->nlabels < b->nlabels ? -1 : 1;
        if (cmp > 0) return false;
    }
    return true;
}

static bool compare_matrix(struct evalcase *c, struct promql_result *r, int64_t start,
                           int64_t step) {
    if (!sorted_ok(r)) {
        mismatch("matrix not sorted");
        return false;
    }
    size_t got = 0;
    for (size_t i = 0; i < r->nseries; i++) {
        struct promql_series *s = &r->series[i];
        struct expser *e = NULL;
        for (size_t j = 0; j < c->nes; j++)
            if (labels_eq(s->labels, s->nlabels, c->es[j].lb, c->es[j].nl)) e = &c->es[j];
        char b[512];
        lstr(s->labels, s->nlabels, b, sizeof(b));
        if (!e) {
            mismatch("unexpected series %s", b);
            return false;
        }
        got++;
        size_t pi = 0;
        for (size_t k = 0; k < e->v.n; k++) {
            int64_t t = start + (int64_t)k * step;
            if (e->v.missing[k]) {
                if (pi < s->npoints && s->points[pi].t == t) {
                    mismatch("%s: unexpected point at %lld", b, (long long)t);
                    return false;
                }
                continue;
            }
            if (pi >= s->npoints || s->points[pi].t != t) {
                mismatch("%s: missing point at %lld", b, (long long)t);
                return false;
            }
            if (!point_eq(&s->points[pi], e->v.v[k], e->v.h[k], e->cmp_hint)) {
                mismatch("%s: value at %lld: got %.17g want %.17g", b, (long long)t,
                         s->points[pi].v, e->v.v[k]);
                return false;
            }
            pi++;
        }
        if (pi != s->npoints) {
            mismatch("%s: %zu extra points", b, s->npoints - pi);
            return false;
        }
    }
    if (got != c->nes) {
        mismatch("expected %zu series, got %zu", c->nes, got);
        return false;
    }
    return true;
}

static bool check_annotations(struct evalcase *c, struct promql_result *r) {
    for (int k = 0; k < 2; k++) {
        const char *pfx = k == A_WARN ? "PromQL warning" : "PromQL info";
        bool want_any = k == A_WARN ? c->has_warn : c->has_info;
        bool want_none = k == A_WARN ? c->no_warn : c->no_info;
        size_t n = 0;
        for (size_t i = 0; i < r->nwarnings; i++) {
            if (strncmp(r->warnings[i], pfx, strlen(pfx))) continue;
            n++;
            if (want_none) {
                mismatch("unexpected annotation: %s", r->warnings[i]);
                return false;
            }
            if (want_any) {
                bool matched = false;
                for (int j = 0; j < c->nann; j++) {
                    if ((int)c->ann[j].k != k) continue;
                    if (c->ann[j].mode == 0 ||
                        (c->ann[j].mode == 1 && !strcmp(c->ann[j].text, r->warnings[i])) ||
                        (c->ann[j].mode == 2 && re_search(c->ann[j].text, r->warnings[i])))
                        matched = true;
                }
                if (!matched) {
                    mismatch("unmatched annotation: %s", r->warnings[i]);
                    return false;
                }
            }
        }
        if (want_any && n == 0) {
            mismatch("expected %s annotation, got none", k == A_WARN ? "warn" : "info");
            return false;
        }
        if (want_any) {
            for (int j = 0; j < c->nann; j++) {
                if ((int)c->ann[j].k != k || c->ann[j].mode == 0) continue;
                bool any = false;
                for (size_t i = 0; i < r->nwarnings; i++)
                    if ((c->ann[j].mode == 1 && !strcmp(c->ann[j].text, r->warnings[i])) ||
                        (c->ann[j].mode == 2 && re_search(c->ann[j].text, r->warnings[i])))
                        any = true;
                if (!any) {
                    mismatch("expected annotation not produced: %s", c->ann[j].text);
                    return false;
                }
            }
        }
    }
    return true;
}

static bool check_fail(struct evalcase *c, int rc, struct perr *err, struct promql_result *r) {
    if (c->fail) {
        if (rc == 0) {
            mismatch("expected failure, got success");
            return false;
        }
        /* struct perr holds 159 characters: compare that much of a longer message */
        size_t ml = strlen(err->msg);
        bool trunc = ml == sizeof(err->msg) - 1;
        if (c->failmode == 1 && (trunc ? strncmp(trim(c->failtext), err->msg, ml)
                                       : strcmp(trim(c->failtext), err->msg))) {
            mismatch("error \"%s\", want \"%s\"", err->msg, c->failtext);
            return false;
        }
        if (c->failmode == 2 && !re_search(c->failtext, err->msg)) {
            mismatch("error \"%s\" does not match /%s/", err->msg, c->failtext);
            return false;
        }
        return true;
    }
    if (rc != 0) {
        mismatch("unexpected error: %s", err->msg);
        return false;
    }
    (void)r;
    return true;
}

static bool compare_instant(struct evalcase *c, struct promql_result *r, int64_t t) {
    if (c->is_string) {
        if (r->type != PROMQL_STRING || strcmp(r->str, c->str)) {
            mismatch("string mismatch");
            return false;
        }
        return true;
    }
    if (c->is_scalar) {
        if (r->type != PROMQL_SCALAR) {
            mismatch("expected scalar");
            return false;
        }
        if (!feq(r->scalar, c->scalar)) {
            mismatch("scalar: got %.17g want %.17g", r->scalar, c->scalar);
            return false;
        }
        return true;
    }
    if (r->type == PROMQL_SCALAR || r->type == PROMQL_STRING) {
        mismatch("unexpected scalar/string result");
        return false;
    }
    if (c->rv) {
        if (r->type != PROMQL_MATRIX) {
            mismatch("expected range vector");
            return false;
        }
        return compare_matrix(c, r, c->rv_start, c->rv_step);
    }
    if (r->type == PROMQL_MATRIX) {
        mismatch("unexpected range vector result");
        return false;
    }
    return compare_vector(c, r, t, true);
}

static bool uses_nonstep_invariant(const struct promql_expr *e) {
    if (!e) return false;
    if (e->kind == PQ_CALL) {
        static const char *fns[] = {
            "time",          "timestamp",      "start",        "end",         "step",
            "range",         "predict_linear", "day_of_month", "day_of_week", "day_of_year",
            "days_in_month", "hour",           "minute",       "month",       "year"};
        for (size_t i = 0; i < sizeof(fns) / sizeof(fns[0]); i++)
            if (!strcmp(e->fn->name, fns[i])) return true;
    }
    if (uses_nonstep_invariant(e->a) || uses_nonstep_invariant(e->b) ||
        uses_nonstep_invariant(e->param))
        return true;
    for (size_t i = 0; i < e->nargs; i++)
        if (uses_nonstep_invariant(e->args[i])) return true;
    return false;
}

static void set_at(struct promql_expr *e, int64_t t) {
    if (!e) return;
    switch (e->kind) {
    case PQ_VSEL:
        if (!e->at_kind) {
            e->at_kind = PQ_AT_TS;
            e->at = t;
        }
        return;
    case PQ_MSEL:
        set_at(e->a, t);
        return;
    case PQ_SUBQ:
        if (!e->at_kind) {
            e->at_kind = PQ_AT_TS;
            e->at = t;
        }
        return;
    default:
        break;
    }
    set_at(e->a, t);
    set_at(e->b, t);
    set_at(e->param, t);
    for (size_t i = 0; i < e->nargs; i++)
        set_at(e->args[i], t);
}

static struct re_source source;
static struct promql_opts opts;

/* Runs one instant query variant and all checks. */
static bool run_instant_variant(struct evalcase *c, const struct promql_expr *e, int64_t t) {
    struct promql_result *r = NULL;
    struct perr err = {0};
    int rc = promql_eval_instant(e, &source, t, &opts, &r, &err);
    bool ok = check_fail(c, rc, &err, r);
    if (!ok || c->fail) {
        promql_result_free(r);
        return ok;
    }
    ok = check_annotations(c, r) && compare_instant(c, r, t);
    enum promql_vtype rtype = r->type;
    promql_result_free(r);
    if (!ok) return false;
    if (c->rv || c->is_string || strstr(c->expr, "start()") || strstr(c->expr, "end()") ||
        strstr(c->expr, "range()") || strstr(c->expr, "step()"))
        return true;
    rc = promql_eval_range(e, &source, t - 60000, t + 60000, 60000, &opts, &r, &err);
    if (rc != 0) {
        mismatch("range mode error: %s", err.msg);
        return false;
    }
    if (c->ordered) {
        promql_result_free(r);
        return true;
    }
    if (!sorted_ok(r)) {
        mismatch("range mode: matrix not sorted");
        promql_result_free(r);
        return false;
    }
    if (rtype == PROMQL_SCALAR) {
        double v = NAN;
        for (size_t i = 0; i < r->nseries; i++)
            for (size_t k = 0; k < r->series[i].npoints; k++)
                if (r->series[i].points[k].t == t) v = r->series[i].points[k].v;
        ok = feq(v, c->scalar);
        if (!ok) mismatch("range mode scalar: got %.17g want %.17g", v, c->scalar);
    } else {
        ok = compare_vector(c, r, t, false);
        if (!ok) prefix_fail("range mode: ");
    }
    promql_result_free(r);
    return ok;
}

static bool run_case(struct evalcase *c) {
    struct perr err;
    struct promql_expr *e = promql_parse(c->expr, &err);
    if (!e) {
        mismatch("parse error: %d:%d: %s", err.line, err.col, err.msg);
        return false;
    }
    bool ok = true;
    if (c->range) {
        struct promql_result *r = NULL;
        int rc = promql_eval_range(e, &source, c->start, c->end, c->step, &opts, &r, &err);
        ok = check_fail(c, rc, &err, r);
        if (ok && !c->fail) ok = check_annotations(c, r) && compare_matrix(c, r, c->start, c->step);
        promql_result_free(r);
        promql_free(e);
        return ok;
    }
    ok = run_instant_variant(c, e, c->at);
    if (ok && !uses_nonstep_invariant(e)) {
        struct promql_expr *e2 = promql_parse(c->expr, &err);
        set_at(e2, c->at);
        int64_t ts = c->at;
        int64_t times[5] = {-10 * ts, 0, ts / 5, ts, 10 * ts};
        int nt = 5;
        if (ts == 0) {
            times[0] = -1000;
            times[1] = 0;
            times[2] = 1000;
            nt = 3;
        }
        for (int i = 0; i < nt && ok; i++) {
            ok = run_instant_variant(c, e2, times[i]);
            if (!ok) {
                char pfx[96];
                snprintf(pfx, sizeof(pfx), "@%lld rewrite at %lld: ", (long long)ts,
                         (long long)times[i]);
                prefix_fail(pfx);
            }
        }
        promql_free(e2);
    }
    promql_free(e);
    return ok;
}

/* ---- skip detection ------------------------------------------------------------------------ */

static const char *skip_reason(const char *expr, const char *body) {
    static const struct {
        const char *pat, *why;
    } pats[] = {
        {"info(", "info()"},
        {"fill(", "fill modifiers"},
        {"fill_left", "fill modifiers"},
        {"fill_right", "fill modifiers"},
        {"limitk", "limitk/limit_ratio"},
        {"limit_ratio", "limitk/limit_ratio"},
        {" anchored", "extended range selectors"},
        {" smoothed", "extended range selectors"},
        {"__type__", "type-and-unit labels"},
        {"__unit__", "type-and-unit labels"},
        {"start_timestamp(", "start timestamps"},
        {"</", "histogram trim operators"},
        {">/", "histogram trim operators"},
    };
    for (size_t i = 0; i < sizeof(pats) / sizeof(pats[0]); i++)
        if (strcasestr(expr, pats[i].pat) || (body && strstr(body, pats[i].pat)))
            return pats[i].why;
    if (loaded_type_unit) return "type-and-unit labels";
    /* duration expressions: arithmetic inside [..] or after offset/@ with parentheses */
    for (const char *p = strchr(expr, '['); p; p = strchr(p + 1, '[')) {
        const char *q = strchr(p, ']');
        if (!q) break;
        for (const char *x = p; x < q; x++)
            if (*x == '+' || *x == '*' || *x == '(' || *x == '-' || *x == '/' || *x == '%' ||
                *x == '^')
                return "duration expressions";
    }
    const char *o = strstr(expr, "offset");
    while (o) {
        const char *x = o + 6;
        while (*x == ' ')
            x++;
        if (*x == '-' || *x == '+') x++;
        if (*x == '(' || isalpha((unsigned char)*x)) return "duration expressions";
        o = strstr(o + 1, "offset");
    }
    const char *a = strchr(expr, '@');
    while (a) {
        const char *x = a + 1;
        while (*x == ' ')
            x++;
        if (*x == '(' ||
            (isalpha((unsigned char)*x) && strncmp(x, "start()", 7) && strncmp(x, "end()", 5)))
            return "duration expressions";
        a = strchr(a + 1, '@');
    }
    return NULL;
}

/* ---- main loop --------------------------------------------------------------------------- */

static int64_t dur(const char *s, bool *ok) {
    int64_t ms;
    *ok = promql_parse_duration(s, &ms) == 0;
    return ms;
}

/* Known failures (tests/conformance/promql/known_failures.txt: "file.test:LINE reason"):
 * reported as TAP "not ok ... # TODO" so they are visible but do not fail the build. */
static char known_file[4096];
static char *known_text;
static int ntodo;

static const char *known_reason(size_t line) {
    if (!known_text) return NULL;
    char key[4200];
    snprintf(key, sizeof(key), "%s:%zu ", known_file, line);
    const char *p = known_text;
    size_t kl = strlen(key);
    while (p && *p) {
        if (!strncmp(p, key, kl)) return p + kl;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return NULL;
}

static void load_known(const char *base) {
    snprintf(known_file, sizeof(known_file), "%s", base);
    const char *root = getenv("SOURCE_ROOT");
    if (!root) return;
    char path[4096];
    snprintf(path, sizeof(path), "%s/tests/conformance/promql/known_failures.txt", root);
    FILE *f = fopen(path, "r");
    if (!f) return;
    known_text = calloc(1, 1 << 20);
    size_t n = fread(known_text, 1, (1 << 20) - 1, f);
    known_text[n] = 0;
    fclose(f);
}

static void report(struct evalcase *c, const char *skip, bool ok) {
    ncase++;
    if (skip) {
        nskip++;
        printf("ok %d - line %zu: %s # SKIP %s\n", ncase, c->line, c->expr, skip);
        return;
    }
    if (ok) {
        npass++;
        printf("ok %d - line %zu: %s\n", ncase, c->line, c->expr);
    } else {
        nfail++;
        const char *kr = known_reason(c->line);
        if (kr) {
            ntodo++;
            int rl = (int)strcspn(kr, "\n");
            printf("not ok %d - line %zu: %s # TODO %.*s\n#   %s\n", ncase, c->line, c->expr, rl,
                   kr, failbuf);
        } else {
            printf("not ok %d - line %zu: %s\n#   %s\n", ncase, c->line, c->expr, failbuf);
        }
    }
}

static void free_case(struct evalcase *c) {
    for (size_t i = 0; i < c->nes; i++) {
        re_labels_free(c->es[i].lb, c->es[i].nl);
        vals_free(&c->es[i].v);
    }
    for (int i = 0; i < c->nann; i++)
        free(c->ann[i].text);
    free(c->expr);
    free(c->failtext);
    free(c->str);
}

static bool parse_eval(size_t *li, struct evalcase *c, const char **file_err) {
    char *l = strdup(trim(lines[*li]));
    c->line = *li + 1;
    char *cmd = strtok(l, " \t");
    char *rest = cmd + strlen(cmd) + 1;
    if (!strcasecmp(cmd, "eval_fail")) c->fail = true;
    if (!strcasecmp(cmd, "eval_warn")) c->has_warn = true;
    if (!strcasecmp(cmd, "eval_info")) c->has_info = true;
    if (!strcasecmp(cmd, "eval_ordered")) c->ordered = true;
    rest = trim(rest);
    bool ok;
    if (!strncmp(rest, "instant", 7)) {
        rest = trim(rest + 7);
        if (!strncmp(rest, "at ", 3)) rest = trim(rest + 3);
        char *sp = rest;
        while (*sp && !isspace((unsigned char)*sp))
            sp++;
        char save = *sp;
        *sp = 0;
        c->at = dur(rest, &ok);
        *sp = save;
        if (!ok) {
            *file_err = "bad eval time";
            free(l);
            return false;
        }
        c->expr = strdup(trim(sp));
    } else if (!strncmp(rest, "range", 5)) {
        c->range = true;
        char from[64], to[64], step[64];
        int n = 0;
        if (sscanf(rest, "range from %63s to %63s step %63s %n", from, to, step, &n) != 3) {
            *file_err = "bad range header";
            free(l);
            return false;
        }
        bool o1, o2, o3;
        c->start = dur(from, &o1);
        c->end = dur(to, &o2);
        c->step = dur(step, &o3);
        if (!o1 || !o2 || !o3) {
            *file_err = "bad range duration";
            free(l);
            return false;
        }
        c->expr = strdup(trim(rest + n));
    } else {
        *file_err = "bad eval header";
        free(l);
        return false;
    }
    free(l);
    size_t i = *li + 1;
    for (; i < nlines && !blank(lines[i]); i++) {
        char *b = strdup(trim(lines[i]));
        if (!strncmp(b, "expect ", 7) || !strncmp(b, "expected_fail_", 14)) {
            char *x = trim(b + 7);
            if (!strncmp(b, "expected_fail_message", 21)) {
                c->failmode = 1;
                c->failtext = strdup(trim(b + 21));
            } else if (!strncmp(b, "expected_fail_regexp", 20)) {
                c->failmode = 2;
                c->failtext = strdup(trim(b + 20));
            } else if (!strncmp(x, "range vector", 12)) {
                char from[64], to[64], step[64];
                if (sscanf(x, "range vector from %63s to %63s step %63s", from, to, step) == 3) {
                    bool o1, o2, o3;
                    c->rv = true;
                    c->rv_start = dur(from, &o1);
                    c->rv_end = dur(to, &o2);
                    c->rv_step = dur(step, &o3);
                }
            } else if (!strncmp(x, "string", 6)) {
                c->is_string = true;
                c->str = go_unquote(trim(x + 6));
            } else {
                char *kind = x;
                char *sp = kind;
                while (*sp && !isspace((unsigned char)*sp))
                    sp++;
                char *arg = *sp ? trim(sp + 1) : sp;
                *sp = 0;
                int mode = 0;
                char *text = NULL;
                if (!strncmp(arg, "msg:", 4)) {
                    mode = 1;
                    text = strdup(trim(arg + 4));
                } else if (!strncmp(arg, "regex:", 6)) {
                    mode = 2;
                    text = strdup(trim(arg + 6));
                }
                if (!strcmp(kind, "fail")) {
                    c->fail = true;
                    c->failmode = mode;
                    c->failtext = text;
                    text = NULL;
                } else if (!strcmp(kind, "warn") || !strcmp(kind, "info")) {
                    bool w = !strcmp(kind, "warn");
                    if (w)
                        c->has_warn = true;
                    else
                        c->has_info = true;
                    if (c->nann < 16) {
                        c->ann[c->nann].k = w ? A_WARN : A_INFO;
                        c->ann[c->nann].mode = mode;
                        c->ann[c->nann].text = text;
                        c->nann++;
                        text = NULL;
                    }
                } else if (!strcmp(kind, "no_warn")) {
                    c->no_warn = true;
                } else if (!strcmp(kind, "no_info")) {
                    c->no_info = true;
                } else if (!strcmp(kind, "ordered")) {
                    c->ordered = true;
                }
                free(text);
            }
            free(b);
            continue;
        }
        /* scalar line? */
        char *endp;
        double v = strtod(b, &endp);
        bool scalar = *b && !*trim(endp) && !isalpha((unsigned char)b[0]);
        if (!strcasecmp(b, "NaN") || !strcasecmp(b, "+Inf") || !strcasecmp(b, "-Inf") ||
            !strcasecmp(b, "Inf")) {
            scalar = true;
        }
        if (scalar && (b[0] == '{' || b[0] == '_')) scalar = false;
        if (scalar) {
            c->is_scalar = true;
            c->scalar = v;
            free(b);
            i++;
            break;
        }
        char *vals = split_series(b);
        if (c->nes >= 512) {
            free(b);
            continue;
        }
        struct expser *es = &c->es[c->nes];
        struct perr err;
        if (promql_parse_series_desc(b, &es->lb, &es->nl, &err) < 0) {
            /* allow metric literally named like keywords etc. */
            *file_err = "bad expected series";
            free(b);
            return false;
        }
        memset(&es->v, 0, sizeof(es->v));
        es->cmp_hint = strstr(vals, "counter_reset_hint") != NULL;
        if (promql_expand_values(vals, collect, &es->v, &err) < 0) {
            *file_err = "bad expected values";
            re_labels_free(es->lb, es->nl);
            free(b);
            return false;
        }
        c->nes++;
        free(b);
    }
    *li = i;
    return true;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE.test\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    char full[4096];
    if (path[0] != '/' && getenv("CONFORMANCE")) {
        snprintf(full, sizeof(full), "%s/promql/%s", getenv("CONFORMANCE"), path);
        path = full;
    }
    read_file(path);
    {
        const char *b = strrchr(path, '/');
        load_known(b ? b + 1 : path);
    }
    store = re_memstore_new();
    re_memstore_source(store, &source);
    promql_opts_default(&opts);
    opts.max_samples = 10000;
    bool file_nhcb_types = false;
    (void)file_nhcb_types;
    for (size_t i = 0; i < nlines;) {
        if (blank(lines[i])) {
            i++;
            continue;
        }
        char *l = trim(lines[i]);
        if (!strncasecmp(l, "clear", 5)) {
            re_memstore_clear(store);
            loaded_type_unit = false;
            i++;
            continue;
        }
        if (!strncasecmp(l, "load", 4)) {
            bool nhcb = !strncasecmp(l, "load_with_nhcb", 14);
            char *sp = l;
            while (*sp && !isspace((unsigned char)*sp))
                sp++;
            bool ok;
            int64_t iv = dur(trim(sp), &ok);
            if (!ok || do_load(&i, iv, nhcb) < 0) {
                printf("Bail out! bad load at line %zu\n", i + 1);
                return 1;
            }
            continue;
        }
        if (!strncasecmp(l, "eval", 4)) {
            struct evalcase *c = calloc(1, sizeof(*c));
            const char *ferr = NULL;
            size_t start = i;
            if (!parse_eval(&i, c, &ferr)) {
                printf("not ok %d - line %zu: file error: %s\n", ++ncase, start + 1, ferr);
                nfail++;
                while (i < nlines && !blank(lines[i]))
                    i++;
                free_case(c);
                free(c);
                continue;
            }
            /* body text for skip detection */
            char body[8192] = "";
            for (size_t k = start + 1; k < i && k < nlines; k++)
                strncat(body, lines[k], sizeof(body) - strlen(body) - 1);
            const char *skip = skip_reason(c->expr, body);
            if (!skip && file_has_st) skip = "start timestamps";
            failbuf[0] = 0;
            bool ok = skip ? true : run_case(c);
            report(c, skip, ok);
            free_case(c);
            free(c);
            continue;
        }
        printf("Bail out! unknown command at line %zu: %s\n", i + 1, l);
        return 1;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    printf("# %-28s passed %4d  failed %4d  skipped %4d  (of the failed: %d known, TODO)\n", base,
           npass, nfail, nskip, ntodo);
    printf("1..%d\n", ncase);
    free(known_text);
    re_memstore_free(store);
    for (size_t i = 0; i < nlines; i++)
        free(lines[i]);
    free(lines);
    return nfail > ntodo ? 1 : 0;
}
