// SPDX-License-Identifier: GPL-2.0

//! The `rbfs-corrupt` binary: the listing, applying a mutation with and
//! without `--keep-crc` (checked with the shared format module's
//! parsers), random flips, the corpus and `do`, and the errors.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use rbfs_format::check::Image;
use rbfs_format::format::*;

fn bin(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rbfs-corrupt"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The raw 256 bytes of inode `ino`.
fn raw_inode(img: &[u8], ino: u32) -> Vec<u8> {
    let sb = Superblock::parse(&img[..SUPERBLOCK_SIZE]).unwrap();
    let (b, off) = sb.inode_location(ino).unwrap();
    let at = b as usize * sb.block_size() + off;
    img[at..at + INODE_SIZE].to_vec()
}

fn ids(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .collect()
}

#[test]
fn list_covers_every_kind_of_damage() {
    let tmp = common::TempDir::new("list");
    for (name, img) in [("bs1024", common::image_a()), ("bs512", common::image_b())] {
        let p = tmp.path().join(format!("{name}.img"));
        fs::write(&p, &img).unwrap();
        let (code, out, err) = bin(&["list", s(&p)]);
        assert_eq!(code, 0, "{err}");
        for line in out.lines() {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "{line}");
            assert!(
                ["detect", "fatal", "harmless", "unknown"].contains(&cols[1]),
                "{line}"
            );
            assert!(["fix", "nofix", "none", "maybe"].contains(&cols[2]), "{line}");
        }
        let ids = ids(&out);
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "ids are not unique");
        println!("{name}: {} catalogue entries", ids.len());
        // What the catalogue must cover (a regex-free shape match: the
        // id starts and ends as given).
        let must = [
            ("sb.magic", ""),
            ("sb.free_blocks", ""),
            ("sb.data_blocks", ""),
            ("sb.crc", ""),
            ("bbitmap.0.", "used"),
            ("bbitmap.", "padding"),
            ("ibitmap.0.", "free"),
            ("inode.1.", "mode"),
            ("inode.", ".links"),
            ("inode.", ".size.huge"),
            ("inode.", ".blocks"),
            ("inode.", ".map.0"),
            ("inode.", ".map.12"),
            ("inode.", ".map.0.meta"),
            ("inode.", ".map.0.shared"),
            ("inode.", ".map.selfind"),
            ("inode.", ".map.past"),
            ("inode.", ".orphan"),
            ("ind.", ".0"),
            ("ind.", ".self"),
            ("ind.", ".past"),
            ("dirent.1.0.0.", "ino"),
            ("dirent.", ".rec_len"),
            ("dirent.", ".name_len"),
            ("dirent.", ".file_type"),
            ("dirent.", ".name"),
            ("dir.", ".tail"),
            ("dirloop.", ".parent"),
            ("dirloop.", ".cycle"),
            ("dupname.", ""),
            ("extralink.", ""),
        ];
        for (head, tail) in must {
            assert!(
                ids.iter().any(|i| i.starts_with(head) && i.ends_with(tail)),
                "{name}: no mutation {head}*{tail}"
            );
        }
        // Pointers of every level of the trees these images have.
        if name == "bs512" {
            for slot in [12, 13, 14] {
                assert!(
                    ids.iter().any(|i| i.ends_with(&format!(".map.{slot}"))),
                    "{name}: no map.{slot}"
                );
            }
        }
        // Listing is deterministic.
        assert_eq!(bin(&["list", s(&p)]).1, out);
    }
}

#[test]
fn apply_reseals_unless_keep_crc() {
    let tmp = common::TempDir::new("apply");
    let base = common::image_a();
    let p = tmp.path().join("img");
    // The link count of /a/one.txt (three names).
    let ino = Image::open(&base).unwrap().lookup(b"a/one.txt").unwrap();
    let sb = Superblock::parse(&base[..SUPERBLOCK_SIZE]).unwrap();
    let id = format!("inode.{ino}.links");

    fs::write(&p, &base).unwrap();
    let (code, out, err) = bin(&["apply", s(&p), &id]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("links 3 -> 4"), "{out}");
    assert!(out.contains("crc: resealed inode"), "{out}");
    assert!(out.contains("expect: fsck -n detect, fsck -y fix"), "{out}");
    let img = fs::read(&p).unwrap();
    let inode = Inode::parse(&raw_inode(&img, ino), ino, &sb).unwrap().unwrap();
    assert_eq!(inode.links, 4);
    // The library does the same.
    let mut lib = base.clone();
    rbfs_corrupt::apply(&mut lib, &id, false, 0, false).unwrap();
    assert!(lib == img);

    fs::write(&p, &base).unwrap();
    let (code, out, err) = bin(&["apply", s(&p), &id, "--keep-crc"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("crc: left stale in inode"), "{out}");
    let img = fs::read(&p).unwrap();
    assert_eq!(
        Inode::parse(&raw_inode(&img, ino), ino, &sb),
        Err(FormatError::BadChecksum(Structure::Inode))
    );
    // Only the inode's block changed.
    let bs = sb.block_size();
    let (blk, _) = sb.inode_location(ino).unwrap();
    for (n, (a, b)) in base.chunks(bs).zip(img.chunks(bs)).enumerate() {
        assert_eq!(a == b, n != blk as usize, "block {n}");
    }

    // A dry run writes nothing; an entry insertion with --keep-crc
    // leaves the directory block's old crc.
    fs::write(&p, &base).unwrap();
    let (code, _, err) = bin(&["apply", s(&p), "sb.magic", "--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert!(fs::read(&p).unwrap() == base);
    let root_loop = ids(&bin(&["list", s(&p)]).1)
        .into_iter()
        .find(|i| i.starts_with("dirloop.") && i.ends_with(".parent"))
        .unwrap();
    let (code, out, err) = bin(&["apply", s(&p), &root_loop, "--keep-crc"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("left stale in directory block"), "{out}");
    let img = fs::read(&p).unwrap();
    let e = Image::open(&img).unwrap().check().unwrap_err();
    assert_eq!(
        e.format_error(),
        Some(FormatError::BadChecksum(Structure::DirBlock)),
        "{e}"
    );
}

#[test]
fn random_is_reproducible() {
    let tmp = common::TempDir::new("random");
    let base = common::image_b();
    let p = tmp.path().join("img");
    let mut results = Vec::new();
    for seed in ["7", "7", "8"] {
        fs::write(&p, &base).unwrap();
        let (code, out, err) = bin(&["random", s(&p), "--seed", seed, "--count", "3"]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out.matches("flip bit").count(), 3, "{out}");
        results.push((out, fs::read(&p).unwrap()));
    }
    assert!(results[0] == results[1]);
    assert!(results[0].1 != results[2].1);
    assert!(results[0].1 != base);
    // Unsealed flips are always caught by a checksum (or the magic).
    assert!(
        results[0].0.contains("fsck -n detect") || results[0].0.contains("fsck -n fatal"),
        "{}",
        results[0].0
    );
    // Every flipped bit is in metadata: the data blocks are untouched.
    let sb = Superblock::parse(&base[..SUPERBLOCK_SIZE]).unwrap();
    let img = Image::open(&base).unwrap();
    let scan = img.scan().unwrap();
    let bs = sb.block_size();
    for seed in 0..40u64 {
        let mut copy = base.clone();
        rbfs_corrupt::random_apply(&mut copy, seed, 2, seed % 2 == 1, false).unwrap();
        for (n, (a, b)) in base.chunks(bs).zip(copy.chunks(bs)).enumerate() {
            if a == b {
                continue;
            }
            let n = n as u32;
            let meta = n < sb.layout.data_start;
            let dir_or_ind = scan.inodes.values().any(|i| {
                i.dir_blocks.iter().any(|d| d.1 == n) || {
                    let mut hit = false;
                    img.walk_map(&i.inode, &mut |it| {
                        if let rbfs_format::check::MapItem::Block { block, depth, .. } = it {
                            hit |= block == n && depth > 0;
                        }
                    })
                    .unwrap();
                    hit
                }
            });
            assert!(meta || dir_or_ind, "seed {seed}: block {n} is data");
        }
    }
}

#[test]
fn corpus_and_do() {
    let tmp = common::TempDir::new("corpus");
    let base = common::image_a();
    let p = tmp.path().join("img");
    fs::write(&p, &base).unwrap();
    let (code, listing, _) = bin(&["list", s(&p)]);
    assert_eq!(code, 0);
    let (code, out, err) = bin(&["corpus", s(&p), "--random", "8", "--seed", "5"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let fields = lines
        .iter()
        .filter(|l| l.starts_with("field ") && !l.ends_with("--keep-crc"))
        .count();
    let keep = lines.iter().filter(|l| l.ends_with("--keep-crc")).count();
    let randoms: Vec<&&str> = lines.iter().filter(|l| l.starts_with("random ")).collect();
    assert_eq!(fields, listing.lines().count());
    assert!(keep > 10 && keep < fields / 4, "{keep} keep-crc lines");
    assert_eq!(randoms.len(), 8);
    assert!(randoms.iter().any(|l| l.ends_with("--reseal")));
    assert!(randoms.iter().any(|l| l.contains("--count 3")));
    println!(
        "corpus of image A: {} lines ({fields} fields, {keep} --keep-crc, 8 random)",
        lines.len()
    );
    // --per-kind thins the catalogue to a few of each kind of damage.
    let (code, thin, err) = bin(&["corpus", s(&p), "--per-kind", "2"]);
    assert_eq!(code, 0, "{err}");
    let thin_ids: Vec<&str> = thin
        .lines()
        .filter(|l| !l.ends_with("--keep-crc"))
        .map(|l| l.trim_start_matches("field "))
        .collect();
    let kinds: BTreeSet<String> = ids(&listing)
        .iter()
        .map(|i| rbfs_corrupt::catalogue::kind_of(i))
        .collect();
    let thin_kinds: BTreeSet<String> = thin_ids
        .iter()
        .map(|i| rbfs_corrupt::catalogue::kind_of(i))
        .collect();
    assert_eq!(kinds, thin_kinds, "every kind survives thinning");
    assert!(thin_ids.len() <= 2 * kinds.len());
    assert!(thin_ids.len() > kinds.len());
    println!(
        "image A: {} kinds of damage; corpus --per-kind 2: {} lines",
        kinds.len(),
        thin.lines().count()
    );
    // --with-expect prefixes the expectations.
    let (code, with, err) = bin(&[
        "corpus",
        s(&p),
        "--random",
        "8",
        "--seed",
        "5",
        "--with-expect",
    ]);
    assert_eq!(code, 0, "{err}");
    for (a, b) in with.lines().zip(out.lines()) {
        let mut w = a.splitn(3, ' ');
        let (e, r, rest) = (w.next().unwrap(), w.next().unwrap(), w.next().unwrap());
        assert!(["detect", "fatal", "harmless", "unknown"].contains(&e), "{a}");
        assert!(["fix", "nofix", "none", "maybe"].contains(&r), "{a}");
        assert_eq!(rest, b);
    }
    // `do` applies a corpus line exactly as apply / random do.
    for line in [lines[3], lines[lines.len() - 1], lines[lines.len() - 2]] {
        fs::write(&p, &base).unwrap();
        let mut args = vec!["do", s(&p)];
        args.extend(line.split(' '));
        let (code, out, err) = bin(&args);
        assert_eq!(code, 0, "{line}: {err}");
        assert!(out.contains("expect: fsck -n"), "{out}");
        assert!(fs::read(&p).unwrap() != base, "{line}");
    }
}

#[test]
fn errors_and_usage() {
    let tmp = common::TempDir::new("errors");
    let p = tmp.path().join("img");
    fs::write(&p, common::image_a()).unwrap();
    assert_eq!(bin(&[]).0, 2);
    assert_eq!(bin(&["frobnicate", s(&p)]).0, 2);
    assert_eq!(bin(&["apply", s(&p)]).0, 2);
    assert_eq!(bin(&["random", s(&p)]).0, 2, "random needs a seed");
    assert_eq!(bin(&["apply", s(&p), "sb.magic", "--bogus"]).0, 2);
    assert_eq!(bin(&["corpus", s(&p), "outdir"]).0, 2);
    assert_eq!(bin(&["do", s(&p), "field"]).0, 2);
    let (code, _, err) = bin(&["apply", s(&p), "inode.99999.links"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such mutation"), "{err}");
    assert_eq!(bin(&["list", s(&tmp.path().join("missing"))]).0, 1);
    let zeros = tmp.path().join("zeros");
    fs::write(&zeros, vec![0u8; 65536]).unwrap();
    let (code, _, err) = bin(&["list", s(&zeros)]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read the image"), "{err}");
    let (code, out, _) = bin(&["--help"]);
    assert_eq!(code, 0);
    assert!(out.contains("Usage: rbfs-corrupt list IMAGE"));
}
