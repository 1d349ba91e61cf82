//! rbfs-stress: many threads over many files, checked against an in-memory
//! model of every byte of every file.
//!
//! ```text
//! rbfs-stress DIR [--seed N] [--threads T] [--files F] [--ops N] [--time SECS]
//!                 [--max-size BYTES] [--verify-every N] [--drop-caches]
//!                 [--no-mmap] [--no-aio] [--no-uring] [--allow-enospc]
//!                 [--save-model PATH] [--summary-json PATH]
//! rbfs-stress DIR --check-only --model PATH [--summary-json PATH]
//! rbfs-stress DIR --powercut-writer [--durable-log] [--seed N] [--threads T]
//!                 [--files F] [--ops N] [--time SECS] [--max-size BYTES]
//!                 [--no-mmap] [--no-aio] [--no-uring]
//! rbfs-stress DIR --verify-log LOGFILE [--summary-json PATH]
//! ```
//!
//! Defaults: seed 1, 4 threads, 16 files, 4 MiB maximum file size, a full
//! verification every 1000 operations; 10000 operations if neither --ops
//! nor --time is given (0 means no limit; with both, whichever comes
//! first). Numbers take k/M/G suffixes.
//!
//! # The stress run
//!
//! The files are DIR/f0 .. DIR/f{F-1} ("slots"), created empty. Each slot
//! has a mutex in the program guarding the slot's model (a `Vec<u8>` with
//! every byte the file must hold, its length the file's size), the open
//! descriptor of the inode now at that name, and a ring log of the last 32
//! operations on it. Every operation that changes a file's content, size or
//! name holds the slot's mutex across the system call(s) and the model
//! update, so the model and the file agree whenever the mutex is free,
//! whatever the interleaving of threads. Any thread may mutate any file:
//! several threads overwrite the same blocks of the same file one after the
//! other (a quarter of the picks go to f0/f1, and a quarter of the write
//! offsets to their first three blocks), while the kernel's own writeback
//! and the racy operations of other threads run concurrently with them.
//! The racy operations take no mutex during the system call (only briefly
//! to get the descriptor): fsync, fdatasync, sync_file_range (half of them
//! on the hot blocks of f0 from several threads at once, so writebacks of
//! the same folio race each other and the writes), and the drop_caches of
//! the periodic verification. Reads compare against the model under the
//! mutex. Each thread has its own RNG stream from seed and thread id, so
//! with one thread a run is reproducible exactly; with more, the streams
//! are the same from run to run but the interleaving (and so what the
//! threads find, and do, in the files) is not, and the model need not care.
//!
//! Operations, picked at random by weight per thread:
//! - write: buffered pwrite of 1 byte .. 64 KiB (some block-sized) at any
//!   offset, straddling a block boundary, into the hot blocks, appending,
//!   or past the end (a hole); the model takes exactly the bytes written;
//! - fsync, fdatasync, sync_file_range(WRITE, sometimes WAIT_BEFORE|WRITE|
//!   WAIT_AFTER): racy, see above;
//! - mmap_write: stores through a MAP_SHARED mapping within the current
//!   size, then msync(MS_SYNC); mmap_read: loads through a mapping and
//!   compares;
//! - truncate: ftruncate down, or up (a hole);
//! - rename: rename(fA, fB) over the existing fB (whose inode may still be
//!   open in other threads), then fA re-created empty; under both slots'
//!   mutexes, locked in index order; sometimes fsync of DIR after;
//! - unlink: unlink(fA) while it is open here and maybe in other threads,
//!   fA re-created empty; then the orphan is read back through its open
//!   descriptor and compared with its last model, and sometimes written
//!   and fsynced;
//! - aio, uring: 1..8 disjoint writes (often adjacent, sharing a block) of
//!   up to 16 KiB submitted at once by io_submit or io_uring on a
//!   descriptor opened O_DSYNC; each completion updates the model by the
//!   bytes it reports;
//! - read: pread of a range (sometimes past the end) through the open
//!   descriptor, or of the whole file opened by name, compared.
//!
//! Every --verify-every operations (run-wide) the thread that reaches the
//! mark does, with --drop-caches, syncfs(DIR) and `echo 3 >
//! /proc/sys/vm/drop_caches` (so the verification reads from the disk),
//! then verifies every file by name (size and every byte), one slot at a
//! time under its mutex, while the other threads go on. The same is done
//! at the end. If drop_caches is not permitted (EACCES, EPERM, EROFS, or no
//! /proc), a note is printed once and only the drop is skipped. If
//! io_setup or io_uring_setup fails with ENOSYS or EPERM, AIO or io_uring
//! writes are disabled with a note.
//!
//! Data: each write has its own generation number (thread id << 40 |
//! counter), and the byte it stores at file offset o is a hash of (seed,
//! generation, o) (`rbfs_guest_tools::fill_gen`), so data at the wrong
//! offset, stale data of an earlier write and zeroes all differ from what
//! the model expects. The first mismatch is reported in detail on stderr:
//! the file, the offset, expected and found bytes around it, which logged
//! write the expected and the found bytes come from, and the file's last
//! 32 operations; the run then stops and exits 1.
//!
//! ENOSPC is an error, unless --allow-enospc: then it is counted, and the
//! model takes what the call reported (a short write: the bytes written; a
//! failed write: nothing; a failed re-create leaves the name absent until a
//! later operation re-creates it), and mmap loads and stores are left out
//! (a fault that finds no space is a SIGBUS). An O_DSYNC write that fails
//! in its sync after copying its data is modelled as writing nothing; a
//! filesystem doing that under ENOSPC shows up as a mismatch.
//!
//! The test hook RBFS_STRESS_TEST_CORRUPT_AFTER=N makes the program flip a
//! byte in the middle of a non-empty file through a separate descriptor,
//! behind the model's back, after operation N, and check that file at once:
//! a run with it must end in a mismatch (exit 1).
//!
//! `--save-model PATH` writes the final model at the end of a passing run;
//! `--check-only --model PATH` later checks DIR against it (after a
//! remount, say) without writing anything.
//!
//! # Power cuts
//!
//! `--powercut-writer` (or `--durable-log`) writes forever (or for --ops /
//! --time) and prints a durability log on stdout, each line flushed (and
//! drained with tcdrain when stdout is a terminal such as a serial console)
//! before the write it announces is issued: the files are created, emptied
//! and made durable (fsync of each and of DIR) before the header line; each
//! file is written by one thread only, sequentially; "W" lines announce
//! writes, "D" lines follow successful fsyncs/fdatasyncs, "S" lines follow
//! O_DSYNC writes (pwrite, AIO, io_uring) and mmap stores + msync(MS_SYNC)
//! that completed; there are no truncates, renames or unlinks. A W line must
//! reach the host before the write can reach the disk, or the verifier
//! would see bytes it cannot explain: hence the tcdrain; with stdout on a
//! pipe or file the host must capture it as reliably. After the
//! power cut and a reboot, `--verify-log LOGFILE` (the captured console
//! output, other lines are ignored) replays the log and checks every file:
//! its size must be between the durable size and the last logged one, and
//! every byte must equal its durable value or that of one of the writes
//! issued after it became durable. See `rbfs_guest_tools::durlog`.
//!
//! Output: a summary line (operations by kind, bytes written and verified,
//! files, mismatches, errors, elapsed time) and, with --summary-json, the
//! same as JSON. Exit status: 0 no mismatch and no unexpected error, 1 a
//! mismatch, 2 usage or unexpected error.

mod model;
mod powercut;
mod stress;
mod sys;

use rbfs_guest_tools::{parse_size, pattern_word};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const USAGE: &str =
    "usage: rbfs-stress DIR [--seed N] [--threads T] [--files F] [--ops N] [--time SECS]
                   [--max-size BYTES] [--verify-every N] [--drop-caches] [--no-mmap]
                   [--no-aio] [--no-uring] [--allow-enospc] [--save-model PATH]
                   [--summary-json PATH]
       rbfs-stress DIR --check-only --model PATH [--summary-json PATH]
       rbfs-stress DIR --powercut-writer [--durable-log] [--seed N] [--threads T] [--files F]
                   [--ops N] [--time SECS] [--max-size BYTES] [--no-mmap] [--no-aio] [--no-uring]
       rbfs-stress DIR --verify-log LOGFILE [--summary-json PATH]";

/// Why a run failed.
pub enum Fail {
    /// The file system returned something other than the model (exit 1).
    Mismatch(String),
    /// Unexpected error (exit 2).
    Error(String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Stress,
    CheckOnly,
    PowercutWriter,
    VerifyLog,
}

#[derive(Clone)]
pub struct Config {
    pub dir: PathBuf,
    pub seed: u64,
    pub threads: usize,
    pub files: usize,
    /// 0: no limit.
    pub ops: u64,
    pub time: Option<Duration>,
    pub max_size: u64,
    pub verify_every: u64,
    pub drop_caches: bool,
    pub mmap: bool,
    pub aio: bool,
    pub uring: bool,
    pub allow_enospc: bool,
    pub save_model: Option<PathBuf>,
    pub summary_json: Option<PathBuf>,
    pub corrupt_after: Option<u64>,
    mode: Mode,
    model: Option<PathBuf>,
    verify_log: Option<PathBuf>,
}

/// Operation kinds (and counted events), for statistics and logs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Write,
    Fsync,
    Fdatasync,
    SyncRange,
    MmapWrite,
    MmapRead,
    Truncate,
    Rename,
    Unlink,
    Aio,
    Uring,
    Read,
    DsyncWrite,
    Create,
    VerifyAll,
    DropCaches,
    Enospc,
}

const KINDS: [Kind; 17] = [
    Kind::Write,
    Kind::Fsync,
    Kind::Fdatasync,
    Kind::SyncRange,
    Kind::MmapWrite,
    Kind::MmapRead,
    Kind::Truncate,
    Kind::Rename,
    Kind::Unlink,
    Kind::Aio,
    Kind::Uring,
    Kind::Read,
    Kind::DsyncWrite,
    Kind::Create,
    Kind::VerifyAll,
    Kind::DropCaches,
    Kind::Enospc,
];

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Write => "write",
            Kind::Fsync => "fsync",
            Kind::Fdatasync => "fdatasync",
            Kind::SyncRange => "sync_file_range",
            Kind::MmapWrite => "mmap_write",
            Kind::MmapRead => "mmap_read",
            Kind::Truncate => "truncate",
            Kind::Rename => "rename",
            Kind::Unlink => "unlink",
            Kind::Aio => "aio",
            Kind::Uring => "uring",
            Kind::Read => "read",
            Kind::DsyncWrite => "dsync_write",
            Kind::Create => "create",
            Kind::VerifyAll => "verify_all",
            Kind::DropCaches => "drop_caches",
            Kind::Enospc => "enospc",
        }
    }

    /// Whether this is an operation picked by a thread (the rest are
    /// events counted alongside).
    fn is_op(self) -> bool {
        !matches!(
            self,
            Kind::Create | Kind::VerifyAll | Kind::DropCaches | Kind::Enospc
        )
    }
}

/// Run-wide counters.
#[derive(Default)]
pub struct Stats {
    counts: [AtomicU64; KINDS.len()],
    written: AtomicU64,
    verified: AtomicU64,
}

impl Stats {
    pub fn count(&self, k: Kind) {
        self.counts[k as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn add_written(&self, n: u64) {
        self.written.fetch_add(n, Ordering::Relaxed);
    }

    pub fn add_verified(&self, n: u64) {
        self.verified.fetch_add(n, Ordering::Relaxed);
    }

    fn get(&self, k: Kind) -> u64 {
        self.counts[k as usize].load(Ordering::Relaxed)
    }

    /// Operations executed.
    pub fn ops(&self) -> u64 {
        KINDS
            .iter()
            .filter(|k| k.is_op())
            .map(|&k| self.get(k))
            .sum()
    }
}

/// Per-thread random numbers (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, thread: u64) -> Rng {
        Rng(pattern_word(seed, thread ^ 0x7468_7265_6164_0000))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 if n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// True with `pct` percent probability.
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
}

/// A write length: 1..16 bytes, up to a block, up to 64 KiB, or 1..16
/// whole blocks.
pub fn write_len(r: &mut Rng) -> u64 {
    match r.below(10) {
        0..=1 => 1 + r.below(16),
        2..=5 => 1 + r.below(4096),
        6..=7 => 1 + r.below(64 << 10),
        _ => 4096 * (1 + r.below(16)),
    }
}

/// The blocks every thread overwrites: the first three of a file.
pub const HOT_BYTES: u64 = 3 * 4096;

/// An offset for `len` (<= `max`) bytes in a file of `size`: anywhere,
/// straddling a block boundary, in the hot blocks, appending, or past the
/// end (leaving a hole); the range ends within `max`.
pub fn write_off(r: &mut Rng, size: u64, len: u64, max: u64) -> u64 {
    let off = match r.below(100) {
        0..=39 => r.below(size + 1),
        40..=59 => {
            let blk = r.below(size / 4096 + 2);
            (blk * 4096).saturating_sub(1 + r.below(len.min(4096)))
        }
        60..=84 => r.below(HOT_BYTES),
        85..=94 => size,
        _ => size + 1 + r.below(HOT_BYTES),
    };
    off.min(max - len)
}

fn parse_args(args: &[String]) -> Result<Config, String> {
    let mut c = Config {
        dir: PathBuf::new(),
        seed: 1,
        threads: 4,
        files: 16,
        ops: 0,
        time: None,
        max_size: 4 << 20,
        verify_every: 1000,
        drop_caches: false,
        mmap: true,
        aio: true,
        uring: true,
        allow_enospc: false,
        save_model: None,
        summary_json: None,
        corrupt_after: None,
        mode: Mode::Stress,
        model: None,
        verify_log: None,
    };
    let mut dir = None;
    let mut ops = None;
    let mut check_only = false;
    let mut powercut = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if !a.starts_with("--") {
            if dir.replace(PathBuf::from(a)).is_some() {
                return Err(format!("unexpected argument '{a}'"));
            }
            continue;
        }
        let mut val = || it.next().ok_or_else(|| format!("{a} needs a value"));
        let num = |v: &String| parse_size(v).ok_or_else(|| format!("bad value '{v}' for {a}"));
        match a.as_str() {
            "--seed" => c.seed = num(val()?)?,
            "--threads" => c.threads = num(val()?)? as usize,
            "--files" => c.files = num(val()?)? as usize,
            "--ops" => ops = Some(num(val()?)?),
            "--time" => {
                let v = val()?;
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| format!("bad value '{v}' for --time"))?;
                c.time = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
            }
            "--max-size" => c.max_size = num(val()?)?,
            "--verify-every" => c.verify_every = num(val()?)?,
            "--drop-caches" => c.drop_caches = true,
            "--no-mmap" => c.mmap = false,
            "--no-aio" => c.aio = false,
            "--no-uring" => c.uring = false,
            "--allow-enospc" => c.allow_enospc = true,
            "--save-model" => c.save_model = Some(val()?.into()),
            "--summary-json" => c.summary_json = Some(val()?.into()),
            "--check-only" => check_only = true,
            "--model" => c.model = Some(val()?.into()),
            "--powercut-writer" | "--durable-log" => powercut = true,
            "--verify-log" => c.verify_log = Some(val()?.into()),
            "--help" => return Err(String::new()),
            _ => return Err(format!("unknown option '{a}'")),
        }
    }
    c.dir = dir.ok_or("missing DIR")?;
    c.mode = match (check_only, powercut, c.verify_log.is_some()) {
        (false, false, false) => Mode::Stress,
        (true, false, false) => Mode::CheckOnly,
        (false, true, false) => Mode::PowercutWriter,
        (false, false, true) => Mode::VerifyLog,
        _ => {
            return Err(
                "--check-only, --powercut-writer and --verify-log exclude each other".into(),
            )
        }
    };
    if c.mode == Mode::CheckOnly && c.model.is_none() {
        return Err("--check-only needs --model PATH".into());
    }
    if c.mode != Mode::CheckOnly && c.model.is_some() {
        return Err("--model goes with --check-only".into());
    }
    c.ops = match ops {
        Some(n) => n,
        // Unbounded only when asked for: by --time, or a power-cut writer.
        None if c.time.is_some() || c.mode == Mode::PowercutWriter => 0,
        None => 10000,
    };
    if !(1..=1024).contains(&c.threads) {
        return Err("--threads must be 1..1024".into());
    }
    if !(1..=65536).contains(&c.files) {
        return Err("--files must be 1..65536".into());
    }
    if c.max_size == 0 || c.max_size > 1 << 40 {
        return Err("--max-size must be 1..1T".into());
    }
    // The models live in memory: up to files * max-size bytes.
    if c.mode != Mode::VerifyLog && (c.files as u64).saturating_mul(c.max_size) > 16 << 30 {
        return Err("--files times --max-size must be at most 16G (the model is in memory)".into());
    }
    if let Ok(v) = std::env::var("RBFS_STRESS_TEST_CORRUPT_AFTER") {
        c.corrupt_after = Some(
            v.parse()
                .map_err(|_| format!("bad RBFS_STRESS_TEST_CORRUPT_AFTER '{v}'"))?,
        );
    }
    Ok(c)
}

/// JSON string literal.
fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for ch in s.chars() {
        match ch {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// Prints the summary line and writes the JSON summary; returns the exit
/// status.
fn finish(
    c: &Config,
    stats: &Stats,
    elapsed: f64,
    failure: Option<&Fail>,
    notes: &[String],
    extra: &str,
) -> ExitCode {
    let mode = match c.mode {
        Mode::Stress => "stress",
        Mode::CheckOnly => "check-only",
        Mode::PowercutWriter => "powercut-writer",
        Mode::VerifyLog => "verify-log",
    };
    let (result, mismatches, errors, code) = match failure {
        None => ("PASS", 0, 0, 0),
        Some(Fail::Mismatch(_)) => ("FAIL", 1, 0, 1),
        Some(Fail::Error(_)) => ("ERROR", 0, 1, 2),
    };
    let kinds: Vec<(Kind, u64)> = KINDS
        .iter()
        .map(|&k| (k, stats.get(k)))
        .filter(|&(_, n)| n > 0)
        .collect();
    let by_kind: Vec<String> = kinds
        .iter()
        .map(|(k, n)| format!("{} {n}", k.name()))
        .collect();
    let written = stats.written.load(Ordering::Relaxed);
    let verified = stats.verified.load(Ordering::Relaxed);
    println!(
        "rbfs-stress: {mode}: {result}: seed {}, {} threads, {} files, {} ops ({}), {written} bytes written, {verified} bytes verified, {mismatches} mismatches, {errors} errors, {elapsed:.2} s{extra}",
        c.seed,
        c.threads,
        c.files,
        stats.ops(),
        by_kind.join(", "),
    );
    if let Some(p) = &c.summary_json {
        let kinds_json: Vec<String> = kinds
            .iter()
            .map(|(k, n)| format!("{}: {n}", json_str(k.name())))
            .collect();
        let notes_json: Vec<String> = notes.iter().map(|n| json_str(n)).collect();
        let fail_json = match failure {
            None => "null".to_string(),
            Some(Fail::Mismatch(m) | Fail::Error(m)) => json_str(m),
        };
        let json = format!(
            "{{\"mode\": {}, \"result\": {}, \"seed\": {}, \"threads\": {}, \"files\": {}, \"ops\": {}, \"ops_by_kind\": {{{}}}, \"bytes_written\": {written}, \"bytes_verified\": {verified}, \"mismatches\": {mismatches}, \"errors\": {errors}, \"elapsed_secs\": {elapsed:.3}, \"notes\": [{}], \"failure\": {fail_json}}}\n",
            json_str(mode),
            json_str(&result.to_lowercase()),
            c.seed,
            c.threads,
            c.files,
            stats.ops(),
            kinds_json.join(", "),
            notes_json.join(", "),
        );
        if let Err(e) = std::fs::write(p, json) {
            eprintln!("rbfs-stress: ERROR: {}: {e}", p.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::from(code)
}

fn print_failure(f: &Fail) {
    match f {
        Fail::Mismatch(m) => eprintln!("rbfs-stress: MISMATCH: {m}"),
        Fail::Error(m) => eprintln!("rbfs-stress: ERROR: {m}"),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let c = match parse_args(&args) {
        Ok(c) => c,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("rbfs-stress: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let start = std::time::Instant::now();
    match c.mode {
        Mode::Stress => {
            let summary_cfg = c.clone();
            let sh = match stress::run(c) {
                Ok(r) => r,
                Err(e) => {
                    let f = Fail::Error(e);
                    print_failure(&f);
                    return finish(&summary_cfg, &Stats::default(), 0.0, Some(&f), &[], "");
                }
            };
            let mut failure = sh.failure.lock().unwrap_or_else(|p| p.into_inner()).take();
            if failure.is_none() {
                if let Some(p) = &summary_cfg.save_model {
                    if let Err(e) = model::save(&sh, p) {
                        let f = Fail::Error(format!("{}: {e}", p.display()));
                        print_failure(&f);
                        failure = Some(f);
                    }
                }
            }
            let notes = sh.notes.lock().unwrap_or_else(|p| p.into_inner()).clone();
            finish(
                &summary_cfg,
                &sh.stats,
                sh.elapsed(),
                failure.as_ref(),
                &notes,
                "",
            )
        }
        Mode::CheckOnly => {
            let stats = Stats::default();
            let model = c.model.clone().expect("checked in parse_args");
            let r = model::check(&c.dir, &model, &stats);
            let (failure, extra) = match r {
                Ok(n) => (None, format!("; {n} files match {}", model.display())),
                Err(f) => (Some(f), String::new()),
            };
            if let Some(f) = &failure {
                print_failure(f);
            }
            finish(
                &c,
                &stats,
                start.elapsed().as_secs_f64(),
                failure.as_ref(),
                &[],
                &extra,
            )
        }
        Mode::PowercutWriter => {
            let stats = Stats::default();
            let (failure, notes) = match powercut::write(&c, &stats) {
                Ok(n) => (None, n),
                Err(f) => (Some(f), Vec::new()),
            };
            if let Some(f) = &failure {
                print_failure(f);
            }
            finish(
                &c,
                &stats,
                start.elapsed().as_secs_f64(),
                failure.as_ref(),
                &notes,
                "",
            )
        }
        Mode::VerifyLog => {
            let stats = Stats::default();
            let log = c.verify_log.clone().expect("set for this mode");
            match powercut::verify(&c, &log, &stats) {
                Ok(v) => {
                    println!(
                        "verified: {} files, {} bytes, {} durable points, bytes lost 0 ({} synced writes; {} bytes of unsynced writes not on disk{}{})",
                        v.files,
                        v.bytes,
                        v.durable_points,
                        v.synced_writes,
                        v.unsynced_lost,
                        if v.cut_tail { "; last log line cut off" } else { "" },
                        if v.ended { "; the writer had finished" } else { "" },
                    );
                    let c = Config {
                        files: v.files,
                        seed: v.seed,
                        ..c
                    };
                    finish(&c, &stats, start.elapsed().as_secs_f64(), None, &[], "")
                }
                Err(f) => {
                    print_failure(&f);
                    finish(&c, &stats, start.elapsed().as_secs_f64(), Some(&f), &[], "")
                }
            }
        }
    }
}
