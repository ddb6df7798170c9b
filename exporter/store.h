/* SPDX-License-Identifier: Apache-2.0 */
/* The series store: interned label sets, in-order float and native-histogram samples,
 * selection by label matchers, retention by time and a series limit. */
#ifndef PROMLET_EXPORTER_STORE_H
#define PROMLET_EXPORTER_STORE_H

#include "ruleeval.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

struct store_opts {
    int64_t retention_ms; /* samples older than now - retention are dropped by store_gc */
    size_t max_series;    /* appends that would create more series fail with -ENOSPC */
    int64_t future_ms;    /* samples stamped later than now + future_ms are refused (they
                             would outlive retention); 0: no limit */
};

/* One sample of a batch. Labels are sorted by name, names unique, __name__ included (the
 * caller validated them); all pointers are borrowed, the store copies what it keeps. */
struct store_sample {
    const struct re_label *labels;
    size_t nlabels;
    int64_t ts;
    double v;
    const struct re_hist *h; /* NULL for a float sample */
};

/* Outcome of a batch append. */
struct store_result {
    size_t appended;     /* samples stored */
    size_t new_series;   /* series created */
    size_t out_of_order; /* samples older than their series' newest sample */
    size_t duplicates;   /* same timestamp as the newest sample, different value */
    size_t too_new;      /* stamped beyond now + future_ms */
    size_t first_bad;    /* index of the first rejected sample (valid if rejected) */
    bool rejected;       /* an atomic batch was refused as a whole */
};

/* Batch flags. */
#define STORE_ATOMIC 1u /* any out-of-order/duplicate sample or the series limit refuses all */
/* A float sample at its series' newest timestamp replaces that sample instead of being a
 * duplicate: pushes are stored at arrival in milliseconds, and of two pushes in one
 * millisecond the last must win, as in Pushgateway. */
#define STORE_LAST_WINS 2u

/* Called after each committed batch with the distinct metric names it touched, names[0..n)
 * (borrowed, valid during the call; a long batch may come in several calls). Runs on the
 * appending thread under the store's write lock: it must be quick (mark and signal) and
 * must not call the store. */
typedef void store_touch_fn(void *arg, const char *const *names, size_t n);

struct store_stats {
    size_t series, samples, hist_samples;
    uint64_t appended_total, out_of_order_total, duplicate_total, series_limit_hits_total;
    uint64_t too_new_total;
    uint64_t series_created_total, series_removed_total;
    size_t label_bytes; /* interned strings, tables and series structs, not samples */
    size_t sample_bytes;
};

/* Returns new, or NULL on OOM. */
struct store *store_new(const struct store_opts *o);
/* Frees everything; accepts NULL. No other thread may use the store. */
void store_free(struct store *s);
/* Changes retention and the series limit (on reload). Thread-safe. */
void store_set_opts(struct store *s, const struct store_opts *o);
/* Sets the touch hook (see store_touch_fn); call before appends start. */
void store_set_touch_hook(struct store *s, store_touch_fn *fn, void *arg);

/* Appends a batch under one write lock. Samples equal to the series' newest (same timestamp
 * and bit-identical value) are accepted silently, as Prometheus does. With STORE_ATOMIC the
 * batch is checked first and nothing is stored if any sample is out of order, a duplicate,
 * too far in the future, or the batch would exceed the series limit; without it, bad
 * samples are dropped and counted. Returns 0, -ENOSPC (series limit), -ERANGE (atomic batch
 * refused for order or time), -ENOMEM (in atomic mode the samples before the failing one
 * may have been stored). res may be NULL. Thread-safe. */
int store_append_batch(struct store *s, const struct store_sample *b, size_t n, unsigned flags,
                       struct store_result *res);
/* As store_append_batch, with refs (may be NULL) in and out. In: refs[i] is 0 or a ref
 * (store_ref_get, an earlier call) believed to name sample i's label set, which saves the
 * lookup by labels; a stale ref is ignored (the labels are looked up), but a live ref of
 * another series stores there, so callers must key their refs by the exact label set. Out,
 * when it returns 0: refs[i] is the ref of sample i's series, or 0 (the sample was not
 * stored: a repeat of its series' newest sample, or dropped in non-atomic mode). */
int store_append_batch_refs(struct store *s, const struct store_sample *b, size_t n, unsigned flags,
                            struct store_result *res, uint64_t *refs);
/* One float sample; same rules as a batch of one in atomic mode. */
int store_append(struct store *s, const struct re_label *labels, size_t nlabels, int64_t ts,
                 double v);

/* Series references, the fast path for appending to known series (collectors sampled into
 * the store, repeated pushes): ref_get finds or creates the series (-ENOSPC at the series
 * limit); refs are never 0; a ref stays valid until retention removes its series, after which
 * appends to it fail with -ENOENT and the caller gets a new ref. Thread-safe. */
int store_ref_get(struct store *s, const struct re_label *labels, size_t nlabels, uint64_t *ref);
/* Appends float sample i to series refs[i], under one lock. Out-of-order and duplicate
 * samples are dropped and counted. Returns 0 or the first error (-ENOENT, -ERANGE,
 * -ENOMEM); the other samples are still appended. */
int store_append_refs(struct store *s, const uint64_t *refs, const int64_t *ts, const double *v,
                      size_t n);

/* Visits matching series with their samples in [mint, maxt] (see re_visit_fn); series with
 * no sample in the range are skipped. A matcher that matches "" also selects series lacking
 * the label, as Prometheus. Holds a read lock during the visit: fn must not append.
 * Returns 0, fn's non-zero return, or -ENOMEM. */
int store_select(struct store *s, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                 re_visit_fn *fn, void *arg);
/* As store_select, but visits only each series' newest sample in [mint, maxt] (n == 1),
 * found from the series' tail without reading the rest of the window. */
int store_select_last(struct store *s, const struct re_matcher *m, size_t nm, int64_t mint,
                      int64_t maxt, re_visit_fn *fn, void *arg);
/* Fills a re_source that reads this store. */
void store_source(struct store *s, struct re_source *out);

/* Visits every distinct label name / every distinct value of one label, unsorted, under
 * the read lock (fn must not call the store; strings are borrowed for the call). */
int store_label_names(struct store *s, int (*fn)(void *arg, const char *name), void *arg);
int store_label_values(struct store *s, const char *name, int (*fn)(void *arg, const char *value),
                       void *arg);

/* Drops samples older than now_ms - retention and series left without samples. */
void store_gc(struct store *s, int64_t now_ms);
void store_get_stats(struct store *s, struct store_stats *out);

#endif
