// SPDX-License-Identifier: GPL-2.0

//! File operations tables (`struct file_operations`) and directory
//! iteration.  (Named so as not to clash with `kernel::fs::file`, the
//! `struct file` of 6.13 and later.)
//!
//! C header: [`include/linux/fs.h`](srctree/include/linux/fs.h).

use super::{inode::Inode, FileSystem};
use crate::bindings;
use crate::error::{from_result, Result};
use core::marker::PhantomData;

/// Directory-entry types (`DT_*`) reported by `readdir`.
pub mod dtype {
    /// Unknown type.
    pub const UNKNOWN: u8 = 0;
    /// Named pipe.
    pub const FIFO: u8 = 1;
    /// Character device.
    pub const CHR: u8 = 2;
    /// Directory.
    pub const DIR: u8 = 4;
    /// Block device.
    pub const BLK: u8 = 6;
    /// Regular file.
    pub const REG: u8 = 8;
    /// Symbolic link.
    pub const LNK: u8 = 10;
    /// Socket.
    pub const SOCK: u8 = 12;
}

/// The caller's side of a `readdir`: a `struct dir_context`.
///
/// Its position (`ctx->pos`) is the filesystem's cookie of the next entry
/// to report; `readdir` resumes from it, so it must stay meaningful across
/// calls (e.g. the byte offset of the entry in the directory).
pub struct DirEmitter<'a> {
    ctx: &'a mut bindings::dir_context,
}

impl DirEmitter<'_> {
    /// The position to continue from.
    pub fn pos(&self) -> i64 {
        self.ctx.pos
    }

    /// Sets the position to continue from.
    pub fn set_pos(&mut self, pos: i64) {
        self.ctx.pos = pos;
    }

    /// Reports one entry.  Returns `false` when the caller's buffer is full:
    /// stop, and leave the position at this entry so it is reported again.
    pub fn emit(&mut self, name: &[u8], ino: u64, dtype: u8) -> bool {
        // SAFETY: `ctx` is the live context of this `iterate_shared` call;
        // `name` is valid for its length.
        unsafe {
            bindings::dir_emit(
                self.ctx,
                name.as_ptr().cast(),
                name.len() as i32,
                ino,
                dtype as u32,
            )
        }
    }
}

/// File operations (`struct file_operations`) of directories.
#[crate::macros::vtable]
pub trait Operations {
    /// The filesystem these operations belong to.
    type FileSystem: FileSystem;

    /// Reports the directory's entries from [`DirEmitter::pos`] on.
    fn read_dir(dir: &Inode<Self::FileSystem>, emitter: &mut DirEmitter<'_>) -> Result;
}

/// A file operations table.
#[repr(transparent)]
pub struct Ops<T: FileSystem>(pub(crate) bindings::file_operations, PhantomData<T>);

// SAFETY: Immutable table of function pointers.
unsafe impl<T: FileSystem> Sync for Ops<T> {}

impl<T: FileSystem> Ops<T> {
    /// Directory operations implemented by `U`.
    pub const fn dir<U: Operations<FileSystem = T>>() -> Self {
        // SAFETY: All-zeroes is a valid (empty) `file_operations`.
        let mut ops: bindings::file_operations = unsafe { core::mem::zeroed() };
        ops.llseek = Some(bindings::generic_file_llseek);
        ops.read = Some(bindings::generic_read_dir);
        ops.iterate_shared = Some(DirTable::<U>::iterate_shared);
        ops.fsync = Some(bindings::generic_file_fsync);
        Self::with_ioctl(ops)
    }

    /// Regular files read through the page cache with the generic helpers
    /// (`read_iter`, `mmap` read-only, `splice_read`, `llseek`), on top of
    /// the inode's [`super::address_space::Ops`].
    pub const fn read_only_regular() -> Self {
        // SAFETY: All-zeroes is a valid (empty) `file_operations`.
        let mut ops: bindings::file_operations = unsafe { core::mem::zeroed() };
        ops.llseek = Some(bindings::generic_file_llseek);
        ops.read_iter = Some(bindings::generic_file_read_iter);
        ops.mmap = Some(bindings::generic_file_readonly_mmap);
        ops.splice_read = Some(bindings::filemap_splice_read);
        Self(ops, PhantomData)
    }

    /// Regular files read and written through the page cache with the
    /// generic helpers (`SEEK_DATA`/`SEEK_HOLE` by `U`'s block map, shared
    /// writable `mmap` included; `fsync` writes and
    /// waits for the data, then runs `U`'s metadata step
    /// ([`super::address_space::Operations::sync_metadata`]), then flushes
    /// the device cache).
    ///
    /// Shared writable mappings allocate the blocks of a page when it is
    /// first written (`page_mkwrite`), through `U`'s block mapper.
    pub const fn read_write_regular<U: super::address_space::Operations<FileSystem = T>>() -> Self {
        let mut ops = Self::read_only_regular().0;
        ops.llseek = Some(super::address_space::Table::<U>::llseek);
        ops.write_iter = Some(write_iter);
        ops.mmap = Some(super::address_space::Table::<U>::mmap);
        ops.fsync = Some(super::address_space::Table::<U>::fsync);
        ops.splice_write = Some(bindings::iter_file_splice_write);
        Self::with_ioctl(ops)
    }

    /// `ops` with the filesystem's ioctls (`FITRIM`, if `T` trims), for
    /// directories and regular files alike (`fstrim` opens either).
    const fn with_ioctl(mut ops: bindings::file_operations) -> Self {
        if T::HAS_TRIM {
            ops.unlocked_ioctl = Some(super::sb::ioctl::<T>);
            #[cfg(CONFIG_COMPAT)]
            {
                ops.compat_ioctl = Some(bindings::compat_ptr_ioctl);
            }
        }
        Self(ops, PhantomData)
    }
}

/// `write_iter` of regular files: `generic_file_write_iter`, refusing
/// (`EPERM`) a write to an immutable file through a descriptor opened
/// before it became immutable, as ext4 does (opening for writing is refused
/// by the VFS already).
///
/// # Safety
///
/// Called by the VFS with a valid `kiocb` of an open regular file and a
/// valid source iterator.
unsafe extern "C" fn write_iter(
    iocb: *mut bindings::kiocb,
    from: *mut bindings::iov_iter,
) -> isize {
    // SAFETY: Per the safety requirements the open file pins its inode.
    // This is `generic_file_write_iter` with the check added under
    // `i_rwsem`, which `set_flags` holds too: a write either completes
    // before the file becomes immutable or is refused.
    unsafe {
        let inode = (*(*(*iocb).ki_filp).f_mapping).host;
        bindings::inode_lock(inode);
        let mut ret = if super::inode::raw_is_immutable(inode) {
            -(bindings::EPERM as isize)
        } else {
            bindings::generic_write_checks(iocb, from)
        };
        if ret > 0 {
            ret = bindings::__generic_file_write_iter(iocb, from);
        }
        bindings::inode_unlock(inode);
        if ret > 0 {
            ret = bindings::generic_write_sync(iocb, ret);
        }
        ret
    }
}

struct DirTable<U: Operations>(PhantomData<U>);

impl<U: Operations> DirTable<U> {
    /// # Safety
    ///
    /// Called by the VFS with an open directory of `U`'s filesystem (its
    /// inode's `i_rwsem` held shared) and a valid context.
    unsafe extern "C" fn iterate_shared(
        file: *mut bindings::file,
        ctx: *mut bindings::dir_context,
    ) -> core::ffi::c_int {
        from_result(|| {
            // SAFETY: An open file pins its inode, initialised and of `U`'s
            // filesystem since `i_fop` came from `Ops::dir::<U>`.
            let dir = unsafe { Inode::<U::FileSystem>::from_raw((*file).f_inode) };
            let mut emitter = DirEmitter {
                // SAFETY: The context is valid and ours for the call.
                ctx: unsafe { &mut *ctx },
            };
            U::read_dir(dir, &mut emitter)?;
            Ok(0)
        })
    }
}
