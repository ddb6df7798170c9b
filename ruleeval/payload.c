/* SPDX-License-Identifier: Apache-2.0 */
/* JSON payloads: Alertmanager webhook v4, Alertmanager API v2 alerts, Prometheus /api/v1. */
#include "ruleeval.h"
#include "rbuf.h"

#include <stdlib.h>
#include <string.h>

/* Go's zero time.Time (0001-01-01T00:00:00Z) in ms since the Unix epoch. */
#define GO_ZERO_TIME_MS (-62135596800000LL)

uint64_t payload_fingerprint(const struct re_label *labels, size_t n) {
    /* model.labelSetToFingerprint: names sorted, FNV-1a 64 with 0xff separators */
    const struct re_label **idx = n ? malloc(n * sizeof(*idx)) : NULL;
    uint64_t h = 14695981039346656037ULL;
    if (n && !idx) return 0;
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j > 0 && strcmp(idx[j - 1]->name, labels[i].name) > 0) {
            idx[j] = idx[j - 1];
            j--;
        }
        idx[j] = &labels[i];
    }
    for (size_t i = 0; i < n; i++) {
        for (int part = 0; part < 2; part++) {
            const unsigned char *p = (const unsigned char *)(part ? idx[i]->value : idx[i]->name);
            for (; *p; p++) {
                h ^= *p;
                h *= 1099511628211ULL;
            }
            h ^= 0xff;
            h *= 1099511628211ULL;
        }
    }
    free(idx);
    return h;
}

char *payload_generator_url(const char *external_url, const char *expr) {
    struct rbuf b;
    rbuf_init(&b);
    rbuf_puts(&b, external_url ? external_url : "");
    rbuf_puts(&b, "/graph?g0.expr=");
    rbuf_query_escape(&b, expr ? expr : "");
    rbuf_puts(&b, "&g0.tab=1");
    return rbuf_take(&b);
}

/* A JSON object of labels sorted by name (the input may be in any order). */
static void json_labels(struct rbuf *b, const struct re_label *l, size_t n) {
    rbuf_putc(b, '{');
    const char *last = NULL;
    for (size_t k = 0; k < n; k++) {
        /* selection by name keeps the output sorted without allocating */
        const struct re_label *next = NULL;
        for (size_t i = 0; i < n; i++)
            if ((!last || strcmp(l[i].name, last) > 0) &&
                (!next || strcmp(l[i].name, next->name) < 0))
                next = &l[i];
        if (!next) break;
        if (k) rbuf_putc(b, ',');
        rbuf_json_str(b, next->name, true);
        rbuf_putc(b, ':');
        rbuf_json_str(b, next->value, true);
        last = next->name;
    }
    rbuf_putc(b, '}');
}

static void json_kvs(struct rbuf *b, const struct rulefile_kv *kv, size_t n) {
    struct re_label *l = n ? calloc(n, sizeof(*l)) : NULL;
    if (n && !l) {
        b->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        l[i].name = kv[i].name;
        l[i].value = kv[i].value;
    }
    json_labels(b, l, n);
    free(l);
}

static void json_time(struct rbuf *b, int64_t ms, int frac) {
    rbuf_putc(b, '"');
    rbuf_rfc3339(b, ms == ALERT_TS_NONE ? GO_ZERO_TIME_MS : ms, frac);
    rbuf_putc(b, '"');
}

static const char *find(const struct re_label *l, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

/* commonLabels / commonAnnotations: pairs present with the same value in every alert. */
static void json_common(struct rbuf *b, const struct alert_notice *a, size_t n, bool annots) {
    if (!n) {
        rbuf_puts(b, "{}");
        return;
    }
    const struct re_label *first = annots ? a[0].annotations : a[0].labels;
    size_t nf = annots ? a[0].nannotations : a[0].nlabels;
    struct re_label *common = nf ? calloc(nf, sizeof(*common)) : NULL;
    if (nf && !common) {
        b->oom = true;
        return;
    }
    size_t nc = 0;
    for (size_t i = 0; i < nf; i++) {
        bool all = true;
        for (size_t k = 1; k < n && all; k++) {
            const char *v = annots ? find(a[k].annotations, a[k].nannotations, first[i].name)
                                   : find(a[k].labels, a[k].nlabels, first[i].name);
            all = v && strcmp(v, first[i].value) == 0;
        }
        if (all) common[nc++] = first[i];
    }
    json_labels(b, common, nc);
    free(common);
}

static void labelset_string(struct rbuf *b, const struct re_label *l, size_t n) {
    /* model.LabelSet.String(): {a="b", c="d"} sorted, values %q-quoted */
    rbuf_putc(b, '{');
    const char *last = NULL;
    for (size_t k = 0; k < n; k++) {
        const struct re_label *next = NULL;
        for (size_t i = 0; i < n; i++)
            if ((!last || strcmp(l[i].name, last) > 0) &&
                (!next || strcmp(l[i].name, next->name) < 0))
                next = &l[i];
        if (!next) break;
        if (k) rbuf_puts(b, ", ");
        rbuf_puts(b, next->name);
        rbuf_puts(b, "=\"");
        for (const char *p = next->value; *p; p++) {
            if (*p == '"' || *p == '\\') rbuf_putc(b, '\\');
            if (*p == '\n')
                rbuf_puts(b, "\\n");
            else
                rbuf_putc(b, *p);
        }
        rbuf_putc(b, '"');
        last = next->name;
    }
    rbuf_putc(b, '}');
}

char *payload_webhook(const struct payload_webhook_group *g, const struct alert_notice *a,
                      size_t n) {
    struct rbuf b;
    rbuf_init(&b);
    bool all_resolved = n > 0;
    for (size_t i = 0; i < n; i++)
        if (!a[i].resolved) all_resolved = false;
    rbuf_puts(&b, "{\"receiver\":");
    rbuf_json_str(&b, g->receiver ? g->receiver : "", true);
    rbuf_printf(&b, ",\"status\":\"%s\",\"alerts\":[", all_resolved ? "resolved" : "firing");
    for (size_t i = 0; i < n; i++) {
        if (i) rbuf_putc(&b, ',');
        rbuf_printf(&b, "{\"status\":\"%s\",\"labels\":", a[i].resolved ? "resolved" : "firing");
        json_labels(&b, a[i].labels, a[i].nlabels);
        rbuf_puts(&b, ",\"annotations\":");
        json_labels(&b, a[i].annotations, a[i].nannotations);
        rbuf_puts(&b, ",\"startsAt\":");
        json_time(&b, a[i].starts_at, 0);
        rbuf_puts(&b, ",\"endsAt\":");
        json_time(&b, a[i].resolved ? a[i].ends_at : ALERT_TS_NONE, 0);
        rbuf_puts(&b, ",\"generatorURL\":");
        rbuf_json_str(&b, a[i].generator_url ? a[i].generator_url : "", true);
        rbuf_printf(&b, ",\"fingerprint\":\"%016llx\"}",
                    (unsigned long long)payload_fingerprint(a[i].labels, a[i].nlabels));
    }
    rbuf_puts(&b, "],\"groupLabels\":");
    json_labels(&b, g->group_labels, g->ngroup_labels);
    rbuf_puts(&b, ",\"commonLabels\":");
    json_common(&b, a, n, false);
    rbuf_puts(&b, ",\"commonAnnotations\":");
    json_common(&b, a, n, true);
    rbuf_puts(&b, ",\"externalURL\":");
    rbuf_json_str(&b, g->external_url ? g->external_url : "", true);
    rbuf_puts(&b, ",\"version\":\"4\",\"groupKey\":");
    if (g->group_key)
        rbuf_json_str(&b, g->group_key, true);
    else {
        struct rbuf k;
        rbuf_init(&k);
        rbuf_puts(&k, "{}:");
        labelset_string(&k, g->group_labels, g->ngroup_labels);
        if (k.oom) b.oom = true;
        rbuf_json_str(&b, k.p ? k.p : "", true);
        rbuf_fini(&k);
    }
    rbuf_printf(&b, ",\"truncatedAlerts\":%zu}", g->truncated_alerts);
    return rbuf_take(&b);
}

char *payload_am_alerts(const struct alert_notice *a, size_t n, const struct re_label *ext,
                        size_t next) {
    struct rbuf b;
    rbuf_init(&b);
    rbuf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i) rbuf_putc(&b, ',');
        rbuf_putc(&b, '{');
        if (a[i].nannotations) {
            rbuf_puts(&b, "\"annotations\":");
            json_labels(&b, a[i].annotations, a[i].nannotations);
            rbuf_putc(&b, ',');
        }
        rbuf_puts(&b, "\"endsAt\":");
        json_time(&b, a[i].ends_at, 3);
        rbuf_puts(&b, ",\"startsAt\":");
        json_time(&b, a[i].starts_at, 3);
        rbuf_puts(&b, ",\"generatorURL\":");
        rbuf_json_str(&b, a[i].generator_url ? a[i].generator_url : "", true);
        rbuf_puts(&b, ",\"labels\":");
        size_t nl = a[i].nlabels;
        struct re_label *all = calloc(nl + next + 1, sizeof(*all));
        if (!all) {
            b.oom = true;
            break;
        }
        memcpy(all, a[i].labels, nl * sizeof(*all));
        for (size_t k = 0; k < next; k++)
            if (!find(a[i].labels, a[i].nlabels, ext[k].name)) all[nl++] = ext[k];
        json_labels(&b, all, nl);
        free(all);
        rbuf_putc(&b, '}');
    }
    rbuf_putc(&b, ']');
    return rbuf_take(&b);
}

static void json_alert(struct rbuf *b, const struct alert *a) {
    rbuf_puts(b, "{\"labels\":");
    json_labels(b, a->labels, a->nlabels);
    rbuf_puts(b, ",\"annotations\":");
    json_labels(b, a->annotations, a->nannotations);
    rbuf_printf(b, ",\"state\":\"%s\",\"activeAt\":\"", alert_state_string(a->state));
    rbuf_rfc3339_ns(b, a->active_at == ALERT_TS_NONE ? GO_ZERO_TIME_MS : a->active_at,
                    a->active_at == ALERT_TS_NONE ? 0 : a->active_ns);
    rbuf_putc(b, '"');
    if (a->keep_firing_since != ALERT_TS_NONE) {
        rbuf_puts(b, ",\"keepFiringSince\":\"");
        rbuf_rfc3339_ns(b, a->keep_firing_since, a->keep_firing_ns);
        rbuf_putc(b, '"');
    }
    rbuf_puts(b, ",\"value\":\"");
    rbuf_gofloat(b, a->value, 'e');
    rbuf_puts(b, "\"}");
}

char *payload_api_alerts(const struct alert_rule *const *rules, size_t n) {
    struct rbuf b;
    rbuf_init(&b);
    rbuf_puts(&b, "{\"status\":\"success\",\"data\":{\"alerts\":[");
    bool first = true;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < alert_rule_nalerts(rules[r]); i++) {
            const struct alert *a = alert_rule_alert(rules[r], i);
            if (a->state == ALERT_INACTIVE) continue;
            if (!first) rbuf_putc(&b, ',');
            first = false;
            json_alert(&b, a);
        }
    rbuf_puts(&b, "]}}");
    return rbuf_take(&b);
}

static const char *health_string(enum alert_health h) {
    switch (h) {
    case ALERT_HEALTH_OK:
        return "ok";
    case ALERT_HEALTH_ERR:
        return "err";
    default:
        return "unknown";
    }
}

static void json_rule(struct rbuf *b, const struct payload_rule *pr) {
    const struct alert_rule *r = pr->alert;
    enum alert_health h = r ? alert_rule_health(r) : pr->health;
    const char *err = r ? alert_rule_last_error(r) : (pr->last_error ? pr->last_error : "");
    size_t nl, na;
    if (r) {
        rbuf_printf(b, "{\"state\":\"%s\",\"name\":", alert_state_string(alert_rule_state(r)));
        rbuf_json_str(b, alert_rule_name(r), true);
        rbuf_puts(b, ",\"query\":");
        rbuf_json_str(b, pr->query ? pr->query : alert_rule_expr(r), true);
        rbuf_puts(b, ",\"duration\":");
        rbuf_json_float(b, (double)alert_rule_for(r) / 1000.0);
        rbuf_puts(b, ",\"keepFiringFor\":");
        rbuf_json_float(b, (double)alert_rule_keep_firing_for(r) / 1000.0);
        const struct rulefile_kv *l = alert_rule_labels(r, &nl);
        rbuf_puts(b, ",\"labels\":");
        json_kvs(b, l, nl);
        const struct rulefile_kv *an = alert_rule_annotations(r, &na);
        rbuf_puts(b, ",\"annotations\":");
        json_kvs(b, an, na);
        rbuf_puts(b, ",\"alerts\":[");
        bool first = true;
        for (size_t i = 0; i < alert_rule_nalerts(r); i++) {
            const struct alert *a = alert_rule_alert(r, i);
            if (a->state == ALERT_INACTIVE) continue;
            if (!first) rbuf_putc(b, ',');
            first = false;
            json_alert(b, a);
        }
        rbuf_putc(b, ']');
    } else {
        rbuf_puts(b, "{\"name\":");
        rbuf_json_str(b, pr->name ? pr->name : "", true);
        rbuf_puts(b, ",\"query\":");
        rbuf_json_str(b, pr->query ? pr->query : "", true);
        if (pr->nlabels) { /* `json:"labels,omitempty"` for recording rules only */
            rbuf_puts(b, ",\"labels\":");
            json_kvs(b, pr->labels, pr->nlabels);
        }
    }
    rbuf_printf(b, ",\"health\":\"%s\"", health_string(h));
    if (*err) {
        rbuf_puts(b, ",\"lastError\":");
        rbuf_json_str(b, err, true);
    }
    rbuf_puts(b, ",\"evaluationTime\":");
    rbuf_json_float(b, pr->eval_seconds);
    rbuf_puts(b, ",\"lastEvaluation\":");
    json_time(b, pr->last_eval_ms, 0);
    rbuf_printf(b, ",\"type\":\"%s\"}", r ? "alerting" : "recording");
}

char *payload_api_rules(const struct payload_rule_group *g, size_t n) {
    struct rbuf b;
    rbuf_init(&b);
    rbuf_puts(&b, "{\"status\":\"success\",\"data\":{\"groups\":[");
    for (size_t i = 0; i < n; i++) {
        if (i) rbuf_putc(&b, ',');
        rbuf_puts(&b, "{\"name\":");
        rbuf_json_str(&b, g[i].name ? g[i].name : "", true);
        rbuf_puts(&b, ",\"file\":");
        rbuf_json_str(&b, g[i].file ? g[i].file : "", true);
        rbuf_puts(&b, ",\"rules\":[");
        for (size_t k = 0; k < g[i].nrules; k++) {
            if (k) rbuf_putc(&b, ',');
            json_rule(&b, &g[i].rules[k]);
        }
        rbuf_puts(&b, "],\"interval\":");
        rbuf_json_float(&b, (double)g[i].interval_ms / 1000.0);
        rbuf_printf(&b, ",\"limit\":%lld,\"evaluationTime\":", (long long)g[i].limit);
        rbuf_json_float(&b, g[i].eval_seconds);
        rbuf_puts(&b, ",\"lastEvaluation\":");
        json_time(&b, g[i].last_eval_ms, 0);
        rbuf_putc(&b, '}');
    }
    rbuf_puts(&b, "]}}");
    return rbuf_take(&b);
}
