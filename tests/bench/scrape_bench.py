#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# Scrape cost of promlet vs prometheus-node-exporter, side by side, same collectors, gzip on.
"""Usage: scrape_bench.py [N]   (BUILD_ROOT points at the meson build dir; N defaults to 1000)

For each server: N sequential GETs of /metrics over one keep-alive connection with
Accept-Encoding: gzip; server CPU seconds from /proc/PID/stat (utime+stime) across the N
scrapes, latency p50/p99 as seen by the client, VmRSS after the N scrapes. Then promlet again
with the cgroup collector over a generated 200-cgroup v2 tree. Prints promlet/node_exporter
ratios (goal: CPU <= 0.1, RSS <= 0.2). Numbers only; nothing here asserts on timing."""
import http.client
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

COLLECTORS = ["cpu", "diskstats", "entropy", "filefd", "filesystem", "loadavg", "meminfo",
              "netdev", "netstat", "pressure", "sockstat", "stat", "textfile", "time", "uname",
              "vmstat"]
TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / TICK  # utime, stime (fields 14, 15)


def rss_bytes(pid, field="VmRSS:"):
    """VmRSS (all resident pages) or RssAnon (private heap/stack, without shared libraries)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1]) * 1024
    return 0


def wait_up(port, deadline=15.0):
    end = time.time() + deadline
    while time.time() < end:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/metrics")
            c.getresponse().read()
            c.close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("server on port %d did not answer" % port)


def bench(name, cmd, port, n):
    log = open(os.devnull, "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=log, start_new_session=True)
    try:
        wait_up(port)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        lat = []
        size = 0
        c0 = cpu_seconds(p.pid)
        for _ in range(n):
            t0 = time.perf_counter()
            conn.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"})
            r = conn.getresponse()
            body = r.read()
            lat.append(time.perf_counter() - t0)
            if r.getheader("Content-Encoding") != "gzip":
                raise RuntimeError("%s did not gzip" % name)
            size = len(body)
        c1 = cpu_seconds(p.pid)
        rss = rss_bytes(p.pid)
        anon = rss_bytes(p.pid, "RssAnon:")
        conn.close()
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    lat.sort()
    return {"name": name, "cpu": c1 - c0, "p50": lat[len(lat) // 2],
            "p99": lat[min(len(lat) - 1, int(len(lat) * 0.99))], "rss": rss, "anon": anon,
            "gz": size}


def make_cgroups(root, count):
    """A cgroup v2 tree like a Docker host's: count containers under system.slice."""
    os.makedirs(root)
    with open(os.path.join(root, "cgroup.controllers"), "w") as f:
        f.write("cpuset cpu io memory pids\n")
    for i in range(count):
        d = os.path.join(root, "system.slice", "docker-%064x.scope" % (i + 1))
        os.makedirs(d)
        files = {
            "cpu.stat": "usage_usec %d\nuser_usec %d\nsystem_usec %d\nnr_periods %d\n"
                        "nr_throttled 3\nthrottled_usec 1500\n" % (i * 1000, i * 600, i * 400, i),
            "cpu.max": "50000 100000\n",
            "memory.current": "%d\n" % (1 << 26),
            "memory.max": "%d\n" % (1 << 28),
            "memory.stat": "anon 40000000\nfile 20000000\nactive_file 1000\n"
                           "inactive_file 5000000\n",
            "io.stat": "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
            "pids.current": "7\n", "pids.max": "1024\n",
            "cpu.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\n"
                            "full avg10=0.00 avg60=0.00 avg300=0.00 total=3\n",
            "memory.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                               "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
            "io.pressure": "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
                           "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
        }
        for k, v in files.items():
            with open(os.path.join(d, k), "w") as f:
                f.write(v)


def in_process(dump, flags, n):
    """CPU of collectors + encoder + gzip alone (tests/collectors/scrape_dump, no HTTP, no
    daemon modules): what this part of promlet costs per scrape."""
    p = subprocess.Popen([dump, "--repeat=%d" % n, "--gzip"] + flags,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        raise RuntimeError("scrape_dump failed")
    return ru.ru_utime + ru.ru_stime


def show(r):
    print("  %-22s cpu %6.3f s/1000 scrapes  p50 %6.2f ms  p99 %6.2f ms  rss %5.1f MiB "
          "(anon %5.1f)  body %6d B gz" % (r["name"], r["cpu"] * 1000 / N, r["p50"] * 1e3,
                                           r["p99"] * 1e3, r["rss"] / 2**20, r["anon"] / 2**20,
                                           r["gz"]))


N = int(sys.argv[1]) if len(sys.argv) > 1 else 1000


def main():
    build = os.environ.get("BUILD_ROOT", "build")
    promlet = os.path.join(build, "exporter", "promlet")
    ne = shutil.which("prometheus-node-exporter")
    if not ne or not os.access(promlet, os.X_OK):
        print("SKIP: prometheus-node-exporter or promlet missing")
        return 77
    tmp = tempfile.mkdtemp(prefix="promlet-bench-")
    try:
        tf = os.path.join(tmp, "textfile")
        os.mkdir(tf)
        cfg = os.path.join(tmp, "promlet.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  evaluation_interval: 1s\n")
        flags = ["--collector.disable-defaults"] + ["--collector." + c for c in COLLECTORS] + \
                ["--collector.textfile.directory=" + tf]
        port = free_port()
        rn = bench("node_exporter", [ne, "--web.listen-address=127.0.0.1:%d" % port] + flags,
                   port, N)
        port = free_port()
        rp = bench("promlet", [promlet, "--web.listen-address=127.0.0.1:%d" % port,
                               "--config.file=" + cfg] + flags, port, N)
        cg = os.path.join(tmp, "cgroup")
        make_cgroups(cg, 200)
        port = free_port()
        rc = bench("promlet + 200 cgroups", [promlet, "--web.listen-address=127.0.0.1:%d" % port,
                                             "--config.file=" + cfg, "--collector.cgroup",
                                             "--collector.cgroup.path=" + cg] + flags, port, N)
        dump = os.path.join(build, "tests", "collectors", "scrape_dump")
        solo = in_process(dump, flags, N) if os.access(dump, os.X_OK) else None
        print("scrape bench: %d scrapes each, gzip, collectors: %s" % (N, ",".join(COLLECTORS)))
        for r in (rn, rp, rc):
            show(r)
        for r in (rp, rc):
            print("  ratio %-28s cpu %.3f  rss %.3f (anon %.3f)  p50 %.3f  p99 %.3f  "
                  "(goal cpu <= 0.1, rss <= 0.2)" % (
                      r["name"] + "/node_exporter", r["cpu"] / rn["cpu"] if rn["cpu"] else 0,
                      r["rss"] / rn["rss"], r["anon"] / rn["anon"] if rn["anon"] else 0,
                      r["p50"] / rn["p50"], r["p99"] / rn["p99"]))
        if solo is not None:
            print("  collectors+encoder+gzip alone (scrape_dump, in process): cpu %.3f s/1000 "
                  "scrapes, ratio to node_exporter %.3f" % (solo * 1000 / N, solo / rn["cpu"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
