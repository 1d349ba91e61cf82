// SPDX-License-Identifier: GPL-2.0

//! rbfs-corrupt as a library: damage an rbfs image in catalogued,
//! reproducible ways, for bad-image tests of fsck.rbfs and the kernel.
//!
//! * [`catalogue::catalogue`] lists every metadata field of an image this
//!   tool can damage (superblock fields, bitmap blocks, inode fields and
//!   block pointers, indirect block pointers, directory entry fields, and
//!   tree-level damage: loops, duplicate names, extra links), each with a
//!   stable id and what fsck is expected to make of it.
//! * [`apply`] applies one of them.  By default the checksum of every
//!   structure it changed is resealed, so the damage reaches the deeper
//!   validation; `keep_crc` leaves the old checksums, to test checksum
//!   detection.
//! * [`random::random`] flips random bits in the metadata.
//! * [`corpus`] lists the mutation commands of a test corpus.
//!
//! Everything is parsed and encoded with the shared format module
//! (`rbfs_format`), the code the kernel uses.

#![forbid(unsafe_code)]

pub mod catalogue;
pub mod cli;
pub mod edit;
pub mod random;
pub mod rng;

use rbfs_format::check::{Image, ImageRead};

pub use catalogue::{Expect, Mutation, Planned, Repair};
pub use edit::{commit, Device, Img, Plan, Seal};
pub use random::Flips;

/// Opens an image for the catalogue: the superblock must parse (free
/// counts and state may be off, as fsck tolerates).
pub fn open<'a>(dev: &'a (dyn ImageRead + 'a)) -> Result<Img<'a>, String> {
    Image::open_tolerant(dev).map_err(|e| format!("cannot read the image: {e}"))
}

/// The catalogue of the image on `dev`.
pub fn list(dev: &dyn ImageRead) -> Result<Vec<Mutation>, String> {
    let img = open(dev)?;
    catalogue::catalogue(&img)
}

/// What [`apply`] did.
#[derive(Debug)]
pub struct Applied {
    /// The mutation's id.
    pub id: String,
    /// Its description.
    pub what: String,
    /// What was (or, dry, would be) written and what fsck should say.
    pub planned: Planned,
}

/// Applies mutation `id` to the image on `dev` (nothing is written when
/// `dry`).
pub fn apply<D: Device>(
    dev: &mut D,
    id: &str,
    keep_crc: bool,
    seed: u64,
    dry: bool,
) -> Result<Applied, String> {
    let applied = {
        let img = open(&*dev)?;
        let m = catalogue::find(&img, id)?;
        let planned = m.plan(&img, keep_crc, seed)?;
        Applied {
            id: m.id.clone(),
            what: m.what.clone(),
            planned,
        }
    };
    if !dry {
        commit(dev, &applied.planned.plan).map_err(|e| format!("writing the image: {e}"))?;
    }
    Ok(applied)
}

/// Flips `count` random metadata bits of the image on `dev` (see
/// [`random::random`]); nothing is written when `dry`.
pub fn random_apply<D: Device>(
    dev: &mut D,
    seed: u64,
    count: u32,
    reseal: bool,
    dry: bool,
) -> Result<Flips, String> {
    let flips = {
        let img = open(&*dev)?;
        random::random(&img, seed, count, reseal)?
    };
    if !dry {
        commit(dev, &flips.plan).map_err(|e| format!("writing the image: {e}"))?;
    }
    Ok(flips)
}

/// One line of a corpus: a mutation to apply to a pristine image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorpusItem {
    /// `field ID [--keep-crc]`.
    Field {
        /// Catalogue id.
        id: String,
        /// Leave the old checksums.
        keep_crc: bool,
    },
    /// `random SEED [--count K] [--reseal]`.
    Random {
        /// Seed.
        seed: u64,
        /// Number of bits flipped.
        count: u32,
        /// Reseal the structures hit.
        reseal: bool,
    },
}

impl std::fmt::Display for CorpusItem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CorpusItem::Field { id, keep_crc } => {
                write!(f, "field {id}")?;
                if *keep_crc {
                    write!(f, " --keep-crc")?;
                }
                Ok(())
            }
            CorpusItem::Random {
                seed,
                count,
                reseal,
            } => {
                write!(f, "random {seed}")?;
                if *count != 1 {
                    write!(f, " --count {count}")?;
                }
                if *reseal {
                    write!(f, " --reseal")?;
                }
                Ok(())
            }
        }
    }
}

impl CorpusItem {
    /// Parses a corpus line (the words after `rbfs-corrupt do IMAGE`).
    pub fn parse(words: &[String]) -> Result<CorpusItem, String> {
        let (kind, rest) = words.split_first().ok_or("empty mutation")?;
        let arg = rest.first().ok_or(format!("{kind}: missing argument"))?;
        let mut flags = rest[1..].iter();
        match kind.as_str() {
            "field" => {
                let mut keep_crc = false;
                for f in flags {
                    match f.as_str() {
                        "--keep-crc" => keep_crc = true,
                        _ => return Err(format!("field: unknown option {f}")),
                    }
                }
                Ok(CorpusItem::Field {
                    id: arg.clone(),
                    keep_crc,
                })
            }
            "random" => {
                let seed = cli::number(arg)?;
                let (mut count, mut reseal) = (1, false);
                while let Some(f) = flags.next() {
                    match f.as_str() {
                        "--reseal" => reseal = true,
                        "--count" => {
                            let v = flags.next().ok_or("--count needs a value")?;
                            count = cli::number(v)? as u32;
                        }
                        _ => return Err(format!("random: unknown option {f}")),
                    }
                }
                Ok(CorpusItem::Random {
                    seed,
                    count,
                    reseal,
                })
            }
            _ => Err(format!("unknown mutation kind {kind} (field or random)")),
        }
    }

    /// What fsck should make of `img` after this item (a dry run);
    /// `cat` is the catalogue of `img`.
    pub fn expect(&self, img: &Img<'_>, cat: &[Mutation]) -> Result<(Expect, Repair), String> {
        match self {
            CorpusItem::Field { id, keep_crc } => {
                let m = cat
                    .iter()
                    .find(|m| &m.id == id)
                    .ok_or_else(|| format!("{id}: no such mutation"))?;
                let p = m.plan(img, *keep_crc, 0)?;
                Ok((p.expect, p.repair))
            }
            CorpusItem::Random {
                seed,
                count,
                reseal,
            } => {
                let f = random::random(img, *seed, *count, *reseal)?;
                Ok((f.expect, f.repair))
            }
        }
    }
}

/// The corpus of the image on `dev`: every catalogued mutation (or, with
/// `per_kind`, at most that many of each kind of damage, spread over the
/// catalogue: first, last and evenly between), the `--keep-crc` variants
/// of a sample of them (one or so per structure), and `random` items
/// (seeds derived from `seed`: raw and resealed flips, of one bit and of
/// three bits, in turn).
pub fn corpus(
    dev: &dyn ImageRead,
    seed: u64,
    randoms: u32,
    per_kind: Option<usize>,
) -> Result<Vec<CorpusItem>, String> {
    let mut cat = list(dev)?;
    if let Some(k) = per_kind {
        let mut kinds: std::collections::BTreeMap<String, Vec<usize>> = Default::default();
        for (i, m) in cat.iter().enumerate() {
            kinds.entry(catalogue::kind_of(&m.id)).or_default().push(i);
        }
        let mut keep = vec![false; cat.len()];
        for v in kinds.values() {
            let n = v.len();
            let picks = k.min(n);
            for j in 0..picks {
                let at = if picks == 1 { 0 } else { j * (n - 1) / (picks - 1) };
                keep[v[at]] = true;
            }
        }
        let mut it = keep.into_iter();
        cat.retain(|_| it.next().unwrap_or(false));
    }
    let mut out: Vec<CorpusItem> = cat
        .iter()
        .map(|m| CorpusItem::Field {
            id: m.id.clone(),
            keep_crc: false,
        })
        .collect();
    out.extend(
        cat.iter()
            .filter(|m| m.keep_crc_sample)
            .map(|m| CorpusItem::Field {
                id: m.id.clone(),
                keep_crc: true,
            }),
    );
    out.extend((0..randoms).map(|i| CorpusItem::Random {
        seed: seed.wrapping_mul(1_000_003).wrapping_add(u64::from(i)),
        count: if i % 4 >= 2 { 3 } else { 1 },
        reseal: i % 2 == 1,
    }));
    Ok(out)
}
