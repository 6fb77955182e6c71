//! HAZARDS.md H5: the panic count is per OS thread, so a green thread must never be
//! switched away while it unwinds — not by the tick (deferred), not by a sleep in a
//! destructor (it keeps its CPU).

mod support;

use preempt::thread;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

struct SpinOnDrop;
impl Drop for SpinOnDrop {
    fn drop(&mut self) {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_micros(500) {
            std::hint::spin_loop();
        }
    }
}

#[test]
fn a_hundred_threads_panic_with_spinning_destructors() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(100));
    let payloads = rt.block_on(|| {
        let hs: Vec<_> = (0..100u32)
            .map(|i| {
                thread::spawn(move || {
                    let _guard = SpinOnDrop;
                    std::panic::panic_any(i);
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| *h.join().unwrap_err().downcast::<u32>().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(payloads, (0..100).collect::<Vec<_>>());
    let s = rt.stats();
    assert!(
        s.deferred_panicking > 0,
        "no tick landed during unwinding: {s:?}"
    );
}

struct SleepOnDrop;
impl Drop for SleepOnDrop {
    fn drop(&mut self) {
        assert!(std::thread::panicking());
        thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_destructor_that_sleeps_while_unwinding_fools_nobody() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_micros(100));
    let (checks, false_positives) = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let (checks, bad) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, c, b) = (stop.clone(), checks.clone(), bad.clone());
        let observer = thread::spawn(move || {
            while !s.load(Relaxed) {
                if std::thread::panicking() {
                    b.fetch_add(1, Relaxed);
                }
                c.fetch_add(1, Relaxed);
            }
        });
        thread::yield_now();
        let sleeper = thread::spawn(|| {
            let _g = SleepOnDrop;
            panic!("unwinding through a sleep");
        });
        assert!(sleeper.join().is_err());
        // The observer keeps running after the sleeper is done, too.
        let seen = checks.load(Relaxed);
        while checks.load(Relaxed) == seen {
            thread::yield_now();
        }
        stop.store(true, Relaxed);
        observer.join().unwrap();
        (checks.load(Relaxed), bad.load(Relaxed))
    });
    assert!(checks > 0);
    assert_eq!(false_positives, 0, "another thread saw panicking() == true");
}
