#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# promlet's host collectors against the real prometheus-node-exporter on this machine (TAP).
"""Starts prometheus-node-exporter (Debian, 1.5) and promlet on free 127.0.0.1 ports with the
same collectors (plus --collector.processes), scrapes both and checks that every
node_exporter family is in promlet with the same type, HELP and label names, that static
values agree, and that promtool finds nothing in promlet's output that it does not find in
node_exporter's for the same families."""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

COLLECTORS = ["cpu", "diskstats", "entropy", "filefd", "filesystem", "loadavg", "meminfo",
              "netdev", "netstat", "pressure", "processes", "sockstat", "stat", "textfile",
              "time", "uname", "vmstat"]

n = 0
failed = 0


def ok(cond, msg, detail=None):
    global n, failed
    n += 1
    print(("ok" if cond else "not ok") + " %d - %s" % (n, msg))
    if not cond:
        failed += 1
        for line in (detail or "").splitlines()[:40]:
            print("#   " + line)
    sys.stdout.flush()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def fetch(port, deadline=15.0):
    end = time.time() + deadline
    last = None
    while time.time() < end:
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
                return r.read().decode()
        except OSError as e:  # not listening yet
            last = e
            time.sleep(0.1)
    raise RuntimeError("no answer on port %d: %s" % (port, last))


LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)( \S+)?$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse(text):
    """Returns {family: {"type", "help", "labelsets": set of tuples of names, "samples": {}}}."""
    fams = {}
    cur = None
    for line in text.splitlines():
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            cur = fams.setdefault(name, {"type": "untyped", "help": None, "labelsets": set(),
                                         "samples": {}})
            cur["help"] = help_
        elif line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            cur = fams.setdefault(name, {"type": "untyped", "help": None, "labelsets": set(),
                                         "samples": {}})
            cur["type"] = typ
        elif line and not line.startswith("#"):
            m = LINE.match(line)
            if not m:
                continue
            name = m.group(1)
            fam = fams.get(name)
            if fam is None:
                for sfx in ("_bucket", "_sum", "_count"):
                    if name.endswith(sfx) and name[:-len(sfx)] in fams:
                        fam = fams[name[:-len(sfx)]]
            if fam is None:
                fam = fams.setdefault(name, {"type": "untyped", "help": None,
                                             "labelsets": set(), "samples": {}})
            labels = tuple(LABEL.findall(m.group(3) or ""))
            fam["labelsets"].add(tuple(sorted(k for k, _ in labels)))
            fam["samples"][(name, labels)] = float(m.group(4))
    return fams


def promtool_problems(text, families):
    """promtool check metrics lines for the given families only."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                       capture_output=True, timeout=60)
    out = (p.stdout + p.stderr).decode()
    probs = set()
    for line in out.splitlines():
        # "node_entropy_available_bits use base unit ..." (older promtool: "name: ...")
        name = line.split(None, 1)[0].rstrip(":") if line.strip() else ""
        if name in families:
            probs.add(line.strip())
    return probs


def ours(name):
    """Families node_exporter's own process adds, not the collectors'."""
    return not (name.startswith(("go_", "process_", "promhttp_")) or
                name == "node_exporter_build_info")


def start(cmd, log):
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def stop(p):
    if p and p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=10)


def main():
    build = os.environ.get("BUILD_ROOT", "build")
    ne_bin = shutil.which("prometheus-node-exporter")
    promlet = os.path.join(build, "exporter", "promlet")
    if not ne_bin or not shutil.which("promtool") or not os.access(promlet, os.X_OK):
        print("1..0 # SKIP prometheus-node-exporter, promtool or promlet missing")
        return 0
    tmp = tempfile.mkdtemp(prefix="promlet-ne-")
    procs = []
    try:
        tfdir = os.path.join(tmp, "textfile")
        os.mkdir(tfdir)
        with open(os.path.join(tfdir, "app.prom"), "w") as f:
            f.write("# HELP app_up App is up.\n# TYPE app_up gauge\napp_up{job=\"x\"} 1\n")
        flags = ["--collector.disable-defaults"] + ["--collector." + c for c in COLLECTORS] + \
                ["--collector.textfile.directory=" + tfdir]
        cfg = os.path.join(tmp, "promlet.yml")
        with open(cfg, "w") as f:
            f.write("global:\n  evaluation_interval: 1s\n")
        ne_port, pl_port = free_port(), free_port()
        ne_log = open(os.path.join(tmp, "ne.log"), "w")
        pl_log = open(os.path.join(tmp, "promlet.log"), "w")
        procs.append(start([ne_bin, "--web.listen-address=127.0.0.1:%d" % ne_port] + flags,
                           ne_log))
        procs.append(start([promlet, "--web.listen-address=127.0.0.1:%d" % pl_port,
                            "--config.file=" + cfg] + flags, pl_log))
        ne_text = fetch(ne_port)
        pl_text = fetch(pl_port)
        ne, pl = parse(ne_text), parse(pl_text)
        ok(len(ne) > 50, "node_exporter answered with %d families" % len(ne))
        ok(len(pl) > 50, "promlet answered with %d families" % len(pl))

        missing, wrong_type, wrong_help, wrong_labels = [], [], [], []
        for name, fam in sorted(ne.items()):
            if not ours(name):
                continue
            if name not in pl:
                missing.append(name)
                continue
            if pl[name]["type"] != fam["type"]:
                wrong_type.append("%s: %s vs %s" % (name, pl[name]["type"], fam["type"]))
            if pl[name]["help"] != fam["help"]:
                wrong_help.append("%s: %r vs %r" % (name, pl[name]["help"], fam["help"]))
            if fam["labelsets"] - pl[name]["labelsets"]:
                wrong_labels.append("%s: %s vs %s" % (name, sorted(pl[name]["labelsets"]),
                                                      sorted(fam["labelsets"])))
        checked = [x for x in ne if ours(x)]
        ok(not missing, "all %d node_exporter families present in promlet" % len(checked),
           "\n".join(missing))
        ok(not wrong_type, "same TYPE for every family", "\n".join(wrong_type))
        ok(not wrong_help, "same HELP for every family", "\n".join(wrong_help))
        ok(not wrong_labels, "same label names for every family", "\n".join(wrong_labels))

        # the same collectors report success in both
        for c in COLLECTORS:
            key = ("node_scrape_collector_success", (("collector", c),))
            a = ne.get("node_scrape_collector_success", {}).get("samples", {}).get(key)
            b = pl.get("node_scrape_collector_success", {}).get("samples", {}).get(key)
            ok(a == b, "collector %s success: promlet %s, node_exporter %s" % (c, b, a))

        def val(fams, name):
            s = fams.get(name, {}).get("samples", {})
            return next(iter(s.values())) if s else None

        a, b = val(pl, "node_memory_MemTotal_bytes"), val(ne, "node_memory_MemTotal_bytes")
        ok(a is not None and a == b, "node_memory_MemTotal_bytes equal (%s, %s)" % (a, b))
        a, b = val(pl, "node_boot_time_seconds"), val(ne, "node_boot_time_seconds")
        ok(a is not None and b is not None and abs(a - b) <= 1,
           "node_boot_time_seconds within 1 s (%s, %s)" % (a, b))
        a, b = val(pl, "node_filefd_maximum"), val(ne, "node_filefd_maximum")
        ok(a is not None and a == b, "node_filefd_maximum equal (%s, %s)" % (a, b))
        a, b = val(pl, "node_processes_max_processes"), val(ne, "node_processes_max_processes")
        ok(a is not None and a == b, "node_processes_max_processes equal (%s, %s)" % (a, b))
        key = ("node_uname_info", None)
        ua = sorted(pl.get("node_uname_info", {}).get("samples", {}))
        ub = sorted(ne.get("node_uname_info", {}).get("samples", {}))
        ok(ua and ua == ub, "node_uname_info labels equal", "%s\n%s" % (ua, ub))
        # series identities of stable families (devices, mounts, cpus) agree exactly
        for fam in ("node_cpu_seconds_total", "node_disk_info", "node_filesystem_device_error",
                    "node_network_receive_bytes_total", "app_up"):
            sa = set(pl.get(fam, {}).get("samples", {}))
            sb = set(ne.get(fam, {}).get("samples", {}))
            ok(sa and sa == sb, "%s: same series" % fam,
               "only promlet: %s\nonly node_exporter: %s" % (sorted(sa - sb), sorted(sb - sa)))

        fams = set(x for x in ne if ours(x))
        pa, pb = promtool_problems(pl_text, fams), promtool_problems(ne_text, fams)
        ok(not (pa - pb), "promtool check metrics: nothing beyond node_exporter's own "
           "(%d shared findings)" % len(pa & pb), "\n".join(sorted(pa - pb)))
        # and promlet's whole output (container_* included) parses for promtool
        p = subprocess.run(["promtool", "check", "metrics"], input=pl_text.encode(),
                           capture_output=True, timeout=60)
        errs = [l for l in (p.stdout + p.stderr).decode().splitlines()
                if "error while linting" in l or "text format parsing error" in l]
        ok(not errs, "promtool parses promlet's full output", "\n".join(errs))
    finally:
        for p in procs:
            stop(p)
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % n)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
