# The harness proves itself: the module loads and unloads, both disks are
# there, and a 1 KiB-block ext2 (the baseline) works on the test disk.
# shellcheck shell=sh
TESTS="module_load disks_visible ext2_1k module_unload"

test_module_load() {
	insmod "$RBFS_KO"
	module_loaded || fail "rbfs not in /proc/modules after insmod"
	dmesg_has 'rbfs [0-9]+\.[0-9]+\.[0-9]+ loaded' || fail "no version line in the kernel log"
	dmesg | grep 'rbfs .* loaded'
}

test_disks_visible() {
	for d in vda vdb; do
		[ -b /dev/$d ] || fail "/dev/$d is not a block device"
		sectors=$(cat /sys/block/$d/size)
		want=$(sed -n "s/.*rbfs_disk_$d=\([0-9]*\).*/\1/p" /proc/cmdline)
		expect_eq "/dev/$d size in 512-byte sectors" "$sectors" "$((want * 2048))"
		echo "/dev/$d: $((sectors / 2048)) MiB"
	done
}

test_ext2_1k() {
	mke2fs -q -b 1024 "$TEST_DISK" >/dev/null
	mount -t ext2 "$TEST_DISK" /mnt
	bs=$(stat -f -c %S /mnt)
	expect_eq "ext2 block size" "$bs" 1024
	rbfs-pattern write /mnt/data 3000000 --seed 7 --bs 5000 --fsync
	rbfs-pattern verify /mnt/data 3000000 --seed 7
	umount /mnt
	# Read it back from the disk, not the page cache.
	echo 3 > /proc/sys/vm/drop_caches
	mount -t ext2 -o ro "$TEST_DISK" /mnt
	rbfs-pattern verify /mnt/data 3000000 --seed 7
	# A wrong seed must not verify: the checker can fail.
	if rbfs-pattern verify /mnt/data 3000000 --seed 8 2>/dev/null; then
		fail "verification with the wrong seed passed"
	fi
	umount /mnt
}

test_module_unload() {
	module_loaded || fail "rbfs is not loaded"
	rmmod rbfs
	module_loaded && fail "rbfs still in /proc/modules after rmmod"
	dmesg_has 'rbfs [0-9.]+ unloaded' || fail "no unload line in the kernel log"
	dmesg | grep 'rbfs .* unloaded'
}
