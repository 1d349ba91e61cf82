# Faults: I/O errors during writeback, failed allocations in the writeback
# path, and the module's life (rmmod while mounted, load/unload cycles).
# shellcheck shell=sh
TESTS="load rmmod_busy load_unload_cycles io_errors alloc_failure unload"
M=/mnt
FI=/sys/kernel/debug/fail_make_request
FS=/sys/kernel/debug/failslab

test_load() {
	insmod "$RBFS_KO"
}

# rmmod of a mounted filesystem's module fails (EBUSY) and changes nothing.
test_rmmod_busy() {
	fresh 1024
	echo data > $M/f
	if rmmod rbfs 2>/tmp/e; then fail "rmmod of a mounted rbfs succeeded"; fi
	cat /tmp/e
	module_loaded || fail "module gone after a refused rmmod"
	expect_eq "file after refused rmmod" "$(cat $M/f)" data
	umount $M
	fsck_clean "$TEST_DISK"
}

# Ten unload/load cycles, with a mount and a write in every other one.
test_load_unload_cycles() {
	i=0
	while [ $i -lt 10 ]; do
		rmmod rbfs
		module_loaded && fail "still loaded after rmmod (cycle $i)"
		insmod "$RBFS_KO"
		if [ $((i % 2)) = 0 ]; then
			mount -t rbfs "$TEST_DISK" $M
			echo "cycle $i" > $M/c$i
			umount $M
		fi
		i=$((i + 1))
	done
	mount -t rbfs "$TEST_DISK" $M
	expect_eq "files written across cycles" "$(cat $M/c0 $M/c8)" "$(printf 'cycle 0\ncycle 8')"
	umount $M
	fsck_clean "$TEST_DISK"
}

# Every write to the disk fails while data writeback runs (sync_file_range:
# data only, so no metadata write meets the fault).  Both files opened
# before the error learn of it at fsync (EIO), once each; no folio stays
# under writeback; the unmount works; the image is consistent (only the
# data of the failed writes is old), and writing works again afterwards.
test_io_errors() {
	[ -d $FI ] || { echo "no fail_make_request"; exit 77; }
	fresh 1024
	rbfs-pattern write $M/f 1M --seed 1
	sync
	old_wb=$(cat /proc/sys/vm/dirty_writeback_centisecs)
	echo 0 > /proc/sys/vm/dirty_writeback_centisecs
	exec 3<$M/f 4<$M/f
	rbfs-pattern write $M/f 256K --seed 2
	echo 0 > $FI/verbose
	echo 100 > $FI/probability
	echo -1 > $FI/times
	echo 0 > $FI/interval
	echo 1 > /sys/block/vda/make-it-fail
	rc=0
	rbfs-syncrange $M/f --wait || rc=$?
	echo 0 > /sys/block/vda/make-it-fail
	echo 0 > $FI/probability
	echo "sync_file_range under the fault: exit $rc"
	no_writeback
	must_fail_io() {
		if rbfs-syncrange --fsync-fd "$1" > /tmp/e 2>&1; then cat /tmp/e; fail "fsync of fd $1 succeeded after failed writeback"; fi
		grep -q 'Input/output error' /tmp/e || { cat /tmp/e; fail "fsync of fd $1: not EIO"; }
	}
	must_fail_io 3
	must_fail_io 4
	# Linux reports a writeback error once per open file: the second fsync
	# of the same descriptor succeeds (nothing new failed).
	rbfs-syncrange --fsync-fd 3
	exec 3<&- 4<&-
	dmesg | grep -E 'rbfs: vda: write error -5 on inode' | tail -n 2
	echo "# rbfs-figure faults_injected $(dmesg | grep -c 'rbfs: vda: write error')"
	echo "$old_wb" > /proc/sys/vm/dirty_writeback_centisecs
	umount $M
	fsck_clean "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" $M
	# What the errors explain: the failed range still holds the old data.
	rbfs-pattern verify $M/f 1M --seed 1
	rbfs-pattern write $M/f 256K --seed 3 --fsync
	umount $M
	mount -t rbfs "$TEST_DISK" $M
	rbfs-pattern verify $M/f 256K --seed 3
	rbfs-pattern verify $M/f 786432 --offset 262144 --seed 1
	umount $M
	fsck_clean "$TEST_DISK"
}

# Background writeback started by this task (sync_file_range) while every
# allocation this task makes without waiting fails (failslab): bios come
# only from the bio set's small reserve, so writeback runs out part-way
# through folios; the rest of each such folio is redirtied (the part-way
# failure path), later writeback writes it, and nothing is lost.
test_alloc_failure() {
	[ -d $FS ] || { echo "no failslab"; exit 77; }
	fresh 1024
	old_wb=$(cat /proc/sys/vm/dirty_writeback_centisecs)
	echo 0 > /proc/sys/vm/dirty_writeback_centisecs
	# Two files written interleaved, so their blocks alternate on the disk
	# and each folio's writeback needs bios of its own.
	i=0
	while [ $i -lt 64 ]; do
		rbfs-pattern write $M/a 8K --offset $((i * 8192)) --seed 61
		rbfs-pattern write $M/b 8K --offset $((i * 8192)) --seed 62
		i=$((i + 1))
	done
	sync
	rbfs-pattern write $M/a 512K --seed 63
	rbfs-pattern write $M/b 512K --seed 64
	before=$(dmesg | grep -c 'no bio available for background writeback' || true)
	echo Y > $FS/task-filter
	echo Y > $FS/ignore-gfp-wait
	echo N > $FS/cache-filter
	echo 0 > $FS/verbose
	echo -1 > $FS/times
	echo 0 > $FS/interval
	echo 0 > $FS/space
	echo 100 > $FS/probability
	(
		echo 1 > /proc/self/make-it-fail
		rbfs-syncrange $M/a
		rbfs-syncrange $M/b
	)
	echo 0 > $FS/probability
	echo N > $FS/task-filter
	after=$(dmesg | grep -c 'no bio available for background writeback' || true)
	echo "part-way failures reported: $((after - before))"
	echo "# rbfs-figure faults_injected $((after - before))"
	[ "$after" -gt "$before" ] || fail "the part-way failure path never ran"
	echo "$old_wb" > /proc/sys/vm/dirty_writeback_centisecs
	sync
	no_writeback
	echo 3 > /proc/sys/vm/drop_caches
	rbfs-pattern verify $M/a 512K --seed 63
	rbfs-pattern verify $M/b 512K --seed 64
	umount $M
	fsck_clean "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" $M
	rbfs-pattern verify $M/a 512K --seed 63
	rbfs-pattern verify $M/b 512K --seed 64
	umount $M
}

test_unload() {
	if grep -q " $M " /proc/mounts; then umount $M; fi
	rmmod rbfs
	module_loaded && fail "still loaded"
	return 0
}
