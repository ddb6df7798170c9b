/* SPDX-License-Identifier: Apache-2.0 */
/* rwbuild: test helper that builds snappy-compressed remote-write bodies with protobuf-c. */
#ifndef PROMLET_TESTS_RWBUILD_H
#define PROMLET_TESTS_RWBUILD_H

#include "remote.pb-c.h"

#include <snappy-c.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A tiny builder: up to 8 series of up to 8 labels, 8 samples, 4 histograms each. */
struct rwb {
    Prometheus__WriteRequest req;
    Prometheus__TimeSeries ts[8], *tsp[8];
    Prometheus__Label lab[8][8], *labp[8][8];
    Prometheus__Sample smp[8][8], *smpp[8][8];
    Prometheus__Histogram hist[8][4], *histp[8][4];
    Prometheus__MetricMetadata md[4], *mdp[4];
};

static inline void rwb_init(struct rwb *b) {
    memset(b, 0, sizeof *b);
    prometheus__write_request__init(&b->req);
    b->req.timeseries = b->tsp;
    b->req.metadata = b->mdp;
}

static inline ProtobufCBinaryData rwb_bytes(const char *s) {
    ProtobufCBinaryData d = {strlen(s), (uint8_t *)(uintptr_t)s};
    return d;
}

/* Ends the label list of rwb_series() (a typed null pointer, as variadic functions need). */
#define RWB_END ((const char *)NULL)

/* Adds a series with labels given as "name", "value", ..., RWB_END. Returns its index. */
static inline size_t rwb_series(struct rwb *b, ...) {
    size_t i = b->req.n_timeseries++;
    Prometheus__TimeSeries *ts = &b->ts[i];
    prometheus__time_series__init(ts);
    b->tsp[i] = ts;
    ts->labels = b->labp[i];
    ts->samples = b->smpp[i];
    ts->histograms = b->histp[i];
    va_list ap;
    va_start(ap, b);
    const char *n;
    while ((n = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        size_t k = ts->n_labels++;
        prometheus__label__init(&b->lab[i][k]);
        b->lab[i][k].name = rwb_bytes(n);
        b->lab[i][k].value = rwb_bytes(v);
        b->labp[i][k] = &b->lab[i][k];
    }
    va_end(ap);
    return i;
}

static inline void rwb_sample(struct rwb *b, size_t si, int64_t ts, double v) {
    Prometheus__TimeSeries *t = &b->ts[si];
    size_t k = t->n_samples++;
    prometheus__sample__init(&b->smp[si][k]);
    b->smp[si][k].timestamp = ts;
    b->smp[si][k].value = v;
    b->smpp[si][k] = &b->smp[si][k];
}

static inline Prometheus__Histogram *rwb_hist(struct rwb *b, size_t si, int64_t ts) {
    Prometheus__TimeSeries *t = &b->ts[si];
    size_t k = t->n_histograms++;
    Prometheus__Histogram *h = &b->hist[si][k];
    prometheus__histogram__init(h);
    h->timestamp = ts;
    b->histp[si][k] = h;
    return h;
}

static inline void rwb_meta(struct rwb *b, int type, const char *fam, const char *help,
                            const char *unit) {
    size_t k = b->req.n_metadata++;
    prometheus__metric_metadata__init(&b->md[k]);
    b->md[k].type = (Prometheus__MetricMetadata__MetricType)type;
    b->md[k].metric_family_name = rwb_bytes(fam);
    b->md[k].help = rwb_bytes(help);
    b->md[k].unit = rwb_bytes(unit);
    b->mdp[k] = &b->md[k];
}

/* Packs the request and compresses it; returns new buffer (free()) and its length. */
static inline uint8_t *rwb_body(const struct rwb *b, size_t *len) {
    size_t n = prometheus__write_request__get_packed_size(&b->req);
    uint8_t *raw = malloc(n ? n : 1);
    prometheus__write_request__pack(&b->req, raw);
    size_t cap = snappy_max_compressed_length(n);
    uint8_t *out = malloc(cap);
    *len = cap;
    snappy_compress((const char *)raw, n, (char *)out, len);
    free(raw);
    return out;
}

/* Compresses raw bytes into a new snappy block. */
static inline uint8_t *rwb_snappy(const uint8_t *raw, size_t n, size_t *len) {
    size_t cap = snappy_max_compressed_length(n);
    uint8_t *out = malloc(cap);
    *len = cap;
    snappy_compress((const char *)raw, n, (char *)out, len);
    return out;
}

#endif
