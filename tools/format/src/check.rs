// SPDX-License-Identifier: GPL-2.0

//! Read-only walker over an rbfs image.
//!
//! It reads everything through the parsers of the shared format module, so
//! a test that builds an image with mkfs and checks it here tests the
//! writers against the same readers the kernel uses.  [`Image`] offers
//! lookups and file reads; [`Image::check`] is an fsck-style consistency
//! pass that reports every problem it finds and never writes.

use std::collections::HashMap;
use std::fmt;
use std::io;

use crate::format::{
    bitmap_test, bitmap_verify, block_path, dt_from_mode, BlockPath, DirBlock, FormatError,
    IndirectBlock, Inode, Superblock, INODE_SIZE, N_DIRECT, N_LEVELS, ROOT_INO, SECTOR_SIZE,
    SUPERBLOCK_SIZE,
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

    /// Walks the whole filesystem and cross-checks it: every reachable
    /// inode parses; entry types match inodes; link counts equal the
    /// number of entries naming each inode; no block is used twice; each
    /// inode's block count matches its blocks; both bitmaps mark exactly
    /// what is in use; and the superblock free counts match the bitmaps.
    pub fn check(&self) -> CheckResult<CheckReport> {
        let mut w = Walker::new(self);
        w.walk_tree()?;
        w.check_bitmaps()?;
        Ok(w.report)
    }
}

/// State of one [`Image::check`] pass.
struct Walker<'i, 'a, R: ImageRead + ?Sized> {
    img: &'i Image<'a, R>,
    report: CheckReport,
    /// Which block references each block (0 = metadata).
    block_owner: Vec<u32>,
    /// Directory entries naming each inode, "." and ".." included.
    refs: HashMap<u32, u32>,
    /// Inodes already parsed, with their links count.
    seen: HashMap<u32, Inode>,
}

const UNUSED: u32 = u32::MAX;

impl<'i, 'a, R: ImageRead + ?Sized> Walker<'i, 'a, R> {
    fn new(img: &'i Image<'a, R>) -> Self {
        let l = img.sb.layout;
        let mut block_owner = vec![UNUSED; l.blocks_count as usize];
        for o in block_owner.iter_mut().take(l.data_start as usize) {
            *o = 0;
        }
        Walker {
            img,
            report: CheckReport::default(),
            block_owner,
            refs: HashMap::new(),
            seen: HashMap::new(),
        }
    }

    fn problem(&mut self, s: String) {
        self.report.problems.push(s);
    }

    /// Depth-first walk from the root; directories are visited once.
    fn walk_tree(&mut self) -> CheckResult<()> {
        let mut stack = vec![(ROOT_INO, ROOT_INO)];
        self.visit_inode(ROOT_INO)?;
        while let Some((dir, parent)) = stack.pop() {
            let inode = self.seen[&dir];
            let entries = self.img.read_dir(&inode)?;
            for e in &entries {
                *self.refs.entry(e.ino).or_insert(0) += 1;
                self.check_entry(dir, parent, e, &mut stack)?;
            }
        }
        let mut inos: Vec<u32> = self.seen.keys().copied().collect();
        inos.sort_unstable();
        for ino in inos {
            let links = self.seen[&ino].links;
            let refs = self.refs.get(&ino).copied().unwrap_or(0);
            if links != refs {
                self.problem(format!(
                    "inode {ino}: links {links} but {refs} entries name it"
                ));
            }
        }
        Ok(())
    }

    fn check_entry(
        &mut self,
        dir: u32,
        parent: u32,
        e: &Entry,
        stack: &mut Vec<(u32, u32)>,
    ) -> CheckResult<()> {
        let name = String::from_utf8_lossy(&e.name).into_owned();
        if e.name == b"." || e.name == b".." {
            let want = if e.name == b"." { dir } else { parent };
            if e.ino != want {
                self.problem(format!("dir {dir}: '{name}' is {} not {want}", e.ino));
            }
            return Ok(());
        }
        if let Err(err) = self.img.sb.check_ino(e.ino) {
            self.problem(format!("dir {dir}: '{name}': {err}"));
            return Ok(());
        }
        let first_visit = !self.seen.contains_key(&e.ino);
        if first_visit {
            self.visit_inode(e.ino)?;
        }
        let inode = self.seen[&e.ino];
        if dt_from_mode(inode.mode) != Some(e.file_type) {
            self.problem(format!(
                "dir {dir}: '{name}' type {} does not match inode mode {:o}",
                e.file_type, inode.mode
            ));
        }
        if inode.is_dir() {
            if first_visit {
                stack.push((e.ino, dir));
            } else {
                self.problem(format!(
                    "dir {dir}: '{name}' is a second link to directory {}",
                    e.ino
                ));
            }
        }
        Ok(())
    }

    /// Parses an inode, counts its type and claims its blocks.
    fn visit_inode(&mut self, ino: u32) -> CheckResult<()> {
        let inode = self.img.inode(ino)?;
        self.seen.insert(ino, inode);
        self.report.used_inodes += 1;
        match () {
            _ if inode.is_reg() => self.report.files += 1,
            _ if inode.is_dir() => self.report.dirs += 1,
            _ if inode.is_symlink() => self.report.symlinks += 1,
            _ => self.report.specials += 1,
        }
        if !inode.has_block_map() {
            return Ok(());
        }
        let mut count = 0u64;
        let limit = self.img.size_blocks(&inode);
        for slot in 0..N_DIRECT + N_LEVELS {
            let ptr = inode.map[slot];
            if ptr == 0 {
                continue;
            }
            let depth = slot.saturating_sub(N_DIRECT - 1);
            let idx = if depth == 0 {
                slot as u64
            } else {
                first_index(self.img, depth, slot)
            };
            self.claim_tree(ino, ptr, depth, idx, limit, &mut count)?;
        }
        let want = count * (self.img.block_size() as u64 / SECTOR_SIZE);
        if inode.blocks != want {
            self.problem(format!(
                "inode {ino}: blocks {} but {count} blocks mapped ({want} sectors)",
                inode.blocks
            ));
        }
        Ok(())
    }

    /// Claims `ptr` (a data block at depth 0, else an indirect block) and
    /// everything below it; `index` is the first file block it covers.
    fn claim_tree(
        &mut self,
        ino: u32,
        ptr: u32,
        depth: usize,
        index: u64,
        limit: u64,
        count: &mut u64,
    ) -> CheckResult<()> {
        self.claim(ino, ptr);
        *count += 1;
        if depth == 0 {
            if index >= limit {
                self.problem(format!(
                    "inode {ino}: block {ptr} mapped at file block {index}, past the size"
                ));
            }
            return Ok(());
        }
        let buf = self.img.read_block(ptr)?;
        let ind = IndirectBlock::parse(&buf, &self.img.sb)
            .map_err(ferr(format!("indirect block {ptr}")))?;
        let span = crate::format::blocks_at_depth(self.img.sb.layout.block_log, depth - 1);
        for i in 0..ind.len() {
            let child = ind.get(i);
            if child != 0 {
                self.claim_tree(ino, child, depth - 1, index + i as u64 * span, limit, count)?;
            }
        }
        Ok(())
    }

    fn claim(&mut self, ino: u32, block: u32) {
        let owner = &mut self.block_owner[block as usize];
        if *owner != UNUSED {
            let prev = *owner;
            self.problem(format!(
                "block {block} used by inode {ino} and by inode {prev}"
            ));
        } else {
            *owner = ino;
        }
    }

    /// Compares both bitmaps with what the walk found in use.
    fn check_bitmaps(&mut self) -> CheckResult<()> {
        let l = self.img.sb.layout;
        let used: Vec<bool> = self.block_owner.iter().map(|&o| o != UNUSED).collect();
        self.report.used_blocks = used.iter().filter(|&&u| u).count() as u64;
        let free = self.compare_bitmap("block", l.bbitmap_start, l.bbitmap_blocks, &used)?;
        if free != u64::from(self.img.sb.free_blocks) {
            self.problem(format!(
                "superblock free blocks {} but bitmap has {free}",
                self.img.sb.free_blocks
            ));
        }
        let mut iused = vec![false; l.inodes_count as usize];
        for &ino in self.seen.keys() {
            iused[ino as usize - 1] = true;
        }
        let free = self.compare_bitmap("inode", l.ibitmap_start, l.ibitmap_blocks, &iused)?;
        if free != u64::from(self.img.sb.free_inodes) {
            self.problem(format!(
                "superblock free inodes {} but bitmap has {free}",
                self.img.sb.free_inodes
            ));
        }
        for ino in 1..=l.inodes_count {
            if !iused[ino as usize - 1] && self.img.inode_slot(ino)?.is_some() {
                self.problem(format!("inode {ino} in use but not reachable"));
            }
        }
        Ok(())
    }

    /// Verifies each bitmap block and compares bits with `used`; returns
    /// the number of clear bits.
    fn compare_bitmap(
        &mut self,
        what: &str,
        start: u32,
        blocks: u32,
        used: &[bool],
    ) -> CheckResult<u64> {
        let total = used.len() as u32;
        let bpb = crate::format::bitmap_bits_per_block(self.img.sb.layout.block_log);
        let mut free = 0u64;
        for k in 0..blocks {
            let buf = self.img.read_block(start + k)?;
            bitmap_verify(&buf, k, total).map_err(ferr(format!("{what} bitmap block {k}")))?;
            for bit in 0..bpb {
                let item = u64::from(k) * u64::from(bpb) + u64::from(bit);
                let Some(&is_used) = used.get(item as usize) else {
                    break;
                };
                let marked = bitmap_test(&buf, bit);
                if !marked {
                    free += 1;
                }
                if marked != is_used {
                    let state = if is_used {
                        "in use but free"
                    } else {
                        "free but marked in use"
                    };
                    let num = if what == "inode" { item + 1 } else { item };
                    self.problem(format!("{what} {num} {state} in the bitmap"));
                }
            }
        }
        Ok(free)
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
