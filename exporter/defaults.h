/* SPDX-License-Identifier: Apache-2.0 */
/* Every default, limit and port in one place, so README, --help and code agree. */
#ifndef PROMLET_EXPORTER_DEFAULTS_H
#define PROMLET_EXPORTER_DEFAULTS_H

#define DEF_CONFIG_FILE "promlet.yml"
/* The exporter range 9100-9999 is fully allocated; 10100 is free. */
#define DEF_LISTEN_ADDRESS ":10100"
#define DEF_MAX_LISTEN 16

/* HTTP */
#define DEF_MAX_REQUEST_BYTES (32u << 20) /* body limit for pushes and writes (413 beyond) */
#define DEF_HTTP_CONNECTION_LIMIT 512
#define DEF_HTTP_CONNECTION_TIMEOUT_S 30
#define DEF_HTTP_THREADS 2
#define DEF_HTTP_OFFLOAD_THREADS 4        /* run slow handlers (queries); more wait their turn */
#define DEF_HTTP_INFLIGHT_MIN (64u << 20) /* request bodies buffered at once, at least */

/* global */
#define DEF_EVALUATION_INTERVAL_MS 60000 /* Prometheus's default */
#define DEF_SCRAPE_INTERVAL_MS 60000

/* storage: retention covers the experiment's 5-minute runs and query_range windows. */
#define DEF_RETENTION_MS (15 * 60 * 1000)
#define DEF_MAX_SERIES 100000
/* Samples stamped further ahead than this would outlive retention; refused. */
#define DEF_FUTURE_TOLERANCE_MS (60 * 60 * 1000)
#define DEF_MAX_LABELS_PER_SERIES 64
#define DEF_MAX_LABEL_NAME_BYTES 1024
#define DEF_MAX_LABEL_VALUE_BYTES 4096
#define DEF_LOOKBACK_MS (5 * 60 * 1000)

/* push */
#define DEF_PUSH_PERSISTENCE_INTERVAL_MS (5 * 60 * 1000)

/* remote write */
#define DEF_RW_MAX_BODY_BYTES (32u << 20)
#define DEF_RW_MAX_DECODED_BYTES (128u << 20)

/* collectors sampled into the store for rules */
#define DEF_COLLECTORS_SAMPLE_INTERVAL_MS 1000

/* query */
#define DEF_QUERY_MAX_SAMPLES 50000000
#define DEF_QUERY_TIMEOUT_MS (2 * 60 * 1000)
/* malloc keeps this much freed memory per arena instead of returning it to the kernel after
 * every query (a 15-minute query_range otherwise page-faults its working set in anew). */
/* Queries estimated to visit more samples than this (steps x (series + samples in the
 * largest range)) are evaluated on a worker thread instead of an HTTP thread. */
#define DEF_QUERY_INLINE_WORK 2e6
#define DEF_QUERY_MALLOC_TRIM_BYTES (16u << 20)
#define DEF_QUERY_MALLOC_MMAP_BYTES (4u << 20)

/* alerting */
#define DEF_RESEND_DELAY_MS 60000
#define DEF_NOTIFY_TIMEOUT_MS 10000
#define DEF_NOTIFY_QUEUE 10000
/* notifier retries: backoff doubles from min to max; a body is dropped after max age */
#define DEF_NOTIFY_BACKOFF_MIN_MS 100
#define DEF_NOTIFY_BACKOFF_MAX_MS 5000
#define DEF_NOTIFY_MAX_RETRY_AGE_MS (10 * 60 * 1000)
#define DEF_NOTIFY_MAX_AM_BATCH 256 /* alerts per POST /api/v2/alerts, as Prometheus */
/* resolved alerts are kept and re-sent this long (Prometheus' resolvedRetention) */
#define DEF_RESOLVED_RETENTION_MS (15 * 60 * 1000)

#endif
