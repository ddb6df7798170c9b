/* SPDX-License-Identifier: Apache-2.0 */
/* Host and cgroup collectors: flags, the registration table, and one scrape over all of them. */
#ifndef PROMLET_EXPORTER_COLLECTOR_H
#define PROMLET_EXPORTER_COLLECTOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "expose.h"
#include "log.h"
#include "ruleeval.h"
#include "sbuf.h"

/* ---- public API (daemon side) ------------------------------------------------------------ */

struct col_options;
struct collectors;

/* Returns new options with node_exporter's defaults (free with col_options_free), NULL on OOM. */
struct col_options *col_options_new(void);
void col_options_free(struct col_options *o);

/* Applies one flag given without its leading dashes ("collector.cpu", "no-collector.processes",
 * "collector.disable-defaults", "path.procfs", "collector.diskstats.device-exclude", ...);
 * value is NULL when the flag had no "=value" (borrows both, copies what it keeps). Returns 1
 * if consumed, 0 if it is not a collector flag, -EINVAL with err->msg filled for a bad or
 * missing value, -ENOMEM. Boolean flags accept no value, "true" or "false". */
int col_options_set(struct col_options *o, const char *flag, const char *value, struct perr *err);

/* Appends the --help lines of all collector flags to out, kingpin-aligned:
 * "      --[no-]collector.cpu                     Exposes CPU statistics (default: enabled)."
 * then the value flags with their defaults. Returns 0 or -ENOMEM. */
int col_options_usage(struct sbuf *out);

/* Returns new collectors for the enabled set in o (borrows o; copies what it needs): compiles
 * the include/exclude regexes and runs each collector's init. NULL with err filled on a bad
 * flag value (err->msg "out of memory" on OOM). Free with collectors_free. */
struct collectors *collectors_new(const struct col_options *o, struct perr *err);
/* Runs each collector's fini and frees everything; accepts NULL. Waits for no stuck stat. */
void collectors_free(struct collectors *c);

/* Runs every enabled collector now and adds its families to out (borrows out), plus
 * node_scrape_collector_duration_seconds and node_scrape_collector_success{collector}. A
 * collector that fails sets success 0 and logs (rate-limited); the scrape goes on. A family
 * already in out with another type (say a pushed one) fails only the collector that needs it.
 * A failed collector keeps the samples it added before failing, as node_exporter does.
 * Thread-safe: concurrent callers are serialised. Returns 0 or -ENOMEM. */
int collectors_scrape(struct collectors *c, struct mset *out);

/* ---- collector side (exporter/collectors/ *.c) ------------------------------------------- */

/* Where files are read from: --path.procfs, --path.sysfs, --path.rootfs, --path.udev.data. */
struct col_paths {
    const char *procfs, *sysfs, *rootfs, *udev_data;
};

/* A compiled PCRE2 pattern matched as Go's regexp.MatchString does (unanchored search). */
struct col_regex;

/* Compiles pattern (borrowed); NULL or "" gives *out = NULL (no filter). Returns 0, -ENOMEM,
 * or -EINVAL with err filled naming `flag`. Result is freed with col_regex_free. */
int col_regex_new(const char *flag, const char *pattern, struct col_regex **out, struct perr *err);
void col_regex_free(struct col_regex *re);
/* True if re finds a match in s. Not thread-safe per regex (one match block each);
 * collectors run serialised so this is fine. */
bool col_regex_match(struct col_regex *re, const char *s);
/* As col_regex_match, false when re is NULL (no filter configured). */
bool col_regex_match_opt(struct col_regex *re, const char *s);

/* node_exporter's deviceFilter: ignored if exclude matches or include is set and misses. */
bool col_filter_ignored(struct col_regex *exclude, struct col_regex *include, const char *name);

/* What a collector sees during init and collect. */
struct col_ctx {
    const char *name;
    const struct col_paths *paths;
    const struct col_options *opt; /* valid during init only */
    void *state;                   /* private, allocated by init, freed by fini */
    struct sbuf *buf;              /* scratch for file reads, shared by all collectors of a set
                                      (they run one at a time), reused across scrapes */
    struct complain complain;      /* rate-limited failure logging for this collector */
    char err[200];                 /* detail of the last failure, set by col_fail */
};

/* Records why collect failed (printf-style) for the scrape's log line; returns rc so a
 * collector can `return col_fail(ctx, -EPROTO, "bad line in %s", path);`. */
int col_fail(struct col_ctx *ctx, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* One collector: a const descriptor in the table in collector.c (STYLE 3.8).
 * collect returns 0, -ENODATA ("nothing here on this host", logged at debug) or another
 * -errno (logged through ctx->complain); either error sets success 0. */
struct collector {
    const char *name;
    bool default_on;
    const char *help; /* one line for --help */
    int (*init)(struct col_ctx *ctx, struct perr *err);
    int (*collect)(struct col_ctx *ctx, struct mset *out);
    void (*fini)(struct col_ctx *ctx);
};

/* Option accessors for collectors' init (strings borrowed from o; NULL when unset). */
const char *col_opt_str(const struct col_options *o, const char *flag);
double col_opt_num(const struct col_options *o, const char *flag);
bool col_opt_bool(const struct col_options *o, const char *flag);

/* mset_family for collectors: sets *rc to -EPROTO when the set already holds `name` with
 * another type (say, a pushed family), -EINVAL when name is not a valid metric name (one built
 * from a malformed file), -ENOMEM on OOM; so only OOM can fail the whole scrape. */
struct mfam *col_family(struct mset *out, const char *name, const char *help, enum mtype type,
                        int *rc);

/* Adds one sample to family name (created with help/type on first use). Returns 0,
 * -ENOMEM, -EEXIST/-EINVAL from mfam_add, or -EPROTO on a family type conflict. */
int col_add(struct mset *out, const char *name, const char *help, enum mtype type, double v,
            size_t npairs, ...);

#endif
