/* SPDX-License-Identifier: Apache-2.0 */
/* promql_bench: microseconds per evaluation of the experiment's two alert expressions over a
 * memstore of 10,000 series (prints figures; no timing assertions). */
#include "ruleeval.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define NSERIES 10000
#define NSAMPLES 60 /* one per second */

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void bench(const struct re_source *src, const char *q, int64_t t, int iters) {
    struct perr err;
    struct promql_expr *e = promql_parse(q, &err);
    if (!e) {
        fprintf(stderr, "parse: %s\n", err.msg);
        exit(1);
    }
    size_t nres = 0;
    double best = 1e18, total = 0;
    for (int i = 0; i < iters; i++) {
        struct promql_result *r;
        double t0 = now_us();
        if (promql_eval_instant(e, src, t, NULL, &r, &err) != 0) {
            fprintf(stderr, "eval: %s\n", err.msg);
            exit(1);
        }
        double dt = now_us() - t0;
        nres = r->nseries;
        promql_result_free(r);
        total += dt;
        if (dt < best) best = dt;
    }
    printf("%-70s %9.1f us/eval (mean of %d, best %.1f), %zu series in result\n", q, total / iters,
           iters, best, nres);
    promql_free(e);
}

int main(void) {
    struct re_memstore *s = re_memstore_new();
    char inst[32];
    struct re_label l[] = {
        {"__name__", "system_runtime_threadpool_queue_length"},
        {"instance", inst},
        {"job", "webserver"},
    };
    srand(42);
    for (int i = 0; i < NSERIES; i++) {
        snprintf(inst, sizeof(inst), "webserver-%05d:5000", i);
        double v = 0;
        for (int k = 0; k < NSAMPLES; k++) {
            v += rand() % 10; /* a growing queue, ~4.5/s, so some increases exceed 20 */
            if (re_memstore_add(s, l, 3, (int64_t)k * 1000, v, NULL) != 0) {
                fprintf(stderr, "memstore_add failed\n");
                return 1;
            }
        }
    }
    struct re_source src;
    re_memstore_source(s, &src);
    int64_t t = (NSAMPLES - 1) * 1000;
    printf("promql_bench: memstore with %d series x %d samples (1 s apart), evaluated at t=%llds\n",
           NSERIES, NSAMPLES, (long long)(t / 1000));
    int iters = getenv("PROMQL_BENCH_ITERS") ? atoi(getenv("PROMQL_BENCH_ITERS")) : 50;
    if (iters < 1) iters = 1;
    bench(&src, "system_runtime_threadpool_queue_length > 40", t, iters);
    bench(&src, "increase(system_runtime_threadpool_queue_length[5s]) > 20", t, iters);
    re_memstore_free(s);
    return 0;
}
