//! System call helpers: writes that report partial progress, mmap stores
//! and loads, sync_file_range, drop_caches, and batches of AIO and
//! io_uring writes.

use rbfs_guest_tools::aio::{Context, IoEvent, Iocb, IOCB_CMD_PWRITE};
use rbfs_guest_tools::uring::{Ring, RingError, Sqe, IORING_OP_WRITE};
use std::fs::File;
use std::io::{self, ErrorKind};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::ptr;

pub fn errno(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(0)
}

pub fn is_enospc(e: &io::Error) -> bool {
    errno(e) == libc::ENOSPC
}

/// pwrite of all of `data` at `off`, retrying short writes: returns the
/// bytes written, and the error that stopped it early, if any.
pub fn pwrite_all(file: &File, off: u64, data: &[u8]) -> (usize, Option<io::Error>) {
    let mut done = 0;
    while done < data.len() {
        match file.write_at(&data[done..], off + done as u64) {
            Ok(0) => {
                return (
                    done,
                    Some(io::Error::new(ErrorKind::WriteZero, "pwrite wrote nothing")),
                )
            }
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return (done, Some(e)),
        }
    }
    (done, None)
}

/// Reads from `off` until `len` bytes or the end of the file.
pub fn pread_upto(file: &File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    let mut done = 0;
    while done < len {
        match file.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(done);
    Ok(buf)
}

/// The whole content of a file, read through `file` to its end.
pub fn read_all(file: &File) -> io::Result<Vec<u8>> {
    let size = file.metadata()?.len() as usize;
    let mut data = pread_upto(file, 0, size)?;
    // Anything beyond the size fstat reported (it should be nothing).
    loop {
        let more = pread_upto(file, data.len() as u64, 64 << 10)?;
        if more.is_empty() {
            return Ok(data);
        }
        data.extend_from_slice(&more);
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// A fault on a mapping arrives as SIGBUS; report it and exit 2.
extern "C" fn on_sigbus(_: libc::c_int) {
    const MSG: &[u8] = b"rbfs-stress: SIGBUS: a load or store through a file mapping failed\n";
    // SAFETY: write and _exit are async-signal-safe.
    unsafe {
        libc::write(2, MSG.as_ptr().cast(), MSG.len());
        libc::_exit(2);
    }
}

pub fn catch_sigbus() -> io::Result<()> {
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigbus as extern "C" fn(libc::c_int) as libc::sighandler_t;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGBUS, &sa, ptr::null_mut()) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A shared mapping of the pages covering `off..off+len` of a file.
struct Mapping {
    base: *mut libc::c_void,
    len: usize,
    /// Offset of byte `off` in the mapping.
    skip: usize,
}

impl Mapping {
    fn new(file: &File, off: u64, len: usize, prot: libc::c_int) -> io::Result<Mapping> {
        let map_off = off / page_size() * page_size();
        let skip = (off - map_off) as usize;
        let map_len = skip + len;
        // SAFETY: a new shared mapping of the file; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                map_len,
                prot,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                map_off as libc::off_t,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mapping {
            base: p,
            len: map_len,
            skip,
        })
    }

    fn ptr(&self) -> *mut u8 {
        // SAFETY: skip < len, within the mapping.
        unsafe { self.base.cast::<u8>().add(self.skip) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: mapped in Mapping::new, unmapped once.
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// Stores `data` at `off` through a shared mapping, then msync(MS_SYNC).
/// The range must lie within the file's size.
pub fn mmap_write(file: &File, off: u64, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let m = Mapping::new(file, off, data.len(), libc::PROT_READ | libc::PROT_WRITE)?;
    // SAFETY: the mapping holds data.len() bytes from m.ptr(), inside the
    // file; a fault would be a SIGBUS, which exits.
    unsafe { ptr::copy_nonoverlapping(data.as_ptr(), m.ptr(), data.len()) };
    // SAFETY: the range is the mapping.
    if unsafe { libc::msync(m.base, m.len, libc::MS_SYNC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Loads `len` bytes at `off` (within the file's size) through a shared
/// read-only mapping.
pub fn mmap_read(file: &File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    let m = Mapping::new(file, off, len, libc::PROT_READ)?;
    let mut out = vec![0u8; len];
    // SAFETY: as in mmap_write.
    unsafe { ptr::copy_nonoverlapping(m.ptr(), out.as_mut_ptr(), len) };
    Ok(out)
}

pub fn sync_file_range(file: &File, off: u64, len: u64, flags: libc::c_uint) -> io::Result<()> {
    // SAFETY: no pointers involved.
    let r = unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            off as libc::off64_t,
            len as libc::off64_t,
            flags,
        )
    };
    if r != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub fn syncfs(file: &File) -> io::Result<()> {
    // SAFETY: no pointers involved.
    if unsafe { libc::syncfs(file.as_raw_fd()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `echo 3 > /proc/sys/vm/drop_caches`.
pub fn drop_caches() -> io::Result<()> {
    std::fs::write("/proc/sys/vm/drop_caches", "3\n")
}

/// drop_caches failed for lack of privilege (or of /proc): skip it.
pub fn drop_caches_unavailable(e: &io::Error) -> bool {
    matches!(
        errno(e),
        libc::EACCES | libc::EPERM | libc::EROFS | libc::ENOENT
    )
}

/// io_setup or io_uring_setup failed because the facility is compiled out
/// or forbidden here: run without it.
pub fn facility_unavailable(e: &io::Error) -> bool {
    matches!(errno(e), libc::ENOSYS | libc::EPERM)
}

/// One write of a batch.
pub struct Req {
    pub off: u64,
    pub data: Vec<u8>,
}

/// A request the kernel may still be using could not be reaped: freeing
/// its buffer is not safe, so stop the whole program.
fn fatal_inflight(what: &str, e: &io::Error) -> ! {
    eprintln!("rbfs-stress: ERROR: {what}: {e} with writes in flight");
    std::process::exit(2);
}

/// Submits the writes of `reqs` on `fd` at once through `ctx` (at most as
/// many as the context was set up for) and waits for all of them: the
/// result of each, bytes written or a negative errno. Fails only if none
/// could be submitted.
pub fn aio_batch(ctx: &Context, fd: i32, reqs: &[Req]) -> io::Result<Vec<i64>> {
    let mut iocbs: Vec<Iocb> = reqs
        .iter()
        .enumerate()
        .map(|(i, r)| Iocb {
            aio_data: i as u64,
            aio_lio_opcode: IOCB_CMD_PWRITE,
            aio_fildes: fd as u32,
            aio_buf: r.data.as_ptr() as u64,
            aio_nbytes: r.data.len() as u64,
            aio_offset: r.off as i64,
            ..Iocb::default()
        })
        .collect();
    let ptrs: Vec<*mut Iocb> = iocbs.iter_mut().map(|c| c as *mut Iocb).collect();
    let mut res = vec![0i64; reqs.len()];
    let mut submitted = 0;
    let mut failure = None;
    while submitted < ptrs.len() {
        // SAFETY: the iocbs and the buffers of `reqs` outlive the reaping
        // of every submitted request below.
        match unsafe { ctx.submit(&ptrs[submitted..]) } {
            Ok(0) => {
                failure = Some(io::Error::other("io_submit accepted nothing"));
                break;
            }
            Ok(n) => submitted += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let mut events = vec![IoEvent::default(); reqs.len()];
    let mut reaped = 0;
    while reaped < submitted {
        match ctx.getevents(1, &mut events[..submitted - reaped]) {
            Ok(n) => {
                for ev in &events[..n] {
                    let Some(r) = res.get_mut(ev.data as usize) else {
                        fatal_inflight("io_getevents: unknown request", &io::Error::other("?"));
                    };
                    *r = ev.res;
                }
                reaped += n;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => fatal_inflight("io_getevents", &e),
        }
    }
    match failure {
        Some(e) if submitted == 0 => Err(e),
        Some(e) => {
            // The rest was never submitted: report it as failed.
            for r in &mut res[submitted..] {
                *r = -i64::from(errno(&e).max(1));
            }
            Ok(res)
        }
        None => Ok(res),
    }
}

/// io_uring version of `aio_batch` (IORING_OP_WRITE); the ring must have
/// room for all of `reqs`.
pub fn uring_batch(ring: &mut Ring, fd: i32, reqs: &[Req]) -> io::Result<Vec<i64>> {
    for (i, r) in reqs.iter().enumerate() {
        ring.push(Sqe {
            opcode: IORING_OP_WRITE,
            fd,
            off: r.off,
            addr: r.data.as_ptr() as u64,
            len: r.data.len() as u32,
            user_data: i as u64,
            ..Sqe::default()
        });
    }
    let mut res = vec![0i64; reqs.len()];
    let (mut unsubmitted, mut done) = (reqs.len() as u32, 0);
    let mut cqes = Vec::with_capacity(reqs.len());
    while done < reqs.len() {
        match ring.enter(unsubmitted, 1) {
            Ok(0) if unsubmitted > 0 => {
                fatal_inflight("io_uring_enter", &io::Error::other("submitted nothing"))
            }
            Ok(n) => unsubmitted -= n.min(unsubmitted),
            Err(e) if matches!(errno(&e), libc::EINTR | libc::EAGAIN | libc::EBUSY) => {}
            // SQEs may be left in the ring, and buffers in use.
            Err(e) => fatal_inflight("io_uring_enter", &e),
        }
        cqes.clear();
        ring.reap(&mut cqes);
        for &(data, r) in &cqes {
            let Some(slot) = res.get_mut(data as usize) else {
                fatal_inflight("io_uring: unknown completion", &io::Error::other("?"));
            };
            *slot = i64::from(r);
            done += 1;
        }
    }
    Ok(res)
}

/// A ring for batches of up to `entries` writes; None (after a note by
/// the caller) where io_uring is unavailable.
pub fn new_ring(entries: usize) -> Result<Option<Ring>, String> {
    match Ring::new(entries) {
        Ok(r) => Ok(Some(r)),
        Err(RingError::Setup(e)) if facility_unavailable(&e) => Ok(None),
        Err(e) => Err(e.to_string()),
    }
}

/// An AIO context for batches of up to `entries` writes, None where AIO
/// is unavailable.
pub fn new_aio(entries: usize) -> Result<Option<Context>, String> {
    match Context::new(entries) {
        Ok(c) => Ok(Some(c)),
        Err(e) if facility_unavailable(&e) => Ok(None),
        Err(e) => Err(format!("io_setup({entries}): {e}")),
    }
}

/// Writes `line` and a newline to stdout and pushes it out: flushed, and
/// on a terminal (a serial console) drained to the device, so that it
/// is not lost at a power cut after the caller goes on.
pub fn emit_line(out: &mut io::StdoutLock<'_>, line: &str) -> io::Result<()> {
    use std::io::Write;
    // One write(2) for the line and its newline.
    out.write_all(format!("{line}\n").as_bytes())?;
    out.flush()?;
    // SAFETY: no pointers involved.
    if unsafe { libc::isatty(1) } == 1 {
        // SAFETY: as above. A failure only loses the guarantee.
        unsafe { libc::tcdrain(1) };
    }
    Ok(())
}
