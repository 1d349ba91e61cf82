// SPDX-License-Identifier: GPL-2.0
//! The verdict on real kernel logs.
//!
//! The fixtures are console logs of the project's debug kernel (KASAN,
//! lockdep, kmemleak, KUnit), made by scripts/splat-fixtures.sh: a clean
//! boot running the smoke scenario, and boots in which qemu/splat/splat.ko
//! provoked one kind of report each.  Every splat fixture is the same boot
//! log up to the provocation plus that provocation's section, so the logs
//! differ only in the report.

use rbfs_verdict::ktap::Outcome;
use rbfs_verdict::splat::{find_splats, SplatKind};
use rbfs_verdict::{judge, tally, RunLogs};
use std::collections::BTreeSet;

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn kinds(log: &str) -> BTreeSet<SplatKind> {
    find_splats(log).into_iter().map(|s| s.kind).collect()
}

const SPLATS: &[(&str, SplatKind)] = &[
    ("warning.log", SplatKind::Warning),
    ("lockdep.log", SplatKind::Lockdep),
    ("kasan.log", SplatKind::Kasan),
    ("hung_task.log", SplatKind::HungTask),
    ("kmemleak.log", SplatKind::Kmemleak),
];

#[test]
fn clean_boot_has_no_splat() {
    let log = fixture("clean.log");
    assert_eq!(find_splats(&log), vec![]);
}

#[test]
fn each_report_is_found_and_told_apart() {
    for (file, kind) in SPLATS {
        let found = kinds(&fixture(file));
        assert_eq!(found, BTreeSet::from([*kind]), "{file}");
    }
}

#[test]
fn reports_point_at_their_lines() {
    let log = fixture("lockdep.log");
    let splats = find_splats(&log);
    let line = log.lines().nth(splats[0].line_no - 1).unwrap();
    assert!(line.contains("possible circular locking dependency detected"), "{line}");
}

#[test]
fn clean_run_passes_with_every_kunit_case_counted() {
    let console = fixture("clean.log");
    let guest = fixture("clean-guest.log");
    let checks = judge(&RunLogs { console: &console, guest: &guest, timed_out: false, expect_kunit: true });
    let failed: Vec<_> = checks.iter().filter(|c| c.outcome == Outcome::Fail).collect();
    assert!(failed.is_empty(), "{failed:?}");
    let t = tally(&checks);
    // 115 Rust doctests of the 6.12 kernel crate, the guest's 4 smoke
    // tests, completion and the splat check.
    assert!(t.passed >= 115 + 4 + 2, "{t:?}");
    assert!(checks.iter().any(|c| c.name == "smoke.ext2_1k" && c.outcome == Outcome::Pass));
}

#[test]
fn a_splat_fails_an_otherwise_clean_run() {
    let guest = fixture("clean-guest.log");
    for (file, kind) in SPLATS {
        let console = fixture(file);
        let checks = judge(&RunLogs { console: &console, guest: &guest, timed_out: false, expect_kunit: true });
        let failed: Vec<_> = checks.iter().filter(|c| c.outcome == Outcome::Fail).collect();
        assert_eq!(failed.len(), 1, "{file}: {failed:?}");
        assert_eq!(failed[0].name, "no kernel splat in the guest's log");
        assert!(failed[0].detail[0].starts_with(&kind.to_string()), "{file}: {:?}", failed[0].detail);
    }
}

#[test]
fn timeout_and_missing_results_fail() {
    let console = fixture("clean.log");
    let guest = fixture("clean-guest.log");
    let timed_out = judge(&RunLogs { console: &console, guest: &guest, timed_out: true, expect_kunit: true });
    assert_eq!(tally(&timed_out).failed, 1);

    // The guest died after its second result: two results missing, and it
    // never reached the end of its scenario.
    let cut: String = guest
        .lines()
        .take_while(|l| !l.starts_with("ok 3 "))
        .filter(|l| !l.contains("rbfs-guest: done"))
        .map(|l| format!("{l}\n"))
        .collect();
    let checks = judge(&RunLogs { console: &console, guest: &cut, timed_out: false, expect_kunit: true });
    let failed: Vec<_> = checks.iter().filter(|c| c.outcome == Outcome::Fail).map(|c| c.name.as_str()).collect();
    assert_eq!(failed, vec!["result 3 of 4", "result 4 of 4", "guest ran to completion within its time limit"]);
}

#[test]
fn kernel_dying_during_kunit_fails() {
    let console = fixture("clean.log");
    let cut: String = console
        .lines()
        .take_while(|l| !l.contains("ok 50 "))
        .map(|l| format!("{l}\n"))
        .collect();
    let checks = judge(&RunLogs { console: &cut, guest: "", timed_out: false, expect_kunit: true });
    assert!(checks.iter().any(|c| c.name.ends_with("suite finished") && c.outcome == Outcome::Fail));
    assert!(checks.iter().any(|c| c.name == "guest printed a test plan" && c.outcome == Outcome::Fail));
}

#[test]
fn missing_kunit_output_fails_when_expected() {
    let checks = judge(&RunLogs { console: "", guest: &fixture("clean-guest.log"), timed_out: false, expect_kunit: true });
    assert!(checks.iter().any(|c| c.name.starts_with("kunit: results present") && c.outcome == Outcome::Fail));
    let checks = judge(&RunLogs { console: "", guest: &fixture("clean-guest.log"), timed_out: false, expect_kunit: false });
    assert_eq!(tally(&checks).failed, 0);
}
