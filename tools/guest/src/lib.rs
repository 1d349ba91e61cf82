//! Shared code of the guest test programs.

pub mod aio;
pub mod durlog;
pub mod uring;

/// The pattern byte stream: every 8-byte word is a hash of its offset and a
/// seed, so data written to the wrong place, stale data and zeroes are all
/// told apart from the expected content.
pub fn pattern_word(seed: u64, word_index: u64) -> u64 {
    // splitmix64 of (seed, index)
    let mut z =
        seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ word_index.wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern bytes for file offsets `offset..offset+len`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    // Byte `pos` is byte `pos % 8` of word `pos / 8`; one hash per word.
    let mut pos = offset;
    let mut rest = buf;
    while !rest.is_empty() {
        let word = pattern_word(seed, pos / 8).to_le_bytes();
        let skip = (pos % 8) as usize;
        let n = (8 - skip).min(rest.len());
        let (head, tail) = rest.split_at_mut(n);
        head.copy_from_slice(&word[skip..skip + n]);
        rest = tail;
        pos += n as u64;
    }
}

/// The pattern seed of the data of write generation `gen` in a run with
/// seed `run_seed` (rbfs-stress): every write of a run has its own
/// generation, so its bytes differ from those of every other write, at
/// every offset.
pub fn gen_seed(run_seed: u64, gen: u64) -> u64 {
    pattern_word(run_seed ^ 0x7262_6673_7374_7273, gen)
}

/// Fills `buf` with the bytes that write generation `gen` stores at file
/// offsets `offset..offset+buf.len()`.
pub fn fill_gen(run_seed: u64, gen: u64, offset: u64, buf: &mut [u8]) {
    fill_pattern(gen_seed(run_seed, gen), offset, buf);
}

/// The byte write generation `gen` stores at file offset `pos`.
pub fn gen_byte(run_seed: u64, gen: u64, pos: u64) -> u8 {
    pattern_word(gen_seed(run_seed, gen), pos / 8).to_le_bytes()[(pos % 8) as usize]
}

/// CRC-32 (IEEE 802.3, as zlib's `crc32`) of `data`, continuing from
/// `crc` (0 to start).
pub fn crc32(crc: u32, data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
                k += 1;
            }
            t[i] = c;
            i += 1;
        }
        t
    };
    let mut c = !crc;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Bytes as space-separated hex pairs (for reports).
pub fn hex(data: &[u8]) -> String {
    data.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// First offset in `buf` (holding file bytes from `offset`) that differs
/// from the pattern.
pub fn first_mismatch(seed: u64, offset: u64, buf: &[u8]) -> Option<u64> {
    let mut want = vec![0u8; buf.len()];
    fill_pattern(seed, offset, &mut want);
    buf.iter()
        .zip(want.iter())
        .position(|(a, b)| a != b)
        .map(|i| offset + i as u64)
}

/// Parses a byte count with an optional binary suffix: `4096`, `64k`, `1M`,
/// `2g`.
pub fn parse_size(s: &str) -> Option<u64> {
    let (num, mult) = match s.char_indices().last()? {
        (i, 'k' | 'K') => (&s[..i], 1 << 10),
        (i, 'm' | 'M') => (&s[..i], 1 << 20),
        (i, 'g' | 'G') => (&s[..i], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_depends_on_offset_and_seed() {
        let mut a = [0u8; 64];
        let mut b = [0u8; 64];
        fill_pattern(1, 0, &mut a);
        fill_pattern(1, 64, &mut b);
        assert_ne!(a, b);
        fill_pattern(2, 0, &mut b);
        assert_ne!(a, b);
    }

    #[test]
    fn unaligned_fill_matches_aligned() {
        let mut whole = [0u8; 100];
        fill_pattern(7, 0, &mut whole);
        let mut part = [0u8; 37];
        fill_pattern(7, 13, &mut part);
        assert_eq!(&whole[13..50], &part[..]);
        assert_eq!(first_mismatch(7, 13, &part), None);
        part[5] ^= 1;
        assert_eq!(first_mismatch(7, 13, &part), Some(18));
    }

    #[test]
    fn fast_fill_matches_bytewise_definition() {
        for off in 0..20u64 {
            let mut buf = [0u8; 37];
            fill_pattern(11, off, &mut buf);
            for (i, &b) in buf.iter().enumerate() {
                let pos = off + i as u64;
                assert_eq!(
                    b,
                    pattern_word(11, pos / 8).to_le_bytes()[(pos % 8) as usize]
                );
            }
        }
        let mut buf = [0u8; 9];
        fill_gen(3, 77, 1001, &mut buf);
        for (i, &b) in buf.iter().enumerate() {
            assert_eq!(b, gen_byte(3, 77, 1001 + i as u64));
        }
        let mut other = [0u8; 9];
        fill_gen(3, 78, 1001, &mut other);
        assert_ne!(buf, other);
    }

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32(0, b""), 0);
        assert_eq!(crc32(0, b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xcbf4_3926);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("64k"), Some(64 << 10));
        assert_eq!(parse_size("3M"), Some(3 << 20));
        assert_eq!(parse_size("1g"), Some(1 << 30));
        assert_eq!(parse_size(""), None);
        assert_eq!(parse_size("k"), None);
        assert_eq!(parse_size("-1"), None);
        assert_eq!(parse_size("99999999999g"), None);
    }
}
