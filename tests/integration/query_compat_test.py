# SPDX-License-Identifier: Apache-2.0
"""The experiment's queries answered by promlet (--promql.compat=v2) and by a real
Prometheus 2.42 fed the same samples by remote write, compared series by series; bad
queries compared by HTTP code and errorType; ingestion still works afterwards."""
import json
import math
import os
import shutil
import sys
import threading
import time
import urllib.parse

from plib import Promlet, done, http, ok, skip_all, start_prometheus
import query_data as qd

REL = 1e-9
MAX_SAMPLES = 20000


def close(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    return abs(a - b) <= REL * max(abs(a), abs(b))


def fval(s):
    return float(s.replace("+Inf", "inf").replace("-Inf", "-inf"))


def hist_diff(h1, h2):
    if not close(fval(h1["count"]), fval(h2["count"])):
        return f"count {h1['count']} != {h2['count']}"
    if not close(fval(h1["sum"]), fval(h2["sum"])):
        return f"sum {h1['sum']} != {h2['sum']}"
    b1, b2 = h1.get("buckets", []), h2.get("buckets", [])
    if len(b1) != len(b2):
        return f"{len(b1)} buckets != {len(b2)}"
    for x, y in zip(b1, b2):
        if x[0] != y[0] or not all(close(fval(p), fval(q)) for p, q in zip(x[1:], y[1:])):
            return f"bucket {x} != {y}"
    return None


def keyed(result, rtype):
    """metric label set -> (float points, histogram points)."""
    out = {}
    for s in result:
        key = tuple(sorted(s["metric"].items()))
        if rtype == "matrix":
            out[key] = (s.get("values", []), s.get("histograms", []))
        else:
            out[key] = ([s["value"]] if "value" in s else [], [s["histogram"]] if "histogram" in s else [])
    return out


def compare(body_p, body_q):
    """None if promlet's answer (body_p) matches Prometheus's (body_q), else a reason."""
    p, q = json.loads(body_p), json.loads(body_q)
    if p["status"] != q["status"]:
        return f"status {p['status']} != {q['status']}"
    dp, dq = p["data"], q["data"]
    if dp["resultType"] != dq["resultType"]:
        return f"resultType {dp['resultType']} != {dq['resultType']}"
    if dp["resultType"] == "string":
        return None if dp["result"] == dq["result"] else f"{dp['result']} != {dq['result']}"
    if dp["resultType"] == "scalar":
        same = dp["result"][0] == dq["result"][0] and close(fval(dp["result"][1]), fval(dq["result"][1]))
        return None if same else f"{dp['result']} != {dq['result']}"
    kp, kq = keyed(dp["result"], dp["resultType"]), keyed(dq["result"], dq["resultType"])
    if set(kp) != set(kq):
        return f"series differ: only promlet {sorted(set(kp) - set(kq))[:3]}, only prometheus {sorted(set(kq) - set(kp))[:3]}"
    for key in kp:
        (fp, hp), (fq, hq) = kp[key], kq[key]
        if [t for t, _ in fp] != [t for t, _ in fq]:
            return f"{dict(key)}: float timestamps differ ({len(fp)} vs {len(fq)} points)"
        if [t for t, _ in hp] != [t for t, _ in hq]:
            return f"{dict(key)}: histogram timestamps differ ({len(hp)} vs {len(hq)} points)"
        for (t, a), (_, b) in zip(fp, fq):
            if not close(fval(a), fval(b)):
                return f"{dict(key)} at {t}: {a} != {b}"
        for (t, a), (_, b) in zip(hp, hq):
            d = hist_diff(a, b)
            if d:
                return f"{dict(key)} at {t}: {d}"
    return None


def main():
    if not shutil.which("prometheus"):
        skip_all("prometheus not installed")
    shared = os.environ["SHARED"]
    prom, _ = start_prometheus(args=[f"--query.max-samples={MAX_SAMPLES}"])
    pl = Promlet(f"query:\n  max_samples: {MAX_SAMPLES}\n", ["--promql.compat=v2"])
    if pl.addr is not None and http("POST", pl.url("/api/v1/write"), b"",
                                     qd.RW_HEADERS)[0] == 404:
        skip_all("this build has no remote-write receiver (/api/v1/write)")
    if not ok(pl.addr is not None, "promlet starts", pl.logtext()):
        done()

    end = (int(time.time()) // 5 * 5 - 10) * 1000
    ds = qd.build(shared, end, minutes=15)
    chunks = qd.split_by_time(ds, 60000)
    codes_p, codes_q = set(), set()
    for chunk in chunks:
        body = qd.encode_write_request(chunk)
        codes_p.add(http("POST", pl.url("/api/v1/write"), body, qd.RW_HEADERS)[0])
        codes_q.add(http("POST", f"{prom}/api/v1/write", body, qd.RW_HEADERS)[0])
    ok(codes_p == {204} and codes_q == {204}, "both accept the data set by remote write",
       f"promlet {codes_p}, prometheus {codes_q}")

    # The experiment's queries, as exportmetrics.py runs them (last 5 min, step 5 s), over
    # the benchmark's 15 min, and as instant queries at the end.
    exact = 0
    total = 0
    for q in qd.QUERIES + qd.EXTRA_QUERIES:
        for label, path, params in (
            ("range 5m", "/api/v1/query_range",
             {"query": q, "start": (end - 300000) / 1000, "end": end / 1000, "step": "5"}),
            ("range 15m", "/api/v1/query_range",
             {"query": q, "start": (end - 900000) / 1000, "end": end / 1000, "step": "5s"}),
            ("instant", "/api/v1/query", {"query": q, "time": end / 1000}),
        ):
            qs = urllib.parse.urlencode(params)
            sp, _, bp = http("GET", pl.url(f"{path}?{qs}"))
            sq, _, bq = http("GET", f"{prom}{path}?{qs}")
            diff = None if (sp, sq) == (200, 200) else f"HTTP {sp} vs {sq}: {bp[:300]!r} / {bq[:300]!r}"
            diff = diff or compare(bp, bq)
            nres = len(json.loads(bq)["data"]["result"]) if sq == 200 else 0
            ok(diff is None and nres > 0, f"{label}: {q} ({nres} series)", diff)
            total += 1
            exact += bp == bq
    print(f"# byte-identical JSON answers: {exact} of {total}")

    # The flag matters: in 3.x mode promlet interpolates exponentially inside native-histogram
    # buckets, so its p99 must differ from 2.42's (this shows the comparison can fail).
    pl3 = Promlet("")
    for chunk in chunks:
        http("POST", pl3.url("/api/v1/write"), qd.encode_write_request(chunk), qd.RW_HEADERS)
    qs = urllib.parse.urlencode({"query": qd.QUERIES[4], "start": (end - 300000) / 1000,
                                 "end": end / 1000, "step": "5"})
    s3, _, b3 = http("GET", pl3.url(f"/api/v1/query_range?{qs}"))
    sq, _, bq = http("GET", f"{prom}/api/v1/query_range?{qs}")
    ok(s3 == 200 and compare(b3, bq) is not None,
       "without --promql.compat=v2 the p99 differs from 2.42 (exponential interpolation)")
    # Writes keep being answered while a long query runs on another HTTP thread (latencies
    # printed, not asserted); pl3 has the default query.max_samples.
    heavy = urllib.parse.urlencode({"query": "sum(count_over_time(node_cpu_seconds_total[15m:50ms]))",
                                    "time": end / 1000})
    done_q = {}

    def long_query():
        t0 = time.time()
        st_q = http("GET", pl3.url("/api/v1/query?" + heavy), timeout=120)[0]
        done_q["r"] = (st_q, time.time() - t0)

    th = threading.Thread(target=long_query)
    th.start()
    writes = []
    for i in range(10):
        probe = [({"__name__": "query_probe_during", "job": "t"}, [(end + 100 + i, float(i))], [])]
        t0 = time.time()
        st = http("POST", pl3.url("/api/v1/write"), qd.encode_write_request(probe), qd.RW_HEADERS)[0]
        writes.append((st, round((time.time() - t0) * 1000, 1)))
    th.join()
    print(f"# long query: HTTP {done_q['r'][0]} in {done_q['r'][1]:.2f}s; writes meanwhile "
          f"(status, ms): {writes}")
    ok(all(w[0] == 204 for w in writes) and done_q["r"][0] == 200,
       "remote writes are answered while a long query runs", writes)

    pl3.stop()

    # POST form bodies answer the same as GET.
    form = urllib.parse.urlencode({"query": qd.QUERIES[1], "time": end / 1000}).encode()
    hdr = {"Content-Type": "application/x-www-form-urlencoded"}
    sp, _, bp = http("POST", pl.url("/api/v1/query"), form, hdr)
    sq, _, bq = http("POST", f"{prom}/api/v1/query", form, hdr)
    ok(sp == sq == 200 and compare(bp, bq) is None, "POST form-encoded /api/v1/query")

    # Bad queries: Prometheus's HTTP codes and error types.
    t = end / 1000
    bad = [
        ("parse error", "/api/v1/query", {"query": "sum(rate(x[5m])"}),
        ("parse error, bad duration", "/api/v1/query", {"query": "rate(x[5x])"}),
        ("unknown function", "/api/v1/query", {"query": "rat(x[5m])"}),
        ("bad time", "/api/v1/query", {"query": "1", "time": "yesterday"}),
        ("bad timeout", "/api/v1/query", {"query": "1", "timeout": "soon"}),
        ("range too long (11,000 points)", "/api/v1/query_range",
         {"query": "up", "start": t - 86400, "end": t, "step": "1"}),
        ("end before start", "/api/v1/query_range",
         {"query": "up", "start": t, "end": t - 60, "step": "5"}),
        ("zero step", "/api/v1/query_range", {"query": "up", "start": t - 60, "end": t, "step": "0"}),
        ("range vector in a range query", "/api/v1/query_range",
         {"query": "up[5m]", "start": t - 60, "end": t, "step": "5"}),
        ("too many points (query.max_samples)", "/api/v1/query_range",
         {"query": "max_over_time(node_cpu_seconds_total[15m:100ms])", "start": t - 60,
          "end": t, "step": "5"}),
        ("too many points, instant", "/api/v1/query",
         {"query": "count_over_time(node_cpu_seconds_total[15m:10ms])", "time": t}),
        ("timeout", "/api/v1/query_range",
         {"query": "count_over_time(node_cpu_seconds_total[15s])", "start": t - 900, "end": t,
          "step": "1", "timeout": "0.000001"}),
        ("no match[]", "/api/v1/series", {}),
        ("bad match[]", "/api/v1/series", {"match[]": "up{"}),
        ("empty matcher", "/api/v1/series", {"match[]": '{job=~".*"}'}),
        ("bad label name", "/api/v1/label/1x/values", {}),
    ]
    for desc, path, params in bad:
        qs = urllib.parse.urlencode(params)
        t0 = time.time()
        sp, hp, bp = http("GET", pl.url(f"{path}?{qs}"), timeout=30)
        took = time.time() - t0
        sq, _, bq = http("GET", f"{prom}{path}?{qs}", timeout=30)
        try:
            jp, jq = json.loads(bp), json.loads(bq)
            same = (sp == sq and jp["status"] == jq["status"] == "error"
                    and jp["errorType"] == jq["errorType"])
        except (ValueError, KeyError):
            same = False
        ok(same, f"bad query, {desc}: HTTP {sq} {bq[:60]!r}",
           f"promlet HTTP {sp} {bp[:300]!r} in {took:.2f}s\nprometheus HTTP {sq} {bq[:300]!r}")
        if same and jp["error"] != jq["error"]:
            print(f"#   message differs: promlet {jp['error']!r} / prometheus {jq['error']!r}")

    # Still alive, still ingesting, and the new sample is answered.
    probe = [({"__name__": "query_probe", "job": "t"}, [(end + 1000, 42.0)], [])]
    st = http("POST", pl.url("/api/v1/write"), qd.encode_write_request(probe), qd.RW_HEADERS)[0]
    sp, _, bp = http("GET", pl.url("/api/v1/query?" + urllib.parse.urlencode(
        {"query": "query_probe", "time": end / 1000 + 2})))
    ok(st == 204 and sp == 200 and b'"42"' in bp and pl.proc.poll() is None,
       "ingestion and queries still work after the bad queries", f"{st} {sp} {bp[:200]!r}")

    # The browsing endpoints Grafana uses, against Prometheus's answers.
    for desc, path in (
        ("labels", "/api/v1/labels"),
        ("label values", "/api/v1/label/__name__/values"),
        ("label values with match[]", "/api/v1/label/cpu/values?match[]=node_cpu_seconds_total"),
        ("series", "/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": "k6_http_reqs_total", "start": t - 600, "end": t})),
        ("series, two match[]", "/api/v1/series?match[]=busy_worker_threads&match[]="
         + urllib.parse.quote('{__name__=~"k6_.*",status="0"}')),
    ):
        sp, hp, bp = http("GET", pl.url(path))
        sq, _, bq = http("GET", prom + path)
        jp = json.loads(bp) if sp == 200 else None
        jq = json.loads(bq)
        want = jq["data"]
        got = jp["data"] if jp else None
        if isinstance(want, list) and want and isinstance(want[0], str):
            # Only promlet received the probe series written above.
            got = [x for x in got or [] if not x.startswith("query_probe")]
        ok(got == want and hp.get("Content-Type") == "application/json", f"{desc}",
           f"promlet {bp[:300]!r}\nprometheus {bq[:300]!r}")
    # Grafana POSTs its browsing calls as forms, match[] repeated.
    form = urllib.parse.urlencode([("match[]", "busy_worker_threads"),
                                   ("match[]", "k6_http_reqs_total"), ("start", str(t - 600)),
                                   ("end", str(t))]).encode()
    for path in ("/api/v1/series", "/api/v1/labels"):
        sp, _, bp = http("POST", pl.url(path), form, hdr)
        sq, _, bq = http("POST", prom + path, form, hdr)
        ok(sp == sq == 200 and json.loads(bp)["data"] == json.loads(bq)["data"],
           f"POST form {path} with two match[]", f"promlet {bp[:300]!r}\nprometheus {bq[:300]!r}")
    sp, _, bp = http("GET", pl.url("/api/v1/status/buildinfo"))
    info = json.loads(bp)["data"] if sp == 200 else {}
    ok(all(k in info for k in ("version", "revision", "branch", "buildUser", "buildDate",
                               "goVersion")), "buildinfo has Prometheus's fields", bp)
    # Metadata sent with remote write (as k6 does) is listed in Prometheus's shape.
    meta = [("k6_http_reqs_total", "counter", "Total HTTP requests", ""),
            ("k6_http_req_duration_seconds", "histogram", "Request duration", "seconds")]
    st = http("POST", pl.url("/api/v1/write"), qd.encode_write_request([], meta),
              qd.RW_HEADERS)[0]
    sp, _, bp = http("GET", pl.url("/api/v1/metadata"))
    want = {"k6_http_reqs_total": [{"type": "counter", "help": "Total HTTP requests", "unit": ""}],
            "k6_http_req_duration_seconds": [{"type": "histogram", "help": "Request duration",
                                              "unit": "seconds"}]}
    ok(st == 204 and sp == 200 and json.loads(bp)["data"] == want,
       "metadata from remote write, in Prometheus's shape", bp)
    sp, _, bp = http("GET", pl.url("/api/v1/metadata?metric=k6_http_reqs_total"))
    ok(sp == 200 and list(json.loads(bp)["data"]) == ["k6_http_reqs_total"],
       "metadata ?metric= selects one family", bp)
    done()


if __name__ == "__main__":
    sys.exit(main())
