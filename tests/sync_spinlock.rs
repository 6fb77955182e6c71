//! `SpinLock` and `RawSpinLock` (issue: kernel-grade synchronization), under `Model::Full`.
//!
//! The green threads here share only atomics and the locks under test, which keeps the
//! `preemptive` contract (`support::full`).

mod support;

use preempt::sync::{RawSpinLock, SpinLock};
use preempt::thread;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// HAZARDS.md H14: a preempted spinlock holder would leave the others spinning forever.
/// Impossible by construction: the holder runs with preemption off. Eight threads do a
/// slow read–spin–write increment under the lock with a 100 µs tick: the total is
/// exact, and the tick did land inside critical sections (it was deferred there, and
/// the threads were switched at the sections' ends).
#[test]
fn h14_holders_are_never_preempted_and_updates_are_exact() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0: every tick tries to switch, inside sections too.
    let rt = support::full_rr(Duration::from_micros(100));
    const THREADS: u64 = 8;
    const ITERS: u64 = 20_000;
    let lock = Arc::new(SpinLock::new(0u64));
    let l2 = lock.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..THREADS)
            .map(|_| {
                let lock = l2.clone();
                thread::spawn(move || {
                    for _ in 0..ITERS {
                        let mut g = lock.lock();
                        let v = *g;
                        for _ in 0..20 {
                            std::hint::spin_loop();
                        }
                        *g = std::hint::black_box(v) + 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(*lock.lock(), THREADS * ITERS);
    let s = rt.stats();
    // Ticks landed inside critical sections and were deferred to the guard's release,
    // where the switch happened (in release builds nearly every tick lands inside, so
    // the handler itself may never preempt).
    assert!(
        s.deferred_atomic > 0,
        "no tick landed in a critical section: {s:?}"
    );
    assert!(s.switches_involuntary > 0, "{s:?}");
}

/// A plain OS thread and green threads contend on one `RawSpinLock`.
#[test]
fn os_threads_and_green_threads_share_a_raw_spinlock() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(200));
    let lock = Arc::new(RawSpinLock::new(0u64));
    let stop = Arc::new(AtomicBool::new(false));
    let os = {
        let (lock, stop) = (lock.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            while !stop.load(Relaxed) || n < 10_000 {
                *lock.lock() += 1;
                n += 1;
            }
            n
        })
    };
    let l2 = lock.clone();
    let green = rt.block_on(move || {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let lock = l2.clone();
                thread::spawn(move || {
                    for _ in 0..10_000 {
                        *lock.lock() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        40_000u64
    });
    stop.store(true, Relaxed);
    let os_n = os.join().unwrap();
    assert_eq!(*lock.lock(), green + os_n);
}

#[test]
fn recursion_on_one_carrier_is_reported_not_a_hang() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let msg = rt.block_on(|| {
        let h = thread::spawn(|| {
            let lock = SpinLock::new(());
            let _a = lock.lock();
            let _b = lock.lock();
        });
        let err = h.join().unwrap_err();
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    });
    assert!(msg.contains("SpinLock recursion"), "{msg}");
    // The guard was released while unwinding: preemption is enabled again.
    assert_eq!(rt.block_on(preempt::count), 0);
}

#[test]
fn try_lock_and_irqsave() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    rt.block_on(|| {
        let lock = SpinLock::new(5);
        {
            let g = lock.lock();
            assert!(preempt::in_atomic());
            assert!(lock.try_lock().is_none());
            assert_eq!(*g, 5);
        }
        assert!(!preempt::in_atomic());
        {
            let mut g = lock.lock_irqsave();
            assert!(preempt::irq::irqs_disabled() && preempt::in_atomic());
            *g += 1;
        }
        assert!(!preempt::irq::irqs_disabled());
        assert_eq!(*lock.try_lock().unwrap(), 6);
        assert_eq!(format!("{lock:?}"), "SpinLock { data: 6, .. }");
    });
}

/// Sleeping while a spinlock is held is the `might_sleep` bug report.
#[test]
fn sleeping_under_a_spinlock_is_reported() {
    const T: &str = "sleeping_under_a_spinlock_is_reported";
    if support::is_child(T) {
        let rt = support::runtime();
        let r = rt.block_on(|| {
            thread::Builder::new()
                .name("holder".into())
                .spawn(|| {
                    let lock = SpinLock::new(0);
                    let _g = lock.lock();
                    thread::sleep(Duration::from_millis(1));
                })
                .unwrap()
                .join()
        });
        assert!(r.is_err());
        return;
    }
    let t0 = Instant::now();
    let out = support::run_child(T);
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains(
            "BUG: sleeping function called from invalid context at tests/sync_spinlock.rs:"
        ),
        "{err}"
    );
    assert!(err.contains("preempt_count: 0x1,"), "{err}");
    assert!(err.contains("thread: 'holder'"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(30));
}
