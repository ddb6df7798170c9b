# SPDX-License-Identifier: Apache-2.0
"""Parts of the alert-generator compliance scenarios (../shared/conformance/alert_generator,
SPEC.md section 9) with time compressed 30x (group interval 30s -> 1s, `for` 3m -> 6s,
6m -> 12s, 15s -> 1s), samples remote-written live: the spec's rules.yaml loads; ZeroFor
fires at once and SmallFor pends first; the template annotations read exactly as the tester
expects; NewAlerts_OrderCheck_Rule2 fires in the very evaluation where Rule1's second variant
fires (it reads the ALERTS series Rule1 wrote moments earlier) with the labels and annotation
the tester expects; values print in Go's 'e' format. Not the full tester (no resend windows,
no 15-minute retention)."""
import json
import os
import re
import threading
import time

import plib
from alertlib import Receiver, slot_offset_ms

try:
    import rwlib
except ImportError as e:
    plib.skip_all(f"rwlib unavailable: {e}")

SPEC = os.path.join(os.environ["CONFORMANCE"], "alert_generator")
with open(os.path.join(SPEC, "rules.yaml")) as f:
    rules = f.read()
for a, b in (("interval: 30s", "interval: 1s"), ("for: 3m", "for: 6s"),
             ("for: 6m", "for: 12s"), ("for: 15s", "for: 1s")):
    rules = rules.replace(a, b)

rx = Receiver()
am = Receiver()  # stands in for the tester's alert receiver: POST /api/v2/alerts on any path
d = plib.tmpdir()
with open(os.path.join(d, "rules.yaml"), "w") as f:
    f.write(rules)
with open(os.path.join(d, "promlet.yml"), "w") as f:
    f.write(f"""global:
  evaluation_interval: 1s
rule_files: [rules.yaml]
alerting:
  resend_delay: 2s
  alertmanagers:
  - static_configs:
    - targets: ['127.0.0.1:{am.port}']
  webhook_configs:
  - url: {rx.url}
""")
p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"), args=["--collector.disable-defaults"])
st, _, _ = p.post("/api/v1/write", rwlib.body([]), headers=rwlib.HEADERS)
if p.addr is not None and st == 404:
    p.stop()
    plib.skip_all("this build has no remote-write receiver")
plib.ok(p.addr is not None, "promlet loads the spec's rules.yaml", p.logtext())

S = "alert_generator_test_suite"


def key(alertname, group, **extra):
    return tuple(sorted([("__name__", S), ("alertname", alertname), ("rulegroup", group),
                         *extra.items()]))


O1 = key("NewAlerts_OrderCheck_Rule1", "NewAlerts_OrderCheck", variant="one")
O2 = key("NewAlerts_OrderCheck_Rule1", "NewAlerts_OrderCheck", variant="two")
ZF = key("ZeroFor_SmallFor_ZeroFor", "ZeroFor_SmallFor")
SF = key("ZeroFor_SmallFor_SmallFor", "ZeroFor_SmallFor")
TPL = [tuple(sorted([("__name__", S), ("rulegroup", "ZeroFor_SmallFor"), ("for", "template"),
                     ("id", str(100 + i))])) for i in (1, 2, 3)]
values = {O1: 5, O2: 5, ZF: 5, SF: 5, TPL[0]: 1, TPL[1]: 2, TPL[2]: 3}
lock = threading.Lock()
stop = threading.Event()
errors = []


def writer():
    """Writes every series every 0.5 s with the current wall-clock timestamp (live)."""
    while not stop.is_set():
        t = int(time.time() * 1000)
        with lock:
            ser = [rwlib.series(list(k), [(v, t)]) for k, v in values.items()]
        st, _, body = p.post("/api/v1/write", rwlib.body(ser), headers=rwlib.HEADERS)
        if st != 204:
            errors.append((st, body))
        stop.wait(0.5)


def setv(k, v):
    with lock:
        values[k] = v


def ts(x):
    """RFC 3339 (trimmed or fixed fractions alike) to unix seconds."""
    import datetime
    return datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()


def api_alerts():
    return json.loads(p.get("/api/v1/alerts")[2])["data"]["alerts"]


def find(alerts, name, **labels):
    return [a for a in alerts if a["labels"]["alertname"] == name and
            all(a["labels"].get(k) == v for k, v in labels.items())]


def wait_for(fn, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    return None


th = threading.Thread(target=writer, daemon=True)
th.start()
time.sleep(1.5)
plib.ok(api_alerts() == [], "nothing active while every value is low")

# ZeroFor_SmallFor: both series go to 15.
setv(ZF, 15)
setv(SF, 15)
zf = wait_for(lambda: find(api_alerts(), "ZeroFor_SmallFor_ZeroFor"))
plib.ok(zf and zf[0]["state"] == "firing", "ZeroFor fires in the evaluation that creates it", zf)
plib.ok(zf and zf[0]["value"] == "1.5e+01", "value printed as Go's 'e' format", zf)
ann = zf[0]["annotations"] if zf else {}
plib.ok(ann.get("template_test") == "1.049M 1Mi 2m 15s 95.9% 2022-01-25 12:36:43 +0000 UTC",
        "ZeroFor template_test annotation", ann)
plib.ok(ann.get("template_query_test") == "Args are: foo bar 99. first_id:101,101:1,102:2,103:3,",
        "query() template annotation at the evaluation time", ann)
sf = wait_for(lambda: [a for a in find(api_alerts(), "ZeroFor_SmallFor_SmallFor")
                       if a["state"] == "firing"])
plib.ok(bool(sf), "SmallFor fires after its for", sf)
sfa = sf[0]["annotations"] if sf else {}
plib.ok(sfa.get("template_test") ==
        "This Part IS TESTING the strings. ::1 127.0.0.1. 7815. replaced text. .",
        "SmallFor template_test annotation", sfa)
nz = wait_for(lambda: [b for b in rx.bodies()
                       if b["groupLabels"]["alertname"] == "ZeroFor_SmallFor_SmallFor"])
if nz:
    a = nz[0]["alerts"][0]
    plib.ok(ts(a["startsAt"]) > ts(sf[0]["activeAt"]), "SmallFor's startsAt is FiredAt, after activeAt",
            (a["startsAt"], sf[0]["activeAt"]))
else:
    plib.ok(False, "SmallFor firing notification arrives")
pend_seen = any(b["groupLabels"]["alertname"] == "ZeroFor_SmallFor_SmallFor" and
                b["status"] != "firing" for b in rx.bodies())
plib.ok(not pend_seen, "no notification for the pending phase")

# NewAlerts_OrderCheck: variant one, then variant two; Rule2 fires with two's firing.
setv(O1, 11)
one = wait_for(lambda: [a for a in find(api_alerts(), "NewAlerts_OrderCheck_Rule1", variant="one")
                        if a["state"] == "firing"], timeout=40)
plib.ok(bool(one), "Rule1 variant one fires after for")
plib.ok(not find(api_alerts(), "NewAlerts_OrderCheck_Rule2"), "Rule2 inactive with one variant")
setv(O2, 11)
two = wait_for(lambda: [a for a in find(api_alerts(), "NewAlerts_OrderCheck_Rule1", variant="two")
                        if a["state"] == "firing"], timeout=40)
plib.ok(bool(two), "Rule1 variant two fires after for")
r2 = wait_for(lambda: [b for b in rx.bodies()
                       if b["groupLabels"]["alertname"] == "NewAlerts_OrderCheck_Rule2"])
r1 = [a for b in rx.bodies() if b["groupLabels"]["alertname"] == "NewAlerts_OrderCheck_Rule1"
      for a in b["alerts"] if a["labels"].get("variant") == "two" and a["status"] == "firing"]
if r2 and r1:
    a = r2[0]["alerts"][0]
    plib.ok(ts(a["startsAt"]) == ts(r1[0]["startsAt"]),
            "Rule2 fires in the same evaluation as Rule1 variant two", (a, r1[0]))
    plib.ok(a["labels"] == {"alertname": "NewAlerts_OrderCheck_Rule2", "alertstate": "firing",
                            "foo": "baz", "ba_dum": "tss", "rulegroup": "NewAlerts_OrderCheck"},
            "Rule2's labels: ALERTS labels minus __name__ and variant, rule labels win", a)
    plib.ok(a["annotations"] == {"description": "Based on ALERTS. Old alertname was "
                                 "NewAlerts_OrderCheck_Rule1. foo was bar."},
            "Rule2's annotation reads the query result's labels", a)
else:
    plib.ok(False, "Rule1 variant two and Rule2 firing notifications arrive", rx.bodies())

# Alertmanager notifications of ZeroFor (SPEC section 4, resend delay scaled to 2 s).
setv(ZF, 5)
time.sleep(5.5)


def zf_sends():
    out = []
    for t, b, _ in am.got:
        for a in b:
            if a["labels"]["alertname"] == "ZeroFor_SmallFor_ZeroFor":
                out.append((t, a))
    return out


sends = zf_sends()
firing = [(t, a) for t, a in sends if ts(a["endsAt"]) > t + 1]
resolved = [(t, a) for t, a in sends if ts(a["endsAt"]) <= t + 1]
plib.ok(len(firing) >= 2 and len(resolved) >= 2, "firing sends, resends, resolved re-sends",
        [(round(t, 1), a["endsAt"]) for t, a in sends])
plib.ok(all(ts(a["startsAt"]) == ts(zf[0]["activeAt"]) for _, a in sends),
        "startsAt = FiredAt (= activeAt for for: 0) in every send", sends[:2])
plib.ok(all(7 <= ts(a["endsAt"]) - t <= 8.5 for t, a in firing),
        "firing endsAt = evaluation + 4 x max(resend_delay, interval)",
        [ts(a["endsAt"]) - t for t, a in firing])
gaps = [b[0] - a[0] for a, b in zip(firing, firing[1:])]
plib.ok(gaps and all(2.0 < g < 4.0 for g in gaps), "re-sent when more than resend_delay passed",
        gaps)
plib.ok(len({a["endsAt"] for _, a in resolved}) == 1, "resolved re-sends keep endsAt = ResolvedAt",
        [a["endsAt"] for _, a in resolved])
plib.ok(all("__name__" not in a["labels"] and "alertstate" not in a["labels"] and
            a.get("generatorURL", "").startswith("http") for _, a in sends),
        "labels exactly the alert's; generatorURL a URL", sends[:1])

groups = json.loads(p.get("/api/v1/rules")[2])["data"]["groups"]
plib.ok(sorted(g["name"] for g in groups) == ["NewAlerts_OrderCheck", "PendingAndFiringAndResolved",
                                              "PendingAndResolved_AlwaysInactive",
                                              "ZeroFor_SmallFor"] and
        all(g["interval"] == 1 for g in groups) and
        sum(len(g["rules"]) for g in groups) == 7 and
        all(r["health"] == "ok" and r.get("lastError", "") == "" for g in groups for r in g["rules"]),
        "/api/v1/rules: 4 groups, 7 rules, healthy", groups)
stop.set()
th.join(timeout=5)
plib.ok(not errors, "every remote write was accepted", errors[:3])


def event_evals(q):
    for line in q.get("/metrics")[2].decode().splitlines():
        if line.startswith("promlet_rule_event_evaluations_total"):
            return float(line.split()[-1])
    return None


plib.ok((event_evals(p) or 0) > 0, "by default remote writes trigger event evaluations")
p.stop()

# --no-rules.event-evaluation (what the full real-time driver uses, tests/alertgen): groups are
# evaluated on their interval only, as Prometheus -- writes trigger no evaluation, and the
# interval evaluations still create and fire the alerts.
q = plib.Promlet(config_path=os.path.join(d, "promlet.yml"),
                 args=["--collector.disable-defaults", "--no-rules.event-evaluation"])
plib.ok(q.addr is not None, "promlet starts with --no-rules.event-evaluation", q.logtext())
now_ms = int(time.time() * 1000)
ser = [rwlib.series(list(ZF), [(15, now_ms)]), rwlib.series(list(SF), [(15, now_ms)])]
st, _, _ = q.post("/api/v1/write", rwlib.body(ser), headers=rwlib.HEADERS)
plib.ok(st == 204, "remote write accepted", st)
sfq = wait_for(lambda: [a for a in json.loads(q.get("/api/v1/alerts")[2])["data"]["alerts"]
                        if a["labels"]["alertname"] == "ZeroFor_SmallFor_SmallFor" and
                        a["state"] == "firing"])
plib.ok(bool(sfq), "interval evaluations create and fire the alerts")
# Interval evaluations are stamped with their slot's time, as Prometheus: a late timer must
# not shift activeAt and so lengthen `for` by an interval. Slots are whole intervals plus the
# group's offset (Prometheus's Group.EvalTimestamp: hash of file and name, here in ms).
grp = [g for g in json.loads(q.get("/api/v1/rules")[2])["data"]["groups"]
       if any(r["name"] == "ZeroFor_SmallFor_SmallFor" for r in g["rules"])]
off = slot_offset_ms(grp[0]["file"], grp[0]["name"], grp[0]["interval"]) if grp else None
m = re.search(r"T\d\d:\d\d:\d\d(?:\.(\d+))?Z$", sfq[0]["activeAt"]) if sfq else None
plib.ok(m is not None and int((m.group(1) or "0").ljust(3, "0")[:3]) == off,
        "activeAt of an interval evaluation is its slot time", (sfq[:1], off))
plib.ok(event_evals(q) == 0, "no event evaluation", event_evals(q))
q.stop()
plib.done()
