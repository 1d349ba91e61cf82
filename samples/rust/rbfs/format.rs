// SPDX-License-Identifier: GPL-2.0

//! rbfs on-disk format, version 1.
//!
//! This file is the single definition of the format.  The kernel module
//! compiles it as `mod format;` and the userspace tools (`mkfs.rbfs`, the
//! image checker) include it with `#[path]`, so both sides encode, decode and
//! checksum with the same code.  It therefore uses only `core`, contains no
//! `unsafe`, and never panics on any input: every parser takes untrusted bytes
//! and answers with a [`FormatError`] naming what is wrong.
//!
//! All integers are little endian at the explicit byte offsets given by the
//! `*_OFF` constants; nothing is transmuted.  `Documentation/filesystems/rbfs.rst`
//! describes the same layout in prose and tables.

use core::fmt;

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

/// Which checksummed structure failed its crc32c check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Structure {
    /// The superblock in the first 512 bytes of block 0.
    Superblock,
    /// One 256-byte inode (checksum also covers the inode number).
    Inode,
    /// An indirect block of the block map.
    Indirect,
    /// A block of the free-block or free-inode bitmap.
    Bitmap,
    /// A directory block (checksum stored in its tail record).
    DirBlock,
}

/// Everything that can be wrong with on-disk bytes or with a request to
/// modify them.  Each variant names the problem so the kernel can log it
/// without allocating (see [`FormatError::as_str`] and the `Display` impl).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormatError {
    /// A buffer has the wrong length for the structure.
    BufferSize,
    /// The superblock magic is not [`MAGIC`].
    BadMagic,
    /// A crc32c mismatch in the named structure.
    BadChecksum(Structure),
    /// The superblock's format version is not [`VERSION`].
    UnsupportedVersion(u32),
    /// Incompatible feature bits this code does not know (the mask of them).
    UnknownIncompatFeatures(u32),
    /// A block size that is not 512, 1024, 2048 or 4096 (the raw value:
    /// log2 from the superblock, or a buffer length in bytes).
    BadBlockSize(u32),
    /// A superblock count or region that is inconsistent; names the field.
    BadGeometry(&'static str),
    /// A superblock field that is not about geometry is invalid; names it.
    BadField(&'static str),
    /// An inode number that is 0 or beyond the inode count.
    BadInodeNumber(u32),
    /// An inode field is invalid; names the field.
    BadInode(&'static str),
    /// A block pointer outside the data region.
    BadBlockNumber(u32),
    /// A malformed directory entry at a byte offset within its block.
    BadEntry {
        /// Byte offset of the entry in the directory block.
        offset: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The tail record of a directory block is missing or malformed.
    BadDirTail,
    /// A bitmap block is inconsistent (padding bits, index); names the problem.
    BadBitmap(&'static str),
    /// A name is empty, contains '/' or NUL, or is "." or "..".
    BadName,
    /// A directory entry file type that is not one of the `DT_*` values.
    BadFileType(u8),
    /// A name is longer than [`NAME_MAX`] bytes.
    NameTooLong,
    /// A directory entry does not fit in the block.
    NoSpace,
    /// A directory entry with this name already exists in the block.
    Exists,
    /// No directory entry with this name exists in the block.
    NotFound,
}

impl FormatError {
    /// A short description that needs no allocation, e.g. for `pr_err!`.
    pub fn as_str(&self) -> &'static str {
        match *self {
            FormatError::BufferSize => "buffer has the wrong size",
            FormatError::BadMagic => "bad magic number",
            FormatError::BadChecksum(s) => match s {
                Structure::Superblock => "bad superblock checksum",
                Structure::Inode => "bad inode checksum",
                Structure::Indirect => "bad indirect block checksum",
                Structure::Bitmap => "bad bitmap block checksum",
                Structure::DirBlock => "bad directory block checksum",
            },
            FormatError::UnsupportedVersion(_) => "unsupported format version",
            FormatError::UnknownIncompatFeatures(_) => "unknown incompatible features",
            FormatError::BadBlockSize(_) => "unsupported block size",
            FormatError::BadGeometry(what) => what,
            FormatError::BadField(what) => what,
            FormatError::BadInodeNumber(_) => "inode number out of range",
            FormatError::BadInode(what) => what,
            FormatError::BadBlockNumber(_) => "block number outside the data region",
            FormatError::BadEntry { reason, .. } => reason,
            FormatError::BadDirTail => "bad directory block tail",
            FormatError::BadBitmap(what) => what,
            FormatError::BadName => "invalid file name",
            FormatError::BadFileType(_) => "invalid directory entry file type",
            FormatError::NameTooLong => "file name too long",
            FormatError::NoSpace => "no space in directory block",
            FormatError::Exists => "directory entry exists",
            FormatError::NotFound => "directory entry not found",
        }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::UnsupportedVersion(v) => write!(f, "{} {}", self.as_str(), v),
            FormatError::UnknownIncompatFeatures(m) => {
                write!(f, "{} {:#x}", self.as_str(), m)
            }
            FormatError::BadBlockSize(v) => write!(f, "{} ({})", self.as_str(), v),
            FormatError::BadInodeNumber(n) => write!(f, "{} ({})", self.as_str(), n),
            FormatError::BadBlockNumber(n) => write!(f, "{} ({})", self.as_str(), n),
            FormatError::BadEntry { offset, reason } => {
                write!(f, "bad directory entry at offset {}: {}", offset, reason)
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// Result type of every parser and encoder in this module.
pub type Result<T> = core::result::Result<T, FormatError>;

// ---------------------------------------------------------------------------
// crc32c (Castagnoli), slicing-by-8 with tables built at compile time
// ---------------------------------------------------------------------------

/// Reflected crc32c polynomial.
pub const CRC32C_POLY: u32 = 0x82F6_3B78;

/// Builds the eight slicing tables so both kernel and userspace get the same
/// constants without a build script.
const fn crc32c_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ CRC32C_POLY
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static CRC32C_TABLES: [[u32; 256]; 8] = crc32c_tables();

/// Table lookup; the index is masked to 0..=255 so it is always in bounds.
#[inline]
fn crc_t(table: usize, v: u32) -> u32 {
    CRC32C_TABLES[table & 7][(v & 0xff) as usize]
}

/// Feeds `data` into a running crc32c state (start from `!0`, finish with
/// `!state`).  Split out so the inode checksum can cover the inode number.
pub fn crc32c_update(mut crc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let &[b0, b1, b2, b3, b4, b5, b6, b7] = c else {
            continue;
        };
        let lo = u32::from_le_bytes([b0, b1, b2, b3]) ^ crc;
        let hi = u32::from_le_bytes([b4, b5, b6, b7]);
        crc = crc_t(7, lo)
            ^ crc_t(6, lo >> 8)
            ^ crc_t(5, lo >> 16)
            ^ crc_t(4, lo >> 24)
            ^ crc_t(3, hi)
            ^ crc_t(2, hi >> 8)
            ^ crc_t(1, hi >> 16)
            ^ crc_t(0, hi >> 24);
    }
    for &b in chunks.remainder() {
        crc = (crc >> 8) ^ crc_t(0, crc ^ u32::from(b));
    }
    crc
}

/// Product of two polynomials over GF(2) modulo the crc32c polynomial, in
/// the reflected bit order the crc uses (bit 31 is `x^0`).
const fn gf2_mulmod(a: u32, mut b: u32) -> u32 {
    let mut p = 0;
    let mut m = 1u32 << 31;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        b = if b & 1 != 0 {
            (b >> 1) ^ CRC32C_POLY
        } else {
            b >> 1
        };
        m >>= 1;
    }
    p
}

/// Longest run of zero bytes [`crc32c_zeros`] appends in one step.
const ZERO_POWERS: usize = 4096;

/// `x^(8n) mod P` for every `n` below [`ZERO_POWERS`]: multiplying a raw crc
/// state by entry `n` appends `n` zero bytes to the message.
const fn zero_byte_powers() -> [u32; ZERO_POWERS] {
    let mut t = [0u32; ZERO_POWERS];
    // x^0 is bit 31; x^8 is bit 23.
    t[0] = 1 << 31;
    let mut n = 1;
    while n < ZERO_POWERS {
        t[n] = gf2_mulmod(t[n - 1], 1 << 23);
        n += 1;
    }
    t
}

static CRC32C_ZERO_POWERS: [u32; ZERO_POWERS] = zero_byte_powers();

/// Appends `n` zero bytes to a raw crc32c state (no initial value, no final
/// inversion), in time independent of `n` for every block size.
fn crc32c_zeros(mut raw: u32, mut n: usize) -> u32 {
    while n > 0 {
        let step = n.min(ZERO_POWERS - 1);
        raw = gf2_mulmod(CRC32C_ZERO_POWERS[step], raw);
        n -= step;
    }
    raw
}

/// Standard crc32c of `data` (init all ones, final inversion), as used for
/// every checksum in the format.  `crc32c(b"123456789") == 0xE306_9283`.
pub fn crc32c(data: &[u8]) -> u32 {
    !crc32c_update(!0, data)
}

// ---------------------------------------------------------------------------
// Little-endian field access that cannot panic
// ---------------------------------------------------------------------------

/// Reads a u16 at `off`; 0 when out of range (callers check lengths first).
fn rd16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(&[x0, x1]) => u16::from_le_bytes([x0, x1]),
        _ => 0,
    }
}

/// Reads a u32 at `off`; 0 when out of range (callers check lengths first).
fn rd32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(&[x0, x1, x2, x3]) => u32::from_le_bytes([x0, x1, x2, x3]),
        _ => 0,
    }
}

/// Reads a u64 at `off`; 0 when out of range (callers check lengths first).
fn rd64(b: &[u8], off: usize) -> u64 {
    let lo = u64::from(rd32(b, off));
    let hi = u64::from(rd32(b, off.wrapping_add(4)));
    lo | (hi << 32)
}

/// Writes `v` at `off` if it fits; encoders size their buffers first.
fn wr_bytes(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(dst) = b.get_mut(off..off.wrapping_add(v.len())) {
        dst.copy_from_slice(v);
    }
}

fn wr16(b: &mut [u8], off: usize, v: u16) {
    wr_bytes(b, off, &v.to_le_bytes());
}

fn wr32(b: &mut [u8], off: usize, v: u32) {
    wr_bytes(b, off, &v.to_le_bytes());
}

fn wr64(b: &mut [u8], off: usize, v: u64) {
    wr_bytes(b, off, &v.to_le_bytes());
}

/// crc32c of everything but the last 4 bytes, which hold the stored value.
/// Shared by bitmap and indirect blocks, whose layout ends that way.
fn trailer_crc_ok(buf: &[u8]) -> bool {
    let Some(body_len) = buf.len().checked_sub(4) else {
        return false;
    };
    let (body, _) = buf.split_at(body_len);
    crc32c(body) == rd32(buf, body_len)
}

/// Stores the crc32c of everything but the last 4 bytes into the last 4.
fn trailer_crc_seal(buf: &mut [u8]) {
    if let Some(body_len) = buf.len().checked_sub(4) {
        let crc = crc32c(buf.split_at(body_len).0);
        wr32(buf, body_len, crc);
    }
}

/// Updates the trailer checksum of `buf` (which must have been right) after
/// the bytes at `off` changed from `old` to what `buf` holds now.  The crc
/// is affine in the message, so the change alone, carried to the end of the
/// body, is enough: a few dozen operations instead of a pass over the block.
fn trailer_crc_patch(buf: &mut [u8], off: usize, old: &[u8]) {
    let Some(body_len) = buf.len().checked_sub(4) else {
        return;
    };
    let Some(new) = off
        .checked_add(old.len())
        .filter(|&end| end <= body_len)
        .and_then(|end| buf.get(off..end))
    else {
        // Not within the body: no shortcut, but still a right checksum.
        return trailer_crc_seal(buf);
    };
    let mut raw = 0u32;
    for (o, n) in old.iter().zip(new) {
        raw = (raw >> 8) ^ crc_t(0, raw ^ u32::from(o ^ n));
    }
    let tail = body_len - off - old.len();
    let crc = rd32(buf, body_len) ^ crc32c_zeros(raw, tail);
    wr32(buf, body_len, crc);
}

// ---------------------------------------------------------------------------
// Global constants
// ---------------------------------------------------------------------------

/// Superblock magic: the bytes "RBFS" at offset 0 of the device.
pub const MAGIC: u32 = 0x5346_4252;
/// The on-disk format version described by this file.
pub const VERSION: u32 = 1;
/// Smallest block size, log2 (512 bytes).
pub const MIN_BLOCK_LOG: u32 = 9;
/// Largest block size, log2 (4096 bytes).
pub const MAX_BLOCK_LOG: u32 = 12;
/// Block size used by mkfs when none is given, log2 (1024 bytes).
pub const DEFAULT_BLOCK_LOG: u32 = 10;
/// Size of the superblock; it occupies bytes 0..512 of block 0.
pub const SUPERBLOCK_SIZE: usize = 512;
/// Size of one on-disk inode.
pub const INODE_SIZE: usize = 256;
/// Inode number of the root directory.
pub const ROOT_INO: u32 = 1;
/// Largest number of inodes (inode numbers are u32 and 0 means none).
pub const MAX_INODES: u32 = u32::MAX - 1;
/// Largest number of blocks (block numbers are u32).
pub const MAX_BLOCKS: u32 = u32::MAX;
/// Longest file name in a directory entry.
pub const NAME_MAX: usize = 255;
/// Size of the volume label field (NUL padded, UTF-8).
pub const LABEL_SIZE: usize = 32;
/// Size of the UUID field.
pub const UUID_SIZE: usize = 16;
/// Size of `st_blocks` units; the inode block count is kept in these units.
pub const SECTOR_SIZE: u64 = 512;

/// Compat features this code understands (none are defined).  A compat
/// feature may be ignored by code that does not know it.
pub const FEATURE_COMPAT_SUPPORTED: u32 = 0;
/// Incompat features this code understands (none are defined); any other
/// bit refuses a mount.
pub const FEATURE_INCOMPAT_SUPPORTED: u32 = 0;
/// Read-only-compat feature: inodes may carry flags ([`INODE_FLAGS_KNOWN`]).
/// Without it every inode's flags are 0.  Read-only-compat because code
/// that ignores the flags could write to an immutable or append-only file
/// and would write the flags back as 0.  The kernel sets it, on the disk
/// first, when it first gives an inode a flag.
pub const FEATURE_RO_COMPAT_INODE_FLAGS: u32 = 1;
/// Read-only-compat features this code understands; any other bit forces a
/// read-only mount.
pub const FEATURE_RO_COMPAT_SUPPORTED: u32 = FEATURE_RO_COMPAT_INODE_FLAGS;

/// Inode flag: immutable (`chattr +i`).  The values are the kernel's
/// `FS_*_FL`, as ext2 stores them.
pub const INODE_FLAG_IMMUTABLE: u32 = 0x10;
/// Inode flag: append only (`chattr +a`).
pub const INODE_FLAG_APPEND: u32 = 0x20;
/// Inode flag: not to be dumped (`chattr +d`).
pub const INODE_FLAG_NODUMP: u32 = 0x40;
/// Inode flag: no access-time updates (`chattr +A`).
pub const INODE_FLAG_NOATIME: u32 = 0x80;
/// Every inode flag this version defines; an inode with any other is
/// invalid.
pub const INODE_FLAGS_KNOWN: u32 =
    INODE_FLAG_IMMUTABLE | INODE_FLAG_APPEND | INODE_FLAG_NODUMP | INODE_FLAG_NOATIME;
/// The flags a new inode takes from its directory.
pub const INODE_FLAGS_INHERITED: u32 = INODE_FLAG_NODUMP | INODE_FLAG_NOATIME;

/// Superblock `state`: unmounted cleanly.
pub const STATE_CLEAN: u32 = 1;
/// Superblock `state`: mounted read-write, or not unmounted cleanly.
pub const STATE_DIRTY: u32 = 2;

/// Checks a block size given as log2.
pub fn check_block_log(block_log: u32) -> Result<()> {
    if (MIN_BLOCK_LOG..=MAX_BLOCK_LOG).contains(&block_log) {
        Ok(())
    } else {
        Err(FormatError::BadBlockSize(block_log))
    }
}

/// Block size in bytes of a buffer that should hold exactly one block;
/// returns its log2.
pub fn block_log_of_len(len: usize) -> Result<u32> {
    match len {
        512 => Ok(9),
        1024 => Ok(10),
        2048 => Ok(11),
        4096 => Ok(12),
        _ => Err(FormatError::BadBlockSize(
            u32::try_from(len).unwrap_or(u32::MAX),
        )),
    }
}

/// Bits one bitmap block holds: all bytes but the 4-byte crc trailer.
pub fn bitmap_bits_per_block(block_log: u32) -> u32 {
    ((1u32 << (block_log & 31)).saturating_sub(4)).saturating_mul(8)
}

/// Inodes per inode-table block.
pub fn inodes_per_block(block_log: u32) -> u32 {
    (1u32 << (block_log & 31)) / INODE_SIZE as u32
}

/// Block pointers per indirect block: all u32 slots but the crc trailer.
pub fn ptrs_per_indirect(block_log: u32) -> u32 {
    ((1u32 << (block_log & 31)) / 4).saturating_sub(1)
}

// ---------------------------------------------------------------------------
// Layout of the regions
// ---------------------------------------------------------------------------

/// Where every region lies.  mkfs computes it with [`Layout::compute`] and
/// superblock validation recomputes it and requires the stored regions to be
/// identical, so the regions always tile the device in this order:
/// block 0 (superblock), block bitmap, inode bitmap, inode table, data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Block size, log2 (9..=12).
    pub block_log: u32,
    /// Total blocks on the filesystem, block 0 included.
    pub blocks_count: u32,
    /// Total inodes; inode numbers are 1..=inodes_count.
    pub inodes_count: u32,
    /// First block of the free-block bitmap (always 1).
    pub bbitmap_start: u32,
    /// Blocks in the free-block bitmap.
    pub bbitmap_blocks: u32,
    /// First block of the free-inode bitmap.
    pub ibitmap_start: u32,
    /// Blocks in the free-inode bitmap.
    pub ibitmap_blocks: u32,
    /// First block of the inode table.
    pub itable_start: u32,
    /// Blocks in the inode table.
    pub itable_blocks: u32,
    /// First data block.
    pub data_start: u32,
    /// Blocks in the data region (it runs to the end of the filesystem).
    pub data_blocks: u32,
}

/// `ceil(a / b)` for b > 0, in u64 so nothing overflows.
fn div_ceil64(a: u64, b: u64) -> u64 {
    if b == 0 {
        return 0;
    }
    a / b + u64::from(a % b != 0)
}

impl Layout {
    /// Computes the canonical layout for a block size, block count and
    /// inode count, or says why no filesystem of that shape can exist.
    pub fn compute(block_log: u32, blocks_count: u32, inodes_count: u32) -> Result<Layout> {
        check_block_log(block_log)?;
        if inodes_count == 0 {
            return Err(FormatError::BadGeometry("inode count is zero"));
        }
        if inodes_count > MAX_INODES {
            return Err(FormatError::BadGeometry("inode count too large"));
        }
        let bpb = u64::from(bitmap_bits_per_block(block_log));
        let bbitmap_blocks = div_ceil64(u64::from(blocks_count), bpb);
        let ibitmap_blocks = div_ceil64(u64::from(inodes_count), bpb);
        let itable_blocks = div_ceil64(
            u64::from(inodes_count),
            u64::from(inodes_per_block(block_log)),
        );
        // Block 0, the regions, and at least one data block for the root.
        let data_start = 1 + bbitmap_blocks + ibitmap_blocks + itable_blocks;
        if data_start >= u64::from(blocks_count) {
            return Err(FormatError::BadGeometry(
                "metadata regions do not fit in the block count",
            ));
        }
        // All values are now < blocks_count <= u32::MAX.
        let to32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        Ok(Layout {
            block_log,
            blocks_count,
            inodes_count,
            bbitmap_start: 1,
            bbitmap_blocks: to32(bbitmap_blocks),
            ibitmap_start: to32(1 + bbitmap_blocks),
            ibitmap_blocks: to32(ibitmap_blocks),
            itable_start: to32(1 + bbitmap_blocks + ibitmap_blocks),
            itable_blocks: to32(itable_blocks),
            data_start: to32(data_start),
            data_blocks: to32(u64::from(blocks_count) - data_start),
        })
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        1usize << (self.block_log & 31)
    }
}

// ---------------------------------------------------------------------------
// Superblock
// ---------------------------------------------------------------------------

/// Superblock field offsets (bytes from the start of the device).
pub const SB_MAGIC_OFF: usize = 0;
/// Format version (u32).
pub const SB_VERSION_OFF: usize = 4;
/// Compatible feature bits (u32).
pub const SB_COMPAT_OFF: usize = 8;
/// Incompatible feature bits (u32).
pub const SB_INCOMPAT_OFF: usize = 12;
/// Read-only-compatible feature bits (u32).
pub const SB_RO_COMPAT_OFF: usize = 16;
/// Block size as log2 (u32).
pub const SB_BLOCK_LOG_OFF: usize = 20;
/// Inode size in bytes, always 256 (u32).
pub const SB_INODE_SIZE_OFF: usize = 24;
/// Clean/dirty state (u32).
pub const SB_STATE_OFF: usize = 28;
/// Total blocks (u32).
pub const SB_BLOCKS_OFF: usize = 32;
/// Free blocks (u32).
pub const SB_FREE_BLOCKS_OFF: usize = 36;
/// Total inodes (u32).
pub const SB_INODES_OFF: usize = 40;
/// Free inodes (u32).
pub const SB_FREE_INODES_OFF: usize = 44;
/// Root directory inode number (u32).
pub const SB_ROOT_OFF: usize = 48;
/// Block bitmap start (u32); length follows at +4.
pub const SB_BBITMAP_OFF: usize = 52;
/// Inode bitmap start (u32); length follows at +4.
pub const SB_IBITMAP_OFF: usize = 60;
/// Inode table start (u32); length follows at +4.
pub const SB_ITABLE_OFF: usize = 68;
/// Data region start (u32); length follows at +4.
pub const SB_DATA_OFF: usize = 76;
/// mkfs time, seconds since the epoch (u64).
pub const SB_MKFS_TIME_OFF: usize = 88;
/// Last mount time, seconds (u64).
pub const SB_MOUNT_TIME_OFF: usize = 96;
/// Last write time, seconds (u64).
pub const SB_WRITE_TIME_OFF: usize = 104;
/// Filesystem UUID (16 bytes).
pub const SB_UUID_OFF: usize = 112;
/// Volume label (32 bytes, NUL padded).
pub const SB_LABEL_OFF: usize = 128;
/// crc32c of bytes 0..508 (u32).
pub const SB_CRC_OFF: usize = 508;

/// The decoded superblock.  [`Superblock::parse`] only returns one whose
/// every field has been validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Superblock {
    /// Format version, [`VERSION`].
    pub version: u32,
    /// Compatible feature bits.
    pub feature_compat: u32,
    /// Incompatible feature bits.
    pub feature_incompat: u32,
    /// Read-only-compatible feature bits.
    pub feature_ro_compat: u32,
    /// Region layout, counts and block size.
    pub layout: Layout,
    /// [`STATE_CLEAN`] or [`STATE_DIRTY`].
    pub state: u32,
    /// Free data blocks.
    pub free_blocks: u32,
    /// Free inodes.
    pub free_inodes: u32,
    /// Root directory inode number, [`ROOT_INO`].
    pub root_ino: u32,
    /// Creation time, seconds since the epoch.
    pub mkfs_time: u64,
    /// Last mount time, seconds since the epoch.
    pub mount_time: u64,
    /// Last write time, seconds since the epoch.
    pub write_time: u64,
    /// Filesystem UUID.
    pub uuid: [u8; UUID_SIZE],
    /// Volume label, UTF-8, NUL padded.
    pub label: [u8; LABEL_SIZE],
}

/// Checks a label: valid UTF-8 up to the first NUL and only NULs after it.
pub fn check_label(label: &[u8; LABEL_SIZE]) -> Result<()> {
    let len = label.iter().position(|&b| b == 0).unwrap_or(LABEL_SIZE);
    let (text, pad) = label.split_at(len);
    if pad.iter().any(|&b| b != 0) {
        return Err(FormatError::BadField("label is not NUL padded"));
    }
    if core::str::from_utf8(text).is_err() {
        return Err(FormatError::BadField("label is not UTF-8"));
    }
    Ok(())
}

impl Superblock {
    /// A fresh superblock for `layout` with every block and inode but the
    /// metadata free; mkfs adjusts the free counts for what it allocates.
    pub fn new(layout: Layout, uuid: [u8; UUID_SIZE], label: [u8; LABEL_SIZE], now: u64) -> Self {
        Superblock {
            version: VERSION,
            feature_compat: 0,
            feature_incompat: 0,
            feature_ro_compat: 0,
            layout,
            state: STATE_CLEAN,
            free_blocks: layout.data_blocks,
            free_inodes: layout.inodes_count,
            root_ino: ROOT_INO,
            mkfs_time: now,
            mount_time: 0,
            write_time: now,
            uuid,
            label,
        }
    }

    /// Decodes and validates the superblock from the first 512 bytes of
    /// `buf` (which may be a whole block 0).  Checks, in order: length,
    /// magic, version, checksum, incompat features, then every field.
    pub fn parse(buf: &[u8]) -> Result<Superblock> {
        let b = buf.get(..SUPERBLOCK_SIZE).ok_or(FormatError::BufferSize)?;
        if rd32(b, SB_MAGIC_OFF) != MAGIC {
            return Err(FormatError::BadMagic);
        }
        let version = rd32(b, SB_VERSION_OFF);
        if version != VERSION {
            return Err(FormatError::UnsupportedVersion(version));
        }
        if crc32c(b.split_at(SB_CRC_OFF).0) != rd32(b, SB_CRC_OFF) {
            return Err(FormatError::BadChecksum(Structure::Superblock));
        }
        // Version 1 fixes the inode size; the field exists so that tools
        // can tell a foreign layout apart from corruption.
        if rd32(b, SB_INODE_SIZE_OFF) != INODE_SIZE as u32 {
            return Err(FormatError::BadField("inode size is not 256"));
        }
        let sb = Self::decode_fields(b);
        sb.validate()?;
        Ok(sb)
    }

    /// Field decoding only; `parse` validates afterwards.
    fn decode_fields(b: &[u8]) -> Superblock {
        let mut uuid = [0u8; UUID_SIZE];
        uuid.copy_from_slice(
            b.get(SB_UUID_OFF..SB_UUID_OFF + UUID_SIZE)
                .unwrap_or(&[0; 16]),
        );
        let mut label = [0u8; LABEL_SIZE];
        label.copy_from_slice(
            b.get(SB_LABEL_OFF..SB_LABEL_OFF + LABEL_SIZE)
                .unwrap_or(&[0; 32]),
        );
        Superblock {
            version: rd32(b, SB_VERSION_OFF),
            feature_compat: rd32(b, SB_COMPAT_OFF),
            feature_incompat: rd32(b, SB_INCOMPAT_OFF),
            feature_ro_compat: rd32(b, SB_RO_COMPAT_OFF),
            layout: Layout {
                block_log: rd32(b, SB_BLOCK_LOG_OFF),
                blocks_count: rd32(b, SB_BLOCKS_OFF),
                inodes_count: rd32(b, SB_INODES_OFF),
                bbitmap_start: rd32(b, SB_BBITMAP_OFF),
                bbitmap_blocks: rd32(b, SB_BBITMAP_OFF + 4),
                ibitmap_start: rd32(b, SB_IBITMAP_OFF),
                ibitmap_blocks: rd32(b, SB_IBITMAP_OFF + 4),
                itable_start: rd32(b, SB_ITABLE_OFF),
                itable_blocks: rd32(b, SB_ITABLE_OFF + 4),
                data_start: rd32(b, SB_DATA_OFF),
                data_blocks: rd32(b, SB_DATA_OFF + 4),
            },
            state: rd32(b, SB_STATE_OFF),
            free_blocks: rd32(b, SB_FREE_BLOCKS_OFF),
            free_inodes: rd32(b, SB_FREE_INODES_OFF),
            root_ino: rd32(b, SB_ROOT_OFF),
            mkfs_time: rd64(b, SB_MKFS_TIME_OFF),
            mount_time: rd64(b, SB_MOUNT_TIME_OFF),
            write_time: rd64(b, SB_WRITE_TIME_OFF),
            uuid,
            label,
        }
    }

    /// Validates every field of a decoded superblock (the checksum has
    /// already been checked by `parse`).  Also used by mkfs before writing.
    pub fn validate(&self) -> Result<()> {
        if self.version != VERSION {
            return Err(FormatError::UnsupportedVersion(self.version));
        }
        let unknown = self.feature_incompat & !FEATURE_INCOMPAT_SUPPORTED;
        if unknown != 0 {
            return Err(FormatError::UnknownIncompatFeatures(unknown));
        }
        let l = &self.layout;
        let want = Layout::compute(l.block_log, l.blocks_count, l.inodes_count)?;
        check_regions(l, &want)?;
        if self.free_blocks > l.data_blocks {
            return Err(FormatError::BadGeometry(
                "free block count exceeds data blocks",
            ));
        }
        if self.free_inodes >= l.inodes_count {
            return Err(FormatError::BadGeometry(
                "free inode count leaves no root inode",
            ));
        }
        if self.root_ino != ROOT_INO {
            return Err(FormatError::BadGeometry("root inode is not 1"));
        }
        if self.state != STATE_CLEAN && self.state != STATE_DIRTY {
            return Err(FormatError::BadField("state is neither clean nor dirty"));
        }
        check_label(&self.label)
    }

    /// Encodes into a 512-byte buffer, checksum included.  The caller puts
    /// it at offset 0 of block 0 and keeps the rest of block 0 zero.
    pub fn encode(&self, out: &mut [u8; SUPERBLOCK_SIZE]) {
        let l = &self.layout;
        out.fill(0);
        wr32(out, SB_MAGIC_OFF, MAGIC);
        wr32(out, SB_VERSION_OFF, self.version);
        wr32(out, SB_COMPAT_OFF, self.feature_compat);
        wr32(out, SB_INCOMPAT_OFF, self.feature_incompat);
        wr32(out, SB_RO_COMPAT_OFF, self.feature_ro_compat);
        wr32(out, SB_BLOCK_LOG_OFF, l.block_log);
        wr32(out, SB_INODE_SIZE_OFF, INODE_SIZE as u32);
        wr32(out, SB_STATE_OFF, self.state);
        wr32(out, SB_BLOCKS_OFF, l.blocks_count);
        wr32(out, SB_FREE_BLOCKS_OFF, self.free_blocks);
        wr32(out, SB_INODES_OFF, l.inodes_count);
        wr32(out, SB_FREE_INODES_OFF, self.free_inodes);
        wr32(out, SB_ROOT_OFF, self.root_ino);
        wr32(out, SB_BBITMAP_OFF, l.bbitmap_start);
        wr32(out, SB_BBITMAP_OFF + 4, l.bbitmap_blocks);
        wr32(out, SB_IBITMAP_OFF, l.ibitmap_start);
        wr32(out, SB_IBITMAP_OFF + 4, l.ibitmap_blocks);
        wr32(out, SB_ITABLE_OFF, l.itable_start);
        wr32(out, SB_ITABLE_OFF + 4, l.itable_blocks);
        wr32(out, SB_DATA_OFF, l.data_start);
        wr32(out, SB_DATA_OFF + 4, l.data_blocks);
        wr64(out, SB_MKFS_TIME_OFF, self.mkfs_time);
        wr64(out, SB_MOUNT_TIME_OFF, self.mount_time);
        wr64(out, SB_WRITE_TIME_OFF, self.write_time);
        wr_bytes(out, SB_UUID_OFF, &self.uuid);
        wr_bytes(out, SB_LABEL_OFF, &self.label);
        let crc = crc32c(out.split_at(SB_CRC_OFF).0);
        wr32(out, SB_CRC_OFF, crc);
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> usize {
        self.layout.block_size()
    }

    /// Read-only-compat bits this code does not know; non-zero means the
    /// filesystem may only be mounted read-only.
    pub fn unknown_ro_compat(&self) -> u32 {
        self.feature_ro_compat & !FEATURE_RO_COMPAT_SUPPORTED
    }

    /// Checks that the filesystem fits on a device of `device_bytes`.
    pub fn check_device_size(&self, device_bytes: u64) -> Result<()> {
        let need = u64::from(self.layout.blocks_count) << (self.layout.block_log & 31);
        if need > device_bytes {
            return Err(FormatError::BadGeometry(
                "filesystem is larger than the device",
            ));
        }
        Ok(())
    }

    /// Whether `block` may be pointed to by a block map or directory: a
    /// block of the data region.
    pub fn is_data_block(&self, block: u32) -> bool {
        (self.layout.data_start..self.layout.blocks_count).contains(&block)
    }

    /// Checks a non-zero block pointer read from disk.
    pub fn check_data_block(&self, block: u32) -> Result<()> {
        if self.is_data_block(block) {
            Ok(())
        } else {
            Err(FormatError::BadBlockNumber(block))
        }
    }

    /// Checks an inode number read from disk (directory entry, superblock).
    pub fn check_ino(&self, ino: u32) -> Result<()> {
        if (1..=self.layout.inodes_count).contains(&ino) {
            Ok(())
        } else {
            Err(FormatError::BadInodeNumber(ino))
        }
    }

    /// Where inode `ino` lives: (block number, byte offset in that block).
    pub fn inode_location(&self, ino: u32) -> Result<(u32, usize)> {
        self.check_ino(ino)?;
        let per = inodes_per_block(self.layout.block_log).max(1);
        let idx = ino - 1;
        let block = self.layout.itable_start.saturating_add(idx / per);
        Ok((block, (idx % per) as usize * INODE_SIZE))
    }

    /// Where the free-block bit of `block` lives: (bitmap block number,
    /// bit within that block).
    pub fn block_bit_location(&self, block: u32) -> Result<(u32, u32)> {
        if block >= self.layout.blocks_count {
            return Err(FormatError::BadBlockNumber(block));
        }
        let bpb = bitmap_bits_per_block(self.layout.block_log).max(1);
        Ok((
            self.layout.bbitmap_start.saturating_add(block / bpb),
            block % bpb,
        ))
    }

    /// Where the free-inode bit of `ino` lives: (bitmap block number, bit).
    /// Bit 0 of the first inode bitmap block is inode 1.
    pub fn inode_bit_location(&self, ino: u32) -> Result<(u32, u32)> {
        self.check_ino(ino)?;
        let bpb = bitmap_bits_per_block(self.layout.block_log).max(1);
        let idx = ino - 1;
        Ok((
            self.layout.ibitmap_start.saturating_add(idx / bpb),
            idx % bpb,
        ))
    }
}

/// Compares stored regions with the canonical ones and names the first
/// field that differs.
fn check_regions(got: &Layout, want: &Layout) -> Result<()> {
    let checks: [(u32, u32, &'static str); 8] = [
        (
            got.bbitmap_start,
            want.bbitmap_start,
            "block bitmap start is not 1",
        ),
        (
            got.bbitmap_blocks,
            want.bbitmap_blocks,
            "block bitmap length does not match block count",
        ),
        (
            got.ibitmap_start,
            want.ibitmap_start,
            "inode bitmap does not follow block bitmap",
        ),
        (
            got.ibitmap_blocks,
            want.ibitmap_blocks,
            "inode bitmap length does not match inode count",
        ),
        (
            got.itable_start,
            want.itable_start,
            "inode table does not follow inode bitmap",
        ),
        (
            got.itable_blocks,
            want.itable_blocks,
            "inode table length does not match inode count",
        ),
        (
            got.data_start,
            want.data_start,
            "data region does not follow inode table",
        ),
        (
            got.data_blocks,
            want.data_blocks,
            "data region does not end at the block count",
        ),
    ];
    for (g, w, what) in checks {
        if g != w {
            return Err(FormatError::BadGeometry(what));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Block map
// ---------------------------------------------------------------------------

/// Direct block pointers in an inode.
pub const N_DIRECT: usize = 12;
/// Indirect levels: single, double, triple and quadruple.
pub const N_LEVELS: usize = 4;
/// Pointers in an inode's block map (direct, then one root per level).
pub const N_MAP: usize = N_DIRECT + N_LEVELS;

/// Path from an inode to the pointer of one file block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockPath {
    /// 0 for a direct block, else the number of indirect blocks to pass
    /// through (1 single .. 4 quadruple).
    pub depth: usize,
    /// Index into the inode's block map: `index` itself for direct blocks,
    /// `N_DIRECT + depth - 1` for indirect trees.
    pub slot: usize,
    /// Index in each indirect block, from the root (`idx[0]`) down to the
    /// block that holds the data pointer (`idx[depth - 1]`).
    pub idx: [u32; N_LEVELS],
}

/// Number of file blocks reachable through a tree of `depth` levels:
/// `ptrs_per_indirect ^ depth` (fits u64 for every block size).  Depths
/// beyond [`N_LEVELS`] are treated as [`N_LEVELS`].
pub fn blocks_at_depth(block_log: u32, depth: usize) -> u64 {
    let p = u64::from(ptrs_per_indirect(block_log));
    let mut n = 1u64;
    for _ in 0..depth.min(N_LEVELS) {
        n = n.saturating_mul(p);
    }
    n
}

/// Number of file blocks the block map can address.
pub fn max_file_blocks(block_log: u32) -> u64 {
    let mut n = N_DIRECT as u64;
    for d in 1..=N_LEVELS {
        n = n.saturating_add(blocks_at_depth(block_log, d));
    }
    n
}

/// Largest file size in bytes for a block size (also the limit on a
/// directory's size).
pub fn max_file_size(block_log: u32) -> u64 {
    max_file_blocks(block_log).saturating_mul(1u64 << (block_log & 31))
}

/// Maps file block `index` to its path through the block map, or `None`
/// when it lies beyond [`max_file_blocks`] or the block size is invalid.
pub fn block_path(block_log: u32, index: u64) -> Option<BlockPath> {
    check_block_log(block_log).ok()?;
    if index < N_DIRECT as u64 {
        return Some(BlockPath {
            depth: 0,
            slot: index as usize,
            idx: [0; N_LEVELS],
        });
    }
    let p = u64::from(ptrs_per_indirect(block_log));
    let mut rest = index - N_DIRECT as u64;
    for depth in 1..=N_LEVELS {
        let span = blocks_at_depth(block_log, depth);
        if rest < span {
            let mut idx = [0u32; N_LEVELS];
            // Least significant digit belongs to the deepest level.
            for level in (0..depth).rev() {
                if let Some(slot) = idx.get_mut(level) {
                    *slot = (rest % p) as u32;
                }
                rest /= p;
            }
            return Some(BlockPath {
                depth,
                slot: N_DIRECT + depth - 1,
                idx,
            });
        }
        rest -= span;
    }
    None
}

/// Inverse of [`block_path`]: the file block index a path leads to.
pub fn block_path_index(block_log: u32, path: &BlockPath) -> u64 {
    if path.depth == 0 {
        return path.slot as u64;
    }
    let p = u64::from(ptrs_per_indirect(block_log));
    let mut base = N_DIRECT as u64;
    for d in 1..path.depth.min(N_LEVELS) {
        base = base.saturating_add(blocks_at_depth(block_log, d));
    }
    let mut off = 0u64;
    for level in 0..path.depth.min(N_LEVELS) {
        off = off
            .saturating_mul(p)
            .saturating_add(u64::from(path.idx.get(level).copied().unwrap_or(0)));
    }
    base.saturating_add(off)
}

// ---------------------------------------------------------------------------
// Indirect blocks
// ---------------------------------------------------------------------------

/// A verified indirect block: (bs/4 - 1) u32 pointers then a crc32c.
#[derive(Debug, Clone, Copy)]
pub struct IndirectBlock<'a> {
    buf: &'a [u8],
}

impl<'a> IndirectBlock<'a> {
    /// Verifies length (one block of `sb`'s size), checksum, and that every
    /// non-zero pointer lies in the data region.
    pub fn parse(buf: &'a [u8], sb: &Superblock) -> Result<IndirectBlock<'a>> {
        if buf.len() != sb.block_size() {
            return Err(FormatError::BufferSize);
        }
        if !trailer_crc_ok(buf) {
            return Err(FormatError::BadChecksum(Structure::Indirect));
        }
        let blk = IndirectBlock { buf };
        for i in 0..blk.len() {
            let p = blk.get(i);
            if p != 0 {
                sb.check_data_block(p)?;
            }
        }
        Ok(blk)
    }

    /// A view of a block that passed [`IndirectBlock::parse`] before and
    /// has been changed since only by [`indirect_set`] with checked
    /// pointers and resealed (the kernel remembers that per buffer): only
    /// the length is checked.
    pub fn parse_trusted(buf: &'a [u8], sb: &Superblock) -> Result<IndirectBlock<'a>> {
        if buf.len() != sb.block_size() {
            return Err(FormatError::BufferSize);
        }
        Ok(IndirectBlock { buf })
    }

    /// Number of pointer slots.
    pub fn len(&self) -> usize {
        self.buf.len() / 4 - 1
    }

    /// Whether there are no pointer slots (never, for a parsed block).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pointer `i` (0 = hole); 0 when `i` is out of range.
    pub fn get(&self, i: usize) -> u32 {
        if i < self.len() {
            rd32(self.buf, i.wrapping_mul(4))
        } else {
            0
        }
    }

    /// Whether every pointer is a hole (the block can be freed).
    pub fn all_holes(&self) -> bool {
        (0..self.len()).all(|i| self.get(i) == 0)
    }
}

/// Sets pointer `i` of an indirect block in memory (call [`indirect_seal`]
/// before writing it).
pub fn indirect_set(buf: &mut [u8], i: usize, block: u32) -> Result<()> {
    block_log_of_len(buf.len())?;
    if i >= buf.len() / 4 - 1 {
        return Err(FormatError::BufferSize);
    }
    wr32(buf, i * 4, block);
    Ok(())
}

/// Sets pointer `i` of an indirect block whose checksum is right and
/// updates the checksum for the change alone (see [`indirect_seal`] for
/// blocks changed otherwise).
pub fn indirect_set_sealed(buf: &mut [u8], i: usize, block: u32) -> Result<()> {
    let old = rd32(buf, i.wrapping_mul(4));
    indirect_set(buf, i, block)?;
    trailer_crc_patch(buf, i * 4, &old.to_le_bytes());
    Ok(())
}

/// Makes an all-hole indirect block with a valid checksum.
pub fn indirect_init(buf: &mut [u8]) -> Result<()> {
    block_log_of_len(buf.len())?;
    buf.fill(0);
    trailer_crc_seal(buf);
    Ok(())
}

/// Recomputes an indirect block's checksum after changes.
pub fn indirect_seal(buf: &mut [u8]) -> Result<()> {
    block_log_of_len(buf.len())?;
    trailer_crc_seal(buf);
    Ok(())
}

// ---------------------------------------------------------------------------
// Bitmap blocks
// ---------------------------------------------------------------------------

/// Checks a bitmap block: one block long, checksum, and every bit for an
/// item at or beyond `total` (blocks or inodes) set.  `index` is the
/// block's position within its bitmap region (0 for the first).
pub fn bitmap_verify(buf: &[u8], index: u32, total: u32) -> Result<()> {
    let log = block_log_of_len(buf.len())?;
    if !trailer_crc_ok(buf) {
        return Err(FormatError::BadChecksum(Structure::Bitmap));
    }
    let bpb = bitmap_bits_per_block(log);
    let first = u64::from(index) * u64::from(bpb);
    if first >= u64::from(total) && index != 0 {
        return Err(FormatError::BadBitmap("bitmap block lies beyond the count"));
    }
    let valid = (u64::from(total) - first.min(u64::from(total))).min(u64::from(bpb)) as u32;
    if (valid..bpb).any(|bit| !bitmap_test(buf, bit)) {
        return Err(FormatError::BadBitmap(
            "bitmap bits beyond the count are not set",
        ));
    }
    Ok(())
}

/// Builds bitmap block `index` of a bitmap over `total` items with every
/// real item free and every padding bit set, checksum included.
pub fn bitmap_init(buf: &mut [u8], index: u32, total: u32) -> Result<()> {
    let log = block_log_of_len(buf.len())?;
    buf.fill(0);
    let bpb = bitmap_bits_per_block(log);
    let first = u64::from(index) * u64::from(bpb);
    let valid = (u64::from(total) - first.min(u64::from(total))).min(u64::from(bpb)) as u32;
    for bit in valid..bpb {
        bitmap_set(buf, bit)?;
    }
    trailer_crc_seal(buf);
    Ok(())
}

/// Recomputes a bitmap block's checksum after changes.
pub fn bitmap_seal(buf: &mut [u8]) -> Result<()> {
    block_log_of_len(buf.len())?;
    trailer_crc_seal(buf);
    Ok(())
}

/// Bits held by a bitmap block of this buffer's length (0 if invalid).
fn bitmap_bits(buf: &[u8]) -> u32 {
    block_log_of_len(buf.len())
        .map(bitmap_bits_per_block)
        .unwrap_or(0)
}

/// Whether `bit` is set (item in use).  Bits outside the block read as set,
/// so nothing is ever allocated from them.
pub fn bitmap_test(buf: &[u8], bit: u32) -> bool {
    if bit >= bitmap_bits(buf) {
        return true;
    }
    buf.get((bit / 8) as usize)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Sets `bit` (marks the item in use); returns its previous value.
pub fn bitmap_set(buf: &mut [u8], bit: u32) -> Result<bool> {
    bitmap_write(buf, bit, true)
}

/// Sets `bit` of a bitmap block whose checksum is right, updating the
/// checksum for the change alone; returns the bit's previous value.
pub fn bitmap_set_sealed(buf: &mut [u8], bit: u32) -> Result<bool> {
    let off = (bit / 8) as usize;
    let old = buf.get(off).copied().unwrap_or(0);
    let was = bitmap_set(buf, bit)?;
    trailer_crc_patch(buf, off, &[old]);
    Ok(was)
}

/// Clears `bit` (marks the item free); returns its previous value.
pub fn bitmap_clear(buf: &mut [u8], bit: u32) -> Result<bool> {
    bitmap_write(buf, bit, false)
}

fn bitmap_write(buf: &mut [u8], bit: u32, value: bool) -> Result<bool> {
    if bit >= bitmap_bits(buf) {
        return Err(FormatError::BadBitmap("bit beyond the bitmap block"));
    }
    let byte = buf
        .get_mut((bit / 8) as usize)
        .ok_or(FormatError::BufferSize)?;
    let mask = 1u8 << (bit % 8);
    let old = *byte & mask != 0;
    if value {
        *byte |= mask;
    } else {
        *byte &= !mask;
    }
    Ok(old)
}

/// First clear bit at or after `start`, if any.
pub fn bitmap_find_free(buf: &[u8], start: u32) -> Option<u32> {
    let bits = bitmap_bits(buf);
    let mut bit = start;
    while bit < bits {
        let byte = buf.get((bit / 8) as usize).copied().unwrap_or(0xff);
        if bit % 8 == 0 && byte == 0xff {
            bit = bit.saturating_add(8);
            continue;
        }
        if byte & (1 << (bit % 8)) == 0 {
            return Some(bit);
        }
        bit += 1;
    }
    None
}

/// Number of clear bits from `start` on, up to the first set bit or to
/// `limit` (exclusive), whichever comes first.
pub fn bitmap_free_run(buf: &[u8], start: u32, limit: u32) -> u32 {
    let limit = limit.min(bitmap_bits(buf));
    let mut bit = start;
    while bit < limit && !bitmap_test(buf, bit) {
        bit += 1;
    }
    bit.saturating_sub(start)
}

/// Number of clear bits (free items) in the block.
pub fn bitmap_count_free(buf: &[u8]) -> u32 {
    let bytes = (bitmap_bits(buf) / 8) as usize;
    buf.get(..bytes)
        .map_or(0, |b| b.iter().map(|x| x.count_zeros()).sum())
}

// ---------------------------------------------------------------------------
// Inodes
// ---------------------------------------------------------------------------

/// Inode field offsets within the 256-byte inode.
pub const I_MODE_OFF: usize = 0;
/// Owner uid (u32).
pub const I_UID_OFF: usize = 4;
/// Owner gid (u32).
pub const I_GID_OFF: usize = 8;
/// Hard link count (u32).
pub const I_LINKS_OFF: usize = 12;
/// Size in bytes (u64).
pub const I_SIZE_OFF: usize = 16;
/// atime, mtime, ctime, crtime seconds (i64 each, in that order).
pub const I_TIMES_SEC_OFF: usize = 24;
/// atime, mtime, ctime, crtime nanoseconds (u32 each, in that order).
pub const I_TIMES_NSEC_OFF: usize = 56;
/// Inode flags (u32, [`INODE_FLAGS_KNOWN`]).
pub const I_FLAGS_OFF: usize = 72;
/// Generation number for NFS handles (u32).
pub const I_GENERATION_OFF: usize = 76;
/// Allocated blocks in 512-byte units, i.e. `st_blocks` (u64).
pub const I_BLOCKS_OFF: usize = 80;
/// Device major number for character and block devices (u32).
pub const I_RDEV_MAJOR_OFF: usize = 88;
/// Device minor number (u32).
pub const I_RDEV_MINOR_OFF: usize = 92;
/// Block map: 12 direct pointers then single, double, triple and
/// quadruple indirect roots (16 x u32); fast symlinks keep their target here.
pub const I_MAP_OFF: usize = 96;
/// Size of the block map area.
pub const I_MAP_SIZE: usize = N_MAP * 4;
/// crc32c over the inode number (u32 LE) followed by bytes 0..252 (u32).
pub const I_CRC_OFF: usize = 252;
/// Longest symlink target stored inline in the block map area.
pub const FAST_SYMLINK_MAX: usize = 60;

/// File type bits of `mode`.
pub const S_IFMT: u16 = 0o170000;
/// Socket.
pub const S_IFSOCK: u16 = 0o140000;
/// Symbolic link.
pub const S_IFLNK: u16 = 0o120000;
/// Regular file.
pub const S_IFREG: u16 = 0o100000;
/// Block device.
pub const S_IFBLK: u16 = 0o060000;
/// Directory.
pub const S_IFDIR: u16 = 0o040000;
/// Character device.
pub const S_IFCHR: u16 = 0o020000;
/// FIFO.
pub const S_IFIFO: u16 = 0o010000;

/// Directory entry type: unknown (never written, rejected on read).
pub const DT_UNKNOWN: u8 = 0;
/// Directory entry type: FIFO.
pub const DT_FIFO: u8 = 1;
/// Directory entry type: character device.
pub const DT_CHR: u8 = 2;
/// Directory entry type: directory.
pub const DT_DIR: u8 = 4;
/// Directory entry type: block device.
pub const DT_BLK: u8 = 6;
/// Directory entry type: regular file.
pub const DT_REG: u8 = 8;
/// Directory entry type: symbolic link.
pub const DT_LNK: u8 = 10;
/// Directory entry type: socket.
pub const DT_SOCK: u8 = 12;

/// The directory entry type for a mode, or `None` for an invalid type.
pub fn dt_from_mode(mode: u16) -> Option<u8> {
    match mode & S_IFMT {
        S_IFREG => Some(DT_REG),
        S_IFDIR => Some(DT_DIR),
        S_IFLNK => Some(DT_LNK),
        S_IFCHR => Some(DT_CHR),
        S_IFBLK => Some(DT_BLK),
        S_IFIFO => Some(DT_FIFO),
        S_IFSOCK => Some(DT_SOCK),
        _ => None,
    }
}

/// Whether `ft` is a file type a directory entry may carry.
pub fn dt_is_valid(ft: u8) -> bool {
    matches!(
        ft,
        DT_REG | DT_DIR | DT_LNK | DT_CHR | DT_BLK | DT_FIFO | DT_SOCK
    )
}

/// A timestamp: seconds since the epoch and nanoseconds (< 10^9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timestamp {
    /// Seconds since 1970-01-01 UTC (may be negative).
    pub sec: i64,
    /// Nanoseconds, 0..=999_999_999.
    pub nsec: u32,
}

/// A decoded in-use inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Inode {
    /// Full `st_mode`: type bits and permission bits.
    pub mode: u16,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Hard link count.
    pub links: u32,
    /// Size in bytes.
    pub size: u64,
    /// Last access time.
    pub atime: Timestamp,
    /// Last modification time.
    pub mtime: Timestamp,
    /// Last status change time.
    pub ctime: Timestamp,
    /// Creation time.
    pub crtime: Timestamp,
    /// Inode flags ([`INODE_FLAGS_KNOWN`]; 0 unless the superblock has
    /// [`FEATURE_RO_COMPAT_INODE_FLAGS`]).
    pub flags: u32,
    /// Generation number.
    pub generation: u32,
    /// Allocated space (data and indirect blocks) in 512-byte units.
    pub blocks: u64,
    /// Device major number (character and block devices only).
    pub rdev_major: u32,
    /// Device minor number (character and block devices only).
    pub rdev_minor: u32,
    /// Block map: `map[0..12]` direct, `map[12..16]` single to quadruple
    /// indirect roots, 0 = hole.  Holds the target of a fast symlink.
    pub map: [u32; N_MAP],
}

impl Inode {
    /// File type bits of the mode.
    pub fn file_type(&self) -> u16 {
        self.mode & S_IFMT
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        self.file_type() == S_IFDIR
    }

    /// Whether this is a regular file.
    pub fn is_reg(&self) -> bool {
        self.file_type() == S_IFREG
    }

    /// Whether this is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.file_type() == S_IFLNK
    }

    /// Whether this is a symlink whose target is inline (size <= 60).
    pub fn is_fast_symlink(&self) -> bool {
        self.is_symlink() && self.size <= FAST_SYMLINK_MAX as u64
    }

    /// Whether the block map holds block pointers (regular files,
    /// directories and slow symlinks).
    pub fn has_block_map(&self) -> bool {
        self.is_reg() || self.is_dir() || (self.is_symlink() && !self.is_fast_symlink())
    }

    /// The block map area as bytes; for a fast symlink the first `size`
    /// bytes are the target.
    pub fn inline_data(&self) -> [u8; I_MAP_SIZE] {
        let mut out = [0u8; I_MAP_SIZE];
        for (chunk, p) in out.chunks_exact_mut(4).zip(self.map.iter()) {
            chunk.copy_from_slice(&p.to_le_bytes());
        }
        out
    }

    /// Makes this a fast symlink to `target` (1..=60 bytes): stores the
    /// target in the block map area and sets size and blocks.
    pub fn set_fast_symlink(&mut self, target: &[u8]) -> Result<()> {
        if target.is_empty() || target.len() > FAST_SYMLINK_MAX {
            return Err(FormatError::BadInode("fast symlink target length"));
        }
        let mut bytes = [0u8; I_MAP_SIZE];
        wr_bytes(&mut bytes, 0, target);
        for (p, chunk) in self.map.iter_mut().zip(bytes.chunks_exact(4)) {
            *p = rd32(chunk, 0);
        }
        self.size = target.len() as u64;
        self.blocks = 0;
        Ok(())
    }

    /// Decodes and validates inode `ino` from its 256 bytes.  Returns
    /// `Ok(None)` for a free slot (all zero; its checksum is not checked).
    /// Validates the checksum (which covers `ino`), the file type, the
    /// nanoseconds, type-specific sizes and every block pointer against `sb`.
    pub fn parse(buf: &[u8], ino: u32, sb: &Superblock) -> Result<Option<Inode>> {
        if buf.len() != INODE_SIZE {
            return Err(FormatError::BufferSize);
        }
        sb.check_ino(ino)?;
        if buf.iter().all(|&b| b == 0) {
            return Ok(None);
        }
        if inode_crc(buf, ino) != rd32(buf, I_CRC_OFF) {
            return Err(FormatError::BadChecksum(Structure::Inode));
        }
        let inode = Self::decode_fields(buf);
        inode.validate(sb)?;
        Ok(Some(inode))
    }

    fn decode_fields(b: &[u8]) -> Inode {
        let ts = |i: usize| Timestamp {
            sec: rd64(b, I_TIMES_SEC_OFF + 8 * i) as i64,
            nsec: rd32(b, I_TIMES_NSEC_OFF + 4 * i),
        };
        let mut map = [0u32; N_MAP];
        for (i, p) in map.iter_mut().enumerate() {
            *p = rd32(b, I_MAP_OFF + 4 * i);
        }
        Inode {
            mode: rd16(b, I_MODE_OFF),
            uid: rd32(b, I_UID_OFF),
            gid: rd32(b, I_GID_OFF),
            links: rd32(b, I_LINKS_OFF),
            size: rd64(b, I_SIZE_OFF),
            atime: ts(0),
            mtime: ts(1),
            ctime: ts(2),
            crtime: ts(3),
            flags: rd32(b, I_FLAGS_OFF),
            generation: rd32(b, I_GENERATION_OFF),
            blocks: rd64(b, I_BLOCKS_OFF),
            rdev_major: rd32(b, I_RDEV_MAJOR_OFF),
            rdev_minor: rd32(b, I_RDEV_MINOR_OFF),
            map,
        }
    }

    /// Validates the fields of an inode against the filesystem geometry.
    /// Also used by writers before encoding.
    pub fn validate(&self, sb: &Superblock) -> Result<()> {
        let log = sb.layout.block_log;
        let bs = sb.block_size() as u64;
        if dt_from_mode(self.mode).is_none() {
            return Err(FormatError::BadInode("invalid file type in mode"));
        }
        for t in [self.atime, self.mtime, self.ctime, self.crtime] {
            if t.nsec >= 1_000_000_000 {
                return Err(FormatError::BadInode("nanoseconds out of range"));
            }
        }
        // max(1): a hand-built superblock may carry a bad block size.
        if self.blocks % (bs / SECTOR_SIZE).max(1) != 0 {
            return Err(FormatError::BadInode("block count is not whole blocks"));
        }
        if self.flags & !INODE_FLAGS_KNOWN != 0 {
            return Err(FormatError::BadInode("unknown inode flags"));
        }
        if self.flags != 0 && sb.feature_ro_compat & FEATURE_RO_COMPAT_INODE_FLAGS == 0 {
            return Err(FormatError::BadInode(
                "inode flags without the inode-flags feature",
            ));
        }
        let is_dev = matches!(self.file_type(), S_IFCHR | S_IFBLK);
        if !is_dev && (self.rdev_major != 0 || self.rdev_minor != 0) {
            return Err(FormatError::BadInode("device number on a non-device inode"));
        }
        match self.file_type() {
            S_IFREG => self.validate_size(0, max_file_size(log))?,
            S_IFDIR => {
                self.validate_size(bs, max_file_size(log))?;
                if self.size % bs != 0 {
                    return Err(FormatError::BadInode("directory size is not whole blocks"));
                }
            }
            S_IFLNK => return self.validate_symlink(sb),
            _ => {
                self.validate_size(0, 0)?;
                if self.map.iter().any(|&p| p != 0) || self.blocks != 0 {
                    return Err(FormatError::BadInode("special file has blocks"));
                }
                return Ok(());
            }
        }
        self.validate_map(sb)
    }

    fn validate_size(&self, min: u64, max: u64) -> Result<()> {
        if self.size < min || self.size > max {
            return Err(FormatError::BadInode("size out of range for the file type"));
        }
        Ok(())
    }

    fn validate_map(&self, sb: &Superblock) -> Result<()> {
        for &p in self.map.iter() {
            if p != 0 {
                sb.check_data_block(p)?;
            }
        }
        Ok(())
    }

    /// Symlink rules: size 1..block size - 1; up to 60 bytes inline with the
    /// rest of the map area zero and no blocks; longer targets in the block
    /// at `map[0]` with every other pointer zero.
    fn validate_symlink(&self, sb: &Superblock) -> Result<()> {
        self.validate_size(1, sb.block_size() as u64 - 1)?;
        if self.is_fast_symlink() {
            let data = self.inline_data();
            let tail = data.get(self.size as usize..).unwrap_or(&[]);
            if tail.iter().any(|&b| b != 0) || self.blocks != 0 {
                return Err(FormatError::BadInode("fast symlink has data past its size"));
            }
            if data
                .get(..self.size as usize)
                .is_some_and(|t| t.contains(&0))
            {
                return Err(FormatError::BadInode("symlink target contains NUL"));
            }
            return Ok(());
        }
        let first = self.map.first().copied().unwrap_or(0);
        if first == 0 || self.map.iter().skip(1).any(|&p| p != 0) {
            return Err(FormatError::BadInode("slow symlink block map"));
        }
        self.validate_map(sb)
    }

    /// Encodes inode `ino` into its 256-byte slot, checksum included.
    pub fn encode(&self, ino: u32, out: &mut [u8; INODE_SIZE]) {
        out.fill(0);
        wr16(out, I_MODE_OFF, self.mode);
        wr32(out, I_UID_OFF, self.uid);
        wr32(out, I_GID_OFF, self.gid);
        wr32(out, I_LINKS_OFF, self.links);
        wr64(out, I_SIZE_OFF, self.size);
        for (i, t) in [self.atime, self.mtime, self.ctime, self.crtime]
            .iter()
            .enumerate()
        {
            wr64(out, I_TIMES_SEC_OFF + 8 * i, t.sec as u64);
            wr32(out, I_TIMES_NSEC_OFF + 4 * i, t.nsec);
        }
        wr32(out, I_FLAGS_OFF, self.flags);
        wr32(out, I_GENERATION_OFF, self.generation);
        wr64(out, I_BLOCKS_OFF, self.blocks);
        wr32(out, I_RDEV_MAJOR_OFF, self.rdev_major);
        wr32(out, I_RDEV_MINOR_OFF, self.rdev_minor);
        for (i, &p) in self.map.iter().enumerate() {
            wr32(out, I_MAP_OFF + 4 * i, p);
        }
        let crc = inode_crc(out, ino);
        wr32(out, I_CRC_OFF, crc);
    }
}

/// crc32c over the inode number then the inode bytes before the crc, so a
/// valid inode copied into another slot fails its check.
pub fn inode_crc(buf: &[u8], ino: u32) -> u32 {
    let body = buf.get(..I_CRC_OFF).unwrap_or(buf);
    !crc32c_update(crc32c_update(!0, &ino.to_le_bytes()), body)
}

// ---------------------------------------------------------------------------
// Directory blocks
// ---------------------------------------------------------------------------

/// Size of a directory entry header: inode u32, rec_len u16, name_len u8,
/// file_type u8.
pub const DIRENT_HEADER: usize = 8;
/// Entry records are padded to multiples of this.
pub const DIRENT_ALIGN: usize = 4;
/// Smallest record (a one-byte name).
pub const DIRENT_MIN_REC: usize = 12;
/// Size of the tail record at the end of every directory block.
pub const DIR_TAIL_SIZE: usize = 12;
/// `file_type` byte of the tail record: the tail magic.
pub const DIR_TAIL_MAGIC: u8 = 0xDE;
/// Offset of the ".." entry in a directory's first block ("." is at 0).
pub const DOTDOT_OFF: usize = 12;

/// Record length needed for an entry with a name of `name_len` bytes.
pub fn dirent_rec_len(name_len: usize) -> usize {
    // Saturating: callers may ask about any length (see `name_fits`).
    DIRENT_HEADER
        .saturating_add(name_len)
        .saturating_add(DIRENT_ALIGN - 1)
        & !(DIRENT_ALIGN - 1)
}

/// Checks a name for a new entry: 1..=255 bytes, no '/' or NUL, and not
/// "." or ".." (those exist only as the first two entries of a directory).
pub fn check_name(name: &[u8]) -> Result<()> {
    if name.len() > NAME_MAX {
        return Err(FormatError::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.iter().any(|&c| c == b'/' || c == 0)
    {
        return Err(FormatError::BadName);
    }
    Ok(())
}

/// One in-use directory entry as read from a block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    /// Byte offset of the record in the block: a stable readdir cookie
    /// (position = block index * block size + offset).
    pub offset: usize,
    /// Inode number (never 0 for a yielded entry).
    pub ino: u32,
    /// Record length including padding and any free space after the name.
    pub rec_len: usize,
    /// One of the `DT_*` values.
    pub file_type: u8,
    /// The name, 1..=255 bytes.
    pub name: &'a [u8],
}

/// A raw record during a walk, used or not.
#[derive(Debug, Clone, Copy)]
struct Record<'a> {
    offset: usize,
    ino: u32,
    rec_len: usize,
    name_len: usize,
    file_type: u8,
    name: &'a [u8],
}

/// A directory block whose length, tail and checksum have been verified.
/// Iterate it with [`DirBlock::iter`]; entries are validated as they are
/// read.
#[derive(Debug, Clone, Copy)]
pub struct DirBlock<'a> {
    buf: &'a [u8],
    first: bool,
}

/// Verifies the tail record and the checksum of a directory block.
pub fn dir_verify(buf: &[u8]) -> Result<()> {
    block_log_of_len(buf.len())?;
    let t = buf.len() - DIR_TAIL_SIZE;
    if rd32(buf, t) != 0
        || usize::from(rd16(buf, t + 4)) != DIR_TAIL_SIZE
        || buf.get(t + 6) != Some(&0)
        || buf.get(t + 7) != Some(&DIR_TAIL_MAGIC)
    {
        return Err(FormatError::BadDirTail);
    }
    if crc32c(buf.split_at(t).0) != rd32(buf, t + 8) {
        return Err(FormatError::BadChecksum(Structure::DirBlock));
    }
    Ok(())
}

/// Writes the tail record and its checksum; call after every change.
pub fn dir_seal(buf: &mut [u8]) -> Result<()> {
    block_log_of_len(buf.len())?;
    let t = buf.len() - DIR_TAIL_SIZE;
    wr32(buf, t, 0);
    wr16(buf, t + 4, DIR_TAIL_SIZE as u16);
    wr_bytes(buf, t + 6, &[0, DIR_TAIL_MAGIC]);
    let crc = crc32c(buf.split_at(t).0);
    wr32(buf, t + 8, crc);
    Ok(())
}

/// Initialises an empty directory block: one unused record covering
/// everything before the tail.
pub fn dir_init_empty(buf: &mut [u8]) -> Result<()> {
    block_log_of_len(buf.len())?;
    buf.fill(0);
    let span = buf.len() - DIR_TAIL_SIZE;
    write_header(buf, 0, 0, span, 0, 0);
    dir_seal(buf)
}

/// Initialises the first block of a new directory: "." pointing to
/// `self_ino` (rec_len 12) and ".." pointing to `parent_ino` covering the
/// rest of the block.
pub fn dir_init_first(buf: &mut [u8], self_ino: u32, parent_ino: u32) -> Result<()> {
    block_log_of_len(buf.len())?;
    if self_ino == 0 || parent_ino == 0 {
        return Err(FormatError::BadInodeNumber(0));
    }
    buf.fill(0);
    let span = buf.len() - DIR_TAIL_SIZE;
    write_header(buf, 0, self_ino, DOTDOT_OFF, 1, DT_DIR);
    wr_bytes(buf, DIRENT_HEADER, b".");
    write_header(buf, DOTDOT_OFF, parent_ino, span - DOTDOT_OFF, 2, DT_DIR);
    wr_bytes(buf, DOTDOT_OFF + DIRENT_HEADER, b"..");
    dir_seal(buf)
}

fn write_header(buf: &mut [u8], off: usize, ino: u32, rec_len: usize, name_len: usize, ft: u8) {
    wr32(buf, off, ino);
    wr16(buf, off + 4, rec_len as u16);
    wr_bytes(buf, off + 6, &[name_len as u8, ft]);
}

impl<'a> DirBlock<'a> {
    /// Verifies length, tail and checksum.  `first` says whether this is
    /// block 0 of its directory, which must start with "." and "..".
    pub fn parse(buf: &'a [u8], first: bool) -> Result<DirBlock<'a>> {
        dir_verify(buf)?;
        Ok(DirBlock { buf, first })
    }

    /// A view of a block that passed [`DirBlock::parse`] before and was
    /// changed since only by this module's functions, which reseal it: only
    /// the length is checked (entries are still validated as they are
    /// read).
    pub fn parse_trusted(buf: &'a [u8], first: bool) -> Result<DirBlock<'a>> {
        block_log_of_len(buf.len())?;
        Ok(DirBlock { buf, first })
    }

    /// Iterates in-use entries in block order, "." and ".." included.
    /// Yields an error for the first malformed record and then stops.
    /// A readdir resuming from a cookie skips entries whose offset is
    /// below it, so a cookie that no longer starts a record still works.
    pub fn iter(&self) -> DirIter<'a> {
        DirIter {
            walk: RecordWalk::new(self.buf, self.first),
        }
    }

    /// Validates every record of the block.
    pub fn validate(&self) -> Result<()> {
        let mut walk = RecordWalk::new(self.buf, self.first);
        while let Some(r) = walk.next() {
            r?;
        }
        Ok(())
    }

    /// Finds the entry called `name`.
    pub fn find(&self, name: &[u8]) -> Result<Option<DirEntry<'a>>> {
        for e in self.iter() {
            let e = e?;
            if e.name == name {
                return Ok(Some(e));
            }
        }
        Ok(None)
    }

    /// Whether the block holds no entries other than "." and "..".
    pub fn is_empty(&self) -> Result<bool> {
        for e in self.iter() {
            let e = e?;
            if e.name != b"." && e.name != b".." {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The inode numbers of "." and ".." (first blocks only).
    pub fn dots(&self) -> Result<(u32, u32)> {
        if !self.first {
            return Err(FormatError::NotFound);
        }
        let mut it = self.iter();
        let dot = it.next().ok_or(FormatError::NotFound)??;
        let dotdot = it.next().ok_or(FormatError::NotFound)??;
        Ok((dot.ino, dotdot.ino))
    }

    /// Whether an entry with a name of `name_len` bytes fits in this block.
    pub fn name_fits(&self, name_len: usize) -> Result<bool> {
        Ok(find_slot(self.buf, self.first, dirent_rec_len(name_len))?.is_some())
    }
}

/// Iterator over in-use entries of a [`DirBlock`].
#[derive(Debug, Clone)]
pub struct DirIter<'a> {
    walk: RecordWalk<'a>,
}

impl<'a> Iterator for DirIter<'a> {
    type Item = Result<DirEntry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.walk.next()? {
                Err(e) => return Some(Err(e)),
                Ok(r) if r.ino == 0 => continue,
                Ok(r) => {
                    return Some(Ok(DirEntry {
                        offset: r.offset,
                        ino: r.ino,
                        rec_len: r.rec_len,
                        file_type: r.file_type,
                        name: r.name,
                    }))
                }
            }
        }
    }
}

/// Walks every record (used or not) and validates each; fused after the
/// end or the first error.
#[derive(Debug, Clone)]
struct RecordWalk<'a> {
    buf: &'a [u8],
    first: bool,
    off: usize,
    end: usize,
    done: bool,
}

impl<'a> RecordWalk<'a> {
    fn new(buf: &'a [u8], first: bool) -> Self {
        let end = buf.len().saturating_sub(DIR_TAIL_SIZE);
        RecordWalk {
            buf,
            first,
            off: 0,
            end,
            done: false,
        }
    }

    fn bad(&mut self, reason: &'static str) -> Option<Result<Record<'a>>> {
        self.done = true;
        Some(Err(FormatError::BadEntry {
            offset: self.off as u32,
            reason,
        }))
    }

    fn next(&mut self) -> Option<Result<Record<'a>>> {
        if self.done || self.off >= self.end {
            return None;
        }
        let off = self.off;
        if off + DIRENT_HEADER > self.end {
            return self.bad("entry header crosses the block tail");
        }
        let ino = rd32(self.buf, off);
        let rec_len = usize::from(rd16(self.buf, off + 4));
        let name_len = usize::from(self.buf.get(off + 6).copied().unwrap_or(0));
        let file_type = self.buf.get(off + 7).copied().unwrap_or(0);
        if rec_len < DIRENT_MIN_REC || rec_len % DIRENT_ALIGN != 0 {
            return self.bad("record length too small or misaligned");
        }
        if rec_len > self.end - off {
            return self.bad("record crosses the block tail");
        }
        let name = self
            .buf
            .get(off + DIRENT_HEADER..off + DIRENT_HEADER + name_len)
            .unwrap_or(&[]);
        if ino != 0 {
            if let Err(reason) = check_record(off, rec_len, name_len, file_type, name, self.first) {
                return self.bad(reason);
            }
        } else if self.first && off < DIRENT_MIN_REC * 2 {
            return self.bad("missing . or .. entry");
        }
        self.off = off + rec_len;
        Some(Ok(Record {
            offset: off,
            ino,
            rec_len,
            name_len,
            file_type,
            name,
        }))
    }
}

/// Rules for an in-use record at `off`; returns why it is malformed.
fn check_record(
    off: usize,
    rec_len: usize,
    name_len: usize,
    ft: u8,
    name: &[u8],
    first: bool,
) -> core::result::Result<(), &'static str> {
    if name_len == 0 || DIRENT_HEADER + name_len > rec_len {
        return Err("name length does not fit the record");
    }
    if !dt_is_valid(ft) {
        return Err("unknown file type");
    }
    let want_dot: Option<&[u8]> = match (first, off) {
        (true, 0) => Some(b"."),
        (true, DOTDOT_OFF) => Some(b".."),
        _ => None,
    };
    match want_dot {
        Some(dot) => {
            if name != dot || ft != DT_DIR {
                return Err("first entries are not . and ..");
            }
            if off == 0 && rec_len != DOTDOT_OFF {
                return Err("record length of . is not 12");
            }
            Ok(())
        }
        None => check_name(name).map_err(|_| "invalid name"),
    }
}

/// Finds room for a record of `need` bytes: returns (record offset, split)
/// where `split` is the used length to keep in the existing record (0 when
/// the record is unused and taken whole).
fn find_slot(buf: &[u8], first: bool, need: usize) -> Result<Option<(usize, usize)>> {
    let mut walk = RecordWalk::new(buf, first);
    while let Some(r) = walk.next() {
        let r = r?;
        if r.ino == 0 {
            if r.rec_len >= need {
                return Ok(Some((r.offset, 0)));
            }
            continue;
        }
        let used = dirent_rec_len(r.name_len);
        if r.rec_len >= used.saturating_add(need) {
            return Ok(Some((r.offset, used)));
        }
    }
    Ok(None)
}

/// Checks the parts of a new entry that do not depend on the block: its
/// name, a non-zero inode number and a known file type.
fn check_new_entry(name: &[u8], ino: u32, ft: u8) -> Result<()> {
    check_name(name)?;
    if ino == 0 {
        return Err(FormatError::BadInodeNumber(0));
    }
    if !dt_is_valid(ft) {
        return Err(FormatError::BadFileType(ft));
    }
    Ok(())
}

/// Adds entry `name` -> `ino` of type `ft` to a verified directory block,
/// reusing an unused record or splitting the slack of a used one (as ext2
/// does), then reseals.  Returns the new entry's offset.  Fails with
/// `Exists` if the name is present and `NoSpace` if it does not fit.
pub fn dir_insert(buf: &mut [u8], first: bool, name: &[u8], ino: u32, ft: u8) -> Result<usize> {
    check_new_entry(name, ino, ft)?;
    let block = DirBlock::parse(buf, first)?;
    block.validate()?;
    if block.find(name)?.is_some() {
        return Err(FormatError::Exists);
    }
    let need = dirent_rec_len(name.len());
    let (off, split) = find_slot(buf, first, need)?.ok_or(FormatError::NoSpace)?;
    let rec_len = usize::from(rd16(buf, off + 4));
    let new_off = if split == 0 {
        write_header(buf, off, ino, rec_len, name.len(), ft);
        off
    } else {
        wr16(buf, off + 4, split as u16);
        write_header(buf, off + split, ino, rec_len - split, name.len(), ft);
        off + split
    };
    wr_bytes(buf, new_off + DIRENT_HEADER, name);
    dir_seal(buf)?;
    Ok(new_off)
}

/// Removes entry `name` from a verified directory block by merging its
/// record into the previous one (or marking it unused when it is the first
/// record), then reseals.  Returns the removed entry's inode number.
/// "." and ".." cannot be removed.
pub fn dir_remove(buf: &mut [u8], first: bool, name: &[u8]) -> Result<u32> {
    check_name(name)?;
    let block = DirBlock::parse(buf, first)?;
    block.validate()?;
    let mut prev: Option<usize> = None;
    let mut walk = RecordWalk::new(buf, first);
    let mut found = None;
    while let Some(r) = walk.next() {
        let r = r?;
        if r.ino != 0 && r.name == name {
            found = Some((r.offset, r.rec_len, r.ino));
            break;
        }
        prev = Some(r.offset);
    }
    let (off, rec_len, ino) = found.ok_or(FormatError::NotFound)?;
    wr32(buf, off, 0);
    if let Some(p) = prev {
        let merged = usize::from(rd16(buf, p + 4)) + rec_len;
        wr16(buf, p + 4, merged as u16);
    }
    dir_seal(buf)?;
    Ok(ino)
}

/// Points existing entry `name` at a new inode and type (rename over an
/// existing name), then reseals.  Returns the old inode number.
pub fn dir_replace(buf: &mut [u8], first: bool, name: &[u8], ino: u32, ft: u8) -> Result<u32> {
    check_new_entry(name, ino, ft)?;
    let block = DirBlock::parse(buf, first)?;
    block.validate()?;
    let e = block.find(name)?.ok_or(FormatError::NotFound)?;
    let (off, old) = (e.offset, e.ino);
    wr32(buf, off, ino);
    wr_bytes(buf, off + 7, &[ft]);
    dir_seal(buf)?;
    Ok(old)
}

/// Points ".." of a directory's first block at `parent_ino` (a directory
/// moved to a new parent), then reseals.
pub fn dir_set_dotdot(buf: &mut [u8], parent_ino: u32) -> Result<()> {
    if parent_ino == 0 {
        return Err(FormatError::BadInodeNumber(0));
    }
    let block = DirBlock::parse(buf, true)?;
    block.validate()?;
    wr32(buf, DOTDOT_OFF, parent_ino);
    dir_seal(buf)
}
