/* SPDX-License-Identifier: Apache-2.0 */
/* uname collector: node_uname_info from uname(2), as node_exporter's uname_linux.go. */
#include <errno.h>
#include <sys/utsname.h>

#include "collector.h"

static int uname_collect(struct col_ctx *ctx, struct mset *out) {
    struct utsname u;
    if (uname(&u)) return col_fail(ctx, -errno, "uname");
    return col_add(out, "node_uname_info",
                   "Labeled system information as provided by the uname system call.", MTYPE_GAUGE,
                   1, 6, "sysname", u.sysname, "release", u.release, "version", u.version,
                   "machine", u.machine, "nodename", u.nodename, "domainname", u.domainname);
}

const struct collector col_uname = {
    .name = "uname",
    .default_on = true,
    .help = "Exposes system information as provided by the uname system call",
    .collect = uname_collect,
};
