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
# under rust/ only.
if grep -rnw unsafe samples/rust/rbfs.rs samples/rust/rbfs/ | grep -vE '^[^:]+:[0-9]+:[[:space:]]*//'; then
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

# Guest runs, one boot each.  RBFS_CHECK_SCENARIOS overrides the list.
counts=$(mktemp)
for sc in ${RBFS_CHECK_SCENARIOS:-smoke read write meta}; do
	echo "== [$(elapsed)] guest: $sc" >&2
	: > "$counts"
	qemu/run.sh --kernel debug --scenario "$sc" --counts "$counts" --timeout "${RBFS_GUEST_TIMEOUT:-900}"
	rc=$?
	if [ -s "$counts" ]; then
		read -r p f s < "$counts"
		passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
	fi
	if [ "$rc" != 0 ] && { [ ! -s "$counts" ] || [ "$f" = 0 ]; }; then
		echo "not ok guest $sc: run.sh exited $rc"
		failed=$((failed + 1))
	fi
done
rm -f "$counts"
echo "== [$(elapsed)] done" >&2
finish
