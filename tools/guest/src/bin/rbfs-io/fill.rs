//! Fill a directory with pattern files until ENOSPC, and check them later.

use crate::{close_checked, Fail, Res};
use rbfs_guest_tools::{fill_pattern, first_mismatch};
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};

const CHUNK: usize = 64 << 10;

fn is_enospc(e: &std::io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOSPC)
}

/// Writes DIR/fill.N (seed N) of at most `file_size` bytes each until a
/// create or write fails with ENOSPC; fsyncs the last file.
pub fn fill(dir: &str, file_size: u64) -> Res<String> {
    let mut buf = vec![0u8; CHUNK];
    let (mut files, mut bytes) = (0u64, 0u64);
    // The file being written, kept open so the last one can be fsynced.
    let mut cur: Option<(File, String)> = None;
    'files: for idx in 0u64.. {
        let name = format!("{dir}/fill.{idx}");
        let file = match OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&name)
        {
            Ok(f) => f,
            Err(e) if is_enospc(&e) => break,
            Err(e) => return Err(Fail::Io(format!("{name}: create: {e}"))),
        };
        if let Some((prev, prev_name)) = cur.replace((file, name)) {
            close_checked(prev, &prev_name)?;
        }
        files += 1;
        let (mut file, name) = match &cur {
            Some((f, n)) => (f, n),
            None => unreachable!(),
        };
        let mut off = 0u64;
        while off < file_size {
            let n = (file_size - off).min(CHUNK as u64) as usize;
            fill_pattern(idx, off, &mut buf[..n]);
            let mut w = 0;
            while w < n {
                match file.write(&buf[w..n]) {
                    Ok(0) => {
                        return Err(Fail::Io(format!(
                            "{name}: write at {}: wrote nothing",
                            off + w as u64
                        )))
                    }
                    Ok(k) => {
                        w += k;
                        bytes += k as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if is_enospc(&e) => break 'files,
                    Err(e) => {
                        return Err(Fail::Io(format!(
                            "{name}: write at {}: {e}",
                            off + w as u64
                        )))
                    }
                }
            }
            off += n as u64;
        }
    }
    if let Some((file, name)) = cur {
        match file.sync_all() {
            Ok(()) => {}
            Err(e) if is_enospc(&e) => {}
            Err(e) => return Err(Fail::Io(format!("{name}: fsync: {e}"))),
        }
        close_checked(file, &name)?;
    }
    Ok(format!("fill: {files} files, {bytes} bytes before ENOSPC"))
}

/// Checks every DIR/fill.N against the pattern of seed N over its size.
pub fn verify(dir: &str) -> Res<String> {
    let entries = std::fs::read_dir(dir).map_err(|e| Fail::Io(format!("{dir}: {e}")))?;
    let mut idxs = Vec::new();
    for ent in entries {
        let ent = ent.map_err(|e| Fail::Io(format!("{dir}: readdir: {e}")))?;
        let name = ent.file_name();
        let Some(idx) = name
            .to_str()
            .and_then(|n| n.strip_prefix("fill."))
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        if name.to_str() == Some(&format!("fill.{idx}")) {
            idxs.push(idx);
        }
    }
    idxs.sort_unstable();
    if let Some(i) = idxs
        .iter()
        .enumerate()
        .position(|(i, &idx)| idx != i as u64)
    {
        return Err(Fail::Mismatch(format!(
            "{dir}/fill.{i} missing, fill.{} exists",
            idxs[i]
        )));
    }
    let mut buf = vec![0u8; CHUNK];
    let mut bytes = 0u64;
    for &idx in &idxs {
        let name = format!("{dir}/fill.{idx}");
        let file = File::open(&name).map_err(|e| Fail::Io(format!("{name}: open: {e}")))?;
        let size = file
            .metadata()
            .map_err(|e| Fail::Io(format!("{name}: fstat: {e}")))?
            .len();
        let mut off = 0u64;
        while off < size {
            let n = (size - off).min(CHUNK as u64) as usize;
            file.read_exact_at(&mut buf[..n], off)
                .map_err(|e| Fail::Io(format!("{name}: read at {off}: {e}")))?;
            if let Some(bad) = first_mismatch(idx, off, &buf[..n]) {
                return Err(Fail::Mismatch(format!(
                    "{name}: mismatch at byte {bad} of {size}"
                )));
            }
            off += n as u64;
        }
        bytes += size;
    }
    Ok(format!(
        "fill-verify: {} files, {bytes} bytes ok",
        idxs.len()
    ))
}
