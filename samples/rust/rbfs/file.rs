// SPDX-License-Identifier: GPL-2.0

//! Regular files: the operations tables that connect their page cache,
//! `setattr` and `fsync` to the block mapper (`bmap`), ordered data
//! (`ordered`), truncation (`truncate`) and the writeback path (`write`).

use crate::bmap::{hole_len, map_alloc, map_run};
use crate::ordered::{commit, Commit};
use crate::sb::Rbfs;
use crate::truncate::truncate_blocks;
use crate::write;
use kernel::fs::address_space;
use kernel::fs::folio::Locked;
use kernel::fs::inode::{self, Exclusive, Inode};
use kernel::fs::writeback::{Iter, WritebackControl};
use kernel::prelude::*;

/// Page-cache operations of regular files and long symlinks.
pub(crate) static AOPS: address_space::Ops<Rbfs> = address_space::Ops::read_write::<Mapper>();

/// File operations of regular files.
pub(crate) static REG_FOPS: kernel::fs::file_ops::Ops<Rbfs> =
    kernel::fs::file_ops::Ops::read_write_regular::<Mapper>();

/// Inode operations of regular files.
pub(crate) static REG_IOPS: inode::Ops<Rbfs> = inode::Ops::new::<RegOps>().with_fiemap::<Mapper>();

pub(crate) struct RegOps;

#[vtable]
impl inode::Operations for RegOps {
    type FileSystem = Rbfs;

    /// chmod, chown, utimes and truncate (with partial-block zeroing and
    /// block freeing).
    fn setattr(inode: &Exclusive<Rbfs>, attr: &inode::Attr) -> Result {
        if let Some(size) = attr.size() {
            set_size(inode, size)?;
        }
        attr.copy_to(inode);
        Ok(())
    }

    fn get_flags(inode: &Inode<Rbfs>) -> Result<u32> {
        Ok(crate::inode::get_flags(inode))
    }

    fn set_flags(inode: &Exclusive<Rbfs>, fl: u32) -> Result {
        crate::inode::set_flags(inode, fl)
    }
}

/// Truncates or extends a regular file to `size`; a change of size updates
/// the mtime and ctime, as `ext2_setsize` does: truncate(2) comes without
/// `ATTR_MTIME` and `ATTR_CTIME` (ftruncate(2) and `O_TRUNC` bring them).
/// Times given with the request are copied after this, and win.
pub(crate) fn set_size(inode: &Exclusive<Rbfs>, size: u64) -> Result {
    let old = inode.size();
    if size == old {
        return Ok(());
    }
    let log = inode.super_block().data().block_log();
    if size < old {
        // The block that holds the new end stays: zero its tail, so that
        // it reads as zeroes if the file grows again.
        address_space::zero_partial_block::<Mapper>(inode, size)?;
    }
    let r = address_space::truncate(inode, size, || {
        if size < old {
            let keep = (size + (1 << log) - 1) >> log;
            truncate_blocks(inode, keep)
        } else {
            Ok(())
        }
    });
    // The size has changed even if freeing the blocks failed.
    inode.touch_mtime_ctime();
    r
}

pub(crate) struct Mapper;

#[vtable]
impl address_space::Operations for Mapper {
    type FileSystem = Rbfs;

    fn map_block(inode: &Inode<Rbfs>, index: u64, max: u64) -> Result<Option<(u64, u64)>> {
        map_run(inode, index, max).map(|r| r.map(|(b, n)| (u64::from(b), n)))
    }

    fn hole_len(inode: &Inode<Rbfs>, index: u64, max: u64) -> Result<u64> {
        hole_len(inode, index, max)
    }

    fn map_block_for_write(inode: &Inode<Rbfs>, index: u64) -> Result<(u64, bool)> {
        map_alloc(inode, index).map(|(b, new)| (u64::from(b), new))
    }

    fn write_failed(inode: &Inode<Rbfs>) -> Result {
        let log = inode.super_block().data().block_log();
        truncate_blocks(inode, (inode.size() + (1 << log) - 1) >> log)
    }

    fn writepages(inode: &Inode<Rbfs>, iter: &mut Iter<'_>) -> Result {
        write::writepages(inode, iter)
    }

    fn writepage(inode: &Inode<Rbfs>, folio: Locked<'_>, wbc: &mut WritebackControl) -> Result {
        write::writepage(inode, folio, wbc)
    }

    /// `fsync`'s metadata step: publish the blocks whose data is now on the
    /// disk, write the indirect blocks that changed, then the inode if the
    /// disk's copy is not what the sync needs.
    fn sync_metadata(inode: &Inode<Rbfs>, datasync: bool) -> Result {
        commit(inode, Commit::Wait)?;
        address_space::sync_buffers(inode)?;
        crate::inode::sync_if_changed(inode, datasync)
    }
}
