#!/usr/bin/env bash
# Print name=path lines for what the build produced, for use with one's own
# QEMU setup (see README.md for the command line the harness uses).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cfg=${1:-debug}
build=$("$RBFS_ROOT/scripts/kernel.sh" --print-dir "$cfg")
guestbin=$RBFS_ROOT/tools/target/guest/x86_64-unknown-linux-gnu/release
echo "kernel=$build/arch/x86/boot/bzImage"
echo "vmlinux=$build/vmlinux"
echo "kernel_build_dir=$build"
echo "module=$RBFS_ROOT/out/module-$cfg/samples/rust/rbfs.ko"
echo "initramfs=$RBFS_ROOT/out/initramfs-$cfg.cpio"
echo "verdict=$RBFS_ROOT/tools/target/release/rbfs-verdict"
for f in "$guestbin"/*; do
	[ -f "$f" ] && [ -x "$f" ] && echo "$(basename "$f")=$f"
done
exit 0
