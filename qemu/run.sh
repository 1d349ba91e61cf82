#!/usr/bin/env bash
# Boot the rbfs guest once, run a scenario in it, and judge the run.
#
#   qemu/run.sh [--kernel debug|lean] [--scenario NAME] [--script FILE]
#               [--files DIR] [--timeout SECONDS] [--label NAME]
#               [--counts FILE] [--interactive] [--mutant NAME]
#               [--test-disk IMG] [--kill-on PATTERN --kill-delay SECONDS]
#               [--only TEST,TEST...] [--disk IMG[,DRIVE-OPTS]]...
#
# Scenarios live in qemu/guest/scenarios/.  --script runs a user's script
# (scenario "script") with rbfs.ko loaded; --files DIR makes DIR's contents
# available in the guest under /host.  Each run gets fresh disks:
# /dev/vda (test, $RBFS_TEST_DISK_MB MiB) and /dev/vdb (scratch,
# $RBFS_SCRATCH_DISK_MB MiB), sparse raw files in out/runs/LABEL/.
#
# --disk IMG[,OPTS] adds IMG as the next virtio disk (/dev/vdc, /dev/vdd, ...
# in order), with QEMU -drive options OPTS (e.g. snapshot=on).
#
# --mutant NAME loads the mutant module NAME (make mutants) instead of
# rbfs.ko; --only runs just the named tests of the scenario.  --test-disk IMG uses IMG as /dev/vda instead of a fresh disk (a
# second boot on the disk of a first).  --kill-on PATTERN kills QEMU (a
# power cut: SIGKILL, nothing flushed) KILL_DELAY seconds after PATTERN
# first appears on the results channel; the run is then not judged and
# exits 0, leaving the disk and the guest's output in out/runs/LABEL/.
#
# Exit status: 0 if every check passed (for --script: the script's exit
# status, unless the run itself failed), 1 otherwise.
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"

cfg=debug scenario=smoke script= files= limit=900 label= counts= interactive=0
mutant= test_disk= kill_on= kill_delay=0 only=
extra_disks=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kernel) cfg=$2; shift ;;
	--scenario) scenario=$2; shift ;;
	--script) script=$2; scenario=script; shift ;;
	--files) files=$2; shift ;;
	--timeout) limit=$2; shift ;;
	--label) label=$2; shift ;;
	--counts) counts=$2; shift ;;
	--interactive) interactive=1; scenario=shell ;;
	--mutant) mutant=$2; shift ;;
	--only) only=$2; shift ;;
	--test-disk) test_disk=$2; shift ;;
	--kill-on) kill_on=$2; shift ;;
	--kill-delay) kill_delay=$2; shift ;;
	--disk) extra_disks+=("$2"); shift ;;
	*) echo "run.sh: unknown argument '$1'" >&2; exit 2 ;;
	esac
	shift
done
label=${label:-$scenario}

out=$RBFS_ROOT/out
kernel=$("$RBFS_ROOT/scripts/kernel.sh" --print-dir "$cfg")/arch/x86/boot/bzImage
initrd=$out/initramfs-$cfg.cpio
for f in "$kernel" "$initrd"; do
	[ -f "$f" ] || { echo "run.sh: $f missing (make initramfs KCONFIG=$cfg)" >&2; exit 2; }
done
[ -z "$script" ] || [ -f "$script" ] || { echo "run.sh: no such script: $script" >&2; exit 2; }
[ -z "$files" ] || [ -d "$files" ] || { echo "run.sh: no such directory: $files" >&2; exit 2; }

run=$out/runs/$label
if [ -n "$test_disk" ]; then
	[ -f "$test_disk" ] || { echo "run.sh: no such disk image: $test_disk" >&2; exit 2; }
	test_disk=$(realpath "$test_disk")
	case "$test_disk" in "$(realpath -m "$run")"/*) echo "run.sh: --test-disk must not be inside out/runs/$label" >&2; exit 2 ;; esac
fi
rm -rf "$run"
mkdir -p "$run"

# Fresh sparse disks for every run (or the given test disk).
test_mb=${RBFS_TEST_DISK_MB:-1024}
scratch_mb=${RBFS_SCRATCH_DISK_MB:-1024}
if [ -n "$test_disk" ]; then
	ln -s "$test_disk" "$run/test.img"
	test_mb=$(( $(stat -c %s "$test_disk") >> 20 ))
else
	truncate -s "${test_mb}M" "$run/test.img"
fi
truncate -s "${scratch_mb}M" "$run/scratch.img"
# cache=none (O_DIRECT on the host) where the host filesystem allows it, so
# what the guest flushes is on the host's disk; tmpfs does not.
cache=none
dd if=/dev/zero of="$run/.direct-probe" bs=4096 count=1 oflag=direct status=none 2>/dev/null || cache=writeback
rm -f "$run/.direct-probe"

# The user's script and files ride in a second cpio archive appended to the
# base one (the kernel unpacks concatenated archives in order).
initrd_run=$initrd
if [ -n "$script$files" ]; then
	extra=$(mktemp -d)
	trap 'rm -rf "$extra"' EXIT
	mkdir -p "$extra/rbfs" "$extra/host"
	[ -z "$script" ] || install -m 755 "$script" "$extra/rbfs/user-script"
	[ -z "$files" ] || cp -a "$files/." "$extra/host/"
	(cd "$extra" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$run/extra.cpio"
	cat "$initrd" "$run/extra.cpio" > "$run/initramfs.cpio"
	initrd_run=$run/initramfs.cpio
fi

# The hazards scenario gets a test disk that writes at 1 MiB/s (QEMU's
# throttling; reads are not limited): a sync primitive that returns before
# its writes complete is then caught every time by the reads that check
# the disk right after it, however fast the host is.
test_drive_opts=
[ "$scenario" != hazards ] || test_drive_opts=",throttling.bps-write=1048576"

# vCPUs: the debug kernel (KASAN, lockdep) only boots with as many vCPUs as
# host cores under multi-threaded TCG; the lean one takes 4.
if [ "$cfg" = debug ]; then smp=${RBFS_SMP:-$(nproc)}; else smp=${RBFS_SMP:-4}; fi
mem=${RBFS_MEM_MB:-2048}

# Under TCG a vCPU is a host thread: when the host is busy it can be
# descheduled for tens of seconds, and with the default thresholds (soft
# lockup after 20 s, RCU stall after 21 s) that shows as a false lockup
# splat, seen during boot's stop_machine.  60 s keeps real lockups visible.
#
# acpi=noirq: PCI interrupts are routed through the PIIX router, not ACPI's
# _PRT methods.  Under TCG the debug kernel's AML interpreter is so slow that
# each _PRT evaluation ran into ACPICA's 30 s loop timeout
# (AE_AML_LOOP_TIMEOUT, "PCI INT A: no GSI"): 60 of a debug boot's 84 s
# before /init, and the stalls fstests boots saw with more disks.  The
# virtio devices use MSI-X either way.
append="console=ttyS0,115200 rdinit=/init panic=-1 printk.devkmsg=on kasan_multi_shot acpi=noirq"
append+=" watchdog_thresh=30 rcupdate.rcu_cpu_stall_timeout=60 slab_nomerge"
append+=" rbfs_guest=$scenario rbfs_disk_vda=$test_mb rbfs_disk_vdb=$scratch_mb"
[ -z "$mutant" ] || append+=" rbfs_mutant=$mutant"
[ -z "$only" ] || append+=" rbfs_only=$only"
# The test and scratch disks pass discards on to their image files
# (discard=unmap: holes punched), so discarded blocks read back as zeroes
# and FITRIM can be checked.
# RBFS_APPEND: more kernel parameters (e.g. rbfs_stress_time=600 for a soak).
[ -z "${RBFS_APPEND:-}" ] || append+=" $RBFS_APPEND"
qemu=(qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp "$smp" -m "$mem"
	-display none -no-reboot -monitor none
	-kernel "$kernel" -initrd "$initrd_run" -append "$append"
	-drive "file=$run/test.img,if=virtio,format=raw,cache=$cache,discard=unmap$test_drive_opts"
	-drive "file=$run/scratch.img,if=virtio,format=raw,cache=$cache,discard=unmap")
for d in "${extra_disks[@]}"; do
	img=${d%%,*}
	[ -f "$img" ] || { echo "run.sh: no such disk image: $img" >&2; exit 2; }
	opts=
	[ "$img" = "$d" ] || opts=",${d#*,}"
	case "$opts" in *cache=*|*snapshot=on*) ;; *) opts+=",cache=$cache" ;; esac
	qemu+=(-drive "file=$img,if=virtio,format=raw$opts")
done
printf '%q ' "${qemu[@]}" > "$run/qemu-cmdline"

if [ $interactive = 1 ]; then
	# Console (with the shell) on this terminal; results channel to a file.
	exec "${qemu[@]}" -serial mon:stdio -serial "file:$run/guest.log"
fi

echo "run.sh: $label: $cfg kernel, $smp vCPUs, limit ${limit}s; kernel log: $run/console.log" >&2

# boot_once: one boot.  A watcher kills QEMU if the kernel has not reached
# /init within $boot_limit seconds (the boot hung), leaving a marker file.
# A splat before /init (the early-boot wedge described below) counts as a
# hung boot at once instead of after the limit.
boot_limit=${RBFS_BOOT_LIMIT:-180}
boot_once() {
	rm -f "$run/console.log" "$run/boot-hung" "$run/qemu.pid"
	(
		waited=0
		while ! grep -q 'Run /init as init process' "$run/console.log" 2>/dev/null; do
			if [ "$waited" -ge "$boot_limit" ] ||
				grep -qE 'BUG:|Kernel panic' "$run/console.log" 2>/dev/null; then
				[ -f "$run/qemu.pid" ] || exit 0
				touch "$run/boot-hung"
				kill "$(cat "$run/qemu.pid")" 2>/dev/null
				exit 0
			fi
			sleep 2
			waited=$((waited + 2))
		done
	) &
	watcher=$!
	killer=
	if [ -n "$kill_on" ]; then
		(
			until grep -q -- "$kill_on" "$run/guest.log" 2>/dev/null; do
				[ -f "$run/qemu.pid" ] && ! kill -0 "$(cat "$run/qemu.pid")" 2>/dev/null && exit 0
				sleep 0.2
			done
			sleep "$kill_delay"
			touch "$run/killed"
			kill -9 "$(cat "$run/qemu.pid")" 2>/dev/null
		) &
		killer=$!
	fi
	set +e
	timeout -k 10 "$limit" "${qemu[@]}" -pidfile "$run/qemu.pid" -serial "file:$run/console.log" -serial stdio </dev/null |
		tee "$run/guest.log"
	qemu_rc=${PIPESTATUS[0]}
	set -e
	kill "$watcher" 2>/dev/null || true
	wait "$watcher" 2>/dev/null || true
	if [ -n "$killer" ]; then
		kill "$killer" 2>/dev/null || true
		wait "$killer" 2>/dev/null || true
	fi
}

start=$(date +%s)
boot_once
# A boot that never reached /init is retried once: under TCG a starved
# vCPU can wedge early boot (seen once in ~40 boots: a failed PIT
# calibration, then an interrupt in identify_cpu hitting an unset irq
# lock, KASAN-reported, then a hang), before rbfs or any test is loaded.
# The first attempt's log is kept and its splats are printed.
if [ -f "$run/boot-hung" ]; then
	mv "$run/console.log" "$run/console.boot-hung.log"
	echo "run.sh: $label: the kernel did not reach /init (limit ${boot_limit}s, or a splat first); retrying the boot once (log: $run/console.boot-hung.log)" >&2
	grep -E 'BUG:|WARNING:|KASAN:|Oops' "$run/console.boot-hung.log" | head -5 | sed 's/^/run.sh:   first boot: /' >&2 || true
	boot_once
	[ ! -f "$run/boot-hung" ] || echo "run.sh: $label: the kernel did not reach /init again" >&2
fi
echo "run.sh: $label: guest ran $(( $(date +%s) - start )) s (qemu exit $qemu_rc)" >&2
if [ -f "$run/killed" ]; then
	echo "run.sh: $label: power cut ${kill_delay}s after '$kill_on'" >&2
	exit 0
fi

verdict=("$RBFS_ROOT/tools/target/release/rbfs-verdict" --console "$run/console.log" --guest "$run/guest.log" --label "$label")
[ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ] && verdict+=(--timed-out)
[ "$cfg" = debug ] && verdict+=(--expect-kunit)
[ -z "$counts" ] || verdict+=(--counts "$counts")
touch "$run/console.log"
set +e
"${verdict[@]}" | tee "$run/verdict.txt"
verdict_rc=${PIPESTATUS[0]}
set -e
status=0
if [ "$scenario" = script ]; then
	status=$(sed -n 's/^# rbfs-guest: exit-status \([0-9]*\).*/\1/p' "$run/guest.log" | tr -d '\r' | tail -n1)
	status=${status:-1}
	echo "run.sh: $label: user script exited with status $status" >&2
fi
if [ "$verdict_rc" != 0 ]; then
	echo "run.sh: $label: FAILED; kernel log: $run/console.log" >&2
	[ "$status" != 0 ] && exit "$status"
	exit 1
fi
exit "$status"
