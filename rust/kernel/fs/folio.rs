// SPDX-License-Identifier: GPL-2.0

//! Folios of the page cache, and the writeback state machine of one folio.
//!
//! C headers: [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h),
//! [`include/linux/page-flags.h`](srctree/include/linux/page-flags.h).
//!
//! Writing a folio back through its buffers goes through these states, and
//! the types make the order the only one that compiles:
//!
//! 1. [`Locked`]: the folio lock is held and the folio is not under
//!    writeback (e.g. handed out by [`super::writeback::Iter`]).
//!    [`Locked::candidates`] yields its buffers as [`Candidate`]s; every
//!    buffer that will be written is locked and marked `BH_Async_Write`
//!    now, before anything is submitted ([`CandidateLock::mark_if_dirty`]).
//! 2. [`Locked::start_writeback`] sets `PG_writeback` and returns a
//!    [`Writeback`] token, to be consumed by [`Writeback::end_now`] if no
//!    buffer was marked, or by [`Writeback::in_flight`], which hands the end
//!    of writeback over to the completions of the marked buffers.
//! 3. [`InFlight::next_buffer`] yields the marked buffers as
//!    [`Submittable`]s, and reads nothing of the folio after yielding the
//!    last one: once it is submitted, its completion may end writeback and
//!    the folio may be written back again, freed or truncated.  A
//!    `Submittable` goes into a write bio ([`super::write_bio::WriteBio`]).
//! 4. Completion ([`super::write_bio`]): under the first buffer's
//!    `b_uptodate_lock`, the bio's buffers lose their marks, and writeback
//!    ends only if no buffer of the folio is still marked, so exactly one
//!    completion ends it.
//!
//! Every state gives its buffers back when dropped instead of being
//! consumed: marks are cleared, the buffers and the folio are dirtied
//! again and the buffer locks released, and writeback, if it started, ends
//! once nothing of the folio is in flight.  A forgotten token therefore
//! costs a later writeback, never a lost write or a folio whose writeback
//! never ends.
//!
//! References handed out by a state borrow it, so nothing of a folio can be
//! reached through them once the state is consumed: the buffer of a
//! `Submittable` that went into a bio cannot be touched again.
//!
//! ```ignore
//! // compile_fail: E0505
//! use kernel::fs::folio::Locked;
//! fn f(l: Locked<'_>) {
//!     let folio = l.folio();
//!     l.start_writeback(false).end_now();
//!     let _ = folio.pos(); // ERROR
//! }
//! ```
//!
//! ```ignore
//! // compile_fail: E0505
//! use kernel::fs::folio::Submittable;
//! use kernel::fs::write_bio::{WriteBio, WriteCompletion};
//! fn f<C: WriteCompletion>(bio: &mut WriteBio<C>, buf: Submittable<'_>) {
//!     let bh = buf.head();
//!     let _ = bio.add(buf);
//!     let _ = bh.block_nr(); // ERROR
//! }
//! ```
//!
//! ```ignore
//! // compile_fail: E0505
//! use kernel::fs::folio::Locked;
//! fn f(l: Locked<'_>) {
//!     let Some(mut c) = l.candidates() else { return };
//!     let Some(first) = c.next() else { return };
//!     let lock = first.lock();
//!     drop(l); // ERROR
//!     lock.mark_if_dirty();
//! }
//! ```

use super::buffer::{BufferHead, State};
use crate::bindings;
use crate::types::{AlwaysRefCounted, Opaque};
use core::mem::ManuallyDrop;
use core::ptr::NonNull;

/// A `struct folio`.
///
/// # Invariants
///
/// References exist only while the folio is pinned: by a reference count,
/// by the folio lock together with the mapping's reference, or by
/// `PG_writeback` (which keeps the folio in its mapping until it ends).
#[repr(transparent)]
pub struct Folio(Opaque<bindings::folio>);

impl Folio {
    /// # Safety
    ///
    /// `folio` is valid and pinned (see the type invariants) for `'a`.
    pub unsafe fn from_raw<'a>(folio: *mut bindings::folio) -> &'a Self {
        // SAFETY: Transparent wrapper; validity per the safety requirements.
        unsafe { &*folio.cast() }
    }

    /// The C `struct folio`.
    pub fn as_raw(&self) -> *mut bindings::folio {
        self.0.get()
    }

    /// The folio's mapping (`folio->mapping`).
    pub(crate) fn mapping_raw(&self) -> *mut bindings::address_space {
        // SAFETY: The mapping of a pinned page-cache folio does not change
        // while it is locked or under writeback, the states we use it in.
        unsafe { (*self.as_raw()).__bindgen_anon_1.__bindgen_anon_1.mapping }
    }

    /// Byte offset of the folio in its file.
    pub fn pos(&self) -> i64 {
        // SAFETY: The index of a pinned page-cache folio does not change.
        unsafe { bindings::folio_pos(self.as_raw()) }
    }

    /// Size of the folio in bytes.
    pub fn size(&self) -> usize {
        // SAFETY: The order of a pinned folio does not change.
        unsafe { bindings::folio_size(self.as_raw()) }
    }

    /// Whether `PG_writeback` is set.
    pub fn test_writeback(&self) -> bool {
        // SAFETY: Reading a flag of a valid folio.
        unsafe { bindings::folio_test_writeback(self.as_raw()) }
    }

    /// The folio's buffers, if it has any.
    ///
    /// # Safety
    ///
    /// The buffer ring is stable for `'a`: the folio is locked, or under
    /// writeback with a buffer marked `BH_Async_Write` that the caller
    /// has not submitted (buffers are only attached or freed with the folio
    /// locked and not under writeback).
    unsafe fn ring<'a>(&'a self) -> Option<Buffers<'a>> {
        // SAFETY: Per the safety requirements.
        let first = NonNull::new(unsafe { bindings::folio_buffers(self.as_raw()) })?;
        Some(Buffers {
            first,
            next: Some(first),
            _p: core::marker::PhantomData,
        })
    }

    /// Takes the folio's first buffer's uptodate lock (irqs saved), the
    /// per-folio lock of buffer completion.  `None` if the folio has no
    /// buffers.
    ///
    /// # Safety
    ///
    /// The folio is under writeback and some of its `BH_Async_Write`
    /// buffers are not yet completed, and the caller is their completion or
    /// their owner (so the folio keeps its buffers until the lock is
    /// released).
    pub(crate) unsafe fn uptodate_lock(&self) -> Option<UptodateLock<'_>> {
        // SAFETY: Per the safety requirements, the ring is stable.
        let first = NonNull::new(unsafe { bindings::folio_buffers(self.as_raw()) })?;
        // SAFETY: `first` is a valid buffer head of the folio.
        let flags = unsafe { bindings::bh_uptodate_lock_irqsave(first.as_ptr()) };
        Some(UptodateLock {
            folio: self,
            first,
            flags,
        })
    }

    /// Gives back the buffers of this folio that `which` selects and that
    /// are marked `BH_Async_Write`: each is dirtied again, loses its mark
    /// and is unlocked, and the folio is dirtied again.  With `writeback`,
    /// the marks are cleared under the uptodate lock and writeback ends if
    /// no buffer of the folio is left in flight.  Returns whether writeback
    /// ended here.
    ///
    /// # Safety
    ///
    /// The selected marked buffers were marked by the caller and never
    /// submitted (the caller owns their locks).  Without `writeback`, the
    /// caller holds the folio lock and the folio is not under writeback;
    /// with it, the folio is under writeback and at least one buffer is
    /// selected and marked (so the folio and its ring stay until its mark
    /// is cleared).
    pub(crate) unsafe fn give_back(
        &self,
        which: impl Fn(usize, &BufferHead) -> bool,
        writeback: bool,
    ) -> bool {
        // SAFETY: Per the safety requirements, the ring is stable: the folio
        // is locked, or a selected buffer keeps writeback from ending.
        let Some(ring) = (unsafe { self.ring() }) else {
            return false;
        };
        let mut any = false;
        for (i, bh) in ring.enumerate() {
            if which(i, bh) && bh.is_async_write() {
                bh.set(State::Dirty);
                any = true;
            }
        }
        if !any {
            return false;
        }
        // The folio is pinned and in its mapping (locked, or kept under
        // writeback by the marks still set): dirty it again, so the buffers
        // just dirtied are written by a later writeback.
        // SAFETY: See above; `filemap_dirty_folio` takes the mapping's
        // locks itself, and we are in process context.
        unsafe { bindings::filemap_dirty_folio(self.mapping_raw(), self.as_raw()) };
        if writeback {
            // SAFETY: Under writeback with selected marked buffers of ours.
            let Some(lock) = (unsafe { self.uptodate_lock() }) else {
                return false;
            };
            for (i, bh) in lock.buffers().enumerate() {
                if which(i, bh) && bh.is_async_write() {
                    // SAFETY: Marked by the caller and never submitted: the
                    // caller owns its lock.
                    unsafe { lock.release_mark(bh) };
                }
            }
            lock.finish()
        } else {
            // SAFETY: The folio lock is held, so the ring is stable, and no
            // completion runs (no writeback).
            for (i, bh) in unsafe { self.ring() }.into_iter().flatten().enumerate() {
                if which(i, bh) && bh.is_async_write() {
                    bh.clear(State::AsyncWrite);
                    // SAFETY: Marked by the caller, never submitted: the
                    // caller owns its lock.
                    unsafe { bindings::unlock_buffer(bh.as_raw()) };
                }
            }
            false
        }
    }
}

// SAFETY: The folio refcount is managed by `folio_get`/`folio_put`, and a
// folio is freed only when it drops to zero.
unsafe impl AlwaysRefCounted for Folio {
    fn inc_ref(&self) {
        // SAFETY: We hold a reference, so taking another is valid.
        unsafe { bindings::folio_get(self.as_raw()) };
    }

    unsafe fn dec_ref(obj: NonNull<Self>) {
        // SAFETY: The caller owns the reference being dropped.
        unsafe { bindings::folio_put(obj.as_ptr().cast()) };
    }
}

/// Iterates over a folio's buffers in ring order (`b_this_page`), starting
/// with the first.
pub struct Buffers<'a> {
    first: NonNull<bindings::buffer_head>,
    next: Option<NonNull<bindings::buffer_head>>,
    _p: core::marker::PhantomData<&'a Folio>,
}

impl<'a> Iterator for Buffers<'a> {
    type Item = &'a BufferHead;

    fn next(&mut self) -> Option<&'a BufferHead> {
        let cur = self.next?;
        // SAFETY: The ring is stable while the folio is locked or under
        // writeback (buffers are only attached or freed with the folio
        // locked and not under writeback), which `'a` guarantees.
        let following = unsafe { (*cur.as_ptr()).b_this_page };
        self.next = NonNull::new(following).filter(|n| *n != self.first);
        // SAFETY: As above.
        Some(unsafe { BufferHead::from_raw(cur.as_ptr()) })
    }
}

/// A folio whose lock the holder owns, not under writeback; unlocks it
/// when dropped (first giving back any buffer marked through it whose
/// writeback never started, see [`Candidate`]).
///
/// # Invariants
///
/// The folio is locked by this holder, pinned by its mapping, and not
/// under writeback; every buffer of it marked `BH_Async_Write` was marked
/// through this holder and is not submitted.
pub struct Locked<'a> {
    folio: &'a Folio,
}

impl<'a> Locked<'a> {
    /// # Safety
    ///
    /// The caller holds the folio's lock and passes its ownership on; the
    /// folio is in the page cache and not under writeback (as
    /// `writeback_iter` and `->writepage` hand folios out), so none of its
    /// buffers is marked `BH_Async_Write`.
    pub unsafe fn assume_locked(folio: &'a Folio) -> Self {
        // INVARIANT: Per the safety requirements.
        Self { folio }
    }

    /// The folio, for as long as this lock is held.
    pub fn folio(&self) -> &Folio {
        self.folio
    }

    /// The folio's buffers, if it has any (read only: see
    /// [`Self::candidates`] for writing them).
    pub fn buffers(&self) -> Option<Buffers<'_>> {
        // SAFETY: The folio is locked (type invariant).
        unsafe { self.folio.ring() }
    }

    /// The folio's buffers as candidates for writeback, if it has any.
    pub fn candidates(&self) -> Option<Candidates<'_>> {
        Some(Candidates(self.buffers()?))
    }

    /// Before writing the folio back with the file's size `size`: zeroes
    /// the part of the folio at and beyond `size` (it reaches the disk with
    /// its block, and must read as zeroes if the file grows), and marks the
    /// buffers that lie wholly beyond `size` clean and up to date, as
    /// `__block_write_full_folio` does: their blocks are not written.
    pub fn clean_beyond_eof(&self, size: u64) {
        let pos = self.folio.pos() as u64;
        let fsize = self.folio.size();
        if pos + fsize as u64 <= size {
            return;
        }
        let from = size.saturating_sub(pos) as usize;
        // SAFETY: The folio is locked and `from..fsize` lies inside it.
        unsafe { bindings::folio_zero_segment(self.folio.as_raw(), from, fsize) };
        for bh in self.buffers().into_iter().flatten() {
            if bh.offset_in_folio() >= from {
                // Zeroes are valid contents: up to date, and nothing to
                // write.
                bh.clear(State::Dirty);
                bh.set(State::Uptodate);
            }
        }
    }

    /// Marks the folio dirty again for a later writeback
    /// (`folio_redirty_for_writepage`).
    pub fn redirty(&self, wbc: &mut super::writeback::WritebackControl) {
        // SAFETY: The folio is locked; `wbc` is the caller's control.
        unsafe { bindings::folio_redirty_for_writepage(wbc.as_raw(), self.folio.as_raw()) };
    }

    /// Sets `PG_writeback`.  `keep_write` keeps the `TOWRITE` tag, for a
    /// folio with dirty buffers left behind.  The folio lock passes to the
    /// returned token (and on to its [`InFlight`]), which releases it when
    /// dropped.
    pub fn start_writeback(self, keep_write: bool) -> Writeback<'a> {
        let folio = ManuallyDrop::new(self).folio;
        // SAFETY: The folio is locked and not under writeback (type
        // invariant), and this consumes the `Locked`, so writeback cannot
        // be started twice on one locking.
        unsafe { bindings::__folio_start_writeback(folio.as_raw(), keep_write) };
        // INVARIANT: The lock and the marks pass to the token.
        Writeback { folio }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // Buffers marked through this lock whose writeback never started
        // go back to being dirty.
        // SAFETY: Locked and not under writeback; every marked buffer was
        // marked through this holder and not submitted (type invariant).
        unsafe { self.folio.give_back(|_, _| true, false) };
        // SAFETY: We own the lock (type invariant).
        unsafe { bindings::folio_unlock(self.folio.as_raw()) };
    }
}

/// The buffers of a [`Locked`] folio, as candidates for writeback.
pub struct Candidates<'l>(Buffers<'l>);

impl<'l> Iterator for Candidates<'l> {
    type Item = Candidate<'l>;

    fn next(&mut self) -> Option<Candidate<'l>> {
        self.0.next().map(Candidate)
    }
}

/// A buffer of a [`Locked`] folio that is not under writeback.
pub struct Candidate<'l>(&'l BufferHead);

impl<'l> Candidate<'l> {
    /// The buffer (read only).
    pub fn head(&self) -> &BufferHead {
        self.0
    }

    /// Drops the buffer's dirty state without writing it (for a buffer
    /// that cannot be written, e.g. one with no block, after reporting it).
    pub fn clear_dirty(&self) {
        self.0.clear(State::Dirty);
    }

    /// Takes the buffer lock, sleeping if needed.  The caller must not hold
    /// an unsubmitted bio (see [`crate::block::bio`]).
    pub fn lock(&self) -> CandidateLock<'_> {
        // SAFETY: A valid buffer of a locked folio; sleeping is allowed
        // by the caller.
        unsafe { bindings::lock_buffer(self.0.as_raw()) };
        // INVARIANT: Locked just now, by us.
        CandidateLock(self.0)
    }

    /// Takes the buffer lock if it is free.
    pub fn try_lock(&self) -> Option<CandidateLock<'_>> {
        // SAFETY: A valid buffer.
        if unsafe { bindings::trylock_buffer(self.0.as_raw()) } != 0 {
            // INVARIANT: Taken for us.
            Some(CandidateLock(self.0))
        } else {
            None
        }
    }
}

/// The lock of a [`Candidate`] buffer, held; released when dropped unless
/// it passes to a write ([`Self::mark_if_dirty`]).
///
/// # Invariants
///
/// The holder owns the buffer's lock; the buffer's folio is locked by a
/// [`Locked`] that outlives this, and is not under writeback.
pub struct CandidateLock<'c>(&'c BufferHead);

impl CandidateLock<'_> {
    /// If the buffer is dirty: clears the dirty bit and marks the buffer
    /// `BH_Async_Write` (`mark_buffer_async_write`); the lock passes to the
    /// write, which [`InFlight`] hands out for submission, and its
    /// completion releases it.  Otherwise releases the lock.  Returns
    /// whether the buffer was marked.
    pub fn mark_if_dirty(self) -> bool {
        let bh = ManuallyDrop::new(self).0;
        if bh.test_and_clear(State::Dirty) {
            // SAFETY: A valid buffer whose lock we hold and hand over to
            // the write, of a folio locked by a `Locked` (type invariant),
            // which gives the mark back if writeback never starts.
            unsafe { bindings::mark_buffer_async_write(bh.as_raw()) };
            true
        } else {
            // SAFETY: We own the lock (type invariant).
            unsafe { bindings::unlock_buffer(bh.as_raw()) };
            false
        }
    }
}

impl Drop for CandidateLock<'_> {
    fn drop(&mut self) {
        // SAFETY: We own the lock (type invariant).
        unsafe { bindings::unlock_buffer(self.0.as_raw()) }
    }
}

/// Writeback of a folio has started: consume with [`Writeback::end_now`]
/// or [`Writeback::in_flight`].  Holds the folio lock.  Dropped, it gives
/// its marked buffers back and ends writeback.
///
/// # Invariants
///
/// The folio is locked by this holder and under writeback started by it;
/// its marked buffers were marked by this holder and none is submitted.
#[must_use = "folio writeback must be ended or handed over to I/O"]
pub struct Writeback<'a> {
    folio: &'a Folio,
}

impl<'a> Writeback<'a> {
    fn marked(&self) -> usize {
        // SAFETY: Locked (type invariant).
        let Some(ring) = (unsafe { self.folio.ring() }) else {
            return 0;
        };
        ring.filter(|bh| bh.is_async_write()).count()
    }

    /// Nothing of the folio is going to disk: end writeback at once (and
    /// unlock the folio).  Any buffer marked is given back first.
    pub fn end_now(self) {
        drop(self)
    }

    /// Hands the end of writeback over to the completions of the folio's
    /// `BH_Async_Write` buffers.  If none is marked, ends writeback now and
    /// returns `None`.
    pub fn in_flight(self) -> Option<InFlight<'a>> {
        let count = self.marked();
        if count == 0 {
            self.end_now();
            return None;
        }
        let folio = ManuallyDrop::new(self).folio;
        // SAFETY: The folio has buffers, since some are marked.
        let first = unsafe { NonNull::new_unchecked(bindings::folio_buffers(folio.as_raw())) };
        // INVARIANT: The lock and the marks pass on; nothing is yielded yet.
        Some(InFlight {
            remaining: count,
            next: Some(first),
            index: 0,
            folio,
        })
    }
}

impl Drop for Writeback<'_> {
    fn drop(&mut self) {
        // With a marked buffer, `give_back` ends writeback; without, we do.
        // SAFETY: The folio is locked and under writeback started by us;
        // the marks are ours and unsubmitted (type invariant), and there is
        // at least one.
        let ended = self.marked() > 0 && unsafe { self.folio.give_back(|_, _| true, true) };
        // SAFETY: If `give_back` did not end writeback, nothing is marked
        // any more (every mark was ours and it cleared them) and no buffer
        // was submitted: the writeback we started ends now, once.
        unsafe {
            if !ended {
                bindings::folio_end_writeback(self.folio.as_raw());
            }
            bindings::folio_unlock(self.folio.as_raw());
        }
    }
}

/// A buffer marked `BH_Async_Write` of a folio under writeback, not yet
/// submitted: the only kind of buffer a write bio takes
/// ([`super::write_bio::WriteBio::add`]), so that every folio a completing
/// bio covers is pinned by its writeback.  Dropped instead of added to a
/// bio, it is given back (dirty again, its mark cleared, writeback ended
/// if it was the folio's last buffer in flight).
///
/// Only [`InFlight`] makes one:
///
/// ```ignore
/// // compile_fail: E0423
/// use kernel::fs::{buffer::BufferHead, folio::Submittable};
/// fn f(bh: &BufferHead) {
///     let s = Submittable(bh); // ERROR
/// }
/// ```
///
/// # Invariants
///
/// The buffer is marked by the holder, not submitted, and its folio is
/// under writeback (which the mark keeps from ending).
pub struct Submittable<'a>(&'a BufferHead);

impl<'a> Submittable<'a> {
    /// The buffer, while it is not submitted.
    pub fn head(&self) -> &BufferHead {
        self.0
    }

    /// Passes the buffer on (to a bio that will complete it).
    pub(crate) fn into_head(self) -> &'a BufferHead {
        ManuallyDrop::new(self).0
    }
}

impl Drop for Submittable<'_> {
    fn drop(&mut self) {
        let me = self.0;
        // SAFETY: The folio is under writeback, and `me` is marked by us and
        // not submitted (type invariant).
        unsafe {
            let folio = Folio::from_raw(me.folio_raw());
            folio.give_back(|_, bh| core::ptr::eq(bh, me), true);
        }
    }
}

/// The marked buffers of a folio under writeback, yielded for submission.
/// Holds the folio lock and releases it when dropped, after the buffers
/// went to their bios (the lock keeps the folio in its mapping, so
/// unlocking it is safe even after its writeback ended).  Dropped before
/// every buffer was yielded, it gives the rest back.
///
/// # Invariants
///
/// The folio is locked by this holder; `remaining` marked buffers from the
/// `index`-th (ring order, `next`) on are ours and not yet yielded.
pub struct InFlight<'a> {
    remaining: usize,
    next: Option<NonNull<bindings::buffer_head>>,
    index: usize,
    folio: &'a Folio,
}

impl<'a> InFlight<'a> {
    /// Yields the next marked buffer.  After yielding the last one it reads
    /// nothing more: the caller may submit it, and from then on the folio
    /// belongs to its completion.
    pub fn next_buffer(&mut self) -> Option<Submittable<'a>> {
        while self.remaining > 0 {
            let cur = self.next?;
            // SAFETY: Not all marked buffers were yielded yet, so at least
            // one is not submitted and writeback cannot end: the ring is
            // stable.  We read the link before yielding `cur`.
            let bh = unsafe { BufferHead::from_raw(cur.as_ptr()) };
            // SAFETY: As above.
            let following = NonNull::new(unsafe { (*cur.as_ptr()).b_this_page });
            self.index += 1;
            if bh.is_async_write() {
                self.remaining -= 1;
                self.next = if self.remaining > 0 { following } else { None };
                // INVARIANT: Marked by the holder of the `Writeback` this
                // came from, not submitted; the folio is under writeback.
                return Some(Submittable(bh));
            }
            self.next = following;
        }
        None
    }

    /// Gives up on `from` (a buffer yielded but not submitted) and on every
    /// marked buffer not yet yielded: their marks are cleared, they are
    /// dirtied again and unlocked, and the folio is redirtied for a later
    /// writeback.  Writeback ends if nothing is left in flight (no buffer
    /// was submitted, or all submitted ones have completed).
    pub fn abandon(self, from: Submittable<'_>, wbc: &mut super::writeback::WritebackControl) {
        // SAFETY: The folio is locked by us; `wbc` is the caller's control.
        unsafe { bindings::folio_redirty_for_writepage(wbc.as_raw(), self.folio.as_raw()) };
        drop(from);
        drop(self);
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.remaining > 0 {
            let from = self.index;
            // SAFETY: The folio is under writeback and the buffers from
            // `index` on that are marked are ours, not submitted (type
            // invariant); there is at least one.
            unsafe { self.folio.give_back(|i, _| i >= from, true) };
        }
        // SAFETY: We own the folio lock (type invariant); it keeps the
        // folio in its mapping even if writeback ended.
        unsafe { bindings::folio_unlock(self.folio.as_raw()) };
    }
}

/// The first buffer's `b_uptodate_lock` of a folio under writeback, held by
/// a completion (irqs saved).
pub(crate) struct UptodateLock<'a> {
    folio: &'a Folio,
    first: NonNull<bindings::buffer_head>,
    flags: usize,
}

impl<'a> UptodateLock<'a> {
    /// The folio's buffers, in ring order.
    pub(crate) fn buffers(&self) -> Buffers<'_> {
        Buffers {
            first: self.first,
            next: Some(self.first),
            _p: core::marker::PhantomData,
        }
    }

    /// Completes the write of `bh`: records an error, clears
    /// `BH_Async_Write` and unlocks the buffer.
    ///
    /// # Safety
    ///
    /// `bh` is a buffer of this folio marked `BH_Async_Write`, submitted in
    /// the bio whose completion this is.
    pub(crate) unsafe fn complete_write(&self, bh: &BufferHead, ok: bool) {
        if ok {
            bh.set(State::Uptodate);
        } else {
            // SAFETY: `bh` is a buffer of a folio under writeback.
            unsafe { bindings::mark_buffer_write_io_error(bh.as_raw()) };
            bh.clear(State::Uptodate);
        }
        // SAFETY: Per the safety requirements, the lock is the write's.
        unsafe { self.release_mark(bh) };
    }

    /// Clears `BH_Async_Write` and unlocks the buffer.
    ///
    /// # Safety
    ///
    /// `bh` is a buffer of this folio marked `BH_Async_Write` whose lock
    /// the caller owns (its completion, or its owner if never submitted).
    unsafe fn release_mark(&self, bh: &BufferHead) {
        bh.clear(State::AsyncWrite);
        // SAFETY: Per the safety requirements.
        unsafe { bindings::unlock_buffer(bh.as_raw()) };
    }

    /// Drops the lock and ends the folio's writeback if no buffer is still
    /// marked `BH_Async_Write`.  Returns whether it ended it; if it did, the
    /// folio must not be touched any more.
    pub(crate) fn finish(self) -> bool {
        let busy = self.buffers().any(|bh| bh.is_async_write());
        let folio = self.folio;
        drop(self);
        if !busy {
            // SAFETY: Under the uptodate lock we saw no buffer in flight, so
            // every completion has run its part and exactly one of them (the
            // last to take the lock) sees this: writeback ends once.
            unsafe { bindings::folio_end_writeback(folio.as_raw()) };
        }
        !busy
    }
}

impl Drop for UptodateLock<'_> {
    fn drop(&mut self) {
        // SAFETY: Taken in `Folio::uptodate_lock` with these flags.
        unsafe { bindings::bh_uptodate_unlock_irqrestore(self.first.as_ptr(), self.flags) };
    }
}
