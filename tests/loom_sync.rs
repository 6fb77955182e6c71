//! Loom models of the synchronization protocols: the spinlock word, the mutex word (its
//! OS-thread path), the wait queue's notify/sleep handshake (invariant 5: no lost
//! wakeups), the semaphore's direct handoff and the channel's disconnect. Loom threads
//! stand in for plain OS threads; the green-thread paths (the scheduler, stacks,
//! signals) cannot be modelled and are covered by the `sync_*` tests instead.
//!
//! Run: `RUSTFLAGS="--cfg loom" cargo test --release --test loom_sync`. The models are
//! bounded to 2 preemptions (seconds in all; `LOOM_MAX_PREEMPTIONS` overrides it): the
//! spin-waits and parking make the unbounded state space impractically large.
#![cfg(loom)]

use loom::sync::Arc;
use loom::sync::atomic::{
    AtomicBool, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};
use preempt::__loom::{Node, WaitQueue};
use preempt::sync::{Mutex, RawSpinLock, Semaphore, mpsc};

/// `loom::model` with the file's preemption bound.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    if b.preemption_bound.is_none() {
        b.preemption_bound = Some(2);
    }
    b.check(f);
}

/// Two threads each bump a counter with Relaxed loads and stores inside `critical`:
/// only the lock word's Acquire/Release orders them, so a weaker word would lose an
/// update here.
fn two_threads_bump_under<L: Send + Sync + 'static>(lock: L, critical: fn(&L, &dyn Fn())) {
    let lock = Arc::new(lock);
    let n = Arc::new(AtomicUsize::new(0));
    let hs: Vec<_> = (0..2)
        .map(|_| {
            let (lock, n) = (lock.clone(), n.clone());
            loom::thread::spawn(move || critical(&lock, &|| n.store(n.load(Relaxed) + 1, Relaxed)))
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    assert_eq!(n.load(Relaxed), 2);
}

#[test]
fn spinlock_word_excludes_and_orders() {
    model(|| {
        two_threads_bump_under(RawSpinLock::new(()), |l, bump| {
            let _g = l.lock();
            bump();
        });
    });
}

#[test]
fn mutex_word_excludes_and_orders() {
    model(|| {
        two_threads_bump_under(Mutex::new(()), |m, bump| {
            let _g = m.lock().unwrap();
            bump();
        });
    });
}

/// A waiter that checks its condition under the queue's lock and a notifier that sets
/// it and then notifies: the waiter always returns (a lost wakeup is a loom deadlock).
#[test]
fn wait_queue_loses_no_wakeup() {
    model(|| {
        let q = Arc::new(WaitQueue::new());
        let flag = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (q, flag) = (q.clone(), flag.clone());
            loom::thread::spawn(move || {
                while !flag.load(SeqCst) {
                    let node = Node::new();
                    q.wait(&node, || flag.load(SeqCst), || {}, None);
                }
            })
        };
        flag.store(true, SeqCst);
        if let Some(w) = q.notify_one(0) {
            w.wake();
        }
        waiter.join().unwrap();
    });
}

/// One permit, two threads: each gets it in turn (handoff or count), and it ends
/// available again.
#[test]
fn semaphore_hands_off_without_loss() {
    model(|| {
        let sem = Arc::new(Semaphore::new(1));
        let inside = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..2)
            .map(|_| {
                let (sem, inside) = (sem.clone(), inside.clone());
                loom::thread::spawn(move || {
                    let _p = sem.acquire();
                    assert_eq!(inside.fetch_add(1, SeqCst), 0);
                    inside.fetch_sub(1, SeqCst);
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(sem.available_permits(), 1);
    });
}

/// A bounded channel of one: two values arrive in order, then the disconnect.
#[test]
fn channel_delivers_in_order_then_disconnects() {
    model(|| {
        let (tx, rx) = mpsc::sync_channel(1);
        let sender = loom::thread::spawn(move || {
            tx.send(1).unwrap();
            tx.send(2).unwrap();
        });
        assert_eq!(rx.recv(), Ok(1));
        assert_eq!(rx.recv(), Ok(2));
        assert!(rx.recv().is_err());
        sender.join().unwrap();
    });
}
