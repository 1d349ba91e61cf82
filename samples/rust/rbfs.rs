// SPDX-License-Identifier: GPL-2.0

//! rbfs: a block-backed read/write filesystem whose data path is Rust.
//!
//! This is the module skeleton: it registers nothing yet and only reports
//! that it was loaded and unloaded, so the build and boot harness has a real
//! module to load.  The filesystem itself arrives with the read path.

use kernel::prelude::*;

/// Version of the module, logged at load time.  Bumped with the on-disk
/// format and with user-visible behaviour.
const VERSION: &str = "0.1.0";

module! {
    type: Rbfs,
    name: "rbfs",
    author: "rbfs developers",
    description: "rbfs: block-backed filesystem with a Rust writeback path",
    license: "GPL",
}

struct Rbfs;

impl kernel::Module for Rbfs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        pr_info!("rbfs {} loaded\n", VERSION);
        Ok(Rbfs)
    }
}

impl Drop for Rbfs {
    fn drop(&mut self) {
        pr_info!("rbfs {} unloaded\n", VERSION);
    }
}
