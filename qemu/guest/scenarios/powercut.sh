# Power cuts (scripts/powercut.sh drives it): each boot first checks the
# filesystem the previous boot's power cut left behind (fsck.rbfs -y
# repairs what the cut left, fsck.rbfs -n then finds it clean, and every
# byte that fsync, fdatasync or an O_DSYNC write had acknowledged before
# the cut is read back intact), then starts a writer that mixes fsync'd
# and not fsync'd writes until the host kills the guest (SIGKILL to QEMU:
# nothing more reaches the disk).  The writer's log of what it wrote and
# what was acknowledged goes to the results channel line by line, and the
# host hands it to the next boot as /host/cutlog.
#
# /host/final: check only, then end normally (the last boot).
# shellcheck shell=sh
M=/mnt

pc_fsck() {
	rc=0
	fsck.rbfs -y "$TEST_DISK" > /tmp/fsck.out 2>&1 || rc=$?
	tail -n 3 /tmp/fsck.out
	echo "fsck.rbfs -y exit $rc"
	case $rc in
	0) echo "# rbfs-figure powercut_fsck_clean 1" ;;
	1) echo "# rbfs-figure powercut_fsck_repaired 1" ;;
	*) cat /tmp/fsck.out; fail "fsck.rbfs -y could not repair the image (exit $rc)" ;;
	esac
	fsck_clean "$TEST_DISK"
}

pc_verify() {
	mount -t rbfs "$TEST_DISK" $M
	if ! grep -q '^RBFSLOG' /host/cutlog; then
		echo "the writer logged nothing before the cut"
		umount $M
		return 0
	fi
	rc=0
	rbfs-stress $M/pc --verify-log /host/cutlog > /tmp/v.out 2>&1 || rc=$?
	cat /tmp/v.out
	[ $rc = 0 ] || { umount $M; fail "acknowledged data lost or damaged by the cut (rbfs-stress exit $rc)"; }
	sed -n 's/^verified: [0-9]* files, \([0-9]*\) bytes.*/# rbfs-figure powercut_bytes_verified \1/p' /tmp/v.out
	echo "# rbfs-figure bytes_lost 0"
	umount $M
	fsck_clean "$TEST_DISK"
}

scenario_main() {
	if [ -f /host/cutlog ]; then
		n=4
	else
		n=1
	fi
	[ -f /host/final ] && n=$((n + 1))
	ktap_plan $n
	t powercut.load insmod "$RBFS_KO"
	if [ -f /host/cutlog ]; then
		t powercut.fsck_after_cut pc_fsck
		t powercut.acknowledged_data_intact pc_verify
		echo "# rbfs-figure powercut_survived 1"
		t powercut.module_still_sane sh -c "grep -q '^rbfs ' /proc/modules"
	fi
	if [ -f /host/final ]; then
		t powercut.unload rmmod rbfs
		scenario_end
		return
	fi
	if [ ! -f /host/cutlog ]; then
		mkfs.rbfs -q -f -b "${RBFS_PC_BS:-1024}" "$TEST_DISK" 256M
	fi
	mount -t rbfs "$TEST_DISK" $M
	rm -rf $M/pc
	mkdir $M/pc
	sync
	echo "# powercut: writing"
	# Runs until the host cuts the power.
	rbfs-stress $M/pc --powercut-writer --durable-log --seed "$(date +%s)" --threads 2 --files 4 --max-size 1M
	echo "# powercut: the writer stopped by itself"
	scenario_end
}
