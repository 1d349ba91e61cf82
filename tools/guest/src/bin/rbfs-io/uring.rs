//! io_uring writes of the pattern, on the ring of the library.

use crate::{close_checked, errno_fail, Fail, Res, WriteArgs};
use rbfs_guest_tools::fill_pattern;
use rbfs_guest_tools::uring::{Ring, RingError, Sqe, IORING_OP_WRITE};
use std::os::fd::AsRawFd;

pub fn run(a: &WriteArgs) -> Res<String> {
    let file = a.open()?;
    let fd = file.as_raw_fd();
    let nreq = a.requests();
    // Declared before the ring, so they outlive it.
    let mut bufs: Vec<Vec<u8>> = (0..a.qd).map(|_| vec![0u8; a.bs]).collect();
    let mut reqs: Vec<(u64, usize)> = vec![(0, 0); a.qd];
    let mut free: Vec<usize> = (0..a.qd).rev().collect();
    let mut ring = Ring::new(a.qd).map_err(|e| match e {
        RingError::Setup(e) => Fail::Io(format!("io_uring_setup({}): {e}", a.qd)),
        mmap => Fail::Io(mmap.to_string()),
    })?;
    let mut cqes = Vec::with_capacity(a.qd);

    let (mut next, mut done, mut inflight, mut unsubmitted) = (0u64, 0u64, 0usize, 0u32);
    while done < nreq {
        while next < nreq {
            let Some(slot) = free.pop() else { break };
            let (off, len) = a.request(next);
            fill_pattern(a.seed, off, &mut bufs[slot][..len]);
            reqs[slot] = (off, len);
            ring.push(Sqe {
                opcode: IORING_OP_WRITE,
                fd,
                off,
                addr: bufs[slot].as_ptr() as u64,
                len: len as u32,
                rw_flags: if a.rwf_dsync {
                    libc::RWF_DSYNC as u32
                } else {
                    0
                },
                user_data: slot as u64,
                ..Sqe::default()
            });
            unsubmitted += 1;
            inflight += 1;
            next += 1;
        }
        match ring.enter(unsubmitted, 1) {
            Ok(n) if n == 0 && unsubmitted > 0 => {
                return Err(Fail::Io(format!(
                    "{}: io_uring_enter submitted none of {unsubmitted} SQEs",
                    a.path
                )));
            }
            Ok(n) => unsubmitted -= n.min(unsubmitted),
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
            Err(e) => return Err(Fail::Io(format!("{}: io_uring_enter: {e}", a.path))),
        }
        cqes.clear();
        ring.reap(&mut cqes);
        for &(data, res) in &cqes {
            let slot = data as usize;
            let Some(&(off, len)) = reqs.get(slot) else {
                return Err(Fail::Io(format!(
                    "{}: io_uring: unknown request {data}",
                    a.path
                )));
            };
            if res < 0 {
                return Err(errno_fail(
                    format_args!("{}: io_uring write of {len} bytes at offset {off}", a.path),
                    res.into(),
                ));
            }
            if res as usize != len {
                return Err(Fail::Io(format!(
                    "{}: io_uring write at offset {off}: {res} of {len} bytes written",
                    a.path
                )));
            }
            free.push(slot);
            inflight -= 1;
            done += 1;
        }
    }
    debug_assert_eq!(inflight, 0);
    drop(ring);
    close_checked(file, &a.path)?;
    Ok(a.summary("uring"))
}
