// SPDX-License-Identifier: GPL-2.0

//! mkfs.rbfs: create an rbfs filesystem on a block device or image file.
//!
//! Usage: `mkfs.rbfs [-b blocksize] [-N inodes] [-L label] [-U uuid] [-f] [-q]
//! [-d DIR] DEVICE_OR_IMAGE [blocks-count]`.  Exits 0 on success and 1 on
//! any error, printing `mkfs.rbfs: ` prefixed messages on stderr.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::PathBuf;
use std::process::ExitCode;

use rbfs_mkfs::{
    block_log, detect_signature, format_uuid, make_fs, parse_uuid, random_uuid, MkfsError,
    MkfsOptions, DEFAULT_BLOCK_SIZE,
};

const USAGE: &str = "Usage: mkfs.rbfs [-b blocksize] [-N inodes] [-L label] [-U uuid] [-f] [-q] [-d DIR] DEVICE_OR_IMAGE [blocks-count]

  -b blocksize   512, 1024 (default), 2048 or 4096 bytes (a k suffix is accepted)
  -N inodes      number of inodes (default: one per 8 KiB, at least 16)
  -L label       volume label, at most 32 bytes
  -U uuid        filesystem UUID as 8-4-4-4-12 hex, or 'random' (default)
  -f             overwrite an existing filesystem or swap signature
  -q             quiet: print nothing on success
  -d DIR         copy the contents of host directory DIR into the filesystem
  blocks-count   size in blocks, or in bytes with a K, M, G or T suffix;
                 default: the whole device or image file";

/// Parsed command line.
struct Args {
    block_size: u32,
    inodes: Option<u64>,
    label: Vec<u8>,
    uuid: Option<String>,
    force: bool,
    quiet: bool,
    populate: Option<PathBuf>,
    device: PathBuf,
    size: Option<String>,
}

fn invalid(msg: impl Into<String>) -> MkfsError {
    MkfsError::Invalid(msg.into())
}

/// Parses a number with an optional binary suffix (k, m, g, t).
fn parse_size(s: &str, what: &str) -> Result<(u64, bool), MkfsError> {
    let bad = || invalid(format!("invalid {what} '{s}'"));
    let (digits, mult) = match s.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let shift = match c.to_ascii_lowercase() {
                'k' => 10,
                'm' => 20,
                'g' => 30,
                't' => 40,
                _ => return Err(bad()),
            };
            (&s[..i], Some(1u64 << shift))
        }
        _ => (s, None),
    };
    let n: u64 = digits.parse().map_err(|_| bad())?;
    match mult {
        Some(m) => Ok((n.checked_mul(m).ok_or_else(bad)?, true)),
        None => Ok((n, false)),
    }
}

fn parse_args(argv: Vec<OsString>) -> Result<Option<Args>, MkfsError> {
    let mut args = Args {
        block_size: DEFAULT_BLOCK_SIZE,
        inodes: None,
        label: Vec::new(),
        uuid: None,
        force: false,
        quiet: false,
        populate: None,
        device: PathBuf::new(),
        size: None,
    };
    let mut positional: Vec<OsString> = Vec::new();
    let mut it = argv.into_iter();
    let mut only_positional = false;
    while let Some(arg) = it.next() {
        let bytes = arg.as_bytes();
        if only_positional || bytes.len() < 2 || bytes[0] != b'-' {
            positional.push(arg);
            continue;
        }
        if bytes == b"--" {
            only_positional = true;
            continue;
        }
        if bytes == b"-h" || bytes == b"--help" {
            println!("{USAGE}");
            return Ok(None);
        }
        // Bundled flags (-fq) and attached values (-b4096) as getopt does.
        let mut i = 1;
        while i < bytes.len() {
            let opt = bytes[i] as char;
            i += 1;
            match opt {
                'f' => args.force = true,
                'q' => args.quiet = true,
                'b' | 'N' | 'L' | 'U' | 'd' => {
                    let value: OsString = if i < bytes.len() {
                        OsString::from(std::ffi::OsStr::from_bytes(&bytes[i..]))
                    } else {
                        it.next().ok_or_else(|| {
                            invalid(format!("option -{opt} needs a value\n{USAGE}"))
                        })?
                    };
                    i = bytes.len();
                    set_value(&mut args, opt, value)?;
                }
                _ => return Err(invalid(format!("unknown option -{opt}\n{USAGE}"))),
            }
        }
    }
    let mut pos = positional.into_iter();
    args.device = pos
        .next()
        .ok_or_else(|| invalid(format!("no device or image given\n{USAGE}")))?
        .into();
    args.size = pos.next().map(|s| s.to_string_lossy().into_owned());
    if pos.next().is_some() {
        return Err(invalid(format!("too many arguments\n{USAGE}")));
    }
    Ok(Some(args))
}

fn set_value(args: &mut Args, opt: char, value: OsString) -> Result<(), MkfsError> {
    let text = value.to_string_lossy().into_owned();
    match opt {
        'b' => {
            let (n, _) = parse_size(&text, "block size")?;
            let n = u32::try_from(n).map_err(|_| invalid(format!("invalid block size {text}")))?;
            block_log(n)?;
            args.block_size = n;
        }
        'N' => args.inodes = Some(parse_size(&text, "inode count")?.0),
        'L' => args.label = value.as_bytes().to_vec(),
        'U' => args.uuid = Some(text),
        _ => args.populate = Some(PathBuf::from(value)),
    }
    Ok(())
}

/// Opens the target, creating an image file when a size is given.
fn open_device(args: &Args) -> Result<(File, bool), MkfsError> {
    let path = &args.device;
    let exists = path.exists();
    if !exists && args.size.is_none() {
        return Err(invalid(format!(
            "{}: no such file or device (give a blocks-count to create an image)",
            path.display()
        )));
    }
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(!exists)
        .truncate(false)
        .open(path)
        .map_err(|e| MkfsError::Io(format!("cannot open {}", path.display()), e))?;
    let meta = file
        .metadata()
        .map_err(|e| MkfsError::Io(path.display().to_string(), e))?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_block_device() {
        return Err(invalid(format!(
            "{}: not a block device or regular file",
            path.display()
        )));
    }
    Ok((file, ft.is_file()))
}

fn run(args: Args) -> Result<(), MkfsError> {
    let bs = args.block_size;
    let (mut file, is_file) = open_device(&args)?;
    let dev_bytes = file
        .seek(SeekFrom::End(0))
        .map_err(|e| MkfsError::Io(format!("cannot size {}", args.device.display()), e))?;
    let blocks = match &args.size {
        Some(s) => match parse_size(s, "blocks-count")? {
            (bytes, true) => bytes / u64::from(bs),
            (blocks, false) => blocks,
        },
        None => dev_bytes / u64::from(bs),
    };
    let fs_bytes = blocks
        .checked_mul(u64::from(bs))
        .ok_or_else(|| invalid("blocks-count too large"))?;
    if fs_bytes > dev_bytes && !is_file {
        return Err(invalid(format!(
            "{}: filesystem of {blocks} blocks ({fs_bytes} bytes) is larger than the device ({dev_bytes} bytes)",
            args.device.display()
        )));
    }
    if !args.force {
        if let Some(what) = detect_signature(&mut file)
            .map_err(|e| MkfsError::Io(format!("cannot read {}", args.device.display()), e))?
        {
            return Err(invalid(format!(
                "{} contains {what}; use -f to overwrite it",
                args.device.display()
            )));
        }
    }
    let uuid = match args.uuid.as_deref() {
        None | Some("random") => {
            random_uuid().map_err(|e| MkfsError::Io("reading /dev/urandom".into(), e))?
        }
        Some(s) => parse_uuid(s)?,
    };
    let meta = file
        .metadata()
        .map_err(|e| MkfsError::Io(args.device.display().to_string(), e))?;
    let mut opts = MkfsOptions::new(bs, blocks);
    opts.inodes = args.inodes;
    opts.label = args.label.clone();
    opts.uuid = uuid;
    opts.populate = args.populate.clone();
    opts.skip = Some((meta.dev(), meta.ino()));
    // Reject bad geometry before touching the device.
    let layout = rbfs_mkfs::plan_layout(bs, blocks, args.inodes)?;
    rbfs_mkfs::make_label(&args.label)?;
    if is_file && dev_bytes < fs_bytes {
        file.set_len(fs_bytes)
            .map_err(|e| MkfsError::Io(format!("cannot extend {}", args.device.display()), e))?;
    }
    let summary = make_fs(&opts, &mut file)?;
    file.sync_all()
        .map_err(|e| MkfsError::Io(format!("cannot sync {}", args.device.display()), e))?;
    for w in &summary.warnings {
        eprintln!("mkfs.rbfs: warning: {w}");
    }
    if !args.quiet {
        print_summary(&args, &opts, &summary, &layout);
    }
    Ok(())
}

fn print_summary(
    args: &Args,
    opts: &MkfsOptions,
    s: &rbfs_mkfs::MkfsSummary,
    l: &rbfs_format::Layout,
) {
    println!(
        "Creating rbfs filesystem with {} {}-byte blocks and {} inodes on {}",
        l.blocks_count,
        l.block_size(),
        l.inodes_count,
        args.device.display()
    );
    println!("Filesystem UUID: {}", format_uuid(&opts.uuid));
    if !opts.label.is_empty() {
        println!("Filesystem label: {}", String::from_utf8_lossy(&opts.label));
    }
    println!(
        "Regions (start+blocks): block bitmap {}+{}, inode bitmap {}+{}, inode table {}+{}, data {}+{}",
        l.bbitmap_start, l.bbitmap_blocks, l.ibitmap_start, l.ibitmap_blocks, l.itable_start, l.itable_blocks, l.data_start, l.data_blocks
    );
    if let Some(dir) = &opts.populate {
        println!(
            "Copied from {}: {} files, {} directories, {} symlinks, {} special files, {} hard links",
            dir.display(),
            s.files,
            s.dirs,
            s.symlinks,
            s.specials,
            s.hard_links
        );
    }
    println!(
        "In use: {} of {} blocks, {} of {} inodes",
        s.used_blocks, l.blocks_count, s.used_inodes, l.inodes_count
    );
}

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().skip(1).collect();
    let result = parse_args(argv).and_then(|args| match args {
        Some(a) => run(a),
        None => Ok(()),
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mkfs.rbfs: {e}");
            ExitCode::from(1)
        }
    }
}
