/* SPDX-License-Identifier: Apache-2.0 */
/* Label names, UTF-8, stale markers and label matchers (PCRE2, anchored as Prometheus). */
#include "ruleeval.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int perr_set(struct perr *err, int line, int col, const char *fmt, ...) {
    if (!err) return -EINVAL;
    err->line = line;
    err->col = col;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return -EINVAL;
}

bool re_is_stale(double v) {
    uint64_t bits;
    memcpy(&bits, &v, sizeof(bits));
    return bits == RE_STALE_NAN_BITS;
}

double re_stale_nan(void) {
    uint64_t bits = RE_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof(v));
    return v;
}

static bool name_char(char c, bool first, bool colon) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_') return true;
    if (colon && c == ':') return true;
    return !first && c >= '0' && c <= '9';
}

bool re_valid_metric_name(const char *s, size_t len) {
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i], i == 0, true)) return false;
    return true;
}

bool re_valid_label_name(const char *s, size_t len) {
    if (len == 0) return false;
    for (size_t i = 0; i < len; i++)
        if (!name_char(s[i], i == 0, false)) return false;
    return true;
}

bool re_valid_utf8(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p;
        size_t n;
        uint32_t cp, min;
        if (c < 0x80) {
            p++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            n = 1, cp = c & 0x1f, min = 0x80;
        } else if ((c & 0xf0) == 0xe0) {
            n = 2, cp = c & 0x0f, min = 0x800;
        } else if ((c & 0xf8) == 0xf0) {
            n = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return false;
        }
        if ((size_t)(end - p) <= n) return false;
        for (size_t i = 1; i <= n; i++) {
            if ((p[i] & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* Overlong forms, surrogates and values past U+10FFFF are invalid, as in Go. */
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
        p += n + 1;
    }
    return true;
}

int re_matcher_init(struct re_matcher *m, enum re_match_type type, const char *name,
                    const char *value, struct perr *err) {
    return re_matcher_init_compat(m, type, name, value, false, err);
}

int re_matcher_init_compat(struct re_matcher *m, enum re_match_type type, const char *name,
                           const char *value, bool v2, struct perr *err) {
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->name = strdup(name);
    m->value = strdup(value);
    if (!m->name || !m->value) goto nomem;
    if (type == RE_MATCH_RE || type == RE_MATCH_NRE) {
        int ec;
        PCRE2_SIZE off;
        /* Prometheus compiles "^(?s:" + re + ")$" with RE2: anchored at both ends, '.'
         * matches newline, UTF-8 semantics. PCRE2's ANCHORED|ENDANCHORED does the same
         * without wrapping, so a stray ')' in the pattern cannot escape the anchors.
         * 2.x compiled "^(?:" + re + ")$": no newline for '.'. */
        pcre2_code *re =
            pcre2_compile((PCRE2_SPTR)value, PCRE2_ZERO_TERMINATED,
                          PCRE2_ANCHORED | PCRE2_ENDANCHORED | (v2 ? 0 : PCRE2_DOTALL) | PCRE2_UTF |
                              PCRE2_MATCH_INVALID_UTF | PCRE2_DOLLAR_ENDONLY,
                          &ec, &off, NULL);
        if (!re) {
            PCRE2_UCHAR buf[120];
            pcre2_get_error_message(ec, buf, sizeof(buf));
            re_matcher_fini(m);
            return perr_set(err, 0, 0, "error parsing regexp: %s at offset %zu in `%s`",
                            (char *)buf, (size_t)off, value);
        }
        pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
        m->re = re;
    }
    return 0;
nomem:
    re_matcher_fini(m);
    return -ENOMEM;
}

void re_matcher_fini(struct re_matcher *m) {
    if (!m) return;
    free(m->name);
    free(m->value);
    if (m->re) pcre2_code_free(m->re);
    memset(m, 0, sizeof(*m));
}

static bool re_full_match(const struct re_matcher *m, const char *v) {
    /* Match data is per call so that readers on several threads can share one matcher. */
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md) return false;
    int rc = pcre2_match(m->re, (PCRE2_SPTR)v, strlen(v), 0, 0, md, NULL);
    pcre2_match_data_free(md);
    return rc >= 0;
}

bool re_matcher_matches(const struct re_matcher *m, const char *value) {
    const char *v = value ? value : "";
    switch (m->type) {
    case RE_MATCH_EQ:
        return strcmp(v, m->value) == 0;
    case RE_MATCH_NEQ:
        return strcmp(v, m->value) != 0;
    case RE_MATCH_RE:
        return re_full_match(m, v);
    case RE_MATCH_NRE:
        return !re_full_match(m, v);
    }
    return false;
}

bool re_matcher_matches_empty(const struct re_matcher *m) {
    return re_matcher_matches(m, "");
}
