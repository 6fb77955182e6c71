//! `Model::None`: a thread that never blocks, sleeps or yields keeps its CPU.
//!
//! This is the documented behaviour of the cooperative model (the kernel's
//! `PREEMPT_NONE`); the preemptive models flip it.

mod support;

use preempt::thread;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[test]
fn a_200ms_spinner_keeps_every_other_thread_of_its_cpu_waiting() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let (before, after, ticks_total) = rt.block_on(|| {
        let ticks = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (t, s) = (ticks.clone(), stop.clone());
        // Makes progress whenever it gets the CPU, then yields it.
        let ticker = thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                t.fetch_add(1, Ordering::Relaxed);
                thread::yield_now();
            }
        });
        // Let the ticker run a little first.
        while ticks.load(Ordering::Relaxed) < 10 {
            thread::yield_now();
        }
        let t = ticks.clone();
        let hog = thread::spawn(move || {
            let before = t.load(Ordering::Relaxed);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(200) {
                std::hint::spin_loop();
            }
            (before, t.load(Ordering::Relaxed))
        });
        let (before, after) = hog.join().unwrap();
        stop.store(true, Ordering::Relaxed);
        ticker.join().unwrap();
        (before, after, ticks.load(Ordering::Relaxed))
    });
    assert_eq!(before, after, "another thread ran while the hog spun");
    assert!(ticks_total > after, "the ticker ran again after the hog");
    assert_eq!(rt.stats().switches_involuntary, 0);
}
