//! Timers, park/unpark, and wakeups from outside the carrier — `Model::None`.

mod support;

use preempt::thread;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

#[test]
fn sleep_wakes_no_earlier_than_asked_and_in_deadline_order() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let woke = rt.block_on(|| {
        let woke = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let handles: Vec<_> = [30u64, 10, 20, 5, 15, 1]
            .into_iter()
            .map(|ms| {
                let woke = woke.clone();
                thread::spawn(move || {
                    let asked = Duration::from_millis(ms);
                    let t0 = Instant::now();
                    thread::sleep(asked);
                    let slept = t0.elapsed();
                    assert!(slept >= asked, "slept {slept:?} < {asked:?}");
                    woke.lock().unwrap().push(ms);
                })
            })
            .collect();
        // sleep_until with a deadline in the past returns at once.
        thread::sleep_until(start);
        for h in handles {
            h.join().unwrap();
        }
        Arc::try_unwrap(woke).unwrap().into_inner().unwrap()
    });
    assert_eq!(woke, [1, 5, 10, 15, 20, 30]);
    // The carrier idled in epoll while everyone slept, rather than spinning.
    assert!(rt.stats().idle_waits >= 1);
}

#[test]
fn sleep_until_deadline_is_respected() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        for us in [50u64, 200, 1_000, 3_000] {
            let deadline = Instant::now() + Duration::from_micros(us);
            thread::sleep_until(deadline);
            assert!(Instant::now() >= deadline);
        }
        thread::sleep(Duration::ZERO);
    });
}

#[test]
fn park_unpark_between_green_threads() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    rt.block_on(|| {
        let flag = Arc::new(AtomicBool::new(false));
        let f = flag.clone();
        let parker = thread::spawn(move || {
            let mut parks = 0;
            while !f.load(Ordering::SeqCst) {
                thread::park();
                parks += 1;
            }
            parks
        });
        thread::yield_now(); // let it park
        flag.store(true, Ordering::SeqCst);
        parker.thread().unpark();
        assert!(parker.join().unwrap() >= 1);

        // A token given before park makes the next park return at once.
        thread::current().unpark();
        thread::park();

        // park_timeout returns by itself.
        let t0 = Instant::now();
        thread::park_timeout(Duration::from_millis(5));
        assert!(t0.elapsed() >= Duration::from_millis(5));
    });
}

#[test]
fn unpark_and_join_from_plain_os_threads() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let flag = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel();
    let f = flag.clone();
    // Spawned from this OS thread; it parks until a std thread unparks it.
    let green = rt.spawn(move || {
        ready_tx.send(()).unwrap();
        let mut parks = 0u32;
        loop {
            thread::park();
            parks += 1;
            if f.load(Ordering::SeqCst) {
                return parks;
            }
        }
    });
    let handle = green.thread().clone();
    ready_rx.recv().unwrap();
    std::thread::scope(|s| {
        s.spawn(|| {
            // Give the carrier a moment to go idle (the green thread parked), so the
            // wakeup usually has to ring the doorbell; correctness does not depend on it.
            let idle = rt.stats().idle_waits;
            let t0 = Instant::now();
            while rt.stats().idle_waits == idle && t0.elapsed() < Duration::from_millis(200) {
                std::thread::yield_now();
            }
            flag.store(true, Ordering::SeqCst);
            handle.unpark();
        });
    });
    // Joined from a plain OS thread, too.
    assert!(green.join().unwrap() >= 1);
    assert!(rt.stats().wakeups_remote >= 1);
}

#[test]
fn no_lost_wakeups_between_os_and_green_threads() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    // Many rounds of cross-thread handoff through a slot: a lost wakeup would leave the
    // green thread parked forever (the watchdog then fails the test instead).
    const ROUNDS: u64 = 5_000;
    let slot = Arc::new(Mutex::new(None::<u64>));
    let consumed = Arc::new(AtomicU64::new(0));
    let (s, c) = (slot.clone(), consumed.clone());
    let green = rt.spawn(move || {
        for i in 0..ROUNDS {
            loop {
                if let Some(v) = s.lock().unwrap().take() {
                    assert_eq!(v, i);
                    break;
                }
                thread::park();
            }
            c.store(i + 1, Ordering::SeqCst);
        }
    });
    let gthread = green.thread().clone();
    let done = AtomicBool::new(false);
    std::thread::scope(|sc| {
        sc.spawn(|| {
            for i in 0..ROUNDS {
                *slot.lock().unwrap() = Some(i);
                gthread.unpark();
                while consumed.load(Ordering::SeqCst) < i + 1 && !done.load(Ordering::SeqCst) {
                    std::hint::spin_loop();
                }
            }
        });
        sc.spawn(|| {
            // Stops the producer even if the watchdog fails the test.
            struct StopOnDrop<'a>(&'a AtomicBool);
            impl Drop for StopOnDrop<'_> {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::SeqCst);
                }
            }
            let _stop = StopOnDrop(&done);
            support::watchdog(
                Duration::from_secs(60),
                Duration::from_secs(5),
                || consumed.load(Ordering::SeqCst),
                || consumed.load(Ordering::SeqCst) == ROUNDS,
            );
        });
    });
    green.join().unwrap();
    assert!(rt.stats().wakeups_remote >= 1);
}

/// Open file descriptors of this process.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[test]
fn dropped_runtimes_release_their_descriptors_despite_pending_timers() {
    let _l = support::runtime_lock();
    drop(support::runtime()); // first-use allocations out of the way
    let before = open_fds();
    for _ in 0..5 {
        let rt = support::runtime();
        rt.block_on(|| {
            // Woken early by unpark: its one-hour timer entry stays queued (lazily
            // deleted) when the runtime ends.
            let h = thread::spawn(|| thread::park_timeout(Duration::from_secs(3600)));
            thread::yield_now();
            h.thread().unpark();
            h.join().unwrap();
        });
    }
    assert_eq!(
        open_fds(),
        before,
        "a dropped runtime kept its eventfd/epoll open"
    );
}
