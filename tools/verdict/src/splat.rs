//! Finding kernel splats in a guest's console log.
//!
//! A splat is any report the kernel prints when something is wrong with it:
//! a `WARN()`, a `BUG()`, an oops, a lockdep report, a KASAN report, a hung
//! task, a kmemleak report, an RCU stall, a panic.  Each line of the log is
//! classified on its own, most specific kind first, so one report that
//! matches two patterns (`BUG: KASAN: ...`) is counted once, as KASAN.

use std::fmt;

/// What kind of report a splat is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SplatKind {
    /// Lockdep: circular or recursive locking, inconsistent lock state, ...
    Lockdep,
    /// A KASAN report.
    Kasan,
    /// A UBSAN report.
    Ubsan,
    /// The hung task detector: a task blocked in D state too long.
    HungTask,
    /// kmemleak found unreferenced objects.
    Kmemleak,
    /// An RCU stall.
    RcuStall,
    /// `Kernel panic - not syncing`.
    Panic,
    /// An oops (including general protection faults).
    Oops,
    /// `kernel BUG at file:line` from `BUG()`/`BUG_ON()`.
    KernelBug,
    /// Any other `BUG:` line (soft lockup, sleeping function called from
    /// invalid context, bad page state, ...).
    Bug,
    /// A `WARN()` or another `WARNING:` report.
    Warning,
}

impl fmt::Display for SplatKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            SplatKind::Lockdep => "lockdep",
            SplatKind::Kasan => "KASAN",
            SplatKind::Ubsan => "UBSAN",
            SplatKind::HungTask => "hung task",
            SplatKind::Kmemleak => "kmemleak",
            SplatKind::RcuStall => "RCU stall",
            SplatKind::Panic => "panic",
            SplatKind::Oops => "oops",
            SplatKind::KernelBug => "kernel BUG",
            SplatKind::Bug => "BUG",
            SplatKind::Warning => "WARNING",
        };
        f.write_str(s)
    }
}

/// One splat: its kind and the log line (1-based) that reported it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Splat {
    pub kind: SplatKind,
    pub line_no: usize,
    pub line: String,
}

/// Patterns, most specific first.  A pattern matches when it occurs in the
/// line (timestamp removed) at the start or after a non-alphanumeric
/// character, so `DEBUG:` does not match `BUG:`.
const PATTERNS: &[(SplatKind, &str)] = &[
    (SplatKind::Lockdep, "possible circular locking dependency"),
    (SplatKind::Lockdep, "possible recursive locking detected"),
    (SplatKind::Lockdep, "inconsistent lock state"),
    (SplatKind::Lockdep, "possible irq lock inversion dependency"),
    (SplatKind::Lockdep, "bad unlock balance detected"),
    (SplatKind::Lockdep, "held lock freed"),
    (SplatKind::Lockdep, "lock held when returning to user space"),
    (SplatKind::Lockdep, "suspicious RCU usage"),
    (SplatKind::Lockdep, "BUG: MAX_LOCKDEP"),
    (SplatKind::Kasan, "BUG: KASAN:"),
    (SplatKind::Kasan, "KASAN:"),
    (SplatKind::Ubsan, "UBSAN:"),
    (SplatKind::HungTask, "blocked for more than"),
    (SplatKind::Kmemleak, "new suspected memory leak"),
    (SplatKind::Kmemleak, "unreferenced object 0x"),
    (SplatKind::RcuStall, "detected stalls on CPUs"),
    (SplatKind::RcuStall, "self-detected stall on CPU"),
    (SplatKind::Panic, "Kernel panic - not syncing"),
    (SplatKind::Oops, "Oops:"),
    (SplatKind::Oops, "general protection fault"),
    (SplatKind::KernelBug, "kernel BUG at"),
    (SplatKind::Bug, "BUG:"),
    (SplatKind::Warning, "WARNING:"),
];

/// Removes the printk prefix `[    1.234567] ` (and a caller id such as
/// `[T42]`, if the kernel prints one) from a console line.
pub fn strip_timestamp(line: &str) -> &str {
    let mut rest = line.trim_end_matches('\r');
    for _ in 0..2 {
        let t = rest.trim_start();
        if let Some(after) = t.strip_prefix('[') {
            if let Some(end) = after.find(']') {
                let inner = after[..end].trim();
                let is_time = !inner.is_empty()
                    && inner.trim().chars().all(|c| c.is_ascii_digit() || c == '.');
                let is_caller = inner.len() > 1
                    && (inner.starts_with('T') || inner.starts_with('C'))
                    && inner[1..].chars().all(|c| c.is_ascii_digit());
                if is_time || is_caller {
                    rest = after[end + 1..].strip_prefix(' ').unwrap_or(&after[end + 1..]);
                    continue;
                }
            }
        }
        break;
    }
    rest
}

fn matches_at_boundary(line: &str, pat: &str) -> bool {
    let bytes = line.as_bytes();
    let mut from = 0;
    while let Some(pos) = line[from..].find(pat) {
        let at = from + pos;
        if at == 0 || !bytes[at - 1].is_ascii_alphanumeric() {
            return true;
        }
        from = at + 1;
    }
    false
}

/// Classifies one console line, or returns `None` if it reports nothing.
pub fn classify(line: &str) -> Option<SplatKind> {
    let text = strip_timestamp(line);
    PATTERNS
        .iter()
        .find(|(_, pat)| matches_at_boundary(text, pat))
        .map(|(kind, _)| *kind)
}

/// Every splat in a console log, in log order.
///
/// `unreferenced object` lines of one kmemleak report are folded into the
/// report's first line, so a leak of ten objects is one splat.
pub fn find_splats(log: &str) -> Vec<Splat> {
    let mut out: Vec<Splat> = Vec::new();
    for (i, line) in log.lines().enumerate() {
        let Some(kind) = classify(line) else { continue };
        if kind == SplatKind::Kmemleak {
            if let Some(last) = out.last() {
                if last.kind == SplatKind::Kmemleak {
                    continue;
                }
            }
        }
        out.push(Splat { kind, line_no: i + 1, line: strip_timestamp(line).to_string() });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_stripped() {
        assert_eq!(strip_timestamp("[   12.345678] WARNING: x"), "WARNING: x");
        assert_eq!(strip_timestamp("[   12.345678] [  T42] hello"), "hello");
        assert_eq!(strip_timestamp("[T42] hello"), "hello");
        assert_eq!(strip_timestamp("no stamp"), "no stamp");
        assert_eq!(strip_timestamp("[ab] x"), "[ab] x");
    }

    #[test]
    fn word_boundary_is_respected() {
        assert_eq!(classify("[ 1.0] DEBUG: harmless"), None);
        assert_eq!(classify("[ 1.0] watchdog: BUG: soft lockup - CPU#0 stuck for 22s!"), Some(SplatKind::Bug));
        assert_eq!(classify("[ 1.0] Warning: lower case is not a splat"), None);
        assert_eq!(classify("[ 1.0] kmemleak: Kernel memory leak detector initialized"), None);
    }

    #[test]
    fn most_specific_kind_wins() {
        assert_eq!(classify("BUG: KASAN: slab-out-of-bounds in foo+0x1/0x2"), Some(SplatKind::Kasan));
        assert_eq!(
            classify("WARNING: possible circular locking dependency detected"),
            Some(SplatKind::Lockdep)
        );
        assert_eq!(classify("kernel BUG at fs/buffer.c:123!"), Some(SplatKind::KernelBug));
    }

    #[test]
    fn kmemleak_objects_fold_into_one_report() {
        let log = "kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)\n\
                   unreferenced object 0xffff888001 (size 64):\n\
                   unreferenced object 0xffff888002 (size 64):\n";
        assert_eq!(find_splats(log).len(), 1);
    }
}
