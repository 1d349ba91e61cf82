# rbfs-stress: many threads over many files with an in-memory model of
# every byte: buffered writes at sub-block and straddling offsets, the same
# blocks overwritten from several threads, fsync, fdatasync,
# sync_file_range from several threads on the same range, shared mmap with
# msync, truncate down and up, rename over files, unlink of open files, AIO
# and io_uring O_DSYNC writes, and drop_caches followed by a check of every
# byte.  Background writeback runs at its shortest intervals with a small
# dirty_background_bytes, so it constantly races the foreground.
#
# RBFS_STRESS_TIME (seconds per block size, default 40) bounds the run;
# `make soak` sets it longer.
# shellcheck shell=sh
TESTS="load stress_1k stress_4k unload"
M=/mnt

test_load() {
	insmod "$RBFS_KO"
}

stress_time() {
	for arg in $(cat /proc/cmdline); do
		case "$arg" in rbfs_stress_time=*) echo "${arg#rbfs_stress_time=}"; return ;; esac
	done
	echo 40
}

check_stress() {
	fresh "$1" 512M
	old_e=$(cat /proc/sys/vm/dirty_expire_centisecs)
	old_w=$(cat /proc/sys/vm/dirty_writeback_centisecs)
	# Setting the bytes clears the ratio and the other way round: restore
	# the ratio (the default mode).
	old_r=$(cat /proc/sys/vm/dirty_background_ratio)
	echo 1 > /proc/sys/vm/dirty_expire_centisecs
	echo 1 > /proc/sys/vm/dirty_writeback_centisecs
	echo 262144 > /proc/sys/vm/dirty_background_bytes
	rc=0
	rbfs-stress $M/s --seed "$2" --threads 4 --files 16 --max-size 1M --time "$(stress_time)" \
		--ops 10000000 --verify-every 400 --drop-caches --summary-json /tmp/s.json > /tmp/s.out 2>&1 || rc=$?
	echo "$old_e" > /proc/sys/vm/dirty_expire_centisecs
	echo "$old_w" > /proc/sys/vm/dirty_writeback_centisecs
	echo "$old_r" > /proc/sys/vm/dirty_background_ratio
	tail -n 40 /tmp/s.out
	[ $rc = 0 ] || fail "rbfs-stress exit $rc"
	sed -n 's/.*"ops": *\([0-9]*\),.*/# rbfs-figure stress_ops \1/p' /tmp/s.json
	sed -n 's/.*"bytes_verified": *\([0-9]*\),.*/# rbfs-figure stress_bytes_verified \1/p' /tmp/s.json
	echo "# rbfs-figure bytes_lost 0"
	umount $M
	fsck_clean "$TEST_DISK"
}

test_stress_1k() { check_stress 1024 101; }
test_stress_4k() { check_stress 4096 102; }

test_unload() {
	if grep -q " $M " /proc/mounts; then umount $M; fi
	rmmod rbfs
}
