// SPDX-License-Identifier: GPL-2.0

//! The block mapper: file block index to device block, through the
//! inode's direct pointers and up to four levels of indirect blocks.

use crate::format::{self, IndirectBlock};
use crate::sb::{corrupt, Rbfs};
use kernel::fs::{address_space, file, inode::INode};
use kernel::prelude::*;

/// Page-cache operations of regular files and long symlinks.
pub(crate) static AOPS: address_space::Ops<Rbfs> = address_space::Ops::read_only::<Mapper>();

/// File operations of regular files.
pub(crate) static REG_FOPS: file::Ops<Rbfs> = file::Ops::read_only_regular();

pub(crate) struct Mapper;

#[vtable]
impl address_space::Operations for Mapper {
    type FileSystem = Rbfs;

    fn map_block(inode: &INode<Rbfs>, index: u64) -> Result<Option<u64>> {
        map(inode, index).map(|b| b.map(u64::from))
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
