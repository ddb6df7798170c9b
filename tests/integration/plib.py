# SPDX-License-Identifier: Apache-2.0
"""Shared helpers for integration tests: TAP output, starting promlet and peers on
127.0.0.1 with temp dirs, HTTP calls. Runs under Debian's /usr/bin/python3."""
import atexit
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

_n = 0
_failed = 0
_procs = []


def ok(cond, desc, detail=None):
    """Prints one TAP line; detail goes out as a comment when the check fails."""
    global _n, _failed
    _n += 1
    print(("ok" if cond else "not ok") + f" {_n} - {desc}", flush=True)
    if not cond:
        # A "# TODO" directive marks a known failure: reported, not counted (TAP).
        if "# TODO" not in desc:
            _failed += 1
        if detail is not None:
            for line in str(detail).splitlines()[:40]:
                print(f"#   {line}", flush=True)
    return cond


def skip_all(reason):
    print(f"1..0 # SKIP {reason}", flush=True)
    sys.exit(0)


def done():
    print(f"1..{_n}", flush=True)
    sys.exit(1 if _failed else 0)


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


atexit.register(_cleanup)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def tmpdir():
    return tempfile.mkdtemp(prefix="promlet-test-")


def promlet_bin():
    return os.path.join(os.environ["BUILD_ROOT"], "exporter", "promlet")


def source_root():
    return os.environ["SOURCE_ROOT"]


class Promlet:
    """A promlet process on 127.0.0.1 with a port it picked itself."""

    def __init__(self, config_text=None, args=(), config_path=None, wait=True):
        self.dir = tmpdir()
        if config_path is None:
            config_path = os.path.join(self.dir, "promlet.yml")
            with open(config_path, "w") as f:
                f.write(config_text or "")
        self.config = config_path
        self.log_path = os.path.join(self.dir, "promlet.log")
        self.log = open(self.log_path, "w")
        cmd = [promlet_bin(), f"--config.file={config_path}",
               "--web.listen-address=127.0.0.1:0", *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)
        _procs.append(self.proc)
        self.addr = None
        if wait:
            self.wait_ready()

    def logtext(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            m = re.search(r"Listening on\"? address=(\S+)", self.logtext())
            if m:
                self.addr = m.group(1)
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def url(self, path):
        return f"http://{self.addr}{path}"

    def get(self, path, **kw):
        return http("GET", self.url(path), **kw)

    def post(self, path, body=b"", **kw):
        return http("POST", self.url(path), body, **kw)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
        return self.proc.returncode


def http(method, url, body=None, headers=None, timeout=10):
    """Returns (status, headers dict, body bytes); never raises for HTTP errors."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def start_peer(cmd, ready_url, timeout=20, log_name="peer.log"):
    """Starts a real peer (Prometheus, Alertmanager, ...) and waits for ready_url to 200."""
    d = tmpdir()
    log = open(os.path.join(d, log_name), "w")
    p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=d)
    _procs.append(p)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if p.poll() is not None:
            break
        try:
            if http("GET", ready_url, timeout=2)[0] == 200:
                return p
        except OSError:
            pass
        time.sleep(0.1)
    with open(os.path.join(d, log_name)) as f:
        raise RuntimeError(f"{cmd[0]} did not become ready: {f.read()[-2000:]}")


def start_prometheus(config="global: {}\n", args=()):
    """Starts a real Prometheus on a free port with its remote-write receiver and native
    histograms on, config (YAML text) as its prometheus.yml. Returns (base URL, data dir)."""
    port = free_port()
    data = tmpdir()
    cfg = os.path.join(data, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(config)
    url = f"http://127.0.0.1:{port}"
    start_peer(["prometheus", f"--config.file={cfg}", f"--storage.tsdb.path={data}/tsdb",
                f"--web.listen-address=127.0.0.1:{port}", "--enable-feature=native-histograms",
                "--web.enable-remote-write-receiver", *args], f"{url}/-/ready")
    return url, data
