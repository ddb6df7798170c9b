/* SPDX-License-Identifier: Apache-2.0 */
/* textfile collector: *.prom files in --collector.textfile.directory (node_exporter textfile.go).
 */
#include <dirent.h>
#include <errno.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "collector.h"
#include "procfs.h"

#define TF_MAX_LABELS 32

/* ---- a small text-format 0.0.4 parser (prometheus/common expfmt TextParser semantics) ---- */

struct tf_point {
    double bound; /* le or quantile */
    double value;
};

struct tf_metric {
    struct re_label *labels; /* owned strings; le/quantile kept out */
    size_t nl;
    double value; /* counter, gauge, untyped */
    struct tf_point *pts;
    size_t npts;
    double sum, count;
};

struct tf_family {
    char *name, *help; /* help NULL when the file had none */
    enum mtype type;
    bool typed;
    struct tf_metric *m;
    size_t nm;
    const char *file; /* first file that defined it, for the default HELP */
};

struct tf_set {
    struct tf_family *f;
    size_t n;
};

static void metric_free(struct tf_metric *m) {
    for (size_t i = 0; i < m->nl; i++) {
        free((char *)m->labels[i].name);
        free((char *)m->labels[i].value);
    }
    free(m->labels);
    free(m->pts);
}

static void set_free(struct tf_set *s) {
    for (size_t i = 0; i < s->n; i++) {
        for (size_t j = 0; j < s->f[i].nm; j++)
            metric_free(&s->f[i].m[j]);
        free(s->f[i].m);
        free(s->f[i].name);
        free(s->f[i].help);
    }
    free(s->f);
    s->f = NULL;
    s->n = 0;
}

static struct tf_family *fam_find(struct tf_set *s, const char *name) {
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->f[i].name, name) == 0) return &s->f[i];
    return NULL;
}

static struct tf_family *fam_get(struct tf_set *s, const char *name) {
    struct tf_family *f = fam_find(s, name);
    if (f) return f;
    struct tf_family *p = realloc(s->f, (s->n + 1) * sizeof(*p));
    if (!p) return NULL;
    s->f = p;
    f = &s->f[s->n];
    memset(f, 0, sizeof(*f));
    f->name = strdup(name);
    f->type = MTYPE_UNTYPED;
    if (!f->name) return NULL;
    s->n++;
    return f;
}

static bool name_start(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}

static bool name_char(char c) {
    return name_start(c) || (c >= '0' && c <= '9');
}

static char *skip_ws(char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* Go's ParseFloat accepts Inf/NaN spelled in any case with an optional sign; strtod does too,
 * and also "infinity" and hex floats, which expfmt also accepts via ParseFloat. */
static int parse_value(const char *s, double *v) {
    return procfs_parse_double(s, v);
}

/* Unescapes a HELP docstring in place (\\ and \n only, as expfmt). */
static void unescape_help(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '\\' && (r[1] == '\\' || r[1] == 'n')) {
            *w++ = r[1] == 'n' ? '\n' : '\\';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
}

static bool suffix_is(const char *name, size_t nl, const char *sfx) {
    size_t sl = strlen(sfx);
    return nl > sl && strcmp(name + nl - sl, sfx) == 0;
}

/* Which family a sample named `name` belongs to: itself, or for _sum/_count/_bucket the
 * declared summary/histogram it extends (expfmt's setOrCreateCurrentMF). */
static struct tf_family *family_for(struct tf_set *s, const char *name, const char **sfx) {
    size_t nl = strlen(name);
    static const char *const sfxs[3] = {"_sum", "_count", "_bucket"};
    for (int i = 0; i < 3; i++) {
        if (!suffix_is(name, nl, sfxs[i])) continue;
        char base[256];
        size_t bl = nl - strlen(sfxs[i]);
        if (bl >= sizeof(base)) break;
        memcpy(base, name, bl);
        base[bl] = '\0';
        struct tf_family *f = fam_find(s, base);
        if (f && (f->type == MTYPE_HISTOGRAM || (f->type == MTYPE_SUMMARY && i < 2))) {
            *sfx = sfxs[i];
            return f;
        }
    }
    *sfx = "";
    return fam_get(s, name);
}

static bool same_labels(const struct tf_metric *m, const struct re_label *l, size_t n) {
    if (m->nl != n) return false;
    for (size_t i = 0; i < n; i++) {
        bool found = false;
        for (size_t j = 0; j < m->nl && !found; j++)
            found = strcmp(m->labels[j].name, l[i].name) == 0 &&
                    strcmp(m->labels[j].value, l[i].value) == 0;
        if (!found) return false;
    }
    return true;
}

static struct tf_metric *metric_new(struct tf_family *f, const struct re_label *l, size_t n) {
    struct tf_metric *p = realloc(f->m, (f->nm + 1) * sizeof(*p));
    if (!p) return NULL;
    f->m = p;
    struct tf_metric *m = &f->m[f->nm];
    memset(m, 0, sizeof(*m));
    m->labels = calloc(n ? n : 1, sizeof(*m->labels));
    if (!m->labels) return NULL;
    f->nm++;
    for (size_t i = 0; i < n; i++) {
        m->labels[i].name = strdup(l[i].name);
        m->labels[i].value = strdup(l[i].value);
        m->nl = i + 1;
        if (!m->labels[i].name || !m->labels[i].value) return NULL;
    }
    return m;
}

/* Parses one sample line (NUL-terminated, no newline). */
static int parse_sample(struct tf_set *s, char *p, const char **why) {
    char *name = p;
    while (name_char(*p))
        p++;
    char save = *p;
    *p = '\0';
    char namebuf[256];
    if (strlen(name) >= sizeof(namebuf)) return *why = "metric name too long", -EPROTO;
    strcpy(namebuf, name);
    *p = save;
    struct re_label l[TF_MAX_LABELS];
    size_t nl = 0;
    const char *bound = NULL;
    char *q = skip_ws(p);
    if (*q == '{') {
        p = skip_ws(q + 1);
        while (*p != '}') {
            if (!name_start(*p) || *p == ':') return *why = "invalid label name", -EPROTO;
            char *ln = p;
            while (name_char(*p) && *p != ':')
                p++;
            char *lend = p;
            p = skip_ws(p);
            if (*p != '=') return *why = "expected '=' after label name", -EPROTO;
            p = skip_ws(p + 1);
            if (*p != '"') return *why = "expected '\"' to start label value", -EPROTO;
            *lend = '\0';
            char *val = ++p, *w = p;
            for (;; p++) {
                if (!*p) return *why = "unterminated label value", -EPROTO;
                if (*p == '"') break;
                if (*p == '\\') {
                    p++;
                    if (*p == 'n')
                        *w++ = '\n';
                    else if (*p == '\\' || *p == '"')
                        *w++ = *p;
                    else
                        return *why = "invalid escape sequence", -EPROTO;
                } else {
                    *w++ = *p;
                }
            }
            *w = '\0';
            p = skip_ws(p + 1);
            if (*p == ',')
                p = skip_ws(p + 1);
            else if (*p != '}')
                return *why = "expected ',' or '}' after label value", -EPROTO;
            for (size_t i = 0; i < nl; i++)
                if (strcmp(l[i].name, ln) == 0) return *why = "duplicate label name", -EPROTO;
            if (strcmp(ln, "__name__") == 0)
                return *why = "label name __name__ is reserved", -EPROTO;
            if (nl == TF_MAX_LABELS) return *why = "too many labels", -EPROTO;
            l[nl].name = ln;
            l[nl].value = val;
            nl++;
        }
        p++;
    }
    if (*p != ' ' && *p != '\t') return *why = "expected value after metric", -EPROTO;
    p = skip_ws(p);
    char *f[3];
    size_t nf = procfs_fields(p, f, 3);
    if (nf == 0) return *why = "expected value after metric", -EPROTO;
    if (nf > 2) return *why = "trailing garbage after sample", -EPROTO;
    double v;
    if (parse_value(f[0], &v)) return *why = "invalid sample value", -EPROTO;
    if (nf == 2) return *why = "contains unsupported client-side timestamps", -EDOM;
    const char *sfx;
    struct tf_family *fam = family_for(s, namebuf, &sfx);
    if (!fam) return -ENOMEM;
    /* pull le/quantile out of the label set */
    const char *split = fam->type == MTYPE_HISTOGRAM && strcmp(sfx, "_bucket") == 0 ? "le"
                        : fam->type == MTYPE_SUMMARY && !*sfx                       ? "quantile"
                                                                                    : NULL;
    if (split) {
        for (size_t i = 0; i < nl; i++) {
            if (strcmp(l[i].name, split) == 0) {
                bound = l[i].value;
                l[i] = l[--nl];
                break;
            }
        }
        if (!bound)
            return *why = split[0] == 'l' ? "bucket without le label" : "summary without quantile",
                   -EPROTO;
    }
    struct tf_metric *m = NULL;
    for (size_t i = 0; i < fam->nm && !m; i++)
        if (same_labels(&fam->m[i], l, nl)) m = &fam->m[i];
    bool simple = fam->type != MTYPE_HISTOGRAM && fam->type != MTYPE_SUMMARY;
    if (m && simple) return *why = "duplicate sample", -EPROTO;
    if (!m && !(m = metric_new(fam, l, nl))) return -ENOMEM;
    if (simple) {
        m->value = v;
    } else if (bound) {
        double b;
        if (parse_value(bound, &b)) return *why = "invalid le/quantile value", -EPROTO;
        struct tf_point *pp = realloc(m->pts, (m->npts + 1) * sizeof(*pp));
        if (!pp) return -ENOMEM;
        m->pts = pp;
        m->pts[m->npts++] = (struct tf_point){b, v};
    } else if (strcmp(sfx, "_sum") == 0) {
        m->sum = v;
    } else if (strcmp(sfx, "_count") == 0) {
        m->count = v;
    }
    return 0;
}

static int parse_comment(struct tf_set *s, char *p, const char *file, const char **why) {
    p = skip_ws(p + 1);
    bool help = strncmp(p, "HELP", 4) == 0 && (p[4] == ' ' || p[4] == '\t');
    bool type = strncmp(p, "TYPE", 4) == 0 && (p[4] == ' ' || p[4] == '\t');
    if (!help && !type) return 0; /* plain comment */
    p = skip_ws(p + 4);
    char *name = p;
    if (!name_start(*p)) return *why = "invalid metric name in comment", -EPROTO;
    while (name_char(*p))
        p++;
    char save = *p;
    *p = '\0';
    struct tf_family *f = fam_get(s, name);
    if (!f) return -ENOMEM;
    *p = save;
    p = skip_ws(p);
    if (help) {
        if (f->help) return *why = "second HELP line for metric", -EPROTO;
        unescape_help(p);
        if (!(f->help = strdup(p))) return -ENOMEM;
        return 0;
    }
    if (f->typed) return *why = "second TYPE line for metric", -EPROTO;
    if (f->nm) return *why = "TYPE line after samples", -EPROTO;
    static const struct {
        const char *s;
        enum mtype t;
    } types[] = {{"counter", MTYPE_COUNTER},
                 {"gauge", MTYPE_GAUGE},
                 {"untyped", MTYPE_UNTYPED},
                 {"histogram", MTYPE_HISTOGRAM},
                 {"summary", MTYPE_SUMMARY}};
    char *t[2];
    if (procfs_fields(p, t, 2) != 1) return *why = "invalid TYPE line", -EPROTO;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if (strcmp(t[0], types[i].s) == 0) {
            f->type = types[i].t;
            f->typed = true;
            (void)file;
            return 0;
        }
    }
    return *why = "unknown metric type", -EPROTO;
}

/* Parses a whole file into s (appending families). Returns 0, -ENOMEM, -EPROTO (why set)
 * or -EDOM for client-side timestamps. */
static int parse_file(struct tf_set *s, char *text, const char *file, const char **why,
                      int *lineno) {
    char *cur = text, *line;
    *lineno = 0;
    while ((line = procfs_next_line(&cur))) {
        ++*lineno;
        size_t ll = strlen(line);
        while (ll && (line[ll - 1] == '\r' || line[ll - 1] == ' ' || line[ll - 1] == '\t'))
            line[--ll] = '\0';
        char *p = skip_ws(line);
        if (!*p) continue;
        int rc = *p == '#'        ? parse_comment(s, p, file, why)
                 : name_start(*p) ? parse_sample(s, p, why)
                                  : (*why = "invalid metric name", -EPROTO);
        if (rc) return rc;
    }
    for (size_t i = 0; i < s->n; i++)
        if (!s->f[i].file) s->f[i].file = file;
    return 0;
}

/* ---- the collector ----------------------------------------------------------------------- */

struct tf_state {
    char *dir;
    /* File errors do not fail the collector (node_exporter reports them through
     * node_textfile_scrape_error), so they get their own back-off: ctx->complain is reset by
     * every successful collect. */
    struct complain complain;
};

static int textfile_init(struct col_ctx *ctx, struct perr *err) {
    const char *d = col_opt_str(ctx->opt, "collector.textfile.directory");
    struct tf_state *st = calloc(1, sizeof(*st));
    if (!st || !(st->dir = strdup(d ? d : ""))) {
        free(st);
        return -ENOMEM;
    }
    ctx->state = st;
    return 0;
}

static void textfile_fini(struct col_ctx *ctx) {
    struct tf_state *st = ctx->state;
    if (st) free(st->dir);
    free(st);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void fmt_double(double v, char *buf, size_t cap) {
    struct sbuf b;
    sbuf_init(&b);
    sbuf_add_double(&b, v);
    snprintf(buf, cap, "%s", b.data ? b.data : "NaN");
    sbuf_fini(&b);
}

static int cmp_point(const void *a, const void *b) {
    double x = ((const struct tf_point *)a)->bound, y = ((const struct tf_point *)b)->bound;
    return x < y ? -1 : x > y;
}

/* Emits one family the way convertMetricFamily rebuilds it: every metric gets the union of
 * the family's label names (missing ones as ""), summaries and histograms are rebuilt as
 * const summaries/histograms (quantiles/buckets deduplicated by bound, +Inf bucket added). */
static int emit_family(struct mset *out, struct tf_family *tf, const char *help) {
    struct mfam *f = mset_family(out, tf->name, help, tf->type);
    if (!f) return mset_has(out, tf->name) ? -EPROTO : -ENOMEM;
    const char *names[TF_MAX_LABELS];
    size_t nn = 0;
    for (size_t i = 0; i < tf->nm; i++)
        for (size_t j = 0; j < tf->m[i].nl; j++) {
            bool seen = false;
            for (size_t k = 0; k < nn && !seen; k++)
                seen = strcmp(names[k], tf->m[i].labels[j].name) == 0;
            if (!seen) {
                if (nn == TF_MAX_LABELS) return -EPROTO;
                names[nn++] = tf->m[i].labels[j].name;
            }
        }
    for (size_t i = 0; i < tf->nm; i++) {
        struct tf_metric *m = &tf->m[i];
        struct re_label l[TF_MAX_LABELS + 1];
        for (size_t k = 0; k < nn; k++) {
            l[k].name = names[k];
            l[k].value = "";
            for (size_t j = 0; j < m->nl; j++)
                if (strcmp(m->labels[j].name, names[k]) == 0) l[k].value = m->labels[j].value;
        }
        int rc;
        if (tf->type != MTYPE_HISTOGRAM && tf->type != MTYPE_SUMMARY) {
            if ((rc = mfam_add(f, "", l, nn, m->value))) return rc;
            continue;
        }
        bool hist = tf->type == MTYPE_HISTOGRAM;
        if (m->npts) qsort(m->pts, m->npts, sizeof(*m->pts), cmp_point);
        bool has_inf = false;
        char b[40];
        l[nn].name = hist ? "le" : "quantile";
        for (size_t p = 0; p < m->npts; p++) {
            if (p + 1 < m->npts && m->pts[p + 1].bound == m->pts[p].bound)
                continue; /* a map in Go: the last one of equal bounds wins */
            has_inf |= isinf(m->pts[p].bound) && m->pts[p].bound > 0;
            fmt_double(m->pts[p].bound, b, sizeof(b));
            l[nn].value = b;
            if ((rc = mfam_add(f, hist ? "_bucket" : "", l, nn + 1, m->pts[p].value))) return rc;
        }
        if (hist && !has_inf) {
            l[nn].value = "+Inf";
            if ((rc = mfam_add(f, "_bucket", l, nn + 1, m->count))) return rc;
        }
        if ((rc = mfam_add(f, "_sum", l, nn, m->sum)) ||
            (rc = mfam_add(f, "_count", l, nn, m->count)))
            return rc;
    }
    return 0;
}

static int textfile_collect(struct col_ctx *ctx, struct mset *out) {
    struct tf_state *st = ctx->state;
    bool errored = false;
    int rc = 0;
    struct tf_set all = {0};
    /* (path, mtime) of files read successfully, and which file each family came from */
    struct {
        char *path;
        double mtime;
    } *mt = NULL;
    size_t nmt = 0;
    char **files = NULL;
    size_t nfiles = 0;
    glob_t g;
    memset(&g, 0, sizeof(g));
    bool globbed = st->dir[0] && glob(st->dir, GLOB_NOCHECK, NULL, &g) == 0;
    size_t ndirs = globbed ? g.gl_pathc : (st->dir[0] ? 1 : 0);
    for (size_t di = 0; di < ndirs; di++) {
        const char *dir = globbed ? g.gl_pathv[di] : st->dir;
        DIR *d = opendir(dir);
        if (!d) {
            errored = true;
            COMPLAIN(&st->complain, "failed to read textfile collector directory %s: %s", dir,
                     strerror(errno));
            continue;
        }
        struct dirent *e;
        size_t first = nfiles;
        while ((e = readdir(d))) {
            size_t nl = strlen(e->d_name);
            if (nl < 5 || strcmp(e->d_name + nl - 5, ".prom") != 0) continue;
            char **p = realloc(files, (nfiles + 1) * sizeof(*p));
            if (!p) {
                rc = -ENOMEM;
                break;
            }
            files = p;
            size_t need = strlen(dir) + nl + 2;
            if (!(files[nfiles] = malloc(need))) {
                rc = -ENOMEM;
                break;
            }
            snprintf(files[nfiles++], need, "%s/%s", dir, e->d_name);
        }
        closedir(d);
        if (rc) goto done;
        if (nfiles > first) /* os.ReadDir order */
            qsort(files + first, nfiles - first, sizeof(*files), cmp_str);
    }
    for (size_t i = 0; i < nfiles; i++) {
        struct stat sb;
        int r = procfs_read(files[i], ctx->buf);
        if (r == 0 && stat(files[i], &sb) != 0) r = -errno;
        if (r == -ENOMEM) {
            rc = r;
            goto done;
        }
        if (r) {
            errored = true;
            COMPLAIN(&st->complain, "failed to collect textfile data from %s: %s", files[i],
                     strerror(-r));
            continue;
        }
        struct tf_set one = {0};
        const char *why = "";
        int line = 0;
        r = parse_file(&one, ctx->buf->data, files[i], &why, &line);
        if (r == -ENOMEM) {
            set_free(&one);
            rc = r;
            goto done;
        }
        if (r) {
            errored = true;
            COMPLAIN(&st->complain, "failed to parse textfile data from %s:%d: %s", files[i], line,
                     why);
            set_free(&one);
            continue;
        }
        /* move families into the scrape-wide list; same-named ones stay separate entries
         * and merge in the mset (the registry does this for node_exporter) */
        if (one.n) { /* an empty or comment-only file has none */
            struct tf_family *p = realloc(all.f, (all.n + one.n) * sizeof(*p));
            if (!p) {
                set_free(&one);
                rc = -ENOMEM;
                goto done;
            }
            all.f = p;
            memcpy(all.f + all.n, one.f, one.n * sizeof(*one.f));
            all.n += one.n;
        }
        free(one.f);
        void *q = realloc(mt, (nmt + 1) * sizeof(*mt));
        if (!q) {
            rc = -ENOMEM;
            goto done;
        }
        mt = q;
        mt[nmt].path = files[i];
        mt[nmt].mtime = (double)sb.st_mtim.tv_sec;
        nmt++;
    }
    for (size_t i = 0; i < all.n; i++) {
        struct tf_family *f = &all.f[i];
        if (!f->nm) continue;
        char help[1024];
        if (!f->help) {
            /* "Metric read from a.prom, b.prom": every file that had this family */
            size_t o = (size_t)snprintf(help, sizeof(help), "Metric read from ");
            bool firstf = true;
            for (size_t j = 0; j < all.n && o < sizeof(help); j++) {
                if (strcmp(all.f[j].name, f->name) != 0 || !all.f[j].nm) continue;
                o += (size_t)snprintf(help + o, sizeof(help) - o, "%s%s", firstf ? "" : ", ",
                                      all.f[j].file);
                firstf = false;
            }
        }
        int r = emit_family(out, f, f->help ? f->help : help);
        if (r == -ENOMEM) {
            rc = r;
            goto done;
        }
        if (r) {
            /* client_golang would fail the whole gather here; we drop the family instead */
            errored = true;
            COMPLAIN(&st->complain, "textfile metric %s from %s is inconsistent: %s", f->name,
                     f->file, strerror(-r));
        }
    }
    for (size_t i = 0; i < nmt; i++)
        if ((rc = col_add(out, "node_textfile_mtime_seconds",
                          "Unixtime mtime of textfiles successfully read.", MTYPE_GAUGE,
                          mt[i].mtime, 1, "file", mt[i].path)) &&
            rc != -EEXIST)
            goto done;
    if (!errored) COMPLAIN_OK(&st->complain, "textfile");
    rc = col_add(out, "node_textfile_scrape_error",
                 "1 if there was an error opening or reading a file, 0 otherwise", MTYPE_GAUGE,
                 errored ? 1 : 0, 0);
done:
    if (globbed) globfree(&g);
    for (size_t i = 0; i < nfiles; i++)
        free(files[i]);
    free(files);
    free(mt);
    set_free(&all);
    return rc == -EEXIST ? 0 : rc;
}

const struct collector col_textfile = {
    .name = "textfile",
    .default_on = true,
    .help = "Read prometheus metrics from a text file",
    .init = textfile_init,
    .collect = textfile_collect,
    .fini = textfile_fini,
};
