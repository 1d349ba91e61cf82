// SPDX-License-Identifier: GPL-2.0

//! Writeback: dirty folios to their blocks, in Rust.
//!
//! One folio at a time, as `ext4_bio_write_folio` does, in two passes:
//! the first decides and marks every buffer that goes to disk
//! (`BH_Async_Write`, dirty bit cleared) before anything is submitted, so
//! that no completion can see the folio's in-flight count reach zero while
//! buffers of it are still to be submitted; the second adds the marked
//! buffers to the open bio.  Contiguous blocks, across buffers and across
//! folios, share a bio until it is full; the bio is submitted as soon as
//! the next block is not contiguous, and before anything that may sleep
//! (a new bio's allocation, waiting for a buffer lock).
//!
//! Completion is the abstraction's (`kernel::fs::write_bio`): in interrupt
//! context, for each folio segment of the bio, under the folio's first
//! buffer's uptodate lock, the covered buffers lose their marks, and the
//! folio's writeback ends only if no buffer of it is still marked.  rbfs
//! adds only its error message (`WriteEnd`).

use crate::sb::Rbfs;
use kernel::block::bio;
use kernel::fs::folio::Locked;
use kernel::fs::inode::Inode;
use kernel::fs::write_bio::{WriteBio, WriteCompletion, WriteError};
use kernel::fs::writeback::{Iter, WritebackControl};
use kernel::prelude::*;

/// Segments per bio (`BIO_MAX_VECS`): with 4 KiB folios, up to 1 MiB.
const MAX_VECS: u16 = 256;

/// I/O error reports, rate limited for the whole module (completions do
/// not know the mount's data).
static IO_ERRORS: crate::sb::ReportLimit = crate::sb::ReportLimit::new();

/// Reports of background writeback running out of bios (rate limited).
static NO_BIO: crate::sb::ReportLimit = crate::sb::ReportLimit::new();

/// rbfs's part of the completion of its write bios: the error message.
pub(crate) struct WriteEnd;

impl WriteCompletion for WriteEnd {
    fn write_error(e: &WriteError<'_>) {
        if IO_ERRORS.allow() {
            pr_err!(
                "{}: write error {} on inode {}, sectors from {}\n",
                e.device,
                e.error.to_errno(),
                e.ino,
                e.sector
            );
        }
    }
}

type Bio = WriteBio<WriteEnd>;

/// Submits the open bio, if any.
fn submit(bio: &mut Option<Bio>) {
    if let Some(b) = bio.take() {
        b.submit();
    }
}

/// Writes one locked folio's dirty buffers, adding them to `bio`.
fn write_folio(
    inode: &Inode<Rbfs>,
    folio: Locked<'_>,
    wbc: &mut WritebackControl,
    bio: &mut Option<Bio>,
) -> Result {
    let sb = inode.super_block();
    let log = sb.data().block_log();
    let size = inode.size();
    let pos = folio.folio().pos() as u64;
    // The part beyond EOF reaches the disk with its block: zeroed, so a
    // later extension reads zeroes; blocks wholly beyond it are not written.
    folio.clean_beyond_eof(size);
    let Some(buffers) = folio.candidates() else {
        // Dirty folios get buffers when dirtied (block_dirty_folio); one
        // without has nothing to write.  Start and end writeback so the
        // tags stay consistent.
        folio.start_writeback(false).end_now();
        return Ok(());
    };
    let sync_all = wbc.sync_all();
    let mut result = Ok(());
    let mut redirty = false;

    // Pass 1: decide and mark.
    for bh in buffers {
        if !bh.head().is_dirty() {
            continue;
        }
        if !bh.head().is_mapped() {
            // Every way into the page cache (write_begin, page_mkwrite)
            // allocates the blocks it dirties, so writeback never has to.
            // A dirty unmapped buffer inside the size would be a bug: say
            // so, and let fsync see an error rather than lose it silently.
            bh.clear_dirty();
            if IO_ERRORS.allow() {
                let index = (pos + bh.head().offset_in_folio() as u64) >> log;
                pr_err!(
                    "{}: inode {}: dirty buffer without a block at block {}\n",
                    sb.device_name(),
                    inode.ino(),
                    index
                );
            }
            result = Err(ENOSPC);
            continue;
        }
        let lock = match bh.try_lock() {
            Some(l) => l,
            None if sync_all => {
                // Never sleep while holding an unsubmitted bio.
                submit(bio);
                bh.lock()
            }
            None => {
                redirty = true;
                continue;
            }
        };
        lock.mark_if_dirty();
    }
    if redirty {
        folio.redirty(wbc);
    }
    let left_dirty = folio
        .buffers()
        .is_some_and(|mut b| b.any(|bh| bh.is_dirty()));

    // Pass 2: start writeback (the folio lock goes with it and is released
    // when `in_flight` is dropped, after submission), then submit.
    let Some(mut in_flight) = folio.start_writeback(left_dirty).in_flight() else {
        return result;
    };
    let flags = wbc.write_flags();
    while let Some(buf) = in_flight.next_buffer() {
        let block = buf.head().block_nr();
        let sector = block << (log - 9);
        let contiguous = bio.as_ref().is_some_and(|b| b.end_sector() == sector);
        if !contiguous {
            submit(bio);
        }
        let buf = match (contiguous, bio.as_mut()) {
            (true, Some(open)) => match open.add(buf) {
                Ok(()) => continue,
                // Full: submit it and start another.
                Err(buf) => {
                    submit(bio);
                    buf
                }
            },
            _ => buf,
        };
        // No bio is open here, so allocating may sleep safely.
        // Integrity writeback (fsync, sync) waits for a bio, and then
        // cannot fail.  Background writeback takes one only if there is one
        // now: otherwise the rest of this folio is redirtied and written by
        // a later pass, and nothing is reported (nothing is lost).
        let new = Bio::new(sb, block, MAX_VECS, flags, sync_all);
        let mut new = match new {
            Ok(b) => b,
            Err(e) => {
                in_flight.abandon(buf, wbc);
                if sync_all {
                    return Err(e);
                }
                if NO_BIO.allow() {
                    pr_info!(
                        "{}: inode {}: no bio available for background writeback; the rest of the folio at {} is redirtied\n",
                        sb.device_name(),
                        inode.ino(),
                        pos
                    );
                }
                return result;
            }
        };
        if let Err(buf) = new.add(buf) {
            // An empty bio takes one block; if it did not, give up cleanly.
            in_flight.abandon(buf, wbc);
            return Err(EIO);
        }
        *bio = Some(new);
    }
    result
}

/// `->writepages`: every dirty folio `iter` hands out, coalesced into as
/// few bios as the block layout allows, under a plug.
pub(crate) fn writepages(inode: &Inode<Rbfs>, iter: &mut Iter<'_>) -> Result {
    bio::with_plug(|| {
        let mut bio = None;
        loop {
            let r = {
                let Some((folio, wbc)) = iter.next_folio() else {
                    break;
                };
                write_folio(inode, folio, wbc, &mut bio)
            };
            if let Err(e) = r {
                iter.set_error(e);
            }
        }
        submit(&mut bio);
    });
    Ok(())
}

/// `->writepage` (reclaim, migration): one folio, submitted at once.
pub(crate) fn writepage(
    inode: &Inode<Rbfs>,
    folio: Locked<'_>,
    wbc: &mut WritebackControl,
) -> Result {
    let mut bio = None;
    let r = write_folio(inode, folio, wbc, &mut bio);
    submit(&mut bio);
    r
}
