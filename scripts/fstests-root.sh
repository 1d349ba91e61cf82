#!/usr/bin/env bash
# Build the guest root filesystem that runs fstests, cached outside the clone.
#
#   scripts/fstests-root.sh            build what is missing, print the image path
#
# Two cached stages under $RBFS_CACHE/fstests/:
#   base-<packages hash>.tar   Debian 12 (mmdebstrap --variant=minbase) with
#                              qemu/fstests/packages; rebuilt only when that
#                              list changes (about 5 minutes)
#   root-<hash>.img            an ext4 image of the base with fstests built
#                              in /opt/fstests, the project's patch applied,
#                              and fstests' test users; rebuilt when the base,
#                              the fstests source, this script or
#                              qemu/fstests/*.patch changes
#                              (about 3 minutes)
#   root-<hash>.groups/        its tests' group lists (generic), read by
#                              scripts/fstests.sh to expand -g GROUP
#
# The fstests source: FSTESTS_SRC (a tarball, or a directory holding an
# unpacked tree or one tarball); by default the pinned snapshot in
# ../shared/fstests/ beside the clone.  It is never copied into the clone.
#
# The guest boots with this image as a disk (snapshot=on: the cached image
# is never written) and chroots into it; see qemu/guest/scenarios/fstests.sh.
set -euo pipefail
. "$(dirname "$0")/env.sh"

log() { echo "fstests-root: $*" >&2; }
die() { log "$*"; exit 1; }

# 1. The fstests source.
src=${FSTESTS_SRC:-}
if [ -z "$src" ]; then
	for d in "$RBFS_ROOT/../shared/fstests" "$RBFS_ROOT/../../shared/fstests"; do
		[ -d "$d" ] && { src=$(cd "$d" && pwd); break; }
	done
fi
if [ -z "$src" ]; then
	die "no fstests source. Set FSTESTS_SRC to a tarball or directory of fstests, e.g.
  git clone https://git.kernel.org/pub/scm/fs/xfs/xfstests-dev.git fstests
  (cd fstests && git checkout 63a29724a85f1999e49bf0a9bf0d22643b6116e5)
  make fstests FSTESTS_SRC=\$PWD/fstests"
fi
if [ -d "$src" ] && [ ! -f "$src/check" ]; then
	tarballs=("$src"/fstests*.tar*)
	[ -f "${tarballs[0]}" ] && [ ${#tarballs[@]} = 1 ] ||
		die "$src holds neither an fstests tree (no ./check) nor exactly one fstests*.tar* tarball"
	src=${tarballs[0]}
fi
[ -e "$src" ] || die "FSTESTS_SRC=$src does not exist"
if [ -d "$src" ]; then
	src_hash=$(cd "$src" && find . -type f ! -path './.git/*' -print0 | LC_ALL=C sort -z |
		xargs -0 sha256sum | sha256sum | cut -c1-16)
else
	src_hash=$(sha256sum < "$src" | cut -c1-16)
fi

# 2. What builds it.
need=()
for p in mmdebstrap e2fsprogs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
	log "installing ${need[*]}"
	SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
[ "$(id -u)" = 0 ] || die "building the root filesystem needs root (chroot, loop-free mke2fs -d is fine, mounts are not)"

cache=$RBFS_CACHE/fstests
mkdir -p "$cache"
pkgs=$(sed 's/#.*//' "$RBFS_ROOT/qemu/fstests/packages" | tr -s ' \n' '\n' | sed '/^$/d' | LC_ALL=C sort -u)
pkg_hash=$(echo "$pkgs" | sha256sum | cut -c1-16)
base=$cache/base-$pkg_hash.tar

# 3. The Debian base, from the host's own apt sources (the archive this
#    machine is configured to use), so no mirror is named here.
if [ ! -f "$base" ]; then
	sources=()
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] && grep -qE '^[^#]*(URIs:|deb ).*/debian' "$f" && sources+=("$f")
	done
	[ ${#sources[@]} -gt 0 ] || die "no Debian apt source in /etc/apt to build the root from"
	log "building the Debian base (${pkg_hash}; a few minutes)"
	mmdebstrap --quiet --variant=minbase --include="$(echo "$pkgs" | paste -sd,)" \
		bookworm "$cache/partial-base.tar" "${sources[@]}" </dev/null >&2 || die "mmdebstrap failed"
	mv "$cache/partial-base.tar" "$base"
	# Older bases are of no further use.
	find "$cache" -maxdepth 1 -name 'base-*.tar' ! -name "base-$pkg_hash.tar" -delete
fi

# 4. fstests built inside the base.
conf_hash=$( { echo "$pkg_hash $src_hash"; cat "$0" "$RBFS_ROOT"/qemu/fstests/*.patch; } |
	sha256sum | cut -c1-16)
img=$cache/root-$conf_hash.img
if [ -f "$img" ]; then
	echo "$img"
	exit 0
fi
log "building fstests in the root ($conf_hash)"
work=$(mktemp -d "$cache/work.XXXXXX")
mounted=()
cleanup() {
	for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -l "${mounted[$i]}" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
root=$work/root
mkdir -p "$root"
tar -xf "$base" -C "$root"
mkdir -p "$root/opt/fstests"
if [ -d "$src" ]; then
	(cd "$src" && tar -cf - --exclude=.git .) | tar -xf - -C "$root/opt/fstests"
else
	tar -xf "$src" -C "$root/opt/fstests" --strip-components=1
fi
[ -f "$root/opt/fstests/check" ] || die "$src did not unpack to an fstests tree"
for p in "$RBFS_ROOT"/qemu/fstests/*.patch; do
	patch -s -p1 -d "$root/opt/fstests" --no-backup-if-mismatch < "$p" ||
		die "$(basename "$p") does not apply to this fstests source"
done
for m in proc sys dev; do
	mount --bind "/$m" "$root/$m"
	mounted+=("$root/$m")
done
chroot "$root" /bin/sh -ec '
	cd /opt/fstests
	make -j"$(nproc)" >/tmp/fstests-build.log 2>&1 || { tail -40 /tmp/fstests-build.log; exit 1; }
	rm -f /tmp/fstests-build.log
	# fstests test users and groups (README, step 6).
	useradd -m fsgqa
	useradd 123456-fsgqa
	useradd fsgqa2
	getent group fsgqa >/dev/null || groupadd fsgqa
' >&2 || die "building fstests in the root failed"
for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount "${mounted[$i]}"; done
mounted=()
# Mount points the guest uses; rbfs's tools are copied in at each boot.
mkdir -p "$root/mnt/test" "$root/mnt/scratch" "$root/results"
ln -sf /proc/self/mounts "$root/etc/mtab"
# The lock and socket tests talk to localhost over loopback.
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost\n' > "$root/etc/hosts"
echo rbfs-guest > "$root/etc/hostname"
size_mb=$(( $(du -sm "$root" | cut -f1) + 1024 ))
rm -f "$img.tmp"
mke2fs -q -t ext4 -L fstests-root -d "$root" "$img.tmp" "${size_mb}M" >&2 || die "mke2fs -d failed"
# The group lists, for the host to expand -g GROUP into test names.
rm -rf "${img%.img}.groups"
mkdir -p "${img%.img}.groups"
cp "$root/opt/fstests/tests/generic/group.list" "${img%.img}.groups/generic"
mv "$img.tmp" "$img"
find "$cache" -maxdepth 1 \( -name 'root-*.img' -o -name 'root-*.groups' \) ! -name "root-$conf_hash.*" -exec rm -rf {} +
log "root image: $img"
echo "$img"
