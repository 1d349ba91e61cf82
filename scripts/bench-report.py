#!/usr/bin/env python3
"""Turn the guest's BENCH lines into the benchmark report.

    scripts/bench-report.py [--out DIR] [--no-chart] GUEST_LOG...

Reads every `BENCH {json}` line of the guest logs (the bench scenario
prints them, as KTAP diagnostics "# BENCH ..."), derives per run the
throughput, the disk's average request sizes, write amplification and CPU
time per MiB, aggregates the repetitions (median, min, max), compares rbfs
with ext4, ext2 and the raw disk, judges the targets of issue 6, and writes
into DIR (default: the current directory):

    results.json   meta, every run with its derived figures, the summary,
                   the ratios and the targets
    results.txt    the same as tables (also printed on stdout)
    bench.png      bars per workload and filesystem (needs matplotlib)

Exit status: 0, or 2 when no BENCH result line was found.
"""

import argparse
import json
import math
import os
import statistics
import sys

FS_ORDER = ["rbfs", "ext2", "ext4", "ext4nj", "raw"]
FS_LABEL = {"rbfs": "rbfs", "ext2": "ext2", "ext4": "ext4", "ext4nj": "ext4-nojournal", "raw": "raw disk"}
FS_COLOR = {"rbfs": "#d62728", "ext2": "#1f77b4", "ext4": "#2ca02c", "ext4nj": "#98df8a", "raw": "#7f7f7f"}

WORKLOADS = [
    ("seqwrite", "sequential 1 MiB writes, then fsync"),
    ("seqread", "sequential 1 MiB reads, cold cache"),
    ("randread", "random 4 KiB reads, cold cache"),
    ("randwrite4k", "random 4 KiB overwrites, fsync every N"),
    ("randwrite1k", "random 1 KiB overwrites, fsync every N"),
    ("dsync_qd1", "O_DSYNC 4 KiB random overwrites, libaio QD1"),
    ("dsync_qd16", "O_DSYNC 4 KiB random overwrites, libaio QD16"),
    ("mmap", "shared mmap 4 KiB stores, msync every N"),
    ("smallfiles", "many small new files, then syncfs"),
]
RAW_WORKLOADS = [
    ("raw_seqwrite", "O_DIRECT 1 MiB writes QD8, then flush"),
    ("raw_seqread", "O_DIRECT 1 MiB reads QD8"),
    ("raw_randwrite_qd1", "O_DIRECT random 4 KiB writes QD1"),
    ("raw_randwrite_qd16", "O_DIRECT random 4 KiB writes QD16"),
    ("raw_randread", "O_DIRECT random 4 KiB reads QD1"),
]
# The raw-disk workload each filesystem workload is held against.
RAW_FOR = {
    "seqwrite": "raw_seqwrite",
    "seqread": "raw_seqread",
    "randread": "raw_randread",
    "randwrite4k": "raw_randwrite_qd1",
    "dsync_qd1": "raw_randwrite_qd1",
    "dsync_qd16": "raw_randwrite_qd16",
}
# Operation size, for ops/s (files/s for smallfiles).
OP_BYTES = {"randread": 4096, "randwrite4k": 4096, "randwrite1k": 1024, "dsync_qd1": 4096,
            "dsync_qd16": 4096, "mmap": 4096, "raw_randwrite_qd1": 4096,
            "raw_randwrite_qd16": 4096, "raw_randread": 4096}

MIB = 1 << 20


def parse_logs(paths):
    meta, runs = {}, []
    notes = []
    for path in paths:
        with open(path, errors="replace") as f:
            for n, line in enumerate(f, 1):
                i = line.find("BENCH {")
                if i < 0:
                    continue
                text = line[i + len("BENCH "):].strip()
                try:
                    rec = json.loads(text)
                except json.JSONDecodeError as e:
                    print(f"bench-report: {path}:{n}: bad BENCH line ({e})", file=sys.stderr)
                    continue
                if rec.get("type") == "meta":
                    meta = rec
                elif rec.get("type") == "result":
                    runs.append(rec)
                elif rec.get("type") == "budget":
                    notes.append(f"time budget: {rec.get('reps_done')} of {rec.get('reps_planned')} repetitions "
                                 f"run ({rec.get('elapsed_s')} s of {rec.get('budget_s')} s spent); the rest skipped")
    if notes:
        meta = dict(meta, notes=notes)
    return meta, runs


def derive(rec, user_hz):
    """The figures of one run, from its raw counters."""
    secs = rec["usec"] / 1e6
    mib = rec["bytes"] / MIB
    cpu = rec.get("cpu", {})
    ticks = sum(cpu.get(k, 0) for k in ("user", "nice", "sys", "irq", "softirq"))
    cpu_ms = ticks * 1000.0 / user_hz
    d = {
        "secs": secs,
        "wall_secs": rec.get("wall_usec", rec["usec"]) / 1e6,
        "mib": mib,
        "mibps": mib / secs if secs > 0 else None,
        "cpu_ms": cpu_ms,
        "cpu_ms_per_mib": cpu_ms / mib if mib > 0 else None,
        "wr_mib": rec["wr_sect"] * 512 / MIB,
        "rd_mib": rec["rd_sect"] * 512 / MIB,
        "wr_req_kib": rec["wr_sect"] * 512 / 1024 / rec["wr_ios"] if rec["wr_ios"] else None,
        "rd_req_kib": rec["rd_sect"] * 512 / 1024 / rec["rd_ios"] if rec["rd_ios"] else None,
        # Disk bytes written per byte the workload wrote (writes only).
        "write_amp": (rec["wr_sect"] * 512 / rec["bytes"]) if rec["bytes"] and is_write(rec["wl"]) else None,
        # fio's own CPU (its threads only, not the kernel's writeback).
        "fio_cpu_ms": (rec.get("fio", {}).get("usr_pct", 0) + rec.get("fio", {}).get("sys_pct", 0)) * 10 * secs,
    }
    if rec["wl"] == "smallfiles":
        d["ops"] = rec.get("files", 0) / secs if secs > 0 else None
    elif rec["wl"] in OP_BYTES:
        d["ops"] = rec["bytes"] / OP_BYTES[rec["wl"]] / secs if secs > 0 else None
    else:
        d["ops"] = None
    return d


def is_write(wl):
    return "write" in wl or wl in ("dsync_qd1", "dsync_qd16", "mmap", "smallfiles")


def stats(values):
    v = [x for x in values if x is not None and not (isinstance(x, float) and math.isnan(x))]
    if not v:
        return None
    return {"median": statistics.median(v), "min": min(v), "max": max(v), "n": len(v)}


METRICS = ["mibps", "ops", "wr_req_kib", "rd_req_kib", "write_amp", "cpu_ms_per_mib", "fio_cpu_ms", "secs",
           "wall_secs"]
COUNTS = ["wr_ios", "rd_ios", "fl_ios"]


def summarize(runs):
    groups = {}
    for r in runs:
        groups.setdefault((r["fs"], r["bs"], r["wl"]), []).append(r)
    summary = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r.get("ok") == 1]
        s = {"fs": key[0], "bs": key[1], "wl": key[2], "runs": len(rs), "ok": len(ok),
             "capped": sum(1 for r in rs if r.get("fio", {}).get("capped"))}
        for m in METRICS:
            s[m] = stats([r["derived"][m] for r in ok])
        for c in COUNTS:
            s[c] = stats([r[c] for r in ok])
        summary[key] = s
    return summary


def med(summary, fs, bs, wl, metric="mibps"):
    s = summary.get((fs, bs, wl))
    if not s or not s.get(metric):
        return None
    return s[metric]["median"]


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def block_sizes(summary):
    return sorted({bs for (fs, bs, wl) in summary if fs != "raw"})


def compute_ratios(summary):
    out = []
    for bs in block_sizes(summary):
        for wl, _ in WORKLOADS:
            r = med(summary, "rbfs", bs, wl)
            if r is None:
                continue
            raw = RAW_FOR.get(wl)
            out.append({
                "bs": bs, "wl": wl,
                "rbfs_ext4": ratio(r, med(summary, "ext4", bs, wl)),
                "rbfs_ext2": ratio(r, med(summary, "ext2", bs, wl)),
                "rbfs_ext4nj": ratio(r, med(summary, "ext4nj", bs, wl)),
                "rbfs_raw": ratio(r, med(summary, "raw", 0, raw)) if raw else None,
                "raw_workload": raw,
                "cpu_rbfs_ext4": ratio(med(summary, "rbfs", bs, wl, "cpu_ms_per_mib"),
                                       med(summary, "ext4", bs, wl, "cpu_ms_per_mib")),
            })
    return out


def fmt(x, digits=1):
    if x is None:
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 1:
        return f"{x:.{digits}f}"
    return f"{x:.{max(digits, 2)}g}"


def bs_name(bs):
    return f"{bs // 1024} KiB" if bs and bs % 1024 == 0 else f"{bs} B"


def judge_targets(summary):
    """Issue 6's targets, per block size, each met/missed with its figures."""
    targets = []

    def add(name, bs, met, detail):
        targets.append({"target": name, "bs": bs,
                        "status": "n/a" if met is None else ("met" if met else "missed"),
                        "detail": detail})

    for bs in block_sizes(summary):
        r = med(summary, "rbfs", bs, "seqwrite")
        e4 = med(summary, "ext4", bs, "seqwrite")
        add("seq write+fsync >= ext4 throughput", bs,
            None if r is None or e4 is None else r >= e4,
            f"rbfs {fmt(r)} MiB/s, ext4 {fmt(e4)} MiB/s (x{fmt(ratio(r, e4), 2)})")
        req = med(summary, "rbfs", bs, "seqwrite", "wr_req_kib")
        add("seq write: avg write request >= 256 KiB", bs,
            None if req is None else req >= 256,
            f"rbfs {fmt(req)} KiB (ext4 {fmt(med(summary, 'ext4', bs, 'seqwrite', 'wr_req_kib'))} KiB, "
            f"ext2 {fmt(med(summary, 'ext2', bs, 'seqwrite', 'wr_req_kib'))} KiB)")
        raw = med(summary, "raw", 0, "raw_seqwrite")
        add("seq write+fsync >= 80% of raw O_DIRECT seq write", bs,
            None if r is None or raw is None else r >= 0.8 * raw,
            f"rbfs {fmt(r)} MiB/s, raw {fmt(raw)} MiB/s ({fmt(100 * ratio(r, raw) if ratio(r, raw) is not None else None, 0)}%)")
        for wl, what in (("randwrite4k", "random 4 KiB overwrite+fsync"),
                         ("randwrite1k", "random 1 KiB overwrite+fsync"),
                         ("dsync_qd1", "O_DSYNC AIO QD1"),
                         ("dsync_qd16", "O_DSYNC AIO QD16")):
            a, b = med(summary, "rbfs", bs, wl), med(summary, "ext2", bs, wl)
            add(f"{what} >= ext2", bs, None if a is None or b is None else a >= b,
                f"rbfs {fmt(a, 2)} MiB/s, ext2 {fmt(b, 2)} MiB/s (x{fmt(ratio(a, b), 2)})")
        for wl, _ in WORKLOADS:
            a = med(summary, "rbfs", bs, wl, "cpu_ms_per_mib")
            b = med(summary, "ext4", bs, wl, "cpu_ms_per_mib")
            if a is None and b is None:
                continue
            add(f"CPU per MiB <= ext4: {wl}", bs, None if a is None or b is None else a <= b,
                f"rbfs {fmt(a)} ms/MiB, ext4 {fmt(b)} ms/MiB (x{fmt(ratio(a, b), 2)})")
    return targets


def cell(s, metric, digits=1, spread=True):
    if not s or not s.get(metric):
        return "-"
    st = s[metric]
    if spread and st["n"] > 1:
        return f"{fmt(st['median'], digits)} ({fmt(st['min'], digits)}-{fmt(st['max'], digits)})"
    return fmt(st["median"], digits)


def text_report(meta, runs, summary, ratios, targets):
    L = []
    if meta:
        L.append(f"rbfs benchmark: kernel {meta.get('kernel')}, {meta.get('ncpu')} vCPUs, "
                 f"{meta.get('mem_kb', 0) // 1024} MiB, disk {meta.get('dev')} {meta.get('dev_mb')} MiB, "
                 f"{meta.get('reps')} repetition(s){' (QUICK)' if str(meta.get('quick')) == '1' else ''}")
        L.append(f"  file {meta.get('seq_mb')} MiB; {meta.get('rand_ios')} random I/Os (fsync/msync every "
                 f"{meta.get('fsync_every')}); {meta.get('dsync_ios')} O_DSYNC writes; "
                 f"{meta.get('small_files')} files of {meta.get('small_kb')} KiB; {meta.get('fio')}, {meta.get('mke2fs')}")
        bg = meta.get("dirty_background_bytes") or 0
        bg = f"{bg // MIB} MiB" if bg else f"{meta.get('dirty_background_ratio')}%"
        L.append(f"  dirty_ratio {meta.get('dirty_ratio')}%, background writeback from {bg}; "
                 f"cache dropped before every workload")
    def row(wl, fs, s, extra=""):
        return (f"{wl:<14} {fs:<18} {cell(s, 'mibps'):>21} {cell(s, 'ops', 0, False):>7} "
                f"{cell(s, 'wr_ios', 0, False):>7} {cell(s, 'wr_req_kib', 1, False):>6} "
                f"{cell(s, 'rd_req_kib', 1, False):>6} {cell(s, 'write_amp', 2, False):>5} "
                f"{cell(s, 'cpu_ms_per_mib'):>18}{extra}")

    hdr = (f"{'workload':<14} {'fs':<18} {'MiB/s':>21} {'ops/s':>7} {'wr req':>7} "
           f"{'wr KiB':>6} {'rd KiB':>6} {'amp':>5} {'CPU ms/MiB':>18}  "
           f"{'/ext4':>5} {'/ext2':>5} {'/raw':>5}")
    legend = ("  ops/s: I/Os (files for smallfiles) per second; wr req: disk write requests; "
              "wr/rd KiB: average disk request;\n  amp: disk bytes written per byte written; "
              "/ext4 /ext2 /raw: rbfs's MiB/s over theirs (raw: the physical counterpart shown)")
    for note in meta.get("notes", []):
        L.append(f"  NOTE: {note}")
    failed = [r for r in runs if r.get("ok") != 1]
    capped = [r for r in runs if r.get("fio", {}).get("capped")]
    L.append(f"  {len(runs)} runs, {len(failed)} failed, {len(capped)} stopped by the fio time cap")
    L.append("  figures: median (min-max) over the repetitions; CPU = guest user+sys+irq+softirq "
             "over the workload, all vCPUs, per MiB the workload moved")
    L.append(legend)
    L.append("")

    for bs in block_sizes(summary):
        L.append(f"== {bs_name(bs)} blocks ==")
        L.append(hdr)
        for wl, desc in WORKLOADS:
            rows = [fs for fs in FS_ORDER[:-1] if (fs, bs, wl) in summary]
            if not rows:
                continue
            raw = RAW_FOR.get(wl)
            for i, fs in enumerate(rows):
                s = summary[(fs, bs, wl)]
                rr = ["", "", ""]
                if fs == "rbfs":
                    r = med(summary, fs, bs, wl)
                    rr = [fmt(ratio(r, med(summary, "ext4", bs, wl)), 2),
                          fmt(ratio(r, med(summary, "ext2", bs, wl)), 2),
                          fmt(ratio(r, med(summary, "raw", 0, raw)), 2) if raw else ""]
                fail = f"  [{s['runs'] - s['ok']} failed]" if s["ok"] < s["runs"] else ""
                cap = f"  [{s['capped']} capped]" if s["capped"] else ""
                ratios_txt = f"  {rr[0]:>5} {rr[1]:>5} {rr[2]:>5}" if fs == "rbfs" else ""
                L.append(row(wl if i == 0 else "", FS_LABEL[fs], s, ratios_txt + fail + cap))
            if raw and ("raw", 0, raw) in summary:
                L.append(row("", "raw " + raw[4:], summary[("raw", 0, raw)]))
            L.append(f"{'':<14} ({desc})")
        L.append("")

    raws = [(wl, d) for wl, d in RAW_WORKLOADS if ("raw", 0, wl) in summary]
    if raws:
        L.append("== raw disk (O_DIRECT, libaio) ==")
        L.append(hdr)
        for wl, desc in raws:
            L.append(row(wl[4:], "raw", summary[("raw", 0, wl)], f"  ({desc})"))
        L.append("")

    L.append("== targets (issue 6; medians) ==")
    for t in targets:
        mark = {"met": "met   ", "missed": "MISSED", "n/a": "n/a   "}[t["status"]]
        L.append(f"[{mark}] {bs_name(t['bs']):>6} {t['target']}: {t['detail']}")
    met = sum(1 for t in targets if t["status"] == "met")
    missed = sum(1 for t in targets if t["status"] == "missed")
    L.append(f"{met} targets met, {missed} missed, {len(targets) - met - missed} not measured")
    if failed:
        L.append("")
        L.append("failed runs: " + ", ".join(f"{r['fs']}/{r['bs']} {r['wl']} rep {r['rep']}" for r in failed))
    return "\n".join(L) + "\n"


def chart(summary, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (python3-matplotlib): no chart"
    sizes = block_sizes(summary)
    if not sizes:
        return "no filesystem results: no chart"
    panels = [("mibps", "throughput, MiB/s (log)", True),
              ("wr_req_kib", "average disk write request, KiB (log)", True),
              ("cpu_ms_per_mib", "guest CPU, ms per MiB (log)", True)]
    fig, axes = plt.subplots(len(sizes), len(panels), figsize=(7 * len(panels), 4.6 * len(sizes)), squeeze=False)
    wls = [wl for wl, _ in WORKLOADS if any((fs, bs, wl) in summary for fs in FS_ORDER for bs in sizes)]
    present = [fs for fs in FS_ORDER if any(k[0] == fs for k in summary)]
    width = 0.8 / max(len(present), 1)
    for row, bs in enumerate(sizes):
        for col, (metric, title, log) in enumerate(panels):
            ax = axes[row][col]
            for j, fs in enumerate(present):
                xs, ys, lo, hi = [], [], [], []
                for i, wl in enumerate(wls):
                    s = summary.get(("raw", 0, RAW_FOR.get(wl))) if fs == "raw" else summary.get((fs, bs, wl))
                    if not s or not s.get(metric) or s[metric]["median"] is None:
                        continue
                    if log and s[metric]["median"] <= 0:
                        continue
                    st = s[metric]
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(st["median"])
                    lo.append(st["median"] - st["min"])
                    hi.append(st["max"] - st["median"])
                if xs:
                    ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=FS_COLOR[fs], label=FS_LABEL[fs],
                           error_kw={"elinewidth": 0.8})
            if log:
                ax.set_yscale("log")
            if metric == "wr_req_kib":
                ax.axhline(256, color="black", linestyle="--", linewidth=0.8)
                ax.text(len(wls) - 0.5, 256, " 256 KiB target", va="bottom", ha="right", fontsize=7)
            ax.set_xticks(range(len(wls)))
            ax.set_xticklabels(wls, rotation=35, ha="right", fontsize=8)
            ax.set_title(f"{bs_name(bs)} blocks: {title}", fontsize=10)
            ax.grid(axis="y", alpha=0.3, which="both")
            if row == 0 and col == 0:
                ax.legend(fontsize=8)
    fig.suptitle("rbfs vs ext2 / ext4 / ext4 without journal / raw disk (O_DIRECT): "
                 "median, bars min-max over repetitions; raw = the physical counterpart", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("logs", nargs="+")
    ap.add_argument("--out", default=".")
    ap.add_argument("--no-chart", action="store_true")
    args = ap.parse_args()
    meta, runs = parse_logs(args.logs)
    if not runs:
        print("bench-report: no BENCH result lines in " + ", ".join(args.logs), file=sys.stderr)
        return 2
    user_hz = meta.get("user_hz", 100) or 100
    for r in runs:
        r["derived"] = derive(r, user_hz)
    summary = summarize(runs)
    ratios = compute_ratios(summary)
    targets = judge_targets(summary)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"meta": meta, "runs": runs, "summary": list(summary.values()),
                   "ratios": ratios, "targets": targets}, f, indent=1)
    text = text_report(meta, runs, summary, ratios, targets)
    if not args.no_chart:
        note = chart(summary, os.path.join(args.out, "bench.png"))
        text += f"\nchart: {note}\n" if note else f"\nchart: {os.path.join(args.out, 'bench.png')}\n"
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
