/* SPDX-License-Identifier: Apache-2.0 */
/* federate: GET /federate?match[]=..., the latest stored sample of each matching series. */
#include "federate.h"

#include "defaults.h"
#include "http.h"
#include "sbuf.h"
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- selector parser (replace with promql_parse when it lands) ------------------------- */

struct lex {
    const char *s, *p;
    struct perr *err;
};

static void skip_ws(struct lex *x) {
    while (*x->p == ' ' || *x->p == '\t' || *x->p == '\n' || *x->p == '\r')
        x->p++;
}

static int fail(struct lex *x, const char *msg) {
    return perr_set(x->err, 1, (int)(x->p - x->s) + 1, "parse error: %s", msg);
}

static bool name_start(char c, bool colon) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

static bool name_char(char c, bool colon) {
    return name_start(c, colon) || (c >= '0' && c <= '9');
}

static int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

static void put_utf8(struct sbuf *b, uint32_t cp) {
    if (cp < 0x80) {
        sbuf_addc(b, (char)cp);
    } else if (cp < 0x800) {
        sbuf_addc(b, (char)(0xc0 | (cp >> 6)));
        sbuf_addc(b, (char)(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
        sbuf_addc(b, (char)(0xe0 | (cp >> 12)));
        sbuf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sbuf_addc(b, (char)(0x80 | (cp & 0x3f)));
    } else {
        sbuf_addc(b, (char)(0xf0 | (cp >> 18)));
        sbuf_addc(b, (char)(0x80 | ((cp >> 12) & 0x3f)));
        sbuf_addc(b, (char)(0x80 | ((cp >> 6) & 0x3f)));
        sbuf_addc(b, (char)(0x80 | (cp & 0x3f)));
    }
}

/* A PromQL string literal: "..." or '...' with Go escapes, or `raw`. */
static int parse_string(struct lex *x, struct sbuf *out) {
    char q = *x->p;
    if (q != '"' && q != '\'' && q != '`') return fail(x, "expected a quoted label value");
    x->p++;
    for (;;) {
        char c = *x->p;
        if (!c || (c == '\n' && q != '`')) return fail(x, "unterminated quoted string");
        x->p++;
        if (c == q) return 0;
        if (c != '\\' || q == '`') {
            sbuf_addc(out, c);
            continue;
        }
        char e = *x->p++;
        switch (e) {
        case 'a':
            sbuf_addc(out, '\a');
            break;
        case 'b':
            sbuf_addc(out, '\b');
            break;
        case 'f':
            sbuf_addc(out, '\f');
            break;
        case 'n':
            sbuf_addc(out, '\n');
            break;
        case 'r':
            sbuf_addc(out, '\r');
            break;
        case 't':
            sbuf_addc(out, '\t');
            break;
        case 'v':
            sbuf_addc(out, '\v');
            break;
        case '\\':
            sbuf_addc(out, '\\');
            break;
        case '"':
        case '\'':
            if (e != q) return fail(x, "unknown escape sequence");
            sbuf_addc(out, e);
            break;
        case 'x': {
            int h1 = hexval(x->p[0]), h2 = h1 < 0 ? -1 : hexval(x->p[1]);
            if (h2 < 0) return fail(x, "invalid \\x escape");
            sbuf_addc(out, (char)(h1 * 16 + h2));
            x->p += 2;
            break;
        }
        case 'u':
        case 'U': {
            int nd = e == 'u' ? 4 : 8;
            uint32_t cp = 0;
            for (int i = 0; i < nd; i++) {
                int h = hexval(x->p[i]);
                if (h < 0) return fail(x, "invalid unicode escape");
                cp = cp * 16 + (uint32_t)h;
            }
            if (cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000))
                return fail(x, "invalid unicode code point");
            put_utf8(out, cp);
            x->p += nd;
            break;
        }
        default:
            return fail(x, "unknown escape sequence");
        }
    }
}

void federate_matchers_free(struct re_matcher *m, size_t n) {
    if (!m) return;
    for (size_t i = 0; i < n; i++)
        re_matcher_fini(&m[i]);
    free(m);
}

int federate_parse_selector(const char *src, struct re_matcher **out, size_t *nout,
                            struct perr *err) {
    struct lex x = {src, src, err};
    struct re_matcher *m = NULL;
    size_t n = 0, cap = 0;
    struct sbuf name, val;
    sbuf_init(&name);
    sbuf_init(&val);
    int rc = 0;
    bool has_name = false;
    *out = NULL;
    *nout = 0;
    skip_ws(&x);
    /* metric name */
    if (name_start(*x.p, true)) {
        const char *st = x.p;
        while (name_char(*x.p, true))
            x.p++;
        sbuf_reset(&name);
        sbuf_add(&name, st, (size_t)(x.p - st));
        m = calloc(4, sizeof(*m));
        if (!m) {
            rc = -ENOMEM;
            goto out;
        }
        cap = 4;
        rc = re_matcher_init(&m[n], RE_MATCH_EQ, "__name__", name.data, err);
        if (rc) goto out;
        n++;
        has_name = true;
        skip_ws(&x);
    }
    if (*x.p == '{') {
        x.p++;
        for (;;) {
            skip_ws(&x);
            if (*x.p == '}') {
                x.p++;
                break;
            }
            if (!name_start(*x.p, false)) {
                rc = fail(&x, "expected a label name");
                goto out;
            }
            const char *st = x.p;
            while (name_char(*x.p, false))
                x.p++;
            sbuf_reset(&name);
            sbuf_add(&name, st, (size_t)(x.p - st));
            skip_ws(&x);
            enum re_match_type t;
            if (x.p[0] == '=' && x.p[1] == '~') {
                t = RE_MATCH_RE;
                x.p += 2;
            } else if (x.p[0] == '!' && x.p[1] == '~') {
                t = RE_MATCH_NRE;
                x.p += 2;
            } else if (x.p[0] == '!' && x.p[1] == '=') {
                t = RE_MATCH_NEQ;
                x.p += 2;
            } else if (x.p[0] == '=') {
                t = RE_MATCH_EQ;
                x.p++;
            } else {
                rc = fail(&x, "expected a label matching operator");
                goto out;
            }
            skip_ws(&x);
            sbuf_reset(&val);
            sbuf_adds(&val, "");
            rc = parse_string(&x, &val);
            if (rc) goto out;
            if (name.oom || val.oom) {
                rc = -ENOMEM;
                goto out;
            }
            if (has_name && !strcmp(name.data, "__name__")) {
                rc = fail(&x, "metric name must not be set twice");
                goto out;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 4;
                struct re_matcher *nm = realloc(m, nc * sizeof(*nm));
                if (!nm) {
                    rc = -ENOMEM;
                    goto out;
                }
                memset(nm + cap, 0, (nc - cap) * sizeof(*nm));
                m = nm;
                cap = nc;
            }
            rc = re_matcher_init(&m[n], t, name.data, val.data, err);
            if (rc) goto out;
            n++;
            skip_ws(&x);
            if (*x.p == ',') {
                x.p++;
                continue;
            }
            if (*x.p == '}') {
                x.p++;
                break;
            }
            rc = fail(&x, "expected ',' or '}' in label matchers");
            goto out;
        }
    } else if (!has_name) {
        rc = fail(&x, "expected a series selector");
        goto out;
    }
    skip_ws(&x);
    if (*x.p) {
        rc = fail(&x, "unexpected characters after the series selector");
        goto out;
    }
    bool nonempty = false;
    for (size_t i = 0; i < n; i++)
        nonempty |= !re_matcher_matches_empty(&m[i]);
    if (!nonempty) {
        rc = fail(&x, "vector selector must contain at least one non-empty matcher");
        goto out;
    }
    *out = m;
    *nout = n;
    m = NULL;
out:
    federate_matchers_free(m, n);
    sbuf_fini(&name);
    sbuf_fini(&val);
    return rc;
}

/* ---- the handler ------------------------------------------------------------------------ */

struct fseries {
    size_t lab0, nlab; /* into labs */
    size_t name;       /* offset of the metric name in strs */
    int64_t t;
    double v;
    uint64_t hash;
};

struct fed {
    struct sbuf strs;
    struct {
        size_t name, value;
    } * labs;
    size_t nlabs, labcap;
    struct fseries *ser;
    size_t n, cap;
    size_t *tab; /* hash set of series indices + 1 */
    size_t tabcap;
    int rc;
};

static uint64_t labels_hash(const struct re_label *l, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        for (const char *c = l[i].name; *c; c++)
            h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL;
        for (const char *c = l[i].value; *c; c++)
            h = (h ^ (unsigned char)*c) * 0x100000001b3ULL;
        h = (h ^ 0xfe) * 0x100000001b3ULL;
    }
    return h;
}

static bool same(const struct fed *f, const struct fseries *s, const struct re_label *l, size_t n) {
    if (s->nlab != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(f->strs.data + f->labs[s->lab0 + i].name, l[i].name) ||
            strcmp(f->strs.data + f->labs[s->lab0 + i].value, l[i].value))
            return false;
    return true;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np) return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

static int rehash(struct fed *f) {
    size_t cap = f->tabcap ? f->tabcap * 2 : 256;
    size_t *t = calloc(cap, sizeof(*t));
    if (!t) return -ENOMEM;
    for (size_t i = 0; i < f->n; i++) {
        size_t j = f->ser[i].hash & (cap - 1);
        while (t[j])
            j = (j + 1) & (cap - 1);
        t[j] = i + 1;
    }
    free(f->tab);
    f->tab = t;
    f->tabcap = cap;
    return 0;
}

static size_t add_str(struct fed *f, const char *s) {
    size_t off = f->strs.len;
    sbuf_add(&f->strs, s, strlen(s) + 1);
    return off;
}

static int visit(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                 const double *vals, const struct re_hist *const *hists, size_t n) {
    struct fed *f = arg;
    if (n == 0) return 0;
    /* Native histograms cannot be written in the text format; Prometheus skips them. */
    if (hists && hists[n - 1]) return 0;
    double v = vals[n - 1];
    if (re_is_stale(v)) return 0;
    uint64_t h = labels_hash(labels, nlabels);
    if ((f->n + 1) * 2 > f->tabcap && rehash(f)) return f->rc = -ENOMEM;
    size_t j = h & (f->tabcap - 1);
    for (; f->tab[j]; j = (j + 1) & (f->tabcap - 1)) {
        const struct fseries *o = &f->ser[f->tab[j] - 1];
        if (o->hash == h && same(f, o, labels, nlabels))
            return 0; /* matched by an earlier match[] */
    }
    if (grow((void **)&f->ser, &f->cap, f->n + 1, sizeof(*f->ser)) ||
        grow((void **)&f->labs, &f->labcap, f->nlabs + nlabels, sizeof(*f->labs)))
        return f->rc = -ENOMEM;
    struct fseries *s = &f->ser[f->n];
    *s = (struct fseries){
        .lab0 = f->nlabs, .nlab = nlabels, .t = ts[n - 1], .v = v, .hash = h, .name = SIZE_MAX};
    for (size_t i = 0; i < nlabels; i++) {
        f->labs[f->nlabs].name = add_str(f, labels[i].name);
        f->labs[f->nlabs].value = add_str(f, labels[i].value);
        if (!strcmp(labels[i].name, "__name__")) s->name = f->labs[f->nlabs].value;
        f->nlabs++;
    }
    if (f->strs.oom) return f->rc = -ENOMEM;
    f->tab[j] = ++f->n;
    return 0;
}

static int ser_cmp(const void *a, const void *b, void *arg) {
    const struct fed *f = arg;
    const struct fseries *x = a, *y = b;
    int c = strcmp(f->strs.data + x->name, f->strs.data + y->name);
    if (c) return c;
    for (size_t i = 0; i < x->nlab && i < y->nlab; i++) {
        c = strcmp(f->strs.data + f->labs[x->lab0 + i].name,
                   f->strs.data + f->labs[y->lab0 + i].name);
        if (!c)
            c = strcmp(f->strs.data + f->labs[x->lab0 + i].value,
                       f->strs.data + f->labs[y->lab0 + i].value);
        if (c) return c;
    }
    return (x->nlab > y->nlab) - (x->nlab < y->nlab);
}

static void escape_value(struct sbuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\')
            sbuf_adds(b, "\\\\");
        else if (*s == '"')
            sbuf_adds(b, "\\\"");
        else if (*s == '\n')
            sbuf_adds(b, "\\n");
        else
            sbuf_addc(b, *s);
    }
}

struct match_ctx {
    struct agent *a;
    struct fed *f;
    int64_t mint, maxt;
    struct perr err;
    int rc;
};

static int one_match(void *arg, const char *value) {
    struct match_ctx *c = arg;
    struct re_matcher *m;
    size_t n;
    int rc = federate_parse_selector(value, &m, &n, &c->err);
    if (rc) return c->rc = rc;
    rc = store_select(c->a->store, m, n, c->mint, c->maxt, visit, c->f);
    federate_matchers_free(m, n);
    if (rc || c->f->rc) return c->rc = c->f->rc ? c->f->rc : rc;
    return 0;
}

static void handle_federate(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct agent *a = arg;
    struct fed f;
    memset(&f, 0, sizeof(f));
    sbuf_init(&f.strs);
    int64_t now = agent_now_ms();
    pthread_mutex_lock(&a->cfg_lock);
    int64_t lookback =
        a->cfg->query_lookback_delta_ms > 0 ? a->cfg->query_lookback_delta_ms : DEF_LOOKBACK_MS;
    /* External labels copied: the config may be swapped by a reload meanwhile. */
    size_t next = a->cfg->nexternal;
    struct re_label *ext = calloc(next + 1, sizeof(*ext));
    struct sbuf extbuf;
    sbuf_init(&extbuf);
    size_t *offs = calloc(2 * (next + 1), sizeof(*offs));
    size_t ne = 0;
    bool have_instance = false;
    for (size_t i = 0; ext && offs && i < next; i++, ne++) {
        offs[2 * i] = extbuf.len;
        sbuf_add(&extbuf, a->cfg->external_labels[i].name,
                 strlen(a->cfg->external_labels[i].name) + 1);
        offs[2 * i + 1] = extbuf.len;
        sbuf_add(&extbuf, a->cfg->external_labels[i].value,
                 strlen(a->cfg->external_labels[i].value) + 1);
        have_instance |= !strcmp(a->cfg->external_labels[i].name, "instance");
    }
    pthread_mutex_unlock(&a->cfg_lock);
    struct match_ctx mc = {.a = a, .f = &f, .mint = now - lookback, .maxt = now};
    if (!ext || !offs || extbuf.oom) {
        http_error(resp, 503, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ne; i++)
        ext[i] = (struct re_label){extbuf.data + offs[2 * i], extbuf.data + offs[2 * i + 1]};
    if (!have_instance) {
        /* Prometheus adds instance="" to the external labels of federation output. */
        struct re_label in = {"instance", ""};
        size_t k = ne;
        while (k > 0 && strcmp(ext[k - 1].name, "instance") > 0) {
            ext[k] = ext[k - 1];
            k--;
        }
        ext[k] = in;
        ne++;
    }
    http_args(req, "match[]", one_match, &mc);
    if (mc.rc == -EINVAL) {
        http_error(resp, 400, "%s", mc.err.msg);
        goto out;
    }
    if (mc.rc) {
        http_error(resp, mc.rc == -ENOMEM ? 503 : 500, "federation failed: %s", strerror(-mc.rc));
        goto out;
    }
    if (f.n > 1) qsort_r(f.ser, f.n, sizeof(*f.ser), ser_cmp, &f);
    struct sbuf *b = &resp->body;
    const char *last = NULL;
    for (size_t i = 0; i < f.n; i++) {
        const struct fseries *s = &f.ser[i];
        if (s->name == SIZE_MAX) continue;
        const char *name = f.strs.data + s->name;
        if (!*name) continue;
        if (!last || strcmp(last, name)) {
            sbuf_printf(b, "# TYPE %s untyped\n", name);
            last = name;
        }
        sbuf_adds(b, name);
        bool any = false;
        for (size_t j = 0; j < s->nlab; j++) {
            const char *ln = f.strs.data + f.labs[s->lab0 + j].name;
            const char *lv = f.strs.data + f.labs[s->lab0 + j].value;
            if (!strcmp(ln, "__name__") || !*lv) continue;
            sbuf_addc(b, any ? ',' : '{');
            any = true;
            sbuf_printf(b, "%s=\"", ln);
            escape_value(b, lv);
            sbuf_addc(b, '"');
        }
        for (size_t e = 0; e < ne; e++) {
            bool used = false;
            for (size_t j = 0; j < s->nlab && !used; j++)
                used = !strcmp(f.strs.data + f.labs[s->lab0 + j].name, ext[e].name) &&
                       *(f.strs.data + f.labs[s->lab0 + j].value);
            if (used) continue;
            sbuf_addc(b, any ? ',' : '{');
            any = true;
            sbuf_printf(b, "%s=\"", ext[e].name);
            escape_value(b, ext[e].value);
            sbuf_addc(b, '"');
        }
        if (any) sbuf_addc(b, '}');
        sbuf_addc(b, ' ');
        sbuf_add_double(b, s->v);
        sbuf_printf(b, " %lld\n", (long long)s->t);
    }
    resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
    resp->gzip_ok = true;
out:
    free(ext);
    free(offs);
    sbuf_fini(&extbuf);
    sbuf_fini(&f.strs);
    free(f.labs);
    free(f.ser);
    free(f.tab);
}

static int fed_start(struct agent *a, struct perr *err) {
    struct http_route rt = {"/federate", false, HTTP_GET, "/federate", handle_federate, a, 0};
    if (http_route(a->http, &rt)) return perr_set(err, 0, 0, "too many HTTP routes");
    return 0;
}

const struct agent_module mod_federate = {
    .name = "federate",
    .start = fed_start,
};
