//! The stress run: worker threads, the per-file model, verification and
//! mismatch reports. The design is described in main.rs.

use crate::sys::{self, Req};
use crate::{write_len, write_off, Config, Fail, Kind, Rng, Stats, HOT_BYTES};
use rbfs_guest_tools::aio::Context;
use rbfs_guest_tools::uring::Ring;
use rbfs_guest_tools::{fill_gen, hex};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// Operations kept per file for mismatch reports.
const LOG_LEN: usize = 32;
/// Largest request of AIO and io_uring batches, and their depth.
const BATCH_REQ_MAX: u64 = 16 << 10;
const BATCH_MAX: usize = 8;

/// One operation on a file, for its ring log.
#[derive(Clone)]
pub struct LogEntry {
    /// Operation number (run-wide).
    pub seq: u64,
    pub thread: usize,
    pub kind: Kind,
    pub off: u64,
    pub len: u64,
    /// Generation of the data written (0: none).
    pub gen: u64,
    /// File size after the operation, per the model.
    pub size: u64,
    pub note: String,
}

impl LogEntry {
    fn line(&self) -> String {
        let mut s = format!(
            "#{} t{} {:<10} off={} len={}",
            self.seq,
            self.thread,
            self.kind.name(),
            self.off,
            self.len
        );
        if self.gen != 0 {
            s.push_str(&format!(" gen={:#x}", self.gen));
        }
        s.push_str(&format!(" -> size {}", self.size));
        if !self.note.is_empty() {
            s.push_str(&format!(" ({})", self.note));
        }
        s
    }

    /// Whether the entry wrote data at file offset `p`.
    fn wrote(&self, p: u64) -> bool {
        self.gen != 0 && self.off <= p && p < self.off + self.len
    }
}

/// One file name `DIR/f<idx>` and what must be in it.
pub struct Slot {
    /// The inode now at the name (None: the name must not exist, after a
    /// failed re-create with --allow-enospc).
    pub file: Option<Arc<File>>,
    /// Every byte of the file.
    pub model: Vec<u8>,
    pub log: VecDeque<LogEntry>,
}

impl Slot {
    fn push_log(&mut self, e: LogEntry) {
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back(e);
    }
}

/// Applies a write of `data` at `off` to a model (nothing written, no
/// change: not even of the size).
fn model_write(model: &mut Vec<u8>, off: u64, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let (off, end) = (off as usize, off as usize + data.len());
    if model.len() < end {
        model.resize(end, 0);
    }
    model[off..end].copy_from_slice(data);
}

/// State shared by the workers.
pub struct Shared {
    pub cfg: Config,
    pub slots: Vec<Mutex<Slot>>,
    pub stats: Stats,
    /// Operations started.
    next_op: AtomicU64,
    pub stop: AtomicBool,
    /// The first failure; later ones are only printed.
    pub failure: Mutex<Option<Fail>>,
    start: Instant,
    drop_caches_ok: AtomicBool,
    aio_ok: bool,
    uring_ok: bool,
    corrupt_pending: AtomicBool,
    dir: File,
    /// Notes for the summary (also printed when made).
    pub notes: Mutex<Vec<String>>,
}

fn lock(m: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    pub fn path(&self, idx: usize) -> PathBuf {
        self.cfg.dir.join(format!("f{idx}"))
    }

    fn create(&self, idx: usize) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o644)
            .open(self.path(idx))
    }

    /// Records a failure and stops the run; the first one is printed.
    pub fn fail(&self, f: Fail) {
        let mut first = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        let (tag, msg) = match &f {
            Fail::Mismatch(m) => ("MISMATCH", m),
            Fail::Error(m) => ("ERROR", m),
        };
        if first.is_none() {
            eprintln!("rbfs-stress: {tag}: {msg}");
            *first = Some(f);
        } else {
            // Most likely a consequence of the first one.
            let line = msg.lines().next().unwrap_or("");
            eprintln!("rbfs-stress: also {tag}: {line}");
        }
        self.stop.store(true, Ordering::SeqCst);
    }

    pub fn failed(&self) -> bool {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    fn note_once(&self, flag: &AtomicBool, msg: &str) {
        if flag.swap(false, Ordering::SeqCst) {
            eprintln!("rbfs-stress: note: {msg}");
            let mut notes = self.notes.lock().unwrap_or_else(|p| p.into_inner());
            notes.push(msg.to_string());
        }
    }

    /// syncfs, then drop_caches (once noted and skipped if not permitted).
    pub fn drop_caches(&self) -> Result<(), Fail> {
        if !self.drop_caches_ok.load(Ordering::Relaxed) {
            return Ok(());
        }
        sys::syncfs(&self.dir).map_err(|e| Fail::Error(format!("syncfs: {e}")))?;
        match sys::drop_caches() {
            Ok(()) => {
                self.stats.count(Kind::DropCaches);
                Ok(())
            }
            Err(e) if sys::drop_caches_unavailable(&e) => {
                self.note_once(
                    &self.drop_caches_ok,
                    &format!("cannot write /proc/sys/vm/drop_caches ({e}); verifying without dropping caches"),
                );
                Ok(())
            }
            Err(e) => Err(Fail::Error(format!("/proc/sys/vm/drop_caches: {e}"))),
        }
    }

    /// Checks every file against its model, one at a time under its lock.
    pub fn verify_all(&self, what: &str) -> Result<(), Fail> {
        for idx in 0..self.slots.len() {
            let g = lock(&self.slots[idx]);
            self.verify_slot(idx, &g, what)?;
        }
        self.stats.count(Kind::VerifyAll);
        Ok(())
    }

    /// Checks file `idx`, opened by name, against `slot` (locked).
    fn verify_slot(&self, idx: usize, slot: &Slot, what: &str) -> Result<(), Fail> {
        let path = self.path(idx);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound && slot.file.is_none() => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(Fail::Mismatch(format!(
                    "{}: missing ({what}); model size {}\n{}",
                    path.display(),
                    slot.model.len(),
                    log_lines(&slot.log)
                )))
            }
            Err(e) => return Err(Fail::Error(format!("{}: open: {e}", path.display()))),
        };
        if slot.file.is_none() {
            return Err(Fail::Mismatch(format!(
                "{}: exists, but should not ({what})",
                path.display()
            )));
        }
        let data = sys::read_all(&file)
            .map_err(|e| Fail::Error(format!("{}: read: {e}", path.display())))?;
        self.stats.add_verified(data.len() as u64);
        self.compare(
            &path.display().to_string(),
            &slot.model,
            &slot.log,
            &data,
            0,
            true,
            what,
        )
    }

    /// Compares `got`, read at `base`, with the model; `whole`: `got` is
    /// everything from `base` to the end of the file (else it may stop
    /// early only at the end of the file, too).
    #[allow(clippy::too_many_arguments)]
    fn compare(
        &self,
        name: &str,
        model: &[u8],
        log: &VecDeque<LogEntry>,
        got: &[u8],
        base: u64,
        whole: bool,
        what: &str,
    ) -> Result<(), Fail> {
        let b = (base as usize).min(model.len());
        let want = if whole {
            &model[b..]
        } else {
            &model[b..(b + got.len()).min(model.len())]
        };
        if want == got {
            return Ok(());
        }
        Err(Fail::Mismatch(report(
            self.cfg.seed,
            name,
            model,
            log,
            got,
            base,
            what,
        )))
    }

    /// Whether the run should end before another operation.
    fn done(&self, seq: u64) -> bool {
        self.stop.load(Ordering::Relaxed)
            || (self.cfg.ops != 0 && seq >= self.cfg.ops)
            || self.cfg.time.is_some_and(|t| self.start.elapsed() >= t)
    }

    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }
}

fn log_lines(log: &VecDeque<LogEntry>) -> String {
    let mut s = format!("  last {} operations on the file, oldest first:", log.len());
    for e in log {
        s.push_str("\n    ");
        s.push_str(&e.line());
    }
    s
}

/// The mismatch report: where, what was expected and found around it, which
/// write the expected and found bytes come from, and the file's last ops.
fn report(
    seed: u64,
    name: &str,
    model: &[u8],
    log: &VecDeque<LogEntry>,
    got: &[u8],
    base: u64,
    what: &str,
) -> String {
    let b = base as usize;
    let want = |p: usize| model.get(p).copied();
    let end = b + got.len();
    let differs: Vec<usize> = (b..end).filter(|&p| want(p) != Some(got[p - b])).collect();
    let mut s = format!(
        "{name} ({what}): model size {}, read {} bytes at {base}",
        model.len(),
        got.len()
    );
    let first = match differs.first() {
        Some(&p) => {
            s.push_str(&format!(
                "\n  {} bytes differ, first at offset {p} (0x{p:x}), last at {}",
                differs.len(),
                differs[differs.len() - 1]
            ));
            p
        }
        None => {
            s.push_str(&format!(
                "\n  the bytes read match, but the file ends at {end} where the model ends at {}",
                model.len()
            ));
            end.min(model.len().saturating_sub(1))
        }
    };
    let s0 = (first.saturating_sub(8) & !7).max(b);
    let exp = model.get(s0..(s0 + 32).min(model.len())).unwrap_or(&[]);
    let (g0, g1) = ((s0 - b).min(got.len()), (s0 + 32 - b).min(got.len()));
    s.push_str(&format!(
        "\n  expected @{s0}: {}\n  got      @{s0}: {}",
        hex(exp),
        hex(&got[g0..g1])
    ));
    let p = first as u64;
    // Walk back to the operation that set the expected byte.
    let origin = log.iter().rev().find_map(|e| match e.kind {
        _ if e.wrote(p) => Some(format!("the expected byte is from {}", e.line())),
        Kind::Truncate if e.size <= p => Some(format!(
            "the expected byte is zero: the file was cut below it by {}",
            e.line()
        )),
        Kind::Rename | Kind::Unlink | Kind::Create if e.size <= p => Some(format!(
            "the expected byte is zero: the file was empty after {}",
            e.line()
        )),
        _ => None,
    });
    s.push_str(&format!(
        "\n  {}",
        origin.unwrap_or_else(|| "the expected byte is older than the logged operations".into())
    ));
    if let Some(&g) = got.get(first.wrapping_sub(b)) {
        // Which logged write the bytes found come from: stale data.
        let n = (end - first).min(16);
        let found = &got[first - b..first - b + n];
        let mut buf = vec![0u8; n];
        let from = log.iter().rev().find(|e| {
            e.wrote(p) && {
                fill_gen(seed, e.gen, p, &mut buf);
                let k = ((e.off + e.len - p) as usize).min(n);
                buf[..k] == found[..k]
            }
        });
        match from {
            Some(e) => s.push_str(&format!(
                "\n  the byte found (0x{g:02x}) is from the earlier {}",
                e.line()
            )),
            None if found.iter().all(|&x| x == 0) => s.push_str("\n  the bytes found are zeroes"),
            None => s.push_str(&format!(
                "\n  the byte found (0x{g:02x}) is from none of the logged writes"
            )),
        }
    }
    s.push('\n');
    s.push_str(&log_lines(log));
    s
}

/// A worker thread.
struct Worker<'a> {
    sh: &'a Shared,
    tid: usize,
    rng: Rng,
    gens: u64,
    aio: Option<Context>,
    ring: Option<Ring>,
}

/// The operation kinds a worker picks from, with weights.
pub fn op_table(cfg: &Config, aio_ok: bool, uring_ok: bool) -> Vec<(Kind, u64)> {
    let mut t = vec![
        (Kind::Write, 30),
        (Kind::Fsync, 5),
        (Kind::Fdatasync, 5),
        (Kind::SyncRange, 10),
        (Kind::Truncate, 4),
        (Kind::Unlink, 2),
        (Kind::Read, 10),
    ];
    if cfg.files > 1 {
        t.push((Kind::Rename, 2));
    }
    // A fault that finds no space (even a load, on tmpfs) is a SIGBUS,
    // which cannot be modelled.
    if cfg.mmap && !cfg.allow_enospc {
        t.push((Kind::MmapWrite, 8));
        t.push((Kind::MmapRead, 3));
    }
    if cfg.aio && aio_ok {
        t.push((Kind::Aio, 6));
    }
    if cfg.uring && uring_ok {
        t.push((Kind::Uring, 6));
    }
    t
}

impl Worker<'_> {
    fn gen(&mut self) -> u64 {
        self.gens += 1;
        ((self.tid as u64 + 1) << 40) | self.gens
    }

    fn data(&self, gen: u64, off: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0u8; len];
        fill_gen(self.sh.cfg.seed, gen, off, &mut buf);
        buf
    }

    /// A file: a quarter of the time one of the two hot ones, which all
    /// threads hammer.
    fn pick_slot(&mut self) -> usize {
        let n = self.sh.cfg.files as u64;
        if self.rng.chance(25) {
            self.rng.below(n.min(2)) as usize
        } else {
            self.rng.below(n) as usize
        }
    }

    fn write_len(&mut self) -> u64 {
        write_len(&mut self.rng).min(self.sh.cfg.max_size)
    }

    fn write_off(&mut self, size: u64, len: u64) -> u64 {
        write_off(&mut self.rng, size, len, self.sh.cfg.max_size)
    }

    fn entry(&self, seq: u64, kind: Kind, off: u64, len: u64, gen: u64, size: u64) -> LogEntry {
        LogEntry {
            seq,
            thread: self.tid,
            kind,
            off,
            len,
            gen,
            size,
            note: String::new(),
        }
    }

    /// An error of a system call on file `idx`; ENOSPC is counted and
    /// accepted with --allow-enospc.
    fn check(&self, idx: usize, what: &str, e: io::Error) -> Result<(), Fail> {
        if sys::is_enospc(&e) && self.sh.cfg.allow_enospc {
            self.sh.stats.count(Kind::Enospc);
            return Ok(());
        }
        Err(Fail::Error(format!(
            "{}: {what}: {e}",
            self.sh.path(idx).display()
        )))
    }

    /// The file of a locked slot, re-creating it if it had to go.
    fn file_of(&mut self, idx: usize, g: &mut Slot, seq: u64) -> Result<Option<Arc<File>>, Fail> {
        if let Some(f) = &g.file {
            return Ok(Some(f.clone()));
        }
        match self.sh.create(idx) {
            Ok(f) => {
                g.file = Some(Arc::new(f));
                g.model.clear();
                let e = self.entry(seq, Kind::Create, 0, 0, 0, 0);
                g.push_log(e);
                self.sh.stats.count(Kind::Create);
                Ok(None)
            }
            Err(e) => self.check(idx, "create", e).map(|()| None),
        }
    }

    fn run(&mut self, table: &[(Kind, u64)]) {
        let total: u64 = table.iter().map(|&(_, w)| w).sum();
        loop {
            let seq = self.sh.next_op.fetch_add(1, Ordering::SeqCst);
            if self.sh.done(seq) {
                break;
            }
            let mut pick = self.rng.below(total);
            let kind = table
                .iter()
                .find(|&&(_, w)| {
                    let hit = pick < w;
                    pick = pick.saturating_sub(w);
                    hit
                })
                .map_or(Kind::Write, |&(k, _)| k);
            let mut r = self.op(kind, seq);
            let every = self.sh.cfg.verify_every;
            if r.is_ok() && every != 0 && (seq + 1).is_multiple_of(every) {
                r = self.sh.drop_caches().and_then(|()| {
                    self.sh
                        .verify_all(&format!("periodic verification after op #{seq}"))
                });
            }
            if r.is_ok() && self.sh.cfg.corrupt_after.is_some_and(|n| seq >= n) {
                r = self.corrupt(seq);
            }
            if let Err(f) = r {
                self.sh.fail(f);
                break;
            }
        }
    }

    fn op(&mut self, kind: Kind, seq: u64) -> Result<(), Fail> {
        match kind {
            Kind::Write => {
                let idx = self.pick_slot();
                let mut g = lock(&self.sh.slots[idx]);
                self.write(idx, &mut g, seq)
            }
            Kind::Fsync | Kind::Fdatasync => self.sync(kind),
            Kind::SyncRange => self.sync_range(),
            Kind::MmapWrite => self.mmap_write(seq),
            Kind::MmapRead => self.mmap_read(seq),
            Kind::Truncate => self.truncate(seq),
            Kind::Rename => self.rename(seq),
            Kind::Unlink => self.unlink(seq),
            Kind::Aio | Kind::Uring => self.batch(kind, seq),
            Kind::Read => self.read(seq),
            _ => unreachable!("not picked: {kind:?}"),
        }?;
        self.sh.stats.count(kind);
        Ok(())
    }

    /// Buffered pwrite; the model takes exactly the bytes written.
    fn write(&mut self, idx: usize, g: &mut Slot, seq: u64) -> Result<(), Fail> {
        let Some(file) = self.file_of(idx, g, seq)? else {
            return Ok(());
        };
        let len = self.write_len();
        let off = self.write_off(g.model.len() as u64, len);
        let gen = self.gen();
        let data = self.data(gen, off, len as usize);
        let (n, err) = sys::pwrite_all(&file, off, &data);
        model_write(&mut g.model, off, &data[..n]);
        self.sh.stats.add_written(n as u64);
        let mut e = self.entry(seq, Kind::Write, off, n as u64, gen, g.model.len() as u64);
        if n < data.len() {
            e.note = format!("short: {n} of {len}");
        }
        g.push_log(e);
        match err {
            Some(e) => self.check(idx, &format!("pwrite of {len} bytes at {off}"), e),
            None => Ok(()),
        }
    }

    /// fsync or fdatasync without the lock, racing the other threads.
    fn sync(&mut self, kind: Kind) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let Some(file) = lock(&self.sh.slots[idx]).file.clone() else {
            return Ok(());
        };
        let r = if kind == Kind::Fsync {
            file.sync_all()
        } else {
            file.sync_data()
        };
        r.or_else(|e| self.check(idx, kind.name(), e))
    }

    /// sync_file_range without the lock; half of the time of the hot
    /// blocks of file 0, so that several threads start writeback of the
    /// same folios at once.
    fn sync_range(&mut self) -> Result<(), Fail> {
        let (idx, shared) = if self.rng.chance(50) {
            (0, true)
        } else {
            (self.pick_slot(), false)
        };
        let (file, size) = {
            let g = lock(&self.sh.slots[idx]);
            (g.file.clone(), g.model.len() as u64)
        };
        let Some(file) = file else { return Ok(()) };
        let (off, len) = if shared {
            (0, HOT_BYTES)
        } else if self.rng.chance(20) {
            (0, 0) // to the end of the file
        } else {
            let off = self.rng.below(size + 1);
            (off, 1 + self.rng.below(256 << 10))
        };
        let flags = if self.rng.chance(80) {
            libc::SYNC_FILE_RANGE_WRITE
        } else {
            libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER
        };
        sys::sync_file_range(&file, off, len, flags)
            .or_else(|e| self.check(idx, &format!("sync_file_range({off}, {len}, {flags})"), e))
    }

    /// Stores through a shared mapping within the size, then msync.
    fn mmap_write(&mut self, seq: u64) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let mut g = lock(&self.sh.slots[idx]);
        let size = g.model.len() as u64;
        if size == 0 || g.file.is_none() {
            return self.write(idx, &mut g, seq);
        }
        let file = g.file.clone().expect("checked");
        let off = if self.rng.chance(40) {
            self.rng.below(size.min(HOT_BYTES))
        } else {
            self.rng.below(size)
        };
        let len = 1 + self.rng.below((size - off).min(64 << 10));
        let gen = self.gen();
        let data = self.data(gen, off, len as usize);
        let r = sys::mmap_write(&file, off, &data);
        // The stores are in the page cache whether msync worked or not.
        model_write(&mut g.model, off, &data);
        self.sh.stats.add_written(len);
        let e = self.entry(seq, Kind::MmapWrite, off, len, gen, size);
        g.push_log(e);
        r.or_else(|e| {
            self.check(
                idx,
                &format!("mmap write of {len} bytes at {off} + msync"),
                e,
            )
        })
    }

    /// Loads a range (or all) of a file through a mapping and compares.
    fn mmap_read(&mut self, seq: u64) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let g = lock(&self.sh.slots[idx]);
        let size = g.model.len() as u64;
        let Some(file) = g.file.clone() else {
            return Ok(());
        };
        if size == 0 {
            return Ok(());
        }
        let (off, len) = if self.rng.chance(30) {
            (0, size)
        } else {
            let off = self.rng.below(size);
            (off, 1 + self.rng.below((size - off).min(256 << 10)))
        };
        let got = sys::mmap_read(&file, off, len as usize)
            .map_err(|e| Fail::Error(format!("{}: mmap read: {e}", self.sh.path(idx).display())))?;
        self.sh.stats.add_verified(len);
        let name = self.sh.path(idx).display().to_string();
        let what = format!("mmap read op #{seq} by thread {}", self.tid);
        self.sh
            .compare(&name, &g.model, &g.log, &got, off, false, &what)
    }

    /// Reads a range through the open descriptor (sometimes past the end),
    /// or the whole file by name, and compares.
    fn read(&mut self, seq: u64) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let g = lock(&self.sh.slots[idx]);
        let what = format!("read op #{seq} by thread {}", self.tid);
        if self.rng.chance(30) {
            return self.sh.verify_slot(idx, &g, &what);
        }
        let Some(file) = g.file.clone() else {
            return Ok(());
        };
        let size = g.model.len() as u64;
        let off = self.rng.below(size + 4096);
        let len = 1 + self.rng.below(128 << 10);
        let got = sys::pread_upto(&file, off, len as usize).map_err(|e| {
            Fail::Error(format!(
                "{}: pread of {len} at {off}: {e}",
                self.sh.path(idx).display()
            ))
        })?;
        self.sh.stats.add_verified(got.len() as u64);
        let name = self.sh.path(idx).display().to_string();
        // Short only at the end of the file: compare as "to the end".
        let whole = (got.len() as u64) < len;
        self.sh
            .compare(&name, &g.model, &g.log, &got, off, whole, &what)
    }

    /// ftruncate down (anywhere below the size) or up (to --max-size).
    fn truncate(&mut self, seq: u64) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let mut g = lock(&self.sh.slots[idx]);
        let Some(file) = self.file_of(idx, &mut g, seq)? else {
            return Ok(());
        };
        let size = g.model.len() as u64;
        let max = self.sh.cfg.max_size;
        let new = if self.rng.chance(50) {
            self.rng.below(size + 1)
        } else if self.rng.chance(50) {
            (size + 1 + self.rng.below(HOT_BYTES)).min(max)
        } else {
            size + self.rng.below(max - size + 1)
        };
        match file.set_len(new) {
            Ok(()) => {
                g.model.resize(new as usize, 0);
                let mut e = self.entry(seq, Kind::Truncate, 0, 0, 0, new);
                e.note = format!("from {size}");
                g.push_log(e);
                Ok(())
            }
            Err(e) => self.check(idx, &format!("ftruncate to {new}"), e),
        }
    }

    /// rename(f<a>, f<b>) over an existing (or missing) f<b>, then f<a>
    /// re-created empty; under both locks, taken in index order.
    fn rename(&mut self, seq: u64) -> Result<(), Fail> {
        let n = self.sh.cfg.files as u64;
        let a = self.pick_slot();
        let b = (a + 1 + self.rng.below(n - 1) as usize) % n as usize;
        let (lo, hi) = (a.min(b), a.max(b));
        let mut g_lo = lock(&self.sh.slots[lo]);
        let mut g_hi = lock(&self.sh.slots[hi]);
        let (ga, gb) = if a == lo {
            (&mut *g_lo, &mut *g_hi)
        } else {
            (&mut *g_hi, &mut *g_lo)
        };
        if ga.file.is_none() {
            return self.file_of(a, ga, seq).map(|_| ());
        }
        let (pa, pb) = (self.sh.path(a), self.sh.path(b));
        std::fs::rename(&pa, &pb).map_err(|e| {
            Fail::Error(format!("rename {} -> {}: {e}", pa.display(), pb.display()))
        })?;
        let replaced = gb.model.len();
        gb.file = ga.file.take();
        gb.model = std::mem::take(&mut ga.model);
        gb.log = std::mem::take(&mut ga.log);
        let mut e = self.entry(seq, Kind::Rename, 0, 0, 0, gb.model.len() as u64);
        e.note = format!("f{a} renamed to f{b}, over a file of {replaced} bytes");
        gb.push_log(e);
        let mut e = self.entry(seq, Kind::Rename, 0, 0, 0, 0);
        e.note = format!("renamed away to f{b}; re-created empty");
        ga.push_log(e);
        if let Err(e) = self.sh.create(a).map(|f| ga.file = Some(Arc::new(f))) {
            self.check(a, "re-create after rename", e)?;
        }
        if self.rng.chance(25) {
            self.sh
                .dir
                .sync_all()
                .map_err(|e| Fail::Error(format!("fsync of the directory: {e}")))?;
        }
        Ok(())
    }

    /// unlink(f<a>) while this thread (and maybe others) has it open, then
    /// re-create it; the orphan is checked, and sometimes written and
    /// fsynced, after the lock is dropped.
    fn unlink(&mut self, seq: u64) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let mut g = lock(&self.sh.slots[idx]);
        let Some(old) = self.file_of(idx, &mut g, seq)? else {
            return Ok(());
        };
        let path = self.sh.path(idx);
        std::fs::remove_file(&path)
            .map_err(|e| Fail::Error(format!("unlink {}: {e}", path.display())))?;
        let old_model = std::mem::take(&mut g.model);
        let old_log = g.log.clone();
        g.file = None;
        let mut e = self.entry(seq, Kind::Unlink, 0, 0, 0, 0);
        e.note = format!("unlinked at {} bytes; re-created empty", old_model.len());
        g.push_log(e);
        if let Err(e) = self.sh.create(idx).map(|f| g.file = Some(Arc::new(f))) {
            self.check(idx, "re-create after unlink", e)?;
        }
        drop(g);

        let name = format!("{} (unlinked, open)", path.display());
        let got = sys::read_all(&old).map_err(|e| Fail::Error(format!("{name}: read: {e}")))?;
        self.sh.stats.add_verified(got.len() as u64);
        let what = format!(
            "read of the orphan after unlink op #{seq} by thread {}",
            self.tid
        );
        self.sh
            .compare(&name, &old_model, &old_log, &got, 0, true, &what)?;
        if self.rng.chance(50) {
            let len = self.write_len();
            let off = self.write_off(old_model.len() as u64, len);
            let gen = self.gen();
            let data = self.data(gen, off, len as usize);
            let (n, err) = sys::pwrite_all(&old, off, &data);
            self.sh.stats.add_written(n as u64);
            if let Some(e) = err {
                return self.check(idx, "pwrite to the orphan", e);
            }
            if let Err(e) = old.sync_all() {
                return self.check(idx, "fsync of the orphan", e);
            }
        }
        Ok(())
    }

    /// Up to 8 writes at once, disjoint (sometimes adjacent, sharing a
    /// block), by AIO or io_uring on a descriptor opened O_DSYNC.
    fn batch(&mut self, kind: Kind, seq: u64) -> Result<(), Fail> {
        let idx = self.pick_slot();
        let mut g = lock(&self.sh.slots[idx]);
        if self.file_of(idx, &mut g, seq)?.is_none() {
            return Ok(());
        }
        let max = self.sh.cfg.max_size;
        let size = g.model.len() as u64;
        let count = 1 + self.rng.below(BATCH_MAX as u64) as usize;
        let mut pos = self.write_off(size, 1);
        let (mut gens, mut reqs) = (Vec::new(), Vec::new());
        while reqs.len() < count {
            let gap = if self.rng.chance(50) {
                0
            } else {
                self.rng.below(8192)
            };
            let len = 1 + self.rng.below(BATCH_REQ_MAX);
            let off = pos + gap;
            if off + len > max {
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
        if reqs.is_empty() {
            return Ok(());
        }
        let path = self.sh.path(idx);
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DSYNC)
            .open(&path)
            .map_err(|e| Fail::Error(format!("{}: open O_DSYNC: {e}", path.display())))?;
        let res = self
            .submit(kind, file.as_raw_fd(), &reqs)
            .map_err(|e| Fail::Error(format!("{}: {e}", path.display())))?;
        let mut first_err = None;
        for ((gen, r), &rc) in gens.iter().zip(&reqs).zip(&res) {
            let len = r.data.len() as u64;
            let n = rc.clamp(0, len as i64) as usize;
            model_write(&mut g.model, r.off, &r.data[..n]);
            self.sh.stats.add_written(n as u64);
            let mut e = self.entry(seq, kind, r.off, n as u64, *gen, g.model.len() as u64);
            if rc < 0 {
                let err = io::Error::from_raw_os_error(-rc as i32);
                e.note = format!("failed: {err}");
                if first_err.is_none() {
                    first_err = Some((r.off, len, err));
                }
            } else if (rc as u64) < len {
                e.note = format!("short: {rc} of {len}");
            } else if rc as u64 > len {
                first_err.get_or_insert((
                    r.off,
                    len,
                    io::Error::other(format!("{rc} bytes written")),
                ));
            }
            g.push_log(e);
        }
        drop(file);
        match first_err {
            Some((off, len, e)) => self.check(
                idx,
                &format!("{} O_DSYNC write of {len} bytes at {off}", kind.name()),
                e,
            ),
            None => Ok(()),
        }
    }

    /// Submits a batch on this thread's AIO context or ring (set up at the
    /// first use) and waits for it.
    fn submit(&mut self, kind: Kind, fd: i32, reqs: &[Req]) -> Result<Vec<i64>, String> {
        let what =
            |e: io::Error| format!("{} submission of {} writes: {e}", kind.name(), reqs.len());
        if kind == Kind::Aio {
            if self.aio.is_none() {
                self.aio = sys::new_aio(BATCH_MAX)?;
            }
            let ctx = self.aio.as_ref().ok_or("io_setup: unavailable")?;
            sys::aio_batch(ctx, fd, reqs).map_err(what)
        } else {
            if self.ring.is_none() {
                self.ring = sys::new_ring(BATCH_MAX)?;
            }
            let ring = self.ring.as_mut().ok_or("io_uring_setup: unavailable")?;
            sys::uring_batch(ring, fd, reqs).map_err(what)
        }
    }

    /// RBFS_STRESS_TEST_CORRUPT_AFTER: flips a byte of a non-empty file
    /// through a separate descriptor, behind the model's back, and checks
    /// that file at once (which must fail).
    fn corrupt(&mut self, seq: u64) -> Result<(), Fail> {
        if self.sh.corrupt_pending.swap(false, Ordering::SeqCst) {
            for idx in 0..self.sh.slots.len() {
                let g = lock(&self.sh.slots[idx]);
                if g.model.is_empty() || g.file.is_none() {
                    continue;
                }
                let at = g.model.len() as u64 / 2;
                let path = self.sh.path(idx);
                let f = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(|e| Fail::Error(format!("{}: open: {e}", path.display())))?;
                let mut b = sys::pread_upto(&f, at, 1)
                    .map_err(|e| Fail::Error(format!("{}: pread: {e}", path.display())))?;
                b[0] ^= 0x5a;
                let (n, err) = sys::pwrite_all(&f, at, &b);
                if n != 1 {
                    return Err(Fail::Error(format!("{}: pwrite: {err:?}", path.display())));
                }
                drop(f);
                eprintln!(
                    "rbfs-stress: test hook: flipped byte {at} of {} after op #{seq}",
                    path.display()
                );
                return self.sh.verify_slot(
                    idx,
                    &g,
                    &format!("check right after the test hook's corruption (op #{seq})"),
                );
            }
            // Nothing to corrupt yet: try after the next operation.
            self.sh.corrupt_pending.store(true, Ordering::SeqCst);
        }
        Ok(())
    }
}

/// Creates the files and runs the workers. Err: the setup failed. Else
/// the state after the run (with the first failure, if any, and notes).
pub fn run(cfg: Config) -> Result<Arc<Shared>, String> {
    let mut notes = Vec::new();
    std::fs::create_dir_all(&cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
    let dir = File::open(&cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
    let aio_ok = !cfg.aio || sys::new_aio(BATCH_MAX)?.is_some();
    let uring_ok = !cfg.uring || sys::new_ring(BATCH_MAX)?.is_some();
    let mut slots = Vec::new();
    for i in 0..cfg.files {
        let p = cfg.dir.join(format!("f{i}"));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&p)
            .map_err(|e| format!("{}: create: {e}", p.display()))?;
        slots.push(Mutex::new(Slot {
            file: Some(Arc::new(f)),
            model: Vec::new(),
            log: VecDeque::new(),
        }));
    }
    dir.sync_all()
        .map_err(|e| format!("{}: fsync: {e}", cfg.dir.display()))?;
    sys::catch_sigbus().map_err(|e| format!("sigaction(SIGBUS): {e}"))?;
    if cfg.aio && !aio_ok {
        notes.push("AIO unavailable here (io_setup: ENOSYS/EPERM): AIO writes disabled".into());
    }
    if cfg.uring && !uring_ok {
        notes.push(
            "io_uring unavailable here (io_uring_setup: ENOSYS/EPERM): io_uring writes disabled"
                .into(),
        );
    }
    for n in &notes {
        eprintln!("rbfs-stress: note: {n}");
    }
    let corrupt = cfg.corrupt_after.is_some();
    let sh = Arc::new(Shared {
        drop_caches_ok: AtomicBool::new(cfg.drop_caches),
        cfg,
        slots,
        stats: Stats::default(),
        next_op: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        failure: Mutex::new(None),
        start: Instant::now(),
        aio_ok,
        uring_ok,
        corrupt_pending: AtomicBool::new(corrupt),
        dir,
        notes: Mutex::new(notes),
    });
    let table = op_table(&sh.cfg, sh.aio_ok, sh.uring_ok);
    std::thread::scope(|s| {
        for tid in 0..sh.cfg.threads {
            let sh = &*sh;
            let table = &table;
            s.spawn(move || {
                let mut w = Worker {
                    sh,
                    tid,
                    rng: Rng::new(sh.cfg.seed, tid as u64),
                    gens: 0,
                    aio: None,
                    ring: None,
                };
                w.run(table);
            });
        }
    });
    if !sh.failed() {
        let r = sh
            .drop_caches()
            .and_then(|()| sh.verify_all("final verification"));
        if let Err(f) = r {
            sh.fail(f);
        }
    }
    Ok(sh)
}
