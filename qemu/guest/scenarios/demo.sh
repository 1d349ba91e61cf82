# The README's main job: load rbfs, format the test disk from a small tree
# with mkfs.rbfs, mount it read-write, list and read it, write real data
# (files, a directory tree, a rename, a deletion), unmount, check it with
# fsck.rbfs, mount it again and read everything back, unload.
# shellcheck shell=sh
TESTS="load mkfs mount_and_list write_data fsck_and_reread unload"

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
}

test_write_data() {
	mkdir -p /mnt/data/logs
	rbfs-pattern write /mnt/data/blob 8M --seed 7
	cp /usr/bin/rbfs-pattern /mnt/data/copy-of-rbfs-pattern
	i=0
	while [ $i -lt 20 ]; do
		echo "line $i of the log" >> /mnt/data/logs/app.log
		i=$((i + 1))
	done
	mv /mnt/README /mnt/data/README.moved
	rm /mnt/lib.sh
	sync
	ls -lR /mnt
	df -k /mnt
	sha256sum /mnt/data/blob /mnt/data/copy-of-rbfs-pattern | tee /tmp/demo.sums
	umount /mnt
}

test_fsck_and_reread() {
	fsck.rbfs -n "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" /mnt
	sha256sum /mnt/data/blob /mnt/data/copy-of-rbfs-pattern > /tmp/demo.sums2
	cmp /tmp/demo.sums /tmp/demo.sums2 || fail "checksums changed across the remount"
	rbfs-pattern verify /mnt/data/blob 8M --seed 7
	expect_eq "log lines" "$(wc -l < /mnt/data/logs/app.log)" 20
	expect_eq "moved README" "$(cat /mnt/data/README.moved)" "Hello from rbfs."
	[ ! -e /mnt/lib.sh ] || fail "deleted symlink is back"
	umount /mnt
	fsck.rbfs -n "$TEST_DISK"
}

test_unload() {
	rmmod rbfs
	module_loaded && fail "rbfs still loaded"
	dmesg | grep 'rbfs .* unloaded'
}
