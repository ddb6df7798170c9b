/* SPDX-License-Identifier: Apache-2.0 */
/* push: the Pushgateway-compatible push API (groups, consistency checks, /metrics, persistence). */
#ifndef PROMLET_EXPORTER_PUSH_H
#define PROMLET_EXPORTER_PUSH_H

#include "agent.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * The module registers
 *   PUT/POST/DELETE /metrics/job/<job>{/<name>/<value>} and /metrics/job@base64/<b64>{...}
 *   GET /api/v1/metrics (Pushgateway's JSON view of all groups)
 *   PUT /api/v1/admin/wipe (deletes every group)
 * keeps the pushed groups in memory (exposed on /metrics as Pushgateway shows them),
 * appends every accepted push to the store at arrival time, drops groups idle longer than
 * push.group_ttl, and persists groups to push.persistence_file (tmp + rename) on
 * push.persistence_interval and on stop; the file is read at start.
 * Handlers are thread-safe (one mutex serialises pushes, as Pushgateway's write queue does).
 */
extern const struct agent_module mod_push;

/* Parses a push as the handler does, without storing anything (for tests and fuzzing):
 * the grouping key from subpath (the path after "/metrics/job", percent-decoded) and body
 * (text format 0.0.4, or delimited protobuf MetricFamily messages when protobuf is set).
 * The consistency check against stored groups is not run, but what the decoding itself finds
 * (timestamps, invalid protobuf names) is. Borrows everything. Returns 0, -EINVAL with why
 * set (bad URL, or a push Pushgateway's check would refuse), -EPROTO with why set (the body
 * does not parse), -ENOMEM. *nsamples (if not NULL) gets the number of samples kept. */
int push_parse(const char *subpath, const uint8_t *body, size_t len, bool protobuf,
               size_t *nsamples, char *why, size_t wlen);

/* Number of groups held now. Borrows p (NULL gives 0). Thread-safe. */
size_t push_groups(struct push *p);

#endif
