/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests for the series store: matchers, ordering, retention, limits, stale markers. */
#include "store.h"
#include "tap.h"

#include <errno.h>

#define L(...) ((struct re_label[]){__VA_ARGS__})
#define N(arr) (sizeof(arr) / sizeof((arr)[0]))

struct got {
    int series;
    size_t samples;
    int64_t ts[64];
    double v[64];
    char last_job[32];
    bool hist_seen;
};

static int collect(void *arg, const struct re_label *labels, size_t nl, const int64_t *ts,
                   const double *v, const struct re_hist *const *h, size_t n) {
    struct got *g = arg;
    g->series++;
    for (size_t i = 0; i < nl; i++)
        if (strcmp(labels[i].name, "job") == 0)
            snprintf(g->last_job, sizeof(g->last_job), "%s", labels[i].value);
    for (size_t i = 0; i < n && g->samples < 64; i++) {
        g->ts[g->samples] = ts[i];
        g->v[g->samples] = v[i];
        if (h[i]) g->hist_seen = true;
        g->samples++;
    }
    return 0;
}

static int count_str(void *arg, const char *str) {
    (void)str;
    (*(int *)arg)++;
    return 0;
}

static struct got sel(struct store *s, enum re_match_type t, const char *name, const char *val,
                      int64_t mint, int64_t maxt) {
    struct re_matcher m;
    struct got g = {0};
    if (re_matcher_init(&m, t, name, val, NULL) == 0) {
        store_select(s, &m, 1, mint, maxt, collect, &g);
        re_matcher_fini(&m);
    }
    return g;
}

/* The newest sample a full select returns per window, against store_select_last. */
struct lastv {
    int series;
    int64_t ts;
    double v;
};

static int keep_last(void *arg, const struct re_label *labels, size_t nl, const int64_t *ts,
                     const double *v, const struct re_hist *const *h, size_t n) {
    struct lastv *l = arg;
    (void)labels, (void)nl, (void)h;
    l->series++;
    if (n) {
        l->ts = ts[n - 1];
        l->v = v[n - 1];
    }
    return 0;
}

static int only_one(void *arg, const struct re_label *labels, size_t nl, const int64_t *ts,
                    const double *v, const struct re_hist *const *h, size_t n) {
    if (n != 1) return -EINVAL;
    return keep_last(arg, labels, nl, ts, v, h, n);
}

/* A series spanning many chunks (with gaps), every window [mint, maxt] against the full
 * select: the same newest sample, or none. */
static void test_select_last(void) {
    struct store_opts o = {.retention_ms = INT64_MAX / 4, .max_series = 4};
    struct store *s = store_new(&o);
    struct re_label l[] = {{"__name__", "m"}, {"job", "a"}};
    for (int64_t i = 0; i < 1000; i++)
        if (i % 7 != 3) store_append(s, l, 2, 1000 + i * 10, (double)i);
    struct re_matcher m;
    re_matcher_init(&m, RE_MATCH_EQ, "__name__", "m", NULL);
    int bad = 0, checked = 0;
    for (int64_t maxt = 900; maxt <= 11100 && bad < 5; maxt += 37)
        for (int64_t w = 0; w <= 400 && bad < 5; w += 45) {
            struct lastv full = {0}, last = {0};
            store_select(s, &m, 1, maxt - w, maxt, keep_last, &full);
            int rc = store_select_last(s, &m, 1, maxt - w, maxt, only_one, &last);
            checked++;
            if (rc || full.series != last.series || full.ts != last.ts || full.v != last.v) {
                bad++;
                printf("# window [%lld, %lld]: full %d/%lld, last %d/%lld (rc %d)\n",
                       (long long)(maxt - w), (long long)maxt, full.series, (long long)full.ts,
                       last.series, (long long)last.ts, rc);
            }
        }
    CHECK_EQ_INT(bad, 0);
    CHECK(checked > 2000);
    struct lastv none = {0};
    CHECK_EQ_INT(store_select_last(s, &m, 1, 0, 999, only_one, &none), 0);
    CHECK_EQ_INT(none.series, 0);
    re_matcher_fini(&m);
    store_free(s);
}

/* The touch hook: each distinct name of a committed batch once (runs of one name folded),
 * in batches of at most 64. */
struct touch_log {
    int calls;
    size_t names;
    char first[16], last[16];
};

static void touch_rec(void *arg, const char *const *names, size_t n) {
    struct touch_log *t = arg;
    if (!t->names && n) snprintf(t->first, sizeof(t->first), "%s", names[0]);
    if (n) snprintf(t->last, sizeof(t->last), "%s", names[n - 1]);
    t->calls++;
    t->names += n;
}

static void test_touch(void) {
    struct store_opts o = {.retention_ms = INT64_MAX / 4, .max_series = 1000};
    struct store *s = store_new(&o);
    struct touch_log t = {0};
    store_set_touch_hook(s, touch_rec, &t);
    char names[100][16];
    struct re_label lab[100][2];
    struct store_sample b[200];
    size_t n = 0;
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof(names[i]), "m%03d", i);
        lab[i][0] = (struct re_label){"__name__", names[i]};
        lab[i][1] = (struct re_label){"job", "a"};
        for (int k = 0; k < 2; k++) /* two samples per name, together */
            b[n++] = (struct store_sample){.labels = lab[i], .nlabels = 2, .ts = 1000 + k, .v = k};
    }
    CHECK_EQ_INT(store_append_batch(s, b, n, 0, NULL), 0);
    CHECK_EQ_INT(t.calls, 2);
    CHECK_EQ_INT(t.names, 100);
    CHECK_EQ_STR(t.first, "m000");
    CHECK_EQ_STR(t.last, "m099");
    store_free(s);
}

/* store_append_batch_refs: refs come back, a ref saves the lookup, a stale ref (series removed
 * by retention, its slot reused by another series) falls back to the labels. */
static void test_batch_refs(void) {
    struct store_opts o = {.retention_ms = 10000, .max_series = 10};
    struct store *s = store_new(&o);
    struct re_label a[] = {{"__name__", "up"}, {"job", "a"}};
    struct re_label b[] = {{"__name__", "up"}, {"job", "b"}};
    struct store_sample b1[] = {{a, 2, 1000, 1, NULL}, {b, 2, 1000, 2, NULL}};
    uint64_t refs[2] = {0, 0};
    CHECK_EQ_INT(store_append_batch_refs(s, b1, 2, STORE_ATOMIC, NULL, refs), 0);
    CHECK(refs[0] != 0 && refs[1] != 0 && refs[0] != refs[1]);
    uint64_t ra = refs[0], rb = refs[1];
    uint64_t r1;
    CHECK_EQ_INT(store_ref_get(s, a, 2, &r1), 0);
    CHECK(r1 == ra);
    /* With refs in: the samples land in the same series; a repeat of the newest gives 0. */
    struct store_sample b2[] = {{a, 2, 2000, 3, NULL}, {b, 2, 1000, 2, NULL}};
    CHECK_EQ_INT(store_append_batch_refs(s, b2, 2, STORE_ATOMIC, NULL, refs), 0);
    CHECK(refs[0] == ra && refs[1] == 0);
    struct got g = sel(s, RE_MATCH_EQ, "job", "a", 0, INT64_MAX);
    CHECK(g.series == 1 && g.samples == 2 && g.v[1] == 3);
    /* A ref'd sample and a labelled one of the same series in one batch are one series for
     * the order check: the second is out of order and the batch is refused. */
    struct store_sample b3[] = {{a, 2, 3000, 4, NULL}, {a, 2, 2500, 5, NULL}};
    uint64_t mixed[2] = {ra, 0};
    struct store_result res;
    CHECK_EQ_INT(store_append_batch_refs(s, b3, 2, STORE_ATOMIC, &res, mixed), -ERANGE);
    CHECK(res.out_of_order == 1 && res.first_bad == 1);
    uint64_t mixed2[2] = {0, ra};
    CHECK_EQ_INT(store_append_batch_refs(s, b3, 2, STORE_ATOMIC, &res, mixed2), -ERANGE);
    CHECK(res.out_of_order == 1 && res.first_bad == 1);
    /* Retention removes both; b is created first and reuses a's old slot. The stale ref of a
     * must not send a's sample into b: it is looked up by labels and lands in a new a. */
    store_gc(s, 1000000);
    struct store_sample b4[] = {{b, 2, 2000000, 6, NULL}};
    refs[0] = rb;
    CHECK_EQ_INT(store_append_batch_refs(s, b4, 1, STORE_ATOMIC, NULL, refs), 0);
    uint64_t rb2 = refs[0];
    CHECK(rb2 != rb && rb2 != ra);
    struct store_sample b5[] = {{a, 2, 2000000, 7, NULL}};
    refs[0] = ra;
    CHECK_EQ_INT(store_append_batch_refs(s, b5, 1, STORE_ATOMIC, &res, refs), 0);
    CHECK(res.new_series == 1 && refs[0] != ra && refs[0] != rb2);
    g = sel(s, RE_MATCH_EQ, "job", "a", 0, INT64_MAX);
    CHECK(g.series == 1 && g.samples == 1 && g.v[0] == 7);
    g = sel(s, RE_MATCH_EQ, "job", "b", 0, INT64_MAX);
    CHECK(g.series == 1 && g.samples == 1 && g.v[0] == 6);
    /* Non-atomic mode reads and writes refs too. */
    struct store_sample b6[] = {{a, 2, 2000001, 8, NULL}, {b, 2, 1, 9, NULL}};
    uint64_t r6[2] = {0, rb2};
    CHECK_EQ_INT(store_append_batch_refs(s, b6, 2, 0, &res, r6), 0);
    CHECK(res.appended == 1 && res.out_of_order == 1 && r6[0] != 0 && r6[1] == 0);
    store_free(s);
}

int main(void) {
    struct store_opts o = {.retention_ms = 10000, .max_series = 4};
    struct store *s = store_new(&o);
    CHECK(s != NULL);

    struct re_label a[] = {{"__name__", "up"}, {"job", "a"}};
    struct re_label b[] = {{"__name__", "up"}, {"job", "b"}};
    struct re_label c[] = {{"__name__", "cpu"}, {"mode", "user"}};
    CHECK_EQ_INT(store_append(s, a, 2, 1000, 1), 0);
    CHECK_EQ_INT(store_append(s, a, 2, 2000, 2), 0);
    CHECK_EQ_INT(store_append(s, b, 2, 1500, 5), 0);
    CHECK_EQ_INT(store_append(s, c, 2, 1000, 7), 0);

    /* ordering: older sample refused, same sample accepted silently, same ts other value refused */
    CHECK_EQ_INT(store_append(s, a, 2, 1500, 9), -ERANGE);
    CHECK_EQ_INT(store_append(s, a, 2, 2000, 2), 0);
    CHECK_EQ_INT(store_append(s, a, 2, 2000, 3), -ERANGE);

    struct got g = sel(s, RE_MATCH_EQ, "__name__", "up", 0, 10000);
    CHECK_EQ_INT(g.series, 2);
    CHECK_EQ_INT(g.samples, 3);
    g = sel(s, RE_MATCH_EQ, "job", "a", 0, 10000);
    CHECK_EQ_INT(g.series, 1);
    CHECK_EQ_INT(g.samples, 2);
    CHECK(g.ts[0] == 1000 && g.ts[1] == 2000 && g.v[1] == 2);
    g = sel(s, RE_MATCH_EQ, "job", "a", 1001, 10000); /* time range respected */
    CHECK_EQ_INT(g.samples, 1);
    g = sel(s, RE_MATCH_NEQ, "job", "a", 0, 10000); /* != also selects series without job */
    CHECK_EQ_INT(g.series, 2);
    g = sel(s, RE_MATCH_RE, "job", "a|b", 0, 10000);
    CHECK_EQ_INT(g.series, 2);
    g = sel(s, RE_MATCH_RE, "job", "", 0, 10000); /* matches series lacking job */
    CHECK_EQ_INT(g.series, 1);
    g = sel(s, RE_MATCH_NRE, "__name__", "u.*", 0, 10000);
    CHECK_EQ_INT(g.series, 1);
    g = sel(s, RE_MATCH_EQ, "__name__", "nope", 0, 10000);
    CHECK_EQ_INT(g.series, 0);

    /* two matchers */
    struct re_matcher mm[2];
    re_matcher_init(&mm[0], RE_MATCH_EQ, "__name__", "up", NULL);
    re_matcher_init(&mm[1], RE_MATCH_RE, "job", "b", NULL);
    g = (struct got){0};
    store_select(s, mm, 2, 0, 10000, collect, &g);
    CHECK_EQ_INT(g.series, 1);
    CHECK_EQ_STR(g.last_job, "b");
    re_matcher_fini(&mm[0]);
    re_matcher_fini(&mm[1]);

    /* distinct label names and values */
    int nn = 0, nv = 0;
    CHECK_EQ_INT(store_label_names(s, count_str, &nn), 0);
    CHECK_EQ_INT(nn, 3); /* __name__, job, mode */
    CHECK_EQ_INT(store_label_values(s, "job", count_str, &nv), 0);
    CHECK_EQ_INT(nv, 2);
    nv = 0;
    store_label_values(s, "__name__", count_str, &nv);
    CHECK_EQ_INT(nv, 2);

    /* stale marker kept bit-exact */
    CHECK_EQ_INT(store_append(s, b, 2, 3000, re_stale_nan()), 0);
    g = sel(s, RE_MATCH_EQ, "job", "b", 2500, 10000);
    CHECK(g.samples == 1 && re_is_stale(g.v[0]));

    /* series limit: 3 series exist, limit 4; a batch creating two more is refused whole */
    struct re_label d[] = {{"__name__", "d"}};
    struct re_label e[] = {{"__name__", "e"}};
    struct store_sample batch[] = {{d, 1, 1000, 1, NULL}, {e, 1, 1000, 1, NULL}};
    struct store_result res;
    CHECK_EQ_INT(store_append_batch(s, batch, 2, STORE_ATOMIC, &res), -ENOSPC);
    CHECK(res.rejected);
    g = sel(s, RE_MATCH_EQ, "__name__", "d", 0, 10000);
    CHECK_EQ_INT(g.series, 0);
    CHECK_EQ_INT(store_append_batch(s, batch, 1, STORE_ATOMIC, &res), 0);
    struct store_stats st;
    store_get_stats(s, &st);
    CHECK_EQ_INT(st.series, 4);
    CHECK_EQ_INT(st.series_limit_hits_total, 1);

    /* atomic batch with an out-of-order sample stores nothing */
    struct store_sample ooo[] = {{a, 2, 5000, 1, NULL}, {a, 2, 4000, 1, NULL}};
    CHECK_EQ_INT(store_append_batch(s, ooo, 2, STORE_ATOMIC, &res), -ERANGE);
    CHECK(res.rejected && res.out_of_order == 1 && res.first_bad == 1);
    g = sel(s, RE_MATCH_EQ, "job", "a", 4000, 10000);
    CHECK_EQ_INT(g.samples, 0);
    /* best effort: the good sample lands, the bad one is counted */
    CHECK_EQ_INT(store_append_batch(s, ooo, 2, 0, &res), 0);
    CHECK(res.appended == 1 && res.out_of_order == 1);

    /* many samples span several chunks and come back in order */
    for (int i = 0; i < 300; i++)
        store_append(s, c, 2, 2000 + i * 10, i);
    g = sel(s, RE_MATCH_EQ, "__name__", "cpu", 2000, 2630);
    CHECK_EQ_INT(g.samples, 64); /* capped by the collector */
    bool ordered = true;
    for (size_t i = 1; i < g.samples; i++)
        ordered &= g.ts[i] > g.ts[i - 1];
    CHECK(ordered);

    /* native histogram sample round-trips */
    double pb[] = {1, 2};
    struct re_span sp[] = {{0, 2}};
    struct re_hist h = {.schema = 0,
                        .count = 3,
                        .sum = 4,
                        .pspans = sp,
                        .npspans = 1,
                        .pbuckets = pb,
                        .npbuckets = 2};
    struct store_sample hs = {d, 1, 2000, 0, &h};
    CHECK_EQ_INT(store_append_batch(s, &hs, 1, STORE_ATOMIC, NULL), 0);
    g = sel(s, RE_MATCH_EQ, "__name__", "d", 0, 10000);
    CHECK(g.samples == 2 && g.hist_seen);

    /* retention: everything older than now - 10s goes, empty series disappear */
    store_gc(s, 12500);
    store_get_stats(s, &st);
    CHECK_EQ_INT(st.series, 3); /* up{job=a} (5000), up{job=b} (stale at 3000), cpu remain */
    g = sel(s, RE_MATCH_EQ, "__name__", "d", 0, 100000);
    CHECK_EQ_INT(g.series, 0);
    store_gc(s, 1000000);
    store_get_stats(s, &st);
    CHECK_EQ_INT(st.series, 0);
    CHECK_EQ_INT(st.samples, 0);
    /* series can be created again after removal */
    CHECK_EQ_INT(store_append(s, a, 2, 2000000, 1), 0);
    g = sel(s, RE_MATCH_EQ, "__name__", "up", 0, INT64_MAX);
    CHECK_EQ_INT(g.series, 1);
    /* STORE_LAST_WINS: a float at the newest timestamp replaces it (pushes in one ms) */
    struct re_label lw[] = {{"__name__", "lastwins"}};
    struct store_sample lw1[] = {{lw, 1, 5000, 1, NULL}, {lw, 1, 5000, 2, NULL}};
    CHECK_EQ_INT(store_append_batch(s, lw1, 2, STORE_ATOMIC, &res), -ERANGE);
    CHECK_EQ_INT(store_append_batch(s, lw1, 2, STORE_ATOMIC | STORE_LAST_WINS, &res), 0);
    struct store_sample lw2 = {lw, 1, 5000, 3, NULL};
    CHECK_EQ_INT(store_append_batch(s, &lw2, 1, STORE_LAST_WINS, &res), 0);
    g = sel(s, RE_MATCH_EQ, "__name__", "lastwins", 0, 10000);
    CHECK(g.samples == 1 && g.v[0] == 3);

    /* samples far in the future are refused (they would outlive retention) */
    struct store_opts fut = {.retention_ms = 10000, .max_series = 100, .future_ms = 60000};
    store_set_opts(s, &fut);
    struct re_label f1[] = {{"__name__", "future"}};
    CHECK_EQ_INT(store_append(s, f1, 1, (int64_t)1e15, 1), -ERANGE);
    struct store_sample fb = {f1, 1, (int64_t)1e15, 1, NULL};
    CHECK_EQ_INT(store_append_batch(s, &fb, 1, 0, &res), 0);
    CHECK(res.too_new == 1 && res.appended == 0);
    store_get_stats(s, &st);
    CHECK_EQ_INT(st.too_new_total, 2);
    store_set_opts(s, &o);

    /* a series without __name__ is indexed under "" and can be removed and re-created */
    struct re_label noname[] = {{"job", "x"}};
    CHECK_EQ_INT(store_append(s, noname, 1, 2000000, 1), 0);
    store_gc(s, 1000000000);
    CHECK_EQ_INT(store_append(s, noname, 1, 3000000, 1), 0);
    g = sel(s, RE_MATCH_EQ, "job", "x", 0, INT64_MAX);
    CHECK_EQ_INT(g.samples, 1);
    store_gc(s, 1000000000);

    /* refs: fast appends to known series, invalidated when retention removes the series */
    uint64_t ref = 0, ref2 = 0;
    CHECK_EQ_INT(store_ref_get(s, a, 2, &ref), 0);
    CHECK_EQ_INT(store_ref_get(s, a, 2, &ref2), 0);
    CHECK(ref == ref2);
    int64_t rts[] = {2000001, 2000002, 2000001};
    double rv[] = {5, 6, 7};
    uint64_t refs[] = {ref, ref, ref};
    CHECK_EQ_INT(store_append_refs(s, refs, rts, rv, 3), -ERANGE); /* third is out of order */
    g = sel(s, RE_MATCH_EQ, "__name__", "up", 0, INT64_MAX);
    CHECK_EQ_INT(g.samples, 2); /* the series was re-created by ref_get after the gc above */
    CHECK_EQ_DBL(g.v[1], 6);
    store_gc(s, 1000000000);
    CHECK_EQ_INT(store_append_refs(s, refs, rts, rv, 1), -ENOENT);
    CHECK_EQ_INT(store_ref_get(s, b, 2, &ref2), 0); /* reuses the freed slot, new generation */
    CHECK(ref2 != ref);
    CHECK_EQ_INT(store_append_refs(s, &ref2, rts, rv, 1), 0);
    g = sel(s, RE_MATCH_EQ, "job", "b", 0, INT64_MAX);
    CHECK_EQ_INT(g.samples, 1);
    struct store_opts small = {.retention_ms = 10000, .max_series = 1};
    store_set_opts(s, &small);
    CHECK_EQ_INT(store_ref_get(s, c, 2, &ref), -ENOSPC);
    store_free(s);
    (void)N(a);
    test_select_last();
    test_touch();
    test_batch_refs();
    return tap_done();
}
