//! Stack overflow: recognise a fault in a green thread's guard page and say so.
//!
//! A green thread that overflows runs into the `PROT_NONE` page below its stack (large
//! frames too: rustc emits stack probes that touch every page on the way down). The
//! `SIGSEGV` handler below runs on the carrier's alternate signal stack — the thread's own
//! stack is exhausted — and, if the fault address lies in the running green thread's
//! guard page, writes
//!
//! ```text
//! thread '<name>' overflowed its stack (<N> KiB) at fault address 0x...
//! fatal runtime error: stack overflow, aborting
//! ```
//!
//! with `write(2)` alone and aborts. Any other fault is passed on to the handler that was
//! installed before ours (std's own overflow detector for OS threads, a debugger's, or
//! the default action), exactly as if we were not there.
//!
//! Everything reachable from the handler is ASYNC-SIGNAL-SAFE: no allocation, no lock,
//! no formatting machinery; the TLS it reads is `const`-initialised and `Drop`-free.

use super::fmt_u64;
use crate::{sched, sys};
use std::mem::MaybeUninit;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// The `SIGSEGV` disposition that was in place before ours, written once before our
/// handler is installed and only read afterwards.
struct Previous(std::cell::UnsafeCell<MaybeUninit<libc::sigaction>>);
// SAFETY: written once inside `Once::call_once` before the handler that reads it is
// installed (the sigaction call orders it), and never written again.
unsafe impl Sync for Previous {}
static PREVIOUS: Previous = Previous(std::cell::UnsafeCell::new(MaybeUninit::uninit()));
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the handler, once per process.
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: plain-data structs initialised by zeroing, then filled in; the old
        // disposition is stored before the new one can run.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = handler as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            let prev = (*PREVIOUS.0.get()).as_mut_ptr();
            if libc::sigaction(libc::SIGSEGV, &action, prev) == 0 {
                INSTALLED.store(true, Ordering::Release);
            }
        }
    });
}

/// ASYNC-SIGNAL-SAFE.
extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some(t) = sched::current_task() {
        // SAFETY: the running task is alive; its name and guard are immutable.
        let t = unsafe { &*t };
        if addr >= t.guard.0 && addr < t.guard.1 {
            report(t.display_name(), t.stack_size, addr);
            sys::abort();
        }
    }
    chain(sig, info, ctx);
}

fn report(name: &str, stack_size: usize, addr: usize) {
    let mut kib = [0u8; 20];
    let mut hex = [0u8; 16];
    sys::write_stderr(b"\nthread '");
    sys::write_stderr(name.as_bytes());
    sys::write_stderr(b"' overflowed its stack (");
    sys::write_stderr(fmt_u64(&mut kib, (stack_size >> 10) as u64, 10));
    sys::write_stderr(b" KiB) at fault address 0x");
    sys::write_stderr(fmt_u64(&mut hex, addr as u64, 16));
    sys::write_stderr(b"\nfatal runtime error: stack overflow, aborting\n");
}

/// Hands the fault to the previous disposition.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    if !INSTALLED.load(Ordering::Acquire) {
        return;
    }
    // SAFETY: PREVIOUS was written before INSTALLED was set (module invariant).
    let prev = unsafe { (*PREVIOUS.0.get()).assume_init_ref() };
    let h = prev.sa_sigaction;
    if h == libc::SIG_DFL || h == libc::SIG_IGN {
        // Restore the default and return: the faulting instruction runs again and the
        // kernel delivers the default action (core dump), as if we had never been here.
        // SAFETY: plain-data struct; sigaction with a valid new action.
        unsafe {
            let mut dfl: libc::sigaction = std::mem::zeroed();
            dfl.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGSEGV, &dfl, std::ptr::null_mut());
        }
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed as an SA_SIGINFO handler.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(h) };
        f(sig, info, ctx);
    } else {
        // SAFETY: the previous handler was installed as a plain handler.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
        f(sig);
    }
}

/// The carrier's alternate signal stack, made if the thread has none (std gives its own
/// threads one when its overflow handler is installed). Removed on drop if ours.
pub(crate) struct AltStack {
    mine: Option<(*mut u8, usize)>,
}

impl AltStack {
    const SIZE: usize = 64 << 10;

    pub(crate) fn ensure() -> AltStack {
        // SAFETY: querying the current alternate stack into a zeroed struct.
        let mut cur: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::sigaltstack(std::ptr::null(), &mut cur) };
        if cur.ss_flags & libc::SS_DISABLE == 0 {
            return AltStack { mine: None };
        }
        let size = Self::SIZE.max(sys::min_signal_stack() * 4);
        let Ok(base) = sys::map_anonymous(size) else {
            return AltStack { mine: None };
        };
        let new = libc::stack_t {
            ss_sp: base.cast(),
            ss_flags: 0,
            ss_size: size,
        };
        // SAFETY: `new` describes a mapping we own for the lifetime of this value.
        unsafe { libc::sigaltstack(&new, std::ptr::null_mut()) };
        AltStack {
            mine: Some((base, size)),
        }
    }
}

impl Drop for AltStack {
    fn drop(&mut self) {
        if let Some((base, size)) = self.mine {
            let off = libc::stack_t {
                ss_sp: std::ptr::null_mut(),
                ss_flags: libc::SS_DISABLE,
                ss_size: 0,
            };
            // SAFETY: disable the alternate stack first, then unmap what we mapped.
            unsafe {
                libc::sigaltstack(&off, std::ptr::null_mut());
                sys::unmap(base, size);
            }
        }
    }
}
