// SPDX-License-Identifier: GPL-2.0

//! Write bios of folio buffers, and their completion.
//!
//! C reference: `end_buffer_async_write` in
//! [`fs/buffer.c`](srctree/fs/buffer.c), `ext4_finish_bio` in
//! [`fs/ext4/page-io.c`](srctree/fs/ext4/page-io.c).
//!
//! A [`WriteBio`] takes only [`Submittable`] buffers (marked
//! `BH_Async_Write`, their folio under writeback), so every folio a write
//! bio covers is pinned by its writeback until the bio's completion ends
//! it.  The completion is this module's, not the filesystem's: for each
//! folio segment of the bio, under the folio's first buffer's uptodate
//! lock, the buffers the segment covers are completed (up to date, or
//! marked with a write error), lose their marks and are unlocked, and the
//! folio's writeback ends only if no buffer of it is still marked, so
//! exactly one completion ends it whatever the order of the bios.  An error
//! is recorded in the mapping (`mapping_set_error`) before writeback ends,
//! so `fsync` sees it; the filesystem hears of it through
//! [`WriteCompletion::write_error`], for its messages.
//!
//! A `WriteBio` dropped without being submitted gives its buffers back:
//! dirty again, their marks cleared, writeback ended where nothing else is
//! in flight.
//!
//! The completion's tools are the kernel crate's own: a filesystem cannot
//! complete a buffer, or end a folio's writeback, by itself.
//!
//! ```ignore
//! // compile_fail: E0603
//! use kernel::fs::folio::UptodateLock; // ERROR
//! ```

use super::folio::{Folio, Submittable};
use super::sb::SuperBlock;
use super::FileSystem;
use crate::bindings;
use crate::block::bio::{Bio, EndIo, NewBio};
use crate::error::{Error, Result};
use crate::str::CStr;
use core::marker::PhantomData;
use core::mem::ManuallyDrop;

/// A failed write, as the completion reports it to the filesystem.
pub struct WriteError<'a> {
    /// The error.
    pub error: Error,
    /// The name of the device.
    pub device: &'a CStr,
    /// The inode number of the file the folio belongs to.
    pub ino: u64,
    /// The first sector of the bio.
    pub sector: u64,
}

/// What a filesystem adds to the completion of its write bios.
pub trait WriteCompletion: 'static {
    /// A write failed.  Called once per folio segment of the failed bio, in
    /// interrupt context (no sleeping), after the error was recorded in the
    /// mapping and before the folio's writeback may end.  For messages: the
    /// error reaches `fsync` without the filesystem's help.
    fn write_error(_err: &WriteError<'_>) {}
}

/// A write bio of folio buffers being built; see the module documentation.
///
/// # Invariants
///
/// `bio` is initialised until `submit` or `drop` takes it; every folio
/// range in it is that of a buffer marked by the holder, never submitted.
pub struct WriteBio<C: WriteCompletion> {
    bio: ManuallyDrop<NewBio<Completion<C>>>,
}

impl<C: WriteCompletion> WriteBio<C> {
    /// Allocates a write bio for `sb`'s device, starting at block `block`
    /// (in units of the block size), with room for `nr_vecs` segments and
    /// request flags `flags` (from
    /// [`super::writeback::WritebackControl::write_flags`]).  Submit any
    /// earlier bio first; `may_wait` as for
    /// [`crate::block::bio::NewBio::alloc_write`].
    pub fn new<T: FileSystem>(
        sb: &SuperBlock<T>,
        block: u64,
        nr_vecs: u16,
        flags: u32,
        may_wait: bool,
    ) -> Result<Self> {
        let sector = block << (sb.block_size().trailing_zeros() - 9);
        // SAFETY: The device is open for the life of the super block, which
        // outlives the I/O: unmount writes back and waits for everything.
        let bio = unsafe { NewBio::alloc_write(sb.bdev_raw(), sector, nr_vecs, flags, may_wait)? };
        // INVARIANT: A new, empty bio.
        Ok(Self {
            bio: ManuallyDrop::new(bio),
        })
    }

    /// The sector just past the data added so far: the next block is
    /// contiguous if it starts there.
    pub fn end_sector(&self) -> u64 {
        self.bio.end_sector()
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        self.bio.is_empty()
    }

    /// Adds a marked buffer's block; gives the buffer back if the bio is
    /// full.  Once added, the buffer belongs to the bio: its completion, or
    /// the bio's drop, releases it.
    pub fn add<'a>(
        &mut self,
        buffer: Submittable<'a>,
    ) -> core::result::Result<(), Submittable<'a>> {
        let bh = buffer.head();
        let (folio, size, offset) = (bh.folio_raw(), bh.size(), bh.offset_in_folio());
        // SAFETY: The range is the buffer's, inside its folio; the folio
        // is pinned by its writeback, which the buffer's mark keeps from
        // ending until the completion (or our drop) releases it.
        if unsafe { self.bio.add_folio(folio, size, offset) } {
            // The bio owns the mark now.
            let _ = buffer.into_head();
            Ok(())
        } else {
            Err(buffer)
        }
    }

    /// Submits the bio.  It may complete before this returns; nothing of
    /// what it carries can be reached afterwards.
    pub fn submit(self) {
        let mut me = ManuallyDrop::new(self);
        // SAFETY: `me` is never dropped, so the bio is taken once (type
        // invariant: initialised until now).
        let bio = unsafe { ManuallyDrop::take(&mut me.bio) };
        bio.submit();
    }
}

impl<C: WriteCompletion> Drop for WriteBio<C> {
    fn drop(&mut self) {
        for seg in self.bio.folio_segments() {
            let (from, to) = (seg.offset, seg.offset + seg.length);
            // Every buffer in the bio came from a `Submittable`, and this bio
            // was never submitted.  Writeback ends here if nothing else of
            // the folio is in flight.
            // SAFETY: The folio is under writeback, pinned while it is marked.
            let folio = unsafe { Folio::from_raw(seg.folio.as_ptr()) };
            // SAFETY: The covered buffers are marked by us, never submitted.
            unsafe { folio.give_back(|_, bh| covers(from, to, bh.offset_in_folio()), true) };
        }
        // SAFETY: Initialised (type invariant) and dropped once, here; its
        // buffers were given back above.
        unsafe { ManuallyDrop::drop(&mut self.bio) };
    }
}

fn covers(from: usize, to: usize, off: usize) -> bool {
    off >= from && off < to
}

/// The completion of [`WriteBio`]s whose filesystem's part is `C`.
struct Completion<C>(PhantomData<C>);

impl<C: WriteCompletion> EndIo for Completion<C> {
    fn end_io(bio: &Bio) {
        let status = bio.status();
        for seg in bio.folio_segments() {
            // SAFETY: The bio was built by `WriteBio::add` from
            // `Submittable` buffers only, so its folios are under writeback,
            // pinned until the last of their buffers completes: the
            // segment's buffers are among those, and not completed yet.
            let folio = unsafe { Folio::from_raw(seg.folio.as_ptr()) };
            if let Err(error) = status {
                // Before ending writeback: fsync must see it.
                // SAFETY: A folio under writeback stays in its mapping,
                // whose host and super block are pinned by the writeback.
                let (ino, device) = unsafe {
                    let mapping = folio.mapping_raw();
                    bindings::mapping_set_error(mapping, error.to_errno());
                    let host = (*mapping).host;
                    (
                        (*host).i_ino as u64,
                        CStr::from_char_ptr((*(*host).i_sb).s_id.as_ptr()),
                    )
                };
                C::write_error(&WriteError {
                    error,
                    device,
                    ino,
                    sector: bio.sector(),
                });
            }
            // SAFETY: Under writeback, and this is the completion of some of
            // its marked buffers (see above).
            let Some(lock) = (unsafe { folio.uptodate_lock() }) else {
                continue;
            };
            let (from, to) = (seg.offset, seg.offset + seg.length);
            for bh in lock.buffers() {
                if covers(from, to, bh.offset_in_folio()) && bh.is_async_write() {
                    // SAFETY: A marked buffer in this bio's range of the
                    // folio: one this bio carried (each buffer of a folio is
                    // in at most one bio at a time, as it stays marked and
                    // locked until its completion).
                    unsafe { lock.complete_write(bh, status.is_ok()) };
                }
            }
            // Ends writeback if this was the folio's last buffer in flight;
            // nothing of the folio is touched afterwards.
            lock.finish();
        }
    }
}
