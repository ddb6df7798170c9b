/* SPDX-License-Identifier: Apache-2.0 */
/* Prometheus's query HTTP API over the store and the PromQL evaluator (web/api/v1 shapes). */
#include "query.h"

#include "defaults.h"
#include "http.h"
#include "jsonw.h"
#include "log.h"
#include "rwrecv.h"
#include "store.h"
#include "version.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- envelopes --------------------------------------------------------------------------- */

/* Prometheus's error types and the HTTP codes its API answers them with. */
#define E_BAD_DATA "bad_data" /* 400 */
#define E_EXEC "execution"    /* 422 */
#define E_TIMEOUT "timeout"   /* 503 */
#define E_INTERNAL "internal" /* 500; we answer out-of-memory with 503 (STYLE 3.5) */

/* Replaces out with {"status":"error","errorType":type,"error":msg}; returns status. */
static int fail(struct sbuf *out, int status, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(struct sbuf *out, int status, const char *type, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sbuf_reset(out);
    sbuf_adds(out, "{\"status\":\"error\",\"errorType\":\"");
    sbuf_adds(out, type);
    sbuf_adds(out, "\",\"error\":");
    jsonw_str(out, msg);
    sbuf_addc(out, '}');
    return status;
}

static int fail_oom(struct sbuf *out) {
    return fail(out, 503, E_INTERNAL, "out of memory");
}

/* Prometheus's invalidParamError: bad_data, `invalid parameter "name": reason`. */
static int bad_param(struct sbuf *out, const char *name, const char *reason) {
    return fail(out, 400, E_BAD_DATA, "invalid parameter \"%s\": %s", name, reason);
}

/* A successful answer ends here; an out-of-memory while writing it becomes a 503. */
static int finish(struct sbuf *out) {
    if (out->oom) {
        sbuf_reset(out); /* clears oom; the error is short */
        return fail_oom(out);
    }
    return 200;
}

/* ---- time and duration parameters --------------------------------------------------------- */

/* Prometheus's minTime/maxTime (the API's defaults for open ranges) and their RFC 3339
 * spellings, which Go's parser cannot read back (years beyond 9999). */
#define MIN_TIME_MS (((INT64_MIN / 1000) + 62135596801LL) * 1000)
#define MAX_TIME_MS (((INT64_MAX / 1000) - 62135596801LL) * 1000 + 999)
static const char min_time_text[] = "-292273086-05-16T16:47:06Z";
static const char max_time_text[] = "292277025-08-18T07:12:54.999999999Z";

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? (unsigned)-3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static bool digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* A time as Go holds it: Unix seconds and nanoseconds in [0, 1e9). */
struct gotime {
    int64_t sec, nsec;
};

/* Go's time.Parse(time.RFC3339Nano, s): 2006-01-02T15:04:05.999999999Z07:00, the fraction
 * optional, the zone "Z" or ±hh:mm. */
static int parse_rfc3339(const char *s, struct gotime *t) {
    int y, mo, d, h, mi, se;
    if (strlen(s) < 20 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || s[10] != 'T' || !digits(s + 11, 2, &h) ||
        s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' || !digits(s + 17, 2, &se))
        return -EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || se > 59)
        return -EINVAL;
    const char *p = s + 19;
    int64_t frac_ns = 0;
    if (*p == '.' || *p == ',') {
        p++;
        int nd = 0;
        while (p[nd] >= '0' && p[nd] <= '9')
            nd++;
        if (nd == 0 || nd > 9) return -EINVAL;
        for (int i = 0; i < 9; i++)
            frac_ns = frac_ns * 10 + (i < nd ? p[i] - '0' : 0);
        p += nd;
    }
    int64_t off_s = 0;
    if (*p == 'Z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        /* Go (1.19, Prometheus 2.42's) takes any two-digit hour and minute here. */
        if (!digits(p + 1, 2, &oh) || p[3] != ':' || !digits(p + 4, 2, &om)) return -EINVAL;
        off_s = (int64_t)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -EINVAL;
    }
    if (*p) return -EINVAL;
    int64_t secs =
        days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off_s;
    t->sec = secs;
    t->nsec = frac_ns;
    return 0;
}

/* Go's float64 -> int64 conversion on amd64 (CVTTSD2SI): NaN and values out of range
 * give INT64_MIN, where C leaves the result undefined. */
static int64_t go_int64(double d) {
    if (isnan(d) || d >= 9223372036854775808.0 || d < -9223372036854775808.0) return INT64_MIN;
    return (int64_t)d;
}

/* Go's strconv underscoreOK: underscores only between digits (or after a base prefix). */
static bool go_underscores_ok(const char *s) {
    char saw = '^';
    size_t i = 0;
    if (*s == '-' || *s == '+') s++;
    bool hex = false;
    if (s[0] == '0' && s[1] && strchr("bBoOxX", s[1])) {
        i = 2;
        saw = '0';
        hex = s[1] == 'x' || s[1] == 'X';
    }
    for (; s[i]; i++) {
        if (isdigit((unsigned char)s[i]) || (hex && isxdigit((unsigned char)s[i]))) {
            saw = '0';
        } else if (s[i] == '_') {
            if (saw != '0') return false;
            saw = '_';
        } else {
            if (saw == '_') return false;
            saw = '!';
        }
    }
    return saw != '_';
}

/* Go's strconv.ParseFloat: like strtod, but no leading space, no "nan(...)", a hex
 * mantissa needs its p exponent, digits may be separated by underscores, and only
 * overflow (not underflow) is an error. */
static int go_parse_float(const char *s, double *out) {
    if (!*s || isspace((unsigned char)s[0])) return -EINVAL;
    if (strchr(s, '_')) {
        char buf[128];
        size_t n = 0;
        if (!go_underscores_ok(s) || strlen(s) >= sizeof(buf)) return -EINVAL;
        for (const char *c = s; *c; c++)
            if (*c != '_') buf[n++] = *c;
        buf[n] = '\0';
        return strchr(buf, '_') || !n ? -EINVAL : go_parse_float(buf, out);
    }
    const char *d = s + (s[0] == '+' || s[0] == '-');
    if ((d[0] == '0' && (d[1] == 'x' || d[1] == 'X')) && !strpbrk(d, "pP")) return -EINVAL;
    if (strchr(s, '(')) return -EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end) return -EINVAL;
    if (errno == ERANGE && isinf(v)) return -ERANGE;
    *out = v;
    return 0;
}

static int64_t wrap_add(int64_t a, int64_t b) {
    return (int64_t)((uint64_t)a + (uint64_t)b);
}

static int64_t wrap_mul(int64_t a, int64_t b) {
    return (int64_t)((uint64_t)a * (uint64_t)b);
}

/* Prometheus's parseTime into Go's time: float seconds through math.Modf, the fraction
 * rounded to ms, time.Unix(s, ns); else RFC 3339; else its minTime/maxTime spellings. Go's
 * conversions saturate to INT64_MIN and its arithmetic wraps, so NaN, Inf and huge values
 * still give a time; it is computed the same way here. */
static int parse_gotime(const char *s, struct gotime *t) {
    if (!s || !*s) return -EINVAL;
    double f;
    if (go_parse_float(s, &f) == 0) {
        double ip, frac = modf(f, &ip);
        if (isinf(f)) frac = NAN; /* Go's Modf(±Inf) is (±Inf, NaN) */
        int64_t sec = go_int64(ip);
        int64_t nsec = go_int64((round(frac * 1000) / 1000) * 1e9);
        if (nsec < 0 || nsec >= 1000000000) { /* time.Unix's normalisation */
            int64_t n = nsec / 1000000000;
            sec = wrap_add(sec, n);
            nsec -= n * 1000000000;
            if (nsec < 0) {
                nsec += 1000000000;
                sec = wrap_add(sec, -1);
            }
        }
        t->sec = sec;
        t->nsec = nsec;
        return 0;
    }
    if (parse_rfc3339(s, t) == 0) return 0;
    if (!strcmp(s, min_time_text)) {
        t->sec = INT64_MIN / 1000 + 62135596801LL;
        t->nsec = 0;
        return 0;
    }
    if (!strcmp(s, max_time_text)) {
        t->sec = INT64_MAX / 1000 - 62135596801LL;
        t->nsec = 999999999;
        return 0;
    }
    return -EINVAL;
}

/* timestamp.FromTime: Unix()*1000 + ns/1e6, wrapping. */
static int64_t gotime_ms(const struct gotime *t) {
    return wrap_add(wrap_mul(t->sec, 1000), t->nsec / 1000000);
}

/* The PromQL engine's timeMilliseconds: UnixNano()/1e6, wrapping, so always within
 * ±9.3e12 ms. */
static int64_t gotime_engine_ms(const struct gotime *t) {
    return wrap_add(wrap_mul(t->sec, 1000000000), t->nsec) / 1000000;
}

/* Go's t.Before(u): compares the internal seconds (Unix + 62135596800, wrapping). */
static bool gotime_before(const struct gotime *t, const struct gotime *u) {
    int64_t ts = wrap_add(t->sec, 62135596800LL), us = wrap_add(u->sec, 62135596800LL);
    return ts < us || (ts == us && t->nsec < u->nsec);
}

int query_parse_time(const char *s, int64_t *ms) {
    struct gotime t;
    if (parse_gotime(s, &t)) return -EINVAL;
    int64_t v = gotime_ms(&t);
    /* Store walks take the range as given; keep to the span Prometheus itself can spell
     * (its minTime/maxTime), rejecting the rest. */
    if (v < MIN_TIME_MS || v > MAX_TIME_MS) return -EINVAL;
    *ms = v;
    return 0;
}

/* Prometheus's model.ParseDuration (the PromQL duration grammar). */
static int parse_prom_duration(const char *s, int64_t *ms) {
    return promql_parse_duration(s, ms);
}

int query_parse_duration(const char *s, int64_t *ns) {
    if (!s || !*s) return -EINVAL;
    double d;
    int rc = go_parse_float(s, &d);
    if (rc == 0) {
        /* parseDuration: seconds as a float64 of ns, refused beyond int64; NaN passes the
         * range check and converts to INT64_MIN (a negative duration). */
        double v = d * 1e9;
        if (v > 9223372036854775807.0 || v < -9223372036854775808.0) return -EOVERFLOW;
        *ns = go_int64(v);
        return 0;
    }
    int64_t ms;
    if (parse_prom_duration(s, &ms) || ms > INT64_MAX / 1000000) return -EINVAL;
    *ns = ms * 1000000;
    return 0;
}

/* Prometheus's parseDuration error text for s (rc from query_parse_duration). */
static void duration_error(char *buf, size_t len, const char *s, int rc) {
    snprintf(buf, len, "cannot parse \"%.300s\" to a valid duration%s", s,
             rc == -EOVERFLOW ? ". It overflows int64" : "");
}

/* parseTimeParam: an absent or empty parameter takes the default. */
static int time_param_ex(const struct query_params *p, const char *name, int64_t def, bool engine,
                         int64_t *ms, struct sbuf *out, int *status) {
    const char *v = p->get(p->ctx, name);
    if (!v || !*v) {
        *ms = def;
        return 0;
    }
    struct gotime t;
    if (engine && parse_gotime(v, &t) == 0) {
        *ms = gotime_engine_ms(&t); /* the instant query's time, as the engine takes it */
        return 0;
    }
    if (!engine && query_parse_time(v, ms) == 0) return 0;
    char reason[512];
    snprintf(reason, sizeof(reason),
             "Invalid time value for '%s': cannot parse \"%.300s\" to a "
             "valid timestamp",
             name, v);
    *status = bad_param(out, name, reason);
    return -EINVAL;
}

static int time_param(const struct query_params *p, const char *name, int64_t def, int64_t *ms,
                      struct sbuf *out, int *status) {
    return time_param_ex(p, name, def, false, ms, out, status);
}

/* ---- series selectors (match[]) ----------------------------------------------------------- */

struct selp {
    const char *s;
    size_t i;
    struct perr *err;
    bool braces; /* inside {...}, where PromQL's lexer reports the end of input itself */
};

static int sel_err(struct selp *p, const char *what) {
    if (p->braces && !p->s[p->i]) what = "unexpected end of input inside braces";
    return perr_set(p->err, 1, (int)p->i + 1, "parse error: %s", what);
}

static void sel_ws(struct selp *p) {
    while (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r')
        p->i++;
}

static bool ident_start(char c, bool colon) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool ident_char(char c, bool colon) {
    return ident_start(c, colon) || (c >= '0' && c <= '9');
}

static void put_utf8(struct sbuf *b, unsigned cp) {
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6)), u[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12)), u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18)), u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f)), u[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    sbuf_add(b, u, n);
}

static int hexdig(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A PromQL string literal: "..." or '...' with Go's escapes, or `raw`. */
static int sel_string(struct selp *p, struct sbuf *v) {
    char q = p->s[p->i];
    if (q != '"' && q != '\'' && q != '`') return sel_err(p, "expected a quoted label value");
    size_t open = p->i; /* PromQL's lexer reports an unterminated string where it opens */
    p->i++;
    for (;;) {
        char c = p->s[p->i];
        if (!c || (c == '\n' && q != '`'))
            return perr_set(p->err, 1, (int)open + 1, "parse error: unterminated quoted string");
        p->i++;
        if (c == q) return 0;
        if (c != '\\' || q == '`') {
            sbuf_addc(v, c);
            continue;
        }
        char e = p->s[p->i++];
        int n = 0, base = 16;
        switch (e) {
        case 'a':
            sbuf_addc(v, '\a');
            break;
        case 'b':
            sbuf_addc(v, '\b');
            break;
        case 'f':
            sbuf_addc(v, '\f');
            break;
        case 'n':
            sbuf_addc(v, '\n');
            break;
        case 'r':
            sbuf_addc(v, '\r');
            break;
        case 't':
            sbuf_addc(v, '\t');
            break;
        case 'v':
            sbuf_addc(v, '\v');
            break;
        case '\\':
            sbuf_addc(v, '\\');
            break;
        case '"':
        case '\'':
            if (e != q) return sel_err(p, "unknown escape sequence");
            sbuf_addc(v, e);
            break;
        case 'x':
            n = 2;
            break;
        case 'u':
            n = 4;
            break;
        case 'U':
            n = 8;
            break;
        default:
            if (e >= '0' && e <= '7') {
                p->i--;
                n = 3;
                base = 8;
                break;
            }
            return sel_err(p, "unknown escape sequence");
        }
        if (!n) continue;
        unsigned cp = 0;
        for (int k = 0; k < n; k++) {
            int d = hexdig(p->s[p->i]);
            if (d < 0 || d >= base) return sel_err(p, "invalid escape sequence");
            cp = cp * (unsigned)base + (unsigned)d;
            p->i++;
        }
        if (e == 'x' || base == 8) {
            if (cp > 255) return sel_err(p, "invalid escape sequence");
            sbuf_addc(v, (char)cp);
        } else {
            if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
                return sel_err(p, "invalid escape sequence");
            put_utf8(v, cp);
        }
    }
}

struct mlist {
    struct re_matcher *m;
    size_t n, cap;
};

static int mlist_add(struct mlist *l, enum re_match_type t, const char *name, const char *value,
                     bool v2, struct perr *err) {
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        struct re_matcher *nm = realloc(l->m, nc * sizeof(*nm));
        if (!nm) return -ENOMEM;
        l->m = nm;
        l->cap = nc;
    }
    memset(&l->m[l->n], 0, sizeof(l->m[l->n]));
    int rc = re_matcher_init_compat(&l->m[l->n], t, name, value, v2, err);
    if (rc) return rc;
    l->n++;
    return 0;
}

static void mlist_free(struct re_matcher *m, size_t n) {
    for (size_t i = 0; i < n; i++)
        re_matcher_fini(&m[i]);
    free(m);
}

int query_parse_selector(const char *s, struct re_matcher **out, size_t *nout, struct perr *err) {
    return query_parse_selector_compat(s, false, out, nout, err);
}

int query_parse_selector_compat(const char *s, bool v2, struct re_matcher **out, size_t *nout,
                                struct perr *err) {
    struct selp p = {s, 0, err, false};
    struct mlist l = {0};
    struct sbuf name, val;
    sbuf_init(&name);
    sbuf_init(&val);
    int rc = 0;
    sel_ws(&p);
    if (ident_start(s[p.i], true)) {
        size_t st = p.i;
        while (ident_char(s[p.i], true))
            p.i++;
        sbuf_add(&name, s + st, p.i - st);
        rc = mlist_add(&l, RE_MATCH_EQ, "__name__", name.data, v2, err);
        sel_ws(&p);
    } else if (s[p.i] != '{') {
        rc = sel_err(&p, s[p.i] ? "unexpected character, expected a series selector"
                                : "unexpected end of input");
    }
    if (!rc && s[p.i] == '{') {
        p.i++;
        p.braces = true;
        for (;;) {
            sel_ws(&p);
            if (s[p.i] == '}') {
                p.i++;
                break;
            }
            if (!ident_start(s[p.i], false)) {
                rc = sel_err(&p, "unexpected character inside braces, expected a label name");
                break;
            }
            size_t st = p.i;
            while (ident_char(s[p.i], false))
                p.i++;
            sbuf_reset(&name);
            sbuf_add(&name, s + st, p.i - st);
            sel_ws(&p);
            enum re_match_type t;
            if (s[p.i] == '=' && s[p.i + 1] == '~')
                t = RE_MATCH_RE, p.i += 2;
            else if (s[p.i] == '!' && s[p.i + 1] == '~')
                t = RE_MATCH_NRE, p.i += 2;
            else if (s[p.i] == '!' && s[p.i + 1] == '=')
                t = RE_MATCH_NEQ, p.i += 2;
            else if (s[p.i] == '=')
                t = RE_MATCH_EQ, p.i += 1;
            else {
                rc = sel_err(&p, "unexpected character, expected a label matching operator");
                break;
            }
            sel_ws(&p);
            sbuf_reset(&val);
            if ((rc = sel_string(&p, &val))) break;
            if (val.oom || name.oom) {
                rc = -ENOMEM;
                break;
            }
            if ((rc = mlist_add(&l, t, name.data, val.data ? val.data : "", v2, err))) {
                /* A bad regex: PromQL reports it as a parse error at the matcher. */
                if (rc == -EINVAL) {
                    char msg[sizeof(err->msg)];
                    snprintf(msg, sizeof(msg), "%s", err->msg);
                    perr_set(err, 1, (int)st + 1, "parse error: %s", msg);
                }
                break;
            }
            sel_ws(&p);
            if (s[p.i] == ',') {
                p.i++;
                continue;
            }
            if (s[p.i] != '}') {
                rc = sel_err(&p, "unexpected character inside braces, expected \",\" or \"}\"");
                break;
            }
        }
        p.braces = false;
        sel_ws(&p);
    }
    if (!rc && s[p.i]) rc = sel_err(&p, "unexpected characters after the series selector");
    if (!rc && l.n == 0)
        rc = perr_set(err, 1, 1,
                      "parse error: vector selector must contain at least one "
                      "non-empty matcher");
    sbuf_fini(&name);
    sbuf_fini(&val);
    if (rc) {
        mlist_free(l.m, l.n);
        return rc == -ENOMEM ? -ENOMEM : -EINVAL;
    }
    *out = l.m;
    *nout = l.n;
    return 0;
}

/* ---- label sets collected from the store --------------------------------------------------- */

/* Copies of label sets (strings owned), for /api/v1/series. */
struct lsets {
    struct re_label **sets;
    size_t *lens;
    size_t n, cap;
    bool oom;
};

static int lsets_visit(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                       const double *vals, const struct re_hist *const *hists, size_t n) {
    (void)ts, (void)vals, (void)hists, (void)n;
    struct lsets *s = arg;
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 64;
        struct re_label **ns = realloc(s->sets, nc * sizeof(*ns));
        size_t *nl = ns ? realloc(s->lens, nc * sizeof(*nl)) : NULL;
        if (ns) s->sets = ns;
        if (!ns || !nl) {
            s->oom = true;
            return -ENOMEM;
        }
        s->lens = nl;
        s->cap = nc;
    }
    struct re_label *c = calloc(nlabels ? nlabels : 1, sizeof(*c));
    if (!c) {
        s->oom = true;
        return -ENOMEM;
    }
    for (size_t i = 0; i < nlabels; i++) {
        c[i].name = strdup(labels[i].name);
        c[i].value = strdup(labels[i].value);
        if (!c[i].name || !c[i].value) {
            re_labels_free(c, nlabels);
            s->oom = true;
            return -ENOMEM;
        }
    }
    s->sets[s->n] = c;
    s->lens[s->n++] = nlabels;
    return 0;
}

static void lsets_fini(struct lsets *s) {
    for (size_t i = 0; i < s->n; i++)
        re_labels_free(s->sets[i], s->lens[i]);
    free(s->sets);
    free(s->lens);
}

/* labels.Compare: by name, then value, pair by pair; a prefix sorts first. */
static int labels_cmp(const struct re_label *a, size_t na, const struct re_label *b, size_t nb) {
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (c) return c;
        c = strcmp(a[i].value, b[i].value);
        if (c) return c;
    }
    return na < nb ? -1 : na > nb;
}

/* qsort_r comparator over an index permutation of an lsets. */
static int idx_cmp(const void *x, const void *y, void *arg) {
    const struct lsets *s = arg;
    size_t a = *(const size_t *)x, b = *(const size_t *)y;
    return labels_cmp(s->sets[a], s->lens[a], s->sets[b], s->lens[b]);
}

/* Distinct strings, for /labels and /label/<name>/values. */
struct strs {
    char **v;
    size_t n, cap;
    bool oom;
};

static int strs_add(void *arg, const char *s) {
    struct strs *l = arg;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 64;
        char **nv = realloc(l->v, nc * sizeof(*nv));
        if (!nv) {
            l->oom = true;
            return -ENOMEM;
        }
        l->v = nv;
        l->cap = nc;
    }
    if (!(l->v[l->n] = strdup(s))) {
        l->oom = true;
        return -ENOMEM;
    }
    l->n++;
    return 0;
}

static void strs_fini(struct strs *l) {
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
}

static int str_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts, drops duplicates and writes ["a","b",...]. */
static void strs_write(struct strs *l, struct sbuf *out) {
    if (l->n) qsort(l->v, l->n, sizeof(*l->v), str_cmp);
    sbuf_addc(out, '[');
    for (size_t i = 0, k = 0; i < l->n; i++) {
        if (i && !strcmp(l->v[i], l->v[i - 1])) continue;
        if (k++) sbuf_addc(out, ',');
        jsonw_str(out, l->v[i]);
    }
    sbuf_addc(out, ']');
}

/* match[] parameters parsed into matcher sets. */
struct msets {
    struct re_matcher **m;
    size_t *n;
    size_t count;
    bool v2; /* regexes as Prometheus 2.x compiles them */
    int rc;
    struct perr err;
    char bad[256]; /* the selector that failed */
};

static int msets_add(void *arg, const char *value) {
    struct msets *ms = arg;
    struct re_matcher **nm = realloc(ms->m, (ms->count + 1) * sizeof(*nm));
    if (nm) ms->m = nm;
    size_t *nn = nm ? realloc(ms->n, (ms->count + 1) * sizeof(*nn)) : NULL;
    if (!nm || !nn) return ms->rc = -ENOMEM;
    ms->n = nn;
    int rc =
        query_parse_selector_compat(value, ms->v2, &ms->m[ms->count], &ms->n[ms->count], &ms->err);
    if (rc) {
        snprintf(ms->bad, sizeof(ms->bad), "%s", value);
        return ms->rc = rc;
    }
    ms->count++;
    return 0;
}

static void msets_fini(struct msets *ms) {
    for (size_t i = 0; i < ms->count; i++)
        mlist_free(ms->m[i], ms->n[i]);
    free(ms->m);
    free(ms->n);
}

/* Parses every match[]; on error writes the answer and returns -1 with *status set.
 * Prometheus's parseMatchersParam: each set needs a matcher that does not match "". The
 * series API wraps the error as an invalid "match[]" parameter, labels and label values
 * answer it bare (wrap). */
static int parse_match_params(const struct query_params *p, bool wrap, struct msets *ms,
                              struct sbuf *out, int *status) {
    if (p->each) p->each(p->ctx, "match[]", msets_add, ms);
    if (ms->rc == -ENOMEM) {
        *status = fail_oom(out);
        return -1;
    }
    if (ms->rc) {
        char reason[400];
        if (ms->err.line)
            snprintf(reason, sizeof(reason), "%d:%d: %s", ms->err.line, ms->err.col, ms->err.msg);
        else
            snprintf(reason, sizeof(reason), "%s", ms->err.msg);
        *status =
            wrap ? bad_param(out, "match[]", reason) : fail(out, 400, E_BAD_DATA, "%s", reason);
        return -1;
    }
    for (size_t i = 0; i < ms->count; i++) {
        bool nonempty = false;
        for (size_t k = 0; k < ms->n[i]; k++)
            nonempty |= !re_matcher_matches_empty(&ms->m[i][k]);
        if (!nonempty) {
            static const char msg[] = "match[] must contain at least one non-empty matcher";
            *status = wrap ? bad_param(out, "match[]", msg) : fail(out, 400, E_BAD_DATA, msg);
            return -1;
        }
    }
    return 0;
}

static void success_head(struct sbuf *out) {
    sbuf_reset(out);
    sbuf_adds(out, "{\"status\":\"success\",\"data\":");
}

/* ---- /api/v1/series, /labels, /label/<name>/values ------------------------------------------ */

int query_series(const struct query_env *env, const struct query_params *p, struct sbuf *out) {
    int status = 0;
    struct msets ms = {.v2 = env->compat_v2};
    if (!p->get(p->ctx, "match[]")) {
        return fail(out, 400, E_BAD_DATA, "no match[] parameter provided");
    }
    int64_t start, end;
    if (time_param(p, "start", MIN_TIME_MS, &start, out, &status) ||
        time_param(p, "end", MAX_TIME_MS, &end, out, &status))
        return status;
    if (parse_match_params(p, true, &ms, out, &status)) {
        msets_fini(&ms);
        return status;
    }
    /* Prometheus lists a series when one of its chunks overlaps [start, end]; a series'
     * samples here are one chunk: it has a sample at or before end and one at or after
     * start (so also when the window falls between two samples, or end < start). */
    struct lsets before = {0}, after = {0};
    int rc = 0;
    for (size_t i = 0; i < ms.count && !rc; i++) {
        rc =
            store_select_last(env->store, ms.m[i], ms.n[i], MIN_TIME_MS, end, lsets_visit, &before);
        if (!rc)
            rc = store_select_last(env->store, ms.m[i], ms.n[i], start, MAX_TIME_MS, lsets_visit,
                                   &after);
    }
    msets_fini(&ms);
    size_t *ob = NULL, *oa = NULL;
    if (!rc && !before.oom && !after.oom) {
        ob = malloc((before.n ? before.n : 1) * sizeof(*ob));
        oa = malloc((after.n ? after.n : 1) * sizeof(*oa));
    }
    if (!ob || !oa) {
        free(ob);
        free(oa);
        lsets_fini(&before);
        lsets_fini(&after);
        return fail_oom(out);
    }
    for (size_t i = 0; i < before.n; i++)
        ob[i] = i;
    for (size_t i = 0; i < after.n; i++)
        oa[i] = i;
    /* Series from several match[] are merged and deduplicated, in label order. */
    if (before.n) qsort_r(ob, before.n, sizeof(*ob), idx_cmp, &before);
    if (after.n) qsort_r(oa, after.n, sizeof(*oa), idx_cmp, &after);
    success_head(out);
    sbuf_addc(out, '[');
    size_t k = 0, j = 0;
    for (size_t i = 0; i < before.n; i++) {
        size_t x = ob[i];
        const struct re_label *l = before.sets[x];
        size_t n = before.lens[x];
        if (i && !labels_cmp(l, n, before.sets[ob[i - 1]], before.lens[ob[i - 1]])) continue;
        int c = 1;
        while (j < after.n && (c = labels_cmp(after.sets[oa[j]], after.lens[oa[j]], l, n)) < 0)
            j++;
        if (j == after.n || c != 0) continue;
        if (k++) sbuf_addc(out, ',');
        jsonw_labels(out, l, n);
    }
    sbuf_adds(out, "]}");
    free(ob);
    free(oa);
    lsets_fini(&before);
    lsets_fini(&after);
    return finish(out);
}

/* Collects label names (or one label's values) of the series a select visits. */
struct namecollect {
    struct strs *out;
    const char *value_of; /* NULL: names */
};

static int names_visit(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                       const double *vals, const struct re_hist *const *hists, size_t n) {
    (void)ts, (void)vals, (void)hists, (void)n;
    struct namecollect *c = arg;
    for (size_t i = 0; i < nlabels; i++) {
        int rc = 0;
        if (!c->value_of)
            rc = strs_add(c->out, labels[i].name);
        else if (!strcmp(labels[i].name, c->value_of))
            rc = strs_add(c->out, labels[i].value);
        if (rc) return rc;
    }
    return 0;
}

/* Stops a select at its first series. */
static int found_visit(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                       const double *vals, const struct re_hist *const *hists, size_t n) {
    (void)labels, (void)nlabels, (void)ts, (void)vals, (void)hists, (void)n;
    *(bool *)arg = true;
    return 1;
}

/* Whether [start, end] overlaps the span of the store's samples: Prometheus answers label
 * names and values from every block overlapping the window, whole (for its head block,
 * headIndexReader: nothing when h.maxt < head.MinTime() || h.mint > head.MaxTime()). The
 * store is one such block. Returns 1, 0 or -ENOMEM. */
static int store_overlaps(struct store *st, int64_t start, int64_t end) {
    if (start == MIN_TIME_MS && end == MAX_TIME_MS) return 1;
    bool before = false, after = false; /* a sample at or before end, one at or after start */
    int rc = store_select_last(st, NULL, 0, MIN_TIME_MS, end, found_visit, &before);
    if (rc < 0) return rc;
    if (!before) return 0;
    rc = store_select_last(st, NULL, 0, start, MAX_TIME_MS, found_visit, &after);
    return rc < 0 ? rc : after;
}

static int names_or_values(const struct query_env *env, const struct query_params *p,
                           const char *value_of, struct sbuf *out) {
    int status = 0;
    int64_t start, end;
    if (time_param(p, "start", MIN_TIME_MS, &start, out, &status) ||
        time_param(p, "end", MAX_TIME_MS, &end, out, &status))
        return status;
    struct msets ms = {.v2 = env->compat_v2};
    if (parse_match_params(p, false, &ms, out, &status)) {
        msets_fini(&ms);
        return status;
    }
    struct strs l = {0};
    int rc = store_overlaps(env->store, start, end);
    if (rc == 1 && ms.count) {
        /* labelNamesWithMatchers / labelValuesWithMatchers: every matching series of an
         * overlapping block, whatever its samples' times. */
        struct namecollect c = {&l, value_of};
        rc = 0;
        for (size_t i = 0; i < ms.count && !rc; i++)
            rc = store_select_last(env->store, ms.m[i], ms.n[i], MIN_TIME_MS, MAX_TIME_MS,
                                   names_visit, &c);
    } else if (rc == 1 && value_of) {
        rc = store_label_values(env->store, value_of, strs_add, &l);
    } else if (rc == 1) {
        rc = store_label_names(env->store, strs_add, &l);
    }
    msets_fini(&ms);
    if (rc < 0 || l.oom) {
        strs_fini(&l);
        return fail_oom(out);
    }
    success_head(out);
    strs_write(&l, out);
    sbuf_addc(out, '}');
    strs_fini(&l);
    return finish(out);
}

int query_labels(const struct query_env *env, const struct query_params *p, struct sbuf *out) {
    return names_or_values(env, p, NULL, out);
}

int query_label_values(const struct query_env *env, const struct query_params *p, const char *name,
                       struct sbuf *out) {
    /* Prometheus checks model.LabelNameRE on the path segment. */
    if (!re_valid_label_name(name, strlen(name)))
        return fail(out, 400, E_BAD_DATA, "invalid label name: \"%.200s\"", name);
    return names_or_values(env, p, name, out);
}

static int count_selector(void *arg, const struct re_matcher *m, size_t nm) {
    (void)m, (void)nm;
    ++*(size_t *)arg;
    return 0;
}

int query_exemplars(const struct query_env *env, const struct query_params *p, struct sbuf *out) {
    int status = 0;
    int64_t start, end;
    if (time_param(p, "start", MIN_TIME_MS, &start, out, &status) ||
        time_param(p, "end", MAX_TIME_MS, &end, out, &status))
        return status;
    if (end < start)
        return fail(out, 400, E_BAD_DATA, "end timestamp must not be before start timestamp");
    const char *q = p->get(p->ctx, "query");
    struct perr err = {0};
    struct promql_expr *e = promql_parse_compat(q ? q : "", env->compat_v2, &err);
    if (!e) {
        if (!err.msg[0]) return fail_oom(out);
        if (err.line) return fail(out, 400, E_BAD_DATA, "%d:%d: %s", err.line, err.col, err.msg);
        return fail(out, 400, E_BAD_DATA, "%s", err.msg);
    }
    size_t nsel = 0;
    promql_foreach_selector(e, count_selector, &nsel);
    promql_free(e);
    sbuf_reset(out);
    if (!nsel) return 204; /* Prometheus: no data, no body */
    success_head(out);
    sbuf_adds(out, "[]}");
    return finish(out);
}

/* ---- /api/v1/query, /api/v1/query_range --------------------------------------------------- */

/* The deadline promql_opts.cancelled checks. The evaluator asks often (per step and series),
 * so only every 16th call reads the clock; each query has its own struct. */
struct deadline {
    struct timespec at;
    unsigned calls;
};

static bool deadline_passed(void *arg) {
    struct deadline *d = arg;
    if (d->calls++ % 16) return false;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > d->at.tv_sec ||
           (now.tv_sec == d->at.tv_sec && now.tv_nsec >= d->at.tv_nsec);
}

/* The request's timeout (Prometheus: the `timeout` parameter, bounded by the engine's
 * query.timeout). Returns 0, or -1 with the error answer written. */
static int setup_deadline(const struct query_env *env, const struct query_params *p,
                          struct deadline *d, struct sbuf *out, int *status) {
    int64_t ns = env->timeout_ms > 0 ? env->timeout_ms * 1000000 : INT64_MAX;
    const char *to = p->get(p->ctx, "timeout");
    if (to && *to) {
        int64_t t;
        int rc = query_parse_duration(to, &t);
        if (rc) {
            char reason[400];
            duration_error(reason, sizeof(reason), to, rc);
            *status = bad_param(out, "timeout", reason);
            return -1;
        }
        if (t < ns) ns = t < 0 ? 0 : t;
    }
    clock_gettime(CLOCK_MONOTONIC, &d->at);
    d->calls = 0;
    if (ns > (int64_t)1000000000 * 86400 * 365) ns = (int64_t)1000000000 * 86400 * 365;
    int64_t total = d->at.tv_nsec + ns % 1000000000;
    d->at.tv_sec += (time_t)(ns / 1000000000 + total / 1000000000);
    d->at.tv_nsec = (long)(total % 1000000000);
    return 0;
}

static void opts_for(const struct query_env *env, struct deadline *d, struct promql_opts *o) {
    promql_opts_default(o);
    o->compat_v2 = env->compat_v2;
    if (env->max_samples) o->max_samples = env->max_samples;
    if (env->lookback_ms > 0) o->lookback_ms = env->lookback_ms;
    o->cancelled = deadline_passed;
    o->cancel_arg = d;
}

/* Parses the query parameter; on error writes Prometheus's bad_data answer. The instant
 * query wraps the reason as an invalid "query" parameter, the range query does not (its
 * error comes straight from NewRangeQuery). */
static struct promql_expr *parse_query(const struct query_env *env, const struct query_params *p,
                                       bool wrap, struct sbuf *out, int *status) {
    const char *q = p->get(p->ctx, "query");
    struct perr err = {0};
    struct promql_expr *e = promql_parse_compat(q ? q : "", env->compat_v2, &err);
    if (e) return e;
    if (!err.msg[0]) {
        *status = fail_oom(out);
        return NULL;
    }
    char reason[400];
    if (err.line)
        snprintf(reason, sizeof(reason), "%d:%d: %s", err.line, err.col, err.msg);
    else
        snprintf(reason, sizeof(reason), "%s", err.msg);
    *status = wrap ? bad_param(out, "query", reason) : fail(out, 400, E_BAD_DATA, "%s", reason);
    return NULL;
}

/* Maps an evaluation failure to Prometheus's answer (returnAPIError). */
static int eval_failed(int rc, const struct perr *err, bool late_start, struct sbuf *out) {
    switch (rc) {
    case -ECANCELED:
        /* Prometheus names the stage the deadline hit: a deadline already passed is met in
         * its query queue (the active query tracker), else during evaluation. */
        return fail(out, 503, E_TIMEOUT, "query timed out in %s",
                    late_start ? "query queue" : "expression evaluation");
    case -E2BIG:
        return fail(out, 422, E_EXEC, "%s",
                    err->msg[0] ? err->msg
                                : "query processing would load too many samples into memory "
                                  "in query execution");
    case -ENOMEM:
        return fail_oom(out);
    default:
        return fail(out, 422, E_EXEC, "%s", err->msg[0] ? err->msg : "evaluation failed");
    }
}

static void write_point(struct sbuf *out, const struct promql_point *pt) {
    sbuf_addc(out, '[');
    jsonw_ts(out, pt->t);
    sbuf_addc(out, ',');
    if (pt->h)
        jsonw_hist(out, pt->h);
    else
        jsonw_value(out, pt->v);
    sbuf_addc(out, ']');
}

/* Scalars and strings are marshalled by their own MarshalJSON with encoding/json: the time
 * is a float64 of seconds (shortest form), the scalar's value FormatFloat(v, 'f', -1). */
static void write_json_seconds(struct sbuf *out, int64_t t) {
    double s = (double)t / 1000;
    double a = fabs(s);
    /* encoding/json floats: 'f' in [1e-6, 1e21), else 'e' with a trimmed exponent. */
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        struct sbuf tmp;
        sbuf_init(&tmp);
        jsonw_gofloat(&tmp, s, 'e');
        const char *d = tmp.data ? tmp.data : "0";
        const char *e = strchr(d, 'e');
        if (e && e[1] == '-' && e[2] == '0' && e[3]) {
            sbuf_add(out, d, (size_t)(e - d) + 2);
            sbuf_adds(out, e + 3);
        } else {
            sbuf_adds(out, d);
        }
        sbuf_fini(&tmp);
        return;
    }
    jsonw_gofloat(out, s, 'f');
}

static void write_result(struct sbuf *out, const struct promql_result *r) {
    switch (r->type) {
    case PROMQL_SCALAR:
        sbuf_adds(out, "{\"resultType\":\"scalar\",\"result\":[");
        write_json_seconds(out, r->t);
        sbuf_adds(out, ",\"");
        jsonw_gofloat(out, r->scalar, 'f');
        sbuf_adds(out, "\"]}");
        return;
    case PROMQL_STRING:
        sbuf_adds(out, "{\"resultType\":\"string\",\"result\":[");
        write_json_seconds(out, r->t);
        sbuf_addc(out, ',');
        jsonw_str(out, r->str ? r->str : "");
        sbuf_adds(out, "]}");
        return;
    case PROMQL_VECTOR:
        sbuf_adds(out, "{\"resultType\":\"vector\",\"result\":[");
        for (size_t i = 0, k = 0; i < r->nseries; i++) {
            const struct promql_series *s = &r->series[i];
            if (!s->npoints) continue;
            if (k++) sbuf_addc(out, ',');
            sbuf_adds(out, "{\"metric\":");
            jsonw_labels(out, s->labels, s->nlabels);
            sbuf_adds(out, s->points[0].h ? ",\"histogram\":" : ",\"value\":");
            write_point(out, &s->points[0]);
            sbuf_addc(out, '}');
        }
        sbuf_adds(out, "]}");
        return;
    case PROMQL_MATRIX:
        sbuf_adds(out, "{\"resultType\":\"matrix\",\"result\":[");
        for (size_t i = 0; i < r->nseries; i++) {
            const struct promql_series *s = &r->series[i];
            if (i) sbuf_addc(out, ',');
            sbuf_adds(out, "{\"metric\":");
            jsonw_labels(out, s->labels, s->nlabels);
            /* Floats first, then histograms, each key only when it has points. */
            for (int pass = 0; pass < 2; pass++) {
                bool any = false;
                for (size_t k = 0; k < s->npoints; k++) {
                    const struct promql_point *pt = &s->points[k];
                    if ((pt->h != NULL) != (pass == 1)) continue;
                    sbuf_adds(out, any ? "," : pass ? ",\"histograms\":[" : ",\"values\":[");
                    any = true;
                    write_point(out, pt);
                }
                if (any) sbuf_addc(out, ']');
            }
            sbuf_addc(out, '}');
        }
        sbuf_adds(out, "]}");
        return;
    }
}

/* Writes one annotation list ("warnings" or "infos") of the messages that pass keep. */
static void write_annotations(struct sbuf *out, const char *key, const struct promql_result *r,
                              bool infos, bool compat_v2) {
    bool any = false;
    for (size_t i = 0; i < r->nwarnings; i++) {
        const char *w = r->warnings[i];
        bool is_promql = !strncmp(w, "PromQL ", 7);
        /* Prometheus 2.x has no PromQL annotations (they came with 3.0, infos apart from
         * warnings); storage warnings it does report. */
        if ((compat_v2 && is_promql) || infos != !strncmp(w, "PromQL info:", 12)) continue;
        sbuf_adds(out, any ? "," : ",\"");
        if (!any) {
            sbuf_adds(out, key);
            sbuf_adds(out, "\":[");
        }
        any = true;
        jsonw_str(out, w);
    }
    if (any) sbuf_addc(out, ']');
}

static int answer(const struct query_env *env, const struct promql_result *r, struct sbuf *out) {
    success_head(out);
    write_result(out, r);
    write_annotations(out, "warnings", r, false, env->compat_v2);
    write_annotations(out, "infos", r, true, env->compat_v2);
    sbuf_addc(out, '}');
    return finish(out);
}

static int series_cmp(const void *a, const void *b) {
    const struct promql_series *x = a, *y = b;
    return labels_cmp(x->labels, x->nlabels, y->labels, y->nlabels);
}

int query_instant(const struct query_env *env, const struct query_params *p, struct sbuf *out) {
    int status = 0;
    int64_t t;
    if (time_param_ex(p, "time", p->now_ms, true, &t, out, &status)) return status;
    struct deadline d;
    if (setup_deadline(env, p, &d, out, &status)) return status;
    struct promql_expr *e = parse_query(env, p, true, out, &status);
    if (!e) return status;
    struct promql_opts o;
    opts_for(env, &d, &o);
    struct re_source src;
    store_source(env->store, &src);
    struct promql_result *r = NULL;
    struct perr err = {0};
    bool late = deadline_passed(&d);
    int rc = late ? -ECANCELED : promql_eval_instant(e, &src, t, &o, &r, &err);
    bool keep = promql_orders_result(e);
    promql_free(e);
    if (rc) return eval_failed(rc, &err, late, out);
    /* The store walks series in hash order; answer in Prometheus's storage order (series
     * sorted by labels, which selectors and the operators over them keep), unless the query
     * orders its result itself. */
    if (!keep && r->type == PROMQL_VECTOR && r->nseries > 1)
        qsort(r->series, r->nseries, sizeof(*r->series), series_cmp);
    status = answer(env, r, out);
    promql_result_free(r);
    return status;
}

int query_range(const struct query_env *env, const struct query_params *p, struct sbuf *out) {
    const char *sv = p->get(p->ctx, "start"), *ev = p->get(p->ctx, "end");
    const char *stv = p->get(p->ctx, "step");
    char reason[400];
    int64_t step_ns;
    struct gotime gs, ge;
    if (parse_gotime(sv ? sv : "", &gs)) {
        snprintf(reason, sizeof(reason), "cannot parse \"%.300s\" to a valid timestamp",
                 sv ? sv : "");
        return bad_param(out, "start", reason);
    }
    if (parse_gotime(ev ? ev : "", &ge)) {
        snprintf(reason, sizeof(reason), "cannot parse \"%.300s\" to a valid timestamp",
                 ev ? ev : "");
        return bad_param(out, "end", reason);
    }
    if (gotime_before(&ge, &gs))
        return bad_param(out, "end", "end timestamp must not be before start time");
    int drc = query_parse_duration(stv ? stv : "", &step_ns);
    if (drc) {
        duration_error(reason, sizeof(reason), stv ? stv : "", drc);
        return bad_param(out, "step", reason);
    }
    if (step_ns <= 0)
        return bad_param(out, "step",
                         "zero or negative query resolution step widths are not "
                         "accepted. Try a positive integer");
    /* Prometheus limits points per series: end.Sub(start)/step > 11000, with Go's Sub
     * saturating at the int64 ns bounds. */
    __int128 span_ns =
        ((__int128)wrap_add(ge.sec, 62135596800LL) - wrap_add(gs.sec, 62135596800LL)) * 1000000000 +
        (ge.nsec - gs.nsec);
    if (span_ns > INT64_MAX) span_ns = INT64_MAX;
    if (span_ns < INT64_MIN) span_ns = INT64_MIN;
    if (span_ns / step_ns > 11000)
        return fail(out, 400, E_BAD_DATA,
                    "exceeded maximum resolution of 11,000 points per timeseries. Try "
                    "decreasing the query resolution (?step=XX)");
    int64_t start = gotime_engine_ms(&gs), end = gotime_engine_ms(&ge);
    int64_t step_ms = step_ns / 1000000;
    int status = 0;
    struct deadline d;
    if (setup_deadline(env, p, &d, out, &status)) return status;
    struct promql_expr *e = parse_query(env, p, false, out, &status);
    if (!e) return status;
    enum promql_vtype vt = promql_expr_type(e);
    if (vt != PROMQL_SCALAR && vt != PROMQL_VECTOR) {
        promql_free(e);
        snprintf(reason, sizeof(reason),
                 "invalid expression type \"%s\" for range query, must be Scalar or instant "
                 "Vector",
                 vt == PROMQL_MATRIX ? "range vector" : "string");
        return fail(out, 400, E_BAD_DATA, "%s", reason);
    }
    if (step_ms == 0) {
        /* A sub-millisecond step is 0 ms to Prometheus 2.42's engine, which divides by it;
         * the recovered panic is its answer. */
        promql_free(e);
        return fail(out, 422, E_EXEC, "unexpected error: runtime error: integer divide by zero");
    }
    struct promql_opts o;
    opts_for(env, &d, &o);
    struct re_source src;
    store_source(env->store, &src);
    struct promql_result *r = NULL;
    struct perr err = {0};
    bool late = deadline_passed(&d);
    int rc = late ? -ECANCELED : promql_eval_range(e, &src, start, end, step_ms, &o, &r, &err);
    promql_free(e);
    if (rc) return eval_failed(rc, &err, late, out);
    status = answer(env, r, out);
    promql_result_free(r);
    return status;
}

/* ---- the agent module ---------------------------------------------------------------------- */

struct query {
    struct agent *a;
};

static const char *req_get(void *ctx, const char *name) {
    return http_arg(ctx, name);
}

static int req_each(void *ctx, const char *name, int (*fn)(void *arg, const char *value),
                    void *arg) {
    return http_args(ctx, name, fn, arg);
}

static void env_of(struct agent *a, struct query_env *env) {
    env->store = a->store;
    env->compat_v2 = a->flags->promql_compat_v2;
    pthread_mutex_lock(&a->cfg_lock);
    env->max_samples = a->cfg->query_max_samples;
    env->timeout_ms = a->cfg->query_timeout_ms;
    env->lookback_ms = a->cfg->query_lookback_delta_ms;
    pthread_mutex_unlock(&a->cfg_lock);
}

typedef int endpoint_fn(const struct query_env *env, const struct query_params *p,
                        struct sbuf *out);

static void serve(struct agent *a, const struct http_req *req, struct http_resp *resp,
                  endpoint_fn *fn) {
    struct query_env env;
    env_of(a, &env);
    struct query_params p = {req_get, req_each, (void *)req, agent_now_ms()};
    resp->status = fn(&env, &p, &resp->body);
    resp->content_type = "application/json";
    resp->api_compress = true;
    http_cors(req, resp);
}

/* Largest [range] in a query's text (0 if none), and whether a [range:step] subquery is in
 * it; quoted strings are skipped. A rough scan: a false alarm only offloads a query. */
static int64_t max_range_ms(const char *q, bool *subquery) {
    int64_t max = 0;
    for (const char *p = q; *p; p++) {
        if (*p == '"' || *p == '\'' || *p == '`') {
            char c = *p;
            while (p[1] && p[1] != c)
                p += (p[1] == '\\' && c != '`' && p[2]) ? 2 : 1;
            if (!p[1]) break;
            p++;
            continue;
        }
        if (*p != '[') continue;
        const char *e = strchr(p, ']');
        if (!e) break;
        char d[64];
        size_t n = (size_t)(e - p - 1);
        if (memchr(p + 1, ':', n)) *subquery = true;
        int64_t ms;
        if (n < sizeof(d)) {
            memcpy(d, p + 1, n);
            d[n] = '\0';
            if (promql_parse_duration(d, &ms) == 0 && ms > max) max = ms;
        }
        p = e;
    }
    return max;
}

/* Decides, on the HTTP thread, whether a query may take long enough to evaluate on a worker
 * (see http_route_offload): subqueries always; otherwise when the samples it may visit,
 * estimated from the store's size, the number of steps and the largest range, exceed
 * DEF_QUERY_INLINE_WORK. Small queries like the experiment's stay on the HTTP thread,
 * where they cost no thread switches. */
static bool offload_query(struct agent *a, const struct http_req *req, bool range) {
    const char *q = http_arg(req, "query");
    if (!q) return false; /* answered at once with an error */
    bool subquery = false;
    int64_t rng = max_range_ms(q, &subquery);
    if (subquery) return true;
    double steps = 1;
    if (range) {
        int64_t start, end, step_ns;
        const char *sv = http_arg(req, "start"), *ev = http_arg(req, "end");
        const char *stv = http_arg(req, "step");
        if (!sv || !ev || !stv || query_parse_time(sv, &start) || query_parse_time(ev, &end) ||
            query_parse_duration(stv, &step_ns) || step_ns <= 0 || end < start)
            return false; /* answered at once with an error */
        steps = (double)(end - start) * 1e6 / (double)step_ns + 1;
    }
    struct store_stats st;
    store_get_stats(a->store, &st);
    pthread_mutex_lock(&a->cfg_lock);
    int64_t retention = a->cfg->retention_ms;
    pthread_mutex_unlock(&a->cfg_lock);
    double window = retention > 0 && rng < retention ? (double)rng / (double)retention : 1;
    double work = steps * ((double)st.series + (double)st.samples * window);
    return work > DEF_QUERY_INLINE_WORK;
}

static bool offload_instant(void *arg, const struct http_req *req) {
    return offload_query(arg, req, false);
}

static bool offload_range(void *arg, const struct http_req *req) {
    return offload_query(arg, req, true);
}

static void h_query(void *arg, const struct http_req *req, struct http_resp *resp) {
    serve(arg, req, resp, query_instant);
}

static void h_query_range(void *arg, const struct http_req *req, struct http_resp *resp) {
    serve(arg, req, resp, query_range);
}

static void h_series(void *arg, const struct http_req *req, struct http_resp *resp) {
    if (!strcmp(http_method(req), "DELETE")) {
        /* Prometheus 2.42 registers DELETE /api/v1/series and answers it so. */
        resp->status = fail(&resp->body, 500, E_INTERNAL, "not implemented");
        resp->content_type = "application/json";
        resp->api_compress = true;
        http_cors(req, resp);
        return;
    }
    serve(arg, req, resp, query_series);
}

static void h_labels(void *arg, const struct http_req *req, struct http_resp *resp) {
    serve(arg, req, resp, query_labels);
}

static void h_exemplars(void *arg, const struct http_req *req, struct http_resp *resp) {
    serve(arg, req, resp, query_exemplars);
    if (resp->status == 204) resp->content_type = "";
}

static void h_label_values(void *arg, const struct http_req *req, struct http_resp *resp) {
    /* /api/v1/label/<name>/values */
    const char *sub = http_subpath(req);
    const char *slash = strchr(sub, '/');
    if (!slash || slash == sub || strcmp(slash, "/values") != 0) {
        http_error(resp, 404, "404 page not found");
        return;
    }
    char name[1024];
    size_t n = (size_t)(slash - sub);
    if (n >= sizeof(name)) n = sizeof(name) - 1;
    memcpy(name, sub, n);
    name[n] = '\0';
    struct query_env env;
    env_of(arg, &env);
    struct query_params p = {req_get, req_each, (void *)req, agent_now_ms()};
    resp->status = query_label_values(&env, &p, name, &resp->body);
    resp->content_type = "application/json";
    resp->api_compress = true;
    http_cors(req, resp);
}

/* Metadata entries copied out of the walk (the walker holds a lock while it calls us). */
struct meta_list {
    struct meta_ent {
        char *family, *help, *unit;
        int type;
    } * e;
    size_t n, cap;
    bool oom;
};

static int meta_add(void *arg, const char *family, int type, const char *help, const char *unit) {
    struct meta_list *l = arg;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        struct meta_ent *ne = realloc(l->e, nc * sizeof(*ne));
        if (!ne) {
            l->oom = true;
            return -ENOMEM;
        }
        l->e = ne;
        l->cap = nc;
    }
    struct meta_ent *m = &l->e[l->n];
    m->family = strdup(family);
    m->help = strdup(help ? help : "");
    m->unit = strdup(unit ? unit : "");
    m->type = type;
    if (!m->family || !m->help || !m->unit) {
        free(m->family);
        free(m->help);
        free(m->unit);
        l->oom = true;
        return -ENOMEM;
    }
    l->n++;
    return 0;
}

static int meta_cmp(const void *a, const void *b) {
    return strcmp(((const struct meta_ent *)a)->family, ((const struct meta_ent *)b)->family);
}

int query_metadata(const struct query_params *p, query_meta_walk_fn *walk, void *walk_ctx,
                   struct sbuf *out) {
    /* Prometheus's metricMetadata: strconv.Atoi on limit, a negative limit means none. */
    long limit = -1;
    const char *ls = p->get(p->ctx, "limit");
    if (ls && *ls) {
        char *end;
        errno = 0;
        limit = strtol(ls, &end, 10);
        if (*end || errno || end == ls || isspace((unsigned char)ls[0]))
            return fail(out, 400, E_BAD_DATA, "limit must be a number");
    }
    const char *metric = p->get(p->ctx, "metric");
    struct meta_list l = {0};
    int rc = walk ? walk(walk_ctx, metric && *metric ? metric : NULL, meta_add, &l) : 0;
    if (rc || l.oom) {
        for (size_t i = 0; i < l.n; i++) {
            free(l.e[i].family);
            free(l.e[i].help);
            free(l.e[i].unit);
        }
        free(l.e);
        return fail_oom(out);
    }
    if (l.n) qsort(l.e, l.n, sizeof(*l.e), meta_cmp);
    /* Prometheus's model.MetricType names. */
    static const char *const types[] = {"unknown",        "counter", "gauge", "histogram",
                                        "gaugehistogram", "summary", "info",  "stateset"};
    success_head(out);
    sbuf_addc(out, '{');
    for (size_t i = 0; i < l.n; i++) {
        if (limit < 0 || (long)i < limit) {
            if (i) sbuf_addc(out, ',');
            jsonw_str(out, l.e[i].family);
            sbuf_adds(out, ":[{\"type\":");
            int t = l.e[i].type;
            jsonw_str(out,
                      t >= 0 && t < (int)(sizeof(types) / sizeof(types[0])) ? types[t] : "unknown");
            sbuf_adds(out, ",\"help\":");
            jsonw_str(out, l.e[i].help);
            sbuf_adds(out, ",\"unit\":");
            jsonw_str(out, l.e[i].unit);
            sbuf_adds(out, "}]");
        }
        free(l.e[i].family);
        free(l.e[i].help);
        free(l.e[i].unit);
    }
    free(l.e);
    sbuf_adds(out, "}}");
    return finish(out);
}

/* Adapts rwrecv_metadata (typed enum) to query_meta_walk_fn (int type). */
struct meta_adapt {
    int (*fn)(void *arg, const char *family, int type, const char *help, const char *unit);
    void *arg;
};

static int meta_adapt_fn(void *arg, const char *family, enum rw_metric_type type, const char *help,
                         const char *unit) {
    struct meta_adapt *m = arg;
    return m->fn(m->arg, family, (int)type, help, unit);
}

static int rw_walk(void *ctx, const char *family,
                   int (*fn)(void *arg, const char *family, int type, const char *help,
                             const char *unit),
                   void *arg) {
    struct meta_adapt m = {fn, arg};
    return rwrecv_metadata(ctx, family, meta_adapt_fn, &m);
}

static void h_metadata(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct agent *a = arg;
    /* Metadata arrives with remote-write requests (MetricMetadata); the push API keeps its
     * HELP/TYPE lines for /metrics only and offers no accessor yet, so pushed families are
     * not listed here. */
    struct query_params p = {req_get, req_each, (void *)req, agent_now_ms()};
    resp->status = query_metadata(&p, rw_walk, a->rwrecv, &resp->body);
    resp->content_type = "application/json";
    resp->api_compress = true;
    http_cors(req, resp);
}

static void h_buildinfo(void *arg, const struct http_req *req, struct http_resp *resp) {
    (void)arg;
    struct sbuf *b = &resp->body;
    sbuf_adds(b, "{\"status\":\"success\",\"data\":{\"version\":");
    jsonw_str(b, version_string());
    sbuf_adds(b, ",\"revision\":");
    jsonw_str(b, version_revision());
    sbuf_adds(b, ",\"branch\":");
    jsonw_str(b, version_branch());
    sbuf_adds(b, ",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}}");
    resp->content_type = "application/json";
    resp->api_compress = true;
    http_cors(req, resp);
}

/* Prometheus answers OPTIONS on every /api/v1 path with 204 (CORS preflight). */
static void h_options(void *arg, const struct http_req *req, struct http_resp *resp) {
    (void)arg;
    resp->status = 204;
    resp->content_type = "";
    resp->api_compress = true;
    http_cors(req, resp);
}

static int query_start(struct agent *a, struct perr *err) {
    struct query *q = calloc(1, sizeof(*q));
    if (!q) return perr_set(err, 0, 0, "out of memory"), -ENOMEM;
    q->a = a;
    a->query = q;
    /* A query's working set (the evaluator's arena, result and JSON) is a few MB that glibc
     * would hand back to the kernel at every free and fault in again on the next query,
     * which cost more than the evaluation itself. Keep some of it per arena (process-wide
     * setting; it also fixes the mmap threshold, so set that too). */
    mallopt(M_TRIM_THRESHOLD, (int)DEF_QUERY_MALLOC_TRIM_BYTES);
    mallopt(M_MMAP_THRESHOLD, (int)DEF_QUERY_MALLOC_MMAP_BYTES);
    /* Prometheus's router answers HEAD on none of these (405). */
    const unsigned gp = HTTP_GET | HTTP_NO_HEAD | HTTP_POST, g = HTTP_GET | HTTP_NO_HEAD;
    const struct http_route routes[] = {
        {"/api/v1/query", false, gp, "/api/v1/query", h_query, a, 0},
        {"/api/v1/query_range", false, gp, "/api/v1/query_range", h_query_range, a, 0},
        {"/api/v1/series", false, gp | HTTP_DELETE, "/api/v1/series", h_series, a, 0},
        {"/api/v1/labels", false, gp, "/api/v1/labels", h_labels, a, 0},
        {"/api/v1/query_exemplars", false, gp, "/api/v1/query_exemplars", h_exemplars, a, 0},
        {"/api/v1/label/", true, g, "/api/v1/label/:name/values", h_label_values, a, 0},
        {"/api/v1/metadata", false, g, "/api/v1/metadata", h_metadata, a, 0},
        {"/api/v1/status/buildinfo", false, g, "/api/v1/status/buildinfo", h_buildinfo, a, 0},
        {"/api/v1/", true, HTTP_OPTIONS, "/api/v1/*path", h_options, a, 0},
    };
    /* Evaluations and series walks can take long: big ones run on worker threads so that the
     * HTTP threads keep serving pushes and remote writes meanwhile. */
    http_offload_fn *const offload[] = {offload_instant, offload_range, NULL};
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (i < 3 ? http_route_offload(a->http, &routes[i], offload[i])
                  : http_route(a->http, &routes[i]))
            return perr_set(err, 0, 0, "too many HTTP routes"), -E2BIG;
    return 0;
}

static void query_stop(struct agent *a) {
    free(a->query);
    a->query = NULL;
}

const struct agent_module mod_query = {
    .name = "query",
    .start = query_start,
    .stop = query_stop,
};
