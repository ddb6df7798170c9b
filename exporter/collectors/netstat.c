/* SPDX-License-Identifier: Apache-2.0 */
/* netstat collector: /proc/net/{netstat,snmp,snmp6} fields picked by --collector.netstat.fields. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

#define MAX_COLS 512

static int netstat_init(struct col_ctx *ctx, struct perr *err) {
    struct col_regex *re;
    int rc = col_regex_new("collector.netstat.fields",
                           col_opt_str(ctx->opt, "collector.netstat.fields"), &re, err);
    ctx->state = re;
    return rc;
}

static void netstat_fini(struct col_ctx *ctx) {
    col_regex_free(ctx->state);
}

/* node_exporter names a field <Protocol>_<Name>, HELP "Statistic <Protocol><Name>.", untyped.
 * A protocol seen twice (netstat, then snmp) keeps the first series. */
static int emit(struct col_ctx *ctx, struct mset *out, const char *proto, const char *name,
                const char *value) {
    char key[256], full[300], help[300];
    size_t pl = strlen(proto), nl = strlen(name);
    if (pl + 1 + nl >= sizeof(key))
        return col_fail(ctx, -EPROTO, "netstat field name too long: %s", name);
    memcpy(key, proto, pl);
    key[pl] = '_';
    memcpy(key + pl + 1, name, nl + 1);
    if (ctx->state && !col_regex_match(ctx->state, key))
        return 0; /* parse only what is exported: most fields never are */
    double v;
    if (procfs_parse_double(value, &v))
        return col_fail(ctx, -EPROTO, "invalid value %s in netstats", value);
    snprintf(full, sizeof(full), "node_netstat_%s", key);
    snprintf(help, sizeof(help), "Statistic %s%s.", proto, name);
    int rc = col_add(out, full, help, MTYPE_UNTYPED, v, 0);
    if (rc == -EEXIST) return 0;
    return rc == -ENOMEM || !rc ? rc : col_fail(ctx, -EPROTO, "unusable netstat field %s", key);
}

/* Header/value line pairs: "TcpExt: SyncookiesSent ..." then "TcpExt: 0 ...". */
static int pairs(struct col_ctx *ctx, struct mset *out, const char *rel) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, rel, ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading %s", rel);
    char *cur = ctx->buf->data, *hdr, *val;
    while ((hdr = procfs_next_line(&cur))) {
        val = procfs_next_line(&cur);
        char *hf[MAX_COLS], *vf[MAX_COLS];
        size_t nh = procfs_fields(hdr, hf, MAX_COLS);
        size_t nv = val ? procfs_fields(val, vf, MAX_COLS) : 0;
        if (nh == 0) continue;
        size_t pl = strlen(hf[0]);
        if (nh != nv || pl < 2 || hf[0][pl - 1] != ':' || strcmp(hf[0], vf[0]) != 0)
            return col_fail(ctx, -EPROTO, "mismatch field count in %s: %s", rel, hf[0]);
        hf[0][pl - 1] = '\0';
        for (size_t i = 1; i < nh; i++)
            if ((rc = emit(ctx, out, hf[0], hf[i], vf[i]))) return rc;
    }
    return 0;
}

static int netstat_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = pairs(ctx, out, "net/netstat");
    if (!rc) rc = pairs(ctx, out, "net/snmp");
    if (rc) return rc;
    /* snmp6 is "Ip6InReceives 12" lines; the protocol ends at the first '6'. Absent when
     * IPv6 is disabled, which node_exporter ignores. */
    rc = procfs_read_at(ctx->paths, PROCFS_PROC, "net/snmp6", ctx->buf);
    if (rc == -ENOENT) return 0;
    if (rc) return col_fail(ctx, rc, "reading net/snmp6");
    char *cur = ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[3];
        if (procfs_fields(line, f, 3) < 2) continue;
        char *six = strchr(f[0], '6');
        if (!six) continue;
        char proto[64];
        size_t pl = (size_t)(six - f[0]) + 1;
        if (pl >= sizeof(proto)) continue;
        memcpy(proto, f[0], pl);
        proto[pl] = '\0';
        if ((rc = emit(ctx, out, proto, six + 1, f[1]))) return rc;
    }
    return 0;
}

const struct collector col_netstat = {
    .name = "netstat",
    .default_on = true,
    .help = "Exposes network statistics from /proc/net/netstat",
    .init = netstat_init,
    .collect = netstat_collect,
    .fini = netstat_fini,
};
