/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of federate_parse_selector: the series-selector grammar that match[] takes. */
#include "federate.h"

#include "tap.h"

#include <errno.h>
#include <string.h>

/* Parses src and renders the matchers as "name<op>value;..." into out. */
static int render(const char *src, char *out, size_t len) {
    struct re_matcher *m;
    size_t n;
    struct perr err = {0};
    int rc = federate_parse_selector(src, &m, &n, &err);
    if (rc) {
        snprintf(out, len, "ERR %d:%d %s", err.line, err.col, err.msg);
        return rc;
    }
    static const char *const ops[] = {"=", "!=", "=~", "!~"};
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t k = strlen(out);
        snprintf(out + k, len - k, "%s%s%s;", m[i].name, ops[m[i].type], m[i].value);
    }
    federate_matchers_free(m, n);
    return 0;
}

static void ok_sel(const char *src, const char *want) {
    char got[512];
    int rc = render(src, got, sizeof(got));
    TAP_OK(rc == 0 && strcmp(got, want) == 0, "%s -> %s (got %s)", src, want, got);
}

static void bad_sel(const char *src, const char *msg_part) {
    char got[512];
    int rc = render(src, got, sizeof(got));
    TAP_OK(rc == -EINVAL && strstr(got, msg_part) != NULL, "%s rejected: %s (got %s)", src,
           msg_part, got);
}

int main(void) {
    ok_sel("up", "__name__=up;");
    ok_sel("  node_cpu_seconds_total  ", "__name__=node_cpu_seconds_total;");
    ok_sel("up{job=\"node\"}", "__name__=up;job=node;");
    ok_sel("{job=\"node\", instance!=\"\"}", "job=node;instance!=;");
    ok_sel("{__name__=~\"node_.*\",mode!~'idle|iowait',}", "__name__=~node_.*;mode!~idle|iowait;");
    ok_sel("x:recorded:rate5m{a=`raw\\n`}", "__name__=x:recorded:rate5m;a=raw\\n;");
    ok_sel("x{a=\"q\\\"\\\\\\n\\u00e9\\x41\"}", "__name__=x;a=q\"\\\n\xc3\xa9"
                                                "A;");
    ok_sel("x{}", "__name__=x;");
    bad_sel("{}", "at least one non-empty matcher");
    bad_sel("{job=\"\"}", "at least one non-empty matcher");
    bad_sel("{job=~\".*\"}", "at least one non-empty matcher");
    bad_sel("", "expected a series selector");
    bad_sel("up{", "expected a label name");
    bad_sel("up{job}", "label matching operator");
    bad_sel("up{job=node}", "quoted label value");
    bad_sel("up{job=\"node\"", "expected ',' or '}'");
    bad_sel("up{job=\"no", "unterminated");
    bad_sel("up{a=\"\\q\"}", "unknown escape");
    bad_sel("up{__name__=\"x\"}", "set twice");
    bad_sel("rate(up[5m])", "unexpected characters");
    bad_sel("up offset 5m", "unexpected characters");
    bad_sel("0up", "expected a series selector");
    {
        char got[512];
        render("x{a=~\"(\"}", got, sizeof(got));
        TAP_OK(strncmp(got, "ERR", 3) == 0, "an invalid regex is an error (%s)", got);
    }
    return tap_done();
}
