// SPDX-License-Identifier: GPL-2.0

//! Host unit tests of the shared on-disk format module.

use rbfs_format::*;

fn sb(block_log: u32, blocks: u32, inodes: u32) -> Superblock {
    let l = Layout::compute(block_log, blocks, inodes).unwrap();
    let mut label = [0u8; LABEL_SIZE];
    label[..4].copy_from_slice(b"test");
    let mut s = Superblock::new(l, [7; UUID_SIZE], label, 1_700_000_000);
    s.free_blocks = l.data_blocks - 1;
    s.free_inodes = l.inodes_count - 1;
    s
}

fn encoded(s: &Superblock) -> [u8; SUPERBLOCK_SIZE] {
    let mut raw = [0u8; SUPERBLOCK_SIZE];
    s.encode(&mut raw);
    raw
}

/// Re-seals a superblock after a test poked a field.
fn reseal(raw: &mut [u8; SUPERBLOCK_SIZE]) {
    let crc = crc32c(&raw[..SB_CRC_OFF]);
    raw[SB_CRC_OFF..].copy_from_slice(&crc.to_le_bytes());
}

#[test]
fn crc32c_known_vectors() {
    assert_eq!(crc32c(b""), 0);
    assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    assert_eq!(crc32c(&[0u8; 32]), 0x8A91_36AA);
    assert_eq!(crc32c(&[0xffu8; 32]), 0x62A8_AB43);
    let inc: Vec<u8> = (0..32).collect();
    assert_eq!(crc32c(&inc), 0x46DD_794E);
    // Slicing and byte-at-a-time paths agree at every split.
    let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
    for cut in 0..data.len() {
        let split = !crc32c_update(crc32c_update(!0, &data[..cut]), &data[cut..]);
        assert_eq!(split, crc32c(&data));
    }
}

#[test]
fn layout_tiles_the_device() {
    for log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG {
        let l = Layout::compute(log, 100_000, 5000).unwrap();
        assert_eq!(l.bbitmap_start, 1);
        assert_eq!(l.ibitmap_start, l.bbitmap_start + l.bbitmap_blocks);
        assert_eq!(l.itable_start, l.ibitmap_start + l.ibitmap_blocks);
        assert_eq!(l.data_start, l.itable_start + l.itable_blocks);
        assert_eq!(l.data_start + l.data_blocks, l.blocks_count);
        let bpb = u64::from(bitmap_bits_per_block(log));
        assert!(u64::from(l.bbitmap_blocks) * bpb >= 100_000);
        assert!(u64::from(l.itable_blocks) * u64::from(inodes_per_block(log)) >= 5000);
    }
    assert!(matches!(
        Layout::compute(8, 1000, 16),
        Err(FormatError::BadBlockSize(8))
    ));
    assert!(matches!(
        Layout::compute(10, 1000, 0),
        Err(FormatError::BadGeometry(_))
    ));
    // 16 inodes at 512 bytes: block 0, 1+1 bitmaps, 8 table blocks, 1 data.
    assert!(Layout::compute(9, 11, 16).is_err());
    assert_eq!(Layout::compute(9, 12, 16).unwrap().data_blocks, 1);
}

#[test]
fn superblock_round_trip() {
    for log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG {
        let s = sb(log, 50_000, 1000);
        let raw = encoded(&s);
        assert_eq!(&raw[..4], b"RBFS");
        assert_eq!(Superblock::parse(&raw).unwrap(), s);
        // A whole block 0 parses too.
        let mut block = vec![0u8; 1 << log];
        block[..SUPERBLOCK_SIZE].copy_from_slice(&raw);
        assert_eq!(Superblock::parse(&block).unwrap(), s);
    }
}

#[test]
fn superblock_rejections() {
    let s = sb(10, 10_000, 256);
    let raw = encoded(&s);
    assert_eq!(Superblock::parse(&[0u8; 512]), Err(FormatError::BadMagic));
    assert_eq!(Superblock::parse(&raw[..511]), Err(FormatError::BufferSize));
    let mut flipped = raw;
    flipped[200] ^= 1;
    assert_eq!(
        Superblock::parse(&flipped),
        Err(FormatError::BadChecksum(Structure::Superblock))
    );
    assert_eq!(
        Superblock::parse(&flipped).unwrap_err().as_str(),
        "bad superblock checksum"
    );

    let poke = |off: usize, v: u32| {
        let mut r = raw;
        r[off..off + 4].copy_from_slice(&v.to_le_bytes());
        reseal(&mut r);
        Superblock::parse(&r)
    };
    assert_eq!(
        poke(SB_VERSION_OFF, 2),
        Err(FormatError::UnsupportedVersion(2))
    );
    assert_eq!(
        poke(SB_INCOMPAT_OFF, 0x10),
        Err(FormatError::UnknownIncompatFeatures(0x10))
    );
    // Unknown compat is ignored; unknown ro_compat parses but forces ro.
    assert!(poke(SB_COMPAT_OFF, 0x4).is_ok());
    assert_eq!(
        poke(SB_RO_COMPAT_OFF, 0x8).unwrap().unknown_ro_compat(),
        0x8
    );
    assert_eq!(s.unknown_ro_compat(), 0);
    assert_eq!(
        poke(SB_BLOCK_LOG_OFF, 13),
        Err(FormatError::BadBlockSize(13))
    );
    assert!(matches!(
        poke(SB_INODE_SIZE_OFF, 128),
        Err(FormatError::BadField(_))
    ));
    assert!(matches!(
        poke(SB_STATE_OFF, 3),
        Err(FormatError::BadField(_))
    ));
    assert!(poke(SB_STATE_OFF, STATE_DIRTY).is_ok());
    assert!(matches!(
        poke(SB_FREE_BLOCKS_OFF, s.layout.data_blocks + 1),
        Err(FormatError::BadGeometry(_))
    ));
    assert!(matches!(
        poke(SB_FREE_INODES_OFF, 256),
        Err(FormatError::BadGeometry(_))
    ));
    assert!(matches!(
        poke(SB_ROOT_OFF, 2),
        Err(FormatError::BadGeometry(_))
    ));
    assert!(matches!(
        poke(SB_BLOCKS_OFF, 20_000),
        Err(FormatError::BadGeometry(_))
    ));
    assert!(matches!(
        poke(SB_INODES_OFF, 100_000),
        Err(FormatError::BadGeometry(_))
    ));
    for off in [SB_BBITMAP_OFF, SB_IBITMAP_OFF, SB_ITABLE_OFF, SB_DATA_OFF] {
        for field in [off, off + 4] {
            let v = u32::from_le_bytes(raw[field..field + 4].try_into().unwrap());
            let e = poke(field, v + 1).unwrap_err();
            assert!(
                matches!(e, FormatError::BadGeometry(_)),
                "field {field}: {e}"
            );
        }
    }
    // Label: NUL padding and UTF-8.
    let mut r = raw;
    r[SB_LABEL_OFF + 10] = b'x';
    reseal(&mut r);
    assert_eq!(
        Superblock::parse(&r),
        Err(FormatError::BadField("label is not NUL padded"))
    );
    let mut r = raw;
    r[SB_LABEL_OFF] = 0xff;
    reseal(&mut r);
    assert_eq!(
        Superblock::parse(&r),
        Err(FormatError::BadField("label is not UTF-8"))
    );
    let mut full = s;
    full.label = [b'a'; LABEL_SIZE];
    assert!(Superblock::parse(&encoded(&full)).is_ok());
}

#[test]
fn superblock_locations() {
    let s = sb(10, 100_000, 8192);
    assert_eq!(s.inode_location(1).unwrap(), (s.layout.itable_start, 0));
    assert_eq!(s.inode_location(5).unwrap(), (s.layout.itable_start + 1, 0));
    assert_eq!(
        s.inode_location(6).unwrap(),
        (s.layout.itable_start + 1, 256)
    );
    assert_eq!(s.inode_location(0), Err(FormatError::BadInodeNumber(0)));
    assert_eq!(
        s.inode_location(8193),
        Err(FormatError::BadInodeNumber(8193))
    );
    assert_eq!(s.block_bit_location(0).unwrap(), (1, 0));
    assert_eq!(s.block_bit_location(8160).unwrap(), (2, 0));
    assert_eq!(
        s.inode_bit_location(1).unwrap(),
        (s.layout.ibitmap_start, 0)
    );
    assert_eq!(
        s.inode_bit_location(8161).unwrap(),
        (s.layout.ibitmap_start + 1, 0)
    );
    assert!(s.is_data_block(s.layout.data_start));
    assert!(!s.is_data_block(s.layout.data_start - 1));
    assert!(!s.is_data_block(s.layout.blocks_count));
    assert!(s.check_device_size(100_000 * 1024).is_ok());
    assert!(s.check_device_size(100_000 * 1024 - 1).is_err());
}

#[test]
fn max_file_size_reaches_4gib_for_every_block_size() {
    for log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG {
        assert!(max_file_size(log) >= 4 << 30, "block log {log}");
    }
    // 512: 12 + 127 + 127^2 + 127^3 + 127^4 blocks.
    assert_eq!(
        max_file_blocks(9),
        12 + 127 + 16_129 + 2_048_383 + 260_144_641
    );
    assert_eq!(max_file_size(9), max_file_blocks(9) * 512);
    assert_eq!(ptrs_per_indirect(12), 1023);
}

#[test]
fn block_path_levels() {
    let p = |i| block_path(9, i).unwrap();
    assert_eq!(
        p(0),
        BlockPath {
            depth: 0,
            slot: 0,
            idx: [0; 4]
        }
    );
    assert_eq!(
        p(11),
        BlockPath {
            depth: 0,
            slot: 11,
            idx: [0; 4]
        }
    );
    assert_eq!(
        p(12),
        BlockPath {
            depth: 1,
            slot: 12,
            idx: [0, 0, 0, 0]
        }
    );
    assert_eq!(
        p(12 + 126),
        BlockPath {
            depth: 1,
            slot: 12,
            idx: [126, 0, 0, 0]
        }
    );
    assert_eq!(
        p(12 + 127),
        BlockPath {
            depth: 2,
            slot: 13,
            idx: [0, 0, 0, 0]
        }
    );
    assert_eq!(
        p(12 + 127 + 128),
        BlockPath {
            depth: 2,
            slot: 13,
            idx: [1, 1, 0, 0]
        }
    );
    let triple = 12 + 127 + 127 * 127;
    assert_eq!(p(triple).depth, 3);
    let quad = triple + 127 * 127 * 127;
    assert_eq!(
        p(quad),
        BlockPath {
            depth: 4,
            slot: 15,
            idx: [0, 0, 0, 0]
        }
    );
    let last = max_file_blocks(9) - 1;
    assert_eq!(
        p(last),
        BlockPath {
            depth: 4,
            slot: 15,
            idx: [126, 126, 126, 126]
        }
    );
    assert_eq!(block_path(9, last + 1), None);
    assert_eq!(block_path(13, 0), None);
    let silly = BlockPath {
        depth: usize::MAX,
        slot: 0,
        idx: [u32::MAX; 4],
    };
    let _ = block_path_index(9, &silly);
    let mut bad_sb = sb(9, 10_000, 256);
    bad_sb.layout.block_log = 3;
    let _ = Inode {
        mode: S_IFREG,
        ..Inode::default()
    }
    .validate(&bad_sb);
    for i in [0, 11, 12, 138, 139, 5000, triple, quad, last] {
        assert_eq!(block_path_index(9, &p(i)), i);
    }
}

fn inode_file(sb: &Superblock) -> Inode {
    let d = sb.layout.data_start;
    let mut map = [0u32; N_MAP];
    map[0] = d;
    map[12] = d + 1;
    Inode {
        mode: S_IFREG | 0o644,
        uid: 1000,
        gid: 100,
        links: 1,
        size: 123_456,
        atime: Timestamp {
            sec: -5,
            nsec: 999_999_999,
        },
        mtime: Timestamp {
            sec: 1_700_000_000,
            nsec: 1,
        },
        ctime: Timestamp { sec: 2, nsec: 3 },
        crtime: Timestamp { sec: 4, nsec: 5 },
        flags: 0,
        generation: 42,
        blocks: 4 * 2,
        rdev_major: 0,
        rdev_minor: 0,
        map,
    }
}

#[test]
fn inode_round_trip_and_checksum_covers_number() {
    let s = sb(10, 10_000, 256);
    let i = inode_file(&s);
    let mut raw = [0u8; INODE_SIZE];
    i.encode(7, &mut raw);
    assert_eq!(Inode::parse(&raw, 7, &s).unwrap(), Some(i));
    assert_eq!(
        Inode::parse(&raw, 8, &s),
        Err(FormatError::BadChecksum(Structure::Inode))
    );
    assert_eq!(Inode::parse(&[0u8; INODE_SIZE], 8, &s), Ok(None));
    assert_eq!(
        Inode::parse(&raw[..255], 7, &s),
        Err(FormatError::BufferSize)
    );
    assert_eq!(
        Inode::parse(&raw, 0, &s),
        Err(FormatError::BadInodeNumber(0))
    );
    assert_eq!(
        Inode::parse(&raw, 257, &s),
        Err(FormatError::BadInodeNumber(257))
    );
    let mut bad = raw;
    bad[I_SIZE_OFF] ^= 0x80;
    assert_eq!(
        Inode::parse(&bad, 7, &s),
        Err(FormatError::BadChecksum(Structure::Inode))
    );
}

#[test]
fn inode_validation() {
    let s = sb(10, 10_000, 256);
    let base = inode_file(&s);
    let check = |f: &dyn Fn(&mut Inode)| {
        let mut i = base;
        f(&mut i);
        let mut raw = [0u8; INODE_SIZE];
        i.encode(3, &mut raw);
        Inode::parse(&raw, 3, &s)
    };
    assert!(check(&|_| {}).is_ok());
    assert!(matches!(
        check(&|i| i.mode = 0o644),
        Err(FormatError::BadInode(_))
    ));
    assert!(matches!(
        check(&|i| i.mtime.nsec = 1_000_000_000),
        Err(FormatError::BadInode(_))
    ));
    assert!(matches!(
        check(&|i| i.blocks = 3),
        Err(FormatError::BadInode(_))
    ));
    assert!(matches!(
        check(&|i| i.map[3] = 5),
        Err(FormatError::BadBlockNumber(5))
    ));
    assert!(matches!(
        check(&|i| i.map[15] = 10_000),
        Err(FormatError::BadBlockNumber(10_000))
    ));
    assert!(matches!(
        check(&|i| i.size = max_file_size(10) + 1),
        Err(FormatError::BadInode(_))
    ));
    assert!(matches!(
        check(&|i| i.rdev_major = 1),
        Err(FormatError::BadInode(_))
    ));
    // Directories: whole blocks, at least one.
    let dir = |i: &mut Inode| {
        i.mode = S_IFDIR | 0o755;
        i.size = 2048;
    };
    assert!(check(&dir).is_ok());
    assert!(check(&|i| {
        dir(i);
        i.size = 1000
    })
    .is_err());
    assert!(check(&|i| {
        dir(i);
        i.size = 0
    })
    .is_err());
    // Devices carry numbers and no blocks.
    let dev = |i: &mut Inode| {
        i.mode = S_IFCHR | 0o600;
        i.size = 0;
        i.blocks = 0;
        i.map = [0; N_MAP];
        i.rdev_major = 4;
        i.rdev_minor = 64;
    };
    assert!(check(&dev).is_ok());
    assert!(check(&|i| {
        dev(i);
        i.map[0] = s.layout.data_start
    })
    .is_err());
    assert!(check(&|i| {
        dev(i);
        i.size = 1
    })
    .is_err());
}

#[test]
fn symlinks_fast_and_slow() {
    let s = sb(9, 10_000, 256);
    let mut fast = Inode {
        mode: S_IFLNK | 0o777,
        links: 1,
        ..Inode::default()
    };
    fast.set_fast_symlink(&[b'x'; 60]).unwrap();
    assert!(fast.is_fast_symlink());
    assert!(fast.set_fast_symlink(&[b'x'; 61]).is_err());
    fast.set_fast_symlink(b"../target").unwrap();
    let mut raw = [0u8; INODE_SIZE];
    fast.encode(2, &mut raw);
    let back = Inode::parse(&raw, 2, &s).unwrap().unwrap();
    assert_eq!(&back.inline_data()[..9], b"../target");
    assert!(!back.has_block_map());
    // Bytes past the size of a fast symlink are rejected.
    let mut junk = fast;
    junk.map[10] = 1;
    junk.encode(2, &mut raw);
    assert!(matches!(
        Inode::parse(&raw, 2, &s),
        Err(FormatError::BadInode(_))
    ));
    // Slow: one block, size below the block size.
    let mut slow = Inode {
        mode: S_IFLNK | 0o777,
        links: 1,
        size: 61,
        blocks: 1,
        ..Inode::default()
    };
    slow.map[0] = s.layout.data_start;
    slow.encode(2, &mut raw);
    assert!(Inode::parse(&raw, 2, &s).unwrap().unwrap().has_block_map());
    slow.size = 512;
    slow.encode(2, &mut raw);
    assert!(Inode::parse(&raw, 2, &s).is_err());
    slow.size = 100;
    slow.map[1] = s.layout.data_start + 1;
    slow.encode(2, &mut raw);
    assert!(Inode::parse(&raw, 2, &s).is_err());
}

#[test]
fn indirect_blocks() {
    let s = sb(9, 10_000, 256);
    let mut buf = vec![0u8; 512];
    indirect_init(&mut buf).unwrap();
    let ind = IndirectBlock::parse(&buf, &s).unwrap();
    assert_eq!(ind.len(), 127);
    assert!(ind.all_holes());
    indirect_set(&mut buf, 126, s.layout.data_start).unwrap();
    assert!(indirect_set(&mut buf, 127, 1).is_err());
    assert_eq!(
        IndirectBlock::parse(&buf, &s).unwrap_err(),
        FormatError::BadChecksum(Structure::Indirect)
    );
    indirect_seal(&mut buf).unwrap();
    let ind = IndirectBlock::parse(&buf, &s).unwrap();
    assert_eq!(ind.get(126), s.layout.data_start);
    assert_eq!(ind.get(127), 0);
    indirect_set(&mut buf, 5, 1).unwrap();
    indirect_seal(&mut buf).unwrap();
    assert_eq!(
        IndirectBlock::parse(&buf, &s).unwrap_err(),
        FormatError::BadBlockNumber(1)
    );
    assert_eq!(
        IndirectBlock::parse(&buf[..256], &s).unwrap_err(),
        FormatError::BufferSize
    );
}

#[test]
fn bitmap_blocks() {
    let mut buf = vec![0u8; 512];
    let bpb = bitmap_bits_per_block(9);
    assert_eq!(bpb, 508 * 8);
    // Second block of a bitmap over bpb + 10 items: 10 real bits.
    bitmap_init(&mut buf, 1, bpb + 10).unwrap();
    bitmap_verify(&buf, 1, bpb + 10).unwrap();
    assert_eq!(bitmap_count_free(&buf), 10);
    assert!(!bitmap_test(&buf, 9));
    assert!(bitmap_test(&buf, 10));
    assert!(bitmap_test(&buf, bpb));
    assert_eq!(bitmap_find_free(&buf, 0), Some(0));
    assert!(!bitmap_set(&mut buf, 0).unwrap());
    assert!(bitmap_set(&mut buf, 0).unwrap());
    assert_eq!(bitmap_find_free(&buf, 0), Some(1));
    assert_eq!(
        bitmap_verify(&buf, 1, bpb + 10),
        Err(FormatError::BadChecksum(Structure::Bitmap))
    );
    bitmap_seal(&mut buf).unwrap();
    bitmap_verify(&buf, 1, bpb + 10).unwrap();
    // A padding bit cleared is detected even with a good checksum.
    bitmap_clear(&mut buf, 20).unwrap();
    bitmap_seal(&mut buf).unwrap();
    assert!(matches!(
        bitmap_verify(&buf, 1, bpb + 10),
        Err(FormatError::BadBitmap(_))
    ));
    // A block beyond the count is rejected.
    bitmap_init(&mut buf, 0, 10).unwrap();
    assert!(bitmap_verify(&buf, 1, 10).is_err());
    assert!(bitmap_set(&mut buf, bpb).is_err());
    for k in 0..10 {
        bitmap_set(&mut buf, k).unwrap();
    }
    assert_eq!(bitmap_find_free(&buf, 0), None);
    assert_eq!(bitmap_count_free(&buf), 0);
}

fn names(buf: &[u8], first: bool) -> Vec<(Vec<u8>, u32, usize)> {
    DirBlock::parse(buf, first)
        .unwrap()
        .iter()
        .map(|e| e.map(|e| (e.name.to_vec(), e.ino, e.offset)))
        .collect::<Result<_>>()
        .unwrap()
}

#[test]
fn directory_first_block() {
    for log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG {
        let mut buf = vec![0u8; 1 << log];
        dir_init_first(&mut buf, 5, 1).unwrap();
        assert_eq!(
            names(&buf, true),
            vec![(b".".to_vec(), 5, 0), (b"..".to_vec(), 1, 12)]
        );
        let blk = DirBlock::parse(&buf, true).unwrap();
        assert_eq!(blk.dots().unwrap(), (5, 1));
        assert!(blk.is_empty().unwrap());
        // Without the dots rule the block is still well formed; an empty
        // non-first block is rejected as a first block.
        assert!(DirBlock::parse(&buf, false).unwrap().validate().is_err());
        let mut empty = vec![0u8; 1 << log];
        dir_init_empty(&mut empty).unwrap();
        assert!(DirBlock::parse(&empty, false).unwrap().validate().is_ok());
        assert!(DirBlock::parse(&empty, true).unwrap().validate().is_err());
        dir_set_dotdot(&mut buf, 9).unwrap();
        assert_eq!(DirBlock::parse(&buf, true).unwrap().dots().unwrap(), (5, 9));
        assert_eq!(dir_remove(&mut buf, true, b".."), Err(FormatError::BadName));
    }
}

#[test]
fn directory_insert_split_remove_merge() {
    let mut buf = vec![0u8; 512];
    dir_init_first(&mut buf, 2, 1).unwrap();
    let a = dir_insert(&mut buf, true, b"alpha", 10, DT_REG).unwrap();
    assert_eq!(a, 24, "splits the slack of ..");
    let b = dir_insert(&mut buf, true, b"beta", 11, DT_DIR).unwrap();
    assert_eq!(b, 24 + dirent_rec_len(5));
    assert_eq!(
        dir_insert(&mut buf, true, b"alpha", 12, DT_REG),
        Err(FormatError::Exists)
    );
    assert_eq!(
        dir_insert(&mut buf, true, b"a/b", 12, DT_REG),
        Err(FormatError::BadName)
    );
    assert_eq!(
        dir_insert(&mut buf, true, b"x", 0, DT_REG),
        Err(FormatError::BadInodeNumber(0))
    );
    assert_eq!(
        dir_insert(&mut buf, true, b"x", 1, 3),
        Err(FormatError::BadFileType(3))
    );
    assert_eq!(
        dir_insert(&mut buf, true, &[b'n'; 256], 1, DT_REG),
        Err(FormatError::NameTooLong)
    );
    let blk = DirBlock::parse(&buf, true).unwrap();
    assert_eq!(blk.find(b"beta").unwrap().unwrap().ino, 11);
    assert_eq!(blk.find(b"gamma").unwrap(), None);
    assert!(!blk.is_empty().unwrap());
    // Remove alpha: its record merges into the previous one (..), and the
    // space is reused by the next insert.
    assert_eq!(dir_remove(&mut buf, true, b"alpha").unwrap(), 10);
    assert_eq!(
        dir_remove(&mut buf, true, b"alpha"),
        Err(FormatError::NotFound)
    );
    assert_eq!(names(&buf, true).len(), 3);
    assert_eq!(
        dir_insert(&mut buf, true, b"gamma", 13, DT_LNK).unwrap(),
        24
    );
    assert_eq!(
        dir_replace(&mut buf, true, b"gamma", 14, DT_REG).unwrap(),
        13
    );
    let blk = DirBlock::parse(&buf, true).unwrap();
    let g = blk.find(b"gamma").unwrap().unwrap();
    assert_eq!((g.ino, g.file_type), (14, DT_REG));
    // Fill up: every entry uses 12 bytes; the block ends exactly at the tail.
    let mut n = 0u32;
    loop {
        let name = format!("{n:03}");
        match dir_insert(&mut buf, true, name.as_bytes(), 100 + n, DT_REG) {
            Ok(_) => n += 1,
            Err(FormatError::NoSpace) => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(!DirBlock::parse(&buf, true).unwrap().name_fits(1).unwrap());
    assert_eq!(names(&buf, true).len() as u32, 4 + n);
    // Remove everything from a non-first block: the first record becomes
    // unused rather than merged.
    let mut other = vec![0u8; 512];
    dir_init_empty(&mut other).unwrap();
    dir_insert(&mut other, false, b"one", 3, DT_REG).unwrap();
    dir_insert(&mut other, false, b"two", 4, DT_REG).unwrap();
    dir_remove(&mut other, false, b"one").unwrap();
    assert_eq!(names(&other, false), vec![(b"two".to_vec(), 4, 12)]);
    dir_remove(&mut other, false, b"two").unwrap();
    assert!(names(&other, false).is_empty());
    assert!(DirBlock::parse(&other, false)
        .unwrap()
        .name_fits(NAME_MAX)
        .unwrap());
    assert!(!DirBlock::parse(&other, false)
        .unwrap()
        .name_fits(usize::MAX)
        .unwrap());
}

#[test]
fn directory_long_names_and_corruption() {
    let mut buf = vec![0u8; 512];
    dir_init_empty(&mut buf).unwrap();
    let long = [b'z'; NAME_MAX];
    dir_insert(&mut buf, false, &long, 7, DT_REG).unwrap();
    let e = DirBlock::parse(&buf, false)
        .unwrap()
        .find(&long)
        .unwrap()
        .unwrap();
    assert_eq!(e.name.len(), 255);
    // A bad rec_len behind a good checksum is reported with its offset.
    let mut bad = buf.clone();
    bad[4..6].copy_from_slice(&10u16.to_le_bytes());
    dir_seal(&mut bad).unwrap();
    let err = DirBlock::parse(&bad, false)
        .unwrap()
        .iter()
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, FormatError::BadEntry { offset: 0, .. }),
        "{err}"
    );
    // A NUL in a name.
    let mut bad = buf.clone();
    bad[8 + 3] = 0;
    dir_seal(&mut bad).unwrap();
    assert!(DirBlock::parse(&bad, false).unwrap().validate().is_err());
    // Tail damage and checksum damage.
    let mut bad = buf.clone();
    bad[512 - 5] = 0;
    assert_eq!(
        DirBlock::parse(&bad, false).unwrap_err(),
        FormatError::BadDirTail
    );
    let mut bad = buf.clone();
    bad[100] ^= 4;
    assert_eq!(
        DirBlock::parse(&bad, false).unwrap_err(),
        FormatError::BadChecksum(Structure::DirBlock)
    );
    assert_eq!(
        DirBlock::parse(&buf[..500], false).unwrap_err(),
        FormatError::BadBlockSize(500)
    );
}

#[test]
fn names_and_types() {
    assert!(check_name(b"ok").is_ok());
    assert_eq!(check_name(b""), Err(FormatError::BadName));
    assert_eq!(check_name(b"."), Err(FormatError::BadName));
    assert_eq!(check_name(b".."), Err(FormatError::BadName));
    assert!(check_name(b"...").is_ok());
    assert_eq!(check_name(b"a\0b"), Err(FormatError::BadName));
    assert_eq!(check_name(&[b'a'; 255]), Ok(()));
    assert_eq!(check_name(&[b'a'; 256]), Err(FormatError::NameTooLong));
    assert_eq!(dt_from_mode(S_IFREG | 0o644), Some(DT_REG));
    assert_eq!(dt_from_mode(S_IFSOCK), Some(DT_SOCK));
    assert_eq!(dt_from_mode(0o644), None);
    assert_eq!(dirent_rec_len(1), 12);
    assert_eq!(dirent_rec_len(4), 12);
    assert_eq!(dirent_rec_len(5), 16);
    assert_eq!(dirent_rec_len(255), 264);
}

#[test]
fn error_messages_need_no_allocation() {
    let e = FormatError::BadEntry {
        offset: 24,
        reason: "unknown file type",
    };
    assert_eq!(e.as_str(), "unknown file type");
    assert_eq!(
        e.to_string(),
        "bad directory entry at offset 24: unknown file type"
    );
    assert_eq!(FormatError::BadGeometry("x y").as_str(), "x y");
    assert_eq!(
        FormatError::UnknownIncompatFeatures(0x10).to_string(),
        "unknown incompatible features 0x10"
    );
    assert_eq!(
        FormatError::BadChecksum(Structure::DirBlock).as_str(),
        "bad directory block checksum"
    );
}
