// SPDX-License-Identifier: GPL-2.0

//! Read-only walker and consistency checker over an rbfs image.
//!
//! It reads everything through the parsers of the shared format module, so
//! a test that builds an image with mkfs and checks it here tests the
//! writers against the same readers the kernel uses.  [`Image`] offers
//! lookups and file reads; [`Image::scan`] runs the checks of fsck.rbfs's
//! passes 1 to 4 and returns every finding as a structured [`Problem`]
//! (what fsck needs to plan repairs); [`Image::check`] is the same check
//! summarised as text, with pass 5 (bitmaps and free counts) against the
//! image as it is.  Nothing here ever writes.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::io;

use crate::format::{
    bitmap_bits_per_block, bitmap_count_free, bitmap_test, bitmap_verify, block_path,
    blocks_at_depth, crc32c, dt_from_mode, inodes_per_block, BlockPath, DirBlock, FormatError,
    IndirectBlock, Inode, Layout, Superblock, DOTDOT_OFF, INODE_SIZE, N_DIRECT, N_LEVELS, ROOT_INO,
    SB_CRC_OFF, SB_FREE_BLOCKS_OFF, SB_FREE_INODES_OFF, SB_STATE_OFF, SECTOR_SIZE, STATE_CLEAN,
    STATE_DIRTY, SUPERBLOCK_SIZE, S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG,
    S_IFSOCK,
};

/// Something an image can be read from: a byte slice or a file.
pub trait ImageRead {
    /// Fills `buf` from byte offset `off`; short images are an error.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
    /// Size of the image in bytes.
    fn size(&self) -> io::Result<u64>;
}

impl ImageRead for [u8] {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = start
            .checked_add(buf.len())
            .and_then(|end| self.get(start..end))
            .ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl ImageRead for Vec<u8> {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.as_slice().read_at(off, buf)
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len() as u64)
    }
}

impl ImageRead for std::fs::File {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        std::os::unix::fs::FileExt::read_exact_at(self, buf, off)
    }

    fn size(&self) -> io::Result<u64> {
        use std::io::Seek;
        let mut f = self;
        f.seek(io::SeekFrom::End(0))
    }
}

/// Why the walker had to stop.
#[derive(Debug)]
pub enum CheckError {
    /// Reading the image failed.
    Io(io::Error),
    /// A structure failed to parse; says which.
    Format {
        /// What was being read, e.g. "superblock" or "inode 12".
        what: String,
        /// The parser's answer.
        err: FormatError,
    },
    /// The image parses but is inconsistent.
    Corrupt(String),
}

impl CheckError {
    /// The format error behind this error, if it is one.
    pub fn format_error(&self) -> Option<FormatError> {
        match self {
            CheckError::Format { err, .. } => Some(*err),
            _ => None,
        }
    }
}

impl fmt::Display for CheckError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckError::Io(e) => write!(f, "I/O error: {e}"),
            CheckError::Format { what, err } => write!(f, "{what}: {err}"),
            CheckError::Corrupt(s) => f.write_str(s),
        }
    }
}

impl std::error::Error for CheckError {}

impl From<io::Error> for CheckError {
    fn from(e: io::Error) -> Self {
        CheckError::Io(e)
    }
}

/// Result of the walker's operations.
pub type CheckResult<T> = Result<T, CheckError>;

fn ferr(what: impl Into<String>) -> impl FnOnce(FormatError) -> CheckError {
    let what = what.into();
    move |err| CheckError::Format { what, err }
}

fn field(buf: &[u8; SUPERBLOCK_SIZE], off: usize) -> u32 {
    u32::from_le_bytes([buf[off], buf[off + 1], buf[off + 2], buf[off + 3]])
}

/// Parses a superblock (already known to have a good checksum) as if its
/// free counts and state were valid, then puts the stored values back.
/// Parsing a copy with those fields replaced and the checksum recomputed
/// reuses every other validation of the format module unchanged.
fn parse_with_bad_counts(raw: &[u8; SUPERBLOCK_SIZE]) -> Option<Superblock> {
    let mut copy = *raw;
    copy[SB_FREE_BLOCKS_OFF..SB_FREE_BLOCKS_OFF + 4].fill(0);
    copy[SB_FREE_INODES_OFF..SB_FREE_INODES_OFF + 4].fill(0);
    copy[SB_STATE_OFF..SB_STATE_OFF + 4].copy_from_slice(&STATE_DIRTY.to_le_bytes());
    let crc = crc32c(&copy[..SB_CRC_OFF]);
    copy[SB_CRC_OFF..].copy_from_slice(&crc.to_le_bytes());
    let mut sb = Superblock::parse(&copy).ok()?;
    sb.free_blocks = field(raw, SB_FREE_BLOCKS_OFF);
    sb.free_inodes = field(raw, SB_FREE_INODES_OFF);
    sb.state = field(raw, SB_STATE_OFF);
    Some(sb)
}

/// One directory entry as returned by [`Image::read_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name.
    pub name: Vec<u8>,
    /// Inode number.
    pub ino: u32,
    /// `DT_*` type stored in the entry.
    pub file_type: u8,
    /// readdir position: block index * block size + offset in block.
    pub pos: u64,
}

/// What [`Image::check`] found.
#[derive(Debug, Default, Clone)]
pub struct CheckReport {
    /// Every inconsistency, one line each; empty for a clean image.
    pub problems: Vec<String>,
    /// Regular files seen (each inode once).
    pub files: u32,
    /// Directories seen, the root included.
    pub dirs: u32,
    /// Symbolic links seen.
    pub symlinks: u32,
    /// Device nodes, FIFOs and sockets seen.
    pub specials: u32,
    /// Blocks in use: metadata, file data, indirect and directory blocks.
    pub used_blocks: u64,
    /// Inodes in use.
    pub used_inodes: u32,
}

/// A read-only view of an image with a validated superblock.
pub struct Image<'a, R: ImageRead + ?Sized> {
    dev: &'a R,
    /// The parsed superblock.
    pub sb: Superblock,
}

impl<'a, R: ImageRead + ?Sized> Image<'a, R> {
    /// Parses the superblock and checks the image is large enough.
    pub fn open(dev: &'a R) -> CheckResult<Self> {
        let mut buf = [0u8; SUPERBLOCK_SIZE];
        dev.read_at(0, &mut buf)?;
        let sb = Superblock::parse(&buf).map_err(ferr("superblock"))?;
        sb.check_device_size(dev.size()?)
            .map_err(ferr("superblock"))?;
        Ok(Image { dev, sb })
    }

    /// Like [`Image::open`], but also accepts a superblock whose checksum
    /// is good and whose only invalid fields are the free counts or the
    /// state: those are exactly what fsck recomputes, so they must not
    /// stop it.  The returned superblock holds the stored values as they
    /// are (a free count may exceed its total; the state may be neither
    /// clean nor dirty).  Anything else wrong is an error, as for `open`.
    pub fn open_tolerant(dev: &'a R) -> CheckResult<Self> {
        let mut buf = [0u8; SUPERBLOCK_SIZE];
        dev.read_at(0, &mut buf)?;
        let sb = match Superblock::parse(&buf) {
            Ok(sb) => sb,
            Err(err @ (FormatError::BadGeometry(_) | FormatError::BadField(_))) => {
                parse_with_bad_counts(&buf).ok_or(CheckError::Format {
                    what: "superblock".into(),
                    err,
                })?
            }
            Err(err) => return Err(ferr("superblock")(err)),
        };
        sb.check_device_size(dev.size()?)
            .map_err(ferr("superblock"))?;
        Ok(Image { dev, sb })
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        self.sb.block_size()
    }

    /// Reads block `n`.
    pub fn read_block(&self, n: u32) -> CheckResult<Vec<u8>> {
        if n >= self.sb.layout.blocks_count {
            return Err(CheckError::Corrupt(format!(
                "block {n} beyond the filesystem"
            )));
        }
        let mut buf = vec![0u8; self.block_size()];
        self.dev
            .read_at(u64::from(n) * self.block_size() as u64, &mut buf)?;
        Ok(buf)
    }

    /// Reads inode slot `ino`: `None` when free.
    pub fn inode_slot(&self, ino: u32) -> CheckResult<Option<Inode>> {
        let (block, off) = self
            .sb
            .inode_location(ino)
            .map_err(ferr(format!("inode {ino}")))?;
        let mut buf = [0u8; INODE_SIZE];
        let pos = u64::from(block) * self.block_size() as u64 + off as u64;
        self.dev.read_at(pos, &mut buf)?;
        Inode::parse(&buf, ino, &self.sb).map_err(ferr(format!("inode {ino}")))
    }

    /// Reads in-use inode `ino`.
    pub fn inode(&self, ino: u32) -> CheckResult<Inode> {
        self.inode_slot(ino)?
            .ok_or_else(|| CheckError::Corrupt(format!("inode {ino} is free")))
    }

    /// Disk block of file block `index` (0 for a hole), verifying every
    /// indirect block on the way.
    pub fn map_block(&self, inode: &Inode, index: u64) -> CheckResult<u32> {
        let path = block_path(self.sb.layout.block_log, index)
            .ok_or_else(|| CheckError::Corrupt(format!("file block {index} beyond the map")))?;
        let mut ptr = inode.map.get(path.slot).copied().unwrap_or(0);
        for level in 0..path.depth {
            if ptr == 0 {
                return Ok(0);
            }
            let buf = self.read_block(ptr)?;
            let ind = IndirectBlock::parse(&buf, &self.sb)
                .map_err(ferr(format!("indirect block {ptr}")))?;
            ptr = ind.get(path.idx[level] as usize);
        }
        Ok(ptr)
    }

    /// Number of file blocks covered by the inode's size.
    fn size_blocks(&self, inode: &Inode) -> u64 {
        inode.size.div_ceil(self.block_size() as u64)
    }

    /// Reads a regular file's (or slow symlink's) contents; holes read as
    /// zeros.
    pub fn read_file(&self, inode: &Inode) -> CheckResult<Vec<u8>> {
        let bs = self.block_size();
        let mut out = Vec::with_capacity(inode.size as usize);
        for index in 0..self.size_blocks(inode) {
            let ptr = self.map_block(inode, index)?;
            let data = if ptr == 0 {
                vec![0u8; bs]
            } else {
                self.read_block(ptr)?
            };
            let want = (inode.size as usize - out.len()).min(bs);
            out.extend_from_slice(&data[..want]);
        }
        Ok(out)
    }

    /// Reads a symlink's target.
    pub fn read_link(&self, inode: &Inode) -> CheckResult<Vec<u8>> {
        if !inode.is_symlink() {
            return Err(CheckError::Corrupt("not a symlink".into()));
        }
        if inode.is_fast_symlink() {
            return Ok(inode.inline_data()[..inode.size as usize].to_vec());
        }
        self.read_file(inode)
    }

    /// Lists a directory, "." and ".." included, in readdir order.
    pub fn read_dir(&self, inode: &Inode) -> CheckResult<Vec<Entry>> {
        if !inode.is_dir() {
            return Err(CheckError::Corrupt("not a directory".into()));
        }
        let bs = self.block_size() as u64;
        let mut out = Vec::new();
        for index in 0..self.size_blocks(inode) {
            let ptr = self.map_block(inode, index)?;
            if ptr == 0 {
                return Err(CheckError::Corrupt(format!(
                    "hole at directory block {index}"
                )));
            }
            let buf = self.read_block(ptr)?;
            let what = format!("directory block {ptr}");
            let blk = DirBlock::parse(&buf, index == 0).map_err(ferr(what.clone()))?;
            for e in blk.iter() {
                let e = e.map_err(ferr(what.clone()))?;
                out.push(Entry {
                    name: e.name.to_vec(),
                    ino: e.ino,
                    file_type: e.file_type,
                    pos: index * bs + e.offset as u64,
                });
            }
        }
        Ok(out)
    }

    /// Resolves a '/'-separated path from the root (no symlink following).
    pub fn lookup(&self, path: &[u8]) -> CheckResult<u32> {
        let mut ino = ROOT_INO;
        for comp in path.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            let dir = self.inode(ino)?;
            let found = self.read_dir(&dir)?.into_iter().find(|e| e.name == comp);
            ino = match found {
                Some(e) => e.ino,
                None => {
                    let name = String::from_utf8_lossy(comp);
                    return Err(CheckError::Corrupt(format!("{name}: not found")));
                }
            };
        }
        Ok(ino)
    }

    /// Walks the whole filesystem and cross-checks it: every in-use inode
    /// parses; entry types match inodes; link counts equal the number of
    /// entries naming each inode; no block is used twice; each inode's
    /// block count matches its blocks; both bitmaps mark exactly what is in
    /// use; and the superblock free counts match the bitmaps.
    ///
    /// A structure that fails to parse (inode, indirect block, directory
    /// block, bitmap block) is returned as the error; every other
    /// inconsistency is a line of [`CheckReport::problems`].  [`Image::scan`]
    /// gives the same findings in structured form without stopping.
    pub fn check(&self) -> CheckResult<CheckReport> {
        let scan = self.scan()?;
        if let Some(e) = scan.problems.iter().find_map(Problem::as_error) {
            return Err(e);
        }
        let mut problems: Vec<String> = scan.problems.iter().map(|p| p.to_string()).collect();
        for kind in [BitmapKind::Block, BitmapKind::Inode] {
            let (bitmap, bad) = self.read_bitmap(kind)?;
            if let Some(e) = bad.iter().find_map(Problem::as_error) {
                return Err(e);
            }
            let used = match kind {
                BitmapKind::Block => scan.claims.used(),
                BitmapKind::Inode => &scan.in_use,
            };
            let diffs = bitmap_differences(&bitmap, used);
            problems.extend(diffs.iter().map(|p| p.to_string()));
            let stored = match kind {
                BitmapKind::Block => scan.sb.free_blocks,
                BitmapKind::Inode => scan.sb.free_inodes,
            };
            let free = bitmap.free();
            if u64::from(stored) != free {
                problems.push(
                    Problem::FreeCount {
                        kind,
                        stored,
                        counted: free,
                    }
                    .to_string(),
                );
            }
        }
        Ok(CheckReport {
            problems,
            files: scan.files,
            dirs: scan.dirs_seen,
            symlinks: scan.symlinks,
            specials: scan.specials,
            used_blocks: scan.claims.count(),
            used_inodes: scan.in_use.count_ones() as u32,
        })
    }

    /// Runs every check of passes 1 to 4 (see [`Scan`]) and returns what it
    /// found.  Never stops at a damaged structure: it is reported and the
    /// scan goes on, marking what it could not see as incomplete.  Only an
    /// I/O error ends it.
    pub fn scan(&self) -> CheckResult<Scan> {
        let mut s = Scan::new(self.sb);
        if self.sb.state != STATE_CLEAN && self.sb.state != STATE_DIRTY {
            s.problems.push(Problem::BadState {
                state: self.sb.state,
            });
        }
        s.pass1(self)?;
        s.pass1b(self)?;
        s.pass2(self)?;
        s.pass3();
        s.pass4();
        Ok(s)
    }

    /// Walks the block map of `inode`: every non-zero pointer, an indirect
    /// block before the pointers it holds, with its depth (0 for a data
    /// block), the first file block it covers and where the pointer is
    /// stored.  An indirect block that fails to parse is reported with
    /// [`MapItem::Bad`] after its own [`MapItem::Block`] and not descended
    /// into.  Only I/O errors are returned.
    pub fn walk_map(&self, inode: &Inode, f: &mut dyn FnMut(MapItem)) -> CheckResult<()> {
        if !inode.has_block_map() {
            return Ok(());
        }
        for (slot, &ptr) in inode.map.iter().enumerate() {
            if ptr == 0 {
                continue;
            }
            let depth = slot.saturating_sub(N_DIRECT - 1);
            let index = if depth == 0 {
                slot as u64
            } else {
                first_index(self, depth, slot)
            };
            self.walk_tree(ptr, depth, index, PtrLoc::Inode(slot), f)?;
        }
        Ok(())
    }

    fn walk_tree(
        &self,
        ptr: u32,
        depth: usize,
        index: u64,
        loc: PtrLoc,
        f: &mut dyn FnMut(MapItem),
    ) -> CheckResult<()> {
        f(MapItem::Block {
            block: ptr,
            depth,
            index,
            loc,
        });
        if depth == 0 {
            return Ok(());
        }
        let buf = self.read_block(ptr)?;
        let ind = match IndirectBlock::parse(&buf, &self.sb) {
            Ok(ind) => ind,
            Err(err) => {
                f(MapItem::Bad { block: ptr, err });
                return Ok(());
            }
        };
        let span = blocks_at_depth(self.sb.layout.block_log, depth - 1);
        for i in 0..ind.len() {
            let child = ind.get(i);
            if child != 0 {
                let loc = PtrLoc::Indirect {
                    block: ptr,
                    index: i,
                };
                self.walk_tree(child, depth - 1, index + i as u64 * span, loc, f)?;
            }
        }
        Ok(())
    }

    /// Reads every block of one bitmap and verifies each (checksum and
    /// padding bits); a block that fails is reported as
    /// [`Problem::BadBitmapBlock`] and kept as read.
    pub fn read_bitmap(&self, kind: BitmapKind) -> CheckResult<(Bitmap, Vec<Problem>)> {
        let l = self.sb.layout;
        let (start, count, total) = match kind {
            BitmapKind::Block => (l.bbitmap_start, l.bbitmap_blocks, l.blocks_count),
            BitmapKind::Inode => (l.ibitmap_start, l.ibitmap_blocks, l.inodes_count),
        };
        let mut bitmap = Bitmap {
            kind,
            start,
            total,
            bits_per_block: bitmap_bits_per_block(l.block_log),
            blocks: Vec::with_capacity(count as usize),
            ok: Vec::with_capacity(count as usize),
        };
        let mut problems = Vec::new();
        for k in 0..count {
            let buf = self.read_block(start + k)?;
            let ok = match bitmap_verify(&buf, k, total) {
                Ok(()) => true,
                Err(err) => {
                    problems.push(Problem::BadBitmapBlock {
                        kind,
                        index: k,
                        err,
                    });
                    false
                }
            };
            bitmap.blocks.push(buf);
            bitmap.ok.push(ok);
        }
        Ok((bitmap, problems))
    }
}

/// Where a block pointer is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PtrLoc {
    /// Slot of the inode's own block map (0..16).
    Inode(usize),
    /// Pointer `index` of indirect block `block`.
    Indirect {
        /// The indirect block holding the pointer.
        block: u32,
        /// Slot within it.
        index: usize,
    },
}

/// One step of [`Image::walk_map`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapItem {
    /// A non-zero pointer.
    Block {
        /// The block pointed to.
        block: u32,
        /// 0 for a data block, else the depth of the indirect block.
        depth: usize,
        /// First file block it covers (the file block, for a data block).
        index: u64,
        /// Where the pointer is stored.
        loc: PtrLoc,
    },
    /// The indirect block just visited failed to parse; nothing below it
    /// was walked.
    Bad {
        /// The indirect block.
        block: u32,
        /// Why it failed.
        err: FormatError,
    },
}

/// A set of numbered items (blocks, or inodes as `ino - 1`), one bit each,
/// so that even a large filesystem costs one bit per block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    len: u64,
}

impl Bits {
    /// An empty set over items `0..len`.
    pub fn new(len: u64) -> Self {
        Bits {
            words: vec![0; len.div_ceil(64) as usize],
            len,
        }
    }

    /// Number of items the set covers.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the set covers no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether item `i` is in the set (false beyond the end).
    pub fn get(&self, i: u64) -> bool {
        i < self.len && self.words[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Adds (`true`) or removes item `i`; ignored beyond the end.
    pub fn set(&mut self, i: u64, value: bool) {
        if i < self.len {
            let w = &mut self.words[(i / 64) as usize];
            if value {
                *w |= 1 << (i % 64);
            } else {
                *w &= !(1 << (i % 64));
            }
        }
    }

    /// Number of items in the set.
    pub fn count_ones(&self) -> u64 {
        self.words.iter().map(|w| u64::from(w.count_ones())).sum()
    }
}

/// References to every block: the metadata regions and each pointer of
/// every in-use inode's block map.  A bit per block plus a map for the rare
/// blocks referenced more than once, so that releasing one reference of a
/// shared block keeps it in use.
#[derive(Debug, Clone)]
pub struct Claims {
    used: Bits,
    extra: HashMap<u32, u32>,
}

impl Claims {
    /// Claims for a filesystem with `layout`: block 0, the bitmaps and the
    /// inode table are in use.
    pub fn new(layout: &Layout) -> Self {
        let mut used = Bits::new(u64::from(layout.blocks_count));
        for b in 0..layout.data_start {
            used.set(u64::from(b), true);
        }
        Claims {
            used,
            extra: HashMap::new(),
        }
    }

    /// Adds a reference to `block`; returns false if it already had one.
    pub fn claim(&mut self, block: u32) -> bool {
        if self.used.get(u64::from(block)) {
            *self.extra.entry(block).or_insert(0) += 1;
            false
        } else {
            self.used.set(u64::from(block), true);
            true
        }
    }

    /// Drops one reference to `block`.
    pub fn release(&mut self, block: u32) {
        match self.extra.get_mut(&block) {
            Some(n) if *n > 1 => *n -= 1,
            Some(_) => {
                self.extra.remove(&block);
            }
            None => self.used.set(u64::from(block), false),
        }
    }

    /// Number of references to `block`.
    pub fn refs(&self, block: u32) -> u32 {
        if self.used.get(u64::from(block)) {
            1 + self.extra.get(&block).copied().unwrap_or(0)
        } else {
            0
        }
    }

    /// Whether `block` has any reference.
    pub fn is_used(&self, block: u32) -> bool {
        self.used.get(u64::from(block))
    }

    /// The blocks with at least one reference.
    pub fn used(&self) -> &Bits {
        &self.used
    }

    /// Number of blocks in use.
    pub fn count(&self) -> u64 {
        self.used.count_ones()
    }
}

/// Which bitmap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BitmapKind {
    /// The free-block bitmap (bit n = block n).
    Block,
    /// The free-inode bitmap (bit n = inode n + 1).
    Inode,
}

impl BitmapKind {
    fn name(self) -> &'static str {
        match self {
            BitmapKind::Block => "block",
            BitmapKind::Inode => "inode",
        }
    }
}

/// One bitmap as read from the image.
#[derive(Debug, Clone)]
pub struct Bitmap {
    /// Which bitmap.
    pub kind: BitmapKind,
    /// First block of its region.
    pub start: u32,
    /// Items it covers (blocks or inodes).
    pub total: u32,
    /// Items per bitmap block.
    pub bits_per_block: u32,
    /// The blocks, in order.
    pub blocks: Vec<Vec<u8>>,
    /// Whether each block verified (checksum and padding bits).
    pub ok: Vec<bool>,
}

impl Bitmap {
    /// Whether item `i` (block number, or inode number - 1) is marked in
    /// use.
    pub fn test(&self, i: u64) -> bool {
        let bpb = u64::from(self.bits_per_block.max(1));
        self.blocks
            .get((i / bpb) as usize)
            .is_none_or(|b| bitmap_test(b, (i % bpb) as u32))
    }

    /// Number of items marked free (padding bits are always set).
    pub fn free(&self) -> u64 {
        self.blocks
            .iter()
            .map(|b| u64::from(bitmap_count_free(b)))
            .sum()
    }
}

/// Compares a bitmap with the set of items really in use and returns one
/// [`Problem::BitmapDiff`] per run of consecutive items that differ the
/// same way.  Blocks of the bitmap that failed verification are skipped:
/// they are reported on their own.
pub fn bitmap_differences(bitmap: &Bitmap, used: &Bits) -> Vec<Problem> {
    let bpb = u64::from(bitmap.bits_per_block.max(1));
    let base = match bitmap.kind {
        BitmapKind::Block => 0,
        BitmapKind::Inode => 1,
    };
    let mut out = Vec::new();
    let mut run: Option<(u64, u64, bool)> = None;
    for i in 0..u64::from(bitmap.total) {
        let k = (i / bpb) as usize;
        let differs = bitmap.ok.get(k).copied().unwrap_or(false) && bitmap.test(i) != used.get(i);
        let in_use = used.get(i);
        run = match (run, differs) {
            (Some((first, last, kind)), true) if last + 1 == i && kind == in_use => {
                Some((first, i, kind))
            }
            (prev, d) => {
                if let Some((first, last, in_use)) = prev {
                    out.push(Problem::BitmapDiff {
                        kind: bitmap.kind,
                        first: first + base,
                        last: last + base,
                        in_use,
                    });
                }
                d.then_some((i, i, in_use))
            }
        };
    }
    if let Some((first, last, in_use)) = run {
        out.push(Problem::BitmapDiff {
            kind: bitmap.kind,
            first: first + base,
            last: last + base,
            in_use,
        });
    }
    out
}

/// Where a directory entry is: its directory block and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryLoc {
    /// Disk block of the directory block.
    pub block: u32,
    /// Index of that block in the directory (0 = first block).
    pub index: u64,
    /// Byte offset of the record in the block.
    pub offset: usize,
}

/// One directory entry other than "." and "..", naming an inode number in
/// range that is in use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirRef {
    /// The name.
    pub name: Vec<u8>,
    /// Inode it names.
    pub ino: u32,
    /// `DT_*` type stored in the entry.
    pub file_type: u8,
    /// Where it is.
    pub loc: EntryLoc,
}

/// What pass 2 read from one directory.
#[derive(Debug, Clone, Default)]
pub struct DirInfo {
    /// Entries naming in-use inodes, "." and ".." excluded, in block order.
    pub entries: Vec<DirRef>,
    /// Inode and location of ".", if the first block was readable.
    pub dot: Option<(u32, EntryLoc)>,
    /// Inode and location of "..", if the first block was readable.
    pub dotdot: Option<(u32, EntryLoc)>,
    /// Whether every block was read and every entry parsed.
    pub complete: bool,
    /// Parent in the directory tree as passes 3 and 4 see it: the
    /// directory whose entry connects it (the root's parent is the root);
    /// 0 for a directory no connected directory names.
    pub parent: u32,
}

/// What pass 1 found about one in-use inode.
#[derive(Debug, Clone)]
pub struct InodeInfo {
    /// The parsed inode.
    pub inode: Inode,
    /// Blocks in its map, data and indirect (what `blocks` should count).
    pub mapped: u64,
    /// Data blocks mapped at or past the end of the file.
    pub past_eof: u64,
    /// Whether every indirect block of the map parsed.
    pub map_ok: bool,
    /// Directories only: (file block, disk block) of each block within
    /// the size.
    pub dir_blocks: Vec<(u64, u32)>,
    /// Directory entries naming it, "." and ".." excluded, from every
    /// directory that was read.
    pub refs: u32,
    /// Directories only: subdirectories whose parent it is.
    pub subdirs: u32,
}

impl InodeInfo {
    /// The link count the directory tree calls for: 2 + subdirectories
    /// for a directory, the number of entries naming it otherwise.
    pub fn expected_links(&self) -> u32 {
        if self.inode.is_dir() {
            2 + self.subdirs
        } else {
            self.refs
        }
    }
}

/// A second (or later) reference to a block found by pass 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DupClaim {
    /// The block referenced again.
    pub block: u32,
    /// The inode whose map holds this reference.
    pub ino: u32,
    /// 0 for a data block, else the depth of the indirect block.
    pub depth: usize,
    /// First file block the reference covers.
    pub index: u64,
    /// Where the pointer is stored.
    pub loc: PtrLoc,
}

/// One inconsistency, with what a repair needs to know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The superblock state is neither clean nor dirty.
    BadState {
        /// The stored value.
        state: u32,
    },
    /// An in-use inode slot fails to parse (checksum or fields).
    BadInode {
        /// Inode number.
        ino: u32,
        /// The parser's answer.
        err: FormatError,
    },
    /// An indirect block of an inode's map fails to parse.
    BadIndirect {
        /// Inode number.
        ino: u32,
        /// The indirect block.
        block: u32,
        /// The parser's answer.
        err: FormatError,
    },
    /// Data blocks are mapped at or past the end of the file.
    PastEof {
        /// Inode number.
        ino: u32,
        /// The inode's size.
        size: u64,
        /// How many blocks lie past it.
        blocks: u64,
    },
    /// The inode's `blocks` field does not match its map.
    BlocksCount {
        /// Inode number.
        ino: u32,
        /// Stored value, 512-byte units.
        stored: u64,
        /// What the map holds, 512-byte units.
        counted: u64,
    },
    /// Blocks of this inode are also referenced elsewhere.
    Shared {
        /// Inode number.
        ino: u32,
        /// Its blocks that are referenced more than once.
        blocks: Vec<u32>,
        /// The other inodes referencing them.
        with: Vec<u32>,
    },
    /// The root inode is free or not a directory.
    BadRoot {
        /// What is wrong.
        reason: &'static str,
    },
    /// File blocks within a directory's size are not mapped.
    DirHole {
        /// Directory inode.
        dir: u32,
        /// First missing file block.
        index: u64,
        /// Number of missing blocks.
        count: u64,
    },
    /// A directory block fails to parse (tail, checksum or an entry).
    BadDirBlock {
        /// Directory inode.
        dir: u32,
        /// File block index.
        index: u64,
        /// Disk block.
        block: u32,
        /// The parser's answer.
        err: FormatError,
    },
    /// "." names another inode.
    WrongDot {
        /// Directory inode.
        dir: u32,
        /// What "." names.
        found: u32,
        /// Where it is.
        loc: EntryLoc,
    },
    /// An entry names an inode number out of range.
    BadEntryInode {
        /// Directory inode.
        dir: u32,
        /// Entry name.
        name: Vec<u8>,
        /// The number it holds.
        ino: u32,
        /// Where it is.
        loc: EntryLoc,
    },
    /// An entry names a free inode.
    FreeEntryInode {
        /// Directory inode.
        dir: u32,
        /// Entry name.
        name: Vec<u8>,
        /// The free inode.
        ino: u32,
        /// Where it is.
        loc: EntryLoc,
    },
    /// An entry's file type does not match the inode's mode.
    EntryType {
        /// Directory inode.
        dir: u32,
        /// Entry name.
        name: Vec<u8>,
        /// Inode it names.
        ino: u32,
        /// Stored `DT_*`.
        stored: u8,
        /// `DT_*` from the mode.
        want: u8,
        /// Where it is.
        loc: EntryLoc,
    },
    /// Two entries of one directory have the same name.
    DuplicateName {
        /// Directory inode.
        dir: u32,
        /// The name.
        name: Vec<u8>,
    },
    /// ".." does not name the directory's parent.
    WrongDotDot {
        /// Directory inode.
        dir: u32,
        /// What ".." names.
        found: u32,
        /// The parent.
        want: u32,
        /// Where it is.
        loc: EntryLoc,
    },
    /// A directory is named by more than one entry; this one is extra.
    ExtraDirLink {
        /// Directory holding the extra entry.
        dir: u32,
        /// Entry name.
        name: Vec<u8>,
        /// The directory it names.
        target: u32,
        /// Where it is.
        loc: EntryLoc,
    },
    /// A directory is not reachable from the root (and no other
    /// unreachable directory holds it).
    Unconnected {
        /// Directory inode.
        dir: u32,
        /// What its ".." names (0 if unreadable).
        dotdot: u32,
    },
    /// An in-use inode that is not a directory is named by no entry.
    Unattached {
        /// Inode number.
        ino: u32,
        /// Its mode.
        mode: u16,
        /// Its link count.
        links: u32,
        /// Its size.
        size: u64,
    },
    /// Link count differs from what the directory tree calls for.
    LinkCount {
        /// Inode number.
        ino: u32,
        /// Stored count.
        stored: u32,
        /// Counted.
        counted: u32,
    },
    /// A bitmap block fails verification.
    BadBitmapBlock {
        /// Which bitmap.
        kind: BitmapKind,
        /// Block index within the bitmap.
        index: u32,
        /// The parser's answer.
        err: FormatError,
    },
    /// Items `first..=last` (block numbers or inode numbers) differ from
    /// the bitmap.
    BitmapDiff {
        /// Which bitmap.
        kind: BitmapKind,
        /// First item.
        first: u64,
        /// Last item.
        last: u64,
        /// true: in use but marked free; false: free but marked in use.
        in_use: bool,
    },
    /// A superblock free count differs from the bitmap ([`Image::check`]
    /// counts the bitmap as it is; fsck counts it as repaired).
    FreeCount {
        /// Which count.
        kind: BitmapKind,
        /// Stored value.
        stored: u32,
        /// Free items counted.
        counted: u64,
    },
}

/// A name as one printable line: invalid UTF-8 replaced, control
/// characters escaped (names may hold any byte but '/' and NUL).
pub fn show_name(name: &[u8]) -> String {
    String::from_utf8_lossy(name)
        .chars()
        .flat_map(|c| {
            let esc: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            esc
        })
        .collect()
}

fn kind_of_mode(mode: u16) -> &'static str {
    match mode & S_IFMT {
        S_IFREG => "regular file",
        S_IFDIR => "directory",
        S_IFLNK => "symbolic link",
        S_IFCHR => "character device",
        S_IFBLK => "block device",
        S_IFIFO => "FIFO",
        S_IFSOCK => "socket",
        _ => "unknown type",
    }
}

fn list(items: &[u32], max: usize) -> String {
    let mut s: Vec<String> = items.iter().take(max).map(|b| b.to_string()).collect();
    if items.len() > max {
        s.push(format!("and {} more", items.len() - max));
    }
    s.join(" ")
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::BadState { state } => write!(
                f,
                "superblock: state {state} is neither clean ({STATE_CLEAN}) nor dirty ({STATE_DIRTY})"
            ),
            Problem::BadInode { ino, err } => write!(f, "inode {ino}: {err}"),
            Problem::BadIndirect { ino, block, err } => {
                write!(f, "inode {ino}: indirect block {block}: {err}")
            }
            Problem::PastEof { ino, size, blocks } => write!(
                f,
                "inode {ino}: {blocks} block(s) mapped past the end of the file (size {size})"
            ),
            Problem::BlocksCount {
                ino,
                stored,
                counted,
            } => write!(f, "inode {ino}: blocks {stored}, should be {counted}"),
            Problem::Shared { ino, blocks, with } => {
                write!(f, "inode {ino}: {} block(s) ", blocks.len())?;
                if with.is_empty() {
                    write!(f, "referenced twice by this inode")?;
                } else {
                    write!(f, "also used by inode(s) {}", list(with, 8))?;
                }
                write!(f, ": {}", list(blocks, 8))
            }
            Problem::BadRoot { reason } => write!(f, "inode {ROOT_INO} (root): {reason}"),
            Problem::DirHole { dir, index, count } => write!(
                f,
                "directory {dir}: {count} unmapped block(s) from block {index}"
            ),
            Problem::BadDirBlock {
                dir,
                index,
                block,
                err,
            } => write!(f, "directory {dir}: block {index} (block {block}): {err}"),
            Problem::WrongDot { dir, found, .. } => {
                write!(f, "directory {dir}: '.' is {found}, should be {dir}")
            }
            Problem::BadEntryInode { dir, name, ino, .. } => write!(
                f,
                "directory {dir}: entry '{}' has invalid inode number {ino}",
                show_name(name)
            ),
            Problem::FreeEntryInode { dir, name, ino, .. } => write!(
                f,
                "directory {dir}: entry '{}' names free inode {ino}",
                show_name(name)
            ),
            Problem::EntryType {
                dir,
                name,
                ino,
                stored,
                want,
                ..
            } => write!(
                f,
                "directory {dir}: entry '{}' (inode {ino}) has file type {stored}, should be {want}",
                show_name(name)
            ),
            Problem::DuplicateName { dir, name } => write!(
                f,
                "directory {dir}: more than one entry named '{}'",
                show_name(name)
            ),
            Problem::WrongDotDot {
                dir, found, want, ..
            } => write!(f, "directory {dir}: '..' is {found}, should be {want}"),
            Problem::ExtraDirLink {
                dir, name, target, ..
            } => write!(
                f,
                "directory {dir}: entry '{}' is an extra link to directory {target}",
                show_name(name)
            ),
            Problem::Unconnected { dir, dotdot } => write!(
                f,
                "directory {dir} ('..' is {dotdot}) is not connected to the root"
            ),
            Problem::Unattached {
                ino,
                mode,
                links,
                size,
            } => write!(
                f,
                "inode {ino} ({}, {links} link(s), {size} bytes) is in use but in no directory",
                kind_of_mode(*mode)
            ),
            Problem::LinkCount {
                ino,
                stored,
                counted,
            } => write!(f, "inode {ino}: link count {stored}, should be {counted}"),
            Problem::BadBitmapBlock { kind, index, err } => {
                write!(f, "{} bitmap block {index}: {err}", kind.name())
            }
            Problem::BitmapDiff {
                kind,
                first,
                last,
                in_use,
            } => {
                let state = if *in_use {
                    "in use but free"
                } else {
                    "free but marked in use"
                };
                if first == last {
                    write!(f, "{} {first} {state} in the bitmap", kind.name())
                } else {
                    write!(f, "{}s {first}-{last} {state} in the bitmap", kind.name())
                }
            }
            Problem::FreeCount {
                kind,
                stored,
                counted,
            } => write!(
                f,
                "superblock: free {}s count {stored}, counted {counted}",
                kind.name()
            ),
        }
    }
}

impl Problem {
    /// The e2fsck pass that finds it: 0 superblock, 1 inodes and blocks,
    /// 2 directory structure, 3 connectivity, 4 reference counts, 5
    /// bitmaps and free counts.
    pub fn pass(&self) -> u32 {
        match self {
            Problem::BadState { .. } => 0,
            Problem::BadInode { .. }
            | Problem::BadIndirect { .. }
            | Problem::PastEof { .. }
            | Problem::BlocksCount { .. }
            | Problem::Shared { .. } => 1,
            Problem::BadRoot { .. }
            | Problem::DirHole { .. }
            | Problem::BadDirBlock { .. }
            | Problem::WrongDot { .. }
            | Problem::BadEntryInode { .. }
            | Problem::FreeEntryInode { .. }
            | Problem::EntryType { .. }
            | Problem::DuplicateName { .. } => 2,
            Problem::WrongDotDot { .. }
            | Problem::ExtraDirLink { .. }
            | Problem::Unconnected { .. } => 3,
            Problem::Unattached { .. } | Problem::LinkCount { .. } => 4,
            Problem::BadBitmapBlock { .. }
            | Problem::BitmapDiff { .. }
            | Problem::FreeCount { .. } => 5,
        }
    }

    /// The error [`Image::check`] stops with for a structure that cannot
    /// be read, as the walker always has (`None` for inconsistencies).
    pub fn as_error(&self) -> Option<CheckError> {
        let fe = |what: String, err: FormatError| Some(CheckError::Format { what, err });
        match *self {
            Problem::BadInode { ino, err } => fe(format!("inode {ino}"), err),
            Problem::BadIndirect { block, err, .. } => fe(format!("indirect block {block}"), err),
            Problem::BadDirBlock { block, err, .. } => fe(format!("directory block {block}"), err),
            Problem::BadBitmapBlock { kind, index, err } => {
                fe(format!("{} bitmap block {index}", kind.name()), err)
            }
            Problem::DirHole { index, .. } => Some(CheckError::Corrupt(format!(
                "hole at directory block {index}"
            ))),
            Problem::BadRoot { reason } => {
                Some(CheckError::Corrupt(format!("root inode: {reason}")))
            }
            _ => None,
        }
    }
}

/// Everything passes 1 to 4 found, in structured form, for reports and
/// for fsck to plan repairs from.
///
/// * Pass 1 reads every slot of the inode table: non-zero slots are in use
///   and must parse; the block map of each in-use inode is walked, every
///   indirect block verified, every block claimed (a second claim is a
///   shared block), blocks past the end of file and the `blocks` field
///   checked.  Pass 1B finds which inodes share each shared block.
/// * Pass 2 reads every directory: holes, block checksums and tails,
///   entry validity, "." and the inode each entry names (in range, in
///   use, file type matching the mode), duplicate names.
/// * Pass 3 builds the directory tree from the root: a directory named
///   twice keeps one parent (the one its ".." names when that is
///   possible) and the other entries are extra links; ".." must name the
///   parent; directories not reachable from the root are unconnected,
///   and the ones no other unconnected directory holds (or, for cycles,
///   the lowest numbered) are reported, their subtrees hanging below them.
/// * Pass 4 compares link counts with the entries naming each inode
///   (directories: 2 + subdirectories) and reports in-use inodes no
///   entry names.
///
/// Pass 5 (bitmaps and free counts) depends on what a repair changes, so
/// it is left to the caller: [`Image::read_bitmap`] and
/// [`bitmap_differences`] against [`Scan::claims`] and [`Scan::in_use`].
#[derive(Debug, Clone)]
pub struct Scan {
    /// The superblock the scan used.
    pub sb: Superblock,
    /// Problems of passes 0 to 4, in pass order.
    pub problems: Vec<Problem>,
    /// In-use inodes that parsed.
    pub inodes: BTreeMap<u32, InodeInfo>,
    /// In-use inode slots that failed to parse.
    pub bad_inodes: BTreeSet<u32>,
    /// In-use inode slots (non-zero), bit `ino - 1`.
    pub in_use: Bits,
    /// Metadata blocks and every block of every parsed in-use inode.
    pub claims: Claims,
    /// Second and later references to a block.
    pub dup_claims: Vec<DupClaim>,
    /// Every directory that parsed, read by pass 2.
    pub dirs: BTreeMap<u32, DirInfo>,
    /// Unconnected directories at the top of their subtrees, in the order
    /// pass 3 found them.
    pub tops: Vec<u32>,
    /// In-use inodes other than directories that no entry names.
    pub unattached: Vec<u32>,
    /// The inode the root's "lost+found" entry names, if any.
    pub lost_found: Option<u32>,
    /// Whether every in-use inode and indirect block parsed, so that
    /// [`Scan::claims`] holds every block in use.
    pub blocks_complete: bool,
    /// Whether, in addition, the root is a directory and every directory
    /// was read in full, so that reference counts and connectivity are
    /// exact.
    pub dirs_complete: bool,
    /// Regular files among the parsed inodes.
    pub files: u32,
    /// Directories among the parsed inodes.
    pub dirs_seen: u32,
    /// Symbolic links among the parsed inodes.
    pub symlinks: u32,
    /// Devices, FIFOs and sockets among the parsed inodes.
    pub specials: u32,
}

impl Scan {
    fn new(sb: Superblock) -> Self {
        Scan {
            sb,
            problems: Vec::new(),
            inodes: BTreeMap::new(),
            bad_inodes: BTreeSet::new(),
            in_use: Bits::new(u64::from(sb.layout.inodes_count)),
            claims: Claims::new(&sb.layout),
            dup_claims: Vec::new(),
            dirs: BTreeMap::new(),
            tops: Vec::new(),
            unattached: Vec::new(),
            lost_found: None,
            blocks_complete: true,
            dirs_complete: true,
            files: 0,
            dirs_seen: 0,
            symlinks: 0,
            specials: 0,
        }
    }

    /// Blocks of `bs` bytes in 512-byte units.
    fn sectors(&self, blocks: u64) -> u64 {
        blocks * (self.sb.block_size() as u64 / SECTOR_SIZE)
    }

    /// Pass 1: every inode slot, and the block map of each in-use inode.
    fn pass1<R: ImageRead + ?Sized>(&mut self, img: &Image<'_, R>) -> CheckResult<()> {
        let l = self.sb.layout;
        let per = u64::from(inodes_per_block(l.block_log));
        for k in 0..l.itable_blocks {
            let buf = img.read_block(l.itable_start + k)?;
            for (j, raw) in buf.chunks_exact(INODE_SIZE).enumerate() {
                let ino = u64::from(k) * per + j as u64 + 1;
                if ino > u64::from(l.inodes_count) {
                    break;
                }
                let ino = ino as u32;
                match Inode::parse(raw, ino, &self.sb) {
                    Ok(None) => {}
                    Ok(Some(inode)) => {
                        self.in_use.set(u64::from(ino - 1), true);
                        self.visit(img, ino, inode)?;
                    }
                    Err(err) => {
                        self.in_use.set(u64::from(ino - 1), true);
                        self.bad_inodes.insert(ino);
                        self.blocks_complete = false;
                        self.problems.push(Problem::BadInode { ino, err });
                    }
                }
            }
        }
        Ok(())
    }

    /// Counts an in-use inode and claims its blocks.
    fn visit<R: ImageRead + ?Sized>(
        &mut self,
        img: &Image<'_, R>,
        ino: u32,
        inode: Inode,
    ) -> CheckResult<()> {
        match () {
            _ if inode.is_reg() => self.files += 1,
            _ if inode.is_dir() => self.dirs_seen += 1,
            _ if inode.is_symlink() => self.symlinks += 1,
            _ => self.specials += 1,
        }
        let mut info = InodeInfo {
            inode,
            mapped: 0,
            past_eof: 0,
            map_ok: true,
            dir_blocks: Vec::new(),
            refs: 0,
            subdirs: 0,
        };
        let limit = img.size_blocks(&inode);
        let is_dir = inode.is_dir();
        let claims = &mut self.claims;
        let dups = &mut self.dup_claims;
        let problems = &mut self.problems;
        img.walk_map(&inode, &mut |item| match item {
            MapItem::Block {
                block,
                depth,
                index,
                loc,
            } => {
                info.mapped += 1;
                if !claims.claim(block) {
                    dups.push(DupClaim {
                        block,
                        ino,
                        depth,
                        index,
                        loc,
                    });
                }
                if depth == 0 {
                    if index >= limit {
                        info.past_eof += 1;
                    } else if is_dir {
                        info.dir_blocks.push((index, block));
                    }
                }
            }
            MapItem::Bad { block, err } => {
                info.map_ok = false;
                problems.push(Problem::BadIndirect { ino, block, err });
            }
        })?;
        if !info.map_ok {
            self.blocks_complete = false;
        }
        if info.past_eof > 0 {
            self.problems.push(Problem::PastEof {
                ino,
                size: inode.size,
                blocks: info.past_eof,
            });
        }
        let counted = self.sectors(info.mapped);
        if info.map_ok && inode.blocks != counted {
            self.problems.push(Problem::BlocksCount {
                ino,
                stored: inode.blocks,
                counted,
            });
        }
        self.inodes.insert(ino, info);
        Ok(())
    }

    /// Pass 1B: for blocks referenced more than once, which inodes
    /// reference them (pass 1 only knows the second and later ones).
    fn pass1b<R: ImageRead + ?Sized>(&mut self, img: &Image<'_, R>) -> CheckResult<()> {
        if self.dup_claims.is_empty() {
            return Ok(());
        }
        let shared: HashSet<u32> = self.dup_claims.iter().map(|d| d.block).collect();
        let mut owned: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        let mut owners: HashMap<u32, BTreeSet<u32>> = HashMap::new();
        for (&ino, info) in &self.inodes {
            img.walk_map(&info.inode, &mut |item| {
                if let MapItem::Block { block, .. } = item {
                    if shared.contains(&block) {
                        owned.entry(ino).or_default().push(block);
                        owners.entry(block).or_default().insert(ino);
                    }
                }
            })?;
        }
        for (ino, mut blocks) in owned {
            blocks.sort_unstable();
            blocks.dedup();
            let with: BTreeSet<u32> = blocks
                .iter()
                .flat_map(|b| owners[b].iter().copied())
                .filter(|&o| o != ino)
                .collect();
            self.problems.push(Problem::Shared {
                ino,
                blocks,
                with: with.into_iter().collect(),
            });
        }
        Ok(())
    }

    /// Pass 2: reads every directory.
    fn pass2<R: ImageRead + ?Sized>(&mut self, img: &Image<'_, R>) -> CheckResult<()> {
        match self.inodes.get(&ROOT_INO) {
            Some(root) if root.inode.is_dir() => {}
            Some(_) => self.bad_root("not a directory"),
            None if self.bad_inodes.contains(&ROOT_INO) => self.dirs_complete = false,
            None => self.bad_root("free"),
        }
        let dirs: Vec<u32> = self
            .inodes
            .iter()
            .filter(|(_, i)| i.inode.is_dir())
            .map(|(&ino, _)| ino)
            .collect();
        for dir in dirs {
            let d = self.read_dir_info(img, dir)?;
            if !d.complete {
                self.dirs_complete = false;
            }
            self.dirs.insert(dir, d);
        }
        if !self.blocks_complete {
            self.dirs_complete = false;
        }
        Ok(())
    }

    fn bad_root(&mut self, reason: &'static str) {
        self.dirs_complete = false;
        self.problems.push(Problem::BadRoot { reason });
    }

    /// Reads one directory's blocks and entries.
    fn read_dir_info<R: ImageRead + ?Sized>(
        &mut self,
        img: &Image<'_, R>,
        dir: u32,
    ) -> CheckResult<DirInfo> {
        let info = &self.inodes[&dir];
        let nblocks = img.size_blocks(&info.inode);
        let map_ok = info.map_ok;
        let mut blocks = info.dir_blocks.clone();
        blocks.sort_unstable();
        let mut d = DirInfo {
            complete: map_ok,
            ..DirInfo::default()
        };
        // Holes: every index below the size must be mapped.
        let mut expect = 0u64;
        let mut holes: Option<(u64, u64)> = None;
        for &(index, _) in blocks.iter().chain(std::iter::once(&(nblocks, 0))) {
            if index > expect {
                let (first, count) = holes.unwrap_or((expect, 0));
                holes = Some((first, count + (index - expect)));
            }
            expect = index + 1;
        }
        if let Some((index, count)) = holes {
            d.complete = false;
            if map_ok {
                self.problems.push(Problem::DirHole { dir, index, count });
            }
        }
        let mut names: HashSet<Vec<u8>> = HashSet::new();
        let mut dup_names: HashSet<Vec<u8>> = HashSet::new();
        for (index, block) in blocks {
            let buf = img.read_block(block)?;
            let parsed = match DirBlock::parse(&buf, index == 0) {
                Ok(b) => b,
                Err(err) => {
                    d.complete = false;
                    self.problems.push(Problem::BadDirBlock {
                        dir,
                        index,
                        block,
                        err,
                    });
                    continue;
                }
            };
            for e in parsed.iter() {
                let e = match e {
                    Ok(e) => e,
                    Err(err) => {
                        d.complete = false;
                        self.problems.push(Problem::BadDirBlock {
                            dir,
                            index,
                            block,
                            err,
                        });
                        break;
                    }
                };
                let loc = EntryLoc {
                    block,
                    index,
                    offset: e.offset,
                };
                if index == 0 && e.offset == 0 {
                    d.dot = Some((e.ino, loc));
                    if e.ino != dir {
                        self.problems.push(Problem::WrongDot {
                            dir,
                            found: e.ino,
                            loc,
                        });
                    }
                    continue;
                }
                if index == 0 && e.offset == DOTDOT_OFF {
                    d.dotdot = Some((e.ino, loc));
                    continue;
                }
                let name = e.name.to_vec();
                if !names.insert(name.clone()) && dup_names.insert(name.clone()) {
                    self.problems.push(Problem::DuplicateName {
                        dir,
                        name: name.clone(),
                    });
                }
                if self.sb.check_ino(e.ino).is_err() {
                    self.problems.push(Problem::BadEntryInode {
                        dir,
                        name,
                        ino: e.ino,
                        loc,
                    });
                    continue;
                }
                if let Some(target) = self.inodes.get_mut(&e.ino) {
                    target.refs += 1;
                    let want = dt_from_mode(target.inode.mode).unwrap_or(0);
                    if want != e.file_type {
                        self.problems.push(Problem::EntryType {
                            dir,
                            name: name.clone(),
                            ino: e.ino,
                            stored: e.file_type,
                            want,
                            loc,
                        });
                    }
                } else if !self.bad_inodes.contains(&e.ino) {
                    self.problems.push(Problem::FreeEntryInode {
                        dir,
                        name,
                        ino: e.ino,
                        loc,
                    });
                    continue;
                }
                if dir == ROOT_INO && name == b"lost+found" {
                    self.lost_found = Some(e.ino);
                }
                d.entries.push(DirRef {
                    name,
                    ino: e.ino,
                    file_type: e.file_type,
                    loc,
                });
            }
        }
        if d.dot.is_none() || d.dotdot.is_none() {
            d.complete = false;
        }
        Ok(d)
    }

    fn is_dir(&self, ino: u32) -> bool {
        self.inodes.get(&ino).is_some_and(|i| i.inode.is_dir())
    }

    /// Pass 3: the directory tree, ".." and unconnected directories.
    fn pass3(&mut self) {
        // (directory, entry index) of the entry that connects each
        // directory, and the extra entries naming a directory again.
        let mut via: HashMap<u32, (u32, usize)> = HashMap::new();
        let mut extra: Vec<(u32, usize)> = Vec::new();
        if self.is_dir(ROOT_INO) {
            self.connect(ROOT_INO, ROOT_INO, &mut via, &mut extra);
        }
        let unreached: Vec<u32> = self
            .dirs
            .iter()
            .filter(|(&d, i)| d != ROOT_INO && i.parent == 0)
            .map(|(&d, _)| d)
            .collect();
        // Tops first: unconnected directories no other unconnected
        // directory names; then break cycles at the lowest number.
        let mut named: HashSet<u32> = HashSet::new();
        for d in &unreached {
            for e in &self.dirs[d].entries {
                if e.ino != *d && self.is_dir(e.ino) {
                    named.insert(e.ino);
                }
            }
        }
        for pass in 0..2 {
            for &d in &unreached {
                if self.dirs[&d].parent == 0 && (pass == 1 || !named.contains(&d)) {
                    self.tops.push(d);
                    self.connect(d, 0, &mut via, &mut extra);
                }
            }
        }
        self.prefer_dotdot(&mut via, &mut extra);
        for &top in &self.tops {
            if let Some(d) = self.dirs.get_mut(&top) {
                d.parent = 0;
            }
        }
        for &(dir, i) in &extra {
            let e = &self.dirs[&dir].entries[i];
            self.problems.push(Problem::ExtraDirLink {
                dir,
                name: e.name.clone(),
                target: e.ino,
                loc: e.loc,
            });
        }
        for (&dir, d) in &self.dirs {
            match d.dotdot {
                Some((found, loc)) if d.parent != 0 && found != d.parent => {
                    self.problems.push(Problem::WrongDotDot {
                        dir,
                        found,
                        want: d.parent,
                        loc,
                    });
                }
                _ => {}
            }
        }
        for &dir in &self.tops {
            let dotdot = self.dirs[&dir].dotdot.map_or(0, |(p, _)| p);
            self.problems.push(Problem::Unconnected { dir, dotdot });
        }
        let parents: Vec<u32> = self
            .dirs
            .iter()
            .filter(|(&d, i)| d != ROOT_INO && i.parent != 0)
            .map(|(_, i)| i.parent)
            .collect();
        for p in parents {
            if let Some(info) = self.inodes.get_mut(&p) {
                info.subdirs += 1;
            }
        }
    }

    /// Breadth-first walk from directory `start` (whose parent is
    /// `parent`, 0 for an unconnected top) assigning parents.  A root is
    /// its own parent, so a parent of 0 means "not reached yet" for
    /// everything else.
    fn connect(
        &mut self,
        start: u32,
        parent: u32,
        via: &mut HashMap<u32, (u32, usize)>,
        extra: &mut Vec<(u32, usize)>,
    ) {
        // Like the root, a top is its own parent while pass 3 runs, so
        // that it counts as reached; pass 3 then resets it to 0.
        self.set_parent(start, if parent == 0 { start } else { parent });
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(d) = queue.pop_front() {
            let targets: Vec<u32> = self.dirs[&d].entries.iter().map(|e| e.ino).collect();
            for (i, t) in targets.into_iter().enumerate() {
                if !self.is_dir(t) || !self.dirs.contains_key(&t) {
                    continue;
                }
                if self.dirs[&t].parent != 0 || t == ROOT_INO {
                    extra.push((d, i));
                } else {
                    self.set_parent(t, d);
                    via.insert(t, (d, i));
                    queue.push_back(t);
                }
            }
        }
    }

    fn set_parent(&mut self, dir: u32, parent: u32) {
        if let Some(d) = self.dirs.get_mut(&dir) {
            d.parent = parent;
        }
    }

    /// When a directory is named twice, keep the entry in the directory
    /// its ".." names (a rename interrupted after the new entry and ".."
    /// were written), unless that would disconnect it from its tree.
    fn prefer_dotdot(&mut self, via: &mut HashMap<u32, (u32, usize)>, extra: &mut [(u32, usize)]) {
        for slot in extra.iter_mut() {
            let (d, i) = *slot;
            let t = self.dirs[&d].entries[i].ino;
            let Some(&(old_dir, old_i)) = via.get(&t) else {
                continue;
            };
            let dotdot = self.dirs[&t].dotdot.map(|(p, _)| p);
            if old_dir == 0 || dotdot != Some(d) || old_dir == d || self.is_ancestor(t, d) {
                continue;
            }
            self.set_parent(t, d);
            via.insert(t, (d, i));
            *slot = (old_dir, old_i);
        }
    }

    /// Whether `a` is `d` or one of its ancestors.
    fn is_ancestor(&self, a: u32, d: u32) -> bool {
        let mut x = d;
        for _ in 0..=self.dirs.len() {
            if x == a {
                return true;
            }
            let p = self.dirs.get(&x).map_or(0, |i| i.parent);
            if p == 0 || p == x {
                return false;
            }
            x = p;
        }
        true
    }

    /// Pass 4: link counts and inodes no entry names.
    fn pass4(&mut self) {
        for (&ino, info) in &self.inodes {
            if !info.inode.is_dir() && info.refs == 0 {
                self.unattached.push(ino);
                self.problems.push(Problem::Unattached {
                    ino,
                    mode: info.inode.mode,
                    links: info.inode.links,
                    size: info.inode.size,
                });
                continue;
            }
            let counted = info.expected_links();
            if info.inode.links != counted {
                self.problems.push(Problem::LinkCount {
                    ino,
                    stored: info.inode.links,
                    counted,
                });
            }
        }
    }
}

/// First file block covered by the indirect tree at inode `slot`.
fn first_index<R: ImageRead + ?Sized>(img: &Image<'_, R>, depth: usize, slot: usize) -> u64 {
    let path = BlockPath {
        depth,
        slot,
        idx: [0; N_LEVELS],
    };
    crate::format::block_path_index(img.sb.layout.block_log, &path)
}
