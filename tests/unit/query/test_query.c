/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the query API: JSON encodings, time/duration parsing, selectors, endpoints. */
#include "jsonw.h"
#include "query.h"
#include "store.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

static char *fmt_value(double v) {
    static struct sbuf b;
    sbuf_reset(&b);
    jsonw_value(&b, v);
    return b.data;
}

static char *fmt_ts(int64_t ms) {
    static struct sbuf b;
    sbuf_reset(&b);
    jsonw_ts(&b, ms);
    return b.data;
}

static char *fmt_str(const char *s, size_t n) {
    static struct sbuf b;
    sbuf_reset(&b);
    jsonw_strn(&b, s, n);
    return b.data;
}

static void test_encodings(void) {
    CHECK_EQ_STR(fmt_value(1), "\"1\"");
    CHECK_EQ_STR(fmt_value(0.1), "\"0.1\"");
    CHECK_EQ_STR(fmt_value(-2.5), "\"-2.5\"");
    CHECK_EQ_STR(fmt_value(1e-7), "\"1e-07\"");
    CHECK_EQ_STR(fmt_value(1e-6), "\"0.000001\"");
    CHECK_EQ_STR(fmt_value(1e20), "\"100000000000000000000\"");
    CHECK_EQ_STR(fmt_value(1e21), "\"1e+21\"");
    CHECK_EQ_STR(fmt_value(1.2345678901234568e-300), "\"1.2345678901234568e-300\"");
    CHECK_EQ_STR(fmt_value(0.30000000000000004), "\"0.30000000000000004\"");
    /* A subnormal whose shortest form is not a prefix of its 15-digit form. */
    CHECK_EQ_STR(fmt_value(-5.828994249469882e-310), "\"-5.8289942494699e-310\"");
    CHECK_EQ_STR(fmt_value(5e-324), "\"5e-324\"");
    CHECK_EQ_STR(fmt_value(-123456789012345), "\"-123456789012345\"");
    CHECK_EQ_STR(fmt_value(9.5), "\"9.5\"");
    CHECK_EQ_STR(fmt_value(99999999999999.99), "\"99999999999999.98\"");
    CHECK_EQ_STR(fmt_value(123456.789), "\"123456.789\"");
    CHECK_EQ_STR(fmt_value(0), "\"0\"");
    CHECK_EQ_STR(fmt_value(-0.0), "\"-0\"");
    CHECK_EQ_STR(fmt_value(NAN), "\"NaN\"");
    CHECK_EQ_STR(fmt_value(INFINITY), "\"+Inf\"");
    CHECK_EQ_STR(fmt_value(-INFINITY), "\"-Inf\"");
    CHECK_EQ_STR(fmt_value(1.7976931348623157e308), "\"1.7976931348623157e+308\"");

    CHECK_EQ_STR(fmt_ts(1700000000000), "1700000000");
    CHECK_EQ_STR(fmt_ts(1500), "1.500");
    CHECK_EQ_STR(fmt_ts(1005), "1.005");
    CHECK_EQ_STR(fmt_ts(5), "0.005");
    CHECK_EQ_STR(fmt_ts(-1500), "-1.500");
    CHECK_EQ_STR(fmt_ts(0), "0");

    const char s[] = "a<b>&\"\\\n\r\t\x01\x7f\xc3\xa9\xff\xe2\x80\xa8z";
    CHECK_EQ_STR(fmt_str(s, sizeof(s) - 1),
                 "\"a\\u003cb\\u003e\\u0026\\\"\\\\\\n\\r\\t\\u0001\x7f\xc3\xa9\\ufffd\\u2028z\"");
    CHECK_EQ_STR(fmt_str("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */

    struct re_label l[] = {{"__name__", "up"}, {"job", "a\"b"}};
    struct sbuf b = {0};
    jsonw_labels(&b, l, 2);
    CHECK_EQ_STR(b.data, "{\"__name__\":\"up\",\"job\":\"a\\\"b\"}");

    /* Buckets: negative idx 1 = [-2,-1), zero bucket, positive idx 0 = (0.5,1] and
     * idx 1 = (1,2]; the empty positive idx 3 is left out. */
    struct re_span ps[] = {{0, 2}, {1, 1}}, ns[] = {{1, 1}};
    double pb[] = {3, 5, 0}, nb[] = {2};
    struct re_hist h = {.schema = 0,
                        .zero_threshold = 0.001,
                        .zero_count = 1,
                        .count = 11,
                        .sum = 4.5,
                        .pspans = ps,
                        .npspans = 2,
                        .pbuckets = pb,
                        .npbuckets = 3,
                        .nspans = ns,
                        .nnspans = 1,
                        .nbuckets = nb,
                        .nnbuckets = 1};
    sbuf_reset(&b);
    jsonw_hist(&b, &h);
    CHECK_EQ_STR(b.data, "{\"count\":\"11\",\"sum\":\"4.5\",\"buckets\":[[1,\"-2\",\"-1\",\"2\"],"
                         "[3,\"-0.001\",\"0.001\",\"1\"],[0,\"0.5\",\"1\",\"3\"],"
                         "[0,\"1\",\"2\",\"5\"]]}");
    struct re_hist empty = {.schema = 3, .count = 0, .sum = 0};
    sbuf_reset(&b);
    jsonw_hist(&b, &empty);
    CHECK_EQ_STR(b.data, "{\"count\":\"0\",\"sum\":\"0\"}");
    sbuf_fini(&b);

    CHECK_EQ_DBL(re_hist_bound(0, 3), 1);
    CHECK_EQ_DBL(re_hist_bound(8, 3), 2);
    CHECK_EQ_DBL(re_hist_bound(-8, 3), 0.5);
    CHECK_EQ_DBL(re_hist_bound(2, -1), 16);
    CHECK_EQ_DBL(re_hist_bound(1024, 0), 1.7976931348623157e308);
    CHECK(fabs(re_hist_bound(1, 1) - 1.4142135623730951) < 1e-15);
}

/* Reference: the first precision whose %.*e reads back (the nearest shortest form), in Go's
 * 'e' layout. Slow but plainly right. */
static void ref_e(double v, char *out, size_t len) {
    char tmp[64];
    int prec = 1;
    for (; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    char *e = strchr(tmp, 'e');
    int ex = atoi(e + 1);
    *e = '\0';
    snprintf(out, len, "%se%c%02d", tmp, ex < 0 ? '-' : '+', ex < 0 ? -ex : ex);
}

static void test_shortest_random(void) {
    /* xorshift64: deterministic bit patterns over the whole finite range, plus values with
     * few digits (the 15-digit path) and ties of the 17-digit form. */
    uint64_t x = 88172645463325252ULL;
    int bad = 0;
    struct sbuf b = {0};
    char want[96];
    for (int i = 0; i < 120000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double v;
        if (i % 3 == 0) {
            uint64_t bits = x;
            memcpy(&v, &bits, sizeof(v));
            if (!isfinite(v) || v == 0) continue;
        } else if (i % 3 == 1) {
            v = (double)(x % 100000000) / 1000.0 * ((x >> 40) % 2 ? 1 : -1);
            if (v == 0) continue;
        } else {
            v = (double)(x % 1000000007) / (double)((x >> 33) % 997 + 1);
            if (v == 0) continue;
        }
        sbuf_reset(&b);
        jsonw_gofloat(&b, v, 'e');
        ref_e(v, want, sizeof(want));
        if (strcmp(b.data, want) != 0 && bad++ < 5)
            printf("#   %.17g: got %s want %s\n", v, b.data, want);
    }
    CHECK_EQ_INT(bad, 0);
    sbuf_fini(&b);
}

static void test_params(void) {
    int64_t ms = 0;
    CHECK(query_parse_time("1700000000", &ms) == 0 && ms == 1700000000000);
    CHECK(query_parse_time("1700000000.1234", &ms) == 0 && ms == 1700000000123);
    CHECK(query_parse_time("1700000000.9996", &ms) == 0 && ms == 1700000001000);
    CHECK(query_parse_time("-1.5", &ms) == 0 && ms == -1500);
    CHECK(query_parse_time("1.7e9", &ms) == 0 && ms == 1700000000000);
    CHECK(query_parse_time("2023-11-14T22:13:20Z", &ms) == 0 && ms == 1700000000000);
    CHECK(query_parse_time("2023-11-14T22:13:20.123456789Z", &ms) == 0 && ms == 1700000000123);
    CHECK(query_parse_time("2023-11-15T00:13:20+02:00", &ms) == 0 && ms == 1700000000000);
    CHECK(query_parse_time("1969-12-31T23:59:59.5Z", &ms) == 0 && ms == -500);
    CHECK(query_parse_time("2023-02-29T00:00:00Z", &ms) == -EINVAL);
    CHECK(query_parse_time("2023-11-14 22:13:20Z", &ms) == -EINVAL);
    CHECK(query_parse_time("2023-11-14T22:13:20", &ms) == -EINVAL);
    CHECK(query_parse_time(" 1", &ms) == -EINVAL);
    CHECK(query_parse_time("abc", &ms) == -EINVAL);
    CHECK(query_parse_time("", &ms) == -EINVAL);
    /* Go's conversions: NaN and Inf saturate to INT64_MIN, then wrap (Prometheus answers
     * such times too); 1e20 s saturates and wraps to 0, 9.3e15 s wraps below zero. */
    CHECK(query_parse_time("NaN", &ms) == 0 && ms == -9223372036855);
    CHECK(query_parse_time("-Inf", &ms) == 0 && ms == -9223372036855);
    CHECK(query_parse_time("1e20", &ms) == 0 && ms == 0);
    CHECK(query_parse_time("1e400", &ms) == -EINVAL);
    CHECK(query_parse_time("1e-400", &ms) == 0 && ms == 0);
    CHECK(query_parse_time("0x10", &ms) == -EINVAL);
    CHECK(query_parse_time("0x1p4", &ms) == 0 && ms == 16000);
    CHECK(query_parse_time("nan(1)", &ms) == -EINVAL);
    CHECK(query_parse_time("9.3e15", &ms) == 0 && ms == INT64_C(-9146744073709551616));
    CHECK(query_parse_time("292277025-08-18T07:12:54.999999999Z", &ms) == 0 && ms > 0);

    int64_t ns = 0;
    CHECK(query_parse_duration("5", &ns) == 0 && ns == 5000000000);
    CHECK(query_parse_duration("0.0015", &ns) == 0 && ns == 1500000);
    CHECK(query_parse_duration("1m30s", &ns) == 0 && ns == 90000000000);
    CHECK(query_parse_duration("1h5ms", &ns) == 0 && ns == 3600005000000);
    CHECK(query_parse_duration("0", &ns) == 0 && ns == 0);
    CHECK(query_parse_duration("5s1m", &ns) == -EINVAL);
    CHECK(query_parse_duration("1.5m", &ns) == -EINVAL);
    CHECK(query_parse_duration("", &ns) == -EINVAL);
    CHECK(query_parse_duration("1e30", &ns) == -EOVERFLOW);
    CHECK(query_parse_duration("1e400", &ns) == -EINVAL);
    CHECK(query_parse_duration("NaN", &ns) == 0 && ns == INT64_MIN);
    CHECK(query_parse_duration("1_0", &ns) == 0 && ns == 10000000000);
    CHECK(query_parse_duration("1__0", &ns) == -EINVAL);
    CHECK(query_parse_duration("_1", &ns) == -EINVAL);
    CHECK(query_parse_time("1_700_000_000", &ms) == 0 && ms == 1700000000000);

    struct re_matcher *m = NULL;
    size_t nm = 0;
    struct perr err = {0};
    CHECK(query_parse_selector("up", &m, &nm, &err) == 0 && nm == 1 &&
          !strcmp(m[0].name, "__name__") && !strcmp(m[0].value, "up"));
    for (size_t i = 0; i < nm; i++)
        re_matcher_fini(&m[i]);
    free(m);
    CHECK(query_parse_selector(" k6:x{ a = \"b\\\"c\", b!~'x.*' ,c=~`\\d`, } ", &m, &nm, &err) ==
          0);
    CHECK_EQ_INT(nm, 4);
    if (nm == 4) {
        CHECK_EQ_STR(m[1].value, "b\"c");
        CHECK(m[2].type == RE_MATCH_NRE);
        CHECK_EQ_STR(m[3].value, "\\d");
        CHECK(re_matcher_matches(&m[3], "7") && !re_matcher_matches(&m[3], "77"));
    }
    for (size_t i = 0; i < nm; i++)
        re_matcher_fini(&m[i]);
    free(m);
    CHECK(query_parse_selector("{}", &m, &nm, &err) == -EINVAL);
    CHECK(query_parse_selector("up{", &m, &nm, &err) == -EINVAL);
    CHECK(query_parse_selector("rate(x[5m])", &m, &nm, &err) == -EINVAL);
    CHECK(query_parse_selector("x{a=~\"(\"}", &m, &nm, &err) == -EINVAL);
    CHECK(query_parse_selector("x + y", &m, &nm, &err) == -EINVAL);
    CHECK(strstr(err.msg, "parse error") != NULL);
}

/* Parameters from a NULL-terminated list of name/value pairs. */
struct kv {
    const char *const *pairs;
};

static const char *kv_get(void *ctx, const char *name) {
    const struct kv *k = ctx;
    for (size_t i = 0; k->pairs[i]; i += 2)
        if (!strcmp(k->pairs[i], name)) return k->pairs[i + 1];
    return NULL;
}

static int kv_each(void *ctx, const char *name, int (*fn)(void *arg, const char *value),
                   void *arg) {
    const struct kv *k = ctx;
    for (size_t i = 0; k->pairs[i]; i += 2)
        if (!strcmp(k->pairs[i], name)) {
            int rc = fn(arg, k->pairs[i + 1]);
            if (rc) return rc;
        }
    return 0;
}

typedef int endpoint_fn(const struct query_env *env, const struct query_params *p,
                        struct sbuf *out);

static int call(const struct query_env *env, endpoint_fn *fn, struct sbuf *out,
                const char *const *pairs) {
    struct kv k = {pairs};
    struct query_params p = {kv_get, kv_each, &k, 1000000};
    sbuf_reset(out);
    return fn(env, &p, out);
}

static void add(struct store *s, const char *name, const char *job, int64_t t, double v) {
    struct re_label l[] = {{"__name__", name}, {"job", job}};
    store_append(s, l, 2, t, v);
}

static void test_endpoints(void) {
    struct store_opts so = {.retention_ms = 0, .max_series = 1000};
    struct store *s = store_new(&so);
    for (int64_t t = 0; t <= 600000; t += 15000) {
        add(s, "m", "a", t, (double)t / 1000);
        add(s, "m", "b", t, 1);
        add(s, "g", "a", t, 0.5);
    }
    struct query_env env = {
        .store = s, .max_samples = 50000000, .timeout_ms = 120000, .lookback_ms = 300000};
    struct sbuf out = {0};

    CHECK_EQ_INT(
        call(&env, query_instant, &out, (const char *[]){"query", "sum(m)", "time", "600", NULL}),
        200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                           "\"result\":[{\"metric\":{},\"value\":[600,\"601\"]}]}}");
    CHECK_EQ_INT(
        call(&env, query_instant, &out,
             (const char *[]){"query", "m{job=\"a\"}", "time", "1970-01-01T00:01:00Z", NULL}),
        200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\","
                           "\"result\":[{\"metric\":{\"__name__\":\"m\",\"job\":\"a\"},"
                           "\"value\":[60,\"60\"]}]}}");
    /* Default time is now (1000 s here); m's last sample at 600 s is past the lookback. */
    CHECK_EQ_INT(call(&env, query_instant, &out, (const char *[]){"query", "m", NULL}), 200);
    CHECK(strstr(out.data, "\"result\":[]") != NULL);

    CHECK_EQ_INT(call(&env, query_range, &out,
                      (const char *[]){"query", "m{job=\"b\"} * 2", "start", "300", "end", "330",
                                       "step", "15s", NULL}),
                 200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\","
                           "\"result\":[{\"metric\":{\"job\":\"b\"},\"values\":[[300,\"2\"],"
                           "[315,\"2\"],[330,\"2\"]]}]}}");
    /* Instant vectors come in label order, unless the query orders them itself. */
    CHECK_EQ_INT(call(&env, query_instant, &out,
                      (const char *[]){"query", "m{job=~\"b|a\"}", "time", "300", NULL}),
                 200);
    CHECK(strstr(out.data, "\"job\":\"a\"") < strstr(out.data, "\"job\":\"b\""));
    CHECK_EQ_INT(call(&env, query_instant, &out,
                      (const char *[]){"query", "(sort(m))", "time", "300", NULL}),
                 200);
    CHECK(strstr(out.data, "\"job\":\"b\"") < strstr(out.data, "\"job\":\"a\""));
    CHECK_EQ_INT(
        call(&env, query_instant, &out,
             (const char *[]){"query", "sort_by_label_desc(m, \"job\")", "time", "300", NULL}),
        200);
    CHECK(strstr(out.data, "\"job\":\"b\"") < strstr(out.data, "\"job\":\"a\""));
    CHECK_EQ_INT(call(&env, query_instant, &out,
                      (const char *[]){"query", "bottomk(1, m) or m", "time", "300", NULL}),
                 200);
    CHECK(strstr(out.data, "\"job\":\"b\"") < strstr(out.data, "\"job\":\"a\""));
    /* PromQL annotations: 3.x splits infos from warnings; 2.x has none. */
    CHECK_EQ_INT(call(&env, query_instant, &out,
                      (const char *[]){"query", "rate(m[1m])", "time", "300", NULL}),
                 200);
    CHECK(strstr(out.data, ",\"infos\":[\"PromQL info: metric might not be a counter") != NULL);
    CHECK(strstr(out.data, "\"warnings\"") == NULL);
    struct query_env v2 = env;
    v2.compat_v2 = true;
    CHECK_EQ_INT(call(&v2, query_instant, &out,
                      (const char *[]){"query", "rate(m[1m])", "time", "300", NULL}),
                 200);
    CHECK(strstr(out.data, "infos") == NULL);

    /* Errors: Prometheus's types, codes and texts. */
    CHECK_EQ_INT(call(&env, query_instant, &out, (const char *[]){"query", "sum(", NULL}), 400);
    CHECK(strstr(out.data, "\"errorType\":\"bad_data\",\"error\":\"invalid parameter "
                           "\\\"query\\\": 1:5: parse error") != NULL);
    CHECK_EQ_INT(call(&env, query_instant, &out, (const char *[]){"query", "1", "time", "x", NULL}),
                 400);
    CHECK_EQ_STR(out.data, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                           "\"invalid parameter \\\"time\\\": Invalid time value for 'time': "
                           "cannot parse \\\"x\\\" to a valid timestamp\"}");
    CHECK_EQ_INT(
        call(&env, query_range, &out,
             (const char *[]){"query", "m", "start", "0", "end", "100000", "step", "1", NULL}),
        400);
    CHECK(strstr(out.data, "exceeded maximum resolution of 11,000 points") != NULL);
    CHECK_EQ_INT(call(&env, query_range, &out,
                      (const char *[]){"query", "m", "start", "10", "end", "5", "step", "1", NULL}),
                 400);
    CHECK(strstr(out.data, "end timestamp must not be before start time") != NULL);
    CHECK_EQ_INT(call(&env, query_range, &out,
                      (const char *[]){"query", "m", "start", "0", "end", "5", "step", "0", NULL}),
                 400);
    CHECK_EQ_INT(
        call(&env, query_range, &out,
             (const char *[]){"query", "m[1m]", "start", "0", "end", "5", "step", "1", NULL}),
        400);
    CHECK(strstr(out.data, "invalid expression type \\\"range vector\\\" for range query") != NULL);
    struct query_env small = env;
    small.max_samples = 10;
    CHECK_EQ_INT(
        call(&small, query_range, &out,
             (const char *[]){"query", "m", "start", "0", "end", "600", "step", "5", NULL}),
        422);
    CHECK(strstr(out.data, "\"errorType\":\"execution\"") != NULL);
    CHECK(strstr(out.data, "too many samples") != NULL);
    CHECK_EQ_INT(call(&env, query_range, &out,
                      (const char *[]){"query", "m", "start", "0", "end", "600", "step", "5",
                                       "timeout", "0", NULL}),
                 503);
    CHECK_EQ_STR(out.data, "{\"status\":\"error\",\"errorType\":\"timeout\",\"error\":"
                           "\"query timed out in query queue\"}");
    CHECK_EQ_INT(
        call(&env, query_instant, &out, (const char *[]){"query", "m", "timeout", "soon", NULL}),
        400);

    /* Series, labels, values. */
    CHECK_EQ_INT(call(&env, query_series, &out,
                      (const char *[]){"match[]", "m", "match[]", "{job=\"a\"}", NULL}),
                 200);
    CHECK_EQ_STR(out.data,
                 "{\"status\":\"success\",\"data\":[{\"__name__\":\"g\",\"job\":\"a\"},"
                 "{\"__name__\":\"m\",\"job\":\"a\"},{\"__name__\":\"m\",\"job\":\"b\"}]}");
    CHECK_EQ_INT(
        call(&env, query_series, &out, (const char *[]){"match[]", "m", "start", "700", NULL}),
        200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":[]}");
    CHECK_EQ_INT(call(&env, query_series, &out, (const char *[]){NULL}), 400);
    CHECK_EQ_INT(call(&env, query_series, &out, (const char *[]){"match[]", "{job=~\".*\"}", NULL}),
                 400);
    CHECK(strstr(out.data, "at least one non-empty matcher") != NULL);
    CHECK_EQ_INT(call(&env, query_labels, &out, (const char *[]){NULL}), 200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":[\"__name__\",\"job\"]}");
    struct kv k = {(const char *[]){"match[]", "g", NULL}};
    struct query_params p = {kv_get, kv_each, &k, 1000000};
    sbuf_reset(&out);
    CHECK_EQ_INT(query_label_values(&env, &p, "job", &out), 200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":[\"a\"]}");
    k.pairs = (const char *[]){NULL};
    sbuf_reset(&out);
    CHECK_EQ_INT(query_label_values(&env, &p, "__name__", &out), 200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":[\"g\",\"m\"]}");
    sbuf_reset(&out);
    CHECK_EQ_INT(query_label_values(&env, &p, "1x", &out), 400);

    sbuf_fini(&out);
    store_free(s);
}

/* A fake metadata walker over a fixed table. */
static int fake_walk(void *ctx, const char *family,
                     int (*fn)(void *arg, const char *family, int type, const char *help,
                               const char *unit),
                     void *arg) {
    (void)ctx;
    static const struct {
        const char *f, *h, *u;
        int t;
    } tab[] = {{"k6_http_reqs_total", "Requests", "", 1},
               {"busy_worker_threads", "", "", 2},
               {"k6_http_req_duration_seconds", "Durations <b>", "seconds", 3}};
    for (size_t i = 0; i < 3; i++) {
        if (family && strcmp(family, tab[i].f)) continue;
        int rc = fn(arg, tab[i].f, tab[i].t, tab[i].h, tab[i].u);
        if (rc) return rc;
    }
    return 0;
}

static void test_metadata(void) {
    struct sbuf out = {0};
    struct kv k = {(const char *[]){NULL}};
    struct query_params p = {kv_get, kv_each, &k, 0};
    CHECK_EQ_INT(query_metadata(&p, fake_walk, NULL, &out), 200);
    CHECK_EQ_STR(out.data,
                 "{\"status\":\"success\",\"data\":{\"busy_worker_threads\":[{\"type\":\"gauge\","
                 "\"help\":\"\",\"unit\":\"\"}],\"k6_http_req_duration_seconds\":[{\"type\":"
                 "\"histogram\",\"help\":\"Durations \\u003cb\\u003e\",\"unit\":\"seconds\"}],"
                 "\"k6_http_reqs_total\":[{\"type\":\"counter\",\"help\":\"Requests\",\"unit\":"
                 "\"\"}]}}");
    k.pairs = (const char *[]){"limit", "1", NULL};
    sbuf_reset(&out);
    CHECK_EQ_INT(query_metadata(&p, fake_walk, NULL, &out), 200);
    CHECK(strstr(out.data, "busy_worker_threads") && !strstr(out.data, "k6_"));
    k.pairs = (const char *[]){"metric", "k6_http_reqs_total", NULL};
    sbuf_reset(&out);
    CHECK_EQ_INT(query_metadata(&p, fake_walk, NULL, &out), 200);
    CHECK(strstr(out.data, "k6_http_reqs_total") && !strstr(out.data, "busy"));
    k.pairs = (const char *[]){"limit", "x", NULL};
    sbuf_reset(&out);
    CHECK_EQ_INT(query_metadata(&p, fake_walk, NULL, &out), 400);
    CHECK_EQ_STR(out.data, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":"
                           "\"limit must be a number\"}");
    k.pairs = (const char *[]){NULL};
    sbuf_reset(&out);
    CHECK_EQ_INT(query_metadata(&p, NULL, NULL, &out), 200);
    CHECK_EQ_STR(out.data, "{\"status\":\"success\",\"data\":{}}");
    sbuf_fini(&out);
}

int main(void) {
    test_encodings();
    test_shortest_random();
    test_params();
    test_endpoints();
    test_metadata();
    return tap_done();
}
