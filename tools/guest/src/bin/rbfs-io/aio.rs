//! Linux native AIO through raw system calls (no libaio in the guest).

use crate::{close_checked, errno_fail, Fail, Res, WriteArgs};
use rbfs_guest_tools::aio::{Context, IoEvent, Iocb, IOCB_CMD_PWRITE};
use rbfs_guest_tools::fill_pattern;
use std::os::fd::AsRawFd;

pub fn run(a: &WriteArgs) -> Res<String> {
    let file = a.open()?;
    let fd = file.as_raw_fd();
    let nreq = a.requests();
    // One buffer per slot; a slot is busy from submission to completion.
    // Declared before the context so they outlive its io_destroy.
    let mut bufs: Vec<Vec<u8>> = (0..a.qd).map(|_| vec![0u8; a.bs]).collect();
    let mut reqs: Vec<(u64, usize)> = vec![(0, 0); a.qd];
    let mut iocbs = vec![Iocb::default(); a.qd];
    let iocbp = iocbs.as_mut_ptr();
    let mut events = vec![IoEvent::default(); a.qd];
    let mut free: Vec<usize> = (0..a.qd).rev().collect();
    let ctx = Context::new(a.qd).map_err(|e| Fail::Io(format!("io_setup({}): {e}", a.qd)))?;

    let (mut next, mut done, mut inflight) = (0u64, 0u64, 0usize);
    while done < nreq {
        let mut batch: Vec<*mut Iocb> = Vec::new();
        while next < nreq {
            let Some(slot) = free.pop() else { break };
            let (off, len) = a.request(next);
            fill_pattern(a.seed, off, &mut bufs[slot][..len]);
            reqs[slot] = (off, len);
            let iocb = Iocb {
                aio_data: slot as u64,
                aio_rw_flags: if a.rwf_dsync { libc::RWF_DSYNC } else { 0 },
                aio_lio_opcode: IOCB_CMD_PWRITE,
                aio_fildes: fd as u32,
                aio_buf: bufs[slot].as_ptr() as u64,
                aio_nbytes: len as u64,
                aio_offset: off as i64,
                ..Iocb::default()
            };
            // SAFETY: slot < qd = iocbs.len(); the kernel copies an iocb at
            // io_submit, so a free slot's iocb may be rewritten.
            unsafe { iocbp.add(slot).write(iocb) };
            batch.push(unsafe { iocbp.add(slot) });
            next += 1;
        }
        let mut sub = 0;
        while sub < batch.len() {
            // SAFETY: the iocbs point at buffers that stay alive and untouched
            // until their completion is reaped (or the context is destroyed).
            let r = match unsafe { ctx.submit(&batch[sub..]) } {
                Ok(r) => r,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
                Err(e) => {
                    return Err(Fail::Io(format!(
                        "{}: io_submit of {} iocbs: {e}",
                        a.path,
                        batch.len() - sub
                    )))
                }
            };
            if r == 0 {
                return Err(Fail::Io(format!(
                    "{}: io_submit accepted none of {} iocbs",
                    a.path,
                    batch.len() - sub
                )));
            }
            sub += r;
            inflight += r;
        }
        if inflight == 0 {
            break;
        }
        let r = match ctx.getevents(1, &mut events) {
            Ok(r) => r,
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(Fail::Io(format!("{}: io_getevents: {e}", a.path))),
        };
        for ev in &events[..r] {
            let slot = ev.data as usize;
            let Some(&(off, len)) = reqs.get(slot) else {
                return Err(Fail::Io(format!(
                    "{}: io_getevents: unknown request {}",
                    a.path, ev.data
                )));
            };
            if ev.res < 0 {
                return Err(errno_fail(
                    format_args!("{}: aio write of {len} bytes at offset {off}", a.path),
                    ev.res,
                ));
            }
            if ev.res != len as i64 {
                return Err(Fail::Io(format!(
                    "{}: aio write at offset {off}: {} of {len} bytes written",
                    a.path, ev.res
                )));
            }
            free.push(slot);
            inflight -= 1;
            done += 1;
        }
    }
    drop(ctx);
    close_checked(file, &a.path)?;
    Ok(a.summary("aio"))
}
