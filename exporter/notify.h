/* SPDX-License-Identifier: Apache-2.0 */
/* The notifier transport: per-receiver bounded queues POSTed by libcurl multi on its own thread. */
#ifndef PROMLET_EXPORTER_NOTIFY_H
#define PROMLET_EXPORTER_NOTIFY_H

#include <stddef.h>
#include <stdint.h>

struct notifier;
struct mset;

struct notify_opts {
    size_t queue_capacity;    /* per receiver; when full the oldest waiting body is dropped */
    int64_t max_retry_age_ms; /* a body still undelivered this long after enqueueing is dropped */
    int64_t backoff_min_ms;   /* first retry delay, doubled per failure ... */
    int64_t backoff_max_ms;   /* ... up to this */
};

/* Fills o with the defaults of defaults.h. */
void notify_opts_default(struct notify_opts *o);

/* Starts the notifier thread. Returns new (notifier_free), or NULL with err set to errno's
 * reason (thread, epoll or curl failure, OOM). o borrowed. */
struct notifier *notifier_new(const struct notify_opts *o);
/* Stops the thread (in-flight requests are abandoned) and frees all queues; accepts NULL. */
void notifier_free(struct notifier *n);
/* Changes the queue capacity and retry age for later posts (on reload). Thread-safe. */
void notifier_set_opts(struct notifier *n, const struct notify_opts *o);
/* Has the notifier thread initialise libcurl now (it otherwise waits for the first item), so
 * that the first notification does not pay for TLS start-up. Call once receivers exist. */
void notifier_prepare(struct notifier *n);

/* Queues a JSON POST of body[0..len) to url (borrowed; receivers are keyed by url) with a
 * per-attempt timeout. Takes body (malloc'ed; freed by the notifier, also on error).
 * Each receiver delivers its queue in order, one request at a time; failures (transport
 * errors, timeouts, 5xx, 408, 429) are retried with exponential backoff until delivered or
 * max_retry_age; other 4xx are not retried. Never blocks on the network: when the queue is
 * full the oldest waiting body is dropped and counted. Returns 0 or -ENOMEM. Thread-safe. */
int notifier_post(struct notifier *n, const char *url, int64_t timeout_ms, char *body, size_t len);

/* Bodies waiting or in flight over all receivers. Thread-safe. */
size_t notifier_pending(struct notifier *n);

/* Adds promlet_notifications_{sent,failed,dropped}_total, promlet_notification_latency_seconds
 * and promlet_notification_queue_{length,capacity}, each by receiver url. Thread-safe. */
int notifier_metrics(struct notifier *n, struct mset *out);

#endif
