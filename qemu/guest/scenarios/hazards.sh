# The five writeback hazards of DEVELOPERS.md, each hit hard by a named
# test, and a check that the checker itself can fail.  The normal module
# passes them all; `make mutants` boots this scenario once per mutant
# (samples/rust/rbfs/mutants.rs), each reintroducing one hazard, and shows
# the test for that hazard failing.
#
# Durability is checked on the raw device: rbfs-durable asks where each
# block of what it just wrote lives (FIBMAP) and reads it with O_DIRECT from
# /dev/vda right after fsync/fdatasync/O_DSYNC returned.
# shellcheck shell=sh
TESTS="load checker_can_fail same_page_twice mark_before_submit sync_completion fsync_finds_page no_wait_with_open_bio ordered_pointers nofs_under_reclaim unload"
M=/mnt

test_load() {
	insmod "$RBFS_KO"
	echo "module: $RBFS_KO"
}

# finish: unmount and check the image.
finish() {
	umount $M
	fsck_clean "$TEST_DISK"
}

# fast_writeback / slow_writeback: background writeback every 10 ms for
# anything dirty for 10 ms (the minimum), or the defaults.
fast_writeback() {
	echo 1 > /proc/sys/vm/dirty_expire_centisecs
	echo 1 > /proc/sys/vm/dirty_writeback_centisecs
}
slow_writeback() {
	echo 3000 > /proc/sys/vm/dirty_expire_centisecs
	echo 500 > /proc/sys/vm/dirty_writeback_centisecs
}

# The checker reports data that only sits in the page cache.
test_checker_can_fail() {
	fresh 1024
	slow_writeback
	rc=0
	rbfs-durable $M/f "$TEST_DISK" --mode none --rounds 3 --seed 7 || rc=$?
	expect_eq "rbfs-durable without any sync" "$rc" 1
	finish
}

# Two writebacks of the same page at once: threads keep starting writeback
# of the whole file (sync_file_range) while background writeback runs every
# 10 ms, and each round rewrites part of the file and fsyncs it.  A writer
# that touched a buffer after submitting it would lose a redirtying (or use
# a freed buffer: KASAN).
test_same_page_twice() {
	fresh 1024
	fast_writeback
	rbfs-durable $M/f "$TEST_DISK" --mode fsync --rounds 150 --size 128K --racers 2 --gap-ms 4 --seed 11
	rbfs-durable $M/g "$TEST_DISK" --mode fdatasync --rounds 100 --size 64K --racers 2 --gap-ms 4 --seed 12
	slow_writeback
	finish
}

# Mark every buffer of a folio before submitting any: with 1 KiB blocks a
# folio has four buffers, and each round rewrites several of them.  A
# folio whose writeback ended early and then ended again is a kernel BUG
# (DEBUG_VM), or a folio stuck under writeback (a hang).
test_mark_before_submit() {
	fresh 1024
	slow_writeback
	rbfs-durable $M/f "$TEST_DISK" --mode fsync --rounds 60 --size 256K --seed 21
	finish
}

# O_SYNC/O_DSYNC writes, through write(2) and native AIO, and fsync return
# only once the data is on the disk.
test_sync_completion() {
	fresh 4096
	slow_writeback
	rbfs-durable $M/d "$TEST_DISK" --mode dsync --rounds 60 --size 512K --seed 31
	rbfs-durable $M/a "$TEST_DISK" --mode aio-dsync --rounds 60 --size 512K --seed 32
	rbfs-durable $M/s "$TEST_DISK" --mode fsync --rounds 40 --size 512K --seed 33
	finish
}

# A concurrent fsync always finds a page that background writeback is
# handling: fsyncs race writebacks started by other threads and by the
# flusher (each round waits up to 6 ms between its write and its fsync, so
# that they have started on it); after each fsync the data must be on the
# disk.
test_fsync_finds_page() {
	fresh 4096
	fast_writeback
	rbfs-durable $M/f "$TEST_DISK" --mode fsync --rounds 150 --size 256K --racers 3 --gap-ms 6 --seed 41
	slow_writeback
	finish
}

# Coalescing never waits with an unsubmitted bio: every bio allocation is
# made to fail in the slab (failslab on the bio and bvec caches), so all of
# them come from the bio set's two reserved elements; two writers fsync
# large files at once.  A writer that allocated its next bio before
# submitting the open one waits forever on a pool the other writer holds.
# The files are laid out interleaved, 32 KiB of one then 32 KiB of the
# other, so each fsync needs a new bio every 32 blocks whatever the
# allocator's placement (a file written alone is now contiguous for 4 MiB,
# and the bug would bite only when a bio fills up).
test_no_wait_with_open_bio() {
	fs=/sys/kernel/debug/failslab
	[ -d $fs ] || { echo "no failslab"; exit 77; }
	caches=$(ls -d /sys/kernel/slab/bio-* /sys/kernel/slab/biovec-* 2>/dev/null)
	[ -n "$caches" ] || { echo "no bio slab caches in /sys/kernel/slab"; exit 77; }
	fresh 1024
	slow_writeback
	off=0
	while [ $off -lt 4194304 ]; do
		rbfs-pattern write $M/a 32K --offset $off --seed 51
		rbfs-pattern write $M/b 32K --offset $off --seed 52
		off=$((off + 32768))
	done
	sync
	for c in $caches; do echo 1 > "$c/failslab"; done
	echo Y > $fs/cache-filter
	echo N > $fs/ignore-gfp-wait
	echo 0 > $fs/verbose
	echo 0 > $fs/space
	echo -1 > $fs/times
	echo 0 > $fs/interval
	echo 100 > $fs/probability
	# Rewrite both files and fsync them at once: each fsync coalesces its
	# file into bios of 256 blocks.
	(rbfs-pattern write $M/a 4M --seed 53 --fsync) & wa=$!
	(rbfs-pattern write $M/b 4M --seed 54 --fsync) & wb=$!
	n=0
	while kill -0 $wa 2>/dev/null || kill -0 $wb 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt 600 ]; then
			echo 0 > $fs/probability
			fail "writers still blocked after 60 s with every bio from the reserve pool: a wait with an unsubmitted bio"
		fi
		sleep 0.1
	done
	echo 0 > $fs/probability
	for c in $caches; do echo 0 > "$c/failslab"; done
	wait $wa
	wait $wb
	rbfs-pattern verify $M/a 4M --seed 53
	rbfs-pattern verify $M/b 4M --seed 54
	finish
}

# Ordered data: no block pointer reaches the disk before the data of its
# block.  rbfs-ordered grows a file while a buddy thread keeps fsyncing a
# file in the same inode-table block and the device itself (which writes
# every dirty metadata block: the file's indirect blocks), and reads the
# file's map on the disk all the while, checking every block it points at.
# First with background writeback held off (the data stays in the page
# cache: a pointer published at allocation is on the disk long before its
# data), then with it at its shortest intervals against the throttled disk
# (commits from writeback, data lagging).  1 KiB blocks: direct, single
# and double indirect pointers.
test_ordered_pointers() {
	fresh 1024
	slow_writeback
	rbfs-ordered $M/o "$TEST_DISK" --size 2M --piece 16K --pause-us 2000 --linger-ms 2000 --seed 21
	fast_writeback
	rbfs-ordered $M/p "$TEST_DISK" --size 2M --piece 16K --pause-us 2000 --seed 22
	slow_writeback
	finish
}

# inodes_in_memory: every filesystem's in-memory inodes
# (/proc/sys/fs/inode-state; the slab's own count would include KASAN's
# quarantine of freed objects).
inodes_in_memory() {
	cut -f1 /proc/sys/fs/inode-state
}

# Reclaim evicts inodes (prune_icache_sb), and rbfs's eviction takes the
# inode's map mutex, so an allocation under that mutex that may enter
# filesystem reclaim can wait for itself.  rbfs holds the mutex only inside
# a NOFS scope.  Here memory is short (a tmpfs holds all but about 128 MiB,
# and there is no swap) while 2000 small files are written, and the scratch
# disk is read through the page cache, half during and half after: reclaim runs
# all along, and with vfs_cache_pressure raised (10000 times the default
# weight of dentries and inodes) it evicts rbfs inodes, so
# lockdep learns that reclaim takes the map mutex, and reports any
# __GFP_FS allocation made under it (the mutant alloc_under_map_lock makes
# one).  The test fails if reclaim evicted fewer than 100 rbfs inodes (it
# could not judge), or if lockdep reported anything.
test_nofs_under_reclaim() {
	grep -qE 'debug_locks: +1' /proc/lockdep_stats || fail "lockdep is off: this test cannot judge"
	fresh 1024 512M
	fast_writeback
	old_p=$(cat /proc/sys/vm/vfs_cache_pressure)
	echo 1000000 > /proc/sys/vm/vfs_cache_pressure
	avail=$(awk '/^MemAvailable:/ { print int($2 / 1024) }' /proc/meminfo)
	hog=$((avail - 128))
	mkdir -p /hog
	mount -t tmpfs -o size=${hog}M tmpfs /hog
	dd if=/dev/zero of=/hog/fill bs=1M count=$hog 2>/dev/null || true
	echo "MemAvailable $avail MiB; $hog MiB held in tmpfs"
	dd if="$SCRATCH_DISK" of=/dev/null bs=1M count=512 2>/dev/null &
	reader=$!
	mkdir $M/d
	line=$(printf '%0100d' 0)
	i=0
	while [ $i -lt 2000 ]; do
		printf '%s\n%s\n%s\n%s\n' "$i" "$line" "$line" "$line" > $M/d/f$i
		i=$((i + 1))
	done
	created=$(inodes_in_memory)
	wait $reader
	# Written and their pointers published (a second pass publishes what
	# the first one's completions left pending), so clean: only clean
	# inodes go on the LRU that reclaim evicts from.
	sync
	sync
	dd if="$SCRATCH_DISK" of=/dev/null bs=1M count=512 skip=512 2>/dev/null
	after=$(inodes_in_memory)
	grep -E '^(pgscan_kswapd|pgscan_direct|slabs_scanned) ' /proc/vmstat | tr '\n' ' '
	echo
	echo "inodes in memory (all filesystems): $created after creating 2002 on rbfs, $after after reading the disk again"
	umount /hog
	echo "$old_p" > /proc/sys/vm/vfs_cache_pressure
	slow_writeback
	if dmesg | grep -qE 'possible circular locking dependency|inconsistent lock state|possible irq lock inversion'; then
		dmesg | grep -A12 -E 'possible circular locking dependency|inconsistent lock state|possible irq lock inversion' | head -n 30
		fail "lockdep: a lock dependency on reclaim"
	fi
	grep -qE 'debug_locks: +1' /proc/lockdep_stats || fail "lockdep turned itself off during the test"
	# The root, d and 2000 files: rbfs alone would keep 2002 inodes had
	# none been evicted, so fewer than 1902 in all means at least 100 rbfs
	# inodes went.  One eviction by reclaim is enough for lockdep.
	[ "$after" -le 1902 ] || fail "reclaim evicted too few rbfs inodes to judge (2002 made, $after inodes in memory)"
	# The files are all there, whole.
	i=0
	while [ $i -lt 2000 ]; do
		[ "$(head -n 1 $M/d/f$i)" = "$i" ] || fail "file f$i lost its contents"
		i=$((i + 100))
	done
	finish
}

test_unload() {
	if grep -q " $M " /proc/mounts; then umount $M; fi
	rmmod rbfs
}
