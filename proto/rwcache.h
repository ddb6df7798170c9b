/* SPDX-License-Identifier: Apache-2.0 */
/* rwcache: private interface of the label-set cache between rw.c and rwcache.c. */
#ifndef PROMLET_PROTO_RWCACHE_H
#define PROMLET_PROTO_RWCACHE_H

#include "proto.h"

/* Allocates size bytes for the caller (e.g. from a request's arena); NULL on failure. */
typedef void *rwcache_alloc_fn(void *ctx, size_t size);

/* Looks key up; on a hit copies the entry's label set into memory from alloc (returned in
 * *labels, *n: new, owned by whoever owns alloc's memory) and sets *tag. Returns 1 (hit),
 * 0 (miss) or -ENOMEM. */
int rwcache_get(const struct rwcache *c, const struct rw_key *key, rwcache_alloc_fn *alloc,
                void *actx, uint64_t *tag, const struct proto_label **labels, size_t *n);

/* Records key with its validated label set (copied) and tag (non-zero); for bytes already
 * present only the tag changes. Returns 0 (also for an entry larger than max_bytes, which is
 * not kept), -EINVAL (no key bytes, tag 0) or -ENOMEM (not recorded). At max_entries, or
 * when the entry would pass max_bytes, the cache is emptied first. */
int rwcache_put(struct rwcache *c, const struct rw_key *key, const struct proto_label *labels,
                size_t n, uint64_t tag);

#endif
