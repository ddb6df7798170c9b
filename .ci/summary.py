#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
# Reads meson's testlog.json of each build dir given and prints "N passed, N failed, N skipped".
import json
import sys

passed = failed = skipped = 0
for d in sys.argv[1:]:
    try:
        with open(f"{d}/meson-logs/testlog.json") as f:
            lines = [json.loads(line) for line in f if line.strip()]
    except OSError as e:
        print(f"# {d}: no test log ({e})")
        failed += 1
        continue
    for t in lines:
        r = t.get("result")
        if r in ("OK", "EXPECTEDFAIL"):
            passed += 1
        elif r == "SKIP":
            skipped += 1
        else:
            failed += 1
            print(f"# FAILED [{d}] {t.get('name')}: {r}")
print(f"{passed} passed, {failed} failed, {skipped} skipped")
sys.exit(1 if failed or passed == 0 else 0)
