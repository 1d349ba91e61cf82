//! io_uring through raw system calls and the mmap'ed rings (no liburing
//! in the guest).

use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr;
use std::sync::atomic::{AtomicU32, Ordering};

/// Why `Ring::new` failed.
#[derive(Debug)]
pub enum RingError {
    /// io_uring_setup failed with this errno.
    Setup(io::Error),
    /// Mapping one part of the ring ("SQ ring", "CQ ring", "SQE array").
    Mmap(&'static str, io::Error),
}

impl fmt::Display for RingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RingError::Setup(e) => write!(f, "io_uring_setup: {e}"),
            RingError::Mmap(what, e) => write!(f, "io_uring: mmap of the {what}: {e}"),
        }
    }
}

/// `struct io_sqring_offsets` of include/uapi/linux/io_uring.h.
#[repr(C)]
#[derive(Default)]
struct SqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags: u32,
    dropped: u32,
    array: u32,
    resv1: u32,
    user_addr: u64,
}

/// `struct io_cqring_offsets`.
#[repr(C)]
#[derive(Default)]
struct CqOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    overflow: u32,
    cqes: u32,
    flags: u32,
    resv1: u32,
    user_addr: u64,
}

/// `struct io_uring_params`.
#[repr(C)]
#[derive(Default)]
pub struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: SqOffsets,
    cq_off: CqOffsets,
}

/// `struct io_uring_sqe`, the fields of a read/write request.
#[repr(C)]
#[derive(Default)]
pub struct Sqe {
    pub opcode: u8,
    pub flags: u8,
    pub ioprio: u16,
    pub fd: i32,
    pub off: u64,
    pub addr: u64,
    pub len: u32,
    pub rw_flags: u32,
    pub user_data: u64,
    pub buf_index: u16,
    pub personality: u16,
    pub splice_fd_in: i32,
    pub addr3: u64,
    pub pad2: u64,
}

/// `struct io_uring_cqe` (no IORING_SETUP_CQE32).
#[repr(C)]
struct Cqe {
    user_data: u64,
    res: i32,
    flags: u32,
}

const _: () = assert!(std::mem::size_of::<Params>() == 120);
const _: () = assert!(std::mem::offset_of!(Params, sq_off) == 40);
const _: () = assert!(std::mem::size_of::<Sqe>() == 64);
const _: () = assert!(std::mem::offset_of!(Sqe, user_data) == 32);
const _: () = assert!(std::mem::size_of::<Cqe>() == 16);

pub const IORING_OP_WRITE: u8 = 23;
const IORING_ENTER_GETEVENTS: u32 = 1;
const IORING_FEAT_SINGLE_MMAP: u32 = 1;
const IORING_OFF_SQ_RING: i64 = 0;
const IORING_OFF_CQ_RING: i64 = 0x800_0000;
const IORING_OFF_SQES: i64 = 0x1000_0000;

/// One shared mapping of the ring file; unmapped on drop.
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn new(fd: &OwnedFd, len: usize, off: i64, what: &'static str) -> Result<Map, RingError> {
        // SAFETY: a fresh shared mapping of the io_uring fd.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(RingError::Mmap(what, io::Error::last_os_error()));
        }
        Ok(Map { ptr: p.cast(), len })
    }

    /// Pointer `off` bytes into the mapping.
    fn at<T>(&self, off: u32) -> *mut T {
        debug_assert!(off as usize + std::mem::size_of::<T>() <= self.len);
        // SAFETY: the offsets come from the kernel and lie within the mapping.
        unsafe { self.ptr.add(off as usize).cast() }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: mapped in Map::new, unmapped once.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
    }
}

/// Calls io_uring_setup; the error is the errno.
pub fn setup(entries: u32, p: &mut Params) -> io::Result<OwnedFd> {
    // SAFETY: io_uring_setup reads and writes `p`, an io_uring_params.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, entries, p as *mut Params) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// A ring with its mappings; the fields are dropped in declaration order,
/// the mappings before the descriptor. The ring mappings are only held, the
/// pointers below point into them.
pub struct Ring {
    sqes: Map,
    _cq_map: Option<Map>,
    _sq_map: Map,
    fd: OwnedFd,
    sq_tail: *const AtomicU32,
    sq_mask: u32,
    sq_array: *mut u32,
    cq_head: *const AtomicU32,
    cq_tail: *const AtomicU32,
    cq_mask: u32,
    cqes: *const Cqe,
}

impl Ring {
    /// Sets up a ring of `entries` SQEs and maps it.
    pub fn new(entries: usize) -> Result<Ring, RingError> {
        let mut p = Params::default();
        let fd = setup(entries as u32, &mut p).map_err(RingError::Setup)?;
        let sq_len = p.sq_off.array as usize + p.sq_entries as usize * 4;
        let cq_len = p.cq_off.cqes as usize + p.cq_entries as usize * std::mem::size_of::<Cqe>();
        let single = p.features & IORING_FEAT_SINGLE_MMAP != 0;
        let sq_map = Map::new(
            &fd,
            if single { sq_len.max(cq_len) } else { sq_len },
            IORING_OFF_SQ_RING,
            "SQ ring",
        )?;
        let cq_map = if single {
            None
        } else {
            Some(Map::new(&fd, cq_len, IORING_OFF_CQ_RING, "CQ ring")?)
        };
        let sqes = Map::new(
            &fd,
            p.sq_entries as usize * std::mem::size_of::<Sqe>(),
            IORING_OFF_SQES,
            "SQE array",
        )?;
        let cq = cq_map.as_ref().unwrap_or(&sq_map);
        // SAFETY (reads of the masks): kernel-provided offsets in the rings.
        let (sq_mask, cq_mask) = unsafe {
            (
                *sq_map.at::<u32>(p.sq_off.ring_mask),
                *cq.at::<u32>(p.cq_off.ring_mask),
            )
        };
        Ok(Ring {
            sq_tail: sq_map.at(p.sq_off.tail),
            sq_mask,
            sq_array: sq_map.at(p.sq_off.array),
            cq_head: cq.at(p.cq_off.head),
            cq_tail: cq.at(p.cq_off.tail),
            cq_mask,
            cqes: cq.at(p.cq_off.cqes),
            sqes,
            _cq_map: cq_map,
            _sq_map: sq_map,
            fd,
        })
    }

    /// Queues one SQE (the caller keeps no more than `entries` outstanding).
    pub fn push(&mut self, sqe: Sqe) {
        // SAFETY: we are the only producer; the kernel reads the entry only
        // after the release store of the new tail.
        unsafe {
            let tail = (*self.sq_tail).load(Ordering::Relaxed);
            let idx = tail & self.sq_mask;
            self.sqes.at::<Sqe>(0).add(idx as usize).write(sqe);
            self.sq_array.add(idx as usize).write(idx);
            (*self.sq_tail).store(tail.wrapping_add(1), Ordering::Release);
        }
    }

    /// io_uring_enter: submits `to_submit`, waits for `min_complete`.
    pub fn enter(&self, to_submit: u32, min_complete: u32) -> io::Result<u32> {
        // SAFETY: no signal mask is passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_io_uring_enter,
                self.fd.as_raw_fd(),
                to_submit,
                min_complete,
                IORING_ENTER_GETEVENTS,
                ptr::null::<libc::sigset_t>(),
                0usize,
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(r as u32)
    }

    /// Takes the available completions as (user_data, res).
    pub fn reap(&mut self, out: &mut Vec<(u64, i32)>) {
        // SAFETY: we are the only consumer; entries up to the acquired tail
        // are written, and the release store hands them back.
        unsafe {
            let mut head = (*self.cq_head).load(Ordering::Relaxed);
            let tail = (*self.cq_tail).load(Ordering::Acquire);
            while head != tail {
                let cqe = &*self.cqes.add((head & self.cq_mask) as usize);
                out.push((cqe.user_data, cqe.res));
                head = head.wrapping_add(1);
            }
            (*self.cq_head).store(head, Ordering::Release);
        }
    }
}
