// SPDX-License-Identifier: GPL-2.0

//! Writeback control and the folio iteration of `->writepages`.
//!
//! C header: [`include/linux/writeback.h`](srctree/include/linux/writeback.h).

use super::folio::{Folio, Locked};
use crate::bindings;
use crate::error::{Error, Result};
use crate::types::Opaque;

/// A `struct writeback_control`: what the caller of writeback wants.
#[repr(transparent)]
pub struct WritebackControl(Opaque<bindings::writeback_control>);

impl WritebackControl {
    /// # Safety
    ///
    /// `wbc` is valid and exclusively ours for `'a` (the writeback call).
    pub unsafe fn from_raw<'a>(wbc: *mut bindings::writeback_control) -> &'a mut Self {
        // SAFETY: Transparent wrapper; validity per the safety requirements.
        unsafe { &mut *wbc.cast() }
    }

    pub(crate) fn as_raw(&mut self) -> *mut bindings::writeback_control {
        self.0.get()
    }

    /// Whether this is data-integrity writeback (`WB_SYNC_ALL`: fsync,
    /// sync): every dirty folio must be written and waited for.
    pub fn sync_all(&self) -> bool {
        // SAFETY: `sync_mode` is fixed for the call.
        unsafe { (*self.0.get()).sync_mode == bindings::writeback_sync_modes_WB_SYNC_ALL }
    }

    /// The request flags for its bios (`REQ_SYNC` under `WB_SYNC_ALL`,
    /// `REQ_BACKGROUND` for background writeback).
    pub fn write_flags(&self) -> u32 {
        // SAFETY: Reads fields of a valid control.
        unsafe { bindings::wbc_to_write_flags(self.0.get()) }
    }
}

/// The `writeback_iter` loop over a mapping's dirty folios.
///
/// Each folio comes locked, still in the mapping, with its dirty bit
/// cleared for I/O (the xarray's dirty tag stays until writeback starts, so
/// a concurrent `fdatasync` still finds it).  Under `WB_SYNC_ALL` the page
/// cache waits for earlier writeback of the folio before handing it out.
/// The loop must run to its end: dropping an [`Iter`] early drains it,
/// redirtying and unlocking the folios it still hands out.
pub struct Iter<'a> {
    mapping: *mut bindings::address_space,
    wbc: &'a mut WritebackControl,
    folio: *mut bindings::folio,
    error: core::ffi::c_int,
    done: bool,
}

impl<'a> Iter<'a> {
    /// # Safety
    ///
    /// `mapping` is the mapping being written back with `wbc`, valid for `'a`.
    pub unsafe fn new(
        mapping: *mut bindings::address_space,
        wbc: &'a mut WritebackControl,
    ) -> Self {
        Self {
            mapping,
            wbc,
            folio: core::ptr::null_mut(),
            error: 0,
            done: false,
        }
    }

    /// The next folio to write, locked; `None` at the end.  Unlock it (drop
    /// the guard) before asking for the next: the borrow enforces it.
    pub fn next_folio(&mut self) -> Option<(Locked<'_>, &mut WritebackControl)> {
        if self.done {
            return None;
        }
        // SAFETY: `mapping` and `wbc` are valid (constructor requirements);
        // `folio` is null or the previous folio returned by this loop, and
        // `error` the result of writing it.
        let folio = unsafe {
            bindings::writeback_iter(self.mapping, self.wbc.as_raw(), self.folio, &mut self.error)
        };
        self.folio = folio;
        if folio.is_null() {
            self.done = true;
            return None;
        }
        // SAFETY: `writeback_iter` returns the folio locked, in the mapping
        // (which pins it while locked), and not under writeback (it waited
        // for, or skipped, a folio under writeback); its lock is ours to
        // release.
        let locked = unsafe { Locked::assume_locked(Folio::from_raw(folio)) };
        Some((locked, &mut *self.wbc))
    }

    /// Records the error of writing the current folio (reported to the
    /// caller of writeback at the end of the loop).
    pub fn set_error(&mut self, e: Error) {
        self.error = e.to_errno();
    }

    /// Ends the loop and returns its result.  Under `WB_SYNC_ALL` every
    /// folio must have been written: if the filesystem stopped early and
    /// folios were left for the drain, they are redirtied and the result
    /// is an error (the filesystem's, or `EIO`), so that `fsync` cannot
    /// succeed with them dirty.
    pub fn finish(mut self) -> Result {
        let left = self.drain();
        if self.error < 0 {
            Err(Error::from_errno(self.error))
        } else if left > 0 && self.wbc.sync_all() {
            Err(crate::error::code::EIO)
        } else {
            Ok(())
        }
    }

    /// Redirties and unlocks the folios the loop still hands out; returns
    /// how many there were.
    fn drain(&mut self) -> usize {
        let mut n = 0;
        while let Some((folio, wbc)) = self.next_folio() {
            folio.redirty(wbc);
            n += 1;
        }
        n
    }
}

impl Drop for Iter<'_> {
    fn drop(&mut self) {
        let _ = self.drain();
    }
}
