//! rbfs-pattern: write or verify position-dependent test data.
//!
//! ```text
//! rbfs-pattern write  FILE SIZE [--seed N] [--bs BYTES] [--offset BYTES] [--fsync] [--dsync]
//! rbfs-pattern verify FILE SIZE [--seed N] [--bs BYTES] [--offset BYTES]
//! ```
//!
//! `write` stores SIZE bytes of the pattern at OFFSET (the pattern is a
//! function of the absolute file offset, so partial rewrites compose);
//! `verify` reads them back and reports the first byte that differs.
//! `--dsync` opens the file `O_DSYNC` (every write returns once on disk).
//! Exit status: 0 success, 1 mismatch, 2 usage or I/O error.

use rbfs_guest_tools::{fill_pattern, first_mismatch, parse_size};
use std::fs::OpenOptions;
use std::os::unix::fs::FileExt;
use std::process::ExitCode;

struct Args {
    write: bool,
    path: String,
    size: u64,
    seed: u64,
    bs: usize,
    offset: u64,
    fsync: bool,
    dsync: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().ok_or("missing mode")?;
    let write = match mode.as_str() {
        "write" => true,
        "verify" => false,
        m => return Err(format!("unknown mode '{m}'")),
    };
    let path = it.next().ok_or("missing FILE")?;
    let size = it.next().and_then(|s| parse_size(&s)).ok_or("missing or bad SIZE")?;
    let mut a = Args { write, path, size, seed: 1, bs: 64 << 10, offset: 0, fsync: false, dsync: false };
    while let Some(opt) = it.next() {
        let mut val = || it.next().and_then(|s| parse_size(&s)).ok_or(format!("bad value for {opt}"));
        match opt.as_str() {
            "--seed" => a.seed = val()?,
            "--bs" => a.bs = val()?.max(1) as usize,
            "--offset" => a.offset = val()?,
            "--fsync" => a.fsync = true,
            "--dsync" => a.dsync = true,
            _ => return Err(format!("unknown option '{opt}'")),
        }
    }
    Ok(a)
}

fn run(a: &Args) -> Result<bool, String> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_DSYNC on x86-64 Linux.
    const O_DSYNC: i32 = 0o10000;
    let file = OpenOptions::new()
        .read(true)
        .write(a.write)
        .create(a.write)
        .custom_flags(if a.dsync { O_DSYNC } else { 0 })
        .open(&a.path)
        .map_err(|e| format!("{}: {e}", a.path))?;
    let mut buf = vec![0u8; a.bs];
    let mut done = 0u64;
    while done < a.size {
        let n = (a.size - done).min(a.bs as u64) as usize;
        let off = a.offset + done;
        if a.write {
            fill_pattern(a.seed, off, &mut buf[..n]);
            file.write_all_at(&buf[..n], off).map_err(|e| format!("{}: write at {off}: {e}", a.path))?;
        } else {
            file.read_exact_at(&mut buf[..n], off).map_err(|e| format!("{}: read at {off}: {e}", a.path))?;
            if let Some(bad) = first_mismatch(a.seed, off, &buf[..n]) {
                eprintln!("rbfs-pattern: {}: mismatch at byte {bad}", a.path);
                return Ok(false);
            }
        }
        done += n as u64;
    }
    if a.write && a.fsync {
        file.sync_all().map_err(|e| format!("{}: fsync: {e}", a.path))?;
    }
    Ok(true)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rbfs-pattern: {e}");
            eprintln!("usage: rbfs-pattern write|verify FILE SIZE [--seed N] [--bs BYTES] [--offset BYTES] [--fsync] [--dsync]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rbfs-pattern: {e}");
            ExitCode::from(2)
        }
    }
}
