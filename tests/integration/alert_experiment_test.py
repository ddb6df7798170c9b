# SPDX-License-Identifier: Apache-2.0
"""The experiment's configuration end to end: promlet with ../shared/seed/alert_rules.yml,
evaluation every 1 s and a webhook (the scaling service's receiver); the service's pushes as
it sends them; the webhook gets `ThreadPool Spike` firing, then resolved, in Alertmanager's
payload shape."""
import json
import os

import plib
from alertlib import Receiver, fingerprint, push, push_available

SEED = os.path.join(os.environ["SHARED"], "seed")
PAYLOADS = os.path.join(os.environ["SHARED"], "payloads")


def service_body(queue):
    """What the .NET service POSTs after every request (one HELP line is empty after the
    name, as the seed README notes)."""
    g = {"max_worker_threads": 32767, "available_worker_threads": 32760,
         "busy_worker_threads": 7, "max_completion_port_threads": 1000,
         "available_completion_port_threads": 1000, "busy_completion_port_threads": 0,
         "system_runtime_threadpool_queue_length": queue, "system_runtime_cpu_usage": 55,
         "process_number_of_threads": 40}
    out = []
    for k, v in g.items():
        out.append(f"# HELP {k} " + ("" if k == "busy_worker_threads" else f"{k} gauge"))
        out.append(f"# TYPE {k} gauge")
        out.append(f"{k} {v}")
    return "\n".join(out) + "\n"


rx = Receiver()
d = plib.tmpdir()
with open(os.path.join(d, "promlet.yml"), "w") as f:
    f.write(f"""global:
  evaluation_interval: 1s
rule_files: ['{SEED}/alert_rules.yml']
alerting:
  webhook_configs:
  - url: {rx.url}
    send_resolved: true
""")
p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"), args=["--no-collector.cpu"])
if p.addr is not None and not push_available(p):
    p.stop()
    plib.skip_all("this build has no push API (POST /metrics/job/...)")
plib.ok(p.addr is not None, "promlet starts with the experiment's rules", p.logtext())
job = "webserver/instance/webserver:5000"
plib.ok(push(p, job, service_body(12)) in (200, 202), "the service's push is accepted")
plib.ok(push(p, job, service_body(55)) in (200, 202), "queue length 55 pushed")
plib.ok(rx.wait(lambda b: any(x["groupLabels"].get("alertname") == "ThreadPool Spike" and
                               x["status"] == "firing" for x in b)), "ThreadPool Spike fires")
plib.ok(push(p, job, service_body(3)) in (200, 202), "queue length 3 pushed")
plib.ok(rx.wait(lambda b: any(x["groupLabels"].get("alertname") == "ThreadPool Spike" and
                               x["status"] == "resolved" for x in b)), "ThreadPool Spike resolves")
spike = [x for x in rx.bodies() if x["groupLabels"].get("alertname") == "ThreadPool Spike"]
plib.ok([x["status"] for x in spike] == ["firing", "resolved"], "one firing, one resolved",
        [x["status"] for x in spike])

# Field for field against what the real Alertmanager sent the scaler.
with open(os.path.join(PAYLOADS, "alertmanager_webhook_firing.json")) as f:
    ref = json.load(f)
got = spike[0]
plib.ok(list(got) == list(ref), "top-level fields and order as Alertmanager's", list(got))
plib.ok(list(got["alerts"][0]) == list(ref["alerts"][0]), "alert fields and order",
        list(got["alerts"][0]))
labels = {"alertname": "ThreadPool Spike", "instance": "webserver:5000", "job": "webserver",
          "severity": "critical"}
a = got["alerts"][0]
plib.ok(a["labels"] == ref["alerts"][0]["labels"] == labels, "labels as Alertmanager's", a)
plib.ok(a["fingerprint"] == ref["alerts"][0]["fingerprint"] == fingerprint(labels),
        "fingerprint identical to the real Alertmanager's", a["fingerprint"])
plib.ok(got["groupKey"] == ref["groupKey"] and got["groupLabels"] == ref["groupLabels"] and
        got["version"] == "4" and got["commonLabels"] == ref["commonLabels"],
        "groupKey, groupLabels, commonLabels, version", got)
plib.ok(a["annotations"] == {"summary": "High system_runtime_threadpool_queue_length observed",
                             "description": "system_runtime_threadpool_queue_length has reached 40."},
        "annotations from the rule", a["annotations"])
hdr = {k.lower(): v for k, v in rx.got[0][2].items()}
plib.ok(hdr.get("content-type") == "application/json", "Content-Type application/json", hdr)
p.stop()
plib.done()
