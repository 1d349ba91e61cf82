//! Writes through a shared file mapping.

use crate::{close_checked, os_fail, Fail, Res, WriteArgs};
use rbfs_guest_tools::fill_pattern;
use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::ptr;

/// A fault on the mapping (the filesystem failing page_mkwrite or the read
/// of a page) arrives as SIGBUS; turn it into the I/O error exit status.
extern "C" fn on_sigbus(_: libc::c_int) {
    const MSG: &[u8] = b"rbfs-io: mmap: SIGBUS while storing through the mapping\n";
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(2);
    }
}

fn catch_sigbus() -> Res<()> {
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGBUS, &sa, ptr::null_mut()) != 0 {
            return Err(os_fail("sigaction(SIGBUS)"));
        }
    }
    Ok(())
}

pub fn run(a: &WriteArgs) -> Res<String> {
    let path = &a.path;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(a.create)
        .mode(0o644)
        .open(path)
        .map_err(|e| Fail::Io(format!("{path}: open: {e}")))?;
    let end = a.offset + a.size;
    let old_size = file
        .metadata()
        .map_err(|e| Fail::Io(format!("{path}: fstat: {e}")))?
        .len();
    let extended = old_size < end;
    if extended {
        file.set_len(end)
            .map_err(|e| Fail::Io(format!("{path}: ftruncate to {end}: {e}")))?;
    }
    if a.size == 0 {
        close_checked(file, path)?;
        return Ok(format!("mmap: 0 bytes at offset {}", a.offset));
    }

    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let map_off = a.offset / page * page;
    let map_len =
        usize::try_from(end - map_off).map_err(|_| Fail::Usage("mapping too large".into()))?;
    catch_sigbus()?;
    // SAFETY: a new shared mapping of the file; nothing else refers to it.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            map_len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            file.as_raw_fd(),
            map_off as libc::off_t,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(os_fail(format_args!(
            "{path}: mmap of {map_len} bytes at {map_off}"
        )));
    }
    // SAFETY: the mapping is map_len bytes, readable and writable, and
    // only this slice refers to it until munmap.
    let mem = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), map_len) };
    fill_pattern(a.seed, a.offset, &mut mem[(a.offset - map_off) as usize..]);
    // SAFETY: the range is the mapping made above.
    if unsafe { libc::msync(p, map_len, libc::MS_SYNC) } != 0 {
        return Err(os_fail(format_args!(
            "{path}: msync(MS_SYNC) of {map_len} bytes at {map_off}"
        )));
    }
    // SAFETY: as above; `mem` is not used any more.
    if unsafe { libc::munmap(p, map_len) } != 0 {
        return Err(os_fail(format_args!("{path}: munmap")));
    }
    close_checked(file, path)?;
    Ok(format!(
        "mmap: {} bytes at offset {} through a {map_len}-byte shared mapping at {map_off}{}",
        a.size,
        a.offset,
        if extended {
            format!(", file extended from {old_size} bytes")
        } else {
            String::new()
        }
    ))
}
