// SPDX-License-Identifier: GPL-2.0

//! The command line of `rbfs-corrupt`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::{apply, corpus, list, random_apply, CorpusItem, Expect, Plan, Repair};

/// Exit code: done.
pub const EXIT_OK: i32 = 0;
/// Exit code: the image could not be read or written, or the mutation
/// does not exist or does not apply to it.
pub const EXIT_FAIL: i32 = 1;
/// Exit code: usage error.
pub const EXIT_USAGE: i32 = 2;

/// The usage text.
pub const USAGE: &str = "\
Usage: rbfs-corrupt list IMAGE
       rbfs-corrupt apply IMAGE ID [--keep-crc] [--seed N] [--dry-run]
       rbfs-corrupt random IMAGE --seed N [--count K] [--reseal] [--dry-run]
       rbfs-corrupt corpus IMAGE [--seed N] [--random M] [--per-kind K] [--with-expect]
       rbfs-corrupt do IMAGE field ID [--keep-crc]
       rbfs-corrupt do IMAGE random SEED [--count K] [--reseal]

  list    print the catalogue of this image: one mutation per line,
          ID<TAB>EXPECT<TAB>REPAIR<TAB>DESCRIPTION, where EXPECT is what
          `fsck.rbfs -n` should report (detect: exit 4, fatal: exit 8,
          harmless: exit 0) and REPAIR what `fsck.rbfs -y` should do (fix:
          exit 1 then clean, nofix: errors left or refused, none: nothing
          to do, maybe: depends), both with the checksums resealed
  apply   apply mutation ID in place; the checksums of the structures it
          changes are resealed unless --keep-crc (then the old crc stays,
          which tests checksum detection); --seed feeds the *.scramble
          mutations
  random  flip K (default 1) random bits in the metadata (superblock,
          bitmaps, inode table, directory and indirect blocks); with
          --reseal the structures hit get valid checksums again
  corpus  print the mutations of a test corpus, one per line: `field ID`
          for every catalogue entry, `field ID --keep-crc` for a sample,
          and M (default 0) `random SEED [--count K] [--reseal]` lines with
          seeds derived from --seed (default 1); --per-kind K keeps at
          most K mutations of each kind of damage (the id with its numbers
          as *), spread over the image; --with-expect prefixes each line
          with EXPECT and REPAIR
  do      apply one corpus line to IMAGE

A guest script loops over `rbfs-corrupt corpus`: copy the pristine image
to the disk, `rbfs-corrupt do DISK LINE`, test, repeat.
Exit status: 0 done, 1 failed (image unreadable, unknown id, ...), 2 usage.";

/// Parses a decimal or 0x-prefixed number.
pub fn number(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("not a number: {s}"))
}

/// A failure and the exit code it calls for.
type Failure = (i32, String);

fn usage(msg: impl Into<String>) -> Failure {
    (EXIT_USAGE, msg.into())
}

fn fail(msg: impl Into<String>) -> Failure {
    (EXIT_FAIL, msg.into())
}

/// Options and positional arguments of one subcommand.
struct Args {
    pos: Vec<String>,
    keep_crc: bool,
    reseal: bool,
    dry: bool,
    with_expect: bool,
    seed: Option<u64>,
    count: Option<u32>,
    random: Option<u32>,
    per_kind: Option<usize>,
}

fn parse(words: &[String], allowed: &[&str]) -> Result<Args, Failure> {
    let mut a = Args {
        pos: Vec::new(),
        keep_crc: false,
        reseal: false,
        dry: false,
        with_expect: false,
        seed: None,
        count: None,
        random: None,
        per_kind: None,
    };
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if !w.starts_with("--") {
            a.pos.push(w.clone());
            continue;
        }
        if !allowed.contains(&w.as_str()) {
            return Err(usage(format!("unknown option {w}")));
        }
        let mut value = || -> Result<u64, Failure> {
            let v = it
                .next()
                .ok_or_else(|| usage(format!("{w} needs a value")))?;
            number(v).map_err(usage)
        };
        match w.as_str() {
            "--keep-crc" => a.keep_crc = true,
            "--reseal" => a.reseal = true,
            "--dry-run" => a.dry = true,
            "--with-expect" => a.with_expect = true,
            "--seed" => a.seed = Some(value()?),
            "--count" => a.count = Some(value()? as u32),
            "--random" => a.random = Some(value()? as u32),
            "--per-kind" => a.per_kind = Some(value()? as usize),
            _ => unreachable!("allowed options are handled"),
        }
    }
    Ok(a)
}

fn open(path: &str, write: bool) -> Result<File, Failure> {
    OpenOptions::new()
        .read(true)
        .write(write)
        .open(Path::new(path))
        .map_err(|e| fail(format!("{path}: {e}")))
}

fn expect_line(expect: Expect, repair: Repair) -> String {
    format!(
        "expect: fsck -n {}, fsck -y {}",
        expect.as_str(),
        repair.as_str()
    )
}

fn print_plan(out: &mut dyn Write, plan: &Plan, dry: bool) -> std::io::Result<()> {
    for c in &plan.changes {
        writeln!(out, "  {c}")?;
    }
    writeln!(out, "  {}", plan.crc_summary())?;
    if dry {
        writeln!(out, "  (dry run: nothing written)")?;
    }
    Ok(())
}

fn one(words: &[String], out: &mut dyn Write) -> Result<(), Failure> {
    let io = |e: std::io::Error| fail(format!("writing output: {e}"));
    let (cmd, rest) = words.split_first().ok_or_else(|| usage("no command"))?;
    match cmd.as_str() {
        "list" => {
            let a = parse(rest, &[])?;
            let [image] = a.pos.as_slice() else {
                return Err(usage("list takes one IMAGE"));
            };
            let f = open(image, false)?;
            for m in list(&f).map_err(fail)? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}",
                    m.id,
                    m.expect.as_str(),
                    m.repair.as_str(),
                    m.what
                )
                .map_err(io)?;
            }
        }
        "apply" => {
            let a = parse(rest, &["--keep-crc", "--seed", "--dry-run"])?;
            let [image, id] = a.pos.as_slice() else {
                return Err(usage("apply takes IMAGE and ID"));
            };
            let mut f = open(image, !a.dry)?;
            let r = apply(&mut f, id, a.keep_crc, a.seed.unwrap_or(0), a.dry).map_err(fail)?;
            let crc = if a.keep_crc { " (--keep-crc)" } else { "" };
            writeln!(out, "{}{crc}: {}", r.id, r.what).map_err(io)?;
            print_plan(out, &r.planned.plan, a.dry).map_err(io)?;
            writeln!(out, "  {}", expect_line(r.planned.expect, r.planned.repair)).map_err(io)?;
        }
        "random" => {
            let a = parse(rest, &["--seed", "--count", "--reseal", "--dry-run"])?;
            let [image] = a.pos.as_slice() else {
                return Err(usage("random takes one IMAGE"));
            };
            let seed = a.seed.ok_or_else(|| usage("random needs --seed N"))?;
            let count = a.count.unwrap_or(1);
            if count == 0 {
                return Err(usage("--count must be at least 1"));
            }
            let mut f = open(image, !a.dry)?;
            let r = random_apply(&mut f, seed, count, a.reseal, a.dry).map_err(fail)?;
            let how = if a.reseal { ", resealed" } else { "" };
            writeln!(out, "random seed {seed}: {count} bit flip(s){how}").map_err(io)?;
            print_plan(out, &r.plan, a.dry).map_err(io)?;
            writeln!(out, "  {}", expect_line(r.expect, r.repair)).map_err(io)?;
        }
        "corpus" => {
            let a = parse(rest, &["--seed", "--random", "--per-kind", "--with-expect"])?;
            let [image] = a.pos.as_slice() else {
                return Err(usage(
                    "corpus takes one IMAGE and prints the list (it writes no files)",
                ));
            };
            let f = open(image, false)?;
            let items = corpus(
                &f,
                a.seed.unwrap_or(1),
                a.random.unwrap_or(0),
                a.per_kind,
            )
            .map_err(fail)?;
            let img = crate::open(&f).map_err(fail)?;
            let cat = if a.with_expect {
                crate::catalogue::catalogue(&img).map_err(fail)?
            } else {
                Vec::new()
            };
            for item in items {
                if a.with_expect {
                    let (e, r) = item.expect(&img, &cat).map_err(fail)?;
                    write!(out, "{} {} ", e.as_str(), r.as_str()).map_err(io)?;
                }
                writeln!(out, "{item}").map_err(io)?;
            }
        }
        "do" => {
            let (image, line) = rest
                .split_first()
                .ok_or_else(|| usage("do takes IMAGE and a corpus line"))?;
            let item = CorpusItem::parse(line).map_err(usage)?;
            let words: Vec<String> = match &item {
                CorpusItem::Field { id, keep_crc } => {
                    let mut w = vec!["apply".into(), image.clone(), id.clone()];
                    if *keep_crc {
                        w.push("--keep-crc".into());
                    }
                    w
                }
                CorpusItem::Random {
                    seed,
                    count,
                    reseal,
                } => {
                    let mut w = vec![
                        "random".into(),
                        image.clone(),
                        "--seed".into(),
                        seed.to_string(),
                        "--count".into(),
                        count.to_string(),
                    ];
                    if *reseal {
                        w.push("--reseal".into());
                    }
                    w
                }
            };
            return one(&words, out);
        }
        "-h" | "--help" | "help" => {
            writeln!(out, "{USAGE}").map_err(io)?;
        }
        _ => return Err(usage(format!("unknown command {cmd}"))),
    }
    Ok(())
}

/// Runs the command line `args` (without the program name), printing
/// results on `out` and errors on `err`; returns the exit code.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match one(args, out) {
        Ok(()) => EXIT_OK,
        Err((code, msg)) => {
            let _ = writeln!(err, "rbfs-corrupt: {msg}");
            if code == EXIT_USAGE {
                let _ = writeln!(err, "{USAGE}");
            }
            code
        }
    }
}
