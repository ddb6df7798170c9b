# SPDX-License-Identifier: Apache-2.0
"""The daemon's skeleton (issue 2): health, readiness, routing errors, body limits,
self metrics checked by the real promtool, config errors at start and on reload."""
import http.client
import os
import shutil
import signal
import subprocess
import time

from plib import Promlet, ok, done, promlet_bin, source_root, tmpdir

GOOD = "global:\n  evaluation_interval: 1s\nstorage: {retention: 15m, max_series: 1000}\n"

# --- shipped config starts and answers -------------------------------------------------------
p = Promlet(config_path=os.path.join(source_root(), "promlet.yml"))
if not ok(p.addr is not None, "promlet starts on the shipped promlet.yml", p.logtext()):
    done()
st, hd, body = p.get("/-/healthy")
ok(st == 200, "/-/healthy answers 200")
st, hd, body = p.get("/-/ready")
ok(st == 200 and b"Ready" in body, "/-/ready answers 200")
st, hd, body = p.get("/nope")
ok(st == 404 and body.count(b"\n") == 1 and hd.get("Content-Type", "").startswith("text/plain"),
   "unknown path: 404 with a one-line text/plain reason", body)
st, hd, body = p.post("/metrics", b"x")
ok(st == 405 and "GET" in hd.get("Allow", ""), "wrong method: 405 with Allow", (st, hd))
st, hd, body = p.get("/-/reload")
ok(st == 405 and "POST" in hd.get("Allow", ""), "GET /-/reload: 405 Allow: POST", (st, hd))
st, hd, body = p.post("/-/reload")
ok(st == 403 and b"Lifecycle API is not enabled" in body,
   "POST /-/reload without --web.enable-lifecycle: 403, as Prometheus", (st, body))

st, hd, body = p.get("/metrics")
text = body.decode()
ok(st == 200 and hd.get("Content-Type", "").startswith("text/plain; version=0.0.4"),
   "/metrics answers text format 0.0.4")
for fam in ["process_cpu_seconds_total", "process_resident_memory_bytes",
            "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
            "process_start_time_seconds", "promlet_build_info",
            "promlet_http_requests_total", "promlet_http_request_duration_seconds_bucket",
            "promlet_store_series", "promlet_store_series_limit_hits_total"]:
    ok(any(l.startswith(fam) for l in text.splitlines()), f"/metrics has {fam}")
ok('promlet_http_requests_total{code="404",handler="other"} 1' in text,
   "the 404 above is counted", [l for l in text.splitlines() if "requests_total" in l])
ok('promlet_http_requests_total{code="405",handler="/metrics"} 1' in text,
   "the 405 above is counted under its handler")

# promtool lints every family; node_exporter's own names (camelCase node_memory_*, _bits in
# entropy) draw complaints that promlet keeps for compatibility. Anything else is ours.
r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
complaints = [l for l in (r.stdout + r.stderr).decode().splitlines() if l.strip()]
ours = [l for l in complaints if not l.startswith("node_")]
ok(not ours, "promtool check metrics: no complaint about promlet's own families", ours)

st, hd, gz = p.get("/metrics", headers={"Accept-Encoding": "gzip"})
ok(st == 200 and hd.get("Content-Encoding") == "gzip" and gz[:2] == b"\x1f\x8b",
   "/metrics is gzipped when asked")

# --- body limit ---------------------------------------------------------------------------------
q = Promlet(GOOD, args=["--web.max-request-bytes=1KiB", "--web.enable-lifecycle"])
st, hd, body = q.post("/-/reload", b"x" * 4096)
ok(st == 413 and body.count(b"\n") == 1, "a body over --web.max-request-bytes gets 413", body)
host, port = q.addr.rsplit(":", 1)
c = http.client.HTTPConnection(host, int(port), timeout=10)
c.request("POST", "/-/reload", body=iter([b"y" * 1000] * 5), encode_chunked=True)
r = c.getresponse()
ok(r.status == 413, "a chunked body over the limit (no Content-Length) gets 413", r.status)
c.close()
c = http.client.HTTPConnection(host, int(port), timeout=10)
c.request("GET", "/-/healthy", body=b"z" * 100000)
r = c.getresponse()
ok(r.status == 200, "a body sent with a GET is discarded, not refused", r.status)
c.close()
st, hd, body = q.get("/-/healthy")
ok(st == 200, "the server still answers after a 413")

# --- reload --------------------------------------------------------------------------------------
with open(q.config, "w") as f:
    f.write("global:\n  evaluation_interval: 1s\n  bogus_key: 1\n")
st, hd, body = q.post("/-/reload")
ok(st == 500 and b"promlet.yml:3:3" in body and b"bogus_key" in body,
   "POST /-/reload of a broken config: 500 naming file:line:col and the key", body)
ok("bogus_key" in q.logtext(), "the failed reload is logged")
st, hd, body = q.get("/metrics")
ok(b"promlet_config_last_reload_successful 0" in body, "reload failure shows in /metrics")
st, hd, body = q.get("/-/healthy")
ok(st == 200, "the old config keeps running after a failed reload")
with open(q.config, "w") as f:
    f.write("global:\n  evaluation_interval: 1x\n")
q.proc.send_signal(signal.SIGHUP)
deadline = time.time() + 5
while time.time() < deadline and "not a valid duration" not in q.logtext():
    time.sleep(0.05)
ok("promlet.yml:2:24" in q.logtext(), "SIGHUP with a bad duration logs file:line:col",
   q.logtext()[-500:])
ok(q.proc.poll() is None, "promlet survives a failed SIGHUP reload")
with open(q.config, "w") as f:
    f.write(GOOD)
st, hd, body = q.post("/-/reload")
ok(st == 200, "reload of a fixed config succeeds", body)
st, hd, body = q.get("/metrics")
ok(b"promlet_config_last_reload_successful 1" in body, "reload success shows in /metrics")

t0 = time.time()
rc = q.stop(signal.SIGTERM)
ok(rc == 0, "SIGTERM stops promlet with status 0", rc)
ok(time.time() - t0 < 5, "SIGTERM stops promlet promptly")
rc = p.stop(signal.SIGINT)
ok(rc == 0, "SIGINT stops promlet with status 0", rc)

# --- refused at start ------------------------------------------------------------------------------
for name, text, want in [
        ("yaml syntax", "global:\n  evaluation_interval: [1s\n", ":3:1: yaml:"),
        ("unknown key", "storage:\n  retention: 15m\n  retension: 1m\n", ":3:3: field retension"),
        ("bad duration", "global:\n  evaluation_interval: 5 minutes\n", ":2:24:"),
]:
    d = tmpdir()
    cfg = os.path.join(d, "promlet.yml")
    with open(cfg, "w") as f:
        f.write(text)
    r = subprocess.run([promlet_bin(), f"--config.file={cfg}",
                        "--web.listen-address=127.0.0.1:0"], capture_output=True, timeout=10)
    err = r.stderr.decode()
    ok(r.returncode == 1 and (cfg + want) in err and err.count("\n") == 1 and not r.stdout,
       f"a config with a {name} is refused at start with one file:line:col line", err)
    r = subprocess.run([promlet_bin(), "check", "config", cfg], capture_output=True, timeout=10)
    ok(r.returncode == 1 and (cfg + want) in r.stdout.decode(),
       f"promlet check config reports the {name}", r.stdout)
    shutil.rmtree(d)

r = subprocess.run([promlet_bin(), "--no-such-flag"], capture_output=True, timeout=10)
ok(r.returncode == 1 and b"--no-such-flag" in r.stderr and r.stderr.count(b"\n") == 1,
   "an unknown flag is refused with one line naming it", r.stderr)
r = subprocess.run([promlet_bin(), "check", "config",
                    os.path.join(source_root(), "promlet.yml")], capture_output=True,
                   timeout=10, cwd=source_root())
ok(r.returncode == 0 and b"SUCCESS" in r.stdout, "promlet check config accepts promlet.yml",
   r.stdout + r.stderr)
r = subprocess.run([promlet_bin(), "--version"], capture_output=True, timeout=10)
ok(r.returncode == 0 and r.stdout.startswith(b"promlet, version "), "--version")
r = subprocess.run([promlet_bin(), "--help"], capture_output=True, timeout=10)
ok(r.returncode == 0 and b"--web.listen-address" in r.stdout and b"--collector." in r.stdout,
   "--help lists the flags")
d = tmpdir()
r = subprocess.run([promlet_bin(), f"--config.file={d}/missing.yml"], capture_output=True,
                   timeout=10)
ok(r.returncode == 1 and b"missing.yml" in r.stderr, "a missing config file is refused")
done()
