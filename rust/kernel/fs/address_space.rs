// SPDX-License-Identifier: GPL-2.0

//! Address-space operations: how a file's page cache reaches the disk.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h),
//! [`include/linux/mpage.h`](srctree/include/linux/mpage.h).
//!
//! The read side is the kernel's buffer-head and mpage code
//! (`block_read_full_folio`, `mpage_readahead`), driven by the filesystem's
//! block mapper, [`Operations::map_block`].  The write side takes data into
//! the page cache with `block_write_begin`/`generic_write_end` and the
//! buffer-head dirtying helpers, and writes it back with the filesystem's
//! own [`Operations::writepages`] and [`Operations::writepage`].

use super::folio::{Folio, Locked};
use super::writeback::{Iter, WritebackControl};
use super::{inode::INode, FileSystem};
use crate::bindings;
use crate::error::{code::*, from_result, Result};
use core::marker::PhantomData;

/// Address-space operations of a block-mapped file.
#[crate::macros::vtable]
pub trait Operations {
    /// The filesystem these operations belong to.
    type FileSystem: FileSystem;

    /// Maps block `index` of the file to a block of the device, or `None`
    /// for a hole.
    fn map_block(inode: &INode<Self::FileSystem>, index: u64) -> Result<Option<u64>>;

    /// Maps block `index` for a write: returns its device block, allocating
    /// it if the filesystem can.
    fn map_block_for_write(_inode: &INode<Self::FileSystem>, _index: u64) -> Result<u64> {
        Err(EROFS)
    }

    /// Checks that a write of `len` bytes at `pos` may go ahead, before the
    /// page cache takes it (`write_begin`).
    fn begin_write(_inode: &INode<Self::FileSystem>, _pos: i64, _len: u32) -> Result {
        Ok(())
    }

    /// Writes back the dirty folios `iter` hands out (`->writepages`).
    /// Returning early is allowed: the loop is drained afterwards.
    fn writepages(_inode: &INode<Self::FileSystem>, _iter: &mut Iter<'_>) -> Result {
        Err(EINVAL)
    }

    /// Writes back one locked folio for reclaim or migration
    /// (`->writepage`); the folio is unlocked when `folio` is dropped.
    fn writepage(_inode: &INode<Self::FileSystem>, _folio: Locked<'_>, _wbc: &mut WritebackControl) -> Result {
        Err(EINVAL)
    }
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

    /// Read-write operations for files mapped by `U`, written back by `U`'s
    /// `writepages` and `writepage`.
    pub const fn read_write<U: Operations<FileSystem = T>>() -> Self {
        let mut ops = Self::read_only::<U>().0;
        ops.writepages = Some(Table::<U>::writepages);
        ops.writepage = Some(Table::<U>::writepage);
        ops.write_begin = Some(Table::<U>::write_begin);
        ops.write_end = Some(bindings::generic_write_end);
        ops.dirty_folio = Some(bindings::block_dirty_folio);
        ops.invalidate_folio = Some(bindings::block_invalidate_folio);
        ops.is_partially_uptodate = Some(bindings::block_is_partially_uptodate);
        ops.error_remove_folio = Some(bindings::generic_error_remove_folio);
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

    /// `get_block_t` for writes: maps or allocates.
    ///
    /// # Safety
    ///
    /// As for [`Self::get_block`].
    unsafe extern "C" fn get_block_write(
        inode: *mut bindings::inode,
        iblock: bindings::sector_t,
        bh: *mut bindings::buffer_head,
        create: core::ffi::c_int,
    ) -> core::ffi::c_int {
        if create == 0 {
            // SAFETY: Same requirements.
            return unsafe { Self::get_block(inode, iblock, bh, create) };
        }
        from_result(|| {
            // SAFETY: As in `get_block`.
            let i = unsafe { INode::<U::FileSystem>::from_raw(inode) };
            let block = U::map_block_for_write(i, iblock)?;
            // SAFETY: As in `get_block`.
            unsafe { bindings::map_bh(bh, (*inode).i_sb, block) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with the mapping of a file of `U`'s filesystem
    /// whose `i_rwsem` is held, and valid output pointers.
    unsafe extern "C" fn write_begin(
        _file: *mut bindings::file,
        mapping: *mut bindings::address_space,
        pos: bindings::loff_t,
        len: core::ffi::c_uint,
        foliop: *mut *mut bindings::folio,
        _fsdata: *mut *mut core::ffi::c_void,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: The mapping's host is an initialised inode of `U`'s
            // filesystem, pinned by the open file.
            let i = unsafe { INode::<U::FileSystem>::from_raw((*mapping).host) };
            U::begin_write(i, pos, len)?;
            // SAFETY: Per the safety requirements.
            let r = unsafe { bindings::block_write_begin(mapping, pos, len, foliop, Some(Self::get_block_write)) };
            crate::error::to_result(r)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS's writeback with a mapping of `U`'s filesystem and
    /// its writeback control.
    unsafe extern "C" fn writepages(
        mapping: *mut bindings::address_space,
        wbc: *mut bindings::writeback_control,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: The host of a mapping under writeback is pinned by the
            // writeback (the caller holds an inode reference or `I_SYNC`).
            let i = unsafe { INode::<U::FileSystem>::from_raw((*mapping).host) };
            // SAFETY: `wbc` is valid and ours for the call.
            let wbc = unsafe { WritebackControl::from_raw(wbc) };
            // SAFETY: `mapping` is being written back with `wbc`.
            let mut iter = unsafe { Iter::new(mapping, wbc) };
            let r = U::writepages(i, &mut iter);
            let drained = iter.finish();
            r.and(drained)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by reclaim or migration with a locked page-cache page of a
    /// file of `U`'s filesystem; the callee unlocks it.
    unsafe extern "C" fn writepage(page: *mut bindings::page, wbc: *mut bindings::writeback_control) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: A locked page-cache page; its folio is pinned by the
            // mapping while locked.
            let folio = unsafe { Folio::from_raw(bindings::page_folio(page)) };
            // SAFETY: Locked and in the page cache of an inode of `U`'s
            // filesystem, which the mapping pins.
            let i = unsafe { INode::<U::FileSystem>::from_raw((*folio.mapping_raw()).host) };
            // SAFETY: The caller hands us the folio lock.
            let locked = unsafe { Locked::assume_locked(folio) };
            // SAFETY: `wbc` is valid and ours for the call.
            let wbc = unsafe { WritebackControl::from_raw(wbc) };
            U::writepage(i, locked, wbc)?;
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
