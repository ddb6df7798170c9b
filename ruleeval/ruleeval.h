/* SPDX-License-Identifier: Apache-2.0 */
/* ruleeval: PromQL, rule files, alert state and templates; pure, no I/O, no clock. */
#ifndef PROMLET_RULEEVAL_RULEEVAL_H
#define PROMLET_RULEEVAL_RULEEVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ---------------------------------------------------------------------------- */

/* A user-facing error: 1-based line and column (0 when unknown) and a one-line message.
 * proto.h declares the same struct under the same guard, so both headers can be included. */
#ifndef PROMLET_PERR_DEFINED
#define PROMLET_PERR_DEFINED
struct perr {
    int line, col;
    char msg[160];
};
#endif

/* Fills err (if not NULL) with a printf-style message at line:col. Returns -EINVAL. */
int perr_set(struct perr *err, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* ---- labels ---------------------------------------------------------------------------- */

/* One label; a label set is an array of these sorted by name, names unique. */
struct re_label {
    const char *name;
    const char *value;
};

/* The stale marker: the NaN Prometheus writes when a series disappears. */
#define RE_STALE_NAN_BITS 0x7ff0000000000002ULL

/* True if v carries exactly the stale-marker bit pattern. */
bool re_is_stale(double v);
/* Returns the stale-marker NaN. */
double re_stale_nan(void);

/* True if s is a valid legacy metric name ([a-zA-Z_:][a-zA-Z0-9_:]*), len bytes. */
bool re_valid_metric_name(const char *s, size_t len);
/* True if s is a valid legacy label name ([a-zA-Z_][a-zA-Z0-9_]*), len bytes. */
bool re_valid_label_name(const char *s, size_t len);
/* True if s[0..len) is valid UTF-8. */
bool re_valid_utf8(const char *s, size_t len);

/* ---- matchers -------------------------------------------------------------------------- */

enum re_match_type { RE_MATCH_EQ, RE_MATCH_NEQ, RE_MATCH_RE, RE_MATCH_NRE };

/* A label matcher. Regexes are fully anchored and use PCRE2 with RE2-compatible options,
 * as Prometheus anchors its RE2 regexes. Opaque compiled state hangs off re. */
struct re_matcher {
    enum re_match_type type;
    char *name;
    char *value;
    void *re; /* compiled regex for RE/NRE, NULL otherwise */
};

/* Initialises m (caller storage) with copies of name and value (borrows both) and
 * compiles the regex. Returns 0, -ENOMEM, or -EINVAL with err filled for a bad regex. */
int re_matcher_init(struct re_matcher *m, enum re_match_type type, const char *name,
                    const char *value, struct perr *err);
/* Releases what re_matcher_init acquired; tolerates a zeroed struct. */
void re_matcher_fini(struct re_matcher *m);
/* True if value (NUL-terminated; NULL means the label is absent, i.e. "") matches.
 * Thread-safe: concurrent callers may share one matcher. */
bool re_matcher_matches(const struct re_matcher *m, const char *value);
/* True if the matcher matches the empty string (Prometheus: such a matcher also selects
 * series that lack the label). */
bool re_matcher_matches_empty(const struct re_matcher *m);

/* ---- series source ------------------------------------------------------------------- */

/* A native histogram sample: float counts, absolute per bucket (not deltas). */
struct re_span {
    int32_t offset;
    uint32_t length;
};
struct re_hist {
    int32_t schema;
    uint8_t reset_hint; /* RE_HINT_* */
    double zero_threshold, zero_count, count, sum;
    const struct re_span *pspans;
    size_t npspans;
    const double *pbuckets;
    size_t npbuckets;
    const struct re_span *nspans;
    size_t nnspans;
    const double *nbuckets;
    size_t nnbuckets;
    const double *custom_values;
    size_t ncustom;
};
enum { RE_HINT_UNKNOWN, RE_HINT_RESET, RE_HINT_NOT_RESET, RE_HINT_GAUGE };

/* The store visits each matching series once, samples in time order within [mint,maxt];
 * hists[i] is NULL for float samples (hists itself may be NULL when all are floats). Labels sorted by name, include __name__. All pointers
 * are borrowed for the duration of the call. Return nonzero to stop (it is passed back). */
typedef int re_visit_fn(void *arg, const struct re_label *labels, size_t nlabels,
                        const int64_t *ts, const double *vals,
                        const struct re_hist *const *hists, size_t n);
/* A narrow read interface; select borrows the matchers (all must match). */
struct re_source {
    int (*select)(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                  re_visit_fn *fn, void *arg);
    void *ctx;
};

/* Frees labels[i].name/value and the array (labels from promql_parse_series_desc). */
void re_labels_free(struct re_label *labels, size_t n);

/* ---- PromQL ---------------------------------------------------------------------------- */

struct promql_expr; /* opaque AST */

/* Parses src (borrows). Returns new (free with promql_free); NULL with err filled
 * (line/col 1-based, msg "parse error: ...") on a syntax or type error, or on OOM. */
struct promql_expr *promql_parse(const char *src, struct perr *err);
void promql_free(struct promql_expr *e);

enum promql_vtype { PROMQL_SCALAR, PROMQL_VECTOR, PROMQL_MATRIX, PROMQL_STRING };
enum promql_vtype promql_expr_type(const struct promql_expr *e);
/* Returns new: canonical text as Prometheus's String() prints it; NULL on OOM. */
char *promql_expr_string(const struct promql_expr *e);
/* Calls fn for each vector selector with its matchers (borrowed). Stops at and returns
 * the first nonzero return of fn; 0 otherwise. */
int promql_foreach_selector(const struct promql_expr *e,
                            int (*fn)(void *arg, const struct re_matcher *m, size_t nm),
                            void *arg);

struct promql_opts {
    int64_t lookback_ms; /* default 5m */
    bool compat_v2;      /* Prometheus 2.x: windows include their start; linear NH interp. */
    size_t max_samples;  /* default 50M */
    bool (*cancelled)(void *arg);
    void *cancel_arg;
};
/* Fills o with the defaults: 5m lookback, v3 semantics, 50M samples, no cancel hook. */
void promql_opts_default(struct promql_opts *o);

struct promql_point {
    int64_t t;
    double v;
    struct re_hist *h; /* NULL for floats; owned by the result */
};
struct promql_series {
    struct re_label *labels; /* owned strings */
    size_t nlabels;
    struct promql_point *points;
    size_t npoints;
};
struct promql_result {
    enum promql_vtype type;
    double scalar;
    int64_t t;
    char *str;
    struct promql_series *series;
    size_t nseries;
    char **warnings;
    size_t nwarnings;
};
/* Evaluate e (borrows e, src, o) at t_ms. On success *out is returns new (free with
 * promql_result_free). Returns 0, or -EINVAL/-ENOMEM/-E2BIG/-ECANCELED with err->msg. */
int promql_eval_instant(const struct promql_expr *e, const struct re_source *src, int64_t t_ms,
                        const struct promql_opts *o, struct promql_result **out,
                        struct perr *err);
/* Range evaluation: result is a matrix (or a scalar-valued matrix {}), sorted by labels. */
int promql_eval_range(const struct promql_expr *e, const struct re_source *src,
                      int64_t start_ms, int64_t end_ms, int64_t step_ms,
                      const struct promql_opts *o, struct promql_result **out,
                      struct perr *err);
void promql_result_free(struct promql_result *r);

/* Prometheus duration ("1m30s", "5m", "1y", "0") to ms; -EINVAL on bad input. */
int promql_parse_duration(const char *s, int64_t *ms);

/* Series notation shared by .test `load` lines and promtool `input_series`:
 * `metric{a="b"}`. *labels is returns new (sorted; free with re_labels_free). */
int promql_parse_series_desc(const char *text, struct re_label **labels, size_t *nlabels,
                             struct perr *err);
/* Expands values notation ("1+2x3 _ stale {{schema:0 sum:5 ...}}"), calling fn for each
 * slot idx (missing=true for `_`); h is borrowed for the call (NULL for floats). A nonzero
 * return of fn stops and is returned. */
int promql_expand_values(const char *text,
                         int (*fn)(void *arg, size_t idx, bool missing, double v,
                                   const struct re_hist *h),
                         void *arg, struct perr *err);

/* ---- in-memory store (tests, `promlet test rules`) -------------------------------------- */

struct re_memstore;
/* Returns new empty store; NULL on OOM. */
struct re_memstore *re_memstore_new(void);
void re_memstore_free(struct re_memstore *s);
/* Appends one sample (labels borrowed, any order; h borrowed and copied, NULL for a float).
 * Samples of a series are kept sorted by time; a repeated timestamp replaces. */
int re_memstore_add(struct re_memstore *s, const struct re_label *labels, size_t n, int64_t t,
                    double v, const struct re_hist *h);
/* Fills out with a source reading s (borrowed; must outlive the source's use). */
void re_memstore_source(struct re_memstore *s, struct re_source *out);
/* Drops all series. */
void re_memstore_clear(struct re_memstore *s);

#endif
