#!/usr/bin/env bash
# make soak [DURATION=seconds] [CUTS=n]: the reliability suite, longer than
# in `make check`: rbfs-stress for DURATION seconds in all (half at 1 KiB,
# half at 4 KiB blocks), CUTS power cuts (default: one per 5 minutes of
# DURATION, at least 5), the hazards and faults scenarios, and a summary of
# the figures.  Exits non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/env.sh"
cd "$RBFS_ROOT"
duration=${1:-1800}
cuts=${2:-$(( duration / 300 > 5 ? duration / 300 : 5 ))}
scripts/deps.sh && scripts/kernel.sh debug && scripts/module.sh debug && scripts/tools.sh && qemu/mkinitramfs.sh debug || exit 1
failed=0
t0=$(date +%s)
RBFS_APPEND="rbfs_stress_time=$(( duration / 2 ))" qemu/run.sh --scenario stress --label soak-stress \
	--timeout $(( duration + 900 )) || failed=$((failed + 1))
for sc in hazards faults; do
	qemu/run.sh --scenario "$sc" --label "soak-$sc" || failed=$((failed + 1))
done
scripts/powercut.sh "$cuts" | tee out/soak-powercut.log || failed=$((failed + 1))
labels="soak-stress soak-hazards soak-faults $(seq -f 'powercut-%g' 1 $((cuts + 1)))"
figures=$(for l in $labels; do cat "out/runs/$l/guest.log" 2>/dev/null; done |
	grep -aoE 'rbfs-figure [a-z_]+ [0-9]+' | awk '{ s[$2] += $3 } END { for (k in s) print k, s[k] }' | sort)
echo "$figures" | sed 's/^/# soak figure: /'
fig() { echo "$figures" | awk -v k="$1" '$1 == k { print $2; f = 1 } END { if (!f) print 0 }'; }
echo "# soak: $(( $(date +%s) - t0 )) s; stress operations $(fig stress_ops), bytes verified" \
	"$(( $(fig stress_bytes_verified) + $(fig powercut_bytes_verified) )), faults injected $(fig faults_injected)," \
	"power cuts survived $(fig powercut_survived) of $cuts, bytes lost $(fig bytes_lost); $failed failed runs"
[ "$failed" = 0 ]
