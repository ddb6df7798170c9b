/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the collectors' file helpers and a mutation run of the textfile parser. */
#include "procfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "collector.h"
#include "expose.h"
#include "log.h"
#include "tap.h"

static void test_paths(void) {
    char buf[64];
    struct col_paths p = {"/proc", "/sys/", "/", "/run/udev/data"};
    CHECK_EQ_INT(procfs_path(&p, PROCFS_PROC, "stat", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/proc/stat");
    CHECK_EQ_INT(procfs_path(&p, PROCFS_SYS, "/class/net", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/sys/class/net");
    CHECK_EQ_INT(procfs_path(&p, PROCFS_ROOT, "/srv/x", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/srv/x");
    struct col_paths q = {"/host/proc", "/host/sys", "/host", ""};
    CHECK_EQ_INT(procfs_path(&q, PROCFS_ROOT, "/", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/host");
    CHECK_EQ_INT(procfs_path(&q, PROCFS_PROC, "", buf, sizeof(buf)), 0);
    CHECK_EQ_STR(buf, "/host/proc");
    char tiny[8];
    CHECK_EQ_INT(procfs_path(&q, PROCFS_PROC, "stat", tiny, sizeof(tiny)), -ENAMETOOLONG);
}

static void test_parsers(void) {
    uint64_t u;
    int64_t i;
    double d;
    CHECK_EQ_INT(procfs_parse_u64("18446744073709551615", &u), 0);
    CHECK(u == UINT64_MAX);
    CHECK_EQ_INT(procfs_parse_u64("18446744073709551616", &u), -EPROTO);
    CHECK_EQ_INT(procfs_parse_u64("-1", &u), -EPROTO);
    CHECK_EQ_INT(procfs_parse_u64("12x", &u), -EPROTO);
    CHECK_EQ_INT(procfs_parse_u64("", &u), -EPROTO);
    CHECK_EQ_INT(procfs_parse_i64("-42", &i), 0);
    CHECK_EQ_INT(i, -42);
    CHECK_EQ_INT(procfs_parse_double("0.25", &d), 0);
    CHECK_EQ_DBL(d, 0.25);
    CHECK_EQ_INT(procfs_parse_double("1e999", &d), -EPROTO);
    CHECK_EQ_INT(procfs_parse_double("", &d), -EPROTO);

    char line[] = "  cpu0\t1 2   3 ";
    char *f[8];
    CHECK_EQ_INT(procfs_fields(line, f, 8), 4);
    CHECK_EQ_STR(f[0], "cpu0");
    CHECK_EQ_STR(f[3], "3");
    char line2[] = "a b c d";
    CHECK_EQ_INT(procfs_fields(line2, f, 2), 2);
    CHECK_EQ_STR(f[0], "a");
    CHECK_EQ_STR(f[1], "b c d"); /* the tail stays joined in the last field */

    char text[] = "one\ntwo\n\nlast";
    char *cur = text, *l;
    const char *want[] = {"one", "two", "", "last"};
    int n = 0;
    while ((l = procfs_next_line(&cur)) && n < 5) {
        if (n < 4) CHECK_EQ_STR(l, want[n]);
        n++;
    }
    CHECK_EQ_INT(n, 4);

    char psi[] = "some avg10=1.00 avg60=0.50 avg300=0.10 total=1234\n"
                 "full avg10=0.00 avg60=0.00 avg300=0.00 total=56\n";
    double some = 0, full = 0;
    bool has_full = false;
    CHECK_EQ_INT(procfs_parse_psi(psi, &some, &full, &has_full), 0);
    CHECK_EQ_DBL(some, 1234);
    CHECK_EQ_DBL(full, 56);
    CHECK(has_full);
    char bad[] = "some avg10=1.00\n";
    CHECK_EQ_INT(procfs_parse_psi(bad, &some, &full, &has_full), -EPROTO);
}

static void test_read(void) {
    char dir[] = "/tmp/promlet-procfs-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/big", dir);
    FILE *fp = fopen(path, "w");
    for (int i = 0; i < 20000; i++)
        fprintf(fp, "line %d\n", i);
    fclose(fp);
    struct sbuf b;
    sbuf_init(&b);
    CHECK_EQ_INT(procfs_read(path, &b), 0);
    CHECK(b.len > 150000 && strstr(b.data, "line 19999\n") != NULL);
    CHECK_EQ_INT(procfs_read_attr(path, &b), 0); /* a short read is EOF for regular files */
    CHECK(strstr(b.data, "line 19999\n") != NULL);
    CHECK_EQ_INT(procfs_read("/nonexistent/x", &b), -ENOENT);
    uint64_t v;
    snprintf(path, sizeof(path), "%s/num", dir);
    fp = fopen(path, "w");
    fputs("4096 \n", fp);
    fclose(fp);
    CHECK_EQ_INT(procfs_read_u64(path, &v), 0);
    CHECK_EQ_INT(v, 4096);
    fp = fopen(path, "w");
    fputs("max\n", fp);
    fclose(fp);
    CHECK_EQ_INT(procfs_read_u64(path, &v), -EPROTO);
    /* /proc itself: a seq file larger than one page reads completely */
    CHECK_EQ_INT(procfs_read("/proc/self/maps", &b), 0);
    CHECK(b.len > 0 && b.data[b.len - 1] == '\n');
    sbuf_fini(&b);
    unlink(path);
    snprintf(path, sizeof(path), "%s/big", dir);
    unlink(path);
    rmdir(dir);
}

/* Deterministic mutations of a valid textfile: the collector must never crash, must report
 * either the metrics or node_textfile_scrape_error 1, and the output must stay valid. */
static void test_textfile_mutations(void) {
    static const char base[] =
        "# HELP a_total Jobs.\n# TYPE a_total counter\n"
        "a_total{q=\"x\\\\y\\\"z\\n\",r=\"1\"} 12\n"
        "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_bucket{le=\"+Inf\"} 2\n"
        "h_sum 0.7\nh_count 2\n# TYPE s summary\ns{quantile=\"0.9\"} 3\n"
        "s_sum 4\ns_count 5\nplain -Inf\n";
    char dir[] = "/tmp/promlet-tf-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char path[128];
    snprintf(path, sizeof(path), "%s/m.prom", dir);
    struct col_options *o = col_options_new();
    struct perr err;
    col_options_set(o, "collector.disable-defaults", NULL, &err);
    col_options_set(o, "collector.textfile", NULL, &err);
    col_options_set(o, "collector.textfile.directory", dir, &err);
    struct collectors *c = collectors_new(o, &err);
    col_options_free(o);
    uint64_t x = 88172645463325252ULL;
    int ok_runs = 0, err_runs = 0, broken = 0;
    static const char alphabet[] = "{}=\",\\# \n_aeq0.+-Inf";
    const char *env = getenv("MUTATIONS"); /* more for a local soak run */
    int runs = env ? atoi(env) : 1000;
    for (int i = 0; i < runs; i++) {
        char buf[sizeof(base) + 8];
        memcpy(buf, base, sizeof(base));
        size_t len = sizeof(base) - 1;
        int edits = 1 + i % 4;
        for (int e = 0; e < edits && len > 0; e++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t at = x % len;
            if (x & 0x100000) /* overwrite */
                buf[at] = alphabet[(x >> 24) % (sizeof(alphabet) - 1)];
            else /* truncate */
                len = at;
        }
        FILE *fp = fopen(path, "w");
        fwrite(buf, 1, len, fp);
        fclose(fp);
        struct mset *s = mset_new();
        struct sbuf out;
        sbuf_init(&out);
        if (collectors_scrape(c, s) || mset_write_text(s, &out)) broken++;
        if (out.data && strstr(out.data, "node_textfile_scrape_error 1\n"))
            err_runs++;
        else if (out.data && strstr(out.data, "node_textfile_scrape_error 0\n"))
            ok_runs++;
        else
            broken++;
        sbuf_fini(&out);
        mset_free(s);
    }
    printf("# mutations: %d parsed, %d rejected\n", ok_runs, err_runs);
    CHECK_EQ_INT(broken, 0);
    CHECK(ok_runs > 0 && err_runs > 0);
    collectors_free(c);
    unlink(path);
    rmdir(dir);
}

/* Copies src to dst with a few deterministic byte edits or a truncation. */
static void mutate_copy(const char *src, const char *dst, uint64_t *x, int edits) {
    struct sbuf b;
    sbuf_init(&b);
    if (procfs_read(src, &b)) {
        sbuf_fini(&b);
        return;
    }
    static const char alphabet[] = " \n\t:0123456789-x()=.";
    size_t len = b.len;
    for (int e = 0; e < edits && len > 0; e++) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        size_t at = *x % len;
        if (*x & 0x100000)
            b.data[at] = alphabet[(*x >> 24) % (sizeof(alphabet) - 1)];
        else
            len = at;
    }
    FILE *fp = fopen(dst, "w");
    if (fp) {
        fwrite(b.data, 1, len, fp);
        fclose(fp);
    }
    sbuf_fini(&b);
}

/* Every /proc and cgroup file of the fixture mutated, all collectors run over it: no crash,
 * no sanitizer report, a well-formed scrape every time. */
static void test_proc_mutations(void) {
    const char *fx = getenv("FIXTURES");
    if (!fx) {
        printf("ok %d - # SKIP FIXTURES not set\n", ++tap_n);
        return;
    }
    static const char *const files[] = {
        "proc/stat",
        "proc/meminfo",
        "proc/loadavg",
        "proc/diskstats",
        "proc/net/dev",
        "proc/net/netstat",
        "proc/net/snmp",
        "proc/net/snmp6",
        "proc/net/sockstat",
        "proc/net/sockstat6",
        "proc/vmstat",
        "proc/pressure/cpu",
        "proc/pressure/io",
        "proc/pressure/memory",
        "proc/sys/fs/file-nr",
        "proc/1/mounts",
        "proc/42/stat",
        "proc/sys/kernel/pid_max",
        "proc/sys/kernel/threads-max",
        "proc/sys/kernel/random/entropy_avail",
        "proc/sys/kernel/random/poolsize",
        "proc/42/task/42/stat",
        "proc/42/task/43/stat",
        "cg/cgroup.controllers",
        "cg/cpu.stat",
        "cg/memory.stat",
        "cg/io.stat",
        "cg/cpu.pressure",
        "cg/s/cpu.stat",
        "cg/s/cpu.max",
        "cg/s/memory.current",
        "cg/s/memory.max",
        "cg/s/memory.stat",
        "cg/s/io.stat",
        "cg/s/pids.current",
        "cg/s/pids.max",
        "cg/s/memory.pressure",
    };
    char dir[] = "/tmp/promlet-mut-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    static const char *const dirs[] = {"proc",
                                       "proc/net",
                                       "proc/pressure",
                                       "proc/sys",
                                       "proc/sys/fs",
                                       "proc/sys/kernel",
                                       "proc/sys/kernel/random",
                                       "proc/1",
                                       "proc/42",
                                       "proc/42/task",
                                       "proc/42/task/42",
                                       "proc/42/task/43",
                                       "cg",
                                       "cg/s"};
    char p[512], src[1024];
    for (size_t i = 0; i < sizeof(dirs) / sizeof(*dirs); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, dirs[i]);
        mkdir(p, 0700);
    }
    struct col_options *o = col_options_new();
    struct perr err;
    snprintf(p, sizeof(p), "%s/proc", dir);
    col_options_set(o, "path.procfs", p, &err);
    snprintf(p, sizeof(p), "%s/cg", dir);
    col_options_set(o, "collector.cgroup.path", p, &err);
    snprintf(p, sizeof(p), "%s/rootfs/sys", fx);
    col_options_set(o, "path.sysfs", p, &err);
    col_options_set(o, "collector.processes", NULL, &err);
    col_options_set(o, "no-collector.filesystem", NULL, &err); /* statfs of host paths */
    struct collectors *c = collectors_new(o, &err);
    col_options_free(o);
    uint64_t x = 0x2545f4914f6cdd1dULL;
    int bad = 0, failures = 0;
    const char *env = getenv("MUTATIONS");
    int runs = env ? atoi(env) / 10 : 150;
    for (int r = 0; r < runs && c; r++) {
        for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
            const char *f = files[i];
            if (strncmp(f, "cg/s/", 5) == 0)
                snprintf(src, sizeof(src),
                         "%s/rootfs/sys/fs/cgroup/system.slice/docker-4f9c7e2d1a6b8c3e5f0a9d7b2c4e"
                         "6f8a1b3d5c7e9f0a2b4c6d8e0f1a3b5c7d9e.scope/%s",
                         fx, f + 5);
            else if (strncmp(f, "cg/", 3) == 0)
                snprintf(src, sizeof(src), "%s/rootfs/sys/fs/cgroup/%s", fx, f + 3);
            else
                snprintf(src, sizeof(src), "%s/rootfs/%s", fx, f);
            snprintf(p, sizeof(p), "%s/%s", dir, f);
            mutate_copy(src, p, &x, r % 3 == 0 ? 0 : 1 + r % 3);
        }
        struct mset *s = mset_new();
        struct sbuf out;
        sbuf_init(&out);
        if (collectors_scrape(c, s) || mset_write_text(s, &out) || !out.data)
            bad++;
        else
            for (const char *q = out.data; (q = strstr(q, "node_scrape_collector_success{"));) {
                q = strchr(q, '}');
                if (q && strncmp(q, "} 0\n", 4) == 0) {
                    failures++;
                    break;
                }
            }
        sbuf_fini(&out);
        mset_free(s);
    }
    printf("# proc mutations: %d runs, %d with a failing collector\n", runs, failures);
    CHECK(failures < runs); /* the unmutated runs (every third) have none */
    CHECK_EQ_INT(bad, 0);
    collectors_free(c);
    for (size_t i = 0; i < sizeof(files) / sizeof(*files); i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
        unlink(p);
    }
    for (size_t i = sizeof(dirs) / sizeof(*dirs); i-- > 0;) {
        snprintf(p, sizeof(p), "%s/%s", dir, dirs[i]);
        rmdir(p);
    }
    rmdir(dir);
}

int main(void) {
    log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_LOGFMT);
    test_paths();
    test_parsers();
    test_read();
    test_textfile_mutations();
    test_proc_mutations();
    return tap_done();
}
