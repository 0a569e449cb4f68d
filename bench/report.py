#!/usr/bin/env python3
"""The benchmark's report: bench/run.sh feeds it the raw results.

Reads the JSON lines of every run (one loadgen result per case, server
and round), prints a table (median of the rounds for each server, the
ratio ours/dovecot of the medians, min-max over the rounds) and
PASS/MISS per target, writes bench/results.json and, with --docs,
replaces the results block of docs/performance.md.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import sys

BEGIN = "<!-- BEGIN BENCH RESULTS (bench/report.py rewrites this block) -->"
END = "<!-- END BENCH RESULTS -->"

# (case, metric path, label, unit, "hi"/"lo" = better when higher/lower)
ROWS = [
    ("sessions-1", "sessions_per_s", "sessions/s", "", "hi"),
    ("sessions-1", "session.p50_ms", "session p50", "ms", "lo"),
    ("sessions-1", "session.p99_ms", "session p99", "ms", "lo"),
    ("sessions-16", "sessions_per_s", "sessions/s", "", "hi"),
    ("sessions-16", "session.p50_ms", "session p50", "ms", "lo"),
    ("sessions-16", "session.p99_ms", "session p99", "ms", "lo"),
    ("storm-first", "noop.p50_ms", "NOOP p50", "ms", "lo"),
    ("storm-first", "noop.p99_ms", "NOOP p99", "ms", "lo"),
    ("storm-first", "noop.n", "NOOPs sampled", "", "hi"),
    ("storm-first", "storm_s", "500 logins took", "s", "lo"),
    ("storm-again", "storms", "storms of 500", "", "hi"),
    ("storm-again", "noop.p50_ms", "NOOP p50", "ms", "lo"),
    ("storm-again", "noop.p99_ms", "NOOP p99", "ms", "lo"),
    ("storm-again", "noop.n", "NOOPs sampled", "", "hi"),
    ("storm-again", "storm_s", "500 logins took", "s", "lo"),
    ("retr-1mb", "MB_per_s", "4 clients", "MB/s", "hi"),
    ("retr-100mb", "MB_per_s", "1 client", "MB/s", "hi"),
    ("hold-1000", "sessions_ok", "sessions held", "", "hi"),
    ("hold-1000", "noop_ok", "NOOPs answered", "", "hi"),
    ("hold-1000", "noop.p50_ms", "NOOP p50", "ms", "lo"),
    ("hold-1000", "noop.p99_ms", "NOOP p99", "ms", "lo"),
    ("hold-1000", "pss_per_session_kib", "PSS per session", "KiB", "lo"),
    ("hold-1000", "login_s", "logging all in took", "s", "lo"),
    ("hold-10000", "sessions_ok", "sessions held", "", "hi"),
    ("hold-10000", "noop_ok", "NOOPs answered", "", "hi"),
    ("hold-10000", "noop.p50_ms", "NOOP p50", "ms", "lo"),
    ("hold-10000", "noop.p99_ms", "NOOP p99", "ms", "lo"),
    ("hold-10000", "pss_per_session_kib", "PSS per session", "KiB", "lo"),
    ("hold-10000", "procs_after", "server processes", "", "lo"),
    ("hold-10000", "login_s", "logging all in took", "s", "lo"),
    ("fair-slow", "noop.p50_ms", "NOOP p50", "ms", "lo"),
    ("fair-slow", "noop.p99_ms", "NOOP p99", "ms", "lo"),
    ("fair-slow", "big_MB_per_s", "slow reader got", "MB/s", "hi"),
    ("fair-slow", "pss_growth_kib", "server PSS growth", "KiB", "lo"),
    ("fair-fast", "noop.p50_ms", "NOOP p50", "ms", "lo"),
    ("fair-fast", "noop.p99_ms", "NOOP p99", "ms", "lo"),
    ("fair-fast", "big_MB_per_s", "fast reader got", "MB/s", "hi"),
    ("fair-fast", "pss_growth_kib", "server PSS growth", "KiB", "lo"),
    ("list-first", "total.p50_ms", "first login+STAT+LIST+UIDL+QUIT", "ms", "lo"),
    ("list-first", "login.p50_ms", "of which USER/PASS", "ms", "lo"),
    ("list-again", "total.p50_ms", "again (median of 3)", "ms", "lo"),
]

TITLES = {
    "sessions-1": "sessions, 1 client",
    "sessions-16": "sessions, 16 clients",
    "storm-first": "login-storm, first logins",
    "storm-again": "login-storm, again",
    "retr-1mb": "RETR 1 MB",
    "retr-100mb": "RETR 100 MB",
    "hold-1000": "hold 1,000",
    "hold-10000": "hold 10,000",
    "fair-slow": "fair, slow 1 GB reader",
    "fair-fast": "fair, fast 1 GB reader",
    "list-first": "list 10k, first login",
    "list-again": "list 10k, again",
}


def get(result, path):
    v = result
    for k in path.split("."):
        if not isinstance(v, dict) or k not in v:
            return None
        v = v[k]
    return v


def derive(r):
    """Adds computed fields to one loadgen result."""
    if "pss_end_kib" in r and r.get("pss_before_kib", -1) >= 0 \
            and r.get("pss_end_kib", -1) >= 0:
        r["pss_growth_kib"] = r["pss_end_kib"] - r["pss_before_kib"]
    return r


def problems(r):
    """Why a result cannot be trusted, or an empty list."""
    out = []
    for k in ("protocol_errors", "connect_errors", "closed_early",
              "bad_counts", "big_bad_counts", "bad"):
        if r.get(k):
            out.append("%s=%s" % (k, r[k]))
    if r.get("timed_out"):
        out.append("timed out")
    if r.get("last_error"):
        out.append(r["last_error"])
    return out


def stats(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values),
            "max": max(values), "values": values}


def fmt(v, unit=""):
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer() or unit in ("ms", "s"):
        if abs(v) >= 1000:
            return "%.0f" % v
        if abs(v) >= 100:
            return "%.1f" % v
        if abs(v) >= 10:
            return "%.2f" % v
        return "%.3f" % v
    return "%d" % v


def cell(s, unit):
    if s is None:
        return "-"
    if s["min"] == s["max"]:
        return fmt(s["median"], unit)
    return "%s [%s–%s]" % (fmt(s["median"], unit), fmt(s["min"], unit),
                           fmt(s["max"], unit))


def machine():
    m = {"nproc": os.cpu_count(), "kernel": platform.release(),
         "arch": platform.machine()}
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                m["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                m["memory_gib"] = round(int(line.split()[1]) / 1048576, 1)
    except OSError:
        pass
    try:
        for line in open("/etc/os-release"):
            if line.startswith("PRETTY_NAME="):
                m["os"] = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return m


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--raw", required=True)
    ap.add_argument("--json", required=True)
    ap.add_argument("--docs")
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--wall", type=int, default=0)
    ap.add_argument("--dovecot-version", default="?")
    ap.add_argument("--pop3-clients", default="?")
    ap.add_argument("--load-before", default="?")
    a = ap.parse_args()

    raw = [json.loads(l) for l in open(a.raw) if l.strip()]
    # The physical limit of a round is the faster of sendfile and
    # read/write: a "plain" result per case and round.
    best = {}
    for rec in raw:
        if rec["server"].startswith("plain-") and "result" in rec:
            k = (rec["case"], rec["round"])
            r = dict(rec["result"], method=rec["server"][6:])
            if k not in best or r["MB_per_s"] > best[k]["MB_per_s"]:
                best[k] = r
    raw_all = raw
    raw = [rec for rec in raw if not rec["server"].startswith("plain-")]
    raw += [{"case": c, "server": "plain", "round": n, "result": r}
            for (c, n), r in sorted(best.items())]
    by = {}            # (case, server) -> [results]
    issues = []
    for rec in raw:
        key = (rec["case"], rec["server"])
        if "error" in rec:
            issues.append("%s/%s round %s: loadgen failed: %s" % (
                rec["case"], rec["server"], rec["round"], rec["error"]))
            by.setdefault(key, [])
            continue
        r = derive(rec["result"])
        p = problems(r)
        if p:
            issues.append("%s/%s round %s: %s" % (
                rec["case"], rec["server"], rec["round"], "; ".join(p)))
        by.setdefault(key, []).append(r)

    summary = {}
    for case, path, label, unit, better in ROWS:
        row = {}
        for server in ("ours", "dovecot", "plain"):
            s = stats([get(r, path) for r in by.get((case, server), [])])
            if s is not None:
                row[server] = s
        o, d = row.get("ours"), row.get("dovecot")
        if o and d and d["median"]:
            row["ratio"] = o["median"] / d["median"]
        summary.setdefault(case, {})[path] = row

    def med(case, path, server="ours"):
        s = summary.get(case, {}).get(path, {}).get(server)
        return None if s is None else s["median"]

    def ratio(case, path):
        return summary.get(case, {}).get(path, {}).get("ratio")

    def clean(case, server="ours"):
        rs = by.get((case, server), [])
        return bool(rs) and all(not problems(r) for r in rs)

    targets = []

    def target(name, value, ok, show, need_clean=()):
        valid = all(clean(c, s) for c, s in need_clean)
        passed = value is not None and ok(value) and valid
        note = ""
        if value is None:
            note = "not measured"
        elif not valid:
            note = "runs had errors"
        targets.append({"target": name, "value": value, "shown": show,
                        "pass": bool(passed), "note": note})

    held = med("hold-10000", "sessions_ok")
    noops = med("hold-10000", "noop_ok")
    procs = med("hold-10000", "procs_after")
    p99 = med("hold-10000", "noop.p99_ms")
    target("10,000 sessions held in one process, NOOP p99 < 20 ms",
           p99, lambda v: held == 10000 and noops == 10000 and procs == 1
           and v < 20,
           "%s held, %s NOOPs, %s process(es), p99 %s ms" % (
               fmt(held), fmt(noops), fmt(procs), fmt(p99, "ms")),
           [("hold-10000", "ours")])
    kib = med("hold-10000", "pss_per_session_kib")
    target("memory per idle authenticated session <= 8 KiB", kib,
           lambda v: v <= 8, "%s KiB" % fmt(kib, "ms"))
    r16 = ratio("sessions-16", "sessions_per_s")
    target("sessions/s with 16 clients >= 4x Dovecot", r16,
           lambda v: v >= 4, "%s/s vs %s/s = %sx" % (
               fmt(med("sessions-16", "sessions_per_s"), "s"),
               fmt(med("sessions-16", "sessions_per_s", "dovecot"), "s"),
               fmt(r16, "s")), [("sessions-16", "ours")])
    for case, what in (("storm-first", "first logins"),
                       ("storm-again", "repeat logins")):
        sp = med(case, "noop.p99_ms")
        target("login-storm (%s) NOOP p99 < 20 ms" % what, sp,
               lambda v: v < 20, "%s ms" % fmt(sp, "ms"), [(case, "ours")])
    r100 = ratio("retr-100mb", "MB_per_s")
    target("RETR 100 MB >= 2x Dovecot", r100, lambda v: v >= 2,
           "%s vs %s MB/s = %sx" % (
               fmt(med("retr-100mb", "MB_per_s"), "s"),
               fmt(med("retr-100mb", "MB_per_s", "dovecot"), "s"),
               fmt(r100, "s")), [("retr-100mb", "ours")])
    plain = med("retr-100mb", "MB_per_s", "plain")
    ours100 = med("retr-100mb", "MB_per_s")
    frac = ours100 / plain if ours100 and plain else None
    target("RETR 100 MB >= 60% of the physical limit", frac,
           lambda v: v >= 0.6, "%s of %s MB/s = %s%%" % (
               fmt(ours100, "s"), fmt(plain, "s"),
               fmt(frac * 100 if frac else None, "s")),
           [("retr-100mb", "ours")])
    for mode in ("slow", "fast"):
        fp = med("fair-" + mode, "noop.p99_ms")
        target("fair (%s big reader) NOOP p99 < 10 ms" % mode, fp,
               lambda v: v < 10, "%s ms" % fmt(fp, "ms"),
               [("fair-" + mode, "ours")])
    for case, what in (("list-first", "first login"),
                       ("list-again", "again")):
        rl = ratio(case, "total.p50_ms")
        target("list 10k (%s) <= 1.0x Dovecot's time" % what, rl,
               lambda v: v <= 1.0, "%s vs %s ms = %sx" % (
                   fmt(med(case, "total.p50_ms"), "ms"),
                   fmt(med(case, "total.p50_ms", "dovecot"), "ms"),
                   fmt(rl, "s")), [(case, "ours")])

    mach = machine()
    when = datetime.datetime.now(datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M UTC")
    meta = {"date": when, "rounds": a.rounds, "quick": a.quick == "1",
            "wall_s": a.wall, "dovecot": a.dovecot_version,
            "dovecot_pop3_client_limit": a.pop3_clients,
            "load_before": a.load_before}

    # --- terminal table -----------------------------------------------
    lines = []
    hdr = ("scenario", "metric", "ours median [min–max]",
           "dovecot median [min–max]", "ours/dovecot", "plain socket")
    table = [hdr]
    for case, path, label, unit, better in ROWS:
        row = summary.get(case, {}).get(path, {})
        if not row:
            continue
        r = row.get("ratio")
        table.append((TITLES.get(case, case),
                      label + (" (%s)" % unit if unit else ""),
                      cell(row.get("ours"), unit),
                      cell(row.get("dovecot"), unit),
                      "%.2fx" % r if r is not None else "-",
                      cell(row.get("plain"), unit)))
    widths = [max(len(t[i]) for t in table) for i in range(len(hdr))]
    for i, t in enumerate(table):
        lines.append("  ".join(c.ljust(widths[j]) for j, c in enumerate(t)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    print()
    print("pop3server vs Dovecot %s: %d round(s), medians [min–max]; "
          "ratio = ours/dovecot of the medians" % (a.dovecot_version,
                                                   a.rounds))
    print("\n".join(lines))
    print()
    npass = sum(t["pass"] for t in targets)
    for t in targets:
        print("%-4s %-55s %s%s" % ("PASS" if t["pass"] else "MISS",
                                   t["target"], t["shown"],
                                   " (%s)" % t["note"] if t["note"] else ""))
    print("targets: %d PASS, %d MISS" % (npass, len(targets) - npass))
    if issues:
        print()
        print("problems seen (these runs may not count):")
        for i in issues:
            print("  " + i)

    out = {"meta": meta, "machine": mach, "summary": summary,
           "targets": targets, "problems": issues, "runs": raw_all}
    with open(a.json, "w") as f:
        json.dump(out, f, indent=1)
    print("\nwritten: %s" % a.json)

    if a.docs:
        md = []
        md.append(BEGIN)
        md.append("")
        md.append("Latest run: %s, %d rounds, %d s wall time, `make bench`."
                  % (when, a.rounds, a.wall))
        md.append("")
        md.append("Machine: %s, %s cores, %s GiB memory, Linux %s (%s); "
                  "Dovecot %s; load average before the run: %s." % (
                      mach.get("cpu", "?"), mach.get("nproc"),
                      mach.get("memory_gib"), mach.get("kernel"),
                      mach.get("os", "?"), a.dovecot_version,
                      a.load_before))
        md.append("")
        md.append("| " + " | ".join(hdr) + " |")
        md.append("|" + "|".join("---" for _ in hdr) + "|")
        for t in table[1:]:
            md.append("| " + " | ".join(t) + " |")
        md.append("")
        md.append("| target | result | measured |")
        md.append("|---|---|---|")
        for t in targets:
            md.append("| %s | %s | %s%s |" % (
                t["target"], "PASS" if t["pass"] else "MISS", t["shown"],
                " (%s)" % t["note"] if t["note"] else ""))
        md.append("")
        if issues:
            md.append("Problems seen in this run:")
            md.append("")
            for i in issues:
                md.append("- " + i.replace("|", "\\|"))
            md.append("")
        md.append(END)
        block = "\n".join(md)
        text = open(a.docs).read() if os.path.exists(a.docs) else ""
        if BEGIN in text and END in text:
            pre = text[:text.index(BEGIN)]
            post = text[text.index(END) + len(END):]
            text = pre + block + post
        else:
            text = text.rstrip("\n") + "\n\n" + block + "\n"
        with open(a.docs, "w") as f:
            f.write(text)
        print("updated: %s" % a.docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
