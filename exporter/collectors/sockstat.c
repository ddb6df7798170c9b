/* SPDX-License-Identifier: Apache-2.0 */
/* sockstat collector: /proc/net/sockstat and sockstat6 as node_sockstat_<PROTO>_<field>. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "collector.h"
#include "procfs.h"

static int emit(struct mset *out, const char *proto, const char *field, double v) {
    char name[160], help[200];
    snprintf(name, sizeof(name), "node_sockstat_%s_%s", proto, field);
    snprintf(help, sizeof(help), "Number of %s sockets in state %s.", proto, field);
    return col_add(out, name, help, MTYPE_GAUGE, v, 0);
}

/* One file. Lines are "PROTO: key value key value ..."; procfs keeps inuse, orphan, tw,
 * alloc, mem and memory, and node_exporter adds mem_bytes = mem * page size. */
static int parse(struct col_ctx *ctx, struct mset *out, const char *rel, bool v6) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, rel, ctx->buf);
    if (rc == -ENOENT) return 0; /* no IPv6, or an old kernel: node_exporter skips it */
    if (rc) return col_fail(ctx, rc, "reading %s", rel);
    long page = sysconf(_SC_PAGESIZE);
    char *cur = ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[32];
        size_t nf = procfs_fields(line, f, 32);
        if (nf == 0) continue;
        size_t pl = strlen(f[0]);
        if (pl < 2 || f[0][pl - 1] != ':' || nf % 2 == 0)
            return col_fail(ctx, -EPROTO, "malformed line in %s: %s", rel, f[0]);
        f[0][pl - 1] = '\0';
        for (size_t i = 1; i + 1 < nf; i += 2) {
            double v;
            if (procfs_parse_double(f[i + 1], &v))
                return col_fail(ctx, -EPROTO, "bad value for %s %s in %s", f[0], f[i], rel);
            if (strcmp(f[0], "sockets") == 0) {
                if (!v6 && strcmp(f[i], "used") == 0 &&
                    (rc = col_add(out, "node_sockstat_sockets_used",
                                  "Number of IPv4 sockets in use.", MTYPE_GAUGE, v, 0)))
                    return rc;
                continue;
            }
            static const char *const known[] = {"inuse", "orphan", "tw", "alloc", "mem", "memory"};
            bool ok = false;
            for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++)
                ok |= strcmp(f[i], known[k]) == 0;
            if (!ok) continue;
            if ((rc = emit(out, f[0], f[i], v)))
                return rc == -ENOMEM ? rc : col_fail(ctx, -EPROTO, "unusable %s in %s", f[0], rel);
            if (strcmp(f[i], "mem") == 0 && (rc = emit(out, f[0], "mem_bytes", v * (double)page)))
                return rc == -ENOMEM ? rc : col_fail(ctx, -EPROTO, "unusable %s in %s", f[0], rel);
        }
    }
    return 0;
}

static int sockstat_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = parse(ctx, out, "net/sockstat", false);
    return rc ? rc : parse(ctx, out, "net/sockstat6", true);
}

const struct collector col_sockstat = {
    .name = "sockstat",
    .default_on = true,
    .help = "Exposes various statistics from /proc/net/sockstat",
    .collect = sockstat_collect,
};
