/* SPDX-License-Identifier: Apache-2.0 */
/* Collector tests over the fixture trees: golden output per collector, end-to-end, broken
 * files, cgroup v1, flags, and the stuck-mount timeout. Usage: test_collectors CASE. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>

#include "collector.h"
#include "expose.h"
#include "log.h"
#include "procfs.h"
#include "tap.h"

static char fx[2048]; /* $FIXTURES */

/* Builds collectors from "flag=value" strings (plus the fixture paths) and scrapes once. */
static char *scrape_with(const char *const *flags, size_t n, struct collectors **keep) {
    struct col_options *o = col_options_new();
    char buf[4096];
    struct perr err = {0};
    const char *paths[][2] = {{"path.procfs", "rootfs/proc"},
                              {"path.sysfs", "rootfs/sys"},
                              {"path.rootfs", "rootfs"},
                              {"path.udev.data", "rootfs/run/udev/data"},
                              {"collector.textfile.directory", "textfile"}};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        snprintf(buf, sizeof(buf), "%s/%s", fx, paths[i][1]);
        if (col_options_set(o, paths[i][0], buf, &err) != 1) return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        char *f = strdup(flags[i]), *eq = strchr(f, '=');
        if (eq) *eq++ = '\0';
        char val[4096];
        if (eq && strncmp(eq, "$FIXTURES", 9) == 0) {
            snprintf(val, sizeof(val), "%s%s", fx, eq + 9);
            eq = val;
        }
        int rc = col_options_set(o, f, eq, &err);
        free(f);
        if (rc != 1) {
            printf("# flag %s: %s\n", flags[i], err.msg);
            col_options_free(o);
            return NULL;
        }
    }
    struct collectors *c = collectors_new(o, &err);
    col_options_free(o);
    if (!c) {
        printf("# collectors_new: %s\n", err.msg);
        return NULL;
    }
    struct mset *s = mset_new();
    struct sbuf b;
    sbuf_init(&b);
    int rc = collectors_scrape(c, s);
    if (!rc) rc = mset_write_text(s, &b);
    mset_free(s);
    if (keep)
        *keep = c;
    else
        collectors_free(c);
    return rc ? (sbuf_fini(&b), NULL) : sbuf_steal(&b, NULL);
}

static char *scrape_again(struct collectors *c) {
    struct mset *s = mset_new();
    struct sbuf b;
    sbuf_init(&b);
    int rc = collectors_scrape(c, s);
    if (!rc) rc = mset_write_text(s, &b);
    mset_free(s);
    return rc ? (sbuf_fini(&b), NULL) : sbuf_steal(&b, NULL);
}

/* Values that depend on the host or the clock are replaced by X; the fixture path by
 * $FIXTURES, so golden files are stable. */
static const char *const volatile_families[] = {
    "node_scrape_collector_duration_seconds",
    "node_textfile_mtime_seconds",
    "node_filesystem_size_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_files",
    "node_filesystem_files_free",
};

static char *normalise(const char *text) {
    struct sbuf b;
    sbuf_init(&b);
    size_t fl = strlen(fx);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t ll = nl ? (size_t)(nl - p) : strlen(p);
        char line[8192];
        if (ll >= sizeof(line)) ll = sizeof(line) - 1;
        memcpy(line, p, ll);
        line[ll] = '\0';
        p += ll + (nl ? 1 : 0);
        if (line[0] != '#') {
            for (size_t i = 0; i < sizeof(volatile_families) / sizeof(*volatile_families); i++) {
                size_t n = strlen(volatile_families[i]);
                if (strncmp(line, volatile_families[i], n) == 0 &&
                    (line[n] == '{' || line[n] == ' ')) {
                    char *sp = strrchr(line, ' ');
                    strcpy(sp + 1, "X");
                }
            }
        }
        for (char *q = line; *q;) {
            if (fl && strncmp(q, fx, fl) == 0) {
                sbuf_adds(&b, "$FIXTURES");
                q += fl;
            } else {
                sbuf_addc(&b, *q++);
            }
        }
        sbuf_addc(&b, '\n');
    }
    return sbuf_steal(&b, NULL);
}

/* Compares against $FIXTURES/golden/NAME.prom; UPDATE_GOLDEN=1 rewrites it instead. */
static void check_golden(const char *name, const char *got_raw) {
    if (!got_raw) {
        TAP_OK(0, "%s: scrape produced output", name);
        return;
    }
    char *got = normalise(got_raw);
    char path[4096];
    snprintf(path, sizeof(path), "%s/golden/%s.prom", fx, name);
    if (getenv("UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(got, f);
            fclose(f);
        }
        printf("# wrote %s\n", path);
    }
    struct sbuf want;
    sbuf_init(&want);
    int rc = procfs_read(path, &want);
    bool eq = rc == 0 && strcmp(want.data, got) == 0;
    TAP_OK(eq, "%s matches golden/%s.prom", name, name);
    if (!eq) {
        /* print the first differing line to make the failure readable */
        const char *a = rc ? "" : want.data, *g = got;
        while (*a && *g && *a == *g)
            a++, g++;
        while (a > want.data && a[-1] != '\n')
            a--;
        while (g > got && g[-1] != '\n')
            g--;
        printf("#   want: %.*s\n#   got:  %.*s\n", (int)strcspn(a, "\n"), a, (int)strcspn(g, "\n"),
               g);
    }
    sbuf_fini(&want);
    free(got);
}

static bool has_line(const char *text, const char *line) {
    size_t l = strlen(line);
    for (const char *p = text; p && *p;) {
        if (strncmp(p, line, l) == 0 && (p[l] == '\n' || p[l] == '\0')) return true;
        p = strchr(p, '\n');
        if (p) p++;
    }
    return false;
}

static void one_collector(const char *name) {
    char flag[128];
    snprintf(flag, sizeof(flag), "collector.%s", name);
    const char *flags[] = {"collector.disable-defaults", flag};
    struct collectors *c = NULL;
    char *out = scrape_with(flags, 2, &c);
    char ok[256];
    snprintf(ok, sizeof(ok), "node_scrape_collector_success{collector=\"%s\"} 1", name);
    CHECK(out && has_line(out, ok));
    if (strcmp(name, "time") == 0) {
        /* wall clock and zone are the host's; the clocksources come from the fixture */
        CHECK(out && strstr(out, "\nnode_time_seconds ") != NULL);
        CHECK(out && has_line(out, "node_time_clocksource_available_info{clocksource=\"acpi_pm\","
                                   "device=\"0\"} 1"));
        CHECK(out && has_line(out, "node_time_clocksource_current_info{clocksource=\"tsc\","
                                   "device=\"0\"} 1"));
    } else if (strcmp(name, "uname") == 0) {
        CHECK(out && strstr(out, "\nnode_uname_info{domainname=\"") != NULL &&
              strstr(out, ",sysname=\"Linux\",") != NULL);
    } else {
        check_golden(name, out);
    }
    /* a second scrape on the same instance gives the same series (state reuse) */
    char *again = c ? scrape_again(c) : NULL;
    char *n1 = out ? normalise(out) : NULL, *n2 = again ? normalise(again) : NULL;
    if (strcmp(name, "time") != 0)
        TAP_OK(n1 && n2 && strcmp(n1, n2) == 0, "%s: second scrape identical", name);
    free(n1);
    free(n2);
    free(again);
    free(out);
    collectors_free(c);
}

static void specific_checks(void) {
    const char *fs[] = {"collector.disable-defaults", "collector.filesystem"};
    char *out = scrape_with(fs, 2, NULL);
    CHECK(out &&
          has_line(out, "node_filesystem_device_error{device=\"nfs:/export\",fstype=\"nfs4\","
                        "mountpoint=\"/srv/gone\"} 1"));
    CHECK(out && has_line(out, "node_filesystem_readonly{device=\"/dev/vda1\",fstype=\"ext4\","
                               "mountpoint=\"/home\"} 1"));
    CHECK(out && strstr(out, "mountpoint=\"/srv/with space\"") != NULL);
    CHECK(out && strstr(out, "mountpoint=\"/run\"") == NULL); /* Debian mount-point default */
    CHECK(out && strstr(out, "fstype=\"overlay\"") == NULL);  /* fs-type default */
    free(out);

    const char *cpu[] = {"collector.disable-defaults", "collector.cpu"};
    out = scrape_with(cpu, 2, NULL);
    CHECK(out && has_line(out, "node_cpu_seconds_total{cpu=\"1\",mode=\"user\"} 72.52"));
    CHECK(out && has_line(out, "node_cpu_guest_seconds_total{cpu=\"1\",mode=\"nice\"} 0.02"));
    free(out);
    const char *noguest[] = {"collector.disable-defaults", "collector.cpu",
                             "collector.cpu.guest=false"};
    out = scrape_with(noguest, 3, NULL);
    CHECK(out && strstr(out, "node_cpu_guest_seconds_total") == NULL);
    free(out);

    const char *disk[] = {"collector.disable-defaults", "collector.diskstats"};
    out = scrape_with(disk, 2, NULL);
    CHECK(out && strstr(out, "device=\"loop0\"") == NULL &&
          strstr(out, "device=\"vda1\"") == NULL && strstr(out, "device=\"nvme0n1p1\"") == NULL &&
          strstr(out, "device=\"nvme0n1\"") != NULL);
    /* sda has the 11-field pre-4.18 format: no discard series for it */
    CHECK(out && strstr(out, "node_disk_discards_completed_total{device=\"sda\"}") == NULL &&
          has_line(out, "node_disk_io_now{device=\"sda\"} 2"));
    free(out);
    const char *diskin[] = {"collector.disable-defaults", "collector.diskstats",
                            "collector.diskstats.device-include=^vda"};
    out = scrape_with(diskin, 3, NULL);
    CHECK(out && strstr(out, "device=\"vda1\"") != NULL && strstr(out, "device=\"sda\"") == NULL);
    free(out);

    const char *net[] = {"collector.disable-defaults", "collector.netdev",
                         "collector.netdev.device-exclude=^veth"};
    out = scrape_with(net, 3, NULL);
    CHECK(out && strstr(out, "device=\"veth") == NULL && strstr(out, "device=\"lo\"") != NULL);
    free(out);

    const char *tf[] = {"collector.disable-defaults", "collector.textfile"};
    out = scrape_with(tf, 2, NULL);
    CHECK(out && has_line(out, "node_textfile_scrape_error 1")); /* broken + timestamped */
    CHECK(out && strstr(out, "with_timestamp") == NULL && strstr(out, "ignored") == NULL);
    CHECK(out && has_line(out, "app_jobs_total{prio=\"\",queue=\"a\"} 12"));
    free(out);
}

static void check_cgroup(void) {
    const char *v2[] = {"collector.disable-defaults", "collector.cgroup"};
    char *out = scrape_with(v2, 2, NULL);
    CHECK(out && strstr(out, "name=\"webserver.1.x7d2k\"") != NULL);
    CHECK(out && strstr(out, "app.slice") == NULL); /* depth 4 > default max-depth 3 */
    CHECK(out &&
          has_line(out, "container_memory_working_set_bytes{id=\"/system.slice/ssh.service\"} 0"));
    free(out);
    const char *v1[] = {"collector.disable-defaults", "collector.cgroup",
                        "collector.cgroup.path=$FIXTURES/cgroup_v1"};
    out = scrape_with(v1, 3, NULL);
    check_golden("cgroup_v1", out);
    free(out);
    const char *inc[] = {"collector.disable-defaults", "collector.cgroup",
                         "collector.cgroup.include=docker", "collector.cgroup.max-depth=5"};
    out = scrape_with(inc, 4, NULL);
    CHECK(out && strstr(out, "id=\"/\"") == NULL && strstr(out, "ssh.service") == NULL &&
          strstr(out, "docker-") != NULL);
    free(out);
    const char *exc[] = {"collector.disable-defaults", "collector.cgroup",
                         "collector.cgroup.exclude=^/user\\.slice", "collector.cgroup.max-depth=9"};
    out = scrape_with(exc, 4, NULL);
    CHECK(out && strstr(out, "user.slice") == NULL && strstr(out, "ssh.service") != NULL);
    free(out);
    const char *d0[] = {"collector.disable-defaults", "collector.cgroup",
                        "collector.cgroup.max-depth=0"};
    out = scrape_with(d0, 3, NULL);
    CHECK(out && strstr(out, "system.slice") == NULL && strstr(out, "id=\"/\"") != NULL);
    free(out);
}

static void check_broken(void) {
    struct col_options *o = col_options_new();
    struct perr err;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/broken/proc", fx);
    col_options_set(o, "path.procfs", buf, &err);
    snprintf(buf, sizeof(buf), "%s/broken/sys", fx);
    col_options_set(o, "path.sysfs", buf, &err);
    snprintf(buf, sizeof(buf), "%s/broken", fx);
    col_options_set(o, "path.rootfs", buf, &err);
    col_options_set(o, "collector.processes", NULL, &err);
    struct collectors *c = collectors_new(o, &err);
    col_options_free(o);
    CHECK(c != NULL);
    if (!c) return;
    struct mset *s = mset_new();
    CHECK_EQ_INT(collectors_scrape(c, s), 0);
    struct sbuf b;
    sbuf_init(&b);
    mset_write_text(s, &b);
    static const char *const failing[] = {
        "cpu",      "meminfo", "loadavg", "stat",     "diskstats",  "netdev", "netstat",   "vmstat",
        "sockstat", "filefd",  "entropy", "pressure", "filesystem", "cgroup", "processes", "time"};
    for (size_t i = 0; i < sizeof(failing) / sizeof(*failing); i++) {
        char line[128];
        snprintf(line, sizeof(line), "node_scrape_collector_success{collector=\"%s\"} 0",
                 failing[i]);
        TAP_OK(has_line(b.data, line), "broken fixture: %s reports success 0", failing[i]);
    }
    /* the scrape still answers with everything else */
    CHECK(has_line(b.data, "node_scrape_collector_success{collector=\"uname\"} 1"));
    CHECK(has_line(b.data, "node_memory_MemTotal_bytes 2.5276510208e+10"));
    CHECK(strstr(b.data, "node_uname_info{") != NULL);
    sbuf_fini(&b);
    mset_free(s);
    collectors_free(c);
}

static void check_flags(void) {
    struct col_options *o = col_options_new();
    struct perr err = {0};
    CHECK_EQ_INT(col_options_set(o, "collector.cpu", NULL, &err), 1);
    CHECK_EQ_INT(col_options_set(o, "no-collector.cpu", NULL, &err), 1);
    CHECK_EQ_INT(col_options_set(o, "collector.cpu", "false", &err), 1);
    CHECK_EQ_INT(col_options_set(o, "collector.cpu", "maybe", &err), -EINVAL);
    CHECK_EQ_INT(col_options_set(o, "no-collector.cpu", "true", &err), -EINVAL);
    CHECK_EQ_INT(col_options_set(o, "collector.nosuch", NULL, &err), 0);
    CHECK_EQ_INT(col_options_set(o, "web.listen-address", ":9100", &err), 0);
    CHECK_EQ_INT(col_options_set(o, "path.procfs", NULL, &err), -EINVAL);
    CHECK_EQ_INT(col_options_set(o, "collector.filesystem.mount-timeout", "1m30s", &err), 1);
    CHECK_EQ_DBL(col_opt_num(o, "collector.filesystem.mount-timeout"), 90);
    CHECK_EQ_INT(col_options_set(o, "collector.filesystem.mount-timeout", "soon", &err), -EINVAL);
    CHECK_EQ_INT(col_options_set(o, "collector.cgroup.max-depth", "-1", &err), -EINVAL);
    CHECK_EQ_INT(col_options_set(o, "collector.disable-defaults", NULL, &err), 1);
    CHECK_EQ_INT(col_options_set(o, "collector.netdev.device-exclude", "(", &err), 1);
    struct collectors *c = collectors_new(o, &err);
    CHECK(c != NULL); /* netdev is off, so the bad regex is never compiled */
    collectors_free(c);
    CHECK_EQ_INT(col_options_set(o, "collector.netdev", NULL, &err), 1);
    c = collectors_new(o, &err);
    CHECK(c == NULL && strstr(err.msg, "collector.netdev.device-exclude") != NULL);
    collectors_free(c);
    col_options_free(o);
    struct sbuf u;
    sbuf_init(&u);
    CHECK_EQ_INT(col_options_usage(&u), 0);
    CHECK(strstr(u.data, "--[no-]collector.processes               Exposes aggregate process "
                         "statistics from /proc (default: disabled).") != NULL);
    CHECK(strstr(u.data, "--[no-]collector.cpu                     Exposes CPU statistics "
                         "(default: enabled).") != NULL);
    sbuf_fini(&u);
}

/* A family already in the set with another type (a pushed one) fails only its collector. */
static void check_conflict(void) {
    struct col_options *o = col_options_new();
    struct perr err;
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/rootfs/proc", fx);
    col_options_set(o, "path.procfs", buf, &err);
    col_options_set(o, "collector.disable-defaults", NULL, &err);
    col_options_set(o, "collector.cpu", NULL, &err);
    col_options_set(o, "collector.loadavg", NULL, &err);
    struct collectors *c = collectors_new(o, &err);
    col_options_free(o);
    struct mset *s = mset_new();
    struct mfam *f = mset_family(s, "node_cpu_seconds_total", "pushed", MTYPE_GAUGE);
    mfam_add(f, "", NULL, 0, 1);
    f = mset_family(s, "node_scrape_collector_success", "pushed", MTYPE_COUNTER);
    mfam_add(f, "", NULL, 0, 1);
    CHECK_EQ_INT(collectors_scrape(c, s), 0);
    struct sbuf b;
    sbuf_init(&b);
    mset_write_text(s, &b);
    CHECK(has_line(b.data, "node_load1 0.09"));
    /* durations still reported; the taken success family keeps only the pushed sample */
    CHECK(strstr(b.data, "node_scrape_collector_duration_seconds{collector=\"cpu\"}") != NULL);
    CHECK(has_line(b.data, "node_scrape_collector_success 1"));
    CHECK(has_line(b.data, "node_cpu_seconds_total 1"));
    sbuf_fini(&b);
    mset_free(s);
    collectors_free(c);
}

/* ---- stuck mounts ------------------------------------------------------------------------ */

extern int (*filesystem_statfs)(const char *path, struct statfs *buf);
static pthread_mutex_t hang_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hang_cv = PTHREAD_COND_INITIALIZER;
static bool hang_release;
static int hang_calls, hang_returned;

static int hanging_statfs(const char *path, struct statfs *buf) {
    if (strstr(path, "/home")) {
        pthread_mutex_lock(&hang_mu);
        hang_calls++;
        while (!hang_release)
            pthread_cond_wait(&hang_cv, &hang_mu);
        pthread_mutex_unlock(&hang_mu);
    }
    int rc = statfs(path, buf);
    if (strstr(path, "/home")) {
        pthread_mutex_lock(&hang_mu);
        hang_returned++;
        pthread_mutex_unlock(&hang_mu);
    }
    return rc;
}

static void check_stuck(void) {
    filesystem_statfs = hanging_statfs;
    const char *fs[] = {"collector.disable-defaults", "collector.filesystem",
                        "collector.filesystem.mount-timeout=50ms"};
    const char *err1 = "node_filesystem_device_error{device=\"/dev/vda1\",fstype=\"ext4\","
                       "mountpoint=\"/home\"} 1";
    const char *err0 = "node_filesystem_device_error{device=\"/dev/vda1\",fstype=\"ext4\","
                       "mountpoint=\"/home\"} 0";
    struct collectors *c = NULL;
    char *out = scrape_with(fs, 3, &c);
    CHECK(out && has_line(out, err1));
    CHECK(out && has_line(out, "node_filesystem_device_error{device=\"/dev/vda\",fstype=\"ext4\","
                               "mountpoint=\"/\"} 0"));
    CHECK(out && has_line(out, "node_scrape_collector_success{collector=\"filesystem\"} 1"));
    free(out);
    /* stuck: skipped without a new statfs while the first one hangs */
    out = c ? scrape_again(c) : NULL;
    CHECK(out && has_line(out, err1));
    pthread_mutex_lock(&hang_mu);
    CHECK_EQ_INT(hang_calls, 1);
    hang_release = true;
    pthread_cond_broadcast(&hang_cv);
    pthread_mutex_unlock(&hang_mu);
    free(out);
    /* once the hung call returns the mount is monitored again: scrape until it shows up
     * (bounded: 500 tries, 10 ms apart; a loaded machine may take a while to run the
     * released worker) */
    bool back = false;
    for (int i = 0; i < 500 && !back && c; i++) {
        out = scrape_again(c);
        back = out && has_line(out, err0);
        free(out);
        if (!back) usleep(10000);
    }
    CHECK(back);
    collectors_free(c);
    filesystem_statfs = statfs;
}

int main(int argc, char **argv) {
    const char *f = getenv("FIXTURES");
    if (!f || argc < 2) {
        printf("1..0 # SKIP FIXTURES not set or no case given\n");
        return 0;
    }
    snprintf(fx, sizeof(fx), "%s", f);
    log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_LOGFMT);
    const char *what = argv[1];
    if (strcmp(what, "e2e") == 0) {
        const char *flags[] = {"no-collector.time", "no-collector.uname", "collector.processes"};
        char *out = scrape_with(flags, 3, NULL);
        check_golden("e2e", out);
        free(out);
    } else if (strcmp(what, "broken") == 0) {
        check_broken();
    } else if (strcmp(what, "flags") == 0) {
        check_flags();
    } else if (strcmp(what, "stuck") == 0) {
        check_stuck();
    } else if (strcmp(what, "specific") == 0) {
        specific_checks();
        check_conflict();
    } else {
        one_collector(what);
        if (strcmp(what, "cgroup") == 0) check_cgroup();
    }
    return tap_done();
}
