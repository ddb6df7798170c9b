/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the PromQL parser (errors, positions, nesting), printer, durations and evaluator.
 */
#include "ruleeval.h"
#include "tap.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void parse_err(const char *src, int line, int col, const char *msg_part) {
    struct perr err;
    struct promql_expr *e = promql_parse(src, &err);
    char shown[48];
    snprintf(shown, sizeof(shown), "%s", src);
    for (char *p = shown; *p; p++)
        if (*p == '\n') *p = ' ';
    src = shown;
    TAP_OK(e == NULL, "parse error for \"%.40s\"", src);
    if (e) {
        promql_free(e);
        return;
    }
    TAP_OK(err.line == line && err.col == col, "position %d:%d (got %d:%d) for \"%.40s\"", line,
           col, err.line, err.col, src);
    TAP_OK(strncmp(err.msg, "parse error: ", 13) == 0 && strstr(err.msg, msg_part),
           "message \"%s\" contains \"%s\"", err.msg, msg_part);
}

static void roundtrip(const char *src, const char *want) {
    struct perr err;
    struct promql_expr *e = promql_parse(src, &err);
    TAP_OK(e != NULL, "parses: %s%s%s", src, e ? "" : " -> ", e ? "" : err.msg);
    if (!e) return;
    char *s = promql_expr_string(e);
    CHECK_EQ_STR(s, want);
    free(s);
    promql_free(e);
}

static void test_parse_errors(void) {
    parse_err("foo{", 1, 5, "unexpected end of input");
    parse_err("1 +", 1, 4, "unexpected end of input");
    parse_err("", 1, 1, "no expression found in input");
    parse_err("  # only a comment", 1, 1, "no expression found in input");
    parse_err("rate(foo)", 1, 6, "expected type range vector in call to function \"rate\"");
    parse_err("sum(foo) by (a", 1, 15, "unclosed left parenthesis"); /* as 2.42 answers */
    parse_err("foo{a=~\"(\"}", 1, 5, "error parsing regexp");
    parse_err("rat(foo[5m])", 1, 1, "unknown function with name \"rat\"");
    parse_err("foo +\n  bar baz", 2, 7, "unexpected identifier");
    parse_err("1 > 2", 1, 3, "comparisons between scalars must use BOOL modifier");
    parse_err("foo and 1", 1, 1, "set operator \"and\" not allowed in binary scalar expression");
    parse_err("{}", 1, 1, "vector selector must contain at least one non-empty matcher");
    parse_err("foo[5m] offset 1m offset 2m", 1, 1, "offset may not be set multiple times");
    parse_err("(foo + bar)[5m]", 1, 1, "ranges only allowed for vector selectors");
    parse_err("foo @ bar", 1, 7, "unexpected identifier \"bar\" in @");
    parse_err("topk(foo)", 1, 1, "wrong number of arguments");
    parse_err("\"unterminated", 1, 1, "unterminated quoted string");
    parse_err("foo{a=\"b\\q\"}", 1, 9, "unknown escape sequence");
    parse_err("1 + $", 1, 5, "unexpected character");
}

static void test_deep_nesting(void) {
    size_t depth = 10000;
    char *s = malloc(2 * depth + 2);
    memset(s, '(', depth);
    s[depth] = '1';
    memset(s + depth + 1, ')', depth);
    s[2 * depth + 1] = 0;
    struct perr err;
    struct promql_expr *e = promql_parse(s, &err);
    TAP_OK(e == NULL && strstr(err.msg, "nesting too deep") != NULL,
           "10000-deep parentheses: bounded parse error (%s)", err.msg);
    promql_free(e);
    /* unary minus chains and long operator chains are bounded as well */
    memset(s, '-', depth);
    s[depth] = '1';
    s[depth + 1] = 0;
    e = promql_parse(s, &err);
    TAP_OK(e == NULL, "10000 unary minus signs: parse error");
    promql_free(e);
    free(s);
    size_t n = 20000;
    char *chain = malloc(n * 4 + 2);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)sprintf(chain + o, "a + ");
    sprintf(chain + o, "a");
    e = promql_parse(chain, &err);
    TAP_OK(e == NULL, "20000-operator chain: parse error, no deep tree");
    promql_free(e);
    free(chain);
    /* chains inside nested parentheses: bounded by tree height */
    char *mix = malloc(200 * 130 + 16);
    o = 0;
    for (int i = 0; i < 200; i++) {
        mix[o++] = '(';
        for (int k = 0; k < 30; k++)
            o += (size_t)sprintf(mix + o, "a + ");
    }
    mix[o++] = 'a';
    for (int i = 0; i < 200; i++)
        mix[o++] = ')';
    mix[o] = 0;
    e = promql_parse(mix, &err);
    TAP_OK(e == NULL && strstr(err.msg, "nesting too deep") != NULL,
           "200 nested 30-operator chains: bounded tree height (%s)", err.msg);
    promql_free(e);
    free(mix);
    /* moderate nesting is fine */
    e = promql_parse("((((((((((((((((((((1))))))))))))))))))))", &err);
    TAP_OK(e != NULL, "20 levels of parentheses parse");
    promql_free(e);
}

/* Prometheus's metric_identifier: some keywords are metric names when they stand alone. */
static void test_keyword_names(void) {
    const char *names[] = {"sum",          "by",           "without",         "offset",
                           "and",          "or",           "unless",          "Sum",
                           "count_values", "sum{a=\"b\"}", "offset offset 1m"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        struct perr err;
        struct promql_expr *e = promql_parse(names[i], &err);
        TAP_OK(e && promql_expr_type(e) == PROMQL_VECTOR, "%s is a selector", names[i]);
        promql_free(e);
    }
    parse_err("bool", 1, 1, "unexpected <bool>");
    parse_err("atan2", 1, 1, "unexpected <op:atan2>");
    parse_err("group_left", 1, 1, "unexpected <group_left>");
}

static void test_printer(void) {
    roundtrip("sum by(job)(rate(http_requests_total{job=~\"api.*\"}[5m])) > 0.5",
              "sum by (job) (rate(http_requests_total{job=~\"api.*\"}[5m])) > 0.5");
    roundtrip("a + on(x) group_left(y) b", "a + on (x) group_left (y) b");
    roundtrip("a > bool ignoring(x) b", "a > bool ignoring (x) b");
    roundtrip("foo offset 90s @ 100", "foo @ 100.000 offset 1m30s");
    roundtrip("rate(foo[5m] offset 1m @ end())", "rate(foo[5m] @ end() offset 1m)");
    roundtrip("+foo - + (bar) + -+1", "+foo - +(bar) + -1");
    roundtrip("017 + 08 + 0x10", "15 + 8 + 16"); /* strconv.ParseInt(s, 0, 64) first */
    roundtrip("a{job=\"j\",job!=\"k\",a=~\"x\"}", "a{a=~\"x\",job!=\"k\",job=\"j\"}");
    roundtrip("a + ignoring() group_left b - on() c", "a + b - on () c");
    roundtrip("max_over_time(deriv(x[5m:30s])[1h:] @ end())",
              "max_over_time(deriv(x[5m:30s])[1h:] @ end())");
    roundtrip("topk(3, x) without (a)", "topk without (a) (3, x)");
    roundtrip("-(1 + 2) * 3", "-(1 + 2) * 3");
    roundtrip("{__name__=\"x\", a!=\"b\"}", "{__name__=\"x\",a!=\"b\"}");
    roundtrip("label_replace(up, \"d\", \"$1\", \"s\", \"(.*)\")",
              "label_replace(up, \"d\", \"$1\", \"s\", \"(.*)\")");
    struct perr err;
    struct promql_expr *e = promql_parse("x > 40", &err);
    CHECK_EQ_INT(promql_expr_type(e), PROMQL_VECTOR);
    promql_free(e);
    e = promql_parse("1 + time()", &err);
    CHECK_EQ_INT(promql_expr_type(e), PROMQL_SCALAR);
    promql_free(e);
    e = promql_parse("x[5m]", &err);
    CHECK_EQ_INT(promql_expr_type(e), PROMQL_MATRIX);
    promql_free(e);
}

static void test_durations(void) {
    int64_t ms = 0;
    CHECK_EQ_INT(promql_parse_duration("1m30s", &ms), 0);
    CHECK_EQ_INT(ms, 90000);
    CHECK_EQ_INT(promql_parse_duration("5m", &ms), 0);
    CHECK_EQ_INT(ms, 300000);
    CHECK_EQ_INT(promql_parse_duration("1y", &ms), 0);
    CHECK_EQ_INT(ms, 365LL * 86400000);
    CHECK_EQ_INT(promql_parse_duration("2h10m5s100ms", &ms), 0);
    CHECK_EQ_INT(ms, 7805100);
    CHECK_EQ_INT(promql_parse_duration("0", &ms), 0);
    CHECK_EQ_INT(ms, 0);
    CHECK_EQ_INT(promql_parse_duration("1s1m", &ms), -EINVAL);
    CHECK_EQ_INT(promql_parse_duration("10", &ms), -EINVAL);
    CHECK_EQ_INT(promql_parse_duration("", &ms), -EINVAL);
    CHECK_EQ_INT(promql_parse_duration("5x", &ms), -EINVAL);
}

static int count_sel(void *arg, const struct re_matcher *m, size_t nm) {
    (void)m;
    *(size_t *)arg += nm;
    return 0;
}

struct collected {
    double v[32];
    bool missing[32];
    size_t n;
};

static int collect(void *arg, size_t idx, bool missing, double v, const struct re_hist *h) {
    struct collected *c = arg;
    (void)h;
    if (idx < 32) {
        c->v[idx] = v;
        c->missing[idx] = missing;
        c->n = idx + 1;
    }
    return 0;
}

static double eval1(struct re_memstore *s, const char *q, int64_t t, size_t *nseries,
                    const struct promql_opts *o) {
    struct perr err;
    struct promql_expr *e = promql_parse_compat(q, o && o->compat_v2, &err);
    if (!e) {
        printf("# parse: %s\n", err.msg);
        return NAN;
    }
    struct re_source src;
    re_memstore_source(s, &src);
    struct promql_result *r = NULL;
    int rc = promql_eval_instant(e, &src, t, o, &r, &err);
    promql_free(e);
    if (rc) {
        printf("# eval: %s\n", err.msg);
        return NAN;
    }
    double v = NAN;
    *nseries = r->nseries;
    if (r->type == PROMQL_SCALAR)
        v = r->scalar;
    else if (r->nseries && r->series[0].npoints)
        v = r->series[0].points[0].v;
    promql_result_free(r);
    return v;
}

static void test_eval(void) {
    struct re_memstore *s = re_memstore_new();
    struct re_label l1[] = {{"__name__", "q_len"}, {"job", "web"}};
    struct re_label l2[] = {{"job", "db"}, {"__name__", "q_len"}};
    for (int i = 0; i <= 10; i++) {
        re_memstore_add(s, l1, 2, i * 1000, i * 10, NULL);
        re_memstore_add(s, l2, 2, i * 1000, 100 - i, NULL);
    }
    size_t n = 0;
    double v = eval1(s, "q_len{job=\"web\"} > 40", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 100);
    CHECK_EQ_INT(n, 1);
    v = eval1(s, "q_len > 40", 10000, &n, NULL);
    CHECK_EQ_INT(n, 2);
    /* rate over a perfectly linear counter: 10/s */
    v = eval1(s, "rate(q_len{job=\"web\"}[5s])", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 10);
    /* increase extrapolates to the window: 5 samples cover 4s of the 5s window */
    v = eval1(s, "increase(q_len{job=\"web\"}[5s])", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 50);
    v = eval1(s, "sum(q_len)", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 190);
    v = eval1(s, "count_over_time(q_len{job=\"db\"}[5s])", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 5); /* left-open: the sample at 5s is not in (5s, 10s] */
    struct promql_opts o;
    promql_opts_default(&o);
    o.compat_v2 = true;
    v = eval1(s, "count_over_time(q_len{job=\"db\"}[5s])", 10000, &n, &o);
    CHECK_EQ_DBL(v, 6); /* Prometheus 2.x includes the window start */
    v = eval1(s, "q_len{job=\"web\"} offset 3s", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 70);
    v = eval1(s, "q_len{job=\"web\"} @ 2", 10000, &n, NULL);
    CHECK_EQ_DBL(v, 20);
    v = eval1(s, "scalar(q_len{job=\"web\"}) * 2", 4000, &n, NULL);
    CHECK_EQ_DBL(v, 80);
    v = eval1(s, "absent(nope{job=\"x\"})", 4000, &n, NULL);
    CHECK_EQ_DBL(v, 1);
    /* lookback: the last sample (10s) is visible until 10s + 5m, exclusive */
    v = eval1(s, "q_len{job=\"web\"}", 10000 + 299999, &n, NULL);
    CHECK_EQ_DBL(v, 100);
    v = eval1(s, "q_len{job=\"web\"}", 10000 + 300000, &n, NULL);
    CHECK_EQ_INT(n, 0);
    /* a stale marker hides the series at once */
    re_memstore_add(s, l1, 2, 11000, re_stale_nan(), NULL);
    v = eval1(s, "q_len{job=\"web\"}", 12000, &n, NULL);
    CHECK_EQ_INT(n, 0);
    /* errors carry Prometheus's text */
    struct perr err;
    struct promql_expr *e = promql_parse("q_len + on() q_len", &err);
    struct re_source src;
    re_memstore_source(s, &src);
    struct promql_result *r = NULL;
    int rc = promql_eval_instant(e, &src, 5000, NULL, &r, &err);
    CHECK(rc < 0);
    CHECK(strstr(err.msg, "found duplicate series for the match group") != NULL);
    promql_free(e);
    /* range evaluation */
    e = promql_parse("q_len{job=\"db\"}", &err);
    rc = promql_eval_range(e, &src, 0, 10000, 5000, NULL, &r, &err);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0) {
        CHECK_EQ_INT(r->type, PROMQL_MATRIX);
        CHECK_EQ_INT(r->nseries, 1);
        CHECK_EQ_INT(r->series[0].npoints, 3);
        CHECK_EQ_DBL(r->series[0].points[2].v, 90);
        promql_result_free(r);
    }
    size_t nm = 0;
    CHECK_EQ_INT(promql_foreach_selector(e, count_sel, &nm), 0);
    CHECK_EQ_INT(nm, 2);
    promql_free(e);
    re_memstore_free(s);
}

static void test_series_notation(void) {
    struct re_label *l;
    size_t n;
    struct perr err;
    CHECK_EQ_INT(promql_parse_series_desc("m{b=\"2\", a=\"1\"}", &l, &n, &err), 0);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_STR(l[0].name, "__name__");
    CHECK_EQ_STR(l[1].name, "a");
    re_labels_free(l, n);
    CHECK(promql_parse_series_desc("m{a=}", &l, &n, &err) < 0);
    struct collected c = {0};
    CHECK_EQ_INT(promql_expand_values("-2+4x3 _ stale 1x2 5m", collect, &c, &err), 0);
    CHECK_EQ_INT(c.n, 10);
    CHECK_EQ_DBL(c.v[3], 10);
    CHECK(c.missing[4]);
    CHECK(re_is_stale(c.v[5]));
    CHECK_EQ_DBL(c.v[8], 1);
    CHECK_EQ_DBL(c.v[9], 300);
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(promql_expand_values("_x3 0x2", collect, &c, &err), 0);
    CHECK_EQ_INT(c.n, 6);
    CHECK(promql_expand_values("1 0x1g", collect, &c, &err) < 0);
}

struct hcollect {
    struct re_memstore *s;
    size_t n;
};

static int store_hist(void *arg, size_t idx, bool missing, double v, const struct re_hist *h) {
    struct hcollect *c = arg;
    struct re_label l[] = {{"__name__", "lat"}};
    c->n++;
    return missing ? 0 : re_memstore_add(c->s, l, 1, (int64_t)idx * 60000, v, h);
}

static void test_native_histograms(void) {
    struct re_memstore *s = re_memstore_new();
    struct hcollect hc = {s, 0};
    struct perr err;
    /* schema 0: buckets (0.5,1] (1,2] (2,4] hold 1, 2, 1; then +1 in each per minute */
    CHECK_EQ_INT(promql_expand_values("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}+"
                                      "{{schema:0 sum:5 count:3 buckets:[1 1 1]}}x4",
                                      store_hist, &hc, &err),
                 0);
    CHECK_EQ_INT(hc.n, 5);
    size_t n = 0;
    double v = eval1(s, "histogram_count(lat)", 240000, &n, NULL);
    CHECK_EQ_DBL(v, 16);
    v = eval1(s, "histogram_sum(rate(lat[5m]))", 240000, &n, NULL);
    CHECK(fabs(v - 5.0 / 60) < 1e-9);
    /* the median falls in (1,2]: exponential interpolation (v3) vs linear (v2) */
    struct promql_opts o;
    promql_opts_default(&o);
    double v3 = eval1(s, "histogram_quantile(0.5, lat)", 0, &n, &o);
    o.compat_v2 = true;
    double v2 = eval1(s, "histogram_quantile(0.5, lat)", 0, &n, &o);
    /* rank 2 of 4: 1 observation below 1, so half of the (1,2] bucket */
    CHECK(fabs(v3 - sqrt(2.0)) < 1e-12);
    CHECK(fabs(v2 - 1.5) < 1e-12);
    v = eval1(s, "histogram_fraction(0, 2, lat)", 0, &n, NULL);
    CHECK_EQ_DBL(v, 0.75);
    re_memstore_free(s);
}

/* Evaluates q in Prometheus 2.42's language; returns new (NULL on error). */
static struct promql_result *eval_v2(struct re_memstore *s, const char *q, int64_t t) {
    struct perr err;
    struct promql_expr *e = promql_parse_compat(q, true, &err);
    if (!e) return NULL;
    struct promql_opts o;
    promql_opts_default(&o);
    o.compat_v2 = true;
    struct re_source src;
    re_memstore_source(s, &src);
    struct promql_result *r = NULL;
    int rc = promql_eval_instant(e, &src, t, &o, &r, &err);
    promql_free(e);
    return rc ? NULL : r;
}

static bool has_label(const struct promql_series *ps, const char *name, const char *value) {
    for (size_t i = 0; i < ps->nlabels; i++)
        if (!strcmp(ps->labels[i].name, name)) return !value || !strcmp(ps->labels[i].value, value);
    return false;
}

/* Differences of Prometheus 2.42 found against a real 2.42 (query_diff integration test). */
static void test_compat_v2(void) {
    struct perr err;
    /* the function sets: holt_winters is 2.x only, the 3.x additions are unknown to 2.42 */
    struct promql_expr *e = promql_parse_compat("holt_winters(x[5m], 0.5, 0.5)", true, &err);
    TAP_OK(e != NULL, "v2 parses holt_winters");
    char *txt = e ? promql_expr_string(e) : NULL;
    CHECK_EQ_STR(txt ? txt : "", "holt_winters(x[5m], 0.5, 0.5)");
    free(txt);
    promql_free(e);
    parse_err("holt_winters(x[5m], 0.5, 0.5)", 1, 1, "unknown function with name \"holt_winters\"");
    const char *v3only[] = {"histogram_avg(x)", "sort_by_label(x, \"a\")", "mad_over_time(x[1m])",
                            "double_exponential_smoothing(x[1m], 0.5, 0.5)"};
    for (size_t i = 0; i < sizeof(v3only) / sizeof(v3only[0]); i++) {
        e = promql_parse_compat(v3only[i], true, &err);
        TAP_OK(e == NULL && strstr(err.msg, "unknown function"), "v2 refuses %s", v3only[i]);
        promql_free(e);
        e = promql_parse(v3only[i], &err);
        TAP_OK(e != NULL, "v3 parses %s", v3only[i]);
        promql_free(e);
    }
    /* quoted label names and zero durations are 3.x syntax */
    const struct {
        const char *q;
        int col;
        const char *msg;
    } bad[] = {
        {"{\"foo\"}", 2, "unexpected string \"\\\"foo\\\"\" in label matching"},
        {"rate(x[1m:0s])", 11, "duration must be greater than 0"},
        {"x offset 0s", 10, "duration must be greater than 0"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        e = promql_parse_compat(bad[i].q, true, &err);
        TAP_OK(e == NULL && err.col == bad[i].col && strstr(err.msg, bad[i].msg),
               "v2 refuses %s at 1:%d (got %d:%d %s)", bad[i].q, bad[i].col, err.line, err.col,
               err.msg);
        promql_free(e);
    }
    parse_err("x[0s]", 1, 3, "duration must be greater than 0");
    e = promql_parse_compat("time() - 5m", true, &err);
    TAP_OK(e == NULL && err.col == 10 && strstr(err.msg, "unexpected duration \"5m\""),
           "v2 refuses a duration as a number: %s", err.msg);
    promql_free(e);

    /* date functions as Go's time.Unix(int64(v), 0): truncation, and NaN as INT64_MIN */
    struct promql_opts o2;
    promql_opts_default(&o2);
    o2.compat_v2 = true;
    const struct {
        const char *q;
        double want;
    } dates[] = {
        {"year(vector(NaN))", 292277026596.0},
        {"hour(vector(NaN))", 15},
        {"minute(vector(Inf))", 30},
        {"hour(vector(-0.5))", 0},
        {"day_of_week(vector(-86400.5))", 3},
        {"days_in_month(vector(1709164800))", 29},
        {"month(vector(1709164800))", 2},
        {"day_of_year(vector(1735603200))", 366},
        {"clamp_min(vector(Inf), NaN)", INFINITY},
        {"clamp_max(vector(-Inf), NaN)", -INFINITY},
    };
    struct re_memstore *ms = re_memstore_new();
    for (size_t i = 0; i < sizeof(dates) / sizeof(dates[0]); i++) {
        size_t n = 0;
        double v = eval1(ms, dates[i].q, 0, &n, &o2);
        TAP_OK(v == dates[i].want, "v2: %s = %g (got %g)", dates[i].q, dates[i].want, v);
    }
    /* extrapolatedRate: 2.42 takes the counter's zero point (8s before the first sample)
     * before the threshold (1.1 x 10s); 3.x halves the interval first, then the zero point */
    struct re_label lc[] = {{"__name__", "c"}};
    for (int i = 0; i <= 6; i++)
        re_memstore_add(ms, lc, 1, 100000 + i * 10000, 8 + i * 10, NULL);
    size_t nn = 0;
    CHECK_EQ_DBL(eval1(ms, "increase(c[100s])", 160000, &nn, &o2), 68);
    CHECK_EQ_DBL(eval1(ms, "increase(c[100s])", 160000, &nn, NULL), 65);
    /* 2.x regexes: '.' does not match a newline (3.x compiles them with (?s)) */
    struct re_label lnl[] = {{"__name__", "nl"}, {"v", "a\nb"}};
    re_memstore_add(ms, lnl, 2, 0, 1, NULL);
    eval1(ms, "nl{v=~\"a.b\"}", 0, &nn, &o2);
    CHECK_EQ_INT(nn, 0);
    eval1(ms, "nl{v=~\"a.b\"}", 0, &nn, NULL);
    CHECK_EQ_INT(nn, 1);
    struct promql_result *lr = eval_v2(ms, "label_replace(nl, \"w\", \"x\", \"v\", \"a.b\")", 0);
    TAP_OK(lr && lr->nseries == 1 && !has_label(&lr->series[0], "w", NULL),
           "v2: label_replace's '.' does not match a newline");
    promql_result_free(lr);
    re_memstore_free(ms);

    struct re_memstore *s = re_memstore_new();
    struct re_label lx[] = {{"__name__", "x"}};
    struct re_label ly[] = {{"__name__", "y"}, {"k", "a"}};
    struct re_label lz[] = {{"__name__", "y"}, {"k", "b"}};
    re_memstore_add(s, lx, 1, 0, 2, NULL);
    re_memstore_add(s, ly, 2, 0, 1e-300, NULL);
    re_memstore_add(s, lz, 2, 0, 1.7e308, NULL);
    /* 2.42's shouldDropMetricName leaves out atan2 */
    struct promql_result *r = eval_v2(s, "x atan2 1", 0);
    TAP_OK(r && r->nseries == 1 && has_label(&r->series[0], "__name__", "x"),
           "v2: atan2 keeps the metric name");
    promql_result_free(r);
    /* count_values labels are Go's FormatFloat(v, 'f', -1, 64) */
    r = eval_v2(s, "count_values(\"v\", y)", 0);
    CHECK(r && r->nseries == 2);
    bool tiny = false, huge = false;
    for (size_t i = 0; r && i < r->nseries; i++) {
        char want[400];
        snprintf(want, sizeof(want), "0.%0299d1", 0);
        tiny |= has_label(&r->series[i], "v", want);
        snprintf(want, sizeof(want), "17%0307d", 0);
        huge |= has_label(&r->series[i], "v", want);
    }
    TAP_OK(tiny && huge, "count_values formats 1e-300 and 1.7e308 as Go does");
    promql_result_free(r);

    /* 2.42 applies vector/scalar arithmetic to the float value of a histogram sample and
     * passes the histogram on unchanged; between two histograms only + is defined */
    struct hcollect hc = {s, 0};
    CHECK_EQ_INT(
        promql_expand_values("{{schema:0 sum:5 count:4 buckets:[1 2 1]}}", store_hist, &hc, &err),
        0);
    r = eval_v2(s, "lat / 2", 0);
    TAP_OK(r && r->nseries == 1 && r->series[0].points[0].h &&
               r->series[0].points[0].h->count == 4 && !has_label(&r->series[0], "__name__", NULL),
           "v2: histogram / 2 is the histogram unchanged, without its name");
    promql_result_free(r);
    r = eval_v2(s, "lat + lat", 0);
    TAP_OK(r && r->nseries == 1 && r->series[0].points[0].h && r->series[0].points[0].h->count == 8,
           "v2: histogram + histogram adds");
    promql_result_free(r);
    r = eval_v2(s, "lat - lat", 0);
    TAP_OK(r && r->nseries == 1 && !r->series[0].points[0].h && r->series[0].points[0].v == 0,
           "v2: histogram - histogram is the float 0");
    promql_result_free(r);
    /* most functions and aggregations read a histogram's float value, 0 */
    const char *zero[] = {"abs(lat)", "avg(lat)", "sum_over_time(lat[1m])", "max(lat)",
                          "label_replace(lat, \"a\", \"b\", \"\", \"\")"};
    for (size_t i = 0; i < sizeof(zero) / sizeof(zero[0]); i++) {
        r = eval_v2(s, zero[i], 0);
        TAP_OK(r && r->nseries == 1 && !r->series[0].points[0].h && r->series[0].points[0].v == 0,
               "v2: %s is the float 0", zero[i]);
        promql_result_free(r);
    }
    r = eval_v2(s, "-lat", 0);
    TAP_OK(r && r->nseries == 1 && r->series[0].points[0].h && r->series[0].points[0].h->count == 4,
           "v2: -histogram is the histogram unchanged");
    promql_result_free(r);
    r = eval_v2(s, "histogram_count(sort(lat))", 0);
    TAP_OK(r && r->nseries == 1 && r->series[0].points[0].v == 4, "v2: sort keeps histograms");
    promql_result_free(r);
    r = eval_v2(s, "lat > 0", 0);
    TAP_OK(r && r->nseries == 0, "v2: histogram > 0 drops the sample (its float value is 0)");
    promql_result_free(r);
    re_memstore_free(s);
}

static void orders(const char *src, bool want) {
    struct perr err;
    struct promql_expr *e = promql_parse(src, &err);
    TAP_OK(e && promql_orders_result(e) == want, "%s %s its result", src,
           want ? "orders" : "does not order");
    promql_free(e);
}

static void test_orders_result(void) {
    orders("sort(x)", true);
    orders("sort_desc(x) * 2", true);
    orders("topk(1, x) or y", true);
    orders("sum(bottomk by (a) (2, x))", true);
    orders("sorting_total", false);
    orders("label_replace(x, \"a\", \"topk\", \"\", \"\")", false);
    orders("sum by (a) (x)", false);
}

int main(void) {
    test_parse_errors();
    test_orders_result();
    test_deep_nesting();
    test_keyword_names();
    test_printer();
    test_durations();
    test_eval();
    test_series_notation();
    test_native_histograms();
    test_compat_v2();
    return tap_done();
}
