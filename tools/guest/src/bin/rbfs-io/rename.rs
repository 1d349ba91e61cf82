//! renameat2 with its flags, for the rename paths of the filesystem.

use crate::{cstring, Fail, Res};

const RENAME_NOREPLACE: u32 = 1;
const RENAME_EXCHANGE: u32 = 2;
const RENAME_WHITEOUT: u32 = 4;

const FLAGS: [(&str, u32); 3] = [
    ("--noreplace", RENAME_NOREPLACE),
    ("--exchange", RENAME_EXCHANGE),
    ("--whiteout", RENAME_WHITEOUT),
];

/// "noreplace|exchange", or "none".
fn flag_names(flags: u32) -> String {
    let names: Vec<&str> = FLAGS
        .iter()
        .filter(|&&(_, f)| flags & f != 0)
        .map(|&(opt, _)| &opt[2..])
        .collect();
    if names.is_empty() {
        "none".into()
    } else {
        names.join("|")
    }
}

/// The C library's message for `errno`, without Rust's "(os error N)".
pub fn strerror(errno: i32) -> String {
    let mut buf = [0u8; 256];
    // SAFETY: strerror_r writes a NUL-terminated string of at most
    // `buf.len()` bytes into `buf`.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr().cast(), buf.len()) };
    let len = buf.iter().position(|&b| b == 0).unwrap_or(0);
    if rc != 0 || len == 0 {
        return format!("Unknown error {errno}");
    }
    String::from_utf8_lossy(&buf[..len]).into_owned()
}

/// `rbfs-io rename OLD NEW [--noreplace] [--exchange] [--whiteout]`; `args`
/// are the words after "rename".
pub fn run(args: &[String]) -> Res<String> {
    let mut pos = Vec::new();
    let mut flags = 0u32;
    for arg in args {
        if !arg.starts_with("--") {
            pos.push(arg.as_str());
            continue;
        }
        match FLAGS.iter().find(|&&(opt, _)| opt == arg) {
            Some(&(_, f)) => flags |= f,
            None => return Err(Fail::Usage(format!("rename: unknown option '{arg}'"))),
        }
    }
    let [old, new] = pos[..] else {
        return Err(Fail::Usage(format!(
            "rename: expected 2 arguments, got {}",
            pos.len()
        )));
    };
    let (c_old, c_new) = (cstring(old)?, cstring(new)?);
    // SAFETY: both paths are NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            c_old.as_ptr(),
            libc::AT_FDCWD,
            c_new.as_ptr(),
            flags,
        )
    };
    if rc != 0 {
        let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
        return Err(Fail::Io(format!(
            "rename: {old} -> {new}: {} (errno {errno})",
            strerror(errno)
        )));
    }
    Ok(format!("rename: {old} -> {new} ({})", flag_names(flags)))
}
