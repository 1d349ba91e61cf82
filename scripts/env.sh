# Sourced by the scripts: where things are and how the kernel is invoked.
# shellcheck shell=bash
RBFS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RBFS_CACHE=${RBFS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/rbfs}
KERNEL_TARBALL=${KERNEL_TARBALL:-/usr/src/linux-source-6.12.tar.xz}
# The Debian package version names the source (the archive moves between
# 6.12.x releases); '~' is not welcome in make paths.
KERNEL_VERSION=$(dpkg-query -W -f='${Version}' linux-source-6.12 2>/dev/null || stat -c %Y "$KERNEL_TARBALL")
KERNEL_VERSION=${KERNEL_VERSION//\~/-}
LLVM_BIN=/usr/lib/llvm-19/bin
BINDGEN=${BINDGEN:-${CARGO_HOME:-$HOME/.cargo}/bin/bindgen}

kernel_cache_dir() { echo "$RBFS_CACHE/linux-$KERNEL_VERSION"; }

# kmake BUILD_DIR ARGS...: the kernel's make with the verified toolchain
# (Debian's rustc/rustdoc 1.85 with core source, clang 19, bindgen 0.71).
kmake() {
	local build=$1; shift
	PATH=$LLVM_BIN:$PATH make -C "$(kernel_cache_dir)/src" O="$build" LLVM=1 \
		RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc HOSTRUSTC=/usr/bin/rustc \
		BINDGEN="$BINDGEN" "$@"
}
