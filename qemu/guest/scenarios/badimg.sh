# Bad images: a small filesystem damaged in every metadata field that
# rbfs-corrupt catalogues (one of each kind of damage, checksums resealed so
# the damage reaches the deeper checks, some left stale), and at random.
# For each image: the mount either fails with a message, or succeeds and
# every access either works or fails cleanly (EUCLEAN, EIO, ...); then
# fsck.rbfs -y either repairs it to an image fsck.rbfs -n finds clean and
# that mounts and reads without errors, or refuses clearly.  No splat, no
# hang (the run's splat detector and time limit judge that).
#
# rbfs_badimg_time=SECONDS on the kernel command line bounds the run
# (default 420); rbfs_badimg_random=N random images (default 40).
# shellcheck shell=sh
TESTS="load corpus unload"
M=/mnt
BASE=/tmp/base.img
IMG=/tmp/img

test_load() {
	insmod "$RBFS_KO"
}

param() {
	for arg in $(cat /proc/cmdline); do
		case "$arg" in "rbfs_$1="*) echo "${arg#rbfs_$1=}"; return ;; esac
	done
	echo "$2"
}

make_base() {
	rm -rf /tmp/tree
	mkdir -p /tmp/tree/dir/sub/deep /tmp/tree/many
	echo hello > /tmp/tree/a
	rbfs-pattern write /tmp/tree/dir/big 40000 --seed 3
	rbfs-pattern write /tmp/tree/dir/sub/deep/f 3000 --seed 4
	ln /tmp/tree/a /tmp/tree/dir/hard
	ln -s a /tmp/tree/short
	ln -s "$(printf 'target%.0s' $(seq 1 20))" /tmp/tree/long
	mkfifo /tmp/tree/fifo
	mknod /tmp/tree/null c 1 3
	i=0
	while [ $i -lt 40 ]; do echo $i > /tmp/tree/many/file-with-a-long-name-$i; i=$((i + 1)); done
	truncate -s 4M $BASE
	mkfs.rbfs -q -f -b 1024 -d /tmp/tree $BASE
}

# walk: read everything reachable; errors are allowed, not crashes.
walk() {
	find $M > /tmp/walk.list 2>/dev/null || true
	while read -r f; do
		stat "$f" > /dev/null 2>&1 || true
		if [ -f "$f" ] && [ ! -p "$f" ]; then cat "$f" > /dev/null 2>&1 || true; fi
		if [ -L "$f" ]; then readlink "$f" > /dev/null 2>&1 || true; fi
	done < /tmp/walk.list
	ls -laR $M > /dev/null 2>&1 || true
}

# strict_walk: after a repair, everything reads without an error.
strict_walk() {
	find $M > /tmp/walk.list || return 1
	while read -r f; do
		stat "$f" > /dev/null || return 1
		if [ -f "$f" ] && [ ! -p "$f" ]; then cat "$f" > /dev/null || return 1; fi
	done < /tmp/walk.list
}

test_corpus() {
	make_base
	limit=$(param badimg_time 420)
	nrand=$(param badimg_random 40)
	rbfs-corrupt corpus $BASE --per-kind 1 --random "$nrand" --seed 7 > /tmp/corpus
	echo "corpus: $(wc -l < /tmp/corpus) damaged images"
	start=$(date +%s)
	tried=0 refused_mount=0 mounted=0 repaired=0 fsck_refused=0 bad=0
	while read -r line; do
		[ $(( $(date +%s) - start )) -lt "$limit" ] || { echo "time limit reached"; break; }
		tried=$((tried + 1))
		cp $BASE $IMG
		# shellcheck disable=SC2086
		rbfs-corrupt do $IMG $line > /tmp/do.out 2>&1 || { cat /tmp/do.out; fail "rbfs-corrupt do $line failed"; }
		dd if=$IMG of="$TEST_DISK" bs=1M conv=fsync 2>/dev/null
		dmesg -c > /dev/null
		if mount -t rbfs "$TEST_DISK" $M 2>/dev/null; then
			mounted=$((mounted + 1))
			walk
			umount $M || { bad=$((bad + 1)); echo "$line: unmount failed"; continue; }
		else
			refused_mount=$((refused_mount + 1))
			dmesg | grep -q 'rbfs' || { bad=$((bad + 1)); echo "$line: mount refused without a message"; }
		fi
		rc=0
		fsck.rbfs -y "$TEST_DISK" > /tmp/fsck.out 2>&1 || rc=$?
		case $rc in
		0 | 1 | 2)
			repaired=$((repaired + 1))
			if ! fsck.rbfs -n "$TEST_DISK" > /tmp/fsck2.out 2>&1; then
				bad=$((bad + 1)); echo "$line: fsck -y claimed a repair, fsck -n disagrees"; tail -n 5 /tmp/fsck2.out
			elif ! mount -t rbfs "$TEST_DISK" $M 2>/dev/null; then
				bad=$((bad + 1)); echo "$line: repaired image does not mount"; dmesg | tail -n 3
			else
				strict_walk || { bad=$((bad + 1)); echo "$line: repaired image has unreadable files"; }
				umount $M
			fi
			;;
		*)
			fsck_refused=$((fsck_refused + 1))
			[ -s /tmp/fsck.out ] || { bad=$((bad + 1)); echo "$line: fsck refused (exit $rc) without a message"; }
			;;
		esac
	done < /tmp/corpus
	echo "tried $tried: mount refused $refused_mount, mounted $mounted; fsck -y repaired $repaired, refused $fsck_refused; problems $bad"
	echo "# rbfs-figure images_tried $tried"
	[ "$bad" = 0 ] || fail "$bad images handled badly"
}

test_unload() {
	if grep -q " $M " /proc/mounts; then umount $M; fi
	rmmod rbfs
}
