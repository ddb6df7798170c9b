/* SPDX-License-Identifier: Apache-2.0 */
/* cgroup collector: per-cgroup CPU, throttling, memory, I/O, pids and PSI for cgroup v1, v2
 * and hybrid hosts, under cAdvisor's container_* names with id (and name for Docker). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collector.h"
#include "log.h"
#include "procfs.h"

#define USER_HZ 100.0
/* cAdvisor's specMemoryValue: a v1 "unlimited" limit is a page-rounded LLONG_MAX; anything
 * above 2^62 means no limit and is exported as 0. */
#define MEM_UNLIMITED 4611686018427387904.0
#define MAX_WALK 100000 /* hard bound on cgroups visited per scrape */
#define NAME_CACHE_MAX 1024

enum { CG_V1, CG_V2 };

/* A v1 controller hierarchy, or (v2) the unified one: which reads apply there. */
enum { R_CPUACCT = 1, R_CPU = 2, R_MEMORY = 4, R_BLKIO = 8, R_PIDS = 16, R_PSI = 32, R_V2 = 64 };

struct hier {
    char root[4096];
    unsigned reads;
};

struct devname {
    struct devname *next;
    char majmin[24];
    char name[64];
};

struct cname {
    struct cname *next;
    char id[65];
    char name[256];
};

struct cg_state {
    char *path; /* the cgroup filesystem root */
    unsigned max_depth;
    struct col_regex *include, *exclude;
    struct devname *devs;
    struct cname *names;
    size_t nnames;
    size_t visited;
};

static int cgroup_init(struct col_ctx *ctx, struct perr *err) {
    struct cg_state *st = calloc(1, sizeof(*st));
    if (!st) return -ENOMEM;
    const char *p = col_opt_str(ctx->opt, "collector.cgroup.path");
    char def[4096];
    if (!p || !*p) {
        if (procfs_path(ctx->paths, PROCFS_SYS, "fs/cgroup", def, sizeof(def))) {
            free(st);
            return perr_set(err, 0, 0, "--path.sysfs is too long");
        }
        p = def;
    }
    st->path = strdup(p);
    st->max_depth = (unsigned)col_opt_num(ctx->opt, "collector.cgroup.max-depth");
    int rc = st->path ? 0 : -ENOMEM;
    if (!rc)
        rc = col_regex_new("collector.cgroup.include",
                           col_opt_str(ctx->opt, "collector.cgroup.include"), &st->include, err);
    if (!rc)
        rc = col_regex_new("collector.cgroup.exclude",
                           col_opt_str(ctx->opt, "collector.cgroup.exclude"), &st->exclude, err);
    ctx->state = st;
    return rc;
}

static void cgroup_fini(struct col_ctx *ctx) {
    struct cg_state *st = ctx->state;
    if (!st) return;
    free(st->path);
    col_regex_free(st->include);
    col_regex_free(st->exclude);
    while (st->devs) {
        struct devname *d = st->devs;
        st->devs = d->next;
        free(d);
    }
    while (st->names) {
        struct cname *n = st->names;
        st->names = n->next;
        free(n);
    }
    free(st);
}

/* ---- labels --------------------------------------------------------------------------- */

/* Finds a 64-hex Docker container id as a path component: "/docker/<id>" (cgroupfs driver)
 * or "docker-<id>.scope" (systemd driver). Copies it to id[65]. */
static bool docker_id(const char *cg, char *id) {
    for (const char *p = cg; *p; p++) {
        if (p != cg && p[-1] != '/' && p[-1] != '-') continue;
        size_t n = 0;
        while (n < 65 && ((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f')))
            n++;
        if (n == 64 && (p[64] == '\0' || p[64] == '/' || p[64] == '.')) {
            memcpy(id, p, 64);
            id[64] = '\0';
            return true;
        }
    }
    return false;
}

/* The container's name as cAdvisor's Docker handler reports it (Docker's name without the
 * leading '/'), read from <rootfs>/var/lib/docker/containers/<id>/config.v2.json; the id when
 * that file is not readable (rootless, other runtimes). Cached by id. */
static const char *container_name(struct col_ctx *ctx, struct cg_state *st, const char *id) {
    for (struct cname *n = st->names; n; n = n->next)
        if (strcmp(n->id, id) == 0) return n->name;
    if (st->nnames >= NAME_CACHE_MAX) {
        while (st->names) {
            struct cname *n = st->names;
            st->names = n->next;
            free(n);
        }
        st->nnames = 0;
    }
    struct cname *n = calloc(1, sizeof(*n));
    if (!n) return id;
    strcpy(n->id, id);
    strcpy(n->name, id);
    char rel[256];
    snprintf(rel, sizeof(rel), "var/lib/docker/containers/%s/config.v2.json", id);
    struct sbuf b;
    sbuf_init(&b);
    if (procfs_read_at(ctx->paths, PROCFS_ROOT, rel, &b) == 0) {
        const char *k = strstr(b.data, "\"Name\":\"");
        if (k) {
            k += 8;
            if (*k == '/') k++;
            size_t l = strcspn(k, "\"\\");
            if (l > 0 && l < sizeof(n->name)) {
                memcpy(n->name, k, l);
                n->name[l] = '\0';
            }
        }
    }
    sbuf_fini(&b);
    n->next = st->names;
    st->names = n;
    st->nnames++;
    return n->name;
}

/* "8:0" → "/dev/sda" via <sysfs>/dev/block/8:0/uevent, cached; "8:0" if unknown. */
static const char *device_name(struct col_ctx *ctx, struct cg_state *st, const char *majmin) {
    for (struct devname *d = st->devs; d; d = d->next)
        if (strcmp(d->majmin, majmin) == 0) return d->name;
    struct devname *d = calloc(1, sizeof(*d));
    if (!d) return majmin;
    snprintf(d->majmin, sizeof(d->majmin), "%s", majmin);
    snprintf(d->name, sizeof(d->name), "%s", majmin);
    char rel[128];
    snprintf(rel, sizeof(rel), "dev/block/%s/uevent", majmin);
    struct sbuf b;
    sbuf_init(&b);
    if (procfs_read_at(ctx->paths, PROCFS_SYS, rel, &b) == 0) {
        const char *k = strstr(b.data, "DEVNAME=");
        if (k) {
            k += 8;
            size_t l = strcspn(k, "\n");
            if (l && l + 6 < sizeof(d->name))
                snprintf(d->name, sizeof(d->name), "/dev/%.*s", (int)l, k);
        }
    }
    sbuf_fini(&b);
    d->next = st->devs;
    st->devs = d;
    return d->name;
}

struct cg {
    struct col_ctx *ctx;
    struct cg_state *st;
    struct mset *out;
    const char *dir; /* absolute directory, for messages */
    int dfd;         /* the directory, open: files are opened relative to it */
    const char *id;  /* label: path below the hierarchy root, "/" for the root */
    const char *name;
    int missing; /* files expected but absent in a non-root cgroup */
};

static int emit(struct cg *c, const char *metric, const char *help, enum mtype t, double v,
                const char *k1, const char *v1) {
    struct re_label l[3] = {{"id", c->id}};
    size_t n = 1;
    if (c->name) l[n++] = (struct re_label){"name", c->name};
    if (k1) l[n++] = (struct re_label){k1, v1};
    int rc;
    struct mfam *f = col_family(c->out, metric, help, t, &rc);
    if (!f) return rc;
    rc = mfam_add(f, "", l, n, v);
    return rc == -EEXIST ? 0 : rc;
}

/* Reads <dir>/<file> into the scratch buffer. 1 = read, 0 = absent (normal: the root cgroup
 * and older kernels lack several files), <0 = error. */
static int rd(struct cg *c, const char *file) {
    int rc = procfs_read_attr_at(c->dfd, file, c->ctx->buf);
    if (rc == -ENOENT || rc == -ENODEV || rc == -EOPNOTSUPP) return 0;
    return rc ? rc : 1;
}

/* Looks up "key value" in a flat-keyed file (memory.stat, cpu.stat, cpuacct.stat). */
static bool kv(const char *text, const char *key, double *v) {
    size_t kl = strlen(key);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, key, kl) == 0 && p[kl] == ' ') {
            char *end;
            *v = strtod(p + kl + 1, &end);
            return end != p + kl + 1;
        }
        p = strchr(p, '\n');
        if (p) p++;
    }
    return false;
}

static int rd_number(struct cg *c, const char *file, double *v, bool *max) {
    int rc = rd(c, file);
    if (rc <= 0) return rc;
    char *s = c->ctx->buf->data;
    s[strcspn(s, "\n")] = '\0';
    if (max) *max = strcmp(s, "max") == 0;
    if (max && *max) return 1;
    return procfs_parse_double(s, v) ? col_fail(c->ctx, -EPROTO, "malformed %s/%s", c->dir, file)
                                     : 1;
}

#define H_USAGE "Cumulative cpu time consumed in seconds."
#define H_USER "Cumulative user cpu time consumed in seconds."
#define H_SYSTEM "Cumulative system cpu time consumed in seconds."
#define H_PERIODS "Number of elapsed enforcement period intervals."
#define H_THR_PERIODS "Number of throttled period intervals."
#define H_THR_SECONDS "Total time duration the container has been throttled."

/* Conversions follow runc/cAdvisor step by step (ticks or µs to ns, then ns / 1e9) so the
 * doubles come out bit-identical to cAdvisor's. */
static int cpu_v1(struct cg *c, unsigned reads) {
    int rc;
    double v;
    if (reads & R_CPUACCT) {
        if ((rc = rd_number(c, "cpuacct.usage", &v, NULL)) < 0) return rc;
        if (rc && (rc = emit(c, "container_cpu_usage_seconds_total", H_USAGE, MTYPE_COUNTER,
                             v / 1e9, "cpu", "total")))
            return rc;
        if ((rc = rd(c, "cpuacct.stat")) < 0) return rc;
        if (rc) {
            double u, s;
            if (!kv(c->ctx->buf->data, "user", &u) || !kv(c->ctx->buf->data, "system", &s))
                return col_fail(c->ctx, -EPROTO, "malformed %s/cpuacct.stat", c->dir);
            if ((rc = emit(c, "container_cpu_user_seconds_total", H_USER, MTYPE_COUNTER,
                           u * (1e9 / USER_HZ) / 1e9, NULL, NULL)) ||
                (rc = emit(c, "container_cpu_system_seconds_total", H_SYSTEM, MTYPE_COUNTER,
                           s * (1e9 / USER_HZ) / 1e9, NULL, NULL)))
                return rc;
        }
    }
    if (reads & R_CPU) {
        /* cAdvisor exports the CFS counters only for a cgroup with a quota */
        if ((rc = rd_number(c, "cpu.cfs_quota_us", &v, NULL)) <= 0 || v < 0) return rc < 0 ? rc : 0;
        if ((rc = rd(c, "cpu.stat")) <= 0) return rc;
        double per, thr, ns;
        if (!kv(c->ctx->buf->data, "nr_periods", &per) ||
            !kv(c->ctx->buf->data, "nr_throttled", &thr) ||
            !kv(c->ctx->buf->data, "throttled_time", &ns))
            return col_fail(c->ctx, -EPROTO, "malformed %s/cpu.stat", c->dir);
        if ((rc = emit(c, "container_cpu_cfs_periods_total", H_PERIODS, MTYPE_COUNTER, per, NULL,
                       NULL)) ||
            (rc = emit(c, "container_cpu_cfs_throttled_periods_total", H_THR_PERIODS, MTYPE_COUNTER,
                       thr, NULL, NULL)) ||
            (rc = emit(c, "container_cpu_cfs_throttled_seconds_total", H_THR_SECONDS, MTYPE_COUNTER,
                       ns / 1e9, NULL, NULL)))
            return rc;
    }
    return 0;
}

static int cpu_v2(struct cg *c) {
    int rc = rd(c, "cpu.stat");
    if (rc <= 0) return rc;
    double u, us, sy, per, thr, tus;
    const char *t = c->ctx->buf->data;
    if (!kv(t, "usage_usec", &u) || !kv(t, "user_usec", &us) || !kv(t, "system_usec", &sy))
        return col_fail(c->ctx, -EPROTO, "malformed %s/cpu.stat", c->dir);
    /* the throttling keys exist only with the cpu controller enabled for this cgroup */
    bool has_thr =
        kv(t, "nr_periods", &per) && kv(t, "nr_throttled", &thr) && kv(t, "throttled_usec", &tus);
    if ((rc = emit(c, "container_cpu_usage_seconds_total", H_USAGE, MTYPE_COUNTER, u * 1000 / 1e9,
                   "cpu", "total")) ||
        (rc = emit(c, "container_cpu_user_seconds_total", H_USER, MTYPE_COUNTER, us * 1000 / 1e9,
                   NULL, NULL)) ||
        (rc = emit(c, "container_cpu_system_seconds_total", H_SYSTEM, MTYPE_COUNTER,
                   sy * 1000 / 1e9, NULL, NULL)))
        return rc;
    if (!has_thr) return 0;
    /* cpu.max "max 100000" means no quota: cAdvisor then leaves the CFS counters out */
    if ((rc = rd(c, "cpu.max")) <= 0 || strncmp(c->ctx->buf->data, "max", 3) == 0)
        return rc < 0 ? rc : 0;
    if ((rc = emit(c, "container_cpu_cfs_periods_total", H_PERIODS, MTYPE_COUNTER, per, NULL,
                   NULL)) ||
        (rc = emit(c, "container_cpu_cfs_throttled_periods_total", H_THR_PERIODS, MTYPE_COUNTER,
                   thr, NULL, NULL)) ||
        (rc = emit(c, "container_cpu_cfs_throttled_seconds_total", H_THR_SECONDS, MTYPE_COUNTER,
                   tus * 1000 / 1e9, NULL, NULL)))
        return rc;
    return 0;
}

/* Memory as cAdvisor's libcontainer handler computes it: working set = usage minus inactive
 * file pages (never below 0); v1 reads the hierarchical total_* keys, v2 anon/file. */
static int memory(struct cg *c, bool v2) {
    double usage, limit = 0, rss, cache, inactive;
    bool unlimited = false;
    int rc = rd_number(c, v2 ? "memory.current" : "memory.usage_in_bytes", &usage, NULL);
    if (rc <= 0) return rc;
    if ((rc = rd_number(c, v2 ? "memory.max" : "memory.limit_in_bytes", &limit, &unlimited)) < 0)
        return rc;
    bool has_limit = rc > 0;
    if ((rc = rd(c, "memory.stat")) < 0) return rc;
    if (rc == 0) return col_fail(c->ctx, -EPROTO, "%s has no memory.stat", c->dir);
    const char *t = c->ctx->buf->data;
    if (!kv(t, v2 ? "anon" : "total_rss", &rss) || !kv(t, v2 ? "file" : "total_cache", &cache) ||
        !kv(t, v2 ? "inactive_file" : "total_inactive_file", &inactive))
        return col_fail(c->ctx, -EPROTO, "malformed %s/memory.stat", c->dir);
    double ws = usage > inactive ? usage - inactive : 0;
    if ((rc = emit(c, "container_memory_usage_bytes",
                   "Current memory usage in bytes, including all memory regardless of when it was "
                   "accessed",
                   MTYPE_GAUGE, usage, NULL, NULL)) ||
        (rc = emit(c, "container_memory_working_set_bytes", "Current working set in bytes.",
                   MTYPE_GAUGE, ws, NULL, NULL)) ||
        (rc = emit(c, "container_memory_rss", "Size of RSS in bytes.", MTYPE_GAUGE, rss, NULL,
                   NULL)) ||
        (rc = emit(c, "container_memory_cache", "Number of bytes of page cache memory.",
                   MTYPE_GAUGE, cache, NULL, NULL)))
        return rc;
    if (has_limit)
        rc = emit(c, "container_spec_memory_limit_bytes", "Memory limit for the container.",
                  MTYPE_GAUGE, unlimited || limit > MEM_UNLIMITED ? 0 : limit, NULL, NULL);
    return rc;
}

#define H_RB "Cumulative count of bytes read"
#define H_WB "Cumulative count of bytes written"
#define H_RO "Cumulative count of reads completed"
#define H_WO "Cumulative count of writes completed"

static int io_emit(struct cg *c, const char *majmin, int which, double v) {
    static const char *const m[4][2] = {{"container_fs_reads_bytes_total", H_RB},
                                        {"container_fs_writes_bytes_total", H_WB},
                                        {"container_fs_reads_total", H_RO},
                                        {"container_fs_writes_total", H_WO}};
    return emit(c, m[which][0], m[which][1], MTYPE_COUNTER, v, "device",
                device_name(c->ctx, c->st, majmin));
}

/* v1 blkio: "8:0 Read 123" lines; the throttle files count every I/O whatever the scheduler
 * (the CFQ/BFQ ones only under that scheduler), as runc falls back to them. */
static int io_v1(struct cg *c) {
    static const char *const files[2][2] = {
        {"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"},
        {"blkio.throttle.io_serviced_recursive", "blkio.throttle.io_serviced"}};
    for (int k = 0; k < 2; k++) {
        int rc = rd(c, files[k][0]);
        if (rc == 0) rc = rd(c, files[k][1]);
        if (rc <= 0) return rc;
        char *cur = c->ctx->buf->data, *line;
        while ((line = procfs_next_line(&cur))) {
            char *f[4];
            size_t nf = procfs_fields(line, f, 4);
            if (nf == 2 && strcmp(f[0], "Total") == 0) continue;
            if (nf != 3) return col_fail(c->ctx, -EPROTO, "malformed %s/%s", c->dir, files[k][0]);
            int dir = strcmp(f[1], "Read") == 0 ? 0 : strcmp(f[1], "Write") == 0 ? 1 : -1;
            if (dir < 0) continue; /* Sync, Async, Discard, Total */
            double v;
            if (procfs_parse_double(f[2], &v))
                return col_fail(c->ctx, -EPROTO, "malformed %s/%s", c->dir, files[k][0]);
            if ((rc = io_emit(c, f[0], dir + 2 * k, v))) return rc;
        }
    }
    return 0;
}

/* v2 io.stat: "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" */
static int io_v2(struct cg *c) {
    int rc = rd(c, "io.stat");
    if (rc <= 0) return rc;
    char *cur = c->ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[16];
        size_t nf = procfs_fields(line, f, 16);
        if (nf == 0) continue;
        static const char *const keys[4] = {"rbytes=", "wbytes=", "rios=", "wios="};
        for (size_t i = 1; i < nf; i++) {
            for (int k = 0; k < 4; k++) {
                size_t kl = strlen(keys[k]);
                if (strncmp(f[i], keys[k], kl) != 0) continue;
                double v;
                if (procfs_parse_double(f[i] + kl, &v))
                    return col_fail(c->ctx, -EPROTO, "malformed %s/io.stat", c->dir);
                if ((rc = io_emit(c, f[0], k, v))) return rc;
            }
        }
    }
    return 0;
}

static int pids(struct cg *c) {
    double cur, max = 0;
    bool unlimited = false;
    int rc = rd_number(c, "pids.current", &cur, NULL);
    if (rc <= 0) return rc;
    if ((rc = emit(c, "container_threads", "Number of threads running inside the container",
                   MTYPE_GAUGE, cur, NULL, NULL)))
        return rc;
    if ((rc = rd_number(c, "pids.max", &max, &unlimited)) <= 0) return rc;
    return emit(c, "container_threads_max",
                "Maximum number of threads allowed inside the container, infinity if value is "
                "zero",
                MTYPE_GAUGE, unlimited ? 0 : max, NULL, NULL);
}

static int psi(struct cg *c) {
    static const char *const res[3][5] = {
        {"cpu.pressure", "container_pressure_cpu_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to CPU congestion.",
         "container_pressure_cpu_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to CPU "
         "congestion."},
        {"memory.pressure", "container_pressure_memory_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to memory congestion.",
         "container_pressure_memory_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to memory "
         "congestion."},
        {"io.pressure", "container_pressure_io_waiting_seconds_total",
         "Total time duration tasks in the container have waited due to IO congestion.",
         "container_pressure_io_stalled_seconds_total",
         "Total time duration no tasks in the container could make progress due to IO "
         "congestion."},
    };
    for (int i = 0; i < 3; i++) {
        int rc = rd(c, res[i][0]);
        if (rc < 0) return rc;
        if (rc == 0) continue;
        double some = 0, full = 0;
        bool has_full;
        if (procfs_parse_psi(c->ctx->buf->data, &some, &full, &has_full))
            return col_fail(c->ctx, -EPROTO, "malformed %s/%s", c->dir, res[i][0]);
        if ((rc = emit(c, res[i][1], res[i][2], MTYPE_COUNTER, some / 1e6, NULL, NULL))) return rc;
        if (has_full && (rc = emit(c, res[i][3], res[i][4], MTYPE_COUNTER, full / 1e6, NULL, NULL)))
            return rc;
    }
    return 0;
}

static int read_cgroup(struct cg *c, unsigned reads) {
    int rc = 0;
    if (reads & R_V2) {
        if (!rc) rc = cpu_v2(c);
        if (!rc) rc = memory(c, true);
        if (!rc) rc = io_v2(c);
        if (!rc) rc = pids(c);
    } else {
        if (reads & (R_CPU | R_CPUACCT)) rc = cpu_v1(c, reads);
        if (!rc && (reads & R_MEMORY)) rc = memory(c, false);
        if (!rc && (reads & R_BLKIO)) rc = io_v1(c);
        if (!rc && (reads & R_PIDS)) rc = pids(c);
    }
    if (!rc && (reads & R_PSI)) rc = psi(c);
    return rc;
}

/* Depth-first walk. `rel` is the id ("" at the root, printed "/"). An excluded cgroup is
 * skipped with its subtree; one the include pattern misses is not exported but its
 * children are still visited (so "docker" can select /system.slice/docker-<id>.scope). */
static int walk(struct col_ctx *ctx, struct cg_state *st, struct mset *out, const struct hier *h,
                char *rel, size_t rl, unsigned depth) {
    if (++st->visited > MAX_WALK) return col_fail(ctx, -E2BIG, "more than %d cgroups", MAX_WALK);
    const char *id = rl ? rel : "/";
    if (col_regex_match_opt(st->exclude, id)) return 0;
    char dir[8192];
    snprintf(dir, sizeof(dir), "%s%s", h->root, rel);
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) return depth == 0 ? col_fail(ctx, -errno, "opening %s", dir) : 0; /* vanished */
    if (!st->include || col_regex_match(st->include, id)) {
        char cid[65];
        struct cg c = {.ctx = ctx, .st = st, .out = out, .dir = dir, .dfd = dfd, .id = id};
        if (docker_id(id, cid)) c.name = container_name(ctx, st, cid);
        int rc = read_cgroup(&c, h->reads);
        if (rc) {
            close(dfd);
            return rc;
        }
    }
    if (depth >= st->max_depth) {
        close(dfd);
        return 0;
    }
    DIR *d = fdopendir(dfd); /* takes dfd */
    if (!d) {
        close(dfd);
        return 0;
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (e->d_name[0] == '.' || (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN)) continue;
        size_t nl = strlen(e->d_name);
        if (rl + 1 + nl >= 4096) continue;
        if (e->d_type == DT_UNKNOWN) {
            char p[8192 + 256];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            DIR *t = opendir(p);
            if (!t) continue;
            closedir(t);
        }
        rel[rl] = '/';
        memcpy(rel + rl + 1, e->d_name, nl + 1);
        rc = walk(ctx, st, out, h, rel, rl + 1 + nl, depth + 1);
        rel[rl] = '\0';
    }
    closedir(d);
    return rc;
}

static bool exists(const char *dir, const char *file) {
    char p[4400];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    FILE *f = fopen(p, "r");
    if (f) fclose(f);
    return f != NULL;
}

static int cgroup_collect(struct col_ctx *ctx, struct mset *out) {
    struct cg_state *st = ctx->state;
    struct hier h[6] = {0};
    size_t nh = 0;
    st->visited = 0;
    if (exists(st->path, "cgroup.controllers")) {
        /* pure v2 (Docker hosts with systemd >= 247 and most current distributions) */
        snprintf(h[0].root, sizeof(h[0].root), "%s", st->path);
        h[0].reads = R_V2 | R_PSI;
        nh = 1;
    } else {
        /* v1 or hybrid: one hierarchy per controller; cpu and cpuacct are often one mount
         * reachable under both names. */
        static const struct {
            const char *dir, *probe;
            unsigned reads;
        } v1[] = {{"cpuacct", "cpuacct.usage", R_CPUACCT},
                  {"cpu", "cpu.cfs_quota_us", R_CPU},
                  {"memory", "memory.usage_in_bytes", R_MEMORY},
                  {"blkio", "blkio.throttle.io_serviced", R_BLKIO},
                  {"pids", "cgroup.procs", R_PIDS}};
        for (size_t i = 0; i < sizeof(v1) / sizeof(v1[0]); i++) {
            snprintf(h[nh].root, sizeof(h[nh].root), "%s/%s", st->path, v1[i].dir);
            if (exists(h[nh].root, v1[i].probe)) h[nh++].reads = v1[i].reads;
        }
        /* hybrid: the unified hierarchy carries PSI even when no controller is on it */
        snprintf(h[nh].root, sizeof(h[nh].root), "%s/unified", st->path);
        if (exists(h[nh].root, "cgroup.controllers")) h[nh++].reads = R_PSI;
    }
    if (nh == 0) return col_fail(ctx, -ENODATA, "no cgroup hierarchy under %s", st->path);
    char rel[4096] = "";
    for (size_t i = 0; i < nh; i++) {
        int rc = walk(ctx, st, out, &h[i], rel, 0, 0);
        if (rc) return rc;
    }
    return 0;
}

/* On by default: promlet exists to drive container scaling on a Docker host (DESIGN.md), where
 * per-container CPU, throttling and memory are the signals the rules need, and running
 * cAdvisor beside it is what promlet replaces. The walk is bounded (max-depth 3 reaches
 * /system.slice/docker-<id>.scope and /docker/<id>, not per-user session trees; MAX_WALK caps
 * the count), so a host without containers pays for a few dozen directories. */
const struct collector col_cgroup = {
    .name = "cgroup",
    .default_on = true,
    .help = "Exposes per-cgroup CPU, memory, I/O, pids and PSI as cAdvisor's container_* metrics",
    .init = cgroup_init,
    .collect = cgroup_collect,
    .fini = cgroup_fini,
};
