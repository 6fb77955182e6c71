//! Spawning, joining, dispatch order, panics, scopes — `Model::None`.

mod support;

use preempt::Priority;
use preempt::thread::{self, Builder};
use std::sync::{Arc, Mutex};

#[test]
fn ten_thousand_threads_spawned_and_joined() {
    let _l = support::runtime_lock();
    let rt = Arc::new(support::runtime());
    let r = rt.clone();
    let (sum, s) = rt.block_on(move || {
        let handles: Vec<_> = (0..10_000u64)
            .map(|i| thread::spawn(move || i * i))
            .collect();
        let sum = handles
            .into_iter()
            .enumerate()
            .map(|(i, h)| {
                let v = h.join().unwrap();
                assert_eq!(v, (i as u64) * (i as u64));
                v
            })
            .sum::<u64>();
        // Every joined thread has switched out for the last time before its joiner ran
        // again, so its exit is counted; `main` itself is still running.
        (sum, r.stats())
    });
    let n = 10_000u64;
    assert_eq!(sum, (n - 1) * n * (2 * n - 1) / 6);
    assert_eq!(s.spawned, 10_001);
    assert_eq!(s.exited, 10_000);
    assert_eq!(s.live_threads, 1);
    drop(Arc::into_inner(rt).unwrap());
}

#[test]
fn higher_priority_runs_first() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let order = rt.block_on(|| {
        let order = Arc::new(Mutex::new(Vec::new()));
        let handles: Vec<_> = [10u8, 50, 0, 30, 99, 1, 0, 75]
            .into_iter()
            .map(|p| {
                let order = order.clone();
                Builder::new()
                    .priority(Priority::new(p))
                    .spawn(move || order.lock().unwrap().push(p))
                    .unwrap()
            })
            .collect();
        // None of them has run yet: Model::None does not preempt the spawner.
        assert!(order.lock().unwrap().is_empty());
        for h in handles {
            h.join().unwrap();
        }
        Arc::try_unwrap(order).unwrap().into_inner().unwrap()
    });
    assert_eq!(order, [99, 75, 50, 30, 10, 1, 0, 0]);
}

#[test]
fn fifo_within_a_priority() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0 (the fair class orders by virtual deadline instead).
    let rt = support::runtime_rr();
    for prio in [Priority::DEFAULT, Priority::new(42)] {
        let order = rt.block_on(move || {
            let order = Arc::new(Mutex::new(Vec::new()));
            let handles: Vec<_> = (0..32)
                .map(|i| {
                    let order = order.clone();
                    Builder::new()
                        .priority(prio)
                        .spawn(move || {
                            order.lock().unwrap().push(i);
                            // A yield goes behind every equal: a second round in order.
                            thread::yield_now();
                            order.lock().unwrap().push(100 + i);
                        })
                        .unwrap()
                })
                .collect();
            for h in handles {
                h.join().unwrap();
            }
            Arc::try_unwrap(order).unwrap().into_inner().unwrap()
        });
        let expected: Vec<i32> = (0..32).chain(100..132).collect();
        assert_eq!(order, expected, "priority {prio}");
    }
}

#[test]
fn panic_is_returned_by_join() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let h = Builder::new()
            .name("doomed".into())
            .spawn(|| -> u32 { panic!("boom {}", 7) })
            .unwrap();
        let err = h.join().unwrap_err();
        let msg = err
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| err.downcast_ref::<&str>().copied());
        assert_eq!(msg, Some("boom 7"));
        let h = thread::spawn(|| std::panic::panic_any(42u64));
        assert_eq!(*h.join().unwrap_err().downcast::<u64>().unwrap(), 42);
        // The runtime is unharmed.
        assert_eq!(thread::spawn(|| 5).join().unwrap(), 5);
    });
    // A panic in block_on's own closure reaches its caller.
    let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        rt.block_on(|| panic!("in main"));
    }))
    .unwrap_err();
    assert_eq!(*err.downcast_ref::<&str>().unwrap(), "in main");
    assert_eq!(rt.block_on(|| 1), 1);
}

#[test]
fn panic_message_names_the_green_thread() {
    if support::is_child("panic_message_names_the_green_thread") {
        let rt = support::runtime();
        rt.block_on(|| {
            let h = Builder::new()
                .name("green-worker".into())
                .spawn(|| panic!("a message"))
                .unwrap();
            assert!(h.join().is_err());
        });
        return;
    }
    let out = support::run_child("panic_message_names_the_green_thread");
    let err = support::stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("thread 'green-worker' panicked at tests/sched_basic.rs"),
        "{err}"
    );
    assert!(err.contains("a message"), "{err}");
}

#[test]
fn scope_borrows_locals() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let mut numbers = vec![1u64, 2, 3, 4];
        let total = Mutex::new(0u64);
        let (left, right) = numbers.split_at_mut(2);
        thread::scope(|s| {
            s.spawn(|| {
                left.iter_mut().for_each(|x| *x *= 10);
                *total.lock().unwrap() += left.iter().sum::<u64>();
            });
            let h = s.spawn(|| {
                right.iter_mut().for_each(|x| *x *= 100);
                right.iter().sum::<u64>()
            });
            *total.lock().unwrap() += h.join().unwrap();
        });
        assert_eq!(numbers, [10, 20, 300, 400]);
        assert_eq!(total.into_inner().unwrap(), 730);

        // An unjoined panicking scoped thread makes the scope panic, after every
        // thread has finished.
        let finished = std::sync::atomic::AtomicBool::new(false);
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            thread::scope(|s| {
                s.spawn(|| panic!("scoped"));
                s.spawn(|| {
                    thread::yield_now();
                    finished.store(true, std::sync::atomic::Ordering::SeqCst);
                });
            })
        }));
        assert!(r.is_err());
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
    });
}

#[test]
fn nested_spawns() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    // A binary tree of threads, 8 levels deep: each spawns two children and sums them.
    fn tree(depth: u32) -> u64 {
        if depth == 0 {
            return 1;
        }
        let a = thread::spawn(move || tree(depth - 1));
        let b = thread::spawn(move || tree(depth - 1));
        a.join().unwrap() + b.join().unwrap() + 1
    }
    assert_eq!(rt.block_on(|| tree(8)), (1 << 9) - 1);
    assert_eq!(rt.stats().spawned, 1 + ((1 << 9) - 2));
}

#[test]
fn current_names_id_and_priority() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let me = thread::current();
        assert_eq!(me.name(), Some("main"));
        assert_eq!(me.priority(), Priority::DEFAULT);
        let h = Builder::new()
            .name("named".into())
            .priority(Priority::new(7))
            .spawn(|| {
                let t = thread::current();
                (t.name().map(str::to_owned), t.priority(), t.id())
            })
            .unwrap();
        let id = h.thread().id();
        let (name, prio, seen_id) = h.join().unwrap();
        assert_eq!(name.as_deref(), Some("named"));
        assert_eq!(prio, Priority::new(7));
        assert_eq!(seen_id, id);
        assert_ne!(id, me.id());
        assert!(
            thread::spawn(|| thread::current().name().is_none())
                .join()
                .unwrap()
        );
    });
}

#[test]
fn sequential_runtimes_and_spawn_from_outside() {
    let _l = support::runtime_lock();
    for round in 0..3u32 {
        let rt = support::runtime();
        // Spawned from this plain OS thread, joined from it too.
        let h = rt.spawn(move || round * 2);
        assert_eq!(h.join().unwrap(), round * 2);
        assert_eq!(rt.block_on(move || round + 1), round + 1);
        drop(rt);
    }
}

#[test]
fn drop_waits_for_detached_threads() {
    let _l = support::runtime_lock();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let rt = support::runtime();
    let d = done.clone();
    rt.block_on(move || {
        // Detached: its JoinHandle is dropped at once.
        drop(thread::spawn(move || {
            thread::sleep(std::time::Duration::from_millis(30));
            d.store(true, std::sync::atomic::Ordering::SeqCst);
        }));
    });
    drop(rt);
    assert!(done.load(std::sync::atomic::Ordering::SeqCst));
}

#[test]
fn stats_count_exactly_what_happened() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0, so that every yield is a switch.
    let rt = Arc::new(support::runtime_rr());
    let r = rt.clone();
    const K: u64 = 1000;
    let (switches, spawned, exited, local_wakeups) = rt.block_on(move || {
        let before = r.stats();
        let a = thread::spawn(|| (0..K).for_each(|_| thread::yield_now()));
        let b = thread::spawn(|| (0..K).for_each(|_| thread::yield_now()));
        a.join().unwrap(); // main → a
        b.join().unwrap();
        let after = r.stats();
        (
            after.switches_voluntary - before.switches_voluntary,
            after.spawned - before.spawned,
            after.exited - before.exited,
            after.wakeups_local - before.wakeups_local,
        )
    });
    // main → a (join), then 2K yields alternating a, b, each a switch; a exits → b
    // (queued before main, whom a's exit woke); b exits → main; b was done before main
    // joined it, so that join does not block.
    assert_eq!(switches, 2 * K + 3);
    assert_eq!(spawned, 2);
    assert_eq!(exited, 2);
    assert_eq!(local_wakeups, 1, "only a's exit woke main");
    drop(Arc::into_inner(rt).unwrap());
}
