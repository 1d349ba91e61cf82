// SPDX-License-Identifier: GPL-2.0

//! Address-space operations: how a file's page cache reaches the disk.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h),
//! [`include/linux/mpage.h`](srctree/include/linux/mpage.h).
//!
//! The read side is the kernel's buffer-head and mpage code
//! (`block_read_full_folio`, `mpage_readahead`), driven by the filesystem's
//! block mapper, [`Operations::map_block`].

use super::{inode::INode, FileSystem};
use crate::bindings;
use crate::error::{from_result, Result};
use core::marker::PhantomData;

/// Address-space operations of a block-mapped file.
#[crate::macros::vtable]
pub trait Operations {
    /// The filesystem these operations belong to.
    type FileSystem: FileSystem;

    /// Maps block `index` of the file to a block of the device, or `None`
    /// for a hole.
    fn map_block(inode: &INode<Self::FileSystem>, index: u64) -> Result<Option<u64>>;
}

/// An `address_space_operations` table.
#[repr(transparent)]
pub struct Ops<T: FileSystem>(pub(crate) bindings::address_space_operations, PhantomData<T>);

// SAFETY: Immutable table of function pointers.
unsafe impl<T: FileSystem> Sync for Ops<T> {}

impl<T: FileSystem> Ops<T> {
    /// Read-only operations for files mapped by `U`.
    pub const fn read_only<U: Operations<FileSystem = T>>() -> Self {
        // SAFETY: All-zeroes is a valid (empty) table.
        let mut ops: bindings::address_space_operations = unsafe { core::mem::zeroed() };
        ops.read_folio = Some(Table::<U>::read_folio);
        ops.readahead = Some(Table::<U>::readahead);
        Self(ops, PhantomData)
    }
}

struct Table<U: Operations>(PhantomData<U>);

impl<U: Operations> Table<U> {
    /// The `get_block_t` callback of the buffer-head and mpage helpers.
    ///
    /// # Safety
    ///
    /// Called by those helpers with an inode of `U`'s filesystem (whose
    /// mapping has these operations) and a buffer head to fill in.
    unsafe extern "C" fn get_block(
        inode: *mut bindings::inode,
        iblock: bindings::sector_t,
        bh: *mut bindings::buffer_head,
        _create: core::ffi::c_int,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements; the page cache holds a
            // reference to the inode while it does I/O on its folios.
            let i = unsafe { INode::<U::FileSystem>::from_raw(inode) };
            if let Some(block) = U::map_block(i, iblock)? {
                // SAFETY: `bh` is valid; `map_bh` sets it mapped to `block`
                // of the super block's device, one block long.
                unsafe { bindings::map_bh(bh, (*inode).i_sb, block) };
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the page cache with a locked folio of a file of `U`'s
    /// filesystem.
    unsafe extern "C" fn read_folio(_file: *mut bindings::file, folio: *mut bindings::folio) -> core::ffi::c_int {
        // SAFETY: Per the safety requirements; `block_read_full_folio`
        // unlocks the folio.
        unsafe { bindings::block_read_full_folio(folio, Some(Self::get_block)) }
    }

    /// # Safety
    ///
    /// Called by the page cache with a readahead control of such a file.
    unsafe extern "C" fn readahead(rac: *mut bindings::readahead_control) {
        // SAFETY: Per the safety requirements.
        unsafe { bindings::mpage_readahead(rac, Some(Self::get_block)) }
    }
}
