//! A file's data and holes as the kernel reports them: by `lseek(2)` with
//! `SEEK_DATA`/`SEEK_HOLE`, and by the `FS_IOC_FIEMAP` ioctl.

use crate::{os_fail, Fail, Res};
use std::fs::File;
use std::os::fd::AsRawFd;

/// `_IOWR('f', 11, struct fiemap)`.
const FS_IOC_FIEMAP: libc::c_ulong = 0xC020_660B;
const FIEMAP_EXTENT_LAST: u32 = 0x1;
/// Extents asked for per call: few, so that the continuation is tested.
const BATCH: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct FiemapExtent {
    logical: u64,
    physical: u64,
    length: u64,
    reserved64: [u64; 2],
    flags: u32,
    reserved: [u32; 3],
}

#[repr(C)]
#[derive(Default)]
struct Fiemap {
    start: u64,
    length: u64,
    flags: u32,
    mapped_extents: u32,
    extent_count: u32,
    reserved: u32,
    extents: [FiemapExtent; BATCH],
}

/// `lseek(fd, pos, whence)`: `Ok(None)` for `ENXIO`.
fn seek(f: &File, pos: u64, whence: libc::c_int, path: &str) -> Res<Option<u64>> {
    // SAFETY: lseek on an open descriptor has no memory effects.
    let r = unsafe { libc::lseek(f.as_raw_fd(), pos as libc::off_t, whence) };
    if r >= 0 {
        return Ok(Some(r as u64));
    }
    if std::io::Error::last_os_error().raw_os_error() == Some(libc::ENXIO) {
        return Ok(None);
    }
    Err(os_fail(format_args!("{path}: lseek({pos}, {whence})")))
}

/// The data segments `[start, end)` found by alternating `SEEK_DATA` and
/// `SEEK_HOLE` from offset 0.
fn seek_segments(f: &File, path: &str) -> Res<Vec<(u64, u64)>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while let Some(start) = seek(f, pos, libc::SEEK_DATA, path)? {
        let end = seek(f, start, libc::SEEK_HOLE, path)?.ok_or_else(|| {
            Fail::Mismatch(format!("{path}: SEEK_HOLE from data at {start}: ENXIO"))
        })?;
        if end <= start {
            return Err(Fail::Mismatch(format!(
                "{path}: SEEK_HOLE from {start} went back to {end}"
            )));
        }
        out.push((start, end));
        pos = end;
    }
    // From inside a segment or a hole, both seeks agree with the walk.
    let size = f
        .metadata()
        .map_err(|e| Fail::Io(format!("{path}: {e}")))?
        .len();
    let mut hole_from = 0;
    for (i, &(s, e)) in out.iter().enumerate() {
        let mut probes = vec![(s + 1, Some(s + 1), Some(e))];
        if hole_from + 1 < s {
            probes.push((hole_from + 1, Some(s), Some(hole_from + 1)));
        }
        if i + 1 == out.len() && e + 1 < size {
            probes.push((e + 1, None, Some(e + 1)));
        }
        for (at, want_data, want_hole) in probes {
            if at >= size || (at == s + 1 && at >= e) {
                continue;
            }
            let got = (
                seek(f, at, libc::SEEK_DATA, path)?,
                seek(f, at, libc::SEEK_HOLE, path)?,
            );
            if got != (want_data, want_hole) {
                return Err(Fail::Mismatch(format!(
                    "{path}: from {at}: SEEK_DATA/SEEK_HOLE gave {got:?}, want {:?}",
                    (want_data, want_hole)
                )));
            }
        }
        hole_from = e;
    }
    Ok(out)
}

/// Every extent FIEMAP reports for the whole file, `BATCH` per call.
fn fiemap_extents(f: &File, path: &str) -> Res<Vec<FiemapExtent>> {
    let mut out: Vec<FiemapExtent> = Vec::new();
    let mut start = 0u64;
    loop {
        let mut fm = Fiemap {
            start,
            length: u64::MAX - start,
            extent_count: BATCH as u32,
            ..Default::default()
        };
        // SAFETY: `fm` is a `struct fiemap` with room for `extent_count`
        // extents, as the ioctl expects.
        if unsafe { libc::ioctl(f.as_raw_fd(), FS_IOC_FIEMAP, &mut fm) } != 0 {
            return Err(os_fail(format_args!("{path}: FS_IOC_FIEMAP from {start}")));
        }
        let n = fm.mapped_extents as usize;
        if n > BATCH {
            return Err(Fail::Mismatch(format!(
                "{path}: FIEMAP mapped {n} of {BATCH} extents"
            )));
        }
        out.extend_from_slice(&fm.extents[..n]);
        match out.last() {
            Some(e) if n == BATCH && e.flags & FIEMAP_EXTENT_LAST == 0 => {
                start = e.logical + e.length
            }
            _ => return Ok(out),
        }
    }
}

/// `rbfs-io map FILE`: prints `data START END` for each data segment found
/// by SEEK_DATA/SEEK_HOLE, then `extents N` and `covered START END` for the
/// FIEMAP extents with logically adjacent ones merged, so that a test can
/// compare both with the expected layout, then `physical START END` for
/// the device byte ranges the extents take (sorted, adjacent ones merged).  Checks that the extents are in
/// order, do not overlap on the file or on the device, are block-aligned
/// to `align`, and that only the last is flagged `FIEMAP_EXTENT_LAST`.
pub fn run(args: &[String]) -> Res<String> {
    let [path, align] = args else {
        return Err(Fail::Usage("map: expected FILE ALIGN".into()));
    };
    let align: u64 = align
        .parse()
        .ok()
        .filter(|&a: &u64| a.is_power_of_two())
        .ok_or_else(|| Fail::Usage(format!("map: bad ALIGN '{align}'")))?;
    let f = File::open(path).map_err(|e| Fail::Io(format!("{path}: {e}")))?;
    let mut lines = Vec::new();
    for (s, e) in seek_segments(&f, path)? {
        lines.push(format!("data {s} {e}"));
    }
    let ext = fiemap_extents(&f, path)?;
    lines.push(format!("extents {}", ext.len()));
    let bad = |what: String| Fail::Mismatch(format!("{path}: FIEMAP: {what}"));
    let mut phys: Vec<(u64, u64)> = Vec::new();
    let mut covered: Vec<(u64, u64)> = Vec::new();
    for (i, e) in ext.iter().enumerate() {
        let last = i + 1 == ext.len();
        let want = if last { FIEMAP_EXTENT_LAST } else { 0 };
        if e.flags != want {
            return Err(bad(format!(
                "extent {i} has flags {:#x}, want {want:#x}",
                e.flags
            )));
        }
        if e.length == 0 || (e.logical | e.physical | e.length) % align != 0 {
            return Err(bad(format!(
                "extent {i} ({} {} {}) not aligned to {align}",
                e.logical, e.physical, e.length
            )));
        }
        match covered.last_mut() {
            Some((_, end)) if *end > e.logical => {
                return Err(bad(format!(
                    "extent {i} at {} overlaps the one before",
                    e.logical
                )))
            }
            Some((_, end)) if *end == e.logical => *end += e.length,
            _ => covered.push((e.logical, e.logical + e.length)),
        }
        phys.push((e.physical, e.physical + e.length));
    }
    phys.sort_unstable();
    if phys.windows(2).any(|w| w[0].1 > w[1].0) {
        return Err(bad("two extents overlap on the device".into()));
    }
    for (s, e) in covered {
        lines.push(format!("covered {s} {e}"));
    }
    let mut merged: Vec<(u64, u64)> = Vec::new();
    for (s, e) in phys {
        match merged.last_mut() {
            Some((_, end)) if *end == s => *end = e,
            _ => merged.push((s, e)),
        }
    }
    for (s, e) in merged {
        lines.push(format!("physical {s} {e}"));
    }
    Ok(lines.join("\n"))
}
