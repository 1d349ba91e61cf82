// SPDX-License-Identifier: GPL-2.0

//! The catalogue: every metadata field of one image this tool can damage,
//! each as a [`Mutation`] with a stable id, a description, and what
//! fsck.rbfs is expected to make of it.
//!
//! Ids are built from what the damage hits (`sb.free_blocks`,
//! `inode.12.links`, `ind.345.7.zero`, `dirent.1.0.24.rec_len`, ...), so
//! the same image always yields the same ids in the same order, and an id
//! means the same thing on any image that has that object.
//!
//! Every byte offset comes from the shared format module
//! (`rbfs_format::format`); the only local layout constants are the field
//! positions inside a directory entry, which the format module does not
//! export, and a unit test checks them against its parser.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use rbfs_format::check::{show_name, BitmapKind, MapItem, Scan};
use rbfs_format::format::*;

use crate::edit::{EdResult, Editor, Img, Plan, Seal};

/// Offset of the inode number in a directory entry.
pub const DE_INO: usize = 0;
/// Offset of `rec_len` (u16) in a directory entry.
pub const DE_REC_LEN: usize = 4;
/// Offset of `name_len` (u8) in a directory entry.
pub const DE_NAME_LEN: usize = 6;
/// Offset of `file_type` (u8) in a directory entry (the tail's magic is
/// in the same position of the fake tail entry).
pub const DE_FILE_TYPE: usize = 7;
/// Offset of the name in a directory entry.
pub const DE_NAME: usize = DIRENT_HEADER;

/// What `fsck.rbfs -n` should say about an image after the mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Errors found: exit 4.
    Detect,
    /// Not an rbfs filesystem fsck will check (bad magic, version or
    /// unknown features): exit 8.
    Fatal,
    /// Nothing wrong (a field no check covers): exit 0.
    Harmless,
    /// Any of the above (random damage after a reseal).
    Unknown,
}

impl Expect {
    /// The word used in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Expect::Detect => "detect",
            Expect::Fatal => "fatal",
            Expect::Harmless => "harmless",
            Expect::Unknown => "unknown",
        }
    }

    /// Whether `code`, the exit code of `fsck.rbfs -n`, is what this
    /// expectation allows.
    pub fn allows(self, code: i32) -> bool {
        match self {
            Expect::Detect => code == 4,
            Expect::Fatal => code == 8,
            Expect::Harmless => code == 0,
            Expect::Unknown => matches!(code, 0 | 4 | 8),
        }
    }
}

/// What `fsck.rbfs -y` should do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repair {
    /// Repairs everything: exit 1, and a later check is clean.
    Yes,
    /// Leaves errors (exit 4 or 5) or refuses the image (exit 8).
    No,
    /// Nothing to repair: exit 0.
    Nothing,
    /// Depends on details (noted per mutation).
    Maybe,
}

impl Repair {
    /// The word used in listings.
    pub fn as_str(self) -> &'static str {
        match self {
            Repair::Yes => "fix",
            Repair::No => "nofix",
            Repair::Nothing => "none",
            Repair::Maybe => "maybe",
        }
    }

    /// Whether `code`, the exit code of `fsck.rbfs -y`, is what this
    /// expectation allows.
    pub fn allows(self, code: i32) -> bool {
        match self {
            Repair::Yes => code == 1,
            Repair::No => code & 4 != 0 || code == 8,
            Repair::Nothing => code == 0,
            Repair::Maybe => matches!(code, 0 | 1 | 2 | 4 | 5 | 8),
        }
    }
}

type Op = Box<dyn Fn(&mut Editor<'_, '_>) -> EdResult<()>>;

/// One catalogued mutation.
pub struct Mutation {
    /// Stable id.
    pub id: String,
    /// What it damages, in words.
    pub what: String,
    /// What `fsck -n` should report once it is applied (crc resealed).
    pub expect: Expect,
    /// What `fsck -y` should do about it (crc resealed).
    pub repair: Repair,
    /// Whether the corpus also lists a `--keep-crc` variant.
    pub keep_crc_sample: bool,
    op: Op,
}

impl std::fmt::Debug for Mutation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.id, self.what)
    }
}

/// A planned mutation and what fsck should make of the result.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The writes and checksum story.
    pub plan: Plan,
    /// Expected `fsck -n` outcome.
    pub expect: Expect,
    /// Expected `fsck -y` outcome.
    pub repair: Repair,
}

impl Mutation {
    /// Stages the mutation on `img` and returns the plan.  `keep_crc`
    /// leaves the crcs the touched structures had; `seed` feeds the
    /// seeded mutations (`*.scramble`).
    pub fn plan(&self, img: &Img<'_>, keep_crc: bool, seed: u64) -> EdResult<Planned> {
        let mut ed = Editor::new(img, seed);
        (self.op)(&mut ed)?;
        let plan = ed.finish(keep_crc)?;
        if plan.is_noop() {
            return Err(format!("{}: the mutation changes nothing here", self.id));
        }
        let (expect, repair) = expect_after(self.expect, self.repair, &plan);
        Ok(Planned {
            plan,
            expect,
            repair,
        })
    }
}

/// The expectations once checksums are accounted for: a structure left
/// with a stale crc is caught by the checksum check before anything else
/// but a bad magic or version (the superblock parser checks those two
/// first), and only bitmap blocks are rebuilt by fsck when their crc is
/// bad.
pub fn expect_after(expect: Expect, repair: Repair, plan: &Plan) -> (Expect, Repair) {
    let stale = &plan.stale;
    if stale.is_empty() {
        return (expect, repair);
    }
    if stale.contains(&Seal::Super) {
        if let Some((_, b0)) = plan.writes.iter().find(|(n, _)| *n == 0) {
            let word = |off: usize| u32::from_le_bytes([b0[off], b0[off + 1], b0[off + 2], b0[off + 3]]);
            if word(SB_MAGIC_OFF) != MAGIC || word(SB_VERSION_OFF) != VERSION {
                return (Expect::Fatal, Repair::No);
            }
        }
    }
    if stale.iter().all(|s| matches!(s, Seal::Bitmap(_))) {
        let repair = match repair {
            Repair::Nothing => Repair::Yes,
            r => r,
        };
        let expect = match expect {
            Expect::Harmless => Expect::Detect,
            e => e,
        };
        return (expect, repair);
    }
    let expect = match expect {
        Expect::Unknown => Expect::Unknown,
        _ => Expect::Detect,
    };
    let repair = match repair {
        Repair::Maybe => Repair::Maybe,
        _ => Repair::No,
    };
    (expect, repair)
}

/// One directory entry as found in a directory block.
#[derive(Debug, Clone)]
struct Ent {
    offset: usize,
    ino: u32,
    rec_len: usize,
    file_type: u8,
    name: Vec<u8>,
}

/// One block of a directory.
#[derive(Debug, Clone)]
struct DirBlk {
    index: u64,
    block: u32,
    entries: Vec<Ent>,
}

/// One indirect block and its pointers.
#[derive(Debug, Clone)]
struct Ind {
    block: u32,
    owner: u32,
    depth: usize,
    /// First file block it covers.
    index: u64,
    /// Non-zero pointers: (slot, block).
    ptrs: Vec<(usize, u32)>,
    slots: usize,
}

/// What the catalogue is built from.
struct Ctx {
    sb: Superblock,
    bs: usize,
    scan: Scan,
    paths: BTreeMap<u32, String>,
    /// A data block in use by nobody and free in the bitmap.
    free_block: Option<u32>,
    /// An inode slot in use by nobody and free in the bitmap.
    free_ino: Option<u32>,
    /// Per inode with a block map: data blocks (file block, disk block).
    data: BTreeMap<u32, Vec<(u64, u32)>>,
    /// Indirect blocks in walk order.
    inds: Vec<Ind>,
    /// Directories and their blocks.
    dirs: BTreeMap<u32, Vec<DirBlk>>,
    block_bitmap: rbfs_format::check::Bitmap,
    inode_bitmap: rbfs_format::check::Bitmap,
}

impl Ctx {
    fn build(img: &Img<'_>) -> EdResult<Ctx> {
        let err = |e: rbfs_format::check::CheckError| format!("reading the image: {e}");
        let scan = img.scan().map_err(err)?;
        let sb = img.sb;
        let bs = img.block_size();
        let (block_bitmap, _) = img.read_bitmap(BitmapKind::Block).map_err(err)?;
        let (inode_bitmap, _) = img.read_bitmap(BitmapKind::Inode).map_err(err)?;
        let l = sb.layout;
        let free_block = (l.data_start..l.blocks_count)
            .rev()
            .find(|&b| !scan.claims.is_used(b) && !block_bitmap.test(u64::from(b)));
        let free_ino = (1..=l.inodes_count).find(|&i| {
            !scan.in_use.get(u64::from(i - 1)) && !inode_bitmap.test(u64::from(i - 1))
        });
        let mut data = BTreeMap::new();
        let mut inds = Vec::new();
        for (&ino, info) in &scan.inodes {
            if !info.inode.has_block_map() {
                continue;
            }
            let mut items = Vec::new();
            img.walk_map(&info.inode, &mut |item| {
                if let MapItem::Block {
                    block,
                    depth,
                    index,
                    ..
                } = item
                {
                    items.push((block, depth, index));
                }
            })
            .map_err(err)?;
            let mut blocks = Vec::new();
            for (block, depth, index) in items {
                if depth == 0 {
                    blocks.push((index, block));
                    continue;
                }
                let buf = img.read_block(block).map_err(err)?;
                let Ok(parsed) = IndirectBlock::parse(&buf, &sb) else {
                    continue;
                };
                let ptrs = (0..parsed.len())
                    .map(|i| (i, parsed.get(i)))
                    .filter(|&(_, p)| p != 0)
                    .collect();
                inds.push(Ind {
                    block,
                    owner: ino,
                    depth,
                    index,
                    ptrs,
                    slots: parsed.len(),
                });
            }
            data.insert(ino, blocks);
        }
        let mut dirs = BTreeMap::new();
        for (&ino, info) in &scan.inodes {
            if !info.inode.is_dir() {
                continue;
            }
            let mut blocks = info.dir_blocks.clone();
            blocks.sort_unstable();
            let mut out = Vec::new();
            for (index, block) in blocks {
                let buf = img.read_block(block).map_err(err)?;
                let Ok(parsed) = DirBlock::parse(&buf, index == 0) else {
                    continue;
                };
                let entries = parsed
                    .iter()
                    .map_while(|e| e.ok())
                    .map(|e| Ent {
                        offset: e.offset,
                        ino: e.ino,
                        rec_len: e.rec_len,
                        file_type: e.file_type,
                        name: e.name.to_vec(),
                    })
                    .collect();
                out.push(DirBlk {
                    index,
                    block,
                    entries,
                });
            }
            dirs.insert(ino, out);
        }
        let mut paths = BTreeMap::new();
        paths.insert(ROOT_INO, "/".to_string());
        let mut queue = VecDeque::from([ROOT_INO]);
        while let Some(d) = queue.pop_front() {
            let Some(info) = scan.dirs.get(&d) else {
                continue;
            };
            let base = if d == ROOT_INO {
                String::new()
            } else {
                paths[&d].clone()
            };
            for e in &info.entries {
                if paths.contains_key(&e.ino) {
                    continue;
                }
                paths.insert(e.ino, format!("{base}/{}", show_name(&e.name)));
                if scan.dirs.contains_key(&e.ino) {
                    queue.push_back(e.ino);
                }
            }
        }
        Ok(Ctx {
            sb,
            bs,
            scan,
            paths,
            free_block,
            free_ino,
            data,
            inds,
            dirs,
            block_bitmap,
            inode_bitmap,
        })
    }

    fn path(&self, ino: u32) -> String {
        self.paths
            .get(&ino)
            .cloned()
            .unwrap_or_else(|| "(unnamed)".into())
    }

    fn inode(&self, ino: u32) -> Option<&Inode> {
        self.scan.inodes.get(&ino).map(|i| &i.inode)
    }

    /// Parent directory of `dir` in the tree (the root's is the root).
    fn parent(&self, dir: u32) -> Option<u32> {
        let p = self.scan.dirs.get(&dir)?.parent;
        (p != 0).then_some(p)
    }

    /// Number of file blocks the inode's size covers.
    fn size_blocks(&self, inode: &Inode) -> u64 {
        inode.size.div_ceil(self.bs as u64)
    }

    /// The first data block of the lowest-numbered regular file other
    /// than `not`, for "two files share a block".
    fn other_data_block(&self, not: u32) -> Option<u32> {
        self.data.iter().find_map(|(&ino, blocks)| {
            let reg = self.inode(ino).is_some_and(|i| i.is_reg());
            (ino != not && reg)
                .then(|| blocks.first().map(|b| b.1))
                .flatten()
        })
    }

    /// A regular file for "an extra link" mutations.
    fn some_file(&self) -> Option<u32> {
        self.scan
            .inodes
            .iter()
            .find(|(_, i)| i.inode.is_reg())
            .map(|(&ino, _)| ino)
    }
}

/// Builds the catalogue of `img`.
pub fn catalogue(img: &Img<'_>) -> EdResult<Vec<Mutation>> {
    let ctx = Ctx::build(img)?;
    let mut c = Builder { out: Vec::new() };
    c.superblock(&ctx);
    c.bitmaps(&ctx);
    c.inodes(&ctx);
    c.free_slot(&ctx);
    c.indirects(&ctx);
    c.directories(&ctx);
    c.structure(&ctx);
    Ok(c.out)
}

/// The kind of damage an id names: the id with its numbers (inode,
/// block, slot, offset) replaced by `*`, e.g. `inode.*.links`.
pub fn kind_of(id: &str) -> String {
    id.split('.')
        .map(|p| {
            if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
                "*"
            } else {
                p
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Finds mutation `id` in the catalogue of `img`.
pub fn find(img: &Img<'_>, id: &str) -> EdResult<Mutation> {
    catalogue(img)?
        .into_iter()
        .find(|m| m.id == id)
        .ok_or_else(|| format!("{id}: no such mutation in this image (see `rbfs-corrupt list`)"))
}

struct Builder {
    out: Vec<Mutation>,
}

/// A mutation-building closure.
fn op(f: impl Fn(&mut Editor<'_, '_>) -> EdResult<()> + 'static) -> Op {
    Box::new(f)
}

impl Builder {
    fn push(&mut self, id: String, what: String, expect: Expect, repair: Repair, op: Op) {
        self.out.push(Mutation {
            id,
            what,
            expect,
            repair,
            keep_crc_sample: false,
            op,
        });
    }

    /// Marks the last mutation as one whose `--keep-crc` variant goes in
    /// the corpus.
    fn sample(&mut self) {
        if let Some(m) = self.out.last_mut() {
            m.keep_crc_sample = true;
        }
    }

    // -- Superblock ------------------------------------------------------

    fn sb_field(
        &mut self,
        name: &str,
        off: usize,
        len: usize,
        (expect, repair): (Expect, Repair),
        what: &str,
        f: impl Fn(u64) -> u64 + 'static,
    ) {
        let field = name.to_string();
        self.push(
            format!("sb.{name}"),
            format!("superblock: {what}"),
            expect,
            repair,
            op(move |ed| ed.set(Seal::Super, off, len, &field, &f)),
        );
    }

    fn superblock(&mut self, ctx: &Ctx) {
        use Expect::*;
        use Repair::*;
        let sb = ctx.sb;
        let l = sb.layout;
        let fatal = (Fatal, No);
        let bad = (Detect, No);
        let fix = (Detect, Yes);
        let ok = (Harmless, Nothing);
        self.sb_field("magic", SB_MAGIC_OFF, 4, fatal, "magic changed", |v| {
            v ^ 0x0100_0000
        });
        self.sb_field("version", SB_VERSION_OFF, 4, fatal, "version 2", |_| 2);
        for (name, off) in [
            ("feature_compat", SB_COMPAT_OFF),
            ("feature_incompat", SB_INCOMPAT_OFF),
            ("feature_ro_compat", SB_RO_COMPAT_OFF),
        ] {
            self.sb_field(name, off, 4, fatal, "an unknown feature bit", |v| {
                v | 0x8000_0000
            });
        }
        let other_log = if l.block_log < MAX_BLOCK_LOG {
            l.block_log + 1
        } else {
            l.block_log - 1
        };
        self.sb_field(
            "block_log",
            SB_BLOCK_LOG_OFF,
            4,
            bad,
            "another valid block size",
            move |_| u64::from(other_log),
        );
        self.sb_field(
            "block_log.invalid",
            SB_BLOCK_LOG_OFF,
            4,
            bad,
            "block size 2^13",
            |_| u64::from(MAX_BLOCK_LOG + 1),
        );
        self.sb_field("inode_size", SB_INODE_SIZE_OFF, 4, bad, "inode size 128", |_| {
            128
        });
        self.sb_field("state", SB_STATE_OFF, 4, fix, "state neither clean nor dirty", |_| 7);
        if sb.state == STATE_CLEAN {
            self.sb_field(
                "state.dirty",
                SB_STATE_OFF,
                4,
                (Harmless, Yes),
                "state dirty (-n is clean, -y marks it clean)",
                |_| u64::from(STATE_DIRTY),
            );
        }
        self.sb_field("blocks_count", SB_BLOCKS_OFF, 4, bad, "block count + 1", |v| {
            v + 1
        });
        self.sb_field(
            "blocks_count.shrink",
            SB_BLOCKS_OFF,
            4,
            bad,
            "block count - 1",
            |v| v - 1,
        );
        self.sb_field(
            "free_blocks",
            SB_FREE_BLOCKS_OFF,
            4,
            fix,
            "free block count off by one",
            |v| if v > 0 { v - 1 } else { v + 1 },
        );
        self.sample();
        let data_blocks = u64::from(l.data_blocks);
        self.sb_field(
            "free_blocks.huge",
            SB_FREE_BLOCKS_OFF,
            4,
            fix,
            "free block count above the data blocks",
            move |_| data_blocks + 1,
        );
        self.sb_field("inodes_count", SB_INODES_OFF, 4, bad, "inode count + 1", |v| {
            v + 1
        });
        // One inode fewer keeps the layout when a table block holds more
        // than one inode: the last slot becomes padding of the bitmap.
        let last_free = !ctx.scan.in_use.get(u64::from(l.inodes_count - 1));
        let shrink = if inodes_per_block(l.block_log) > 1 && last_free {
            fix
        } else {
            (Detect, Maybe)
        };
        self.sb_field(
            "inodes_count.shrink",
            SB_INODES_OFF,
            4,
            shrink,
            "inode count - 1",
            |v| v - 1,
        );
        self.sb_field(
            "free_inodes",
            SB_FREE_INODES_OFF,
            4,
            fix,
            "free inode count off by one",
            |v| if v > 0 { v - 1 } else { v + 1 },
        );
        let inodes = u64::from(l.inodes_count);
        self.sb_field(
            "free_inodes.huge",
            SB_FREE_INODES_OFF,
            4,
            fix,
            "free inode count = inode count",
            move |_| inodes,
        );
        self.sb_field("root_ino", SB_ROOT_OFF, 4, bad, "root inode 2", |_| 2);
        for (name, off) in [
            ("bbitmap_start", SB_BBITMAP_OFF),
            ("bbitmap_blocks", SB_BBITMAP_OFF + 4),
            ("ibitmap_start", SB_IBITMAP_OFF),
            ("ibitmap_blocks", SB_IBITMAP_OFF + 4),
            ("itable_start", SB_ITABLE_OFF),
            ("itable_blocks", SB_ITABLE_OFF + 4),
            ("data_start", SB_DATA_OFF),
            ("data_blocks", SB_DATA_OFF + 4),
        ] {
            self.sb_field(name, off, 4, bad, "region field + 1", |v| v + 1);
        }
        // The reserved word after the data region and the reserved area
        // after the label are not checked by anyone.
        self.sb_field(
            "reserved",
            SB_DATA_OFF + 8,
            4,
            ok,
            "reserved word set",
            |v| v ^ 0xdead_beef,
        );
        self.sb_field(
            "reserved.tail",
            SB_LABEL_OFF + LABEL_SIZE,
            8,
            ok,
            "reserved area set",
            |v| v ^ 0x0123_4567_89ab_cdef,
        );
        self.sb_field("mkfs_time", SB_MKFS_TIME_OFF, 8, ok, "mkfs time", |v| {
            v ^ 0xffff
        });
        self.sb_field("mount_time", SB_MOUNT_TIME_OFF, 8, ok, "mount time", |v| {
            v ^ 0xffff
        });
        self.sb_field("write_time", SB_WRITE_TIME_OFF, 8, ok, "write time", |v| {
            v ^ 0xffff
        });
        self.sb_field("uuid", SB_UUID_OFF, 8, ok, "uuid bytes", |v| {
            v ^ 0x5a5a_5a5a_5a5a_5a5a
        });
        self.push(
            "sb.label".into(),
            "superblock: label not UTF-8".into(),
            Detect,
            No,
            op(|ed| ed.put(Seal::Super, SB_LABEL_OFF, &[0xff], "label[0]")),
        );
        self.push(
            "sb.label.text".into(),
            "superblock: another valid label".into(),
            Harmless,
            Nothing,
            op(|ed| {
                let mut label = [0u8; LABEL_SIZE];
                label[..12].copy_from_slice(b"corrupt-test");
                ed.put(Seal::Super, SB_LABEL_OFF, &label, "label")
            }),
        );
        self.sample();
        if sb.label[LABEL_SIZE - 2] == 0 {
            self.push(
                "sb.label.pad".into(),
                "superblock: label not NUL padded".into(),
                Detect,
                No,
                op(|ed| {
                    ed.put(Seal::Super, SB_LABEL_OFF + LABEL_SIZE - 1, b"x", "label[31]")
                }),
            );
        }
        self.push(
            "sb.crc".into(),
            "superblock: checksum".into(),
            Detect,
            No,
            op(|ed| ed.flip_crc(Seal::Super, 5)),
        );
        if ctx.bs > SUPERBLOCK_SIZE {
            self.push(
                "sb.block0_tail".into(),
                "block 0 after the superblock (should be zero, unchecked)".into(),
                Harmless,
                Nothing,
                op(|ed| {
                    let b = ed.block(0)?;
                    b[SUPERBLOCK_SIZE] ^= 0x40;
                    ed.note("block 0: byte 512 ^= 0x40");
                    Ok(())
                }),
            );
        }
    }

    // -- Bitmaps ---------------------------------------------------------

    fn bitmaps(&mut self, ctx: &Ctx) {
        let l = ctx.sb.layout;
        let bpb = bitmap_bits_per_block(l.block_log);
        for kind in [BitmapKind::Block, BitmapKind::Inode] {
            let (prefix, start, count, total, bitmap) = match kind {
                BitmapKind::Block => (
                    "bbitmap",
                    l.bbitmap_start,
                    l.bbitmap_blocks,
                    l.blocks_count,
                    &ctx.block_bitmap,
                ),
                BitmapKind::Inode => (
                    "ibitmap",
                    l.ibitmap_start,
                    l.ibitmap_blocks,
                    l.inodes_count,
                    &ctx.inode_bitmap,
                ),
            };
            let used = |item: u64| match kind {
                BitmapKind::Block => ctx.scan.claims.is_used(item as u32),
                BitmapKind::Inode => ctx.scan.in_use.get(item),
            };
            let noun = match kind {
                BitmapKind::Block => "block",
                BitmapKind::Inode => "inode",
            };
            let show = move |item: u64| match kind {
                BitmapKind::Block => item,
                BitmapKind::Inode => item + 1,
            };
            for k in 0..count {
                let block = start + k;
                let first = u64::from(k) * u64::from(bpb);
                let valid = (u64::from(total) - first).min(u64::from(bpb));
                let id = |s: &str| format!("{prefix}.{k}.{s}");
                self.push(
                    id("crc"),
                    format!("{noun} bitmap block {k} (block {block}): checksum"),
                    Expect::Detect,
                    Repair::Yes,
                    op(move |ed| ed.flip_crc(Seal::Bitmap(block), 3)),
                );
                let in_use = (first..first + valid)
                    .rev()
                    .find(|&i| used(i) && bitmap.test(i));
                if let Some(item) = in_use {
                    let bit = (item - first) as u32;
                    self.push(
                        id("used"),
                        format!("{noun} bitmap: {noun} {} in use marked free", show(item)),
                        Expect::Detect,
                        Repair::Yes,
                        op(move |ed| set_bit(ed, block, bit, false)),
                    );
                    self.sample();
                }
                if k == 0 && kind == BitmapKind::Block {
                    self.push(
                        id("meta"),
                        "block bitmap: block 0 (superblock) marked free".into(),
                        Expect::Detect,
                        Repair::Yes,
                        op(move |ed| set_bit(ed, block, 0, false)),
                    );
                }
                let free = (first..first + valid).find(|&i| !used(i) && !bitmap.test(i));
                if let Some(item) = free {
                    let bit = (item - first) as u32;
                    self.push(
                        id("free"),
                        format!("{noun} bitmap: free {noun} {} marked in use", show(item)),
                        Expect::Detect,
                        Repair::Yes,
                        op(move |ed| set_bit(ed, block, bit, true)),
                    );
                }
                if valid < u64::from(bpb) {
                    self.push(
                        id("padding"),
                        format!("{noun} bitmap: last padding bit cleared"),
                        Expect::Detect,
                        Repair::Yes,
                        op(move |ed| set_bit(ed, block, bpb - 1, false)),
                    );
                }
                self.push(
                    id("scramble"),
                    format!("{noun} bitmap block {k}: random bits flipped (seeded)"),
                    Expect::Detect,
                    Repair::Yes,
                    op(move |ed| {
                        let valid = valid as u32;
                        for _ in 0..8 {
                            let bit = ed.rng.below(u64::from(valid)) as u32;
                            let cur = bitmap_test(ed.bytes(Seal::Bitmap(block), true)?, bit);
                            set_bit(ed, block, bit, !cur)?;
                        }
                        Ok(())
                    }),
                );
            }
        }
    }

    // -- Inodes ----------------------------------------------------------

    fn inodes(&mut self, ctx: &Ctx) {
        use Expect::*;
        use Repair::*;
        let log = ctx.sb.layout.block_log;
        let bs = ctx.bs as u64;
        let sectors = bs / SECTOR_SIZE;
        for (&ino, info) in &ctx.scan.inodes {
            let i = info.inode;
            let s = Seal::Inode(ino);
            let path = ctx.path(ino);
            let kind = kind_name(i.mode);
            let id = |f: &str| format!("inode.{ino}.{f}");
            let what = |f: &str| format!("inode {ino} ({kind} {path}): {f}");
            let is_dev = matches!(i.file_type(), S_IFCHR | S_IFBLK);
            let root = ino == ROOT_INO;
            self.push(
                id("crc"),
                what("checksum"),
                Detect,
                No,
                op(move |ed| ed.flip_crc(s, 9)),
            );
            self.push(
                id("mode"),
                what("file type bits cleared"),
                Detect,
                No,
                op(move |ed| ed.set(s, I_MODE_OFF, 2, "mode", |m| m & 0o7777)),
            );
            // Another valid type: the inode may still parse, and then the
            // entries naming it have the wrong type.
            let (to, rep) = match i.file_type() {
                S_IFDIR if root => (S_IFREG, No),
                S_IFDIR => (S_IFREG, Yes),
                S_IFREG if i.size == 0 && i.blocks == 0 => (S_IFIFO, Yes),
                S_IFREG => (S_IFIFO, No),
                S_IFLNK => (S_IFREG, Maybe),
                _ => (S_IFREG, Yes),
            };
            self.push(
                id("mode.type"),
                what(&format!("type changed to {}", kind_name(to))),
                Detect,
                rep,
                op(move |ed| ed.set(s, I_MODE_OFF, 2, "mode", |m| (m & 0o7777) | u64::from(to))),
            );
            self.push(
                id("mode.perm"),
                what("permission bits"),
                Harmless,
                Nothing,
                op(move |ed| ed.set(s, I_MODE_OFF, 2, "mode", |m| m ^ 0o022)),
            );
            self.push(
                id("uid"),
                what("owner"),
                Harmless,
                Nothing,
                op(move |ed| ed.set(s, I_UID_OFF, 4, "uid", |v| v ^ 0x4242)),
            );
            self.push(
                id("flags"),
                what("flags: an undefined bit (31)"),
                Detect,
                No,
                op(move |ed| ed.set(s, I_FLAGS_OFF, 4, "flags", |v| v | 0x8000_0000)),
            );
            if ctx.sb.feature_ro_compat & FEATURE_RO_COMPAT_INODE_FLAGS == 0 {
                self.push(
                    id("flags.nofeature"),
                    what("flags: immutable, without the inode-flags feature"),
                    Detect,
                    No,
                    op(move |ed| {
                        ed.set(s, I_FLAGS_OFF, 4, "flags", |v| {
                            v | u64::from(INODE_FLAG_IMMUTABLE)
                        })
                    }),
                );
            }
            self.push(
                id("reserved"),
                what("reserved bytes after the map"),
                Harmless,
                Nothing,
                op(move |ed| ed.put(s, I_MAP_OFF + I_MAP_SIZE, &[0xa5], "reserved[0]")),
            );
            self.push(
                id("links"),
                what("link count + 1"),
                Detect,
                Yes,
                op(move |ed| ed.set(s, I_LINKS_OFF, 4, "links", |v| v + 1)),
            );
            self.sample();
            if i.links != 0 {
                self.push(
                    id("links.zero"),
                    what("link count 0"),
                    Detect,
                    Yes,
                    op(move |ed| ed.set(s, I_LINKS_OFF, 4, "links", |_| 0)),
                );
            }
            self.push(
                id("links.huge"),
                what("link count 2^32 - 1"),
                Detect,
                Yes,
                op(move |ed| ed.set(s, I_LINKS_OFF, 4, "links", |_| u64::from(u32::MAX))),
            );
            let huge = match i.file_type() {
                S_IFREG | S_IFDIR => max_file_size(log) + 1,
                S_IFLNK => bs,
                _ => 1,
            };
            self.push(
                id("size.huge"),
                what(&format!("size {huge}")),
                Detect,
                No,
                op(move |ed| ed.set(s, I_SIZE_OFF, 8, "size", |_| huge)),
            );
            let has_data = ctx.data.get(&ino).is_some_and(|d| !d.is_empty());
            if i.is_reg() && has_data {
                self.push(
                    id("size.shrink"),
                    what("size 0: every block past the end"),
                    Detect,
                    Yes,
                    op(move |ed| ed.set(s, I_SIZE_OFF, 8, "size", |_| 0)),
                );
            }
            if i.is_reg() {
                self.push(
                    id("size.grow"),
                    what("size + 16 blocks (a longer hole)"),
                    Harmless,
                    Nothing,
                    op(move |ed| ed.set(s, I_SIZE_OFF, 8, "size", |v| v + 16 * bs)),
                );
            }
            if i.is_dir() {
                if i.size > bs {
                    self.push(
                        id("size.shrink"),
                        what("size one block: later blocks past the end"),
                        Detect,
                        Yes,
                        op(move |ed| ed.set(s, I_SIZE_OFF, 8, "size", |_| bs)),
                    );
                }
                self.push(
                    id("size.grow"),
                    what("size + 1 block: a hole in the directory"),
                    Detect,
                    No,
                    op(move |ed| ed.set(s, I_SIZE_OFF, 8, "size", |v| v + bs)),
                );
                self.push(
                    id("size.odd"),
                    what("size not whole blocks"),
                    Detect,
                    No,
                    op(move |ed| ed.set(s, I_SIZE_OFF, 8, "size", |v| v + 1)),
                );
            }
            // `blocks` one block off: a plain count error where the type
            // has blocks; an invalid inode where it must be 0.
            let counted = i.has_block_map();
            self.push(
                id("blocks"),
                what("blocks + 1 block"),
                Detect,
                if counted { Yes } else { No },
                op(move |ed| ed.set(s, I_BLOCKS_OFF, 8, "blocks", |v| v + sectors)),
            );
            if sectors > 1 {
                self.push(
                    id("blocks.partial"),
                    what("blocks not whole filesystem blocks"),
                    Detect,
                    No,
                    op(move |ed| ed.set(s, I_BLOCKS_OFF, 8, "blocks", |v| v + 1)),
                );
            }
            self.push(
                id("nsec"),
                what("atime nanoseconds 10^9"),
                Detect,
                No,
                op(move |ed| ed.set(s, I_TIMES_NSEC_OFF, 4, "atime_nsec", |_| 1_000_000_000)),
            );
            self.push(
                id("rdev"),
                what("device major number"),
                if is_dev { Harmless } else { Detect },
                if is_dev { Nothing } else { No },
                op(move |ed| ed.set(s, I_RDEV_MAJOR_OFF, 4, "rdev_major", |v| v ^ 1)),
            );
            self.push(
                id("clear"),
                what("slot zeroed (inode freed under its entries)"),
                Detect,
                if root { No } else { Yes },
                op(move |ed| {
                    ed.bytes(s, false)?.fill(0);
                    ed.note(format!("{s}: slot zeroed"));
                    Ok(())
                }),
            );
            self.push(
                id("scramble"),
                what("random bytes (seeded), resealed"),
                Detect,
                No,
                op(move |ed| {
                    let mut junk = [0u8; I_CRC_OFF];
                    for b in junk.iter_mut() {
                        *b = ed.rng.next_u64() as u8;
                    }
                    ed.put(s, 0, &junk, "bytes 0..252")
                }),
            );
            if i.has_block_map() {
                self.inode_map(ctx, ino, &i);
            }
        }
    }

    /// Mutations of the block map of an inode that has one.
    fn inode_map(&mut self, ctx: &Ctx, ino: u32, i: &Inode) {
        use Expect::*;
        use Repair::*;
        let s = Seal::Inode(ino);
        let l = ctx.sb.layout;
        let path = ctx.path(ino);
        let kind = kind_name(i.mode);
        let what = |f: String| format!("inode {ino} ({kind} {path}): {f}");
        let nonzero: Vec<usize> = (0..N_MAP).filter(|&k| i.map[k] != 0).collect();
        let last_direct = nonzero.iter().copied().filter(|&k| k < N_DIRECT).max();
        for &k in &nonzero {
            let old = i.map[k];
            let off = I_MAP_OFF + 4 * k;
            let name = format!("map[{k}]");
            let ptr = |v: u32| {
                let name = name.clone();
                op(move |ed| ed.set(s, off, 4, &name, |_| u64::from(v)))
            };
            let id = |f: &str| {
                if f.is_empty() {
                    format!("inode.{ino}.map.{k}")
                } else {
                    format!("inode.{ino}.map.{k}.{f}")
                }
            };
            let role = if k < N_DIRECT {
                format!("map[{k}] (direct, block {old})")
            } else {
                format!("map[{k}] ({}-indirect root, block {old})", k - N_DIRECT + 1)
            };
            self.push(
                id(""),
                what(format!("{role} -> {} (beyond the filesystem)", l.blocks_count)),
                Detect,
                No,
                ptr(l.blocks_count),
            );
            if !(k == 0 || k >= N_DIRECT || Some(k) == last_direct) {
                continue;
            }
            let indirect = k >= N_DIRECT;
            // A lost data block of a file is a count error; of a
            // directory, a hole; of a slow symlink, an invalid inode.
            let zero_fix = if i.is_reg() { Yes } else { No };
            self.push(
                id("zero"),
                what(format!("{role} -> 0 (a hole)")),
                Detect,
                zero_fix,
                ptr(0),
            );
            self.push(
                id("meta"),
                what(format!("{role} -> {} (inode table)", l.itable_start)),
                Detect,
                No,
                ptr(l.itable_start),
            );
            if let Some(other) = ctx.other_data_block(ino) {
                let rep = if indirect || i.is_dir() {
                    No
                } else {
                    Yes
                };
                self.push(
                    id("shared"),
                    what(format!("{role} -> {other} (another file's data block)")),
                    Detect,
                    rep,
                    ptr(other),
                );
            }
            if let Some(free) = ctx.free_block {
                let rep = if indirect || i.is_dir() {
                    No
                } else {
                    Yes
                };
                self.push(
                    id("free"),
                    what(format!("{role} -> {free} (a free block)")),
                    Detect,
                    rep,
                    ptr(free),
                );
            }
        }
        let single = i.map[N_DIRECT];
        if single != 0 {
            self.push(
                format!("inode.{ino}.map.selfind"),
                what(format!(
                    "map[0] -> {single} (its own single-indirect block)"
                )),
                Detect,
                No,
                op(move |ed| ed.set(s, I_MAP_OFF, 4, "map[0]", |_| u64::from(single))),
            );
        }
        // A block mapped past the end of a regular file.
        if i.is_reg() {
            let first_past = ctx.size_blocks(i);
            if first_past < N_DIRECT as u64 && i.map[first_past as usize] == 0 {
                if let Some(free) = ctx.free_block {
                    let k = first_past as usize;
                    self.push(
                        format!("inode.{ino}.map.past"),
                        what(format!("map[{k}] -> {free}: a block past the end of file")),
                        Detect,
                        Yes,
                        op(move |ed| {
                            ed.set(s, I_MAP_OFF + 4 * k, 4, &format!("map[{k}]"), |_| {
                                u64::from(free)
                            })
                        }),
                    );
                }
            }
        }
    }

    /// A free inode slot given contents.
    fn free_slot(&mut self, ctx: &Ctx) {
        let Some(f) = ctx.free_ino else {
            return;
        };
        let s = Seal::Inode(f);
        for (suffix, links, what) in [
            ("orphan", 1u32, "a valid empty file with 1 link that no entry names"),
            ("orphan0", 0, "a valid empty file with 0 links (deleted while open)"),
        ] {
            self.push(
                format!("inode.{f}.{suffix}"),
                format!("free inode {f}: {what}"),
                Expect::Detect,
                Repair::Yes,
                op(move |ed| {
                    let inode = Inode {
                        mode: S_IFREG | 0o644,
                        links,
                        ..Inode::default()
                    };
                    let mut raw = [0u8; INODE_SIZE];
                    inode.encode(f, &mut raw);
                    ed.put(s, 0, &raw, "slot")
                }),
            );
        }
        self.sample();
        self.push(
            format!("inode.{f}.garbage"),
            format!("free inode {f}: filled with 0xa5, resealed"),
            Expect::Detect,
            Repair::No,
            op(move |ed| ed.put(s, 0, &[0xa5; I_CRC_OFF], "slot")),
        );
    }

    // -- Indirect blocks -------------------------------------------------

    fn indirects(&mut self, ctx: &Ctx) {
        use Expect::*;
        use Repair::*;
        let l = ctx.sb.layout;
        let log = l.block_log;
        for ind in &ctx.inds {
            let b = ind.block;
            let s = Seal::Indirect(b);
            let owner = ind.owner;
            let what = |f: String| {
                format!(
                    "indirect block {b} (depth {}, inode {owner} {}): {f}",
                    ind.depth,
                    ctx.path(owner)
                )
            };
            let id = |f: String| format!("ind.{b}.{f}");
            self.push(
                id("crc".into()),
                what("checksum".into()),
                Detect,
                No,
                op(move |ed| ed.flip_crc(s, 17)),
            );
            self.push(
                id("scramble".into()),
                what("random pointers (seeded), resealed".into()),
                Detect,
                No,
                op(move |ed| {
                    let junk: Vec<u32> =
                        (0..8).map(|_| ed.rng.next_u64() as u32 | 0x8000_0000).collect();
                    let buf = ed.bytes(s, true)?;
                    for (i, p) in junk.into_iter().enumerate() {
                        indirect_set(buf, i, p).map_err(|e| e.to_string())?;
                    }
                    ed.note(format!("{s}: pointers 0..8 randomised"));
                    Ok(())
                }),
            );
            let (first, last) = match (ind.ptrs.first(), ind.ptrs.last()) {
                (Some(f), Some(l)) => (f.0, l.0),
                _ => continue,
            };
            // Every pointer of a full indirect block would be hundreds of
            // near-identical entries: the first four and the last.
            let listed: Vec<(usize, u32)> = ind
                .ptrs
                .iter()
                .enumerate()
                .filter(|&(n, _)| n < 4 || n + 1 == ind.ptrs.len())
                .map(|(_, &p)| p)
                .collect();
            for (slot, old) in listed {
                let ptr = move |v: u32| {
                    op(move |ed| {
                        indirect_set(ed.bytes(s, true)?, slot, v).map_err(|e| e.to_string())?;
                        ed.note(format!("{s}: pointer {slot} {old} -> {v}"));
                        Ok(())
                    })
                };
                let role = format!("pointer {slot} (block {old})");
                self.push(
                    id(format!("{slot}")),
                    what(format!("{role} -> {} (beyond the filesystem)", l.blocks_count)),
                    Detect,
                    No,
                    ptr(l.blocks_count),
                );
                if slot == first {
                    self.sample();
                }
                if slot != first && slot != last {
                    continue;
                }
                let leaf = ind.depth == 1;
                let reg = ctx.inode(owner).is_some_and(|i| i.is_reg());
                let data_fix = |ok: bool| if ok { Yes } else { No };
                self.push(
                    id(format!("{slot}.zero")),
                    what(format!("{role} -> 0 (a hole)")),
                    Detect,
                    data_fix(reg),
                    ptr(0),
                );
                self.push(
                    id(format!("{slot}.meta")),
                    what(format!("{role} -> {} (block bitmap)", l.bbitmap_start)),
                    Detect,
                    No,
                    ptr(l.bbitmap_start),
                );
                // In a leaf block the second reference is a data block,
                // which fsck clones; deeper, it is an indirect block
                // shared with itself, which fsck leaves.
                self.push(
                    id(format!("{slot}.self")),
                    what(format!("{role} -> {b} (the indirect block itself)")),
                    Detect,
                    data_fix(leaf && reg),
                    ptr(b),
                );
                if let Some(other) = ctx.other_data_block(owner) {
                    self.push(
                        id(format!("{slot}.shared")),
                        what(format!("{role} -> {other} (another file's data block)")),
                        Detect,
                        data_fix(leaf && reg),
                        ptr(other),
                    );
                }
                if let Some(free) = ctx.free_block {
                    self.push(
                        id(format!("{slot}.free")),
                        what(format!("{role} -> {free} (a free block)")),
                        Detect,
                        data_fix(leaf && reg),
                        ptr(free),
                    );
                }
            }
            // A data block past the end of file: the first hole after the
            // last pointer of a leaf indirect block, if it lies past EOF.
            let owner_inode = ctx.inode(owner);
            if let (Some(inode), Some(free)) = (owner_inode, ctx.free_block) {
                let slot = last + 1;
                let span = blocks_at_depth(log, ind.depth - 1);
                let index = ind.index + slot as u64 * span;
                if ind.depth == 1
                    && inode.is_reg()
                    && slot < ind.slots
                    && index >= ctx.size_blocks(inode)
                {
                    self.push(
                        id("past".into()),
                        what(format!("pointer {slot} -> {free}: a block past the end of file")),
                        Detect,
                        Yes,
                        op(move |ed| {
                            indirect_set(ed.bytes(s, true)?, slot, free)
                                .map_err(|e| e.to_string())?;
                            ed.note(format!("{s}: pointer {slot} 0 -> {free}"));
                            Ok(())
                        }),
                    );
                }
            }
        }
    }

    // -- Directories -----------------------------------------------------

    fn directories(&mut self, ctx: &Ctx) {
        use Expect::*;
        use Repair::*;
        let tail = ctx.bs - DIR_TAIL_SIZE;
        for (&dir, blocks) in &ctx.dirs {
            let dpath = ctx.path(dir);
            let names: BTreeSet<Vec<u8>> = blocks
                .iter()
                .flat_map(|b| b.entries.iter().map(|e| e.name.clone()))
                .collect();
            for db in blocks {
                let b = db.block;
                let s = Seal::Dir(b);
                let bi = db.index;
                let what =
                    |f: String| format!("directory {dir} ({dpath}) block {bi} (block {b}): {f}");
                self.push(
                    format!("dir.{dir}.{bi}.crc"),
                    what("checksum".into()),
                    Detect,
                    No,
                    op(move |ed| ed.flip_crc(s, 1)),
                );
                self.push(
                    format!("dir.{dir}.{bi}.tail"),
                    what("tail magic".into()),
                    Detect,
                    No,
                    op(move |ed| ed.put(s, tail + DE_FILE_TYPE, &[0xad], "tail magic")),
                );
                self.push(
                    format!("dir.{dir}.{bi}.scramble"),
                    what("random bytes over the first 32 (seeded), resealed".into()),
                    Detect,
                    No,
                    op(move |ed| {
                        let mut junk = [0u8; 32];
                        for x in junk.iter_mut() {
                            *x = ed.rng.next_u64() as u8;
                        }
                        ed.put(s, 0, &junk, "bytes 0..32")
                    }),
                );
                for e in &db.entries {
                    self.dirent(ctx, dir, db, e, &names, &what);
                }
            }
        }
    }

    fn dirent(
        &mut self,
        ctx: &Ctx,
        dir: u32,
        db: &DirBlk,
        e: &Ent,
        names: &BTreeSet<Vec<u8>>,
        what_blk: &dyn Fn(String) -> String,
    ) {
        use Expect::*;
        use Repair::*;
        let l = ctx.sb.layout;
        let s = Seal::Dir(db.block);
        let o = e.offset;
        let dot = db.index == 0 && o == 0;
        let dotdot = db.index == 0 && o == DOTDOT_OFF;
        let special = dot || dotdot;
        let shown = show_name(&e.name);
        let what = |f: &str| what_blk(format!("entry \"{shown}\" at {o}: {f}"));
        let id = |f: &str| format!("dirent.{dir}.{}.{o}.{f}", db.index);
        let set = move |off: usize, len: usize, name: &'static str, v: u64| {
            op(move |ed| ed.set(s, o + off, len, name, |_| v))
        };
        self.push(
            id("ino"),
            what(&format!("inode {} -> {} (out of range)", e.ino, l.inodes_count + 1)),
            Detect,
            Yes,
            set(DE_INO, 4, "inode", u64::from(l.inodes_count) + 1),
        );
        if db.index == 0 && o == 0 {
            self.sample();
        }
        if let Some(f) = ctx.free_ino {
            self.push(
                id("ino.free"),
                what(&format!("inode {} -> {f} (a free inode)", e.ino)),
                Detect,
                Yes,
                set(DE_INO, 4, "inode", u64::from(f)),
            );
        }
        self.push(
            id("ino.zero"),
            what("inode 0 (record unused)"),
            Detect,
            if special { No } else { Yes },
            set(DE_INO, 4, "inode", 0),
        );
        self.push(
            id("rec_len"),
            what(&format!("rec_len {} -> {} (misaligned)", e.rec_len, e.rec_len + 1)),
            Detect,
            No,
            set(DE_REC_LEN, 2, "rec_len", e.rec_len as u64 + 1),
        );
        let cross = ctx.bs - o;
        self.push(
            id("rec_len.cross"),
            what(&format!("rec_len {} -> {cross} (over the tail)", e.rec_len)),
            Detect,
            No,
            set(DE_REC_LEN, 2, "rec_len", cross as u64),
        );
        self.push(
            id("name_len"),
            what("name_len 0"),
            Detect,
            No,
            set(DE_NAME_LEN, 1, "name_len", 0),
        );
        let big = e.rec_len - DIRENT_HEADER + 1;
        if big <= NAME_MAX {
            self.push(
                id("name_len.big"),
                what(&format!("name_len {} -> {big} (past the record)", e.name.len())),
                Detect,
                No,
                set(DE_NAME_LEN, 1, "name_len", big as u64),
            );
        }
        self.push(
            id("file_type"),
            what(&format!("file_type {} -> 0 (unknown)", e.file_type)),
            Detect,
            No,
            set(DE_FILE_TYPE, 1, "file_type", u64::from(DT_UNKNOWN)),
        );
        let other = if e.file_type == DT_REG { DT_LNK } else { DT_REG };
        self.push(
            id("file_type.wrong"),
            what(&format!("file_type {} -> {other}", e.file_type)),
            Detect,
            if special { No } else { Yes },
            set(DE_FILE_TYPE, 1, "file_type", u64::from(other)),
        );
        self.push(
            id("name"),
            what("first name byte '/'"),
            Detect,
            No,
            op(move |ed| ed.put(s, o + DE_NAME, b"/", "name[0]")),
        );
        if !special {
            // Another valid name that no sibling has.
            let last = e.name.len() - 1;
            let pick = (b'a'..=b'z').find(|&c| {
                let mut n = e.name.clone();
                n[last] = c;
                !names.contains(&n)
            });
            if let Some(c) = pick {
                self.push(
                    id("name.char"),
                    what(&format!("last name byte -> '{}' (still unique)", c as char)),
                    Harmless,
                    Nothing,
                    op(move |ed| ed.put(s, o + DE_NAME + last, &[c], "name byte")),
                );
            }
        }
    }

    // -- Whole-tree damage -------------------------------------------------

    fn structure(&mut self, ctx: &Ctx) {
        use Expect::*;
        use Repair::*;
        for (&dir, blocks) in &ctx.dirs {
            let dpath = ctx.path(dir);
            let Some(parent) = ctx.parent(dir) else {
                continue;
            };
            let blocks_d = blocks.clone();
            // An entry naming the parent: a directory named twice, the
            // second time from below (a loop).
            if dir != ROOT_INO {
                self.push(
                    format!("dirloop.{dir}.parent"),
                    format!(
                        "directory {dir} ({dpath}): new entry \"loop\" naming its parent {parent}"
                    ),
                    Detect,
                    Yes,
                    insert_op(blocks_d.clone(), b"loop".to_vec(), parent, DT_DIR),
                );
                self.sample();
                if parent != ROOT_INO {
                    self.push(
                        format!("dirloop.{dir}.root"),
                        format!("directory {dir} ({dpath}): new entry \"loop\" naming the root"),
                        Detect,
                        Yes,
                        insert_op(blocks_d.clone(), b"loop".to_vec(), ROOT_INO, DT_DIR),
                    );
                }
                // A detached cycle: the directory's entry in its parent is
                // removed and a subdirectory names it instead.
                let child = ctx.scan.dirs.get(&dir).and_then(|d| {
                    d.entries
                        .iter()
                        .find(|e| ctx.scan.dirs.get(&e.ino).is_some_and(|c| c.parent == dir))
                        .map(|e| e.ino)
                });
                let from_parent = ctx.scan.dirs.get(&parent).and_then(|p| {
                    p.entries
                        .iter()
                        .find(|e| e.ino == dir)
                        .map(|e| (e.name.clone(), e.loc))
                });
                let cblocks = child.and_then(|c| ctx.dirs.get(&c).cloned());
                if let (Some(child), Some((name, loc)), Some(cblocks)) =
                    (child, from_parent, cblocks)
                {
                    let insert = insert_op(cblocks, b"cycle".to_vec(), dir, DT_DIR);
                    self.push(
                        format!("dirloop.{dir}.cycle"),
                        format!(
                            "directory {dir} ({dpath}): unlinked from {parent}, named by its \
                             subdirectory {child} instead (a detached cycle)"
                        ),
                        Detect,
                        Yes,
                        op(move |ed| {
                            let s = Seal::Dir(loc.block);
                            let buf = ed.bytes(s, true)?;
                            dir_remove(buf, loc.index == 0, &name).map_err(|e| e.to_string())?;
                            ed.note(format!("{s}: entry \"{}\" removed", show_name(&name)));
                            insert(ed)
                        }),
                    );
                }
            }
            // Two entries with one name.
            let ents: Vec<(&DirBlk, &Ent)> = blocks
                .iter()
                .flat_map(|b| b.entries.iter().map(move |e| (b, e)))
                .filter(|(b, e)| !(b.index == 0 && (e.offset == 0 || e.offset == DOTDOT_OFF)))
                .collect();
            let pair = ents.iter().enumerate().find_map(|(x, (_, e1))| {
                ents.iter()
                    .enumerate()
                    .find(|&(y, (_, e2))| {
                        y != x && DIRENT_HEADER + e1.name.len() <= e2.rec_len
                    })
                    .map(|(_, (b2, e2))| (e1.name.clone(), b2.block, e2.offset, e2.name.clone()))
            });
            if let Some((name, block, off, old)) = pair {
                self.push(
                    format!("dupname.{dir}"),
                    format!(
                        "directory {dir} ({dpath}): entry \"{}\" renamed to \"{}\" (a duplicate)",
                        show_name(&old),
                        show_name(&name)
                    ),
                    Detect,
                    No,
                    op(move |ed| {
                        let s = Seal::Dir(block);
                        ed.set(s, off + DE_NAME_LEN, 1, "name_len", |_| name.len() as u64)?;
                        ed.put(s, off + DE_NAME, &name, "name")
                    }),
                );
            }
            // An extra entry naming a file whose link count says otherwise.
            if let Some(f) = ctx.some_file() {
                self.push(
                    format!("extralink.{dir}"),
                    format!(
                        "directory {dir} ({dpath}): new entry \"extra-link\" naming file {f} \
                         (its link count not raised)"
                    ),
                    Detect,
                    Yes,
                    insert_op(blocks.clone(), b"extra-link".to_vec(), f, DT_REG),
                );
            }
        }
    }
}

/// Sets or clears bit `bit` of bitmap block `block`.
fn set_bit(ed: &mut Editor<'_, '_>, block: u32, bit: u32, value: bool) -> EdResult<()> {
    let s = Seal::Bitmap(block);
    let buf = ed.bytes(s, true)?;
    let r = if value {
        bitmap_set(buf, bit)
    } else {
        bitmap_clear(buf, bit)
    };
    let old = r.map_err(|e| format!("{s}: {e}"))?;
    ed.note(format!("{s}: bit {bit} {} -> {}", u8::from(old), u8::from(value)));
    Ok(())
}

/// Inserts entry `name` -> `ino` in the first block of a directory where
/// it fits, with the format module's `dir_insert`.
fn insert_op(blocks: Vec<DirBlk>, name: Vec<u8>, ino: u32, ft: u8) -> Op {
    op(move |ed| {
        for db in &blocks {
            let s = Seal::Dir(db.block);
            let buf = ed.block(db.block)?.clone();
            let mut copy = buf;
            match dir_insert(&mut copy, db.index == 0, &name, ino, ft) {
                Ok(off) => {
                    ed.bytes(s, true)?.copy_from_slice(&copy);
                    ed.note(format!(
                        "{s}: entry \"{}\" -> inode {ino} inserted at {off}",
                        show_name(&name)
                    ));
                    return Ok(());
                }
                Err(FormatError::NoSpace) => continue,
                Err(e) => return Err(format!("{s}: {e}")),
            }
        }
        Err("no room for the entry in any block of the directory".into())
    })
}

/// The kind of file a mode describes, in words.
pub fn kind_name(mode: u16) -> &'static str {
    match mode & S_IFMT {
        S_IFREG => "file",
        S_IFDIR => "dir",
        S_IFLNK => "symlink",
        S_IFCHR => "chardev",
        S_IFBLK => "blockdev",
        S_IFIFO => "fifo",
        S_IFSOCK => "socket",
        _ => "?",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directory entry offsets used here agree with the format
    /// module's parser.
    #[test]
    fn dirent_offsets_match_the_parser() {
        let mut buf = vec![0u8; 1024];
        dir_init_first(&mut buf, 7, 3).unwrap();
        let off = dir_insert(&mut buf, true, b"hello", 0x0102_0304, DT_FIFO).unwrap();
        let e = DirBlock::parse(&buf, true)
            .unwrap()
            .find(b"hello")
            .unwrap()
            .unwrap();
        let rd = |o: usize, n: usize| {
            let mut v = [0u8; 8];
            v[..n].copy_from_slice(&buf[off + o..off + o + n]);
            u64::from_le_bytes(v)
        };
        assert_eq!(rd(DE_INO, 4), u64::from(e.ino));
        assert_eq!(rd(DE_REC_LEN, 2), e.rec_len as u64);
        assert_eq!(rd(DE_NAME_LEN, 1), 5);
        assert_eq!(rd(DE_FILE_TYPE, 1), u64::from(DT_FIFO));
        assert_eq!(&buf[off + DE_NAME..off + DE_NAME + 5], b"hello");
        // The tail's magic sits where an entry's file type does.
        assert_eq!(buf[1024 - DIR_TAIL_SIZE + DE_FILE_TYPE], DIR_TAIL_MAGIC);
    }
}
