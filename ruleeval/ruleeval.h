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
/* re_matcher_init for one PromQL version: with v2 true '.' does not match a newline, as in
 * Prometheus 2.x (3.x added the (?s) flag). */
int re_matcher_init_compat(struct re_matcher *m, enum re_match_type type, const char *name,
                           const char *value, bool v2, struct perr *err);
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

/* Upper bound of bucket idx of an exponential schema (-4..8), as Prometheus's getBound: the
 * bucket just below the +Inf overflow ends at DBL_MAX (lower bound: idx - 1). */
double re_hist_bound(int32_t idx, int32_t schema);
enum { RE_HINT_UNKNOWN, RE_HINT_RESET, RE_HINT_NOT_RESET, RE_HINT_GAUGE };

/* The store visits each matching series once, samples in time order within [mint,maxt];
 * hists[i] is NULL for float samples (hists itself may be NULL when all are floats). Labels sorted
 * by name, include __name__. All pointers are borrowed for the duration of the call. Return nonzero
 * to stop (it is passed back). */
typedef int re_visit_fn(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                        const double *vals, const struct re_hist *const *hists, size_t n);
/* A narrow read interface; select borrows the matchers (all must match). */
struct re_source {
    int (*select)(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
                  re_visit_fn *fn, void *arg);
    /* Optional (NULL: select is used and the caller keeps the last sample): as select, but
     * visits only the newest sample in [mint, maxt] of each series (n == 1). An instant
     * selector needs nothing more, and a store can find it without reading the window. */
    int (*select_last)(void *ctx, const struct re_matcher *m, size_t nm, int64_t mint, int64_t maxt,
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
/* promql_parse for one language version: v2 true parses Prometheus 2.42's PromQL (its function
 * set with holt_winters, no quoted label names, no zero durations), false is promql_parse. */
struct promql_expr *promql_parse_compat(const char *src, bool v2, struct perr *err);
void promql_free(struct promql_expr *e);

enum promql_vtype { PROMQL_SCALAR, PROMQL_VECTOR, PROMQL_MATRIX, PROMQL_STRING };
enum promql_vtype promql_expr_type(const struct promql_expr *e);
/* Returns new: canonical text as Prometheus's String() prints it; NULL on OOM. */
char *promql_expr_string(const struct promql_expr *e);
/* Calls fn for each vector selector with its matchers (borrowed). Stops at and returns
 * the first nonzero return of fn; 0 otherwise. */
int promql_foreach_selector(const struct promql_expr *e,
                            int (*fn)(void *arg, const struct re_matcher *m, size_t nm), void *arg);
/* Whether e orders its result itself: sort(), sort_desc(), sort_by_label*(), topk() or
 * bottomk() anywhere in it (the order they make survives `or` and other operators). */
bool promql_orders_result(const struct promql_expr *e);

struct promql_opts {
    int64_t lookback_ms; /* default 5m; 0 also means 5m, as in Prometheus */
    bool compat_v2;      /* Prometheus 2.x: windows include their start; linear NH interp. */
    size_t max_samples;  /* default 50M; 0 = no limit */
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
    struct re_label *labels; /* owned by the result (freed by promql_result_free) */
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
                        const struct promql_opts *o, struct promql_result **out, struct perr *err);
/* Range evaluation: result is a matrix (or a scalar-valued matrix {}), sorted by labels. */
int promql_eval_range(const struct promql_expr *e, const struct re_source *src, int64_t start_ms,
                      int64_t end_ms, int64_t step_ms, const struct promql_opts *o,
                      struct promql_result **out, struct perr *err);
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
typedef int template_query_fn(void *arg, const char *expr, int64_t ts_ms, template_emit_fn *emit,
                              void *emit_arg, char *errbuf, size_t errlen);

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
/* Expands a parsed template; on an execution error returns the value Prometheus stores,
 * "<error expanding template: error executing template NAME: ...>". Returns new; NULL only
 * on OOM. */
char *template_expand_text(const struct template *t, const struct template_data *d);
/* Formats v as Go's %v for float64 (strconv 'g', shortest), as $value prints. Returns the
 * length written (snprintf semantics); buf receives at most size bytes. */
int template_format_float(char *buf, size_t size, double v);
/* Parses a Prometheus duration ("1h30m", "5m", "0s", units y w d h m s ms) into
 * milliseconds. Returns 0, or -EINVAL for bad syntax / overflow. s borrowed. */
int template_parse_duration(const char *s, int64_t *ms);
/* Formats ms as Prometheus' model.Duration.String() ("1h30m", "0s", "1d", "100ms").
 * Returns the length written (snprintf semantics). */
int template_format_duration(char *buf, size_t size, int64_t ms);

/* ---- rule files (rulefile.c) ------------------------------------------------------------ */

enum rulefile_kind { RULEFILE_RECORD, RULEFILE_ALERT };

/* A label or annotation as written in the file (values may be templates). */
struct rulefile_kv {
    char *name;
    char *value;
};

/* One rule as loaded. Positions are 1-based line:col of the YAML nodes (0 if absent). */
struct rulefile_rule {
    enum rulefile_kind kind;
    char *name;              /* record: metric name; alert: alert name */
    char *expr;              /* as written */
    struct promql_expr *ast; /* parsed expr (owned) */
    int64_t for_ms, keep_firing_for_ms;
    struct rulefile_kv *labels; /* file order */
    size_t nlabels;
    struct rulefile_kv *annotations;
    size_t nannotations;
    int line, col;           /* the rule's mapping */
    int expr_line, expr_col; /* the expr value */
};

struct rulefile_group {
    char *name;
    int64_t interval_ms;        /* 0 = not set (use the global evaluation interval) */
    int64_t query_offset_ms;    /* 0 = not set */
    int64_t limit;              /* 0 = unlimited */
    struct rulefile_kv *labels; /* group labels (added to every rule's output) */
    size_t nlabels;
    struct rulefile_rule *rules;
    size_t nrules;
    int line, col;
};

struct rulefile {
    char *name;
    struct rulefile_group *groups;
    size_t ngroups;
    size_t nrules; /* over all groups */
};

struct rulefile_opts {
    bool ignore_unknown_fields; /* promtool --ignore-unknown-fields */
    bool legacy_names;          /* Prometheus 2.x name validation ([a-zA-Z_][a-zA-Z0-9_]*) */
    bool compat_v2;             /* expressions in Prometheus 2.42's PromQL (promql_parse_compat) */
};

/* Loads a Prometheus rule file from buf (borrowed, len bytes; only the first YAML document
 * is used) and validates it as rulefmt.Parse + promtool do: strict fields, group names,
 * record/alert/expr presence, names, PromQL via promql_parse, alert templates. name is used
 * in messages. o may be NULL (defaults: strict, UTF-8 names). Returns new (rulefile_free), or
 * NULL with err set to the first problem (line:col and a message such as
 * `group "g", rule 1, "x": could not parse expression: ...`); err->line 0 when unknown. */
struct rulefile *rulefile_load(const char *name, const char *buf, size_t len,
                               const struct rulefile_opts *o, struct perr *err);
/* Frees f; accepts NULL. */
void rulefile_free(struct rulefile *f);
/* `promtool check rules` for one file: returns new text, "Checking NAME\n  SUCCESS: N rules
 * found\n\n" or "Checking NAME\n  FAILED:\nNAME: L:C: msg\n...\n\n" listing every problem;
 * *failed is set to true when the file is invalid. A valid file with duplicate rules (same
 * name and labels) gets promtool's non-fatal "lint error N duplicate rule(s) found." report
 * instead of the SUCCESS line, with *failed false. NULL only on OOM. */
char *rulefile_check(const char *name, const char *buf, size_t len, const struct rulefile_opts *o,
                     bool *failed);

/* ---- alert state (alert.c) -------------------------------------------------------------- */

/* "Unset" for the timestamps below (Go's zero time.Time). */
#define ALERT_TS_NONE INT64_MIN

enum alert_state { ALERT_INACTIVE, ALERT_PENDING, ALERT_FIRING };
enum alert_health { ALERT_HEALTH_UNKNOWN, ALERT_HEALTH_OK, ALERT_HEALTH_ERR };

/* One alert of an alerting rule (rules/alerting.go Alert). Read-only for callers. */
struct alert {
    struct re_label *labels; /* sorted; includes alertname; no __name__ */
    size_t nlabels;
    struct re_label *annotations; /* sorted by name, expanded */
    size_t nannotations;
    double value;
    enum alert_state state;
    int64_t active_at, fired_at, resolved_at, last_sent_at, valid_until, keep_firing_since;
    /* sub-ms ns of active_at and keep_firing_since: Prometheus' evaluation slots are in ns
     * and its API prints them so (0 outside slot evaluations) */
    int32_t active_ns, keep_firing_ns;
};

/* An alerting rule's runtime state. Opaque. */
struct alert_rule;

/* One element of the rule's query result at the evaluation time; labels borrowed, sorted,
 * may include __name__. A scalar result is one element with no labels. */
struct alert_sample {
    const struct re_label *labels;
    size_t nlabels;
    double value;
};

/* What templates see besides the sample: external labels/URL and the query() hook. */
struct alert_env {
    const struct re_label *ext_labels; /* borrowed */
    size_t next_labels;
    const char *external_url;
    template_query_fn *query;
    void *query_arg;
    int32_t ts_ns; /* sub-ms ns of the evaluation time (an evaluation slot's), else 0 */
};

/* Creates the state for alerting rule r of group g (both borrowed; name, expr (the canonical
 * text of r->ast when parsed, as Prometheus prints it), for,
 * keep_firing_for, labels (group labels first, rule labels win) and annotations are
 * copied). Returns new (alert_rule_free); NULL on OOM or when r is not an alerting rule. */
struct alert_rule *alert_rule_new(const struct rulefile_rule *r, const struct rulefile_group *g);
void alert_rule_free(struct alert_rule *r);

/* One evaluation at ts_ms with the query result (AlertingRule.Eval): builds alert label sets
 * (sample labels minus __name__, templated rule labels, alertname), updates
 * pending/firing/inactive, keep_firing_for and the 15-minute resolved retention, applies
 * limit (> 0; exceeding it drops every alert and errors, as Prometheus). Returns 0, -EINVAL
 * with err set (duplicate label sets after applying alert labels, limit exceeded) -- the
 * rule's health becomes err and, for duplicates, its state is unchanged -- or -ENOMEM. */
int alert_rule_eval(struct alert_rule *r, int64_t ts_ms, const struct alert_sample *res, size_t n,
                    int64_t limit, const struct alert_env *env, struct perr *err);
/* Records a query failure at ts_ms as the rule's health (err, lastError = msg). */
void alert_rule_set_error(struct alert_rule *r, int64_t ts_ms, const char *msg);

/* Calls fn for the ALERTS{...,alertstate} = 1 and ALERTS_FOR_STATE{...} = ActiveAt (unix s)
 * series of every pending/firing alert (labels borrowed, sorted, include __name__). Stops at
 * and returns fn's first nonzero return. */
int alert_rule_series(const struct alert_rule *r,
                      int (*fn)(void *arg, const struct re_label *labels, size_t n, double v),
                      void *arg);

/* The alerts kept by the rule: pending, firing and resolved-but-retained ones. */
size_t alert_rule_nalerts(const struct alert_rule *r);
const struct alert *alert_rule_alert(const struct alert_rule *r, size_t i);
/* Rule-level state: firing if any alert fires, else pending if any pends, else inactive. */
enum alert_state alert_rule_state(const struct alert_rule *r);
enum alert_health alert_rule_health(const struct alert_rule *r);
const char *alert_rule_last_error(const struct alert_rule *r); /* "" when ok */
const char *alert_rule_name(const struct alert_rule *r);
const char *alert_rule_expr(const struct alert_rule *r);
int64_t alert_rule_for(const struct alert_rule *r);
int64_t alert_rule_keep_firing_for(const struct alert_rule *r);
/* The rule's configured labels / annotations (raw templates, borrowed). */
const struct rulefile_kv *alert_rule_labels(const struct alert_rule *r, size_t *n);
const struct rulefile_kv *alert_rule_annotations(const struct alert_rule *r, size_t *n);
/* "inactive" / "pending" / "firing". */
const char *alert_state_string(enum alert_state s);

/* True if dst and src are the "same" rule for state carry-over on reload (same name,
 * expr, labels and annotations as Prometheus' nameAndLabels/Equals). */
bool alert_rule_same(const struct alert_rule *a, const struct alert_rule *b);
/* Copies src's alerts (active, pending and retained resolved ones) into dst, replacing
 * dst's, as Group.CopyState does on reload. Returns 0 / -ENOMEM. */
int alert_rule_copy_state(struct alert_rule *dst, const struct alert_rule *src);
/* Restores `for` state after a restart from ALERTS_FOR_STATE: for every pending alert with
 * labels equal to the given set, sets ActiveAt = active_at_ms (Prometheus' RestoreForState,
 * without its outage adjustment). Returns how many alerts were updated. */
size_t alert_rule_restore_for_state(struct alert_rule *r, const struct re_label *labels, size_t n,
                                    int64_t active_at_ms);

/* A notification for Alertmanager/webhooks (notifier.Alert); pointers borrowed from the
 * alert and valid until the next alert_rule_eval. */
struct alert_notice {
    const struct re_label *labels;
    size_t nlabels;
    const struct re_label *annotations;
    size_t nannotations;
    int64_t starts_at; /* FiredAt */
    int64_t ends_at;   /* ResolvedAt when resolved, else ValidUntil */
    bool resolved;
    double value;
    const char *generator_url; /* <external_url>/graph?g0.expr=<expr>&g0.tab=1 */
};

/* Prometheus' sendAlerts at ts_ms: for each kept alert that needsSending (not pending; resolved
 * since the last send, or last send + resend_delay < ts), sets LastSentAt = ts and
 * ValidUntil = ts + 4 * max(resend_delay, interval) and calls fn with its notice. Returns the
 * number of notices, or fn's first negative return. */
int alert_rule_sends(struct alert_rule *r, int64_t ts_ms, int64_t resend_delay_ms,
                     int64_t interval_ms, const char *external_url,
                     int (*fn)(void *arg, const struct alert_notice *a), void *arg);

/* ---- JSON payloads (payload.c) ------------------------------------------------------------ */

/* Alertmanager's model.LabelSet.Fingerprint: FNV-1a 64 over the labels sorted by name, each
 * name and value followed by 0xff. labels borrowed, any order. */
uint64_t payload_fingerprint(const struct re_label *labels, size_t n);
/* Returns new: "<external_url>/graph?g0.expr=<query-escaped expr>&g0.tab=1" (Prometheus'
 * generatorURL); NULL on OOM. */
char *payload_generator_url(const char *external_url, const char *expr);

/* The group an Alertmanager webhook notification is about. */
struct payload_webhook_group {
    const char *receiver;                /* e.g. "webhook" */
    const char *external_url;            /* Alertmanager's (or promlet's) external URL */
    const struct re_label *group_labels; /* borrowed */
    size_t ngroup_labels;
    const char *group_key; /* NULL: "{}:{<group labels>}" as the root route builds */
    size_t truncated_alerts;
};
/* Returns new: Alertmanager webhook payload version "4" for alerts a[0..n) (fields and order
 * as Alertmanager's webhook notifier; status "resolved" only when every alert is resolved;
 * commonLabels/commonAnnotations = pairs shared by all alerts; firing alerts carry the zero
 * endsAt as Alertmanager shows them). NULL on OOM. */
char *payload_webhook(const struct payload_webhook_group *g, const struct alert_notice *a,
                      size_t n);
/* Returns new: the JSON array Prometheus POSTs to Alertmanager's /api/v2/alerts
 * (annotations (if any), endsAt, startsAt, generatorURL, labels; millisecond RFC3339).
 * ext_labels (borrowed, may be NULL) are added where the alert lacks them, as the notifier
 * does. NULL on OOM. */
char *payload_am_alerts(const struct alert_notice *a, size_t n, const struct re_label *ext_labels,
                        size_t next_labels);
/* Returns new: GET /api/v1/alerts body over rules[0..n): every pending/firing alert
 * (labels, annotations, state, activeAt, keepFiringSince when set, value in Go 'e' format).
 * NULL on OOM. */
char *payload_api_alerts(const struct alert_rule *const *rules, size_t n);

/* One rule for GET /api/v1/rules: alerting (alert != NULL) or recording. */
struct payload_rule {
    const struct alert_rule *alert;   /* alerting rule state, or NULL */
    const char *name, *query;         /* recording rules (alerting: taken from alert) */
    const struct rulefile_kv *labels; /* recording rules */
    size_t nlabels;
    enum alert_health health; /* recording rules */
    const char *last_error;   /* recording rules; NULL = "" */
    double eval_seconds;
    int64_t last_eval_ms; /* ALERT_TS_NONE: zero time */
};
struct payload_rule_group {
    const char *name, *file;
    int64_t interval_ms, limit;
    double eval_seconds;
    int64_t last_eval_ms;
    const struct payload_rule *rules;
    size_t nrules;
};
/* Returns new: GET /api/v1/rules body in Prometheus' shape. NULL on OOM. */
char *payload_api_rules(const struct payload_rule_group *g, size_t n);

/* ---- rule groups (rulegroup.c) ------------------------------------------------------------ */

/* A rule group's runtime: evaluates its recording and alerting rules in order at one
 * timestamp (rules/group.go Eval), writes outputs (recorded series, ALERTS,
 * ALERTS_FOR_STATE) through a callback so later rules see earlier ones, and writes stale
 * markers for series that an earlier evaluation produced and this one did not. Opaque. */
struct rulegroup;

/* Appends one output sample (labels borrowed, sorted, include __name__; h NULL for floats).
 * Returns 0 or -errno. */
typedef int rulegroup_append_fn(void *arg, const struct re_label *labels, size_t n, int64_t ts,
                                double v, const struct re_hist *h);

struct rulegroup_env {
    const struct re_source *src;     /* where queries read (must see appended samples) */
    const struct promql_opts *popts; /* NULL: promql_opts_default */
    rulegroup_append_fn *append;
    void *append_arg;
    const struct re_label *ext_labels; /* for $externalLabels */
    size_t next_labels;
    const char *external_url; /* for $externalURL */
};

/* Creates the runtime of group g. Borrows g (and its rules' parsed expressions): the
 * rulefile must outlive the group. Returns new (rulegroup_free); NULL on OOM. */
struct rulegroup *rulegroup_new(const struct rulefile_group *g);
void rulegroup_free(struct rulegroup *g);
/* Evaluates every rule at ts_ms (queries at ts - query_offset). A rule that fails (query
 * error, duplicate output label sets, limit) records its error (health err), writes nothing
 * and keeps its previous series; the others still run. Returns the number of failed rules,
 * or -ENOMEM / the append callback's error. */
int rulegroup_eval(struct rulegroup *g, int64_t ts_ms, const struct rulegroup_env *env);
/* Writes stale markers at ts_ms for every series the group produced last (a group removed
 * on reload). Returns 0 or -errno. */
int rulegroup_stale_all(struct rulegroup *g, int64_t ts_ms, const struct rulegroup_env *env);
/* Carries state from old to g on reload (Group.CopyState): alerting rules matched by
 * alert_rule_same get their alerts; rules matched by kind+name+expr keep their previous
 * series (so stale markers stay right). Returns 0 / -ENOMEM. */
int rulegroup_copy_state(struct rulegroup *g, const struct rulegroup *old);

const struct rulefile_group *rulegroup_def(const struct rulegroup *g);
size_t rulegroup_nrules(const struct rulegroup *g);
/* The alerting rule state of rule i, NULL for recording rules. */
struct alert_rule *rulegroup_alert_rule(const struct rulegroup *g, size_t i);
enum alert_health rulegroup_rule_health(const struct rulegroup *g, size_t i);
const char *rulegroup_rule_error(const struct rulegroup *g, size_t i); /* "" when ok */

/* ---- promtool test rules (ruletest.c) ---------------------------------------------------- */

/* Reads path (borrowed) into *buf (returns new, free()) / *len. Returns 0 or -errno. */
typedef int ruletest_read_fn(void *arg, const char *path, char **buf, size_t *len);
/* Expands a glob pattern (borrowed) into *paths (returns new: array and strings, free()).
 * Returns 0 or -errno; no match is 0 with *n = 0. */
typedef int ruletest_glob_fn(void *arg, const char *pattern, char ***paths, size_t *n);

struct ruletest_opts {
    bool compat_v2;             /* Prometheus 2.x PromQL semantics (promtool 2.42 agreement) */
    double float_tolerance;     /* relative tolerance for sample values; 0 = exact */
    bool ignore_unknown_fields; /* --ignore-unknown-fields (rule files only) */
    const char *const *run;     /* --run regexes (any matches); NULL/0 = all groups */
    size_t nrun;
    ruletest_glob_fn *glob; /* NULL: rule_files entries are used literally */
};

/* Runs one unit-test file as `promtool test rules` does (Prometheus 3 format): loads its
 * rule files (relative to the test file's directory), evaluates every group at each
 * evaluation_interval step over the input series, checks alert_rule_test and
 * promql_expr_test cases. *report (returns new) receives promtool's output for the file
 * ("Unit Testing:  FILE\n  SUCCESS\n\n" or "  FAILED:" and the errors). Returns 0 when
 * every selected test group passes, 1 on any failure (including unreadable or invalid files,
 * as promtool exits 1), -ENOMEM on OOM. */
int ruletest_run(const char *test_file, const struct ruletest_opts *o, ruletest_read_fn *read_file,
                 void *arg, char **report);

#endif
