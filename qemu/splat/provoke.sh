#!/bin/sh
# Guest side of scripts/splat-fixtures.sh: provoke each kind of report,
# between markers in the kernel log.
for w in warn lockdep kasan hung leak; do
	echo "splat-fixture: begin $w" > /dev/kmsg
	[ $w = hung ] && echo 2 > /proc/sys/kernel/hung_task_timeout_secs
	insmod /host/splat.ko what=$w
	if [ $w = hung ]; then
		echo 120 > /proc/sys/kernel/hung_task_timeout_secs
	fi
	if [ $w = leak ]; then
		# Reported once older than 5 s and unchanged across two scans.
		sleep 6
		echo scan > /sys/kernel/debug/kmemleak
		echo scan > /sys/kernel/debug/kmemleak
	fi
	echo "splat-fixture: end $w" > /dev/kmsg
done
exit 0
