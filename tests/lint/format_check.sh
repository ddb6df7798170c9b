#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Every C file in the tree follows .clang-format (STYLE 3.10); prints TAP, one line per file.
cd "$SOURCE_ROOT" || exit 1
command -v clang-format >/dev/null || { echo "1..0 # SKIP clang-format is not installed"; exit 0; }
n=0 fail=0
for f in $(git ls-files '*.c' '*.h' 2>/dev/null || find exporter proto ruleeval tests -name '*.[ch]'); do
    n=$((n + 1))
    if out=$(clang-format --dry-run -Werror "$f" 2>&1); then
        echo "ok $n - $f"
    else
        fail=$((fail + 1))
        echo "not ok $n - $f"
        echo "$out" | head -5 | sed 's/^/#   /'
    fi
done
echo "1..$n"
[ "$fail" -eq 0 ]
