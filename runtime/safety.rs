//! # What is safe to call from a preemptible thread
//!
//! Under `Model::None` and `Model::Voluntary` a green thread is switched out only
//! inside the runtime's own calls (blocking, sleeping, yielding, `cond_resched`), so
//! any code that does not call into the runtime runs as it would on an OS thread. This
//! chapter is about `Model::Full`, chosen with the `unsafe`
//! [`Builder::preemptive`](crate::Builder::preemptive), where the timer interrupt may
//! switch a thread out between any two instructions of the program's own code.
//!
//! The root of every rule below: **the green threads of one CPU share one OS thread**.
//! Anything keyed by the OS thread — thread-locals, re-entrant locks, the panic count,
//! an allocator's per-thread cache — is shared by them, and a preemption can interleave
//! two of them inside it.
//!
//! | what | under `Full` | do instead |
//! |---|---|---|
//! | `thread_local!` | shared by the CPU's green threads; a `RefCell` borrow or an `UnsafeCell` update can be interleaved (H20) | [`task_local!`](crate::task_local) for per-thread values; per-CPU values under [`preempt::disable()`](crate::disable) |
//! | `println!`, `eprintln!`, `std::io::stdout().lock()` | std's stdout lock is re-entrant per OS thread around a `RefCell`: a preempted printer makes the next one on its CPU panic "already borrowed" (H2) | [`preempt::println!`](crate::println) / [`preempt::print!`](crate::print), which write whole lines with preemption off |
//! | `std::sync::Mutex`, `parking_lot`, any OS lock | safe while no other green thread *of the same CPU* takes it; if one does while the owner is preempted, it blocks the whole CPU in the kernel and the owner never runs again (H3) | the runtime's synchronisation primitives (to come); or hold preemption off while holding the lock |
//! | the global allocator | glibc's `malloc` lives in libc, where ticks are deferred: safe. An allocator linked into the executable (a Rust allocator, a statically linked C one) is not (H1) | wrap it: [`alloc::NoPreempt`](crate::alloc::NoPreempt) |
//! | FFI into shared libraries | never preempted inside (only the executable's own code, the vDSO and a few pure libc routines — `mem*`, `str*`, the clocks — are) | nothing to do; a long foreign call delays preemption until it returns |
//! | FFI into code linked into the executable (a static C library) | preemptible like Rust code: safe only if it keeps no per-thread state and takes no lock another green thread of the CPU may want | call it under `preempt::disable()` |
//! | `tracing` subscribers | the current span and the dispatcher's re-entrance guard are per OS thread: events get another green thread's span as parent, or are dropped; tracing-subscriber's registry can even panic when preempted mid-insert (H19) | wrap the subscriber in [`spans::PerThreadSpans`](crate::spans::PerThreadSpans) |
//! | panicking | the panic count is per OS thread: the runtime never switches a thread out while it unwinds (preemption and voluntary switches wait; `sleep` in a destructor keeps the CPU) (H5) | nothing; avoid blocking on other threads from destructors that run during unwinding |
//! | `fork()` | only the calling OS thread survives in the child: the carrier's other green threads are gone | spawn processes with `std::process::Command` (fork + exec) |
//! | blocking inside a thread-local borrow | under every model: the runtime switches while the borrow is held, and another green thread of the CPU may take it | release thread-local borrows before any blocking call |
//!
//! ## What user code sees of the timer interrupt
//!
//! * System calls are interrupted by `SIGALRM`. The handler is installed with
//!   `SA_RESTART`, so calls the kernel can restart are restarted; the rest (`nanosleep`,
//!   `poll`, `epoll_wait`, socket calls with a timeout) return `EINTR` — the runtime's
//!   own calls retry with the remaining time, and `std` retries `EINTR` in its I/O
//!   helpers; your own raw system calls must too (H10).
//! * The runtime owns `SIGALRM` and `ITIMER_REAL` while a preemptive runtime runs:
//!   building one with another `SIGALRM` handler installed is an error.
//! * `errno` is preserved across the handler.
//! * Setting `PREEMPT_MODEL=none` or `voluntary` in the environment lowers the model
//!   without a rebuild (never raises it), for diagnosing a suspected preemption bug.
