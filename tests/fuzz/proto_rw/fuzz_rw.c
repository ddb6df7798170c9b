/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_rw: libFuzzer target for rw_decode (+ foreach), checking what a valid request promises. */
#include "proto.h"

#include <errno.h>
#include <math.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_rw: invariant failed: %s (line %d)\n", #c, __LINE__);            \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

struct st {
    size_t series, samples, hists, meta;
    bool in_series;
    uint64_t digest; /* of every series' labels, in order */
};

static uint64_t fnv(uint64_t h, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 0x100000001b3ULL;
    return (h ^ 0xff) * 0x100000001b3ULL;
}

static int f_series(void *arg, const struct proto_label *l, size_t n) {
    struct st *s = arg;
    s->series++;
    s->in_series = true;
    bool has_name = false;
    s->digest = fnv(s->digest, "", 0);
    for (size_t i = 0; i < n; i++) {
        s->digest = fnv(fnv(s->digest, l[i].name, l[i].name_len), l[i].value, l[i].value_len);
        REQUIRE(l[i].name_len > 0 && l[i].value_len > 0);
        REQUIRE(l[i].name[l[i].name_len] == 0 && l[i].value[l[i].value_len] == 0);
        REQUIRE(strlen(l[i].name) == l[i].name_len && strlen(l[i].value) == l[i].value_len);
        if (i) {
            size_t m = l[i - 1].name_len < l[i].name_len ? l[i - 1].name_len : l[i].name_len;
            int c = memcmp(l[i - 1].name, l[i].name, m);
            REQUIRE(c < 0 || (c == 0 && l[i - 1].name_len < l[i].name_len));
        }
        if (l[i].name_len == 8 && !memcmp(l[i].name, "__name__", 8)) has_name = true;
    }
    REQUIRE(has_name);
    return 0;
}

static int f_sample(void *arg, int64_t ts, double v) {
    struct st *s = arg;
    REQUIRE(s->in_series);
    s->samples++;
    return 0;
}

static int f_hist(void *arg, int64_t ts, const struct proto_hist *h) {
    struct st *s = arg;
    REQUIRE(s->in_series);
    s->hists++;
    uint64_t need = 0;
    for (size_t i = 0; i < h->n_pos_spans; i++)
        need += h->pos_spans[i].length;
    REQUIRE(need == h->n_pos_buckets);
    need = 0;
    for (size_t i = 0; i < h->n_neg_spans; i++)
        need += h->neg_spans[i].length;
    REQUIRE(need == h->n_neg_buckets);
    for (size_t i = 0; i < h->n_pos_buckets; i++)
        REQUIRE(!(h->pos_buckets[i] < 0));
    for (size_t i = 0; i < h->n_neg_buckets; i++)
        REQUIRE(!(h->neg_buckets[i] < 0));
    for (size_t i = 0; i < h->n_custom_values; i++)
        (void)h->custom_values[i];
    if (h->schema == -53) {
        /* every bucket index a consumer computes lies in [0, n_custom_values] (+Inf last) */
        int64_t idx = 0;
        for (size_t i = 0; i < h->n_pos_spans; i++) {
            REQUIRE(h->pos_spans[i].offset >= 0);
            idx += h->pos_spans[i].offset + (int64_t)h->pos_spans[i].length;
        }
        REQUIRE(idx <= (int64_t)h->n_custom_values + 1);
        REQUIRE(h->zero_threshold == 0 && h->zero_count == 0 && h->n_neg_buckets == 0);
        for (size_t i = 1; i < h->n_custom_values; i++)
            REQUIRE(h->custom_values[i] > h->custom_values[i - 1]);
        REQUIRE(h->n_custom_values == 0 || isfinite(h->custom_values[h->n_custom_values - 1]));
    }
    return 0;
}

static int f_meta(void *arg, const char *fam, enum rw_metric_type t, const char *help,
                  const char *unit) {
    struct st *s = arg;
    s->meta++;
    REQUIRE(t >= RW_TYPE_UNKNOWN && t <= RW_TYPE_STATESET);
    (void)strlen(fam), (void)strlen(help), (void)strlen(unit);
    return 0;
}

/* Decodes body with lim; returns the request's digest (0 when refused, *code set). */
static uint64_t decode_digest(const uint8_t *body, size_t len, const struct rw_limits *lim,
                              int *code, struct rw_request **keep) {
    struct perr e;
    struct rw_request *r = rw_decode(body, len, lim, code, &e);
    if (!r) {
        REQUIRE(*code == -EPROTO || *code == -E2BIG || *code == -ENOMEM);
        REQUIRE(e.msg[0] != 0 && memchr(e.msg, 0, sizeof e.msg) != NULL);
        return 0;
    }
    REQUIRE(*code == 0);
    uint64_t digest = 0;
    for (int pass = 0; pass < 2; pass++) { /* foreach is repeatable */
        struct st s = {0};
        struct rw_sink sink = {&s, f_series, f_sample, f_hist, f_meta};
        REQUIRE(rw_request_foreach(r, &sink) == 0);
        REQUIRE(s.series == rw_request_series(r));
        REQUIRE(s.samples == rw_request_samples(r));
        REQUIRE(s.hists == rw_request_histograms(r));
        REQUIRE(s.meta == rw_request_metadata(r));
        digest = s.digest | 1;
    }
    if (keep)
        *keep = r;
    else
        rw_request_free(r);
    return digest;
}

/* Decodes body without and with a label-set cache: the first decode with the cache fills it
 * (rw_request_remember), the second must hit and give the same labels and result. */
static void check(const uint8_t *body, size_t len, const struct rw_limits *lim) {
    int code = 1, code2 = 1;
    uint64_t plain = decode_digest(body, len, lim, &code, NULL);
    struct rw_limits cl = *lim;
    cl.cache = rwcache_new(64, 1 << 16);
    if (!cl.cache) return;
    struct rw_request *r = NULL;
    uint64_t first = decode_digest(body, len, &cl, &code2, &r);
    REQUIRE(first == plain && (code2 == code || code2 == -ENOMEM || code == -ENOMEM));
    for (size_t i = 0; r && i < rw_request_series(r); i++) {
        struct rw_key k;
        uint64_t tag = 1;
        if (rw_request_key(r, i, &k, &tag) == 0) {
            REQUIRE(tag == 0);
            int rc = rw_request_remember(r, i, cl.cache, i + 1);
            REQUIRE(rc == 0 || rc == -ENOMEM);
        }
    }
    rw_request_free(r);
    r = NULL;
    uint64_t again = decode_digest(body, len, &cl, &code2, &r);
    REQUIRE(again == plain && (code2 == code || code2 == -ENOMEM || code == -ENOMEM));
    rw_request_free(r);
    rwcache_free(cl.cache);
}

/* First byte selects the mode: even = the rest is a request body as sent (snappy); odd = the
 * rest is a raw protobuf WriteRequest that we compress first, so that the fuzzer can reach
 * the protobuf and validation code without having to learn snappy. Bit 1 turns on
 * sort_labels and utf8_names. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    struct rw_limits lim = {.max_decoded_bytes = 1 << 20, .max_series = 1000, .max_samples = 10000};
    if (data[0] & 2) lim.sort_labels = lim.utf8_names = true;
    if (!(data[0] & 1)) {
        check(data + 1, size - 1, &lim);
        return 0;
    }
    size_t cap = snappy_max_compressed_length(size - 1), len = cap;
    char *body = malloc(cap ? cap : 1);
    if (!body) return 0;
    if (snappy_compress((const char *)data + 1, size - 1, body, &len) == SNAPPY_OK)
        check((const uint8_t *)body, len, &lim);
    free(body);
    return 0;
}
