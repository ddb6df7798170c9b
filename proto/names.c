/* SPDX-License-Identifier: Apache-2.0 */
/* names: UTF-8 validation, legacy Prometheus name checks and quoting for error messages. */
#include "names.h"

#include <stdint.h>
#include <stdio.h>

bool names_utf8_valid(const char *str, size_t len) {
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < len) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        /* Table 3-7 of the Unicode standard: the well-formed byte sequences. This is exactly
         * what Go's utf8.Valid accepts. */
        unsigned lo = 0x80, hi = 0xBF;
        size_t n;
        if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            if (c == 0xE0)
                lo = 0xA0;
            else if (c == 0xED)
                hi = 0x9F; /* no surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            if (c == 0xF0)
                lo = 0x90;
            else if (c == 0xF4)
                hi = 0x8F; /* nothing above U+10FFFF */
        } else {
            return false;
        }
        if (len - i - 1 < n) return false;
        if (s[i + 1] < lo || s[i + 1] > hi) return false;
        for (size_t k = 2; k <= n; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xBF) return false;
        i += n + 1;
    }
    return true;
}

static bool is_alpha_(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool is_digit(char c) {
    return c >= '0' && c <= '9';
}

bool names_metric_ok(const char *s, size_t len) {
    if (len == 0 || !(is_alpha_(s[0]) || s[0] == ':')) return false;
    for (size_t i = 1; i < len; i++)
        if (!(is_alpha_(s[i]) || is_digit(s[i]) || s[i] == ':')) return false;
    return true;
}

bool names_label_ok(const char *s, size_t len) {
    if (len == 0 || !is_alpha_(s[0])) return false;
    for (size_t i = 1; i < len; i++)
        if (!(is_alpha_(s[i]) || is_digit(s[i]))) return false;
    return true;
}

char *names_quote(char *out, size_t cap, const char *s, size_t len) {
    if (cap < 8) {
        if (cap) out[0] = 0;
        return out;
    }
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char tmp[5];
        size_t n;
        if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            n = 2;
        } else if (c == '\n') {
            tmp[0] = '\\';
            tmp[1] = 'n';
            n = 2;
        } else if (c < 0x20 || c >= 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", c);
            n = 4;
        } else {
            tmp[0] = (char)c;
            n = 1;
        }
        /* keep room for the closing quote, "..." and the NUL */
        if (o + n + 5 > cap) {
            out[o++] = '.';
            out[o++] = '.';
            out[o++] = '.';
            break;
        }
        for (size_t k = 0; k < n; k++)
            out[o++] = tmp[k];
    }
    out[o++] = '"';
    out[o] = 0;
    return out;
}
