/* SPDX-License-Identifier: Apache-2.0 */
/* expfmt: text exposition format 0.0.4 parser that accepts and rejects what expfmt.TextParser does.
 */
#include "proto.h"

#include "names.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * The reference is prometheus/common expfmt/text_parse.go (TextParser, the parser the
 * Pushgateway runs on pushes), in legacy name-validation mode. Its observable behaviour,
 * which we keep byte for byte where it matters:
 *  - families live in a map: samples of one family may be interleaved with other families'
 *    lines; a TYPE line after a sample of its family is an error ("second TYPE line ..., or
 *    TYPE reported after samples"), a HELP line after samples is accepted if the family had
 *    no HELP yet;
 *  - x_count / x_sum (and x_bucket) belong to family x when x is a summary (histogram)
 *    declared before, otherwise they are families of their own;
 *  - every line, including the last, must end with '\n' (EOF anywhere but at the start of a
 *    line is "unexpected end of input stream");
 *  - "# HELP name" with nothing (or only blanks) after the name sets no HELP at all;
 *  - the TYPE is the rest of the line (so trailing blanks make it unknown);
 *  - whitespace after the value requires a timestamp, and anything after the timestamp,
 *    even blanks, is "spurious";
 *  - values are Go ParseFloat minus hex floats and '_' separators; timestamps Go ParseInt.
 * Error texts are expfmt's: "text format parsing error in line N: ...".
 */

#define EOFC (-1)

enum { T_NONE = -1, T_GAUGE_HISTOGRAM = 100 };

struct fam {
    size_t name_off, name_len; /* in p->pool */
    size_t help_off, help_len;
    int type; /* enum expfmt_type, T_GAUGE_HISTOGRAM, or T_NONE when no TYPE/sample yet */
    bool has_help, reported;
};

struct lab {
    size_t name_off, name_len, value_off, value_len; /* in p->lbuf */
    bool counted;                                    /* in the duplicate-name set */
};

struct buf {
    char *p;
    size_t len, cap;
};

struct px {
    const uint8_t *in;
    size_t len, pos; /* pos: index of the next byte to read */
    int c;           /* current byte, EOFC after the end */
    int line;
    size_t line_start;
    const struct expfmt_sink *sink;
    struct perr *err;
    int rc;

    struct buf tok;  /* current token (unescaped), reused */
    struct buf num;  /* NUL-terminated copy of a number for strtod */
    struct buf lbuf; /* names and values of the current line */
    struct buf pool; /* family names and help texts */
    struct lab *labs;
    size_t n_labs, cap_labs;
    struct proto_label *plabs;
    size_t cap_plabs;
    uint32_t *lset; /* per-line hash set of label indices + 1, for duplicate names */
    size_t cap_lset;

    struct fam *fams;
    size_t n_fams, cap_fams;
    uint32_t *ftab; /* open addressing: family index + 1 */
    size_t cap_ftab;

    /* state of the current sample line */
    size_t cur; /* family index */
    bool is_count, is_sum;
    double quantile, bucket; /* NaN when absent */
    size_t name_off, name_len;
};

/* ---------------------------------------------------------------------------------------- */
/* small utilities */

static int buf_reserve(struct buf *b, size_t extra) {
    if (b->cap - b->len > extra) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= extra) {
        if (cap > SIZE_MAX / 2) return -ENOMEM;
        cap *= 2;
    }
    char *n = realloc(b->p, cap);
    if (!n) return -ENOMEM;
    b->p = n;
    b->cap = cap;
    return 0;
}

static int buf_putc(struct buf *b, char c) {
    if (b->len + 1 >= b->cap && buf_reserve(b, 1) < 0) return -ENOMEM;
    b->p[b->len++] = c;
    return 0;
}

static int buf_put(struct buf *b, const char *s, size_t n) {
    if (buf_reserve(b, n + 1) < 0) return -ENOMEM;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    return 0;
}

/* NUL-terminates the buffer's content without counting the NUL. */
static const char *buf_str(struct buf *b) {
    if (buf_reserve(b, 1) < 0) return NULL;
    b->p[b->len] = 0;
    return b->p;
}

static bool is_blank(int c) {
    return c == ' ' || c == '\t';
}

static bool name_start(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_cont(int c) {
    return name_start(c) || (c >= '0' && c <= '9');
}

static uint64_t hash_bytes(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* Decodes the valid UTF-8 sequence s[0..k) into a code point. */
static uint32_t utf8_cp(const unsigned char *s, size_t k) {
    if (k == 2) return (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
    if (k == 3) return (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    return (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
           (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
}

/* An approximation of Go's unicode.IsPrint for non-ASCII code points without Unicode tables:
 * C1 controls, non-ASCII spaces, format characters, separators, private use and
 * non-characters are not printable (strconv.Quote escapes them); unassigned code points are
 * taken as printable. */
static bool go_printable(uint32_t c) {
    if (c <= 0xA0 || c == 0xAD) return false;
    if (c == 0x1680 || c == 0x180E || (c >= 0x2000 && c <= 0x200F) ||
        (c >= 0x2028 && c <= 0x202F) || (c >= 0x205F && c <= 0x206F) || c == 0x3000 ||
        c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFB))
        return false;
    if ((c >= 0xE000 && c <= 0xF8FF) || c >= 0xF0000 || (c & 0xFFFE) == 0xFFFE ||
        (c >= 0xFDD0 && c <= 0xFDEF))
        return false;
    return true;
}

/* Appends Go's %q rendering of s to out (bounded). Valid UTF-8 sequences are kept, invalid
 * bytes and control characters are escaped as strconv.Quote does. */
static void go_quote(char *out, size_t cap, const char *s, size_t n) {
    size_t o = 0;
    if (cap < 8) {
        if (cap) out[0] = 0;
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        char tmp[12];
        size_t tn = 0, adv = 1;
        if (c >= 0x80) {
            size_t k = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
            if (k > 1 && i + k <= n && names_utf8_valid(s + i, k)) {
                uint32_t cp = utf8_cp((const unsigned char *)s + i, k);
                adv = k;
                if (go_printable(cp)) {
                    memcpy(tmp, s + i, k);
                    tn = k;
                } else if (cp < 0x10000) {
                    tn = (size_t)snprintf(tmp, sizeof tmp, "\\u%04x", (unsigned)cp);
                } else {
                    tn = (size_t)snprintf(tmp, sizeof tmp, "\\U%08x", (unsigned)cp);
                }
            } else {
                tn = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
            }
        } else if (c == '"' || c == '\\') {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tn = 2;
        } else if (c >= 0x20 && c < 0x7f) {
            tmp[0] = (char)c;
            tn = 1;
        } else {
            const char *esc = NULL;
            switch (c) {
            case '\a':
                esc = "\\a";
                break;
            case '\b':
                esc = "\\b";
                break;
            case '\f':
                esc = "\\f";
                break;
            case '\n':
                esc = "\\n";
                break;
            case '\r':
                esc = "\\r";
                break;
            case '\t':
                esc = "\\t";
                break;
            case '\v':
                esc = "\\v";
                break;
            default:
                break;
            }
            if (esc) {
                memcpy(tmp, esc, 2);
                tn = 2;
            } else {
                tn = (size_t)snprintf(tmp, sizeof tmp, "\\x%02x", c);
            }
        }
        if (o + tn + 5 > cap) {
            memcpy(out + o, "...", 3);
            o += 3;
            break;
        }
        memcpy(out + o, tmp, tn);
        o += tn;
        i += adv;
    }
    out[o++] = '"';
    out[o] = 0;
}

/* Go's %q of a byte (a rune literal, e.g. '+' or '\n'). */
static void go_quote_byte(char *out, size_t cap, int c) {
    switch (c) {
    case '\a':
        snprintf(out, cap, "'\\a'");
        return;
    case '\b':
        snprintf(out, cap, "'\\b'");
        return;
    case '\f':
        snprintf(out, cap, "'\\f'");
        return;
    case '\n':
        snprintf(out, cap, "'\\n'");
        return;
    case '\r':
        snprintf(out, cap, "'\\r'");
        return;
    case '\t':
        snprintf(out, cap, "'\\t'");
        return;
    case '\v':
        snprintf(out, cap, "'\\v'");
        return;
    case '\'':
        snprintf(out, cap, "'\\''");
        return;
    case '\\':
        snprintf(out, cap, "'\\\\'");
        return;
    default:
        break;
    }
    if (c < 0x20 || c == 0x7f)
        snprintf(out, cap, "'\\x%02x'", c);
    else if (c < 0x80)
        snprintf(out, cap, "'%c'", c);
    else if (c <= 0xA0 || c == 0xAD)
        snprintf(out, cap, "'\\u%04x'", c);
    else
        snprintf(out, cap, "'%c%c'", (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)));
}

/* Go's %c of a byte: the rune U+00XX in UTF-8. */
static void go_char(char *out, size_t cap, int c) {
    if (c < 0x80)
        snprintf(out, cap, "%c", c);
    else
        snprintf(out, cap, "%c%c", (char)(0xC0 | (c >> 6)), (char)(0x80 | (c & 0x3F)));
}

static int perror_at(struct px *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int perror_at(struct px *p, const char *fmt, ...) {
    if (p->rc) return p->rc;
    p->rc = -EPROTO;
    if (p->err) {
        p->err->line = p->line;
        p->err->col = (int)(p->pos - p->line_start);
        if (p->err->col < 1) p->err->col = 1;
        int n = snprintf(p->err->msg, sizeof p->err->msg,
                         "text format parsing error in line %d: ", p->line);
        if (n > 0 && (size_t)n < sizeof p->err->msg) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(p->err->msg + n, sizeof p->err->msg - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return p->rc;
}

static int oom(struct px *p) {
    if (!p->rc) {
        p->rc = -ENOMEM;
        if (p->err) {
            p->err->line = p->line;
            p->err->col = 0;
            snprintf(p->err->msg, sizeof p->err->msg, "out of memory");
        }
    }
    return p->rc;
}

static int unexpected_eof(struct px *p) {
    return perror_at(p, "unexpected end of input stream");
}

/* Reads the next byte into p->c. */
static void rd(struct px *p) {
    p->c = p->pos < p->len ? p->in[p->pos++] : EOFC;
}

/* Reads bytes until one is neither ' ' nor '\t'. */
static void skip_blank(struct px *p) {
    do
        rd(p);
    while (is_blank(p->c));
}

static void skip_blank_if_blank(struct px *p) {
    if (is_blank(p->c)) skip_blank(p);
}

/* Copies in[start..end) into p->tok and makes in[end] (or EOF) the current byte. The
 * scanners below look at the input directly instead of byte by byte through rd(). */
static int tok_span(struct px *p, size_t start, size_t end) {
    if (buf_put(&p->tok, (const char *)p->in + start, end - start) < 0) return oom(p);
    p->pos = end;
    rd(p);
    return p->c == EOFC ? unexpected_eof(p) : 0;
}

/* Token from the current byte up to a blank, '\n' or EOF (not included). */
static int tok_until_ws(struct px *p) {
    p->tok.len = 0;
    if (p->c == EOFC) return unexpected_eof(p);
    size_t start = p->pos - 1, end = start;
    while (end < p->len && !is_blank(p->in[end]) && p->in[end] != '\n')
        end++;
    return tok_span(p, start, end);
}

/* Token from the current byte up to '\n'; with esc, \\ \n \" are unescaped (HELP text). */
/* The character after a backslash in HELP text or a label value: \\, \n and \" are the only
 * escapes expfmt knows; it appends the unescaped byte to the token. */
static int put_escaped(struct px *p) {
    char ch;
    switch (p->c) {
    case '\\':
        ch = '\\';
        break;
    case 'n':
        ch = '\n';
        break;
    case '"':
        ch = '"';
        break;
    default: {
        char cc[4];
        go_char(cc, sizeof cc, p->c);
        return perror_at(p, "invalid escape sequence '\\%s'", cc);
    }
    }
    return buf_putc(&p->tok, ch) < 0 ? oom(p) : 0;
}

static int tok_until_nl(struct px *p, bool esc) {
    p->tok.len = 0;
    bool escaped = false;
    while (p->c != EOFC) {
        if (esc && escaped) {
            int rc = put_escaped(p);
            if (rc) return rc;
            escaped = false;
        } else if (p->c == '\n') {
            return 0;
        } else if (esc && p->c == '\\') {
            escaped = true;
        } else {
            /* copy the plain run in one go */
            size_t start = p->pos - 1, end = start;
            while (end < p->len && p->in[end] != '\n' && !(esc && p->in[end] == '\\'))
                end++;
            if (buf_put(&p->tok, (const char *)p->in + start, end - start) < 0) return oom(p);
            p->pos = end;
        }
        rd(p);
    }
    return unexpected_eof(p);
}

/* Legacy metric name starting at the current byte; stops at the first other byte. */
static int tok_metric_name(struct px *p) {
    p->tok.len = 0;
    if (!(name_start(p->c) || p->c == ':')) return 0;
    size_t start = p->pos - 1, end = p->pos;
    while (end < p->len && (name_cont(p->in[end]) || p->in[end] == ':'))
        end++;
    return tok_span(p, start, end);
}

static int tok_label_name(struct px *p) {
    p->tok.len = 0;
    if (!name_start(p->c)) return 0;
    size_t start = p->pos - 1, end = p->pos;
    while (end < p->len && name_cont(p->in[end]))
        end++;
    return tok_span(p, start, end);
}

/* Quoted label value; the opening quote is the current byte. Unescaped into p->tok. */
static int tok_label_value(struct px *p) {
    p->tok.len = 0;
    bool escaped = false;
    for (;;) {
        rd(p);
        if (p->c == EOFC) return unexpected_eof(p);
        if (escaped) {
            int rc = put_escaped(p);
            if (rc) return rc;
            escaped = false;
            continue;
        }
        switch (p->c) {
        case '"':
            return 0;
        case '\n': {
            char q[96];
            go_quote(q, sizeof q, p->tok.p, p->tok.len);
            return perror_at(p, "label value %s contains unescaped new-line", q);
        }
        case '\\':
            escaped = true;
            break;
        default: {
            size_t start = p->pos - 1, end = start;
            while (end < p->len && p->in[end] != '"' && p->in[end] != '\\' && p->in[end] != '\n')
                end++;
            if (buf_put(&p->tok, (const char *)p->in + start, end - start) < 0) return oom(p);
            p->pos = end;
        }
        }
    }
}

/* ---------------------------------------------------------------------------------------- */
/* Numbers with Go's rules. */

static bool ieq(const char *a, size_t n, const char *lit) {
    if (strlen(lit) != n) return false;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != lit[i]) return false;
    }
    return true;
}

/* expfmt's parseFloat: strconv.ParseFloat(s, 64) after refusing 'p', 'P' and '_'. Only the
 * decimal syntax remains (hex needs a 'p' exponent), plus inf/infinity/nan. scratch is used
 * to NUL-terminate for strtod. Returns 0 or -1. */
static int parse_float(const char *s, size_t n, struct buf *scratch, double *out) {
    if (n == 0) return -1;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    if (ieq(s + i, n - i, "inf") || ieq(s + i, n - i, "infinity")) {
        *out = neg ? -INFINITY : INFINITY;
        return 0;
    }
    if (i == 0 && ieq(s, n, "nan")) {
        *out = NAN;
        return 0;
    }
    size_t digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (i < n && s[i] == '.') {
        i++;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, digits++;
    }
    if (!digits) return -1;
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        size_t ed = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++, ed++;
        if (!ed) return -1;
    }
    if (i != n) return -1;
    scratch->len = 0;
    if (buf_put(scratch, s, n) < 0 || !buf_str(scratch)) return -2;
    errno = 0;
    char *end;
    double v = strtod(scratch->p, &end);
    if (end != scratch->p + n) return -1;
    /* Go reports overflow (±Inf with ErrRange) as an error, underflow (0 or subnormal) not. */
    if (errno == ERANGE && isinf(v)) return -1;
    *out = v;
    return 0;
}

/* strconv.ParseInt(s, 10, 64). */
static int parse_int64(const char *s, size_t n, int64_t *out) {
    size_t i = 0;
    bool neg = false;
    if (n && (s[0] == '+' || s[0] == '-')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == n) return -1;
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (lim - d) / 10) return -1;
        v = v * 10 + d;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Family table. */

static const char *fam_name(struct px *p, size_t fi) {
    return p->pool.p + p->fams[fi].name_off;
}

static long fam_find(struct px *p, const char *name, size_t n) {
    if (!p->cap_ftab) return -1;
    size_t mask = p->cap_ftab - 1;
    for (size_t h = hash_bytes(name, n) & mask;; h = (h + 1) & mask) {
        uint32_t e = p->ftab[h];
        if (!e) return -1;
        struct fam *f = &p->fams[e - 1];
        if (f->name_len == n && memcmp(p->pool.p + f->name_off, name, n) == 0) return (long)(e - 1);
    }
}

static void ftab_insert(struct px *p, size_t fi) {
    size_t mask = p->cap_ftab - 1;
    struct fam *f = &p->fams[fi];
    size_t h = hash_bytes(p->pool.p + f->name_off, f->name_len) & mask;
    while (p->ftab[h])
        h = (h + 1) & mask;
    p->ftab[h] = (uint32_t)fi + 1;
}

static long fam_add(struct px *p, const char *name, size_t n) {
    if (p->n_fams == p->cap_fams) {
        size_t cap = p->cap_fams ? p->cap_fams * 2 : 16;
        if (cap > UINT32_MAX / 4) return -1;
        struct fam *nf = realloc(p->fams, cap * sizeof *nf);
        if (!nf) return -1;
        p->fams = nf;
        p->cap_fams = cap;
    }
    if ((p->n_fams + 1) * 2 > p->cap_ftab) {
        size_t cap = p->cap_ftab ? p->cap_ftab * 2 : 64;
        uint32_t *nt = calloc(cap, sizeof *nt);
        if (!nt) return -1;
        free(p->ftab);
        p->ftab = nt;
        p->cap_ftab = cap;
        for (size_t i = 0; i < p->n_fams; i++)
            ftab_insert(p, i);
    }
    size_t off = p->pool.len;
    /* name may point into p->tok, never into p->pool, so appending is safe */
    if (buf_put(&p->pool, name, n) < 0 || buf_putc(&p->pool, 0) < 0) return -1;
    p->fams[p->n_fams] = (struct fam){.name_off = off, .name_len = n, .type = T_NONE};
    ftab_insert(p, p->n_fams);
    return (long)p->n_fams++;
}

static bool ends_with(const char *s, size_t n, const char *suf, size_t sn) {
    return n > sn && memcmp(s + n - sn, suf, sn) == 0;
}

/* setOrCreateCurrentMF: the family for a name seen in a comment or on a sample line. */
static int set_current_family(struct px *p, const char *name, size_t n) {
    p->is_count = p->is_sum = false;
    long fi = fam_find(p, name, n);
    if (fi >= 0) {
        p->cur = (size_t)fi;
        return 0;
    }
    bool cnt = ends_with(name, n, "_count", 6), sum = ends_with(name, n, "_sum", 4);
    bool bkt = ends_with(name, n, "_bucket", 7);
    if (cnt || sum) {
        fi = fam_find(p, name, n - (cnt ? 6 : 4));
        if (fi >= 0 && p->fams[fi].type == EXPFMT_SUMMARY) {
            p->cur = (size_t)fi;
            p->is_count = cnt;
            p->is_sum = sum;
            return 0;
        }
    }
    if (cnt || sum || bkt) {
        fi = fam_find(p, name, n - (cnt ? 6 : sum ? 4 : 7));
        if (fi >= 0 && p->fams[fi].type == EXPFMT_HISTOGRAM) {
            p->cur = (size_t)fi;
            p->is_count = cnt;
            p->is_sum = sum;
            return 0;
        }
    }
    fi = fam_add(p, name, n);
    if (fi < 0) return oom(p);
    p->cur = (size_t)fi;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Lines. */

static int report_family(struct px *p, struct fam *f) {
    f->reported = true;
    if (!p->sink || !p->sink->family) return 0;
    const char *help = f->has_help ? p->pool.p + f->help_off : NULL;
    int rc =
        p->sink->family(p->sink->arg, p->pool.p + f->name_off, help, (enum expfmt_type)f->type);
    if (rc) {
        p->rc = rc;
        if (p->err) {
            p->err->line = p->line;
            p->err->col = 0;
            snprintf(p->err->msg, sizeof p->err->msg, "stopped by sink");
        }
    }
    return rc;
}

static int parse_comment(struct px *p) {
    skip_blank(p);
    if (p->c == EOFC) return unexpected_eof(p);
    if (p->c == '\n') return 0;
    if (tok_until_ws(p)) return p->rc;
    if (p->c == '\n') return 0;
    bool help = p->tok.len == 4 && memcmp(p->tok.p, "HELP", 4) == 0;
    bool type = p->tok.len == 4 && memcmp(p->tok.p, "TYPE", 4) == 0;
    if (!help && !type) {
        /* plain comment: skip to the end of the line */
        const uint8_t *nl = memchr(p->in + p->pos, '\n', p->len - p->pos);
        if (!nl) {
            p->pos = p->len;
            return unexpected_eof(p);
        }
        p->pos = (size_t)(nl - p->in) + 1;
        p->c = '\n';
        return 0;
    }
    skip_blank(p);
    if (p->c == EOFC) return unexpected_eof(p);
    if (tok_metric_name(p)) return p->rc;
    if (p->c == '\n') return 0;
    if (!is_blank(p->c)) return perror_at(p, "invalid metric name in comment");
    if (set_current_family(p, p->tok.p, p->tok.len)) return p->rc;
    skip_blank(p);
    if (p->c == EOFC) return unexpected_eof(p);
    if (p->c == '\n') return 0;
    struct fam *f = &p->fams[p->cur];
    char q[96];
    if (help) {
        if (f->has_help) {
            go_quote(q, sizeof q, fam_name(p, p->cur), f->name_len);
            return perror_at(p, "second HELP line for metric name %s", q);
        }
        if (tok_until_nl(p, true)) return p->rc;
        size_t off = p->pool.len;
        if (buf_put(&p->pool, p->tok.p, p->tok.len) < 0 || buf_putc(&p->pool, 0) < 0) return oom(p);
        f = &p->fams[p->cur];
        f->help_off = off;
        f->help_len = p->tok.len;
        f->has_help = true;
        /* A HELP after samples of the family: tell the sink the metadata changed. */
        if (f->reported) return report_family(p, f);
        return 0;
    }
    if (f->type != T_NONE) {
        go_quote(q, sizeof q, fam_name(p, p->cur), f->name_len);
        return perror_at(p, "second TYPE line for metric name %s, or TYPE reported after samples",
                         q);
    }
    if (tok_until_nl(p, false)) return p->rc;
    static const struct {
        const char *s;
        int t;
    } types[] = {{"counter", EXPFMT_COUNTER},     {"gauge", EXPFMT_GAUGE},
                 {"summary", EXPFMT_SUMMARY},     {"untyped", EXPFMT_UNTYPED},
                 {"histogram", EXPFMT_HISTOGRAM}, {"gauge_histogram", T_GAUGE_HISTOGRAM}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (ieq(p->tok.p, p->tok.len, types[i].s)) {
            f->type = types[i].t;
            return 0;
        }
    go_quote(q, sizeof q, p->tok.p, p->tok.len);
    return perror_at(p, "unknown metric type %s", q);
}

/* Records a label of the current line; checks duplicates as expfmt does (le of histograms and
 * quantile of summaries are not part of the label set there). *idx is the label to receive
 * the value: a repeated le/quantile reuses its first slot, as expfmt keeps only the last
 * value (Pushgateway 1.5.1: h_bucket{le="1",le="2"} is stored as le="2"). */
static int add_label(struct px *p, const char *name, size_t n, bool counted, size_t *idx) {
    if (!counted)
        for (size_t i = 0; i < p->n_labs; i++)
            if (!p->labs[i].counted && p->labs[i].name_len == n &&
                memcmp(p->lbuf.p + p->labs[i].name_off, name, n) == 0) {
                *idx = i;
                return 0;
            }
    *idx = p->n_labs;
    if (p->n_labs == p->cap_labs) {
        size_t cap = p->cap_labs ? p->cap_labs * 2 : 16;
        struct lab *nl = realloc(p->labs, cap * sizeof *nl);
        if (!nl) return oom(p);
        p->labs = nl;
        p->cap_labs = cap;
    }
    size_t off = p->lbuf.len;
    if (buf_put(&p->lbuf, name, n) < 0 || buf_putc(&p->lbuf, 0) < 0) return oom(p);
    p->labs[p->n_labs] = (struct lab){.name_off = off, .name_len = n, .counted = counted};
    if (counted) {
        /* per-line hash set over label names: duplicates found in O(1) per label */
        if ((p->n_labs + 1) * 2 > p->cap_lset) {
            size_t cap = p->cap_lset ? p->cap_lset * 2 : 32;
            uint32_t *ns = realloc(p->lset, cap * sizeof *ns);
            if (!ns) return oom(p);
            p->lset = ns;
            p->cap_lset = cap;
            memset(p->lset, 0, cap * sizeof *ns);
            for (size_t i = 0; i < p->n_labs; i++) {
                if (!p->labs[i].counted) continue;
                size_t h = hash_bytes(p->lbuf.p + p->labs[i].name_off, p->labs[i].name_len);
                while (p->lset[h & (cap - 1)])
                    h++;
                p->lset[h & (cap - 1)] = (uint32_t)i + 1;
            }
        }
        size_t mask = p->cap_lset - 1;
        for (size_t h = hash_bytes(name, n) & mask;; h = (h + 1) & mask) {
            uint32_t e = p->lset[h];
            if (!e) {
                p->lset[h] = (uint32_t)p->n_labs + 1;
                break;
            }
            const struct lab *o = &p->labs[e - 1];
            if (o->name_len == n && memcmp(p->lbuf.p + o->name_off, name, n) == 0) {
                char q[96];
                go_quote(q, sizeof q, fam_name(p, p->cur), p->fams[p->cur].name_len);
                return perror_at(p, "duplicate label names for metric %s", q);
            }
        }
    }
    p->n_labs++;
    return 0;
}

static int parse_labels(struct px *p) {
    char q[96];
    int ftype = p->fams[p->cur].type;
    for (;;) {
        skip_blank(p); /* startLabelName */
        if (p->c == EOFC) return unexpected_eof(p);
        if (p->c == '}') {
            skip_blank(p);
            return p->c == EOFC ? unexpected_eof(p) : 0;
        }
        if (tok_label_name(p)) return p->rc;
        if (p->tok.len == 0) {
            go_quote(q, sizeof q, fam_name(p, p->cur), p->fams[p->cur].name_len);
            return perror_at(p, "invalid label name for metric %s", q);
        }
        skip_blank_if_blank(p);
        if (p->c == EOFC) return unexpected_eof(p);
        if (p->c != '=') {
            go_quote_byte(q, sizeof q, p->c);
            return perror_at(p, "expected '=' after label name, found %s", q);
        }
        if (p->tok.len == 8 && memcmp(p->tok.p, "__name__", 8) == 0)
            return perror_at(p, "label name \"__name__\" is reserved");
        bool is_q =
            ftype == EXPFMT_SUMMARY && p->tok.len == 8 && memcmp(p->tok.p, "quantile", 8) == 0;
        bool is_le = ftype == EXPFMT_HISTOGRAM && p->tok.len == 2 && memcmp(p->tok.p, "le", 2) == 0;
        size_t li;
        if (add_label(p, p->tok.p, p->tok.len, !is_q && !is_le, &li)) return p->rc;
        skip_blank(p); /* startLabelValue */
        if (p->c == EOFC) return unexpected_eof(p);
        if (p->c != '"') {
            go_quote_byte(q, sizeof q, p->c);
            return perror_at(p, "expected '\"' at start of label value, found %s", q);
        }
        if (tok_label_value(p)) return p->rc;
        if (!names_utf8_valid(p->tok.p, p->tok.len)) {
            go_quote(q, sizeof q, p->tok.p, p->tok.len);
            return perror_at(p, "invalid label value %s", q);
        }
        /* expfmt (and Pushgateway 1.5.1) accept NUL bytes in label values; promlet's store
         * keeps NUL-terminated strings, where {a="x\0y"} would collide with {a="x"}. */
        if (memchr(p->tok.p, 0, p->tok.len)) {
            go_quote(q, sizeof q, p->tok.p, p->tok.len);
            return perror_at(p, "label value %s contains a NUL byte", q);
        }
        struct lab *l = &p->labs[li];
        l->value_off = p->lbuf.len;
        l->value_len = p->tok.len;
        if (buf_put(&p->lbuf, p->tok.p, p->tok.len) < 0 || buf_putc(&p->lbuf, 0) < 0) return oom(p);
        if (is_q || is_le) {
            double v;
            int r = parse_float(p->tok.p, p->tok.len, &p->num, &v);
            if (r == -2) return oom(p);
            if (r < 0) {
                go_quote(q, sizeof q, p->tok.p, p->tok.len);
                return perror_at(p, "expected float as value for '%s' label, got %s",
                                 is_q ? "quantile" : "le", q);
            }
            if (is_q)
                p->quantile = v;
            else
                p->bucket = v;
        }
        skip_blank(p);
        if (p->c == EOFC) return unexpected_eof(p);
        if (p->c == ',') continue;
        if (p->c == '}') {
            skip_blank(p);
            return p->c == EOFC ? unexpected_eof(p) : 0;
        }
        go_quote(q, sizeof q, p->tok.p, p->tok.len);
        return perror_at(p, "unexpected end of label value %s", q);
    }
}

static int emit_sample(struct px *p, double v, bool has_ts, int64_t ts) {
    struct fam *f = &p->fams[p->cur];
    if (!f->reported && report_family(p, f)) return p->rc;
    if (!p->sink || !p->sink->sample) return 0;
    if (p->n_labs > p->cap_plabs) {
        size_t cap = p->n_labs;
        struct proto_label *n = realloc(p->plabs, cap * sizeof *n);
        if (!n) return oom(p);
        p->plabs = n;
        p->cap_plabs = cap;
    }
    for (size_t i = 0; i < p->n_labs; i++) {
        const struct lab *l = &p->labs[i];
        p->plabs[i] = (struct proto_label){p->lbuf.p + l->name_off, l->name_len,
                                           p->lbuf.p + l->value_off, l->value_len};
    }
    int rc = p->sink->sample(p->sink->arg, p->pool.p + f->name_off, p->lbuf.p + p->name_off,
                             p->plabs, p->n_labs, v, has_ts, ts);
    if (rc) {
        p->rc = rc;
        if (p->err) {
            p->err->line = p->line;
            p->err->col = 0;
            snprintf(p->err->msg, sizeof p->err->msg, "stopped by sink");
        }
    }
    return rc;
}

static int parse_sample(struct px *p) {
    char q[96];
    /* A line starting with '{' names its metric inside the braces (UTF-8 syntax): there is no
     * legacy metric name, which expfmt in legacy mode reports like this. */
    if (p->c == '{') return perror_at(p, "invalid metric name");
    if (tok_metric_name(p)) return p->rc;
    if (p->tok.len == 0) return perror_at(p, "invalid metric name");
    p->lbuf.len = 0;
    p->n_labs = 0;
    if (p->cap_lset > 1024) {
        free(p->lset);
        p->lset = NULL;
        p->cap_lset = 0;
    } else if (p->cap_lset) {
        memset(p->lset, 0, p->cap_lset * sizeof *p->lset);
    }
    p->name_off = 0;
    p->name_len = p->tok.len;
    if (buf_put(&p->lbuf, p->tok.p, p->tok.len) < 0 || buf_putc(&p->lbuf, 0) < 0) return oom(p);
    if (set_current_family(p, p->tok.p, p->tok.len)) return p->rc;
    if (p->fams[p->cur].type == T_NONE)
        p->fams[p->cur].type = EXPFMT_UNTYPED; /* a later TYPE line is now an error */
    p->quantile = p->bucket = NAN;
    skip_blank_if_blank(p);
    if (p->c == EOFC) return unexpected_eof(p);
    if (p->c == '{' && parse_labels(p)) return p->rc;

    /* readingValue */
    if (tok_until_ws(p)) return p->rc;
    double v;
    int r = parse_float(p->tok.p, p->tok.len, &p->num, &v);
    if (r == -2) return oom(p);
    if (r < 0) {
        go_quote(q, sizeof q, p->tok.p, p->tok.len);
        return perror_at(p, "expected float as value, got %s", q);
    }
    struct fam *f = &p->fams[p->cur];
    bool keep = true;
    switch (f->type) {
    case EXPFMT_SUMMARY:
        /* expfmt keeps only _count, _sum and samples with a (non-NaN) quantile */
        keep = p->is_count || p->is_sum || !isnan(p->quantile);
        break;
    case EXPFMT_HISTOGRAM:
        keep = p->is_count || p->is_sum || !isnan(p->bucket);
        /* Newer expfmt refuses negative histogram counts (they were converted to uint64). */
        if ((p->is_count || (!p->is_sum && keep)) && v < 0) {
            go_quote(q, sizeof q, fam_name(p, p->cur), f->name_len);
            return perror_at(p, "negative %s for histogram %s",
                             p->is_count ? "count" : "bucket count", q);
        }
        break;
    case T_GAUGE_HISTOGRAM:
        /* TYPE accepts it (it is in the protobuf enum), a sample does not */
        go_quote(q, sizeof q, fam_name(p, p->cur), f->name_len);
        return perror_at(p, "unexpected type for metric name %s", q);
    default:
        break;
    }
    bool has_ts = false;
    int64_t ts = 0;
    if (p->c != '\n') {
        /* startTimestamp: after blanks there must be an integer, then the end of the line */
        skip_blank(p);
        if (p->c == EOFC) return unexpected_eof(p);
        if (tok_until_ws(p)) return p->rc;
        if (parse_int64(p->tok.p, p->tok.len, &ts) < 0) {
            go_quote(q, sizeof q, p->tok.p, p->tok.len);
            return perror_at(p, "expected integer as timestamp, got %s", q);
        }
        has_ts = true;
        if (tok_until_nl(p, false)) return p->rc;
        if (p->tok.len > 0) {
            go_quote(q, sizeof q, p->tok.p, p->tok.len);
            return perror_at(p, "spurious string after timestamp: %s", q);
        }
    }
    if (!keep) return 0;
    return emit_sample(p, v, has_ts, ts);
}

static void px_fini(struct px *p) {
    free(p->tok.p);
    free(p->num.p);
    free(p->lbuf.p);
    free(p->pool.p);
    free(p->labs);
    free(p->plabs);
    free(p->lset);
    free(p->fams);
    free(p->ftab);
}

int expfmt_parse(const uint8_t *buf, size_t len, const struct expfmt_sink *sink, struct perr *err) {
    struct px p = {.in = buf, .len = buf ? len : 0, .sink = sink, .err = err};
    if (err) *err = (struct perr){0};
    /* One iteration per line: p.c is '\n' (or EOF) when a line is done. */
    while (!p.rc) {
        p.line++;
        p.line_start = p.pos;
        skip_blank(&p);
        if (p.c == EOFC) break; /* the only place where the end of input is fine */
        if (p.c == '\n') continue;
        if (p.c == '#')
            parse_comment(&p);
        else
            parse_sample(&p);
    }
    int rc = p.rc;
    px_fini(&p);
    return rc;
}

const char *expfmt_type_name(enum expfmt_type t) {
    switch (t) {
    case EXPFMT_COUNTER:
        return "counter";
    case EXPFMT_GAUGE:
        return "gauge";
    case EXPFMT_SUMMARY:
        return "summary";
    case EXPFMT_HISTOGRAM:
        return "histogram";
    case EXPFMT_UNTYPED:
        break;
    }
    return "untyped";
}
