# The README's main job: load rbfs, format the test disk from a small tree
# with mkfs.rbfs, mount it (read-only in this version), list and read it,
# unmount, unload.
# shellcheck shell=sh
TESTS="load mkfs mount_and_list unload"

test_load() {
	insmod "$RBFS_KO"
	module_loaded || fail "rbfs not in /proc/modules"
	dmesg | grep 'rbfs:'
}

test_mkfs() {
	rm -rf /tmp/demo
	mkdir -p /tmp/demo/docs /tmp/demo/bin
	echo "Hello from rbfs." > /tmp/demo/README
	cp /rbfs/lib.sh /tmp/demo/docs/guest-lib.sh
	cp /usr/bin/rbfs-pattern /tmp/demo/bin/
	ln -s docs/guest-lib.sh /tmp/demo/lib.sh
	mkfs -t rbfs -L demo -d /tmp/demo "$TEST_DISK"
}

test_mount_and_list() {
	mount -t rbfs "$TEST_DISK" /mnt
	grep ' /mnt ' /proc/mounts
	ls -lR /mnt
	cat /mnt/README
	df -k /mnt
	sha256sum /mnt/bin/rbfs-pattern /tmp/demo/bin/rbfs-pattern
	[ "$(sha256sum < /mnt/bin/rbfs-pattern)" = "$(sha256sum < /tmp/demo/bin/rbfs-pattern)" ] || fail "checksums differ"
	umount /mnt
}

test_unload() {
	rmmod rbfs
	module_loaded && fail "rbfs still loaded"
	dmesg | grep 'rbfs .* unloaded'
}
