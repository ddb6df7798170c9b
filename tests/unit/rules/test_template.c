/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the Go text/template subset: Prometheus' functions and Go's built-ins. */
#include "ruleeval.h"
#include "tap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int fake_query(void *arg, const char *expr, int64_t ts_ms, template_emit_fn *emit,
                      void *emit_arg, char *errbuf, size_t errlen) {
    (void)arg;
    (void)ts_ms;
    if (strstr(expr, "ZeroFor_SmallFor")) {
        /* deliberately unsorted by id */
        static const char *ids[] = {"103", "101", "102"};
        static const double vals[] = {3, 1, 2};
        for (int i = 0; i < 3; i++) {
            struct re_label l[2] = {{"__name__", "alert_generator_test_suite"}, {"id", ids[i]}};
            int rc = emit(emit_arg, l, 2, vals[i]);
            if (rc < 0) return rc;
        }
        return 0;
    }
    if (strstr(expr, "empty")) return 0;
    snprintf(errbuf, errlen, "parse error in %s", expr);
    return -EINVAL;
}

static const struct re_label lbls[] = {{"alertname", "NewAlerts_OrderCheck_Rule1"},
                                       {"foo", "bar"},
                                       {"instance", "host.example.com:9100"}};
static const struct re_label ext[] = {{"cluster", "c1"}};

static char *expand(const char *text, double value) {
    struct template_data d = {.labels = lbls,
                              .nlabels = 3,
                              .ext_labels = ext,
                              .next_labels = 1,
                              .external_url = "http://prom.example.com:9090/prefix",
                              .value = value,
                              .ts_ms = 1643114203000,
                              .query = fake_query};
    return template_expand_alert("__alert_Test", text, &d);
}

#define EXPECT(text, value, want)                                                                  \
    do {                                                                                           \
        char *got_ = expand(text, value);                                                          \
        CHECK_EQ_STR(got_, want);                                                                  \
        free(got_);                                                                                \
    } while (0)

static void check_parse_error(const char *text, const char *want_substr) {
    struct perr e = {0};
    struct template *t = template_parse("__alert_X", text, strlen(text), true, &e);
    TAP_OK(t == NULL && strstr(e.msg, want_substr) != NULL, "parse error for %s contains %s", text,
           want_substr);
    if (t || !strstr(e.msg, want_substr)) printf("#   got \"%s\"\n", e.msg);
    template_free(t);
}

int main(void) {
    /* RULEFILE.md §3.2 verbatim targets */
    EXPECT("{{humanize 1048576}} {{humanize1024 1048576}} {{humanizeDuration 135.3563}} "
           "{{humanizePercentage 0.959}} {{humanizeTimestamp 1643114203}}",
           0, "1.049M 1Mi 2m 15s 95.9% 2022-01-25 12:36:43 +0000 UTC");
    EXPECT("{{title \"this part\"}} {{toUpper \"is testing\"}} {{toLower \"THE STRINGS\"}}. {{ "
           "stripPort \"[::1]:6006\"}} {{ stripPort \"127.0.0.1:4004\"}}. {{parseDuration "
           "\"2h10m15s\"}}. {{if match \"[0-9]+\" \"1234\"}}{{reReplaceAll \"r.*d\" \"replaced\" "
           "\"rpld text\"}}{{end}}. {{if match \"[0-9]+$\" \"1234a\"}}WRONG{{end}}.",
           0, "This Part IS TESTING the strings. ::1 127.0.0.1. 7815. replaced text. .");
    EXPECT("{{ define \"testtemplate\" }}Args are: {{.arg0}} {{.arg1}} {{.arg2}}. {{ with query "
           "\"alert_generator_test_suite{rulegroup='ZeroFor_SmallFor',for='template'}\" "
           "}}first_id:{{ . | sortByLabel \"id\" | first | label \"id\"}},{{ range $v := "
           "sortByLabel \"id\" .}}{{ . | label \"id\" }}:{{ . | value }},{{end}}{{end}}{{ end "
           "}}{{ template \"testtemplate\" (args \"foo\" \"bar\" 99) }}",
           0, "Args are: foo bar 99. first_id:101,101:1,102:2,103:3,");
    EXPECT("The value is {{$value}} {{.Value}}", 15, "The value is 15 15");
    EXPECT("Based on ALERTS. Old alertname was {{$labels.alertname}}. foo was {{.Labels.foo}}.", 1,
           "Based on ALERTS. Old alertname was NewAlerts_OrderCheck_Rule1. foo was bar.");

    /* $value as Go %v */
    EXPECT("{{$value}}", 1234567, "1.234567e+06");
    EXPECT("{{$value}}", 123456.7, "123456.7");
    EXPECT("{{$value}}", 0.00001, "1e-05");
    EXPECT("{{$value}}", 0.0001, "0.0001");
    EXPECT("{{$value}}", 1e21, "1e+21");
    EXPECT("{{$value}}", -2.5, "-2.5");
    EXPECT("{{$value}}", NAN, "NaN");
    EXPECT("{{$value}}", -INFINITY, "-Inf");
    EXPECT("{{ .Value }}", 999999, "999999");

    /* humanize family */
    EXPECT("{{humanize 1234567}} {{humanize 0.12}} {{humanize 0}} {{humanize \"1048576\"}}", 0,
           "1.235M 120m 0 1.049M");
    EXPECT("{{humanize1024 1234567}} {{humanize1024 0.12}}", 0, "1.177Mi 0.12");
    EXPECT("{{humanizeDuration 0}} {{humanizeDuration 1}} {{humanizeDuration 60}} "
           "{{humanizeDuration 3600}} {{humanizeDuration 86400}} {{humanizeDuration 90000}}",
           0, "0s 1s 1m 0s 1h 0m 0s 1d 0h 0m 0s 1d 1h 0m 0s");
    EXPECT("{{humanizeDuration 899.99}} {{humanizeDuration -183845}} {{humanizeDuration 1.2345}} "
           "{{humanizeDuration 12.345}} {{humanizeDuration 60.5}}",
           0, "14m 59s -2d 3h 4m 5s 1.234s 12.35s 1m 0s");
    EXPECT("{{humanizeDuration 0.1}} {{humanizeDuration 0.12345}} {{humanizeDuration 0.0001}}", 0,
           "100ms 123.5ms 100us");
    EXPECT("{{humanizePercentage 0.1234567}} {{humanizePercentage -0.22222}} "
           "{{humanizePercentage 0}}",
           0, "12.35% -22.22% 0%");
    EXPECT("{{humanizeTimestamp 1435065584.128}}", 0, "2015-06-23 13:19:44.128 +0000 UTC");
    EXPECT("{{ $value | humanize }}", INFINITY, "+Inf");

    /* built-ins */
    EXPECT("{{ if gt $value 10.0 }}big{{ else if gt $value 5.0 }}mid{{ else }}small{{ end }}", 7,
           "mid");
    EXPECT("{{ if and (eq .Labels.foo \"bar\") (ne .Labels.foo \"baz\") }}yes{{end}}", 0, "yes");
    EXPECT("{{ or \"\" \"fallback\" }} {{ and 1 0 }} {{ not true }}", 0, "fallback 0 false");
    EXPECT("{{ len $labels }} {{ index $labels \"foo\" }} {{ len \"abc\" }}", 0, "3 bar 3");
    EXPECT("{{ range $k, $v := $labels }}{{$k}}={{$v}};{{ end }}", 0,
           "alertname=NewAlerts_OrderCheck_Rule1;foo=bar;instance=host.example.com:9100;");
    EXPECT("{{ with $labels.missing }}x{{ else }}none{{ end }}|{{ $labels.missing }}|", 0,
           "none||");
    EXPECT("{{ printf \"%.2f %d %s %q %v %x %5.1f|%-4s|\" 3.14159 42 \"s\" \"q\" 1.5 255 2.25 "
           "\"ab\" }}",
           0, "3.14 42 s \"q\" 1.5 ff   2.2|ab  |");
    EXPECT("{{ printf \"%d\" 1.5 }} {{ printf \"%s\" }}", 0, "%!d(float64=1.5) %!s(MISSING)");
    EXPECT("{{ print 1 2 \"a\" \"b\" 3 }}|{{ println \"x\" 1 }}|", 0, "1 2ab3|x 1\n|");
    EXPECT("{{ html \"<a href='x'>&</a>\" }} {{ js \"it's <b>\" }} {{ urlquery \"a b&c\" }}", 0,
           "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; it\\'s \\u003Cb\\u003E a+b%26c");
    EXPECT("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}", 0, "2");
    EXPECT("a  {{- \" b \" -}}  c", 0, "a b c");
    EXPECT("{{/* a comment */}}x{{- /* trimmed */ -}} y", 0, "xy");
    EXPECT("{{ `raw\\n` }}", 0, "raw\\n");
    EXPECT("{{ $externalLabels.cluster }} {{ .ExternalLabels.cluster }} {{ $externalURL }}", 0,
           "c1 c1 http://prom.example.com:9090/prefix");
    EXPECT("{{ externalURL }} {{ pathPrefix }} {{ graphLink \"up == 0\" }} {{ tableLink \"up\" }}",
           0,
           "http://prom.example.com:9090/prefix /prefix /graph?g0.expr=up+%3D%3D+0&g0.tab=0 "
           "/graph?g0.expr=up&g0.tab=1");
    EXPECT("{{ stripDomain \"host.example.com:9100\" }} {{ stripDomain \"10.0.0.1:80\" }} {{ "
           "$labels.instance | stripDomain }}",
           0, "host:9100 10.0.0.1:80 host:9100");
    EXPECT("{{ reReplaceAll \"(.*):(.*)\" \"$2/$1/${1}x/$1x\" \"a:b\" }}", 0, "b/a/ax/");
    EXPECT("{{ range $i, $e := query \"x{ZeroFor_SmallFor}\" }}{{$i}}{{ if eq $i 1 }}{{ break "
           "}}{{ end }}{{ end }}",
           0, "01");
    EXPECT("{{ range query \"empty\" }}x{{ else }}no data{{ end }}", 0, "no data");
    EXPECT("{{ toUpper $labels.foo | printf \"%s!\" }}", 0, "BAR!");
    EXPECT("{{ (args 1 2).arg1 }} {{ (args 1).nope }}", 0, "2 <no value>");
    EXPECT("{{ safeHtml \"<b>\" }} {{ toDuration 3723 }} {{ toTime 0 }}", 0,
           "<b> 1h2m3s 1970-01-01 00:00:00 +0000 UTC");

    /* execution errors become Prometheus' error text */
    EXPECT("{{ query \"empty\" | first }}", 0,
           "<error expanding template: error executing template __alert_Test: template: "
           "__alert_Test:1:131: executing \"__alert_Test\" at <first>: error calling first: "
           "first() called on vector with no elements>");
    /* Go 1.13+ slice on strings, %U and %c, and %v of the data struct */
    EXPECT("{{ slice \"abcdef\" 1 3 }}|{{ slice \"abc\" 1 }}|{{ printf \"%U %c\" 65 233 }}", 0,
           "bc|bc|U+0041 \xc3\xa9");
    EXPECT("{{ . }}", 2,
           "{map[alertname:NewAlerts_OrderCheck_Rule1 foo:bar instance:host.example.com:9100] "
           "map[cluster:c1] http://prom.example.com:9090/prefix 2}");
    {
        char *g = expand("{{ if gt $value 1 }}x{{end}}", 2);
        /* an error a function returns: "error calling", reported at the whole command */
        CHECK(g && strstr(g, "at <gt $value 1>: error calling gt: incompatible types for "
                             "comparison"));
        free(g);
        g = expand("{{ reReplaceAll \"a[b\" \"x\" \"y\" }}|{{ match \"*a\" \"y\" }}", 2);
        CHECK(g && strstr(g, "error calling reReplaceAll: regexp: Compile(`a[b`): error parsing "
                             "regexp: missing closing ]: `[b`"));
        free(g);
        g = expand("{{ match \"*a\" \"y\" }}", 2);
        CHECK(g && strstr(g, "error calling match: error parsing regexp: missing argument to "
                             "repetition operator: `*`"));
        free(g);
        g = expand("{{ query \"bad(\" }}", 2);
        CHECK(g && strstr(g, "error calling query: parse error in bad("));
        free(g);
        g = expand("{{ .Nope }}", 2);
        CHECK(g && strstr(g, "can't evaluate field Nope"));
        free(g);
        g = expand("{{ template \"missing\" }}", 2);
        /* Go's walkTemplate error, at the TemplateNode (its name) */
        CHECK(g && strstr(g, "executing \"__alert_Test\" at <{{template \"missing\"}}>: "
                             "template \"missing\" not defined"));
        free(g);
    }

    /* parse errors */
    check_parse_error("{{ $label.foo }}", "template: __alert_X:1: undefined variable \"$label\"");
    check_parse_error("line1\n{{ nosuchfunc 1 }}",
                      "__alert_X:2: function \"nosuchfunc\" not defined");
    check_parse_error("{{ if true }}x", "unexpected EOF");
    check_parse_error("{{ end }}", "unexpected {{end}}");
    check_parse_error("{{ .foo ", "unclosed action");
    check_parse_error("{{ \"abc }}", "unterminated quoted string");
    check_parse_error("{{ break }}", "{{break}} outside {{range}}");
    check_parse_error("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}", "undefined variable \"$y\"");
    check_parse_error("{{ 1 | 2 }}", "non executable command in pipeline stage 2");

    /* durations */
    int64_t ms = -1;
    CHECK(template_parse_duration("1h30m", &ms) == 0 && ms == 5400000);
    CHECK(template_parse_duration("0", &ms) == 0 && ms == 0);
    CHECK(template_parse_duration("1d2h", &ms) == 0 && ms == 93600000);
    CHECK(template_parse_duration("100ms", &ms) == 0 && ms == 100);
    CHECK(template_parse_duration("5m1h", &ms) < 0);
    CHECK(template_parse_duration("", &ms) < 0);
    CHECK(template_parse_duration("1.5h", &ms) < 0);
    CHECK(template_parse_duration("99999999999999999999y", &ms) < 0);
    char buf[32];
    template_format_duration(buf, sizeof(buf), 5400000);
    CHECK_EQ_STR(buf, "1h30m");
    template_format_duration(buf, sizeof(buf), 0);
    CHECK_EQ_STR(buf, "0s");
    template_format_duration(buf, sizeof(buf), 86400000LL * 8 + 1500);
    CHECK_EQ_STR(buf, "1w1d1s500ms");
    template_format_float(buf, sizeof(buf), 0.1 + 0.2);
    CHECK_EQ_STR(buf, "0.30000000000000004");
    return tap_done();
}
