/* SPDX-License-Identifier: Apache-2.0 */
/* Store micro-benchmark: appends/s into existing series and bytes per series. */
#include "store.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t heap_used(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

int main(int argc, char **argv) {
    size_t nseries = argc > 1 ? (size_t)atol(argv[1]) : 10000;
    size_t rounds = argc > 2 ? (size_t)atol(argv[2]) : 300;
    const size_t batch = 500;
    /* Series shaped like node metrics: __name__, cpu, instance, job, mode. */
    struct re_label *labels = calloc(nseries * 5, sizeof(*labels));
    char(*vals)[24] = calloc(nseries * 2, sizeof(*vals));
    static const char *modes[] = {"user", "system", "idle", "iowait", "irq", "softirq", "steal"};
    for (size_t i = 0; i < nseries; i++) {
        snprintf(vals[2 * i], 24, "%zu", i / 7);
        snprintf(vals[2 * i + 1], 24, "metric_%zu", i % 50);
        struct re_label *l = &labels[i * 5];
        l[0] = (struct re_label){"__name__", vals[2 * i + 1]};
        l[1] = (struct re_label){"cpu", vals[2 * i]};
        l[2] = (struct re_label){"instance", "worker-1:9100"};
        l[3] = (struct re_label){"job", "node"};
        l[4] = (struct re_label){"mode", modes[i % 7]};
    }
    struct store_opts o = {.retention_ms = INT64_MAX / 4, .max_series = nseries * 2};
    size_t heap0 = heap_used();
    struct store *s = store_new(&o);
    struct store_sample *b = calloc(batch, sizeof(*b));
    /* Create every series with one sample. */
    for (size_t i = 0; i < nseries; i++) {
        if (store_append(s, &labels[i * 5], 5, 0, 0) != 0) {
            fprintf(stderr, "append failed\n");
            return 1;
        }
    }
    struct store_stats st;
    store_get_stats(s, &st);
    size_t heap1 = heap_used();
    double per_series_heap = (double)(heap1 - heap0 - st.sample_bytes) / (double)nseries;
    double per_series_acct = (double)st.label_bytes / (double)nseries;

    /* Appends into existing series, batches of 500, a fresh timestamp per round. */
    size_t total = 0;
    double t0 = now_s();
    for (size_t r = 1; r <= rounds; r++) {
        for (size_t off = 0; off < nseries; off += batch) {
            size_t n = nseries - off < batch ? nseries - off : batch;
            for (size_t k = 0; k < n; k++)
                b[k] = (struct store_sample){&labels[(off + k) * 5], 5, (int64_t)r * 1000,
                                             (double)r, NULL};
            struct store_result res;
            store_append_batch(s, b, n, 0, &res);
            total += res.appended;
        }
    }
    double dt = now_s() - t0;
    double t1 = now_s();
    size_t atotal = 0;
    for (size_t r = rounds + 1; r <= rounds + 50; r++)
        for (size_t off = 0; off < nseries; off += batch) {
            size_t n = nseries - off < batch ? nseries - off : batch;
            for (size_t k = 0; k < n; k++)
                b[k] = (struct store_sample){&labels[(off + k) * 5], 5, (int64_t)r * 1000,
                                             (double)r, NULL};
            struct store_result res;
            store_append_batch(s, b, n, STORE_ATOMIC, &res);
            atotal += res.appended;
        }
    double adt = now_s() - t1;
    /* The ref path: the same appends through series references. */
    uint64_t *refs = calloc(nseries, sizeof(*refs));
    int64_t *tsv = calloc(batch, sizeof(*tsv));
    double *vv = calloc(batch, sizeof(*vv));
    for (size_t i = 0; i < nseries; i++)
        store_ref_get(s, &labels[i * 5], 5, &refs[i]);
    double t2 = now_s();
    size_t rtotal = 0;
    for (size_t r = rounds + 51; r <= 2 * rounds + 50; r++)
        for (size_t off = 0; off < nseries; off += batch) {
            size_t n = nseries - off < batch ? nseries - off : batch;
            for (size_t k = 0; k < n; k++) {
                tsv[k] = (int64_t)r * 1000;
                vv[k] = (double)r;
            }
            if (store_append_refs(s, refs + off, tsv, vv, n) == 0) rtotal += n;
        }
    double rdt = now_s() - t2;
    free(refs);
    free(tsv);
    free(vv);
    store_get_stats(s, &st);
    printf("series=%zu samples=%zu\n", st.series, st.samples);
    printf("appends/s (series refs, batches of %zu):  %.2f M\n", batch, (double)rtotal / rdt / 1e6);
    printf("appends/s (best-effort batches of %zu): %.2f M\n", batch, (double)total / dt / 1e6);
    printf("appends/s (atomic batches of %zu):      %.2f M\n", batch, (double)atotal / adt / 1e6);
    printf("bytes per series beyond samples: %.0f (heap, incl. malloc overhead), %.0f (store "
           "accounting)\n",
           per_series_heap, per_series_acct);
    printf("bytes per sample: %.1f\n", (double)st.sample_bytes / (double)st.samples);
    store_free(s);
    free(b);
    free(labels);
    free(vals);
    return 0;
}
