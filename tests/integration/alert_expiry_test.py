# SPDX-License-Identifier: Apache-2.0
"""promlet's own webhooks when a rule stops sending its alerts, without any Alertmanager: a
rule whose evaluation fails and one over its group limit. As Alertmanager would, the webhook
resolves their firing alerts once the endsAt of the last send has passed (once, however
often events evaluate the failing rules), and fires them anew when the rules recover: the
failing rule's alert with its original startsAt, the limited rule's as a new alert."""
import json
import os
import time

import plib
import rwlib
from alertlib import Receiver, ts

RULES = """groups:
- name: fail
  interval: 1s
  rules:
  - alert: E_Fail
    expr: e_a * on(k) group_left e_b > 0
- name: lim
  interval: 1s
  limit: 1
  rules:
  - alert: E_Limit
    expr: e_l > 0
"""
NAMES = ("E_Fail", "E_Limit")


def main():
    rx = Receiver()
    d = plib.tmpdir()
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write(RULES)
    with open(os.path.join(d, "promlet.yml"), "w") as f:
        f.write(f"""global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  resend_delay: 1s
  webhook_configs:
  - url: {rx.url}
""")
    p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"),
                     args=["--collector.disable-defaults"])
    if not plib.ok(p.addr is not None, "promlet starts with the rules", p.logtext()):
        plib.done()

    def write(series):
        st = p.post("/api/v1/write", rwlib.body(series), headers=rwlib.HEADERS)[0]
        return st == 204

    def s(labels, v):
        return rwlib.series(labels, [(v, int(time.time() * 1000))])

    def alerts(name, status=None):
        """The (arrival, alert) of every notification of the group, oldest first."""
        with rx.lock:
            got = list(rx.got)
        return [(t, b["alerts"]) for t, b, _ in got if b["groupLabels"].get("alertname") == name
                and (status is None or b["status"] == status)]

    def counts():
        return {n: len(alerts(n)) for n in NAMES}

    # Both rules fire.
    plib.ok(write([s([("__name__", "e_a"), ("k", "1")], 1),
                   s([("__name__", "e_b"), ("k", "1"), ("r", "1")], 1),
                   s([("__name__", "e_l"), ("i", "1")], 1)]), "the samples are accepted")
    plib.ok(rx.wait(lambda b: all(alerts(n, "firing") for n in NAMES)), "both rules fire",
            rx.bodies())
    first = {n: alerts(n, "firing")[0][1] for n in NAMES}
    plib.ok(all(len(first[n]) == 1 for n in NAMES), "one alert each", first)

    # E_Fail's expr fails (many-to-many), E_Limit exceeds its limit: neither sends its alert
    # any more; the webhook resolves each once the endsAt of its last send has passed.
    t_fail = time.time()
    plib.ok(write([s([("__name__", "e_b"), ("k", "1"), ("r", "2")], 1),
                   s([("__name__", "e_l"), ("i", "2")], 1)]), "the failing samples are accepted")
    plib.ok(rx.wait(lambda b: all(alerts(n, "resolved") for n in NAMES), timeout=20),
            "both alerts resolve while their rules fail", rx.bodies())
    rules = json.loads(p.get("/api/v1/rules")[2])
    health = {r["name"]: r["health"] for g in rules["data"]["groups"] for r in g["rules"]}
    plib.ok(health == {"E_Fail": "err", "E_Limit": "err"}, "both rules are failing", health)
    for n in NAMES:
        got = alerts(n, "resolved")
        t_arr, res = got[0] if got else (0, [{}])
        a, f = res[0], first[n][0]
        plib.ok(len(res) == 1 and a.get("status") == "resolved" and
                a.get("fingerprint") == f["fingerprint"] and a.get("labels") == f["labels"] and
                a.get("annotations") == f["annotations"] and a.get("startsAt") == f["startsAt"],
                f"{n}: the resolved alert is the firing one", (res, f))
        ends = ts(a.get("endsAt", "1970-01-01T00:00:00Z"))
        plib.ok(t_fail < ends <= t_arr, f"{n}: endsAt is the last send's, before the webhook",
                (t_fail, a.get("endsAt"), t_arr))

    # Samples keep coming: event evaluations of the failing rules send nothing more.
    before = counts()
    for i in range(20):
        write([s([("__name__", "e_a"), ("k", "1")], 1), s([("__name__", "e_l"), ("i", "1")], 1)])
        time.sleep(0.1)
    time.sleep(1.2)
    plib.ok(counts() == before == {"E_Fail": 2, "E_Limit": 2},
            "no further notification while the rules keep failing", (before, counts()))

    # The rules recover: the alerts fire anew.
    t_ok = int(time.time() * 1000) / 1000  # whole ms, as evaluation timestamps are
    plib.ok(write([s([("__name__", "e_b"), ("k", "1"), ("r", "2")], rwlib.STALE_NAN),
                   s([("__name__", "e_l"), ("i", "2")], rwlib.STALE_NAN)]),
            "the recovering samples are accepted")
    plib.ok(rx.wait(lambda b: all(len(alerts(n, "firing")) == 2 for n in NAMES)),
            "both alerts fire again", rx.bodies())
    again = {n: alerts(n, "firing")[-1][1] for n in NAMES}
    api = json.loads(p.get("/api/v1/alerts")[2])["data"]["alerts"]
    active = {x["labels"]["alertname"]: x["activeAt"] for x in api}
    a = again["E_Fail"][0]
    plib.ok(len(again["E_Fail"]) == 1 and a["fingerprint"] == first["E_Fail"][0]["fingerprint"]
            and a["startsAt"] == first["E_Fail"][0]["startsAt"] and
            a["endsAt"] == "0001-01-01T00:00:00Z",
            "E_Fail fires anew with its original startsAt (the alert lived on in the rule)",
            (again["E_Fail"], first["E_Fail"]))
    a = again["E_Limit"][0]
    plib.ok(len(again["E_Limit"]) == 1 and
            a["fingerprint"] == first["E_Limit"][0]["fingerprint"] and
            ts(a["startsAt"]) >= t_ok and ts(a["startsAt"]) == ts(active.get("E_Limit", "1970-01-01T00:00:00Z")),
            "E_Limit fires as a new alert (dropped over the limit): startsAt is its new activeAt",
            (again["E_Limit"], active))
    rc = p.stop()
    plib.ok(rc == 0, "promlet exits cleanly", (rc, p.logtext()[-2000:]))
    plib.done()


main()
