//! rbfs-ordered: checks, on the raw device, that no block pointer of a
//! file reaches the disk before the data of the block it points at.
//!
//! ```text
//! rbfs-ordered FILE DEVICE [--seed N] [--size BYTES] [--piece BYTES]
//!              [--pause-us US] [--linger-ms MS]
//! ```
//!
//! FILE must not exist; its directory must be on the rbfs on DEVICE.  A
//! writer thread appends pattern data to FILE in pieces (whole blocks)
//! until it is `--size` long, and never syncs it.  A buddy thread keeps
//! rewriting and fsyncing a second file whose inode lives in the same
//! inode-table block as FILE's, so that block keeps reaching the disk
//! with whatever FILE's slot holds at the moment; after each, it fsyncs
//! block, then fsyncs DEVICE itself, which writes every dirty metadata
//! block in the buffer cache (FILE's indirect blocks among them) and no
//! file data.  Meanwhile the main
//! thread reads FILE's inode from DEVICE with `O_DIRECT`, walks its map
//! as it is on the disk (direct pointers, and indirect blocks also read
//! with `O_DIRECT`), and reads every block the map points at (once: each
//! block is written exactly once, so a block found right stays right): it
//! must hold the pattern bytes of its place in the file.  A pointer that reached the disk before its data
//! shows the block's old contents instead.  The sampling goes on after the
//! writer is done, until the disk maps the whole file or `--linger-ms`
//! (default 8000) has passed.  Then FILE is fsync'ed
//! and must be mapped whole on the disk, with the right bytes (which also
//! shows that the sampler sees the pointers it checks).
//!
//! Before the run, the first block of each indirect tree the file will use
//! and its last block are written with their final contents and fsync'ed,
//! so that the roots of its map are on the disk from the start.
//!
//! Run it with background writeback held off (the data stays in the page
//! cache while the buffer cache's metadata is written), and with the
//! disk's writes slowed down and background writeback at its shortest
//! intervals (the data lags behind, commits run in writeback).  A sample that does not parse (a block read while
//! it was being written) is skipped and counted.
//!
//! Exit status: 0 ordered, 1 a pointer on the disk before its data (or
//! the file incomplete after fsync), 2 usage or I/O error.

mod direct;

use direct::Aligned;
use rbfs_format::{blocks_at_depth, IndirectBlock, Inode, Superblock, INODE_SIZE, N_DIRECT, N_LEVELS, SUPERBLOCK_SIZE};
use rbfs_guest_tools::{fill_pattern, parse_size};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Args {
    file: String,
    device: String,
    seed: u64,
    size: u64,
    piece: u64,
    pause_us: u64,
    linger_ms: u64,
}

fn usage() -> String {
    "usage: rbfs-ordered FILE DEVICE [--seed N] [--size BYTES] [--piece BYTES] [--pause-us US] [--linger-ms MS]".into()
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args { file: String::new(), device: String::new(), seed: 1, size: 2 << 20, piece: 16 << 10, pause_us: 2000, linger_ms: 8000 };
    let mut pos = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut val = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--seed" => a.seed = val("--seed")?.parse().map_err(|_| "bad --seed")?,
            "--size" => a.size = parse_size(&val("--size")?).ok_or("bad --size")?,
            "--piece" => a.piece = parse_size(&val("--piece")?).ok_or("bad --piece")?,
            "--pause-us" => a.pause_us = val("--pause-us")?.parse().map_err(|_| "bad --pause-us")?,
            "--linger-ms" => a.linger_ms = val("--linger-ms")?.parse().map_err(|_| "bad --linger-ms")?,
            s if s.starts_with("--") => return Err(format!("unknown option {s}\n{}", usage())),
            _ => pos.push(arg),
        }
    }
    let [file, device] = <[String; 2]>::try_from(pos).map_err(|_| usage())?;
    a.file = file;
    a.device = device;
    Ok(a)
}

/// The raw device, read with `O_DIRECT` one block at a time.
struct Disk {
    dev: File,
    buf: Aligned,
    bs: u64,
}

impl Disk {
    fn read(&mut self, block: u64) -> Result<&[u8], String> {
        let bs = self.bs as usize;
        let buf = &mut self.buf.slice()[..bs];
        self.dev.read_exact_at(buf, block * self.bs).map_err(|e| format!("reading block {block} of the device: {e}"))?;
        Ok(buf)
    }
}

/// What one look at the disk found.
enum Sample {
    /// The inode or an indirect block did not parse (caught mid-write),
    /// or the slot is still free.
    Skipped,
    /// The map on the disk: how many blocks it maps.
    Mapped(u64),
}

struct Checker {
    disk: Disk,
    sb: Superblock,
    ino: u32,
    seed: u64,
    /// File blocks that can be mapped (the final size in blocks).
    nblocks: u64,
    expect: Vec<u8>,
    pointers_checked: u64,
    /// Per file block, the device block found right there before (each
    /// block is written once: once right, it stays right).
    verified: Vec<u32>,
}

/// A pointer on the disk whose block does not hold its data.
struct Unordered(String);

impl Checker {
    /// Reads FILE's map from the disk and checks every block it maps.
    fn sample(&mut self) -> Result<Result<Sample, Unordered>, String> {
        let (tblock, off) = self.sb.inode_location(self.ino).map_err(|e| format!("inode {}: {e}", self.ino))?;
        let slot = self.disk.read(u64::from(tblock))?[off..off + INODE_SIZE].to_vec();
        let inode = match Inode::parse(&slot, self.ino, &self.sb) {
            Ok(Some(i)) => i,
            _ => return Ok(Ok(Sample::Skipped)),
        };
        // (file block, device block) for every data pointer on the disk.
        let mut ptrs = Vec::new();
        for (i, &p) in inode.map[..N_DIRECT].iter().enumerate() {
            if p != 0 {
                ptrs.push((i as u64, p));
            }
        }
        let log = self.sb.layout.block_log;
        let mut base = N_DIRECT as u64;
        for depth in 1..=N_LEVELS {
            let root = inode.map[N_DIRECT + depth - 1];
            if root != 0 && !self.walk(root, depth, base, &mut ptrs)? {
                return Ok(Ok(Sample::Skipped));
            }
            base = base.saturating_add(blocks_at_depth(log, depth));
        }
        for &(index, block) in &ptrs {
            if index >= self.nblocks {
                return Ok(Err(Unordered(format!("file block {index} is mapped (to {block}) but was never written"))));
            }
            if self.verified[index as usize] == block {
                continue;
            }
            let bs = self.disk.bs;
            fill_pattern(self.seed, index * bs, &mut self.expect);
            let got = self.disk.read(u64::from(block))?;
            self.pointers_checked += 1;
            if got != &self.expect[..] {
                let differ = got.iter().zip(&self.expect).filter(|(a, b)| a != b).count();
                return Ok(Err(Unordered(format!(
                    "file block {index} -> device block {block}: the pointer is on the disk but the data is not ({differ} of {bs} bytes differ)"
                ))));
            }
            self.verified[index as usize] = block;
        }
        Ok(Ok(Sample::Mapped(ptrs.len() as u64)))
    }

    /// Collects the data pointers of the tree of `depth` levels at indirect
    /// block `block`, which maps file blocks from `base` on.  `false` if a
    /// block of it does not parse.
    fn walk(&mut self, block: u32, depth: usize, base: u64, out: &mut Vec<(u64, u32)>) -> Result<bool, String> {
        let data = self.disk.read(u64::from(block))?.to_vec();
        let Ok(ind) = IndirectBlock::parse(&data, &self.sb) else { return Ok(false) };
        let child_span = blocks_at_depth(self.sb.layout.block_log, depth - 1);
        let children: Vec<(usize, u32)> = (0..ind.len()).map(|i| (i, ind.get(i))).filter(|&(_, p)| p != 0).collect();
        for (i, p) in children {
            let index = base + i as u64 * child_span;
            if depth == 1 {
                out.push((index, p));
            } else if !self.walk(p, depth - 1, index, out)? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn run(a: Args) -> Result<ExitCode, String> {
    let mut dev = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&a.device).map_err(|e| format!("{}: {e}", a.device))?;
    let mut sbuf = Aligned::new(4096)?;
    dev.read_exact_at(sbuf.slice(), 0).map_err(|e| format!("{}: reading the super block: {e}", a.device))?;
    let sb = Superblock::parse(&sbuf.slice()[..SUPERBLOCK_SIZE]).map_err(|e| format!("{}: {e}", a.device))?;
    let bs = sb.block_size() as u64;
    if a.piece == 0 || a.piece % bs != 0 || a.size % a.piece != 0 {
        return Err(format!("--piece must be a multiple of the block size ({bs}) and divide --size"));
    }
    let file = OpenOptions::new().read(true).write(true).create_new(true).open(&a.file).map_err(|e| format!("{}: {e}", a.file))?;
    let ino = file.metadata().map_err(|e| format!("{}: {e}", a.file))?.ino() as u32;
    let (tblock, _) = sb.inode_location(ino).map_err(|e| format!("inode {ino}: {e}"))?;
    // A buddy whose inode shares FILE's inode-table block: a regular file
    // of the directory, or a new one.
    let mut buddy = None;
    let dir = std::path::Path::new(&a.file).parent().map(|p| p.to_path_buf()).unwrap_or_else(|| ".".into());
    for entry in std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?.flatten() {
        let Ok(md) = entry.metadata() else { continue };
        if md.is_file() && md.ino() as u32 != ino && sb.inode_location(md.ino() as u32).map(|(b, _)| b) == Ok(tblock) {
            buddy = OpenOptions::new().write(true).open(entry.path()).ok();
            if buddy.is_some() {
                break;
            }
        }
    }
    for n in 0..64 {
        if buddy.is_some() {
            break;
        }
        let name = format!("{}.buddy{n}", a.file);
        let f = OpenOptions::new().write(true).create_new(true).open(&name).map_err(|e| format!("{name}: {e}"))?;
        let bino = f.metadata().map_err(|e| format!("{name}: {e}"))?.ino() as u32;
        if sb.inode_location(bino).map(|(b, _)| b) == Ok(tblock) {
            buddy = Some(f);
            break;
        }
    }
    let buddy = buddy.ok_or("no free inode in the inode-table block of FILE for a buddy")?;
    buddy.sync_all().map_err(|e| format!("buddy fsync: {e}"))?;
    // The file's tree on the disk before the run: its first single-indirect
    // block, a block of its double-indirect tree and its last block, written
    // with their final contents and fsync'ed.  The writer writes them again,
    // with the same bytes.  So the disk has the roots of the tree from the
    // start, and pointers put into it early can be seen there even while
    // the inode itself is not written again.
    let nblocks = a.size / bs;
    let log = sb.layout.block_log;
    let mut seedblk = vec![0u8; bs as usize];
    for index in [N_DIRECT as u64, N_DIRECT as u64 + blocks_at_depth(log, 1), nblocks - 1] {
        if index < nblocks {
            fill_pattern(a.seed, index * bs, &mut seedblk);
            file.write_all_at(&seedblk, index * bs).map_err(|e| format!("{}: {e}", a.file))?;
        }
    }
    file.sync_all().map_err(|e| format!("{}: fsync: {e}", a.file))?;
    dev = OpenOptions::new().read(true).custom_flags(libc::O_DIRECT).open(&a.device).map_err(|e| format!("{}: {e}", a.device))?;

    let stop = Arc::new(AtomicBool::new(false));
    let buddy_syncs = Arc::new(AtomicU64::new(0));
    let devsync = File::open(&a.device).map_err(|e| format!("{}: {e}", a.device))?;
    let buddy_thread = {
        let (stop, syncs) = (stop.clone(), buddy_syncs.clone());
        std::thread::spawn(move || -> Result<(), String> {
            let mut k = 0u8;
            while !stop.load(Ordering::Relaxed) {
                k = k.wrapping_add(1);
                buddy.write_all_at(&[k], 0).map_err(|e| format!("buddy write: {e}"))?;
                buddy.sync_all().map_err(|e| format!("buddy fsync: {e}"))?;
                devsync.sync_all().map_err(|e| format!("device fsync: {e}"))?;
                syncs.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        })
    };
    let writer_done = Arc::new(AtomicBool::new(false));
    let writer = {
        let file = file.try_clone().map_err(|e| format!("{}: {e}", a.file))?;
        let done = writer_done.clone();
        let (seed, size, piece, pause) = (a.seed, a.size, a.piece, a.pause_us);
        std::thread::spawn(move || -> Result<(), String> {
            let mut buf = vec![0u8; piece as usize];
            let mut off = 0;
            while off < size {
                fill_pattern(seed, off, &mut buf);
                file.write_all_at(&buf, off).map_err(|e| format!("write at {off}: {e}"))?;
                off += piece;
                std::thread::sleep(Duration::from_micros(pause));
            }
            done.store(true, Ordering::SeqCst);
            Ok(())
        })
    };

    let mut c = Checker { disk: Disk { dev, buf: Aligned::new(bs as usize)?, bs }, sb, ino, seed: a.seed, nblocks: a.size / bs, expect: vec![0u8; bs as usize], pointers_checked: 0, verified: vec![0; (a.size / bs) as usize] };
    let (mut samples, mut skipped, mut most) = (0u64, 0u64, 0u64);
    let mut verdict: Result<Option<u8>, String> = Ok(None);
    let mut done_at = None;
    loop {
        if done_at.is_none() && writer_done.load(Ordering::SeqCst) {
            done_at = Some(Instant::now());
        }
        match c.sample() {
            Err(e) => {
                verdict = Err(e);
                break;
            }
            Ok(Err(Unordered(msg))) => {
                println!("NOT ORDERED: {msg}");
                verdict = Ok(Some(1));
                break;
            }
            Ok(Ok(Sample::Skipped)) => skipped += 1,
            Ok(Ok(Sample::Mapped(n))) => most = most.max(n),
        }
        samples += 1;
        if done_at.is_some_and(|t| most == c.nblocks || t.elapsed() >= Duration::from_millis(a.linger_ms)) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "writer panicked")??;
    buddy_thread.join().map_err(|_| "buddy panicked")??;
    println!(
        "# {samples} samples of the disk ({skipped} caught mid-write), {} pointers read back, at most {most} of {} blocks mapped on the disk before the fsync, {} buddy and device fsyncs",
        c.pointers_checked,
        c.nblocks,
        buddy_syncs.load(Ordering::Relaxed)
    );
    match verdict {
        Err(e) => return Err(e),
        Ok(Some(code)) => return Ok(ExitCode::from(code)),
        Ok(None) => {}
    }
    // Everything, once fsync'ed, is mapped on the disk and right.
    file.sync_all().map_err(|e| format!("{}: fsync: {e}", a.file))?;
    match c.sample()? {
        Err(Unordered(msg)) => {
            println!("NOT ORDERED: after fsync: {msg}");
            Ok(ExitCode::from(1))
        }
        Ok(Sample::Mapped(n)) if n == c.nblocks => {
            println!("# after fsync: all {n} blocks mapped on the disk with their data");
            Ok(ExitCode::SUCCESS)
        }
        Ok(Sample::Mapped(n)) => {
            println!("FAIL: after fsync only {n} of {} blocks are mapped on the disk", c.nblocks);
            Ok(ExitCode::from(1))
        }
        Ok(Sample::Skipped) => {
            println!("FAIL: after fsync the inode on the disk does not parse");
            Ok(ExitCode::from(1))
        }
    }
}

fn main() -> ExitCode {
    let a = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("rbfs-ordered: {e}");
            return ExitCode::from(2);
        }
    };
    match run(a) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("rbfs-ordered: {e}");
            ExitCode::from(2)
        }
    }
}
