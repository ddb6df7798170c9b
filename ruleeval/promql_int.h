/* SPDX-License-Identifier: Apache-2.0 */
/* Internal PromQL declarations shared by the lexer/parser, printer and evaluator. */
#ifndef PROMLET_RULEEVAL_PROMQL_INT_H
#define PROMLET_RULEEVAL_PROMQL_INT_H

#include "ruleeval.h"

enum pq_kind {
    PQ_NUM,
    PQ_STR,
    PQ_VSEL,
    PQ_MSEL,
    PQ_SUBQ,
    PQ_PAREN,
    PQ_UNARY,
    PQ_BIN,
    PQ_AGG,
    PQ_CALL
};

enum pq_op {
    PQ_OP_NONE,
    PQ_ADD,
    PQ_SUB,
    PQ_MUL,
    PQ_DIV,
    PQ_MOD,
    PQ_POW,
    PQ_ATAN2,
    PQ_EQLC,
    PQ_NEQ,
    PQ_GTR,
    PQ_LSS,
    PQ_GTE,
    PQ_LTE,
    PQ_LAND,
    PQ_LOR,
    PQ_LUNLESS,
};

enum pq_agg {
    PQ_SUM,
    PQ_AVG,
    PQ_MIN,
    PQ_MAX,
    PQ_COUNT,
    PQ_GROUP,
    PQ_STDDEV,
    PQ_STDVAR,
    PQ_TOPK,
    PQ_BOTTOMK,
    PQ_QUANTILE,
    PQ_COUNT_VALUES
};

enum pq_card { PQ_ONE_ONE, PQ_MANY_ONE, PQ_ONE_MANY, PQ_MANY_MANY };

enum pq_at { PQ_AT_NONE, PQ_AT_TS, PQ_AT_START, PQ_AT_END };

struct pq_func;

struct promql_expr {
    enum pq_kind kind;
    int pos;  /* byte offset of the first character */
    int epos; /* byte offset after the last character */
    double num;
    char *str;
    /* selectors and subqueries */
    char *name;
    struct re_matcher *m;
    size_t nm;
    int64_t offset;
    enum pq_at at_kind;
    int64_t at;
    int64_t range, step; /* matrix range; subquery range and step (0 = default) */
    /* children */
    struct promql_expr *a, *b, *param;
    /* binary */
    enum pq_op op;
    bool bool_mod, has_matching, on;
    enum pq_card card;
    char **mlabels;
    size_t nmlabels;
    char **include;
    size_t ninclude;
    /* aggregation */
    enum pq_agg agg;
    bool without, has_grouping;
    char **grouping;
    size_t ngrouping;
    /* call */
    const struct pq_func *fn;
    struct promql_expr **args;
    size_t nargs;
    /* evaluation-time range of data needed by a selector (set per query) */
    int64_t need_min, need_max;
    bool need_set;
    unsigned plus; /* unary `+`s written before this node: no-ops, kept for printing */
    char *src;     /* root only: the source text, for annotation positions */
    int height;    /* tree height, bounded by the parser so that recursion stays shallow */
};

struct pq_func {
    const char *name;
    int nargs; /* required */
    int nopt;  /* optional extra; -1 = variadic */
    enum promql_vtype ret;
    enum promql_vtype argt[4]; /* type of each argument; last repeats for variadic */
    int id;
    int only; /* 0, or the one language version that has the function */
};
enum { PQ_FN_V2 = 1, PQ_FN_V3 = 2 };

/* The function called name in Prometheus 2.42's language (v2) or in 3.x's; NULL if none. */
const struct pq_func *pq_func_lookup(const char *name, bool v2);
enum promql_vtype pq_type(const struct promql_expr *e);
const char *pq_op_str(enum pq_op op);
const char *pq_agg_str(enum pq_agg a);
/* Formats a duration in ms as Prometheus does ("1m30s"); buf of at least 32 bytes. */
void pq_fmt_duration(int64_t ms, char *buf, size_t len);
/* Formats a float as Go's strconv.FormatFloat(v, 'g'/'f', -1, 64) for printing. */
void pq_fmt_float(double v, char *buf, size_t len);

#endif

enum pq_fn {
    F_RATE,
    F_IRATE,
    F_INCREASE,
    F_DELTA,
    F_IDELTA,
    F_DERIV,
    F_PREDICT_LINEAR,
    F_RESETS,
    F_CHANGES,
    F_AVG_OT,
    F_MIN_OT,
    F_MAX_OT,
    F_SUM_OT,
    F_COUNT_OT,
    F_LAST_OT,
    F_FIRST_OT,
    F_PRESENT_OT,
    F_QUANTILE_OT,
    F_STDDEV_OT,
    F_STDVAR_OT,
    F_MAD_OT,
    F_ABSENT_OT,
    F_TS_MIN_OT,
    F_TS_MAX_OT,
    F_TS_LAST_OT,
    F_TS_FIRST_OT,
    F_DES,
    F_ABS,
    F_CEIL,
    F_FLOOR,
    F_ROUND,
    F_CLAMP,
    F_CLAMP_MIN,
    F_CLAMP_MAX,
    F_EXP,
    F_LN,
    F_LOG2,
    F_LOG10,
    F_SQRT,
    F_SGN,
    F_ACOS,
    F_ACOSH,
    F_ASIN,
    F_ASINH,
    F_ATAN,
    F_ATANH,
    F_COS,
    F_COSH,
    F_SIN,
    F_SINH,
    F_TAN,
    F_TANH,
    F_DEG,
    F_RAD,
    F_PI,
    F_TIMESTAMP,
    F_TIME,
    F_VECTOR,
    F_SCALAR,
    F_ABSENT,
    F_LABEL_REPLACE,
    F_LABEL_JOIN,
    F_SORT,
    F_SORT_DESC,
    F_SORT_BY_LABEL,
    F_SORT_BY_LABEL_DESC,
    F_HQUANTILE,
    F_HCOUNT,
    F_HSUM,
    F_HAVG,
    F_HSTDDEV,
    F_HSTDVAR,
    F_HFRACTION,
    F_DAYS_IN_MONTH,
    F_DAY_OF_MONTH,
    F_DAY_OF_WEEK,
    F_DAY_OF_YEAR,
    F_HOUR,
    F_MINUTE,
    F_MONTH,
    F_YEAR,
    F_START,
    F_END,
    F_HQUANTILES,
    F_MIN_OF,
    F_MAX_OF,
    F_STEP,
    F_RANGE,
};

/* ---- native histograms (internal, sparse form) ---- */
struct pq_bkt {
    int32_t i;
    double c;
};
struct pq_hist {
    int32_t schema;
    uint8_t hint;
    double zt, zc, count, sum;
    struct pq_bkt *pb, *nb; /* sorted by index; absolute counts */
    size_t npb, nnb;
    double *cv;
    size_t ncv;
};
#define PQ_SCHEMA_CUSTOM (-53)

/* Returns new copy of a store histogram; NULL on OOM. */
struct pq_hist *pq_hist_from_re(const struct re_hist *h);
/* Returns new deep copy; NULL on OOM. */
struct pq_hist *pq_hist_dup(const struct pq_hist *h);
void pq_hist_free(struct pq_hist *h);
/* Returns new re_hist in one allocation (free() it); NULL on OOM. */
struct re_hist *pq_hist_to_re(const struct pq_hist *h);
/* a += sign*b (b borrowed), converting to the coarser schema. Returns 0, -ENOMEM, or
 * -EDOM for incompatible custom buckets, -EINVAL for mixing custom and exponential. */
int pq_hist_add(struct pq_hist *a, const struct pq_hist *b, double sign);
/* a += sign*b with Prometheus's hint adjustment (collision set on reset/not_reset clash),
 * custom-bound reconciliation (reconciled set) and, if comp is not NULL, Kahan compensation
 * kept in comp (a histogram of a's layout, from pq_hist_new_comp). Either flag may be NULL. */
int pq_hist_add_ex(struct pq_hist *a, struct pq_hist *comp, const struct pq_hist *b, double sign,
                   bool *collision, bool *reconciled);
/* Returns new zeroed compensation histogram with h's layout; NULL on OOM. */
struct pq_hist *pq_hist_new_comp(const struct pq_hist *h);
/* True if any count or the sum is infinite. */
bool pq_hist_overflow(const struct pq_hist *h);
/* Multiplies every count and the sum by f. */
void pq_hist_scale(struct pq_hist *h, double f);
/* Divides every count and the sum by d (true division, as Prometheus's Div). */
void pq_hist_div(struct pq_hist *h, double d);
/* Removes empty buckets. */
void pq_hist_compact(struct pq_hist *h);
/* True if a and b are equal within relative tolerance tol (tol 0 = exact). */
bool pq_hist_equal(const struct pq_hist *a, const struct pq_hist *b, double tol, bool cmp_hint);
/* Bucket bounds of positive (neg=false) or negative bucket index i. */
void pq_hist_bounds(const struct pq_hist *h, bool neg, int32_t i, double *lo, double *hi);
/* True if a counter reset is detected from prev to cur. */
bool pq_hist_detect_reset(const struct pq_hist *cur, const struct pq_hist *prev);
