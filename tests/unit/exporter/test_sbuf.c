/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the byte buffer and Go-compatible float formatting. */
#include "sbuf.h"
#include "tap.h"

static const char *fmt(double v) {
    static struct sbuf b;
    sbuf_reset(&b);
    sbuf_add_double(&b, v);
    return b.data;
}

int main(void) {
    CHECK_EQ_STR(fmt(1), "1");
    CHECK_EQ_STR(fmt(-1.5), "-1.5");
    CHECK_EQ_STR(fmt(0), "0");
    CHECK_EQ_STR(fmt(0.1), "0.1");
    CHECK_EQ_STR(fmt(1e-5), "1e-05");
    CHECK_EQ_STR(fmt(0.0001), "0.0001");
    CHECK_EQ_STR(fmt(123456789), "1.23456789e+08");
    CHECK_EQ_STR(fmt(1e20), "1e+20");
    CHECK_EQ_STR(fmt(1e21), "1e+21");
    CHECK_EQ_STR(fmt(100), "100");
    CHECK_EQ_STR(fmt(100000), "100000");
    CHECK_EQ_STR(fmt(1e6), "1e+06");
    CHECK_EQ_STR(fmt(1.6777216e10), "1.6777216e+10");
    CHECK_EQ_STR(fmt(1.7976931348623157e308), "1.7976931348623157e+308");
    CHECK_EQ_STR(fmt(INFINITY), "+Inf");
    CHECK_EQ_STR(fmt(-INFINITY), "-Inf");
    CHECK_EQ_STR(fmt(NAN), "NaN");
    CHECK_EQ_STR(fmt(-0.0), "0");
    CHECK_EQ_STR(fmt(0.30000000000000004), "0.30000000000000004");
    struct sbuf b;
    sbuf_init(&b);
    for (int i = 0; i < 1000; i++)
        sbuf_printf(&b, "%d,", i);
    CHECK(!b.oom && b.len == 3890);
    size_t n;
    char *p = sbuf_steal(&b, &n);
    CHECK(p && n == 3890 && b.data == NULL);
    free(p);
    p = sbuf_steal(&b, &n); /* empty: an empty string, not garbage */
    CHECK(p && n == 0 && p[0] == '\0');
    free(p);
    return tap_done();
}
