# SPDX-License-Identifier: Apache-2.0
"""End-to-end alert latency: from the push of a threshold-crossing sample to the webhook's
arrival. promlet (push -> event-driven evaluation -> webhook) against the classic pipeline
(Pushgateway -> Prometheus scraping and evaluating every 1 s -> Alertmanager with group_wait
1 s -> the same receiver), in the same run. Prints p50/p99; asserts nothing about time.

Usage: BUILD_ROOT=build SHARED=../shared PYTHONPATH=tests/integration \\
       /usr/bin/python3 tests/bench/alert_latency.py [promlet_trials] [classic_trials]"""
import http.client
import http.server
import json
import os
import statistics
import sys
import threading
import time

import plib

N_PROMLET = int(sys.argv[1]) if len(sys.argv) > 1 else 500
N_CLASSIC = int(sys.argv[2]) if len(sys.argv) > 2 else 200
STREAMS = 20  # concurrent alert groups in the classic pipeline (one instance label each)

RULE = """groups:
- name: bench
  rules:
  - alert: QueueHigh
    expr: bench_queue > 40
    labels:
      severity: critical
"""


class Rx:
    """Webhook receiver: signals (instance, status) arrivals with perf_counter times."""

    def __init__(self):
        self.cv = threading.Condition()
        self.events = []
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                t = time.perf_counter()
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                with outer.cv:
                    for a in body["alerts"]:
                        outer.events.append((t, a["labels"].get("instance", ""), a["status"]))
                    outer.cv.notify_all()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.srv.server_address[1]}/alert"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def wait(self, inst, status, after, timeout=30):
        deadline = time.time() + timeout
        with self.cv:
            while time.time() < deadline:
                for t, i, s in self.events:
                    if i == inst and s == status and t >= after:
                        return t
                self.cv.wait(0.05)
        return None


class Pusher:
    def __init__(self, hostport):
        h, p = hostport.rsplit(":", 1)
        self.c = http.client.HTTPConnection(h, int(p), timeout=10)

    def push(self, path, text):
        self.c.request("POST", path, text.encode(), {"Content-Type": "text/plain"})
        r = self.c.getresponse()
        r.read()
        return r.status


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def report(name, lat):
    if not lat:
        print(f"# {name}: no trials", flush=True)
        return
    ms = [x * 1000 for x in lat]
    print(f"# {name}: n={len(ms)} p50={pct(ms, 50):.2f} ms p99={pct(ms, 99):.2f} ms "
          f"min={min(ms):.2f} ms max={max(ms):.2f} ms mean={statistics.mean(ms):.2f} ms",
          flush=True)


def bench_promlet(rx):
    d = plib.tmpdir()
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write(RULE)
    with open(os.path.join(d, "promlet.yml"), "w") as f:
        f.write(f"""global:
  evaluation_interval: 1s
rule_files: [rules.yml]
alerting:
  webhook_configs:
  - url: {rx.url}
""")
    p = plib.Promlet(config_path=os.path.join(d, "promlet.yml"), args=["--no-collector.cpu"])
    pu = Pusher(p.addr)
    lat = []
    path = "/metrics/job/bench/instance/p"
    for _ in range(N_PROMLET):
        # Samples carry the push's millisecond: two pushes of one series within the same
        # millisecond would collide, so the next push waits for a fresh millisecond.
        time.sleep(0.002)
        t0 = time.perf_counter()
        pu.push(path, "bench_queue 50\n")
        t1 = rx.wait("p", "firing", t0)
        if t1 is None:
            print("# promlet: a firing notification did not arrive", flush=True)
            break
        lat.append(t1 - t0)
        time.sleep(0.002)
        t2 = time.perf_counter()
        pu.push(path, "bench_queue 0\n")
        if rx.wait("p", "resolved", t2) is None:
            print("# promlet: a resolved notification did not arrive", flush=True)
            break
    p.stop()
    return lat


def bench_classic(rx):
    d = plib.tmpdir()
    pg, pr, am = plib.free_port(), plib.free_port(), plib.free_port()
    with open(os.path.join(d, "rules.yml"), "w") as f:
        f.write(RULE)
    with open(os.path.join(d, "prometheus.yml"), "w") as f:
        f.write(f"""global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
- job_name: pushgateway
  honor_labels: true
  static_configs: [{{targets: ['127.0.0.1:{pg}']}}]
alerting:
  alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am}']}}]}}]
rule_files: ['{d}/rules.yml']
""")
    with open(os.path.join(d, "am.yml"), "w") as f:
        f.write(f"""route:
  receiver: webhook
  group_by: [alertname, instance]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: webhook
  webhook_configs: [{{url: '{rx.url}', send_resolved: true}}]
""")
    plib.start_peer(["prometheus-pushgateway", f"--web.listen-address=127.0.0.1:{pg}",
                     f"--persistence.file={d}/pg.data"], f"http://127.0.0.1:{pg}/-/ready")
    plib.start_peer(["prometheus-alertmanager", f"--config.file={d}/am.yml",
                     f"--storage.path={d}/am", f"--web.listen-address=127.0.0.1:{am}",
                     "--cluster.listen-address="], f"http://127.0.0.1:{am}/-/ready")
    plib.start_peer(["prometheus", f"--config.file={d}/prometheus.yml",
                     f"--storage.tsdb.path={d}/tsdb", f"--web.listen-address=127.0.0.1:{pr}"],
                    f"http://127.0.0.1:{pr}/-/ready", timeout=60)
    lat, lock = [], threading.Lock()
    per = (N_CLASSIC + STREAMS - 1) // STREAMS

    def stream(k):
        pu = Pusher(f"127.0.0.1:{pg}")
        path = f"/metrics/job/bench/instance/c{k}"
        pu.push(path, "bench_queue 0\n")
        time.sleep(2.5)
        for _ in range(per):
            t0 = time.perf_counter()
            pu.push(path, "bench_queue 50\n")
            t1 = rx.wait(f"c{k}", "firing", t0, timeout=60)
            if t1 is None:
                return
            with lock:
                lat.append(t1 - t0)
            t2 = time.perf_counter()
            pu.push(path, "bench_queue 0\n")
            if rx.wait(f"c{k}", "resolved", t2, timeout=60) is None:
                return
            time.sleep(1.2)  # past group_interval, so the next firing is a fresh notification

    ths = [threading.Thread(target=stream, args=(k,)) for k in range(STREAMS)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    return lat


rx = Rx()
print(f"# alert latency: push of a threshold-crossing sample -> webhook arrival (loopback)",
      flush=True)
lp = bench_promlet(rx)
report("promlet (push -> event evaluation -> webhook)", lp)
lc = bench_classic(rx)
report("classic (Pushgateway -> Prometheus 1s/1s -> Alertmanager group_wait 1s -> webhook)", lc)
if lp and lc:
    print(f"# p50 ratio classic/promlet: {pct(lc, 50) / pct(lp, 50):.0f}x", flush=True)
