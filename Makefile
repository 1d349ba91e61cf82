# rbfs: the one entry point for building, running and testing.
#
#   make run      set up everything, boot the guest, run the demo scenario
#   make check    set up everything, run every test; ends with "N passed, N failed"
#   make mutants  reintroduce each writeback hazard in turn, show its test catching it
#   make soak [DURATION=s] [CUTS=n]   the reliability suite for longer
#   make shell    the same guest with an interactive shell
#   make run GUEST_SCRIPT=script.sh [GUEST_FILES=dir]   your own workload
#   make artifacts   name=path of the kernel, module, initramfs and tools
#   make bench    lean kernel: rbfs vs ext2/ext4 and the raw disk (BENCH_QUICK=1: short)
#   make fstests [FSTESTS="-g quick"] [FSTESTS_FS="rbfs ext2"] [FSTESTS_BS="1024 4096"]
#                 fstests (xfstests) in the guest; results in out/fstests/<date>/
#
# KCONFIG=debug (default: KASAN, lockdep, KUnit, ...) or lean (benchmarks).

SHELL := /bin/bash
KCONFIG ?= debug
TIMEOUT ?= 900
GUEST_SCRIPT ?=
GUEST_FILES ?=

.PHONY: all deps kernel module tools initramfs run shell check mutants bench fstests artifacts host-test clean distclean

all: initramfs

deps:
	@scripts/deps.sh

kernel: deps
	@scripts/kernel.sh $(KCONFIG)

module: kernel
	@scripts/module.sh $(KCONFIG)

tools: deps
	@scripts/tools.sh

initramfs: module tools
	@qemu/mkinitramfs.sh $(KCONFIG)

run: initramfs
	@qemu/run.sh --kernel $(KCONFIG) --timeout $(TIMEOUT) \
		$(if $(GUEST_SCRIPT),--script $(GUEST_SCRIPT),--scenario demo) \
		$(if $(GUEST_FILES),--files $(GUEST_FILES))

shell: initramfs
	@qemu/run.sh --kernel $(KCONFIG) --interactive $(if $(GUEST_FILES),--files $(GUEST_FILES))

check:
	@scripts/check.sh

# The benchmark, always on the lean kernel; results in out/bench/<date>/
# (scripts/bench.sh lists its BENCH_* settings).
bench:
	@scripts/bench.sh

# fstests against rbfs (scripts/fstests.sh lists its FSTESTS_* settings).
fstests:
	@scripts/fstests.sh

# Each writeback hazard reintroduced in turn, and shown caught by its test.
mutants: deps
	@scripts/mutants.sh

# The reliability suite run longer: make soak DURATION=3600 [CUTS=12]
DURATION ?= 1800
CUTS ?=
soak: deps
	@scripts/soak.sh $(DURATION) $(CUTS)

# Host unit tests only (no kernel, no guest).
host-test:
	@cd tools && cargo test --locked --workspace

artifacts: initramfs
	@scripts/artifacts.sh $(KCONFIG)

clean:
	rm -rf out tools/target

# Also drops the kernel build cache (a cold rebuild takes ~15 minutes).
distclean: clean
	rm -rf "$${RBFS_CACHE:-$${XDG_CACHE_HOME:-$$HOME/.cache}/rbfs}"
