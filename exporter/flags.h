/* SPDX-License-Identifier: Apache-2.0 */
/* Command-line flags in the Prometheus family's conventions (kingpin: --name=value,
 * --name value, --[no-]bool). The parsed flags are the process's only global settings. */
#ifndef PROMLET_EXPORTER_FLAGS_H
#define PROMLET_EXPORTER_FLAGS_H

#include "log.h"
#include "ruleeval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct col_options;

enum flags_cmd {
    CMD_RUN,
    CMD_CHECK_CONFIG,
    CMD_CHECK_RULES,
    CMD_TEST_RULES,
    CMD_VERSION,
    CMD_HELP
};

struct flags {
    enum flags_cmd cmd;
    const char *config_file;
    const char *listen[16];
    size_t nlisten;
    enum log_level log_level;
    enum log_format log_format;
    size_t max_request_bytes;
    bool promql_compat_v2;
    const char *web_external_url;
    const char *web_config_file;
    bool web_enable_lifecycle;
    /* evaluate rules on ingestion events too (default); false: on their interval only */
    bool rules_event_evaluation;
    /* test rules */
    const char *run_pattern;
    bool ignore_unknown_fields;
    double float_tolerance;
    /* positional arguments of check/test commands */
    const char **args;
    size_t nargs;
    struct col_options *collectors; /* collector flags, owned */
};

/* Parses argv into f (argv strings are borrowed for the life of the process). On error
 * prints "promlet: error: <reason>, try --help" to stderr and returns -EINVAL. */
int flags_parse(struct flags *f, int argc, char **argv);
/* Prints --help to stdout. */
void flags_usage(void);
/* Frees what flags_parse allocated. */
void flags_fini(struct flags *f);

#endif
