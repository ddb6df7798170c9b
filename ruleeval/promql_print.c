/* SPDX-License-Identifier: Apache-2.0 */
/* Canonical text of a PromQL AST, as Prometheus's String() prints it. */
#include "promql_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct sb {
    char *p;
    size_t n, cap;
    bool oom;
};

static void sb_add(struct sb *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = (b->cap ? b->cap * 2 : 64) + n;
        char *np = realloc(b->p, nc);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static void sb_puts(struct sb *b, const char *s) {
    sb_add(b, s, strlen(s));
}

static void sb_printf(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct sb *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    sb_puts(b, tmp);
}

/* Go strconv.Quote for ASCII/UTF-8 text. */
static void sb_quote(struct sb *b, const char *s) {
    sb_add(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            sb_puts(b, "\\\"");
            break;
        case '\\':
            sb_puts(b, "\\\\");
            break;
        case '\n':
            sb_puts(b, "\\n");
            break;
        case '\t':
            sb_puts(b, "\\t");
            break;
        case '\r':
            sb_puts(b, "\\r");
            break;
        case '\a':
            sb_puts(b, "\\a");
            break;
        case '\b':
            sb_puts(b, "\\b");
            break;
        case '\f':
            sb_puts(b, "\\f");
            break;
        case '\v':
            sb_puts(b, "\\v");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                sb_printf(b, "\\x%02x", *p);
            } else if (*p < 0x80) {
                sb_add(b, (const char *)p, 1);
            } else {
                size_t n = (*p & 0xe0) == 0xc0   ? 2
                           : (*p & 0xf0) == 0xe0 ? 3
                           : (*p & 0xf8) == 0xf0 ? 4
                                                 : 0;
                size_t avail = strnlen((const char *)p, 4);
                if (n && n <= avail && re_valid_utf8((const char *)p, n)) {
                    sb_add(b, (const char *)p, n);
                    p += n - 1;
                } else {
                    sb_printf(b, "\\x%02x", *p);
                }
            }
        }
    }
    sb_add(b, "\"", 1);
}

/* Go's fmt %v for float64: shortest round-trip digits, exponent form when exp < -4 || >= 6. */
static void fmt_go_float(double v, char *buf, size_t len) {
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char e[40];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    int exp10 = atoi(strchr(e, 'e') + 1);
    if (exp10 < -4 || exp10 >= 6) {
        /* Go prints at least two exponent digits, like C */
        char mant[40];
        snprintf(mant, sizeof(mant), "%.*e", prec - 1, v);
        snprintf(buf, len, "%s", mant);
        return;
    }
    int dec = prec - 1 - exp10;
    snprintf(buf, len, "%.*f", dec > 0 ? dec : 0, v);
}

static void print_lname(struct sb *b, const char *n) {
    if (re_valid_label_name(n, strlen(n)))
        sb_puts(b, n);
    else
        sb_quote(b, n);
}

static void print_labels(struct sb *b, char **l, size_t n) {
    sb_puts(b, "(");
    for (size_t i = 0; i < n; i++) {
        if (i) sb_puts(b, ", ");
        print_lname(b, l[i]);
    }
    sb_puts(b, ")");
}

/* `@` before `offset`, whichever order the source wrote them in (printer.go). */
static void print_mods(struct sb *b, const struct promql_expr *e) {
    char d[40];
    if (e->at_kind == PQ_AT_TS)
        sb_printf(b, " @ %.3f", (double)e->at / 1000.0);
    else if (e->at_kind == PQ_AT_START)
        sb_puts(b, " @ start()");
    else if (e->at_kind == PQ_AT_END)
        sb_puts(b, " @ end()");
    if (e->offset) {
        pq_fmt_duration(e->offset, d, sizeof(d));
        sb_printf(b, " offset %s", d);
    }
}

/* Names the lexer would not read back as a metric name. */
static bool is_keyword(const char *n) {
    static const char *const kw[] = {
        "by",     "without", "on",      "ignoring", "group_left",  "group_right", "bool",
        "offset", "and",     "or",      "unless",   "atan2",       "inf",         "nan",
        "sum",    "avg",     "min",     "max",      "count",       "group",       "stddev",
        "stdvar", "topk",    "bottomk", "quantile", "count_values"};
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (!strcasecmp(n, kw[i])) return true;
    return false;
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void print_sel(struct sb *b, const struct promql_expr *e) {
    size_t shown = 0;
    bool legacy = e->name && re_valid_metric_name(e->name, strlen(e->name)) && !is_keyword(e->name);
    if (legacy) {
        sb_puts(b, e->name);
    } else if (e->name) {
        sb_puts(b, "{");
        sb_quote(b, e->name);
        shown++;
    }
    /* printer.go sorts the matchers' texts (sort.Strings: bytewise) */
    char **txt = e->nm ? calloc(e->nm, sizeof(*txt)) : NULL;
    size_t nt = 0;
    if (e->nm && !txt) b->oom = true;
    for (size_t i = 0; txt && i < e->nm; i++) {
        const struct re_matcher *m = &e->m[i];
        if (e->name && m->type == RE_MATCH_EQ && !strcmp(m->name, "__name__") &&
            !strcmp(m->value, e->name))
            continue;
        static const char *ops[] = {"=", "!=", "=~", "!~"};
        struct sb one = {0};
        print_lname(&one, m->name);
        sb_puts(&one, ops[m->type]);
        sb_quote(&one, m->value);
        if (one.oom || !one.p) {
            free(one.p);
            b->oom = true;
            break;
        }
        txt[nt++] = one.p;
    }
    if (nt > 1) qsort(txt, nt, sizeof(*txt), str_cmp);
    for (size_t i = 0; i < nt; i++) {
        sb_puts(b, shown++ ? "," : "{");
        sb_puts(b, txt[i]);
        free(txt[i]);
    }
    free(txt);
    if (shown)
        sb_puts(b, "}");
    else if (!e->name)
        sb_puts(b, "{}");
}

static void print(struct sb *b, const struct promql_expr *e) {
    char d[40], d2[40];
    for (unsigned i = 0; i < e->plus; i++)
        sb_puts(b, "+");
    switch (e->kind) {
    case PQ_NUM:
        fmt_go_float(e->num, d, sizeof(d));
        sb_puts(b, d);
        break;
    case PQ_STR:
        sb_quote(b, e->str);
        break;
    case PQ_VSEL:
        print_sel(b, e);
        print_mods(b, e);
        break;
    case PQ_MSEL:
        print_sel(b, e->a);
        pq_fmt_duration(e->range, d, sizeof(d));
        sb_printf(b, "[%s]", d);
        print_mods(b, e->a);
        break;
    case PQ_SUBQ:
        print(b, e->a);
        pq_fmt_duration(e->range, d, sizeof(d));
        if (e->step)
            pq_fmt_duration(e->step, d2, sizeof(d2));
        else
            d2[0] = 0;
        sb_printf(b, "[%s:%s]", d, d2);
        print_mods(b, e);
        break;
    case PQ_PAREN:
        sb_puts(b, "(");
        print(b, e->a);
        sb_puts(b, ")");
        break;
    case PQ_UNARY:
        sb_puts(b, "-");
        print(b, e->a);
        break;
    case PQ_BIN:
        print(b, e->a);
        sb_printf(b, " %s", pq_op_str(e->op));
        if (e->bool_mod) sb_puts(b, " bool");
        /* printer.go prints matching only for on(...) or a non-empty ignoring(...): an
         * empty ignoring() drops out together with its group_left/group_right */
        if (e->has_matching && (e->on || e->nmlabels)) {
            sb_puts(b, e->on ? " on " : " ignoring ");
            print_labels(b, e->mlabels, e->nmlabels);
            if (e->card == PQ_MANY_ONE || e->card == PQ_ONE_MANY) {
                sb_puts(b, e->card == PQ_MANY_ONE ? " group_left " : " group_right ");
                print_labels(b, e->include, e->ninclude);
            }
        }
        sb_puts(b, " ");
        print(b, e->b);
        break;
    case PQ_AGG:
        sb_puts(b, pq_agg_str(e->agg));
        if (e->without) {
            sb_puts(b, " without ");
            print_labels(b, e->grouping, e->ngrouping);
            sb_puts(b, " ");
        } else if (e->ngrouping) {
            sb_puts(b, " by ");
            print_labels(b, e->grouping, e->ngrouping);
            sb_puts(b, " ");
        }
        sb_puts(b, "(");
        if (e->param) {
            print(b, e->param);
            sb_puts(b, ", ");
        }
        print(b, e->a);
        sb_puts(b, ")");
        break;
    case PQ_CALL:
        sb_puts(b, e->fn->name);
        sb_puts(b, "(");
        for (size_t i = 0; i < e->nargs; i++) {
            if (i) sb_puts(b, ", ");
            print(b, e->args[i]);
        }
        sb_puts(b, ")");
        break;
    }
}

char *promql_expr_string(const struct promql_expr *e) {
    struct sb b = {0};
    print(&b, e);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    if (!b.p) return strdup("");
    return b.p;
}
