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
struct push;
struct rwrecv;
struct engine;
struct notifier;
struct query;

struct agent {
    const struct flags *flags;
    pthread_mutex_t cfg_lock; /* guards cfg and the reload counters */
    struct config *cfg;
    struct store *store;
    struct http_server *http;
    struct collectors *collectors;
    /* Subsystems, each owned by its module (see struct agent_module). */
    struct push *push;
    struct rwrecv *rwrecv;
    struct engine *engine;
    struct notifier *notifier;
    struct query *query;
    double start_time; /* unix seconds */
    bool ready;
    bool last_reload_ok;
    double last_reload_success; /* unix seconds */
    uint64_t reloads_total, reload_failures_total;
};

/* A subsystem of the daemon. main.c lists the modules in one table and calls them in order
 * (stop in reverse). Every hook may be NULL.
 * - start: create state (hang it off the agent), register HTTP routes. Runs before the
 *   server listens; an error stops startup.
 * - prepare/commit/abort: two-phase config (re)load. prepare validates and builds what the
 *   new config needs into *staged without touching running state; it is also called with
 *   a == NULL by `promlet check config` (validate only, then abort). commit swaps staged in
 *   (under the agent's cfg_lock; must not block); abort frees staged. If any module's
 *   prepare fails, every prepared module is aborted and the old config keeps running.
 * - metrics: add the module's families to a /metrics scrape.
 * - tick: called about once a second on the main thread with the wall-clock time.
 * - stop: release everything start created. */
struct agent_module {
    const char *name;
    int (*start)(struct agent *a, struct perr *err);
    int (*prepare)(struct agent *a, const struct config *nc, void **staged, struct perr *err);
    void (*commit)(struct agent *a, void *staged);
    void (*abort)(void *staged);
    int (*metrics)(struct agent *a, struct mset *out);
    void (*tick)(struct agent *a, int64_t now_ms);
    void (*stop)(struct agent *a);
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
