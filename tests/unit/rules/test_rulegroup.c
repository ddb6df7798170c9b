/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for rule-group evaluation: outputs, stale markers, errors, reload state. */
#include "ruleeval.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

struct rec {
    int n, stale;
    char last[256];
    double lastv;
    struct re_memstore *store;
};

static int append(void *arg, const struct re_label *l, size_t n, int64_t ts, double v,
                  const struct re_hist *h) {
    struct rec *r = arg;
    r->n++;
    if (re_is_stale(v)) r->stale++;
    r->last[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        strncat(r->last, l[i].name, sizeof(r->last) - strlen(r->last) - 1);
        strncat(r->last, "=", sizeof(r->last) - strlen(r->last) - 1);
        strncat(r->last, l[i].value, sizeof(r->last) - strlen(r->last) - 1);
        strncat(r->last, ",", sizeof(r->last) - strlen(r->last) - 1);
    }
    r->lastv = v;
    return re_memstore_add(r->store, l, n, ts, v, h);
}

static void add(struct re_memstore *s, const char *job, int64_t ts, double v) {
    struct re_label l[2] = {{"__name__", "x"}, {"job", job}};
    re_memstore_add(s, l, 2, ts, v, NULL);
}

int main(void) {
    const char *text = "groups:\n- name: g\n  labels: {team: a}\n  rules:\n"
                       "  - record: job:x:sum\n    expr: sum by (job) (x)\n    labels: {team: b}\n"
                       "  - alert: XHigh\n    expr: job:x:sum > 5\n"
                       "  - record: dup\n    expr: x\n    labels: {job: same}\n";
    struct perr e = {0};
    struct rulefile *f = rulefile_load("g.yml", text, strlen(text), NULL, &e);
    CHECK(f != NULL);
    if (!f) {
        printf("# %s\n", e.msg);
        return tap_done();
    }
    struct rulegroup *g = rulegroup_new(&f->groups[0]);
    struct rec r = {.store = re_memstore_new()};
    struct re_source src;
    re_memstore_source(r.store, &src);
    struct rulegroup_env env = {.src = &src, .append = append, .append_arg = &r};
    add(r.store, "a", 0, 10);
    /* one series: dup works, the alert sees the recorded value of this cycle */
    CHECK_EQ_INT(rulegroup_eval(g, 0, &env), 0);
    CHECK_EQ_INT(rulegroup_nrules(g), 3);
    CHECK(rulegroup_alert_rule(g, 1) && !rulegroup_alert_rule(g, 0));
    CHECK_EQ_INT(alert_rule_state(rulegroup_alert_rule(g, 1)), ALERT_FIRING);
    CHECK_EQ_INT(rulegroup_rule_health(g, 0), ALERT_HEALTH_OK);
    /* job:x:sum, ALERTS, ALERTS_FOR_STATE, dup */
    CHECK_EQ_INT(r.n, 4);
    CHECK_EQ_STR(r.last, "__name__=dup,job=same,team=a,");
    /* two series: dup fails as Prometheus (same labelset after applying rule labels), writes
     * nothing, and the other rules still run */
    add(r.store, "b", 60000, 1);
    add(r.store, "a", 60000, 1);
    r.n = 0;
    CHECK_EQ_INT(rulegroup_eval(g, 60000, &env), 1);
    CHECK_EQ_INT(rulegroup_rule_health(g, 2), ALERT_HEALTH_ERR);
    CHECK(strstr(rulegroup_rule_error(g, 2), "same labelset after applying rule labels") != NULL);
    /* two job:x:sum series; the alert resolved -> stale ALERTS + ALERTS_FOR_STATE */
    CHECK_EQ_INT(r.stale, 2);
    CHECK_EQ_INT(r.n, 4);
    /* job b disappears: its recorded series gets a stale marker */
    add(r.store, "a", 120000, 1);
    add(r.store, "b", 120000, re_stale_nan());
    r.n = r.stale = 0;
    CHECK_EQ_INT(rulegroup_eval(g, 120000, &env), 0);
    CHECK_EQ_INT(r.stale, 1);
    CHECK(strstr(r.last, "dup") != NULL);
    /* reload: state carried to an identical group; removed group: everything stale */
    struct rulegroup *g2 = rulegroup_new(&f->groups[0]);
    CHECK(rulegroup_copy_state(g2, g) == 0);
    r.n = r.stale = 0;
    CHECK(rulegroup_stale_all(g2, 180000, &env) == 0);
    CHECK_EQ_INT(r.stale, 2); /* job:x:sum{job=a} and dup */
    rulegroup_free(g2);
    rulegroup_free(g);
    re_memstore_free(r.store);
    rulefile_free(f);
    return tap_done();
}
