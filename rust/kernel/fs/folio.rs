// SPDX-License-Identifier: GPL-2.0

//! Folios of the page cache, and the writeback state machine of one folio.
//!
//! C headers: [`include/linux/pagemap.h`](srctree/include/linux/pagemap.h),
//! [`include/linux/page-flags.h`](srctree/include/linux/page-flags.h).
//!
//! Writing a folio back through its buffers goes through these states, and
//! the types make the order the only one that compiles:
//!
//! 1. [`Locked`]: the folio lock is held (e.g. handed out by
//!    [`super::writeback::Iter`]).  Every buffer that will be written is
//!    marked `BH_Async_Write` now, before anything is submitted
//!    ([`super::buffer::BufferHead::mark_async_write`]).
//! 2. [`Locked::start_writeback`] sets `PG_writeback` and returns a
//!    [`Writeback`] token, which must be consumed exactly once: by
//!    [`Writeback::end_now`] if no buffer was marked, or by
//!    [`Writeback::in_flight`], which hands the end of writeback over to
//!    the completions of the marked buffers.
//! 3. [`InFlight::buffers`] yields the marked buffers for submission, and
//!    reads nothing of the folio after yielding the last one: once it is
//!    submitted, its completion may end writeback and the folio may be
//!    written back again, freed or truncated.
//! 4. Completion ([`UptodateLock`]): under the first buffer's
//!    `b_uptodate_lock`, the bio's buffers lose their marks;
//!    [`UptodateLock::finish`] ends writeback only if no buffer of the folio
//!    is still marked, so exactly one completion ends it.

use super::buffer::{BufferHead, State};
use crate::bindings;
use crate::types::{AlwaysRefCounted, Opaque};
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

    /// Takes the folio's first buffer's uptodate lock (irqs saved), the
    /// per-folio lock of buffer completion.  `None` if the folio has no
    /// buffers.
    ///
    /// # Safety
    ///
    /// The folio is under writeback (so its buffers cannot be freed) and the
    /// caller is the completion of some of its `BH_Async_Write` buffers.
    pub unsafe fn uptodate_lock(&self) -> Option<UptodateLock<'_>> {
        // SAFETY: A folio under writeback keeps its buffers.
        let first = NonNull::new(unsafe { bindings::folio_buffers(self.as_raw()) })?;
        // SAFETY: `first` is a valid buffer head of the folio.
        let flags = unsafe { bindings::bh_uptodate_lock_irqsave(first.as_ptr()) };
        Some(UptodateLock { folio: self, first, flags })
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

/// A folio whose lock the holder owns; unlocks it when dropped.
///
/// # Invariants
///
/// The folio is locked by this holder and pinned by its mapping.
pub struct Locked<'a> {
    folio: &'a Folio,
}

impl<'a> Locked<'a> {
    /// # Safety
    ///
    /// The caller holds the folio's lock and passes its ownership on.
    pub unsafe fn assume_locked(folio: &'a Folio) -> Self {
        Self { folio }
    }

    /// The folio.
    pub fn folio(&self) -> &'a Folio {
        self.folio
    }

    /// The folio's buffers, if it has any.
    pub fn buffers(&self) -> Option<Buffers<'_>> {
        // SAFETY: The folio is locked (type invariant).
        let first = NonNull::new(unsafe { bindings::folio_buffers(self.folio.as_raw()) })?;
        Some(Buffers { first, next: Some(first), _p: core::marker::PhantomData })
    }

    /// Zeroes bytes `from..to` of the folio (the part beyond EOF, before
    /// it is written).
    pub fn zero_segment(&self, from: usize, to: usize) {
        let to = to.min(self.folio.size());
        if from < to {
            // SAFETY: The folio is locked and the range is inside it.
            unsafe { bindings::folio_zero_segment(self.folio.as_raw(), from, to) };
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
        // SAFETY: The folio is locked and not under writeback: the page cache
        // hands out a folio for writeback only after waiting for (or
        // skipping) an earlier one, and this consumes the only `Locked` of
        // it, so writeback cannot be started twice on one locking.
        unsafe { bindings::__folio_start_writeback(self.folio.as_raw(), keep_write) };
        Writeback { lock: self }
    }
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        // SAFETY: We own the lock (type invariant).
        unsafe { bindings::folio_unlock(self.folio.as_raw()) };
    }
}

/// Writeback of a folio has started: consume with exactly one of
/// [`Writeback::end_now`] and [`Writeback::in_flight`].  Holds the folio
/// lock.
#[must_use = "folio writeback must be ended or handed over to I/O"]
pub struct Writeback<'a> {
    lock: Locked<'a>,
}

impl<'a> Writeback<'a> {
    fn marked(&self) -> usize {
        let Some(first) = NonNull::new(buffers_under_writeback(self.lock.folio)) else {
            return 0;
        };
        Buffers { first, next: Some(first), _p: core::marker::PhantomData }
            .filter(|bh| bh.test(State::AsyncWrite))
            .count()
    }

    /// Nothing of the folio is going to disk: end writeback at once (and
    /// unlock the folio).
    pub fn end_now(self) {
        // SAFETY: Started by `start_writeback` and ended only here (`self`
        // is consumed); no buffer was handed to I/O (no `InFlight` exists).
        unsafe { bindings::folio_end_writeback(self.lock.folio.as_raw()) };
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
        // SAFETY: The folio has buffers, since some are marked.
        let first = unsafe { NonNull::new_unchecked(buffers_under_writeback(self.lock.folio)) };
        Some(InFlight { remaining: count, next: Some(first), lock: self.lock })
    }
}

fn buffers_under_writeback(folio: &Folio) -> *mut bindings::buffer_head {
    // SAFETY: A folio under writeback started by us, still locked by the
    // `Locked` that `Writeback` holds, keeps its buffers.
    unsafe { bindings::folio_buffers(folio.as_raw()) }
}

/// A buffer marked `BH_Async_Write` of a folio under writeback, not yet
/// submitted: the only kind of buffer a write bio takes
/// ([`crate::block::bio::NewBio::add`]), so that every folio a completing
/// bio covers is pinned by its writeback.  Add it to a bio or give it to
/// [`InFlight::abandon`]: dropped, it would never complete and the folio's
/// writeback would never end.
#[must_use = "a marked buffer must be submitted or abandoned"]
pub struct Submittable<'a>(&'a BufferHead);

impl<'a> Submittable<'a> {
    /// The buffer.
    pub fn head(&self) -> &'a BufferHead {
        self.0
    }
}

/// The marked buffers of a folio under writeback, yielded for submission.
/// Holds the folio lock and releases it when dropped, after the buffers
/// went to their bios (the lock keeps the folio in its mapping, so
/// unlocking it is safe even after its writeback ended).
pub struct InFlight<'a> {
    remaining: usize,
    next: Option<NonNull<bindings::buffer_head>>,
    lock: Locked<'a>,
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
            if bh.test(State::AsyncWrite) {
                self.remaining -= 1;
                self.next = if self.remaining > 0 {
                    // SAFETY: As above; `cur` is not yet submitted.
                    NonNull::new(unsafe { (*cur.as_ptr()).b_this_page })
                } else {
                    None
                };
                return Some(Submittable(bh));
            }
            // SAFETY: As above.
            self.next = NonNull::new(unsafe { (*cur.as_ptr()).b_this_page });
        }
        None
    }
}

impl InFlight<'_> {
    /// Gives up on `from` (a buffer yielded but not submitted) and on every
    /// marked buffer after it in the ring: their marks are cleared, they are
    /// dirtied again and unlocked, and the folio is redirtied for a later
    /// writeback.  Then, under the uptodate lock, ends writeback if nothing
    /// is left in flight (no buffer was submitted, or all submitted ones
    /// have completed).
    pub fn abandon(self, from: Submittable<'_>, wbc: &mut super::writeback::WritebackControl) {
        self.lock.redirty(wbc);
        let from = from.0;
        // SAFETY: `from` is marked and unsubmitted, so writeback cannot end
        // and the folio keeps its buffers while we hold the lock.
        let Some(lock) = (unsafe { Folio::from_raw(from.folio_raw()).uptodate_lock() }) else {
            return;
        };
        let mut after = false;
        for bh in lock.buffers() {
            after |= core::ptr::eq(bh, from);
            if after && bh.test(State::AsyncWrite) {
                bh.clear(State::AsyncWrite);
                bh.set(State::Dirty);
                // SAFETY: Locked when it was marked for async write, and
                // never submitted, so this holder still owns the lock.
                unsafe { bindings::unlock_buffer(bh.as_raw()) };
            }
        }
        lock.finish();
    }
}

/// The first buffer's `b_uptodate_lock` of a folio under writeback, held by
/// a completion (irqs saved).
pub struct UptodateLock<'a> {
    folio: &'a Folio,
    first: NonNull<bindings::buffer_head>,
    flags: usize,
}

impl<'a> UptodateLock<'a> {
    /// The folio's buffers, in ring order.
    pub fn buffers(&self) -> Buffers<'_> {
        Buffers { first: self.first, next: Some(self.first), _p: core::marker::PhantomData }
    }

    /// Completes the write of `bh` (one of this folio's buffers covered by
    /// the completing bio): records an error, clears `BH_Async_Write` and
    /// unlocks the buffer.
    pub fn complete_write(&self, bh: &BufferHead, ok: bool) {
        if ok {
            bh.set(State::Uptodate);
        } else {
            // SAFETY: `bh` is a buffer of a folio under writeback.
            unsafe { bindings::mark_buffer_write_io_error(bh.as_raw()) };
            bh.clear(State::Uptodate);
        }
        bh.clear(State::AsyncWrite);
        // SAFETY: An async-write buffer is locked by its submitter until
        // its completion, which this is.
        unsafe { bindings::unlock_buffer(bh.as_raw()) };
    }

    /// Drops the lock and ends the folio's writeback if no buffer is still
    /// marked `BH_Async_Write`.  Returns whether it ended it; if it did, the
    /// folio must not be touched any more.
    pub fn finish(self) -> bool {
        let busy = self.buffers().any(|bh| bh.test(State::AsyncWrite));
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
