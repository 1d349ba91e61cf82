// SPDX-License-Identifier: GPL-2.0

//! fsck.rbfs: check and repair an rbfs filesystem.
//!
//! Usage: `fsck.rbfs [-n | -y | -p] [-f] [-v] DEVICE_OR_IMAGE`.  Exit codes
//! are fsck(8)'s: 0 clean, 1 errors corrected, 4 errors left uncorrected,
//! 8 operational error, 16 usage error (bits combined).  See
//! `Documentation/filesystems/rbfs.rst`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use rbfs_fsck::{parse_args, run, Command, EXIT_USAGE, USAGE};

fn main() -> ExitCode {
    let code = match parse_args(std::env::args_os().skip(1).collect()) {
        Ok(Command::Help) => {
            println!("{USAGE}");
            0
        }
        Ok(Command::Run(opts)) => {
            let stdout = std::io::stdout();
            let stderr = std::io::stderr();
            run(&opts, &mut stdout.lock(), &mut stderr.lock())
        }
        Err(msg) => {
            eprintln!("fsck.rbfs: {msg}\n{USAGE}");
            EXIT_USAGE
        }
    };
    ExitCode::from(code as u8)
}
