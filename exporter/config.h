/* SPDX-License-Identifier: Apache-2.0 */
/* promlet.yml: parsing and validation (libyaml), shaped after prometheus.yml and Alertmanager. */
#ifndef PROMLET_EXPORTER_CONFIG_H
#define PROMLET_EXPORTER_CONFIG_H

#include "ruleeval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* alerting.alertmanagers[] (Prometheus's alertmanager_config, static targets only). */
struct cfg_alertmanager {
    char **targets; /* host:port */
    size_t ntargets;
    char *scheme;      /* http (default) or https */
    char *path_prefix; /* "" by default */
    char *api_version; /* v2 */
    int64_t timeout_ms;
};

/* alerting.webhook_configs[] (Alertmanager's webhook receiver). */
struct cfg_webhook {
    char *url;
    bool send_resolved;  /* default true, as Alertmanager */
    uint32_t max_alerts; /* 0: all */
    int64_t timeout_ms;
};

struct config {
    char *file; /* as given */
    char *dir;  /* folder of the file: relative rule_files resolve against it */

    /* global */
    int64_t evaluation_interval_ms;
    int64_t scrape_interval_ms;
    struct re_label *external_labels; /* sorted by name */
    size_t nexternal;

    char **rule_files; /* glob patterns */
    size_t nrule_files;

    /* alerting */
    struct cfg_alertmanager *alertmanagers;
    size_t nalertmanagers;
    struct cfg_webhook *webhooks;
    size_t nwebhooks;
    int64_t resend_delay_ms;
    size_t notification_queue_capacity;

    /* storage */
    int64_t retention_ms;
    size_t max_series;
    int64_t future_tolerance_ms;

    /* push */
    int64_t push_group_ttl_ms; /* 0: off */
    char *push_persistence_file;
    int64_t push_persistence_interval_ms;

    /* remote_write_receiver */
    size_t rw_max_body_bytes;

    /* collectors */
    int64_t collectors_sample_interval_ms;

    /* query */
    size_t query_max_samples;
    int64_t query_timeout_ms;
    int64_t query_lookback_delta_ms;
};

/* Parses a config from buf (borrowed; name is used in messages only). Returns 0 and a new
 * config in *out (free with config_free), or -EINVAL with err holding line, column and a
 * one-line message naming the offending key, or -ENOMEM. */
int config_parse(const char *name, const char *buf, size_t len, struct config **out,
                 struct perr *err);
/* Reads and parses path. -ENOENT etc. with err->msg set when the file cannot be read. */
int config_load(const char *path, struct config **out, struct perr *err);
/* Accepts NULL. */
void config_free(struct config *c);
/* A config with every default and no file (used when none is given). Returns new. */
struct config *config_default(void);

/* Expands c's rule_files globs (relative to the config's folder, as Prometheus) and calls
 * fn for each file (path borrowed for the call). A pattern that matches nothing is not an
 * error (Prometheus ignores it); a bad pattern is (-EINVAL, err set). fn's non-zero return
 * stops the walk and is returned. */
int config_rule_files(const struct config *c, int (*fn)(void *arg, const char *path), void *arg,
                      struct perr *err);

/* Prometheus durations: "1s", "1m30s", "100ms", "1h", "1d", "1w", "1y"; "0" alone.
 * Returns 0 or -EINVAL. */
int config_parse_duration(const char *s, int64_t *ms);
/* Sizes: "512", "64KB", "32MiB", "1GB" (powers of 1024 for both spellings, as Prometheus'
 * units.Base2Bytes). Returns 0 or -EINVAL. */
int config_parse_bytes(const char *s, size_t *out);

#endif
