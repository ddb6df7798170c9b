/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of expfmt_parse: what is accepted, what is reported, and expfmt's error texts. */
#include "proto.h"

#include "push_body.h"
#include "tap.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>

/* Transcript sink: "F name|help|type;" and "S fam|name{a=b,}v@ts;" */
struct tr {
    char s[4096];
    int stop_at; /* return 7 at this sample (1-based), 0 = never */
    int n;
};

static void tr_add(struct tr *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tr_add(struct tr *t, const char *fmt, ...) {
    size_t o = strlen(t->s);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->s + o, sizeof t->s - o, fmt, ap);
    va_end(ap);
}

static int tr_family(void *arg, const char *name, const char *help, enum expfmt_type type) {
    tr_add(arg, "F %s|%s|%s;", name, help ? help : "(nil)", expfmt_type_name(type));
    return 0;
}

static int tr_sample(void *arg, const char *fam, const char *name, const struct proto_label *l,
                     size_t n, double v, bool has_ts, int64_t ts) {
    struct tr *t = arg;
    tr_add(t, "S %s|%s{", fam, name);
    for (size_t i = 0; i < n; i++) {
        if (strlen(l[i].name) != l[i].name_len || strlen(l[i].value) != l[i].value_len)
            tr_add(t, "<len mismatch>");
        tr_add(t, "%s=%s,", l[i].name, l[i].value);
    }
    tr_add(t, "}%.17g", v);
    if (has_ts) tr_add(t, "@%lld", (long long)ts);
    tr_add(t, ";");
    if (t->stop_at && ++t->n == t->stop_at) return 7;
    return 0;
}

static int parse(const char *in, struct tr *t, struct perr *e) {
    memset(t->s, 0, sizeof t->s);
    struct expfmt_sink s = {t, tr_family, tr_sample};
    return expfmt_parse((const uint8_t *)in, strlen(in), &s, e);
}

static void ok(const char *in, const char *want, const char *what) {
    struct tr t = {0};
    struct perr e;
    int rc = parse(in, &t, &e);
    TAP_OK(rc == 0 && strcmp(t.s, want) == 0, "%s", what);
    if (rc)
        printf("#   rc %d: %s\n", rc, e.msg);
    else if (strcmp(t.s, want))
        printf("#   got  %s\n#   want %s\n", t.s, want);
}

static void bad(const char *in, const char *want_msg, const char *what) {
    struct tr t = {0};
    struct perr e;
    int rc = parse(in, &t, &e);
    TAP_OK(rc == -EPROTO && strcmp(e.msg, want_msg) == 0, "%s", what);
    if (rc != -EPROTO || strcmp(e.msg, want_msg))
        printf("#   rc %d\n#   got  %s\n#   want %s\n", rc, e.msg, want_msg);
}

static void test_push_body(void) {
    struct tr t = {0};
    struct perr e;
    CHECK_EQ_INT(parse(push_body, &t, &e), 0);
    CHECK(strstr(t.s, "F busy_worker_threads|(nil)|gauge;S busy_worker_threads|"
                      "busy_worker_threads{}6;") != NULL);
    CHECK(strstr(t.s, "F system_runtime_threadpool_queue_length|Length of the thread pool work "
                      "item queue.|gauge;S system_runtime_threadpool_queue_length|"
                      "system_runtime_threadpool_queue_length{}43;") != NULL);
    CHECK(strstr(t.s, "system_runtime_cpu_usage{}12.5;") != NULL);
}

static void test_basic(void) {
    ok("a 1\n", "F a|(nil)|untyped;S a|a{}1;", "untyped sample");
    ok("  a{x=\"1\"} -3e3 103948\n", "F a|(nil)|untyped;S a|a{x=1,}-3000@103948;",
       "labels, exponent, timestamp, leading blanks");
    ok("a{} 0\n", "F a|(nil)|untyped;S a|a{}0;", "empty braces");
    ok("a{x=\"1\",} -Inf -5\n", "F a|(nil)|untyped;S a|a{x=1,}-inf@-5;",
       "trailing comma, -Inf, negative timestamp");
    ok("a NaN\nb +Inf\nc inf\nd Infinity\ne .5\nf 5.\ng +1E-2\n",
       "F a|(nil)|untyped;S a|a{}nan;F b|(nil)|untyped;S b|b{}inf;F c|(nil)|untyped;S c|c{}inf;"
       "F d|(nil)|untyped;S d|d{}inf;F e|(nil)|untyped;S e|e{}0.5;F f|(nil)|untyped;S f|f{}5;"
       "F g|(nil)|untyped;S g|g{}0.01;",
       "float spellings");
    ok("a 1e-400\n", "F a|(nil)|untyped;S a|a{}0;", "underflow is zero, as in Go");
    ok("\n\n   \n# just a comment\n#\n# HELP\n# TYPE\n", "", "blank lines and comments only");
    ok("", "", "empty input");
    ok("   ", "", "blanks without newline at the end");
    ok("m{a=\"x\\\\y\\\"z\\nw\", b = \"Προμηθεύς\"}\t1\n",
       "F m|(nil)|untyped;S m|m{a=x\\y\"z\nw,b=Προμηθεύς,}1;", "escapes and UTF-8 in values");
    ok("# HELP m line\\none \\\\ \\\" x\n# TYPE m counter\nm 1\n",
       "F m|line\none \\ \" x|counter;S m|m{}1;", "HELP escapes");
    ok("#HELP m h\n#TYPE m gauge\nm 2\n", "F m|h|gauge;S m|m{}2;", "no blank after #");
    ok(" # HELP  m  \tdoc\n  #    TYPE    m gauge\nm 1\n", "F m|doc|gauge;S m|m{}1;",
       "odd spacing in HELP/TYPE");
    ok("# HELP m \n# HELP m second\nm 1\n", "F m|second|untyped;S m|m{}1;",
       "empty HELP sets nothing, a later HELP is the first");
    ok("# TYPE m COUNTER\nm 1\n", "F m|(nil)|counter;S m|m{}1;", "type is case-insensitive");
}

static void test_families(void) {
    ok("# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\ns{a=\"b\"} 9\n"
       "s_bucket{le=\"1\"} 1\n",
       "F s|(nil)|summary;S s|s{quantile=0.5,}1;S s|s_sum{}2;S s|s_count{}3;"
       "F s_bucket|(nil)|untyped;S s_bucket|s_bucket{le=1,}1;",
       "summary: _sum/_count join, sample without quantile dropped, _bucket is its own family");
    ok("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 2\nh_count 3\nh_bucket 1\n",
       "F h|(nil)|histogram;S h|h_bucket{le=+Inf,}3;S h|h_sum{}2;S h|h_count{}3;",
       "histogram: _bucket/_sum/_count join, bucket without le dropped");
    ok("x_count 1\n# TYPE x summary\nx_count 2\n",
       "F x_count|(nil)|untyped;S x_count|x_count{}1;S x_count|x_count{}2;",
       "an existing exact family wins over the summary suffix");
    ok("a 1\nb 2\na 3\n# HELP a late\n",
       "F a|(nil)|untyped;S a|a{}1;F b|(nil)|untyped;S b|b{}2;S a|a{}3;F a|late|untyped;",
       "interleaved family is fine; late HELP re-reports the family");
    ok("# TYPE s summary\ns{quantile=\"NaN\"} 1\ns{quantile=\"0.9\",quantile=\"0.5\"} 2\n",
       "F s|(nil)|summary;S s|s{quantile=0.5,}2;",
       "NaN quantile dropped; a repeated quantile is not a duplicate, the last one wins");
    ok("# HELP only_meta x\n# TYPE only_meta gauge\n", "",
       "families without samples are not "
       "reported");
    ok("# TYPE g gauge_histogram\n", "", "gauge_histogram TYPE alone is accepted");
}

static void test_errors(void) {
    bad("bla 3.14", "text format parsing error in line 1: unexpected end of input stream",
        "no final newline");
    bad("metric{label=\"\\t\"} 3.14\n",
        "text format parsing error in line 1: invalid escape sequence '\\t'", "bad escape");
    bad("\nmetric{label=\"new\nline\"} 3.14\n",
        "text format parsing error in line 2: label value \"new\" contains unescaped new-line",
        "raw newline in value");
    bad("metric{@=\"bla\"} 3.14\n",
        "text format parsing error in line 1: invalid label name for metric \"metric\"",
        "bad label name");
    bad("metric{__name__=\"bla\"} 3.14\n",
        "text format parsing error in line 1: label name \"__name__\" is reserved", "__name__");
    bad("metric{label+=\"bla\"} 3.14\n",
        "text format parsing error in line 1: expected '=' after label name, found '+'",
        "missing =");
    bad("metric{label=bla} 3.14\n",
        "text format parsing error in line 1: expected '\"' at start of label value, found 'b'",
        "unquoted value");
    bad("\n# TYPE metric summary\nmetric{quantile=\"bla\"} 3.14\n",
        "text format parsing error in line 3: expected float as value for 'quantile' label, got "
        "\"bla\"",
        "quantile not a float");
    bad("metric{label=\"bla\"+} 3.14\n",
        "text format parsing error in line 1: unexpected end of label value \"bla\"",
        "junk after value");
    bad("metric{label=\"bla\"} 3.14 2.72\n",
        "text format parsing error in line 1: expected integer as timestamp, got \"2.72\"",
        "float timestamp");
    bad("metric{label=\"bla\"} 3.14 2 3\n",
        "text format parsing error in line 1: spurious string after timestamp: \" 3\"",
        "junk after timestamp");
    bad("metric{label=\"bla\"} blubb\n",
        "text format parsing error in line 1: expected float as value, got \"blubb\"", "bad value");
    bad("\n# HELP metric one\n# HELP metric two\n",
        "text format parsing error in line 3: second HELP line for metric name \"metric\"",
        "second HELP");
    bad("\n# TYPE metric counter\n# TYPE metric untyped\n",
        "text format parsing error in line 3: second TYPE line for metric name \"metric\", or "
        "TYPE reported after samples",
        "second TYPE");
    bad("\nmetric 4.12\n# TYPE metric counter\n",
        "text format parsing error in line 3: second TYPE line for metric name \"metric\", or "
        "TYPE reported after samples",
        "TYPE after samples");
    bad("\n# TYPE metric bla\n", "text format parsing error in line 2: unknown metric type \"bla\"",
        "unknown type");
    bad("# TYPE m gauge \n", "text format parsing error in line 1: unknown metric type \"gauge \"",
        "TYPE with trailing blank");
    bad("\n# TYPE met-ric\n", "text format parsing error in line 2: invalid metric name in comment",
        "bad name in TYPE");
    bad("@invalidmetric{label=\"bla\"} 3.14 2\n",
        "text format parsing error in line 1: invalid metric name", "bad metric name");
    bad("{label=\"bla\"} 3.14 2\n", "text format parsing error in line 1: invalid metric name",
        "no metric name");
    bad("metric{label=\"bla\",label=\"bla\"} 3.14\n",
        "text format parsing error in line 1: duplicate label names for metric \"metric\"",
        "duplicate label");
    bad("metric{l=\"\xbd\"} 3.14\n",
        "text format parsing error in line 1: invalid label value \"\\xbd\"", "invalid UTF-8");
    bad("foo 0x1p-3\n",
        "text format parsing error in line 1: expected float as value, got "
        "\"0x1p-3\"",
        "hex float");
    bad("foo 1_2\n", "text format parsing error in line 1: expected float as value, got \"1_2\"",
        "digit separator");
    bad("foo 1e400\n",
        "text format parsing error in line 1: expected float as value, got "
        "\"1e400\"",
        "overflow");
    bad("foo +nan\n",
        "text format parsing error in line 1: expected float as value, got "
        "\"+nan\"",
        "signed NaN");
    bad("foo 1 \n", "text format parsing error in line 1: expected integer as timestamp, got \"\"",
        "blank after value needs a timestamp");
    bad("foo\n", "text format parsing error in line 1: expected float as value, got \"\"",
        "missing value");
    bad("foo 1 99999999999999999999\n",
        "text format parsing error in line 1: expected integer "
        "as timestamp, got \"99999999999999999999\"",
        "timestamp overflow");
    bad("# TYPE h histogram\nh_count -1\n",
        "text format parsing error in line 2: negative count for histogram \"h\"",
        "negative histogram count");
    bad("# TYPE g gauge_histogram\ng 1\n",
        "text format parsing error in line 2: unexpected type for metric name \"g\"",
        "gauge_histogram sample");
    bad("# HELP m a\\tb\n", "text format parsing error in line 1: invalid escape sequence '\\t'",
        "bad HELP escape");
    bad("# comment without newline",
        "text format parsing error in line 1: unexpected end of input stream", "comment at EOF");

    /* error position */
    struct tr t = {0};
    struct perr e;
    CHECK_EQ_INT(parse("a 1\nb{x=\"1\" y=\"2\"} 1\n", &t, &e), -EPROTO);
    CHECK_EQ_INT(e.line, 2);
    CHECK_EQ_INT(e.col, 9);
}

static void test_sink_stop(void) {
    struct tr t = {.stop_at = 2};
    struct perr e;
    struct expfmt_sink s = {&t, tr_family, tr_sample};
    const char *in = "a 1\nb 2\nc 3\n";
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)in, strlen(in), &s, &e), 7);
    CHECK_EQ_INT(e.line, 2);
    CHECK(strstr(t.s, "c{}") == NULL);
    /* NULL sink and NULL err are allowed */
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)in, strlen(in), NULL, NULL), 0);
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)"x", 1, NULL, NULL), -EPROTO);
}

/* The buffer need not be NUL-terminated: parse a prefix of a larger string. */
static void test_no_nul(void) {
    const char *in = "a 1\nb 2\nGARBAGE";
    struct tr t = {0};
    struct expfmt_sink s = {&t, tr_family, tr_sample};
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)in, 8, &s, NULL), 0);
    CHECK_EQ_STR(t.s, "F a|(nil)|untyped;S a|a{}1;F b|(nil)|untyped;S b|b{}2;");
}

/* Many labels on one line exercise the duplicate-name hash set growth. */
static void test_many_labels(void) {
    static char in[40000];
    size_t o = (size_t)snprintf(in, sizeof in, "m{");
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(in + o, sizeof in - o, "l%d=\"v\",", i);
    snprintf(in + o, sizeof in - o, "l7=\"dup\"} 1\n");
    struct perr e;
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)in, strlen(in), NULL, &e), -EPROTO);
    CHECK(strstr(e.msg, "duplicate label names") != NULL);
    snprintf(in + o, sizeof in - o, "} 1\nm{a=\"1\",b=\"2\"} 2\n");
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)in, strlen(in), NULL, &e), 0);
}

/* Review issue 4, finding 3: NUL bytes in label values are refused (the store keeps
 * NUL-terminated strings); a repeated le/quantile is passed once, with the last value, as
 * expfmt keeps it (measured on Pushgateway 1.5.1: h_bucket{le="1",le="2"} 3 is stored as
 * le="2", s{quantile="0.5",quantile="0.9"} as quantile="0.9"; g{a="x",a="y"} is a 400
 * "duplicate label names for metric \"g\""). */
static void test_issue_4(void) {
    static const char nul[] = "n{a=\"x\0y\"} 3\n";
    struct tr t = {0};
    struct expfmt_sink s = {&t, tr_family, tr_sample};
    struct perr e;
    CHECK_EQ_INT(expfmt_parse((const uint8_t *)nul, sizeof nul - 1, &s, &e), -EPROTO);
    CHECK_EQ_STR(e.msg, "text format parsing error in line 1: label value \"x\\x00y\" contains "
                        "a NUL byte");
    CHECK_EQ_STR(t.s, "");
    ok("# TYPE h histogram\nh_bucket{le=\"1\",le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 3\n",
       "F h|(nil)|histogram;S h|h_bucket{le=2,}3;S h|h_bucket{le=+Inf,}3;",
       "repeated le: the last one wins, passed once");
    ok("# TYPE h histogram\nh_bucket{le=\"1\",x=\"a\",le=\"2\"} 3\n",
       "F h|(nil)|histogram;S h|h_bucket{le=2,x=a,}3;", "repeated le around another label");
    ok("# TYPE s summary\ns{quantile=\"0.5\",quantile=\"0.9\"} 3\n",
       "F s|(nil)|summary;S s|s{quantile=0.9,}3;", "repeated quantile: the last one wins");
    bad("g{a=\"x\",a=\"y\"} 3\n",
        "text format parsing error in line 1: duplicate label names for metric \"g\"",
        "repeated ordinary label: error, as Pushgateway 1.5.1");
    /* le is an ordinary label outside histograms: a repeat is a duplicate there */
    bad("g{le=\"1\",le=\"2\"} 3\n",
        "text format parsing error in line 1: duplicate label names for metric \"g\"",
        "repeated le on an untyped metric is a duplicate");
}

int main(void) {
    test_push_body();
    test_basic();
    test_families();
    test_errors();
    test_sink_stop();
    test_no_nul();
    test_many_labels();
    test_issue_4();
    return tap_done();
}
