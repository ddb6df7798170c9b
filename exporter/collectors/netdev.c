/* SPDX-License-Identifier: Apache-2.0 */
/* netdev collector: per-interface counters from /proc/net/dev (node_exporter netdev, 1.5). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

struct netdev_state {
    struct col_regex *exclude, *include;
};

static int netdev_init(struct col_ctx *ctx, struct perr *err) {
    struct netdev_state *st = calloc(1, sizeof(*st));
    if (!st) return -ENOMEM;
    const char *ex = col_opt_str(ctx->opt, "collector.netdev.device-exclude");
    const char *in = col_opt_str(ctx->opt, "collector.netdev.device-include");
    /* The two are mutually exclusive in node_exporter; since the exclude has a default
     * ("^lo$", Debian), an include given on the command line replaces it. */
    int rc = col_regex_new("collector.netdev.device-include", in, &st->include, err);
    if (!rc && !(in && *in))
        rc = col_regex_new("collector.netdev.device-exclude", ex, &st->exclude, err);
    if (rc) {
        col_regex_free(st->include);
        free(st);
        return rc;
    }
    ctx->state = st;
    return 0;
}

static void netdev_fini(struct col_ctx *ctx) {
    struct netdev_state *st = ctx->state;
    if (!st) return;
    col_regex_free(st->exclude);
    col_regex_free(st->include);
    free(st);
}

/* /proc/net/dev columns in order. The kernel already folds the error subtypes the way
 * node_exporter's legacy() mapping of netlink stats does (drop = rx_dropped +
 * rx_missed_errors, frame = length + over + crc + frame errors, carrier = carrier + aborted +
 * window + heartbeat errors), so the values equal node_exporter's netlink-based ones. */
static const char *const cols[16] = {
    "receive_bytes",  "receive_packets",  "receive_errs",       "receive_drop",
    "receive_fifo",   "receive_frame",    "receive_compressed", "receive_multicast",
    "transmit_bytes", "transmit_packets", "transmit_errs",      "transmit_drop",
    "transmit_fifo",  "transmit_colls",   "transmit_carrier",   "transmit_compressed",
};

static int emit(struct mset *out, const char *key, const char *dev, double v) {
    char name[128], help[160];
    snprintf(name, sizeof(name), "node_network_%s_total", key);
    snprintf(help, sizeof(help), "Network device statistic %s.", key);
    return col_add(out, name, help, MTYPE_COUNTER, v, 1, "device", dev);
}

static int netdev_collect(struct col_ctx *ctx, struct mset *out) {
    struct netdev_state *st = ctx->state;
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "net/dev", ctx->buf);
    if (rc) return col_fail(ctx, rc, "couldn't get netstats");
    char *cur = ctx->buf->data, *line;
    for (int skip = 0; skip < 2; skip++) /* two header lines */
        if (!procfs_next_line(&cur)) return col_fail(ctx, -EPROTO, "truncated net/dev");
    while ((line = procfs_next_line(&cur))) {
        /* "  eth0: 123 ..." — long names and wide counters can leave no space after ':' */
        char *colon = strchr(line, ':');
        if (!colon) return col_fail(ctx, -EPROTO, "malformed line in net/dev");
        *colon = '\0';
        char *dev = line;
        while (*dev == ' ')
            dev++;
        char *f[17];
        if (procfs_fields(colon + 1, f, 17) < 16)
            return col_fail(ctx, -EPROTO, "short line in net/dev for %s", dev);
        if (col_filter_ignored(st->exclude, st->include, dev)) continue;
        for (int i = 0; i < 16; i++) {
            uint64_t v;
            if (procfs_parse_u64(f[i], &v))
                return col_fail(ctx, -EPROTO, "bad value in net/dev for %s", dev);
            if ((rc = emit(out, cols[i], dev, (double)v)))
                return rc == -ENOMEM ? rc : col_fail(ctx, -EPROTO, "duplicate device %s", dev);
        }
        /* rx_nohandler (Linux 4.6+) is not in /proc/net/dev; node_exporter gets it over
         * netlink, we read the same counter from sysfs. */
        char rel[512], path[4600];
        uint64_t v;
        snprintf(rel, sizeof(rel), "class/net/%s/statistics/rx_nohandler", dev);
        if (!procfs_path(ctx->paths, PROCFS_SYS, rel, path, sizeof(path)) &&
            !procfs_read_u64(path, &v) && (rc = emit(out, "receive_nohandler", dev, (double)v)))
            return rc;
    }
    return 0;
}

const struct collector col_netdev = {
    .name = "netdev",
    .default_on = true,
    .help = "Exposes network interface statistics such as bytes transferred",
    .init = netdev_init,
    .collect = netdev_collect,
    .fini = netdev_fini,
};
