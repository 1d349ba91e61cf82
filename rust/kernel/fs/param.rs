// SPDX-License-Identifier: GPL-2.0

//! Mount options, parsed with the `fs_context` parameter API.
//!
//! C header: [`include/linux/fs_parser.h`](srctree/include/linux/fs_parser.h).
//!
//! A filesystem describes its options with a `static` array of [`Spec`]
//! ending in [`Spec::END`]; the VFS's `__fs_parse` matches each option
//! against it (unknown options fail the mount with `EINVAL` and a message in
//! the context's log) and the filesystem gets the option's number and
//! [`Value`].
//!
//! # Examples
//!
//! ```
//! use kernel::fs::param::{Constant, Spec};
//!
//! static ERRORS: [Constant; 3] = [
//!     Constant::new(kernel::c_str!("continue"), 0),
//!     Constant::new(kernel::c_str!("remount-ro"), 1),
//!     Constant::END,
//! ];
//! static PARAMS: [Spec; 3] = [
//!     Spec::enumerated(kernel::c_str!("errors"), 0, &ERRORS),
//!     Spec::flag(kernel::c_str!("verbose"), 1),
//!     Spec::END,
//! ];
//! assert_eq!(Spec::count(&PARAMS), 2);
//! assert_eq!(Constant::count(&ERRORS), 2);
//! ```

use crate::bindings;
use crate::str::CStr;

/// One accepted option: a `struct fs_parameter_spec`.
#[repr(transparent)]
pub struct Spec(bindings::fs_parameter_spec);

// SAFETY: A `Spec` is immutable and only holds pointers to `'static`,
// immutable data (the name and the constant table).
unsafe impl Sync for Spec {}

impl Spec {
    /// The terminator every table ends with.
    pub const END: Spec = Spec(bindings::fs_parameter_spec {
        name: core::ptr::null(),
        type_: None,
        opt: 0,
        flags: 0,
        data: core::ptr::null(),
    });

    const fn new(
        name: &'static CStr,
        opt: u8,
        type_: bindings::fs_param_type,
        data: *const core::ffi::c_void,
    ) -> Self {
        Spec(bindings::fs_parameter_spec {
            name: name.as_char_ptr(),
            type_,
            opt,
            flags: 0,
            data,
        })
    }

    /// `name` alone, without a value (`fsparam_flag`).
    pub const fn flag(name: &'static CStr, opt: u8) -> Self {
        Spec(bindings::fs_parameter_spec {
            name: name.as_char_ptr(),
            type_: None,
            opt,
            flags: 0,
            data: core::ptr::null(),
        })
    }

    /// `name=N` with `N` an unsigned 32-bit number (`fsparam_u32`).
    pub const fn u32(name: &'static CStr, opt: u8) -> Self {
        Self::new(
            name,
            opt,
            Some(bindings::fs_param_is_u32),
            core::ptr::null(),
        )
    }

    /// `name=WORD` with `WORD` one of `table`'s names (`fsparam_enum`).
    pub const fn enumerated(name: &'static CStr, opt: u8, table: &'static [Constant]) -> Self {
        Constant::check(table);
        Self::new(
            name,
            opt,
            Some(bindings::fs_param_is_enum),
            table.as_ptr().cast(),
        )
    }

    /// The number of options in `table`, which must end with [`Spec::END`]
    /// (a `const` evaluation of this fails the build otherwise).
    pub const fn count(table: &[Spec]) -> usize {
        let mut i = 0;
        while i < table.len() {
            if table[i].0.name.is_null() {
                assert!(
                    i + 1 == table.len(),
                    "Spec::END must be the last entry only"
                );
                return i;
            }
            i += 1;
        }
        panic!("a parameter table must end with Spec::END");
    }

    /// `table` as the C array the VFS expects.
    pub(crate) const fn as_table(table: &'static [Spec]) -> *const bindings::fs_parameter_spec {
        Self::count(table);
        table.as_ptr().cast()
    }
}

/// One name of an enumerated option: a `struct constant_table` entry.
#[repr(transparent)]
pub struct Constant(bindings::constant_table);

// SAFETY: Immutable, and the name is `'static`.
unsafe impl Sync for Constant {}

impl Constant {
    /// The terminator every constant table ends with.
    pub const END: Constant = Constant(bindings::constant_table {
        name: core::ptr::null(),
        value: 0,
    });

    /// `name` stands for `value`.
    pub const fn new(name: &'static CStr, value: i32) -> Self {
        Constant(bindings::constant_table {
            name: name.as_char_ptr(),
            value,
        })
    }

    /// The number of names in `table`, which must end with [`Constant::END`].
    pub const fn count(table: &[Constant]) -> usize {
        let mut i = 0;
        while i < table.len() {
            if table[i].0.name.is_null() {
                assert!(
                    i + 1 == table.len(),
                    "Constant::END must be the last entry only"
                );
                return i;
            }
            i += 1;
        }
        panic!("a constant table must end with Constant::END");
    }

    const fn check(table: &[Constant]) {
        Self::count(table);
    }
}

/// The value of a parsed option.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Value {
    /// `noNAME` was given (for flags declared negatable).
    pub negated: bool,
    /// The number of a `u32` option, or the value of an enumerated one.
    pub uint: u32,
}

impl Value {
    pub(crate) fn from_raw(r: &bindings::fs_parse_result) -> Self {
        // SAFETY: All members of the union are plain integers of at most 64
        // bits; `uint_32` is what `fs_param_is_u32` and `fs_param_is_enum`
        // write, and reading it for a flag yields the zero it was set to.
        let uint = unsafe { r.__bindgen_anon_1.uint_32 };
        Value {
            negated: r.negated,
            uint,
        }
    }
}
