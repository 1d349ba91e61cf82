// SPDX-License-Identifier: GPL-2.0

//! Block and inode allocation over the on-disk bitmaps.
//!
//! Every allocation and free runs under the mount's allocation mutex
//! (`SbInfo::alloc`), which also holds the free counts; the bitmap blocks
//! themselves are read and changed through the buffer cache under their
//! buffer locks, checked once after each read from the disk (the buffer
//! remembers it, `Verified`); taking a bit updates the checksum for the
//! changed byte alone, freeing runs reseals the block.
//! Lock order: an inode's map mutex, then the allocation mutex, then one
//! buffer lock at a time.

use crate::format::{self, Superblock};
use crate::sb::{corrupt, Rbfs};
use kernel::fs::buffer::{Buffer, CachedBuffer};
use kernel::fs::sb::{NewSuperBlock, SuperBlock, TrimRange};
use kernel::prelude::*;

/// What the allocators remember between calls.
pub(crate) struct AllocState {
    free_blocks: u32,
    free_inodes: u32,
    /// Where the next block search starts when the caller has no goal.
    block_goal: u32,
    /// Where the next inode search starts.
    ino_goal: u32,
    /// The bitmap block used last, kept referenced: sequential allocation
    /// takes block after block from it, and a lookup in the buffer cache
    /// costs as much as the rest of the allocation.  Released by
    /// [`release`] when the file system is put.
    last_bitmap: Option<(u32, CachedBuffer)>,
}

impl AllocState {
    pub(crate) fn new(sb: &Superblock) -> Self {
        Self {
            free_blocks: sb.free_blocks,
            free_inodes: sb.free_inodes,
            block_goal: sb.layout.data_start,
            ino_goal: format::ROOT_INO,
            last_bitmap: None,
        }
    }

    /// Free data blocks and free inodes.
    pub(crate) fn free_counts(&self) -> (u32, u32) {
        (self.free_blocks, self.free_inodes)
    }
}

/// Which bitmap.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Map {
    Blocks,
    Inodes,
}

impl Map {
    fn name(self) -> &'static str {
        match self {
            Map::Blocks => "block bitmap",
            Map::Inodes => "inode bitmap",
        }
    }

    /// (first block, number of blocks, items covered).
    fn region(self, sb: &Superblock) -> (u32, u32, u32) {
        let l = &sb.layout;
        match self {
            Map::Blocks => (l.bbitmap_start, l.bbitmap_blocks, l.blocks_count),
            Map::Inodes => (l.ibitmap_start, l.ibitmap_blocks, l.inodes_count),
        }
    }
}

/// Counts the free blocks and inodes in the bitmaps, checking every bitmap
/// block on the way (at mount).
pub(crate) fn count_free(sb: &NewSuperBlock<'_, Rbfs>, disk: &Superblock) -> Result<(u32, u32)> {
    let mut counts = [0u32; 2];
    for (n, map) in [Map::Blocks, Map::Inodes].into_iter().enumerate() {
        let (start, blocks, total) = map.region(disk);
        for i in 0..blocks {
            let buf = sb.bread(u64::from(start + i))?;
            let mut data = buf.lock();
            if let Err(e) = format::bitmap_verify(data.data(), i, total) {
                pr_err!("{}: {} block {}: {}\n", sb.device_name(), map.name(), i, e);
                return Err(EINVAL);
            }
            data.set_verified();
            counts[n] += format::bitmap_count_free(data.data());
        }
    }
    Ok((counts[0], counts[1]))
}

/// Drops the allocators' reference to a bitmap block (at `put_super`,
/// before the device is released).
pub(crate) fn release(st: &mut AllocState) {
    st.last_bitmap = None;
}

/// Reads bitmap block `index` of `map`, checked, through the state's
/// last-used block when it is that one.
fn read_bitmap<'a>(
    sb: &'a SuperBlock<Rbfs>,
    st: &mut AllocState,
    map: Map,
    index: u32,
) -> Result<Buffer<'a>> {
    let (start, _, total) = map.region(&sb.data().sb);
    let nr = start + index;
    let cached = match &st.last_bitmap {
        Some((b, cached)) if *b == nr => cached.get(sb),
        _ => None,
    };
    let buf = match cached {
        // A failed write of the block clears its up-to-date state: read
        // it again then.
        Some(buf) if buf.head().is_uptodate() => buf,
        _ => {
            let buf = sb.bread(u64::from(nr))?;
            st.last_bitmap = Some((nr, CachedBuffer::new(&buf)));
            buf
        }
    };
    buf.lock()
        .verify_once(|d| format::bitmap_verify(d, index, total))
        .map_err(|e| corrupt(sb, format_args!("{} block {}", map.name(), index), e))?;
    Ok(buf)
}

/// Finds a clear bit from item `goal` on (wrapping around once), sets it
/// and returns the item's index in the bitmap (0-based).
fn take_bit(
    sb: &SuperBlock<Rbfs>,
    st: &mut AllocState,
    map: Map,
    goal: u32,
) -> Result<Option<u32>> {
    let (_, blocks, total) = map.region(&sb.data().sb);
    let bpb = format::bitmap_bits_per_block(sb.data().block_log());
    let goal = if goal >= total { 0 } else { goal };
    let first = goal / bpb;
    for step in 0..=blocks {
        let index = (first + step) % blocks;
        let start = if step == 0 { goal % bpb } else { 0 };
        let buf = read_bitmap(sb, st, map, index)?;
        let mut data = buf.lock();
        let Some(bit) = format::bitmap_find_free(data.data(), start) else {
            continue;
        };
        let d = data.data_mut();
        // The block was checked (its checksum is right): update the
        // checksum for the one changed byte instead of resealing it all.
        format::bitmap_set_sealed(d, bit)
            .map_err(|e| corrupt(sb, format_args!("{} block {}", map.name(), index), e))?;
        return Ok(Some(index * bpb + bit));
    }
    Ok(None)
}

/// Allocates a data block, preferably `goal` or the first free one after
/// it.  `ENOSPC` when none is left.
pub(crate) fn alloc_block(sb: &SuperBlock<Rbfs>, goal: u32) -> Result<u32> {
    let info = sb.data();
    let mut st = info.alloc.lock();
    if st.free_blocks == 0 {
        return Err(ENOSPC);
    }
    let goal = if info.sb.is_data_block(goal) {
        goal
    } else {
        st.block_goal
    };
    let Some(block) = take_bit(sb, &mut st, Map::Blocks, goal)? else {
        // The count said there was one: the count was wrong.
        st.free_blocks = 0;
        return Err(ENOSPC);
    };
    if let Err(e) = info.sb.check_data_block(block) {
        // mkfs marks every metadata block in use: a clear bit there is
        // corruption.  The bit stays set, so the block is not offered again.
        return Err(corrupt(
            sb,
            format_args!("block bitmap: metadata block {} marked free", block),
            e,
        ));
    }
    st.free_blocks -= 1;
    st.block_goal = block + 1;
    Ok(block)
}

/// Frees `count` blocks from `start`, which must all be allocated data
/// blocks within one bitmap block... or several: runs are split as needed.
pub(crate) fn free_blocks(sb: &SuperBlock<Rbfs>, start: u32, count: u32) -> Result {
    let info = sb.data();
    let bpb = format::bitmap_bits_per_block(info.block_log());
    let mut st = info.alloc.lock();
    let mut block = start;
    let end = start.checked_add(count).ok_or(EINVAL)?;
    while block < end {
        if let Err(e) = info.sb.check_data_block(block) {
            return Err(corrupt(sb, format_args!("freeing block {}", block), e));
        }
        let index = block / bpb;
        let run_end = end.min((index + 1) * bpb);
        let buf = read_bitmap(sb, &mut st, Map::Blocks, index)?;
        let mut data = buf.lock();
        let d = data.data_mut();
        let mut freed = 0;
        let mut result = Ok(());
        for b in block..run_end {
            match format::bitmap_clear(d, b % bpb) {
                Ok(true) => freed += 1,
                Ok(false) => {
                    result = Err(corrupt(
                        sb,
                        format_args!("block bitmap: block {} freed twice", b),
                        format::FormatError::BadBitmap("block already free"),
                    ));
                }
                Err(e) => {
                    result = Err(corrupt(sb, format_args!("block bitmap block {}", index), e))
                }
            }
        }
        let sealed = format::bitmap_seal(d);
        drop(data);
        st.free_blocks += freed;
        sealed.map_err(|e| corrupt(sb, format_args!("block bitmap block {}", index), e))?;
        result?;
        block = run_end;
    }
    Ok(())
}

/// `FITRIM`: discards every run of free data blocks of at least
/// `range.min_len` blocks in `range`, and returns how many blocks that
/// was.  One bitmap block at a time, under the allocation mutex: no block
/// can be allocated, and written, while it is being discarded (the discard
/// is waited for before the mutex is released), and an allocation waits
/// for one bitmap block's discards at most.  The bitmaps must be the truth,
/// so a filesystem that was not unmounted cleanly is refused (`EUCLEAN`)
/// until `fsck.rbfs` has run: a block in use whose bit a crash left clear
/// would be discarded.
pub(crate) fn trim(sb: &SuperBlock<Rbfs>, range: &TrimRange) -> Result<u64> {
    let info = sb.data();
    let l = &info.sb.layout;
    let total = u64::from(l.blocks_count);
    if range.start >= total || range.min_len > u64::from(l.data_blocks) {
        return Err(EINVAL);
    }
    if info.sb.state != format::STATE_CLEAN {
        pr_warn!(
            "{}: not trimming: the filesystem was not unmounted cleanly; run fsck.rbfs\n",
            sb.device_name()
        );
        return Err(crate::sb::euclean());
    }
    // Both fit in u32: `start` is below `total`, which is a u32.
    let mut block = range.start.max(u64::from(l.data_start)) as u32;
    let end = range.end.min(total) as u32;
    let bpb = format::bitmap_bits_per_block(info.block_log());
    let mut trimmed = 0u64;
    while block < end {
        let index = block / bpb;
        let stop = end.min(index.saturating_add(1).saturating_mul(bpb));
        let mut st = info.alloc.lock();
        let buf = read_bitmap(sb, &mut st, Map::Blocks, index)?;
        while block < stop {
            // The bits cannot change while the allocation mutex is held:
            // the buffer lock is dropped for the discard.
            let (free, len) = {
                let data = buf.lock();
                let d = data.data();
                match format::bitmap_find_free(d, block % bpb) {
                    Some(bit) if index * bpb + bit < stop => {
                        let from = index * bpb + bit;
                        (from, format::bitmap_free_run(d, bit, stop - index * bpb))
                    }
                    _ => break,
                }
            };
            if u64::from(len) >= range.min_len {
                sb.discard(u64::from(free), u64::from(len))?;
                trimmed += u64::from(len);
            }
            block = free + len.max(1);
        }
        drop(st);
        block = stop;
    }
    Ok(trimmed)
}

/// Allocates an inode number.  `ENOSPC` when none is left.
pub(crate) fn alloc_ino(sb: &SuperBlock<Rbfs>) -> Result<u32> {
    let info = sb.data();
    let mut st = info.alloc.lock();
    if st.free_inodes == 0 {
        return Err(ENOSPC);
    }
    let goal = st.ino_goal - 1;
    let Some(bit) = take_bit(sb, &mut st, Map::Inodes, goal)? else {
        st.free_inodes = 0;
        return Err(ENOSPC);
    };
    let ino = bit + 1;
    st.free_inodes -= 1;
    st.ino_goal = ino + 1;
    Ok(ino)
}

/// Frees inode number `ino`.
pub(crate) fn free_ino(sb: &SuperBlock<Rbfs>, ino: u32) -> Result {
    let info = sb.data();
    let (block, bit) = info
        .sb
        .inode_bit_location(ino)
        .map_err(|e| corrupt(sb, format_args!("freeing inode {}", ino), e))?;
    let index = block - info.sb.layout.ibitmap_start;
    let mut st = info.alloc.lock();
    let buf = read_bitmap(sb, &mut st, Map::Inodes, index)?;
    let mut data = buf.lock();
    let d = data.data_mut();
    let was = format::bitmap_clear(d, bit).and_then(|was| format::bitmap_seal(d).map(|()| was));
    drop(data);
    match was {
        Ok(true) => {
            st.free_inodes += 1;
            if ino < st.ino_goal {
                st.ino_goal = ino;
            }
            Ok(())
        }
        Ok(false) => Err(corrupt(
            sb,
            format_args!("inode bitmap: inode {} freed twice", ino),
            format::FormatError::BadBitmap("inode already free"),
        )),
        Err(e) => Err(corrupt(sb, format_args!("inode bitmap block {}", index), e)),
    }
}
