/* SPDX-License-Identifier: Apache-2.0 */
/* A set of metric families built for one scrape, written as Prometheus text format 0.0.4. */
#ifndef PROMLET_EXPORTER_EXPOSE_H
#define PROMLET_EXPORTER_EXPOSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ruleeval.h"
#include "sbuf.h"

enum mtype { MTYPE_COUNTER, MTYPE_GAUGE, MTYPE_UNTYPED, MTYPE_HISTOGRAM, MTYPE_SUMMARY };

struct mset;
struct mfam;

/* Returns new, empty set (free with mset_free), NULL on OOM. Not thread-safe: one builder
 * at a time (collectors_scrape serialises its collectors). */
struct mset *mset_new(void);
/* Frees the set, its families and samples; accepts NULL. */
void mset_free(struct mset *s);

/* Gets or creates family `name` with HELP text `help` (NULL: no HELP line, as client_golang
 * writes a family without help) and `type` (borrows both strings, the
 * set copies them). Returns the family (owned by the set), or NULL when name is not a valid
 * metric name, when a family of that name exists with another type (conflict), or on OOM. */
struct mfam *mset_family(struct mset *s, const char *name, const char *help, enum mtype type);

/* Adds one sample line name+suffix{labels} value to family f. suffix is "" or "_bucket",
 * "_sum", "_count", ... (borrowed, copied); labels are name/value pairs in any order
 * (borrowed, copied; sorted by name on output). Returns 0, -ENOMEM, -EINVAL (bad label
 * name, duplicate label name or invalid UTF-8 value) or -EEXIST when the same series
 * (suffix and label set) was already added to f. */
int mfam_add(struct mfam *f, const char *suffix, const struct re_label *labels, size_t nlabels,
             double value);
/* As mfam_add with an explicit timestamp in milliseconds since the epoch. */
int mfam_add_ts(struct mfam *f, const char *suffix, const struct re_label *labels, size_t nlabels,
                double value, int64_t ts_ms);
/* As mfam_add with labels as npairs (name, value) const char * varargs (borrowed):
 * mfam_addf(f, "", v, 2, "cpu", "0", "mode", "user"). At most 16 pairs (-EINVAL beyond). */
int mfam_addf(struct mfam *f, const char *suffix, double value, size_t npairs, ...);

/* True if family `name` exists in s (borrows name). */
bool mset_has(const struct mset *s, const char *name);
/* Number of samples added to family `name`, 0 if it does not exist. */
size_t mset_count(const struct mset *s, const char *name);

/* Called for each sample of a set: the sample's full name (family name + suffix, e.g.
 * "x_bucket"), its labels sorted by name without __name__, value, and timestamp in ms
 * (0 when the sample has none). All borrowed for the call. Nonzero stops the walk. */
typedef int mset_sample_fn(void *arg, const char *family, enum mtype type, const char *name,
                           const struct re_label *labels, size_t nlabels, double value,
                           int64_t ts_ms);
/* Visits every sample of s in insertion order per family. Returns fn's first nonzero return
 * or 0. Not thread-safe with builders of s. */
int mset_foreach(const struct mset *s, mset_sample_fn *fn, void *arg);

/* Appends all families that have samples, sorted by name, to out in text format 0.0.4: HELP
 * and TYPE lines, then samples sorted as client_golang sorts them (fewer labels first, then
 * by label values; histogram/summary samples grouped per label set with buckets by le,
 * then _sum, _count). Escapes HELP and label values per the format. Returns 0 or -ENOMEM. */
int mset_write_text(const struct mset *s, struct sbuf *out);

/* Appends the gzip stream (zlib deflate with a gzip header) of in[0..len) to out (borrows
 * in). Returns 0, -ENOMEM, or -EIO on a zlib error. */
int expose_gzip(const char *in, size_t len, struct sbuf *out);

#endif
