/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the rule-file loader: structure, positions, YAML features and every check. */
#include "ruleeval.h"
#include "tap.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static struct rulefile *load(const char *text, const struct rulefile_opts *o, struct perr *e) {
    return rulefile_load("r.yml", text, strlen(text), o, e);
}

static char *check(const char *text, const struct rulefile_opts *o, bool *failed) {
    return rulefile_check("r.yml", text, strlen(text), o, failed);
}

static void expect_error(const char *text, const char *want, const struct rulefile_opts *o) {
    bool failed = false;
    char *rep = check(text, o, &failed);
    bool ok = failed && rep && strstr(rep, want);
    TAP_OK(ok, "error contains: %s", want);
    if (!ok) printf("#   report: %s\n", rep ? rep : "(null)");
    struct perr e = {0};
    struct rulefile *f = load(text, o, &e);
    TAP_OK(f == NULL && e.msg[0], "load fails too (%s)", e.msg);
    rulefile_free(f);
    free(rep);
}

int main(void) {
    const char *good = "groups:\n"
                       "  - name: g1\n"
                       "    interval: 30s\n"
                       "    query_offset: 1m\n"
                       "    limit: 10\n"
                       "    labels:\n"
                       "      team: a\n"
                       "    rules:\n"
                       "      - alert: HighLoad\n"
                       "        expr: |\n"
                       "          node_load1 > 4\n"
                       "        for: 5m\n"
                       "        keep_firing_for: 1m30s\n"
                       "        labels: {severity: page, empty: \"\"}\n"
                       "        annotations:\n"
                       "          summary: \"{{ $labels.instance }} load {{ $value }}\"\n"
                       "      - record: job:up:sum\n"
                       "        expr: sum by (job) (up)\n"
                       "        labels:\n"
                       "          source: rule\n"
                       "  - name: g2\n"
                       "    rules: []\n";
    struct perr e = {0};
    struct rulefile *f = load(good, NULL, &e);
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ_INT(f->ngroups, 2);
        CHECK_EQ_INT(f->nrules, 2);
        const struct rulefile_group *g = &f->groups[0];
        CHECK_EQ_STR(g->name, "g1");
        CHECK_EQ_INT(g->interval_ms, 30000);
        CHECK_EQ_INT(g->query_offset_ms, 60000);
        CHECK_EQ_INT(g->limit, 10);
        CHECK_EQ_INT(g->nlabels, 1);
        CHECK(g->line == 2 && g->col == 5);
        const struct rulefile_rule *r = &g->rules[0];
        CHECK_EQ_INT(r->kind, RULEFILE_ALERT);
        CHECK_EQ_STR(r->name, "HighLoad");
        CHECK(strcmp(r->expr, "node_load1 > 4\n") == 0);
        CHECK(r->ast != NULL);
        CHECK_EQ_INT(r->for_ms, 300000);
        CHECK_EQ_INT(r->keep_firing_for_ms, 90000);
        CHECK(r->line == 9 && r->col == 9);
        CHECK(r->expr_line == 10 && r->expr_col == 15);
        CHECK_EQ_INT(r->nlabels, 2);
        CHECK_EQ_STR(r->labels[1].name, "empty");
        CHECK_EQ_STR(r->labels[1].value, "");
        CHECK_EQ_INT(r->nannotations, 1);
        CHECK_EQ_INT(g->rules[1].kind, RULEFILE_RECORD);
        CHECK_EQ_STR(g->rules[1].name, "job:up:sum");
        CHECK_EQ_INT(f->groups[1].nrules, 0);
    }
    rulefile_free(f);
    bool failed = true;
    char *rep = check(good, NULL, &failed);
    CHECK(rep && strcmp(rep, "Checking r.yml\n  SUCCESS: 2 rules found\n\n") == 0);
    CHECK(!failed);
    free(rep);

    /* anchors, aliases and merge keys; explicit keys win over merged ones */
    const char *merge = "groups:\n- name: m\n  rules:\n  - &a\n    alert: A\n    expr: up == 0\n"
                        "    for: 1m\n  - <<: *a\n    alert: B\n  - record: r\n    expr: *x\n";
    f = load(merge, NULL, &e);
    CHECK(f == NULL); /* *x is an undefined alias: a YAML error */
    CHECK(strstr(e.msg, "yaml:") != NULL);
    rulefile_free(f);
    merge = "groups:\n- name: m\n  rules:\n  - &a\n    alert: A\n    expr: &e up == 0\n"
            "    for: 1m\n  - <<: *a\n    alert: B\n  - record: r\n    expr: *e\n";
    f = load(merge, NULL, &e);
    CHECK(f != NULL);
    if (f) {
        CHECK_EQ_INT(f->groups[0].nrules, 3);
        CHECK_EQ_STR(f->groups[0].rules[1].name, "B");
        CHECK_EQ_INT(f->groups[0].rules[1].for_ms, 60000);
        CHECK_EQ_STR(f->groups[0].rules[2].expr, "up == 0");
    }
    rulefile_free(f);

    /* only the first YAML document counts; empty files are valid */
    f = load("groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n---\nfoo: bar\n", NULL,
             &e);
    CHECK(f != NULL && f->nrules == 1);
    rulefile_free(f);
    f = load("", NULL, &e);
    CHECK(f != NULL && f->ngroups == 0);
    rulefile_free(f);

    /* every validation, with promtool's message shapes */
    expect_error("groups:\n- name: g\n  rules:\n  - record: r\n    alert: a\n    expr: up\n",
                 "r.yml: 4:13: 5:12: group \"g\", rule 1, \"a\": only one of 'record' and 'alert' "
                 "must be set",
                 NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - expr: up\n",
                 "group \"g\", rule 1, \"\": one of 'record' or 'alert' must be set", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - alert: a\n",
                 "group \"g\", rule 1, \"a\": field 'expr' must be set in rule", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - alert: a\n    expr: rate(x)\n",
                 "r.yml: 5:11: group \"g\", rule 1, \"a\": could not parse expression: ", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n",
                 "invalid field 'for' in recording rule", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    annotations: "
                 "{a: b}\n",
                 "invalid field 'annotations' in recording rule", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    labels: "
                 "{__name__: b}\n",
                 "invalid label name: __name__", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    labels: "
                 "{ok: \"{{ nosuch }}\"}\n",
                 "label \"ok\": template: __alert_a:1: function \"nosuch\" not defined", NULL);
    expect_error("groups:\n- name: g\n  rules:\n- name: g\n  rules:\n",
                 "r.yml: 4:3: groupname: \"g\" is repeated in the same file", NULL);
    expect_error("groups:\n- rules: []\n", "Groupname must not be empty", NULL);
    expect_error("groups:\n- name: g\n  interval: 5x\n", "not a valid duration string: \"5x\"",
                 NULL);
    expect_error("groups:\n- name: g\n  limit: many\n", "cannot unmarshal !!str `many` into int",
                 NULL);
    expect_error("groups:\n- name: g\n  rules: yes\n",
                 "cannot unmarshal !!str into []rulefmt.RuleNode", NULL);
    expect_error("groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    expr: down\n",
                 "mapping key \"expr\" already defined at line 5", NULL);
    expect_error("grups: []\n", "r.yml: 1:1: field grups not found in type rulefmt.RuleGroups",
                 NULL);
    expect_error("groups:\n- name: g\n  labels: {\"bad-name\": x}\n",
                 "group \"g\": invalid label name: bad-name",
                 &(struct rulefile_opts){.legacy_names = true});
    expect_error("groups:\n- name: g\n  rules:\n  - record: 'a-b'\n    expr: up\n",
                 "invalid recording rule name: a-b", &(struct rulefile_opts){.legacy_names = true});
    expect_error("groups: [\n", "yaml: line", NULL);

    /* several problems are all listed */
    rep = check("groups:\n- name: g\n  rules:\n  - record: r\n    expr: up\n    for: 1m\n"
                "  - alert: b\n    expr: (\n",
                NULL, &failed);
    CHECK(failed && rep && strstr(rep, "invalid field 'for'") && strstr(rep, "rule 2, \"b\""));
    free(rep);

    /* promtool's duplicate-rules lint: reported once per duplicated rule, not fatal */
    rep = check("groups:\n- name: a\n  rules:\n  - record: r\n    expr: up\n  - record: r\n"
                "    expr: up\n- name: b\n  rules:\n  - record: r\n    expr: down\n"
                "  - alert: r\n    expr: up\n    labels: {x: y}\n",
                NULL, &failed);
    CHECK(!failed && rep &&
          strstr(rep, "  FAILED:\nlint error 1 duplicate rule(s) found.\nMetric: r\nLabel(s):\n"
                      "Might cause") &&
          !strstr(rep, "SUCCESS"));
    free(rep);

    /* unknown fields ignored on request; UTF-8 names accepted by default */
    struct rulefile_opts ign = {.ignore_unknown_fields = true};
    f = load("groups:\n- name: g\n  owner: me\n  rules:\n  - alert: a\n    expr: up\n    x: 1\n",
             &ign, &e);
    CHECK(f != NULL);
    rulefile_free(f);
    f = load(
        "groups:\n- name: g\n  rules:\n  - alert: a\n    expr: up\n    labels: {ins-tance: x}\n",
        NULL, &e);
    CHECK(f != NULL);
    rulefile_free(f);
    return tap_done();
}
