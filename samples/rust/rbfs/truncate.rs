// SPDX-License-Identifier: GPL-2.0

//! Truncation: freeing the blocks of a file beyond a new end, pending
//! runs first (`ordered`), then the direct pointers, then each indirect
//! tree from its root, with the blocks to free gathered into runs.

use crate::alloc;
use crate::bmap::{check_block, indirect, read_indirect, sectors_per_block};
use crate::format::{self, N_DIRECT, N_LEVELS};
use crate::inode::{MapGuard, MapState};
use crate::ordered::{drop_pending, pending_floor, pending_from, pending_within, PendingRuns};
use crate::sb::Rbfs;
use kernel::alloc::KVec;
use kernel::fs::inode::Inode;
use kernel::prelude::*;

/// A run of contiguous blocks waiting to be freed.
pub(crate) struct Run {
    start: u32,
    len: u32,
    freed: u64,
    /// Forget buffer-cache copies (directory blocks live there).
    forget: bool,
}

impl Run {
    pub(crate) fn add(&mut self, inode: &Inode<Rbfs>, block: u32) -> Result {
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

    pub(crate) fn flush(&mut self, inode: &Inode<Rbfs>) -> Result {
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
fn lock_map_copies<'a>(inode: &'a Inode<Rbfs>, copies: &mut Copies) -> Result<MapGuard<'a>> {
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
fn read_ptrs<'a>(inode: &Inode<Rbfs>, block: u32, out: &'a mut [u32]) -> Result<&'a mut [u32]> {
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
    inode: &Inode<Rbfs>,
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
pub(crate) fn truncate_blocks(inode: &Inode<Rbfs>, keep: u64) -> Result {
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
