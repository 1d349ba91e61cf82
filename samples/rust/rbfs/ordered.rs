// SPDX-License-Identifier: GPL-2.0

//! Ordered data.  A data block allocated for a regular file (or a long
//! symlink) does not go into the map at once: it waits in the inode's
//! pending runs until its data is on the disk, and only then is its
//! pointer written into the inode or its indirect block (`commit`).  So
//! no pointer, in whatever metadata block reaches the disk first, ever
//! points at a block whose old contents are still there: after a crash a
//! block not yet published reads as a hole, never as stale data.  Lookups
//! (`bmap`) see the pending runs first.  A new indirect block is written to
//! the disk (all holes) before it is linked in, for the same reason.
//! Directories keep their blocks in the buffer cache and are mapped at
//! once.

use crate::bmap::{check_block, set_run};
use crate::inode::MapState;
use crate::sb::Rbfs;
use crate::truncate::Run;
use kernel::fs::{address_space, inode::Inode};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation};

/// A run of data blocks allocated for a file whose pointers are not
/// published yet: file blocks `index..index + len` at device blocks
/// `block..block + len`, allocated in commit epoch `epoch`.  Never empty.
#[derive(Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) index: u64,
    pub(crate) block: u32,
    pub(crate) len: u32,
    pub(crate) epoch: u64,
}

impl Pending {
    /// The file block after the run.
    pub(crate) fn end(&self) -> u64 {
        self.index + u64::from(self.len)
    }
}

/// The pending runs of an inode, keyed by their first file block (always
/// their `index`).  A node per run, not one array: no file shape, however
/// fragmented its runs, needs a large contiguous allocation, and finding,
/// adding or removing a run takes logarithmic time.
pub(crate) type PendingRuns = RBTree<u64, Pending>;

/// The memory of one tree node, for a run to come.
pub(crate) type PendingNode = RBTreeNodeReservation<u64, Pending>;

/// The run that starts last at or before file block `index`: the one that
/// holds it, if any does, else the one before it.  (The tree's cursors need
/// `&mut` even to look.)
pub(crate) fn pending_floor(pending: &mut PendingRuns, index: u64) -> Option<Pending> {
    // The tree finds the first run starting at or after `index`; unless
    // that run starts at `index` itself, the one wanted is just before it.
    match pending.cursor_lower_bound(&index) {
        Some(c) if *c.current().0 == index => Some(*c.current().1),
        Some(c) => c.peek_prev().map(|(_, r)| *r),
        None => pending.cursor_back().map(|c| *c.current().1),
    }
}

/// The first run that starts at or after file block `index`.
pub(crate) fn pending_from(pending: &mut PendingRuns, index: u64) -> Option<Pending> {
    pending.cursor_lower_bound(&index).map(|c| *c.current().1)
}

/// The pending block for file block `index` and how many of the next
/// blocks, at most `max`, follow it in its run.
pub(crate) fn pending_at(st: &mut MapState, index: u64, max: u64) -> Option<(u32, u64)> {
    let r = pending_floor(&mut st.pending, index).filter(|r| r.end() > index)?;
    let off = index - r.index;
    Some((
        r.block.wrapping_add(off as u32),
        (u64::from(r.len) - off).min(max).max(1),
    ))
}

/// Records data block `block` as pending for file block `index` (which is
/// neither mapped nor pending): it extends the run before it if both
/// follow on, else starts a run in the node `map_alloc` set aside.
pub(crate) fn add_pending(st: &mut MapState, index: u64, block: u32) -> Result {
    let epoch = st.epoch;
    if let Some(prev) = pending_floor(&mut st.pending, index) {
        if prev.end() > index {
            return Err(EINVAL);
        }
        if prev.len < u32::MAX
            && prev.epoch == epoch
            && prev.end() == index
            && prev.block.wrapping_add(prev.len) == block
        {
            let p = st.pending.get_mut(&prev.index).ok_or(EINVAL)?;
            p.len += 1;
            st.pending_blocks += 1;
            return Ok(());
        }
    }
    let node = st.spare.take().ok_or(ENOMEM)?;
    st.pending.insert(node.into_node(
        index,
        Pending {
            index,
            block,
            len: 1,
            epoch,
        },
    ));
    st.pending_blocks += 1;
    Ok(())
}

/// Keeps the memory of a run just removed for the next new run, so that a
/// writer whose runs are published as it goes rarely allocates.
fn recycle(st: &mut MapState, node: RBTreeNode<u64, Pending>) {
    if st.spare.is_none() {
        st.spare = Some(node.into_reservation());
    }
}

/// Takes file blocks `from..` of run `r` out of the pending runs (the run
/// goes if none of it stays) and hands their device blocks to `run` to be
/// freed.  Out of the runs first: should freeing fail part-way, the rest
/// is leaked (`fsck.rbfs` finds it), never freed twice.
pub(crate) fn drop_pending(
    inode: &Inode<Rbfs>,
    st: &mut MapState,
    r: Pending,
    from: u64,
    run: &mut Run,
) -> Result {
    let stay = (from - r.index) as u32;
    if stay == 0 {
        if let Some(node) = st.pending.remove_node(&r.index) {
            recycle(st, node);
        }
    } else if let Some(p) = st.pending.get_mut(&r.index) {
        p.len = stay;
    }
    st.pending_blocks -= u64::from(r.len - stay);
    for k in stay..r.len {
        let b = r.block.wrapping_add(k);
        check_block(inode, b)?;
        run.add(inode, b)?;
    }
    Ok(())
}

/// Whether any pending block lies in file blocks `from..to`.
pub(crate) fn pending_within(pending: &mut PendingRuns, from: u64, to: u64) -> bool {
    // Runs are sorted and never overlap: of those that start before `to`,
    // the last one ends last.
    to > 0 && pending_floor(pending, to - 1).is_some_and(|r| r.end() > from)
}

/// How far a commit may go to publish pending blocks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Commit {
    /// Shut the writers out (waiting for them), write and wait for the data
    /// of everything allocated so far, publish it all: `fsync`.
    Wait,
    /// The same if the writers can be shut out without waiting, else
    /// `EAGAIN`: integrity writeback (`sync(2)`, unmount).
    Try,
    /// Publish only the runs whose data has reached the disk already; wait
    /// for nothing: background writeback, which comes back for the rest.
    Ready,
}

/// Commits `inode`'s pending blocks: their data is written and waited for
/// (or, for [`Commit::Ready`], found written), then their pointers go into
/// the map (the inode's direct pointers, or their indirect blocks, which
/// are dirtied and associated with the inode for `fsync`).  Returns whether
/// every pending block that existed when it started is published now.
///
/// "Allocated so far" is made exact by shutting the writers out for a
/// moment (`address_space::exclude_writers`): every block counted then has
/// its folio dirty already, so the write covers it.  The ready check needs
/// no such moment: a block is allocated under its folio's lock and the
/// folio is dirty before that lock is released, so a run whose folios are
/// neither locked, dirty nor under writeback has its data on the disk.
pub(crate) fn commit(inode: &Inode<Rbfs>, how: Commit) -> Result<bool> {
    if crate::inode::is_dir(inode) || inode.data().lock_map().pending_blocks == 0 {
        return Ok(true);
    }
    let log = inode.super_block().data().block_log();
    if how == Commit::Ready {
        let mut st = inode.data().lock_map();
        // Allocations from now on start new runs: these can become ready.
        st.epoch += 1;
        let (_, all) = publish_where(inode, &mut st, |r| {
            !address_space::range_in_flight(inode, r.index << log, (r.end() << log) - 1)
        })?;
        return Ok(all);
    }
    let snap = address_space::exclude_writers(inode, how == Commit::Wait, || {
        let mut st = inode.data().lock_map();
        // Runs never overlap: the first starts lowest, the last ends highest.
        let start = st.pending.cursor_front()?.current().1.index;
        let end = st.pending.cursor_back()?.current().1.end();
        let epoch = st.epoch;
        st.epoch += 1;
        Some((epoch, start, end))
    });
    let (epoch, start, end) = match snap {
        None => return Err(EAGAIN),
        Some(None) => return Ok(true),
        Some(Some(s)) => s,
    };
    address_space::write_and_wait(inode, start << log, (end << log) - 1)?;
    let mut st = inode.data().lock_map();
    publish_where(inode, &mut st, |r| r.epoch <= epoch).map(|_| true)
}

/// Publishes every pending run, whatever its epoch, without writing any
/// data: for an inode whose page cache is known to be on the disk.
pub(crate) fn publish_all(inode: &Inode<Rbfs>) -> Result<bool> {
    let mut st = inode.data().lock_map();
    publish_where(inode, &mut st, |_| true).map(|(any, _)| any)
}

/// Puts the pointers of the pending runs that `pick` chooses into the map.
/// Returns whether any was chosen, and whether all were.  A run that fails
/// part-way keeps its unpublished rest pending.
fn publish_where(
    inode: &Inode<Rbfs>,
    st: &mut MapState,
    mut pick: impl FnMut(&Pending) -> bool,
) -> Result<(bool, bool)> {
    let (mut any, mut all) = (false, true);
    // Runs are visited by key, each looked up after the one before it ends:
    // publishing removes them as it goes.
    let mut from = 0;
    while let Some(r) = pending_from(&mut st.pending, from) {
        from = r.end();
        if !pick(&r) {
            all = false;
            continue;
        }
        any = true;
        publish_run(inode, st, r)?;
    }
    Ok((any, all))
}

/// Puts the pointers of pending run `r` into the map and marks the inode
/// dirty; what a failure leaves unpublished stays pending, as a run that
/// now starts further on.
fn publish_run(inode: &Inode<Rbfs>, st: &mut MapState, r: Pending) -> Result {
    let (done, res) = set_run(inode, st, r.index, r.block, r.len);
    if done == 0 {
        return res;
    }
    st.pending_blocks -= u64::from(done);
    inode.mark_dirty();
    if let Some(node) = st.pending.remove_node(&r.index) {
        if done == r.len {
            recycle(st, node);
        } else {
            // Its key changes: the same node goes back in under the new one.
            let rest = Pending {
                index: r.index + u64::from(done),
                block: r.block.wrapping_add(done),
                len: r.len - done,
                epoch: r.epoch,
            };
            st.pending
                .insert(node.into_reservation().into_node(rest.index, rest));
        }
    }
    res
}
