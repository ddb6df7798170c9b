# SPDX-License-Identifier: Apache-2.0
"""Notification and group options: a webhook's max_alerts (truncatedAlerts) and
send_resolved: false, a group's limit (the rule errors and sends nothing), and removing a rule
on reload (its ALERTS series go stale)."""
import json
import os
import time
import urllib.parse

import plib
from alertlib import FakeProc, Receiver

TWO = ('label_replace(node_load1, "w", "a", "", "") > 40 or '
       'label_replace(node_load1, "w", "b", "", "") > 40')
RULES = f"""groups:
- name: two
  interval: 1s
  rules:
  - alert: Two
    expr: '{TWO}'
- name: limited
  interval: 1s
  limit: 1
  rules:
  - alert: Limited
    expr: '{TWO}'
"""

ra, rb = Receiver(), Receiver()
proc = FakeProc()
d = plib.tmpdir()
with open(os.path.join(d, "rules.yml"), "w") as f:
    f.write(RULES)
with open(os.path.join(d, "promlet.yml"), "w") as f:
    f.write(f"""global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  webhook_configs:
  - url: {ra.url}
    max_alerts: 1
    send_resolved: false
  - url: {rb.url}
""")
p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"),
                 args=[proc.arg(), "--web.enable-lifecycle"])
plib.ok(p.addr is not None, "promlet starts", p.logtext())

proc.set_load(50)
plib.ok(rb.wait(lambda b: len(b) >= 1) and ra.wait(lambda b: len(b) >= 1),
        "both webhooks get the firing group")
b = rb.bodies()[0]
plib.ok(len(b["alerts"]) == 2 and b["truncatedAlerts"] == 0 and
        sorted(a["labels"]["w"] for a in b["alerts"]) == ["a", "b"], "two alerts in one group", b)
plib.ok(b["commonLabels"] == {"alertname": "Two"}, "commonLabels: only what both share", b)
a = ra.bodies()[0]
plib.ok(len(a["alerts"]) == 1 and a["truncatedAlerts"] == 1, "max_alerts: 1 truncates", a)
plib.ok(all(x["groupLabels"]["alertname"] == "Two" for x in ra.bodies() + rb.bodies()),
        "the limited group sends nothing", [x["groupLabels"] for x in ra.bodies() + rb.bodies()])
rules = json.loads(p.get("/api/v1/rules")[2])["data"]["groups"]
lim = [g for g in rules if g["name"] == "limited"][0]["rules"][0]
plib.ok(lim["health"] == "err" and "limit" in lim["lastError"] and lim["alerts"] == [],
        "a group over its limit: the rule errors", lim)

proc.set_load(1)
plib.ok(rb.wait(lambda b: any(x["status"] == "resolved" for x in b)), "default webhook gets resolved")
time.sleep(1.5)
plib.ok(len(ra.bodies()) == 1, "send_resolved: false gets no resolved notification",
        [x["status"] for x in ra.bodies()])

# Removing the rule on reload: its ALERTS series go stale at once.
proc.set_load(50)
rb.wait(lambda b: sum(1 for x in b if x["status"] == "firing") >= 2)


def query(expr):
    st, _, body = p.get("/api/v1/query?query=" + urllib.parse.quote(expr))
    return json.loads(body)["data"]["result"] if st == 200 else None


if query("ALERTS") is not None:
    before = query('ALERTS{alertname="Two"}')
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write("groups: []\n")
    st, _, _ = p.post("/-/reload")
    time.sleep(0.5)
    after = query('ALERTS{alertname="Two"}')
    plib.ok(st == 200 and len(before) == 2 and after == [],
            "a removed rule's ALERTS series are marked stale", (st, before, after))
    plib.ok(json.loads(p.get("/api/v1/rules")[2])["data"]["groups"] == [], "rules API empty")
p.stop()
plib.done()
