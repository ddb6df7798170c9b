/* SPDX-License-Identifier: Apache-2.0 */
/* push: the Pushgateway-compatible push API (groups, consistency checks, /metrics, persistence). */
#include "push.h"

#include "collector.h"
#include "defaults.h"
#include "expose.h"
#include "http.h"
#include "log.h"
#include "proto.h"
#include "sbuf.h"
#include "store.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <snappy-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

/*
 * Semantics follow Pushgateway 1.x (handler/push.go, storage/diskmetricstore.go):
 * - the grouping key comes from the URL; its labels override same-named body labels and
 *   every sample without `instance` gets instance="" (sanitizeLabels);
 * - PUT replaces the group's families, POST only the pushed ones, DELETE drops the group;
 * - a push is checked against a copy of everything exposed (client_golang's Gatherers):
 *   timestamps, types per family name across groups and against promlet's own families,
 *   duplicate series, histogram/summary suffix collisions, invalid label values; a failed
 *   check answers 400 and sets push_failure_time_seconds (creating the group if needed);
 *   a body that does not parse answers 400 and changes nothing.
 * A group's samples live in one refcounted blob per push, so a push costs a handful of
 * allocations whatever its size.
 */

#define PUSH_TIME "push_time_seconds"
#define PUSH_FAIL "push_failure_time_seconds"
#define PUSH_TIME_HELP "Last Unix time when changing this group in the Pushgateway succeeded."
#define PUSH_FAIL_HELP "Last Unix time when changing this group in the Pushgateway failed."
#define PERSIST_MAGIC "# promlet push persistence v1\n"
#define MAX_GROUPING_LABELS 64

/* ---- data ------------------------------------------------------------------------------ */

/* Strings and label arrays of one push, shared by the families it created. */
struct pblob {
    unsigned refs;
    char *strs;
    struct re_label *labs;
};

struct psample {
    const char *suffix;            /* "" or "_bucket", "_sum", "_count" ... */
    const struct re_label *labels; /* sorted; grouping labels and instance included */
    size_t nlabels;
    double v;
};

struct pfam {
    const char *name;
    const char *help; /* NULL: no HELP line was pushed */
    enum expfmt_type type;
    int64_t ts_ns; /* time of the push that set it */
    struct psample *s;
    size_t n;
    struct pblob *blob;
};

struct pgroup {
    struct re_label *key; /* sorted by name, job included; strings in keybuf */
    size_t nkey;
    char *keybuf;
    size_t keylen;
    uint64_t hash;
    struct pfam **fams;
    size_t nfams;
    double push_time, fail_time; /* unix seconds, 0 = never */
    int64_t push_ns, fail_ns;
    int64_t touched_ms; /* last push attempt, for the TTL */
};

struct push {
    pthread_mutex_t lock;
    struct agent *a;
    struct pgroup **groups;
    size_t ngroups, cap;
    struct mset *own; /* promlet's own families, for the type check (names and types) */
    int64_t ttl_ms, interval_ms;
    char *file;
    int64_t last_persist_ms;
    bool dirty;
    uint64_t pushes_total, failures_total, store_rejects_total;
    size_t max_body;
};

/* ---- small helpers --------------------------------------------------------------------- */

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static uint64_t fnv(uint64_t h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int label_cmp(const void *a, const void *b) {
    return strcmp(((const struct re_label *)a)->name, ((const struct re_label *)b)->name);
}

static enum mtype mtype_of(enum expfmt_type t) {
    switch (t) {
    case EXPFMT_COUNTER:
        return MTYPE_COUNTER;
    case EXPFMT_GAUGE:
        return MTYPE_GAUGE;
    case EXPFMT_SUMMARY:
        return MTYPE_SUMMARY;
    case EXPFMT_HISTOGRAM:
        return MTYPE_HISTOGRAM;
    default:
        return MTYPE_UNTYPED;
    }
}

/* The names client_golang prints for dto.MetricType (used in messages and the JSON API). */
static const char *type_upper(enum expfmt_type t) {
    static const char *const n[] = {"UNTYPED", "COUNTER", "GAUGE", "SUMMARY", "HISTOGRAM"};
    return (unsigned)t < 5 ? n[t] : "UNTYPED";
}

static void blob_unref(struct pblob *b) {
    if (b && --b->refs == 0) {
        free(b->strs);
        free(b->labs);
        free(b);
    }
}

static void fam_free(struct pfam *f) {
    if (!f) return;
    free(f->s);
    blob_unref(f->blob);
    free(f);
}

static void group_free(struct pgroup *g) {
    if (!g) return;
    for (size_t i = 0; i < g->nfams; i++)
        fam_free(g->fams[i]);
    free(g->fams);
    free(g->key);
    free(g->keybuf);
    free(g);
}

/* ---- grouping key from the URL -------------------------------------------------------- */

/* Go's base64.RawURLEncoding.DecodeString after trimming '=' (Pushgateway's decodeBase64):
 * URL-safe alphabet, padding optional. Writes at most len*3/4 bytes to out. */
static int b64url_decode(const char *s, size_t len, char *out, size_t *outlen) {
    while (len && s[len - 1] == '=')
        len--;
    if (len % 4 == 1) return -EINVAL;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i], v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -EINVAL;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (char)((acc >> bits) & 0xff);
        }
    }
    *outlen = o;
    return 0;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64url_encode(struct sbuf *b, const char *s, size_t n) {
    if (n == 0) {
        sbuf_addc(b, '=');
        return;
    }
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)(unsigned char)s[i] << 16;
        if (i + 1 < n) v |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n) v |= (unsigned char)s[i + 2];
        sbuf_addc(b, b64chars[(v >> 18) & 63]);
        sbuf_addc(b, b64chars[(v >> 12) & 63]);
        if (i + 1 < n) sbuf_addc(b, b64chars[(v >> 6) & 63]);
        if (i + 2 < n) sbuf_addc(b, b64chars[v & 63]);
    }
}

/* A parsed grouping key: labels point into buf. */
struct gkey {
    struct re_label l[MAX_GROUPING_LABELS];
    size_t n;
    char *buf;
};

static int key_set(struct gkey *k, const char *name, const char *value) {
    for (size_t i = 0; i < k->n; i++)
        if (!strcmp(k->l[i].name, name)) {
            k->l[i].value = value; /* the last one wins, as in a Go map */
            return 0;
        }
    if (k->n == MAX_GROUPING_LABELS) return -E2BIG;
    k->l[k->n].name = name;
    k->l[k->n].value = value;
    k->n++;
    return 0;
}

/* Parses the path after "/metrics/job" (already percent-decoded by MHD) as Pushgateway's
 * routes and splitLabels do. Fills k (k->buf owned; free it) or err with the reason. */
static int parse_key(const char *sub, struct gkey *k, char *err, size_t errlen) {
    memset(k, 0, sizeof(*k));
    bool job_b64 = false;
    if (!strncmp(sub, "@base64", 7)) {
        job_b64 = true;
        sub += 7;
    }
    if (*sub != '/' && *sub != '\0') {
        snprintf(err, errlen, "not found");
        return -ENOENT;
    }
    size_t len = strlen(sub);
    k->buf = malloc(len + 2);
    if (!k->buf) return -ENOMEM;
    /* Components are split in place; decoded base64 is never longer than its text. */
    memcpy(k->buf, sub, len + 1);
    char *comp[2 * MAX_GROUPING_LABELS + 2];
    size_t nc = 0;
    char *p = k->buf;
    if (*p == '/') p++;
    const char *job = p;
    char *slash = strchr(p, '/');
    if (slash) {
        *slash = '\0';
        /* Go's strings.Split(labels[1:], "/") where labels is "/rest"; "/" alone is none. */
        for (char *q = slash + 1; *(slash + 1);) {
            if (nc == sizeof(comp) / sizeof(comp[0])) {
                snprintf(err, errlen, "too many grouping labels");
                return -E2BIG;
            }
            comp[nc++] = q;
            char *e = strchr(q, '/');
            if (!e) break;
            *e = '\0';
            q = e + 1;
        }
    }
    if (nc % 2) {
        snprintf(err, errlen, "odd number of components in label string \"/%s\"", sub + 1);
        return -EINVAL;
    }
    char *jobv = (char *)job;
    if (job_b64) {
        size_t n;
        if (b64url_decode(job, strlen(job), jobv, &n)) {
            snprintf(err, errlen, "invalid base64 encoding in job name \"%s\"", job);
            return -EINVAL;
        }
        jobv[n] = '\0';
    }
    for (size_t i = 0; i < nc; i += 2) {
        char *name = comp[i], *value = comp[i + 1];
        size_t nl = strlen(name);
        bool b64 = nl > 7 && !strcmp(name + nl - 7, "@base64");
        if (b64) name[nl -= 7] = '\0';
        if (!re_valid_label_name(name, nl) || !strncmp(name, "__", 2)) {
            snprintf(err, errlen, "improper label name \"%s\"", name);
            return -EINVAL;
        }
        if (b64) {
            size_t n;
            if (b64url_decode(value, strlen(value), value, &n)) {
                snprintf(err, errlen, "invalid base64 encoding for label %s=\"%s\"", name, value);
                return -EINVAL;
            }
            value[n] = '\0';
        }
        if (key_set(k, name, value)) {
            snprintf(err, errlen, "too many grouping labels");
            return -E2BIG;
        }
    }
    if (!*jobv) {
        snprintf(err, errlen, "job name is required");
        return -EINVAL;
    }
    if (key_set(k, "job", jobv)) {
        snprintf(err, errlen, "too many grouping labels");
        return -E2BIG;
    }
    qsort(k->l, k->n, sizeof(k->l[0]), label_cmp);
    return 0;
}

static uint64_t key_hash(const struct re_label *l, size_t n) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) {
        h = fnv(h, l[i].name, strlen(l[i].name) + 1);
        h = fnv(h, l[i].value, strlen(l[i].value) + 1);
    }
    return h;
}

static bool key_eq(const struct pgroup *g, const struct re_label *l, size_t n) {
    if (g->nkey != n) return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(g->key[i].name, l[i].name) || strcmp(g->key[i].value, l[i].value)) return false;
    return true;
}

static ssize_t group_find(struct push *p, const struct re_label *l, size_t n, uint64_t h) {
    for (size_t i = 0; i < p->ngroups; i++)
        if (p->groups[i]->hash == h && key_eq(p->groups[i], l, n)) return (ssize_t)i;
    return -1;
}

/* Creates an empty group for key l (borrowed, copied) and adds it. NULL on OOM. */
static struct pgroup *group_add(struct push *p, const struct re_label *l, size_t n, uint64_t h) {
    if (p->ngroups == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        struct pgroup **ng = realloc(p->groups, cap * sizeof(*ng));
        if (!ng) return NULL;
        p->groups = ng;
        p->cap = cap;
    }
    struct pgroup *g = calloc(1, sizeof(*g));
    if (!g) return NULL;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(l[i].name) + strlen(l[i].value) + 2;
    g->key = calloc(n, sizeof(*g->key));
    g->keybuf = malloc(len ? len : 1);
    if (!g->key || !g->keybuf) {
        group_free(g);
        return NULL;
    }
    char *q = g->keybuf;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        memcpy(q, l[i].name, a);
        g->key[i].name = q;
        q += a;
        memcpy(q, l[i].value, b);
        g->key[i].value = q;
        q += b;
    }
    g->nkey = n;
    g->keylen = len;
    g->hash = h;
    p->groups[p->ngroups++] = g;
    return g;
}

static void group_remove(struct push *p, size_t i) {
    group_free(p->groups[i]);
    p->groups[i] = p->groups[--p->ngroups];
}

/* ---- staging a parsed body ------------------------------------------------------------ */

struct slab {
    size_t name, value; /* offsets into strs */
};
struct ssamp {
    size_t fam, suffix, lab0, nlab;
    double v;
};
struct sfam {
    size_t name, help;
    bool has_help;
    enum expfmt_type type;
    size_t count;
};

struct stage {
    struct sbuf strs;
    struct slab *labs;
    size_t nlabs, labcap;
    struct ssamp *ss;
    size_t nss, sscap;
    struct sfam *fams;
    size_t nfams, famcap;
    const struct re_label *key;
    size_t nkey;
    size_t key_off[MAX_GROUPING_LABELS][2];
    size_t empty_off, instance_off;
    bool has_ts;
    int rc;
    char invalid[200]; /* first consistency problem found while decoding (protobuf) */
    bool pb;           /* decoding a protobuf push */
};

static size_t stage_str(struct stage *st, const char *s, size_t n) {
    size_t off = st->strs.len;
    sbuf_add(&st->strs, s, n);
    sbuf_addc(&st->strs, '\0');
    return off;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need)
        c *= 2;
    void *np = realloc(*p, c * elem);
    if (!np) return -ENOMEM;
    *p = np;
    *cap = c;
    return 0;
}

static void stage_init(struct stage *st, const struct re_label *key, size_t nkey) {
    memset(st, 0, sizeof(*st));
    sbuf_init(&st->strs);
    st->key = key;
    st->nkey = nkey;
    st->empty_off = stage_str(st, "", 0);
    st->instance_off = stage_str(st, "instance", 8);
    for (size_t i = 0; i < nkey; i++) {
        st->key_off[i][0] = stage_str(st, key[i].name, strlen(key[i].name));
        st->key_off[i][1] = stage_str(st, key[i].value, strlen(key[i].value));
    }
}

static void stage_fini(struct stage *st) {
    sbuf_fini(&st->strs);
    free(st->labs);
    free(st->ss);
    free(st->fams);
}

static ssize_t stage_family(struct stage *st, const char *name) {
    for (size_t i = st->nfams; i-- > 0;)
        if (!strcmp(st->strs.data + st->fams[i].name, name)) return (ssize_t)i;
    return -1;
}

static int on_family(void *arg, const char *name, const char *help, enum expfmt_type type) {
    struct stage *st = arg;
    ssize_t i = stage_family(st, name);
    if (i < 0) {
        if (grow((void **)&st->fams, &st->famcap, st->nfams + 1, sizeof(*st->fams)))
            return st->rc = -ENOMEM;
        i = (ssize_t)st->nfams++;
        st->fams[i] = (struct sfam){.name = stage_str(st, name, strlen(name))};
    }
    st->fams[i].type = type;
    /* expfmt's parser leaves a HELP line with nothing after the name unset (Go's
     * TextParser returns at the newline), so Pushgateway shows no HELP for it; an empty
     * help in a protobuf push is kept (on_family is then called with ""). */
    if (help && (*help || st->pb)) {
        st->fams[i].has_help = true;
        st->fams[i].help = stage_str(st, help, strlen(help));
    }
    return st->strs.oom ? (st->rc = -ENOMEM) : 0;
}

static const char *stage_s(const struct stage *st, size_t off) {
    return st->strs.data + off;
}

static int slab_cmp(const void *a, const void *b, void *arg) {
    const struct stage *st = arg;
    return strcmp(stage_s(st, ((const struct slab *)a)->name),
                  stage_s(st, ((const struct slab *)b)->name));
}

static int on_sample(void *arg, const char *family, const char *sample_name,
                     const struct proto_label *labels, size_t n, double v, bool has_ts,
                     int64_t ts_ms) {
    (void)ts_ms;
    struct stage *st = arg;
    if (has_ts) st->has_ts = true;
    ssize_t fi = stage_family(st, family);
    if (fi < 0) {
        if (on_family(st, family, NULL, EXPFMT_UNTYPED)) return st->rc;
        fi = (ssize_t)st->nfams - 1;
    }
    struct sfam *f = &st->fams[fi];
    if (grow((void **)&st->labs, &st->labcap, st->nlabs + n + st->nkey + 1, sizeof(*st->labs)) ||
        grow((void **)&st->ss, &st->sscap, st->nss + 1, sizeof(*st->ss)))
        return st->rc = -ENOMEM;
    size_t lab0 = st->nlabs;
    bool has_instance = false;
    for (size_t i = 0; i < n; i++) {
        const struct proto_label *l = &labels[i];
        bool grouping = false;
        for (size_t k = 0; k < st->nkey && !grouping; k++)
            grouping = !strcmp(st->key[k].name, l->name);
        if (grouping) continue; /* the URL's value wins (sanitizeLabels) */
        if (!strcmp(l->name, "instance")) has_instance = true;
        struct slab *s = &st->labs[st->nlabs++];
        s->name = stage_str(st, l->name, l->name_len);
        bool bound = (f->type == EXPFMT_HISTOGRAM && !strcmp(l->name, "le")) ||
                     (f->type == EXPFMT_SUMMARY && !strcmp(l->name, "quantile"));
        if (bound) {
            /* client_golang re-renders bounds from the parsed float: le="1.0" shows as
             * le="1" on Pushgateway's /metrics. */
            s->value = st->strs.len;
            sbuf_add_double(&st->strs, strtod(l->value, NULL));
            sbuf_addc(&st->strs, '\0');
        } else {
            s->value = stage_str(st, l->value, l->value_len);
        }
    }
    for (size_t k = 0; k < st->nkey; k++) {
        struct slab *s = &st->labs[st->nlabs++];
        s->name = st->key_off[k][0];
        s->value = st->key_off[k][1];
        if (!strcmp(st->key[k].name, "instance")) has_instance = true;
    }
    if (!has_instance) st->labs[st->nlabs++] = (struct slab){st->instance_off, st->empty_off};
    size_t nlab = st->nlabs - lab0;
    if (st->strs.oom) return st->rc = -ENOMEM;
    qsort_r(st->labs + lab0, nlab, sizeof(struct slab), slab_cmp, st);
    size_t fl = strlen(family);
    st->ss[st->nss++] =
        (struct ssamp){.fam = (size_t)fi,
                       .suffix = stage_str(st, sample_name + fl, strlen(sample_name) - fl),
                       .lab0 = lab0,
                       .nlab = nlab,
                       .v = v};
    f->count++;
    return st->strs.oom ? (st->rc = -ENOMEM) : 0;
}

/* ---- histogram/summary completion ------------------------------------------------------ */

/* Hash of a staged sample's labels without the bound label (le/quantile). */
static uint64_t set_hash(const struct stage *st, const struct ssamp *x, const char *bound) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < x->nlab; i++) {
        const char *n = stage_s(st, st->labs[x->lab0 + i].name);
        if (!strcmp(n, bound)) continue;
        const char *v = stage_s(st, st->labs[x->lab0 + i].value);
        h = fnv(h, n, strlen(n) + 1);
        h = fnv(h, v, strlen(v) + 1);
    }
    return h;
}

static bool same_set(const struct stage *st, const struct ssamp *a, const struct ssamp *b,
                     const char *bound) {
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a->nlab && !strcmp(stage_s(st, st->labs[a->lab0 + i].name), bound))
            i++;
        while (j < b->nlab && !strcmp(stage_s(st, st->labs[b->lab0 + j].name), bound))
            j++;
        if (i == a->nlab || j == b->nlab) return i == a->nlab && j == b->nlab;
        if (strcmp(stage_s(st, st->labs[a->lab0 + i].name),
                   stage_s(st, st->labs[b->lab0 + j].name)) ||
            strcmp(stage_s(st, st->labs[a->lab0 + i].value),
                   stage_s(st, st->labs[b->lab0 + j].value)))
            return false;
        i++;
        j++;
    }
}

/* Adds a sample to family fi with the labels of sample `like` minus the bound, plus
 * bound=bval when bval is given. */
static int stage_add_like(struct stage *st, size_t like, size_t fi, const char *suffix,
                          const char *bound, const char *bval, double v) {
    if (grow((void **)&st->labs, &st->labcap, st->nlabs + st->ss[like].nlab + 1,
             sizeof(*st->labs)) ||
        grow((void **)&st->ss, &st->sscap, st->nss + 1, sizeof(*st->ss)))
        return -ENOMEM;
    size_t lab0 = st->nlabs;
    const struct ssamp *l = &st->ss[like];
    for (size_t i = 0; i < l->nlab; i++)
        if (strcmp(stage_s(st, st->labs[l->lab0 + i].name), bound))
            st->labs[st->nlabs++] = st->labs[l->lab0 + i];
    if (bval) {
        size_t n = stage_str(st, bound, strlen(bound));
        st->labs[st->nlabs++] = (struct slab){n, stage_str(st, bval, strlen(bval))};
    }
    size_t sfx = stage_str(st, suffix, strlen(suffix));
    if (st->strs.oom) return -ENOMEM;
    qsort_r(st->labs + lab0, st->nlabs - lab0, sizeof(struct slab), slab_cmp, st);
    st->ss[st->nss++] =
        (struct ssamp){.fam = fi, .suffix = sfx, .lab0 = lab0, .nlab = st->nlabs - lab0, .v = v};
    st->fams[fi].count++;
    return 0;
}

/* client_golang's text writer always writes _sum and _count of a histogram or summary and a
 * le="+Inf" bucket (with the count) when none was given; Pushgateway therefore shows them
 * (0 when the push lacked them). The same samples are added here so that /metrics, the JSON
 * API and the store agree with it. */
static int stage_complete(struct stage *st) {
    size_t n0 = st->nss;
    size_t cap = 16;
    while (cap < 2 * n0)
        cap *= 2;
    size_t *tab = NULL;
    int rc = 0;
    for (size_t fi = 0; fi < st->nfams && !rc; fi++) {
        enum expfmt_type t = st->fams[fi].type;
        if (t != EXPFMT_HISTOGRAM && t != EXPFMT_SUMMARY) continue;
        const char *bound = t == EXPFMT_HISTOGRAM ? "le" : "quantile";
        if (!tab && !(tab = malloc(cap * sizeof(*tab)))) return -ENOMEM;
        memset(tab, 0, cap * sizeof(*tab));
        /* tab holds the first sample (index + 1) of each label set of this family */
        for (size_t i = 0; i < n0; i++) {
            if (st->ss[i].fam != fi) continue;
            uint64_t h = set_hash(st, &st->ss[i], bound);
            size_t j = h & (cap - 1);
            while (tab[j] && !same_set(st, &st->ss[tab[j] - 1], &st->ss[i], bound))
                j = (j + 1) & (cap - 1);
            if (!tab[j]) tab[j] = i + 1;
        }
        for (size_t j = 0; j < cap && !rc; j++) {
            if (!tab[j]) continue;
            size_t first = tab[j] - 1;
            bool has_sum = false, has_count = false, has_inf = false;
            double count = 0;
            for (size_t i = first; i < n0; i++) {
                if (st->ss[i].fam != fi || !same_set(st, &st->ss[first], &st->ss[i], bound))
                    continue;
                const char *sfx = stage_s(st, st->ss[i].suffix);
                if (!strcmp(sfx, "_sum")) {
                    has_sum = true;
                } else if (!strcmp(sfx, "_count")) {
                    has_count = true;
                    count = st->ss[i].v;
                } else if (t == EXPFMT_HISTOGRAM) {
                    for (size_t k = 0; k < st->ss[i].nlab; k++)
                        if (!strcmp(stage_s(st, st->labs[st->ss[i].lab0 + k].name), "le") &&
                            !strcmp(stage_s(st, st->labs[st->ss[i].lab0 + k].value), "+Inf"))
                            has_inf = true;
                }
            }
            if (t == EXPFMT_HISTOGRAM && !has_inf)
                rc = stage_add_like(st, first, fi, "_bucket", bound, "+Inf", count);
            if (!rc && !has_sum) rc = stage_add_like(st, first, fi, "_sum", bound, NULL, 0);
            if (!rc && !has_count) rc = stage_add_like(st, first, fi, "_count", bound, NULL, 0);
        }
    }
    free(tab);
    return rc;
}

/* Turns a staged body into families (returns new array of nfams pointers, each with a ref on
 * one shared blob). Families named like the push-time gauges are dropped: Pushgateway
 * replaces them with its own. */
static int stage_build(struct stage *st, int64_t ts_ns, struct pfam ***out, size_t *nout) {
    *out = NULL;
    *nout = 0;
    struct pblob *b = calloc(1, sizeof(*b));
    struct pfam **fams = calloc(st->nfams ? st->nfams : 1, sizeof(*fams));
    if (!b || !fams) goto fail;
    b->labs = malloc((st->nlabs ? st->nlabs : 1) * sizeof(*b->labs));
    if (!b->labs) goto fail;
    size_t slen;
    b->strs = sbuf_steal(&st->strs, &slen);
    if (!b->strs) goto fail;
    for (size_t i = 0; i < st->nlabs; i++) {
        b->labs[i].name = b->strs + st->labs[i].name;
        b->labs[i].value = b->strs + st->labs[i].value;
    }
    size_t *map = calloc(st->nfams ? st->nfams : 1, sizeof(*map));
    if (!map) goto fail;
    size_t nf = 0;
    for (size_t i = 0; i < st->nfams; i++) {
        map[i] = SIZE_MAX;
        const char *name = b->strs + st->fams[i].name;
        if (!st->fams[i].count || !strcmp(name, PUSH_TIME) || !strcmp(name, PUSH_FAIL)) continue;
        struct pfam *f = calloc(1, sizeof(*f));
        if (f) f->s = malloc(st->fams[i].count * sizeof(*f->s));
        if (!f || !f->s) {
            free(f);
            free(map);
            goto fail;
        }
        f->name = name;
        f->help = st->fams[i].has_help ? b->strs + st->fams[i].help : NULL;
        f->type = st->fams[i].type;
        f->ts_ns = ts_ns;
        f->blob = b;
        b->refs++;
        map[i] = nf;
        fams[nf++] = f;
    }
    for (size_t i = 0; i < st->nss; i++) {
        const struct ssamp *s = &st->ss[i];
        if (map[s->fam] == SIZE_MAX) continue;
        struct pfam *f = fams[map[s->fam]];
        f->s[f->n++] = (struct psample){.suffix = b->strs + s->suffix,
                                        .labels = b->labs + s->lab0,
                                        .nlabels = s->nlab,
                                        .v = s->v};
    }
    free(map);
    if (!b->refs) { /* nothing kept a reference */
        b->refs = 1;
        blob_unref(b);
    }
    *out = fams;
    *nout = nf;
    return 0;
fail:
    if (fams)
        for (size_t i = 0; i < st->nfams; i++)
            if (fams[i]) {
                free(fams[i]->s);
                free(fams[i]);
            }
    free(fams);
    if (b) {
        free(b->strs);
        free(b->labs);
        free(b);
    }
    return -ENOMEM;
}

static void fams_free(struct pfam **f, size_t n) {
    if (!f) return;
    for (size_t i = 0; i < n; i++)
        fam_free(f[i]);
    free(f);
}

/* ---- the consistency check (client_golang's Gatherers.Gather over the result) ---------- */

static bool pushed_has(struct pfam *const *nf, size_t nn, const char *name) {
    for (size_t i = 0; i < nn; i++)
        if (!strcmp(nf[i]->name, name)) return true;
    return false;
}

/* Whether family f of group g is part of the state after the push (PUT drops all of g's
 * families, POST those it pushes). */
static bool kept(const struct pgroup *g, const struct pgroup *target, bool replace,
                 struct pfam *const *nf, size_t nn, const struct pfam *f) {
    if (g != target) return true;
    return !replace && !pushed_has(nf, nn, f->name);
}

/* Type of promlet's own family `name`; false if promlet has none of that name. */
static bool own_type(struct push *p, const char *name, enum expfmt_type *t) {
    if (!p->own || !mset_has(p->own, name)) return false;
    /* mset_family returns the existing family only when asked for its own type. */
    static const enum expfmt_type all[] = {EXPFMT_COUNTER, EXPFMT_GAUGE, EXPFMT_UNTYPED,
                                           EXPFMT_SUMMARY, EXPFMT_HISTOGRAM};
    for (size_t i = 0; i < 5; i++)
        if (mset_family(p->own, name, "", mtype_of(all[i]))) {
            *t = all[i];
            return true;
        }
    return false;
}

/* Type of family `name` after the push, from any group, the pushed families or promlet's
 * own; false if it does not exist. */
static bool type_after(struct push *p, const struct pgroup *target, bool replace,
                       struct pfam *const *nf, size_t nn, const char *name, enum expfmt_type *t) {
    for (size_t i = 0; i < nn; i++)
        if (!strcmp(nf[i]->name, name)) {
            *t = nf[i]->type;
            return true;
        }
    for (size_t gi = 0; gi < p->ngroups; gi++) {
        const struct pgroup *g = p->groups[gi];
        for (size_t i = 0; i < g->nfams; i++)
            if (!strcmp(g->fams[i]->name, name) && kept(g, target, replace, nf, nn, g->fams[i])) {
                *t = g->fams[i]->type;
                return true;
            }
    }
    if (own_type(p, name, t)) return true;
    if (!strcmp(name, PUSH_TIME) || !strcmp(name, PUSH_FAIL)) {
        *t = EXPFMT_GAUGE;
        return true;
    }
    return false;
}

static void fmt_series(char *out, size_t len, const char *name, const struct psample *s) {
    struct sbuf b;
    sbuf_init(&b);
    sbuf_printf(&b, "%s%s{", name, s->suffix);
    for (size_t i = 0; i < s->nlabels; i++)
        sbuf_printf(&b, "%s%s=\"%s\"", i ? "," : "", s->labels[i].name, s->labels[i].value);
    sbuf_addc(&b, '}');
    snprintf(out, len, "%s", b.data ? b.data : name);
    sbuf_fini(&b);
}

/* Adds family f's samples to the probe set; fills why on a type clash or duplicate. */
static int probe_add(struct mset *probe, const struct pfam *f, char *why, size_t len) {
    struct mfam *mf = mset_family(probe, f->name, "", mtype_of(f->type));
    if (!mf) {
        if (!mset_has(probe, f->name)) return -ENOMEM;
        snprintf(why, len, "gathered metric family %s has inconsistent types", f->name);
        return -EINVAL;
    }
    for (size_t i = 0; i < f->n; i++) {
        int rc = mfam_add(mf, f->s[i].suffix, f->s[i].labels, f->s[i].nlabels, f->s[i].v);
        if (rc == -EEXIST) {
            char ser[200];
            fmt_series(ser, sizeof(ser), f->name, &f->s[i]);
            snprintf(why, len,
                     "collected metric %s was collected before with the same name and label "
                     "values",
                     ser);
            return -EINVAL;
        }
        if (rc == -EINVAL) {
            char ser[200];
            fmt_series(ser, sizeof(ser), f->name, &f->s[i]);
            snprintf(why, len, "collected metric %s has an invalid label name or value", ser);
            return -EINVAL;
        }
        if (rc) return rc;
    }
    return 0;
}

static bool ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a > b && !strcmp(s + a - b, suf);
}

/* Checks the state after applying nf to target (NULL: new group). 0, -EINVAL with why set,
 * or -ENOMEM. Called with the lock held. */
static int check_push(struct push *p, const struct pgroup *target, const struct gkey *k,
                      bool replace, struct pfam *const *nf, size_t nn, bool has_ts, char *why,
                      size_t len) {
    if (has_ts) {
        snprintf(why, len, "pushed metrics must not have timestamps");
        return -EINVAL;
    }
    for (size_t i = 0; i < k->n; i++)
        if (!re_valid_utf8(k->l[i].value, strlen(k->l[i].value))) {
            snprintf(why, len, "label %s of the grouping key is not valid UTF-8", k->l[i].name);
            return -EINVAL;
        }
    /* Types per family name across groups (the state before was consistent, so only the
     * pushed names can clash). */
    for (size_t i = 0; i < nn; i++)
        for (size_t gi = 0; gi < p->ngroups; gi++) {
            const struct pgroup *g = p->groups[gi];
            for (size_t j = 0; j < g->nfams; j++) {
                const struct pfam *o = g->fams[j];
                if (o->type != nf[i]->type && !strcmp(o->name, nf[i]->name) &&
                    kept(g, target, replace, nf, nn, o)) {
                    snprintf(why, len, "gathered metric family %s has type %s but should have %s",
                             nf[i]->name, type_upper(nf[i]->type), type_upper(o->type));
                    return -EINVAL;
                }
            }
        }
    struct mset *probe = mset_new();
    if (!probe) return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < nn && !rc; i++)
        rc = probe_add(probe, nf[i], why, len);
    /* Families of the same names elsewhere: type clashes and duplicate series. */
    for (size_t gi = 0; gi < p->ngroups && !rc; gi++) {
        const struct pgroup *g = p->groups[gi];
        for (size_t i = 0; i < g->nfams && !rc; i++)
            if (mset_has(probe, g->fams[i]->name) && kept(g, target, replace, nf, nn, g->fams[i]))
                rc = probe_add(probe, g->fams[i], why, len);
    }
    mset_free(probe);
    for (size_t i = 0; i < nn && !rc; i++) {
        const struct pfam *f = nf[i];
        enum expfmt_type t;
        /* Against promlet's own families. */
        enum expfmt_type ot;
        if (own_type(p, f->name, &ot) && ot != f->type) {
            snprintf(why, len, "gathered metric family %s has type %s but should have %s", f->name,
                     type_upper(f->type), type_upper(ot));
            rc = -EINVAL;
            break;
        }
        /* Suffix collisions (client_golang checkSuffixCollisions), both directions. */
        if (f->type == EXPFMT_SUMMARY || f->type == EXPFMT_HISTOGRAM) {
            const char *sfx[] = {"_count", "_sum", "_bucket"};
            for (size_t s = 0; s < (f->type == EXPFMT_HISTOGRAM ? 3u : 2u) && !rc; s++) {
                char *other = malloc(strlen(f->name) + 8);
                if (!other) return -ENOMEM;
                sprintf(other, "%s%s", f->name, sfx[s]);
                if (type_after(p, target, replace, nf, nn, other, &t)) {
                    snprintf(why, len,
                             "collected metric named \"%.150s\" collides with previously "
                             "collected %s named \"%.150s\"",
                             other, f->type == EXPFMT_SUMMARY ? "summary" : "histogram", f->name);
                    rc = -EINVAL;
                }
                free(other);
            }
        }
        const char *sfx[] = {"_count", "_sum", "_bucket"};
        for (size_t s = 0; s < 3 && !rc; s++)
            if (ends_with(f->name, sfx[s])) {
                char *base = strdup(f->name);
                if (!base) return -ENOMEM;
                base[strlen(f->name) - strlen(sfx[s])] = '\0';
                if (type_after(p, target, replace, nf, nn, base, &t) &&
                    (t == EXPFMT_HISTOGRAM || (t == EXPFMT_SUMMARY && s < 2))) {
                    snprintf(why, len,
                             "collected metric named \"%.150s\" collides with previously "
                             "collected %s named \"%.150s\"",
                             f->name, t == EXPFMT_SUMMARY ? "summary" : "histogram", base);
                    rc = -EINVAL;
                }
                free(base);
            }
    }
    return rc;
}

/* ---- store ----------------------------------------------------------------------------- */

/* Appends the group's pushed families (or only nf when given) and its push-time gauges to
 * the store at ts. Empty label values mean "no label" there, as in Prometheus. */
static int append_to_store(struct push *p, const struct pgroup *g, struct pfam *const *nf,
                           size_t nn, int64_t ts, bool gauges_only) {
    size_t ns = 2, nl = 0, namelen = 0;
    if (!gauges_only)
        for (size_t i = 0; i < nn; i++)
            for (size_t j = 0; j < nf[i]->n; j++) {
                ns++;
                nl += nf[i]->s[j].nlabels + 1;
                namelen += strlen(nf[i]->name) + strlen(nf[i]->s[j].suffix) + 1;
            }
    nl += 2 * (g->nkey + 1);
    struct store_sample *b = malloc(ns * sizeof(*b));
    struct re_label *labs = malloc(nl * sizeof(*labs));
    char *names = malloc(namelen + 1);
    int rc = -ENOMEM;
    if (!b || !labs || !names) goto out;
    size_t bi = 0, li = 0;
    char *np = names;
    if (!gauges_only)
        for (size_t i = 0; i < nn; i++)
            for (size_t j = 0; j < nf[i]->n; j++) {
                const struct psample *s = &nf[i]->s[j];
                int w = sprintf(np, "%s%s", nf[i]->name, s->suffix);
                struct re_label *l = labs + li;
                size_t k = 0;
                bool named = false;
                for (size_t x = 0; x < s->nlabels; x++) {
                    if (!named && strcmp("__name__", s->labels[x].name) < 0) {
                        l[k++] = (struct re_label){"__name__", np};
                        named = true;
                    }
                    if (s->labels[x].value[0]) l[k++] = s->labels[x];
                }
                if (!named) l[k++] = (struct re_label){"__name__", np};
                b[bi++] = (struct store_sample){.labels = l, .nlabels = k, .ts = ts, .v = s->v};
                li += k;
                np += w + 1;
            }
    const char *gn[2] = {PUSH_FAIL, PUSH_TIME};
    double gv[2] = {g->fail_time, g->push_time};
    for (size_t x = 0; x < 2; x++) {
        struct re_label *l = labs + li;
        size_t k = 0;
        bool named = false;
        for (size_t y = 0; y < g->nkey; y++) {
            if (!named && strcmp("__name__", g->key[y].name) < 0) {
                l[k++] = (struct re_label){"__name__", gn[x]};
                named = true;
            }
            if (g->key[y].value[0]) l[k++] = g->key[y];
        }
        if (!named) l[k++] = (struct re_label){"__name__", gn[x]};
        b[bi++] = (struct store_sample){.labels = l, .nlabels = k, .ts = ts, .v = gv[x]};
        li += k;
    }
    struct store_result res;
    /* Pushes land at arrival time in milliseconds: of two pushes in one millisecond the
     * last wins (STORE_LAST_WINS), as in Pushgateway; a clock step back drops samples. */
    rc = store_append_batch(p->a->store, b, bi, STORE_ATOMIC | STORE_LAST_WINS, &res);
    if (rc == -ERANGE) rc = store_append_batch(p->a->store, b, bi, STORE_LAST_WINS, &res);
out:
    free(b);
    free(labs);
    free(names);
    return rc;
}

/* ---- applying -------------------------------------------------------------------------- */

/* Puts nf into g (takes the families and the array). */
static int group_apply(struct pgroup *g, bool replace, struct pfam **nf, size_t nn) {
    size_t keep = 0;
    for (size_t i = 0; i < g->nfams; i++) {
        struct pfam *f = g->fams[i];
        if (replace || pushed_has(nf, nn, f->name))
            fam_free(f);
        else
            g->fams[keep++] = f;
    }
    struct pfam **all = realloc(g->fams, (keep + nn + 1) * sizeof(*all));
    if (!all) {
        /* keep the survivors; the pushed families are dropped (OOM) */
        g->nfams = keep;
        fams_free(nf, nn);
        return -ENOMEM;
    }
    memcpy(all + keep, nf, nn * sizeof(*nf));
    free(nf);
    g->fams = all;
    g->nfams = keep + nn;
    return 0;
}

static int decompress_gzip(const char *in, size_t len, size_t cap, struct sbuf *out) {
    z_stream z = {0};
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return -ENOMEM;
    z.next_in = (Bytef *)(uintptr_t)in;
    z.avail_in = (uInt)len;
    int rc = 0;
    char buf[16384];
    for (;;) {
        z.next_out = (Bytef *)buf;
        z.avail_out = sizeof(buf);
        int zr = inflate(&z, Z_NO_FLUSH);
        size_t got = sizeof(buf) - z.avail_out;
        if (out->len + got > cap) {
            rc = -E2BIG;
            break;
        }
        if (sbuf_add(out, buf, got)) {
            rc = -ENOMEM;
            break;
        }
        if (zr == Z_STREAM_END) break;
        if (zr != Z_OK || (got == 0 && z.avail_in == 0)) {
            rc = -EPROTO;
            break;
        }
    }
    inflateEnd(&z);
    return rc;
}

/* CRC-32C (Castagnoli), bitwise: push bodies are small. */
static uint32_t crc32c(const uint8_t *p, size_t n) {
    uint32_t c = ~0u;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

/* The snappy framing format (github.com/google/snappy framing_format.txt), which
 * Pushgateway's Content-Encoding: snappy means (Go's snappy.NewReader), unlike remote write's
 * block format. Chunks: stream identifier, compressed or uncompressed data with a masked
 * CRC-32C of the uncompressed bytes, skippable padding. */
static int decompress_snappy_framed(const uint8_t *p, size_t len, size_t cap, struct sbuf *out) {
    const uint8_t *end = p + len;
    bool seen_id = false;
    char *chunk = malloc(65536);
    if (!chunk) return -ENOMEM;
    int rc = 0;
    while (p < end && !rc) {
        if (end - p < 4) {
            rc = -EPROTO;
            break;
        }
        unsigned type = p[0];
        size_t clen = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16;
        p += 4;
        if (clen > (size_t)(end - p)) {
            rc = -EPROTO;
            break;
        }
        if (type == 0xff) {
            if (clen != 6 || memcmp(p, "sNaPpY", 6)) rc = -EPROTO;
            seen_id = true;
        } else if (type == 0x00 || type == 0x01) {
            if (!seen_id || clen < 4) {
                rc = -EPROTO;
                break;
            }
            uint32_t want =
                (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            const char *data = (const char *)p + 4;
            size_t dlen = clen - 4, ulen = dlen;
            if (type == 0x00) {
                if (snappy_uncompressed_length(data, dlen, &ulen) != SNAPPY_OK || ulen > 65536 ||
                    snappy_uncompress(data, dlen, chunk, &ulen) != SNAPPY_OK) {
                    rc = -EPROTO;
                    break;
                }
                data = chunk;
            } else if (ulen > 65536) {
                rc = -EPROTO;
                break;
            }
            uint32_t c = crc32c((const uint8_t *)data, ulen);
            if ((((c >> 15) | (c << 17)) + 0xa282ead8u) != want)
                rc = -EPROTO;
            else if (out->len + ulen > cap)
                rc = -E2BIG;
            else if (sbuf_add(out, data, ulen))
                rc = -ENOMEM;
        } else if (type < 0x80) {
            rc = -EPROTO; /* reserved unskippable chunk */
        }
        p += clen;
    }
    free(chunk);
    return rc;
}

/* Parses body for key k into families; on a parse error fills why. */
/* ---- protobuf pushes (length-delimited io.prometheus.client.MetricFamily) ------------------ */

/* client_golang's push package sends this format by default. The messages are decoded by hand
 * (a handful of fields of client_model's metrics.proto) into the same staging as text pushes:
 * a histogram becomes its _bucket/_sum/_count samples, a summary its quantile/_sum/_count
 * samples, as Pushgateway's /metrics shows them. What Pushgateway's consistency check would
 * refuse (invalid names or UTF-8, a value kind other than the declared type, a le/quantile
 * label of its own) is reported through st->invalid: 400 and push_failure_time_seconds. */

struct pb {
    const uint8_t *p, *end;
};

static int pb_varint(struct pb *b, uint64_t *v) {
    uint64_t x = 0;
    for (int sh = 0; sh < 64; sh += 7) {
        if (b->p >= b->end) return -EPROTO;
        uint8_t c = *b->p++;
        x |= (uint64_t)(c & 0x7f) << sh;
        if (!(c & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -EPROTO;
}

/* Next field: number, wire type, and its varint/fixed value or its bytes. */
static int pb_next(struct pb *b, uint32_t *num, uint32_t *wt, uint64_t *v, struct pb *sub) {
    uint64_t key;
    if (pb_varint(b, &key) || (key >> 3) == 0 || (key >> 3) > UINT32_MAX) return -EPROTO;
    *num = (uint32_t)(key >> 3);
    *wt = (uint32_t)(key & 7);
    switch (*wt) {
    case 0:
        return pb_varint(b, v);
    case 1:
        if (b->end - b->p < 8) return -EPROTO;
        memcpy(v, b->p, 8);
        b->p += 8;
        return 0;
    case 5:
        if (b->end - b->p < 4) return -EPROTO;
        b->p += 4;
        return 0;
    case 2: {
        uint64_t n;
        if (pb_varint(b, &n) || n > (uint64_t)(b->end - b->p)) return -EPROTO;
        sub->p = b->p;
        sub->end = b->p + n;
        b->p += n;
        return 0;
    }
    default:
        return -EPROTO;
    }
}

static double pb_double(uint64_t v) {
    double d;
    memcpy(&d, &v, sizeof(d));
    return d;
}

/* A family being decoded: NUL-terminated copies of the strings it needs. */
struct pbfam {
    struct sbuf s;
    struct proto_label labs[DEF_MAX_LABELS_PER_SERIES + 1];
    size_t nlabs;
};

static void set_invalid(struct stage *st, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void set_invalid(struct stage *st, const char *fmt, ...) {
    if (st->invalid[0]) return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->invalid, sizeof(st->invalid), fmt, ap);
    va_end(ap);
}

/* Copies a (ptr, len) string into f->s; returns its offset. */
static size_t pb_str(struct pbfam *f, const struct pb *x) {
    size_t off = f->s.len;
    if (x->p) sbuf_add(&f->s, x->p, (size_t)(x->end - x->p));
    sbuf_addc(&f->s, '\0');
    return off;
}

static int pb_emit(struct stage *st, struct pbfam *f, const char *fam, const char *suffix,
                   size_t nlabs, const char *bound, double bval, double v, bool has_ts) {
    struct sbuf name, bv;
    sbuf_init(&name);
    sbuf_init(&bv);
    sbuf_adds(&name, fam);
    sbuf_adds(&name, suffix);
    size_t n = nlabs;
    if (bound) {
        sbuf_add_double(&bv, bval);
        f->labs[n++] = (struct proto_label){bound, strlen(bound), bv.data, bv.len};
    }
    int rc = name.oom || bv.oom ? -ENOMEM : on_sample(st, fam, name.data, f->labs, n, v, has_ts, 0);
    sbuf_fini(&name);
    sbuf_fini(&bv);
    return rc;
}

/* One Metric of family `fam` of type t (client_model numbering). */
static int pb_metric(struct stage *st, struct pbfam *f, const char *fam, uint64_t t, struct pb m) {
    struct pb val = {0}, sub;
    uint32_t num, wt, kind = 0;
    uint64_t v;
    bool has_ts = false;
    size_t soff[DEF_MAX_LABELS_PER_SERIES][2];
    size_t nl = 0;
    sbuf_reset(&f->s);
    while (m.p < m.end) {
        if (pb_next(&m, &num, &wt, &v, &sub)) return -EPROTO;
        if (num == 1 && wt == 2) { /* LabelPair */
            struct pb ln = {0}, lv = {0}, x;
            while (sub.p < sub.end) {
                if (pb_next(&sub, &num, &wt, &v, &x)) return -EPROTO;
                if (num == 1 && wt == 2)
                    ln = x;
                else if (num == 2 && wt == 2)
                    lv = x;
            }
            if (nl == DEF_MAX_LABELS_PER_SERIES) {
                set_invalid(st, "metric %s has too many labels", fam);
                continue;
            }
            soff[nl][0] = ln.p ? pb_str(f, &ln) : pb_str(f, &(struct pb){NULL, NULL});
            soff[nl][1] = lv.p ? pb_str(f, &lv) : pb_str(f, &(struct pb){NULL, NULL});
            nl++;
        } else if (wt == 2 && (num == 2 || num == 3 || num == 4 || num == 5 || num == 7)) {
            kind = num;
            val = sub;
        } else if (num == 6 && wt == 0) {
            has_ts = true;
        }
    }
    if (f->s.oom) return -ENOMEM;
    for (size_t i = 0; i < nl; i++) {
        const char *n = f->s.data + soff[i][0], *vv = f->s.data + soff[i][1];
        f->labs[i] = (struct proto_label){n, strlen(n), vv, strlen(vv)};
        if (!re_valid_label_name(n, strlen(n)) || !strncmp(n, "__", 2))
            set_invalid(st, "collected metric %.100s has an invalid label name", fam);
        else if (!re_valid_utf8(vv, strlen(vv)))
            set_invalid(st, "collected metric %.100s has a label value that is not valid UTF-8",
                        fam);
        else if ((t == 2 && !strcmp(n, "quantile")) || (t == 4 && !strcmp(n, "le")))
            set_invalid(st, "collected metric %.100s has a label that collides with its bounds",
                        fam);
        for (size_t j = 0; j < i; j++)
            if (!strcmp(f->labs[j].name, n))
                set_invalid(st, "collected metric %.100s has two labels of the same name", fam);
    }
    /* The value must be of the declared kind (COUNTER 0, GAUGE 1, SUMMARY 2, UNTYPED 3,
     * HISTOGRAM 4, GAUGE_HISTOGRAM 5). */
    static const uint32_t want[] = {3, 2, 4, 5, 7, 7};
    if (t > 5 || kind != want[t]) {
        set_invalid(st, "collected metric %.100s has a value of another kind than its type", fam);
        return 0;
    }
    if (st->invalid[0]) return 0;
    double x = 0, sum = 0, count = 0;
    if (kind != 4 && kind != 7) {
        while (val.p < val.end) {
            if (pb_next(&val, &num, &wt, &v, &sub)) return -EPROTO;
            if (num == 1 && wt == 1) x = pb_double(v);
        }
        return pb_emit(st, f, fam, "", nl, NULL, 0, x, has_ts);
    }
    /* summary: quantiles; histogram: classic buckets (native parts are not shown by the
     * text format Pushgateway's /metrics uses) */
    int rc = 0;
    while (val.p < val.end && !rc) {
        if (pb_next(&val, &num, &wt, &v, &sub)) return -EPROTO;
        if (num == 1 && wt == 0)
            count = (double)v;
        else if (num == 2 && wt == 1)
            sum = pb_double(v);
        else if (kind == 7 && num == 4 && wt == 1)
            count = pb_double(v);
        else if (num == 3 && wt == 2) {
            double bound = 0, c = 0;
            struct pb y;
            while (sub.p < sub.end) {
                if (pb_next(&sub, &num, &wt, &v, &y)) return -EPROTO;
                if (kind == 4 && num == 1 && wt == 1)
                    bound = pb_double(v);
                else if (kind == 4 && num == 2 && wt == 1)
                    c = pb_double(v);
                else if (kind == 7 && num == 1 && wt == 0)
                    c = (double)v;
                else if (kind == 7 && num == 4 && wt == 1)
                    c = pb_double(v);
                else if (kind == 7 && num == 2 && wt == 1)
                    bound = pb_double(v);
            }
            rc = pb_emit(st, f, fam, kind == 7 ? "_bucket" : "", nl, kind == 7 ? "le" : "quantile",
                         bound, c, has_ts);
        }
    }
    if (!rc) rc = pb_emit(st, f, fam, "_sum", nl, NULL, 0, sum, has_ts);
    if (!rc) rc = pb_emit(st, f, fam, "_count", nl, NULL, 0, count, has_ts);
    return rc;
}

static int parse_pb(struct stage *st, const uint8_t *buf, size_t len, char *why, size_t wlen) {
    struct pb all = {buf, buf + len};
    struct pbfam *f = calloc(1, sizeof(*f));
    if (!f) return -ENOMEM;
    sbuf_init(&f->s);
    struct sbuf names;
    sbuf_init(&names);
    int rc = 0;
    size_t nmsg = 0;
    while (all.p < all.end && !rc) {
        uint64_t n;
        nmsg++;
        if (pb_varint(&all, &n) || n > (uint64_t)(all.end - all.p)) {
            rc = -EPROTO;
            break;
        }
        struct pb mf = {all.p, all.p + n}, sub, name = {0}, help = {0};
        all.p += n;
        uint64_t type = 0, v;
        uint32_t num, wt;
        bool has_help = false;
        /* first pass: name, help, type */
        for (struct pb x = mf; x.p < x.end;) {
            if (pb_next(&x, &num, &wt, &v, &sub)) {
                rc = -EPROTO;
                break;
            }
            if (num == 1 && wt == 2)
                name = sub;
            else if (num == 2 && wt == 2) {
                help = sub;
                has_help = true;
            } else if (num == 3 && wt == 0)
                type = v;
        }
        if (rc) break;
        sbuf_reset(&names);
        if (name.p) sbuf_add(&names, name.p, (size_t)(name.end - name.p));
        sbuf_addc(&names, '\0');
        size_t hoff = names.len;
        if (help.p) sbuf_add(&names, help.p, (size_t)(help.end - help.p));
        sbuf_addc(&names, '\0');
        if (names.oom) {
            rc = -ENOMEM;
            break;
        }
        const char *fam = names.data;
        if (!re_valid_metric_name(fam, strlen(fam))) {
            char q[120];
            size_t o = 0;
            for (const unsigned char *c = (const unsigned char *)fam; *c && o + 5 < sizeof(q); c++)
                o += (size_t)snprintf(q + o, sizeof(q) - o,
                                      *c >= 0x20 && *c < 0x7f && *c != '"' ? "%c" : "\\x%02x", *c);
            set_invalid(st, "collected metric family \"%s\" has an invalid name", q);
            continue;
        }
        /* Pushgateway keys families by name: a later message of the same name replaces an
         * earlier one; promlet refuses the ambiguity instead. */
        if (stage_family(st, fam) >= 0) {
            set_invalid(st, "metric family %.100s pushed twice", fam);
            continue;
        }
        static const enum expfmt_type tmap[] = {EXPFMT_COUNTER, EXPFMT_GAUGE,     EXPFMT_SUMMARY,
                                                EXPFMT_UNTYPED, EXPFMT_HISTOGRAM, EXPFMT_HISTOGRAM};
        if (type > 5) {
            set_invalid(st, "metric family %.100s has an unknown type", fam);
            continue;
        }
        rc = on_family(st, fam, has_help ? names.data + hoff : NULL, tmap[type]);
        for (struct pb x = mf; x.p < x.end && !rc;) {
            if (pb_next(&x, &num, &wt, &v, &sub))
                rc = -EPROTO;
            else if (num == 4 && wt == 2)
                rc = pb_metric(st, f, fam, type, sub);
        }
    }
    if (rc == -EPROTO)
        snprintf(why, wlen, "protobuf: invalid length-delimited MetricFamily message %zu", nmsg);
    sbuf_fini(&names);
    sbuf_fini(&f->s);
    free(f);
    return rc;
}

/* Pushgateway takes the protobuf format only for exactly this media type and parameters;
 * anything else is parsed as text. */
static bool is_protobuf(const char *ct) {
    if (!ct) return false;
    while (*ct == ' ')
        ct++;
    if (strncasecmp(ct, "application/vnd.google.protobuf", 31)) return false;
    const char *p = ct + 31;
    bool proto = false, delim = false;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t')
            p++;
        size_t n = strcspn(p, ";");
        if (n == 39 && !strncmp(p, "proto=io.prometheus.client.MetricFamily", 39))
            proto = true;
        else if (n == 18 && !strncmp(p, "encoding=delimited", 18))
            delim = true;
        p += n;
    }
    return proto && delim;
}

static int parse_body(const struct gkey *k, const char *body, size_t len, bool pb, int64_t ts_ns,
                      struct pfam ***nf, size_t *nn, bool *has_ts, char *invalid, char *why,
                      size_t wlen) {
    struct stage st;
    stage_init(&st, k->l, k->n);
    int rc;
    st.pb = pb;
    if (pb) {
        rc = parse_pb(&st, (const uint8_t *)body, len, why, wlen);
    } else {
        struct expfmt_sink sink = {.arg = &st, .family = on_family, .sample = on_sample};
        struct perr e = {0};
        rc = expfmt_parse((const uint8_t *)body, len, &sink, &e);
        if (rc == -EPROTO) snprintf(why, wlen, "%s", e.msg);
    }
    if (rc == 0 && st.strs.oom) rc = -ENOMEM;
    if (rc && st.rc) rc = st.rc;
    if (!rc) rc = stage_complete(&st);
    if (!rc) {
        *has_ts = st.has_ts;
        snprintf(invalid, sizeof(st.invalid), "%s", st.invalid);
        rc = stage_build(&st, ts_ns, nf, nn);
    }
    stage_fini(&st);
    return rc;
}

static void handle_push(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct push *p = arg;
    const char *method = http_method(req);
    struct gkey k;
    char why[400];
    int rc = parse_key(http_subpath(req), &k, why, sizeof(why));
    if (rc) {
        free(k.buf);
        if (rc == -ENOMEM)
            http_error(resp, 503, "out of memory");
        else
            http_error(resp, rc == -ENOENT ? 404 : 400, "%s", why);
        return;
    }
    uint64_t h = key_hash(k.l, k.n);
    if (!strcmp(method, "DELETE")) {
        pthread_mutex_lock(&p->lock);
        ssize_t gi = group_find(p, k.l, k.n, h);
        if (gi >= 0) {
            group_remove(p, (size_t)gi);
            p->dirty = true;
        }
        pthread_mutex_unlock(&p->lock);
        free(k.buf);
        resp->status = 202;
        return;
    }
    bool replace = !strcmp(method, "PUT");
    size_t blen;
    const char *body = http_body(req, &blen);
    struct sbuf plain;
    sbuf_init(&plain);
    const char *enc = http_header(req, "Content-Encoding");
    const char *ct = http_header(req, "Content-Type");
    bool pb = is_protobuf(ct);
    /* Pushgateway 1.5 knows gzip only and reads any other encoding as plain text; later
     * versions also take framed snappy. Both are accepted here: snappy when the body starts
     * with the framing format's stream identifier. */
    bool gz = enc && !strcasecmp(enc, "gzip");
    bool sn = enc && !strcasecmp(enc, "snappy") && blen >= 10 &&
              !memcmp(body, "\xff\x06\x00\x00sNaPpY", 10);
    if (gz || sn) {
        rc = gz ? decompress_gzip(body, blen, p->max_body, &plain)
                : decompress_snappy_framed((const uint8_t *)body, blen, p->max_body, &plain);
        if (rc) {
            sbuf_fini(&plain);
            free(k.buf);
            if (rc == -E2BIG)
                http_error(resp, 413, "decompressed body larger than %zu bytes", p->max_body);
            else if (rc == -ENOMEM)
                http_error(resp, 503, "out of memory");
            else
                http_error(resp, 400, "%s: invalid compressed body", gz ? "gzip" : "snappy");
            return;
        }
        body = plain.data ? plain.data : "";
        blen = plain.len;
    }
    int64_t tns = now_ns();
    struct pfam **nf = NULL;
    size_t nn = 0;
    bool has_ts = false;
    char invalid[200] = "";
    rc = parse_body(&k, body, blen, pb, tns, &nf, &nn, &has_ts, invalid, why, sizeof(why));
    sbuf_fini(&plain);
    if (rc) {
        free(k.buf);
        if (rc == -EPROTO)
            http_error(resp, 400, "%s", why);
        else
            http_error(resp, 503, "out of memory parsing the push");
        return;
    }
    double tsec = (double)tns / 1e9;
    int64_t tms = tns / 1000000;
    pthread_mutex_lock(&p->lock);
    ssize_t gi = group_find(p, k.l, k.n, h);
    struct pgroup *g = gi >= 0 ? p->groups[gi] : NULL;
    if (invalid[0]) {
        snprintf(why, sizeof(why), "%s", invalid);
        rc = -EINVAL;
    } else {
        rc = check_push(p, g, &k, replace, nf, nn, has_ts, why, sizeof(why));
    }
    if (rc == -EINVAL) {
        /* setPushFailedTimestamp: the group exists afterwards, push_time 0 if new. */
        if (!g) g = group_add(p, k.l, k.n, h);
        if (g) {
            g->fail_time = tsec;
            g->fail_ns = tns;
            g->touched_ms = tms;
            if (!g->push_ns) g->push_ns = tns;
            append_to_store(p, g, NULL, 0, tms, true);
        }
        p->failures_total++;
        p->dirty = true;
        pthread_mutex_unlock(&p->lock);
        fams_free(nf, nn);
        free(k.buf);
        LOG_DEBUG("push rejected: %s", why);
        http_error(resp, 400,
                   "pushed metrics are invalid or inconsistent with existing metrics: %s", why);
        return;
    }
    bool created = false;
    if (!rc && !g) {
        g = group_add(p, k.l, k.n, h);
        created = g != NULL;
        if (!g) rc = -ENOMEM;
    }
    double old_push = g ? g->push_time : 0;
    if (!rc) {
        g->push_time = tsec;
        rc = append_to_store(p, g, nf, nn, tms, false);
        if (rc) g->push_time = old_push;
    }
    if (rc) {
        if (created) group_remove(p, (size_t)p->ngroups - 1);
        if (rc == -ENOSPC) p->store_rejects_total++;
        pthread_mutex_unlock(&p->lock);
        fams_free(nf, nn);
        free(k.buf);
        if (rc == -ENOSPC)
            http_error(resp, 500,
                       "series limit reached: the push would create more series "
                       "than storage.max_series allows");
        else
            http_error(resp, 503, "out of memory storing the push");
        return;
    }
    if (!g->fail_ns) g->fail_ns = tns;
    g->push_ns = tns;
    g->touched_ms = tms;
    rc = group_apply(g, replace, nf, nn);
    p->pushes_total++;
    p->dirty = true;
    pthread_mutex_unlock(&p->lock);
    free(k.buf);
    if (rc) http_error(resp, 503, "out of memory storing the push");
}

/* ---- JSON API -------------------------------------------------------------------------- */

static void json_str(struct sbuf *b, const char *s) {
    sbuf_addc(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\') {
            sbuf_addc(b, '\\');
            sbuf_addc(b, (char)*c);
        } else if (*c == '\n') {
            sbuf_adds(b, "\\n");
        } else if (*c < 0x20) {
            sbuf_printf(b, "\\u%04x", *c);
        } else {
            sbuf_addc(b, (char)*c);
        }
    }
    sbuf_addc(b, '"');
}

static void json_num(struct sbuf *b, double v) {
    struct sbuf t;
    sbuf_init(&t);
    sbuf_add_double(&t, v);
    json_str(b, t.data ? t.data : "0");
    sbuf_fini(&t);
}

/* RFC3339Nano in UTC, as Go marshals a time.Time (trailing zeros of the fraction cut). */
static void json_time(struct sbuf *b, int64_t ns) {
    time_t s = (time_t)(ns / 1000000000);
    long frac = (long)(ns % 1000000000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char buf[64];
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    sbuf_printf(b, "\"%s", buf);
    if (frac) {
        char f[16];
        snprintf(f, sizeof(f), "%09ld", frac);
        size_t n = strlen(f);
        while (n && f[n - 1] == '0')
            f[--n] = '\0';
        sbuf_printf(b, ".%s", f);
    }
    sbuf_adds(b, "Z\"");
}

static void json_labels(struct sbuf *b, const struct re_label *l, size_t n, const char *skip) {
    sbuf_addc(b, '{');
    bool first = true;
    for (size_t i = 0; i < n; i++) {
        if (skip && !strcmp(l[i].name, skip)) continue;
        if (!first) sbuf_addc(b, ',');
        first = false;
        json_str(b, l[i].name);
        sbuf_addc(b, ':');
        json_str(b, l[i].value);
    }
    sbuf_addc(b, '}');
}

static bool same_labels_except(const struct psample *a, const struct psample *b, const char *x) {
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a->nlabels && !strcmp(a->labels[i].name, x))
            i++;
        while (j < b->nlabels && !strcmp(b->labels[j].name, x))
            j++;
        if (i == a->nlabels || j == b->nlabels) return i == a->nlabels && j == b->nlabels;
        if (strcmp(a->labels[i].name, b->labels[j].name) ||
            strcmp(a->labels[i].value, b->labels[j].value))
            return false;
        i++;
        j++;
    }
}

static const char *label_get(const struct psample *s, const char *name) {
    for (size_t i = 0; i < s->nlabels; i++)
        if (!strcmp(s->labels[i].name, name)) return s->labels[i].value;
    return NULL;
}

static void json_family(struct sbuf *b, const struct pfam *f) {
    json_str(b, f->name);
    sbuf_adds(b, ":{\"time_stamp\":");
    json_time(b, f->ts_ns);
    sbuf_printf(b, ",\"type\":\"%s\"", type_upper(f->type));
    if (f->help && *f->help) {
        sbuf_adds(b, ",\"help\":");
        json_str(b, f->help);
    }
    sbuf_adds(b, ",\"metrics\":[");
    bool complex = f->type == EXPFMT_SUMMARY || f->type == EXPFMT_HISTOGRAM;
    const char *bound = f->type == EXPFMT_SUMMARY ? "quantile" : "le";
    bool first = true;
    for (size_t i = 0; i < f->n; i++) {
        const struct psample *s = &f->s[i];
        if (complex) {
            /* one metric per label set: skip samples whose set was written already */
            bool seen = false;
            for (size_t j = 0; j < i && !seen; j++)
                seen = same_labels_except(&f->s[j], s, bound);
            if (seen) continue;
        }
        if (!first) sbuf_addc(b, ',');
        first = false;
        sbuf_adds(b, "{\"labels\":");
        json_labels(b, s->labels, s->nlabels, complex ? bound : NULL);
        if (!complex) {
            sbuf_adds(b, ",\"value\":");
            json_num(b, s->v);
            sbuf_addc(b, '}');
            continue;
        }
        double count = 0, sum = 0;
        sbuf_adds(b, f->type == EXPFMT_SUMMARY ? ",\"quantiles\":{" : ",\"buckets\":{");
        bool bfirst = true;
        for (size_t j = i; j < f->n; j++) {
            const struct psample *t = &f->s[j];
            if (!same_labels_except(t, s, bound)) continue;
            if (!strcmp(t->suffix, "_count"))
                count = t->v;
            else if (!strcmp(t->suffix, "_sum"))
                sum = t->v;
            else if (label_get(t, bound)) {
                if (!bfirst) sbuf_addc(b, ',');
                bfirst = false;
                json_str(b, label_get(t, bound));
                sbuf_addc(b, ':');
                json_num(b, t->v);
            }
        }
        sbuf_adds(b, "},\"count\":");
        json_num(b, count);
        sbuf_adds(b, ",\"sum\":");
        json_num(b, sum);
        sbuf_addc(b, '}');
    }
    sbuf_adds(b, "]}");
}

static void json_gauge(struct sbuf *b, const struct pgroup *g, const char *name, const char *help,
                       double v, int64_t ns) {
    json_str(b, name);
    sbuf_adds(b, ":{\"time_stamp\":");
    json_time(b, ns);
    sbuf_adds(b, ",\"type\":\"GAUGE\",\"help\":");
    json_str(b, help);
    sbuf_adds(b, ",\"metrics\":[{\"labels\":");
    struct re_label l[MAX_GROUPING_LABELS + 1];
    size_t n = 0;
    bool inst = false;
    for (size_t i = 0; i < g->nkey; i++) {
        l[n++] = g->key[i];
        inst |= !strcmp(g->key[i].name, "instance");
    }
    if (!inst) {
        l[n++] = (struct re_label){"instance", ""};
        qsort(l, n, sizeof(l[0]), label_cmp);
    }
    json_labels(b, l, n, NULL);
    sbuf_adds(b, ",\"value\":");
    json_num(b, v);
    sbuf_adds(b, "}]}");
}

static void handle_api_metrics(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct push *p = arg;
    (void)req;
    struct sbuf *b = &resp->body;
    sbuf_adds(b, "{\"status\":\"success\",\"data\":[");
    pthread_mutex_lock(&p->lock);
    for (size_t gi = 0; gi < p->ngroups; gi++) {
        const struct pgroup *g = p->groups[gi];
        if (gi) sbuf_addc(b, ',');
        sbuf_adds(b, "{\"labels\":");
        json_labels(b, g->key, g->nkey, NULL);
        sbuf_printf(b, ",\"last_push_successful\":%s",
                    g->fail_time > g->push_time ? "false" : "true");
        for (size_t i = 0; i < g->nfams; i++) {
            sbuf_addc(b, ',');
            json_family(b, g->fams[i]);
        }
        sbuf_addc(b, ',');
        json_gauge(b, g, PUSH_FAIL, PUSH_FAIL_HELP, g->fail_time, g->fail_ns);
        sbuf_addc(b, ',');
        json_gauge(b, g, PUSH_TIME, PUSH_TIME_HELP, g->push_time, g->push_ns);
        sbuf_addc(b, '}');
    }
    pthread_mutex_unlock(&p->lock);
    sbuf_adds(b, "]}");
    resp->content_type = "application/json";
    resp->gzip_ok = true;
}

static void handle_wipe(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct push *p = arg;
    (void)req;
    pthread_mutex_lock(&p->lock);
    while (p->ngroups)
        group_remove(p, p->ngroups - 1);
    p->dirty = true;
    pthread_mutex_unlock(&p->lock);
    resp->status = 202;
}

/* ---- /metrics -------------------------------------------------------------------------- */

static int add_gauge(struct mset *out, const struct pgroup *g, const char *name, const char *help,
                     double v) {
    struct mfam *f = mset_family(out, name, help, MTYPE_GAUGE);
    if (!f) return 0; /* a clash with another module's family: not ours to break the scrape */
    struct re_label l[MAX_GROUPING_LABELS + 1];
    size_t n = 0;
    bool inst = false;
    for (size_t i = 0; i < g->nkey; i++) {
        l[n++] = g->key[i];
        inst |= !strcmp(g->key[i].name, "instance");
    }
    if (!inst) l[n++] = (struct re_label){"instance", ""};
    int rc = mfam_add(f, "", l, n, v);
    return rc == -EEXIST || rc == -EINVAL ? 0 : rc;
}

static int push_metrics(struct agent *a, struct mset *out) {
    struct push *p = a->push;
    int rc = 0;
    pthread_mutex_lock(&p->lock);
    for (size_t gi = 0; gi < p->ngroups && !rc; gi++) {
        const struct pgroup *g = p->groups[gi];
        for (size_t i = 0; i < g->nfams && !rc; i++) {
            const struct pfam *f = g->fams[i];
            struct mfam *mf = mset_family(out, f->name, f->help, mtype_of(f->type));
            if (!mf) continue;
            for (size_t j = 0; j < f->n && !rc; j++) {
                rc = mfam_add(mf, f->s[j].suffix, f->s[j].labels, f->s[j].nlabels, f->s[j].v);
                if (rc == -EEXIST || rc == -EINVAL) rc = 0;
            }
        }
        if (!rc) rc = add_gauge(out, g, PUSH_FAIL, PUSH_FAIL_HELP, g->fail_time);
        if (!rc) rc = add_gauge(out, g, PUSH_TIME, PUSH_TIME_HELP, g->push_time);
    }
    size_t ng = p->ngroups;
    uint64_t fails = p->failures_total, rejects = p->store_rejects_total;
    pthread_mutex_unlock(&p->lock);
    struct mfam *f;
    if (!rc &&
        (f = mset_family(out, "promlet_push_groups", "Groups held by the push API.", MTYPE_GAUGE)))
        rc = mfam_add(f, "", NULL, 0, (double)ng);
    if (!rc && (f = mset_family(out, "promlet_push_rejected_total",
                                "Pushes refused by the consistency check (400).", MTYPE_COUNTER)))
        rc = mfam_add(f, "", NULL, 0, (double)fails);
    if (!rc && (f = mset_family(out, "promlet_push_series_limit_hits_total",
                                "Pushes refused because the store's series limit was reached.",
                                MTYPE_COUNTER)))
        rc = mfam_add(f, "", NULL, 0, (double)rejects);
    return rc;
}

/* ---- persistence ----------------------------------------------------------------------- */

static void text_escape(struct sbuf *b, const char *s, bool quote) {
    for (; *s; s++) {
        if (*s == '\\')
            sbuf_adds(b, "\\\\");
        else if (*s == '\n')
            sbuf_adds(b, "\\n");
        else if (quote && *s == '"')
            sbuf_adds(b, "\\\"");
        else
            sbuf_addc(b, *s);
    }
}

/* One group: a "#group" line (push/failure times and the key, base64url), then its families
 * in the text format, read back through the push parser at start. */
static void persist_group(struct sbuf *b, const struct pgroup *g) {
    sbuf_printf(b, "#group %lld %lld", (long long)g->push_ns, (long long)g->fail_ns);
    sbuf_addc(b, ' ');
    sbuf_add_double(b, g->push_time);
    sbuf_addc(b, ' ');
    sbuf_add_double(b, g->fail_time);
    for (size_t i = 0; i < g->nkey; i++) {
        sbuf_printf(b, " %s=", g->key[i].name);
        b64url_encode(b, g->key[i].value, strlen(g->key[i].value));
    }
    sbuf_addc(b, '\n');
    for (size_t i = 0; i < g->nfams; i++) {
        const struct pfam *f = g->fams[i];
        if (f->help) {
            sbuf_printf(b, "# HELP %s ", f->name);
            text_escape(b, f->help, false);
            sbuf_addc(b, '\n');
        }
        sbuf_printf(b, "# TYPE %s %s\n", f->name, expfmt_type_name(f->type));
        for (size_t j = 0; j < f->n; j++) {
            const struct psample *s = &f->s[j];
            sbuf_printf(b, "%s%s{", f->name, s->suffix);
            for (size_t k = 0; k < s->nlabels; k++) {
                sbuf_printf(b, "%s%s=\"", k ? "," : "", s->labels[k].name);
                text_escape(b, s->labels[k].value, true);
                sbuf_addc(b, '"');
            }
            sbuf_adds(b, "} ");
            sbuf_add_double(b, s->v);
            sbuf_addc(b, '\n');
        }
    }
}

static int persist(struct push *p) {
    if (!p->file) return 0;
    struct sbuf b;
    sbuf_init(&b);
    sbuf_adds(&b, PERSIST_MAGIC);
    pthread_mutex_lock(&p->lock);
    for (size_t i = 0; i < p->ngroups; i++)
        persist_group(&b, p->groups[i]);
    p->dirty = false;
    pthread_mutex_unlock(&p->lock);
    int rc = 0;
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.in_progress", p->file);
    if (b.oom) {
        rc = -ENOMEM;
        goto out;
    }
    FILE *f = fopen(tmp, "w");
    if (!f) {
        rc = -errno;
        goto out;
    }
    size_t w = fwrite(b.data, 1, b.len, f);
    if (w != b.len || fflush(f) || fsync(fileno(f))) rc = -EIO;
    if (fclose(f) && !rc) rc = -EIO;
    if (!rc && rename(tmp, p->file)) rc = -errno;
    if (rc) unlink(tmp);
out:
    sbuf_fini(&b);
    if (rc) {
        p->dirty = true;
        LOG_ERROR("error persisting pushed metrics to %s: %s", p->file, strerror(-rc));
    }
    return rc;
}

/* Reads groups written by persist(); a damaged file is reported and ignored (start goes on,
 * as Pushgateway logs and starts empty). */
static int load(struct push *p, const char *file) {
    FILE *f = fopen(file, "r");
    if (!f) return errno == ENOENT ? 0 : -errno;
    struct sbuf b;
    sbuf_init(&b);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        sbuf_add(&b, buf, n);
    fclose(f);
    if (b.oom) {
        sbuf_fini(&b);
        return -ENOMEM;
    }
    if (b.len < strlen(PERSIST_MAGIC) || memcmp(b.data, PERSIST_MAGIC, strlen(PERSIST_MAGIC))) {
        sbuf_fini(&b);
        LOG_ERROR("push persistence file %s has an unknown format; ignored", file);
        return 0;
    }
    char *pos = b.data + strlen(PERSIST_MAGIC), *end = b.data + b.len;
    size_t loaded = 0;
    int rc = 0;
    while (pos < end && !rc) {
        if (strncmp(pos, "#group ", 7)) {
            rc = -EPROTO;
            break;
        }
        char *eol = memchr(pos, '\n', (size_t)(end - pos));
        if (!eol) {
            rc = -EPROTO;
            break;
        }
        *eol = '\0';
        char *body = eol + 1, *next = body;
        while (next < end && strncmp(next, "#group ", 7)) {
            char *nl = memchr(next, '\n', (size_t)(end - next));
            next = nl ? nl + 1 : end;
        }
        long long pns, fns;
        double pt, ft;
        int used = 0;
        if (sscanf(pos + 7, "%lld %lld %lf %lf%n", &pns, &fns, &pt, &ft, &used) != 4) {
            rc = -EPROTO;
            break;
        }
        struct gkey k;
        memset(&k, 0, sizeof(k));
        size_t klen = strlen(pos + 7 + used);
        k.buf = malloc(klen + 1);
        if (!k.buf) {
            rc = -ENOMEM;
            break;
        }
        memcpy(k.buf, pos + 7 + used, klen + 1);
        for (char *t = strtok(k.buf, " "); t && !rc; t = strtok(NULL, " ")) {
            char *eq = strchr(t, '=');
            size_t vn;
            if (!eq || b64url_decode(eq + 1, strlen(eq + 1), eq + 1, &vn))
                rc = -EPROTO;
            else {
                *eq = '\0';
                eq[1 + vn] = '\0';
                rc = key_set(&k, t, eq + 1);
            }
        }
        if (!rc && k.n) {
            qsort(k.l, k.n, sizeof(k.l[0]), label_cmp);
            struct pfam **nf = NULL;
            size_t nn = 0;
            bool has_ts = false;
            char why[200];
            char invalid[200];
            rc = parse_body(&k, body, (size_t)(next - body), false, pns, &nf, &nn, &has_ts, invalid,
                            why, sizeof(why));
            uint64_t h = key_hash(k.l, k.n);
            struct pgroup *g = rc ? NULL : group_add(p, k.l, k.n, h);
            if (!rc && !g) rc = -ENOMEM;
            if (g) {
                g->push_ns = pns;
                g->fail_ns = fns;
                g->push_time = pt;
                g->fail_time = ft;
                g->touched_ms = pns / 1000000;
                rc = group_apply(g, true, nf, nn);
                loaded++;
            } else {
                fams_free(nf, nn);
            }
        }
        free(k.buf);
        pos = next;
    }
    sbuf_fini(&b);
    if (rc)
        LOG_ERROR("push persistence file %s is damaged (%s); %zu groups loaded", file,
                  strerror(-rc), loaded);
    else
        LOG_INFO("loaded %zu pushed groups from %s", loaded, file);
    return rc == -ENOMEM ? rc : 0;
}

/* ---- parsing without a server (tests, fuzzing) ------------------------------------------ */

int push_parse(const char *subpath, const uint8_t *body, size_t len, bool protobuf,
               size_t *nsamples, char *why, size_t wlen) {
    struct gkey k;
    char w[400] = "";
    int rc = parse_key(subpath, &k, w, sizeof(w));
    struct pfam **nf = NULL;
    size_t nn = 0;
    bool has_ts = false;
    char invalid[200] = "";
    if (!rc)
        rc = parse_body(&k, (const char *)body, len, protobuf, 0, &nf, &nn, &has_ts, invalid, w,
                        sizeof(w));
    if (!rc && (has_ts || invalid[0])) {
        snprintf(w, sizeof(w), "%s",
                 invalid[0] ? invalid : "pushed metrics must not have timestamps");
        rc = -EINVAL;
    }
    if (nsamples) {
        *nsamples = 0;
        for (size_t i = 0; i < nn; i++)
            *nsamples += nf[i]->n;
    }
    fams_free(nf, nn);
    free(k.buf);
    if (rc == -ENOENT) rc = -EINVAL;
    snprintf(why, wlen, "%s", w);
    return rc;
}

/* ---- module ---------------------------------------------------------------------------- */

size_t push_groups(struct push *p) {
    if (!p) return 0;
    pthread_mutex_lock(&p->lock);
    size_t n = p->ngroups;
    pthread_mutex_unlock(&p->lock);
    return n;
}

struct push_cfg {
    int64_t ttl_ms, interval_ms;
    char *file;
};

static int push_prepare(struct agent *a, const struct config *nc, void **staged, struct perr *err) {
    (void)a;
    if (nc->push_group_ttl_ms < 0 || nc->push_persistence_interval_ms < 0)
        return perr_set(err, 0, 0, "push: durations must not be negative");
    struct push_cfg *c = calloc(1, sizeof(*c));
    if (!c) return -ENOMEM;
    c->ttl_ms = nc->push_group_ttl_ms;
    c->interval_ms = nc->push_persistence_interval_ms ? nc->push_persistence_interval_ms
                                                      : DEF_PUSH_PERSISTENCE_INTERVAL_MS;
    if (nc->push_persistence_file && *nc->push_persistence_file) {
        c->file = strdup(nc->push_persistence_file);
        if (!c->file) {
            free(c);
            return -ENOMEM;
        }
    }
    *staged = c;
    return 0;
}

static void push_abort(void *staged) {
    struct push_cfg *c = staged;
    if (c) free(c->file);
    free(c);
}

static void push_commit(struct agent *a, void *staged) {
    struct push *p = a->push;
    struct push_cfg *c = staged;
    pthread_mutex_lock(&p->lock);
    p->ttl_ms = c->ttl_ms;
    p->interval_ms = c->interval_ms;
    free(p->file);
    p->file = c->file;
    c->file = NULL;
    pthread_mutex_unlock(&p->lock);
    push_abort(c);
}

static void push_tick(struct agent *a, int64_t now_ms) {
    struct push *p = a->push;
    pthread_mutex_lock(&p->lock);
    if (p->ttl_ms > 0)
        for (size_t i = p->ngroups; i-- > 0;)
            if (now_ms - p->groups[i]->touched_ms > p->ttl_ms) {
                group_remove(p, i);
                p->dirty = true;
            }
    bool due = p->file && p->dirty && now_ms - p->last_persist_ms >= p->interval_ms;
    pthread_mutex_unlock(&p->lock);
    if (due) {
        p->last_persist_ms = now_ms;
        persist(p);
    }
}

static void push_stop(struct agent *a) {
    struct push *p = a->push;
    if (!p) return;
    if (p->file && p->dirty) persist(p);
    while (p->ngroups)
        group_remove(p, p->ngroups - 1);
    free(p->groups);
    free(p->file);
    mset_free(p->own);
    pthread_mutex_destroy(&p->lock);
    free(p);
    a->push = NULL;
}

static int push_start(struct agent *a, struct perr *err) {
    struct push *p = calloc(1, sizeof(*p));
    if (!p) return perr_set(err, 0, 0, "out of memory");
    pthread_mutex_init(&p->lock, NULL);
    p->a = a;
    a->push = p;
    p->max_body = a->flags->max_request_bytes ? a->flags->max_request_bytes : DEF_MAX_REQUEST_BYTES;
    p->interval_ms = DEF_PUSH_PERSISTENCE_INTERVAL_MS;
    p->last_persist_ms = agent_now_ms();
    /* promlet's own families, for the type check Pushgateway makes against its own. */
    p->own = mset_new();
    if (p->own) {
        selfmon_write(a, p->own);
        if (a->http) http_write_metrics(a->http, p->own);
        if (a->collectors) collectors_scrape(a->collectors, p->own);
    }
    const struct http_route routes[] = {
        {"/metrics/job", true, HTTP_PUT | HTTP_POST | HTTP_DELETE, "push", handle_push, p, 0},
        {"/api/v1/metrics", false, HTTP_GET, "/api/v1/metrics", handle_api_metrics, p, 0},
        {"/api/v1/admin/wipe", false, HTTP_PUT, "/api/v1/admin/wipe", handle_wipe, p, 0},
    };
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        if (http_route(a->http, &routes[i])) return perr_set(err, 0, 0, "too many HTTP routes");
    const char *file = a->cfg ? a->cfg->push_persistence_file : NULL;
    if (file && *file) {
        int rc = load(p, file);
        if (rc) return perr_set(err, 0, 0, "reading %s: %s", file, strerror(-rc));
    }
    return 0;
}

const struct agent_module mod_push = {
    .name = "push",
    .start = push_start,
    .prepare = push_prepare,
    .commit = push_commit,
    .abort = push_abort,
    .metrics = push_metrics,
    .tick = push_tick,
    .stop = push_stop,
};
