// SPDX-License-Identifier: GPL-2.0

//! Inodes.
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h).
//!
//! Every inode of a filesystem `T` is allocated by `alloc_inode` inside a
//! container that also holds the filesystem's [`FileSystem::INodeData`].
//! [`SuperBlock::iget`] finds an inode in the inode cache or hands out a
//! [`New`] one, locked (`I_NEW`), which the filesystem initialises exactly
//! once with [`New::init`]; dropping a [`New`] instead marks it bad and
//! releases it (`iget_failed`).  Only initialised inodes are ever seen as
//! [`INode`], so their data is always there.

use super::{address_space, dentry::DEntry, file, sb::SuperBlock, FileSystem};
use crate::alloc::{flags::GFP_KERNEL, KBox, KVec};
use crate::bindings;
use crate::error::{code::*, Error, Result};
use crate::types::{ARef, AlwaysRefCounted, Opaque};
use core::{marker::PhantomData, mem::MaybeUninit, ptr::NonNull};

/// An initialised inode of filesystem `T`.
///
/// # Invariants
///
/// The inode was allocated by [`Tables::alloc_inode`] for a super block of
/// type `T` (so it sits in a [`Container<T>`]) and initialised by
/// [`New::init`] (so the container's data is initialised).  References are
/// only handed out while a reference count (`i_count`) is held.
#[repr(transparent)]
pub struct INode<T: FileSystem>(Opaque<bindings::inode>, PhantomData<T>);

/// What `alloc_inode` allocates: the VFS inode and the filesystem's data.
#[repr(C)]
struct Container<T: FileSystem> {
    inode: Opaque<bindings::inode>,
    data: MaybeUninit<T::INodeData>,
    data_init: bool,
    /// The target of an inline (fast) symlink, NUL terminated; `i_link`
    /// points into it.
    link: KVec<u8>,
}

impl<T: FileSystem> INode<T> {
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
    pub fn data(&self) -> &T::INodeData {
        // SAFETY: Initialised by `New::init` before any `INode` reference
        // exists (type invariant), and dropped only in `free_inode`.
        unsafe { self.container().data.assume_init_ref() }
    }

    /// The file size (`i_size`).
    pub fn size(&self) -> u64 {
        // SAFETY: A racy read of `i_size` is what `i_size_read` does on
        // 64-bit; it is never negative for rbfs's files.
        unsafe { (*self.as_raw()).i_size as u64 }
    }
}

// SAFETY: The reference count is `i_count`, managed by `ihold`/`iput`, and
// inodes are freed only when it drops to zero (and then after RCU).
unsafe impl<T: FileSystem> AlwaysRefCounted for INode<T> {
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
unsafe impl<T: FileSystem> Send for INode<T> {}
// SAFETY: See `Send`.
unsafe impl<T: FileSystem> Sync for INode<T> {}

/// The result of [`SuperBlock::iget`].
pub enum Lookup<T: FileSystem> {
    /// The inode was in the inode cache, initialised.
    Cached(ARef<INode<T>>),
    /// The inode is new: read it from the disk and [`New::init`] it.
    New(New<T>),
}

impl<T: FileSystem> Lookup<T> {
    pub(crate) fn get(sb: &SuperBlock<T>, ino: u64) -> Result<Self> {
        // SAFETY: The super block is active.
        let inode = unsafe { bindings::iget_locked(sb.as_raw(), ino as _) };
        let inode = NonNull::new(inode).ok_or(ENOMEM)?;
        // SAFETY: `iget_locked` returned a referenced inode.
        if unsafe { (*inode.as_ptr()).i_state } & bindings::I_NEW as u32 != 0 {
            Ok(Lookup::New(New { inode, _p: PhantomData }))
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
    Dir(&'static Ops<T>, &'static file::Ops<T>),
    /// A regular file, with its inode, file and page-cache operations.
    Reg(&'static Ops<T>, &'static file::Ops<T>, &'static address_space::Ops<T>),
    /// A symlink whose target is read through the page cache.
    Symlink(&'static address_space::Ops<T>),
    /// A symlink whose target is kept in the inode (given in
    /// [`Params::link`]).
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
    /// For [`Kind::FastSymlink`]: the target.
    pub link: &'static [u8],
}

impl<T: FileSystem> New<T> {
    /// The inode number being looked up.
    pub fn ino(&self) -> u64 {
        // SAFETY: Set by `iget_locked`.
        unsafe { (*self.inode.as_ptr()).i_ino as u64 }
    }

    /// Initialises the inode and makes it visible.
    pub fn init(self, params: Params<T>, data: T::INodeData) -> Result<ARef<INode<T>>> {
        self.init_with_link(params, data, None)
    }

    /// Initialises a fast symlink whose target is `target`.
    pub fn init_symlink(self, params: Params<T>, data: T::INodeData, target: &[u8]) -> Result<ARef<INode<T>>> {
        self.init_with_link(params, data, Some(target))
    }

    fn init_with_link(self, params: Params<T>, data: T::INodeData, target: Option<&[u8]>) -> Result<ARef<INode<T>>> {
        let inode = self.inode.as_ptr();
        // SAFETY: Every inode of `T` is in a `Container<T>`, and a new inode
        // is ours alone until `unlock_new_inode` (type invariant).
        let c = unsafe { &mut *crate::container_of!(inode, Container<T>, inode).cast_mut() };
        let mut link = KVec::new();
        if let Some(t) = target {
            link.extend_from_slice(t, GFP_KERNEL)?;
            link.push(0, GFP_KERNEL)?;
        }
        let (fmt, rdev) = match params.kind {
            Kind::Dir(..) => (bindings::S_IFDIR, 0),
            Kind::Reg(..) => (bindings::S_IFREG, 0),
            Kind::Symlink(..) | Kind::FastSymlink => (bindings::S_IFLNK, 0),
            Kind::Chr(d) => (bindings::S_IFCHR, d),
            Kind::Blk(d) => (bindings::S_IFBLK, d),
            Kind::Fifo => (bindings::S_IFIFO, 0),
            Kind::Sock => (bindings::S_IFSOCK, 0),
        };
        if matches!(params.kind, Kind::FastSymlink) && target.is_none() {
            return Err(EINVAL);
        }
        c.link = link;
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
                    i.i_op = &bindings::simple_symlink_inode_operations;
                    i.__bindgen_anon_4.i_link = c.link.as_mut_ptr().cast();
                }
                Kind::Chr(_) | Kind::Blk(_) | Kind::Fifo | Kind::Sock => {
                    bindings::init_special_inode(inode, i.i_mode, rdev);
                }
            }
        }
        c.data.write(data);
        c.data_init = true;
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

/// Inode operations (`struct inode_operations`).
#[crate::macros::vtable]
pub trait Operations {
    /// The filesystem these operations belong to.
    type FileSystem: FileSystem;

    /// Looks `name` up in the directory `parent`; `None` if it is absent.
    fn lookup(_parent: &INode<Self::FileSystem>, _name: &[u8]) -> Result<Option<ARef<INode<Self::FileSystem>>>> {
        Err(ENOTDIR)
    }

    /// Changes attributes (chmod, chown, utimes, truncate), after the VFS
    /// has checked permissions and the request (`setattr_prepare`).
    fn setattr(_inode: &INode<Self::FileSystem>, _attr: &Attr) -> Result {
        Err(Error::from_errno(-(bindings::EOPNOTSUPP as i32)))
    }
}

/// An attribute change request (`struct iattr`).
#[repr(transparent)]
pub struct Attr(Opaque<bindings::iattr>);

impl Attr {
    /// Which attributes change (`ATTR_*` bits of `ia_valid`).
    pub fn valid(&self) -> u32 {
        // SAFETY: The request is valid for the call it was passed to.
        unsafe { (*self.0.get()).ia_valid }
    }

    /// Whether the size changes (truncate).
    pub fn changes_size(&self) -> bool {
        self.valid() & bindings::ATTR_SIZE != 0
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
        Self(ops, PhantomData)
    }
}

struct OpsTable<U: Operations>(PhantomData<U>);

impl<U: Operations> OpsTable<U> {
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
            // SAFETY: A positive dentry pins its inode.
            let inode = unsafe { INode::<U::FileSystem>::from_raw((*dentry).d_inode) };
            // SAFETY: `Attr` is transparent over the valid request.
            U::setattr(inode, unsafe { &*attr.cast::<Attr>() })?;
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
        let (parent, d) = unsafe { (INode::<U::FileSystem>::from_raw(dir), DEntry::from_raw(dentry)) };
        if d.name().len() > bindings::NAME_MAX as usize {
            return crate::error::Error::from_errno(-(bindings::ENAMETOOLONG as i32)).to_ptr();
        }
        match U::lookup(parent, d.name()) {
            Err(e) => e.to_ptr(),
            Ok(found) => {
                let inode = found.map_or(core::ptr::null_mut(), |i| ARef::into_raw(i).as_ptr().cast());
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
    /// # Safety
    ///
    /// Called by the VFS (`alloc_inode`) for a super block of type `T`.
    pub(crate) unsafe extern "C" fn alloc_inode(_sb: *mut bindings::super_block) -> *mut bindings::inode {
        let c = Container::<T> {
            inode: Opaque::uninit(),
            data: MaybeUninit::uninit(),
            data_init: false,
            link: KVec::new(),
        };
        let Ok(b) = KBox::new(c, GFP_KERNEL) else {
            return core::ptr::null_mut();
        };
        let c = KBox::into_raw(b);
        // SAFETY: `c` is valid; `inode_init_once` initialises the parts of
        // the inode that a slab constructor would (the VFS initialises the
        // rest in `inode_init_always`).
        unsafe {
            let inode = (*c).inode.get();
            bindings::inode_init_once(inode);
            inode
        }
    }

    /// # Safety
    ///
    /// Called by the VFS after an RCU grace period, once nothing refers to
    /// the inode any more, for an inode from `alloc_inode`.
    pub(crate) unsafe extern "C" fn free_inode(inode: *mut bindings::inode) {
        // SAFETY: The inode came from `alloc_inode`, so it is in a box of
        // `Container<T>` that we now own again.
        let mut c = unsafe { KBox::from_raw(crate::container_of!(inode, Container<T>, inode).cast_mut()) };
        if c.data_init {
            // SAFETY: Initialised (flag), dropped once (here).
            unsafe { c.data.assume_init_drop() };
        }
    }
}
