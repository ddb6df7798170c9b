# SPDX-License-Identifier: Apache-2.0
"""Replays recorded runs of the experiment (../shared/seed/traces.csv) live: each run's queue
lengths are pushed one per second into a promlet running the experiment's rules, and the
webhook's firing and resolved notifications must come at the evaluations where
`promtool test rules` (a test file made from the same values at a 1 s interval) says the alerts
fire and resolve, within one evaluation."""
import csv
import math
import os
import re
import shutil
import subprocess
import time

import plib
from alertlib import Receiver, push, push_available

SEED = os.path.join(os.environ["SHARED"], "seed")
RULES = os.path.join(SEED, "alert_rules.yml")
RUNS = [0, 2, 46]  # two baseline runs and a scaled one, each crossing the threshold
SERIES = 'system_runtime_threadpool_queue_length{instance="webserver:5000",job="webserver"}'
ALERTS = ["ThreadPool Spike", "ThreadPoolStarvation"]
STEP = 0.99

if not shutil.which("promtool"):
    plib.skip_all("promtool not installed")

runs = {}
with open(os.path.join(SEED, "traces.csv")) as f:
    for r in csv.DictReader(f):
        runs.setdefault(r["run"], []).append(float(r["queue_length"] or 0))
names = list(runs)


def promtool_timeline(values):
    """Firing state of each alert at eval times 0..n-1 s, as promtool computes it: every
    assertion expects no alert, and the failures list what actually fires."""
    d = plib.tmpdir()
    shutil.copy(RULES, os.path.join(d, "alert_rules.yml"))
    lines = ["rule_files: [alert_rules.yml]", "evaluation_interval: 1s", "tests:",
             "- interval: 1s", "  input_series:", f"  - series: '{SERIES}'",
             "    values: '" + " ".join(f"{v:g}" for v in values) + "'", "  alert_rule_test:"]
    for t in range(len(values)):
        for a in ALERTS:
            lines.append(f"  - {{eval_time: {t}s, alertname: {a}, exp_alerts: []}}")
    with open(os.path.join(d, "t.yml"), "w") as f:
        f.write("\n".join(lines) + "\n")
    r = subprocess.run(["promtool", "test", "rules", "t.yml"], cwd=d, capture_output=True,
                       text=True, timeout=120)
    out = r.stdout + r.stderr
    firing = {a: [False] * len(values) for a in ALERTS}
    for m in re.finditer(r"alertname: (.+?), time: (\d+)s, \n\s+exp:\[\], \n\s+got:\[\n\s+0:", out):
        firing[m.group(1)][int(m.group(2))] = True
    return firing


def transitions(states):
    out, prev = [], False
    for k, s in enumerate(states):
        if s != prev:
            out.append((k, "firing" if s else "resolved"))
        prev = s
    return out


def body_for(v):
    return ("# HELP system_runtime_threadpool_queue_length \n"
            "# TYPE system_runtime_threadpool_queue_length gauge\n"
            f"system_runtime_threadpool_queue_length {v:g}\n")


for ri in RUNS:
    values = runs[names[ri]]
    expect = promtool_timeline(values)
    rx = Receiver()
    d = plib.tmpdir()
    # Only event-driven evaluations (one per push) during the replay: promtool evaluates exactly
    # at the sample instants, and so does an evaluation triggered by a push. An interval
    # evaluation between two pushes would see increase()'s 5 s window without the sample pushed
    # five evaluations earlier (promtool's window holds it on its closed left boundary), a
    # difference of data alignment, not of semantics; a day-long interval keeps it out.
    with open(os.path.join(d, "promlet.yml"), "w") as f:
        f.write(f"""global:
  evaluation_interval: 1d
rule_files: ['{RULES}']
alerting:
  webhook_configs:
  - url: {rx.url}
""")
    p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"),
                     args=["--promql.compat=v2", "--no-collector.cpu"])
    if p.addr is None or not push_available(p):
        p.stop()
        if ri == RUNS[0]:
            plib.skip_all("this build has no push API (POST /metrics/job/...)")
        plib.ok(False, "promlet with push starts", p.logtext())
        continue
    # Pushes come every STEP s, a little under a second: the sample pushed 5 evaluations
    # earlier then lies inside increase()'s 5 s window by 50 ms (room for the evaluation to
    # run after the push), as it does (on the boundary, included) for promtool's samples
    # exactly 1 s apart; at exactly 1 s the scheduling of each evaluation would decide. A
    # `for: 5s` is then met one evaluation later than in promtool (5 x STEP < 5 s), within the
    # one-evaluation tolerance; the 1% extrapolation changes no integer-valued increase that
    # is not exactly 20.
    t0 = time.time() + 0.3
    for i, v in enumerate(values):
        delay = t0 + i * STEP - time.time()
        if delay > 0:
            time.sleep(delay)
        push(p, "webserver/instance/webserver:5000", body_for(v))
    time.sleep(1.5)
    p.stop()
    got = {a: [] for a in ALERTS}
    for t, b, _ in rx.got:
        got[b["groupLabels"]["alertname"]].append((math.floor((t - t0) / STEP), b["status"]))
    for a in ALERTS:
        want = transitions(expect[a])
        live = got[a]
        same = len(want) == len(live) and all(
            ws == ls and abs(wk - lk) <= 1 for (wk, ws), (lk, ls) in zip(want, live))
        plib.ok(same, f"run {names[ri]}: {a} notifications at promtool's evaluations "
                f"({len(want)} transitions)", f"promtool {want}\nlive     {live}")
plib.done()
