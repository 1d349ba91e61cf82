// SPDX-License-Identifier: GPL-2.0

//! Inodes: reading them from the inode table, creating, writing back and
//! freeing them.

use crate::format::{self, Inode as DiskInode, Timestamp, N_MAP};
use crate::sb::{corrupt, euclean, Rbfs};
use crate::{alloc, dir, file, ordered, truncate};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use kernel::fs::buffer::Buffer;
use kernel::fs::inode::{Creation, Exclusive, Inode, Kind, Lookup, New, Params};
use kernel::fs::sb::SuperBlock;
use kernel::fs::NoFsScope;
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Mutex;
use kernel::types::ARef;

/// The block map of an inode, behind its map mutex.
pub(crate) struct MapState {
    /// Direct pointers and indirect roots; for a fast symlink, the target.
    pub(crate) ptrs: [u32; N_MAP],
    /// Space used, in 512-byte sectors (data and indirect blocks).
    pub(crate) blocks: u64,
    /// The data block allocated last (where the next one looks first).
    pub(crate) last: u32,
    /// Where the next indirect block goes: blocks set aside ahead of the
    /// data, so that indirect blocks do not split the data's runs.
    pub(crate) meta_next: u32,
    /// How many of the set-aside blocks from `meta_next` on are left.
    pub(crate) meta_left: u32,
    /// Data blocks allocated whose pointers are not in the on-disk map
    /// yet, because their data may not be on the disk yet (see
    /// `ordered::commit`): runs keyed by their first file block, never
    /// overlapping one another or the map's own pointers.
    pub(crate) pending: ordered::PendingRuns,
    /// Blocks in `pending`.
    pub(crate) pending_blocks: u64,
    /// Memory for the next new run in `pending`, allocated before the mutex
    /// was taken (`bmap::map_alloc`), or left by a run that went.
    pub(crate) spare: Option<ordered::PendingNode>,
    /// The current commit epoch: runs allocated in it carry it, a commit
    /// publishes the runs of the epochs before the one it starts.
    pub(crate) epoch: u64,
    /// The inode as last written to the disk and waited for (what `fsync`
    /// compares with, to know whether the inode must be written).
    pub(crate) synced: DiskInode,
    /// How many times the on-disk form was taken (`to_disk`): its number
    /// orders the copies into the inode table.
    pub(crate) disk_seq: u64,
}

/// An inode's map mutex, held inside a [`NoFsScope`]: eviction, which
/// reclaim reaches through `prune_icache_sb`, takes the map mutex, so no
/// allocation under it may enter filesystem reclaim.  (rbfs allocates
/// nothing of its own under it, see `bmap::lock_map`; the scope covers the
/// buffer cache and whatever else the kernel allocates there.)  The mutex
/// is released before the scope ends.
pub(crate) struct MapGuard<'a> {
    st: Guard<'a, MapState, MutexBackend>,
    _nofs: NoFsScope,
}

impl core::ops::Deref for MapGuard<'_> {
    type Target = MapState;

    fn deref(&self) -> &MapState {
        &self.st
    }
}

impl core::ops::DerefMut for MapGuard<'_> {
    fn deref_mut(&mut self) -> &mut MapState {
        &mut self.st
    }
}

/// What rbfs keeps with every in-memory inode.
#[pin_data]
pub(crate) struct InodeInfo {
    /// The block map; taken through [`InodeInfo::lock_map`] only.
    #[pin]
    map: Mutex<MapState>,
    /// The file type bits of the mode (never change).
    pub(crate) fmt: u16,
    /// Creation time (kept as read or set at creation).
    pub(crate) crtime: Timestamp,
    /// Generation number.
    pub(crate) generation: u32,
    /// Inode flags (`format::INODE_FLAG_*`); changed under `i_rwsem`
    /// (`set_flags`).
    pub(crate) flags: AtomicU32,
    /// The `disk_seq` of the copy in the inode table's buffer: a copy taken
    /// earlier than that one is not written over it.
    copied: AtomicU64,
    /// A fast symlink's target, NUL terminated (the VFS follows it through
    /// `i_link`, see [`InodeInfo::fast_symlink_target`]); empty otherwise.
    link: KVec<u8>,
}

impl InodeInfo {
    /// The target of a fast symlink.
    pub(crate) fn fast_symlink_target(&self) -> Option<&CStr> {
        CStr::from_bytes_with_nul(&self.link).ok()
    }

    /// Takes the map mutex, inside a no-filesystem-reclaim scope.
    pub(crate) fn lock_map(&self) -> MapGuard<'_> {
        let nofs = NoFsScope::enter();
        MapGuard {
            st: self.map.lock(),
            _nofs: nofs,
        }
    }
}

/// The data of an inode whose map, block count, type, creation time,
/// generation and flags are `base`'s, and whose copy on the disk is
/// `synced`.
fn info(base: DiskInode, synced: DiskInode, link: KVec<u8>) -> impl PinInit<InodeInfo, Error> {
    let st = MapState {
        ptrs: base.map,
        blocks: base.blocks,
        last: 0,
        meta_next: 0,
        meta_left: 0,
        pending: ordered::PendingRuns::new(),
        pending_blocks: 0,
        spare: None,
        epoch: 0,
        synced,
        disk_seq: 0,
    };
    try_pin_init!(InodeInfo {
        map <- new_mutex!(st, "rbfs::inode::map"),
        fmt: base.mode & format::S_IFMT,
        crtime: base.crtime,
        generation: base.generation,
        flags: AtomicU32::new(base.flags),
        copied: AtomicU64::new(0),
        link,
    })
}

/// Whether an inode is a directory.
pub(crate) fn is_dir(inode: &Inode<Rbfs>) -> bool {
    inode.data().fmt == format::S_IFDIR
}

/// Encodes a device number the way the kernel's `MKDEV` does.
fn mkdev(major: u32, minor: u32) -> u32 {
    (major << 20) | (minor & 0xfffff)
}

/// The kind and operations for an inode of mode `mode`.
fn kind(mode: u16, fast_symlink: bool, major: u32, minor: u32) -> Option<Kind<Rbfs>> {
    Some(match mode & format::S_IFMT {
        format::S_IFDIR => Kind::Dir(&dir::DIR_IOPS, &dir::DIR_FOPS),
        format::S_IFREG => Kind::Reg(&file::REG_IOPS, &file::REG_FOPS, &file::AOPS),
        format::S_IFLNK if fast_symlink => Kind::FastSymlink,
        format::S_IFLNK => Kind::Symlink(&file::AOPS),
        format::S_IFCHR => Kind::Chr(mkdev(major, minor)),
        format::S_IFBLK => Kind::Blk(mkdev(major, minor)),
        format::S_IFIFO => Kind::Fifo,
        format::S_IFSOCK => Kind::Sock,
        _ => return None,
    })
}

/// Reads the inode-table block holding `ino`; returns it and the offset.
fn table_block(sb: &SuperBlock<Rbfs>, ino: u32) -> Result<(Buffer<'_>, usize)> {
    let (block, offset) = sb
        .data()
        .sb
        .inode_location(ino)
        .map_err(|e| corrupt(sb, format_args!("inode {}", ino), e))?;
    Ok((sb.bread(u64::from(block))?, offset))
}

/// Returns inode `ino`, from the inode cache or read from the disk.
pub(crate) fn iget(sb: &SuperBlock<Rbfs>, ino: u32) -> Result<ARef<Inode<Rbfs>>> {
    iget_as(sb, ino, false)
}

/// Returns inode `ino` for a file handle: as [`iget`], but an inode number
/// out of range, a free inode or one without links is `ESTALE` (the
/// handle of a deleted file), not corruption.
pub(crate) fn iget_handle(sb: &SuperBlock<Rbfs>, ino: u64) -> Result<ARef<Inode<Rbfs>>> {
    let ino = u32::try_from(ino).map_err(|_| kernel::fs::estale())?;
    iget_as(sb, ino, true)
}

fn iget_as(sb: &SuperBlock<Rbfs>, ino: u32, handle: bool) -> Result<ARef<Inode<Rbfs>>> {
    let info_sb = sb.data();
    if let Err(e) = info_sb.sb.check_ino(ino) {
        if handle {
            return Err(kernel::fs::estale());
        }
        return Err(corrupt(sb, format_args!("reference to inode {}", ino), e));
    }
    let new = match sb.iget(u64::from(ino))? {
        Lookup::Cached(inode) => return Ok(inode),
        Lookup::New(new) => new,
    };
    let (buf, offset) = table_block(sb, ino)?;
    let parsed = {
        let data = buf.lock();
        let bytes = data
            .data()
            .get(offset..offset + format::INODE_SIZE)
            .ok_or_else(euclean)?;
        DiskInode::parse(bytes, ino, &info_sb.disk_sb())
    };
    drop(buf);
    let disk = match parsed {
        Ok(Some(i)) => i,
        Ok(None) if handle => return Err(kernel::fs::estale()),
        Ok(None) => {
            if info_sb.reports_allowed() {
                pr_err!(
                    "{}: corrupt metadata: inode {} is referenced but free\n",
                    sb.device_name(),
                    ino
                );
            }
            return Err(euclean());
        }
        Err(e) => return Err(corrupt(sb, format_args!("inode {}", ino), e)),
    };
    if disk.links == 0 {
        if handle {
            return Err(kernel::fs::estale());
        }
        if info_sb.reports_allowed() {
            pr_err!(
                "{}: corrupt metadata: inode {} is referenced but has no links\n",
                sb.device_name(),
                ino
            );
        }
        return Err(euclean());
    }
    let Some(k) = kind(
        disk.mode,
        disk.is_fast_symlink(),
        disk.rdev_major,
        disk.rdev_minor,
    ) else {
        return Err(corrupt(
            sb,
            format_args!("inode {}", ino),
            format::FormatError::BadField("mode"),
        ));
    };
    let link = if matches!(k, Kind::FastSymlink) {
        let inline = disk.inline_data();
        let target = &inline[..(disk.size as usize).min(inline.len())];
        if target.contains(&0) {
            return Err(corrupt(
                sb,
                format_args!("inode {}", ino),
                format::FormatError::BadField("symlink target"),
            ));
        }
        link_target(target)?
    } else {
        KVec::new()
    };
    let params = Params {
        kind: k,
        perm: disk.mode & 0o7777,
        nlink: disk.links,
        uid: disk.uid,
        gid: disk.gid,
        size: disk.size,
        blocks: disk.blocks,
        atime: (disk.atime.sec, disk.atime.nsec),
        mtime: (disk.mtime.sec, disk.mtime.nsec),
        ctime: (disk.ctime.sec, disk.ctime.nsec),
        flags: disk.flags,
        generation: disk.generation,
    };
    let data = info(disk, disk, link);
    new.init(params, data)
}

/// A fast symlink's target as kept in memory: NUL terminated.
fn link_target(target: &[u8]) -> Result<KVec<u8>> {
    let mut v = KVec::with_capacity(target.len() + 1, GFP_KERNEL)?;
    v.extend_from_slice(target, GFP_KERNEL)?;
    v.push(0, GFP_KERNEL)?;
    Ok(v)
}

/// Allocates an inode number and returns the new in-memory inode for it.
fn new_ino(sb: &SuperBlock<Rbfs>) -> Result<(u32, New<Rbfs>)> {
    let ino = alloc::alloc_ino(sb)?;
    match sb.iget(u64::from(ino)) {
        Ok(Lookup::New(new)) => Ok((ino, new)),
        Ok(Lookup::Cached(_)) => {
            // The bitmap says free, but the inode is in use.
            Err(corrupt(
                sb,
                format_args!("inode bitmap: inode {} in use but marked free", ino),
                format::FormatError::BadBitmap("inode in use marked free"),
            ))
        }
        Err(e) => {
            let _ = alloc::free_ino(sb, ino);
            Err(e)
        }
    }
}

/// Creates a new inode as `how` says: a regular file, directory (with its
/// first block: "." and ".."), device, FIFO, socket or symlink (`target`).
/// The inode is written to the inode table; the caller adds its entry.
pub(crate) fn create(how: &Creation<'_, Rbfs>, target: Option<&CStr>) -> Result<ARef<Inode<Rbfs>>> {
    let sb = how.dir().super_block();
    let bs = 1u64 << sb.data().block_log();
    let mode = how.mode;
    let fmt = mode & format::S_IFMT;
    let (major, minor) = (how.rdev >> 20, how.rdev & 0xfffff);
    let mut ptrs = [0u32; N_MAP];
    let mut size = 0;
    if let Some(t) = target {
        let t = t.as_bytes();
        if t.len() as u64 >= bs {
            return Err(Error::from_errno(-(kernel::bindings::ENAMETOOLONG as i32)));
        }
        if t.len() <= format::FAST_SYMLINK_MAX {
            let mut tmp = DiskInode {
                mode,
                ..Default::default()
            };
            tmp.set_fast_symlink(t).map_err(|_| EINVAL)?;
            ptrs = tmp.map;
            size = t.len() as u64;
        }
    }
    let fast = target.is_some() && size > 0;
    let k = kind(mode, fast, major, minor).ok_or(EINVAL)?;
    let is_dev = matches!(k, Kind::Chr(_) | Kind::Blk(_));
    if !is_dev && how.rdev != 0 {
        return Err(EINVAL);
    }
    let link = match (fast, target) {
        (true, Some(t)) => link_target(t.as_bytes())?,
        _ => KVec::new(),
    };
    // Flags a new inode takes from its directory, as ext2's
    // `ext2_mask_flags` (append-only and immutable are not inherited).
    let flags = how.dir().data().flags.load(Ordering::Relaxed) & format::INODE_FLAGS_INHERITED;
    let (ino, new) = new_ino(sb)?;
    let now = kernel::fs::real_time_secs();
    let generation = sb.data().new_generation();
    let params = Params {
        kind: k,
        perm: mode & 0o7777,
        nlink: if fmt == format::S_IFDIR { 2 } else { 1 },
        uid: 0,
        gid: 0,
        // A directory is never smaller than its first block.
        size: if fmt == format::S_IFDIR { bs } else { size },
        blocks: 0,
        atime: (now, 0),
        mtime: (now, 0),
        ctime: (now, 0),
        flags,
        generation,
    };
    let crtime = Timestamp { sec: now, nsec: 0 };
    // Nothing of it is on the disk yet: `synced` is no inode at all.
    let base = DiskInode {
        mode,
        crtime,
        generation,
        flags,
        map: ptrs,
        ..Default::default()
    };
    let data = info(base, DiskInode::default(), link);
    let inode = new.init_created(how, params, data);
    let inode = match inode {
        Ok(i) => i,
        Err(e) => {
            // Initialisation failed: the in-memory inode is gone
            // (`iget_failed`), nothing is on the disk yet.
            let _ = alloc::free_ino(sb, ino);
            return Err(e);
        }
    };
    // From here on, a failure drops the link count to 0 and the inode,
    // whose eviction frees what it has.
    let r = (|| {
        if fmt == format::S_IFDIR {
            dir::init_dir(&inode, how.dir().ino() as u32)?;
        } else if let (false, Some(t)) = (fast, target) {
            inode.write_symlink_target(t)?;
            // The inode must point at the target's block from its first
            // write: publish it now (nobody else holds a new inode's locks).
            ordered::commit(&inode, ordered::Commit::Try)?;
        }
        write_inode(&inode, false)
    })();
    if let Err(e) = r {
        // Nobody else can reach the new inode: its lock is free.
        inode.lock().clear_nlink();
        return Err(e);
    }
    Ok(inode)
}

/// The on-disk form of `inode`: its map and block count as published,
/// without the blocks still pending (`ordered::commit`); and its number in
/// the order such forms were taken.
fn to_disk(inode: &Inode<Rbfs>) -> (DiskInode, u64) {
    let d = inode.data();
    let spb = (1u64 << inode.super_block().data().block_log()) / kernel::fs::SECTOR_SIZE;
    let mut st = d.lock_map();
    st.disk_seq += 1;
    let seq = st.disk_seq;
    let ts = |(sec, nsec): (i64, u32)| Timestamp { sec, nsec };
    let is_dev = matches!(d.fmt, format::S_IFCHR | format::S_IFBLK);
    let rdev = inode.rdev();
    let disk = DiskInode {
        mode: inode.mode(),
        uid: inode.uid(),
        gid: inode.gid(),
        links: inode.nlink(),
        size: inode.size(),
        atime: ts(inode.atime()),
        mtime: ts(inode.mtime()),
        ctime: ts(inode.ctime()),
        crtime: d.crtime,
        flags: d.flags.load(Ordering::Relaxed),
        generation: d.generation,
        blocks: st.blocks.saturating_sub(st.pending_blocks * spb),
        rdev_major: if is_dev { rdev >> 20 } else { 0 },
        rdev_minor: if is_dev { rdev & 0xfffff } else { 0 },
        map: st.ptrs,
    };
    (disk, seq)
}

/// Writes `inode` into its slot of the inode table (in the buffer cache);
/// with `sync`, writes the block to the disk and waits.
///
/// First pending blocks are published (`ordered::commit`): with `sync`, all of
/// them if the writers can be shut out without waiting; without, those
/// whose data has reached the disk.  What is left keeps the inode dirty,
/// and writeback comes back for it.  The slot gets the map as published,
/// so the disk never sees a pointer before its data.
pub(crate) fn write_inode(inode: &Inode<Rbfs>, sync: bool) -> Result {
    let sb = inode.super_block();
    let ino = inode.ino() as u32;
    let mut result = Ok(());
    let how = if sync {
        ordered::Commit::Try
    } else {
        ordered::Commit::Ready
    };
    match ordered::commit(inode, how) {
        Ok(true) => {}
        // Blocks left pending: writeback comes back for them.
        Ok(false) => inode.mark_dirty(),
        Err(e) => {
            inode.mark_dirty();
            if e != EAGAIN {
                result = Err(e);
            }
        }
    }
    let (disk, seq) = to_disk(inode);
    if disk.is_symlink() && disk.size == 0 {
        // A long symlink being created: its target is not written yet.
        // `create` writes the inode once it is.
        return Ok(());
    }
    if let Err(e) = disk.validate(&sb.data().disk_sb()) {
        // A bug, not corruption: refuse to write a wrong inode.
        pr_err!("{}: not writing inode {}: {}\n", sb.device_name(), ino, e);
        return Err(EIO);
    }
    let mut out = [0u8; format::INODE_SIZE];
    disk.encode(ino, &mut out);
    let (buf, offset) = table_block(sb, ino)?;
    {
        let mut data = buf.lock();
        // Concurrent writers of the inode (writeback, fsync) copy in the
        // order they took its form: the block never goes back to an older
        // state of the inode.  If a later form is there already, it stays.
        if inode.data().copied.fetch_max(seq, Ordering::Relaxed) < seq {
            let slot = data
                .data_mut()
                .get_mut(offset..offset + format::INODE_SIZE)
                .ok_or(EINVAL)?;
            slot.copy_from_slice(&out);
        }
    }
    if sync {
        buf.sync()?;
        // The disk holds this form of the inode or a later one.
        inode.data().lock_map().synced = disk;
    }
    result
}

/// The inode part of `fsync`: writes the inode and waits if the disk's copy
/// may differ from it in what the sync covers (for `datasync`: the size,
/// the map and the block count; else everything).  The VFS's dirty bits
/// cannot say that: background writeback clears them when it copies the
/// inode into the inode table's buffer, long before that buffer is
/// written.
pub(crate) fn sync_if_changed(inode: &Inode<Rbfs>, datasync: bool) -> Result {
    let (now, _) = to_disk(inode);
    let same = {
        let st = inode.data().lock_map();
        let old = &st.synced;
        if datasync {
            now.size == old.size && now.map == old.map && now.blocks == old.blocks
        } else {
            now == *old
        }
    };
    if same {
        return Ok(());
    }
    write_inode(inode, true)
}

/// `evict_inode`: an inode without links gives its blocks and its slot
/// back.
pub(crate) fn evict(inode: &Inode<Rbfs>) {
    if inode.is_bad() {
        return;
    }
    if inode.nlink() != 0 {
        // Only a clean inode leaves the cache while it has links, and a
        // clean inode has nothing pending (an inode with pending blocks is
        // kept dirty).  Should one have, its data is on the disk by now
        // (the page cache was written and waited for): publish it rather
        // than lose it.
        if inode.data().lock_map().pending_blocks != 0 && !inode.super_block().is_read_only() {
            let _ = ordered::publish_all(inode).and_then(|_| write_inode(inode, false));
        }
        return;
    }
    let sb = inode.super_block();
    if sb.is_read_only() {
        return;
    }
    let ino = inode.ino() as u32;
    // Freeing the blocks and the slot changes the filesystem: not while it
    // is frozen (as ext2's `ext2_evict_inode`).
    let _frozen_out = sb.start_intwrite();
    let r = (|| {
        // Fast symlinks keep their target in the map: nothing to free.
        let fast =
            inode.data().fmt == format::S_IFLNK && inode.size() <= format::FAST_SYMLINK_MAX as u64;
        if !fast {
            truncate::truncate_blocks(inode, 0)?;
        }
        let (buf, offset) = table_block(sb, ino)?;
        {
            let mut data = buf.lock();
            let slot = data
                .data_mut()
                .get_mut(offset..offset + format::INODE_SIZE)
                .ok_or(EINVAL)?;
            slot.fill(0);
        }
        alloc::free_ino(sb, ino)
    })();
    if let Err(e) = r {
        pr_err!(
            "{}: freeing inode {} failed (error {}); run fsck.rbfs\n",
            sb.device_name(),
            ino,
            e.to_errno()
        );
    }
}

// rbfs stores the kernel's own flag values (as ext2 does).
const _: () = {
    use kernel::fs::inode::flags;
    assert!(format::INODE_FLAG_APPEND == flags::APPEND);
    assert!(format::INODE_FLAG_IMMUTABLE == flags::IMMUTABLE);
    assert!(format::INODE_FLAG_NODUMP == flags::NODUMP);
    assert!(format::INODE_FLAG_NOATIME == flags::NOATIME);
};

/// The flags `FS_IOC_GETFLAGS` reports (and `chattr` shows).
pub(crate) fn get_flags(inode: &Inode<Rbfs>) -> u32 {
    inode.data().flags.load(Ordering::Relaxed)
}

/// `FS_IOC_SETFLAGS`: stores `fl` as the inode's flags; the inode is written
/// back later (the caller marks it dirty).  Flags rbfs does not keep are
/// refused with `EOPNOTSUPP`, so that `chattr +S` says so rather than
/// seeming to succeed.  The first flag on a filesystem turns on its
/// inode-flags feature, on the disk before any inode with a flag can get
/// there.
pub(crate) fn set_flags(inode: &Exclusive<Rbfs>, fl: u32) -> Result {
    if fl & !format::INODE_FLAGS_KNOWN != 0 {
        return Err(kernel::fs::eopnotsupp());
    }
    if fl != 0 {
        crate::sb::enable_ro_compat(inode.super_block(), format::FEATURE_RO_COMPAT_INODE_FLAGS)?;
    }
    inode.data().flags.store(fl, Ordering::Relaxed);
    Ok(())
}
