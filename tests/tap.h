/* SPDX-License-Identifier: Apache-2.0 */
/* A tiny TAP harness in the spirit of collectd's testing.h: CHECK macros, "ok N - ...". */
#ifndef PROMLET_TESTS_TAP_H
#define PROMLET_TESTS_TAP_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_fail;

/* Prints a test description on one line: a newline inside it would end the TAP line and
 * leave the rest as output the harness cannot read. */
static inline void tap_desc(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline void tap_desc(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    for (const char *p = buf; *p; p++) {
        if (*p == '\n')
            fputs("\\n", stdout);
        else if (*p == '\r')
            fputs("\\r", stdout);
        else
            putchar(*p);
    }
}

#define TAP_OK(cond, ...)                                                                          \
    do {                                                                                           \
        int tap_c_ = (cond);                                                                       \
        printf("%s %d - ", tap_c_ ? "ok" : "not ok", ++tap_n);                                     \
        tap_desc(__VA_ARGS__);                                                                     \
        printf("\n");                                                                              \
        if (!tap_c_) {                                                                             \
            tap_fail++;                                                                            \
            printf("#   at %s:%d\n", __FILE__, __LINE__);                                          \
        }                                                                                          \
    } while (0)

#define CHECK(cond) TAP_OK((cond), "%s", #cond)

#define CHECK_EQ_INT(got, want)                                                                    \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        TAP_OK(g_ == w_, "%s == %s", #got, #want);                                                 \
        if (g_ != w_) printf("#   got %lld, want %lld\n", g_, w_);                                 \
    } while (0)

#define CHECK_EQ_STR(got, want)                                                                    \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        int eq_ = (g_ && w_) ? strcmp(g_, w_) == 0 : g_ == w_;                                     \
        TAP_OK(eq_, "%s == \"%s\"", #got, w_ ? w_ : "(null)");                                     \
        if (!eq_) {                                                                                \
            printf("#   got \"");                                                                  \
            tap_desc("%s", g_ ? g_ : "(null)");                                                    \
            printf("\"\n");                                                                        \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_DBL(got, want)                                                                    \
    do {                                                                                           \
        double g_ = (got), w_ = (want);                                                            \
        int eq_ = (isnan(g_) && isnan(w_)) || g_ == w_;                                            \
        TAP_OK(eq_, "%s == %s", #got, #want);                                                      \
        if (!eq_) printf("#   got %.17g, want %.17g\n", g_, w_);                                   \
    } while (0)

/* Prints the plan and returns the process exit status. */
static inline int tap_done(void) {
    printf("1..%d\n", tap_n);
    return tap_fail ? 1 : 0;
}

#endif
