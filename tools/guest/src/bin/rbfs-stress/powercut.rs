//! `--powercut-writer`: writes with a durability log on stdout (the format
//! and its replay are in rbfs_guest_tools::durlog), and `--verify-log`,
//! which checks the files found after a power cut against it.

use crate::sys::{self, Req};
use crate::{write_len, write_off, Config, Fail, Kind, Rng, Stats};
use rbfs_guest_tools::durlog::{self, Rec};
use rbfs_guest_tools::fill_gen;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

const BATCH_MAX: usize = 8;

/// The log on stdout; one line at a time, each pushed out before the
/// caller goes on.
struct Log {
    seq: Mutex<u64>,
}

impl Log {
    fn emit(&self, rec: Rec) -> Result<(), Fail> {
        let mut seq = self.seq.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = io::stdout().lock();
        sys::emit_line(&mut out, &rec.line(*seq))
            .map_err(|e| Fail::Error(format!("stdout: {e}")))?;
        *seq += 1;
        Ok(())
    }
}

/// A file of the writer and what it holds.
struct PFile {
    idx: usize,
    name: String,
    file: File,
    dsync: File,
    content: Vec<u8>,
    last_gen: u64,
}

struct Writer<'a> {
    cfg: &'a Config,
    log: &'a Log,
    stats: &'a Stats,
    next_op: &'a AtomicU64,
    stop: &'a AtomicBool,
    start: Instant,
    tid: usize,
    rng: Rng,
    gens: u64,
    aio_ok: bool,
    uring_ok: bool,
}

impl Writer<'_> {
    fn gen(&mut self) -> u64 {
        self.gens += 1;
        ((self.tid as u64 + 1) << 40) | self.gens
    }

    fn data(&self, gen: u64, off: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        fill_gen(self.cfg.seed, gen, off, &mut buf);
        buf
    }

    fn run(&mut self, files: &mut [PFile]) -> Result<(), Fail> {
        let mut table = vec![
            (Kind::Write, 45),
            (Kind::Fsync, 8),
            (Kind::Fdatasync, 8),
            (Kind::DsyncWrite, 8),
            (Kind::SyncRange, 8),
            (Kind::Read, 5),
        ];
        if self.cfg.mmap {
            table.push((Kind::MmapWrite, 6));
        }
        if self.aio_ok {
            table.push((Kind::Aio, 6));
        }
        if self.uring_ok {
            table.push((Kind::Uring, 6));
        }
        let total: u64 = table.iter().map(|&(_, w)| w).sum();
        let mut aio = None;
        let mut ring = None;
        loop {
            let seq = self.next_op.fetch_add(1, Ordering::SeqCst);
            if self.stop.load(Ordering::Relaxed)
                || (self.cfg.ops != 0 && seq >= self.cfg.ops)
                || self.cfg.time.is_some_and(|t| self.start.elapsed() >= t)
            {
                return Ok(());
            }
            let mut pick = self.rng.below(total);
            let mut kind = Kind::Write;
            for &(k, w) in &table {
                if pick < w {
                    kind = k;
                    break;
                }
                pick -= w;
            }
            let fi = self.rng.below(files.len() as u64) as usize;
            let f = &mut files[fi];
            if kind == Kind::MmapWrite && f.content.is_empty() {
                kind = Kind::Write;
            }
            let ioerr = |what: &str, e: io::Error| Fail::Error(format!("{}: {what}: {e}", f.name));
            match kind {
                Kind::Write | Kind::DsyncWrite | Kind::MmapWrite => {
                    let size = f.content.len() as u64;
                    let (off, len) = if kind == Kind::MmapWrite {
                        let off = self.rng.below(size);
                        (off, 1 + self.rng.below((size - off).min(64 << 10)))
                    } else {
                        let len = write_len(&mut self.rng).min(self.cfg.max_size);
                        (write_off(&mut self.rng, size, len, self.cfg.max_size), len)
                    };
                    let gen = self.gen();
                    let data = self.data(gen, off, len as usize);
                    self.log.emit(Rec::Write {
                        file: f.idx,
                        off,
                        len,
                        gen,
                    })?;
                    f.last_gen = gen;
                    let r = match kind {
                        Kind::MmapWrite => sys::mmap_write(&f.file, off, &data),
                        _ => {
                            let fd = if kind == Kind::Write {
                                &f.file
                            } else {
                                &f.dsync
                            };
                            match sys::pwrite_all(fd, off, &data) {
                                (_, Some(e)) => Err(e),
                                _ => Ok(()),
                            }
                        }
                    };
                    r.map_err(|e| ioerr(&format!("{} of {len} bytes at {off}", kind.name()), e))?;
                    apply(&mut f.content, off, &data);
                    self.stats.add_written(len);
                    if kind != Kind::Write {
                        self.log.emit(Rec::Synced { file: f.idx, gen })?;
                    }
                }
                Kind::Fsync | Kind::Fdatasync => {
                    let r = if kind == Kind::Fsync {
                        f.file.sync_all()
                    } else {
                        f.file.sync_data()
                    };
                    r.map_err(|e| ioerr(kind.name(), e))?;
                    self.log.emit(Rec::Durable {
                        file: f.idx,
                        gen: f.last_gen,
                    })?;
                }
                Kind::SyncRange => {
                    let size = f.content.len() as u64;
                    let off = self.rng.below(size + 1);
                    let len = self.rng.below(256 << 10);
                    sys::sync_file_range(&f.file, off, len, libc::SYNC_FILE_RANGE_WRITE)
                        .map_err(|e| ioerr("sync_file_range", e))?;
                }
                Kind::Read => {
                    let got = sys::read_all(&f.file).map_err(|e| ioerr("read", e))?;
                    self.stats.add_verified(got.len() as u64);
                    if got != f.content {
                        let at = got
                            .iter()
                            .zip(&f.content)
                            .position(|(a, b)| a != b)
                            .unwrap_or(got.len().min(f.content.len()));
                        return Err(Fail::Mismatch(format!(
                            "{}: read back differs from what was written: size {} (expected {}), first difference at {at}",
                            f.name,
                            got.len(),
                            f.content.len()
                        )));
                    }
                }
                Kind::Aio | Kind::Uring => {
                    let size = f.content.len() as u64;
                    let count = 1 + self.rng.below(BATCH_MAX as u64) as usize;
                    let mut pos = write_off(&mut self.rng, size, 1, self.cfg.max_size);
                    let (mut gens, mut reqs) = (Vec::new(), Vec::new());
                    while reqs.len() < count {
                        let gap = if self.rng.chance(50) {
                            0
                        } else {
                            self.rng.below(8192)
                        };
                        let len = 1 + self.rng.below(16 << 10);
                        let off = pos + gap;
                        if off + len > self.cfg.max_size {
                            if reqs.is_empty() && pos > 0 {
                                pos = 0;
                                continue;
                            }
                            break;
                        }
                        let gen = self.gen();
                        gens.push(gen);
                        reqs.push(Req {
                            off,
                            data: self.data(gen, off, len as usize),
                        });
                        pos = off + len;
                    }
                    for (r, &gen) in reqs.iter().zip(&gens) {
                        self.log.emit(Rec::Write {
                            file: f.idx,
                            off: r.off,
                            len: r.data.len() as u64,
                            gen,
                        })?;
                        f.last_gen = gen;
                    }
                    let fd = f.dsync.as_raw_fd();
                    let res = if kind == Kind::Aio {
                        if aio.is_none() {
                            aio = sys::new_aio(BATCH_MAX).map_err(Fail::Error)?;
                        }
                        let ctx = aio
                            .as_ref()
                            .ok_or(Fail::Error("io_setup: unavailable".into()))?;
                        sys::aio_batch(ctx, fd, &reqs)
                    } else {
                        if ring.is_none() {
                            ring = sys::new_ring(BATCH_MAX).map_err(Fail::Error)?;
                        }
                        let r = ring
                            .as_mut()
                            .ok_or(Fail::Error("io_uring_setup: unavailable".into()))?;
                        sys::uring_batch(r, fd, &reqs)
                    }
                    .map_err(|e| ioerr(&format!("{} submission", kind.name()), e))?;
                    for ((r, &gen), &rc) in reqs.iter().zip(&gens).zip(&res) {
                        let len = r.data.len();
                        if rc != len as i64 {
                            let what = if rc < 0 {
                                io::Error::from_raw_os_error(-rc as i32).to_string()
                            } else {
                                format!("{rc} of {len} bytes written")
                            };
                            return Err(Fail::Error(format!(
                                "{}: {} O_DSYNC write of {len} bytes at {}: {what}",
                                f.name,
                                kind.name(),
                                r.off
                            )));
                        }
                        apply(&mut f.content, r.off, &r.data);
                        self.stats.add_written(len as u64);
                        self.log.emit(Rec::Synced { file: f.idx, gen })?;
                    }
                }
                _ => unreachable!(),
            }
            self.stats.count(kind);
        }
    }
}

fn apply(content: &mut Vec<u8>, off: u64, data: &[u8]) {
    let (off, end) = (off as usize, off as usize + data.len());
    if content.len() < end {
        content.resize(end, 0);
    }
    content[off..end].copy_from_slice(data);
}

/// Runs the writer; the notes are for the summary.
pub fn write(cfg: &Config, stats: &Stats) -> Result<Vec<String>, Fail> {
    let err = |e: String| Fail::Error(e);
    let dir = &cfg.dir;
    std::fs::create_dir_all(dir).map_err(|e| err(format!("{}: {e}", dir.display())))?;
    let mut notes = Vec::new();
    let aio_ok = cfg.aio && sys::new_aio(BATCH_MAX).map_err(err)?.is_some();
    let uring_ok = cfg.uring && sys::new_ring(BATCH_MAX).map_err(err)?.is_some();
    if cfg.aio && !aio_ok {
        notes
            .push("AIO unavailable here (io_setup: ENOSYS/EPERM): AIO writes disabled".to_string());
    }
    if cfg.uring && !uring_ok {
        notes.push(
            "io_uring unavailable here (io_uring_setup: ENOSYS/EPERM): io_uring writes disabled"
                .to_string(),
        );
    }
    for n in &notes {
        eprintln!("rbfs-stress: note: {n}");
    }
    sys::catch_sigbus().map_err(|e| err(format!("sigaction(SIGBUS): {e}")))?;
    // Every name exists, empty and durable, before the log starts.
    let mut files = Vec::new();
    for idx in 0..cfg.files {
        let path = dir.join(format!("f{idx}"));
        let name = path.display().to_string();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&path)
            .map_err(|e| err(format!("{name}: create: {e}")))?;
        file.sync_all()
            .map_err(|e| err(format!("{name}: fsync: {e}")))?;
        let dsync = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .open(&path)
            .map_err(|e| err(format!("{name}: open O_DSYNC: {e}")))?;
        files.push(PFile {
            idx,
            name,
            file,
            dsync,
            content: Vec::new(),
            last_gen: 0,
        });
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| err(format!("{}: fsync: {e}", dir.display())))?;
    // DIR's own name, which create_dir_all may just have made, lives in
    // its parent: make that durable too.
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| err(format!("{}: fsync: {e}", parent.display())))?;
    }

    let log = Log { seq: Mutex::new(0) };
    log.emit(Rec::Header {
        seed: cfg.seed,
        files: cfg.files,
        max_size: cfg.max_size,
    })?;
    let threads = cfg.threads.min(cfg.files);
    // Thread t owns files t, t + threads, ...
    let mut owned: Vec<Vec<PFile>> = (0..threads).map(|_| Vec::new()).collect();
    for f in files {
        owned[f.idx % threads].push(f);
    }
    let next_op = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let first: Mutex<Option<Fail>> = Mutex::new(None);
    let start = Instant::now();
    std::thread::scope(|s| {
        for (tid, mut mine) in owned.into_iter().enumerate() {
            let (log, next_op, stop, first) = (&log, &next_op, &stop, &first);
            s.spawn(move || {
                let mut w = Writer {
                    cfg,
                    log,
                    stats,
                    next_op,
                    stop,
                    start,
                    tid,
                    rng: Rng::new(cfg.seed, tid as u64),
                    gens: 0,
                    aio_ok,
                    uring_ok,
                };
                if let Err(f) = w.run(&mut mine) {
                    stop.store(true, Ordering::SeqCst);
                    let mut g = first.lock().unwrap_or_else(|p| p.into_inner());
                    g.get_or_insert(f);
                }
            });
        }
    });
    if let Some(f) = first.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(f);
    }
    log.emit(Rec::End { ops: stats.ops() })?;
    Ok(notes)
}

/// What `--verify-log` found, when consistent.
pub struct Verified {
    pub seed: u64,
    pub files: usize,
    pub bytes: u64,
    pub durable_points: u64,
    pub synced_writes: u64,
    pub unsynced_lost: u64,
    pub cut_tail: bool,
    pub ended: bool,
}

/// Checks the files in DIR against the log in `log_path`.
pub fn verify(cfg: &Config, log_path: &std::path::Path, stats: &Stats) -> Result<Verified, Fail> {
    let text =
        std::fs::read(log_path).map_err(|e| Fail::Error(format!("{}: {e}", log_path.display())))?;
    let text = String::from_utf8_lossy(&text);
    let rp =
        durlog::replay(&text).map_err(|e| Fail::Error(format!("{}: {e}", log_path.display())))?;
    let mut v = Verified {
        seed: rp.seed,
        files: rp.files.len(),
        bytes: 0,
        durable_points: rp.durable_points,
        synced_writes: rp.synced_writes,
        unsynced_lost: 0,
        cut_tail: rp.cut_tail,
        ended: rp.ended,
    };
    let mut reports = Vec::new();
    for (i, st) in rp.files.iter().enumerate() {
        let path = cfg.dir.join(format!("f{i}"));
        let name = path.display().to_string();
        let actual = match std::fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                reports.push(format!(
                    "{name}: missing (it was created and made durable before the log started)"
                ));
                continue;
            }
            Err(e) => return Err(Fail::Error(format!("{name}: {e}"))),
        };
        stats.add_verified(actual.len() as u64);
        match durlog::check_file(rp.seed, &name, st, &actual) {
            Ok(c) => {
                v.bytes += c.bytes;
                v.unsynced_lost += c.unsynced_lost;
            }
            Err(r) => reports.push(r),
        }
    }
    if reports.is_empty() {
        Ok(v)
    } else {
        Err(Fail::Mismatch(reports.join("\n")))
    }
}
