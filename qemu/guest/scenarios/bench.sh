# Benchmark (make bench, lean kernel): the same test disk formatted in turn
# as rbfs, ext2, ext4 and ext4 without a journal, each with 1 KiB and 4 KiB
# blocks, runs the same workloads (fio is the load generator); the raw disk
# with O_DIRECT gives the physical limit.  Every measured workload prints
# one machine-readable line
#
#   BENCH {"type":"result","rep":1,"fs":"rbfs","bs":4096,"wl":"seqwrite",...}
#
# with raw counters only, over fio's I/O phase (from its first I/O to the
# end of its final fsync, or of the syncfs for smallfiles; fio's own start-up
# is outside): the logical bytes (fio's), the time in microseconds, the
# deltas of the disk's /sys/block/DEV/stat (read and write requests and
# sectors, flushes) and of /proc/stat's cpu line (ticks of USER_HZ), and
# fio's own usr/sys CPU.  The host (scripts/bench-report.py) derives
# throughput, average request size, CPU per MiB and the ratios.
#
# Each (repetition, filesystem, block size) is one KTAP test: mkfs, mount,
# the workloads in order, umount (and fsck.rbfs -n for rbfs).  Before each
# measured workload: sync and drop_caches, so every workload starts with
# nothing dirty and a cold cache.  The workloads (all on one file F of
# BENCH_SEQ_MB MiB, written by seqwrite, except smallfiles):
#
#   seqwrite     buffered sequential 1 MiB writes of F, then fsync
#   seqread      sequential 1 MiB reads of F (readahead)
#   randread     random 4 KiB reads in F, BENCH_RAND_IOS of them
#   randwrite4k  random 4 KiB overwrites in F, fsync every BENCH_FSYNC_EVERY
#   randwrite1k  the same with 1 KiB overwrites
#   dsync_qd1    O_DSYNC random 4 KiB overwrites through libaio, queue depth 1
#   dsync_qd16   the same at queue depth 16 (buffered AIO: io_submit waits
#                for each O_DSYNC write, so this shows the submission cost)
#   mmap         random 4 KiB stores through a shared mapping of F, msync
#                (MS_SYNC, the whole mapping) every BENCH_FSYNC_EVERY stores
#   smallfiles   BENCH_SMALL_FILES new files of BENCH_SMALL_KB KiB in one
#                directory, then syncfs (sync -f)
#
# The raw disk, O_DIRECT through libaio, at the start of each repetition:
#   raw_seqwrite 1 MiB writes at queue depth 8, then a flush (fsync)
#   raw_seqread  1 MiB reads at queue depth 8
#   raw_randwrite_qd1 / raw_randwrite_qd16   random 4 KiB writes
#   raw_randread random 4 KiB reads at queue depth 1
#
# Settings come from /host/bench.env (written by scripts/bench.sh), else the
# defaults below.  BENCH_DEV, BENCH_MNT and BENCH_TMP let
# scripts/bench-selftest.sh run this same file on a host's loop device.
# shellcheck shell=sh

BENCH_ENV=${BENCH_ENV:-/host/bench.env}
# shellcheck disable=SC1090
[ -f "$BENCH_ENV" ] && . "$BENCH_ENV"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	: "${BENCH_REPS:=1}" "${BENCH_SEQ_MB:=32}" "${BENCH_RAND_IOS:=256}" "${BENCH_DSYNC_IOS:=64}"
	: "${BENCH_SMALL_FILES:=100}" "${BENCH_BUDGET:=600}"
fi
BENCH_DEV=${BENCH_DEV:-$TEST_DISK}
BENCH_MNT=${BENCH_MNT:-/mnt}
BENCH_TMP=${BENCH_TMP:-/tmp}
BENCH_REPS=${BENCH_REPS:-3}
BENCH_FS=${BENCH_FS:-rbfs ext2 ext4 ext4nj}
BENCH_BS=${BENCH_BS:-1024 4096}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-seqwrite seqread randread randwrite4k randwrite1k dsync_qd1 dsync_qd16 mmap smallfiles}
BENCH_RAW=${BENCH_RAW-raw_seqwrite raw_seqread raw_randwrite_qd1 raw_randwrite_qd16 raw_randread}
# Sized for about 20 minutes under TCG on a 2-core host (4 vCPUs, lean
# kernel): see Documentation/filesystems/rbfs-bench.rst.
BENCH_SEQ_MB=${BENCH_SEQ_MB:-128}
BENCH_RAND_IOS=${BENCH_RAND_IOS:-2048}
BENCH_DSYNC_IOS=${BENCH_DSYNC_IOS:-512}
BENCH_FSYNC_EVERY=${BENCH_FSYNC_EVERY:-16}
BENCH_SMALL_FILES=${BENCH_SMALL_FILES:-1000}
BENCH_SMALL_KB=${BENCH_SMALL_KB:-4}
# A safety cap on each fio job (seconds): a job stops there, reports what
# it did, and the result says so ("capped":1).
BENCH_FIO_CAP=${BENCH_FIO_CAP:-120}
BENCH_FSCK=${BENCH_FSCK:-1}
# Background writeback starts at this much dirty data (vm.dirty_background_bytes;
# 0 keeps the kernel's 10% of available memory, about 170 MiB in a 2 GiB
# guest), so seqwrite's file is "large": the flusher writes it back while
# fio is still writing, as it would on a machine with less memory per file.
BENCH_DIRTY_BG_MB=${BENCH_DIRTY_BG_MB:-32}
# The time budget (seconds from the end of the setup): a repetition is
# started only when the repetitions so far say it will end within it; the
# ones left out are skipped (KTAP SKIP) and the report says so.
BENCH_BUDGET=${BENCH_BUDGET:-1500}
BENCH_LOAD_MODULE=${BENCH_LOAD_MODULE:-1}

_bdev=$(basename "$BENCH_DEV")
BENCH_STAT=${BENCH_STAT:-/sys/block/$_bdev/stat}
F=$BENCH_MNT/bench.dat

# The measurement window is fio's I/O phase, not the fio process: fio runs
# the counter snapshot script (snap.sh, written by test_bench_setup) as its
# exec_prerun, after its setup (loading about 60 shared libraries, costly
# under TCG, the job table, opening and laying out files) and right before
# the first I/O, and as its exec_postrun, right after the last I/O and the
# end_fsync.  BENCH_SNAP_SYNC names a directory to syncfs (sync -f) inside
# the window, after the I/O.  The window around the whole fio command is
# kept too ("wall_usec").
#
# snap.sh begin|end FILE STATFILE [SYNCDIR]: "time_us rd_ios rd_sect wr_ios
# wr_sect flush_ios user nice sys idle iowait irq softirq" into FILE; the
# counters are read before the time at the beginning and after it at the
# end, so the window holds them.
write_snap_script() {
	cat > "$BENCH_TMP/snap.sh" <<'SNAP'
# Builtins only inside the window (busybox ash's $EPOCHREALTIME is
# "seconds.microseconds"): no process is started between the readings.
if [ "$1" = begin ]; then
	read -r rio rm rs rt wio wm ws wt rest < "$3"
	read -r c user nice sys idle iow irq sirq crest < /proc/stat
	t=$EPOCHREALTIME
else
	[ -z "$4" ] || sync -f "$4"
	t=$EPOCHREALTIME
	read -r c user nice sys idle iow irq sirq crest < /proc/stat
	read -r rio rm rs rt wio wm ws wt rest < "$3"
fi
t=${t%.*}${t#*.}
set -- "$2" $rest
# rest: in_flight io_ticks time_in_queue discard(4) flush_ios flush_ticks
echo "$t $rio $rs $wio $ws ${9:-0} $user $nice $sys $idle $iow $irq $sirq" > "$1"
exit 0
SNAP
}

# Every fio job: one job, terse output (v3) to a file, no disk-util
# sampling, no preallocation (fallocate would give ext4 unwritten extents
# the others do not have), the same random sequence on every filesystem,
# the snapshots around the I/O.  fio runs in BENCH_TMP, where it leaves
# the snapshot commands' (empty) output files.
fio_job() {
	_name=$1
	shift
	rm -f "$BENCH_TMP/fio.terse" "$BENCH_TMP/fio.err" "$BENCH_TMP/snap.begin" "$BENCH_TMP/snap.end"
	(cd "$BENCH_TMP" && fio --name="$_name" --output-format=terse --terse-version=3 \
		--output="$BENCH_TMP/fio.terse" --disk_util=0 --fallocate=none \
		--randrepeat=1 --runtime="$BENCH_FIO_CAP" \
		--exec_prerun="sh $BENCH_TMP/snap.sh begin $BENCH_TMP/snap.begin $BENCH_STAT" \
		--exec_postrun="sh $BENCH_TMP/snap.sh end $BENCH_TMP/snap.end $BENCH_STAT ${BENCH_SNAP_SYNC:-}" \
		"$@" 2> "$BENCH_TMP/fio.err")
}

# fio_fields: "error read_kib write_kib usr_pct sys_pct read_ms write_ms"
# of the job's terse line.
fio_fields() {
	awk -F';' '$1 == "3" { u = $88; s = $89; sub(/%/, "", u); sub(/%/, "", s)
		print $5, $6, $47, u, s, $9, $50; found = 1 }
		END { if (!found) print "-1 0 0 0 0 0 0" }' "$BENCH_TMP/fio.terse" 2>/dev/null ||
		echo "-1 0 0 0 0 0 0"
}

# now_us: wall clock in microseconds (busybox date has no %N; ash has
# $EPOCHREALTIME, "seconds.microseconds").
now_us() {
	_now=$EPOCHREALTIME
	echo "${_now%.*}${_now#*.}"
}

# load_snap FILE PREFIX: PREFIX_t, PREFIX_rio ... from a snap.sh file.
load_snap() {
	[ -s "$1" ] || return 1
	# shellcheck disable=SC2034
	read -r _s_t _s_rio _s_rs _s_wio _s_ws _s_fio _s_user _s_nice _s_sys _s_idle _s_iow _s_irq _s_sirq < "$1"
	[ -n "$_s_sirq" ] || return 1
	eval "${2}_t=\$_s_t ${2}_rio=\$_s_rio ${2}_rs=\$_s_rs ${2}_wio=\$_s_wio ${2}_ws=\$_s_ws ${2}_fio=\$_s_fio"
	eval "${2}_user=\$_s_user ${2}_nice=\$_s_nice ${2}_sys=\$_s_sys ${2}_idle=\$_s_idle ${2}_iow=\$_s_iow ${2}_irq=\$_s_irq ${2}_sirq=\$_s_sirq"
}

drop_caches() {
	sync
	echo 3 > /proc/sys/vm/drop_caches
}

# emit REP FS BS WL OK BYTES FILES: one BENCH result line from the
# snapshots (b_*, e_*), the outer times (o_b, o_e) and fio's terse output.
emit() {
	set -- "$@" $(fio_fields)
	# $8 fio error, $9 read KiB, $10 write KiB, $11 usr %, $12 sys %, $13 read ms, $14 write ms
	_capped=0
	[ "${13:-0}" -ge $((BENCH_FIO_CAP * 1000 - 500)) ] 2>/dev/null && _capped=1
	[ "${14:-0}" -ge $((BENCH_FIO_CAP * 1000 - 500)) ] 2>/dev/null && _capped=1
	printf 'BENCH {"type":"result","rep":%s,"fs":"%s","bs":%s,"wl":"%s","ok":%s,"bytes":%s,"files":%s,"usec":%s,"wall_usec":%s,' \
		"$1" "$2" "$3" "$4" "$5" "$6" "$7" $((e_t - b_t)) $((o_e - o_b))
	printf '"rd_ios":%s,"rd_sect":%s,"wr_ios":%s,"wr_sect":%s,"fl_ios":%s,' \
		$((e_rio - b_rio)) $((e_rs - b_rs)) $((e_wio - b_wio)) $((e_ws - b_ws)) $((e_fio - b_fio))
	printf '"cpu":{"user":%s,"nice":%s,"sys":%s,"idle":%s,"iowait":%s,"irq":%s,"softirq":%s},' \
		$((e_user - b_user)) $((e_nice - b_nice)) $((e_sys - b_sys)) $((e_idle - b_idle)) \
		$((e_iow - b_iow)) $((e_irq - b_irq)) $((e_sirq - b_sirq))
	printf '"fio":{"err":%s,"usr_pct":%s,"sys_pct":%s,"read_ms":%s,"write_ms":%s,"capped":%s}}\n' \
		"${8:-0}" "${11:-0}" "${12:-0}" "${13:-0}" "${14:-0}" "$_capped"
	# A human line too.
	awk -v b="$6" -v us=$((e_t - b_t)) -v wio=$((e_wio - b_wio)) -v ws=$((e_ws - b_ws)) \
		-v t=$(( (e_user - b_user) + (e_nice - b_nice) + (e_sys - b_sys) + (e_irq - b_irq) + (e_sirq - b_sirq) )) \
		-v what="$2/$3 $4 rep $1" 'BEGIN {
		mib = b / 1048576; s = us / 1e6
		printf "%-28s %9.2f MiB/s %8.2f s  %7d writes avg %7.1f KiB  cpu %7.1f ms/MiB\n", what,
			(s > 0 ? mib / s : 0), s, wio, (wio ? ws * 512 / wio / 1024 : 0), (mib > 0 ? t * 10 / mib : 0) }'
}

# measure REP FS BS WL COMMAND...: sync, drop the caches, run COMMAND (a
# fio job), print its result.  COMMAND's status is returned; fio's error
# field or a missing snapshot counts as a failure too.
measure() {
	_r=$1 _f=$2 _b=$3 _w=$4
	shift 4
	drop_caches
	o_b=$(now_us)
	"$@"
	_rc=$?
	o_e=$(now_us)
	set -- $(fio_fields)
	_err=$1
	_bytes=$(( ($2 + $3) * 1024 ))
	_files=0
	[ "$_w" != smallfiles ] || _files=$(( $3 / BENCH_SMALL_KB ))
	_ok=1
	if ! load_snap "$BENCH_TMP/snap.begin" b || ! load_snap "$BENCH_TMP/snap.end" e; then
		echo "$_w on $_f/$_b: fio did not run the snapshots (exec_prerun/exec_postrun)"
		_ok=0
		load_snap "$BENCH_TMP/snap.begin" b || b_t=0 b_rio=0 b_rs=0 b_wio=0 b_ws=0 b_fio=0 b_user=0 b_nice=0 b_sys=0 b_idle=0 b_iow=0 b_irq=0 b_sirq=0
		load_snap "$BENCH_TMP/snap.end" e || e_t=$b_t e_rio=$b_rio e_rs=$b_rs e_wio=$b_wio e_ws=$b_ws e_fio=$b_fio e_user=$b_user e_nice=$b_nice e_sys=$b_sys e_idle=$b_idle e_iow=$b_iow e_irq=$b_irq e_sirq=$b_sirq
	fi
	if [ "$_rc" != 0 ] || [ "$_err" != 0 ]; then
		_ok=0
		echo "$_w on $_f/$_b failed: status $_rc, fio error $_err"
		tail -n 5 "$BENCH_TMP/fio.err" 2>/dev/null
	fi
	emit "$_r" "$_f" "$_b" "$_w" "$_ok" "$_bytes" "$_files"
	[ "$_ok" = 1 ]
}

# ---- the workloads on a mounted filesystem --------------------------------

seqsize() { echo "${BENCH_SEQ_MB}M"; }

# need_file: F exists with its full size (when seqwrite did not run first).
need_file() {
	[ "$(stat -c %s "$F" 2>/dev/null)" = $((BENCH_SEQ_MB * 1048576)) ] && return 0
	rm -f "$F"
	fio_job prep --filename="$F" --rw=write --bs=1M --size="$(seqsize)" --end_fsync=1 --ioengine=psync
}

wl_seqwrite() {
	fio_job seqwrite --filename="$F" --rw=write --bs=1M --size="$(seqsize)" --end_fsync=1 --ioengine=psync
}
wl_seqread() {
	fio_job seqread --filename="$F" --rw=read --bs=1M --size="$(seqsize)" --ioengine=psync
}
wl_randread() {
	fio_job randread --filename="$F" --rw=randread --bs=4k --size="$(seqsize)" \
		--io_size=$((BENCH_RAND_IOS * 4))k --ioengine=psync
}
wl_randwrite4k() {
	fio_job randwrite4k --filename="$F" --rw=randwrite --bs=4k --size="$(seqsize)" \
		--io_size=$((BENCH_RAND_IOS * 4))k --fsync="$BENCH_FSYNC_EVERY" --end_fsync=1 --ioengine=psync
}
wl_randwrite1k() {
	fio_job randwrite1k --filename="$F" --rw=randwrite --bs=1k --size="$(seqsize)" \
		--io_size="$BENCH_RAND_IOS"k --fsync="$BENCH_FSYNC_EVERY" --end_fsync=1 --ioengine=psync
}
wl_dsync_qd1() {
	fio_job dsync_qd1 --filename="$F" --rw=randwrite --bs=4k --size="$(seqsize)" \
		--io_size=$((BENCH_DSYNC_IOS * 4))k --ioengine=libaio --iodepth=1 --sync=dsync
}
wl_dsync_qd16() {
	fio_job dsync_qd16 --filename="$F" --rw=randwrite --bs=4k --size="$(seqsize)" \
		--io_size=$((BENCH_DSYNC_IOS * 4))k --ioengine=libaio --iodepth=16 --sync=dsync
}
wl_mmap() {
	fio_job mmap --filename="$F" --rw=randwrite --bs=4k --size="$(seqsize)" \
		--io_size=$((BENCH_RAND_IOS * 4))k --ioengine=mmap --fsync="$BENCH_FSYNC_EVERY" --end_fsync=1
}
wl_smallfiles() {
	BENCH_SNAP_SYNC=$BENCH_MNT/small
	fio_job smallfiles --directory="$BENCH_MNT/small" \
		--nrfiles="$BENCH_SMALL_FILES" --filesize="$BENCH_SMALL_KB"k --bs="$BENCH_SMALL_KB"k \
		--rw=write --ioengine=psync --create_on_open=1 --openfiles=1 --file_service_type=sequential
	_st=$?
	BENCH_SNAP_SYNC=
	return $_st
}

# run_workload REP FS BS WL: set up what WL needs (unmeasured), measure it.
run_workload() {
	case "$4" in
	seqwrite) rm -f "$F" ;;
	smallfiles) rm -rf "$BENCH_MNT/small"; mkdir "$BENCH_MNT/small" ;;
	*) need_file || { echo "could not write $F for $4"; cat "$BENCH_TMP/fio.err"; return 1; } ;;
	esac
	measure "$1" "$2" "$3" "$4" "wl_$4"
	_st=$?
	[ "$4" != smallfiles ] || rm -rf "$BENCH_MNT/small"
	return $_st
}

# ---- the raw disk ---------------------------------------------------------

raw_job() {
	_n=$1
	shift
	fio_job "$_n" --filename="$BENCH_DEV" --direct=1 --ioengine=libaio --size="$(seqsize)" "$@"
}
wl_raw_seqwrite() { raw_job raw_seqwrite --rw=write --bs=1M --iodepth=8 --end_fsync=1; }
wl_raw_seqread() { raw_job raw_seqread --rw=read --bs=1M --iodepth=8; }
wl_raw_randwrite_qd1() { raw_job raw_randwrite_qd1 --rw=randwrite --bs=4k --iodepth=1 --io_size=$((BENCH_RAND_IOS * 4))k; }
wl_raw_randwrite_qd16() { raw_job raw_randwrite_qd16 --rw=randwrite --bs=4k --iodepth=16 --io_size=$((BENCH_RAND_IOS * 4))k; }
wl_raw_randread() { raw_job raw_randread --rw=randread --bs=4k --iodepth=1 --io_size=$((BENCH_RAND_IOS * 4))k; }

unmount_dev() {
	while grep -q "^$BENCH_DEV " /proc/mounts; do
		umount "$BENCH_DEV" || return 1
	done
}

bench_raw() {
	rep=$1
	unmount_dev || fail "$BENCH_DEV is mounted and will not unmount"
	bad=0
	for wl in $BENCH_RAW; do
		measure "$rep" raw 0 "$wl" "wl_$wl" || bad=$((bad + 1))
	done
	[ $bad = 0 ] || fail "$bad raw workloads failed"
}

# ---- one filesystem -------------------------------------------------------

mkfs_bench() {
	case "$1" in
	rbfs) mkfs.rbfs -q -f -b "$2" "$BENCH_DEV" ;;
	ext2) mkfs.ext2 -q -F -b "$2" -E nodiscard "$BENCH_DEV" ;;
	ext4) mkfs.ext4 -q -F -b "$2" -E lazy_itable_init=0,lazy_journal_init=0,nodiscard "$BENCH_DEV" ;;
	ext4nj) mkfs.ext4 -q -F -b "$2" -O ^has_journal -E lazy_itable_init=0,nodiscard "$BENCH_DEV" ;;
	*) echo "unknown filesystem $1"; return 1 ;;
	esac
}

fs_type() {
	case "$1" in ext4nj) echo ext4 ;; *) echo "$1" ;; esac
}

have_fs() {
	case "$1" in
	rbfs) command -v mkfs.rbfs >/dev/null && grep -qw rbfs /proc/filesystems ;;
	ext2) command -v mkfs.ext2 >/dev/null && grep -qw ext2 /proc/filesystems ;;
	ext4|ext4nj) command -v mkfs.ext4 >/dev/null && grep -qw ext4 /proc/filesystems ;;
	*) return 1 ;;
	esac
}

bench_fs() {
	fs=$1 bs=$2 rep=$3
	if ! have_fs "$fs"; then
		echo "$fs is not available (mkfs or the kernel's filesystem type missing)"
		exit 77
	fi
	unmount_dev || fail "$BENCH_DEV is mounted and will not unmount"
	mkfs_bench "$fs" "$bs" < /dev/null > "$BENCH_TMP/mkfs.out" 2>&1 || { cat "$BENCH_TMP/mkfs.out"; fail "mkfs $fs -b $bs failed"; }
	mkdir -p "$BENCH_MNT"
	mount -t "$(fs_type "$fs")" "$BENCH_DEV" "$BENCH_MNT" || fail "mount $fs failed"
	bad=0
	for wl in $BENCH_WORKLOADS; do
		run_workload "$rep" "$fs" "$bs" "$wl" || bad=$((bad + 1))
	done
	rm -f "$F"
	umount "$BENCH_MNT" || fail "umount $fs failed"
	if [ "$fs" = rbfs ] && [ "$BENCH_FSCK" = 1 ]; then
		fsck_clean "$BENCH_DEV"
	fi
	[ $bad = 0 ] || fail "$bad workloads failed on $fs/$bs"
}

# ---- the scenario ---------------------------------------------------------

bench_meta() {
	_mem=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)
	_fio=$(fio --version 2>/dev/null)
	_e2=$(mkfs.ext4 -V 2>&1 | head -n1)
	printf 'BENCH {"type":"meta","kernel":"%s","ncpu":%s,"mem_kb":%s,"user_hz":100,"dev":"%s","dev_mb":%s,' \
		"$(uname -r)" "$(nproc)" "${_mem:-0}" "$BENCH_DEV" $(( $(cat "/sys/block/$_bdev/size") / 2048 ))
	printf '"reps":%s,"fs":"%s","bs":"%s","workloads":"%s","raw":"%s",' \
		"$BENCH_REPS" "$BENCH_FS" "$BENCH_BS" "$BENCH_WORKLOADS" "$BENCH_RAW"
	printf '"seq_mb":%s,"rand_ios":%s,"dsync_ios":%s,"fsync_every":%s,"small_files":%s,"small_kb":%s,"fio_cap":%s,"budget_s":%s,' \
		"$BENCH_SEQ_MB" "$BENCH_RAND_IOS" "$BENCH_DSYNC_IOS" "$BENCH_FSYNC_EVERY" \
		"$BENCH_SMALL_FILES" "$BENCH_SMALL_KB" "$BENCH_FIO_CAP" "$BENCH_BUDGET"
	printf '"dirty_ratio":%s,"dirty_background_ratio":%s,"dirty_background_bytes":%s,"dirty_expire_cs":%s,"quick":%s,"fio":"%s","mke2fs":"%s"}\n' \
		"$(cat /proc/sys/vm/dirty_ratio)" "$(cat /proc/sys/vm/dirty_background_ratio)" \
		"$(cat /proc/sys/vm/dirty_background_bytes)" "$(cat /proc/sys/vm/dirty_expire_centisecs)" \
		"${BENCH_QUICK:-0}" "$_fio" "$_e2"
}

test_bench_setup() {
	if [ "$BENCH_LOAD_MODULE" = 1 ]; then
		insmod "$RBFS_KO"
		module_loaded || fail "rbfs not in /proc/modules after insmod"
	fi
	[ -b "$BENCH_DEV" ] || fail "$BENCH_DEV is not a block device"
	[ -r "$BENCH_STAT" ] || fail "no $BENCH_STAT"
	command -v fio >/dev/null || fail "fio is not in the guest (mkinitramfs.sh with RBFS_BENCH_TOOLS=1)"
	case "$EPOCHREALTIME" in
	*.??????) ;;
	*) fail "this shell has no \$EPOCHREALTIME (the bench's clock): '$EPOCHREALTIME'" ;;
	esac
	write_snap_script
	if [ "$BENCH_DIRTY_BG_MB" != 0 ]; then
		echo $((BENCH_DIRTY_BG_MB * 1048576)) > /proc/sys/vm/dirty_background_bytes
	fi
	# fio keeps its job table in SysV shared memory.
	if ! fio --name=probe --filename="$BENCH_TMP/fio-probe" --size=64k --bs=4k --rw=write \
		--output-format=terse --output="$BENCH_TMP/fio.probe" > "$BENCH_TMP/fio.err" 2>&1; then
		cat "$BENCH_TMP/fio.err"
		fail "fio does not run here (the guest kernel needs CONFIG_SYSVIPC=y for fio's shmget)"
	fi
	rm -f "$BENCH_TMP/fio-probe"
	for fs in $BENCH_FS; do
		have_fs "$fs" || echo "note: $fs is not available; its tests will be skipped"
	done
	bench_meta
}

test_bench_unload() {
	[ "$BENCH_LOAD_MODULE" = 1 ] || return 0
	unmount_dev
	rmmod rbfs
}

# rotate N WORDS...: the words starting at the Nth (0-based), wrapping.
rotate() {
	_n=$1
	shift
	_i=0 _head='' _tail=''
	for _x in "$@"; do
		if [ $_i -lt "$_n" ]; then _tail="$_tail $_x"; else _head="$_head $_x"; fi
		_i=$((_i + 1))
	done
	echo $_head $_tail
}

skip_budget() {
	echo "the time budget (BENCH_BUDGET=${BENCH_BUDGET}s) would be exceeded"
	exit 77
}

scenario_main() {
	set -- $BENCH_FS
	_nfs=$#
	set -- $BENCH_BS
	_nbs=$#
	_nraw=0
	[ -z "$BENCH_RAW" ] || _nraw=1
	ktap_plan $((2 + BENCH_REPS * (_nraw + _nfs * _nbs)))
	t bench.setup test_bench_setup
	_start=$(now_us)
	_skip=
	rep=1
	while [ $rep -le "$BENCH_REPS" ]; do
		if [ $rep -gt 1 ] && [ -z "$_skip" ]; then
			_el=$(( ($(now_us) - _start) / 1000000 ))
			if [ $((_el + _el / (rep - 1))) -gt "$BENCH_BUDGET" ]; then
				_skip=1
				echo "# BENCH {\"type\":\"budget\",\"budget_s\":$BENCH_BUDGET,\"elapsed_s\":$_el,\"reps_done\":$((rep - 1)),\"reps_planned\":$BENCH_REPS}"
			fi
		fi
		_run=bench_raw
		[ -z "$_skip" ] || _run=skip_budget
		[ -z "$BENCH_RAW" ] || t "bench.rep$rep.raw" $_run "$rep"
		# The filesystems' order rotates with the repetition, so none is
		# always first after the raw writes or after a given neighbour.
		_run=bench_fs
		[ -z "$_skip" ] || _run=skip_budget
		for bs in $BENCH_BS; do
			for fs in $(rotate $(( (rep - 1) % _nfs )) $BENCH_FS); do
				t "bench.rep$rep.$fs-$bs" $_run "$fs" "$bs" "$rep"
			done
		done
		rep=$((rep + 1))
	done
	echo "# bench: $(( ($(now_us) - _start) / 1000000 )) s for the workloads"
	t bench.unload test_bench_unload
	scenario_end
}
