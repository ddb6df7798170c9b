# SPDX-License-Identifier: Apache-2.0
"""The experiment's metrics as one data set, and a hand-built remote-write 1.0 encoder, so
that promlet and a real Prometheus can be fed the same samples. Runs under /usr/bin/python3
(python3-snappy)."""
import csv
import math
import os
import random
import struct

import snappy

from rwlib import varint, zigzag

# The experiment's own queries, verbatim (exportmetrics.py and the dashboards).
QUERIES = [
    "sum by(testid) (k6_http_reqs_total{testid=~'threadloadtest'})",
    "system_runtime_threadpool_queue_length",
    "busy_worker_threads",
    "100 * sum(irate(node_cpu_seconds_total{mode='user'}[15s])) / "
    "scalar(count(count(node_cpu_seconds_total) by (cpu)))",
    "histogram_quantile(0.99, sum by(testid) "
    "(rate(k6_http_req_duration_seconds{testid=~'threadloadtest'}[15s])))",
    "histogram_sum(rate(k6_http_req_duration_seconds[15s])) / "
    "histogram_count(rate(k6_http_req_duration_seconds[15s]))",
    "alert_endpoint_call",
]

# 2.x and 3.x differ inside native-histogram buckets (linear vs exponential
# interpolation); these probe it beyond the experiment's own p99.
EXTRA_QUERIES = [
    "histogram_quantile(0.5, sum by(testid) (rate(k6_http_req_duration_seconds[15s])))",
    "histogram_fraction(0, 2.2, sum by(testid) (rate(k6_http_req_duration_seconds[15s])))",
    "k6_http_req_duration_seconds",
]


# ---- protobuf by hand ---------------------------------------------------------------------

def _key(field, wire):
    return varint((field << 3) | wire)


def _len(field, payload):
    return _key(field, 2) + varint(len(payload)) + payload


def _double(field, v):
    return _key(field, 1) + struct.pack("<d", v)


def _uvar(field, v):
    return _key(field, 0) + varint(v)


def _label(name, value):
    return _len(1, name.encode()) + _len(2, value.encode())


def _histogram(ts, h):
    """An integer native histogram: absolute bucket counts become deltas, as clients send."""
    out = _uvar(1, h["count"])
    out += _double(3, h["sum"])
    out += _uvar(4, zigzag(h["schema"]) & 0xFFFFFFFF)
    out += _double(5, h["zero_threshold"])
    out += _uvar(6, h["zero_count"])
    for off, length in h["spans"]:
        out += _len(11, _uvar(1, zigzag(off) & 0xFFFFFFFF) + _uvar(2, length))
    deltas = b""
    prev = 0
    for c in h["buckets"]:
        deltas += varint(zigzag(c - prev))
        prev = c
    if deltas:
        out += _len(12, deltas)
    out += _uvar(15, ts)
    return out


METRIC_TYPES = {"unknown": 0, "counter": 1, "gauge": 2, "histogram": 3, "gaugehistogram": 4,
                "summary": 5, "info": 6, "stateset": 7}


def encode_write_request(series, metadata=()):
    """series: [(labels dict, [(ts, v)], [(ts, hist)])], metadata: [(family, type name,
    help, unit)] -> snappy-compressed WriteRequest."""
    body = bytearray()
    for family, mtype, help_text, unit in metadata:
        body += _len(3, _uvar(1, METRIC_TYPES[mtype]) + _len(2, family.encode())
                     + _len(4, help_text.encode()) + _len(5, unit.encode()))
    for labels, samples, hists in series:
        ts_msg = bytearray()
        for k in sorted(labels):
            ts_msg += _len(1, _label(k, labels[k]))
        for t, v in samples:
            ts_msg += _len(2, _double(1, v) + _uvar(2, t))
        for t, h in hists:
            ts_msg += _len(4, _histogram(t, h))
        body += _len(1, bytes(ts_msg))
    return snappy.compress(bytes(body))


RW_HEADERS = {
    "Content-Type": "application/x-protobuf",
    "Content-Encoding": "snappy",
    "X-Prometheus-Remote-Write-Version": "0.1.0",
}


# ---- the data set ---------------------------------------------------------------------------

def _bucket_index(v, schema):
    """Index of the bucket (2^((i-1)/2^s), 2^(i/2^s)] holding v > 0."""
    f = 1 << schema
    i = math.ceil(math.log2(v) * f)
    # Guard against log2 rounding at exact boundaries.
    while 2 ** ((i - 1) / f) >= v:
        i -= 1
    while 2 ** (i / f) < v:
        i += 1
    return i


def _hist_snapshot(buckets, count, total, schema):
    idx = sorted(buckets)
    spans = []
    counts = []
    prev_end = None
    for i in idx:
        if prev_end is None:
            spans.append([i, 1])
        elif i == prev_end:
            spans[-1][1] += 1
        else:
            spans.append([i - prev_end, 1])
        prev_end = i + 1
        counts.append(buckets[i])
    return {"count": count, "sum": total, "schema": schema, "zero_threshold": 2.0 ** -128,
            "zero_count": 0, "spans": [tuple(s) for s in spans], "buckets": counts}


def load_traces(shared):
    runs = {}
    with open(os.path.join(shared, "seed", "traces.csv")) as f:
        for row in csv.DictReader(f):
            runs.setdefault(row["run"], []).append(row)
    return [runs[k] for k in sorted(runs)]


def build(shared, end_ms, minutes=15, seed=42):
    """The experiment's series over `minutes` ending at end_ms: pushed gauges replayed from
    traces.csv at 5 s, alert_endpoint_call from its scale events, node_cpu_seconds_total of
    4 CPUs at 1 s, k6 counters and a native histogram of request durations at 5 s (as k6's
    remote-write output flushes)."""
    rng = random.Random(seed)
    start = end_ms - minutes * 60 * 1000
    series = []

    # Pushed gauges (Pushgateway grouping labels) and the scaler's counter.
    rows = [r for run in load_traces(shared) for r in run]
    push = {"job": "webserver", "instance": "webserver:5000"}
    queue, busy, threads, calls = [], [], [], []
    n_calls = 0
    for k, t in enumerate(range(start, end_ms + 1, 5000)):
        r = rows[k % len(rows)]
        queue.append((t, float(r["queue_length"] or 0)))
        busy.append((t, float(r["busy_worker_threads"] or 0)))
        threads.append((t, float(r["threads"] or 0)))
        if r["scale_events"]:
            n_calls += 1
            calls.append((t, float(n_calls)))
    series.append(({"__name__": "system_runtime_threadpool_queue_length", **push}, queue, []))
    series.append(({"__name__": "busy_worker_threads", **push}, busy, []))
    series.append(({"__name__": "process_number_of_threads", **push}, threads, []))
    if calls:
        series.append(({"__name__": "alert_endpoint_call", "job": "alertapi",
                        "instance": "alertapi:5001"}, calls, []))

    # node_exporter CPU counters, scraped every second.
    node = {"job": "node", "instance": "worker:9100"}
    for cpu in range(4):
        for mode, share in (("user", 0.35), ("system", 0.1), ("idle", 0.5), ("iowait", 0.05)):
            v = 1000.0 * (cpu + 1) * share
            pts = []
            for t in range(start, end_ms + 1, 1000):
                v += share * (0.5 + rng.random())
                pts.append((t, round(v, 2)))
            series.append(({"__name__": "node_cpu_seconds_total", "cpu": str(cpu), "mode": mode,
                            **node}, pts, []))

    # k6: request counters by status and a native histogram of durations (schema 3).
    k6 = {"testid": "threadloadtest", "method": "GET", "scenario": "default",
          "url": "http://webserver:5000/"}
    reqs = {"200": 0.0, "0": 0.0}
    req_pts = {"200": [], "0": []}
    buckets, count, total = {}, 0, 0.0
    hist_pts = []
    for k, t in enumerate(range(start, end_ms + 1, 5000)):
        rate = 1 + (k % 36)  # a ramp like the k6 arrival-rate stages, repeated
        ok = rate * 5
        failed = max(0, rate - 20)
        reqs["200"] += ok
        reqs["0"] += failed
        req_pts["200"].append((t, reqs["200"]))
        req_pts["0"].append((t, reqs["0"]))
        for _ in range(ok + failed):
            d = 2.0 + rng.expovariate(1.0 / (0.05 + 0.02 * rate))
            buckets[_bucket_index(d, 3)] = buckets.get(_bucket_index(d, 3), 0) + 1
            count += 1
            total += d
        hist_pts.append((t, _hist_snapshot(buckets, count, total, 3)))
    for status, pts in req_pts.items():
        series.append(({"__name__": "k6_http_reqs_total", "status": status,
                        "expected_response": "true" if status == "200" else "false", **k6},
                       pts, []))
    series.append(({"__name__": "k6_http_req_duration_seconds", **k6}, [], hist_pts))
    return series


def split_by_time(series, window_ms):
    """Cuts the data set into requests of window_ms each, in time order (as a sender would)."""
    tmin = min(min([p[0] for p in s[1]] + [p[0] for p in s[2]]) for s in series)
    tmax = max(max([p[0] for p in s[1]] + [p[0] for p in s[2]]) for s in series)
    out = []
    t = tmin
    while t <= tmax:
        chunk = []
        for labels, samples, hists in series:
            a = [p for p in samples if t <= p[0] < t + window_ms]
            b = [p for p in hists if t <= p[0] < t + window_ms]
            if a or b:
                chunk.append((labels, a, b))
        out.append(chunk)
        t += window_ms
    return out
