// SPDX-License-Identifier: GPL-2.0

//! mkfs tests: build images for every block size, populated from a
//! generated host tree, and check them read-only with the shared format
//! module's parsers (through `rbfs_format::check`), never with mkfs's own
//! writers.

use std::collections::BTreeSet;
use std::fs;
use std::io::{Cursor, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use rbfs_format::check::{CheckError, Image};
use rbfs_format::*;
use rbfs_mkfs::{make_fs, MkfsOptions};

/// A temporary directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = std::env::temp_dir().join(format!("rbfs-mkfs-{tag}-{}-{n}", std::process::id()));
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

/// Deterministic non-zero bytes so no data block looks like a hole.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
        .map(|b| b ^ seed)
        .map(|b| b | 1)
        .collect()
}

/// Builds the host tree the populate tests copy, sized for `bs`.
fn make_tree(root: &Path, bs: usize) {
    let ptrs = bs / 4 - 1;
    fs::create_dir_all(root.join("a/b/c/d")).unwrap();
    fs::write(root.join("a/one.txt"), b"one\n").unwrap();
    fs::write(root.join("a/b/two.txt"), pattern(bs + 1, 2)).unwrap();
    fs::write(root.join("a/b/c/d/deep"), b"deep").unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    // Past the direct and single-indirect reach: needs a double indirect.
    let big = (N_DIRECT + ptrs + 3) * bs + 123;
    fs::write(root.join("big.bin"), pattern(big, 7)).unwrap();
    // Sparse: data in the first block, in the double-indirect range and at
    // the end, holes between; for 512-byte blocks the end is in the triple
    // indirect range.
    let f = fs::File::create(root.join("sparse.bin")).unwrap();
    f.set_len(10 << 20).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(&pattern(bs, 3), ((N_DIRECT + ptrs + 5) * bs) as u64)
        .unwrap();
    f.write_all_at(b"tail", (10 << 20) - 4).unwrap();
    // A file whose last blocks are a hole.
    let f = fs::File::create(root.join("trailing-hole")).unwrap();
    f.write_all_at(b"x", 0).unwrap();
    f.set_len(5 * bs as u64).unwrap();
    fs::write(root.join("zeros"), vec![0u8; 3 * bs]).unwrap();
    std::os::unix::fs::symlink("a/one.txt", root.join("short-link")).unwrap();
    let long_target = "t/".repeat(40) + "target";
    std::os::unix::fs::symlink(&long_target, root.join("long-link")).unwrap();
    fs::hard_link(root.join("a/one.txt"), root.join("hardlink")).unwrap();
    fs::hard_link(root.join("a/one.txt"), root.join("a/b/hardlink2")).unwrap();
    let many = root.join("many");
    fs::create_dir(&many).unwrap();
    for i in 0..500 {
        fs::write(
            many.join(format!("entry-{i:04}-{}", "x".repeat(i % 20))),
            format!("{i}"),
        )
        .unwrap();
    }
    let long_name = "n".repeat(NAME_MAX);
    fs::write(root.join(&long_name), b"long name").unwrap();
    let exec = root.join("a/exec.sh");
    fs::write(&exec, b"#!/bin/sh\n").unwrap();
    fs::set_permissions(&exec, fs::Permissions::from_mode(0o4751)).unwrap();
    let _ = std::os::unix::net::UnixListener::bind(root.join("sock"));
    let _ = Command::new("mkfifo").arg(root.join("fifo")).status();
    // Device nodes need privileges; without them the tree simply has none.
    let _ = Command::new("mknod")
        .arg(root.join("chr"))
        .args(["c", "1", "3"])
        .status();
    let _ = Command::new("mknod")
        .arg(root.join("blk"))
        .args(["b", "259", "300000"])
        .status();
}

/// Walks the host tree and checks every path against the image.
fn compare_tree<R: check::ImageRead + ?Sized>(img: &Image<'_, R>, host: &Path, rel: &Path) {
    let dir_ino = img.lookup(rel.as_os_str().as_bytes()).unwrap();
    let dir = img.inode(dir_ino).unwrap();
    let listed: BTreeSet<Vec<u8>> = img
        .read_dir(&dir)
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    let mut want: BTreeSet<Vec<u8>> = fs::read_dir(host.join(rel))
        .unwrap()
        .map(|e| e.unwrap().file_name().as_bytes().to_vec())
        .collect();
    want.insert(b".".to_vec());
    want.insert(b"..".to_vec());
    assert_eq!(listed, want, "entries of /{}", rel.display());
    for name in want.iter().filter(|n| *n != b"." && *n != b"..") {
        let name = std::ffi::OsStr::from_bytes(name);
        let path = rel.join(name);
        let hp = host.join(&path);
        let meta = fs::symlink_metadata(&hp).unwrap();
        let ino = img.lookup(path.as_os_str().as_bytes()).unwrap();
        let inode = img.inode(ino).unwrap();
        let what = path.display().to_string();
        assert_eq!(u32::from(inode.mode), meta.mode(), "{what}: mode");
        assert_eq!(inode.uid, meta.uid(), "{what}: uid");
        assert_eq!(inode.gid, meta.gid(), "{what}: gid");
        assert_eq!(inode.mtime.sec, meta.mtime(), "{what}: mtime");
        assert_eq!(
            i64::from(inode.mtime.nsec),
            meta.mtime_nsec(),
            "{what}: mtime nsec"
        );
        if meta.is_dir() {
            compare_tree(img, host, &path);
            continue;
        }
        assert_eq!(
            inode.size,
            if meta.is_file() || meta.is_symlink() {
                meta.len()
            } else {
                0
            },
            "{what}: size"
        );
        if meta.is_file() {
            assert_eq!(
                img.read_file(&inode).unwrap(),
                fs::read(&hp).unwrap(),
                "{what}: contents"
            );
            assert_eq!(u64::from(inode.links), meta.nlink(), "{what}: links");
        } else if meta.file_type().is_char_device() || meta.file_type().is_block_device() {
            let rdev = meta.rdev();
            let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
            let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
            assert_eq!(
                (u64::from(inode.rdev_major), u64::from(inode.rdev_minor)),
                (major, minor),
                "{what}: rdev"
            );
        } else if meta.is_symlink() {
            let target = fs::read_link(&hp).unwrap();
            assert_eq!(
                img.read_link(&inode).unwrap(),
                target.as_os_str().as_bytes(),
                "{what}: target"
            );
        }
    }
}

fn build_populated(bs: u32, blocks: u64) -> (TempDir, PathBuf, rbfs_mkfs::MkfsSummary) {
    let tmp = TempDir::new(&format!("pop{bs}"));
    let tree = tmp.0.join("tree");
    fs::create_dir(&tree).unwrap();
    make_tree(&tree, bs as usize);
    let image = tmp.0.join("image");
    let mut f = fs::File::create(&image).unwrap();
    let mut opts = MkfsOptions::new(bs, blocks);
    opts.populate = Some(tree.clone());
    opts.label = b"populated".to_vec();
    opts.uuid = [0xab; 16];
    let summary = make_fs(&opts, &mut f).unwrap();
    f.sync_all().unwrap();
    (tmp, image, summary)
}

fn populated_image_checks(bs: u32) {
    let (tmp, image, summary) = build_populated(bs, (64 << 20) / u64::from(bs));
    let tree = tmp.0.join("tree");
    let file = fs::File::open(&image).unwrap();
    let img = Image::open(&file).unwrap();
    assert_eq!(img.block_size(), bs as usize);
    assert_eq!(&img.sb.label[..9], b"populated");
    assert_eq!(img.sb.uuid, [0xab; 16]);
    let report = img.check().unwrap();
    assert!(
        report.problems.is_empty(),
        "problems: {:#?}",
        report.problems
    );
    assert_eq!(report.used_blocks, u64::from(summary.used_blocks));
    assert_eq!(report.used_inodes, summary.used_inodes);
    assert_eq!(report.dirs, summary.dirs);
    assert_eq!(report.files, summary.files);
    assert_eq!(report.symlinks, 2);
    assert_eq!(summary.hard_links, 2);
    compare_tree(&img, &tree, Path::new(""));

    // Every inode has a generation number, none the same (crc32c of the
    // UUID and the number: fixed for this UUID).
    let gens: std::collections::BTreeSet<u32> = (1..=summary.used_inodes)
        .map(|ino| img.inode(ino).unwrap().generation)
        .collect();
    assert_eq!(gens.len() as u32, summary.used_inodes, "generations repeat");
    assert!(!gens.contains(&0), "an inode has generation 0");

    // Root attributes come from the host directory.
    let root = img.inode(ROOT_INO).unwrap();
    assert_eq!(u32::from(root.mode), fs::metadata(&tree).unwrap().mode());

    // Hard links share one inode with a link count of 3.
    let a = img.lookup(b"a/one.txt").unwrap();
    assert_eq!(img.lookup(b"hardlink").unwrap(), a);
    assert_eq!(img.lookup(b"a/b/hardlink2").unwrap(), a);
    assert_eq!(img.inode(a).unwrap().links, 3);

    // Holes stay holes: sparse files use few blocks.
    let bsz = u64::from(bs);
    let sparse = img.inode(img.lookup(b"sparse.bin").unwrap()).unwrap();
    assert!(
        sparse.blocks * 512 < 10 * bsz,
        "sparse.bin uses {} sectors",
        sparse.blocks
    );
    let zeros = img.inode(img.lookup(b"zeros").unwrap()).unwrap();
    assert_eq!((zeros.size, zeros.blocks), (3 * bsz, 0));
    let trailing = img.inode(img.lookup(b"trailing-hole").unwrap()).unwrap();
    assert_eq!(trailing.blocks * 512, bsz);

    // The big file reaches the double-indirect tree.
    let big = img.inode(img.lookup(b"big.bin").unwrap()).unwrap();
    assert_ne!(
        big.map[N_DIRECT + 1],
        0,
        "big.bin has a double-indirect root"
    );
    if bs == 512 {
        assert_ne!(
            sparse.map[N_DIRECT + 2],
            0,
            "sparse.bin reaches the triple-indirect tree"
        );
    }

    // Symlinks: short ones inline, long ones in a block.
    let short = img.inode(img.lookup(b"short-link").unwrap()).unwrap();
    assert!(short.is_fast_symlink() && short.blocks == 0);
    let long = img.inode(img.lookup(b"long-link").unwrap()).unwrap();
    assert!(!long.is_fast_symlink() && long.blocks * 512 == bsz);

    // 500 entries spread over several directory blocks, readdir positions
    // strictly increasing.
    let many = img.inode(img.lookup(b"many").unwrap()).unwrap();
    assert!(many.size > bsz);
    let entries = img.read_dir(&many).unwrap();
    assert_eq!(entries.len(), 502);
    assert!(entries.windows(2).all(|w| w[0].pos < w[1].pos));
    assert_eq!(entries[0].name, b".");
    assert_eq!(entries[1].name, b"..");
    assert_eq!(entries[1].ino, ROOT_INO);

    let long_name = "n".repeat(NAME_MAX);
    let ln = img
        .inode(img.lookup(long_name.as_bytes()).unwrap())
        .unwrap();
    assert_eq!(img.read_file(&ln).unwrap(), b"long name");
}

#[test]
fn populated_image_512() {
    populated_image_checks(512);
}

#[test]
fn populated_image_1024() {
    populated_image_checks(1024);
}

#[test]
fn populated_image_2048() {
    populated_image_checks(2048);
}

#[test]
fn populated_image_4096() {
    populated_image_checks(4096);
}

/// A sparse file with data at the start of every level of the block map,
/// up into the quadruple-indirect tree (past 1 GiB with 512-byte blocks).
#[test]
fn quadruple_indirect_sparse_file() {
    let tmp = TempDir::new("quad");
    let tree = tmp.0.join("tree");
    fs::create_dir(&tree).unwrap();
    let log = 9;
    // First file block of each depth: 0 (direct), then 12 + P + ... .
    let starts: Vec<u64> = (0..=N_LEVELS)
        .map(|d| {
            if d == 0 {
                0
            } else {
                N_DIRECT as u64 + (1..d).map(|k| blocks_at_depth(log, k)).sum::<u64>()
            }
        })
        .collect();
    let f = fs::File::create(tree.join("quad")).unwrap();
    use std::os::unix::fs::FileExt;
    let mut offsets = Vec::new();
    for (d, &start) in starts.iter().enumerate() {
        assert_eq!(block_path(log, start).unwrap().depth, d);
        offsets.push(start * 512 + 7);
    }
    for (k, &off) in offsets.iter().enumerate() {
        f.write_all_at(format!("level-{k}").as_bytes(), off)
            .unwrap();
    }
    let size = offsets.last().unwrap() + 4096;
    f.set_len(size).unwrap();
    drop(f);
    let image = tmp.0.join("image");
    let mut out = fs::File::create(&image).unwrap();
    let mut opts = MkfsOptions::new(512, 8192);
    opts.populate = Some(tree);
    make_fs(&opts, &mut out).unwrap();
    let file = fs::File::open(&image).unwrap();
    let img = Image::open(&file).unwrap();
    let report = img.check().unwrap();
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    let inode = img.inode(img.lookup(b"quad").unwrap()).unwrap();
    assert_eq!(inode.size, size);
    assert!(
        inode.map[N_DIRECT..].iter().all(|&p| p != 0),
        "every indirect level used"
    );
    // data blocks + 1 single + (1+1) double + (1+1+1) triple + 4 quad
    assert_eq!(inode.blocks, offsets.len() as u64 + 1 + 2 + 3 + 4);
    for (k, &off) in offsets.iter().enumerate() {
        let index = off / 512;
        let ptr = img.map_block(&inode, index).unwrap();
        assert_ne!(ptr, 0, "level {k}");
        let data = img.read_block(ptr).unwrap();
        let want = format!("level-{k}");
        let at = (off % 512) as usize;
        assert_eq!(&data[at..at + want.len()], want.as_bytes());
    }
    assert_eq!(img.map_block(&inode, 5).unwrap(), 0, "holes read as 0");
}

#[test]
fn empty_images_every_block_size_in_memory() {
    for bs in [512u32, 1024, 2048, 4096] {
        for blocks in [min_for(bs), 1000, 20_000] {
            let mut dev = Cursor::new(Vec::new());
            let opts = MkfsOptions::new(bs, blocks);
            let s = make_fs(&opts, &mut dev).unwrap();
            let raw = dev.into_inner();
            assert_eq!(
                raw.len() as u64,
                blocks * u64::from(bs),
                "image is grown to the full size"
            );
            // Block 0 past the superblock is zero.
            assert!(raw[SUPERBLOCK_SIZE..bs as usize].iter().all(|&b| b == 0));
            let img = Image::open(raw.as_slice()).unwrap();
            let report = img.check().unwrap();
            assert!(
                report.problems.is_empty(),
                "bs {bs} blocks {blocks}: {:#?}",
                report.problems
            );
            assert_eq!((report.dirs, report.used_inodes), (1, 1));
            assert_eq!(
                u64::from(img.sb.free_blocks),
                blocks - u64::from(s.used_blocks)
            );
            assert_eq!(img.sb.free_inodes, img.sb.layout.inodes_count - 1);
            assert_eq!(img.sb.state, STATE_CLEAN);
            let root = img.inode(ROOT_INO).unwrap();
            assert_eq!(
                (root.mode, root.links, root.size),
                (S_IFDIR | 0o755, 2, u64::from(bs))
            );
            let entries = img.read_dir(&root).unwrap();
            assert_eq!(entries.len(), 2);
            assert!(entries.iter().all(|e| e.ino == ROOT_INO));
        }
    }
}

fn min_for(bs: u32) -> u64 {
    rbfs_mkfs::min_blocks(bs.trailing_zeros(), rbfs_mkfs::MIN_DEFAULT_INODES)
}

#[test]
fn default_inode_count_and_geometry() {
    let l = rbfs_mkfs::plan_layout(1024, 65_536, None).unwrap();
    assert_eq!(l.inodes_count, 8192);
    let l = rbfs_mkfs::plan_layout(4096, 5000, Some(100)).unwrap();
    assert_eq!(
        l.inodes_count, 112,
        "rounded up to whole inode table blocks"
    );
    let l = rbfs_mkfs::plan_layout(512, 100, None).unwrap();
    assert_eq!(l.inodes_count, 16);
    for (bs, blocks, inodes, msg) in [
        (1000, 1000, None, "invalid block size"),
        (1024, 3, None, "device too small"),
        (1024, 1024, Some(100_000), "too many inodes"),
        (1024, 1 << 33, None, "filesystem too large"),
        (1024, 1024, Some(0), "at least 1"),
    ] {
        let e = rbfs_mkfs::plan_layout(bs, blocks, inodes)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{e}");
    }
}

#[test]
fn damaged_images_are_rejected() {
    let mut dev = Cursor::new(Vec::new());
    make_fs(&MkfsOptions::new(1024, 2048), &mut dev).unwrap();
    let good = dev.into_inner();

    let mut bad = good.clone();
    bad[100] ^= 0x10;
    assert_eq!(
        Superblock::parse(&bad),
        Err(FormatError::BadChecksum(Structure::Superblock))
    );
    let err = Image::open(bad.as_slice()).err().unwrap();
    assert_eq!(
        err.format_error(),
        Some(FormatError::BadChecksum(Structure::Superblock))
    );

    let zero = vec![0u8; good.len()];
    assert_eq!(Superblock::parse(&zero), Err(FormatError::BadMagic));
    assert_eq!(
        Image::open(zero.as_slice()).err().unwrap().format_error(),
        Some(FormatError::BadMagic)
    );

    // Truncated image: the superblock says more blocks than there are.
    let short = &good[..good.len() - 1];
    assert!(matches!(
        Image::open(short).err().unwrap(),
        CheckError::Format { .. }
    ));

    let img = Image::open(good.as_slice()).unwrap();
    let sb = img.sb;
    let bs = sb.block_size();

    // The root inode damaged: the walk fails with a bad inode checksum.
    let mut bad = good.clone();
    let (blk, off) = sb.inode_location(ROOT_INO).unwrap();
    bad[blk as usize * bs + off + 20] ^= 1;
    let err = Image::open(bad.as_slice()).unwrap().check().err().unwrap();
    assert_eq!(
        err.format_error(),
        Some(FormatError::BadChecksum(Structure::Inode))
    );

    // A block-bitmap bit cleared (with a valid checksum) is reported.
    let mut bad = good.clone();
    let b0 = sb.layout.bbitmap_start as usize * bs;
    bitmap_clear(&mut bad[b0..b0 + bs], 3).unwrap();
    bitmap_seal(&mut bad[b0..b0 + bs]).unwrap();
    let report = Image::open(bad.as_slice()).unwrap().check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("block 3 in use but free")),
        "{:?}",
        report.problems
    );
    assert!(
        report.problems.iter().any(|p| p.contains("free blocks")),
        "{:?}",
        report.problems
    );

    // An extra inode bit set is reported as well.
    let mut bad = good.clone();
    let i0 = sb.layout.ibitmap_start as usize * bs;
    bitmap_set(&mut bad[i0..i0 + bs], 5).unwrap();
    bitmap_seal(&mut bad[i0..i0 + bs]).unwrap();
    let report = Image::open(bad.as_slice()).unwrap().check().unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("inode 6 free but marked")),
        "{:?}",
        report.problems
    );

    // The root directory block damaged.
    let root = img.inode(ROOT_INO).unwrap();
    let mut bad = good.clone();
    bad[root.map[0] as usize * bs + 1] ^= 0x40;
    let err = Image::open(bad.as_slice()).unwrap().check().err().unwrap();
    assert_eq!(
        err.format_error(),
        Some(FormatError::BadChecksum(Structure::DirBlock))
    );
}

fn mkfs_bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mkfs-rbfs"))
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn binary_formats_each_block_size_and_refuses_signatures() {
    let tmp = TempDir::new("bin");
    for bs in ["512", "1024", "2048", "4k"] {
        let img = tmp.0.join(format!("img{bs}"));
        let (code, out, err) = run(mkfs_bin()
            .arg("-b")
            .arg(bs)
            .arg("-L")
            .arg("lbl")
            .arg(&img)
            .arg("8M"));
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("Creating rbfs filesystem"), "{out}");
        let data = fs::read(&img).unwrap();
        assert_eq!(data.len(), 8 << 20);
        let image = Image::open(data.as_slice()).unwrap();
        assert_eq!(
            image.block_size(),
            if bs == "4k" {
                4096
            } else {
                bs.parse().unwrap()
            }
        );
        assert_eq!(&image.sb.label[..4], b"lbl\0");
        assert_eq!(image.sb.uuid[6] >> 4, 4, "random UUIDs are version 4");
        assert!(image.check().unwrap().problems.is_empty());
        // Again without -f: refused, naming what was found.
        let (code, _, err) = run(mkfs_bin().arg("-q").arg(&img));
        assert_eq!(code, 1);
        assert!(
            err.starts_with("mkfs.rbfs: ") && err.contains("an rbfs filesystem"),
            "{err}"
        );
        let (code, out, err) = run(mkfs_bin()
            .args(["-fq", "-U", "01234567-89ab-cdef-0123-456789abcdef"])
            .arg(&img));
        assert_eq!((code, out.as_str()), (0, ""), "{err}");
        let data = fs::read(&img).unwrap();
        let image = Image::open(data.as_slice()).unwrap();
        assert_eq!(image.sb.uuid[..4], [0x01, 0x23, 0x45, 0x67]);
    }

    let ext = tmp.0.join("ext");
    let mut f = fs::File::create(&ext).unwrap();
    let mut data = vec![0u8; 1 << 20];
    data[1080..1082].copy_from_slice(&0xEF53u16.to_le_bytes());
    f.write_all(&data).unwrap();
    let (code, _, err) = run(mkfs_bin().arg(&ext));
    assert_eq!(code, 1);
    assert!(err.contains("ext2/ext3/ext4"), "{err}");
    let mut swap = vec![0u8; 1 << 20];
    swap[4086..4096].copy_from_slice(b"SWAPSPACE2");
    fs::write(&ext, &swap).unwrap();
    let (_, _, err) = run(mkfs_bin().arg(&ext));
    assert!(err.contains("swap"), "{err}");
    let (code, _, _) = run(mkfs_bin().arg("-f").arg("-q").arg(&ext));
    assert_eq!(code, 0);
    // The signatures fstests' generic/740 makes (mkfs.bfs, mkfs.cramfs,
    // mkfs.minix), and others blkid knows, are refused as well.
    let sigs: &[(usize, &[u8], &str)] = &[
        (0, &0x1BAD_FACEu32.to_le_bytes(), "BFS"),
        (512, &0x28CD_3D45u32.to_le_bytes(), "cramfs"),
        (1040, &0x138Fu16.to_le_bytes(), "Minix"),
        (1048, &0x4D5Au16.to_le_bytes(), "Minix"),
        (3, b"NTFS    ", "NTFS"),
        (32769, b"CD001", "ISO 9660"),
        (0, b"LUKS\xba\xbe", "LUKS"),
        (512, b"LABELONE", "LVM"),
    ];
    for (off, sig, name) in sigs {
        let mut img = vec![0u8; 1 << 20];
        img[*off..off + sig.len()].copy_from_slice(sig);
        fs::write(&ext, &img).unwrap();
        let (code, _, err) = run(mkfs_bin().arg(&ext));
        assert_eq!(code, 1, "{name}: {err}");
        assert!(err.contains(name), "{name}: {err}");
        assert_eq!(fs::read(&ext).unwrap(), img, "{name}: image changed");
    }
}

#[test]
fn binary_reports_errors() {
    let tmp = TempDir::new("errs");
    let img = tmp.0.join("img");
    let cases: &[(&[&str], &str)] = &[
        (&["-b", "3000"], "invalid block size"),
        (&["-N", "999999"], "too many inodes"),
        (
            &["-L", "0123456789abcdef0123456789abcdefX"],
            "label too long",
        ),
        (&["-U", "not-a-uuid"], "invalid UUID"),
        (&["-x"], "unknown option"),
    ];
    for (args, msg) in cases {
        let (code, _, err) = run(mkfs_bin().args(*args).arg(&img).arg("1M"));
        assert_eq!(code, 1, "{args:?}");
        assert!(
            err.starts_with("mkfs.rbfs: ") && err.contains(msg),
            "{args:?}: {err}"
        );
    }
    let (code, _, err) = run(mkfs_bin().arg(&img).arg("4"));
    assert_eq!(code, 1);
    assert!(
        err.contains("device too small") && err.contains("at least"),
        "{err}"
    );
    let (code, _, err) = run(mkfs_bin().arg(tmp.0.join("missing")));
    assert_eq!(code, 1);
    assert!(err.contains("no such file"), "{err}");
    let (code, _, err) = run(&mut mkfs_bin());
    assert_eq!(code, 1);
    assert!(err.contains("Usage"), "{err}");
}

#[test]
fn binary_populates_from_directory() {
    let tmp = TempDir::new("bin-d");
    let tree = tmp.0.join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/file"), b"hello").unwrap();
    let img = tmp.0.join("img");
    let (code, out, err) = run(mkfs_bin()
        .arg("-b")
        .arg("512")
        .arg("-d")
        .arg(&tree)
        .arg(&img)
        .arg("2M"));
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("1 files, 2 directories"), "{out}");
    let data = fs::read(&img).unwrap();
    let image = Image::open(data.as_slice()).unwrap();
    assert!(image.check().unwrap().problems.is_empty());
    let f = image.inode(image.lookup(b"sub/file").unwrap()).unwrap();
    assert_eq!(image.read_file(&f).unwrap(), b"hello");
    // A tree that needs more inodes than the filesystem has.
    let (code, _, err) = run(mkfs_bin()
        .args(["-f", "-b", "512", "-N", "2", "-d"])
        .arg(&tree)
        .arg(&img));
    assert_eq!(code, 1);
    assert!(err.contains("not enough inodes"), "{err}");
}

#[test]
fn one_gib_image_formats_quickly() {
    let tmp = TempDir::new("gib");
    let img = tmp.0.join("img");
    let start = std::time::Instant::now();
    let (code, _, err) = run(mkfs_bin().arg("-q").arg(&img).arg("1G"));
    let took = start.elapsed();
    assert_eq!(code, 0, "{err}");
    assert!(took.as_secs_f64() < 5.0, "took {took:?}");
    let f = fs::File::open(&img).unwrap();
    let image = Image::open(&f).unwrap();
    assert_eq!(image.sb.layout.blocks_count, 1 << 20);
    // Only metadata was written: the file stays sparse.
    let used = fs::metadata(&img).unwrap().blocks() * 512;
    assert!(used < 64 << 20, "{used} bytes allocated");
}
