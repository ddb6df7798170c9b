/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: promql_parse on arbitrary bytes; printed form must parse to the same text. */
#include "ruleeval.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    char *src = malloc(size + 1);
    if (!src) return 0;
    memcpy(src, data, size);
    src[size] = 0;
    struct perr err;
    struct promql_expr *e = promql_parse(src, &err);
    if (e) {
        (void)promql_expr_type(e);
        char *s = promql_expr_string(e);
        if (s) {
            /* The canonical text must parse again and print identically. */
            struct promql_expr *e2 = promql_parse(s, &err);
            if (!e2) abort();
            char *s2 = promql_expr_string(e2);
            if (!s2 || strcmp(s, s2) != 0) abort();
            free(s2);
            promql_free(e2);
            free(s);
        }
        promql_free(e);
    } else if (err.line < 1 || err.col < 1 || strncmp(err.msg, "parse error: ", 13) != 0) {
        abort();
    }
    free(src);
    return 0;
}
