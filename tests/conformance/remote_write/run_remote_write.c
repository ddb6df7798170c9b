/* SPDX-License-Identifier: Apache-2.0 */
/* Conformance runner: rw_decode over $CONFORMANCE/remote_write/examples with the README's statuses.
 */
#include "proto.h"

#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>

/* The HTTP status the daemon answers for a decoder result (see proto.h, rw_decode). */
static int status_of(int code) {
    switch (code) {
    case 0:
        return 204;
    case -EPROTO:
    case -E2BIG:
        return 400;
    case -ENOMEM:
        return 503;
    default:
        return 500;
    }
}

struct seen {
    size_t series, samples;
    char labels[4][256]; /* "n=v," per series (first 4) */
    uint64_t bits[8];    /* value bits of the first 8 samples */
    int64_t ts[8];
};

static int s_series(void *arg, const struct proto_label *l, size_t n) {
    struct seen *s = arg;
    if (s->series < 4) {
        char *o = s->labels[s->series];
        o[0] = 0;
        for (size_t i = 0; i < n; i++) {
            size_t k = strlen(o);
            snprintf(o + k, 256 - k, "%.*s=%.*s,", (int)l[i].name_len, l[i].name,
                     (int)l[i].value_len, l[i].value);
        }
    }
    s->series++;
    return 0;
}

static int s_sample(void *arg, int64_t ts, double v) {
    struct seen *s = arg;
    if (s->samples < 8) {
        memcpy(&s->bits[s->samples], &v, 8);
        s->ts[s->samples] = ts;
    }
    s->samples++;
    return 0;
}

#define T0 INT64_C(1700000000000)

/* One row of examples/README.md. status is what promlet answers with default limits;
 * readme is the README's expectation in words (for the TAP line). */
struct row {
    const char *name;
    int status;
    const char *readme;
    size_t series, samples; /* checked when status is 2xx */
};

static const struct row rows[] = {
    {"rw1_single_sample", 204, "204", 1, 1},
    {"rw1_stale_marker", 204, "2xx, stale marker kept", 1, 2},
    {"rw1_plain_nan", 204, "2xx, ordinary NaN kept", 1, 1},
    {"rw1_special_values", 204, "2xx, bit-exact values", 4, 4},
    {"rw1_multi_series_multi_samples", 204, "2xx", 2, 5},
    {"rw1_empty", 204, "2xx (Prometheus 204)", 0, 0},
    {"rw1_label_escaping", 204, "2xx, raw bytes", 1, 1},
    {"rw1_unsorted_labels", 400, "accept (sorting) or 400", 0, 0},
    {"rw1_missing_name", 400, "spec-strict 400 (Prometheus drops it and answers 204)", 0, 0},
    {"rw1_duplicate_label", 400, "400 per spec (Prometheus drops it, 204)", 0, 0},
    {"rw1_out_of_order", 400, "400", 0, 0},
    {"bad_snappy_header", 400, "400", 0, 0},
    {"bad_not_compressed", 400, "400", 0, 0},
    {"bad_protobuf", 400, "400", 0, 0},
};

static uint8_t *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 65536, n = 0, r;
    uint8_t *b = malloc(cap);
    while (b && (r = fread(b + n, 1, cap - n, f)) > 0)
        n += r; /* the examples are far below 64 KiB */
    fclose(f);
    *len = n;
    return b;
}

static struct rw_request *decode_file(const char *dir, const char *name,
                                      const struct rw_limits *lim, int *code, struct perr *e) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.snappy", dir, name);
    size_t len;
    uint8_t *body = slurp(path, &len);
    if (!body) {
        *code = -ENOENT;
        snprintf(e->msg, sizeof e->msg, "cannot read %s.snappy", name);
        return NULL;
    }
    struct rw_request *r = rw_decode(body, len, lim, code, e);
    free(body);
    return r;
}

static uint64_t bits_of(double d) {
    uint64_t b;
    memcpy(&b, &d, 8);
    return b;
}

/* Content checks for the accepted examples. Returns true when all hold. */
static bool check_content(const char *name, const struct seen *s) {
    if (!strcmp(name, "rw1_single_sample"))
        return !strcmp(s->labels[0], "__name__=up,instance=localhost:9100,job=node,") &&
               s->ts[0] == T0 && s->bits[0] == bits_of(1.0);
    if (!strcmp(name, "rw1_stale_marker"))
        return s->bits[0] == bits_of(1.0) && s->ts[1] == T0 + 15000 &&
               s->bits[1] == PROTO_STALE_NAN_BITS && proto_is_stale_nan(0) == false;
    if (!strcmp(name, "rw1_plain_nan")) return s->bits[0] == UINT64_C(0x7ff8000000000001);
    if (!strcmp(name, "rw1_special_values")) {
        /* series order as sent: pinf, ninf, negzero, tiny */
        static const uint64_t want[] = {UINT64_C(0x7ff0000000000000), UINT64_C(0xfff0000000000000),
                                        UINT64_C(0x8000000000000000), UINT64_C(1)};
        for (int i = 0; i < 4; i++) {
            char lv[32];
            static const char *const v[] = {"pinf", "ninf", "negzero", "tiny"};
            snprintf(lv, sizeof lv, "v=%s,", v[i]);
            if (s->bits[i] != want[i] || !strstr(s->labels[i], lv)) return false;
        }
        return true;
    }
    if (!strcmp(name, "rw1_multi_series_multi_samples"))
        return strstr(s->labels[0], "__name__=alert_generator_test_suite,") &&
               strstr(s->labels[1], "__name__=http_requests_total,") && s->bits[2] == bits_of(11) &&
               s->ts[2] == T0 + 30000 && s->bits[4] == bits_of(1030.5);
    if (!strcmp(name, "rw1_label_escaping"))
        return strstr(s->labels[0], "path=C:\\DIR\\FILE.TXT,") &&
               strstr(s->labels[0], "quote=say \"hi\"\nnext line,") &&
               strstr(s->labels[0], "utf8=Προμηθεύς,") && s->bits[0] == bits_of(42);
    return true;
}

int main(void) {
    const char *conf = getenv("CONFORMANCE");
    if (!conf) {
        printf("1..0 # SKIP CONFORMANCE not set\n");
        return 0;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/remote_write/examples", conf);
    int pass = 0, fail = 0, skipped = 0;

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const struct row *w = &rows[i];
        int code;
        struct perr e = {0};
        struct rw_request *r = decode_file(dir, w->name, NULL, &code, &e);
        int st = status_of(code);
        struct seen s = {0};
        bool good = st == w->status;
        if (r) {
            struct rw_sink sink = {&s, s_series, s_sample, NULL, NULL};
            rw_request_foreach(r, &sink);
            good = good && s.series == w->series && s.samples == w->samples &&
                   rw_request_series(r) == w->series && rw_request_samples(r) == w->samples &&
                   check_content(w->name, &s);
            rw_request_free(r);
        }
        TAP_OK(good, "%s.snappy: %d (README: %s)%s%s", w->name, st, w->readme, r ? "" : ": ",
               r ? "" : e.msg);
        good ? pass++ : fail++;
    }

    /* The README allows accepting unsorted labels if they are sorted internally and do not
     * create a series distinct from the sorted one: check that mode too. */
    {
        struct rw_limits lim = {.sort_labels = true};
        int code;
        struct perr e = {0};
        struct rw_request *r = decode_file(dir, "rw1_unsorted_labels", &lim, &code, &e);
        struct seen s = {0};
        if (r) {
            struct rw_sink sink = {&s, s_series, s_sample, NULL, NULL};
            rw_request_foreach(r, &sink);
            rw_request_free(r);
        }
        bool good = r && s.series == 1 && !strncmp(s.labels[0], "__name__=", 9) &&
                    strstr(s.labels[0], ",instance=") && strstr(s.labels[0], ",job=") &&
                    strstr(s.labels[0], ",instance=") < strstr(s.labels[0], ",job=");
        TAP_OK(good, "rw1_unsorted_labels.snappy with sort_labels: 204, labels sorted (%s)",
               r ? s.labels[0] : e.msg);
        good ? pass++ : fail++;
    }

    /* Files the README table does not list are reported, not silently ignored. */
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);
        if (l < 8 || strcmp(de->d_name + l - 7, ".snappy") != 0) continue;
        bool known = false;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
            if (strlen(rows[i].name) == l - 7 && !strncmp(rows[i].name, de->d_name, l - 7))
                known = true;
        if (!known) {
            printf("ok %d - %s # SKIP not in examples/README.md, no expected status\n", ++tap_n,
                   de->d_name);
            skipped++;
        }
    }
    if (d) closedir(d);

    printf("# remote_write/examples: %d passed, %d failed, %d skipped\n", pass, fail, skipped);
    return tap_done();
}
