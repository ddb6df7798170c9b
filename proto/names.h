/* SPDX-License-Identifier: Apache-2.0 */
/* names: private helpers shared by the decoders (UTF-8 and Prometheus name checks, quoting). */
#ifndef PROMLET_PROTO_NAMES_H
#define PROMLET_PROTO_NAMES_H

#include <stdbool.h>
#include <stddef.h>

/* True when s[0..len) is valid UTF-8 as Go's utf8.Valid defines it (no overlongs, no
 * surrogates, nothing above U+10FFFF). */
bool names_utf8_valid(const char *s, size_t len);

/* Legacy metric name [a-zA-Z_:][a-zA-Z0-9_:]* (non-empty). */
bool names_metric_ok(const char *s, size_t len);

/* Legacy label name [a-zA-Z_][a-zA-Z0-9_]* (non-empty). */
bool names_label_ok(const char *s, size_t len);

/* Writes s as a Go-%q-like quoted string into out (cap bytes, always NUL-terminated),
 * escaping quotes, backslashes and every byte outside printable ASCII as \xNN, and cutting
 * long input with "..." so that the result fits in an error line. Returns out. */
char *names_quote(char *out, size_t cap, const char *s, size_t len);

#endif
