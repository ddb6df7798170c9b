/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the metric family set and its text-format encoder. */
#include "expose.h"

#include <errno.h>
#include <math.h>
#include <zlib.h>

#include "tap.h"

static void print_lines(const char *s) {
    while (s && *s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        fputs("# ", stdout);
        fwrite(s, 1, n, stdout);
        fputc('\n', stdout);
        s += n + (nl ? 1 : 0);
    }
}

/* Compares multi-line text without putting it on the TAP line itself. */
static void check_text(const char *what, const char *got, const char *want) {
    bool eq = got && strcmp(got, want) == 0;
    TAP_OK(eq, "%s", what);
    if (!eq) {
        printf("# --- want\n");
        print_lines(want);
        printf("# --- got\n");
        print_lines(got);
    }
}

static char *render(struct mset *s) {
    struct sbuf b;
    sbuf_init(&b);
    if (mset_write_text(s, &b)) {
        sbuf_fini(&b);
        return NULL;
    }
    return sbuf_steal(&b, NULL);
}

static void test_order_and_escape(void) {
    struct mset *s = mset_new();
    CHECK(s != NULL);
    struct mfam *cpu = mset_family(s, "node_cpu_seconds_total",
                                   "Seconds the CPUs spent in each mode.", MTYPE_COUNTER);
    CHECK(cpu != NULL);
    CHECK_EQ_INT(mfam_addf(cpu, "", 3.5, 2, "mode", "user", "cpu", "10"), 0);
    CHECK_EQ_INT(mfam_addf(cpu, "", 1, 2, "cpu", "2", "mode", "idle"), 0);
    CHECK_EQ_INT(mfam_addf(cpu, "", 2, 2, "cpu", "10", "mode", "idle"), 0);
    CHECK_EQ_INT(mfam_addf(cpu, "", 9, 2, "cpu", "10", "mode", "idle"), -EEXIST);
    CHECK_EQ_INT(mfam_addf(cpu, "", 9, 2, "cpu", "10", "cpu", "1"), -EINVAL);
    CHECK_EQ_INT(mfam_addf(cpu, "", 9, 1, "0bad", "x"), -EINVAL);
    CHECK(mset_family(s, "node_cpu_seconds_total", "x", MTYPE_GAUGE) == NULL);
    CHECK(mset_family(s, "node_cpu_seconds_total", "x", MTYPE_COUNTER) == cpu);
    CHECK(mset_family(s, "bad-name", "x", MTYPE_GAUGE) == NULL);
    struct mfam *a = mset_family(s, "a_info", "Help with \\ and\nnewline \"q\".", MTYPE_GAUGE);
    CHECK_EQ_INT(mfam_addf(a, "", 1, 1, "v", "x\\y\n\"z\""), 0);
    CHECK_EQ_INT(mfam_add_ts(a, "", NULL, 0, NAN, 1234), 0);
    mset_family(s, "empty_family", "never written", MTYPE_GAUGE);
    CHECK(mset_has(s, "empty_family"));
    CHECK(!mset_has(s, "nope"));
    CHECK_EQ_INT(mset_count(s, "node_cpu_seconds_total"), 3);
    char *txt = render(s);
    check_text("sorted families, samples, escapes", txt,
               "# HELP a_info Help with \\\\ and\\nnewline \"q\".\n"
               "# TYPE a_info gauge\n"
               "a_info NaN 1234\n"
               "a_info{v=\"x\\\\y\\n\\\"z\\\"\"} 1\n"
               "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
               "# TYPE node_cpu_seconds_total counter\n"
               "node_cpu_seconds_total{cpu=\"10\",mode=\"idle\"} 2\n"
               "node_cpu_seconds_total{cpu=\"10\",mode=\"user\"} 3.5\n"
               "node_cpu_seconds_total{cpu=\"2\",mode=\"idle\"} 1\n");
    free(txt);
    mset_free(s);
}

static void test_histogram(void) {
    struct mset *s = mset_new();
    struct mfam *h = mset_family(s, "req_seconds", "Latency.", MTYPE_HISTOGRAM);
    CHECK_EQ_INT(mfam_addf(h, "_count", 3, 1, "path", "/b"), 0);
    CHECK_EQ_INT(mfam_addf(h, "_bucket", 3, 2, "path", "/b", "le", "+Inf"), 0);
    CHECK_EQ_INT(mfam_addf(h, "_bucket", 1, 2, "path", "/b", "le", "0.5"), 0);
    CHECK_EQ_INT(mfam_addf(h, "_bucket", 2, 2, "path", "/b", "le", "10"), 0);
    CHECK_EQ_INT(mfam_addf(h, "_sum", 7.25, 1, "path", "/b"), 0);
    CHECK_EQ_INT(mfam_addf(h, "_sum", 1, 1, "path", "/a"), 0);
    char *txt = render(s);
    check_text("histogram lines grouped and ordered", txt,
               "# HELP req_seconds Latency.\n"
               "# TYPE req_seconds histogram\n"
               "req_seconds_sum{path=\"/a\"} 1\n"
               "req_seconds_bucket{path=\"/b\",le=\"0.5\"} 1\n"
               "req_seconds_bucket{path=\"/b\",le=\"10\"} 2\n"
               "req_seconds_bucket{path=\"/b\",le=\"+Inf\"} 3\n"
               "req_seconds_sum{path=\"/b\"} 7.25\n"
               "req_seconds_count{path=\"/b\"} 3\n");
    free(txt);
    mset_free(s);
}

static void test_many_and_gzip(void) {
    struct mset *s = mset_new();
    char name[64], val[32];
    for (int i = 0; i < 300; i++) {
        snprintf(name, sizeof(name), "fam_%03d", i);
        struct mfam *f = mset_family(s, name, "h", MTYPE_UNTYPED);
        for (int j = 0; j < 20; j++) {
            snprintf(val, sizeof(val), "%d", j);
            if (mfam_addf(f, "", j * 1e10, 1, "j", val)) CHECK(!"add failed");
        }
    }
    CHECK_EQ_INT(mset_count(s, "fam_299"), 20);
    struct sbuf b, z;
    sbuf_init(&b);
    sbuf_init(&z);
    CHECK_EQ_INT(mset_write_text(s, &b), 0);
    CHECK(strstr(b.data, "fam_007{j=\"19\"} 1.9e+11\n") != NULL);
    CHECK_EQ_INT(expose_gzip(b.data, b.len, &z), 0);
    CHECK(z.len > 18 && (unsigned char)z.data[0] == 0x1f && (unsigned char)z.data[1] == 0x8b);
    /* round-trip through zlib's gzip decoder */
    z_stream d;
    memset(&d, 0, sizeof(d));
    CHECK_EQ_INT(inflateInit2(&d, 16 + MAX_WBITS), Z_OK);
    char *plain = malloc(b.len + 16);
    d.next_in = (Bytef *)z.data;
    d.avail_in = (uInt)z.len;
    d.next_out = (Bytef *)plain;
    d.avail_out = (uInt)(b.len + 16);
    CHECK_EQ_INT(inflate(&d, Z_FINISH), Z_STREAM_END);
    CHECK_EQ_INT(d.total_out, b.len);
    CHECK(memcmp(plain, b.data, b.len) == 0);
    inflateEnd(&d);
    free(plain);
    sbuf_fini(&b);
    sbuf_fini(&z);
    mset_free(s);
}

/* The encoder's integer fast path must print exactly what sbuf_add_double prints. */
static void test_number_format(void) {
    const double vals[] = {0,
                           1,
                           -1,
                           9,
                           10,
                           999999,
                           1000000,
                           1000001,
                           1234567,
                           -1234567,
                           120000000,
                           2466177,
                           1e15,
                           123456789012.0,
                           9007199254740991.0,
                           -9007199254740991.0,
                           1e17,
                           0.5,
                           -0.0,
                           372412,
                           25276510208.0,
                           4096,
                           1e21,
                           3.5e-7};
    int bad = 0;
    for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        struct mset *s = mset_new();
        struct mfam *f = mset_family(s, "x", "h", MTYPE_GAUGE);
        mfam_add(f, "", NULL, 0, vals[i]);
        char *txt = render(s);
        struct sbuf want;
        sbuf_init(&want);
        sbuf_adds(&want, "# HELP x h\n# TYPE x gauge\nx ");
        sbuf_add_double(&want, vals[i]);
        sbuf_addc(&want, '\n');
        if (!txt || strcmp(txt, want.data) != 0) {
            bad++;
            printf("# %.17g: got %s", vals[i], txt ? strrchr(txt, ' ') : "(null)\n");
        }
        free(txt);
        sbuf_fini(&want);
        mset_free(s);
    }
    CHECK_EQ_INT(bad, 0);

    /* 60000 more: random bit patterns, short decimals, scaled counters, tiny and huge */
    struct mset *s = mset_new();
    struct mfam *f = mset_family(s, "y", "h", MTYPE_GAUGE);
    double *v = malloc(60000 * sizeof(*v));
    uint64_t x = 0x9e3779b97f4a7c15ULL;
    char lv[24];
    for (int i = 0; i < 60000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        switch (i % 6) {
        case 0:
            memcpy(&d, &x, sizeof(d));
            if (isnan(d) || isinf(d)) d = 1.5;
            break;
        case 1:
            d = (double)(x % 100000) / 100.0;
            break;
        case 2:
            d = (double)(x % 1000000000) * 0.001;
            break;
        case 3:
            d = (double)(x % 10000000) / 1e6 / 1e3;
            break;
        case 4:
            d = (double)(int64_t)(x >> 11) * ((x & 1) ? -1.0 : 1.0);
            break;
        default:
            d = (double)(x % 1000) * 1e-9 + (double)(x % 7) * 1e20;
        }
        v[i] = d;
        snprintf(lv, sizeof(lv), "%d", i);
        mfam_addf(f, "", d, 1, "i", lv);
    }
    char *txt = render(s);
    bad = 0;
    for (const char *p = txt ? strchr(strchr(txt, '\n') + 1, '\n') + 1 : ""; *p;) {
        int i = atoi(strchr(p, '"') + 1);
        const char *val = strchr(p, ' ') + 1;
        size_t vl = strcspn(val, "\n");
        struct sbuf w;
        sbuf_init(&w);
        sbuf_add_double(&w, v[i]);
        if (w.len != vl || memcmp(w.data, val, vl) != 0) {
            if (bad++ < 5) printf("# %.17g: got %.*s want %s\n", v[i], (int)vl, val, w.data);
        }
        sbuf_fini(&w);
        p = val + vl + (val[vl] ? 1 : 0);
    }
    TAP_OK(txt && bad == 0, "60000 random values print as sbuf_add_double prints them (%d differ)",
           bad);
    free(txt);
    free(v);
    mset_free(s);
}

int main(void) {
    test_number_format();
    test_order_and_escape();
    test_histogram();
    test_many_and_gzip();
    return tap_done();
}
