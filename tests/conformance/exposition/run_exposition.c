/* SPDX-License-Identifier: Apache-2.0 */
/* Conformance runner: expfmt_parse over $CONFORMANCE/exposition/corpus, per corpus/INDEX.md, in
 * TAP. */
#include "proto.h"

#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>

/* Expected error phrase for the invalid files (expfmt's wording; INDEX.md gives the reason). */
static const struct {
    const char *file, *phrase;
} want_err[] = {
    {"from_test_parse_error_0", "unexpected end of input stream"},
    {"from_test_parse_error_1", "invalid escape sequence '\\t'"},
    {"from_test_parse_error_2", "contains unescaped new-line"},
    {"from_test_parse_error_3", "invalid label name for metric"},
    {"from_test_parse_error_4", "label name \"__name__\" is reserved"},
    {"from_test_parse_error_5", "expected '=' after label name"},
    {"from_test_parse_error_6", "expected '\"' at start of label value"},
    {"from_test_parse_error_7", "expected float as value for 'quantile' label"},
    {"from_test_parse_error_8", "unexpected end of label value"},
    {"from_test_parse_error_9", "expected integer as timestamp"},
    {"from_test_parse_error_10", "spurious string after timestamp"},
    {"from_test_parse_error_11", "expected float as value"},
    {"from_test_parse_error_12", "second HELP line"},
    {"from_test_parse_error_13", "second TYPE line"},
    {"from_test_parse_error_14", "second TYPE line"},
    {"from_test_parse_error_15", "unknown metric type"},
    {"from_test_parse_error_16", "invalid metric name in comment"},
    {"from_test_parse_error_17", "invalid metric name"},
    {"from_test_parse_error_18", "invalid metric name"},
    {"from_test_parse_error_19", "expected float as value for 'le' label"},
    {"parse_error_20", "invalid label value"},
    {"parse_error_21", "expected float as value"},
    {"parse_error_22", "expected float as value"},
    {"parse_error_23", "expected float as value"},
    {"parse_error_24", "expected float as value"},
    {"parse_error_25", "expected float as value"},
    {"parse_error_26", "expected float as value"},
    {"parse_error_27", "expected float as value"},
    {"parse_error_28", "expected float as value"},
    {"parse_error_29", "expected float as value"},
    {"parse_error_30", "expected float as value"},
    {"parse_error_31", "expected float as value"},
    {"parse_error_32", "expected float as value for 'le' label"},
    {"parse_error_33", "expected float as value for 'quantile' label"},
    {"parse_error_34", "duplicate label names"},
    /* 35-42 use the quoted UTF-8 name syntax: in legacy mode the name is invalid */
    {"parse_error_35", "invalid metric name"},
    {"parse_error_36", "invalid metric name"},
    {"parse_error_37", "invalid metric name"},
    {"parse_error_38", "invalid metric name in comment"},
    {"parse_error_39", "invalid metric name in comment"},
    {"parse_error_40", "invalid metric name"},
    {"parse_error_41", "invalid metric name"},
    {"parse_error_42", "invalid label name for metric"},
    {"parse_error_43", "negative count for histogram"},
    {"parse_error_44", "negative bucket count for histogram"},
    {"parse_error_45", "negative count for histogram"},
    {"parse_error_46", "negative bucket count for histogram"},
    {"parse_error_47", "invalid metric name"},
};

struct counts {
    size_t families, samples;
};

static int c_family(void *arg, const char *name, const char *help, enum expfmt_type t) {
    ((struct counts *)arg)->families++;
    return 0;
}

static int c_sample(void *arg, const char *fam, const char *name, const struct proto_label *l,
                    size_t n, double v, bool has_ts, int64_t ts) {
    ((struct counts *)arg)->samples++;
    return 0;
}

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0;
    uint8_t *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            uint8_t *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    *len = n;
    return b;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorted entries of a directory (regular files or directories, no dot files). */
static size_t list_dir(const char *dir, char ***out) {
    DIR *d = opendir(dir);
    size_t n = 0, cap = 64;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (d && v && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            char **nv = realloc(v, (cap *= 2) * sizeof *v);
            if (!nv) break; /* report what we have; the count checks will notice */
            v = nv;
        }
        v[n++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    qsort(v, n, sizeof *v, cmp_str);
    *out = v;
    return n;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

struct tally {
    int pass, fail, skip;
};

static void skip(struct tally *t, const char *what, const char *why) {
    printf("ok %d - %s # SKIP %s\n", ++tap_n, what, why);
    t->skip++;
}

/* Parses one file and checks the verdict (and the error phrase for invalid files). */
static void run_file(struct tally *t, const char *dir, const char *name, bool valid) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (!buf) {
        TAP_OK(0, "%s: cannot read", name);
        t->fail++;
        return;
    }
    struct counts c = {0};
    struct expfmt_sink sink = {&c, c_family, c_sample};
    struct perr e;
    int rc = expfmt_parse(buf, len, &sink, &e);
    free(buf);
    bool good;
    if (valid) {
        good = rc == 0;
        TAP_OK(good, "%s: valid, parsed (%zu families, %zu samples)%s%s", name, c.families,
               c.samples, rc ? ": " : "", rc ? e.msg : "");
    } else {
        const char *phrase = NULL;
        for (size_t i = 0; i < sizeof want_err / sizeof want_err[0]; i++)
            if (strcmp(want_err[i].file, name) == 0) phrase = want_err[i].phrase;
        good = rc == -EPROTO && (!phrase || strstr(e.msg, phrase));
        TAP_OK(good, "%s: invalid, rejected: %s", name, rc ? e.msg : "(accepted)");
        if (!good && phrase) printf("#   wanted an error containing \"%s\"\n", phrase);
    }
    if (good)
        t->pass++;
    else
        t->fail++;
}

static void report(const char *what, const struct tally *t) {
    printf("# %s: %d passed, %d failed, %d skipped\n", what, t->pass, t->fail, t->skip);
}

int main(void) {
    const char *conf = getenv("CONFORMANCE");
    if (!conf) {
        printf("1..0 # SKIP CONFORMANCE not set\n");
        return 0;
    }
    char dir[4096];
    char **v;
    size_t n;
    struct tally total = {0};

    /* expfmt_fuzz: from_test_parse_error_N invalid, everything else valid */
    struct tally t = {0};
    snprintf(dir, sizeof dir, "%s/exposition/corpus/expfmt_fuzz", conf);
    n = list_dir(dir, &v);
    for (size_t i = 0; i < n; i++)
        run_file(&t, dir, v[i], strncmp(v[i], "from_test_parse_error_", 22) != 0);
    free_list(v, n);
    TAP_OK(n >= 26, "expfmt_fuzz holds the 26 files of INDEX.md (found %zu)", n);
    report("expfmt_fuzz", &t);
    total.pass += t.pass, total.fail += t.fail, total.skip += t.skip;

    /* expfmt_errors_extra: all invalid in legacy mode (41, 42 are valid only in UTF-8 mode) */
    t = (struct tally){0};
    snprintf(dir, sizeof dir, "%s/exposition/corpus/expfmt_errors_extra", conf);
    n = list_dir(dir, &v);
    for (size_t i = 0; i < n; i++)
        run_file(&t, dir, v[i], false);
    free_list(v, n);
    TAP_OK(n >= 28, "expfmt_errors_extra holds cases 20-47 (found %zu)", n);
    report("expfmt_errors_extra", &t);
    total.pass += t.pass, total.fail += t.fail, total.skip += t.skip;

    /* expfmt_testdata: valid */
    t = (struct tally){0};
    snprintf(dir, sizeof dir, "%s/exposition/corpus/expfmt_testdata", conf);
    n = list_dir(dir, &v);
    for (size_t i = 0; i < n; i++)
        run_file(&t, dir, v[i], true);
    free_list(v, n);
    report("expfmt_testdata", &t);
    total.pass += t.pass, total.fail += t.fail, total.skip += t.skip;

    /* prometheus_textparse: the 0.0.4 files are valid; the .om.txt files are OpenMetrics */
    t = (struct tally){0};
    snprintf(dir, sizeof dir, "%s/exposition/corpus/prometheus_textparse", conf);
    n = list_dir(dir, &v);
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        if (l > 7 && strcmp(v[i] + l - 7, ".om.txt") == 0)
            skip(&t, v[i],
                 "OpenMetrics-only input (exemplars, _created, # EOF semantics); "
                 "promlet parses text format 0.0.4 only");
        else
            run_file(&t, dir, v[i], true);
    }
    free_list(v, n);
    report("prometheus_textparse", &t);
    total.pass += t.pass, total.fail += t.fail, total.skip += t.skip;

    /* promtool's metrics-test.prom: Prometheus expects 27 series in it */
    {
        snprintf(dir, sizeof dir,
                 "%s/exposition/corpus/prometheus_textparse/promtool-metrics-test.prom", conf);
        size_t len;
        uint8_t *buf = slurp(dir, &len);
        struct counts c = {0};
        struct expfmt_sink sink = {&c, c_family, c_sample};
        int rc = buf ? expfmt_parse(buf, len, &sink, NULL) : -ENOENT;
        free(buf);
        TAP_OK(rc == 0 && c.samples == 27, "promtool-metrics-test.prom has 27 series (got %zu)",
               c.samples);
    }

    /* openmetrics_parsers: the OpenMetrics 1.0 suite */
    t = (struct tally){0};
    snprintf(dir, sizeof dir, "%s/exposition/corpus/openmetrics_parsers", conf);
    n = list_dir(dir, &v);
    for (size_t i = 0; i < n; i++) {
        char what[512];
        snprintf(what, sizeof what, "openmetrics_parsers/%s", v[i]);
        skip(&t, what, "OpenMetrics 1.0 only; promlet neither negotiates nor parses OpenMetrics");
    }
    free_list(v, n);
    report("openmetrics_parsers", &t);
    total.pass += t.pass, total.fail += t.fail, total.skip += t.skip;

    report("total", &total);
    return tap_done();
}
