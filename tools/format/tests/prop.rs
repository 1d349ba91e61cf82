// SPDX-License-Identifier: GPL-2.0

//! Property tests: every parser of the shared format module is fed
//! arbitrary bytes (and arbitrary bytes with valid checksums, so the field
//! validation behind the checksum is exercised too) and must not panic;
//! valid structures round-trip through encode and parse; and any single
//! flipped bit in a checksummed structure is rejected.

use std::collections::BTreeMap;

use proptest::prelude::*;
use rbfs_format::*;

const CASES: u32 = 1000;

/// Bounded case counts keep the suite fast; `PROPTEST_CASES` overrides
/// them for a long soak.
fn cfg(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A small valid superblock for tests that need geometry.
fn fixed_sb(block_log: u32) -> Superblock {
    let l = Layout::compute(block_log, 40_000, 1024).unwrap();
    Superblock::new(l, [1; UUID_SIZE], [0; LABEL_SIZE], 0)
}

fn flip(buf: &mut [u8], bit: usize) {
    let bit = bit % (buf.len() * 8);
    buf[bit / 8] ^= 1 << (bit % 8);
}

fn arb_label() -> impl Strategy<Value = [u8; LABEL_SIZE]> {
    proptest::string::string_regex("[ -~]{0,32}")
        .unwrap()
        .prop_map(|s| {
            let mut l = [0u8; LABEL_SIZE];
            l[..s.len()].copy_from_slice(s.as_bytes());
            l
        })
}

fn arb_superblock() -> impl Strategy<Value = Superblock> {
    (
        MIN_BLOCK_LOG..=MAX_BLOCK_LOG,
        5u32..=2_000_000,
        1u32..=20_000,
    )
        .prop_filter_map("layout must fit", |(log, blocks, inodes)| {
            Layout::compute(log, blocks, inodes).ok()
        })
        .prop_flat_map(|l| {
            (
                Just(l),
                0..=l.data_blocks,
                0..l.inodes_count,
                prop_oneof![Just(STATE_CLEAN), Just(STATE_DIRTY)],
                any::<[u64; 3]>(),
                any::<[u8; UUID_SIZE]>(),
                arb_label(),
                any::<(u32, u32)>(),
            )
        })
        .prop_map(|(l, fb, fi, state, times, uuid, label, (compat, ro))| {
            let mut s = Superblock::new(l, uuid, label, times[0]);
            s.free_blocks = fb;
            s.free_inodes = fi;
            s.state = state;
            s.mount_time = times[1];
            s.write_time = times[2];
            s.feature_compat = compat;
            s.feature_ro_compat = ro;
            s
        })
}

fn arb_ts() -> impl Strategy<Value = Timestamp> {
    (any::<i64>(), 0u32..1_000_000_000).prop_map(|(sec, nsec)| Timestamp { sec, nsec })
}

/// A valid inode of any type for `sb` (block size 1024).
fn arb_inode(sb: Superblock) -> impl Strategy<Value = Inode> {
    let l = sb.layout;
    let ptr = prop_oneof![Just(0u32), l.data_start..l.blocks_count];
    let bs = sb.block_size() as u64;
    let kind = 0..5u8;
    (
        kind,
        any::<(u16, u32, u32, u32, u32)>(),
        [arb_ts(), arb_ts(), arb_ts(), arb_ts()],
        proptest::array::uniform16(ptr),
        any::<u64>(),
        proptest::collection::vec(1u8..=255, 1..=1023),
        any::<(u32, u32)>(),
        0u64..1 << 40,
    )
        .prop_map(
            move |(
                kind,
                (perm, uid, gid, links, generation),
                t,
                map,
                size,
                target,
                rdev,
                blocks,
            )| {
                let mut i = Inode {
                    mode: perm & 0o7777,
                    uid,
                    gid,
                    links,
                    atime: t[0],
                    mtime: t[1],
                    ctime: t[2],
                    crtime: t[3],
                    generation,
                    blocks: blocks * (bs / 512),
                    ..Inode::default()
                };
                match kind {
                    0 => {
                        i.mode |= S_IFREG;
                        i.size = size % (max_file_size(l.block_log) + 1);
                        i.map = map;
                    }
                    1 => {
                        i.mode |= S_IFDIR;
                        i.size = (1 + size % 1000) * bs;
                        i.map = map;
                    }
                    2 => {
                        i.mode |= S_IFLNK;
                        if target.len() <= FAST_SYMLINK_MAX {
                            i.set_fast_symlink(&target).unwrap();
                        } else {
                            i.size = target.len() as u64;
                            i.map[0] = l.data_start;
                        }
                    }
                    3 => {
                        i.mode |= S_IFBLK;
                        i.blocks = 0;
                        (i.rdev_major, i.rdev_minor) = rdev;
                    }
                    _ => {
                        i.mode |= S_IFIFO;
                        i.blocks = 0;
                    }
                }
                i
            },
        )
}

fn arb_block() -> impl Strategy<Value = Vec<u8>> {
    (MIN_BLOCK_LOG..=MAX_BLOCK_LOG)
        .prop_flat_map(|log| proptest::collection::vec(any::<u8>(), 1usize << log))
}

/// Exercises every read-only directory function; returns nothing, the
/// property is only that nothing panics.
fn poke_dir(buf: &[u8], first: bool, name: &[u8]) {
    let _ = dir_verify(buf);
    if let Ok(b) = DirBlock::parse(buf, first) {
        for e in b.iter().take(2000) {
            let _ = e;
        }
        let _ = b.validate();
        let _ = b.find(name);
        let _ = b.is_empty();
        let _ = b.dots();
        let _ = b.name_fits(name.len());
    }
    let mut m = buf.to_vec();
    let _ = dir_insert(&mut m, first, name, 5, DT_REG);
    let mut m = buf.to_vec();
    let _ = dir_remove(&mut m, first, name);
    let mut m = buf.to_vec();
    let _ = dir_replace(&mut m, first, name, 6, DT_DIR);
    let mut m = buf.to_vec();
    let _ = dir_set_dotdot(&mut m, 3);
}

proptest! {
    #![proptest_config(cfg(CASES))]

    #[test]
    fn superblock_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1100)) {
        let _ = Superblock::parse(&bytes);
    }

    #[test]
    fn superblock_arbitrary_fields_with_valid_checksum(mut raw in proptest::collection::vec(any::<u8>(), 512), log in 0u32..16, small in any::<bool>()) {
        raw[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        raw[4..8].copy_from_slice(&VERSION.to_le_bytes());
        raw[SB_BLOCK_LOG_OFF..SB_BLOCK_LOG_OFF + 4].copy_from_slice(&log.to_le_bytes());
        raw[SB_INODE_SIZE_OFF..SB_INODE_SIZE_OFF + 4].copy_from_slice(&256u32.to_le_bytes());
        if small {
            // Keep counts small so geometry checks get past the first field.
            raw[SB_INCOMPAT_OFF..SB_INCOMPAT_OFF + 4].fill(0);
            raw[SB_BLOCKS_OFF + 3] = 0;
            raw[SB_INODES_OFF + 2] = 0;
            raw[SB_INODES_OFF + 3] = 0;
        }
        let crc = crc32c(&raw[..SB_CRC_OFF]);
        raw[SB_CRC_OFF..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(sb) = Superblock::parse(&raw) {
            prop_assert!(sb.validate().is_ok());
            let mut again = [0u8; SUPERBLOCK_SIZE];
            sb.encode(&mut again);
            prop_assert_eq!(Superblock::parse(&again), Ok(sb));
            let _ = sb.inode_location(u32::MAX);
            let _ = sb.block_bit_location(u32::MAX);
            let _ = sb.inode_bit_location(sb.layout.inodes_count);
        }
    }

    #[test]
    fn superblock_round_trip(sb in arb_superblock()) {
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        sb.encode(&mut raw);
        prop_assert_eq!(Superblock::parse(&raw), Ok(sb));
    }

    #[test]
    fn superblock_bit_flip_detected(sb in arb_superblock(), bit in 0usize..SUPERBLOCK_SIZE * 8) {
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        sb.encode(&mut raw);
        flip(&mut raw, bit);
        prop_assert!(Superblock::parse(&raw).is_err());
    }

    #[test]
    fn inode_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300), ino in any::<u32>(), log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG) {
        let _ = Inode::parse(&bytes, ino, &fixed_sb(log));
    }

    #[test]
    fn inode_arbitrary_fields_with_valid_checksum(mut raw in proptest::collection::vec(any::<u8>(), INODE_SIZE), ino in 1u32..=1024, mode in any::<u16>(), log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG) {
        let sb = fixed_sb(log);
        raw[0..2].copy_from_slice(&mode.to_le_bytes());
        let crc = inode_crc(&raw, ino);
        raw[I_CRC_OFF..].copy_from_slice(&crc.to_le_bytes());
        if let Ok(Some(i)) = Inode::parse(&raw, ino, &sb) {
            let mut again = [0u8; INODE_SIZE];
            i.encode(ino, &mut again);
            prop_assert_eq!(Inode::parse(&again, ino, &sb), Ok(Some(i)));
            let _ = i.inline_data();
        }
    }

    #[test]
    fn inode_round_trip(i in arb_inode(fixed_sb(10)), ino in 1u32..=1024) {
        let sb = fixed_sb(10);
        prop_assert_eq!(i.validate(&sb), Ok(()));
        let mut raw = [0u8; INODE_SIZE];
        i.encode(ino, &mut raw);
        prop_assert_eq!(Inode::parse(&raw, ino, &sb), Ok(Some(i)));
    }

    #[test]
    fn inode_bit_flip_detected(i in arb_inode(fixed_sb(10)), ino in 1u32..=1024, bit in 0usize..INODE_SIZE * 8) {
        let sb = fixed_sb(10);
        let mut raw = [0u8; INODE_SIZE];
        i.encode(ino, &mut raw);
        flip(&mut raw, bit);
        prop_assert!(Inode::parse(&raw, ino, &sb).is_err());
    }

    #[test]
    fn indirect_arbitrary_bytes(buf in arb_block(), seal in any::<bool>(), i in any::<usize>()) {
        let mut buf = buf;
        let log = block_log_of_len(buf.len()).unwrap();
        if seal {
            indirect_seal(&mut buf).unwrap();
        }
        if let Ok(ind) = IndirectBlock::parse(&buf, &fixed_sb(log)) {
            let _ = ind.get(i);
            let _ = ind.all_holes();
        }
        let _ = indirect_set(&mut buf, i, 1);
        let _ = IndirectBlock::parse(&buf[..buf.len() / 2], &fixed_sb(log));
    }

    #[test]
    fn indirect_round_trip_and_bit_flip(log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG, seed in proptest::collection::vec(any::<u32>(), 1023), bit in any::<usize>()) {
        let sb = fixed_sb(log);
        let mut buf = vec![0u8; 1 << log];
        indirect_init(&mut buf).unwrap();
        let n = ptrs_per_indirect(log) as usize;
        let range = sb.layout.data_blocks;
        let ptrs: Vec<u32> = (0..n).map(|k| if seed[k] % 3 == 0 { 0 } else { sb.layout.data_start + seed[k] % range }).collect();
        for (k, &p) in ptrs.iter().enumerate() {
            indirect_set(&mut buf, k, p).unwrap();
        }
        indirect_seal(&mut buf).unwrap();
        let ind = IndirectBlock::parse(&buf, &sb).unwrap();
        prop_assert_eq!(ind.len(), n);
        for (k, &p) in ptrs.iter().enumerate() {
            prop_assert_eq!(ind.get(k), p);
        }
        flip(&mut buf, bit);
        prop_assert!(IndirectBlock::parse(&buf, &sb).is_err());
    }

    #[test]
    fn sealed_updates_equal_a_full_reseal(buf in arb_block(), changes in proptest::collection::vec((any::<u32>(), any::<u32>()), 1..20)) {
        // Arbitrary contents with a right checksum, then a series of
        // pointer and bit changes with the incremental checksum update:
        // after each, the checksum is exactly what a full reseal computes.
        let mut ind = buf.clone();
        indirect_seal(&mut ind).unwrap();
        let mut bm = buf;
        bitmap_seal(&mut bm).unwrap();
        let slots = ind.len() / 4 - 1;
        let bits = (bm.len() as u32 - 4) * 8;
        for (a, b) in changes {
            indirect_set_sealed(&mut ind, a as usize % slots, b).unwrap();
            let mut full = ind.clone();
            indirect_seal(&mut full).unwrap();
            prop_assert_eq!(&ind, &full);
            bitmap_set_sealed(&mut bm, a % bits).unwrap();
            let mut full = bm.clone();
            bitmap_seal(&mut full).unwrap();
            prop_assert_eq!(&bm, &full);
        }
        prop_assert!(indirect_set_sealed(&mut ind, slots, 1).is_err());
        prop_assert!(bitmap_set_sealed(&mut bm, bits).is_err());
    }

    #[test]
    fn bitmap_arbitrary_bytes(buf in arb_block(), index in any::<u32>(), total in any::<u32>(), bit in any::<u32>(), seal in any::<bool>()) {
        let mut buf = buf;
        if seal {
            bitmap_seal(&mut buf).unwrap();
        }
        let _ = bitmap_verify(&buf, index, total);
        let _ = bitmap_verify(&buf, index % 4, total % 100_000);
        let _ = bitmap_test(&buf, bit);
        let _ = bitmap_find_free(&buf, bit % 40_000);
        let _ = bitmap_count_free(&buf);
        let _ = bitmap_set(&mut buf, bit);
        let _ = bitmap_clear(&mut buf, bit % 40_000);
        let _ = bitmap_verify(&buf[..100], 0, 1);
    }

    #[test]
    fn bitmap_round_trip_and_bit_flip(log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG, index in 0u32..3, extra in 1u32..40_000, set in proptest::collection::btree_set(0u32..32_736, 0..200), bit in any::<usize>()) {
        let bpb = bitmap_bits_per_block(log);
        let total = index * bpb + extra.min(bpb);
        let valid = total - index * bpb;
        let mut buf = vec![0u8; 1 << log];
        bitmap_init(&mut buf, index, total).unwrap();
        let set: Vec<u32> = set.into_iter().filter(|&b| b < valid).collect();
        for &b in &set {
            bitmap_set(&mut buf, b).unwrap();
        }
        bitmap_seal(&mut buf).unwrap();
        prop_assert_eq!(bitmap_verify(&buf, index, total), Ok(()));
        prop_assert_eq!(bitmap_count_free(&buf), valid - set.len() as u32);
        for b in 0..bpb {
            prop_assert_eq!(bitmap_test(&buf, b), b >= valid || set.contains(&b));
        }
        let first_free = (0..valid).find(|b| !set.contains(b));
        prop_assert_eq!(bitmap_find_free(&buf, 0), first_free);
        flip(&mut buf, bit);
        prop_assert!(bitmap_verify(&buf, index, total).is_err());
    }

    #[test]
    fn dir_arbitrary_bytes(buf in arb_block(), first in any::<bool>(), name in proptest::collection::vec(any::<u8>(), 0..260)) {
        let mut buf = buf;
        poke_dir(&buf, first, &name);
        // Behind a valid tail and checksum the entry checks are exercised.
        dir_seal(&mut buf).unwrap();
        poke_dir(&buf, first, &name);
        // Plausible headers: small rec_len values at the start.
        buf[4] = 12;
        buf[5] = 0;
        buf[6] = 1;
        dir_seal(&mut buf).unwrap();
        poke_dir(&buf, first, &name);
        poke_dir(&buf[..buf.len() - 1], first, &name);
    }

    #[test]
    fn block_path_is_a_bijection(log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG, raw in any::<u64>()) {
        let max = max_file_blocks(log);
        let index = raw % (max + 10);
        match block_path(log, index) {
            Some(p) => {
                prop_assert!(index < max);
                prop_assert!(p.depth <= N_LEVELS);
                let per = ptrs_per_indirect(log);
                prop_assert!(p.idx.iter().all(|&i| i < per));
                prop_assert_eq!(block_path_index(log, &p), index);
            }
            None => prop_assert!(index >= max),
        }
    }

    #[test]
    fn crc32c_composes(data in proptest::collection::vec(any::<u8>(), 0..300), cut in any::<usize>()) {
        let cut = cut % (data.len() + 1);
        let whole = crc32c(&data);
        prop_assert_eq!(!crc32c_update(crc32c_update(!0, &data[..cut]), &data[cut..]), whole);
    }
}

#[derive(Debug, Clone)]
enum DirOp {
    Insert(Vec<u8>, u32, u8),
    Remove(usize),
    Replace(usize, u32),
}

fn arb_name() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(b'a'..=b'e', 1..4),
        proptest::collection::vec(1u8..=255, 1..=255).prop_map(|mut v| {
            v.retain(|&c| c != b'/');
            if v.is_empty() || v == b"." || v == b".." {
                v = b"n".to_vec();
            }
            v
        }),
    ]
}

fn arb_ops() -> impl Strategy<Value = Vec<DirOp>> {
    let ft = prop_oneof![
        Just(DT_REG),
        Just(DT_DIR),
        Just(DT_LNK),
        Just(DT_CHR),
        Just(DT_BLK),
        Just(DT_FIFO),
        Just(DT_SOCK)
    ];
    let op = prop_oneof![
        3 => (arb_name(), 1u32..1_000_000, ft).prop_map(|(n, i, t)| DirOp::Insert(n, i, t)),
        1 => any::<usize>().prop_map(DirOp::Remove),
        1 => (any::<usize>(), 1u32..1000).prop_map(|(k, i)| DirOp::Replace(k, i)),
    ];
    proptest::collection::vec(op, 1..120)
}

proptest! {
    #![proptest_config(cfg(300))]

    /// Random inserts, removes and replaces against a map model: the block
    /// always validates, holds exactly the model's entries, offsets never
    /// overlap, and any single flipped bit of the final block is caught.
    #[test]
    fn dir_ops_match_a_model(log in MIN_BLOCK_LOG..=MAX_BLOCK_LOG, first in any::<bool>(), ops in arb_ops(), bit in any::<usize>(), mutate in any::<(usize, u8)>()) {
        let mut buf = vec![0u8; 1 << log];
        if first {
            dir_init_first(&mut buf, 2, 1).unwrap();
        } else {
            dir_init_empty(&mut buf).unwrap();
        }
        let mut model: BTreeMap<Vec<u8>, (u32, u8)> = BTreeMap::new();
        for op in ops {
            match op {
                DirOp::Insert(name, ino, ft) => match dir_insert(&mut buf, first, &name, ino, ft) {
                    Ok(_) => prop_assert!(model.insert(name, (ino, ft)).is_none()),
                    Err(FormatError::Exists) => prop_assert!(model.contains_key(&name)),
                    Err(FormatError::NoSpace) => {
                        prop_assert!(!model.contains_key(&name));
                        let blk = DirBlock::parse(&buf, first).unwrap();
                        prop_assert!(!blk.name_fits(name.len()).unwrap());
                    }
                    Err(e) => prop_assert!(false, "insert failed: {}", e),
                },
                DirOp::Remove(k) if !model.is_empty() => {
                    let name = model.keys().nth(k % model.len()).unwrap().clone();
                    let (ino, _) = model.remove(&name).unwrap();
                    prop_assert_eq!(dir_remove(&mut buf, first, &name), Ok(ino));
                }
                DirOp::Replace(k, ino) if !model.is_empty() => {
                    let name = model.keys().nth(k % model.len()).unwrap().clone();
                    let old = model.insert(name.clone(), (ino, DT_REG)).unwrap();
                    prop_assert_eq!(dir_replace(&mut buf, first, &name, ino, DT_REG), Ok(old.0));
                }
                _ => prop_assert_eq!(dir_remove(&mut buf, first, b"absent"), Err(FormatError::NotFound)),
            }
            let blk = DirBlock::parse(&buf, first).unwrap();
            prop_assert_eq!(blk.validate(), Ok(()));
            let mut seen = BTreeMap::new();
            let mut last_end = 0;
            for e in blk.iter() {
                let e = e.unwrap();
                prop_assert!(e.offset >= last_end);
                last_end = e.offset + e.rec_len;
                if e.name != b"." && e.name != b".." {
                    seen.insert(e.name.to_vec(), (e.ino, e.file_type));
                }
            }
            prop_assert_eq!(last_end <= buf.len() - DIR_TAIL_SIZE, true);
            prop_assert_eq!(&seen, &model);
            prop_assert_eq!(blk.is_empty().unwrap(), model.is_empty());
        }
        // A random byte changed and resealed must not panic anything.
        let mut mutated = buf.clone();
        let at = mutated.len() - DIR_TAIL_SIZE;
        mutated[mutate.0 % at] ^= mutate.1;
        dir_seal(&mut mutated).unwrap();
        poke_dir(&mutated, first, b"a");
        // A flipped bit is caught by the tail or the checksum.
        flip(&mut buf, bit);
        prop_assert!(DirBlock::parse(&buf, first).is_err());
    }
}

/// Exhaustive version of the bit-flip properties for one instance of each
/// checksummed structure: every single bit is tried.
#[test]
fn every_single_bit_flip_is_detected() {
    let sb = fixed_sb(9);
    let mut raw = [0u8; SUPERBLOCK_SIZE];
    sb.encode(&mut raw);
    for bit in 0..SUPERBLOCK_SIZE * 8 {
        let mut r = raw;
        flip(&mut r, bit);
        assert!(Superblock::parse(&r).is_err(), "superblock bit {bit}");
    }
    let mut inode = Inode {
        mode: S_IFREG | 0o600,
        links: 1,
        size: 10,
        blocks: 1,
        ..Inode::default()
    };
    inode.map[0] = sb.layout.data_start;
    let mut raw = [0u8; INODE_SIZE];
    inode.encode(9, &mut raw);
    for bit in 0..INODE_SIZE * 8 {
        let mut r = raw;
        flip(&mut r, bit);
        assert!(Inode::parse(&r, 9, &sb).is_err(), "inode bit {bit}");
    }
    let mut dir = vec![0u8; 512];
    dir_init_first(&mut dir, 9, 1).unwrap();
    dir_insert(&mut dir, true, b"file", 10, DT_REG).unwrap();
    let mut ind = vec![0u8; 512];
    indirect_init(&mut ind).unwrap();
    indirect_set(&mut ind, 3, sb.layout.data_start).unwrap();
    indirect_seal(&mut ind).unwrap();
    let mut bm = vec![0u8; 512];
    bitmap_init(&mut bm, 0, 1000).unwrap();
    for bit in 0..512 * 8 {
        let mut d = dir.clone();
        flip(&mut d, bit);
        assert!(DirBlock::parse(&d, true).is_err(), "dir bit {bit}");
        let mut i = ind.clone();
        flip(&mut i, bit);
        assert!(IndirectBlock::parse(&i, &sb).is_err(), "indirect bit {bit}");
        let mut b = bm.clone();
        flip(&mut b, bit);
        assert!(bitmap_verify(&b, 0, 1000).is_err(), "bitmap bit {bit}");
    }
}
