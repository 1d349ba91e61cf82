//! Linux native AIO through raw system calls (no libaio in the guest).
//!
//! Only what the test programs need: a context, `struct iocb` and
//! `struct io_event`, and thin wrappers of io_submit/io_getevents that
//! report the errno as an `io::Error`.

use std::io;
use std::ptr;

/// `struct iocb` of include/uapi/linux/aio_abi.h (x86-64, little endian:
/// `aio_key` comes before `aio_rw_flags`).
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct Iocb {
    pub aio_data: u64,
    pub aio_key: u32,
    pub aio_rw_flags: i32,
    pub aio_lio_opcode: u16,
    pub aio_reqprio: i16,
    pub aio_fildes: u32,
    pub aio_buf: u64,
    pub aio_nbytes: u64,
    pub aio_offset: i64,
    pub aio_reserved2: u64,
    pub aio_flags: u32,
    pub aio_resfd: u32,
}

/// `struct io_event`.
#[repr(C)]
#[derive(Default, Clone, Copy)]
pub struct IoEvent {
    pub data: u64,
    pub obj: u64,
    pub res: i64,
    pub res2: i64,
}

const _: () = assert!(std::mem::size_of::<Iocb>() == 64);
const _: () = assert!(std::mem::offset_of!(Iocb, aio_rw_flags) == 12);
const _: () = assert!(std::mem::offset_of!(Iocb, aio_fildes) == 20);
const _: () = assert!(std::mem::offset_of!(Iocb, aio_offset) == 40);
const _: () = assert!(std::mem::size_of::<IoEvent>() == 32);

pub const IOCB_CMD_PWRITE: u16 = 1;

/// An AIO context; `io_destroy` on drop waits for requests still in flight.
pub struct Context(pub libc::c_ulong);

impl Context {
    /// io_setup(nr_events); the error is the errno.
    pub fn new(nr_events: usize) -> io::Result<Context> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the context id to `ctx`.
        if unsafe { libc::syscall(libc::SYS_io_setup, nr_events as libc::c_uint, &mut ctx) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Context(ctx))
    }

    /// io_submit of `iocbs`: the number accepted (possibly fewer than
    /// given, possibly 0), or the errno.
    ///
    /// # Safety
    ///
    /// Every pointer must point at a valid iocb whose buffer stays alive and
    /// untouched until its completion is reaped or the context is dropped.
    pub unsafe fn submit(&self, iocbs: &[*mut Iocb]) -> io::Result<usize> {
        // SAFETY: per the contract above.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_submit,
                self.0,
                iocbs.len() as libc::c_long,
                iocbs.as_ptr(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }

    /// io_getevents waiting for at least `min` events, at most
    /// `events.len()`, without timeout: the number stored, or the errno.
    pub fn getevents(&self, min: usize, events: &mut [IoEvent]) -> io::Result<usize> {
        // SAFETY: `events` has room for `events.len()` events.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_getevents,
                self.0,
                min as libc::c_long,
                events.len() as libc::c_long,
                events.as_mut_ptr(),
                ptr::null_mut::<libc::timespec>(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as usize)
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context was set up by io_setup and is destroyed once.
        unsafe { libc::syscall(libc::SYS_io_destroy, self.0) };
    }
}
