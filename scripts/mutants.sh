#!/usr/bin/env bash
# make mutants: build the module once normally and once per mutant (one
# writeback hazard reintroduced each, scripts/mutants/), boot
# the `hazards` scenario with each, and show that every mutant is caught by
# the test for its hazard while the normal module passes every test.
#
# Prints one line per build and a summary "mutants: N caught of N built";
# writes the table to out/mutants/results.txt.  Exits non-zero if the
# normal module fails a test or a mutant is not caught by its own test.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"

# The list, with each mutant's test: scripts/mutants/list.
mutants=
declare -A target=()
while read -r name test _; do
	mutants+=" $name"
	target[$name]=$test
done < <(sed 's/#.*//' scripts/mutants/list | awk 'NF')

scripts/kernel.sh debug || exit 1
scripts/module.sh debug || exit 1
for m in $mutants; do
	RBFS_MUTANT=$m scripts/module.sh debug || { echo "mutants: building $m failed"; exit 1; }
done
scripts/tools.sh || exit 1
qemu/mkinitramfs.sh debug || exit 1

res=out/mutants
mkdir -p "$res"
table=$res/results.txt
printf '%-24s %-24s %-10s %s\n' build "hazard test" result "how it failed" > "$table"

# result_of LABEL TEST: pass / FAIL / no result for one test of a run.
result_of() {
	local log=out/runs/$1/guest.log
	if grep -q "^ok [0-9]* hazards\.$2\$" "$log"; then echo pass
	elif grep -q "^not ok [0-9]* hazards\.$2" "$log"; then echo FAIL
	else echo "no result"
	fi
}

# how LABEL TEST: the first line that explains a failure.
how() {
	local run=out/runs/$1
	local why
	why=$(grep -E 'NOT DURABLE|NOT ORDERED|not on the disk|FAIL:|still blocked' "$run/guest.log" | head -n1 | sed 's/^# *//')
	[ -n "$why" ] || why=$(grep -oE 'kernel BUG at [^ ]*|BUG: KASAN: [a-z-]*|WARNING: [^ ]* [^ ]*|INFO: task [^ ]* blocked' "$run/console.log" | head -n1)
	[ -n "$why" ] || why=$(grep -E '^not ok' "$run/verdict.txt" | head -n1)
	echo "${why:-?}" | cut -c1-110
}

rc=0 caught=0 built=0
timeout=${RBFS_MUTANT_TIMEOUT:-900}
# RBFS_MUTANTS_NORMAL=LABEL: the normal module's hazards run is the one
# already in out/runs/LABEL (make check's), not a new one.
normal=${RBFS_MUTANTS_NORMAL:-}
if [ -n "$normal" ] && [ -f "out/runs/$normal/verdict.txt" ]; then
	grep -q '^not ok' "out/runs/$normal/verdict.txt"
	normal_rc=$(( $? == 0 ))
else
	normal=mutants-none
	qemu/run.sh --scenario hazards --label mutants-none --timeout "$timeout" > "$res/none.out" 2>&1
	normal_rc=$?
fi
for t in checker_can_fail same_page_twice mark_before_submit sync_completion fsync_finds_page no_wait_with_open_bio ordered_pointers nofs_under_reclaim; do
	r=$(result_of "$normal" $t)
	printf '%-24s %-24s %-10s %s\n' "normal" "$t" "$r" "" >> "$table"
done
if [ $normal_rc != 0 ]; then
	echo "mutants: the normal module failed the hazards scenario (out/runs/$normal)"
	rc=1
fi
for m in $mutants; do
	built=$((built + 1))
	t=${target[$m]}
	# Only its own hazard's test, so a catch is that test's (the checker's
	# self-test ran with the normal module).
	qemu/run.sh --scenario hazards --mutant "$m" --only "load,$t,unload" \
		--label "mutants-$m" --timeout "$timeout" > "$res/$m.out" 2>&1
	r=$(result_of "mutants-$m" "$t")
	if [ "$(result_of "mutants-$m" load)" != pass ]; then
		# A module that did not load (a stale build, an unknown symbol)
		# proves nothing about its test.
		printf '%-24s %-24s %-10s %s\n' "$m" "$t" "NOT CAUGHT" "the mutant did not load" >> "$table"
		rc=1
	elif [ "$r" = pass ]; then
		printf '%-24s %-24s %-10s %s\n' "$m" "$t" "NOT CAUGHT" "" >> "$table"
		rc=1
	else
		caught=$((caught + 1))
		printf '%-24s %-24s %-10s %s\n' "$m" "$t" "caught" "$(how "mutants-$m" "$t")" >> "$table"
	fi
done
cat "$table"
echo "mutants: $caught caught of $built built; normal module: $([ $normal_rc = 0 ] && echo 'passes every hazard test' || echo FAILED)"
exit $rc
