# The Rust writeback path: file data written through rbfs's own
# writepages/writepage and bio completion, overwriting blocks in place and
# into new blocks, racing background writeback, through O_DSYNC, native AIO
# and io_uring O_DSYNC writes, and shared mmap.  Every check reads the data
# back after dropping the page cache and after a remount, and fsck.rbfs -n
# checks the image after every clean unmount.
# shellcheck shell=sh
TESTS="load overwrite_1k overwrite_4k grow_1k grow_4k remount_ro fsync_vs_background odsync aio_dsync_1k aio_dsync_4k uring_dsync mmap_shared_1k mmap_shared_4k compaction io_error_reaches_fsync unload"
F=/mnt/f
SIZE=4194304

test_load() {
	insmod "$RBFS_KO"
}

# fresh BS: a filesystem with one 4 MiB pattern file (seed 1), mounted rw.
fresh() {
	# A failed test may have left its mount behind; do not let that
	# cascade into the next one.
	if grep -q " /mnt " /proc/mounts; then umount /mnt; fi
	rm -rf /tmp/wsrc
	mkdir -p /tmp/wsrc
	rbfs-pattern write /tmp/wsrc/f $SIZE --seed 1
	mkfs.rbfs -q -f -b "$1" -d /tmp/wsrc "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" /mnt
	grep -q "^$TEST_DISK /mnt rbfs rw" /proc/mounts || fail "not mounted read-write"
}

# The overwrites: sub-block, straddling a block, straddling a page, and a
# 64 KiB aligned run (one bio across 16 folios).
overwrite() {
	rbfs-pattern write $F 200 --offset 100 --seed 2
	rbfs-pattern write $F 100 --offset 1000 --seed 2
	rbfs-pattern write $F 300 --offset 4000 --seed 2
	rbfs-pattern write $F 64K --offset 8192 --seed 2
}

verify_overwrite() {
	rbfs-pattern verify $F 100 --seed 1
	rbfs-pattern verify $F 200 --offset 100 --seed 2
	rbfs-pattern verify $F 700 --offset 300 --seed 1
	rbfs-pattern verify $F 100 --offset 1000 --seed 2
	rbfs-pattern verify $F 2900 --offset 1100 --seed 1
	rbfs-pattern verify $F 300 --offset 4000 --seed 2
	rbfs-pattern verify $F 3892 --offset 4300 --seed 1
	rbfs-pattern verify $F 64K --offset 8192 --seed 2
	rbfs-pattern verify $F $((SIZE - 73728)) --offset 73728 --seed 1
}

# remount_verify CHECK: unmount, fsck, mount read-only and run CHECK.
remount_verify() {
	umount /mnt
	fsck_clean "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" /mnt
	"$1"
	umount /mnt
}

check_overwrite() {
	fresh "$1"
	overwrite
	sync
	no_writeback
	echo 3 > /proc/sys/vm/drop_caches
	verify_overwrite
	remount_verify verify_overwrite
}

test_overwrite_1k() { check_overwrite 1024; }
test_overwrite_4k() { check_overwrite 4096; }

# Growing files: appends into new blocks (sub-block, straddling, whole
# runs), a write far beyond the end leaving a hole, and a new file written
# in odd-sized pieces; all read back after drop_caches and a remount.
grow() {
	rbfs-pattern write $F 5000 --offset $SIZE --seed 4 --bs 999
	rbfs-pattern write $F 100 --offset $((SIZE + 5000)) --seed 4
	rbfs-pattern write $F 64K --offset $((SIZE + 65536)) --seed 4
	rbfs-pattern write /mnt/g 3M --seed 5 --bs 3333
}

verify_grow() {
	rbfs-pattern verify $F 5100 --offset $SIZE --seed 4
	# The gap is a hole: it reads as zeroes.
	expect_eq "hole after growth" "$(dd if=$F bs=1 skip=$((SIZE + 5100)) count=$((65536 - 5100)) 2>/dev/null | tr -d '\0' | wc -c)" 0
	rbfs-pattern verify $F 64K --offset $((SIZE + 65536)) --seed 4
	expect_eq "size after growth" "$(stat -c %s $F)" $((SIZE + 131072))
	rbfs-pattern verify /mnt/g 3M --seed 5
	rbfs-pattern verify $F $SIZE --seed 1
}

check_grow() {
	fresh "$1"
	grow
	sync
	no_writeback
	echo 3 > /proc/sys/vm/drop_caches
	verify_grow
	remount_verify verify_grow
}

test_grow_1k() { check_grow 1024; }
test_grow_4k() { check_grow 4096; }

# remount,ro writes everything back and refuses writes; remount,rw allows
# them again.
test_remount_ro() {
	fresh 1024
	rbfs-pattern write /mnt/r 1M --seed 6
	mount -o remount,ro /mnt
	grep -q "^$TEST_DISK /mnt rbfs ro" /proc/mounts || fail "remount ro failed"
	if touch /mnt/x 2>/tmp/e; then fail "create on a read-only remount succeeded"; fi
	grep -q 'Read-only file system' /tmp/e || { cat /tmp/e; fail "not EROFS"; }
	rbfs-pattern verify /mnt/r 1M --seed 6
	mount -o remount,rw /mnt
	rbfs-pattern write /mnt/r 1M --offset 1M --seed 6
	umount /mnt
	fsck_clean "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" /mnt
	rbfs-pattern verify /mnt/r 2M --seed 6
	umount /mnt
}

# fsync of a file while background writeback (at its shortest intervals)
# handles the same file: a second writer dirties other ranges without
# fsync the whole time.  Nothing may be lost.
test_fsync_vs_background() {
	fresh 1024
	old_expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
	old_wb=$(cat /proc/sys/vm/dirty_writeback_centisecs)
	echo 1 > /proc/sys/vm/dirty_expire_centisecs
	echo 1 > /proc/sys/vm/dirty_writeback_centisecs
	(
		i=0
		while [ $i -lt 40 ]; do
			rbfs-pattern write $F 64K --offset $((2097152 + (i % 8) * 65536)) --seed $((100 + i)) --bs 1500
			i=$((i + 1))
		done
	) &
	bg=$!
	i=0
	while [ $i -lt 40 ]; do
		rbfs-pattern write $F 256K --offset $(( (i % 4) * 262144 )) --seed $((10 + i)) --bs 3000 --fsync
		i=$((i + 1))
	done
	wait $bg
	echo "$old_expire" > /proc/sys/vm/dirty_expire_centisecs
	echo "$old_wb" > /proc/sys/vm/dirty_writeback_centisecs
	sync
	no_writeback
	remount_verify verify_race
}

verify_race() {
	# The last writes of each range win: i = 36..39 (fsync writer),
	# i = 32..39 (background writer).
	for i in 36 37 38 39; do
		rbfs-pattern verify $F 256K --offset $(( (i % 4) * 262144 )) --seed $((10 + i))
	done
	for i in 32 33 34 35 36 37 38 39; do
		rbfs-pattern verify $F 64K --offset $((2097152 + (i % 8) * 65536)) --seed $((100 + i))
	done
	rbfs-pattern verify $F 1M --offset 1048576 --seed 1
}

# O_DSYNC writes return once their data is on the disk: after them, with
# nothing else done, the data must be there after a remount.
test_odsync() {
	fresh 4096
	rbfs-pattern write $F 100000 --offset 12345 --seed 7 --dsync --bs 777
	remount_verify verify_odsync
}

verify_odsync() {
	rbfs-pattern verify $F 100000 --offset 12345 --seed 7
	rbfs-pattern verify $F 12345 --seed 1
}

# Native AIO (io_submit) and io_uring writes on O_DSYNC files complete
# only once their blocks are on the disk: new files, written at queue depth
# 16 into freshly allocated blocks, must be there after a remount with
# nothing else done.  One run per-iocb RWF_DSYNC instead of O_DSYNC.
check_aio_dsync() {
	fresh "$1"
	rbfs-io aio /mnt/a 1M --bs 4096 --qd 16 --seed 21 --dsync --create
	rbfs-io aio /mnt/b 300000 --bs 1500 --qd 4 --seed 22 --dsync --create --offset 777
	rbfs-io aio $F 64K --bs 4096 --qd 16 --seed 23 --rwf-dsync --offset 8192
	remount_verify verify_aio
}

verify_aio() {
	rbfs-pattern verify /mnt/a 1M --seed 21
	rbfs-pattern verify /mnt/b 300000 --seed 22 --offset 777
	rbfs-pattern verify $F 64K --seed 23 --offset 8192
	rbfs-pattern verify $F 8192 --seed 1
}

test_aio_dsync_1k() { check_aio_dsync 1024; }
test_aio_dsync_4k() { check_aio_dsync 4096; }

test_uring_dsync() {
	fresh 1024
	rbfs-io uring /mnt/u 1M --bs 4096 --qd 16 --seed 31 --dsync --create
	rbfs-io uring /mnt/v 100000 --bs 1000 --qd 8 --seed 32 --rwf-dsync --create
	remount_verify verify_uring
}

verify_uring() {
	rbfs-pattern verify /mnt/u 1M --seed 31
	rbfs-pattern verify /mnt/v 100000 --seed 32
}

# Shared writable mmap: into existing blocks, into a hole and past the old
# end (page_mkwrite allocates the blocks), then msync; read back after
# drop_caches and a remount.
check_mmap() {
	fresh "$1"
	rbfs-io mmap $F 10000 --offset 5000 --seed 41
	truncate -s $((SIZE + 1048576)) $F
	rbfs-io mmap $F 100000 --offset $((SIZE + 4096)) --seed 42
	rbfs-io mmap /mnt/m 3000 --offset 70000 --seed 43 --create
	sync
	no_writeback
	echo 3 > /proc/sys/vm/drop_caches
	verify_mmap
	remount_verify verify_mmap
}

verify_mmap() {
	rbfs-pattern verify $F 5000 --seed 1
	rbfs-pattern verify $F 10000 --offset 5000 --seed 41
	rbfs-pattern verify $F $((SIZE - 15000)) --offset 15000 --seed 1
	rbfs-pattern verify $F 100000 --offset $((SIZE + 4096)) --seed 42
	expect_eq "size after mmap" "$(stat -c %s $F)" $((SIZE + 1048576))
	expect_eq "mmap file size" "$(stat -c %s /mnt/m)" 73000
	rbfs-pattern verify /mnt/m 3000 --offset 70000 --seed 43
}

test_mmap_shared_1k() { check_mmap 1024; }
test_mmap_shared_4k() { check_mmap 4096; }

# Memory compaction with dirty page-cache folios of the file: migration
# moves them with their buffers (buffer_migrate_folio); nothing is lost.
test_compaction() {
	fresh 1024
	old_expire=$(cat /proc/sys/vm/dirty_expire_centisecs)
	echo 360000 > /proc/sys/vm/dirty_expire_centisecs
	rbfs-pattern write $F 2M --offset 1M --seed 9
	echo 1 > /proc/sys/vm/compact_memory
	echo "$old_expire" > /proc/sys/vm/dirty_expire_centisecs
	sync
	remount_verify verify_compaction
}

verify_compaction() {
	rbfs-pattern verify $F 2M --offset 1M --seed 9
	rbfs-pattern verify $F 1M --seed 1
}

# A failing write (fault injection on the disk) reaches fsync as EIO, with
# a message naming the device and inode, and the kernel stays healthy.
test_io_error_reaches_fsync() {
	fi=/sys/kernel/debug/fail_make_request
	[ -d $fi ] || { echo "no fail_make_request"; exit 77; }
	fresh 1024
	# Look the file up first: with the disk failing, the lookup's
	# directory read would fail before the write path is reached.
	rbfs-pattern verify $F 4096 --seed 1
	echo 0 > $fi/verbose
	echo 100 > $fi/probability
	echo -1 > $fi/times
	echo 1 > /sys/block/vda/make-it-fail
	rc=0
	rbfs-pattern write $F 8192 --offset 65536 --seed 11 --fsync 2>/tmp/e || rc=$?
	echo 0 > /sys/block/vda/make-it-fail
	echo 0 > $fi/probability
	umount /mnt
	cat /tmp/e
	[ $rc != 0 ] || fail "fsync succeeded although every write failed"
	grep -q 'fsync: Input/output error' /tmp/e || fail "fsync did not report EIO"
	dmesg | grep -q 'rbfs: vda: write error -5 on inode' || fail "no write error message"
	dmesg | grep 'rbfs: vda: write error' | tail -n1
}

test_unload() {
	rmmod rbfs
	module_loaded && fail "rbfs still loaded"
	return 0
}
