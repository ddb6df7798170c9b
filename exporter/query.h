/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus's query HTTP API (/api/v1/query, query_range, series, labels, metadata,
 * buildinfo) over the store and the PromQL evaluator, answering Prometheus's JSON. */
#ifndef PROMLET_EXPORTER_QUERY_H
#define PROMLET_EXPORTER_QUERY_H

#include "agent.h"
#include "sbuf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

/* The agent module: registers the /api/v1 query routes. Limits come from the config's
 * query section (max_samples, timeout, lookback_delta) and --promql.compat. */
extern const struct agent_module mod_query;

/* What one API call reads: the store and the limits in force. */
struct query_env {
    struct store *store;
    bool compat_v2;      /* --promql.compat=v2 */
    size_t max_samples;  /* query.max_samples */
    int64_t timeout_ms;  /* query.timeout: upper bound of any request's timeout */
    int64_t lookback_ms; /* query.lookback_delta */
};

/* The request's parameters, read through callbacks (query string or form body). */
struct query_params {
    /* First value of a parameter, NULL if absent; borrowed, valid during the call. */
    const char *(*get)(void *ctx, const char *name);
    /* Every value of a repeated parameter (match[]), in order. */
    int (*each)(void *ctx, const char *name, int (*fn)(void *arg, const char *value), void *arg);
    void *ctx;
    int64_t now_ms; /* the default evaluation time of /api/v1/query */
};

/* Endpoints. Each writes Prometheus's JSON envelope into out (success or
 * {"status":"error","errorType":...,"error":...}) and returns the HTTP status: 200, 400
 * (bad_data), 422 (execution), 503 (timeout, out of memory). All borrow their arguments
 * and are thread-safe (they only read the store). */
int query_instant(const struct query_env *env, const struct query_params *p, struct sbuf *out);
int query_range(const struct query_env *env, const struct query_params *p, struct sbuf *out);
int query_series(const struct query_env *env, const struct query_params *p, struct sbuf *out);
int query_labels(const struct query_env *env, const struct query_params *p, struct sbuf *out);
/* /api/v1/query_exemplars: Prometheus's checks and errors (start/end, "end timestamp must
 * not be before start timestamp", the query's parse error), then 204 with an empty out for
 * a query without series selectors, else the exemplars found: the store keeps none (remote
 * write's exemplars are dropped on receipt), so always [], as Prometheus 2.42 answers
 * without --enable-feature=exemplar-storage. */
int query_exemplars(const struct query_env *env, const struct query_params *p, struct sbuf *out);
/* name: the label name from the path /api/v1/label/<name>/values. */
int query_label_values(const struct query_env *env, const struct query_params *p, const char *name,
                       struct sbuf *out);

/* Walks known metric metadata (the shape of rwrecv_metadata): calls fn for every family, or
 * only `family` when not NULL; strings borrowed for the call. */
typedef int query_meta_walk_fn(void *ctx, const char *family,
                               int (*fn)(void *arg, const char *family, int type, const char *help,
                                         const char *unit),
                               void *arg);
/* /api/v1/metadata: {"family":[{"type","help","unit"}],...} from walk, families in byte
 * order, `limit` (max families; negative or absent: all) and `metric` (one family) as in
 * Prometheus. type is an enum rw_metric_type value. */
int query_metadata(const struct query_params *p, query_meta_walk_fn *walk, void *walk_ctx,
                   struct sbuf *out);

/* Prometheus's parseTime: unix seconds (float, rounded to ms, converted with Go's
 * wrapping arithmetic) or RFC 3339 with optional fraction and zone. Returns 0 with *ms
 * set, or -EINVAL (also for times outside Prometheus's minTime..maxTime). s borrowed. */
int query_parse_time(const char *s, int64_t *ms);
/* Prometheus's parseDuration: float seconds or a Prometheus duration ("1m30s"), in ns so
 * that sub-millisecond steps are seen as Prometheus sees them. Returns 0, -EOVERFLOW (float
 * seconds beyond int64 ns) or -EINVAL. */
int query_parse_duration(const char *s, int64_t *ns);

/* Parses a series selector (`name{l="v",l2=~"re"}`, `{__name__="x"}`) for match[]: matchers
 * are returns new in *m (free each with re_matcher_fini, then free the array). Returns 0 or
 * -EINVAL with err filled ("1:5: parse error: ..."), -ENOMEM. */
int query_parse_selector(const char *s, struct re_matcher **m, size_t *nm, struct perr *err);

#endif
