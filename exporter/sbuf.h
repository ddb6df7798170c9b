/* SPDX-License-Identifier: Apache-2.0 */
/* A growable byte buffer for building responses and exposition text. */
#ifndef PROMLET_EXPORTER_SBUF_H
#define PROMLET_EXPORTER_SBUF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

/* Caller-provided storage; init to all zeros (or sbuf_init). On OOM the buffer sets
 * oom and further appends are ignored, so builders check once at the end. */
struct sbuf {
    char *data;
    size_t len, cap;
    bool oom;
};

void sbuf_init(struct sbuf *b);
/* Frees the data; the struct may be reused after sbuf_init. */
void sbuf_fini(struct sbuf *b);
/* Empties the buffer, keeping its memory. */
void sbuf_reset(struct sbuf *b);
/* Appends len bytes (borrows p). Returns 0 or -ENOMEM. The data stays NUL-terminated. */
int sbuf_add(struct sbuf *b, const void *p, size_t len);
int sbuf_adds(struct sbuf *b, const char *s);
int sbuf_addc(struct sbuf *b, char c);
int sbuf_printf(struct sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap);
/* Appends a double as Prometheus's text format writes it (client_golang's writeFloat: Go's
 * strconv 'g' with the shortest representation, "+Inf", "-Inf", "NaN", and "0" for -0). */
int sbuf_add_double(struct sbuf *b, double v);
/* Transfers ownership of the data to the caller (returns new, free with free()); the
 * buffer is left empty. Returns NULL if the buffer hit OOM. */
char *sbuf_steal(struct sbuf *b, size_t *len);

#endif
