// SPDX-License-Identifier: GPL-2.0

//! The device or image being checked, with repairs staged in memory.
//!
//! Repairs are written to an overlay of whole blocks that every later read
//! sees, so fsck can plan a repair, apply it, and re-run the full check on
//! the result before a single byte reaches the device.  [`Disk::commit`]
//! then writes the staged blocks with positioned writes, the superblock
//! last, and syncs.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rbfs_format::check::ImageRead;

/// An open device or image file plus the blocks staged for writing.
pub struct Disk {
    file: File,
    len: u64,
    writable: bool,
    block_size: Cell<usize>,
    staged: RefCell<BTreeMap<u32, Vec<u8>>>,
}

impl Disk {
    /// Opens `path` read-only, or read-write when `writable`.  A block
    /// device opened for writing is opened exclusively (`O_EXCL`), which
    /// Linux refuses with `EBUSY` while it is mounted: repairing a mounted
    /// filesystem would race with the kernel.
    pub fn open(path: &Path, writable: bool) -> io::Result<Disk> {
        let meta = std::fs::metadata(path)?;
        if meta.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "is a directory",
            ));
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(writable);
        if writable && meta.file_type().is_block_device() {
            opts.custom_flags(libc::O_EXCL);
        }
        let file = opts.open(path).map_err(|e| {
            if e.raw_os_error() == Some(libc::EBUSY) {
                io::Error::new(e.kind(), "device is in use (mounted?)")
            } else {
                e
            }
        })?;
        // A block device's metadata length is 0: ask the file itself.
        let len = (&file).seek(SeekFrom::End(0))?;
        Ok(Disk {
            file,
            len,
            writable,
            block_size: Cell::new(0),
            staged: RefCell::new(BTreeMap::new()),
        })
    }

    /// Sets the block size staged blocks are counted in (from the
    /// superblock); nothing can be staged before.
    pub fn set_block_size(&self, bs: usize) {
        self.block_size.set(bs);
    }

    /// Stages block `n` to be written with `data` (one block).
    pub fn write_block(&self, n: u32, data: Vec<u8>) {
        debug_assert_eq!(data.len(), self.block_size.get());
        self.staged.borrow_mut().insert(n, data);
    }

    /// Whether any block is staged.
    pub fn is_modified(&self) -> bool {
        !self.staged.borrow().is_empty()
    }

    /// Writes every staged block, then syncs; block 0 (the superblock) is
    /// written after the others have reached the device, so an
    /// interrupted repair never leaves a superblock describing blocks
    /// that were not written.
    pub fn commit(&self) -> io::Result<()> {
        if !self.writable {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                "opened read-only",
            ));
        }
        let staged = std::mem::take(&mut *self.staged.borrow_mut());
        if staged.is_empty() {
            return Ok(());
        }
        let bs = self.block_size.get() as u64;
        for (&n, data) in staged.iter().filter(|(&n, _)| n != 0) {
            self.file.write_all_at(data, u64::from(n) * bs)?;
        }
        self.file.sync_all()?;
        if let Some(block0) = staged.get(&0) {
            self.file.write_all_at(block0, 0)?;
            self.file.sync_all()?;
        }
        Ok(())
    }
}

impl ImageRead for Disk {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.file.read_exact_at(buf, off)?;
        let bs = self.block_size.get() as u64;
        if bs == 0 || buf.is_empty() {
            return Ok(());
        }
        let end = off + buf.len() as u64;
        let first = u32::try_from(off / bs).unwrap_or(u32::MAX);
        let last = u32::try_from((end - 1) / bs).unwrap_or(u32::MAX);
        for (&n, data) in self.staged.borrow().range(first..=last) {
            let start = u64::from(n) * bs;
            let lo = start.max(off);
            let hi = (start + bs).min(end);
            buf[(lo - off) as usize..(hi - off) as usize]
                .copy_from_slice(&data[(lo - start) as usize..(hi - start) as usize]);
        }
        Ok(())
    }

    fn size(&self) -> io::Result<u64> {
        Ok(self.len)
    }
}
