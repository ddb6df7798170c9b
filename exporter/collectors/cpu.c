/* SPDX-License-Identifier: Apache-2.0 */
/* cpu collector: node_cpu_seconds_total{cpu,mode}, guest seconds, thermal throttle counts. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "procfs.h"

/* procfs divides /proc/stat ticks by USER_HZ, which is 100 on every Linux ABI. */
#define USER_HZ 100.0
/* node_exporter's jumpBackSeconds: idle going back this far means a CPU was hot-plugged. */
#define JUMP_BACK_SECONDS 3.0

enum {
    M_USER,
    M_NICE,
    M_SYSTEM,
    M_IDLE,
    M_IOWAIT,
    M_IRQ,
    M_SOFTIRQ,
    M_STEAL,
    M_GUEST,
    M_GUEST_NICE,
    M_N
};
static const char *const mode_names[8] = {"user",   "nice", "system",  "idle",
                                          "iowait", "irq",  "softirq", "steal"};

struct cpu_state {
    bool guest;
    size_t n;
    double (*last)[M_N]; /* per CPU index, the last value exported per mode */
};

static int cpu_init(struct col_ctx *ctx, struct perr *err) {
    struct cpu_state *st = calloc(1, sizeof(*st));
    if (!st) return -ENOMEM;
    st->guest = col_opt_bool(ctx->opt, "collector.cpu.guest");
    ctx->state = st;
    return 0;
}

static void cpu_fini(struct col_ctx *ctx) {
    struct cpu_state *st = ctx->state;
    if (st) free(st->last);
    free(st);
}

/* Counters from /proc/stat can go backwards (kernel bugs around idle/iowait accounting);
 * node_exporter keeps the previous value then, and resets a CPU whose idle dropped by more
 * than JUMP_BACK_SECONDS (updateCPUStats). */
static void smooth(double *last, const double *now) {
    if (last[M_IDLE] - now[M_IDLE] >= JUMP_BACK_SECONDS) memset(last, 0, sizeof(double) * M_N);
    for (int m = 0; m < M_N; m++)
        if (now[m] >= last[m]) last[m] = now[m];
}

static int throttles(struct col_ctx *ctx, struct mset *out) {
    char dir[4096];
    int rc = procfs_path(ctx->paths, PROCFS_SYS, "devices/system/cpu", dir, sizeof(dir));
    if (rc) return rc;
    DIR *d = opendir(dir);
    if (!d) return 0; /* node_exporter's Glob finds nothing and emits nothing */
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "cpu", 3) != 0 || e->d_name[3] < '0' || e->d_name[3] > '9') continue;
        char p[4400], pkg[24], core[24];
        uint64_t pkg_id, core_id, n;
        snprintf(p, sizeof(p), "%s/%s/topology/physical_package_id", dir, e->d_name);
        if (procfs_read_u64(p, &pkg_id)) continue;
        snprintf(p, sizeof(p), "%s/%s/topology/core_id", dir, e->d_name);
        if (procfs_read_u64(p, &core_id)) continue;
        snprintf(pkg, sizeof(pkg), "%llu", (unsigned long long)pkg_id);
        snprintf(core, sizeof(core), "%llu", (unsigned long long)core_id);
        /* Hyper-threads share a core: the first CPU seen for a (package, core) wins, which
         * -EEXIST from the family tells us for free. */
        snprintf(p, sizeof(p), "%s/%s/thermal_throttle/core_throttle_count", dir, e->d_name);
        if (!procfs_read_u64(p, &n)) {
            rc = col_add(out, "node_cpu_core_throttles_total",
                         "Number of times this CPU core has been throttled.", MTYPE_COUNTER,
                         (double)n, 2, "package", pkg, "core", core);
            if (rc && rc != -EEXIST) break;
        }
        snprintf(p, sizeof(p), "%s/%s/thermal_throttle/package_throttle_count", dir, e->d_name);
        if (!procfs_read_u64(p, &n)) {
            rc = col_add(out, "node_cpu_package_throttles_total",
                         "Number of times this CPU package has been throttled.", MTYPE_COUNTER,
                         (double)n, 1, "package", pkg);
            if (rc && rc != -EEXIST) break;
        }
        rc = 0;
    }
    closedir(d);
    return rc;
}

static int cpu_collect(struct col_ctx *ctx, struct mset *out) {
    struct cpu_state *st = ctx->state;
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "stat", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading stat");
    struct mfam *fam = col_family(out, "node_cpu_seconds_total",
                                  "Seconds the CPUs spent in each mode.", MTYPE_COUNTER, &rc);
    if (!fam) return rc == -ENOMEM ? rc : col_fail(ctx, rc, "node_cpu_seconds_total in use");
    struct mfam *gfam = NULL;
    if (st->guest && !(gfam = col_family(out, "node_cpu_guest_seconds_total",
                                         "Seconds the CPUs spent in guests (VMs) for each mode.",
                                         MTYPE_COUNTER, &rc)))
        return rc == -ENOMEM ? rc : col_fail(ctx, rc, "node_cpu_guest_seconds_total in use");
    char *cur = ctx->buf->data, *line;
    int ncpu = 0;
    while ((line = procfs_next_line(&cur))) {
        if (strncmp(line, "cpu", 3) != 0 || line[3] < '0' || line[3] > '9') continue;
        char *f[M_N + 2];
        size_t nf = procfs_fields(line, f, M_N + 2);
        uint64_t id;
        if (procfs_parse_u64(f[0] + 3, &id) || id > 65535)
            return col_fail(ctx, -EPROTO, "bad cpu line in stat: %s", f[0]);
        /* Fields were added over time (steal 2.6.11, guest 2.6.24, guest_nice 2.6.33);
         * missing ones read as 0 as in procfs, but fewer than the first four is garbage. */
        if (nf < 5) return col_fail(ctx, -EPROTO, "truncated cpu line in stat: %s", f[0]);
        double now[M_N] = {0};
        for (size_t m = 0; m + 1 < nf && m < M_N; m++) {
            uint64_t t;
            if (procfs_parse_u64(f[m + 1], &t))
                return col_fail(ctx, -EPROTO, "bad value in stat %s line", f[0]);
            now[m] = (double)t / USER_HZ;
        }
        if (id >= st->n) {
            double(*p)[M_N] = realloc(st->last, (id + 1) * sizeof(*p));
            if (!p) return -ENOMEM;
            memset(p + st->n, 0, (id + 1 - st->n) * sizeof(*p));
            st->last = p;
            st->n = id + 1;
        }
        double *last = st->last[id];
        smooth(last, now);
        char num[8];
        snprintf(num, sizeof(num), "%u", (unsigned)id);
        for (int m = 0; m < 8; m++)
            if ((rc = mfam_addf(fam, "", last[m], 2, "cpu", num, "mode", mode_names[m])))
                return rc == -ENOMEM ? rc : col_fail(ctx, -EPROTO, "duplicate %s", f[0]);
        if (gfam) {
            /* guest time is also counted in user and nice; exported separately */
            if ((rc = mfam_addf(gfam, "", last[M_GUEST], 2, "cpu", num, "mode", "user")) ||
                (rc = mfam_addf(gfam, "", last[M_GUEST_NICE], 2, "cpu", num, "mode", "nice")))
                return rc == -ENOMEM ? rc : col_fail(ctx, -EPROTO, "duplicate %s", f[0]);
        }
        ncpu++;
    }
    if (!ncpu) return col_fail(ctx, -EPROTO, "no cpu lines in stat");
    rc = throttles(ctx, out);
    return rc == -ENOMEM ? rc : 0;
}

const struct collector col_cpu = {
    .name = "cpu",
    .default_on = true,
    .help = "Exposes CPU statistics",
    .init = cpu_init,
    .collect = cpu_collect,
    .fini = cpu_fini,
};
