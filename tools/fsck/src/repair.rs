// SPDX-License-Identifier: GPL-2.0

//! One round of fsck: for every problem a scan found, decide whether it
//! can be repaired safely, apply the repair to the disk overlay when
//! repairs are on, then run pass 5 (bitmaps and free counts) against the
//! blocks and inodes in use *after* those repairs, as e2fsck does.
//!
//! Safety rests on two facts the scan establishes.  Blocks are known to be
//! free only when every in-use inode and indirect block parsed
//! ([`Scan::blocks_complete`]); otherwise a damaged inode may own blocks
//! nobody can see, so nothing is allocated and no bitmap bit is cleared.
//! Reference counts and connectivity are exact only when, in addition,
//! every directory was read in full ([`Scan::dirs_complete`]); otherwise
//! link counts are not changed, no inode is freed and nothing is
//! reconnected.  Damaged structures themselves (bad checksums, invalid
//! fields) are reported and left alone: rewriting a checksum would turn
//! unknown corruption into "valid" data.

use std::collections::{HashMap, HashSet};

use rbfs_format::check::{
    bitmap_differences, Bitmap, BitmapKind, Bits, CheckError, CheckResult, Claims, EntryLoc, Image,
    MapItem, Problem, PtrLoc, Scan,
};
use rbfs_format::format::{
    bitmap_count_free, bitmap_init, bitmap_seal, bitmap_set, block_path, blocks_at_depth, crc32c,
    dir_init_empty, dir_init_first, dir_insert, dir_seal, dir_set_dotdot, dt_from_mode,
    indirect_init, indirect_seal, indirect_set, inode_crc, FormatError, Inode, Timestamp, DT_DIR,
    INODE_SIZE, I_BLOCKS_OFF, I_CRC_OFF, I_LINKS_OFF, I_MAP_OFF, I_SIZE_OFF, N_DIRECT, N_MAP,
    ROOT_INO, SB_CRC_OFF, SB_FREE_BLOCKS_OFF, SB_FREE_INODES_OFF, SB_STATE_OFF, SECTOR_SIZE,
    STATE_DIRTY, SUPERBLOCK_SIZE, S_IFDIR,
};

use crate::disk::Disk;

/// What became of one problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// Repaired.  The question e2fsck would have asked ("Fix", "Clear",
    /// ...), answered yes.
    Done(&'static str),
    /// Repairable, but repairs are off (`-n`, or no option): the question,
    /// answered no.
    Declined(&'static str),
    /// Not repaired because it cannot be done safely; says why.
    Cannot(String),
}

/// The e2fsck pass a line belongs to, in output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pass {
    /// Superblock, before the passes.
    Super,
    /// Pass 1.
    One,
    /// Pass 1B (blocks claimed twice).
    OneB,
    /// Pass 2.
    Two,
    /// Pass 3.
    Three,
    /// Pass 4.
    Four,
    /// Pass 5.
    Five,
}

impl Pass {
    /// All passes with a header line, in order.
    pub const HEADED: [Pass; 6] = [
        Pass::One,
        Pass::OneB,
        Pass::Two,
        Pass::Three,
        Pass::Four,
        Pass::Five,
    ];

    /// The line e2fsck prints when it starts the pass.
    pub fn header(self) -> &'static str {
        match self {
            Pass::Super => "Checking the superblock",
            Pass::One => "Pass 1: Checking inodes, blocks, and sizes",
            Pass::OneB => "Pass 1B: Rescanning for multiply-claimed blocks",
            Pass::Two => "Pass 2: Checking directory structure",
            Pass::Three => "Pass 3: Checking directory connectivity",
            Pass::Four => "Pass 4: Checking reference counts",
            Pass::Five => "Pass 5: Checking block and inode bitmaps and free counts",
        }
    }

    fn of(p: &Problem) -> Pass {
        match (p.pass(), p) {
            (_, Problem::Shared { .. }) => Pass::OneB,
            (0, _) => Pass::Super,
            (1, _) => Pass::One,
            (2, _) => Pass::Two,
            (3, _) => Pass::Three,
            (4, _) => Pass::Four,
            _ => Pass::Five,
        }
    }
}

/// One reported problem and what was done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Pass it belongs to.
    pub pass: Pass,
    /// The problem, naming the object.
    pub text: String,
    /// What was done.
    pub fix: Fix,
}

/// Result of a round.
pub struct Outcome {
    /// Every problem found, in pass order.
    pub lines: Vec<Line>,
    /// Blocks in use after the round's repairs.
    pub used_blocks: u64,
    /// Inodes in use after the round's repairs.
    pub used_inodes: u64,
}

const DAMAGED_INODE: &str = "a damaged inode cannot be rebuilt safely";
const UNCERTAIN: &str = "damaged inodes or directories elsewhere make the directory tree uncertain";
const HIDDEN_BLOCKS: &str = "a damaged inode or indirect block may own blocks nobody can see";
const SHARED_INDIRECT: &str = "an indirect block is shared between inodes";

fn get32(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]])
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        },
        Err(_) => Timestamp::default(),
    }
}

/// State of one round.
pub struct Round<'a, 'd> {
    img: &'a Image<'d, Disk>,
    disk: &'d Disk,
    scan: &'a Scan,
    apply: bool,
    bs: usize,
    /// Block references after the repairs so far.
    claims: Claims,
    /// Inode slots in use after the repairs so far.
    in_use: Bits,
    /// Where the block allocator looks next.
    cursor: u32,
    lines: Vec<Line>,
    /// Blocks freed from each inode by truncation.
    truncated: HashMap<u32, u64>,
    /// Outcome of cloning the shared blocks, once tried.
    cloned: Option<Result<(), String>>,
    /// The lost+found directory, once looked up or created.
    lost_found: Option<Result<u32, String>>,
    /// A lost+found this round created.
    lf_created: Option<u32>,
    /// Names already in lost+found.
    lf_names: HashSet<Vec<u8>>,
    /// Directories reconnected into lost+found.
    lf_new_dirs: u32,
    /// Inodes other than directories reconnected into lost+found.
    reconnected: HashSet<u32>,
    /// Inodes freed.
    freed: HashSet<u32>,
}

impl<'a, 'd> Round<'a, 'd> {
    /// A round over `scan` of `img` (which reads through `disk`);
    /// repairs are applied only when `apply`.
    pub fn new(img: &'a Image<'d, Disk>, disk: &'d Disk, scan: &'a Scan, apply: bool) -> Self {
        Round {
            img,
            disk,
            scan,
            apply,
            bs: img.block_size(),
            claims: scan.claims.clone(),
            in_use: scan.in_use.clone(),
            cursor: scan.sb.layout.data_start,
            lines: Vec::new(),
            truncated: HashMap::new(),
            cloned: None,
            lost_found: None,
            lf_created: None,
            lf_names: HashSet::new(),
            lf_new_dirs: 0,
            reconnected: HashSet::new(),
            freed: HashSet::new(),
        }
    }

    /// Handles every problem of passes 0 to 4, then runs pass 5.
    pub fn run(mut self) -> CheckResult<Outcome> {
        let scan = self.scan;
        let mut link_counts = Vec::new();
        for p in &scan.problems {
            if let Problem::LinkCount { ino, .. } = p {
                link_counts.push(*ino);
                continue;
            }
            let fix = self.handle(p)?;
            self.push(Pass::of(p), p.to_string(), fix);
        }
        self.link_counts(&link_counts)?;
        self.pass5()?;
        self.lines.sort_by_key(|l| l.pass);
        Ok(Outcome {
            lines: self.lines,
            used_blocks: self.claims.count(),
            used_inodes: self.in_use.count_ones(),
        })
    }

    fn push(&mut self, pass: Pass, text: String, fix: Fix) {
        self.lines.push(Line { pass, text, fix });
    }

    /// `Done(verb)` after running `repair` if repairs are on, else
    /// `Declined(verb)`.  A repair that finds it cannot proceed returns
    /// the reason instead.
    fn attempt(
        &mut self,
        verb: &'static str,
        repair: impl FnOnce(&mut Self) -> CheckResult<Result<(), String>>,
    ) -> CheckResult<Fix> {
        if !self.apply {
            return Ok(Fix::Declined(verb));
        }
        Ok(match repair(self)? {
            Ok(()) => Fix::Done(verb),
            Err(why) => Fix::Cannot(why),
        })
    }

    fn cannot(why: &str) -> CheckResult<Fix> {
        Ok(Fix::Cannot(why.to_string()))
    }

    fn shared_indirect(&self) -> bool {
        self.scan.dup_claims.iter().any(|d| d.depth > 0)
    }

    /// Decides and applies the repair of one problem of passes 0 to 3 or
    /// an unattached inode of pass 4.
    fn handle(&mut self, p: &Problem) -> CheckResult<Fix> {
        let scan = self.scan;
        match *p {
            Problem::BadState { .. } => self.attempt("Fix", |r| {
                r.patch_sb(|sb| put32(sb, SB_STATE_OFF, STATE_DIRTY))?;
                Ok(Ok(()))
            }),
            Problem::BadInode { .. } => Self::cannot(DAMAGED_INODE),
            Problem::BadIndirect { .. } => {
                Self::cannot("a damaged indirect block cannot be rebuilt safely")
            }
            Problem::PastEof { ino, .. } => {
                if !scan.inodes[&ino].map_ok {
                    Self::cannot("its block map is damaged")
                } else if self.shared_indirect() {
                    Self::cannot(SHARED_INDIRECT)
                } else {
                    self.attempt("Truncate", |r| r.truncate(ino).map(Ok))
                }
            }
            Problem::BlocksCount { ino, .. } => self.attempt("Fix", |r| {
                r.set_blocks(ino)?;
                Ok(Ok(()))
            }),
            Problem::Shared { .. } => {
                if !scan.blocks_complete {
                    Self::cannot(HIDDEN_BLOCKS)
                } else if self.shared_indirect() {
                    Self::cannot(SHARED_INDIRECT)
                } else {
                    self.attempt("Clone multiply-claimed blocks", |r| r.clone_shared())
                }
            }
            Problem::BadRoot { .. } => Self::cannot("the root directory cannot be recreated"),
            Problem::DirHole { .. } => Self::cannot("fsck.rbfs does not fill holes in directories"),
            Problem::BadDirBlock { .. } => {
                Self::cannot("a damaged directory block cannot be rebuilt safely")
            }
            Problem::DuplicateName { .. } => {
                Self::cannot("fsck.rbfs does not rename directory entries")
            }
            Problem::WrongDot { dir, found, loc } => self.attempt("Fix", |r| {
                r.edit_entry(loc, found, |b, off| {
                    put32(b, off, dir);
                    Ok(())
                })
            }),
            Problem::BadEntryInode { ino, loc, .. } | Problem::FreeEntryInode { ino, loc, .. } => {
                self.attempt("Clear", |r| r.clear_entry(loc, ino))
            }
            Problem::EntryType { ino, want, loc, .. } => self.attempt("Fix", |r| {
                r.edit_entry(loc, ino, |b, off| {
                    b[off + 7] = want;
                    Ok(())
                })
            }),
            _ if !scan.dirs_complete => Self::cannot(UNCERTAIN),
            Problem::WrongDotDot {
                found, want, loc, ..
            } => self.attempt("Fix", |r| {
                r.edit_entry(loc, found, |b, _| dir_set_dotdot(b, want))
            }),
            Problem::ExtraDirLink { target, loc, .. } => {
                self.attempt("Clear", |r| r.clear_entry(loc, target))
            }
            Problem::Unconnected { dir, .. } => {
                self.attempt("Connect to /lost+found", |r| r.reconnect(dir))
            }
            Problem::Unattached { ino, links: 0, .. } => self.attempt("Clear", |r| {
                r.free_inode(ino)?;
                Ok(Ok(()))
            }),
            Problem::Unattached { ino, .. } => {
                self.attempt("Connect to /lost+found", |r| r.reconnect(ino))
            }
            Problem::LinkCount { .. }
            | Problem::BadBitmapBlock { .. }
            | Problem::BitmapDiff { .. }
            | Problem::FreeCount { .. } => Self::cannot("internal error: handled elsewhere"),
        }
    }

    // -- Inodes --------------------------------------------------------

    fn read_raw_inode(&self, ino: u32) -> CheckResult<(u32, usize, Vec<u8>)> {
        let (block, off) = self
            .scan
            .sb
            .inode_location(ino)
            .map_err(|err| CheckError::Format {
                what: format!("inode {ino}"),
                err,
            })?;
        Ok((block, off, self.img.read_block(block)?))
    }

    /// Applies `f` to the raw bytes of inode `ino` and reseals it.  Only
    /// the fields a repair changes are touched: fields this version does
    /// not know (reserved bytes) are kept as they are.
    fn patch_inode(&self, ino: u32, f: impl FnOnce(&mut [u8])) -> CheckResult<()> {
        let (block, off, mut buf) = self.read_raw_inode(ino)?;
        let raw = &mut buf[off..off + INODE_SIZE];
        f(raw);
        if raw.iter().any(|&b| b != 0) {
            let crc = inode_crc(raw, ino);
            put32(raw, I_CRC_OFF, crc);
        }
        self.disk.write_block(block, buf);
        Ok(())
    }

    /// The inode as it is now, repairs so far included.
    fn current_inode(&self, ino: u32) -> CheckResult<Inode> {
        let (_, off, buf) = self.read_raw_inode(ino)?;
        Inode::parse(&buf[off..off + INODE_SIZE], ino, &self.scan.sb)
            .map_err(|err| CheckError::Format {
                what: format!("inode {ino}"),
                err,
            })?
            .ok_or_else(|| CheckError::Corrupt(format!("inode {ino} is free")))
    }

    fn sectors(&self, blocks: u64) -> u64 {
        blocks * (self.bs as u64 / SECTOR_SIZE)
    }

    fn set_blocks(&mut self, ino: u32) -> CheckResult<()> {
        let info = &self.scan.inodes[&ino];
        let mapped = info.mapped - self.truncated.get(&ino).copied().unwrap_or(0);
        let sectors = self.sectors(mapped);
        self.patch_inode(ino, |raw| put64(raw, I_BLOCKS_OFF, sectors))
    }

    /// Frees inode `ino` and every block of its map.
    fn free_inode(&mut self, ino: u32) -> CheckResult<()> {
        let inode = self.current_inode(ino)?;
        let mut blocks = Vec::new();
        self.img.walk_map(&inode, &mut |item| {
            if let MapItem::Block { block, .. } = item {
                blocks.push(block);
            }
        })?;
        for b in blocks {
            self.claims.release(b);
        }
        self.patch_inode(ino, |raw| raw.fill(0))?;
        self.in_use.set(u64::from(ino - 1), false);
        self.freed.insert(ino);
        Ok(())
    }

    /// The lowest free inode slot, now taken.
    fn alloc_inode(&mut self) -> Option<u32> {
        let count = self.scan.sb.layout.inodes_count;
        let ino = (ROOT_INO + 1..=count).find(|&i| {
            !self.scan.in_use.get(u64::from(i - 1)) && !self.in_use.get(u64::from(i - 1))
        })?;
        self.in_use.set(u64::from(ino - 1), true);
        Some(ino)
    }

    // -- Blocks --------------------------------------------------------

    /// `n` free blocks, now claimed, or none at all.  Only blocks that no
    /// inode referenced when the round began are handed out, so nothing
    /// freed by this round's repairs is reused before it is verified.
    fn alloc_blocks(&mut self, n: usize) -> Option<Vec<u32>> {
        let end = self.scan.sb.layout.blocks_count;
        let mut out = Vec::with_capacity(n);
        let mut b = self.cursor;
        while out.len() < n && b < end {
            if !self.scan.claims.is_used(b) && !self.claims.is_used(b) {
                out.push(b);
            }
            b += 1;
        }
        if out.len() < n {
            return None;
        }
        for &b in &out {
            self.claims.claim(b);
        }
        self.cursor = b;
        Some(out)
    }

    fn alloc_block(&mut self) -> Option<u32> {
        self.alloc_blocks(1).map(|v| v[0])
    }

    /// Frees the blocks of `ino` mapped at or past its end of file.
    fn truncate(&mut self, ino: u32) -> CheckResult<()> {
        let inode = self.current_inode(ino)?;
        let limit = inode.size.div_ceil(self.bs as u64);
        let mut freed = 0u64;
        for slot in 0..N_MAP {
            let ptr = inode.map[slot];
            if ptr == 0 {
                continue;
            }
            let depth = slot.saturating_sub(N_DIRECT - 1);
            let first = tree_first_index(self.scan.sb.layout.block_log, slot);
            let new = self.trunc_tree(ptr, depth, first, limit, &mut freed)?;
            if new != ptr {
                self.patch_inode(ino, |raw| put32(raw, I_MAP_OFF + 4 * slot, new))?;
            }
        }
        *self.truncated.entry(ino).or_insert(0) += freed;
        self.set_blocks(ino)
    }

    /// Truncates the tree at `ptr` (covering file blocks from `first`) to
    /// `limit` file blocks; returns the pointer to keep (0 when the whole
    /// tree lies past the end).
    fn trunc_tree(
        &mut self,
        ptr: u32,
        depth: usize,
        first: u64,
        limit: u64,
        freed: &mut u64,
    ) -> CheckResult<u32> {
        if first >= limit {
            self.free_tree(ptr, depth, freed)?;
            return Ok(0);
        }
        if depth == 0 {
            return Ok(ptr);
        }
        let mut buf = self.img.read_block(ptr)?;
        let span = blocks_at_depth(self.scan.sb.layout.block_log, depth - 1);
        let mut changed = false;
        for i in 0..buf.len() / 4 - 1 {
            let child = get32(&buf, i * 4);
            if child == 0 {
                continue;
            }
            let new = self.trunc_tree(child, depth - 1, first + i as u64 * span, limit, freed)?;
            if new != child {
                indirect_set(&mut buf, i, new).map_err(fmt_err(ptr))?;
                changed = true;
            }
        }
        if changed {
            indirect_seal(&mut buf).map_err(fmt_err(ptr))?;
            self.disk.write_block(ptr, buf);
        }
        Ok(ptr)
    }

    fn free_tree(&mut self, ptr: u32, depth: usize, freed: &mut u64) -> CheckResult<()> {
        self.claims.release(ptr);
        *freed += 1;
        if depth > 0 {
            let buf = self.img.read_block(ptr)?;
            for i in 0..buf.len() / 4 - 1 {
                let child = get32(&buf, i * 4);
                if child != 0 {
                    self.free_tree(child, depth - 1, freed)?;
                }
            }
        }
        Ok(())
    }

    /// Gives every second and later reference to a shared data block its
    /// own copy of the block (e2fsck's "clone"), so each file keeps the
    /// data it had and none is lost.  Done once for all shared blocks.
    fn clone_shared(&mut self) -> CheckResult<Result<(), String>> {
        if let Some(done) = &self.cloned {
            return Ok(done.clone());
        }
        let result = self.clone_all()?;
        self.cloned = Some(result.clone());
        Ok(result)
    }

    fn clone_all(&mut self) -> CheckResult<Result<(), String>> {
        for d in &self.scan.dup_claims {
            let info = &self.scan.inodes[&d.ino];
            let limit = info.inode.size.div_ceil(self.bs as u64);
            // Blocks past the end were freed instead, and a block whose
            // other references are gone needs no copy.
            if d.index >= limit || self.claims.refs(d.block) < 2 {
                continue;
            }
            let current = match d.loc {
                PtrLoc::Inode(slot) => self.current_inode(d.ino)?.map[slot],
                PtrLoc::Indirect { block, index } => get32(&self.img.read_block(block)?, index * 4),
            };
            if current != d.block {
                continue;
            }
            let Some(copy) = self.alloc_block() else {
                return Ok(Err("no free block to copy a shared block to".into()));
            };
            let data = self.img.read_block(d.block)?;
            self.disk.write_block(copy, data);
            self.set_pointer(d.ino, d.loc, copy)?;
            self.claims.release(d.block);
        }
        Ok(Ok(()))
    }

    fn set_pointer(&mut self, ino: u32, loc: PtrLoc, to: u32) -> CheckResult<()> {
        match loc {
            PtrLoc::Inode(slot) => {
                self.patch_inode(ino, |raw| put32(raw, I_MAP_OFF + 4 * slot, to))
            }
            PtrLoc::Indirect { block, index } => {
                let mut buf = self.img.read_block(block)?;
                indirect_set(&mut buf, index, to).map_err(fmt_err(block))?;
                indirect_seal(&mut buf).map_err(fmt_err(block))?;
                self.disk.write_block(block, buf);
                Ok(())
            }
        }
    }

    // -- Directories ---------------------------------------------------

    /// Applies `f` to the directory block holding the entry at `loc` if
    /// the entry still names `expect`, then reseals the block.
    fn edit_entry(
        &mut self,
        loc: EntryLoc,
        expect: u32,
        f: impl FnOnce(&mut [u8], usize) -> Result<(), FormatError>,
    ) -> CheckResult<Result<(), String>> {
        let mut buf = self.img.read_block(loc.block)?;
        if get32(&buf, loc.offset) != expect {
            return Ok(Err("the entry changed while being repaired".into()));
        }
        if let Err(e) = f(&mut buf, loc.offset).and_then(|()| dir_seal(&mut buf)) {
            return Ok(Err(e.to_string()));
        }
        self.disk.write_block(loc.block, buf);
        Ok(Ok(()))
    }

    /// Removes the entry at `loc` by marking its record unused, which is
    /// valid anywhere but in "." and ".." (never cleared here).
    fn clear_entry(&mut self, loc: EntryLoc, expect: u32) -> CheckResult<Result<(), String>> {
        self.edit_entry(loc, expect, |b, off| {
            put32(b, off, 0);
            Ok(())
        })
    }

    /// Adds entry `name` -> `ino` to directory `dir`: into the first block
    /// with room, else into a new block appended to the directory.  Every
    /// block needed is allocated before anything is written.
    fn add_entry(
        &mut self,
        dir: u32,
        name: &[u8],
        ino: u32,
        ft: u8,
    ) -> CheckResult<Result<(), String>> {
        let inode = self.current_inode(dir)?;
        let bs = self.bs as u64;
        let nblocks = inode.size / bs;
        for index in 0..nblocks {
            let block = self.img.map_block(&inode, index)?;
            if block == 0 {
                continue;
            }
            let mut buf = self.img.read_block(block)?;
            match dir_insert(&mut buf, index == 0, name, ino, ft) {
                Ok(_) => {
                    self.disk.write_block(block, buf);
                    return Ok(Ok(()));
                }
                Err(FormatError::NoSpace) => {}
                Err(e) => return Ok(Err(format!("directory {dir}: {e}"))),
            }
        }
        let Some(path) = block_path(self.scan.sb.layout.block_log, nblocks) else {
            return Ok(Err(format!("directory {dir} cannot grow")));
        };
        let missing = self.missing_indirects(&inode, &path)?;
        let Some(mut fresh) = self.alloc_blocks(1 + missing) else {
            return Ok(Err("no free blocks left".into()));
        };
        let data_block = fresh.remove(0);
        let mut buf = vec![0u8; self.bs];
        let made =
            dir_init_empty(&mut buf).and_then(|()| dir_insert(&mut buf, false, name, ino, ft));
        if let Err(e) = made {
            return Ok(Err(format!("directory {dir}: {e}")));
        }
        self.disk.write_block(data_block, buf);
        self.map_append(dir, &inode, &path, data_block, fresh)?;
        let grown = self.sectors(1 + missing as u64);
        self.patch_inode(dir, |raw| {
            let size =
                u64::from_le_bytes(raw[I_SIZE_OFF..I_SIZE_OFF + 8].try_into().unwrap_or([0; 8]));
            let blocks = u64::from_le_bytes(
                raw[I_BLOCKS_OFF..I_BLOCKS_OFF + 8]
                    .try_into()
                    .unwrap_or([0; 8]),
            );
            put64(raw, I_SIZE_OFF, size + bs);
            put64(raw, I_BLOCKS_OFF, blocks + grown);
        })?;
        Ok(Ok(()))
    }

    /// How many indirect blocks must be created to map the file block at
    /// `path`.
    fn missing_indirects(
        &self,
        inode: &Inode,
        path: &rbfs_format::format::BlockPath,
    ) -> CheckResult<usize> {
        let mut ptr = inode.map[path.slot];
        for level in 0..path.depth {
            if ptr == 0 {
                return Ok(path.depth - level);
            }
            let buf = self.img.read_block(ptr)?;
            ptr = get32(&buf, path.idx[level] as usize * 4);
        }
        Ok(0)
    }

    /// Maps `block` at `path` in `dir`'s block map, creating missing
    /// indirect blocks from `fresh` (already allocated).
    fn map_append(
        &mut self,
        dir: u32,
        inode: &Inode,
        path: &rbfs_format::format::BlockPath,
        block: u32,
        mut fresh: Vec<u32>,
    ) -> CheckResult<()> {
        if path.depth == 0 {
            return self.patch_inode(dir, |raw| put32(raw, I_MAP_OFF + 4 * path.slot, block));
        }
        let mut ptr = inode.map[path.slot];
        if ptr == 0 {
            ptr = self.new_indirect(&mut fresh)?;
            let p = ptr;
            self.patch_inode(dir, |raw| put32(raw, I_MAP_OFF + 4 * path.slot, p))?;
        }
        for level in 0..path.depth {
            let mut buf = self.img.read_block(ptr)?;
            let i = path.idx[level] as usize;
            let child = if level + 1 == path.depth {
                block
            } else {
                match get32(&buf, i * 4) {
                    0 => self.new_indirect(&mut fresh)?,
                    c => c,
                }
            };
            if get32(&buf, i * 4) != child {
                indirect_set(&mut buf, i, child).map_err(fmt_err(ptr))?;
                indirect_seal(&mut buf).map_err(fmt_err(ptr))?;
                self.disk.write_block(ptr, buf);
            }
            ptr = child;
        }
        Ok(())
    }

    fn new_indirect(&mut self, fresh: &mut Vec<u32>) -> CheckResult<u32> {
        let b = fresh.pop().ok_or_else(|| {
            CheckError::Corrupt("internal error: indirect blocks miscounted".into())
        })?;
        let mut buf = vec![0u8; self.bs];
        indirect_init(&mut buf).map_err(fmt_err(b))?;
        self.disk.write_block(b, buf);
        Ok(b)
    }

    /// The lost+found directory to reconnect into: the root's entry of
    /// that name, or a new one (e2fsck creates it the same way, mode 0700).
    fn lost_found(&mut self) -> CheckResult<Result<u32, String>> {
        if let Some(lf) = &self.lost_found {
            return Ok(lf.clone());
        }
        let scan = self.scan;
        let lf = match scan.lost_found {
            Some(ino) if scan.dirs.contains_key(&ino) => {
                self.lf_names = scan.dirs[&ino]
                    .entries
                    .iter()
                    .map(|e| e.name.clone())
                    .collect();
                Ok(ino)
            }
            Some(_) => Err("/lost+found is not a directory".to_string()),
            None => self.create_lost_found()?,
        };
        self.lost_found = Some(lf.clone());
        Ok(lf)
    }

    fn create_lost_found(&mut self) -> CheckResult<Result<u32, String>> {
        let Some(ino) = self.alloc_inode() else {
            return Ok(Err("no free inode for /lost+found".into()));
        };
        let Some(block) = self.alloc_block() else {
            return Ok(Err("no free block for /lost+found".into()));
        };
        // The root's entry first: if the root cannot take it, the new
        // inode is never written and nothing refers to the block.
        if let Err(e) = self.add_entry(ROOT_INO, b"lost+found", ino, DT_DIR)? {
            return Ok(Err(e));
        }
        let mut buf = vec![0u8; self.bs];
        dir_init_first(&mut buf, ino, ROOT_INO).map_err(fmt_err(block))?;
        self.disk.write_block(block, buf);
        let now = now();
        let mut inode = Inode {
            mode: S_IFDIR | 0o700,
            links: 2,
            size: self.bs as u64,
            blocks: self.sectors(1),
            atime: now,
            mtime: now,
            ctime: now,
            crtime: now,
            ..Inode::default()
        };
        inode.map[0] = block;
        let mut raw = [0u8; INODE_SIZE];
        inode.encode(ino, &mut raw);
        self.patch_inode(ino, |slot| slot.copy_from_slice(&raw))?;
        self.lf_created = Some(ino);
        Ok(Ok(ino))
    }

    /// Connects `ino` to lost+found as "#ino" (with a suffix if that name
    /// is taken); a directory's ".." then names lost+found.
    fn reconnect(&mut self, ino: u32) -> CheckResult<Result<(), String>> {
        let lf = match self.lost_found()? {
            Ok(lf) => lf,
            Err(e) => return Ok(Err(e)),
        };
        let mode = self.scan.inodes[&ino].inode.mode;
        let ft = dt_from_mode(mode).unwrap_or(0);
        let mut name = format!("#{ino}").into_bytes();
        let mut n = 0;
        while self.lf_names.contains(&name) {
            n += 1;
            name = format!("#{ino}.{n}").into_bytes();
        }
        if let Err(e) = self.add_entry(lf, &name, ino, ft)? {
            return Ok(Err(e));
        }
        self.lf_names.insert(name);
        if ft == DT_DIR {
            self.lf_new_dirs += 1;
            if let Some((found, loc)) = self.scan.dirs.get(&ino).and_then(|d| d.dotdot) {
                if found != lf {
                    if let Err(e) = self.edit_entry(loc, found, |b, _| dir_set_dotdot(b, lf))? {
                        return Ok(Err(e));
                    }
                }
            }
        } else {
            self.reconnected.insert(ino);
        }
        Ok(Ok(()))
    }

    // -- Pass 4 ----------------------------------------------------------

    /// The link count inode `ino` must have once this round's repairs are
    /// done.
    fn final_links(&self, ino: u32) -> u32 {
        let mut links = self.scan.inodes[&ino].expected_links();
        if ino == ROOT_INO && self.lf_created.is_some() {
            links += 1;
        }
        if matches!(self.lost_found, Some(Ok(lf)) if lf == ino) {
            links += self.lf_new_dirs;
        }
        if self.reconnected.contains(&ino) {
            links += 1;
        }
        links
    }

    /// Reports the link counts the scan found wrong and, when repairs are
    /// on, sets every link count to what the repaired tree calls for
    /// (reconnections change the counts of lost+found, its new entries
    /// and the root).
    fn link_counts(&mut self, wrong: &[u32]) -> CheckResult<()> {
        let scan = self.scan;
        if !scan.dirs_complete {
            for &ino in wrong {
                let info = &scan.inodes[&ino];
                let text = format!(
                    "inode {ino}: link count {}, should be {}",
                    info.inode.links,
                    info.expected_links()
                );
                self.push(Pass::Four, text, Fix::Cannot(UNCERTAIN.into()));
            }
            return Ok(());
        }
        for (&ino, info) in &scan.inodes {
            if self.freed.contains(&ino) {
                continue;
            }
            let want = self.final_links(ino);
            let stored = info.inode.links;
            if stored == want {
                continue;
            }
            let report = wrong.contains(&ino) || self.reconnected.contains(&ino);
            if !self.apply {
                if report {
                    let text = format!("inode {ino}: link count {stored}, should be {want}");
                    self.push(Pass::Four, text, Fix::Declined("Fix"));
                }
                continue;
            }
            self.patch_inode(ino, |raw| put32(raw, I_LINKS_OFF, want))?;
            if report {
                let text = format!("inode {ino}: link count {stored}, should be {want}");
                self.push(Pass::Four, text, Fix::Done("Fix"));
            }
        }
        if let Some(lf) = self.lf_created {
            let want = 2 + self.lf_new_dirs;
            self.patch_inode(lf, |raw| put32(raw, I_LINKS_OFF, want))?;
        }
        Ok(())
    }

    // -- Pass 5 ----------------------------------------------------------

    /// Checks both bitmaps and the superblock free counts, and when
    /// repairs are on writes them as the repaired filesystem needs them.
    ///
    /// What is reported is measured against what was in use before this
    /// round's repairs, so that only inconsistencies found on disk are
    /// listed: blocks and inodes this round freed or allocated itself
    /// (truncations, cleared orphans, lost+found, clones) are accounted
    /// silently, as e2fsck's allocator does.  A block bitmap bit is only
    /// cleared when every block owner is known.
    fn pass5(&mut self) -> CheckResult<()> {
        let sb = self.scan.sb;
        for kind in [BitmapKind::Block, BitmapKind::Inode] {
            let (bitmap, bad) = self.img.read_bitmap(kind)?;
            let (before, after, stored, off) = match kind {
                BitmapKind::Block => (
                    self.scan.claims.used(),
                    self.claims.used().clone(),
                    sb.free_blocks,
                    SB_FREE_BLOCKS_OFF,
                ),
                BitmapKind::Inode => (
                    &self.scan.in_use,
                    self.in_use.clone(),
                    sb.free_inodes,
                    SB_FREE_INODES_OFF,
                ),
            };
            // Every inode slot is read, so the inode bitmap is always
            // known; blocks only when nothing hides an owner.
            let complete = kind == BitmapKind::Inode || self.scan.blocks_complete;
            for p in &bad {
                let fix = if complete {
                    self.attempt("Fix", |_| Ok(Ok(())))?
                } else {
                    Fix::Cannot(HIDDEN_BLOCKS.into())
                };
                self.push(Pass::Five, p.to_string(), fix);
            }
            for p in bitmap_differences(&bitmap, before) {
                let fix = match p {
                    Problem::BitmapDiff { in_use: false, .. } if !complete => {
                        Fix::Cannot(HIDDEN_BLOCKS.into())
                    }
                    _ => self.attempt("Fix", |_| Ok(Ok(())))?,
                };
                self.push(Pass::Five, p.to_string(), fix);
            }
            let (_, counted) = rebuild_bitmap(&bitmap, before, complete)?;
            if u64::from(stored) != counted {
                let p = Problem::FreeCount {
                    kind,
                    stored,
                    counted,
                };
                let fix = self.attempt("Fix", |_| Ok(Ok(())))?;
                self.push(Pass::Five, p.to_string(), fix);
            }
            if !self.apply {
                continue;
            }
            let (blocks, free) = rebuild_bitmap(&bitmap, &after, complete)?;
            for (k, buf) in blocks.into_iter().enumerate() {
                if let Some(buf) = buf {
                    self.disk.write_block(bitmap.start + k as u32, buf);
                }
            }
            if u64::from(stored) != free {
                let free = u32::try_from(free).unwrap_or(u32::MAX);
                self.patch_sb(|raw| put32(raw, off, free))?;
            }
        }
        Ok(())
    }

    /// Applies `f` to the 512 superblock bytes and recomputes the
    /// checksum; like inodes, only the fields repaired change.
    fn patch_sb(&self, f: impl FnOnce(&mut [u8])) -> CheckResult<()> {
        let mut block0 = self.img.read_block(0)?;
        patch_superblock(&mut block0[..SUPERBLOCK_SIZE], f);
        self.disk.write_block(0, block0);
        Ok(())
    }
}

/// The bitmap that marks `used` (plus, when `complete` is false, every
/// bit already set in a verified block, since an unseen owner may hold
/// it; a block that failed verification is then kept as it is).  Returns
/// the blocks that differ from the ones read (`None` for unchanged ones)
/// and the free count of the result.
fn rebuild_bitmap(
    bitmap: &Bitmap,
    used: &Bits,
    complete: bool,
) -> CheckResult<(Vec<Option<Vec<u8>>>, u64)> {
    let bpb = u64::from(bitmap.bits_per_block);
    let mut free = 0u64;
    let mut out = Vec::with_capacity(bitmap.blocks.len());
    for (k, old) in bitmap.blocks.iter().enumerate() {
        if !bitmap.ok[k] && !complete {
            free += u64::from(bitmap_count_free(old));
            out.push(None);
            continue;
        }
        let block = bitmap.start + k as u32;
        let mut buf = vec![0u8; old.len()];
        bitmap_init(&mut buf, k as u32, bitmap.total).map_err(fmt_err(block))?;
        let first = k as u64 * bpb;
        let last = (first + bpb).min(u64::from(bitmap.total));
        for item in first..last {
            if used.get(item) || (!complete && bitmap.test(item)) {
                bitmap_set(&mut buf, (item - first) as u32).map_err(fmt_err(block))?;
            }
        }
        bitmap_seal(&mut buf).map_err(fmt_err(block))?;
        free += u64::from(bitmap_count_free(&buf));
        out.push((buf != *old).then_some(buf));
    }
    Ok((out, free))
}

/// Applies `f` to a raw superblock and reseals its checksum.
pub fn patch_superblock(raw: &mut [u8], f: impl FnOnce(&mut [u8])) {
    f(raw);
    let crc = crc32c(&raw[..SB_CRC_OFF]);
    put32(raw, SB_CRC_OFF, crc);
}

/// First file block covered by inode map slot `slot`.
fn tree_first_index(block_log: u32, slot: usize) -> u64 {
    let depth = slot.saturating_sub(N_DIRECT - 1);
    if depth == 0 {
        return slot as u64;
    }
    let path = rbfs_format::format::BlockPath {
        depth,
        slot,
        idx: [0; rbfs_format::format::N_LEVELS],
    };
    rbfs_format::format::block_path_index(block_log, &path)
}

fn fmt_err(block: u32) -> impl FnOnce(FormatError) -> CheckError {
    move |err| CheckError::Format {
        what: format!("block {block}"),
        err,
    }
}
