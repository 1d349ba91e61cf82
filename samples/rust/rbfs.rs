// SPDX-License-Identifier: GPL-2.0

//! rbfs: a block-backed filesystem whose data path is Rust.
//!
//! The on-disk format is `rbfs/format.rs`, shared with the userspace tools
//! (see Documentation/filesystems/rbfs.rst).
//!
//! Module layout, by concern:
//! - `sb`: mounting, the super block, statfs, remount;
//! - `alloc`: the block and inode bitmaps;
//! - `inode`: the inode table, inode creation, write-back and eviction;
//! - `dir`: directories and the namespace operations;
//! - `file`: the operations tables of regular files (page cache, setattr,
//!   fsync), which connect the rest;
//! - `bmap`: the block mapper (lookups through the indirect tree, block
//!   allocation for writes);
//! - `ordered`: ordered data (new blocks pending until their data is on
//!   the disk, then published);
//! - `truncate`: freeing blocks beyond a new end;
//! - `write`: the Rust writeback path (`writepages`, `writepage`; the bio
//!   completion is `kernel::fs::write_bio`'s).
//!
//! Everything here is safe Rust over the abstractions in `kernel::fs`.

use kernel::prelude::*;

#[allow(unreachable_pub, dead_code)]
#[path = "rbfs/format.rs"]
mod format;

#[path = "rbfs/alloc.rs"]
mod alloc;
#[path = "rbfs/bmap.rs"]
mod bmap;
#[path = "rbfs/dir.rs"]
mod dir;
#[path = "rbfs/file.rs"]
mod file;
#[path = "rbfs/inode.rs"]
mod inode;
#[path = "rbfs/ordered.rs"]
mod ordered;
#[path = "rbfs/sb.rs"]
mod sb;
#[path = "rbfs/truncate.rs"]
mod truncate;
#[path = "rbfs/write.rs"]
mod write;

/// Version of the module, logged at load time.
const VERSION: &str = "0.3.0";

module! {
    type: RbfsModule,
    name: "rbfs",
    author: "rbfs developers",
    description: "rbfs: block-backed filesystem with a Rust writeback path",
    license: "GPL",
    alias: ["fs-rbfs"],
}

/// The filesystem type, registered while the module is loaded.
static RBFS_TYPE: kernel::fs::Registration<sb::Rbfs> = kernel::fs::Registration::new();

struct RbfsModule {
    _fs: kernel::fs::Registered<sb::Rbfs>,
}

impl kernel::Module for RbfsModule {
    fn init(module: &'static ThisModule) -> Result<Self> {
        let fs = RBFS_TYPE.register(module)?;
        pr_info!(
            "rbfs {} loaded (on-disk format version {})\n",
            VERSION,
            format::VERSION
        );
        Ok(RbfsModule { _fs: fs })
    }
}

impl Drop for RbfsModule {
    fn drop(&mut self) {
        pr_info!("rbfs {} unloaded\n", VERSION);
    }
}
