/* SPDX-License-Identifier: Apache-2.0 */
/* rss_rw: peak RSS (VmHWM) of rw_decode() on ~32 MiB unpack-bomb and realistic remote-write bodies;
 * prints figures. */
#include "proto.h"

#include <errno.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

struct buf {
    uint8_t *p;
    size_t n, cap;
};

static void put(struct buf *b, const void *d, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void put_varint(struct buf *b, uint64_t v) {
    uint8_t t[10];
    size_t k = 0;
    do {
        t[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    put(b, t, k);
}
static void put_len(struct buf *b, unsigned field, const struct buf *sub) {
    put_varint(b, (uint64_t)field << 3 | 2);
    put_varint(b, sub->n);
    put(b, sub->p, sub->n);
}

#define TARGET (((size_t)32 << 20) - 64)

/* A series __name__="x" followed by repeated 2-byte elements. */
static void series_of(struct buf *out, uint8_t key, size_t target) {
    struct buf s = {0};
    static const uint8_t nl[] = {0x0a, 0x0d, 0x0a, 0x08, '_',  '_',  'n', 'a',
                                 'm',  'e',  '_',  '_',  0x12, 0x01, 'x'};
    put(&s, nl, sizeof nl);
    uint8_t e[2] = {key, 0};
    while (s.n + 2 < target)
        put(&s, e, 2);
    put_len(out, 1, &s);
    free(s.p);
}

static void build(int kind, struct buf *out) {
    uint8_t e[2] = {0, 0};
    switch (kind) {
    case 0:
        series_of(out, 0x1a, TARGET - 8);
        break; /* empty exemplars */
    case 1:
        series_of(out, 0x12, TARGET - 8);
        break; /* empty samples */
    case 2:
        e[0] = 0x28;
        while (out->n + 2 < TARGET)
            put(out, e, 2);
        break; /* unknown top-level */
    case 3:
        series_of(out, 0x22, TARGET - 8);
        break; /* empty histograms */
    case 4:
        e[0] = 0x1a;
        while (out->n + 2 < TARGET)
            put(out, e, 2);
        break; /* empty metadata */
    case 5:
        series_of(out, 0x28, TARGET - 8);
        break; /* unknown fields in a series */
    case 6: {  /* series of 128 empty labels */
        struct buf s = {0};
        uint8_t l[2] = {0x0a, 0};
        for (int i = 0; i < 128; i++)
            put(&s, l, 2);
        while (out->n + s.n + 3 < TARGET)
            put_len(out, 1, &s);
        free(s.p);
        break;
    }
    case 7:
        e[0] = 0x0a;
        while (out->n + 2 < TARGET)
            put(out, e, 2);
        break; /* empty series */
    case 8:
    case 9:
    case 10:
    case 11:
    case 12: {
        /* realistic: series of labels + samples (+ exemplars / histograms) */
        int nsamp = kind == 8 ? 100 : kind == 9 ? 1 : kind == 10 ? 2000000 : kind == 11 ? 5 : 3;
        int nlab = kind == 10 ? 3 : kind == 12 ? 1 : 10;
        for (int si = 0; out->n < TARGET - 100000 && si < 99000; si++) {
            struct buf s = {0};
            struct buf l = {0};
            char nm[32], v[48];
            snprintf(v, sizeof v, "node_cpu_seconds_total");
            l.n = 0;
            put(&l, "\x0a\x08__name__\x12", 11);
            put_varint(&l, strlen(v));
            put(&l, v, strlen(v));
            put_len(&s, 1, &l);
            for (int li = 1; li < nlab; li++) {
                snprintf(nm, sizeof nm, "label%d", li);
                snprintf(v, sizeof v, "value-%d-%d", li, si);
                l.n = 0;
                put_varint(&l, 0x0a);
                put_varint(&l, strlen(nm));
                put(&l, nm, strlen(nm));
                put_varint(&l, 0x12);
                put_varint(&l, strlen(v));
                put(&l, v, strlen(v));
                put_len(&s, 1, &l);
            }
            for (int k = 0; k < nsamp && s.n < TARGET - 64; k++) {
                if (kind == 12) {
                    /* a histogram: count, sum, schema 3, one span of 8, 8 deltas */
                    l.n = 0;
                    put(&l, "\x08\x24\x19\x00\x00\x00\x00\x00\x00\x59\x40\x20\x06", 13);
                    put(&l, "\x5a\x04\x08\x02\x10\x08", 6);
                    put(&l, "\x62\x08\x02\x02\x02\x02\x02\x02\x02\x02", 10);
                    put_varint(&l, 0x78);
                    put_varint(&l, 1700000000000ull + k * 15000ull);
                    put_len(&s, 4, &l);
                    continue;
                }
                l.n = 0;
                double d = 1.5 * k;
                put_varint(&l, 0x09);
                put(&l, &d, 8);
                put_varint(&l, 0x10);
                put_varint(&l, 1700000000000ull + k * 15000ull);
                put_len(&s, 2, &l);
                if (kind == 11) {
                    struct buf ex = {0}, el = {0};
                    put(&el, "\x0a\x08trace_id\x12\x10", 12);
                    put(&el, "0123456789abcdef", 16);
                    put_len(&ex, 1, &el);
                    put_varint(&ex, 0x11);
                    put(&ex, &d, 8);
                    put_varint(&ex, 0x18);
                    put_varint(&ex, 1700000000000ull + k * 15000ull);
                    put_len(&s, 3, &ex);
                    free(ex.p);
                    free(el.p);
                }
            }
            put_len(out, 1, &s);
            free(s.p);
            free(l.p);
        }
        break;
    }
    }
}

static const char *kinds[] = {"empty exemplars",
                              "empty samples",
                              "unknown top-level fields",
                              "empty histograms",
                              "empty metadata",
                              "unknown fields in a series",
                              "series of 128 empty labels",
                              "empty series",
                              "REAL 10 labels x 100 samples",
                              "REAL 10 labels x 1 sample",
                              "REAL 1 series, 2M samples",
                              "REAL 5 samples+exemplars",
                              "REAL native histograms"};

static long hwm_kb(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld", &v) == 1) break;
    if (f) fclose(f);
    return v;
}

int main(void) {
    printf("# one child process per body; limits=dflt: rw_limits defaults, limits=max: "
           "max_series = max_samples = SIZE_MAX\n");
    for (int unlimited = 0; unlimited < 2; unlimited++)
        for (int k = 0; k < 13; k++) {
            fflush(stdout);
            pid_t pid = fork();
            if (pid == 0) {
                struct buf raw = {0};
                build(k, &raw);
                size_t cl = snappy_max_compressed_length(raw.n);
                char *c = malloc(cl);
                if (snappy_compress((char *)raw.p, raw.n, c, &cl) != SNAPPY_OK) abort();
                size_t raw_n = raw.n;
                free(raw.p);
                long before = hwm_kb();
                struct rw_limits lim = {0};
                if (unlimited) {
                    lim.max_series = SIZE_MAX;
                    lim.max_samples = SIZE_MAX;
                }
                struct perr err;
                int code = 0;
                struct rw_request *r = rw_decode((uint8_t *)c, cl, &lim, &code, &err);
                long after = hwm_kb();
                printf("# %-28s %s  body %5zu KiB  decoded %2zu MiB  VmHWM before %6ld KiB, after "
                       "%7ld KiB  -> %s %s\n",
                       kinds[k], unlimited ? "limits=max " : "limits=dflt", cl >> 10, raw_n >> 20,
                       before, after,
                       r                 ? "accepted"
                       : code == -E2BIG  ? "E2BIG"
                       : code == -ENOMEM ? "ENOMEM"
                                         : "EPROTO",
                       r ? "" : err.msg);
                rw_request_free(r);
                free(c);
                fflush(stdout);
                _exit(0);
            }
            int st = 0;
            if (pid < 0 || waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
                printf("not ok 1 - child for %s failed\n1..1\n", kinds[k]);
                return 1;
            }
        }
    printf("ok 1 - all bodies decoded or refused without crashing\n1..1\n");
    return 0;
}
