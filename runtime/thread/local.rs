//! Task-locals: per-green-thread storage, the safe alternative to `thread_local!`.
//!
//! Green threads of one CPU share its OS thread, hence its `thread_local!`s (HAZARDS.md
//! H20: under asynchronous preemption two of them can interleave inside one borrow). A
//! [`task_local!`](crate::task_local) key gives each green thread its own value instead,
//! created on first use from the key's initialiser and dropped when the thread exits —
//! on that thread, so values need not be `Send`.
//!
//! Each task keeps a table of boxed values indexed by key (indices are handed out once
//! per key, process-wide). Only the task itself touches its table, so a preemption in
//! the middle of `with` is harmless. The table holds raw pointers to the boxes: growing
//! it never moves a value that a caller of `with` is looking at.

use crate::sched;
use crate::task::Task;
use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A key for per-green-thread values; declare one with [`task_local!`](crate::task_local).
pub struct LocalKey<T: 'static> {
    init: fn() -> T,
    /// Index in every task's table, plus one (0: not assigned yet).
    slot: AtomicUsize,
}

/// A task's values: one pointer per key index (null: not created yet).
pub(crate) type Locals = Vec<*mut dyn Any>;

impl<T: 'static> LocalKey<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> LocalKey<T> {
        LocalKey {
            init,
            slot: AtomicUsize::new(0),
        }
    }

    fn index(&'static self) -> usize {
        static NEXT: AtomicUsize = AtomicUsize::new(1);
        let s = self.slot.load(Ordering::Acquire);
        if s != 0 {
            return s - 1;
        }
        let fresh = NEXT.fetch_add(1, Ordering::Relaxed);
        match self
            .slot
            .compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => fresh - 1,
            Err(s) => s - 1,
        }
    }

    /// Calls `f` with the calling green thread's value, creating it on first use.
    ///
    /// # Panics
    /// Outside a green thread (use [`LocalKey::try_with`]), or if the initialiser
    /// itself uses this key.
    #[track_caller]
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        match self.try_with(f) {
            Some(r) => r,
            None => sched::no_runtime("LocalKey::with"),
        }
    }

    /// Like [`with`](Self::with), or `None` on a thread that is not a green thread.
    pub fn try_with<R>(&'static self, f: impl FnOnce(&T) -> R) -> Option<R> {
        let task = sched::current_task()?;
        let i = self.index();
        // SAFETY: the table is touched only by its own task, which is the caller; the
        // reference is dropped before `init` or `f` run (they may use other keys).
        let existing = unsafe { table(task) }
            .get(i)
            .copied()
            .filter(|p| !p.is_null());
        let p = match existing {
            Some(p) => p,
            None => {
                let value: Box<dyn Any> = Box::new((self.init)());
                // SAFETY: as above; `init` has returned.
                let t = unsafe { table(task) };
                if t.len() <= i {
                    t.resize(i + 1, std::ptr::null_mut::<()>() as *mut dyn Any);
                }
                assert!(t[i].is_null(), "task_local initialiser used its own key");
                t[i] = Box::into_raw(value);
                t[i]
            }
        };
        // SAFETY: p came from Box::into_raw of a Box<T> (the slot is T's alone) and stays
        // alive until the task exits, which cannot happen while it runs `f`.
        let value = unsafe { &*p }
            .downcast_ref::<T>()
            .expect("task-local slot holds its key's type");
        Some(f(value))
    }
}

/// The task's table.
///
/// # Safety
/// Called by the task itself, holding no other reference to the table.
#[allow(clippy::mut_from_ref)]
unsafe fn table(task: *const Task) -> &'static mut Locals {
    // SAFETY: forwarded; the task outlives its own execution.
    unsafe { &mut *(*task).locals.get() }
}

/// Drops the calling task's values, on the task, as it exits.
pub(crate) fn drop_all() {
    let Some(task) = sched::current_task() else {
        return;
    };
    // Destructors may use other task-locals (re-creating them): repeat until empty.
    loop {
        // SAFETY: the exiting task itself; the table is taken out before any drop runs.
        let values = std::mem::take(unsafe { table(task) });
        if values.iter().all(|p| p.is_null()) {
            return;
        }
        for p in values.into_iter().filter(|p| !p.is_null()) {
            // SAFETY: from Box::into_raw in try_with, dropped once (taken out above).
            drop(unsafe { Box::from_raw(p) });
        }
    }
}

impl<T: 'static> std::fmt::Debug for LocalKey<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalKey").finish_non_exhaustive()
    }
}

/// Declares per-green-thread values, like `thread_local!` but one per green thread.
///
/// ```
/// use std::cell::Cell;
/// preempt::task_local! {
///     static COUNTER: Cell<u32> = Cell::new(0);
/// }
/// let rt = preempt::Runtime::builder().build()?;
/// rt.block_on(|| {
///     COUNTER.with(|c| c.set(c.get() + 1));
///     let other = preempt::spawn(|| COUNTER.with(|c| c.get())).join().unwrap();
///     assert_eq!(other, 0); // a fresh value in the other thread
///     assert_eq!(COUNTER.with(|c| c.get()), 1);
/// });
/// # Ok::<(), std::io::Error>(())
/// ```
#[macro_export]
macro_rules! task_local {
    ($($(#[$attr:meta])* $vis:vis static $name:ident: $t:ty = $init:expr;)+) => {$(
        $(#[$attr])*
        $vis static $name: $crate::thread::LocalKey<$t> = $crate::thread::LocalKey::new(|| $init);
    )+};
}
