//! `preempt::sync::Mutex`: mutual exclusion under `Full`, priority inheritance through
//! chains, deadlock reports. The green threads share only atomics and the mutexes under
//! test, which keeps the `preemptive` contract (`support::full`).

mod support;

use preempt::Priority;
use preempt::sync::{LockPiError, Mutex};
use preempt::thread::{self, Builder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::time::{Duration, Instant};

#[test]
fn mutual_exclusion_under_full_preemption() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0: every 100 µs tick switches, inside critical sections
    // too (the fair class's slices would let most threads finish uninterrupted).
    let rt = support::full_rr(Duration::from_micros(100));
    let m = Arc::new(Mutex::new(0u64));
    let m2 = m.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..64)
            .map(|_| {
                let m = m2.clone();
                thread::spawn(move || {
                    for _ in 0..10_000 {
                        let mut g = m.lock().unwrap();
                        let v = *g;
                        std::hint::spin_loop();
                        *g = std::hint::black_box(v) + 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    assert_eq!(*m.lock().unwrap(), 640_000);
    // The timer interrupt did switch the threads (in the handler or at the end of a
    // section it was deferred in).
    assert!(rt.stats().switches_involuntary > 0);
}

#[test]
fn relocking_is_a_deadlock_error() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let h = Builder::new()
            .name("relocker".into())
            .spawn(|| {
                let m = Mutex::new(1);
                let _g = m.lock().unwrap();
                match m.lock_pi() {
                    Err(LockPiError::Deadlock(d)) => d.to_string(),
                    other => panic!("expected a deadlock, got {other:?}"),
                }
            })
            .unwrap();
        let msg = h.join().unwrap();
        assert!(msg.contains("thread 'relocker'"), "{msg}");
        // lock() panics with the same report.
        let h = thread::spawn(|| {
            let m = Mutex::new(1);
            let _g = m.lock().unwrap();
            let _again = m.lock();
        });
        let err = h.join().unwrap_err();
        let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(msg.starts_with("deadlock: thread"), "{msg}");
    });
}

#[test]
fn ab_ba_is_reported_with_the_chain() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    let msg = rt.block_on(|| {
        let (a, b) = (Arc::new(Mutex::new(())), Arc::new(Mutex::new(())));
        let step = Arc::new(AtomicU32::new(0));
        let t1 = {
            let (a, b, step) = (a.clone(), b.clone(), step.clone());
            Builder::new()
                .name("first".into())
                .spawn(move || {
                    let _ga = a.lock().unwrap();
                    step.fetch_add(1, SeqCst);
                    while step.load(SeqCst) < 2 {
                        thread::yield_now();
                    }
                    // Blocks: `second` holds b. Granted once `second` gives up.
                    let _gb = b.lock().unwrap();
                })
                .unwrap()
        };
        let t2 = {
            let (a, b, step) = (a.clone(), b.clone(), step.clone());
            Builder::new()
                .name("second".into())
                .spawn(move || {
                    let gb = b.lock().unwrap();
                    step.fetch_add(1, SeqCst);
                    // Wait until `first` is blocked on b (it is then not runnable).
                    while step.load(SeqCst) < 2 {
                        thread::yield_now();
                    }
                    for _ in 0..10 {
                        thread::yield_now();
                    }
                    let r = match a.lock_pi() {
                        Err(LockPiError::Deadlock(d)) => d.to_string(),
                        Ok(_) => "acquired".to_owned(),
                        Err(e) => e.to_string(),
                    };
                    drop(gb);
                    r
                })
                .unwrap()
        };
        let r = t2.join().unwrap();
        t1.join().unwrap();
        r
    });
    assert_eq!(
        msg,
        "deadlock: thread 'second' waits for a mutex held by 'first', which waits for a \
         mutex held by 'second'"
    );
}

/// T1 (prio 1) holds A; T2 (prio 2) holds B and waits for A; T3 (prio 3) holds C and
/// waits for B; H (prio 50) waits for C while a prio-20 spinner runs, which would starve
/// T1. With inheritance T1 runs at 50 through the chain and H gets C within
/// milliseconds; without it H waits until the spinner gives up (its 1 s bound).
///
/// Choreography without sleeps: the orchestrator runs at priority 0, so each thread it
/// spawns runs at once, until it blocks: T1 parks holding A, T2 and T3 block on their
/// mutexes. The spinner spawns H (which preempts it), H releases T1 and blocks on C,
/// and the spinner spins.
fn chain_of_three(inherit: bool) -> Duration {
    let rt = support::full(Duration::from_millis(1));
    rt.block_on(move || {
        let mk = || {
            Arc::new(if inherit {
                Mutex::new(())
            } else {
                Mutex::without_inheritance(())
            })
        };
        let (a, b, c) = (mk(), mk(), mk());
        let go = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let spawn = |prio: u8, f: Box<dyn FnOnce() -> Duration + Send>| {
            Builder::new()
                .priority(Priority::new(prio))
                .spawn(f)
                .unwrap()
        };
        let t1 = {
            let (a, go) = (a.clone(), go.clone());
            spawn(
                1,
                Box::new(move || {
                    let _g = a.lock().unwrap();
                    while !go.load(SeqCst) {
                        thread::park();
                    }
                    // The critical section: 2 ms of CPU, with the spinner runnable.
                    let t0 = Instant::now();
                    while t0.elapsed() < Duration::from_millis(2) {
                        std::hint::spin_loop();
                    }
                    Duration::ZERO
                }),
            )
        };
        let t2 = {
            let (a, b) = (a.clone(), b.clone());
            spawn(
                2,
                Box::new(move || {
                    let _gb = b.lock().unwrap();
                    let _ga = a.lock().unwrap();
                    Duration::ZERO
                }),
            )
        };
        let t3 = {
            let (b, c) = (b.clone(), c.clone());
            spawn(
                3,
                Box::new(move || {
                    let _gc = c.lock().unwrap();
                    let _gb = b.lock().unwrap();
                    Duration::ZERO
                }),
            )
        };
        let t1_thread = t1.thread().clone();
        let spinner = spawn(
            20,
            Box::new(move || {
                let h = {
                    let done = done.clone();
                    Builder::new()
                        .priority(Priority::new(50))
                        .spawn(move || {
                            go.store(true, SeqCst);
                            t1_thread.unpark();
                            let t0 = Instant::now();
                            let _g = c.lock().unwrap();
                            let waited = t0.elapsed();
                            done.store(true, SeqCst);
                            waited
                        })
                        .unwrap()
                };
                let t0 = Instant::now();
                while !done.load(SeqCst) && t0.elapsed() < Duration::from_secs(1) {
                    std::hint::spin_loop();
                }
                h.join().unwrap()
            }),
        );
        let waited = spinner.join().unwrap();
        for t in [t1, t2, t3] {
            t.join().unwrap();
        }
        waited
    })
}

#[test]
fn inheritance_is_transitive_across_a_chain_of_three() {
    let _l = support::runtime_lock();
    let with = chain_of_three(true);
    let without = chain_of_three(false);
    eprintln!("H waited {with:?} with inheritance, {without:?} without");
    assert!(
        with < Duration::from_millis(200),
        "with inheritance: {with:?}"
    );
    assert!(
        without >= Duration::from_millis(900),
        "without: {without:?}"
    );
}

#[test]
fn a_panicking_holder_poisons_like_std() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let m = Arc::new(Mutex::new(7));
        let m2 = m.clone();
        let r = thread::spawn(move || {
            let _g = m2.lock().unwrap();
            panic!("boom");
        })
        .join();
        assert!(r.is_err());
        assert!(m.is_poisoned());
        let g = m.lock().unwrap_err().into_inner();
        assert_eq!(*g, 7);
        drop(g);
        m.clear_poison();
        assert_eq!(*m.lock().unwrap(), 7);
    });
}

/// A thread that exits holding a mutex (its guard leaked): its waiter takes over and
/// finds the mutex poisoned with the owner named; so does a later locker when nobody
/// was waiting. Neither hangs.
#[test]
fn an_owner_that_exits_holding_the_mutex_poisons_it_and_is_named() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    rt.block_on(|| {
        // With a waiter queued when the owner exits.
        let m = Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let owner = Builder::new()
            .name("leaker".into())
            .spawn(move || {
                std::mem::forget(m2.lock().unwrap());
                // Let the waiter queue before we exit.
                for _ in 0..3 {
                    thread::yield_now();
                }
            })
            .unwrap();
        let m3 = m.clone();
        let waiter = thread::spawn(move || {
            let r = m3.lock();
            let poisoned = r.is_err();
            drop(r);
            poisoned
        });
        owner.join().unwrap();
        assert!(waiter.join().unwrap(), "the waiter did not see the poison");
        assert_eq!(m.poisoned_by().as_deref(), Some("leaker"));

        // With nobody waiting: the next locker takes over.
        let m = Arc::new(Mutex::new(2));
        let m2 = m.clone();
        Builder::new()
            .name("leaker2".into())
            .spawn(move || std::mem::forget(m2.lock().unwrap()))
            .unwrap()
            .join()
            .unwrap();
        let g = m.lock().unwrap_err().into_inner();
        assert_eq!(*g, 2);
        drop(g);
        assert_eq!(m.poisoned_by().as_deref(), Some("leaker2"));
        m.clear_poison();
        assert_eq!(*m.lock().unwrap(), 2);
    });
}

/// Plain OS threads park on a contended mutex (through parking_lot_core) and green
/// threads queue on it; every increment lands, nobody hangs.
#[test]
fn os_threads_and_green_threads_share_a_mutex() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(200));
    let m = Arc::new(Mutex::new(0u64));
    let os: Vec<_> = (0..2)
        .map(|_| {
            let m = m.clone();
            std::thread::spawn(move || {
                for _ in 0..20_000 {
                    let mut g = m.lock().unwrap();
                    *g += 1;
                    if *g % 64 == 0 {
                        std::thread::yield_now(); // hold it a while now and then
                    }
                }
            })
        })
        .collect();
    let m2 = m.clone();
    rt.block_on(move || {
        let hs: Vec<_> = (0..4)
            .map(|_| {
                let m = m2.clone();
                thread::spawn(move || {
                    for _ in 0..20_000 {
                        *m.lock().unwrap() += 1;
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
    });
    for t in os {
        t.join().unwrap();
    }
    assert_eq!(*m.lock().unwrap(), 120_000);
}
