# SPDX-License-Identifier: Apache-2.0
"""A webhook receiver that answers 500, then hangs past the timeout, then recovers: once it
recovers every state change has been delivered in order (nothing lost within the queue
bound), and meanwhile pushes kept being accepted."""
import os
import threading
import time

import plib
from alertlib import Receiver, push, push_available

rx = Receiver(hang_s=2.5)
d = plib.tmpdir()
with open(os.path.join(d, "rules.yml"), "w") as f:
    f.write("""groups:
- name: q
  interval: 1s
  rules:
  - alert: QueueHigh
    expr: tp_queue > 40
  - alert: NeverFires
    expr: other_queue > 1e12
""")
with open(os.path.join(d, "promlet.yml"), "w") as f:
    f.write(f"""global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  webhook_configs:
  - url: {rx.url}
    timeout: 1s
""")
p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"), args=["--no-collector.cpu"])
if p.addr is not None and not push_available(p):
    p.stop()
    plib.skip_all("this build has no push API (POST /metrics/job/...)")
plib.ok(p.addr is not None, "promlet starts", p.logtext())

# Background ingestion for the whole outage: a metric a rule selects, so every push also
# wakes the engine. Pushes must keep succeeding whatever the receiver does.
stop = threading.Event()
stats = {"n": 0, "bad": 0, "worst": 0.0}


def pusher():
    i = 0
    while not stop.is_set():
        t0 = time.time()
        st = push(p, "bg", f"other_queue {i}\n")
        dt = time.time() - t0
        stats["n"] += 1
        stats["worst"] = max(stats["worst"], dt)
        if st not in (200, 202):
            stats["bad"] += 1
        i += 1


th = threading.Thread(target=pusher, daemon=True)
th.start()


def flip(v):
    plib.ok(push(p, "svc", f"tp_queue {v}\n") in (200, 202), f"push tp_queue {v}")
    time.sleep(0.4)


# 1: the receiver fails with 500 through two state changes.
rx.set_mode("fail")
flip(50)
flip(1)
time.sleep(1.0)
failing_attempts = rx.attempts
# 2: it hangs past the 1 s timeout through two more.
rx.set_mode("hang")
flip(50)
flip(1)
time.sleep(3.0)
# 3: it recovers.
rx.set_mode("ok")
got = rx.wait(lambda b: len(b) >= 4, timeout=30)
stop.set()
th.join(timeout=10)
bodies = rx.bodies()
plib.ok(got, "every state change is delivered after the receiver recovers", bodies)
plib.ok(failing_attempts >= 2, "the failing receiver was retried", failing_attempts)
seq = [b["status"] for b in bodies]
plib.ok(seq[:4] == ["firing", "resolved", "firing", "resolved"], "delivered in order", seq)
starts = [b["alerts"][0]["startsAt"] for b in bodies[:4] if b["alerts"]]
plib.ok(len(starts) == 4 and starts[0] == starts[1] and starts[2] == starts[3] and
        starts[0] != starts[2], "the two firings are distinct alerts", starts)
plib.ok(len(bodies) == 4, "no duplicate deliveries", seq)
plib.ok(stats["bad"] == 0 and stats["n"] > 50, "pushes were accepted throughout the outage",
        stats)
print(f"# {stats['n']} background pushes during the outage, slowest {stats['worst']*1000:.1f} ms",
      flush=True)
st, _, body = p.get("/metrics")
m = body.decode()
import re
fails = re.search(r'^promlet_notifications_failed_total\{receiver="%s"\} (\d+)' % re.escape(rx.url),
                  m, re.M)
plib.ok(fails and int(fails.group(1)) >= 3, "failed attempts are counted", fails and fails.group(0))
sent = re.search(r'^promlet_notifications_sent_total\{receiver="%s"\} (\d+)' % re.escape(rx.url),
                 m, re.M)
plib.ok(sent and int(sent.group(1)) == 4, "four deliveries counted", sent and sent.group(0))
p.stop()
plib.done()
