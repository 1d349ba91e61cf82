// SPDX-License-Identifier: GPL-2.0

//! fsck.rbfs as a library: check an rbfs filesystem and repair what can be
//! repaired safely, with e2fsck's options, passes, output and exit codes.
//!
//! The checks are those of [`rbfs_format::check::Image::scan`] (passes 1 to
//! 4) plus pass 5 (bitmaps and free counts); the repairs are in
//! [`repair`].  Repairs are staged in memory ([`disk::Disk`]) and the whole
//! check is run again on the staged result before anything is written, so
//! that what fsck reports as repaired has been verified, and a repair that
//! uncovers further problems gets another round.

#![forbid(unsafe_code)]

pub mod disk;
pub mod repair;

use std::collections::HashSet;
use std::ffi::OsString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rbfs_format::check::{CheckError, Image, Scan};
use rbfs_format::format::{
    FormatError, FEATURE_COMPAT_SUPPORTED, SB_STATE_OFF, SB_WRITE_TIME_OFF, STATE_CLEAN,
    STATE_DIRTY,
};

use crate::disk::Disk;
use crate::repair::{patch_superblock, Fix, Line, Pass, Round};

/// Exit code: no errors.
pub const EXIT_OK: i32 = 0;
/// Exit code bit: errors were corrected.
pub const EXIT_CORRECTED: i32 = 1;
/// Exit code bit: errors corrected, reboot needed (never used: fsck.rbfs
/// refuses to repair a mounted filesystem).
pub const EXIT_REBOOT: i32 = 2;
/// Exit code bit: errors left uncorrected.
pub const EXIT_UNCORRECTED: i32 = 4;
/// Exit code bit: operational error (cannot open or read or write the
/// device, not an rbfs filesystem, unsupported features).
pub const EXIT_ERROR: i32 = 8;
/// Exit code bit: usage or syntax error.
pub const EXIT_USAGE: i32 = 16;
/// Exit code bit: cancelled by the user (never used: fsck.rbfs does not
/// ask questions).
pub const EXIT_CANCELLED: i32 = 32;

/// Repair rounds before fsck gives up on problems that keep appearing.
const MAX_ROUNDS: usize = 4;

/// The usage text.
pub const USAGE: &str = "Usage: fsck.rbfs [-n | -y | -p] [-f] [-v] DEVICE_OR_IMAGE

  -n   check only: open read-only and answer \"no\" to every repair
  -y   repair everything that can be repaired safely
  -p   preen: the same repairs as -y, with terse output (-a is a synonym)
  -f   accepted for compatibility: every run is a full check
  -v   verbose: statistics at the end
Without -n, -y or -p the check is read-only, like -n.";

/// What to do with problems.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// No option: report only, and say that repairs need -y.
    Check,
    /// `-n`: report only.
    No,
    /// `-y`: repair.
    Yes,
    /// `-p` / `-a`: repair, terse output.
    Preen,
}

impl Mode {
    /// Whether this mode writes repairs.
    pub fn repairs(self) -> bool {
        matches!(self, Mode::Yes | Mode::Preen)
    }
}

/// Parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// -n / -y / -p or none.
    pub mode: Mode,
    /// -f (accepted, no effect).
    pub force: bool,
    /// -v.
    pub verbose: bool,
    /// The device or image.
    pub device: PathBuf,
}

/// Result of parsing the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Check the device.
    Run(Options),
    /// -h / --help.
    Help,
}

/// Parses the arguments (without the program name).  Options may be
/// bundled (`-fy`) as with getopt; `--` ends them.  Errors are usage
/// errors (exit 16).
pub fn parse_args(args: Vec<OsString>) -> Result<Command, String> {
    let mut mode: Option<(char, Mode)> = None;
    let mut force = false;
    let mut verbose = false;
    let mut devices: Vec<OsString> = Vec::new();
    let mut only_positional = false;
    for arg in args {
        let bytes = arg.as_bytes();
        if only_positional || bytes.len() < 2 || bytes[0] != b'-' {
            devices.push(arg);
            continue;
        }
        if bytes == b"--" {
            only_positional = true;
            continue;
        }
        if bytes == b"-h" || bytes == b"--help" {
            return Ok(Command::Help);
        }
        for &c in &bytes[1..] {
            let m = match c {
                b'n' => Mode::No,
                b'y' => Mode::Yes,
                b'p' | b'a' => Mode::Preen,
                b'f' => {
                    force = true;
                    continue;
                }
                b'v' => {
                    verbose = true;
                    continue;
                }
                _ => return Err(format!("invalid option -- '{}'", c as char)),
            };
            match mode {
                Some((prev, m0)) if m0 != m => {
                    return Err(format!(
                        "only one of the options -p/-a, -n or -y may be given (-{prev} and -{})",
                        c as char
                    ))
                }
                _ => mode = Some((c as char, m)),
            }
        }
    }
    let mut devices = devices.into_iter();
    let device = devices.next().ok_or("no device or image given")?;
    if devices.next().is_some() {
        return Err("only one device or image may be given".into());
    }
    Ok(Command::Run(Options {
        mode: mode.map_or(Mode::Check, |(_, m)| m),
        force,
        verbose,
        device: device.into(),
    }))
}

/// Writes the problem lines of a round in e2fsck's layout.
struct Reporter<'o> {
    out: &'o mut dyn Write,
    mode: Mode,
    name: String,
    /// Lines already printed, so later rounds only add what is new.
    printed: HashSet<String>,
}

impl Reporter<'_> {
    fn line(&self, l: &Line) -> String {
        let preen = self.mode == Mode::Preen;
        let dev = if preen {
            format!("{}: ", self.name)
        } else {
            String::new()
        };
        match &l.fix {
            Fix::Done(_) if preen => format!("{dev}{}. FIXED.", l.text),
            Fix::Done(q) => format!("{}. {q}? yes", l.text),
            Fix::Declined(q) => format!("{dev}{}. {q}? no", l.text),
            Fix::Cannot(why) => format!("{dev}{}. Not fixed: {why}.", l.text),
        }
    }

    /// Prints the lines not printed before, under their pass headers;
    /// `all_headers` prints every header even for passes with nothing to
    /// say, as e2fsck does on its single run.
    fn print(&mut self, lines: &[Line], all_headers: bool) -> std::io::Result<()> {
        let fresh: Vec<&Line> = lines
            .iter()
            .filter(|l| !self.printed.contains(&self.line(l)))
            .collect();
        let preen = self.mode == Mode::Preen;
        for l in fresh.iter().filter(|l| l.pass == Pass::Super) {
            writeln!(self.out, "{}", self.line(l))?;
        }
        for pass in Pass::HEADED {
            let these: Vec<&&Line> = fresh.iter().filter(|l| l.pass == pass).collect();
            let header = !these.is_empty() || (all_headers && pass != Pass::OneB);
            if header && !preen {
                writeln!(self.out, "{}", pass.header())?;
            }
            for l in these {
                writeln!(self.out, "{}", self.line(l))?;
            }
        }
        for l in fresh {
            self.printed.insert(self.line(l));
        }
        Ok(())
    }
}

/// How a check ended.
struct Finish {
    lines: Vec<Line>,
    used_blocks: u64,
    used_inodes: u64,
    scan: Scan,
}

/// Runs fsck with `opts`, printing the report on `out` and operational
/// errors on `err`; returns the exit code.
pub fn run(opts: &Options, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let name = opts.device.display().to_string();
    match check_device(opts, &name, out, err) {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(err, "fsck.rbfs: {name}: {e}");
            EXIT_ERROR
        }
    }
}

/// Why a superblock cannot be used, and whether that means the device is
/// not an rbfs filesystem fsck can handle (8) or a damaged one (4).
fn superblock_failure(e: &CheckError) -> (String, i32) {
    match e {
        CheckError::Io(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => (
            "too small to hold a superblock: not an rbfs filesystem".into(),
            EXIT_ERROR,
        ),
        CheckError::Io(io) => (format!("reading the superblock: {io}"), EXIT_ERROR),
        CheckError::Format { err, .. } => match err {
            FormatError::BadMagic => (
                "bad magic number in superblock: not an rbfs filesystem".into(),
                EXIT_ERROR,
            ),
            FormatError::UnsupportedVersion(_) | FormatError::UnknownIncompatFeatures(_) => {
                (format!("superblock: {err}: fsck.rbfs cannot check it"), EXIT_ERROR)
            }
            _ => (
                format!(
                    "superblock: {err}. Not fixed: rbfs keeps no backup superblock to repair it from."
                ),
                EXIT_UNCORRECTED,
            ),
        },
        CheckError::Corrupt(s) => (format!("superblock: {s}"), EXIT_UNCORRECTED),
    }
}

fn check_device(
    opts: &Options,
    name: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    let disk =
        Disk::open(&opts.device, opts.mode.repairs()).map_err(|e| format!("cannot open: {e}"))?;
    let sb = match Image::open_tolerant(&disk) {
        Ok(img) => img.sb,
        Err(e) => {
            let (msg, code) = superblock_failure(&e);
            if code == EXIT_ERROR {
                return Err(msg);
            }
            writeln!(out, "{name}: {msg}").map_err(|e| e.to_string())?;
            writeln!(
                out,
                "\n{name}: ********** WARNING: Filesystem still has errors **********"
            )
            .map_err(|e| e.to_string())?;
            return Ok(code);
        }
    };
    // Unknown features may give blocks or fields a meaning this fsck
    // does not know: checking would report them as leaks and repairing
    // would destroy them.  e2fsck refuses such filesystems too.
    let unknown_compat = sb.feature_compat & !FEATURE_COMPAT_SUPPORTED;
    if unknown_compat != 0 || sb.unknown_ro_compat() != 0 {
        return Err(format!(
            "unsupported features (compat {:#x}, ro_compat {:#x}): fsck.rbfs cannot check it",
            unknown_compat,
            sb.unknown_ro_compat()
        ));
    }
    disk.set_block_size(sb.block_size());
    let io = |e: std::io::Error| e.to_string();
    let ck = |e: CheckError| e.to_string();
    if opts.mode != Mode::Preen {
        writeln!(err, "fsck.rbfs {}", env!("CARGO_PKG_VERSION")).map_err(io)?;
    }
    if sb.state == STATE_DIRTY {
        writeln!(
            out,
            "{name}: filesystem state is dirty (mounted, or not cleanly unmounted)"
        )
        .map_err(io)?;
    }
    let mut rep = Reporter {
        out,
        mode: opts.mode,
        name: name.to_string(),
        printed: HashSet::new(),
    };
    let finish = if opts.mode.repairs() {
        repair_rounds(&disk, &mut rep)?
    } else {
        let img = Image::open_tolerant(&disk).map_err(ck)?;
        let scan = img.scan().map_err(ck)?;
        let o = Round::new(&img, &disk, &scan, false).run().map_err(ck)?;
        rep.print(&o.lines, true).map_err(io)?;
        Finish {
            lines: o.lines,
            used_blocks: o.used_blocks,
            used_inodes: o.used_inodes,
            scan,
        }
    };
    let left = finish.lines.len();
    let mut code = EXIT_OK;
    if opts.mode.repairs() {
        let img = Image::open_tolerant(&disk).map_err(ck)?;
        let mut state = img.sb.state;
        if left == 0 && state != STATE_CLEAN {
            state = STATE_CLEAN;
        }
        if disk.is_modified() || state != img.sb.state {
            let mut block0 = img.read_block(0).map_err(ck)?;
            let secs = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            patch_superblock(&mut block0[..rbfs_format::format::SUPERBLOCK_SIZE], |raw| {
                raw[SB_STATE_OFF..SB_STATE_OFF + 4].copy_from_slice(&state.to_le_bytes());
                raw[SB_WRITE_TIME_OFF..SB_WRITE_TIME_OFF + 8].copy_from_slice(&secs.to_le_bytes());
            });
            disk.write_block(0, block0);
            disk.commit().map_err(|e| format!("writing repairs: {e}"))?;
            code |= EXIT_CORRECTED;
        }
    }
    let rep_out = &mut *rep.out;
    if left > 0 {
        code |= EXIT_UNCORRECTED;
        if opts.mode == Mode::Check
            && finish
                .lines
                .iter()
                .any(|l| matches!(l.fix, Fix::Declined(_)))
        {
            writeln!(
                rep_out,
                "\n{name}: repairs were not made: run fsck.rbfs -y (or -p) to make them"
            )
            .map_err(io)?;
        }
        writeln!(
            rep_out,
            "\n{name}: ********** WARNING: Filesystem still has errors **********"
        )
        .map_err(io)?;
    } else if code & EXIT_CORRECTED != 0 && opts.mode != Mode::Preen {
        writeln!(rep_out, "\n{name}: ***** FILE SYSTEM WAS MODIFIED *****").map_err(io)?;
    }
    let l = finish.scan.sb.layout;
    writeln!(
        rep_out,
        "{name}: {}/{} files, {}/{} blocks",
        finish.used_inodes, l.inodes_count, finish.used_blocks, l.blocks_count
    )
    .map_err(io)?;
    if opts.verbose {
        verbose_stats(rep_out, &finish).map_err(io)?;
    }
    Ok(code)
}

/// Repair rounds: scan the (staged) image, repair, and scan again until a
/// scan finds nothing or nothing more can be repaired.  Returns the
/// problems of the last scan: those are the ones left.
fn repair_rounds(disk: &Disk, rep: &mut Reporter<'_>) -> Result<Finish, String> {
    let ck = |e: CheckError| e.to_string();
    for round in 0..=MAX_ROUNDS {
        let img = Image::open_tolerant(disk).map_err(ck)?;
        let scan = img.scan().map_err(ck)?;
        // The last round only verifies.
        let apply = round < MAX_ROUNDS;
        let mut o = Round::new(&img, disk, &scan, apply).run().map_err(ck)?;
        if !apply {
            for l in &mut o.lines {
                if matches!(l.fix, Fix::Declined(_)) {
                    l.fix =
                        Fix::Cannot(format!("still found after {MAX_ROUNDS} rounds of repairs"));
                }
            }
        }
        if round > 0 && !o.lines.is_empty() {
            let new = o.lines.iter().any(|l| !rep.printed.contains(&rep.line(l)));
            if new && rep.mode != Mode::Preen {
                writeln!(rep.out, "Checking again after the repairs").map_err(|e| e.to_string())?;
            }
        }
        rep.print(&o.lines, round == 0).map_err(|e| e.to_string())?;
        let applied = o.lines.iter().any(|l| matches!(l.fix, Fix::Done(_)));
        if !applied {
            return Ok(Finish {
                lines: o.lines,
                used_blocks: o.used_blocks,
                used_inodes: o.used_inodes,
                scan,
            });
        }
    }
    Err("internal error: repair rounds exhausted".into())
}

fn verbose_stats(out: &mut dyn Write, f: &Finish) -> std::io::Result<()> {
    let l = f.scan.sb.layout;
    let pct = |a: u64, b: u32| {
        if b == 0 {
            0.0
        } else {
            a as f64 * 100.0 / f64::from(b)
        }
    };
    writeln!(out)?;
    writeln!(
        out,
        "{:>12} inodes used ({:.2}%, out of {})",
        f.used_inodes,
        pct(f.used_inodes, l.inodes_count),
        l.inodes_count
    )?;
    writeln!(
        out,
        "{:>12} blocks used ({:.2}%, out of {}) of {} bytes",
        f.used_blocks,
        pct(f.used_blocks, l.blocks_count),
        l.blocks_count,
        l.block_size()
    )?;
    writeln!(out, "{:>12} regular files", f.scan.files)?;
    writeln!(out, "{:>12} directories", f.scan.dirs_seen)?;
    writeln!(out, "{:>12} symbolic links", f.scan.symlinks)?;
    writeln!(out, "{:>12} devices, FIFOs and sockets", f.scan.specials)?;
    writeln!(out, "{:>12} problems left", f.lines.len())
}
