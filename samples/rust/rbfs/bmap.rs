// SPDX-License-Identifier: GPL-2.0

//! The block mapper: file block index to device block, through the
//! inode's direct pointers and up to four levels of indirect blocks.

use crate::format::{self, IndirectBlock};
use crate::sb::{corrupt, Rbfs};
use crate::write;
use kernel::fs::folio::Locked;
use kernel::fs::writeback::{Iter, WritebackControl};
use kernel::fs::{address_space, file, inode, inode::INode};
use kernel::prelude::*;

/// Page-cache operations of regular files and long symlinks.
pub(crate) static AOPS: address_space::Ops<Rbfs> = address_space::Ops::read_write::<Mapper>();

/// File operations of regular files (writes need a read-write mount).
pub(crate) static REG_FOPS: file::Ops<Rbfs> = file::Ops::read_write_regular();

/// Inode operations of regular files.
pub(crate) static REG_IOPS: inode::Ops<Rbfs> = inode::Ops::new::<RegOps>();

pub(crate) struct RegOps;

#[vtable]
impl inode::Operations for RegOps {
    type FileSystem = Rbfs;

    /// Attribute changes (chmod, chown, utimes, truncate) need inode
    /// writeback, which this version does not have: refuse them rather
    /// than change only the in-memory inode.
    fn setattr(_inode: &INode<Rbfs>, _attr: &inode::Attr) -> Result {
        Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)))
    }
}

pub(crate) struct Mapper;

#[vtable]
impl address_space::Operations for Mapper {
    type FileSystem = Rbfs;

    fn map_block(inode: &INode<Rbfs>, index: u64) -> Result<Option<u64>> {
        map(inode, index).map(|b| b.map(u64::from))
    }

    /// Writes go to blocks the file already has: this version allocates
    /// nothing, so a hole cannot be written.
    fn map_block_for_write(inode: &INode<Rbfs>, index: u64) -> Result<u64> {
        map(inode, index)?.map(u64::from).ok_or(ENOSPC)
    }

    /// Files keep their size (growing one needs allocation and inode
    /// writeback).
    fn begin_write(inode: &INode<Rbfs>, pos: i64, len: u32) -> Result {
        let end = (pos as u64).checked_add(u64::from(len)).ok_or(EINVAL)?;
        if end > inode.size() {
            return Err(ENOSPC);
        }
        Ok(())
    }

    fn writepages(inode: &INode<Rbfs>, iter: &mut Iter<'_>) -> Result {
        write::writepages(inode, iter)
    }

    fn writepage(inode: &INode<Rbfs>, folio: Locked<'_>, wbc: &mut WritebackControl) -> Result {
        write::writepage(inode, folio, wbc)
    }
}

/// Maps file block `index` of `inode`; `None` for a hole.
pub(crate) fn map(inode: &INode<Rbfs>, index: u64) -> Result<Option<u32>> {
    let sb = inode.super_block();
    let info = sb.data();
    let Some(path) = format::block_path(info.block_log(), index) else {
        // Beyond the largest file the map can describe: s_maxbytes keeps
        // the VFS from asking, so this is a hole if it ever happens.
        return Ok(None);
    };
    let mut ptr = inode.data().map[path.slot];
    for level in 0..path.depth {
        if ptr == 0 {
            return Ok(None);
        }
        check_block(inode, ptr)?;
        let buf = sb.bread(u64::from(ptr))?;
        let ind = IndirectBlock::parse(buf.data(), &info.sb)
            .map_err(|e| corrupt(sb, format_args!("inode {} indirect block {}", inode.ino(), ptr), e))?;
        ptr = ind.get(path.idx[level] as usize);
    }
    if ptr == 0 {
        return Ok(None);
    }
    check_block(inode, ptr)?;
    Ok(Some(ptr))
}

fn check_block(inode: &INode<Rbfs>, block: u32) -> Result {
    let sb = inode.super_block();
    sb.data()
        .sb
        .check_data_block(block)
        .map_err(|e| corrupt(sb, format_args!("inode {} block map", inode.ino()), e))
}
