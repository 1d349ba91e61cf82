# fstests (make fstests, scripts/fstests.sh): run fstests' ./check against
# rbfs (or ext2, the comparison row) inside the Debian root built by
# scripts/fstests-root.sh.
#
# Disks: /dev/vda TEST_DEV, /dev/vdb SCRATCH_DEV, /dev/vdc the root image
# (a snapshot: writes are dropped at power-off), /dev/vdd LOGWRITES_DEV
# while the tests run, then where the results directory goes back to the
# host as a tar stream.
# /host/fstests.conf (from the host) sets FSTYP, BLOCK_SIZE and CHECK_ARGS
# (./check's arguments: tests, groups, -E exclude files).
#
# Results channel: KTAP, one result per test fstests ran or did not run
# (from ./check's closing Ran / Not run / Failures lines); the host reads
# reasons and times from the xunit report in the results tar.
# shellcheck shell=sh

R=/fsroot
# Programs in the root are named by their full paths: busybox's chroot
# prefers its own applets (mke2fs, tar, umount ...) to the root's programs
# of the same name.

# fs_mkfs DEV: an empty filesystem of the run's type and block size.
fs_mkfs() {
	case "$FSTYP" in
	rbfs) chroot $R /sbin/mkfs.rbfs -q -f -b "$BLOCK_SIZE" "$1" ;;
	ext2) chroot $R /usr/sbin/mke2fs -q -F -t ext2 -b "$BLOCK_SIZE" "$1" ;;
	*) echo "fstests: unknown FSTYP $FSTYP"; return 1 ;;
	esac
}

fstests_setup() {
	# Loopback, for the lock and socket tests.
	ip link set lo up 2>/dev/null || ifconfig lo 127.0.0.1 up
	hostname rbfs-guest
	mkdir -p $R
	mount -t ext4 /dev/vdc $R || return 1
	# rbfs's tools, from this build, where util-linux's mkfs/fsck find them.
	cp /sbin/mkfs.rbfs /sbin/fsck.rbfs $R/sbin/
	for m in dev proc sys; do mount -o rbind /$m $R/$m || return 1; done
	mount -t tmpfs -o size=512m tmpfs $R/tmp
	mkdir -p $R/dev/shm && mount -t tmpfs tmpfs $R/dev/shm
	mkdir -p $R/run && mount -t tmpfs tmpfs $R/run
	case "$FSTYP" in
	rbfs) insmod "$RBFS_KO" || return 1 ;;
	esac
	# local.config: the disks, rbfs's mkfs options, and DM_DISABLE_UDEV
	# (there is no udev in the guest: without it dmsetup waits for udev
	# to make /dev/mapper/NAME, which never appears, and every dm-error,
	# dm-flakey and dm-thin test fails or is skipped for the wrong reason).
	opts="-b $BLOCK_SIZE"
	[ "$FSTYP" = rbfs ] && opts="-f -q $opts"
	cat > $R/opt/fstests/local.config <<-EOF
	export FSTYP=$FSTYP
	export TEST_DEV=/dev/vda
	export TEST_DIR=/mnt/test
	export SCRATCH_DEV=/dev/vdb
	export SCRATCH_MNT=/mnt/scratch
	export LOGWRITES_DEV=/dev/vdd
	export MKFS_OPTIONS="$opts"
	export FSCK_OPTIONS=-n
	export DM_DISABLE_UDEV=1
	EOF
	fs_mkfs /dev/vda
}

# ktap_from_check LOG: one KTAP result per test of ./check's summary lines.
ktap_from_check() {
	ran=$(sed -n 's/^Ran: *//p' "$1" | tail -n1)
	notrun=$(sed -n 's/^Not run: *//p' "$1" | tail -n1)
	failures=$(sed -n 's/^Failures: *//p' "$1" | tail -n1)
	set -- $ran $notrun
	ktap_plan $#
	n=0
	for t in $ran; do
		n=$((n + 1))
		case " $failures " in
		*" $t "*) echo "not ok $n fstests.$t" ;;
		*) echo "ok $n fstests.$t" ;;
		esac
	done
	for t in $notrun; do
		n=$((n + 1))
		echo "ok $n fstests.$t # SKIP not run"
	done
}

scenario_main() {
	. /host/fstests.conf
	echo "# fstests: FSTYP=$FSTYP BLOCK_SIZE=$BLOCK_SIZE ./check $CHECK_ARGS"
	if ! out=$(fstests_setup 2>&1); then
		printf '%s\n' "$out" | sed 's/^/# /'
		ktap_plan 1
		echo "not ok 1 fstests.setup"
		scenario_end
		return
	fi
	# Every 5 minutes, what is running (to tell a slow test from a hung
	# one in the results channel), and the tasks in D state with their
	# stacks (sysrq-w, in the kernel log).
	(
		while sleep 300; do
			echo "# fstests: $(date +%T) running:" $(ps -o pid,stat,comm | awk 'NR > 1 && $3 != "ps" && $3 != "sh" && $3 != "sleep" && $3 != "awk" { print $3 "(" $2 ")" }' | sort | uniq -c | sort -rn | head -8 | awk '{ print $2 "x" $1 }')
			echo w > /proc/sysrq-trigger
		done
	) &
	watch=$!
	# ./check's own output goes to the results channel as diagnostics as it
	# runs (a long run shows progress); its xunit report goes to the host.
	chroot $R /bin/bash -c "cd /opt/fstests && ./check -R xunit-quiet $CHECK_ARGS" 2>&1 |
		tee /tmp/check.out | sed 's/^/# /'
	kill $watch 2>/dev/null
	ktap_from_check /tmp/check.out
	cp /tmp/check.out $R/opt/fstests/results/check.out
	# Any filesystem a test left mounted, then the results to the host.
	chroot $R /usr/bin/umount -R /mnt/scratch 2>/dev/null
	chroot $R /usr/bin/umount -R /mnt/test 2>/dev/null
	chroot $R /usr/sbin/dmsetup remove_all 2>/dev/null
	chroot $R /usr/bin/tar -C /opt/fstests -cf /dev/vdd results && sync
	echo "# fstests: results sent"
	scenario_end
}
