//! rbfs-verdict: judge one guest run.
//!
//! ```text
//! rbfs-verdict --console CONSOLE.log --guest GUEST.log [--timed-out]
//!              [--expect-kunit] [--label NAME] [--counts FILE]
//! ```
//!
//! Prints one line per check (`ok ...` / `not ok ...` with the reasons of a
//! failure indented below it), then `LABEL: N passed, N failed`.  Appends
//! `passed failed skipped` to FILE if `--counts` is given.  Exits 1 if any
//! check failed, 2 on bad usage or unreadable logs.

use rbfs_verdict::{judge, ktap::Outcome, tally, RunLogs};
use std::process::ExitCode;

fn usage() -> ExitCode {
    eprintln!("usage: rbfs-verdict --console FILE --guest FILE [--timed-out] [--expect-kunit] [--label NAME] [--counts FILE]");
    ExitCode::from(2)
}

fn read(path: &str) -> Result<String, ExitCode> {
    match std::fs::read(path) {
        // The console may hold bytes that are not UTF-8 (line noise on a
        // crash): judge what is readable.
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) => {
            eprintln!("rbfs-verdict: {path}: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn main() -> ExitCode {
    let mut console = None;
    let mut guest = None;
    let mut counts = None;
    let mut label = "guest".to_string();
    let mut timed_out = false;
    let mut expect_kunit = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--console" => console = args.next(),
            "--guest" => guest = args.next(),
            "--counts" => counts = args.next(),
            "--label" => label = args.next().unwrap_or(label),
            "--timed-out" => timed_out = true,
            "--expect-kunit" => expect_kunit = true,
            _ => return usage(),
        }
    }
    let (Some(console), Some(guest)) = (console, guest) else { return usage() };
    let console = match read(&console) {
        Ok(s) => s,
        Err(e) => return e,
    };
    let guest = match read(&guest) {
        Ok(s) => s,
        Err(e) => return e,
    };

    let checks = judge(&RunLogs { console: &console, guest: &guest, timed_out, expect_kunit });
    for c in checks.iter().filter(|c| c.listed) {
        match c.outcome {
            Outcome::Pass => println!("ok {}", c.name),
            Outcome::Skip => println!("ok {} # SKIP", c.name),
            Outcome::Fail => {
                println!("not ok {}", c.name);
                for d in c.detail.iter().take(40) {
                    println!("    {d}");
                }
            }
        }
    }
    let t = tally(&checks);
    if let Some(path) = counts {
        use std::io::Write;
        let line = format!("{} {} {}\n", t.passed, t.failed, t.skipped);
        let res = std::fs::OpenOptions::new().create(true).append(true).open(&path).and_then(|mut f| f.write_all(line.as_bytes()));
        if let Err(e) = res {
            eprintln!("rbfs-verdict: {path}: {e}");
            return ExitCode::from(2);
        }
    }
    if t.skipped > 0 {
        println!("{label}: {} passed, {} failed, {} skipped", t.passed, t.failed, t.skipped);
    } else {
        println!("{label}: {} passed, {} failed", t.passed, t.failed);
    }
    if t.failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) }
}
