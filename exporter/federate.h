/* SPDX-License-Identifier: Apache-2.0 */
/* federate: GET /federate?match[]=..., the latest stored sample of each matching series. */
#ifndef PROMLET_EXPORTER_FEDERATE_H
#define PROMLET_EXPORTER_FEDERATE_H

#include "agent.h"
#include "ruleeval.h"

#include <stddef.h>

/*
 * Answers as Prometheus' web/federate.go in the text format 0.0.4: for every series matched
 * by any match[] selector, its newest sample within the lookback window (query.lookback_delta,
 * 5m by default) ending now, stale markers skipped, native histograms skipped (the text format
 * cannot carry them), grouped by metric name with "# TYPE <name> untyped", labels in series
 * order followed by the external labels the series lacks and instance="" when it has none,
 * and the sample's timestamp.
 */
extern const struct agent_module mod_federate;

/* Parses a series selector `name{a="b",c=~"d"}` / `{__name__=~"x.*"}` (the subset of PromQL
 * that match[] takes) into matchers. Borrows src; *out is returns new (free with
 * federate_matchers_free). Returns 0, -EINVAL with err filled ("parse error: ..."), or
 * -ENOMEM. A selector must contain at least one matcher that does not match "" (as
 * Prometheus demands). To be replaced by promql_parse once the PromQL parser is merged. */
int federate_parse_selector(const char *src, struct re_matcher **out, size_t *n, struct perr *err);
/* Finalises and frees n matchers from federate_parse_selector; accepts NULL. */
void federate_matchers_free(struct re_matcher *m, size_t n);

#endif
