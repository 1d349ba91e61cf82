//! rbfs-durable: checks, on the raw device, that data a sync primitive
//! acknowledged is on the disk.
//!
//! ```text
//! rbfs-durable FILE DEVICE [--seed N] [--rounds R] [--size BYTES]
//!              [--mode fsync|fdatasync|dsync|aio-dsync|none] [--racers N]
//!              [--gap-ms MS]
//! ```
//!
//! `--gap-ms MS` waits a random 0 to MS milliseconds between a round's
//! write and its sync, so that background writeback (the racers, the
//! flusher) gets to the new data first and the sync meets it mid-flight.
//!
//! `--mode none` syncs nothing: the checker's own test, which must fail.
//!
//! Each round writes a new generation of pattern data over a random range
//! of FILE (which is first written whole and synced), makes it durable with
//! the chosen primitive (`fsync`, `fdatasync`, an `O_DSYNC` `pwrite`, or an
//! `O_DSYNC` native AIO write), then, for every filesystem block of the
//! range, asks the filesystem where the block is (`FIBMAP`) and reads it
//! from DEVICE with `O_DIRECT`, bypassing every cache: the bytes there must
//! be the ones just written.  A sync primitive that returns before the data
//! is on the disk (writeback not waited for, or a folio that a concurrent
//! writeback was handling and fsync did not find) fails the check.
//!
//! `--racers N` starts N threads that keep calling
//! `sync_file_range(SYNC_FILE_RANGE_WRITE)` over the whole file, so that
//! writebacks of the same folios race the round's own (run it with the
//! dirty expire and writeback intervals at their minimum so the flusher
//! joins in).  Racers never write data, so the expected contents stay
//! exact.
//!
//! Exit status: 0 all rounds durable, 1 a block was not on the disk, 2
//! usage or I/O error.  Needs root (FIBMAP, reading the device).

mod direct;

use direct::Aligned;
use rbfs_guest_tools::{fill_pattern, parse_size};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

const FIBMAP: libc::c_ulong = 1;
const FIGETBSZ: libc::c_ulong = 2;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Fsync,
    Fdatasync,
    Dsync,
    AioDsync,
    /// No sync at all: the checker's own test (it must report the data
    /// missing from the disk).
    Nothing,
}

struct Args {
    file: String,
    device: String,
    seed: u64,
    rounds: u64,
    size: u64,
    mode: Mode,
    racers: usize,
    gap_ms: u64,
}

fn usage() -> String {
    "usage: rbfs-durable FILE DEVICE [--seed N] [--rounds R] [--size BYTES] [--mode fsync|fdatasync|dsync|aio-dsync|none] [--racers N] [--gap-ms MS]".into()
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let file = it.next().ok_or_else(usage)?;
    let device = it.next().ok_or_else(usage)?;
    let mut a = Args { file, device, seed: 1, rounds: 50, size: 1 << 20, mode: Mode::Fsync, racers: 0, gap_ms: 0 };
    while let Some(opt) = it.next() {
        let val = it.next().ok_or_else(|| format!("{opt} needs a value"))?;
        let num = || parse_size(&val).ok_or_else(|| format!("bad value for {opt}: {val}"));
        match opt.as_str() {
            "--seed" => a.seed = num()?,
            "--rounds" => a.rounds = num()?,
            "--size" => a.size = num()?.max(1),
            "--racers" => a.racers = num()? as usize,
            "--gap-ms" => a.gap_ms = num()?,
            "--mode" => {
                a.mode = match val.as_str() {
                    "fsync" => Mode::Fsync,
                    "fdatasync" => Mode::Fdatasync,
                    "dsync" => Mode::Dsync,
                    "aio-dsync" => Mode::AioDsync,
                    "none" => Mode::Nothing,
                    _ => return Err(format!("unknown mode {val}")),
                }
            }
            _ => return Err(usage()),
        }
    }
    Ok(a)
}

/// A small xorshift generator (the rounds' ranges).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn errno_msg(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}


fn fibmap(f: &File, block: u64) -> Result<u64, String> {
    let mut b: libc::c_int = block as libc::c_int;
    // SAFETY: FIBMAP reads and writes one int.
    if unsafe { libc::ioctl(f.as_raw_fd(), FIBMAP, &mut b) } < 0 {
        return Err(errno_msg("FIBMAP"));
    }
    Ok(b as u32 as u64)
}

fn block_size(f: &File) -> Result<u64, String> {
    let mut b: libc::c_int = 0;
    // SAFETY: FIGETBSZ writes one int.
    if unsafe { libc::ioctl(f.as_raw_fd(), FIGETBSZ, &mut b) } < 0 {
        return Err(errno_msg("FIGETBSZ"));
    }
    Ok(b as u64)
}

/// One O_DSYNC write through native AIO (io_setup/io_submit/io_getevents).
fn aio_write(f: &File, buf: &[u8], off: u64) -> Result<(), String> {
    #[repr(C)]
    #[derive(Default)]
    struct Iocb {
        data: u64,
        key: u32,
        rw_flags: i32,
        opcode: u16,
        reqprio: i16,
        fildes: u32,
        buf: u64,
        nbytes: u64,
        offset: i64,
        reserved2: u64,
        flags: u32,
        resfd: u32,
    }
    #[repr(C)]
    #[derive(Default)]
    struct Event {
        data: u64,
        obj: u64,
        res: i64,
        res2: i64,
    }
    let mut ctx: u64 = 0;
    // SAFETY: raw syscalls with valid pointers for their duration.
    unsafe {
        if libc::syscall(libc::SYS_io_setup, 1, &mut ctx) < 0 {
            return Err(errno_msg("io_setup"));
        }
        let mut cb = Iocb {
            opcode: 1, // IOCB_CMD_PWRITE
            fildes: f.as_raw_fd() as u32,
            buf: buf.as_ptr() as u64,
            nbytes: buf.len() as u64,
            offset: off as i64,
            ..Default::default()
        };
        let mut list = [&mut cb as *mut Iocb];
        let r = libc::syscall(libc::SYS_io_submit, ctx, 1, list.as_mut_ptr());
        let result = if r != 1 {
            Err(errno_msg("io_submit"))
        } else {
            let mut ev = Event::default();
            let n = libc::syscall(libc::SYS_io_getevents, ctx, 1, 1, &mut ev, std::ptr::null::<libc::timespec>());
            if n != 1 {
                Err(errno_msg("io_getevents"))
            } else if ev.res != buf.len() as i64 {
                Err(format!("AIO write returned {}", ev.res))
            } else {
                Ok(())
            }
        };
        libc::syscall(libc::SYS_io_destroy, ctx);
        result
    }
}

fn run(a: &Args) -> Result<bool, String> {
    let dsync = matches!(a.mode, Mode::Dsync | Mode::AioDsync);
    let mut opts = OpenOptions::new();
    opts.read(true).write(true).create(true);
    if dsync {
        opts.custom_flags(libc::O_DSYNC);
    }
    let f = opts.open(&a.file).map_err(|e| format!("{}: {e}", a.file))?;
    let dev = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(&a.device)
        .map_err(|e| format!("{}: {e}", a.device))?;
    let bs = block_size(&f)?;
    let size = a.size.div_ceil(bs) * bs;
    // Generation 0: the whole file, synced.
    let mut content = vec![0u8; size as usize];
    fill_pattern(a.seed << 16, 0, &mut content);
    f.write_all_at(&content, 0).map_err(|e| format!("write: {e}"))?;
    f.sync_all().map_err(|e| format!("fsync: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let mut racers = Vec::new();
    for _ in 0..a.racers {
        let stop = stop.clone();
        let g = f.try_clone().map_err(|e| format!("dup: {e}"))?;
        racers.push(std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                // SAFETY: plain syscall on an open fd.
                unsafe { libc::sync_file_range(g.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
            }
        }));
    }

    let mut rng = Rng(a.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut disk = Aligned::new(bs as usize)?;
    let mut ok = true;
    let mut checked = 0u64;
    for round in 1..=a.rounds {
        let off = rng.below(size);
        let len = 1 + rng.below((size - off).min(256 << 10));
        let mut data = vec![0u8; len as usize];
        fill_pattern((a.seed << 16) + round, off, &mut data);
        match a.mode {
            Mode::AioDsync => aio_write(&f, &data, off)?,
            _ => f.write_all_at(&data, off).map_err(|e| format!("write: {e}"))?,
        }
        if a.gap_ms > 0 {
            std::thread::sleep(std::time::Duration::from_micros(rng.below(a.gap_ms * 1000 + 1)));
        }
        match a.mode {
            Mode::Fsync => f.sync_all().map_err(|e| format!("fsync: {e}"))?,
            Mode::Fdatasync => f.sync_data().map_err(|e| format!("fdatasync: {e}"))?,
            Mode::Dsync | Mode::AioDsync | Mode::Nothing => {}
        }
        content[off as usize..(off + len) as usize].copy_from_slice(&data);
        // Every block the write touched must now be on the device.
        for blk in off / bs..=(off + len - 1) / bs {
            let phys = fibmap(&f, blk)?;
            if phys == 0 {
                println!("round {round}: file block {blk} has no disk block after the write was acknowledged");
                ok = false;
                continue;
            }
            dev.read_exact_at(disk.slice(), phys * bs).map_err(|e| format!("read {}: {e}", a.device))?;
            let want = &content[(blk * bs) as usize..((blk + 1) * bs) as usize];
            if disk.slice() != want {
                let i = disk.slice().iter().zip(want).position(|(x, y)| x != y).unwrap_or(0);
                println!(
                    "round {round}: file block {blk} (device block {phys}) is not on the disk after the write was acknowledged: byte {} is {:#04x}, want {:#04x}",
                    blk * bs + i as u64,
                    disk.slice()[i],
                    want[i]
                );
                ok = false;
            }
            checked += 1;
        }
        if !ok {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for r in racers {
        let _ = r.join();
    }
    let mode = match a.mode {
        Mode::Fsync => "fsync",
        Mode::Fdatasync => "fdatasync",
        Mode::Dsync => "O_DSYNC",
        Mode::AioDsync => "AIO O_DSYNC",
        Mode::Nothing => "no sync (self-test)",
    };
    println!(
        "rbfs-durable: {} rounds of {mode} with {} racers, {checked} blocks read back from {}: {}",
        a.rounds,
        a.racers,
        a.device,
        if ok { "all on the disk" } else { "NOT DURABLE" }
    );
    Ok(ok)
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rbfs-durable: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&a) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("rbfs-durable: {e}");
            ExitCode::from(2)
        }
    }
}
