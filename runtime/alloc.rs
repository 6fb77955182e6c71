//! A global-allocator wrapper that holds preemption off inside the allocator (H1).
//!
//! An allocator keeps per-thread caches and locks. Preempting a green thread in the
//! middle of `malloc` and running another green thread of the same CPU — the same OS
//! thread, as far as the allocator can tell — that also allocates corrupts the cache or
//! deadlocks on the arena lock. Allocators in shared libraries (glibc's `malloc`) are
//! already safe: the timer interrupt never preempts outside the executable's own code.
//! An allocator linked *into* the executable (a Rust allocator, or a C allocator linked
//! statically) is not; wrap it:
//!
//! ```
//! use std::alloc::System;
//! #[global_allocator]
//! static GLOBAL: preempt::alloc::NoPreempt<System> = preempt::alloc::NoPreempt(System);
//! ```

use crate::preempt;
use std::alloc::{GlobalAlloc, Layout};

/// Wraps an allocator so that every call runs with preemption disabled.
///
/// Costs two thread-local read-modify-writes per call.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoPreempt<A>(pub A);

/// Re-enables preemption even if the inner allocator unwinds.
struct Enable;
impl Drop for Enable {
    fn drop(&mut self) {
        preempt::enable();
    }
}

// SAFETY: every method forwards to the inner allocator with the same arguments, so the
// wrapper upholds exactly the inner allocator's GlobalAlloc contract; disabling
// preemption does not allocate.
unsafe impl<A: GlobalAlloc> GlobalAlloc for NoPreempt<A> {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        preempt::disable_raw();
        let _e = Enable;
        // SAFETY: forwarded from our caller.
        unsafe { self.0.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        preempt::disable_raw();
        let _e = Enable;
        // SAFETY: forwarded from our caller.
        unsafe { self.0.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        preempt::disable_raw();
        let _e = Enable;
        // SAFETY: forwarded from our caller.
        unsafe { self.0.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        preempt::disable_raw();
        let _e = Enable;
        // SAFETY: forwarded from our caller.
        unsafe { self.0.realloc(ptr, layout, new_size) }
    }
}
