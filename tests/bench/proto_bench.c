/* SPDX-License-Identifier: Apache-2.0 */
/* proto_bench: remote-write decode samples/s (500-series batch) and text-format parse lines/s (CPU
 * time). */
#include "proto.h"

#include "push_body.h"

#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- a hand-encoded WriteRequest shaped like k6's remote write ---- */

struct enc {
    uint8_t *p;
    size_t len, cap;
};

static void put(struct enc *e, const void *b, size_t n) {
    if (e->len + n > e->cap) {
        e->cap = (e->len + n) * 2;
        e->p = realloc(e->p, e->cap);
        if (!e->p) abort();
    }
    memcpy(e->p + e->len, b, n);
    e->len += n;
}

static void varint(struct enc *e, uint64_t v) {
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) b[n] |= 0x80;
        n++;
    } while (v);
    put(e, b, n);
}

static void ld(struct enc *e, unsigned field, const struct enc *sub) {
    varint(e, field << 3 | 2);
    varint(e, sub->len);
    put(e, sub->p, sub->len);
}

static void str(struct enc *e, unsigned field, const char *s) {
    varint(e, field << 3 | 2);
    varint(e, strlen(s));
    put(e, s, strlen(s));
}

static void label(struct enc *ts, const char *n, const char *v) {
    struct enc l = {0};
    str(&l, 1, n);
    str(&l, 2, v);
    ld(ts, 1, &l);
    free(l.p);
}

/* 500 series x 4 samples = 2000 samples (Prometheus' default max_samples_per_send). */
#define N_SERIES 500
#define N_SAMPLES 4

static uint8_t *build_batch(size_t *len, size_t *raw_len) {
    struct enc req = {0};
    for (int i = 0; i < N_SERIES; i++) {
        struct enc ts = {0};
        char url[64], status[8];
        snprintf(url, sizeof url, "http://webserver:5000/api/work/%d", i / 5);
        snprintf(status, sizeof status, "%d", 200 + (i % 5));
        label(&ts, "__name__", "k6_http_reqs_total");
        label(&ts, "expected_response", i % 7 ? "true" : "false");
        label(&ts, "method", "GET");
        label(&ts, "name", url);
        label(&ts, "scenario", "default");
        label(&ts, "status", status);
        label(&ts, "testid", "threadloadtest");
        label(&ts, "url", url);
        for (int k = 0; k < N_SAMPLES; k++) {
            struct enc s = {0};
            double v = i * 10.0 + k;
            varint(&s, 1 << 3 | 1);
            put(&s, &v, 8);
            varint(&s, 2 << 3 | 0);
            varint(&s, (uint64_t)(1700000000000LL + k * 1000));
            ld(&ts, 2, &s);
            free(s.p);
        }
        ld(&req, 1, &ts);
        free(ts.p);
    }
    size_t cap = snappy_max_compressed_length(req.len);
    uint8_t *out = malloc(cap);
    *len = cap;
    snappy_compress((const char *)req.p, req.len, (char *)out, len);
    *raw_len = req.len;
    free(req.p);
    return out;
}

/* Rates are computed on this process's CPU time: the machines that run the benchmarks are
 * shared, and wall time would mostly measure the neighbours. */
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cnt_sample(void *arg, int64_t ts, double v) {
    (*(size_t *)arg)++;
    return 0;
}

static int cnt_expfmt(void *arg, const char *f, const char *n, const struct proto_label *l,
                      size_t nl, double v, bool has_ts, int64_t ts) {
    (*(size_t *)arg)++;
    return 0;
}

/* Parses buf repeatedly for about `secs`; prints lines/s and samples/s. */
static int bench_expfmt(const char *what, const uint8_t *buf, size_t len, double secs) {
    size_t lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += buf[i] == '\n';
    size_t samples = 0, iters = 0;
    struct expfmt_sink sink = {&samples, NULL, cnt_expfmt};
    struct perr e;
    double t0 = now(), t;
    do {
        for (int k = 0; k < 100; k++, iters++)
            if (expfmt_parse(buf, len, &sink, &e)) {
                fprintf(stderr, "%s: %s\n", what, e.msg);
                return 1;
            }
        t = now() - t0;
    } while (t < secs);
    printf("expfmt_parse %-28s %8zu bytes %5zu lines: %10.0f lines/s  %10.0f samples/s  "
           "%8.2f us/body\n",
           what, len, lines, (double)(lines * iters) / t, (double)samples / t,
           t / (double)iters * 1e6);
    return 0;
}

int main(int argc, char **argv) {
    double secs = argc > 1 ? atof(argv[1]) : 1.0;
    if (secs <= 0) secs = 1.0;

    size_t len, raw_len;
    uint8_t *body = build_batch(&len, &raw_len);
    size_t samples = 0, iters = 0;
    struct rw_sink sink = {.arg = &samples, .sample = cnt_sample};
    double t0 = now(), t;
    do {
        for (int k = 0; k < 10; k++, iters++) {
            int code;
            struct perr e;
            struct rw_request *r = rw_decode(body, len, NULL, &code, &e);
            if (!r) {
                fprintf(stderr, "rw_decode: %s\n", e.msg);
                return 1;
            }
            rw_request_foreach(r, &sink);
            rw_request_free(r);
        }
        t = now() - t0;
    } while (t < secs);
    printf("rw_decode+foreach %d series x %d samples (%zu B snappy, %zu B protobuf): "
           "%10.0f samples/s  %8.0f requests/s  %8.1f us/request\n",
           N_SERIES, N_SAMPLES, len, raw_len, (double)samples / t, (double)iters / t,
           t / (double)iters * 1e6);
    free(body);

    if (bench_expfmt("push body (seed/README.md)", (const uint8_t *)push_body, sizeof push_body - 1,
                     secs))
        return 1;

    /* A large exposition for throughput, when the shared corpus is around. */
    const char *conf = getenv("CONFORMANCE");
    if (conf) {
        char path[4096];
        snprintf(path, sizeof path,
                 "%s/exposition/corpus/prometheus_textparse/alltypes.237mfs.prom.txt", conf);
        FILE *f = fopen(path, "rb");
        if (f) {
            static uint8_t big[1 << 20];
            size_t n = fread(big, 1, sizeof big, f);
            fclose(f);
            if (bench_expfmt("alltypes.237mfs.prom.txt", big, n, secs)) return 1;
        }
    }
    return 0;
}
