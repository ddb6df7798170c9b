/* SPDX-License-Identifier: Apache-2.0 */
/* promlet.yml parsing: libyaml's document API, then a strict walk that refuses unknown keys
 * (as Prometheus's yaml.UnmarshalStrict does) and reports file positions. */
#include "config.h"
#include "defaults.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* ---- durations and sizes --------------------------------------------------------------------- */

int config_parse_duration(const char *s, int64_t *ms) {
    /* The same units and rules as PromQL durations (model.ParseDuration). */
    return s ? promql_parse_duration(s, ms) : -EINVAL;
}

int config_parse_bytes(const char *s, size_t *out) {
    char *end;
    if (!s || !isdigit((unsigned char)*s)) return -EINVAL;
    errno = 0;
    unsigned long long n = strtoull(s, &end, 10);
    if (errno) return -EINVAL;
    static const struct {
        const char *suffix;
        unsigned shift;
    } sfx[] = {{"", 0},     {"B", 0},   {"KB", 10},  {"KiB", 10}, {"MB", 20},
               {"MiB", 20}, {"GB", 30}, {"GiB", 30}, {"TB", 40},  {"TiB", 40}};
    for (size_t i = 0; i < sizeof(sfx) / sizeof(sfx[0]); i++)
        if (strcmp(end, sfx[i].suffix) == 0) {
            if (sfx[i].shift && n > (SIZE_MAX >> sfx[i].shift)) return -EINVAL;
            *out = (size_t)(n << sfx[i].shift);
            return 0;
        }
    return -EINVAL;
}

/* ---- defaults -------------------------------------------------------------------------------- */

static void set_defaults(struct config *c) {
    c->evaluation_interval_ms = DEF_EVALUATION_INTERVAL_MS;
    c->scrape_interval_ms = DEF_SCRAPE_INTERVAL_MS;
    c->resend_delay_ms = DEF_RESEND_DELAY_MS;
    c->notification_queue_capacity = DEF_NOTIFY_QUEUE;
    c->retention_ms = DEF_RETENTION_MS;
    c->max_series = DEF_MAX_SERIES;
    c->future_tolerance_ms = DEF_FUTURE_TOLERANCE_MS;
    c->push_persistence_interval_ms = DEF_PUSH_PERSISTENCE_INTERVAL_MS;
    c->rw_max_body_bytes = DEF_RW_MAX_BODY_BYTES;
    c->collectors_sample_interval_ms = DEF_COLLECTORS_SAMPLE_INTERVAL_MS;
    c->query_max_samples = DEF_QUERY_MAX_SAMPLES;
    c->query_timeout_ms = DEF_QUERY_TIMEOUT_MS;
    c->query_lookback_delta_ms = DEF_LOOKBACK_MS;
}

struct config *config_default(void) {
    struct config *c = calloc(1, sizeof(*c));
    if (!c) return NULL;
    set_defaults(c);
    c->dir = strdup(".");
    if (!c->dir) {
        free(c);
        return NULL;
    }
    return c;
}

void config_free(struct config *c) {
    if (!c) return;
    free(c->file);
    free(c->dir);
    for (size_t i = 0; i < c->nexternal; i++) {
        free((char *)c->external_labels[i].name);
        free((char *)c->external_labels[i].value);
    }
    free(c->external_labels);
    for (size_t i = 0; i < c->nrule_files; i++)
        free(c->rule_files[i]);
    free(c->rule_files);
    for (size_t i = 0; i < c->nalertmanagers; i++) {
        struct cfg_alertmanager *a = &c->alertmanagers[i];
        for (size_t k = 0; k < a->ntargets; k++)
            free(a->targets[k]);
        free(a->targets);
        free(a->scheme);
        free(a->path_prefix);
        free(a->api_version);
    }
    free(c->alertmanagers);
    for (size_t i = 0; i < c->nwebhooks; i++)
        free(c->webhooks[i].url);
    free(c->webhooks);
    free(c->push_persistence_file);
    free(c);
}

/* ---- the strict walk ------------------------------------------------------------------------- */

struct walk {
    yaml_document_t *doc;
    struct perr *err;
    int rc;
};

static int fail_at(struct walk *w, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct walk *w, const yaml_node_t *n, const char *fmt, ...) {
    if (w->rc) return w->rc;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    w->rc = perr_set(w->err, n ? (int)n->start_mark.line + 1 : 0,
                     n ? (int)n->start_mark.column + 1 : 0, "%s", msg);
    return w->rc;
}

static yaml_node_t *node(struct walk *w, int id) {
    return yaml_document_get_node(w->doc, id);
}

static const char *scalar(const yaml_node_t *n) {
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static bool is_null(const yaml_node_t *n) {
    const char *s = scalar(n);
    return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

static int want_map(struct walk *w, const yaml_node_t *n, const char *what) {
    if (n->type != YAML_MAPPING_NODE && !is_null(n))
        return fail_at(w, n, "%s: expected a mapping", what);
    return 0;
}

static int want_seq(struct walk *w, const yaml_node_t *n, const char *what) {
    if (n->type != YAML_SEQUENCE_NODE && !is_null(n))
        return fail_at(w, n, "%s: expected a list", what);
    return 0;
}

static int get_str(struct walk *w, const yaml_node_t *n, const char *key, char **out) {
    const char *s = scalar(n);
    if (!s) return fail_at(w, n, "%s: expected a string", key);
    char *d = strdup(s);
    if (!d) return w->rc = -ENOMEM;
    free(*out);
    *out = d;
    return 0;
}

static int get_duration(struct walk *w, const yaml_node_t *n, const char *key, int64_t *out) {
    const char *s = scalar(n);
    if (!s || config_parse_duration(s, out))
        return fail_at(w, n, "%s: not a valid duration string: \"%s\"", key, s ? s : "");
    return 0;
}

static int get_bool(struct walk *w, const yaml_node_t *n, const char *key, bool *out) {
    const char *s = scalar(n);
    if (s && (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")))
        *out = true;
    else if (s && (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")))
        *out = false;
    else
        return fail_at(w, n, "%s: cannot unmarshal \"%s\" into bool", key, s ? s : "");
    return 0;
}

static int get_uint(struct walk *w, const yaml_node_t *n, const char *key, size_t *out) {
    const char *s = scalar(n);
    char *end;
    if (!s || !isdigit((unsigned char)*s))
        return fail_at(w, n, "%s: cannot unmarshal \"%s\" into an unsigned integer", key,
                       s ? s : "");
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return fail_at(w, n, "%s: cannot unmarshal \"%s\" into an unsigned integer", key, s);
    *out = (size_t)v;
    return 0;
}

static int get_bytes(struct walk *w, const yaml_node_t *n, const char *key, size_t *out) {
    const char *s = scalar(n);
    if (!s || config_parse_bytes(s, out))
        return fail_at(w, n, "%s: not a valid size: \"%s\"", key, s ? s : "");
    return 0;
}

/* Iterates the pairs of a mapping node, refusing non-scalar and duplicate keys. */
#define MAP_EACH(w, n, k, v)                                                                       \
    for (yaml_node_pair_t *k##_p = (n)->type == YAML_MAPPING_NODE ? (n)->data.mapping.pairs.start  \
                                                                  : NULL;                          \
         k##_p && k##_p < (n)->data.mapping.pairs.top && !(w)->rc; k##_p++)                        \
        for (yaml_node_t *k = node(w, k##_p->key), *v = node(w, k##_p->value); k; k = NULL)

static int check_key(struct walk *w, const yaml_node_t *map, const yaml_node_t *k) {
    if (!scalar(k)) return fail_at(w, k, "mapping keys must be strings");
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        yaml_node_t *o = node(w, p->key);
        if (o == k) break;
        if (scalar(o) && strcmp(scalar(o), scalar(k)) == 0)
            return fail_at(w, k, "key \"%s\" already set in map", scalar(k));
    }
    return 0;
}

static int unknown(struct walk *w, const yaml_node_t *k, const char *type) {
    return fail_at(w, k, "field %s not found in type %s", scalar(k), type);
}

static int cmp_label(const void *a, const void *b) {
    return strcmp(((const struct re_label *)a)->name, ((const struct re_label *)b)->name);
}

static int parse_global(struct walk *w, struct config *c, yaml_node_t *n) {
    if (want_map(w, n, "global")) return w->rc;
    MAP_EACH(w, n, k, v) {
        if (check_key(w, n, k)) break;
        const char *key = scalar(k);
        if (!strcmp(key, "evaluation_interval")) {
            get_duration(w, v, key, &c->evaluation_interval_ms);
            if (!w->rc && c->evaluation_interval_ms <= 0)
                fail_at(w, v, "%s: must be greater than 0", key);
        } else if (!strcmp(key, "scrape_interval")) {
            get_duration(w, v, key, &c->scrape_interval_ms);
        } else if (!strcmp(key, "scrape_timeout")) {
            int64_t ignored;
            get_duration(w, v, key, &ignored);
        } else if (!strcmp(key, "external_labels")) {
            if (want_map(w, v, key)) break;
            size_t cnt = v->type == YAML_MAPPING_NODE
                             ? (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start)
                             : 0;
            c->external_labels = calloc(cnt ? cnt : 1, sizeof(struct re_label));
            if (!c->external_labels) return w->rc = -ENOMEM;
            MAP_EACH(w, v, lk, lv) {
                if (check_key(w, v, lk)) break;
                const char *ln = scalar(lk), *val = scalar(lv);
                if (!re_valid_label_name(ln, strlen(ln)))
                    fail_at(w, lk, "external_labels: \"%s\" is not a valid label name", ln);
                else if (!val)
                    fail_at(w, lv, "external_labels: value of %s must be a string", ln);
                else if (!re_valid_utf8(val, strlen(val)))
                    fail_at(w, lv, "external_labels: value of %s is not valid UTF-8", ln);
                if (w->rc) break;
                struct re_label *l = &c->external_labels[c->nexternal];
                l->name = strdup(ln);
                l->value = strdup(val);
                if (!l->name || !l->value) {
                    free((char *)l->name);
                    free((char *)l->value);
                    return w->rc = -ENOMEM;
                }
                c->nexternal++;
            }
            qsort(c->external_labels, c->nexternal, sizeof(struct re_label), cmp_label);
        } else {
            unknown(w, k, "global");
        }
    }
    return w->rc;
}

static int parse_strlist(struct walk *w, yaml_node_t *n, const char *key, char ***out,
                         size_t *count) {
    if (want_seq(w, n, key)) return w->rc;
    if (n->type != YAML_SEQUENCE_NODE) return 0;
    size_t cnt = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    char **arr = calloc(cnt ? cnt : 1, sizeof(char *));
    if (!arr) return w->rc = -ENOMEM;
    *out = arr;
    for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top;
         it++) {
        if (get_str(w, node(w, *it), key, &arr[*count])) return w->rc;
        (*count)++;
    }
    return 0;
}

static int parse_alertmanager(struct walk *w, struct cfg_alertmanager *a, yaml_node_t *n) {
    a->timeout_ms = DEF_NOTIFY_TIMEOUT_MS;
    if (!(a->scheme = strdup("http")) || !(a->path_prefix = strdup("")) ||
        !(a->api_version = strdup("v2")))
        return w->rc = -ENOMEM;
    if (want_map(w, n, "alertmanagers")) return w->rc;
    MAP_EACH(w, n, k, v) {
        if (check_key(w, n, k)) break;
        const char *key = scalar(k);
        if (!strcmp(key, "static_configs")) {
            if (want_seq(w, v, key) || v->type != YAML_SEQUENCE_NODE) continue;
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top && !w->rc; it++) {
                yaml_node_t *sc = node(w, *it);
                if (want_map(w, sc, key)) break;
                MAP_EACH(w, sc, sk, sv) {
                    if (check_key(w, sc, sk)) break;
                    if (!strcmp(scalar(sk), "targets")) {
                        char **t = NULL;
                        size_t nt = 0;
                        if (parse_strlist(w, sv, "targets", &t, &nt) == 0 && nt) {
                            char **m = realloc(a->targets, (a->ntargets + nt) * sizeof(char *));
                            if (!m) {
                                for (size_t i = 0; i < nt; i++)
                                    free(t[i]);
                                free(t);
                                return w->rc = -ENOMEM;
                            }
                            a->targets = m;
                            memcpy(a->targets + a->ntargets, t, nt * sizeof(char *));
                            a->ntargets += nt;
                            free(t);
                        } else {
                            for (size_t i = 0; i < nt; i++)
                                free(t[i]);
                            free(t);
                        }
                    } else if (!strcmp(scalar(sk), "labels")) {
                        if (want_map(w, sv, "labels")) break;
                    } else {
                        unknown(w, sk, "static_config");
                    }
                }
            }
        } else if (!strcmp(key, "scheme")) {
            if (!get_str(w, v, key, &a->scheme) && strcmp(a->scheme, "http") &&
                strcmp(a->scheme, "https"))
                fail_at(w, v, "scheme: unknown scheme \"%s\" (http or https)", a->scheme);
        } else if (!strcmp(key, "path_prefix")) {
            get_str(w, v, key, &a->path_prefix);
        } else if (!strcmp(key, "api_version")) {
            if (!get_str(w, v, key, &a->api_version) && strcmp(a->api_version, "v2"))
                fail_at(w, v,
                        "api_version: expected Alertmanager api version to be one of "
                        "[v2] but got %s",
                        a->api_version);
        } else if (!strcmp(key, "timeout")) {
            get_duration(w, v, key, &a->timeout_ms);
        } else {
            unknown(w, k, "alertmanager_config");
        }
    }
    return w->rc;
}

static int parse_webhook(struct walk *w, struct cfg_webhook *h, yaml_node_t *n) {
    h->send_resolved = true;
    h->timeout_ms = DEF_NOTIFY_TIMEOUT_MS;
    if (want_map(w, n, "webhook_configs")) return w->rc;
    MAP_EACH(w, n, k, v) {
        if (check_key(w, n, k)) break;
        const char *key = scalar(k);
        if (!strcmp(key, "url")) {
            if (!get_str(w, v, key, &h->url) && strncmp(h->url, "http://", 7) &&
                strncmp(h->url, "https://", 8))
                fail_at(w, v, "url: unsupported scheme in \"%s\" (http or https)", h->url);
        } else if (!strcmp(key, "send_resolved")) {
            get_bool(w, v, key, &h->send_resolved);
        } else if (!strcmp(key, "max_alerts")) {
            size_t m = 0;
            if (!get_uint(w, v, key, &m)) h->max_alerts = (uint32_t)m;
        } else if (!strcmp(key, "timeout")) {
            get_duration(w, v, key, &h->timeout_ms);
        } else {
            unknown(w, k, "webhook_config");
        }
    }
    if (!w->rc && !h->url)
        fail_at(w, n, "webhook_configs: one of url or url_file must be configured");
    return w->rc;
}

static int parse_alerting(struct walk *w, struct config *c, yaml_node_t *n) {
    if (want_map(w, n, "alerting")) return w->rc;
    MAP_EACH(w, n, k, v) {
        if (check_key(w, n, k)) break;
        const char *key = scalar(k);
        if (!strcmp(key, "alertmanagers") || !strcmp(key, "webhook_configs")) {
            bool am = key[0] == 'a';
            if (want_seq(w, v, key) || v->type != YAML_SEQUENCE_NODE) continue;
            size_t cnt = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
            void *arr = calloc(cnt ? cnt : 1,
                               am ? sizeof(struct cfg_alertmanager) : sizeof(struct cfg_webhook));
            if (!arr) return w->rc = -ENOMEM;
            if (am)
                c->alertmanagers = arr;
            else
                c->webhooks = arr;
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top && !w->rc; it++) {
                if (am)
                    parse_alertmanager(w, &c->alertmanagers[c->nalertmanagers++], node(w, *it));
                else
                    parse_webhook(w, &c->webhooks[c->nwebhooks++], node(w, *it));
            }
        } else if (!strcmp(key, "resend_delay")) {
            get_duration(w, v, key, &c->resend_delay_ms);
        } else if (!strcmp(key, "notification_queue_capacity")) {
            get_uint(w, v, key, &c->notification_queue_capacity);
        } else {
            unknown(w, k, "alerting");
        }
    }
    return w->rc;
}

/* A section of scalar settings: key, kind, target. */
enum kind { K_DURATION, K_UINT, K_BYTES, K_STRING };
struct field {
    const char *key;
    enum kind kind;
    void *target;
    bool positive;
};

static int parse_fields(struct walk *w, yaml_node_t *n, const char *section, const struct field *f,
                        size_t nf) {
    if (want_map(w, n, section)) return w->rc;
    MAP_EACH(w, n, k, v) {
        if (check_key(w, n, k)) break;
        size_t i = 0;
        while (i < nf && strcmp(f[i].key, scalar(k)))
            i++;
        if (i == nf) {
            unknown(w, k, section);
            break;
        }
        switch (f[i].kind) {
        case K_DURATION:
            if (!get_duration(w, v, f[i].key, f[i].target) && f[i].positive &&
                *(int64_t *)f[i].target <= 0)
                fail_at(w, v, "%s: must be greater than 0", f[i].key);
            break;
        case K_UINT:
            if (!get_uint(w, v, f[i].key, f[i].target) && f[i].positive &&
                *(size_t *)f[i].target == 0)
                fail_at(w, v, "%s: must be greater than 0", f[i].key);
            break;
        case K_BYTES:
            if (!get_bytes(w, v, f[i].key, f[i].target) && f[i].positive &&
                *(size_t *)f[i].target == 0)
                fail_at(w, v, "%s: must be greater than 0", f[i].key);
            break;
        case K_STRING:
            get_str(w, v, f[i].key, f[i].target);
            break;
        }
    }
    return w->rc;
}

static int parse_root(struct walk *w, struct config *c, yaml_node_t *root) {
    if (!root || is_null(root)) return 0; /* an empty file is a valid config with every default */
    if (root->type != YAML_MAPPING_NODE) return fail_at(w, root, "the config must be a mapping");
    MAP_EACH(w, root, k, v) {
        if (check_key(w, root, k)) break;
        const char *key = scalar(k);
        if (!strcmp(key, "global")) {
            parse_global(w, c, v);
        } else if (!strcmp(key, "rule_files")) {
            parse_strlist(w, v, key, &c->rule_files, &c->nrule_files);
        } else if (!strcmp(key, "alerting")) {
            parse_alerting(w, c, v);
        } else if (!strcmp(key, "storage")) {
            const struct field f[] = {
                {"retention", K_DURATION, &c->retention_ms, true},
                {"max_series", K_UINT, &c->max_series, true},
                {"future_tolerance", K_DURATION, &c->future_tolerance_ms, false}};
            parse_fields(w, v, "storage", f, 3);
        } else if (!strcmp(key, "push")) {
            const struct field f[] = {
                {"group_ttl", K_DURATION, &c->push_group_ttl_ms, false},
                {"persistence_file", K_STRING, &c->push_persistence_file, false},
                {"persistence_interval", K_DURATION, &c->push_persistence_interval_ms, true}};
            parse_fields(w, v, "push", f, 3);
        } else if (!strcmp(key, "remote_write_receiver")) {
            const struct field f[] = {{"max_body_bytes", K_BYTES, &c->rw_max_body_bytes, true}};
            parse_fields(w, v, "remote_write_receiver", f, 1);
        } else if (!strcmp(key, "collectors")) {
            const struct field f[] = {
                {"sample_interval", K_DURATION, &c->collectors_sample_interval_ms, true}};
            parse_fields(w, v, "collectors", f, 1);
        } else if (!strcmp(key, "query")) {
            const struct field f[] = {
                {"max_samples", K_UINT, &c->query_max_samples, true},
                {"timeout", K_DURATION, &c->query_timeout_ms, true},
                {"lookback_delta", K_DURATION, &c->query_lookback_delta_ms, true}};
            parse_fields(w, v, "query", f, 3);
        } else {
            unknown(w, k, "config");
        }
    }
    return w->rc;
}

int config_parse(const char *name, const char *buf, size_t len, struct config **out,
                 struct perr *err) {
    *out = NULL;
    struct config *c = calloc(1, sizeof(*c));
    if (!c) return -ENOMEM;
    set_defaults(c);
    c->file = strdup(name);
    char *tmp = strdup(name);
    c->dir = tmp ? strdup(dirname(tmp)) : NULL;
    free(tmp);
    if (!c->file || !c->dir) {
        config_free(c);
        return -ENOMEM;
    }

    yaml_parser_t parser;
    yaml_document_t doc;
    if (!yaml_parser_initialize(&parser)) {
        config_free(c);
        return -ENOMEM;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        int rc =
            perr_set(err, (int)parser.problem_mark.line + 1, (int)parser.problem_mark.column + 1,
                     "yaml: %s%s%s", parser.problem ? parser.problem : "syntax error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
        yaml_parser_delete(&parser);
        config_free(c);
        return rc;
    }
    struct walk w = {.doc = &doc, .err = err};
    parse_root(&w, c, yaml_document_get_root_node(&doc));
    /* A second document in the stream is refused, as Prometheus's single-document load. */
    if (!w.rc) {
        yaml_document_t doc2;
        if (yaml_parser_load(&parser, &doc2)) {
            yaml_node_t *r2 = yaml_document_get_root_node(&doc2);
            if (r2) fail_at(&w, r2, "only one YAML document is allowed");
            yaml_document_delete(&doc2);
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (w.rc) {
        config_free(c);
        return w.rc;
    }
    *out = c;
    return 0;
}

int config_load(const char *path, struct config **out, struct perr *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        int e = errno;
        perr_set(err, 0, 0, "cannot read config: %s", strerror(e));
        return -e;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (64u << 20)) {
                free(buf);
                fclose(f);
                perr_set(err, 0, 0, "config larger than 64 MiB");
                return -EFBIG;
            }
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                fclose(f);
                return -ENOMEM;
            }
            buf = nb;
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0) break;
    }
    fclose(f);
    int rc = config_parse(path, buf, len, out, err);
    free(buf);
    return rc;
}

/* Expands the config's rule_files globs (relative to the config's folder, as Prometheus)
 * and calls fn for each file. A pattern that matches nothing is not an error (Prometheus
 * ignores it); a bad pattern is. */
int config_rule_files(const struct config *c, int (*fn)(void *arg, const char *path), void *arg,
                      struct perr *err) {
    for (size_t i = 0; i < c->nrule_files; i++) {
        char pat[4096];
        const char *p = c->rule_files[i];
        if (p[0] == '/' || !strcmp(c->dir, "."))
            snprintf(pat, sizeof(pat), "%s", p);
        else
            snprintf(pat, sizeof(pat), "%s/%s", c->dir, p);
        glob_t g;
        int rc = glob(pat, 0, NULL, &g);
        if (rc == GLOB_NOMATCH || (rc == 0 && g.gl_pathc == 0)) {
            globfree(&g);
            continue;
        }
        if (rc) return perr_set(err, 0, 0, "rule_files: cannot expand \"%s\"", p);
        for (size_t k = 0; k < g.gl_pathc && !rc; k++)
            rc = fn(arg, g.gl_pathv[k]);
        globfree(&g);
        if (rc) return rc;
    }
    return 0;
}
