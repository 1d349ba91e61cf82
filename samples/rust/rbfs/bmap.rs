// SPDX-License-Identifier: GPL-2.0

//! The block mapper: file block index to device block, through the
//! inode's direct pointers and up to four levels of indirect blocks;
//! allocation of blocks for writes, and freeing them on truncation.
//!
//! The map of an inode (its pointers, block count and allocation hint) is
//! behind the inode's map mutex.  Indirect blocks are read and changed
//! through the buffer cache under their buffer locks, and associated with
//! the inode so that `fsync` writes them.  Each is checked (checksum and
//! every pointer) once after it is read from the disk, and the buffer
//! remembers that (`Checked`); a change updates the checksum for the
//! changed pointer alone.
//!
//! Ordered data.  A data block allocated for a regular file (or a long
//! symlink) does not go into the map at once: it waits in the inode's
//! pending runs until its data is on the disk, and only then is its
//! pointer written into the inode or its indirect block (`commit`).  So
//! no pointer, in whatever metadata block reaches the disk first, ever
//! points at a block whose old contents are still there: after a crash a
//! block not yet published reads as a hole, never as stale data.  Lookups
//! see the pending runs first.  A new indirect block is written to the
//! disk (all holes) before it is linked in, for the same reason.
//! Directories keep their blocks in the buffer cache and are mapped at
//! once, as before.

use crate::alloc;
use crate::format::{self, IndirectBlock, N_DIRECT, N_LEVELS};
use crate::inode::{MapGuard, MapState};
use crate::sb::{corrupt, Rbfs};
use crate::write;
use kernel::alloc::KVec;
use kernel::fs::buffer::Buffer;
use kernel::fs::folio::Locked;
use kernel::fs::writeback::{Iter, WritebackControl};
use kernel::fs::{address_space, inode, inode::INode, SECTOR_SIZE};
use kernel::prelude::*;
use kernel::rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation};

/// Page-cache operations of regular files and long symlinks.
pub(crate) static AOPS: address_space::Ops<Rbfs> = address_space::Ops::read_write::<Mapper>();

/// File operations of regular files.
#[cfg(not(rbfs_mutant_early_sync_completion))]
pub(crate) static REG_FOPS: kernel::fs::file::Ops<Rbfs> =
    kernel::fs::file::Ops::read_write_regular::<Mapper>();
#[cfg(rbfs_mutant_early_sync_completion)]
pub(crate) use crate::mutants::REG_FOPS;

/// Inode operations of regular files.
pub(crate) static REG_IOPS: inode::Ops<Rbfs> = inode::Ops::new::<RegOps>();

pub(crate) struct RegOps;

#[vtable]
impl inode::Operations for RegOps {
    type FileSystem = Rbfs;

    /// chmod, chown, utimes and truncate (with partial-block zeroing and
    /// block freeing).
    fn setattr(inode: &INode<Rbfs>, attr: &inode::Attr) -> Result {
        if let Some(size) = attr.size() {
            set_size(inode, size)?;
        }
        attr.copy_to(inode);
        Ok(())
    }
}

/// Truncates or extends a regular file to `size`; a change of size updates
/// the mtime and ctime, as `ext2_setsize` does: truncate(2) comes without
/// `ATTR_MTIME` and `ATTR_CTIME` (ftruncate(2) and `O_TRUNC` bring them).
/// Times given with the request are copied after this, and win.
fn set_size(inode: &INode<Rbfs>, size: u64) -> Result {
    let old = inode.size();
    if size == old {
        return Ok(());
    }
    let log = inode.super_block().data().block_log();
    if size < old {
        // The block that holds the new end stays: zero its tail, so that
        // it reads as zeroes if the file grows again.
        address_space::zero_partial_block::<Mapper>(inode, size)?;
    }
    let r = address_space::truncate(inode, size, || {
        if size < old {
            let keep = (size + (1 << log) - 1) >> log;
            truncate_blocks(inode, keep)
        } else {
            Ok(())
        }
    });
    // The size has changed even if freeing the blocks failed.
    inode.touch_mtime_ctime();
    r
}

pub(crate) struct Mapper;

#[vtable]
impl address_space::Operations for Mapper {
    type FileSystem = Rbfs;

    fn map_block(inode: &INode<Rbfs>, index: u64, max: u64) -> Result<Option<(u64, u64)>> {
        map_run(inode, index, max).map(|r| r.map(|(b, n)| (u64::from(b), n)))
    }

    fn map_block_for_write(inode: &INode<Rbfs>, index: u64) -> Result<(u64, bool)> {
        map_alloc(inode, index).map(|(b, new)| (u64::from(b), new))
    }

    fn write_failed(inode: &INode<Rbfs>) -> Result {
        let log = inode.super_block().data().block_log();
        truncate_blocks(inode, (inode.size() + (1 << log) - 1) >> log)
    }

    fn writepages(inode: &INode<Rbfs>, iter: &mut Iter<'_>) -> Result {
        write::writepages(inode, iter)
    }

    fn writepage(inode: &INode<Rbfs>, folio: Locked<'_>, wbc: &mut WritebackControl) -> Result {
        write::writepage(inode, folio, wbc)
    }

    /// `fsync`'s metadata step: publish the blocks whose data is now on the
    /// disk, write the indirect blocks that changed, then the inode if the
    /// disk's copy is not what the sync needs.
    fn sync_metadata(inode: &INode<Rbfs>, datasync: bool) -> Result {
        commit(inode, Commit::Wait)?;
        address_space::sync_buffers(inode)?;
        crate::inode::sync_if_changed(inode, datasync)
    }
}

/// A run of data blocks allocated for a file whose pointers are not
/// published yet: file blocks `index..index + len` at device blocks
/// `block..block + len`, allocated in commit epoch `epoch`.  Never empty.
#[derive(Clone, Copy)]
pub(crate) struct Pending {
    index: u64,
    block: u32,
    len: u32,
    epoch: u64,
}

impl Pending {
    /// The file block after the run.
    fn end(&self) -> u64 {
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
fn pending_floor(pending: &mut PendingRuns, index: u64) -> Option<Pending> {
    // The tree finds the first run starting at or after `index`; unless
    // that run starts at `index` itself, the one wanted is just before it.
    match pending.cursor_lower_bound(&index) {
        Some(c) if *c.current().0 == index => Some(*c.current().1),
        Some(c) => c.peek_prev().map(|(_, r)| *r),
        None => pending.cursor_back().map(|c| *c.current().1),
    }
}

/// The first run that starts at or after file block `index`.
fn pending_from(pending: &mut PendingRuns, index: u64) -> Option<Pending> {
    pending.cursor_lower_bound(&index).map(|c| *c.current().1)
}

/// The pending block for file block `index` and how many of the next
/// blocks, at most `max`, follow it in its run.
fn pending_at(st: &mut MapState, index: u64, max: u64) -> Option<(u32, u64)> {
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
fn add_pending(st: &mut MapState, index: u64, block: u32) -> Result {
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
fn drop_pending(
    inode: &INode<Rbfs>,
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
fn pending_within(pending: &mut PendingRuns, from: u64, to: u64) -> bool {
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
pub(crate) fn commit(inode: &INode<Rbfs>, how: Commit) -> Result<bool> {
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
pub(crate) fn publish_all(inode: &INode<Rbfs>) -> Result<bool> {
    let mut st = inode.data().lock_map();
    publish_where(inode, &mut st, |_| true).map(|(any, _)| any)
}

/// Puts the pointers of the pending runs that `pick` chooses into the map.
/// Returns whether any was chosen, and whether all were.  A run that fails
/// part-way keeps its unpublished rest pending.
fn publish_where(
    inode: &INode<Rbfs>,
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
fn publish_run(inode: &INode<Rbfs>, st: &mut MapState, r: Pending) -> Result {
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

/// Writes the pointers of file blocks `index..index + len` (device blocks
/// from `block` on) into the map, one indirect block at a time.  Returns
/// how many were written, and the error that stopped it, if any.
fn set_run(
    inode: &INode<Rbfs>,
    st: &mut MapState,
    index: u64,
    block: u32,
    len: u32,
) -> (u32, Result) {
    let log = inode.super_block().data().block_log();
    let mut done = 0u32;
    while done < len {
        let idx = index + u64::from(done);
        let b = block.wrapping_add(done);
        let Some(path) = format::block_path(log, idx) else {
            return (done, Err(EFBIG));
        };
        if path.depth == 0 {
            st.ptrs[path.slot] = b;
            done += 1;
            continue;
        }
        let r = (|| -> Result<u32> {
            // The indirect blocks on the path were allocated with the data
            // block, and truncation keeps those with pending blocks below.
            let mut ptr = st.ptrs[path.slot];
            for level in 0..path.depth - 1 {
                if ptr == 0 {
                    break;
                }
                ptr = read_ptr(inode, ptr, path.idx[level])?;
            }
            if ptr == 0 {
                pr_err!(
                    "{}: inode {}: no indirect block for pending block {}\n",
                    inode.super_block().device_name(),
                    inode.ino(),
                    idx
                );
                return Err(EIO);
            }
            let first = path.idx[path.depth - 1] as usize;
            let buf = read_indirect(inode, ptr)?;
            let mut data = buf.lock();
            let room = indirect(inode, ptr, &mut data)?.len() - first;
            let n = (len - done).min(room as u32);
            let d = data.data_mut();
            for k in 0..n {
                format::indirect_set(d, first + k as usize, b.wrapping_add(k))
                    .map_err(|_| EINVAL)?;
            }
            format::indirect_seal(d).map_err(|_| EINVAL)?;
            data.mark_dirty_for(inode);
            Ok(n)
        })();
        match r {
            Ok(n) => done += n,
            Err(e) => return (done, Err(e)),
        }
    }
    (done, Ok(()))
}

fn check_block(inode: &INode<Rbfs>, block: u32) -> Result {
    let sb = inode.super_block();
    sb.data()
        .sb
        .check_data_block(block)
        .map_err(|e| corrupt(sb, format_args!("inode {} block map", inode.ino()), e))
}

/// The verified view of a locked indirect block: its checks run once per
/// read from the disk (the buffer remembers them, `Checked`).
fn indirect<'a>(
    inode: &INode<Rbfs>,
    block: u32,
    data: &'a mut kernel::fs::buffer::BufferData<'_>,
) -> Result<IndirectBlock<'a>> {
    let sb = inode.super_block();
    data.check_once(|d| IndirectBlock::parse(d, &sb.data().sb).map(|_| ()))
        .map_err(|e| {
            corrupt(
                sb,
                format_args!("inode {} indirect block {}", inode.ino(), block),
                e,
            )
        })?;
    IndirectBlock::parse_trusted(data.data(), &sb.data().sb).map_err(|_| EINVAL)
}

/// The buffer of indirect block `block`, a pointer from `inode`'s map
/// (checked to lie in the data region first).
fn read_indirect(inode: &INode<Rbfs>, block: u32) -> Result<Buffer> {
    check_block(inode, block)?;
    inode.super_block().bread(u64::from(block))
}

/// Reads pointer `i` of indirect block `block`, whose buffer is `buf`.
fn get_ptr(inode: &INode<Rbfs>, buf: &Buffer, block: u32, i: u32) -> Result<u32> {
    let mut data = buf.lock();
    Ok(indirect(inode, block, &mut data)?.get(i as usize))
}

/// Reads pointer `i` of indirect block `block`.
fn read_ptr(inode: &INode<Rbfs>, block: u32, i: u32) -> Result<u32> {
    get_ptr(inode, &read_indirect(inode, block)?, block, i)
}

/// Maps file block `index` of `inode`; `None` for a hole.
pub(crate) fn map(inode: &INode<Rbfs>, index: u64) -> Result<Option<u32>> {
    Ok(map_run(inode, index, 1)?.map(|(b, _)| b))
}

/// Maps file block `index` of `inode` and counts the run from there: how
/// many of the next blocks, at most `max`, follow it on the device (within
/// one pointer array: the direct pointers or one indirect block).  `None`
/// for a hole.
pub(crate) fn map_run(inode: &INode<Rbfs>, index: u64, max: u64) -> Result<Option<(u32, u64)>> {
    let sb = inode.super_block();
    let Some(path) = format::block_path(sb.data().block_log(), index) else {
        // Beyond the largest file the map can describe: s_maxbytes keeps
        // the VFS from asking, so this is a hole if it ever happens.
        return Ok(None);
    };
    let mut st = inode.data().lock_map();
    if let Some((b, n)) = pending_at(&mut st, index, max) {
        check_block(inode, b)?;
        check_block(inode, b.wrapping_add((n - 1) as u32))?;
        return Ok(Some((b, n)));
    }
    if path.depth == 0 {
        return run_in(inode, st.ptrs[path.slot..N_DIRECT].iter().copied(), max);
    }
    let mut ptr = st.ptrs[path.slot];
    for level in 0..path.depth - 1 {
        if ptr == 0 {
            return Ok(None);
        }
        ptr = read_ptr(inode, ptr, path.idx[level])?;
    }
    if ptr == 0 {
        return Ok(None);
    }
    // The last level: the run is counted in the indirect block, under its
    // lock, without copying it.
    let buf = read_indirect(inode, ptr)?;
    let mut data = buf.lock();
    let ind = indirect(inode, ptr, &mut data)?;
    run_in(
        inode,
        (path.idx[path.depth - 1] as usize..ind.len()).map(|k| ind.get(k)),
        max,
    )
}

/// The run at the start of `ptrs`, at most `max` (at least 1) long: `None`
/// for a hole.  Both ends are checked (the data region is one range, so the
/// blocks between are in it too).
fn run_in(
    inode: &INode<Rbfs>,
    mut ptrs: impl Iterator<Item = u32>,
    max: u64,
) -> Result<Option<(u32, u64)>> {
    let first = match ptrs.next() {
        None | Some(0) => return Ok(None),
        Some(b) => b,
    };
    let mut n = 1u64;
    for p in ptrs {
        if n >= max || p != first.wrapping_add(n as u32) {
            break;
        }
        n += 1;
    }
    check_block(inode, first)?;
    check_block(inode, first.wrapping_add((n - 1) as u32))?;
    Ok(Some((first, n)))
}

/// 512-byte sectors per block.
fn sectors_per_block(inode: &INode<Rbfs>) -> u64 {
    (1u64 << inode.super_block().data().block_log()) / SECTOR_SIZE
}

/// Allocates a block for `inode` at or after `goal` (0: the file system's
/// own goal), and counts it.
fn take_block(inode: &INode<Rbfs>, st: &mut MapState, goal: u32) -> Result<u32> {
    let b = alloc::alloc_block(inode.super_block(), goal)?;
    st.blocks += sectors_per_block(inode);
    inode.set_blocks(st.blocks);
    inode.mark_dirty();
    Ok(b)
}

/// Where `inode`'s next data block goes: right after its last one (0: the
/// file system's own goal).
fn data_goal(st: &MapState) -> u32 {
    if st.last != 0 {
        st.last + 1
    } else {
        0
    }
}

/// Allocates a data block for `inode` right after its last one.
fn new_block(inode: &INode<Rbfs>, st: &mut MapState) -> Result<u32> {
    let b = take_block(inode, st, data_goal(st))?;
    st.last = b;
    Ok(b)
}

/// Indirect blocks a growing file sets aside at a time.  An indirect block
/// allocated where the data goes next splits the data's run on the disk
/// (every 255 data blocks at 1 KiB blocks), and so splits the writes of a
/// sequential file into requests of at most that size.  Instead the first
/// indirect block takes the data's next block and the data skips ahead
/// past this many blocks, which the file's next indirect blocks fill: one
/// split per 16 indirect blocks (4 MiB of data at 1 KiB blocks, 64 MiB at
/// 4 KiB).  The blocks set aside are only a goal, not a reservation: they
/// stay free for anyone, and are not set aside again once the inode leaves
/// memory or the file is truncated.
const INDIRECT_RESERVE: u32 = 16;

/// Allocates an indirect block for `inode`: all holes, checksummed.
fn new_indirect(inode: &INode<Rbfs>, st: &mut MapState) -> Result<u32> {
    let fresh = st.meta_left == 0;
    let b = take_block(inode, st, if fresh { data_goal(st) } else { st.meta_next })?;
    st.meta_next = b.saturating_add(1);
    if fresh {
        st.meta_left = INDIRECT_RESERVE - 1;
        // The data goes on after the blocks set aside.
        st.last = b.saturating_add(INDIRECT_RESERVE - 1);
    } else {
        st.meta_left -= 1;
    }
    let r = (|| {
        let buf = inode.super_block().zeroed_block(u64::from(b))?;
        {
            let mut data = buf.lock();
            format::indirect_init(data.data_mut()).map_err(|_| EINVAL)?;
            data.set_checked();
            data.mark_dirty_for(inode);
        }
        // On the disk before anything points at it: a pointer to it that
        // reached the disk first would make its old contents, perhaps an
        // old indirect block, part of the file after a crash.
        buf.sync()
    })();
    if let Err(e) = r {
        give_back(inode, st, b);
        return Err(e);
    }
    Ok(b)
}

/// Frees block `b`, just taken by `take_block` and not linked anywhere.
fn give_back(inode: &INode<Rbfs>, st: &mut MapState, b: u32) {
    inode.super_block().forget_block(u64::from(b));
    if alloc::free_blocks(inode.super_block(), b, 1).is_ok() {
        st.blocks = st.blocks.saturating_sub(sectors_per_block(inode));
        inode.set_blocks(st.blocks);
    }
}

/// Sets pointer `i` of indirect block `block`, whose buffer is `buf`, to
/// `value`.
fn set_ptr(inode: &INode<Rbfs>, buf: &Buffer, block: u32, i: u32, value: u32) -> Result {
    let mut data = buf.lock();
    indirect(inode, block, &mut data)?;
    let d = data.data_mut();
    // Checked above, so the checksum is right: update it for this pointer.
    format::indirect_set_sealed(d, i as usize, value).map_err(|_| EINVAL)?;
    data.mark_dirty_for(inode);
    Ok(())
}

/// Takes `inode`'s map mutex; with `ordered`, with a tree node set aside
/// for a new pending run.  The node is allocated before the mutex is taken,
/// never under it: the mutex is also taken by eviction, which reclaim
/// reaches (and the module has no `GFP_NOFS` to ask for).  Once set aside,
/// a node waits there until a new run takes it.
fn lock_map(inode: &INode<Rbfs>, ordered: bool) -> Result<MapGuard<'_>> {
    let map = inode.data();
    let st = map.lock_map();
    if !ordered || st.spare.is_some() {
        return Ok(st);
    }
    drop(st);
    let node = PendingNode::new(GFP_KERNEL)?;
    let mut st = map.lock_map();
    // Another writer may have set one aside meanwhile: then this one goes.
    if st.spare.is_none() {
        st.spare = Some(node);
    }
    Ok(st)
}

/// Maps file block `index` of `inode` for a write, allocating it (and the
/// indirect blocks on its path) if it is a hole.  Returns the block and
/// whether it is new.  A new data block of a regular file is pending until
/// its data is on the disk (`commit`); a directory's goes into the map.
pub(crate) fn map_alloc(inode: &INode<Rbfs>, index: u64) -> Result<(u32, bool)> {
    let path = format::block_path(inode.super_block().data().block_log(), index).ok_or(EFBIG)?;
    // The `publish_early` mutant maps new blocks at once, as ext2 does.
    let ordered = !crate::inode::is_dir(inode) && !cfg!(rbfs_mutant_publish_early);
    let mut st = lock_map(inode, ordered)?;
    if let Some((b, _)) = pending_at(&mut st, index, 1) {
        check_block(inode, b)?;
        return Ok((b, false));
    }
    // A new data block: pending, or straight into the map at `set`.
    let new_data = |st: &mut MapState,
                    set: &mut dyn FnMut(&mut MapState, u32) -> Result|
     -> Result<(u32, bool)> {
        let b = new_block(inode, st)?;
        let r = if ordered {
            add_pending(st, index, b)
        } else {
            set(st, b)
        };
        if let Err(e) = r {
            give_back(inode, st, b);
            return Err(e);
        }
        Ok((b, true))
    };
    if path.depth == 0 {
        let ptr = st.ptrs[path.slot];
        if ptr != 0 {
            check_block(inode, ptr)?;
            return Ok((ptr, false));
        }
        let slot = path.slot;
        return new_data(&mut st, &mut |st, b| {
            st.ptrs[slot] = b;
            Ok(())
        });
    }
    let mut ptr = st.ptrs[path.slot];
    if ptr == 0 {
        ptr = new_indirect(inode, &mut st)?;
        st.ptrs[path.slot] = ptr;
    }
    for level in 0..path.depth {
        let i = path.idx[level];
        let last = level + 1 == path.depth;
        // One lookup of the indirect block serves both reading the pointer
        // and, after the allocation, setting it.
        let buf = read_indirect(inode, ptr)?;
        let child = get_ptr(inode, &buf, ptr, i)?;
        if child != 0 {
            if last {
                check_block(inode, child)?;
                return Ok((child, false));
            }
            ptr = child;
            continue;
        }
        // Allocate with no buffer lock held (a reference is no lock); the
        // map mutex keeps the tree as it is meanwhile.
        if last {
            let parent = ptr;
            return new_data(&mut st, &mut |_, b| set_ptr(inode, &buf, parent, i, b));
        }
        let new = new_indirect(inode, &mut st)?;
        set_ptr(inode, &buf, ptr, i, new)?;
        ptr = new;
    }
    // A path of depth >= 1 returns from the loop.
    Err(EINVAL)
}

/// A run of contiguous blocks waiting to be freed.
struct Run {
    start: u32,
    len: u32,
    freed: u64,
    /// Forget buffer-cache copies (directory blocks live there).
    forget: bool,
}

impl Run {
    fn add(&mut self, inode: &INode<Rbfs>, block: u32) -> Result {
        if self.forget {
            inode.super_block().forget_block(u64::from(block));
        }
        self.freed += 1;
        if self.len > 0 && self.start.checked_add(self.len) == Some(block) {
            self.len += 1;
            return Ok(());
        }
        self.flush(inode)?;
        self.start = block;
        self.len = 1;
        Ok(())
    }

    fn flush(&mut self, inode: &INode<Rbfs>) -> Result {
        if self.len == 0 {
            return Ok(());
        }
        let (start, len) = (self.start, self.len);
        self.len = 0;
        alloc::free_blocks(inode.super_block(), start, len)
    }
}

/// Room for a copy of one indirect block's pointers at each level of a
/// tree, for `free_tree`, which holds no buffer lock while it frees.
/// Allocated before the map mutex is taken (`lock_map_copies`).
type Copies = [KVec<u32>; N_LEVELS];

/// Takes `inode`'s map mutex, with `copies` holding room for every level
/// of its trees.  The room is allocated with the mutex released, for the
/// reason `lock_map` gives; should a deeper tree appear meanwhile, the
/// next look allocates for it too.
fn lock_map_copies<'a>(inode: &'a INode<Rbfs>, copies: &mut Copies) -> Result<MapGuard<'a>> {
    let per_block = format::ptrs_per_indirect(inode.super_block().data().block_log()) as usize;
    loop {
        let st = inode.data().lock_map();
        // The deepest tree with a root (roots follow the direct pointers,
        // one level more each).
        let depth = st.ptrs[N_DIRECT..]
            .iter()
            .rposition(|&p| p != 0)
            .map_or(0, |i| i + 1);
        if copies[..depth].iter().all(|c| !c.is_empty()) {
            return Ok(st);
        }
        drop(st);
        for c in copies[..depth].iter_mut().filter(|c| c.is_empty()) {
            *c = KVec::from_elem(0, per_block, GFP_KERNEL)?;
        }
    }
}

/// Copies the pointers of indirect block `block` (checked) into `out`;
/// returns the copy.
fn read_ptrs<'a>(inode: &INode<Rbfs>, block: u32, out: &'a mut [u32]) -> Result<&'a mut [u32]> {
    let buf = read_indirect(inode, block)?;
    let mut data = buf.lock();
    let ind = indirect(inode, block, &mut data)?;
    let out = out.get_mut(..ind.len()).ok_or(EINVAL)?;
    for (i, p) in out.iter_mut().enumerate() {
        *p = ind.get(i);
    }
    Ok(out)
}

/// Frees, in the tree rooted at indirect block `block` (which maps file
/// blocks from `abs` on), every file block from relative index `start` on,
/// and the indirect blocks that become empty.  Returns whether `block`
/// itself is now empty (the caller frees it and clears its pointer).  An
/// indirect block on the path of a `pending` block is not empty: the
/// block's pointer goes into it when it is published.  The tree has one
/// level per room in `copies`: the first takes this block's pointers, the
/// rest serve the levels below.
fn free_tree(
    inode: &INode<Rbfs>,
    block: u32,
    abs: u64,
    start: u64,
    pending: &mut PendingRuns,
    copies: &mut [KVec<u32>],
    run: &mut Run,
) -> Result<bool> {
    let log = inode.super_block().data().block_log();
    let depth = copies.len();
    let (copy, below) = copies.split_first_mut().ok_or(EINVAL)?;
    let ptrs = read_ptrs(inode, block, copy)?;
    let child_span = format::blocks_at_depth(log, depth - 1);
    let first = (start / child_span) as usize;
    let mut changed = false;
    for (i, p) in ptrs.iter_mut().enumerate().skip(first) {
        let child = *p;
        if child == 0 {
            continue;
        }
        let clear = if depth == 1 {
            true
        } else {
            let sub = if i == first {
                start - first as u64 * child_span
            } else {
                0
            };
            free_tree(
                inode,
                child,
                abs + i as u64 * child_span,
                sub,
                pending,
                below,
                run,
            )?
        };
        if clear {
            if depth == 1 {
                check_block(inode, child)?;
            }
            run.add(inode, child)?;
            *p = 0;
            changed = true;
        }
    }
    let sb = inode.super_block();
    let span = format::blocks_at_depth(log, depth);
    if ptrs.iter().all(|&p| p == 0) && !pending_within(pending, abs, abs.saturating_add(span)) {
        sb.forget_block(u64::from(block));
        return Ok(true);
    }
    if changed {
        let buf = sb.bread(u64::from(block))?;
        let mut data = buf.lock();
        let d = data.data_mut();
        for (i, &p) in ptrs.iter().enumerate().skip(first) {
            if p == 0 {
                format::indirect_set(d, i, 0).map_err(|_| EINVAL)?;
            }
        }
        format::indirect_seal(d).map_err(|_| EINVAL)?;
        data.mark_dirty_for(inode);
    }
    Ok(false)
}

/// Frees every block of `inode` from file block `keep` on, and the
/// indirect blocks no longer needed; updates the block count.
pub(crate) fn truncate_blocks(inode: &INode<Rbfs>, keep: u64) -> Result {
    let log = inode.super_block().data().block_log();
    let mut copies = Copies::default();
    let mut st = lock_map_copies(inode, &mut copies)?;
    let mut run = Run {
        start: 0,
        len: 0,
        freed: 0,
        forget: crate::inode::is_dir(inode),
    };
    let mut result = (|| {
        // Pending blocks from `keep` on go first, so that the tree below
        // sees only the ones that stay: the tail of the run that holds
        // `keep`, then every run after it.
        if let Some(r) =
            pending_floor(&mut st.pending, keep).filter(|r| r.index < keep && r.end() > keep)
        {
            drop_pending(inode, &mut st, r, keep, &mut run)?;
        }
        while let Some(r) = pending_from(&mut st.pending, keep) {
            drop_pending(inode, &mut st, r, r.index, &mut run)?;
        }
        let MapState { ptrs, pending, .. } = &mut *st;
        for p in ptrs
            .iter_mut()
            .take(N_DIRECT)
            .skip(keep.min(N_DIRECT as u64) as usize)
        {
            let b = *p;
            if b != 0 {
                check_block(inode, b)?;
                run.add(inode, b)?;
                *p = 0;
            }
        }
        let mut base = N_DIRECT as u64;
        for depth in 1..=N_LEVELS {
            let span = format::blocks_at_depth(log, depth);
            let slot = N_DIRECT + depth - 1;
            let root = ptrs[slot];
            if root != 0
                && keep < base + span
                && free_tree(
                    inode,
                    root,
                    base,
                    keep.saturating_sub(base),
                    pending,
                    &mut copies[..depth],
                    &mut run,
                )?
            {
                run.add(inode, root)?;
                ptrs[slot] = 0;
            }
            base = base.saturating_add(span);
        }
        Ok(())
    })();
    result = result.and(run.flush(inode));
    st.blocks = st
        .blocks
        .saturating_sub(run.freed * sectors_per_block(inode));
    if run.freed > 0 {
        st.last = 0;
        st.meta_left = 0;
    }
    inode.set_blocks(st.blocks);
    inode.mark_dirty();
    result
}
