//! Condvar, Semaphore, RwLock, Barrier and channels, under `Model::Full` with a fast
//! tick, between green threads and with plain OS threads. The green threads share
//! only atomics and the primitives under test (the `preemptive` contract).

mod support;

use preempt::Priority;
use preempt::sync::mpsc::{self, RecvTimeoutError, TryRecvError, TrySendError};
use preempt::sync::{Barrier, Condvar, Mutex, RwLock, Semaphore};
use preempt::thread::{self, Builder};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

fn rt() -> preempt::Runtime {
    support::full(Duration::from_micros(200))
}

/// A bounded buffer of one slot through a Mutex + two Condvars: 4 producers × 5,000
/// items, 4 consumers; every item arrives exactly once (a lost wakeup would hang, and
/// the watchdog bound fails the test instead).
#[test]
fn condvar_has_no_lost_wakeups() {
    let _l = support::runtime_lock();
    let rt = rt();
    let sum = rt.block_on(|| {
        let slot = Arc::new((Mutex::new(None::<u64>), Condvar::new(), Condvar::new()));
        let producers: Vec<_> = (0..4u64)
            .map(|p| {
                let slot = slot.clone();
                thread::spawn(move || {
                    let (m, not_empty, not_full) = &*slot;
                    for i in 0..5_000u64 {
                        let mut g = not_full
                            .wait_while(m.lock().unwrap(), |s| s.is_some())
                            .unwrap();
                        *g = Some(p * 5_000 + i);
                        drop(g);
                        not_empty.notify_one();
                    }
                })
            })
            .collect();
        let consumers: Vec<_> = (0..4)
            .map(|_| {
                let slot = slot.clone();
                thread::spawn(move || {
                    let (m, not_empty, not_full) = &*slot;
                    let mut sum = 0u64;
                    for _ in 0..5_000 {
                        let mut g = not_empty
                            .wait_while(m.lock().unwrap(), |s| s.is_none())
                            .unwrap();
                        sum += g.take().unwrap();
                        drop(g);
                        not_full.notify_one();
                    }
                    sum
                })
            })
            .collect();
        for p in producers {
            p.join().unwrap();
        }
        consumers
            .into_iter()
            .map(|c| c.join().unwrap())
            .sum::<u64>()
    });
    assert_eq!(sum, (0..20_000u64).sum());
}

#[test]
fn condvar_wait_timeout_times_out_and_os_threads_notify_green_waiters() {
    let _l = support::runtime_lock();
    let rt = rt();
    let pair = Arc::new((Mutex::new(false), Condvar::new()));
    let p2 = pair.clone();
    rt.block_on(move || {
        let (m, cv) = &*p2;
        let t0 = Instant::now();
        let (g, r) = cv
            .wait_timeout(m.lock().unwrap(), Duration::from_millis(5))
            .unwrap();
        assert!(r.timed_out());
        assert!(t0.elapsed() >= Duration::from_millis(5));
        drop(g);
        // A plain OS thread sets the flag and notifies.
        let p3 = p2.clone();
        let os = std::thread::spawn(move || {
            let (m, cv) = &*p3;
            *m.lock().unwrap() = true;
            cv.notify_all();
        });
        let g = cv.wait_while(m.lock().unwrap(), |f| !*f).unwrap();
        assert!(*g);
        drop(g);
        os.join().unwrap();
    });
}

#[test]
fn semaphore_bounds_concurrency_and_serves_by_priority() {
    let _l = support::runtime_lock();
    let rt = rt();
    rt.block_on(|| {
        let sem = Arc::new(Semaphore::new(3));
        let inside = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..16)
            .map(|_| {
                let (sem, inside, max) = (sem.clone(), inside.clone(), max.clone());
                thread::spawn(move || {
                    for _ in 0..200 {
                        let _p = sem.acquire();
                        let n = inside.fetch_add(1, SeqCst) + 1;
                        max.fetch_max(n, SeqCst);
                        thread::yield_now();
                        inside.fetch_sub(1, SeqCst);
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(max.load(SeqCst), 3);
        assert_eq!(sem.available_permits(), 3);

        // Priority order: three waiters queue while the only permit is held; release
        // serves the highest first.
        let sem = Arc::new(Semaphore::new(1));
        let held = sem.try_acquire().unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let hs: Vec<_> = [5u8, 30, 15]
            .into_iter()
            .map(|p| {
                let (sem, order) = (sem.clone(), order.clone());
                Builder::new()
                    .priority(Priority::new(p))
                    .spawn(move || {
                        let _permit = sem.acquire();
                        order.lock().unwrap().push(p);
                    })
                    .unwrap()
            })
            .collect();
        drop(held);
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![30, 15, 5]);
        assert!(sem.acquire_timeout(Duration::from_millis(1)).is_some());
        let _p = sem.acquire();
        assert!(sem.acquire_timeout(Duration::from_millis(2)).is_none());
    });
}

#[test]
fn barrier_rounds_have_one_leader_each() {
    let _l = support::runtime_lock();
    let rt = rt();
    rt.block_on(|| {
        let b = Arc::new(Barrier::new(8));
        let leaders = Arc::new(AtomicUsize::new(0));
        let round = Arc::new(AtomicUsize::new(0));
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (b, leaders, round) = (b.clone(), leaders.clone(), round.clone());
                thread::spawn(move || {
                    for r in 0..100 {
                        // Nobody is more than one round ahead.
                        assert!(round.load(SeqCst) >= r * 8);
                        round.fetch_add(1, SeqCst);
                        if b.wait().is_leader() {
                            leaders.fetch_add(1, SeqCst);
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(leaders.load(SeqCst), 100);
    });
}

#[test]
fn rwlock_excludes_writers_and_prefers_them() {
    let _l = support::runtime_lock();
    let rt = rt();
    rt.block_on(|| {
        let lock = Arc::new(RwLock::new((0u64, 0u64)));
        let hs: Vec<_> = (0..8)
            .map(|i| {
                let lock = lock.clone();
                thread::spawn(move || {
                    for _ in 0..2_000 {
                        if i % 2 == 0 {
                            let mut g = lock.write().unwrap();
                            g.0 += 1;
                            thread::yield_now();
                            g.1 += 1;
                        } else {
                            let g = lock.read().unwrap();
                            assert_eq!(g.0, g.1, "a reader saw a half-done write");
                        }
                    }
                })
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(*lock.read().unwrap(), (8_000, 8_000));

        // A waiting writer keeps new readers out.
        let r1 = lock.read().unwrap();
        let wrote = Arc::new(AtomicBool::new(false));
        let w = {
            let (lock, wrote) = (lock.clone(), wrote.clone());
            Builder::new()
                .priority(Priority::new(10))
                .spawn(move || {
                    lock.write().unwrap().0 = 1;
                    wrote.store(true, SeqCst);
                })
                .unwrap()
        };
        // The writer (higher priority) ran at once and now waits for r1.
        assert!(
            lock.try_read().is_err(),
            "a reader got past a waiting writer"
        );
        drop(r1);
        w.join().unwrap();
        assert!(wrote.load(SeqCst));
    });
}

#[test]
fn channels_keep_order_and_disconnect_like_std() {
    let _l = support::runtime_lock();
    let rt = rt();
    rt.block_on(|| {
        let (tx, rx) = mpsc::channel();
        let senders: Vec<_> = (0..4u64)
            .map(|s| {
                let tx = tx.clone();
                thread::spawn(move || {
                    for i in 0..2_500u64 {
                        tx.send((s, i)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 4];
        for (s, i) in rx.iter() {
            assert_eq!(next[s as usize], i, "per-sender order");
            next[s as usize] += 1;
        }
        assert_eq!(next, [2_500; 4]);
        for s in senders {
            s.join().unwrap();
        }
        assert_eq!(rx.try_recv(), Err(TryRecvError::Disconnected));

        // Bounded: a full channel blocks the sender, try_send says Full.
        let (tx, rx) = mpsc::sync_channel(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        assert!(matches!(tx.try_send(3), Err(TrySendError::Full(3))));
        let h = thread::spawn(move || {
            for i in 3..1_000 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<i32> = rx.iter().collect();
        assert_eq!(got, (1..1_000).collect::<Vec<_>>());
        h.join().unwrap();

        // A rendezvous: send returns only once the value is taken; try_send needs a
        // receiver already waiting.
        let (tx, rx) = mpsc::sync_channel(0);
        assert!(matches!(tx.try_send(0), Err(TrySendError::Full(0))));
        let receiving = Arc::new(AtomicBool::new(false));
        let r2 = receiving.clone();
        let sender = thread::spawn(move || {
            tx.send(1).unwrap();
            assert!(r2.load(SeqCst), "send returned before the value was taken");
        });
        thread::yield_now(); // the sender runs and blocks in send
        receiving.store(true, SeqCst);
        assert_eq!(rx.recv(), Ok(1));
        sender.join().unwrap();

        // The receiver gone: send returns the value.
        let (tx, rx) = mpsc::channel();
        drop(rx);
        assert_eq!(tx.send(7).unwrap_err().0, 7);

        // recv_timeout fires, not early.
        let (_tx, rx) = mpsc::channel::<()>();
        let t0 = Instant::now();
        assert_eq!(
            rx.recv_timeout(Duration::from_millis(3)),
            Err(RecvTimeoutError::Timeout)
        );
        assert!(t0.elapsed() >= Duration::from_millis(3));
    });
}

/// Plain OS threads and green threads on both ends of channels.
#[test]
fn os_threads_and_green_threads_exchange_through_channels() {
    let _l = support::runtime_lock();
    let rt = rt();
    let (to_green, from_os) = mpsc::sync_channel::<u64>(4);
    let (to_os, from_green) = mpsc::channel::<u64>();
    let os = std::thread::spawn(move || {
        let mut sum = 0;
        for i in 0..10_000 {
            to_green.send(i).unwrap();
        }
        drop(to_green);
        for v in from_green.iter() {
            sum += v;
        }
        sum
    });
    rt.block_on(move || {
        for v in from_os.iter() {
            to_os.send(v * 2).unwrap();
        }
    });
    assert_eq!(os.join().unwrap(), 2 * (0..10_000u64).sum::<u64>());
}

/// Green threads that notify a Condvar on which plain OS threads sleep wake them
/// through `parking_lot_core`, whose bucket lock is an OS lock: a green thread
/// preempted while holding it leaves the next green thread of its CPU that wakes an OS
/// thread blocked in the kernel for good (H3 inside the runtime). The blocking pool is
/// such a Condvar, fed by green threads: 6 of them submit small jobs and compute in
/// between, under a fast round-robin tick. The watchdog bound fails the test on a hang.
#[test]
fn green_threads_wake_os_threads_under_preemption() {
    let _l = support::runtime_lock();
    let progress = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            let rt = support::full_rr(Duration::from_micros(100));
            let sums = rt.block_on(move || {
                let until = Instant::now() + Duration::from_millis(1500);
                let hs: Vec<_> = (0..6u64)
                    .map(|i| {
                        let progress = progress.clone();
                        thread::spawn(move || {
                            let (mut want, mut got) = (0, 0);
                            let mut n = 0u64;
                            while Instant::now() < until {
                                n += 1;
                                want += i * n;
                                got += preempt::task::spawn_blocking(move || i * n).join().unwrap();
                                progress.fetch_add(1, SeqCst);
                                support::spin(Duration::from_micros(20));
                            }
                            (want, got)
                        })
                    })
                    .collect();
                hs.into_iter()
                    .map(|h| h.join().unwrap())
                    .collect::<Vec<_>>()
            });
            done.store(true, SeqCst);
            (sums, rt.stats())
        })
    };
    support::watchdog(
        Duration::from_secs(60),
        Duration::from_secs(5),
        || progress.load(SeqCst) as u64,
        || done.load(SeqCst),
    );
    let (sums, s) = worker.join().unwrap();
    for (want, got) in sums {
        assert_eq!(want, got, "a job's result was lost");
    }
    assert!(progress.load(SeqCst) > 1000, "{}", progress.load(SeqCst));
    assert!(s.preemptions > 100, "{s:?}");
}
