/* SPDX-License-Identifier: Apache-2.0 */
/* entropy collector: available bits and pool size from /proc/sys/kernel/random. */
#include <errno.h>

#include "collector.h"
#include "procfs.h"

static int entropy_collect(struct col_ctx *ctx, struct mset *out) {
    static const struct {
        const char *file, *name, *help;
    } f[2] = {
        {"sys/kernel/random/entropy_avail", "node_entropy_available_bits",
         "Bits of available entropy."},
        {"sys/kernel/random/poolsize", "node_entropy_pool_size_bits", "Bits of entropy pool."},
    };
    for (int i = 0; i < 2; i++) {
        char path[4096];
        uint64_t v;
        int rc = procfs_path(ctx->paths, PROCFS_PROC, f[i].file, path, sizeof(path));
        if (!rc) rc = procfs_read_u64(path, &v);
        if (rc) return col_fail(ctx, rc, "couldn't get %s", f[i].file);
        if ((rc = col_add(out, f[i].name, f[i].help, MTYPE_GAUGE, (double)v, 0))) return rc;
    }
    return 0;
}

const struct collector col_entropy = {
    .name = "entropy",
    .default_on = true,
    .help = "Exposes available entropy",
    .collect = entropy_collect,
};
