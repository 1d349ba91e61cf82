# rbfs: the one entry point for building, running and testing.
#
#   make run      set up everything, boot the guest, run the demo scenario
#   make check    set up everything, run every test; ends with "N passed, N failed"
#   make shell    the same guest with an interactive shell
#   make run GUEST_SCRIPT=script.sh [GUEST_FILES=dir]   your own workload
#   make artifacts   name=path of the kernel, module, initramfs and tools
#
# KCONFIG=debug (default: KASAN, lockdep, KUnit, ...) or lean (benchmarks).

SHELL := /bin/bash
KCONFIG ?= debug
TIMEOUT ?= 900
GUEST_SCRIPT ?=
GUEST_FILES ?=

.PHONY: all deps kernel module tools initramfs run shell check artifacts host-test clean distclean

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
