# SPDX-License-Identifier: Apache-2.0
"""A small remote-write 1.0 request builder (hand-encoded protobuf, snappy block format)
shared by the rw integration test and the benchmark. Runs under Debian's /usr/bin/python3."""
import struct

import snappy

STALE_NAN = struct.unpack("<d", struct.pack("<Q", 0x7ff0000000000002))[0]


def varint(n):
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7f
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def field_len(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_double(num, v):
    return varint(num << 3 | 1) + struct.pack("<d", v)


def label(name, value):
    return field_len(1, name.encode() if isinstance(name, str) else name) + \
        field_len(2, value.encode() if isinstance(value, str) else value)


def sample(value, ts):
    return field_double(1, value) + field_varint(2, ts)


def histogram(ts, schema, count, total, zero_count, pos_spans, pos, is_float=False,
              reset_hint=0):
    """A native histogram: integer histograms send bucket deltas, float ones absolute counts."""
    b = bytearray()
    if is_float:
        b += field_double(2, float(count))
    else:
        b += field_varint(1, count)
    b += field_double(3, total)
    b += field_varint(4, zigzag(schema))
    b += field_double(5, 1e-128)
    if is_float:
        b += field_double(7, float(zero_count))
    else:
        b += field_varint(6, zero_count)
    for off, ln in pos_spans:
        b += field_len(11, field_varint(1, zigzag(off)) + field_varint(2, ln))
    if is_float:
        b += field_len(13, b"".join(struct.pack("<d", float(c)) for c in pos))
    else:
        prev, deltas = 0, bytearray()
        for c in pos:
            deltas += varint(zigzag(c - prev))
            prev = c
        b += field_len(12, bytes(deltas))
    if reset_hint:
        b += field_varint(14, reset_hint)
    b += field_varint(15, ts)
    return bytes(b)


def series(labels, samples=(), hists=(), exemplars=()):
    """labels: list of (name, value) in the order to send; samples: (value, ts)."""
    b = bytearray()
    for n, v in labels:
        b += field_len(1, label(n, v))
    for v, t in samples:
        b += field_len(2, sample(v, t))
    for lv, v, t in exemplars:
        b += field_len(3, b"".join(field_len(1, label(a, c)) for a, c in lv) +
                       field_double(2, v) + field_varint(3, t))
    for h in hists:
        b += field_len(4, h)
    return bytes(b)


def metadata(family, mtype, help_, unit=""):
    return field_varint(1, mtype) + field_len(2, family.encode()) + \
        field_len(4, help_.encode()) + field_len(5, unit.encode())


def write_request(series_list, metas=()):
    pb = b"".join(field_len(1, s) for s in series_list)
    pb += b"".join(field_len(3, m) for m in metas)
    return pb


def body(series_list, metas=()):
    return snappy.compress(write_request(series_list, metas))


HEADERS = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}
