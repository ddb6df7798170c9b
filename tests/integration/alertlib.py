# SPDX-License-Identifier: Apache-2.0
"""Helpers for the alerting tests: a scriptable webhook receiver, a fake procfs whose
/proc/loadavg the test sets (node_load1 is then sampled into the store by promlet's
collectors), pushes, and Alertmanager's fingerprint computed independently."""
import datetime
import http.server
import json
import os
import threading
import time

import plib


class Receiver:
    """A webhook receiver on 127.0.0.1. mode(): "ok" answers 200, "fail" 500, "hang" holds
    the request without answering for hang_s. Records (arrival time, parsed body) of every
    request it answered 200."""

    def __init__(self, hang_s=3.0):
        self.mode = "ok"
        self.hang_s = hang_s
        self.got = []
        self.attempts = 0
        self.lock = threading.Lock()
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                t = time.time()
                with outer.lock:
                    outer.attempts += 1
                    mode = outer.mode
                if mode == "hang":
                    time.sleep(outer.hang_s)
                    self.close_connection = True
                    return
                if mode == "fail":
                    self.send_response(500)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                with outer.lock:
                    outer.got.append((t, json.loads(body), dict(self.headers)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/alert"
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def set_mode(self, m):
        with self.lock:
            self.mode = m

    def bodies(self):
        with self.lock:
            return [b for _, b, _ in self.got]

    def wait(self, pred, timeout=15):
        """Waits until pred(bodies) is true; returns it."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if pred(self.bodies()):
                return True
            time.sleep(0.02)
        return False


class FakeProc:
    """A --path.procfs folder with a loadavg file the test rewrites."""

    def __init__(self):
        self.dir = plib.tmpdir()
        self.set_load(0.5)

    def set_load(self, v):
        tmp = os.path.join(self.dir, "loadavg.tmp")
        with open(tmp, "w") as f:
            f.write(f"{v:.2f} 0.10 0.05 1/100 1234\n")
        os.rename(tmp, os.path.join(self.dir, "loadavg"))

    def arg(self):
        return f"--path.procfs={self.dir}"


def fingerprint(labels):
    """Alertmanager's model.LabelSet.Fingerprint: FNV-1a 64 over sorted names and values,
    each followed by 0xff; printed as 16 hex digits."""
    h = 0xcbf29ce484222325
    for k in sorted(labels):
        for part in (k, labels[k]):
            for c in part.encode() + b"\xff":
                h ^= c
                h = (h * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def push_available(p):
    st, _, _ = p.post("/metrics/job/probe", b"probe_metric 1\n",
                      headers={"Content-Type": "text/plain"})
    return st in (200, 202)


def push(p, job_path, text):
    return p.post(f"/metrics/job/{job_path}", text.encode(),
                  headers={"Content-Type": "text/plain"})[0]


def ts(x):
    """RFC 3339 (Go's trimmed fractions or fixed milliseconds alike) to unix seconds."""
    return datetime.datetime.fromisoformat(x.replace("Z", "+00:00")).timestamp()
