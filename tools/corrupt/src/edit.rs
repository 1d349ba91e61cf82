// SPDX-License-Identifier: GPL-2.0

//! Staged edits of an image, structure by structure, and what happens to
//! the checksums of the structures they touch.
//!
//! A mutation changes bytes through an [`Editor`], which loads whole
//! blocks into memory and records every checksummed structure it touched
//! (a [`Seal`]).  [`Editor::finish`] then either reseals each of them
//! (the default: the damage passes the checksum and reaches the deeper
//! checks) or puts back the crc each had before (`--keep-crc`: the damage
//! is caught by the checksum).  A mutation of the crc itself is never
//! resealed.  Nothing reaches the device before [`commit`].

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rbfs_format::check::{Image, ImageRead};
use rbfs_format::format::{
    bitmap_seal, crc32c, dir_seal, indirect_seal, inode_crc, Superblock, DIR_TAIL_SIZE,
    INODE_SIZE, I_CRC_OFF, SB_CRC_OFF, SUPERBLOCK_SIZE,
};

use crate::rng::Rng;

/// An image opened through the shared checker, whatever it is read from.
pub type Img<'a> = Image<'a, dyn ImageRead + 'a>;

/// Bytes of a trailing crc32c (bitmap, indirect and directory blocks end
/// with one; the format module's `*_seal` functions write it).
const TRAILER_CRC: usize = 4;

/// Something an image can be written to as well as read from.
pub trait Device: ImageRead {
    /// Writes `data` at byte offset `off`.
    fn write_at(&mut self, off: u64, data: &[u8]) -> io::Result<()>;
    /// Makes the writes durable.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Device for Vec<u8> {
    fn write_at(&mut self, off: u64, data: &[u8]) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let dst = start
            .checked_add(data.len())
            .and_then(|end| self.get_mut(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

impl Device for File {
    fn write_at(&mut self, off: u64, data: &[u8]) -> io::Result<()> {
        self.write_all_at(data, off)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sync_all()
    }
}

/// A checksummed structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Seal {
    /// The superblock (first 512 bytes of block 0).
    Super,
    /// Inode slot `ino`.
    Inode(u32),
    /// Bitmap block at this block number.
    Bitmap(u32),
    /// Indirect block at this block number.
    Indirect(u32),
    /// Directory block at this block number.
    Dir(u32),
}

impl std::fmt::Display for Seal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seal::Super => write!(f, "superblock"),
            Seal::Inode(i) => write!(f, "inode {i}"),
            Seal::Bitmap(b) => write!(f, "bitmap block {b}"),
            Seal::Indirect(b) => write!(f, "indirect block {b}"),
            Seal::Dir(b) => write!(f, "directory block {b}"),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Whether the mutation leaves the crc to the editor (false for a
    /// mutation of the crc itself or of a slot it wipes).
    reseal: bool,
    /// The crc as stored before the mutation.
    orig_crc: [u8; TRAILER_CRC],
}

/// What a mutation will write.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Whole blocks to write, by block number; only blocks that changed.
    pub writes: Vec<(u32, Vec<u8>)>,
    /// What changed, one line per field.
    pub changes: Vec<String>,
    /// Structures whose crc no longer matches their contents.
    pub stale: Vec<Seal>,
    /// Structures resealed.
    pub resealed: Vec<Seal>,
    /// Block size the writes are in.
    pub block_size: usize,
}

impl Plan {
    /// Whether the plan changes nothing at all.
    pub fn is_noop(&self) -> bool {
        self.writes.is_empty()
    }

    /// One line saying what happened to the checksums.
    pub fn crc_summary(&self) -> String {
        let list = |v: &[Seal]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
        match (self.resealed.is_empty(), self.stale.is_empty()) {
            (true, true) => "crc: nothing to reseal".into(),
            (false, true) => format!("crc: resealed {}", list(&self.resealed)),
            (true, false) => format!("crc: left stale in {}", list(&self.stale)),
            (false, false) => format!(
                "crc: resealed {}; left stale in {}",
                list(&self.resealed),
                list(&self.stale)
            ),
        }
    }
}

/// Writes a plan to the device, block 0 last, then flushes.
pub fn commit<D: Device + ?Sized>(dev: &mut D, plan: &Plan) -> io::Result<()> {
    let bs = plan.block_size as u64;
    for (n, data) in plan.writes.iter().filter(|(n, _)| *n != 0) {
        dev.write_at(u64::from(*n) * bs, data)?;
    }
    if let Some((_, data)) = plan.writes.iter().find(|(n, _)| *n == 0) {
        dev.write_at(0, data)?;
    }
    dev.flush()
}

/// Staged changes to an image.
pub struct Editor<'i, 'a> {
    img: &'i Img<'a>,
    /// The superblock of the image as opened.
    pub sb: Superblock,
    /// Block size.
    pub bs: usize,
    blocks: BTreeMap<u32, Vec<u8>>,
    orig: BTreeMap<u32, Vec<u8>>,
    marks: BTreeMap<Seal, Mark>,
    changes: Vec<String>,
    /// Randomness for seeded mutations.
    pub rng: Rng,
}

/// Result of editor operations: a message on failure.
pub type EdResult<T> = Result<T, String>;

impl<'i, 'a> Editor<'i, 'a> {
    /// An editor over `img` with no changes yet.
    pub fn new(img: &'i Img<'a>, seed: u64) -> Self {
        Editor {
            img,
            sb: img.sb,
            bs: img.block_size(),
            blocks: BTreeMap::new(),
            orig: BTreeMap::new(),
            marks: BTreeMap::new(),
            changes: Vec::new(),
            rng: Rng::new(seed),
        }
    }

    /// Records a line describing a change.
    pub fn note(&mut self, s: impl Into<String>) {
        self.changes.push(s.into());
    }

    /// Block `n` as staged (loaded on first use).
    pub fn block(&mut self, n: u32) -> EdResult<&mut Vec<u8>> {
        if !self.blocks.contains_key(&n) {
            let data = self
                .img
                .read_block(n)
                .map_err(|e| format!("reading block {n}: {e}"))?;
            self.orig.insert(n, data.clone());
            self.blocks.insert(n, data);
        }
        Ok(self.blocks.get_mut(&n).expect("just inserted"))
    }

    /// Where the crc of `s` lives: (block, byte offset).
    fn crc_loc(&self, s: Seal) -> EdResult<(u32, usize)> {
        Ok(match s {
            Seal::Super => (0, SB_CRC_OFF),
            Seal::Inode(ino) => {
                let (b, off) = self
                    .sb
                    .inode_location(ino)
                    .map_err(|e| format!("inode {ino}: {e}"))?;
                (b, off + I_CRC_OFF)
            }
            Seal::Bitmap(b) | Seal::Indirect(b) | Seal::Dir(b) => (b, self.bs - TRAILER_CRC),
        })
    }

    /// Records that structure `s` is being changed; `reseal` is false when
    /// the mutation itself decides its crc.  Call before changing it.
    pub fn mark(&mut self, s: Seal, reseal: bool) -> EdResult<()> {
        if let Some(m) = self.marks.get_mut(&s) {
            m.reseal &= reseal;
            return Ok(());
        }
        let (b, off) = self.crc_loc(s)?;
        let buf = self.block(b)?;
        let mut orig_crc = [0u8; TRAILER_CRC];
        orig_crc.copy_from_slice(&buf[off..off + TRAILER_CRC]);
        self.marks.insert(s, Mark { reseal, orig_crc });
        Ok(())
    }

    /// Byte range of structure `s`: (block, start, end).
    fn extent(&self, s: Seal) -> EdResult<(u32, usize, usize)> {
        Ok(match s {
            Seal::Super => (0, 0, SUPERBLOCK_SIZE),
            Seal::Inode(ino) => {
                let (b, off) = self
                    .sb
                    .inode_location(ino)
                    .map_err(|e| format!("inode {ino}: {e}"))?;
                (b, off, off + INODE_SIZE)
            }
            Seal::Bitmap(b) | Seal::Indirect(b) | Seal::Dir(b) => (b, 0, self.bs),
        })
    }

    /// The bytes of structure `s`, staged, after marking it.
    pub fn bytes(&mut self, s: Seal, reseal: bool) -> EdResult<&mut [u8]> {
        self.mark(s, reseal)?;
        let (b, start, end) = self.extent(s)?;
        Ok(&mut self.block(b)?[start..end])
    }

    /// Reads a little-endian integer of `len` bytes (1..=8) at `off` of
    /// structure `s`.
    pub fn get(&mut self, s: Seal, off: usize, len: usize) -> EdResult<u64> {
        let (b, start, _) = self.extent(s)?;
        let buf = self.block(b)?;
        let mut v = [0u8; 8];
        v[..len].copy_from_slice(&buf[start + off..start + off + len]);
        Ok(u64::from_le_bytes(v))
    }

    /// Sets the little-endian integer of `len` bytes at `off` of structure
    /// `s` to `f(old)`, noting `name: old -> new`.
    pub fn set(
        &mut self,
        s: Seal,
        off: usize,
        len: usize,
        name: &str,
        f: impl FnOnce(u64) -> u64,
    ) -> EdResult<()> {
        let old = self.get(s, off, len)?;
        let new = f(old);
        let bytes = self.bytes(s, true)?;
        bytes[off..off + len].copy_from_slice(&new.to_le_bytes()[..len]);
        self.note(format!("{s}: {name} {old} -> {new}"));
        Ok(())
    }

    /// Overwrites bytes at `off` of structure `s`.
    pub fn put(&mut self, s: Seal, off: usize, data: &[u8], name: &str) -> EdResult<()> {
        let bytes = self.bytes(s, true)?;
        let old = bytes[off..off + data.len()].to_vec();
        bytes[off..off + data.len()].copy_from_slice(data);
        self.note(format!("{s}: {name} {} -> {}", hex(&old), hex(data)));
        Ok(())
    }

    /// Flips bit `bit` of the crc of structure `s` (never resealed).
    pub fn flip_crc(&mut self, s: Seal, bit: u32) -> EdResult<()> {
        self.mark(s, false)?;
        let (b, off) = self.crc_loc(s)?;
        let buf = self.block(b)?;
        buf[off + (bit / 8) as usize % TRAILER_CRC] ^= 1 << (bit % 8);
        self.note(format!("{s}: crc bit {bit} flipped"));
        Ok(())
    }

    /// Whether the stored crc of `s` matches the staged contents.
    fn crc_ok(&mut self, s: Seal) -> EdResult<bool> {
        let (b, start, end) = self.extent(s)?;
        let bs = self.bs;
        let buf = self.block(b)?;
        let mut copy = buf[start..end].to_vec();
        reseal_bytes(s, &mut copy, bs)?;
        Ok(copy == buf[start..end])
    }

    /// Applies the crc policy to every touched structure and returns what
    /// to write.  `keep_crc` puts back the crc each structure had before.
    pub fn finish(mut self, keep_crc: bool) -> EdResult<Plan> {
        let mut plan = Plan {
            block_size: self.bs,
            ..Plan::default()
        };
        let marks: Vec<(Seal, Mark)> = self.marks.iter().map(|(s, m)| (*s, *m)).collect();
        for (s, m) in marks {
            if m.reseal {
                let (b, start, end) = self.extent(s)?;
                let bs = self.bs;
                if keep_crc {
                    let (cb, off) = self.crc_loc(s)?;
                    self.block(cb)?[off..off + TRAILER_CRC].copy_from_slice(&m.orig_crc);
                } else {
                    let buf = self.block(b)?;
                    let mut copy = buf[start..end].to_vec();
                    reseal_bytes(s, &mut copy, bs)?;
                    buf[start..end].copy_from_slice(&copy);
                    plan.resealed.push(s);
                }
            }
            if !self.crc_ok(s)? {
                plan.stale.push(s);
            }
        }
        // A structure resealed but unchanged is not worth naming.
        let changed: Vec<u32> = self
            .blocks
            .iter()
            .filter(|(n, data)| self.orig.get(n) != Some(data))
            .map(|(n, _)| *n)
            .collect();
        plan.resealed.retain(|s| {
            let b = match s {
                Seal::Super => 0,
                Seal::Inode(_) => self.extent(*s).map(|e| e.0).unwrap_or(0),
                Seal::Bitmap(b) | Seal::Indirect(b) | Seal::Dir(b) => *b,
            };
            changed.contains(&b)
        });
        plan.writes = changed
            .iter()
            .map(|n| (*n, self.blocks[n].clone()))
            .collect();
        plan.changes = std::mem::take(&mut self.changes);
        Ok(plan)
    }
}

/// Recomputes the crc of structure `s` held in `buf` (exactly its bytes)
/// with the format module's sealers.  A directory block's tail fields are
/// kept as they are (`dir_seal` rewrites them), so a damaged tail stays
/// damaged; an all-zero inode slot is free and has no crc.
fn reseal_bytes(s: Seal, buf: &mut [u8], bs: usize) -> EdResult<()> {
    let err = |e: rbfs_format::format::FormatError| format!("{s}: {e}");
    match s {
        Seal::Super => {
            let crc = crc32c(&buf[..SB_CRC_OFF]);
            buf[SB_CRC_OFF..SB_CRC_OFF + 4].copy_from_slice(&crc.to_le_bytes());
        }
        Seal::Inode(ino) => {
            if buf.iter().any(|&b| b != 0) {
                let crc = inode_crc(buf, ino);
                buf[I_CRC_OFF..I_CRC_OFF + 4].copy_from_slice(&crc.to_le_bytes());
            }
        }
        Seal::Bitmap(_) => bitmap_seal(buf).map_err(err)?,
        Seal::Indirect(_) => indirect_seal(buf).map_err(err)?,
        Seal::Dir(_) => {
            let t = bs - DIR_TAIL_SIZE;
            let tail: Vec<u8> = buf[t..bs - TRAILER_CRC].to_vec();
            dir_seal(buf).map_err(err)?;
            buf[t..bs - TRAILER_CRC].copy_from_slice(&tail);
        }
    }
    Ok(())
}

/// Bytes as hex, for change notes.
pub fn hex(b: &[u8]) -> String {
    if b.len() > 16 {
        let head: String = b[..16].iter().map(|x| format!("{x:02x}")).collect();
        return format!("{head}..({} bytes)", b.len());
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
