//! The durability log of `rbfs-stress --powercut-writer`, its replay, and
//! the check of files found after a power cut against it.
//!
//! The writer prints one record a line, each flushed before the operation
//! it announces (W) or after the one it confirms (D, S):
//!
//! ```text
//! RBFSLOG 0 H 1 SEED FILES MAX_SIZE   header: version 1; files f0..f{FILES-1}
//!                                     exist, empty and durable (file and
//!                                     directory fsynced) from here on
//! RBFSLOG SEQ W FILE OFF LEN GEN      write GEN of LEN bytes at OFF is about
//!                                     to be issued (data: fill_gen(SEED, GEN))
//! RBFSLOG SEQ D FILE GEN              fsync/fdatasync of fFILE returned 0
//!                                     after all its writes up to GEN
//! RBFSLOG SEQ S FILE GEN              write GEN is durable by itself (an
//!                                     O_DSYNC write, or mmap + msync(MS_SYNC)
//!                                     of the range, completed)
//! RBFSLOG SEQ Z OPS                   the writer stopped by itself
//! ```
//!
//! Each line ends in ` #CRC` (8 hex digits: CRC-32 of the text before it),
//! so a record garbled or cut short on the console is not mistaken for a
//! different one. SEQ counts the lines from the header on, so lines lost on
//! the way to the host are noticed. Text before `RBFSLOG` on a line
//! (console noise) and lines without it are ignored; an unparseable last
//! record is taken to be cut off by the power cut and ignored, one
//! elsewhere is an error.
//!
//! Replay keeps, per file, the content with every logged write applied
//! (`cur`), the content known durable (`dur`: the content at the last D,
//! plus the ranges of S writes since, zero-filled up to them), and the
//! writes since the last D that are not known durable (`pending`, each cut
//! to the bytes that no later S covers). After a power cut, file fN must
//! have a size in `dur.len()..=cur.len()`, and each byte must equal its
//! durable value (0 beyond `dur.len()`) or the byte of one of the pending
//! writes covering it. (Writes are never truncated away in this mode, and
//! each file is written by one thread, so the order of its records is the
//! order of its operations.)

use crate::{crc32, fill_gen, gen_byte, hex};

pub const PREFIX: &str = "RBFSLOG";
pub const VERSION: u64 = 1;

/// One record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rec {
    Header {
        seed: u64,
        files: usize,
        max_size: u64,
    },
    Write {
        file: usize,
        off: u64,
        len: u64,
        gen: u64,
    },
    Durable {
        file: usize,
        gen: u64,
    },
    Synced {
        file: usize,
        gen: u64,
    },
    End {
        ops: u64,
    },
}

impl Rec {
    /// The log line of the record (without the newline).
    pub fn line(&self, seq: u64) -> String {
        let text = self.text(seq);
        format!("{text} #{:08x}", crc32(0, text.as_bytes()))
    }

    /// The line without its checksum.
    fn text(&self, seq: u64) -> String {
        match *self {
            Rec::Header {
                seed,
                files,
                max_size,
            } => format!("{PREFIX} {seq} H {VERSION} {seed} {files} {max_size}"),
            Rec::Write {
                file,
                off,
                len,
                gen,
            } => format!("{PREFIX} {seq} W {file} {off} {len} {gen}"),
            Rec::Durable { file, gen } => format!("{PREFIX} {seq} D {file} {gen}"),
            Rec::Synced { file, gen } => format!("{PREFIX} {seq} S {file} {gen}"),
            Rec::End { ops } => format!("{PREFIX} {seq} Z {ops}"),
        }
    }
}

/// A parsed record with its sequence number, or why it is malformed.
pub type Parsed = Result<(u64, Rec), String>;

/// Parses the record on `line`: None if the line holds none, an error if
/// it holds a malformed one.
pub fn parse_line(line: &str) -> Option<Parsed> {
    let at = line.find(PREFIX)?;
    let full = line[at..].trim_end();
    let bad = || Err(format!("malformed record '{full}'"));
    let Some((text, sum)) = full.rsplit_once(" #") else {
        return Some(bad());
    };
    if sum.len() != 8 || u32::from_str_radix(sum, 16) != Ok(crc32(0, text.as_bytes())) {
        return Some(bad());
    }
    let words: Vec<&str> = text.split(' ').collect();
    let nums: Option<Vec<u64>> = words
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != 0 && i != 2)
        .map(|(_, w)| w.parse().ok())
        .collect();
    let (Some(nums), Some(kind)) = (nums, words.get(2)) else {
        return Some(bad());
    };
    let file = |i: usize| usize::try_from(nums[i]).unwrap_or(usize::MAX);
    let rec = match (*kind, nums.len()) {
        ("H", 5) if nums[1] == VERSION => Rec::Header {
            seed: nums[2],
            files: file(3),
            max_size: nums[4],
        },
        ("W", 5) => Rec::Write {
            file: file(1),
            off: nums[2],
            len: nums[3],
            gen: nums[4],
        },
        ("D", 3) => Rec::Durable {
            file: file(1),
            gen: nums[2],
        },
        ("S", 3) => Rec::Synced {
            file: file(1),
            gen: nums[2],
        },
        ("Z", 2) => Rec::End { ops: nums[1] },
        _ => return Some(bad()),
    };
    Some(Ok((nums[0], rec)))
}

/// A range of one write's data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Piece {
    pub off: u64,
    pub len: u64,
    pub gen: u64,
}

impl Piece {
    pub fn end(&self) -> u64 {
        self.off + self.len
    }
}

/// What the log says about one file.
#[derive(Default, Clone, Debug)]
pub struct FileState {
    /// The content with every logged write applied.
    pub cur: Vec<u8>,
    /// The content known durable; its length is the durable size.
    pub dur: Vec<u8>,
    /// Writes (cut to the bytes not known durable) that may or may not
    /// have reached the disk, oldest first.
    pub pending: Vec<Piece>,
    /// Whole ranges of the last writes, for the S records.
    recent: Vec<Piece>,
    /// Generation of the last write.
    pub last_gen: u64,
    /// D records of this file.
    pub durable_points: u64,
    /// W records of this file.
    pub writes: u64,
}

/// Number of whole write ranges remembered for S records (more than the
/// writes of one AIO or io_uring batch).
const RECENT: usize = 64;

/// The replayed log.
#[derive(Debug)]
pub struct Replay {
    pub seed: u64,
    pub max_size: u64,
    pub files: Vec<FileState>,
    /// D records, all files.
    pub durable_points: u64,
    /// S records, all files.
    pub synced_writes: u64,
    /// Records replayed (from the last header on).
    pub records: u64,
    /// The writer's Z record was seen (it was not cut off).
    pub ended: bool,
    /// An unparseable last record was ignored.
    pub cut_tail: bool,
}

fn fs(f: usize, files: &mut [FileState]) -> Result<&mut FileState, String> {
    let n = files.len();
    files
        .get_mut(f)
        .ok_or_else(|| format!("file {f} out of range (0..{n})"))
}

fn apply(content: &mut Vec<u8>, seed: u64, off: u64, len: u64, gen: u64) {
    let (off, end) = (off as usize, (off + len) as usize);
    if content.len() < end {
        content.resize(end, 0);
    }
    fill_gen(seed, gen, off as u64, &mut content[off..end]);
}

/// Replays the records of `text` (the writer's output as captured) from
/// the last header on.
pub fn replay(text: &str) -> Result<Replay, String> {
    let mut recs: Vec<(usize, Parsed)> = text
        .lines()
        .enumerate()
        .filter_map(|(i, l)| parse_line(l).map(|r| (i + 1, r)))
        .collect();
    let cut_tail = matches!(recs.last(), Some((_, Err(_))));
    if cut_tail {
        recs.pop();
    }
    let start = recs
        .iter()
        .rposition(|(_, r)| matches!(r, Ok((_, Rec::Header { .. }))))
        .ok_or("no header record (RBFSLOG 0 H ...) in the log")?;
    let mut r: Option<Replay> = None;
    for (lineno, rec) in recs.drain(start..) {
        let (seq, rec) = rec.map_err(|e| format!("line {lineno}: {e}"))?;
        let err = |m: String| format!("line {lineno}: {}: {m}", rec.line(seq));
        let Some(rp) = r.as_mut() else {
            let Rec::Header {
                seed,
                files,
                max_size,
            } = rec
            else {
                unreachable!()
            };
            if seq != 0 || files == 0 || files > 1 << 16 || max_size > 1 << 40 {
                return Err(err("bad header".into()));
            }
            r = Some(Replay {
                seed,
                max_size,
                files: vec![FileState::default(); files],
                durable_points: 0,
                synced_writes: 0,
                records: 1,
                ended: false,
                cut_tail,
            });
            continue;
        };
        if seq != rp.records {
            return Err(err(format!(
                "sequence number {seq}, expected {}: log lines are missing",
                rp.records
            )));
        }
        rp.records += 1;
        if rp.ended {
            return Err(err("record after the end record".into()));
        }
        let seed = rp.seed;
        match rec {
            Rec::Header { .. } => unreachable!(),
            Rec::Write {
                file,
                off,
                len,
                gen,
            } => {
                let max = rp.max_size;
                let f = fs(file, &mut rp.files).map_err(err)?;
                if len == 0 || off.checked_add(len).is_none_or(|e| e > max) {
                    return Err(err(format!("range beyond the maximum size {max}")));
                }
                if gen <= f.last_gen {
                    return Err(err(format!(
                        "generation not above the file's last one {}",
                        f.last_gen
                    )));
                }
                apply(&mut f.cur, seed, off, len, gen);
                let p = Piece { off, len, gen };
                f.pending.push(p);
                if f.recent.len() == RECENT {
                    f.recent.remove(0);
                }
                f.recent.push(p);
                f.last_gen = gen;
                f.writes += 1;
            }
            Rec::Durable { file, gen } => {
                let f = fs(file, &mut rp.files).map_err(err)?;
                if gen != f.last_gen {
                    return Err(err(format!(
                        "durable point at generation {gen}, but the file's last write is {}",
                        f.last_gen
                    )));
                }
                f.dur.clone_from(&f.cur);
                f.pending.clear();
                f.durable_points += 1;
                rp.durable_points += 1;
            }
            Rec::Synced { file, gen } => {
                let f = fs(file, &mut rp.files).map_err(err)?;
                let Some(&w) = f.recent.iter().find(|p| p.gen == gen) else {
                    return Err(err(format!("no recent write of generation {gen}")));
                };
                apply(&mut f.dur, seed, w.off, w.len, w.gen);
                // This write and every earlier one are settled in w's range.
                let mut rest = Vec::with_capacity(f.pending.len() + 1);
                for p in f.pending.drain(..) {
                    if p.gen > gen || p.end() <= w.off || p.off >= w.end() {
                        rest.push(p);
                        continue;
                    }
                    if p.off < w.off {
                        rest.push(Piece {
                            off: p.off,
                            len: w.off - p.off,
                            gen: p.gen,
                        });
                    }
                    if p.end() > w.end() {
                        rest.push(Piece {
                            off: w.end(),
                            len: p.end() - w.end(),
                            gen: p.gen,
                        });
                    }
                }
                f.pending = rest;
                rp.synced_writes += 1;
            }
            Rec::End { .. } => rp.ended = true,
        }
    }
    Ok(r.expect("the header starts the replay"))
}

/// What checking one file found, when it is consistent.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FileCheck {
    /// Bytes compared (the file's size).
    pub bytes: u64,
    /// Bytes that differ from the last logged content, and bytes of it
    /// beyond the file's end: writes after the last durable point that
    /// did not (completely) reach the disk, which is allowed.
    pub unsynced_lost: u64,
}

/// Checks `actual` (a file's content after the power cut) against `st`;
/// the error is a report of everything wrong, first bad byte in detail.
pub fn check_file(
    seed: u64,
    name: &str,
    st: &FileState,
    actual: &[u8],
) -> Result<FileCheck, String> {
    let n = actual.len();
    let base = |p: usize| st.dur.get(p).copied().unwrap_or(0);
    let mut ok: Vec<bool> = (0..n).map(|p| actual[p] == base(p)).collect();
    let mut buf = Vec::new();
    for pc in &st.pending {
        let (s, e) = (pc.off as usize, (pc.end() as usize).min(n));
        if s >= e || ok[s..e].iter().all(|&b| b) {
            continue;
        }
        buf.resize(e - s, 0);
        fill_gen(seed, pc.gen, s as u64, &mut buf);
        for p in s..e {
            ok[p] |= actual[p] == buf[p - s];
        }
    }
    let bad = ok.iter().filter(|&&b| !b).count();
    let size_bad = n < st.dur.len() || n > st.cur.len();
    if bad == 0 && !size_bad {
        let differ = (0..n).filter(|&p| actual[p] != st.cur[p]).count();
        return Ok(FileCheck {
            bytes: n as u64,
            unsynced_lost: (differ + (st.cur.len() - n)) as u64,
        });
    }
    let mut rep = format!(
        "{name}: NOT CONSISTENT with the log: size {n} (durable size {}, last logged size {}), \
         {bad} bytes lost (neither their durable value nor that of a later write); \
         {} durable points, last write gen {}, {} writes pending",
        st.dur.len(),
        st.cur.len(),
        st.durable_points,
        st.last_gen,
        st.pending.len()
    );
    if n < st.dur.len() {
        rep.push_str(&format!(
            "\n  the file is {} bytes shorter than its durable size",
            st.dur.len() - n
        ));
    }
    if n > st.cur.len() {
        rep.push_str(&format!(
            "\n  the file is {} bytes longer than any logged write made it",
            n - st.cur.len()
        ));
    }
    if let Some(p) = ok.iter().position(|&b| !b) {
        let last = ok.iter().rposition(|&b| !b).unwrap_or(p);
        rep.push_str(&format!(
            "\n  first lost byte at offset {p} (0x{p:x}), last at {last}: got 0x{:02x}, durable value 0x{:02x}{}",
            actual[p],
            base(p),
            if p >= st.dur.len() { " (beyond the durable size: zero)" } else { "" }
        ));
        for pc in st
            .pending
            .iter()
            .filter(|pc| pc.off <= p as u64 && (p as u64) < pc.end())
        {
            rep.push_str(&format!(
                "\n  pending write gen {} [{}, {}) would give 0x{:02x}",
                pc.gen,
                pc.off,
                pc.end(),
                gen_byte(seed, pc.gen, p as u64)
            ));
        }
        let (s, e) = (p.saturating_sub(8) & !7, (p.saturating_sub(8) & !7) + 32);
        let dur: Vec<u8> = (s..e.min(n)).map(base).collect();
        rep.push_str(&format!(
            "\n  durable @{s}: {}\n  got     @{s}: {}",
            hex(&dur),
            hex(&actual[s..e.min(n)])
        ));
        if s < st.cur.len() {
            rep.push_str(&format!(
                "\n  last    @{s}: {}",
                hex(&st.cur[s..e.min(st.cur.len())])
            ));
        }
    }
    Err(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(recs: &[Rec]) -> String {
        let mut s = String::from("boot noise\n");
        for (i, r) in recs.iter().enumerate() {
            s.push_str(&r.line(i as u64));
            s.push('\n');
        }
        s
    }

    fn data(seed: u64, gen: u64, off: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0u8; len];
        fill_gen(seed, gen, off, &mut b);
        b
    }

    #[test]
    fn lines_round_trip() {
        for r in [
            Rec::Header {
                seed: 5,
                files: 3,
                max_size: 1 << 20,
            },
            Rec::Write {
                file: 2,
                off: 4095,
                len: 2,
                gen: 1 << 40 | 7,
            },
            Rec::Durable { file: 1, gen: 9 },
            Rec::Synced { file: 0, gen: 3 },
            Rec::End { ops: 77 },
        ] {
            let l = format!("[  1.234] noise {}\r", r.line(42));
            assert_eq!(parse_line(&l), Some(Ok((42, r))));
        }
        assert_eq!(parse_line("nothing here"), None);
        assert!(matches!(parse_line("RBFSLOG 3 W 1 2"), Some(Err(_))));
        assert!(matches!(parse_line("RBFSLOG 3 X 1 2"), Some(Err(_))));
        // Cut short, or a digit changed: the checksum no longer matches.
        let l = Rec::Write {
            file: 1,
            off: 4096,
            len: 1000,
            gen: 77,
        }
        .line(5);
        assert!(matches!(parse_line(&l), Some(Ok(_))));
        assert!(matches!(parse_line(&l[..l.len() - 1]), Some(Err(_))));
        assert!(matches!(
            parse_line(&l.replace("1000", "1001")),
            Some(Err(_))
        ));
        let cut = l.split(" #").next().unwrap();
        assert!(matches!(parse_line(cut), Some(Err(_))));
    }

    #[test]
    fn durable_synced_and_pending() {
        let seed = 9;
        let h = Rec::Header {
            seed,
            files: 1,
            max_size: 1 << 20,
        };
        let w = |off, len, gen| Rec::Write {
            file: 0,
            off,
            len,
            gen,
        };
        let text = log(&[
            h,
            w(0, 100, 1),
            Rec::Durable { file: 0, gen: 1 },
            w(50, 100, 2),
            w(120, 10, 3),
            Rec::Synced { file: 0, gen: 3 },
            w(200, 10, 4),
        ]);
        let r = replay(&text).unwrap();
        let f = &r.files[0];
        assert_eq!((f.dur.len(), f.cur.len()), (130, 210));
        // gen 2 is cut around gen 3's synced range; gen 4 is whole.
        assert_eq!(
            f.pending,
            vec![
                Piece {
                    off: 50,
                    len: 70,
                    gen: 2
                },
                Piece {
                    off: 130,
                    len: 20,
                    gen: 2
                },
                Piece {
                    off: 200,
                    len: 10,
                    gen: 4
                },
            ]
        );
        // The newest content is consistent, and so is the durable one.
        assert_eq!(check_file(seed, "f", f, &f.cur).unwrap().unsynced_lost, 0);
        let c = check_file(seed, "f", f, &f.dur).unwrap();
        assert_eq!(c.bytes, 130);
        // A gen 1 byte where gen 3 was synced is lost.
        let mut bad = f.cur.clone();
        bad[125] = data(seed, 1, 125, 1)[0];
        assert!(check_file(seed, "f", f, &bad)
            .unwrap_err()
            .contains("offset 125"));
        // Shorter than the durable size.
        assert!(check_file(seed, "f", f, &f.cur[..129]).is_err());
        // Garbage in the hole beyond the durable size.
        let mut bad = f.cur.clone();
        bad[170] = 1;
        assert!(check_file(seed, "f", f, &bad).is_err());
        // A cut-off last line is ignored, a gap in the sequence is not.
        assert!(replay(&format!("{text}RBFSLOG 8 W 0 1")).unwrap().cut_tail);
        let garbled = text.replace("RBFSLOG 3 W 0 50", "RBFSLOG 3 W 0 5[ 1.0] noise");
        assert!(replay(&garbled).unwrap_err().contains("malformed"));
        let gap = text.replace(&w(50, 100, 2).line(3), &w(50, 100, 2).line(33));
        assert!(replay(&gap).unwrap_err().contains("missing"));
        let wrong_d = log(&[h, w(0, 1, 1), w(1, 1, 2), Rec::Durable { file: 0, gen: 1 }]);
        assert!(replay(&wrong_d).is_err());
    }
}
