#!/usr/bin/env bash
# The test command (make check): set everything up, run every test, and end
# with the line `N passed, N failed`.  Exits non-zero on any failure: a
# failed build step, a failed host test, a failed or missing guest result,
# a guest timeout, or a kernel splat in a guest's log.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"

passed=0 failed=0 skipped=0
t0=$(date +%s)
elapsed() { echo "$(( $(date +%s) - t0 ))s"; }
finish() {
	if [ "$skipped" -gt 0 ]; then
		echo "$passed passed, $failed failed, $skipped skipped"
	else
		echo "$passed passed, $failed failed"
	fi
	[ "$failed" = 0 ]
	exit
}

# Build steps: a failure is one failed test and ends the run.
step() {
	local what=$1; shift
	echo "== [$(elapsed)] $what" >&2
	if ! "$@"; then
		echo "not ok build: $what"
		failed=$((failed + 1))
		finish
	fi
}

# The filesystem module is safe Rust: `unsafe` lives in the abstractions
# under rust/ only.  (The mutants of `make mutants`, which need it, live in
# scripts/mutants/ and are applied to a copy of the module.)
if grep -rnw unsafe samples/rust/rbfs.rs samples/rust/rbfs/ |
	grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then
	echo "not ok samples/rust has no unsafe"
	failed=$((failed + 1))
else
	echo "ok samples/rust has no unsafe"
	passed=$((passed + 1))
fi

step "dependencies" scripts/deps.sh
step "debug kernel" scripts/kernel.sh debug
step "rbfs module" scripts/module.sh debug
step "tools workspace" scripts/tools.sh

# Lints and type rules of the Rust code, against the kernel and module just
# built: rustfmt and clippy (scripts/lint.py), and the compile-fail cases
# that prove the kernel::fs abstractions' type rules
# (scripts/compile-fail.py).  One result per line they print.
kbuild=$(scripts/kernel.sh --print-dir debug)
echo "== [$(elapsed)] lints and compile-fail cases" >&2
for tool in "scripts/lint.py $kbuild out/module-debug" "scripts/compile-fail.py $kbuild out/module-debug rust/kernel"; do
	out=$(python3 $tool 2>&1)
	rc=$?
	echo "$out"
	p=$(echo "$out" | grep -c '^ok ') f=$(echo "$out" | grep -c '^not ok ')
	passed=$((passed + p)); failed=$((failed + f))
	if [ "$rc" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok ${tool%% *} exited $rc"
		failed=$((failed + 1))
	fi
done
step "initramfs" qemu/mkinitramfs.sh debug

# Host tests: the tools workspace (verdict, guest tools; later the on-disk
# format, mkfs and fsck).
echo "== [$(elapsed)] host tests (cargo test)" >&2
log=$(mktemp)
(cd tools && cargo test --release --locked --workspace 2>&1) | tee "$log"
rc=${PIPESTATUS[0]}
p=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\1/p' "$log" | paste -sd+ | bc)
f=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\2/p' "$log" | paste -sd+ | bc)
i=$(sed -n 's/^test result: .*\. \([0-9]*\) passed; \([0-9]*\) failed; \([0-9]*\) ignored.*/\3/p' "$log" | paste -sd+ | bc)
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0})); skipped=$((skipped + ${i:-0}))
if [ "$rc" != 0 ] && [ "${f:-0}" = 0 ]; then
	echo "not ok host tests: cargo test exited $rc without a failed test (build error?)"
	failed=$((failed + 1))
fi
rm -f "$log"

# add_counts RC WHAT: add the "passed failed skipped" of $counts to the
# totals; a non-zero RC with no failure counted is one failure of its own.
add_counts() {
	local p=0 f=0 s=0
	[ ! -s "$counts" ] || read -r p f s < "$counts"
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	if [ "$1" != 0 ] && [ "$f" = 0 ]; then
		echo "not ok $2 exited $1"
		failed=$((failed + 1))
	fi
}

# Guest runs, one boot each.  RBFS_CHECK_SCENARIOS overrides the list.
counts=$(mktemp)
labels=()
for sc in ${RBFS_CHECK_SCENARIOS:-smoke read write meta hazards faults stress badimg}; do
	echo "== [$(elapsed)] guest: $sc" >&2
	: > "$counts"
	qemu/run.sh --kernel debug --scenario "$sc" --counts "$counts" --timeout "${RBFS_GUEST_TIMEOUT:-900}"
	rc=$?
	labels+=("$sc")
	add_counts "$rc" "guest $sc: run.sh"
done

# Power cuts: RBFS_POWERCUTS cuts (default 3), one boot each plus a last
# check.  0 skips them.
cuts=${RBFS_POWERCUTS:-3}
if [ "$cuts" -gt 0 ]; then
	echo "== [$(elapsed)] power cuts: $cuts" >&2
	: > "$counts"
	COUNTS=$counts scripts/powercut.sh "$cuts" | tee out/powercut.log
	p=$(grep -c '^ok powercut' out/powercut.log)
	f=$(grep -c '^not ok powercut' out/powercut.log)
	passed=$((passed + p)); failed=$((failed + f))
	for i in $(seq 1 $((cuts + 1))); do labels+=("powercut-$i"); done
fi

# Mutants: each writeback hazard reintroduced, caught by its test (the
# normal module's run of the hazards scenario is part of it).  RBFS_MUTANTS=0
# skips them.
if [ "${RBFS_MUTANTS:-1}" != 0 ]; then
	echo "== [$(elapsed)] mutants" >&2
	RBFS_MUTANTS_NORMAL=hazards scripts/mutants.sh | tee out/mutants.log
	# One result per mutant (the normal module's were counted with the
	# hazards scenario above).
	p=$(grep -c ' caught ' out/mutants/results.txt)
	f=$(grep -c 'NOT CAUGHT' out/mutants/results.txt)
	[ -s out/mutants/results.txt ] || f=1
	passed=$((passed + p)); failed=$((failed + f))
fi
# fstests: the bounded subset in qemu/fstests/check-subset (about 10
# minutes on the debug kernel), 1 KiB blocks, under the real harness.
# RBFS_FSTESTS=0 skips it.
if [ "${RBFS_FSTESTS:-1}" != 0 ]; then
	echo "== [$(elapsed)] fstests subset" >&2
	: > "$counts"
	rm -rf out/fstests/check
	RBFS_TEST_DISK_MB=512 RBFS_SCRATCH_DISK_MB=512 \
	FSTESTS="$(sed 's/#.*//' qemu/fstests/check-subset | xargs)" FSTESTS_FS=rbfs FSTESTS_BS=1024 \
		FSTESTS_OUT=out/fstests/check COUNTS=$counts scripts/fstests.sh 2>&1 | tee out/fstests-check.log
	rc=${PIPESTATUS[0]}
	add_counts "$rc" "fstests subset: scripts/fstests.sh"
fi
rm -f "$counts"

# The reliability figures of this run, summed over its guest runs.
echo "== [$(elapsed)] figures" >&2
figures=$(for l in "${labels[@]}"; do cat "out/runs/$l/guest.log" 2>/dev/null; done |
	grep -aoE 'rbfs-figure [a-z_]+ [0-9]+' |
	awk '{ s[$2] += $3 } END { for (k in s) print k, s[k] }' | sort)
fig() { echo "$figures" | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }
mut=$(sed -n 's/^mutants: \([0-9]*\) caught of \([0-9]*\) built.*/\1 of \2/p' out/mutants.log 2>/dev/null)
echo "# reliability: stress operations $(fig stress_ops), bytes verified $(( $(fig stress_bytes_verified) + $(fig powercut_bytes_verified) )),"\
	"faults injected $(fig faults_injected), power cuts survived $(fig powercut_survived), images tried $(fig images_tried),"\
	"mutants caught ${mut:-not run}, bytes lost $(fig bytes_lost)"
echo "== [$(elapsed)] done" >&2
finish
