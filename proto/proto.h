/* SPDX-License-Identifier: Apache-2.0 */
/* proto: promlet's wire formats (remote write 1.0, text exposition 0.0.4); bytes in, samples out.
 */
#ifndef PROMLET_PERR_DEFINED
#define PROMLET_PERR_DEFINED
struct perr {
    int line, col;
    char msg[160];
};
#endif
#ifndef PROMLET_PROTO_PROTO_H
#define PROMLET_PROTO_PROTO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Everything here is pure: no sockets, threads, clock, global state or printing. All
 * functions are reentrant; distinct objects may be used from distinct threads.
 *
 * Errors: functions return 0 or a negative errno; user-facing errors also fill a
 * struct perr (one line, no trailing newline) when the caller passes one (NULL is allowed).
 */

/* Bit pattern of Prometheus' staleness marker (a NaN); compare bits, never isnan(). */
#define PROTO_STALE_NAN_BITS UINT64_C(0x7ff0000000000002)

/* One label as (pointer, length); the bytes are also NUL-terminated (name[name_len] == 0,
 * value[value_len] == 0). Both decoders refuse NUL bytes inside names and values (-EPROTO),
 * so a label is never cut short when read as a C string. */
struct proto_label {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* True when the bits of v are the staleness marker. */
bool proto_is_stale_nan(double v);

/* ------------------------------------------------------------------------------------------ */
/* Remote write 1.0 (snappy block + protobuf prometheus.WriteRequest)                          */
/* ------------------------------------------------------------------------------------------ */

/* Decoder limits; a zero field means "use the default" (RW_DEFAULT_*). The count limits are
 * checked on the wire before protobuf-c allocates anything, and so is the memory the unpacking
 * will take (refused, -E2BIG, above 10x the decoded size + 1 MiB), which bounds what a small,
 * highly compressible body can make us allocate. */
#define RW_DEFAULT_MAX_DECODED_BYTES ((size_t)32 << 20) /* Prometheus' decoded-size limit */
#define RW_DEFAULT_MAX_LABELS 128                       /* labels per series */
#define RW_DEFAULT_MAX_NAME_LEN 1024                    /* bytes per label name */
#define RW_DEFAULT_MAX_VALUE_LEN 4096                   /* bytes per label value */
#define RW_DEFAULT_MAX_SERIES 100000                    /* series per request */
#define RW_DEFAULT_MAX_SAMPLES 1000000                  /* samples + histograms per request */

/* The wire bytes of one series' labels (its Label fields, tags included, as one contiguous
 * run), which decode to exactly one label set: the key of the cache of label sets that passed
 * validation (rwcache). hash is a hash of the bytes. */
struct rw_key {
    const uint8_t *bytes;
    size_t len;
    uint64_t hash;
};

struct rwcache;

struct rw_limits {
    size_t max_decoded_bytes; /* refuse a body whose snappy header announces more (E2BIG) */
    size_t max_labels;        /* labels per series as sent (empty-valued ones included) */
    size_t max_name_len;      /* bytes per label name */
    size_t max_value_len;     /* bytes per label value */
    size_t max_series;        /* series per request, and metadata entries (SIZE_MAX =
                                 unlimited) */
    size_t max_samples;       /* samples + histograms per request, and exemplars (SIZE_MAX =
                                 unlimited) */
    bool sort_labels;         /* accept unsorted label sets and sort them (what Prometheus
                                 does); false = reject them (the spec's MUST) */
    bool utf8_names;          /* accept any UTF-8 metric/label names (RW 2.0 / Prometheus 3
                                 UTF-8 mode); false = legacy [a-zA-Z_:][a-zA-Z0-9_:]* */
    /* Optional: label sets that passed validation before UNDER THE SAME LIMITS, by wire
     * bytes (filled by rw_request_remember()). A series whose label bytes are found there is
     * neither unpacked nor checked again: it gets the remembered label set and tag. The lock,
     * if not NULL, is held while the cache is read. */
    struct rwcache *cache;
    pthread_mutex_t *cache_lock;
};

/* Metric types of MetricMetadata (same numbers as the wire enum). */
enum rw_metric_type {
    RW_TYPE_UNKNOWN = 0,
    RW_TYPE_COUNTER = 1,
    RW_TYPE_GAUGE = 2,
    RW_TYPE_HISTOGRAM = 3,
    RW_TYPE_GAUGEHISTOGRAM = 4,
    RW_TYPE_SUMMARY = 5,
    RW_TYPE_INFO = 6,
    RW_TYPE_STATESET = 7,
};

/* Reset hints of native histograms (same numbers as the wire enum). */
enum proto_reset_hint {
    PROTO_RESET_UNKNOWN = 0,
    PROTO_RESET_YES = 1,
    PROTO_RESET_NO = 2,
    PROTO_RESET_GAUGE = 3,
};

struct proto_span {
    int32_t offset; /* gap to the previous span, or start index for the first */
    uint32_t length;
};

/* A native histogram as decoded from the wire. Bucket arrays hold ABSOLUTE counts: for
 * integer histograms the deltas have been accumulated (and checked non-negative). Arrays are
 * borrowed from the request and valid until rw_request_free(). */
struct proto_hist {
    bool is_float;  /* float histogram (counts were doubles on the wire) */
    int32_t schema; /* -4..8 exponential, -53 custom buckets */
    enum proto_reset_hint reset_hint;
    double zero_threshold;
    double count; /* total count (exact for integer histograms up to 2^53) */
    double zero_count;
    uint64_t count_int; /* integer histograms: the exact wire values (0 for float) */
    uint64_t zero_count_int;
    double sum;
    const struct proto_span *pos_spans;
    size_t n_pos_spans;
    const double *pos_buckets; /* n_pos_buckets == sum of pos_spans[].length */
    size_t n_pos_buckets;
    const struct proto_span *neg_spans;
    size_t n_neg_spans;
    const double *neg_buckets;
    size_t n_neg_buckets;
    const double *custom_values; /* upper bounds for schema -53 */
    size_t n_custom_values;
};

/* Visitor for rw_request_foreach(). Any callback may be NULL (skipped). A callback returning
 * non-zero stops the walk and rw_request_foreach() returns that value. All pointers are
 * borrowed from the request and valid until rw_request_free(). */
struct rw_sink {
    void *arg;
    /* A new series starts; its samples and histograms follow. labels are sorted by name,
     * contain __name__, never contain empty values. */
    int (*series)(void *arg, const struct proto_label *labels, size_t n);
    /* A float sample of the current series, in wire order (non-decreasing timestamps). */
    int (*sample)(void *arg, int64_t ts_ms, double v);
    /* A native histogram of the current series (after all its float samples). */
    int (*histogram)(void *arg, int64_t ts_ms, const struct proto_hist *h);
    /* A MetricMetadata entry (after all series). Strings are NUL-terminated. */
    int (*metadata)(void *arg, const char *family, enum rw_metric_type type, const char *help,
                    const char *unit);
};

struct rw_request;

/* Decodes and validates a whole remote-write 1.0 request body (snappy block format of a
 * prometheus.WriteRequest). Borrows body (need not be NUL-terminated) and lim (NULL = all
 * defaults). Returns new request (free with rw_request_free) or NULL; on NULL, *code (if
 * code is not NULL) is
 *   -EPROTO  bad data: corrupt snappy, bad protobuf, invalid labels, invalid histogram,
 *            out-of-order or conflicting duplicate samples within a series → HTTP 400;
 *   -E2BIG   the snappy header announces more than lim->max_decoded_bytes, a count limit
 *            was hit, or the request would unpack to too much memory → HTTP 400 (Prometheus answers
 * 400 for an oversized decoded body too); -ENOMEM  out of memory → HTTP 5xx (the sender retries);
 * and err (if not NULL) holds a one-line reason; err->line is the 1-based index of the
 * offending timeseries (0 when not series-specific), err->col the 1-based label or sample
 * index within it (0 when not applicable). Nothing is returned partially: a request with one
 * invalid series is rejected as a whole. Exemplars are decoded by protobuf but dropped. */
struct rw_request *rw_decode(const uint8_t *body, size_t len, const struct rw_limits *lim,
                             int *code, struct perr *err);

/* Walks the request: for each series, series() then its samples then its histograms; then
 * all metadata. May be called any number of times (e.g. a limit-check pass, then a commit
 * pass); it does not modify the request. Borrows r and sink. Returns 0, or the first
 * non-zero callback return value. */
int rw_request_foreach(const struct rw_request *r, const struct rw_sink *sink);

/* Counts of the validated request. Borrow r. */
size_t rw_request_series(const struct rw_request *r);
size_t rw_request_samples(const struct rw_request *r);
size_t rw_request_histograms(const struct rw_request *r);
size_t rw_request_metadata(const struct rw_request *r);

/* Series i's key and the tag its label set had in rw_limits.cache (0: not found there, it was
 * unpacked and validated). Returns 0, or -ENOENT when the request was decoded without a cache
 * or series i has no key. key->bytes is borrowed from the request (valid until
 * rw_request_free()). */
int rw_request_key(const struct rw_request *r, size_t i, struct rw_key *key, uint64_t *tag);
/* Records series i's label set (validated, as every series of a decoded request) in c under
 * its key with tag (non-zero); the caller holds c's lock. Returns 0, -ENOENT (no key),
 * -EINVAL (tag 0) or -ENOMEM (not recorded). */
int rw_request_remember(const struct rw_request *r, size_t i, struct rwcache *c, uint64_t tag);

/* Frees a request from rw_decode(); takes r (NULL is allowed). */
void rw_request_free(struct rw_request *r);

/* rwcache: label sets that passed rw_decode's validation, keyed by their exact wire bytes
 * (struct rw_key), each with a non-zero tag of the caller's (e.g. a store ref + 1). Bounded:
 * at max_entries entries or max_bytes of entries it is emptied and starts over. Not thread-safe:
 * one lock (rw_limits. cache_lock) serialises its use; the rw_limits it is used with must not
 * change (or reset it). */

/* Returns new (free with rwcache_free), or NULL on OOM. */
struct rwcache *rwcache_new(size_t max_entries, size_t max_bytes);
/* Frees the cache; accepts NULL. */
void rwcache_free(struct rwcache *c);
/* Forgets every entry. */
void rwcache_reset(struct rwcache *c);
/* Number of entries. */
size_t rwcache_count(const struct rwcache *c);

/* ------------------------------------------------------------------------------------------ */
/* Text exposition format 0.0.4 (as prometheus/common expfmt.TextParser, legacy names)        */
/* ------------------------------------------------------------------------------------------ */

enum expfmt_type {
    EXPFMT_UNTYPED = 0,
    EXPFMT_COUNTER,
    EXPFMT_GAUGE,
    EXPFMT_SUMMARY,
    EXPFMT_HISTOGRAM,
};

/* Visitor for expfmt_parse(). Callbacks may be NULL. A callback returning non-zero stops
 * the parse and expfmt_parse() returns that value (err->msg is then "stopped by sink").
 * All strings are borrowed for the duration of the call only, NUL-terminated, and also
 * passed with their lengths through struct proto_label. */
struct expfmt_sink {
    void *arg;
    /* Called for a family before its first sample, with the HELP (unescaped; NULL when no
     * HELP was seen yet; a HELP line with nothing but blanks after the name, like the
     * experiment's "# HELP busy_worker_threads ", sets none, as in expfmt) and the TYPE (or
     * UNTYPED). expfmt accepts a HELP line after samples of its family (when the family had
     * none): then family() is called a second time with the new help, so treat it as "set
     * metadata". Families with HELP/TYPE but no samples are not reported (expfmt drops
     * them). */
    int (*family)(void *arg, const char *name, const char *help, enum expfmt_type type);
    /* One sample. family is the family it belongs to (x for x_bucket of histogram x);
     * sample_name is the name on the line. labels are in line order, including le/quantile;
     * a repeated le (histograms) or quantile (summaries) appears once, at its first place,
     * with the last value, as expfmt keeps it (any other repeated name is an error).
     * Samples that expfmt silently drops (a summary sample without quantile that is not
     * _sum/_count, a histogram sample without le that is not _sum/_count, a quantile or le
     * of NaN) are not reported. */
    int (*sample)(void *arg, const char *family, const char *sample_name,
                  const struct proto_label *labels, size_t n, double v, bool has_ts, int64_t ts_ms);
};

/* Parses a whole text-format body. Borrows buf (need not be NUL-terminated) and sink.
 * Returns 0; -EPROTO for a syntax/semantic error (err->msg is
 * "text format parsing error in line N: ..." as expfmt words it, err->line = N, err->col the
 * 1-based byte column); -ENOMEM; or a non-zero sink return value. Samples are delivered as
 * they are parsed, so a caller wanting all-or-nothing stages them and commits on 0.
 * Memory: per call, a scratch buffer that grows to the longest line and a table of family
 * names; nothing is allocated per sample. */
int expfmt_parse(const uint8_t *buf, size_t len, const struct expfmt_sink *sink, struct perr *err);

/* Name of a type as written in a TYPE line ("counter", ...). Returns a static string. */
const char *expfmt_type_name(enum expfmt_type t);

#endif
