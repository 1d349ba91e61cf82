// SPDX-License-Identifier: GPL-2.0

//! Inodes.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h).
//!
//! Every inode of a filesystem `T` is allocated by `alloc_inode` inside a
//! container that also holds the filesystem's [`FileSystem::InodeData`],
//! from a slab cache of such containers that the filesystem's
//! [`super::Registration`] owns (`<name>_inode_cache` in `/proc/slabinfo`,
//! reclaimable and memcg-accounted, as C filesystems make theirs).
//! [`SuperBlock::iget`] finds an inode in the inode cache or hands out a
//! [`New`] one, locked (`I_NEW`), which the filesystem initialises exactly
//! once with [`New::init`]; dropping a [`New`] instead marks it bad and
//! releases it (`iget_failed`).  Only initialised inodes are ever seen as
//! [`Inode`], so their data is always there.

use super::{address_space, dentry::Dentry, file_ops, sb::SuperBlock, FileSystem};
use crate::alloc::flags::GFP_KERNEL;
use crate::bindings;
use crate::error::{code::*, from_result, Error, Result};
use crate::init::PinInit;
use crate::types::{ARef, AlwaysRefCounted, Opaque};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};

/// Inode attribute flags, as `FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS` and
/// `chattr(1)` name them (`FS_*_FL`).  The VFS enforces the first three
/// itself, through the inode's `i_flags` ([`Operations::set_flags`]).
pub mod flags {
    use crate::bindings;

    /// Append only (`chattr +a`): opened for writing only with `O_APPEND`;
    /// no truncation, unlink, rename, link or attribute change.
    pub const APPEND: u32 = bindings::FS_APPEND_FL;
    /// Immutable (`chattr +i`): no write, truncation, unlink, rename,
    /// link or attribute change; a directory gets no new or removed
    /// entries.
    pub const IMMUTABLE: u32 = bindings::FS_IMMUTABLE_FL;
    /// No access-time updates (`chattr +A`).
    pub const NOATIME: u32 = bindings::FS_NOATIME_FL;
    /// Not to be backed up by `dump(8)` (`chattr +d`); the kernel does not
    /// act on it.
    pub const NODUMP: u32 = bindings::FS_NODUMP_FL;

    /// The `i_flags` (`S_*`) the VFS enforces for `fl`, and the mask of all
    /// those it could set.
    pub(crate) fn vfs(fl: u32) -> (u32, u32) {
        let mut s = 0;
        if fl & APPEND != 0 {
            s |= bindings::S_APPEND;
        }
        if fl & IMMUTABLE != 0 {
            s |= bindings::S_IMMUTABLE;
        }
        if fl & NOATIME != 0 {
            s |= bindings::S_NOATIME;
        }
        (
            s,
            bindings::S_APPEND | bindings::S_IMMUTABLE | bindings::S_NOATIME,
        )
    }

    /// The `statx` attributes (`STATX_ATTR_*`) for `fl`, and the mask of
    /// those a filesystem with these flags reports.
    pub(crate) fn statx(fl: u32) -> (u64, u64) {
        let mut a = 0;
        if fl & APPEND != 0 {
            a |= bindings::STATX_ATTR_APPEND;
        }
        if fl & IMMUTABLE != 0 {
            a |= bindings::STATX_ATTR_IMMUTABLE;
        }
        if fl & NODUMP != 0 {
            a |= bindings::STATX_ATTR_NODUMP;
        }
        (
            a as u64,
            (bindings::STATX_ATTR_APPEND
                | bindings::STATX_ATTR_IMMUTABLE
                | bindings::STATX_ATTR_NODUMP) as u64,
        )
    }
}

/// Whether `inode` is immutable (`IS_IMMUTABLE`, see [`flags`]).
///
/// # Safety
///
/// `inode` is a valid inode.
pub(crate) unsafe fn raw_is_immutable(inode: *const bindings::inode) -> bool {
    // SAFETY: Valid per the safety requirements.  `i_flags` changes by
    // `cmpxchg` (`inode_set_flags`): a racy read sees the old or the new
    // value, as `IS_IMMUTABLE`'s does.
    let fl = unsafe { core::ptr::read_volatile(&raw const (*inode).i_flags) };
    fl & bindings::S_IMMUTABLE != 0
}

/// An initialised inode of filesystem `T`.
///
/// # Invariants
///
/// The inode was allocated by [`Tables::alloc_inode`] for a super block of
/// type `T` (so it sits in a [`Container<T>`]) and initialised by
/// [`New::init`] (so the container's data is initialised).  References are
/// only handed out while a reference count (`i_count`) is held.
#[repr(transparent)]
pub struct Inode<T: FileSystem>(Opaque<bindings::inode>, PhantomData<T>);

/// An inode whose `i_rwsem` is held exclusively for as long as the
/// reference lives: by the VFS around the operation it was handed to (the
/// directories of `create`, `link`, `unlink`, `rmdir` and `rename`, the
/// inodes being linked, unlinked or replaced, the inode of `setattr`), or
/// by an [`ExclusiveGuard`].  What needs `i_rwsem` (the size, the link
/// count, truncating the page cache) takes one of these, so holding the
/// lock is a type rule, not a comment.
///
/// ```ignore
/// // compile_fail: E0599
/// use kernel::fs::{inode::Inode, FileSystem};
/// fn f<T: FileSystem>(inode: &Inode<T>) {
///     inode.set_size(0); // ERROR
/// }
/// ```
///
/// # Invariants
///
/// The inode's `i_rwsem` is held exclusively while a reference exists.
#[repr(transparent)]
pub struct Exclusive<T: FileSystem>(Inode<T>);

impl<T: FileSystem> Exclusive<T> {
    /// # Safety
    ///
    /// The caller holds `inode`'s `i_rwsem` exclusively for `'a`.
    pub(crate) unsafe fn from_inode<'a>(inode: &'a Inode<T>) -> &'a Self {
        // SAFETY: Transparent wrapper.  INVARIANT: Per the safety
        // requirements.
        unsafe { &*(inode as *const Inode<T>).cast::<Self>() }
    }

    /// Sets the size (`i_size_write`).
    pub fn set_size(&self, size: u64) {
        // SAFETY: A valid inode whose `i_rwsem` we hold (type invariant),
        // which serialises size changes.
        unsafe { bindings::i_size_write(self.as_raw(), size as i64) }
    }

    /// Increments the link count and marks the inode dirty.
    pub fn inc_nlink(&self) {
        // SAFETY: A valid inode whose `i_rwsem` we hold (type invariant).
        unsafe { bindings::inc_nlink(self.as_raw()) };
        self.mark_dirty();
    }

    /// Decrements the link count and marks the inode dirty.
    pub fn drop_nlink(&self) {
        // SAFETY: As for `inc_nlink`; `drop_nlink` warns on underflow.
        unsafe { bindings::drop_nlink(self.as_raw()) };
        self.mark_dirty();
    }

    /// Sets the link count to 0 and marks the inode dirty.
    pub fn clear_nlink(&self) {
        // SAFETY: As for `inc_nlink`.
        unsafe { bindings::clear_nlink(self.as_raw()) };
        self.mark_dirty();
    }
}

impl<T: FileSystem> core::ops::Deref for Exclusive<T> {
    type Target = Inode<T>;

    fn deref(&self) -> &Inode<T> {
        &self.0
    }
}

/// `i_rwsem` of an inode, taken exclusively (`inode_lock`); released when
/// dropped.  For an inode nobody else can reach yet (e.g. one just created,
/// before its entry exists) or one the filesystem must lock itself.
pub struct ExclusiveGuard<'a, T: FileSystem>(&'a Inode<T>);

impl<T: FileSystem> Inode<T> {
    /// Takes `i_rwsem` exclusively, sleeping if needed.
    pub fn lock(&self) -> ExclusiveGuard<'_, T> {
        // SAFETY: A valid inode; `inode_lock` may sleep, which the caller
        // allows by calling this.
        unsafe { bindings::inode_lock(self.as_raw()) };
        ExclusiveGuard(self)
    }
}

impl<T: FileSystem> core::ops::Deref for ExclusiveGuard<'_, T> {
    type Target = Exclusive<T>;

    fn deref(&self) -> &Exclusive<T> {
        // SAFETY: We hold the lock until dropped, and the reference cannot
        // outlive `self`.
        unsafe { Exclusive::from_inode(self.0) }
    }
}

impl<T: FileSystem> Drop for ExclusiveGuard<'_, T> {
    fn drop(&mut self) {
        // SAFETY: Taken in `Inode::lock`.
        unsafe { bindings::inode_unlock(self.0.as_raw()) };
    }
}

/// What `alloc_inode` allocates: the VFS inode and the filesystem's data.
///
/// # Invariants
///
/// An object of the registration's inode cache; `inode` was initialised by
/// the cache's constructor (`inode_init_once`) and is handed back in that
/// state (the VFS's part of the contract); `data` is initialised iff
/// `data_init`; `cache` is the cache it came from.
#[repr(C)]
struct Container<T: FileSystem> {
    inode: Opaque<bindings::inode>,
    data: MaybeUninit<T::InodeData>,
    data_init: bool,
    /// The cache to give it back to: `free_inode` runs as an RCU callback,
    /// when the super block may be gone already.
    cache: *mut bindings::kmem_cache,
}

impl<T: FileSystem> Inode<T> {
    /// # Safety
    ///
    /// `inode` is an initialised inode of type `T` referenced for `'a`.
    pub(crate) unsafe fn from_raw<'a>(inode: *mut bindings::inode) -> &'a Self {
        // SAFETY: Transparent wrapper; validity per the safety requirements.
        unsafe { &*inode.cast() }
    }

    /// The C `struct inode`.
    pub fn as_raw(&self) -> *mut bindings::inode {
        self.0.get()
    }

    fn container(&self) -> &Container<T> {
        // SAFETY: Every inode of `T` is in a `Container<T>` (type invariant).
        unsafe { &*crate::container_of!(self.as_raw(), Container<T>, inode) }
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        // SAFETY: `i_ino` does not change after initialisation.
        unsafe { (*self.as_raw()).i_ino as u64 }
    }

    /// The super block the inode belongs to.
    pub fn super_block(&self) -> &SuperBlock<T> {
        // SAFETY: An inode pins its (active, filled) super block.
        unsafe { SuperBlock::from_raw((*self.as_raw()).i_sb) }
    }

    /// The filesystem's data of this inode.
    pub fn data(&self) -> &T::InodeData {
        // SAFETY: Initialised by `New::init` before any `Inode` reference
        // exists (type invariant), and dropped only in `free_inode`.
        unsafe { self.container().data.assume_init_ref() }
    }

    /// The file size (`i_size`).
    pub fn size(&self) -> u64 {
        // SAFETY: A racy read of `i_size` is what `i_size_read` does on
        // 64-bit; the VFS never sets a negative size (it checks sizes
        // against `s_maxbytes`, which is positive).
        unsafe { (*self.as_raw()).i_size as u64 }
    }

    /// Whether the inode was initialised (its data is there).
    pub(crate) fn is_initialised_raw(inode: *mut bindings::inode) -> bool {
        // SAFETY: Called for inodes of `T` (from `alloc_inode`, so in a
        // `Container<T>`), which are valid until `free_inode`.
        unsafe { (*crate::container_of!(inode, Container<T>, inode)).data_init }
    }

    /// The mode: file type and permission bits (`i_mode`).
    pub fn mode(&self) -> u16 {
        // SAFETY: A racy read of a plain integer, as the C code does.
        unsafe { (*self.as_raw()).i_mode }
    }

    /// The owner, in the filesystem's user namespace.
    pub fn uid(&self) -> u32 {
        // SAFETY: A valid inode.
        unsafe { bindings::i_uid_read(self.as_raw()) }
    }

    /// The group, in the filesystem's user namespace.
    pub fn gid(&self) -> u32 {
        // SAFETY: A valid inode.
        unsafe { bindings::i_gid_read(self.as_raw()) }
    }

    /// The device number of a device inode (`i_rdev`, kernel encoding).
    pub fn rdev(&self) -> u32 {
        // SAFETY: Set when the inode is initialised and never changed.
        unsafe { (*self.as_raw()).i_rdev }
    }

    /// The link count (`i_nlink`).
    pub fn nlink(&self) -> u32 {
        // SAFETY: A racy read of a plain integer; changed only under
        // `i_rwsem` (of the inode or of the directories involved).
        unsafe { (*self.as_raw()).__bindgen_anon_1.i_nlink }
    }

    /// The generation number (`i_generation`, set once from
    /// [`Params::generation`]).
    pub fn generation(&self) -> u32 {
        // SAFETY: Written once before the inode became visible.
        unsafe { (*self.as_raw()).i_generation }
    }

    /// Marks the inode dirty, so that `write_inode` writes it back.
    pub fn mark_dirty(&self) {
        // SAFETY: A valid, initialised inode.
        unsafe { bindings::mark_inode_dirty(self.as_raw()) }
    }

    /// Sets the space used, in 512-byte sectors (`i_blocks`), under
    /// `i_lock` as `inode_add_bytes` does.
    pub fn set_blocks(&self, sectors: u64) {
        let inode = self.as_raw();
        // SAFETY: A valid inode; `i_blocks` and `i_bytes` change only under
        // its `i_lock` (`inode_add_bytes`, `inode_get_bytes`), taken here.
        unsafe {
            let lock = core::ptr::addr_of_mut!((*inode).i_lock);
            bindings::spin_lock(lock);
            (*inode).i_blocks = sectors;
            (*inode).i_bytes = 0;
            bindings::spin_unlock(lock);
        }
    }

    /// Access time (seconds, nanoseconds).
    pub fn atime(&self) -> (i64, u32) {
        // SAFETY: Racy reads of plain integers, as `inode_get_atime` does.
        unsafe { ((*self.as_raw()).i_atime_sec, (*self.as_raw()).i_atime_nsec) }
    }

    /// Modification time (seconds, nanoseconds).
    pub fn mtime(&self) -> (i64, u32) {
        // SAFETY: As for `atime`.
        unsafe { ((*self.as_raw()).i_mtime_sec, (*self.as_raw()).i_mtime_nsec) }
    }

    /// Change time (seconds, nanoseconds).
    pub fn ctime(&self) -> (i64, u32) {
        // SAFETY: As for `atime`.
        unsafe { ((*self.as_raw()).i_ctime_sec, (*self.as_raw()).i_ctime_nsec) }
    }

    /// Sets the change time to now and marks the inode dirty.
    pub fn touch_ctime(&self) {
        // SAFETY: A valid inode; the VFS holds the locks that serialise
        // attribute changes for the callers (`i_rwsem`).
        unsafe { bindings::inode_set_ctime_current(self.as_raw()) };
        self.mark_dirty();
    }

    /// Sets the modification and change times to now and marks the inode
    /// dirty (a directory whose entries changed).
    pub fn touch_mtime_ctime(&self) {
        // SAFETY: As for `touch_ctime`.
        unsafe {
            let now = bindings::inode_set_ctime_current(self.as_raw());
            (*self.as_raw()).i_mtime_sec = now.tv_sec;
            (*self.as_raw()).i_mtime_nsec = now.tv_nsec as u32;
        }
        self.mark_dirty();
    }

    /// Writes the target of a symlink whose target lives in its page
    /// cache (`page_symlink`), through the inode's address-space
    /// operations, and marks the inode dirty.
    pub fn write_symlink_target(&self, target: &crate::str::CStr) -> Result {
        let len = target.len() + 1;
        // SAFETY: `target` is NUL terminated, so `len` bytes are readable
        // (`page_symlink` copies `len - 1` and sets the size to that); the
        // inode is a new symlink with page-cache operations.
        crate::error::to_result(unsafe {
            bindings::page_symlink(self.as_raw(), target.as_char_ptr(), len as i32)
        })
    }

    /// Whether the inode was marked bad (after an I/O error reading it).
    pub fn is_bad(&self) -> bool {
        // SAFETY: A valid inode.
        unsafe { bindings::is_bad_inode(self.as_raw()) }
    }
}

// SAFETY: The reference count is `i_count`, managed by `ihold`/`iput`, and
// inodes are freed only when it drops to zero (and then after RCU).
unsafe impl<T: FileSystem> AlwaysRefCounted for Inode<T> {
    fn inc_ref(&self) {
        // SAFETY: We hold a reference, so `ihold` may take another.
        unsafe { bindings::ihold(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns the reference being dropped.
        unsafe { bindings::iput(obj.as_ptr().cast()) };
    }
}

// SAFETY: Inodes are shared between threads by the VFS; all mutation of the
// C fields goes through the kernel's own locking, and the data is `Sync`.
unsafe impl<T: FileSystem> Send for Inode<T> {}
// SAFETY: See `Send`.
unsafe impl<T: FileSystem> Sync for Inode<T> {}

/// The result of [`SuperBlock::iget`].
pub enum Lookup<T: FileSystem> {
    /// The inode was in the inode cache, initialised.
    Cached(ARef<Inode<T>>),
    /// The inode is new: read it from the disk and [`New::init`] it.
    New(New<T>),
}

impl<T: FileSystem> Lookup<T> {
    pub(crate) fn get(sb: &SuperBlock<T>, ino: u64) -> Result<Self> {
        // SAFETY: The super block is active.
        let inode = unsafe { bindings::iget_locked(sb.as_raw(), ino as _) };
        let inode = NonNull::new(inode).ok_or(ENOMEM)?;
        // SAFETY: `iget_locked` returned a referenced inode.
        if unsafe { (*inode.as_ptr()).i_state } & bindings::I_NEW != 0 {
            // INVARIANT: Referenced by `iget_locked`, `I_NEW`, and fresh from
            // `alloc_inode`, which leaves the data uninitialised.
            Ok(Lookup::New(New {
                inode,
                _p: PhantomData,
            }))
        } else {
            // SAFETY: Not new, so initialised (`iget_locked` waits for
            // `I_NEW` to clear and retries on inodes that failed); we own
            // the reference it took.
            Ok(Lookup::Cached(unsafe { ARef::from_raw(inode.cast()) }))
        }
    }
}

/// A new, locked inode to be initialised from the disk.
///
/// # Invariants
///
/// `inode` is referenced, in `I_NEW` state, and its container's data is
/// not initialised.
pub struct New<T: FileSystem> {
    inode: NonNull<bindings::inode>,
    _p: PhantomData<T>,
}

/// What kind of inode, with the operations for it.
pub enum Kind<T: FileSystem> {
    /// A directory.
    Dir(&'static Ops<T>, &'static file_ops::Ops<T>),
    /// A regular file, with its inode, file and page-cache operations.
    Reg(
        &'static Ops<T>,
        &'static file_ops::Ops<T>,
        &'static address_space::Ops<T>,
    ),
    /// A symlink whose target is read through the page cache.
    Symlink(&'static address_space::Ops<T>),
    /// A symlink whose target is kept in the inode's data
    /// ([`FileSystem::fast_symlink_target`]).
    FastSymlink,
    /// A character device with its device number.
    Chr(u32),
    /// A block device with its device number.
    Blk(u32),
    /// A named pipe.
    Fifo,
    /// A socket.
    Sock,
}

/// The attributes of an inode read from the disk.
pub struct Params<T: FileSystem> {
    /// Kind and operations.
    pub kind: Kind<T>,
    /// Permission bits and set-id/sticky bits (`mode & 0o7777`).
    pub perm: u16,
    /// Link count.
    pub nlink: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Space used, in 512-byte sectors (`st_blocks`).
    pub blocks: u64,
    /// Access, modification and change times (seconds, nanoseconds).
    pub atime: (i64, u32),
    /// See `atime`.
    pub mtime: (i64, u32),
    /// See `atime`.
    pub ctime: (i64, u32),
    /// Attribute flags ([`flags`]); those the VFS enforces are set in
    /// `i_flags`.
    pub flags: u32,
    /// Generation number (`i_generation`): file handles carry it, and a
    /// handle whose generation differs is stale.
    pub generation: u32,
}

impl<T: FileSystem> New<T> {
    /// The inode number being looked up.
    pub fn ino(&self) -> u64 {
        // SAFETY: Set by `iget_locked`.
        unsafe { (*self.inode.as_ptr()).i_ino as u64 }
    }

    /// Initialises the inode read from the disk and makes it visible.
    pub fn init(
        self,
        params: Params<T>,
        data: impl PinInit<T::InodeData, Error>,
    ) -> Result<ARef<Inode<T>>> {
        self.init_with(params, data, None)
    }

    /// Initialises an inode being created by `how` (`create`, `mkdir`,
    /// `mknod`, `symlink`): owner, group and the set-group-id bit come from
    /// the caller and the directory (`inode_init_owner`), the times are
    /// now, and the inode is marked dirty.  The owner, group and times of
    /// `params` are ignored.
    pub fn init_created(
        self,
        how: &Creation<'_, T>,
        params: Params<T>,
        data: impl PinInit<T::InodeData, Error>,
    ) -> Result<ARef<Inode<T>>> {
        self.init_with(params, data, Some(how))
    }

    fn init_with(
        self,
        params: Params<T>,
        data: impl PinInit<T::InodeData, Error>,
        created: Option<&Creation<'_, T>>,
    ) -> Result<ARef<Inode<T>>> {
        let inode = self.inode.as_ptr();
        // SAFETY: Every inode of `T` is in a `Container<T>`, and a new inode
        // is ours alone until `unlock_new_inode` (type invariant).
        let c = unsafe { &mut *crate::container_of!(inode, Container<T>, inode).cast_mut() };
        let (fmt, rdev) = match params.kind {
            Kind::Dir(..) => (bindings::S_IFDIR, 0),
            Kind::Reg(..) => (bindings::S_IFREG, 0),
            Kind::Symlink(..) | Kind::FastSymlink => (bindings::S_IFLNK, 0),
            Kind::Chr(d) => (bindings::S_IFCHR, d),
            Kind::Blk(d) => (bindings::S_IFBLK, d),
            Kind::Fifo => (bindings::S_IFIFO, 0),
            Kind::Sock => (bindings::S_IFSOCK, 0),
        };
        // SAFETY: As above, the inode is ours; the tables are `'static`.
        unsafe {
            let i = &mut *inode;
            i.i_mode = (fmt | (params.perm as u32 & 0o7777)) as _;
            bindings::set_nlink(inode, params.nlink);
            bindings::i_uid_write(inode, params.uid);
            bindings::i_gid_write(inode, params.gid);
            i.i_size = params.size as i64;
            i.i_blocks = params.blocks;
            i.i_atime_sec = params.atime.0;
            i.i_atime_nsec = params.atime.1;
            i.i_mtime_sec = params.mtime.0;
            i.i_mtime_nsec = params.mtime.1;
            i.i_ctime_sec = params.ctime.0;
            i.i_ctime_nsec = params.ctime.1;
            let (set, mask) = flags::vfs(params.flags);
            bindings::inode_set_flags(inode, set, mask);
            i.i_generation = params.generation;
            match params.kind {
                Kind::Dir(iops, fops) => {
                    i.i_op = &iops.0;
                    i.__bindgen_anon_3.i_fop = &fops.0;
                }
                Kind::Reg(iops, fops, aops) => {
                    i.i_op = &iops.0;
                    i.__bindgen_anon_3.i_fop = &fops.0;
                    (*i.i_mapping).a_ops = &aops.0;
                }
                Kind::Symlink(aops) => {
                    i.i_op = &bindings::page_symlink_inode_operations;
                    bindings::inode_nohighmem(inode);
                    (*i.i_mapping).a_ops = &aops.0;
                }
                Kind::FastSymlink => {
                    // `i_link` is set below, once the data holding the
                    // target is there.
                    i.i_op = &bindings::simple_symlink_inode_operations;
                }
                Kind::Chr(_) | Kind::Blk(_) | Kind::Fifo | Kind::Sock => {
                    bindings::init_special_inode(inode, i.i_mode, rdev);
                }
            }
        }
        // SAFETY: The container is a slab object that never moves until
        // `free_inode`, which drops the data only if `data_init` is set; on
        // failure the data is left uninitialised and `self` is dropped
        // (`iget_failed`).
        unsafe { data.__pinned_init(c.data.as_mut_ptr())? };
        // INVARIANT: The data was initialised just above.
        c.data_init = true;
        if matches!(params.kind, Kind::FastSymlink) {
            // SAFETY: Initialised just above.
            let data = unsafe { c.data.assume_init_ref() };
            // On failure `self` is dropped: `iget_failed`, then
            // `free_inode` drops the data.
            let target = T::fast_symlink_target(data).ok_or(EINVAL)?;
            // SAFETY: The inode is still ours (`I_NEW`).  The target is
            // borrowed from the data, which is only dropped in `free_inode`,
            // after the RCU grace period that covers every path walk that
            // could still follow `i_link`.
            unsafe { (*inode).__bindgen_anon_4.i_link = target.as_char_ptr().cast_mut() };
        }
        if let Some(how) = created {
            // SAFETY: The inode is new and ours; `how` carries the idmap and
            // the directory of the VFS call creating it (both valid for the
            // call).  `inode_init_owner` sets `i_mode` (type from `how.mode`),
            // owner and group; the rest are the attributes of a new inode.
            unsafe {
                bindings::inode_init_owner(how.idmap, inode, how.dir.as_raw(), how.mode);
                bindings::simple_inode_init_ts(inode);
                bindings::mark_inode_dirty(inode);
            }
        }
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: The inode is fully initialised; unlocking makes it visible.
        unsafe { bindings::unlock_new_inode(inode) };
        // SAFETY: We pass on the reference `iget_locked` took (not dropped:
        // `this` is `ManuallyDrop`); the inode is now initialised.
        Ok(unsafe { ARef::from_raw(this.inode.cast()) })
    }
}

impl<T: FileSystem> Drop for New<T> {
    fn drop(&mut self) {
        // SAFETY: The inode is new and referenced: `iget_failed` marks it
        // bad, unlocks it and drops our reference.
        unsafe { bindings::iget_failed(self.inode.as_ptr()) };
    }
}

/// A request to create an inode in a directory, as the VFS passes it to
/// `create`, `mkdir`, `mknod` and `symlink`.
pub struct Creation<'a, T: FileSystem> {
    idmap: *mut bindings::mnt_idmap,
    dir: &'a Exclusive<T>,
    /// The full mode: file type and permission bits (`umask` applied).
    pub mode: u16,
    /// The device number for `mknod` of a device (kernel encoding).
    pub rdev: u32,
}

impl<T: FileSystem> Creation<'_, T> {
    /// The directory the inode is created in (its `i_rwsem` held).
    pub fn dir(&self) -> &Exclusive<T> {
        self.dir
    }
}

/// `RENAME_NOREPLACE`: fail with `EEXIST` if the target exists (the VFS
/// checks this before calling `rename`).
pub const RENAME_NOREPLACE: u32 = 1;
/// `RENAME_EXCHANGE`: swap the source and the (existing) target.
pub const RENAME_EXCHANGE: u32 = 2;
/// `RENAME_WHITEOUT`: leave a whiteout behind (overlayfs).
pub const RENAME_WHITEOUT: u32 = 4;

/// Inode operations (`struct inode_operations`).
///
/// The VFS has checked permissions and holds the locks the operation
/// needs before calling: `i_rwsem` of the directories involved (both, for
/// a rename between directories), and of the inodes being unlinked,
/// replaced or linked to.
#[crate::macros::vtable]
pub trait Operations {
    /// The filesystem these operations belong to.
    type FileSystem: FileSystem;

    /// Looks `name` up in the directory `parent`; `None` if it is absent.
    fn lookup(
        _parent: &Inode<Self::FileSystem>,
        _name: &[u8],
    ) -> Result<Option<ARef<Inode<Self::FileSystem>>>> {
        Err(ENOTDIR)
    }

    /// Creates `name` in `how.dir()` (a regular file, directory, device,
    /// FIFO or socket, as `how.mode` says) and returns its new inode, with
    /// its entry in place.  `name` is absent and at most `NAME_MAX` long.
    fn create(
        _how: &Creation<'_, Self::FileSystem>,
        _name: &[u8],
    ) -> Result<ARef<Inode<Self::FileSystem>>> {
        Err(EPERM)
    }

    /// Creates a symbolic link `name` to `target` in `how.dir()`.
    fn symlink(
        _how: &Creation<'_, Self::FileSystem>,
        _name: &[u8],
        _target: &crate::str::CStr,
    ) -> Result<ARef<Inode<Self::FileSystem>>> {
        Err(EPERM)
    }

    /// Adds the entry `name` for the existing `inode` to `dir`.
    fn link(
        _inode: &Exclusive<Self::FileSystem>,
        _dir: &Exclusive<Self::FileSystem>,
        _name: &[u8],
    ) -> Result {
        Err(EPERM)
    }

    /// Removes the entry `name` of `inode` (not a directory) from `dir`.
    fn unlink(
        _dir: &Exclusive<Self::FileSystem>,
        _name: &[u8],
        _inode: &Exclusive<Self::FileSystem>,
    ) -> Result {
        Err(EPERM)
    }

    /// Removes the directory `inode`, entry `name` of `dir`; fails with
    /// `ENOTEMPTY` if it has entries.
    fn rmdir(
        _dir: &Exclusive<Self::FileSystem>,
        _name: &[u8],
        _inode: &Exclusive<Self::FileSystem>,
    ) -> Result {
        Err(EPERM)
    }

    /// Renames `old_dir`/`old_name` (inode `old`) to `new_dir`/`new_name`,
    /// which names `new` if it exists.  `flags` are `RENAME_*`.  `old` is
    /// not always locked (the VFS leaves a directory moved within its
    /// parent unlocked), so it comes as a plain [`Inode`].
    #[allow(clippy::too_many_arguments)]
    fn rename(
        _old_dir: &Exclusive<Self::FileSystem>,
        _old_name: &[u8],
        _old: &Inode<Self::FileSystem>,
        _new_dir: &Exclusive<Self::FileSystem>,
        _new_name: &[u8],
        _new: Option<&Exclusive<Self::FileSystem>>,
        _flags: u32,
    ) -> Result {
        Err(EPERM)
    }

    /// Changes attributes (chmod, chown, utimes, truncate), after the VFS
    /// has checked permissions and the request (`setattr_prepare`).
    fn setattr(_inode: &Exclusive<Self::FileSystem>, _attr: &Attr) -> Result {
        Err(super::eopnotsupp())
    }

    /// The inode's attribute flags ([`flags`]), for `FS_IOC_GETFLAGS`,
    /// `FS_IOC_FSGETXATTR` and `statx`'s attributes.
    fn get_flags(_inode: &Inode<Self::FileSystem>) -> Result<u32> {
        Err(ENOTTY)
    }

    /// Stores `fl` as the inode's attribute flags (`FS_IOC_SETFLAGS`,
    /// `FS_IOC_FSSETXATTR`), or fails without a change (`EOPNOTSUPP` for
    /// flags the filesystem does not keep).  The VFS has checked that the
    /// caller owns the inode, and `CAP_LINUX_IMMUTABLE` if
    /// [`flags::APPEND`] or [`flags::IMMUTABLE`] change; on success the
    /// table sets `i_flags` to match, updates the change time and marks
    /// the inode dirty.
    fn set_flags(_inode: &Exclusive<Self::FileSystem>, _fl: u32) -> Result {
        Err(ENOTTY)
    }
}

/// An attribute change request (`struct iattr`) with the idmap of the
/// mount it came through.
pub struct Attr {
    attr: *mut bindings::iattr,
    idmap: *mut bindings::mnt_idmap,
}

impl Attr {
    /// Which attributes change (`ATTR_*` bits of `ia_valid`).
    pub fn valid(&self) -> u32 {
        // SAFETY: The request is valid for the call it was passed to.
        unsafe { (*self.attr).ia_valid }
    }

    /// Whether the size changes (truncate).
    pub fn changes_size(&self) -> bool {
        self.valid() & bindings::ATTR_SIZE != 0
    }

    /// The new size, if the size changes.
    pub fn size(&self) -> Option<u64> {
        self.changes_size()
            // SAFETY: As for `valid`; `setattr_prepare` refused negative
            // sizes.
            .then(|| unsafe { (*self.attr).ia_size } as u64)
    }

    /// Copies every attribute but the size into `inode` (`setattr_copy`)
    /// and marks it dirty.
    pub fn copy_to<T: FileSystem>(&self, inode: &Exclusive<T>) {
        // SAFETY: The request, its idmap and the inode (whose `i_rwsem` we
        // hold) are valid for the call.
        unsafe { bindings::setattr_copy(self.idmap, inode.as_raw(), self.attr) };
        inode.mark_dirty();
    }
}

/// An inode operations table built from an [`Operations`] implementation.
#[repr(transparent)]
pub struct Ops<T: FileSystem>(bindings::inode_operations, PhantomData<T>);

// SAFETY: Immutable table of function pointers.
unsafe impl<T: FileSystem> Sync for Ops<T> {}

impl<T: FileSystem> Ops<T> {
    /// The table for `U`.
    pub const fn new<U: Operations<FileSystem = T>>() -> Self {
        // SAFETY: All-zeroes is a valid (empty) `inode_operations`.
        let mut ops: bindings::inode_operations = unsafe { core::mem::zeroed() };
        if U::HAS_LOOKUP {
            ops.lookup = Some(OpsTable::<U>::lookup);
        }
        if U::HAS_SETATTR {
            ops.setattr = Some(OpsTable::<U>::setattr);
        }
        if U::HAS_CREATE {
            ops.create = Some(OpsTable::<U>::create);
            ops.mkdir = Some(OpsTable::<U>::mkdir);
            ops.mknod = Some(OpsTable::<U>::mknod);
        }
        if U::HAS_SYMLINK {
            ops.symlink = Some(OpsTable::<U>::symlink);
        }
        if U::HAS_LINK {
            ops.link = Some(OpsTable::<U>::link);
        }
        if U::HAS_UNLINK {
            ops.unlink = Some(OpsTable::<U>::unlink);
        }
        if U::HAS_RMDIR {
            ops.rmdir = Some(OpsTable::<U>::rmdir);
        }
        if U::HAS_RENAME {
            ops.rename = Some(OpsTable::<U>::rename);
        }
        if U::HAS_GET_FLAGS {
            ops.fileattr_get = Some(OpsTable::<U>::fileattr_get);
            ops.getattr = Some(OpsTable::<U>::getattr);
        }
        if U::HAS_SET_FLAGS {
            ops.fileattr_set = Some(OpsTable::<U>::fileattr_set);
        }
        Self(ops, PhantomData)
    }

    /// The same table with `FIEMAP` answered from `M`'s block map (for
    /// regular files whose page cache `M` maps).
    pub const fn with_fiemap<M: super::address_space::Operations<FileSystem = T>>(
        mut self,
    ) -> Self {
        self.0.fiemap = Some(super::address_space::Table::<M>::fiemap);
        self
    }
}

struct OpsTable<U: Operations>(PhantomData<U>);

impl<U: Operations> OpsTable<U> {
    /// # Safety
    ///
    /// Called by `vfs_fileattr_get` with a positive dentry of `U`'s
    /// filesystem and a valid `fileattr` to fill.
    unsafe extern "C" fn fileattr_get(
        dentry: *mut bindings::dentry,
        fa: *mut bindings::fileattr,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: A positive dentry pins its initialised inode.
            let inode = unsafe { Inode::<U::FileSystem>::from_raw((*dentry).d_inode) };
            let fl = U::get_flags(inode)?;
            // SAFETY: `fa` is valid and ours for the call.
            unsafe { bindings::fileattr_fill_flags(fa, fl) };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `vfs_fileattr_set`, which holds the inode's `i_rwsem` and
    /// has checked the request (`fileattr_set_prepare`), with a positive
    /// dentry of `U`'s filesystem and a valid `fileattr`.
    unsafe extern "C" fn fileattr_set(
        _idmap: *mut bindings::mnt_idmap,
        dentry: *mut bindings::dentry,
        fa: *mut bindings::fileattr,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: `fa` is valid for the call.  Extended attributes
            // (XFS's extent size hints, project ids, flags without an
            // `FS_*_FL` twin) have no place in `flags`: refused, as ext2
            // does.
            let (fl, fsx) = unsafe { ((*fa).flags, bindings::fileattr_has_fsx(fa)) };
            if fsx {
                return Err(super::eopnotsupp());
            }
            // SAFETY: A positive dentry pins its inode, whose `i_rwsem`
            // the caller holds (per the safety requirements).
            let inode = unsafe {
                Exclusive::from_inode(Inode::<U::FileSystem>::from_raw((*dentry).d_inode))
            };
            U::set_flags(inode, fl)?;
            let (set, mask) = flags::vfs(fl);
            // SAFETY: A valid inode; `inode_set_flags` updates `i_flags`
            // atomically (its other bits are left alone).
            unsafe { bindings::inode_set_flags(inode.as_raw(), set, mask) };
            inode.touch_ctime();
            Ok(0)
        })
    }

    /// `getattr`: the generic attributes plus `statx`'s attribute flags
    /// from [`Operations::get_flags`].
    ///
    /// # Safety
    ///
    /// Called by `vfs_getattr_nosec` with a path whose dentry is positive
    /// and of `U`'s filesystem, and a valid `kstat` to fill.
    unsafe extern "C" fn getattr(
        idmap: *mut bindings::mnt_idmap,
        path: *const bindings::path,
        stat: *mut bindings::kstat,
        request_mask: u32,
        _query_flags: core::ffi::c_uint,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements the dentry pins its
            // initialised inode.
            let raw = unsafe { (*(*path).dentry).d_inode };
            // SAFETY: As above; `stat` is ours to fill.
            unsafe { bindings::generic_fillattr(idmap, request_mask, raw, stat) };
            // SAFETY: As above.
            let fl = U::get_flags(unsafe { Inode::<U::FileSystem>::from_raw(raw) })?;
            let (attrs, mask) = flags::statx(fl);
            // SAFETY: `stat` is ours to fill.
            unsafe {
                (*stat).attributes |= attrs;
                (*stat).attributes_mask |= mask;
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by `notify_change` with a dentry of `U`'s filesystem whose
    /// inode is initialised and locked (`i_rwsem`), and a valid request.
    unsafe extern "C" fn setattr(
        idmap: *mut bindings::mnt_idmap,
        dentry: *mut bindings::dentry,
        attr: *mut bindings::iattr,
    ) -> core::ffi::c_int {
        crate::error::from_result(|| {
            // SAFETY: Per the safety requirements.
            crate::error::to_result(unsafe { bindings::setattr_prepare(idmap, dentry, attr) })?;
            // SAFETY: A positive dentry pins its inode, whose `i_rwsem`
            // `notify_change`'s caller holds (per the safety requirements).
            let inode = unsafe {
                Exclusive::from_inode(Inode::<U::FileSystem>::from_raw((*dentry).d_inode))
            };
            U::setattr(inode, &Attr { attr, idmap })?;
            Ok(0)
        })
    }

    /// Creates through `U::create` and instantiates `dentry` with the
    /// result.
    ///
    /// # Safety
    ///
    /// `dir` is an initialised directory of `U`'s filesystem whose
    /// `i_rwsem` is held, `dentry` a negative dentry in it, and `idmap` the
    /// idmap of the call.
    unsafe fn do_create(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
        rdev: bindings::dev_t,
        target: Option<&crate::str::CStr>,
    ) -> Result<core::ffi::c_int> {
        // SAFETY: Per the safety requirements.
        let (dir, d) = unsafe {
            (
                Exclusive::from_inode(Inode::<U::FileSystem>::from_raw(dir)),
                Dentry::from_raw(dentry),
            )
        };
        let how = Creation {
            idmap,
            dir,
            mode,
            rdev,
        };
        let inode = match target {
            Some(t) => U::symlink(&how, d.name(), t)?,
            None => U::create(&how, d.name())?,
        };
        // SAFETY: `d_instantiate` takes over the inode reference.
        unsafe { bindings::d_instantiate(d.as_raw(), ARef::into_raw(inode).as_ptr().cast()) };
        Ok(0)
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_create`) as `do_create` requires.
    unsafe extern "C" fn create(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
        _excl: bool,
    ) -> core::ffi::c_int {
        // SAFETY: Per the safety requirements.
        from_result(|| unsafe { Self::do_create(idmap, dir, dentry, mode, 0, None) })
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_mkdir`) as `do_create` requires.
    unsafe extern "C" fn mkdir(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
    ) -> core::ffi::c_int {
        let mode = (mode & !(bindings::S_IFMT as u16)) | bindings::S_IFDIR as u16;
        // SAFETY: Per the safety requirements.
        from_result(|| unsafe { Self::do_create(idmap, dir, dentry, mode, 0, None) })
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_mknod`) as `do_create` requires.
    unsafe extern "C" fn mknod(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        mode: bindings::umode_t,
        rdev: bindings::dev_t,
    ) -> core::ffi::c_int {
        // SAFETY: Per the safety requirements.
        from_result(|| unsafe { Self::do_create(idmap, dir, dentry, mode, rdev, None) })
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_symlink`) as `do_create` requires, with a
    /// NUL-terminated target.
    unsafe extern "C" fn symlink(
        idmap: *mut bindings::mnt_idmap,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        target: *const u8,
    ) -> core::ffi::c_int {
        // SAFETY: The VFS passes a NUL-terminated string valid for the call.
        let t = unsafe { crate::str::CStr::from_char_ptr(target) };
        let mode = bindings::S_IFLNK as u16 | 0o777;
        // SAFETY: Per the safety requirements.
        from_result(|| unsafe { Self::do_create(idmap, dir, dentry, mode, 0, Some(t)) })
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_link`) with a positive `old` dentry of `U`'s
    /// filesystem (its inode's `i_rwsem` held), the directory `dir`
    /// (`i_rwsem` held) and a negative `dentry` in it.
    unsafe extern "C" fn link(
        old: *mut bindings::dentry,
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements (`vfs_link` holds both
            // inodes' `i_rwsem`).
            let (inode, dir, d) = unsafe {
                (
                    Exclusive::from_inode(Inode::<U::FileSystem>::from_raw((*old).d_inode)),
                    Exclusive::from_inode(Inode::<U::FileSystem>::from_raw(dir)),
                    Dentry::from_raw(dentry),
                )
            };
            U::link(inode, dir, d.name())?;
            // SAFETY: The new dentry takes a new reference to the inode.
            unsafe {
                bindings::ihold(inode.as_raw());
                bindings::d_instantiate(d.as_raw(), inode.as_raw());
            }
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_unlink`, `vfs_rmdir`) with the directory
    /// (`i_rwsem` held) and a positive dentry in it (its inode's `i_rwsem`
    /// held).
    unsafe fn victim<'a>(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
    ) -> (
        &'a Exclusive<U::FileSystem>,
        &'a Dentry,
        &'a Exclusive<U::FileSystem>,
    ) {
        // SAFETY: Per the safety requirements (`vfs_unlink` and `vfs_rmdir`
        // hold both inodes' `i_rwsem`).
        unsafe {
            (
                Exclusive::from_inode(Inode::<U::FileSystem>::from_raw(dir)),
                Dentry::from_raw(dentry),
                Exclusive::from_inode(Inode::<U::FileSystem>::from_raw((*dentry).d_inode)),
            )
        }
    }

    /// # Safety
    ///
    /// See `victim`.
    unsafe extern "C" fn unlink(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements.
            let (dir, d, inode) = unsafe { Self::victim(dir, dentry) };
            U::unlink(dir, d.name(), inode)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// See `victim`.
    unsafe extern "C" fn rmdir(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements.
            let (dir, d, inode) = unsafe { Self::victim(dir, dentry) };
            U::rmdir(dir, d.name(), inode)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS (`vfs_rename`) with both directories locked
    /// (`lock_rename`), a positive `old_dentry`, and `new_dentry` positive
    /// (its inode locked) or negative.
    unsafe extern "C" fn rename(
        _idmap: *mut bindings::mnt_idmap,
        old_dir: *mut bindings::inode,
        old_dentry: *mut bindings::dentry,
        new_dir: *mut bindings::inode,
        new_dentry: *mut bindings::dentry,
        flags: core::ffi::c_uint,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: Per the safety requirements.
            let (od, odent, old, nd, ndent) = unsafe {
                (
                    Exclusive::from_inode(Inode::<U::FileSystem>::from_raw(old_dir)),
                    Dentry::from_raw(old_dentry),
                    Inode::<U::FileSystem>::from_raw((*old_dentry).d_inode),
                    Exclusive::from_inode(Inode::<U::FileSystem>::from_raw(new_dir)),
                    Dentry::from_raw(new_dentry),
                )
            };
            // SAFETY: A positive dentry pins its inode; `vfs_rename` locks a
            // target inode in every case.
            let new = unsafe {
                let i = (*new_dentry).d_inode;
                (!i.is_null()).then(|| Exclusive::from_inode(Inode::<U::FileSystem>::from_raw(i)))
            };
            U::rename(od, odent.name(), old, nd, ndent.name(), new, flags)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with an initialised directory inode of `U`'s
    /// filesystem, whose `i_rwsem` is held, and a negative dentry in it.
    unsafe extern "C" fn lookup(
        dir: *mut bindings::inode,
        dentry: *mut bindings::dentry,
        _flags: u32,
    ) -> *mut bindings::dentry {
        // SAFETY: Per the safety requirements.
        let (parent, d) = unsafe {
            (
                Inode::<U::FileSystem>::from_raw(dir),
                Dentry::from_raw(dentry),
            )
        };
        if d.name().len() > bindings::NAME_MAX as usize {
            return crate::error::Error::from_errno(-(bindings::ENAMETOOLONG as i32)).to_ptr();
        }
        match U::lookup(parent, d.name()) {
            Err(e) => e.to_ptr(),
            Ok(found) => {
                let inode =
                    found.map_or(core::ptr::null_mut(), |i| ARef::into_raw(i).as_ptr().cast());
                // SAFETY: `d_splice_alias` takes over the inode reference
                // (or NULL for a negative entry), also on error.
                unsafe { bindings::d_splice_alias(inode, d.as_raw()) }
            }
        }
    }
}

/// The super-operations callbacks that manage inode memory.
pub(crate) struct Tables<T: FileSystem>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    /// Creates the slab cache of `T`'s inodes, `<name>_inode_cache`.
    pub(crate) fn create_cache() -> Result<NonNull<bindings::kmem_cache>> {
        let name = crate::str::CString::try_from_fmt(crate::fmt!("{}_inode_cache", T::NAME))?;
        // SAFETY: All-zeroes is "no argument" for every field of
        // `kmem_cache_args` (`use_freeptr_offset` false).
        let mut args: bindings::kmem_cache_args = unsafe { core::mem::zeroed() };
        args.align = core::mem::align_of::<Container<T>>() as u32;
        args.ctor = Some(Self::init_once);
        // SAFETY: `name` is a valid string (copied by the cache); the size
        // and alignment are those of `Container<T>`; the constructor
        // initialises the inode part of such an object.
        let cache = unsafe {
            bindings::__kmem_cache_create_args(
                name.as_char_ptr(),
                core::mem::size_of::<Container<T>>() as u32,
                &mut args,
                bindings::SLAB_RECLAIM_ACCOUNT | bindings::SLAB_ACCOUNT,
            )
        };
        NonNull::new(cache).ok_or(ENOMEM)
    }

    /// The cache's constructor: what stays initialised while an object
    /// goes round the cache.
    ///
    /// # Safety
    ///
    /// Called by the slab allocator with a new object of the cache made by
    /// `create_cache`.
    unsafe extern "C" fn init_once(obj: *mut core::ffi::c_void) {
        let c = obj.cast::<Container<T>>();
        // SAFETY: `obj` is an object of `Container<T>`'s size and alignment;
        // `Opaque` is transparent, so the field's address is the inode's.
        unsafe { bindings::inode_init_once(core::ptr::addr_of_mut!((*c).inode).cast()) };
    }

    /// # Safety
    ///
    /// Called by the VFS (`alloc_inode`) for a super block of type `T`.
    pub(crate) unsafe extern "C" fn alloc_inode(
        sb: *mut bindings::super_block,
    ) -> *mut bindings::inode {
        // SAFETY: A live super block of `T`: its type is part of a
        // registered `Registration<T>`.
        let cache = unsafe { super::Registration::<T>::inode_cache_of((*sb).s_type) };
        // SAFETY: `sb` is live; the cache is the registration's, which
        // exists while the type is registered (type invariant).
        let obj = unsafe { bindings::alloc_inode_sb(sb, cache, GFP_KERNEL.as_raw()) };
        let c = obj.cast::<Container<T>>();
        if c.is_null() {
            return core::ptr::null_mut();
        }
        // INVARIANT: The inode part was initialised by the constructor (or
        // handed back so); the data is not there yet, and the cache is the
        // one it came from.
        // SAFETY: A new object of the cache, ours; plain fields are written
        // without reading the old values.
        unsafe {
            core::ptr::addr_of_mut!((*c).data_init).write(false);
            core::ptr::addr_of_mut!((*c).cache).write(cache);
            core::ptr::addr_of_mut!((*c).inode).cast()
        }
    }

    /// # Safety
    ///
    /// Called by the VFS after an RCU grace period, once nothing refers to
    /// the inode any more, for an inode from `alloc_inode`.
    pub(crate) unsafe extern "C" fn free_inode(inode: *mut bindings::inode) {
        // SAFETY: The inode came from `alloc_inode`, so it is in a
        // `Container<T>`, which is ours again.
        let c = unsafe { crate::container_of!(inode, Container<T>, inode).cast_mut() };
        // SAFETY: As above; the data is initialised iff `data_init` (type
        // invariant), and dropped once (here).
        unsafe {
            if (*c).data_init {
                (*c).data.assume_init_drop();
            }
        }
        // SAFETY: Allocated from `cache`, which outlives its objects (the
        // registration destroys it only after an RCU barrier, once no super
        // block of `T` is left); the VFS handed the inode back in its
        // constructed state.
        unsafe { bindings::kmem_cache_free((*c).cache, c.cast()) };
    }
}
