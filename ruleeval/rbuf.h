/* SPDX-License-Identifier: Apache-2.0 */
/* Private growable byte buffer for ruleeval: JSON strings, Go-style float formatting. */
#ifndef PROMLET_RULEEVAL_RBUF_H
#define PROMLET_RULEEVAL_RBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A NUL-terminated growable buffer. oom latches on the first failed allocation; every
 * later append is a no-op, so callers check once at the end. */
struct rbuf {
    char *p;
    size_t len, cap;
    bool oom;
};

void rbuf_init(struct rbuf *b);
void rbuf_fini(struct rbuf *b);
void rbuf_reset(struct rbuf *b);
void rbuf_put(struct rbuf *b, const char *s, size_t n);
void rbuf_puts(struct rbuf *b, const char *s);
void rbuf_putc(struct rbuf *b, char c);
void rbuf_printf(struct rbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns new: the contents (caller frees with free()); NULL on OOM. Empties b. */
char *rbuf_take(struct rbuf *b);
/* Appends s as a JSON string literal with quotes, escaping as Go's encoding/json does
 * (<, >, & as \u003c etc. when html is true). */
void rbuf_json_str(struct rbuf *b, const char *s, bool html);
/* Appends v as Go's strconv.FormatFloat(v, fmt, -1, 64) for fmt 'g' or 'e':
 * shortest round-tripping digits; NaN, +Inf, -Inf. */
void rbuf_gofloat(struct rbuf *b, double v, char fmt);
/* Appends v as Go's fmt "%.<prec><verb>" for verb e/f/g (prec < 0: Go default);
 * finite values via C printf, specials as Go prints them (NaN, +Inf, -Inf). */
void rbuf_gofmt_prec(struct rbuf *b, double v, char verb, int prec, bool plus);
/* Appends v as Go's encoding/json writes a float64 (NaN/Inf as null). */
void rbuf_json_float(struct rbuf *b, double v);
/* Appends ms since the epoch as RFC3339 UTC. frac: 0 = Go RFC3339Nano trimmed
 * ("...:50.44Z", no fraction when whole), 3 = always three digits (".440Z"). */
void rbuf_rfc3339(struct rbuf *b, int64_t ms, int frac);
/* The same, RFC3339Nano trimmed, for ms plus sub_ns (0..999999) nanoseconds; sub_ns < 0
 * means always three digits (frac 3). */
void rbuf_rfc3339_ns(struct rbuf *b, int64_t ms, int32_t sub_ns);
/* Appends ns as Go's time.Duration.String() ("5m0s", "1.5s", "100ms"). */
void rbuf_godur(struct rbuf *b, int64_t ns);
/* Appends s percent-escaped as Go's url.QueryEscape (space as '+'). */
void rbuf_query_escape(struct rbuf *b, const char *s);

#endif
