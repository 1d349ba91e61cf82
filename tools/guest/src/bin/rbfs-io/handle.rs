//! File handles: `name_to_handle_at` and `open_by_handle_at`, the
//! filesystem's export operations without NFS.

use crate::rename::strerror;
use crate::{cstring, Fail, Res};

/// `MAX_HANDLE_SZ`: the largest handle the kernel hands out, in bytes.
const MAX_HANDLE_SZ: usize = 128;

/// A `struct file_handle` (`handle_bytes`, `handle_type`, then the bytes),
/// kept in u32s for its alignment.
type Handle = [u32; 2 + MAX_HANDLE_SZ / 4];

fn sys_fail(what: &str) -> Fail {
    let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
    Fail::Io(format!(
        "handle: {what}: {} (errno {errno})",
        strerror(errno)
    ))
}

fn to_bytes(h: &Handle) -> Vec<u8> {
    let len = 8 + (h[0] as usize).min(MAX_HANDLE_SZ);
    h.iter().flat_map(|w| w.to_ne_bytes()).take(len).collect()
}

fn from_bytes(b: &[u8]) -> Res<Handle> {
    let mut h: Handle = [0; 2 + MAX_HANDLE_SZ / 4];
    if b.len() < 8 || b.len() > 8 + MAX_HANDLE_SZ {
        return Err(Fail::Usage(format!(
            "handle: a saved handle of {} bytes",
            b.len()
        )));
    }
    for (w, c) in h.iter_mut().zip(b.chunks(4)) {
        let mut x = [0u8; 4];
        x[..c.len()].copy_from_slice(c);
        *w = u32::from_ne_bytes(x);
    }
    if h[0] as usize != b.len() - 8 {
        return Err(Fail::Usage(
            "handle: saved handle's length does not match".into(),
        ));
    }
    Ok(h)
}

/// `rbfs-io handle save PATH OUT`: writes PATH's handle to OUT and prints
/// `handle: PATH type=T bytes=N`.  `rbfs-io handle open MOUNT IN`: opens
/// the saved handle read-only (`open_by_handle_at` on MOUNT) and prints
/// `handle: opened WHERE size=S`, WHERE being the path the kernel
/// reconnected it to (`/proc/self/fd`).
pub fn run(args: &[String]) -> Res<String> {
    let words: Vec<&str> = args.iter().map(String::as_str).collect();
    match words[..] {
        ["save", path, out] => {
            let c_path = cstring(path)?;
            let mut h: Handle = [0; 2 + MAX_HANDLE_SZ / 4];
            h[0] = MAX_HANDLE_SZ as u32;
            let mut mount_id: libc::c_int = 0;
            // SAFETY: a NUL-terminated path, a handle buffer with room for
            // `handle_bytes` bytes, and an int for the mount id.
            let rc = unsafe {
                libc::syscall(
                    libc::SYS_name_to_handle_at,
                    libc::AT_FDCWD,
                    c_path.as_ptr(),
                    h.as_mut_ptr(),
                    &mut mount_id as *mut libc::c_int,
                    0,
                )
            };
            if rc != 0 {
                return Err(sys_fail(&format!("name_to_handle_at {path}")));
            }
            std::fs::write(out, to_bytes(&h)).map_err(|e| Fail::Io(format!("{out}: {e}")))?;
            Ok(format!(
                "handle: {path} type={} bytes={}",
                h[1] as i32, h[0]
            ))
        }
        ["open", mount, input] => {
            let saved = std::fs::read(input).map_err(|e| Fail::Io(format!("{input}: {e}")))?;
            let mut h = from_bytes(&saved)?;
            let c_mount = cstring(mount)?;
            // SAFETY: a NUL-terminated path.
            let mfd = unsafe { libc::open(c_mount.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY) };
            if mfd < 0 {
                return Err(sys_fail(&format!("open {mount}")));
            }
            // SAFETY: an open descriptor on the mount and a valid handle.
            let fd = unsafe {
                libc::syscall(
                    libc::SYS_open_by_handle_at,
                    mfd,
                    h.as_mut_ptr(),
                    libc::O_RDONLY,
                )
            } as libc::c_int;
            let result = if fd < 0 {
                Err(sys_fail("open_by_handle_at"))
            } else {
                let where_ = std::fs::read_link(format!("/proc/self/fd/{fd}"))
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|e| format!("? ({e})"));
                // SAFETY: all-zero is a valid `stat`; `fd` is open.
                let mut st: libc::stat = unsafe { std::mem::zeroed() };
                // SAFETY: as above.
                let r = if unsafe { libc::fstat(fd, &mut st) } != 0 {
                    Err(sys_fail("fstat"))
                } else {
                    Ok(format!("handle: opened {where_} size={}", st.st_size))
                };
                // SAFETY: ours, closed once.
                unsafe { libc::close(fd) };
                r
            };
            // SAFETY: ours, closed once.
            unsafe { libc::close(mfd) };
            result
        }
        _ => Err(Fail::Usage(
            "handle: expected save PATH OUT or open MOUNT IN".into(),
        )),
    }
}
