#!/usr/bin/env bash
# Check the benchmark's plumbing on the host, without a kernel build or a
# guest (as root; fio and e2fsprogs installed: scripts/deps.sh --bench):
#
#   scripts/bench-selftest.sh [tools] [scenario] [report]   (default: all three)
#
#   tools     a scratch tree laid out as the initramfs (busybox and its
#             applets, /init's PATH, lib.sh and the scenarios) is filled by
#             qemu/bench-tools.sh; fio (sync, libaio O_DSYNC and mmap jobs)
#             and mkfs.ext2/mkfs.ext4 run in a chroot of it, so they need
#             nothing the tree lacks
#   scenario  qemu/guest/scenarios/bench.sh itself, in that chroot (busybox
#             sh, the guest's lib.sh), quick sizes, on a loop device of a
#             sparse file formatted as ext2, ext4 and ext4 without a journal
#             (rbfs is skipped: the host has no rbfs.ko), plus the raw
#             workloads on the loop device
#   report    scripts/bench-report.py on the scenario's output, and on a
#             synthetic log of a full run (every filesystem, both block sizes,
#             3 repetitions, the raw disk)
#
# Output in out/bench-selftest/.  Note: the scenario drops the host's page
# cache before each workload, as it does in the guest (it leaves the host's
# vm.dirty_background_bytes alone: BENCH_DIRTY_BG_MB=0).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"
[ "$(id -u)" = 0 ] || { echo "bench-selftest: needs root (chroot, losetup, mount)" >&2; exit 2; }
parts=${*:-tools scenario report}
out=$RBFS_ROOT/out/bench-selftest
rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
loopdev='' mounts=()
cleanup() {
	local i
	! grep -q " $work/stage/mnt " /proc/mounts || umount "$work/stage/mnt" || true
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount "${mounts[i]}" 2>/dev/null || true; done
	[ -z "$loopdev" ] || losetup -d "$loopdev" 2>/dev/null || true
	# Never remove through a mount that is still there (the stage's /dev is
	# the host's /dev bound).
	if grep -q " $work" /proc/mounts; then
		echo "bench-selftest: $work still has mounts; not removed" >&2
	else
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT
python=python3
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import matplotlib' 2>/dev/null; then python=$p; break; fi
done
failures=0
ok() { echo "ok - $*"; }
notok() { echo "not ok - $*"; failures=$((failures + 1)); }

# The initramfs's layout (qemu/mkinitramfs.sh), without rbfs.ko and the
# tools of this repository, plus qemu/bench-tools.sh's programs.
st=$work/stage
mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt,rbfs}
cp /bin/busybox "$st/bin/busybox"
for a in $(/bin/busybox --list); do
	[ "$a" = busybox ] || ln -s busybox "$st/bin/$a"
done
cp qemu/guest/lib.sh "$st/rbfs/"
cp -r qemu/guest/scenarios "$st/rbfs/"
if qemu/bench-tools.sh "$st"; then bt=ok; else bt=failed; fi
mount -t proc proc "$st/proc"
mounts+=("$st/proc")

if [[ " $parts " == *" tools "* ]]; then
	if [ $bt = ok ]; then ok "bench-tools.sh: the tree is $(du -sh "$st" | cut -f1)"; else notok "bench-tools.sh"; fi
	for job in "--ioengine=psync --rw=write --bs=64k --end_fsync=1" \
		"--ioengine=libaio --iodepth=4 --sync=dsync --rw=randwrite --bs=4k" \
		"--ioengine=mmap --rw=randwrite --bs=4k --fsync=4"; do
		# shellcheck disable=SC2086
		if line=$(chroot "$st" /usr/bin/fio --name=t --filename=/tmp/f --size=1M $job \
			--output-format=terse --terse-version=3 2>&1) &&
			[ "$(echo "$line" | awk -F';' '$1 == "3" { print $5 ";" $47 }')" = "0;1024" ]; then
			ok "fio in the chroot: $job"
		else
			notok "fio in the chroot: $job: $line"
		fi
	done
	truncate -s 64M "$st/tmp/img"
	for spec in "ext4:1024:has_journal" "ext4 -O ^has_journal:4096:extent" "ext2:4096:dir_index"; do
		IFS=: read -r how bs feature <<< "$spec"
		t=${how%% *} extra=
		[ "$how" = "$t" ] || extra=${how#* }
		# shellcheck disable=SC2086
		if chroot "$st" "/usr/sbin/mkfs.$t" -q -F -b "$bs" $extra -E nodiscard /tmp/img &&
			feats=$(dumpe2fs -h "$st/tmp/img" 2>/dev/null | grep '^Filesystem features') &&
			[[ " $feats " == *" $feature "* ]] &&
			[ "$(dumpe2fs -h "$st/tmp/img" 2>/dev/null | awk '/^Block size/ { print $3 }')" = "$bs" ]; then
			if [ "$t" = ext2 ] && [[ "$feats" == *extent* || "$feats" == *has_journal* ]]; then
				notok "mkfs.ext2 made ext4 features: $feats"
			elif [ -n "$extra" ] && [[ "$feats" == *has_journal* ]]; then
				notok "mkfs.ext4 $extra still has a journal"
			else
				ok "mkfs.$t $extra -b $bs in the chroot"
			fi
		else
			notok "mkfs.$t $extra -b $bs in the chroot"
		fi
	done
fi

if [[ " $parts " == *" scenario "* ]]; then
	mount -t sysfs sysfs "$st/sys"
	mounts+=("$st/sys")
	mount --bind /dev "$st/dev"
	mounts+=("$st/dev")
	mount -t tmpfs tmpfs "$st/tmp"
	mounts+=("$st/tmp")
	truncate -s "${BENCH_SELFTEST_MB:-512}M" "$work/disk.img"
	loopdev=$(losetup --find --show "$work/disk.img")
	echo "# scenario on $loopdev, in a chroot of $st" >&2
	# Settings: quick sizes; BENCH_* of this environment override them (e.g.
	# BENCH_REPS=3 BENCH_BUDGET=1).  Forced: the loop device, no module, and
	# the host's vm.dirty_background_bytes left alone.
	settings=(BENCH_QUICK=1 BENCH_SEQ_MB=16)
	while IFS= read -r name; do settings+=("$name=${!name}"); done < <(compgen -e | grep '^BENCH_' || true)
	settings+=(BENCH_DEV="$loopdev" BENCH_LOAD_MODULE=0 BENCH_DIRTY_BG_MB=0)
	set +e
	env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ "${settings[@]}" \
		chroot "$st" /bin/sh -c '. /rbfs/lib.sh; run_scenario bench' > "$out/guest.log" 2>&1
	rc=$?
	set -e
	if [ $rc = 0 ] && grep -q '^# rbfs-guest: done' "$out/guest.log" && ! grep -q '^not ok' "$out/guest.log"; then
		ok "bench scenario on $loopdev: $(grep -c '^ok' "$out/guest.log") KTAP results, $(grep -c 'BENCH {"type":"result"' "$out/guest.log") BENCH results"
	else
		notok "bench scenario on $loopdev (exit $rc); see $out/guest.log"
		grep -E '^not ok|FAIL|failed' "$out/guest.log" | head -20
	fi
	# Every BENCH line is valid JSON with the fields the report needs.
	if "$python" - "$out/guest.log" <<'EOF'
import json, sys
need = {"rep", "fs", "bs", "wl", "ok", "bytes", "usec", "rd_ios", "rd_sect", "wr_ios", "wr_sect", "fl_ios", "cpu", "fio"}
n = 0
for line in open(sys.argv[1]):
    if "BENCH {" in line:
        rec = json.loads(line[line.index("BENCH ") + 6:])
        if rec["type"] == "result":
            missing = need - rec.keys()
            assert not missing, (missing, line)
            assert rec["ok"] == 1 and rec["bytes"] > 0 and rec["usec"] > 0, line
            if rec["wl"] in ("seqwrite", "randwrite4k", "smallfiles", "raw_seqwrite"):
                assert rec["wr_ios"] > 0 and rec["wr_sect"] > 0, line
            if rec["wl"] in ("seqread", "raw_seqread"):
                assert rec["rd_ios"] > 0, line
            n += 1
assert n > 0
EOF
	then ok "BENCH lines parse, with disk and byte counts"; else notok "BENCH lines"; fi
	losetup -d "$loopdev"
	loopdev=
	if [[ " $parts " == *" report "* ]]; then
		if "$python" scripts/bench-report.py --out "$out/scenario-report" "$out/guest.log" > "$out/scenario-report.txt"; then
			ok "report from the scenario's log: $out/scenario-report/"
		else
			notok "report from the scenario's log"
		fi
	fi
fi

if [[ " $parts " == *" report "* ]]; then
	"$python" - > "$out/synthetic.log" <<'EOF'
import json, random
random.seed(6)
print("KTAP version 1")
print("# BENCH " + json.dumps({"type": "meta", "kernel": "synthetic", "ncpu": 4, "mem_kb": 2000000, "user_hz": 100,
      "dev": "/dev/vda", "dev_mb": 1024, "reps": 3, "seq_mb": 256, "rand_ios": 4096, "dsync_ios": 1024,
      "fsync_every": 16, "small_files": 1000, "small_kb": 4, "fio_cap": 120, "dirty_ratio": 20,
      "dirty_background_ratio": 10, "quick": 0, "fio": "fio-3.33", "mke2fs": "mke2fs 1.47.0"}))
# workload: (MiB/s, bytes, average write request KiB or 0 for reads)
fs_wl = {"seqwrite": (200, 256 << 20, 512), "seqread": (300, 256 << 20, 0), "randread": (20, 16 << 20, 0),
         "randwrite4k": (15, 16 << 20, 64), "randwrite1k": (4, 4 << 20, 16), "dsync_qd1": (2, 4 << 20, 8),
         "dsync_qd16": (2.2, 4 << 20, 8), "mmap": (12, 16 << 20, 32), "smallfiles": (10, 4000 << 10, 8)}
raw_wl = {"raw_seqwrite": (400, 256 << 20, 1024), "raw_seqread": (500, 256 << 20, 0),
          "raw_randwrite_qd1": (30, 16 << 20, 4), "raw_randwrite_qd16": (60, 16 << 20, 4),
          "raw_randread": (25, 16 << 20, 0)}
speed = {"rbfs": 1.1, "ext2": 1.0, "ext4": 1.05, "ext4nj": 1.15, "raw": 1.0}
def rec(rep, fs, bs, wl, spec):
    mibps, nbytes, wkib = spec
    mibps *= speed[fs] * random.uniform(0.9, 1.1)
    if fs == "rbfs" and wl == "seqwrite":
        wkib = 300
    secs = nbytes / (1 << 20) / mibps
    ios = int(nbytes / 1024 / (wkib or 128))
    return {"type": "result", "rep": rep, "fs": fs, "bs": bs, "wl": wl, "ok": 1, "bytes": nbytes,
            "files": 1000 if wl == "smallfiles" else 0, "usec": int(secs * 1e6),
            "rd_ios": 0 if wkib else ios, "rd_sect": 0 if wkib else nbytes // 512,
            "wr_ios": ios if wkib else 0, "wr_sect": nbytes // 512 if wkib else 0, "fl_ios": 2,
            "cpu": {"user": int(secs * 5), "nice": 0, "sys": int(secs * 60 / speed[fs]), "idle": int(secs * 300),
                    "iowait": 9, "irq": 0, "softirq": 2},
            "fio": {"err": 0, "usr_pct": 1.0, "sys_pct": 20.0, "capped": 0}}
n = 0
for rep in (1, 2, 3):
    n += 1
    for wl, spec in raw_wl.items():
        print("# BENCH " + json.dumps(rec(rep, "raw", 0, wl, spec)))
    print(f"ok {n} bench.rep{rep}.raw")
    for bs in (1024, 4096):
        for fs in ("rbfs", "ext2", "ext4", "ext4nj"):
            n += 1
            for wl, spec in fs_wl.items():
                print("# BENCH " + json.dumps(rec(rep, fs, bs, wl, spec)))
            print(f"ok {n} bench.rep{rep}.{fs}-{bs}")
print("# rbfs-guest: done")
EOF
	if "$python" scripts/bench-report.py --out "$out/synthetic-report" "$out/synthetic.log" > "$out/synthetic-report.txt" &&
		"$python" - "$out/synthetic-report" <<'EOF'
import json, os, sys
d = sys.argv[1]
r = json.load(open(os.path.join(d, "results.json")))
assert len(r["runs"]) == 3 * (5 + 2 * 4 * 9), len(r["runs"])
t = {(x["target"], x["bs"]): x["status"] for x in r["targets"]}
# rbfs is 1.1x ext2 and 1.05x ext4 in the synthetic data, its seqwrite
# requests 300 KiB, its seqwrite 1.1 x 200 vs raw 400 (55% < 80%).
assert t[("seq write+fsync >= ext4 throughput", 4096)] in ("met", "missed")
assert t[("seq write: avg write request >= 256 KiB", 4096)] == "met", t
assert t[("seq write+fsync >= 80% of raw O_DIRECT seq write", 1024)] == "missed", t
txt = open(os.path.join(d, "results.txt")).read()
for s in ("== 1 KiB blocks ==", "== 4 KiB blocks ==", "== raw disk", "== targets", "ext4-nojournal"):
    assert s in txt, s
EOF
	then
		ok "report from a synthetic full run: $out/synthetic-report/"
	else
		notok "report from a synthetic full run"
	fi
	if [ -f "$out/synthetic-report/bench.png" ]; then ok "chart: $out/synthetic-report/bench.png"; else notok "no chart (matplotlib?)"; fi
fi

echo "bench-selftest: $failures failure(s); output in $out"
[ "$failures" = 0 ]
