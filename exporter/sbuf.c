/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffer. */
#include "sbuf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sbuf_init(struct sbuf *b) {
    memset(b, 0, sizeof(*b));
}

void sbuf_fini(struct sbuf *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void sbuf_reset(struct sbuf *b) {
    b->len = 0;
    b->oom = false;
    if (b->data) b->data[0] = '\0';
}

static int grow(struct sbuf *b, size_t extra) {
    if (b->oom) return -ENOMEM;
    if (b->len + extra + 1 <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->oom = true;
        return -ENOMEM;
    }
    b->data = p;
    b->cap = cap;
    return 0;
}

int sbuf_add(struct sbuf *b, const void *p, size_t len) {
    if (grow(b, len)) return -ENOMEM;
    memcpy(b->data + b->len, p, len);
    b->len += len;
    b->data[b->len] = '\0';
    return 0;
}

int sbuf_adds(struct sbuf *b, const char *s) {
    return sbuf_add(b, s, strlen(s));
}

int sbuf_addc(struct sbuf *b, char c) {
    return sbuf_add(b, &c, 1);
}

int sbuf_vprintf(struct sbuf *b, const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap2);
    va_end(ap2);
    if (n < 0) return -EINVAL;
    if ((size_t)n < sizeof(tmp)) return sbuf_add(b, tmp, (size_t)n);
    if (grow(b, (size_t)n)) return -ENOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int sbuf_printf(struct sbuf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = sbuf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

int sbuf_add_double(struct sbuf *b, double v) {
    if (isnan(v)) return sbuf_add(b, "NaN", 3);
    if (isinf(v)) return sbuf_adds(b, v > 0 ? "+Inf" : "-Inf");
    if (v == 0) /* -0 too: client_golang's writeFloat special-cases f == 0 */
        return sbuf_addc(b, '0');
    /* Shortest representation that round-trips, in Go's 'g' layout: exponent when
     * exp < -4 || exp >= 6 (strconv.FormatFloat(f, 'g', -1, 64): shortest uses eprec 6). */
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec - 1, v);
        if (strtod(tmp, NULL) == v) break;
    }
    /* tmp is d.ddde±XX; rebuild in Go's layout. */
    char digits[24] = {0};
    int nd = 0;
    const char *p = tmp;
    bool neg = false;
    if (*p == '-') {
        neg = true;
        p++;
    }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    char out[48];
    int o = 0;
    if (neg) out[o++] = '-';
    if (exp < -4 || exp >= 6) {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++)
                out[o++] = digits[i];
        }
        o += snprintf(out + o, sizeof(out) - (size_t)o, "e%c%02d", exp < 0 ? '-' : '+',
                      exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > exp; i--)
            out[o++] = '0';
        for (int i = 0; i < nd; i++)
            out[o++] = digits[i];
    } else {
        for (int i = 0; i <= exp || i < nd; i++) {
            if (i == exp + 1) out[o++] = '.';
            out[o++] = i < nd ? digits[i] : '0';
        }
    }
    return sbuf_add(b, out, (size_t)o);
}

char *sbuf_steal(struct sbuf *b, size_t *len) {
    if (b->oom) {
        sbuf_fini(b);
        return NULL;
    }
    if (!b->data) {
        if (grow(b, 0)) return NULL;
        b->data[0] = '\0';
    }
    char *p = b->data;
    if (len) *len = b->len;
    memset(b, 0, sizeof(*b));
    return p;
}
