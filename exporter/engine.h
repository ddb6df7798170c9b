/* SPDX-License-Identifier: Apache-2.0 */
/* The rule manager: a thread that evaluates rule groups on their interval and whenever a metric
 * they select receives samples, writes results to the store and hands alerts to the notifier. */
#ifndef PROMLET_EXPORTER_ENGINE_H
#define PROMLET_EXPORTER_ENGINE_H

#include "agent.h"
#include "ruleeval.h"

#include <stddef.h>
#include <stdint.h>

struct engine;

/* The agent module: start creates the engine thread and the notifier (a->engine,
 * a->notifier) and hooks the store; prepare loads and checks the config's rule files (also for
 * `promlet check config`, a == NULL); commit hands the new rules to the engine thread, which
 * carries `for` state of unchanged alerting rules over; metrics adds promlet_rule_* and the
 * notifier's families; stop joins the thread. */
extern const struct agent_module mod_engine;

/* A consistent read-only view of the rules for the APIs. Every pointer is borrowed and valid
 * only during the engine_view callback. alerts lists every alerting rule, in file order. */
struct engine_view {
    const struct payload_rule_group *groups;
    size_t ngroups;
    const struct alert_rule *const *alerts;
    size_t nalerts;
    const char *external_url;
};

/* Calls fn with the current view under the engine's read lock (evaluation waits meanwhile, so
 * fn must only format: no I/O, no store calls). Returns fn's return. Thread-safe. */
int engine_view(struct engine *e, int (*fn)(void *arg, const struct engine_view *v), void *arg);

#endif
