/* SPDX-License-Identifier: Apache-2.0 */
/* stat collector: boot time, context switches, forks, interrupts, procs from /proc/stat. */
#include <errno.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

static int stat_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "stat", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading stat");
    /* node_exporter (procfs.Stat) takes these six lines; each line's first number. */
    static const struct {
        const char *key, *name, *help;
        enum mtype type;
    } want[] = {
        {"intr", "node_intr_total", "Total number of interrupts serviced.", MTYPE_COUNTER},
        {"ctxt", "node_context_switches_total", "Total number of context switches.", MTYPE_COUNTER},
        {"processes", "node_forks_total", "Total number of forks.", MTYPE_COUNTER},
        {"btime", "node_boot_time_seconds", "Node boot time, in unixtime.", MTYPE_GAUGE},
        {"procs_running", "node_procs_running", "Number of processes in runnable state.",
         MTYPE_GAUGE},
        {"procs_blocked", "node_procs_blocked",
         "Number of processes blocked waiting for I/O to complete.", MTYPE_GAUGE},
    };
    enum { NW = sizeof(want) / sizeof(want[0]) };
    double v[NW];
    bool seen[NW] = {false};
    char *cur = ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[3];
        if (procfs_fields(line, f, 3) < 2) continue;
        for (int i = 0; i < NW; i++) {
            if (strcmp(f[0], want[i].key) != 0) continue;
            uint64_t x;
            if (procfs_parse_u64(f[1], &x))
                return col_fail(ctx, -EPROTO, "couldn't parse %s line in stat", f[0]);
            v[i] = (double)x;
            seen[i] = true;
        }
    }
    /* Emit what is there; a missing line still fails the collector (truncated file). */
    const char *missing = NULL;
    for (int i = 0; i < NW; i++) {
        if (!seen[i]) {
            missing = missing ? missing : want[i].key;
            continue;
        }
        if ((rc = col_add(out, want[i].name, want[i].help, want[i].type, v[i], 0))) return rc;
    }
    return missing ? col_fail(ctx, -EPROTO, "no %s line in stat", missing) : 0;
}

const struct collector col_stat = {
    .name = "stat",
    .default_on = true,
    .help = "Exposes various statistics from /proc/stat. This includes boot time, forks and "
            "interrupts",
    .collect = stat_collect,
};
