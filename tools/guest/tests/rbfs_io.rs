//! Runs the built rbfs-io (and rbfs-pattern) on temporary files.

use rbfs_guest_tools::{fill_pattern, first_mismatch};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const IO: &str = env!("CARGO_BIN_EXE_rbfs-io");
const PATTERN: &str = env!("CARGO_BIN_EXE_rbfs-pattern");

/// A fresh, empty directory for one test.
fn tmpdir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("rbfs-io-{name}"));
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

fn io(args: &[&str]) -> (i32, String, String) {
    run(Command::new(IO).args(args))
}

/// Runs rbfs-io, which must succeed, and returns its one output line.
fn io_ok(args: &[&str]) -> String {
    let (code, out, err) = io(args);
    assert_eq!(code, 0, "rbfs-io {args:?}: {err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    out.trim_end().to_string()
}

/// Checks bytes offset..offset+size of `path` through the library.
fn check(path: &Path, seed: u64, offset: u64, size: u64) {
    let data = std::fs::read(path).unwrap();
    assert!(
        data.len() as u64 >= offset + size,
        "{} is {} bytes",
        path.display(),
        data.len()
    );
    let part = &data[offset as usize..(offset + size) as usize];
    assert_eq!(
        first_mismatch(seed, offset, part),
        None,
        "{}",
        path.display()
    );
}

fn pattern_verify(path: &Path, size: u64, seed: u64, offset: u64) -> i32 {
    let (s, o, n) = (size.to_string(), seed.to_string(), offset.to_string());
    let p = path.to_str().unwrap();
    run(Command::new(PATTERN).args(["verify", p, &s, "--seed", &o, "--offset", &n])).0
}

fn flip_byte(path: &Path, at: usize) {
    let mut data = std::fs::read(path).unwrap();
    data[at] ^= 0x40;
    std::fs::write(path, data).unwrap();
}

/// io_uring may be switched off for the host sandbox; only then skip.
fn uring_permitted() -> bool {
    let mut params = [0u32; 30]; // struct io_uring_params, 120 bytes
                                 // SAFETY: io_uring_setup writes at most 120 bytes to `params`.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd >= 0 {
        // SAFETY: the descriptor was just returned to us.
        unsafe { libc::close(fd as i32) };
        return true;
    }
    let e = std::io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EPERM) | Some(libc::ENOSYS) => {
            eprintln!("note: io_uring not permitted here ({e}), skipping");
            false
        }
        _ => panic!("io_uring_setup probe: {e}"),
    }
}

#[test]
fn aio_queue_depths() {
    let d = tmpdir("aio");
    let f = d.join("f");
    let p = f.to_str().unwrap();
    assert_eq!(
        io_ok(&["aio", p, "256k", "--create"]),
        "aio: 64 writes of 4096 bytes at queue depth 1, 262144 bytes"
    );
    check(&f, 1, 0, 256 << 10);
    assert_eq!(pattern_verify(&f, 256 << 10, 1, 0), 0);

    let g = d.join("g");
    let q = g.to_str().unwrap();
    assert_eq!(
        io_ok(&["aio", q, "262144", "--qd", "16", "--seed", "7", "--create"]),
        "aio: 64 writes of 4096 bytes at queue depth 16, 262144 bytes"
    );
    check(&g, 7, 0, 256 << 10);
    // Unaligned offset, odd request size and a short last request,
    // overwriting the middle of the file.
    assert_eq!(
        io_ok(&[
            "aio", q, "100000", "--qd", "16", "--bs", "3000", "--seed", "9", "--offset", "12345"
        ]),
        "aio: 34 writes of 3000 bytes at queue depth 16, 100000 bytes"
    );
    check(&g, 9, 12345, 100000);
    check(&g, 7, 0, 12345);
    check(&g, 7, 112345, (256 << 10) - 112345);
    assert_eq!(std::fs::metadata(&g).unwrap().len(), 256 << 10);
    assert_eq!(pattern_verify(&g, 100000, 9, 12345), 0);
    assert_eq!(pattern_verify(&g, 100000, 7, 12345), 1);
}

#[test]
fn aio_dsync_flags() {
    let d = tmpdir("aio-dsync");
    let f = d.join("f");
    let p = f.to_str().unwrap();
    assert_eq!(
        io_ok(&["aio", p, "64k", "--qd", "4", "--dsync", "--create"]),
        "aio-dsync: 16 writes of 4096 bytes at queue depth 4, 65536 bytes"
    );
    check(&f, 1, 0, 64 << 10);
    assert_eq!(
        io_ok(&[
            "aio",
            p,
            "64k",
            "--qd",
            "4",
            "--rwf-dsync",
            "--seed",
            "2",
            "--offset",
            "64k"
        ]),
        "aio-rwf-dsync: 16 writes of 4096 bytes at queue depth 4, 65536 bytes"
    );
    check(&f, 1, 0, 64 << 10);
    check(&f, 2, 64 << 10, 64 << 10);
}

#[test]
fn interoperates_with_rbfs_pattern() {
    let d = tmpdir("interop");
    let f = d.join("f");
    let p = f.to_str().unwrap();
    // rbfs-pattern writes the first half, rbfs-io the second: one stream.
    let (code, _, err) = run(Command::new(PATTERN).args(["write", p, "40000", "--seed", "3"]));
    assert_eq!(code, 0, "{err}");
    io_ok(&[
        "aio", p, "60000", "--qd", "8", "--bs", "5000", "--seed", "3", "--offset", "40000",
    ]);
    assert_eq!(pattern_verify(&f, 100000, 3, 0), 0);
    check(&f, 3, 0, 100000);

    // One corrupted byte is a mismatch (exit 1), not an I/O error.
    flip_byte(&f, 77777);
    assert_eq!(pattern_verify(&f, 100000, 3, 0), 1);
    assert_eq!(pattern_verify(&f, 77777, 3, 0), 0);
}

#[test]
fn uring_queue_depths() {
    if !uring_permitted() {
        return;
    }
    let d = tmpdir("uring");
    let f = d.join("f");
    let p = f.to_str().unwrap();
    assert_eq!(
        io_ok(&["uring", p, "256k", "--create"]),
        "uring: 64 writes of 4096 bytes at queue depth 1, 262144 bytes"
    );
    check(&f, 1, 0, 256 << 10);
    assert_eq!(
        io_ok(&["uring", p, "1M", "--qd", "16", "--bs", "12k", "--seed", "5", "--offset", "1000"]),
        "uring: 86 writes of 12288 bytes at queue depth 16, 1048576 bytes"
    );
    check(&f, 1, 0, 1000);
    check(&f, 5, 1000, 1 << 20);
    assert_eq!(pattern_verify(&f, 1 << 20, 5, 1000), 0);
    assert_eq!(
        io_ok(&[
            "uring",
            p,
            "32k",
            "--qd",
            "3",
            "--dsync",
            "--rwf-dsync",
            "--seed",
            "6"
        ]),
        "uring-dsync-rwf-dsync: 8 writes of 4096 bytes at queue depth 3, 32768 bytes"
    );
    check(&f, 6, 0, 32 << 10);
}

#[test]
fn uring_failed_completion() {
    if !uring_permitted() {
        return;
    }
    // /dev/full fails every write with ENOSPC in the CQE.
    let (code, out, err) = io(&["uring", "/dev/full", "4096", "--qd", "2"]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(out.is_empty());
}

/// Runs rbfs-io with a file size limit and SIGXFSZ ignored, so writes past
/// the limit complete with -EFBIG.
fn io_fsize_limited(limit: u64, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(IO);
    cmd.args(args);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0
                || libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    run(&mut cmd)
}

#[test]
fn failed_and_short_completions() {
    let d = tmpdir("efbig");
    let f = d.join("f");
    let p = f.to_str().unwrap();
    let (code, _, err) = io_fsize_limited(8192, &["aio", p, "16k", "--qd", "4", "--create"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("aio write of 4096 bytes at offset 8192: File too large"),
        "{err}"
    );

    let g = d.join("g");
    let q = g.to_str().unwrap();
    let (code, _, err) = io_fsize_limited(8192, &["aio", q, "16k", "--bs", "6000", "--create"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("aio write at offset 6000: 2192 of 6000 bytes written"),
        "{err}"
    );

    if uring_permitted() {
        let h = d.join("h");
        let r = h.to_str().unwrap();
        let (code, _, err) = io_fsize_limited(8192, &["uring", r, "16k", "--qd", "4", "--create"]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains("File too large"), "{err}");
    }
}

#[test]
fn mmap_writes() {
    let d = tmpdir("mmap");
    let f = d.join("f");
    let p = f.to_str().unwrap();
    // A new file, extended to the end of the unaligned range.
    assert_eq!(
        io_ok(&["mmap", p, "10000", "--offset", "5000", "--seed", "3", "--create"]),
        "mmap: 10000 bytes at offset 5000 through a 10904-byte shared mapping at 4096, file extended from 0 bytes"
    );
    assert_eq!(std::fs::metadata(&f).unwrap().len(), 15000);
    check(&f, 3, 5000, 10000);
    assert!(std::fs::read(&f).unwrap()[..5000].iter().all(|&b| b == 0));
    assert_eq!(pattern_verify(&f, 10000, 3, 5000), 0);

    // Inside a longer file: neither shortened nor touched outside the range.
    let g = d.join("g");
    let q = g.to_str().unwrap();
    let mut whole = vec![0u8; 100000];
    fill_pattern(1, 0, &mut whole);
    std::fs::write(&g, &whole).unwrap();
    io_ok(&["mmap", q, "3000", "--offset", "50001", "--seed", "4"]);
    assert_eq!(std::fs::metadata(&g).unwrap().len(), 100000);
    check(&g, 1, 0, 50001);
    check(&g, 4, 50001, 3000);
    check(&g, 1, 53001, 100000 - 53001);

    assert_eq!(io_ok(&["mmap", q, "0"]), "mmap: 0 bytes at offset 0");
    let (code, _, err) = io(&["mmap", d.join("missing").to_str().unwrap(), "4096"]);
    assert_eq!(code, 2);
    assert!(err.contains("open: No such file"), "{err}");
}

/// Writes DIR/fill.N like `rbfs-io fill` would.
fn make_fill_file(dir: &Path, idx: u64, size: usize) {
    let mut data = vec![0u8; size];
    fill_pattern(idx, 0, &mut data);
    std::fs::write(dir.join(format!("fill.{idx}")), data).unwrap();
}

#[test]
fn fill_verify() {
    let d = tmpdir("fill-verify");
    let p = d.to_str().unwrap();
    assert_eq!(
        io_ok(&["fill-verify", p]),
        "fill-verify: 0 files, 0 bytes ok"
    );
    make_fill_file(&d, 0, 200000);
    make_fill_file(&d, 1, 65536);
    make_fill_file(&d, 2, 12345);
    make_fill_file(&d, 3, 0);
    std::fs::write(d.join("fill.x"), b"not ours").unwrap();
    std::fs::write(d.join("fill.04"), b"not ours either").unwrap();
    assert_eq!(
        io_ok(&["fill-verify", p]),
        "fill-verify: 4 files, 277881 bytes ok"
    );

    flip_byte(&d.join("fill.1"), 4242);
    let (code, out, err) = io(&["fill-verify", p]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(
        err.contains("fill.1: mismatch at byte 4242 of 65536"),
        "{err}"
    );

    make_fill_file(&d, 1, 65536);
    std::fs::remove_file(d.join("fill.2")).unwrap();
    let (code, _, err) = io(&["fill-verify", p]);
    assert_eq!(code, 1);
    assert!(err.contains("fill.2 missing"), "{err}");

    let (code, _, _) = io(&["fill-verify", d.join("nodir").to_str().unwrap()]);
    assert_eq!(code, 2);
}

/// `fill` needs a small filesystem: a tmpfs in a private user and mount
/// namespace. Skipped where those cannot be had.
#[test]
fn fill_to_enospc() {
    let d = tmpdir("fill");
    let script = r#"mount -t tmpfs -o size=2m,nr_inodes=$4 none "$1" || exit 99
"$2" fill "$1" --file-size "$3"; echo "fill rc $?"
"$2" fill-verify "$1"; echo "verify rc $?"
"#;
    for (inodes, file_size) in [("1000", "300k"), ("4", "64k")] {
        let out = Command::new("unshare")
            .args([
                "-rm",
                "sh",
                "-c",
                script,
                "sh",
                d.to_str().unwrap(),
                IO,
                file_size,
                inodes,
            ])
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
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(lines.len(), 4, "{stdout}{stderr}");
        assert_eq!(lines[1], "fill rc 0", "{stdout}{stderr}");
        assert_eq!(lines[3], "verify rc 0", "{stdout}{stderr}");
        let nums = |l: &str| -> Vec<u64> {
            l.split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect()
        };
        assert!(
            lines[0].starts_with("fill: ") && lines[0].ends_with(" bytes before ENOSPC"),
            "{}",
            lines[0]
        );
        let (files, bytes) = (nums(lines[0])[0], nums(lines[0])[1]);
        assert_eq!(
            lines[2],
            format!("fill-verify: {files} files, {bytes} bytes ok")
        );
        if inodes == "1000" {
            // Space ran out: 2 MiB of data, in 300 KiB files.
            assert_eq!((files, bytes), (7, 2 << 20), "{}", lines[0]);
        } else {
            // Inodes ran out: the root and three files of 64 KiB.
            assert_eq!((files, bytes), (3, 3 << 16), "{}", lines[0]);
        }
    }
}

#[test]
fn usage_and_open_errors() {
    let d = tmpdir("usage");
    let p = d.join("missing");
    let p = p.to_str().unwrap();
    for args in [
        &[][..],
        &["frob"],
        &["aio", p],
        &["aio", p, "12x"],
        &["aio", p, "4096", "--qd", "0"],
        &["aio", p, "4096", "--bs"],
        &["uring", p, "4096", "--frob"],
        &["mmap", p, "4096", "--qd", "2"],
        &["fill"],
        &["fill-verify", p, "--create"],
    ] {
        let (code, out, err) = io(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty() && err.contains("usage:"), "{args:?}: {err}");
    }
    for mode in ["aio", "uring", "mmap"] {
        let (code, _, err) = io(&[mode, p, "4096"]);
        assert_eq!(code, 2, "{mode}");
        assert!(err.contains("open: No such file"), "{mode}: {err}");
    }
}

/// Runs `rbfs-io rename`, which must fail with exit status 2 and the
/// strerror text `msg`; returns stderr.
fn rename_fails(args: &[&str], msg: &str) -> String {
    let mut all = vec!["rename"];
    all.extend_from_slice(args);
    let (code, out, err) = io(&all);
    assert_eq!(code, 2, "rename {args:?}: {out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(err.contains(msg), "rename {args:?}: {err}");
    err
}

/// Runs `rbfs-io rename OLD NEW --exchange`. Returns false (after a note)
/// if the host filesystem does not support RENAME_EXCHANGE (EINVAL).
fn exchange(old: &Path, new: &Path) -> bool {
    let (o, n) = (old.to_str().unwrap(), new.to_str().unwrap());
    let (code, out, err) = io(&["rename", o, n, "--exchange"]);
    if code == 2 && err.contains("Invalid argument") {
        eprintln!(
            "note: RENAME_EXCHANGE not supported here ({}), skipping",
            err.trim()
        );
        return false;
    }
    assert_eq!(code, 0, "exchange {o} {n}: {err}");
    assert_eq!(out, format!("rename: {o} -> {n} (exchange)\n"));
    true
}

#[test]
fn rename_noreplace() {
    let d = tmpdir("rename-noreplace");
    let (a, b, c) = (d.join("a"), d.join("b"), d.join("c"));
    let (pa, pb, pc) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        c.to_str().unwrap(),
    );
    std::fs::write(&a, b"aaa").unwrap();
    std::fs::write(&b, b"bbbb").unwrap();

    let err = rename_fails(&[pa, pb, "--noreplace"], "File exists");
    assert!(
        err.contains(&format!("rename: {pa} -> {pb}: File exists (errno 17)")),
        "{err}"
    );
    assert_eq!(std::fs::read(&a).unwrap(), b"aaa");
    assert_eq!(std::fs::read(&b).unwrap(), b"bbbb");

    assert_eq!(
        io_ok(&["rename", "--noreplace", pa, pc]),
        format!("rename: {pa} -> {pc} (noreplace)")
    );
    assert!(!a.exists());
    assert_eq!(std::fs::read(&c).unwrap(), b"aaa");
    assert_eq!(std::fs::read(&b).unwrap(), b"bbbb");

    // Without flags an existing target is replaced.
    assert_eq!(
        io_ok(&["rename", pc, pb]),
        format!("rename: {pc} -> {pb} (none)")
    );
    assert!(!c.exists());
    assert_eq!(std::fs::read(&b).unwrap(), b"aaa");

    rename_fails(&[pa, pc], "No such file or directory");
}

#[test]
fn rename_exchange() {
    use std::os::unix::fs::MetadataExt;
    let d = tmpdir("rename-exchange");
    let (a, b, sub) = (d.join("a"), d.join("b"), d.join("sub"));
    std::fs::write(&a, b"first").unwrap();
    std::fs::write(&b, b"second file").unwrap();
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inner"), b"inside").unwrap();

    // Both names must exist, whatever the filesystem supports.
    let missing = d.join("missing");
    let (pa, pm) = (a.to_str().unwrap(), missing.to_str().unwrap());
    let err = rename_fails(&[pa, pm, "--exchange"], "No such file or directory");
    assert!(err.contains("(errno 2)"), "{err}");
    assert_eq!(std::fs::read(&a).unwrap(), b"first");
    assert!(!missing.exists());

    // Two files swap their contents.
    if exchange(&a, &b) {
        assert_eq!(std::fs::read(&a).unwrap(), b"second file");
        assert_eq!(std::fs::read(&b).unwrap(), b"first");
    }

    // A file and a directory: the directory's inode moves to the file's name.
    let dir_ino = std::fs::metadata(&sub).unwrap().ino();
    let file_ino = std::fs::metadata(&a).unwrap().ino();
    if exchange(&a, &sub) {
        let ma = std::fs::metadata(&a).unwrap();
        let ms = std::fs::metadata(&sub).unwrap();
        assert!(ma.is_dir() && ms.is_file());
        assert_eq!((ma.ino(), ms.ino()), (dir_ino, file_ino));
        assert_eq!(std::fs::read(a.join("inner")).unwrap(), b"inside");
        assert!(!sub.join("inner").exists());
    }
}

#[test]
fn rename_bad_flags_and_usage() {
    let d = tmpdir("rename-usage");
    let (a, b) = (d.join("a"), d.join("b"));
    let (pa, pb) = (a.to_str().unwrap(), b.to_str().unwrap());
    std::fs::write(&a, b"a").unwrap();
    std::fs::write(&b, b"b").unwrap();
    // The kernel rejects EXCHANGE with NOREPLACE or WHITEOUT outright.
    for flag in ["--noreplace", "--whiteout"] {
        let err = rename_fails(&[pa, pb, "--exchange", flag], "Invalid argument");
        assert!(err.contains("(errno 22)"), "{err}");
    }
    assert_eq!(std::fs::read(&a).unwrap(), b"a");
    assert_eq!(std::fs::read(&b).unwrap(), b"b");

    for args in [
        &["rename"][..],
        &["rename", pa],
        &["rename", pa, pb, "x"],
        &["rename", pa, pb, "--frob"],
        &["rename", pa, pb, "--noreplace=1"],
    ] {
        let (code, out, err) = io(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(out.is_empty() && err.contains("usage:"), "{args:?}: {err}");
    }
    assert!(a.exists() && b.exists());
}
