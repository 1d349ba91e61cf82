# Namespace and metadata of the read-write filesystem, at 1 KiB and 4 KiB
# blocks: create and write, directories, many entries, unlink (also of an
# open file, and its eviction waiting for a thaw), holes (SEEK_DATA,
# SEEK_HOLE, FIEMAP), hard and symbolic links, rename, truncate, attributes,
# special files, running out of blocks and out of inodes.  Every test
# starts from a fresh mkfs and mount, checks exact results (stat, ls, cat,
# exit statuses and error messages, statfs counts), reads back after
# dropping the page cache and after a remount, and ends with an unmount
# and a clean fsck.rbfs -n.
#
# The filesystem-specific steps are the functions fresh, remount, finish,
# drop_caches and on_rbfs (and test_load/test_unload): a host can redefine
# them after sourcing this file and run the test bodies on another
# filesystem mounted on $M.  Checks of rbfs's own layout (st_blocks of
# indirect blocks, directory sizes, no reserved blocks, the inode count
# mkfs was asked for) are guarded by on_rbfs.
#
# RENAME_NOREPLACE and RENAME_EXCHANGE go through rbfs-io rename
# (renameat2), since busybox mv -n checks in userspace and cannot exchange.
# Not covered: the kernel's EISDIR for a file renamed over a directory (busybox
# mv -T refuses that itself, without calling rename).
# shellcheck shell=sh
TESTS="load
create_1k create_4k dirs_1k dirs_4k many_1k many_4k unlink_1k unlink_4k
freeze_1k freeze_4k sparse_map_1k sparse_map_4k flags_1k flags_4k trim_1k trim_4k
handles_1k handles_4k
link_1k link_4k symlink_1k symlink_4k rename_1k rename_4k rename2_1k rename2_4k
truncate_1k truncate_4k attrs_1k attrs_4k special_1k special_4k
enospc_1k enospc_4k inodes_1k inodes_4k
unload"
M=/mnt
ERR=/tmp/meta.err

test_load() {
	insmod "$RBFS_KO"
	grep -qw rbfs /proc/filesystems || fail "rbfs not in /proc/filesystems"
}

test_unload() {
	# A test that failed half-way may have left its mount behind (and has
	# been reported already).
	if grep -q " $M " /proc/mounts; then umount $M; fi
	if grep -q ' rbfs ' /proc/mounts; then fail "rbfs still mounted"; fi
	rmmod rbfs
	if module_loaded; then fail "rbfs still loaded"; fi
	if grep -qw rbfs /proc/filesystems; then fail "rbfs still in /proc/filesystems"; fi
}

# --- The filesystem-specific part ---------------------------------------

# fresh BS [SIZE [INODES]]: a new filesystem with BS-byte blocks, SIZE
# (as mkfs.rbfs's blocks-count; 64 MiB by default) and INODES inodes (by
# default mkfs's choice) on the test disk, mounted read-write on $M.
fresh() {
	# A failed test may have left its mount behind; do not let that
	# cascade into the next one.
	if grep -q " $M " /proc/mounts; then umount $M; fi
	BS=$1
	mkfs.rbfs -q -f -b "$1" ${3:+-N "$3"} "$TEST_DISK" "${2:-64M}"
	mount -t rbfs "$TEST_DISK" $M
	grep -q "^$TEST_DISK $M rbfs rw" /proc/mounts || fail "not mounted read-write: $(grep " $M " /proc/mounts)"
}

# remount: unmount, check the image, mount again: everything read after
# this comes from the disk.
remount() {
	umount $M
	fsck_clean "$TEST_DISK"
	mount -t rbfs "$TEST_DISK" $M
}

# finish: the end of every test: unmount and check the image.
finish() {
	umount $M
	fsck_clean "$TEST_DISK"
}

# drop_caches: write everything back and drop the page cache, dentries
# and unused inodes, so what is read next comes from the disk (inodes in
# use, such as those of open files, stay).
drop_caches() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

# on_rbfs: the filesystem under test is rbfs (checks of its own layout).
on_rbfs() {
	return 0
}

# --- Helpers --------------------------------------------------------------

# fsfree: statfs's free blocks, blocks available and free inodes, after a
# sync.
fsfree() {
	sync
	stat -f -c '%f %a %d' $M
}

# counts: FREE_B, AVAIL_B, FREE_I from fsfree.
counts() {
	set -- $(fsfree)
	FREE_B=$1 AVAIL_B=$2 FREE_I=$3
}

# must_fail MESSAGE COMMAND...: COMMAND fails and says MESSAGE (strerror).
must_fail() {
	_msg=$1
	shift
	if "$@" > "$ERR" 2>&1; then fail "'$*' succeeded"; fi
	grep -q "$_msg" "$ERR" || { cat "$ERR"; fail "'$*' did not fail with '$_msg'"; }
}

# zeros FILE FROM LEN: FILE has LEN bytes from offset FROM to its end, all
# zero.
zeros() {
	expect_eq "bytes from $2 of $1" "$(tail -c +$(($2 + 1)) "$1" | wc -c)" "$3"
	expect_eq "non-zero bytes from $2 of $1" "$(tail -c +$(($2 + 1)) "$1" | tr -d '\000' | wc -c)" 0
}

# map_blocks SIZE: st_blocks (512-byte units) of a dense SIZE-byte file on
# rbfs with $BS-byte blocks: data blocks and the indirect blocks mapping
# them (12 direct pointers, BS/4 - 1 per indirect block).
map_blocks() {
	_n=$((($1 + BS - 1) / BS))
	_p=$((BS / 4 - 1))
	_t=$_n
	if [ $_n -gt 12 ]; then
		_t=$((_t + 1))
		_r=$((_n - 12 - _p))
		if [ $_r -gt 0 ]; then
			[ $_r -le $((_p * _p)) ] || fail "map_blocks: $1 bytes reach the triple-indirect tree"
			_t=$((_t + 1 + (_r + _p - 1) / _p))
		fi
	fi
	echo $((_t * BS / 512))
}

# dense FILE SIZE: FILE is SIZE bytes, with all of its blocks allocated
# (exactly its data and indirect blocks on rbfs).
dense() {
	expect_eq "size of $1" "$(stat -c %s "$1")" "$2"
	_b=$(stat -c %b "$1")
	if on_rbfs; then
		expect_eq "st_blocks of $1 ($2 bytes)" "$_b" "$(map_blocks "$2")"
	elif [ $((_b * 512)) -lt "$2" ]; then
		fail "st_blocks of $1: $_b for $2 bytes"
	fi
}

# blocks_of PATH...: the filesystem blocks the PATHs use, from st_blocks.
blocks_of() {
	stat -c %b "$@" | {
		_s=0
		while read -r _b; do _s=$((_s + _b)); done
		echo $((_s * 512 / BS))
	}
}

# name N: a name of N characters.
name() {
	printf "%0${1}d" 0
}

# --- create and write -----------------------------------------------------

# Small files by the shell, pattern files of sizes around the block size
# and crossing into the single- and double-indirect trees (at 1 KiB blocks
# 12 KiB and 267 KiB, at 4 KiB 48 KiB and 4140 KiB), read back from the
# cache, after drop_caches and after a remount; statfs goes down by
# exactly what the files use and back once they are gone.
check_create() {
	fresh "$1"
	base=$(fsfree)
	counts
	b0=$FREE_B i0=$FREE_I
	mkdir $M/d
	echo hello > $M/d/echo
	echo world >> $M/d/echo
	printf 'a\tb\n' > $M/d/printf
	printf '' > $M/d/empty
	sizes="0 1 $((BS - 1)) $BS $((BS + 1)) 102400 5242880"
	n=0
	for s in $sizes; do
		n=$((n + 1))
		rbfs-pattern write $M/d/p$n "$s" --seed $n
	done
	cp $M/d/p6 $M/d/copy
	verify_create
	# Eleven files and a directory; the blocks are what they use.
	counts
	expect_eq "free inodes after creating" "$FREE_I" $((i0 - 12))
	expect_eq "blocks used" $((b0 - FREE_B)) "$(blocks_of $M/d $M/d/*)"
	if on_rbfs; then expect_eq "blocks available" "$AVAIL_B" "$FREE_B"; fi
	used=$(fsfree)
	drop_caches
	verify_create
	remount
	verify_create
	expect_eq "statfs after a remount" "$(fsfree)" "$used"
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_create() {
	expect_eq "ls" "$(ls $M/d | tr '\n' ' ')" "copy echo empty p1 p2 p3 p4 p5 p6 p7 printf "
	expect_eq "size of echo" "$(stat -c %s $M/d/echo)" 12
	expect_eq "echo" "$(cat $M/d/echo)" "hello
world"
	expect_eq "size of printf" "$(stat -c %s $M/d/printf)" 4
	expect_eq "printf" "$(cat $M/d/printf)" "$(printf 'a\tb')"
	expect_eq "empty" "$(stat -c '%F %s %b %h' $M/d/empty)" "regular empty file 0 0 1"
	n=0
	for s in $sizes; do
		n=$((n + 1))
		dense $M/d/p$n "$s"
		rbfs-pattern verify $M/d/p$n "$s" --seed $n
	done
	cmp $M/d/p6 $M/d/copy
	expect_eq "type" "$(stat -c '%F %h' $M/d/p7)" "regular file 1"
}

test_create_1k() { check_create 1024; }
test_create_4k() { check_create 4096; }

# --- directories ----------------------------------------------------------

# Nested directories: link counts (2 + subdirectories), rmdir of a
# non-empty directory refused, of an empty one done, ".." of a directory
# moved to another parent.
check_dirs() {
	fresh "$1"
	base=$(fsfree)
	root_links=$(stat -c %h $M)
	mkdir $M/a
	mkdir -p $M/a/b/c
	mkdir $M/a/x $M/a/y
	echo f > $M/a/b/file
	expect_eq "links of a" "$(stat -c %h $M/a)" 5
	expect_eq "links of a/b" "$(stat -c %h $M/a/b)" 3
	expect_eq "a/b/c" "$(stat -c '%F %h' $M/a/b/c)" "directory 2"
	if on_rbfs; then expect_eq "size of an empty directory" "$(stat -c '%s %b' $M/a/b/c)" "$BS $((BS / 512))"; fi
	expect_eq "ls -a a" "$(ls -a $M/a | tr '\n' ' ')" ". .. b x y "
	expect_eq "ls -a a/b/c" "$(ls -a $M/a/b/c | tr '\n' ' ')" ". .. "
	expect_eq "a/b/c/.." "$(stat -c %i $M/a/b/c/..)" "$(stat -c %i $M/a/b)"
	must_fail "Directory not empty" rmdir $M/a/b
	must_fail "Not a directory" rmdir $M/a/b/file
	must_fail "File exists" mkdir $M/a/x
	must_fail "File exists" mkdir $M/a/b/file
	must_fail "No such file or directory" rmdir $M/a/nothing
	must_fail "No such file or directory" mkdir $M/a/nothing/sub
	[ -d $M/a/b/c ] || fail "a/b/c went away"
	rmdir $M/a/b/c
	expect_eq "links of a/b without c" "$(stat -c %h $M/a/b)" 2
	[ ! -e $M/a/b/c ] || fail "a/b/c still there"
	rm $M/a/b/file
	rmdir $M/a/b
	expect_eq "links of a without b" "$(stat -c %h $M/a)" 4
	# Moves: a/x into p, a/y to the root.
	mkdir $M/p
	mv $M/a/x $M/p/
	mv $M/a/y $M/y
	mkdir -p $M/p/x/1/2/3/4/5/6/7/8
	echo deep > $M/p/x/1/2/3/4/5/6/7/8/f
	verify_dirs
	drop_caches
	verify_dirs
	remount
	verify_dirs
	rm -r $M/a $M/p $M/y
	expect_eq "links of the root at the end" "$(stat -c %h $M)" "$root_links"
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_dirs() {
	expect_eq "links of the root" "$(stat -c %h $M)" $((root_links + 3))
	expect_eq "links of a" "$(stat -c %h $M/a)" 2
	expect_eq "links of p" "$(stat -c %h $M/p)" 3
	expect_eq "links of p/x" "$(stat -c %h $M/p/x)" 3
	expect_eq "links of y" "$(stat -c %h $M/y)" 2
	expect_eq "ls -a a" "$(ls -a $M/a | tr '\n' ' ')" ". .. "
	expect_eq "ls p" "$(ls $M/p)" x
	expect_eq "p/x/.. is p" "$(stat -c %i $M/p/x/..)" "$(stat -c %i $M/p)"
	expect_eq "y/.. is the root" "$(stat -c %i $M/y/..)" "$(stat -c %i $M)"
	expect_eq "cd p/x/.." "$(cd $M/p/x/.. && ls)" x
	expect_eq "deep" "$(cat $M/p/x/1/2/3/4/5/6/7/8/f)" deep
	expect_eq "deep .." "$(stat -c %i $M/p/x/1/2/3/4/5/6/7/8/..)" "$(stat -c %i $M/p/x/1/2/3/4/5/6/7)"
}

test_dirs_1k() { check_dirs 1024; }
test_dirs_4k() { check_dirs 4096; }

# --- many entries ---------------------------------------------------------

# 300 entries in one directory (five blocks at 1 KiB), every second one
# removed, the gaps filled again without the directory growing; names of
# 255 bytes accepted, 256 refused.
check_many() {
	fresh "$1"
	base=$(fsfree)
	mkdir $M/m
	i=0
	while [ $i -lt 300 ]; do
		echo $i > $M/m/file-$i
		i=$((i + 1))
	done
	expect_eq "entries" "$(ls $M/m | wc -l)" 300
	size=$(stat -c %s $M/m)
	echo "directory of 300 entries: $size bytes"
	if [ "$BS" = 1024 ] && [ "$size" -lt 4096 ]; then fail "300 entries in $size bytes"; fi
	if on_rbfs; then
		expect_eq "directory size in blocks" $((size % BS)) 0
		expect_eq "st_blocks of the directory" "$(stat -c %b $M/m)" $((size / 512))
	fi
	i=0
	while [ $i -lt 300 ]; do echo file-$i; i=$((i + 1)); done | sort > /tmp/meta.want
	ls $M/m > /tmp/meta.got
	cmp /tmp/meta.want /tmp/meta.got || fail "ls of 300 entries differs"
	# Every second one goes.
	even=
	i=0
	while [ $i -lt 300 ]; do even="$even $M/m/file-$i"; i=$((i + 2)); done
	rm $even
	verify_many 150
	drop_caches
	verify_many 150
	remount
	verify_many 150
	# Refilling the gaps needs no new block.
	i=0
	while [ $i -lt 300 ]; do echo $i > $M/m/file-$i; i=$((i + 2)); done
	expect_eq "directory size after refilling" "$(stat -c %s $M/m)" "$size"
	expect_eq "entries after refilling" "$(ls $M/m | wc -l)" 300
	# Names of 255 bytes and more.
	l255=$(name 255)
	l256=$(name 256)
	mkdir $M/n
	echo long > "$M/n/$l255"
	mkdir "$M/m/$l255"
	ln -s "$l255" "$M/m/$l255/$l255"
	must_fail "File name too long" touch "$M/n/$l256"
	must_fail "File name too long" mkdir "$M/n/$l256"
	must_fail "File name too long" ln -s x "$M/n/$l256"
	must_fail "File name too long" mv "$M/n/$l255" "$M/n/$l256"
	must_fail "File name too long" stat "$M/n/$l256"
	remount
	verify_many 300
	expect_eq "ls n" "$(ls $M/n)" "$l255"
	expect_eq "the long name" "$(cat "$M/n/$l255")" long
	expect_eq "the long symlink" "$(readlink "$M/m/$l255/$l255")" "$l255"
	rm -r $M/m $M/n
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

# verify_many N: 300 - N even-numbered files are gone, the odd ones read
# back their number.
verify_many() {
	i=0
	while [ $i -lt 300 ]; do
		if [ $((i % 2)) = 1 ] || [ "$1" = 300 ]; then
			read -r v < $M/m/file-$i
			expect_eq "file-$i" "$v" $i
		elif [ -e $M/m/file-$i ]; then
			fail "file-$i still there"
		fi
		i=$((i + 1))
	done
	[ "$1" = 300 ] || expect_eq "entries" "$(ls $M/m | wc -l)" "$1"
}

test_many_1k() { check_many 1024; }
test_many_4k() { check_many 4096; }

# --- unlink ---------------------------------------------------------------

# A name removed, the other names of the inode keep it with one link
# fewer; a file unlinked while open stays readable through the open file
# and its blocks and inode are freed at the last close.
check_unlink() {
	fresh "$1"
	base=$(fsfree)
	mkdir $M/d
	echo a > $M/d/f
	ln $M/d/f $M/d/g
	ln $M/d/f $M/d/h
	expect_eq "links" "$(stat -c %h $M/d/f)" 3
	rm $M/d/f
	[ ! -e $M/d/f ] || fail "f still there"
	expect_eq "links after rm" "$(stat -c %h $M/d/g)" 2
	unlink $M/d/h
	expect_eq "links after unlink" "$(stat -c %h $M/d/g)" 1
	expect_eq "ls" "$(ls $M/d)" g
	expect_eq "g" "$(cat $M/d/g)" a
	must_fail "No such file or directory" rm $M/d/f
	must_fail "No such file or directory" unlink $M/d/f
	must_fail "Is a directory" unlink $M/d
	# Unlinked while open.
	before=$(fsfree)
	rbfs-pattern write $M/d/big 1M --seed 5
	written=$(fsfree)
	exec 3< $M/d/big
	rm $M/d/big
	[ ! -e $M/d/big ] || fail "big still there"
	expect_eq "ls after unlinking an open file" "$(ls $M/d)" g
	expect_eq "statfs while the unlinked file is open" "$(fsfree)" "$written"
	drop_caches
	expect_eq "bytes read from the unlinked file" "$(cat <&3 | wc -c)" 1048576
	rbfs-pattern verify /proc/self/fd/3 1M --seed 5
	exec 3<&-
	expect_eq "statfs after the last close" "$(fsfree)" "$before"
	remount
	expect_eq "ls after a remount" "$(ls $M/d)" g
	expect_eq "statfs after a remount" "$(fsfree)" "$before"
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

test_unlink_1k() { check_unlink 1024; }
test_unlink_4k() { check_unlink 4096; }

# --- freeze -------------------------------------------------------------

# fsfreeze (FIFREEZE/FITHAW).  A frozen filesystem's image is consistent
# and marked clean, as a snapshot of the device would see it, unless a
# deleted file is still open.  The last close of such a file frees its
# blocks and inode: a change the filesystem makes of its own accord, which
# must wait for the thaw (sb_start_intwrite in evict_inode, as ext2)
# instead of changing the frozen filesystem.
# marked_dirty: fsck.rbfs -n reports the test disk's image as in use
# (state dirty), whatever else it finds.
marked_dirty() {
	fsck.rbfs -n "$TEST_DISK" > /tmp/fsck.out 2>&1 || true
	grep -q "state is dirty" /tmp/fsck.out
}

check_freeze() {
	fresh "$1"
	before=$(fsfree)
	rbfs-pattern write $M/kept 300K --seed 7
	fsfreeze --freeze $M
	fsck_clean "$TEST_DISK" > /dev/null
	if grep -q "state is dirty" /tmp/fsck.out; then
		fsfreeze --unfreeze $M
		fail "the frozen image is not marked clean"
	fi
	fsfreeze --unfreeze $M
	rbfs-pattern verify $M/kept 300K --seed 7
	marked_dirty || fail "not marked in use again after the thaw"
	rm $M/kept
	rbfs-pattern write $M/big 1M --seed 6
	written=$(fsfree)
	sleep 1000 < $M/big > /dev/null 2>&1 &
	holder=$!
	rm $M/big
	fsfreeze --freeze $M || { kill $holder; fail "fsfreeze failed"; }
	marked_dirty || {
		fsfreeze --unfreeze $M
		kill $holder
		fail "frozen with a deleted file open, but marked clean"
	}
	kill $holder
	# The holder's exit drops the last reference and evicts the inode:
	# that must block (uninterruptibly) until the thaw.
	sleep 2
	frozen_free=$(stat -f -c '%f %a %d' $M)
	state=$(sed 's/.*) //' /proc/$holder/stat | cut -d' ' -f1)
	fsfreeze --unfreeze $M
	wait $holder || true
	expect_eq "statfs of the frozen filesystem after the last close" "$frozen_free" "$written"
	expect_eq "state of the last closer while frozen" "$state" D
	expect_eq "statfs after the thaw" "$(fsfree)" "$before"
	finish
}

test_freeze_1k() { check_freeze 1024; }
test_freeze_4k() { check_freeze 4096; }

# --- holes: SEEK_DATA, SEEK_HOLE and FIEMAP -------------------------------

# sparse_layout B G: the data segments of the file check_sparse_map writes
# (blocks 0, 5 to 7 and 40, and one block at byte G), as rbfs-io map prints
# them.
sparse_layout() {
	printf 'data %d %d\n' 0 "$1" $((5 * $1)) $((8 * $1)) $((40 * $1)) $((41 * $1)) "$2" $(($2 + $1))
}

# check_map FILE WANT WHEN: SEEK_DATA/SEEK_HOLE (with probes from inside
# every segment and hole) and FIEMAP's extents both give the segments WANT.
check_map() {
	rbfs-io map "$1" "$BS" > /tmp/map.out || { cat /tmp/map.out; fail "rbfs-io map $1 ($3)"; }
	expect_eq "SEEK_DATA/SEEK_HOLE segments $3" "$(grep '^data' /tmp/map.out)" "$2"
	expect_eq "FIEMAP coverage $3" "$(sed -n 's/^covered/data/p' /tmp/map.out)" "$2"
}

# A file with data in direct blocks, in the single-indirect tree and at
# 64 GiB (the triple- or quadruple-indirect tree), holes between: found by
# both interfaces while the new blocks are pending (pointers not yet on
# the disk), after writeback, after a remount, and after a truncate.  The
# hole of about 64 GiB takes a few steps (a missing indirect block is one
# hole), not one per block: the test would run for hours otherwise.
check_sparse_map() {
	fresh "$1"
	f=$M/sparse
	G=$((64 << 30))
	rbfs-pattern write $f "$BS" --seed 3
	rbfs-pattern write $f $((3 * BS)) --seed 3 --offset $((5 * BS))
	rbfs-pattern write $f "$BS" --seed 3 --offset $((40 * BS))
	rbfs-pattern write $f "$BS" --seed 3 --offset $G
	want=$(sparse_layout "$BS" $G)
	check_map $f "$want" "before writeback"
	drop_caches
	check_map $f "$want" "after writeback"
	remount
	check_map $f "$want" "after a remount"
	rbfs-pattern verify $f "$BS" --seed 3 --offset $G
	truncate -s $((41 * BS)) $f
	check_map $f "$(sparse_layout "$BS" $G | head -n 3)" "after a truncate"
	rm $f
	finish
}

test_sparse_map_1k() { check_sparse_map 1024; }
test_sparse_map_4k() { check_sparse_map 4096; }

# --- inode flags (chattr) -------------------------------------------------

# attr_is FILE WANT: rbfs-io attr's flags and statx attributes of FILE.
attr_is() {
	expect_eq "attribute flags of $1" "$(rbfs-io attr "$1" | sed 's/^attr: [^ ]* //')" "$2"
}

# FS_IOC_GETFLAGS/SETFLAGS and statx attributes (rbfs-io attr, as chattr
# and lsattr would): immutable and append-only files and directories
# refuse what the VFS refuses for them, a write through a descriptor opened
# before the file became immutable is refused too (EPERM, as ext4), no
# dump and no atime are inherited by new entries (append-only and
# immutable are not), noatime keeps the access time, flags rbfs does not
# keep are refused (EOPNOTSUPP), and all of it survives a remount.  The
# first flag turns on the inode-flags feature of the image (once).
check_flags() {
	fresh "$1"
	echo data > $M/f
	echo more > $M/g
	mkdir $M/d
	attr_is $M/f "flags=- statx=- mask=iad"
	must_fail "Operation not supported" rbfs-io attr $M/f +S
	attr_is $M/f "flags=- statx=- mask=iad"
	exec 3>> $M/g
	feature_msg="$(basename "$TEST_DISK"): read-only-compatible feature 0x1 enabled"
	seen=$(dmesg | grep -c "$feature_msg" || true)
	rbfs-io attr $M/f +i > /dev/null
	rbfs-io attr $M/g +i > /dev/null
	if on_rbfs; then
		expect_eq "feature messages" "$(dmesg | grep -c "$feature_msg")" $((seen + 1))
	fi
	attr_is $M/f "flags=i statx=i mask=iad"
	must_fail "Operation not permitted" sh -c "echo x >> $M/f"
	must_fail "Operation not permitted" sh -c "echo x >&3"
	must_fail "Operation not permitted" rm -f $M/f
	must_fail "Operation not permitted" mv -f $M/f $M/f2
	must_fail "Operation not permitted" ln $M/f $M/f3
	must_fail "Operation not permitted" chmod 600 $M/f
	must_fail "Operation not permitted" truncate -s 0 $M/f
	exec 3>&-
	expect_eq "immutable file" "$(cat $M/f $M/g)" "data
more"
	# Append only: appends, nothing else.
	rbfs-io attr $M/f -i +a > /dev/null
	attr_is $M/f "flags=a statx=a mask=iad"
	echo again >> $M/f
	must_fail "Operation not permitted" sh -c "echo x > $M/f"
	must_fail "Operation not permitted" rm -f $M/f
	must_fail "Operation not permitted" truncate -s 1 $M/f
	# Directories: no new entries in an immutable one, no removals from an
	# append-only one.
	touch $M/d/old
	rbfs-io attr $M/d +i > /dev/null
	must_fail "Operation not permitted" touch $M/d/new
	must_fail "Operation not permitted" rm -f $M/d/old
	rbfs-io attr $M/d -i +a > /dev/null
	touch $M/d/new
	must_fail "Operation not permitted" rm -f $M/d/new
	# Inheritance: d and A, not a or i.
	rbfs-io attr $M/d +dA > /dev/null
	touch $M/d/child
	mkdir $M/d/sub
	attr_is $M/d "flags=adA statx=ad mask=iad"
	attr_is $M/d/child "flags=dA statx=d mask=iad"
	attr_is $M/d/sub "flags=dA statx=d mask=iad"
	# No atime: an access time older than the modification time stays (a
	# file without the flag gets a new one on read, relatime).
	echo n > $M/n
	echo o > $M/o
	touch -a -d '2001-01-01 00:00:00' $M/n $M/o
	rbfs-io attr $M/n +A > /dev/null
	cat $M/n $M/o > /dev/null
	expect_eq "atime of the noatime file after a read" "$(stat -c %X $M/n)" 978307200
	[ "$(stat -c %X $M/o)" != 978307200 ] || fail "atime of a file without noatime did not change on read"
	verify_flags
	drop_caches
	verify_flags
	remount
	verify_flags
	rbfs-io attr $M/f -a > /dev/null
	rbfs-io attr $M/g -i > /dev/null
	rbfs-io attr $M/d -a > /dev/null
	rm -r $M/f $M/g $M/d
	attr_is $M/n "flags=A statx=- mask=iad"
	finish
}

verify_flags() {
	attr_is $M/f "flags=a statx=a mask=iad"
	attr_is $M/g "flags=i statx=i mask=iad"
	attr_is $M/d "flags=adA statx=ad mask=iad"
	attr_is $M/d/sub "flags=dA statx=d mask=iad"
	expect_eq "contents of the append-only file" "$(cat $M/f)" "data
again"
	expect_eq "entries of the append-only directory" "$(ls $M/d | tr '\n' ' ')" "child new old sub "
}

test_flags_1k() { check_flags 1024; }
test_flags_4k() { check_flags 4096; }

# --- FITRIM (fstrim) -----------------------------------------------------

# nonzero_bytes START END: non-zero bytes of the test disk in [START, END),
# both multiples of the block size.
nonzero_bytes() {
	dd if="$TEST_DISK" bs="$BS" skip=$(($1 / BS)) count=$((($2 - $1) / BS)) 2> /dev/null |
		tr -d '\000' | wc -c
}

# fstrim discards exactly the free blocks (the guest's disks discard at
# 512 bytes or finer, so every free run counts), the blocks of a deleted
# file read as zeroes on the device afterwards (the disks punch holes in
# their image files; QEMU drops the part of a discard outside its 64 KiB
# alignment, so the whole 64 KiB pieces of the file's extents are what is
# checked), the data of the files still there is intact, and a range that
# starts past the end is refused.
check_trim() {
	fresh "$1"
	gran=$(cat /sys/block/$(basename "$TEST_DISK")/queue/discard_granularity)
	[ "$gran" -gt 0 ] && [ "$gran" -le "$BS" ] || fail "discard granularity $gran of $TEST_DISK (want 1 to $BS)"
	rbfs-pattern write $M/gone 2M --seed 4
	rbfs-pattern write $M/kept 1M --seed 5
	sync
	rbfs-io map $M/gone "$BS" | grep '^physical' > /tmp/gone.map
	[ -s /tmp/gone.map ] || fail "no blocks mapped for $M/gone"
	while read -r _ s e; do
		[ "$(nonzero_bytes "$s" "$e")" -gt 0 ] || fail "deleted file's blocks $s to $e were zero before the trim"
	done < /tmp/gone.map
	rm $M/gone
	sync
	free=$(stat -f -c %f $M)
	expect_eq "fstrim -v" "$(fstrim -v $M)" "$M: $((free * BS)) bytes trimmed"
	# Read the device, not what its page cache kept from before.
	echo 3 > /proc/sys/vm/drop_caches
	checked=0
	while read -r _ s e; do
		c0=$(((s + 65535) / 65536 * 65536))
		c1=$((e / 65536 * 65536))
		[ "$c1" -gt "$c0" ] || continue
		expect_eq "non-zero bytes in the deleted file's blocks $c0 to $c1 after the trim" "$(nonzero_bytes "$c0" "$c1")" 0
		checked=$((checked + c1 - c0))
	done < /tmp/gone.map
	[ "$checked" -ge $((1 << 20)) ] || fail "only $checked bytes of the deleted file checked"
	must_fail "Invalid argument" fstrim -o $((1 << 40)) $M
	expect_eq "fstrim of the first 64 KiB (metadata only)" "$(fstrim -v -l 65536 $M)" "$M: 0 bytes trimmed"
	drop_caches
	rbfs-pattern verify $M/kept 1M --seed 5
	remount
	rbfs-pattern verify $M/kept 1M --seed 5
	# An image not unmounted cleanly may have a block in use marked free:
	# no trim until fsck.rbfs has run.
	umount $M
	id=$(rbfs-corrupt list "$TEST_DISK" | cut -f1 | grep 'state\.dirty$')
	rbfs-corrupt apply "$TEST_DISK" "$id" > /dev/null
	mount -t rbfs "$TEST_DISK" $M
	must_fail "Structure needs cleaning" fstrim $M
	umount $M
	fsck.rbfs -y "$TEST_DISK" > /dev/null || [ $? -eq 1 ]
	mount -t rbfs "$TEST_DISK" $M
	fstrim $M
	rbfs-pattern verify $M/kept 1M --seed 5
	finish
}

test_trim_1k() { check_trim 1024; }
test_trim_4k() { check_trim 4096; }

# --- file handles (export operations) ------------------------------------

# handle_size HANDLE: the size of the file that the saved handle opens.
handle_size() {
	rbfs-io handle open $M "$1" | sed 's/.* size=//'
}

# name_to_handle_at and open_by_handle_at, as an NFS server uses them: a
# handle opens its file after the inode left the cache and after a
# remount; a directory opened by a handle is reconnected to its path
# (through "..": export_parent); the handle of a deleted file is stale,
# also once its inode number belongs to a new file (a new generation).
check_handles() {
	fresh "$1"
	mkdir -p $M/d/sub
	echo hello > $M/d/sub/f
	rbfs-io handle save $M/d/sub/f /tmp/h.f > /dev/null
	rbfs-io handle save $M/d/sub /tmp/h.sub > /dev/null
	drop_caches
	expect_eq "size of the file opened by its handle" "$(handle_size /tmp/h.f)" 6
	drop_caches
	expect_eq "directory opened by its handle" "$(rbfs-io handle open $M /tmp/h.sub)" "handle: opened $M/d/sub size=$BS"
	remount
	expect_eq "directory opened by its handle after a remount" "$(rbfs-io handle open $M /tmp/h.sub)" "handle: opened $M/d/sub size=$BS"
	expect_eq "size of the file opened by its handle after a remount" "$(handle_size /tmp/h.f)" 6
	ino=$(stat -c %i $M/d/sub/f)
	rm $M/d/sub/f
	must_fail "Stale file handle" rbfs-io handle open $M /tmp/h.f
	# The lowest free inode number is taken first: the new file gets the
	# deleted one's number.
	echo again > $M/d/sub/g
	expect_eq "inode number of the new file" "$(stat -c %i $M/d/sub/g)" "$ino"
	must_fail "Stale file handle" rbfs-io handle open $M /tmp/h.f
	drop_caches
	must_fail "Stale file handle" rbfs-io handle open $M /tmp/h.f
	rm -r $M/d
	drop_caches
	must_fail "Stale file handle" rbfs-io handle open $M /tmp/h.sub
	finish
}

test_handles_1k() { check_handles 1024; }
test_handles_4k() { check_handles 4096; }

# --- hard links -----------------------------------------------------------

check_link() {
	fresh "$1"
	base=$(fsfree)
	mkdir -p $M/d/sub
	echo shared > $M/d/a
	ln $M/d/a $M/d/b
	link $M/d/a $M/d/sub/c
	echo more >> $M/d/b
	must_fail "Operation not permitted" ln $M/d/sub $M/d/sublink
	must_fail "File exists" ln $M/d/a $M/d/b
	must_fail "No such file or directory" ln $M/d/nothing $M/d/x
	verify_link
	drop_caches
	verify_link
	remount
	verify_link
	rm $M/d/a
	expect_eq "links after removing a" "$(stat -c %h $M/d/b)" 2
	rm $M/d/sub/c
	expect_eq "b after removing a and c" "$(stat -c '%h %s' $M/d/b)" "1 12"
	expect_eq "b" "$(cat $M/d/b)" "shared
more"
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_link() {
	ino=$(stat -c %i $M/d/a)
	for f in a b sub/c; do
		expect_eq "inode and links of $f" "$(stat -c '%i %h %s' $M/d/$f)" "$ino 3 12"
		expect_eq "content of $f" "$(cat $M/d/$f)" "shared
more"
	done
	expect_eq "links of sub" "$(stat -c %h $M/d/sub)" 2
	[ ! -e $M/d/sublink ] || fail "sublink exists"
}

test_link_1k() { check_link 1024; }
test_link_4k() { check_link 4096; }

# --- symbolic links -------------------------------------------------------

# Fast (at most 60 bytes, in the inode) and slow (in a block) symlinks,
# the longest (block size - 1) and one too long, relative, absolute,
# dangling and to a directory.
check_symlink() {
	fresh "$1"
	base=$(fsfree)
	mkdir $M/d
	echo target > $M/d/file
	n60=$(name 60)
	n61=$(name 61)
	echo sixty > $M/d/$n60
	echo sixty-one > $M/d/$n61
	# A 200-byte target: a 188-byte directory name and "/target-file".
	n188=$(name 188)
	mkdir $M/d/$n188
	echo long > $M/d/$n188/target-file
	max=$(name $((BS - 1)))
	ln -s file $M/d/short
	ln -s $n60 $M/d/l60
	ln -s $n61 $M/d/l61
	ln -s $n188/target-file $M/d/l200
	ln -s "$max" $M/d/max
	ln -s $M/d/file $M/d/abs
	ln -s nothing $M/d/dangling
	ln -s $n188 $M/d/dirlink
	must_fail "File name too long" ln -s "$(name "$BS")" $M/d/toolong
	must_fail "File exists" ln -s file $M/d/short
	verify_symlink
	drop_caches
	verify_symlink
	remount
	verify_symlink
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_symlink() {
	expect_eq "short" "$(stat -c '%F %s' $M/d/short)" "symbolic link 4"
	expect_eq "readlink short" "$(readlink $M/d/short)" file
	expect_eq "cat short" "$(cat $M/d/short)" target
	expect_eq "readlink l60" "$(readlink $M/d/l60)" "$n60"
	expect_eq "cat l60" "$(cat $M/d/l60)" sixty
	expect_eq "readlink l61" "$(readlink $M/d/l61)" "$n61"
	expect_eq "cat l61" "$(cat $M/d/l61)" sixty-one
	expect_eq "size of l200" "$(stat -c %s $M/d/l200)" 200
	expect_eq "readlink l200" "$(readlink $M/d/l200)" "$n188/target-file"
	expect_eq "cat l200" "$(cat $M/d/l200)" long
	expect_eq "size of max" "$(stat -c %s $M/d/max)" $((BS - 1))
	expect_eq "readlink max" "$(readlink $M/d/max)" "$max"
	expect_eq "readlink abs" "$(readlink $M/d/abs)" "$M/d/file"
	expect_eq "cat abs" "$(cat $M/d/abs)" target
	expect_eq "readlink dangling" "$(readlink $M/d/dangling)" nothing
	must_fail "No such file or directory" cat $M/d/dangling
	expect_eq "ls dirlink/" "$(ls $M/d/dirlink/)" target-file
	expect_eq "stat -L dirlink" "$(stat -L -c %F $M/d/dirlink)" directory
	[ ! -e $M/d/toolong ] && [ ! -L $M/d/toolong ] || fail "toolong exists"
	if on_rbfs; then
		# Fast symlinks take no block, the others one.
		expect_eq "st_blocks of short l60 l61 l200 max" \
			"$(stat -c %b $M/d/short $M/d/l60 $M/d/l61 $M/d/l200 $M/d/max | tr '\n' ' ')" \
			"0 0 $((BS / 512)) $((BS / 512)) $((BS / 512)) "
	fi
}

test_symlink_1k() { check_symlink 1024; }
test_symlink_4k() { check_symlink 4096; }

# --- rename ---------------------------------------------------------------

check_rename() {
	fresh "$1"
	base=$(fsfree)
	mkdir -p $M/d/x $M/d/y
	echo one > $M/d/a
	ino=$(stat -c %i $M/d/a)
	# Within a directory, then across.
	mv $M/d/a $M/d/b
	[ ! -e $M/d/a ] || fail "a still there"
	expect_eq "b" "$(stat -c '%i %h' $M/d/b) $(cat $M/d/b)" "$ino 1 one"
	mv $M/d/b $M/d/x/b
	l255=$(name 255)
	mv $M/d/x/b "$M/d/y/$l255"
	mv "$M/d/y/$l255" $M/d/x/b
	# Over an existing file: the victim's blocks and inode are freed.
	echo new > $M/d/x/src
	before=$(fsfree)
	rbfs-pattern write $M/d/x/victim 1M --seed 3
	mv $M/d/x/src $M/d/x/victim
	expect_eq "statfs after renaming over a file" "$(fsfree)" "$before"
	# Over a name with another link: the other name keeps the old file.
	echo old > $M/d/y/t
	ln $M/d/y/t $M/d/y/t2
	echo nn > $M/d/y/s
	mv $M/d/y/s $M/d/y/t
	# A directory over an empty directory in another parent.
	mkdir $M/d/x/sub $M/d/y/empty
	echo f > $M/d/x/sub/f
	expect_eq "links of x with sub" "$(stat -c %h $M/d/x)" 3
	expect_eq "links of y with empty" "$(stat -c %h $M/d/y)" 3
	sub_ino=$(stat -c %i $M/d/x/sub)
	mv -T $M/d/x/sub $M/d/y/empty
	# Refused: a directory over a non-empty one, over a file, into its
	# own subdirectory.
	mkdir $M/d/x/m
	must_fail "Directory not empty" mv -T $M/d/x/m $M/d/y/empty
	must_fail "Not a directory" mv -T $M/d/x/m $M/d/y/t
	must_fail "Invalid argument" mv $M/d/y $M/d/y/empty/
	must_fail "Invalid argument" mv -T $M/d/y $M/d/y/empty/inside
	must_fail "No such file or directory" mv $M/d/nothing $M/d/x/
	# RENAME_NOREPLACE and RENAME_EXCHANGE: not reachable with busybox mv
	# (-n checks in userspace); a separate program tests them.
	verify_rename
	drop_caches
	verify_rename
	remount
	verify_rename
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_rename() {
	expect_eq "ls d" "$(ls $M/d | tr '\n' ' ')" "x y "
	expect_eq "ls x" "$(ls $M/d/x | tr '\n' ' ')" "b m victim "
	expect_eq "ls y" "$(ls $M/d/y | tr '\n' ' ')" "empty t t2 "
	expect_eq "x/b" "$(stat -c '%i %h' $M/d/x/b) $(cat $M/d/x/b)" "$ino 1 one"
	expect_eq "victim" "$(stat -c '%h %s' $M/d/x/victim) $(cat $M/d/x/victim)" "1 4 new"
	expect_eq "t" "$(stat -c %h $M/d/y/t) $(cat $M/d/y/t)" "1 nn"
	expect_eq "t2" "$(stat -c %h $M/d/y/t2) $(cat $M/d/y/t2)" "1 old"
	expect_eq "links of x" "$(stat -c %h $M/d/x)" 3
	expect_eq "links of y" "$(stat -c %h $M/d/y)" 3
	expect_eq "empty is sub" "$(stat -c '%i %h' $M/d/y/empty)" "$sub_ino 2"
	expect_eq "empty/.. is y" "$(stat -c %i $M/d/y/empty/..)" "$(stat -c %i $M/d/y)"
	expect_eq "ls empty" "$(ls $M/d/y/empty)" f
	expect_eq "empty/f" "$(cat $M/d/y/empty/f)" f
	expect_eq "m" "$(stat -c '%F %h' $M/d/x/m)" "directory 2"
}

test_rename_1k() { check_rename 1024; }
test_rename_4k() { check_rename 4096; }

# --- truncate -------------------------------------------------------------

# Down into the middle of a block (the cut block's tail must be zeroed in
# the cache and on the disk, so extending again reads zeros), up (sparse),
# to 0, writes past the end and into holes, and a 5 MiB file cut back to
# 1 MiB and to 0, freeing its data and indirect blocks.
check_truncate() {
	fresh "$1"
	base=$(fsfree)
	mkdir $M/d
	F=$M/d/t
	cut=$((BS + 100))
	rbfs-pattern write $F $((4 * BS)) --seed 1
	sync
	truncate -s $cut $F
	dense $F $cut
	rbfs-pattern verify $F $cut --seed 1
	truncate -s $((4 * BS)) $F
	verify_cut
	drop_caches
	verify_cut
	# A write past the end leaves a hole; a write into a hole fills it.
	rbfs-pattern write $F 10 --offset $((10 * BS + 5)) --seed 2
	rbfs-pattern write $F 100 --offset $((3 * BS)) --seed 3
	verify_past_end
	# Up: sparse.
	truncate -s 100M $M/d/sparse
	rbfs-pattern write $M/d/sparse 5000 --offset 50M --seed 4
	verify_sparse
	# To 0, by truncate and by O_TRUNC.
	echo abc > $M/d/z
	truncate -s 0 $M/d/z
	echo abc > $M/d/o
	: > $M/d/o
	expect_eq "z and o" "$(stat -c '%s %b' $M/d/z $M/d/o | tr '\n' ' ')" "0 0 0 0 "
	# A 5 MiB file cut back to 1 MiB, extended again, cut to 0.
	: > $M/d/big
	counts
	b0=$FREE_B
	before=$(fsfree)
	rbfs-pattern write $M/d/big 5M --seed 5
	truncate -s 1M $M/d/big
	dense $M/d/big 1048576
	counts
	expect_eq "free blocks after cutting 5 MiB to 1 MiB" "$FREE_B" $((b0 - $(blocks_of $M/d/big)))
	truncate -s 5M $M/d/big
	verify_big
	drop_caches
	verify_big
	remount
	verify_past_end
	verify_sparse
	verify_big
	truncate -s 0 $M/d/big
	expect_eq "big" "$(stat -c '%s %b' $M/d/big)" "0 0"
	expect_eq "statfs after cutting 5 MiB to 0" "$(fsfree)" "$before"
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_cut() {
	expect_eq "size after extending" "$(stat -c %s $F)" $((4 * BS))
	rbfs-pattern verify $F $cut --seed 1
	zeros $F $cut $((3 * BS - 100))
	if on_rbfs; then expect_eq "st_blocks after extending" "$(stat -c %b $F)" $((2 * BS / 512)); fi
}

verify_past_end() {
	expect_eq "size after writing past the end" "$(stat -c %s $F)" $((10 * BS + 15))
	rbfs-pattern verify $F $cut --seed 1
	expect_eq "hole after the cut" "$(head -c $((3 * BS)) $F | tail -c +$((cut + 1)) | tr -d '\000' | wc -c)" 0
	rbfs-pattern verify $F 100 --offset $((3 * BS)) --seed 3
	expect_eq "hole before the end" "$(head -c $((10 * BS + 5)) $F | tail -c +$((3 * BS + 101)) | tr -d '\000' | wc -c)" 0
	rbfs-pattern verify $F 10 --offset $((10 * BS + 5)) --seed 2
	if on_rbfs; then expect_eq "st_blocks with holes" "$(stat -c %b $F)" $((4 * BS / 512)); fi
}

verify_sparse() {
	expect_eq "size of sparse" "$(stat -c %s $M/d/sparse)" 104857600
	rbfs-pattern verify $M/d/sparse 5000 --offset 50M --seed 4
	expect_eq "a hole of sparse" "$(dd if=$M/d/sparse bs=4096 skip=12345 count=2 2>/dev/null | tr -d '\000' | wc -c)" 0
	expect_eq "the end of sparse" "$(tail -c 100000 $M/d/sparse | tr -d '\000' | wc -c)" 0
	b=$(stat -c %b $M/d/sparse)
	if on_rbfs; then
		# The data blocks, a double-indirect and an indirect block.
		expect_eq "st_blocks of sparse" "$b" $(((5000 + BS - 1) / BS * BS / 512 + 2 * BS / 512))
	elif [ $((b * 512)) -gt 65536 ]; then
		fail "sparse file of 5000 bytes of data uses $b sectors"
	fi
}

verify_big() {
	expect_eq "size of big" "$(stat -c %s $M/d/big)" 5242880
	rbfs-pattern verify $M/d/big 1M --seed 5
	zeros $M/d/big 1048576 4194304
	if on_rbfs; then expect_eq "st_blocks of big" "$(stat -c %b $M/d/big)" "$(map_blocks 1048576)"; fi
}

test_truncate_1k() { check_truncate 1024; }
test_truncate_4k() { check_truncate 4096; }

# --- attributes -----------------------------------------------------------

# Modes (with the umask, special bits), owners (also above 2^31, also of
# a symlink), modification and access times (before 1970, after 2038)
# survive drop_caches and a remount.
check_attrs() {
	fresh "$1"
	export TZ=UTC
	start=$(date +%s)
	umask 022
	mkdir $M/d
	echo x > $M/d/f
	mkdir $M/d/dd
	ln -s f $M/d/l
	expect_eq "new file and directory" "$(stat -c %a $M/d/f $M/d/dd | tr '\n' ' ')" "644 755 "
	umask 077
	: > $M/d/g
	mkdir $M/d/gd
	expect_eq "new file and directory, umask 077" "$(stat -c %a $M/d/g $M/d/gd | tr '\n' ' ')" "600 700 "
	umask 022
	mkdir -m 0751 $M/d/md
	# chown first: it clears the set-user-ID bit of a file.
	chown 1234:5678 $M/d/f
	chown 3000000000:4000000000 $M/d/dd
	chown -h 42:43 $M/d/l
	chmod 4751 $M/d/f
	chmod 1777 $M/d/dd
	chmod 0 $M/d/g
	chmod 2710 $M/d/gd
	touch -d '2001-02-03 04:05:06' $M/d/f
	touch -d '1960-01-01 00:00:00' $M/d/dd
	touch -m -d '2100-01-01 00:00:00' $M/d/g
	touch -a -d '2002-03-04 05:06:07' $M/d/g
	touch -h -d '2003-04-05 06:07:08' $M/d/l
	verify_attrs
	drop_caches
	verify_attrs
	remount
	verify_attrs
	# Changes after a remount are kept too.
	chmod 600 $M/d/f
	chown 7:8 $M/d/f
	remount
	expect_eq "f changed again" "$(stat -c '%a %u %g %Y' $M/d/f)" "600 7 8 981173106"
	finish
}

verify_attrs() {
	expect_eq "f" "$(stat -c '%a %u %g %Y %s' $M/d/f)" "4751 1234 5678 981173106 2"
	expect_eq "dd" "$(stat -c '%a %u %g %Y' $M/d/dd)" "1777 3000000000 4000000000 -315619200"
	expect_eq "g" "$(stat -c '%a %u %g %Y %X' $M/d/g)" "0 0 0 4102444800 1015218367"
	expect_eq "gd" "$(stat -c '%a %F' $M/d/gd)" "2710 directory"
	expect_eq "md" "$(stat -c %a $M/d/md)" 751
	expect_eq "l" "$(stat -c '%F %u %g %Y' $M/d/l)" "symbolic link 42 43 1049522828"
	expect_eq "l's target" "$(stat -L -c '%u %g' $M/d/l)" "1234 5678"
	c=$(stat -c %Z $M/d/f)
	[ "$c" -ge "$start" ] || fail "ctime of f $c before the test's start $start"
	[ "$c" -le "$(($(date +%s) + 1))" ] || fail "ctime of f $c in the future"
	expect_eq "f" "$(cat $M/d/f)" x
}

test_attrs_1k() { check_attrs 1024; }
test_attrs_4k() { check_attrs 4096; }

# --- special files --------------------------------------------------------

# Character and block devices (with the largest device numbers) and
# FIFOs: type, device numbers and mode survive a remount, and they work.
check_special() {
	fresh "$1"
	base=$(fsfree)
	umask 022
	mkdir $M/d
	mknod $M/d/null c 1 3
	mknod -m 640 $M/d/blk b 7 1
	mknod $M/d/maxdev c 4095 1048575
	mkfifo $M/d/fifo
	mknod -m 600 $M/d/fifo2 p
	verify_special
	drop_caches
	verify_special
	remount
	verify_special
	rm -r $M/d
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

verify_special() {
	expect_eq "null" "$(stat -c '%F %t,%T %a %s %b %h' $M/d/null)" "character special file 1,3 644 0 0 1"
	expect_eq "blk" "$(stat -c '%F %t,%T %a %s %b' $M/d/blk)" "block special file 7,1 640 0 0"
	expect_eq "maxdev" "$(stat -c '%F %t,%T %a' $M/d/maxdev)" "character special file fff,fffff 644"
	expect_eq "fifo" "$(stat -c '%F %t,%T %a %s %b' $M/d/fifo)" "fifo 0,0 644 0 0"
	expect_eq "fifo2" "$(stat -c '%F %a' $M/d/fifo2)" "fifo 600"
	expect_eq "reading null" "$(cat $M/d/null | wc -c)" 0
	echo discarded > $M/d/null
	timeout 10 sh -c "echo through > $M/d/fifo" &
	expect_eq "through the fifo" "$(timeout 10 cat $M/d/fifo)" through
	wait
}

test_special_1k() { check_special 1024; }
test_special_4k() { check_special 4096; }

# --- out of blocks --------------------------------------------------------

# A 4 MiB filesystem filled to the last block: further allocations fail
# with ENOSPC (data, directories, slow symlinks) and what needs no block
# still works (empty files, fast symlinks, FIFOs, overwrites in place);
# the failed writes leave no stale data and no leaked block; deleting
# gives every block back; later writes work.
check_enospc() {
	fresh "$1" 4M
	rbfs-pattern write $M/keep 100K --seed 3
	counts
	if on_rbfs; then expect_eq "blocks available" "$AVAIL_B" "$FREE_B"; fi
	kept=$(fsfree)
	must_fail "No space left on device" dd if=/dev/zero of=$M/fill bs=64k
	# dd stops when a 64 KiB write does not fit; single blocks may be left.
	n=0
	while (echo x > $M/s$n) 2>/dev/null; do
		n=$((n + 1))
		[ $n -lt 100 ] || fail "100 blocks free after dd ran out of space"
	done
	counts
	echo "full: fill $(stat -c %s $M/fill) bytes, $n more blocks, $FREE_B free"
	expect_eq "blocks available when full" "$AVAIL_B" 0
	if on_rbfs; then expect_eq "free blocks when full" "$FREE_B" 0; fi
	expect_eq "size after a failed write" "$(stat -c %s $M/s$n)" 0
	must_fail "No space left on device" sh -c "echo y > $M/more"
	must_fail "No space left on device" mkdir $M/dir
	must_fail "No space left on device" ln -s "$(name 100)" $M/slowlink
	must_fail "No space left on device" rbfs-pattern write $M/keep 1 --offset 200K
	touch $M/empty
	ln -s short $M/fastlink
	mkfifo $M/fifo
	rbfs-pattern write $M/keep 100K --seed 4
	full=$(fsfree)
	verify_full
	drop_caches
	verify_full
	remount
	verify_full
	expect_eq "statfs when full, after a remount" "$(fsfree)" "$full"
	rm $M/fill $M/s* $M/more $M/empty $M/fastlink $M/fifo
	expect_eq "statfs after deleting the fill" "$(fsfree)" "$kept"
	rbfs-pattern write $M/after 1M --seed 6
	mkdir $M/dir
	ln -s "$(name 100)" $M/dir/slowlink
	drop_caches
	rbfs-pattern verify $M/after 1M --seed 6
	remount
	rbfs-pattern verify $M/after 1M --seed 6
	rbfs-pattern verify $M/keep 100K --seed 4
	expect_eq "slowlink" "$(readlink $M/dir/slowlink)" "$(name 100)"
	rm -r $M/after $M/dir
	expect_eq "statfs after deleting the rest" "$(fsfree)" "$kept"
	finish
}

verify_full() {
	rbfs-pattern verify $M/keep 100K --seed 4
	expect_eq "keep" "$(stat -c %s $M/keep)" 102400
	size=$(stat -c %s $M/fill)
	expect_eq "bytes of fill" "$(wc -c < $M/fill)" "$size"
	expect_eq "non-zero bytes in fill" "$(tr -d '\000' < $M/fill | wc -c)" 0
	if on_rbfs; then dense $M/fill "$size"; fi
	if [ $n -gt 0 ]; then expect_eq "s0" "$(cat $M/s0)" x; fi
	expect_eq "more, empty" "$(stat -c %s $M/more $M/empty | tr '\n' ' ')" "0 0 "
	expect_eq "fastlink" "$(readlink $M/fastlink)" short
	[ ! -e $M/dir ] || fail "dir exists"
	[ ! -L $M/slowlink ] || fail "slowlink exists"
}

test_enospc_1k() { check_enospc 1024; }
test_enospc_4k() { check_enospc 4096; }

# --- out of inodes --------------------------------------------------------

# 64 inodes: creating files works until every inode is used, then every
# kind of creation fails with ENOSPC while hard links and renames work;
# a freed inode can be used again.
check_inodes() {
	fresh "$1" 64M 64
	base=$(fsfree)
	counts
	i0=$FREE_I
	if on_rbfs; then
		expect_eq "inodes" "$(stat -f -c '%c %d' $M)" "64 63"
	fi
	n=0
	while touch $M/e$n 2> "$ERR"; do
		n=$((n + 1))
		[ $n -le "$i0" ] || fail "created $n files with $i0 free inodes"
	done
	grep -q "No space left on device" "$ERR" || { cat "$ERR"; fail "touch did not fail with ENOSPC"; }
	expect_eq "files created" $n "$i0"
	counts
	expect_eq "free inodes" "$FREE_I" 0
	must_fail "No space left on device" mkdir $M/dir
	must_fail "No space left on device" ln -s e0 $M/sym
	must_fail "No space left on device" mkfifo $M/fifo
	must_fail "No space left on device" mknod $M/null c 1 3
	must_fail "No space left on device" sh -c "echo x > $M/new"
	ln $M/e0 $M/hard
	mv $M/e1 $M/renamed
	echo data > $M/e2
	remount
	expect_eq "entries" "$(ls $M | grep -c '^e[0-9]')" $((n - 1))
	expect_eq "free inodes after a remount" "$(stat -f -c %d $M)" 0
	rm $M/e0
	expect_eq "free inodes after removing one of two links" "$(stat -f -c %d $M)" 0
	rm $M/hard
	expect_eq "free inodes after removing the last link" "$(stat -f -c %d $M)" 1
	mkdir $M/dir
	must_fail "No space left on device" touch $M/e0
	rmdir $M/dir
	touch $M/e0
	expect_eq "e2" "$(cat $M/e2)" data
	rm $M/e* $M/renamed
	expect_eq "statfs after deleting everything" "$(fsfree)" "$base"
	finish
}

test_inodes_1k() { check_inodes 1024; }
test_inodes_4k() { check_inodes 4096; }

# renameat2: RENAME_NOREPLACE refuses an existing target and leaves both
# alone; RENAME_EXCHANGE swaps two files, and a file with a directory in
# another directory (the directory's ".." and both parents' link counts
# follow); RENAME_WHITEOUT is refused.
check_rename2() {
	fresh "$1"
	echo a > $M/a
	echo b > $M/b
	mkdir $M/d $M/d/sub $M/e
	must_fail "File exists" rbfs-io rename $M/a $M/b --noreplace
	expect_eq "a after refused noreplace" "$(cat $M/a)" a
	expect_eq "b after refused noreplace" "$(cat $M/b)" b
	rbfs-io rename $M/a $M/c --noreplace
	[ ! -e $M/a ] || fail "a still there after rename"
	expect_eq "c" "$(cat $M/c)" a
	rbfs-io rename $M/c $M/b --exchange
	expect_eq "c after exchange" "$(cat $M/c)" b
	expect_eq "b after exchange" "$(cat $M/b)" a
	root=$(stat -c %i $M)
	sub=$(stat -c %i $M/d/sub)
	d=$(stat -c %i $M/d)
	rbfs-io rename $M/b $M/d/sub --exchange
	expect_eq "inode of the moved directory" "$(stat -c %i $M/b)" "$sub"
	expect_eq "its .." "$(stat -c %i $M/b/..)" "$root"
	expect_eq "file moved into d" "$(cat $M/d/sub)" a
	expect_eq "links of the root" "$(stat -c %h $M)" 5
	expect_eq "links of d" "$(stat -c %h $M/d)" 2
	must_fail "Invalid argument" rbfs-io rename $M/c $M/w --whiteout
	must_fail "No such file" rbfs-io rename $M/c $M/nothing --exchange
	remount
	expect_eq "inode of the moved directory after remount" "$(stat -c %i $M/b)" "$sub"
	expect_eq "its .. after remount" "$(stat -c %i $M/b/..)" "$root"
	expect_eq "d after remount" "$(stat -c %i $M/d)" "$d"
	expect_eq "file in d after remount" "$(cat $M/d/sub)" a
	expect_eq "c after remount" "$(cat $M/c)" b
	expect_eq "links of the root after remount" "$(stat -c %h $M)" 5
	finish
}

test_rename2_1k() { check_rename2 1024; }
test_rename2_4k() { check_rename2 4096; }
