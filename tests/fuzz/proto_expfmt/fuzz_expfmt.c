/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_expfmt: libFuzzer target for expfmt_parse, checking the sink contract on every input. */
#include "proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(c)                                                                                 \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "fuzz_expfmt: invariant failed: %s (line %d)\n", #c, __LINE__);        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static int f_family(void *arg, const char *name, const char *help, enum expfmt_type t) {
    REQUIRE(name && name[0]);
    REQUIRE(t >= EXPFMT_UNTYPED && t <= EXPFMT_HISTOGRAM);
    if (help) (void)strlen(help);
    return 0;
}

static int f_sample(void *arg, const char *fam, const char *name, const struct proto_label *l,
                    size_t n, double v, bool has_ts, int64_t ts) {
    size_t *count = arg;
    REQUIRE(fam && fam[0] && name && name[0]);
    /* the family is the name or the name minus a _sum/_count/_bucket suffix */
    REQUIRE(strncmp(fam, name, strlen(fam)) == 0);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(l[i].name_len > 0 && strlen(l[i].name) == l[i].name_len);
        REQUIRE(l[i].value[l[i].value_len] == 0 && strlen(l[i].value) == l[i].value_len);
        REQUIRE(strcmp(l[i].name, "__name__") != 0);
    }
    (*count)++;
    /* stop now and then, to exercise the early-return paths */
    return (*count == 1000) ? 5 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    size_t count = 0;
    struct expfmt_sink sink = {&count, f_family, f_sample};
    struct perr e;
    int rc = expfmt_parse(data, size, &sink, &e);
    REQUIRE(rc == 0 || rc == -EPROTO || rc == 5);
    if (rc == -EPROTO) {
        REQUIRE(strncmp(e.msg, "text format parsing error in line ", 34) == 0);
        REQUIRE(e.line >= 1 && e.col >= 1);
        REQUIRE(memchr(e.msg, 0, sizeof e.msg) != NULL);
    }
    /* Parsing without a sink must reach the same verdict. */
    int rc2 = expfmt_parse(data, size, NULL, NULL);
    REQUIRE(rc == 5 || rc2 == rc);
    return 0;
}
