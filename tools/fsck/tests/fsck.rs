// SPDX-License-Identifier: GPL-2.0

//! fsck.rbfs tests: images built by mkfs from a generated tree, damaged in
//! one specific way each with the shared format module's encoders, then
//! checked and repaired by the fsck binary.  What is verified each time:
//! the exit code, the line naming the problem, that `-n` leaves the image
//! byte for byte as it was, that after `-y` a second run is clean and the
//! read-only checker agrees, and that file contents are what they were.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use rbfs_format::check::{Image, ImageRead};
use rbfs_format::format::*;
use rbfs_mkfs::{make_fs, MkfsOptions};

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rbfs-fsck-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes with no zero byte, so no block is a hole.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed) | 1)
        .collect()
}

/// The host tree every test formats: nested directories, a file past the
/// direct blocks (single indirect), a sparse file, hard links, both kinds
/// of symlink, a directory of several blocks, a FIFO.
fn make_tree(root: &Path, bs: usize) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join("a/one.txt"), b"one\n").unwrap();
    fs::write(root.join("a/b/two.bin"), pattern(bs + 7, 2)).unwrap();
    fs::write(root.join("big.bin"), pattern((N_DIRECT + 6) * bs + 11, 7)).unwrap();
    let f = fs::File::create(root.join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"tail", 40 * bs as u64).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::hard_link(root.join("a/one.txt"), root.join("hardlink")).unwrap();
    fs::hard_link(root.join("a/one.txt"), root.join("a/b/hardlink2")).unwrap();
    std::os::unix::fs::symlink("a/one.txt", root.join("short-link")).unwrap();
    std::os::unix::fs::symlink("x/".repeat(40), root.join("long-link")).unwrap();
    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..120 {
        fs::write(
            many.join(format!("file-{i:03}-{}", "y".repeat(i % 17))),
            [i as u8 | 1],
        )
        .unwrap();
    }
    let _ = Command::new("mkfifo").arg(root.join("fifo")).status();
}

/// A populated image in memory, with the paths the tests damage.
struct Fixture {
    _tmp: TempDir,
    dir: PathBuf,
    bytes: Vec<u8>,
}

fn fixture(bs: u32) -> Fixture {
    fixture_with(bs, None, |tree| make_tree(tree, bs as usize))
}

/// An image of `bs`-byte blocks (2 MiB, `inodes` inodes or mkfs's
/// default) populated by `make`.
fn fixture_with(bs: u32, inodes: Option<u64>, make: impl FnOnce(&Path)) -> Fixture {
    let tmp = TempDir::new(&format!("fx{bs}"));
    let tree = tmp.0.join("tree");
    fs::create_dir(&tree).unwrap();
    make(&tree);
    let mut dev = std::io::Cursor::new(Vec::new());
    let mut opts = MkfsOptions::new(bs, (2 << 20) / u64::from(bs));
    opts.inodes = inodes;
    opts.populate = Some(tree);
    make_fs(&opts, &mut dev).unwrap();
    let dir = tmp.0.clone();
    Fixture {
        _tmp: tmp,
        dir,
        bytes: dev.into_inner(),
    }
}

/// What a path holds, as read through the read-only checker.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
    Other(u16),
}

type Snapshot = BTreeMap<String, Content>;

/// Every path of the image (lost+found excluded) with its content.
fn snapshot(bytes: &[u8]) -> Snapshot {
    let img = Image::open(bytes).unwrap();
    let mut out = BTreeMap::new();
    walk(&img, ROOT_INO, String::new(), &mut out);
    out
}

fn walk<R: ImageRead + ?Sized>(img: &Image<'_, R>, dir: u32, prefix: String, out: &mut Snapshot) {
    let inode = img.inode(dir).unwrap();
    for e in img.read_dir(&inode).unwrap() {
        if e.name == b"." || e.name == b".." || (dir == ROOT_INO && e.name == b"lost+found") {
            continue;
        }
        let path = format!("{prefix}/{}", String::from_utf8_lossy(&e.name));
        let child = img.inode(e.ino).unwrap();
        let c = if child.is_dir() {
            walk(img, e.ino, path.clone(), out);
            Content::Dir
        } else if child.is_reg() {
            Content::File(img.read_file(&child).unwrap())
        } else if child.is_symlink() {
            Content::Link(img.read_link(&child).unwrap())
        } else {
            Content::Other(child.mode)
        };
        out.insert(path, c);
    }
}

/// Small accessors for damaging an image in memory.
struct Fs<'b>(&'b mut Vec<u8>);

impl Fs<'_> {
    fn sb(&self) -> Superblock {
        Superblock::parse(&self.0[..SUPERBLOCK_SIZE]).unwrap()
    }

    fn bs(&self) -> usize {
        self.sb().block_size()
    }

    fn lookup(&self, path: &str) -> u32 {
        Image::open(self.0.as_slice())
            .unwrap()
            .lookup(path.as_bytes())
            .unwrap()
    }

    fn inode(&self, ino: u32) -> Inode {
        Image::open(self.0.as_slice()).unwrap().inode(ino).unwrap()
    }

    fn inode_off(&self, ino: u32) -> usize {
        let (block, off) = self.sb().inode_location(ino).unwrap();
        block as usize * self.bs() + off
    }

    /// Changes an inode and reseals it (a consistent-looking inode with a
    /// wrong field, as a buggy writer would leave it).
    fn set_inode(&mut self, ino: u32, f: impl FnOnce(&mut Inode)) {
        let mut inode = self.inode(ino);
        f(&mut inode);
        let mut raw = [0u8; INODE_SIZE];
        inode.encode(ino, &mut raw);
        let off = self.inode_off(ino);
        self.0[off..off + INODE_SIZE].copy_from_slice(&raw);
    }

    fn block(&mut self, n: u32) -> &mut [u8] {
        let bs = self.bs();
        &mut self.0[n as usize * bs..(n as usize + 1) * bs]
    }

    fn set_sb(&mut self, f: impl FnOnce(&mut Superblock)) {
        let mut sb = self.sb();
        f(&mut sb);
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        sb.encode(&mut raw);
        self.0[..SUPERBLOCK_SIZE].copy_from_slice(&raw);
    }

    /// Sets or clears the block-bitmap bit of `block`, resealing.
    fn block_bit(&mut self, block: u32, value: bool) {
        let (bb, bit) = self.sb().block_bit_location(block).unwrap();
        let buf = self.block(bb);
        if value {
            bitmap_set(buf, bit).unwrap();
        } else {
            bitmap_clear(buf, bit).unwrap();
        }
        bitmap_seal(buf).unwrap();
    }

    /// First block of directory `dir`.
    fn dir_block(&self, dir: &str) -> u32 {
        self.inode(self.lookup(dir)).map[0]
    }

    /// Removes `name` from the directory at `dir` (searching its blocks).
    fn unlink(&mut self, dir: &str, name: &str) {
        let inode = self.inode(self.lookup(dir));
        let bs = self.bs() as u64;
        for index in 0..inode.size / bs {
            let b = Image::open(self.0.as_slice())
                .unwrap()
                .map_block(&inode, index)
                .unwrap();
            if dir_remove(self.block(b), index == 0, name.as_bytes()).is_ok() {
                return;
            }
        }
        panic!("{dir}/{name} not found");
    }

    /// Adds an entry to the first block of the directory at `dir`.
    fn link(&mut self, dir: &str, name: &str, ino: u32, ft: u8) {
        let b = self.dir_block(dir);
        dir_insert(self.block(b), true, name.as_bytes(), ino, ft).unwrap();
    }

    /// Rewrites the file type of entry `name` in the first block of `dir`.
    fn set_entry_type(&mut self, dir: &str, name: &str, ft: u8) {
        let b = self.dir_block(dir);
        let ino = self.lookup(&format!("{dir}/{name}"));
        dir_replace(self.block(b), true, name.as_bytes(), ino, ft).unwrap();
    }

    /// Free data blocks per the block bitmap.
    fn free_block(&self) -> u32 {
        let img = Image::open(self.0.as_slice()).unwrap();
        let sb = img.sb;
        (sb.layout.data_start..sb.layout.blocks_count)
            .rev()
            .find(|&b| {
                let (bb, bit) = sb.block_bit_location(b).unwrap();
                !bitmap_test(&img.read_block(bb).unwrap(), bit)
            })
            .unwrap()
    }
}

fn fsck_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fsck-rbfs"))
}

/// Runs fsck with `args` on `image`; returns (exit code, stdout, stderr).
fn fsck(args: &[&str], image: &Path) -> (i32, String, String) {
    let out = fsck_bin().args(args).arg(image).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Compares the snapshot before damage with the one after repair, given
/// the repaired image.
type SnapshotCheck = Box<dyn Fn(&Snapshot, &Snapshot, &[u8])>;

/// What a repair must leave behind, beyond "a second run is clean".
enum Expect {
    /// Every path reads as before.
    Same,
    /// A custom comparison of the snapshots before damage and after repair.
    Check(SnapshotCheck),
}

/// The standard scenario for one kind of damage.
///
/// * `-n` and the default mode report `msg` with exit 4 and leave the
///   image untouched (the default mode also says that repairs need -y);
/// * repairable: `-y` exits 1 and reports `msg` answered yes; a second
///   `-y` and `-n` are clean (exit 0), the checker finds no problem, and
///   the contents are as `expect` says.  `-p` on the damaged image does
///   the same repair, exit 1.
/// * not repairable: `-y` exits 4, reports `msg`, and leaves the image as
///   it was (nothing it could do safely).
fn scenario(
    fx: &Fixture,
    tag: &str,
    damage: impl FnOnce(&mut Fs),
    msg: &str,
    repairable: bool,
    expect: Expect,
) {
    let before = snapshot(&fx.bytes);
    let mut bad = fx.bytes.clone();
    damage(&mut Fs(&mut bad));
    assert_ne!(bad, fx.bytes, "{tag}: damage changed nothing");
    let img = fx.dir.join(format!("{tag}.img"));
    fs::write(&img, &bad).unwrap();

    let (code, out, err) = fsck(&["-n"], &img);
    assert_eq!(code, 4, "{tag}: -n exit\n{out}{err}");
    assert!(out.contains(msg), "{tag}: -n output lacks {msg:?}:\n{out}");
    assert_eq!(fs::read(&img).unwrap(), bad, "{tag}: -n modified the image");

    let (code, out, _) = fsck(&[], &img);
    assert_eq!(code, 4, "{tag}: default exit\n{out}");
    assert_eq!(
        fs::read(&img).unwrap(),
        bad,
        "{tag}: default mode modified the image"
    );
    if repairable {
        assert!(
            out.contains("fsck.rbfs -y"),
            "{tag}: no hint to use -y:\n{out}"
        );
    }

    let (code, out, err) = fsck(&["-y"], &img);
    let repaired = fs::read(&img).unwrap();
    if !repairable {
        assert_eq!(code, 4, "{tag}: -y exit\n{out}{err}");
        assert!(out.contains(msg), "{tag}: -y output lacks {msg:?}:\n{out}");
        assert!(out.contains("Not fixed"), "{tag}:\n{out}");
        assert!(out.contains("still has errors"), "{tag}:\n{out}");
        assert_eq!(repaired, bad, "{tag}: -y changed an unrepairable image");
        return;
    }
    assert_eq!(code, 1, "{tag}: -y exit\n{out}{err}");
    assert!(out.contains(msg), "{tag}: -y output lacks {msg:?}:\n{out}");
    assert!(out.contains("? yes"), "{tag}:\n{out}");
    assert!(out.contains("FILE SYSTEM WAS MODIFIED"), "{tag}:\n{out}");
    let (code, out2, _) = fsck(&["-y"], &img);
    assert_eq!(
        code, 0,
        "{tag}: second -y not clean:\n{out2}\nfirst run:\n{out}"
    );
    let (code, _, _) = fsck(&["-n"], &img);
    assert_eq!(code, 0, "{tag}: -n after repair");
    assert_eq!(fs::read(&img).unwrap(), repaired, "{tag}: clean run wrote");
    let report = Image::open(repaired.as_slice()).unwrap().check().unwrap();
    assert!(report.problems.is_empty(), "{tag}: {:?}", report.problems);
    let sb = Superblock::parse(&repaired[..SUPERBLOCK_SIZE]).unwrap();
    assert_eq!(sb.state, STATE_CLEAN, "{tag}: state after repair");
    let after = snapshot(&repaired);
    match expect {
        Expect::Same => assert_eq!(before, after, "{tag}: contents changed"),
        Expect::Check(f) => f(&before, &after, &repaired),
    }

    // Preen does the same repair.
    fs::write(&img, &bad).unwrap();
    let (code, out, err) = fsck(&["-p"], &img);
    assert_eq!(code, 1, "{tag}: -p exit\n{out}{err}");
    assert!(out.contains("FIXED."), "{tag}: -p output:\n{out}");
    assert!(
        !out.contains("Pass 1"),
        "{tag}: -p prints pass headers:\n{out}"
    );
    assert_eq!(fsck(&["-n"], &img).0, 0, "{tag}: -n after -p");
}

#[test]
fn clean_images_are_left_alone() {
    for bs in [512, 1024, 2048, 4096] {
        let fx = fixture(bs);
        let img = fx.dir.join("clean.img");
        fs::write(&img, &fx.bytes).unwrap();
        for args in [
            &["-n"][..],
            &[],
            &["-y"],
            &["-p"],
            &["-fy"],
            &["-f", "-v", "-n"],
        ] {
            let (code, out, err) = fsck(args, &img);
            assert_eq!(code, 0, "bs {bs} {args:?}: {out}{err}");
            assert_eq!(fs::read(&img).unwrap(), fx.bytes, "bs {bs} {args:?} wrote");
            let summary = out.lines().find(|l| l.contains(" files, ")).unwrap_or("");
            assert!(
                summary.starts_with(&format!("{}: ", img.display()))
                    && summary.contains(" files, ")
                    && summary.ends_with(" blocks"),
                "{summary}"
            );
            if args.is_empty() {
                for pass in 1..=5 {
                    assert!(out.contains(&format!("Pass {pass}: ")), "{out}");
                }
            }
        }
        // The summary counts what the checker counts.
        let report = Image::open(fx.bytes.as_slice()).unwrap().check().unwrap();
        let sb = Superblock::parse(&fx.bytes).unwrap();
        let (_, out, _) = fsck(&["-n"], &img);
        let want = format!(
            "{}/{} files, {}/{} blocks",
            report.used_inodes, sb.layout.inodes_count, report.used_blocks, sb.layout.blocks_count
        );
        assert!(out.contains(&want), "{out}\nwant {want}");
    }
}

#[test]
fn usage_and_operational_errors() {
    let fx = fixture(1024);
    let img = fx.dir.join("u.img");
    fs::write(&img, &fx.bytes).unwrap();
    for args in [
        &["-x"][..],
        &["-n", "-y"],
        &["-ny"],
        &["-p", "-n"],
        &["-y", "-a", "-n"],
    ] {
        let (code, _, err) = fsck(args, &img);
        assert_eq!(code, 16, "{args:?}: {err}");
        assert!(err.contains("Usage"), "{err}");
    }
    let out = fsck_bin().output().unwrap();
    assert_eq!(out.status.code(), Some(16));
    let out = fsck_bin().arg(&img).arg(&img).output().unwrap();
    assert_eq!(out.status.code(), Some(16));
    let out = fsck_bin().arg("-h").output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"));
    // -a is -p, repeated mode options are fine.
    assert_eq!(fsck(&["-a"], &img).0, 0);
    assert_eq!(fsck(&["-y", "-y"], &img).0, 0);

    let (code, _, err) = fsck(&["-n"], &fx.dir.join("missing"));
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("cannot open"), "{err}");
    let (code, _, err) = fsck(&["-y"], &fx.dir.join("missing"));
    assert_eq!(code, 8, "{err}");
    let (code, _, err) = fsck(&["-n"], &fx.dir);
    assert_eq!(code, 8, "{err}");

    // Not rbfs: zeros, or too short to hold a superblock.
    let zero = fx.dir.join("zero.img");
    fs::write(&zero, vec![0u8; fx.bytes.len()]).unwrap();
    for args in [&["-n"][..], &["-y"]] {
        let (code, _, err) = fsck(args, &zero);
        assert_eq!(code, 8, "{err}");
        assert!(err.contains("not an rbfs filesystem"), "{err}");
    }
    assert_eq!(fs::read(&zero).unwrap(), vec![0u8; fx.bytes.len()]);
    let short = fx.dir.join("short.img");
    fs::write(&short, b"RBFS").unwrap();
    assert_eq!(fsck(&["-n"], &short).0, 8);

    // Unknown features: refuse rather than misread.
    let mut bad = fx.bytes.clone();
    Fs(&mut bad).set_sb(|sb| sb.feature_ro_compat = 1 << 31);
    fs::write(&img, &bad).unwrap();
    let (code, _, err) = fsck(&["-y"], &img);
    assert_eq!(code, 8, "{err}");
    assert!(err.contains("unsupported features"), "{err}");
    assert_eq!(fs::read(&img).unwrap(), bad);
}

#[test]
fn damaged_superblock() {
    let fx = fixture(1024);
    scenario(
        &fx,
        "sb-crc",
        |fs| fs.0[100] ^= 0x10,
        "bad superblock checksum",
        false,
        Expect::Same,
    );
    // Truncated image: the superblock promises more than the device has.
    let img = fx.dir.join("trunc.img");
    fs::write(&img, &fx.bytes[..fx.bytes.len() - 1024]).unwrap();
    let (code, out, _) = fsck(&["-y"], &img);
    assert_eq!(code, 4, "{out}");
    assert!(out.contains("larger than the device"), "{out}");
}

#[test]
fn leaked_and_missing_block_bits() {
    let fx = fixture(1024);
    scenario(
        &fx,
        "leaked",
        |fs| {
            let b = fs.free_block();
            fs.block_bit(b, true);
        },
        "free but marked in use in the bitmap",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "missing",
        |fs| {
            let b = fs.dir_block("/a/b");
            fs.block_bit(b, false);
        },
        "in use but free in the bitmap",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "leaked-inode",
        |fs| {
            let sb = fs.sb();
            let (bb, bit) = sb.inode_bit_location(sb.layout.inodes_count - 1).unwrap();
            let buf = fs.block(bb);
            bitmap_set(buf, bit).unwrap();
            bitmap_seal(buf).unwrap();
        },
        "free but marked in use in the bitmap",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "bitmap-crc",
        |fs| {
            let start = fs.sb().layout.bbitmap_start;
            fs.block(start)[700] ^= 0x04;
        },
        "bad bitmap block checksum",
        true,
        Expect::Same,
    );
}

#[test]
fn wrong_free_counts_and_state() {
    let fx = fixture(1024);
    scenario(
        &fx,
        "free-blocks",
        |fs| fs.set_sb(|sb| sb.free_blocks -= 3),
        "free blocks count",
        true,
        Expect::Same,
    );
    // Out of range: the superblock parser itself rejects this value, so
    // fsck must get past it to repair it.
    scenario(
        &fx,
        "free-inodes-range",
        |fs| {
            let count = fs.sb().layout.inodes_count;
            fs.set_sb(|sb| sb.free_inodes = count);
        },
        "free inodes count",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "bad-state",
        |fs| fs.set_sb(|sb| sb.state = 7),
        "state 7 is neither clean",
        true,
        Expect::Same,
    );

    // Dirty but consistent: -n reports the state and exits 0; -y marks
    // it clean (a change, exit 1) and touches nothing else.
    let mut dirty = fx.bytes.clone();
    Fs(&mut dirty).set_sb(|sb| sb.state = STATE_DIRTY);
    let img = fx.dir.join("dirty.img");
    fs::write(&img, &dirty).unwrap();
    let (code, out, _) = fsck(&["-n"], &img);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("state is dirty"), "{out}");
    assert_eq!(fs::read(&img).unwrap(), dirty);
    let (code, out, _) = fsck(&["-y"], &img);
    assert_eq!(code, 1, "{out}");
    let fixed = fs::read(&img).unwrap();
    let sb = Superblock::parse(&fixed).unwrap();
    assert_eq!(sb.state, STATE_CLEAN);
    assert_eq!(fixed[SUPERBLOCK_SIZE..], fx.bytes[SUPERBLOCK_SIZE..]);
    assert_eq!(fsck(&["-n"], &img).0, 0);
}

#[test]
fn inode_field_repairs() {
    let fx = fixture(1024);
    scenario(
        &fx,
        "links",
        |fs| {
            let ino = fs.lookup("a/one.txt");
            fs.set_inode(ino, |i| i.links = 5);
        },
        "link count 5, should be 3",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "dir-links",
        |fs| {
            let ino = fs.lookup("a");
            fs.set_inode(ino, |i| i.links = 9);
        },
        "link count 9, should be 3",
        true,
        Expect::Same,
    );
    // big.bin: 19 data blocks and one indirect block, 40 sectors.
    scenario(
        &fx,
        "blocks",
        |fs| {
            let ino = fs.lookup("big.bin");
            fs.set_inode(ino, |i| i.blocks += 4);
        },
        "blocks 44, should be 40",
        true,
        Expect::Same,
    );
    // Blocks past the end of the file (an interrupted truncate): freed.
    scenario(
        &fx,
        "past-eof",
        |fs| {
            let ino = fs.lookup("big.bin");
            fs.set_inode(ino, |i| i.size = 3 * 1024 - 5);
        },
        "mapped past the end of the file",
        true,
        Expect::Check(Box::new(|before, after, bytes| {
            let Content::File(old) = &before["/big.bin"] else {
                panic!()
            };
            assert_eq!(
                after["/big.bin"],
                Content::File(old[..3 * 1024 - 5].to_vec())
            );
            let mut b = before.clone();
            b.remove("/big.bin");
            let mut a = after.clone();
            a.remove("/big.bin");
            assert_eq!(a, b);
            let img = Image::open(bytes).unwrap();
            let inode = img.inode(img.lookup(b"big.bin").unwrap()).unwrap();
            assert_eq!(inode.blocks, 3 * 2, "three 1 KiB blocks left");
            assert!(
                inode.map[N_DIRECT..].iter().all(|&p| p == 0),
                "indirect tree freed"
            );
        })),
    );
}

#[test]
fn directory_entry_repairs() {
    let fx = fixture(1024);
    scenario(
        &fx,
        "dirent-type",
        |fs| fs.set_entry_type("/", "a", DT_REG),
        "has file type 8, should be 4",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "dirent-free",
        |fs| {
            let count = fs.sb().layout.inodes_count;
            fs.link("/", "ghost", count - 2, DT_REG);
        },
        "entry 'ghost' names free inode",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "dotdot",
        |fs| {
            let many = fs.lookup("many");
            let b = fs.dir_block("/a/b");
            dir_set_dotdot(fs.block(b), many).unwrap();
        },
        "'..' is",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "dot",
        |fs| {
            let b = fs.dir_block("/a");
            let blk = fs.block(b);
            blk[0..4].copy_from_slice(&7u32.to_le_bytes());
            dir_seal(blk).unwrap();
        },
        "'.' is 7, should be",
        true,
        Expect::Same,
    );
    scenario(
        &fx,
        "dir-alias",
        |fs| {
            let c = fs.lookup("a/b/c");
            fs.link("/", "alias", c, DT_DIR);
        },
        "entry 'alias' is an extra link to directory",
        true,
        Expect::Same,
    );
}

#[test]
fn orphans_are_reconnected_or_freed() {
    let fx = fixture(1024);
    // A file no directory names, with links: into lost+found as #ino.
    let ino = Fs(&mut fx.bytes.clone()).lookup("big.bin");
    scenario(
        &fx,
        "orphan-file",
        |fs| fs.unlink("/", "big.bin"),
        "is in use but in no directory",
        true,
        Expect::Check(Box::new(move |before, after, bytes| {
            let mut want = before.clone();
            let c = want.remove("/big.bin").unwrap();
            assert_eq!(after, &want);
            let img = Image::open(bytes).unwrap();
            let found = img.lookup(format!("lost+found/#{ino}").as_bytes()).unwrap();
            assert_eq!(found, ino);
            let inode = img.inode(found).unwrap();
            assert_eq!(Content::File(img.read_file(&inode).unwrap()), c);
            let lf = img.inode(img.lookup(b"lost+found").unwrap()).unwrap();
            assert_eq!(lf.mode, S_IFDIR | 0o700);
        })),
    );
    // Deleted while open and never released (links 0): freed, blocks too.
    let used = Image::open(fx.bytes.as_slice())
        .unwrap()
        .check()
        .unwrap()
        .used_blocks;
    scenario(
        &fx,
        "orphan-unlinked",
        |fs| {
            fs.unlink("/", "big.bin");
            fs.set_inode(ino, |i| i.links = 0);
        },
        "(regular file, 0 link(s)",
        true,
        Expect::Check(Box::new(move |before, after, bytes| {
            let mut want = before.clone();
            want.remove("/big.bin");
            assert_eq!(&want, after);
            let report = Image::open(bytes).unwrap().check().unwrap();
            assert_eq!(report.used_blocks, used - (N_DIRECT as u64 + 6 + 1 + 1));
            let img = Image::open(bytes).unwrap();
            assert!(img.inode_slot(ino).unwrap().is_none(), "inode freed");
            assert!(img.lookup(b"lost+found").is_err(), "nothing reconnected");
        })),
    );
    // A directory no directory names: reconnected with its subtree; its
    // ".." then names lost+found and the root loses a subdirectory.
    let a = Fs(&mut fx.bytes.clone()).lookup("a");
    scenario(
        &fx,
        "orphan-dir",
        |fs| fs.unlink("/", "a"),
        "is not connected to the root",
        true,
        Expect::Check(Box::new(move |before, after, bytes| {
            let moved: Snapshot = before
                .iter()
                .filter_map(|(p, c)| {
                    p.strip_prefix("/a")
                        .map(|rest| (format!("/lost+found/#{a}{rest}"), c.clone()))
                })
                .collect();
            let img = Image::open(bytes).unwrap();
            for (path, c) in &moved {
                let ino = img.lookup(path.as_bytes()).unwrap();
                let inode = img.inode(ino).unwrap();
                if let Content::File(data) = c {
                    assert_eq!(&img.read_file(&inode).unwrap(), data, "{path}");
                }
            }
            let kept: Snapshot = before
                .iter()
                .filter(|(p, _)| !p.starts_with("/a"))
                .map(|(p, c)| (p.clone(), c.clone()))
                .collect();
            let now: Snapshot = after
                .iter()
                .filter(|(p, _)| !p.starts_with("/a"))
                .map(|(p, c)| (p.clone(), c.clone()))
                .collect();
            assert_eq!(kept, now);
        })),
    );
}

#[test]
fn shared_block_is_cloned() {
    let fx = fixture(1024);
    let mut probe = fx.bytes.clone();
    let fs = Fs(&mut probe);
    let two = fs.inode(fs.lookup("a/b/two.bin")).map[0];
    scenario(
        &fx,
        "shared",
        |fs| {
            let ino = fs.lookup("big.bin");
            fs.set_inode(ino, |i| i.map[1] = two);
        },
        "also used by inode",
        true,
        Expect::Check(Box::new(move |before, after, bytes| {
            // big.bin's second block now holds two.bin's first block (the
            // damage), in a copy of its own; everything else is intact.
            let img = Image::open(bytes).unwrap();
            let big = img.inode(img.lookup(b"big.bin").unwrap()).unwrap();
            assert_ne!(big.map[1], two);
            assert_eq!(
                img.inode(img.lookup(b"a/b/two.bin").unwrap()).unwrap().map[0],
                two
            );
            let Content::File(old) = &before["/big.bin"] else {
                panic!()
            };
            let Content::File(new) = &after["/big.bin"] else {
                panic!()
            };
            let Content::File(t) = &before["/a/b/two.bin"] else {
                panic!()
            };
            assert_eq!(new[1024..2048], t[..1024]);
            assert_eq!(new[..1024], old[..1024]);
            assert_eq!(new[2048..], old[2048..]);
            let mut b = before.clone();
            b.remove("/big.bin");
            let mut a = after.clone();
            a.remove("/big.bin");
            assert_eq!(a, b);
        })),
    );
}

#[test]
fn damaged_structures_are_left_alone() {
    let fx = fixture(1024);
    scenario(
        &fx,
        "inode-crc",
        |fs| {
            let off = fs.inode_off(fs.lookup("a/one.txt"));
            fs.0[off + 5] ^= 0x01;
        },
        "bad inode checksum",
        false,
        Expect::Same,
    );
    scenario(
        &fx,
        "dirblock-crc",
        |fs| {
            let many = fs.inode(fs.lookup("many"));
            let b = Image::open(fs.0.as_slice())
                .unwrap()
                .map_block(&many, 1)
                .unwrap();
            fs.block(b)[40] ^= 0x20;
        },
        "bad directory block checksum",
        false,
        Expect::Same,
    );
    scenario(
        &fx,
        "indirect-crc",
        |fs| {
            let b = fs.inode(fs.lookup("big.bin")).map[N_DIRECT];
            fs.block(b)[0] ^= 0x80;
        },
        "bad indirect block checksum",
        false,
        Expect::Same,
    );
    scenario(
        &fx,
        "dup-name",
        |fs| {
            let ino = fs.lookup("empty");
            // dir_insert refuses a name already in the block; the second
            // copy goes into the last directory block of "many", which
            // mkfs leaves with room.
            let many = fs.inode(fs.lookup("many"));
            let last = many.size / 1024 - 1;
            assert!(last > 0);
            let b1 = Image::open(fs.0.as_slice())
                .unwrap()
                .map_block(&many, last)
                .unwrap();
            dir_insert(fs.block(b1), false, b"file-000-", ino, DT_REG).unwrap();
            fs.set_inode(ino, |i| i.links = 2);
        },
        "more than one entry named 'file-000-'",
        false,
        Expect::Same,
    );
}

#[test]
fn inode_flags_need_their_feature() {
    let fx = fixture(1024);
    // With the inode-flags feature, flags are part of a clean image.
    let mut ok = fx.bytes.clone();
    {
        let mut fs = Fs(&mut ok);
        fs.set_sb(|sb| sb.feature_ro_compat = FEATURE_RO_COMPAT_INODE_FLAGS);
        let ino = fs.lookup("a/one.txt");
        fs.set_inode(ino, |i| i.flags = INODE_FLAG_IMMUTABLE | INODE_FLAG_NODUMP);
        let dir = fs.lookup("a");
        fs.set_inode(dir, |i| i.flags = INODE_FLAG_APPEND | INODE_FLAG_NOATIME);
    }
    let img = fx.dir.join("flags-ok.img");
    fs::write(&img, &ok).unwrap();
    let (code, out, err) = fsck(&["-n"], &img);
    assert_eq!(code, 0, "{out}{err}");
    // Without it, an inode with a flag was written by something that does
    // not know the format: the inode is damaged.
    scenario(
        &fx,
        "flags-nofeature",
        |fs| {
            let ino = fs.lookup("a/one.txt");
            fs.set_inode(ino, |i| i.flags = INODE_FLAG_IMMUTABLE);
        },
        "inode flags without the inode-flags feature",
        false,
        Expect::Same,
    );
    scenario(
        &fx,
        "flags-unknown",
        |fs| {
            fs.set_sb(|sb| sb.feature_ro_compat = FEATURE_RO_COMPAT_INODE_FLAGS);
            let ino = fs.lookup("a/one.txt");
            fs.set_inode(ino, |i| i.flags = 0x100);
        },
        "unknown inode flags",
        false,
        Expect::Same,
    );
}

#[test]
fn other_block_sizes() {
    for bs in [512, 4096] {
        let fx = fixture(bs);
        let ino = Fs(&mut fx.bytes.clone()).lookup("big.bin");
        scenario(
            &fx,
            &format!("multi-{bs}"),
            |fs| {
                fs.unlink("/", "big.bin");
                let one = fs.lookup("a/one.txt");
                fs.set_inode(one, |i| i.links = 1);
                let b = fs.free_block();
                fs.block_bit(b, true);
                fs.set_entry_type("/", "a", DT_LNK);
            },
            "link count 1, should be 3",
            true,
            Expect::Check(Box::new(move |before, after, bytes| {
                let mut want = before.clone();
                want.remove("/big.bin");
                assert_eq!(after, &want);
                let img = Image::open(bytes).unwrap();
                assert_eq!(
                    img.lookup(format!("lost+found/#{ino}").as_bytes()).unwrap(),
                    ino
                );
            })),
        );
    }
}

/// Orphans enough to need a lost+found of more than 12 blocks: it grows
/// block by block, through its single-indirect block.
#[test]
fn many_orphans_grow_lost_found() {
    const FILES: usize = 600;
    let fx = fixture_with(512, Some(1024), |tree| {
        let many = tree.join("many");
        fs::create_dir(&many).unwrap();
        for i in 0..FILES {
            fs::write(many.join(format!("f{i}")), format!("{i}")).unwrap();
        }
    });
    let many = Fs(&mut fx.bytes.clone()).lookup("many");
    let mut bad = fx.bytes.clone();
    // Cut "many" off the root and empty it, so that every file is
    // reconnected on its own.
    Fs(&mut bad).unlink("/", "many");
    let inode = Fs(&mut bad).inode(many);
    for index in 0..inode.size / 512 {
        let b = Image::open(bad.as_slice())
            .unwrap()
            .map_block(&inode, index)
            .unwrap();
        for i in 0..FILES {
            let _ = dir_remove(
                Fs(&mut bad).block(b),
                index == 0,
                format!("f{i}").as_bytes(),
            );
        }
    }
    let img = fx.dir.join("orphans.img");
    fs::write(&img, &bad).unwrap();
    let (code, out, err) = fsck(&["-y"], &img);
    assert_eq!(code, 1, "{out}{err}");
    assert_eq!(
        out.matches("Connect to /lost+found? yes").count(),
        FILES + 1,
        "{out}"
    );
    let (code, out, _) = fsck(&["-n"], &img);
    assert_eq!(code, 0, "{out}");
    let repaired = fs::read(&img).unwrap();
    let image = Image::open(repaired.as_slice()).unwrap();
    assert!(image.check().unwrap().problems.is_empty());
    let lf = image.inode(image.lookup(b"lost+found").unwrap()).unwrap();
    assert!(
        lf.size > (N_DIRECT as u64) * 512,
        "lost+found reaches its indirect block"
    );
    assert_eq!(lf.links, 3, "lost+found holds one directory");
    let entries = image.read_dir(&lf).unwrap();
    assert_eq!(entries.len(), 2 + FILES + 1);
    for e in entries.iter().filter(|e| e.name[0] == b'#') {
        assert_eq!(e.name, format!("#{}", e.ino).into_bytes());
    }
    let before = snapshot(&fx.bytes);
    assert_eq!(before.len(), FILES + 1);
    for (path, c) in before.iter().filter(|(p, _)| p.starts_with("/many/")) {
        let Content::File(data) = c else { continue };
        let found = entries
            .iter()
            .filter(|e| e.ino != many && e.name != b"." && e.name != b"..")
            .any(|e| {
                let inode = image.inode(e.ino).unwrap();
                image.read_file(&inode).unwrap() == *data
            });
        assert!(found, "{path} lost");
    }
}

/// Exit bits combine as fsck(8) says: with one problem repaired and one
/// that cannot be, -y exits 1 | 4 = 5, writes the repair, and a second
/// run has only the unrepairable problem left (4).
#[test]
fn exit_bits_combine() {
    let fx = fixture(1024);
    let mut bad = fx.bytes.clone();
    let mut fs_ = Fs(&mut bad);
    fs_.set_entry_type("/", "a", DT_REG);
    let off = fs_.inode_off(fs_.lookup("a/one.txt"));
    fs_.0[off + 5] ^= 0x01;
    let img = fx.dir.join("mixed.img");
    fs::write(&img, &bad).unwrap();
    assert_eq!(fsck(&["-n"], &img).0, 4);
    let (code, out, _) = fsck(&["-y"], &img);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("should be 4. Fix? yes"), "{out}");
    assert!(out.contains("bad inode checksum. Not fixed"), "{out}");
    let repaired = fs::read(&img).unwrap();
    assert_ne!(repaired, bad);
    let (code, out, _) = fsck(&["-y"], &img);
    assert_eq!(code, 4, "{out}");
    assert!(!out.contains("file type"), "{out}");
    assert_eq!(fs::read(&img).unwrap(), repaired);
}

/// -n and the default mode open the image read-only: they work on a file
/// the user may not write, which -y cannot open (as root, permissions do
/// not apply and only the first half holds).
#[test]
fn check_only_modes_open_read_only() {
    use std::os::unix::fs::PermissionsExt;
    let fx = fixture(1024);
    let img = fx.dir.join("ro.img");
    fs::write(&img, &fx.bytes).unwrap();
    fs::set_permissions(&img, fs::Permissions::from_mode(0o444)).unwrap();
    assert_eq!(fsck(&["-n"], &img).0, 0);
    assert_eq!(fsck(&[], &img).0, 0);
    if fs::OpenOptions::new().write(true).open(&img).is_err() {
        let (code, _, err) = fsck(&["-y"], &img);
        assert_eq!(code, 8, "{err}");
        assert!(err.contains("cannot open"), "{err}");
    }
}
