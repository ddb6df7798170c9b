/* SPDX-License-Identifier: Apache-2.0 */
/* netstat collector: /proc/net/{netstat,snmp,snmp6} fields picked by --collector.netstat.fields. */
#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

#define MAX_COLS 512

/* The kernel's field list never changes while it runs, so each field's verdict from the
 * --collector.netstat.fields regex is remembered: ~300 fields per scrape, few selected. */
#define CACHE_SLOTS 1024
struct verdict {
    char key[64]; /* "" = empty slot */
    bool match;
};

struct netstat_state {
    struct col_regex *re;
    struct verdict cache[CACHE_SLOTS];
};

static int netstat_init(struct col_ctx *ctx, struct perr *err) {
    struct netstat_state *st = calloc(1, sizeof(*st));
    if (!st) return -ENOMEM;
    int rc = col_regex_new("collector.netstat.fields",
                           col_opt_str(ctx->opt, "collector.netstat.fields"), &st->re, err);
    if (rc) {
        free(st);
        return rc;
    }
    ctx->state = st;
    return 0;
}

static void netstat_fini(struct col_ctx *ctx) {
    struct netstat_state *st = ctx->state;
    if (st) col_regex_free(st->re);
    free(st);
}

static bool selected(struct netstat_state *st, const char *key, size_t kl) {
    if (!st->re) return true;
    if (kl >= sizeof(st->cache[0].key)) return col_regex_match(st->re, key);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < kl; i++)
        h = (h ^ (unsigned char)key[i]) * 0x100000001b3ULL;
    for (size_t n = 0, j = h % CACHE_SLOTS; n < CACHE_SLOTS; n++, j = (j + 1) % CACHE_SLOTS) {
        struct verdict *v = &st->cache[j];
        if (!v->key[0]) {
            memcpy(v->key, key, kl + 1);
            v->match = col_regex_match(st->re, key);
            return v->match;
        }
        if (strcmp(v->key, key) == 0) return v->match;
    }
    return col_regex_match(st->re, key); /* table full: unusual kernel, still correct */
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
    if (!selected(ctx->state, key, pl + 1 + nl))
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
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, rel, &ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading %s", rel);
    char *cur = ctx->buf.data, *hdr, *val;
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
    rc = procfs_read_at(ctx->paths, PROCFS_PROC, "net/snmp6", &ctx->buf);
    if (rc == -ENOENT) return 0;
    if (rc) return col_fail(ctx, rc, "reading net/snmp6");
    char *cur = ctx->buf.data, *line;
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
