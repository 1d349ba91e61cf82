#!/usr/bin/env bash
# Build rbfs.ko out of tree against the debug or lean kernel.  The sources
# are synced (by content) into out/module-<cfg>/ so the two kernels' objects
# never mix and the clone stays free of build products.
# RBFS_MUTANT=<name> builds a mutant (see samples/rust/Kbuild) into
# out/module-<cfg>-mutant-<name>/ instead.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cfg=${1:?usage: module.sh debug|lean}
build=$("$RBFS_ROOT/scripts/kernel.sh" --print-dir "$cfg")
mutant=${RBFS_MUTANT:-}
mdir=$RBFS_ROOT/out/module-$cfg${mutant:+-mutant-$mutant}
mkdir -p "$mdir"
rsync -rc "$RBFS_ROOT/Kbuild" "$RBFS_ROOT/samples" "$mdir/"
if ! kmake "$build" M="$mdir" RBFS_MUTANT="$mutant" -j"$(nproc)" modules > "$mdir/build.log" 2>&1; then
	cat "$mdir/build.log" >&2
	echo "module: build failed" >&2
	exit 1
fi
grep -E 'warning|error' "$mdir/build.log" >&2 || true
