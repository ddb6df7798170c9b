# SPDX-License-Identifier: Apache-2.0
"""Event evaluations under a flood of pushes: five groups (interval 1h, so only the event
path evaluates them) select a pushed metric; a bounded flood of pushes exhausts the shared
event budget; the threshold-crossing push that follows still fires every group's alert
(the marks left over budget are evaluated when the budget refills), and every push of the
flood was accepted."""
import http.client
import json
import os
import threading
import time

import plib

GROUPS = 5
rules = ["groups:"]
for g in range(GROUPS):
    rules += [f"- name: g{g}", "  interval: 1h", "  rules:"]
    for i in range(20):
        rules += [f"  - alert: Never{g}_{i}", f"    expr: flood_m > 1e12 + {i}"]
    rules += [f"  - alert: FloodHigh{g}", "    expr: flood_m > 100"]
d = plib.tmpdir()
with open(os.path.join(d, "rules.yml"), "w") as f:
    f.write("\n".join(rules) + "\n")
with open(os.path.join(d, "promlet.yml"), "w") as f:
    f.write("global:\n  evaluation_interval: 1h\nrule_files: [rules.yml]\n")
p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"), args=["--collector.disable-defaults"])
plib.ok(p.addr is not None, "promlet starts with 5 groups of 21 rules", p.logtext())
host, port = p.addr.rsplit(":", 1)


def event_evals():
    st, _, body = p.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith("promlet_rule_event_evaluations_total"):
            return float(line.split()[-1])
    return -1


counts = []


def flood(seconds, limit):
    """Pushes flood_m 1 over one kept-alive connection; bounded by time and count."""
    c = http.client.HTTPConnection(host, int(port), timeout=10)
    sent = bad = 0
    end = time.time() + seconds
    while time.time() < end and sent < limit:
        c.request("POST", "/metrics/job/flood", body=b"flood_m 1\n")
        r = c.getresponse()
        r.read()
        sent += 1
        bad += r.status != 200
    c.close()
    counts.append((sent, bad))


e0 = event_evals()
threads = [threading.Thread(target=flood, args=(2.0, 200000)) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
sent = sum(c[0] for c in counts)
bad = sum(c[1] for c in counts)
plib.ok(sent > 0 and bad == 0, f"all {sent} pushes of the flood answered 200", counts)
e1 = event_evals()
plib.ok(e1 > e0, "the flood was evaluated by the event path", (e0, e1))
plib.ok(e1 - e0 < sent * GROUPS, "and not once per push and group (marks coalesce)",
        (e1 - e0, sent))

st, _, _ = p.post("/metrics/job/flood", b"flood_m 500\n")
plib.ok(st == 200, "the threshold-crossing push is accepted")
firing = set()
deadline = time.time() + 15
while time.time() < deadline and len(firing) < GROUPS:
    st, _, body = p.get("/api/v1/alerts")
    firing = {a["labels"]["alertname"] for a in json.loads(body)["data"]["alerts"]
              if a["state"] == "firing"}
    time.sleep(0.05)
plib.ok(firing == {f"FloodHigh{g}" for g in range(GROUPS)},
        "every group's alert fires from the event path after the flood", sorted(firing))
p.stop()
plib.done()
