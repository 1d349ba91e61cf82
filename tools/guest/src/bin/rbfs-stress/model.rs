//! The model dump of `--save-model` and the check of `--check-only`.
//!
//! ```text
//! rbfs-stress-model 1 SEED FILES\n
//! f0 SIZE CRC32\n<SIZE bytes>\n        (CRC32 in hex, of the content)
//! f1 missing\n                         (the name must not exist)
//! ...
//! ```

use crate::stress::Shared;
use crate::{Fail, Stats};
use rbfs_guest_tools::{crc32, hex};
use std::io::{self, Write};
use std::path::Path;

/// Writes the final model of a run to `path` (and fsyncs it).
pub fn save(sh: &Shared, path: &Path) -> io::Result<()> {
    let mut out = io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "rbfs-stress-model 1 {} {}",
        sh.cfg.seed,
        sh.slots.len()
    )?;
    for (i, slot) in sh.slots.iter().enumerate() {
        let g = slot.lock().unwrap_or_else(|p| p.into_inner());
        if g.file.is_none() {
            writeln!(out, "f{i} missing")?;
            continue;
        }
        writeln!(out, "f{i} {} {:08x}", g.model.len(), crc32(0, &g.model))?;
        out.write_all(&g.model)?;
        out.write_all(b"\n")?;
    }
    let f = out.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()
}

/// Takes the text up to the next newline from `buf` at `*pos`.
fn take_line<'a>(buf: &'a [u8], pos: &mut usize) -> Option<&'a str> {
    let rest = &buf[*pos..];
    let n = rest.iter().position(|&b| b == b'\n')?;
    *pos += n + 1;
    std::str::from_utf8(&rest[..n]).ok()
}

/// Checks every file of the dump against DIR; returns the number of files.
pub fn check(dir: &Path, model_path: &Path, stats: &Stats) -> Result<usize, Fail> {
    let buf = std::fs::read(model_path)
        .map_err(|e| Fail::Error(format!("{}: {e}", model_path.display())))?;
    let bad = |what: &str| {
        Fail::Error(format!(
            "{}: not a model dump: {what}",
            model_path.display()
        ))
    };
    let mut pos = 0;
    let header = take_line(&buf, &mut pos).ok_or_else(|| bad("no header"))?;
    let h: Vec<&str> = header.split(' ').collect();
    let files: usize = match h[..] {
        ["rbfs-stress-model", "1", _seed, n] => n.parse().map_err(|_| bad("header"))?,
        _ => return Err(bad("header")),
    };
    for i in 0..files {
        let line = take_line(&buf, &mut pos).ok_or_else(|| bad("truncated"))?;
        let w: Vec<&str> = line.split(' ').collect();
        let name = format!("f{i}");
        let path = dir.join(&name);
        if w[..] == [name.as_str(), "missing"] {
            match std::fs::symlink_metadata(&path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Fail::Error(format!("{}: {e}", path.display()))),
                Ok(_) => {
                    return Err(Fail::Mismatch(format!(
                        "{}: exists, but the model says it must not",
                        path.display()
                    )))
                }
            }
        }
        let (size, crc) = match w[..] {
            [n, s, c] if n == name => (
                s.parse::<usize>().map_err(|_| bad(line))?,
                u32::from_str_radix(c, 16).map_err(|_| bad(line))?,
            ),
            _ => return Err(bad(line)),
        };
        let model = buf.get(pos..pos + size).ok_or_else(|| bad("truncated"))?;
        pos += size + 1;
        if crc32(0, model) != crc {
            return Err(bad(&format!("checksum of {name} wrong")));
        }
        let got = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Fail::Mismatch(format!(
                    "{}: missing; the model has {size} bytes",
                    path.display()
                )))
            }
            Err(e) => return Err(Fail::Error(format!("{}: {e}", path.display()))),
        };
        stats.add_verified(got.len() as u64);
        if got != model {
            let first = got
                .iter()
                .zip(model)
                .position(|(a, b)| a != b)
                .unwrap_or(got.len().min(size));
            let differ = got.iter().zip(model).filter(|(a, b)| a != b).count();
            let s = first.saturating_sub(8) & !7;
            return Err(Fail::Mismatch(format!(
                "{}: size {} (model {size}), {differ} bytes differ, first at offset {first}\n  expected @{s}: {}\n  got      @{s}: {}",
                path.display(),
                got.len(),
                hex(&model[s.min(size)..(s + 32).min(size)]),
                hex(&got[s.min(got.len())..(s + 32).min(got.len())]),
            )));
        }
    }
    Ok(files)
}
