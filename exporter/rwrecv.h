/* SPDX-License-Identifier: Apache-2.0 */
/* rwrecv: the Prometheus remote-write 1.0 receiver (POST /api/v1/write) and its metadata. */
#ifndef PROMLET_EXPORTER_RWRECV_H
#define PROMLET_EXPORTER_RWRECV_H

#include "agent.h"
#include "proto.h"

/*
 * POST /api/v1/write answers as Prometheus' write handler (storage/remote/write_handler.go):
 * 204 when everything was stored; 415 for a Content-Type other than application/x-protobuf
 * (proto=prometheus.WriteRequest or none) or a Content-Encoding other than snappy (absent is
 * taken as snappy); 400 for bad snappy, bad protobuf, invalid labels (missing __name__,
 * unsorted or duplicate names, invalid names or UTF-8), samples more than 10 minutes ahead,
 * and out-of-order or conflicting duplicate samples, in which case nothing of the request is
 * stored (2.42 and 3.x roll the appender back); 413 over remote_write_receiver.max_body_bytes;
 * 500 when the store's series limit refuses the request (Prometheus answers 500 for append
 * errors other than order/bounds), 503 on OOM. Exemplars are accepted and dropped.
 */
extern const struct agent_module mod_rwrecv;

/* Called for each metric family whose MetricMetadata was received (last one wins); strings
 * are borrowed for the call. Return non-zero to stop. */
typedef int rwrecv_meta_fn(void *arg, const char *family, enum rw_metric_type type,
                           const char *help, const char *unit);

/* Visits the metadata of every family, or only of `family` when it is not NULL (borrowed).
 * Holds the module's lock during the walk: fn must not call back into rwrecv. Returns 0 or
 * fn's non-zero return. Thread-safe; r NULL visits nothing. */
int rwrecv_metadata(struct rwrecv *r, const char *family, rwrecv_meta_fn *fn, void *arg);

#endif
