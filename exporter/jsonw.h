/* SPDX-License-Identifier: Apache-2.0 */
/* A small JSON writer over sbuf that writes values byte for byte as Prometheus's HTTP API does. */
#ifndef PROMLET_EXPORTER_JSONW_H
#define PROMLET_EXPORTER_JSONW_H

#include "ruleeval.h"
#include "sbuf.h"

#include <stddef.h>
#include <stdint.h>

/* Appends s (len bytes, borrowed) as a JSON string literal escaped as Go's encoding/json
 * does with HTML escaping on: \" \\ \n \r \t, other control bytes and <, >, & as \u00XX,
 * U+2028/U+2029 escaped, invalid UTF-8 replaced by \ufffd. */
void jsonw_strn(struct sbuf *b, const char *s, size_t len);
/* jsonw_strn for a NUL-terminated string (borrowed). */
void jsonw_str(struct sbuf *b, const char *s);

/* Appends a sample value as Prometheus's API marshals it: a quoted string holding
 * strconv.FormatFloat(v, 'f', -1, 64), or 'e' when |v| < 1e-6 or |v| >= 1e21 (v != 0);
 * "NaN", "+Inf", "-Inf" for the specials. */
void jsonw_value(struct sbuf *b, double v);
/* Appends a millisecond timestamp as unix seconds the way Prometheus's jsoniter marshaler
 * does: integer seconds, then "." and exactly three digits when the millisecond part is not
 * zero (1.5 s is written 1.500). */
void jsonw_ts(struct sbuf *b, int64_t ms);
/* Appends v as Go's strconv.FormatFloat(v, fmt, -1, 64) for fmt 'f' or 'e' (unquoted;
 * NaN, +Inf, -Inf for the specials). */
void jsonw_gofloat(struct sbuf *b, double v, char fmt);

/* Appends a label set (borrowed; sorted by name) as a JSON object, keys in byte order as
 * Go marshals a map. */
void jsonw_labels(struct sbuf *b, const struct re_label *l, size_t n);

/* Appends a native histogram (borrowed) as Prometheus's API marshals one:
 * {"count":"c","sum":"s","buckets":[[boundaries,"lower","upper","count"],...]} with buckets
 * of zero count left out (and "buckets" omitted when none is left), in ascending order:
 * negative buckets, the zero bucket, positive buckets. boundaries: 0 = (lower, upper],
 * 1 = [lower, upper), 2 = (lower, upper), 3 = [lower, upper]. */
void jsonw_hist(struct sbuf *b, const struct re_hist *h);

#endif
