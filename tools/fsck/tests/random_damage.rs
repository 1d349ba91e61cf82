// SPDX-License-Identifier: GPL-2.0

//! Random damage: a few hundred images, each hit by one to three random
//! corruptions (most resealed with valid checksums, so that they reach
//! the semantic checks rather than stopping at a checksum), run through
//! fsck in-process.  Whatever the damage, fsck must not panic, `-n` must
//! not write, and `-y` must leave nothing it could still repair: a second
//! `-y` changes nothing, and when it reports a clean filesystem the
//! read-only checker agrees.  The generator is seeded, so a failure
//! reproduces.

use std::fs;
use std::path::{Path, PathBuf};

use rbfs_format::check::Image;
use rbfs_format::format::*;
use rbfs_fsck::{run, Mode, Options};
use rbfs_mkfs::{make_fs, MkfsOptions};

/// xorshift64*: deterministic and dependency free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

fn tree(root: &Path) {
    fs::create_dir_all(root.join("d1/d2/d3")).unwrap();
    fs::create_dir_all(root.join("e1")).unwrap();
    for i in 0..30 {
        let dir = ["", "d1", "d1/d2", "e1"][i % 4];
        let len = [0, 5, 700, 3000, 20000][i % 5];
        let data: Vec<u8> = (0..len).map(|j| (j * 7 + i) as u8 | 1).collect();
        fs::write(root.join(dir).join(format!("f{i}")), data).unwrap();
    }
    fs::hard_link(root.join("f0"), root.join("e1/link")).unwrap();
    std::os::unix::fs::symlink("f1", root.join("sl")).unwrap();
    std::os::unix::fs::symlink("z".repeat(100), root.join("long")).unwrap();
}

fn base_image(dir: &Path) -> Vec<u8> {
    let t = dir.join("tree");
    fs::create_dir_all(&t).unwrap();
    tree(&t);
    let mut dev = std::io::Cursor::new(Vec::new());
    let mut opts = MkfsOptions::new(512, 2048);
    opts.inodes = Some(64);
    opts.populate = Some(t);
    make_fs(&opts, &mut dev).unwrap();
    dev.into_inner()
}

fn sb_of(img: &[u8]) -> Superblock {
    Superblock::parse(&img[..SUPERBLOCK_SIZE]).unwrap()
}

/// One random corruption of a (so far valid) image.
fn damage(img: &mut [u8], base: &Superblock, rng: &mut Rng) {
    let l = base.layout;
    let bs = base.block_size();
    let data_block = |rng: &mut Rng| l.data_start + rng.below(u64::from(l.data_blocks)) as u32;
    match rng.below(8) {
        // An inode field, resealed.
        0 | 1 => {
            let ino = 1 + rng.below(40) as u32;
            let (blk, off) = base.inode_location(ino).unwrap();
            let at = blk as usize * bs + off;
            let Ok(Some(mut inode)) = Inode::parse(&img[at..at + INODE_SIZE], ino, base) else {
                return;
            };
            match rng.below(6) {
                0 => inode.links = rng.below(5) as u32,
                1 => inode.size = rng.below(40_000),
                2 => inode.map[rng.below(N_MAP as u64) as usize] = data_block(rng),
                3 => inode.map[rng.below(N_MAP as u64) as usize] = 0,
                4 => inode.blocks = rng.below(80),
                _ => {
                    inode.mode =
                        (inode.mode & 0o7777) | [S_IFREG, S_IFDIR, S_IFLNK][rng.below(3) as usize]
                }
            }
            let mut raw = [0u8; INODE_SIZE];
            inode.encode(ino, &mut raw);
            img[at..at + INODE_SIZE].copy_from_slice(&raw);
        }
        // A directory entry's inode number or type, resealed.
        2 | 3 => {
            let b = data_block(rng) as usize;
            let buf = &mut img[b * bs..(b + 1) * bs];
            if dir_verify(buf).is_err() {
                return;
            }
            let offs: Vec<usize> = [true, false]
                .iter()
                .find_map(|&first| {
                    let blk = DirBlock::parse(buf, first).ok()?;
                    let v: Vec<usize> = blk
                        .iter()
                        .filter_map(|e| e.ok())
                        .map(|e| e.offset)
                        .collect();
                    (!v.is_empty()).then_some(v)
                })
                .unwrap_or_default();
            if offs.is_empty() {
                return;
            }
            let off = offs[rng.below(offs.len() as u64) as usize];
            if rng.below(2) == 0 {
                let ino = rng.below(u64::from(l.inodes_count) + 3) as u32;
                buf[off..off + 4].copy_from_slice(&ino.to_le_bytes());
            } else {
                buf[off + 7] = [DT_REG, DT_DIR, DT_LNK, DT_FIFO][rng.below(4) as usize];
            }
            dir_seal(buf).unwrap();
        }
        // A bitmap bit, resealed.
        4 => {
            let (start, count, total) = if rng.below(2) == 0 {
                (l.bbitmap_start, l.bbitmap_blocks, l.blocks_count)
            } else {
                (l.ibitmap_start, l.ibitmap_blocks, l.inodes_count)
            };
            let item = rng.below(u64::from(total)) as u32;
            let bpb = bitmap_bits_per_block(l.block_log);
            let k = (item / bpb).min(count - 1);
            let b = (start + k) as usize;
            let buf = &mut img[b * bs..(b + 1) * bs];
            if bitmap_test(buf, item % bpb) {
                bitmap_clear(buf, item % bpb).unwrap();
            } else {
                bitmap_set(buf, item % bpb).unwrap();
            }
            bitmap_seal(buf).unwrap();
        }
        // A pointer in an indirect block, resealed.
        5 => {
            let b = data_block(rng) as usize;
            let buf = &mut img[b * bs..(b + 1) * bs];
            if IndirectBlock::parse(buf, base).is_err() || buf[..bs - 4].iter().all(|&x| x == 0) {
                return;
            }
            let i = rng.below((bs / 4 - 1) as u64) as usize;
            let p = if rng.below(2) == 0 {
                0
            } else {
                data_block(rng)
            };
            indirect_set(buf, i, p).unwrap();
            indirect_seal(buf).unwrap();
        }
        // Superblock counts or state, resealed.
        6 => {
            let mut sb = sb_of(img);
            match rng.below(3) {
                0 => sb.free_blocks = rng.below(u64::from(l.data_blocks) + 1) as u32,
                1 => sb.free_inodes = rng.below(u64::from(l.inodes_count)) as u32,
                _ => sb.state = STATE_DIRTY,
            }
            let mut raw = [0u8; SUPERBLOCK_SIZE];
            sb.encode(&mut raw);
            img[..SUPERBLOCK_SIZE].copy_from_slice(&raw);
        }
        // A raw bit flip in metadata or a directory block: checksums.
        _ => {
            let b = 1 + rng.below(u64::from(l.data_start) + 60) as usize;
            let at = b * bs + rng.below(bs as u64) as usize;
            img[at] ^= 1 << rng.below(8);
        }
    }
}

fn fsck(path: &Path, mode: Mode) -> (i32, String) {
    let opts = Options {
        mode,
        force: false,
        verbose: false,
        device: path.to_path_buf(),
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = run(&opts, &mut out, &mut err);
    let text = String::from_utf8_lossy(&out).into_owned() + &String::from_utf8_lossy(&err);
    (code, text)
}

#[test]
fn random_damage_never_breaks_fsck() {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("rbfs-fsck-random-{}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let base = base_image(&dir);
    let sb = sb_of(&base);
    let path = dir.join("img");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut fixed, mut left) = (0, 0);
    for iter in 0..300 {
        let mut img = base.clone();
        for _ in 0..1 + rng.below(3) {
            damage(&mut img, &sb, &mut rng);
        }
        fs::write(&path, &img).unwrap();
        let (code, out) = fsck(&path, Mode::No);
        assert!(matches!(code, 0 | 4), "iter {iter}: -n exit {code}\n{out}");
        assert!(fs::read(&path).unwrap() == img, "iter {iter}: -n wrote");

        let (first, out1) = fsck(&path, Mode::Yes);
        assert!(
            matches!(first, 0 | 1 | 4 | 5),
            "iter {iter}: -y exit {first}\n{out1}"
        );
        let after = fs::read(&path).unwrap();
        let (second, out2) = fsck(&path, Mode::Yes);
        assert!(
            fs::read(&path).unwrap() == after,
            "iter {iter}: second -y wrote (first exit {first})\nfirst:\n{out1}\nsecond:\n{out2}"
        );
        match first {
            0 | 1 => {
                assert_eq!(
                    second, 0,
                    "iter {iter}: not clean after repair\nfirst:\n{out1}\nsecond:\n{out2}"
                );
                let report = Image::open(after.as_slice()).unwrap().check().unwrap();
                assert!(
                    report.problems.is_empty(),
                    "iter {iter}: {:?}\n{out1}",
                    report.problems
                );
                fixed += usize::from(first == 1);
            }
            _ => {
                assert_eq!(second, 4, "iter {iter}\nfirst:\n{out1}\nsecond:\n{out2}");
                left += 1;
            }
        }
    }
    // The mix exercises both outcomes.
    assert!(fixed > 50 && left > 20, "fixed {fixed}, left {left}");
    let _ = fs::remove_dir_all(&dir);
}
