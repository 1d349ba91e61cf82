#!/usr/bin/env bash
# Build the tools/ workspace: host programs (rbfs-verdict) normally, guest
# programs as static x86-64 binaries (-C target-feature=+crt-static; naming
# --target keeps build scripts and proc macros dynamic).
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT/tools"
cargo build -q --release --locked -p rbfs-verdict -p rbfs-mkfs -p rbfs-fsck
RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=target/guest \
	cargo build -q --release --locked -p rbfs-guest-tools -p rbfs-durable -p rbfs-corrupt -p rbfs-mkfs -p rbfs-fsck --target x86_64-unknown-linux-gnu
