/* SPDX-License-Identifier: Apache-2.0 */
/* time collector: wall clock, zone offset and clocksources (node_exporter time.go). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "collector.h"
#include "procfs.h"

static int clocksources(struct col_ctx *ctx, struct mset *out) {
    char dir[4096];
    int rc = procfs_path(ctx->paths, PROCFS_SYS, "devices/system/clocksource", dir, sizeof(dir));
    if (rc) return rc;
    DIR *d = opendir(dir);
    if (!d) return col_fail(ctx, -errno, "couldn't get clocksources");
    struct dirent *e;
    while ((e = readdir(d))) {
        /* sysfs.ClockSources numbers them by the clocksourceN suffix */
        if (strncmp(e->d_name, "clocksource", 11) != 0 || !e->d_name[11]) continue;
        const char *id = e->d_name + 11;
        char p[4400], line[1024];
        snprintf(p, sizeof(p), "%s/%s/available_clocksource", dir, e->d_name);
        if ((rc = procfs_read_line(p, line, sizeof(line)))) break;
        char *f[32];
        size_t nf = procfs_fields(line, f, 32);
        for (size_t i = 0; i < nf; i++)
            if ((rc = col_add(out, "node_time_clocksource_available_info",
                              "Available clocksources read from '/sys/devices/system/clocksource'.",
                              MTYPE_GAUGE, 1, 2, "device", id, "clocksource", f[i])) &&
                rc != -EEXIST)
                goto done;
        snprintf(p, sizeof(p), "%s/%s/current_clocksource", dir, e->d_name);
        if ((rc = procfs_read_line(p, line, sizeof(line)))) break;
        nf = procfs_fields(line, f, 2);
        if (nf && (rc = col_add(out, "node_time_clocksource_current_info",
                                "Current clocksource read from '/sys/devices/system/clocksource'.",
                                MTYPE_GAUGE, 1, 2, "device", id, "clocksource", f[0])))
            break;
        rc = 0;
    }
done:
    closedir(d);
    if (rc && rc != -ENOMEM) return col_fail(ctx, rc, "couldn't get clocksources");
    return rc;
}

static int time_collect(struct col_ctx *ctx, struct mset *out) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    time_t t = ts.tv_sec;
    localtime_r(&t, &tm);
    int rc = col_add(out, "node_time_seconds", "System time in seconds since epoch (1970).",
                     MTYPE_GAUGE, (double)ts.tv_sec + ts.tv_nsec / 1e9, 0);
    if (!rc)
        rc = col_add(out, "node_time_zone_offset_seconds", "System time zone offset in seconds.",
                     MTYPE_GAUGE, (double)tm.tm_gmtoff, 1, "time_zone",
                     tm.tm_zone ? tm.tm_zone : "");
    return rc ? rc : clocksources(ctx, out);
}

const struct collector col_time = {
    .name = "time",
    .default_on = true,
    .help = "Exposes the current system time",
    .collect = time_collect,
};
