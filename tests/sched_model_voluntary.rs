//! `Model::Voluntary`: the tick only asks (`NEED_RESCHED`); the switch happens at
//! `cond_resched()` or at the next blocking call, never in the middle of other code.

mod support;

use preempt::thread;
use preempt::{Model, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

fn voluntary() -> Runtime {
    Runtime::builder()
        .model(Model::Voluntary)
        .tick(Duration::from_millis(1))
        .build()
        .expect("Voluntary is a safe model")
}

/// A ticker that counts whenever it runs, and yields.
fn ticker(count: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> impl FnOnce() + Send {
    move || {
        while !stop.load(Relaxed) {
            count.fetch_add(1, Relaxed);
            thread::yield_now();
        }
    }
}

/// Runs `body` for 100 ms beside a ticker; returns how often the ticker ran meanwhile.
fn ticker_progress_during(rt: &Runtime, body: fn(Duration)) -> u64 {
    rt.block_on(move || {
        let (count, stop) = (
            Arc::new(AtomicU64::new(0)),
            Arc::new(AtomicBool::new(false)),
        );
        let t = thread::spawn(ticker(count.clone(), stop.clone()));
        while count.load(Relaxed) == 0 {
            thread::yield_now();
        }
        let c = count.clone();
        let progress = thread::spawn(move || {
            let before = c.load(Relaxed);
            body(Duration::from_millis(100));
            c.load(Relaxed) - before
        })
        .join()
        .unwrap();
        stop.store(true, Relaxed);
        t.join().unwrap();
        progress
    })
}

#[test]
fn a_spinner_without_preemption_points_keeps_the_cpu() {
    let _l = support::runtime_lock();
    let rt = voluntary();
    let progress = ticker_progress_during(&rt, |d| {
        let t0 = Instant::now();
        while t0.elapsed() < d {
            std::hint::spin_loop();
        }
        assert!(preempt::need_resched(), "the tick asked for a switch");
    });
    assert_eq!(progress, 0);
    let s = rt.stats();
    assert!(s.ticks >= 50, "{s:?}");
    assert_eq!(s.preemptions, 0, "Voluntary never preempts asynchronously");
}

#[test]
fn cond_resched_switches_when_the_tick_asked() {
    let _l = support::runtime_lock();
    let rt = voluntary();
    let progress = ticker_progress_during(&rt, |d| {
        let t0 = Instant::now();
        while t0.elapsed() < d {
            thread::cond_resched();
        }
    });
    // About one switch per tick: the ticker ran, repeatedly.
    assert!(progress >= 20, "ticker ran only {progress} times");
    assert_eq!(rt.stats().preemptions, 0);
}

#[test]
fn a_blocking_call_is_a_preemption_point() {
    let _l = support::runtime_lock();
    let rt = voluntary();
    let progress = ticker_progress_during(&rt, |d| {
        let t0 = Instant::now();
        while t0.elapsed() < d {
            // A zero sleep does not block, but it passes might_sleep().
            thread::sleep(Duration::ZERO);
        }
    });
    assert!(progress >= 20, "ticker ran only {progress} times");
}

#[test]
fn cond_resched_outside_a_runtime_does_nothing() {
    // Unlike the runtime-only calls, it is harmless anywhere (library code calls it).
    thread::cond_resched();
    assert!(!preempt::need_resched());
}
