# SPDX-License-Identifier: Apache-2.0
"""query_range of the experiment's queries over 15 minutes at a 5 s step, against promlet
and Prometheus 2.42 holding the same data (fed by remote write), in one run: latency and
CPU per query for each, and the CPU ratio. Prints figures; asserts nothing about time.

Run: meson test -C build --benchmark --suite bench query_vs_prometheus -v
 or: BUILD_ROOT=build SHARED=../shared PYTHONPATH=tests/integration \\
     /usr/bin/python3 tests/bench/query_bench.py [iterations]"""
import http.client
import os
import shutil
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from plib import Promlet, free_port, start_peer, tmpdir  # noqa: E402
from plib import http as http_call  # noqa: E402
import query_data as qd  # noqa: E402


def cpu_seconds(pid):
    """utime + stime of the whole process, in seconds: it includes threads that have exited
    (promlet offloads heavy queries to worker threads), at clock-tick resolution, hence the
    many iterations."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(base, path, pid, iterations, keepalive):
    """(mean latency s, CPU s per query) over iterations sequential requests, each on a new
    connection (as exportmetrics.py's requests.get) or all on one kept-alive connection (as
    Grafana's HTTP client)."""
    host, port = base.split("//")[1].split(":")
    conn = [None]

    def get():
        if conn[0] is None or not keepalive:
            conn[0] = http.client.HTTPConnection(host, int(port), timeout=60)
        conn[0].request("GET", path)
        r = conn[0].getresponse()
        body = r.read()
        if not keepalive:
            conn[0].close()
        if r.status != 200:
            raise RuntimeError(f"{path}: HTTP {r.status} {body[:200]!r}")

    get()  # warm-up
    c0, t0 = cpu_seconds(pid), time.perf_counter()
    for _ in range(iterations):
        get()
    t1, c1 = time.perf_counter(), cpu_seconds(pid)
    if conn[0] is not None:
        conn[0].close()
    return (t1 - t0) / iterations, (c1 - c0) / iterations


def main():
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    if not shutil.which("prometheus"):
        print("# SKIP: prometheus not installed")
        return 0
    shared = os.environ.get("SHARED", os.path.join(os.environ.get("SOURCE_ROOT", "."), "..",
                                                   "shared"))
    port = free_port()
    data = tmpdir()
    with open(os.path.join(data, "prometheus.yml"), "w") as f:
        f.write("global: {}\n")
    prom = start_peer(["prometheus", f"--config.file={data}/prometheus.yml",
                       f"--storage.tsdb.path={data}/tsdb", f"--web.listen-address=127.0.0.1:{port}",
                       "--enable-feature=native-histograms", "--web.enable-remote-write-receiver"],
                      f"http://127.0.0.1:{port}/-/ready")
    pl = Promlet("", ["--promql.compat=v2"])
    if pl.addr is None or http_call("POST", pl.url("/api/v1/write"), b"", qd.RW_HEADERS)[0] == 404:
        print("# SKIP: this promlet build has no remote-write receiver")
        return 0

    end = (int(time.time()) // 5 * 5 - 10) * 1000
    chunks = qd.split_by_time(qd.build(shared, end, minutes=15), 60000)
    for chunk in chunks:
        body = qd.encode_write_request(chunk)
        for base in (pl.url(""), f"http://127.0.0.1:{port}"):
            st = http_call("POST", f"{base}/api/v1/write", body, qd.RW_HEADERS)[0]
            if st != 204:
                raise RuntimeError(f"remote write to {base}: HTTP {st}")

    prom_base = f"http://127.0.0.1:{port}"
    for keepalive in (False, True):
        print(f"# query_range over 15 min at 5 s step, {iterations} sequential requests each, "
              f"{'one kept-alive connection' if keepalive else 'a new connection per request'}")
        print(f"# {'query':<62} {'promlet ms':>10} {'cpu ms':>7} {'prom ms':>8} {'cpu ms':>7} "
              f"{'cpu ratio':>9}")
        tot_p = tot_q = 0.0
        for q in qd.QUERIES:
            path = "/api/v1/query_range?" + urllib.parse.urlencode(
                {"query": q, "start": (end - 900000) / 1000, "end": end / 1000, "step": "5"})
            lat_p, cpu_p = run(pl.url(""), path, pl.proc.pid, iterations, keepalive)
            lat_q, cpu_q = run(prom_base, path, prom.pid, iterations, keepalive)
            tot_p += cpu_p
            tot_q += cpu_q
            ratio = f"1/{cpu_q / cpu_p:.1f}" if cpu_p > 0 else "n/a"
            name = q if len(q) <= 62 else q[:59] + "..."
            print(f"# {name:<62} {lat_p * 1e3:10.3f} {cpu_p * 1e3:7.3f} {lat_q * 1e3:8.3f} "
                  f"{cpu_q * 1e3:7.3f} {ratio:>9}")
        print(f"# all {len(qd.QUERIES)} queries: promlet CPU {tot_p * 1e3:.3f} ms, Prometheus CPU "
              f"{tot_q * 1e3:.3f} ms per round: promlet uses 1/{tot_q / tot_p:.1f} of "
              f"Prometheus's CPU")
    pl.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
