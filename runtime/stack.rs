//! Green-thread stacks: `mmap`ed, with an inaccessible guard page below, pooled.
//!
//! ```text
//!   low addresses                                             high addresses
//!   +-------------+--------------------------------------------------------+
//!   | guard page  |  usable stack (grows down from `top`)                  |
//!   | PROT_NONE   |  PROT_READ | PROT_WRITE, touched pages only become RSS |
//!   +-------------+--------------------------------------------------------+
//!   base          base + page                                   top = base + len
//! ```
//!
//! An overflow runs into the guard page and faults; `debug::overflow` recognises the
//! address and reports the thread by name. Each stack costs two kernel mappings (the
//! `mprotect` splits one), so `vm.max_map_count` bounds how many can exist.
//!
//! The minimum size leaves room for what the timer interrupt pushes on a preempted
//! thread's stack, at its deepest: the 128-byte red zone the kernel skips, the
//! preemption stub's full `xsave` area and the scheduler's frames, and on top of those
//! a second tick's signal frame (whose size the kernel reports as `AT_MINSIGSTKSZ`:
//! ~3.4 KiB with AVX-512 state) and handler frames, landed while the scheduler ran with
//! the count raised — plus a few KiB for the thread's own entry path. Never more: the
//! handler does not redirect a thread that is still inside the stub (asm/x86_64/preempt.s),
//! so one preemption's frames never stack up on another's.
//!
//! A [`StackPool`] belongs to one CPU and is touched only with preemption disabled.

use crate::sys;
use std::io;

/// The stack size of a green thread unless its builder says otherwise: 64 KiB.
pub const DEFAULT_STACK_SIZE: usize = 64 << 10;

/// Bytes below `rsp` the ABI lets leaf functions use without moving `rsp`.
const RED_ZONE: usize = 128;
/// Frames of the signal handler itself (Rust code, no allocation).
const HANDLER_FRAMES: usize = 4 << 10;
/// The preemption stub's frame: its XSAVE reserve (the image is 2432 B with AVX-512
/// here) plus the general registers it pushes.
const STUB_SAVE_AREA: usize = crate::arch::STUB_XSAVE_RESERVE + 128;
/// The scheduler's frames when called from the stub or from a blocking call.
const SCHED_FRAMES: usize = 2 << 10;
/// Room for the thread's start record, entry path and a small body.
const ENTRY_FRAMES: usize = 4 << 10;

/// The smallest stack a green thread may have on this machine, in bytes.
///
/// Derived at run time from the kernel's signal frame size (`AT_MINSIGSTKSZ`), so a
/// machine with a larger vector state (AMX) gets a larger minimum.
pub fn min_stack_size() -> usize {
    let sig_frame = sys::min_signal_stack().max(libc::MINSIGSTKSZ);
    let preemption = STUB_SAVE_AREA + SCHED_FRAMES;
    let tick_on_top = sig_frame + HANDLER_FRAMES;
    round_to_pages(RED_ZONE + preemption + tick_on_top + ENTRY_FRAMES)
}

/// Rounds `n` up to a whole number of pages.
pub(crate) fn round_to_pages(n: usize) -> usize {
    let page = sys::page_size();
    n.div_ceil(page).saturating_mul(page)
}

/// A mapped stack with its guard page. Unmapped on drop.
pub(crate) struct Stack {
    /// Start of the mapping: the guard page.
    base: *mut u8,
    /// Length of the mapping, guard page included.
    len: usize,
    /// Its id with Valgrind, if the process runs under it (0 otherwise).
    valgrind_id: u64,
}

// SAFETY: a Stack is a uniquely owned memory range; moving ownership between threads
// is fine (it is only ever used by the thread that runs on it).
unsafe impl Send for Stack {}

impl Stack {
    /// Maps a stack with `size` usable bytes (a whole number of pages) and a guard page.
    pub(crate) fn new(size: usize) -> io::Result<Stack> {
        debug_assert_eq!(size % sys::page_size(), 0);
        let page = sys::page_size();
        let len = size + page;
        let base = sys::map_anonymous(len).map_err(|e| map_error(e, size, "mmap"))?;
        let mut stack = Stack {
            base,
            len,
            valgrind_id: 0,
        };
        // SAFETY: the first page of our own fresh mapping; nothing references it.
        unsafe { sys::protect_none(base, page) }.map_err(|e| map_error(e, size, "mprotect"))?;
        stack.valgrind_id =
            crate::arch::valgrind_stack_register(base as usize + page, stack.top() as usize);
        Ok(stack)
    }

    /// One past the highest usable byte (page aligned, so 16-byte aligned).
    pub(crate) fn top(&self) -> *mut u8 {
        self.base.wrapping_add(self.len)
    }

    /// Usable bytes.
    pub(crate) fn size(&self) -> usize {
        self.len - sys::page_size()
    }

    /// The guard page's address range.
    pub(crate) fn guard(&self) -> (usize, usize) {
        (self.base as usize, self.base as usize + sys::page_size())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        crate::arch::valgrind_stack_deregister(self.valgrind_id);
        // SAFETY: we own the mapping and nothing runs on it any more (a running thread's
        // stack is never dropped: the scheduler releases it after switching away).
        unsafe { sys::unmap(self.base, self.len) }
    }
}

/// Turns a mapping failure into an error that says what to do about it.
#[cold]
fn map_error(e: io::Error, size: usize, call: &str) -> io::Error {
    let limit = sys::max_map_count()
        .map(|n| n.to_string())
        .unwrap_or_else(|| "unknown".into());
    io::Error::new(
        e.kind(),
        format!(
            "failed to allocate a {} KiB green-thread stack ({call}: {e}); each guarded \
             stack takes two memory mappings and vm.max_map_count is {limit}, so about half \
             that many threads can exist at once: raise it with \
             `sysctl -w vm.max_map_count=<n>` or use fewer threads",
            size >> 10
        ),
    )
}

/// A CPU's cache of free stacks of the default size.
///
/// Spawning a thread takes a stack from here instead of two system calls; an exiting
/// thread's stack comes back here. The cache never grows its vector on the scheduler's
/// path: beyond `capacity` stacks are unmapped instead.
pub(crate) struct StackPool {
    size: usize,
    free: Vec<Stack>,
}

impl StackPool {
    /// How many free stacks a CPU keeps.
    const CAPACITY: usize = 256;

    pub(crate) fn new(size: usize) -> StackPool {
        StackPool {
            size,
            free: Vec::with_capacity(Self::CAPACITY),
        }
    }

    /// A stack of `size` usable bytes (already rounded to pages).
    pub(crate) fn get(&mut self, size: usize) -> io::Result<Stack> {
        if size == self.size
            && let Some(s) = self.free.pop()
        {
            return Ok(s);
        }
        Stack::new(size)
    }

    /// Returns a stack for reuse (or unmaps it).
    pub(crate) fn put(&mut self, stack: Stack) {
        if stack.size() == self.size && self.free.len() < self.free.capacity() {
            self.free.push(stack);
        }
    }
}
