# SPDX-License-Identifier: Apache-2.0
"""promlet's HTTP query API against a real Prometheus 2.42 fed the same samples by remote
write: one request per TAP line, sent to both, compared by HTTP status, Content-Type, JSON
key order and types, and values (or shape only where a value legitimately differs, as in
buildinfo). Endpoints promlet leaves out on purpose must answer a plain 404."""
import datetime
import gzip
import json
import os
import shutil
import sys
import time
import urllib.parse
import zlib

from plib import Promlet, done, http, ok, skip_all, start_prometheus, tmpdir
import query_data as qd
from query_compat_test import compare as compare_values

FORM = {"Content-Type": "application/x-www-form-urlencoded"}

# Rules that Grafana's data source reads back through /api/v1/rules (recording rule
# mappings) and a firing alert for /api/v1/alerts; the others select nothing.
RULES = """groups:
- name: api_diff
  interval: 1s
  rules:
  - alert: AlwaysFiring
    expr: vector(1)
    labels:
      severity: page
    annotations:
      summary: "value {{ $value }}"
  - alert: NeverFires
    expr: absent_metric_xyz > 1
    for: 5m
  - record: absent:doubled
    expr: absent_metric_xyz * 2
    labels:
      src: api_diff
"""
VOLATILE = ("lastEvaluation", "evaluationTime", "activeAt")


def masked(body):
    """The rules/alerts JSON with evaluation times blanked (they differ by nature)."""
    def walk(v):
        if isinstance(v, dict):
            return {k: ("<t>" if k in VOLATILE else walk(x)) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v
    return json.dumps(walk(json.loads(body, object_pairs_hook=dict))).encode()


def evaluated(body):
    """Every rule has been evaluated and the alert fires."""
    try:
        groups = json.loads(body)["data"]["groups"]
    except (ValueError, KeyError):
        return False
    rules = [r for g in groups for r in g["rules"]]
    return bool(rules) and all(not r["lastEvaluation"].startswith("0001") for r in rules) and \
        any(r.get("state") == "firing" for r in rules)


def pairs(body):
    """JSON with object key order kept: objects become lists of (key, value)."""
    return json.loads(body, object_pairs_hook=lambda kv: ("obj", kv))


def kind(v):
    if isinstance(v, tuple) and v and v[0] == "obj":
        return "object"
    return {str: "string", bool: "bool", int: "number", float: "number", list: "array",
            type(None): "null"}[type(v)]


def shape_diff(p, q, path="$", values=True):
    """None when p and q (from pairs()) have the same keys in the same order and the same
    types throughout, and, when values is set, the same scalars; else where they part."""
    kp, kq = kind(p), kind(q)
    if kp != kq:
        return f"{path}: {kp} vs {kq}"
    if kp == "object":
        keys_p, keys_q = [k for k, _ in p[1]], [k for k, _ in q[1]]
        if keys_p != keys_q:
            return f"{path}: keys {keys_p} vs {keys_q}"
        for (k, a), (_, b) in zip(p[1], q[1]):
            d = shape_diff(a, b, f"{path}.{k}", values)
            if d:
                return d
        return None
    if kp == "array":
        if values and len(p) != len(q):
            return f"{path}: {len(p)} vs {len(q)} elements"
        if not values and (bool(p) != bool(q)):
            return f"{path}: {len(p)} vs {len(q)} elements"
        for i, (a, b) in enumerate(zip(p, q)):
            d = shape_diff(a, b, f"{path}[{i}]", values)
            if d:
                return d
        return None
    if values and p != q:
        return f"{path}: {p!r} vs {q!r}"
    return None


def sorted_labels(ms):
    keys = [sorted(m.items()) for m in ms]
    return keys == sorted(keys)


def ctype(h):
    for k, v in h.items():
        if k.lower() == "content-type":
            return v
    return None


COMPARED_HEADERS = ("content-encoding", "vary", "access-control-allow-origin",
                    "access-control-allow-methods", "access-control-allow-headers",
                    "access-control-expose-headers")


def diff(rp, rq, mode):
    """None if promlet's (status, headers, body) rp answers like Prometheus's rq."""
    (sp, hp, bp), (sq, hq, bq) = rp, rq
    if sp != sq:
        return f"HTTP {sp} vs {sq}"
    lp = {k.lower(): v for k, v in hp.items()}
    lq = {k.lower(): v for k, v in hq.items()}
    for h in COMPARED_HEADERS:
        if lp.get(h) != lq.get(h):
            return f"header {h}: {lp.get(h)!r} vs {lq.get(h)!r}"
    if ctype(hp) != ctype(hq):
        return f"Content-Type {ctype(hp)!r} vs {ctype(hq)!r}"
    if not ctype(hq) or not ctype(hq).startswith("application/json"):
        return None if mode == "status" or bp == bq else f"body {bp[:200]!r} vs {bq[:200]!r}"
    try:
        jp, jq = pairs(bp), pairs(bq)
    except ValueError as e:
        return f"not JSON: {e}"
    if mode == "status":
        return None
    if mode == "bytes":
        return None if bp == bq else "bodies differ byte for byte"
    if mode == "masked":
        return shape_diff(jp, jq, values=False) or shape_diff(pairs(masked(bp)),
                                                              pairs(masked(bq)))
    if mode == "exact" or mode == "error":
        return shape_diff(jp, jq)
    if mode == "errtype":
        # The message comes from the PromQL parser or evaluator: compared apart.
        strip = lambda j: ("obj", [(k, v) for k, v in j[1] if k != "error"])
        return shape_diff(strip(jp), strip(jq)) or shape_diff(jp, jq, values=False)
    if mode == "shape":
        return shape_diff(jp, jq, values=False)
    if mode == "query":
        # Envelope and result shape by key order and type, values series by series.
        env_p = ("obj", [(k, v) for k, v in jp[1] if k != "data"])
        env_q = ("obj", [(k, v) for k, v in jq[1] if k != "data"])
        d = (shape_diff(env_p, env_q) or shape_diff(jp, jq, values=False)
             or compare_values(bp, bq))
        # Matrices come sorted by labels; promlet's vectors must come in the same order too
        # where Prometheus's is not a hash map's (a plain selector).
        rp_, rq_ = json.loads(bp), json.loads(bq)
        if d is None and rp_["data"]["resultType"] in ("matrix", "vector"):
            op = [r["metric"] for r in rp_["data"]["result"]]
            oq = [r["metric"] for r in rq_["data"]["result"]]
            if op != oq and (rq_["data"]["resultType"] == "matrix" or sorted_labels(oq)):
                d = f"series order differs: {op[:3]} vs {oq[:3]}"
        return d
    raise ValueError(mode)


def inflate(body, enc):
    if not body:
        return body
    if enc == "gzip":
        return gzip.decompress(body)
    if enc == "deflate":
        return zlib.decompress(body)
    return body


def rfc3339(t, offset_min=0, frac=None):
    tz = datetime.timezone(datetime.timedelta(minutes=offset_min))
    d = datetime.datetime.fromtimestamp(int(t), tz)
    s = d.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        s += "." + frac
    return s + ("Z" if offset_min == 0 else d.strftime("%z")[:3] + ":" + d.strftime("%z")[3:])


def main():
    if not shutil.which("prometheus"):
        skip_all("prometheus not installed")
    shared = os.environ["SHARED"]
    rules_path = os.path.join(tmpdir(), "rules.yml")
    with open(rules_path, "w") as f:
        f.write(RULES)
    prom, _ = start_prometheus(f"global: {{}}\nrule_files: [{rules_path}]\n",
                               ["--query.max-samples=50000"])
    pl = Promlet(f"query:\n  max_samples: 50000\nrule_files: [{rules_path}]\n",
                 ["--promql.compat=v2"])
    if not ok(pl.addr is not None, "promlet starts", pl.logtext()):
        done()

    # Prometheus writes ALERTS and ALERTS_FOR_STATE from its second evaluation on (the
    # first one precedes restoring the for-state); wait until both stores hold them.
    def alerts_written(base):
        qs = urllib.parse.urlencode({"query": "count(ALERTS) + count(ALERTS_FOR_STATE)"})
        st, _, b = http("GET", base + "/api/v1/query?" + qs)
        return st == 200 and b'"2"' in b

    deadline = time.time() + 20
    while time.time() < deadline and not (
            evaluated(http("GET", pl.url("/api/v1/rules"))[2])
            and evaluated(http("GET", prom + "/api/v1/rules")[2])
            and alerts_written(pl.url("")) and alerts_written(prom)):
        time.sleep(0.2)
    ok(time.time() < deadline, "both evaluated the rules, the alert fires, ALERTS written")

    end = (int(time.time()) // 5 * 5 - 10) * 1000
    codes = set()
    for chunk in qd.split_by_time(qd.build(shared, end, minutes=5), 60000):
        body = qd.encode_write_request(chunk)
        codes.add(http("POST", pl.url("/api/v1/write"), body, qd.RW_HEADERS)[0])
        codes.add(http("POST", f"{prom}/api/v1/write", body, qd.RW_HEADERS)[0] + 1000)
    # Label values JSON must escape as Go does: HTML characters, U+2028, control bytes.
    odd = [({"__name__": "odd_chars", "v": "<a&b> \"q\" \\ \u00e9 \u2028\u2029 \x01\x7f\t"},
            [(end - 1000, 1.0), (end, 2.0)], []),
           ({"__name__": "odd_chars", "v": "\U0001F600 \ufffd"}, [(end, 3.0)], [])]
    body = qd.encode_write_request(odd)
    codes.add(http("POST", pl.url("/api/v1/write"), body, qd.RW_HEADERS)[0])
    codes.add(http("POST", f"{prom}/api/v1/write", body, qd.RW_HEADERS)[0] + 1000)
    if not ok(codes == {204, 1204}, "both accept the data set by remote write", codes):
        done()

    T = end // 1000
    M = "busy_worker_threads"
    K = "k6_http_reqs_total"
    cases = [
        # ---- instant queries: time spellings ----
        ("query, time as int", "GET", "/api/v1/query", {"query": M, "time": T}, None, "query"),
        ("query, time as float", "GET", "/api/v1/query", {"query": M, "time": f"{T - 7}.123"},
         None, "query"),
        ("query, time as float with exponent", "GET", "/api/v1/query",
         {"query": "time()", "time": f"{T / 1e9!r}e9"}, None, "query"),
        ("query, time RFC3339 Z", "GET", "/api/v1/query", {"query": "time()", "time": rfc3339(T)},
         None, "query"),
        ("query, time RFC3339 with fraction", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T, frac="25")}, None, "query"),
        ("query, time RFC3339 with nanoseconds", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T, frac="123456789")}, None, "query"),
        ("query, time RFC3339 with 12 fraction digits", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T, frac="123456789999")}, None, "error"),
        ("query, time RFC3339 with a comma", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T, frac="5").replace(".", ",")}, None, "query"),
        ("query, time RFC3339 at 24:00", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:11] + "24:00:00Z"}, None, "error"),
        ("query, time RFC3339 leap second", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:17] + "60Z"}, None, "error"),
        ("query, time RFC3339 zone +24:00", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:19] + "+24:00"}, None, "query"),
        ("query, time RFC3339 zone -24:59", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:19] + "-24:59"}, None, "query"),
        ("query, time RFC3339 zone +25:00", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:19] + "+25:00"}, None, "query"),
        ("query, time RFC3339 zone +01:60", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:19] + "+01:60"}, None, "query"),
        ("query, time RFC3339 zone -99:99", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:19] + "-99:99"}, None, "query"),
        ("query, time RFC3339 zone +0100", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:19] + "+0100"}, None, "error"),
        ("query, time RFC3339 year 0000", "GET", "/api/v1/query",
         {"query": "time()", "time": "0000-01-01T00:00:00Z"}, None, "query"),
        ("query, time RFC3339 +02:00", "GET", "/api/v1/query",
         {"query": M, "time": rfc3339(T, 120)}, None, "query"),
        ("query, time RFC3339 -05:30 with fraction", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T, -330, "5")}, None, "query"),
        ("query, time RFC3339 lowercase t and z", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T).replace("T", "t").replace("Z", "z")}, None,
         "error"),
        ("query, time RFC3339 without zone", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:-1]}, None, "error"),
        ("query, time as date only", "GET", "/api/v1/query",
         {"query": "time()", "time": rfc3339(T)[:10]}, None, "error"),
        ("query, time garbage", "GET", "/api/v1/query", {"query": "1", "time": "yesterday"},
         None, "error"),
        ("query, negative time", "GET", "/api/v1/query", {"query": "time()", "time": "-1.5"},
         None, "query"),
        ("query, time 1e20 (out of range)", "GET", "/api/v1/query",
         {"query": "vector(1)", "time": "1e20"}, None, "exact"),
        ("query, time 1e400 (not a float64)", "GET", "/api/v1/query",
         {"query": "1", "time": "1e400"}, None, "error"),
        ("query, time NaN", "GET", "/api/v1/query", {"query": "1", "time": "NaN"}, None,
         "exact"),
        ("query, time +Inf", "GET", "/api/v1/query", {"query": "time()", "time": "+Inf"}, None,
         "exact"),
        ("query, time as a hex float", "GET", "/api/v1/query",
         {"query": "time()", "time": "0x1p30"}, None, "exact"),
        ("query, time as hex without exponent", "GET", "/api/v1/query",
         {"query": "time()", "time": "0x10"}, None, "error"),
        ("query, time 1e-400 underflows to 0", "GET", "/api/v1/query",
         {"query": "time()", "time": "1e-400"}, None, "exact"),
        ("query, time 9e15 (past maxTime)", "GET", "/api/v1/query",
         {"query": "time()", "time": "9e15"}, None, "status"),
        ("query, time with a space", "GET", "/api/v1/query", {"query": "1", "time": f" {T}"},
         None, "error"),
        ("query, empty time is now", "GET", "/api/v1/query", {"query": "vector(1)", "time": ""},
         None, "shape"),
        ("query, no time is now", "GET", "/api/v1/query", {"query": "vector(1)"}, None, "shape"),
        # ---- instant queries: parameters and methods ----
        ("query, no query parameter", "GET", "/api/v1/query", {"time": T}, None, "errtype"),
        ("query, empty query", "GET", "/api/v1/query", {"query": "", "time": T}, None,
         "errtype"),
        ("query, duplicate query takes the first", "GET", "/api/v1/query",
         [("query", "1"), ("query", "2"), ("time", T)], None, "query"),
        ("query, duplicate time takes the first", "GET", "/api/v1/query",
         [("query", "time()"), ("time", T), ("time", T - 60)], None, "query"),
        ("query, POST form", "POST", "/api/v1/query", None, {"query": M, "time": T}, "query"),
        ("query, POST with the parameters in the URL", "POST", "/api/v1/query",
         {"query": M, "time": T}, None, "query"),
        ("query, POST form wins over the URL", "POST", "/api/v1/query",
         {"query": "1", "time": T}, {"query": "2"}, "query"),
        ("query, POST form and URL merged", "POST", "/api/v1/query", {"time": T - 30},
         {"query": "time()"}, "query"),
        ("query, scalar answer", "GET", "/api/v1/query", {"query": "1+1", "time": T}, None,
         "exact"),
        ("query, scalar at a fractional time", "GET", "/api/v1/query",
         {"query": "scalar(vector(0.1))", "time": f"{T}.5"}, None, "exact"),
        ("query, string answer", "GET", "/api/v1/query", {"query": '"hello"', "time": T}, None,
         "exact"),
        ("query, matrix answer", "GET", "/api/v1/query", {"query": M + "[30s]", "time": T},
         None, "query"),
        ("query, empty vector", "GET", "/api/v1/query", {"query": "nothing_here", "time": T},
         None, "exact"),
        ("query, timeout 5s", "GET", "/api/v1/query", {"query": M, "time": T, "timeout": "5s"},
         None, "query"),
        ("query, timeout 2.5", "GET", "/api/v1/query", {"query": M, "time": T, "timeout": "2.5"},
         None, "query"),
        ("query, timeout NaN", "GET", "/api/v1/query",
         {"query": "1", "time": T, "timeout": "NaN"}, None, "errtype"),
        ("query, timeout garbage", "GET", "/api/v1/query",
         {"query": "1", "time": T, "timeout": "soon"}, None, "error"),
        ("query, timeout 1e300 overflows", "GET", "/api/v1/query",
         {"query": "1", "time": T, "timeout": "1e300"}, None, "error"),
        ("query, parse error", "GET", "/api/v1/query", {"query": "sum(", "time": T}, None,
         "errtype"),
        ("query, 422 many-to-many matching", "GET", "/api/v1/query",
         {"query": "node_cpu_seconds_total + on(cpu) node_cpu_seconds_total", "time": T}, None,
         "errtype"),
        ("query, PUT is not allowed", "PUT", "/api/v1/query", {"query": "1"}, None, "bytes"),
        ("query, DELETE is not allowed", "DELETE", "/api/v1/query", {"query": "1"}, None,
         "status"),
        ("query, vector at a ms time", "GET", "/api/v1/query",
         {"query": "vector(1)", "time": f"{T}.001"}, None, "bytes"),
        ("query, vector at a negative time", "GET", "/api/v1/query",
         {"query": "vector(1)", "time": "-1.5"}, None, "bytes"),
        ("query, scalar at 0.001", "GET", "/api/v1/query", {"query": "1", "time": "0.001"},
         None, "bytes"),
        ("query, scalar at a negative ms time", "GET", "/api/v1/query",
         {"query": "2", "time": "-0.25"}, None, "bytes"),
        ("query, scalar NaN", "GET", "/api/v1/query", {"query": "NaN", "time": T}, None,
         "bytes"),
        ("query, scalar +Inf", "GET", "/api/v1/query", {"query": "1/0", "time": T}, None,
         "bytes"),
        ("query, scalar -Inf", "GET", "/api/v1/query", {"query": "-1/0", "time": T}, None,
         "bytes"),
        ("query, scalar 1e-7", "GET", "/api/v1/query", {"query": "1e-7", "time": T}, None,
         "bytes"),
        ("query, scalar 1e21", "GET", "/api/v1/query", {"query": "1e21", "time": T}, None,
         "bytes"),
        ("query, scalar 0.1+0.2", "GET", "/api/v1/query", {"query": "0.1+0.2", "time": T},
         None, "bytes"),
        ("query, vector -0", "GET", "/api/v1/query", {"query": "vector(-0)", "time": T},
         None, "bytes"),
        ("query, vector 1e-7 and 1e21", "GET", "/api/v1/query",
         {"query": "vector(1e-7) or label_replace(vector(1e21), 'a', 'b', '', '')", "time": T},
         None, "bytes"),
        ("query, selector in label order", "GET", "/api/v1/query",
         {"query": "node_cpu_seconds_total", "time": T}, None, "query"),
        ("query, operator over a selector in label order", "GET", "/api/v1/query",
         {"query": "node_cpu_seconds_total{mode!='idle'} * 2", "time": T}, None, "query"),
        ("query, sort_desc keeps its order", "GET", "/api/v1/query",
         {"query": "sort_desc(node_cpu_seconds_total)", "time": T}, None, "bytes"),
        ("query, sort keeps its order", "GET", "/api/v1/query",
         {"query": "(sort(node_cpu_seconds_total{cpu='1'}))", "time": T}, None, "bytes"),
        ("query, no warnings with compat v2", "GET", "/api/v1/query",
         {"query": "rate(busy_worker_threads[1m])", "time": T}, None, "query"),
        ("query, form body with a charset", "POST", "/api/v1/query", None,
         {"query": M, "time": T, "_ct": "charset"}, "query"),
        ("query, timeout 0", "GET", "/api/v1/query", {"query": M, "time": T, "timeout": "0"},
         None, "errtype"),
        ("query, timeout -1", "GET", "/api/v1/query", {"query": M, "time": T, "timeout": "-1"},
         None, "errtype"),
        ("query, timeout -1s", "GET", "/api/v1/query",
         {"query": M, "time": T, "timeout": "-1s"}, None, "error"),
        ("query, trailing slash", "GET", "/api/v1/query/", {"query": "1", "time": T}, None,
         "status"),
        ("query, odd characters in label values", "GET", "/api/v1/query",
         {"query": "sort(odd_chars)", "time": T}, None, "bytes"),
        ("query, odd characters in a string result", "GET", "/api/v1/query",
         {"query": '"<&> \\u2028 \\x01 \\u00e9"', "time": T}, None, "bytes"),
        ("query, odd characters in a matrix", "GET", "/api/v1/query",
         {"query": "odd_chars[1m]", "time": T}, None, "query"),
        # ---- range queries ----
        ("range, matrix bytes", "GET", "/api/v1/query_range",
         {"query": "vector(0.1)", "start": f"{T - 2}.5", "end": T, "step": "0.5"}, None,
         "bytes"),
        ("range, NaN step", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "NaN"}, None, "error"),
        ("range, step 1d", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T - 86400 * 3, "end": T, "step": "1d"}, None, "bytes"),
        ("range, step 1w", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T - 86400 * 21, "end": T, "step": "1w"}, None, "bytes"),
        ("range, step 01m", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T - 300, "end": T, "step": "01m"}, None, "bytes"),
        ("range, step 1e1", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T - 60, "end": T, "step": "1e1"}, None, "bytes"),
        ("range, step Inf", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "Inf"}, None, "error"),
        ("range, step 1m1m", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "1m1m"}, None, "error"),
        ("range, step 1_0", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "1_0"}, None, "error"),
        ("range, step 0.0001 over an instant", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T, "end": T, "step": "0.0001"}, None, "bytes"),
        ("range, step 0.0001 over 1 ms", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T, "end": f"{T}.001", "step": "0.0001"}, None,
         "bytes"),
        ("range, step 1.5ms", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 1, "end": T, "step": "1.5ms"}, None, "error"),
        ("range, step 15S", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "15S"}, None, "error"),
        ("range, start and end beyond year 5000", "GET", "/api/v1/query_range",
         {"query": "time()", "start": "1e11", "end": "100000000060", "step": 30}, None, "bytes"),
        ("range, start NaN", "GET", "/api/v1/query_range",
         {"query": "time()", "start": "NaN", "end": "0", "step": 30}, None, "status"),

        ("range, ints, step 15", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 300, "end": T, "step": 15}, None, "query"),
        ("range, floats, step 7.5", "GET", "/api/v1/query_range",
         {"query": M, "start": f"{T - 300}.25", "end": f"{T}.75", "step": "7.5"}, None, "query"),
        ("range, step 15s", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 300, "end": T, "step": "15s"}, None, "query"),
        ("range, step 1m30s", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 300, "end": T, "step": "1m30s"}, None, "query"),
        ("range, step 500ms", "GET", "/api/v1/query_range",
         {"query": "time()", "start": T - 10, "end": T, "step": "500ms"}, None, "query"),
        ("range, RFC3339 with offsets", "GET", "/api/v1/query_range",
         {"query": M, "start": rfc3339(T - 300, 120), "end": rfc3339(T, -60, "5"),
          "step": "30s"}, None, "query"),
        ("range, start == end", "GET", "/api/v1/query_range",
         {"query": M, "start": T, "end": T, "step": "1m"}, None, "query"),
        ("range, scalar query is a matrix", "GET", "/api/v1/query_range",
         {"query": "1+1", "start": T - 60, "end": T, "step": 20}, None, "query"),
        ("range, POST form", "POST", "/api/v1/query_range", None,
         {"query": K, "start": T - 120, "end": T, "step": "10s"}, "query"),
        ("range, POST with the parameters in the URL", "POST", "/api/v1/query_range",
         {"query": K, "start": T - 120, "end": T, "step": "10s"}, None, "query"),
        ("range, zero step", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "0"}, None, "error"),
        ("range, negative step", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "-5"}, None, "error"),
        ("range, step 0s", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "0s"}, None, "error"),
        ("range, step garbage", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": "often"}, None, "error"),
        ("range, no step", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T}, None, "error"),
        ("range, no start", "GET", "/api/v1/query_range",
         {"query": M, "end": T, "step": 5}, None, "error"),
        ("range, no end", "GET", "/api/v1/query_range",
         {"query": M, "start": T, "step": 5}, None, "error"),
        ("range, garbage end", "GET", "/api/v1/query_range",
         {"query": M, "start": T, "end": "later", "step": 5}, None, "error"),
        ("range, end before start", "GET", "/api/v1/query_range",
         {"query": M, "start": T, "end": T - 1, "step": 5}, None, "error"),
        ("range, end before start and bad step", "GET", "/api/v1/query_range",
         {"query": M, "start": T, "end": T - 1, "step": "x"}, None, "error"),
        ("range, 11,001 points", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 11001, "end": T, "step": 1}, None, "error"),
        ("range, 11,000 points is allowed", "GET", "/api/v1/query_range",
         {"query": "vector(1)", "start": T - 11000, "end": T, "step": 1}, None, "query"),
        ("range, 11,001 points by a duration step", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 110010, "end": T, "step": "10s"}, None, "error"),
        ("range, string query", "GET", "/api/v1/query_range",
         {"query": '"x"', "start": T - 60, "end": T, "step": 5}, None, "error"),
        ("range, no query", "GET", "/api/v1/query_range",
         {"start": T - 60, "end": T, "step": 5}, None, "errtype"),
        ("range, timeout garbage", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": 5, "timeout": "x"}, None, "error"),
        ("range, timeout 30s", "GET", "/api/v1/query_range",
         {"query": M, "start": T - 60, "end": T, "step": 5, "timeout": "30s"}, None, "query"),
        ("range, PUT is not allowed", "PUT", "/api/v1/query_range", {"query": "1"}, None,
         "status"),
        # ---- series ----
        ("series, one match[]", "GET", "/api/v1/series", {"match[]": K}, None, "exact"),
        ("series, two match[] merged and sorted", "GET", "/api/v1/series",
         [("match[]", M), ("match[]", K), ("match[]", M)], None, "exact"),
        ("series, with start/end", "GET", "/api/v1/series",
         {"match[]": "{job='webserver'}", "start": T - 60, "end": T}, None, "exact"),
        ("series, RFC3339 start/end", "GET", "/api/v1/series",
         {"match[]": "{job='node',cpu='1'}", "start": rfc3339(T - 60, 60), "end": rfc3339(T)},
         None, "exact"),
        ("series, a window with no data", "GET", "/api/v1/series",
         {"match[]": K, "start": 100, "end": 200}, None, "exact"),
        ("series, POST form", "POST", "/api/v1/series", None,
         [("match[]", M), ("match[]", '{__name__=~"k6_.*"}')], "exact"),
        ("series, no match[]", "GET", "/api/v1/series", {}, None, "error"),
        ("series, no match[] but bad start", "GET", "/api/v1/series", {"start": "x"}, None,
         "error"),
        ("series, bad selector", "GET", "/api/v1/series", {"match[]": "up{"}, None, "errtype"),
        ("series, only empty matchers", "GET", "/api/v1/series", {"match[]": '{a=""}'}, None,
         "error"),
        ("series, garbage start", "GET", "/api/v1/series", {"match[]": M, "start": "x"}, None,
         "error"),
        ("series, start after end", "GET", "/api/v1/series",
         {"match[]": M, "start": T, "end": T - 60}, None, "exact"),
        ("series, a window between two samples", "GET", "/api/v1/series",
         {"match[]": M, "start": T - 8, "end": T - 6}, None, "exact"),
        ("series, odd characters", "GET", "/api/v1/series", {"match[]": "odd_chars"}, None,
         "bytes"),
        ("series, __name__ not empty", "GET", "/api/v1/series",
         {"match[]": '{__name__!="",job="node",mode="idle"}'}, None, "bytes"),
        ("series, start only", "GET", "/api/v1/series", {"match[]": M, "start": T - 30}, None,
         "exact"),
        ("series, end only, before the data", "GET", "/api/v1/series",
         {"match[]": M, "end": T - 400}, None, "exact"),
        ("series, matches nothing", "GET", "/api/v1/series", {"match[]": "nothing_here"}, None,
         "exact"),
        ("series, empty match[]", "GET", "/api/v1/series", {"match[]": ""}, None, "errtype"),
        ("series, bad regex", "GET", "/api/v1/series", {"match[]": '{job=~"("}'}, None,
         "errtype"),
        ("series, bad regex after a good matcher", "GET", "/api/v1/series",
         {"match[]": 'up{a="b", job=~"a["}'}, None, "errtype"),
        ("series, unterminated string", "GET", "/api/v1/series", {"match[]": 'x{job="a'},
         None, "error"),
        ("series, __name__ regex", "GET", "/api/v1/series",
         {"match[]": '{__name__=~"k6_.+|busy.*"}'}, None, "exact"),
        ("series, DELETE", "DELETE", "/api/v1/series", {"match[]": M}, None, "status"),
        ("series, PUT is not allowed", "PUT", "/api/v1/series", {"match[]": M}, None, "status"),
        # ---- labels ----
        ("labels", "GET", "/api/v1/labels", {}, None, "exact"),
        ("labels, one match[]", "GET", "/api/v1/labels", {"match[]": K}, None, "exact"),
        ("labels, two match[]", "GET", "/api/v1/labels", [("match[]", M), ("match[]", K)],
         None, "exact"),
        ("labels, start/end", "GET", "/api/v1/labels", {"start": T - 60, "end": T}, None,
         "exact"),
        ("labels, a window with no data", "GET", "/api/v1/labels", {"start": 100, "end": 200},
         None, "exact"),
        ("labels, a window overlapping the data's start", "GET", "/api/v1/labels",
         {"start": T - 10000, "end": T - 299}, None, "exact"),
        ("labels, a window just before the data", "GET", "/api/v1/labels",
         {"start": T - 10000, "end": T - 301}, None, "exact"),
        ("labels, a window after the data", "GET", "/api/v1/labels",
         {"start": T + 1000, "end": T + 2000}, None, "exact"),
        ("labels, match[] and a window with no data", "GET", "/api/v1/labels",
         {"match[]": K, "start": 100, "end": 200}, None, "exact"),
        ("labels, match[] matching nothing", "GET", "/api/v1/labels",
         {"match[]": "nothing_here"}, None, "exact"),
        ("labels, bad selector", "GET", "/api/v1/labels", {"match[]": "up{"}, None, "errtype"),
        ("labels, only empty matchers", "GET", "/api/v1/labels", {"match[]": '{a=~".*"}'},
         None, "error"),
        ("labels, garbage end", "GET", "/api/v1/labels", {"end": "x"}, None, "error"),
        ("labels, POST form", "POST", "/api/v1/labels", None, [("match[]", M)], "exact"),
        # ---- label values ----
        ("label values, __name__", "GET", "/api/v1/label/__name__/values", {}, None, "exact"),
        ("label values, job", "GET", "/api/v1/label/job/values", {}, None, "exact"),
        ("label values, with match[]", "GET", "/api/v1/label/status/values", {"match[]": K},
         None, "exact"),
        ("label values, two match[]", "GET", "/api/v1/label/job/values",
         [("match[]", M), ("match[]", "node_cpu_seconds_total")], None, "exact"),
        ("label values, start/end", "GET", "/api/v1/label/__name__/values",
         {"start": T - 60, "end": T}, None, "exact"),
        ("label values, a window with no data", "GET", "/api/v1/label/__name__/values",
         {"start": 100, "end": 200}, None, "exact"),
        ("label values, match[] and a window with no data", "GET",
         "/api/v1/label/job/values", {"match[]": M, "start": T + 1000, "end": T + 2000}, None,
         "exact"),
        ("label values, end before start", "GET", "/api/v1/label/job/values",
         {"start": T, "end": T - 100}, None, "exact"),
        ("label values, odd characters", "GET", "/api/v1/label/v/values", {}, None, "bytes"),
        ("label values, limit is ignored by 2.42", "GET", "/api/v1/label/job/values",
         {"limit": 1}, None, "bytes"),
        ("labels, limit is ignored by 2.42", "GET", "/api/v1/labels", {"limit": 1}, None,
         "bytes"),
        ("label values, a label with no values", "GET", "/api/v1/label/nonexistent/values", {},
         None, "exact"),
        ("label values, none with match[]", "GET", "/api/v1/label/nonexistent/values",
         {"match[]": K}, None, "exact"),
        ("label values, invalid label name", "GET", "/api/v1/label/1x/values", {}, None,
         "error"),
        ("label values, invalid name with a dash", "GET", "/api/v1/label/a-b/values", {}, None,
         "error"),
        ("label values, bad selector", "GET", "/api/v1/label/job/values", {"match[]": "{"},
         None, "errtype"),
        ("label values, garbage start", "GET", "/api/v1/label/job/values", {"start": "x"},
         None, "error"),
        ("label values, a non-ASCII label name", "GET", "/api/v1/label/%E2%82%AC/values", {},
         None, "error"),
        ("label values, empty label name", "GET", "/api/v1/label//values", {}, None, "status"),
        ("label values, POST is not allowed", "POST", "/api/v1/label/job/values", None, {},
         "status"),
        ("label, no /values suffix", "GET", "/api/v1/label/job", {}, None, "status"),
        # ---- metadata (Prometheus 2.42 keeps none from remote write: shapes only) ----
        ("metadata", "GET", "/api/v1/metadata", {"limit": 0}, None, "exact"),
        ("metadata, limit garbage", "GET", "/api/v1/metadata", {"limit": "x"}, None, "error"),
        ("metadata, limit with a tab", "GET", "/api/v1/metadata", {"limit": "\t1"}, None,
         "error"),
        ("metadata, limit +0", "GET", "/api/v1/metadata", {"limit": "+0"}, None, "exact"),
        ("metadata, limit 1.0", "GET", "/api/v1/metadata", {"limit": "1.0"}, None, "error"),
        ("metadata, unknown metric", "GET", "/api/v1/metadata", {"metric": "nothing_here"},
         None, "exact"),
        # ---- what Grafana calls besides ----
        ("buildinfo", "GET", "/api/v1/status/buildinfo", {}, None, "shape"),
        ("query_exemplars", "GET", "/api/v1/query_exemplars",
         {"query": M, "start": T - 60, "end": T}, None, "exact"),
        ("query_exemplars, no time range", "GET", "/api/v1/query_exemplars", {"query": K}, None,
         "exact"),
        ("query_exemplars, POST form", "POST", "/api/v1/query_exemplars", None,
         {"query": "rate(%s[1m])" % K, "start": T - 60, "end": T}, "exact"),
        ("query_exemplars, no selector", "GET", "/api/v1/query_exemplars", {"query": "1+1"},
         None, "status"),
        ("query_exemplars, parse error", "GET", "/api/v1/query_exemplars", {"query": "sum("},
         None, "errtype"),
        ("query_exemplars, end before start", "GET", "/api/v1/query_exemplars",
         {"query": M, "start": T, "end": T - 1}, None, "error"),
        ("query_exemplars, garbage start", "GET", "/api/v1/query_exemplars",
         {"query": M, "start": "x"}, None, "error"),
        ("rules", "GET", "/api/v1/rules", {}, None, "masked"),
        ("rules, type=alert", "GET", "/api/v1/rules", {"type": "alert"}, None, "masked"),
        ("rules, type=record", "GET", "/api/v1/rules", {"type": "record"}, None, "masked"),
        ("rules, type=ALERT", "GET", "/api/v1/rules", {"type": "ALERT"}, None, "masked"),
        ("rules, type=Bad\"x", "GET", "/api/v1/rules", {"type": 'Bad"x'}, None, "error"),
        ("rules, type=bad", "GET", "/api/v1/rules", {"type": "bad"}, None, "error"),
        ("alerts", "GET", "/api/v1/alerts", {}, None, "masked"),
        # ---- unknown endpoints and methods ----
        ("unknown endpoint", "GET", "/api/v1/nothing", {}, None, "bytes"),
        ("unknown endpoint under /api/v1/status", "GET", "/api/v1/status/nothing", {}, None,
         "status"),
    ]
    # Prometheus endpoints promlet leaves out: Grafana's data source calls none of them.
    absent = ["/api/v1/status/config", "/api/v1/status/flags", "/api/v1/status/runtimeinfo",
              "/api/v1/status/tsdb", "/api/v1/status/walreplay", "/api/v1/targets",
              "/api/v1/targets/metadata", "/api/v1/scrape_pools", "/api/v1/alertmanagers",
              "/api/v1/format_query?query=1"]

    # Long queries, as a dashboard's regex of many instances makes them (~13 KB; promlet's
    # PCRE2 refuses alternations compiling past 64 KB, and its URLs end at 32 KB).
    alts = "|".join(f"metric_{i:05d}" for i in range(1000)) + "|" + M
    long_q = '{__name__=~"%s"}' % alts
    cases += [
        ("long query by POST form", "POST", "/api/v1/query", None, {"query": long_q, "time": T},
         "query"),
        ("long query in the URL", "GET", "/api/v1/query", {"query": long_q, "time": T}, None,
         "query"),
        ("long match[] by POST form", "POST", "/api/v1/series", None, {"match[]": long_q},
         "exact"),
        ("metadata, POST is not allowed", "POST", "/api/v1/metadata", None, {}, "bytes"),
        ("buildinfo, POST is not allowed", "POST", "/api/v1/status/buildinfo", None, {},
         "bytes"),
    ]
    origin = {"Origin": "http://grafana.example"}
    cases += [
        ("OPTIONS on the query API", "OPTIONS", "/api/v1/query", {}, None, "bytes", origin),
        ("OPTIONS without Origin", "OPTIONS", "/api/v1/labels", {}, None, "bytes", {}),
        ("OPTIONS on a path with no handler", "OPTIONS", "/api/v1/nothing", {}, None, "bytes",
         origin),
        ("OPTIONS on label values", "OPTIONS", "/api/v1/label/job/values", {}, None, "bytes",
         origin),
        ("query with an Origin", "GET", "/api/v1/query", {"query": "1", "time": T}, None,
         "bytes", origin),
        ("bad query with an Origin", "GET", "/api/v1/query", {"query": "1", "time": "x"},
         None, "bytes", origin),
        ("labels with an Origin", "GET", "/api/v1/labels", {}, None, "exact", origin),
        ("label values with an Origin", "GET", "/api/v1/label/job/values", {}, None, "exact",
         origin),
        ("series with an Origin", "GET", "/api/v1/series", {"match[]": M}, None, "exact",
         origin),
        ("buildinfo with an Origin", "GET", "/api/v1/status/buildinfo", {}, None, "shape",
         origin),
        ("metadata with an Origin", "GET", "/api/v1/metadata", {"limit": 0}, None, "exact",
         origin),
        ("rules with an Origin", "GET", "/api/v1/rules", {}, None, "masked", origin),
        ("alerts with an Origin", "GET", "/api/v1/alerts", {}, None, "masked", origin),
        ("exemplars with an Origin", "GET", "/api/v1/query_exemplars", {"query": M}, None,
         "exact", origin),
        ("unknown endpoint with an Origin", "GET", "/api/v1/nothing", {}, None, "bytes",
         origin),
        ("PUT with an Origin", "PUT", "/api/v1/query", {}, None, "bytes", origin),
        ("HEAD on the query API", "HEAD", "/api/v1/query", {"query": "1"}, None, "bytes", {}),
        ("HEAD on labels", "HEAD", "/api/v1/labels", {}, None, "bytes", {}),
        ("HEAD on label values", "HEAD", "/api/v1/label/job/values", {}, None, "bytes", {}),
        ("HEAD on buildinfo", "HEAD", "/api/v1/status/buildinfo", {}, None, "bytes", {}),
        ("HEAD on rules", "HEAD", "/api/v1/rules", {}, None, "bytes", {}),
    ]
    for desc, method, path, qparams, form, mode, *extra in cases:
        url = path
        if qparams:
            url += "?" + urllib.parse.urlencode(qparams)
        body, hdr = None, {}
        if form is not None:
            form = dict(form) if isinstance(form, dict) else form
            hdr = FORM
            if isinstance(form, dict) and form.pop("_ct", None):
                hdr = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}
            body = urllib.parse.urlencode(form).encode()
        elif method in ("POST", "PUT"):
            body = b""
        if extra:
            hdr = {**hdr, **extra[0]}
        rp = http(method, pl.url(url), body, hdr, timeout=30)
        rq = http(method, prom + url, body, hdr, timeout=30)
        d = diff(rp, rq, mode)
        ok(d is None, f"{method} {desc}",
           None if d is None else f"{d}\npromlet    {rp[0]} {rp[2][:400]!r}\n"
           f"prometheus {rq[0]} {rq[2][:400]!r}")
        if d is None and mode == "errtype" and rp[2] != rq[2]:
            ep, eq = json.loads(rp[2]).get("error"), json.loads(rq[2]).get("error")
            print(f"#   message differs: promlet {ep!r} / prometheus {eq!r}")

    # Grafana's Go client asks for gzip: which answers come compressed, and do they inflate
    # to the same thing.
    for path in ("/api/v1/query?query=1&time=%d" % T, "/api/v1/query?query=sum(",
                 "/api/v1/labels", "/api/v1/status/buildinfo", "/api/v1/rules",
                 "/api/v1/alerts", "/api/v1/metadata?limit=0",
                 "/api/v1/query_exemplars?query=" + M, "/api/v1/query_exemplars?query=1",
                 "/api/v1/series?match[]=" + M, "/api/v1/nothing"):
        for enc in ("gzip", "deflate", "br, deflate;q=0.5, gzip", "gzip;q=1.0"):
            rp = http("GET", pl.url(path), None, {"Accept-Encoding": enc})
            rq = http("GET", prom + path, None, {"Accept-Encoding": enc})
            hp = {k.lower(): v for k, v in rp[1].items()}
            hq = {k.lower(): v for k, v in rq[1].items()}
            d = None
            if hp.get("content-encoding") != hq.get("content-encoding"):
                d = f"Content-Encoding {hp.get('content-encoding')!r} vs {hq.get('content-encoding')!r}"
            else:
                bp, bq = inflate(rp[2], hp.get("content-encoding")), inflate(rq[2], hq.get("content-encoding"))
                mode = ("shape" if "buildinfo" in path else "status" if "nothing" in path
                        else "errtype" if "sum(" in path
                        else "masked" if "rules" in path or "alerts" in path else "exact")
                d = diff((rp[0], rp[1], bp), (rq[0], rq[1], bq), mode)
            ok(d is None, f"GET {path.split('?')[0]} with Accept-Encoding: {enc}",
               f"{d}\npromlet {rp[0]} {hp}\nprometheus {rq[0]} {hq}")

    for path in absent:
        sq = http("GET", prom + path)[0]
        sp, hp, bp = http("GET", pl.url(path))
        ok(sp == 404 and sq == 200, f"GET {path.split('?')[0]}: absent from promlet (404), "
           "Prometheus has it", f"promlet {sp} {bp[:200]!r}, prometheus {sq}")
    done()


if __name__ == "__main__":
    sys.exit(main())
