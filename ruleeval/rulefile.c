/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus rule-file loader and validator (model/rulefmt + promtool check rules). */
#include "ruleeval.h"
#include "rbuf.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define RF_MAX_MERGE_DEPTH 16
#define RF_MAX_PAIRS 4096
#define RF_MAX_ERRORS 64

/* A flattened mapping entry (explicit keys first, then keys from `<<` merges). */
struct kv {
    const char *key;
    yaml_node_t *kn, *vn;
};

struct loader {
    yaml_document_t *doc;
    const struct rulefile_opts *o;
    const char *fname;
    struct rbuf report; /* every error, one per line, as promtool prints them */
    struct perr first;
    int nerr;
    bool oom;
};

static void lerr(struct loader *L, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void lerr(struct loader *L, int line, int col, const char *fmt, ...) {
    char m[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (L->nerr == 0) {
        L->first.line = line;
        L->first.col = col;
        size_t n = strlen(m);
        if (n >= sizeof(L->first.msg)) n = sizeof(L->first.msg) - 1;
        memcpy(L->first.msg, m, n);
        L->first.msg[n] = '\0';
    }
    if (L->nerr++ < RF_MAX_ERRORS) {
        if (line > 0 || col > 0)
            rbuf_printf(&L->report, "%s: %d:%d: %s\n", L->fname, line, col, m);
        else
            rbuf_printf(&L->report, "%s: %s\n", L->fname, m);
    }
}

static int nline(const yaml_node_t *n) {
    return n ? (int)n->start_mark.line + 1 : 0;
}

static int ncol(const yaml_node_t *n) {
    return n ? (int)n->start_mark.column + 1 : 0;
}

static yaml_node_t *node_at(struct loader *L, int idx) {
    return yaml_document_get_node(L->doc, idx);
}

static const char *tag_name(const yaml_node_t *n) {
    if (!n) return "!!null";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "!!map";
    case YAML_SEQUENCE_NODE:
        return "!!seq";
    default:
        return "!!str";
    }
}

/* True for a plain scalar YAML resolves to null. */
static bool is_null(const yaml_node_t *n) {
    if (!n) return true;
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 || strcmp(v, "Null") == 0 ||
           strcmp(v, "NULL") == 0;
}

/* Flattens mapping n into out (explicit keys win over merged ones, earlier merges win over
 * later ones, as yaml.v3 does). Reports duplicate explicit keys. */
static size_t flatten(struct loader *L, yaml_node_t *n, struct kv *out, size_t nout, size_t cap,
                      int depth, bool report_dups) {
    if (!n || n->type != YAML_MAPPING_NODE || depth > RF_MAX_MERGE_DEPTH) return nout;
    size_t start = nout;
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(L, p->key), *v = node_at(L, p->value);
        if (!k || k->type != YAML_SCALAR_NODE) continue;
        const char *ks = (const char *)k->data.scalar.value;
        if (strcmp(ks, "<<") == 0 && k->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) continue;
        bool dup = false;
        for (size_t i = 0; i < nout; i++)
            if (strcmp(out[i].key, ks) == 0) {
                dup = true;
                if (report_dups && i >= start)
                    lerr(L, nline(k), ncol(k), "mapping key \"%s\" already defined at line %d", ks,
                         nline(out[i].kn));
                break;
            }
        if (dup || nout >= cap) continue;
        out[nout++] = (struct kv){ks, k, v};
    }
    for (yaml_node_pair_t *p = n->data.mapping.pairs.start; p < n->data.mapping.pairs.top; p++) {
        yaml_node_t *k = node_at(L, p->key), *v = node_at(L, p->value);
        if (!k || k->type != YAML_SCALAR_NODE ||
            strcmp((const char *)k->data.scalar.value, "<<") != 0 ||
            k->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            continue;
        if (v && v->type == YAML_MAPPING_NODE)
            nout = flatten(L, v, out, nout, cap, depth + 1, false);
        else if (v && v->type == YAML_SEQUENCE_NODE) {
            for (yaml_node_item_t *it = v->data.sequence.items.start;
                 it < v->data.sequence.items.top; it++)
                nout = flatten(L, node_at(L, *it), out, nout, cap, depth + 1, false);
        } else
            lerr(L, nline(v), ncol(v), "map merge requires map or sequence of maps as the value");
    }
    return nout;
}

static char *xstrdup(struct loader *L, const char *s) {
    char *d = strdup(s ? s : "");
    if (!d) L->oom = true;
    return d;
}

/* The scalar text of n ("" for null). Reports a type error for collections. */
static bool scalar(struct loader *L, yaml_node_t *n, const char *gotype, const char **out) {
    if (is_null(n)) {
        *out = "";
        return true;
    }
    if (n->type != YAML_SCALAR_NODE) {
        lerr(L, nline(n), ncol(n), "cannot unmarshal %s into %s", tag_name(n), gotype);
        return false;
    }
    *out = (const char *)n->data.scalar.value;
    return true;
}

static bool duration(struct loader *L, yaml_node_t *n, int64_t *ms) {
    const char *s;
    if (!scalar(L, n, "model.Duration", &s)) return false;
    if (!*s) {
        *ms = 0;
        return true;
    }
    if (template_parse_duration(s, ms) < 0) {
        lerr(L, nline(n), ncol(n), "not a valid duration string: \"%s\"", s);
        return false;
    }
    return true;
}

static bool valid_label_name(struct loader *L, const char *s) {
    size_t n = strlen(s);
    if (L->o->legacy_names) return re_valid_label_name(s, n);
    return n > 0 && re_valid_utf8(s, n);
}

/* Loads a string map (labels, annotations) into kv (file order). */
static bool load_map(struct loader *L, yaml_node_t *n, const char *gotype, struct rulefile_kv **out,
                     size_t *nout) {
    *out = NULL;
    *nout = 0;
    if (is_null(n)) return true;
    if (n->type != YAML_MAPPING_NODE) {
        lerr(L, nline(n), ncol(n), "cannot unmarshal %s into %s", tag_name(n), gotype);
        return false;
    }
    struct kv pairs[256];
    size_t np = flatten(L, n, pairs, 0, 256, 0, true);
    if (np == 0) return true;
    struct rulefile_kv *kv = calloc(np, sizeof(*kv));
    if (!kv) {
        L->oom = true;
        return false;
    }
    *out = kv;
    for (size_t i = 0; i < np; i++) {
        const char *v;
        if (!scalar(L, pairs[i].vn, "string", &v)) v = "";
        kv[i].name = xstrdup(L, pairs[i].key);
        kv[i].value = xstrdup(L, v);
        (*nout)++;
    }
    return true;
}

static void kv_free(struct rulefile_kv *kv, size_t n) {
    for (size_t i = 0; i < n; i++) {
        free(kv[i].name);
        free(kv[i].value);
    }
    free(kv);
}

static void rule_fini(struct rulefile_rule *r) {
    free(r->name);
    free(r->expr);
    promql_free(r->ast);
    kv_free(r->labels, r->nlabels);
    kv_free(r->annotations, r->nannotations);
}

static void unknown_field(struct loader *L, const struct kv *p, const char *type) {
    if (L->o->ignore_unknown_fields) return;
    lerr(L, nline(p->kn), ncol(p->kn), "field %s not found in type %s", p->key, type);
}

/* Parses and validates one rule (RuleNode.Validate). */
static void load_rule(struct loader *L, const char *gname, size_t idx, yaml_node_t *n,
                      struct rulefile_rule *r) {
    r->line = nline(n);
    r->col = ncol(n);
    if (!n || n->type != YAML_MAPPING_NODE) {
        lerr(L, nline(n), ncol(n), "cannot unmarshal %s into rulefmt.RuleNode", tag_name(n));
        return;
    }
    struct kv pairs[64];
    size_t np = flatten(L, n, pairs, 0, 64, 0, true);
    yaml_node_t *rec = NULL, *al = NULL, *ex = NULL, *fo = NULL, *kf = NULL, *lb = NULL, *an = NULL;
    for (size_t i = 0; i < np; i++) {
        const char *k = pairs[i].key;
        if (strcmp(k, "record") == 0)
            rec = pairs[i].vn;
        else if (strcmp(k, "alert") == 0)
            al = pairs[i].vn;
        else if (strcmp(k, "expr") == 0)
            ex = pairs[i].vn;
        else if (strcmp(k, "for") == 0)
            fo = pairs[i].vn;
        else if (strcmp(k, "keep_firing_for") == 0)
            kf = pairs[i].vn;
        else if (strcmp(k, "labels") == 0)
            lb = pairs[i].vn;
        else if (strcmp(k, "annotations") == 0)
            an = pairs[i].vn;
        else
            unknown_field(L, &pairs[i], "rulefmt.RuleNode");
    }
    const char *recs = "", *als = "", *exs = "";
    bool ok = true;
    ok &= scalar(L, rec, "string", &recs);
    ok &= scalar(L, al, "string", &als);
    ok &= scalar(L, ex, "string", &exs);
    ok &= duration(L, fo, &r->for_ms);
    ok &= duration(L, kf, &r->keep_firing_for_ms);
    ok &= load_map(L, lb, "map[string]string", &r->labels, &r->nlabels);
    ok &= load_map(L, an, "map[string]string", &r->annotations, &r->nannotations);
    if (!ok) return;
    r->kind = *recs ? RULEFILE_RECORD : RULEFILE_ALERT;
    r->name = xstrdup(L, *als ? als : recs);
    r->expr = xstrdup(L, exs);
    r->expr_line = nline(ex);
    r->expr_col = ncol(ex);
    if (L->oom) return;

    /* WrappedError prefix: group "g", rule N, "name" */
    char pre[512];
    snprintf(pre, sizeof(pre), "group \"%s\", rule %zu, \"%s\"", gname, idx + 1, r->name);
    int rl = nline(rec), rc = ncol(rec);
    if (*recs && *als)
        lerr(L, rl, rc, "%d:%d: %s: only one of 'record' and 'alert' must be set", nline(al),
             ncol(al), pre);
    if (!*recs && !*als) lerr(L, 0, 0, "%s: one of 'record' or 'alert' must be set", pre);
    if (!*exs) {
        lerr(L, 0, 0, "%s: field 'expr' must be set in rule", pre);
    } else {
        struct perr pe = {0};
        r->ast = promql_parse_compat(exs, L->o->compat_v2, &pe);
        if (!r->ast)
            lerr(L, r->expr_line, r->expr_col, "%s: could not parse expression: %d:%d: %s", pre,
                 pe.line, pe.col, pe.msg);
    }
    if (*recs) {
        if (r->nannotations)
            lerr(L, rl, rc, "%s: invalid field 'annotations' in recording rule", pre);
        if (r->for_ms) lerr(L, rl, rc, "%s: invalid field 'for' in recording rule", pre);
        if (r->keep_firing_for_ms)
            lerr(L, rl, rc, "%s: invalid field 'keep_firing_for' in recording rule", pre);
        if (L->o->legacy_names) {
            if (!re_valid_metric_name(recs, strlen(recs)))
                lerr(L, rl, rc, "%s: invalid recording rule name: %s", pre, recs);
        } else if (strpbrk(recs, "{}"))
            lerr(L, rl, rc,
                 "%s: braces present in the recording rule name; should it be in expr?: %s", pre,
                 recs);
        else if (!re_valid_utf8(recs, strlen(recs)))
            lerr(L, rl, rc, "%s: invalid recording rule name: %s", pre, recs);
    }
    for (size_t i = 0; i < r->nlabels; i++) {
        const char *k = r->labels[i].name;
        if (!valid_label_name(L, k) || strcmp(k, "__name__") == 0)
            lerr(L, 0, 0, "%s: invalid label name: %s", pre, k);
        if (!re_valid_utf8(r->labels[i].value, strlen(r->labels[i].value)))
            lerr(L, 0, 0, "%s: invalid label value: %s", pre, r->labels[i].value);
    }
    for (size_t i = 0; i < r->nannotations; i++)
        if (!valid_label_name(L, r->annotations[i].name))
            lerr(L, 0, 0, "%s: invalid annotation name: %s", pre, r->annotations[i].name);
    /* testTemplateParsing: alerting rules' labels and annotations must parse as templates */
    if (r->kind == RULEFILE_ALERT && !*recs) {
        char tname[300];
        snprintf(tname, sizeof(tname), "__alert_%s", r->name);
        for (int pass = 0; pass < 2; pass++) {
            struct rulefile_kv *kv = pass ? r->annotations : r->labels;
            size_t nkv = pass ? r->nannotations : r->nlabels;
            for (size_t i = 0; i < nkv; i++) {
                struct perr te = {0};
                struct template *t =
                    template_parse(tname, kv[i].value, strlen(kv[i].value), true, &te);
                if (!t)
                    lerr(L, 0, 0, "%s: %s \"%s\": %s", pre, pass ? "annotation" : "label",
                         kv[i].name, te.msg);
                template_free(t);
            }
        }
    }
}

static void load_group(struct loader *L, yaml_node_t *n, struct rulefile_group *g,
                       struct rulefile *f, size_t gi) {
    g->line = nline(n);
    g->col = ncol(n);
    if (!n || n->type != YAML_MAPPING_NODE) {
        lerr(L, nline(n), ncol(n), "cannot unmarshal %s into rulefmt.RuleGroup", tag_name(n));
        return;
    }
    struct kv pairs[64];
    size_t np = flatten(L, n, pairs, 0, 64, 0, true);
    yaml_node_t *nm = NULL, *iv = NULL, *qo = NULL, *lim = NULL, *lb = NULL, *rules = NULL;
    for (size_t i = 0; i < np; i++) {
        const char *k = pairs[i].key;
        if (strcmp(k, "name") == 0)
            nm = pairs[i].vn;
        else if (strcmp(k, "interval") == 0)
            iv = pairs[i].vn;
        else if (strcmp(k, "query_offset") == 0)
            qo = pairs[i].vn;
        else if (strcmp(k, "limit") == 0)
            lim = pairs[i].vn;
        else if (strcmp(k, "labels") == 0)
            lb = pairs[i].vn;
        else if (strcmp(k, "rules") == 0)
            rules = pairs[i].vn;
        else
            unknown_field(L, &pairs[i], "rulefmt.RuleGroup");
    }
    const char *name = "";
    scalar(L, nm, "string", &name);
    g->name = xstrdup(L, name);
    duration(L, iv, &g->interval_ms);
    duration(L, qo, &g->query_offset_ms);
    if (lim && !is_null(lim)) {
        const char *ls;
        if (scalar(L, lim, "int", &ls)) {
            char *e;
            long long v = strtoll(ls, &e, 10);
            if (*e || e == ls)
                lerr(L, nline(lim), ncol(lim), "cannot unmarshal !!str `%s` into int", ls);
            else
                g->limit = v;
        }
    }
    load_map(L, lb, "map[string]string", &g->labels, &g->nlabels);
    if (!*name) lerr(L, g->line, g->col, "Groupname must not be empty");
    for (size_t i = 0; i < gi; i++)
        if (f->groups[i].name && strcmp(f->groups[i].name, name) == 0 && *name) {
            lerr(L, g->line, g->col, "groupname: \"%s\" is repeated in the same file", name);
            break;
        }
    for (size_t i = 0; i < g->nlabels; i++) {
        if (!valid_label_name(L, g->labels[i].name) || strcmp(g->labels[i].name, "__name__") == 0)
            lerr(L, g->line, g->col, "group \"%s\": invalid label name: %s", name,
                 g->labels[i].name);
        if (!re_valid_utf8(g->labels[i].value, strlen(g->labels[i].value)))
            lerr(L, g->line, g->col, "group \"%s\": invalid label value: %s", name,
                 g->labels[i].value);
    }
    if (is_null(rules)) return;
    if (rules->type != YAML_SEQUENCE_NODE) {
        lerr(L, nline(rules), ncol(rules), "cannot unmarshal %s into []rulefmt.RuleNode",
             tag_name(rules));
        return;
    }
    size_t cnt = (size_t)(rules->data.sequence.items.top - rules->data.sequence.items.start);
    if (!cnt) return;
    g->rules = calloc(cnt, sizeof(*g->rules));
    if (!g->rules) {
        L->oom = true;
        return;
    }
    for (size_t i = 0; i < cnt && !L->oom; i++) {
        load_rule(L, name, i, node_at(L, rules->data.sequence.items.start[i]), &g->rules[i]);
        g->nrules++;
    }
}

void rulefile_free(struct rulefile *f) {
    if (!f) return;
    for (size_t i = 0; i < f->ngroups; i++) {
        struct rulefile_group *g = &f->groups[i];
        free(g->name);
        kv_free(g->labels, g->nlabels);
        for (size_t j = 0; j < g->nrules; j++)
            rule_fini(&g->rules[j]);
        free(g->rules);
    }
    free(f->groups);
    free(f->name);
    free(f);
}

/* Loads into a new rulefile, recording every error in L. Returns the (possibly partial)
 * file, or NULL on OOM / YAML syntax errors. */
static struct rulefile *load(struct loader *L, const char *name, const char *buf, size_t len) {
    yaml_parser_t parser;
    yaml_document_t doc;
    struct rulefile *f = calloc(1, sizeof(*f));
    if (!f || !yaml_parser_initialize(&parser)) {
        free(f);
        L->oom = true;
        return NULL;
    }
    f->name = xstrdup(L, name);
    yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
    if (!yaml_parser_load(&parser, &doc)) {
        /* Go's yaml: "yaml: line N: <problem>" */
        int line = (int)parser.problem_mark.line + 1, col = (int)parser.problem_mark.column + 1;
        if (parser.error == YAML_MEMORY_ERROR)
            L->oom = true;
        else
            lerr(L, line, col, "yaml: line %d: %s%s%s", line, parser.context ? parser.context : "",
                 parser.context ? " " : "", parser.problem ? parser.problem : "syntax error");
        yaml_parser_delete(&parser);
        return f;
    }
    L->doc = &doc;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && !is_null(root)) {
        if (root->type != YAML_MAPPING_NODE) {
            lerr(L, nline(root), ncol(root), "cannot unmarshal %s into rulefmt.RuleGroups",
                 tag_name(root));
        } else {
            struct kv pairs[16];
            size_t np = flatten(L, root, pairs, 0, 16, 0, true);
            yaml_node_t *groups = NULL;
            for (size_t i = 0; i < np; i++) {
                if (strcmp(pairs[i].key, "groups") == 0)
                    groups = pairs[i].vn;
                else
                    unknown_field(L, &pairs[i], "rulefmt.RuleGroups");
            }
            if (groups && !is_null(groups) && groups->type != YAML_SEQUENCE_NODE)
                lerr(L, nline(groups), ncol(groups), "cannot unmarshal %s into []rulefmt.RuleGroup",
                     tag_name(groups));
            else if (groups && !is_null(groups)) {
                size_t cnt =
                    (size_t)(groups->data.sequence.items.top - groups->data.sequence.items.start);
                f->groups = cnt ? calloc(cnt, sizeof(*f->groups)) : NULL;
                if (cnt && !f->groups) L->oom = true;
                for (size_t i = 0; i < cnt && !L->oom; i++) {
                    load_group(L, node_at(L, groups->data.sequence.items.start[i]), &f->groups[i],
                               f, i);
                    f->ngroups++;
                    f->nrules += f->groups[i].nrules;
                }
            }
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    L->doc = NULL;
    return f;
}

static const struct rulefile_opts default_opts = {0};

struct rulefile *rulefile_load(const char *name, const char *buf, size_t len,
                               const struct rulefile_opts *o, struct perr *err) {
    struct loader L = {.o = o ? o : &default_opts, .fname = name ? name : ""};
    rbuf_init(&L.report);
    struct rulefile *f = load(&L, L.fname, buf, len);
    rbuf_fini(&L.report);
    if (L.oom || !f) {
        rulefile_free(f);
        perr_set(err, 0, 0, "out of memory");
        return NULL;
    }
    if (L.nerr) {
        rulefile_free(f);
        if (err) *err = L.first;
        return NULL;
    }
    return f;
}

/* One rule's identity for promtool's duplicate-rules lint: name and labels (sorted). */
struct dupkey {
    const char *metric;
    struct re_label l[64];
    size_t n;
};

static int dupkey_cmp(const void *a, const void *b) {
    const struct dupkey *x = a, *y = b;
    int c = strcmp(x->metric, y->metric);
    if (c) return c;
    size_t n = x->n < y->n ? x->n : y->n;
    for (size_t i = 0; i < n; i++) {
        if ((c = strcmp(x->l[i].name, y->l[i].name)) || (c = strcmp(x->l[i].value, y->l[i].value)))
            return c;
    }
    return x->n < y->n ? -1 : x->n > y->n;
}

/* promtool's default lint (checkDuplicates): rules with the same name and labels. Appends its
 * report to out; returns the number of duplicates (0: nothing appended). */
static size_t lint_duplicates(const struct rulefile *f, struct rbuf *out) {
    if (f->nrules < 2) return 0;
    struct dupkey *k = calloc(f->nrules, sizeof(*k));
    if (!k) {
        out->oom = true;
        return 0;
    }
    size_t n = 0;
    for (size_t g = 0; g < f->ngroups; g++)
        for (size_t r = 0; r < f->groups[g].nrules; r++) {
            const struct rulefile_rule *rr = &f->groups[g].rules[r];
            struct dupkey *d = &k[n++];
            d->metric = rr->name;
            const struct rulefile_kv *sets[2] = {f->groups[g].labels, rr->labels};
            size_t ns[2] = {f->groups[g].nlabels, rr->nlabels};
            for (int s = 0; s < 2; s++)
                for (size_t i = 0; i < ns[s]; i++) {
                    size_t q;
                    for (q = 0; q < d->n; q++)
                        if (strcmp(d->l[q].name, sets[s][i].name) == 0) break;
                    if (q == d->n && d->n == 64) continue;
                    d->l[q].name = sets[s][i].name;
                    d->l[q].value = sets[s][i].value;
                    if (q == d->n) d->n++;
                }
            for (size_t i = 1; i < d->n; i++)
                for (size_t j = i; j > 0 && strcmp(d->l[j - 1].name, d->l[j].name) > 0; j--) {
                    struct re_label t = d->l[j];
                    d->l[j] = d->l[j - 1];
                    d->l[j - 1] = t;
                }
        }
    if (n > 1) qsort(k, n, sizeof(*k), dupkey_cmp);
    size_t dups = 0;
    struct rbuf body;
    rbuf_init(&body);
    const struct dupkey *lastdup = NULL;
    for (size_t i = 1; i < n; i++) {
        /* each duplicated name+labels is reported once */
        if (dupkey_cmp(&k[i - 1], &k[i]) != 0 || (lastdup && dupkey_cmp(lastdup, &k[i]) == 0))
            continue;
        lastdup = &k[i];
        dups++;
        rbuf_printf(&body, "Metric: %s\nLabel(s):\n", k[i].metric);
        for (size_t j = 0; j < k[i].n; j++)
            rbuf_printf(&body, "\t%s: %s\n", k[i].l[j].name, k[i].l[j].value);
    }
    if (dups) {
        rbuf_printf(out, "  FAILED:\nlint error %zu duplicate rule(s) found.\n", dups);
        if (body.p) rbuf_put(out, body.p, body.len);
        rbuf_puts(out, "Might cause inconsistency while recording expressions\n");
    }
    if (body.oom) out->oom = true;
    rbuf_fini(&body);
    free(k);
    return dups;
}

char *rulefile_check(const char *name, const char *buf, size_t len, const struct rulefile_opts *o,
                     bool *failed) {
    struct loader L = {.o = o ? o : &default_opts, .fname = name ? name : ""};
    rbuf_init(&L.report);
    struct rulefile *f = load(&L, L.fname, buf, len);
    struct rbuf out;
    rbuf_init(&out);
    rbuf_printf(&out, "Checking %s\n", L.fname);
    if (L.oom || !f) {
        rulefile_free(f);
        rbuf_fini(&L.report);
        rbuf_fini(&out);
        return NULL;
    }
    *failed = L.nerr > 0;
    if (L.nerr) {
        rbuf_puts(&out, "  FAILED:\n");
        if (L.report.p) rbuf_put(&out, L.report.p, L.report.len);
        if (L.nerr > RF_MAX_ERRORS)
            rbuf_printf(&out, "%s: %d more errors\n", L.fname, L.nerr - RF_MAX_ERRORS);
    } else if (lint_duplicates(f, &out) == 0) {
        /* a lint finding replaces the SUCCESS line but is not fatal (promtool without
         * --lint-fatal exits 0) */
        rbuf_printf(&out, "  SUCCESS: %zu rules found\n", f->nrules);
    }
    rbuf_putc(&out, '\n');
    rulefile_free(f);
    rbuf_fini(&L.report);
    return rbuf_take(&out);
}
