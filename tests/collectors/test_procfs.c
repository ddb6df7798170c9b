/* SPDX-License-Identifier: Apache-2.0 */
/* Tests for the collectors' file helpers and a mutation run of the textfile parser. */
#include "procfs.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    int runs = env ? atoi(env) : 2000;
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

int main(void) {
    log_setup(LOG_LEVEL_ERROR, LOG_FORMAT_LOGFMT);
    test_paths();
    test_parsers();
    test_read();
    test_textfile_mutations();
    return tap_done();
}
