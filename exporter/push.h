/* SPDX-License-Identifier: Apache-2.0 */
/* push: the Pushgateway-compatible push API (groups, consistency checks, /metrics, persistence). */
#ifndef PROMLET_EXPORTER_PUSH_H
#define PROMLET_EXPORTER_PUSH_H

#include "agent.h"

#include <stddef.h>

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

/* Number of groups held now. Borrows p (NULL gives 0). Thread-safe. */
size_t push_groups(struct push *p);

#endif
