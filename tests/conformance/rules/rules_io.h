/* SPDX-License-Identifier: Apache-2.0 */
/* File reading and globbing callbacks for the rule runners' test programs. */
#ifndef PROMLET_TESTS_RULES_IO_H
#define PROMLET_TESTS_RULES_IO_H

#include <errno.h>
#include <glob.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline int read_file(void *arg, const char *path, char **buf, size_t *len) {
    (void)arg;
    FILE *f = fopen(path, "rb");
    if (!f) return -errno;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (n + 1 >= cap) {
            if (cap >= (64u << 20)) {
                free(b);
                fclose(f);
                return -E2BIG;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) break;
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!b) return -ENOMEM;
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

static inline int do_glob(void *arg, const char *pattern, char ***paths, size_t *n) {
    (void)arg;
    glob_t g;
    *paths = NULL;
    *n = 0;
    int rc = glob(pattern, 0, NULL, &g);
    if (rc == GLOB_NOMATCH) return 0;
    if (rc != 0) return -EINVAL;
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

#endif
