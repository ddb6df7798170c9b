/* SPDX-License-Identifier: Apache-2.0 */
/* PromQL lexer and recursive-descent parser with Prometheus-compatible error positions. */
#include "promql_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_DEPTH 256
#define MAX_HEIGHT 2048

/* ---- function table ------------------------------------------------------------------- */

#define V PROMQL_VECTOR
#define M PROMQL_MATRIX
#define S PROMQL_SCALAR
#define T PROMQL_STRING
static const struct pq_func funcs[] = {
    {"rate", 1, 0, V, {M}, F_RATE, 0},
    {"irate", 1, 0, V, {M}, F_IRATE, 0},
    {"increase", 1, 0, V, {M}, F_INCREASE, 0},
    {"delta", 1, 0, V, {M}, F_DELTA, 0},
    {"idelta", 1, 0, V, {M}, F_IDELTA, 0},
    {"deriv", 1, 0, V, {M}, F_DERIV, 0},
    {"predict_linear", 2, 0, V, {M, S}, F_PREDICT_LINEAR, 0},
    {"resets", 1, 0, V, {M}, F_RESETS, 0},
    {"changes", 1, 0, V, {M}, F_CHANGES, 0},
    {"avg_over_time", 1, 0, V, {M}, F_AVG_OT, 0},
    {"min_over_time", 1, 0, V, {M}, F_MIN_OT, 0},
    {"max_over_time", 1, 0, V, {M}, F_MAX_OT, 0},
    {"sum_over_time", 1, 0, V, {M}, F_SUM_OT, 0},
    {"count_over_time", 1, 0, V, {M}, F_COUNT_OT, 0},
    {"last_over_time", 1, 0, V, {M}, F_LAST_OT, 0},
    {"first_over_time", 1, 0, V, {M}, F_FIRST_OT, PQ_FN_V3},
    {"present_over_time", 1, 0, V, {M}, F_PRESENT_OT, 0},
    {"quantile_over_time", 2, 0, V, {S, M}, F_QUANTILE_OT, 0},
    {"stddev_over_time", 1, 0, V, {M}, F_STDDEV_OT, 0},
    {"stdvar_over_time", 1, 0, V, {M}, F_STDVAR_OT, 0},
    {"mad_over_time", 1, 0, V, {M}, F_MAD_OT, PQ_FN_V3},
    {"absent_over_time", 1, 0, V, {M}, F_ABSENT_OT, 0},
    {"ts_of_min_over_time", 1, 0, V, {M}, F_TS_MIN_OT, PQ_FN_V3},
    {"ts_of_max_over_time", 1, 0, V, {M}, F_TS_MAX_OT, PQ_FN_V3},
    {"ts_of_last_over_time", 1, 0, V, {M}, F_TS_LAST_OT, PQ_FN_V3},
    {"ts_of_first_over_time", 1, 0, V, {M}, F_TS_FIRST_OT, PQ_FN_V3},
    {"double_exponential_smoothing", 3, 0, V, {M, S, S}, F_DES, PQ_FN_V3},
    {"holt_winters", 3, 0, V, {M, S, S}, F_DES, PQ_FN_V2}, /* its 2.x name */
    {"abs", 1, 0, V, {V}, F_ABS, 0},
    {"ceil", 1, 0, V, {V}, F_CEIL, 0},
    {"floor", 1, 0, V, {V}, F_FLOOR, 0},
    {"round", 1, 1, V, {V, S}, F_ROUND, 0},
    {"clamp", 3, 0, V, {V, S, S}, F_CLAMP, 0},
    {"clamp_min", 2, 0, V, {V, S}, F_CLAMP_MIN, 0},
    {"clamp_max", 2, 0, V, {V, S}, F_CLAMP_MAX, 0},
    {"exp", 1, 0, V, {V}, F_EXP, 0},
    {"ln", 1, 0, V, {V}, F_LN, 0},
    {"log2", 1, 0, V, {V}, F_LOG2, 0},
    {"log10", 1, 0, V, {V}, F_LOG10, 0},
    {"sqrt", 1, 0, V, {V}, F_SQRT, 0},
    {"sgn", 1, 0, V, {V}, F_SGN, 0},
    {"acos", 1, 0, V, {V}, F_ACOS, 0},
    {"acosh", 1, 0, V, {V}, F_ACOSH, 0},
    {"asin", 1, 0, V, {V}, F_ASIN, 0},
    {"asinh", 1, 0, V, {V}, F_ASINH, 0},
    {"atan", 1, 0, V, {V}, F_ATAN, 0},
    {"atanh", 1, 0, V, {V}, F_ATANH, 0},
    {"cos", 1, 0, V, {V}, F_COS, 0},
    {"cosh", 1, 0, V, {V}, F_COSH, 0},
    {"sin", 1, 0, V, {V}, F_SIN, 0},
    {"sinh", 1, 0, V, {V}, F_SINH, 0},
    {"tan", 1, 0, V, {V}, F_TAN, 0},
    {"tanh", 1, 0, V, {V}, F_TANH, 0},
    {"deg", 1, 0, V, {V}, F_DEG, 0},
    {"rad", 1, 0, V, {V}, F_RAD, 0},
    {"pi", 0, 0, S, {S}, F_PI, 0},
    {"min_of", 2, 0, S, {S, S}, F_MIN_OF, PQ_FN_V3},
    {"max_of", 2, 0, S, {S, S}, F_MAX_OF, PQ_FN_V3},
    {"timestamp", 1, 0, V, {V}, F_TIMESTAMP, 0},
    {"time", 0, 0, S, {S}, F_TIME, 0},
    {"vector", 1, 0, V, {S}, F_VECTOR, 0},
    {"scalar", 1, 0, S, {V}, F_SCALAR, 0},
    {"absent", 1, 0, V, {V}, F_ABSENT, 0},
    {"label_replace", 5, 0, V, {V, T, T, T}, F_LABEL_REPLACE, 0},
    {"label_join", 3, -1, V, {V, T, T, T}, F_LABEL_JOIN, 0},
    {"sort", 1, 0, V, {V}, F_SORT, 0},
    {"sort_desc", 1, 0, V, {V}, F_SORT_DESC, 0},
    {"sort_by_label", 1, -1, V, {V, T}, F_SORT_BY_LABEL, PQ_FN_V3},
    {"sort_by_label_desc", 1, -1, V, {V, T}, F_SORT_BY_LABEL_DESC, PQ_FN_V3},
    {"histogram_quantile", 2, 0, V, {S, V}, F_HQUANTILE, 0},
    {"histogram_count", 1, 0, V, {V}, F_HCOUNT, 0},
    {"histogram_sum", 1, 0, V, {V}, F_HSUM, 0},
    {"histogram_avg", 1, 0, V, {V}, F_HAVG, PQ_FN_V3},
    {"histogram_stddev", 1, 0, V, {V}, F_HSTDDEV, PQ_FN_V3},
    {"histogram_stdvar", 1, 0, V, {V}, F_HSTDVAR, PQ_FN_V3},
    {"histogram_fraction", 3, 0, V, {S, S, V}, F_HFRACTION, 0},
    {"histogram_quantiles", 3, 9, V, {V, T, S, S}, F_HQUANTILES, PQ_FN_V3},
    {"days_in_month", 0, 1, V, {V}, F_DAYS_IN_MONTH, 0},
    {"day_of_month", 0, 1, V, {V}, F_DAY_OF_MONTH, 0},
    {"day_of_week", 0, 1, V, {V}, F_DAY_OF_WEEK, 0},
    {"day_of_year", 0, 1, V, {V}, F_DAY_OF_YEAR, 0},
    {"hour", 0, 1, V, {V}, F_HOUR, 0},
    {"minute", 0, 1, V, {V}, F_MINUTE, 0},
    {"month", 0, 1, V, {V}, F_MONTH, 0},
    {"year", 0, 1, V, {V}, F_YEAR, 0},
    {"start", 0, 0, S, {S}, F_START, PQ_FN_V3},
    {"end", 0, 0, S, {S}, F_END, PQ_FN_V3},
    {"step", 0, 0, S, {S}, F_STEP, PQ_FN_V3},
    {"range", 0, 0, S, {S}, F_RANGE, PQ_FN_V3},
};
#undef V
#undef M
#undef S
#undef T

const struct pq_func *pq_func_lookup(const char *name, bool v2) {
    for (size_t i = 0; i < sizeof(funcs) / sizeof(funcs[0]); i++)
        if (strcmp(funcs[i].name, name) == 0 && funcs[i].only != (v2 ? PQ_FN_V3 : PQ_FN_V2))
            return &funcs[i];
    return NULL;
}

static const char *agg_names[] = {"sum",   "avg",     "min",      "max",
                                  "count", "group",   "stddev",   "stdvar",
                                  "topk",  "bottomk", "quantile", "count_values"};

const char *pq_agg_str(enum pq_agg a) {
    return agg_names[a];
}

const char *pq_op_str(enum pq_op op) {
    switch (op) {
    case PQ_ADD:
        return "+";
    case PQ_SUB:
        return "-";
    case PQ_MUL:
        return "*";
    case PQ_DIV:
        return "/";
    case PQ_MOD:
        return "%";
    case PQ_POW:
        return "^";
    case PQ_ATAN2:
        return "atan2";
    case PQ_EQLC:
        return "==";
    case PQ_NEQ:
        return "!=";
    case PQ_GTR:
        return ">";
    case PQ_LSS:
        return "<";
    case PQ_GTE:
        return ">=";
    case PQ_LTE:
        return "<=";
    case PQ_LAND:
        return "and";
    case PQ_LOR:
        return "or";
    case PQ_LUNLESS:
        return "unless";
    default:
        return "?";
    }
}

/* ---- durations -------------------------------------------------------------------------- */

/* Parses a duration at s; sets *end past it. Returns 0 or -EINVAL. */
static int parse_dur_prefix(const char *s, const char **end, int64_t *ms) {
    static const struct {
        const char *u;
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    const char *p = s;
    int last = -1;
    int64_t total = 0;
    if (*p == '0' && !isalnum((unsigned char)p[1]) && p[1] != '.') {
        *end = p + 1;
        *ms = 0;
        return 0;
    }
    while (isdigit((unsigned char)*p)) {
        int64_t n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n > INT64_MAX / 10 - 10) return -EINVAL;
            n = n * 10 + (*p++ - '0');
        }
        int u = -1;
        if (p[0] == 'm' && p[1] == 's')
            u = 6;
        else
            for (int i = 0; i < 6; i++)
                if (*p == units[i].u[0]) u = i;
        if (u < 0 || u <= last) return -EINVAL;
        p += strlen(units[u].u);
        last = u;
        if (n != 0 && units[u].ms > INT64_MAX / n) return -EINVAL;
        total += n * units[u].ms;
        if (total < 0) return -EINVAL;
    }
    if (last < 0) return -EINVAL;
    *end = p;
    *ms = total;
    return 0;
}

int promql_parse_duration(const char *s, int64_t *ms) {
    const char *end;
    if (!s || parse_dur_prefix(s, &end, ms) < 0 || *end) return -EINVAL;
    return 0;
}

void pq_fmt_duration(int64_t ms, char *buf, size_t len) {
    static const struct {
        char u[3];
        int64_t ms;
    } units[] = {{"y", 365LL * 86400000},
                 {"w", 7LL * 86400000},
                 {"d", 86400000},
                 {"h", 3600000},
                 {"m", 60000},
                 {"s", 1000},
                 {"ms", 1}};
    size_t o = 0;
    buf[0] = 0;
    if (ms == 0) {
        snprintf(buf, len, "0s");
        return;
    }
    if (ms < 0) {
        o += (size_t)snprintf(buf, len, "-");
        ms = -ms;
    }
    for (int i = 0; i < 7 && o < len; i++) {
        if (ms >= units[i].ms) {
            o += (size_t)snprintf(buf + o, len - o, "%lld%s", (long long)(ms / units[i].ms),
                                  units[i].u);
            ms %= units[i].ms;
        }
    }
}

void pq_fmt_float(double v, char *buf, size_t len) {
    if (isnan(v)) {
        snprintf(buf, len, "NaN");
        return;
    }
    if (isinf(v)) {
        snprintf(buf, len, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    /* Go's FormatFloat(v, 'f', -1, 64): the shortest digits that read back as v, written
     * out in full (1e-300 has 300 zeros, 1.7e308 is 17 then zeros, not printf's exact
     * binary expansion). */
    char e[40];
    for (int prec = 0; prec <= 16; prec++) {
        snprintf(e, sizeof(e), "%.*e", prec, v);
        if (strtod(e, NULL) == v) break;
    }
    char dig[24];
    size_t nd = 0;
    const char *q = e;
    bool neg = *q == '-';
    if (neg) q++;
    for (; *q && *q != 'e'; q++)
        if (isdigit((unsigned char)*q) && nd < sizeof(dig)) dig[nd++] = *q;
    int x = *q ? atoi(q + 1) : 0; /* the first digit's power of ten */
    while (nd > 1 && dig[nd - 1] == '0')
        nd--;
    if (v == 0) nd = 1;
    size_t n = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 < len) buf[n++] = (c);                                                           \
    } while (0)
    if (neg) PUT('-');
    if (x < 0) {
        PUT('0');
        PUT('.');
        for (int i = -1; i > x; i--)
            PUT('0');
        for (size_t i = 0; i < nd; i++)
            PUT(dig[i]);
    } else {
        for (int i = 0; i <= x; i++)
            PUT((size_t)i < nd ? dig[i] : '0');
        if (nd > (size_t)x + 1) {
            PUT('.');
            for (size_t i = (size_t)x + 1; i < nd; i++)
                PUT(dig[i]);
        }
    }
#undef PUT
    if (len) buf[n] = 0;
}

/* ---- lexer ------------------------------------------------------------------------------ */

enum tok {
    T_EOF,
    T_ERR,
    T_NUM,
    T_DUR,
    T_STR,
    T_IDENT,
    T_LP,
    T_RP,
    T_LB,
    T_RB,
    T_LBK,
    T_RBK,
    T_COMMA,
    T_COLON,
    T_AT,
    T_ASSIGN,
    T_EQLRE,
    T_NEQRE,
    T_OP,
};

struct tokv {
    enum tok t;
    int pos, end;
    double num;
    int64_t dur;
    enum pq_op op;
    char *s; /* ident or unquoted string (owned by lexer, copied on use) */
};

struct parser {
    const char *src;
    int p;
    struct tokv cur;
    bool have;
    struct perr *err;
    bool failed;
    int depth;
    int brack;  /* inside [...]: ':' is the subquery separator */
    bool v2;    /* Prometheus 2.42's language: its function set, no quoted label names */
    int parens; /* open "(" lexed so far */
    char sbuf[16];
    char qbuf[64];
    char dbuf[80];
};

static void perrf(struct parser *ps, int pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void pos_to_lc(const char *src, int pos, int *line, int *col) {
    int l = 1, c = 1;
    for (int i = 0; i < pos && src[i]; i++) {
        if (src[i] == '\n') {
            l++;
            c = 1;
        } else {
            c++;
        }
    }
    *line = l;
    *col = c;
}

static void perrf(struct parser *ps, int pos, const char *fmt, ...) {
    if (ps->failed) return;
    ps->failed = true;
    if (!ps->err) return;
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    int l, c;
    pos_to_lc(ps->src, pos, &l, &c);
    perr_set(ps->err, l, c, "parse error: %s", msg);
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Lexes a quoted string starting at src[p] (the quote). Returns new string or NULL. */
static char *lex_string(struct parser *ps, int *pp) {
    const char *s = ps->src;
    int p = *pp;
    char q = s[p++];
    size_t cap = strlen(s + p) * 4 + 8;
    char *o = malloc(cap);
    size_t n = 0;
    if (!o) {
        perrf(ps, p, "out of memory");
        return NULL;
    }
    for (;;) {
        char c = s[p];
        if (!c || (c == '\n' && q != '`')) {
            perrf(ps, *pp, "unterminated quoted string");
            free(o);
            return NULL;
        }
        p++;
        if (c == q) break;
        if (c == '\\' && q != '`') {
            char e = s[p++];
            switch (e) {
            case 'a':
                o[n++] = '\a';
                break;
            case 'b':
                o[n++] = '\b';
                break;
            case 'f':
                o[n++] = '\f';
                break;
            case 'n':
                o[n++] = '\n';
                break;
            case 'r':
                o[n++] = '\r';
                break;
            case 't':
                o[n++] = '\t';
                break;
            case 'v':
                o[n++] = '\v';
                break;
            case '\\':
                o[n++] = '\\';
                break;
            case '\'':
            case '"':
                if (e != q) {
                    perrf(ps, p - 2, "unknown escape sequence");
                    free(o);
                    return NULL;
                }
                o[n++] = e;
                break;
            case 'x':
            case 'u':
            case 'U': {
                int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                uint32_t v = 0;
                for (int i = 0; i < nd; i++) {
                    int h = hexval((unsigned char)s[p]);
                    if (h < 0) {
                        perrf(ps, p, "invalid escape sequence");
                        free(o);
                        return NULL;
                    }
                    v = v * 16 + (uint32_t)h;
                    p++;
                }
                if (e == 'x')
                    o[n++] = (char)v;
                else
                    n += put_utf8(o + n, v);
                break;
            }
            default:
                if (e >= '0' && e <= '7') {
                    uint32_t v = (uint32_t)(e - '0');
                    for (int i = 0; i < 2; i++) {
                        if (s[p] < '0' || s[p] > '7') {
                            perrf(ps, p, "invalid escape sequence");
                            free(o);
                            return NULL;
                        }
                        v = v * 8 + (uint32_t)(s[p++] - '0');
                    }
                    o[n++] = (char)v;
                    break;
                }
                perrf(ps, p - 2, "unknown escape sequence U+%04X", (unsigned)(unsigned char)e);
                free(o);
                return NULL;
            }
            continue;
        }
        o[n++] = c;
    }
    o[n] = 0;
    if (!re_valid_utf8(s + *pp, (size_t)(p - *pp))) {
        perrf(ps, *pp, "invalid UTF-8 rune");
        free(o);
        return NULL;
    }
    *pp = p;
    return o;
}

static bool is_ident_start(int c) {
    return isalpha(c) || c == '_' || c == ':';
}
static bool is_ident_char(int c) {
    return isalnum(c) || c == '_' || c == ':';
}

static void lex(struct parser *ps, struct tokv *t) {
    const char *s = ps->src;
    int p = ps->p;
    memset(t, 0, sizeof(*t));
    for (;;) {
        while (s[p] == ' ' || s[p] == '\t' || s[p] == '\n' || s[p] == '\r')
            p++;
        if (s[p] == '#') {
            while (s[p] && s[p] != '\n')
                p++;
            continue;
        }
        break;
    }
    t->pos = p;
    char c = s[p];
    if (!c) {
        t->t = T_EOF;
        t->end = p;
        ps->p = p;
        return;
    }
    if (isdigit((unsigned char)c) || (c == '.' && isdigit((unsigned char)s[p + 1]))) {
        /* duration first */
        const char *dend;
        int64_t d;
        if (isdigit((unsigned char)c) && parse_dur_prefix(s + p, &dend, &d) == 0 &&
            !(dend == s + p + 1 && c == '0') && !isalnum((unsigned char)*dend) && *dend != '_' &&
            *dend != '.') {
            t->t = T_DUR;
            t->dur = d;
            p = (int)(dend - s);
        } else {
            char *e;
            double v;
            if (c == '0' && (s[p + 1] == 'x' || s[p + 1] == 'X')) {
                v = (double)strtoull(s + p, &e, 16);
            } else {
                /* decimal only: strtod would accept hex floats and inf/nan */
                int q = p;
                while (isdigit((unsigned char)s[q]))
                    q++;
                if (s[q] == '.')
                    for (q++; isdigit((unsigned char)s[q]); q++)
                        ;
                if ((s[q] == 'e' || s[q] == 'E') &&
                    (isdigit((unsigned char)s[q + 1]) ||
                     ((s[q + 1] == '+' || s[q + 1] == '-') && isdigit((unsigned char)s[q + 2])))) {
                    q += 2;
                    while (isdigit((unsigned char)s[q]))
                        q++;
                }
                char tmp[128];
                int n = q - p < 127 ? q - p : 127;
                memcpy(tmp, s + p, (size_t)n);
                tmp[n] = 0;
                v = strtod(tmp, NULL);
                /* Prometheus tries strconv.ParseInt(val, 0, 64) first: a leading 0 makes
                 * an all-octal-digit integer octal (017 is 15; 08 falls back to 8) */
                if (tmp[0] == '0' && n > 1 && n < 23 && strspn(tmp, "01234567") == (size_t)n)
                    v = (double)strtoull(tmp, NULL, 8);
                e = (char *)s + q;
            }
            if (isalnum((unsigned char)*e) || *e == '_' || *e == '.') {
                t->t = T_ERR;
                perrf(ps, p, "bad number or duration syntax: \"%.*s\"", (int)(e - (s + p) + 1),
                      s + p);
                return;
            }
            t->t = T_NUM;
            t->num = v;
            p = (int)(e - s);
        }
        t->end = p;
        ps->p = p;
        return;
    }
    if (c == ':' && ps->brack > 0) {
        t->t = T_COLON;
        t->end = p + 1;
        ps->p = p + 1;
        return;
    }
    if (is_ident_start((unsigned char)c)) {
        int q = p;
        while (is_ident_char((unsigned char)s[q]))
            q++;
        t->t = T_IDENT;
        t->s = strndup(s + p, (size_t)(q - p));
        if (!t->s) {
            t->t = T_ERR;
            perrf(ps, p, "out of memory");
        }
        t->end = q;
        ps->p = q;
        return;
    }
    if (c == '"' || c == '\'' || c == '`') {
        int q = p;
        t->s = lex_string(ps, &q);
        t->t = t->s ? T_STR : T_ERR;
        t->end = q;
        ps->p = q;
        return;
    }
    int n = 1;
    t->t = T_OP;
    switch (c) {
    case '(':
        t->t = T_LP;
        break;
    case ')':
        t->t = T_RP;
        break;
    case '{':
        t->t = T_LB;
        break;
    case '}':
        t->t = T_RB;
        break;
    case '[':
        t->t = T_LBK;
        break;
    case ']':
        t->t = T_RBK;
        break;
    case ',':
        t->t = T_COMMA;
        break;
    case ':':
        t->t = T_COLON;
        break;
    case '@':
        t->t = T_AT;
        break;
    case '+':
        t->op = PQ_ADD;
        break;
    case '-':
        t->op = PQ_SUB;
        break;
    case '*':
        t->op = PQ_MUL;
        break;
    case '/':
        t->op = PQ_DIV;
        break;
    case '%':
        t->op = PQ_MOD;
        break;
    case '^':
        t->op = PQ_POW;
        break;
    case '=':
        if (s[p + 1] == '=') {
            t->op = PQ_EQLC;
            n = 2;
        } else if (s[p + 1] == '~') {
            t->t = T_EQLRE;
            n = 2;
        } else {
            t->t = T_ASSIGN;
        }
        break;
    case '!':
        if (s[p + 1] == '=') {
            t->op = PQ_NEQ;
            n = 2;
        } else if (s[p + 1] == '~') {
            t->t = T_NEQRE;
            n = 2;
        } else {
            t->t = T_ERR;
            perrf(ps, p, "unexpected character after '!': %s",
                  s[p + 1] ? (char[]){s[p + 1], 0} : "<eof>");
            return;
        }
        break;
    case '>':
        if (s[p + 1] == '=') {
            t->op = PQ_GTE;
            n = 2;
        } else {
            t->op = PQ_GTR;
        }
        break;
    case '<':
        if (s[p + 1] == '=') {
            t->op = PQ_LTE;
            n = 2;
        } else {
            t->op = PQ_LSS;
        }
        break;
    default:
        t->t = T_ERR;
        perrf(ps, p, "unexpected character: '%c'", c);
        return;
    }
    t->end = p + n;
    ps->p = p + n;
}

static struct tokv *peek(struct parser *ps) {
    if (!ps->have) {
        lex(ps, &ps->cur);
        ps->have = true;
        /* as Prometheus's lexer: the end of input inside parentheses is its own error */
        if (ps->cur.t == T_LP) ps->parens++;
        if (ps->cur.t == T_RP) ps->parens--;
        if (ps->cur.t == T_EOF && ps->parens > 0) {
            ps->cur.t = T_ERR;
            perrf(ps, ps->cur.pos, "unclosed left parenthesis");
        }
    }
    return &ps->cur;
}

static void next(struct parser *ps) {
    peek(ps);
    free(ps->cur.s);
    ps->cur.s = NULL;
    ps->have = false;
}

static bool peek_ident(struct parser *ps, const char *w) {
    struct tokv *t = peek(ps);
    return t->t == T_IDENT && strcasecmp(t->s, w) == 0;
}

/* Go's %q of the source text src[a, b) (a string token with its quotes), for 2.42's
 * messages; the text is cut to fit a message. */
static const char *go_quote(struct parser *ps, int a, int b) {
    char *o = ps->qbuf;
    size_t n = 0, cap = sizeof(ps->qbuf) - 4;
    o[n++] = '"';
    for (int i = a; i < b && n < cap - 2; i++) {
        char c = ps->src[i];
        if (c == '"' || c == '\\') o[n++] = '\\';
        o[n++] = c;
    }
    o[n++] = '"';
    o[n] = 0;
    return o;
}

static const char *tok_desc(struct parser *ps, struct tokv *t) {
    switch (t->t) {
    case T_EOF:
        return "end of input";
    /* Prometheus's Item.desc(): the kind, then the token text as Go's %q */
    case T_NUM:
    case T_DUR:
    case T_STR:
    case T_IDENT:
        snprintf(ps->dbuf, sizeof(ps->dbuf), "%s %s",
                 t->t == T_NUM   ? "number"
                 : t->t == T_DUR ? "duration"
                 : t->t == T_STR ? "string"
                                 : "identifier",
                 go_quote(ps, t->pos, t->end));
        return ps->dbuf;
    case T_LP:
        return "\"(\"";
    case T_RP:
        return "\")\"";
    case T_LB:
        return "\"{\"";
    case T_RB:
        return "\"}\"";
    case T_LBK:
        return "\"[\"";
    case T_RBK:
        return "\"]\"";
    case T_COMMA:
        return "\",\"";
    case T_COLON:
        return "\":\"";
    case T_AT:
        return "\"@\"";
    case T_ASSIGN:
        return "\"=\"";
    case T_EQLRE:
        return "\"=~\"";
    case T_NEQRE:
        return "\"!~\"";
    case T_OP:
        snprintf(ps->sbuf, sizeof(ps->sbuf), "<op:%s>", pq_op_str(t->op));
        return ps->sbuf;
    default:
        return "error";
    }
}

/* ---- AST helpers ------------------------------------------------------------------------ */

static void free_strv(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void promql_free(struct promql_expr *e) {
    if (!e) return;
    free(e->str);
    free(e->src);
    free(e->name);
    for (size_t i = 0; i < e->nm; i++)
        re_matcher_fini(&e->m[i]);
    free(e->m);
    promql_free(e->a);
    promql_free(e->b);
    promql_free(e->param);
    free_strv(e->mlabels, e->nmlabels);
    free_strv(e->include, e->ninclude);
    free_strv(e->grouping, e->ngrouping);
    for (size_t i = 0; i < e->nargs; i++)
        promql_free(e->args[i]);
    free(e->args);
    free(e);
}

static struct promql_expr *node(struct parser *ps, enum pq_kind k, int pos) {
    struct promql_expr *e = calloc(1, sizeof(*e));
    if (!e) {
        perrf(ps, pos, "out of memory");
        return NULL;
    }
    e->kind = k;
    e->pos = pos;
    e->epos = pos;
    return e;
}

enum promql_vtype pq_type(const struct promql_expr *e) {
    switch (e->kind) {
    case PQ_NUM:
        return PROMQL_SCALAR;
    case PQ_STR:
        return PROMQL_STRING;
    case PQ_VSEL:
        return PROMQL_VECTOR;
    case PQ_MSEL:
    case PQ_SUBQ:
        return PROMQL_MATRIX;
    case PQ_PAREN:
    case PQ_UNARY:
        return pq_type(e->a);
    case PQ_BIN:
        return pq_type(e->a) == PROMQL_SCALAR && pq_type(e->b) == PROMQL_SCALAR ? PROMQL_SCALAR
                                                                                : PROMQL_VECTOR;
    case PQ_AGG:
        return PROMQL_VECTOR;
    case PQ_CALL:
        return e->fn->ret;
    }
    return PROMQL_VECTOR;
}

enum promql_vtype promql_expr_type(const struct promql_expr *e) {
    return pq_type(e);
}

static const char *type_name(enum promql_vtype t) {
    switch (t) {
    case PROMQL_SCALAR:
        return "scalar";
    case PROMQL_VECTOR:
        return "instant vector";
    case PROMQL_MATRIX:
        return "range vector";
    default:
        return "string";
    }
}

/* ---- parser ----------------------------------------------------------------------------- */

static struct promql_expr *parse_expr(struct parser *ps, int minprec);

static int max_i(int a, int b) {
    return a > b ? a : b;
}

/* Sets e->height from its children; false (and a parse error) when the tree is too tall. */
static bool set_height(struct parser *ps, struct promql_expr *e) {
    int h = 0;
    if (e->a) h = max_i(h, e->a->height);
    if (e->b) h = max_i(h, e->b->height);
    if (e->param) h = max_i(h, e->param->height);
    for (size_t i = 0; i < e->nargs; i++)
        h = max_i(h, e->args[i]->height);
    e->height = h + 1;
    if (e->height > MAX_HEIGHT) {
        perrf(ps, e->pos, "expression nesting too deep (more than %d levels)", MAX_HEIGHT);
        return false;
    }
    return true;
}

static int prec_of(enum pq_op op) {
    switch (op) {
    case PQ_LOR:
        return 1;
    case PQ_LAND:
    case PQ_LUNLESS:
        return 2;
    case PQ_EQLC:
    case PQ_NEQ:
    case PQ_GTR:
    case PQ_LSS:
    case PQ_GTE:
    case PQ_LTE:
        return 3;
    case PQ_ADD:
    case PQ_SUB:
        return 4;
    case PQ_MUL:
    case PQ_DIV:
    case PQ_MOD:
    case PQ_ATAN2:
        return 5;
    case PQ_POW:
        return 6;
    default:
        return 0;
    }
}

static bool is_cmp(enum pq_op op) {
    return op >= PQ_EQLC && op <= PQ_LTE;
}
static bool is_set(enum pq_op op) {
    return op >= PQ_LAND && op <= PQ_LUNLESS;
}

/* Current token as a binary operator, or PQ_OP_NONE. */
static enum pq_op peek_binop(struct parser *ps) {
    struct tokv *t = peek(ps);
    if (t->t == T_OP) return t->op;
    if (t->t == T_IDENT) {
        if (!strcasecmp(t->s, "and")) return PQ_LAND;
        if (!strcasecmp(t->s, "or")) return PQ_LOR;
        if (!strcasecmp(t->s, "unless")) return PQ_LUNLESS;
        if (!strcasecmp(t->s, "atan2")) return PQ_ATAN2;
    }
    return PQ_OP_NONE;
}

/* Parses "( a, b, ... )" label list. */
static int parse_label_list(struct parser *ps, char ***out, size_t *n) {
    struct tokv *t = peek(ps);
    if (t->t != T_LP) {
        perrf(ps, t->pos, "unexpected %s in grouping opts, expected \"(\"", tok_desc(ps, t));
        return -1;
    }
    next(ps);
    *out = NULL;
    *n = 0;
    for (;;) {
        t = peek(ps);
        if (t->t == T_RP) {
            next(ps);
            return 0;
        }
        if (t->t != T_IDENT && t->t != T_STR) {
            perrf(ps, t->pos, "unexpected %s in grouping opts, expected label", tok_desc(ps, t));
            return -1;
        }
        if (t->t == T_STR && ps->v2) {
            perrf(ps, t->pos, "unexpected string %s in grouping opts, expected label",
                  go_quote(ps, t->pos, t->end));
            return -1;
        }
        if (t->t == T_IDENT && !re_valid_label_name(t->s, strlen(t->s))) {
            perrf(ps, t->pos, "unexpected identifier \"%s\" in grouping opts, expected label",
                  t->s);
            return -1;
        }
        char **nv = realloc(*out, (*n + 1) * sizeof(char *));
        if (!nv) {
            perrf(ps, t->pos, "out of memory");
            return -1;
        }
        *out = nv;
        nv[(*n)++] = t->s;
        t->s = NULL;
        next(ps);
        t = peek(ps);
        if (t->t == T_COMMA) {
            next(ps);
            continue;
        }
        if (t->t != T_RP) {
            perrf(ps, t->pos, "unexpected %s in grouping opts, expected \")\" or \",\"",
                  tok_desc(ps, t));
            return -1;
        }
    }
}

static int add_matcher(struct parser *ps, struct promql_expr *e, enum re_match_type ty,
                       const char *name, const char *val, int pos) {
    struct re_matcher *nm = realloc(e->m, (e->nm + 1) * sizeof(*nm));
    if (!nm) {
        perrf(ps, pos, "out of memory");
        return -1;
    }
    e->m = nm;
    struct perr rerr = {0};
    int rc = re_matcher_init_compat(&nm[e->nm], ty, name, val, ps->v2, &rerr);
    if (rc < 0) {
        memset(&nm[e->nm], 0, sizeof(nm[0]));
        if (rc == -ENOMEM)
            perrf(ps, pos, "out of memory");
        else
            perrf(ps, pos, "%s", rerr.msg);
        return -1;
    }
    e->nm++;
    return 0;
}

/* Parses "{...}" for a selector e; name (may be NULL) already set. */
static int parse_matchers(struct parser *ps, struct promql_expr *e) {
    next(ps); /* { */
    for (;;) {
        struct tokv *t = peek(ps);
        if (t->t == T_RB) {
            e->epos = t->end;
            next(ps);
            break;
        }
        if (t->t != T_IDENT && t->t != T_STR) {
            perrf(ps, t->pos, "unexpected %s in label matching, expected label", tok_desc(ps, t));
            return -1;
        }
        char *lname = t->s;
        t->s = NULL;
        int lpos = t->pos;
        bool quoted = t->t == T_STR;
        if (quoted && ps->v2) {
            /* quoted (UTF-8) label names came with 3.0 */
            perrf(ps, lpos, "unexpected string %s in label matching, expected identifier or \"}\"",
                  go_quote(ps, lpos, t->end));
            free(lname);
            return -1;
        }
        next(ps);
        t = peek(ps);
        if (quoted && (t->t == T_COMMA || t->t == T_RB)) {
            /* {"metric.name"} */
            bool has_name = e->name != NULL;
            for (size_t i = 0; i < e->nm; i++)
                if (!strcmp(e->m[i].name, "__name__") && e->m[i].type == RE_MATCH_EQ)
                    has_name = true;
            if (has_name) {
                perrf(ps, lpos, "metric name must not be set twice: \"%s\" or \"%s\"",
                      e->name ? e->name : "", lname);
                free(lname);
                return -1;
            }
            e->name = lname;
            if (add_matcher(ps, e, RE_MATCH_EQ, "__name__", lname, lpos) < 0) return -1;
        } else {
            enum re_match_type ty;
            if (t->t == T_ASSIGN)
                ty = RE_MATCH_EQ;
            else if (t->t == T_OP && t->op == PQ_NEQ)
                ty = RE_MATCH_NEQ;
            else if (t->t == T_EQLRE)
                ty = RE_MATCH_RE;
            else if (t->t == T_NEQRE)
                ty = RE_MATCH_NRE;
            else {
                perrf(ps, t->pos,
                      "unexpected %s in label matching, expected label matching operator",
                      tok_desc(ps, t));
                free(lname);
                return -1;
            }
            next(ps);
            t = peek(ps);
            if (t->t != T_STR) {
                perrf(ps, t->pos, "unexpected %s in label matching, expected string",
                      tok_desc(ps, t));
                free(lname);
                return -1;
            }
            if (strcmp(lname, "__name__") == 0 && ty == RE_MATCH_EQ && e->name) {
                perrf(ps, lpos, "metric name must not be set twice: \"%s\" or \"%s\"", e->name,
                      t->s);
                free(lname);
                return -1;
            }
            int rc = add_matcher(ps, e, ty, lname, t->s, lpos); /* as 2.42: the matcher start */
            free(lname);
            if (rc < 0) return -1;
            next(ps);
        }
        t = peek(ps);
        if (t->t == T_COMMA) {
            next(ps);
            continue;
        }
        if (t->t != T_RB) {
            perrf(ps, t->pos, "unexpected %s in label matching, expected \",\" or \"}\"",
                  tok_desc(ps, t));
            return -1;
        }
    }
    bool nonempty = false;
    for (size_t i = 0; i < e->nm; i++)
        if (!re_matcher_matches_empty(&e->m[i])) nonempty = true;
    if (!nonempty) {
        perrf(ps, e->pos, "vector selector must contain at least one non-empty matcher");
        return -1;
    }
    return 0;
}

static bool parse_duration_tok(struct parser *ps, int64_t *ms, bool allow_neg, const char *what) {
    struct tokv *t = peek(ps);
    bool neg = false;
    if (allow_neg && t->t == T_OP && (t->op == PQ_SUB || t->op == PQ_ADD)) {
        neg = t->op == PQ_SUB;
        next(ps);
        t = peek(ps);
    }
    if (t->t == T_DUR) {
        *ms = t->dur;
    } else if (t->t == T_NUM) {
        double v = t->num * 1000;
        if (!isfinite(v) || fabs(v) > 9.2e18) {
            perrf(ps, t->pos, "duration out of range");
            return false;
        }
        *ms = (int64_t)llround(v);
    } else {
        perrf(ps, t->pos, "unexpected %s in %s, expected duration", tok_desc(ps, t), what);
        return false;
    }
    if (neg) *ms = -*ms;
    next(ps);
    return true;
}

static struct promql_expr *sel_target(struct promql_expr *e) {
    if (e->kind == PQ_MSEL) return e->a;
    return e;
}

/* offset, @, [range], [range:step] postfixes. */
static struct promql_expr *parse_postfix(struct parser *ps, struct promql_expr *e) {
    for (;;) {
        struct tokv *t = peek(ps);
        if (t->t == T_LBK) {
            int bpos = t->pos;
            ps->brack++;
            next(ps);
            int64_t r, st = 0;
            /* Prometheus reports a zero duration at the duration itself */
            int rpos = peek(ps)->pos;
            if (!parse_duration_tok(ps, &r, false, "subquery or range")) goto fail;
            t = peek(ps);
            if (t->t == T_COLON) {
                next(ps);
                t = peek(ps);
                int spos = t->pos;
                bool has_step = t->t != T_RBK;
                if (has_step && !parse_duration_tok(ps, &st, false, "subquery")) goto fail;
                /* 2.42 parses every duration with parseDuration, which refuses 0 */
                if (ps->v2 && has_step && st == 0) {
                    perrf(ps, spos, "duration must be greater than 0");
                    goto fail;
                }
                t = peek(ps);
                if (t->t != T_RBK) {
                    perrf(ps, t->pos, "unexpected %s in subquery selector, expected \"]\"",
                          tok_desc(ps, t));
                    goto fail;
                }
                if (pq_type(e) != PROMQL_VECTOR) {
                    perrf(ps, e->pos, "subquery is only allowed on instant vector, got %s instead",
                          pq_type(e) == PROMQL_MATRIX ? "matrix" : type_name(pq_type(e)));
                    goto fail;
                }
                struct promql_expr *s = node(ps, PQ_SUBQ, e->pos);
                if (!s) goto fail;
                s->a = e;
                s->range = r;
                s->step = st;
                s->epos = t->end;
                if (!set_height(ps, s)) {
                    e = s;
                    goto fail;
                }
                if (r <= 0) {
                    perrf(ps, rpos, "duration must be greater than 0");
                    e = s;
                    goto fail;
                }
                e = s;
            } else if (t->t == T_RBK) {
                if (e->kind != PQ_VSEL) {
                    perrf(ps, e->pos, "ranges only allowed for vector selectors");
                    goto fail;
                }
                if (e->offset || e->at_kind) {
                    perrf(ps, bpos, "no offset or @ modifiers allowed before range");
                    goto fail;
                }
                struct promql_expr *s = node(ps, PQ_MSEL, e->pos);
                if (!s) goto fail;
                s->a = e;
                s->range = r;
                s->epos = t->end;
                e = s;
                if (!set_height(ps, s)) goto fail;
                if (r <= 0) {
                    perrf(ps, rpos, "duration must be greater than 0");
                    goto fail;
                }
            } else {
                perrf(ps, t->pos, "unexpected %s in subquery or range, expected \":\" or \"]\"",
                      tok_desc(ps, t));
                goto fail;
            }
            ps->brack--;
            next(ps);
            continue;
        }
        if (t->t == T_IDENT && !strcasecmp(t->s, "offset")) {
            next(ps);
            int64_t off;
            int dpos = peek(ps)->pos;
            if (!parse_duration_tok(ps, &off, true, "offset")) goto fail;
            if (ps->v2 && off == 0) {
                perrf(ps, dpos, "duration must be greater than 0");
                goto fail;
            }
            /* as Prometheus's addOffset, these errors point at the modified expression */
            if (e->kind != PQ_VSEL && e->kind != PQ_MSEL && e->kind != PQ_SUBQ) {
                perrf(ps, e->pos,
                      "offset modifier must be preceded by an instant vector selector or range "
                      "vector selector or a subquery");
                goto fail;
            }
            struct promql_expr *tg = sel_target(e);
            if (tg->offset) {
                perrf(ps, e->pos, "offset may not be set multiple times");
                goto fail;
            }
            tg->offset = off;
            e->epos = ps->cur.pos;
            continue;
        }
        if (t->t == T_AT) {
            next(ps);
            t = peek(ps);
            enum pq_at kind = PQ_AT_TS;
            int64_t at = 0;
            if (t->t == T_IDENT && (!strcmp(t->s, "start") || !strcmp(t->s, "end"))) {
                kind = !strcmp(t->s, "start") ? PQ_AT_START : PQ_AT_END;
                next(ps);
                if (peek(ps)->t != T_LP) {
                    perrf(ps, peek(ps)->pos, "unexpected %s in @, expected \"(\"",
                          tok_desc(ps, peek(ps)));
                    goto fail;
                }
                next(ps);
                if (peek(ps)->t != T_RP) {
                    perrf(ps, peek(ps)->pos, "unexpected %s in @, expected \")\"",
                          tok_desc(ps, peek(ps)));
                    goto fail;
                }
                next(ps);
            } else {
                bool neg = false;
                if (t->t == T_OP && (t->op == PQ_SUB || t->op == PQ_ADD)) {
                    neg = t->op == PQ_SUB;
                    next(ps);
                    t = peek(ps);
                }
                double v;
                if (t->t == T_NUM)
                    v = t->num;
                else if (t->t == T_DUR)
                    v = (double)t->dur / 1000.0;
                else {
                    perrf(ps, t->pos, "unexpected %s in @, expected timestamp", tok_desc(ps, t));
                    goto fail;
                }
                if (neg) v = -v;
                if (!isfinite(v) || fabs(v * 1000) > 9.2e18) {
                    perrf(ps, e->pos, "timestamp out of bounds for @ modifier: %f", v);
                    goto fail;
                }
                at = (int64_t)llround(v * 1000);
                next(ps);
            }
            if (e->kind != PQ_VSEL && e->kind != PQ_MSEL && e->kind != PQ_SUBQ) {
                perrf(ps, e->pos,
                      "@ modifier must be preceded by an instant vector selector or range vector "
                      "selector or a subquery");
                goto fail;
            }
            struct promql_expr *tg = sel_target(e);
            if (tg->at_kind) {
                perrf(ps, e->pos, "@ <timestamp> may not be set multiple times");
                goto fail;
            }
            tg->at_kind = kind;
            tg->at = at;
            continue;
        }
        return e;
    }
fail:
    promql_free(e);
    return NULL;
}

static bool agg_lookup(const char *s, enum pq_agg *a) {
    for (size_t i = 0; i < sizeof(agg_names) / sizeof(agg_names[0]); i++)
        if (!strcasecmp(s, agg_names[i])) {
            *a = (enum pq_agg)i;
            return true;
        }
    return false;
}

static bool check_arg_type(struct parser *ps, struct promql_expr *arg, enum promql_vtype want,
                           const char *ctx) {
    enum promql_vtype got = pq_type(arg);
    if (got != want) {
        perrf(ps, arg->pos, "expected type %s in %s, got %s", type_name(want), ctx, type_name(got));
        return false;
    }
    return true;
}

/* Parses "(" args ")" into a list. */
static int parse_args(struct parser *ps, struct promql_expr ***args, size_t *n, int *endpos) {
    next(ps); /* ( */
    *args = NULL;
    *n = 0;
    struct tokv *t = peek(ps);
    if (t->t == T_RP) {
        *endpos = t->end;
        next(ps);
        return 0;
    }
    for (;;) {
        struct promql_expr *a = parse_expr(ps, 0);
        if (!a) return -1;
        struct promql_expr **nv = realloc(*args, (*n + 1) * sizeof(*nv));
        if (!nv) {
            promql_free(a);
            perrf(ps, 0, "out of memory");
            return -1;
        }
        *args = nv;
        nv[(*n)++] = a;
        t = peek(ps);
        if (t->t == T_COMMA) {
            next(ps);
            t = peek(ps);
            if (t->t == T_RP) {
                *endpos = t->end;
                next(ps);
                return 0;
            }
            continue;
        }
        if (t->t == T_RP) {
            *endpos = t->end;
            next(ps);
            return 0;
        }
        perrf(ps, t->pos, "unexpected %s in function call arguments, expected \",\" or \")\"",
              tok_desc(ps, t));
        return -1;
    }
}

static struct promql_expr *parse_agg(struct parser *ps, enum pq_agg ag, int pos) {
    struct promql_expr *e = node(ps, PQ_AGG, pos);
    if (!e) return NULL;
    e->agg = ag;
    struct tokv *t = peek(ps);
    if (t->t == T_IDENT && (!strcasecmp(t->s, "by") || !strcasecmp(t->s, "without"))) {
        e->without = !strcasecmp(t->s, "without");
        e->has_grouping = true;
        next(ps);
        if (parse_label_list(ps, &e->grouping, &e->ngrouping) < 0) goto fail;
    }
    t = peek(ps);
    if (t->t != T_LP) {
        perrf(ps, t->pos, "unexpected %s in aggregation, expected \"(\"", tok_desc(ps, t));
        goto fail;
    }
    struct promql_expr **args;
    size_t nargs;
    int endpos = 0;
    if (parse_args(ps, &args, &nargs, &endpos) < 0) {
        for (size_t i = 0; i < nargs; i++)
            promql_free(args[i]);
        free(args);
        goto fail;
    }
    e->epos = endpos;
    bool wants_param =
        ag == PQ_TOPK || ag == PQ_BOTTOMK || ag == PQ_QUANTILE || ag == PQ_COUNT_VALUES;
    size_t want = wants_param ? 2 : 1;
    if (nargs != want) {
        if (nargs == 0)
            perrf(ps, endpos - 1, "no arguments for aggregate expression provided");
        else
            perrf(ps, pos,
                  "wrong number of arguments for aggregate expression provided, expected %zu, got "
                  "%zu",
                  want, nargs);
        for (size_t i = 0; i < nargs; i++)
            promql_free(args[i]);
        free(args);
        goto fail;
    }
    if (wants_param) {
        e->param = args[0];
        e->a = args[1];
    } else {
        e->a = args[0];
    }
    free(args);
    t = peek(ps);
    if (t->t == T_IDENT && (!strcasecmp(t->s, "by") || !strcasecmp(t->s, "without"))) {
        if (e->has_grouping) {
            perrf(ps, t->pos, "unexpected %s in aggregation", tok_desc(ps, t));
            goto fail;
        }
        e->without = !strcasecmp(t->s, "without");
        e->has_grouping = true;
        next(ps);
        if (parse_label_list(ps, &e->grouping, &e->ngrouping) < 0) goto fail;
        e->epos = ps->cur.pos;
    }
    char ctx[64];
    snprintf(ctx, sizeof(ctx), "aggregation expression");
    if (!check_arg_type(ps, e->a, PROMQL_VECTOR, ctx)) goto fail;
    if (e->param) {
        enum promql_vtype pt = ag == PQ_COUNT_VALUES ? PROMQL_STRING : PROMQL_SCALAR;
        if (!check_arg_type(ps, e->param, pt, "aggregation parameter")) goto fail;
    }
    return e;
fail:
    promql_free(e);
    return NULL;
}

static struct promql_expr *parse_call(struct parser *ps, const struct pq_func *fn, int pos) {
    struct promql_expr *e = node(ps, PQ_CALL, pos);
    if (!e) return NULL;
    e->fn = fn;
    int endpos = 0;
    if (parse_args(ps, &e->args, &e->nargs, &endpos) < 0) goto fail;
    e->epos = endpos;
    int n = (int)e->nargs;
    if (n < fn->nargs || (fn->nopt >= 0 && n > fn->nargs + fn->nopt)) {
        if (fn->nopt == 0)
            perrf(ps, pos, "expected %d argument(s) in call to \"%s\", got %d", fn->nargs, fn->name,
                  n);
        else if (n < fn->nargs)
            perrf(ps, pos, "expected at least %d argument(s) in call to \"%s\", got %d", fn->nargs,
                  fn->name, n);
        else
            perrf(ps, pos, "expected at most %d argument(s) in call to \"%s\", got %d",
                  fn->nargs + fn->nopt, fn->name, n);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        int ti = i < 4 ? i : 3;
        if (fn->id == F_LABEL_REPLACE || fn->id == F_LABEL_JOIN) ti = i == 0 ? 0 : 1;
        if (fn->id == F_SORT_BY_LABEL || fn->id == F_SORT_BY_LABEL_DESC) ti = i == 0 ? 0 : 1;
        char ctx[96];
        snprintf(ctx, sizeof(ctx), "call to function \"%s\"", fn->name);
        enum promql_vtype want = fn->argt[ti];
        if (fn->id == F_LABEL_REPLACE || fn->id == F_LABEL_JOIN)
            want = i == 0 ? PROMQL_VECTOR : PROMQL_STRING;
        if (!check_arg_type(ps, e->args[i], want, ctx)) goto fail;
    }
    return e;
fail:
    promql_free(e);
    return NULL;
}

static struct promql_expr *parse_primary(struct parser *ps) {
    struct tokv *t = peek(ps);
    struct promql_expr *e = NULL;
    int pos = t->pos;
    switch (t->t) {
    case T_NUM:
        e = node(ps, PQ_NUM, pos);
        if (!e) return NULL;
        e->num = t->num;
        e->epos = t->end;
        next(ps);
        return parse_postfix(ps, e);
    case T_DUR:
        if (ps->v2) {
            /* durations as numbers came with 3.x */
            perrf(ps, pos, "unexpected duration \"%.*s\"", t->end - pos, ps->src + pos);
            return NULL;
        }
        e = node(ps, PQ_NUM, pos);
        if (!e) return NULL;
        e->num = (double)t->dur / 1000.0;
        e->epos = t->end;
        next(ps);
        return parse_postfix(ps, e);
    case T_STR:
        e = node(ps, PQ_STR, pos);
        if (!e) return NULL;
        e->str = t->s;
        t->s = NULL;
        e->epos = t->end;
        next(ps);
        return parse_postfix(ps, e);
    case T_LP: {
        next(ps);
        struct promql_expr *in = parse_expr(ps, 0);
        if (!in) return NULL;
        t = peek(ps);
        if (t->t != T_RP) {
            perrf(ps, t->pos, "unexpected %s, expected \")\"", tok_desc(ps, t));
            promql_free(in);
            return NULL;
        }
        e = node(ps, PQ_PAREN, pos);
        if (!e) {
            promql_free(in);
            return NULL;
        }
        e->a = in;
        e->epos = t->end;
        next(ps);
        if (!set_height(ps, e)) {
            promql_free(e);
            return NULL;
        }
        return parse_postfix(ps, e);
    }
    case T_LB:
        e = node(ps, PQ_VSEL, pos);
        if (!e) return NULL;
        if (parse_matchers(ps, e) < 0) {
            promql_free(e);
            return NULL;
        }
        return parse_postfix(ps, e);
    case T_IDENT: {
        char *id = t->s;
        t->s = NULL;
        int end = t->end;
        next(ps);
        struct tokv *nt = peek(ps);
        enum pq_agg ag;
        if (agg_lookup(id, &ag) &&
            (nt->t == T_LP ||
             (nt->t == T_IDENT && (!strcasecmp(nt->s, "by") || !strcasecmp(nt->s, "without"))))) {
            free(id);
            e = parse_agg(ps, ag, pos);
            if (e && !set_height(ps, e)) {
                promql_free(e);
                return NULL;
            }
            return e ? parse_postfix(ps, e) : NULL;
        }
        if (nt->t == T_LP) {
            const struct pq_func *fn = pq_func_lookup(id, ps->v2);
            if (!fn) {
                perrf(ps, pos, "unknown function with name \"%s\"", id);
                free(id);
                return NULL;
            }
            free(id);
            e = parse_call(ps, fn, pos);
            if (e && !set_height(ps, e)) {
                promql_free(e);
                return NULL;
            }
            return e ? parse_postfix(ps, e) : NULL;
        }
        if (!strcasecmp(id, "inf") || !strcasecmp(id, "nan")) {
            e = node(ps, PQ_NUM, pos);
            if (!e) {
                free(id);
                return NULL;
            }
            e->num = !strcasecmp(id, "nan") ? NAN : INFINITY;
            e->epos = end;
            free(id);
            return parse_postfix(ps, e);
        }
        /* Prometheus's metric_identifier also takes by, without, offset, and, or, unless and
         * the aggregation names ("sum" alone is a selector); these keywords it refuses */
        static const char *const kw[] = {"on",          "ignoring", "group_left",
                                         "group_right", "bool",     "atan2"};
        for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
            if (!strcasecmp(id, kw[i])) {
                perrf(ps, pos, "unexpected <%s%s>", i == 5 ? "op:" : "", id);
                free(id);
                return NULL;
            }
        e = node(ps, PQ_VSEL, pos);
        if (!e) {
            free(id);
            return NULL;
        }
        e->name = id;
        e->epos = end;
        if (add_matcher(ps, e, RE_MATCH_EQ, "__name__", id, pos) < 0) {
            promql_free(e);
            return NULL;
        }
        if (nt->t == T_LB && parse_matchers(ps, e) < 0) {
            promql_free(e);
            return NULL;
        }
        return parse_postfix(ps, e);
    }
    case T_EOF:
        perrf(ps, pos, "unexpected end of input");
        return NULL;
    case T_ERR:
        return NULL;
    default:
        perrf(ps, pos, "unexpected %s", tok_desc(ps, t));
        return NULL;
    }
}

static struct promql_expr *parse_unary(struct parser *ps) {
    struct tokv *t = peek(ps);
    if (t->t == T_OP && (t->op == PQ_ADD || t->op == PQ_SUB)) {
        int pos = t->pos;
        bool neg = t->op == PQ_SUB;
        next(ps);
        if (++ps->depth > MAX_DEPTH) {
            perrf(ps, pos, "expression nesting too deep (more than %d levels)", MAX_DEPTH);
            return NULL;
        }
        /* unary binds tighter than * but looser than ^ */
        struct promql_expr *in = parse_expr(ps, 6);
        ps->depth--;
        if (!in) return NULL;
        enum promql_vtype ty = pq_type(in);
        if (ty != PROMQL_SCALAR && ty != PROMQL_VECTOR) {
            perrf(ps, in->pos,
                  "unary expression only allowed on expressions of type scalar or instant vector, "
                  "got %s",
                  type_name(ty));
            promql_free(in);
            return NULL;
        }
        if (in->kind == PQ_NUM) {
            if (neg) in->num = -in->num;
            in->pos = pos;
            return in;
        }
        if (!neg) {
            /* Prometheus keeps `+x` as a UnaryExpr that prints as written */
            in->plus++;
            in->pos = pos;
            return in;
        }
        struct promql_expr *e = node(ps, PQ_UNARY, pos);
        if (!e) {
            promql_free(in);
            return NULL;
        }
        e->op = PQ_SUB;
        e->a = in;
        e->epos = in->epos;
        if (!set_height(ps, e)) {
            promql_free(e);
            return NULL;
        }
        return e;
    }
    return parse_primary(ps);
}

static struct promql_expr *parse_expr(struct parser *ps, int minprec) {
    if (++ps->depth > MAX_DEPTH) {
        perrf(ps, peek(ps)->pos, "expression nesting too deep (more than %d levels)", MAX_DEPTH);
        return NULL;
    }
    struct promql_expr *lhs = parse_unary(ps);
    int chain = 0;
    while (lhs) {
        enum pq_op op = peek_binop(ps);
        int pr = prec_of(op);
        if (op == PQ_OP_NONE || pr < minprec) break;
        if (++chain > 4 * MAX_DEPTH) {
            perrf(ps, peek(ps)->pos, "expression too long (more than %d operators in a chain)",
                  4 * MAX_DEPTH);
            promql_free(lhs);
            lhs = NULL;
            break;
        }
        int oppos = peek(ps)->pos;
        next(ps);
        struct promql_expr *e = node(ps, PQ_BIN, lhs->pos);
        if (!e) {
            promql_free(lhs);
            lhs = NULL;
            break;
        }
        e->op = op;
        e->a = lhs;
        lhs = e;
        if (peek_ident(ps, "bool")) {
            if (!is_cmp(op)) {
                perrf(ps, peek(ps)->pos, "bool modifier can only be used on comparison operators");
                goto fail;
            }
            e->bool_mod = true;
            next(ps);
        }
        if (peek_ident(ps, "on") || peek_ident(ps, "ignoring")) {
            e->has_matching = true;
            e->on = peek_ident(ps, "on");
            next(ps);
            if (parse_label_list(ps, &e->mlabels, &e->nmlabels) < 0) goto fail;
            if (peek_ident(ps, "group_left") || peek_ident(ps, "group_right")) {
                e->card = peek_ident(ps, "group_left") ? PQ_MANY_ONE : PQ_ONE_MANY;
                next(ps);
                if (peek(ps)->t == T_LP && parse_label_list(ps, &e->include, &e->ninclude) < 0)
                    goto fail;
            }
        } else if (peek_ident(ps, "group_left") || peek_ident(ps, "group_right")) {
            perrf(ps, peek(ps)->pos, "unexpected <%s>", peek(ps)->s);
            goto fail;
        }
        /* left-assoc: parse rhs with higher precedence; ^ is right-assoc */
        e->b = parse_expr(ps, op == PQ_POW ? pr : pr + 1);
        if (!e->b) goto fail;
        e->epos = e->b->epos;
        if (!set_height(ps, e)) goto fail;
        enum promql_vtype lt = pq_type(e->a), rt = pq_type(e->b);
        if ((lt != PROMQL_SCALAR && lt != PROMQL_VECTOR) ||
            (rt != PROMQL_SCALAR && rt != PROMQL_VECTOR)) {
            struct promql_expr *bad = (lt != PROMQL_SCALAR && lt != PROMQL_VECTOR) ? e->a : e->b;
            perrf(ps, bad->pos,
                  "binary expression must contain only scalar and instant vector types");
            goto fail;
        }
        if (is_cmp(op) && lt == PROMQL_SCALAR && rt == PROMQL_SCALAR && !e->bool_mod) {
            perrf(ps, oppos, "comparisons between scalars must use BOOL modifier");
            goto fail;
        }
        if (is_set(op)) {
            if (lt == PROMQL_SCALAR || rt == PROMQL_SCALAR) {
                perrf(ps, e->pos, "set operator \"%s\" not allowed in binary scalar expression",
                      pq_op_str(op));
                goto fail;
            }
            if (e->card == PQ_MANY_ONE || e->card == PQ_ONE_MANY) {
                perrf(ps, oppos, "no grouping allowed for \"%s\" operation", pq_op_str(op));
                goto fail;
            }
            e->card = PQ_MANY_MANY;
        }
        if (e->has_matching && (lt != PROMQL_VECTOR || rt != PROMQL_VECTOR)) {
            perrf(ps, e->pos, "vector matching only allowed between instant vectors");
            goto fail;
        }
        if (e->on) {
            for (size_t i = 0; i < e->ninclude; i++)
                for (size_t j = 0; j < e->nmlabels; j++)
                    if (!strcmp(e->include[i], e->mlabels[j])) {
                        perrf(ps, oppos,
                              "label \"%s\" must not occur in ON and GROUP clause at once",
                              e->include[i]);
                        goto fail;
                    }
        }
        continue;
    fail:
        promql_free(lhs);
        lhs = NULL;
    }
    ps->depth--;
    return lhs;
}

struct promql_expr *promql_parse(const char *src, struct perr *err) {
    return promql_parse_compat(src, false, err);
}

struct promql_expr *promql_parse_compat(const char *src, bool v2, struct perr *err) {
    struct parser ps = {.src = src, .err = err, .v2 = v2};
    if (err) memset(err, 0, sizeof(*err));
    if (peek(&ps)->t == T_EOF) { /* blank or only comments, as Prometheus's start rule */
        perrf(&ps, 0, "no expression found in input");
        if (ps.have) free(ps.cur.s);
        return NULL;
    }
    struct promql_expr *e = parse_expr(&ps, 0);
    if (e) {
        struct tokv *t = peek(&ps);
        if (t->t != T_EOF) {
            if (t->t != T_ERR) perrf(&ps, t->pos, "unexpected %s", tok_desc(&ps, t));
            promql_free(e);
            e = NULL;
        }
    }
    if (ps.have) free(ps.cur.s);
    if (e) {
        e->src = strdup(src);
        if (!e->src) {
            promql_free(e);
            e = NULL;
            perr_set(err, 1, 1, "parse error: out of memory");
            return NULL;
        }
    }
    if (!e && !ps.failed) perr_set(err, 1, 1, "parse error: out of memory");
    return e;
}

/* ---- walking ------------------------------------------------------------------------------ */

bool promql_orders_result(const struct promql_expr *e) {
    if (!e) return false;
    if (e->kind == PQ_CALL && !strncmp(e->fn->name, "sort", 4)) return true;
    if (e->kind == PQ_AGG && (e->agg == PQ_TOPK || e->agg == PQ_BOTTOMK)) return true;
    if (promql_orders_result(e->a) || promql_orders_result(e->b) || promql_orders_result(e->param))
        return true;
    for (size_t i = 0; i < e->nargs; i++)
        if (promql_orders_result(e->args[i])) return true;
    return false;
}

int promql_foreach_selector(const struct promql_expr *e,
                            int (*fn)(void *arg, const struct re_matcher *m, size_t nm),
                            void *arg) {
    if (!e) return 0;
    int rc = 0;
    if (e->kind == PQ_VSEL) return fn(arg, e->m, e->nm);
    if ((rc = promql_foreach_selector(e->a, fn, arg)) != 0) return rc;
    if ((rc = promql_foreach_selector(e->b, fn, arg)) != 0) return rc;
    if ((rc = promql_foreach_selector(e->param, fn, arg)) != 0) return rc;
    for (size_t i = 0; i < e->nargs; i++)
        if ((rc = promql_foreach_selector(e->args[i], fn, arg)) != 0) return rc;
    return 0;
}
