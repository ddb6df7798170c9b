# SPDX-License-Identifier: Apache-2.0
"""Real-time driver for the Prometheus alert-generator compliance scenarios (issue 6).

Our own Python restatement of the tester described in
../shared/conformance/alert_generator/SPEC.md (sections 1-9), following the checks and
tolerances of the upstream Go tester (prometheus/compliance, alert_generator/: testsuite.go,
server.go, cases/*.go). It starts promlet with the spec's rules.yaml and an Alertmanager
pointing at its own receiver, remote-writes the four scenarios' samples live (one request per
15 s timestamp), and every 30 s (from 7.5 s on) checks GET /api/v1/alerts, GET /api/v1/rules
and GET /api/v1/query?query=ALERTS against the acceptable states of that moment; its
receiver matches every notification against the expected alerts (arrival windows, resends,
startsAt/endsAt, labels, annotations). A full run takes about 38 minutes. promlet runs with --no-rules.event-evaluation: groups are
evaluated on their interval only, as Prometheus (with event evaluations on every write, the
SmallFor alert's `for: 15s` can be met 15 s after it turned pending instead of at the next
30 s evaluation, which the tester's startsAt window rejects).

Run it (Debian's python3 is needed for snappy):

    ninja -C build && /usr/bin/python3 tests/alertgen/alertgen_driver.py \\
        --promlet build/exporter/promlet [--log-dir DIR] [--max-minutes M]

or, configured with `meson setup build -Dalertgen=true`, `meson test -C build --suite alertgen`.
It prints one line per group and check (passed/failed with the first errors) and ends with
"N passed, N failed"; the exit status is 1 on any failure. --max-minutes stops early for a
smoke run: the checks done so far are reported, the rest count as not run (failed).
"""
import argparse
import datetime
import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import rwlib  # noqa: E402  (needs Debian's python3-snappy)

RW_INTERVAL = 15.0
GI = 30.0  # group interval of every group in rules.yaml
RESEND_DELAY = 60.0
MAX_RTT = 5.0
ENDS_AT_DELTA = max(4 * RESEND_DELAY, 4 * GI)
S = "alert_generator_test_suite"
CHECKS = ("alerts_api", "rules_api", "alerts_metric", "notifications")


def t_(i):
    """Relative time in seconds of the i-th sample."""
    return i * RW_INTERVAL


def sample_slice(*values):
    """The tester's value notation: "V" is a value, "AxB" adds A to the value B times."""
    out, val = [], 0.0
    for v in values:
        if "x" in v:
            a, b = v.split("x")
            for _ in range(int(b)):
                val += float(a)
                out.append(val)
        else:
            val = float(v)
            out.append(val)
    return out


def ms(t):
    """Times are compared in whole milliseconds, as the Go tester's."""
    return round(t * 1000)


def lkey(d):
    return tuple(sorted(d.items()))


def between(rel, start, end):
    """The tester's betweenFunc: rel in (start, end + 2*MaxRTT], seconds."""
    return rel > start and rel <= end + 2 * MAX_RTT


def norm_query(q):
    """PromQL text compared after a light normalisation (the tester parses both sides):
    {__name__="x", ...} becomes x{...}; whitespace outside string literals is dropped."""
    q = re.sub(r'\{\s*__name__\s*=\s*"([^"]+)"\s*,?\s*', r"\1{", q)
    out, quote = [], None
    for c in q:
        if quote:
            out.append(c)
            if c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
            out.append(c)
        elif not c.isspace():
            out.append(c)
    return sort_matchers("".join(out).replace("'", '"'))


def sort_matchers(q):
    """Matchers inside each {...} in sorted order, as Prometheus's printer writes them (the
    tester compares parsed expressions, so their order does not count)."""
    out, i = [], 0
    while i < len(q):
        c = q[i]
        if c in "\"`":
            j = i + 1
            while j < len(q) and q[j] != c:
                j += 2 if q[j] == "\\" and c == '"' else 1
            out.append(q[i:j + 1])
            i = j + 1
        elif c == "{":
            parts, cur, j, quote = [], [], i + 1, None
            while j < len(q) and (quote or q[j] != "}"):
                ch = q[j]
                if quote:
                    if ch == "\\" and quote == '"':
                        cur.append(q[j:j + 2])
                        j += 2
                        continue
                    if ch == quote:
                        quote = None
                elif ch in "\"`":
                    quote = ch
                elif ch == ",":
                    parts.append("".join(cur))
                    cur = []
                    j += 1
                    continue
                cur.append(ch)
                j += 1
            parts.append("".join(cur))
            out.append("{" + ",".join(sorted(p for p in parts if p)) + "}")
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_time(s):
    """RFC 3339 with any fraction to unix seconds; Go's zero time -> None."""
    if not s or s.startswith("0001-01-01"):
        return None
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", s)
    if not m:
        raise ValueError(f"not RFC 3339: {s!r}")
    base = datetime.datetime.fromisoformat(m.group(1) + (
        "+00:00" if m.group(3) == "Z" else m.group(3))).timestamp()
    return base + (float(m.group(2)) if m.group(2) else 0.0)


def fmt_t(t, zero=None):
    if t is None:
        return "-"
    s = datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S.%f")[:-3]
    return f"{s}(+{t - zero:.1f}s)" if zero is not None else s


def A(labels, annotations, state, value, active_at):
    return {"labels": labels, "annotations": annotations, "state": state, "value": value,
            "activeAt": active_at}


class Case:
    """One rule group of the spec. Subclasses give rules (name, query, for seconds, labels,
    annotations), series ({labels}, [values]), total_samples, options(rel) -> list of
    acceptable alert lists (relative activeAt), and expected() -> expected notifications."""
    name = ""
    rules = []
    total_samples = 0

    def init(self, zero):
        self.zero = zero

    def test_until(self):
        return self.zero + self.total_samples * RW_INTERVAL

    def abs_options(self, now):
        opts = []
        for o in self.options(now - self.zero):
            opts.append([dict(a, activeAt=self.zero + a["activeAt"]) for a in o])
        return opts

    # -- the three API checks (cases/utils.go) --
    def check_alerts(self, now, alerts):
        return check_expected_alerts(self.abs_options(now), alerts)

    def check_rules(self, now, rg):
        if now - self.zero < 2 * GI:
            return None  # the tester waits for one evaluation
        if rg is None:
            return "no rule group found"
        errs = []
        for opt in self.abs_options(now):
            e = rule_group_mismatch(now, self, opt, rg)
            if e is None:
                return None
            errs.append(e)
        return "one of: " + " | ".join(f"({i + 1}) {e}" for i, e in enumerate(errs))

    def check_metrics(self, now, now_s, samples):
        errs = []
        for opt in self.abs_options(now):
            exp = []
            for a in opt:
                lb = dict(a["labels"], __name__="ALERTS", alertstate=a["state"])
                exp.append((lkey(lb), now_s, 1.0))
            exp.sort()
            act = sorted(samples)
            if exp == act:
                return None
            errs.append(f"expected {exp}, got {act}")
        return "metrics mismatch, one of: " + " | ".join(errs)


def rule_state(alerts):
    states = {a["state"] for a in alerts}
    return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"


def alerts_mismatch(exp, act):
    if len(exp) != len(act):
        return f"different number of alerts - expected({len(exp)}): {exp}, actual({len(act)}): {act}"
    exp = sorted(exp, key=lambda a: lkey(a["labels"]))
    act = sorted(act, key=lambda a: lkey(a["labels"]))
    for e, a in zip(exp, act):
        try:
            av = float(a.get("value"))
        except (TypeError, ValueError):
            return f"value does not parse: {a}"
        if not (e["labels"] == a.get("labels") and e["annotations"] == (a.get("annotations") or {})
                and e["state"] == a.get("state") and float(e["value"]) == av):
            return f"alerts mismatch - expected: {e}, actual: {a}"
    for e, a in zip(exp, act):
        try:
            t = parse_time(a.get("activeAt"))
        except ValueError as x:
            return str(x)
        if t is None:
            return f"ActiveAt not found for the alert - alert: {a}"
        if ms(t) < ms(e["activeAt"]) or ms(e["activeAt"] + GI + 2 * MAX_RTT) < ms(t):
            return (f"ActiveAt mismatch - alert {a['labels']}: expected range "
                    f"[{fmt_t(e['activeAt'])}, {fmt_t(e['activeAt'] + GI + 2 * MAX_RTT)}], "
                    f"actual {a.get('activeAt')}")
    return None


def check_expected_alerts(options, act):
    errs = []
    for exp in options:
        e = alerts_mismatch(exp, act)
        if e is None:
            return None
        errs.append(e)
    if len(errs) == 1:
        return "error in alerts: " + errs[0]
    return "one of: " + " | ".join(f"({i + 1}) {e}" for i, e in enumerate(errs))


def rule_group_mismatch(now, case, opt, rg):
    if rg.get("interval") != GI:
        return f"wrong group interval, expected {GI}, got {rg.get('interval')}"
    try:
        le = parse_time(rg.get("lastEvaluation"))
    except ValueError as x:
        return str(x)
    cut = now - MAX_RTT - GI
    if le is None or le < cut:
        return f"expected a group evaluation after {fmt_t(cut)}, last was {rg.get('lastEvaluation')}"
    act_rules = rg.get("rules") or []
    if len(act_rules) != len(case.rules):
        return f"different number of rules, expected {len(case.rules)}, got {len(act_rules)}"
    if any(r.get("type") != "alerting" for r in act_rules):
        return "found a rule that is not an alerting rule"
    act_rules = sorted(act_rules, key=lambda r: (r.get("name", ""), lkey(r.get("labels") or {})))
    exp_rules = sorted(case.rules, key=lambda r: (r[0], lkey(r[3])))
    act_alerts = [a for r in act_rules for a in (r.get("alerts") or [])]
    exp_alerts = []
    for (name, query, dur, labels, anns), a in zip(exp_rules, act_rules):
        mine = [x for x in opt if x["labels"]["alertname"] == name]
        exp_alerts += mine
        checks = (("State", rule_state(mine), a.get("state")), ("Name", name, a.get("name")),
                  ("Query", norm_query(query), norm_query(a.get("query", ""))),
                  ("Duration", float(dur), float(a.get("duration") or 0)),
                  ("Labels", labels, a.get("labels") or {}),
                  ("Annotations", anns, a.get("annotations") or {}),
                  ("Health", "ok", a.get("health")), ("LastError", "", a.get("lastError") or ""))
        for what, e, g in checks:
            if e != g:
                return f"rule {name}: mismatch in {what}, expected {e!r}, got {g!r}"
        try:
            rle = parse_time(a.get("lastEvaluation"))
        except ValueError as x:
            return str(x)
        if rle is None or rle < cut:
            return f"rule {name}: expected an evaluation after {fmt_t(cut)}, last {a.get('lastEvaluation')}"
    e = alerts_mismatch(exp_alerts, act_alerts)
    return None if e is None else "rule alerts: " + e


# ---------------------------------------------------------------- the four cases (cases/*.go)
def ml(group, alert):
    return {"__name__": S, "alertname": alert, "rulegroup": group}


def sel(group, alert):
    return '{__name__="%s", alertname="%s", rulegroup="%s"}' % (S, alert, group)


class PendingAndFiringAndResolved(Case):
    name = "PendingAndFiringAndResolved"
    alert = name + "_SimpleAlert"
    L = {"alertname": alert, "foo": "bar", "rulegroup": name}

    def __init__(self):
        self.rules = [(self.alert, sel(self.name, self.alert) + " > 10", 360,
                       {"foo": "bar", "rulegroup": self.name},
                       {"description": "SimpleAlert is firing",
                        "summary": "The value is {{$value}} {{.Value}}"})]
        vals = sample_slice("3", "5", "0x2", "9", "0x3", "11", "0x12", "15", "0x11", "0x20", "19",
                            "0x15", "9", "0x19", "15", "0x24", "0x20", "8", "0x15")
        self.series = [(ml(self.name, self.alert), vals)]
        self.total_samples = len(vals)

    def ann(self, v):
        return {"description": "SimpleAlert is firing", "summary": f"The value is {v} {v}"}

    def options(self, rel):
        b = lambda s, e: between(rel, s, e)  # noqa: E731
        inactive = b(0, t_(8) + GI) or b(t_(69) - 1, t_(89) + GI) or b(t_(134), t_(240))
        p1 = b(t_(8) - 1, t_(21) + GI)
        p2 = b(t_(21) - 1, t_(32) + GI)
        f1 = b(t_(32) - 1, t_(53) + GI)
        f2 = b(t_(53) - 1, t_(69) + GI)
        p_again = b(t_(89) - 1, t_(113) + GI)
        f_again = b(t_(113) - 1, t_(134) + GI)
        aa1, aa2 = t_(8), t_(89)
        o = []
        if inactive:
            o.append([])
        if p1:
            o.append([A(self.L, self.ann(11), "pending", "11", aa1)])
        if p2 or p_again:
            o.append([A(self.L, self.ann(15), "pending", "15", aa2 if p_again else aa1)])
        if f1 or f_again:
            o.append([A(self.L, self.ann(15), "firing", "15", aa2 if f_again else aa1)])
        if f2:
            o.append([A(self.L, self.ann(19), "firing", "19", aa1)])
        return o

    def expected(self, ex):
        ex.run(self.L, self.ann(15), t_(32), t_(53), False, t_(53), t_(69), t_(32))
        ex.run(self.L, self.ann(19), t_(53), t_(69), False, t_(69), t_(69), t_(32), first_resend=True)
        ex.run(self.L, self.ann(19), t_(69), t_(89), True, t_(89), t_(69), t_(32))
        ex.run(self.L, self.ann(15), t_(113), t_(134), False, t_(134), t_(134), t_(113))
        ex.run(self.L, self.ann(15), t_(134), t_(134) + 900, True, None, t_(134), t_(113))


class PendingAndResolvedAlwaysInactive(Case):
    name = "PendingAndResolved_AlwaysInactive"
    pa, ia = name + "_PendingAlert", name + "_InactiveAlert"

    def __init__(self):
        self.rules = [
            (self.pa, sel(self.name, self.pa) + " > 10", 180, {"foo": "bar", "rulegroup": self.name},
             {"description": "SimpleAlert is firing"}),
            (self.ia, sel(self.name, self.ia) + " > 99", 180, {"ba_dum": "tss", "rulegroup": self.name},
             {"description": "This should never fire"})]
        vals = sample_slice("3", "5", "0x2", "9", "0x3", "11", "0x10", "9")
        self.series = [(ml(self.name, self.pa), vals), (ml(self.name, self.ia), vals)]
        self.total_samples = len(vals) + 40

    def options(self, rel):
        o = []
        if between(rel, 0, t_(8) + GI) or between(rel, t_(19), t_(240)):
            o.append([])
        if between(rel, t_(8) - 1, t_(19) + GI):
            o.append([A({"alertname": self.pa, "foo": "bar", "rulegroup": self.name},
                        {"description": "SimpleAlert is firing"}, "pending", "11", t_(8))])
        return o

    def expected(self, ex):
        pass  # never notified


class ZeroForSmallFor(Case):
    name = "ZeroFor_SmallFor"
    zf, sf = name + "_ZeroFor", name + "_SmallFor"
    ZL = {"alertname": zf, "foo": "bar", "rulegroup": name}
    SL = {"alertname": sf, "ba_dum": "tss", "rulegroup": name}
    ZT = ('{{ define "testtemplate" }}Args are: {{.arg0}} {{.arg1}} {{.arg2}}. {{ with query '
          '"alert_generator_test_suite{rulegroup=\'ZeroFor_SmallFor\',for=\'template\'}" }}'
          'first_id:{{ . | sortByLabel "id" | first | label "id"}},{{ range $v := sortByLabel '
          '"id" .}}{{ . | label "id" }}:{{ . | value }},{{end}}{{end}}{{ end }}{{ template '
          '"testtemplate" (args "foo" "bar" 99) }}')
    ZTT = ("{{humanize 1048576}} {{humanize1024 1048576}} {{humanizeDuration 135.3563}} "
           "{{humanizePercentage 0.959}} {{humanizeTimestamp 1643114203}}")
    STT = ('{{title "this part"}} {{toUpper "is testing"}} {{toLower "THE STRINGS"}}. {{ stripPort '
           '"[::1]:6006"}} {{ stripPort "127.0.0.1:4004"}}. {{parseDuration "2h10m15s"}}. {{if match '
           '"[0-9]+" "1234"}}{{reReplaceAll "r.*d" "replaced" "rpld text"}}{{end}}. {{if match '
           '"[0-9]+$" "1234a"}}WRONG{{end}}.')
    SANN = {"description": "This should fire after an interval",
            "template_test": "This Part IS TESTING the strings. ::1 127.0.0.1. 7815. replaced text. ."}

    def __init__(self):
        self.rules = [
            (self.zf, sel(self.name, self.zf) + " > 10", 0, {"foo": "bar", "rulegroup": self.name},
             {"description": "This should immediately fire", "template_test": self.ZTT,
              "template_query_test": self.ZT}),
            (self.sf, sel(self.name, self.sf) + " > 13", 15, {"ba_dum": "tss", "rulegroup": self.name},
             {"description": "This should fire after an interval", "template_test": self.STT})]
        vals = sample_slice("3", "5", "0x2", "9", "0x3", "15", "0x12", "9", "0x71", "11", "0x12", "9")
        self.series = [(ml(self.name, self.zf), vals), (ml(self.name, self.sf), vals)]
        for i in (1, 2, 3):
            self.series.append(({"__name__": S, "rulegroup": self.name, "for": "template",
                                 "id": str(100 + i), "__value__": f"val{i}"},
                                sample_slice(str(i), "0x27", str(2 * i), "0x200")))
        self.total_samples = len(vals) + 20

    def zann(self, k):
        return {"description": "This should immediately fire",
                "template_test": "1.049M 1Mi 2m 15s 95.9% 2022-01-25 12:36:43 +0000 UTC",
                "template_query_test": f"Args are: foo bar 99. first_id:101,101:{k},102:{2 * k},103:{3 * k},"}

    def options(self, rel):
        b = lambda s, e: between(rel, s, e)  # noqa: E731
        inactive = b(0, t_(8) + GI) or b(t_(21) - 1, t_(93) + GI) or b(t_(106), t_(240))
        zf_f = b(t_(8) - 1, t_(21) + GI)
        zf_again = b(t_(93) - 1, t_(106) + GI)
        sf_p = b(t_(8) - 1, t_(8) + 2 * GI)
        sf_f = b(t_(8) + GI, t_(21) + GI)
        z1 = A(self.ZL, self.zann(1), "firing", "15", t_(8))
        o = []
        if inactive:
            o.append([])
        if zf_f and sf_p:
            o.append([z1, A(self.SL, self.SANN, "pending", "15", t_(8))])
        if zf_f and sf_f:
            o.append([z1, A(self.SL, self.SANN, "firing", "15", t_(8))])
        if zf_again:
            o.append([A(self.ZL, self.zann(2), "firing", "11", t_(93))])
        return o

    def expected(self, ex):
        ex.run(self.ZL, self.zann(1), t_(8), t_(21), False, t_(21), t_(21), t_(8))
        ex.run(self.ZL, self.zann(1), t_(21), t_(21) + 900, True, t_(93), t_(21), t_(8))
        ex.run(self.ZL, self.zann(2), t_(93), t_(106), False, t_(106), t_(106), t_(93))
        ex.run(self.ZL, self.zann(2), t_(106), t_(106) + 900, True, None, t_(106), t_(93))
        ex.run(self.SL, self.SANN, t_(8) + GI, t_(21), False, t_(21), t_(21), t_(8) + GI)
        ex.run(self.SL, self.SANN, t_(21), t_(21) + 900, True, None, t_(21), t_(8) + GI)


class NewAlertsOrderCheck(Case):
    name = "NewAlerts_OrderCheck"
    r1, r2 = name + "_Rule1", name + "_Rule2"
    R2Q = ('(ALERTS{alertstate="firing", alertname="%s", foo="bar", rulegroup="%s", variant="one"} '
           '+ ignoring(variant) ALERTS{alertstate="firing", alertname="%s", foo="bar", '
           'rulegroup="%s", variant="two"}) == 2' % (r1, name, r1, name))
    ANN1 = {"description": "This should produce more alerts later"}
    ANN2 = {"description": "Based on ALERTS. Old alertname was %s. foo was bar." % r1}

    def __init__(self):
        self.rules = [
            (self.r1, sel(self.name, self.r1) + " > 10", 180, {"foo": "bar", "rulegroup": self.name},
             self.ANN1),
            (self.r2, self.R2Q, 0, {"foo": "baz", "ba_dum": "tss", "rulegroup": self.name},
             {"description": "Based on ALERTS. Old alertname was {{$labels.alertname}}. "
                             "foo was {{.Labels.foo}}."})]
        v1 = sample_slice("1", "0x7", "11", "0x64", "9", "0x20")
        v2 = sample_slice("1", "0x31", "11", "0x32", "9", "0x20")
        self.series = [(dict(ml(self.name, self.r1), variant="one"), v1),
                       (dict(ml(self.name, self.r1), variant="two"), v2)]
        self.total_samples = max(len(v1), len(v2))
        self.L1 = {"alertname": self.r1, "foo": "bar", "rulegroup": self.name, "variant": "one"}
        self.L2 = dict(self.L1, variant="two")
        self.L3 = {"alertname": self.r2, "alertstate": "firing", "foo": "baz", "ba_dum": "tss",
                   "rulegroup": self.name}

    def options(self, rel):
        b = lambda s, e: between(rel, s, e)  # noqa: E731
        r11_i = b(0, t_(8) + GI) or b(t_(73), t_(240))
        r11_p = b(t_(8) - 1, t_(20) + GI)
        r11_f = b(t_(20) - 1, t_(73) + GI)
        r12_i = b(0, t_(32) + GI) or b(t_(65), t_(240))
        r12_p = b(t_(32) - 1, t_(44) + GI)
        r12_f = b(t_(44) - 1, t_(73) + GI)  # sic: the upstream tester's window
        one_p = A(self.L1, self.ANN1, "pending", "11", t_(8))
        one_f = A(self.L1, self.ANN1, "firing", "11", t_(8))
        o = []
        if r11_i and r12_i:
            o.append([])
        if r11_p and r12_i:
            o.append([one_p])
        if r11_f and r12_i:
            o.append([one_f])
        if r11_f and r12_p:
            o.append([one_f, A(self.L2, self.ANN1, "pending", "11", t_(32))])
        if r11_f and r12_f:
            o.append([one_f, A(self.L2, self.ANN1, "firing", "11", t_(32)),
                      A(self.L3, self.ANN2, "firing", "2", t_(44))])
        return o

    def expected(self, ex):
        ex.run(self.L1, self.ANN1, t_(20), t_(73), False, t_(73), t_(73), t_(20))
        ex.run(self.L1, self.ANN1, t_(73), t_(73) + 900, True, None, t_(73), t_(20))
        ex.run2([(self.L2, self.ANN1), (self.L3, self.ANN2)], t_(44), t_(65), False, t_(65), t_(65), t_(44))
        ex.run2([(self.L2, self.ANN1), (self.L3, self.ANN2)], t_(65), t_(65) + 900, True, None, t_(65),
                t_(44))


# ------------------------------------------------------- expected notifications (server.go)
class Expected:
    """Builds ExpectedAlert records (relative times made absolute with zero)."""

    def __init__(self, zero):
        self.zero = zero
        self.out = []

    def _add(self, labels, anns, ts, resolved, resend, tol, next_state, resolved_time, starts):
        z = self.zero
        self.out.append({"id": len(self.out) + 1, "labels": labels, "annotations": anns,
                         "tol": tol, "ts": z + ts, "resolved": resolved, "resend": resend,
                         "next_state": None if next_state is None else z + next_state,
                         "resolved_time": None if resolved_time is None else z + resolved_time,
                         "starts_at": z + starts})

    def run(self, labels, anns, start, end, resolved, next_state, resolved_time, starts,
            first_resend=False):
        self.run2([(labels, anns)], start, end, resolved, next_state, resolved_time, starts,
                  first_resend)

    def run2(self, pairs, start, end, resolved, next_state, resolved_time, starts, first_resend=False):
        ts = start
        while ts < end:
            tol = 2 * GI if resolved and ts == start else GI
            for labels, anns in pairs:
                self._add(labels, anns, ts, resolved, first_resend or ts != start, tol, next_state,
                          resolved_time, starts)
            ts += RESEND_DELAY


def within(ea_tol, exp, act):
    return ms(act) > ms(exp) and ms(act) < ms(exp + ea_tol)


def within_rtt(ea, exp, act):
    return act > exp and act < exp + ea["tol"] + 2 * MAX_RTT


def time_can_be_ignored(ea, t):
    return within_rtt(ea, ea["ts"], t) or ea["ts"] > t


def can_be_ignored(ea):
    return ((ea["resolved"] and ea["ts"] - ea["resolved_time"] > 900) or
            (ea["next_state"] is not None and time_can_be_ignored(ea, ea["next_state"])) or
            (ea["resolved_time"] is not None and not ea["resolved"] and
             time_can_be_ignored(ea, ea["resolved_time"])))


def should_be_ignored(ea):
    return ((ea["resolved"] and ea["ts"] - ea["resolved_time"] > 900) or
            (ea["next_state"] is not None and ea["ts"] > ea["next_state"]))


def matches(ea, now, a):
    """ExpectedAlert.Matches: None or an error text."""
    if a["labels"] != ea["labels"]:
        return f"labels mismatch, expected {ea['labels']}, got {a['labels']}"
    if a["annotations"] != ea["annotations"]:
        return f"annotations mismatch, expected {ea['annotations']}, got {a['annotations']}"
    if not within_rtt(ea, ea["ts"], now):
        return (f"got the alert a little late, expected range [{fmt_t(ea['ts'])}, "
                f"{fmt_t(ea['ts'] + ea['tol'])}], got {fmt_t(now)}")
    if a["startsAt"] is not None and not within(ea["tol"], ea["starts_at"], a["startsAt"]):
        return (f"mismatch in StartsAt, expected range [{fmt_t(ea['starts_at'])}, "
                f"{fmt_t(ea['starts_at'] + ea['tol'])}], got {fmt_t(a['startsAt'])}")
    if a["endsAt"] is not None:
        exp = ea["resolved_time"] if ea["resolved"] else now + ENDS_AT_DELTA
        if not within(ea["tol"], exp, a["endsAt"]) and not within(ea["tol"], exp - 2 * MAX_RTT,
                                                                  a["endsAt"]):
            return (f"mismatch in EndsAt, expected range [{fmt_t(exp)}, {fmt_t(exp + ea['tol'])}], "
                    f"got {fmt_t(a['endsAt'])}")
    if a.get("generatorURL"):
        u = urllib.parse.urlparse(a["generatorURL"])
        if not u.scheme:
            return f"generator URL {a['generatorURL']!r} does not parse as a URL"
    return None


class AlertsServer:
    """The tester's alert receiver: accepts POST on any path with a JSON array of alerts and
    matches each against the expected alerts of its label set (server.go)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.expected = {}  # label key -> [ea]
        self.errs = {}  # group -> {"missed": [], "unexpected": [], "matching": []}
        self.log = []  # (arrival, alert, verdict)
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_OPTIONS(self):
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Access-Control-Allow-Method", "POST")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self):
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                try:
                    alerts = json.loads(body)
                    if not isinstance(alerts, list):
                        raise ValueError("not a JSON array")
                    parsed = [{"labels": a.get("labels") or {},
                               "annotations": a.get("annotations") or {},
                               "startsAt": parse_time(a.get("startsAt")),
                               "endsAt": parse_time(a.get("endsAt")),
                               "generatorURL": a.get("generatorURL", "")} for a in alerts]
                except (ValueError, AttributeError, TypeError) as e:
                    with outer.lock:
                        outer.log.append((now, {"body": body[:200].decode("utf-8", "replace")},
                                          f"400: {e}"))
                    self.send_response(400)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                outer.receive(now, parsed)
                self.send_response(200)
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.srv.daemon_threads = True
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def err(self, group):
        return self.errs.setdefault(group, {"missed": [], "unexpected": [], "matching": []})

    def add_expected(self, eas):
        for ea in eas:
            self.expected.setdefault(lkey(ea["labels"]), []).append(ea)
        for k in {lkey(ea["labels"]) for ea in eas}:
            self.expected[k].sort(key=lambda e: e["id"])

    def add_missed(self, eas):
        for ea in eas:
            self.err(ea["labels"].get("rulegroup", ""))["missed"].append(ea)

    def possible(self, now, key):
        """getPossibleAlert: the expected alerts of key whose window holds now; prunes old ones."""
        found, missed = [], []
        for k, eas in self.expected.items():
            keep = []
            for ea in eas:
                if should_be_ignored(ea):
                    continue
                tol = ea["tol"] + 2 * MAX_RTT
                if ea["ts"] + tol < now:
                    if not can_be_ignored(ea):
                        missed.append(ea)
                elif k == key and now > ea["ts"] and now < ea["ts"] + tol:
                    found.append(ea)
                else:
                    keep.append(ea)
            self.expected[k] = keep
        self.add_missed(missed)
        return found

    def receive(self, now, alerts):
        with self.lock:
            add_back, missed, success = [], [], {}
            for al in alerts:
                key = lkey(al["labels"])
                exp = self.possible(now, key)
                errs = self.err(al["labels"].get("rulegroup", ""))
                if not exp:
                    errs["unexpected"].append((now, al))
                    self.log.append((now, al, "UNEXPECTED"))
                    print(f"# FAIL notification at {fmt_t(now)}: unexpected {al['labels']} "
                          f"endsAt {fmt_t(al['endsAt'])}", flush=True)
                    continue
                first_err, idx = None, None
                for i, ex in enumerate(exp):
                    e = matches(ex, now, al)
                    if e is None:
                        success[key] = ex
                        idx, first_err = i, None
                        break
                    if first_err is None:
                        first_err = (now, ex, al, e)
                if first_err is None:
                    add_back += exp[idx + 1:]
                    last_resend_ignored = False
                    for ma in exp[:idx]:
                        if not can_be_ignored(ma):
                            if last_resend_ignored and ma["resend"]:
                                continue
                            last_resend_ignored = False
                            missed.append(ma)
                        else:
                            last_resend_ignored = ma["resend"]
                    self.log.append((now, al, f"ok (expected #{exp[idx]['id']})"))
                else:
                    add_back += exp
                    errs["matching"].append(first_err)
                    self.log.append((now, al, "MISMATCH: " + first_err[3]))
                    print(f"# FAIL notification at {fmt_t(now)}: {al['labels']}: {first_err[3]}",
                          flush=True)
            self.add_expected(add_back)
            self.add_missed(missed)
            # Resends are re-based on the arrival of the matched one (drift of one interval).
            for key, sa in success.items():
                for ea in self.expected.get(key, []):
                    if not ea["resend"]:
                        break
                    ea["ts"] = now + RESEND_DELAY - MAX_RTT

    def cleanup(self, now):
        with self.lock:
            missed = []
            for k, eas in self.expected.items():
                keep = []
                for ea in eas:
                    if should_be_ignored(ea):
                        continue
                    if ea["ts"] + ea["tol"] + 2 * MAX_RTT < now:
                        if not can_be_ignored(ea):
                            missed.append(ea)
                    else:
                        keep.append(ea)
                self.expected[k] = keep
            self.add_missed(missed)

    def group_errors(self, group):
        """Reception errors of a group, plus expected first notifications never received."""
        with self.lock:
            e = self.err(group)
            out = []
            for ea in e["missed"]:
                out.append(f"missed {'resolved' if ea['resolved'] else 'firing'} "
                           f"{'resend' if ea['resend'] else 'notification'} expected "
                           f"{fmt_t(ea['ts'])} for {ea['labels']}")
            for now, al in e["unexpected"]:
                out.append(f"unexpected at {fmt_t(now)}: {al['labels']} startsAt "
                           f"{fmt_t(al['startsAt'])} endsAt {fmt_t(al['endsAt'])}")
            for now, ex, al, msg in e["matching"]:
                out.append(f"mismatch at {fmt_t(now)} ({'resolved' if ex['resolved'] else 'firing'} "
                           f"expected) {al['labels']}: {msg}")
            for eas in self.expected.values():
                for ea in eas:
                    if not ea["resend"] and ea["labels"].get("rulegroup") == group:
                        out.append(f"still expected, never received: "
                                   f"{'resolved' if ea['resolved'] else 'firing'} at "
                                   f"{fmt_t(ea['ts'])} for {ea['labels']}")
            return out


# ------------------------------------------------------------------------------ the run
def http_get(url, timeout=10):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class RemoteWriter(threading.Thread):
    """Sends every sample at its timestamp; all samples of one timestamp in one request."""

    def __init__(self, url, cases, stop):
        super().__init__(daemon=True)
        self.url, self.stop, self.errors, self.writes = url, stop, [], 0
        self.items = {}
        for c in cases:
            for labels, vals in c.series:
                for i, v in enumerate(vals):
                    self.items.setdefault(i, []).append((sorted(labels.items()), v))

    def run(self):
        for i in sorted(self.items):
            t_ms = int(round((self.zero + t_(i)) * 1000))
            delay = t_ms / 1000.0 - time.time()
            if delay > 0 and self.stop.wait(delay):
                return
            body = rwlib.body([rwlib.series(lb, [(v, t_ms)]) for lb, v in self.items[i]])
            err = None
            for attempt in range(3):
                try:
                    req = urllib.request.Request(self.url, data=body, method="POST",
                                                 headers=rwlib.HEADERS)
                    with urllib.request.urlopen(req, timeout=4) as r:
                        if r.status // 100 == 2:
                            err = None
                            break
                        err = f"HTTP {r.status}"
                except (urllib.error.URLError, OSError) as e:
                    err = str(e)
                time.sleep(1)
            self.writes += 1
            if err:
                self.errors.append(f"sample {i}: {err}")
                self.stop.set()
                return


def promlet_config(d, am_port, resend_delay):
    rules_src = os.path.join(os.environ.get("CONFORMANCE", os.path.join(
        HERE, "..", "..", "..", "shared", "conformance")), "alert_generator", "rules.yaml")
    with open(rules_src) as f, open(os.path.join(d, "rules.yaml"), "w") as g:
        g.write(f.read())
    path = os.path.join(d, "promlet.yml")
    with open(path, "w") as f:
        f.write(f"""global:
  evaluation_interval: 30s
rule_files: [rules.yaml]
alerting:
  resend_delay: {resend_delay}
  alertmanagers:
  - static_configs:
    - targets: ['127.0.0.1:{am_port}']
""")
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--promlet", help="promlet binary (default $BUILD_ROOT/exporter/promlet)")
    ap.add_argument("--log-dir", help="keep promlet's log, the API responses and notifications here")
    ap.add_argument("--max-minutes", type=float, help="stop early (smoke run; result is partial)")
    ap.add_argument("--sut-resend-delay", default="1m",
                    help="promlet's resend_delay (the spec needs 1m; others show the checks failing)")
    ap.add_argument("--sut-event-evaluation", action="store_true",
                    help="keep promlet's event evaluations (SmallFor may then fire 15 s early)")
    args = ap.parse_args()
    if args.promlet:
        os.environ["BUILD_ROOT"] = os.path.dirname(os.path.dirname(os.path.abspath(args.promlet)))
    if "BUILD_ROOT" not in os.environ:
        ap.error("give --promlet or set BUILD_ROOT")
    if args.log_dir:
        os.makedirs(args.log_dir, exist_ok=True)
    import plib  # registers the process cleanup
    wall0 = time.time()
    cases = [PendingAndFiringAndResolved(), PendingAndResolvedAlwaysInactive(), ZeroForSmallFor(),
             NewAlertsOrderCheck()]
    am = AlertsServer()
    d = plib.tmpdir()
    pargs = ["--collector.disable-defaults"]
    if not args.sut_event_evaluation:
        pargs.append("--no-rules.event-evaluation")
    p = plib.Promlet(config_path=promlet_config(d, am.port, args.sut_resend_delay), args=pargs)
    if p.addr is None:
        print("# promlet did not start:\n" + p.logtext()[-2000:])
        print("0 passed, 1 failed")
        return 1
    base = f"http://{p.addr}"
    print(f"# promlet {plib.promlet_bin()} on {p.addr}, receiver 127.0.0.1:{am.port}", flush=True)

    stop = threading.Event()
    rw = RemoteWriter(base + "/api/v1/write", cases, stop)
    zero = int(time.time() * 1000) / 1000.0  # milliseconds, as the tester's timestamps
    rw.zero = zero
    for c in cases:
        c.init(zero)
    ex = Expected(zero)
    for c in cases:
        c.expected(ex)
    am.add_expected(ex.out)
    rw.start()
    print(f"# test start {fmt_t(zero)}; {len(ex.out)} expected notifications; "
          f"ends {fmt_t(max(c.test_until() for c in cases))}", flush=True)

    status = {(c.name, k): "running" for c in cases for k in CHECKS}
    counts = {(c.name, k): [0, 0] for c in cases for k in CHECKS}  # checks done, failed
    errors = {(c.name, k): [] for c in cases for k in CHECKS}
    dump = open(os.path.join(args.log_dir, "api.jsonl"), "w") if args.log_dir else None
    until = max(c.test_until() for c in cases)
    if args.max_minutes:
        until = min(until, zero + args.max_minutes * 60)

    def record(c, kind, err, now):
        key = (c.name, kind)
        counts[key][0] += 1
        if err:
            counts[key][1] += 1
            errors[key].append(f"+{now - zero:.1f}s: {err}")
            print(f"# FAIL {c.name} {kind} at +{now - zero:.1f}s: {err[:600]}", flush=True)

    k = 0
    last_cleanup = zero
    while not stop.is_set():
        k += 1
        nxt = zero + 7.5 + GI * k
        if nxt > until + GI:
            break
        if stop.wait(max(0.0, nxt - time.time())):
            break
        now = time.time()
        if now - last_cleanup >= 60:
            am.cleanup(now)
            last_cleanup = now
        live = [c for c in cases if c.test_until() >= now and now <= until]
        for c in cases:
            if c not in live:
                for kind in CHECKS:
                    if status[(c.name, kind)] == "running":
                        status[(c.name, kind)] = "done"
        if not live:
            break
        # alerts API
        now = time.time()
        st, body = http_get(base + "/api/v1/alerts")
        try:
            alerts = json.loads(body)["data"]["alerts"] if st == 200 else None
        except (ValueError, KeyError):
            alerts = None
        if dump:
            dump.write(json.dumps({"t": now, "what": "alerts", "body": body.decode()}) + "\n")
        for c in live:
            if alerts is None:
                record(c, "alerts_api", f"GET /api/v1/alerts: HTTP {st} {body[:200]!r}", now)
                continue
            mine = [a for a in alerts if (a.get("labels") or {}).get("rulegroup") == c.name]
            record(c, "alerts_api", c.check_alerts(now, mine), now)
        # rules API
        now = time.time()
        st, body = http_get(base + "/api/v1/rules")
        try:
            groups = json.loads(body)["data"]["groups"] if st == 200 else None
        except (ValueError, KeyError):
            groups = None
        if dump:
            dump.write(json.dumps({"t": now, "what": "rules", "body": body.decode()}) + "\n")
        for c in live:
            if groups is None:
                record(c, "rules_api", f"GET /api/v1/rules: HTTP {st} {body[:200]!r}", now)
                continue
            rg = next((g for g in groups if g.get("name") == c.name), None)
            record(c, "rules_api", c.check_rules(now, rg), now)
        # ALERTS metric
        now = time.time()
        now_s = int(now)
        q = urllib.parse.urlencode({"query": "ALERTS", "time": datetime.datetime.fromtimestamp(
            now_s, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")})
        st, body = http_get(base + "/api/v1/query?" + q)
        samples = None
        try:
            if st == 200:
                res = json.loads(body)
                if res.get("status") == "success":
                    samples = {}
                    for s in res["data"]["result"]:
                        v0 = s["value"][0]
                        if not isinstance(v0, (int, float)):
                            raise ValueError(f"value[0] is not a number: {v0!r}")
                        samples.setdefault(s["metric"].get("rulegroup", ""), []).append(
                            (lkey(s["metric"]), int(v0), float(s["value"][1])))
        except (ValueError, KeyError, TypeError, IndexError) as e:
            samples, body = None, f"{e}: {body[:200]!r}".encode()
        if dump:
            dump.write(json.dumps({"t": now, "what": "query", "body": body.decode()}) + "\n")
            dump.flush()
        for c in live:
            if samples is None:
                record(c, "alerts_metric", f"GET /api/v1/query: HTTP {st} {body[:300]!r}", now)
                continue
            record(c, "alerts_metric", c.check_metrics(now, now_s, samples.get(c.name, [])), now)
        done = sum(v[0] for v in counts.values())
        bad = sum(v[1] for v in counts.values())
        print(f"# +{time.time() - zero:6.1f}s round {k}: {len(live)} groups live, {done} checks, "
              f"{bad} failed, {rw.writes} writes, {len(am.log)} notifications", flush=True)

    stop.set()
    rw.join(timeout=10)
    p.stop()
    if args.log_dir:
        with open(os.path.join(args.log_dir, "notifications.txt"), "w") as f:
            for t, al, verdict in am.log:
                f.write(f"{fmt_t(t, zero)} {json.dumps(al, sort_keys=True)} -> {verdict}\n")
        with open(os.path.join(args.log_dir, "promlet.log"), "w") as f:
            f.write(p.logtext())
    partial = args.max_minutes is not None and until < max(c.test_until() for c in cases)

    passed = failed = 0
    print(f"# ---- results (test start {fmt_t(zero)}, wall time {time.time() - wall0:.0f}s) ----")
    for c in cases:
        for kind in CHECKS:
            key = (c.name, kind)
            if kind == "notifications":
                errs = am.group_errors(c.name)
                n = len([x for x in am.log if x[1].get("labels", {}).get("rulegroup") == c.name])
                desc = f"{n} notifications received"
            else:
                errs = errors[key]
                desc = f"{counts[key][0]} checks, {counts[key][1]} failed"
            if partial and kind != "notifications" and c.test_until() > until:
                errs = errs + ["not finished (--max-minutes)"]
            if kind == "notifications" and partial:
                errs = errs + ["not finished (--max-minutes)"]
            if errs:
                failed += 1
                print(f"not ok - {c.name} {kind}: {desc}")
                for e in errs[:8]:
                    print(f"#   {e[:1000]}")
                if len(errs) > 8:
                    print(f"#   ... {len(errs) - 8} more")
            else:
                passed += 1
                print(f"ok - {c.name} {kind}: {desc}")
    if rw.errors:
        failed += 1
        print(f"not ok - remote write: {rw.errors[:3]}")
    else:
        passed += 1
        print(f"ok - remote write: {rw.writes} requests accepted")
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
