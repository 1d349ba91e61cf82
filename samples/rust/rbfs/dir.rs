// SPDX-License-Identifier: GPL-2.0

//! Directories: lookup and readdir over checksummed directory blocks.

use crate::format::{self, DirBlock};
use crate::inode::iget;
use crate::sb::{corrupt, euclean, Rbfs};
use crate::bmap;
use kernel::fs::file::{self, DirEmitter};
use kernel::fs::inode::{self, INode};
use kernel::prelude::*;
use kernel::types::ARef;

/// Inode operations of directories.
pub(crate) static DIR_IOPS: inode::Ops<Rbfs> = inode::Ops::new::<DirOps>();

/// File operations of directories.
pub(crate) static DIR_FOPS: file::Ops<Rbfs> = file::Ops::dir::<DirOps>();

pub(crate) struct DirOps;

/// The number of blocks of a directory (its size is a whole number of
/// blocks; a partial one is ignored as corrupt).
fn dir_blocks(dir: &INode<Rbfs>) -> u64 {
    dir.size() >> dir.super_block().data().block_log()
}

/// Reads block `index` of a directory, checks its tail and checksum once,
/// and runs `f` on it.
fn with_block<R>(dir: &INode<Rbfs>, index: u64, f: impl FnOnce(DirBlock<'_>) -> Result<R>) -> Result<R> {
    let sb = dir.super_block();
    let Some(block) = bmap::map(dir, index)? else {
        if sb.data().reports_allowed() {
            pr_err!("{}: corrupt metadata: directory {} has a hole at block {}\n", sb.device_name(), dir.ino(), index);
        }
        return Err(euclean());
    };
    let buf = sb.bread(u64::from(block))?;
    let parsed = DirBlock::parse(buf.data(), index == 0)
        .map_err(|e| corrupt(sb, format_args!("directory {} block {}", dir.ino(), index), e))?;
    f(parsed)
}

#[vtable]
impl inode::Operations for DirOps {
    type FileSystem = Rbfs;

    fn lookup(parent: &INode<Rbfs>, name: &[u8]) -> Result<Option<ARef<INode<Rbfs>>>> {
        let sb = parent.super_block();
        for index in 0..dir_blocks(parent) {
            let found = with_block(parent, index, |block| {
                let entry = block
                    .find(name)
                    .map_err(|e| corrupt(sb, format_args!("directory {} block {}", parent.ino(), index), e))?;
                Ok(entry.map(|e| e.ino))
            })?;
            // The directory block is released before reading the inode.
            if let Some(ino) = found {
                return iget(sb, ino).map(Some);
            }
        }
        Ok(None)
    }

    /// See `bmap::RegOps::setattr`: no inode writeback yet.
    fn setattr(_inode: &INode<Rbfs>, _attr: &inode::Attr) -> Result {
        Err(Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32)))
    }
}

#[vtable]
impl file::Operations for DirOps {
    type FileSystem = Rbfs;

    fn read_dir(dir: &INode<Rbfs>, emitter: &mut DirEmitter<'_>) -> Result {
        let sb = dir.super_block();
        let log = sb.data().block_log();
        let bs = 1i64 << log;
        let pos = emitter.pos();
        if pos < 0 {
            return Err(EINVAL);
        }
        let first = (pos >> log) as u64;
        for index in first..dir_blocks(dir) {
            let start = (index as i64) << log;
            let skip = if index == first { (pos - start) as usize } else { 0 };
            let full = with_block(dir, index, |block| {
                for entry in block.iter() {
                    let entry =
                        entry.map_err(|e| corrupt(sb, format_args!("directory {} block {}", dir.ino(), index), e))?;
                    if entry.offset < skip {
                        continue;
                    }
                    emitter.set_pos(start + entry.offset as i64);
                    if !emitter.emit(entry.name, u64::from(entry.ino), entry.file_type) {
                        return Ok(true);
                    }
                    emitter.set_pos(start + (entry.offset + entry.rec_len) as i64);
                }
                Ok(false)
            })?;
            if full {
                return Ok(());
            }
            emitter.set_pos(start + bs);
        }
        Ok(())
    }
}

// The on-disk DT_* values are the kernel's; keep them in step.
const _: () = assert!(format::DT_DIR == file::dtype::DIR && format::DT_REG == file::dtype::REG);
const _: () = assert!(format::DT_LNK == file::dtype::LNK && format::DT_SOCK == file::dtype::SOCK);
