//! Inode attribute flags through `FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS` (what
//! `chattr`/`lsattr` use; busybox has neither) and `statx`'s attributes.

use crate::{cstring, Fail, Res};

/// `FS_IOC_GETFLAGS`/`FS_IOC_SETFLAGS`: `_IOR('f', 1, long)`/`_IOW('f', 2,
/// long)` on x86-64 (the kernel reads and writes an int nevertheless).
const FS_IOC_GETFLAGS: libc::c_ulong = 0x8008_6601;
const FS_IOC_SETFLAGS: libc::c_ulong = 0x4008_6602;

/// lsattr's letters and the `FS_*_FL` bits, in the order printed.
const LETTERS: [(char, u32); 5] = [
    ('S', 0x08), // FS_SYNC_FL
    ('i', 0x10), // FS_IMMUTABLE_FL
    ('a', 0x20), // FS_APPEND_FL
    ('d', 0x40), // FS_NODUMP_FL
    ('A', 0x80), // FS_NOATIME_FL
];

/// `statx` attribute bits with the letters of the same flags.
const STATX_LETTERS: [(char, u64); 3] = [
    ('i', libc::STATX_ATTR_IMMUTABLE as u64),
    ('a', libc::STATX_ATTR_APPEND as u64),
    ('d', libc::STATX_ATTR_NODUMP as u64),
];

fn letters(fl: u32) -> String {
    let mut s: String = LETTERS
        .iter()
        .filter(|&&(_, b)| fl & b != 0)
        .map(|&(c, _)| c)
        .collect();
    let known: u32 = LETTERS.iter().map(|&(_, b)| b).sum();
    if fl & !known != 0 {
        s.push_str(&format!("+{:#x}", fl & !known));
    }
    if s.is_empty() {
        s.push('-');
    }
    s
}

fn statx_letters(bits: u64) -> String {
    let s: String = STATX_LETTERS
        .iter()
        .filter(|&&(_, b)| bits & b != 0)
        .map(|&(c, _)| c)
        .collect();
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// The flag bits of a change word such as `+ai` or `-d`.
fn parse_change(word: &str) -> Res<(bool, u32)> {
    let usage = || {
        Fail::Usage(format!(
            "attr: bad change '{word}' (+/- then letters of SiadA)"
        ))
    };
    let (add, rest) = match word.split_at_checked(1) {
        Some(("+", r)) => (true, r),
        Some(("-", r)) => (false, r),
        _ => return Err(usage()),
    };
    let mut bits = 0;
    for c in rest.chars() {
        let &(_, b) = LETTERS.iter().find(|&&(l, _)| l == c).ok_or_else(usage)?;
        bits |= b;
    }
    if bits == 0 {
        return Err(usage());
    }
    Ok((add, bits))
}

/// Fails as `rbfs-io: attr: FILE: WHAT: <strerror> (errno N)`.
fn sys_fail(path: &str, what: &str) -> Fail {
    let e = std::io::Error::last_os_error();
    Fail::Io(format!(
        "attr: {path}: {what}: {} (errno {})",
        crate::rename::strerror(e.raw_os_error().unwrap_or(0)),
        e.raw_os_error().unwrap_or(0)
    ))
}

/// `rbfs-io attr FILE [+LETTERS|-LETTERS]...`: applies the changes in
/// order (one `FS_IOC_SETFLAGS` each, after a `FS_IOC_GETFLAGS`), then
/// prints `attr: FILE flags=LETTERS statx=LETTERS mask=LETTERS`.
pub fn run(args: &[String]) -> Res<String> {
    let (path, changes) = args
        .split_first()
        .ok_or_else(|| Fail::Usage("attr: missing FILE".into()))?;
    let changes = changes
        .iter()
        .map(|w| parse_change(w))
        .collect::<Res<Vec<_>>>()?;
    let c_path = cstring(path)?;
    // SAFETY: a NUL-terminated path that outlives the call.
    let fd = unsafe {
        libc::open(
            c_path.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(sys_fail(path, "open"));
    }
    let result = (|| {
        let get = || -> Res<u32> {
            let mut fl: libc::c_int = 0;
            // SAFETY: `fd` is open; the kernel writes one int to `fl`.
            if unsafe { libc::ioctl(fd, FS_IOC_GETFLAGS, &mut fl) } != 0 {
                return Err(sys_fail(path, "FS_IOC_GETFLAGS"));
            }
            Ok(fl as u32)
        };
        for (add, bits) in changes {
            let old = get()?;
            let mut fl = (if add { old | bits } else { old & !bits }) as libc::c_int;
            // SAFETY: `fd` is open; the kernel reads one int from `fl`.
            if unsafe { libc::ioctl(fd, FS_IOC_SETFLAGS, &mut fl) } != 0 {
                return Err(sys_fail(path, "FS_IOC_SETFLAGS"));
            }
        }
        let fl = get()?;
        // SAFETY: all-zero is a valid `statx` buffer.
        let mut stx: libc::statx = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated path and a buffer the kernel fills.
        let rc = unsafe {
            libc::statx(
                libc::AT_FDCWD,
                c_path.as_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
                libc::STATX_BASIC_STATS,
                &mut stx,
            )
        };
        if rc != 0 {
            return Err(sys_fail(path, "statx"));
        }
        Ok(format!(
            "attr: {path} flags={} statx={} mask={}",
            letters(fl),
            statx_letters(stx.stx_attributes),
            statx_letters(stx.stx_attributes_mask)
        ))
    })();
    // SAFETY: `fd` is ours and closed once.
    unsafe { libc::close(fd) };
    result
}
