//! Runs the built rbfs-stress on temporary directories of the host.

use rbfs_guest_tools::durlog::{self, Replay};
use rbfs_guest_tools::gen_byte;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const STRESS: &str = env!("CARGO_BIN_EXE_rbfs-stress");

/// A fresh, empty directory for one test.
fn tmpdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rbfs-stress-{name}"));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run(cmd: &mut Command) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = cmd.output().expect("spawn");
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {status:?}"));
    (
        code,
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn stress(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run(Command::new(STRESS)
        .arg(dir)
        .args(args)
        .env_remove("RBFS_STRESS_TEST_CORRUPT_AFTER"))
}

/// The number after `key` in the JSON text (flat enough for this).
fn json_num(json: &str, key: &str) -> u64 {
    let at = json
        .find(&format!("\"{key}\": "))
        .unwrap_or_else(|| panic!("{key} in {json}"));
    json[at + key.len() + 4..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn short_run_with_every_operation_passes() {
    let d = tmpdir("short");
    let files = d.join("files");
    let json = d.join("summary.json");
    let (code, out, err) = stress(
        &files,
        &[
            "--threads",
            "4",
            "--files",
            "6",
            "--ops",
            "2500",
            "--max-size",
            "256k",
            "--verify-every",
            "1000",
            "--drop-caches",
            "--seed",
            "42",
            "--summary-json",
            json.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let line = out.lines().last().unwrap();
    assert!(
        line.starts_with("rbfs-stress: stress: PASS: seed 42, 4 threads, 6 files, 2500 ops ("),
        "{line}"
    );
    let json = std::fs::read_to_string(&json).unwrap();
    assert!(json.contains("\"result\": \"pass\""), "{json}");
    assert_eq!(json_num(&json, "ops"), 2500);
    assert_eq!(json_num(&json, "mismatches"), 0);
    assert_eq!(json_num(&json, "files"), 6);
    assert!(json_num(&json, "bytes_written") > 0);
    assert!(json_num(&json, "bytes_verified") > 0);
    let uring = !err.contains("io_uring unavailable");
    for kind in [
        "write",
        "fsync",
        "fdatasync",
        "sync_file_range",
        "mmap_write",
        "mmap_read",
        "truncate",
        "rename",
        "unlink",
        "aio",
        "uring",
        "read",
        "verify_all",
    ] {
        if kind == "uring" && !uring {
            eprintln!("note: io_uring unavailable here");
            continue;
        }
        assert!(json_num(&json, kind) > 0, "{kind}: {json}");
    }
    assert!(
        err.is_empty() || err.lines().all(|l| l.contains("note:")),
        "{err}"
    );
}

#[test]
fn options_turn_engines_off_and_save_a_checkable_model() {
    let d = tmpdir("model");
    let files = d.join("files");
    let model = d.join("model");
    let (code, out, err) = stress(
        &files,
        &[
            "--threads",
            "2",
            "--files",
            "3",
            "--ops",
            "600",
            "--max-size",
            "100000",
            "--no-mmap",
            "--no-aio",
            "--no-uring",
            "--save-model",
            model.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    for kind in ["mmap_write", "mmap_read", "aio ", "uring "] {
        assert!(!out.contains(kind), "{kind}: {out}");
    }
    let m = model.to_str().unwrap();
    let (code, out, err) = stress(&files, &["--check-only", "--model", m]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("3 files match"), "{out}");

    // A file changed behind the model's back fails the check.
    let (victim, mut data) = (0..3)
        .map(|i| files.join(format!("f{i}")))
        .map(|p| {
            let d = std::fs::read(&p).unwrap();
            (p, d)
        })
        .find(|(_, d)| d.len() > 10)
        .expect("a non-empty file");
    let at = data.len() / 3;
    data[at] ^= 1;
    std::fs::write(&victim, &data).unwrap();
    let (code, out, err) = stress(&files, &["--check-only", "--model", m]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("first at offset {at}")), "{err}");
    data[at] ^= 1;
    data.push(0);
    std::fs::write(&victim, &data).unwrap();
    let (code, _, err) = stress(&files, &["--check-only", "--model", m]);
    assert_eq!(code, 1, "{err}");
}

#[test]
fn corruption_behind_the_models_back_is_reported() {
    let d = tmpdir("corrupt");
    let json = d.join("summary.json");
    let (code, out, err) = run(Command::new(STRESS)
        .arg(d.join("files"))
        .args([
            "--threads",
            "4",
            "--files",
            "4",
            "--ops",
            "3000",
            "--max-size",
            "200k",
            "--summary-json",
            json.to_str().unwrap(),
        ])
        .env("RBFS_STRESS_TEST_CORRUPT_AFTER", "300"));
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("test hook: flipped byte"), "{err}");
    assert!(err.contains("rbfs-stress: MISMATCH: "), "{err}");
    assert!(err.contains("1 bytes differ, first at offset"), "{err}");
    assert!(
        err.contains("expected @") && err.contains("got      @"),
        "{err}"
    );
    assert!(
        err.contains("operations on the file, oldest first:"),
        "{err}"
    );
    assert!(out.contains(": FAIL: "), "{out}");
    let json = std::fs::read_to_string(&json).unwrap();
    assert_eq!(json_num(&json, "mismatches"), 1);
    assert!(json.contains("\"result\": \"fail\""), "{json}");
    // It stopped soon after the corruption.
    assert!(json_num(&json, "ops") < 1000, "{json}");
}

#[test]
fn usage_errors() {
    let d = tmpdir("usage");
    for args in [
        &[][..],
        &["--frob"],
        &["x", "y"],
        &["x", "--threads", "0"],
        &["x", "--ops"],
        &["x", "--time", "soon"],
        &["x", "--check-only"],
        &["x", "--model", "m"],
        &["x", "--check-only", "--model", "m", "--powercut-writer"],
    ] {
        let (code, out, err) = run(Command::new(STRESS).current_dir(&d).args(args));
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty() && err.contains("usage:"), "{args:?}: {err}");
    }
    // An unusable DIR is an error, not a mismatch.
    std::fs::write(d.join("plain"), b"").unwrap();
    let (code, out, err) = stress(&d.join("plain"), &["--ops", "10"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(out.contains(": ERROR: "), "{out}");
}

/// Runs the power-cut writer (one thread, so the result is deterministic)
/// and returns its log.
fn powercut_log(dir: &Path, ops: &str, seed: &str) -> String {
    let (code, out, err) = stress(
        dir,
        &[
            "--powercut-writer",
            "--durable-log",
            "--threads",
            "1",
            "--files",
            "3",
            "--ops",
            ops,
            "--seed",
            seed,
            "--max-size",
            "192k",
        ],
    );
    assert_eq!(code, 0, "{err}");
    out
}

fn verify_log(dir: &Path, log: &Path) -> (i32, String, String) {
    stress(dir, &["--verify-log", log.to_str().unwrap()])
}

/// A byte of file `f` that is durable and no write after the last
/// durable point covers.
fn durable_byte(r: &Replay) -> Option<(usize, usize)> {
    r.files.iter().enumerate().find_map(|(i, f)| {
        (0..f.dur.len())
            .rev()
            .find(|&p| {
                !f.pending
                    .iter()
                    .any(|pc| pc.off <= p as u64 && (p as u64) < pc.end())
            })
            .map(|p| (i, p))
    })
}

#[test]
fn powercut_log_verifies_and_catches_lost_durable_data() {
    let d = tmpdir("powercut");
    let files = d.join("files");
    let log_path = d.join("console.log");
    let log = powercut_log(&files, "700", "3");
    assert!(log.starts_with("RBFSLOG 0 H 1 3 3 196608 #"), "{log}");
    // Console noise around the records is ignored.
    std::fs::write(
        &log_path,
        format!("[    0.1] booting\r\n{log}[   10.0] reboot: Power down\r\n"),
    )
    .unwrap();
    let (code, out, err) = verify_log(&files, &log_path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("verified: 3 files, "), "{out}");
    assert!(out.contains(" durable points, bytes lost 0"), "{out}");

    let r = durlog::replay(&log).unwrap();
    assert!(r.durable_points > 0 && r.synced_writes > 0, "{r:?}");
    let path = |i: usize| files.join(format!("f{i}"));

    // A durable byte changed: lost data.
    let (fi, p) = durable_byte(&r).expect("a durable byte");
    let orig = std::fs::read(path(fi)).unwrap();
    let mut data = orig.clone();
    data[p] ^= 0x81;
    std::fs::write(path(fi), &data).unwrap();
    let (code, out, err) = verify_log(&files, &log_path);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("NOT CONSISTENT"), "{err}");
    assert!(
        err.contains(&format!("first lost byte at offset {p} ")),
        "{err}"
    );
    std::fs::write(path(fi), &orig).unwrap();

    // The file shorter than its durable size: lost data.
    let (fi, f) = r
        .files
        .iter()
        .enumerate()
        .find(|(_, f)| !f.dur.is_empty())
        .expect("a durable non-empty file");
    let orig = std::fs::read(path(fi)).unwrap();
    std::fs::write(path(fi), &orig[..f.dur.len() - 1]).unwrap();
    let (code, _, err) = verify_log(&files, &log_path);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("shorter than its durable size"), "{err}");
    std::fs::write(path(fi), &orig).unwrap();

    // Writes after the last durable point may be lost in any part: back to
    // the durable value, or to an older write's value, or the file cut
    // back to its durable size.
    let mut tried = 0;
    for (fi, f) in r.files.iter().enumerate() {
        let Some(pc) = f.pending.last() else { continue };
        let orig = std::fs::read(path(fi)).unwrap();
        let mut data = orig.clone();
        let mut changed = 0;
        for p in pc.off as usize..(pc.end() as usize).min(data.len()) {
            let old = f.dur.get(p).copied().unwrap_or(0);
            changed += usize::from(data[p] != old);
            data[p] = old;
        }
        // The value of an earlier pending write where it is covered.
        if let Some(prev) = f.pending.iter().rev().nth(1) {
            let p = prev.off;
            data[p as usize] = gen_byte(r.seed, prev.gen, p);
        }
        std::fs::write(path(fi), &data).unwrap();
        let (code, out, err) = verify_log(&files, &log_path);
        assert_eq!(
            code, 0,
            "file {fi}, {changed} bytes rolled back: {out}{err}"
        );
        if changed > 0 {
            assert!(!out.contains("; 0 bytes of unsynced writes"), "{out}");
        }
        if f.dur.len() < f.cur.len() {
            std::fs::write(path(fi), &orig[..f.dur.len()]).unwrap();
            let (code, out, err) = verify_log(&files, &log_path);
            assert_eq!(code, 0, "file {fi} cut to its durable size: {out}{err}");
        }
        std::fs::write(path(fi), &orig).unwrap();
        tried += 1;
    }
    assert!(tried > 0, "no writes pending at the end of the log");

    // A gap in the sequence numbers is an error of the log (exit 2).
    let cut: String = log
        .lines()
        .filter(|l| !l.starts_with("RBFSLOG 5 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&log_path, cut).unwrap();
    let (code, _, err) = verify_log(&files, &log_path);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("log lines are missing"), "{err}");
}

#[test]
fn powercut_writer_killed_midway_verifies() {
    let d = tmpdir("powercut-kill");
    let files = d.join("files");
    let log_path = d.join("console.log");
    let child = Command::new(STRESS)
        .arg(&files)
        .args([
            "--powercut-writer",
            "--threads",
            "2",
            "--files",
            "4",
            "--max-size",
            "1M",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    // SAFETY: kill of our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8(out.stdout).unwrap();
    assert!(log.lines().count() > 10, "{log}");
    assert!(!log.contains(" Z "), "{log}");
    std::fs::write(&log_path, &log).unwrap();
    let (code, out, err) = verify_log(&files, &log_path);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("verified: 4 files, "), "{out}");
}

/// ENOSPC on a small tmpfs (in a private user and mount namespace; skipped
/// where those cannot be had): an error, unless --allow-enospc, with which
/// the model follows what the failed and short writes did.
#[test]
fn enospc_is_an_error_unless_allowed() {
    let d = tmpdir("enospc");
    let script = r#"mount -t tmpfs -o size=512k none "$1" || exit 99
"$2" "$1/a" --threads 1 --files 4 --max-size 4M --ops 2000 --allow-enospc --summary-json "$3"
echo "allow rc $?"
rm -rf "$1/a"
"$2" "$1/b" --threads 1 --files 4 --max-size 4M --ops 2000 --no-mmap
echo "strict rc $?"
"#;
    let json = d.join("summary.json");
    let mnt = d.join("mnt");
    std::fs::create_dir(&mnt).unwrap();
    let out = Command::new("unshare")
        .args(["-rm", "sh", "-c", script, "sh"])
        .args([mnt.to_str().unwrap(), STRESS, json.to_str().unwrap()])
        .env_remove("RBFS_STRESS_TEST_CORRUPT_AFTER")
        .output();
    let out = match out {
        Ok(o) if o.status.code() != Some(99) && o.status.success() => o,
        Ok(o) => {
            eprintln!(
                "note: no tmpfs in a user namespace here ({}), skipping",
                String::from_utf8_lossy(&o.stderr).trim()
            );
            return;
        }
        Err(e) => {
            eprintln!("note: cannot run unshare ({e}), skipping");
            return;
        }
    };
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stdout.contains("allow rc 0\n"), "{stdout}{stderr}");
    let json = std::fs::read_to_string(&json).unwrap();
    assert!(json_num(&json, "enospc") > 0, "{json}");
    assert!(!json.contains("mmap"), "{json}");
    assert!(stdout.contains("strict rc 2\n"), "{stdout}{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
}

#[test]
fn one_thread_runs_are_reproducible() {
    let d = tmpdir("repro");
    let model = |run: &str, seed: &str| {
        let m = d.join(format!("model-{run}"));
        let (code, out, err) = stress(
            &d.join(run),
            &[
                "--threads",
                "1",
                "--files",
                "4",
                "--ops",
                "800",
                "--max-size",
                "300k",
                "--seed",
                seed,
                "--save-model",
                m.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{out}{err}");
        std::fs::read(m).unwrap()
    };
    let a = model("a", "5");
    assert_eq!(a, model("b", "5"));
    assert_ne!(a, model("c", "6"));
}
