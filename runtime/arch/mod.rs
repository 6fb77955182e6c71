//! The machine-dependent half of a context switch.
//!
//! Everything that knows a register name lives in `asm/<arch>/` (the instructions) and in
//! the one module below that matches the target (the Rust side: the saved [`Context`],
//! the layout of a new thread's first frame). The rest of the runtime sees three things:
//!
//! * [`Context`] — what a switched-out thread leaves behind (its stack pointer);
//! * [`init_stack`] — lay out a fresh stack so that switching to it enters
//!   `entry(arg)` through the entry trampoline;
//! * [`switch`] — save the running thread into one `Context`, resume another;
//! * [`count_add`], [`count_sub`], [`count_and`] — update `preempt_count` with one
//!   instruction each, so the timer interrupt never lands inside an update;
//! * [`cycles`] — the time-stamp counter, for the scheduler's accounting clock;
//! * [`valgrind_stack_register`], [`valgrind_stack_deregister`] — tell Valgrind where
//!   the green threads' stacks are, if it runs the process.

#[cfg(target_arch = "x86_64")]
mod x86_64;
#[cfg(target_arch = "x86_64")]
pub(crate) use x86_64::{
    Context, FRAME_SIZE, STUB_RSP_DROP, STUB_XSAVE_RESERVE, StubReturn, check_async_preemption,
    count_add, count_and, count_sub, cycles, init_stack, irq_stub, irq_stub_return,
    mutex_trylock_window, switch, valgrind_stack_deregister, valgrind_stack_register,
};

#[cfg(all(target_arch = "x86_64", not(loom)))]
pub(crate) use x86_64::mutex_trylock;

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
compile_error!("preempt supports x86_64 Linux only");
