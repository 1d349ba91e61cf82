// SPDX-License-Identifier: GPL-2.0

//! rbfs-corrupt: damage an rbfs image in catalogued, reproducible ways for
//! bad-image tests.  See `rbfs-corrupt --help` and the crate docs.

#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    let code = rbfs_corrupt::cli::run(&args, &mut stdout.lock(), &mut stderr.lock());
    ExitCode::from(code as u8)
}
