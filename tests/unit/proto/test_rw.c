/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of rw_decode / rw_request_foreach: valid requests, every validation rule, limits. */
#include "proto.h"

#include "rwbuild.h"
#include "tap.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>

#define STALE_BITS UINT64_C(0x7ff0000000000002)

static double from_bits(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

/* A sink that records what it sees. */
struct rec {
    size_t series, samples, hists, meta;
    char labels[512]; /* "name=value," of the last series */
    int64_t last_ts;
    uint64_t last_bits;
    struct proto_hist last_h;
    double pos[16], neg[16];
    char meta_s[256];
    int stop_after; /* stop with 42 after this many samples (0 = never) */
    int bad_nul;    /* labels whose name/value are not NUL-terminated */
};

static int rec_series(void *arg, const struct proto_label *l, size_t n) {
    struct rec *r = arg;
    r->series++;
    r->labels[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (l[i].name[l[i].name_len] || l[i].value[l[i].value_len]) r->bad_nul++;
        size_t o = strlen(r->labels);
        snprintf(r->labels + o, sizeof r->labels - o, "%.*s=%.*s,", (int)l[i].name_len, l[i].name,
                 (int)l[i].value_len, l[i].value);
    }
    return 0;
}

static int rec_sample(void *arg, int64_t ts, double v) {
    struct rec *r = arg;
    r->samples++;
    r->last_ts = ts;
    r->last_bits = to_bits(v);
    if (r->stop_after && (int)r->samples >= r->stop_after) return 42;
    return 0;
}

static int rec_hist(void *arg, int64_t ts, const struct proto_hist *h) {
    struct rec *r = arg;
    r->hists++;
    r->last_ts = ts;
    r->last_h = *h;
    for (size_t i = 0; i < h->n_pos_buckets && i < 16; i++)
        r->pos[i] = h->pos_buckets[i];
    for (size_t i = 0; i < h->n_neg_buckets && i < 16; i++)
        r->neg[i] = h->neg_buckets[i];
    return 0;
}

static int rec_meta(void *arg, const char *fam, enum rw_metric_type t, const char *help,
                    const char *unit) {
    struct rec *r = arg;
    r->meta++;
    snprintf(r->meta_s, sizeof r->meta_s, "%s|%d|%s|%s", fam, (int)t, help, unit);
    return 0;
}

static struct rw_sink rec_sink(struct rec *r) {
    struct rw_sink s = {r, rec_series, rec_sample, rec_hist, rec_meta};
    return s;
}

/* Decodes b with lim; returns the code, fills err, and (on success) runs the sink. */
static int run(const struct rwb *b, const struct rw_limits *lim, struct rec *r, struct perr *err) {
    size_t len;
    uint8_t *body = rwb_body(b, &len);
    int code = 1;
    struct rw_request *req = rw_decode(body, len, lim, &code, err);
    free(body);
    if (req) {
        struct rw_sink s = rec_sink(r);
        rw_request_foreach(req, &s);
        rw_request_free(req);
    }
    return code;
}

static void test_single(void) {
    struct rwb b;
    rwb_init(&b);
    size_t s =
        rwb_series(&b, "__name__", "up", "instance", "localhost:9100", "job", "node", RWB_END);
    rwb_sample(&b, s, 1700000000000, 1);
    rwb_sample(&b, s, 1700000015000, from_bits(STALE_BITS));
    struct rec r = {0};
    struct perr e;
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0);
    CHECK_EQ_INT(r.series, 1);
    CHECK_EQ_INT(r.samples, 2);
    CHECK_EQ_STR(r.labels, "__name__=up,instance=localhost:9100,job=node,");
    CHECK_EQ_INT(r.last_ts, 1700000015000);
    TAP_OK(r.last_bits == STALE_BITS, "stale marker bits pass through exactly");
    CHECK(proto_is_stale_nan(from_bits(r.last_bits)));
    CHECK(!proto_is_stale_nan(NAN));
    CHECK_EQ_INT(r.bad_nul, 0);
}

static void test_counts_and_repeat(void) {
    struct rwb b;
    rwb_init(&b);
    size_t s0 = rwb_series(&b, "__name__", "a", RWB_END);
    size_t s1 = rwb_series(&b, "__name__", "b", "x", "1", RWB_END);
    rwb_sample(&b, s0, 1, 1);
    rwb_sample(&b, s0, 2, 2);
    rwb_sample(&b, s1, 1, 3);
    rwb_meta(&b, 1, "a", "help of a", "seconds");
    size_t len;
    uint8_t *body = rwb_body(&b, &len);
    int code;
    struct rw_request *req = rw_decode(body, len, NULL, &code, NULL);
    free(body);
    CHECK(req != NULL);
    CHECK_EQ_INT(rw_request_series(req), 2);
    CHECK_EQ_INT(rw_request_samples(req), 3);
    CHECK_EQ_INT(rw_request_histograms(req), 0);
    CHECK_EQ_INT(rw_request_metadata(req), 1);
    struct rec r1 = {0}, r2 = {0};
    struct rw_sink s1s = rec_sink(&r1), s2s = rec_sink(&r2);
    CHECK_EQ_INT(rw_request_foreach(req, &s1s), 0);
    CHECK_EQ_INT(rw_request_foreach(req, &s2s), 0);
    TAP_OK(r1.series == r2.series && r1.samples == r2.samples && r1.samples == 3,
           "foreach can run twice with identical results");
    CHECK_EQ_STR(r1.meta_s, "a|1|help of a|seconds");
    struct rec r3 = {.stop_after = 2};
    struct rw_sink s3 = rec_sink(&r3);
    CHECK_EQ_INT(rw_request_foreach(req, &s3), 42);
    CHECK_EQ_INT(r3.samples, 2);
    struct rw_sink none = {0};
    CHECK_EQ_INT(rw_request_foreach(req, &none), 0);
    rw_request_free(req);
    rw_request_free(NULL);
}

/* Expects rejection with the given code and a message containing want. */
static void expect_err(const struct rwb *b, const struct rw_limits *lim, int want_code,
                       const char *want, const char *what) {
    struct rec r = {0};
    struct perr e;
    int code = run(b, lim, &r, &e);
    TAP_OK(code == want_code && strstr(e.msg, want) != NULL, "%s: rejected (%s)", what, e.msg);
    if (code != want_code) printf("#   code %d, want %d\n", code, want_code);
}

static void test_labels(void) {
    struct rwb b;
    struct rw_limits sorted = {.sort_labels = true};

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "instance", "x", "job", "node", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "missing metric name", "missing __name__");

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "job", "a", "__name__", "up", "instance", "i", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "not sorted", "unsorted labels");
    struct rec r = {0};
    struct perr e;
    CHECK_EQ_INT(run(&b, &sorted, &r, &e), 0);
    CHECK_EQ_STR(r.labels, "__name__=up,instance=i,job=a,");

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "up", "job", "a", "job", "b", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "duplicate label name \"job\"", "duplicate label");
    expect_err(&b, &sorted, -EPROTO, "duplicate label name", "duplicate label (sorting on)");

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "", "v", "__name__", "up", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "empty label name", "empty label name");

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "up", "a-b", "v", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "invalid label name \"a-b\"", "label name charset");

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "1up", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "invalid metric name \"1up\"", "metric name charset");

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "my.metric", "dotted.label", "v", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "invalid label name", "dotted names in legacy mode");
    struct rw_limits utf8 = {.utf8_names = true};
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, &utf8, &r, &e), 0);

    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "up", "v", "a\xbd", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "not valid UTF-8", "invalid UTF-8 value");
    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "up", "v", "\xed\xa0\x80", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "not valid UTF-8", "UTF-8 surrogate value");

    /* Empty values mean "absent": dropped, not an error. */
    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "up", "empty", "", "job", "j", RWB_END), 1, 1);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0);
    CHECK_EQ_STR(r.labels, "__name__=up,job=j,");
    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "", "job", "j", RWB_END), 1, 1);
    expect_err(&b, NULL, -EPROTO, "missing metric name", "empty __name__");

    /* Raw bytes that need escaping in the text format are fine in remote write. */
    rwb_init(&b);
    rwb_sample(&b,
               rwb_series(&b, "__name__", "w", "p", "C:\\DIR \"q\"\nx", "u", "Προμηθεύς", RWB_END),
               1, 42);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0);
    CHECK_EQ_STR(r.labels, "__name__=w,p=C:\\DIR \"q\"\nx,u=Προμηθεύς,");

    /* One bad series rejects the whole request; the error names it. */
    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "ok", RWB_END), 1, 1);
    rwb_sample(&b, rwb_series(&b, "__name__", "ok2", "bad-name", "x", RWB_END), 1, 1);
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, NULL, &r, &e), -EPROTO);
    CHECK_EQ_INT(e.line, 2);
    CHECK_EQ_INT(e.col, 2);
    CHECK_EQ_INT(r.series, 0);
}

static void test_limits(void) {
    struct rwb b;
    rwb_init(&b);
    rwb_sample(&b, rwb_series(&b, "__name__", "up", "a", "1", "b", "2", RWB_END), 1, 1);
    struct rw_limits l = {.max_labels = 2};
    expect_err(&b, &l, -E2BIG, "too many labels", "labels per series limit");
    l = (struct rw_limits){.max_name_len = 4};
    expect_err(&b, &l, -E2BIG, "label name longer than 4", "name length limit");
    l = (struct rw_limits){.max_value_len = 1};
    expect_err(&b, &l, -E2BIG, "longer than 1 bytes", "value length limit");
    rwb_sample(&b, rwb_series(&b, "__name__", "x", RWB_END), 1, 1);
    l = (struct rw_limits){.max_series = 1};
    expect_err(&b, &l, -E2BIG, "too many series", "series limit");
    l = (struct rw_limits){.max_samples = 1};
    expect_err(&b, &l, -E2BIG, "too many samples", "sample limit");
    l = (struct rw_limits){.max_decoded_bytes = 10};
    expect_err(&b, &l, -E2BIG, "exceeds the limit of 10 bytes", "decoded size limit");

    /* Decompression bomb: a 3-byte body announcing 1 GiB is refused from the header. */
    uint8_t bomb[] = {0x80, 0x80, 0x80, 0x80, 0x04, 0x00, 0x00};
    int code;
    struct perr e;
    struct rw_request *req = rw_decode(bomb, sizeof bomb, NULL, &code, &e);
    TAP_OK(req == NULL && code == -E2BIG, "snappy bomb refused before allocating (%s)", e.msg);
}

/* Writes v as a varint at p (room for 10 bytes); returns its length. */
static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t k = 0;
    do {
        p[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return k;
}

/* A WriteRequest whose one series (__name__="x") is followed by n copies of the 2-byte
 * element {key, 0} (an empty message or a zero varint); or, with top, n such elements at
 * the top level and no series. Returns a snappy body (free it). */
static uint8_t *bomb_body(uint8_t key, bool top, size_t n, size_t *len) {
    static const uint8_t name[] = {0x0a, 0x0d, 0x0a, 0x08, '_',  '_',  'n', 'a',
                                   'm',  'e',  '_',  '_',  0x12, 0x01, 'x'};
    size_t inner = top ? 2 * n : sizeof name + 2 * n;
    uint8_t *raw = malloc(inner + 16), *p = raw;
    if (!raw) return NULL;
    if (!top) {
        *p++ = 0x0a;
        p += put_varint(p, inner);
        memcpy(p, name, sizeof name);
        p += sizeof name;
    }
    for (size_t i = 0; i < n; i++) {
        *p++ = key;
        *p++ = 0;
    }
    uint8_t *body = rwb_snappy(raw, (size_t)(p - raw), len);
    free(raw);
    return body;
}

/* Review issue 4: a small body decoding into millions of empty exemplars, samples, metadata
 * or unknown fields made protobuf-c allocate 36-70 times the decoded size (1.2-2.1 GB for
 * 32 MiB); now the pre-scan counts them and computes the unpacked size first. */
static void test_unpack_bombs(void) {
    static const struct {
        uint8_t key;
        bool top;
        const char *what;
    } bombs[] = {
        {0x1a, false, "empty exemplars"},
        {0x12, false, "empty samples"},
        {0x22, false, "empty histograms"},
        {0x28, false, "unknown fields in a series"},
        {0x28, true, "unknown top-level fields"},
        {0x1a, true, "empty metadata"},
        {0x0a, true, "empty series"},
    };
    const struct rw_limits unlimited = {.max_series = SIZE_MAX, .max_samples = SIZE_MAX};
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        size_t len;
        uint8_t *body = bomb_body(bombs[i].key, bombs[i].top, 300000, &len);
        int code = 0;
        struct perr e = {0};
        struct rw_request *r = rw_decode(body, len, &unlimited, &code, &e);
        TAP_OK(r == NULL && code == -E2BIG && strstr(e.msg, "bytes to unpack"),
               "%s (600 kB decoded, %zu bytes of body): refused by the unpack size (%s)",
               bombs[i].what, len, e.msg);
        rw_request_free(r);
        r = rw_decode(body, len, NULL, &code, &e);
        TAP_OK(r == NULL && code == -E2BIG, "%s: refused with default limits (%s)", bombs[i].what,
               e.msg);
        rw_request_free(r);
        free(body);
    }

    /* Legal exemplar-heavy requests pass: a sample and an exemplar with a trace_id label. */
    enum { N = 20000 };
    uint8_t *raw = malloc((size_t)N * 64 + 64), *p = raw;
    static const uint8_t name[] = {0x0a, 0x0d, 0x0a, 0x08, '_',  '_',  'n', 'a',
                                   'm',  'e',  '_',  '_',  0x12, 0x01, 'x'};
    static const uint8_t smp[] = {0x12, 0x0b, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x01};
    static const uint8_t exm[] = {0x1a, 0x1b, 0x0a, 0x0e, 0x0a, 0x08, 't',  'r',  'a',  'c',
                                  'e',  '_',  'i',  'd',  0x12, 0x02, 'a',  'b',  0x11, 0,
                                  0,    0,    0,    0,    0,    0xf0, 0x3f, 0x18, 0x01};
    size_t inner = sizeof name + N * (sizeof smp + sizeof exm);
    *p++ = 0x0a;
    p += put_varint(p, inner);
    memcpy(p, name, sizeof name);
    p += sizeof name;
    for (int i = 0; i < N; i++) {
        memcpy(p, smp, sizeof smp); /* all at timestamp 1 with the same value: retries */
        p += sizeof smp;
        memcpy(p, exm, sizeof exm);
        p += sizeof exm;
    }
    size_t len;
    uint8_t *body = rwb_snappy(raw, (size_t)(p - raw), &len);
    free(raw);
    int code = 0;
    struct perr e = {0};
    struct rw_request *r = rw_decode(body, len, NULL, &code, &e);
    TAP_OK(r != NULL && rw_request_samples(r) == N, "%d samples with %d exemplars accepted (%s)", N,
           N, r ? "ok" : e.msg);
    rw_request_free(r);
    free(body);

    /* Exemplars are bounded by max_samples too. */
    body = bomb_body(0x1a, false, 100, &len);
    struct rw_limits few = {.max_samples = 50};
    r = rw_decode(body, len, &few, &code, &e);
    TAP_OK(r == NULL && code == -E2BIG && strstr(e.msg, "too many exemplars"),
           "100 exemplars over max_samples 50 (%s)", e.msg);
    rw_request_free(r);
    free(body);
}

static void test_bad_bodies(void) {
    int code;
    struct perr e;
    CHECK(rw_decode((const uint8_t *)"", 0, NULL, &code, &e) == NULL);
    CHECK_EQ_INT(code, -EPROTO);
    CHECK_EQ_STR(e.msg, "snappy: corrupt input");

    uint8_t empty[] = {0};
    struct rw_request *r = rw_decode(empty, 1, NULL, &code, &e);
    TAP_OK(r && code == 0 && rw_request_series(r) == 0, "snappy of nothing is an empty request");
    rw_request_free(r);

    uint8_t junk[] = {0x05, 0xff, 0xff, 0xff, 0xff, 0xff};
    CHECK(rw_decode(junk, sizeof junk, NULL, &code, &e) == NULL);
    CHECK_EQ_INT(code, -EPROTO);

    const uint8_t badpb[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    size_t len;
    uint8_t *body = rwb_snappy(badpb, sizeof badpb, &len);
    CHECK(rw_decode(body, len, NULL, &code, &e) == NULL);
    TAP_OK(code == -EPROTO && strncmp(e.msg, "proto:", 6) == 0, "bad protobuf: %s", e.msg);
    free(body);

    /* A field number 0 and an unknown wire type are protobuf errors, not crashes. */
    const uint8_t badtag[] = {0x00, 0x01};
    body = rwb_snappy(badtag, sizeof badtag, &len);
    CHECK(rw_decode(body, len, NULL, &code, &e) == NULL);
    CHECK_EQ_INT(code, -EPROTO);
    free(body);

    /* Unknown fields of every wire type are skipped. */
    const uint8_t unknown[] = {0x28, 0x01, 0x31, 1,    2,    3, 4, 5, 6, 7,
                               8,    0x3a, 0x01, 0x00, 0x45, 1, 2, 3, 4};
    body = rwb_snappy(unknown, sizeof unknown, &len);
    r = rw_decode(body, len, NULL, &code, &e);
    TAP_OK(r != NULL && code == 0, "unknown fields skipped (%s)", r ? "" : e.msg);
    rw_request_free(r);
    free(body);

    /* code and err may be NULL */
    CHECK(rw_decode(junk, sizeof junk, NULL, NULL, NULL) == NULL);
}

static void test_order(void) {
    struct rwb b;
    rwb_init(&b);
    size_t s = rwb_series(&b, "__name__", "m", RWB_END);
    rwb_sample(&b, s, 20, 1);
    rwb_sample(&b, s, 10, 1);
    expect_err(&b, NULL, -EPROTO, "out of order sample", "out of order within a series");

    rwb_init(&b);
    s = rwb_series(&b, "__name__", "m", RWB_END);
    rwb_sample(&b, s, 10, 1);
    rwb_sample(&b, s, 10, 2);
    expect_err(&b, NULL, -EPROTO, "duplicate sample for timestamp", "same timestamp, other value");

    rwb_init(&b);
    s = rwb_series(&b, "__name__", "m", RWB_END);
    rwb_sample(&b, s, 10, 1);
    rwb_sample(&b, s, 10, 1);
    struct rec r = {0};
    struct perr e;
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0); /* identical retry is fine */
}

static void test_histograms(void) {
    struct rwb b;
    struct rec r;
    struct perr e;
    int64_t pd[] = {2, 1, -1, 3}; /* absolute 2, 3, 2, 5 */
    int64_t nd[] = {1};
    Prometheus__BucketSpan sp0 = PROMETHEUS__BUCKET_SPAN__INIT, sp1 = PROMETHEUS__BUCKET_SPAN__INIT;
    Prometheus__BucketSpan nsp = PROMETHEUS__BUCKET_SPAN__INIT;
    sp0.offset = -1;
    sp0.length = 2;
    sp1.offset = 3;
    sp1.length = 2;
    nsp.offset = 0;
    nsp.length = 1;
    Prometheus__BucketSpan *pspans[] = {&sp0, &sp1}, *nspans[] = {&nsp};

    rwb_init(&b);
    size_t s = rwb_series(&b, "__name__", "k6_http_req_duration_seconds", RWB_END);
    Prometheus__Histogram *h = rwb_hist(&b, s, 1234);
    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;
    h->count_int = 2 + 3 + 2 + 5 + 1 + 4;
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    h->zero_count_int = 4;
    h->sum = 12.5;
    h->schema = 3;
    h->zero_threshold = 1e-128;
    h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__NO;
    h->positive_spans = pspans;
    h->n_positive_spans = 2;
    h->positive_deltas = pd;
    h->n_positive_deltas = 4;
    h->negative_spans = nspans;
    h->n_negative_spans = 1;
    h->negative_deltas = nd;
    h->n_negative_deltas = 1;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0);
    CHECK_EQ_INT(r.hists, 1);
    CHECK_EQ_INT(r.last_ts, 1234);
    CHECK(!r.last_h.is_float);
    CHECK_EQ_INT(r.last_h.schema, 3);
    CHECK_EQ_INT(r.last_h.count_int, 17);
    CHECK_EQ_DBL(r.last_h.count, 17);
    CHECK_EQ_DBL(r.last_h.zero_count, 4);
    CHECK_EQ_DBL(r.last_h.sum, 12.5);
    CHECK_EQ_INT(r.last_h.reset_hint, PROTO_RESET_NO);
    CHECK_EQ_INT(r.last_h.n_pos_spans, 2);
    CHECK_EQ_INT(r.last_h.n_pos_buckets, 4);
    TAP_OK(r.pos[0] == 2 && r.pos[1] == 3 && r.pos[2] == 2 && r.pos[3] == 5,
           "integer deltas accumulated to absolute counts");
    CHECK_EQ_DBL(r.neg[0], 1);

    /* count mismatch */
    h->count_int = 16;
    expect_err(&b, NULL, -EPROTO, "observations found in buckets", "count != buckets");
    h->count_int = 17;
    /* NaN sum: count may exceed the buckets */
    h->sum = NAN;
    h->count_int = 20;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0);
    h->sum = 12.5;
    h->count_int = 17;
    /* spans vs buckets */
    h->n_positive_deltas = 3;
    expect_err(&b, NULL, -EPROTO, "spans need 4 buckets, have 3", "spans/buckets mismatch");
    h->n_positive_deltas = 4;
    /* negative offset in a later span */
    sp1.offset = -1;
    expect_err(&b, NULL, -EPROTO, "span whose offset is negative", "negative span offset");
    sp1.offset = 3;
    /* negative absolute count */
    pd[2] = -4;
    expect_err(&b, NULL, -EPROTO, "count is negative", "negative bucket count");
    pd[2] = -1;
    /* schema */
    h->schema = 9;
    expect_err(&b, NULL, -EPROTO, "invalid schema", "schema out of range");
    h->schema = 3;
    /* histograms out of order */
    Prometheus__Histogram *h2 = rwb_hist(&b, s, 1000);
    *h2 = *h;
    h2->timestamp = 1000;
    expect_err(&b, NULL, -EPROTO, "out of order histogram", "histograms out of order");

    /* float histogram with custom buckets */
    double pc[] = {1.5, 0, 2};
    double bounds[] = {0.1, 0.5, 1};
    Prometheus__BucketSpan fsp = PROMETHEUS__BUCKET_SPAN__INIT;
    fsp.offset = 0;
    fsp.length = 3;
    Prometheus__BucketSpan *fspans[] = {&fsp};
    rwb_init(&b);
    s = rwb_series(&b, "__name__", "f", RWB_END);
    h = rwb_hist(&b, s, 5);
    h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    h->count_float = 3.5;
    h->sum = 1;
    h->schema = -53;
    h->positive_spans = fspans;
    h->n_positive_spans = 1;
    h->positive_counts = pc;
    h->n_positive_counts = 3;
    h->custom_values = bounds;
    h->n_custom_values = 3;
    h->reset_hint = PROMETHEUS__HISTOGRAM__RESET_HINT__GAUGE;
    memset(&r, 0, sizeof r);
    CHECK_EQ_INT(run(&b, NULL, &r, &e), 0);
    CHECK(r.last_h.is_float);
    CHECK_EQ_INT(r.last_h.n_custom_values, 3);
    CHECK_EQ_DBL(r.pos[0], 1.5);
    CHECK_EQ_INT(r.last_h.reset_hint, PROTO_RESET_GAUGE);
    bounds[2] = 0.5;
    expect_err(&b, NULL, -EPROTO, "strictly increasing", "custom bounds not increasing");
    bounds[2] = 1;
    pc[1] = -1;
    expect_err(&b, NULL, -EPROTO, "count is negative", "negative float bucket");
    pc[1] = 0;
    h->count_float = 1;
    expect_err(&b, NULL, -EPROTO, "at least", "float count below buckets");
    h->count_float = 3.5;
    h->schema = 0;
    expect_err(&b, NULL, -EPROTO, "must not have custom bounds", "custom bounds on exponential");
}

/* Review issue 4, finding 2: schema -53 was not validated as checkHistogramCustomBounds does;
 * offset -1000000 with bounds {1, +Inf} and zero_threshold 0.5 was accepted and made
 * ruleeval read out of bounds. */
static void test_custom_buckets(void) {
    int64_t deltas[] = {2, -1};
    double bounds[] = {1, 2};
    Prometheus__BucketSpan sp0 = PROMETHEUS__BUCKET_SPAN__INIT, sp1 = PROMETHEUS__BUCKET_SPAN__INIT;
    Prometheus__BucketSpan *spans[] = {&sp0, &sp1};
    struct rwb b;
    struct rec r;
    struct perr e;
    Prometheus__Histogram *h = NULL;
#define RESET_CUSTOM()                                                                             \
    do {                                                                                           \
        rwb_init(&b);                                                                              \
        h = rwb_hist(&b, rwb_series(&b, "__name__", "nhcb", RWB_END), 7);                          \
        h->schema = -53;                                                                           \
        h->count_case = PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT;                                    \
        h->count_int = 3;                                                                          \
        h->sum = 2.5;                                                                              \
        sp0.offset = 0, sp0.length = 1, sp1.offset = 1, sp1.length = 1;                            \
        h->positive_spans = spans, h->n_positive_spans = 2;                                        \
        h->positive_deltas = deltas, h->n_positive_deltas = 2;                                     \
        bounds[0] = 1, bounds[1] = 2;                                                              \
        h->custom_values = bounds, h->n_custom_values = 2;                                         \
    } while (0)

    /* Valid: buckets 0 (<=1) and 2 (+Inf), counts 2 and 1. */
    RESET_CUSTOM();
    memset(&r, 0, sizeof r);
    TAP_OK(run(&b, NULL, &r, &e) == 0, "valid custom-bucket histogram accepted (%s)", e.msg);
    CHECK_EQ_DBL(r.pos[1], 1);

    RESET_CUSTOM();
    sp0.offset = -1000000;
    bounds[1] = INFINITY;
    h->zero_threshold = 0.5;
    expect_err(&b, NULL, -EPROTO, "+Inf bound must not be explicitly defined",
               "reported case: offset -1000000, bounds {1, +Inf}, zero_threshold 0.5");
    RESET_CUSTOM();
    sp0.offset = -1;
    expect_err(&b, NULL, -EPROTO, "span number 1 with offset -1: histogram has a span whose offset",
               "negative first span offset");
    RESET_CUSTOM();
    sp1.offset = 2; /* buckets 0 and 3, but only bounds 1, 2 and +Inf exist */
    expect_err(&b, NULL, -EPROTO,
               "only 2 custom bounds defined which is insufficient to cover "
               "total span length of 4",
               "spans beyond the bounds");
    RESET_CUSTOM();
    h->n_custom_values = 0;
    expect_err(&b, NULL, -EPROTO, "only 0 custom bounds", "no bounds, two buckets");
    RESET_CUSTOM();
    bounds[1] = 1;
    expect_err(&b, NULL, -EPROTO, "strictly increasing", "equal bounds");
    RESET_CUSTOM();
    bounds[0] = -INFINITY;
    expect_err(&b, NULL, -EPROTO, "strictly increasing", "-Inf bound");
    RESET_CUSTOM();
    bounds[0] = NAN;
    expect_err(&b, NULL, -EPROTO, "strictly increasing", "NaN bound");
    RESET_CUSTOM();
    h->zero_threshold = 0.5;
    expect_err(&b, NULL, -EPROTO, "zero threshold of 0", "zero threshold");
    RESET_CUSTOM();
    h->zero_count_case = PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT;
    h->zero_count_int = 1;
    h->count_int = 4;
    expect_err(&b, NULL, -EPROTO, "zero count of 0", "zero count");
    RESET_CUSTOM();
    sp1.length = 2;
    expect_err(&b, NULL, -EPROTO, "spans need 3 buckets, have 2", "spans vs buckets");
    RESET_CUSTOM();
    int64_t neg[] = {1};
    Prometheus__BucketSpan nsp = PROMETHEUS__BUCKET_SPAN__INIT, *nspans[] = {&nsp};
    nsp.length = 1;
    h->negative_spans = nspans, h->n_negative_spans = 1;
    h->negative_deltas = neg, h->n_negative_deltas = 1;
    h->count_int = 4;
    expect_err(&b, NULL, -EPROTO, "must not have negative spans", "negative side");
    RESET_CUSTOM();
    deltas[1] = -3;
    expect_err(&b, NULL, -EPROTO, "count is negative", "negative bucket");
    deltas[1] = -1;
#undef RESET_CUSTOM
}

/* Review issue 4, finding 3: NUL bytes in label names or values (and metadata) are refused;
 * the store keeps NUL-terminated strings, so {a="x\0y"} would collide with {a="x"}. */
static void test_nul_bytes(void) {
    static const uint8_t xnuly[] = {'x', 0, 'y'};
    static const uint8_t anulb[] = {'a', 0, 'b'};
    struct rwb b;
    rwb_init(&b);
    size_t s = rwb_series(&b, "__name__", "up", "a", "x", RWB_END);
    rwb_sample(&b, s, 1, 1);
    b.lab[s][1].value = (ProtobufCBinaryData){sizeof xnuly, (uint8_t *)(uintptr_t)xnuly};
    expect_err(&b, NULL, -EPROTO, "series 1: value of label \"a\" contains a NUL byte",
               "NUL in a label value");
    b.lab[s][1].value = rwb_bytes("x");
    b.lab[s][0].value = (ProtobufCBinaryData){sizeof xnuly, (uint8_t *)(uintptr_t)xnuly};
    expect_err(&b, NULL, -EPROTO, "contains a NUL byte", "NUL in the metric name");
    b.lab[s][0].value = rwb_bytes("up");
    b.lab[s][1].name = (ProtobufCBinaryData){sizeof anulb, (uint8_t *)(uintptr_t)anulb};
    struct rw_limits utf8 = {.utf8_names = true};
    expect_err(&b, &utf8, -EPROTO, "label name \"a\\x00b\" contains a NUL byte",
               "NUL in a label name (UTF-8 names mode)");
    expect_err(&b, NULL, -EPROTO, "a NUL byte", "NUL in a label name (legacy mode)");
    b.lab[s][1].name = rwb_bytes("a");
    rwb_meta(&b, 1, "up", "help", "");
    b.md[0].help = (ProtobufCBinaryData){sizeof xnuly, (uint8_t *)(uintptr_t)xnuly};
    expect_err(&b, NULL, -EPROTO, "metadata 1: contains a NUL byte", "NUL in metadata help");
    b.md[0].help = rwb_bytes("help");
    struct rec r;
    struct perr e;
    TAP_OK(run(&b, NULL, &r, &e) == 0, "same request without NULs accepted (%s)", e.msg);
}

int main(void) {
    test_single();
    test_counts_and_repeat();
    test_labels();
    test_limits();
    test_bad_bodies();
    test_unpack_bombs();
    test_order();
    test_histograms();
    test_custom_buckets();
    test_nul_bytes();
    return tap_done();
}
