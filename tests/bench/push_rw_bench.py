#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Push and remote-write ingestion cost of promlet vs Pushgateway and Prometheus, side by side.
"""Usage: push_rw_bench.py [PUSHES] [BATCHES]   (BUILD_ROOT points at the meson build dir)

Push: PUSHES sequential POSTs of the experiment's body (tests/unit/proto/push_body.h, the
queue-length value changing every push) to /metrics/job/webserver/instance/webserver:5000
over one keep-alive connection, first to promlet, then to prometheus-pushgateway.
Remote write: BATCHES snappy WriteRequests of 500 series each (1000 distinct series, the
halves alternating), a fresh timestamp per batch, pre-encoded, sent over one keep-alive
connection to promlet's and to Prometheus' (--web.enable-remote-write-receiver)
/api/v1/write. For each server: CPU seconds from /proc/PID/stat (utime+stime) over the run,
requests or samples per second as the client saw them, VmRSS afterwards. Prints the
promlet/incumbent ratios (goals: CPU <= 0.2 of each, RSS after 1000 series <= 0.1 of
Prometheus'). Numbers only; nothing here asserts on timing."""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import rwlib  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK


def rss_bytes(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        m = re.search(field + r":\s+(\d+)", f.read())
    return int(m.group(1)) * 1024 if m else 0


def wait_up(port, path, deadline=20.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            c.close()
            if r.status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server on port %d did not answer" % port)


def start(cmd, port, ready, d):
    log = open(os.path.join(d, os.path.basename(cmd[0]) + ".log"), "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d)
    try:
        wait_up(port, ready)
    except RuntimeError:
        p.kill()
        raise
    return p


def stop(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def experiment_body():
    with open(os.path.join(ROOT, "tests", "unit", "proto", "push_body.h")) as f:
        text = f.read()
    lits = re.findall(r'^\s*"((?:[^"\\]|\\.)*)"', text.split("push_body[] =", 1)[1], re.M)
    return "".join(lits).encode().decode("unicode_escape")


def run_pushes(pid, port, n):
    body = experiment_body()
    bodies = [body.replace("system_runtime_threadpool_queue_length 43",
                           "system_runtime_threadpool_queue_length %d" % (i % 97)).encode()
              for i in range(n)]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    path = "/metrics/job/webserver/instance/webserver:5000"
    hdr = {"Content-Type": "text/plain"}
    bad = 0
    c0, t0 = cpu_seconds(pid), time.time()
    for b in bodies:
        c.request("POST", path, b, hdr)
        r = c.getresponse()
        r.read()
        bad += r.status != 200
    t1, c1 = time.time(), cpu_seconds(pid)
    c.close()
    return {"cpu": c1 - c0, "wall": t1 - t0, "rss": rss_bytes(pid), "bad": bad}


def rw_bodies(batches):
    """Pre-encoded requests: 1000 series, 500 per batch, timestamps strictly increasing."""
    labels = [b"".join(rwlib.field_len(1, rwlib.label(k, v)) for k, v in
                       (("__name__", "bench_requests_total"), ("instance", "bench:1"),
                        ("job", "bench"), ("series", "s%04d" % i)))
              for i in range(1000)]
    base = int(time.time() * 1000) - batches - 1000
    out = []
    for k in range(batches):
        ts = base + k
        half = (k % 2) * 500
        pb = bytearray()
        for i in range(half, half + 500):
            s = labels[i] + rwlib.field_len(2, rwlib.sample(float(k + i), ts))
            pb += rwlib.field_len(1, s)
        out.append(rwlib.snappy.compress(bytes(pb)))
    return out


def run_rw(pid, port, bodies):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    bad = 0
    rss1000 = anon1000 = 0
    c0, t0 = cpu_seconds(pid), time.time()
    for k, b in enumerate(bodies):
        c.request("POST", "/api/v1/write", b, rwlib.HEADERS)
        r = c.getresponse()
        r.read()
        bad += r.status // 100 != 2
        if k == 1:  # both halves written once: 1000 series
            rss1000, anon1000 = rss_bytes(pid), rss_bytes(pid, "RssAnon")
    t1, c1 = time.time(), cpu_seconds(pid)
    c.close()
    return {"cpu": c1 - c0, "wall": t1 - t0, "rss": rss_bytes(pid), "bad": bad,
            "rss1000": rss1000, "anon1000": anon1000, "anon": rss_bytes(pid, "RssAnon")}


def main():
    pushes = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    batches = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    build = os.environ.get("BUILD_ROOT", os.path.join(ROOT, "build"))
    promlet = os.path.join(build, "exporter", "promlet")
    pgw = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    prom = shutil.which("prometheus")
    d = tempfile.mkdtemp(prefix="promlet-bench-")
    cfg = os.path.join(d, "promlet.yml")
    with open(cfg, "w") as f:
        f.write("storage: {retention: 15m, max_series: 100000}\n")
    procs = []
    try:
        res = {}
        # --- push ---
        port = free_port()
        p = start([promlet, "--config.file=" + cfg, "--web.listen-address=127.0.0.1:%d" % port],
                  port, "/-/ready", d)
        procs.append(p)
        res["push_promlet"] = run_pushes(p.pid, port, pushes)
        stop(p)
        if pgw:
            port = free_port()
            p = start([pgw, "--web.listen-address=127.0.0.1:%d" % port], port, "/-/ready", d)
            procs.append(p)
            res["push_pgw"] = run_pushes(p.pid, port, pushes)
            stop(p)
        # --- remote write ---
        bodies = rw_bodies(batches)
        port = free_port()
        p = start([promlet, "--config.file=" + cfg, "--web.listen-address=127.0.0.1:%d" % port],
                  port, "/-/ready", d)
        procs.append(p)
        res["rw_promlet"] = run_rw(p.pid, port, bodies)
        stop(p)
        if prom:
            port = free_port()
            with open(os.path.join(d, "prometheus.yml"), "w") as f:
                f.write("global: {scrape_interval: 1m}\n")
            p = start([prom, "--config.file=" + os.path.join(d, "prometheus.yml"),
                       "--storage.tsdb.path=" + os.path.join(d, "tsdb"),
                       "--web.listen-address=127.0.0.1:%d" % port,
                       "--web.enable-remote-write-receiver"], port, "/-/ready", d)
            procs.append(p)
            res["rw_prom"] = run_rw(p.pid, port, bodies)
            stop(p)
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(d, ignore_errors=True)

    print("# push: %d POSTs of the experiment's body (9 gauges) over one connection" % pushes)
    for k, name in (("push_promlet", "promlet"), ("push_pgw", "pushgateway")):
        if k in res:
            r = res[k]
            print("%-12s cpu/push %8.1f us  pushes/s %8.0f  rss %6.1f MiB  non-200 %d" %
                  (name, r["cpu"] / pushes * 1e6, pushes / r["wall"], r["rss"] / 2**20, r["bad"]))
    n = batches * 500
    print("# remote write: %d batches x 500 series (1000 distinct), %d samples" % (batches, n))
    for k, name in (("rw_promlet", "promlet"), ("rw_prom", "prometheus")):
        if k in res:
            r = res[k]
            print("%-12s cpu/sample %6.3f us  samples/s %10.0f  non-2xx %d" %
                  (name, r["cpu"] / n * 1e6, n / r["wall"], r["bad"]))
            print("%-12s rss after 1000 series %6.1f MiB (anon %6.1f), at the end %6.1f MiB "
                  "(anon %6.1f)" % (name, r["rss1000"] / 2**20, r["anon1000"] / 2**20,
                                    r["rss"] / 2**20, r["anon"] / 2**20))
    if "push_pgw" in res:
        a, b = res["push_promlet"], res["push_pgw"]
        print("ratio push cpu promlet/pushgateway %.3f (goal <= 0.2); pushes/s %.1fx" %
              (a["cpu"] / max(b["cpu"], 1e-9), b["wall"] / max(a["wall"], 1e-9)))
    if "rw_prom" in res:
        a, b = res["rw_promlet"], res["rw_prom"]
        print("ratio rw cpu promlet/prometheus %.3f (goal <= 0.2); samples/s %.1fx" %
              (a["cpu"] / max(b["cpu"], 1e-9), b["wall"] / max(a["wall"], 1e-9)))
        print("ratio rss after 1000 series promlet/prometheus %.3f (goal <= 0.1); anonymous "
              "memory only %.3f; at the end %.3f" %
              (a["rss1000"] / max(b["rss1000"], 1), a["anon1000"] / max(b["anon1000"], 1),
               a["rss"] / max(b["rss"], 1)))
        floor = library_floor(build)
        if floor:
            print("# library floor: an empty program linked against promlet's shared libraries "
                  "holds %.1f MiB (tests/bench/rss_floor.c)" % (floor / 2**20))
            print("ratio rss above the library floor after 1000 series promlet/prometheus %.3f "
                  "(%.1f MiB)" % ((a["rss1000"] - floor) / max(b["rss1000"], 1),
                                  (a["rss1000"] - floor) / 2**20))


def library_floor(build):
    """VmRSS of tests/bench/rss_floor (promlet's libraries, nothing else), or 0."""
    exe = os.path.join(build, "tests", "bench", "rss_floor")
    if not os.path.exists(exe):
        return 0
    p = subprocess.Popen([exe], stdout=subprocess.PIPE, text=True)
    try:
        pid = int(p.stdout.readline())
        time.sleep(0.3)
        return rss_bytes(pid)
    finally:
        p.kill()
        p.wait()


if __name__ == "__main__":
    main()
