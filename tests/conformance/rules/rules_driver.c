/* SPDX-License-Identifier: Apache-2.0 */
/* Test-only driver: `rules_driver check|test [options] FILE...`, promtool's check/test rules. */
#include "ruleeval.h"
#include "rules_io.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc < 3 || (strcmp(argv[1], "check") && strcmp(argv[1], "test"))) {
        fprintf(stderr,
                "usage: %s check|test [--compat-v2] [--legacy-names] "
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
            if (rep) fputs(rep, stdout);
            free(rep);
            if (rc != 0) status = 1;
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
            if (rep) fputs(rep, stdout);
            free(rep);
            free(buf);
            if (failed || !rep) status = 1;
        }
    }
    return status;
}
