/* SPDX-License-Identifier: Apache-2.0 */
/* Flag parsing. Collector flags are delegated to collector.c (col_options_set). */
#include "flags.h"
#include "collector.h"
#include "config.h"
#include "defaults.h"
#include "sbuf.h"
#include "version.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum ftype { F_STRING, F_BOOL, F_LIST, F_LEVEL, F_FORMAT, F_BYTES, F_FLOAT };

struct fdef {
    const char *name;
    enum ftype type;
    size_t off;
    const char *help;
    const char *def; /* shown in --help */
};

#define OFF(field) offsetof(struct flags, field)

static const struct fdef defs[] = {
    {"config.file", F_STRING, OFF(config_file), "promlet configuration file path.",
     DEF_CONFIG_FILE},
    {"web.listen-address", F_LIST, OFF(listen),
     "Address to listen on for the web interface, API and telemetry; repeatable.",
     DEF_LISTEN_ADDRESS},
    {"web.max-request-bytes", F_BYTES, OFF(max_request_bytes),
     "Largest request body accepted (413 beyond).", "32MiB"},
    {"web.config.file", F_STRING, OFF(web_config_file),
     "Path to a configuration file that can enable TLS or authentication (exporter-toolkit "
     "format).",
     ""},
    {"web.enable-lifecycle", F_BOOL, OFF(web_enable_lifecycle),
     "Enable reload via HTTP request (POST /-/reload), as Prometheus.", "false"},
    {"rules.event-evaluation", F_BOOL, OFF(rules_event_evaluation),
     "Also evaluate a rule group as soon as ingestion touches a metric it selects; with "
     "--no-rules.event-evaluation groups are evaluated on their interval only, as Prometheus "
     "(alert timing of the alert-generator compliance tester).",
     "true"},
    {"web.external-url", F_STRING, OFF(web_external_url),
     "The URL under which promlet is externally reachable (generatorURL of alerts).", ""},
    {"log.level", F_LEVEL, OFF(log_level),
     "Only log messages with the given severity or above. One of: [debug, info, warn, error]",
     "info"},
    {"log.format", F_FORMAT, OFF(log_format),
     "Output format of log messages. One of: [logfmt, json]", "logfmt"},
    {"promql.compat", F_STRING, 0,
     "PromQL semantics: v3 (default; windows exclude their start) or v2 (Prometheus 2.x).", "v3"},
    {"run", F_STRING, OFF(run_pattern),
     "test rules: run only test groups whose name matches this regex.", ""},
    {"ignore-unknown-fields", F_BOOL, OFF(ignore_unknown_fields),
     "test rules: ignore unknown fields in test files.", "false"},
    {"float-tolerance", F_FLOAT, OFF(float_tolerance),
     "test rules: relative tolerance when comparing floats (0: exact, as promtool).", "0"},
};
#define NDEFS (sizeof(defs) / sizeof(defs[0]))

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "promlet: error: %s, try --help\n", msg);
    return -EINVAL;
}

void flags_usage(void) {
    printf("usage: promlet [<flags>] [<command> [<args> ...]]\n\n"
           "promlet: node metrics, push, remote write and alerting rules in one daemon.\n\n"
           "Commands:\n"
           "  (none)                      run the daemon\n"
           "  check config FILE...        validate config files (and the rule files they name)\n"
           "  check rules FILE...         validate rule files, as promtool check rules\n"
           "  test rules FILE...          run rule unit tests, as promtool test rules\n\n"
           "Flags:\n"
           "  -h, --help                  Show context-sensitive help.\n"
           "      --version               Show application version.\n");
    for (size_t i = 0; i < NDEFS; i++) {
        char left[64];
        snprintf(left, sizeof(left), "--%s%s", defs[i].type == F_BOOL ? "[no-]" : "", defs[i].name);
        if (defs[i].type != F_BOOL) {
            size_t n = strlen(left);
            snprintf(left + n, sizeof(left) - n, "=%s", "VALUE");
        }
        printf("      %-40s %s (default: %s)\n", left, defs[i].help, defs[i].def);
    }
    struct sbuf b;
    sbuf_init(&b);
    col_options_usage(&b);
    if (b.data) fputs(b.data, stdout);
    sbuf_fini(&b);
}

static int set_flag(struct flags *f, const struct fdef *d, const char *val, bool negated) {
    char *base = (char *)f;
    switch (d->type) {
    case F_STRING:
        if (!strcmp(d->name, "promql.compat")) {
            if (!strcmp(val, "v2"))
                f->promql_compat_v2 = true;
            else if (!strcmp(val, "v3"))
                f->promql_compat_v2 = false;
            else
                return fail("invalid value \"%s\" for --promql.compat (v2 or v3)", val);
            return 0;
        }
        *(const char **)(void *)(base + d->off) = val;
        return 0;
    case F_BOOL:
        *(bool *)(void *)(base + d->off) = !negated;
        return 0;
    case F_LIST:
        if (f->nlisten == sizeof(f->listen) / sizeof(f->listen[0]))
            return fail("too many --%s flags", d->name);
        f->listen[f->nlisten++] = val;
        return 0;
    case F_LEVEL:
        if (log_parse_level(val, &f->log_level))
            return fail("invalid log level \"%s\" (debug, info, warn, error)", val);
        return 0;
    case F_FORMAT:
        if (log_parse_format(val, &f->log_format))
            return fail("invalid log format \"%s\" (logfmt, json)", val);
        return 0;
    case F_BYTES:
        if (config_parse_bytes(val, (size_t *)(void *)(base + d->off)))
            return fail("invalid size \"%s\"", val);
        return 0;
    case F_FLOAT: {
        char *end;
        double v = strtod(val, &end);
        if (*end || v < 0) return fail("invalid number \"%s\"", val);
        *(double *)(void *)(base + d->off) = v;
        return 0;
    }
    }
    return 0;
}

int flags_parse(struct flags *f, int argc, char **argv) {
    memset(f, 0, sizeof(*f));
    f->config_file = DEF_CONFIG_FILE;
    f->log_level = LOG_LEVEL_INFO;
    f->log_format = LOG_FORMAT_LOGFMT;
    f->max_request_bytes = DEF_MAX_REQUEST_BYTES;
    f->web_external_url = "";
    f->rules_event_evaluation = true;
    f->collectors = col_options_new();
    f->args = calloc((size_t)argc + 1, sizeof(char *));
    if (!f->collectors || !f->args) {
        fprintf(stderr, "promlet: error: out of memory\n");
        return -ENOMEM;
    }
    bool only_args = false;
    for (int i = 1; i < argc; i++) {
        char *a = argv[i];
        if (only_args || a[0] != '-' || !a[1]) {
            f->args[f->nargs++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_args = true;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            f->cmd = CMD_HELP;
            return 0;
        }
        if (!strcmp(a, "--version")) {
            f->cmd = CMD_VERSION;
            return 0;
        }
        if (a[1] != '-') return fail("unknown short flag '%s'", a);
        char name[128];
        const char *val = NULL;
        const char *eq = strchr(a + 2, '=');
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) return fail("unknown long flag '%s'", a);
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        if (eq) val = eq + 1;
        bool negated = !strncmp(name, "no-", 3);
        const struct fdef *d = NULL;
        for (size_t k = 0; k < NDEFS && !d; k++)
            if (!strcmp(defs[k].name, name) ||
                (negated && defs[k].type == F_BOOL && !strcmp(defs[k].name, name + 3)))
                d = &defs[k];
        if (d) {
            if (d->type == F_BOOL) {
                if (val && strcmp(val, "true") && strcmp(val, "false"))
                    return fail("invalid boolean value for '%s'", a);
                if (val && !strcmp(val, "false")) negated = !negated;
            } else if (!val) {
                if (i + 1 >= argc) return fail("expected argument for flag '--%s'", name);
                val = argv[++i];
            }
            if (set_flag(f, d, val, negated)) return -EINVAL;
            continue;
        }
        /* Collector flags: as given first; a flag that needs a value and got none is
         * retried with the next argument ("--collector.textfile.directory DIR"). */
        struct perr err = {0};
        int rc = col_options_set(f->collectors, name, val, &err);
        if (rc < 0 && !val && i + 1 < argc && argv[i + 1][0] != '-') {
            val = argv[++i];
            rc = col_options_set(f->collectors, name, val, &err);
        }
        if (rc == 1) continue;
        if (rc < 0) return fail("%s", err.msg[0] ? err.msg : a);
        return fail("unknown long flag '%s'", a);
    }
    if (!f->nlisten) f->listen[f->nlisten++] = DEF_LISTEN_ADDRESS;
    if (f->nargs) {
        const char *c0 = f->args[0], *c1 = f->nargs > 1 ? f->args[1] : "";
        if (!strcmp(c0, "check") && !strcmp(c1, "config"))
            f->cmd = CMD_CHECK_CONFIG;
        else if (!strcmp(c0, "check") && !strcmp(c1, "rules"))
            f->cmd = CMD_CHECK_RULES;
        else if (!strcmp(c0, "test") && !strcmp(c1, "rules"))
            f->cmd = CMD_TEST_RULES;
        else
            return fail("unexpected argument '%s'", c0);
        f->args += 2;
        f->nargs -= 2;
        if (!f->nargs)
            return fail("%s: expected at least one FILE", f->cmd == CMD_TEST_RULES ? "test rules"
                                                          : f->cmd == CMD_CHECK_RULES
                                                              ? "check rules"
                                                              : "check config");
    }
    return 0;
}

void flags_fini(struct flags *f) {
    col_options_free(f->collectors);
    f->collectors = NULL;
    /* args may have been advanced past the subcommand words */
    if (f->args && f->cmd >= CMD_CHECK_CONFIG && f->cmd <= CMD_TEST_RULES) f->args -= 2;
    free(f->args);
    f->args = NULL;
}
