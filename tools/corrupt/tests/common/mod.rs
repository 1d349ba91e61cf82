// SPDX-License-Identifier: GPL-2.0

//! Images the tests damage: mkfs.rbfs (as a library) populated from
//! generated host trees.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use rbfs_format::format::N_DIRECT;
use rbfs_mkfs::{make_fs, MkfsOptions};

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p =
            std::env::temp_dir().join(format!("rbfs-corrupt-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Deterministic bytes with no zero byte, so no block is a hole.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (((i as u32).wrapping_mul(2_654_435_761) >> 24) as u8 ^ seed) | 1)
        .collect()
}

fn common_tree(root: &Path, bs: usize) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::write(root.join("a/one.txt"), b"one\n").unwrap();
    fs::write(root.join("a/b/two.bin"), pattern(bs + 7, 2)).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::hard_link(root.join("a/one.txt"), root.join("hardlink")).unwrap();
    fs::hard_link(root.join("a/one.txt"), root.join("a/b/hardlink2")).unwrap();
    std::os::unix::fs::symlink("a/one.txt", root.join("short-link")).unwrap();
    std::os::unix::fs::symlink("x/".repeat(40), root.join("long-link")).unwrap();
    let _ = Command::new("mkfifo").arg(root.join("fifo")).status();
}

/// Tree A (1 KiB blocks): nested directories, a file through a single
/// indirect block, a sparse file, hard links, both kinds of symlink, a
/// FIFO, and a directory of two blocks.
pub fn tree_a(root: &Path) {
    let bs = 1024;
    common_tree(root, bs);
    fs::write(root.join("big.bin"), pattern((N_DIRECT + 6) * bs + 11, 7)).unwrap();
    let f = fs::File::create(root.join("sparse")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    f.write_all_at(b"tail", 40 * bs as u64).unwrap();
    let wide = root.join("wide");
    fs::create_dir(&wide).unwrap();
    for i in 0..8 {
        let name = format!("{i}-{}", "w".repeat(190));
        fs::write(wide.join(name), [b'0' + i as u8]).unwrap();
    }
}

/// Tree B (512-byte blocks): deeper directories, a file through a double
/// indirect block, a sparse file reaching the triple indirect tree, and a
/// directory of three blocks.
pub fn tree_b(root: &Path) {
    let bs = 512;
    common_tree(root, bs);
    fs::create_dir_all(root.join("d1/d2/d3")).unwrap();
    fs::write(root.join("d1/d2/d3/deep"), b"deep").unwrap();
    let ptrs = bs / 4 - 1;
    fs::write(root.join("big.bin"), pattern((N_DIRECT + ptrs + 3) * bs + 5, 9)).unwrap();
    let f = fs::File::create(root.join("sparse3")).unwrap();
    use std::os::unix::fs::FileExt;
    f.write_all_at(b"head", 0).unwrap();
    let triple = (N_DIRECT + ptrs + ptrs * ptrs + 2) * bs;
    f.write_all_at(b"tail", triple as u64).unwrap();
    let wide = root.join("d1/wide");
    fs::create_dir(&wide).unwrap();
    for i in 0..10 {
        let name = format!("{i}-{}", "v".repeat(100));
        fs::write(wide.join(name), b"").unwrap();
    }
}

/// An image of `blocks` blocks of `bs` bytes with `inodes` inodes,
/// populated by `make`.
pub fn image(bs: u32, blocks: u64, inodes: u64, make: fn(&Path)) -> Vec<u8> {
    let tmp = TempDir::new("tree");
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    make(&tree);
    let mut dev = std::io::Cursor::new(Vec::new());
    let mut opts = MkfsOptions::new(bs, blocks);
    opts.inodes = Some(inodes);
    opts.populate = Some(tree);
    opts.now = rbfs_format::format::Timestamp {
        sec: 1_700_000_000,
        nsec: 0,
    };
    make_fs(&opts, &mut dev).unwrap();
    dev.into_inner()
}

pub fn image_a() -> Vec<u8> {
    image(1024, 2048, 64, tree_a)
}

pub fn image_b() -> Vec<u8> {
    image(512, 4096, 64, tree_b)
}
