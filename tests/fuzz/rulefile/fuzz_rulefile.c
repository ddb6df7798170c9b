/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: rule-file loading/checking and alert-template expansion on what loads. */
#include "ruleeval.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int no_query(void *arg, const char *expr, int64_t ts, template_emit_fn *emit, void *emit_arg,
                    char *errbuf, size_t errlen) {
    (void)arg;
    (void)ts;
    /* one fixed sample, so query/first/label/value paths run */
    struct re_label l[2] = {{"__name__", "up"}, {"instance", expr}};
    (void)errbuf;
    (void)errlen;
    return emit(emit_arg, l, 2, 1.5);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > (1u << 20)) return 0;
    for (int legacy = 0; legacy < 2; legacy++) {
        struct rulefile_opts o = {.legacy_names = legacy, .ignore_unknown_fields = legacy};
        struct perr e = {0};
        struct rulefile *f = rulefile_load("fuzz.yml", (const char *)data, size, &o, &e);
        bool failed = false;
        char *rep = rulefile_check("fuzz.yml", (const char *)data, size, &o, &failed);
        /* invariant: load and check agree on validity (unless OOM) */
        if (rep && (f != NULL) == failed) abort();
        free(rep);
        if (!f) continue;
        for (size_t g = 0; g < f->ngroups; g++)
            for (size_t r = 0; r < f->groups[g].nrules; r++) {
                struct alert_rule *ar = alert_rule_new(&f->groups[g].rules[r], &f->groups[g]);
                if (!ar) continue;
                struct re_label l[2] = {{"instance", "host:9100"}, {"job", "node"}};
                struct alert_sample s = {l, 2, 42.5};
                struct alert_env env = {.external_url = "http://x", .query = no_query};
                struct perr ae = {0};
                alert_rule_eval(ar, 1000, &s, 1, 0, &env, &ae);
                alert_rule_eval(ar, 2000, NULL, 0, 0, &env, &ae);
                alert_rule_free(ar);
            }
        rulefile_free(f);
    }
    return 0;
}
