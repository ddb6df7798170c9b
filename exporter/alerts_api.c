/* SPDX-License-Identifier: Apache-2.0 */
/* The alert APIs: Prometheus' /api/v1/alerts and /api/v1/rules, and promlet's /alerts page. */
#include "alerts_api.h"

#include "engine.h"
#include "http.h"
#include "jsonw.h"
#include "ruleeval.h"
#include "sbuf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

struct out {
    struct sbuf *b;
    bool html;
};

static void html_str(struct sbuf *b, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<':
            sbuf_adds(b, "&lt;");
            break;
        case '>':
            sbuf_adds(b, "&gt;");
            break;
        case '&':
            sbuf_adds(b, "&amp;");
            break;
        case '"':
            sbuf_adds(b, "&quot;");
            break;
        default:
            sbuf_addc(b, *s);
        }
    }
}

/* RFC 3339 with milliseconds in UTC, as Prometheus' API prints times. */
static void rfc3339(char *buf, size_t len, int64_t ms) {
    if (ms == ALERT_TS_NONE) {
        snprintf(buf, len, "0001-01-01T00:00:00Z");
        return;
    }
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

static void labels_text(struct sbuf *b, const struct re_label *l, size_t n) {
    sbuf_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_adds(b, ", ");
        html_str(b, l[i].name);
        sbuf_adds(b, "=\"");
        html_str(b, l[i].value);
        sbuf_addc(b, '"');
    }
    sbuf_addc(b, '}');
}

/* ---- /api/v1/alerts, /api/v1/rules ------------------------------------------------------------
 */

static int v_api_alerts(void *arg, const struct engine_view *v) {
    char *s = payload_api_alerts(v->alerts, v->nalerts);
    if (!s) return -ENOMEM;
    int rc = sbuf_adds(arg, s);
    free(s);
    return rc;
}

/* /api/v1/rules with Prometheus's ?type=alert|record (any case): groups keep their place,
 * their rules are filtered. */
struct rules_req {
    struct sbuf *out;
    bool alerts, records;
};

static int v_api_rules(void *arg, const struct engine_view *v) {
    struct rules_req *rq = arg;
    struct payload_rule_group *g = NULL;
    struct payload_rule *r = NULL;
    size_t total = 0;
    for (size_t i = 0; i < v->ngroups; i++)
        total += v->groups[i].nrules;
    if (!(rq->alerts && rq->records)) {
        g = calloc(v->ngroups ? v->ngroups : 1, sizeof(*g));
        r = calloc(total ? total : 1, sizeof(*r));
        if (!g || !r) {
            free(g);
            free(r);
            return -ENOMEM;
        }
        size_t k = 0;
        for (size_t i = 0; i < v->ngroups; i++) {
            g[i] = v->groups[i];
            g[i].rules = r + k;
            g[i].nrules = 0;
            for (size_t j = 0; j < v->groups[i].nrules; j++) {
                const struct payload_rule *pr = &v->groups[i].rules[j];
                if (pr->alert ? rq->alerts : rq->records) {
                    r[k++] = *pr;
                    g[i].nrules++;
                }
            }
        }
    }
    char *s = payload_api_rules(g ? g : v->groups, v->ngroups);
    free(g);
    free(r);
    if (!s) return -ENOMEM;
    int rc = sbuf_adds(rq->out, s);
    free(s);
    return rc;
}

static void answer(struct agent *a, struct http_resp *resp,
                   int (*fn)(void *, const struct engine_view *), void *arg, const char *ctype) {
    if (!a->engine) {
        http_error(resp, 503, "the rule engine is not running");
        return;
    }
    int rc = engine_view(a->engine, fn, arg);
    if (rc) {
        sbuf_reset(&resp->body);
        http_error(resp, 503, "building the response failed: %s", strerror(-rc));
        return;
    }
    resp->content_type = ctype;
    resp->gzip_ok = true;
    /* The JSON APIs compress as Prometheus's do; the /alerts page as before. */
    resp->api_compress = !strcmp(ctype, "application/json");
}

static void h_api_alerts(void *arg, const struct http_req *req, struct http_resp *resp) {
    answer(arg, resp, v_api_alerts, &resp->body, "application/json");
    http_cors(req, resp);
}

static void h_api_rules(void *arg, const struct http_req *req, struct http_resp *resp) {
    const char *type = http_arg(req, "type");
    struct rules_req rq = {&resp->body, true, true};
    if (type && *type) {
        if (!strcasecmp(type, "alert")) {
            rq.records = false;
        } else if (!strcasecmp(type, "record")) {
            rq.alerts = false;
        } else {
            /* Prometheus's invalidParamError, as bad_data JSON; the value is lowercased
             * and quoted as Go's %q does for plain text. */
            char msg[400];
            size_t n = (size_t)snprintf(msg, sizeof(msg),
                                        "invalid parameter \"type\": not supported value \"");
            for (const char *c = type; *c && n + 4 < sizeof(msg); c++) {
                if (*c == '"' || *c == '\\') msg[n++] = '\\';
                msg[n++] = (char)tolower((unsigned char)*c);
            }
            msg[n++] = '"';
            msg[n] = '\0';
            sbuf_adds(&resp->body, "{\"status\":\"error\",\"errorType\":\"bad_data\",\"error\":");
            jsonw_str(&resp->body, msg);
            sbuf_addc(&resp->body, '}');
            resp->status = 400;
            resp->content_type = "application/json";
            resp->api_compress = true;
            http_cors(req, resp);
            return;
        }
    }
    answer(arg, resp, v_api_rules, &rq, "application/json");
    http_cors(req, resp);
}

/* ---- /alerts ------------------------------------------------------------------------------------
 */

/* JSON: a list of the active (pending and firing) alerts. */
static int v_alerts_json(void *arg, const struct engine_view *v) {
    struct sbuf *b = arg;
    bool first = true;
    sbuf_addc(b, '[');
    for (size_t r = 0; r < v->nalerts; r++)
        for (size_t i = 0; i < alert_rule_nalerts(v->alerts[r]); i++) {
            const struct alert *al = alert_rule_alert(v->alerts[r], i);
            if (al->state == ALERT_INACTIVE) continue;
            char ts[40], val[40];
            rfc3339(ts, sizeof(ts), al->active_at);
            template_format_float(val, sizeof(val), al->value);
            sbuf_adds(b, first ? "\n" : ",\n");
            first = false;
            sbuf_adds(b, "{\"state\":");
            jsonw_str(b, alert_state_string(al->state));
            sbuf_adds(b, ",\"labels\":");
            jsonw_labels(b, al->labels, al->nlabels);
            sbuf_adds(b, ",\"annotations\":");
            jsonw_labels(b, al->annotations, al->nannotations);
            sbuf_adds(b, ",\"activeAt\":");
            jsonw_str(b, ts);
            sbuf_adds(b, ",\"value\":");
            jsonw_str(b, val);
            sbuf_addc(b, '}');
        }
    return sbuf_adds(b, "\n]\n");
}

static const char *health_string(enum alert_health h) {
    return h == ALERT_HEALTH_OK ? "ok" : h == ALERT_HEALTH_ERR ? "err" : "unknown";
}

/* HTML: rules with their state and last evaluation, then the active alerts; no JavaScript. */
static int v_alerts_html(void *arg, const struct engine_view *v) {
    struct sbuf *b = arg;
    sbuf_adds(b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
                 "<meta http-equiv=\"refresh\" content=\"5\">"
                 "<title>promlet alerts</title><style>"
                 "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse;"
                 "margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:.2em .5em;"
                 "text-align:left;vertical-align:top}.firing{background:#f8d7da}"
                 ".pending{background:#fff3cd}.inactive{background:#d4edda}"
                 ".err{color:#a00}code{white-space:pre-wrap}</style></head><body>\n"
                 "<h1>promlet alerts</h1>\n<h2>Rules</h2>\n");
    for (size_t g = 0; g < v->ngroups; g++) {
        const struct payload_rule_group *pg = &v->groups[g];
        char last[40];
        rfc3339(last, sizeof(last), pg->last_eval_ms);
        sbuf_adds(b, "<h3>");
        html_str(b, pg->name);
        sbuf_adds(b, "</h3><p>");
        html_str(b, pg->file);
        sbuf_printf(b, " &middot; every %gs &middot; last evaluation %s (%.6fs)</p>\n",
                    (double)pg->interval_ms / 1e3,
                    pg->last_eval_ms == ALERT_TS_NONE ? "never" : last, pg->eval_seconds);
        sbuf_adds(b, "<table><tr><th>rule</th><th>state</th><th>health</th>"
                     "<th>last evaluation</th><th>expression</th></tr>\n");
        for (size_t r = 0; r < pg->nrules; r++) {
            const struct payload_rule *pr = &pg->rules[r];
            const char *name = pr->alert ? alert_rule_name(pr->alert) : pr->name;
            const char *expr = pr->alert ? alert_rule_expr(pr->alert) : pr->query;
            const char *state =
                pr->alert ? alert_state_string(alert_rule_state(pr->alert)) : "recording";
            enum alert_health h = pr->alert ? alert_rule_health(pr->alert) : pr->health;
            const char *err = pr->alert ? alert_rule_last_error(pr->alert)
                                        : (pr->last_error ? pr->last_error : "");
            rfc3339(last, sizeof(last), pr->last_eval_ms);
            sbuf_printf(b, "<tr class=\"%s\"><td>", state);
            html_str(b, name);
            sbuf_printf(b, "</td><td>%s</td><td class=\"%s\">%s", state, health_string(h),
                        health_string(h));
            if (err && *err) {
                sbuf_adds(b, ": ");
                html_str(b, err);
            }
            sbuf_printf(b, "</td><td>%s</td><td><code>",
                        pr->last_eval_ms == ALERT_TS_NONE ? "never" : last);
            html_str(b, expr);
            sbuf_adds(b, "</code></td></tr>\n");
        }
        sbuf_adds(b, "</table>\n");
    }
    if (!v->ngroups) sbuf_adds(b, "<p>No rules loaded.</p>\n");
    sbuf_adds(b, "<h2>Active alerts</h2>\n<table><tr><th>state</th><th>labels</th>"
                 "<th>annotations</th><th>active since</th><th>value</th></tr>\n");
    size_t n = 0;
    for (size_t r = 0; r < v->nalerts; r++)
        for (size_t i = 0; i < alert_rule_nalerts(v->alerts[r]); i++) {
            const struct alert *al = alert_rule_alert(v->alerts[r], i);
            if (al->state == ALERT_INACTIVE) continue;
            char ts[40], val[40];
            rfc3339(ts, sizeof(ts), al->active_at);
            template_format_float(val, sizeof(val), al->value);
            const char *st = alert_state_string(al->state);
            sbuf_printf(b, "<tr class=\"%s\"><td>%s</td><td>", st, st);
            labels_text(b, al->labels, al->nlabels);
            sbuf_adds(b, "</td><td>");
            labels_text(b, al->annotations, al->nannotations);
            sbuf_printf(b, "</td><td>%s</td><td>%s</td></tr>\n", ts, val);
            n++;
        }
    sbuf_adds(b, "</table>\n");
    if (!n) sbuf_adds(b, "<p>No active alerts.</p>\n");
    return sbuf_adds(b, "</body></html>\n");
}

static void h_alerts(void *arg, const struct http_req *req, struct http_resp *resp) {
    if (http_accepts(req, "text/html")) {
        answer(arg, resp, v_alerts_html, &resp->body, "text/html; charset=utf-8");
    } else {
        answer(arg, resp, v_alerts_json, &resp->body, "application/json");
        resp->api_compress = false; /* promlet's own page, not Prometheus's API */
    }
}

static int api_start(struct agent *a, struct perr *err) {
    const struct http_route routes[] = {
        {"/api/v1/alerts", false, HTTP_GET | HTTP_NO_HEAD, "/api/v1/alerts", h_api_alerts, a, 0},
        {"/api/v1/rules", false, HTTP_GET | HTTP_NO_HEAD, "/api/v1/rules", h_api_rules, a, 0},
        {"/alerts", false, HTTP_GET, "/alerts", h_alerts, a, 0},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (http_route(a->http, &routes[i]))
            return perr_set(err, 0, 0, "cannot register %s", routes[i].path), -E2BIG;
    return 0;
}

const struct agent_module mod_alerts_api = {
    .name = "alerts_api",
    .start = api_start,
};
