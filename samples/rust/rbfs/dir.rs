// SPDX-License-Identifier: GPL-2.0

//! Directories: lookup and readdir over checksummed directory blocks.

use crate::bmap;
use crate::format::{self, DirBlock, FormatError};
use crate::inode::{iget, is_dir};
use crate::sb::{corrupt, euclean, Rbfs};
use kernel::fs::buffer::Buffer;
use kernel::fs::file_ops::{self, DirEmitter};
use kernel::fs::inode::{self, Creation, Exclusive, Inode};
use kernel::prelude::*;
use kernel::types::ARef;

/// Inode operations of directories.
pub(crate) static DIR_IOPS: inode::Ops<Rbfs> = inode::Ops::new::<DirOps>();

/// File operations of directories.
pub(crate) static DIR_FOPS: file_ops::Ops<Rbfs> = file_ops::Ops::dir::<DirOps>();

pub(crate) struct DirOps;

/// The number of blocks of a directory (its size is a whole number of
/// blocks; a partial one is ignored as corrupt).
fn dir_blocks(dir: &Inode<Rbfs>) -> u64 {
    dir.size() >> dir.super_block().data().block_log()
}

/// Reads block `index` of a directory.
fn read_block(dir: &Inode<Rbfs>, index: u64) -> Result<Buffer<'_>> {
    let sb = dir.super_block();
    let Some(block) = bmap::map(dir, index)? else {
        if sb.data().reports_allowed() {
            pr_err!(
                "{}: corrupt metadata: directory {} has a hole at block {}\n",
                sb.device_name(),
                dir.ino(),
                index
            );
        }
        return Err(euclean());
    };
    sb.bread(u64::from(block))
}

/// The verified view of a locked directory block: the checksum is checked
/// once per read from the disk (the buffer remembers it, `Verified`).
fn dir_block<'a>(
    dir: &Inode<Rbfs>,
    index: u64,
    data: &'a mut kernel::fs::buffer::BufferData<'_>,
) -> Result<DirBlock<'a>> {
    data.verify_once(|d| DirBlock::parse(d, index == 0).map(|_| ()))
        .map_err(|e| {
            corrupt(
                dir.super_block(),
                format_args!("directory {} block {}", dir.ino(), index),
                e,
            )
        })?;
    DirBlock::parse_trusted(data.data(), index == 0).map_err(|_| EINVAL)
}

/// Reads block `index` of a directory, checks its tail and checksum once,
/// and runs `f` on it (under the buffer lock).
fn with_block<R>(
    dir: &Inode<Rbfs>,
    index: u64,
    f: impl FnOnce(DirBlock<'_>) -> Result<R>,
) -> Result<R> {
    let buf = read_block(dir, index)?;
    let mut data = buf.lock();
    f(dir_block(dir, index, &mut data)?)
}

/// Runs `f` on block `index` of a directory for changing it: `f` gets the
/// verified bytes and returns `None` to leave the block untouched, or what
/// it changed.  A changed block is dirtied and tied to the directory for
/// `fsync`.
fn change_block<R>(
    dir: &Inode<Rbfs>,
    index: u64,
    f: impl FnOnce(&mut [u8], bool) -> core::result::Result<Option<R>, FormatError>,
) -> Result<Option<R>> {
    let sb = dir.super_block();
    let buf = read_block(dir, index)?;
    let mut data = buf.lock();
    dir_block(dir, index, &mut data)?;
    let r = f(data.data_mut(), index == 0);
    match r {
        Ok(Some(v)) => {
            data.mark_dirty_for(dir);
            Ok(Some(v))
        }
        Ok(None) => Ok(None),
        Err(e) => Err(corrupt(
            sb,
            format_args!("directory {} block {}", dir.ino(), index),
            e,
        )),
    }
}

/// Finds the block of `dir` that holds `name`.
fn find_block(dir: &Inode<Rbfs>, name: &[u8]) -> Result<Option<u64>> {
    let sb = dir.super_block();
    for index in 0..dir_blocks(dir) {
        let found = with_block(dir, index, |block| {
            block.find(name).map(|e| e.is_some()).map_err(|e| {
                corrupt(
                    sb,
                    format_args!("directory {} block {}", dir.ino(), index),
                    e,
                )
            })
        })?;
        if found {
            return Ok(Some(index));
        }
    }
    Ok(None)
}

/// Writes the first block of the new directory `dir`: "." and "..".
pub(crate) fn init_dir(dir: &Inode<Rbfs>, parent: u32) -> Result {
    let (block, _) = bmap::map_alloc(dir, 0)?;
    let buf = dir.super_block().zeroed_block(u64::from(block))?;
    let mut data = buf.lock();
    format::dir_init_first(data.data_mut(), dir.ino() as u32, parent).map_err(|_| EINVAL)?;
    data.set_verified();
    data.mark_dirty_for(dir);
    Ok(())
}

/// Adds the entry `name` -> `ino` (type `ft`) to `dir`, in the first block
/// with room, or in a new block at the end.
fn add_entry(dir: &Exclusive<Rbfs>, name: &[u8], ino: u32, ft: u8) -> Result {
    let sb = dir.super_block();
    let nblocks = dir_blocks(dir);
    for index in 0..nblocks {
        let fits = with_block(dir, index, |block| {
            block.name_fits(name.len()).map_err(|e| {
                corrupt(
                    sb,
                    format_args!("directory {} block {}", dir.ino(), index),
                    e,
                )
            })
        })?;
        if !fits {
            continue;
        }
        if change_block(dir, index, |buf, first| {
            format::dir_insert(buf, first, name, ino, ft).map(Some)
        })?
        .is_some()
        {
            dir.touch_mtime_ctime();
            return Ok(());
        }
    }
    let bs = 1u64 << sb.data().block_log();
    if (nblocks + 1) * bs > format::max_file_size(sb.data().block_log()) {
        return Err(ENOSPC);
    }
    let (block, _) = bmap::map_alloc(dir, nblocks)?;
    let buf = sb.zeroed_block(u64::from(block))?;
    {
        let mut data = buf.lock();
        let d = data.data_mut();
        format::dir_init_empty(d)
            .and_then(|()| format::dir_insert(d, nblocks == 0, name, ino, ft))
            .map_err(|_| EINVAL)?;
        data.set_verified();
        data.mark_dirty_for(dir);
    }
    dir.set_size((nblocks + 1) * bs);
    dir.touch_mtime_ctime();
    Ok(())
}

/// Removes the entry `name` from `dir`; returns its inode number.
fn remove_entry(dir: &Inode<Rbfs>, name: &[u8]) -> Result<u32> {
    let index = find_block(dir, name)?.ok_or(ENOENT)?;
    let ino = change_block(dir, index, |buf, first| {
        format::dir_remove(buf, first, name).map(Some)
    })?;
    dir.touch_mtime_ctime();
    ino.ok_or(ENOENT)
}

/// Points the entry `name` of `dir` at `ino` (type `ft`); returns the
/// inode number it had.
fn replace_entry(dir: &Inode<Rbfs>, name: &[u8], ino: u32, ft: u8) -> Result<u32> {
    let index = find_block(dir, name)?.ok_or(ENOENT)?;
    let old = change_block(dir, index, |buf, first| {
        format::dir_replace(buf, first, name, ino, ft).map(Some)
    })?;
    dir.touch_mtime_ctime();
    old.ok_or(ENOENT)
}

/// Points ".." of directory `dir` at `parent`.
fn set_dotdot(dir: &Inode<Rbfs>, parent: u32) -> Result {
    change_block(dir, 0, |buf, _| {
        format::dir_set_dotdot(buf, parent).map(Some)
    })?;
    Ok(())
}

/// The parent of directory `dir`, from its ".." entry (for file handles).
pub(crate) fn parent(dir: &Inode<Rbfs>) -> Result<ARef<Inode<Rbfs>>> {
    let sb = dir.super_block();
    let (_, up) = with_block(dir, 0, |block| {
        block
            .dots()
            .map_err(|e| corrupt(sb, format_args!("directory {} block 0", dir.ino()), e))
    })?;
    iget(sb, up)
}

/// Whether `dir` has no entries but "." and "..".
fn is_empty(dir: &Inode<Rbfs>) -> Result<bool> {
    let sb = dir.super_block();
    for index in 0..dir_blocks(dir) {
        let empty = with_block(dir, index, |block| {
            block.is_empty().map_err(|e| {
                corrupt(
                    sb,
                    format_args!("directory {} block {}", dir.ino(), index),
                    e,
                )
            })
        })?;
        if !empty {
            return Ok(false);
        }
    }
    Ok(true)
}

fn enotempty() -> Error {
    Error::from_errno(-(kernel::bindings::ENOTEMPTY as i32))
}

/// The directory-entry type of an inode.
fn dtype(inode: &Inode<Rbfs>) -> Result<u8> {
    format::dt_from_mode(inode.mode()).ok_or(EINVAL)
}

/// Link counts stop here (like ext2's 32000).
const LINK_MAX: u32 = 65000;

#[vtable]
impl inode::Operations for DirOps {
    type FileSystem = Rbfs;

    fn lookup(parent: &Inode<Rbfs>, name: &[u8]) -> Result<Option<ARef<Inode<Rbfs>>>> {
        let sb = parent.super_block();
        for index in 0..dir_blocks(parent) {
            let found = with_block(parent, index, |block| {
                let entry = block.find(name).map_err(|e| {
                    corrupt(
                        sb,
                        format_args!("directory {} block {}", parent.ino(), index),
                        e,
                    )
                })?;
                Ok(entry.map(|e| e.ino))
            })?;
            // The directory block is released before reading the inode.
            if let Some(ino) = found {
                return iget(sb, ino).map(Some);
            }
        }
        Ok(None)
    }

    fn create(how: &Creation<'_, Rbfs>, name: &[u8]) -> Result<ARef<Inode<Rbfs>>> {
        let dir = how.dir();
        let is_dir = how.mode & format::S_IFMT == format::S_IFDIR;
        if is_dir && dir.nlink() >= LINK_MAX {
            return Err(EMLINK);
        }
        let inode = crate::inode::create(how, None)?;
        if let Err(e) = add_entry(dir, name, inode.ino() as u32, dtype(&inode)?) {
            // Nobody else can reach the new inode: its lock is free.
            inode.lock().clear_nlink();
            return Err(e);
        }
        if is_dir {
            dir.inc_nlink();
        }
        Ok(inode)
    }

    fn symlink(how: &Creation<'_, Rbfs>, name: &[u8], target: &CStr) -> Result<ARef<Inode<Rbfs>>> {
        let inode = crate::inode::create(how, Some(target))?;
        if let Err(e) = add_entry(how.dir(), name, inode.ino() as u32, format::DT_LNK) {
            inode.lock().clear_nlink();
            return Err(e);
        }
        Ok(inode)
    }

    fn link(inode: &Exclusive<Rbfs>, dir: &Exclusive<Rbfs>, name: &[u8]) -> Result {
        if inode.nlink() >= LINK_MAX {
            return Err(EMLINK);
        }
        add_entry(dir, name, inode.ino() as u32, dtype(inode)?)?;
        inode.inc_nlink();
        inode.touch_ctime();
        Ok(())
    }

    fn unlink(dir: &Exclusive<Rbfs>, name: &[u8], inode: &Exclusive<Rbfs>) -> Result {
        remove_entry(dir, name)?;
        inode.drop_nlink();
        inode.touch_ctime();
        Ok(())
    }

    fn rmdir(dir: &Exclusive<Rbfs>, name: &[u8], inode: &Exclusive<Rbfs>) -> Result {
        if !is_empty(inode)? {
            return Err(enotempty());
        }
        remove_entry(dir, name)?;
        inode.clear_nlink();
        inode.touch_ctime();
        dir.drop_nlink();
        Ok(())
    }

    fn rename(
        old_dir: &Exclusive<Rbfs>,
        old_name: &[u8],
        old: &Inode<Rbfs>,
        new_dir: &Exclusive<Rbfs>,
        new_name: &[u8],
        new: Option<&Exclusive<Rbfs>>,
        flags: u32,
    ) -> Result {
        if flags & !(inode::RENAME_NOREPLACE | inode::RENAME_EXCHANGE) != 0 {
            return Err(EINVAL);
        }
        let moved = old_dir.ino() != new_dir.ino();
        let old_is_dir = is_dir(old);
        if flags & inode::RENAME_EXCHANGE != 0 {
            let new = new.ok_or(ENOENT)?;
            let new_is_dir = is_dir(new);
            replace_entry(new_dir, new_name, old.ino() as u32, dtype(old)?)?;
            replace_entry(old_dir, old_name, new.ino() as u32, dtype(new)?)?;
            if moved && old_is_dir != new_is_dir {
                // One directory moves each way; the parents' counts change
                // only if the two are not both directories.
                if old_is_dir {
                    new_dir.inc_nlink();
                    old_dir.drop_nlink();
                } else {
                    old_dir.inc_nlink();
                    new_dir.drop_nlink();
                }
            }
            if moved && old_is_dir {
                set_dotdot(old, new_dir.ino() as u32)?;
            }
            if moved && new_is_dir {
                set_dotdot(new, old_dir.ino() as u32)?;
            }
            old.touch_ctime();
            new.touch_ctime();
            return Ok(());
        }
        if let Some(target) = new {
            if is_dir(target) {
                if !is_empty(target)? {
                    return Err(enotempty());
                }
            }
            replace_entry(new_dir, new_name, old.ino() as u32, dtype(old)?)?;
            if is_dir(target) {
                target.clear_nlink();
                new_dir.drop_nlink();
            } else {
                target.drop_nlink();
            }
            target.touch_ctime();
        } else {
            if old_is_dir && moved && new_dir.nlink() >= LINK_MAX {
                return Err(EMLINK);
            }
            add_entry(new_dir, new_name, old.ino() as u32, dtype(old)?)?;
        }
        if old_is_dir && moved {
            new_dir.inc_nlink();
        }
        remove_entry(old_dir, old_name)?;
        if old_is_dir && moved {
            set_dotdot(old, new_dir.ino() as u32)?;
            old_dir.drop_nlink();
        }
        old.touch_ctime();
        Ok(())
    }

    /// chmod, chown, utimes (a directory's size is its own business).
    fn setattr(inode: &Exclusive<Rbfs>, attr: &inode::Attr) -> Result {
        if attr.changes_size() {
            return Err(EISDIR);
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

#[vtable]
impl file_ops::Operations for DirOps {
    type FileSystem = Rbfs;

    fn read_dir(dir: &Inode<Rbfs>, emitter: &mut DirEmitter<'_>) -> Result {
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
            let skip = if index == first {
                (pos - start) as usize
            } else {
                0
            };
            // Entries are copied to the caller (possibly faulting on its
            // buffer) from a copy of the block, not under its buffer lock.
            let copy = {
                let buf = read_block(dir, index)?;
                let data = buf.lock();
                let mut v = KVec::with_capacity(data.data().len(), GFP_KERNEL)?;
                v.extend_from_slice(data.data(), GFP_KERNEL)?;
                v
            };
            let full = (|| {
                let block = DirBlock::parse(&copy, index == 0).map_err(|e| {
                    corrupt(
                        sb,
                        format_args!("directory {} block {}", dir.ino(), index),
                        e,
                    )
                })?;
                for entry in block.iter() {
                    let entry = entry.map_err(|e| {
                        corrupt(
                            sb,
                            format_args!("directory {} block {}", dir.ino(), index),
                            e,
                        )
                    })?;
                    if entry.offset < skip {
                        continue;
                    }
                    emitter.set_pos(start + entry.offset as i64);
                    if !emitter.emit(entry.name, u64::from(entry.ino), entry.file_type) {
                        return Ok(true);
                    }
                    emitter.set_pos(start + (entry.offset + entry.rec_len) as i64);
                }
                Ok::<bool, Error>(false)
            })()?;
            if full {
                return Ok(());
            }
            emitter.set_pos(start + bs);
        }
        Ok(())
    }
}

// The on-disk DT_* values are the kernel's; keep them in step.
const _: () =
    assert!(format::DT_DIR == file_ops::dtype::DIR && format::DT_REG == file_ops::dtype::REG);
const _: () =
    assert!(format::DT_LNK == file_ops::dtype::LNK && format::DT_SOCK == file_ops::dtype::SOCK);
