/* SPDX-License-Identifier: Apache-2.0 */
/* rwrecv: the Prometheus remote-write 1.0 receiver (POST /api/v1/write) and its metadata. */
#include "rwrecv.h"

#include "defaults.h"
#include "expose.h"
#include "http.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Prometheus' timeLimitAppender refuses samples further ahead than this (ErrOutOfBounds). */
#define RW_MAX_AHEAD_MS (10 * 60 * 1000)
/* Metadata entries kept; beyond it new families are not recorded (counted). */
#define RW_MAX_METADATA 100000
/* Label sets remembered as validated, with their store refs (rwcache: ~60 bytes each, 8 per
 * label, plus the labels' wire bytes and strings; ~224 bytes for 4 short labels); the cache
 * starts over when full. */
#define RW_CACHE_MAX 65536
#define RW_CACHE_MAX_BYTES (32u << 20) /* however long the label sets */

struct meta {
    struct meta *next;
    uint64_t hash;
    enum rw_metric_type type;
    char *family, *help, *unit; /* one allocation, family first */
};

struct rwrecv {
    struct agent *a;
    pthread_mutex_t lock; /* metadata and counters */
    struct meta **tab;
    size_t tabcap, nmeta;
    uint64_t samples_total, histograms_total, metadata_total, metadata_dropped_total;
    uint64_t series_limit_hits_total, invalid_total, out_of_order_total;
    size_t max_body;
    /* Label sets seen in stored requests, by wire bytes: they skip validation, and their tag
     * (store ref + 1) skips the store's lookup. The decoder limits below never change. */
    pthread_mutex_t cache_lock;
    struct rwcache *cache;
};

/* ---- metadata ------------------------------------------------------------------------- */

static uint64_t str_hash(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 0x100000001b3ULL;
    }
    return h;
}

static int meta_put(struct rwrecv *r, const char *family, enum rw_metric_type type,
                    const char *help, const char *unit) {
    if (!r->tab) {
        r->tab = calloc(256, sizeof(*r->tab));
        if (!r->tab) return -ENOMEM;
        r->tabcap = 256;
    }
    uint64_t h = str_hash(family);
    struct meta **pp = &r->tab[h & (r->tabcap - 1)];
    for (; *pp; pp = &(*pp)->next)
        if ((*pp)->hash == h && !strcmp((*pp)->family, family)) break;
    struct meta *old = *pp;
    if (old && old->type == type && !strcmp(old->help, help) && !strcmp(old->unit, unit))
        return 0; /* the common case: senders repeat metadata every minute */
    if (!old && r->nmeta >= RW_MAX_METADATA) {
        r->metadata_dropped_total++;
        return 0;
    }
    size_t fl = strlen(family) + 1, hl = strlen(help) + 1, ul = strlen(unit) + 1;
    struct meta *m = malloc(sizeof(*m) + fl + hl + ul);
    if (!m) return -ENOMEM;
    m->hash = h;
    m->type = type;
    m->family = (char *)(m + 1);
    m->help = m->family + fl;
    m->unit = m->help + hl;
    memcpy(m->family, family, fl);
    memcpy(m->help, help, hl);
    memcpy(m->unit, unit, ul);
    if (old) {
        m->next = old->next;
        *pp = m;
        free(old);
        return 0;
    }
    m->next = NULL;
    *pp = m;
    r->nmeta++;
    if (r->nmeta > r->tabcap) { /* grow: rehash into twice the buckets */
        size_t cap = r->tabcap * 2;
        struct meta **nt = calloc(cap, sizeof(*nt));
        if (!nt) return 0; /* keep the longer chains */
        for (size_t i = 0; i < r->tabcap; i++)
            for (struct meta *e = r->tab[i], *n; e; e = n) {
                n = e->next;
                e->next = nt[e->hash & (cap - 1)];
                nt[e->hash & (cap - 1)] = e;
            }
        free(r->tab);
        r->tab = nt;
        r->tabcap = cap;
    }
    return 0;
}

int rwrecv_metadata(struct rwrecv *r, const char *family, rwrecv_meta_fn *fn, void *arg) {
    if (!r) return 0;
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    if (family && r->tab) {
        uint64_t h = str_hash(family);
        for (struct meta *m = r->tab[h & (r->tabcap - 1)]; m; m = m->next)
            if (m->hash == h && !strcmp(m->family, family)) {
                rc = fn(arg, m->family, m->type, m->help, m->unit);
                break;
            }
    } else {
        for (size_t i = 0; i < r->tabcap && !rc; i++)
            for (struct meta *m = r->tab[i]; m && !rc; m = m->next)
                rc = fn(arg, m->family, m->type, m->help, m->unit);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

/* ---- request → store batch ------------------------------------------------------------ */

struct conv {
    int64_t max_ts;
    const struct rw_request *rq;
    uint64_t *refs; /* per sample: the store ref hint, then the ref (NULL: no cache) */
    size_t *first;  /* per series: index of its first sample in b */
    uint64_t cur_ref;
    /* pass 1 counts */
    size_t nlabels, nspans, nsamples;
    /* pass 2 fills */
    struct re_label *labs;
    size_t li;
    const struct re_label *cur;
    size_t ncur;
    struct store_sample *b;
    size_t bi;
    struct re_hist *hists;
    size_t hi;
    struct re_span *spans;
    size_t si;
    size_t series_idx;
    int64_t bad_ts;
    size_t bad_series;
};

static int count_series(void *arg, const struct proto_label *l, size_t n) {
    (void)l;
    struct conv *c = arg;
    c->nlabels += n;
    return 0;
}

static int count_hist(void *arg, int64_t ts, const struct proto_hist *h) {
    (void)ts;
    struct conv *c = arg;
    c->nspans += h->n_pos_spans + h->n_neg_spans;
    return 0;
}

static int fill_series(void *arg, const struct proto_label *l, size_t n) {
    struct conv *c = arg;
    struct re_label *out = c->labs + c->li;
    for (size_t i = 0; i < n; i++)
        out[i] = (struct re_label){l[i].name, l[i].value};
    c->cur = out;
    c->ncur = n;
    c->li += n;
    if (c->refs) {
        struct rw_key k;
        uint64_t tag = 0;
        c->cur_ref = rw_request_key(c->rq, c->series_idx, &k, &tag) == 0 && tag ? tag - 1 : 0;
        c->first[c->series_idx] = c->bi;
    }
    c->series_idx++;
    return 0;
}

static int check_ts(struct conv *c, int64_t ts) {
    if (ts > c->max_ts) {
        c->bad_ts = ts;
        c->bad_series = c->series_idx;
        return 1;
    }
    return 0;
}

static int fill_sample(void *arg, int64_t ts, double v) {
    struct conv *c = arg;
    if (check_ts(c, ts)) return 1;
    if (c->refs) c->refs[c->bi] = c->cur_ref;
    c->b[c->bi++] = (struct store_sample){.labels = c->cur, .nlabels = c->ncur, .ts = ts, .v = v};
    return 0;
}

static int fill_hist(void *arg, int64_t ts, const struct proto_hist *ph) {
    struct conv *c = arg;
    if (check_ts(c, ts)) return 1;
    struct re_hist *h = &c->hists[c->hi++];
    struct re_span *ps = c->spans + c->si;
    for (size_t i = 0; i < ph->n_pos_spans; i++)
        ps[i] = (struct re_span){ph->pos_spans[i].offset, ph->pos_spans[i].length};
    c->si += ph->n_pos_spans;
    struct re_span *ns = c->spans + c->si;
    for (size_t i = 0; i < ph->n_neg_spans; i++)
        ns[i] = (struct re_span){ph->neg_spans[i].offset, ph->neg_spans[i].length};
    c->si += ph->n_neg_spans;
    /* The wire's reset-hint numbers equal RE_HINT_* (UNKNOWN, YES, NO, GAUGE). */
    *h = (struct re_hist){.schema = ph->schema,
                          .reset_hint = (uint8_t)ph->reset_hint,
                          .zero_threshold = ph->zero_threshold,
                          .zero_count = ph->zero_count,
                          .count = ph->count,
                          .sum = ph->sum,
                          .pspans = ps,
                          .npspans = ph->n_pos_spans,
                          .pbuckets = ph->pos_buckets,
                          .npbuckets = ph->n_pos_buckets,
                          .nspans = ns,
                          .nnspans = ph->n_neg_spans,
                          .nbuckets = ph->neg_buckets,
                          .nnbuckets = ph->n_neg_buckets,
                          .custom_values = ph->custom_values,
                          .ncustom = ph->n_custom_values};
    if (c->refs) c->refs[c->bi] = c->cur_ref;
    c->b[c->bi++] =
        (struct store_sample){.labels = c->cur, .nlabels = c->ncur, .ts = ts, .v = ph->sum, .h = h};
    return 0;
}

/* After a stored request: remembers each keyed series' label bytes as valid, with the ref of
 * its series (tag = ref + 1), where that is new. */
static void remember(struct rwrecv *r, const struct conv *c) {
    pthread_mutex_lock(&r->cache_lock);
    for (size_t i = 0; i < c->series_idx; i++) {
        struct rw_key k;
        uint64_t tag;
        size_t f = c->first[i];
        if (f >= c->bi || (i + 1 < c->series_idx && c->first[i + 1] == f)) continue; /* none */
        if (rw_request_key(c->rq, i, &k, &tag) || !c->refs[f] || tag == c->refs[f] + 1) continue;
        (void)rw_request_remember(c->rq, i, r->cache, c->refs[f] + 1); /* OOM: not cached */
    }
    pthread_mutex_unlock(&r->cache_lock);
}

static int put_meta(void *arg, const char *family, enum rw_metric_type type, const char *help,
                    const char *unit) {
    struct rwrecv *r = arg;
    r->metadata_total++;
    return meta_put(r, family, type, help ? help : "", unit ? unit : "");
}

/* ---- idempotent retries ---------------------------------------------------------------- */

/* A sender retries a whole batch after a 5xx or a timeout, so a request may repeat samples
 * that are stored already. The store accepts a repeat of a series' newest sample; older
 * repeats look out of order. Before answering 400 we therefore drop the float samples that
 * are stored bit-identically at the same timestamp and try again (the spec's "accept
 * identical duplicates"). Bounded: only for requests of at most this many series (the
 * default max_samples_per_send of Prometheus is 2000). */
#define RW_RETRY_MAX_SERIES 2000

struct dupchk {
    struct store_sample *b;
    size_t from, to;
    bool *dup;
};

static int dup_visit(void *arg, const struct re_label *labels, size_t nlabels, const int64_t *ts,
                     const double *vals, const struct re_hist *const *hists, size_t n) {
    (void)labels;
    (void)nlabels;
    struct dupchk *d = arg;
    for (size_t k = 0; k < n; k++) {
        if (hists && hists[k]) continue;
        uint64_t a, b;
        memcpy(&a, &vals[k], sizeof(a));
        for (size_t i = d->from; i < d->to; i++) {
            if (d->b[i].h || d->b[i].ts != ts[k]) continue;
            memcpy(&b, &d->b[i].v, sizeof(b));
            if (a == b) d->dup[i] = true;
        }
    }
    return 0;
}

/* Removes samples already stored identically; returns the new count, or n when nothing could
 * be checked (OOM, too many series). */
static size_t drop_stored(struct store *st, struct store_sample *b, size_t n, size_t nseries) {
    if (nseries > RW_RETRY_MAX_SERIES || n == 0) return n;
    bool *dup = calloc(n, sizeof(*dup));
    if (!dup) return n;
    for (size_t from = 0; from < n;) {
        size_t to = from + 1;
        int64_t mint = b[from].ts, maxt = b[from].ts;
        while (to < n && b[to].labels == b[from].labels) {
            mint = b[to].ts < mint ? b[to].ts : mint;
            maxt = b[to].ts > maxt ? b[to].ts : maxt;
            to++;
        }
        struct re_matcher m[DEF_MAX_LABELS_PER_SERIES];
        size_t nm = b[from].nlabels;
        int rc = nm <= DEF_MAX_LABELS_PER_SERIES ? 0 : -E2BIG;
        size_t k = 0;
        for (; k < nm && !rc; k++)
            rc = re_matcher_init(&m[k], RE_MATCH_EQ, b[from].labels[k].name,
                                 b[from].labels[k].value, NULL);
        if (!rc) {
            struct dupchk d = {b, from, to, dup};
            store_select(st, m, nm, mint, maxt, dup_visit, &d);
        }
        for (size_t i = 0; i < k; i++)
            re_matcher_fini(&m[i]);
        from = to;
    }
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (!dup[i]) b[w++] = b[i];
    free(dup);
    return w;
}

/* Prometheus' parseProtoMsg: the media type must be application/x-protobuf; a proto=
 * parameter must name the v1 message (v2 is not implemented here: 415 as for an unknown
 * message). Parameters are split on ';' and '=' without trimming, as Prometheus does. */
static bool content_type_ok(const char *ct, char *why, size_t len) {
    if (!ct || !*ct) return true;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    size_t n = strlen(ct);
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    const char *semi = memchr(ct, ';', n);
    size_t ml = semi ? (size_t)(semi - ct) : n;
    if (ml != 22 || strncmp(ct, "application/x-protobuf", 22)) {
        snprintf(why, len,
                 "expected application/x-protobuf as the first (media) part, got %.*s "
                 "content-type",
                 (int)n, ct);
        return false;
    }
    for (const char *p = semi; p && p < ct + n;) {
        p++;
        const char *e = memchr(p, ';', (size_t)(ct + n - p));
        size_t pl = e ? (size_t)(e - p) : (size_t)(ct + n - p);
        const char *eq = memchr(p, '=', pl);
        if (!eq || memchr(eq + 1, '=', pl - (size_t)(eq + 1 - p))) {
            snprintf(why, len,
                     "expected parameters to be key-values, got %.*s in %.*s "
                     "content-type",
                     (int)pl, p, (int)n, ct);
            return false;
        }
        if (eq - p == 5 && !strncmp(p, "proto", 5)) {
            size_t vl = pl - 6;
            if (vl == 23 && !strncmp(eq + 1, "prometheus.WriteRequest", 23)) return true;
            snprintf(why, len,
                     "%.*s protobuf message is not accepted by this server; accepted "
                     "[prometheus.WriteRequest]",
                     (int)vl, eq + 1);
            return false;
        }
        p = e;
    }
    return true;
}

static void handle_write(void *arg, const struct http_req *req, struct http_resp *resp) {
    struct rwrecv *r = arg;
    char why[300];
    if (!content_type_ok(http_header(req, "Content-Type"), why, sizeof(why))) {
        http_error(resp, 415, "%s", why);
        return;
    }
    const char *enc = http_header(req, "Content-Encoding");
    if (enc && *enc && strcasecmp(enc, "snappy")) {
        http_error(resp, 415,
                   "%s encoding (compression) is not accepted by this server; only snappy is "
                   "acceptable",
                   enc);
        return;
    }
    size_t len;
    const char *body = http_body(req, &len);
    struct rw_limits lim = {.max_decoded_bytes = DEF_RW_MAX_DECODED_BYTES,
                            .max_labels = DEF_MAX_LABELS_PER_SERIES,
                            .max_name_len = DEF_MAX_LABEL_NAME_BYTES,
                            .max_value_len = DEF_MAX_LABEL_VALUE_BYTES,
                            .cache = r->cache,
                            .cache_lock = &r->cache_lock};
    int code = 0;
    struct perr e = {0};
    struct rw_request *rq = rw_decode((const uint8_t *)body, len, &lim, &code, &e);
    if (!rq) {
        if (code == -ENOMEM) {
            http_error(resp, 503, "out of memory decoding the request");
            return;
        }
        pthread_mutex_lock(&r->lock);
        r->invalid_total++;
        pthread_mutex_unlock(&r->lock);
        http_error(resp, 400, "%s", e.msg[0] ? e.msg : "invalid remote-write request");
        return;
    }
    struct conv c = {.max_ts = agent_now_ms() + RW_MAX_AHEAD_MS, .rq = rq};
    struct rw_sink count = {.arg = &c, .series = count_series, .histogram = count_hist};
    rw_request_foreach(rq, &count);
    size_t ns = rw_request_samples(rq), nh = rw_request_histograms(rq);
    c.labs = malloc((c.nlabels ? c.nlabels : 1) * sizeof(*c.labs));
    c.b = malloc((ns + nh ? ns + nh : 1) * sizeof(*c.b));
    c.hists = malloc((nh ? nh : 1) * sizeof(*c.hists));
    c.spans = malloc((c.nspans ? c.nspans : 1) * sizeof(*c.spans));
    size_t nser = rw_request_series(rq);
    if (r->cache) {
        c.refs = malloc((ns + nh ? ns + nh : 1) * sizeof(*c.refs));
        c.first = malloc((nser ? nser : 1) * sizeof(*c.first));
    }
    int rc = -ENOMEM;
    if (!c.labs || !c.b || !c.hists || !c.spans || (r->cache && (!c.refs || !c.first))) {
        http_error(resp, 503, "out of memory converting the request");
        goto out;
    }
    struct rw_sink fill = {
        .arg = &c, .series = fill_series, .sample = fill_sample, .histogram = fill_hist};
    if (rw_request_foreach(rq, &fill)) {
        pthread_mutex_lock(&r->lock);
        r->invalid_total++;
        pthread_mutex_unlock(&r->lock);
        http_error(resp, 400,
                   "out of bounds: series %zu has a sample at %lld, more than 10m "
                   "ahead of the receiver's clock",
                   c.bad_series, (long long)c.bad_ts);
        goto out;
    }
    struct store_result res = {0};
    rc = store_append_batch_refs(r->a->store, c.b, c.bi, STORE_ATOMIC, &res, c.refs);
    if (rc == 0 && c.refs) remember(r, &c);
    if (rc == -ERANGE) {
        size_t kept = drop_stored(r->a->store, c.b, c.bi, c.series_idx);
        if (kept < c.bi) {
            c.bi = kept;
            memset(&res, 0, sizeof(res));
            rc = store_append_batch(r->a->store, c.b, c.bi, STORE_ATOMIC, &res);
        }
    }
    pthread_mutex_lock(&r->lock);
    if (rc == 0) {
        r->samples_total += ns;
        r->histograms_total += nh;
        /* Metadata only from requests that were stored, so a refused request changes
         * nothing. */
        struct rw_sink meta = {.arg = r, .metadata = put_meta};
        rw_request_foreach(rq, &meta);
    } else if (rc == -ENOSPC) {
        r->series_limit_hits_total++;
    } else if (rc == -ERANGE) {
        r->out_of_order_total++;
    }
    pthread_mutex_unlock(&r->lock);
    if (rc == 0) {
        resp->status = 204;
    } else if (rc == -ERANGE) {
        /* Prometheus answers ErrOutOfOrderSample / ErrDuplicateSampleForTimestamp with 400
         * ("so the sender does not retry") and rolls the whole request back. */
        const struct store_sample *s = res.first_bad < c.bi ? &c.b[res.first_bad] : NULL;
        const char *name = "";
        for (size_t i = 0; s && i < s->nlabels; i++)
            if (!strcmp(s->labels[i].name, "__name__")) name = s->labels[i].value;
        http_error(resp, 400, "%s: series %s, timestamp %lld",
                   res.duplicates ? "duplicate sample for timestamp" : "out of order sample", name,
                   s ? (long long)s->ts : 0LL);
    } else if (rc == -ENOSPC) {
        LOG_WARN("remote write refused: series limit reached");
        http_error(resp, 500,
                   "series limit reached: the request would create more series than "
                   "storage.max_series allows");
    } else {
        http_error(resp, 503, "out of memory storing the request");
    }
out:
    free(c.refs);
    free(c.first);
    free(c.labs);
    free(c.b);
    free(c.hists);
    free(c.spans);
    rw_request_free(rq);
}

/* ---- module --------------------------------------------------------------------------- */

static int counter(struct mset *out, const char *name, const char *help, uint64_t v) {
    struct mfam *f = mset_family(out, name, help, MTYPE_COUNTER);
    return f ? mfam_add(f, "", NULL, 0, (double)v) : 0;
}

static int rw_metrics(struct agent *a, struct mset *out) {
    struct rwrecv *r = a->rwrecv;
    pthread_mutex_lock(&r->lock);
    uint64_t s = r->samples_total, h = r->histograms_total, lim = r->series_limit_hits_total,
             inv = r->invalid_total, ooo = r->out_of_order_total, md = r->metadata_dropped_total;
    size_t nmeta = r->nmeta;
    pthread_mutex_unlock(&r->lock);
    int rc = counter(out, "promlet_remote_write_samples_total",
                     "Float samples stored from remote-write requests.", s);
    rc = rc ? rc
            : counter(out, "promlet_remote_write_histograms_total",
                      "Native histogram samples stored from remote-write requests.", h);
    rc = rc ? rc
            : counter(out, "promlet_remote_write_series_limit_hits_total",
                      "Remote-write requests refused (500) because of the series limit.", lim);
    rc = rc ? rc
            : counter(out, "promlet_remote_write_invalid_requests_total",
                      "Remote-write requests refused (400) as invalid.", inv);
    rc = rc ? rc
            : counter(out, "promlet_remote_write_out_of_order_requests_total",
                      "Remote-write requests refused (400) for out-of-order or duplicate samples.",
                      ooo);
    rc = rc ? rc
            : counter(out, "promlet_remote_write_metadata_dropped_total",
                      "Metadata entries not kept because the metadata table is full.", md);
    struct mfam *f = rc ? NULL
                        : mset_family(out, "promlet_remote_write_metadata_families",
                                      "Metric families with remote-written metadata.", MTYPE_GAUGE);
    if (f) rc = mfam_add(f, "", NULL, 0, (double)nmeta);
    return rc;
}

static void rw_stop(struct agent *a) {
    struct rwrecv *r = a->rwrecv;
    if (!r) return;
    for (size_t i = 0; i < r->tabcap; i++)
        for (struct meta *m = r->tab[i], *n; m; m = n) {
            n = m->next;
            free(m);
        }
    free(r->tab);
    pthread_mutex_destroy(&r->lock);
    rwcache_free(r->cache);
    pthread_mutex_destroy(&r->cache_lock);
    free(r);
    a->rwrecv = NULL;
}

static int rw_start(struct agent *a, struct perr *err) {
    struct rwrecv *r = calloc(1, sizeof(*r));
    if (!r) return perr_set(err, 0, 0, "out of memory");
    pthread_mutex_init(&r->lock, NULL);
    pthread_mutex_init(&r->cache_lock, NULL);
    r->cache = rwcache_new(RW_CACHE_MAX,
                           RW_CACHE_MAX_BYTES); /* NULL (OOM): validate everything, no refs */
    r->a = a;
    a->rwrecv = r;
    /* The route's body limit is fixed when routes are registered: a reload that changes
     * remote_write_receiver.max_body_bytes takes effect at the next start. */
    r->max_body =
        a->cfg && a->cfg->rw_max_body_bytes ? a->cfg->rw_max_body_bytes : DEF_RW_MAX_BODY_BYTES;
    struct http_route rt = {"/api/v1/write", false, HTTP_POST,  "/api/v1/write",
                            handle_write,    r,     r->max_body};
    if (http_route(a->http, &rt)) return perr_set(err, 0, 0, "too many HTTP routes");
    return 0;
}

const struct agent_module mod_rwrecv = {
    .name = "remote_write_receiver",
    .start = rw_start,
    .metrics = rw_metrics,
    .stop = rw_stop,
};
