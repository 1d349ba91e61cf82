#!/usr/bin/env bash
# The benchmark (make bench): build the lean kernel, rbfs.ko, the tools and
# an initramfs with fio and e2fsprogs' mke2fs, boot the lean guest once
# (4 vCPUs) with the bench scenario (qemu/guest/scenarios/bench.sh: rbfs,
# ext2, ext4 and ext4 without a journal at 1 KiB and 4 KiB blocks, and the
# raw disk), then turn its BENCH lines into the report:
#
#   out/bench/<date>/results.json, results.txt (also printed), bench.png,
#   and the run's guest.log, console.log, qemu-cmdline and verdict.txt;
#   out/bench/latest points to the newest.
#
#   scripts/bench.sh [--quick] [--no-build] [--report DIR]
#
#   --quick      BENCH_QUICK=1: small sizes, one repetition (a few minutes),
#                to check the plumbing
#   --no-build   use the kernel, module and initramfs as they are
#   --report DIR only (re)make the report from DIR/guest.log
#
# scripts/bench-selftest.sh checks this plumbing on the host (no kernel, no
# guest).  Documentation/filesystems/rbfs-bench.rst says what is measured.
#
# Settings (environment, passed to the guest in /host/bench.env):
#   BENCH_REPS (3), BENCH_FS ("rbfs ext2 ext4 ext4nj"), BENCH_BS ("1024 4096"),
#   BENCH_WORKLOADS, BENCH_RAW, BENCH_SEQ_MB (128), BENCH_RAND_IOS (2048),
#   BENCH_DSYNC_IOS (512), BENCH_FSYNC_EVERY (16), BENCH_SMALL_FILES (1000),
#   BENCH_SMALL_KB (4), BENCH_FIO_CAP (120 s per fio job), BENCH_FSCK (1),
#   BENCH_BUDGET (1500 s, quick 600 s: no repetition is started that would
#   end past it)
# and on the host: BENCH_TIMEOUT (the guest's wall-clock limit; 2400 s, quick
# 900 s), BENCH_DISK_MB (test disk size, default 1024), BENCH_OUT (results
# directory).
#
# Exit status: the guest run's (0 when every workload ran and the kernel
# log is clean), or 2 when no result came back.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"

build=1 report_only=''
while [ $# -gt 0 ]; do
	case "$1" in
	--quick) export BENCH_QUICK=1 ;;
	--no-build) build=0 ;;
	--report) report_only=$2; shift ;;
	*) echo "bench.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
	shift
done

# The report needs matplotlib for its chart: Debian's python3 has it
# (python3-matplotlib), a pyenv or venv python3 first in PATH may not.
python=python3
for p in /usr/bin/python3 python3; do
	if "$p" -c 'import matplotlib' 2>/dev/null; then python=$p; break; fi
done

report() {
	"$python" "$RBFS_ROOT/scripts/bench-report.py" --out "$1" "$1/guest.log"
}

if [ -n "$report_only" ]; then
	report "$report_only"
	exit
fi

t0=$(date +%s)
step() {
	local what=$1; shift
	echo "== [$(( $(date +%s) - t0 ))s] $what" >&2
	"$@"
}
if [ "$build" = 1 ]; then
	step "dependencies" scripts/deps.sh --bench
	step "lean kernel" scripts/kernel.sh lean
	step "rbfs module" scripts/module.sh lean
	step "tools" scripts/tools.sh
	step "initramfs (with fio and mke2fs)" env RBFS_BENCH_TOOLS=1 qemu/mkinitramfs.sh lean
fi

# What the guest needs of the lean kernel: fio keeps its job table in SysV
# shared memory, the baselines are ext2 and ext4, the O_DSYNC workloads
# use native AIO.
kconfig=$(scripts/kernel.sh --print-dir lean)/.config
missing=
for opt in CONFIG_SYSVIPC CONFIG_EXT2_FS CONFIG_EXT4_FS CONFIG_AIO; do
	grep -q "^$opt=y" "$kconfig" 2>/dev/null || missing+=" $opt=y"
done
if [ -n "$missing" ]; then
	echo "bench: the lean kernel ($kconfig) lacks$missing (add to qemu/config/lean.config)" >&2
	exit 2
fi

# The guest's settings: every BENCH_* variable of this environment.
cfgdir=$(mktemp -d)
trap 'rm -rf "$cfgdir"' EXIT
while IFS= read -r name; do
	case "$name" in BENCH_TIMEOUT|BENCH_DISK_MB|BENCH_OUT) continue ;; esac
	val=${!name}
	printf "%s='%s'\n" "$name" "${val//\'/\'\\\'\'}"
done < <(compgen -e | grep '^BENCH_' || true) > "$cfgdir/bench.env"

if [ "${BENCH_QUICK:-0}" = 1 ]; then limit=${BENCH_TIMEOUT:-900}; else limit=${BENCH_TIMEOUT:-2400}; fi
export RBFS_TEST_DISK_MB=${BENCH_DISK_MB:-${RBFS_TEST_DISK_MB:-1024}}
export RBFS_SCRATCH_DISK_MB=${RBFS_SCRATCH_DISK_MB:-64}

stamp=$(date +%Y%m%d-%H%M%S)
res=${BENCH_OUT:-$RBFS_ROOT/out/bench/$stamp}
mkdir -p "$res"
echo "== [$(( $(date +%s) - t0 ))s] guest: bench$([ "${BENCH_QUICK:-0}" = 1 ] && echo " (quick)"), limit ${limit}s; settings: $(tr '\n' ' ' < "$cfgdir/bench.env")" >&2
set +e
qemu/run.sh --kernel lean --scenario bench --files "$cfgdir" --label bench --timeout "$limit"
rc=$?
set -e
run=$RBFS_ROOT/out/runs/bench
for f in guest.log console.log qemu-cmdline verdict.txt; do
	[ ! -f "$run/$f" ] || cp "$run/$f" "$res/"
done
cp "$cfgdir/bench.env" "$res/"
echo "== [$(( $(date +%s) - t0 ))s] report" >&2
if ! report "$res"; then
	echo "bench: no results; see $res/guest.log and $res/console.log" >&2
	exit 2
fi
if [ -z "${BENCH_OUT:-}" ]; then
	ln -sfn "$stamp" "$RBFS_ROOT/out/bench/latest"
fi
echo "bench: results in $res (guest run exit status $rc, $(( $(date +%s) - t0 ))s in all)" >&2
exit "$rc"
