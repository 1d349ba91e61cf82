// SPDX-License-Identifier: GPL-2.0

//! The rbfs on-disk format for userspace.
//!
//! The format itself lives in `samples/rust/rbfs/format.rs`, the file the
//! kernel module compiles, and is included here unchanged so that tools and
//! kernel can never disagree about a byte.  With the `std` feature the crate
//! also offers [`check`], a read-only image walker for tests and fsck.

#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![forbid(unsafe_code)]

#[path = "../../../samples/rust/rbfs/format.rs"]
pub mod format;

pub use format::*;

#[cfg(feature = "std")]
pub mod check;
