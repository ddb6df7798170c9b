#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Integration: promlet's rule runner/checker against Debian's promtool 2.42 on the shipped
# rules (both must pass them), mutated copies (both must fail), and `check rules` verdicts on
# every conformance rule file (legacy names, as 2.42 validates).
import os, shutil, subprocess, sys, tempfile

driver = os.path.abspath(sys.argv[1])
src = os.environ["SOURCE_ROOT"]
conf = os.environ["CONFORMANCE"]
promtool = shutil.which("promtool")
n = 0
failed = 0

def ok(cond, msg, detail=""):
    global n, failed
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {msg}")
    if not cond:
        failed += 1
        for line in detail.splitlines()[:40]:
            print("#   " + line)

def run(args, cwd=None):
    p = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout + p.stderr

if not promtool:
    print("1..0 # SKIP promtool not installed")
    sys.exit(0)

rules_dir = os.path.join(src, "rules")
shipped = sorted(f for f in os.listdir(rules_dir) if f.endswith(".test.yml"))
for t in shipped:
    rc, out = run([promtool, "test", "rules", t], cwd=rules_dir)
    ok(rc == 0, f"promtool 2.42 passes rules/{t}", out)
    rc, out = run([driver, "test", "--compat-v2", t], cwd=rules_dir)
    ok(rc == 0, f"promlet (compat_v2) passes rules/{t}", out)

# Our-only file: keep_firing_for, query_offset, group labels, templates; both PromQL modes.
extra_dir = os.path.dirname(os.path.abspath(__file__))
for mode in ([], ["--compat-v2"]):
    rc, out = run([driver, "test"] + mode + ["extra.test.yml"], cwd=extra_dir)
    ok(rc == 0, "promlet passes extra.test.yml " + (" ".join(mode) or "(v3)"), out)

# Mutations: a wrong expectation must fail under both tools.
with tempfile.TemporaryDirectory() as tmp:
    for t in shipped:
        body = open(os.path.join(rules_dir, t)).read()
        rf = t.replace(".test.yml", ".yml")
        shutil.copy(os.path.join(rules_dir, rf), tmp)
        mutated = body.replace("severity: critical", "severity: warning", 1) \
            if "severity: critical" in body else body.replace("value: 0.5", "value: 0.25", 1)
        assert mutated != body
        open(os.path.join(tmp, t), "w").write(mutated)
        rc1, out1 = run([promtool, "test", "rules", t], cwd=tmp)
        rc2, out2 = run([driver, "test", "--compat-v2", t], cwd=tmp)
        ok(rc1 == 1 and rc2 == 1, f"mutated {t} fails under promtool ({rc1}) and promlet ({rc2})",
           out1 + out2)

# check rules: the same verdict as promtool 2.42 on every rule file we have.
files = [os.path.join(rules_dir, f) for f in sorted(os.listdir(rules_dir)) if f.endswith(".rules.yml")]
for sub in ("rulefmt", "rules_fixtures"):
    d = os.path.join(conf, "rules", sub)
    files += [os.path.join(d, f) for f in sorted(os.listdir(d))]
d = os.path.join(conf, "rules", "promtool")
files += [os.path.join(d, f) for f in ("rules.yml", "rules-bad.yml", "rules_duplicates.yml",
          "rules_extrafields.yml", "bad-rules-syntax.yml", "bad-rules-error.yml",
          "at-modifier.yml", "negative-offset.yml", "prometheus-rules.lint.yml")]
# 2.42 predates these: UTF-8 names are rejected by both under legacy validation; the v3-only
# braces message differs but the verdict does not.
for f in files:
    rc1, out1 = run([promtool, "check", "rules", f])
    rc2, out2 = run([driver, "check", "--compat-v2", f])
    ok(rc1 == rc2, f"check rules verdict agrees ({rc1}) on {os.path.relpath(f, os.path.dirname(conf))}",
       out1 + out2)

print(f"1..{n}")
sys.exit(1 if failed else 0)
