/* SPDX-License-Identifier: Apache-2.0 */
/* The rule manager: rule groups evaluated on the engine thread's loop, on their interval and on
 * ingestion events, with Prometheus' rules/manager.go + group.go semantics. */
#include "engine.h"

#include "collector.h"
#include "defaults.h"
#include "expose.h"
#include "http.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "store.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set on the engine thread: its own appends (rule outputs, sampled collectors) do not go
 * through the touch hook, or every ALERTS write would re-trigger the rules reading ALERTS. */
static __thread bool on_engine_thread;

static double mono_s(void);

/* ---- output series keys ------------------------------------------------------------------ */

/* A series as a byte string: name\0value\0 per label, labels sorted by name. The previous
 * evaluation's keys tell which series went away and need a stale marker (group.go's
 * seriesInPreviousEval). */
struct okey {
    char *buf;
    size_t len;
    double v;
    const struct re_hist *h; /* borrowed from the evaluation result, NULL for floats */
};

struct oset {
    struct okey *k;
    size_t n, cap;
};

static int okey_cmp(const void *a, const void *b) {
    const struct okey *x = a, *y = b;
    size_t m = x->len < y->len ? x->len : y->len;
    int c = m ? memcmp(x->buf, y->buf, m) : 0;
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static void oset_free(struct oset *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->k[i].buf);
    free(s->k);
    *s = (struct oset){0};
}

/* Adds labels (sorted, borrowed) as a key with value v. Returns 0 or -ENOMEM. */
static int oset_add(struct oset *s, const struct re_label *l, size_t n, double v,
                    const struct re_hist *h) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct okey *k = realloc(s->k, cap * sizeof(*k));
        if (!k) return -ENOMEM;
        s->k = k;
        s->cap = cap;
    }
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += strlen(l[i].name) + strlen(l[i].value) + 2;
    char *buf = malloc(len ? len : 1);
    if (!buf) return -ENOMEM;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        memcpy(buf + off, l[i].name, a);
        memcpy(buf + off + a, l[i].value, b);
        off += a + b;
    }
    s->k[s->n++] = (struct okey){.buf = buf, .len = len, .v = v, .h = h};
    return 0;
}

/* Splits a key back into labels pointing into it (at most max). Returns the count. */
static size_t okey_labels(const struct okey *k, struct re_label *out, size_t max) {
    size_t n = 0, off = 0;
    while (off < k->len && n < max) {
        out[n].name = k->buf + off;
        off += strlen(k->buf + off) + 1;
        out[n].value = k->buf + off;
        off += strlen(k->buf + off) + 1;
        n++;
    }
    return n;
}

/* ---- label sets under construction ---------------------------------------------------------- */

#define LSET_MAX 64 /* DEF_MAX_LABELS_PER_SERIES */

struct lset {
    struct re_label l[LSET_MAX];
    size_t n;
};

/* Sets name=value, replacing an existing label; an empty value deletes it (Prometheus'
 * labels.Builder). Returns 0 or -E2BIG. */
static int lset_set(struct lset *s, const char *name, const char *value) {
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->l[i].name, name)) {
            if (*value)
                s->l[i].value = value;
            else
                s->l[i] = s->l[--s->n];
            return 0;
        }
    if (!*value) return 0;
    if (s->n == LSET_MAX) return -E2BIG;
    s->l[s->n++] = (struct re_label){name, value};
    return 0;
}

static int label_cmp(const void *a, const void *b) {
    return strcmp(((const struct re_label *)a)->name, ((const struct re_label *)b)->name);
}

/* ---- the rule set -----------------------------------------------------------------------------
 */

/* An alert a webhook's emulated Alertmanager holds as firing: what Prometheus last sent of it,
 * kept so that it can expire at endsAt even after the rule fails or drops the alert. */
struct whalert {
    uint64_t fp;
    int64_t starts_at, ends_at;
    struct re_label *labels; /* labels then annotations, one block with their strings */
    size_t nlabels, nannotations;
};

struct whset {
    struct whalert *v; /* sorted by fp: the firing alerts at the last check */
    size_t n;
};

struct erule {
    const struct rulefile_rule *def; /* borrowed from the rule set's files */
    struct alert_rule *alert;        /* NULL for a recording rule */
    /* What the rule selects: exact metric names, and selectors without one (their __name__
     * matcher, NULL when the selector has none and may match any name). */
    const char **names;
    size_t nnames;
    const struct re_matcher **wild;
    size_t nwild;
    bool reads_alerts; /* selects ALERTS or ALERTS_FOR_STATE */
    size_t *readers;   /* recording rule: later rules of the group selecting its name */
    size_t nreaders;
    bool dirty;       /* guarded by engine.mu */
    bool claimed;     /* state taken over by the next rule set */
    struct oset prev; /* output series of the last successful evaluation */
    struct whset *wh; /* per webhook of the rule set */
    char *genurl;
    char *query; /* recording rule: the expr as Prometheus prints it (alerting: in alert) */
    /* recording rules' health */
    enum alert_health health;
    char last_error[256];
};

struct egroup {
    struct engine *e;
    struct rulefile_group *def;
    const char *file;
    char *key; /* "file;name", Prometheus' group key */
    int64_t interval_ms;
    struct erule *rules;
    size_t nrules;
    size_t *alert_readers; /* indices of the rules with reads_alerts, ascending */
    size_t nalert_readers;
    struct payload_rule *prules;
    struct payload_rule_group pg;
    int64_t timer;
    int64_t last_ts; /* evaluation timestamp of the last evaluation (monotone per group) */
    int64_t slot_ms; /* the slots' offset in the interval (Prometheus' group hash) */
    int32_t slot_ns; /* its sub-ms nanoseconds */
    int32_t eval_ns; /* sub-ms ns of the evaluation running (slot_ns or 0); under e->lock */
    bool dirty;      /* guarded by engine.mu */
};

struct ewebhook {
    char *url;
    bool send_resolved;
    uint32_t max_alerts;
    int64_t timeout_ms;
};

struct eam {
    char *url; /* <scheme>://<target><path_prefix>/api/v2/alerts */
    int64_t timeout_ms;
};

/* The touch hook's index: exact metric names (sorted) and selectors without one. */
struct nameref {
    const char *name;
    struct erule *r;
    struct egroup *g;
};
struct wildref {
    const struct re_matcher *m; /* NULL: any name */
    struct erule *r;
    struct egroup *g;
};

struct ruleset {
    struct nameref *names;
    size_t nnames;
    struct wildref *wild;
    size_t nwild;
    struct rulefile **files;
    size_t nfiles;
    struct egroup *groups;
    size_t ngroups;
    const struct alert_rule **alerts;
    size_t nalerts;
    /* from the config, copied: the config may be freed before the engine thread applies us */
    struct re_label *ext;
    size_t next;
    struct ewebhook *wh;
    size_t nwh;
    struct eam *am;
    size_t nam;
    int64_t resend_delay_ms;
    int64_t sample_interval_ms;
    int64_t lookback_ms;
    size_t max_samples;
    size_t queue_capacity;
};

struct engine {
    struct agent *a;
    pthread_mutex_t mu;    /* guards rs (for the hook), dirty flags, pending */
    pthread_rwlock_t lock; /* evaluation state vs. API readers */
    struct ruleset *rs;
    struct ruleset *pending;
    struct loop *loop;
    pthread_t thread;
    bool thread_started;
    int64_t sample_timer;
    int64_t event_timer;     /* pending re-run of run_dirty for groups left over budget */
    double budget, budget_t; /* event-evaluation CPU budget (s) and when it was refilled */
    size_t turn;             /* the group run_dirty looks at first */
    bool collectors_idle;    /* the last sampling found no selected family */
    char *external_url;
    bool compat_v2;
    bool no_events; /* --no-rules.event-evaluation: interval evaluations only */
    /* self metrics, under lock */
    uint64_t evals_total, eval_failures_total, event_evals_total;
    uint64_t dur_counts[12];
    double dur_sum;
    uint64_t dur_count;
};

static const double dur_bounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                    0.01,   0.025,   0.05,   0.1,   1};
#define NDUR (sizeof(dur_bounds) / sizeof(dur_bounds[0]))

/* Event evaluations use at most 1/EVENT_DUTY of a CPU over time, with bursts of up to
 * EVENT_BURST_S of CPU (see run_dirty). */
#define EVENT_DUTY 100.0
#define EVENT_BURST_S 0.05

static void whset_fini(struct whset *s) {
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].labels);
    free(s->v);
    *s = (struct whset){0};
}

static void ruleset_free(struct ruleset *rs) {
    if (!rs) return;
    for (size_t g = 0; g < rs->ngroups; g++) {
        struct egroup *eg = &rs->groups[g];
        for (size_t r = 0; r < eg->nrules; r++) {
            struct erule *er = &eg->rules[r];
            alert_rule_free(er->alert);
            free(er->names);
            free(er->wild);
            free(er->readers);
            oset_free(&er->prev);
            if (er->wh)
                for (size_t w = 0; w < rs->nwh; w++)
                    whset_fini(&er->wh[w]);
            free(er->wh);
            free(er->genurl);
            free(er->query);
        }
        free(eg->rules);
        free(eg->alert_readers);
        free(eg->prules);
        free(eg->key);
    }
    free(rs->groups);
    free(rs->alerts);
    free(rs->names);
    free(rs->wild);
    for (size_t i = 0; i < rs->nfiles; i++)
        rulefile_free(rs->files[i]);
    free(rs->files);
    for (size_t i = 0; i < rs->next; i++) {
        free((char *)rs->ext[i].name);
        free((char *)rs->ext[i].value);
    }
    free(rs->ext);
    for (size_t i = 0; i < rs->nwh; i++)
        free(rs->wh[i].url);
    free(rs->wh);
    for (size_t i = 0; i < rs->nam; i++)
        free(rs->am[i].url);
    free(rs->am);
    free(rs);
}

struct sel_ctx {
    struct erule *r;
    int rc;
};

static int collect_selector(void *arg, const struct re_matcher *m, size_t nm) {
    struct erule *r = ((struct sel_ctx *)arg)->r;
    const struct re_matcher *namem = NULL;
    for (size_t i = 0; i < nm; i++)
        if (!strcmp(m[i].name, "__name__")) {
            namem = &m[i];
            if (m[i].type == RE_MATCH_EQ) break;
        }
    if (namem && namem->type == RE_MATCH_EQ) {
        const char **n = realloc(r->names, (r->nnames + 1) * sizeof(*n));
        if (!n) return -ENOMEM;
        r->names = n;
        r->names[r->nnames++] = namem->value;
    } else {
        const struct re_matcher **w = realloc(r->wild, (r->nwild + 1) * sizeof(*w));
        if (!w) return -ENOMEM;
        r->wild = w;
        r->wild[r->nwild++] = namem;
    }
    return 0;
}

/* True if rule r selects metric name. */
static bool rule_selects(const struct erule *r, const char *name) {
    for (size_t i = 0; i < r->nnames; i++)
        if (!strcmp(r->names[i], name)) return true;
    for (size_t i = 0; i < r->nwild; i++)
        if (!r->wild[i] || re_matcher_matches(r->wild[i], name)) return true;
    return false;
}

/* Which later rules of the group read what each rule writes, worked out once per rule set so
 * that an event evaluation does not compare selectors: readers of a recording rule's name per
 * rule, and the rules reading ALERTS / ALERTS_FOR_STATE. Returns 0 / -ENOMEM. */
static int link_readers(struct egroup *g) {
    for (size_t i = 0; i < g->nrules; i++) {
        struct erule *r = &g->rules[i];
        r->reads_alerts = rule_selects(r, "ALERTS") || rule_selects(r, "ALERTS_FOR_STATE");
        if (r->reads_alerts) g->nalert_readers++;
    }
    if (g->nalert_readers && !(g->alert_readers = calloc(g->nalert_readers, sizeof(size_t))))
        return -ENOMEM;
    for (size_t i = 0, k = 0; i < g->nrules; i++)
        if (g->rules[i].reads_alerts) g->alert_readers[k++] = i;
    for (size_t i = 0; i < g->nrules; i++) {
        struct erule *r = &g->rules[i];
        if (r->alert) continue;
        for (size_t j = i + 1; j < g->nrules; j++) {
            if (!rule_selects(&g->rules[j], r->def->name)) continue;
            size_t *nr = realloc(r->readers, (r->nreaders + 1) * sizeof(*nr));
            if (!nr) return -ENOMEM;
            r->readers = nr;
            r->readers[r->nreaders++] = j;
        }
    }
    return 0;
}

static char *read_file(const char *path, size_t *len, struct perr *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perr_set(err, 0, 0, "%s: %s", path, strerror(errno));
        return NULL;
    }
    struct sbuf b;
    sbuf_init(&b);
    char tmp[65536];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        if (sbuf_add(&b, tmp, n)) {
            fclose(f);
            sbuf_fini(&b);
            perr_set(err, 0, 0, "out of memory");
            return NULL;
        }
    fclose(f);
    return sbuf_steal(&b, len);
}

/* Loads one rule file into rs. */
static int load_file(struct ruleset *rs, const char *path, bool legacy, struct perr *err) {
    size_t len = 0;
    char *buf = read_file(path, &len, err);
    if (!buf) return -ENOENT;
    struct rulefile_opts o = {.legacy_names = legacy, .compat_v2 = legacy};
    struct perr fe = {0};
    struct rulefile *f = rulefile_load(path, buf ? buf : "", len, &o, &fe);
    free(buf);
    if (!f) {
        /* Reported against the config as "rule file:line:col: msg". */
        if (fe.line)
            perr_set(err, 0, 0, "%s:%d:%d: %s", path, fe.line, fe.col, fe.msg);
        else
            perr_set(err, 0, 0, "%s: %s", path, fe.msg);
        return -EINVAL;
    }
    struct rulefile **nf = realloc(rs->files, (rs->nfiles + 1) * sizeof(*nf));
    if (!nf) {
        rulefile_free(f);
        return perr_set(err, 0, 0, "out of memory"), -ENOMEM;
    }
    rs->files = nf;
    rs->files[rs->nfiles++] = f;
    return 0;
}

struct load_ctx {
    struct ruleset *rs;
    bool legacy;
    struct perr *err;
};

static int load_one(void *arg, const char *path) {
    struct load_ctx *lc = arg;
    return load_file(lc->rs, path, lc->legacy, lc->err);
}

/* Loads every file the config's rule_files globs name. */
static int load_files(struct ruleset *rs, const struct config *c, bool legacy, struct perr *err) {
    struct load_ctx lc = {rs, legacy, err};
    return config_rule_files(c, load_one, &lc, err);
}

static char *xstrdup(const char *s, int *rc) {
    char *d = strdup(s ? s : "");
    if (!d) *rc = -ENOMEM;
    return d;
}

static int nameref_cmp(const void *a, const void *b) {
    return strcmp(((const struct nameref *)a)->name, ((const struct nameref *)b)->name);
}

/* Builds the hook's index so a touch costs a binary search, not a scan of every rule. */
static int ruleset_index(struct ruleset *rs) {
    size_t nn = 0, nw = 0;
    for (size_t g = 0; g < rs->ngroups; g++)
        for (size_t r = 0; r < rs->groups[g].nrules; r++) {
            nn += rs->groups[g].rules[r].nnames;
            nw += rs->groups[g].rules[r].nwild;
        }
    if ((nn && !(rs->names = calloc(nn, sizeof(*rs->names)))) ||
        (nw && !(rs->wild = calloc(nw, sizeof(*rs->wild)))))
        return -ENOMEM;
    for (size_t g = 0; g < rs->ngroups; g++)
        for (size_t r = 0; r < rs->groups[g].nrules; r++) {
            struct erule *er = &rs->groups[g].rules[r];
            for (size_t i = 0; i < er->nnames; i++)
                rs->names[rs->nnames++] = (struct nameref){er->names[i], er, &rs->groups[g]};
            for (size_t i = 0; i < er->nwild; i++)
                rs->wild[rs->nwild++] = (struct wildref){er->wild[i], er, &rs->groups[g]};
        }
    if (rs->nnames > 1) qsort(rs->names, rs->nnames, sizeof(*rs->names), nameref_cmp);
    return 0;
}

/* Builds groups, rules, selectors and the copied config of a rule set. */

/* ---- evaluation slots ------------------------------------------------------------------------ */

/* XXH64 with seed 0 (the xxhash that Prometheus' labels.Hash uses). */
#define XXP1 0x9E3779B185EBCA87ULL
#define XXP2 0xC2B2AE3D27D4EB4FULL
#define XXP3 0x165667B19E3779F9ULL
#define XXP4 0x85EBCA77C2B2AE63ULL
#define XXP5 0x27D4EB2F165667C5ULL

static uint64_t xx_rotl(uint64_t x, int r) {
    return (x << r) | (x >> (64 - r));
}

static uint64_t xx_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t xx_round(uint64_t acc, uint64_t in) {
    return xx_rotl(acc + in * XXP2, 31) * XXP1;
}

static uint64_t xx_merge(uint64_t acc, uint64_t v) {
    return (acc ^ xx_round(0, v)) * XXP1 + XXP4;
}

static uint64_t xxh64(const unsigned char *p, size_t n) {
    const unsigned char *end = p + n;
    uint64_t h;
    if (n >= 32) {
        uint64_t v1 = XXP1 + XXP2, v2 = XXP2, v3 = 0, v4 = 0 - XXP1;
        for (; end - p >= 32; p += 32) {
            v1 = xx_round(v1, xx_le(p, 8));
            v2 = xx_round(v2, xx_le(p + 8, 8));
            v3 = xx_round(v3, xx_le(p + 16, 8));
            v4 = xx_round(v4, xx_le(p + 24, 8));
        }
        h = xx_rotl(v1, 1) + xx_rotl(v2, 7) + xx_rotl(v3, 12) + xx_rotl(v4, 18);
        h = xx_merge(xx_merge(xx_merge(xx_merge(h, v1), v2), v3), v4);
    } else {
        h = XXP5;
    }
    h += n;
    for (; end - p >= 8; p += 8)
        h = xx_rotl(h ^ xx_round(0, xx_le(p, 8)), 27) * XXP1 + XXP4;
    if (end - p >= 4) {
        h = xx_rotl(h ^ xx_le(p, 4) * XXP1, 23) * XXP2 + XXP3;
        p += 4;
    }
    for (; p < end; p++)
        h = xx_rotl(h ^ *p * XXP5, 11) * XXP1;
    h ^= h >> 33;
    h *= XXP2;
    h ^= h >> 29;
    h *= XXP3;
    return h ^ (h >> 32);
}

/* Group.EvalTimestamp: a group's evaluations fall at hash({file, name}) modulo its interval
 * (in ns) past each multiple of the interval, so groups spread over the interval and the
 * same file and group evaluate at the same instants as in Prometheus. Returns that offset in
 * ns (sample timestamps take its whole ms, truncated; the API prints activeAt in ns). */
static int64_t slot_offset_ns(const char *file, const char *name, int64_t interval_ms) {
    if (interval_ms <= 0) return 0;
    size_t fl = strlen(file), nl = strlen(name);
    unsigned char *b = malloc(fl + nl + 12);
    if (!b) return 0; /* only the spread is lost */
    size_t n = 0;
    memcpy(b + n, "file\xff", 5);
    n += 5;
    memcpy(b + n, file, fl);
    n += fl;
    memcpy(b + n, "\xffname\xff", 6);
    n += 6;
    memcpy(b + n, name, nl);
    n += nl;
    b[n++] = 0xff;
    uint64_t h = xxh64(b, n);
    free(b);
    return (int64_t)(h % ((uint64_t)interval_ms * 1000000u));
}

/* How early a timer may fire and still evaluate the slot ahead (eval_group). */
static int64_t slot_early(const struct egroup *g) {
    return g->interval_ms / 2 < 50 ? g->interval_ms / 2 : 50;
}

static int ruleset_build(struct ruleset *rs, const struct config *c, struct perr *err) {
    int rc = 0;
    rs->resend_delay_ms = c->resend_delay_ms > 0 ? c->resend_delay_ms : DEF_RESEND_DELAY_MS;
    rs->sample_interval_ms = c->collectors_sample_interval_ms > 0
                                 ? c->collectors_sample_interval_ms
                                 : DEF_COLLECTORS_SAMPLE_INTERVAL_MS;
    rs->lookback_ms = c->query_lookback_delta_ms > 0 ? c->query_lookback_delta_ms : DEF_LOOKBACK_MS;
    rs->max_samples = c->query_max_samples ? c->query_max_samples : DEF_QUERY_MAX_SAMPLES;
    rs->queue_capacity =
        c->notification_queue_capacity ? c->notification_queue_capacity : DEF_NOTIFY_QUEUE;
    if (c->nexternal && !(rs->ext = calloc(c->nexternal, sizeof(*rs->ext)))) goto oom;
    for (; rs->next < c->nexternal; rs->next++) {
        rs->ext[rs->next].name = xstrdup(c->external_labels[rs->next].name, &rc);
        rs->ext[rs->next].value = xstrdup(c->external_labels[rs->next].value, &rc);
    }
    if (c->nwebhooks && !(rs->wh = calloc(c->nwebhooks, sizeof(*rs->wh)))) goto oom;
    for (; rs->nwh < c->nwebhooks; rs->nwh++) {
        const struct cfg_webhook *w = &c->webhooks[rs->nwh];
        rs->wh[rs->nwh] = (struct ewebhook){
            .url = xstrdup(w->url, &rc),
            .send_resolved = w->send_resolved,
            .max_alerts = w->max_alerts,
            .timeout_ms = w->timeout_ms > 0 ? w->timeout_ms : DEF_NOTIFY_TIMEOUT_MS};
    }
    size_t nam = 0;
    for (size_t i = 0; i < c->nalertmanagers; i++)
        nam += c->alertmanagers[i].ntargets;
    if (nam && !(rs->am = calloc(nam, sizeof(*rs->am)))) goto oom;
    for (size_t i = 0; i < c->nalertmanagers; i++) {
        const struct cfg_alertmanager *am = &c->alertmanagers[i];
        const char *pp = am->path_prefix ? am->path_prefix : "";
        size_t pl = strlen(pp);
        while (pl && pp[pl - 1] == '/')
            pl--;
        for (size_t t = 0; t < am->ntargets; t++) {
            char url[2048];
            snprintf(url, sizeof(url), "%s://%s%.*s/api/v2/alerts",
                     am->scheme ? am->scheme : "http", am->targets[t], (int)pl, pp);
            rs->am[rs->nam++] = (struct eam){
                .url = xstrdup(url, &rc),
                .timeout_ms = am->timeout_ms > 0 ? am->timeout_ms : DEF_NOTIFY_TIMEOUT_MS};
        }
    }
    if (rc) goto oom;

    size_t ng = 0, nalerts = 0;
    for (size_t f = 0; f < rs->nfiles; f++) {
        ng += rs->files[f]->ngroups;
        for (size_t g = 0; g < rs->files[f]->ngroups; g++)
            for (size_t r = 0; r < rs->files[f]->groups[g].nrules; r++)
                nalerts += rs->files[f]->groups[g].rules[r].kind == RULEFILE_ALERT;
    }
    if (ng && !(rs->groups = calloc(ng, sizeof(*rs->groups)))) goto oom;
    if (nalerts && !(rs->alerts = calloc(nalerts, sizeof(*rs->alerts)))) goto oom;
    int64_t def_iv =
        c->evaluation_interval_ms > 0 ? c->evaluation_interval_ms : DEF_EVALUATION_INTERVAL_MS;
    for (size_t f = 0; f < rs->nfiles; f++)
        for (size_t g = 0; g < rs->files[f]->ngroups; g++) {
            struct rulefile_group *rg = &rs->files[f]->groups[g];
            struct egroup *eg = &rs->groups[rs->ngroups++];
            eg->def = rg;
            eg->file = rs->files[f]->name;
            eg->interval_ms = rg->interval_ms > 0 ? rg->interval_ms : def_iv;
            int64_t off_ns = slot_offset_ns(eg->file, rg->name, eg->interval_ms);
            eg->slot_ms = off_ns / 1000000;
            eg->slot_ns = (int32_t)(off_ns % 1000000);
            eg->last_ts = INT64_MIN;
            size_t kl = strlen(eg->file) + strlen(rg->name) + 2;
            if (!(eg->key = malloc(kl))) goto oom;
            snprintf(eg->key, kl, "%s;%s", eg->file, rg->name);
            if (rg->nrules && (!(eg->rules = calloc(rg->nrules, sizeof(*eg->rules))) ||
                               !(eg->prules = calloc(rg->nrules, sizeof(*eg->prules)))))
                goto oom;
            for (; eg->nrules < rg->nrules; eg->nrules++) {
                struct erule *er = &eg->rules[eg->nrules];
                struct payload_rule *pr = &eg->prules[eg->nrules];
                er->def = &rg->rules[eg->nrules];
                er->health = ALERT_HEALTH_UNKNOWN;
                if (er->def->kind == RULEFILE_ALERT) {
                    if (!(er->alert = alert_rule_new(er->def, rg))) goto oom;
                    rs->alerts[rs->nalerts++] = er->alert;
                } else if (!(er->query = er->def->ast ? promql_expr_string(er->def->ast)
                                                      : strdup(er->def->expr))) {
                    goto oom;
                }
                if (rs->nwh && !(er->wh = calloc(rs->nwh, sizeof(*er->wh)))) goto oom;
                struct sel_ctx sc = {.r = er};
                if (promql_foreach_selector(er->def->ast, collect_selector, &sc)) goto oom;
                *pr = (struct payload_rule){.alert = er->alert,
                                            .name = er->def->name,
                                            .query = er->query, /* NULL: alert's */
                                            .labels = er->def->labels,
                                            .nlabels = er->def->nlabels,
                                            .health = ALERT_HEALTH_UNKNOWN,
                                            .last_eval_ms = ALERT_TS_NONE};
            }
            if (link_readers(eg)) goto oom;
            eg->pg = (struct payload_rule_group){.name = rg->name,
                                                 .file = eg->file,
                                                 .interval_ms = eg->interval_ms,
                                                 .limit = rg->limit,
                                                 .last_eval_ms = ALERT_TS_NONE,
                                                 .rules = eg->prules,
                                                 .nrules = eg->nrules};
        }
    if (ruleset_index(rs)) goto oom;
    return 0;
oom:
    return perr_set(err, 0, 0, "out of memory"), -ENOMEM;
}

/* ---- evaluation ---------------------------------------------------------------------------- */

static const char *ext_url(const struct engine *e) {
    return e->external_url ? e->external_url : "";
}

static int64_t wall_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void promql_options(struct engine *e, const struct ruleset *rs, struct promql_opts *o) {
    promql_opts_default(o);
    o->lookback_ms = rs->lookback_ms;
    o->max_samples = rs->max_samples;
    o->compat_v2 = e->compat_v2;
}

/* template_query_fn for query() in alert templates: an instant query at the evaluation time. */
static int tmpl_query(void *arg, const char *expr, int64_t ts_ms, template_emit_fn *emit,
                      void *emit_arg, char *errbuf, size_t errlen) {
    struct engine *e = arg;
    struct perr err = {0};
    struct promql_expr *x = promql_parse_compat(expr, e->compat_v2, &err);
    if (!x) {
        /* ParseErrors.Error(): "line:col: parse error: ..." */
        if (err.line)
            snprintf(errbuf, errlen, "%d:%d: %s", err.line, err.col, err.msg);
        else
            snprintf(errbuf, errlen, "%s", err.msg);
        return -EINVAL;
    }
    struct re_source src;
    store_source(e->a->store, &src);
    struct promql_opts o;
    promql_options(e, e->rs, &o);
    struct promql_result *res = NULL;
    int rc = promql_eval_instant(x, &src, ts_ms, &o, &res, &err);
    promql_free(x);
    if (rc) {
        snprintf(errbuf, errlen, "%s", err.msg);
        return rc;
    }
    if (res->type == PROMQL_SCALAR)
        rc = emit(emit_arg, NULL, 0, res->scalar);
    else if (res->type == PROMQL_VECTOR)
        for (size_t i = 0; i < res->nseries && !rc; i++)
            if (res->series[i].npoints)
                rc = emit(emit_arg, res->series[i].labels, res->series[i].nlabels,
                          res->series[i].points[0].h ? 0.0 : res->series[i].points[0].v);
    if (res->type != PROMQL_SCALAR && res->type != PROMQL_VECTOR) {
        snprintf(errbuf, errlen, "rule result is not a vector or scalar");
        rc = -EINVAL;
    }
    promql_result_free(res);
    return rc;
}

static int add_alert_series(void *arg, const struct re_label *labels, size_t n, double v) {
    return oset_add(arg, labels, n, v, NULL);
}

/* Appends outs (sorted) and stale markers for prev keys missing from outs; then outs becomes
 * the rule's prev (group.go: seriesInPreviousEval / staleness markers). */
static void write_outputs(struct engine *e, struct erule *r, struct oset *outs, int64_t ts) {
    struct oset *prev = &r->prev;
    size_t cap = outs->n + prev->n;
    struct store_sample *b = cap ? calloc(cap, sizeof(*b)) : NULL;
    struct re_label *lab = cap ? calloc(cap * LSET_MAX, sizeof(*lab)) : NULL;
    if (cap && (!b || !lab)) {
        free(b);
        free(lab);
        oset_free(outs);
        return;
    }
    size_t n = 0, i = 0, k = 0;
    for (; i < outs->n; i++) {
        struct okey *o = &outs->k[i];
        struct re_label *l = lab + n * LSET_MAX;
        b[n] = (struct store_sample){
            .labels = l, .nlabels = okey_labels(o, l, LSET_MAX), .ts = ts, .v = o->v, .h = o->h};
        n++;
        while (k < prev->n && okey_cmp(&prev->k[k], o) < 0) {
            struct re_label *sl = lab + n * LSET_MAX;
            b[n] = (struct store_sample){.labels = sl,
                                         .nlabels = okey_labels(&prev->k[k], sl, LSET_MAX),
                                         .ts = ts,
                                         .v = re_stale_nan()};
            n++;
            k++;
        }
        if (k < prev->n && !okey_cmp(&prev->k[k], o)) k++;
    }
    for (; k < prev->n; k++) {
        struct re_label *sl = lab + n * LSET_MAX;
        b[n] = (struct store_sample){.labels = sl,
                                     .nlabels = okey_labels(&prev->k[k], sl, LSET_MAX),
                                     .ts = ts,
                                     .v = re_stale_nan()};
        n++;
    }
    if (n) {
        struct store_result res;
        int rc = store_append_batch(e->a->store, b, n, 0, &res);
        if (rc || res.out_of_order || res.duplicates)
            LOG_DEBUG("rule %s: %zu of %zu output samples not stored", r->def->name,
                      n - res.appended, n);
    }
    free(b);
    free(lab);
    for (size_t j = 0; j < outs->n; j++)
        outs->k[j].h = NULL;
    oset_free(prev);
    *prev = *outs;
    *outs = (struct oset){0};
}

/* Recording rule: the result with __name__ replaced and the group's then the rule's labels
 * applied (rules/recording.go). */
static int eval_recording(struct engine *e, struct egroup *g, struct erule *r,
                          const struct promql_result *res, int64_t ts, struct perr *err) {
    struct oset outs = {0};
    const struct rulefile_rule *d = r->def;
    int rc = 0;
    size_t nres = res->type == PROMQL_SCALAR ? 1 : res->nseries;
    for (size_t i = 0; i < nres && !rc; i++) {
        struct lset s = {.n = 0};
        double v;
        const struct re_hist *h = NULL;
        if (res->type == PROMQL_SCALAR) {
            v = res->scalar;
        } else {
            const struct promql_series *ps = &res->series[i];
            if (!ps->npoints) continue;
            v = ps->points[0].v;
            h = ps->points[0].h;
            for (size_t k = 0; k < ps->nlabels && !rc; k++)
                if (strcmp(ps->labels[k].name, "__name__"))
                    rc = lset_set(&s, ps->labels[k].name, ps->labels[k].value);
        }
        for (size_t k = 0; k < g->def->nlabels && !rc; k++)
            rc = lset_set(&s, g->def->labels[k].name, g->def->labels[k].value);
        for (size_t k = 0; k < d->nlabels && !rc; k++)
            rc = lset_set(&s, d->labels[k].name, d->labels[k].value);
        if (!rc) rc = lset_set(&s, "__name__", d->name);
        if (rc) break;
        if (s.n > 1) qsort(s.l, s.n, sizeof(s.l[0]), label_cmp);
        rc = oset_add(&outs, s.l, s.n, v, h);
    }
    if (rc) {
        oset_free(&outs);
        return perr_set(err, 0, 0, rc == -ENOMEM ? "out of memory" : "too many labels");
    }
    if (outs.n > 1) qsort(outs.k, outs.n, sizeof(outs.k[0]), okey_cmp);
    for (size_t i = 1; i < outs.n; i++)
        if (!okey_cmp(&outs.k[i - 1], &outs.k[i])) {
            oset_free(&outs);
            return perr_set(err, 0, 0,
                            "vector contains metrics with the same labelset after applying rule "
                            "labels");
        }
    if (g->def->limit > 0 && outs.n > (size_t)g->def->limit) {
        size_t n = outs.n;
        oset_free(&outs); /* zeroes outs.n */
        return perr_set(err, 0, 0, "exceeded limit of %lld with %zu series",
                        (long long)g->def->limit, n);
    }
    write_outputs(e, r, &outs, ts);
    return 0;
}

/* Caches the rule's generatorURL once the external URL is known. */
static void rule_genurl(struct engine *e, struct erule *r) {
    if (!r->genurl && e->external_url)
        r->genurl = payload_generator_url(e->external_url, alert_rule_expr(r->alert));
}

static int fp_cmp(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* fp_cmp orders arrays of struct whalert and struct whref too: fp is their first member. */
static struct whalert *whset_find(const struct whset *s, uint64_t fp) {
    return s->n ? bsearch(&fp, s->v, s->n, sizeof(*s->v), fp_cmp) : NULL;
}

/* Alert labels with the external labels added where missing, as Prometheus' notifier does. */
static size_t merge_ext(const struct ruleset *rs, const struct re_label *labels, size_t nlabels,
                        struct re_label *out) {
    size_t n = 0;
    for (size_t i = 0; i < nlabels && n < LSET_MAX; i++)
        out[n++] = labels[i];
    for (size_t i = 0; i < rs->next && n < LSET_MAX; i++) {
        bool have = false;
        for (size_t k = 0; k < nlabels; k++)
            have = have || !strcmp(labels[k].name, rs->ext[i].name);
        if (!have) out[n++] = rs->ext[i];
    }
    if (n > 1) qsort(out, n, sizeof(*out), label_cmp);
    return n;
}

/* Fills w with a copy of what Prometheus just sent of a (labels, annotations, endsAt).
 * Returns 0 / -ENOMEM (w unchanged). */
static int whalert_copy(struct whalert *w, const struct alert *a, uint64_t fp, int64_t starts_at) {
    size_t n = a->nlabels + a->nannotations, sz = n * sizeof(struct re_label);
    for (size_t i = 0; i < n; i++) {
        const struct re_label *l = i < a->nlabels ? &a->labels[i] : &a->annotations[i - a->nlabels];
        sz += strlen(l->name) + strlen(l->value) + 2;
    }
    struct re_label *out = malloc(sz ? sz : 1);
    if (!out) return -ENOMEM;
    char *p = (char *)(out + n);
    for (size_t i = 0; i < n; i++) {
        const struct re_label *l = i < a->nlabels ? &a->labels[i] : &a->annotations[i - a->nlabels];
        size_t kn = strlen(l->name) + 1, vn = strlen(l->value) + 1;
        out[i].name = memcpy(p, l->name, kn);
        out[i].value = memcpy(p + kn, l->value, vn);
        p += kn + vn;
    }
    *w = (struct whalert){.fp = fp,
                          .starts_at = starts_at,
                          .ends_at = a->valid_until,
                          .labels = out,
                          .nlabels = a->nlabels,
                          .nannotations = a->nannotations};
    return 0;
}

/* True if an alert a webhook knows as firing has reached its endsAt at ts: Alertmanager
 * resolves it then, whether or not the rule still evaluates. */
static bool wh_expiring(const struct ruleset *rs, const struct erule *r, int64_t ts) {
    for (size_t w = 0; w < rs->nwh; w++)
        for (size_t i = 0; i < r->wh[w].n; i++)
            if (r->wh[w].v[i].ends_at <= ts) return true;
    return false;
}

/* A kept alert of the rule by fingerprint. */
struct whref {
    uint64_t fp;
    const struct alert *a;
};

static const struct alert *whref_find(const struct whref *v, size_t n, uint64_t fp) {
    const struct whref *x = n ? bsearch(&fp, v, n, sizeof(*v), fp_cmp) : NULL;
    return x ? x->a : NULL;
}

/* Plain webhooks: one POST of Alertmanager's webhook payload per change in the rule's set of
 * firing alerts (group_by [alertname], like the experiment's Alertmanager route), resolved
 * alerts included when send_resolved; notify/notify.go's needsUpdate decides. The firing set
 * is Alertmanager's view at ts: alerts Prometheus sent as firing until their endsAt (so a
 * rule that fails, or drops its alerts over its limit, has them resolved then, and fired
 * anew once it sends them again; types.Alert.Merge keeps the earliest startsAt of an
 * overlapping re-send). */
static void send_webhooks(struct engine *e, struct ruleset *rs, struct erule *r, int64_t ts) {
    size_t na = alert_rule_nalerts(r->alert), maxlast = 0;
    for (size_t w = 0; w < rs->nwh; w++)
        maxlast = r->wh[w].n > maxlast ? r->wh[w].n : maxlast;
    size_t cap = na + maxlast ? na + maxlast : 1;
    struct whref *idx = calloc(na ? na : 1, sizeof(*idx));
    struct whalert *cur = calloc(cap, sizeof(*cur));
    const struct alert **cura = calloc(cap, sizeof(*cura));
    struct alert_notice *nt = calloc(cap, sizeof(*nt));
    struct re_label *lab = calloc(cap * LSET_MAX, sizeof(*lab));
    if (!idx || !cur || !cura || !nt || !lab) goto out;
    for (size_t i = 0; i < na; i++) {
        const struct alert *a = alert_rule_alert(r->alert, i);
        idx[i] = (struct whref){payload_fingerprint(a->labels, a->nlabels), a};
    }
    if (na > 1) qsort(idx, na, sizeof(*idx), fp_cmp);
    rule_genurl(e, r);
    for (size_t w = 0; w < rs->nwh; w++) {
        const struct ewebhook *wh = &rs->wh[w];
        struct whset *last = &r->wh[w];
        /* Alertmanager's firing alerts: sent firing and not expired, or held from an earlier
         * send while the rule has no alert of that fingerprint or a new pending one. cur[k]
         * is what is known of it (starts_at, ends_at, the snapshot's labels), cura[k] the
         * rule's alert if it has one. */
        size_t nc = 0;
        bool resent = false;
        for (size_t i = 0; i < na; i++) {
            const struct alert *a = idx[i].a;
            if (a->state != ALERT_FIRING || a->valid_until == ALERT_TS_NONE || a->valid_until <= ts)
                continue;
            const struct whalert *s = whset_find(last, idx[i].fp);
            cur[nc] = s ? *s : (struct whalert){.fp = idx[i].fp, .starts_at = a->fired_at};
            if (a->fired_at < cur[nc].starts_at) cur[nc].starts_at = a->fired_at;
            cur[nc].ends_at = a->valid_until;
            resent = resent || !s || a->last_sent_at == ts;
            nc++;
        }
        for (size_t j = 0; j < last->n; j++) {
            const struct alert *a = whref_find(idx, na, last->v[j].fp);
            if (last->v[j].ends_at > ts && (!a || a->state == ALERT_PENDING))
                cur[nc++] = last->v[j];
        }
        if (nc > 1) qsort(cur, nc, sizeof(*cur), fp_cmp);
        for (size_t k = 0; k < nc; k++) {
            const struct alert *a = whref_find(idx, na, cur[k].fp);
            cura[k] = a && a->state == ALERT_FIRING ? a : NULL;
        }
        bool same = nc == last->n;
        for (size_t k = 0; same && k < nc; k++)
            same = cur[k].fp == last->v[k].fp;
        bool notify;
        if (wh->send_resolved) {
            notify = !same;
        } else {
            notify = false; /* only new firing alerts matter (IsFiringSubset) */
            for (size_t k = 0; k < nc && !notify; k++)
                notify = !whset_find(last, cur[k].fp);
        }
        if (notify) {
            size_t n = 0;
            struct whset cs = {cur, nc};
            /* the rule's alerts in its order, then those only Alertmanager still holds */
            for (size_t i = 0; i < na + last->n; i++) {
                const struct alert *a = NULL;
                uint64_t fp;
                if (i < na) {
                    a = alert_rule_alert(r->alert, i);
                    fp = payload_fingerprint(a->labels, a->nlabels);
                } else {
                    fp = last->v[i - na].fp;
                    if (whref_find(idx, na, fp)) continue; /* seen above */
                }
                const struct whalert *c = whset_find(&cs, fp);
                const struct whalert *old = whset_find(last, fp);
                bool resolved = !c && old && wh->send_resolved;
                if (!c && !resolved) continue;
                const struct alert *src = c ? cura[c - cur] : NULL;
                if (resolved && a && a->state == ALERT_INACTIVE && a->resolved_at != ALERT_TS_NONE)
                    src = a;                              /* Prometheus sent it resolved */
                const struct whalert *snap = c ? c : old; /* what Alertmanager holds */
                struct re_label *l = lab + n * LSET_MAX;
                nt[n] = (struct alert_notice){
                    .labels = l,
                    .nlabels = src ? merge_ext(rs, src->labels, src->nlabels, l)
                                   : merge_ext(rs, snap->labels, snap->nlabels, l),
                    .annotations = src ? src->annotations : snap->labels + snap->nlabels,
                    .nannotations = src ? src->nannotations : snap->nannotations,
                    .starts_at =
                        src && src->fired_at < snap->starts_at ? src->fired_at : snap->starts_at,
                    .ends_at = !resolved ? ALERT_TS_NONE
                               : src     ? src->resolved_at
                                         : snap->ends_at,
                    .resolved = resolved,
                    .generator_url = r->genurl ? r->genurl : ""};
                n++;
            }
            size_t trunc = 0;
            if (wh->max_alerts && n > wh->max_alerts) {
                trunc = n - wh->max_alerts;
                n = wh->max_alerts;
            }
            struct re_label gl = {"alertname", alert_rule_name(r->alert)};
            struct payload_webhook_group pg = {.receiver = "webhook",
                                               .external_url = ext_url(e),
                                               .group_labels = &gl,
                                               .ngroup_labels = 1,
                                               .truncated_alerts = trunc};
            char *body = n ? payload_webhook(&pg, nt, n) : NULL;
            if (body) notifier_post(e->a->notifier, wh->url, wh->timeout_ms, body, strlen(body));
        }
        if (same && !resent) continue;
        /* Remember cur: fresh snapshots of what was sent at ts, the others carried over. */
        struct whalert *nv = nc ? malloc(nc * sizeof(*nv)) : NULL;
        if (nc && !nv) continue;
        size_t k = 0;
        for (; k < nc; k++) {
            const struct alert *a = cura[k];
            nv[k] = cur[k];
            nv[k].labels = NULL;
            if (a && (a->last_sent_at == ts || !whset_find(last, cur[k].fp)) &&
                whalert_copy(&nv[k], a, cur[k].fp, cur[k].starts_at))
                break;
        }
        if (k < nc) {
            while (k--)
                free(nv[k].labels);
            free(nv);
            continue;
        }
        for (k = 0; k < nc; k++) {
            struct whalert *s = whset_find(last, cur[k].fp);
            if (!nv[k].labels && s) {
                nv[k].labels = s->labels; /* carried over */
                s->labels = NULL;
            }
        }
        whset_fini(last);
        last->v = nv;
        last->n = nc;
    }
out:
    free(idx);
    free(cur);
    free(cura);
    free(nt);
    free(lab);
}

struct notices {
    struct alert_notice *v;
    size_t n, cap;
};

static int collect_notice(void *arg, const struct alert_notice *a) {
    struct notices *ns = arg;
    if (ns->n == ns->cap) {
        size_t cap = ns->cap ? ns->cap * 2 : 16;
        struct alert_notice *v = realloc(ns->v, cap * sizeof(*v));
        if (!v) return -ENOMEM;
        ns->v = v;
        ns->cap = cap;
    }
    ns->v[ns->n++] = *a;
    return 0;
}

/* Alertmanagers: Prometheus' sendAlerts (firing and resolved alerts that need sending), one
 * POST /api/v2/alerts per batch of 256 to every Alertmanager. */
static void send_alertmanagers(struct engine *e, struct ruleset *rs, struct egroup *g,
                               struct erule *r, int64_t ts) {
    struct notices ns = {0};
    alert_rule_sends(r->alert, ts, rs->resend_delay_ms, g->interval_ms, ext_url(e), collect_notice,
                     &ns);
    /* alert_rule_sends frees the generator URL it hands to the callback when it returns (its
     * header says the notice lives until the next eval): use our own copy of the same URL. */
    rule_genurl(e, r);
    for (size_t i = 0; i < ns.n; i++)
        ns.v[i].generator_url = r->genurl ? r->genurl : "";
    for (size_t off = 0; rs->nam && off < ns.n; off += DEF_NOTIFY_MAX_AM_BATCH) {
        size_t k = ns.n - off < DEF_NOTIFY_MAX_AM_BATCH ? ns.n - off : DEF_NOTIFY_MAX_AM_BATCH;
        char *body = payload_am_alerts(ns.v + off, k, rs->ext, rs->next);
        if (!body) break;
        for (size_t i = 0; i < rs->nam; i++) {
            char *cp = i + 1 < rs->nam ? strdup(body) : body;
            if (cp)
                notifier_post(e->a->notifier, rs->am[i].url, rs->am[i].timeout_ms, cp, strlen(cp));
        }
        if (!rs->nam) free(body);
    }
    free(ns.v);
}

static void observe_duration(struct engine *e, double secs) {
    size_t b = 0;
    while (b < NDUR && secs > dur_bounds[b])
        b++;
    e->dur_counts[b]++;
    e->dur_sum += secs;
    e->dur_count++;
}

/* Evaluates one rule at ts. Caller holds the write lock. Returns true if it wrote outputs. */
static bool eval_rule(struct engine *e, struct ruleset *rs, struct egroup *g, size_t ri, int64_t ts,
                      int64_t now_wall) {
    struct erule *r = &g->rules[ri];
    struct payload_rule *pr = &g->prules[ri];
    double t0 = mono_s();
    struct re_source src;
    store_source(e->a->store, &src);
    struct promql_opts o;
    promql_options(e, rs, &o);
    struct promql_result *res = NULL;
    struct perr err = {0};
    int64_t qts = ts - g->def->query_offset_ms;
    int rc = promql_eval_instant(r->def->ast, &src, qts, &o, &res, &err);
    bool wrote = false;
    e->evals_total++;
    if (!rc && res->type != PROMQL_VECTOR && res->type != PROMQL_SCALAR)
        rc = perr_set(&err, 0, 0, "rule result is not a vector or scalar");
    if (r->alert) {
        if (rc) {
            alert_rule_set_error(r->alert, ts, err.msg);
        } else {
            size_t n = res->type == PROMQL_SCALAR ? 1 : res->nseries;
            struct alert_sample *smp = calloc(n ? n : 1, sizeof(*smp));
            if (!smp) {
                rc = -ENOMEM;
                alert_rule_set_error(r->alert, ts, "out of memory");
            } else {
                size_t k = 0;
                if (res->type == PROMQL_SCALAR)
                    smp[k++] = (struct alert_sample){NULL, 0, res->scalar};
                else
                    for (size_t i = 0; i < res->nseries; i++)
                        if (res->series[i].npoints)
                            /* a histogram sample's float value is 0 in Prometheus 2.42 */
                            smp[k++] = (struct alert_sample){
                                res->series[i].labels, res->series[i].nlabels,
                                res->series[i].points[0].h ? 0.0 : res->series[i].points[0].v};
                struct alert_env env = {.ext_labels = rs->ext,
                                        .next_labels = rs->next,
                                        .external_url = ext_url(e),
                                        .query = tmpl_query,
                                        .query_arg = e,
                                        .ts_ns = g->eval_ns};
                rc = alert_rule_eval(r->alert, ts, smp, k, g->def->limit, &env, &err);
                free(smp);
            }
            if (!rc) {
                struct oset outs = {0};
                if (alert_rule_series(r->alert, add_alert_series, &outs)) {
                    oset_free(&outs);
                } else {
                    if (outs.n > 1) qsort(outs.k, outs.n, sizeof(outs.k[0]), okey_cmp);
                    write_outputs(e, r, &outs, ts);
                    wrote = true;
                }
                /* webhooks need the alerts' endsAt even without an Alertmanager */
                if (rs->nam || rs->nwh) send_alertmanagers(e, rs, g, r, ts);
            }
        }
        /* a failing rule sends nothing: its alerts expire at their endsAt */
        if (rs->nwh && (!rc || wh_expiring(rs, r, ts))) send_webhooks(e, rs, r, ts);
    } else {
        if (!rc) rc = eval_recording(e, g, r, res, ts, &err);
        wrote = !rc;
        r->health = rc ? ALERT_HEALTH_ERR : ALERT_HEALTH_OK;
        snprintf(r->last_error, sizeof(r->last_error), "%s", rc ? err.msg : "");
        pr->health = r->health;
        pr->last_error = r->last_error;
    }
    promql_result_free(res);
    if (rc) {
        e->eval_failures_total++;
        LOG_DEBUG("rule %s in group %s failed: %s", r->def->name, g->def->name, err.msg);
    }
    double secs = mono_s() - t0;
    observe_duration(e, secs);
    pr->eval_seconds = secs;
    pr->last_eval_ms = now_wall;
    return wrote;
}

/* The URL alerts link back to: --web.external-url, else http://<hostname>:<port> as
 * Prometheus derives it from the listen address. */
static void ensure_external_url(struct engine *e) {
    if (e->external_url) return;
    const char *f = e->a->flags ? e->a->flags->web_external_url : NULL;
    char buf[512];
    if (f && *f) {
        snprintf(buf, sizeof(buf), "%s", f);
        size_t n = strlen(buf);
        while (n && buf[n - 1] == '/')
            buf[--n] = 0;
    } else {
        char host[256] = "localhost";
        gethostname(host, sizeof(host) - 1);
        const char *b = e->a->http ? http_bound(e->a->http, 0) : NULL;
        const char *port = b ? strrchr(b, ':') : NULL;
        snprintf(buf, sizeof(buf), "http://%s%s", host, port ? port : ":10100");
    }
    e->external_url = strdup(buf);
}

/* Evaluates the group's rules (all, or those with mask[i] set) in file order at the current
 * time. In a partial (event) evaluation, a later rule of the group that selects what an
 * evaluated rule wrote (its recorded name, ALERTS, ALERTS_FOR_STATE) is evaluated as well, so
 * rule chains see the same data an interval evaluation would show them. */
static void eval_group(struct engine *e, struct ruleset *rs, struct egroup *g, bool *mask) {
    int64_t now = wall_ms();
    double t0 = mono_s();
    pthread_rwlock_wrlock(&e->lock);
    /* The external URL needs the bound port: known once the server listens. */
    if (!e->external_url && __atomic_load_n(&e->a->ready, __ATOMIC_ACQUIRE)) ensure_external_url(e);
    /* Evaluation timestamps of a group strictly increase: outputs at one timestamp must not
     * be rewritten with other values. */
    int64_t at = now;
    /* An interval evaluation is stamped with its slot's time, as Prometheus' EvalTimestamp:
     * a timer that fires a millisecond late must not make a `for` of whole intervals (6m at
     * 30s) one interval longer. The slot is the last one begun (however late the evaluation
     * runs, its time is never in the future), or the next one when the timer fired a few
     * milliseconds early. */
    if (!mask && g->interval_ms > 0) {
        at = (now + slot_early(g) - g->slot_ms) / g->interval_ms * g->interval_ms + g->slot_ms;
    }
    int64_t ts = at > g->last_ts ? at : g->last_ts + 1;
    g->last_ts = ts;
    g->eval_ns = !mask && g->interval_ms > 0 && ts == at ? g->slot_ns : 0;
    if (mask) e->event_evals_total++;
    bool alerts_marked = false; /* the readers of ALERTS after the first alert rule are marked */
    for (size_t i = 0; i < g->nrules; i++) {
        if (mask && !mask[i]) continue;
        bool wrote = eval_rule(e, rs, g, i, ts, now);
        if (!mask || !wrote) continue;
        const struct erule *r = &g->rules[i];
        if (r->alert && !alerts_marked) {
            for (size_t k = 0; k < g->nalert_readers; k++)
                if (g->alert_readers[k] > i) mask[g->alert_readers[k]] = true;
            alerts_marked = true; /* a later alert rule's readers are a subset */
        }
        for (size_t k = 0; !r->alert && k < r->nreaders; k++)
            mask[r->readers[k]] = true;
    }
    g->pg.eval_seconds = mono_s() - t0;
    g->pg.last_eval_ms = now;
    pthread_rwlock_unlock(&e->lock);
}

/* ---- events --------------------------------------------------------------------------------- */

/* Marks rules selecting name dirty. Caller holds mu. Returns true if a group became dirty
 * (a group already dirty has an evaluation coming: no need to wake the engine again, which
 * keeps a flood of pushes from costing one wake-up each). */
static bool mark_name(struct ruleset *rs, const char *name) {
    bool woke = false; /* a group went from clean to dirty: the engine must be woken */
    size_t lo = 0, hi = rs->nnames;
    while (lo < hi) { /* first entry >= name */
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(rs->names[mid].name, name) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (; lo < rs->nnames && !strcmp(rs->names[lo].name, name); lo++) {
        rs->names[lo].r->dirty = true;
        woke |= !rs->names[lo].g->dirty;
        rs->names[lo].g->dirty = true;
    }
    for (size_t i = 0; i < rs->nwild; i++)
        if (!rs->wild[i].m || re_matcher_matches(rs->wild[i].m, name)) {
            rs->wild[i].r->dirty = true;
            woke |= !rs->wild[i].g->dirty;
            rs->wild[i].g->dirty = true;
        }
    return woke;
}

/* True if some rule selects name (the index, without marking). */
static bool name_selected(const struct ruleset *rs, const char *name) {
    size_t lo = 0, hi = rs->nnames;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(rs->names[mid].name, name);
        if (!c) return true;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = 0; i < rs->nwild; i++)
        if (!rs->wild[i].m || re_matcher_matches(rs->wild[i].m, name)) return true;
    return false;
}

/* store_touch_fn: runs on the ingesting thread under the store's write lock, so it only marks
 * and wakes; evaluation happens on the engine thread. */
static void on_touch(void *arg, const char *const *names, size_t n) {
    struct engine *e = arg;
    if (on_engine_thread) return;
    bool any = false;
    pthread_mutex_lock(&e->mu);
    for (size_t i = 0; e->rs && i < n; i++)
        any |= mark_name(e->rs, names[i]);
    pthread_mutex_unlock(&e->mu);
    if (any) loop_wake(e->loop);
}

/* Evaluates every group with dirty rules at the current time. Engine thread. */
static int64_t on_event_timer(struct loop *l, int64_t id, void *arg);

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Event evaluations draw on one CPU-time budget for all groups, refilled at 1/EVENT_DUTY of
 * wall time up to EVENT_BURST_S: sporadic pushes are evaluated at once, while a flood of
 * pushes gets rules evaluated only as often as the budget allows, so ingestion keeps the CPU
 * however many groups select what is pushed. Groups take turns first (round robin); the
 * marks of groups left over budget stay and a timer comes back for them. */
static void run_dirty(struct engine *e) {
    if (e->no_events) return; /* marks stay; the next interval evaluation clears them */
    struct ruleset *rs = e->rs;
    if (!rs || !rs->ngroups) return;
    double now = mono_s();
    e->budget += (now - e->budget_t) / EVENT_DUTY;
    if (e->budget > EVENT_BURST_S) e->budget = EVENT_BURST_S;
    e->budget_t = now;
    bool over = false;
    size_t n = rs->ngroups, start = e->turn % n;
    e->turn = start + 1;
    for (size_t k = 0; k < n; k++) {
        struct egroup *eg = &rs->groups[(start + k) % n];
        pthread_mutex_lock(&e->mu);
        bool dirty = eg->dirty;
        pthread_mutex_unlock(&e->mu);
        if (!dirty) continue;
        if (e->budget < 0) {
            over = true;
            continue;
        }
        bool *mask = calloc(eg->nrules, sizeof(bool));
        if (!mask) continue;
        pthread_mutex_lock(&e->mu);
        for (size_t r = 0; r < eg->nrules; r++) {
            mask[r] = eg->rules[r].dirty;
            eg->rules[r].dirty = false;
        }
        eg->dirty = false;
        pthread_mutex_unlock(&e->mu);
        double c0 = thread_cpu_s();
        eval_group(e, rs, eg, mask);
        free(mask);
        e->budget -= thread_cpu_s() - c0;
    }
    if (over && !e->event_timer) {
        int64_t ms = (int64_t)ceil(-e->budget * EVENT_DUTY * 1000);
        int64_t id = loop_add_timer(e->loop, ms > 0 ? ms : 0, on_event_timer, e);
        e->event_timer = id > 0 ? id : 0;
    }
}

static int64_t on_event_timer(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct engine *e = arg;
    e->event_timer = 0;
    run_dirty(e);
    return LOOP_NOMORE;
}

/* ms until the group's next slot. After an evaluation (after_eval) that is the slot after
 * the one just evaluated, even when the timer fired a little before it: counting from the
 * clock alone would run that same slot a second time a few ms later. */
static int64_t next_slot(const struct egroup *g, bool after_eval) {
    int64_t now = wall_ms() - g->slot_ms;
    int64_t cur = after_eval ? now + slot_early(g) : now;
    return (cur / g->interval_ms + 1) * g->interval_ms - now;
}

static int64_t on_group_timer(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct egroup *g = arg;
    /* A full evaluation covers pending event marks too. */
    pthread_mutex_lock(&g->e->mu);
    g->dirty = false;
    for (size_t r = 0; r < g->nrules; r++)
        g->rules[r].dirty = false;
    pthread_mutex_unlock(&g->e->mu);
    eval_group(g->e, g->e->rs, g, NULL);
    return next_slot(g, true);
}

/* ---- collectors sampled into the store ------------------------------------------------------ */

struct sample_ctx {
    struct engine *e;
    struct ruleset *rs;
    struct store_sample *b;
    struct re_label *lab;
    size_t n, cap;
    int64_t ts;
    bool any;
};

static int sample_one(void *arg, const char *family, enum mtype type, const char *name,
                      const struct re_label *labels, size_t nlabels, double value, int64_t ts) {
    (void)family;
    (void)type;
    (void)ts;
    struct sample_ctx *c = arg;
    if (nlabels + 1 > LSET_MAX || !name_selected(c->rs, name)) return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        struct store_sample *b = realloc(c->b, cap * sizeof(*b));
        if (!b) return -ENOMEM;
        c->b = b;
        struct re_label *lab = realloc(c->lab, cap * LSET_MAX * sizeof(*lab));
        if (!lab) return -ENOMEM;
        c->lab = lab;
        c->cap = cap;
    }
    /* Copy the name: mset_foreach's buffer is reused for the next sample. */
    char *nm = strdup(name);
    if (!nm) return -ENOMEM;
    struct re_label *l = c->lab + c->n * LSET_MAX;
    size_t k = 0, i = 0;
    for (; i < nlabels && strcmp(labels[i].name, "__name__") < 0; i++)
        l[k++] = labels[i];
    l[k++] = (struct re_label){"__name__", nm};
    for (; i < nlabels; i++)
        l[k++] = labels[i];
    c->b[c->n++] = (struct store_sample){.nlabels = k, .ts = c->ts, .v = value};
    c->any = true;
    return 0;
}

static int64_t on_sample_timer(struct loop *l, int64_t id, void *arg) {
    (void)l;
    (void)id;
    struct engine *e = arg;
    struct ruleset *rs = e->rs;
    if (!rs || !rs->ngroups || !e->a->collectors || e->collectors_idle)
        return rs ? rs->sample_interval_ms : DEF_COLLECTORS_SAMPLE_INTERVAL_MS;
    struct mset *m = mset_new();
    struct sample_ctx c = {.e = e, .rs = rs, .ts = wall_ms()};
    if (m && !collectors_scrape(e->a->collectors, m) && !mset_foreach(m, sample_one, &c)) {
        for (size_t i = 0; i < c.n; i++)
            c.b[i].labels = c.lab + i * LSET_MAX; /* lab may have moved while growing */
        if (c.n) store_append_batch(e->a->store, c.b, c.n, 0, NULL);
        pthread_mutex_lock(&e->mu);
        const char *prev = NULL;
        for (size_t i = 0; i < c.n; i++) {
            const char *nm = NULL;
            for (size_t k = 0; k < c.b[i].nlabels; k++)
                if (!strcmp(c.lab[i * LSET_MAX + k].name, "__name__"))
                    nm = c.lab[i * LSET_MAX + k].value;
            if (nm && (!prev || strcmp(prev, nm))) mark_name(rs, nm);
            prev = nm;
        }
        pthread_mutex_unlock(&e->mu);
        /* Nothing a rule selects comes from the collectors: stop sampling until the rules
         * change (commit clears the flag). */
        if (!c.any) e->collectors_idle = true;
        run_dirty(e);
    }
    for (size_t i = 0; i < c.n; i++)
        for (size_t k = 0; k < c.b[i].nlabels; k++)
            if (!strcmp(c.lab[i * LSET_MAX + k].name, "__name__"))
                free((char *)c.lab[i * LSET_MAX + k].value);
    free(c.b);
    free(c.lab);
    mset_free(m);
    return rs->sample_interval_ms;
}

/* ---- rule set swap (engine thread) ------------------------------------------------------------
 */

/* Carries state of unchanged rules from old to rs (Group.CopyState): alerts with their `for`
 * state, previous outputs (for staleness), webhook bookkeeping, last evaluation. Old rules that
 * are gone get stale markers for their outputs, as Prometheus does when a group is removed. */
static void carry_state(struct engine *e, struct ruleset *old, struct ruleset *rs) {
    for (size_t g = 0; g < rs->ngroups; g++) {
        struct egroup *ng = &rs->groups[g];
        struct egroup *og = NULL;
        for (size_t k = 0; old && k < old->ngroups && !og; k++)
            if (!strcmp(old->groups[k].key, ng->key)) og = &old->groups[k];
        if (!og) continue;
        ng->last_ts = og->last_ts;
        for (size_t r = 0; r < ng->nrules; r++) {
            struct erule *nr = &ng->rules[r];
            for (size_t k = 0; k < og->nrules; k++) {
                struct erule *orr = &og->rules[k];
                if (orr->claimed || (!nr->alert) != (!orr->alert)) continue;
                bool same = nr->alert ? alert_rule_same(nr->alert, orr->alert)
                                      : !strcmp(nr->def->name, orr->def->name) &&
                                            !strcmp(nr->def->expr, orr->def->expr);
                if (!same) continue;
                orr->claimed = true;
                if (nr->alert) alert_rule_copy_state(nr->alert, orr->alert);
                nr->prev = orr->prev;
                orr->prev = (struct oset){0};
                for (size_t w = 0; w < rs->nwh; w++)
                    for (size_t ow = 0; ow < old->nwh; ow++)
                        if (!strcmp(rs->wh[w].url, old->wh[ow].url)) {
                            nr->wh[w] = orr->wh[ow];
                            orr->wh[ow] = (struct whset){0};
                            break;
                        }
                break;
            }
        }
    }
    if (!old) return;
    int64_t ts = wall_ms();
    for (size_t g = 0; g < old->ngroups; g++)
        for (size_t r = 0; r < old->groups[g].nrules; r++) {
            struct erule *orr = &old->groups[g].rules[r];
            if (orr->claimed || !orr->prev.n) continue;
            struct oset none = {0};
            write_outputs(e, orr, &none, ts);
            oset_free(&orr->prev);
        }
}

static void apply_pending(struct engine *e) {
    pthread_mutex_lock(&e->mu);
    struct ruleset *rs = e->pending;
    e->pending = NULL;
    pthread_mutex_unlock(&e->mu);
    if (!rs) return;
    struct ruleset *old = e->rs;
    if (old)
        for (size_t g = 0; g < old->ngroups; g++)
            if (old->groups[g].timer) loop_del_timer(e->loop, old->groups[g].timer);
    pthread_rwlock_wrlock(&e->lock);
    carry_state(e, old, rs);
    pthread_mutex_lock(&e->mu);
    e->rs = rs;
    pthread_mutex_unlock(&e->mu);
    pthread_rwlock_unlock(&e->lock);
    ruleset_free(old);
    e->collectors_idle = false;
    for (size_t g = 0; g < rs->ngroups; g++) {
        rs->groups[g].e = e;
        int64_t id = loop_add_timer(e->loop, next_slot(&rs->groups[g], false), on_group_timer,
                                    &rs->groups[g]);
        rs->groups[g].timer = id > 0 ? id : 0;
    }
}

static void on_wake(struct loop *l, void *arg) {
    (void)l;
    struct engine *e = arg;
    apply_pending(e);
    run_dirty(e);
}

static void *thread_main(void *arg) {
    struct engine *e = arg;
    on_engine_thread = true;
    int rc = loop_run(e->loop);
    if (rc) LOG_ERROR("rule engine loop failed: %s", strerror(-rc));
    return NULL;
}

/* ---- module hooks -----------------------------------------------------------------------------
 */

static int engine_start(struct agent *a, struct perr *err) {
    struct engine *e = calloc(1, sizeof(*e));
    if (!e) return perr_set(err, 0, 0, "out of memory"), -ENOMEM;
    e->a = a;
    e->compat_v2 = a->flags && a->flags->promql_compat_v2;
    e->no_events = a->flags && !a->flags->rules_event_evaluation;
    pthread_mutex_init(&e->mu, NULL);
    pthread_rwlock_init(&e->lock, NULL);
    a->engine = e;
    struct notify_opts no;
    notify_opts_default(&no);
    if (a->cfg && a->cfg->notification_queue_capacity)
        no.queue_capacity = a->cfg->notification_queue_capacity;
    a->notifier = notifier_new(&no);
    e->loop = loop_new(on_wake, e);
    e->budget = EVENT_BURST_S;
    e->budget_t = mono_s();
    if (!a->notifier || !e->loop)
        return perr_set(err, 0, 0, "cannot start the rule engine: %s", strerror(errno)), -EIO;
    int64_t st = loop_add_timer(e->loop, DEF_COLLECTORS_SAMPLE_INTERVAL_MS, on_sample_timer, e);
    e->sample_timer = st > 0 ? st : 0;
    if (a->flags && a->flags->web_external_url && *a->flags->web_external_url)
        ensure_external_url(e); /* before the thread starts: no lock needed */
    if (pthread_create(&e->thread, NULL, thread_main, e))
        return perr_set(err, 0, 0, "cannot start the rule engine thread"), -EIO;
    e->thread_started = true;
    store_set_touch_hook(a->store, on_touch, e);
    return 0;
}

static void engine_stop(struct agent *a) {
    struct engine *e = a->engine;
    if (!e) return;
    if (a->store) store_set_touch_hook(a->store, NULL, NULL);
    if (e->thread_started) {
        loop_stop(e->loop);
        pthread_join(e->thread, NULL);
    }
    notifier_free(a->notifier);
    a->notifier = NULL;
    ruleset_free(e->rs);
    ruleset_free(e->pending);
    loop_free(e->loop);
    free(e->external_url);
    pthread_rwlock_destroy(&e->lock);
    pthread_mutex_destroy(&e->mu);
    free(e);
    a->engine = NULL;
}

static int engine_prepare(struct agent *a, const struct config *nc, void **staged,
                          struct perr *err) {
    struct ruleset *rs = calloc(1, sizeof(*rs));
    if (!rs) return perr_set(err, 0, 0, "out of memory"), -ENOMEM;
    bool legacy = a && a->flags && a->flags->promql_compat_v2;
    int rc = load_files(rs, nc, legacy, err);
    if (!rc && a) rc = ruleset_build(rs, nc, err);
    if (rc || !a) {
        ruleset_free(rs);
        return rc;
    }
    *staged = rs;
    return 0;
}

static void engine_commit(struct agent *a, void *staged) {
    struct engine *e = a->engine;
    struct ruleset *rs = staged;
    if (!e || !rs) {
        ruleset_free(rs);
        return;
    }
    struct notify_opts no;
    notify_opts_default(&no);
    no.queue_capacity = rs->queue_capacity;
    notifier_set_opts(a->notifier, &no);
    if (rs->nwh || rs->nam) notifier_prepare(a->notifier);
    pthread_mutex_lock(&e->mu);
    ruleset_free(e->pending); /* a newer reload wins over one not applied yet */
    e->pending = rs;
    pthread_mutex_unlock(&e->mu);
    loop_wake(e->loop);
}

static void engine_abort(void *staged) {
    ruleset_free(staged);
}

struct metrics_ctx {
    struct engine *e;
    struct mset *out;
};

static int engine_metrics(struct agent *a, struct mset *out) {
    struct engine *e = a->engine;
    if (!e) return 0;
    int rc = notifier_metrics(a->notifier, out);
    if (rc) return rc;
    struct mfam *fd = mset_family(out, "promlet_rule_evaluation_duration_seconds",
                                  "Duration of rule evaluations.", MTYPE_HISTOGRAM);
    struct mfam *fe =
        mset_family(out, "promlet_rule_evaluations_total", "Rule evaluations.", MTYPE_COUNTER);
    struct mfam *ff = mset_family(out, "promlet_rule_evaluation_failures_total",
                                  "Rule evaluations that failed.", MTYPE_COUNTER);
    struct mfam *fv =
        mset_family(out, "promlet_rule_event_evaluations_total",
                    "Group evaluations triggered by ingested samples.", MTYPE_COUNTER);
    struct mfam *fl = mset_family(out, "promlet_rule_group_last_evaluation_timestamp_seconds",
                                  "Timestamp of the last evaluation of a rule group.", MTYPE_GAUGE);
    struct mfam *fg = mset_family(out, "promlet_rule_group_last_duration_seconds",
                                  "Duration of the last evaluation of a rule group.", MTYPE_GAUGE);
    struct mfam *fi = mset_family(out, "promlet_rule_group_interval_seconds",
                                  "The interval of a rule group.", MTYPE_GAUGE);
    struct mfam *fr = mset_family(out, "promlet_rule_group_rules",
                                  "The number of rules in a rule group.", MTYPE_GAUGE);
    if (!fd || !fe || !ff || !fv || !fl || !fg || !fi || !fr) return -ENOMEM;
    pthread_rwlock_rdlock(&e->lock);
    rc = mfam_add(fe, "", NULL, 0, (double)e->evals_total);
    rc = rc ? rc : mfam_add(ff, "", NULL, 0, (double)e->eval_failures_total);
    rc = rc ? rc : mfam_add(fv, "", NULL, 0, (double)e->event_evals_total);
    uint64_t cum = 0;
    for (size_t b = 0; b <= NDUR && !rc; b++) {
        cum += e->dur_counts[b];
        char le[32];
        if (b == NDUR)
            snprintf(le, sizeof(le), "+Inf");
        else
            snprintf(le, sizeof(le), "%g", dur_bounds[b]);
        struct re_label l = {"le", le};
        rc = mfam_add(fd, "_bucket", &l, 1, (double)cum);
    }
    rc = rc ? rc : mfam_add(fd, "_sum", NULL, 0, e->dur_sum);
    rc = rc ? rc : mfam_add(fd, "_count", NULL, 0, (double)e->dur_count);
    struct ruleset *rs = e->rs;
    for (size_t g = 0; rs && g < rs->ngroups && !rc; g++) {
        const struct egroup *eg = &rs->groups[g];
        struct re_label l = {"rule_group", eg->key};
        double last = eg->pg.last_eval_ms == ALERT_TS_NONE ? 0 : (double)eg->pg.last_eval_ms / 1e3;
        rc = mfam_add(fl, "", &l, 1, last);
        rc = rc ? rc : mfam_add(fg, "", &l, 1, eg->pg.eval_seconds);
        rc = rc ? rc : mfam_add(fi, "", &l, 1, (double)eg->interval_ms / 1e3);
        rc = rc ? rc : mfam_add(fr, "", &l, 1, (double)eg->nrules);
    }
    pthread_rwlock_unlock(&e->lock);
    return rc;
}

static int pg_cmp(const void *a, const void *b) {
    const struct payload_rule_group *x = a, *y = b;
    int c = strcmp(x->file ? x->file : "", y->file ? y->file : "");
    return c ? c : strcmp(x->name ? x->name : "", y->name ? y->name : "");
}

int engine_view(struct engine *e, int (*fn)(void *arg, const struct engine_view *v), void *arg) {
    pthread_rwlock_rdlock(&e->lock);
    struct ruleset *rs = e->rs;
    struct payload_rule_group *gs = NULL;
    int rc = 0;
    if (rs && rs->ngroups && !(gs = calloc(rs->ngroups, sizeof(*gs)))) rc = -ENOMEM;
    for (size_t g = 0; !rc && rs && g < rs->ngroups; g++)
        gs[g] = rs->groups[g].pg;
    /* Manager.RuleGroups(): sorted by file, then by group name */
    if (!rc && rs && rs->ngroups > 1) qsort(gs, rs->ngroups, sizeof(*gs), pg_cmp);
    if (!rc) {
        struct engine_view v = {.groups = gs,
                                .ngroups = rs ? rs->ngroups : 0,
                                .alerts = rs ? (const struct alert_rule *const *)rs->alerts : NULL,
                                .nalerts = rs ? rs->nalerts : 0,
                                .external_url = e->external_url ? e->external_url : ""};
        rc = fn(arg, &v);
    }
    pthread_rwlock_unlock(&e->lock);
    free(gs);
    return rc;
}

const struct agent_module mod_engine = {
    .name = "engine",
    .start = engine_start,
    .prepare = engine_prepare,
    .commit = engine_commit,
    .abort = engine_abort,
    .metrics = engine_metrics,
    .stop = engine_stop,
};
