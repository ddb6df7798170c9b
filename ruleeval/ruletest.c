/* SPDX-License-Identifier: Apache-2.0 */
/* `promtool test rules`: rule unit-test files run over an in-memory store
 * (cmd/promtool/unittest.go). */
#include "ruleeval.h"
#include "rbuf.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Bounds on what a test file may ask for (every loop stays bounded). */
#define RT_MAX_STEPS 10000000LL /* evaluation steps per test group */
#define RT_MAX_POINTS 5000000   /* input points per test group */

/* ---- tiny YAML access (strict: unknown keys are errors, as yaml.UnmarshalStrict) ---- */

struct yctx {
    yaml_document_t *doc;
    struct rbuf *errs;
    int nerr;
};

static yaml_node_t *ynode(struct yctx *y, int i) {
    return yaml_document_get_node(y->doc, i);
}

static void yerr(struct yctx *y, yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void yerr(struct yctx *y, yaml_node_t *n, const char *fmt, ...) {
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (y->nerr++ == 0) rbuf_puts(y->errs, "yaml: unmarshal errors:");
    rbuf_printf(y->errs, "\n  line %d: %s", n ? (int)n->start_mark.line + 1 : 0, m);
}

static bool ynull(yaml_node_t *n) {
    if (!n) return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") || !strcmp(v, "NULL");
}

static const char *yscalar(struct yctx *y, yaml_node_t *n, const char *type) {
    if (ynull(n)) return "";
    if (n->type != YAML_SCALAR_NODE) {
        yerr(y, n, "cannot unmarshal %s into %s", n->type == YAML_MAPPING_NODE ? "!!map" : "!!seq",
             type);
        return NULL;
    }
    return (const char *)n->data.scalar.value;
}

/* Checks that mapping n only has keys from allowed (NULL-terminated); returns false if n is
 * not a mapping. */
static bool ymap_check(struct yctx *y, yaml_node_t *n, const char *const *allowed,
                       const char *type) {
    if (ynull(n)) return true;
    if (n->type != YAML_MAPPING_NODE) {
        yerr(y, n, "cannot unmarshal %s into %s", n->type == YAML_SEQUENCE_NODE ? "!!seq" : "!!str",
             type);
        return false;
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(y, p->key);
        const char *ks = k && k->type == YAML_SCALAR_NODE ? (const char *)k->data.scalar.value : "";
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], ks) == 0) ok = true;
        if (!ok) yerr(y, k, "field %s not found in type %s", ks, type);
    }
    return true;
}

static yaml_node_t *yget(struct yctx *y, yaml_node_t *n, const char *key) {
    if (!n || n->type != YAML_MAPPING_NODE) return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = ynode(y, p->key);
        if (k && k->type == YAML_SCALAR_NODE &&
            strcmp((const char *)k->data.scalar.value, key) == 0)
            return ynode(y, p->value);
    }
    return NULL;
}

static size_t yseq_len(struct yctx *y, yaml_node_t *n, const char *type) {
    if (ynull(n)) return 0;
    if (n->type != YAML_SEQUENCE_NODE) {
        yerr(y, n, "cannot unmarshal %s into %s", n->type == YAML_MAPPING_NODE ? "!!map" : "!!str",
             type);
        return 0;
    }
    return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
}

static yaml_node_t *yseq_at(struct yctx *y, yaml_node_t *n, size_t i) {
    return ynode(y, n->data.sequence.items.start[i]);
}

static bool ydur(struct yctx *y, yaml_node_t *n, int64_t *ms) {
    const char *s = yscalar(y, n, "model.Duration");
    *ms = 0;
    if (!s) return false;
    if (!*s) return true;
    if (template_parse_duration(s, ms) < 0) {
        yerr(y, n, "not a valid duration string: \"%s\"", s);
        return false;
    }
    return true;
}

static bool yfloat(struct yctx *y, yaml_node_t *n, double *v) {
    const char *s = yscalar(y, n, "float64");
    *v = 0;
    if (!s) return false;
    if (!*s) return true;
    if (!strcmp(s, ".inf") || !strcmp(s, ".Inf") || !strcmp(s, ".INF") || !strcmp(s, "+.inf")) {
        *v = INFINITY;
        return true;
    }
    if (!strcmp(s, "-.inf") || !strcmp(s, "-.Inf") || !strcmp(s, "-.INF")) {
        *v = -INFINITY;
        return true;
    }
    if (!strcmp(s, ".nan") || !strcmp(s, ".NaN") || !strcmp(s, ".NAN")) {
        *v = NAN;
        return true;
    }
    char *e;
    *v = strtod(s, &e);
    if (e == s || *e) {
        yerr(y, n, "cannot unmarshal !!str `%s` into float64", s);
        return false;
    }
    return true;
}

static bool ybool(struct yctx *y, yaml_node_t *n, bool *b) {
    const char *s = yscalar(y, n, "bool");
    *b = false;
    if (!s) return false;
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE"))
        *b = true;
    else if (*s && strcmp(s, "false") && strcmp(s, "False") && strcmp(s, "FALSE")) {
        yerr(y, n, "cannot unmarshal !!str `%s` into bool", s);
        return false;
    }
    return true;
}

/* ---- label sets --------------------------------------------------------------------------- */

static int lcmp(const struct re_label *a, size_t na, const struct re_label *b, size_t nb) {
    /* labels.Compare: lexicographic by name then value, shorter first on a common prefix */
    size_t n = na < nb ? na : nb;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c) return c;
        c = strcmp(a[i].value, b[i].value);
        if (c) return c;
    }
    return na < nb ? -1 : na > nb;
}

static void lsort(struct re_label *l, size_t n) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(l[j - 1].name, l[j].name) > 0; j--) {
            struct re_label t = l[j];
            l[j] = l[j - 1];
            l[j - 1] = t;
        }
}

/* labels.Labels.String(): {a="b", c="d"} with Go-quoted values. */
static void lstring(struct rbuf *b, const struct re_label *l, size_t n) {
    rbuf_putc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) rbuf_puts(b, ", ");
        rbuf_puts(b, l[i].name);
        rbuf_puts(b, "=\"");
        for (const char *p = l[i].value; *p; p++) {
            switch (*p) {
            case '"':
                rbuf_puts(b, "\\\"");
                break;
            case '\\':
                rbuf_puts(b, "\\\\");
                break;
            case '\n':
                rbuf_puts(b, "\\n");
                break;
            case '\t':
                rbuf_puts(b, "\\t");
                break;
            default:
                rbuf_putc(b, *p);
            }
        }
        rbuf_putc(b, '"');
    }
    rbuf_putc(b, '}');
}

struct rt_group {
    const struct rulefile_group *def;
    int order;
    struct rulegroup *rg;
};

struct point {
    int64_t t;
    size_t series; /* index into input series */
    double v;
    struct re_hist *h;
};

struct input_series {
    struct re_label *labels;
    size_t n;
};

struct run {
    const struct ruletest_opts *o;
    struct promql_opts popts;
    struct re_memstore *store;
    struct re_source src;
    struct re_label *ext;
    size_t next;
    const char *ext_url;
    struct rbuf *errs; /* error texts separated by "\n\n" handled by caller */
    int nerrs;
};

static void add_err(struct run *r, const char *text) {
    if (r->nerrs++) rbuf_puts(r->errs, "\n\n");
    rbuf_puts(r->errs, text);
}

/* ---- native histogram helpers (copying and comparing) -------------------------------------- */

static void hist_free(struct re_hist *h) {
    if (!h) return;
    free((void *)h->pspans);
    free((void *)h->pbuckets);
    free((void *)h->nspans);
    free((void *)h->nbuckets);
    free((void *)h->custom_values);
    free(h);
}

static void *dupmem(const void *p, size_t n) {
    if (!n) return NULL;
    void *d = malloc(n);
    if (d) memcpy(d, p, n);
    return d;
}

static struct re_hist *hist_dup(const struct re_hist *h) {
    struct re_hist *d = calloc(1, sizeof(*d));
    if (!d) return NULL;
    *d = *h;
    d->pspans = dupmem(h->pspans, h->npspans * sizeof(*h->pspans));
    d->pbuckets = dupmem(h->pbuckets, h->npbuckets * sizeof(*h->pbuckets));
    d->nspans = dupmem(h->nspans, h->nnspans * sizeof(*h->nspans));
    d->nbuckets = dupmem(h->nbuckets, h->nnbuckets * sizeof(*h->nbuckets));
    d->custom_values = dupmem(h->custom_values, h->ncustom * sizeof(*h->custom_values));
    if ((h->npspans && !d->pspans) || (h->npbuckets && !d->pbuckets) ||
        (h->nnspans && !d->nspans) || (h->nnbuckets && !d->nbuckets) ||
        (h->ncustom && !d->custom_values)) {
        hist_free(d);
        return NULL;
    }
    return d;
}

/* Bucket i (absolute index) count of a span/bucket list; compares non-zero buckets only. */
static bool buckets_equal(const struct re_span *as, size_t nas, const double *ab, size_t nab,
                          const struct re_span *bs, size_t nbs, const double *bb, size_t nbb,
                          bool (*eq)(double, double, const struct ruletest_opts *),
                          const struct ruletest_opts *o) {
    /* expand both into (index, count) lists of non-zero counts and compare */
    int64_t ai[4096], bi[4096];
    double av[4096], bv[4096];
    size_t na = 0, nb = 0;
    for (int side = 0; side < 2; side++) {
        const struct re_span *s = side ? bs : as;
        size_t ns = side ? nbs : nas;
        const double *c = side ? bb : ab;
        size_t nc = side ? nbb : nab;
        int64_t idx = 0;
        size_t k = 0;
        for (size_t i = 0; i < ns; i++) {
            idx += s[i].offset;
            for (uint32_t j = 0; j < s[i].length && k < nc; j++, idx++, k++) {
                if (c[k] == 0) continue;
                if (side) {
                    if (nb >= 4096) return false;
                    bi[nb] = idx;
                    bv[nb++] = c[k];
                } else {
                    if (na >= 4096) return false;
                    ai[na] = idx;
                    av[na++] = c[k];
                }
            }
        }
    }
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++)
        if (ai[i] != bi[i] || !eq(av[i], bv[i], o)) return false;
    return true;
}

static bool float_eq(double exp, double got, const struct ruletest_opts *o) {
    if (exp == got) return true;
    if (o->float_tolerance > 0 && isfinite(exp) && isfinite(got)) {
        double m = fabs(exp) > fabs(got) ? fabs(exp) : fabs(got);
        if (fabs(exp - got) <= o->float_tolerance * m) return true;
    }
    return false;
}

static bool float_eq_fuzzy(double exp, double got, const struct ruletest_opts *o) {
    return float_eq(exp, got, o) || nextafter(exp, -INFINITY) == got ||
           nextafter(exp, INFINITY) == got;
}

static bool hist_equal(const struct re_hist *a, const struct re_hist *b, bool fuzzy,
                       const struct ruletest_opts *o) {
    bool (*eq)(double, double, const struct ruletest_opts *) = fuzzy ? float_eq_fuzzy : float_eq;
    if (a->schema != b->schema || !eq(a->count, b->count, o) || !eq(a->sum, b->sum, o) ||
        !eq(a->zero_count, b->zero_count, o) || a->zero_threshold != b->zero_threshold)
        return false;
    if (a->ncustom != b->ncustom) return false;
    for (size_t i = 0; i < a->ncustom; i++)
        if (a->custom_values[i] != b->custom_values[i]) return false;
    return buckets_equal(a->pspans, a->npspans, a->pbuckets, a->npbuckets, b->pspans, b->npspans,
                         b->pbuckets, b->npbuckets, eq, o) &&
           buckets_equal(a->nspans, a->nnspans, a->nbuckets, a->nnbuckets, b->nspans, b->nnspans,
                         b->nbuckets, b->nnbuckets, eq, o);
}

static void hist_string(struct rbuf *b, const struct re_hist *h) {
    /* a readable summary in the test-expression spirit (used only in failure reports) */
    rbuf_puts(b, "{{");
    if (h->schema) rbuf_printf(b, "schema:%d ", h->schema);
    rbuf_puts(b, "count:");
    rbuf_gofloat(b, h->count, 'g');
    rbuf_puts(b, " sum:");
    rbuf_gofloat(b, h->sum, 'g');
    if (h->zero_count) {
        rbuf_puts(b, " z_bucket:");
        rbuf_gofloat(b, h->zero_count, 'g');
    }
    if (h->npbuckets) {
        rbuf_printf(b, " offset:%d buckets:[", h->npspans ? h->pspans[0].offset : 0);
        for (size_t i = 0; i < h->npbuckets; i++) {
            if (i) rbuf_putc(b, ' ');
            rbuf_gofloat(b, h->pbuckets[i], 'g');
        }
        rbuf_putc(b, ']');
    }
    if (h->nnbuckets) {
        rbuf_printf(b, " n_offset:%d n_buckets:[", h->nnspans ? h->nspans[0].offset : 0);
        for (size_t i = 0; i < h->nnbuckets; i++) {
            if (i) rbuf_putc(b, ' ');
            rbuf_gofloat(b, h->nbuckets[i], 'g');
        }
        rbuf_putc(b, ']');
    }
    rbuf_puts(b, "}}");
}

/* ---- rule evaluation ------------------------------------------------------------------------ */

/* Evaluates expr text at ts (template query() hook and promql_expr_test). */
static int eval_text(struct run *r, const char *expr, int64_t ts, struct promql_result **out,
                     struct perr *err) {
    struct promql_expr *e = promql_parse_compat(expr, r->popts.compat_v2, err);
    if (!e) return -EINVAL;
    int rc = promql_eval_instant(e, &r->src, ts, &r->popts, out, err);
    promql_free(e);
    return rc;
}

/* ---- the test file -------------------------------------------------------------------------- */

struct alert_case {
    int64_t eval_time;
    const char *alertname;
    yaml_node_t *exp; /* exp_alerts sequence */
};

struct expr_case {
    const char *expr;
    int64_t eval_time;
    yaml_node_t *exp;
};

struct fileinfo {
    const char *path;
    struct ruletest_opts o;
    ruletest_read_fn *read_file;
    void *arg;
    struct rulefile **files;
    size_t nfiles;
    struct rt_group *groups;
    size_t ngroups;
    int64_t eval_interval;
    bool fuzzy;
};

static bool run_matches(const struct ruletest_opts *o, const char *name) {
    if (!o->nrun) return true;
    for (size_t i = 0; i < o->nrun; i++) {
        int ec;
        PCRE2_SIZE eo;
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)o->run[i], PCRE2_ZERO_TERMINATED, PCRE2_UTF, &ec, &eo, NULL);
        if (!re) continue;
        pcre2_match_data *md = pcre2_match_data_create_from_pattern(re, NULL);
        int rc = md ? pcre2_match(re, (PCRE2_SPTR)name, strlen(name), 0, 0, md, NULL) : -1;
        pcre2_match_data_free(md);
        pcre2_code_free(re);
        if (rc >= 0) return true;
    }
    return false;
}

struct expand_ctx {
    struct point *pts;
    size_t n, cap;
    size_t series;
    int64_t start, interval;
    bool oom, too_many;
};

static int on_value(void *arg, size_t idx, bool missing, double v, const struct re_hist *h) {
    struct expand_ctx *c = arg;
    if (missing) return 0;
    if (c->n >= RT_MAX_POINTS) {
        c->too_many = true;
        return -E2BIG;
    }
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 256;
        struct point *np = realloc(c->pts, nc * sizeof(*np));
        if (!np) {
            c->oom = true;
            return -ENOMEM;
        }
        c->pts = np;
        c->cap = nc;
    }
    struct re_hist *hc = NULL;
    if (h && !(hc = hist_dup(h))) {
        c->oom = true;
        return -ENOMEM;
    }
    c->pts[c->n++] = (struct point){c->start + (int64_t)idx * c->interval, c->series, v, hc};
    return 0;
}

static int point_cmp(const void *a, const void *b) {
    const struct point *x = a, *y = b;
    if (x->t != y->t) return x->t < y->t ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

struct alert_got {
    const struct re_label *labels;
    size_t nlabels;
    const struct re_label *ann;
    size_t nann;
};

static int got_cmp(const void *a, const void *b) {
    const struct alert_got *x = a, *y = b;
    int c = lcmp(x->labels, x->nlabels, y->labels, y->nlabels);
    return c ? c : lcmp(x->ann, x->nann, y->ann, y->nann);
}

static void alerts_string(struct rbuf *b, const struct alert_got *g, size_t n) {
    /* labelsAndAnnotations.String() indented by 12 as promtool prints it */
    if (!n) {
        rbuf_puts(b, "[]");
        return;
    }
    rbuf_puts(b, "[");
    for (size_t i = 0; i < n; i++) {
        rbuf_printf(b, "%s\n            %zu:\n              Labels:", i ? "," : "", i);
        lstring(b, g[i].labels, g[i].nlabels);
        rbuf_puts(b, "\n              Annotations:");
        lstring(b, g[i].ann, g[i].nann);
    }
    rbuf_puts(b, "\n            ]");
}

/* Reads a string map node into sorted labels (strings borrowed from the document). */
static struct re_label *ymap_labels(struct yctx *y, yaml_node_t *n, size_t *cnt) {
    *cnt = 0;
    if (ynull(n)) return calloc(1, sizeof(struct re_label));
    if (n->type != YAML_MAPPING_NODE) {
        yerr(y, n, "cannot unmarshal into map[string]string");
        return NULL;
    }
    size_t m = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    struct re_label *l = calloc(m + 2, sizeof(*l));
    if (!l) return NULL;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        const char *k = yscalar(y, ynode(y, p->key), "string");
        const char *v = yscalar(y, ynode(y, p->value), "string");
        if (!k || !v) continue;
        /* labels.FromMap keeps empty values (labels.New does not filter them) */
        size_t q;
        for (q = 0; q < *cnt; q++)
            if (strcmp(l[q].name, k) == 0) break;
        l[q].name = k;
        l[q].value = v;
        if (q == *cnt) (*cnt)++;
    }
    lsort(l, *cnt);
    return l;
}

static void check_alerts(struct run *r, struct fileinfo *fi, struct yctx *y, const char *tgname,
                         const struct alert_case *ac) {
    /* got: firing alerts of every alerting rule with this name */
    struct alert_got *got = NULL;
    size_t ngot = 0, capg = 0;
    for (size_t g = 0; g < fi->ngroups; g++)
        for (size_t k = 0; k < rulegroup_nrules(fi->groups[g].rg); k++) {
            const struct alert_rule *ar = rulegroup_alert_rule(fi->groups[g].rg, k);
            if (!ar || strcmp(alert_rule_name(ar), ac->alertname) != 0) continue;
            for (size_t i = 0; i < alert_rule_nalerts(ar); i++) {
                const struct alert *a = alert_rule_alert(ar, i);
                if (a->state != ALERT_FIRING) continue;
                if (ngot == capg) {
                    size_t nc = capg ? capg * 2 : 8;
                    struct alert_got *ng = realloc(got, nc * sizeof(*ng));
                    if (!ng) {
                        free(got);
                        add_err(r, "out of memory");
                        return;
                    }
                    got = ng;
                    capg = nc;
                }
                got[ngot++] =
                    (struct alert_got){a->labels, a->nlabels, a->annotations, a->nannotations};
            }
        }
    /* exp */
    size_t nexp = yseq_len(y, ac->exp, "[]main.alert");
    struct alert_got *exp = calloc(nexp + 1, sizeof(*exp));
    struct re_label **owned = calloc(2 * nexp + 1, sizeof(*owned));
    bool ok = exp && owned;
    for (size_t i = 0; ok && i < nexp; i++) {
        yaml_node_t *e = yseq_at(y, ac->exp, i);
        static const char *const keys[] = {"exp_labels", "exp_annotations", NULL};
        ymap_check(y, e, keys, "main.alert");
        size_t nl, na;
        struct re_label *l = ymap_labels(y, yget(y, e, "exp_labels"), &nl);
        struct re_label *an = ymap_labels(y, yget(y, e, "exp_annotations"), &na);
        owned[2 * i] = l;
        owned[2 * i + 1] = an;
        if (!l || !an) {
            ok = false;
            break;
        }
        /* the runner adds alertname */
        struct re_label *l2 = realloc(l, (nl + 2) * sizeof(*l2));
        if (!l2) {
            ok = false;
            break;
        }
        owned[2 * i] = l = l2;
        size_t q;
        for (q = 0; q < nl; q++)
            if (strcmp(l[q].name, "alertname") == 0) break;
        l[q].name = "alertname";
        l[q].value = ac->alertname;
        if (q == nl) nl++;
        lsort(l, nl);
        exp[i] = (struct alert_got){l, nl, an, na};
    }
    /* got annotations: a private copy, empty values kept as Prometheus keeps them */
    struct re_label **gann = calloc(ngot + 1, sizeof(*gann));
    for (size_t i = 0; ok && gann && i < ngot; i++) {
        struct re_label *c = calloc(got[i].nann + 1, sizeof(*c));
        size_t m = 0;
        if (!c) {
            ok = false;
            break;
        }
        for (size_t j = 0; j < got[i].nann; j++)
            c[m++] = got[i].ann[j];
        gann[i] = c;
        got[i].ann = c;
        got[i].nann = m;
    }
    if (!ok || !gann) {
        add_err(r, "out of memory");
    } else {
        if (ngot > 1) qsort(got, ngot, sizeof(*got), got_cmp);
        if (nexp > 1) qsort(exp, nexp, sizeof(*exp), got_cmp);
        bool eq = ngot == nexp;
        for (size_t i = 0; eq && i < ngot; i++)
            eq = got_cmp(&got[i], &exp[i]) == 0;
        if (!eq) {
            struct rbuf b;
            rbuf_init(&b);
            char d[64];
            template_format_duration(d, sizeof(d), ac->eval_time);
            if (tgname && *tgname) rbuf_printf(&b, "    name: %s,\n", tgname);
            rbuf_printf(&b, "    alertname: %s, time: %s, \n        exp:", ac->alertname, d);
            alerts_string(&b, exp, nexp);
            rbuf_puts(&b, ", \n        got:");
            alerts_string(&b, got, ngot);
            add_err(r, b.p ? b.p : "out of memory");
            rbuf_fini(&b);
        }
    }
    for (size_t i = 0; gann && i < ngot; i++)
        free(gann[i]);
    free(gann);
    for (size_t i = 0; owned && i < 2 * nexp; i++)
        free(owned[i]);
    free(owned);
    free(exp);
    free(got);
}

struct sample_cmp {
    const struct re_label *l;
    size_t n;
    double v;
    const struct re_hist *h;
};

static int sample_cmp_fn(const void *a, const void *b) {
    const struct sample_cmp *x = a, *y = b;
    return lcmp(x->l, x->n, y->l, y->n);
}

static void samples_string(struct rbuf *b, const struct sample_cmp *s, size_t n) {
    if (!n) {
        rbuf_puts(b, "nil");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (i) rbuf_puts(b, ", ");
        lstring(b, s[i].l, s[i].n);
        rbuf_putc(b, ' ');
        if (s[i].h)
            hist_string(b, s[i].h);
        else {
            /* strconv.FormatFloat(v, 'E', -1, 64) */
            size_t at = b->len;
            rbuf_gofloat(b, s[i].v, 'e');
            for (size_t k = at; k < b->len; k++)
                if (b->p[k] == 'e') b->p[k] = 'E';
        }
    }
}

static int hist_capture(void *arg, size_t idx, bool missing, double v, const struct re_hist *h) {
    struct re_hist **out = arg;
    (void)v;
    if (missing || idx != 0 || !h || *out) return -EINVAL;
    *out = hist_dup(h);
    return *out ? 0 : -ENOMEM;
}

static void check_expr(struct run *r, struct fileinfo *fi, struct yctx *y, int64_t start,
                       const struct expr_case *ec) {
    char d[64];
    template_format_duration(d, sizeof(d), ec->eval_time);
    struct rbuf b;
    rbuf_init(&b);
    struct promql_result *res = NULL;
    struct perr e = {0};
    int rc = eval_text(r, ec->expr, start + ec->eval_time, &res, &e);
    if (rc == 0 && res->type != PROMQL_VECTOR && res->type != PROMQL_SCALAR) {
        snprintf(e.msg, sizeof(e.msg), "rule result is not a vector or scalar");
        rc = -EINVAL;
    }
    if (rc < 0) {
        rbuf_puts(&b, "    expr: ");
        rbuf_json_str(&b, ec->expr, false);
        rbuf_printf(&b, ", time: %s, err: %s", d, e.msg);
        add_err(r, b.p ? b.p : "out of memory");
        rbuf_fini(&b);
        promql_result_free(res);
        return;
    }
    size_t ngot = res->type == PROMQL_SCALAR ? 1 : res->nseries;
    struct sample_cmp *got = calloc(ngot + 1, sizeof(*got));
    size_t nexp = yseq_len(y, ec->exp, "[]main.sample");
    struct sample_cmp *exp = calloc(nexp + 1, sizeof(*exp));
    struct re_label **el = calloc(nexp + 1, sizeof(*el));
    size_t *eln = calloc(nexp + 1, sizeof(*eln));
    struct re_hist **eh = calloc(nexp + 1, sizeof(*eh));
    bool ok = got && exp && el && eln && eh;
    size_t k = 0;
    if (ok && res->type == PROMQL_SCALAR)
        got[k++] = (struct sample_cmp){NULL, 0, res->scalar, NULL};
    else if (ok)
        for (size_t i = 0; i < res->nseries; i++)
            if (res->series[i].npoints)
                got[k++] =
                    (struct sample_cmp){res->series[i].labels, res->series[i].nlabels,
                                        res->series[i].points[0].v, res->series[i].points[0].h};
    ngot = k;
    for (size_t i = 0; ok && i < nexp; i++) {
        yaml_node_t *s = yseq_at(y, ec->exp, i);
        static const char *const keys[] = {"labels", "value", "histogram", NULL};
        ymap_check(y, s, keys, "main.sample");
        const char *ls = yscalar(y, yget(y, s, "labels"), "string");
        const char *hs = yscalar(y, yget(y, s, "histogram"), "string");
        double v = 0;
        yfloat(y, yget(y, s, "value"), &v);
        struct perr pe = {0};
        if (!ls || !hs) {
            ok = false;
            break;
        }
        /* parser.ParseMetric: an empty string is the empty label set */
        const char *lp = ls;
        while (*lp == ' ' || *lp == '\t')
            lp++;
        if (!*lp) {
            el[i] = NULL;
            eln[i] = 0;
        } else if (promql_parse_series_desc(ls, &el[i], &eln[i], &pe) < 0) {
            rbuf_puts(&b, "    expr: ");
            rbuf_json_str(&b, ec->expr, false);
            rbuf_printf(&b, ", time: %s, err: labels \"%s\": %s", d, ls, pe.msg);
            add_err(r, b.p ? b.p : "out of memory");
            goto done;
        }
        if (*hs) {
            int hr = promql_expand_values(hs, hist_capture, &eh[i], &pe);
            if (hr < 0 || !eh[i]) {
                rbuf_puts(&b, "    expr: ");
                rbuf_json_str(&b, ec->expr, false);
                rbuf_printf(&b, ", time: %s, err: labels \"%s\": expected histogram", d, ls);
                add_err(r, b.p ? b.p : "out of memory");
                goto done;
            }
        }
        exp[i] = (struct sample_cmp){el[i], eln[i], v, eh[i]};
    }
    if (!ok) {
        add_err(r, "out of memory");
        goto done;
    }
    if (ngot > 1) qsort(got, ngot, sizeof(*got), sample_cmp_fn);
    if (nexp > 1) qsort(exp, nexp, sizeof(*exp), sample_cmp_fn);
    bool eq = ngot == nexp;
    for (size_t i = 0; eq && i < ngot; i++) {
        eq = lcmp(got[i].l, got[i].n, exp[i].l, exp[i].n) == 0;
        if (!eq) break;
        if (exp[i].h || got[i].h)
            eq = exp[i].h && got[i].h && hist_equal(exp[i].h, got[i].h, fi->fuzzy, &fi->o);
        else
            eq = fi->fuzzy ? float_eq_fuzzy(exp[i].v, got[i].v, &fi->o)
                           : float_eq(exp[i].v, got[i].v, &fi->o);
    }
    if (!eq) {
        rbuf_puts(&b, "    expr: ");
        rbuf_json_str(&b, ec->expr, false);
        rbuf_printf(&b, ", time: %s,\n        exp: ", d);
        samples_string(&b, exp, nexp);
        rbuf_puts(&b, "\n        got: ");
        samples_string(&b, got, ngot);
        add_err(r, b.p ? b.p : "out of memory");
    }
done:
    for (size_t i = 0; el && i < nexp; i++) {
        if (el[i]) re_labels_free(el[i], eln[i]);
        if (eh) hist_free(eh[i]);
    }
    free(el);
    free(eln);
    free(eh);
    free(exp);
    free(got);
    rbuf_fini(&b);
    promql_result_free(res);
}

/* Parses start_timestamp: unix seconds (integer or float) or RFC3339. */
static bool parse_start(const char *s, int64_t *ms) {
    char *e;
    double v = strtod(s, &e);
    if (*s && !*e) {
        *ms = (int64_t)(v * 1000);
        return true;
    }
    int Y, M, D, h, m;
    double sec;
    char tz[16] = "";
    if (sscanf(s, "%d-%d-%dT%d:%d:%lf%15s", &Y, &M, &D, &h, &m, &sec, tz) < 6) return false;
    /* days from civil (Howard Hinnant) */
    int y = Y - (M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (unsigned)((153 * (M + (M > 2 ? -3 : 9)) + 2) / 5 + D - 1);
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = (int64_t)era * 146097 + (int64_t)doe - 719468;
    int64_t off = 0;
    if (tz[0] == '+' || tz[0] == '-') {
        int oh = 0, om = 0;
        sscanf(tz + 1, "%d:%d", &oh, &om);
        off = (tz[0] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
    *ms = (days * 86400 + h * 3600 + m * 60 - off) * 1000 + (int64_t)llround(sec * 1000);
    return true;
}

static void free_groups(struct fileinfo *fi) {
    for (size_t g = 0; g < fi->ngroups; g++)
        rulegroup_free(fi->groups[g].rg);
    free(fi->groups);
    fi->groups = NULL;
    fi->ngroups = 0;
}

/* Builds fresh rule state for a test group; groups ordered by group_eval_order (stable). */
static int build_groups(struct fileinfo *fi, struct yctx *y, yaml_node_t *order) {
    size_t total = 0;
    for (size_t f = 0; f < fi->nfiles; f++)
        total += fi->files[f]->ngroups;
    fi->groups = calloc(total + 1, sizeof(*fi->groups));
    if (!fi->groups) return -ENOMEM;
    size_t norder = yseq_len(y, order, "[]string");
    for (size_t f = 0; f < fi->nfiles; f++)
        for (size_t g = 0; g < fi->files[f]->ngroups; g++) {
            const struct rulefile_group *gd = &fi->files[f]->groups[g];
            struct rt_group *rg = &fi->groups[fi->ngroups++];
            rg->def = gd;
            for (size_t i = 0; i < norder; i++) {
                const char *nm = yscalar(y, yseq_at(y, order, i), "string");
                if (nm && strcmp(nm, gd->name) == 0) rg->order = (int)i;
            }
            if (!(rg->rg = rulegroup_new(gd))) return -ENOMEM;
        }
    /* stable insertion sort by order */
    for (size_t i = 1; i < fi->ngroups; i++)
        for (size_t j = i; j > 0 && fi->groups[j - 1].order > fi->groups[j].order; j--) {
            struct rt_group t = fi->groups[j];
            fi->groups[j] = fi->groups[j - 1];
            fi->groups[j - 1] = t;
        }
    return 0;
}

static int sort_alert_case(const void *a, const void *b) {
    const struct alert_case *x = a, *y = b;
    return x->eval_time < y->eval_time ? -1 : x->eval_time > y->eval_time;
}

static int store_append(void *arg, const struct re_label *l, size_t n, int64_t ts, double v,
                        const struct re_hist *h) {
    return re_memstore_add(arg, l, n, ts, v, h);
}

/* Runs one test group; failures are appended to r->errs. Returns 0 or -ENOMEM. */
static int run_group(struct fileinfo *fi, struct yctx *y, yaml_node_t *tg, yaml_node_t *order,
                     struct run *r) {
    static const char *const keys[] = {"interval",
                                       "input_series",
                                       "alert_rule_test",
                                       "promql_expr_test",
                                       "external_labels",
                                       "external_url",
                                       "name",
                                       "start_timestamp",
                                       NULL};
    const char *tgname = yscalar(y, yget(y, tg, "name"), "string");
    if (!tgname) tgname = "";
    int rc = 0;
    struct expand_ctx pts = {0};
    struct input_series *ser = NULL;
    size_t nser = 0;
    struct alert_case *acs = NULL;
    struct expr_case *ecs = NULL;
    size_t nac = 0, nec = 0;
    struct rbuf b;
    rbuf_init(&b);

    ymap_check(y, tg, keys, "main.testGroup");
    int64_t interval = 0, start = 0;
    ydur(y, yget(y, tg, "interval"), &interval);
    if (!interval) interval = fi->eval_interval;
    const char *st = yscalar(y, yget(y, tg, "start_timestamp"), "string");
    if (st && *st && !parse_start(st, &start)) {
        rbuf_printf(&b, "cannot parse \"%s\" to a valid timestamp", st);
        add_err(r, b.p ? b.p : "out of memory");
        goto done;
    }
    r->ext = ymap_labels(y, yget(y, tg, "external_labels"), &r->next);
    r->ext_url = yscalar(y, yget(y, tg, "external_url"), "string");
    if (!r->ext) {
        rc = -ENOMEM;
        goto done;
    }

    /* input series */
    yaml_node_t *is = yget(y, tg, "input_series");
    nser = yseq_len(y, is, "[]main.series");
    ser = calloc(nser + 1, sizeof(*ser));
    if (!ser) {
        rc = -ENOMEM;
        goto done;
    }
    pts.start = start;
    pts.interval = interval;
    for (size_t i = 0; i < nser; i++) {
        yaml_node_t *sn = yseq_at(y, is, i);
        static const char *const skeys[] = {"series", "values", NULL};
        ymap_check(y, sn, skeys, "main.series");
        const char *sd = yscalar(y, yget(y, sn, "series"), "string");
        const char *vals = yscalar(y, yget(y, sn, "values"), "string");
        if (!sd || !vals) continue;
        struct perr pe = {0};
        if (promql_parse_series_desc(sd, &ser[i].labels, &ser[i].n, &pe) < 0) {
            rbuf_printf(&b, "error in %s: %d:%d: parse error: %s", "load", pe.line, pe.col, pe.msg);
            add_err(r, b.p ? b.p : "out of memory");
            goto done;
        }
        pts.series = i;
        if (promql_expand_values(vals, on_value, &pts, &pe) < 0) {
            if (pts.oom) {
                rc = -ENOMEM;
                goto done;
            }
            rbuf_printf(&b, "error in %s: %s: %s", "load", sd,
                        pts.too_many ? "too many input points" : pe.msg);
            add_err(r, b.p ? b.p : "out of memory");
            goto done;
        }
    }
    if (pts.n > 1) qsort(pts.pts, pts.n, sizeof(*pts.pts), point_cmp);

    /* cases */
    yaml_node_t *at = yget(y, tg, "alert_rule_test");
    nac = yseq_len(y, at, "[]main.alertTestCase");
    acs = calloc(nac + 1, sizeof(*acs));
    yaml_node_t *pt = yget(y, tg, "promql_expr_test");
    nec = yseq_len(y, pt, "[]main.promqlTestCase");
    ecs = calloc(nec + 1, sizeof(*ecs));
    if (!acs || !ecs) {
        rc = -ENOMEM;
        goto done;
    }
    int64_t maxd = 0;
    for (size_t i = 0; i < nac; i++) {
        yaml_node_t *c = yseq_at(y, at, i);
        static const char *const ak[] = {"eval_time", "alertname", "exp_alerts", NULL};
        ymap_check(y, c, ak, "main.alertTestCase");
        ydur(y, yget(y, c, "eval_time"), &acs[i].eval_time);
        acs[i].alertname = yscalar(y, yget(y, c, "alertname"), "string");
        acs[i].exp = yget(y, c, "exp_alerts");
        if (!acs[i].alertname || !*acs[i].alertname) {
            char d[64];
            template_format_duration(d, sizeof(d), acs[i].eval_time);
            rbuf_printf(&b,
                        "an item under alert_rule_test misses required attribute alertname at "
                        "eval_time %s",
                        d);
            if (*tgname) rbuf_printf(&b, " (in TestGroup %s)", tgname);
            add_err(r, b.p ? b.p : "out of memory");
            goto done;
        }
        if (acs[i].eval_time > maxd) maxd = acs[i].eval_time;
    }
    for (size_t i = 0; i < nec; i++) {
        yaml_node_t *c = yseq_at(y, pt, i);
        static const char *const ek[] = {"expr", "eval_time", "exp_samples", NULL};
        ymap_check(y, c, ek, "main.promqlTestCase");
        ydur(y, yget(y, c, "eval_time"), &ecs[i].eval_time);
        ecs[i].expr = yscalar(y, yget(y, c, "expr"), "string");
        if (!ecs[i].expr) ecs[i].expr = "";
        ecs[i].exp = yget(y, c, "exp_samples");
        if (ecs[i].eval_time > maxd) maxd = ecs[i].eval_time;
    }
    if (y->nerr) goto done; /* strict decoding errors are reported by the caller */
    if (nac > 1) qsort(acs, nac, sizeof(*acs), sort_alert_case);

    /* fresh state */
    rc = build_groups(fi, y, order);
    if (rc < 0) goto done;
    r->store = re_memstore_new();
    if (!r->store) {
        rc = -ENOMEM;
        goto done;
    }
    re_memstore_source(r->store, &r->src);

    int64_t ei = fi->eval_interval;
    if (maxd / ei > RT_MAX_STEPS) {
        add_err(r, "too many evaluation steps");
        goto done;
    }
    size_t next_pt = 0, next_ac = 0;
    for (int64_t ts = start; ts <= start + maxd; ts += ei) {
        for (; next_pt < pts.n && pts.pts[next_pt].t <= ts; next_pt++) {
            const struct point *p = &pts.pts[next_pt];
            rc = re_memstore_add(r->store, ser[p->series].labels, ser[p->series].n, p->t, p->v,
                                 p->h);
            if (rc < 0) goto done;
        }
        int evalerrs = 0;
        struct rulegroup_env env = {.src = &r->src,
                                    .popts = &r->popts,
                                    .append = store_append,
                                    .append_arg = r->store,
                                    .ext_labels = r->ext,
                                    .next_labels = r->next,
                                    .external_url = r->ext_url};
        for (size_t g = 0; g < fi->ngroups; g++) {
            struct rulegroup *rg = fi->groups[g].rg;
            rc = rulegroup_eval(rg, ts, &env);
            if (rc < 0) goto done;
            for (size_t k = 0; rc > 0 && k < rulegroup_nrules(rg); k++) {
                if (rulegroup_rule_health(rg, k) != ALERT_HEALTH_ERR) continue;
                rbuf_reset(&b);
                rbuf_printf(&b, "    rule: %s, time: ", rulegroup_def(rg)->rules[k].name);
                rbuf_godur(&b, ts * 1000000);
                rbuf_printf(&b, ", err: %s", rulegroup_rule_error(rg, k));
                add_err(r, b.p ? b.p : "out of memory");
                evalerrs++;
            }
            rc = 0;
        }
        if (evalerrs) goto done;
        while (next_ac < nac && ts - start <= acs[next_ac].eval_time &&
               acs[next_ac].eval_time < ts + ei - start) {
            check_alerts(r, fi, y, tgname, &acs[next_ac]);
            next_ac++;
        }
    }
    for (size_t i = 0; i < nec; i++)
        check_expr(r, fi, y, start, &ecs[i]);
done:
    rbuf_fini(&b);
    free_groups(fi);
    re_memstore_free(r->store);
    r->store = NULL;
    for (size_t i = 0; i < pts.n; i++)
        hist_free(pts.pts[i].h);
    free(pts.pts);
    for (size_t i = 0; ser && i < nser; i++)
        if (ser[i].labels) re_labels_free(ser[i].labels, ser[i].n);
    free(ser);
    free(acs);
    free(ecs);
    free(r->ext);
    r->ext = NULL;
    return rc;
}

static char *dirname_join(const char *file, const char *rel) {
    struct rbuf b;
    rbuf_init(&b);
    if (rel[0] == '/') {
        rbuf_puts(&b, rel);
        return rbuf_take(&b);
    }
    const char *sl = strrchr(file, '/');
    if (sl) rbuf_put(&b, file, (size_t)(sl - file) + 1);
    rbuf_puts(&b, rel);
    return rbuf_take(&b);
}

int ruletest_run(const char *test_file, const struct ruletest_opts *o, ruletest_read_fn *read_file,
                 void *arg, char **report) {
    static const struct ruletest_opts defo = {0};
    struct fileinfo fi = {
        .path = test_file, .o = o ? *o : defo, .read_file = read_file, .arg = arg};
    struct rbuf out, errs;
    rbuf_init(&out);
    rbuf_init(&errs);
    struct run r = {.o = &fi.o, .errs = &errs};
    promql_opts_default(&r.popts);
    r.popts.compat_v2 = fi.o.compat_v2;
    char *buf = NULL;
    size_t len = 0;
    int rc = 0;
    yaml_parser_t parser;
    yaml_document_t doc;
    bool have_parser = false, have_doc = false;
    char **paths = NULL;
    size_t npaths = 0;
    *report = NULL;

    rbuf_printf(&out, "Unit Testing:  %s\n", test_file);
    int rr = read_file(arg, test_file, &buf, &len);
    if (rr < 0) {
        rbuf_printf(&errs, "open %s: %s", test_file, strerror(-rr));
        r.nerrs++;
        goto report;
    }
    if (!yaml_parser_initialize(&parser)) {
        rc = -ENOMEM;
        goto fail;
    }
    have_parser = true;
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rbuf_printf(&errs, "yaml: line %d: %s", (int)parser.problem_mark.line + 1,
                    parser.problem ? parser.problem : "syntax error");
        r.nerrs++;
        goto report;
    }
    have_doc = true;
    struct yctx y = {.doc = &doc, .errs = &errs};
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    static const char *const topkeys[] = {"rule_files", "evaluation_interval", "group_eval_order",
                                          "tests",      "fuzzy_compare",       NULL};
    ymap_check(&y, root, topkeys, "main.unitTestFile");
    ydur(&y, yget(&y, root, "evaluation_interval"), &fi.eval_interval);
    if (!fi.eval_interval) fi.eval_interval = 60000;
    ybool(&y, yget(&y, root, "fuzzy_compare"), &fi.fuzzy);
    yaml_node_t *order = yget(&y, root, "group_eval_order");
    size_t norder = yseq_len(&y, order, "[]string");
    for (size_t i = 0; i < norder; i++)
        for (size_t j = 0; j < i; j++) {
            const char *a = yscalar(&y, yseq_at(&y, order, i), "string");
            const char *bb = yscalar(&y, yseq_at(&y, order, j), "string");
            if (a && bb && strcmp(a, bb) == 0 && !y.nerr) {
                rbuf_printf(&errs, "group name repeated in evaluation order: %s", a);
                r.nerrs++;
                goto report;
            }
        }
    yaml_node_t *tests = yget(&y, root, "tests");
    size_t ntests = yseq_len(&y, tests, "[]main.testGroup");
    if (y.nerr) {
        r.nerrs++;
        goto report;
    }

    /* rule files, relative to the test file, globbed */
    yaml_node_t *rf = yget(&y, root, "rule_files");
    size_t nrf = yseq_len(&y, rf, "[]string");
    struct rbuf loaderr;
    rbuf_init(&loaderr);
    int nloaderr = 0;
    for (size_t i = 0; i < nrf; i++) {
        const char *pat = yscalar(&y, yseq_at(&y, rf, i), "string");
        if (!pat || !*pat) continue;
        char *full = dirname_join(test_file, pat);
        if (!full) {
            rc = -ENOMEM;
            rbuf_fini(&loaderr);
            goto fail;
        }
        char **m = NULL;
        size_t nm = 0;
        if (fi.o.glob) {
            if (fi.o.glob(arg, full, &m, &nm) < 0) nm = 0;
        } else {
            m = calloc(1, sizeof(*m));
            if (m && (m[0] = strdup(full))) nm = 1;
        }
        free(full);
        for (size_t k = 0; k < nm; k++) {
            char **np = realloc(paths, (npaths + 1) * sizeof(*np));
            if (!np) {
                free(m[k]);
                continue;
            }
            paths = np;
            paths[npaths++] = m[k];
        }
        free(m);
    }
    fi.files = calloc(npaths + 1, sizeof(*fi.files));
    if (!fi.files) {
        rc = -ENOMEM;
        rbuf_fini(&loaderr);
        goto fail;
    }
    for (size_t i = 0; i < npaths; i++) {
        char *rb = NULL;
        size_t rl = 0;
        int e = read_file(arg, paths[i], &rb, &rl);
        if (e < 0) {
            if (nloaderr++) rbuf_puts(&loaderr, "\n\n");
            rbuf_printf(&loaderr, "%s: open %s: %s", paths[i], paths[i], strerror(-e));
            continue;
        }
        struct rulefile_opts ro = {.ignore_unknown_fields = fi.o.ignore_unknown_fields,
                                   .legacy_names = fi.o.compat_v2,
                                   .compat_v2 = fi.o.compat_v2};
        bool failed = false;
        char *chk = rulefile_check(paths[i], rb, rl, &ro, &failed);
        if (failed) {
            /* promtool returns the loader's errors, one per line, for each test group */
            const char *body = chk ? strstr(chk, "  FAILED:\n") : NULL;
            if (nloaderr++) rbuf_puts(&loaderr, "\n\n");
            if (body) {
                body += strlen("  FAILED:\n");
                size_t bl = strlen(body);
                while (bl && body[bl - 1] == '\n')
                    bl--;
                rbuf_put(&loaderr, body, bl);
            } else
                rbuf_puts(&loaderr, "out of memory");
        } else {
            struct perr pe = {0};
            fi.files[fi.nfiles] = rulefile_load(paths[i], rb, rl, &ro, &pe);
            if (fi.files[fi.nfiles]) fi.nfiles++;
        }
        free(chk);
        free(rb);
    }

    for (size_t i = 0; i < ntests; i++) {
        yaml_node_t *tg = yseq_at(&y, tests, i);
        const char *tgname = yscalar(&y, yget(&y, tg, "name"), "string");
        if (!run_matches(&fi.o, tgname ? tgname : "")) continue;
        if (nloaderr) {
            if (r.nerrs++) rbuf_puts(&errs, "\n\n");
            rbuf_put(&errs, loaderr.p ? loaderr.p : "", loaderr.len);
            continue;
        }
        rc = run_group(&fi, &y, tg, order, &r);
        if (rc < 0) {
            rbuf_fini(&loaderr);
            goto fail;
        }
        if (y.nerr) {
            r.nerrs++;
            break;
        }
    }
    rbuf_fini(&loaderr);

report:
    if (r.nerrs) {
        rbuf_puts(&out, "  FAILED:\n");
        if (errs.p) rbuf_put(&out, errs.p, errs.len);
        rbuf_puts(&out, "\n\n");
    } else
        rbuf_puts(&out, "  SUCCESS\n");
    rbuf_putc(&out, '\n');
    rc = r.nerrs ? 1 : 0;
    if (out.oom || errs.oom)
        rc = -ENOMEM;
    else
        *report = rbuf_take(&out);
fail:
    for (size_t i = 0; i < fi.nfiles; i++)
        rulefile_free(fi.files[i]);
    free(fi.files);
    for (size_t i = 0; i < npaths; i++)
        free(paths[i]);
    free(paths);
    if (have_doc) yaml_document_delete(&doc);
    if (have_parser) yaml_parser_delete(&parser);
    free(buf);
    rbuf_fini(&out);
    rbuf_fini(&errs);
    return rc;
}
