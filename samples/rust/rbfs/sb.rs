// SPDX-License-Identifier: GPL-2.0

//! The super block: mounting, mount options, statistics, error reporting.

use crate::format::{self, Superblock};
use crate::inode;
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use kernel::fs::param::{Constant, Spec, Value};
use kernel::fs::sb::{MountFlags, NewSuperBlock, Stat, SuperBlock};
use kernel::fs::{inode::INode, FileSystem};
use kernel::prelude::*;
use kernel::time::Ktime;
use kernel::types::ARef;
use kernel::c_str;

/// The rbfs filesystem type.
pub(crate) struct Rbfs;

/// What to do when corruption is found after mounting (`errors=`).
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Errors {
    /// Report it and fail the operation with `EUCLEAN` (the default).
    #[default]
    Continue,
    /// Also make the filesystem read-only.
    RemountRo,
}

/// Mount options.
#[derive(Default)]
pub(crate) struct Options {
    errors: Option<Errors>,
    /// `experimental_rw`: allow a read-write mount, in which existing file
    /// data is written in place (no allocation, no metadata updates yet).
    rw: bool,
}

const OPT_ERRORS: u8 = 0;
const OPT_RW: u8 = 1;

static ERRORS_TABLE: [Constant; 3] = [
    Constant::new(c_str!("continue"), Errors::Continue as i32),
    Constant::new(c_str!("remount-ro"), Errors::RemountRo as i32),
    Constant::END,
];

static PARAMS: [Spec; 3] = [
    Spec::enumerated(c_str!("errors"), OPT_ERRORS, &ERRORS_TABLE),
    Spec::flag(c_str!("experimental_rw"), OPT_RW),
    Spec::END,
];

/// A mounted rbfs.
pub(crate) struct SbInfo {
    /// The super block as read (and validated) at mount time.
    pub(crate) sb: Superblock,
    errors: Errors,
    reports: ReportLimit,
    /// Mounted with `experimental_rw`.
    pub(crate) rw: bool,
}

impl SbInfo {
    /// Whether a corruption report may be printed now (rate limited).
    pub(crate) fn reports_allowed(&self) -> bool {
        self.reports.allow()
    }

    /// log2 of the block size.
    pub(crate) fn block_log(&self) -> u32 {
        self.sb.layout.block_log
    }
}

/// At most `BURST` reports per `INTERVAL_MS`, like the kernel's default
/// printk ratelimit.  Usable in interrupt context.
pub(crate) struct ReportLimit {
    window_start_ms: AtomicI64,
    count: AtomicU32,
}

impl ReportLimit {
    const INTERVAL_MS: i64 = 5000;
    const BURST: u32 = 10;

    pub(crate) const fn new() -> Self {
        Self { window_start_ms: AtomicI64::new(0), count: AtomicU32::new(0) }
    }

    /// Whether a report may be printed now.
    pub(crate) fn allow(&self) -> bool {
        let now = Ktime::ktime_get();
        let start = self.window_start_ms.load(Ordering::Relaxed);
        if now.to_ms() - start >= Self::INTERVAL_MS
            && self
                .window_start_ms
                .compare_exchange(start, now.to_ms(), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed) < Self::BURST
    }
}

/// `EUCLEAN` ("Structure needs cleaning"): what corrupt metadata returns.
pub(crate) fn euclean() -> Error {
    Error::from_errno(-(kernel::bindings::EUCLEAN as i32))
}

/// Reports corrupt metadata found after mount and returns `EUCLEAN` for
/// the caller to pass on.  `what` says where (e.g. "inode 12"), `err` what.
pub(crate) fn corrupt(sb: &SuperBlock<Rbfs>, what: core::fmt::Arguments<'_>, err: format::FormatError) -> Error {
    let info = sb.data();
    if info.reports.allow() {
        pr_err!("{}: corrupt metadata: {}: {}\n", sb.device_name(), what, err);
    }
    if info.errors == Errors::RemountRo && !sb.is_read_only() {
        pr_err!("{}: remounting read-only (errors=remount-ro)\n", sb.device_name());
        sb.force_read_only();
    }
    euclean()
}

impl FileSystem for Rbfs {
    const NAME: &'static CStr = c_str!("rbfs");
    const MAGIC: u64 = format::MAGIC as u64;
    const PARAMS: &'static [Spec] = &PARAMS;

    type Options = Options;
    type Data = KBox<SbInfo>;
    type INodeData = inode::InodeInfo;

    fn parse_param(options: &mut Options, opt: u8, value: Value) -> Result {
        match opt {
            OPT_RW => {
                options.rw = true;
                Ok(())
            }
            OPT_ERRORS => {
                options.errors = Some(if value.uint == Errors::RemountRo as u32 {
                    Errors::RemountRo
                } else {
                    Errors::Continue
                });
                Ok(())
            }
            _ => Err(EINVAL),
        }
    }

    fn fill_super(sb: &NewSuperBlock<'_, Self>, options: Options) -> Result<KBox<SbInfo>> {
        let dev = sb.device_name();
        // The super block is the first 512 bytes of block 0 whatever the
        // block size, so read it with the smallest the device allows.
        sb.set_min_block_size(format::SUPERBLOCK_SIZE as u32)?;
        let raw = sb.bread(0)?;
        let Some(bytes) = raw.data().get(..format::SUPERBLOCK_SIZE) else {
            return Err(EINVAL);
        };
        let disk = Superblock::parse(bytes).map_err(|e| {
            pr_err!("{} on {}\n", e, dev);
            EINVAL
        })?;
        drop(raw);
        disk.check_device_size(sb.device_size()).map_err(|e| {
            pr_err!("{} on {}\n", e, dev);
            EINVAL
        })?;
        let bs = disk.block_size() as u32;
        sb.set_block_size(bs).map_err(|e| {
            pr_err!("{}: block size {} not supported by the device\n", dev, bs);
            e
        })?;
        sb.set_max_bytes(format::max_file_size(disk.layout.block_log));
        sb.set_uuid(&disk.uuid);
        if !options.rw && !sb.is_read_only() {
            pr_info!("{}: mounting read-only (read-write needs -o experimental_rw)\n", dev);
            sb.force_read_only();
        }
        if options.rw && !sb.is_read_only() {
            pr_warn!("{}: experimental read-write mode: file data is written in place; no allocation, no metadata changes\n", dev);
        }
        if disk.state != format::STATE_CLEAN {
            pr_warn!("{}: filesystem was not cleanly unmounted; run fsck.rbfs\n", dev);
        }
        let info = KBox::new(
            SbInfo { sb: disk, errors: options.errors.unwrap_or_default(), reports: ReportLimit::new(), rw: options.rw },
            GFP_KERNEL,
        )?;
        pr_info!(
            "{}: mounted ({} blocks of {} bytes, {} inodes)\n",
            dev,
            info.sb.layout.blocks_count,
            bs,
            info.sb.layout.inodes_count
        );
        Ok(info)
    }

    fn root(sb: &SuperBlock<Self>) -> Result<ARef<INode<Self>>> {
        let root = inode::iget(sb, sb.data().sb.root_ino)?;
        if !inode::is_dir(&root) {
            pr_err!("{}: root inode is not a directory\n", sb.device_name());
            return Err(euclean());
        }
        Ok(root)
    }

    fn statfs(sb: &SuperBlock<Self>) -> Result<Stat> {
        let d = &sb.data().sb;
        let uuid = &d.uuid;
        let mut fsid = 0u64;
        for (i, b) in uuid.iter().enumerate() {
            fsid ^= u64::from(*b) << ((i % 8) * 8);
        }
        Ok(Stat {
            block_size: d.block_size() as u32,
            blocks: u64::from(d.layout.data_blocks),
            free_blocks: u64::from(d.free_blocks),
            files: u64::from(d.layout.inodes_count),
            free_files: u64::from(d.free_inodes),
            name_len: format::NAME_MAX as u32,
            fsid,
        })
    }

    fn reconfigure(sb: &SuperBlock<Self>, options: Options, flags: &mut MountFlags) -> Result {
        if !flags.read_only() && !sb.data().rw && !options.rw {
            pr_info!("{}: staying read-only (read-write needs -o experimental_rw at mount)\n", sb.device_name());
            flags.set_read_only();
        } else if !flags.read_only() && !sb.data().rw {
            pr_info!("{}: experimental_rw must be given at mount time\n", sb.device_name());
            flags.set_read_only();
        }
        if options.errors.is_some() {
            pr_warn!("{}: errors= cannot be changed on remount\n", sb.device_name());
        }
        Ok(())
    }
}
