//! The verdict on one guest run of the rbfs harness.
//!
//! A guest run produces two logs: the kernel console (serial port 0) and
//! the guest's own results channel (serial port 1), where the guest's test
//! scripts print KTAP.  [`judge`] turns both, and whether the run hit its
//! wall-clock limit, into a list of checks, each passed, failed or skipped:
//!
//! * every result the guest printed, and one failure for each result its
//!   plan promised but it never printed;
//! * every KUnit case found in the kernel log (the Rust doctests run as
//!   KUnit at boot), and a failure for a suite that did not finish;
//! * that the guest ran its scenario to the end within the time limit;
//! * that the kernel log holds no splat (see [`splat`]).

pub mod ktap;
pub mod splat;

use ktap::Outcome;

/// One check of the verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub outcome: Outcome,
    /// Why it failed, or what it covered (for summaries).
    pub detail: Vec<String>,
    /// Print the check on its own line (KUnit cases are summarised per suite).
    pub listed: bool,
    /// Count the check in the tally (a suite's summary line is not a test).
    pub counted: bool,
}

/// Inputs of a verdict.
#[derive(Clone, Debug, Default)]
pub struct RunLogs<'a> {
    pub console: &'a str,
    pub guest: &'a str,
    pub timed_out: bool,
    /// The kernel runs KUnit at boot: its absence is a failure.
    pub expect_kunit: bool,
}

fn check(name: impl Into<String>, ok: bool, detail: Vec<String>) -> Check {
    Check {
        name: name.into(),
        outcome: if ok { Outcome::Pass } else { Outcome::Fail },
        detail,
        listed: true,
        counted: true,
    }
}

/// Judges one guest run.
pub fn judge(logs: &RunLogs<'_>) -> Vec<Check> {
    let mut out = Vec::new();

    // KUnit first: it runs during boot, before the guest's scenario.
    let suites = ktap::parse_kunit(logs.console);
    if logs.expect_kunit && suites.is_empty() {
        out.push(check("kunit: results present in the kernel log", false, vec![
            "the kernel was built with KUnit but printed no suite".into(),
        ]));
    }
    for suite in &suites {
        let mut passed = 0;
        for case in &suite.cases {
            if case.outcome == Outcome::Pass {
                passed += 1;
            }
            out.push(Check {
                name: format!("kunit: {}: {}", suite.name, case.name),
                outcome: case.outcome,
                detail: case.diag.clone(),
                listed: case.outcome == Outcome::Fail,
                counted: true,
            });
        }
        let planned = suite.plan.unwrap_or(0) as usize;
        if !suite.finished || suite.cases.len() < planned {
            out.push(check(format!("kunit: {}: suite finished", suite.name), false, vec![format!(
                "{} of {} cases reported before the log ended",
                suite.cases.len(),
                planned
            )]));
        } else {
            out.push(Check {
                name: format!("kunit: {} ({} of {} cases passed)", suite.name, passed, suite.cases.len()),
                outcome: Outcome::Pass,
                detail: vec![],
                listed: true,
                counted: false,
            });
        }
    }

    let guest = ktap::parse_guest(logs.guest);
    for r in &guest.results {
        out.push(Check {
            name: r.name.clone(),
            outcome: r.outcome,
            detail: if r.outcome == Outcome::Fail { r.diag.clone() } else { vec![] },
            listed: true,
            counted: true,
        });
    }
    let printed = guest.results.len() as u32;
    match guest.plan {
        Some(plan) => {
            for n in printed + 1..=plan {
                out.push(check(format!("result {n} of {plan}"), false, vec!["missing: the guest never printed it".into()]));
            }
        }
        None if printed == 0 => {
            out.push(check("guest printed a test plan", false, vec!["no KTAP plan and no results on the results channel".into()]));
        }
        None => {}
    }

    let mut why = Vec::new();
    if logs.timed_out {
        why.push("the guest hit its wall-clock limit and was killed".to_string());
    }
    if !guest.done {
        why.push("the guest did not reach the end of its scenario".to_string());
    }
    out.push(check("guest ran to completion within its time limit", why.is_empty(), why));

    let splats = splat::find_splats(logs.console);
    out.push(check(
        "no kernel splat in the guest's log",
        splats.is_empty(),
        splats
            .iter()
            .map(|s| format!("{} at console line {}: {}", s.kind, s.line_no, s.line))
            .collect(),
    ));
    out
}

/// Counts of passed, failed and skipped checks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: usize,
    pub failed: usize,
    pub skipped: usize,
}

/// Tallies the counted checks.
pub fn tally(checks: &[Check]) -> Tally {
    let mut t = Tally::default();
    for c in checks.iter().filter(|c| c.counted) {
        match c.outcome {
            Outcome::Pass => t.passed += 1,
            Outcome::Fail => t.failed += 1,
            Outcome::Skip => t.skipped += 1,
        }
    }
    t
}
