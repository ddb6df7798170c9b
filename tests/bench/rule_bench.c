/* SPDX-License-Identifier: Apache-2.0 */
/* Rule evaluation cost over the daemon's store: the experiment's two rules and the node
 * rules' expressions, with the store holding 10,000 series (prints figures only). */
#include "store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Allocation counting: the executable links with --wrap for malloc, calloc and realloc. */
static unsigned long long nallocs;
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n) {
    nallocs++;
    return __real_malloc(n);
}
void *__wrap_calloc(size_t n, size_t m) {
    nallocs++;
    return __real_calloc(n, m);
}
void *__wrap_realloc(void *p, size_t n) {
    nallocs++;
    return __real_realloc(p, n);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench(const struct re_source *src, const char *q, int64_t t, int iters) {
    struct perr err = {0};
    struct promql_expr *e = promql_parse(q, &err);
    if (!e) {
        printf("%-70s parse error: %s\n", q, err.msg);
        return;
    }
    struct promql_opts o;
    promql_opts_default(&o);
    o.compat_v2 = true; /* the experiment ran Prometheus 2.45 */
    size_t nres = 0;
    /* warm-up */
    struct promql_result *r = NULL;
    if (promql_eval_instant(e, src, t, &o, &r, &err) == 0) {
        nres = r->nseries;
        promql_result_free(r);
    }
    unsigned long long a0 = nallocs;
    double t0 = now_s();
    for (int i = 0; i < iters; i++) {
        r = NULL;
        if (promql_eval_instant(e, src, t, &o, &r, &err) == 0) promql_result_free(r);
    }
    double us = (now_s() - t0) / iters * 1e6;
    printf("%-70s %9.2f us/eval %7.1f allocs/eval %5zu series\n", q, us,
           (double)(nallocs - a0) / iters, nres);
    promql_free(e);
}

int main(int argc, char **argv) {
    int iters = argc > 1 ? atoi(argv[1]) : 2000;
    struct store_opts so = {.retention_ms = 15 * 60 * 1000, .max_series = 200000};
    struct store *s = store_new(&so);
    const int64_t t_end = 900 * 1000; /* 15 minutes of 1 s samples */
    size_t nseries = 0;
    char cpu[8], val[16];
    static const char *modes[] = {"user", "system",  "idle",  "iowait",
                                  "irq",  "softirq", "steal", "nice"};
    /* 9,900 node-like series: node_cpu_seconds_total for 1,200 cpus x 8 modes ... */
    for (int c = 0; c < 1200; c++)
        for (int m = 0; m < 8; m++, nseries++) {
            snprintf(cpu, sizeof(cpu), "%d", c);
            struct re_label l[] = {{"__name__", "node_cpu_seconds_total"},
                                   {"cpu", cpu},
                                   {"instance", "worker-1:9100"},
                                   {"job", "node"},
                                   {"mode", modes[m]}};
            for (int64_t t = 0; t <= t_end; t += 15000)
                store_append(s, l, 5, t, (double)t / 1000.0 * (m + 1));
        }
    /* ... and other gauges up to 9,999 series, then the experiment's one series. */
    for (; nseries < 9999; nseries++) {
        snprintf(val, sizeof(val), "%zu", nseries);
        struct re_label l[] = {{"__name__", "node_filesystem_avail_bytes"},
                               {"device", val},
                               {"fstype", "ext4"},
                               {"mountpoint", val}};
        for (int64_t t = 0; t <= t_end; t += 15000)
            store_append(s, l, 4, t, 1e9 - (double)t);
    }
    struct re_label q[] = {{"__name__", "system_runtime_threadpool_queue_length"},
                           {"instance", "webserver:5000"},
                           {"job", "webserver"}};
    for (int64_t t = 0; t <= t_end; t += 1000)
        store_append(s, q, 3, t, (double)((t / 1000) % 60));
    struct store_stats st;
    store_get_stats(s, &st);
    printf("store: %zu series, %zu samples; %d evaluations per query at t=%llds\n", st.series,
           st.samples, iters, (long long)(t_end / 1000));
    struct re_source src;
    store_source(s, &src);
    /* At 899 s the queue is 59: the first rule's result holds the series. */
    bench(&src, "system_runtime_threadpool_queue_length > 40", t_end - 1000, iters);
    bench(&src, "increase(system_runtime_threadpool_queue_length[5s]) > 20", t_end - 1000, iters);
    bench(&src, "1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))",
          t_end, iters / 100 + 1);
    bench(&src,
          "predict_linear(node_filesystem_avail_bytes{fstype!~\"tmpfs|ramfs|squashfs\"}[1h], "
          "4 * 3600) < 0",
          t_end, iters / 100 + 1);
    bench(&src, "absent(node_uname_info)", t_end, iters);
    store_free(s);
    return 0;
}
