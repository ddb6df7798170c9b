/* SPDX-License-Identifier: Apache-2.0 */
/* pressure collector: PSI stall totals from /proc/pressure/{cpu,io,memory} (Linux >= 4.20). */
#include <errno.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

static int pressure_collect(struct col_ctx *ctx, struct mset *out) {
    static const struct {
        const char *res, *some_name, *some_help, *full_name, *full_help;
    } r[] = {
        {"cpu", "node_pressure_cpu_waiting_seconds_total",
         "Total time in seconds that processes have waited for CPU time", NULL, NULL},
        {"io", "node_pressure_io_waiting_seconds_total",
         "Total time in seconds that processes have waited due to IO congestion",
         "node_pressure_io_stalled_seconds_total",
         "Total time in seconds no process could make progress due to IO congestion"},
        {"memory", "node_pressure_memory_waiting_seconds_total",
         "Total time in seconds that processes have waited for memory",
         "node_pressure_memory_stalled_seconds_total",
         "Total time in seconds no process could make progress due to memory congestion"},
    };
    for (size_t i = 0; i < sizeof(r) / sizeof(r[0]); i++) {
        char rel[32] = "pressure/";
        strcat(rel, r[i].res);
        int rc = procfs_read_at(ctx->paths, PROCFS_PROC, rel, ctx->buf);
        /* ENOENT: kernel without CONFIG_PSI; EOPNOTSUPP: PSI compiled in but psi=0 */
        if (rc == -ENOENT || rc == -EOPNOTSUPP)
            return col_fail(ctx, -ENODATA, "pressure information is unavailable");
        if (rc) return col_fail(ctx, rc, "reading %s", rel);
        /* µs to s as node_exporter does it, in two divisions, for bit-identical values */
        double some = 0, full = 0;
        bool has_full;
        if (procfs_parse_psi(ctx->buf->data, &some, &full, &has_full))
            return col_fail(ctx, -EPROTO, "malformed %s", rel);
        if ((rc = col_add(out, r[i].some_name, r[i].some_help, MTYPE_COUNTER,
                          some / 1000.0 / 1000.0, 0)))
            return rc;
        if (r[i].full_name && (rc = col_add(out, r[i].full_name, r[i].full_help, MTYPE_COUNTER,
                                            full / 1000.0 / 1000.0, 0)))
            return rc;
    }
    return 0;
}

const struct collector col_pressure = {
    .name = "pressure",
    .default_on = true,
    .help = "Exposes pressure stall statistics from /proc/pressure/",
    .collect = pressure_collect,
};
