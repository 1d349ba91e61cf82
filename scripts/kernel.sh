#!/usr/bin/env bash
# Build the guest kernel (debug or lean) in a cache outside the clone.
#
#   scripts/kernel.sh debug|lean      build, print nothing but progress on stderr
#   scripts/kernel.sh --print-dir debug|lean   print the build directory only
#
# Layout of the cache ($RBFS_CACHE, default ${XDG_CACHE_HOME:-~/.cache}/rbfs):
#   linux-<debian version>/src         the Debian source with the rust/ overlay applied
#   linux-<debian version>/rust.orig   pristine rust/ of that source (overlay base)
#   linux-<debian version>/build-<cfg> O= build directory, one per config
#
# Incremental by construction: the overlay is synced into src/rust by content
# (rsync --checksum), .config is regenerated only when the fragments change,
# and make is not run at all when neither the overlay nor the config changed.
set -euo pipefail
. "$(dirname "$0")/env.sh"

print_dir=0
if [ "${1:-}" = --print-dir ]; then print_dir=1; shift; fi
cfg=${1:?usage: kernel.sh [--print-dir] debug|lean}
case "$cfg" in debug|lean) ;; *) echo "kernel.sh: unknown config '$cfg'" >&2; exit 2;; esac

kdir=$(kernel_cache_dir)
src=$kdir/src
build=$kdir/build-$cfg
if [ $print_dir = 1 ]; then echo "$build"; exit 0; fi

log() { echo "kernel: $*" >&2; }

# 1. Unpack the pristine source once.
if [ ! -f "$src/Makefile" ]; then
	log "unpacking $KERNEL_TARBALL into $kdir"
	rm -rf "$kdir.tmp"
	mkdir -p "$kdir.tmp"
	tar -xJf "$KERNEL_TARBALL" -C "$kdir.tmp"
	mkdir -p "$kdir"
	rm -rf "$src" "$kdir/rust.orig"
	cp -a "$kdir.tmp/linux-source-6.12/rust" "$kdir/rust.orig"
	mv "$kdir.tmp/linux-source-6.12" "$src"
	rm -rf "$kdir.tmp"
fi

# 2. Apply the overlay: pristine rust/ + the project's patches + its new files,
#    staged, then synced into the tree by content so unchanged files keep
#    their mtimes and kbuild rebuilds only what changed.
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -a "$kdir/rust.orig" "$stage/rust"
for p in "$RBFS_ROOT"/rust/*.patch; do
	[ -e "$p" ] || continue
	patch -s -p1 -d "$stage" --no-backup-if-mismatch < "$p" || {
		log "overlay patch $(basename "$p") does not apply to $KERNEL_VERSION"; exit 1; }
done
(cd "$RBFS_ROOT/rust" && find . -type f ! -name '*.patch' ! -name '*.md' -print0) |
	(cd "$RBFS_ROOT/rust" && xargs -0 -r cp --parents -t "$stage/rust")
rsync -rc --delete "$stage/rust/" "$src/rust/"
overlay_hash=$(cd "$stage" && find rust -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)

# 3. Configure when the fragments changed.
frags=("$RBFS_ROOT/qemu/config/base.config" "$RBFS_ROOT/qemu/config/$cfg.config")
config_hash=$( { echo "$KERNEL_VERSION"; cat "${frags[@]}"; } | sha256sum | cut -c1-16)
mkdir -p "$build"
if [ "$(cat "$build/.rbfs-config" 2>/dev/null)" != "$config_hash" ]; then
	log "configuring $cfg kernel in $build"
	kmake "$build" tinyconfig >/dev/null
	"$src/scripts/kconfig/merge_config.sh" -m -O "$build" "$build/.config" "${frags[@]}" >/dev/null
	kmake "$build" olddefconfig >/dev/null
	# merge_config only warns; a missed option must stop the build.
	bad=0
	while IFS= read -r line; do
		case "$line" in
		CONFIG_*=*) want=$line; name=${line%%=*} ;;
		"# CONFIG_"*" is not set") name=${line#\# }; name=${name%% *}; want=$line ;;
		*) continue ;;
		esac
		got=$(grep -E "^($name=|# $name is not set)" "$build/.config" || true)
		if [ "$got" != "$want" ] && ! { [ -z "$got" ] && [ "$want" = "# $name is not set" ]; }; then
			log "config: wanted '$want', got '${got:-<absent>}'"; bad=1
		fi
	done < <(cat "${frags[@]}")
	[ $bad = 0 ] || { log "config fragments did not apply (see above)"; exit 1; }
	echo "$config_hash" > "$build/.rbfs-config"
	rm -f "$build/.rbfs-built"
fi

# 4. Build, unless nothing changed since the last complete build.
stamp="$config_hash $overlay_hash"
if [ "$(cat "$build/.rbfs-built" 2>/dev/null)" = "$stamp" ] && [ -f "$build/arch/x86/boot/bzImage" ]; then
	exit 0
fi
log "building $cfg kernel $KERNEL_VERSION (cold: ~15 min on 2 cores; incremental after)"
start=$(date +%s)
if ! kmake "$build" -j"$(nproc)" bzImage modules > "$build/.rbfs-build.log" 2>&1; then
	tail -40 "$build/.rbfs-build.log" >&2
	log "build failed; full log: $build/.rbfs-build.log"
	exit 1
fi
echo "$stamp" > "$build/.rbfs-built"
log "built in $(( $(date +%s) - start )) s"
