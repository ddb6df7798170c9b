/* SPDX-License-Identifier: Apache-2.0 */
/* rwcache: remote-write label sets that passed validation, by their exact wire bytes. */
#include "proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct rwc_ent {
    uint64_t hash, tag;
    size_t len;
    uint8_t bytes[];
};

/* Open addressing with linear probing, at most half full; nothing is ever deleted one by
 * one, so no tombstones. */
struct rwcache {
    struct rwc_ent **tab;
    size_t mask; /* table size - 1, 0 before the first put */
    size_t count, max;
};

struct rwcache *rwcache_new(size_t max_entries) {
    struct rwcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->max = max_entries ? max_entries : 1;
    return c;
}

void rwcache_reset(struct rwcache *c) {
    if (!c || !c->tab) return;
    for (size_t i = 0; i <= c->mask; i++) {
        free(c->tab[i]);
        c->tab[i] = NULL;
    }
    c->count = 0;
}

void rwcache_free(struct rwcache *c) {
    if (!c) return;
    rwcache_reset(c);
    free(c->tab);
    free(c);
}

size_t rwcache_count(const struct rwcache *c) {
    return c ? c->count : 0;
}

/* The slot holding key, or the empty slot where it would go. Needs a table. */
static size_t find_slot(const struct rwcache *c, const struct rw_key *k) {
    size_t i = k->hash & c->mask;
    for (struct rwc_ent *e; (e = c->tab[i]); i = (i + 1) & c->mask)
        if (e->hash == k->hash && e->len == k->len && !memcmp(e->bytes, k->bytes, k->len)) break;
    return i;
}

void rwcache_known(void *arg, size_t n, const struct rw_key *keys, uint64_t *tags) {
    struct rwcache *c = arg;
    if (!c || !c->count) return;
    for (size_t i = 0; i < n; i++) {
        if (!keys[i].len) continue;
        struct rwc_ent *e = c->tab[find_slot(c, &keys[i])];
        if (e) tags[i] = e->tag;
    }
}

static int grow(struct rwcache *c) {
    size_t cap = c->tab ? (c->mask + 1) * 2 : 64;
    struct rwc_ent **nt = calloc(cap, sizeof *nt);
    if (!nt) return -ENOMEM;
    size_t mask = cap - 1;
    for (size_t i = 0; c->tab && i <= c->mask; i++) {
        struct rwc_ent *e = c->tab[i];
        if (!e) continue;
        size_t j = e->hash & mask;
        while (nt[j])
            j = (j + 1) & mask;
        nt[j] = e;
    }
    free(c->tab);
    c->tab = nt;
    c->mask = mask;
    return 0;
}

int rwcache_put(struct rwcache *c, const struct rw_key *key, uint64_t tag) {
    if (!c || !key->len || !tag) return -EINVAL;
    if (c->tab) {
        struct rwc_ent *e = c->tab[find_slot(c, key)];
        if (e) {
            e->tag = tag;
            return 0;
        }
    }
    if (c->count >= c->max) rwcache_reset(c); /* full: start over (the simplest bound) */
    if ((c->count + 1) * 2 > (c->tab ? c->mask + 1 : 0) && grow(c)) return -ENOMEM;
    struct rwc_ent *e = malloc(sizeof *e + key->len);
    if (!e) return -ENOMEM;
    e->hash = key->hash;
    e->tag = tag;
    e->len = key->len;
    memcpy(e->bytes, key->bytes, key->len);
    c->tab[find_slot(c, key)] = e;
    c->count++;
    return 0;
}
