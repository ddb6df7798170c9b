#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# make_seeds: writes the seed corpus of fuzz_rw (hand-encoded WriteRequests; see fuzz_rw.c modes).
import os
import struct
import sys

import snappy  # python3-snappy (Debian's; run with /usr/bin/python3)


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def zz(v):
    return (v << 1) ^ (v >> 63)


def key(f, wt):
    return varint(f << 3 | wt)


def ld(f, payload):
    return key(f, 2) + varint(len(payload)) + payload


def vi(f, v):
    return key(f, 0) + varint(v)


def dbl(f, v):
    return key(f, 1) + struct.pack("<d", v)


def raw_dbl(f, bits):
    return key(f, 1) + struct.pack("<Q", bits)


def label(n, v):
    return ld(1, ld(1, n.encode()) + ld(2, v.encode()))


def sample(ts, v=None, bits=None):
    body = raw_dbl(1, bits) if bits is not None else dbl(1, v)
    return ld(2, body + vi(2, ts))


def series(labels, *parts):
    return ld(1, b"".join(label(n, v) for n, v in labels) + b"".join(parts))


def span(off, length):
    return vi(1, zz(off)) + vi(2, length)


def packed_sint(f, vals):
    return ld(f, b"".join(varint(zz(v)) for v in vals))


def packed_dbl(f, vals):
    return ld(f, b"".join(struct.pack("<d", v) for v in vals))


T0 = 1700000000000
seeds = {}
seeds["single"] = series([("__name__", "up"), ("job", "node")], sample(T0, 1.0))
seeds["stale"] = series([("__name__", "up")], sample(T0, 1.0),
                        sample(T0 + 15000, bits=0x7FF0000000000002))
seeds["two_series_meta"] = (
    series([("__name__", "k6_http_reqs_total"), ("method", "GET"), ("status", "200"),
            ("testid", "threadloadtest")], sample(T0, 1), sample(T0 + 1000, 2))
    + series([("__name__", "b"), ("x", "Προμηθεύς")], sample(T0, 3))
    + ld(3, vi(1, 1) + ld(2, b"k6_http_reqs_total") + ld(4, b"Total requests") + ld(5, b"")))
int_hist = ld(4, vi(1, 17) + dbl(3, 12.5) + vi(4, zz(3)) + dbl(5, 1e-128) + vi(6, 4)
              + ld(11, span(-1, 2)) + ld(11, span(3, 2)) + packed_sint(12, [2, 1, -1, 3])
              + ld(8, span(0, 1)) + packed_sint(9, [1]) + vi(14, 2) + vi(15, T0))
seeds["int_histogram"] = series([("__name__", "k6_http_req_duration_seconds")], int_hist)
float_hist = ld(4, dbl(2, 3.5) + dbl(3, 1) + vi(4, zz(-53)) + ld(11, span(0, 3))
                + packed_dbl(13, [1.5, 0, 2]) + packed_dbl(16, [0.1, 0.5, 1]) + vi(14, 3)
                + vi(15, T0))
seeds["float_histogram_custom"] = series([("__name__", "f")], float_hist)
seeds["unsorted"] = series([("job", "a"), ("__name__", "up")], sample(T0, 1))
seeds["exemplar_unknown"] = series([("__name__", "e")], sample(T0, 1),
                                   ld(3, label("trace_id", "abc") + dbl(2, 1) + vi(3, T0)),
                                   vi(9, 5)) + key(7, 5) + b"\x01\x02\x03\x04"

out = sys.argv[1] if len(sys.argv) > 1 else "corpus"
os.makedirs(out, exist_ok=True)
for name, pb in seeds.items():
    with open(os.path.join(out, "pb_" + name), "wb") as f:
        f.write(b"\x01" + pb)  # mode 1: raw protobuf
    with open(os.path.join(out, "sn_" + name), "wb") as f:
        f.write(b"\x00" + snappy.compress(pb))  # mode 0: snappy body as sent
with open(os.path.join(out, "sn_empty"), "wb") as f:
    f.write(b"\x00\x00")
with open(os.path.join(out, "sn_bomb"), "wb") as f:
    f.write(b"\x00\x80\x80\x80\x80\x04\x00")
