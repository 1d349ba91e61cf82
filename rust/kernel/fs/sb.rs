// SPDX-License-Identifier: GPL-2.0

//! Super blocks.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h).

use super::{buffer::Buffer, inode, FileSystem};
use crate::bindings;
use crate::error::{code::*, from_result, Result};
use crate::types::{ARef, ForeignOwnable, Opaque};
use core::marker::PhantomData;

/// A `FITRIM` request (`struct fstrim_range`) in filesystem blocks.
pub struct TrimRange {
    /// The first block to look at.
    pub start: u64,
    /// The block after the last one to look at (clamped to the filesystem
    /// by the filesystem).
    pub end: u64,
    /// Runs of free blocks shorter than this are left alone (at least 1,
    /// and at least the device's discard granularity).
    pub min_len: u64,
}

/// `FITRIM` on a file of a filesystem with [`FileSystem::trim`]: its
/// `unlocked_ioctl`, as ext4's: `EPERM` without `CAP_SYS_ADMIN`,
/// `EOPNOTSUPP` if the device cannot discard, `EINVAL` for a length under a
/// block, and the range's `len` set to the bytes discarded.  Every other
/// command is `ENOTTY` (`-ENOIOCTLCMD`).
///
/// # Safety
///
/// Called by `vfs_ioctl` with an open file of a filesystem of type `T`.
pub(crate) unsafe extern "C" fn ioctl<T: FileSystem>(
    file: *mut bindings::file,
    cmd: core::ffi::c_uint,
    arg: usize,
) -> isize {
    const FITRIM: u32 = crate::ioctl::_IOWR::<bindings::fstrim_range>(b'X' as u32, 121);
    if cmd != FITRIM {
        return -(bindings::ENOIOCTLCMD as isize);
    }
    from_result(|| {
        // SAFETY: Called from a syscall, in the caller's context.
        if !unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) } {
            return Err(EPERM);
        }
        // SAFETY: An open file pins its inode and, through it, the active
        // super block of type `T` (per the safety requirements).
        let sb = unsafe { SuperBlock::<T>::from_raw((*(*file).f_inode).i_sb) };
        if !sb.can_discard() {
            return Err(super::eopnotsupp());
        }
        let size = core::mem::size_of::<bindings::fstrim_range>();
        let (mut reader, mut writer) = crate::uaccess::UserSlice::new(arg, size).reader_writer();
        let start: u64 = reader.read()?;
        let len: u64 = reader.read()?;
        let min_len: u64 = reader.read()?;
        let bs = u64::from(sb.block_size());
        if len < bs {
            return Err(EINVAL);
        }
        // SAFETY: The super block's open device.
        let granularity = u64::from(unsafe { bindings::bdev_discard_granularity(sb.bdev_raw()) });
        let range = TrimRange {
            start: start / bs,
            end: (start / bs).saturating_add(len / bs),
            min_len: min_len.max(granularity).div_ceil(bs).max(1),
        };
        let trimmed = T::trim(sb, &range)?;
        writer.write(&start)?;
        writer.write(&trimmed.saturating_mul(bs))?;
        writer.write(&min_len)?;
        Ok(0)
    }) as isize
}

/// A mounted super block of filesystem `T`.
///
/// # Invariants
///
/// The wrapped `struct super_block` belongs to a filesystem of type `T`
/// and its `s_fs_info` was set from a `T::Data` by `fill_super`, and stays
/// valid until `kill_sb`.  References to a `SuperBlock` exist only while
/// the super block is active (from inside its own callbacks, or through an
/// inode or file of it).  Its device refuses writers other than the
/// filesystem for as long (`fill_super` mounts nothing else).
#[repr(transparent)]
pub struct SuperBlock<T: FileSystem>(Opaque<bindings::super_block>, PhantomData<T>);

impl<T: FileSystem> SuperBlock<T> {
    /// # Safety
    ///
    /// `sb` is a valid super block of type `T` with `s_fs_info` set, that
    /// stays valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(sb: *mut bindings::super_block) -> &'a Self {
        // SAFETY: `SuperBlock` is transparent over the C struct; validity
        // per the safety requirements.
        unsafe { &*sb.cast() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::super_block {
        self.0.get()
    }

    /// The filesystem's data, as returned by [`FileSystem::fill_super`].
    pub fn data(&self) -> <T::Data as ForeignOwnable>::Borrowed<'_> {
        // SAFETY: `s_fs_info` holds a `T::Data` until `kill_sb`, and `&self`
        // cannot outlive the mount (type invariants).
        unsafe { T::Data::borrow((*self.as_raw()).s_fs_info) }
    }

    /// The block size the buffer cache uses for this device.
    pub fn block_size(&self) -> u32 {
        // SAFETY: Read-only after `fill_super`.
        unsafe { (*self.as_raw()).s_blocksize as u32 }
    }

    /// The device's name, e.g. `vda`.
    pub fn device_name(&self) -> &crate::str::CStr {
        // SAFETY: `s_id` is a NUL-terminated array set when the super block
        // was created and never changed afterwards.
        unsafe { crate::str::CStr::from_char_ptr((*self.as_raw()).s_id.as_ptr()) }
    }

    /// Whether the filesystem is mounted read-only.
    pub fn is_read_only(&self) -> bool {
        // SAFETY: A racy read of the flags is what `sb_rdonly` does too.
        unsafe { (*self.as_raw()).s_flags & bindings::SB_RDONLY != 0 }
    }

    /// Starts a change the filesystem makes of its own accord, not on a
    /// user's write (freeing a deleted inode's blocks in `evict_inode`,
    /// say), under freeze protection (`sb_start_intwrite`): a freeze waits
    /// for it to end, and it waits for the thaw if the filesystem is
    /// frozen.  It ends when the returned guard is dropped.
    pub fn start_intwrite(&self) -> IntWrite<'_, T> {
        // SAFETY: A live super block; `sb_start_intwrite` may sleep, which
        // the caller allows by calling this.
        unsafe { bindings::sb_start_intwrite(self.as_raw()) };
        // INVARIANT: Started just now.
        IntWrite(self)
    }

    /// Whether inodes whose last link is gone are still in use (open or
    /// mapped): their blocks are freed only when the last user goes, so
    /// until then the disk holds allocated inodes that no directory names
    /// (`s_remove_count`).
    pub fn has_unlinked_in_use(&self) -> bool {
        // SAFETY: A live super block; the counter is only changed
        // atomically and is read atomically, through a raw pointer (no
        // reference to memory others change).
        unsafe {
            bindings::atomic_long_read(core::ptr::addr_of!((*self.as_raw()).s_remove_count)) != 0
        }
    }

    /// Makes the filesystem read-only (after detecting corruption, for
    /// `errors=remount-ro`), as ext2's `ext2_error` does, but with an
    /// atomic or: callers hold no lock (corruption is found anywhere), so
    /// the flag is set without `s_umount`, and an atomic read-modify-write
    /// loses no other flag that changes meanwhile.  (A remount racing with
    /// it can still write its own flags over the bit, as with ext2.)
    pub fn force_read_only(&self) {
        // SAFETY: `s_flags` is a properly aligned `unsigned long` of a
        // valid super block, which lives for `&self`; the kernel reads it
        // with `READ_ONCE`-style racy loads (`sb_rdonly`).
        let flags = unsafe {
            core::sync::atomic::AtomicUsize::from_ptr(
                core::ptr::addr_of_mut!((*self.as_raw()).s_flags).cast::<usize>(),
            )
        };
        flags.fetch_or(bindings::SB_RDONLY, core::sync::atomic::Ordering::Relaxed);
    }

    /// The super block's open block device.
    pub(crate) fn bdev_raw(&self) -> *mut bindings::block_device {
        // SAFETY: `s_bdev` is set for the life of a block-device super block.
        unsafe { (*self.as_raw()).s_bdev }
    }

    /// Whether the device can discard (`bdev_max_discard_sectors`).
    pub fn can_discard(&self) -> bool {
        // SAFETY: The super block's open device.
        unsafe { bindings::bdev_max_discard_sectors(self.bdev_raw()) != 0 }
    }

    /// Discards `count` blocks from block `block` on the device and waits
    /// for it (`blkdev_issue_discard`).  The blocks read as undefined
    /// afterwards: for free blocks only (a filesystem that discards blocks
    /// in use loses their data, which memory safety does not depend on:
    /// the buffer and page caches keep what they hold).  Allocates with
    /// `GFP_NOFS`, so it may be called under locks that reclaim takes.
    pub fn discard(&self, block: u64, count: u64) -> Result {
        let shift = self.block_size().trailing_zeros() - bindings::SECTOR_SHIFT;
        let (Some(sector), Some(sectors)) = (block.checked_shl(shift), count.checked_shl(shift))
        else {
            return Err(EINVAL);
        };
        // SAFETY: The super block's open device; the call waits for the
        // discard bios it issues.
        crate::error::to_result(unsafe {
            bindings::blkdev_issue_discard(self.bdev_raw(), sector, sectors, bindings::GFP_NOFS)
        })
    }

    /// Reads block `block` of the device through the buffer cache.
    pub fn bread(&self, block: u64) -> Result<Buffer<'_>> {
        // SAFETY: The device of this super block, which is alive while
        // borrowed and was filled (`fill_super`) only with writes by others
        // refused.
        unsafe { Buffer::read(self.bdev_raw(), block, self.block_size()) }
    }

    /// Returns block `block` filled with zeroes, without reading it, for a
    /// block just allocated.
    pub fn zeroed_block(&self, block: u64) -> Result<Buffer<'_>> {
        // SAFETY: As in `bread`.
        unsafe { Buffer::zeroed(self.bdev_raw(), block, self.block_size()) }
    }

    /// Forgets the buffer-cache copy of block `block`, if any, dirty or not
    /// (see [`Buffer::forget`]): for a metadata block being freed.
    pub fn forget_block(&self, block: u64) {
        // SAFETY: The super block is valid and its device open.
        super::buffer::forget_cached(unsafe { (*self.as_raw()).s_bdev }, block, self.block_size())
    }

    /// Returns the in-memory inode `ino`, reading it with `T::read_inode`
    /// style code through [`inode::New`] if it is not cached.
    pub fn iget(&self, ino: u64) -> Result<inode::Lookup<T>> {
        inode::Lookup::get(self, ino)
    }
}

/// Freeze protection for an internal change of a filesystem, from
/// [`SuperBlock::start_intwrite`]; ends it (`sb_end_intwrite`) when
/// dropped.
///
/// # Invariants
///
/// The holder started the protection on the super block, once.
pub struct IntWrite<'a, T: FileSystem>(&'a SuperBlock<T>);

impl<T: FileSystem> Drop for IntWrite<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Started by `start_intwrite` (type invariant), ended once.
        unsafe { bindings::sb_end_intwrite(self.0.as_raw()) };
    }
}

/// A super block being set up by [`FileSystem::fill_super`].
///
/// # Invariants
///
/// The super block is new, locked, and seen by nobody else; `s_fs_info` is
/// not set yet.
pub struct NewSuperBlock<'a, T: FileSystem> {
    sb: *mut bindings::super_block,
    _p: PhantomData<(&'a (), T)>,
}

impl<'a, T: FileSystem> NewSuperBlock<'a, T> {
    /// # Safety
    ///
    /// `sb` is a new super block of type `T` being filled, valid for `'a`,
    /// on a device that refuses writers other than the filesystem.
    pub(crate) unsafe fn from_raw(sb: *mut bindings::super_block) -> Self {
        // INVARIANT: Per the safety requirements (`get_tree_bdev` hands a
        // new, locked super block to `fill_super` before anyone sees it).
        Self {
            sb,
            _p: PhantomData,
        }
    }

    pub(crate) fn init_ops(&self) {
        // SAFETY: The super block is ours (type invariant).
        unsafe {
            (*self.sb).s_op = &Tables::<T>::SUPER_OPS;
            if T::HAS_EXPORT_INODE {
                (*self.sb).s_export_op = &Tables::<T>::EXPORT_OPS;
            }
            (*self.sb).s_magic = T::MAGIC as _;
            (*self.sb).s_time_gran = 1;
        }
    }

    /// Sets the block size of the device's buffer cache.  Fails with
    /// `EINVAL` if the device cannot use it (e.g. smaller than its
    /// logical block size).
    pub fn set_block_size(&self, size: u32) -> Result {
        // SAFETY: The super block is ours and has its device.
        if unsafe { bindings::sb_set_blocksize(self.sb, size as i32) } == 0 {
            return Err(EINVAL);
        }
        Ok(())
    }

    /// Sets the smallest block size the device allows that is at least
    /// `size`, and returns it.
    pub fn set_min_block_size(&self, size: u32) -> Result<u32> {
        // SAFETY: The super block is ours and has its device.
        let got = unsafe { bindings::sb_min_blocksize(self.sb, size as i32) };
        if got == 0 {
            return Err(EINVAL);
        }
        Ok(got as u32)
    }

    /// The block size currently set.
    pub fn block_size(&self) -> u32 {
        // SAFETY: The super block is ours.
        unsafe { (*self.sb).s_blocksize as u32 }
    }

    /// The device's size in bytes.
    pub fn device_size(&self) -> u64 {
        // SAFETY: The device is open for the life of the super block.
        let bytes = unsafe { bindings::bdev_nr_bytes((*self.sb).s_bdev) };
        bytes.max(0) as u64
    }

    /// The device's name, e.g. `vda`.
    pub fn device_name(&self) -> &crate::str::CStr {
        // SAFETY: `s_id` is set before `fill_super` and NUL terminated.
        unsafe { crate::str::CStr::from_char_ptr((*self.sb).s_id.as_ptr()) }
    }

    /// Reads block `block` (in units of the current block size).
    pub fn bread(&self, block: u64) -> Result<Buffer<'_>> {
        // SAFETY: The device of the super block being filled, alive while
        // `self` is; `fill_super` checked that writes by others are
        // refused before it made `self`.
        unsafe { Buffer::read((*self.sb).s_bdev, block, self.block_size()) }
    }

    /// Sets the largest file size the filesystem supports.
    pub fn set_max_bytes(&self, max: u64) {
        // SAFETY: The super block is ours.
        unsafe { (*self.sb).s_maxbytes = max.min(i64::MAX as u64) as i64 };
    }

    /// Whether the mount asked for read-only.
    pub fn is_read_only(&self) -> bool {
        // SAFETY: The super block is ours.
        unsafe { (*self.sb).s_flags & bindings::SB_RDONLY != 0 }
    }

    /// Forces the mount read-only (for a filesystem, or a state of one,
    /// that cannot be written).
    pub fn force_read_only(&self) {
        // SAFETY: The super block is ours.
        unsafe { (*self.sb).s_flags |= bindings::SB_RDONLY };
    }

    /// Sets the UUID reported by `statx`/`FS_IOC_GETFSUUID` (`s_uuid`).
    pub fn set_uuid(&self, uuid: &[u8; 16]) {
        // SAFETY: The super block is ours; `s_uuid` is 16 bytes.
        unsafe {
            (*self.sb).s_uuid.b.copy_from_slice(uuid);
            (*self.sb).s_uuid_len = 16;
        }
    }
}

/// Mount flags of a (re)mount request.
#[derive(Clone, Copy, Debug)]
pub struct MountFlags(u32);

impl MountFlags {
    pub(crate) fn from_raw(f: u32) -> Self {
        Self(f)
    }

    pub(crate) fn as_raw(self) -> u32 {
        self.0
    }

    /// Whether the request is for a read-only mount.
    pub fn read_only(&self) -> bool {
        self.0 & bindings::SB_RDONLY as u32 != 0
    }

    /// Makes the request read-only.
    pub fn set_read_only(&mut self) {
        self.0 |= bindings::SB_RDONLY as u32;
    }
}

/// Filesystem statistics for `statfs(2)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Stat {
    /// Block size (`f_bsize`).
    pub block_size: u32,
    /// Total data blocks (`f_blocks`).
    pub blocks: u64,
    /// Free blocks (`f_bfree`, also `f_bavail`: nothing is reserved).
    pub free_blocks: u64,
    /// Total inodes (`f_files`).
    pub files: u64,
    /// Free inodes (`f_ffree`).
    pub free_files: u64,
    /// Longest file name (`f_namelen`).
    pub name_len: u32,
    /// Filesystem id (`f_fsid`), usually from the UUID.
    pub fsid: u64,
}

struct Tables<T: FileSystem>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    const SUPER_OPS: bindings::super_operations = {
        // SAFETY: All-zeroes is a valid `super_operations` (all `None`).
        let mut ops: bindings::super_operations = unsafe { core::mem::zeroed() };
        ops.alloc_inode = Some(inode::Tables::<T>::alloc_inode);
        ops.free_inode = Some(inode::Tables::<T>::free_inode);
        ops.statfs = Some(Self::statfs);
        if T::HAS_WRITE_INODE {
            ops.write_inode = Some(Self::write_inode);
        }
        // Always installed: it also drops the inode's buffer list, which
        // the VFS's default eviction does not.
        ops.evict_inode = Some(Self::evict_inode);
        if T::HAS_SYNC_FS {
            ops.sync_fs = Some(Self::sync_fs);
        }
        if T::HAS_PUT_SUPER {
            ops.put_super = Some(Self::put_super);
        }
        if T::HAS_FREEZE_FS {
            ops.freeze_fs = Some(Self::freeze_fs);
            ops.unfreeze_fs = Some(Self::unfreeze_fs);
        }
        ops
    };

    /// File handles ([`FileSystem::export_inode`]): the generic 32-bit
    /// encoding (`generic_encode_ino32_fh`: inode number and generation,
    /// and the parent's with a connectable handle), decoded by the generic
    /// helpers through `get_inode`.
    const EXPORT_OPS: bindings::export_operations = {
        // SAFETY: All-zeroes is a valid `export_operations` (all `None`).
        let mut ops: bindings::export_operations = unsafe { core::mem::zeroed() };
        ops.encode_fh = Some(bindings::generic_encode_ino32_fh);
        ops.fh_to_dentry = Some(Self::fh_to_dentry);
        ops.fh_to_parent = Some(Self::fh_to_parent);
        ops.get_parent = Some(Self::get_parent);
        ops
    };

    /// The inode of a handle's inode number, if its generation is `generation`
    /// (0: any), as `generic_fh_to_dentry` wants it: referenced, or an
    /// error pointer.
    ///
    /// # Safety
    ///
    /// Called by the exportfs helpers with an active super block of type
    /// `T`.
    unsafe extern "C" fn get_inode(
        sb: *mut bindings::super_block,
        ino: u64,
        generation: u32,
    ) -> *mut bindings::inode {
        // SAFETY: Per the safety requirements.
        let sbr = unsafe { SuperBlock::<T>::from_raw(sb) };
        let err = match T::export_inode(sbr, ino) {
            Ok(inode) if generation == 0 || inode.generation() == generation => {
                return ARef::into_raw(inode).as_ptr().cast();
            }
            // Dropping the reference releases the inode.
            Ok(_) => super::estale(),
            Err(e) => e,
        };
        // SAFETY: `ERR_PTR` only encodes the error number.
        unsafe { bindings::ERR_PTR(err.to_errno() as _).cast() }
    }

    /// # Safety
    ///
    /// Called by `exportfs_decode_fh` with an active super block of type
    /// `T` and a handle of `fh_len` words.
    unsafe extern "C" fn fh_to_dentry(
        sb: *mut bindings::super_block,
        fid: *mut bindings::fid,
        fh_len: core::ffi::c_int,
        fh_type: core::ffi::c_int,
    ) -> *mut bindings::dentry {
        // SAFETY: Per the safety requirements; `get_inode` has the
        // signature and contract the helper needs.
        unsafe { bindings::generic_fh_to_dentry(sb, fid, fh_len, fh_type, Some(Self::get_inode)) }
    }

    /// # Safety
    ///
    /// As for `fh_to_dentry`.
    unsafe extern "C" fn fh_to_parent(
        sb: *mut bindings::super_block,
        fid: *mut bindings::fid,
        fh_len: core::ffi::c_int,
        fh_type: core::ffi::c_int,
    ) -> *mut bindings::dentry {
        // SAFETY: As for `fh_to_dentry`.
        unsafe { bindings::generic_fh_to_parent(sb, fid, fh_len, fh_type, Some(Self::get_inode)) }
    }

    /// # Safety
    ///
    /// Called by exportfs with a positive dentry of a directory of a super
    /// block of type `T`.
    unsafe extern "C" fn get_parent(child: *mut bindings::dentry) -> *mut bindings::dentry {
        // SAFETY: A positive dentry pins its initialised inode.
        let dir = unsafe { inode::Inode::<T>::from_raw((*child).d_inode) };
        match T::export_parent(dir) {
            // SAFETY: `d_obtain_alias` consumes the reference `into_raw`
            // hands over, on failure too.
            Ok(parent) => unsafe {
                bindings::d_obtain_alias(ARef::into_raw(parent).as_ptr().cast())
            },
            // SAFETY: `ERR_PTR` only encodes the error number.
            Err(e) => unsafe { bindings::ERR_PTR(e.to_errno() as _).cast() },
        }
    }

    /// # Safety
    ///
    /// Called by the VFS's inode writeback with an initialised inode of a
    /// super block of type `T` and a valid writeback control.
    unsafe extern "C" fn write_inode(
        inode: *mut bindings::inode,
        wbc: *mut bindings::writeback_control,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: The inode is referenced by the writeback (`I_SYNC`) and
            // was initialised: uninitialised inodes are never dirty.
            let i = unsafe { inode::Inode::<T>::from_raw(inode) };
            // SAFETY: `wbc` is valid for the call.
            let sync = unsafe { (*wbc).sync_mode } == bindings::writeback_sync_modes_WB_SYNC_ALL;
            T::write_inode(i, sync)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS (`evict`) once for each inode of a super block of
    /// type `T` that leaves the cache, with `I_FREEING` set.
    unsafe extern "C" fn evict_inode(inode: *mut bindings::inode) {
        // SAFETY: The inode is valid and ours until `clear_inode`;
        // truncating its page cache waits for any writeback of it.
        unsafe { bindings::truncate_inode_pages_final(&mut (*inode).i_data) };
        if inode::Inode::<T>::is_initialised_raw(inode) {
            if T::HAS_EVICT_INODE {
                // SAFETY: Initialised (checked just above), and alive until
                // `free_inode`, which comes after this call.
                T::evict_inode(unsafe { inode::Inode::<T>::from_raw(inode) });
            }
        }
        // SAFETY: The inode is being evicted: buffers associated with it by
        // `mark_buffer_dirty_inode` must go before `clear_inode`, which
        // requires the list to be empty.
        unsafe {
            bindings::invalidate_inode_buffers(inode);
            bindings::clear_inode(inode);
        }
    }

    /// # Safety
    ///
    /// Called by the VFS with an active super block of type `T`.
    unsafe extern "C" fn sync_fs(
        sb: *mut bindings::super_block,
        wait: core::ffi::c_int,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Active and filled: `s_fs_info` is set.
            let s = unsafe { SuperBlock::<T>::from_raw(sb) };
            T::sync_fs(s, wait != 0)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `freeze_super` with an active, filled super block of type
    /// `T`, under `s_umount`.
    unsafe extern "C" fn freeze_fs(sb: *mut bindings::super_block) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Active and filled: `s_fs_info` is set.
            T::freeze_fs(unsafe { SuperBlock::<T>::from_raw(sb) })?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `thaw_super` with an active, filled, frozen super block of
    /// type `T`, under `s_umount`.
    unsafe extern "C" fn unfreeze_fs(sb: *mut bindings::super_block) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Active and filled: `s_fs_info` is set.
            T::unfreeze_fs(unsafe { SuperBlock::<T>::from_raw(sb) })?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `generic_shutdown_super` for a filled super block of type
    /// `T`, after every inode was evicted.
    unsafe extern "C" fn put_super(sb: *mut bindings::super_block) {
        // SAFETY: `s_fs_info` is still set; `kill_sb` drops it afterwards.
        T::put_super(unsafe { SuperBlock::<T>::from_raw(sb) });
    }

    /// # Safety
    ///
    /// Called by the VFS with a dentry of a mounted filesystem of type `T`
    /// and a valid output buffer.
    unsafe extern "C" fn statfs(
        dentry: *mut bindings::dentry,
        buf: *mut bindings::kstatfs,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: The dentry pins its super block, whose `s_fs_info` is set.
            let sb = unsafe { SuperBlock::<T>::from_raw((*dentry).d_sb) };
            let s = T::statfs(sb)?;
            // SAFETY: `buf` is valid for writing (function safety requirement).
            let buf = unsafe { &mut *buf };
            buf.f_type = T::MAGIC as _;
            buf.f_bsize = s.block_size as _;
            buf.f_blocks = s.blocks;
            buf.f_bfree = s.free_blocks;
            buf.f_bavail = s.free_blocks;
            buf.f_files = s.files;
            buf.f_ffree = s.free_files;
            buf.f_namelen = s.name_len as _;
            buf.f_frsize = s.block_size as _;
            buf.f_fsid.val = [s.fsid as u32 as i32, (s.fsid >> 32) as u32 as i32];
            Ok(0)
        })
    }
}

// Keep `ARef` in scope for the docs of `iget`.
#[allow(dead_code)]
type _Doc<T> = Option<ARef<inode::Inode<T>>>;
