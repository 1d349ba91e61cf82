# A user's own workload (make run GUEST_SCRIPT=... GUEST_FILES=...): rbfs is
# loaded, the host files are under /host, the script runs there with its
# output going straight to the results channel.
# shellcheck shell=sh
TESTS="module_load"

test_module_load() {
	insmod "$RBFS_KO"
	module_loaded || fail "rbfs not in /proc/modules"
}

scenario_main() {
	ktap_plan 1
	t script.module_load test_module_load
	echo "# --- user script output ---"
	(cd /host 2>/dev/null || cd /; sh /rbfs/user-script)
	status=$?
	echo "# --- end of user script output ---"
	# The script's status is the run's exit status (run.sh), not a test
	# result: a workload may fail on purpose.
	echo "# rbfs-guest: exit-status $status"
	scenario_end
}
