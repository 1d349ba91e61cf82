#!/usr/bin/env bash
# Power cuts: scripts/powercut.sh [CUTS] boots the `powercut` scenario
# CUTS + 1 times on one disk image.  Every boot but the last is killed
# (SIGKILL to QEMU, so nothing in flight or cached reaches the disk) a
# random 2 to 14 s after its writer starts; every boot but the first
# checks what the previous cut left: fsck.rbfs -y, then -n clean, then
# every acknowledged byte intact (see qemu/guest/scenarios/powercut.sh).
#
# Prints KTAP-style "ok"/"not ok" lines per boot, "# rbfs-figure" lines,
# and writes the counts "passed failed skipped" to $COUNTS if set.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"
cuts=${1:-3}
dir=out/powercut
rm -rf "$dir"
mkdir -p "$dir/host"
img=$dir/disk.img
truncate -s 256M "$img"
passed=0 failed=0
splats='kernel BUG at|BUG: |WARNING: |KASAN|possible circular locking|inconsistent lock state|INFO: task .* blocked for more than|Oops'
for i in $(seq 1 $((cuts + 1))); do
	label=powercut-$i
	args=(--scenario powercut --test-disk "$img" --label "$label" --timeout "${RBFS_GUEST_TIMEOUT:-900}")
	[ "$i" = 1 ] || args+=(--files "$dir/host")
	if [ "$i" -le "$cuts" ]; then
		delay=$((2 + RANDOM % 13))
		args+=(--kill-on '# powercut: writing' --kill-delay "$delay")
	else
		touch "$dir/host/final"
		args+=(--counts "$dir/counts")
	fi
	qemu/run.sh "${args[@]}" > "$dir/$label.out" 2>&1
	rc=$?
	run=out/runs/$label
	if [ "$i" -le "$cuts" ]; then
		# Killed on purpose: judge what ran before the cut ourselves.
		if [ ! -f "$run/killed" ]; then
			echo "not ok powercut $i: the guest ended before its power cut (run.sh exit $rc)"
			failed=$((failed + 1))
		elif grep -qE "$splats" "$run/console.log"; then
			echo "not ok powercut $i: kernel splat before the cut"
			grep -E "$splats" "$run/console.log" | head -n 3 | sed 's/^/#   /'
			failed=$((failed + 1))
		elif grep -q '^not ok' "$run/guest.log"; then
			echo "not ok powercut $i: $(grep '^not ok' "$run/guest.log" | head -n1)"
			grep -E '^# ' "$run/guest.log" | grep -v RBFSLOG | tail -n 8
			failed=$((failed + 1))
		else
			echo "ok powercut $i: cut ${delay}s into the writer; $(grep -ac '^RBFSLOG' "$run/guest.log") log records"
			passed=$((passed + 1))
		fi
		grep -a '^RBFSLOG' "$run/guest.log" > "$dir/host/cutlog.next" || true
	else
		if [ "$rc" = 0 ]; then
			echo "ok powercut $i: final check"
			passed=$((passed + 1))
		else
			echo "not ok powercut $i: final check (run.sh exit $rc; see $run)"
			failed=$((failed + 1))
		fi
	fi
	grep -a '^# rbfs-figure' "$run/guest.log" || true
	[ ! -f "$dir/host/cutlog.next" ] || mv "$dir/host/cutlog.next" "$dir/host/cutlog"
done
echo "# powercut: $passed passed, $failed failed over $cuts cuts"
[ -z "${COUNTS:-}" ] || echo "$passed $failed 0" > "$COUNTS"
[ "$failed" = 0 ]
