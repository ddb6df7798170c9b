/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only driver: `rules_driver check|test [options] FILE...`, promtool's check/test rules. */
#include "ruleeval.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_file(void *arg, const char *path, char **buf, size_t *len)
{
    (void)arg;
    FILE *f = fopen(path, "rb");
    if (!f)
        return -errno;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0)
            break;
        if (n + 1 >= cap) {
            if (cap >= (64u << 20)) {
                free(b);
                fclose(f);
                return -E2BIG;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb)
                break;
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!b)
        return -ENOMEM;
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

static int do_glob(void *arg, const char *pattern, char ***paths, size_t *n)
{
    (void)arg;
    glob_t g;
    *paths = NULL;
    *n = 0;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH)
        return 0;
    if (rc != 0)
        return -EINVAL;
    char **p = calloc(g.gl_pathc + 1, sizeof(*p));
    if (!p) {
        globfree(&g);
        return -ENOMEM;
    }
    for (size_t i = 0; i < g.gl_pathc; i++)
        p[(*n)++] = strdup(g.gl_pathv[i]);
    globfree(&g);
    *paths = p;
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || (strcmp(argv[1], "check") && strcmp(argv[1], "test"))) {
        fprintf(stderr, "usage: %s check|test [--compat-v2] [--legacy-names] "
                        "[--ignore-unknown-fields] [--run RE]... FILE...\n",
                argv[0]);
        return 2;
    }
    bool test = strcmp(argv[1], "test") == 0;
    struct ruletest_opts o = {.glob = do_glob};
    struct rulefile_opts ro = {0};
    const char *runs[64];
    int status = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--compat-v2") == 0) {
            o.compat_v2 = true;
            ro.legacy_names = true;
        } else if (strcmp(argv[i], "--legacy-names") == 0)
            ro.legacy_names = true;
        else if (strcmp(argv[i], "--ignore-unknown-fields") == 0)
            o.ignore_unknown_fields = ro.ignore_unknown_fields = true;
        else if (strcmp(argv[i], "--run") == 0 && i + 1 < argc && o.nrun < 64) {
            runs[o.nrun++] = argv[++i];
            o.run = runs;
        } else if (strncmp(argv[i], "--float-tolerance=", 18) == 0)
            o.float_tolerance = strtod(argv[i] + 18, NULL);
        else if (test) {
            char *rep = NULL;
            int rc = ruletest_run(argv[i], &o, read_file, NULL, &rep);
            if (rep)
                fputs(rep, stdout);
            free(rep);
            if (rc != 0)
                status = 1;
        } else {
            char *buf = NULL;
            size_t len = 0;
            int rc = read_file(NULL, argv[i], &buf, &len);
            if (rc < 0) {
                printf("Checking %s\n  FAILED:\n%s: %s\n\n", argv[i], argv[i], strerror(-rc));
                status = 1;
                continue;
            }
            bool failed = false;
            char *rep = rulefile_check(argv[i], buf, len, &ro, &failed);
            if (rep)
                fputs(rep, stdout);
            free(rep);
            free(buf);
            if (failed || !rep)
                status = 1;
        }
    }
    return status;
}
