/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of push_parse: grouping keys, text and protobuf bodies, and mutated bodies
 * (bit flips, truncations) that must be refused or accepted without memory errors. */
#include "push.h"

#include "push_body.h"
#include "tap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static size_t put_varint(uint8_t *o, uint64_t v) {
    size_t n = 0;
    do {
        o[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

static size_t put_len(uint8_t *o, unsigned field, const void *p, size_t len) {
    size_t n = put_varint(o, field << 3 | 2);
    n += put_varint(o + n, len);
    memcpy(o + n, p, len);
    return n + len;
}

static size_t put_double(uint8_t *o, unsigned field, double d) {
    size_t n = put_varint(o, field << 3 | 1);
    memcpy(o + n, &d, 8);
    return n + 8;
}

/* A delimited MetricFamily: histogram "h" with help, one metric {a="1"} with two buckets. */
static size_t pb_histogram(uint8_t *out) {
    uint8_t lp[32], m[256], mf[512], h[128], b[32];
    size_t nl = put_len(lp, 1, "a", 1);
    nl += put_len(lp + nl, 2, "1", 1);
    size_t nh = put_varint(h, 1 << 3);
    nh += put_varint(h + nh, 5);
    nh += put_double(h + nh, 2, 12.5);
    for (int i = 0; i < 2; i++) {
        size_t nb = put_varint(b, 1 << 3);
        nb += put_varint(b + nb, (uint64_t)(i + 2));
        nb += put_double(b + nb, 2, i ? 1.0 : 0.5);
        nh += put_len(h + nh, 3, b, nb);
    }
    size_t nm = put_len(m, 1, lp, nl);
    nm += put_len(m + nm, 7, h, nh);
    size_t n = put_len(mf, 1, "h", 1);
    n += put_len(mf + n, 2, "A histogram.", 12);
    n += put_varint(mf + n, 3 << 3);
    n += put_varint(mf + n, 4);
    n += put_len(mf + n, 4, m, nm);
    size_t o = put_varint(out, n);
    memcpy(out + o, mf, n);
    return o + n;
}

static uint64_t rnd_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rnd(void) {
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static void mutate_all(const char *what, const uint8_t *good, size_t len, bool pb) {
    uint8_t buf[4096];
    size_t accepted = 0, refused = 0, other = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, good, len);
        size_t n = len;
        switch (rnd() % 3) {
        case 0:
            buf[rnd() % n] ^= (uint8_t)(1u << (rnd() % 8));
            break;
        case 1:
            n = rnd() % n;
            break;
        default:
            buf[rnd() % n] = (uint8_t)rnd();
            buf[rnd() % n] = (uint8_t)rnd();
        }
        char why[200];
        size_t ns;
        int rc = push_parse("/j/instance/i", buf, n, pb, &ns, why, sizeof(why));
        if (rc == 0)
            accepted++;
        else if ((rc == -EPROTO || rc == -EINVAL) && why[0] && !strchr(why, '\n'))
            refused++;
        else if (other++ < 3)
            printf("# other: rc=%d why=\"%s\"\n", rc, why);
    }
    TAP_OK(other == 0 && accepted + refused == 20000,
           "%s: 20000 mutations accepted (%zu) or refused with a one-line reason (%zu)", what,
           accepted, refused);
}

int main(void) {
    char why[200];
    size_t n;
    /* grouping keys */
    CHECK_EQ_INT(push_parse("/webserver/instance/webserver:5000", (const uint8_t *)push_body,
                            strlen(push_body), false, &n, why, sizeof(why)),
                 0);
    CHECK_EQ_INT(n, 9);
    CHECK_EQ_INT(push_parse("/", (const uint8_t *)"", 0, false, NULL, why, sizeof(why)), -EINVAL);
    CHECK_EQ_STR(why, "job name is required");
    CHECK_EQ_INT(push_parse("/j/a", (const uint8_t *)"", 0, false, NULL, why, sizeof(why)),
                 -EINVAL);
    CHECK(strstr(why, "odd number of components") != NULL);
    CHECK_EQ_INT(push_parse("/j/__a/b", (const uint8_t *)"", 0, false, NULL, why, sizeof(why)),
                 -EINVAL);
    CHECK_EQ_INT(
        push_parse("/j/a@base64/foo.bar", (const uint8_t *)"", 0, false, NULL, why, sizeof(why)),
        -EINVAL);
    CHECK_EQ_INT(push_parse("@base64/dGVzdC9qb2I=/p@base64/=", (const uint8_t *)"x 1\n", 4, false,
                            &n, why, sizeof(why)),
                 0);
    CHECK_EQ_INT(push_parse("x/y", (const uint8_t *)"", 0, false, NULL, why, sizeof(why)), -EINVAL);
    /* text bodies */
    CHECK_EQ_INT(
        push_parse("/j", (const uint8_t *)"x 1 1700000000000\n", 18, false, NULL, why, sizeof(why)),
        -EINVAL);
    CHECK(strstr(why, "timestamps") != NULL);
    CHECK_EQ_INT(push_parse("/j", (const uint8_t *)"x 1", 3, false, NULL, why, sizeof(why)),
                 -EPROTO);
    const char *h = "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n";
    CHECK_EQ_INT(push_parse("/j", (const uint8_t *)h, strlen(h), false, &n, why, sizeof(why)), 0);
    CHECK_EQ_INT(n, 4); /* +Inf bucket, _sum and _count added as client_golang writes them */
    /* protobuf */
    uint8_t pb[1024];
    size_t len = pb_histogram(pb);
    CHECK_EQ_INT(push_parse("/j", pb, len, true, &n, why, sizeof(why)), 0);
    CHECK_EQ_INT(n, 5); /* two buckets, +Inf, _sum, _count */
    CHECK_EQ_INT(push_parse("/j", pb, len - 1, true, NULL, why, sizeof(why)), -EPROTO);
    /* mutations */
    mutate_all("protobuf histogram", pb, len, true);
    mutate_all("experiment body", (const uint8_t *)push_body, strlen(push_body), false);
    return tap_done();
}
