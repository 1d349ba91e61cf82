//! Linux native AIO through raw system calls (no libaio in the guest).

use crate::{close_checked, errno_fail, os_fail, Fail, Res, WriteArgs};
use rbfs_guest_tools::fill_pattern;
use std::os::fd::AsRawFd;
use std::ptr;

/// `struct iocb` of include/uapi/linux/aio_abi.h (x86-64, little endian:
/// `aio_key` comes before `aio_rw_flags`).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct Iocb {
    aio_data: u64,
    aio_key: u32,
    aio_rw_flags: i32,
    aio_lio_opcode: u16,
    aio_reqprio: i16,
    aio_fildes: u32,
    aio_buf: u64,
    aio_nbytes: u64,
    aio_offset: i64,
    aio_reserved2: u64,
    aio_flags: u32,
    aio_resfd: u32,
}

/// `struct io_event`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

const _: () = assert!(std::mem::size_of::<Iocb>() == 64);
const _: () = assert!(std::mem::offset_of!(Iocb, aio_rw_flags) == 12);
const _: () = assert!(std::mem::offset_of!(Iocb, aio_fildes) == 20);
const _: () = assert!(std::mem::offset_of!(Iocb, aio_offset) == 40);
const _: () = assert!(std::mem::size_of::<IoEvent>() == 32);

const IOCB_CMD_PWRITE: u16 = 1;

/// An AIO context; `io_destroy` on drop waits for requests still in flight.
struct Context(libc::c_ulong);

impl Context {
    fn new(nr_events: usize) -> Res<Context> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the context id to `ctx`.
        if unsafe { libc::syscall(libc::SYS_io_setup, nr_events as libc::c_uint, &mut ctx) } != 0 {
            return Err(os_fail(format_args!("io_setup({nr_events})")));
        }
        Ok(Context(ctx))
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was set up by io_setup and is destroyed once.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.0) };
    }
}

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
    let ctx = Context::new(a.qd)?;

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
            let r = unsafe {
                libc::syscall(
                    libc::SYS_io_submit,
                    ctx.0,
                    (batch.len() - sub) as libc::c_long,
                    batch.as_ptr().add(sub),
                )
            };
            if r < 0 {
                if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                    continue;
                }
                return Err(os_fail(format_args!(
                    "{}: io_submit of {} iocbs",
                    a.path,
                    batch.len() - sub
                )));
            }
            if r == 0 {
                return Err(Fail::Io(format!(
                    "{}: io_submit accepted none of {} iocbs",
                    a.path,
                    batch.len() - sub
                )));
            }
            sub += r as usize;
            inflight += r as usize;
        }
        if inflight == 0 {
            break;
        }
        // SAFETY: `events` has room for qd >= inflight events.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                ctx.0,
                1 as libc::c_long,
                a.qd as libc::c_long,
                events.as_mut_ptr(),
                ptr::null_mut::<libc::timespec>(),
            )
        };
        if r < 0 {
            if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(os_fail(format_args!("{}: io_getevents", a.path)));
        }
        for ev in &events[..r as usize] {
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
