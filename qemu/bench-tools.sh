#!/usr/bin/env bash
# Copy the benchmark's load generator and formatters into an initramfs
# staging tree (called by mkinitramfs.sh for `make bench`):
#
#   qemu/bench-tools.sh STAGE
#
# - fio (/usr/bin/fio), Debian's build: dynamically linked, and with its
#   rbd/rados/gluster/nbd/rdma/pmem engines built in it needs about 60
#   shared libraries (about 85 MB).  fio needs SysV shared memory in the
#   guest kernel (CONFIG_SYSVIPC=y): it keeps its job table in a shmget()
#   segment, even with --thread.
# - e2fsprogs' mke2fs as /usr/sbin/mkfs.ext4 and /usr/sbin/mkfs.ext2
#   (mke2fs takes the filesystem type from the name after "mkfs.", and
#   -t overrides it); busybox's own mke2fs, which cannot make ext4, stays
#   /bin/mke2fs.  /etc/mke2fs.conf comes along.
#
# Each library is copied (dereferenced) to the path ldd resolved it to on
# this host, and the dynamic loader to its own path, so the guest's loader
# finds them as the host's does (default directories, fio's RUNPATH for
# libceph-common); no ld.so.cache is needed.
set -euo pipefail
stage=${1:?usage: bench-tools.sh STAGE}
[ -d "$stage" ] || { echo "bench-tools: no such directory: $stage" >&2; exit 1; }

FIO=${RBFS_FIO:-/usr/bin/fio}
MKE2FS=${RBFS_MKE2FS:-/usr/sbin/mke2fs}
for b in "$FIO" "$MKE2FS"; do
	[ -x "$b" ] || { echo "bench-tools: $b missing (scripts/deps.sh --bench installs fio and e2fsprogs)" >&2; exit 1; }
done

# copy_libs BINARY: BINARY's shared libraries (ldd's resolution on this host)
# and its program interpreter into the stage, at the same paths.
copy_libs() {
	local bin=$1 line path
	local out
	out=$(ldd "$bin") || { echo "bench-tools: ldd $bin failed" >&2; exit 1; }
	while read -r line; do		# read strips the leading tab
		case "$line" in
		*"=> not found"*) echo "bench-tools: $bin: $line" >&2; exit 1 ;;
		*"=> /"*) path=${line#*=> }; path=${path%% (*} ;;
		/*) path=${line%% (*} ;;	# the interpreter: /lib64/ld-linux-x86-64.so.2 (0x...)
		*) continue ;;			# linux-vdso.so.1
		esac
		path=$(echo "$path" | tr -d '[:space:]')
		[ -e "$stage$path" ] && continue
		mkdir -p "$stage$(dirname "$path")"
		cp -L "$path" "$stage$path"
	done <<< "$out"
}

install -D -m 755 "$FIO" "$stage/usr/bin/fio"
copy_libs "$FIO"
install -D -m 755 "$MKE2FS" "$stage/usr/sbin/mkfs.ext4"
ln -sf mkfs.ext4 "$stage/usr/sbin/mkfs.ext2"
copy_libs "$MKE2FS"
[ ! -f /etc/mke2fs.conf ] || install -D -m 644 /etc/mke2fs.conf "$stage/etc/mke2fs.conf"

# Check what can be checked without booting: every library each program
# needs is in the stage.  (As root, scripts/bench-selftest.sh also runs
# them in a chroot of the stage.)
for b in "$FIO" "$MKE2FS"; do
	while read -r lib; do
		[ -e "$stage$lib" ] || { echo "bench-tools: $lib missing from the stage" >&2; exit 1; }
	done < <(ldd "$b" | awk '/=> \//{print $3} /^[[:space:]]*\//{print $1}')
done
