/* SPDX-License-Identifier: Apache-2.0 */
/* Alerting-rule state machine with Prometheus' rules/alerting.go semantics. */
#include "ruleeval.h"
#include "rbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* rules/alerting.go resolvedRetention: resolved alerts are re-sent for 15 minutes. */
#define ALERT_RESOLVED_RETENTION_MS (15 * 60 * 1000)

struct alert_rule {
    char *name, *expr, *tname;
    int64_t for_ms, kff_ms;
    struct rulefile_kv *labels; /* group labels overridden by rule labels */
    size_t nlabels;
    struct rulefile_kv *annotations;
    size_t nannotations;
    /* templates parsed once (NULL where parsing failed: expanded per call for the error) */
    struct template **ltpl, **atpl;
    struct alert *alerts;
    size_t nalerts, cap;
    enum alert_health health;
    char last_error[256];
    int64_t last_eval;
};

static void labels_free(struct re_label *l, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free((char *)l[i].name);
        free((char *)l[i].value);
    }
    free(l);
}

static void alert_fini(struct alert *a) {
    labels_free(a->labels, a->nlabels);
    labels_free(a->annotations, a->nannotations);
    memset(a, 0, sizeof(*a));
}

static void kvs_free(struct rulefile_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static int kv_set(struct rulefile_kv **kv, size_t *n, const char *name, const char *value) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*kv)[i].name, name) == 0) {
            char *v = strdup(value);
            if (!v) return -ENOMEM;
            free((*kv)[i].value);
            (*kv)[i].value = v;
            return 0;
        }
    struct rulefile_kv *nk = realloc(*kv, (*n + 1) * sizeof(**kv));
    if (!nk) return -ENOMEM;
    *kv = nk;
    nk[*n].name = strdup(name);
    nk[*n].value = strdup(value);
    if (!nk[*n].name || !nk[*n].value) {
        free(nk[*n].name);
        free(nk[*n].value);
        return -ENOMEM;
    }
    (*n)++;
    return 0;
}

void alert_rule_free(struct alert_rule *r) {
    if (!r) return;
    free(r->name);
    free(r->expr);
    free(r->tname);
    for (size_t i = 0; r->ltpl && i < r->nlabels; i++)
        template_free(r->ltpl[i]);
    for (size_t i = 0; r->atpl && i < r->nannotations; i++)
        template_free(r->atpl[i]);
    free(r->ltpl);
    free(r->atpl);
    kvs_free(r->labels, r->nlabels);
    kvs_free(r->annotations, r->nannotations);
    for (size_t i = 0; i < r->nalerts; i++)
        alert_fini(&r->alerts[i]);
    free(r->alerts);
    free(r);
}

struct alert_rule *alert_rule_new(const struct rulefile_rule *rr, const struct rulefile_group *g) {
    if (!rr || rr->kind != RULEFILE_ALERT) return NULL;
    struct alert_rule *r = calloc(1, sizeof(*r));
    if (!r) return NULL;
    r->name = strdup(rr->name);
    /* Prometheus shows and links the parsed expression's canonical form (r.vector.String()) */
    r->expr = rr->ast ? promql_expr_string(rr->ast) : strdup(rr->expr);
    size_t tl = strlen(rr->name) + 9;
    r->tname = malloc(tl);
    if (!r->name || !r->expr || !r->tname) goto fail;
    snprintf(r->tname, tl, "__alert_%s", rr->name);
    r->for_ms = rr->for_ms;
    r->kff_ms = rr->keep_firing_for_ms;
    for (size_t i = 0; g && i < g->nlabels; i++)
        if (kv_set(&r->labels, &r->nlabels, g->labels[i].name, g->labels[i].value) < 0) goto fail;
    for (size_t i = 0; i < rr->nlabels; i++)
        if (kv_set(&r->labels, &r->nlabels, rr->labels[i].name, rr->labels[i].value) < 0) goto fail;
    for (size_t i = 0; i < rr->nannotations; i++)
        if (kv_set(&r->annotations, &r->nannotations, rr->annotations[i].name,
                   rr->annotations[i].value) < 0)
            goto fail;
    r->ltpl = calloc(r->nlabels + 1, sizeof(*r->ltpl));
    r->atpl = calloc(r->nannotations + 1, sizeof(*r->atpl));
    if (!r->ltpl || !r->atpl) goto fail;
    for (size_t i = 0; i < r->nlabels; i++) {
        struct perr e = {0};
        r->ltpl[i] =
            template_parse(r->tname, r->labels[i].value, strlen(r->labels[i].value), true, &e);
    }
    for (size_t i = 0; i < r->nannotations; i++) {
        struct perr e = {0};
        r->atpl[i] = template_parse(r->tname, r->annotations[i].value,
                                    strlen(r->annotations[i].value), true, &e);
    }
    return r;
fail:
    alert_rule_free(r);
    return NULL;
}

/* A growable sorted label set under construction (labels.Builder). */
struct lset {
    struct re_label *l;
    size_t n, cap;
    bool oom;
};

static void lset_fini(struct lset *s) {
    labels_free(s->l, s->n);
    memset(s, 0, sizeof(*s));
}

/* Sets name=value (copies both). An empty value deletes, as labels.Builder.Set does, unless
 * keep_empty (annotations are a plain map). */
static void lset_put(struct lset *s, const char *name, const char *value, bool keep_empty) {
    if (s->oom) return;
    size_t i = 0;
    while (i < s->n && strcmp(s->l[i].name, name) < 0)
        i++;
    bool exists = i < s->n && strcmp(s->l[i].name, name) == 0;
    if (!*value && !keep_empty) {
        if (exists) {
            free((char *)s->l[i].name);
            free((char *)s->l[i].value);
            memmove(&s->l[i], &s->l[i + 1], (s->n - i - 1) * sizeof(*s->l));
            s->n--;
        }
        return;
    }
    char *v = strdup(value);
    if (!v) {
        s->oom = true;
        return;
    }
    if (exists) {
        free((char *)s->l[i].value);
        s->l[i].value = v;
        return;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(v);
        s->oom = true;
        return;
    }
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 8;
        struct re_label *nl = realloc(s->l, nc * sizeof(*nl));
        if (!nl) {
            free(nm);
            free(v);
            s->oom = true;
            return;
        }
        s->l = nl;
        s->cap = nc;
    }
    memmove(&s->l[i + 1], &s->l[i], (s->n - i) * sizeof(*s->l));
    s->l[i].name = nm;
    s->l[i].value = v;
    s->n++;
}

static void lset_set(struct lset *s, const char *name, const char *value) {
    lset_put(s, name, value, false);
}

static int labels_cmp(const struct re_label *a, size_t na, const struct re_label *b, size_t nb) {
    if (na != nb) return na < nb ? -1 : 1;
    for (size_t i = 0; i < na; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c) return c;
        c = strcmp(a[i].value, b[i].value);
        if (c) return c;
    }
    return 0;
}

struct pending_alert {
    struct lset labels, annots;
    double value;
};

static void pending_fini(struct pending_alert *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lset_fini(&p[i].labels);
        lset_fini(&p[i].annots);
    }
    free(p);
}

/* Expands label/annotation i with its cached template (Prometheus re-parses each time; the
 * result is the same). */
static char *expand(const struct alert_rule *r, const struct template *t, const char *text,
                    const struct template_data *d) {
    return t ? template_expand_text(t, d) : template_expand_alert(r->tname, text, d);
}

static void set_error(struct alert_rule *r, const char *msg) {
    r->health = ALERT_HEALTH_ERR;
    snprintf(r->last_error, sizeof(r->last_error), "%s", msg);
}

void alert_rule_set_error(struct alert_rule *r, int64_t ts_ms, const char *msg) {
    r->last_eval = ts_ms;
    set_error(r, msg);
}

int alert_rule_eval(struct alert_rule *r, int64_t ts, const struct alert_sample *res, size_t n,
                    int64_t limit, const struct alert_env *env, struct perr *err) {
    struct pending_alert *pa = n ? calloc(n, sizeof(*pa)) : NULL;
    if (n && !pa) return -ENOMEM;
    r->last_eval = ts;
    /* 1. build the alert for every result element */
    for (size_t i = 0; i < n; i++) {
        struct template_data d = {.labels = res[i].labels,
                                  .nlabels = res[i].nlabels,
                                  .ext_labels = env ? env->ext_labels : NULL,
                                  .next_labels = env ? env->next_labels : 0,
                                  .external_url = env ? env->external_url : NULL,
                                  .value = res[i].value,
                                  .ts_ms = ts,
                                  .query = env ? env->query : NULL,
                                  .query_arg = env ? env->query_arg : NULL};
        struct lset *ls = &pa[i].labels;
        for (size_t k = 0; k < res[i].nlabels; k++)
            if (strcmp(res[i].labels[k].name, "__name__") != 0)
                lset_set(ls, res[i].labels[k].name, res[i].labels[k].value);
        for (size_t k = 0; k < r->nlabels; k++) {
            char *v = expand(r, r->ltpl[k], r->labels[k].value, &d);
            if (!v) {
                ls->oom = true;
                break;
            }
            lset_set(ls, r->labels[k].name, v);
            free(v);
        }
        lset_set(ls, "alertname", r->name);
        for (size_t k = 0; k < r->nannotations; k++) {
            char *v = expand(r, r->atpl[k], r->annotations[k].value, &d);
            if (!v) {
                pa[i].annots.oom = true;
                break;
            }
            lset_put(&pa[i].annots, r->annotations[k].name, v, true);
            free(v);
        }
        if (ls->oom || pa[i].annots.oom) {
            pending_fini(pa, n);
            return -ENOMEM;
        }
        pa[i].value = res[i].value;
        for (size_t j = 0; j < i; j++)
            if (labels_cmp(pa[j].labels.l, pa[j].labels.n, ls->l, ls->n) == 0) {
                pending_fini(pa, n);
                set_error(r, "vector contains metrics with the same labelset after applying "
                             "alert labels");
                return perr_set(err, 0, 0, "%s", r->last_error);
            }
    }

    /* 2. merge into the kept alerts */
    bool *seen = NULL;
    size_t need = r->nalerts + n;
    if (need > r->cap) {
        struct alert *na = realloc(r->alerts, need * sizeof(*na));
        if (!na) {
            pending_fini(pa, n);
            return -ENOMEM;
        }
        r->alerts = na;
        r->cap = need;
    }
    seen = calloc(need ? need : 1, sizeof(*seen));
    if (!seen) {
        pending_fini(pa, n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        size_t k;
        for (k = 0; k < r->nalerts; k++)
            if (labels_cmp(r->alerts[k].labels, r->alerts[k].nlabels, pa[i].labels.l,
                           pa[i].labels.n) == 0)
                break;
        if (k < r->nalerts && r->alerts[k].state != ALERT_INACTIVE) {
            /* existing pending/firing alert: refresh value and annotations */
            struct alert *a = &r->alerts[k];
            labels_free(a->annotations, a->nannotations);
            a->annotations = pa[i].annots.l;
            a->nannotations = pa[i].annots.n;
            pa[i].annots.l = NULL;
            pa[i].annots.n = 0;
            a->value = pa[i].value;
            seen[k] = true;
            continue;
        }
        if (k < r->nalerts)
            alert_fini(&r->alerts[k]); /* resolved alert replaced by a new one */
        else
            k = r->nalerts++;
        struct alert *a = &r->alerts[k];
        memset(a, 0, sizeof(*a));
        a->labels = pa[i].labels.l;
        a->nlabels = pa[i].labels.n;
        a->annotations = pa[i].annots.l;
        a->nannotations = pa[i].annots.n;
        pa[i].labels.l = pa[i].annots.l = NULL;
        pa[i].labels.n = pa[i].annots.n = 0;
        a->value = pa[i].value;
        a->state = ALERT_PENDING;
        a->active_at = ts;
        a->active_ns = env ? env->ts_ns : 0;
        a->fired_at = a->resolved_at = a->last_sent_at = a->valid_until = a->keep_firing_since =
            ALERT_TS_NONE;
        seen[k] = true;
    }
    pending_fini(pa, n);

    /* 3. transitions */
    size_t active = 0;
    for (size_t k = 0; k < r->nalerts;) {
        struct alert *a = &r->alerts[k];
        if (!seen[k]) {
            bool keep = false;
            if (a->state == ALERT_FIRING && r->kff_ms > 0) {
                if (a->keep_firing_since == ALERT_TS_NONE) {
                    a->keep_firing_since = ts;
                    a->keep_firing_ns = env ? env->ts_ns : 0;
                }
                if (ts - a->keep_firing_since < r->kff_ms) keep = true;
            }
            bool drop =
                a->state == ALERT_PENDING || (a->resolved_at != ALERT_TS_NONE &&
                                              ts - a->resolved_at > ALERT_RESOLVED_RETENTION_MS);
            if (a->state != ALERT_INACTIVE && !keep) {
                a->state = ALERT_INACTIVE;
                a->resolved_at = ts;
            }
            if (drop) {
                alert_fini(a);
                r->alerts[k] = r->alerts[r->nalerts - 1];
                seen[k] = seen[r->nalerts - 1];
                r->nalerts--;
                continue;
            }
            if (!keep) {
                k++;
                continue;
            }
        } else {
            a->keep_firing_since = ALERT_TS_NONE;
            a->keep_firing_ns = 0;
        }
        active++;
        if (a->state == ALERT_PENDING && ts - a->active_at >= r->for_ms) {
            a->state = ALERT_FIRING;
            a->fired_at = ts;
        }
        k++;
    }
    free(seen);
    if (limit > 0 && active > (size_t)limit) {
        for (size_t k = 0; k < r->nalerts; k++)
            alert_fini(&r->alerts[k]);
        r->nalerts = 0;
        set_error(r, "");
        snprintf(r->last_error, sizeof(r->last_error), "exceeded limit of %lld with %zu alerts",
                 (long long)limit, active);
        return perr_set(err, 0, 0, "%s", r->last_error);
    }
    r->health = ALERT_HEALTH_OK;
    r->last_error[0] = '\0';
    return 0;
}

/* Prometheus builds ALERTS and ALERTS_FOR_STATE from the rule's labels as written (templates
 * unexpanded, empty values dropped) overridden by the alert's: a label whose template expanded
 * to "" is missing from the alert but keeps its template text in these series. */
static void raw_rule_labels(const struct alert_rule *r, struct lset *s) {
    for (size_t k = 0; k < r->nlabels; k++)
        if (*r->labels[k].value) lset_set(s, r->labels[k].name, r->labels[k].value);
}

int alert_rule_series(const struct alert_rule *r,
                      int (*fn)(void *arg, const struct re_label *labels, size_t n, double v),
                      void *arg) {
    for (size_t k = 0; k < r->nalerts; k++) {
        const struct alert *a = &r->alerts[k];
        if (a->state == ALERT_INACTIVE) continue;
        struct lset s = {0};
        raw_rule_labels(r, &s);
        for (size_t i = 0; i < a->nlabels; i++)
            lset_set(&s, a->labels[i].name, a->labels[i].value);
        lset_set(&s, "__name__", "ALERTS");
        lset_set(&s, "alertstate", alert_state_string(a->state));
        if (s.oom) {
            lset_fini(&s);
            return -ENOMEM;
        }
        int rc = fn(arg, s.l, s.n, 1.0);
        lset_fini(&s);
        if (rc) return rc;
        raw_rule_labels(r, &s);
        for (size_t i = 0; i < a->nlabels; i++)
            lset_set(&s, a->labels[i].name, a->labels[i].value);
        lset_set(&s, "__name__", "ALERTS_FOR_STATE");
        if (s.oom) {
            lset_fini(&s);
            return -ENOMEM;
        }
        /* float64(ActiveAt.Unix()): whole seconds, rounded down */
        int64_t secs = a->active_at / 1000 - (a->active_at % 1000 < 0 ? 1 : 0);
        rc = fn(arg, s.l, s.n, (double)secs);
        lset_fini(&s);
        if (rc) return rc;
    }
    return 0;
}

size_t alert_rule_nalerts(const struct alert_rule *r) {
    return r->nalerts;
}

const struct alert *alert_rule_alert(const struct alert_rule *r, size_t i) {
    return i < r->nalerts ? &r->alerts[i] : NULL;
}

enum alert_state alert_rule_state(const struct alert_rule *r) {
    enum alert_state s = ALERT_INACTIVE;
    for (size_t k = 0; k < r->nalerts; k++)
        if (r->alerts[k].state > s) s = r->alerts[k].state;
    return s;
}

enum alert_health alert_rule_health(const struct alert_rule *r) {
    return r->health;
}

const char *alert_rule_last_error(const struct alert_rule *r) {
    return r->last_error;
}

const char *alert_rule_name(const struct alert_rule *r) {
    return r->name;
}

const char *alert_rule_expr(const struct alert_rule *r) {
    return r->expr;
}

int64_t alert_rule_for(const struct alert_rule *r) {
    return r->for_ms;
}

int64_t alert_rule_keep_firing_for(const struct alert_rule *r) {
    return r->kff_ms;
}

const struct rulefile_kv *alert_rule_labels(const struct alert_rule *r, size_t *n) {
    *n = r->nlabels;
    return r->labels;
}

const struct rulefile_kv *alert_rule_annotations(const struct alert_rule *r, size_t *n) {
    *n = r->nannotations;
    return r->annotations;
}

const char *alert_state_string(enum alert_state s) {
    switch (s) {
    case ALERT_PENDING:
        return "pending";
    case ALERT_FIRING:
        return "firing";
    default:
        return "inactive";
    }
}

static bool kvs_equal(const struct rulefile_kv *a, size_t na, const struct rulefile_kv *b,
                      size_t nb) {
    if (na != nb) return false;
    for (size_t i = 0; i < na; i++) {
        size_t j;
        for (j = 0; j < nb; j++)
            if (strcmp(a[i].name, b[j].name) == 0) break;
        if (j == nb || strcmp(a[i].value, b[j].value) != 0) return false;
    }
    return true;
}

bool alert_rule_same(const struct alert_rule *a, const struct alert_rule *b) {
    return strcmp(a->name, b->name) == 0 && strcmp(a->expr, b->expr) == 0 &&
           a->for_ms == b->for_ms && a->kff_ms == b->kff_ms &&
           kvs_equal(a->labels, a->nlabels, b->labels, b->nlabels) &&
           kvs_equal(a->annotations, a->nannotations, b->annotations, b->nannotations);
}

static int labels_dup(const struct re_label *src, size_t n, struct re_label **out) {
    *out = NULL;
    if (!n) return 0;
    struct re_label *l = calloc(n, sizeof(*l));
    if (!l) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        l[i].name = strdup(src[i].name);
        l[i].value = strdup(src[i].value);
        if (!l[i].name || !l[i].value) {
            labels_free(l, i + 1);
            return -ENOMEM;
        }
    }
    *out = l;
    return 0;
}

int alert_rule_copy_state(struct alert_rule *dst, const struct alert_rule *src) {
    struct alert *na = src->nalerts ? calloc(src->nalerts, sizeof(*na)) : NULL;
    if (src->nalerts && !na) return -ENOMEM;
    for (size_t k = 0; k < src->nalerts; k++) {
        na[k] = src->alerts[k];
        na[k].labels = na[k].annotations = NULL;
        if (labels_dup(src->alerts[k].labels, src->alerts[k].nlabels, &na[k].labels) < 0 ||
            labels_dup(src->alerts[k].annotations, src->alerts[k].nannotations,
                       &na[k].annotations) < 0) {
            for (size_t j = 0; j <= k; j++)
                alert_fini(&na[j]);
            free(na);
            return -ENOMEM;
        }
    }
    for (size_t k = 0; k < dst->nalerts; k++)
        alert_fini(&dst->alerts[k]);
    free(dst->alerts);
    dst->alerts = na;
    dst->nalerts = dst->cap = src->nalerts;
    dst->health = src->health;
    memcpy(dst->last_error, src->last_error, sizeof(dst->last_error));
    dst->last_eval = src->last_eval;
    return 0;
}

size_t alert_rule_restore_for_state(struct alert_rule *r, const struct re_label *labels, size_t n,
                                    int64_t active_at_ms) {
    size_t cnt = 0;
    for (size_t k = 0; k < r->nalerts; k++) {
        struct alert *a = &r->alerts[k];
        if (a->state != ALERT_PENDING || labels_cmp(a->labels, a->nlabels, labels, n) != 0)
            continue;
        a->active_at = active_at_ms;
        a->active_ns = 0;
        cnt++;
    }
    return cnt;
}

int alert_rule_sends(struct alert_rule *r, int64_t ts, int64_t resend_delay_ms, int64_t interval_ms,
                     const char *external_url, int (*fn)(void *arg, const struct alert_notice *a),
                     void *arg) {
    int cnt = 0;
    char *gen = payload_generator_url(external_url, r->expr);
    if (!gen) return -ENOMEM;
    for (size_t k = 0; k < r->nalerts; k++) {
        struct alert *a = &r->alerts[k];
        /* Alert.needsSending */
        if (a->state == ALERT_PENDING) continue;
        bool need;
        if (a->resolved_at != ALERT_TS_NONE &&
            (a->last_sent_at == ALERT_TS_NONE || a->resolved_at > a->last_sent_at))
            need = true;
        else
            need = a->last_sent_at == ALERT_TS_NONE || a->last_sent_at + resend_delay_ms < ts;
        if (!need) continue;
        a->last_sent_at = ts;
        int64_t delta = interval_ms > resend_delay_ms ? interval_ms : resend_delay_ms;
        a->valid_until = ts + 4 * delta;
        struct alert_notice no = {.labels = a->labels,
                                  .nlabels = a->nlabels,
                                  .annotations = a->annotations,
                                  .nannotations = a->nannotations,
                                  .starts_at = a->fired_at,
                                  .ends_at = a->resolved_at != ALERT_TS_NONE ? a->resolved_at
                                                                             : a->valid_until,
                                  .resolved = a->resolved_at != ALERT_TS_NONE,
                                  .value = a->value,
                                  .generator_url = gen};
        int rc = fn(arg, &no);
        if (rc < 0) {
            free(gen);
            return rc;
        }
        cnt++;
    }
    free(gen);
    return cnt;
}
