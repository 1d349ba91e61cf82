// SPDX-License-Identifier: GPL-2.0

//! Buffer heads: blocks of a block device cached in the page cache.
//!
//! C header: [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h).

use crate::bindings;
use crate::error::{code::*, Result};
use crate::types::Opaque;
use core::ptr::NonNull;

/// A `struct buffer_head`.
///
/// # Invariants
///
/// Instances are only referenced while someone holds a reference to the
/// buffer head (`b_count`), so it stays allocated and attached to its folio.
#[repr(transparent)]
pub struct BufferHead(Opaque<bindings::buffer_head>);

impl BufferHead {
    /// # Safety
    ///
    /// `bh` is a valid buffer head with a reference held for `'a`.
    pub unsafe fn from_raw<'a>(bh: *mut bindings::buffer_head) -> &'a Self {
        // SAFETY: Transparent wrapper; validity per the safety requirements.
        unsafe { &*bh.cast() }
    }

    /// The C `struct buffer_head`.
    pub fn as_raw(&self) -> *mut bindings::buffer_head {
        self.0.get()
    }

    /// The block number on the device (`b_blocknr`).
    pub fn block_nr(&self) -> u64 {
        // SAFETY: `b_blocknr` is a plain integer of a valid buffer head.
        unsafe { (*self.as_raw()).b_blocknr }
    }

    /// The size of the block in bytes (`b_size`).
    pub fn size(&self) -> usize {
        // SAFETY: Fixed for the life of the buffer head.
        unsafe { (*self.as_raw()).b_size }
    }
}

/// A referenced, up-to-date block read through the buffer cache
/// (`sb_bread`); releases its reference (`brelse`) when dropped.
///
/// # Invariants
///
/// `bh` holds a reference, is up to date, and its data is `b_size` bytes
/// in lowmem (buffer-cache folios of a block device are never highmem on
/// the architectures rbfs builds for: `__bread_gfp` uses the mapping's gfp,
/// without `__GFP_HIGHMEM` for block devices).
pub struct Buffer {
    bh: NonNull<bindings::buffer_head>,
}

// SAFETY: A buffer head reference may be dropped from any thread
// (`brelse` is thread-safe), and shared access to its data is read-only.
unsafe impl Send for Buffer {}
// SAFETY: See above: `&Buffer` only reads.
unsafe impl Sync for Buffer {}

impl Buffer {
    /// Reads block `block` of `size` bytes from `bdev`.
    pub(crate) fn read(bdev: *mut bindings::block_device, block: u64, size: u32) -> Result<Self> {
        // SAFETY: The callers pass the open device of a live super block.
        // `__bread_gfp` returns NULL on an I/O error (having logged it).
        // No `__GFP_MOVABLE`: metadata buffers are held across sleeps.
        let bh = unsafe { bindings::__bread_gfp(bdev, block, size, 0) };
        NonNull::new(bh).map(|bh| Buffer { bh }).ok_or(EIO)
    }

    /// The block's contents.
    pub fn data(&self) -> &[u8] {
        // SAFETY: The buffer is up to date, referenced, and its data is
        // `b_size` bytes of mapped memory (type invariants).  Others may
        // write the block concurrently only through the buffer lock, which
        // rbfs's read path never races with (metadata is only read here).
        unsafe { core::slice::from_raw_parts((*self.bh.as_ptr()).b_data.cast::<u8>(), (*self.bh.as_ptr()).b_size) }
    }

    /// The buffer head.
    pub fn head(&self) -> &BufferHead {
        // SAFETY: Referenced for as long as `self` lives.
        unsafe { BufferHead::from_raw(self.bh.as_ptr()) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: We own one reference (type invariant).
        unsafe { bindings::__brelse(self.bh.as_ptr()) };
    }
}
