// SPDX-License-Identifier: GPL-2.0

//! Directory entries.
//!
//! C header: [`include/linux/dcache.h`](srctree/include/linux/dcache.h).

use crate::bindings;
use crate::types::Opaque;

/// A `struct dentry`, borrowed from the VFS for the length of a callback.
#[repr(transparent)]
pub struct Dentry(Opaque<bindings::dentry>);

impl Dentry {
    /// # Safety
    ///
    /// `d` is a valid dentry that stays valid for `'a`.
    pub(crate) unsafe fn from_raw<'a>(d: *mut bindings::dentry) -> &'a Self {
        // SAFETY: Transparent wrapper; validity per the safety requirements.
        unsafe { &*d.cast() }
    }

    pub(crate) fn as_raw(&self) -> *mut bindings::dentry {
        self.0.get()
    }

    /// The entry's name.
    pub fn name(&self) -> &[u8] {
        // SAFETY: While the VFS calls us with this dentry (e.g. `lookup`
        // with the parent's `i_rwsem` held) its name is stable; `len` bytes
        // at `name` are valid.
        unsafe {
            let q = &(*self.as_raw()).d_name;
            core::slice::from_raw_parts(q.name, q.__bindgen_anon_1.__bindgen_anon_1.len as usize)
        }
    }
}
