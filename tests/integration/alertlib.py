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
        self.raw = []  # the bodies of self.got as received (bytes)
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
                    outer.raw.append(body)
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


_M64 = 0xFFFFFFFFFFFFFFFF
_XP = (0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0x85EBCA77C2B2AE63,
       0x27D4EB2F165667C5)


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, v):
    return _rotl((acc + v * _XP[1]) & _M64, 31) * _XP[0] & _M64


def xxh64(b):
    """XXH64, seed 0 (what Prometheus's labels.Hash uses), written from the algorithm."""
    p1, p2, p3, p4, p5 = _XP
    n, i = len(b), 0
    if n >= 32:
        v = [(p1 + p2) & _M64, p2, 0, (-p1) & _M64]
        while n - i >= 32:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(b[i + 8 * k:i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for k in range(4):
            h = ((h ^ _round(0, v[k])) * p1 + p4) & _M64
    else:
        h = p5
    h = (h + n) & _M64
    while n - i >= 8:
        h = (_rotl(h ^ _round(0, int.from_bytes(b[i:i + 8], "little")), 27) * p1 + p4) & _M64
        i += 8
    if n - i >= 4:
        h = (_rotl(h ^ (int.from_bytes(b[i:i + 4], "little") * p1 & _M64), 23) * p2 + p3) & _M64
        i += 4
    while i < n:
        h = _rotl(h ^ (b[i] * p5 & _M64), 11) * p1 & _M64
        i += 1
    h ^= h >> 33
    h = h * p2 & _M64
    h ^= h >> 29
    h = h * p3 & _M64
    return h ^ (h >> 32)


def slot_offset_ms(file, group, interval_s):
    """Prometheus's Group.EvalTimestamp offset of a group, in whole ms."""
    key = b"file\xff" + file.encode() + b"\xffname\xff" + group.encode() + b"\xff"
    return xxh64(key) % int(interval_s * 1e9) // 1000000
