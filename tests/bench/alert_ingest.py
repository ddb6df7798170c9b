# SPDX-License-Identifier: Apache-2.0
"""Ingestion cost of event-driven rules: push throughput (keep-alive POSTs of 10 gauges from
tests/bench/push_load) into promlet with no rules, and with 100 rules selecting the pushed
metric names (each push marks them dirty and wakes the engine). Prints pushes/s and the cost.

Usage: BUILD_ROOT=build PYTHONPATH=tests/integration /usr/bin/python3 tests/bench/alert_ingest.py"""
import os
import statistics
import subprocess
import sys

import plib

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 2
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 7
THREADS = 2
LOAD = os.path.join(os.environ["BUILD_ROOT"], "tests", "bench", "push_load")


def promlet(nrules):
    d = plib.tmpdir()
    rules = ["groups:", "- name: bench", "  rules:"]
    for i in range(nrules):
        rules += [f"  - alert: Never{i}", f"    expr: bench_m{i % 10} > 1e12 + {i}"]
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write("\n".join(rules) + "\n" if nrules else "groups: []\n")
    with open(os.path.join(d, "promlet.yml"), "w") as f:
        f.write("global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n")
    return plib.Promlet(config_path=os.path.join(d, "promlet.yml"),
                        args=["--collector.disable-defaults"])


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) + int(rest[12])


def rate(p):
    """(pushes/s, promlet CPU seconds per push) of one round."""
    host, port = p.addr.rsplit(":", 1)
    c0 = cpu_ticks(p.proc.pid)
    out = subprocess.run([LOAD, host, port, str(THREADS), str(SECONDS)], capture_output=True,
                         text=True, timeout=SECONDS + 30).stdout.split()
    c1 = cpu_ticks(p.proc.pid)
    per_s = float(out[0])
    return per_s, (c1 - c0) / os.sysconf("SC_CLK_TCK") / max(per_s * SECONDS, 1)


# Both daemons run side by side and the rounds alternate, so load changes on the machine hit
# both alike.
ps = {n: promlet(n) for n in (0, 100)}
rates = {0: [], 100: []}
cpus = {0: [], 100: []}
for _ in range(ROUNDS):
    for n in (0, 100):
        r, c = rate(ps[n])
        rates[n].append(r)
        cpus[n].append(c)
st, _, body = ps[100].get("/metrics")
ev = [l for l in body.decode().splitlines() if l.startswith("promlet_rule_event_evaluations_total")]
for n in (0, 100):
    ps[n].stop()
res = {n: statistics.median(rates[n]) for n in rates}
for n in (0, 100):
    print(f"# {n:3d} rules: {res[n]:.0f} pushes/s (median of {ROUNDS} x {SECONDS:g} s, "
          f"{THREADS} keep-alive clients, 10 gauges per push; rounds {[round(x) for x in rates[n]]})",
          flush=True)
print(f"# with 100 rules: {ev[0] if ev else ''}", flush=True)
cpu = {n: statistics.median(cpus[n]) for n in cpus}
print(f"# promlet CPU per push (all threads, median): {cpu[0] * 1e6:.1f} us with 0 rules, "
      f"{cpu[100] * 1e6:.1f} us with 100 rules", flush=True)
# Each round runs the two daemons back to back: the ratio within a round cancels the slow
# swings of the machine's load that the medians above still carry.
paired = statistics.median(1 - rates[100][i] / rates[0][i] for i in range(ROUNDS))
print(f"# ingestion cost of 100 rules: {(1 - res[100] / res[0]) * 100:.1f}% of the push rate "
      f"(medians), {paired * 100:.1f}% (median of per-round pairs), "
      f"{(cpu[100] / cpu[0] - 1) * 100:.1f}% more CPU per push (goal < 10%)", flush=True)
