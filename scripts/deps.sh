#!/usr/bin/env bash
# Install what building and testing rbfs needs on Debian 12, skipping what is
# already present.  Idempotent; prints nothing when there is nothing to do.
#
# Versions: see ../shared/KERNEL-NOTES.md.  rustc-web is pinned to 1.85 (the
# version verified to build the 6.12 kernel crate); linux-source-6.12 takes
# whatever patch level the archive has, and is never upgraded once installed
# (the kernel build cache is keyed by that version).
set -euo pipefail

RUSTC_WEB_VERSION=1.85.0+dfsg3-1~deb12u3
BINDGEN_VERSION=0.71.1

log() { echo "deps: $*" >&2; }

SUDO=
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

have_pkg() {
	dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | grep -q '^install ok installed'
}
have_pkg_version() {
	[ "$(dpkg-query -W -f='${Status} ${Version}' "$1" 2>/dev/null)" = "install ok installed $2" ]
}

pkgs=(linux-source-6.12 clang-19 lld-19 llvm-19 libclang-19-dev
      bc flex bison rsync patch libelf-dev libssl-dev cpio kmod make gcc libc6-dev
      qemu-system-x86 busybox-static xz-utils python3 ca-certificates)
rust_pkgs=(rustc-web libstd-rust-web-dev rust-web-src rust-web-clippy)
# `deps.sh --bench` (make bench) also installs the benchmark's load
# generator, the ext2/ext4 formatter copied into the guest, and the chart's
# plotting library.
if [ "${1:-}" = --bench ]; then
	pkgs+=(fio e2fsprogs python3-matplotlib)
fi

want=()
for p in "${pkgs[@]}"; do have_pkg "$p" || want+=("$p"); done
for p in "${rust_pkgs[@]}"; do
	have_pkg_version "$p" "$RUSTC_WEB_VERSION" || want+=("$p=$RUSTC_WEB_VERSION")
done

if [ ${#want[@]} -gt 0 ]; then
	log "installing ${want[*]}"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null
	$SUDO apt-get install -y -qq --no-install-recommends --allow-downgrades \
		"${want[@]}" >/dev/null
fi

# bindgen-cli: Debian's is older than the kernel's minimum (0.65.1).
BINDGEN_BIN=${CARGO_HOME:-$HOME/.cargo}/bin/bindgen
if ! { [ -x "$BINDGEN_BIN" ] && "$BINDGEN_BIN" --version 2>/dev/null | grep -q " $BINDGEN_VERSION\$"; }; then
	log "installing bindgen-cli $BINDGEN_VERSION (cargo, a few minutes)"
	command -v cargo >/dev/null || { log "cargo not found: install rustup's toolchain first"; exit 1; }
	# bindgen links libclang at run time; point it at clang 19's.
	cargo install -q bindgen-cli --version "$BINDGEN_VERSION" --locked >&2
fi

# The static target for guest programs comes with the rustup toolchain; check it.
if command -v rustup >/dev/null && ! rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-gnu; then
	log "adding rust target x86_64-unknown-linux-gnu"
	rustup target add x86_64-unknown-linux-gnu >&2
fi
exit 0
