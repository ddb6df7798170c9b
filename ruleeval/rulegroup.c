/* SPDX-License-Identifier: Apache-2.0 */
/* Rule-group evaluation: recording and alerting rules in order, outputs and stale markers. */
#include "ruleeval.h"
#include "rbuf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RG_MAX_LABELS 256 /* labels per output series when re-reading a stored key */

/* A set of output series identities (labels serialised as name\xffvalue\xff...). */
struct keyset {
    char **k;
    size_t n, cap;
};

struct rg_rule {
    const struct rulefile_rule *def;
    struct alert_rule *alert;
    struct keyset prev; /* series written at the last successful evaluation */
    enum alert_health health;
    char err[256];
};

struct rulegroup {
    const struct rulefile_group *def;
    struct rg_rule *rules;
    size_t n;
};

static void keyset_free(struct keyset *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->k[i]);
    free(s->k);
    memset(s, 0, sizeof(*s));
}

/* Takes k. */
static int keyset_add(struct keyset *s, char *k) {
    if (!k) return -ENOMEM;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        char **nk = realloc(s->k, nc * sizeof(*nk));
        if (!nk) {
            free(k);
            return -ENOMEM;
        }
        s->k = nk;
        s->cap = nc;
    }
    s->k[s->n++] = k;
    return 0;
}

static bool keyset_has(const struct keyset *s, const char *k) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->k[i], k) == 0) return true;
    return false;
}

static char *lkey(const struct re_label *l, size_t n) {
    struct rbuf b;
    rbuf_init(&b);
    for (size_t i = 0; i < n; i++) {
        rbuf_puts(&b, l[i].name);
        rbuf_putc(&b, '\xff');
        rbuf_puts(&b, l[i].value);
        rbuf_putc(&b, '\xff');
    }
    return rbuf_take(&b);
}

/* Splits a key (modified in place) back into labels pointing into it. */
static size_t lkey_split(char *key, struct re_label *l, size_t cap) {
    size_t n = 0;
    char *p = key;
    while (*p && n < cap) {
        char *s = strchr(p, '\xff');
        char *e = s ? strchr(s + 1, '\xff') : NULL;
        if (!e) break;
        *s = *e = '\0';
        l[n].name = p;
        l[n].value = s + 1;
        n++;
        p = e + 1;
    }
    return n;
}

static void lsort(struct re_label *l, size_t n) {
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(l[j - 1].name, l[j].name) > 0; j--) {
            struct re_label t = l[j];
            l[j] = l[j - 1];
            l[j - 1] = t;
        }
}

struct rulegroup *rulegroup_new(const struct rulefile_group *def) {
    struct rulegroup *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    g->def = def;
    g->rules = calloc(def->nrules + 1, sizeof(*g->rules));
    if (!g->rules) goto fail;
    for (size_t i = 0; i < def->nrules; i++) {
        struct rg_rule *r = &g->rules[g->n++];
        r->def = &def->rules[i];
        if (r->def->kind == RULEFILE_ALERT && !(r->alert = alert_rule_new(r->def, def))) goto fail;
    }
    return g;
fail:
    rulegroup_free(g);
    return NULL;
}

void rulegroup_free(struct rulegroup *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n; i++) {
        alert_rule_free(g->rules[i].alert);
        keyset_free(&g->rules[i].prev);
    }
    free(g->rules);
    free(g);
}

const struct rulefile_group *rulegroup_def(const struct rulegroup *g) {
    return g->def;
}

size_t rulegroup_nrules(const struct rulegroup *g) {
    return g->n;
}

struct alert_rule *rulegroup_alert_rule(const struct rulegroup *g, size_t i) {
    return i < g->n ? g->rules[i].alert : NULL;
}

enum alert_health rulegroup_rule_health(const struct rulegroup *g, size_t i) {
    if (i >= g->n) return ALERT_HEALTH_UNKNOWN;
    return g->rules[i].alert ? alert_rule_health(g->rules[i].alert) : g->rules[i].health;
}

const char *rulegroup_rule_error(const struct rulegroup *g, size_t i) {
    if (i >= g->n) return "";
    return g->rules[i].alert ? alert_rule_last_error(g->rules[i].alert) : g->rules[i].err;
}

/* template query(): an instant query on the group's source at the evaluation time */
static int template_query(void *arg, const char *expr, int64_t ts, template_emit_fn *emit,
                          void *emit_arg, char *errbuf, size_t errlen) {
    const struct rulegroup_env *env = arg;
    struct promql_opts dflt;
    const struct promql_opts *po = env->popts;
    if (!po) {
        promql_opts_default(&dflt);
        po = &dflt;
    }
    struct perr e = {0};
    struct promql_expr *pe = promql_parse_compat(expr, po->compat_v2, &e);
    if (!pe) {
        /* ParseErrors.Error(): "line:col: parse error: ..." */
        if (e.line)
            snprintf(errbuf, errlen, "%d:%d: %s", e.line, e.col, e.msg);
        else
            snprintf(errbuf, errlen, "%s", e.msg);
        return -EINVAL;
    }
    struct promql_result *res = NULL;
    int rc = promql_eval_instant(pe, env->src, ts, po, &res, &e);
    promql_free(pe);
    if (rc < 0) {
        snprintf(errbuf, errlen, "%s", e.msg);
        return rc;
    }
    if (res->type == PROMQL_SCALAR)
        rc = emit(emit_arg, NULL, 0, res->scalar);
    else if (res->type == PROMQL_VECTOR) {
        for (size_t i = 0; i < res->nseries && rc == 0; i++)
            if (res->series[i].npoints)
                rc = emit(emit_arg, res->series[i].labels, res->series[i].nlabels,
                          res->series[i].points[0].h ? 0.0 : res->series[i].points[0].v);
    } else {
        snprintf(errbuf, errlen, "rule result is not a vector or scalar");
        rc = -EINVAL;
    }
    promql_result_free(res);
    return rc;
}

struct out {
    const struct rulegroup_env *env;
    int64_t ts;
    struct keyset *cur;
};

static int write_series(struct out *o, const struct re_label *l, size_t n, double v,
                        const struct re_hist *h) {
    int rc = keyset_add(o->cur, lkey(l, n));
    if (rc < 0) return rc;
    return o->env->append(o->env->append_arg, l, n, o->ts, v, h);
}

static int on_alert_series(void *arg, const struct re_label *l, size_t n, double v) {
    return write_series(arg, l, n, v, NULL);
}

/* Stale markers for series in r->prev but not in cur; cur becomes prev. */
static int staleness(struct rg_rule *r, struct keyset *cur, int64_t ts,
                     const struct rulegroup_env *env) {
    for (size_t i = 0; i < r->prev.n; i++) {
        if (cur && keyset_has(cur, r->prev.k[i])) continue;
        char *k = strdup(r->prev.k[i]);
        if (!k) return -ENOMEM;
        struct re_label l[RG_MAX_LABELS];
        size_t n = lkey_split(k, l, RG_MAX_LABELS);
        int rc = env->append(env->append_arg, l, n, ts, re_stale_nan(), NULL);
        free(k);
        if (rc < 0) return rc;
    }
    keyset_free(&r->prev);
    if (cur) {
        r->prev = *cur;
        memset(cur, 0, sizeof(*cur));
    }
    return 0;
}

static void set_err(struct rg_rule *r, const char *msg) {
    r->health = ALERT_HEALTH_ERR;
    snprintf(r->err, sizeof(r->err), "%s", msg);
}

/* A recording rule's output label sets: element labels minus __name__, group labels, rule
 * labels (empty values delete, as labels.Builder), then __name__ = record. */
static int record_labels(const struct rulegroup *g, const struct rg_rule *r,
                         const struct re_label *sl, size_t sn, struct re_label **out, size_t *m) {
    size_t need = sn + r->def->nlabels + g->def->nlabels + 1;
    struct re_label *o = calloc(need, sizeof(*o));
    if (!o) return -ENOMEM;
    size_t k = 0;
    for (size_t j = 0; j < sn; j++)
        if (strcmp(sl[j].name, "__name__") != 0) o[k++] = sl[j];
    const struct rulefile_kv *sets[2] = {g->def->labels, r->def->labels};
    size_t nsets[2] = {g->def->nlabels, r->def->nlabels};
    for (int s = 0; s < 3; s++) {
        size_t cnt = s < 2 ? nsets[s] : 1;
        for (size_t j = 0; j < cnt; j++) {
            const char *nm = s < 2 ? sets[s][j].name : "__name__";
            const char *vl = s < 2 ? sets[s][j].value : r->def->name;
            size_t q;
            for (q = 0; q < k; q++)
                if (strcmp(o[q].name, nm) == 0) break;
            if (!*vl) {
                if (q < k) o[q] = o[--k];
                continue;
            }
            if (q == k) k++;
            o[q].name = nm;
            o[q].value = vl;
        }
    }
    lsort(o, k);
    *out = o;
    *m = k;
    return 0;
}

/* Evaluates rule r at ts. Returns 0, -EINVAL (rule error recorded) or -ENOMEM/-errno. */
static int eval_rule(struct rulegroup *g, struct rg_rule *r, int64_t ts,
                     const struct rulegroup_env *env) {
    struct promql_opts dflt;
    const struct promql_opts *po = env->popts;
    if (!po) {
        promql_opts_default(&dflt);
        po = &dflt;
    }
    const struct rulefile_rule *d = r->def;
    struct promql_result *res = NULL;
    struct perr e = {0};
    if (!d->ast) {
        set_err(r, "rule has no parsed expression");
        return -EINVAL;
    }
    int rc = promql_eval_instant(d->ast, env->src, ts - g->def->query_offset_ms, po, &res, &e);
    if (rc < 0) {
        if (rc == -ENOMEM) return rc;
        if (r->alert) alert_rule_set_error(r->alert, ts, e.msg);
        set_err(r, e.msg);
        return -EINVAL;
    }
    if (res->type != PROMQL_VECTOR && res->type != PROMQL_SCALAR) {
        promql_result_free(res);
        if (r->alert) alert_rule_set_error(r->alert, ts, "rule result is not a vector or scalar");
        set_err(r, "rule result is not a vector or scalar");
        return -EINVAL;
    }
    /* the result as (labels, value, histogram) elements; a scalar is one unlabelled element */
    size_t n = res->type == PROMQL_SCALAR ? 1 : res->nseries;
    struct alert_sample *as = calloc(n + 1, sizeof(*as));
    const struct re_hist **hs = calloc(n + 1, sizeof(*hs));
    struct keyset cur = {0};
    struct out o = {.env = env, .ts = ts, .cur = &cur};
    size_t k = 0;
    rc = 0;
    if (!as || !hs) {
        rc = -ENOMEM;
        goto done;
    }
    if (res->type == PROMQL_SCALAR)
        as[k++] = (struct alert_sample){NULL, 0, res->scalar};
    else
        for (size_t i = 0; i < res->nseries; i++)
            if (res->series[i].npoints) {
                const struct promql_point *pt = &res->series[i].points[0];
                hs[k] = pt->h;
                /* a histogram sample's float value is 0 in Prometheus 2.42 */
                as[k++] = (struct alert_sample){res->series[i].labels, res->series[i].nlabels,
                                                pt->h ? 0.0 : pt->v};
            }
    if (r->alert) {
        struct alert_env aenv = {.ext_labels = env->ext_labels,
                                 .next_labels = env->next_labels,
                                 .external_url = env->external_url,
                                 .query = template_query,
                                 .query_arg = (void *)env};
        rc = alert_rule_eval(r->alert, ts, as, k, g->def->limit, &aenv, &e);
        if (rc == 0) rc = alert_rule_series(r->alert, on_alert_series, &o);
    } else {
        /* validate the whole output first: a failing rule writes nothing */
        struct re_label **ls = calloc(k + 1, sizeof(*ls));
        size_t *lns = calloc(k + 1, sizeof(*lns));
        char **keys = calloc(k + 1, sizeof(*keys));
        if (!ls || !lns || !keys) rc = -ENOMEM;
        for (size_t i = 0; i < k && rc == 0; i++) {
            rc = record_labels(g, r, as[i].labels, as[i].nlabels, &ls[i], &lns[i]);
            if (rc == 0 && !(keys[i] = lkey(ls[i], lns[i]))) rc = -ENOMEM;
            for (size_t j = 0; rc == 0 && j < i; j++)
                if (strcmp(keys[j], keys[i]) == 0) {
                    set_err(r, "vector contains metrics with the same labelset after applying "
                               "rule labels");
                    rc = -EINVAL;
                }
        }
        if (rc == 0 && g->def->limit > 0 && (int64_t)k > g->def->limit) {
            char m[96];
            snprintf(m, sizeof(m), "exceeded limit of %lld with %zu series",
                     (long long)g->def->limit, k);
            set_err(r, m);
            rc = -EINVAL;
        }
        for (size_t i = 0; i < k && rc == 0; i++)
            rc = write_series(&o, ls[i], lns[i], as[i].value, hs[i]);
        for (size_t i = 0; i < k; i++) {
            if (ls) free(ls[i]);
            if (keys) free(keys[i]);
        }
        free(ls);
        free(lns);
        free(keys);
        if (rc == 0) {
            r->health = ALERT_HEALTH_OK;
            r->err[0] = '\0';
        }
    }
    if (rc == 0) rc = staleness(r, &cur, ts, env);
done:
    keyset_free(&cur);
    free(as);
    free(hs);
    promql_result_free(res);
    return rc;
}

int rulegroup_eval(struct rulegroup *g, int64_t ts, const struct rulegroup_env *env) {
    int failed = 0;
    for (size_t i = 0; i < g->n; i++) {
        int rc = eval_rule(g, &g->rules[i], ts, env);
        if (rc == -EINVAL)
            failed++;
        else if (rc < 0)
            return rc;
    }
    return failed;
}

int rulegroup_stale_all(struct rulegroup *g, int64_t ts, const struct rulegroup_env *env) {
    for (size_t i = 0; i < g->n; i++) {
        int rc = staleness(&g->rules[i], NULL, ts, env);
        if (rc < 0) return rc;
    }
    return 0;
}

static int keyset_copy(struct keyset *dst, const struct keyset *src) {
    keyset_free(dst);
    for (size_t i = 0; i < src->n; i++) {
        int rc = keyset_add(dst, strdup(src->k[i]));
        if (rc < 0) return rc;
    }
    return 0;
}

int rulegroup_copy_state(struct rulegroup *g, const struct rulegroup *old) {
    bool *used = calloc(old->n + 1, sizeof(*used));
    if (!used) return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < g->n && rc == 0; i++) {
        struct rg_rule *r = &g->rules[i];
        for (size_t j = 0; j < old->n; j++) {
            const struct rg_rule *o = &old->rules[j];
            if (used[j] || o->def->kind != r->def->kind || strcmp(o->def->name, r->def->name) ||
                strcmp(o->def->expr, r->def->expr))
                continue;
            if (r->alert && !alert_rule_same(r->alert, o->alert)) continue;
            used[j] = true;
            rc = keyset_copy(&r->prev, &o->prev);
            if (rc == 0 && r->alert) rc = alert_rule_copy_state(r->alert, o->alert);
            r->health = o->health;
            memcpy(r->err, o->err, sizeof(r->err));
            break;
        }
    }
    free(used);
    return rc;
}
