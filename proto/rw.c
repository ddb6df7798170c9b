/* SPDX-License-Identifier: Apache-2.0 */
/* rw: remote-write 1.0 receiver decoding: snappy guard, protobuf-c unpack into an arena,
 * validation. */
#include "proto.h"

#include "names.h"
#include "rwcache.h"
#include "remote.pb-c.h"

#include <errno.h>
#include <math.h>
#include <snappy-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * What Prometheus does (storage/remote/write_handler.go, 2.42 and 3.x) and what we do:
 *  - snappy or protobuf decode error: 400 with the Go error text. Same here (-EPROTO).
 *  - decoded length over the limit: Prometheus 3 answers 400; we refuse before allocating
 *    (-E2BIG, also meant as 400).
 *  - series without __name__, invalid names (2.42: legacy charset; 3.x: UTF-8), invalid UTF-8
 *    values, duplicate label names: Prometheus drops the series, counts it in
 *    prometheus_api_remote_write_invalid_labels_samples_total and still answers 204 (2.42
 *    does not check duplicates there: its TSDB refuses them and the client gets a 500). The
 *    RW 1.0 spec says "400 for requests containing invalid samples", and promlet is
 *    transactional (STYLE 3.1.3), so we reject the whole request (-EPROTO).
 *  - unsorted labels: Prometheus sorts them (labelProtosToLabels/ScratchBuilder.Sort). We
 *    reject unless rw_limits.sort_labels asks for Prometheus' behaviour.
 *  - out-of-order samples, or a second sample at the same timestamp with another value:
 *    Prometheus' appender fails with "out of order sample" / "duplicate sample for
 *    timestamp" and answers 400. We find those within one request here; ordering against
 *    already stored data is the store's business.
 *  - native histograms: Prometheus validates them on append (histogram.Validate: spans vs
 *    buckets, negative offsets, negative bucket counts, count vs buckets); we run the same
 *    checks up front.
 *  - empty label values mean "label absent" in Prometheus; we drop such labels.
 *  - exemplars are accepted on the wire and dropped (but counted against max_samples).
 *  - memory: the pre-scan computes what unpacking takes and refuses more than
 *    RW_UNPACK_FACTOR times the decoded size (-E2BIG); Prometheus has no such check.
 */

/* ---------------------------------------------------------------------------------------- */
/* Arena allocator handed to protobuf-c: unpacking a request costs a few mallocs instead of
 * one per sample, and freeing is one walk over the blocks. Every allocation is followed by a
 * zero byte, which makes protobuf-c's `bytes` fields NUL-terminated for free. */

struct arena_blk {
    struct arena_blk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

struct arena {
    struct arena_blk *head;
    size_t total; /* bytes obtained from malloc */
    size_t cap;   /* refuse to grow beyond this (0 = no cap) */
    bool failed;  /* an allocation failed: report -ENOMEM, not bad data */
    bool capped;  /* ... because the cap was reached: the input is too big (-E2BIG) */
};

/* Allocations above this get a block of their own, linked behind the current one, so that a
 * large array never strands the free tail of a small block. */
#define ARENA_BIG ((size_t)64 << 10)

static void *arena_alloc_slow(struct arena *a, size_t size);

static void *arena_alloc(void *data, size_t size) {
    struct arena *a = data;
    struct arena_blk *b = a->head;
    if (b && size <= ARENA_BIG) { /* the common case: room in the current block */
        size_t need = (size + 1 + 15) & ~(size_t)15;
        if (b->cap - b->used >= need) {
            unsigned char *p = b->data + b->used;
            b->used += need;
            p[size] = 0;
            return p;
        }
    }
    return arena_alloc_slow(a, size);
}

static void *arena_alloc_slow(struct arena *a, size_t size) {
    if (size > SIZE_MAX / 2) {
        a->failed = true;
        return NULL;
    }
    size_t need = (size + 1 + 15) & ~(size_t)15;
    struct arena_blk *b = a->head;
    if (!b || b->cap - b->used < need) {
        size_t cap = b ? b->cap * 2 : 16384;
        if (cap > ((size_t)4 << 20)) cap = (size_t)4 << 20;
        if (need > ARENA_BIG || cap < need) cap = need;
        /* Near the cap, take only what is left (reserved but unused space counts too). */
        if (a->cap && a->total + sizeof *b + cap > a->cap && a->total + sizeof *b + need <= a->cap)
            cap = a->cap - a->total - sizeof *b;
        if (a->cap && a->total + sizeof *b + cap > a->cap) {
            a->failed = a->capped = true;
            return NULL;
        }
        b = malloc(sizeof *b + cap);
        if (!b) {
            a->failed = true;
            return NULL;
        }
        b->cap = cap;
        b->used = 0;
        if (need > ARENA_BIG && a->head) { /* keep the current small block in use */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
        a->total += sizeof *b + cap;
    }
    unsigned char *p = b->data + b->used;
    b->used += need;
    p[size] = 0;
    return p;
}

static void arena_free_one(void *data, void *ptr) {
    (void)data;
    (void)ptr; /* freed with the arena */
}

static void arena_fini(struct arena *a) {
    struct arena_blk *b = a->head;
    while (b) {
        struct arena_blk *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
}

/* Typed allocation of n elements of size sz from the arena, overflow-checked. */
static void *arena_array(struct arena *a, size_t n, size_t sz) {
    if (n && sz > SIZE_MAX / 4 / n) {
        a->failed = true;
        return NULL;
    }
    return arena_alloc(a, n * sz);
}

/* ---------------------------------------------------------------------------------------- */

struct rw_series {
    struct proto_label *labels;
    size_t n_labels;
    uint64_t tag; /* from rw_limits.cache, 0: not found there */
    const Prometheus__TimeSeriesLazy *ts;
    struct proto_hist *hists;
};

struct rw_request {
    struct arena arena;
    uint8_t *raw;        /* the decoded body, kept while keys point into it */
    struct rw_key *keys; /* one per series when rw_limits.known was given, else NULL */
    Prometheus__WriteRequestLazy *msg;
    struct rw_series *series;
    size_t n_series, n_samples, n_hists, n_meta;
};

struct decoder {
    struct rw_limits lim;
    struct perr *err;
    int code;
    struct arena *arena;
    /* Series keys, collected by the pre-scan when lim.known is set (keys_off: not wanted, or
     * out of memory for them: then no series is looked up). */
    struct rw_key *keys;
    size_t nkeys, capkeys;
    bool keys_off;
};

/* Hash of a key's bytes, 8 bytes per multiply. */
static uint64_t key_hash(const uint8_t *p, size_t len) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ (w * 0x9fb21c651e98df25ULL));
        h = ((h << 29) | (h >> 35)) * 0xd6e8feb86659fd93ULL;
    }
    uint64_t w = 0;
    for (size_t k = 0; i + k < len; k++)
        w |= (uint64_t)p[i + k] << (8 * k);
    h = (h ^ (w * 0x9fb21c651e98df25ULL));
    h = ((h << 29) | (h >> 35)) * 0xd6e8feb86659fd93ULL;
    h ^= h >> 32;
    h *= 0xd6e8feb86659fd93ULL;
    return h ^ (h >> 32);
}

/* Appends one series' key (len 0: none); on OOM stops collecting keys. */
static void key_add(struct decoder *d, const uint8_t *bytes, size_t len) {
    if (d->keys_off) return;
    if (d->nkeys == d->capkeys) {
        size_t cap = d->capkeys ? d->capkeys * 2 : 256;
        struct rw_key *k = realloc(d->keys, cap * sizeof *k);
        if (!k) {
            d->keys_off = true;
            return;
        }
        d->keys = k;
        d->capkeys = cap;
    }
    d->keys[d->nkeys++] = (struct rw_key){bytes, len, 0};
}

/* Records an error: code and a printf-style one-liner; line/col locate series and item. */
static int fail(struct decoder *d, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static int fail(struct decoder *d, int code, int line, int col, const char *fmt, ...) {
    d->code = code;
    if (d->err) {
        d->err->line = line;
        d->err->col = col;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err->msg, sizeof d->err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* ---------------------------------------------------------------------------------------- */
/* Pre-scan of the wire: counts series, labels, samples, histograms, exemplars and metadata,
 * checks the limits and computes the memory the unpacking will take, all BEFORE protobuf-c
 * allocates anything, so a small body that would unpack into millions of empty messages or
 * unknown fields is refused cheaply. Also catches truncated fields with a precise reason. */

static int wire_varint(const uint8_t **pp, const uint8_t *end, uint64_t *v) {
    const uint8_t *p = *pp;
    if (p < end && !(*p & 0x80)) { /* one byte: field keys and short lengths */
        *v = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t r = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (p >= end) return -1;
        uint8_t b = *p++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *pp = p;
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Reads one field header and, for LEN fields, the payload bounds. Returns 0 or -1. */
static int wire_field(const uint8_t **pp, const uint8_t *end, uint32_t *field, unsigned *wt,
                      const uint8_t **sub, size_t *sublen) {
    uint64_t key;
    if (wire_varint(pp, end, &key) < 0) return -1;
    *field = (uint32_t)(key >> 3);
    *wt = (unsigned)(key & 7);
    if (*field == 0) return -1;
    uint64_t v;
    switch (*wt) {
    case 0:
        return wire_varint(pp, end, &v);
    case 1:
        if (end - *pp < 8) return -1;
        *pp += 8;
        return 0;
    case 5:
        if (end - *pp < 4) return -1;
        *pp += 4;
        return 0;
    case 2:
        if (wire_varint(pp, end, &v) < 0 || v > (uint64_t)(end - *pp)) return -1;
        *sub = *pp;
        *sublen = (size_t)v;
        *pp += v;
        return 0;
    default:
        return -1; /* groups (3, 4) are not used by this schema; 6, 7 do not exist */
    }
}

/* Memory protobuf-c will take from the arena to unpack a message, computed from the wire
 * (an upper bound of our arena's use): the struct, one array per repeated field, a copy of
 * every bytes field and unknown field, and the "scanned member" slabs it allocates for
 * messages of more than 16 fields (it frees them, but our arena does not reuse memory). Every
 * wire element costs something (an empty exemplar: 2 bytes on the wire, ~90 in memory), so
 * this is what bounds the memory of a small body that decodes into millions of tiny
 * messages or unknown fields. */

enum wk { WK_UNKNOWN = 0, WK_SCALAR, WK_REP_VARINT, WK_REP_F64, WK_BYTES, WK_MSG };
enum wm { WM_WRITE, WM_SERIES, WM_LABEL, WM_SAMPLE, WM_EXEMPLAR, WM_HIST, WM_SPAN, WM_META };

struct wire_msg {
    size_t size;      /* sizeof the protobuf-c struct */
    uint8_t kind[17]; /* by field number; numbers > 16 are unknown */
    uint8_t sub[17];  /* enum wm of WK_MSG fields */
};

static const struct wire_msg wire_msgs[] = {
    [WM_WRITE] = {sizeof(Prometheus__WriteRequestLazy),
                  {[1] = WK_MSG, [3] = WK_MSG},
                  {[1] = WM_SERIES, [3] = WM_META}},
    [WM_SERIES] = {sizeof(Prometheus__TimeSeriesLazy),
                   {[1] = WK_MSG, [2] = WK_MSG, [3] = WK_MSG, [4] = WK_MSG},
                   {[1] = WM_LABEL, [2] = WM_SAMPLE, [3] = WM_EXEMPLAR, [4] = WM_HIST}},
    [WM_LABEL] = {sizeof(Prometheus__Label), {[1] = WK_BYTES, [2] = WK_BYTES}, {0}},
    [WM_SAMPLE] = {sizeof(Prometheus__Sample), {[1] = WK_SCALAR, [2] = WK_SCALAR}, {0}},
    [WM_EXEMPLAR] = {sizeof(Prometheus__Exemplar),
                     {[1] = WK_MSG, [2] = WK_SCALAR, [3] = WK_SCALAR},
                     {[1] = WM_LABEL}},
    [WM_HIST] = {sizeof(Prometheus__Histogram),
                 {[1] = WK_SCALAR,
                  [2] = WK_SCALAR,
                  [3] = WK_SCALAR,
                  [4] = WK_SCALAR,
                  [5] = WK_SCALAR,
                  [6] = WK_SCALAR,
                  [7] = WK_SCALAR,
                  [8] = WK_MSG,
                  [9] = WK_REP_VARINT,
                  [10] = WK_REP_F64,
                  [11] = WK_MSG,
                  [12] = WK_REP_VARINT,
                  [13] = WK_REP_F64,
                  [14] = WK_SCALAR,
                  [15] = WK_SCALAR,
                  [16] = WK_REP_F64},
                 {[8] = WM_SPAN, [11] = WM_SPAN}},
    [WM_SPAN] = {sizeof(Prometheus__BucketSpan), {[1] = WK_SCALAR, [2] = WK_SCALAR}, {0}},
    [WM_META] = {sizeof(Prometheus__MetricMetadata),
                 {[1] = WK_SCALAR, [2] = WK_BYTES, [4] = WK_BYTES, [5] = WK_BYTES},
                 {0}},
};

/* Arena bytes of one allocation of n bytes (see arena_alloc). */
static size_t arena_cost(size_t n) {
    return n > SIZE_MAX / 2 ? SIZE_MAX / 2 : ((n + 1 + 15) & ~(size_t)15);
}

static size_t sat_add(size_t a, size_t b) {
    return a > SIZE_MAX / 2 - b ? SIZE_MAX / 2 : a + b;
}

/* The arrays, unknown-field records and scanned-member slabs protobuf-c allocates for a
 * message of n_fields wire fields (rep: elements per repeated field number), added to c. */
static size_t finish_cost(size_t c, const size_t rep[17], size_t n_unknown, size_t n_fields) {
    for (unsigned f = 1; f <= 16; f++)
        if (rep[f]) c = sat_add(c, arena_cost(rep[f] * sizeof(void *)));
    if (n_unknown) c = sat_add(c, arena_cost(n_unknown * sizeof(ProtobufCMessageUnknownField)));
    /* Scanned-member slabs: 16 members on protobuf-c's stack, then slabs of 32, 64, ...
     * members of 32 bytes each. */
    for (size_t have = 16, slab = 32; have < n_fields && slab; have += slab, slab *= 2)
        c = sat_add(c, arena_cost(slab * 32));
    return c;
}

/* The canonical encodings of the two leaf messages every request is made of, costed without
 * the general walk (they are most of the prescan's work). Each returns 1 and sets *cost to
 * exactly what wire_cost's general path computes for that encoding, or 0 when the bytes are
 * anything else (the general path then decides). */
static int leaf_cost(const uint8_t *buf, size_t len, enum wm m, size_t *cost) {
    if (m == WM_SAMPLE) {
        /* 0x09 <double> 0x10 <varint timestamp>: two scalar fields, nothing allocated. */
        if (len < 11 || len > 19 || buf[0] != 0x09 || buf[9] != 0x10) return 0;
        for (size_t i = 10; i < len - 1; i++)
            if (!(buf[i] & 0x80)) return 0;
        if (buf[len - 1] & 0x80) return 0;
        *cost = arena_cost(wire_msgs[WM_SAMPLE].size);
        return 1;
    }
    if (m == WM_LABEL) {
        /* 0x0a <len> name 0x12 <len> value, both lengths one byte. */
        if (len < 4 || buf[0] != 0x0a || buf[1] & 0x80) return 0;
        size_t nl = buf[1];
        if (2 + nl + 2 > len || buf[2 + nl] != 0x12 || buf[3 + nl] & 0x80) return 0;
        size_t vl = buf[3 + nl];
        if (4 + nl + vl != len) return 0;
        *cost =
            sat_add(sat_add(arena_cost(wire_msgs[WM_LABEL].size), arena_cost(nl)), arena_cost(vl));
        return 1;
    }
    return 0;
}

/* Upper bound of the arena bytes to unpack one message of type m. Returns 0 (cost in *cost)
 * or -1 when the wire data is malformed. Recursion is bounded by the schema (depth 4). */
static int wire_cost(const uint8_t *buf, size_t len, enum wm m, size_t *cost) {
    if (leaf_cost(buf, len, m, cost)) return 0;
    const struct wire_msg *w = &wire_msgs[m];
    const uint8_t *p = buf, *end = buf + len;
    size_t c = arena_cost(w->size), n_fields = 0, n_unknown = 0;
    size_t rep[17] = {0};
    while (p < end) {
        uint32_t f;
        unsigned wt;
        const uint8_t *sub = NULL, *start = p;
        size_t sublen = 0;
        if (wire_field(&p, end, &f, &wt, &sub, &sublen) < 0) return -1;
        n_fields++;
        unsigned k = f <= 16 ? w->kind[f] : WK_UNKNOWN;
        switch (k) {
        case WK_UNKNOWN:
            n_unknown++;
            c = sat_add(c, arena_cost((size_t)(p - start)));
            break;
        case WK_SCALAR:
            break;
        case WK_BYTES:
            c = sat_add(c, arena_cost(sublen));
            break;
        case WK_MSG:
            if (wt == 2) {
                size_t sc;
                if (wire_cost(sub, sublen, (enum wm)w->sub[f], &sc) < 0) return -1;
                c = sat_add(c, sc);
            }
            rep[f]++;
            break;
        case WK_REP_VARINT:
            if (wt == 2)
                for (size_t i = 0; i < sublen; i++)
                    rep[f] += !(sub[i] & 0x80);
            else
                rep[f]++;
            break;
        case WK_REP_F64:
            rep[f] += wt == 2 ? sublen / 8 : 1;
            break;
        }
    }
    *cost = finish_cost(c, rep, n_unknown, n_fields);
    return 0;
}

/* One TimeSeries of the pre-scan: counts its labels, samples and exemplars against the
 * limits (precise reasons, returned at once) and adds what wire_cost(WM_SERIES) would compute
 * to *cost, in the same walk. A malformed nested message only sets *bad: the count limits of
 * the whole request are checked first, as when counting and costing were two walks. */
static int prescan_series(struct decoder *d, const uint8_t *buf, size_t len, size_t n_series,
                          size_t *n_points, size_t *n_exemplars, size_t *cost, bool *bad) {
    const struct wire_msg *w = &wire_msgs[WM_SERIES];
    const uint8_t *q = buf, *qend = buf + len;
    size_t c = arena_cost(w->size), n_fields = 0, n_unknown = 0, n_labels = 0;
    size_t rep[5] = {0}; /* fields 1-4; the others are unknown */
    /* The key: the run of Label fields, if they are contiguous. */
    const uint8_t *kstart = NULL, *kend = NULL;
    bool kok = true, in_labels = false;
    while (q < qend) {
        uint32_t f;
        unsigned wt;
        const uint8_t *sub = NULL, *start = q;
        size_t sublen = 0;
        /* Fast path: a one-byte LEN key with a one-byte length (every label and sample). */
        if (qend - q >= 2 && (q[0] & 0x87) == 2 && q[0] > 7 && !(q[1] & 0x80) &&
            q[1] <= qend - q - 2) {
            f = q[0] >> 3;
            wt = 2;
            sub = q + 2;
            sublen = q[1];
            q = sub + sublen;
        } else if (wire_field(&q, qend, &f, &wt, &sub, &sublen) < 0) {
            return fail(d, -EPROTO, (int)n_series, 0,
                        "proto: TimeSeries %zu: bad or truncated field", n_series);
        }
        n_fields++;
        if (f == 1) {
            if (!kstart)
                kstart = start;
            else if (!in_labels)
                kok = false;
            kend = q;
            in_labels = true;
        } else {
            in_labels = false;
        }
        if (wt == 2) {
            if (f == 1 && ++n_labels > d->lim.max_labels)
                return fail(d, -E2BIG, (int)n_series, 0,
                            "series %zu has too many labels (limit %zu)", n_series,
                            d->lim.max_labels);
            if ((f == 2 || f == 4) && ++*n_points > d->lim.max_samples)
                return fail(d, -E2BIG, (int)n_series, 0, "too many samples in request (limit %zu)",
                            d->lim.max_samples);
            if (f == 3 && ++*n_exemplars > d->lim.max_samples)
                return fail(d, -E2BIG, (int)n_series, 0,
                            "too many exemplars in request (limit %zu)", d->lim.max_samples);
        }
        if (f > 16 || w->kind[f] == WK_UNKNOWN) {
            n_unknown++;
            c = sat_add(c, arena_cost((size_t)(q - start)));
            continue;
        }
        /* Fields 2-4 of a TimeSeries are messages. Labels (1) are unpacked as bytes (a copy in
         * the request), then, unless the cache knows them, each one as a Label message in a
         * scratch arena whose name and value are copied into the request: an upper bound of
         * those copies is the Label's own cost without its struct. */
        if (wt == 2 && !*bad) {
            size_t sc;
            if (leaf_cost(sub, sublen, (enum wm)w->sub[f], &sc))
                ;
            else if (wire_cost(sub, sublen, (enum wm)w->sub[f], &sc) < 0)
                *bad = true;
            else if (f == 1)
                c = sat_add(c,
                            sat_add(arena_cost(sublen), sc - arena_cost(wire_msgs[WM_LABEL].size)));
            else
                c = sat_add(c, sc);
        }
        rep[f]++;
    }
    /* The labels are an array of ProtobufCBinaryData, not of pointers; fields 2-4 are arrays
     * of pointers (finish_cost's general rule, for the only fields a TimeSeries has). */
    if (rep[1]) c = sat_add(c, arena_cost(rep[1] * sizeof(ProtobufCBinaryData)));
    for (unsigned f = 2; f <= 4; f++)
        if (rep[f]) c = sat_add(c, arena_cost(rep[f] * sizeof(void *)));
    static const size_t none[17];
    *cost =
        sat_add(*cost, n_unknown || n_fields > 16 ? finish_cost(c, none, n_unknown, n_fields) : c);
    if (!d->keys_off) key_add(d, kstart, kok && kstart ? (size_t)(kend - kstart) : 0);
    return 0;
}

/* Pre-scan of the WriteRequest: one walk that checks the count limits with precise reasons
 * and computes what wire_cost(WM_WRITE) would (the unpack memory bound). */
static int prescan(struct decoder *d, const uint8_t *buf, size_t len, size_t *cost) {
    const struct wire_msg *w = &wire_msgs[WM_WRITE];
    const uint8_t *p = buf, *end = buf + len;
    size_t n_series = 0, n_points = 0, n_exemplars = 0, n_meta = 0;
    size_t c = arena_cost(w->size), n_fields = 0, n_unknown = 0;
    size_t rep[17] = {0};
    bool bad = false;
    while (p < end) {
        uint32_t f;
        unsigned wt;
        const uint8_t *sub = NULL, *start = p;
        size_t sublen = 0;
        if (wire_field(&p, end, &f, &wt, &sub, &sublen) < 0)
            return fail(d, -EPROTO, 0, 0, "proto: WriteRequest: bad or truncated field at byte %zu",
                        (size_t)(p - buf));
        n_fields++;
        if (f == 3 && wt == 2 && ++n_meta > d->lim.max_series)
            return fail(d, -E2BIG, 0, 0, "too many metadata entries in request (limit %zu)",
                        d->lim.max_series);
        if (f > 16 || w->kind[f] == WK_UNKNOWN) {
            n_unknown++;
            c = sat_add(c, arena_cost((size_t)(p - start)));
            continue;
        }
        /* Fields 1 and 3 of a WriteRequest are messages. */
        rep[f]++;
        if (wt != 2) continue;
        if (f == 3) {
            size_t mc;
            if (!bad && wire_cost(sub, sublen, WM_META, &mc) < 0)
                bad = true;
            else if (!bad)
                c = sat_add(c, mc);
            continue;
        }
        n_series++;
        if (n_series > d->lim.max_series)
            return fail(d, -E2BIG, 0, 0, "too many series in request (limit %zu)",
                        d->lim.max_series);
        if (prescan_series(d, sub, sublen, n_series, &n_points, &n_exemplars, &c, &bad) < 0)
            return d->code;
    }
    if (bad) return fail(d, -EPROTO, 0, 0, "%s", "proto: WriteRequest: bad or truncated field");
    *cost = finish_cost(c, rep, n_unknown, n_fields);
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Validation of one series' labels. */

static const char *bd_str(const ProtobufCBinaryData *b) {
    /* Thanks to the arena's trailing zero byte, data is NUL-terminated; an absent or empty
     * field has data == NULL. */
    return b->data ? (const char *)b->data : "";
}

static int cmp_label(const void *a, const void *b) {
    const struct proto_label *x = a, *y = b;
    size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
    int c = memcmp(x->name, y->name, n);
    if (c) return c;
    return (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* Converts and validates one series' unpacked labels. */
/* Validates one series' labels as unpacked (out->labels, n_labs of them, in wire order),
 * sorts them if allowed, drops empty values. */
static int check_labels(struct decoder *d, size_t si, size_t n_labs, struct rw_series *out) {
    char q[64];
    int line = (int)si + 1;
    struct proto_label *ls = out->labels;
    for (size_t i = 0; i < n_labs; i++) {
        int col = (int)i + 1;
        if (ls[i].name_len == 0)
            return fail(d, -EPROTO, line, col, "series %zu: empty label name", si + 1);
        if (ls[i].name_len > d->lim.max_name_len)
            return fail(d, -E2BIG, line, col, "series %zu: label name longer than %zu bytes",
                        si + 1, d->lim.max_name_len);
        if (ls[i].value_len > d->lim.max_value_len)
            return fail(d, -E2BIG, line, col, "series %zu: value of label %s longer than %zu bytes",
                        si + 1, names_quote(q, sizeof q, ls[i].name, ls[i].name_len),
                        d->lim.max_value_len);
        bool ok = d->lim.utf8_names ? names_utf8_valid(ls[i].name, ls[i].name_len)
                                    : names_label_ok(ls[i].name, ls[i].name_len);
        /* The store keeps NUL-terminated strings: {a="x\0y"} would collide with {a="x"}. */
        if (memchr(ls[i].name, 0, ls[i].name_len))
            return fail(d, -EPROTO, line, col, "series %zu: label name %s contains a NUL byte",
                        si + 1, names_quote(q, sizeof q, ls[i].name, ls[i].name_len));
        if (memchr(ls[i].value, 0, ls[i].value_len))
            return fail(d, -EPROTO, line, col, "series %zu: value of label %s contains a NUL byte",
                        si + 1, names_quote(q, sizeof q, ls[i].name, ls[i].name_len));
        if (!ok)
            return fail(d, -EPROTO, line, col, "series %zu: invalid label name %s", si + 1,
                        names_quote(q, sizeof q, ls[i].name, ls[i].name_len));
        if (!names_utf8_valid(ls[i].value, ls[i].value_len))
            return fail(d, -EPROTO, line, col, "series %zu: value of label %s is not valid UTF-8",
                        si + 1, names_quote(q, sizeof q, ls[i].name, ls[i].name_len));
    }
    size_t n = n_labs;
    if (d->lim.sort_labels && n > 1) {
        bool sorted = true;
        for (size_t i = 1; i < n && sorted; i++)
            sorted = cmp_label(&ls[i - 1], &ls[i]) < 0;
        if (!sorted) qsort(ls, n, sizeof *ls, cmp_label);
    }
    for (size_t i = 1; i < n; i++) {
        int c = cmp_label(&ls[i - 1], &ls[i]);
        if (c == 0)
            return fail(d, -EPROTO, line, (int)i + 1, "series %zu: duplicate label name %s", si + 1,
                        names_quote(q, sizeof q, ls[i].name, ls[i].name_len));
        if (c > 0)
            return fail(d, -EPROTO, line, (int)i + 1,
                        "series %zu: labels not sorted by name (%s out of order)", si + 1,
                        names_quote(q, sizeof q, ls[i].name, ls[i].name_len));
    }
    /* Drop empty values ("label absent"), then look for the metric name. */
    size_t k = 0;
    const struct proto_label *name = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ls[i].value_len == 0) continue;
        ls[k] = ls[i];
        if (ls[k].name_len == 8 && memcmp(ls[k].name, "__name__", 8) == 0) name = &ls[k];
        k++;
    }
    if (!name)
        return fail(d, -EPROTO, line, 0, "series %zu: missing metric name (__name__ label)",
                    si + 1);
    bool ok = d->lim.utf8_names || names_metric_ok(name->value, name->value_len);
    if (!ok)
        return fail(d, -EPROTO, line, 0, "series %zu: invalid metric name %s", si + 1,
                    names_quote(q, sizeof q, name->value, name->value_len));
    out->labels = ls;
    out->n_labels = k;
    return 0;
}

/* Samples of one series must not go back in time; a second sample at the same timestamp
 * must carry the same bits (an identical retry is fine). */
static int check_samples(struct decoder *d, size_t si, const Prometheus__TimeSeriesLazy *ts) {
    for (size_t i = 1; i < ts->n_samples; i++) {
        const Prometheus__Sample *a = ts->samples[i - 1], *b = ts->samples[i];
        if (b->timestamp < a->timestamp)
            return fail(d, -EPROTO, (int)si + 1, (int)i + 1,
                        "series %zu: out of order sample (timestamp %lld after %lld)", si + 1,
                        (long long)b->timestamp, (long long)a->timestamp);
        if (b->timestamp == a->timestamp && memcmp(&a->value, &b->value, sizeof(double)) != 0)
            return fail(d, -EPROTO, (int)si + 1, (int)i + 1,
                        "series %zu: duplicate sample for timestamp %lld", si + 1,
                        (long long)b->timestamp);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Native histograms, checked as Prometheus' histogram.Validate / FloatHistogram.Validate. */

static int conv_spans(struct decoder *d, size_t si, size_t hi, const char *side,
                      Prometheus__BucketSpan *const *in, size_t n, size_t n_buckets,
                      const struct proto_span **out) {
    struct proto_span *sp = arena_array(d->arena, n, sizeof *sp);
    if (!sp && n) return fail(d, -ENOMEM, (int)si + 1, 0, "out of memory");
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        sp[i].offset = in[i]->offset;
        sp[i].length = in[i]->length;
        if (i > 0 && sp[i].offset < 0)
            return fail(d, -EPROTO, (int)si + 1, 0,
                        "series %zu histogram %zu: %s side: span number %zu with offset %d: "
                        "histogram has a span whose offset is negative",
                        si + 1, hi + 1, side, i + 1, (int)sp[i].offset);
        total += sp[i].length;
    }
    if (total != n_buckets)
        return fail(d, -EPROTO, (int)si + 1, 0,
                    "series %zu histogram %zu: %s side: spans need %llu buckets, have %zu "
                    "buckets: histogram spans specify different number of buckets than provided",
                    si + 1, hi + 1, side, (unsigned long long)total, n_buckets);
    *out = sp;
    return 0;
}

/* Integer histograms: accumulate deltas into absolute counts, all must be >= 0. */
static int conv_deltas(struct decoder *d, size_t si, size_t hi, const char *side,
                       const int64_t *deltas, size_t n, const double **out, uint64_t *sum) {
    double *b = arena_array(d->arena, n, sizeof *b);
    if (!b && n) return fail(d, -ENOMEM, (int)si + 1, 0, "out of memory");
    int64_t cur = 0;
    *sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (__builtin_add_overflow(cur, deltas[i], &cur) || cur < 0)
            return fail(d, -EPROTO, (int)si + 1, 0,
                        "series %zu histogram %zu: %s side: bucket number %zu has observation "
                        "count of %lld: histogram has a bucket whose observation count is negative",
                        si + 1, hi + 1, side, i + 1, (long long)cur);
        b[i] = (double)cur;
        if (__builtin_add_overflow(*sum, (uint64_t)cur, sum))
            return fail(d, -EPROTO, (int)si + 1, 0,
                        "series %zu histogram %zu: bucket counts overflow", si + 1, hi + 1);
    }
    *out = b;
    return 0;
}

static int check_float_buckets(struct decoder *d, size_t si, size_t hi, const char *side,
                               const double *c, size_t n, double *sum) {
    *sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (c[i] < 0)
            return fail(d, -EPROTO, (int)si + 1, 0,
                        "series %zu histogram %zu: %s side: bucket number %zu has observation "
                        "count of %g: histogram has a bucket whose observation count is negative",
                        si + 1, hi + 1, side, i + 1, c[i]);
        *sum += c[i];
    }
    return 0;
}

/* Schema -53 (custom buckets), as histogram.Validate / checkHistogramCustomBounds: bounds
 * strictly increasing and finite (Go lets NaN through its "<=" test; we refuse it), every
 * span offset >= 0 (the first one included), the spans' extent within the bounds plus the
 * implicit +Inf bucket, and no zero bucket or negative side. Consumers index the bounds with
 * the span positions, so this is what keeps them in range. */
static int check_custom(struct decoder *d, size_t si, size_t hi, const Prometheus__Histogram *in) {
    int line = (int)si + 1;
    double prev = -INFINITY;
    for (size_t i = 0; i < in->n_custom_values; i++) {
        double cur = in->custom_values[i];
        if (isnan(cur) || cur <= prev)
            return fail(d, -EPROTO, line, 0,
                        "series %zu histogram %zu: custom buckets: previous bound is %g and "
                        "current is %g: histogram custom bounds must be in strictly increasing "
                        "order",
                        si + 1, hi + 1, prev, cur);
        prev = cur;
    }
    if (prev == INFINITY)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: last +Inf bound must not be "
                    "explicitly defined: histogram custom bounds must be finite",
                    si + 1, hi + 1);
    bool is_float = in->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    size_t npos = is_float ? in->n_positive_counts : in->n_positive_deltas;
    uint64_t n_buckets = 0, extent = 0;
    for (size_t i = 0; i < in->n_positive_spans; i++) {
        const Prometheus__BucketSpan *sp = in->positive_spans[i];
        if (sp->offset < 0)
            return fail(d, -EPROTO, line, 0,
                        "series %zu histogram %zu: custom buckets: span number %zu with offset "
                        "%d: histogram has a span whose offset is negative",
                        si + 1, hi + 1, i + 1, (int)sp->offset);
        n_buckets += sp->length;
        extent += (uint64_t)sp->length + (uint64_t)sp->offset;
    }
    if (n_buckets != npos)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: spans need %llu buckets, have %zu "
                    "buckets: histogram spans specify different number of buckets than provided",
                    si + 1, hi + 1, (unsigned long long)n_buckets, npos);
    if (extent > (uint64_t)in->n_custom_values + 1)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: only %zu custom bounds defined "
                    "which is insufficient to cover total span length of %llu: histogram custom "
                    "bounds are too few",
                    si + 1, hi + 1, in->n_custom_values, (unsigned long long)extent);
    bool zero_count = (in->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT &&
                       in->zero_count_int != 0) ||
                      (in->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT &&
                       in->zero_count_float != 0);
    if (zero_count)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: histogram with custom buckets "
                    "must have a zero count of 0",
                    si + 1, hi + 1);
    if (in->zero_threshold != 0)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: histogram with custom buckets "
                    "must have a zero threshold of 0",
                    si + 1, hi + 1);
    if (in->n_negative_spans)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: histogram with custom buckets "
                    "must not have negative spans",
                    si + 1, hi + 1);
    if (in->n_negative_deltas || in->n_negative_counts)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: custom buckets: histogram with custom buckets "
                    "must not have negative buckets",
                    si + 1, hi + 1);
    return 0;
}

static int conv_hist(struct decoder *d, size_t si, size_t hi, const Prometheus__Histogram *in,
                     struct proto_hist *h) {
    int line = (int)si + 1;
    *h = (struct proto_hist){0};
    h->is_float = in->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_FLOAT;
    h->schema = in->schema;
    h->reset_hint =
        (unsigned)in->reset_hint <= 3 ? (enum proto_reset_hint)in->reset_hint : PROTO_RESET_UNKNOWN;
    h->zero_threshold = in->zero_threshold;
    h->sum = in->sum;
    h->custom_values = in->custom_values;
    h->n_custom_values = in->n_custom_values;

    bool custom = in->schema == -53;
    if (!custom && (in->schema < -4 || in->schema > 8))
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: histogram has an invalid schema %d, which must be "
                    "between -4 and 8 (or -53 for custom buckets)",
                    si + 1, hi + 1, (int)in->schema);
    if (custom && check_custom(d, si, hi, in) < 0) return d->code;
    if (!custom && in->n_custom_values)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: histogram with exponential schema must not have "
                    "custom bounds",
                    si + 1, hi + 1);

    size_t npos = h->is_float ? in->n_positive_counts : in->n_positive_deltas;
    size_t nneg = h->is_float ? in->n_negative_counts : in->n_negative_deltas;
    if (conv_spans(d, si, hi, "positive", in->positive_spans, in->n_positive_spans, npos,
                   &h->pos_spans) < 0 ||
        conv_spans(d, si, hi, "negative", in->negative_spans, in->n_negative_spans, nneg,
                   &h->neg_spans) < 0)
        return d->code;
    h->n_pos_spans = in->n_positive_spans;
    h->n_neg_spans = in->n_negative_spans;
    h->n_pos_buckets = npos;
    h->n_neg_buckets = nneg;

    if (h->is_float) {
        h->count = in->count_float;
        h->zero_count = in->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_FLOAT
                            ? in->zero_count_float
                            : 0;
        h->pos_buckets = in->positive_counts;
        h->neg_buckets = in->negative_counts;
        double ps, ns;
        if (check_float_buckets(d, si, hi, "positive", h->pos_buckets, npos, &ps) < 0 ||
            check_float_buckets(d, si, hi, "negative", h->neg_buckets, nneg, &ns) < 0)
            return d->code;
        if (h->zero_count < 0 || h->count < 0)
            return fail(d, -EPROTO, line, 0,
                        "series %zu histogram %zu: histogram has a negative count", si + 1, hi + 1);
        double total = ps + ns + h->zero_count;
        /* FloatHistogram.Validate only checks "count >= observations in buckets" (when the
         * sum is not NaN); allow for rounding in the sender's float additions. */
        if (!isnan(h->sum) && total > h->count * (1 + 1e-9) + 1e-9)
            return fail(d, -EPROTO, line, 0,
                        "series %zu histogram %zu: %g observations found in buckets, but the "
                        "Count field is %g: histogram's observation count should be at least the "
                        "number of observations found in the buckets",
                        si + 1, hi + 1, total, h->count);
        return 0;
    }
    h->count_int = in->count_case == PROMETHEUS__HISTOGRAM__COUNT_COUNT_INT ? in->count_int : 0;
    h->zero_count_int = in->zero_count_case == PROMETHEUS__HISTOGRAM__ZERO_COUNT_ZERO_COUNT_INT
                            ? in->zero_count_int
                            : 0;
    h->count = (double)h->count_int;
    h->zero_count = (double)h->zero_count_int;
    uint64_t ps, ns;
    if (conv_deltas(d, si, hi, "positive", in->positive_deltas, npos, &h->pos_buckets, &ps) < 0 ||
        conv_deltas(d, si, hi, "negative", in->negative_deltas, nneg, &h->neg_buckets, &ns) < 0)
        return d->code;
    uint64_t total;
    if (__builtin_add_overflow(ps, ns, &total) ||
        __builtin_add_overflow(total, h->zero_count_int, &total))
        return fail(d, -EPROTO, line, 0, "series %zu histogram %zu: bucket counts overflow", si + 1,
                    hi + 1);
    if (isnan(h->sum) ? total > h->count_int : total != h->count_int)
        return fail(d, -EPROTO, line, 0,
                    "series %zu histogram %zu: %llu observations found in buckets, but the Count "
                    "field is %llu",
                    si + 1, hi + 1, (unsigned long long)total, (unsigned long long)h->count_int);
    return 0;
}

static int check_hists(struct decoder *d, size_t si, const Prometheus__TimeSeriesLazy *ts,
                       struct rw_series *out) {
    if (!ts->n_histograms) return 0;
    struct proto_hist *hs = arena_array(d->arena, ts->n_histograms, sizeof *hs);
    if (!hs) return fail(d, -ENOMEM, (int)si + 1, 0, "out of memory");
    for (size_t i = 0; i < ts->n_histograms; i++) {
        if (conv_hist(d, si, i, ts->histograms[i], &hs[i]) < 0) return d->code;
        if (i > 0 && ts->histograms[i]->timestamp < ts->histograms[i - 1]->timestamp)
            return fail(d, -EPROTO, (int)si + 1, (int)i + 1,
                        "series %zu: out of order histogram sample (timestamp %lld after %lld)",
                        si + 1, (long long)ts->histograms[i]->timestamp,
                        (long long)ts->histograms[i - 1]->timestamp);
    }
    out->hists = hs;
    return 0;
}

/* ---------------------------------------------------------------------------------------- */

/* Unpacking may take this many times the decoded size, plus the slack (see decode()). */
#define RW_UNPACK_FACTOR 10
#define RW_UNPACK_SLACK ((size_t)1 << 20)

static const char *proto_unpack_reason(void) {
    return "proto: cannot unpack WriteRequest (invalid wire data)";
}

/* Copies n bytes (NULL when n is 0) into the arena, NUL-terminated; NULL on OOM. */
static const char *arena_str(struct arena *a, const uint8_t *p, size_t n) {
    if (!n) return "";
    char *s = arena_alloc(a, n); /* followed by a zero byte */
    if (s) memcpy(s, p, n);
    return s;
}

static void unpack_failed(struct decoder *d, const struct arena *a, size_t cap);

/* Unpacks the Label messages of one series (protobuf-c, into a scratch arena) and copies
 * their names and values into the request as s->labels (unchecked). */
static int unpack_labels(struct decoder *d, struct rw_request *r, struct rw_series *s) {
    const Prometheus__TimeSeriesLazy *ts = s->ts;
    struct proto_label *ls = arena_array(&r->arena, ts->n_labels, sizeof *ls);
    if (!ls && ts->n_labels) return fail(d, -ENOMEM, 0, 0, "out of memory");
    struct arena scratch = {0};
    ProtobufCAllocator alloc = {arena_alloc, arena_free_one, &scratch};
    int rc = 0;
    for (size_t k = 0; k < ts->n_labels && !rc; k++) {
        Prometheus__Label *l =
            prometheus__label__unpack(&alloc, ts->labels[k].len, ts->labels[k].data);
        if (!l) {
            unpack_failed(d, &scratch, 0);
            rc = d->code;
            break;
        }
        ls[k] =
            (struct proto_label){arena_str(&r->arena, l->name.data, l->name.len), l->name.len,
                                 arena_str(&r->arena, l->value.data, l->value.len), l->value.len};
        if (!ls[k].name || !ls[k].value) rc = fail(d, -ENOMEM, 0, 0, "out of memory");
    }
    arena_fini(&scratch);
    s->labels = ls;
    s->n_labels = ts->n_labels;
    return rc;
}

/* Reports a failed unpack: over the budget (-E2BIG), out of memory, or bad wire data. */
static void unpack_failed(struct decoder *d, const struct arena *a, size_t cap) {
    if (a->capped)
        fail(d, -E2BIG, 0, 0, "request takes more than %zu bytes to unpack", cap);
    else if (a->failed)
        fail(d, -ENOMEM, 0, 0, "out of memory while unpacking the request");
    else
        fail(d, -EPROTO, 0, 0, "%s", proto_unpack_reason());
}

static struct rw_request *decode(struct decoder *d, const uint8_t *body, size_t len) {
    struct rw_request *r = calloc(1, sizeof *r);
    uint8_t *raw = NULL;
    if (!r) {
        fail(d, -ENOMEM, 0, 0, "out of memory");
        return NULL;
    }
    d->arena = &r->arena;
    d->keys_off = !d->lim.cache;

    /* Decompression-bomb guard: the snappy block starts with the uncompressed length. */
    size_t n = 0;
    if (snappy_uncompressed_length((const char *)body, len, &n) != SNAPPY_OK) {
        fail(d, -EPROTO, 0, 0, "snappy: corrupt input");
        goto fail;
    }
    if (n > d->lim.max_decoded_bytes) {
        fail(d, -E2BIG, 0, 0, "snappy: decoded length %zu exceeds the limit of %zu bytes", n,
             d->lim.max_decoded_bytes);
        goto fail;
    }
    raw = malloc(n ? n : 1);
    if (!raw) {
        fail(d, -ENOMEM, 0, 0, "out of memory");
        goto fail;
    }
    size_t got = n;
    if (snappy_uncompress((const char *)body, len, (char *)raw, &got) != SNAPPY_OK || got != n) {
        fail(d, -EPROTO, 0, 0, "snappy: corrupt input");
        goto fail;
    }
    size_t cost = 0;
    if (prescan(d, raw, n, &cost) < 0) goto fail;

    /* protobuf-c allocates a struct per message: requests of float samples unpack to 4.7-6.1
     * times their decoded size (measured: 1 or 100 samples per series of 10 labels, 2M
     * samples in one series, an exemplar per sample), native histograms with few buckets to
     * about 9 times (a 208-byte struct for ~45 wire bytes). Refuse what the pre-scan says would
     * need more than RW_UNPACK_FACTOR times (plus a MiB), and cap the arena there too, so that no
     * input can make it grow further. */
    size_t cap = n > (SIZE_MAX / 2 - RW_UNPACK_SLACK) / RW_UNPACK_FACTOR
                     ? SIZE_MAX / 2
                     : RW_UNPACK_FACTOR * n + RW_UNPACK_SLACK;
    if (sat_add(cost, cost / 16) > cap) {
        fail(d, -E2BIG, 0, 0,
             "request would take %zu bytes to unpack, more than %d times its decoded size of "
             "%zu bytes",
             cost, RW_UNPACK_FACTOR, n);
        goto fail;
    }
    r->arena.cap = cap;
    ProtobufCAllocator alloc = {arena_alloc, arena_free_one, &r->arena};
    r->msg = prometheus__write_request_lazy__unpack(&alloc, n, raw);
    if (d->keys_off || !d->keys) {
        free(raw);
        free(d->keys); /* keys_off after an OOM while collecting them */
        d->keys = NULL;
    } else {
        r->raw = raw; /* the keys point into it */
        r->keys = d->keys;
        d->keys = NULL;
    }
    raw = NULL;
    if (!r->msg) {
        unpack_failed(d, &r->arena, cap);
        goto fail;
    }
    r->arena.cap = 0;

    const Prometheus__WriteRequestLazy *m = r->msg;
    r->n_series = m->n_timeseries;
    r->series = arena_array(&r->arena, m->n_timeseries, sizeof *r->series);
    if (!r->series && m->n_timeseries) {
        fail(d, -ENOMEM, 0, 0, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < m->n_timeseries; i++)
        r->series[i] = (struct rw_series){.ts = m->timeseries[i]};
    /* The pre-scan saw the series in wire order, as protobuf-c unpacked them. */
    if (r->keys && d->nkeys != m->n_timeseries) {
        free(r->keys); /* cannot happen for a request protobuf-c accepted; be safe */
        r->keys = NULL;
    }
    if (r->keys) {
        for (size_t i = 0; i < m->n_timeseries; i++)
            r->keys[i].hash = key_hash(r->keys[i].bytes, r->keys[i].len);
        int hit = 0;
        if (d->lim.cache_lock) pthread_mutex_lock(d->lim.cache_lock);
        for (size_t i = 0; i < m->n_timeseries && hit >= 0; i++) {
            struct rw_series *s = &r->series[i];
            const struct proto_label *ls;
            hit = rwcache_get(d->lim.cache, &r->keys[i], arena_alloc, &r->arena, &s->tag, &ls,
                              &s->n_labels);
            if (hit > 0) s->labels = (struct proto_label *)ls;
        }
        if (d->lim.cache_lock) pthread_mutex_unlock(d->lim.cache_lock);
        if (hit < 0) {
            fail(d, -ENOMEM, 0, 0, "out of memory");
            goto fail;
        }
    }
    /* Unpack the labels the cache did not know, all before any validation (as when they
     * were unpacked with the request). protobuf-c unpacks each Label into a scratch arena,
     * freed after each series; only the strings are copied into the request. */
    r->arena.cap = 0;
    for (size_t i = 0; i < m->n_timeseries; i++) {
        struct rw_series *s = &r->series[i];
        if (s->tag) continue;
        if (unpack_labels(d, r, s) < 0) goto fail;
    }
    /* Validation allocates from the same arena but without the unpack cap. */
    r->arena.cap = 0;
    for (size_t i = 0; i < m->n_timeseries; i++) {
        struct rw_series *s = &r->series[i];
        const Prometheus__TimeSeriesLazy *ts = s->ts;
        if ((!s->tag && check_labels(d, i, ts->n_labels, s) < 0) || check_samples(d, i, ts) < 0 ||
            check_hists(d, i, ts, s) < 0)
            goto fail;
        r->n_samples += ts->n_samples;
        r->n_hists += ts->n_histograms;
    }
    for (size_t i = 0; i < m->n_metadata; i++) {
        const Prometheus__MetricMetadata *md = m->metadata[i];
        if (!names_utf8_valid(bd_str(&md->metric_family_name), md->metric_family_name.len) ||
            !names_utf8_valid(bd_str(&md->help), md->help.len) ||
            !names_utf8_valid(bd_str(&md->unit), md->unit.len)) {
            fail(d, -EPROTO, 0, 0, "metadata %zu: invalid UTF-8", i + 1);
            goto fail;
        }
        /* The sink gets these as NUL-terminated strings only. */
        if (memchr(bd_str(&md->metric_family_name), 0, md->metric_family_name.len) ||
            memchr(bd_str(&md->help), 0, md->help.len) ||
            memchr(bd_str(&md->unit), 0, md->unit.len)) {
            fail(d, -EPROTO, 0, 0, "metadata %zu: contains a NUL byte", i + 1);
            goto fail;
        }
    }
    r->n_meta = m->n_metadata;
    return r;

fail:
    free(raw);
    free(d->keys);
    d->keys = NULL;
    rw_request_free(r);
    return NULL;
}

struct rw_request *rw_decode(const uint8_t *body, size_t len, const struct rw_limits *lim,
                             int *code, struct perr *err) {
    struct decoder d = {.err = err};
    if (lim) d.lim = *lim;
    if (!d.lim.max_decoded_bytes) d.lim.max_decoded_bytes = RW_DEFAULT_MAX_DECODED_BYTES;
    if (!d.lim.max_labels) d.lim.max_labels = RW_DEFAULT_MAX_LABELS;
    if (!d.lim.max_name_len) d.lim.max_name_len = RW_DEFAULT_MAX_NAME_LEN;
    if (!d.lim.max_value_len) d.lim.max_value_len = RW_DEFAULT_MAX_VALUE_LEN;
    if (!d.lim.max_series) d.lim.max_series = RW_DEFAULT_MAX_SERIES;
    if (!d.lim.max_samples) d.lim.max_samples = RW_DEFAULT_MAX_SAMPLES;
    if (err) *err = (struct perr){0};
    if (!body && len) {
        fail(&d, -EINVAL, 0, 0, "no body");
        if (code) *code = d.code;
        return NULL;
    }
    static const uint8_t empty = 0;
    struct rw_request *r = decode(&d, body ? body : &empty, len);
    if (code) *code = r ? 0 : d.code;
    return r;
}

int rw_request_foreach(const struct rw_request *r, const struct rw_sink *sink) {
    if (!r || !sink) return 0;
    int rc;
    for (size_t i = 0; i < r->n_series; i++) {
        const struct rw_series *s = &r->series[i];
        if (sink->series && (rc = sink->series(sink->arg, s->labels, s->n_labels)) != 0) return rc;
        if (sink->sample)
            for (size_t k = 0; k < s->ts->n_samples; k++)
                if ((rc = sink->sample(sink->arg, s->ts->samples[k]->timestamp,
                                       s->ts->samples[k]->value)) != 0)
                    return rc;
        if (sink->histogram)
            for (size_t k = 0; k < s->ts->n_histograms; k++)
                if ((rc = sink->histogram(sink->arg, s->ts->histograms[k]->timestamp,
                                          &s->hists[k])) != 0)
                    return rc;
    }
    if (sink->metadata) {
        const Prometheus__WriteRequestLazy *m = r->msg;
        for (size_t i = 0; i < m->n_metadata; i++) {
            const Prometheus__MetricMetadata *md = m->metadata[i];
            enum rw_metric_type t = (unsigned)md->type <= RW_TYPE_STATESET
                                        ? (enum rw_metric_type)md->type
                                        : RW_TYPE_UNKNOWN;
            if ((rc = sink->metadata(sink->arg, bd_str(&md->metric_family_name), t,
                                     bd_str(&md->help), bd_str(&md->unit))) != 0)
                return rc;
        }
    }
    return 0;
}

size_t rw_request_series(const struct rw_request *r) {
    return r ? r->n_series : 0;
}

size_t rw_request_samples(const struct rw_request *r) {
    return r ? r->n_samples : 0;
}

size_t rw_request_histograms(const struct rw_request *r) {
    return r ? r->n_hists : 0;
}

size_t rw_request_metadata(const struct rw_request *r) {
    return r ? r->n_meta : 0;
}

int rw_request_key(const struct rw_request *r, size_t i, struct rw_key *key, uint64_t *tag) {
    if (!r || !r->keys || i >= r->n_series || !r->keys[i].len) return -ENOENT;
    *key = r->keys[i];
    if (tag) *tag = r->series[i].tag;
    return 0;
}

int rw_request_remember(const struct rw_request *r, size_t i, struct rwcache *c, uint64_t tag) {
    if (!r || !r->keys || i >= r->n_series || !r->keys[i].len) return -ENOENT;
    const struct rw_series *s = &r->series[i];
    return rwcache_put(c, &r->keys[i], s->labels, s->n_labels, tag);
}

void rw_request_free(struct rw_request *r) {
    if (!r) return;
    free(r->keys);
    free(r->raw);
    /* Everything protobuf-c and the validator allocated lives in the arena. */
    arena_fini(&r->arena);
    free(r);
}
