// SPDX-License-Identifier: GPL-2.0

//! Buffer heads: blocks of a block device cached in the page cache.
//!
//! C header: [`include/linux/buffer_head.h`](srctree/include/linux/buffer_head.h).

use crate::bindings;
use crate::error::{code::*, Result};
use crate::types::Opaque;
use core::{marker::PhantomData, ptr::NonNull};

/// A `struct buffer_head`.
///
/// # Invariants
///
/// Instances are only referenced while someone holds a reference to the
/// buffer head (`b_count`), so it stays allocated and attached to its folio.
#[repr(transparent)]
pub struct BufferHead(Opaque<bindings::buffer_head>);

impl BufferHead {
    /// # Safety
    ///
    /// `bh` is a valid buffer head with a reference held for `'a`.
    pub unsafe fn from_raw<'a>(bh: *mut bindings::buffer_head) -> &'a Self {
        // SAFETY: Transparent wrapper; validity per the safety requirements.
        unsafe { &*bh.cast() }
    }

    /// The C `struct buffer_head`.
    pub fn as_raw(&self) -> *mut bindings::buffer_head {
        self.0.get()
    }

    /// The block number on the device (`b_blocknr`).
    pub fn block_nr(&self) -> u64 {
        // SAFETY: `b_blocknr` is a plain integer of a valid buffer head.
        unsafe { (*self.as_raw()).b_blocknr }
    }

    /// The size of the block in bytes (`b_size`).
    pub fn size(&self) -> usize {
        // SAFETY: Fixed for the life of the buffer head.
        unsafe { (*self.as_raw()).b_size }
    }

    /// Byte offset of the buffer's data in its folio (`bh_offset`).
    pub fn offset_in_folio(&self) -> usize {
        // SAFETY: `b_data` and `b_folio` are fixed while the buffer is
        // attached; for a lowmem folio `b_data` is the address of the data,
        // and the offset is taken modulo the folio size as `bh_offset` does.
        unsafe {
            let folio = (*self.as_raw()).__bindgen_anon_1.b_folio;
            let size = bindings::folio_size(folio);
            ((*self.as_raw()).b_data as usize) & (size - 1)
        }
    }

    pub(crate) fn folio_raw(&self) -> *mut bindings::folio {
        // SAFETY: Fixed while the buffer is attached to its folio.
        unsafe { (*self.as_raw()).__bindgen_anon_1.b_folio }
    }

    /// Whether state bit `s` is set.
    pub(crate) fn test(&self, s: State) -> bool {
        // SAFETY: An atomic `test_bit` on `b_state` of a valid buffer.
        unsafe { bindings::bh_test_state(self.as_raw(), s as u32) }
    }

    /// Sets state bit `s` (atomically).  Crate-private: `BH_Lock`,
    /// `BH_Async_Write` and `BH_Uptodate` carry the invariants of the
    /// buffer lock and of folio writeback, and change only through the
    /// typestate methods that keep them ([`BufferLock`], the marking and
    /// completion in [`super::folio`]).
    pub(crate) fn set(&self, s: State) {
        // SAFETY: An atomic `set_bit` on `b_state` of a valid buffer.
        unsafe { bindings::bh_set_state(self.as_raw(), s as u32) }
    }

    /// Clears state bit `s` (atomically).  Crate-private, see [`Self::set`].
    pub(crate) fn clear(&self, s: State) {
        // SAFETY: An atomic `clear_bit` on `b_state` of a valid buffer.
        unsafe { bindings::bh_clear_state(self.as_raw(), s as u32) }
    }

    /// Clears state bit `s` and returns whether it was set.  Crate-private,
    /// see [`Self::set`].
    pub(crate) fn test_and_clear(&self, s: State) -> bool {
        // SAFETY: An atomic `test_and_clear_bit` on `b_state`.
        unsafe { bindings::bh_test_and_clear_state(self.as_raw(), s as u32) }
    }

    /// Whether the buffer holds valid data (`buffer_uptodate`).
    pub fn is_uptodate(&self) -> bool {
        self.test(State::Uptodate)
    }

    /// Whether the buffer is dirty (`buffer_dirty`).
    pub fn is_dirty(&self) -> bool {
        self.test(State::Dirty)
    }

    /// Whether the buffer is locked (`buffer_locked`).
    pub fn is_locked(&self) -> bool {
        self.test(State::Lock)
    }

    /// Whether the buffer has a disk mapping (`buffer_mapped`).
    pub fn is_mapped(&self) -> bool {
        self.test(State::Mapped)
    }

    /// Whether the buffer was just allocated by `get_block` (`buffer_new`).
    pub fn is_new(&self) -> bool {
        self.test(State::New)
    }

    /// Whether the buffer is under an asynchronous write that will end its
    /// folio's writeback (`buffer_async_write`).
    pub fn is_async_write(&self) -> bool {
        self.test(State::AsyncWrite)
    }

    /// Whether the last write of the buffer failed (`buffer_write_io_error`).
    pub fn has_write_io_error(&self) -> bool {
        self.test(State::WriteIoError)
    }

    /// Takes the buffer lock, sleeping if needed.
    ///
    /// The caller must not hold an unsubmitted bio (the lock holder may be
    /// waiting for I/O that bio would start).
    pub fn lock(&self) -> BufferLock<'_> {
        // SAFETY: A valid buffer; `lock_buffer` may sleep, which the caller
        // allows by calling this.
        unsafe { bindings::lock_buffer(self.as_raw()) };
        // INVARIANT: Locked just now, by us.
        BufferLock(self)
    }

    /// Takes the buffer lock if it is free.
    pub fn try_lock(&self) -> Option<BufferLock<'_>> {
        // SAFETY: A valid buffer.
        if unsafe { bindings::trylock_buffer(self.as_raw()) } != 0 {
            // INVARIANT: `trylock_buffer` took the lock for us.
            Some(BufferLock(self))
        } else {
            None
        }
    }
}

/// The lock of a buffer (`BH_Lock`), held; released when dropped.
///
/// The lock of a buffer of a folio that is being prepared for writeback
/// comes from [`super::folio::Candidate`] instead, which can also hand the
/// lock over to the write.  A lock taken here never carries a write.
///
/// Safe code cannot release a buffer lock it does not hold: the state bits
/// change only inside the kernel crate.
///
/// ```ignore
/// // compile_fail: E0624
/// use kernel::fs::buffer::BufferHead;
/// fn f(bh: &BufferHead) {
///     bh.clear(kernel::fs::buffer::State::Lock); // ERROR
/// }
/// ```
///
/// Nor can it hand such a lock over to a write: only the lock of a buffer
/// of a folio prepared for writeback can be ([`super::folio::CandidateLock`]).
///
/// ```ignore
/// // compile_fail: E0599
/// use kernel::fs::buffer::BufferHead;
/// fn f(bh: &BufferHead) {
///     let lock = bh.lock();
///     lock.mark_if_dirty(); // ERROR
/// }
/// ```
///
/// # Invariants
///
/// The holder owns the buffer's lock.
pub struct BufferLock<'a>(&'a BufferHead);

impl Drop for BufferLock<'_> {
    fn drop(&mut self) {
        // SAFETY: We own the lock (type invariant).
        unsafe { bindings::unlock_buffer(self.0.as_raw()) }
    }
}

/// Buffer state bits (`enum bh_state_bits`).  Read through the predicates
/// of [`BufferHead`]; changed only inside the kernel crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum State {
    /// Contains valid data.
    Uptodate = bindings::bh_state_bits_BH_Uptodate,
    /// Is dirty.
    Dirty = bindings::bh_state_bits_BH_Dirty,
    /// Is locked.
    Lock = bindings::bh_state_bits_BH_Lock,
    /// Has a disk mapping.
    Mapped = bindings::bh_state_bits_BH_Mapped,
    /// Newly allocated by `get_block`, not yet written.
    New = bindings::bh_state_bits_BH_New,
    /// Under an asynchronous write whose completion ends folio writeback.
    AsyncWrite = bindings::bh_state_bits_BH_Async_Write,
    /// The last write failed.
    WriteIoError = bindings::bh_state_bits_BH_Write_EIO,
    /// The contents passed the filesystem's own check since they were last
    /// read from the disk: the first private bit, as ext4's `BH_Verified`.
    /// A mechanism, not a policy: the filesystem supplies the check
    /// ([`BufferData::verify_once`], in the manner of XFS's buffer
    /// verifiers); the bit only remembers that it passed.  Cleared by
    /// [`Buffer::read`] whenever it reads the block again.
    Verified = bindings::bh_state_bits_BH_PrivateStart,
}

/// A referenced, up-to-date block of the device in the buffer cache
/// (`sb_bread`); releases its reference (`brelse`) when dropped.
///
/// Its contents are reached only through [`Buffer::lock`], which takes the
/// buffer lock (`BH_Lock`): the buffer cache's own writeback holds that lock
/// while the block is being written, and every reader and writer in Rust
/// takes it, so a `&mut [u8]` of the block never aliases another access
/// from Rust, and the disk never receives a half-updated block.
///
/// Nothing outside Rust writes it either, while `'sb` lasts: the block
/// belongs to the device of a super block that is alive for `'sb` (a
/// `Buffer` comes from [`super::sb::SuperBlock::bread`] and the like, and
/// borrows the super block), and a super block is only set up on a device
/// whose other writers the kernel refuses (`BLK_OPEN_RESTRICT_WRITES`,
/// checked in `fill_super`): no `write(2)`, `O_DIRECT` write or shared
/// writable mapping of the device can change the block under a slice.  The
/// device's own readers only fill buffers that are not up to date, under
/// their locks; a folio whose buffers are referenced is neither migrated
/// nor invalidated.  A buffer kept between calls, in the filesystem's data,
/// is a [`CachedBuffer`], which gives a `Buffer` back only for a live super
/// block of the same device.  A `Buffer` itself cannot be kept beyond the
/// super block's borrow:
///
/// ```ignore
/// // compile_fail: E0521
/// use kernel::fs::{buffer::Buffer, sb::SuperBlock, FileSystem};
/// fn keep(_b: Buffer<'static>) {}
/// fn f<T: FileSystem>(sb: &SuperBlock<T>) -> kernel::error::Result {
///     let b = sb.bread(0)?;
///     keep(b); // ERROR
///     Ok(())
/// }
/// ```
///
/// # Invariants
///
/// `bh` holds a reference, is up to date, and its data is `b_size` bytes
/// in lowmem: a block device's page cache is allocated with its mapping's
/// gfp, `GFP_USER`, which has no `__GFP_HIGHMEM` (`bdev_alloc`), and
/// 64-bit architectures have no highmem anyway.  Its device is that of a
/// super block alive for `'sb`, with writes by others refused.
pub struct Buffer<'sb> {
    bh: NonNull<bindings::buffer_head>,
    _sb: PhantomData<&'sb ()>,
}

// SAFETY: A buffer head reference may be dropped from any thread
// (`brelse` is thread-safe), and its data is only reached under the buffer
// lock, a sleeping lock usable from any thread.
unsafe impl Send for Buffer<'_> {}
// SAFETY: See above: `&Buffer` gives access to the data only under the lock.
unsafe impl Sync for Buffer<'_> {}

impl<'sb> Buffer<'sb> {
    /// Reads block `block` of `size` bytes from `bdev`.
    ///
    /// A block read from the disk now loses [`State::Verified`]; one found
    /// up to date in the cache keeps it.
    ///
    /// # Safety
    ///
    /// `bdev` is the device of a super block that is alive for `'sb` and
    /// was set up with writes by others refused (`fill_super`).
    pub(crate) unsafe fn read(
        bdev: *mut bindings::block_device,
        block: u64,
        size: u32,
    ) -> Result<Self> {
        // As `__bread_gfp(.., 0)` does: `GFP_NOFS` (callers hold filesystem
        // locks), `__GFP_NOFAIL` (the allocator loops, not we), and no
        // `__GFP_MOVABLE`: metadata buffers are held across sleeps.  With
        // `__GFP_NOFAIL`, `bdev_getblk` never returns NULL; checked all the
        // same.
        let gfp = bindings::GFP_NOFS | (1 << bindings::___GFP_NOFAIL_BIT);
        // SAFETY: The callers pass the open device of a live super block;
        // `bdev_getblk` returns a referenced buffer head or NULL.
        let bh = unsafe { bindings::bdev_getblk(bdev, block, size, gfp) };
        let bh = NonNull::new(bh).ok_or(ENOMEM)?;
        // INVARIANT: Referenced; up to date once the read below succeeds
        // (on failure `buf` is dropped, not returned); the device is as the
        // safety requirements say.
        let buf = Buffer {
            bh,
            _sb: PhantomData,
        };
        let p = bh.as_ptr();
        // `bh_uptodate_or_lock` returns non-zero if the buffer is up to date,
        // and otherwise locks it for us; we then clear the verified state and
        // read it (`__bh_read` submits and waits, the completion unlocks, and
        // it returns `-EIO` if the buffer is not up to date afterwards).  On
        // that error `buf` drops our reference.
        // SAFETY: `p` is referenced by `buf` for the whole block, and the
        // state bits and the read are done under the lock taken above.
        unsafe {
            if bindings::bh_uptodate_or_lock(p) == 0 {
                bindings::bh_clear_state(p, State::Verified as u32);
                if bindings::__bh_read(p, 0, true) != 0 {
                    return Err(EIO);
                }
            }
        }
        Ok(buf)
    }

    /// Returns block `block` of `bdev` filled with zeroes, without reading
    /// it: for a block just allocated, whose old contents do not matter.
    ///
    /// # Safety
    ///
    /// As for [`Buffer::read`].
    pub(crate) unsafe fn zeroed(
        bdev: *mut bindings::block_device,
        block: u64,
        size: u32,
    ) -> Result<Self> {
        // SAFETY: As in `read`.  `GFP_NOFS`: callers hold filesystem locks.
        let bh = unsafe { bindings::bdev_getblk(bdev, block, size, bindings::GFP_NOFS) };
        let bh = NonNull::new(bh).ok_or(ENOMEM)?;
        // INVARIANT: Referenced, and up to date once zeroed below; the
        // device is as the safety requirements say.
        let buf = Buffer {
            bh,
            _sb: PhantomData,
        };
        let p = bh.as_ptr();
        // Under the buffer lock nobody else reads or writes the data (see
        // the type's documentation), and the lock also waits for any write
        // of the block's old contents still in flight.  Zeroes have not been
        // checked by anyone: the verified state goes.
        // SAFETY: We hold a reference, and `b_data` is `b_size` bytes of lowmem.
        unsafe {
            bindings::lock_buffer(p);
            core::ptr::write_bytes((*p).b_data.cast::<u8>(), 0, (*p).b_size);
            bindings::bh_clear_state(p, State::Verified as u32);
            bindings::bh_set_state(p, bindings::bh_state_bits_BH_Uptodate);
            bindings::unlock_buffer(p);
        }
        Ok(buf)
    }

    /// Takes the buffer lock (sleeping while the block is under I/O) and
    /// returns access to the contents.
    pub fn lock(&self) -> BufferData<'_> {
        // SAFETY: We hold a reference, so the buffer head is valid.
        unsafe { bindings::lock_buffer(self.bh.as_ptr()) };
        BufferData {
            buf: self,
            dirty: false,
        }
    }

    /// Writes the block to the disk now if it is dirty, and waits for the
    /// write (`sync_dirty_buffer`).  Must not be called with the lock held.
    pub fn sync(&self) -> Result {
        // SAFETY: A referenced buffer; `sync_dirty_buffer` takes the lock.
        crate::error::to_result(unsafe { bindings::sync_dirty_buffer(self.bh.as_ptr()) })
    }

    /// Drops the block's dirty state and any association with an inode,
    /// then the reference (`bforget`): for a metadata block being freed,
    /// whose cached contents must never reach the disk again (the block
    /// may be reused for file data).
    pub fn forget(self) {
        let me = core::mem::ManuallyDrop::new(self);
        // SAFETY: We own one reference, which `__bforget` drops.
        unsafe { bindings::__bforget(me.bh.as_ptr()) };
    }

    /// The buffer head.
    pub fn head(&self) -> &BufferHead {
        // SAFETY: Referenced for as long as `self` lives.
        unsafe { BufferHead::from_raw(self.bh.as_ptr()) }
    }
}

impl Clone for Buffer<'_> {
    /// Another reference to the same buffer.  A clone kept for long may
    /// outlive the buffer's up-to-date state (a failed write clears it):
    /// check `head().is_uptodate()` before using such a one, or read the
    /// block again.
    fn clone(&self) -> Self {
        // SAFETY: We own a reference, so the buffer head is alive;
        // `get_bh` takes another one, which the clone's `Drop` releases.
        unsafe { bindings::get_bh(self.bh.as_ptr()) };
        // INVARIANT: Another reference to the same block, for as long.
        Buffer {
            bh: self.bh,
            _sb: PhantomData,
        }
    }
}

impl Drop for Buffer<'_> {
    fn drop(&mut self) {
        // SAFETY: We own one reference (type invariant).
        unsafe { bindings::__brelse(self.bh.as_ptr()) };
    }
}

/// Forgets the cached copy of block `block` of `bdev`, if there is one
/// (see [`Buffer::forget`]).
pub(crate) fn forget_cached(bdev: *mut bindings::block_device, block: u64, size: u32) {
    // SAFETY: The device of a live super block; `__find_get_block` returns
    // a referenced buffer head or NULL, and `__bforget` drops the reference.
    unsafe {
        let bh = bindings::__find_get_block(bdev, block, size);
        if !bh.is_null() {
            bindings::__bforget(bh);
        }
    }
}

/// A reference to a buffer kept between calls, e.g. in the filesystem's
/// [`super::FileSystem::Data`]: unlike a [`Buffer`], it does not borrow the
/// super block, and gives a `Buffer` back only for a live super block of
/// the buffer's device ([`CachedBuffer::get`]).  Released when dropped.
///
/// # Invariants
///
/// `bh` holds a reference.
pub struct CachedBuffer {
    bh: NonNull<bindings::buffer_head>,
}

// SAFETY: As for `Buffer`: a reference may be dropped from any thread, and
// the contents are reached only through a `Buffer`.
unsafe impl Send for CachedBuffer {}
// SAFETY: `&CachedBuffer` gives nothing but `get`.
unsafe impl Sync for CachedBuffer {}

impl CachedBuffer {
    /// Keeps another reference to `buf`.
    pub fn new(buf: &Buffer<'_>) -> Self {
        // SAFETY: `buf` holds a reference; `get_bh` takes another one,
        // which `drop` releases.
        unsafe { bindings::get_bh(buf.bh.as_ptr()) };
        // INVARIANT: The reference just taken.
        Self { bh: buf.bh }
    }

    /// The buffer, for as long as `sb` is borrowed, if `sb` is on the
    /// buffer's device; `None` otherwise.  Like a clone, the buffer may
    /// have lost its up-to-date state since it was kept (a failed write
    /// clears it): check `head().is_uptodate()`.
    pub fn get<'sb, T: super::FileSystem>(
        &self,
        sb: &'sb super::sb::SuperBlock<T>,
    ) -> Option<Buffer<'sb>> {
        // SAFETY: `bh` is referenced (type invariant), so valid; `b_bdev`
        // does not change while it is.
        let bdev = unsafe { (*self.bh.as_ptr()).b_bdev };
        if bdev != sb.bdev_raw() {
            return None;
        }
        // SAFETY: We own a reference; `get_bh` takes another one, which
        // the `Buffer`'s `Drop` releases.
        unsafe { bindings::get_bh(self.bh.as_ptr()) };
        // INVARIANT: Referenced; its device is `sb`'s, a live super block
        // (borrowed for `'sb`) set up with writes by others refused.
        Some(Buffer {
            bh: self.bh,
            _sb: PhantomData,
        })
    }
}

impl Drop for CachedBuffer {
    fn drop(&mut self) {
        // SAFETY: We own one reference (type invariant).
        unsafe { bindings::__brelse(self.bh.as_ptr()) };
    }
}

/// The contents of a [`Buffer`], with the buffer lock held.  If they were
/// changed ([`BufferData::data_mut`]), the buffer is marked dirty when the
/// lock is released.
pub struct BufferData<'a> {
    buf: &'a Buffer<'a>,
    dirty: bool,
}

impl BufferData<'_> {
    fn raw(&self) -> *mut bindings::buffer_head {
        self.buf.bh.as_ptr()
    }

    /// The block's contents.
    pub fn data(&self) -> &[u8] {
        // Inside the kernel, a buffer-cache block is written only under its
        // lock (reads from the device; `bforget` aside, which only its
        // owner calls), and outside it nobody may write the device (type
        // invariants of `Buffer`).
        // SAFETY: Up to date, referenced, `b_size` bytes of lowmem (type
        // invariants of `Buffer`); we hold the lock, so nothing writes them.
        unsafe {
            core::slice::from_raw_parts((*self.raw()).b_data.cast::<u8>(), (*self.raw()).b_size)
        }
    }

    /// Whether the contents passed the filesystem's checks since they were
    /// read ([`State::Verified`]).
    pub fn verified(&self) -> bool {
        self.buf.head().test(State::Verified)
    }

    /// Records that the contents passed the filesystem's checks (or were
    /// written by it, checks included).  Under the lock, so no reader sees
    /// the mark before the contents it describes.
    pub fn set_verified(&mut self) {
        self.buf.head().set(State::Verified)
    }

    /// Runs `verify` on the contents unless they passed it since they were
    /// last read from the disk, and records it when they pass: a block is
    /// checked once per read, however often it is used.
    pub fn verify_once<E>(
        &mut self,
        verify: impl FnOnce(&[u8]) -> core::result::Result<(), E>,
    ) -> core::result::Result<(), E> {
        if !self.verified() {
            verify(self.data())?;
            self.set_verified();
        }
        Ok(())
    }

    /// The block's contents, for changing; the buffer will be marked dirty.
    pub fn data_mut(&mut self) -> &mut [u8] {
        self.dirty = true;
        // SAFETY: As in `data`; `&mut self` makes this the only reference
        // to the contents handed out through this lock.
        unsafe {
            core::slice::from_raw_parts_mut((*self.raw()).b_data.cast::<u8>(), (*self.raw()).b_size)
        }
    }

    /// Marks the buffer dirty and associates it with `inode`, so that
    /// `fsync` of that inode writes it (`mark_buffer_dirty_inode`): for
    /// metadata that belongs to one file (its indirect blocks, a
    /// directory's blocks).
    pub fn mark_dirty_for<T: super::FileSystem>(&mut self, inode: &super::inode::Inode<T>) {
        // SAFETY: A valid, referenced buffer; the inode is referenced by
        // the caller.  An inode that has associated buffers releases them
        // in `evict_inode` (`invalidate_inode_buffers`) before it is freed.
        unsafe { bindings::mark_buffer_dirty_inode(self.raw(), inode.as_raw()) };
    }
}

impl Drop for BufferData<'_> {
    fn drop(&mut self) {
        // SAFETY: We hold the lock of a referenced buffer.
        unsafe {
            if self.dirty {
                bindings::mark_buffer_dirty(self.raw());
            }
            bindings::unlock_buffer(self.raw());
        }
    }
}
