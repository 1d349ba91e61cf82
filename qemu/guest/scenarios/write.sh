# The Rust writeback path, first stage of issue 4: with -o experimental_rw,
# file data is written in place (no allocation yet) through rbfs's own
# writepages/writepage and bio completion.  Every check reads the data back
# after dropping the page cache and after a remount, and fsck.rbfs -n
# checks the image after every clean unmount.
# shellcheck shell=sh
TESTS="load overwrite_1k overwrite_4k refusals fsync_vs_background odsync compaction io_error_reaches_fsync unload"
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
	mount -t rbfs -o experimental_rw "$TEST_DISK" /mnt
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

vmstat() {
	sed -n "s/^$1 //p" /proc/vmstat
}

# no_writeback: after sync, no folio is under writeback.  /proc/vmstat
# shows the global counters, which per-CPU deltas reach only past a
# threshold or once a second, and folio_end_writeback clears PG_writeback
# (what sync waits for) just before it decrements NR_WRITEBACK: fold the
# per-CPU deltas (stat_refresh) and allow the decrements a few seconds.  A
# writeback that never ends stays non-zero and fails.
no_writeback() {
	n=0
	while :; do
		echo 1 > /proc/sys/vm/stat_refresh
		v=$(vmstat nr_writeback)
		if [ "$v" = 0 ]; then
			[ $n = 0 ] || echo "nr_writeback reached 0 after $n polls of 0.1 s"
			return 0
		fi
		n=$((n + 1))
		[ $n -lt 50 ] || fail "nr_writeback is $v 5 s after sync"
		sleep 0.1
	done
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

test_refusals() {
	fresh 1024
	if rbfs-pattern write $F 10 --offset $((SIZE - 4)) --seed 3 2>/tmp/e; then fail "a write growing the file succeeded"; fi
	grep -q 'No space left' /tmp/e || { cat /tmp/e; fail "growing write: not ENOSPC"; }
	if touch /mnt/new 2>/dev/null; then fail "create succeeded"; fi
	if chmod 600 $F 2>/tmp/e; then fail "chmod succeeded"; fi
	grep -q 'not supported' /tmp/e || { cat /tmp/e; fail "chmod: not EOPNOTSUPP"; }
	if truncate -s 100 $F 2>/dev/null; then fail "truncate succeeded"; fi
	expect_eq "size after refused changes" "$(stat -c %s $F)" $SIZE
	umount /mnt
	# Without the option a read-write request stays read-only.
	mount -t rbfs "$TEST_DISK" /mnt
	mount -o remount,rw /mnt 2>/dev/null || true
	grep -q "^$TEST_DISK /mnt rbfs ro" /proc/mounts || fail "remount rw without experimental_rw succeeded"
	umount /mnt
	fsck_clean "$TEST_DISK"
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

# Memory compaction with dirty page-cache folios of the file: migration
# without ->migrate_folio writes folios out through ->writepage.
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
