/* SPDX-License-Identifier: Apache-2.0 */
/* JSON writer with Prometheus's API encodings: strings, sample values, timestamps, histograms. */
#include "jsonw.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- strings ----------------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. Mirrors Go's
 * utf8.DecodeRuneInString: no overlongs, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n, unsigned *cp) {
    unsigned c = s[0];
    size_t need;
    unsigned min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 2, min = 0x80, c &= 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3, min = 0x800, c &= 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4, min = 0x10000, c &= 0x07;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff)) return 0;
    *cp = c;
    return need;
}

void jsonw_strn(struct sbuf *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    sbuf_addc(b, '"');
    size_t start = 0, i = 0;
    while (i < len) {
        unsigned char c = p[i];
        /* Plain ASCII that needs no escape is copied in runs. */
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&') {
            i++;
            continue;
        }
        if (c < 0x80) {
            sbuf_add(b, s + start, i - start);
            char esc[7];
            switch (c) {
            case '"':
                sbuf_add(b, "\\\"", 2);
                break;
            case '\\':
                sbuf_add(b, "\\\\", 2);
                break;
            case '\n':
                sbuf_add(b, "\\n", 2);
                break;
            case '\r':
                sbuf_add(b, "\\r", 2);
                break;
            case '\t':
                sbuf_add(b, "\\t", 2);
                break;
            default:
                /* Other control bytes and the HTML-sensitive <, >, & (Go's HTMLEscape). */
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                sbuf_add(b, esc, 6);
            }
            start = ++i;
            continue;
        }
        unsigned cp = 0;
        size_t n = utf8_len(p + i, len - i, &cp);
        if (n == 0) {
            sbuf_add(b, s + start, i - start);
            sbuf_add(b, "\\ufffd", 6);
            start = ++i;
            continue;
        }
        if (cp == 0x2028 || cp == 0x2029) {
            /* Go escapes the JavaScript line separators. */
            sbuf_add(b, s + start, i - start);
            sbuf_adds(b, cp == 0x2028 ? "\\u2028" : "\\u2029");
            i += n;
            start = i;
            continue;
        }
        i += n;
    }
    sbuf_add(b, s + start, len - start);
    sbuf_addc(b, '"');
}

void jsonw_str(struct sbuf *b, const char *s) {
    jsonw_strn(b, s, strlen(s));
}

/* ---- numbers ----------------------------------------------------------------------------- */

/* Correctly rounded p-digit form of v from its 17-digit form d17 (rounding half up on the
 * digits), into out[0..p), with *exp10 adjusted on a carry out of the first digit. Returns
 * false when the dropped digits are exactly a tie ("5", "50"): d17 is itself rounded, so the
 * true value may lie on either side and only an exact conversion can tell. */
static bool round_digits(const char *d17, int p, char *out, int *exp10) {
    bool tie = d17[p] == '5';
    for (int k = p + 1; k < 17 && tie; k++)
        tie = d17[k] == '0';
    if (tie) return false;
    memcpy(out, d17, (size_t)p);
    if (d17[p] < '5') return true;
    int k = p - 1;
    while (k >= 0 && out[k] == '9')
        out[k--] = '0';
    if (k >= 0) {
        out[k]++;
    } else {
        /* 999.. rounded up to 1000..: one more power of ten. */
        out[0] = '1';
        (*exp10)++;
    }
    return true;
}

/* True if the decimal digits[0..nd) x 10^exp10, with v's sign, reads back as v. */
static bool reads_back(double v, const char *digits, int nd, int exp10) {
    /* Clinger's fast path: an integer d < 2^53 and a power of ten up to 1e22 are exact
     * doubles, so one multiplication or division is the correctly rounded reading of
     * d x 10^e, as strtod's. */
    static const double pow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                   1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                   1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
    uint64_t d = 0;
    for (int i = 0; i < nd; i++)
        d = d * 10 + (uint64_t)(digits[i] - '0');
    int e = exp10 - (nd - 1); /* v = d x 10^e */
    if (d < (1ULL << 53) && e >= -22 && e <= 22) {
        double r = e >= 0 ? (double)d * pow10[e] : (double)d / pow10[-e];
        return (signbit(v) ? -r : r) == v;
    }
    char tmp[48];
    int n = 0;
    if (signbit(v)) tmp[n++] = '-';
    tmp[n++] = digits[0];
    tmp[n++] = '.';
    memcpy(tmp + n, digits + 1, (size_t)nd - 1);
    n += nd - 1;
    snprintf(tmp + n, sizeof(tmp) - (size_t)n, "e%d", exp10);
    return strtod(tmp, NULL) == v;
}

/* The significant digits and exponent of a printf %.*e conversion. */
static int e_digits(const char *tmp, char *digits, int *exp10) {
    const char *q = tmp + (tmp[0] == '-');
    int nd = 0;
    for (; *q && *q != 'e'; q++)
        if (*q >= '0' && *q <= '9') digits[nd++] = *q;
    *exp10 = atoi(q + 1);
    return nd;
}

/* Shortest decimal digits that round-trip v (finite, nonzero), the digits Go's strconv picks
 * for precision -1: digits[0..return) and the decimal exponent of the first digit. For normal
 * numbers every 15-digit decimal names a distinct double, so the correctly rounded 15-digit
 * form, trailing zeros stripped, is the shortest whenever a form of at most 15 digits
 * round-trips; otherwise the correctly rounded 16- or 17-digit form
 * (the nearest of its length) is. One %.16e conversion yields all three, except in exact
 * ties, which are converted again exactly. */
static int shortest(double v, char *digits, int *exp10) {
    char tmp[40], d17[24];
    if (fabs(v) < DBL_MIN) {
        /* Subnormals carry fewer bits, so a shorter form than the 15-digit one can round-trip
         * without being its prefix: search every precision. */
        for (int p = 1; p <= 17; p++) {
            snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
            if (p == 17 || strtod(tmp, NULL) == v) break;
        }
        int nd = e_digits(tmp, digits, exp10);
        while (nd > 1 && digits[nd - 1] == '0')
            nd--;
        return nd;
    }
    snprintf(tmp, sizeof(tmp), "%.16e", v);
    int e17;
    e_digits(tmp, d17, &e17);
    int p = 15;
    for (; p < 17; p++) {
        int e = e17;
        if (!round_digits(d17, p, digits, &e)) {
            snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
            e_digits(tmp, digits, &e);
        }
        if (reads_back(v, digits, p, e)) {
            *exp10 = e;
            break;
        }
    }
    if (p == 17) {
        memcpy(digits, d17, 17);
        *exp10 = e17;
    }
    while (p > 1 && digits[p - 1] == '0')
        p--;
    return p;
}

void jsonw_gofloat(struct sbuf *b, double v, char fmt) {
    if (isnan(v)) {
        sbuf_add(b, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        sbuf_adds(b, v > 0 ? "+Inf" : "-Inf");
        return;
    }
    char out[400];
    size_t o = 0;
    if (signbit(v)) out[o++] = '-';
    if (v == 0) {
        out[o++] = '0';
        if (fmt == 'e') memcpy(out + o, "e+00", 4), o += 4;
        sbuf_add(b, out, o);
        return;
    }
    if (fmt == 'f' && fabs(v) < 1e15 && v == (double)(int64_t)v) {
        /* Integral values (counters, gauges) need no digit search. */
        char num[24];
        int64_t iv = (int64_t)v;
        uint64_t u = (uint64_t)(iv < 0 ? -iv : iv);
        size_t k = sizeof(num);
        do {
            num[--k] = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        memcpy(out + o, num + k, sizeof(num) - k);
        sbuf_add(b, out, o + sizeof(num) - k);
        return;
    }
    char digits[24] = {0};
    int exp10 = 0;
    int nd = shortest(v, digits, &exp10);
    if (fmt == 'e') {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            memcpy(out + o, digits + 1, (size_t)nd - 1);
            o += (size_t)nd - 1;
        }
        o += (size_t)snprintf(out + o, sizeof(out) - o, "e%c%02d", exp10 < 0 ? '-' : '+',
                              exp10 < 0 ? -exp10 : exp10);
    } else if (exp10 < 0) {
        /* 0.000ddd */
        out[o++] = '0';
        out[o++] = '.';
        for (int i = -1; i > exp10; i--)
            out[o++] = '0';
        memcpy(out + o, digits, (size_t)nd);
        o += (size_t)nd;
    } else {
        /* ddd[000][.ddd]; |v| < 1e309 keeps this within out. */
        for (int i = 0; i <= exp10 || i < nd; i++) {
            if (i == exp10 + 1) out[o++] = '.';
            out[o++] = i < nd ? digits[i] : '0';
        }
    }
    sbuf_add(b, out, o);
}

void jsonw_value(struct sbuf *b, double v) {
    /* Prometheus's marshalFloat: 'f' unless the magnitude would need many zeros. */
    double a = fabs(v);
    char fmt = (a != 0 && (a < 1e-6 || a >= 1e21)) ? 'e' : 'f';
    sbuf_addc(b, '"');
    jsonw_gofloat(b, v, fmt);
    sbuf_addc(b, '"');
}

void jsonw_ts(struct sbuf *b, int64_t ms) {
    /* Go's MarshalTimestamp: the sign, t/1000, then ".%03d" of t%1000 when nonzero. */
    char out[32];
    size_t k = sizeof(out);
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    unsigned frac = (unsigned)(u % 1000);
    if (frac) {
        out[--k] = (char)('0' + frac % 10);
        out[--k] = (char)('0' + frac / 10 % 10);
        out[--k] = (char)('0' + frac / 100);
        out[--k] = '.';
    }
    u /= 1000;
    do {
        out[--k] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (ms < 0) out[--k] = '-';
    sbuf_add(b, out + k, sizeof(out) - k);
}

void jsonw_labels(struct sbuf *b, const struct re_label *l, size_t n) {
    sbuf_addc(b, '{');
    for (size_t i = 0; i < n; i++) {
        if (i) sbuf_addc(b, ',');
        jsonw_str(b, l[i].name);
        sbuf_addc(b, ':');
        jsonw_str(b, l[i].value);
    }
    sbuf_addc(b, '}');
}

/* ---- native histograms ------------------------------------------------------------------ */

/* Bounds of custom-bucket histograms (schema -53): bucket i spans (cv[i-1], cv[i]]. */
#define SCHEMA_CUSTOM (-53)

static void put_bucket(struct sbuf *b, bool *first, int boundaries, double lo, double hi,
                       double count) {
    if (count == 0) return; /* Prometheus leaves empty buckets out of the JSON. */
    sbuf_adds(b, *first ? ",\"buckets\":[" : ",");
    *first = false;
    char head[3] = {'[', (char)('0' + boundaries), ','};
    sbuf_add(b, head, 3);
    jsonw_value(b, lo);
    sbuf_addc(b, ',');
    jsonw_value(b, hi);
    sbuf_addc(b, ',');
    jsonw_value(b, count);
    sbuf_addc(b, ']');
}

/* Bucket index of every populated slot, in span order. Returns the number of buckets. */
static size_t span_indexes(const struct re_span *sp, size_t nsp, size_t nb, int32_t *idx) {
    size_t k = 0;
    int32_t cur = 0;
    for (size_t s = 0; s < nsp; s++) {
        cur += sp[s].offset;
        for (uint32_t j = 0; j < sp[s].length && k < nb; j++)
            idx[k++] = cur++;
    }
    return k;
}

static double bound(const struct re_hist *h, int32_t idx) {
    if (h->schema == SCHEMA_CUSTOM) {
        if (idx < 0) return -INFINITY;
        return (size_t)idx < h->ncustom ? h->custom_values[idx] : INFINITY;
    }
    return re_hist_bound(idx, h->schema);
}

void jsonw_hist(struct sbuf *b, const struct re_hist *h) {
    sbuf_adds(b, "{\"count\":");
    jsonw_value(b, h->count);
    sbuf_adds(b, ",\"sum\":");
    jsonw_value(b, h->sum);
    bool first = true;
    size_t nmax = h->nnbuckets > h->npbuckets ? h->nnbuckets : h->npbuckets;
    int32_t small[64];
    int32_t *idx = nmax <= 64 ? small : malloc(nmax * sizeof(*idx));
    if (!idx) {
        b->oom = true;
        return;
    }
    /* Negative buckets, most negative first: bucket i spans [-bound(i), -bound(i-1)). */
    size_t nn = span_indexes(h->nspans, h->nnspans, h->nnbuckets, idx);
    for (size_t k = nn; k-- > 0;)
        put_bucket(b, &first, 1, -bound(h, idx[k]), -bound(h, idx[k] - 1), h->nbuckets[k]);
    /* The zero bucket is closed on both sides. */
    if (h->zero_count != 0)
        put_bucket(b, &first, 3, -h->zero_threshold, h->zero_threshold, h->zero_count);
    /* Positive buckets: (bound(i-1), bound(i)]. */
    size_t np = span_indexes(h->pspans, h->npspans, h->npbuckets, idx);
    for (size_t k = 0; k < np; k++)
        put_bucket(b, &first, 0, bound(h, idx[k] - 1), bound(h, idx[k]), h->pbuckets[k]);
    if (!first) sbuf_addc(b, ']');
    sbuf_addc(b, '}');
    if (idx != small) free(idx);
}
