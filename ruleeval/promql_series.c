/* SPDX-License-Identifier: Apache-2.0 */
/* Series notation of .test `load` lines and promtool `input_series` (labels and values). */
#include "promql_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int add_label(struct re_label **l, size_t *n, char *name, char *val) {
    struct re_label *nl = realloc(*l, (*n + 1) * sizeof(*nl));
    if (!nl) {
        free(name);
        free(val);
        return -ENOMEM;
    }
    *l = nl;
    nl[*n].name = name;
    nl[*n].value = val;
    (*n)++;
    return 0;
}

/* Reads a quoted string at *p (Go-style escapes for \" \\ \n \t); returns new. */
static char *read_quoted(const char **pp) {
    const char *p = *pp;
    char q = *p++;
    size_t cap = strlen(p) + 1;
    char *o = malloc(cap);
    size_t n = 0;
    if (!o) return NULL;
    while (*p && *p != q) {
        if (*p == '\\' && p[1] && q != '`') {
            p++;
            switch (*p) {
            case 'n':
                o[n++] = '\n';
                break;
            case 't':
                o[n++] = '\t';
                break;
            case 'r':
                o[n++] = '\r';
                break;
            default:
                o[n++] = *p;
            }
            p++;
            continue;
        }
        o[n++] = *p++;
    }
    if (*p != q) {
        free(o);
        return NULL;
    }
    o[n] = 0;
    *pp = p + 1;
    return o;
}

static int lcmp(const void *a, const void *b) {
    return strcmp(((const struct re_label *)a)->name, ((const struct re_label *)b)->name);
}

int promql_parse_series_desc(const char *text, struct re_label **labels, size_t *nlabels,
                             struct perr *err) {
    const char *p = text;
    struct re_label *l = NULL;
    size_t n = 0;
    while (isspace((unsigned char)*p))
        p++;
    const char *s = p;
    while (isalnum((unsigned char)*p) || *p == '_' || *p == ':')
        p++;
    if (p > s) {
        char *nm = strdup("__name__"), *v = strndup(s, (size_t)(p - s));
        if (!nm || !v || add_label(&l, &n, nm, v) < 0) goto oom;
    }
    bool braces = *p == '{';
    if (braces) {
        p++;
        for (;;) {
            while (isspace((unsigned char)*p))
                p++;
            if (*p == '}') {
                p++;
                break;
            }
            char *name;
            if (*p == '"') {
                name = read_quoted(&p);
            } else {
                s = p;
                while (isalnum((unsigned char)*p) || *p == '_')
                    p++;
                name = p > s ? strndup(s, (size_t)(p - s)) : NULL;
            }
            if (!name) {
                perr_set(err, 1, (int)(p - text) + 1, "parse error: expected label name");
                goto fail;
            }
            while (isspace((unsigned char)*p))
                p++;
            if (*p == ',' || *p == '}') {
                /* {"metric"} form */
                if (add_label(&l, &n, strdup("__name__"), name) < 0) goto oom;
            } else {
                if (*p != '=') {
                    free(name);
                    perr_set(err, 1, (int)(p - text) + 1, "parse error: expected \"=\"");
                    goto fail;
                }
                p++;
                while (isspace((unsigned char)*p))
                    p++;
                char *v = (*p == '"' || *p == '\'' || *p == '`') ? read_quoted(&p) : NULL;
                if (!v) {
                    free(name);
                    perr_set(err, 1, (int)(p - text) + 1, "parse error: expected label value");
                    goto fail;
                }
                if (add_label(&l, &n, name, v) < 0) goto oom;
            }
            while (isspace((unsigned char)*p))
                p++;
            if (*p == ',') p++;
        }
    }
    while (isspace((unsigned char)*p))
        p++;
    if (*p || (n == 0 && !braces)) {
        perr_set(err, 1, (int)(p - text) + 1, "parse error: bad series description");
        goto fail;
    }
    if (n > 1) qsort(l, n, sizeof(*l), lcmp);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(l[i].name, l[i - 1].name)) {
            perr_set(err, 1, 1, "parse error: duplicate label name \"%s\"", l[i].name);
            goto fail;
        }
    /* drop empty values */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (l[i].value[0]) {
            l[k++] = l[i];
        } else {
            free((char *)l[i].name);
            free((char *)l[i].value);
        }
    }
    *labels = l;
    *nlabels = k;
    return 0;
oom:
    re_labels_free(l, n);
    perr_set(err, 1, 1, "out of memory");
    return -ENOMEM;
fail:
    re_labels_free(l, n);
    return -EINVAL;
}

/* ---- values ---------------------------------------------------------------------------- */

static bool parse_float(const char **pp, double *v) {
    const char *p = *pp;
    int sign = 1;
    if (*p == '+' || *p == '-') {
        sign = *p == '-' ? -1 : 1;
        p++;
    }
    if (!strncasecmp(p, "inf", 3) && !isalnum((unsigned char)p[3])) {
        *v = sign * INFINITY;
        *pp = p + 3;
        return true;
    }
    if (!strncasecmp(p, "nan", 3) && !isalnum((unsigned char)p[3])) {
        *v = NAN;
        *pp = p + 3;
        return true;
    }
    /* duration literal -> seconds */
    if (isdigit((unsigned char)*p)) {
        const char *q = p;
        while (isalnum((unsigned char)*q))
            q++;
        if (q > p && isalpha((unsigned char)q[-1]) && q[-1] != 'x' && q[-1] != 'e') {
            char tmp[64];
            size_t l = (size_t)(q - p) < 63 ? (size_t)(q - p) : 63;
            memcpy(tmp, p, l);
            tmp[l] = 0;
            int64_t ms;
            if (promql_parse_duration(tmp, &ms) == 0) {
                *v = sign * (double)ms / 1000.0;
                *pp = q;
                return true;
            }
        }
    }
    const char *q = p;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.')
        for (q++; isdigit((unsigned char)*q); q++)
            ;
    if (q == p || (q == p + 1 && *p == '.')) return false;
    if ((*q == 'e' || *q == 'E') &&
        (isdigit((unsigned char)q[1]) ||
         ((q[1] == '+' || q[1] == '-') && isdigit((unsigned char)q[2])))) {
        q += 2;
        while (isdigit((unsigned char)*q))
            q++;
    }
    char tmp[128];
    size_t l = (size_t)(q - p) < 127 ? (size_t)(q - p) : 127;
    memcpy(tmp, p, l);
    tmp[l] = 0;
    *v = sign * strtod(tmp, NULL);
    *pp = q;
    return true;
}

static bool parse_uint(const char **pp, uint64_t *n) {
    const char *p = *pp;
    if (!isdigit((unsigned char)*p)) return false;
    *n = strtoull(p, (char **)pp, 10);
    return true;
}

static int parse_bucket_list(const char **pp, double **out, size_t *n) {
    const char *p = *pp;
    if (*p != '[') return -EINVAL;
    p++;
    *out = NULL;
    *n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == ']') {
            p++;
            break;
        }
        double v;
        if (!parse_float(&p, &v)) {
            free(*out);
            return -EINVAL;
        }
        double *nv = realloc(*out, (*n + 1) * sizeof(double));
        if (!nv) {
            free(*out);
            return -ENOMEM;
        }
        *out = nv;
        nv[(*n)++] = v;
    }
    *pp = p;
    return 0;
}

/* Parses "{{...}}" at *pp into a new pq_hist. */
static struct pq_hist *parse_hist(const char **pp, int *rc) {
    const char *p = *pp + 2;
    struct pq_hist *h = calloc(1, sizeof(*h));
    double *pb = NULL, *nb = NULL;
    size_t npb = 0, nnb = 0;
    int64_t poff = 0, noff = 0;
    *rc = -EINVAL;
    if (!h) {
        *rc = -ENOMEM;
        return NULL;
    }
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (p[0] == '}' && p[1] == '}') {
            p += 2;
            break;
        }
        const char *k = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        size_t kl = (size_t)(p - k);
        if (*p != ':') goto fail;
        p++;
#define KEY(s) (kl == strlen(s) && !strncmp(k, s, kl))
        double v;
        if (KEY("schema") || KEY("offset") || KEY("n_offset")) {
            double d;
            if (!parse_float(&p, &d)) goto fail;
            if (KEY("schema"))
                h->schema = (int32_t)d;
            else if (KEY("offset"))
                poff = (int64_t)d;
            else
                noff = (int64_t)d;
        } else if (KEY("sum") || KEY("count") || KEY("z_bucket") || KEY("z_bucket_w")) {
            if (!parse_float(&p, &v)) goto fail;
            if (KEY("sum"))
                h->sum = v;
            else if (KEY("count"))
                h->count = v;
            else if (KEY("z_bucket"))
                h->zc = v;
            else
                h->zt = v;
        } else if (KEY("buckets")) {
            free(pb);
            pb = NULL;
            if (parse_bucket_list(&p, &pb, &npb) < 0) goto fail;
        } else if (KEY("n_buckets")) {
            free(nb);
            nb = NULL;
            if (parse_bucket_list(&p, &nb, &nnb) < 0) goto fail;
        } else if (KEY("custom_values")) {
            free(h->cv);
            h->cv = NULL;
            if (parse_bucket_list(&p, &h->cv, &h->ncv) < 0) goto fail;
        } else if (KEY("counter_reset_hint")) {
            const char *w = p;
            while (isalpha((unsigned char)*p) || *p == '_')
                p++;
            size_t wl = (size_t)(p - w);
            if (wl == 7 && !strncmp(w, "unknown", 7))
                h->hint = RE_HINT_UNKNOWN;
            else if (wl == 5 && !strncmp(w, "reset", 5))
                h->hint = RE_HINT_RESET;
            else if (wl == 9 && !strncmp(w, "not_reset", 9))
                h->hint = RE_HINT_NOT_RESET;
            else if (wl == 5 && !strncmp(w, "gauge", 5))
                h->hint = RE_HINT_GAUGE;
            else
                goto fail;
        } else {
            goto fail;
        }
#undef KEY
    }
    h->pb = malloc((npb ? npb : 1) * sizeof(*h->pb));
    h->nb = malloc((nnb ? nnb : 1) * sizeof(*h->nb));
    if (!h->cv) h->cv = malloc(sizeof(double));
    if (!h->pb || !h->nb || !h->cv) {
        *rc = -ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < npb; i++) {
        h->pb[i].i = (int32_t)(poff + (int64_t)i);
        h->pb[i].c = pb[i];
    }
    h->npb = npb;
    for (size_t i = 0; i < nnb; i++) {
        h->nb[i].i = (int32_t)(noff + (int64_t)i);
        h->nb[i].c = nb[i];
    }
    h->nnb = nnb;
    free(pb);
    free(nb);
    *pp = p;
    *rc = 0;
    return h;
fail:
    free(pb);
    free(nb);
    pq_hist_free(h);
    return NULL;
}

struct emit_ctx {
    int (*fn)(void *arg, size_t idx, bool missing, double v, const struct re_hist *h);
    void *arg;
    size_t idx;
};

static int emit_hist(struct emit_ctx *c, const struct pq_hist *h) {
    struct re_hist *r = pq_hist_to_re(h);
    if (!r) return -ENOMEM;
    int rc = c->fn(c->arg, c->idx++, false, 0, r);
    free(r);
    return rc;
}

int promql_expand_values(const char *text,
                         int (*fn)(void *arg, size_t idx, bool missing, double v,
                                   const struct re_hist *h),
                         void *arg, struct perr *err) {
    struct emit_ctx c = {fn, arg, 0};
    const char *p = text;
    int rc;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p) return 0;
        int col = (int)(p - text) + 1;
        if (*p == '_') {
            p++;
            uint64_t n = 1;
            if (*p == 'x') {
                p++;
                if (!parse_uint(&p, &n)) return perr_set(err, 1, col, "bad repetition in \"_x\"");
            }
            for (uint64_t i = 0; i < n; i++)
                if ((rc = fn(arg, c.idx++, true, 0, NULL)) != 0) return rc;
        } else if (!strncmp(p, "stale", 5) && !isalnum((unsigned char)p[5])) {
            p += 5;
            if ((rc = fn(arg, c.idx++, false, re_stale_nan(), NULL)) != 0) return rc;
        } else if (p[0] == '{' && p[1] == '{') {
            struct pq_hist *h = parse_hist(&p, &rc);
            if (!h)
                return rc == -ENOMEM ? rc : perr_set(err, 1, col, "bad native histogram literal");
            if (*p == 'x' || ((*p == '+' || *p == '-') && p[1] == '{')) {
                struct pq_hist *d = NULL;
                double sign = 1;
                if (*p != 'x') {
                    sign = *p == '-' ? -1 : 1;
                    p++;
                    d = parse_hist(&p, &rc);
                    if (!d) {
                        pq_hist_free(h);
                        return rc == -ENOMEM
                                   ? rc
                                   : perr_set(err, 1, col, "bad native histogram literal");
                    }
                }
                uint64_t n;
                if (*p != 'x' || (p++, !parse_uint(&p, &n))) {
                    pq_hist_free(h);
                    pq_hist_free(d);
                    return perr_set(err, 1, col, "bad histogram repetition");
                }
                rc = emit_hist(&c, h);
                for (uint64_t i = 0; i < n && rc == 0; i++) {
                    if (d && (rc = pq_hist_add(h, d, sign)) != 0) break;
                    rc = emit_hist(&c, h);
                }
                pq_hist_free(d);
                pq_hist_free(h);
                if (rc)
                    return rc < 0 && rc != -ENOMEM ? perr_set(err, 1, col, "bad histogram series")
                                                   : rc;
            } else {
                rc = emit_hist(&c, h);
                pq_hist_free(h);
                if (rc) return rc;
            }
        } else {
            double a;
            if (!parse_float(&p, &a)) return perr_set(err, 1, col, "bad value \"%.20s\"", p);
            if (*p == 'x' || *p == '+' || *p == '-') {
                double b = 0;
                if (*p != 'x') {
                    double sign = *p == '-' ? -1 : 1;
                    p++;
                    if (!parse_float(&p, &b) || *p != 'x')
                        return perr_set(err, 1, col, "bad expanding series");
                    b *= sign;
                }
                p++;
                uint64_t n;
                if (!parse_uint(&p, &n)) return perr_set(err, 1, col, "bad expanding series");
                double v = a;
                if ((rc = fn(arg, c.idx++, false, v, NULL)) != 0) return rc;
                for (uint64_t i = 0; i < n; i++) {
                    v += b;
                    if ((rc = fn(arg, c.idx++, false, v, NULL)) != 0) return rc;
                }
            } else if (*p && *p != ' ' && *p != '\t') {
                return perr_set(err, 1, col, "bad value \"%.20s\"", p);
            } else if ((rc = fn(arg, c.idx++, false, a, NULL)) != 0) {
                return rc;
            }
        }
    }
}
