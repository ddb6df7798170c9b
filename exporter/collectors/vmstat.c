/* SPDX-License-Identifier: Apache-2.0 */
/* vmstat collector: /proc/vmstat fields selected by --collector.vmstat.fields, untyped. */
#include <errno.h>
#include <stdio.h>

#include "collector.h"
#include "procfs.h"

static int vmstat_init(struct col_ctx *ctx, struct perr *err) {
    struct col_regex *re;
    int rc = col_regex_new("collector.vmstat.fields",
                           col_opt_str(ctx->opt, "collector.vmstat.fields"), &re, err);
    ctx->state = re;
    return rc;
}

static void vmstat_fini(struct col_ctx *ctx) {
    col_regex_free(ctx->state);
}

static int vmstat_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "vmstat", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading vmstat");
    char *cur = ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[3];
        size_t nf = procfs_fields(line, f, 3);
        if (nf == 0) continue;
        if (nf != 2) return col_fail(ctx, -EPROTO, "invalid line in vmstat: %s", f[0]);
        if (ctx->state && !col_regex_match(ctx->state, f[0])) continue;
        double v; /* parsed only when exported: the filter keeps ~7 of ~190 fields */
        if (procfs_parse_double(f[1], &v))
            return col_fail(ctx, -EPROTO, "invalid value in vmstat: %s", f[0]);
        char name[160], help[200];
        snprintf(name, sizeof(name), "node_vmstat_%s", f[0]);
        snprintf(help, sizeof(help), "/proc/vmstat information field %s.", f[0]);
        rc = col_add(out, name, help, MTYPE_UNTYPED, v, 0);
        if (rc == -ENOMEM) return rc;
        if (rc) return col_fail(ctx, -EPROTO, "unusable vmstat field %s", f[0]);
    }
    return 0;
}

const struct collector col_vmstat = {
    .name = "vmstat",
    .default_on = true,
    .help = "Exposes statistics from /proc/vmstat",
    .init = vmstat_init,
    .collect = vmstat_collect,
    .fini = vmstat_fini,
};
