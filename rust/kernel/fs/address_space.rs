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
use super::{
    inode::{Exclusive, Inode},
    FileSystem,
};
use crate::bindings;
use crate::error::{code::*, from_result, Result};
use core::marker::PhantomData;

/// Address-space operations of a block-mapped file.
#[crate::macros::vtable]
pub trait Operations {
    /// The filesystem these operations belong to.
    type FileSystem: FileSystem;

    /// Maps block `index` of the file to a block of the device, or `None`
    /// for a hole.  With the block comes the length of the run that starts
    /// there: how many blocks, from 1 up to `max`, follow one another both
    /// in the file and on the device (`max` is at least 1).  The read side
    /// maps a whole readahead batch with few calls that way, as ext2's
    /// `get_block` does.
    fn map_block(
        inode: &Inode<Self::FileSystem>,
        index: u64,
        max: u64,
    ) -> Result<Option<(u64, u64)>>;

    /// How many blocks from `index` on, from 1 up to `max`, are holes, when
    /// [`Self::map_block`] found `index` to be one.  `SEEK_DATA`,
    /// `SEEK_HOLE` and `FIEMAP` walk the map with it and `map_block`, so a
    /// mapper that knows where a hole ends (a missing indirect block, say)
    /// lets them cross a large hole in a few steps.  The default steps one
    /// block at a time.
    fn hole_len(_inode: &Inode<Self::FileSystem>, _index: u64, _max: u64) -> Result<u64> {
        Ok(1)
    }

    /// Maps block `index` for a write: returns its device block, allocating
    /// it if needed, and whether it was allocated now.  The kernel zeroes
    /// the parts of a new block the write does not cover, and forgets any
    /// stale buffer-cache copy of it.
    fn map_block_for_write(_inode: &Inode<Self::FileSystem>, _index: u64) -> Result<(u64, bool)> {
        Err(EROFS)
    }

    /// Checks that a write of `len` bytes at `pos` may go ahead, before the
    /// page cache takes it (`write_begin`).
    fn begin_write(_inode: &Inode<Self::FileSystem>, _pos: i64, _len: u32) -> Result {
        Ok(())
    }

    /// A write that allocated blocks beyond the end of the file failed or
    /// copied less than it asked for: the page cache beyond the size is
    /// gone already; release the blocks beyond [`Inode::size`].  Called
    /// with `i_rwsem` and the invalidate lock held.
    fn write_failed(_inode: &Inode<Self::FileSystem>) -> Result {
        Ok(())
    }

    /// Writes back the dirty folios `iter` hands out (`->writepages`).
    /// Returning early is allowed: the loop is drained afterwards, the
    /// folios left are redirtied, and under `WB_SYNC_ALL` the call then
    /// fails ([`Iter::finish`]), so `fsync` never succeeds with them dirty.
    fn writepages(_inode: &Inode<Self::FileSystem>, _iter: &mut Iter<'_>) -> Result {
        Err(EINVAL)
    }

    /// Writes back one locked folio for reclaim or migration
    /// (`->writepage`); the folio is unlocked when `folio` is dropped.
    fn writepage(
        _inode: &Inode<Self::FileSystem>,
        _folio: Locked<'_>,
        _wbc: &mut WritebackControl,
    ) -> Result {
        Err(EINVAL)
    }

    /// The metadata half of `fsync` (and of O_SYNC/O_DSYNC writes): called
    /// once the data of the range has been written and waited for, without
    /// `i_rwsem` held, before the device's cache is flushed.  Makes durable
    /// what reaching that data needs (block pointers, size; with `datasync`
    /// false, the rest of the inode too).  The default is
    /// `generic_file_fsync`'s: the buffers associated with the inode, then
    /// the inode if it is dirty.
    fn sync_metadata(inode: &Inode<Self::FileSystem>, datasync: bool) -> Result {
        generic_sync_metadata(inode, datasync)
    }
}

/// `generic_file_fsync`'s metadata step: writes and waits for the buffers
/// associated with `inode` (`mark_buffer_dirty_inode`), then, if the inode
/// is dirty (for `datasync`, dirty in a way that matters to the data),
/// writes it through `write_inode` and waits.
pub fn generic_sync_metadata<T: FileSystem>(inode: &Inode<T>, datasync: bool) -> Result {
    sync_buffers(inode)?;
    let raw = inode.as_raw();
    // SAFETY: A valid inode; reading `i_state` without `i_lock` is what
    // `__generic_file_fsync` does (a stale value only costs a write).
    let state = u64::from(unsafe { (*raw).i_state });
    if state & u64::from(bindings::I_DIRTY_ALL) == 0
        || (datasync && state & u64::from(bindings::I_DIRTY_DATASYNC) == 0)
    {
        return Ok(());
    }
    // SAFETY: A valid inode of a mounted filesystem; the caller holds no
    // lock that `write_inode` takes.
    crate::error::to_result(unsafe { bindings::sync_inode_metadata(raw, 1) })
}

/// Writes and waits for the buffers associated with `inode`'s mapping
/// (`sync_mapping_buffers`): the metadata blocks marked with
/// [`super::buffer::BufferData::mark_dirty_for`].
pub fn sync_buffers<T: FileSystem>(inode: &Inode<T>) -> Result {
    // SAFETY: A valid inode; its mapping lives as long as it does.
    crate::error::to_result(unsafe { bindings::sync_mapping_buffers((*inode.as_raw()).i_mapping) })
}

/// The stretch of `inode`'s blocks that starts at `index`, at most `max`
/// (at least 1) long: mapped to consecutive device blocks from `Some(b)`,
/// or a hole (`None`).
fn stretch_at<U: Operations>(
    inode: &Inode<U::FileSystem>,
    index: u64,
    max: u64,
) -> Result<(Option<u64>, u64)> {
    Ok(match U::map_block(inode, index, max)? {
        Some((b, n)) => (Some(b), n.clamp(1, max)),
        None => (None, U::hole_len(inode, index, max)?.clamp(1, max)),
    })
}

/// `SEEK_DATA` (`data`) or `SEEK_HOLE` from byte `pos` of `inode`, by its
/// block map: the offset of the first byte at or after `pos` in a mapped
/// block (or in a hole), as `lseek(2)` documents it.  The end of the file
/// counts as a hole; `ENXIO` if `pos` is at or beyond the end, or there is
/// no data after it.  Every block of data in the page cache is mapped
/// (blocks are allocated when a write or a fault takes them, before the
/// page is dirty), so the map alone answers.
pub fn seek_data_hole<U: Operations>(
    inode: &Inode<U::FileSystem>,
    pos: u64,
    data: bool,
) -> Result<u64> {
    let size = inode.size();
    if pos >= size {
        return Err(ENXIO);
    }
    let bits = inode.super_block().block_size().trailing_zeros();
    let end = size.div_ceil(1u64 << bits);
    let mut index = pos >> bits;
    while index < end {
        let (mapped, n) = stretch_at::<U>(inode, index, end - index)?;
        if mapped.is_some() == data {
            return Ok((index << bits).max(pos));
        }
        index += n;
    }
    if data {
        Err(ENXIO)
    } else {
        Ok(size)
    }
}

/// Reports one extent to `FIEMAP`: file blocks `first..first + len` at
/// device block `block`.  `Ok(true)` when the caller's array is full.
///
/// # Safety
///
/// `info` is the valid `fiemap_extent_info` of a `fiemap` call.
unsafe fn fiemap_fill(
    info: *mut bindings::fiemap_extent_info,
    (first, block, len): (u64, u64, u64),
    bits: u32,
    flags: u32,
) -> Result<bool> {
    // SAFETY: `info` is valid (function safety requirement); the helper
    // copies the extent to the user's array.
    let r = unsafe {
        bindings::fiemap_fill_next_extent(info, first << bits, block << bits, len << bits, flags)
    };
    if r < 0 {
        return Err(crate::error::Error::from_errno(r));
    }
    Ok(r == 1)
}

/// Runs `f` with every writer of `inode`'s page cache shut out: `i_rwsem`
/// (`write(2)` and everything that goes through `write_begin`) and the
/// invalidate lock (page faults, `page_mkwrite`), both taken for writing,
/// in that order (truncation's).  Every block allocation for the page
/// cache happens under one of the two, and the folio it was made for is
/// dirty before that lock is released; so whatever `f` sees allocated has
/// its folio dirty already (or written).
///
/// With `wait` false the locks are only tried, and `None` returned if
/// either is busy: for writeback, which must never wait for a writer (a
/// writer holding `i_rwsem` may itself be waiting for writeback in
/// `balance_dirty_pages`).  With `wait` true the caller must hold neither
/// lock.
pub fn exclude_writers<T: FileSystem, R>(
    inode: &Inode<T>,
    wait: bool,
    f: impl FnOnce() -> R,
) -> Option<R> {
    let raw = inode.as_raw();
    // SAFETY: A valid inode and its mapping; `inode_lock` is `down_write`
    // of `i_rwsem`, `filemap_invalidate_lock` that of `invalidate_lock`.
    // Each lock taken here is released below, after `f`, in reverse order.
    unsafe {
        let rw = &raw mut (*raw).i_rwsem;
        let inv = &raw mut (*(*raw).i_mapping).invalidate_lock;
        if wait {
            bindings::down_write(rw);
            bindings::down_write(inv);
        } else {
            if bindings::down_write_trylock(rw) == 0 {
                return None;
            }
            if bindings::down_write_trylock(inv) == 0 {
                bindings::up_write(rw);
                return None;
            }
        }
        let r = f();
        bindings::up_write(inv);
        bindings::up_write(rw);
        Some(r)
    }
}

/// A byte offset as a `loff_t` (offsets past `i64::MAX` are clamped to it:
/// no file is that large).
fn loff(pos: u64) -> bindings::loff_t {
    pos.min(i64::MAX as u64) as bindings::loff_t
}

/// Whether any folio of `inode`'s page cache between bytes `start` and
/// `end` (inclusive) is dirty, locked or under writeback
/// (`filemap_range_has_writeback`): if not, whatever was written there
/// through the page cache has reached the disk (or failed to).
pub fn range_in_flight<T: FileSystem>(inode: &Inode<T>, start: u64, end: u64) -> bool {
    let (start, end) = (loff(start), loff(end));
    // SAFETY: A valid inode and its mapping; the walk is under RCU.
    unsafe { bindings::filemap_range_has_writeback((*inode.as_raw()).i_mapping, start, end) }
}

/// Writes the dirty folios of `inode` between bytes `start` and `end`
/// (inclusive) and waits until every folio there is off writeback.  The
/// result is that of starting the writes; how the writes ended reaches
/// `fsync` through the mapping's error sequence, as always, and is not
/// consumed here.
pub fn write_and_wait<T: FileSystem>(inode: &Inode<T>, start: u64, end: u64) -> Result {
    let (start, end) = (loff(start), loff(end));
    // SAFETY: A valid inode and its mapping.  `filemap_fdatawrite_range`
    // runs the filesystem's `writepages` with `WB_SYNC_ALL`; the caller
    // holds no folio lock and no open bio.
    unsafe {
        let mapping = (*inode.as_raw()).i_mapping;
        crate::error::to_result(bindings::filemap_fdatawrite_range(mapping, start, end))?;
        // Only the wait matters here: the "keep errors" variant leaves
        // `AS_EIO` for the callers that report it.
        let _ = bindings::filemap_fdatawait_range_keep_errors(mapping, start, end);
    }
    Ok(())
}

/// An `address_space_operations` table.
#[repr(transparent)]
pub struct Ops<T: FileSystem>(
    pub(crate) bindings::address_space_operations,
    PhantomData<T>,
);

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
    /// `writepages` and, if `U` has one, `writepage` (without it, reclaim
    /// leaves dirty folios to the flusher, as for ext4).  `U` must implement
    /// `writepages` and `map_block_for_write`: a table built without them
    /// does not compile (the `static` it initialises fails to evaluate).
    pub const fn read_write<U: Operations<FileSystem = T>>() -> Self {
        assert!(
            U::HAS_WRITEPAGES && U::HAS_MAP_BLOCK_FOR_WRITE,
            "read-write address-space operations need writepages and map_block_for_write"
        );
        let mut ops = Self::read_only::<U>().0;
        ops.writepages = Some(Table::<U>::writepages);
        if U::HAS_WRITEPAGE {
            ops.writepage = Some(Table::<U>::writepage);
        }
        ops.write_begin = Some(Table::<U>::write_begin);
        ops.write_end = Some(Table::<U>::write_end);
        ops.dirty_folio = Some(bindings::block_dirty_folio);
        ops.invalidate_folio = Some(bindings::block_invalidate_folio);
        ops.is_partially_uptodate = Some(bindings::block_is_partially_uptodate);
        ops.error_remove_folio = Some(bindings::generic_error_remove_folio);
        ops.release_folio = Some(Table::<U>::release_folio);
        ops.migrate_folio = Some(bindings::buffer_migrate_folio);
        ops.bmap = Some(Table::<U>::bmap);
        Self(ops, PhantomData)
    }
}

/// Zeroes the part of the block that contains `from` from there to the
/// block's end, in the page cache (dirtying it), before a truncation to
/// `from`: the block stays, and its tail must read as zeroes if the file
/// grows again (`block_truncate_page`).
pub fn zero_partial_block<U: Operations>(inode: &Exclusive<U::FileSystem>, from: u64) -> Result {
    // SAFETY: A valid inode whose `i_rwsem` we hold; `get_block` maps
    // through `U`, the mapper of `U::FileSystem`'s files, so it is handed
    // an inode of its own filesystem.
    let r = unsafe {
        bindings::block_truncate_page(
            (*inode.as_raw()).i_mapping,
            from as i64,
            Some(Table::<U>::get_block),
        )
    };
    crate::error::to_result(r)
}

/// Truncates the page cache of `inode` to `size` and sets the size
/// (`truncate_setsize`), then runs `free` (which releases the blocks beyond
/// the new size), all under the mapping's invalidate lock, so that no page
/// fault maps a page or allocates a block beyond the new size meanwhile.
/// Waits for writeback of the pages removed.
pub fn truncate<T: FileSystem>(
    inode: &Exclusive<T>,
    size: u64,
    free: impl FnOnce() -> Result,
) -> Result {
    // SAFETY: A valid inode whose `i_rwsem` we hold; the invalidate lock
    // is taken and released here.
    unsafe {
        let mapping = (*inode.as_raw()).i_mapping;
        bindings::filemap_invalidate_lock(mapping);
        bindings::truncate_setsize(inode.as_raw(), size as i64);
        let r = free();
        bindings::filemap_invalidate_unlock(mapping);
        r
    }
}

pub(crate) struct Table<U: Operations>(PhantomData<U>);

impl<U: Operations> Table<U> {
    /// The vm operations of shared mappings of `U`'s files: the generic
    /// page-cache fault handlers, and [`Self::page_mkwrite`].
    const VM_OPS: bindings::vm_operations_struct = {
        // SAFETY: All-zeroes is a valid (empty) table.
        let mut ops: bindings::vm_operations_struct = unsafe { core::mem::zeroed() };
        ops.fault = Some(bindings::filemap_fault);
        ops.map_pages = Some(bindings::filemap_map_pages);
        ops.page_mkwrite = Some(Self::page_mkwrite);
        ops
    };

    /// `file_operations.mmap` of `U`'s regular files.
    ///
    /// # Safety
    ///
    /// Called by `mmap(2)` with an open file of `U`'s filesystem and the
    /// new vma, whose `vm_ops` we may set.
    pub(crate) unsafe extern "C" fn mmap(
        file: *mut bindings::file,
        vma: *mut bindings::vm_area_struct,
    ) -> core::ffi::c_int {
        // SAFETY: Per the safety requirements; this is `generic_file_mmap`
        // with our vm operations (`file_accessed` is `touch_atime` unless
        // the file was opened `O_NOATIME`).
        unsafe {
            if (*file).f_flags & bindings::O_NOATIME == 0 {
                bindings::touch_atime(core::ptr::addr_of_mut!((*file).f_path));
            }
            (*vma).vm_ops = &Self::VM_OPS;
        }
        0
    }

    /// `file_operations.fsync` of `U`'s regular files: the data of the
    /// range, then [`Operations::sync_metadata`], then errors of writeback
    /// that ended meanwhile, then the device's cache
    /// (`generic_file_fsync` with the filesystem's metadata step, which
    /// runs without `i_rwsem`).
    ///
    /// # Safety
    ///
    /// Called by the VFS (`vfs_fsync_range`) with an open file of `U`'s
    /// filesystem.
    pub(crate) unsafe extern "C" fn fsync(
        file: *mut bindings::file,
        start: bindings::loff_t,
        end: bindings::loff_t,
        datasync: core::ffi::c_int,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements: the open file pins its
            // inode, whose mapping is `f_mapping`.
            unsafe {
                crate::error::to_result(bindings::file_write_and_wait_range(file, start, end))?;
                let inode = (*(*file).f_mapping).host;
                let i = Inode::<U::FileSystem>::from_raw(inode);
                let r = U::sync_metadata(i, datasync != 0);
                // Always advance the file's error cursor, as
                // `__generic_file_fsync` does; report the first error.
                let e = crate::error::to_result(bindings::file_check_and_advance_wb_err(file));
                r.and(e)?;
                crate::error::to_result(bindings::blkdev_issue_flush((*(*inode).i_sb).s_bdev))?;
            }
            Ok(0)
        })
    }

    /// `llseek` of regular files: `SEEK_DATA` and `SEEK_HOLE` by the block
    /// map ([`seek_data_hole`]), the rest by `generic_file_llseek`.
    ///
    /// # Safety
    ///
    /// Called by the VFS with an open file of `U`'s filesystem.
    pub(crate) unsafe extern "C" fn llseek(
        file: *mut bindings::file,
        offset: bindings::loff_t,
        whence: core::ffi::c_int,
    ) -> bindings::loff_t {
        let data = match whence as u32 {
            bindings::SEEK_DATA => true,
            bindings::SEEK_HOLE => false,
            // SAFETY: Per the safety requirements.
            _ => return unsafe { bindings::generic_file_llseek(file, offset, whence) },
        };
        // SAFETY: Per the safety requirements: the open file pins its
        // inode, whose mapping is `f_mapping`.
        let inode = unsafe { (*(*file).f_mapping).host };
        // SAFETY: As above; the inode is initialised (it was opened).
        let i = unsafe { Inode::<U::FileSystem>::from_raw(inode) };
        // A negative offset is beyond every end, as for the generic helper.
        let r = u64::try_from(offset)
            .map_err(|_| ENXIO)
            .and_then(|pos| seek_data_hole::<U>(i, pos, data));
        match r {
            // SAFETY: Per the safety requirements; `vfs_setpos` takes the
            // file's position lock itself if it needs one.
            Ok(pos) => unsafe {
                bindings::vfs_setpos(file, pos as bindings::loff_t, (*(*inode).i_sb).s_maxbytes)
            },
            Err(e) => e.to_errno().into(),
        }
    }

    /// `fiemap` of regular files: the mapped extents of the range by the
    /// block map (holes are not reported), runs that continue on the
    /// device merged, the last one flagged `FIEMAP_EXTENT_LAST`.
    /// `FIEMAP_FLAG_SYNC` writes the file back first.
    ///
    /// # Safety
    ///
    /// Called by `ioctl_fiemap` with an initialised inode of `U`'s
    /// filesystem and a valid `fiemap_extent_info`.
    pub(crate) unsafe extern "C" fn fiemap(
        inode: *mut bindings::inode,
        info: *mut bindings::fiemap_extent_info,
        start: u64,
        len: u64,
    ) -> core::ffi::c_int {
        from_result(|| {
            let mut len = len;
            // SAFETY: Per the safety requirements; `fiemap_prep` checks the
            // flags, clamps `len` and syncs the file if asked to.
            crate::error::to_result(unsafe {
                bindings::fiemap_prep(inode, info, start, &mut len, bindings::FIEMAP_FLAG_SYNC)
            })?;
            // SAFETY: Per the safety requirements.
            let i = unsafe { Inode::<U::FileSystem>::from_raw(inode) };
            let bits = i.super_block().block_size().trailing_zeros();
            let end = start.saturating_add(len).min(i.size());
            if start >= end {
                return Ok(0);
            }
            let last = end.div_ceil(1u64 << bits);
            let mut index = start >> bits;
            let mut prev: Option<(u64, u64, u64)> = None;
            while index < last {
                let (mapped, n) = stretch_at::<U>(i, index, last - index)?;
                if let Some(b) = mapped {
                    match &mut prev {
                        Some((f, pb, pn)) if *f + *pn == index && *pb + *pn == b => *pn += n,
                        _ => {
                            if let Some(e) = prev.replace((index, b, n)) {
                                // SAFETY: `info` is valid (see above).
                                if unsafe { fiemap_fill(info, e, bits, 0) }? {
                                    return Ok(0);
                                }
                            }
                        }
                    }
                }
                index += n;
            }
            if let Some(e) = prev {
                // SAFETY: `info` is valid (see above).
                unsafe { fiemap_fill(info, e, bits, bindings::FIEMAP_EXTENT_LAST) }?;
            }
            Ok(0)
        })
    }

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
            let i = unsafe { Inode::<U::FileSystem>::from_raw(inode) };
            // SAFETY: `bh` and `inode` are valid (see above).  The caller
            // sets `b_size` to the most it wants mapped (mpage: the rest of
            // its batch; the buffer helpers: one block).
            let (size, bits) = unsafe { ((*bh).b_size as u64, (*inode).i_blkbits) };
            let max = (size >> bits).max(1);
            if let Some((block, count)) = U::map_block(i, iblock, max)? {
                let count = count.clamp(1, max);
                // `map_bh` sets `bh` mapped to `block` of the super block's
                // device, one block long; then `b_size` says how many blocks
                // the mapping covers (at most what the caller asked for, so
                // it fits the `usize`).
                // SAFETY: `bh` and `inode` are valid (see above).
                unsafe {
                    bindings::map_bh(bh, (*inode).i_sb, block);
                    (*bh).b_size = (count << bits) as usize;
                }
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
            let i = unsafe { Inode::<U::FileSystem>::from_raw(inode) };
            let (block, new) = U::map_block_for_write(i, iblock)?;
            // SAFETY: As in `get_block`; `BH_New` tells the caller
            // (`__block_write_begin_int`) to zero what the write does not
            // cover and to forget stale buffer-cache aliases of the block.
            unsafe {
                bindings::map_bh(bh, (*inode).i_sb, block);
                if new {
                    bindings::bh_set_state(bh, bindings::bh_state_bits_BH_New);
                }
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the page cache with a locked folio of a file of `U`'s
    /// filesystem that is not under writeback.
    unsafe extern "C" fn release_folio(folio: *mut bindings::folio, _gfp: bindings::gfp_t) -> bool {
        // SAFETY: Per the safety requirements; `try_to_free_buffers` frees
        // the buffers only if none is dirty, locked or referenced.
        unsafe { bindings::try_to_free_buffers(folio) }
    }

    /// # Safety
    ///
    /// Called by `bmap(2)`/`FIBMAP` with the mapping of a file of `U`'s
    /// filesystem.
    unsafe extern "C" fn bmap(
        mapping: *mut bindings::address_space,
        block: bindings::sector_t,
    ) -> bindings::sector_t {
        // SAFETY: Per the safety requirements; `generic_block_bmap` calls
        // `get_block` without creating.
        unsafe { bindings::generic_block_bmap(mapping, block, Some(Self::get_block)) }
    }

    /// The `vm_operations_struct` `page_mkwrite` of a shared writable
    /// mapping: allocates the folio's blocks before it may be written to
    /// (`block_page_mkwrite`), so that writeback never needs to allocate.
    ///
    /// # Safety
    ///
    /// Called by the fault handler with a fault on a shared mapping of a
    /// file of `U`'s filesystem.
    pub(crate) unsafe extern "C" fn page_mkwrite(
        vmf: *mut bindings::vm_fault,
    ) -> bindings::vm_fault_t {
        // SAFETY: Per the safety requirements: the vma and its file are
        // valid for the fault; the order is ext4's (freeze protection,
        // time update, invalidate lock against truncation).
        unsafe {
            let vma = (*vmf).__bindgen_anon_1.vma;
            let file = (*vma).vm_file;
            let inode = (*file).f_inode;
            let sb = (*inode).i_sb;
            let mapping = (*inode).i_mapping;
            // A mapping made before the file became immutable: no more
            // writes through it (ext4's answer).
            if super::inode::raw_is_immutable(inode) {
                return bindings::vm_fault_reason_VM_FAULT_SIGBUS as bindings::vm_fault_t;
            }
            bindings::sb_start_pagefault(sb);
            bindings::file_update_time(file);
            bindings::filemap_invalidate_lock_shared(mapping);
            let err = bindings::block_page_mkwrite(vma, vmf, Some(Self::get_block_write));
            let ret = if err == 0 {
                bindings::vm_fault_reason_VM_FAULT_LOCKED as bindings::vm_fault_t
            } else {
                bindings::vmf_fs_error(err)
            };
            bindings::filemap_invalidate_unlock_shared(mapping);
            bindings::sb_end_pagefault(sb);
            ret
        }
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
            let i = unsafe { Inode::<U::FileSystem>::from_raw((*mapping).host) };
            U::begin_write(i, pos, len)?;
            // SAFETY: Per the safety requirements.
            let r = unsafe {
                bindings::block_write_begin(mapping, pos, len, foliop, Some(Self::get_block_write))
            };
            if r < 0 {
                Self::failed(i, pos as u64 + u64::from(len));
            }
            crate::error::to_result(r)?;
            Ok(0)
        })
    }

    /// Cleans up after a write to `end` that failed part-way, as
    /// `ext2_write_failed` does: blocks it allocated beyond the size go.
    fn failed(inode: &Inode<U::FileSystem>, end: u64) {
        if end <= inode.size() {
            return;
        }
        // SAFETY: The caller holds `i_rwsem` (write path); the page cache
        // beyond the size is dropped under the invalidate lock, then the
        // filesystem frees the blocks there.
        unsafe {
            let mapping = (*inode.as_raw()).i_mapping;
            bindings::filemap_invalidate_lock(mapping);
            bindings::truncate_pagecache(inode.as_raw(), inode.size() as i64);
            // Errors were reported by the filesystem; the write's own
            // error is what the caller sees.
            let _ = U::write_failed(inode);
            bindings::filemap_invalidate_unlock(mapping);
        }
    }

    /// # Safety
    ///
    /// Called by the VFS after `write_begin` succeeded, with its folio.
    unsafe extern "C" fn write_end(
        file: *mut bindings::file,
        mapping: *mut bindings::address_space,
        pos: bindings::loff_t,
        len: core::ffi::c_uint,
        copied: core::ffi::c_uint,
        folio: *mut bindings::folio,
        fsdata: *mut core::ffi::c_void,
    ) -> core::ffi::c_int {
        // SAFETY: Per the safety requirements; `generic_write_end` unlocks
        // and releases the folio and updates the size.
        let r =
            unsafe { bindings::generic_write_end(file, mapping, pos, len, copied, folio, fsdata) };
        if r < len as core::ffi::c_int {
            // SAFETY: As in `write_begin`.
            let i = unsafe { Inode::<U::FileSystem>::from_raw((*mapping).host) };
            Self::failed(i, pos as u64 + u64::from(len));
        }
        r
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
            let i = unsafe { Inode::<U::FileSystem>::from_raw((*mapping).host) };
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
    unsafe extern "C" fn writepage(
        page: *mut bindings::page,
        wbc: *mut bindings::writeback_control,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: A locked page-cache page; its folio is pinned by the
            // mapping while locked.
            let folio = unsafe { Folio::from_raw(bindings::page_folio(page)) };
            // SAFETY: Locked and in the page cache of an inode of `U`'s
            // filesystem, which the mapping pins.
            let i = unsafe { Inode::<U::FileSystem>::from_raw((*folio.mapping_raw()).host) };
            // SAFETY: The caller hands us the folio lock; reclaim and
            // migration write back only folios not under writeback.
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
    unsafe extern "C" fn read_folio(
        _file: *mut bindings::file,
        folio: *mut bindings::folio,
    ) -> core::ffi::c_int {
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
