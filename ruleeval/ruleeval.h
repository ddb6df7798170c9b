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

/* ---- samples and sources ----------------------------------------------------------------- */

/* A span of native-histogram buckets. */
struct re_span {
    int32_t offset;
    uint32_t length;
};

/* A native histogram sample; bucket counts are absolute (not deltas), as floats. */
struct re_hist {
    int32_t schema;
    uint8_t reset_hint;
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

/* The store visits each matching series once, samples in time order within [mint,maxt];
 * hists[i] is NULL for float samples. Labels sorted by name, include __name__. All pointers
 * are borrowed for the duration of the call. A non-zero return stops the select. */
typedef int re_visit_fn(void *arg, const struct re_label *labels, size_t nlabels,
                        const int64_t *ts, const double *vals, const struct re_hist *const *hists,
                        size_t n);

/* What the evaluator reads series through; the daemon's store provides one. */
struct re_source {
    int (*select)(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                  re_visit_fn *fn, void *arg);
    void *ctx;
};

#endif
