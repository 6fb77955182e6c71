//! x86_64 (System V) context switch: Rust side of `asm/x86_64/switch.s`.
//!
//! A switched-out thread's callee-saved registers and floating-point control words
//! sit on its own stack in the frame drawn in `switch.s`; its [`Context`] is just the
//! stack pointer to that frame. The offsets below are the ones the assembly uses;
//! [`init_stack`] writes a frame of the same shape so a new thread is resumed exactly
//! like an old one.

use core::arch::global_asm;

global_asm!(include_str!("../../asm/x86_64/switch.s"), options(raw));
global_asm!(include_str!("../../asm/x86_64/preempt.s"), options(raw));
global_asm!(include_str!("../../asm/x86_64/count.s"), options(raw));
global_asm!(include_str!("../../asm/x86_64/mutex.s"), options(raw));
global_asm!(include_str!("../../asm/x86_64/valgrind.s"), options(raw));

unsafe extern "sysv64" {
    fn preempt_switch(from: *mut Context, to: *const Context);
    fn preempt_thread_entry();
    fn preempt_irq_stub();
    fn preempt_count_add(word: *mut u32, v: u32);
    fn preempt_count_sub(word: *mut u32, v: u32) -> u32;
    fn preempt_count_and(word: *mut u32, mask: u32);
    fn preempt_mutex_trylock(
        word: *mut u64,
        id: u64,
        owner_slot: *mut *const (),
        owner: *const (),
    ) -> u32;
    fn preempt_valgrind_request(args: *const [u64; 6], dflt: u64) -> u64;
    static preempt_mutex_trylock_end: u8;
    static preempt_irq_stub_return: u8;
    static preempt_irq_stub_checked: u8;
    static preempt_irq_stub_end: u8;
}

/// Takes a mutex word if it is 0 and records `owner` in `*owner_slot`, in a window the
/// timer interrupt never preempts (`asm/x86_64/mutex.s`); returns whether it did.
///
/// # Safety
/// `word` and `owner_slot` are valid for writes; `word` is only ever accessed
/// atomically.
#[cfg(not(loom))]
#[inline]
pub(crate) unsafe fn mutex_trylock(
    word: *mut u64,
    id: u64,
    owner_slot: *mut *const (),
    owner: *const (),
) -> bool {
    // SAFETY: per the contract.
    unsafe { preempt_mutex_trylock(word, id, owner_slot, owner) != 0 }
}

/// The address range of the mutex fast path's window. ASYNC-SIGNAL-SAFE.
pub(crate) fn mutex_trylock_window() -> (usize, usize) {
    (
        preempt_mutex_trylock as *const () as usize,
        (&raw const preempt_mutex_trylock_end) as usize,
    )
}

/// Adds `v` to `*word` with one instruction, which the timer interrupt cannot split
/// (`asm/x86_64/count.s`).
///
/// # Safety
/// `word` is the calling thread's live `preempt_count`, touched by nobody but this
/// thread and its signal handlers.
#[inline]
pub(crate) unsafe fn count_add(word: *mut u32, v: u32) {
    if cfg!(miri) {
        // SAFETY: per the contract. (Miri runs no assembly, and delivers no signal
        // that could split the update.)
        unsafe { *word = (*word).wrapping_add(v) };
        return;
    }
    // SAFETY: per the contract; the routine only adds to the word.
    unsafe { preempt_count_add(word, v) }
}

/// Subtracts `v` from `*word` with one instruction; returns the word after it.
///
/// # Safety
/// As for [`count_add`].
#[inline]
pub(crate) unsafe fn count_sub(word: *mut u32, v: u32) -> u32 {
    if cfg!(miri) {
        // SAFETY: as in `count_add`.
        return unsafe {
            *word = (*word).wrapping_sub(v);
            *word
        };
    }
    // SAFETY: per the contract; the routine only subtracts from the word and reads it.
    unsafe { preempt_count_sub(word, v) }
}

/// Ands `*word` with `mask` with one instruction.
///
/// # Safety
/// As for [`count_add`].
#[inline]
pub(crate) unsafe fn count_and(word: *mut u32, mask: u32) {
    if cfg!(miri) {
        // SAFETY: as in `count_add`.
        unsafe { *word &= mask };
        return;
    }
    // SAFETY: per the contract; the routine only masks the word.
    unsafe { preempt_count_and(word, mask) }
}

/// Valgrind's `VG_USERREQ__STACK_REGISTER` and `VG_USERREQ__STACK_DEREGISTER`
/// (valgrind.h: `'S' << 8 | 1`, `| 2`).
const VG_STACK_REGISTER: u64 = 0x1501;
const VG_STACK_DEREGISTER: u64 = 0x1502;

/// Tells Valgrind, if the process runs under it, that `[low, high)` is a stack, and
/// returns its id for [`valgrind_stack_deregister`]; natively 0, for a few cycles
/// (`asm/x86_64/valgrind.s`). Without it memcheck takes a switch of `rsp` between two
/// stacks closer than its `--max-stackframe` for a huge frame, and reports the
/// carrier's own thread-locals as below the stack pointer.
pub(crate) fn valgrind_stack_register(low: usize, high: usize) -> u64 {
    if cfg!(miri) {
        return 0;
    }
    let args = [VG_STACK_REGISTER, low as u64, high as u64, 0, 0, 0];
    // SAFETY: the routine reads the six words and touches nothing else.
    unsafe { preempt_valgrind_request(&args, 0) }
}

/// Tells Valgrind that the stack registered as `id` is gone (natively a no-op).
pub(crate) fn valgrind_stack_deregister(id: u64) {
    if cfg!(miri) {
        return;
    }
    let args = [VG_STACK_DEREGISTER, id, 0, 0, 0, 0];
    // SAFETY: as in `valgrind_stack_register`.
    unsafe { preempt_valgrind_request(&args, 0) };
}

/// Bytes the handler moves RSP down before redirecting to the stub: the 128-byte red
/// zone plus the return slot (see preempt.s).
pub(crate) const STUB_RSP_DROP: usize = 128 + 8;
/// Bytes the stub reserves below its saved registers for the XSAVE area and its 64-byte
/// alignment (`sub rsp, 5120` in preempt.s).
pub(crate) const STUB_XSAVE_RESERVE: usize = 5120;
/// The return slot's offset from the stub's frame base (`mov [rbp + 88], rax`): flags and
/// ten pushed registers above rbp.
const STUB_SLOT_FROM_RBP: usize = 88;
const _: () = assert!(STUB_SLOT_FROM_RBP == 11 * 8);

/// Address of the asynchronous preemption stub (preempt.s).
pub(crate) fn irq_stub() -> usize {
    preempt_irq_stub as *const () as usize
}

/// The preemption stub's way back from the scheduler (preempt.s), which the timer
/// interrupt must not redirect: `[start, end)`, and where in it the stub has looked for
/// `NEED_RESCHED` for the last time. ASYNC-SIGNAL-SAFE.
pub(crate) fn irq_stub_return() -> (usize, usize, usize) {
    (
        (&raw const preempt_irq_stub_return) as usize,
        (&raw const preempt_irq_stub_checked) as usize,
        (&raw const preempt_irq_stub_end) as usize,
    )
}

/// What `preempt_irq_entry` hands back to the stub, in rax and rdx (System V returns a
/// two-word aggregate in that pair).
#[repr(C)]
pub(crate) struct StubReturn {
    /// The interrupted instruction.
    pub(crate) rip: usize,
    /// The carrier's `preempt_count`, still at the scheduler's offset: the stub lowers
    /// it by one (`sub dword ptr [rax], 1`, the address moved to rax).
    pub(crate) count: *mut u32,
}
const _: () = assert!(crate::preempt::SCHED_OFFSET == 1);

/// Checks that this CPU can run the preemption stub: XSAVE enabled by the OS, and an
/// XSAVE image that fits the stub's reserve.
pub(crate) fn check_async_preemption() -> Result<(), String> {
    use core::arch::x86_64::{__cpuid, __cpuid_count};
    let leaf1 = __cpuid(1);
    let osxsave = leaf1.ecx & (1 << 27) != 0;
    if !osxsave {
        return Err("this CPU or kernel does not enable XSAVE".into());
    }
    // Leaf 0xD exists when XSAVE is enabled (checked above).
    let size = __cpuid_count(0xd, 0).ebx as usize;
    if size + 64 > STUB_XSAVE_RESERVE {
        return Err(format!(
            "the XSAVE image ({size} bytes) exceeds the preemption stub's reserve ({} bytes)",
            STUB_XSAVE_RESERVE - 64
        ));
    }
    Ok(())
}

/// A switched-out thread: the stack pointer of its saved frame.
///
/// Owned by whoever owns the thread (its task, or the carrier for the idle context);
/// written only by [`switch`] on the way out, read only by [`switch`] on the way in.
#[repr(C)]
#[derive(Debug)]
pub(crate) struct Context {
    rsp: usize,
}

impl Context {
    /// A context that has never run; valid only as the `from` of a switch.
    pub(crate) const fn empty() -> Self {
        Context { rsp: 0 }
    }
}

// Offsets in the saved frame (see the diagram in switch.s), counted from Context.rsp.
const FRAME_FPCW: usize = 0; // MXCSR at +0, x87 control word at +4
const FRAME_R15: usize = 8;
const FRAME_R14: usize = 16;
const FRAME_R13: usize = 24;
const FRAME_R12: usize = 32;
const FRAME_RBX: usize = 40;
const FRAME_RBP: usize = 48;
const FRAME_RET: usize = 56;
/// Bytes of the saved frame, return address included.
pub(crate) const FRAME_SIZE: usize = 64;
const _: () = assert!(FRAME_RET + 8 == FRAME_SIZE);
const _: () = assert!(FRAME_R15 == FRAME_FPCW + 8 && FRAME_RBP == FRAME_RBX + 8);

/// The ABI's initial MXCSR: all exceptions masked, round to nearest.
const MXCSR_DEFAULT: u32 = 0x1f80;
/// The ABI's initial x87 control word: all exceptions masked, 64-bit precision, nearest.
const FPUCW_DEFAULT: u16 = 0x037f;

/// Lays out the first frame of a new thread below `top` and returns its context.
///
/// Switching to the result enters `preempt_thread_entry`, which calls `entry(arg)` with
/// the stack 16-byte aligned as the ABI requires at a call.
///
/// # Safety
/// `top` must be 16-byte aligned and the `FRAME_SIZE + 8` bytes below it must be
/// writable memory owned by the new thread's stack.
pub(crate) unsafe fn init_stack(
    top: *mut u8,
    entry: unsafe extern "sysv64" fn(*mut u8) -> !,
    arg: *mut u8,
) -> Context {
    debug_assert_eq!(top as usize % 16, 0);
    // The return slot sits at top - 8, so that after `ret` pops it rsp == top, 16-aligned:
    // the trampoline's `call` then gives `entry` the ABI's rsp % 16 == 8 at its first
    // instruction. The frame is the 56 bytes below the return slot.
    let frame = top.wrapping_sub(FRAME_SIZE);
    // SAFETY: the caller guarantees the FRAME_SIZE bytes below `top` are ours; every
    // write below is inside them and naturally aligned (frame is 16-aligned).
    unsafe {
        frame.add(FRAME_FPCW).cast::<u32>().write(MXCSR_DEFAULT);
        frame.add(FRAME_FPCW + 4).cast::<u16>().write(FPUCW_DEFAULT);
        frame.add(FRAME_FPCW + 6).cast::<u16>().write(0);
        frame.add(FRAME_R15).cast::<usize>().write(0);
        frame.add(FRAME_R14).cast::<usize>().write(0);
        frame.add(FRAME_R13).cast::<usize>().write(0);
        frame.add(FRAME_R12).cast::<usize>().write(arg as usize);
        frame.add(FRAME_RBX).cast::<usize>().write(entry as usize);
        frame.add(FRAME_RBP).cast::<usize>().write(0); // ends frame-pointer walks
        frame
            .add(FRAME_RET)
            .cast::<usize>()
            .write(preempt_thread_entry as *const () as usize);
    }
    Context {
        rsp: frame as usize,
    }
}

/// Saves the running thread into `from` and resumes the one saved in `to`.
///
/// # Safety
/// `to` must hold a context saved by a previous `switch` or built by [`init_stack`],
/// whose stack is still mapped and which nobody else resumes concurrently. `from` must
/// stay valid until something switches back to it. The caller upholds the scheduler's
/// invariant 1 (preemption disabled by exactly the scheduler's offset).
#[inline]
pub(crate) unsafe fn switch(from: *mut Context, to: *const Context) {
    // SAFETY: forwarded from the caller; preempt_switch preserves every callee-saved
    // register of the ABI, so to the compiler this is an ordinary call.
    unsafe { preempt_switch(from, to) }
}

/// The time-stamp counter. Monotonic and in step across CPUs where the kernel uses it
/// as its clocksource (checked by `sched::clock` before it relies on it).
#[inline]
pub(crate) fn cycles() -> u64 {
    // SAFETY: RDTSC has no preconditions; it only reads a counter.
    unsafe { core::arch::x86_64::_rdtsc() }
}
