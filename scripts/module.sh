#!/usr/bin/env bash
# Build rbfs.ko out of tree against the debug or lean kernel.  The sources
# are synced (by content) into out/module-<cfg>/ so the two kernels' objects
# never mix and the clone stays free of build products.
# RBFS_MUTANT=<name> builds a mutant (scripts/mutants/list) into
# out/module-<cfg>-mutant-<name>/ instead.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cfg=${1:?usage: module.sh debug|lean}
build=$("$RBFS_ROOT/scripts/kernel.sh" --print-dir "$cfg")
mutant=${RBFS_MUTANT:-}
mdir=$RBFS_ROOT/out/module-$cfg${mutant:+-mutant-$mutant}
mkdir -p "$mdir"
rsync -rc "$RBFS_ROOT/Kbuild" "$RBFS_ROOT/samples" "$mdir/"
if [ -n "$mutant" ]; then
	# The mutant: its patch applied to the copy (rsync has just put back
	# whatever an earlier patch changed), and the helpers beside it.  No
	# fuzz: a patch that no longer fits the code fails here, loudly.
	p=$RBFS_ROOT/scripts/mutants/$mutant.patch
	[ -f "$p" ] || { echo "module: no mutant '$mutant' (scripts/mutants/list)" >&2; exit 1; }
	cp "$RBFS_ROOT/scripts/mutants/mutants.rs" "$mdir/samples/rust/rbfs/mutants.rs"
	patch -s -p1 -F0 --no-backup-if-mismatch -d "$mdir" < "$p" || {
		echo "module: scripts/mutants/$mutant.patch no longer applies to samples/rust: update it" >&2; exit 1; }
fi
if ! kmake "$build" M="$mdir" RBFS_MUTANT="$mutant" -j"$(nproc)" modules > "$mdir/build.log" 2>&1; then
	cat "$mdir/build.log" >&2
	echo "module: build failed" >&2
	exit 1
fi
grep -E 'warning|error' "$mdir/build.log" >&2 || true
