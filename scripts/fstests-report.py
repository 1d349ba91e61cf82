#!/usr/bin/env python3
"""The results of a `make fstests` run, as a user reads them.

    fstests-report.py OUTDIR            print fstests' summary per row and the
                                        table; write OUTDIR/results.txt,
                                        results.json and OUTDIR/failures/
    fstests-report.py --counts OUTDIR   print "passed failed skipped"
    fstests-report.py --ok OUTDIR       exit 0 iff something ran and nothing failed

OUTDIR holds one directory per row (<fs>-<block size>), each with one
directory per guest boot: results/ (fstests' results directory, with the
xunit report result.xml), check.out (./check's output), console.log (the
kernel log) and, when the boot hung or crashed, hung-test.

A kernel splat in the console log fails the test that was running (found by
fstests' "run fstests NAME at" markers), whatever fstests said about it.
"""

import json
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET

SPLAT = re.compile(
    r"(?:^|[^A-Za-z0-9])(BUG:|WARNING:|kernel BUG at|KASAN:|UBSAN:|Oops|general protection fault|"
    r"possible circular locking|possible recursive locking|inconsistent lock state|"
    r"blocked for more than|unreferenced object|Kernel panic|rcu_sched detected stalls|"
    r"rcu: INFO: rcu_preempt detected stalls)")
MARK = re.compile(r"run fstests (\S+) at")
TS = re.compile(r"^\[\s*\d+\.\d+\]\s*")


def rows(outdir):
    for name in sorted(os.listdir(outdir)):
        d = os.path.join(outdir, name)
        if os.path.isdir(d) and re.fullmatch(r"[a-z0-9]+-\d+", name):
            yield name, d


def parts(rowdir):
    ps = [p for p in os.listdir(rowdir) if p.isdigit()]
    return [os.path.join(rowdir, p) for p in sorted(ps, key=int)]


def splats(console):
    """{test: first splat line} from a kernel log."""
    out, cur = {}, None
    try:
        lines = open(console, errors="replace").read().splitlines()
    except OSError:
        return out
    for line in lines:
        line = TS.sub("", line)
        m = MARK.search(line)
        if m:
            cur = m.group(1)
            continue
        if cur and SPLAT.search(line) and cur not in out:
            out[cur] = line.strip()[:200]
    return out


def check_lines(path):
    """{test: what ./check printed after its name}, for failures whose
    xunit message says nothing (e.g. a filesystem check that failed)."""
    out = {}
    try:
        for line in open(path, errors="replace"):
            m = re.match(r"^(\S+/\d+)\s+(.*\S)", line)
            if m and not re.match(r"^\d+s( \.\.\.)?", m.group(2)):
                out.setdefault(m.group(1), m.group(2))
    except OSError:
        pass
    return out


def collect(outdir):
    results = []
    for row, rdir in rows(outdir):
        fs, bs = row.rsplit("-", 1)
        for p in parts(rdir):
            seen = set()
            xml = os.path.join(p, "results", "result.xml")
            said = check_lines(os.path.join(p, "check.out"))
            found = splats(os.path.join(p, "console.log"))
            if os.path.exists(xml):
                try:
                    root = ET.parse(xml).getroot()
                except ET.ParseError as e:
                    root = None
                    results.append(dict(fs=fs, bs=int(bs), test=f"{row}/{os.path.basename(p)}",
                                        result="fail", seconds=0, reason=f"xunit report unreadable: {e}"))
                for tc in (root.iter("testcase") if root is not None else []):
                    name = tc.get("name")
                    secs = int(float(tc.get("time") or 0))
                    sk, fl = tc.find("skipped"), tc.find("failure")
                    if fl is not None:
                        res, why = "fail", fl.get("message") or ""
                        if not why or "reason unknown" in why:
                            why = said.get(name, why)
                    elif sk is not None:
                        res, why = "notrun", (sk.get("message") or "").strip()
                    else:
                        res, why = "pass", ""
                    if name in found:
                        res, why = "fail", f"kernel splat: {found[name]}" + (f"; {why}" if why else "")
                    seen.add(name)
                    results.append(dict(fs=fs, bs=int(bs), test=name, result=res, seconds=secs,
                                        reason=" ".join(why.split())))
            hung = os.path.join(p, "hung-test")
            if os.path.exists(hung):
                name = open(hung).read().strip()
                if name not in seen:
                    why = found.get(name, "the guest hung, crashed or timed out while it ran")
                    results.append(dict(fs=fs, bs=int(bs), test=name, result="fail", seconds=0,
                                        reason=f"guest run ended in this test: {why}"))
            elif not os.path.exists(xml):
                results.append(dict(fs=fs, bs=int(bs), test=f"(boot {row}/{os.path.basename(p)})",
                                    result="fail", seconds=0,
                                    reason="no results: the guest run failed before fstests reported"))
    return results


def counts(results):
    c = {"run": 0, "pass": 0, "fail": 0, "notrun": 0}
    for r in results:
        c[r["result"]] += 1
        c["run"] += r["result"] != "notrun"
    return c


def copy_failures(outdir, results):
    for r in results:
        if r["result"] != "fail" or "/" not in r["test"]:
            continue
        row = os.path.join(outdir, f"{r['fs']}-{r['bs']}")
        for p in parts(row):
            base = os.path.join(p, "results", r["test"])
            for ext in (".out.bad", ".full", ".dmesg"):
                if os.path.exists(base + ext):
                    dst = os.path.join(outdir, "failures", f"{r['fs']}-{r['bs']}", r["test"] + ext)
                    os.makedirs(os.path.dirname(dst), exist_ok=True)
                    shutil.copyfile(base + ext, dst)


def main(argv):
    mode = None
    if argv and argv[0] in ("--counts", "--ok"):
        mode, argv = argv[0], argv[1:]
    outdir = argv[0]
    results = collect(outdir)
    c = counts(results)
    if mode == "--counts":
        print(c["pass"], c["fail"], c["notrun"])
        return 0
    if mode == "--ok":
        return 0 if c["run"] > 0 and c["fail"] == 0 else 1

    for row, rdir in rows(outdir):
        print(f"== fstests summary: {row.replace('-', ', ', 1)}-byte blocks")
        for p in parts(rdir):
            try:
                out = open(os.path.join(p, "check.out"), errors="replace").read().splitlines()
            except OSError:
                out = []
            for line in out:
                if re.match(r"^(Ran|Not run|Failures|Failed \d+ of|Passed all)", line):
                    print(line)
    copy_failures(outdir, results)
    with open(os.path.join(outdir, "results.json"), "w") as f:
        json.dump({"counts": c, "rows": {f"{fs}-{bs}": counts([r for r in results if (r['fs'], r['bs']) == (fs, bs)])
                                         for fs, bs in sorted({(r['fs'], r['bs']) for r in results})},
                   "results": results}, f, indent=1)
    lines = [f"{'fs':<5} {'block':>5}  {'test':<14} {'result':<7} {'secs':>5}  reason"]
    for r in sorted(results, key=lambda r: (r["fs"], r["bs"], r["test"])):
        lines.append(f"{r['fs']:<5} {r['bs']:>5}  {r['test']:<14} {r['result']:<7} {r['seconds']:>5}  {r['reason']}")
    with open(os.path.join(outdir, "results.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("== per filesystem and block size: run / passed / failed / not run")
    for key in sorted({(r["fs"], r["bs"]) for r in results}):
        k = counts([r for r in results if (r["fs"], r["bs"]) == key])
        print(f"{key[0]:<5} {key[1]:>5}: {k['run']} run, {k['pass']} passed, {k['fail']} failed, {k['notrun']} not run")
    for r in results:
        if r["result"] == "fail":
            print(f"FAILED {r['fs']} {r['bs']} {r['test']}: {r['reason'][:300]}")
    print(f"results: {os.path.join(outdir, 'results.txt')} (and results.json, failures/)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
