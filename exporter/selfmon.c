/* SPDX-License-Identifier: Apache-2.0 */
/* Self metrics: process_* as client libraries name them, build info, reloads, store. */
#include "agent.h"
#include "expose.h"
#include "store.h"
#include "version.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t agent_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int gauge(struct mset *out, const char *name, const char *help, double v) {
    struct mfam *f = mset_family(out, name, help, MTYPE_GAUGE);
    return f ? mfam_add(f, "", NULL, 0, v) : -ENOMEM;
}

static int counter(struct mset *out, const char *name, const char *help, double v) {
    struct mfam *f = mset_family(out, name, help, MTYPE_COUNTER);
    return f ? mfam_add(f, "", NULL, 0, v) : -ENOMEM;
}

static double boot_time(void) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    char line[256];
    double bt = 0;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "btime %lf", &bt) == 1) break;
    fclose(f);
    return bt;
}

/* client_golang's process collector, read from /proc/self (procfs.NewStat). */
static int process_metrics(struct mset *out) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) return 0;
    char buf[1024];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may contain spaces and parentheses: fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    unsigned long long utime = 0, stime = 0, start = 0, vsize = 0;
    long long rss = 0;
    /* fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
     * utime(14) stime(15) cutime cstime priority nice threads itrealvalue starttime(22)
     * vsize(23) rss(24) */
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d %*d "
               "%llu %llu %lld",
               &utime, &stime, &start, &vsize, &rss) != 5)
        return 0;
    double tck = (double)sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    int rc =
        counter(out, "process_cpu_seconds_total",
                "Total user and system CPU time spent in seconds.", (double)(utime + stime) / tck);
    rc = rc ? rc
            : gauge(out, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
                    (double)vsize);
    rc = rc ? rc
            : gauge(out, "process_resident_memory_bytes", "Resident memory size in bytes.",
                    (double)rss * (double)page);
    rc = rc ? rc
            : gauge(out, "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds.",
                    boot_time() + (double)start / tck);
    size_t fds = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)))
            if (de->d_name[0] != '.') fds++;
        closedir(d);
        fds--; /* the directory stream's own descriptor */
    }
    rc = rc ? rc : gauge(out, "process_open_fds", "Number of open file descriptors.", (double)fds);
    struct rlimit rl;
    if (!rc && getrlimit(RLIMIT_NOFILE, &rl) == 0)
        rc = gauge(out, "process_max_fds", "Maximum number of open file descriptors.",
                   (double)rl.rlim_cur);
    if (!rc && getrlimit(RLIMIT_AS, &rl) == 0)
        rc = gauge(out, "process_virtual_memory_max_bytes",
                   "Maximum amount of virtual memory available in bytes.",
                   rl.rlim_cur == RLIM_INFINITY ? 1.8446744073709552e19 : (double)rl.rlim_cur);
    return rc;
}

int selfmon_write(struct agent *a, struct mset *out) {
    int rc = process_metrics(out);
    struct mfam *bi = mset_family(out, "promlet_build_info",
                                  "A metric with a constant '1' value labeled by version, "
                                  "revision and branch from which promlet was built.",
                                  MTYPE_GAUGE);
    if (!bi) return -ENOMEM;
    rc = rc ? rc
            : mfam_addf(bi, "", 1, 3, "branch", version_branch(), "revision", version_revision(),
                        "version", version_string());

    pthread_mutex_lock(&a->cfg_lock);
    bool ok = a->last_reload_ok;
    double ts = a->last_reload_success;
    pthread_mutex_unlock(&a->cfg_lock);
    rc = rc ? rc
            : gauge(out, "promlet_config_last_reload_successful",
                    "Whether the last configuration reload attempt was successful.", ok);
    rc = rc ? rc
            : gauge(out, "promlet_config_last_reload_success_timestamp_seconds",
                    "Timestamp of the last successful configuration reload.", ts);

    struct store_stats st;
    store_get_stats(a->store, &st);
    rc = rc ? rc
            : gauge(out, "promlet_store_series", "Number of series in the store.",
                    (double)st.series);
    rc = rc ? rc
            : gauge(out, "promlet_store_samples", "Number of samples in the store.",
                    (double)st.samples);
    rc = rc ? rc
            : counter(out, "promlet_store_samples_appended_total",
                      "Total number of samples appended to the store.", (double)st.appended_total);
    rc = rc ? rc
            : counter(out, "promlet_store_out_of_order_samples_total",
                      "Total number of samples refused because they were older than their "
                      "series' newest sample.",
                      (double)st.out_of_order_total);
    rc = rc ? rc
            : counter(out, "promlet_store_duplicate_samples_total",
                      "Total number of samples refused for a timestamp already stored with "
                      "another value.",
                      (double)st.duplicate_total);
    rc = rc ? rc
            : counter(out, "promlet_store_series_limit_hits_total",
                      "Total number of writes refused because they would exceed "
                      "storage.max_series.",
                      (double)st.series_limit_hits_total);
    rc = rc ? rc
            : counter(out, "promlet_store_too_new_samples_total",
                      "Total number of samples refused for a timestamp beyond now + "
                      "storage.future_tolerance.",
                      (double)st.too_new_total);
    rc = rc ? rc
            : counter(out, "promlet_store_series_created_total",
                      "Total number of series created in the store.",
                      (double)st.series_created_total);
    rc = rc ? rc
            : counter(out, "promlet_store_series_removed_total",
                      "Total number of series removed from the store by retention.",
                      (double)st.series_removed_total);
    struct mfam *mem = mset_family(out, "promlet_store_memory_bytes",
                                   "Bytes the store holds, by part (index: labels, series "
                                   "and tables; samples: sample chunks).",
                                   MTYPE_GAUGE);
    if (!mem) return -ENOMEM;
    rc = rc ? rc : mfam_addf(mem, "", (double)st.label_bytes, 1, "part", "index");
    rc = rc ? rc : mfam_addf(mem, "", (double)st.sample_bytes, 1, "part", "samples");
    return rc;
}
