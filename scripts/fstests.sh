#!/usr/bin/env bash
# make fstests: run fstests (xfstests) against rbfs in the project's guest.
#
#   make fstests [FSTESTS="-g quick"] [FSTESTS_FS="rbfs"] [FSTESTS_BS="1024 4096"]
#                [KCONFIG=debug|lean] [FSTESTS_SRC=tarball-or-dir]
#
# FSTESTS       what to run: groups (-g NAME, -x NAME) and/or test names, as
#               ./check takes them (default: -g quick)
# FSTESTS_FS    filesystems, each a row of the results: rbfs, ext2 (default rbfs)
# FSTESTS_BS    block sizes (default: 1024 4096)
# FSTESTS_CHUNK tests per guest boot (default 60); a boot that hangs loses
#               at most one chunk, and the hung test is named
# FSTESTS_TIMEOUT  seconds per boot (default 3600)
# FSTESTS_OUT   results directory (default out/fstests/<date>)
#
# Tests listed in qemu/fstests/exclude (each with its reason) are not run.
# Results: fstests' own summary per filesystem and block size, then
# $FSTESTS_OUT/results.txt (a table: test, result, seconds, reason) and
# results.json, with the .out.bad, .full and .dmesg files of every failure.
# Exits non-zero if any test failed, any guest run failed (a kernel splat,
# a timeout), or nothing ran.  With COUNTS=FILE, also writes
# "passed failed skipped" there (make check).
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"

cfg=${KCONFIG:-debug}
spec=${FSTESTS:--g quick}
fss=${FSTESTS_FS:-rbfs}
bss=${FSTESTS_BS:-1024 4096}
chunk=${FSTESTS_CHUNK:-60}
limit=${FSTESTS_TIMEOUT:-3600}
outdir=${FSTESTS_OUT:-$RBFS_ROOT/out/fstests/$(date +%Y-%m-%d-%H%M%S)}
log() { echo "fstests: $*" >&2; }

# 1. Everything the guest needs.
scripts/deps.sh || exit 1
scripts/kernel.sh "$cfg" || exit 1
scripts/module.sh "$cfg" || exit 1
scripts/tools.sh || exit 1
qemu/mkinitramfs.sh "$cfg" || exit 1
root_img=$(scripts/fstests-root.sh) || exit 1
groups_dir=${root_img%.img}.groups

# 2. The test list, expanded on the host from the built tree's group lists
#    (generic tests only: rbfs has no tests of its own in fstests, and the
#    ext2 row runs the same list).  Excluded tests are dropped here.
excl=$(sed 's/#.*//' qemu/fstests/exclude | awk 'NF { print $1 }')
tests=$(python3 - "$groups_dir" "$spec" "$excl" <<'EOF'
import os, sys
gdir, spec, excl = sys.argv[1], sys.argv[2].split(), set(sys.argv[3].split())
groups = {}
for d in sorted(os.listdir(gdir)):
    for line in open(os.path.join(gdir, d)):
        f = line.split()
        if len(f) >= 2 and not line.startswith('#'):
            groups[f"{d}/{f[0]}"] = set(f[1:])
want, drop, i = [], set(), 0
while i < len(spec):
    a = spec[i]
    if a in ('-g', '-x') and i + 1 < len(spec):
        names = spec[i + 1].split(',')
        hit = [t for t in sorted(groups) if groups[t] & set(names)]
        (want.extend if a == '-g' else drop.update)(hit)
        i += 2
        continue
    want.append(a)
    i += 1
seen = set()
for t in want:
    if t not in seen and t not in drop and t not in excl:
        seen.add(t)
        print(t)
EOF
) || exit 1
[ -n "$tests" ] || { log "no tests match '$spec'"; exit 1; }
ntests=$(echo "$tests" | wc -l)
mkdir -p "$outdir"
log "$ntests tests ($spec) x fs [$fss] x block sizes [$bss], $cfg kernel; results in $outdir"

export RBFS_MEM_MB=${RBFS_MEM_MB:-3072}
# fstests runs two synchronous kmemleak scans after every test, which take
# minutes each on the debug kernel under TCG: kmemleak is off in these boots
# (fstests then skips its check); the project's own scenarios keep it.
export RBFS_APPEND="${RBFS_APPEND:+$RBFS_APPEND }kmemleak=off"
export RBFS_TEST_DISK_MB=${RBFS_TEST_DISK_MB:-2048}
export RBFS_SCRATCH_DISK_MB=${RBFS_SCRATCH_DISK_MB:-2048}
runs_failed=0
for fs in $fss; do
	for bs in $bss; do
		row=$outdir/$fs-$bs
		mkdir -p "$row"
		todo=$tests
		i=0
		while [ -n "$todo" ]; do
			i=$((i + 1))
			part=$(echo "$todo" | head -n "$chunk")
			todo=$(echo "$todo" | tail -n +"$((chunk + 1))")
			label=fstests-$fs-$bs-$i
			dir=$row/$i
			mkdir -p "$dir/host"
			{
				echo "FSTYP=$fs"
				echo "BLOCK_SIZE=$bs"
				echo "CHECK_ARGS='$(echo $part)'"
			} > "$dir/host/fstests.conf"
			# LOGWRITES_DEV during the tests; the results tar after them.
			rm -f "$dir/logwrites.img"
			truncate -s 4G "$dir/logwrites.img"
			log "$fs, $bs-byte blocks, part $i: $(echo "$part" | wc -l) tests"
			qemu/run.sh --kernel "$cfg" --scenario fstests --label "$label" --timeout "$limit" \
				--files "$dir/host" --disk "$root_img,snapshot=on" \
				--disk "$dir/logwrites.img" > "$dir/run.log" 2>&1
			rc=$?
			cp out/runs/"$label"/{console.log,guest.log,verdict.txt} "$dir/" 2>/dev/null
			(cd "$dir" && tar -xf logwrites.img 2>/dev/null)
			rm -f "$dir/logwrites.img"
			grep -a '^# ' "$dir/guest.log" | sed 's/^# //' | grep -avE '^(rbfs-guest|fstests:)' > "$dir/check.out" 2>/dev/null
			# run.sh fails when a test failed (one KTAP result per test);
			# the run itself failed if anything else did: a splat, a
			# timeout, a crash, KUnit.
			bad=$(grep -a '^not ok' "$dir/verdict.txt" 2>/dev/null | grep -av '^not ok fstests\.')
			[ -s "$dir/verdict.txt" ] || bad="no verdict (run.sh exited $rc)"
			if [ -n "$bad" ]; then
				runs_failed=$((runs_failed + 1))
				log "$label: the guest run failed: $(echo "$bad" | head -3 | tr '\n' ' ')"
				# A hang or crash: the test that was running is the culprit;
				# the rest of the chunk goes back to the list.
				last=$(grep -aoE 'run fstests [^ ]+ at' "$dir/console.log" | tail -n1 | awk '{print $3}')
				if [ ! -f "$dir/results/result.xml" ] && [ -n "$last" ]; then
					echo "$last" > "$dir/hung-test"
					rest=$(echo "$part" | sed -n "/^${last//\//\\/}\$/,\$p" | tail -n +2)
					[ -z "$rest" ] || todo=$(printf '%s\n%s' "$rest" "$todo" | sed '/^$/d')
				fi
			fi
		done
	done
done

# 3. The report.  Each guest run also counts as one check of its own (no
#    splat, no timeout, no crash).
runs=$(find "$outdir" -mindepth 2 -maxdepth 2 -type d | wc -l)
python3 scripts/fstests-report.py "$outdir"
[ "$runs_failed" = 0 ] || log "$runs_failed of $runs guest runs failed (splat, timeout or crash): see $outdir/*/*/verdict.txt"
if [ -n "${COUNTS:-}" ]; then
	read -r p f s < <(python3 scripts/fstests-report.py --counts "$outdir")
	echo "$((p + runs - runs_failed)) $((f + runs_failed)) $s" > "$COUNTS"
fi
[ "$runs_failed" = 0 ] && python3 scripts/fstests-report.py --ok "$outdir"
