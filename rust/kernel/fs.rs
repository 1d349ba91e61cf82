// SPDX-License-Identifier: GPL-2.0

//! Filesystems.
//!
//! C headers: [`include/linux/fs.h`](srctree/include/linux/fs.h),
//! [`include/linux/fs_context.h`](srctree/include/linux/fs_context.h),
//! [`include/linux/fs_parser.h`](srctree/include/linux/fs_parser.h).
//!
//! A filesystem implements [`FileSystem`] and declares a `static`
//! [`Registration`] that it registers from its module's `init`.  The
//! registration has to be a `static`: `struct file_system_type` embeds the
//! lockdep class keys of the filesystem's super blocks and inodes, and
//! lockdep only accepts keys in static storage (a module's data counts).
//!
//! Objects and their lifetimes:
//! - [`sb::SuperBlock`] lives from `fill_super` to `kill_sb`; its
//!   [`FileSystem::Data`] is created by `fill_super` and dropped in `kill_sb`.
//! - [`inode::Inode`] is reference counted (`ihold`/`iput`) and travels as
//!   `ARef<Inode<T>>`; its [`FileSystem::InodeData`] lives as long as the
//!   inode's memory (dropped in `free_inode`, after an RCU grace period).
//! - [`buffer::Buffer`] holds a reference to a buffer head (`brelse` on drop).

use crate::error::{code::*, from_result, to_result, Result};
use crate::str::CStr;
use crate::types::{ForeignOwnable, Opaque};
use crate::{bindings, ThisModule};
use core::marker::PhantomData;

pub mod address_space;
pub mod buffer;
pub mod dentry;
pub mod file_ops;
pub mod folio;
pub mod inode;
pub mod param;
pub mod sb;
pub mod write_bio;
pub mod writeback;

/// The size of a sector, the unit of `struct kstatfs` and `i_blocks`.
pub const SECTOR_SIZE: u64 = 512;

/// A scope in which the task's allocations do not recurse into
/// filesystems (`memalloc_nofs_save` .. `memalloc_nofs_restore`): every
/// allocation in it behaves as `GFP_NOFS`, whatever flags it passes.  For
/// the critical sections of locks that reclaim can also take (e.g. a lock
/// that inode eviction takes, since reclaim evicts inodes through
/// `prune_icache_sb`): an allocation there that entered filesystem reclaim
/// could wait for itself.  Scopes nest; each restores the state it found,
/// so they must end in the reverse order of their start, on the task that
/// started them (the type is not `Send`, and dropping it ends it).
pub struct NoFsScope {
    flags: core::ffi::c_uint,
    _not_send: PhantomData<*mut ()>,
}

impl NoFsScope {
    /// Starts a scope on the current task.
    pub fn enter() -> Self {
        // SAFETY: Only sets a flag of the current task and returns its old
        // state.
        let flags = unsafe { bindings::memalloc_nofs_save() };
        Self {
            flags,
            _not_send: PhantomData,
        }
    }
}

impl Drop for NoFsScope {
    fn drop(&mut self) {
        // SAFETY: Restores, on the task that saved it (not `Send`), the
        // state saved by `enter`.
        unsafe { bindings::memalloc_nofs_restore(self.flags) };
    }
}

/// The wall-clock time in seconds since the epoch (`ktime_get_real_seconds`),
/// for timestamps a filesystem records in its super block.
pub fn real_time_secs() -> i64 {
    // SAFETY: Reads the timekeeping state; callable from any context.
    unsafe { bindings::ktime_get_real_seconds() }
}

/// A filesystem type.
///
/// Operations with a default body are optional: the super block's
/// operations table points at a callback only if the filesystem implements
/// it (`HAS_*`, from `#[vtable]`), so the VFS's own default applies
/// otherwise (a freeze, for one, is refused without `freeze_fs`).
#[crate::macros::vtable]
pub trait FileSystem: Sized + Send + Sync + 'static {
    /// The filesystem's name, as in `mount -t NAME` and `/proc/filesystems`.
    const NAME: &'static CStr;

    /// The magic number reported by `statfs` (`s_magic`).
    const MAGIC: u64;

    /// Mount options, parsed from the `fs_context` one parameter at a time.
    type Options: Default + Send;

    /// Data of a mounted filesystem (`s_fs_info`).
    type Data: ForeignOwnable + Send + Sync;

    /// Data kept with every in-memory inode of the filesystem.
    type InodeData: Send + Sync;

    /// The target of a fast symlink ([`inode::Kind::FastSymlink`]), kept in
    /// the inode's data: the VFS follows it (`i_link`) for as long as the
    /// inode lives, so it lives as long as the data (the borrow says so).
    /// The default has none: such an inode fails to initialise (`EINVAL`).
    fn fast_symlink_target(_data: &Self::InodeData) -> Option<&CStr> {
        None
    }

    /// The mount options this filesystem accepts, ending with
    /// [`param::Spec::END`].  Anything else is refused with `EINVAL`.
    const PARAMS: &'static [param::Spec];

    /// Applies one mount option, identified by the `opt` number given to
    /// its [`param::Spec`].
    fn parse_param(options: &mut Self::Options, opt: u8, value: param::Value) -> Result;

    /// Reads the super block from the device and returns the mounted
    /// filesystem's data.  `sb` is not yet visible to anyone else.
    fn fill_super(sb: &sb::NewSuperBlock<'_, Self>, options: Self::Options) -> Result<Self::Data>;

    /// Returns the root directory's inode, once [`Self::Data`] is in place.
    fn root(sb: &sb::SuperBlock<Self>) -> Result<crate::types::ARef<inode::Inode<Self>>>;

    /// Reports filesystem statistics (`statfs(2)`).
    fn statfs(sb: &sb::SuperBlock<Self>) -> Result<sb::Stat>;

    /// Applies a remount's options.  The default refuses nothing.
    ///
    /// The filesystem has been synced (`sync_filesystem`) when this is
    /// called: the VFS leaves that to `->reconfigure` since 5.17, and a
    /// remount read-only that skipped it would leave dirty inodes and pages
    /// that nothing writes any more.
    fn reconfigure(
        _sb: &sb::SuperBlock<Self>,
        _options: Self::Options,
        _flags: &mut sb::MountFlags,
    ) -> Result {
        Ok(())
    }

    /// Writes a dirty inode's attributes to the disk (`write_inode`); with
    /// `sync`, waits until they are there.
    fn write_inode(_inode: &inode::Inode<Self>, _sync: bool) -> Result {
        Ok(())
    }

    /// Called when the last reference to an inode goes and it leaves the
    /// inode cache (`evict_inode`), after its page cache is gone and before
    /// its memory is freed.  A filesystem frees an unlinked inode's blocks
    /// and on-disk inode here ([`inode::Inode::nlink`] is 0 for those).
    fn evict_inode(_inode: &inode::Inode<Self>) {}

    /// Writes the super block's own state (`sync_fs`); with `wait`, waits
    /// until it is on the disk.  Called after the inodes and data are.
    fn sync_fs(_sb: &sb::SuperBlock<Self>, _wait: bool) -> Result {
        Ok(())
    }

    /// Called at unmount after everything was written back, before
    /// [`Self::Data`] is dropped (`put_super`).
    fn put_super(_sb: &sb::SuperBlock<Self>) {}

    /// Makes the disk consistent for a freeze (`freeze_fs`, from `FIFREEZE`
    /// or a device-mapper snapshot): called after user writes, page
    /// faults and writeback were stopped and everything was synced, before
    /// internal changes ([`sb::SuperBlock::start_intwrite`]) are stopped
    /// too.  Without it, freezing the filesystem fails with `EOPNOTSUPP`.
    fn freeze_fs(_sb: &sb::SuperBlock<Self>) -> Result {
        Err(eopnotsupp())
    }

    /// Undoes [`Self::freeze_fs`] when the filesystem is thawed
    /// (`unfreeze_fs`), before writes are let in again.
    fn unfreeze_fs(_sb: &sb::SuperBlock<Self>) -> Result {
        Ok(())
    }

    /// Discards the free blocks in `range` (`FITRIM`, `fstrim(8)`) with
    /// [`sb::SuperBlock::discard`] and returns how many blocks it
    /// discarded.  A `range.start` beyond the filesystem is `EINVAL`; an
    /// end beyond it is clamped.  The ioctl has checked `CAP_SYS_ADMIN`
    /// and that the device can discard.  Without it, `FITRIM` gets
    /// `ENOTTY`, as on a filesystem that has no such ioctl.
    fn trim(_sb: &sb::SuperBlock<Self>, _range: &sb::TrimRange) -> Result<u64> {
        Err(ENOTTY)
    }

    /// The inode a file handle names (`open_by_handle_at`, NFS export):
    /// inode `ino` if it is in use, else `ESTALE`, without complaint (the
    /// handles of deleted files are normal).  The table checks the
    /// handle's generation against the inode's ([`inode::Params`]).
    /// Implementing it (and [`Self::export_parent`]) makes the filesystem
    /// exportable: handles are the kernel's default, inode number and
    /// generation (`FILEID_INO32_GEN`).
    fn export_inode(
        _sb: &sb::SuperBlock<Self>,
        _ino: u64,
    ) -> Result<crate::types::ARef<inode::Inode<Self>>> {
        Err(estale())
    }

    /// The parent of directory `dir` (its `..`), for reconnecting a
    /// directory found by a handle to the tree.
    fn export_parent(_dir: &inode::Inode<Self>) -> Result<crate::types::ARef<inode::Inode<Self>>> {
        Err(estale())
    }
}

/// `ESTALE`, "Stale file handle" (6.12's `kernel::error::code` has none).
pub fn estale() -> crate::error::Error {
    crate::error::Error::from_errno(-(bindings::ESTALE as i32))
}

/// `EOPNOTSUPP`, "Operation not supported" (6.12's `kernel::error::code`
/// has none).
pub fn eopnotsupp() -> crate::error::Error {
    crate::error::Error::from_errno(-(bindings::EOPNOTSUPP as i32))
}

/// A registered filesystem type: a `struct file_system_type` in static storage.
///
/// # Invariants
///
/// `fs` is only written by [`Registration::register`], by the one caller
/// that set `busy`, before it is passed to `register_filesystem`, and by
/// the VFS (under its own locks) while registered.  `busy` is cleared only
/// after `unregister_filesystem` returned.
///
/// # Invariants
///
/// While `busy` is set, only the `register` call that set it (and then the
/// [`Registered`] it returned) writes `fs`.  While `fs` is registered,
/// `inode_cache` is the slab cache that every inode of `T` comes from.
pub struct Registration<T: FileSystem> {
    fs: Opaque<bindings::file_system_type>,
    busy: core::sync::atomic::AtomicBool,
    inode_cache: core::sync::atomic::AtomicPtr<bindings::kmem_cache>,
    _p: PhantomData<T>,
}

// SAFETY: The C side synchronises all access to a registered
// `file_system_type` (`file_systems_lock`, `sb_lock`); outside that, only
// the one `register` call that won `busy` writes it (type invariant).
unsafe impl<T: FileSystem> Sync for Registration<T> {}

impl<T: FileSystem> Registration<T> {
    /// A registration for `T`, to be stored in a `static` and registered by
    /// [`Registration::register`].
    pub const fn new() -> Self {
        // SAFETY: `file_system_type` is a C struct of pointers, integers and
        // lock class keys, for all of which all-zeroes is a valid value.
        let mut fs: bindings::file_system_type = unsafe { core::mem::zeroed() };
        fs.name = T::NAME.as_char_ptr();
        fs.fs_flags = bindings::FS_REQUIRES_DEV as i32;
        fs.init_fs_context = Some(Tables::<T>::init_fs_context);
        fs.kill_sb = Some(Tables::<T>::kill_sb);
        fs.parameters = param::Spec::as_table(T::PARAMS);
        Self {
            fs: Opaque::new(fs),
            busy: core::sync::atomic::AtomicBool::new(false),
            inode_cache: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
            _p: PhantomData,
        }
    }

    /// Registers the filesystem with the VFS; it stays registered until the
    /// returned [`Registered`] is dropped.  Fails with `EBUSY` while it is
    /// registered already.
    pub fn register(&'static self, module: &'static ThisModule) -> Result<Registered<T>> {
        use core::sync::atomic::Ordering;
        if self
            .busy
            .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(EBUSY);
        }
        let cache = match inode::Tables::<T>::create_cache() {
            Ok(c) => c,
            Err(e) => {
                self.busy.store(false, Ordering::Release);
                return Err(e);
            }
        };
        // INVARIANT: The cache is in place before the type is registered,
        // so before any super block or inode of `T` exists.
        self.inode_cache.store(cache.as_ptr(), Ordering::Release);
        let fs = self.fs.get();
        // SAFETY: We set `busy`, so nobody else writes `fs` and it is not
        // registered (type invariant).
        unsafe { (*fs).owner = module.as_ptr() };
        // SAFETY: `fs` is a valid, fully initialised `file_system_type` in
        // static storage, as lockdep requires for its keys.
        if let Err(e) = to_result(unsafe { bindings::register_filesystem(fs) }) {
            self.inode_cache
                .store(core::ptr::null_mut(), Ordering::Relaxed);
            // SAFETY: Created above; no inode was allocated from it (the
            // type was never registered).
            unsafe { bindings::kmem_cache_destroy(cache.as_ptr()) };
            self.busy.store(false, Ordering::Release);
            return Err(e);
        }
        Ok(Registered { reg: self })
    }

    /// The inode cache of the registration that `fs` is part of.
    ///
    /// # Safety
    ///
    /// `fs` is the `file_system_type` of a registered `Registration<T>`
    /// (e.g. the `s_type` of a live super block of `T`).
    pub(crate) unsafe fn inode_cache_of(
        fs: *mut bindings::file_system_type,
    ) -> *mut bindings::kmem_cache {
        // SAFETY: Per the safety requirements, `fs` is the `fs` field of a
        // `Registration<T>` (`Opaque` is transparent), in static storage.
        let reg = unsafe { &*crate::container_of!(fs, Self, fs) };
        reg.inode_cache.load(core::sync::atomic::Ordering::Acquire)
    }
}

impl<T: FileSystem> Default for Registration<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// Proof that a [`Registration`] is registered; unregisters on drop.
pub struct Registered<T: FileSystem> {
    reg: &'static Registration<T>,
}

impl<T: FileSystem> Drop for Registered<T> {
    fn drop(&mut self) {
        // SAFETY: The type was registered by `Registration::register`.
        unsafe { bindings::unregister_filesystem(self.reg.fs.get()) };
        let cache = self
            .reg
            .inode_cache
            .swap(core::ptr::null_mut(), core::sync::atomic::Ordering::Relaxed);
        if Self::owner_unused(self.reg) {
            // No super block of `T` is left and no mount is starting (see
            // `owner_unused`); their inodes are freed by RCU callbacks
            // (`free_inode`), which must have run before the cache goes.
            // SAFETY: Waits for RCU callbacks; callable from process context.
            unsafe { bindings::rcu_barrier() };
            // SAFETY: The cache was created by `register`, and every object
            // of it has been freed (above).
            unsafe { bindings::kmem_cache_destroy(cache) };
        } else {
            // Dropped while the filesystem may be in use: the cache has to
            // outlive its inodes, so it is left (a leak, not a use after
            // free).
            crate::pr_warn!(
                "{}: unregistered while in use; its inode cache is left\n",
                T::NAME
            );
        }
        // INVARIANT: Unregistered: another `register` may write it now.
        self.reg
            .busy
            .store(false, core::sync::atomic::Ordering::Release);
    }
}

impl<T: FileSystem> Registered<T> {
    /// Whether nothing holds a reference to the filesystem's module, once
    /// the type is unregistered.  Every super block holds one from
    /// `sget_fc` until after `kill_sb`, and so does a mount that found the
    /// type (`get_fs_type` takes it under `file_systems_lock`, which
    /// `unregister_filesystem` waited for): if the count is zero, no super
    /// block of `T` exists and none can be created.  At module unload the
    /// count is already dropped below zero.  Without a module (built in) or
    /// without module unloading, it cannot be told: `false`.
    fn owner_unused(reg: &Registration<T>) -> bool {
        // SAFETY: `owner` was set by `register` and does not change.
        let owner = unsafe { (*reg.fs.get()).owner };
        if owner.is_null() {
            return false;
        }
        #[cfg(CONFIG_MODULE_UNLOAD)]
        {
            // SAFETY: `owner` is this module, alive while its code runs.
            unsafe { bindings::module_refcount(owner) <= 0 }
        }
        #[cfg(not(CONFIG_MODULE_UNLOAD))]
        false
    }
}

/// The C callbacks of a filesystem type, forwarding to `T`.
struct Tables<T: FileSystem>(PhantomData<T>);

impl<T: FileSystem> Tables<T> {
    const CONTEXT_OPS: bindings::fs_context_operations = bindings::fs_context_operations {
        free: Some(Self::free),
        dup: None,
        parse_param: Some(Self::parse_param),
        parse_monolithic: None,
        get_tree: Some(Self::get_tree),
        reconfigure: Some(Self::reconfigure),
    };

    /// # Safety
    ///
    /// Called by the VFS with a new `fs_context` for this filesystem type.
    unsafe extern "C" fn init_fs_context(fc: *mut bindings::fs_context) -> core::ffi::c_int {
        from_result(|| {
            let opts =
                crate::alloc::KBox::new(T::Options::default(), crate::alloc::flags::GFP_KERNEL)?;
            // SAFETY: `fc` is valid (function safety requirement); the
            // options are freed in `free`, which the VFS calls exactly once.
            unsafe {
                (*fc).fs_private = crate::alloc::KBox::into_raw(opts).cast();
                (*fc).ops = &Self::CONTEXT_OPS;
            }
            Ok(0)
        })
    }

    /// Takes the options out of `fc`, leaving defaults in their place.
    ///
    /// # Safety
    ///
    /// `fc` is a valid context set up by `init_fs_context`.
    unsafe fn options(fc: *mut bindings::fs_context) -> &'static mut T::Options {
        // SAFETY: `fs_private` points to the `KBox<T::Options>` installed by
        // `init_fs_context`, alive until `free`; the VFS serialises the
        // calls on one context (`uapi_mutex`).
        unsafe { &mut *(*fc).fs_private.cast::<T::Options>() }
    }

    /// # Safety
    ///
    /// Called by the VFS once, when the context is freed.
    unsafe extern "C" fn free(fc: *mut bindings::fs_context) {
        // SAFETY: `fc` is valid; `fs_private` is null (allocation failed in
        // `init_fs_context`) or the box installed there.
        let p = unsafe { (*fc).fs_private.cast::<T::Options>() };
        if !p.is_null() {
            // SAFETY: `p` came from `KBox::into_raw` and is freed only here.
            drop(unsafe { crate::alloc::KBox::from_raw(p) });
        }
    }

    /// # Safety
    ///
    /// Called by the VFS with a valid context and parameter.
    unsafe extern "C" fn parse_param(
        fc: *mut bindings::fs_context,
        p: *mut bindings::fs_parameter,
    ) -> core::ffi::c_int {
        from_result(|| {
            let mut result = core::mem::MaybeUninit::<bindings::fs_parse_result>::zeroed();
            // SAFETY: `fc` and `p` are valid; the table is `T::PARAMS`,
            // terminated by `Spec::END` (checked when it was made a table).
            let opt = unsafe {
                bindings::__fs_parse(
                    &mut (*fc).log,
                    param::Spec::as_table(T::PARAMS),
                    p,
                    result.as_mut_ptr(),
                )
            };
            if opt < 0 {
                return Err(crate::error::Error::from_errno(opt));
            }
            // SAFETY: `__fs_parse` filled `result` (it was zeroed anyway).
            let value = param::Value::from_raw(unsafe { &result.assume_init() });
            // SAFETY: `fc` comes from `init_fs_context` (safety requirement).
            T::parse_param(unsafe { Self::options(fc) }, opt as u8, value)?;
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS with a valid context.
    unsafe extern "C" fn get_tree(fc: *mut bindings::fs_context) -> core::ffi::c_int {
        // SAFETY: `fc` is valid; `fill_super` has the signature required.
        unsafe { bindings::get_tree_bdev(fc, Some(Self::fill_super)) }
    }

    /// # Safety
    ///
    /// Called by `get_tree_bdev` with a new, locked super block whose block
    /// device is open.
    unsafe extern "C" fn fill_super(
        sb: *mut bindings::super_block,
        fc: *mut bindings::fs_context,
    ) -> core::ffi::c_int {
        from_result(|| {
            // `get_tree_bdev` opened the device with
            // `BLK_OPEN_RESTRICT_WRITES`, which refuses every other writer
            // (and fails if one is there) unless the kernel allows writes to
            // mounted devices (`CONFIG_BLK_DEV_WRITE_MOUNTED=y`, or
            // `bdev_allow_write_mounted=1`).  The buffer cache's contents
            // are handed out as plain slices (`buffer::BufferData`), which
            // is only sound if nobody else writes the device: so that is a
            // condition of mounting.  Blocked writes show as a negative
            // `bd_writers`, and stay so while the super block holds the
            // device open.
            // SAFETY: `s_bdev` is the device opened for this super block,
            // open until `kill_sb`; the count changes under the disk's
            // `open_mutex`, so it is read once, as `READ_ONCE` would.
            let writers = unsafe { core::ptr::read_volatile(&(*(*sb).s_bdev).bd_writers) };
            if writers >= 0 {
                // SAFETY: `s_id` is the NUL-terminated device name.
                let id = unsafe { crate::str::CStr::from_char_ptr((*sb).s_id.as_ptr()) };
                crate::pr_err!(
                    "{}: {}: this kernel lets other writers change a mounted device \
                     (CONFIG_BLK_DEV_WRITE_MOUNTED=y or bdev_allow_write_mounted=1); \
                     refusing to mount\n",
                    T::NAME,
                    id
                );
                return Err(EPERM);
            }
            // SAFETY: `fc` comes from `init_fs_context`.
            let opts = core::mem::take(unsafe { Self::options(fc) });
            // SAFETY: `sb` is new and exclusively ours until it is returned;
            // its device refuses other writers (checked above).
            let new_sb = unsafe { sb::NewSuperBlock::<T>::from_raw(sb) };
            new_sb.init_ops();
            let data = T::fill_super(&new_sb, opts)?;
            // SAFETY: `s_fs_info` is ours; `kill_sb` frees it.
            unsafe { (*sb).s_fs_info = data.into_foreign() as *mut _ };
            // SAFETY: `s_fs_info` is now set, so the super block is a
            // valid `SuperBlock<T>`.
            let sbr = unsafe { sb::SuperBlock::<T>::from_raw(sb) };
            let root = T::root(sbr)?;
            // SAFETY: `d_make_root` consumes the inode reference (on failure
            // too), which `into_raw` hands over.
            let dentry = unsafe {
                bindings::d_make_root(crate::types::ARef::into_raw(root).as_ptr().cast())
            };
            if dentry.is_null() {
                return Err(ENOMEM);
            }
            // SAFETY: `sb` is locked and ours.
            unsafe { (*sb).s_root = dentry };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS on remount with a valid context whose `root` is
    /// the mounted filesystem's root.
    unsafe extern "C" fn reconfigure(fc: *mut bindings::fs_context) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: On reconfiguration `fc->root` is the root of a mounted
            // super block of this type, so `s_fs_info` is set.
            let sbr = unsafe { sb::SuperBlock::<T>::from_raw((*(*fc).root).d_sb) };
            // SAFETY: `fc` comes from `init_fs_context`.
            let opts = core::mem::take(unsafe { Self::options(fc) });
            // SAFETY: `fc` is valid.
            let mut flags = sb::MountFlags::from_raw(unsafe { (*fc).sb_flags });
            // Everything dirty reaches the disk before the options change
            // (as `ext2_reconfigure` does first): after a remount read-only
            // nothing would write it.
            // SAFETY: The VFS holds `s_umount` exclusively across
            // `->reconfigure`, as `sync_filesystem` requires; the super
            // block is mounted and valid.
            crate::error::to_result(unsafe { bindings::sync_filesystem((*(*fc).root).d_sb) })?;
            T::reconfigure(sbr, opts, &mut flags)?;
            // SAFETY: `fc` is valid and ours during the call.
            unsafe { (*fc).sb_flags = flags.as_raw() };
            Ok(0)
        })
    }

    /// # Safety
    ///
    /// Called by the VFS once, when the super block is torn down.
    unsafe extern "C" fn kill_sb(sb: *mut bindings::super_block) {
        // SAFETY: `sb` is valid; the VFS is done with it but for this call.
        unsafe { bindings::kill_block_super(sb) };
        // SAFETY: `sb` stays allocated until after `kill_sb`; `s_fs_info`
        // is null if `fill_super` failed before setting it.
        let info = unsafe { (*sb).s_fs_info };
        if !info.is_null() {
            // SAFETY: `info` came from `into_foreign` in `fill_super`, and
            // nothing uses it after `kill_block_super` has evicted every
            // inode and written back everything.
            drop(unsafe { T::Data::from_foreign(info) });
        }
    }
}
