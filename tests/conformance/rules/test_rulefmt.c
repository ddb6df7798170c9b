/* SPDX-License-Identifier: Apache-2.0 */
/* Conformance: every rule file of shared/conformance/rules through rulefile_load (v3 mode),
 * compared with INDEX.md's expected verdicts and error substrings. */
#include "ruleeval.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

static char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *b = malloc(cap);
    while (b) {
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) break;
        if (n + 1 >= cap) {
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                b = NULL;
                break;
            }
            b = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (b) b[n] = '\0';
    *len = n;
    return b;
}

struct expect {
    const char *file;
    bool valid;
    const char *substr; /* for invalid files */
    bool ignore_unknown;
    bool legacy;
};

static const struct expect cases[] = {
    {"rulefmt/test.yaml", true, NULL, false, false},
    {"rulefmt/test_aliases.yaml", true, NULL, false, false},
    {"rulefmt/utf-8_lname.good.yaml", true, NULL, false, false},
    {"rulefmt/utf-8_annotation.good.yaml", true, NULL, false, false},
    {"rulefmt/legacy_validation_annotation.good.yaml", true, NULL, false, false},
    {"rulefmt/legacy_validation_annotation.good.yaml", true, NULL, false, true},
    {"rulefmt/legacy_validation_annotation.bad.yaml", true, NULL, false, false},
    {"rulefmt/legacy_validation_annotation.bad.yaml", false, "invalid annotation name: ins-tance",
     false, true},
    {"rulefmt/utf-8_lname.good.yaml", false, "invalid label name: ins-tance", false, true},
    {"rulefmt/duplicate_grp.bad.yaml", false, "groupname: \"yolo\" is repeated in the same file",
     false, false},
    {"rulefmt/bad_expr.bad.yaml", false, "parse error", false, false},
    {"rulefmt/record_and_alert.bad.yaml", false, "only one of 'record' and 'alert' must be set",
     false, false},
    {"rulefmt/no_rec_alert.bad.yaml", false, "one of 'record' or 'alert' must be set", false,
     false},
    {"rulefmt/noexpr.bad.yaml", false, "field 'expr' must be set in rule", false, false},
    {"rulefmt/invalid_record_name.bad.yaml", false,
     "braces present in the recording rule name; should it be in expr?: "
     "strawberry{flavor=\"sweet\"}",
     false, false},
    {"rulefmt/invalid_record_name.bad.yaml", false,
     "invalid recording rule name: strawberry{flavor=\"sweet\"}", false, true},
    {"rulefmt/bad_field.bad.yaml", false, "field annotation not found", false, false},
    {"rulefmt/invalid_label_name.bad.yaml", false, "invalid label name", false, false},
    {"rulefmt/record_and_for.bad.yaml", false, "invalid field 'for' in recording rule", false,
     false},
    {"rulefmt/record_and_keep_firing_for.bad.yaml", false,
     "invalid field 'keep_firing_for' in recording rule", false, false},
    {"promtool/rules.yml", true, NULL, false, false},
    {"promtool/rules-bad.yml", false,
     "annotation \"summary\": template: __alert_InstanceDown:1: undefined variable \"$label\"",
     false, false},
    {"promtool/rules_duplicates.yml", true, NULL, false, false},
    {"promtool/rules_extrafields.yml", false, "not found in type rulefmt.RuleGroup", false, false},
    {"promtool/rules_extrafields.yml", true, NULL, true, false},
    {"promtool/prometheus-rules.lint.yml", true, NULL, false, false},
    {"promtool/at-modifier.yml", true, NULL, false, false},
    {"promtool/negative-offset.yml", true, NULL, false, false},
    {"promtool/bad-rules-syntax.yml", false, "could not parse expression", false, false},
    {"promtool/bad-rules-error.yml", true, NULL, false, false},
    /* experimental PromQL features are off (as in Prometheus by default) */
    {"promtool/features.yml", false, "could not parse expression", false, false},
    {"rules_fixtures/alert_rule.yaml", true, NULL, false, false},
    {"rules_fixtures/alert_rule1.yaml", true, NULL, false, false},
    {"rules_fixtures/rules.yaml", true, NULL, false, false},
    {"rules_fixtures/rules1.yaml", true, NULL, false, false},
    {"rules_fixtures/rules2.yaml", true, NULL, false, false},
    {"rules_fixtures/rules2_copy.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_chain.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_dependencies.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_indeterminates.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_multi_doc.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_multiple.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_multiple_dependents_on_base.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_multiple_groups.yaml", true, NULL, false, false},
    {"rules_fixtures/rules_multiple_independent.yaml", true, NULL, false, false},
    {"rules_fixtures/invalid_rules.yaml", false, "field unexpected_field not found", false, false},
    {"rules_fixtures/invalid_rules.yaml", true, NULL, true, false},
};

int main(void) {
    const char *conf = getenv("CONFORMANCE");
    if (!conf) conf = "../shared/conformance";
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct expect *c = &cases[i];
        char path[1024];
        snprintf(path, sizeof(path), "%s/rules/%s", conf, c->file);
        size_t len;
        char *buf = slurp(path, &len);
        if (!buf) {
            TAP_OK(0, "%s: readable", c->file);
            continue;
        }
        struct rulefile_opts o = {.ignore_unknown_fields = c->ignore_unknown,
                                  .legacy_names = c->legacy};
        struct perr e = {0};
        struct rulefile *f = rulefile_load(c->file, buf, len, &o, &e);
        const char *mode = c->legacy           ? " (legacy names)"
                           : c->ignore_unknown ? " (ignore unknown)"
                                               : "";
        if (c->valid) {
            TAP_OK(f != NULL, "%s%s: valid", c->file, mode);
            if (!f) printf("#   %d:%d: %s\n", e.line, e.col, e.msg);
        } else {
            /* the check report carries the complete messages */
            bool failed = false;
            char *rep = rulefile_check(c->file, buf, len, &o, &failed);
            bool ok = !f && failed && rep && strstr(rep, c->substr);
            TAP_OK(ok, "%s%s: invalid with \"%s\"", c->file, mode, c->substr);
            if (!ok) printf("#   %s\n", rep ? rep : "(null)");
            free(rep);
        }
        rulefile_free(f);
        free(buf);
    }
    return tap_done();
}
