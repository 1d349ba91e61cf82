//! Shared code of the guest test programs.

/// The pattern byte stream: every 8-byte word is a hash of its offset and a
/// seed, so data written to the wrong place, stale data and zeroes are all
/// told apart from the expected content.
pub fn pattern_word(seed: u64, word_index: u64) -> u64 {
    // splitmix64 of (seed, index)
    let mut z = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ word_index.wrapping_add(0x632b_e59b_d9b4_e019);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Fills `buf` with the pattern bytes for file offsets `offset..offset+len`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        let pos = offset + i as u64;
        let word = pattern_word(seed, pos / 8);
        *b = word.to_le_bytes()[(pos % 8) as usize];
    }
}

/// First offset in `buf` (holding file bytes from `offset`) that differs
/// from the pattern.
pub fn first_mismatch(seed: u64, offset: u64, buf: &[u8]) -> Option<u64> {
    let mut want = vec![0u8; buf.len()];
    fill_pattern(seed, offset, &mut want);
    buf.iter().zip(want.iter()).position(|(a, b)| a != b).map(|i| offset + i as u64)
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
