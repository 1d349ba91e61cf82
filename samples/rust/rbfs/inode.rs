// SPDX-License-Identifier: GPL-2.0

//! Reading inodes from the inode table into the inode cache.

use crate::format::{self, Inode, N_MAP};
use crate::sb::{corrupt, euclean, Rbfs};
use crate::{bmap, dir};
use kernel::fs::inode::{INode, Kind, Lookup, Params};
use kernel::fs::sb::SuperBlock;
use kernel::prelude::*;
use kernel::types::ARef;

/// What rbfs keeps with every in-memory inode.
pub(crate) struct InodeInfo {
    /// The block map (direct pointers and indirect roots).
    pub(crate) map: [u32; N_MAP],
    /// The full mode, type bits included.
    pub(crate) mode: u16,
}

/// Whether an inode is a directory.
pub(crate) fn is_dir(inode: &INode<Rbfs>) -> bool {
    inode.data().mode & format::S_IFMT == format::S_IFDIR
}

/// Encodes a device number the way the kernel's `MKDEV` does.
fn mkdev(major: u32, minor: u32) -> u32 {
    (major << 20) | (minor & 0xfffff)
}

/// Returns inode `ino`, from the inode cache or read from the disk.
pub(crate) fn iget(sb: &SuperBlock<Rbfs>, ino: u32) -> Result<ARef<INode<Rbfs>>> {
    let info = sb.data();
    if let Err(e) = info.sb.check_ino(ino) {
        return Err(corrupt(sb, format_args!("reference to inode {}", ino), e));
    }
    let new = match sb.iget(u64::from(ino))? {
        Lookup::Cached(inode) => return Ok(inode),
        Lookup::New(new) => new,
    };
    let (block, offset) = info.sb.inode_location(ino).map_err(|e| corrupt(sb, format_args!("inode {}", ino), e))?;
    let buf = sb.bread(u64::from(block))?;
    let bytes = buf.data().get(offset..offset + format::INODE_SIZE).ok_or_else(euclean)?;
    let disk = match Inode::parse(bytes, ino, &info.sb) {
        Ok(Some(i)) => i,
        Ok(None) => {
            if info.reports_allowed() {
                pr_err!("{}: corrupt metadata: inode {} is referenced but free\n", sb.device_name(), ino);
            }
            return Err(euclean());
        }
        Err(e) => return Err(corrupt(sb, format_args!("inode {}", ino), e)),
    };
    drop(buf);

    let kind = match disk.mode & format::S_IFMT {
        format::S_IFDIR => Kind::Dir(&dir::DIR_IOPS, &dir::DIR_FOPS),
        format::S_IFREG => Kind::Reg(&bmap::REG_IOPS, &bmap::REG_FOPS, &bmap::AOPS),
        format::S_IFLNK if disk.is_fast_symlink() => Kind::FastSymlink,
        format::S_IFLNK => Kind::Symlink(&bmap::AOPS),
        format::S_IFCHR => Kind::Chr(mkdev(disk.rdev_major, disk.rdev_minor)),
        format::S_IFBLK => Kind::Blk(mkdev(disk.rdev_major, disk.rdev_minor)),
        format::S_IFIFO => Kind::Fifo,
        format::S_IFSOCK => Kind::Sock,
        _ => return Err(corrupt(sb, format_args!("inode {}", ino), format::FormatError::BadField("mode"))),
    };
    let fast = matches!(kind, Kind::FastSymlink);
    let params = Params {
        kind,
        perm: disk.mode & 0o7777,
        nlink: disk.links,
        uid: disk.uid,
        gid: disk.gid,
        size: disk.size,
        blocks: disk.blocks,
        atime: (disk.atime.sec, disk.atime.nsec),
        mtime: (disk.mtime.sec, disk.mtime.nsec),
        ctime: (disk.ctime.sec, disk.ctime.nsec),
        link: &[],
    };
    let data = InodeInfo { map: disk.map, mode: disk.mode };
    if fast {
        let inline = disk.inline_data();
        let len = (disk.size as usize).min(inline.len());
        new.init_symlink(params, data, &inline[..len])
    } else {
        new.init(params, data)
    }
}
