/* SPDX-License-Identifier: Apache-2.0 */
/* The collector table, collector flags, include/exclude regexes, and one timed scrape. */
#include "collector.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

extern const struct collector col_cgroup, col_cpu, col_diskstats, col_entropy, col_filefd,
    col_filesystem, col_loadavg, col_meminfo, col_netdev, col_netstat, col_pressure, col_processes,
    col_sockstat, col_stat, col_textfile, col_time, col_uname, col_vmstat;

/* The one registration table (STYLE 3.8), in --help order. */
static const struct collector *const all[] = {
    &col_cgroup,   &col_cpu,     &col_diskstats, &col_entropy, &col_filefd,   &col_filesystem,
    &col_loadavg,  &col_meminfo, &col_netdev,    &col_netstat, &col_pressure, &col_processes,
    &col_sockstat, &col_stat,    &col_textfile,  &col_time,    &col_uname,    &col_vmstat,
};
#define NCOL (sizeof(all) / sizeof(all[0]))

/* ---- options ---------------------------------------------------------------------------- */

enum opt_kind { OPT_STR, OPT_BOOL, OPT_DURATION, OPT_UINT };

struct opt_def {
    const char *flag;
    enum opt_kind kind;
    const char *def;
    const char *help;
};

/* Value flags. Regex defaults are Debian's node_exporter 1.5's (Debian patches the
 * mount-point default to also skip /run, /mnt and /media, and excludes "lo" from netdev),
 * in RE2 syntax, which PCRE2 accepts
 * unchanged for these patterns (\d, alternation, groups); we match them unanchored as Go's
 * MatchString does, which is why the defaults carry their own ^...$. */
static const struct opt_def defs[] = {
    {"path.procfs", OPT_STR, "/proc", "procfs mountpoint."},
    {"path.sysfs", OPT_STR, "/sys", "sysfs mountpoint."},
    {"path.rootfs", OPT_STR, "/", "rootfs mountpoint."},
    {"path.udev.data", OPT_STR, "/run/udev/data", "udev data path."},
    {"collector.cpu.guest", OPT_BOOL, "true", "Enables metric node_cpu_guest_seconds_total."},
    {"collector.diskstats.device-exclude", OPT_STR,
     "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$",
     "Regexp of diskstats devices to exclude (mutually exclusive to device-include)."},
    {"collector.diskstats.device-include", OPT_STR, "",
     "Regexp of diskstats devices to include (mutually exclusive to device-exclude)."},
    {"collector.netdev.device-exclude", OPT_STR, "^lo$",
     "Regexp of net devices to exclude (mutually exclusive to device-include)."},
    {"collector.netdev.device-include", OPT_STR, "",
     "Regexp of net devices to include (mutually exclusive to device-exclude)."},
    {"collector.filesystem.mount-points-exclude", OPT_STR,
     "^/(dev|proc|run|sys|mnt|media|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
     "Regexp of mount points to exclude for filesystem collector."},
    {"collector.filesystem.fs-types-exclude", OPT_STR,
     "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
     "iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
     "sysfs|tracefs)$",
     "Regexp of filesystem types to exclude for filesystem collector."},
    {"collector.filesystem.mount-timeout", OPT_DURATION, "5s",
     "How long to wait for a mount to respond before marking it as stale."},
    {"collector.vmstat.fields", OPT_STR, "^(oom_kill|pgpg|pswp|pg.*fault).*",
     "Regexp of fields to return for vmstat collector."},
    {"collector.netstat.fields", OPT_STR,
     "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|"
     "TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|"
     "OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|"
     "RcvbufErrors|SndbufErrors))$",
     "Regexp of fields to return for netstat collector."},
    {"collector.textfile.directory", OPT_STR, "",
     "Directory to read text files with metrics from."},
    {"collector.cgroup.path", OPT_STR, "",
     "cgroup filesystem root; empty means <path.sysfs>/fs/cgroup (v1, v2, hybrid detected)."},
    {"collector.cgroup.max-depth", OPT_UINT, "3",
     "Deepest cgroup level exported (0 = the root only)."},
    {"collector.cgroup.include", OPT_STR, "",
     "Regexp of cgroup paths to export (searched, like the other filters)."},
    {"collector.cgroup.exclude", OPT_STR, "",
     "Regexp of cgroup paths not to export nor descend into."},
};
#define NDEF (sizeof(defs) / sizeof(defs[0]))

struct col_options {
    signed char state[NCOL]; /* -1 forced off, 0 default, 1 forced on */
    bool disable_defaults;
    char *val[NDEF]; /* NULL: default */
    double num[NDEF];
};

static int parse_bool(const char *v, bool *out) {
    if (!v || strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        *out = true;
    else if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        *out = false;
    else
        return -EINVAL;
    return 0;
}

/* Go's time.ParseDuration for the units a timeout needs: "5s", "1m30s", "250ms", "1.5s". */
static int parse_duration(const char *s, double *out) {
    double total = 0;
    if (!*s) return -EINVAL;
    if (strcmp(s, "0") == 0) {
        *out = 0;
        return 0;
    }
    while (*s) {
        char *end;
        double n = strtod(s, &end);
        if (end == s || n < 0 || !isfinite(n)) return -EINVAL;
        s = end;
        double unit;
        if (strncmp(s, "ns", 2) == 0)
            unit = 1e-9, s += 2;
        else if (strncmp(s, "us", 2) == 0)
            unit = 1e-6, s += 2;
        else if (strncmp(s, "ms", 2) == 0)
            unit = 1e-3, s += 2;
        else if (*s == 's')
            unit = 1, s++;
        else if (*s == 'm')
            unit = 60, s++;
        else if (*s == 'h')
            unit = 3600, s++;
        else
            return -EINVAL;
        total += n * unit;
    }
    *out = total;
    return 0;
}

static int set_value(struct col_options *o, size_t i, const char *value, struct perr *err) {
    const struct opt_def *d = &defs[i];
    bool b;
    double num = 0;
    char *end;
    switch (d->kind) {
    case OPT_BOOL:
        if (parse_bool(value, &b))
            return perr_set(err, 0, 0, "--%s: expected true or false, got \"%s\"", d->flag, value);
        num = b;
        if (!value) value = "true";
        break;
    case OPT_DURATION:
        if (!value || parse_duration(value, &num))
            return perr_set(err, 0, 0, "--%s: expected a duration such as 5s, got \"%s\"", d->flag,
                            value ? value : "");
        break;
    case OPT_UINT:
        if (!value || !*value || (num = (double)strtoul(value, &end, 10), *end) || *value == '-')
            return perr_set(err, 0, 0, "--%s: expected a non-negative integer, got \"%s\"", d->flag,
                            value ? value : "");
        break;
    case OPT_STR:
        if (!value) return perr_set(err, 0, 0, "--%s needs a value", d->flag);
        break;
    }
    char *copy = strdup(value);
    if (!copy) return -ENOMEM;
    free(o->val[i]);
    o->val[i] = copy;
    o->num[i] = num;
    return 1;
}

struct col_options *col_options_new(void) {
    struct col_options *o = calloc(1, sizeof(*o));
    if (!o) return NULL;
    for (size_t i = 0; i < NDEF; i++) {
        struct perr e;
        if (set_value(o, i, defs[i].def, &e) != 1) {
            col_options_free(o);
            return NULL;
        }
    }
    return o;
}

void col_options_free(struct col_options *o) {
    if (!o) return;
    for (size_t i = 0; i < NDEF; i++)
        free(o->val[i]);
    free(o);
}

static int find_collector(const char *name) {
    for (size_t i = 0; i < NCOL; i++)
        if (strcmp(all[i]->name, name) == 0) return (int)i;
    return -1;
}

int col_options_set(struct col_options *o, const char *flag, const char *value, struct perr *err) {
    if (!o || !flag) return -EINVAL;
    for (size_t i = 0; i < NDEF; i++)
        if (strcmp(flag, defs[i].flag) == 0) return set_value(o, i, value, err);
    if (strcmp(flag, "collector.disable-defaults") == 0) {
        if (parse_bool(value, &o->disable_defaults))
            return perr_set(err, 0, 0, "--%s: expected true or false", flag);
        return 1;
    }
    bool neg = strncmp(flag, "no-", 3) == 0;
    const char *name = flag + (neg ? 3 : 0);
    if (strncmp(name, "collector.", 10) != 0) return 0;
    int k = find_collector(name + 10);
    if (k < 0) return 0;
    bool on;
    if (neg && value) return perr_set(err, 0, 0, "--%s takes no value", flag);
    if (parse_bool(value, &on))
        return perr_set(err, 0, 0, "--%s: expected true or false, got \"%s\"", flag, value);
    o->state[k] = (neg ? !on : on) ? 1 : -1;
    return 1;
}

int col_options_usage(struct sbuf *out) {
    /* kingpin's layout, as the daemon's own flags: name padded to column 47, then help */
    char name[160];
    sbuf_printf(out, "      %-40s %s\n", "--collector.disable-defaults",
                "Set all collectors to disabled by default.");
    for (size_t i = 0; i < NCOL; i++) {
        snprintf(name, sizeof(name), "--[no-]collector.%s", all[i]->name);
        sbuf_printf(out, "      %-40s %s (default: %s).\n", name, all[i]->help,
                    all[i]->default_on ? "enabled" : "disabled");
    }
    for (size_t i = 0; i < NDEF; i++) {
        if (defs[i].kind == OPT_BOOL)
            snprintf(name, sizeof(name), "--[no-]%s", defs[i].flag);
        else
            snprintf(name, sizeof(name), "--%s=VALUE", defs[i].flag);
        sbuf_printf(out, "      %-40s %s (default: \"%s\")\n", name, defs[i].help, defs[i].def);
    }
    return out->oom ? -ENOMEM : 0;
}

static int def_index(const char *flag) {
    for (size_t i = 0; i < NDEF; i++)
        if (strcmp(defs[i].flag, flag) == 0) return (int)i;
    return -1;
}

const char *col_opt_str(const struct col_options *o, const char *flag) {
    int i = def_index(flag);
    return i < 0 ? NULL : o->val[i];
}

double col_opt_num(const struct col_options *o, const char *flag) {
    int i = def_index(flag);
    return i < 0 ? 0 : o->num[i];
}

bool col_opt_bool(const struct col_options *o, const char *flag) {
    return col_opt_num(o, flag) != 0;
}

/* ---- regexes ------------------------------------------------------------------------------ */

/* PCRE2 rather than POSIX regcomp: node_exporter's defaults use RE2's \d, and PCRE2 is
 * already a dependency of ruleeval's matchers. */
/* Subjects repeat from scrape to scrape (field names, devices, mount points), so verdicts
 * for short subjects are memoised: most scrapes then run no regex at all. The memo is
 * allocated on first use and is full-then-bypassed, never evicting. */
#define MEMO_SLOTS 512
#define MEMO_KEY 40
struct memo {
    char key[MEMO_KEY]; /* "" = empty */
    bool match;
};

struct col_regex {
    pcre2_code *code;
    pcre2_match_data *md;
    struct memo *memo;
    size_t used;
};

int col_regex_new(const char *flag, const char *pattern, struct col_regex **out, struct perr *err) {
    *out = NULL;
    if (!pattern || !*pattern) return 0;
    int ec;
    PCRE2_SIZE off;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_DOLLAR_ENDONLY, &ec, &off, NULL);
    if (!code) {
        PCRE2_UCHAR msg[120];
        pcre2_get_error_message(ec, msg, sizeof(msg));
        return perr_set(err, 0, (int)off + 1, "--%s: bad regexp at offset %zu: %s", flag,
                        (size_t)off, (const char *)msg);
    }
    /* No JIT: with verdicts memoised a scrape runs few matches, and the JIT compiler would
     * page in ~0.5 MiB of libpcre2 for nothing. */
    struct col_regex *re = calloc(1, sizeof(*re));
    if (re) re->md = pcre2_match_data_create_from_pattern(code, NULL);
    if (!re || !re->md) {
        pcre2_code_free(code);
        free(re);
        return -ENOMEM;
    }
    re->code = code;
    *out = re;
    return 0;
}

void col_regex_free(struct col_regex *re) {
    if (!re) return;
    pcre2_match_data_free(re->md);
    pcre2_code_free(re->code);
    free(re->memo);
    free(re);
}

static bool run(struct col_regex *re, const char *s, size_t n) {
    return pcre2_match(re->code, (PCRE2_SPTR)s, n, 0, 0, re->md, NULL) >= 0;
}

bool col_regex_match(struct col_regex *re, const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n >= MEMO_KEY) return run(re, s, n);
    if (!re->memo && !(re->memo = calloc(MEMO_SLOTS, sizeof(*re->memo)))) return run(re, s, n);
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    for (size_t k = 0, j = h % MEMO_SLOTS; k < MEMO_SLOTS; k++, j = (j + 1) % MEMO_SLOTS) {
        struct memo *m = &re->memo[j];
        if (!m->key[0]) {
            bool v = run(re, s, n);
            if (re->used * 4 < MEMO_SLOTS * 3) { /* keep probes short */
                memcpy(m->key, s, n + 1);
                m->match = v;
                re->used++;
            }
            return v;
        }
        if (memcmp(m->key, s, n + 1) == 0) return m->match;
    }
    return run(re, s, n);
}

bool col_regex_match_opt(struct col_regex *re, const char *s) {
    return re && col_regex_match(re, s);
}

bool col_filter_ignored(struct col_regex *exclude, struct col_regex *include, const char *name) {
    return (exclude && col_regex_match(exclude, name)) ||
           (include && !col_regex_match(include, name));
}

struct mfam *col_family(struct mset *out, const char *name, const char *help, enum mtype type,
                        int *rc) {
    struct mfam *f = mset_family(out, name, help, type);
    /* NULL means a type conflict, a name that is not a metric name (built from a field of a
     * malformed file), or OOM */
    *rc = f                                           ? 0
          : mset_has(out, name)                       ? -EPROTO
          : !re_valid_metric_name(name, strlen(name)) ? -EINVAL
                                                      : -ENOMEM;
    return f;
}

int col_add(struct mset *out, const char *name, const char *help, enum mtype type, double v,
            size_t npairs, ...) {
    struct re_label l[16];
    if (npairs > 16) return -EINVAL;
    va_list ap;
    va_start(ap, npairs);
    for (size_t i = 0; i < npairs; i++) {
        l[i].name = va_arg(ap, const char *);
        l[i].value = va_arg(ap, const char *);
    }
    va_end(ap);
    int rc;
    struct mfam *f = col_family(out, name, help, type, &rc);
    return f ? mfam_add(f, "", l, npairs, v) : rc;
}

int col_fail(struct col_ctx *ctx, int rc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof(ctx->err), fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- the scrape --------------------------------------------------------------------------- */

struct collectors {
    pthread_mutex_t mu;
    struct sbuf scratch; /* every ctx->buf points here */
    char *paths_mem[4];
    struct col_paths paths;
    size_t n;
    const struct collector *col[NCOL];
    struct col_ctx ctx[NCOL];
};

static bool enabled(const struct col_options *o, size_t i) {
    if (o->state[i]) return o->state[i] > 0;
    return all[i]->default_on && !o->disable_defaults;
}

struct collectors *collectors_new(const struct col_options *o, struct perr *err) {
    struct collectors *c = calloc(1, sizeof(*c));
    if (!c) {
        perr_set(err, 0, 0, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&c->mu, NULL);
    const char *p[4] = {col_opt_str(o, "path.procfs"), col_opt_str(o, "path.sysfs"),
                        col_opt_str(o, "path.rootfs"), col_opt_str(o, "path.udev.data")};
    for (int i = 0; i < 4; i++)
        if (!(c->paths_mem[i] = strdup(p[i]))) goto oom;
    c->paths =
        (struct col_paths){c->paths_mem[0], c->paths_mem[1], c->paths_mem[2], c->paths_mem[3]};
    for (size_t i = 0; i < NCOL; i++) {
        if (!enabled(o, i)) continue;
        struct col_ctx *x = &c->ctx[c->n];
        x->name = all[i]->name;
        x->paths = &c->paths;
        x->opt = o;
        x->buf = &c->scratch;
        c->col[c->n++] = all[i];
        if (all[i]->init) {
            int rc = all[i]->init(x, err);
            x->opt = NULL;
            if (rc == -ENOMEM) goto oom;
            if (rc) {
                c->n--; /* its init cleaned up after itself */
                collectors_free(c);
                return NULL;
            }
        }
        x->opt = NULL;
    }
    return c;
oom:
    perr_set(err, 0, 0, "out of memory");
    collectors_free(c);
    return NULL;
}

void collectors_free(struct collectors *c) {
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        if (c->col[i]->fini) c->col[i]->fini(&c->ctx[i]);
    }
    for (int i = 0; i < 4; i++)
        free(c->paths_mem[i]);
    sbuf_fini(&c->scratch);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int collectors_scrape(struct collectors *c, struct mset *out) {
    if (!c || !out) return -EINVAL;
    pthread_mutex_lock(&c->mu);
    int ret = 0;
    int rc1, rc2;
    struct mfam *dur =
        col_family(out, "node_scrape_collector_duration_seconds",
                   "node_exporter: Duration of a collector scrape.", MTYPE_GAUGE, &rc1);
    struct mfam *ok =
        col_family(out, "node_scrape_collector_success",
                   "node_exporter: Whether a collector succeeded.", MTYPE_GAUGE, &rc2);
    if (rc1 == -ENOMEM || rc2 == -ENOMEM) {
        pthread_mutex_unlock(&c->mu);
        return -ENOMEM;
    }
    /* Names taken with another type (a pushed family): the collectors still run, their
     * success/duration series are left out. */
    for (size_t i = 0; i < c->n; i++) {
        struct col_ctx *x = &c->ctx[i];
        x->err[0] = '\0';
        double t0 = now_s();
        int rc = c->col[i]->collect(x, out);
        double dt = now_s() - t0;
        if (rc == -ENOMEM) {
            ret = -ENOMEM;
            break;
        }
        if (rc == 0) {
            COMPLAIN_OK(&x->complain, x->name);
        } else if (rc == -ENODATA) {
            LOG_DEBUG("collector %s returned no data: %s", x->name, x->err);
        } else {
            COMPLAIN(&x->complain, "collector %s failed: %s%s%s", x->name, x->err,
                     x->err[0] ? ": " : "", strerror(-rc));
        }
        int a = dur ? mfam_addf(dur, "", dt, 1, "collector", x->name) : 0;
        int b = ok ? mfam_addf(ok, "", rc == 0 ? 1 : 0, 1, "collector", x->name) : 0;
        if (a == -ENOMEM || b == -ENOMEM) {
            ret = -ENOMEM;
            break;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return ret;
}
