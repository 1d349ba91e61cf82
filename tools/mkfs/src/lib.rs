// SPDX-License-Identifier: GPL-2.0

//! mkfs.rbfs as a library: lay out and write an rbfs filesystem, optionally
//! populated from a host directory.
//!
//! Everything on disk is encoded by the shared format module (the same code
//! the kernel reads with).  Allocation is a bump allocator over the data
//! region, so the blocks in use are always `0..next_block` and the inodes in
//! use `1..next_ino`; the bitmaps are then generated from those two bounds.
//! Only metadata and the populated files' blocks are written: the rest of
//! the data region is left as it was on the device.

// One `unsafe` block, an `lseek` call (std has no SEEK_DATA/SEEK_HOLE), in
// `data_segments`; nothing else may have any.
#![deny(unsafe_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use rbfs_format::format::{
    bitmap_bits_per_block, bitmap_init, bitmap_set, block_path, check_label, check_name,
    dir_init_empty, dir_init_first, dir_insert, dt_from_mode, indirect_init, indirect_seal,
    indirect_set, inodes_per_block, max_file_size, FormatError, Inode, Layout, Superblock,
    Timestamp, DT_DIR, FAST_SYMLINK_MAX, INODE_SIZE, LABEL_SIZE, MAX_BLOCK_LOG, MAX_INODES,
    MIN_BLOCK_LOG, N_DIRECT, N_LEVELS, N_MAP, SECTOR_SIZE, SUPERBLOCK_SIZE, S_IFBLK, S_IFCHR,
    S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK, UUID_SIZE,
};

/// Default block size in bytes.
pub const DEFAULT_BLOCK_SIZE: u32 = 1024;
/// Default space per inode: one inode per this many bytes of filesystem.
pub const BYTES_PER_INODE: u64 = 8192;
/// Fewest inodes mkfs creates by default.
pub const MIN_DEFAULT_INODES: u32 = 16;
/// Largest write mkfs issues at once.
const WRITE_CHUNK: usize = 1 << 20;

/// What to create.
#[derive(Debug, Clone)]
pub struct MkfsOptions {
    /// Block size in bytes: 512, 1024, 2048 or 4096.
    pub block_size: u32,
    /// Filesystem size in blocks.
    pub blocks_count: u64,
    /// Inode count; `None` for one per [`BYTES_PER_INODE`] (at least 16).
    pub inodes: Option<u64>,
    /// Volume label, at most 32 bytes of UTF-8.
    pub label: Vec<u8>,
    /// Filesystem UUID.
    pub uuid: [u8; UUID_SIZE],
    /// Creation time (seconds and nanoseconds since the epoch).
    pub now: Timestamp,
    /// Host directory to copy into the new filesystem.
    pub populate: Option<PathBuf>,
    /// Host file (dev, ino) to leave out while populating: the image itself.
    pub skip: Option<(u64, u64)>,
}

impl MkfsOptions {
    /// Options with defaults: no label, a nil UUID, time now, no populate.
    pub fn new(block_size: u32, blocks_count: u64) -> Self {
        MkfsOptions {
            block_size,
            blocks_count,
            inodes: None,
            label: Vec::new(),
            uuid: [0; UUID_SIZE],
            now: now(),
            populate: None,
            skip: None,
        }
    }
}

/// The current time as a [`Timestamp`].
pub fn now() -> Timestamp {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => Timestamp {
            sec: d.as_secs() as i64,
            nsec: d.subsec_nanos(),
        },
        Err(_) => Timestamp::default(),
    }
}

/// What was created.
#[derive(Debug, Clone, Default)]
pub struct MkfsSummary {
    /// The layout written.
    pub layout: Option<Layout>,
    /// Blocks in use after population (metadata included).
    pub used_blocks: u32,
    /// Inodes in use (the root included).
    pub used_inodes: u32,
    /// Regular files created from the host directory.
    pub files: u32,
    /// Directories created, the root included.
    pub dirs: u32,
    /// Symbolic links created.
    pub symlinks: u32,
    /// Device nodes, FIFOs and sockets created.
    pub specials: u32,
    /// Extra names for an already created inode.
    pub hard_links: u32,
    /// Things skipped or worth telling the user.
    pub warnings: Vec<String>,
}

/// Why mkfs failed; the message is what the tool prints.
#[derive(Debug)]
pub enum MkfsError {
    /// A bad option value or impossible geometry.
    Invalid(String),
    /// An I/O error with what was being done.
    Io(String, io::Error),
    /// The host tree does not fit or cannot be represented.
    Populate(String),
}

impl fmt::Display for MkfsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MkfsError::Invalid(s) | MkfsError::Populate(s) => f.write_str(s),
            MkfsError::Io(what, e) => write!(f, "{what}: {e}"),
        }
    }
}

impl std::error::Error for MkfsError {}

fn io_err(what: impl fmt::Display) -> impl FnOnce(io::Error) -> MkfsError {
    let what = what.to_string();
    move |e| MkfsError::Io(what, e)
}

fn fmt_err(what: impl fmt::Display) -> impl FnOnce(FormatError) -> MkfsError {
    let what = what.to_string();
    move |e| MkfsError::Populate(format!("{what}: {e}"))
}

/// log2 of a block size, or a message naming the allowed sizes.
pub fn block_log(block_size: u32) -> Result<u32, MkfsError> {
    let log = block_size.trailing_zeros();
    if block_size.is_power_of_two() && (MIN_BLOCK_LOG..=MAX_BLOCK_LOG).contains(&log) {
        Ok(log)
    } else {
        Err(MkfsError::Invalid(format!(
            "invalid block size {block_size}: must be 512, 1024, 2048 or 4096"
        )))
    }
}

/// Smallest block count that holds `inodes` inodes and one data block.
pub fn min_blocks(log: u32, inodes: u32) -> u64 {
    let bpb = u64::from(bitmap_bits_per_block(log));
    let ib = u64::from(inodes).div_ceil(bpb);
    let it = u64::from(inodes).div_ceil(u64::from(inodes_per_block(log)));
    let mut blocks = 2 + ib + it;
    loop {
        let need = 2 + blocks.div_ceil(bpb) + ib + it;
        if need <= blocks {
            return blocks;
        }
        blocks = need;
    }
}

/// Most inodes that fit in `blocks` blocks, or 0 if not even one does.
pub fn max_inodes(log: u32, blocks: u32) -> u32 {
    let (mut lo, mut hi) = (0u32, MAX_INODES);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if Layout::compute(log, blocks, mid).is_ok() {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Chooses the layout: validates the block size and count, picks the
/// default inode count, rounds the inode count up to fill the last inode
/// table block, and explains any misfit.
pub fn plan_layout(
    block_size: u32,
    blocks_count: u64,
    inodes: Option<u64>,
) -> Result<Layout, MkfsError> {
    let log = block_log(block_size)?;
    let blocks = u32::try_from(blocks_count).map_err(|_| {
        MkfsError::Invalid(format!(
            "filesystem too large: {blocks_count} blocks; at most {} blocks of {block_size} bytes",
            u32::MAX
        ))
    })?;
    let per_block = u64::from(inodes_per_block(log));
    let wanted = match inodes {
        Some(0) => return Err(MkfsError::Invalid("inode count must be at least 1".into())),
        Some(n) => n,
        None => (blocks_count * u64::from(block_size) / BYTES_PER_INODE)
            .max(u64::from(MIN_DEFAULT_INODES)),
    };
    let rounded = wanted.div_ceil(per_block) * per_block;
    let count = u32::try_from(rounded.min(u64::from(MAX_INODES))).unwrap_or(MAX_INODES);
    // The smallest filesystem worth making holds a default-sized inode
    // table; below that the device itself is too small, whatever -N says.
    let small = wanted
        .min(u64::from(MIN_DEFAULT_INODES))
        .div_ceil(per_block)
        * per_block;
    let min = min_blocks(log, small as u32);
    if u64::from(blocks) < min {
        return Err(MkfsError::Invalid(format!(
            "device too small: {blocks} blocks of {block_size} bytes; rbfs needs at least {min} blocks ({} bytes)",
            min * u64::from(block_size)
        )));
    }
    match Layout::compute(log, blocks, count) {
        Ok(l) => Ok(l),
        Err(_) if inodes.is_some() => Err(MkfsError::Invalid(format!(
            "too many inodes ({wanted}): at most {} fit in {blocks} blocks of {block_size} bytes",
            max_inodes(log, blocks)
        ))),
        Err(_) => {
            // The default ratio never overflows the device, but stay safe.
            let fit = max_inodes(log, blocks) / inodes_per_block(log) * inodes_per_block(log);
            Layout::compute(log, blocks, fit.max(1))
                .map_err(|e| MkfsError::Invalid(format!("cannot lay out the filesystem: {e}")))
        }
    }
}

/// Parses a UUID in the 8-4-4-4-12 hex form.
pub fn parse_uuid(s: &str) -> Result<[u8; UUID_SIZE], MkfsError> {
    let bad = || {
        MkfsError::Invalid(format!(
            "invalid UUID '{s}': expected the form 01234567-89ab-cdef-0123-456789abcdef"
        ))
    };
    let groups: Vec<&str> = s.split('-').collect();
    let lens: Vec<usize> = groups.iter().map(|g| g.len()).collect();
    if lens != [8, 4, 4, 4, 12] {
        return Err(bad());
    }
    let hex: String = groups.concat();
    let mut out = [0u8; UUID_SIZE];
    for (i, byte) in out.iter_mut().enumerate() {
        let pair = hex.get(2 * i..2 * i + 2).ok_or_else(bad)?;
        *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Formats a UUID in the 8-4-4-4-12 hex form.
pub fn format_uuid(u: &[u8; UUID_SIZE]) -> String {
    let h: Vec<String> = u.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..].concat()
    )
}

/// A random (version 4) UUID from /dev/urandom.
pub fn random_uuid() -> io::Result<[u8; UUID_SIZE]> {
    let mut u = [0u8; UUID_SIZE];
    fs::File::open("/dev/urandom")?.read_exact(&mut u)?;
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    Ok(u)
}

/// Checks a label and pads it to the on-disk field.
pub fn make_label(label: &[u8]) -> Result<[u8; LABEL_SIZE], MkfsError> {
    if label.len() > LABEL_SIZE {
        return Err(MkfsError::Invalid(format!(
            "label too long: {} bytes, at most {LABEL_SIZE}",
            label.len()
        )));
    }
    if label.contains(&0) {
        return Err(MkfsError::Invalid("label contains a NUL byte".into()));
    }
    let mut out = [0u8; LABEL_SIZE];
    out[..label.len()].copy_from_slice(label);
    check_label(&out).map_err(|_| MkfsError::Invalid("label is not valid UTF-8".into()))?;
    Ok(out)
}

/// Looks for an existing filesystem or swap signature; returns its name.
pub fn detect_signature<R: Read + Seek>(dev: &mut R) -> io::Result<Option<&'static str>> {
    let mut head = vec![0u8; 65_600 + 8];
    dev.seek(SeekFrom::Start(0))?;
    let mut got = 0;
    while got < head.len() {
        match dev.read(&mut head[got..])? {
            0 => break,
            n => got += n,
        }
    }
    head.truncate(got);
    let at = |off: usize, sig: &[u8]| head.get(off..off + sig.len()) == Some(sig);
    let rbfs = rbfs_format::format::MAGIC.to_le_bytes();
    let found = if at(0, &rbfs) {
        Some("an rbfs filesystem")
    } else if at(1080, &[0x53, 0xEF]) {
        Some("an ext2/ext3/ext4 filesystem")
    } else if at(0, b"XFSB") {
        Some("an XFS filesystem")
    } else if at(65_600, b"_BHRfS_M") {
        Some("a btrfs filesystem")
    } else if at(54, b"FAT") || at(82, b"FAT") {
        Some("a FAT filesystem")
    } else if at(4096 - 10, b"SWAPSPACE2") || at(4096 - 10, b"SWAP-SPACE") {
        Some("a swap area")
    } else if at(0, &0x1BAD_FACEu32.to_le_bytes()) {
        Some("a BFS filesystem")
    } else if at(0, &0x28CD_3D45u32.to_le_bytes()) || at(512, &0x28CD_3D45u32.to_le_bytes()) {
        Some("a cramfs filesystem")
    } else if [0x137Fu16, 0x138F, 0x2468, 0x2478]
        .iter()
        .any(|m| at(1024 + 16, &m.to_le_bytes()))
        || at(1024 + 24, &0x4D5Au16.to_le_bytes())
    {
        Some("a Minix filesystem")
    } else if at(3, b"NTFS    ") {
        Some("an NTFS filesystem")
    } else if at(0, b"hsqs") {
        Some("a squashfs filesystem")
    } else if at(1024, &0xF2F5_2010u32.to_le_bytes()) {
        Some("an F2FS filesystem")
    } else if at(32768, b"JFS1") {
        Some("a JFS filesystem")
    } else if at(65536 + 52, b"ReIsEr") {
        Some("a ReiserFS filesystem")
    } else if at(32769, b"CD001") {
        Some("an ISO 9660 filesystem")
    } else if at(0, b"LUKS\xba\xbe") {
        Some("a LUKS volume")
    } else if at(512, b"LABELONE") {
        Some("an LVM physical volume")
    } else {
        None
    };
    Ok(found)
}

/// Creates the filesystem described by `opts` on `dev`, which must be at
/// least `blocks_count * block_size` bytes or growable (a file or a
/// `Cursor<Vec<u8>>`).  Writes block 0, both bitmaps, the inode table, the
/// root directory and any populated files, then flushes `dev`; the caller
/// syncs it.
pub fn make_fs<W: Write + Seek>(opts: &MkfsOptions, dev: &mut W) -> Result<MkfsSummary, MkfsError> {
    let layout = plan_layout(opts.block_size, opts.blocks_count, opts.inodes)?;
    let label = make_label(&opts.label)?;
    let mut b = Builder::new(layout, opts, dev);
    // Invalidate any old superblock first so a failed mkfs leaves no
    // half-written filesystem that looks valid.
    b.out
        .write_at(0, &vec![0u8; b.bs])
        .map_err(io_err("writing block 0"))?;
    b.out.flush().map_err(io_err("writing block 0"))?;
    match &opts.populate {
        Some(dir) => b.populate_root(dir)?,
        None => b.empty_root()?,
    }
    b.write_metadata(opts, label)?;
    b.summary.layout = Some(layout);
    Ok(b.summary)
}

/// Coalesces writes to consecutive offsets into large positioned writes.
struct RunWriter<'w, W: Write + Seek> {
    dev: &'w mut W,
    start: u64,
    buf: Vec<u8>,
}

impl<W: Write + Seek> RunWriter<'_, W> {
    fn write_at(&mut self, off: u64, data: &[u8]) -> io::Result<()> {
        let end = self.start + self.buf.len() as u64;
        if off != end || self.buf.len() + data.len() > WRITE_CHUNK {
            self.flush()?;
            self.start = off;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.dev.seek(SeekFrom::Start(self.start))?;
            self.dev.write_all(&self.buf)?;
            self.start += self.buf.len() as u64;
            self.buf.clear();
        }
        Ok(())
    }
}

/// One indirect block being built: its pointers and, above the last
/// level, its children by slot.
#[derive(Default)]
struct IndNode {
    ptrs: BTreeMap<u32, u32>,
    kids: BTreeMap<u32, IndNode>,
}

/// Block map being built for one file from (file block, disk block) pairs.
struct MapBuilder {
    log: u32,
    map: [u32; N_MAP],
    roots: [Option<IndNode>; N_LEVELS],
    data_blocks: u64,
}

impl MapBuilder {
    fn new(log: u32) -> Self {
        MapBuilder {
            log,
            map: [0; N_MAP],
            roots: Default::default(),
            data_blocks: 0,
        }
    }

    fn insert(&mut self, index: u64, block: u32) -> Result<(), MkfsError> {
        let path = block_path(self.log, index).ok_or_else(|| {
            MkfsError::Populate(format!("file block {index} beyond the maximum file size"))
        })?;
        self.data_blocks += 1;
        if path.depth == 0 {
            self.map[path.slot] = block;
            return Ok(());
        }
        let mut node = self.roots[path.depth - 1].get_or_insert_with(IndNode::default);
        for level in 0..path.depth - 1 {
            node = node.kids.entry(path.idx[level]).or_default();
        }
        node.ptrs.insert(path.idx[path.depth - 1], block);
        Ok(())
    }
}

/// State of one mkfs run.
struct Builder<'w, W: Write + Seek> {
    out: RunWriter<'w, W>,
    layout: Layout,
    bs: usize,
    next_block: u32,
    inodes: Vec<Inode>,
    hard_links: HashMap<(u64, u64), u32>,
    now: Timestamp,
    skip: Option<(u64, u64)>,
    summary: MkfsSummary,
}

impl<'w, W: Write + Seek> Builder<'w, W> {
    fn new(layout: Layout, opts: &MkfsOptions, dev: &'w mut W) -> Self {
        Builder {
            out: RunWriter {
                dev,
                start: 0,
                buf: Vec::with_capacity(WRITE_CHUNK),
            },
            layout,
            bs: layout.block_size(),
            next_block: layout.data_start,
            inodes: Vec::new(),
            hard_links: HashMap::new(),
            now: opts.now,
            skip: opts.skip,
            summary: MkfsSummary::default(),
        }
    }

    fn alloc_block(&mut self) -> Result<u32, MkfsError> {
        if self.next_block >= self.layout.blocks_count {
            return Err(MkfsError::Populate(format!(
                "not enough space: the directory tree needs more than the {} data blocks",
                self.layout.data_blocks
            )));
        }
        self.next_block += 1;
        Ok(self.next_block - 1)
    }

    fn alloc_inode(&mut self, inode: Inode) -> Result<u32, MkfsError> {
        if self.inodes.len() >= self.layout.inodes_count as usize {
            return Err(MkfsError::Populate(format!(
                "not enough inodes: the directory tree needs more than {}; use -N",
                self.layout.inodes_count
            )));
        }
        self.inodes.push(inode);
        Ok(self.inodes.len() as u32)
    }

    fn inode_mut(&mut self, ino: u32) -> &mut Inode {
        &mut self.inodes[ino as usize - 1]
    }

    fn write_block(&mut self, block: u32, data: &[u8]) -> Result<(), MkfsError> {
        let off = u64::from(block) * self.bs as u64;
        self.out
            .write_at(off, data)
            .map_err(io_err(format_args!("writing block {block}")))
    }

    /// Allocates and writes the indirect blocks of a built map; returns the
    /// inode block map and the number of blocks (data and indirect).
    fn finish_map(&mut self, mut mb: MapBuilder) -> Result<([u32; N_MAP], u64), MkfsError> {
        let mut count = mb.data_blocks;
        for depth in 1..=N_LEVELS {
            if let Some(root) = mb.roots[depth - 1].take() {
                mb.map[N_DIRECT + depth - 1] = self.write_node(root, &mut count)?;
            }
        }
        Ok((mb.map, count))
    }

    fn write_node(&mut self, node: IndNode, count: &mut u64) -> Result<u32, MkfsError> {
        let mut buf = vec![0u8; self.bs];
        indirect_init(&mut buf).map_err(fmt_err("indirect block"))?;
        for (i, p) in node.ptrs {
            indirect_set(&mut buf, i as usize, p).map_err(fmt_err("indirect block"))?;
        }
        for (i, kid) in node.kids {
            let p = self.write_node(kid, count)?;
            indirect_set(&mut buf, i as usize, p).map_err(fmt_err("indirect block"))?;
        }
        indirect_seal(&mut buf).map_err(fmt_err("indirect block"))?;
        let block = self.alloc_block()?;
        *count += 1;
        self.write_block(block, &buf)?;
        Ok(block)
    }

    fn sectors(&self, blocks: u64) -> u64 {
        blocks * (self.bs as u64 / SECTOR_SIZE)
    }

    fn new_inode(&self, mode: u16) -> Inode {
        Inode {
            mode,
            links: 1,
            atime: self.now,
            mtime: self.now,
            ctime: self.now,
            crtime: self.now,
            ..Inode::default()
        }
    }

    /// A root directory holding only "." and "..".
    fn empty_root(&mut self) -> Result<(), MkfsError> {
        let mut root = self.new_inode(S_IFDIR | 0o755);
        root.links = 2;
        let ino = self.alloc_inode(root)?;
        self.write_dir(ino, ino, &[])?;
        self.summary.dirs += 1;
        Ok(())
    }

    /// The root directory from `dir`, with its attributes.
    fn populate_root(&mut self, dir: &Path) -> Result<(), MkfsError> {
        let meta = fs::metadata(dir).map_err(io_err(dir.display()))?;
        if !meta.is_dir() {
            return Err(MkfsError::Invalid(format!(
                "{}: not a directory",
                dir.display()
            )));
        }
        let ino = self.alloc_inode(self.host_inode(&meta))?;
        self.summary.dirs += 1;
        self.populate_dir(dir, ino, ino)
    }

    /// An inode with the host file's type, permissions, owner and times.
    fn host_inode(&self, m: &fs::Metadata) -> Inode {
        let ts = |sec: i64, nsec: i64| Timestamp {
            sec,
            nsec: nsec.clamp(0, 999_999_999) as u32,
        };
        Inode {
            mode: m.mode() as u16,
            uid: m.uid(),
            gid: m.gid(),
            links: 1,
            atime: ts(m.atime(), m.atime_nsec()),
            mtime: ts(m.mtime(), m.mtime_nsec()),
            ctime: ts(m.ctime(), m.ctime_nsec()),
            crtime: self.now,
            ..Inode::default()
        }
    }

    /// Copies the children of host directory `dir` into directory `ino`
    /// (whose parent is `parent`), recursively, then writes its blocks.
    fn populate_dir(&mut self, dir: &Path, ino: u32, parent: u32) -> Result<(), MkfsError> {
        let mut names: Vec<(Vec<u8>, PathBuf)> = fs::read_dir(dir)
            .map_err(io_err(dir.display()))?
            .map(|e| e.map(|e| (e.file_name().as_bytes().to_vec(), e.path())))
            .collect::<io::Result<_>>()
            .map_err(io_err(dir.display()))?;
        names.sort();
        let mut entries = Vec::with_capacity(names.len());
        let mut subdirs = 0;
        for (name, path) in names {
            check_name(&name).map_err(fmt_err(path.display()))?;
            let Some((child, ft)) = self.add_host_file(&path, ino)? else {
                continue;
            };
            if ft == DT_DIR {
                subdirs += 1;
            }
            entries.push((name, child, ft));
        }
        self.inode_mut(ino).links = 2 + subdirs;
        self.write_dir(ino, parent, &entries)
    }

    /// Creates the inode for one host file (or adds a link to one already
    /// created); returns its number and directory entry type, or `None` if
    /// it is skipped.
    fn add_host_file(&mut self, path: &Path, parent: u32) -> Result<Option<(u32, u8)>, MkfsError> {
        let meta = fs::symlink_metadata(path).map_err(io_err(path.display()))?;
        let key = (meta.dev(), meta.ino());
        if self.skip == Some(key) {
            self.summary.warnings.push(format!(
                "{}: skipped, it is the image being written",
                path.display()
            ));
            return Ok(None);
        }
        let mode = meta.mode() as u16;
        let ft = dt_from_mode(mode)
            .ok_or_else(|| MkfsError::Populate(format!("{}: unknown file type", path.display())))?;
        if !meta.is_dir() && meta.nlink() > 1 {
            if let Some(&ino) = self.hard_links.get(&key) {
                self.inode_mut(ino).links += 1;
                self.summary.hard_links += 1;
                return Ok(Some((ino, ft)));
            }
        }
        let mut inode = self.host_inode(&meta);
        match mode & S_IFMT {
            S_IFDIR => {
                let ino = self.alloc_inode(inode)?;
                self.summary.dirs += 1;
                self.populate_dir(path, ino, parent)?;
                return Ok(Some((ino, ft)));
            }
            S_IFREG => {
                self.copy_file(path, &meta, &mut inode)?;
                self.summary.files += 1;
            }
            S_IFLNK => {
                self.copy_symlink(path, &mut inode)?;
                self.summary.symlinks += 1;
            }
            S_IFCHR | S_IFBLK => {
                let rdev = meta.rdev();
                inode.rdev_major = (((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff)) as u32;
                inode.rdev_minor = ((rdev & 0xff) | ((rdev >> 12) & !0xff)) as u32;
                self.summary.specials += 1;
            }
            S_IFIFO | S_IFSOCK => self.summary.specials += 1,
            _ => {
                return Err(MkfsError::Populate(format!(
                    "{}: unknown file type",
                    path.display()
                )))
            }
        }
        let ino = self.alloc_inode(inode)?;
        if meta.nlink() > 1 {
            self.hard_links.insert(key, ino);
        }
        Ok(Some((ino, ft)))
    }

    /// Copies a regular file's data; all-zero blocks stay holes.
    fn copy_file(
        &mut self,
        path: &Path,
        meta: &fs::Metadata,
        inode: &mut Inode,
    ) -> Result<(), MkfsError> {
        let size = meta.len();
        if size > max_file_size(self.layout.block_log) {
            return Err(MkfsError::Populate(format!(
                "{}: {size} bytes exceeds the maximum file size {} for {}-byte blocks",
                path.display(),
                max_file_size(self.layout.block_log),
                self.bs
            )));
        }
        let file = fs::File::open(path).map_err(io_err(path.display()))?;
        let mut mb = MapBuilder::new(self.layout.block_log);
        let mut buf = vec![0u8; self.bs];
        let bs = self.bs as u64;
        // Only the blocks SEEK_DATA/SEEK_HOLE say hold data are read (a
        // hole of a terabyte costs two lseek calls); of those, all-zero
        // blocks stay holes too.
        let mut index = 0u64;
        for (start, end) in data_segments(&file, size).map_err(io_err(path.display()))? {
            index = index.max(start / bs);
            while index * bs < end {
                let off = index * bs;
                let n = (size - off).min(bs) as usize;
                buf[n..].fill(0);
                file.read_exact_at(&mut buf[..n], off)
                    .map_err(io_err(format_args!("reading {}", path.display())))?;
                // OR-fold rather than any(): no early exit, so it vectorises.
                if buf.iter().fold(0u8, |acc, &b| acc | b) != 0 {
                    let block = self.alloc_block()?;
                    self.write_block(block, &buf)?;
                    mb.insert(index, block)?;
                }
                index += 1;
            }
        }
        let (map, blocks) = self.finish_map(mb)?;
        inode.map = map;
        inode.size = size;
        inode.blocks = self.sectors(blocks);
        Ok(())
    }

    /// Stores a symlink target inline (up to 60 bytes) or in one block.
    fn copy_symlink(&mut self, path: &Path, inode: &mut Inode) -> Result<(), MkfsError> {
        let target = fs::read_link(path).map_err(io_err(path.display()))?;
        let target = target.as_os_str().as_bytes();
        if target.len() >= self.bs {
            return Err(MkfsError::Populate(format!(
                "{}: symlink target of {} bytes is too long for {}-byte blocks (at most {})",
                path.display(),
                target.len(),
                self.bs,
                self.bs - 1
            )));
        }
        if target.len() <= FAST_SYMLINK_MAX {
            return inode
                .set_fast_symlink(target)
                .map_err(fmt_err(path.display()));
        }
        let mut buf = vec![0u8; self.bs];
        buf[..target.len()].copy_from_slice(target);
        let block = self.alloc_block()?;
        self.write_block(block, &buf)?;
        inode.map[0] = block;
        inode.size = target.len() as u64;
        inode.blocks = self.sectors(1);
        Ok(())
    }

    /// Packs entries into directory blocks ("." and ".." first), writes
    /// them and sets the directory's map, size and block count.
    fn write_dir(
        &mut self,
        ino: u32,
        parent: u32,
        entries: &[(Vec<u8>, u32, u8)],
    ) -> Result<(), MkfsError> {
        let mut blocks = vec![vec![0u8; self.bs]];
        dir_init_first(&mut blocks[0], ino, parent).map_err(fmt_err("directory block"))?;
        for (name, child, ft) in entries {
            let first = blocks.len() == 1;
            let last = blocks.len() - 1;
            match dir_insert(&mut blocks[last], first, name, *child, *ft) {
                Ok(_) => continue,
                Err(FormatError::NoSpace) => {}
                Err(e) => return Err(fmt_err(String::from_utf8_lossy(name))(e)),
            }
            let mut fresh = vec![0u8; self.bs];
            dir_init_empty(&mut fresh).map_err(fmt_err("directory block"))?;
            dir_insert(&mut fresh, false, name, *child, *ft)
                .map_err(fmt_err(String::from_utf8_lossy(name)))?;
            blocks.push(fresh);
        }
        let mut mb = MapBuilder::new(self.layout.block_log);
        for (index, data) in blocks.iter().enumerate() {
            let block = self.alloc_block()?;
            self.write_block(block, data)?;
            mb.insert(index as u64, block)?;
        }
        let (map, count) = self.finish_map(mb)?;
        let size = (blocks.len() * self.bs) as u64;
        let sectors = self.sectors(count);
        let inode = self.inode_mut(ino);
        inode.map = map;
        inode.size = size;
        inode.blocks = sectors;
        Ok(())
    }

    /// Writes both bitmaps, the inode table and finally the superblock.
    fn write_metadata(
        &mut self,
        opts: &MkfsOptions,
        label: [u8; LABEL_SIZE],
    ) -> Result<(), MkfsError> {
        let l = self.layout;
        let used_inodes = self.inodes.len() as u32;
        self.write_bitmap(
            l.bbitmap_start,
            l.bbitmap_blocks,
            l.blocks_count,
            self.next_block,
        )?;
        self.write_bitmap(
            l.ibitmap_start,
            l.ibitmap_blocks,
            l.inodes_count,
            used_inodes,
        )?;
        self.write_inode_table(opts)?;
        let mut sb = Superblock::new(l, opts.uuid, label, opts.now.sec.max(0) as u64);
        sb.free_blocks = l.blocks_count - self.next_block;
        sb.free_inodes = l.inodes_count - used_inodes;
        sb.validate()
            .map_err(|e| MkfsError::Invalid(format!("internal error: superblock invalid: {e}")))?;
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        sb.encode(&mut raw);
        let mut block0 = vec![0u8; self.bs];
        block0[..SUPERBLOCK_SIZE].copy_from_slice(&raw);
        self.write_block(0, &block0)?;
        self.out.flush().map_err(io_err("writing the superblock"))?;
        self.ensure_size()?;
        self.out
            .dev
            .flush()
            .map_err(io_err("flushing the device"))?;
        self.summary.used_blocks = self.next_block;
        self.summary.used_inodes = used_inodes;
        Ok(())
    }

    /// Writes a bitmap region where items `0..used` are in use.
    fn write_bitmap(
        &mut self,
        start: u32,
        blocks: u32,
        total: u32,
        used: u32,
    ) -> Result<(), MkfsError> {
        let bpb = bitmap_bits_per_block(self.layout.block_log);
        let mut buf = vec![0u8; self.bs];
        for k in 0..blocks {
            bitmap_init(&mut buf, k, total).map_err(fmt_err("bitmap block"))?;
            let first = k * bpb;
            let n = used.saturating_sub(first).min(bpb);
            for bit in 0..n {
                bitmap_set(&mut buf, bit).map_err(fmt_err("bitmap block"))?;
            }
            rbfs_format::format::bitmap_seal(&mut buf).map_err(fmt_err("bitmap block"))?;
            self.write_block(start + k, &buf)?;
        }
        Ok(())
    }

    /// Writes every inode-table block: encoded inodes for the ones in use
    /// and zeros (free slots) for the rest.
    fn write_inode_table(&mut self, opts: &MkfsOptions) -> Result<(), MkfsError> {
        let l = self.layout;
        let sb = Superblock::new(l, opts.uuid, [0; LABEL_SIZE], 0);
        let mut table = vec![
            0u8;
            self.inodes
                .len()
                .div_ceil(inodes_per_block(l.block_log) as usize)
                * self.bs
        ];
        for (i, inode) in self.inodes.iter().enumerate() {
            let ino = i as u32 + 1;
            // Generation numbers (for NFS file handles) that differ between
            // filesystems, reproducibly for a given UUID: crc32c of the
            // UUID and the inode number.  The kernel gives a reused inode
            // number a new one.
            let mut inode = *inode;
            inode.generation = !rbfs_format::format::crc32c_update(
                rbfs_format::format::crc32c_update(!0, &opts.uuid),
                &ino.to_le_bytes(),
            );
            inode
                .validate(&sb)
                .map_err(fmt_err(format_args!("internal error: inode {ino}")))?;
            let mut raw = [0u8; INODE_SIZE];
            inode.encode(ino, &mut raw);
            table[i * INODE_SIZE..(i + 1) * INODE_SIZE].copy_from_slice(&raw);
        }
        let used_blocks = (table.len() / self.bs) as u32;
        for (k, chunk) in table.chunks(self.bs).enumerate() {
            self.write_block(l.itable_start + k as u32, chunk)?;
        }
        let zero = vec![0u8; WRITE_CHUNK];
        let mut off = u64::from(l.itable_start + used_blocks) * self.bs as u64;
        let end = u64::from(l.data_start) * self.bs as u64;
        while off < end {
            let n = ((end - off) as usize).min(WRITE_CHUNK);
            self.out
                .write_at(off, &zero[..n])
                .map_err(io_err("writing the inode table"))?;
            off += n as u64;
        }
        Ok(())
    }

    /// Makes sure the device is as long as the filesystem (a growable
    /// image gets its last byte written; a device that is too short fails).
    fn ensure_size(&mut self) -> Result<(), MkfsError> {
        let need = u64::from(self.layout.blocks_count) * self.bs as u64;
        let dev = &mut *self.out.dev;
        let len = dev
            .seek(SeekFrom::End(0))
            .map_err(io_err("sizing the device"))?;
        if len < need {
            dev.seek(SeekFrom::Start(need - 1))
                .map_err(io_err("extending the image"))?;
            dev.write_all(&[0]).map_err(io_err("extending the image"))?;
        }
        Ok(())
    }
}

/// The byte ranges of `file` (of `size` bytes) that may hold data, from
/// `SEEK_DATA`/`SEEK_HOLE`; the whole file as one range where the source
/// filesystem does not support them (`EINVAL`).
#[allow(unsafe_code)]
fn data_segments(file: &fs::File, size: u64) -> io::Result<Vec<(u64, u64)>> {
    let fd = file.as_raw_fd();
    let seek = |pos: u64, whence: libc::c_int| -> io::Result<Option<u64>> {
        let pos =
            libc::off_t::try_from(pos).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: `fd` is an open descriptor owned by `file`; lseek moves
        // only its offset, which nothing else here uses.
        let r = unsafe { libc::lseek(fd, pos, whence) };
        if r >= 0 {
            return Ok(Some(r as u64));
        }
        match io::Error::last_os_error() {
            e if e.raw_os_error() == Some(libc::ENXIO) => Ok(None),
            e => Err(e),
        }
    };
    let mut segments = Vec::new();
    let mut pos = 0;
    while pos < size {
        let start = match seek(pos, libc::SEEK_DATA) {
            Ok(Some(s)) => s,
            Ok(None) => break,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) && pos == 0 => {
                return Ok(vec![(0, size)]);
            }
            Err(e) => return Err(e),
        };
        let end = seek(start, libc::SEEK_HOLE)?.unwrap_or(size).min(size);
        if start >= end {
            break;
        }
        segments.push((start, end));
        pos = end;
    }
    Ok(segments)
}
