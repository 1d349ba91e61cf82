// SPDX-License-Identifier: GPL-2.0

//! Bios: block I/O requests, built, submitted and completed from Rust.
//!
//! C header: [`include/linux/bio.h`](srctree/include/linux/bio.h).
//!
//! A [`NewBio`] is owned by its builder until [`NewBio::submit`] consumes
//! it; from then on it belongs to the block layer, which may complete it
//! before `submit` returns.  Completion runs [`EndIo::end_io`] (in
//! interrupt context: it must not sleep) and then drops the bio.
//!
//! Allocation uses `fs_bio_set`.  A task must not allocate a bio while it
//! holds an earlier unsubmitted one from the same pool (the allocation may
//! wait for pool memory that only the completion of that bio returns), so
//! submit first, then allocate.

use crate::bindings;
use crate::error::{Error, Result};
use crate::types::Opaque;
use core::marker::PhantomData;
use core::ptr::NonNull;

/// A completed (or completing) bio, borrowed by [`EndIo::end_io`].
#[repr(transparent)]
pub struct Bio(Opaque<bindings::bio>);

impl Bio {
    /// The C `struct bio`.
    pub fn as_raw(&self) -> *mut bindings::bio {
        self.0.get()
    }

    /// The outcome of the I/O.
    pub fn status(&self) -> Result {
        // SAFETY: `bi_status` is final when the bio completes.
        let st = unsafe { (*self.as_raw()).bi_status };
        if st == 0 {
            return Ok(());
        }
        // SAFETY: `blk_status_to_errno` maps any status to an errno.
        Err(Error::from_errno(unsafe {
            bindings::blk_status_to_errno(st)
        }))
    }

    /// The first sector the bio was submitted for.
    pub fn sector(&self) -> u64 {
        // SAFETY: Read-only after completion.  (`bi_iter` has advanced past
        // the data by now; the sector saved before submission is in
        // `bi_private`, see `NewBio::submit`.)
        unsafe { (*self.as_raw()).bi_private as u64 }
    }

    /// The folio segments of the bio: each folio with the byte range of it
    /// the bio covers (`bio_for_each_folio_all`).
    pub fn folio_segments(&self) -> FolioSegments<'_> {
        // SAFETY: The bio is valid for `'_` and its vectors are intact.
        unsafe { FolioSegments::new(self.as_raw()) }
    }
}

/// Iterator over a bio's folio segments (`bio_for_each_folio_all`).
pub struct FolioSegments<'a> {
    bio: *mut bindings::bio,
    fi: bindings::folio_iter,
    started: bool,
    _p: PhantomData<&'a Bio>,
}

impl FolioSegments<'_> {
    /// # Safety
    ///
    /// `bio` is valid, with its vectors intact, for the iterator's life.
    unsafe fn new(bio: *mut bindings::bio) -> Self {
        // SAFETY: All-zero is a valid `folio_iter` for `bio_first_folio` to
        // fill in.
        let mut fi: bindings::folio_iter = unsafe { core::mem::zeroed() };
        // SAFETY: Per the safety requirements.
        unsafe { bindings::bio_first_folio(&mut fi, bio, 0) };
        FolioSegments {
            bio,
            fi,
            started: false,
            _p: PhantomData,
        }
    }
}

/// One folio segment of a bio.  The block layer does not pin the folio:
/// whoever built the bio knows what keeps it alive (for the filesystem's
/// write bios, the folio's writeback).
#[derive(Clone, Copy)]
pub struct FolioSegment {
    /// The folio.
    pub folio: NonNull<bindings::folio>,
    /// Byte offset of the segment in the folio.
    pub offset: usize,
    /// Length of the segment in bytes.
    pub length: usize,
}

impl Iterator for FolioSegments<'_> {
    type Item = FolioSegment;

    fn next(&mut self) -> Option<FolioSegment> {
        if self.started {
            // SAFETY: Continues the iteration `bio_first_folio` began. The
            // iterator reads the next folio pointer from the bio's vectors
            // (and `_next`, computed before the previous folio was yielded),
            // not from the previous folio, which may be gone.
            unsafe { bindings::bio_next_folio(&mut self.fi, self.bio) };
        }
        self.started = true;
        let folio = NonNull::new(self.fi.folio)?;
        Some(FolioSegment {
            folio,
            offset: self.fi.offset,
            length: self.fi.length,
        })
    }
}

/// Completion of a bio.
pub trait EndIo {
    /// Called once when the bio completes, in interrupt context (no
    /// sleeping, no sleeping locks).  The bio is freed afterwards.
    fn end_io(bio: &Bio);
}

/// A bio being built; owned until submitted (an unsubmitted bio is freed
/// when dropped).
pub struct NewBio<E: EndIo> {
    bio: NonNull<bindings::bio>,
    _p: PhantomData<E>,
}

// SAFETY: An unsubmitted bio is plain memory owned by its builder.
unsafe impl<E: EndIo> Send for NewBio<E> {}

impl<E: EndIo> NewBio<E> {
    /// Allocates a write bio for `bdev` starting at `sector`, with room
    /// for `nr_vecs` segments and request flags `flags`.
    ///
    /// With `may_wait`, sleeps for memory and then cannot fail (the bio
    /// set's reserve is used, and refilled as bios complete): submit any
    /// earlier bio first (see the module docs).  Without it, never sleeps
    /// and fails with `ENOMEM` when neither the slab nor the reserve has a
    /// bio now (for writeback that can come back later).  `GFP_NOIO`, as
    /// `fs/buffer.c` and ext4 allocate their write bios: the writer may be
    /// the one reclaim waits for, so reclaim must not start I/O of its own.
    ///
    /// # Safety
    ///
    /// `bdev` is an open block device that outlives the bio's I/O.
    pub unsafe fn alloc_write(
        bdev: *mut bindings::block_device,
        sector: u64,
        nr_vecs: u16,
        flags: u32,
        may_wait: bool,
    ) -> Result<Self> {
        let gfp = if may_wait {
            bindings::GFP_NOIO
        } else {
            bindings::GFP_NOWAIT | bindings::__GFP_NOWARN
        };
        // SAFETY: `bdev` per the safety requirements; `fs_bio_set` is the
        // kernel's bio set for filesystems.
        let bio = unsafe {
            bindings::bio_alloc_bioset(
                bdev,
                nr_vecs,
                bindings::req_op_REQ_OP_WRITE | flags,
                gfp,
                core::ptr::addr_of_mut!(bindings::fs_bio_set),
            )
        };
        let bio = NonNull::new(bio).ok_or(crate::error::code::ENOMEM)?;
        // SAFETY: A new bio is ours.
        unsafe { (*bio.as_ptr()).bi_iter.bi_sector = sector };
        Ok(Self {
            bio,
            _p: PhantomData,
        })
    }

    /// The sector just past the data added so far: the next block is
    /// contiguous if it starts there.
    pub fn end_sector(&self) -> u64 {
        // SAFETY: The bio is ours until submitted.
        unsafe {
            (*self.bio.as_ptr()).bi_iter.bi_sector
                + ((*self.bio.as_ptr()).bi_iter.bi_size as u64 >> 9)
        }
    }

    /// Whether nothing was added yet.
    pub fn is_empty(&self) -> bool {
        // SAFETY: As above.
        unsafe { (*self.bio.as_ptr()).bi_iter.bi_size == 0 }
    }

    /// Adds `len` bytes at `offset` of `folio` (`bio_add_folio`); returns
    /// whether they fit.
    ///
    /// # Safety
    ///
    /// The range lies inside the folio, and the folio stays pinned until
    /// the bio completes or, if it is never submitted, is dropped; what
    /// pins it is the caller's to release (in `E::end_io`, or before the
    /// drop, e.g. by walking [`Self::folio_segments`]).
    pub unsafe fn add_folio(
        &mut self,
        folio: *mut bindings::folio,
        len: usize,
        offset: usize,
    ) -> bool {
        // SAFETY: The bio is ours; the rest per the safety requirements.
        unsafe { bindings::bio_add_folio(self.bio.as_ptr(), folio, len, offset) }
    }

    /// The folio segments added so far.
    pub fn folio_segments(&self) -> FolioSegments<'_> {
        // SAFETY: The bio is ours and valid while borrowed.
        unsafe { FolioSegments::new(self.bio.as_ptr()) }
    }

    /// Submits the bio.  It may complete (and run `E::end_io`) before this
    /// returns; nothing of what it carries may be touched afterwards.
    pub fn submit(self) {
        let bio = core::mem::ManuallyDrop::new(self).bio.as_ptr();
        // SAFETY: The bio is ours; after `submit_bio` the block layer owns
        // it and calls `end_io_adapter` exactly once.  The start sector is
        // kept in `bi_private` for the completion (`bi_iter` advances).
        unsafe {
            (*bio).bi_private = (*bio).bi_iter.bi_sector as *mut core::ffi::c_void;
            (*bio).bi_end_io = Some(end_io_adapter::<E>);
            bindings::submit_bio(bio);
        }
    }
}

impl<E: EndIo> Drop for NewBio<E> {
    fn drop(&mut self) {
        // SAFETY: Never submitted (submit forgets `self`), so ours to free.
        unsafe { bindings::bio_put(self.bio.as_ptr()) };
    }
}

/// # Safety
///
/// Called by the block layer once, when a bio submitted by
/// [`NewBio::submit`] with this adapter completes.
unsafe extern "C" fn end_io_adapter<E: EndIo>(bio: *mut bindings::bio) {
    // SAFETY: `bio` is valid for the duration of the completion.
    E::end_io(unsafe { &*bio.cast::<Bio>() });
    // SAFETY: The completion owns the last reference.
    unsafe { bindings::bio_put(bio) };
}

/// Runs `f` with the task's block I/O plugged (`blk_start_plug` ..
/// `blk_finish_plug`), so the bios it submits reach the device together.
pub fn with_plug<R>(f: impl FnOnce() -> R) -> R {
    let plug = Opaque::<bindings::blk_plug>::uninit();
    // SAFETY: `plug` lives on this stack frame, at a fixed address, until
    // `blk_finish_plug` below; `blk_start_plug` initialises it.
    unsafe { bindings::blk_start_plug(plug.get()) };
    let r = f();
    // SAFETY: Started above on this task.
    unsafe { bindings::blk_finish_plug(plug.get()) };
    r
}
