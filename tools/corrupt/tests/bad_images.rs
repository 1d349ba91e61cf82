// SPDX-License-Identifier: GPL-2.0

//! The bad-image suite on the host: two populated images (1 KiB and
//! 512-byte blocks), every mutation of their catalogues (plus the
//! `--keep-crc` sample) and a few hundred random seeds, each applied to a
//! fresh copy and run through fsck.rbfs:
//!
//! 1. `fsck -n` must exit as the mutation's expectation says: 4 for
//!    damage ("detect"), 8 for a superblock it refuses ("fatal"), 0 for a
//!    field no check covers ("harmless"); resealed random flips may give
//!    any of 0, 4, 8.  It must not change the image.
//! 2. `fsck -y` must exit 0 or 1 (nothing to do / fixed), 4 or 5 (errors
//!    left) or 8 (refused), and what the mutation's repair expectation
//!    says ("fix": 1, "nofix": 4, 5 or 8, "none": 0).
//! 3. `fsck -n` again: clean (0) whenever `-y` said it fixed everything,
//!    and still 4 (or 8) when `-y` said errors were left.
//!
//! Every fsck run is a child process with a time limit, so a crash or a
//! hang is a failure naming the mutation, not a dead test.  The child is
//! this test binary re-executed into [`fsck_child`], which runs the
//! fsck.rbfs code (`rbfs_fsck::run`, as the binary does); set `RBFS_FSCK`
//! to a `fsck-rbfs` binary to test that instead.
//!
//! The figures go to standard output (`--nocapture`), and every result to
//! `$CARGO_TARGET_TMPDIR/rbfs-corrupt-<image>.tsv`.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rbfs_corrupt::{apply, corpus, list, random_apply, CorpusItem, Expect, Repair};

const CHILD_MODE: &str = "RBFS_CORRUPT_FSCK_MODE";
const CHILD_IMAGE: &str = "RBFS_CORRUPT_FSCK_IMAGE";
/// Time limit of one fsck run (a debug build on a 2 MiB image takes
/// milliseconds).
const LIMIT: Duration = Duration::from_secs(30);

/// Not a test: the child side of [`fsck`].  Runs fsck.rbfs on the image
/// the environment names and exits with its code.
#[test]
fn fsck_child() {
    let (Some(mode), Some(image)) = (std::env::var_os(CHILD_MODE), std::env::var_os(CHILD_IMAGE))
    else {
        return;
    };
    let args: Vec<OsString> = vec![mode, image];
    let code = match rbfs_fsck::parse_args(args) {
        Ok(rbfs_fsck::Command::Run(opts)) => {
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            rbfs_fsck::run(&opts, &mut stdout.lock(), &mut stderr.lock())
        }
        _ => 16,
    };
    let _ = std::io::stdout().flush();
    std::process::exit(code);
}

/// How one fsck run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Run {
    Exit(i32),
    /// Killed by a signal, or a panic (exit 101 of the test harness).
    Crash(String),
    Timeout,
}

impl Run {
    fn code(&self) -> Option<i32> {
        match self {
            Run::Exit(c) => Some(*c),
            _ => None,
        }
    }
}

/// Runs `fsck.rbfs MODE image` in a child with the time limit; returns
/// how it ended and its output.
fn fsck(mode: &str, image: &Path, scratch: &Path) -> (Run, String) {
    let out_path = scratch.join("fsck.out");
    let out = fs::File::create(&out_path).unwrap();
    let err = out.try_clone().unwrap();
    let mut cmd = match std::env::var_os("RBFS_FSCK") {
        Some(bin) => {
            let mut c = Command::new(bin);
            c.arg(mode).arg(image);
            c
        }
        None => {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args(["fsck_child", "--exact", "--nocapture", "--test-threads=1"])
                .env(CHILD_MODE, mode)
                .env(CHILD_IMAGE, image);
            c
        }
    };
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut nap = Duration::from_micros(100);
    let run = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break match status.code() {
                Some(101) => Run::Crash("panicked".into()),
                Some(c) => Run::Exit(c),
                None => Run::Crash(format!("{status}")),
            };
        }
        if start.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break Run::Timeout;
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(5));
    };
    let text = fs::read_to_string(&out_path).unwrap_or_default();
    (run, text)
}

/// One mutation's results.
struct Outcome {
    label: String,
    expect: Expect,
    repair: Repair,
    n: Run,
    y: Run,
    n2: Run,
}

#[derive(Default, Debug)]
struct Tally {
    runs: usize,
    expect_detect: usize,
    expect_fatal: usize,
    expect_harmless: usize,
    expect_unknown: usize,
    detected: usize,
    refused_n: usize,
    clean_n: usize,
    repaired: usize,
    nothing_to_do: usize,
    left: usize,
    refused_y: usize,
}

/// Applies each item to a fresh copy of `base`, runs the three fsck
/// passes and checks them; returns the outcomes and the failures.
fn run_items(
    name: &str,
    base: &[u8],
    items: &[CorpusItem],
    scratch: &Path,
) -> (Vec<Outcome>, Vec<String>) {
    let path = scratch.join(format!("{name}.img"));
    let mut outcomes = Vec::new();
    let mut failures = Vec::new();
    for item in items {
        let mut img = base.to_vec();
        let applied = match item {
            CorpusItem::Field { id, keep_crc } => {
                apply(&mut img, id, *keep_crc, 0, false).map(|a| (a.planned.expect, a.planned.repair))
            }
            CorpusItem::Random {
                seed,
                count,
                reseal,
            } => random_apply(&mut img, *seed, *count, *reseal, false).map(|f| (f.expect, f.repair)),
        };
        let label = format!("{name}: {item}");
        let (expect, repair) = match applied {
            Ok(x) => x,
            Err(e) => {
                failures.push(format!("{label}: cannot apply: {e}"));
                continue;
            }
        };
        if img == base {
            failures.push(format!("{label}: changed nothing"));
        }
        fs::write(&path, &img).unwrap();
        let mut fail = |what: String, out: &str| {
            failures.push(format!("{label}: {what}\n{}", indent(out)));
        };
        let (n, out_n) = fsck("-n", &path, scratch);
        match n.code() {
            Some(c) if expect.allows(c) => {}
            _ => fail(
                format!("fsck -n: {n:?}, expected {}", expect.as_str()),
                &out_n,
            ),
        }
        if fs::read(&path).unwrap() != img {
            fail("fsck -n changed the image".into(), &out_n);
        }
        let (y, out_y) = fsck("-y", &path, scratch);
        match y.code() {
            Some(c @ (0 | 1 | 2 | 4 | 5 | 8)) => {
                if !repair.allows(c) {
                    fail(
                        format!("fsck -y: exit {c}, expected {}", repair.as_str()),
                        &out_y,
                    );
                }
            }
            _ => fail(format!("fsck -y: {y:?}"), &out_y),
        }
        let (n2, out_n2) = fsck("-n", &path, scratch);
        match (y.code(), n2.code()) {
            (Some(0..=2), Some(0)) => {}
            (Some(0..=2), _) => fail(
                format!("fsck -y exit {y:?} claimed a repair, but fsck -n then says {n2:?}"),
                &format!("-y:\n{out_y}\nsecond -n:\n{out_n2}"),
            ),
            (Some(4 | 5), Some(4)) | (Some(8), Some(8)) => {}
            (Some(_), _) => fail(
                format!("fsck -y exit {y:?} left errors, but fsck -n then says {n2:?}"),
                &format!("-y:\n{out_y}\nsecond -n:\n{out_n2}"),
            ),
            (None, _) => {}
        }
        outcomes.push(Outcome {
            label,
            expect,
            repair,
            n,
            y,
            n2,
        });
    }
    (outcomes, failures)
}

fn indent(s: &str) -> String {
    s.lines()
        .take(40)
        .map(|l| format!("    | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn tally(outcomes: &[Outcome]) -> Tally {
    let mut t = Tally::default();
    for o in outcomes {
        t.runs += 1;
        match o.expect {
            Expect::Detect => t.expect_detect += 1,
            Expect::Fatal => t.expect_fatal += 1,
            Expect::Harmless => t.expect_harmless += 1,
            Expect::Unknown => t.expect_unknown += 1,
        }
        match o.n.code() {
            Some(4) => t.detected += 1,
            Some(8) => t.refused_n += 1,
            Some(0) => t.clean_n += 1,
            _ => {}
        }
        match o.y.code() {
            Some(0) => t.nothing_to_do += 1,
            Some(1 | 2) => t.repaired += 1,
            Some(4 | 5) => t.left += 1,
            Some(8) => t.refused_y += 1,
            _ => {}
        }
    }
    t
}

/// The kind of damage of a result label (`bs512: field inode.3.links
/// --keep-crc` is `field inode.*.links --keep-crc`; random seeds are
/// grouped by their options).
fn kind_of(label: &str) -> String {
    let item = label.split_once(": ").map_or(label, |x| x.1);
    let mut words = item.split(' ');
    let kind = words.next().unwrap_or("");
    let arg = words.next().unwrap_or("");
    let flags: Vec<&str> = words.filter(|w| w.starts_with("--")).collect();
    let shape = if kind == "random" {
        "*".to_string()
    } else {
        rbfs_corrupt::catalogue::kind_of(arg)
    };
    format!("{kind} {shape} {}", flags.join(" "))
        .trim_end()
        .to_string()
}

fn report(name: &str, outcomes: &[Outcome], path: &Path) {
    let mut f = fs::File::create(path).unwrap();
    writeln!(f, "mutation\texpect\trepair\tfsck -n\tfsck -y\tfsck -n after").unwrap();
    for o in outcomes {
        writeln!(
            f,
            "{}\t{}\t{}\t{:?}\t{:?}\t{:?}",
            o.label,
            o.expect.as_str(),
            o.repair.as_str(),
            o.n,
            o.y,
            o.n2
        )
        .unwrap();
    }
    // Per kind of damage: how many, what was expected and what fsck did.
    let mut kinds: BTreeMap<String, BTreeMap<String, usize>> = BTreeMap::new();
    for o in outcomes {
        let key = format!(
            "expect {:<8} -n {:?} -y {:?}",
            o.expect.as_str(),
            o.n.code().unwrap_or(-1),
            o.y.code().unwrap_or(-1)
        );
        *kinds
            .entry(kind_of(&o.label))
            .or_default()
            .entry(key)
            .or_default() += 1;
    }
    println!("\n== {name}: results by kind of damage ({} runs) ==", outcomes.len());
    for (kind, results) in &kinds {
        let r: Vec<String> = results.iter().map(|(k, n)| format!("{n} x {k}")).collect();
        println!("  {kind:<40} {}", r.join("; "));
    }
    let t = tally(outcomes);
    println!(
        "== {name}: {} runs; expected: {} detectable, {} fatal, {} harmless, {} unknown (resealed random)",
        t.runs, t.expect_detect, t.expect_fatal, t.expect_harmless, t.expect_unknown
    );
    println!(
        "== {name}: fsck -n: {} detected (4), {} refused (8), {} clean (0)",
        t.detected, t.refused_n, t.clean_n
    );
    println!(
        "== {name}: fsck -y: {} repaired (1), {} nothing to do (0), {} errors left (4/5), {} refused (8)",
        t.repaired, t.nothing_to_do, t.left, t.refused_y
    );
    println!("== {name}: every result in {}", path.display());
}

fn suite(name: &str, base: Vec<u8>, randoms: u32, seed: u64) {
    let tmp = common::TempDir::new(name);
    // The pristine image is clean.
    let p = tmp.path().join("pristine.img");
    fs::write(&p, &base).unwrap();
    let (n, out) = fsck("-n", &p, tmp.path());
    assert_eq!(n, Run::Exit(0), "pristine image not clean:\n{out}");

    let items = corpus(&base, seed, randoms, None).unwrap();
    let (outcomes, failures) = run_items(name, &base, &items, tmp.path());
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    report(name, &outcomes, &dir.join(format!("rbfs-corrupt-{name}.tsv")));
    assert!(
        failures.is_empty(),
        "{} of {} mutations failed:\n{}",
        failures.len(),
        items.len(),
        failures.join("\n")
    );
    // The catalogue is stable: listing again gives the same ids.
    let again: Vec<String> = list(&base).unwrap().into_iter().map(|m| m.id).collect();
    let first: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            CorpusItem::Field {
                id,
                keep_crc: false,
            } => Some(id.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(again, first);
}

/// Both images, one after the other (one fsck at a time keeps the CPU
/// use to one core).
#[test]
fn every_mutation_through_fsck() {
    suite("bs1024", common::image_a(), 200, 1);
    suite("bs512", common::image_b(), 100, 2);
}
