# The README's main job: load rbfs, show it, unload it.
# shellcheck shell=sh
TESTS="load show unload"

test_load() {
	insmod "$RBFS_KO"
	module_loaded || fail "rbfs not in /proc/modules"
}

test_show() {
	echo "kernel: $(uname -r), $(nproc) CPUs"
	grep '^rbfs ' /proc/modules
	dmesg | grep 'rbfs:'
	for d in vda vdb; do
		echo "/dev/$d: $(($(cat /sys/block/$d/size) / 2048)) MiB"
	done
}

test_unload() {
	rmmod rbfs
	module_loaded && fail "rbfs still loaded"
	dmesg | grep 'rbfs .* unloaded'
}
