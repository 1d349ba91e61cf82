// SPDX-License-Identifier: GPL-2.0

//! The super block: mounting, mount options, statistics, error reporting.

use crate::format::{self, Superblock};
use crate::{alloc, inode};
use core::sync::atomic::{AtomicI64, AtomicU32, Ordering};
use kernel::c_str;
use kernel::fs::param::{Constant, Spec, Value};
use kernel::fs::sb::{MountFlags, NewSuperBlock, Stat, SuperBlock, TrimRange};
use kernel::fs::{inode::Inode, FileSystem};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::Mutex;
use kernel::time::Ktime;
use kernel::types::ARef;

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
}

const OPT_ERRORS: u8 = 0;

static ERRORS_TABLE: [Constant; 3] = [
    Constant::new(c_str!("continue"), Errors::Continue as i32),
    Constant::new(c_str!("remount-ro"), Errors::RemountRo as i32),
    Constant::END,
];

static PARAMS: [Spec; 2] = [
    Spec::enumerated(c_str!("errors"), OPT_ERRORS, &ERRORS_TABLE),
    Spec::END,
];

/// A mounted rbfs.
#[pin_data]
pub(crate) struct SbInfo {
    /// The super block as read (and validated) at mount time: geometry,
    /// identity and times.  The free counts live in `alloc`.
    pub(crate) sb: Superblock,
    errors: Errors,
    reports: ReportLimit,
    /// The allocators' state (free counts and where to look next).
    #[pin]
    pub(crate) alloc: Mutex<alloc::AllocState>,
    /// The read-only-compat features as on the disk.  Every write of the
    /// super block holds this mutex, so a feature turned on
    /// ([`SbInfo::enable_ro_compat`]) is never written over by an older
    /// copy.
    #[pin]
    ro_compat: Mutex<u32>,
    /// What `ro_compat` holds, for readers (inode validation) that must not
    /// wait for a super block write in progress.
    ro_compat_now: AtomicU32,
    /// The generation number of the next new inode (as ext2's
    /// `s_next_generation`): a counter, so that an inode number used again
    /// gets another generation even within the same second, seeded from
    /// the mount time so that it differs between mounts.
    next_generation: AtomicU32,
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

    /// A generation number for a new inode.
    pub(crate) fn new_generation(&self) -> u32 {
        self.next_generation.fetch_add(1, Ordering::Relaxed)
    }

    /// The super block as it is on the disk now, as far as what inodes
    /// are validated against is concerned (geometry and features).
    pub(crate) fn disk_sb(&self) -> Superblock {
        let mut d = self.sb;
        d.feature_ro_compat = self.ro_compat_now.load(Ordering::Acquire);
        d
    }
}

/// Turns on the read-only-compat feature `bit`, on the disk first (the
/// super block is written and waited for) so that nothing that needs it
/// reaches the disk before it does.
pub(crate) fn enable_ro_compat(sb: &SuperBlock<Rbfs>, bit: u32) -> Result {
    let info = sb.data();
    if info.ro_compat_now.load(Ordering::Acquire) & bit != 0 {
        return Ok(());
    }
    let mut feat = info.ro_compat.lock();
    if *feat & bit != 0 {
        return Ok(());
    }
    let want = *feat | bit;
    write_super_locked(sb, &mut feat, want, None, true)?;
    pr_info!(
        "{}: read-only-compatible feature {:#x} enabled
",
        sb.device_name(),
        bit
    );
    Ok(())
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
        Self {
            window_start_ms: AtomicI64::new(0),
            count: AtomicU32::new(0),
        }
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
pub(crate) fn corrupt(
    sb: &SuperBlock<Rbfs>,
    what: core::fmt::Arguments<'_>,
    err: format::FormatError,
) -> Error {
    let info = sb.data();
    if info.reports.allow() {
        pr_err!(
            "{}: corrupt metadata: {}: {}\n",
            sb.device_name(),
            what,
            err
        );
    }
    if info.errors == Errors::RemountRo && !sb.is_read_only() {
        pr_err!(
            "{}: remounting read-only (errors=remount-ro)\n",
            sb.device_name()
        );
        sb.force_read_only();
    }
    euclean()
}

#[vtable]
impl FileSystem for Rbfs {
    const NAME: &'static CStr = c_str!("rbfs");
    const MAGIC: u64 = format::MAGIC as u64;
    const PARAMS: &'static [Spec] = &PARAMS;

    type Options = Options;
    type Data = Pin<KBox<SbInfo>>;
    type InodeData = inode::InodeInfo;

    fn fast_symlink_target(data: &inode::InodeInfo) -> Option<&CStr> {
        data.fast_symlink_target()
    }

    fn parse_param(options: &mut Options, opt: u8, value: Value) -> Result {
        match opt {
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

    fn fill_super(sb: &NewSuperBlock<'_, Self>, options: Options) -> Result<Pin<KBox<SbInfo>>> {
        let dev = sb.device_name();
        // The super block is the first 512 bytes of block 0 whatever the
        // block size, so read it with the smallest the device allows.
        sb.set_min_block_size(format::SUPERBLOCK_SIZE as u32)?;
        let raw = sb.bread(0)?;
        let parsed = match raw.lock().data().get(..format::SUPERBLOCK_SIZE) {
            Some(bytes) => Superblock::parse(bytes),
            None => return Err(EINVAL),
        };
        drop(raw);
        let mut disk = parsed.map_err(|e| {
            pr_err!("{} on {}\n", e, dev);
            EINVAL
        })?;
        disk.check_device_size(sb.device_size()).map_err(|e| {
            pr_err!("{} on {}\n", e, dev);
            EINVAL
        })?;
        let bs = disk.block_size() as u32;
        sb.set_block_size(bs).inspect_err(|_| {
            pr_err!("{}: block size {} not supported by the device\n", dev, bs);
        })?;
        sb.set_max_bytes(format::max_file_size(disk.layout.block_log));
        sb.set_uuid(&disk.uuid);
        if disk.unknown_ro_compat() != 0 && !sb.is_read_only() {
            pr_warn!(
                "{}: unknown read-only-compatible features {:#x}: mounting read-only\n",
                dev,
                disk.unknown_ro_compat()
            );
            sb.force_read_only();
        }
        // The bitmaps are the truth about free space; the counts in the
        // super block are only as fresh as its last write.
        let (free_blocks, free_inodes) = alloc::count_free(sb, &disk)?;
        if (free_blocks, free_inodes) != (disk.free_blocks, disk.free_inodes) {
            if disk.state == format::STATE_CLEAN {
                pr_warn!(
                    "{}: free counts in the super block ({} blocks, {} inodes) differ from the bitmaps ({}, {}); using the bitmaps\n",
                    dev, disk.free_blocks, disk.free_inodes, free_blocks, free_inodes
                );
            }
            disk.free_blocks = free_blocks;
            disk.free_inodes = free_inodes;
        }
        if disk.state != format::STATE_CLEAN {
            pr_warn!(
                "{}: filesystem was not cleanly unmounted; run fsck.rbfs\n",
                dev
            );
        }
        let was_clean = disk.state == format::STATE_CLEAN;
        if !sb.is_read_only() {
            // Mark it in use on the disk first: a crash from here on leaves
            // it marked for fsck.
            disk.state = format::STATE_DIRTY;
            disk.mount_time = now_secs();
            write_super(&sb.bread(0)?, &disk, true)?;
            // Keep "not clean" in memory if it was not clean at mount, so
            // that the unmount does not declare it clean either.
            disk.state = if was_clean {
                format::STATE_CLEAN
            } else {
                format::STATE_DIRTY
            };
        }
        let info = KBox::pin_init(
            try_pin_init!(SbInfo {
                sb: disk,
                errors: options.errors.unwrap_or_default(),
                reports: ReportLimit::new(),
                alloc <- new_mutex!(alloc::AllocState::new(&disk), "rbfs::alloc"),
                ro_compat <- new_mutex!(disk.feature_ro_compat, "rbfs::ro_compat"),
                ro_compat_now: AtomicU32::new(disk.feature_ro_compat),
                next_generation: AtomicU32::new((now_secs() as u32).wrapping_mul(2_654_435_761)),
            }),
            GFP_KERNEL,
        )?;
        pr_info!(
            "{}: mounted {} ({} blocks of {} bytes, {} free; {} inodes, {} free)\n",
            dev,
            if sb.is_read_only() {
                "read-only"
            } else {
                "read-write"
            },
            info.sb.layout.blocks_count,
            bs,
            free_blocks,
            info.sb.layout.inodes_count,
            free_inodes
        );
        Ok(info)
    }

    fn root(sb: &SuperBlock<Self>) -> Result<ARef<Inode<Self>>> {
        let root = inode::iget(sb, sb.data().sb.root_ino)?;
        if !inode::is_dir(&root) {
            pr_err!("{}: root inode is not a directory\n", sb.device_name());
            return Err(euclean());
        }
        Ok(root)
    }

    fn trim(sb: &SuperBlock<Self>, range: &TrimRange) -> Result<u64> {
        alloc::trim(sb, range)
    }

    fn export_inode(sb: &SuperBlock<Self>, ino: u64) -> Result<ARef<Inode<Self>>> {
        inode::iget_handle(sb, ino)
    }

    fn export_parent(dir: &Inode<Self>) -> Result<ARef<Inode<Self>>> {
        crate::dir::parent(dir)
    }

    fn statfs(sb: &SuperBlock<Self>) -> Result<Stat> {
        let d = &sb.data().sb;
        let uuid = &d.uuid;
        let mut fsid = 0u64;
        for (i, b) in uuid.iter().enumerate() {
            fsid ^= u64::from(*b) << ((i % 8) * 8);
        }
        let (free_blocks, free_inodes) = sb.data().alloc.lock().free_counts();
        Ok(Stat {
            block_size: d.block_size() as u32,
            blocks: u64::from(d.layout.data_blocks),
            free_blocks: u64::from(free_blocks),
            files: u64::from(d.layout.inodes_count),
            free_files: u64::from(free_inodes),
            name_len: format::NAME_MAX as u32,
            fsid,
        })
    }

    fn reconfigure(sb: &SuperBlock<Self>, options: Options, flags: &mut MountFlags) -> Result {
        if options.errors.is_some() {
            pr_warn!(
                "{}: errors= cannot be changed on remount\n",
                sb.device_name()
            );
        }
        let info = sb.data();
        match (sb.is_read_only(), flags.read_only()) {
            (false, true) => {
                // The filesystem has been synced (`kernel::fs` does it
                // before calling us): declare it clean.
                update_super(sb, Some(info.sb.state), true)
            }
            (true, false) => {
                if info.sb.unknown_ro_compat() != 0 {
                    pr_warn!(
                        "{}: unknown read-only-compatible features: staying read-only\n",
                        sb.device_name()
                    );
                    flags.set_read_only();
                    return Ok(());
                }
                update_super(sb, Some(format::STATE_DIRTY), true)
            }
            _ => Ok(()),
        }
    }

    fn write_inode(inode: &Inode<Self>, sync: bool) -> Result {
        inode::write_inode(inode, sync)
    }

    fn evict_inode(inode: &Inode<Self>) {
        inode::evict(inode)
    }

    fn sync_fs(sb: &SuperBlock<Self>, wait: bool) -> Result {
        if sb.is_read_only() {
            return Ok(());
        }
        update_super(sb, None, wait)
    }

    fn freeze_fs(sb: &SuperBlock<Self>) -> Result {
        // Everything was written back: the image is consistent and can be
        // marked clean (what a snapshot of the frozen device sees), unless
        // deleted inodes are still open, whose blocks are freed only at
        // their last close (as ext2's `ext2_freeze`).
        let state = if sb.has_unlinked_in_use() {
            format::STATE_DIRTY
        } else {
            sb.data().sb.state
        };
        update_super(sb, Some(state), true)
    }

    fn unfreeze_fs(sb: &SuperBlock<Self>) -> Result {
        update_super(sb, None, true)
    }

    fn put_super(sb: &SuperBlock<Self>) {
        alloc::release(&mut sb.data().alloc.lock());
        if sb.is_read_only() {
            return;
        }
        if let Err(e) = update_super(sb, Some(sb.data().sb.state), true) {
            pr_err!(
                "{}: could not mark the filesystem clean: error {}\n",
                sb.device_name(),
                e.to_errno()
            );
        }
    }
}

/// Seconds since the epoch, now.
pub(crate) fn now_secs() -> u64 {
    kernel::fs::real_time_secs().max(0) as u64
}

/// Encodes `disk` into the first 512 bytes of block 0 (`buf`); with `sync`,
/// writes it and waits.
fn write_super(buf: &kernel::fs::buffer::Buffer<'_>, disk: &Superblock, sync: bool) -> Result {
    let mut out = [0u8; format::SUPERBLOCK_SIZE];
    disk.encode(&mut out);
    {
        let mut data = buf.lock();
        let Some(dst) = data.data_mut().get_mut(..format::SUPERBLOCK_SIZE) else {
            return Err(EINVAL);
        };
        dst.copy_from_slice(&out);
    }
    if sync {
        buf.sync()?;
    }
    Ok(())
}

/// Writes the super block with the current free counts and write time, and
/// with `state` (or "in use" if `None`).
fn update_super(sb: &SuperBlock<Rbfs>, state: Option<u32>, sync: bool) -> Result {
    let info = sb.data();
    let mut feat = info.ro_compat.lock();
    let now = *feat;
    write_super_locked(sb, &mut feat, now, state, sync)
}

/// [`update_super`] with the features mutex held (`feat`), and with the
/// read-only-compat features `ro_compat`, which become the current ones
/// once written.
fn write_super_locked(
    sb: &SuperBlock<Rbfs>,
    feat: &mut u32,
    ro_compat: u32,
    state: Option<u32>,
    sync: bool,
) -> Result {
    let info = sb.data();
    let mut disk = info.sb;
    let (free_blocks, free_inodes) = info.alloc.lock().free_counts();
    disk.free_blocks = free_blocks;
    disk.free_inodes = free_inodes;
    disk.state = state.unwrap_or(format::STATE_DIRTY);
    disk.write_time = now_secs();
    disk.feature_ro_compat = ro_compat;
    write_super(&sb.bread(0)?, &disk, sync)?;
    *feat = ro_compat;
    info.ro_compat_now.store(ro_compat, Ordering::Release);
    Ok(())
}
