# SPDX-License-Identifier: Apache-2.0
"""--web.config.file: TLS and bcrypt basic auth in exporter-toolkit's format."""
import base64
import crypt
import os
import ssl
import subprocess
import urllib.request

from plib import Promlet, ok, done, promlet_bin, tmpdir, http

d = tmpdir()
r = subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", os.path.join(d, "key.pem"),
                    "-out", os.path.join(d, "cert.pem")], capture_output=True)
ok(r.returncode == 0, "openssl makes a self-signed certificate", r.stderr)
hashed = crypt.crypt("s3cret", crypt.mksalt(crypt.METHOD_BLOWFISH))
web = os.path.join(d, "web.yml")
with open(web, "w") as f:
    f.write("tls_server_config:\n  cert_file: cert.pem\n  key_file: key.pem\n"
            f"basic_auth_users:\n  alice: '{hashed}'\n"
            "http_server_config:\n  headers:\n    X-Frame-Options: deny\n")

p = Promlet("", args=[f"--web.config.file={web}"])
ok(p.addr is not None, "promlet starts with TLS and basic auth", p.logtext())
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def get(path, user=None, pw=None):
    h = {}
    if user:
        h["Authorization"] = "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()
    req = urllib.request.Request(f"https://{p.addr}{path}", headers=h)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


st, hd, body = get("/-/healthy")
ok(st == 401 and hd.get("WWW-Authenticate") == "Basic", "no credentials: 401 Basic", (st, hd))
st, hd, body = get("/-/healthy", "alice", "wrong")
ok(st == 401, "wrong password: 401")
st, hd, body = get("/-/healthy", "bob", "s3cret")
ok(st == 401, "unknown user: 401")
st, hd, body = get("/metrics", "alice", "s3cret")
ok(st == 200 and b"promlet_build_info" in body, "right password over TLS: 200")
ok(hd.get("X-Frame-Options") == "deny", "configured headers are sent", hd)
st, hd, body = get("/metrics", "alice", "s3cret")
ok(st == 200, "cached credentials still accepted")
try:
    http("GET", f"http://{p.addr}/-/healthy", timeout=3)
    plain = True
except Exception:
    plain = False
ok(not plain, "plain HTTP is not served on a TLS listener")
p.stop()

for name, text, want in [
        ("unknown key", "tls_server_config:\n  cert_file: a\n  key_file: b\n  bogus: 1\n",
         ":4:3: field bogus not found"),
        ("bad key", "basic_auth_user:\n  a: b\n", ":1:1: field basic_auth_user"),
        ("plain password", "basic_auth_users:\n  a: hunter2\n", ":2:6:"),
]:
    bad = os.path.join(d, "bad.yml")
    with open(bad, "w") as f:
        f.write(text)
    r = subprocess.run([promlet_bin(), "--config.file=/dev/null", f"--web.config.file={bad}",
                        "--web.listen-address=127.0.0.1:0"], capture_output=True, timeout=10)
    ok(r.returncode == 1 and want in r.stderr.decode(),
       f"a web config with a {name} is refused at start", r.stderr)
done()
