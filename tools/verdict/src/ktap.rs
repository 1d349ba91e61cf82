//! KTAP results: the guest's own (on its results channel) and KUnit's (in
//! the kernel log).
//!
//! Only the parts of KTAP that the harness uses are understood: version and
//! plan lines, `ok`/`not ok` result lines with an optional `# SKIP`
//! directive, `#` diagnostic lines, and nesting by four-space indentation.

/// One test result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TestResult {
    pub name: String,
    pub outcome: Outcome,
    /// Diagnostic lines printed before the result line.
    pub diag: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    Skip,
}

/// A parsed result line: `ok 3 name # SKIP why`.
fn parse_result(line: &str) -> Option<(u32, String, Outcome)> {
    let (ok, rest) = if let Some(r) = line.strip_prefix("not ok ") {
        (false, r)
    } else if let Some(r) = line.strip_prefix("ok ") {
        (true, r)
    } else {
        return None;
    };
    let (num, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    let num: u32 = num.parse().ok()?;
    let (name, directive) = match rest.split_once(" # ") {
        Some((n, d)) => (n, Some(d)),
        None => (rest.strip_suffix(" #").unwrap_or(rest), None),
    };
    let name = name.trim_start_matches("- ").trim().to_string();
    let skip = directive.is_some_and(|d| d.trim_start().to_ascii_uppercase().starts_with("SKIP"));
    let outcome = match (ok, skip) {
        (_, true) => Outcome::Skip,
        (true, false) => Outcome::Pass,
        (false, false) => Outcome::Fail,
    };
    Some((num, name, outcome))
}

fn parse_plan(line: &str) -> Option<u32> {
    line.strip_prefix("1..")?.trim().parse().ok()
}

/// What the guest reported on its results channel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestReport {
    /// The plan (`1..N`), if the guest printed one.
    pub plan: Option<u32>,
    /// Top-level results in the order printed.
    pub results: Vec<TestResult>,
    /// The guest printed `# rbfs-guest: done` (its scenario ran to the end).
    pub done: bool,
    /// `# rbfs-guest: exit-status N`, printed for a user's script.
    pub exit_status: Option<i32>,
}

/// Parses the guest's results channel.  Indented (nested) lines and lines
/// that are not KTAP are kept as diagnostics of the next result.
pub fn parse_guest(text: &str) -> GuestReport {
    let mut rep = GuestReport::default();
    let mut diag = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("# rbfs-guest: ") {
            if rest.trim() == "done" {
                rep.done = true;
            } else if let Some(st) = rest.strip_prefix("exit-status ") {
                rep.exit_status = st.trim().parse().ok();
            }
            continue;
        }
        if line.starts_with("KTAP version") {
            continue;
        }
        if let Some(n) = parse_plan(line) {
            rep.plan.get_or_insert(n);
            continue;
        }
        if let Some((_, name, outcome)) = parse_result(line) {
            rep.results.push(TestResult { name, outcome, diag: std::mem::take(&mut diag) });
            continue;
        }
        diag.push(line.to_string());
    }
    rep
}

/// One KUnit suite found in the kernel log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KunitSuite {
    pub name: String,
    pub plan: Option<u32>,
    pub cases: Vec<TestResult>,
    /// The suite's own result line was seen (the suite finished).
    pub finished: bool,
}

/// Parses KUnit output out of a kernel console log (printk timestamps are
/// removed first).  Suites are the `# Subtest:` blocks at the first nesting
/// level; their cases are the result lines one level deeper.
pub fn parse_kunit(console: &str) -> Vec<KunitSuite> {
    let mut suites: Vec<KunitSuite> = Vec::new();
    let mut open: Option<KunitSuite> = None;
    let mut diag = Vec::new();
    for raw in console.lines() {
        let line = crate::splat::strip_timestamp(raw);
        let depth = line.len() - line.trim_start_matches(' ').len();
        let text = line.trim_start_matches(' ');
        match depth {
            4 => {
                if let Some(name) = text.strip_prefix("# Subtest: ") {
                    if let Some(s) = open.take() {
                        suites.push(s);
                    }
                    open = Some(KunitSuite { name: name.trim().to_string(), ..Default::default() });
                    diag.clear();
                } else if let Some(suite) = open.as_mut() {
                    if let Some(n) = parse_plan(text) {
                        suite.plan.get_or_insert(n);
                    } else if let Some((_, name, outcome)) = parse_result(text) {
                        suite.cases.push(TestResult { name, outcome, diag: std::mem::take(&mut diag) });
                    } else if text.starts_with('#') {
                        diag.push(text.to_string());
                    }
                }
            }
            0 => {
                if let Some((_, name, _)) = parse_result(text) {
                    if let Some(mut s) = open.take() {
                        if s.name == name {
                            s.finished = true;
                        }
                        suites.push(s);
                    }
                }
            }
            _ => {
                if open.is_some() && text.starts_with('#') {
                    diag.push(text.to_string());
                }
            }
        }
    }
    if let Some(s) = open.take() {
        suites.push(s);
    }
    suites
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_lines() {
        assert_eq!(parse_result("ok 1 foo"), Some((1, "foo".into(), Outcome::Pass)));
        assert_eq!(parse_result("not ok 2 bar baz"), Some((2, "bar baz".into(), Outcome::Fail)));
        assert_eq!(parse_result("ok 3 q # SKIP no disk"), Some((3, "q".into(), Outcome::Skip)));
        assert_eq!(parse_result("not ok 4 - dashed"), Some((4, "dashed".into(), Outcome::Fail)));
        assert_eq!(parse_result("okay 1 x"), None);
        assert_eq!(parse_result("ok x y"), None);
    }

    #[test]
    fn guest_report() {
        let r = parse_guest(
            "KTAP version 1\n1..3\n# loading\nok 1 load\nnot ok 2 mount\n# rbfs-guest: exit-status 3\n# rbfs-guest: done\n",
        );
        assert_eq!(r.plan, Some(3));
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[0].diag, vec!["# loading".to_string()]);
        assert_eq!(r.results[1].outcome, Outcome::Fail);
        assert!(r.done);
        assert_eq!(r.exit_status, Some(3));
    }

    #[test]
    fn kunit_suite_in_console() {
        let log = "[    1.0] KTAP version 1\n[    1.0] 1..1\n\
                   [    1.1]     KTAP version 1\n[    1.1]     # Subtest: s\n[    1.1]     1..2\n\
                   [    1.2]     ok 1 a\n[    1.2]     # b: oops\n[    1.3]     not ok 2 b\n\
                   [    1.4] # s: pass:1 fail:1 skip:0 total:2\n[    1.4] not ok 1 s\n";
        let s = parse_kunit(log);
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].name, "s");
        assert_eq!(s[0].plan, Some(2));
        assert!(s[0].finished);
        assert_eq!(s[0].cases[1].outcome, Outcome::Fail);
        assert_eq!(s[0].cases[1].diag, vec!["# b: oops".to_string()]);
    }

    #[test]
    fn unfinished_kunit_suite_is_reported_unfinished() {
        let log = "    # Subtest: s\n    1..2\n    ok 1 a\n";
        let s = parse_kunit(log);
        assert!(!s[0].finished);
        assert_eq!(s[0].cases.len(), 1);
    }
}
