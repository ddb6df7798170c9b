/* SPDX-License-Identifier: Apache-2.0 */
/* filefd collector: allocated and maximum file handles from /proc/sys/fs/file-nr. */
#include <errno.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

static int filefd_collect(struct col_ctx *ctx, struct mset *out) {
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "sys/fs/file-nr", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading sys/fs/file-nr");
    /* one line, three tab-separated values; the middle one is always 0 since Linux 2.6 */
    char *f[4];
    double alloc, max;
    if (procfs_fields(ctx->buf->data, f, 4) < 3)
        return col_fail(ctx, -EPROTO, "unexpected number of file stats in file-nr");
    char *nl = f[2] + strcspn(f[2], "\n");
    *nl = '\0';
    if (procfs_parse_double(f[0], &alloc) || procfs_parse_double(f[2], &max))
        return col_fail(ctx, -EPROTO, "invalid value in file-nr");
    if ((rc = col_add(out, "node_filefd_allocated", "File descriptor statistics: allocated.",
                      MTYPE_GAUGE, alloc, 0)) ||
        (rc = col_add(out, "node_filefd_maximum", "File descriptor statistics: maximum.",
                      MTYPE_GAUGE, max, 0)))
        return rc;
    return 0;
}

const struct collector col_filefd = {
    .name = "filefd",
    .default_on = true,
    .help = "Exposes file descriptor statistics from /proc/sys/fs/file-nr",
    .collect = filefd_collect,
};
