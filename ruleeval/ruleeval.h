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

/* ---- templates (template.c) ------------------------------------------------------------ */

/* A parsed Go text/template as Prometheus expands alert labels and annotations
 * (template/template.go): actions, variables, pipelines, if/else/range/with/define/template,
 * the text/template built-ins and Prometheus' functions. Opaque. */
struct template;

/* Emits one query-result sample into a template's query() result; labels borrowed
 * (copied by the callee), includes __name__ when the result has it. Returns 0 / -ENOMEM. */
typedef int template_emit_fn(void *emit_arg, const struct re_label *labels, size_t nlabels,
                             double value);
/* Evaluates expr as an instant query at ts_ms and emits every element of the resulting
 * vector (a scalar as one sample with no labels). Returns 0, or a negative errno with a
 * one-line reason in errbuf. expr borrowed. */
typedef int template_query_fn(void *arg, const char *expr, int64_t ts_ms,
                              template_emit_fn *emit, void *emit_arg, char *errbuf,
                              size_t errlen);

/* What a template sees: .Labels/$labels, .ExternalLabels/$externalLabels,
 * .ExternalURL/$externalURL, .Value/$value. All borrowed. */
struct template_data {
    const struct re_label *labels;
    size_t nlabels;
    const struct re_label *ext_labels;
    size_t next_labels;
    const char *external_url; /* NULL = "" */
    double value;
    int64_t ts_ms;            /* evaluation time: query() runs here; now() returns it */
    template_query_fn *query; /* NULL: query() fails with "no query function" */
    void *query_arg;
};

/* Parses text (borrowed, len bytes) as template name. With alert_defs, Prometheus' variable
 * definitions ($labels, $externalLabels, $externalURL, $value) are prepended as
 * rules/alerting.go does. Returns new (template_free), or NULL with err->msg set to Go's
 * text ("template: NAME:LINE: msg"; err->line = line in text) or "out of memory". */
struct template *template_parse(const char *name, const char *text, size_t len, bool alert_defs,
                                struct perr *err);
/* Frees t; accepts NULL. */
void template_free(struct template *t);
/* Executes t on d. On success returns 0 and *out (returns new, free()) holds the text.
 * On an execution error returns -EINVAL and *out holds Go's error text
 * ("template: NAME:LINE:COL: executing ..."); -ENOMEM leaves *out NULL. */
int template_expand(const struct template *t, const struct template_data *d, char **out);
/* Prometheus' alert-template expansion of one label/annotation: parse + expand text with
 * the alert definitions; on failure returns the value Prometheus stores,
 * "<error expanding template: ...>". Returns new; NULL only on OOM. */
char *template_expand_alert(const char *name, const char *text, const struct template_data *d);
/* Formats v as Go's %v for float64 (strconv 'g', shortest), as $value prints. Returns the
 * length written (snprintf semantics); buf receives at most size bytes. */
int template_format_float(char *buf, size_t size, double v);
/* Parses a Prometheus duration ("1h30m", "5m", "0s", units y w d h m s ms) into
 * milliseconds. Returns 0, or -EINVAL for bad syntax / overflow. s borrowed. */
int template_parse_duration(const char *s, int64_t *ms);
/* Formats ms as Prometheus' model.Duration.String() ("1h30m", "0s", "1d", "100ms").
 * Returns the length written (snprintf semantics). */
int template_format_duration(char *buf, size_t size, int64_t ms);

#endif
