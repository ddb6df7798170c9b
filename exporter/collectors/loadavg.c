/* SPDX-License-Identifier: Apache-2.0 */
/* loadavg collector: node_load1/5/15 from /proc/loadavg (node_exporter loadavg_linux.go). */
#include <errno.h>

#include "collector.h"
#include "procfs.h"

static int loadavg_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "loadavg", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading loadavg");
    char *f[4];
    double v[3];
    if (procfs_fields(ctx->buf->data, f, 4) < 3)
        return col_fail(ctx, -EPROTO, "unexpected content in loadavg");
    for (int i = 0; i < 3; i++)
        if (procfs_parse_double(f[i], &v[i]))
            return col_fail(ctx, -EPROTO, "could not parse load '%s'", f[i]);
    static const char *const names[3] = {"node_load1", "node_load5", "node_load15"};
    static const char *const helps[3] = {"1m load average.", "5m load average.",
                                         "15m load average."};
    for (int i = 0; i < 3; i++)
        if ((rc = col_add(out, names[i], helps[i], MTYPE_GAUGE, v[i], 0))) return rc;
    return 0;
}

const struct collector col_loadavg = {
    .name = "loadavg",
    .default_on = true,
    .help = "Exposes load average",
    .collect = loadavg_collect,
};
