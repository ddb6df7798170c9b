/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of rwcache and of rw_decode with rw_limits.known: a label set skips validation
 * only when its wire bytes equal those of one that passed, and decodes as without the cache. */
#include "proto.h"

#include "rwbuild.h"
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

/* Counts the calls of the known callback around rwcache_known. */
struct spy {
    struct rwcache *c;
    size_t calls, hits;
};

static void spy_known(void *arg, size_t n, const struct rw_key *keys, uint64_t *tags) {
    struct spy *s = arg;
    s->calls++;
    rwcache_known(s->c, n, keys, tags);
    for (size_t i = 0; i < n; i++)
        s->hits += tags[i] != 0;
}

/* Decodes b with the cache; returns the code, the labels in out, and (if ok and remember)
 * puts every key with tag 100 + series index. */
static int decode(const struct rwb *b, struct spy *spy, bool sort, char *out, bool remember,
                  uint64_t *tags, struct perr *e) {
    size_t len;
    uint8_t *body = rwb_body(b, &len);
    struct rw_limits lim = {.known = spy_known, .known_arg = spy, .sort_labels = sort};
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
        if (remember) CHECK_EQ_INT(rwcache_put(spy->c, &k, 100 + i), 0);
    }
    rw_request_free(r);
    return code;
}

static void test_cache_struct(void) {
    struct rwcache *c = rwcache_new(4);
    const uint8_t a[] = "\x0a\x01x\x12\x01y", b[] = "\x0a\x01x\x12\x01z";
    struct rw_key ka = {a, sizeof a - 1, 7}, kb = {b, sizeof b - 1, 7}; /* same hash */
    uint64_t tags[2] = {0, 0};
    rwcache_known(c, 1, &ka, tags);
    CHECK(tags[0] == 0);
    CHECK_EQ_INT(rwcache_put(c, &ka, 5), 0);
    struct rw_key both[2] = {ka, kb};
    rwcache_known(c, 2, both, tags);
    TAP_OK(tags[0] == 5 && tags[1] == 0, "same hash, one byte apart: only the stored bytes hit");
    CHECK_EQ_INT(rwcache_put(c, &ka, 6), 0); /* replaces the tag */
    CHECK_EQ_INT((int)rwcache_count(c), 1);
    tags[0] = 0;
    rwcache_known(c, 1, &ka, tags);
    CHECK(tags[0] == 6);
    CHECK_EQ_INT(rwcache_put(c, &ka, 0), -EINVAL);
    struct rw_key empty = {a, 0, 7};
    CHECK_EQ_INT(rwcache_put(c, &empty, 1), -EINVAL);
    /* Bounded: the fifth distinct key empties the cache of four first. */
    uint8_t keys[6][4];
    for (int i = 0; i < 6; i++) {
        memcpy(keys[i], "key", 3);
        keys[i][3] = (uint8_t)i;
        struct rw_key k = {keys[i], 4, (uint64_t)i * 0x9e3779b97f4a7c15ULL};
        CHECK_EQ_INT(rwcache_put(c, &k, 10 + (uint64_t)i), 0);
        CHECK(rwcache_count(c) <= 4);
    }
    struct rw_key k5 = {keys[5], 4, 5 * 0x9e3779b97f4a7c15ULL};
    tags[0] = 0;
    rwcache_known(c, 1, &k5, tags);
    CHECK(tags[0] == 15);
    rwcache_reset(c);
    CHECK_EQ_INT((int)rwcache_count(c), 0);
    rwcache_free(c);
    rwcache_free(NULL);
}

static void test_decode_with_cache(void) {
    struct spy spy = {.c = rwcache_new(100)};
    char first[1024], again[1024], plain[1024];
    uint64_t tags[8] = {0};
    struct perr e;
    struct rwb b;
    rwb_init(&b);
    size_t s0 = rwb_series(&b, "__name__", "up", "empty", "", "job", "node", RWB_END);
    size_t s1 = rwb_series(&b, "__name__", "up", "job", "other", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    rwb_sample(&b, s1, 1000, 2);
    CHECK_EQ_INT(decode(&b, &spy, false, first, true, tags, &e), 0);
    CHECK(spy.calls == 1 && spy.hits == 0 && tags[0] == 0 && tags[1] == 0);
    CHECK_EQ_INT((int)rwcache_count(spy.c), 2);
    CHECK_EQ_INT(decode(&b, &spy, false, again, false, tags, &e), 0);
    TAP_OK(spy.hits == 2 && tags[0] == 100 && tags[1] == 101, "both series hit, tags come back");
    CHECK_EQ_STR(again, first);
    CHECK_EQ_STR(again, "__name__=up,job=node,;__name__=up,job=other,;");

    /* One byte apart from a cached, valid label set: an invalid name must still be refused. */
    rwb_init(&b);
    s0 = rwb_series(&b, "__name__", "up", "empty", "", "jo-", "node", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    size_t before = spy.hits;
    CHECK_EQ_INT(decode(&b, &spy, false, again, false, NULL, &e), -EPROTO);
    CHECK(spy.hits == before && strstr(e.msg, "invalid label name") != NULL);
    /* ... and a duplicate label name, and a value with a NUL byte. */
    rwb_init(&b);
    s0 = rwb_series(&b, "__name__", "up", "job", "node", "job", "node", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    CHECK_EQ_INT(decode(&b, &spy, false, again, false, NULL, &e), -EPROTO);
    CHECK(strstr(e.msg, "duplicate label name") != NULL);

    /* Unsorted labels accepted with sort_labels: a hit is sorted like a miss. */
    struct spy sorted = {.c = rwcache_new(100)};
    rwb_init(&b);
    s0 = rwb_series(&b, "job", "x", "__name__", "m", "a", "1", RWB_END);
    rwb_sample(&b, s0, 1000, 1);
    CHECK_EQ_INT(decode(&b, &sorted, true, first, true, NULL, &e), 0);
    CHECK_EQ_INT(decode(&b, &sorted, true, again, false, NULL, &e), 0);
    CHECK(sorted.hits == 1);
    CHECK_EQ_STR(again, first);
    CHECK_EQ_STR(again, "__name__=m,a=1,job=x,;");
    /* Without a cache there are no keys. */
    size_t len;
    uint8_t *body = rwb_body(&b, &len);
    struct rw_limits lim = {.sort_labels = true};
    int code;
    struct rw_request *r = rw_decode(body, len, &lim, &code, NULL);
    free(body);
    struct rw_key k;
    CHECK(r != NULL && rw_request_key(r, 0, &k, NULL) == -ENOENT);
    struct rw_sink s = {.arg = plain, .series = cat_series};
    plain[0] = 0;
    rw_request_foreach(r, &s);
    CHECK_EQ_STR(plain, first);
    rw_request_free(r);
    rwcache_free(sorted.c);
    rwcache_free(spy.c);
}

int main(void) {
    test_cache_struct();
    test_decode_with_cache();
    return tap_done();
}
