/* SPDX-License-Identifier: Apache-2.0 */
/* The running daemon's state, passed to every handler: no other global mutable state. */
#ifndef PROMLET_EXPORTER_AGENT_H
#define PROMLET_EXPORTER_AGENT_H

#include "config.h"
#include "flags.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct store;
struct http_server;
struct collectors;
struct mset;

struct agent {
    const struct flags *flags;
    pthread_mutex_t cfg_lock; /* guards cfg and the reload counters */
    struct config *cfg;
    struct store *store;
    struct http_server *http;
    struct collectors *collectors;
    double start_time; /* unix seconds */
    bool ready;
    bool last_reload_ok;
    double last_reload_success; /* unix seconds */
    uint64_t reloads_total, reload_failures_total;
};

/* Re-reads the config file (and what it names). On success the new config replaces the
 * old one; on failure the old one keeps running and err says why ("file:line:col: msg").
 * Thread-safe. Returns 0 or a negative errno. */
int agent_reload(struct agent *a, struct perr *err, char *where, size_t wherelen);

/* Adds process_*, promlet_build_info, config-reload and store families to out. */
int selfmon_write(struct agent *a, struct mset *out);

/* Wall-clock time in milliseconds since the epoch. */
int64_t agent_now_ms(void);

#endif
