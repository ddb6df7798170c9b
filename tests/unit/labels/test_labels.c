/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for label validation, stale markers and anchored regex matchers. */
#include "ruleeval.h"
#include "tap.h"

#include <errno.h>

static bool m(enum re_match_type t, const char *pat, const char *v) {
    struct re_matcher mt;
    struct perr err;
    if (re_matcher_init(&mt, t, "l", pat, &err) != 0) return false;
    bool r = re_matcher_matches(&mt, v);
    re_matcher_fini(&mt);
    return r;
}

int main(void) {
    CHECK(re_valid_metric_name("a:b_c9", 6));
    CHECK(!re_valid_metric_name("9a", 2));
    CHECK(!re_valid_metric_name("", 0));
    CHECK(re_valid_label_name("__name__", 8));
    CHECK(!re_valid_label_name("a:b", 3));
    CHECK(re_valid_utf8("h\xc3\xa9llo", 6));
    CHECK(!re_valid_utf8("\xff", 1));
    CHECK(!re_valid_utf8("\xc0\x80", 2));     /* overlong NUL */
    CHECK(!re_valid_utf8("\xed\xa0\x80", 3)); /* surrogate */
    CHECK(!re_valid_utf8("\xe2\x82", 2));     /* truncated */

    double s = re_stale_nan();
    CHECK(isnan(s) && re_is_stale(s));
    CHECK(!re_is_stale(NAN));
    CHECK(!re_is_stale(1.0));

    CHECK(m(RE_MATCH_EQ, "x", "x"));
    CHECK(!m(RE_MATCH_EQ, "x", "xy"));
    CHECK(m(RE_MATCH_NEQ, "x", "y"));
    CHECK(m(RE_MATCH_RE, "a.*", "abc"));
    CHECK(!m(RE_MATCH_RE, "b", "abc"));   /* anchored at start */
    CHECK(!m(RE_MATCH_RE, "a", "ab"));    /* anchored at end */
    CHECK(!m(RE_MATCH_RE, "a|b", "ab"));  /* alternation stays anchored */
    CHECK(!m(RE_MATCH_RE, "a$", "a\n"));  /* no match before a trailing newline */
    CHECK(m(RE_MATCH_RE, "a.b", "a\nb")); /* (?s): dot matches newline */
    CHECK(m(RE_MATCH_RE, "sd[a-z]\\d*", "sda1"));
    CHECK(m(RE_MATCH_NRE, "foo", "foobar"));
    CHECK(m(RE_MATCH_RE, ".*", ""));
    CHECK(m(RE_MATCH_RE, "", ""));
    CHECK(!m(RE_MATCH_RE, "", "x"));

    struct re_matcher mt;
    struct perr err = {0};
    CHECK(re_matcher_init(&mt, RE_MATCH_RE, "l", "a(", &err) == -EINVAL);
    CHECK(strstr(err.msg, "error parsing regexp") != NULL);
    re_matcher_fini(&mt);

    CHECK(re_matcher_init(&mt, RE_MATCH_RE, "l", "foo|", &err) == 0);
    CHECK(re_matcher_matches_empty(&mt));
    re_matcher_fini(&mt);
    return tap_done();
}
