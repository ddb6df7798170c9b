# SPDX-License-Identifier: Apache-2.0
"""The remote-write receiver (issue 4): the shared example payloads and Prometheus' status
codes, content negotiation (415), order and series-limit errors (nothing stored), native
histograms and metadata, bad bodies (random bytes, truncated snappy and protobuf, invalid
UTF-8, 10^6 series against the series limit, a 100 MB body) leaving earlier data intact
with bounded RSS, /federate, and a real Prometheus 2.42 remote-writing its scrapes of
promlet: what arrives equals what that Prometheus stored."""
import glob
import http.client
import json
import os
import random
import re
import shutil
import socket
import time
import urllib.parse

from plib import Promlet, ok, done, free_port, skip_all, start_peer, tmpdir
from plib import http as http_call

try:
    import rwlib
    from rwlib import HEADERS, body, histogram, metadata, series
except ImportError:
    skip_all("python3-snappy is not installed")

EX = os.path.join(os.environ["CONFORMANCE"], "remote_write", "examples")
T0 = 1700000000000


def now_ms():
    return int(time.time() * 1000)


def write(p, data, headers=None):
    """POSTs data with exactly these headers (urllib would add a form Content-Type)."""
    host, port = p.addr.rsplit(":", 1)
    c = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        c.putrequest("POST", "/api/v1/write", skip_accept_encoding=True)
        for k, v in (HEADERS if headers is None else headers).items():
            c.putheader(k, v)
        c.putheader("Content-Length", str(len(data)))
        c.endheaders()
        c.send(data)
        r = c.getresponse()
        return r.status, r.read().decode(errors="replace")
    finally:
        c.close()


def federate(p, sel):
    st, hd, b = http_call("GET", p.url("/federate?" + urllib.parse.urlencode({"match[]": sel})))
    return st, b.decode(errors="replace")


def fed_samples(text):
    """{labels-string: (value, ts)} from federation text; labels sorted, instance="" kept."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([^{ ]+)(\{.*\})? (\S+) (-?\d+)$', line)
        if not m:
            continue
        labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        labels["__name__"] = m.group(1)
        key = ",".join(f"{k}={v}" for k, v in sorted(labels.items()) if v != "")
        out[key] = (float(m.group(3)), int(m.group(4)))
    return out


def instant(p, expr, at_ms):
    st, hd, b = http_call("GET", p.url("/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr, "time": "%.3f" % (at_ms / 1000)})))
    return json.loads(b)["data"]["result"] if st == 200 else [b]


def metric(p, name):
    st, hd, b = p.get("/metrics")
    m = re.search(rf"^{re.escape(name)} (\S+)$", b.decode(), re.M)
    return float(m.group(1)) if m else None


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))


p = Promlet("storage: {retention: 1h, max_series: 60000}\n"
            "remote_write_receiver: {max_body_bytes: 16MiB}\n")
if not ok(p.addr is not None, "promlet starts", p.logtext()):
    done()

# --- the shared examples ----------------------------------------------------------------------
expect = {"rw1_single_sample": 204, "rw1_stale_marker": 204, "rw1_plain_nan": 204,
          "rw1_special_values": 204, "rw1_multi_series_multi_samples": 204, "rw1_empty": 204,
          "rw1_label_escaping": 204, "rw1_unsorted_labels": 400, "rw1_missing_name": 400,
          "rw1_duplicate_label": 400, "rw1_out_of_order": 400, "bad_snappy_header": 400,
          "bad_not_compressed": 400, "bad_protobuf": 400}
# Several examples write the same series at T0 (as their own senders would), so each goes to
# a fresh promlet; together they would conflict exactly as they would in Prometheus.
stored = 0
for f in sorted(glob.glob(os.path.join(EX, "*.snappy"))):
    name = os.path.basename(f)[:-7]
    e = Promlet("storage: {retention: 1h}\n")
    with open(f, "rb") as fh:
        st, b = write(e, fh.read())
    ok(st == expect.get(name) and (st == 204 or b.count("\n") == 1),
       f"example {name}: {st} (expected {expect.get(name)})", b)
    stored += metric(e, "promlet_remote_write_samples_total") or 0
    if name == "rw1_stale_marker":
        r1, r2 = instant(e, "up", T0 + 1000), instant(e, "up", T0 + 16000)
        ok(len(r1) == 1 and r2 == [], "stale marker: the series is gone 1 s after the marker",
           (r1, r2))
    if name == "rw1_plain_nan":
        r1 = instant(e, "up", T0 + 60000)
        ok(len(r1) == 1 and r1[0]["value"][1] == "NaN", "an ordinary NaN stays a value", r1)
    e.stop()
ok(stored == 1 + 2 + 1 + 4 + 5 + 1, "the accepted examples' samples were all stored", stored)

# --- content negotiation ----------------------------------------------------------------------
one = body([series([("__name__", "neg"), ("job", "x")], [(1, now_ms())])])
for desc, hdr, code in [
        ("gzip encoding", {"Content-Encoding": "gzip"}, 415),
        ("deflate encoding", {"Content-Encoding": "deflate"}, 415),
        ("JSON content type", {"Content-Type": "application/json"}, 415),
        ("PNG content type", {"Content-Type": "image/png"}, 415),
        ("v2 message", {"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, 415),
        ("unknown proto", {"Content-Type": "application/x-protobuf;proto=foo.Bar"}, 415),
        ("v1 message named", {"Content-Type": "application/x-protobuf;proto=prometheus.WriteRequest"}, 204),
        ("no content type or encoding", {"Content-Type": "", "Content-Encoding": ""}, 204)]:
    h = dict(HEADERS)
    h.update(hdr)
    h = {k: v for k, v in h.items() if v}
    st, b = write(p, one, h)
    ok(st == code, f"{desc}: {st} (expected {code})", b)
st, hd, b = p.get("/api/v1/write")
ok(st == 405, "GET /api/v1/write: 405", st)

# --- order, idempotency, future timestamps ------------------------------------------------------
t = now_ms()
base = [("__name__", "rw_order"), ("job", "t")]
ok(write(p, body([series(base, [(1, t - 2000), (2, t - 1000)])]))[0] == 204, "in-order samples: 204")
ok(write(p, body([series(base, [(1, t - 2000), (2, t - 1000)])]))[0] == 204,
   "the same request again (a sender's retry): 204")
st, b = write(p, body([series([("__name__", "rw_other"), ("job", "t")], [(9, t - 1500)]),
                       series(base, [(3, t - 1500)])]))
ok(st == 400 and "out of order" in b, "an out-of-order sample: 400", (st, b))
ok(federate(p, "rw_other")[1] == "", "nothing of the refused request was stored (rolled back)",
   federate(p, "rw_other"))
st, b = write(p, body([series(base, [(7, t - 1000)])]))
ok(st == 400 and "duplicate" in b, "same timestamp, another value: 400", (st, b))
st, b = write(p, body([series(base, [(7, t + 11 * 60 * 1000)])]))
ok(st == 400 and "out of bounds" in b, "a sample more than 10m ahead: 400", (st, b))
s = fed_samples(federate(p, "rw_order")[1])
ok(list(s.values()) == [(2.0, t - 1000)], "the series kept its last good sample", s)

# --- concurrent writers of disjoint series ------------------------------------------------------
import threading

results = []


def writer(w):
    mine = []
    for k in range(25):
        ts_k = t - 60000 + k
        mine.append(write(p, body([series([("__name__", "conc"), ("i", str(i)), ("w", str(w))],
                                          [(k, ts_k)]) for i in range(40)]))[0])
    results.append(mine)


threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
for th in threads:
    th.start()
for th in threads:
    th.join(120)
ok(len(results) == 6 and all(st == 204 for r in results for st in r),
   "6 concurrent writers of disjoint series: every request 204", results)
st, b = federate(p, "conc")
ok(len(fed_samples(b)) == 240 and all(v == (24.0, t - 60000 + 24) for v in fed_samples(b).values()),
   "all 240 series hold their last sample", len(fed_samples(b)))

# --- native histograms, exemplars, metadata, stale markers --------------------------------------
hb = body([series([("__name__", "k6_http_req_duration_seconds"), ("testid", "threadloadtest")],
                  hists=[histogram(t - 1000, 3, 10, 12.5, 1, [(0, 3), (2, 1)], [2, 3, 1, 3]),
                         histogram(t, 3, 12, 14.5, 1, [(0, 3), (2, 1)], [2, 3, 1, 5])]),
           series([("__name__", "k6_float_hist"), ("testid", "threadloadtest")],
                  hists=[histogram(t, 0, 3.5, 1.25, 0.5, [(1, 2)], [1.5, 1.5], is_float=True,
                                   reset_hint=3)]),
           series([("__name__", "k6_http_reqs_total"), ("method", "GET"), ("status", "200"),
                   ("testid", "threadloadtest")], [(42, t)],
                  exemplars=[([("trace_id", "abc")], 1.0, t)])],
          metas=[metadata("k6_http_reqs_total", 1, "Total HTTP requests.", ""),
                 metadata("k6_http_req_duration_seconds", 3, "Request duration.", "seconds")])
h0 = metric(p, "promlet_remote_write_histograms_total")
st, b = write(p, hb)
ok(st == 204, "native histograms (integer and float), exemplars and metadata: 204", b)
ok(metric(p, "promlet_remote_write_histograms_total") == h0 + 3, "three histogram samples stored")
ok(metric(p, "promlet_remote_write_metadata_families") == 2, "metadata of two families kept")
ok('k6_http_reqs_total{method="GET",status="200",testid="threadloadtest",instance=""} 42' in
   federate(p, '{testid="threadloadtest"}')[1], "exemplar-carrying series stored, exemplar dropped",
   federate(p, '{testid="threadloadtest"}')[1])
bad_h = body([series([("__name__", "bad_h")],
                     hists=[histogram(t, 3, 10, 1, 0, [(0, 2)], [2, 3, 1])])])  # 3 counts, 2 slots
ok(write(p, bad_h)[0] == 400, "a histogram whose spans and buckets disagree: 400")
st, b = write(p, body([series([("__name__", "gone"), ("job", "s")],
                              [(1, t - 500), (rwlib.STALE_NAN, t)])]))
ok(st == 204 and federate(p, "gone")[1] == "", "a stale marker ends the series for /federate",
   federate(p, "gone"))

# --- /federate ------------------------------------------------------------------------------------
st, b = federate(p, '{job=~"t|s"}')
ok(st == 200 and "# TYPE rw_order untyped" in b and re.search(r'^rw_order\{job="t",instance=""\} 2 \d+$', b, re.M),
   "/federate answers the text format with timestamps and instance=\"\"", b)
for sel in ('{job=""}', "rw_order{", 'x{a="b"', "{}", "x{a=~\"(\"}"):
    st, b = federate(p, sel)
    ok(st == 400 and b.count("\n") == 1, f"/federate rejects {sel!r}: 400", (st, b))
st, b = federate(p, '{__name__=~"rw_or.*",job!="zz"}')
ok(st == 200 and "rw_order{" in b, "/federate regex and negative matchers", b)

# --- bad bodies ------------------------------------------------------------------------------------
ok(write(p, body([series([("__name__", "keep"), ("i", str(i)), ("job", "k")], [(i * 0.5, t)])
                  for i in range(50)]))[0] == 204, "50 series stored before the bad bodies")
keep_before = fed_samples(federate(p, '{job=~".+"}')[1])
rss0 = rss_kib(p.proc.pid)
rnd = random.Random(4)
valid = body([series([("__name__", "trunc"), ("job", "b")], [(1, t)] * 1)] * 50)
cases = [("random bytes", bytes(rnd.getrandbits(8) for _ in range(4096)), 400),
         ("truncated snappy", valid[: len(valid) // 2], 400),
         ("truncated protobuf", rwlib.snappy.compress(rwlib.write_request(
             [series([("__name__", "trunc"), ("job", "b")], [(1, t)])])[:-3]), 400),
         ("invalid UTF-8 in a label value", body([series([("__name__", "u"), ("a", b"\xff\xfe")],
                                                         [(1, t)])]), 400),
         ("invalid metric name", body([series([("__name__", "0bad")], [(1, t)])]), 400),
         ("invalid label name", body([series([("__name__", "x"), ("a-b", "1")], [(1, t)])]), 400),
         ("empty label value only", body([series([("__name__", "x"), ("a", "")], [(1, t)])]), 204),
         ("snappy announcing 4 GiB", b"\xff\xff\xff\xff\x0f" + b"\x00" * 32, 400)]
for desc, data, code in cases:
    st, b = write(p, data)
    ok(st == code and (code == 204 or b.count("\n") == 1), f"{desc}: {st} (expected {code})", b)

# 10^6 distinct series against a series limit of 60000, 50000 series per request.
statuses = []
ts = now_ms()
for r in range(20):
    lst = [series([("__name__", "flood"), ("i", str(r * 50000 + i))], [(1, ts)])
           for i in range(50000)]
    st, b = write(p, body(lst))
    statuses.append(st)
ok(statuses[0] == 204 and all(s == 500 for s in statuses[1:]),
   "10^6 series: the first 50000 stored, every request past the series limit 500",
   statuses)
ok(metric(p, "promlet_remote_write_series_limit_hits_total") == 19,
   "series-limit refusals are counted", metric(p, "promlet_remote_write_series_limit_hits_total"))
st, b = write(p, body([series([("__name__", "more"), ("i", str(i))], [(1, ts)])
                       for i in range(15000)]))
ok(st == 500 and "series limit" in b and b.count("\n") == 1, "the 500 names the series limit", b)

# 100 MB body: refused from its Content-Length before it is read.
host, port = p.addr.rsplit(":", 1)
sk = socket.create_connection((host, int(port)), timeout=10)
sk.sendall(b"POST /api/v1/write HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
           b"Content-Encoding: snappy\r\nContent-Length: 104857600\r\n\r\n")
try:
    sk.sendall(b"\0" * (1 << 20))
except OSError:
    pass
resp = b""
try:
    while b"\r\n\r\n" not in resp:
        chunk = sk.recv(4096)
        if not chunk:
            break
        resp += chunk
except OSError:
    pass
sk.close()
ok(resp.startswith(b"HTTP/1.1 413"), "a 100 MB body: 413", resp[:200])
big = body([series([("__name__", "big"), ("i", str(i)), ("pad", "x" * 3000)], [(1, ts)])
            for i in range(6000)])
ok(len(big) < 16 << 20 and write(p, big)[0] in (204, 500), "a 15 MB-decoded body under the limit is decoded")

after = fed_samples(federate(p, '{job=~".+"}')[1])
ok(all(after.get(k) == v for k, v in keep_before.items()) and len(keep_before) > 5,
   f"everything stored before the bad bodies is intact ({len(keep_before)} series)",
   {k: (v, after.get(k)) for k, v in keep_before.items() if after.get(k) != v})
rss1 = rss_kib(p.proc.pid)
print(f"# RSS before bad bodies {rss0} KiB, after {rss1} KiB (60000-series store)")
ok(rss1 < 512 * 1024, f"RSS stays bounded: {rss1 // 1024} MiB", rss1)
st, hd, b = p.get("/-/healthy")
ok(st == 200, "promlet still healthy")
p.stop()

# --- a real Prometheus remote-writing its scrapes of promlet -------------------------------------
prom_bin = shutil.which("prometheus")
if not prom_bin:
    ok(True, "# SKIP prometheus not installed")
    done()
q = Promlet("storage: {retention: 1h}\n")
pport = free_port()
d = tmpdir()
with open(os.path.join(d, "prometheus.yml"), "w") as f:
    f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: promlet
    static_configs: [{{targets: ['{q.addr}']}}]
remote_write:
  - url: http://{q.addr}/api/v1/write
    queue_config: {{batch_send_deadline: 500ms, min_backoff: 50ms, max_backoff: 500ms}}
    metadata_config: {{send_interval: 1s}}
""")
start_peer([prom_bin, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/data",
            f"--web.listen-address=127.0.0.1:{pport}", "--web.enable-remote-write-receiver",
            "--enable-feature=native-histograms"],
           f"http://127.0.0.1:{pport}/-/ready", log_name="prometheus.log")


def range_series(base, at):
    """Every sample of {job="promlet"} in the 5 minutes before `at` (seconds), per series."""
    st, hd, b = http_call("GET", f"http://{base}/api/v1/query?" + urllib.parse.urlencode(
        {"query": '{job="promlet"}[5m]', "time": "%.3f" % at}))
    out = {}
    for r in json.loads(b)["data"]["result"]:
        key = ",".join(f"{k}={v}" for k, v in sorted(r["metric"].items()) if v != "")
        out[key] = {int(round(float(ts) * 1000)): float(v) for ts, v in r["values"]}
    return out


def same(a, b):
    return a == b or (a != a and b != b)


def compare():
    at = time.time()
    mine = fed_samples(federate(q, '{job="promlet"}')[1])
    theirs = range_series(f"127.0.0.1:{pport}", at)
    mine_all = range_series(q.addr, at)
    bad, bad_all = [], []
    for k, (v, ts) in mine.items():
        vals = theirs.get(k, {})
        if ts not in vals or not same(vals[ts], v):
            bad.append((k, v, ts, sorted(vals.items())[-2:]))
    # Every sample Prometheus stored up to the newest one it has sent must be in promlet.
    for k, got in mine_all.items():
        cutoff = max(got) if got else 0
        want = {t: v for t, v in theirs.get(k, {}).items() if t <= cutoff}
        if set(got) != set(want) or not all(same(got[t], want[t]) for t in got):
            bad_all.append((k, sorted(set(got) ^ set(want))[:4]))
    return mine, theirs, bad, bad_all, sum(len(x) for x in mine_all.values())


deadline = time.time() + 40
mine, theirs, bad, bad_all, nsamples = {}, {}, ["not compared yet"], [], 0
while time.time() < deadline:
    time.sleep(1)
    mine, theirs, bad, bad_all, nsamples = compare()
    if len(mine) > 100 and not bad and not bad_all and set(mine) == set(theirs) and \
            nsamples > 5 * len(mine):
        break
ok(len(mine) > 100 and set(mine) == set(theirs),
   f"Prometheus 2.42 remote-wrote every series it scraped ({len(mine)} series)",
   (sorted(set(mine) ^ set(theirs))[:10]))
ok(not bad, "each series' newest sample in promlet equals the one Prometheus stored", bad[:10])
ok(not bad_all and nsamples > 5 * len(mine),
   f"every sample Prometheus stored and sent is in promlet, equal ({nsamples} samples)",
   bad_all[:10])
ok((metric(q, "promlet_remote_write_samples_total") or 0) > 5 * len(mine),
   "several scrapes arrived", metric(q, "promlet_remote_write_samples_total"))
ok((metric(q, "promlet_remote_write_metadata_families") or 0) > 20,
   "Prometheus' metadata arrived", metric(q, "promlet_remote_write_metadata_families"))
ok(metric(q, "promlet_remote_write_invalid_requests_total") == 0 and
   metric(q, "promlet_remote_write_out_of_order_requests_total") == 0,
   "no request from Prometheus was refused")

# Native histograms written to both receivers read back equal through /api/v1/query.
t = now_ms()
hb = body([series([("__name__", "k6_http_req_duration_seconds"), ("testid", "threadloadtest")],
                  hists=[histogram(t - 1000, 3, 10, 12.5, 1, [(0, 3), (2, 1)], [2, 3, 1, 3]),
                         histogram(t, 3, 13, 14.5, 1, [(0, 3), (1, 2)], [2, 3, 1, 5, 1])]),
           series([("__name__", "k6_float_hist"), ("testid", "threadloadtest")],
                  hists=[histogram(t, 0, 3.5, 1.25, 0.5, [(1, 2)], [1.5, 1.5], is_float=True,
                                   reset_hint=3)])])
st_p, b_p = write(q, hb)


class _P:  # write() needs .addr
    addr = f"127.0.0.1:{pport}"


st_r, b_r = write(_P, hb)
ok(st_p == 204 and st_r == 204, f"native histograms: promlet {st_p}, Prometheus {st_r}", (b_p, b_r))


def query(base, expr, at):
    st, hd, b = http_call("GET", f"http://{base}/api/v1/query?" +
                          urllib.parse.urlencode({"query": expr, "time": "%.3f" % (at / 1000)}))
    return json.loads(b)["data"]["result"] if st == 200 else b


def norm(r):
    """Results sorted by labels; bucket bounds to 12 digits (the receiver under test stores
    spans and counts; the last bits of computed bounds belong to the query engine)."""
    if not isinstance(r, list):
        return r
    out = []
    for x in sorted(r, key=lambda x: json.dumps(x["metric"], sort_keys=True)):
        ts, h = x["histogram"]
        bk = [[k[0], "%.12g" % float(k[1]), "%.12g" % float(k[2]), k[3]] for k in h["buckets"]]
        out.append((x["metric"], ts, h["count"], h["sum"], bk))
    return out


for expr in ("k6_http_req_duration_seconds", "k6_float_hist", '{testid="threadloadtest"}'):
    a, b = query(q.addr, expr, t), query(_P.addr, expr, t)
    ok(a and norm(a) == norm(b), f"{expr}: promlet's /api/v1/query equals Prometheus'", (a, b))
    if a != b:
        print(f"# note: {expr}: bucket bounds differ in the last digits from Prometheus'")
q.stop()

# --- retention removes series the receiver remembered (label cache + store refs) ---------------
# The receiver remembers label sets it stored with their store refs. After retention removed
# them, a new series may take a removed one's slot: a re-sent old series must land in its own
# series again, not in the newcomer.
g = Promlet("storage: {retention: 2s}\n")
A = [("__name__", "rw_gc"), ("job", "a")]
B = [("__name__", "rw_gc"), ("job", "b")]
t1 = now_ms()
ok(write(g, body([series(A, [(1, t1)])]))[0] == 204 and
   write(g, body([series(A, [(2, t1 + 1)])]))[0] == 204, "a series written twice (cached)")
end = time.time() + 20
while time.time() < end and federate(g, "rw_gc")[1] != "":
    time.sleep(0.25)
ok(federate(g, "rw_gc")[1] == "", "retention removed it", federate(g, "rw_gc"))
t2 = now_ms()
ok(write(g, body([series(B, [(3, t2)])]))[0] == 204, "a new series after the removal")
st, b = write(g, body([series(A, [(4, t2)])]))
ok(st == 204, "the removed series re-sent: 204", (st, b))
s = fed_samples(federate(g, "rw_gc")[1])
got = {k.rsplit("job=", 1)[-1]: v for k, v in s.items()}
ok(len(s) == 2 and got == {"a": (4.0, t2), "b": (3.0, t2)},
   "each series holds its own sample", s)
g.stop()
done()
