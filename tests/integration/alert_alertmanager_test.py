# SPDX-License-Identifier: Apache-2.0
"""The real Alertmanager receives promlet's alerts (POST /api/v2/alerts as Prometheus sends
it): labels with external labels, annotations, startsAt = FiredAt, endsAt = evaluation time
+ 4 x max(resend_delay, interval) while firing, and the resolved alert resolves."""
import datetime
import json
import os
import time

import plib
from alertlib import FakeProc, fingerprint


def ts(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


am_port = plib.free_port()
amd = plib.tmpdir()
with open(os.path.join(amd, "am.yml"), "w") as f:
    f.write("route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n- name: 'null'\n")
try:
    plib.start_peer(["prometheus-alertmanager", f"--config.file={amd}/am.yml",
                     f"--storage.path={amd}/data", f"--web.listen-address=127.0.0.1:{am_port}",
                     "--cluster.listen-address="],
                    f"http://127.0.0.1:{am_port}/-/ready", log_name="am.log")
except (RuntimeError, FileNotFoundError) as e:
    plib.skip_all(f"prometheus-alertmanager unavailable: {e}")

proc = FakeProc()
d = plib.tmpdir()
with open(os.path.join(d, "rules.yml"), "w") as f:
    f.write("""groups:
- name: load
  interval: 1s
  rules:
  - alert: HighLoad
    expr: node_load1 > 40
    labels:
      severity: critical
    annotations:
      summary: "load is {{ $value }}"
      description: "node_load1 has reached 40."
""")
with open(os.path.join(d, "promlet.yml"), "w") as f:
    f.write(f"""global:
  evaluation_interval: 1s
  external_labels:
    site: lab
rule_files: [rules.yml]
alerting:
  resend_delay: 1s
  alertmanagers:
  - static_configs:
    - targets: ['127.0.0.1:{am_port}']
""")
p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"),
                 args=[proc.arg(), "--web.external-url=http://promlet.example:9999"])
plib.ok(p.addr is not None, "promlet starts", p.logtext())


def am_alerts(active=True):
    q = "?active=true&silenced=false&inhibited=false&unprocessed=true"
    if not active:
        q = "?active=false&silenced=false&inhibited=false&unprocessed=false"
    st, _, body = plib.http("GET", f"http://127.0.0.1:{am_port}/api/v2/alerts{q}")
    return json.loads(body) if st == 200 else []


def wait(pred, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    return None


proc.set_load(50)
got = wait(lambda: am_alerts())
plib.ok(bool(got), "Alertmanager lists the firing alert")
a = got[0] if got else {}
labels = {"alertname": "HighLoad", "severity": "critical", "site": "lab"}
plib.ok(a.get("labels") == labels, "labels: alert labels plus external labels", a)
plib.ok(a.get("annotations") == {"summary": "load is 50",
                                 "description": "node_load1 has reached 40."},
        "annotations expanded", a)
plib.ok(a.get("fingerprint") == fingerprint(labels), "Alertmanager's fingerprint matches", a)
ours = json.loads(p.get("/api/v1/alerts")[2])["data"]["alerts"]
plib.ok(ours and ts(a.get("startsAt", "1970-01-01T00:00:00Z")) == ts(ours[0]["activeAt"]),
        "startsAt = FiredAt (= activeAt with no for)", (a, ours))
# Firing: endsAt = last send + 4 x max(resend_delay 1s, interval 1s) = ~4 s ahead, refreshed.
time.sleep(2.5)
a = am_alerts()[0]
left = ts(a["endsAt"]) - time.time()
plib.ok(0 < left <= 4.2, "endsAt is the last send + 4 x resend_delay while firing", (a, left))
plib.ok(a["status"]["state"] == "active" and a.get("generatorURL", "").startswith(
    "http://promlet.example:9999/graph?g0.expr="), "active, generatorURL", a)

proc.set_load(1)
t_drop = time.time()
gone = wait(lambda: not am_alerts())
plib.ok(gone is not None or not am_alerts(), "resolved alert leaves Alertmanager's active list")
res = [x for x in am_alerts(active=False) if x["labels"] == labels]
if not res:
    st, _, body = plib.http("GET", f"http://127.0.0.1:{am_port}/api/v2/alerts")
    res = [x for x in json.loads(body) if x["labels"] == labels]
plib.ok(not res or ts(res[0]["endsAt"]) <= time.time(), "endsAt of the resolved alert is past", res)
st, _, body = p.get("/metrics")
plib.ok(f'promlet_notifications_sent_total{{receiver="http://127.0.0.1:{am_port}/api/v2/alerts"}}'
        in body.decode(), "AM receiver in metrics")
p.stop()
plib.done()
