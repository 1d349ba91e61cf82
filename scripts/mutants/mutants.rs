// SPDX-License-Identifier: GPL-2.0

//! Mutants: the five writeback hazards and the ordered-data rule,
//! reintroduced one at a time, for `make mutants` only.  This file is not
//! part of the module's sources: scripts/module.sh copies it into a mutant's
//! copy of the module beside the mutant's patch (`<name>.patch` here), and
//! `--cfg rbfs_mutant_<name>` selects the helpers that mutant uses.
//!
//! Each mutant is the bug as Linux filesystems have had it, plus, where the
//! race is narrow, a short sleep that stands in for an unlucky preemption so
//! that the scenario hits it every time.  Four of the five need `unsafe`:
//! the `kernel::fs` abstractions make those orders impossible to express in
//! safe code, which is the point of them.  That is also why these helpers
//! live outside the module's sources, which contain no `unsafe`.
//!
//! - `touch_after_submit`: after a folio's last buffer is submitted, clear
//!   the first buffer's dirty bit (as old `__block_write_full_page` did with
//!   buffer state after `submit_bh`).  A write that redirtied the buffer in
//!   the meantime is lost; a freed buffer is a use after free.
//! - `submit_before_mark`: mark and submit buffers one by one, so an early
//!   completion finds no other buffer in flight and ends writeback before
//!   the next buffer is even marked; the next completion ends it again.
//! - `early_sync_completion`: `fsync` (and so O_SYNC/O_DSYNC writes) starts
//!   writeback and returns without waiting for it.
//! - `clear_tag_early`: the folio's dirty tag is cleared before writeback
//!   starts, so an fsync in that window neither writes nor waits for it.
//! - `wait_with_open_bio`: the next bio is allocated from the shared pool
//!   before the open one is submitted (safe code: it is only an order).
//! - `publish_early`: a new data block's pointer goes into the map as soon
//!   as the block is allocated, as on ext2, instead of after its data is on
//!   the disk (`bmap::map_alloc`; safe code, and no code here).

#[allow(unused_imports)]
use kernel::bindings;

/// Sleeps for `ms` milliseconds: the stand-in for an unlucky preemption.
#[cfg(not(any(
    rbfs_mutant_early_sync_completion,
    rbfs_mutant_wait_with_open_bio,
    rbfs_mutant_publish_early
)))]
fn sleep_ms(ms: u32) {
    // SAFETY: `msleep` may sleep; all callers run in process context
    // without spinlocks held.
    unsafe { bindings::msleep(ms) };
}

/// `touch_after_submit`: called once a folio's last buffer is submitted,
/// with the first buffer as it was before writeback started.
#[cfg(rbfs_mutant_touch_after_submit)]
pub(crate) fn touch_after_submit(first: *mut bindings::buffer_head) {
    // The bug, done again and again over 20 ms so that a writer's redirty
    // lands in the window every few rounds (a single touch after 3 ms was
    // caught too rarely to be a dependable test).
    for _ in 0..20 {
        sleep_ms(1);
        // SAFETY: None: this is the bug.  The buffer may have been
        // redirtied, written back again, or freed since its last submission.
        unsafe { bindings::bh_clear_state(first, bindings::bh_state_bits_BH_Dirty) };
    }
}

/// `submit_before_mark`: writes one locked folio's dirty, mapped buffers
/// one at a time with `submit_bh` (completion: the kernel's own
/// `end_buffer_async_write`), and unlocks the folio.
#[cfg(rbfs_mutant_submit_before_mark)]
pub(crate) fn write_unmarked(folio: *mut bindings::folio, op_flags: u32) {
    // SAFETY: None for the order (this is the bug); otherwise the calls are
    // those of the old `__block_write_full_page`: the caller handed over
    // the folio lock, and the buffers are the folio's.
    unsafe {
        let first = bindings::folio_buffers(folio);
        let mut bh = first;
        let mut started = false;
        loop {
            let next = (*bh).b_this_page;
            if bindings::bh_test_state(bh, bindings::bh_state_bits_BH_Mapped)
                && bindings::bh_test_and_clear_state(bh, bindings::bh_state_bits_BH_Dirty)
            {
                bindings::lock_buffer(bh);
                bindings::mark_buffer_async_write(bh);
                if !started {
                    bindings::__folio_start_writeback(folio, false);
                    started = true;
                }
                bindings::submit_bh(bindings::req_op_REQ_OP_WRITE | op_flags, bh);
                sleep_ms(2);
            }
            if next == first {
                break;
            }
            bh = next;
        }
        if !started {
            bindings::__folio_start_writeback(folio, false);
            bindings::folio_end_writeback(folio);
        }
        bindings::folio_unlock(folio);
    }
}

/// `clear_tag_early`: clears the folio's dirty tag now, before writeback
/// starts, and dawdles.
#[cfg(rbfs_mutant_clear_tag_early)]
pub(crate) fn clear_tag_early(folio: *mut bindings::folio) {
    // SAFETY: The folio is locked and in its mapping; the xarray's lock is
    // taken with interrupts off as the page cache always takes it.  The
    // bug is clearing the tag at all before `__folio_start_writeback`.
    unsafe {
        let mapping = (*folio).__bindgen_anon_1.__bindgen_anon_1.mapping;
        let xa = &raw mut (*mapping).i_pages;
        // `spinlock_t` starts with its `raw_spinlock_t` (`rlock`).
        let lock = (&raw mut (*xa).xa_lock).cast::<bindings::raw_spinlock>();
        bindings::_raw_spin_lock_irq(lock);
        // XA_MARK_0 is PAGECACHE_TAG_DIRTY.
        bindings::__xa_clear_mark(xa, (*folio).__bindgen_anon_1.__bindgen_anon_1.index, 0);
        bindings::_raw_spin_unlock_irq(lock);
    }
    sleep_ms(5);
}

/// `early_sync_completion`: `fsync` that starts writeback of the range and
/// returns without waiting for it.
#[cfg(rbfs_mutant_early_sync_completion)]
unsafe extern "C" fn fsync_nowait(
    file: *mut bindings::file,
    start: bindings::loff_t,
    end: bindings::loff_t,
    _datasync: core::ffi::c_int,
) -> core::ffi::c_int {
    // SAFETY: The VFS passes an open file; the bug is not waiting.
    unsafe { bindings::filemap_fdatawrite_range((*file).f_mapping, start, end) }
}

/// The regular files' operations of the `early_sync_completion` mutant.
#[cfg(rbfs_mutant_early_sync_completion)]
pub(crate) static REG_FOPS: kernel::fs::file_ops::Ops<crate::sb::Rbfs> = {
    use kernel::fs::file_ops::Ops;
    // SAFETY: `file_ops::Ops` is a transparent wrapper of the C table.
    let mut raw: bindings::file_operations = unsafe {
        core::mem::transmute(Ops::<crate::sb::Rbfs>::read_write_regular::<
            crate::file::Mapper,
        >())
    };
    raw.fsync = Some(fsync_nowait);
    // SAFETY: As above.
    unsafe { core::mem::transmute::<bindings::file_operations, Ops<crate::sb::Rbfs>>(raw) }
};
