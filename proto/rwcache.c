/* SPDX-License-Identifier: Apache-2.0 */
/* rwcache: remote-write label sets that passed validation, by their exact wire bytes. */
#include "rwcache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* One entry, one allocation: the header, the name and value lengths of each label, the key
 * bytes, then each label's name and value, NUL-terminated. */
struct rwc_ent {
    uint64_t hash, tag;
    uint32_t key_len, n_labels, str_len;
    uint32_t lens[]; /* name, value, name, value, ... */
};

static const uint8_t *ent_key(const struct rwc_ent *e) {
    return (const uint8_t *)(e->lens + 2 * e->n_labels);
}

/* Open addressing with linear probing, at most half full; nothing is ever deleted one by
 * one, so no tombstones. */
struct rwcache {
    struct rwc_ent **tab;
    size_t mask; /* table size - 1 (valid when tab) */
    size_t count, max;
    size_t bytes, max_bytes; /* of the entries */
};

struct rwcache *rwcache_new(size_t max_entries, size_t max_bytes) {
    struct rwcache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->max = max_entries ? max_entries : 1;
    c->max_bytes = max_bytes ? max_bytes : 1;
    return c;
}

void rwcache_reset(struct rwcache *c) {
    if (!c || !c->tab) return;
    for (size_t i = 0; i <= c->mask; i++) {
        free(c->tab[i]);
        c->tab[i] = NULL;
    }
    c->count = 0;
    c->bytes = 0;
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
        if (e->hash == k->hash && e->key_len == k->len && !memcmp(ent_key(e), k->bytes, k->len))
            break;
    return i;
}

int rwcache_get(const struct rwcache *c, const struct rw_key *key, rwcache_alloc_fn *alloc,
                void *actx, uint64_t *tag, const struct proto_label **labels, size_t *n) {
    if (!c || !c->count || !key->len) return 0;
    const struct rwc_ent *e = c->tab[find_slot(c, key)];
    if (!e) return 0;
    struct proto_label *ls = alloc(actx, e->n_labels * sizeof *ls + e->str_len);
    if (!ls) return -ENOMEM;
    char *str = (char *)(ls + e->n_labels);
    memcpy(str, ent_key(e) + e->key_len, e->str_len);
    for (size_t i = 0; i < e->n_labels; i++) {
        size_t nl = e->lens[2 * i], vl = e->lens[2 * i + 1];
        ls[i] = (struct proto_label){str, nl, str + nl + 1, vl};
        str += nl + vl + 2;
    }
    *tag = e->tag;
    *labels = ls;
    *n = e->n_labels;
    return 1;
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

int rwcache_put(struct rwcache *c, const struct rw_key *key, const struct proto_label *labels,
                size_t n, uint64_t tag) {
    if (!c || !key->len || !tag) return -EINVAL;
    if (c->tab) {
        struct rwc_ent *e = c->tab[find_slot(c, key)];
        if (e) { /* same bytes, so the same labels */
            e->tag = tag;
            return 0;
        }
    }
    size_t str_len = 0;
    for (size_t i = 0; i < n; i++)
        str_len += labels[i].name_len + labels[i].value_len + 2;
    if (key->len > UINT32_MAX || n > UINT32_MAX / 2 || str_len > UINT32_MAX) return -EINVAL;
    size_t size = sizeof(struct rwc_ent) + 2 * n * sizeof(uint32_t) + key->len + str_len;
    if (size > c->max_bytes) return 0; /* too big to keep: the caller validates it each time */
    /* full: start over (the simplest bound) */
    if (c->count >= c->max || c->bytes + size > c->max_bytes) rwcache_reset(c);
    if ((c->count + 1) * 2 > (c->tab ? c->mask + 1 : 0) && grow(c)) return -ENOMEM;
    struct rwc_ent *e = malloc(size);
    if (!e) return -ENOMEM;
    e->hash = key->hash;
    e->tag = tag;
    e->key_len = (uint32_t)key->len;
    e->n_labels = (uint32_t)n;
    e->str_len = (uint32_t)str_len;
    memcpy((uint8_t *)ent_key(e), key->bytes, key->len);
    char *str = (char *)ent_key(e) + key->len;
    for (size_t i = 0; i < n; i++) {
        e->lens[2 * i] = (uint32_t)labels[i].name_len;
        e->lens[2 * i + 1] = (uint32_t)labels[i].value_len;
        memcpy(str, labels[i].name, labels[i].name_len);
        str[labels[i].name_len] = 0;
        str += labels[i].name_len + 1;
        memcpy(str, labels[i].value, labels[i].value_len);
        str[labels[i].value_len] = 0;
        str += labels[i].value_len + 1;
    }
    c->tab[find_slot(c, key)] = e;
    c->count++;
    c->bytes += size;
    return 0;
}
