//! Buffers for `O_DIRECT` reads of the raw device, shared by the checkers.

/// A buffer aligned for O_DIRECT.
pub struct Aligned {
    ptr: *mut u8,
    len: usize,
}

impl Aligned {
    pub fn new(len: usize) -> Result<Self, String> {
        let mut p: *mut libc::c_void = std::ptr::null_mut();
        // SAFETY: posix_memalign writes a pointer to `len` bytes aligned to
        // 4096 into `p`, or fails.
        if unsafe { libc::posix_memalign(&mut p, 4096, len) } != 0 {
            return Err("posix_memalign failed".into());
        }
        Ok(Aligned { ptr: p.cast(), len })
    }
    pub fn slice(&mut self) -> &mut [u8] {
        // SAFETY: `ptr` owns `len` bytes, uniquely borrowed here.
        unsafe { std::slice::from_raw_parts_mut(self.ptr, self.len) }
    }
}

impl Drop for Aligned {
    fn drop(&mut self) {
        // SAFETY: allocated by posix_memalign.
        unsafe { libc::free(self.ptr.cast()) }
    }
}
