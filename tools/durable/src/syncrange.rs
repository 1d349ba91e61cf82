//! rbfs-syncrange: `sync_file_range(2)` on a whole file, from the calling
//! task (so fault injection aimed at this task hits the writeback it
//! starts).
//!
//! ```text
//! rbfs-syncrange FILE [--wait]
//! rbfs-syncrange --fsync-fd N
//! ```
//!
//! Without `--wait`: `SYNC_FILE_RANGE_WRITE` (background-style writeback,
//! `WB_SYNC_NONE`, run by this task).  With it, also wait before and after.
//! `--fsync-fd N` calls `fsync(N)` on an inherited descriptor (an open file
//! description opened earlier, e.g. by the shell's `exec 3<FILE`), to see
//! which errors each open file is told about.
//! Exit status: 0 on success, 2 on an error (printed).

use std::os::unix::io::AsRawFd;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, n] = args.as_slice() {
        if flag == "--fsync-fd" {
            let Ok(fd) = n.parse::<i32>() else {
                eprintln!("rbfs-syncrange: bad descriptor {n}");
                return ExitCode::from(2);
            };
            // SAFETY: fsync on a descriptor number; a bad one gives EBADF.
            if unsafe { libc::fsync(fd) } != 0 {
                eprintln!("rbfs-syncrange: fsync({fd}): {}", std::io::Error::last_os_error());
                return ExitCode::from(2);
            }
            println!("rbfs-syncrange: fsync({fd}): ok");
            return ExitCode::SUCCESS;
        }
    }
    let (path, wait) = match args.as_slice() {
        [p] => (p, false),
        [p, w] if w == "--wait" => (p, true),
        _ => {
            eprintln!("usage: rbfs-syncrange FILE [--wait]");
            return ExitCode::from(2);
        }
    };
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rbfs-syncrange: {path}: {e}");
            return ExitCode::from(2);
        }
    };
    let mut flags = libc::SYNC_FILE_RANGE_WRITE;
    if wait {
        flags |= libc::SYNC_FILE_RANGE_WAIT_BEFORE | libc::SYNC_FILE_RANGE_WAIT_AFTER;
    }
    // SAFETY: a plain syscall on an open descriptor.
    if unsafe { libc::sync_file_range(f.as_raw_fd(), 0, 0, flags) } != 0 {
        eprintln!("rbfs-syncrange: {path}: {}", std::io::Error::last_os_error());
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
