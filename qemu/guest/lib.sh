# Shared code of the guest scenarios: KTAP output, checks, power-off.
# shellcheck shell=sh

RBFS_KO=/lib/modules/rbfs.ko
# run.sh --mutant NAME: the mutant module NAME (make mutants) instead.
for _arg in $(cat /proc/cmdline); do
	case "$_arg" in rbfs_mutant=*) RBFS_MUTANT=${_arg#rbfs_mutant=}; RBFS_KO=/lib/modules/mutants/$RBFS_MUTANT.ko ;; esac
done
TEST_DISK=/dev/vda
SCRATCH_DISK=/dev/vdb
_ktap_n=0

# ktap_plan N: start a KTAP document of N results.
ktap_plan() {
	echo "KTAP version 1"
	echo "1..$1"
}

# t NAME COMMAND...: run COMMAND (usually a test_* function) in a subshell
# with `set -e`, print its output as KTAP diagnostics, then the result.
# Exit status 0 passes, 77 skips (the first output line is the reason),
# anything else fails.
t() {
	_name=$1
	shift
	_ktap_n=$((_ktap_n + 1))
	_out=$( (set -e; "$@") 2>&1 )
	_rc=$?
	[ -n "$_out" ] && printf '%s\n' "$_out" | sed 's/^/# /'
	case $_rc in
	0) echo "ok $_ktap_n $_name" ;;
	77) echo "ok $_ktap_n $_name # SKIP $(printf '%s\n' "$_out" | head -n1)" ;;
	*) echo "not ok $_ktap_n $_name" ; echo "# exit status $_rc" ;;
	esac
	return 0
}

# fail MESSAGE: fail the current test with a message.
fail() {
	echo "FAIL: $*"
	exit 1
}

# expect_eq WHAT GOT WANT
expect_eq() {
	[ "$2" = "$3" ] || fail "$1: got '$2', want '$3'"
}

# dmesg_has PATTERN: the kernel log holds an extended regexp.
dmesg_has() {
	dmesg | grep -qE "$1"
}

# fsck_clean DEVICE: fsck.rbfs -n finds nothing wrong on an unmounted rbfs.
fsck_clean() {
	if ! fsck.rbfs -n "$1" > /tmp/fsck.out 2>&1; then
		cat /tmp/fsck.out
		fail "fsck.rbfs -n $1 found problems"
	fi
	tail -n1 /tmp/fsck.out
}

# fresh BS [SIZE]: a new rbfs with BS-byte blocks (SIZE: mkfs.rbfs's
# blocks count, 256M by default) on the test disk, mounted on $M.  A mount
# a failed test left behind is unmounted first, so failures do not cascade.
fresh() {
	if grep -q " $M " /proc/mounts; then umount $M; fi
	mkfs.rbfs -q -f -b "$1" "$TEST_DISK" "${2:-256M}"
	mount -t rbfs "$TEST_DISK" $M
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

module_loaded() {
	grep -q '^rbfs ' /proc/modules
}

# run_scenario NAME: source /rbfs/scenarios/NAME.sh, which sets TESTS (a
# list of names) and defines test_NAME for each, and run them in order.  A
# scenario that needs another shape defines scenario_main instead.
run_scenario() {
	_sc=/rbfs/scenarios/$1.sh
	if [ -z "$1" ] || [ ! -f "$_sc" ]; then
		echo "# rbfs-guest: no such scenario '$1'"
		ktap_plan 1
		echo "not ok 1 scenario $1 exists"
		echo "# rbfs-guest: done"
		return
	fi
	SCENARIO=$1
	. "$_sc"
	if type scenario_main >/dev/null 2>&1; then
		scenario_main
		return
	fi
	# run.sh --only a,b,c: just those tests, in the scenario's order.
	for _arg in $(cat /proc/cmdline); do
		case "$_arg" in rbfs_only=*)
			_only=" $(echo "${_arg#rbfs_only=}" | tr ',' ' ') "
			_keep=
			for _tn in $TESTS; do
				case "$_only" in *" $_tn "*) _keep="$_keep $_tn" ;; esac
			done
			TESTS=$_keep
			;;
		esac
	done
	set -- $TESTS
	ktap_plan $#
	for _tn in $TESTS; do
		t "$SCENARIO.$_tn" "test_$_tn"
	done
	scenario_end
}

# scenario_end: the checks every scenario ends with, then the done marker.
scenario_end() {
	kmemleak_scan
	echo "# rbfs-guest: done"
}

# kmemleak_scan: have kmemleak scan now, so leaks of this run reach the
# kernel log (where the host's splat detector sees them) before power-off.
# kmemleak reports an object only once it is older than 5 s and its
# contents did not change between two scans, hence the wait and two scans.
kmemleak_scan() {
	[ -w /sys/kernel/debug/kmemleak ] || return 0
	sleep 5
	echo scan > /sys/kernel/debug/kmemleak
	echo scan > /sys/kernel/debug/kmemleak
	if grep -q . /sys/kernel/debug/kmemleak 2>/dev/null; then
		echo "# kmemleak report:"
		head -n 60 /sys/kernel/debug/kmemleak | sed 's/^/#   /'
	fi
}

# guest_shell: interactive shell on the console for `make shell`.
guest_shell() {
	insmod "$RBFS_KO" || echo "rbfs: insmod failed"
	cat <<'MSG'

rbfs guest shell.  rbfs.ko is loaded (rmmod rbfs / insmod /lib/modules/rbfs.ko).
Disks: /dev/vda (test), /dev/vdb (scratch).  Host files, if any: /host.
Exit the shell to power off.

MSG
	setsid cttyhack /bin/sh -l
}

guest_poweroff() {
	sync
	echo o > /proc/sysrq-trigger
	# Power-off is asynchronous; init must not exit meanwhile.
	while :; do sleep 60; done
}
