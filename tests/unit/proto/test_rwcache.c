/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of rwcache and of rw_decode with rw_limits.known: a label set skips validation
 * only when its wire bytes equal those of one that passed, and decodes as without the cache. */
#include "proto.h"

#include "rwbuild.h"
#include "rwcache.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>

/* All series' labels as "name=value,...;" */
static int cat_series(void *arg, const struct proto_label *l, size_t n) {
    char *out = arg;
    for (size_t i = 0; i < n; i++) {
        size_t o = strlen(out);
        snprintf(out + o, 1024 - o, "%.*s=%.*s,", (int)l[i].name_len, l[i].name,
                 (int)l[i].value_len, l[i].value);
    }
    size_t o = strlen(out);
    snprintf(out + o, 1024 - o, ";");
    return 0;
}

/* A bump allocator over a static buffer, for rwcache_get's copies. */
static unsigned char pool[1 << 16];
static size_t pool_used;

static void *pool_alloc(void *ctx, size_t size) {
    (void)ctx;
    size = (size + 15) & ~(size_t)15;
    if (size > sizeof pool - pool_used) return NULL;
    void *p = pool + pool_used;
    pool_used += size;
    return p;
}

/* Decodes b with cache c; returns the code, the labels in out, the tags, and (if ok and
 * remember) records every series with tag 100 + its index. */
static int decode(const struct rwb *b, struct rwcache *c, bool sort, char *out, bool remember,
                  uint64_t *tags, struct perr *e) {
    size_t len;
    uint8_t *body = rwb_body(b, &len);
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    struct rw_limits lim = {.cache = c, .cache_lock = &lock, .sort_labels = sort};
    int code = 1;
    struct rw_request *r = rw_decode(body, len, &lim, &code, e);
    free(body);
    out[0] = 0;
    if (!r) return code;
    struct rw_sink s = {.arg = out, .series = cat_series};
    rw_request_foreach(r, &s);
    for (size_t i = 0; i < rw_request_series(r); i++) {
        struct rw_key k;
        uint64_t tag = 0;
        if (rw_request_key(r, i, &k, &tag)) continue;
        if (tags) tags[i] = tag;
        if (remember) CHECK_EQ_INT(rw_request_remember(r, i, c, 100 + i), 0);
    }
    rw_request_free(r);
    return code;
}

static void test_cache_struct(void) {
    struct rwcache *c = rwcache_new(4, 1 << 20);
    const uint8_t a[] = "\x0a\x01x\x12\x01y", b[] = "\x0a\x01x\x12\x01z";
    struct rw_key ka = {a, sizeof a - 1, 7}, kb = {b, sizeof b - 1, 7}; /* same hash */
    struct proto_label la[] = {{"__name__", 8, "up", 2}, {"x", 1, "y", 1}};
    uint64_t tag = 0;
    const struct proto_label *got;
    size_t n = 0;
    CHECK_EQ_INT(rwcache_get(c, &ka, pool_alloc, NULL, &tag, &got, &n), 0);
    CHECK_EQ_INT(rwcache_put(c, &ka, la, 2, 5), 0);
    CHECK_EQ_INT(rwcache_get(c, &ka, pool_alloc, NULL, &tag, &got, &n), 1);
    TAP_OK(tag == 5 && n == 2 && got != la && !strcmp(got[0].name, "__name__") &&
               got[0].name_len == 8 && !strcmp(got[0].value, "up") && !strcmp(got[1].name, "x") &&
               !strcmp(got[1].value, "y") && got[1].value_len == 1,
           "a hit copies the label set, NUL-terminated");
    TAP_OK(rwcache_get(c, &kb, pool_alloc, NULL, &tag, &got, &n) == 0,
           "same hash, one byte apart: a miss");
    CHECK_EQ_INT(rwcache_put(c, &ka, la, 2, 6), 0); /* replaces the tag */
    CHECK_EQ_INT((int)rwcache_count(c), 1);
    CHECK_EQ_INT(rwcache_get(c, &ka, pool_alloc, NULL, &tag, &got, &n), 1);
    CHECK(tag == 6);
    CHECK_EQ_INT(rwcache_put(c, &ka, la, 2, 0), -EINVAL);
    struct rw_key empty = {a, 0, 7};
    CHECK_EQ_INT(rwcache_put(c, &empty, la, 2, 1), -EINVAL);
    /* Bounded: the fifth distinct key empties the cache of four first. */
    uint8_t keys[6][4];
    for (int i = 0; i < 6; i++) {
        memcpy(keys[i], "key", 3);
        keys[i][3] = (uint8_t)i;
        struct rw_key k = {keys[i], 4, (uint64_t)i * 0x9e3779b97f4a7c15ULL};
        CHECK_EQ_INT(rwcache_put(c, &k, la, 1, 10 + (uint64_t)i), 0);
        CHECK(rwcache_count(c) <= 4);
    }
    struct rw_key k5 = {keys[5], 4, 5 * 0x9e3779b97f4a7c15ULL};
    CHECK_EQ_INT(rwcache_get(c, &k5, pool_alloc, NULL, &tag, &got, &n), 1);
    CHECK(tag == 15 && n == 1);
    rwcache_reset(c);
    CHECK_EQ_INT((int)rwcache_count(c), 0);
    CHECK_EQ_INT(rwcache_get(c, &k5, pool_alloc, NULL, &tag, &got, &n), 0);
    rwcache_free(c);
    rwcache_free(NULL);

    /* Bounded in bytes too: long label sets empty it before the entry count is reached, and
     * one larger than the whole budget is not kept. */
    c = rwcache_new(1000, 4096);
    static char big[1500];
    memset(big, 'v', sizeof big);
    struct proto_label lb[] = {{"__name__", 8, big, sizeof big}};
    size_t most = 0;
    for (int i = 0; i < 6; i++) {
        struct rw_key k = {keys[i], 4, (uint64_t)i * 0x9e3779b97f4a7c15ULL};
        CHECK_EQ_INT(rwcache_put(c, &k, lb, 1, 20 + (uint64_t)i), 0);
        if (rwcache_count(c) > most) most = rwcache_count(c);
    }
    CHECK(most == 2); /* two entries of ~1.5 KB fit in 4 KB, a third starts over */
    static char huge[8192];
    memset(huge, 'h', sizeof huge);
    struct proto_label lh[] = {{"__name__", 8, huge, sizeof huge}};
    struct rw_key kh = {(const uint8_t *)"huge", 4, 99};
    size_t before = rwcache_count(c);
    CHECK_EQ_INT(rwcache_put(c, &kh, lh, 1, 7), 0);
    CHECK(rwcache_count(c) == before);
    CHECK_EQ_INT(rwcache_get(c, &kh, pool_alloc, NULL, &tag, &got, &n), 0);
    rwcache_free(c);
}

static void test_decode_with_cache(void) {
    struct rwcache *c = rwcache_new(100, 1 << 20);
    char first[1024], again[1024], plain[1024];
    uint64_t tags[8] = {0};
    struct perr e;
    struct rwb b;
    rwb_init(&b);
    size_t s0 = rwb_series(&b, "__name__", "up", "empty", "", "job", "node", RWB_END);
    size_t s1 = rwb_series(&b, "__name__", "up", "job", "other", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    rwb_sample(&b, s1, 1000, 2);
    CHECK_EQ_INT(decode(&b, c, false, first, true, tags, &e), 0);
    CHECK(tags[0] == 0 && tags[1] == 0);
    CHECK_EQ_INT((int)rwcache_count(c), 2);
    CHECK_EQ_INT(decode(&b, c, false, again, false, tags, &e), 0);
    TAP_OK(tags[0] == 100 && tags[1] == 101, "both series hit, their tags come back");
    CHECK_EQ_STR(again, first);
    CHECK_EQ_STR(again, "__name__=up,job=node,;__name__=up,job=other,;");

    /* One byte apart from a cached, valid label set: an invalid name must still be refused. */
    rwb_init(&b);
    s0 = rwb_series(&b, "__name__", "up", "empty", "", "jo-", "node", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    CHECK_EQ_INT(decode(&b, c, false, again, false, NULL, &e), -EPROTO);
    CHECK(strstr(e.msg, "invalid label name") != NULL);
    /* ... and so must a duplicate label name. */
    rwb_init(&b);
    s0 = rwb_series(&b, "__name__", "up", "job", "node", "job", "node", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    CHECK_EQ_INT(decode(&b, c, false, again, false, NULL, &e), -EPROTO);
    CHECK(strstr(e.msg, "duplicate label name") != NULL);
    /* A known series next to an invalid one: the request is refused as a whole. */
    rwb_init(&b);
    s0 = rwb_series(&b, "__name__", "up", "empty", "", "job", "node", RWB_END);
    s1 = rwb_series(&b, "__name__", "up", "job", "", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    rwb_sample(&b, s1, 1000, 1);
    CHECK_EQ_INT(decode(&b, c, false, again, false, NULL, &e), 0);
    CHECK_EQ_STR(again, "__name__=up,job=node,;__name__=up,;");
    s1 = rwb_series(&b, "job", "x", RWB_END);
    rwb_sample(&b, s1, 1000, 1);
    CHECK_EQ_INT(decode(&b, c, false, again, false, NULL, &e), -EPROTO);
    CHECK(strstr(e.msg, "series 3: missing metric name") != NULL);

    /* Unsorted labels accepted with sort_labels: a hit is sorted like a miss. */
    struct rwcache *sorted = rwcache_new(100, 1 << 20);
    rwb_init(&b);
    s0 = rwb_series(&b, "job", "x", "__name__", "m", "a", "1", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    CHECK_EQ_INT(decode(&b, sorted, true, first, true, NULL, &e), 0);
    CHECK_EQ_INT(decode(&b, sorted, true, again, false, tags, &e), 0);
    CHECK(tags[0] == 100);
    CHECK_EQ_STR(again, first);
    CHECK_EQ_STR(again, "__name__=m,a=1,job=x,;");
    /* Without a cache there are no keys, and the labels are the same. */
    size_t len;
    uint8_t *body = rwb_body(&b, &len);
    struct rw_limits lim = {.sort_labels = true};
    int code;
    struct rw_request *r = rw_decode(body, len, &lim, &code, NULL);
    free(body);
    struct rw_key k;
    CHECK(r != NULL && rw_request_key(r, 0, &k, NULL) == -ENOENT);
    CHECK_EQ_INT(rw_request_remember(r, 0, sorted, 1), -ENOENT);
    struct rw_sink s = {.arg = plain, .series = cat_series};
    plain[0] = 0;
    rw_request_foreach(r, &s);
    CHECK_EQ_STR(plain, first);
    rw_request_free(r);
    rwcache_free(sorted);
    rwcache_free(c);
}

int main(void) {
    test_cache_struct();
    test_decode_with_cache();
    return tap_done();
}
