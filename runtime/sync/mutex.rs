//! `Mutex<T>`: a sleeping lock with priority inheritance, like Linux's `rt_mutex`.
//!
//! ## The lock word
//!
//! ```text
//!   bits 63..2  owner: the holder's ThreadId (unique, never reused: a generation tag),
//!               or a plain OS thread's tid tagged with bit 62; 0 = unlocked
//!   bit  1      OS_PARKED: plain OS threads are parked on this mutex (in
//!               parking_lot_core, keyed by its address); the unlock wakes them
//!   bit  0      HAS_WAITERS: the green wait queue is not empty; unlock hands off
//! ```
//!
//! | from | to | by | how |
//! |---|---|---|---|
//! | `0` | `me` | locker, fast path | CAS (Acquire) and the `owner` store, in an assembly window the timer interrupt never preempts, so no waiter can run in between |
//! | `me` | `0` | owner, fast path | CAS (Release) |
//! | `owner` | `owner \| HAS_WAITERS` | a waiter, slow path | CAS, then it queues itself |
//! | `me \| HAS_WAITERS` | `next [\| HAS_WAITERS]` | owner, slow path | handoff to the top waiter (`OS_PARKED` kept) |
//! | `owner` | `owner \| OS_PARKED` | an OS thread, slow path | CAS, then it parks while the bit is set |
//! | `me \| OS_PARKED` | `0` | owner, slow path | swap, then `unpark_all` |
//!
//! Uncontended lock and unlock are one atomic each and never touch the scheduler.
//!
//! ## Wait queue and priority inheritance (invariant 7)
//!
//! The slow paths run on the carrier with preemption disabled, which serialises them
//! (one CPU; the wait queue, the `owner` pointer and every task's PI fields are per-CPU
//! data). Waiters queue by effective priority, FIFO among equals, in nodes on their own
//! stacks. Each task keeps the list of the mutexes it holds that have waiters
//! (`pi_held`); its effective priority is the maximum of its base priority and the top
//! waiter of each (`effective_prio`).
//!
//! Blocking walks the owner chain (`chain_walk`), as `rt_mutex_adjust_prio_chain`
//! does: recompute the owner's effective priority and requeue it — on the run queue,
//! or in the wait queue of the mutex it is itself blocked on, whose owner is the next
//! step — up to [`MAX_CHAIN`] steps. Reaching the blocking task again is a cycle: a
//! deadlock, reported instead of a hang. Unlock hands the mutex to the top waiter,
//! moves the remaining waiters' claim to the new owner, and drops the old owner back to
//! what it still inherits (de-boost), switching at once if that lets a queued thread
//! outrank it.
//!
//! The `owner` pointer is valid while the word is locked: it is written by the owner
//! with preemption off right after it takes the word, and a task cannot exit while its
//! guard lives (the guard borrows the mutex, and an unwinding thread drops it — which
//! poisons the mutex, like std).
//!
//! Callers outside a green thread (plain OS threads) take the same fast path; on
//! contention they park in `parking_lot_core` (the `OS_PARKED` bit) and take no part in
//! priority inheritance. A green thread that finds an OS thread holding the mutex
//! yields until it is released, since an OS thread cannot be boosted.

use super::poison;
#[cfg(not(loom))]
use crate::arch;
use crate::loom::sync::atomic::{AtomicU64, Ordering};
use crate::preempt;
use crate::sched::{self, Priority};
use crate::task::Task;
use std::cell::UnsafeCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};
use std::ptr;
use std::sync::{Arc, LockResult, PoisonError, TryLockError, TryLockResult};

const HAS_WAITERS: u64 = 1;
const OS_PARKED: u64 = 2;
const FLAGS: u64 = HAS_WAITERS | OS_PARKED;
/// Tags an OS thread's tid in the owner field.
const OS_OWNER: u64 = 1 << 60;

/// The longest owner chain a blocking thread walks (the kernel's `max_lock_depth` is
/// 1024); a longer chain is reported like a cycle.
pub const MAX_CHAIN: usize = 1024;

/// A waiter's node, on its own stack while it waits.
pub(crate) struct MutexWaiter {
    task: *const Task,
    /// The waiter's effective priority when it was (re)queued: the queue's order.
    prio: Priority,
    next: *mut MutexWaiter,
    /// Set by the unlocker that handed the mutex to this waiter.
    granted: bool,
}

/// The slow-path state of a mutex: carrier only, preemption disabled.
struct Inner {
    /// The holder, while locked (module docs).
    owner: *const Task,
    /// The wait queue, highest priority first.
    waiters: *mut MutexWaiter,
    /// Next in the owner's `pi_held` list, while this mutex has waiters.
    next_held: *const RawMutexState,
    /// A previous owner that exited holding the mutex (kept allocated), for
    /// [`Mutex::poisoned_by`].
    dead_owner: *const Task,
}

/// The lock word and wait queue of a [`Mutex`].
pub(crate) struct RawMutexState {
    word: AtomicU64,
    inherit: bool,
    inner: UnsafeCell<Inner>,
}

/// Why [`Mutex::lock_pi`] refused to block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadlock {
    /// The threads of the cycle (or of the over-long chain), starting with the caller:
    /// each waits for a mutex held by the next, and the last for one held by the first.
    pub chain: Vec<String>,
}

impl fmt::Display for Deadlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "deadlock: thread '{}'", self.chain[0])?;
        for name in &self.chain[1..] {
            write!(f, " waits for a mutex held by '{name}', which")?;
        }
        write!(f, " waits for a mutex held by '{}'", self.chain[0])
    }
}

impl std::error::Error for Deadlock {}

/// The error of [`Mutex::lock_pi`].
pub enum LockPiError<G> {
    /// Blocking would close a cycle of waiting threads (or relock a held mutex).
    Deadlock(Deadlock),
    /// The mutex was poisoned; the guard is inside, as with std.
    Poisoned(PoisonError<G>),
}

impl<G> fmt::Debug for LockPiError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockPiError::Deadlock(d) => f.debug_tuple("Deadlock").field(d).finish(),
            LockPiError::Poisoned(_) => f.write_str("Poisoned(..)"),
        }
    }
}

impl<G> fmt::Display for LockPiError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockPiError::Deadlock(d) => d.fmt(f),
            LockPiError::Poisoned(p) => p.fmt(f),
        }
    }
}

fn id_of(t: *const Task) -> u64 {
    // SAFETY: callers pass live tasks.
    unsafe { (*t).id.as_u64().get() << 2 }
}

fn name_of(t: *const Task) -> String {
    // SAFETY: callers pass live tasks.
    unsafe { (*t).display_name().to_owned() }
}

impl RawMutexState {
    crate::loom::const_fn_unless_loom! {
        pub(crate) fn new(inherit: bool) -> RawMutexState {
            RawMutexState {
                word: AtomicU64::new(0),
                inherit,
                inner: UnsafeCell::new(Inner {
                    owner: ptr::null(),
                    waiters: ptr::null_mut(),
                    next_held: ptr::null(),
                    dead_owner: ptr::null(),
                }),
            }
        }
    }

    /// # Safety
    /// Carrier, preemption disabled (the module's serialisation).
    #[allow(clippy::mut_from_ref)]
    unsafe fn inner(&self) -> &mut Inner {
        // SAFETY: per the contract.
        unsafe { &mut *self.inner.get() }
    }

    /// Records `me` as the owner once the word is ours. Preemption disabled.
    ///
    /// # Safety
    /// `me` is the running task and has just taken the word.
    #[inline]
    unsafe fn set_owner(&self, me: *const Task) {
        // SAFETY: per the contract; only `me` changes its own count.
        unsafe {
            self.inner().owner = me;
            (*me).held_mutexes.set((*me).held_mutexes.get() + 1);
        }
    }

    /// Acquires the mutex; returns the owner for `unlock` (null: an OS thread) and
    /// whether the previous owner exited holding it (the caller poisons it).
    #[inline]
    #[track_caller]
    pub(crate) fn lock(&self) -> Result<(*const Task, bool), Deadlock> {
        match sched::current_task() {
            Some(me) => {
                if self.fast_take(me) {
                    // SAFETY: `me` is running; only it changes its own count.
                    unsafe { (*me).held_mutexes.set((*me).held_mutexes.get() + 1) };
                    return Ok((me, false));
                }
                self.lock_slow(me).map(|died| (me, died))
            }
            None => {
                self.lock_os_thread();
                Ok((ptr::null(), false))
            }
        }
    }

    /// The fast path: take the word if it is 0 and record `me` as the owner before any
    /// waiter can look, in the assembly window the timer interrupt never preempts
    /// (`arch::mutex_trylock`) — cheaper than disabling preemption around it.
    #[cfg(not(loom))]
    #[inline]
    fn fast_take(&self, me: *const Task) -> bool {
        // SAFETY: the word is an AtomicU64 (a u64 in memory) that the routine accesses
        // with a locked cmpxchg; `owner` is slow-path state written here only by the
        // thread that just took the word, in a window nothing preempts — as if with
        // preemption disabled.
        unsafe {
            arch::mutex_trylock(
                self.word.as_ptr(),
                id_of(me),
                (&raw mut (*self.inner.get()).owner).cast(),
                me.cast(),
            )
        }
    }

    /// Under loom (no timer interrupt, no assembly window): the same with preemption
    /// disabled.
    #[cfg(loom)]
    fn fast_take(&self, me: *const Task) -> bool {
        let _p = preempt::disable();
        let ok = self
            .word
            .compare_exchange(0, id_of(me), Ordering::Acquire, Ordering::Relaxed)
            .is_ok();
        if ok {
            // SAFETY: preemption disabled; the word is ours.
            unsafe { self.inner().owner = me };
        }
        ok
    }

    /// Takes the word if free; the owner for `unlock` (null: an OS thread).
    pub(crate) fn try_lock(&self) -> Option<*const Task> {
        match sched::current_task() {
            Some(me) => {
                let _p = preempt::disable();
                let ok = self
                    .word
                    .compare_exchange(0, id_of(me), Ordering::Acquire, Ordering::Relaxed)
                    .is_ok();
                if ok {
                    // SAFETY: preemption disabled; the word is ours.
                    unsafe { self.set_owner(me) };
                }
                ok.then_some(me)
            }
            None => self
                .word
                .compare_exchange(0, os_thread_id(), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
                .then_some(ptr::null()),
        }
    }

    /// A plain OS thread's lock: take the word if free, else mark `OS_PARKED` and park
    /// in `parking_lot_core` until an unlock clears the word. The check that the bit is
    /// still set runs under parking_lot's bucket lock, and the unlocker clears the word
    /// before it calls `unpark_all` (which takes that lock): no lost wakeup.
    #[cold]
    fn lock_os_thread(&self) {
        let me = os_thread_id();
        loop {
            let w = self.word.load(Ordering::Relaxed);
            if w == 0 {
                if self
                    .word
                    .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return;
                }
                continue;
            }
            if w & OS_PARKED == 0
                && self
                    .word
                    .compare_exchange_weak(w, w | OS_PARKED, Ordering::Relaxed, Ordering::Relaxed)
                    .is_err()
            {
                continue;
            }
            self.park_os_thread();
        }
    }

    #[cfg(not(loom))]
    fn park_os_thread(&self) {
        let key = self as *const RawMutexState as usize;
        // SAFETY: our own address as the key; validate only reads an atomic, and no
        // callback panics or calls into parking_lot.
        unsafe {
            parking_lot_core::park(
                key,
                || self.word.load(Ordering::Relaxed) & OS_PARKED != 0,
                || {},
                |_, _| {},
                parking_lot_core::DEFAULT_PARK_TOKEN,
                None,
            );
        }
    }

    /// Loom cannot model parking_lot: the models' OS threads poll.
    #[cfg(loom)]
    fn park_os_thread(&self) {
        crate::loom::yield_now();
    }

    /// Wakes the OS threads parked on this mutex (after the word was released).
    #[cfg(not(loom))]
    fn unpark_os_threads(&self) {
        let key = self as *const RawMutexState as usize;
        // SAFETY: our own address as the key.
        unsafe { parking_lot_core::unpark_all(key, parking_lot_core::DEFAULT_UNPARK_TOKEN) };
    }

    #[cfg(loom)]
    fn unpark_os_threads(&self) {}

    /// The slow path: take the word if it came free, report a relock, take over from
    /// an owner that exited holding it, or queue, walk the chain and sleep until handed
    /// the mutex. A wakeup that is not a handoff (an `unpark`, an owner's exit) finds
    /// the node still queued and re-examines the owner without queueing again.
    #[cold]
    #[inline(never)]
    #[track_caller]
    fn lock_slow(&self, me: *const Task) -> Result<bool, Deadlock> {
        preempt::might_sleep();
        let (cpu, _) = sched::current_or_panic("Mutex::lock");
        let mut node = MutexWaiter {
            task: me,
            prio: Priority::DEFAULT,
            next: ptr::null_mut(),
            granted: false,
        };
        // Only through this pointer from here on: the unlocker writes through it too.
        let node: *mut MutexWaiter = &mut node;
        loop {
            {
                let _p = preempt::disable();
                // SAFETY: preemption disabled on our carrier: the slow-path state is
                // ours to change; an owner recorded itself (with preemption off)
                // before we could run, and stays allocated even if it exited.
                unsafe {
                    let queued = ptr::eq((*me).se().blocked_on, self);
                    let w = self.word.load(Ordering::Relaxed);
                    if !queued && w == 0 {
                        if self
                            .word
                            .compare_exchange(0, id_of(me), Ordering::Acquire, Ordering::Relaxed)
                            .is_ok()
                        {
                            self.set_owner(me);
                            return Ok(false);
                        }
                        continue;
                    }
                    if !queued && w & !FLAGS == id_of(me) {
                        return Err(Deadlock {
                            chain: vec![name_of(me)],
                        });
                    }
                    if !queued && w >> 2 >= OS_OWNER {
                        // An OS thread holds it: it never queues waiters; poll.
                        drop(_p);
                        sched::yield_current(cpu);
                        continue;
                    }
                    let owner = self.inner().owner;
                    if (*owner).state.load(Ordering::SeqCst) == crate::task::DEAD {
                        if queued {
                            self.dequeue(node);
                            (*me).se().blocked_on = ptr::null();
                            (*me).se().waiter = ptr::null_mut();
                        }
                        self.take_over(me, owner);
                        return Ok(true);
                    }
                    if !queued {
                        self.word.fetch_or(HAS_WAITERS, Ordering::Relaxed);
                        (*node).prio = (*me).se().prio;
                        (*node).granted = false;
                        self.enqueue(node);
                        (*me).se().blocked_on = self;
                        (*me).se().waiter = node;
                        if let Err(d) = self.chain_walk(me) {
                            self.dequeue(node);
                            (*me).se().blocked_on = ptr::null();
                            (*me).se().waiter = ptr::null_mut();
                            self.waiters_changed();
                            return Err(d);
                        }
                    }
                }
            }
            // Invariant 5: the handoff sets `granted` before it wakes us, and the
            // cancel check runs after we are marked BLOCKED.
            // SAFETY: the node lives on our stack until we return.
            sched::block_current(cpu, me, None, || unsafe {
                ptr::read_volatile(&(*node).granted)
            });
            // SAFETY: as above.
            if unsafe { ptr::read_volatile(&(*node).granted) } {
                let _p = preempt::disable();
                // SAFETY: the unlocker made us the owner; only we change our count.
                unsafe { (*me).held_mutexes.set((*me).held_mutexes.get() + 1) };
                return Ok(false);
            }
        }
    }

    /// Takes the mutex from `dead`, which exited holding it (a leaked guard): the
    /// robust-futex `OWNER_DIED` case. Remaining waiters keep waiting, now on us.
    ///
    /// # Safety
    /// Preemption disabled on the carrier; `me` is running and not queued here;
    /// `dead` is this mutex's exited (and still allocated) owner.
    unsafe fn take_over(&self, me: *const Task, dead: *const Task) {
        // SAFETY: per the contract.
        unsafe {
            unlink_held(dead, self);
            let more = !self.inner().waiters.is_null();
            let parked = self.word.load(Ordering::Relaxed) & OS_PARKED;
            self.word.store(
                id_of(me) | parked | if more { HAS_WAITERS } else { 0 },
                Ordering::Relaxed,
            );
            crate::loom::sync::atomic::fence(Ordering::Acquire);
            self.set_owner(me);
            self.inner().dead_owner = dead;
            if more {
                link_held(me, self);
                sched::set_effective_prio(me, effective_prio(me));
            }
        }
    }

    /// Inserts `node` behind every waiter of its priority or higher.
    ///
    /// # Safety
    /// Preemption disabled on the carrier; `node` is not queued.
    unsafe fn enqueue(&self, node: *mut MutexWaiter) {
        // SAFETY: per the contract; every queued node lives until dequeued.
        unsafe {
            let inner = self.inner();
            let mut link: *mut *mut MutexWaiter = &mut inner.waiters;
            while !(*link).is_null() && (**link).prio >= (*node).prio {
                link = &mut (**link).next;
            }
            (*node).next = *link;
            *link = node;
        }
    }

    /// Unlinks `node`.
    ///
    /// # Safety
    /// As for `enqueue`; `node` is queued here.
    unsafe fn dequeue(&self, node: *mut MutexWaiter) {
        // SAFETY: per the contract.
        unsafe {
            let inner = self.inner();
            let mut link: *mut *mut MutexWaiter = &mut inner.waiters;
            while *link != node {
                link = &mut (**link).next;
            }
            *link = (*node).next;
            (*node).next = ptr::null_mut();
        }
    }

    fn top_prio(&self) -> Option<Priority> {
        // SAFETY: called with preemption disabled on the carrier.
        unsafe {
            let w = self.inner().waiters;
            (!w.is_null()).then(|| (*w).prio)
        }
    }

    /// After the wait queue changed: keep HAS_WAITERS, the owner's `pi_held` list and
    /// the owner's effective priority consistent.
    ///
    /// # Safety
    /// Preemption disabled on the carrier; locked by a green thread.
    unsafe fn waiters_changed(&self) {
        // SAFETY: per the contract.
        unsafe {
            let owner = self.inner().owner;
            if self.inner().waiters.is_null() {
                self.word.fetch_and(!HAS_WAITERS, Ordering::Relaxed);
                unlink_held(owner, self);
            } else {
                link_held(owner, self);
            }
            sched::set_effective_prio(owner, effective_prio(owner));
        }
    }

    /// Steps 1–n of the chain walk, from this mutex (which `me` just queued on).
    ///
    /// # Safety
    /// Preemption disabled on the carrier.
    unsafe fn chain_walk(&self, me: *const Task) -> Result<(), Deadlock> {
        let mut m: *const RawMutexState = self;
        for _ in 0..MAX_CHAIN {
            // SAFETY: m is locked (it has a waiter), so its owner is alive; the owner's
            // blocked_on mutex is locked too.
            unsafe {
                let owner = (*m).inner().owner;
                if owner == me {
                    return Err(self.chain_names(me));
                }
                // The owner inherits this mutex's top waiter (when PI is on).
                link_held(owner, m);
                if (*m).inherit {
                    sched::set_effective_prio(owner, effective_prio(owner));
                }
                let next = (*owner).se().blocked_on;
                if next.is_null() {
                    return Ok(());
                }
                // Requeue the owner in the queue it waits in, at its new priority.
                let node = (*owner).se().waiter;
                let p = (*owner).se().prio;
                if (*node).prio != p {
                    (*next).dequeue(node);
                    (*node).prio = p;
                    (*next).enqueue(node);
                }
                m = next;
            }
        }
        // SAFETY: as above.
        Err(unsafe { self.chain_names(me) })
    }

    /// The names along the owner chain from this mutex, for the deadlock report.
    ///
    /// # Safety
    /// As for `chain_walk`.
    #[cold]
    unsafe fn chain_names(&self, me: *const Task) -> Deadlock {
        let mut chain = vec![name_of(me)];
        let mut m: *const RawMutexState = self;
        // SAFETY: per the contract.
        unsafe {
            for _ in 0..MAX_CHAIN {
                let owner = (*m).inner().owner;
                if owner == me {
                    break;
                }
                chain.push(name_of(owner));
                m = (*owner).se().blocked_on;
                if m.is_null() {
                    break;
                }
            }
        }
        Deadlock { chain }
    }

    #[inline]
    /// Releases the word taken by `owner` (the running thread, from `lock`; null for
    /// an OS thread).
    pub(crate) fn unlock(&self, owner: *const Task) {
        let me = if owner.is_null() {
            os_thread_id()
        } else {
            // SAFETY: `owner` is the running task (guards are not `Send`); only it
            // changes its own count.
            unsafe { (*owner).held_mutexes.set((*owner).held_mutexes.get() - 1) };
            id_of(owner)
        };
        if self
            .word
            .compare_exchange(me, 0, Ordering::Release, Ordering::Relaxed)
            .is_err()
        {
            self.unlock_slow(owner);
        }
    }

    /// The unlock that found a flag set: hand the mutex to the top green waiter (and
    /// de-boost), or release it and wake the parked OS threads.
    #[cold]
    #[inline(never)]
    fn unlock_slow(&self, owner: *const Task) {
        // Preemption off before the word is read: a green thread that ran in between
        // could queue itself (setting HAS_WAITERS) just before a release to 0 orphaned
        // it. (Behind an OS owner nobody queues, so its unlock needs no such care.)
        let _p = preempt::disable();
        let w = self.word.load(Ordering::Relaxed);
        if w & HAS_WAITERS == 0 {
            // Only OS threads wait.
            let old = self.word.swap(0, Ordering::Release);
            debug_assert!(old & OS_PARKED != 0);
            self.unpark_os_threads();
            return;
        }
        let me = owner;
        // SAFETY: preemption disabled on our carrier; we own the mutex (green waiters
        // queue only behind green owners), so its waiters and their tasks are alive.
        unsafe {
            let inner = self.inner();
            let top = inner.waiters;
            debug_assert!(!top.is_null());
            inner.waiters = (*top).next;
            (*top).next = ptr::null_mut();
            let next = (*top).task;
            unlink_held(me, self);
            inner.owner = next;
            let more = !inner.waiters.is_null();
            // Parked OS threads stay parked: the next owner's unlock wakes them. The
            // swap keeps an `OS_PARKED` set meanwhile.
            let parked = self.word.load(Ordering::Relaxed) & OS_PARKED;
            let old = self.word.swap(
                id_of(next) | parked | if more { HAS_WAITERS } else { 0 },
                Ordering::Release,
            );
            if old & OS_PARKED != parked {
                self.word.fetch_or(OS_PARKED, Ordering::Relaxed);
            }
            (*next).se().blocked_on = ptr::null();
            (*next).se().waiter = ptr::null_mut();
            if more {
                link_held(next, self);
            }
            sched::set_effective_prio(next, effective_prio(next));
            sched::set_effective_prio(me, effective_prio(me));
            (*top).granted = true;
            // The woken owner runs before us if it outranks us (wakeup preemption,
            // at the end of this section).
            Arc::increment_strong_count(next);
            sched::wake_up(&Arc::from_raw(next));
        }
    }
}

/// Called by a green thread that exits holding mutexes (leaked guards), preemption
/// disabled, before it is marked dead: wakes every waiter of those mutexes, which find
/// the owner dead and the first takes over (`RawMutexState::take_over`). The task stays
/// allocated (the caller leaks a reference), so owner pointers never dangle.
///
/// # Safety
/// `t` is the running task, about to exit; preemption disabled.
pub(crate) unsafe fn owner_exiting(t: *const Task) {
    // SAFETY: per the contract; the listed mutexes have waiters, which borrow them.
    unsafe {
        let mut m = (*t).se().pi_held;
        while !m.is_null() {
            let mut w = (*m).inner().waiters;
            while !w.is_null() {
                let task = (*w).task;
                Arc::increment_strong_count(task);
                sched::wake_up(&Arc::from_raw(task));
                w = (*w).next;
            }
            m = (*m).inner().next_held;
        }
    }
}

/// Adds `m` to `owner`'s list of held mutexes with waiters, if absent.
///
/// # Safety
/// Preemption disabled on the carrier; `owner` holds `m`.
unsafe fn link_held(owner: *const Task, m: *const RawMutexState) {
    // SAFETY: per the contract.
    unsafe {
        let mut p = (*owner).se().pi_held;
        while !p.is_null() {
            if p == m {
                return;
            }
            p = (*p).inner().next_held;
        }
        (*m).inner().next_held = (*owner).se().pi_held;
        (*owner).se().pi_held = m;
    }
}

/// Removes `m` from `owner`'s list, if present.
///
/// # Safety
/// As for `link_held`.
unsafe fn unlink_held(owner: *const Task, m: *const RawMutexState) {
    // SAFETY: per the contract.
    unsafe {
        let mut link: *mut *const RawMutexState = &mut (*owner).se().pi_held;
        while !(*link).is_null() {
            if *link == m {
                *link = (*m).inner().next_held;
                (*m).inner().next_held = ptr::null();
                return;
            }
            link = &mut (**link).inner().next_held;
        }
    }
}

/// Base priority raised to the top waiter of every held PI mutex.
///
/// # Safety
/// Preemption disabled on the carrier; `t` alive.
unsafe fn effective_prio(t: *const Task) -> Priority {
    // SAFETY: per the contract.
    unsafe {
        let mut p = (*t).prio;
        let mut m = (*t).se().pi_held;
        while !m.is_null() {
            if (*m).inherit
                && let Some(top) = (*m).top_prio()
            {
                p = p.max(top);
            }
            m = (*m).inner().next_held;
        }
        p
    }
}

/// A lock-word id for a plain OS thread: above every green thread id.
fn os_thread_id() -> u64 {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() } as u64;
    (OS_OWNER | tid) << 2
}

/// A mutual-exclusion lock that puts waiters to sleep, with priority inheritance; the
/// green-thread counterpart of [`std::sync::Mutex`] (same names, guards and poisoning).
///
/// A thread that blocks on a mutex lends its priority to the owner, transitively along
/// chains of owners, so a high-priority thread waits only for the critical sections in
/// its way, never for the medium-priority threads that would otherwise starve the
/// owner (the Mars Pathfinder inversion; see `examples/pathfinder.rs`).
/// [`Mutex::without_inheritance`] makes one that does not, for comparison.
///
/// Waiters are served by priority, FIFO among equals; unlock hands the lock to the
/// first. Blocking in a way that closes a cycle of waiting threads (AB-BA), or locking
/// a mutex the caller already holds, is a deadlock: [`lock`](Mutex::lock) panics with
/// the chain of threads, [`lock_pi`](Mutex::lock_pi) returns it as an error.
///
/// Blocking in atomic context (under a `SpinLock` or `preempt::disable()`) is the
/// `might_sleep` bug report. Plain OS threads may lock it too; they park on contention
/// and take no part in priority inheritance.
pub struct Mutex<T: ?Sized> {
    raw: RawMutexState,
    poison: poison::Flag,
    data: UnsafeCell<T>,
}

// SAFETY: the lock serialises access to `data`, as for std's Mutex.
unsafe impl<T: ?Sized + Send> Send for Mutex<T> {}
// SAFETY: as above.
unsafe impl<T: ?Sized + Send> Sync for Mutex<T> {}

impl<T> Mutex<T> {
    crate::loom::const_fn_unless_loom! {
        /// Creates an unlocked mutex with priority inheritance.
        pub fn new(value: T) -> Mutex<T> {
            Mutex {
                raw: RawMutexState::new(true),
                poison: poison::Flag::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    crate::loom::const_fn_unless_loom! {
        /// Creates an unlocked mutex *without* priority inheritance (waiters still queue
        /// by priority), to show the inversion it prevents.
        pub fn without_inheritance(value: T) -> Mutex<T> {
            Mutex {
                raw: RawMutexState::new(false),
                poison: poison::Flag::new(),
                data: UnsafeCell::new(value),
            }
        }
    }

    /// Consumes the mutex, returning the value (poisoned like std).
    pub fn into_inner(self) -> LockResult<T> {
        let poison = self.poison;
        poison.result(self.data.into_inner())
    }
}

impl<T: ?Sized> Mutex<T> {
    /// Acquires the mutex, blocking the calling thread until it is available.
    ///
    /// # Errors
    /// If the mutex is poisoned (a holder panicked), like std; the guard is inside.
    ///
    /// # Panics
    /// On a deadlock: the caller already holds this mutex, or blocking would close a
    /// cycle of waiting threads; the message names the chain. Use
    /// [`lock_pi`](Mutex::lock_pi) to get it as an error.
    #[track_caller]
    pub fn lock(&self) -> LockResult<MutexGuard<'_, T>> {
        match self.lock_pi() {
            Ok(g) => Ok(g),
            Err(LockPiError::Poisoned(p)) => Err(p),
            Err(LockPiError::Deadlock(d)) => panic!("{d}"),
        }
    }

    /// Like [`lock`](Mutex::lock), but a deadlock is returned as
    /// [`LockPiError::Deadlock`] instead of a panic (the kernel's `-EDEADLK` from
    /// `FUTEX_LOCK_PI`), and nothing was acquired.
    ///
    /// # Errors
    /// [`LockPiError::Deadlock`] or [`LockPiError::Poisoned`].
    #[track_caller]
    pub fn lock_pi(&self) -> Result<MutexGuard<'_, T>, LockPiError<MutexGuard<'_, T>>> {
        let (owner, died) = self.raw.lock().map_err(LockPiError::Deadlock)?;
        if died {
            self.poison.set();
        }
        let guard = MutexGuard {
            lock: self,
            owner,
            panicking: self.poison.guard(),
            _not_send: PhantomData,
        };
        if self.poison.get() {
            Err(LockPiError::Poisoned(PoisonError::new(guard)))
        } else {
            Ok(guard)
        }
    }

    /// Acquires the mutex if it is free, without blocking.
    ///
    /// # Errors
    /// `WouldBlock` if it is held (by anyone, the caller included); `Poisoned` like std.
    pub fn try_lock(&self) -> TryLockResult<MutexGuard<'_, T>> {
        let Some(owner) = self.raw.try_lock() else {
            return Err(TryLockError::WouldBlock);
        };
        let guard = MutexGuard {
            lock: self,
            owner,
            panicking: self.poison.guard(),
            _not_send: PhantomData,
        };
        Ok(self.poison.result(guard)?)
    }

    /// The name of a green thread that exited while holding this mutex (its guard
    /// leaked, e.g. with `mem::forget`), if one did. The next locker took the mutex
    /// over and found it poisoned, like a robust futex's `OWNER_DIED`.
    pub fn poisoned_by(&self) -> Option<String> {
        let _p = preempt::disable();
        // SAFETY: preemption disabled; a dead owner stays allocated.
        unsafe {
            let d = self.raw.inner().dead_owner;
            (!d.is_null()).then(|| name_of(d))
        }
    }

    /// Whether a holder panicked while holding it (or exited holding it).
    pub fn is_poisoned(&self) -> bool {
        self.poison.get()
    }

    /// Clears the poison flag.
    pub fn clear_poison(&self) {
        self.poison.clear();
    }

    /// Whether this mutex lends priority to its holder.
    pub fn inherits_priority(&self) -> bool {
        self.raw.inherit
    }

    /// The value, through a unique reference (poisoned like std).
    pub fn get_mut(&mut self) -> LockResult<&mut T> {
        self.poison.result(self.data.get_mut())
    }
}

impl<T: Default> Default for Mutex<T> {
    fn default() -> Mutex<T> {
        Mutex::new(T::default())
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for Mutex<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Mutex");
        match self.try_lock() {
            Ok(g) => d.field("data", &&*g),
            Err(TryLockError::Poisoned(p)) => d.field("data", &&*p.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("data", &format_args!("<locked>")),
        };
        d.field("poisoned", &self.is_poisoned())
            .field("inherits_priority", &self.inherits_priority())
            .finish_non_exhaustive()
    }
}

/// Holds a [`Mutex`] until dropped; dropping it while the thread panics poisons the
/// mutex, like std.
#[must_use = "the mutex is released as soon as the guard is dropped"]
pub struct MutexGuard<'a, T: ?Sized> {
    lock: &'a Mutex<T>,
    /// The locking green thread (null: an OS thread), so unlock needs no lookup.
    owner: *const Task,
    panicking: poison::Panicking,
    _not_send: PhantomData<*const ()>,
}

// SAFETY: sharing the guard shares `&T` only.
unsafe impl<T: ?Sized + Sync> Sync for MutexGuard<'_, T> {}

impl<'a, T: ?Sized> MutexGuard<'a, T> {
    /// The mutex this guard holds (for `Condvar`, which releases and retakes it).
    pub(crate) fn mutex(&self) -> &'a Mutex<T> {
        self.lock
    }
}

impl<T: ?Sized> Deref for MutexGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard proves the mutex is held by us.
        unsafe { &*self.lock.data.get() }
    }
}

impl<T: ?Sized> DerefMut for MutexGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as above, and the guard is borrowed uniquely.
        unsafe { &mut *self.lock.data.get() }
    }
}

impl<T: ?Sized> Drop for MutexGuard<'_, T> {
    fn drop(&mut self) {
        self.lock.poison.done(&self.panicking);
        self.lock.raw.unlock(self.owner);
    }
}

impl<T: ?Sized + fmt::Debug> fmt::Debug for MutexGuard<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&**self, f)
    }
}
