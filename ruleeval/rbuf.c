/* SPDX-License-Identifier: Apache-2.0 */
/* Growable byte buffer with the Go-compatible formatting ruleeval's outputs need. */
#include "rbuf.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rbuf_init(struct rbuf *b) {
    memset(b, 0, sizeof(*b));
}

void rbuf_fini(struct rbuf *b) {
    free(b->p);
    memset(b, 0, sizeof(*b));
}

void rbuf_reset(struct rbuf *b) {
    b->len = 0;
    if (b->p) b->p[0] = '\0';
}

static bool grow(struct rbuf *b, size_t extra) {
    if (b->oom) return false;
    if (b->len + extra + 1 <= b->cap) return true;
    size_t nc = b->cap ? b->cap : 64;
    while (nc < b->len + extra + 1)
        nc *= 2;
    char *np = realloc(b->p, nc);
    if (!np) {
        b->oom = true;
        return false;
    }
    b->p = np;
    b->cap = nc;
    return true;
}

void rbuf_put(struct rbuf *b, const char *s, size_t n) {
    if (!grow(b, n)) return;
    if (n) memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void rbuf_puts(struct rbuf *b, const char *s) {
    rbuf_put(b, s, strlen(s));
}

void rbuf_putc(struct rbuf *b, char c) {
    rbuf_put(b, &c, 1);
}

void rbuf_printf(struct rbuf *b, const char *fmt, ...) {
    va_list ap;
    char small[256];
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof(small)) {
        rbuf_put(b, small, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *rbuf_take(struct rbuf *b) {
    if (b->oom) {
        rbuf_fini(b);
        return NULL;
    }
    char *p = b->p;
    if (!p) p = calloc(1, 1);
    memset(b, 0, sizeof(*b));
    return p;
}

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid. */
static size_t utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned min;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    return n;
}

void rbuf_json_str(struct rbuf *b, const char *s, bool html) {
    /* Mirrors encoding/json: control characters as \u00XX (\n \r \t short forms), HTML
     * metacharacters escaped by default, invalid UTF-8 replaced by U+FFFD, and U+2028/2029
     * escaped for JavaScript. */
    const unsigned char *p = (const unsigned char *)s;
    rbuf_putc(b, '"');
    while (*p) {
        unsigned c = *p;
        if (c < 0x80) {
            if (c == '"' || c == '\\') {
                rbuf_putc(b, '\\');
                rbuf_putc(b, (char)c);
            } else if (c == '\n')
                rbuf_puts(b, "\\n");
            else if (c == '\r')
                rbuf_puts(b, "\\r");
            else if (c == '\t')
                rbuf_puts(b, "\\t");
            else if (c < 0x20 || (html && (c == '<' || c == '>' || c == '&')))
                rbuf_printf(b, "\\u%04x", c);
            else
                rbuf_putc(b, (char)c);
            p++;
            continue;
        }
        size_t n = utf8_len(p);
        if (n == 0) {
            rbuf_puts(b, "\\ufffd");
            p++;
            continue;
        }
        if (n == 3 && p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9)) {
            rbuf_printf(b, "\\u202%c", p[2] == 0xa8 ? '8' : '9');
        } else
            rbuf_put(b, (const char *)p, n);
        p += n;
    }
    rbuf_putc(b, '"');
}

/* Shortest decimal digits of finite v != 0: digits into d (no dot), returns the decimal
 * exponent X with v = d[0].d[1..] x 10^X. */
static int shortest_digits(double v, char *d, size_t dsz) {
    char tmp[40];
    for (int prec = 0; prec < 17; prec++) {
        snprintf(tmp, sizeof(tmp), "%.*e", prec, v);
        if (strtod(tmp, NULL) == v) break;
    }
    /* tmp is like -1.2345e+06 */
    const char *p = tmp;
    if (*p == '-') p++;
    size_t n = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && n + 1 < dsz) d[n++] = *p;
    d[n] = '\0';
    /* trim trailing zeros (never the first digit) */
    while (n > 1 && d[n - 1] == '0')
        d[--n] = '\0';
    return atoi(p + 1);
}

void rbuf_gofloat(struct rbuf *b, double v, char fmt) {
    if (isnan(v)) {
        rbuf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        rbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (signbit(v)) rbuf_putc(b, '-');
    if (v == 0) {
        rbuf_puts(b, fmt == 'e' ? "0e+00" : "0");
        return;
    }
    char d[32];
    int x = shortest_digits(fabs(v), d, sizeof(d));
    size_t nd = strlen(d);
    if (fmt == 'e' || x < -4 || x >= 6 /* Go uses precision 6 for the shortest form */) {
        rbuf_putc(b, d[0]);
        if (nd > 1) {
            rbuf_putc(b, '.');
            rbuf_put(b, d + 1, nd - 1);
        }
        rbuf_printf(b, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
        return;
    }
    if (x < 0) {
        rbuf_puts(b, "0.");
        for (int i = 0; i < -x - 1; i++)
            rbuf_putc(b, '0');
        rbuf_put(b, d, nd);
        return;
    }
    /* x >= 0: integer part has x+1 digits */
    for (int i = 0; i <= x; i++)
        rbuf_putc(b, (size_t)i < nd ? d[i] : '0');
    if (nd > (size_t)x + 1) {
        rbuf_putc(b, '.');
        rbuf_put(b, d + x + 1, nd - (size_t)x - 1);
    }
}

void rbuf_gofmt_prec(struct rbuf *b, double v, char verb, int prec, bool plus) {
    if (isnan(v)) {
        rbuf_puts(b, "NaN");
        return;
    }
    if (isinf(v)) {
        rbuf_puts(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    if (prec < 0 && (verb == 'g' || verb == 'v')) {
        if (plus && !signbit(v)) rbuf_putc(b, '+');
        rbuf_gofloat(b, v, 'g');
        return;
    }
    char f[16];
    if (prec < 0)
        snprintf(f, sizeof(f), "%%%s%c", plus ? "+" : "", verb == 'v' ? 'g' : verb);
    else
        snprintf(f, sizeof(f), "%%%s.%d%c", plus ? "+" : "", prec, verb == 'v' ? 'g' : verb);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    rbuf_printf(b, f, v);
#pragma GCC diagnostic pop
}

/* Days since 1970-01-01 to civil date (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yy + (*m <= 2);
}

void rbuf_rfc3339(struct rbuf *b, int64_t ms, int frac) {
    rbuf_rfc3339_ns(b, ms, frac == 3 ? -1 : 0);
}

void rbuf_rfc3339_ns(struct rbuf *b, int64_t ms, int32_t sub_ns) {
    int64_t secs = ms / 1000, msr = ms % 1000;
    if (msr < 0) {
        msr += 1000;
        secs--;
    }
    int64_t days = secs / 86400, sod = secs % 86400;
    if (sod < 0) {
        sod += 86400;
        days--;
    }
    int64_t y;
    unsigned mo, d;
    civil_from_days(days, &y, &mo, &d);
    rbuf_printf(b, "%04lld-%02u-%02uT%02d:%02d:%02d", (long long)y, mo, d, (int)(sod / 3600),
                (int)(sod / 60 % 60), (int)(sod % 60));
    if (sub_ns < 0) {
        rbuf_printf(b, ".%03d", (int)msr);
    } else if (msr || sub_ns) {
        char t[16];
        snprintf(t, sizeof(t), "%09lld", (long long)(msr * 1000000 + sub_ns % 1000000));
        size_t n = 9;
        while (n > 0 && t[n - 1] == '0')
            n--;
        rbuf_putc(b, '.');
        rbuf_put(b, t, n);
    }
    rbuf_putc(b, 'Z');
}

void rbuf_query_escape(struct rbuf *b, const char *s) {
    /* url.QueryEscape: unreserved A-Z a-z 0-9 - _ . ~ pass, space becomes '+'. */
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '_' || c == '.' || c == '~')
            rbuf_putc(b, (char)c);
        else if (c == ' ')
            rbuf_putc(b, '+');
        else
            rbuf_printf(b, "%%%02X", c);
    }
}

void rbuf_json_float(struct rbuf *b, double v) {
    /* encoding/json: shortest digits, 'f' layout unless the exponent is < -6 or >= 21, where
     * it uses 'e' with a one-digit minimum exponent (1e-07 -> 1e-7). NaN/Inf are not JSON;
     * we write null for them. */
    if (isnan(v) || isinf(v)) {
        rbuf_puts(b, "null");
        return;
    }
    if (v == 0) {
        rbuf_puts(b, signbit(v) ? "-0" : "0");
        return;
    }
    double a = fabs(v);
    if (a < 1e-6 || a >= 1e21) {
        struct rbuf t;
        rbuf_init(&t);
        rbuf_gofloat(&t, v, 'e');
        if (t.p) {
            char *e = strchr(t.p, 'e');
            if (e && e[2] == '0' && e[3]) {
                rbuf_put(b, t.p, (size_t)(e - t.p) + 2);
                rbuf_puts(b, e + 3);
            } else
                rbuf_puts(b, t.p);
        }
        rbuf_fini(&t);
        return;
    }
    if (v < 0) rbuf_putc(b, '-');
    char d[32];
    int x = shortest_digits(a, d, sizeof(d));
    size_t nd = strlen(d);
    if (x < 0) {
        rbuf_puts(b, "0.");
        for (int i = 0; i < -x - 1; i++)
            rbuf_putc(b, '0');
        rbuf_put(b, d, nd);
        return;
    }
    for (int i = 0; i <= x; i++)
        rbuf_putc(b, (size_t)i < nd ? d[i] : '0');
    if (nd > (size_t)x + 1) {
        rbuf_putc(b, '.');
        rbuf_put(b, d + x + 1, nd - (size_t)x - 1);
    }
}

void rbuf_godur(struct rbuf *b, int64_t ns) {
    /* Go's time.Duration.String() */
    if (ns == 0) {
        rbuf_puts(b, "0s");
        return;
    }
    uint64_t u = ns < 0 ? (uint64_t)(-(ns + 1)) + 1 : (uint64_t)ns;
    if (ns < 0) rbuf_putc(b, '-');
    if (u < 1000000000ULL) {
        const char *unit;
        uint64_t div;
        if (u < 1000) {
            rbuf_printf(b, "%" PRIu64 "ns", u);
            return;
        } else if (u < 1000000) {
            unit = "µs";
            div = 1000;
        } else {
            unit = "ms";
            div = 1000000;
        }
        rbuf_printf(b, "%" PRIu64, u / div);
        uint64_t r = u % div;
        if (r) {
            char f[16];
            int w = div == 1000 ? 3 : 6;
            snprintf(f, sizeof(f), "%0*" PRIu64, w, r);
            int n = w;
            while (n && f[n - 1] == '0')
                n--;
            rbuf_putc(b, '.');
            rbuf_put(b, f, (size_t)n);
        }
        rbuf_puts(b, unit);
        return;
    }
    uint64_t s = u / 1000000000ULL, frac = u % 1000000000ULL;
    uint64_t h = s / 3600, m = s / 60 % 60;
    s %= 60;
    if (h) rbuf_printf(b, "%" PRIu64 "h", h);
    if (h || m) rbuf_printf(b, "%" PRIu64 "m", m);
    rbuf_printf(b, "%" PRIu64, s);
    if (frac) {
        char f[16];
        snprintf(f, sizeof(f), "%09" PRIu64, frac);
        int n = 9;
        while (n && f[n - 1] == '0')
            n--;
        rbuf_putc(b, '.');
        rbuf_put(b, f, (size_t)n);
    }
    rbuf_putc(b, 's');
}
