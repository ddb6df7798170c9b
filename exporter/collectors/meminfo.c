/* SPDX-License-Identifier: Apache-2.0 */
/* meminfo collector: one gauge per /proc/meminfo field (node_exporter meminfo_linux.go). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

static int meminfo_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "meminfo", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading meminfo");
    char *cur = ctx->buf->data, *line;
    int n = 0;
    while ((line = procfs_next_line(&cur))) {
        char *f[4];
        size_t nf = procfs_fields(line, f, 4);
        if (nf == 0) continue; /* empty lines occur on some CentOS 6 kernels */
        size_t kl = strlen(f[0]);
        double v;
        if (nf < 2 || nf > 3 || kl < 2 || f[0][kl - 1] != ':' || procfs_parse_double(f[1], &v))
            return col_fail(ctx, -EPROTO, "invalid line in meminfo: %s", f[0]);
        f[0][kl - 1] = '\0';
        /* "Active(anon)" becomes "Active_anon", as node_exporter's reParens does */
        char key[128], name[192], help[256];
        size_t k = 0;
        for (const char *p = f[0]; *p && k + 1 < sizeof(key); p++) {
            if (*p == '(')
                key[k++] = '_';
            else if (*p != ')')
                key[k++] = *p;
        }
        key[k] = '\0';
        if (nf == 3) { /* a unit: the kernel only ever writes kB */
            v *= 1024;
            strcat(key, "_bytes");
        }
        snprintf(name, sizeof(name), "node_memory_%s", key);
        snprintf(help, sizeof(help), "Memory information field %s.", key);
        size_t nl = strlen(key);
        enum mtype t = nl > 6 && strcmp(key + nl - 6, "_total") == 0 ? MTYPE_COUNTER : MTYPE_GAUGE;
        rc = col_add(out, name, help, t, v, 0);
        if (rc == -ENOMEM) return rc;
        if (rc) return col_fail(ctx, -EPROTO, "unusable meminfo field %s", f[0]);
        n++;
    }
    return n ? 0 : col_fail(ctx, -EPROTO, "empty meminfo");
}

const struct collector col_meminfo = {
    .name = "meminfo",
    .default_on = true,
    .help = "Exposes memory statistics",
    .collect = meminfo_collect,
};
