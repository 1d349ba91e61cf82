//! rbfs-io: write the rbfs-pattern test data through other I/O paths.
//!
//! ```text
//! rbfs-io aio   FILE SIZE [--bs B] [--qd Q] [--seed S] [--offset O] [--dsync] [--rwf-dsync] [--create]
//! rbfs-io uring FILE SIZE [--bs B] [--qd Q] [--seed S] [--offset O] [--dsync] [--rwf-dsync] [--create]
//! rbfs-io mmap  FILE SIZE [--seed S] [--offset O] [--create]
//! rbfs-io fill  DIR [--file-size BYTES]
//! rbfs-io fill-verify DIR
//! rbfs-io rename OLD NEW [--noreplace] [--exchange] [--whiteout]
//! rbfs-io map FILE ALIGN
//! rbfs-io attr FILE [+LETTERS|-LETTERS]...
//! rbfs-io handle save PATH OUT | open MOUNT IN
//! ```
//!
//! All of them write the byte stream of `rbfs-pattern` (a function of seed
//! and absolute file offset), so what they write verifies with
//! `rbfs-pattern verify FILE SIZE --seed S --offset O` and vice versa.
//!
//! `aio` writes SIZE bytes at OFFSET with Linux native AIO
//! (`io_setup`/`io_submit`/`io_getevents`, `IOCB_CMD_PWRITE`), `uring` with
//! io_uring (`IORING_OP_WRITE`): requests of B bytes (default 4096), up to Q
//! (default 1) in flight, every completion checked to have written the whole
//! request. `--dsync` opens the file `O_DSYNC`; `--rwf-dsync` sets
//! `RWF_DSYNC` on every request instead; `--create` adds `O_CREAT` (0644).
//!
//! `mmap` extends the file with `ftruncate` if it is shorter than
//! OFFSET+SIZE, maps the covering pages `MAP_SHARED`, stores the pattern
//! through the mapping, then `msync(MS_SYNC)`, `munmap`, `close`. A SIGBUS
//! while storing is reported as an I/O error.
//!
//! `fill` creates DIR/fill.0, DIR/fill.1, ... (seed = file index, files of
//! at most `--file-size` bytes, default 1M, written in 64 KiB chunks) until a
//! create or write fails with ENOSPC, then fsyncs the last file (ENOSPC from
//! that fsync is accepted). `fill-verify` checks every DIR/fill.N against the
//! pattern with seed N over its whole size; the numbers must run 0..N-1
//! without gaps.
//!
//! `rename` calls `renameat2(AT_FDCWD, OLD, AT_FDCWD, NEW, flags)` with
//! `RENAME_NOREPLACE` (1), `RENAME_EXCHANGE` (2) and `RENAME_WHITEOUT` (4)
//! as given, and prints `rename: OLD -> NEW (noreplace|exchange|whiteout)`
//! (the flags set, or `none`). If the call fails it prints
//! `rbfs-io: rename: OLD -> NEW: <strerror> (errno N)` to stderr, e.g.
//! "File exists" or "Invalid argument", for shell tests to grep.
//!
//! `map` prints the file's data segments as `lseek(2)`'s `SEEK_DATA` and
//! `SEEK_HOLE` find them (`data START END`), then the number of `FIEMAP`
//! extents and their coverage (`covered START END`, adjacent extents
//! merged) and the device byte ranges they take (`physical START END`,
//! sorted and merged), after checking the extents' order, alignment to ALIGN bytes,
//! flags (`FIEMAP_EXTENT_LAST` on the last alone) and that none overlap on
//! the device (exit 1 otherwise).
//!
//! `attr` changes the inode's attribute flags as `chattr` does
//! (`FS_IOC_GETFLAGS`, then `FS_IOC_SETFLAGS` with the letters added or
//! removed; letters `S` sync, `i` immutable, `a` append only, `d` no dump,
//! `A` no atime), one change after the other, then prints `attr: FILE
//! flags=LETTERS statx=LETTERS mask=LETTERS`: the flags as read back, and
//! `statx`'s `stx_attributes` and `stx_attributes_mask` (letters `i`, `a`,
//! `d`; `-` for none).  A failing call prints `rbfs-io: attr: FILE: CALL:
//! <strerror> (errno N)`.
//!
//! `handle save` stores PATH's file handle (`name_to_handle_at`) in OUT
//! and prints `handle: PATH type=T bytes=N`; `handle open` opens the handle
//! saved in IN read-only (`open_by_handle_at` through MOUNT) and prints
//! `handle: opened WHERE size=S`, WHERE being the path the kernel found for
//! it.  A failing call prints `rbfs-io: handle: CALL: <strerror> (errno N)`
//! ("Stale file handle" for a deleted file).
//!
//! Each prints one line saying what was done. Exit status: 0 success (for
//! `fill`: ended on ENOSPC), 1 data mismatch, 2 usage or I/O error.

mod aio;
mod attr;
mod fill;
mod handle;
mod map;
mod mmap;
mod rename;
mod uring;

use rbfs_guest_tools::parse_size;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::IntoRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::process::ExitCode;

const USAGE: &str = "usage: rbfs-io aio|uring FILE SIZE [--bs B] [--qd Q] [--seed S] [--offset O] [--dsync] [--rwf-dsync] [--create]
       rbfs-io mmap FILE SIZE [--seed S] [--offset O] [--create]
       rbfs-io fill DIR [--file-size BYTES]
       rbfs-io fill-verify DIR
       rbfs-io rename OLD NEW [--noreplace] [--exchange] [--whiteout]
       rbfs-io map FILE ALIGN
       rbfs-io attr FILE [+LETTERS|-LETTERS]...
       rbfs-io handle save PATH OUT | open MOUNT IN";

/// Why a subcommand failed; decides the exit status.
pub enum Fail {
    /// Bad command line (exit 2, with the usage text).
    Usage(String),
    /// A system call failed or returned something unexpected (exit 2).
    Io(String),
    /// The data read back differs from the pattern (exit 1).
    Mismatch(String),
}

pub type Res<T> = Result<T, Fail>;

/// `Fail::Io` for the calling thread's errno.
pub fn os_fail(what: impl std::fmt::Display) -> Fail {
    Fail::Io(format!("{what}: {}", io::Error::last_os_error()))
}

/// `Fail::Io` for a negative errno result.
pub fn errno_fail(what: impl std::fmt::Display, neg_errno: i64) -> Fail {
    let e = i32::try_from(-neg_errno).unwrap_or(i32::MAX);
    Fail::Io(format!("{what}: {}", io::Error::from_raw_os_error(e)))
}

/// Options of the sequential writers (aio, uring, mmap).
pub struct WriteArgs {
    pub path: String,
    pub size: u64,
    pub bs: usize,
    pub qd: usize,
    pub seed: u64,
    pub offset: u64,
    pub dsync: bool,
    pub rwf_dsync: bool,
    pub create: bool,
}

impl WriteArgs {
    /// Opens the target file write-only with the requested flags.
    pub fn open(&self) -> Res<File> {
        let mut flags = 0;
        if self.dsync {
            flags |= libc::O_DSYNC;
        }
        OpenOptions::new()
            .write(true)
            .create(self.create)
            .mode(0o644)
            .custom_flags(flags)
            .open(&self.path)
            .map_err(|e| Fail::Io(format!("{}: open: {e}", self.path)))
    }

    /// Number of requests of at most `bs` bytes covering `size`.
    pub fn requests(&self) -> u64 {
        self.size.div_ceil(self.bs as u64)
    }

    /// File offset and length of request `i`.
    pub fn request(&self, i: u64) -> (u64, usize) {
        let start = i * self.bs as u64;
        (
            self.offset + start,
            (self.size - start).min(self.bs as u64) as usize,
        )
    }

    /// "aio", "aio-dsync", "uring-rwf-dsync", ...
    pub fn label(&self, engine: &str) -> String {
        let mut s = engine.to_string();
        if self.dsync {
            s.push_str("-dsync");
        }
        if self.rwf_dsync {
            s.push_str("-rwf-dsync");
        }
        s
    }

    /// The summary line of aio and uring.
    pub fn summary(&self, engine: &str) -> String {
        format!(
            "{}: {} writes of {} bytes at queue depth {}, {} bytes",
            self.label(engine),
            self.requests(),
            self.bs,
            self.qd,
            self.size
        )
    }
}

/// Closes `file`, reporting the error `Drop` would swallow.
pub fn close_checked(file: File, path: &str) -> Res<()> {
    // SAFETY: the descriptor is owned by `file` and closed exactly once here.
    if unsafe { libc::close(file.into_raw_fd()) } != 0 {
        return Err(os_fail(format_args!("{path}: close")));
    }
    Ok(())
}

pub fn cstring(path: &str) -> Res<CString> {
    CString::new(path).map_err(|_| Fail::Usage(format!("{path}: path contains a NUL byte")))
}

/// Returns the mode, the path and options in a `WriteArgs` (FILE or DIR in
/// `path`), and the `--file-size` of `fill`.
fn parse_args(args: &[String]) -> Res<(String, WriteArgs, u64)> {
    let usage = Fail::Usage;
    let mode = args
        .first()
        .ok_or_else(|| usage("missing mode".into()))?
        .clone();
    let (npos, opts): (usize, &[&str]) = match mode.as_str() {
        "aio" | "uring" => (
            2,
            &[
                "--bs",
                "--qd",
                "--seed",
                "--offset",
                "--dsync",
                "--rwf-dsync",
                "--create",
            ],
        ),
        "mmap" => (2, &["--seed", "--offset", "--create"]),
        "fill" => (1, &["--file-size"]),
        "fill-verify" => (1, &[]),
        m => return Err(usage(format!("unknown mode '{m}'"))),
    };
    let mut pos = Vec::new();
    let mut w = WriteArgs {
        path: String::new(),
        size: 0,
        bs: 4096,
        qd: 1,
        seed: 1,
        offset: 0,
        dsync: false,
        rwf_dsync: false,
        create: false,
    };
    let mut file_size = 1u64 << 20;
    let mut it = args[1..].iter();
    while let Some(arg) = it.next() {
        if !arg.starts_with("--") {
            pos.push(arg.clone());
            continue;
        }
        if !opts.contains(&arg.as_str()) {
            return Err(usage(format!("{mode}: unknown option '{arg}'")));
        }
        let mut val = || {
            it.next()
                .and_then(|s| parse_size(s))
                .ok_or_else(|| usage(format!("bad or missing value for {arg}")))
        };
        match arg.as_str() {
            "--bs" => {
                w.bs = usize::try_from(val()?)
                    .ok()
                    .filter(|&b| b > 0 && b <= 1 << 30)
                    .ok_or_else(|| usage("--bs must be 1..1G".into()))?
            }
            "--qd" => {
                w.qd = usize::try_from(val()?)
                    .ok()
                    .filter(|&q| q > 0 && q <= 4096)
                    .ok_or_else(|| usage("--qd must be 1..4096".into()))?
            }
            "--seed" => w.seed = val()?,
            "--offset" => w.offset = val()?,
            "--file-size" => file_size = val()?.max(1),
            "--dsync" => w.dsync = true,
            "--rwf-dsync" => w.rwf_dsync = true,
            "--create" => w.create = true,
            _ => unreachable!(),
        }
    }
    if pos.len() != npos {
        return Err(usage(format!(
            "{mode}: expected {npos} arguments, got {}",
            pos.len()
        )));
    }
    if npos == 2 {
        w.size = parse_size(&pos[1]).ok_or_else(|| usage(format!("bad SIZE '{}'", pos[1])))?;
        if w.offset
            .checked_add(w.size)
            .is_none_or(|end| end > i64::MAX as u64)
        {
            return Err(usage("OFFSET+SIZE too large".into()));
        }
    }
    w.path = pos[0].clone();
    Ok((mode, w, file_size))
}

fn run(args: &[String]) -> Res<String> {
    if args.first().is_some_and(|m| m == "rename") {
        return rename::run(&args[1..]);
    }
    if args.first().is_some_and(|m| m == "handle") {
        return handle::run(&args[1..]);
    }
    if args.first().is_some_and(|m| m == "attr") {
        return attr::run(&args[1..]);
    }
    if args.first().is_some_and(|m| m == "map") {
        return map::run(&args[1..]);
    }
    let (mode, w, file_size) = parse_args(args)?;
    match mode.as_str() {
        "aio" => aio::run(&w),
        "uring" => uring::run(&w),
        "mmap" => mmap::run(&w),
        "fill" => fill::fill(&w.path, file_size),
        "fill-verify" => fill::verify(&w.path),
        _ => unreachable!(),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(Fail::Usage(e)) => {
            eprintln!("rbfs-io: {e}\n{USAGE}");
            ExitCode::from(2)
        }
        Err(Fail::Io(e)) => {
            eprintln!("rbfs-io: {e}");
            ExitCode::from(2)
        }
        Err(Fail::Mismatch(e)) => {
            eprintln!("rbfs-io: {e}");
            ExitCode::from(1)
        }
    }
}
