#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
# pushgateway_diff: differential test of expfmt_parse against a real Pushgateway (expfmt.TextParser).
#
# Usage: pushgateway_diff.py VERDICT_TOOL PATH...   (files or directories of text-format bodies)
# Starts prometheus-pushgateway on a free 127.0.0.1 port, PUTs every body to its own group,
# and compares: Pushgateway's "text format parsing error ..." must equal our message (ours may
# be cut at 160 bytes); a body it accepts we must accept. Rejections for reasons other than
# parsing (timestamps, consistency) are not compared. Known differences, because Debian's
# Pushgateway 1.5.1 vendors an older prometheus/common than the one SPEC.md follows:
#   - it rejects \" in HELP text; newer expfmt (and we) accept it;
#   - it accepts negative histogram counts; newer expfmt (and we) reject them.
# Prints TAP.
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request


def main():
    tool, paths = sys.argv[1], sys.argv[2:]
    pgw = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if not pgw:
        print("1..0 # SKIP prometheus-pushgateway not installed")
        return 0
    files = []
    for p in paths:
        if os.path.isdir(p):
            files += [os.path.join(p, f) for f in sorted(os.listdir(p)) if not f.startswith(".")]
        elif os.path.exists(p):
            files.append(p)
    ours = {}
    for i in range(0, len(files), 200):
        out = subprocess.run([tool] + files[i:i + 200], capture_output=True, check=True).stdout
        for line in out.split(b"\n"):
            if line:
                path, rc, msg = line.split(b"\t", 2)
                ours[path.decode()] = (int(rc), msg.decode("utf-8", "replace"))

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    tmp = tempfile.mkdtemp()
    proc = subprocess.Popen([pgw, f"--web.listen-address=127.0.0.1:{port}",
                             f"--persistence.file={tmp}/p"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):  # up to 10 s
            try:
                urllib.request.urlopen(base + "/-/ready", timeout=1).read()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        n = fails = 0
        for i, f in enumerate(files):
            body = open(f, "rb").read()
            url = f"{base}/metrics/job/diff{i}"
            try:
                r = urllib.request.urlopen(urllib.request.Request(url, data=body, method="PUT"),
                                           timeout=5)
                code, text = r.status, r.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as e:
                code, text = e.code, e.read().decode("utf-8", "replace")
            urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=5).read()
            rc, msg = ours[f]
            text = text.strip()
            name = os.path.relpath(f)
            if "text format parsing error" in text:
                same = rc != 0 and (msg == text or
                                    (msg.endswith('..."') and text.startswith(msg[:-4])) or
                                    (len(msg.encode()) >= 150 and text.startswith(msg[:140])))
                known = "invalid escape sequence '\\\"'" in text or "negative" in msg
                n += 1
                if same or known:
                    print(f"ok {n} - {name}: both reject{' (known version difference)' if not same else ''}")
                else:
                    fails += 1
                    print(f"not ok {n} - {name}\n#   pushgateway: {text[:200]}\n#   ours:        {msg[:200]}")
            elif code < 300:
                n += 1
                if rc == 0 or "negative" in msg:
                    print(f"ok {n} - {name}: both accept{' (known version difference)' if rc else ''}")
                else:
                    fails += 1
                    print(f"not ok {n} - {name}: pushgateway accepts, we reject: {msg[:200]}")
        print(f"1..{n}")
        return 1 if fails else 0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
