# SPDX-License-Identifier: Apache-2.0
"""The push API against the real Pushgateway (issue 4): Python's prometheus_client pushing
the same sequence to both, /metrics compared for the pushed groups (but for ordering and
push times), the experiment's body verbatim, every 400 case of SPEC section 5 and the
scenario table of section 7 compared by status code, the JSON API, persistence across a
restart, the group TTL, and pushed samples reaching the store (seen through /federate)."""
import json
import os
import re
import shutil
import time
import urllib.parse

from plib import Promlet, ok, done, free_port, http, skip_all, start_peer, tmpdir, source_root

try:
    from prometheus_client import (CollectorRegistry, Counter, Gauge, Histogram, Summary,
                                   delete_from_gateway, push_to_gateway, pushadd_to_gateway)
except ImportError:
    skip_all("python3-prometheus-client is not installed")

PGW = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
if not PGW:
    skip_all("prometheus-pushgateway is not installed")

OWN = re.compile(r"^(go_|process_|pushgateway_|promlet_|node_|container_|push_time_seconds|"
                 r"push_failure_time_seconds)")
OWN_FAMILIES = set()  # families on either /metrics before anything was pushed


def experiment_body():
    """The experiment's push body, read from the one copy in tests/unit/proto/push_body.h."""
    with open(os.path.join(source_root(), "tests", "unit", "proto", "push_body.h")) as f:
        text = f.read()
    lits = re.findall(r'^\s*"((?:[^"\\]|\\.)*)"', text.split("push_body[] =", 1)[1],
                      re.M)
    return "".join(lits).encode().decode("unicode_escape").encode()


def start_pushgateway():
    port = free_port()
    d = tmpdir()
    start_peer([PGW, f"--web.listen-address=127.0.0.1:{port}",
                f"--persistence.file={d}/pgw.db", "--web.enable-admin-api"],
               f"http://127.0.0.1:{port}/-/ready", log_name="pushgateway.log")
    return f"127.0.0.1:{port}"


def pushed(text, with_times=False):
    """Lines of /metrics that belong to pushed groups; push-time values masked."""
    out = set()
    fam = None
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# "):
            fam = line.split(" ")[2]
            if not OWN.match(fam) and fam not in OWN_FAMILIES:
                out.add(line)
            continue
        name = re.match(r"[^{ ]+", line).group(0)
        if fam in OWN_FAMILIES and not name.startswith("push_"):
            continue
        if name.startswith("push_time_seconds") or name.startswith("push_failure_time_seconds"):
            if with_times:
                series, value = line.rsplit(" ", 1)
                out.add(f"{series} {'0' if value == '0' else 'T'}")
            continue
        if OWN.match(name) and not (fam and not OWN.match(fam)):
            continue
        out.add(line)
    return out


def metrics(base):
    st, hd, body = http("GET", f"http://{base}/metrics")
    return body.decode()


def req(base, method, path, body=None, headers=None):
    st, hd, b = http(method, f"http://{base}{path}", body, headers)
    return st, b.decode(errors="replace")


def diff(a, b):
    return "\n".join(["only promlet: " + x for x in sorted(a - b)][:15] +
                     ["only pushgateway: " + x for x in sorted(b - a)][:15])


p = Promlet("storage: {retention: 15m, max_series: 10000}\n")
if not ok(p.addr is not None, "promlet starts", p.logtext()):
    done()
g = start_pushgateway()
P = p.addr
for base in (P, g):
    OWN_FAMILIES |= {l.split(" ")[2] for l in metrics(base).splitlines() if l.startswith("# TYPE ")}

# --- prometheus_client: the same push sequence against both ---------------------------------
# The registries are built once so that both gateways get byte-identical bodies (the
# client's *_created samples carry creation times).
r = CollectorRegistry()
c = Counter("jobs_processed", "Jobs processed.", ["queue"], registry=r)
c.labels("fast").inc(3)
c.labels("slow").inc(0.5)
Gauge("last_success_unixtime", "Last time the batch job succeeded.", registry=r).set(1.5e9)
h = Histogram("job_duration_seconds", "Duration.", buckets=(0.1, 1.0, 10.0), registry=r)
for v in (0.05, 0.5, 5.0, 50.0):
    h.observe(v)
s = Summary("request_size_bytes", "Request size.", registry=r)
s.observe(100)
s.observe(300)
r2 = CollectorRegistry()
Gauge("extra_gauge", "Added by POST.", registry=r2).set(7)
Gauge("last_success_unixtime", "Last time the batch job succeeded.", registry=r2).set(2e9)
r3 = CollectorRegistry()
Gauge("other_job_metric", "Another job.", ["kind"], registry=r3).labels("x").set(1)


def sequence(gw):
    push_to_gateway(gw, job="batch", registry=r)
    push_to_gateway(gw, job="batch", registry=r, grouping_key={"instance": "a b", "path": "/var/tmp"})
    push_to_gateway(gw, job="batch", registry=r, grouping_key={"empty": ""})
    pushadd_to_gateway(gw, job="batch", registry=r2)
    push_to_gateway(gw, job="other", registry=r3, grouping_key={"instance": "i1"})
    push_to_gateway(gw, job="other", registry=r3, grouping_key={"instance": "i2"})
    delete_from_gateway(gw, job="other", grouping_key={"instance": "i2"})


errs = []
for gw in (P, g):
    try:
        sequence(gw)
    except Exception as e:  # an HTTP error from either side is a failure of the comparison
        errs.append(f"{gw}: {e}")
ok(not errs, "prometheus_client push/pushadd/delete succeed against both", errs)
mp, mg = pushed(metrics(P), True), pushed(metrics(g), True)
ok(mp == mg and len(mp) > 20,
   f"/metrics of the pushed groups equal Pushgateway's ({len(mp)} lines)", diff(mp, mg))
ok(any('path="/var/tmp"' in x for x in mp) and any('empty=""' in x for x in mp),
   "base64 grouping values ('/' and empty) decoded", sorted(mp)[:5])

# --- JSON API -------------------------------------------------------------------------------
def api_shape(base):
    st, hd, body = http("GET", f"http://{base}/api/v1/metrics")
    data = json.loads(body)["data"]
    shape = set()
    for grp in data:
        key = json.dumps(grp["labels"], sort_keys=True)
        for k, v in grp.items():
            if isinstance(v, dict) and "metrics" in v:
                for m in v["metrics"]:
                    vals = {kk: vv for kk, vv in m.items() if kk != "labels"}
                    if k in ("push_time_seconds", "push_failure_time_seconds"):
                        vals = {"value": "0" if vals["value"] == "0" else "T"}
                    shape.add((key, k, v["type"], v.get("help", ""),
                               json.dumps(m["labels"], sort_keys=True),
                               json.dumps(vals, sort_keys=True)))
            elif k != "labels":
                shape.add((key, k, json.dumps(v)))
    return st, hd.get("Content-Type", ""), shape


sp, ctp, ap = api_shape(P)
sg, ctg, ag = api_shape(g)
ok(sp == 200 and ctp.startswith("application/json") and ap == ag and len(ap) > 10,
   f"GET /api/v1/metrics equals Pushgateway's ({len(ap)} entries)",
   "\n".join(map(str, sorted(ap ^ ag)[:20])))
ok(re.search(r'"time_stamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"',
             http("GET", f"http://{P}/api/v1/metrics")[2].decode()) is not None,
   "time_stamp is RFC3339Nano")

# --- the experiment's body, verbatim --------------------------------------------------------
body = experiment_body()
ok(b"# HELP busy_worker_threads \n" in body and body.count(b"# TYPE") == 9,
   "experiment body read from push_body.h")
path = "/metrics/job/webserver/instance/webserver:5000"
hdr = {"Content-Type": "text/plain"}
rp = req(P, "POST", path, body, hdr)
rg = req(g, "POST", path, body, hdr)
ok(rp[0] == rg[0] == 200, f"experiment push: promlet {rp[0]}, Pushgateway {rg[0]}")
mp, mg = pushed(metrics(P), True), pushed(metrics(g), True)
ok(mp == mg, "/metrics after the experiment's push equal Pushgateway's", diff(mp, mg))
web = [l for l in metrics(P).splitlines() if 'job="webserver"' in l]
ok(any(l.startswith("push_time_seconds{") and not l.endswith(" 0") for l in web),
   "push_time_seconds of the webserver group set")

# --- rejected pushes (SPEC section 5) and the scenario table (section 7) -------------------
cases = [
    # (description, method, path, body)
    ("empty job name", "POST", "/metrics/job/", b""),
    ("empty body creates the group", "POST", "/metrics/job/testjob", b""),
    ("unparsable body", "POST", "/metrics/job/testjob/instance/testinstance", b"blablabla\n"),
    ("body labels overridden by the URL", "POST", "/metrics/job/testjob/instance/testinstance",
     b'some_metric 3.14\nanother_metric{instance="testinstance",job="testjob"} 42\n'),
    ("base64 job and instance", "POST",
     "/metrics/job@base64/dGVzdC9qb2I=/instance@base64/dGVzdGluc3RhbmNl",
     b'some_metric{job="testjob"} 1\n'),
    ("invalid label name in path", "POST",
     "/metrics/job/j/label_name1/label_value1/a=b/label_value2", b"x 1\n"),
    ("reserved label name in path", "POST",
     "/metrics/job/j/label_name1/label_value1/__label_name2/label_value2", b"x 1\n"),
    ("odd number of path components", "POST",
     "/metrics/job/j/label_name1/label_value1/label_name2/label%2Fvalue2", b"x 1\n"),
    ("base64 padding tolerated", "POST", "/metrics/job/j2/label_name2@base64/bGFiZWwvdmFsdWUy==",
     b"x 1\n"),
    ("invalid base64", "POST", "/metrics/job/j/label_name1@base64/foo.bar", b"x 1\n"),
    ("untyped x in {job=a}", "PUT", "/metrics/job/a", b"x 1\n"),
    ("counter x in {job=b}: type clash", "PUT", "/metrics/job/b", b"# TYPE x counter\nx 2\n"),
    ("client timestamp", "POST", "/metrics/job/ts", b"metric 1 1700000000000\n"),
    ("duplicate series in one body", "PUT", "/metrics/job/dup", b"d{a=\"1\"} 1\nd{a=\"1\"} 2\n"),
    ("same series reachable from two groups (1)", "PUT", "/metrics/job/sub",
     b'shared{instance="i"} 1\n'),
    ("same series reachable from two groups (2)", "PUT", "/metrics/job/sub/instance/i",
     b"shared 1\n"),
    ("summary vs existing x_count", "PUT", "/metrics/job/sx", b"sfx_count 1\n"),
    ("summary collides with sfx_count", "PUT", "/metrics/job/sy",
     b"# TYPE sfx summary\nsfx_sum 1\nsfx_count 1\n"),
    ("histogram vs later x_bucket", "PUT", "/metrics/job/hx",
     b"# TYPE hh histogram\nhh_bucket{le=\"+Inf\"} 1\nhh_sum 1\nhh_count 1\n"),
    ("x_bucket collides with histogram", "PUT", "/metrics/job/hy", b"hh_bucket 1\n"),
    ("type clash with the gateway's own metric", "PUT", "/metrics/job/own",
     b"# TYPE process_cpu_seconds_total gauge\nprocess_cpu_seconds_total 1\n"),
    ("same type as the gateway's own metric", "PUT", "/metrics/job/own2",
     b"# TYPE process_open_fds gauge\nprocess_open_fds 1\n"),
    ("invalid UTF-8 in a label value", "PUT", "/metrics/job/utf", b'u{a="\xff"} 1\n'),
    ("duplicate label names", "PUT", "/metrics/job/dl", b'u{a="1",a="2"} 1\n'),
    ("invalid metric name", "PUT", "/metrics/job/inv", b"0abc 1\n"),
    ("last line without newline", "PUT", "/metrics/job/nl", b"x 1"),
    ("second TYPE line", "PUT", "/metrics/job/t2", b"# TYPE y gauge\n# TYPE y gauge\ny 1\n"),
    ("bad escape in label value", "PUT", "/metrics/job/esc", b'y{a="\\t"} 1\n'),
    ("different HELP in another group is fine (1)", "PUT", "/metrics/job/help1",
     b"# HELP hv one\nhv 1\n"),
    ("different HELP in another group is fine (2)", "PUT", "/metrics/job/help2",
     b"# HELP hv two\nhv 1\n"),
    ("quantile NaN dropped", "PUT", "/metrics/job/qn",
     b'# TYPE qs summary\nqs{quantile="NaN"} 1\nqs_sum 1\nqs_count 1\n'),
    ("le not a float", "PUT", "/metrics/job/lef", b'# TYPE lh histogram\nlh_bucket{le="x"} 1\n'),
    ("push_time_seconds in the body is replaced", "PUT", "/metrics/job/pt",
     b"push_time_seconds 5\nok_metric 1\n"),
    ("PUT m1 m2", "PUT", "/metrics/job/mm", b"m1 1\nm2 2\n"),
    ("POST m1 keeps m2", "POST", "/metrics/job/mm", b"m1 5\n"),
    ("PUT replaces the group", "PUT", "/metrics/job/mm2", b"m1 1\nm2 2\n"),
    ("PUT m1 only", "PUT", "/metrics/job/mm2", b"m1 5\n"),
    ("empty PUT clears the group", "PUT", "/metrics/job/a", b""),
    ("delete {job=mm}", "DELETE", "/metrics/job/mm", None),
    ("delete a missing group", "DELETE", "/metrics/job/nope", None),
    ("delete with a bad URL", "DELETE", "/metrics/job/x/odd", None),
    ("gzip body", "PUT", "/metrics/job/gz", None),
    ("unknown Content-Encoding read as text", "PUT", "/metrics/job/br", None),
    ("Content-Encoding snappy on a plain body", "PUT", "/metrics/job/snplain", None),
    ("incomplete histograms and summaries are completed", "PUT", "/metrics/job/hc",
     b'# TYPE hc histogram\nhc_bucket{le="1"} 1\nhc_bucket{a="x",le="2"} 1\nhc_sum 2\n'
     b'hc_count 3\n# TYPE sc summary\nsc{quantile="0.5"} 1\nsc_count 4\n'
     b'# TYPE hc2 histogram\nhc2_sum 1\n# TYPE sc2 summary\nsc2_sum 3\n'),
    ("le and quantile re-rendered from their floats", "PUT", "/metrics/job/lq",
     b'# TYPE lq histogram\nlq_bucket{le="1.0"} 1\nlq_bucket{le="1e3"} 2\n'
     b'lq_bucket{le="+inf"} 3\nlq_sum 1\nlq_count 3\n# TYPE qq summary\n'
     b'qq{quantile="0.50"} 1\nqq_sum 1\nqq_count 1\n'),
]
import gzip
for desc, method, path, body in cases:
    headers = {}
    if desc == "gzip body":
        body = gzip.compress(b"gz_metric 1\n")
        headers["Content-Encoding"] = "gzip"
    elif desc == "unknown Content-Encoding read as text":
        body, headers["Content-Encoding"] = b"br_metric 1\n", "br"
    elif desc == "Content-Encoding snappy on a plain body":
        body, headers["Content-Encoding"] = b"snplain_metric 1\n", "snappy"
    sp_, bp = req(P, method, path, body, headers)
    sg_, bg = req(g, method, path, body, headers)
    # Pushgateway's router answers /metrics/job/ (empty job) with a 307 redirect (path
    # cleaning) before the handler; promlet's answer for that one path is 400 "job name is required".
    if desc == "empty job name":
        ok(sp_ == 400 and "job name is required" in bp and sg_ in (307, 400, 404, 405),
           f"{desc}: promlet {sp_}, Pushgateway {sg_}", bp)
        continue
    ok(sp_ == sg_ and (sp_ < 400 or bp.count("\n") == 1),
       f"{desc}: promlet {sp_}, Pushgateway {sg_}", f"promlet: {bp}\npushgateway: {bg}")

# HELP of a family pushed with two HELP texts: Pushgateway picks one at random (map order).
# --- protobuf pushes (client_golang's default format) ----------------------------------------
from rwlib import field_double, field_len, field_varint, varint  # noqa: E402

PB_CT = {"Content-Type": "application/vnd.google.protobuf; "
                         "proto=io.prometheus.client.MetricFamily; encoding=delimited"}


def pb_family(name, mtype, metrics, help_=None):
    """MetricFamily: metrics are (labels [(n, v)], kind field number, value bytes, ts)."""
    b = field_len(1, name.encode())
    if help_ is not None:
        b += field_len(2, help_.encode())
    b += field_varint(3, mtype)
    for labels, kind, value, ts in metrics:
        m = b"".join(field_len(1, field_len(1, n.encode()) + field_len(2, v.encode()))
                     for n, v in labels)
        m += field_len(kind, value)
        if ts is not None:
            m += field_varint(6, ts)
        b += field_len(4, m)
    return varint(len(b)) + b


def pb_summary(count, total, quantiles):
    return field_varint(1, count) + field_double(2, total) + b"".join(
        field_len(3, field_double(1, q) + field_double(2, v)) for q, v in quantiles)


def pb_histogram(count, total, buckets):
    return field_varint(1, count) + field_double(2, total) + b"".join(
        field_len(3, field_varint(1, c) + field_double(2, ub)) for ub, c in buckets)


pb_good = (pb_family("pb_gauge", 1, [([("a", "1")], 2, field_double(1, 1.5), None),
                                     ([("a", "2"), ("job", "body")], 2, field_double(1, 2.5), None)],
                     "A gauge.") +
           pb_family("pb_requests_total", 0, [([], 3, field_double(1, 7), None)], "Requests.") +
           pb_family("pb_untyped", 3, [([("x", "y")], 5, field_double(1, -3), None)]) +
           pb_family("pb_summary", 2, [([], 4, pb_summary(4, 10.5, [(0.5, 2), (0.99, 9)]), None)],
                     "A summary.") +
           pb_family("pb_hist", 4, [([("h", "1")], 7, pb_histogram(5, 12.0, [(0.5, 1), (1.0, 3)]),
                                     None)], "A histogram."))
pb_cases = [
    ("protobuf: every metric type", "PUT", "/metrics/job/pb/instance/i1", pb_good),
    ("protobuf: POST adds a family", "POST", "/metrics/job/pb/instance/i1",
     pb_family("pb_more", 1, [([], 2, field_double(1, 9), None)], "")),
    ("protobuf: a timestamp", "PUT", "/metrics/job/pbts",
     pb_family("pb_ts", 1, [([], 2, field_double(1, 1), 1700000000000)])),
    ("protobuf: a gauge whose value is a counter", "PUT", "/metrics/job/pbkind",
     pb_family("pb_kind", 1, [([], 3, field_double(1, 1), None)])),
    ("protobuf: a summary with a quantile label", "PUT", "/metrics/job/pbq",
     pb_family("pb_q", 2, [([("quantile", "0.5")], 4, pb_summary(1, 1, []), None)])),
    ("protobuf: invalid label name", "PUT", "/metrics/job/pbl",
     pb_family("pb_l", 1, [([("a-b", "1")], 2, field_double(1, 1), None)])),
    ("protobuf: type clash with a text push", "PUT", "/metrics/job/pbclash",
     pb_family("pb_gauge", 0, [([], 3, field_double(1, 1), None)])),
    ("protobuf: truncated message", "PUT", "/metrics/job/pbtrunc", pb_good[:-7]),
]
for desc, method, path, body in pb_cases:
    sp_, bp = req(P, method, path, body, PB_CT)
    sg_, bg = req(g, method, path, body, PB_CT)
    ok(sp_ == sg_, f"{desc}: promlet {sp_}, Pushgateway {sg_}", f"promlet: {bp}\npushgateway: {bg}")
ok('pb_hist_bucket{h="1",instance="i1",job="pb",le="+Inf"} 5' in metrics(P),
   "protobuf histogram shown with its +Inf bucket")

mp = {x for x in pushed(metrics(P), True) if not x.startswith("# HELP hv ")}
mg = {x for x in pushed(metrics(g), True) if not x.startswith("# HELP hv ")}
ok(mp == mg, "after the 400 cases: /metrics of the pushed groups equal Pushgateway's",
   diff(mp, mg))


def fail_time(base, grp):
    for l in metrics(base).splitlines():
        if l.startswith("push_failure_time_seconds{") and grp in l:
            return float(l.rsplit(" ", 1)[1])
    return None


for grp in ('job="b"', 'job="ts"', 'job="sy"', 'job="own"'):
    ok((fail_time(P, grp) or 0) > 0 and (fail_time(g, grp) or 0) > 0,
       f"push_failure_time_seconds set for {{{grp}}} on both",
       (fail_time(P, grp), fail_time(g, grp)))
ok(fail_time(P, 'job="testjob",instance="testinstance"') in (None, 0.0),
   "a parse error does not set push_failure_time_seconds")
text = metrics(P)
ok('m1{instance="",job="mm2"} 5' in text and 'm2{instance="",job="mm2"}' not in text,
   "PUT replaced the whole group")
ok('another_metric{instance="testinstance",job="testjob"} 42' in text,
   "body's job/instance overridden by the grouping key")
ok('some_metric{instance="testinstance",job="test/job"} 1' in text,
   "job@base64 decoded, body's job overwritten")

# --- framed snappy (Pushgateway >= 1.6 reads it; Debian's 1.5.1 does not, so promlet only) ---
def crc32c(data):
    c = 0xffffffff
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0x82f63b78 if c & 1 else c >> 1
    return c ^ 0xffffffff


def framed(data, corrupt=False):
    import snappy
    import struct
    out = b"\xff\x06\x00\x00sNaPpY"
    for i in range(0, len(data), 65536):
        part = data[i:i + 65536]
        c = crc32c(part)
        masked = (((c >> 15) | (c << 17)) + 0xa282ead8) & 0xffffffff
        if corrupt:
            masked ^= 1
        comp = snappy.compress(part)
        chunk = struct.pack("<I", masked) + comp
        out += b"\x00" + struct.pack("<I", len(chunk))[:3] + chunk
    return out


big = b"".join(b"framed_metric{i=\"%d\"} %d\n" % (i, i) for i in range(5000))
st, b = req(P, "PUT", "/metrics/job/framed", framed(big), {"Content-Encoding": "snappy"})
ok(st == 200 and 'framed_metric{i="4999",instance="",job="framed"} 4999' in metrics(P),
   f"a framed-snappy push of {len(big)} bytes (several chunks): {st}", b)
st, b = req(P, "PUT", "/metrics/job/framed", framed(b"x 1\n", corrupt=True),
            {"Content-Encoding": "snappy"})
ok(st == 400 and b.count("\n") == 1, f"a framed-snappy chunk with a bad CRC: {st}", b)
req(P, "DELETE", "/metrics/job/framed")

# --- pushed samples are in the store at push time -------------------------------------------
st, _, fed = http("GET", f"http://{P}/federate?" + urllib.parse.urlencode(
    {"match[]": '{job="webserver"}'}))
fed = fed.decode()
ok(st == 200 and "system_runtime_threadpool_queue_length{instance=\"webserver:5000\","
   "job=\"webserver\"} 43 " in fed, "pushed samples reach the store (seen by /federate)", fed)
ok(re.search(r'^push_time_seconds\{instance="webserver:5000",job="webserver"\} \S+ \d+$', fed,
             re.M) is not None, "push_time_seconds is stored too", fed)
st, _, fed = http("GET", f"http://{P}/federate?" + urllib.parse.urlencode(
    {"match[]": 'some_metric{job="testjob"}'}))
ok(b'instance="testinstance"' in fed and b'instance=""' not in fed,
   "empty grouping values are not stored as labels (Prometheus semantics)")

# --- wipe -----------------------------------------------------------------------------------
st, _ = req(P, "PUT", "/api/v1/admin/wipe")
ok(st == 202 and not pushed(metrics(P)), "PUT /api/v1/admin/wipe drops every group", st)

# --- persistence across a restart -----------------------------------------------------------
d = tmpdir()
pf = os.path.join(d, "push.state")
cfg = f"push:\n  persistence_file: {pf}\n  persistence_interval: 1h\n"
q = Promlet(cfg)
for path, body in ((f"/metrics/job/webserver/instance/webserver:5000", experiment_body()),
                   ("/metrics/job/x/path@base64/L3Zhci90bXA", b'# HELP e "esc\\\\ \\n"\ne{a="q\\"\\n"} 1\n'),
                   ("/metrics/job/y", b"# TYPE s summary\ns{quantile=\"0.5\"} 1\ns_sum 2\ns_count 3\n")):
    req(q.addr, "PUT", path, body)
req(q.addr, "PUT", "/metrics/job/y2", b"# TYPE s gauge\ns 1\n")  # fails: sets a failure time
before = pushed(metrics(q.addr), True)
jb = json.loads(http("GET", q.url("/api/v1/metrics"))[2])["data"]
rc = q.stop()
ok(rc == 0 and os.path.exists(pf) and not os.path.exists(pf + ".in_progress"),
   "persistence file written on stop (tmp + rename)", rc)
q2 = Promlet(cfg)
after = pushed(metrics(q2.addr), True)
ok(before == after and len(before) > 20, f"groups restored after a restart ({len(after)} lines)",
   diff(after, before))
ja = json.loads(http("GET", q2.url("/api/v1/metrics"))[2])["data"]
pt = lambda data: sorted((json.dumps(x["labels"], sort_keys=True),
                          x["push_time_seconds"]["metrics"][0]["value"],
                          x["push_failure_time_seconds"]["metrics"][0]["value"]) for x in data)
ok(pt(jb) == pt(ja), "push and failure times restored exactly", (pt(jb), pt(ja)))
q2.stop()

# --- persistence on an interval, while running -------------------------------------------------
pf2 = os.path.join(tmpdir(), "push.state")
r = Promlet(f"push:\n  persistence_file: {pf2}\n  persistence_interval: 1s\n")
req(r.addr, "PUT", "/metrics/job/interval", b"interval_metric 7\n")
deadline = time.time() + 15
while time.time() < deadline and not os.path.exists(pf2):
    time.sleep(0.2)
ok(os.path.exists(pf2) and "interval_metric" in open(pf2).read() and r.proc.poll() is None,
   "push.persistence_interval writes the file while running")
r.stop()

# --- group TTL ------------------------------------------------------------------------------
t = Promlet("push:\n  group_ttl: 2s\n")
req(t.addr, "PUT", "/metrics/job/short", b"ttl_metric 1\n")
ok("ttl_metric{" in metrics(t.addr), "a group is there right after its push")
deadline = time.time() + 15
while time.time() < deadline and "ttl_metric{" in metrics(t.addr):
    time.sleep(0.5)
ok("ttl_metric{" not in metrics(t.addr), "push.group_ttl drops a group not pushed for that long")
t.stop()
# --- back-to-back pushes: the last one wins in the store too ---------------------------------
# (regression: two pushes within one millisecond used to collide at one timestamp, and the
# store kept the first value)
u = Promlet("")
for i in range(50):
    req(u.addr, "PUT", "/metrics/job/burst", f"burst_metric {i}\n".encode())
st, _, body = http("GET", f"http://{u.addr}/api/v1/query?query=burst_metric")
res = json.loads(body)["data"]["result"] if st == 200 else []
ok(len(res) == 1 and res[0]["value"][1] == "49",
   "50 pushes back to back: the store (and so the rules) see the last value", res)
u.stop()
done()
