/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: rule-file loading/checking, and the template engine on the raw input. */
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
    /* the whole input as an alert template too: parse, and expand what parses */
    {
        struct perr te = {0};
        struct template *t = template_parse("fuzz", (const char *)data, size, true, &te);
        if (t) {
            struct re_label l[2] = {{"instance", "host:9100"}, {"job", "node"}};
            struct template_data d = {.labels = l,
                                      .nlabels = 2,
                                      .value = 3.25,
                                      .ts_ms = 1000,
                                      .query = no_query,
                                      .external_url = "http://x/p"};
            char *out = NULL;
            template_expand(t, &d, &out);
            free(out);
            template_free(t);
        }
    }
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
