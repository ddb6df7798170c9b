/* SPDX-License-Identifier: Apache-2.0 */
/* processes collector (off by default): process/thread counts per state and PID limits. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "collector.h"
#include "procfs.h"

/* Process states seen in /proc/PID/stat's third field (R S D Z T t X x K W P I). */
struct states {
    unsigned n[128];
};

static bool is_pid(const char *s) {
    if (!*s) return false;
    for (; *s; s++)
        if (*s < '0' || *s > '9') return false;
    return true;
}

/* Reads state and num_threads from a stat file. The command name may hold spaces and
 * parentheses, so fields are counted from the last ')'. Returns 0, -ENOENT/-ESRCH for a
 * process that exited meanwhile, or -EPROTO. */
static int read_stat(const char *path, struct sbuf *b, char *state, uint64_t *threads) {
    int rc = procfs_read_attr(path, b); /* one record (single_open): one read(2) suffices */
    if (rc) return rc;
    char *rp = strrchr(b->data, ')');
    if (!rp) return -EPROTO;
    char *f[19];
    if (procfs_fields(rp + 1, f, 19) < 18) return -EPROTO;
    if (strlen(f[0]) != 1 || (unsigned char)f[0][0] >= 128) return -EPROTO;
    *state = f[0][0];
    if (threads && procfs_parse_u64(f[17], threads)) return -EPROTO;
    return 0;
}

static bool gone(int rc) {
    return rc == -ENOENT || rc == -ESRCH;
}

static int processes_collect(struct col_ctx *ctx, struct mset *out) {
    char dir[4096];
    int rc = procfs_path(ctx->paths, PROCFS_PROC, "", dir, sizeof(dir));
    if (rc) return rc;
    DIR *d = opendir(dir);
    if (!d) return col_fail(ctx, -errno, "unable to list all processes");
    struct states ps = {{0}}, ts = {{0}};
    uint64_t pids = 0, threads = 0;
    struct dirent *e;
    char path[4400];
    while ((e = readdir(d))) {
        if (!is_pid(e->d_name)) continue;
        snprintf(path, sizeof(path), "%s/%s/stat", dir, e->d_name);
        char st;
        uint64_t nt;
        rc = read_stat(path, ctx->buf, &st, &nt);
        if (gone(rc)) continue;
        if (rc) {
            col_fail(ctx, rc, "error reading stat for pid %s", e->d_name); /* before closedir */
            closedir(d);
            return rc;
        }
        pids++;
        ps.n[(unsigned char)st]++;
        threads += nt;
        snprintf(path, sizeof(path), "%s/%s/task", dir, e->d_name);
        DIR *td = opendir(path);
        if (!td) continue; /* exited meanwhile */
        struct dirent *te;
        while ((te = readdir(td))) {
            if (!is_pid(te->d_name)) continue;
            if (strcmp(te->d_name, e->d_name) == 0) {
                ts.n[(unsigned char)st]++; /* the main thread shares the process's state */
                continue;
            }
            char tp[4800], tst;
            snprintf(tp, sizeof(tp), "%s/%s/stat", path, te->d_name);
            rc = read_stat(tp, ctx->buf, &tst, NULL);
            if (gone(rc)) continue;
            if (rc) {
                col_fail(ctx, rc, "error reading stat for pid %s thread %s", e->d_name,
                         te->d_name); /* while the dirents are still valid */
                closedir(td);
                closedir(d);
                return rc;
            }
            ts.n[(unsigned char)tst]++;
        }
        closedir(td);
    }
    closedir(d);
    if ((rc = col_add(out, "node_processes_threads", "Allocated threads in system", MTYPE_GAUGE,
                      (double)threads, 0)))
        return rc;
    uint64_t max_threads, pid_max;
    if ((rc = procfs_path(ctx->paths, PROCFS_PROC, "sys/kernel/threads-max", path, sizeof(path))) ||
        (rc = procfs_read_u64(path, &max_threads)))
        return col_fail(ctx, rc, "unable to retrieve limit number of threads");
    if ((rc = col_add(out, "node_processes_max_threads", "Limit of threads in the system",
                      MTYPE_GAUGE, (double)max_threads, 0)))
        return rc;
    for (int c = 0; c < 128; c++) {
        char s[2] = {(char)c, 0};
        if (ps.n[c] &&
            (rc = col_add(out, "node_processes_state", "Number of processes in each state.",
                          MTYPE_GAUGE, ps.n[c], 1, "state", s)))
            return rc;
        if (ts.n[c] &&
            (rc = col_add(out, "node_processes_threads_state", "Number of threads in each state.",
                          MTYPE_GAUGE, ts.n[c], 1, "thread_state", s)))
            return rc;
    }
    if ((rc = procfs_path(ctx->paths, PROCFS_PROC, "sys/kernel/pid_max", path, sizeof(path))) ||
        (rc = procfs_read_u64(path, &pid_max)))
        return col_fail(ctx, rc, "unable to retrieve limit number of maximum pids");
    if ((rc =
             col_add(out, "node_processes_pids", "Number of PIDs", MTYPE_GAUGE, (double)pids, 0)) ||
        (rc = col_add(out, "node_processes_max_processes", "Number of max PIDs limit", MTYPE_GAUGE,
                      (double)pid_max, 0)))
        return rc;
    return 0;
}

const struct collector col_processes = {
    .name = "processes",
    .default_on = false,
    .help = "Exposes aggregate process statistics from /proc",
    .collect = processes_collect,
};
