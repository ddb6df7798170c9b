# SPDX-License-Identifier: Apache-2.0
"""A broad table of PromQL queries (functions, aggregations, operators, modifiers, subqueries,
edge cases, errors) answered by promlet (--promql.compat=v2) and by a real Prometheus 2.42 fed
the same samples by remote write, compared one TAP line per query and mode."""
import json
import math
import os
import shutil
import sys
import time
import urllib.parse

from plib import Promlet, done, http, ok, skip_all, start_prometheus
from query_compat_test import compare
from rwlib import STALE_NAN
import query_data as qd

STEP_MS = 15000
RANGE_S = 600  # range queries cover the last 10 minutes at a 20 s step

# Known differences from 2.42 that are not fixed yet: query -> reason (TAP TODO).
H = "k6_http_req_duration_seconds"
KNOWN = {
}


def extra_series(end):
    """Small hand-made series beside the experiment's data set, each for one kind of case."""
    start = end - 15 * 60000
    ts = list(range(start, end + 1, STEP_MS))
    out = []
    for i, inst in enumerate("abc"):
        for grp in ("x", "y"):
            pts = [(t, round(math.sin(k / 7.0 + i) * 10 + i * 3 + (2.5 if grp == "y" else 0), 3))
                   for k, t in enumerate(ts)]
            out.append(({"__name__": "qd_gauge", "inst": inst, "grp": grp}, pts, []))
    # A counter that resets every 4 minutes and one that only grows.
    for inst, period in (("a", 16), ("b", 10000)):
        v, pts = 0.0, []
        for k, t in enumerate(ts):
            v = 0.0 if k and k % period == 0 else v + 1.5 + (k % 5)
            pts.append((t, v))
        out.append(({"__name__": "qd_counter", "inst": inst}, pts, []))
    # A classic histogram for two jobs.
    les = ("0.1", "0.5", "1", "2.5", "+Inf")
    for j, job in enumerate(("a", "b")):
        cum = [0.0] * len(les)
        pts = {le: [] for le in les}
        cnt, tot = [], []
        s = 0.0
        for k, t in enumerate(ts):
            add = [1 + (k + j) % 3, 2 + k % 4, 3, 1 + j, (k % 2)]
            run = 0.0
            for n, a in enumerate(add):
                run += a
                cum[n] += run
            s += 0.37 * (k + 1) + j
            for n, le in enumerate(les):
                pts[le].append((t, cum[n]))
            cnt.append((t, cum[-1]))
            tot.append((t, s))
        for le in les:
            out.append(({"__name__": "qd_req_bucket", "job": job, "le": le}, pts[le], []))
        out.append(({"__name__": "qd_req_count", "job": job}, cnt, []))
        out.append(({"__name__": "qd_req_sum", "job": job}, tot, []))
    # Buckets with non-monotonic counts, a repeated bound ("1" and "1.0") and no +Inf.
    for k_le, (le, base) in enumerate((("0.5", 10), ("1", 30), ("1.0", 5), ("2", 25),
                                       ("+Inf", 50))):
        out.append(({"__name__": "qd_odd_bucket", "job": "m", "le": le},
                    [(t, float(base * (k + 1))) for k, t in enumerate(ts)], []))
    for le, base in (("0.5", 3), ("1", 7)):
        out.append(({"__name__": "qd_noinf_bucket", "le": le},
                    [(t, float(base * (k + 1))) for k, t in enumerate(ts)], []))
    out.append(({"__name__": "qd_badle_bucket", "le": "x"}, [(t, 1.0) for t in ts], []))
    # A label value with a newline (regex "." and newlines differ between 2.x and 3.x).
    out.append(({"__name__": "qd_nl", "v": "a\nb"}, [(t, 1.0) for t in ts], []))
    # Special values.
    for kind, v in (("nan", math.nan), ("inf", math.inf), ("neginf", -math.inf), ("zero", 0.0),
                    ("neg", -2.5), ("small", 1e-300), ("big", 1.7e308)):
        out.append(({"__name__": "qd_special", "kind": kind}, [(t, v) for t in ts], []))
    # A series ended by a stale marker 5 minutes ago, and one that just stops 3 minutes ago.
    cut = end - 5 * 60000
    pts = [(t, float(k)) for k, t in enumerate(ts) if t <= cut] + [(cut + STEP_MS, STALE_NAN)]
    out.append(({"__name__": "qd_stale", "job": "s"}, pts, []))
    # Stale 6 minutes ago, written again from 3 minutes ago.
    pts = [(t, float(k)) for k, t in enumerate(ts) if t <= end - 7 * 60000]
    pts += [(end - 6 * 60000, STALE_NAN)]
    pts += [(t, 100.0 + k) for k, t in enumerate(ts) if t >= end - 3 * 60000]
    out.append(({"__name__": "qd_resume", "job": "r"}, pts, []))
    out.append(({"__name__": "qd_gap", "job": "g"},
                [(t, float(k * 2)) for k, t in enumerate(ts) if t <= end - 3 * 60000], []))
    # A sparse series (one sample every 2 minutes) for the lookback delta.
    out.append(({"__name__": "qd_sparse", "job": "p"},
                [(t, float(k)) for k, t in enumerate(range(start, end + 1, 120000))], []))
    # Label sets that collide once a label is dropped; info-style series for group_left.
    for a, b in (("1", "x"), ("1", "y"), ("2", "x")):
        out.append(({"__name__": "qd_dup", "a": a, "b": b}, [(t, float(ord(b))) for t in ts], []))
    for inst, ver in (("a", "1.0"), ("b", "2.0"), ("c", "2.0")):
        out.append(({"__name__": "qd_info", "inst": inst, "version": ver}, [(t, 1.0) for t in ts],
                    []))
    out.append(({"__name__": "qd_twin", "inst": "a", "grp": "x"}, [(t, 7.0) for t in ts], []))
    out.append(({"__name__": "qd_path", "path": "/api/v1/query", "code": "200"},
                [(t, 3.0) for t in ts], []))
    # Unix times (as values) for the date functions: across month, year and leap days.
    for name, base in (("leap", 1709164800), ("newyear", 1703980800), ("mid", 1690000000)):
        out.append(({"__name__": "qd_epoch", "at": name},
                    [(t, float(base + k * 3671)) for k, t in enumerate(ts)], []))
    return out


# (query, modes): "i" instant at the end, "r" range over the last 10 minutes. {E} is the end
# time in seconds, {S} the range start.
IR = "ir"
QUERIES = [
    # selectors, literals, modifiers
    ("qd_gauge", IR), ('qd_gauge{inst="a"}', IR), ('qd_gauge{inst!="a",grp=~"x|z"}', IR),
    ('{__name__=~"qd_g.*"}', IR), ('qd_gauge{inst!~"a|b"}', IR), ("qd_gauge[1m]", "i"),
    ("qd_gauge offset 2m", IR), ("qd_gauge offset -1m", IR), ("qd_gauge[2m] offset 1m", "i"),
    ("qd_gauge @ {E}", IR), ("qd_gauge @ start()", IR), ("qd_gauge @ end()", IR),
    ("qd_gauge @ {S} offset 1m", IR), ("rate(qd_counter[2m] @ end())", IR),
    ("rate(qd_counter[2m] @ {S})", IR), ("qd_gauge @ 100", IR),
    ("1", IR), ("-2.5", IR), ("0x1f", IR), ("1e3", IR), ("Inf", IR), ("-Inf", IR), ("NaN", IR),
    ('"a string"', "i"), ("'single'", "i"), ("`raw`", "i"), ("(((qd_gauge)))", IR),
    ("-qd_gauge", IR), ("- -1", IR), ("+qd_gauge", IR),
    # staleness and lookback
    ("qd_resume", IR), ("qd_resume[10m]", "i"), ("rate(qd_resume[5m])", IR),
    ("count_over_time(qd_resume[5m])", IR), ("last_over_time(qd_resume[5m])", IR),
    ("timestamp(qd_resume)", IR), ("changes(qd_resume[10m])", IR), ("qd_resume offset 5m", IR),
    ("max_over_time(qd_resume[6m:30s])", IR), ("absent(qd_resume)", IR),
    ("qd_stale", IR), ("qd_stale offset 4m", IR), ("qd_gap", IR), ("qd_sparse", IR),
    ("count_over_time(qd_stale[10m])", IR), ("last_over_time(qd_stale[10m])", IR),
    ("qd_stale[10m]", "i"), ("timestamp(qd_gap)", IR), ("timestamp(qd_sparse)", IR),
    ("absent(qd_stale)", IR), ("absent_over_time(qd_stale[3m])", IR),
    ("present_over_time(qd_gap[1m])", IR),
    # rate family
    ("rate(qd_counter[1m])", IR), ("rate(qd_counter[5m])", IR), ("irate(qd_counter[1m])", IR),
    ("increase(qd_counter[3m])", IR), ("delta(qd_gauge[2m])", IR), ("idelta(qd_gauge[2m])", IR),
    ("deriv(qd_gauge[3m])", IR), ("predict_linear(qd_gauge[3m], 600)", IR),
    ("predict_linear(qd_counter[5m], -60)", IR), ("holt_winters(qd_gauge[5m], 0.5, 0.5)", IR),
    ("holt_winters(qd_gauge[5m], 0.1, 0.9)", IR), ("holt_winters(qd_gauge[5m], 1, 0.5)", IR),
    ("rate(qd_counter[15s])", IR), ("rate(qd_special[1m])", IR), ("irate(qd_sparse[5m])", IR),
    ("changes(qd_gauge[5m])", IR), ("changes(qd_counter[10m])", IR), ("resets(qd_counter[10m])", IR),
    ("resets(qd_gauge[5m])", IR), ("rate(k6_http_req_duration_seconds[1m])", IR),
    ("increase(k6_http_req_duration_seconds[1m])", IR), ("delta(qd_gauge[1m] offset 30s)", IR),
    # *_over_time
    ("avg_over_time(qd_gauge[2m])", IR), ("min_over_time(qd_gauge[2m])", IR),
    ("max_over_time(qd_gauge[2m])", IR), ("sum_over_time(qd_gauge[2m])", IR),
    ("count_over_time(qd_gauge[2m])", IR), ("stddev_over_time(qd_gauge[5m])", IR),
    ("stdvar_over_time(qd_gauge[5m])", IR), ("last_over_time(qd_gauge[2m])", IR),
    ("present_over_time(qd_gauge[2m])", IR), ("quantile_over_time(0.9, qd_gauge[5m])", IR),
    ("quantile_over_time(0, qd_gauge[5m])", IR), ("quantile_over_time(1.5, qd_gauge[5m])", IR),
    ("quantile_over_time(-1, qd_gauge[5m])", IR), ("avg_over_time(qd_special[1m])", IR),
    ("sum_over_time(qd_special[1m])", IR), ("stddev_over_time(qd_special[1m])", IR),
    ("min_over_time(qd_special[1m])", IR), ("max_over_time(qd_special[1m])", IR),
    ("quantile_over_time(0.5, qd_special[1m])", IR), ("absent_over_time(nope[1m])", IR),
    ("absent_over_time(qd_gauge[1m])", IR), ('absent_over_time(nope{a="b",c=~"d"}[1m])', IR),
    # math
    ("abs(qd_gauge)", IR), ("ceil(qd_gauge)", IR), ("floor(qd_gauge)", IR), ("exp(qd_gauge)", IR),
    ("ln(qd_gauge)", IR), ("log2(qd_gauge)", IR), ("log10(qd_gauge)", IR), ("sqrt(qd_gauge)", IR),
    ("round(qd_gauge)", IR), ("round(qd_gauge, 0.5)", IR), ("round(qd_gauge, 3)", IR),
    ("round(qd_special)", IR), ("round(-2.5)", "i"), ("round(vector(2.5))", IR),
    ("round(vector(-2.5))", IR), ("round(vector(-0.5))", IR),
    ("sgn(qd_gauge)", IR), ("sgn(qd_special)", IR), ("exp(qd_special)", IR),
    ("clamp(qd_gauge, -3, 3)", IR), ("clamp(qd_gauge, 3, -3)", IR), ("clamp_min(qd_gauge, 0)", IR),
    ("clamp_max(qd_gauge, 0)", IR), ("clamp(qd_special, -1, 1)", IR),
    ("sin(qd_gauge)", IR), ("cos(qd_gauge)", IR), ("tan(qd_gauge)", IR), ("asin(qd_gauge / 20)", IR),
    ("acos(qd_gauge / 20)", IR), ("atan(qd_gauge)", IR), ("sinh(qd_gauge)", IR),
    ("cosh(qd_gauge)", IR), ("tanh(qd_gauge)", IR), ("asinh(qd_gauge)", IR),
    ("acosh(qd_gauge)", IR), ("atanh(qd_gauge / 20)", IR), ("deg(qd_gauge)", IR),
    ("rad(qd_gauge)", IR), ("pi()", IR), ("sin(qd_special)", IR),
    # time and date
    ("time()", IR), ("timestamp(qd_gauge)", IR), ("timestamp(qd_gauge offset 1m)", IR),
    ("timestamp(vector(1))", IR), ("time() - timestamp(qd_sparse)", IR), ("minute()", IR),
    ("hour()", IR), ("day_of_week()", IR), ("day_of_month()", IR), ("day_of_year()", IR),
    ("month()", IR), ("year()", IR), ("days_in_month()", IR), ("minute(qd_epoch)", IR),
    ("hour(qd_epoch)", IR), ("day_of_week(qd_epoch)", IR), ("day_of_month(qd_epoch)", IR),
    ("day_of_year(qd_epoch)", IR), ("month(qd_epoch)", IR), ("year(qd_epoch)", IR),
    ("days_in_month(qd_epoch)", IR), ("year(qd_special)", IR), ("month(vector(-86400))", IR),
    # vector / scalar / sort / labels
    ("vector(1)", IR), ("vector(time())", IR), ("scalar(qd_gauge)", IR),
    ('scalar(qd_gauge{inst="a",grp="x"})', IR), ("scalar(nope)", IR), ("sort(qd_gauge)", IR),
    ("sort_desc(qd_gauge)", IR), ("sort(qd_special)", "i"), ("sort_desc(qd_special)", "i"),
    ('label_replace(qd_gauge, "dst", "$1-z", "inst", "(.*)")', IR),
    ('label_replace(qd_gauge, "inst", "", "inst", "a")', IR),
    ('label_replace(qd_path, "api", "$1", "path", "/api/(v[0-9])/.*")', IR),
    ('label_replace(qd_path, "x", "${1}y$2", "path", "/(a)(p)i.*")', IR),
    ('label_replace(qd_gauge, "__name__", "renamed", "", "")', IR),
    ('label_join(qd_gauge, "j", "-", "inst", "grp")', IR),
    ('label_join(qd_gauge, "j", "", "grp", "nope", "inst")', IR),
    ('label_join(qd_gauge, "inst")', IR),
    ('label_replace(qd_dup, "b", "", "", "")', IR),
    ('label_replace(qd_gauge, "1bad", "x", "inst", ".*")', IR),
    ('label_replace(qd_gauge, "x", "x", "inst", "(")', IR),
    # aggregations
    ("sum(qd_gauge)", IR), ("sum by (grp) (qd_gauge)", IR), ("sum without (inst) (qd_gauge)", IR),
    ("avg by (inst) (qd_gauge)", IR), ("min(qd_gauge)", IR), ("max by (grp) (qd_gauge)", IR),
    ("count(qd_gauge)", IR), ("count without () (qd_gauge)", IR), ("group by (grp) (qd_gauge)", IR),
    ("group(qd_gauge)", IR), ("stddev(qd_gauge)", IR), ("stdvar by (inst) (qd_gauge)", IR),
    ("topk(2, qd_gauge)", IR), ("topk by (grp) (1, qd_gauge)", IR), ("bottomk(2, qd_gauge)", IR),
    ("bottomk without (inst) (1, qd_gauge)", IR), ("topk(0, qd_gauge)", IR),
    ("topk(2.7, qd_gauge)", IR), ("topk(3, qd_special)", IR), ("bottomk(3, qd_special)", IR),
    ("quantile(0.5, qd_gauge)", IR), ("quantile by (grp) (0.9, qd_gauge)", IR),
    ("quantile(2, qd_gauge)", IR), ("quantile(NaN, qd_gauge)", IR),
    ('count_values("v", round(qd_gauge))', IR), ('count_values by (grp) ("v", ceil(qd_gauge))', IR),
    ('count_values("v", qd_special)', IR), ('count_values("inst", qd_info)', IR),
    ("sum(qd_special)", IR), ("avg(qd_special)", IR), ("min(qd_special)", IR),
    ("max(qd_special)", IR), ("stddev(qd_special)", IR), ("avg(qd_special{kind=~\"big|inf\"})", IR),
    ("sum(nope)", IR), ("sum by (nope) (qd_gauge)", IR), ("max without (__name__) (qd_gauge)", IR),
    ("sum(rate(node_cpu_seconds_total[1m])) by (mode)", IR),
    ("topk(1, sum by (mode) (rate(node_cpu_seconds_total[1m])))", IR),
    ("quantile(scalar(vector(0.3)), qd_gauge)", IR), ("topk(scalar(count(qd_info)), qd_gauge)", IR),
    # histograms
    ("histogram_quantile(0.9, rate(qd_req_bucket[2m]))", IR),
    ("histogram_quantile(0.5, sum by (le) (rate(qd_req_bucket[2m])))", IR),
    ("histogram_quantile(0, rate(qd_req_bucket[2m]))", IR),
    ("histogram_quantile(1, rate(qd_req_bucket[2m]))", IR),
    ("histogram_quantile(1.1, rate(qd_req_bucket[2m]))", IR),
    ("histogram_quantile(-0.1, rate(qd_req_bucket[2m]))", IR),
    ("histogram_quantile(0.99, qd_req_bucket)", IR),
    ('histogram_quantile(0.5, qd_req_bucket{le!="+Inf"})', IR),
    ("histogram_quantile(0.5, rate(k6_http_req_duration_seconds[1m]))", IR),
    ("histogram_quantile(0.1, k6_http_req_duration_seconds)", IR),
    ("histogram_quantile(1, k6_http_req_duration_seconds)", IR),
    ("histogram_count(k6_http_req_duration_seconds)", IR),
    ("histogram_sum(k6_http_req_duration_seconds)", IR),
    ("histogram_count(rate(k6_http_req_duration_seconds[1m]))", IR),
    ("histogram_fraction(0, 2.5, k6_http_req_duration_seconds)", IR),
    ("histogram_fraction(2.1, +Inf, rate(k6_http_req_duration_seconds[2m]))", IR),
    ("histogram_fraction(-Inf, 0, k6_http_req_duration_seconds)", IR),
    ("histogram_count(qd_gauge)", IR), ("sum(k6_http_req_duration_seconds)", IR),
    ("sum(rate(k6_http_req_duration_seconds[1m])) * 2", IR),
    ("k6_http_req_duration_seconds / 2", IR), ("-k6_http_req_duration_seconds", IR),
    ("k6_http_req_duration_seconds > 0", IR), ("k6_http_req_duration_seconds == bool 0", IR),
    ("k6_http_req_duration_seconds atan2 1", IR),
    ("k6_http_req_duration_seconds + k6_http_req_duration_seconds", IR),
    ("k6_http_req_duration_seconds - k6_http_req_duration_seconds offset 1m", IR),
    ("k6_http_req_duration_seconds * k6_http_req_duration_seconds", IR),
    ("k6_http_req_duration_seconds == k6_http_req_duration_seconds", IR),
    ("k6_http_req_duration_seconds != bool k6_http_req_duration_seconds", IR),
    ('k6_http_req_duration_seconds + on(testid) group_left k6_http_reqs_total{status="0"}', IR),
    ("avg(k6_http_req_duration_seconds)", IR), ("count(k6_http_req_duration_seconds)", IR),
    ("max(k6_http_req_duration_seconds)", IR), ("k6_http_req_duration_seconds and qd_info", IR),
    ("sum_over_time(k6_http_req_duration_seconds[1m])", IR),
    ("avg_over_time(k6_http_req_duration_seconds[1m])", IR),
    ("last_over_time(k6_http_req_duration_seconds[1m])", IR),
    ("count_over_time(k6_http_req_duration_seconds[1m])", IR),
    ("delta(k6_http_req_duration_seconds[1m])", IR), ("resets(k6_http_req_duration_seconds[5m])", IR),
    ("changes(k6_http_req_duration_seconds[5m])", IR), ("timestamp(k6_http_req_duration_seconds)", IR),
    ("abs(k6_http_req_duration_seconds)", IR), ("sort(k6_http_req_duration_seconds)", IR),
    ('label_replace(k6_http_req_duration_seconds, "x", "y", "", "")', IR),
    ("holt_winters(k6_http_req_duration_seconds[2m], 0.5, 0.5)", IR),
    ("min_over_time(k6_http_req_duration_seconds[1m])", IR),
    ("quantile_over_time(0.5, k6_http_req_duration_seconds[1m])", IR),
    ("stddev_over_time(k6_http_req_duration_seconds[1m])", IR),
    ("deriv(k6_http_req_duration_seconds[1m])", IR), ("irate(k6_http_req_duration_seconds[1m])", IR),
    ("idelta(k6_http_req_duration_seconds[1m])", IR),
    ("max_over_time(k6_http_req_duration_seconds[1m:30s])", IR),
    ("topk(1, k6_http_req_duration_seconds)", IR), ("quantile(0.5, k6_http_req_duration_seconds)", IR),
    ("stddev(k6_http_req_duration_seconds)", IR), ("group(k6_http_req_duration_seconds)", IR),
    ('count_values("v", k6_http_req_duration_seconds)', IR),
    ("scalar(k6_http_req_duration_seconds)", IR), ("round(k6_http_req_duration_seconds)", IR),
    ("clamp(k6_http_req_duration_seconds, 1, 2)", IR),
    ("sort_desc(k6_http_req_duration_seconds)", IR),
    ('label_join(k6_http_req_duration_seconds, "x", "-", "testid")', IR),
    ("absent(k6_http_req_duration_seconds)", IR), ("sum(k6_http_req_duration_seconds) + 1", IR),
    ("histogram_quantile(0.5, -k6_http_req_duration_seconds)", IR),
    ("abs(sum(k6_http_req_duration_seconds))", IR),
    ("histogram_count(abs(k6_http_req_duration_seconds))", IR),
    ("offset", IR), ("qd_gauge offset 0s", IR), ("rate(qd_counter[1m:0s] offset 1m)", IR),
    ("qd_gauge[1m:1m] offset 0s", "i"), ('sum by ("inst") (qd_gauge)', IR),
    ("qd_gauge @ 100 @ 200", IR), ("qd_gauge offset 1m offset 1m", IR),
    ("histogram_quantile(0.5, sum(rate(k6_http_req_duration_seconds[1m])))", IR),
    ("histogram_quantile(0.5, qd_odd_bucket)", IR), ("histogram_quantile(0.9, qd_odd_bucket)", IR),
    ("histogram_quantile(0.99, rate(qd_odd_bucket[2m]))", IR),
    ("histogram_quantile(0.5, qd_noinf_bucket)", IR), ("histogram_quantile(0.5, qd_badle_bucket)", IR),
    ("histogram_quantile(0.5, qd_req_bucket offset 1m)", IR),
    ("histogram_quantile(0.5, sum by (le) (qd_req_bucket))", IR),
    ('histogram_quantile(0.5, {__name__=~"qd_req_bucket|qd_odd_bucket"})', IR),
    ("histogram_quantile(0.75, sum without (job) (rate(qd_req_bucket[1m])))", IR),
    ("absent(sum(nope))", IR), ('absent(nope{a="b"} offset 1m)', IR), ("absent(rate(nope[1m]))", IR),
    ('absent(nope{a="b",a="c"})', IR), ('absent(nope{a=~"b"})', IR),
    ('vector(scalar(qd_gauge{inst="a",grp="x"}))', IR), ("count(qd_gauge) by (inst) > 1", IR),
    ('qd_nl{v=~"a.b"}', IR), ('qd_nl{v!~"a.b"}', IR), ('qd_nl{v=~".*"}', IR),
    ('label_replace(qd_nl, "w", "$1", "v", "(.*)")', IR),
    ('label_replace(qd_nl, "w", "x", "v", "a.b")', IR),
    # binary operators
    ("qd_gauge + 1", IR), ("2 * qd_gauge", IR), ("qd_gauge / 0", IR), ("0 / 0", IR),
    ("qd_gauge % 3", IR), ("-7 % 3", IR), ("qd_gauge ^ 2", IR), ("2 ^ 3 ^ 2", IR), ("-2 ^ 2", IR),
    ("qd_gauge atan2 2", IR), ("qd_gauge atan2 on(inst, grp) qd_gauge offset 1m", IR),
    ("qd_gauge > 0", IR), ("qd_gauge > bool 0", IR), ("0 < qd_gauge", IR), ("1 == bool 1", IR),
    ("qd_gauge == qd_gauge", IR), ("qd_gauge != bool qd_gauge offset 1m", IR),
    ("qd_gauge <= 3", IR), ("qd_gauge >= bool 3", IR), ("qd_special == qd_special", IR),
    ("qd_special != bool 0", IR), ("qd_gauge - qd_gauge offset 1m", IR),
    ('qd_gauge * on(inst) group_left(version) qd_info', IR),
    ('qd_gauge * on(inst) group_left qd_info', IR),
    ('qd_info * on(inst) group_right(grp) qd_gauge', IR),
    ('qd_gauge / ignoring(grp) group_left qd_info', IR),
    ("qd_gauge + on(inst) qd_info", IR), ("qd_gauge * on(inst, grp) qd_gauge", IR),
    ("qd_gauge + ignoring(grp) qd_gauge", IR), ("qd_info * on(nope) group_left qd_info", IR),
    ('sum by (inst) (qd_gauge) / on(inst) qd_info', IR),
    ("qd_gauge > on(inst) group_left qd_info", IR), ("qd_dup * on(a) group_left qd_dup", IR),
    ("qd_gauge and qd_gauge > 0", IR), ("qd_gauge or qd_info", IR),
    ("qd_gauge unless qd_gauge > 0", IR), ("qd_gauge and on(inst) qd_info", IR),
    ('qd_gauge unless on(inst) qd_info{version="1.0"}', IR),
    ('qd_info or on(inst) qd_gauge', IR), ("qd_gauge and ignoring(grp) qd_info", IR),
    ("vector(1) or vector(2)", IR), ("qd_gauge and nope", IR), ("nope or qd_info", IR),
    ("1 + 2 * 3 - 4 / 2", IR), ("time() % 60", IR), ("qd_gauge > bool qd_gauge offset 30s", IR),
    ("sum(qd_gauge) - count(qd_gauge)", IR), ("scalar(sum(qd_gauge)) > bool 0", IR),
    ("(qd_gauge > 0) + 0", IR), ("qd_gauge + qd_info", IR), ("-qd_gauge ^ 2", IR),
    ("qd_dup + on(a) qd_dup", IR), ("qd_info + on(version) qd_info", IR),
    # subqueries
    ("max_over_time(qd_gauge[5m:1m])", IR), ("rate(qd_counter[5m:30s])", IR),
    ("avg_over_time(qd_gauge[3m:])", IR), ("qd_gauge[2m:30s]", "i"), ("qd_gauge[1m:]", "i"),
    ("max_over_time(rate(qd_counter[1m])[5m:1m])", IR),
    ("max_over_time(max_over_time(qd_gauge[1m:20s])[3m:1m])", IR),
    ("min_over_time(qd_gauge[5m:1m] offset 2m)", IR), ("sum_over_time(qd_gauge[5m:1m] @ end())", IR),
    ("last_over_time(qd_stale[10m:1m])", IR), ("count_over_time(vector(1)[2m:17s])", IR),
    ("deriv(sum(qd_gauge)[5m:])", IR), ("quantile_over_time(0.5, qd_gauge[5m:45s])", IR),
    ("changes(round(qd_gauge)[10m:1m])", IR), ("absent_over_time(nope[5m:1m])", IR),
    ("timestamp(qd_gauge[1m:7s] @ {E})", "i"), ("count_over_time(qd_gap[5m:1m])", IR),
    # literals, durations, matchers, syntax corners
    (".5", IR), ("5.", IR), ("1e-3", IR), ("-inf", IR), ("nan", IR), ("0x1F * 2", IR),
    ("1_000", IR), ("time() - 5m", IR), ("qd_gauge offset 1h30m", IR), ("qd_gauge offset 1w", IR),
    ("qd_gauge[1m:1m:1m]", "i"), ('"a"', "r"), ("qd_gauge[1m]", "r"),
    ('qd_gauge{inst=~"A"}', IR), ('qd_gauge{inst=~"(?i)A"}', IR), ('qd_gauge{inst=~"a|"}', IR),
    ('qd_gauge{inst!~""}', IR), ('{inst=~".+", __name__!="qd_info"}', IR),
    ('{__name__=~"qd_gauge|qd_info"}', IR), ('{__name__=~"qd_gauge|qd_info"} * 2', IR),
    ("sum without (__name__) (qd_gauge)", IR), ("topk(1, qd_gauge) by (grp)", IR),
    ("sum(qd_gauge) by (grp) > bool 0", IR), ("qd_gauge # a comment", IR),
    ("sum(\n  qd_gauge\n)", IR), ("vector(1) and on() qd_gauge", IR),
    ("sum by (grp) (qd_gauge) / ignoring(grp) group_left sum(qd_gauge)", IR),
    ("qd_gauge * on() group_left qd_gauge", IR), ("SUM(qd_gauge)", IR), ("Sum by (grp) (qd_gauge)", IR),
    ("qd_gauge OFFSET 1m", IR), ("rate(qd_counter[1m:7s])", IR), ("deriv(qd_sparse[10m])", IR),
    ("stdvar_over_time(qd_info[5m])", IR), ("idelta(qd_sparse[1m])", IR),
    ("irate(qd_counter[2m])", IR), ("predict_linear(qd_gauge[5m:30s], 60)", IR),
    ("count_over_time(qd_gauge[1m] @ start())", IR), ("last_over_time(qd_stale[10m:])", IR),
    ("absent_over_time(qd_stale[1m])", IR), ("present_over_time(qd_stale[1m])", IR),
    ("timestamp(qd_stale)", IR), ("qd_stale offset -1m", IR), ("rate(qd_stale[5m])", IR),
    ("changes(qd_special[5m])", IR), ("resets(qd_special[5m])", IR), ("deriv(qd_special[2m])", IR),
    ("quantile_over_time(NaN, qd_gauge[5m])", IR), ("histogram_quantile(NaN, qd_req_bucket)", IR),
    ('label_replace(qd_gauge, "x", "$1", "inst", "z(.*)")', IR),
    ('label_join(qd_gauge, "__name__", "_", "inst", "grp")', IR),
    ('label_replace(qd_gauge, "inst", "$2", "inst", "(.)")', IR),
    ("timestamp(qd_gauge @ 100)", IR), ("qd_gauge @ -100", IR),
    ("sum_over_time(qd_gauge[10m:2m] offset -2m)", IR),
    ("min_over_time((qd_gauge > 5)[5m:1m])", IR), ("-(qd_gauge)", IR), ("-vector(1)", IR),
    ("- - qd_gauge", IR), ("qd_gauge + -1", IR), ("1 - -1", IR), ("2 ^ -1", IR),
    ("-1 ^ 0.5", IR), ("(-1) ^ 0.5", IR), ("0 ^ 0", IR), ("Inf - Inf", IR), ("-0", IR),
    ("vector(-0)", IR), ("qd_gauge % -3", IR), ("qd_special % 0", IR), ("5 % Inf", IR),
    ("qd_special / qd_special", IR), ("qd_special atan2 qd_special", IR),
    ("max(qd_special{kind=~\"nan|neg\"})", IR), ("min(qd_special{kind=~\"nan|neg\"})", IR),
    ("topk(1, qd_special{kind=~\"nan|neg\"})", IR), ("sort_desc(qd_special{kind=~\"nan|neg|inf\"})", "i"),
    ("quantile(0.5, qd_special)", IR), ("group by (kind) (qd_special)", IR),
    ("stdvar(qd_special{kind!~\"inf|neginf|big|nan\"})", IR),
    ("avg(qd_special{kind=~\"inf|neginf\"})", IR), ("sum(qd_special{kind=~\"inf|neginf\"})", IR),
    ("count_values(\"v\", vector(0.1 + 0.2))", IR), ("count_values(\"v\", vector(1e21))", IR),
    ("count_values(\"v\", vector(-0.000001))", IR), ("count_values(\"v\", qd_gauge) > 1", IR),
    ("clamp_min(qd_special, NaN)", IR), ("clamp(qd_gauge, NaN, 1)", IR),
    ("round(qd_gauge, 0)", IR), ("round(qd_gauge, -2)", IR), ("round(qd_gauge, 1/3)", IR),
    ("ln(-1)", "i"), ("ln(vector(-1))", IR), ("sqrt(vector(-1))", IR), ("exp(vector(1000))", IR),
    ("day_of_week(vector(-1))", IR), ("hour(vector(NaN))", IR), ("minute(vector(Inf))", IR),
    ("days_in_month(vector(1709164800))", IR), ("hour(vector(-0.5))", IR),
    ("day_of_week(vector(-86400.5))", IR), ("year(vector(-1e12))", IR), ("month(vector(1e17))", IR),
    ("day_of_month(vector(-9.3e18))", IR), ("days_in_month(vector(NaN))", IR),
    ("day_of_year(vector(NaN))", IR), ("day_of_week(vector(NaN))", IR), ("month(vector(NaN))", IR), ("day_of_year(vector(1735603200))", IR),
    # keywords as names, same label sets once the name is gone
    ("sum", IR), ("by", IR), ("without", IR), ("or", IR), ("unless", IR), ("atan2", IR),
    ("ignoring", IR), ("group_right", IR), ("count_values", IR), ("Sum", IR), ("AND", IR),
    ('sum{a="b"}', IR), ("sum offset 1m", IR), ("count_over_time(sum[5m])", IR), ("by + 1", IR),
    ("qd_gauge and and", IR), ("sum by (a)", IR), ("offset offset 1m", IR), ("avg_over_time", IR), ("start", IR), ("bool", IR), ("and", IR),
    ("on", IR), ("group_left", IR), ("inf", IR), ('qd_gauge{offset="x"}', IR),
    ("sum by (offset) (qd_gauge)", IR), ('{by="a"}', IR), ("sum by (and) (qd_gauge)", IR),
    ('{__name__=~"qd_gauge|qd_twin"} * 2', IR), ('abs({__name__=~"qd_gauge|qd_twin"})', IR),
    ('{__name__=~"qd_gauge|qd_twin"} > 5', IR), ('{__name__=~"qd_gauge|qd_twin"} > bool 5', IR),
    ('rate({__name__=~"qd_gauge|qd_twin"}[1m])', IR),
    ('sum_over_time({__name__=~"qd_gauge|qd_twin"}[1m])', IR),
    ('last_over_time({__name__=~"qd_gauge|qd_twin"}[1m])', IR),
    ('{__name__=~"qd_gauge|qd_twin"} + on(inst, grp) group_left qd_info', IR),
    ('sort({__name__=~"qd_gauge|qd_twin"})', IR),
    ('timestamp({__name__=~"qd_gauge|qd_twin"})', IR),
    ('label_replace({__name__=~"qd_gauge|qd_twin"}, "__name__", "x", "", "")', IR),
    ('-{__name__=~"qd_gauge|qd_twin"}', IR),
    ('{__name__=~"qd_gauge|qd_twin"} and qd_gauge', IR),
    ('max_over_time(abs({__name__=~"qd_gauge|qd_twin"})[2m:1m])', IR),
    ("qd_gauge[1m:20s] @ end()", "i"), ("rate(qd_counter[1m] @ end() offset 1m)", IR),
    ("qd_gauge and on() vector(1) > 2", IR), ("(qd_gauge and on() vector(1)) > 2", IR),
    # errors and edge cases
    ("qd_gauge{}", IR), ("{}", IR), ('{__name__=""}', IR), ("rate(qd_gauge)", IR),
    ("rate(qd_gauge[5m]", IR), ("qd_gauge[5m] + 1", IR), ("sum(qd_gauge[5m])", IR),
    ("nope_func(qd_gauge)", IR), ("abs(qd_gauge, 1)", IR), ('label_replace(qd_gauge, "a")', IR),
    ("holt_winters(qd_gauge[5m], 0, 0.5)", IR), ("holt_winters(qd_gauge[5m], 0.5, 1)", IR),
    ("qd_gauge[0s]", "i"), ("rate(qd_counter[1m:0s])", IR), ("qd_gauge offset", IR),
    ("qd_gauge @ foo()", IR), ("1 @ 10", IR), ('"a" + 1', IR), ("qd_gauge and 1", IR),
    ("1 or 2", IR), ("topk(qd_gauge, qd_gauge)", IR), ("quantile(\"x\", qd_gauge)", IR),
    ('count_values(1, qd_gauge)', IR), ('count_values("1bad", qd_gauge)', IR),
    ("qd_gauge == bool", IR), ("1 > 2", IR), ("1 > bool 2", IR), ("sum by (__name__) (qd_gauge)", IR),
    ("vector(1) + on() group_left vector(2)", IR), ("qd_gauge * on(inst) qd_gauge", IR),
    ("qd_gauge * on(inst) group_left qd_gauge", IR), ("histogram_quantile(0.5, qd_gauge)", IR),
    ("info(qd_gauge)", IR), ("sort_by_label(qd_gauge, \"inst\")", IR),
    ("histogram_avg(k6_http_req_duration_seconds)", IR),
    ("histogram_stddev(k6_http_req_duration_seconds)", IR),
    ("double_exponential_smoothing(qd_gauge[5m], 0.5, 0.5)", IR),
    ("mad_over_time(qd_gauge[5m])", IR), ("limitk(1, qd_gauge)", IR),
    ('{"qd_gauge"}', IR), ("qd_gauge[5m+1m]", "i"), ("rate(qd_counter[1m]) offset 1m", IR),
    ("qd_gauge @ 1e20", IR), ("qd_gauge{inst=~\"(\"}", IR), ("time() + ", IR), ("sum(", IR),
    ("1 + @", IR), ("abs()", IR), ("qd_gauge[1m][1m:]", "i"), ("-{__name__=\"qd_gauge\"}", IR),
]


def params_for(q, mode, end_s):
    q = q.replace("{E}", str(end_s)).replace("{S}", str(end_s - RANGE_S))
    if mode == "i":
        return "/api/v1/query", {"query": q, "time": end_s}
    if mode == "e":  # early: windows reach back before the first sample
        return "/api/v1/query", {"query": q, "time": end_s - 14 * 60 - 7.5}
    if mode == "o":  # unaligned start, fractional step
        return "/api/v1/query_range", {"query": q, "start": end_s - 333.3, "end": end_s - 0.2,
                                       "step": "7.7"}
    return "/api/v1/query_range", {"query": q, "start": end_s - RANGE_S, "end": end_s,
                                   "step": "20"}


def run_one(pl, prom, q, mode, end_s):
    path, params = params_for(q, mode, end_s)
    qs = urllib.parse.urlencode(params)
    sp, _, bp = http("GET", pl.url(f"{path}?{qs}"), timeout=30)
    sq, _, bq = http("GET", f"{prom}{path}?{qs}", timeout=30)
    note = None
    if sq != 200 or sp != 200:
        try:
            jp, jq = json.loads(bp), json.loads(bq)
        except ValueError:
            return f"HTTP {sp} vs {sq}: {bp[:200]!r} / {bq[:200]!r}", None, 0
        if sp != sq or jp.get("errorType") != jq.get("errorType"):
            return (f"HTTP {sp} {jp.get('errorType')} {jp.get('error', '')[:200]!r} / "
                    f"prometheus HTTP {sq} {jq.get('errorType')} {jq.get('error', '')[:200]!r}",
                    None, -1)
        if jp.get("error") != jq.get("error"):
            note = f"message differs: promlet {jp.get('error')!r} / prometheus {jq.get('error')!r}"
        return None, note, -1
    diff = compare(bp, bq)
    res = json.loads(bq)["data"]["result"]
    return diff, note, len(res) if isinstance(res, list) else 1


def main():
    if not shutil.which("prometheus"):
        skip_all("prometheus not installed")
    shared = os.environ["SHARED"]
    prom, _ = start_prometheus()
    # promlet keeps 15 minutes by default; the data set starts 15 minutes back
    pl = Promlet("storage:\n  retention: 1h\n", ["--promql.compat=v2"])
    if pl.addr is not None and http("POST", pl.url("/api/v1/write"), b"",
                                     qd.RW_HEADERS)[0] == 404:
        skip_all("this build has no remote-write receiver (/api/v1/write)")
    if not ok(pl.addr is not None, "promlet starts", pl.logtext()):
        done()

    end = (int(time.time()) // 5 * 5 - 10) * 1000
    ds = qd.build(shared, end, minutes=15) + extra_series(end)
    codes_p, codes_q = set(), set()
    for chunk in qd.split_by_time(ds, 60000):
        body = qd.encode_write_request(chunk)
        codes_p.add(http("POST", pl.url("/api/v1/write"), body, qd.RW_HEADERS)[0])
        codes_q.add(http("POST", f"{prom}/api/v1/write", body, qd.RW_HEADERS)[0])
    ok(codes_p == {204} and codes_q == {204}, "both accept the data set by remote write",
       f"promlet {codes_p}, prometheus {codes_q}")

    end_s = end // 1000
    counts = {"same": 0, "diff": 0, "todo": 0, "msg": 0}
    names = {"i": "instant", "e": "early instant", "r": "range", "o": "odd range"}
    for q, modes in QUERIES:
        for mode in modes + ("e" if "i" in modes else "") + ("o" if "r" in modes else ""):
            diff, note, n = run_one(pl, prom, q, mode, end_s)
            what = "error" if n < 0 else f"{n} series"
            desc = f"{names[mode]}: {q} ({what})".replace("\n", "\\n")  # one TAP line
            if q in KNOWN:
                desc += f" # TODO {KNOWN[q]}"
                counts["todo"] += 1
            else:
                counts["same" if diff is None else "diff"] += 1
            ok(diff is None, desc, diff)
            if note:
                counts["msg"] += 1
                print(f"#   {note}")
    print(f"# {len(QUERIES)} queries, {sum(counts[k] for k in ('same', 'diff', 'todo'))} "
          f"comparisons: {counts['same']} answers agree, {counts['diff']} differ, "
          f"{counts['todo']} known differences; {counts['msg']} error messages differ")
    ok(pl.proc.poll() is None, "promlet is still running")
    done()


if __name__ == "__main__":
    sys.exit(main())
