// SPDX-License-Identifier: GPL-2.0

//! The block mapper: file block index to device block, through the
//! inode's direct pointers and up to four levels of indirect blocks, and
//! allocation of blocks for writes.
//!
//! The map of an inode (its pointers, block count and allocation hint) is
//! behind the inode's map mutex (`InodeInfo::lock_map`).  Indirect blocks
//! are read and changed through the buffer cache under their buffer locks,
//! and associated with the inode so that `fsync` writes them.  Each is
//! checked (checksum and every pointer) once after it is read from the
//! disk, and the buffer remembers that (`Verified`); a change updates the
//! checksum for the changed pointer alone.  New data blocks of regular
//! files go to the pending runs of `ordered` first.

use crate::alloc;
use crate::format::{self, BlockPath, IndirectBlock, N_DIRECT};
use crate::inode::{MapGuard, MapState};
use crate::ordered::{add_pending, pending_at, pending_from, PendingNode};
use crate::sb::{corrupt, Rbfs};
use kernel::fs::buffer::Buffer;
use kernel::fs::{inode::Inode, SECTOR_SIZE};
use kernel::prelude::*;

/// Writes the pointers of file blocks `index..index + len` (device blocks
/// from `block` on) into the map, one indirect block at a time.  Returns
/// how many were written, and the error that stopped it, if any.
pub(crate) fn set_run(
    inode: &Inode<Rbfs>,
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
            let Some(ptr) = leaf_indirect(inode, st, &path, Missing::Hole)? else {
                pr_err!(
                    "{}: inode {}: no indirect block for pending block {}\n",
                    inode.super_block().device_name(),
                    inode.ino(),
                    idx
                );
                return Err(EIO);
            };
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

pub(crate) fn check_block(inode: &Inode<Rbfs>, block: u32) -> Result {
    let sb = inode.super_block();
    sb.data()
        .sb
        .check_data_block(block)
        .map_err(|e| corrupt(sb, format_args!("inode {} block map", inode.ino()), e))
}

/// The verified view of a locked indirect block: its checks run once per
/// read from the disk (the buffer remembers them, `Verified`).
pub(crate) fn indirect<'a>(
    inode: &Inode<Rbfs>,
    block: u32,
    data: &'a mut kernel::fs::buffer::BufferData<'_>,
) -> Result<IndirectBlock<'a>> {
    let sb = inode.super_block();
    data.verify_once(|d| IndirectBlock::parse(d, &sb.data().sb).map(|_| ()))
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
pub(crate) fn read_indirect(inode: &Inode<Rbfs>, block: u32) -> Result<Buffer<'_>> {
    check_block(inode, block)?;
    inode.super_block().bread(u64::from(block))
}

/// Reads pointer `i` of indirect block `block`, whose buffer is `buf`.
fn get_ptr(inode: &Inode<Rbfs>, buf: &Buffer<'_>, block: u32, i: u32) -> Result<u32> {
    let mut data = buf.lock();
    Ok(indirect(inode, block, &mut data)?.get(i as usize))
}

/// What [`leaf_indirect`] makes of a missing indirect block on the path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Missing {
    /// The path ends in a hole.
    Hole,
    /// A new indirect block is allocated and linked in its place.
    Allocate,
}

/// The one walk down an indirect tree: from the inode's pointer at
/// `path.slot` through the indirect blocks of `path`'s upper levels, to the
/// indirect block that holds the data pointer (`path.idx[path.depth - 1]`).
/// `path` has a depth of at least 1.  A missing block on the way is a hole
/// (`None`), or is allocated and linked (`Missing::Allocate`); each
/// indirect block is looked up once, for reading its pointer and, after an
/// allocation, setting it.
fn leaf_indirect(
    inode: &Inode<Rbfs>,
    st: &mut MapState,
    path: &BlockPath,
    missing: Missing,
) -> Result<Option<u32>> {
    let mut ptr = st.ptrs[path.slot];
    if ptr == 0 {
        if missing == Missing::Hole {
            return Ok(None);
        }
        ptr = new_indirect(inode, st)?;
        st.ptrs[path.slot] = ptr;
    }
    for &i in &path.idx[..path.depth - 1] {
        let buf = read_indirect(inode, ptr)?;
        let child = get_ptr(inode, &buf, ptr, i)?;
        if child != 0 {
            ptr = child;
            continue;
        }
        if missing == Missing::Hole {
            return Ok(None);
        }
        // Allocate with no buffer lock held (a reference is no lock); the
        // map mutex keeps the tree as it is meanwhile.
        let new = new_indirect(inode, st)?;
        set_ptr(inode, &buf, ptr, i, new)?;
        ptr = new;
    }
    Ok(Some(ptr))
}

/// Maps file block `index` of `inode`; `None` for a hole.
pub(crate) fn map(inode: &Inode<Rbfs>, index: u64) -> Result<Option<u32>> {
    Ok(map_run(inode, index, 1)?.map(|(b, _)| b))
}

/// Maps file block `index` of `inode` and counts the run from there: how
/// many of the next blocks, at most `max`, follow it on the device (within
/// one pointer array: the direct pointers or one indirect block).  `None`
/// for a hole.
pub(crate) fn map_run(inode: &Inode<Rbfs>, index: u64, max: u64) -> Result<Option<(u32, u64)>> {
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
    let Some(ptr) = leaf_indirect(inode, &mut st, &path, Missing::Hole)? else {
        return Ok(None);
    };
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

/// How many blocks from `index` on, from 1 up to `max`, are holes, when
/// [`map_run`] found `index` to be one: neither pending nor in the map.  A
/// missing indirect block is a hole as large as the tree it would hold, so
/// a sparse file's large holes are crossed in one step each.
pub(crate) fn hole_len(inode: &Inode<Rbfs>, index: u64, max: u64) -> Result<u64> {
    let log = inode.super_block().data().block_log();
    let mut st = inode.data().lock_map();
    let mut limit = max.max(1);
    if let Some(r) = pending_from(&mut st.pending, index) {
        limit = limit.min(r.index.saturating_sub(index).max(1));
    }
    let Some(path) = format::block_path(log, index) else {
        return Ok(limit);
    };
    let zeros = |ptrs: &mut dyn Iterator<Item = u32>| ptrs.take_while(|&p| p == 0).count() as u64;
    if path.depth == 0 {
        let n = zeros(&mut st.ptrs[path.slot..N_DIRECT].iter().copied());
        return Ok(n.clamp(1, limit));
    }
    // The blocks left, from `index` on, in the tree under the pointer at
    // `level` of the path (0: the inode's root pointer, k + 1: pointer
    // `idx[k]` in the indirect block at level k).
    let p = u64::from(format::ptrs_per_indirect(log));
    let left = |level: usize| {
        let mut span = 1u64;
        let mut off = 0u64;
        for k in (level..path.depth).rev() {
            off = off.saturating_add(u64::from(path.idx[k]).saturating_mul(span));
            span = span.saturating_mul(p);
        }
        span.saturating_sub(off).clamp(1, limit)
    };
    let mut ptr = st.ptrs[path.slot];
    if ptr == 0 {
        return Ok(left(0));
    }
    for k in 0..path.depth - 1 {
        let buf = read_indirect(inode, ptr)?;
        let child = get_ptr(inode, &buf, ptr, path.idx[k])?;
        if child == 0 {
            return Ok(left(k + 1));
        }
        ptr = child;
    }
    let buf = read_indirect(inode, ptr)?;
    let mut data = buf.lock();
    let ind = indirect(inode, ptr, &mut data)?;
    let from = path.idx[path.depth - 1] as usize;
    let n = zeros(&mut (from..ind.len()).map(|k| ind.get(k)));
    Ok(n.clamp(1, limit))
}

/// The run at the start of `ptrs`, at most `max` (at least 1) long: `None`
/// for a hole.  Both ends are checked (the data region is one range, so the
/// blocks between are in it too).
fn run_in(
    inode: &Inode<Rbfs>,
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
pub(crate) fn sectors_per_block(inode: &Inode<Rbfs>) -> u64 {
    (1u64 << inode.super_block().data().block_log()) / SECTOR_SIZE
}

/// Allocates a block for `inode` at or after `goal` (0: the file system's
/// own goal), and counts it.
fn take_block(inode: &Inode<Rbfs>, st: &mut MapState, goal: u32) -> Result<u32> {
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
fn new_block(inode: &Inode<Rbfs>, st: &mut MapState) -> Result<u32> {
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
fn new_indirect(inode: &Inode<Rbfs>, st: &mut MapState) -> Result<u32> {
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
            data.set_verified();
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
fn give_back(inode: &Inode<Rbfs>, st: &mut MapState, b: u32) {
    inode.super_block().forget_block(u64::from(b));
    if alloc::free_blocks(inode.super_block(), b, 1).is_ok() {
        st.blocks = st.blocks.saturating_sub(sectors_per_block(inode));
        inode.set_blocks(st.blocks);
    }
}

/// Sets pointer `i` of indirect block `block`, whose buffer is `buf`, to
/// `value`.
fn set_ptr(inode: &Inode<Rbfs>, buf: &Buffer<'_>, block: u32, i: u32, value: u32) -> Result {
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
pub(crate) fn lock_map(inode: &Inode<Rbfs>, ordered: bool) -> Result<MapGuard<'_>> {
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
pub(crate) fn map_alloc(inode: &Inode<Rbfs>, index: u64) -> Result<(u32, bool)> {
    let path = format::block_path(inode.super_block().data().block_log(), index).ok_or(EFBIG)?;
    let ordered = !crate::inode::is_dir(inode);
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
    // `Allocate` always gives a block.
    let parent = leaf_indirect(inode, &mut st, &path, Missing::Allocate)?.ok_or(EINVAL)?;
    let i = path.idx[path.depth - 1];
    let buf = read_indirect(inode, parent)?;
    let child = get_ptr(inode, &buf, parent, i)?;
    if child != 0 {
        check_block(inode, child)?;
        return Ok((child, false));
    }
    // Allocated with no buffer lock held, as in `leaf_indirect`.
    new_data(&mut st, &mut |_, b| set_ptr(inode, &buf, parent, i, b))
}
