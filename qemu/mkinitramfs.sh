#!/usr/bin/env bash
# Build the guest's initramfs for a kernel config:
#   qemu/mkinitramfs.sh debug|lean
# Contents: busybox-static with its applet links, /init and the guest
# scenarios from qemu/guest, rbfs.ko built for that kernel, and the static
# guest programs of the tools/ workspace.  Output: out/initramfs-<cfg>.cpio
set -euo pipefail
. "$(dirname "$0")/../scripts/env.sh"
cfg=${1:?usage: mkinitramfs.sh debug|lean}
out=$RBFS_ROOT/out
ko=$out/module-$cfg/samples/rust/rbfs.ko
guestbin=$RBFS_ROOT/tools/target/guest/x86_64-unknown-linux-gnu/release
[ -f "$ko" ] || { echo "mkinitramfs: $ko missing (make module)" >&2; exit 1; }

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,mnt,scratch,host,lib/modules,rbfs}
cp /bin/busybox "$stage/bin/busybox"
for applet in $(/bin/busybox --list); do
	[ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
done
install -m 755 "$RBFS_ROOT/qemu/guest/init" "$stage/init"
cp "$RBFS_ROOT/qemu/guest/lib.sh" "$stage/rbfs/"
cp -r "$RBFS_ROOT/qemu/guest/scenarios" "$stage/rbfs/"
cp "$ko" "$stage/lib/modules/"
# Mutant modules (make mutants), if built, for run.sh --mutant NAME.
for m in "$out"/module-"$cfg"-mutant-*/samples/rust/rbfs.ko; do
	[ -f "$m" ] || continue
	name=${m#"$out"/module-"$cfg"-mutant-}
	name=${name%%/*}
	mkdir -p "$stage/lib/modules/mutants"
	cp "$m" "$stage/lib/modules/mutants/$name.ko"
done
# Every executable the guest crate builds (rbfs-pattern, later mkfs.rbfs ...).
for f in "$guestbin"/*; do
	[ -f "$f" ] && [ -x "$f" ] && cp "$f" "$stage/usr/bin/"
done
# mkfs.rbfs and fsck.rbfs (cargo cannot name a binary with a dot) and a mkfs(8) front end,
# which busybox does not have, so `mkfs -t rbfs` works as usual.
mv "$stage/usr/bin/mkfs-rbfs" "$stage/sbin/mkfs.rbfs"
mv "$stage/usr/bin/fsck-rbfs" "$stage/sbin/fsck.rbfs"
install -m 755 "$RBFS_ROOT/qemu/guest/mkfs" "$stage/sbin/mkfs"
# The benchmark's tools (make bench): fio and e2fsprogs' mke2fs as
# mkfs.ext2/mkfs.ext4, with their shared libraries (about 85 MB).
# RBFS_BENCH_TOOLS=1 requires them, 0 leaves them out; unset, the lean
# initramfs has them when fio is installed.
bench_tools=${RBFS_BENCH_TOOLS:-}
if [ -z "$bench_tools" ]; then
	bench_tools=0
	[ "$cfg" != lean ] || [ ! -x /usr/bin/fio ] || bench_tools=1
fi
[ "$bench_tools" != 1 ] || "$RBFS_ROOT/qemu/bench-tools.sh" "$stage"
echo 'root:x:0:0:root:/root:/bin/sh' > "$stage/etc/passwd"
echo 'root:x:0:' > "$stage/etc/group"

(cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out/initramfs-$cfg.cpio.tmp"
mv "$out/initramfs-$cfg.cpio.tmp" "$out/initramfs-$cfg.cpio"
