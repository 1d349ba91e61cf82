#!/usr/bin/env bash
# Regenerate the verdict tool's test fixtures from a real debug-kernel boot:
# build qemu/splat/splat.ko, boot the guest with qemu/splat/provoke.sh (which
# provokes a WARNING, a lockdep report, a KASAN report, a hung task and a
# kmemleak report, between markers), then cut the console log into one file
# per kind: the boot's log up to the first marker, plus that kind's section.
# The clean fixture is the boot log of a normal smoke run.
#
#   scripts/splat-fixtures.sh     (after make initramfs; takes ~2 minutes)
set -euo pipefail
. "$(dirname "$0")/env.sh"
fx=$RBFS_ROOT/tools/verdict/tests/fixtures
build=$("$RBFS_ROOT/scripts/kernel.sh" --print-dir debug)
sdir=$RBFS_ROOT/out/splat-debug
mkdir -p "$sdir/files"
rsync -rc "$RBFS_ROOT/qemu/splat/Kbuild" "$RBFS_ROOT/qemu/splat/splat.c" "$sdir/"
kmake "$build" M="$sdir" modules >/dev/null
cp "$sdir/splat.ko" "$sdir/files/"
# The run fails by design (it is full of splats).
"$RBFS_ROOT/qemu/run.sh" --kernel debug --label splat-fixtures \
	--script "$RBFS_ROOT/qemu/splat/provoke.sh" --files "$sdir/files" >/dev/null || true
log=$RBFS_ROOT/out/runs/splat-fixtures/console.txt
tr -d '\r' < "$RBFS_ROOT/out/runs/splat-fixtures/console.log" > "$log"
boot=$(grep -n 'splat-fixture: begin warn' "$log" | head -n1 | cut -d: -f1)
[ -n "$boot" ] || { echo "splat-fixtures: no markers in $log" >&2; exit 1; }
for w in warn lockdep kasan hung leak; do
	case $w in warn) name=warning;; hung) name=hung_task;; leak) name=kmemleak;; *) name=$w;; esac
	{
		head -n $((boot - 1)) "$log"
		sed -n "/splat-fixture: begin $w\$/,/splat-fixture: end $w\$/p" "$log"
	} > "$fx/$name.log"
done
# A clean boot: the smoke scenario's log, if it passed.
"$RBFS_ROOT/qemu/run.sh" --kernel debug --scenario smoke --label splat-fixtures-clean >/dev/null
tr -d '\r' < "$RBFS_ROOT/out/runs/splat-fixtures-clean/console.log" > "$fx/clean.log"
tr -d '\r' < "$RBFS_ROOT/out/runs/splat-fixtures-clean/guest.log" > "$fx/clean-guest.log"
wc -l "$fx"/*.log
