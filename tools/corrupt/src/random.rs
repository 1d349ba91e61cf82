// SPDX-License-Identifier: GPL-2.0

//! Random bit flips in the metadata of an image: the superblock, the
//! bitmaps, the inode table (in-use and free slots), and the blocks in use
//! as directory or indirect blocks.
//!
//! A target structure class is drawn first (each class present equally
//! likely, so a 512-byte superblock is hit as often as a large inode
//! table), then a structure of that class, then a byte and a bit.  The
//! same seed on the same image always flips the same bits.

use std::collections::BTreeSet;

use rbfs_format::check::MapItem;
use rbfs_format::format::{INODE_SIZE, SUPERBLOCK_SIZE};

use crate::catalogue::{expect_after, Expect, Repair};
use crate::edit::{EdResult, Editor, Img, Plan, Seal};
use crate::rng::Rng;

/// One metadata structure bits can be flipped in.
#[derive(Debug, Clone, Copy)]
struct Target {
    seal: Seal,
    /// Block and byte range within it.
    block: u32,
    start: usize,
    len: usize,
}

/// The result of `random`.
#[derive(Debug, Clone)]
pub struct Flips {
    /// The writes.
    pub plan: Plan,
    /// One line per flip.
    pub flips: Vec<String>,
    /// Expected `fsck -n` outcome.
    pub expect: Expect,
    /// Expected `fsck -y` outcome.
    pub repair: Repair,
}

fn targets(img: &Img<'_>) -> EdResult<Vec<Vec<Target>>> {
    let err = |e: rbfs_format::check::CheckError| format!("reading the image: {e}");
    let sb = img.sb;
    let l = sb.layout;
    let bs = img.block_size();
    let scan = img.scan().map_err(err)?;
    let whole = |seal: Seal, block: u32| Target {
        seal,
        block,
        start: 0,
        len: bs,
    };
    let sbt = vec![Target {
        seal: Seal::Super,
        block: 0,
        start: 0,
        len: SUPERBLOCK_SIZE,
    }];
    let bitmaps: Vec<Target> = (l.bbitmap_start..l.bbitmap_start + l.bbitmap_blocks)
        .chain(l.ibitmap_start..l.ibitmap_start + l.ibitmap_blocks)
        .map(|b| whole(Seal::Bitmap(b), b))
        .collect();
    let slot = |ino: u32| -> EdResult<Target> {
        let (block, start) = sb
            .inode_location(ino)
            .map_err(|e| format!("inode {ino}: {e}"))?;
        Ok(Target {
            seal: Seal::Inode(ino),
            block,
            start,
            len: INODE_SIZE,
        })
    };
    let mut used = Vec::new();
    let mut free = Vec::new();
    for ino in 1..=l.inodes_count {
        if scan.in_use.get(u64::from(ino - 1)) {
            used.push(slot(ino)?);
        } else {
            free.push(slot(ino)?);
        }
    }
    let mut dirs = BTreeSet::new();
    let mut inds = BTreeSet::new();
    for info in scan.inodes.values() {
        if info.inode.is_dir() {
            dirs.extend(info.dir_blocks.iter().map(|d| d.1));
        }
        img.walk_map(&info.inode, &mut |item| {
            if let MapItem::Block { block, depth, .. } = item {
                if depth > 0 {
                    inds.insert(block);
                }
            }
        })
        .map_err(err)?;
    }
    let dirs = dirs.into_iter().map(|b| whole(Seal::Dir(b), b)).collect();
    let inds = inds
        .into_iter()
        .map(|b| whole(Seal::Indirect(b), b))
        .collect();
    Ok(vec![sbt, bitmaps, used, free, dirs, inds]
        .into_iter()
        .filter(|v: &Vec<Target>| !v.is_empty())
        .collect())
}

/// Plans `count` random bit flips with `seed`.  With `reseal`, every
/// structure hit gets a valid crc again afterwards (the damage then
/// reaches the field checks); without, the flips are left for the
/// checksums to catch.
pub fn random(img: &Img<'_>, seed: u64, count: u32, reseal: bool) -> EdResult<Flips> {
    let classes = targets(img)?;
    let mut rng = Rng::new(seed);
    let mut ed = Editor::new(img, seed);
    let mut seen = BTreeSet::new();
    let mut flips = Vec::new();
    let bs = img.block_size() as u64;
    while flips.len() < count as usize {
        let class = &classes[rng.below(classes.len() as u64) as usize];
        let t = class[rng.below(class.len() as u64) as usize];
        let off = t.start + rng.below(t.len as u64) as usize;
        let bit = rng.below(8) as u8;
        if !seen.insert((t.block, off, bit)) {
            continue;
        }
        ed.mark(t.seal, reseal)?;
        let buf = ed.block(t.block)?;
        buf[off] ^= 1 << bit;
        let rel = off - t.start;
        let at = u64::from(t.block) * bs + off as u64;
        let line = format!(
            "flip bit {bit} of byte {at} (block {}, {} + {rel})",
            t.block, t.seal
        );
        ed.note(line.clone());
        flips.push(line);
    }
    let plan = ed.finish(false)?;
    // Unsealed, every flip lands in checksummed bytes, so every one is
    // caught (by the crc, or first by the magic or version check);
    // resealed, anything can happen.
    let (expect, repair) = if plan.is_noop() {
        (Expect::Harmless, Repair::Nothing)
    } else if reseal {
        (Expect::Unknown, Repair::Maybe)
    } else {
        expect_after(Expect::Harmless, Repair::Nothing, &plan)
    };
    Ok(Flips {
        plan,
        flips,
        expect,
        repair,
    })
}
