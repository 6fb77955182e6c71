//! Scoped green threads, like [`std::thread::scope`]: threads that may borrow from the
//! caller's stack, because the scope does not return until every one has finished.
//!
//! The same accounting as std's: the scope counts its running threads; each thread's
//! result packet decrements the count when it is dropped (after the result, which may
//! borrow, is gone) and the last one wakes the scope's owner.

use super::{Builder, JoinHandle, Thread};
use crate::loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sched::{self, Cpu, Waiter};
use std::io;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;

/// A scope to spawn scoped green threads in; see [`scope`].
pub struct Scope<'scope, 'env: 'scope> {
    data: Arc<ScopeData>,
    cpu: Arc<Cpu>,
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
}

pub(crate) struct ScopeData {
    num_running_threads: AtomicUsize,
    a_thread_panicked: AtomicBool,
    main: Waiter,
}

impl ScopeData {
    fn increment_num_running_threads(&self) {
        if self.num_running_threads.fetch_add(1, Ordering::Relaxed) > usize::MAX / 2 {
            crate::debug::fatal("preempt: too many running threads in a thread scope");
        }
    }

    pub(crate) fn decrement_num_running_threads(&self, panic: bool) {
        if panic {
            self.a_thread_panicked.store(true, Ordering::Relaxed);
        }
        if self.num_running_threads.fetch_sub(1, Ordering::Release) == 1 {
            self.main.wake();
        }
    }
}

/// Creates a scope for spawning green threads that may borrow non-`'static` data,
/// like [`std::thread::scope`]. Every thread spawned in it is joined before it returns.
///
/// # Panics
/// Outside a green thread; if `f` panics (after every thread has finished); or, like
/// std, with "a scoped thread panicked" if a thread panicked and was not joined.
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let Some(cpu) = sched::current_arc().map(|t| t.cpu.clone()) else {
        sched::no_runtime("preempt::thread::scope")
    };
    let scope = Scope {
        data: Arc::new(ScopeData {
            num_running_threads: AtomicUsize::new(0),
            a_thread_panicked: AtomicBool::new(false),
            main: Waiter::current(),
        }),
        cpu,
        scope: PhantomData,
        env: PhantomData,
    };
    let result = catch_unwind(AssertUnwindSafe(|| f(&scope)));
    Waiter::wait_until(|| scope.data.num_running_threads.load(Ordering::Acquire) == 0);
    match result {
        Err(e) => resume_unwind(e),
        Ok(_) if scope.data.a_thread_panicked.load(Ordering::Relaxed) => {
            panic!("a scoped thread panicked")
        }
        Ok(r) => r,
    }
}

impl<'scope> Scope<'scope, '_> {
    /// Spawns a scoped green thread with the default settings.
    ///
    /// # Panics
    /// If the thread cannot be created; use [`Builder::spawn_scoped`] for the error.
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        Builder::new()
            .spawn_scoped(self, f)
            .unwrap_or_else(|e| panic!("failed to spawn scoped green thread: {e}"))
    }
}

impl Builder {
    /// Spawns a scoped green thread with this configuration.
    ///
    /// # Errors
    /// As for [`Builder::spawn`].
    pub fn spawn_scoped<'scope, F, T>(
        self,
        scope: &'scope Scope<'scope, '_>,
        f: F,
    ) -> io::Result<ScopedJoinHandle<'scope, T>>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        scope.data.increment_num_running_threads();
        // SAFETY: `scope` waits for num_running_threads to reach zero, which happens only
        // when this thread's packet is dropped — after the closure and its result are
        // gone — so nothing they borrow for 'scope can end first. A failed spawn drops
        // the packet too, which decrements the count again.
        let handle = unsafe { self.spawn_unchecked(&scope.cpu, f, Some(scope.data.clone())) }?;
        Ok(ScopedJoinHandle(handle, PhantomData))
    }
}

/// An owned permission to join a scoped green thread.
#[derive(Debug)]
pub struct ScopedJoinHandle<'scope, T>(JoinHandle<T>, PhantomData<&'scope ()>);

impl<T> ScopedJoinHandle<'_, T> {
    /// Waits for the thread; `Err(payload)` if it panicked.
    #[track_caller]
    pub fn join(self) -> std::thread::Result<T> {
        self.0.join()
    }

    /// The thread's handle.
    pub fn thread(&self) -> &Thread {
        self.0.thread()
    }

    /// Whether the thread has finished running its closure.
    pub fn is_finished(&self) -> bool {
        self.0.is_finished()
    }
}

impl std::fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scope")
            .field(
                "num_running_threads",
                &self.data.num_running_threads.load(Ordering::Relaxed),
            )
            .finish_non_exhaustive()
    }
}
