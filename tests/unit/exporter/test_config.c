/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for promlet.yml parsing: values, defaults, and positioned errors. */
#include "config.h"
#include "defaults.h"
#include "tap.h"

#include <errno.h>

static struct perr err;

static struct config *parse(const char *text) {
    struct config *c = NULL;
    memset(&err, 0, sizeof(err));
    config_parse("t.yml", text, strlen(text), &c, &err);
    return c;
}

static bool fails_at(const char *text, int line, int col, const char *needle) {
    struct config *c = parse(text);
    bool ok = !c && err.line == line && err.col == col && strstr(err.msg, needle);
    if (!ok) printf("# got %d:%d: %s\n", err.line, err.col, err.msg);
    config_free(c);
    return ok;
}

int main(void) {
    int64_t ms;
    CHECK(config_parse_duration("1s", &ms) == 0 && ms == 1000);
    CHECK(config_parse_duration("1m30s", &ms) == 0 && ms == 90000);
    CHECK(config_parse_duration("100ms", &ms) == 0 && ms == 100);
    CHECK(config_parse_duration("1h1m1s1ms", &ms) == 0 && ms == 3661001);
    CHECK(config_parse_duration("2d", &ms) == 0 && ms == 172800000);
    CHECK(config_parse_duration("1w", &ms) == 0 && ms == 604800000);
    CHECK(config_parse_duration("1y", &ms) == 0 && ms == 31536000000);
    CHECK(config_parse_duration("0", &ms) == 0 && ms == 0);
    CHECK(config_parse_duration("1s1m", &ms) == -EINVAL); /* units largest first */
    CHECK(config_parse_duration("1x", &ms) == -EINVAL);
    CHECK(config_parse_duration("s", &ms) == -EINVAL);
    CHECK(config_parse_duration("", &ms) == -EINVAL);
    CHECK(config_parse_duration("1.5s", &ms) == -EINVAL);
    CHECK(config_parse_duration("99999999999999999999s", &ms) == -EINVAL);
    size_t b;
    CHECK(config_parse_bytes("32MiB", &b) == 0 && b == 32u << 20);
    CHECK(config_parse_bytes("512", &b) == 0 && b == 512);
    CHECK(config_parse_bytes("1KB", &b) == 0 && b == 1024);
    CHECK(config_parse_bytes("1QB", &b) == -EINVAL);

    struct config *c = parse("global:\n"
                             "  evaluation_interval: 1s\n"
                             "  external_labels: {node: worker-1, az: b}\n"
                             "rule_files: [\"rules/*.rules.yml\", x.yml]\n"
                             "alerting:\n"
                             "  alertmanagers:\n"
                             "    - static_configs: [{targets: [\"127.0.0.1:9093\"]}]\n"
                             "  webhook_configs:\n"
                             "    - url: http://127.0.0.1:5001/alert\n"
                             "      send_resolved: false\n"
                             "storage: {retention: 15m, max_series: 100000}\n");
    CHECK(c != NULL);
    if (c) {
        CHECK_EQ_INT(c->evaluation_interval_ms, 1000);
        CHECK_EQ_INT(c->nexternal, 2);
        CHECK_EQ_STR(c->external_labels[0].name, "az"); /* sorted */
        CHECK_EQ_STR(c->external_labels[1].value, "worker-1");
        CHECK_EQ_INT(c->nrule_files, 2);
        CHECK_EQ_STR(c->rule_files[1], "x.yml");
        CHECK_EQ_INT(c->nalertmanagers, 1);
        CHECK_EQ_STR(c->alertmanagers[0].targets[0], "127.0.0.1:9093");
        CHECK_EQ_STR(c->alertmanagers[0].scheme, "http");
        CHECK_EQ_INT(c->nwebhooks, 1);
        CHECK_EQ_STR(c->webhooks[0].url, "http://127.0.0.1:5001/alert");
        CHECK(!c->webhooks[0].send_resolved);
        CHECK_EQ_INT(c->retention_ms, 900000);
        CHECK_EQ_INT(c->max_series, 100000);
        CHECK_EQ_STR(c->dir, ".");
    }
    config_free(c);

    /* Empty file: every default. */
    c = parse("");
    CHECK(c && c->evaluation_interval_ms == DEF_EVALUATION_INTERVAL_MS &&
          c->retention_ms == DEF_RETENTION_MS);
    config_free(c);
    c = parse("# only a comment\n");
    CHECK(c != NULL);
    config_free(c);
    /* A webhook defaults to send_resolved: true, as Alertmanager. */
    c = parse("alerting:\n  webhook_configs:\n    - url: http://h:1/\n");
    CHECK(c && c->webhooks[0].send_resolved);
    config_free(c);

    /* Errors carry line:column of the offending node and name the key. */
    CHECK(fails_at("global:\n  evaluation_intervall: 1s\n", 2, 3, "evaluation_intervall"));
    CHECK(fails_at("global:\n  evaluation_interval: 1x\n", 2, 24, "not a valid duration"));
    CHECK(fails_at("storage:\n  retention: 0\n", 2, 14, "greater than 0"));
    CHECK(fails_at("foo: 1\n", 1, 1, "field foo not found"));
    CHECK(fails_at("global:\n  scrape_interval: [1s\n", 3, 1, "yaml:"));
    CHECK(fails_at("global: {a: 1\n", 2, 1, "yaml:"));
    CHECK(fails_at("storage:\n  max_series: 1\n  max_series: 2\n", 3, 3, "already set"));
    CHECK(fails_at("storage:\n  max_series: -1\n", 2, 15, "max_series"));
    CHECK(fails_at("global:\n  external_labels: {0bad: x}\n", 2, 21, "not a valid label name"));
    CHECK(fails_at("alerting:\n  webhook_configs:\n    - send_resolved: true\n", 3, 7, "url"));
    CHECK(fails_at("alerting:\n  webhook_configs:\n    - url: ftp://x/\n", 3, 12, "scheme"));
    CHECK(fails_at("alerting:\n  alertmanagers:\n    - static_configs: [{targetz: []}]\n", 3, 25,
                   "targetz"));
    CHECK(fails_at("- a\n- b\n", 1, 1, "mapping"));
    CHECK(fails_at("a: 1\n---\nb: 2\n", 1, 1, "field a not found"));
    CHECK(fails_at("global: {}\n---\nglobal: {}\n", 3, 1, "one YAML document"));

    struct config *d = NULL;
    CHECK(config_load("/nonexistent/promlet.yml", &d, &err) == -ENOENT);
    CHECK(strstr(err.msg, "No such file") != NULL);
    return tap_done();
}
