# The read path (issue 3): mkfs.rbfs -d with each block size, mount, and
# compare everything a reader sees with the source tree; statfs against
# mkfs's own figures; refusal of bad images; EUCLEAN on corrupt metadata.
# shellcheck shell=sh
TESTS="load make_tree bs512 bs1024 bs2048 bs4096 read_only refuse_zeroed refuse_flipped_sb corrupt_dir device_writes_refused unload"
SRC=/tmp/src

test_load() {
	insmod "$RBFS_KO"
	grep -qw rbfs /proc/filesystems || fail "rbfs not in /proc/filesystems"
}

# A tree with what the format has to get right: nested directories, a
# directory with 300 entries (several blocks at 512 bytes), a 255-byte
# name, a file reaching the triple-indirect tree at 512-byte blocks, sparse
# files, fast and page symlinks, a hard link, special files, odd modes,
# owners and nanosecond timestamps.
test_make_tree() {
	rm -rf $SRC
	mkdir -p $SRC/a/b/c $SRC/many $SRC/empty
	echo hello > $SRC/hello.txt
	printf '' > $SRC/zero-length
	dd if=/dev/urandom of=$SRC/big bs=1024 count=10240 2>/dev/null
	dd if=/dev/urandom of=$SRC/a/b/c/odd bs=1 count=4097 2>/dev/null
	# Sparse: data at 0, in the middle and at the end of 20 MiB.
	echo start > $SRC/sparse
	echo middle | dd of=$SRC/sparse bs=1 seek=7340032 conv=notrunc 2>/dev/null
	echo end | dd of=$SRC/sparse bs=1 seek=20971516 conv=notrunc 2>/dev/null
	truncate -s 1000000 $SRC/hole-only
	i=0
	while [ $i -lt 300 ]; do echo $i > $SRC/many/file-$i; i=$((i + 1)); done
	long=$(printf 'n%.0s' $(seq 1 255))
	echo long > "$SRC/a/$long"
	ln -s hello.txt $SRC/fastlink
	ln -s "a/b/c/$(printf 'y%.0s' $(seq 1 120))" $SRC/pagelink
	ln $SRC/hello.txt $SRC/a/hardlink
	mkfifo $SRC/fifo
	mknod $SRC/a/chr c 1 3
	mknod $SRC/a/blk b 7 1
	chmod 4751 $SRC/a/b/c/odd
	chmod 1777 $SRC/a/b
	chown 1234:5678 $SRC/hello.txt
	touch -d '2001-02-03 04:05:06' $SRC/a/b/c/odd
	echo "$(find $SRC | wc -l) entries, $(du -s $SRC | cut -f1) KiB"
}

# describe DIR: one line per entry with what stat and readlink report,
# and a checksum of every regular file.  Directory sizes and st_blocks
# are filesystem-specific and left out here (st_blocks of sparse files
# is checked separately), and so are access times: reading the source
# (mkfs, this function) changes them.  One stat and one sha256sum for the
# whole tree (a process per entry costs minutes under TCG); the tree's
# names have no white space.
describe() {
	(cd "$1" && find . | LC_ALL=C sort > /tmp/describe.names &&
		find . -type f | LC_ALL=C sort | xargs sha256sum > /tmp/describe.sums &&
		for l in $(find . -type l); do echo "$l $(readlink "$l")"; done > /tmp/describe.links &&
		xargs stat -c '%F|%n|%s|%f|%h|%u|%g|%t:%T|%y' < /tmp/describe.names |
		awk -F'|' '
			FILENAME == "/tmp/describe.sums" { sum[substr($0, 67)] = substr($0, 1, 64); next }
			FILENAME == "/tmp/describe.links" { split($0, a, " "); target[a[1]] = a[2]; next }
			$1 == "directory" { print $2, $1, "mode=" $4, "links=" $5, "uid=" $6, "gid=" $7, "mtime=" $9; next }
			$1 == "symbolic link" { print $2, $1, "size=" $3, "mode=" $4, "links=" $5, "mtime=" $9, "->", target[$2]; next }
			$1 ~ /regular/ { print $2, $1, "size=" $3, "mode=" $4, "links=" $5, "uid=" $6, "gid=" $7, "mtime=" $9, sum[$2]; next }
			{ print $2, $1, "mode=" $4, "rdev=" $8, "links=" $5, "mtime=" $9 }
		' /tmp/describe.sums /tmp/describe.links -)
}

# check_bs BS: format the test disk from the tree with BS-byte blocks and
# compare.
check_bs() {
	bs=$1
	mkfs.rbfs -f -b "$bs" -N 4096 -L "bs$bs" -d $SRC "$TEST_DISK" > /tmp/mkfs.out
	cat /tmp/mkfs.out
	mount -t rbfs "$TEST_DISK" /mnt
	describe $SRC > /tmp/want
	describe /mnt > /tmp/got
	if ! cmp -s /tmp/want /tmp/got; then
		diff /tmp/want /tmp/got | head -n 30
		umount /mnt
		fail "the mounted tree differs from its source (above: - source, + rbfs)"
	fi
	echo "$(wc -l < /tmp/got) entries match"
	# ls -l as a user sees it, minus the per-directory 'total' lines and
	# the directory sizes (the one thing that differs by filesystem).
	(cd $SRC && ls -lnR) | grep -v '^total' | awk '$1 ~ /^d/ { $5 = "-" } { print }' > /tmp/want.ls
	(cd /mnt && ls -lnR) | grep -v '^total' | awk '$1 ~ /^d/ { $5 = "-" } { print }' > /tmp/got.ls
	cmp -s /tmp/want.ls /tmp/got.ls || { diff /tmp/want.ls /tmp/got.ls | head -n 20; umount /mnt; fail "ls -lR differs"; }
	# Sparse files keep their holes.
	blocks=$(stat -c %b /mnt/hole-only)
	expect_eq "st_blocks of a file that is all hole" "$blocks" 0
	sparse_kib=$(( $(stat -c %b /mnt/sparse) / 2 ))
	[ "$sparse_kib" -lt 64 ] || fail "sparse file uses $sparse_kib KiB on rbfs"
	# statfs agrees with what mkfs wrote.
	data=$(sed -n 's/.*data [0-9]*+\([0-9]*\).*/\1/p' /tmp/mkfs.out)
	used=$(sed -n 's/^In use: \([0-9]*\) of \([0-9]*\) blocks, \([0-9]*\) of \([0-9]*\) inodes.*/\1 \2 \3 \4/p' /tmp/mkfs.out)
	set -- $used
	expect_eq "statfs block size" "$(stat -f -c %S /mnt)" "$bs"
	expect_eq "statfs total blocks (data region)" "$(stat -f -c %b /mnt)" "$data"
	expect_eq "statfs free blocks" "$(stat -f -c %f /mnt)" "$(($2 - $1))"
	expect_eq "statfs total inodes" "$(stat -f -c %c /mnt)" "$4"
	expect_eq "statfs free inodes" "$(stat -f -c %d /mnt)" "$(($4 - $3))"
	expect_eq "statfs type" "$(stat -f -c %t /mnt)" "53464252"
	# Read again from the disk, not the page cache.
	echo 3 > /proc/sys/vm/drop_caches
	expect_eq "checksum after drop_caches" "$(sha256sum < /mnt/big)" "$(sha256sum < $SRC/big)"
	umount /mnt
	fsck_clean "$TEST_DISK"
}

test_bs512() { check_bs 512; }
test_bs1024() { check_bs 1024; }
test_bs2048() { check_bs 2048; }
test_bs4096() { check_bs 4096; }

# A read-only mount writes nothing: not even the super block's state, so
# the image is byte for byte what mkfs made.  Remounting read-write and
# back works, and leaves the filesystem clean.
test_read_only() {
	# A 64 MiB filesystem, hashed whole (hashing the 1 GiB device took
	# minutes under TCG).
	mkfs.rbfs -q -f -d $SRC "$TEST_DISK" 64M
	image_sum() { dd if="$TEST_DISK" bs=1M count=64 2>/dev/null | sha256sum; }
	before=$(image_sum)
	mount -t rbfs -o ro "$TEST_DISK" /mnt
	grep -q "^$TEST_DISK /mnt rbfs ro" /proc/mounts || fail "not mounted read-only: $(grep /mnt /proc/mounts)"
	if touch /mnt/new 2>/tmp/err; then umount /mnt; fail "created a file on a read-only mount"; fi
	grep -q 'Read-only file system' /tmp/err || { cat /tmp/err; umount /mnt; fail "touch did not fail with EROFS"; }
	cat /mnt/big > /dev/null
	umount /mnt
	expect_eq "image after a read-only mount" "$(image_sum)" "$before"
	mount -t rbfs -o ro "$TEST_DISK" /mnt
	mount -o remount,rw /mnt
	grep -q "^$TEST_DISK /mnt rbfs rw" /proc/mounts || { umount /mnt; fail "remount rw failed"; }
	echo new > /mnt/new
	mount -o remount,ro /mnt
	grep -q "^$TEST_DISK /mnt rbfs ro" /proc/mounts || { umount /mnt; fail "remount ro failed"; }
	if touch /mnt/new2 2>/dev/null; then umount /mnt; fail "created a file after remount ro"; fi
	expect_eq "file written before remount ro" "$(cat /mnt/new)" "new"
	if mount -t rbfs -o bogus "$SCRATCH_DISK" /scratch 2>/dev/null; then fail "unknown option accepted"; fi
	dmesg | grep -q "Unknown parameter 'bogus'" || fail "no message for the unknown option"
	umount /mnt
}

# mount_fails DEVICE MESSAGE: mounting fails and the kernel says MESSAGE.
mount_fails() {
	if mount -t rbfs "$1" /scratch 2>/dev/null; then
		umount /scratch
		fail "mounted $1"
	fi
	dmesg | grep -q "rbfs: $2" || fail "no 'rbfs: $2' in the kernel log"
	dmesg | grep "rbfs: $2" | tail -n1
}

test_refuse_zeroed() {
	dd if=/dev/zero of="$SCRATCH_DISK" bs=1M count=4 2>/dev/null
	mount_fails "$SCRATCH_DISK" "bad magic number on vdb"
}

test_refuse_flipped_sb() {
	mkfs.rbfs -q -f "$SCRATCH_DISK"
	# Flip one bit of the free-block count (byte 36 of the superblock).
	b=$(dd if="$SCRATCH_DISK" bs=1 skip=36 count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf %o $((b ^ 1)))" | dd of="$SCRATCH_DISK" bs=1 seek=36 conv=notrunc 2>/dev/null
	mount_fails "$SCRATCH_DISK" "bad superblock checksum on vdb"
}

# A flipped byte in the root directory's first block: the mount works (the
# superblock is fine) but reading the directory returns EUCLEAN with a
# message naming the block, and the kernel stays healthy.
test_corrupt_dir() {
	mkfs.rbfs -f -b 1024 -d $SRC/a "$SCRATCH_DISK" > /tmp/mkfs.out
	# The root directory (inode 1, the table's first slot) has its first
	# block in map[0], at byte 96 of the inode.
	itable=$(sed -n 's/.*inode table \([0-9]*\)+.*/\1/p' /tmp/mkfs.out)
	root_block=$(od -An -tu4 -j $((itable * 1024 + 96)) -N 4 "$SCRATCH_DISK" | tr -d ' ')
	echo "root directory block: $root_block"
	off=$((root_block * 1024 + 40))
	b=$(dd if="$SCRATCH_DISK" bs=1 skip=$off count=1 2>/dev/null | od -An -tu1 | tr -d ' ')
	printf "\\$(printf %o $((b ^ 0x20)))" | dd of="$SCRATCH_DISK" bs=1 seek=$off conv=notrunc 2>/dev/null
	mount -t rbfs "$SCRATCH_DISK" /scratch
	# A lookup in the directory must fail.  (busybox ls treats a failing
	# readdir as the end of the directory, so it cannot show the error.)
	if stat /scratch/b > /tmp/stat.out 2>&1; then umount /scratch; fail "lookup in a corrupt directory succeeded"; fi
	cat /tmp/stat.out
	grep -q 'Structure needs cleaning' /tmp/stat.out || { umount /scratch; fail "not EUCLEAN"; }
	dmesg | grep -q 'rbfs: vdb: corrupt metadata: directory 1 block 0' || { umount /scratch; fail "no corruption message"; }
	dmesg | grep 'corrupt metadata' | tail -n1
	umount /scratch
}

# Nobody but rbfs writes a mounted rbfs device (the kernel refuses other
# writers, CONFIG_BLK_DEV_WRITE_MOUNTED=n), and rbfs does not mount a
# device that a writer holds open: what the Rust abstractions' slices over
# the buffer cache rely on.
test_device_writes_refused() {
	mkfs.rbfs -q -f "$SCRATCH_DISK"
	mount -t rbfs "$SCRATCH_DISK" /scratch
	if dd if=/dev/zero of="$SCRATCH_DISK" bs=1024 count=1 seek=100 conv=notrunc 2>/tmp/err; then
		umount /scratch
		fail "wrote to the mounted device"
	fi
	cat /tmp/err
	umount /scratch
	(
		exec 3<>"$SCRATCH_DISK"
		if mount -t rbfs "$SCRATCH_DISK" /scratch 2>/tmp/err; then
			umount /scratch
			exit 1
		fi
		cat /tmp/err
	) || fail "mounted a device that a writer holds open"
	fsck_clean "$SCRATCH_DISK"
}

test_unload() {
	grep -q ' rbfs ' /proc/mounts && fail "rbfs still mounted"
	rmmod rbfs
	module_loaded && fail "rbfs still loaded"
	grep -qw rbfs /proc/filesystems && fail "rbfs still in /proc/filesystems"
	return 0
}
