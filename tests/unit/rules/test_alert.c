/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the alert state machine and the JSON payloads (vs captured payloads). */
#include "ruleeval.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Reads $SHARED/payloads/name and strips JSON whitespace outside strings. */
static char *captured(const char *name) {
    const char *shared = getenv("SHARED");
    char path[1024];
    snprintf(path, sizeof(path), "%s/payloads/%s", shared ? shared : "../shared", name);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = calloc(1, 1 << 16);
    size_t n = buf ? fread(buf, 1, (1 << 16) - 1, f) : 0;
    fclose(f);
    if (!buf) return NULL;
    size_t o = 0;
    bool in = false;
    for (size_t i = 0; i < n; i++) {
        char c = buf[i];
        if (in) {
            buf[o++] = c;
            if (c == '\\' && i + 1 < n)
                buf[o++] = buf[++i];
            else if (c == '"')
                in = false;
        } else if (c == '"') {
            in = true;
            buf[o++] = c;
        } else if (c != ' ' && c != '\n' && c != '\t' && c != '\r')
            buf[o++] = c;
    }
    buf[o] = '\0';
    return buf;
}

/* The captured payloads were re-indented by a JSON tool that wrote & < > plainly; on the
 * wire Prometheus and Alertmanager (encoding/json) send them as \u0026 \u003c \u003e, as
 * promlet does (tests/integration/alert_diff_test.py checks the real bytes). Undoes that in
 * place for the comparison. */
static char *html_unescaped(char *s) {
    static const char *const esc[][2] = {{"\\u0026", "&"}, {"\\u003c", "<"}, {"\\u003e", ">"}};
    if (!s) return s;
    size_t o = 0;
    for (size_t i = 0; s[i];) {
        size_t k = 0;
        for (; k < 3; k++)
            if (!strncmp(s + i, esc[k][0], 6)) break;
        if (k < 3) {
            s[o++] = esc[k][1][0];
            i += 6;
        } else {
            s[o++] = s[i++];
        }
    }
    s[o] = 0;
    return s;
}

static struct rulefile_kv kv(const char *n, const char *v) {
    struct rulefile_kv k = {(char *)n, (char *)v};
    return k;
}

static struct alert_rule *mkrule(const char *name, const char *expr, int64_t for_ms, int64_t kff,
                                 struct rulefile_kv *labels, size_t nl, struct rulefile_kv *ann,
                                 size_t na) {
    struct rulefile_rule r = {.kind = RULEFILE_ALERT,
                              .name = (char *)name,
                              .expr = (char *)expr,
                              .for_ms = for_ms,
                              .keep_firing_for_ms = kff,
                              .labels = labels,
                              .nlabels = nl,
                              .annotations = ann,
                              .nannotations = na};
    return alert_rule_new(&r, NULL);
}

struct collect {
    struct alert_notice n[8];
    char *gen[8];
    int cnt;
};

static int on_send(void *arg, const struct alert_notice *a) {
    struct collect *c = arg;
    if (c->cnt >= 8) return -1;
    c->n[c->cnt] = *a;
    c->gen[c->cnt] = strdup(a->generator_url);
    c->n[c->cnt].generator_url = c->gen[c->cnt];
    c->cnt++;
    return 0;
}

static void collect_reset(struct collect *c) {
    for (int i = 0; i < c->cnt; i++)
        free(c->gen[i]);
    c->cnt = 0;
}

struct series_count {
    int alerts_firing, alerts_pending, for_state;
    double for_value;
};

static int on_series(void *arg, const struct re_label *l, size_t n, double v) {
    struct series_count *s = arg;
    const char *name = "", *st = "";
    for (size_t i = 0; i < n; i++) {
        if (strcmp(l[i].name, "__name__") == 0) name = l[i].value;
        if (strcmp(l[i].name, "alertstate") == 0) st = l[i].value;
    }
    if (strcmp(name, "ALERTS") == 0) {
        if (strcmp(st, "firing") == 0)
            s->alerts_firing++;
        else
            s->alerts_pending++;
    } else {
        s->for_state++;
        s->for_value = v;
    }
    return 0;
}

static const struct re_label web[] = {{"__name__", "system_runtime_threadpool_queue_length"},
                                      {"instance", "webserver:5000"},
                                      {"job", "webserver"}};

static void test_captured_payloads(void) {
    /* the experiment's ThreadPool Spike alert as captured from Prometheus 2.42 +
     * Alertmanager 0.25: fired at 02:10:50.440, resolved at 02:10:52.440 */
    const int64_t t0 = 1795831850440LL; /* 2026-11-28T02:10:50.440Z */
    struct rulefile_kv lab[] = {kv("severity", "critical")};
    struct alert_rule *r = mkrule("ThreadPool Spike", "system_runtime_threadpool_queue_length > 40",
                                  0, 0, lab, 1, NULL, 0);
    struct alert_sample s = {web, 3, 55};
    struct perr e = {0};
    struct collect c = {0};
    CHECK(alert_rule_eval(r, t0, &s, 1, 0, NULL, &e) == 0);
    CHECK(alert_rule_sends(r, t0, 60000, 1000, "http://vm:19090", on_send, &c) == 1);
    char *want = captured("prometheus_to_alertmanager_firing.json");
    char *got = payload_am_alerts(c.n, (size_t)c.cnt, NULL, 0);
    CHECK_EQ_STR(html_unescaped(got), want);
    free(got);
    free(want);
    CHECK_EQ_INT((long long)payload_fingerprint(c.n[0].labels, c.n[0].nlabels),
                 (long long)0x47664436c6907469ULL);
    struct re_label gl[] = {{"alertname", "ThreadPool Spike"}};
    struct payload_webhook_group g = {.receiver = "webhook",
                                      .external_url = "http://vm:19093",
                                      .group_labels = gl,
                                      .ngroup_labels = 1};
    want = captured("alertmanager_webhook_firing.json");
    got = payload_webhook(&g, c.n, (size_t)c.cnt);
    CHECK_EQ_STR(html_unescaped(got), want);
    free(got);
    free(want);
    collect_reset(&c);
    /* still firing 1s later: not re-sent (resend delay 1m) */
    CHECK(alert_rule_eval(r, t0 + 1000, &s, 1, 0, NULL, &e) == 0);
    CHECK(alert_rule_sends(r, t0 + 1000, 60000, 1000, "http://vm:19090", on_send, &c) == 0);
    /* gone at +2s: resolved and sent at once */
    CHECK(alert_rule_eval(r, t0 + 2000, NULL, 0, 0, NULL, &e) == 0);
    CHECK(alert_rule_sends(r, t0 + 2000, 60000, 1000, "http://vm:19090", on_send, &c) == 1);
    want = captured("prometheus_to_alertmanager_resolved.json");
    got = payload_am_alerts(c.n, (size_t)c.cnt, NULL, 0);
    CHECK_EQ_STR(html_unescaped(got), want);
    free(got);
    free(want);
    want = captured("alertmanager_webhook_resolved.json");
    got = payload_webhook(&g, c.n, (size_t)c.cnt);
    CHECK_EQ_STR(html_unescaped(got), want);
    free(got);
    free(want);
    collect_reset(&c);
    alert_rule_free(r);
}

static void test_state_machine(void) {
    struct rulefile_kv lab[] = {
        kv("severity", "{{ if gt $value 50.0 }}page{{ else }}ticket{{ end }}"), kv("empty", "")};
    struct rulefile_kv ann[] = {kv("summary", "{{ $labels.instance }} at {{ $value }}")};
    struct alert_rule *r = mkrule("Q", "q > 40", 5000, 0, lab, 2, ann, 1);
    struct alert_sample s = {web, 3, 45};
    struct perr e = {0};
    CHECK_EQ_INT(alert_rule_state(r), ALERT_INACTIVE);
    CHECK(alert_rule_eval(r, 0, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_PENDING);
    const struct alert *a = alert_rule_alert(r, 0);
    CHECK_EQ_INT(a->nlabels, 4); /* alertname instance job severity; no __name__, no empty */
    CHECK_EQ_STR(a->labels[0].name, "alertname");
    CHECK_EQ_STR(a->labels[3].value, "ticket");
    CHECK_EQ_STR(a->annotations[0].value, "webserver:5000 at 45");
    struct series_count sc = {0};
    alert_rule_series(r, on_series, &sc);
    CHECK(sc.alerts_pending == 1 && sc.alerts_firing == 0 && sc.for_state == 1 &&
          sc.for_value == 0);
    /* 4s: still pending; annotation refreshed with the new value; labels fixed */
    s.value = 47;
    CHECK(alert_rule_eval(r, 4000, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_PENDING);
    CHECK_EQ_STR(alert_rule_alert(r, 0)->annotations[0].value, "webserver:5000 at 47");
    struct collect c = {0};
    CHECK_EQ_INT(alert_rule_sends(r, 4000, 60000, 1000, "", on_send, &c), 0);
    /* 5s: for reached -> firing, FiredAt=5s */
    CHECK(alert_rule_eval(r, 5000, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_FIRING);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->fired_at, 5000);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->active_at, 0);
    CHECK_EQ_INT(alert_rule_sends(r, 5000, 60000, 1000, "", on_send, &c), 1);
    CHECK_EQ_INT(c.n[0].ends_at, 5000 + 4 * 60000);
    CHECK_EQ_INT(c.n[0].starts_at, 5000);
    collect_reset(&c);
    /* value 60: the templated label would change, so it is a different alert; the old one
     * resolves */
    s.value = 60;
    CHECK(alert_rule_eval(r, 6000, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_nalerts(r), 2);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_PENDING);
    /* resend rule: 60s is not > 60s; 61s is */
    CHECK_EQ_INT(alert_rule_sends(r, 6000, 60000, 1000, "", on_send, &c), 1); /* resolved */
    CHECK(c.n[0].resolved && c.n[0].ends_at == 6000);
    collect_reset(&c);
    CHECK_EQ_INT(alert_rule_sends(r, 66000, 60000, 1000, "", on_send, &c), 0);
    CHECK_EQ_INT(alert_rule_sends(r, 66001, 60000, 1000, "", on_send, &c), 1);
    collect_reset(&c);
    /* resolved alerts are kept 15 minutes, then dropped */
    CHECK(alert_rule_eval(r, 6000 + 15 * 60000, NULL, 0, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_nalerts(r), 1);
    CHECK(alert_rule_eval(r, 6001 + 15 * 60000, NULL, 0, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_nalerts(r), 0);
    CHECK_EQ_INT(alert_rule_health(r), ALERT_HEALTH_OK);
    alert_rule_free(r);
}

static void test_keep_firing_limit_dups(void) {
    struct alert_rule *r = mkrule("K", "x", 0, 10000, NULL, 0, NULL, 0);
    struct alert_sample s = {web, 3, 1};
    struct perr e = {0};
    CHECK(alert_rule_eval(r, 0, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_FIRING); /* for: 0 fires at once */
    CHECK(alert_rule_eval(r, 1000, NULL, 0, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_FIRING);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->keep_firing_since, 1000);
    char *js = payload_api_alerts((const struct alert_rule *const *)&r, 1);
    CHECK(js && strstr(js, "\"keepFiringSince\":\"1970-01-01T00:00:01Z\",\"value\":\"1e+00\""));
    free(js);
    {
        /* slot evaluations carry sub-ms ns: printed as Go's RFC3339Nano, trailing zeros cut */
        struct alert_rule *r2 = mkrule("K2", "x", 0, 10000, NULL, 0, NULL, 0);
        struct alert_env env = {.ts_ns = 467800};
        CHECK(alert_rule_eval(r2, 1210, &s, 1, 0, &env, &e) == 0);
        js = payload_api_alerts((const struct alert_rule *const *)&r2, 1);
        CHECK(js && strstr(js, "\"activeAt\":\"1970-01-01T00:00:01.2104678Z\""));
        free(js);
        alert_rule_free(r2);
    }
    CHECK(alert_rule_eval(r, 10999, NULL, 0, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_FIRING);
    CHECK(alert_rule_eval(r, 11000, NULL, 0, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(r), ALERT_INACTIVE);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->resolved_at, 11000);
    /* seen again: a new alert (new ActiveAt) */
    CHECK(alert_rule_eval(r, 12000, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->active_at, 12000);
    CHECK_EQ_INT(alert_rule_nalerts(r), 1);
    /* condition reappearing while kept firing resets keepFiringSince */
    CHECK(alert_rule_eval(r, 13000, NULL, 0, 0, NULL, &e) == 0);
    CHECK(alert_rule_eval(r, 14000, &s, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->keep_firing_since, ALERT_TS_NONE);
    CHECK_EQ_INT(alert_rule_alert(r, 0)->active_at, 12000);

    /* duplicates after dropping __name__ */
    struct re_label a1[] = {{"__name__", "a"}, {"job", "x"}};
    struct re_label a2[] = {{"__name__", "b"}, {"job", "x"}};
    struct alert_sample two[] = {{a1, 2, 1}, {a2, 2, 2}};
    CHECK(alert_rule_eval(r, 15000, two, 2, 0, NULL, &e) == -EINVAL);
    CHECK(strstr(e.msg, "same labelset after applying alert labels") != NULL);
    CHECK_EQ_INT(alert_rule_health(r), ALERT_HEALTH_ERR);
    CHECK_EQ_INT(alert_rule_nalerts(r), 1); /* state unchanged */
    /* limit */
    struct re_label b1[] = {{"job", "y"}};
    struct alert_sample lim[] = {{a1, 2, 1}, {b1, 1, 2}};
    CHECK(alert_rule_eval(r, 16000, lim, 2, 1, NULL, &e) == -EINVAL);
    CHECK_EQ_STR(e.msg, "exceeded limit of 1 with 3 alerts"); /* + the one kept firing */
    CHECK_EQ_INT(alert_rule_nalerts(r), 0);
    CHECK(alert_rule_eval(r, 17000, lim, 2, 2, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_health(r), ALERT_HEALTH_OK);

    /* reload: carry state to an identical new rule */
    struct alert_rule *r2 = mkrule("K", "x", 0, 10000, NULL, 0, NULL, 0);
    struct alert_rule *r3 = mkrule("K", "x + 1", 0, 10000, NULL, 0, NULL, 0);
    CHECK(alert_rule_same(r, r2));
    CHECK(!alert_rule_same(r, r3));
    CHECK(alert_rule_copy_state(r2, r) == 0);
    CHECK_EQ_INT(alert_rule_nalerts(r2), 2);
    CHECK_EQ_INT(alert_rule_alert(r2, 0)->active_at, 17000);
    /* restore for-state from ALERTS_FOR_STATE */
    struct rulefile_kv none[1];
    (void)none;
    struct alert_rule *p = mkrule("P", "x", 600000, 0, NULL, 0, NULL, 0);
    struct re_label jl[] = {{"job", "y"}};
    struct alert_sample ps = {jl, 1, 1};
    CHECK(alert_rule_eval(p, 100000, &ps, 1, 0, NULL, &e) == 0);
    struct re_label want[] = {{"alertname", "P"}, {"job", "y"}};
    CHECK_EQ_INT(alert_rule_restore_for_state(p, want, 2, 1000), 1);
    CHECK(alert_rule_eval(p, 601000, &ps, 1, 0, NULL, &e) == 0);
    CHECK_EQ_INT(alert_rule_state(p), ALERT_FIRING);

    /* /api/v1/rules shape */
    struct payload_rule pr[2] = {
        {.alert = r, .eval_seconds = 0.0005, .last_eval_ms = 17000},
        {.name = "job:x:sum", .query = "sum(x)", .health = ALERT_HEALTH_OK, .last_eval_ms = 17000}};
    struct payload_rule_group g = {.name = "G",
                                   .file = "/etc/r.yml",
                                   .interval_ms = 30000,
                                   .rules = pr,
                                   .nrules = 2,
                                   .last_eval_ms = 17001,
                                   .eval_seconds = 0.0012};
    js = payload_api_rules(&g, 1);
    CHECK(js &&
          strstr(js, "{\"status\":\"success\",\"data\":{\"groups\":[{\"name\":\"G\",\"file\":"
                     "\"/etc/r.yml\",\"rules\":[{\"state\":\"firing\",\"name\":\"K\",\"query\":"
                     "\"x\",\"duration\":0,\"keepFiringFor\":10,\"labels\":{},") == js);
    CHECK(js && strstr(js, "\"health\":\"ok\",\"evaluationTime\":0.0005,\"lastEvaluation\":"
                           "\"1970-01-01T00:00:17Z\",\"type\":\"alerting\"}"));
    CHECK(js &&
          strstr(js, "{\"name\":\"job:x:sum\",\"query\":\"sum(x)\",\"health\":"
                     "\"ok\",\"evaluationTime\":0,\"lastEvaluation\":\"1970-01-01T00:00:17Z\","
                     "\"type\":\"recording\"}],\"interval\":30,\"limit\":0,"
                     "\"evaluationTime\":0.0012,\"lastEvaluation\":"
                     "\"1970-01-01T00:00:17.001Z\"}]}}"));
    free(js);
    alert_rule_free(p);
    alert_rule_free(r3);
    alert_rule_free(r2);
    alert_rule_free(r);
}

int main(void) {
    test_captured_payloads();
    test_state_machine();
    test_keep_firing_limit_dups();
    /* Alertmanager fingerprint of the empty set and a JSON escaping check */
    CHECK_EQ_INT((long long)payload_fingerprint(NULL, 0), (long long)14695981039346656037ULL);
    struct re_label l[] = {{"alertname", "a<b>&\"c\""}};
    struct alert_notice n = {.labels = l, .nlabels = 1, .starts_at = 0, .ends_at = 1500};
    char *js = payload_am_alerts(&n, 1, l, 1);
    CHECK_EQ_STR(js, "[{\"endsAt\":\"1970-01-01T00:00:01.500Z\",\"startsAt\":\"1970-01-01T00:00:00."
                     "000Z\",\"generatorURL\":\"\",\"labels\":{\"alertname\":"
                     "\"a\\u003cb\\u003e\\u0026\\\"c\\\"\"}}]"); /* encoding/json escapes HTML */
    free(js);
    return tap_done();
}
