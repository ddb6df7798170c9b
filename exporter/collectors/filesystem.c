/* SPDX-License-Identifier: Apache-2.0 */
/* filesystem collector: statfs of each mount with a deadline, so a hung NFS/FUSE mount
 * cannot hang the scrape (node_exporter filesystem_linux.go, 1.5). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>

#include "collector.h"
#include "log.h"
#include "procfs.h"

/* Mount points whose statfs outlived the timeout. Process-wide on purpose, as node_exporter's
 * stuckMounts: a worker blocked in statfs can outlive any collector instance (reload, free),
 * and must still find the registry to unmark its mount when the call finally returns. */
struct stuck {
    struct stuck *next;
    char mountpoint[];
};
static pthread_mutex_t stuck_mu = PTHREAD_MUTEX_INITIALIZER;
static struct stuck *stuck_list;

static bool stuck_has(const char *mp) {
    for (struct stuck *s = stuck_list; s; s = s->next)
        if (strcmp(s->mountpoint, mp) == 0) return true;
    return false;
}

static void stuck_del(const char *mp) {
    for (struct stuck **pp = &stuck_list; *pp; pp = &(*pp)->next) {
        if (strcmp((*pp)->mountpoint, mp) == 0) {
            struct stuck *s = *pp;
            *pp = s->next;
            free(s);
            LOG_INFO("mount point has recovered, monitoring will resume: %s", mp);
            return;
        }
    }
}

/* One statfs handed to a worker thread. Shared by the worker and the waiting collector;
 * whoever drops the last reference frees it (under stuck_mu). */
struct job {
    pthread_cond_t cv;
    int refs;
    bool done;
    int err;
    struct statfs st;
    char *mountpoint; /* label value, the key of the stuck registry */
    char path[];      /* rootfs-prefixed path to stat */
};

static void job_unref(struct job *j) {
    if (--j->refs == 0) {
        pthread_cond_destroy(&j->cv);
        free(j->mountpoint);
        free(j);
    }
}

/* The statfs the workers call. A test seam, not API: tests/collectors/test_collectors.c
 * declares it extern and swaps in a statfs that hangs, to exercise the stuck-mount path. */
int (*filesystem_statfs)(const char *path, struct statfs *buf) = statfs;

/* One long-lived worker thread runs the statfs calls, so a scrape creates no threads. When
 * a call outlives its deadline the worker is abandoned (detached): it finishes that call
 * (however long it hangs), unmarks the mount, frees itself and exits; the next statfs starts
 * a fresh worker. The last filesystem collector to go stops and joins an idle worker. */
struct worker {
    pthread_cond_t cv;
    pthread_t thread;
    struct job *job; /* posted job, NULL when idle */
    bool abandoned, quit;
};
static struct worker *current; /* under stuck_mu */
/* Two collector sets (a reload overlapping a scrape) share the one worker: their
 * filesystem collections take turns, each bounded by the mount timeout per mount. */
static pthread_mutex_t collect_mu = PTHREAD_MUTEX_INITIALIZER;
static int users; /* filesystem collector instances, under stuck_mu */

static void *worker_main(void *arg) {
    struct worker *w = arg;
    pthread_mutex_lock(&stuck_mu);
    for (;;) {
        while (!w->job && !w->quit)
            pthread_cond_wait(&w->cv, &stuck_mu);
        if (!w->job) break; /* quit: the joiner frees w */
        struct job *j = w->job;
        pthread_mutex_unlock(&stuck_mu);
        struct statfs st;
        int err = filesystem_statfs(j->path, &st) ? errno : 0;
        pthread_mutex_lock(&stuck_mu);
        j->st = st;
        j->err = err;
        j->done = true;
        stuck_del(j->mountpoint); /* it returned: monitor it again from the next scrape */
        pthread_cond_signal(&j->cv);
        job_unref(j);
        w->job = NULL;
        if (w->abandoned) break;
    }
    bool self_free = w->abandoned;
    pthread_mutex_unlock(&stuck_mu);
    if (self_free) {
        pthread_cond_destroy(&w->cv);
        free(w);
    }
    return NULL;
}

/* Returns the idle worker, starting one if needed. Called with stuck_mu held. */
static struct worker *get_worker(int *err) {
    if (current) return current;
    struct worker *w = calloc(1, sizeof(*w));
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    pthread_cond_init(&w->cv, NULL);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 64 * 1024);
    int rc = pthread_create(&w->thread, &attr, worker_main, w);
    pthread_attr_destroy(&attr);
    if (rc) {
        pthread_cond_destroy(&w->cv);
        free(w);
        *err = -rc;
        return NULL;
    }
    return current = w;
}

/* Runs statfs(path) with a deadline. Returns 0 with *out filled, -errno from statfs,
 * -ETIMEDOUT (mount now marked stuck), or -ENOMEM/-EAGAIN when no thread could start. */
static int statfs_deadline(const char *path, const char *mp, double timeout, struct statfs *out) {
    size_t pl = strlen(path) + 1;
    struct job *j = calloc(1, sizeof(*j) + pl);
    if (!j) return -ENOMEM;
    memcpy(j->path, path, pl);
    j->mountpoint = strdup(mp);
    if (!j->mountpoint) {
        free(j);
        return -ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&j->cv, &ca);
    pthread_condattr_destroy(&ca);
    j->refs = 2;
    int rc = 0;
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    double s = (double)dl.tv_sec + dl.tv_nsec / 1e9 + timeout;
    dl.tv_sec = (time_t)s;
    dl.tv_nsec = (long)((s - (double)dl.tv_sec) * 1e9);
    pthread_mutex_lock(&stuck_mu);
    struct worker *w = get_worker(&rc);
    if (!w) {
        j->refs = 1;
        job_unref(j);
        pthread_mutex_unlock(&stuck_mu);
        return rc;
    }
    w->job = j;
    pthread_cond_signal(&w->cv);
    while (!j->done)
        if (pthread_cond_timedwait(&j->cv, &stuck_mu, &dl) == ETIMEDOUT) break;
    if (j->done) {
        rc = j->err ? -j->err : 0;
        *out = j->st;
    } else {
        rc = -ETIMEDOUT;
        w->abandoned = true; /* it exits once its statfs returns */
        pthread_detach(w->thread);
        current = NULL;
        struct stuck *sk = malloc(sizeof(*sk) + strlen(mp) + 1);
        if (sk && !stuck_has(mp)) {
            strcpy(sk->mountpoint, mp);
            sk->next = stuck_list;
            stuck_list = sk;
            sk = NULL;
            LOG_WARN("mount point timed out, it is being labeled as stuck and will not be "
                     "monitored: %s",
                     mp);
        }
        free(sk);
    }
    job_unref(j);
    pthread_mutex_unlock(&stuck_mu);
    return rc;
}

struct fs_state {
    struct col_regex *mp_exclude, *type_exclude;
    double timeout;
};

static int filesystem_init(struct col_ctx *ctx, struct perr *err) {
    struct fs_state *st = calloc(1, sizeof(*st));
    if (!st) return -ENOMEM;
    st->timeout = col_opt_num(ctx->opt, "collector.filesystem.mount-timeout");
    int rc = col_regex_new("collector.filesystem.mount-points-exclude",
                           col_opt_str(ctx->opt, "collector.filesystem.mount-points-exclude"),
                           &st->mp_exclude, err);
    if (!rc)
        rc = col_regex_new("collector.filesystem.fs-types-exclude",
                           col_opt_str(ctx->opt, "collector.filesystem.fs-types-exclude"),
                           &st->type_exclude, err);
    if (rc) {
        col_regex_free(st->mp_exclude);
        free(st);
        return rc;
    }
    ctx->state = st;
    pthread_mutex_lock(&stuck_mu);
    users++;
    pthread_mutex_unlock(&stuck_mu);
    return 0;
}

static void filesystem_fini(struct col_ctx *ctx) {
    struct fs_state *st = ctx->state;
    if (!st) return;
    pthread_mutex_lock(&stuck_mu);
    struct worker *w = --users == 0 ? current : NULL;
    if (w) {
        current = NULL;
        w->quit = true;
        pthread_cond_signal(&w->cv);
    }
    pthread_mutex_unlock(&stuck_mu);
    if (w) { /* current is never busy between scrapes: a busy one would have been abandoned */
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
    col_regex_free(st->mp_exclude);
    col_regex_free(st->type_exclude);
    free(st);
}

/* fstab(5) escapes: the kernel writes space, tab, newline and backslash as \ooo octal.
 * node_exporter only undoes \040 and \011; so do we, to keep label values identical. */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r;) {
        if (strncmp(r, "\\040", 4) == 0)
            *w++ = ' ', r += 4;
        else if (strncmp(r, "\\011", 4) == 0)
            *w++ = '\t', r += 4;
        else
            *w++ = *r++;
    }
    *w = '\0';
}

/* node_exporter's rootfsStripPrefix */
static const char *strip_rootfs(const char *rootfs, const char *mp) {
    if (strcmp(rootfs, "/") == 0) return mp;
    size_t rl = strlen(rootfs);
    if (strncmp(mp, rootfs, rl) == 0) return mp[rl] ? mp + rl : "/";
    return mp;
}

static const char *const gauge_names[6][2] = {
    {"node_filesystem_size_bytes", "Filesystem size in bytes."},
    {"node_filesystem_free_bytes", "Filesystem free space in bytes."},
    {"node_filesystem_avail_bytes", "Filesystem space available to non-root users in bytes."},
    {"node_filesystem_files", "Filesystem total file nodes."},
    {"node_filesystem_files_free", "Filesystem total free file nodes."},
    {"node_filesystem_readonly", "Filesystem read-only status."},
};

static int collect(struct col_ctx *ctx, struct mset *out);

static int filesystem_collect(struct col_ctx *ctx, struct mset *out) {
    pthread_mutex_lock(&collect_mu);
    int rc = collect(ctx, out);
    pthread_mutex_unlock(&collect_mu);
    return rc;
}

static int collect(struct col_ctx *ctx, struct mset *out) {
    struct fs_state *st = ctx->state;
    /* /proc/1/mounts is the host's view when we run in a container with the host's /proc;
     * with hidepid it is missing and /proc/mounts serves. */
    int rc = procfs_read_at(ctx->paths, PROCFS_PROC, "1/mounts", ctx->buf);
    if (rc == -ENOENT || rc == -EACCES)
        rc = procfs_read_at(ctx->paths, PROCFS_PROC, "mounts", ctx->buf);
    if (rc) return col_fail(ctx, rc, "reading mounts");
    const char *rootfs = ctx->paths->rootfs;
    char *cur = ctx->buf->data, *line;
    while ((line = procfs_next_line(&cur))) {
        char *f[7];
        size_t nf = procfs_fields(line, f, 7);
        if (nf == 0) continue;
        if (nf < 4) return col_fail(ctx, -EPROTO, "malformed mount point information: %s", f[0]);
        unescape(f[1]);
        const char *dev = f[0], *mp = strip_rootfs(rootfs, f[1]), *type = f[2];
        if (col_regex_match_opt(st->mp_exclude, mp) || col_regex_match_opt(st->type_exclude, type))
            continue;
        struct statfs sfs;
        int err;
        pthread_mutex_lock(&stuck_mu);
        bool stuck = stuck_has(mp);
        pthread_mutex_unlock(&stuck_mu);
        if (stuck) {
            err = -ETIMEDOUT;
        } else {
            char path[4200];
            err = procfs_path(ctx->paths, PROCFS_ROOT, mp, path, sizeof(path));
            if (!err) err = statfs_deadline(path, mp, st->timeout, &sfs);
            if (err == -ENOMEM) return err;
            if (err && err != -ETIMEDOUT)
                LOG_DEBUG("error on statfs() system call for %s: %s", path, strerror(-err));
        }
        rc = col_add(out, "node_filesystem_device_error",
                     "Whether an error occurred while getting statistics for the given device.",
                     MTYPE_GAUGE, err ? 1 : 0, 3, "device", dev, "mountpoint", mp, "fstype", type);
        if (rc == -EEXIST)
            continue; /* the same mount twice (bind mounts): node_exporter keeps the first */
        if (rc) return rc;
        if (err) continue;
        bool ro = false;
        for (char *o = f[3]; o && *o;) {
            size_t l = strcspn(o, ",");
            if (l == 2 && strncmp(o, "ro", 2) == 0) ro = true;
            o += l + (o[l] ? 1 : 0);
        }
        double bs = (double)sfs.f_bsize;
        double v[6] = {(double)sfs.f_blocks * bs, (double)sfs.f_bfree * bs,
                       (double)sfs.f_bavail * bs, (double)sfs.f_files,
                       (double)sfs.f_ffree,       ro ? 1 : 0};
        for (int i = 0; i < 6; i++)
            if ((rc = col_add(out, gauge_names[i][0], gauge_names[i][1], MTYPE_GAUGE, v[i], 3,
                              "device", dev, "mountpoint", mp, "fstype", type)))
                return rc;
    }
    return 0;
}

const struct collector col_filesystem = {
    .name = "filesystem",
    .default_on = true,
    .help = "Exposes filesystem statistics, such as disk space used",
    .init = filesystem_init,
    .collect = filesystem_collect,
    .fini = filesystem_fini,
};
