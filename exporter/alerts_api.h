/* SPDX-License-Identifier: Apache-2.0 */
/* GET /api/v1/alerts, /api/v1/rules (Prometheus' JSON shapes) and /alerts (JSON or HTML). */
#ifndef PROMLET_EXPORTER_ALERTS_API_H
#define PROMLET_EXPORTER_ALERTS_API_H

#include "agent.h"

/* The agent module: start registers the three routes; they read the engine (a->engine) through
 * engine_view, so it must come after mod_engine in the module table. */
extern const struct agent_module mod_alerts_api;

#endif
