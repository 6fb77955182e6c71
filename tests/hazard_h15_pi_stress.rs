//! HAZARDS.md H15, in the spirit of rt-tests' `pi_stress`: groups of a low, a medium
//! and a high priority thread loop on the inversion scenario under `Model::Full`.
//!
//! One iteration of a group: the low thread takes the group's mutex; the three meet at
//! a barrier; the high thread asks for the mutex while the medium thread starts a CPU
//! burst that never blocks and the low thread runs its short critical section. With
//! priority inheritance the low thread runs at the high one's priority, so the high
//! thread must get the mutex before the medium thread finishes its burst — an
//! iteration where it does not is an inversion, and fails the test. Without
//! inheritance (`Mutex::without_inheritance`) the same harness sees inversions in
//! (nearly) every iteration, so the test can fail.
//!
//! Three groups share the one CPU. The run lasts 10 s in CI, `PREEMPT_PI_STRESS_SECS`
//! seconds when set; a group that stops progressing for 5 s fails the test
//! (`support::watchdog`). The green threads share only atomics and the primitives
//! under test (the `preemptive` contract).

mod support;

use preempt::Priority;
use preempt::sync::{Barrier, Mutex};
use preempt::thread::Builder;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

const GROUPS: usize = 3;
const CRITICAL_SECTION: Duration = Duration::from_micros(100);
const MEDIUM_BURST: Duration = Duration::from_micros(1_000);

use support::spin;

struct Group {
    mutex: Mutex<()>,
    start: Barrier,
    locked: Barrier,
    end: Barrier,
    medium_done: AtomicBool,
    stop: AtomicBool,
}

/// Runs the groups for `run`; returns (iterations, inversions).
fn pi_stress(inherit: bool, run: Duration, progress: Arc<AtomicU64>) -> (u64, u64) {
    let rt = support::full(Duration::from_millis(1));
    let inversions = Arc::new(AtomicU64::new(0));
    let (inv, prog) = (inversions.clone(), progress.clone());
    rt.block_on(move || {
        let deadline = Instant::now() + run;
        let mut threads = vec![];
        for _ in 0..GROUPS {
            let g = Arc::new(Group {
                mutex: if inherit {
                    Mutex::new(())
                } else {
                    Mutex::without_inheritance(())
                },
                start: Barrier::new(3),
                locked: Barrier::new(3),
                end: Barrier::new(3),
                medium_done: AtomicBool::new(false),
                stop: AtomicBool::new(false),
            });
            let low = {
                let g = g.clone();
                move || loop {
                    g.start.wait();
                    let guard = g.mutex.lock().unwrap();
                    g.locked.wait();
                    spin(CRITICAL_SECTION);
                    drop(guard);
                    g.end.wait();
                    if g.stop.load(SeqCst) {
                        return;
                    }
                }
            };
            let medium = {
                let g = g.clone();
                move || loop {
                    g.start.wait();
                    g.locked.wait();
                    spin(MEDIUM_BURST);
                    g.medium_done.store(true, SeqCst);
                    g.end.wait();
                    if g.stop.load(SeqCst) {
                        return;
                    }
                }
            };
            let high = {
                let (g, inv, progress) = (g.clone(), inv.clone(), prog.clone());
                move || loop {
                    g.medium_done.store(false, SeqCst);
                    g.start.wait();
                    g.locked.wait();
                    let guard = g.mutex.lock().unwrap();
                    if g.medium_done.load(SeqCst) {
                        inv.fetch_add(1, SeqCst);
                    }
                    drop(guard);
                    progress.fetch_add(1, SeqCst);
                    g.stop.store(Instant::now() >= deadline, SeqCst);
                    g.end.wait();
                    if g.stop.load(SeqCst) {
                        return;
                    }
                }
            };
            for (prio, f) in [
                (10, Box::new(low) as Box<dyn FnOnce() + Send>),
                (20, Box::new(medium)),
                (30, Box::new(high)),
            ] {
                threads.push(
                    Builder::new()
                        .priority(Priority::new(prio))
                        .spawn(f)
                        .unwrap(),
                );
            }
        }
        for t in threads {
            t.join().unwrap();
        }
    });
    (progress.load(SeqCst), inversions.load(SeqCst))
}

fn run_watched(inherit: bool, run: Duration) -> (u64, u64) {
    let progress = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let worker = {
        let (progress, done) = (progress.clone(), done.clone());
        std::thread::spawn(move || {
            let r = pi_stress(inherit, run, progress);
            done.store(true, SeqCst);
            r
        })
    };
    support::watchdog(
        run + Duration::from_secs(30),
        Duration::from_secs(5),
        || progress.load(SeqCst),
        || done.load(SeqCst),
    );
    worker.join().unwrap()
}

#[test]
fn h15_every_inversion_resolves_with_inheritance_and_not_without() {
    let _l = support::runtime_lock();
    let secs = std::env::var("PREEMPT_PI_STRESS_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let (iterations, inversions) = run_watched(true, Duration::from_secs(secs));
    eprintln!("with inheritance: {iterations} iterations, {inversions} inversions");
    assert!(iterations > 100, "{iterations} iterations");
    assert_eq!(
        inversions, 0,
        "{inversions} of {iterations} iterations inverted"
    );

    let (iterations, inversions) = run_watched(false, Duration::from_secs(1));
    eprintln!("without inheritance: {iterations} iterations, {inversions} inversions");
    assert!(
        inversions * 2 > iterations,
        "without inheritance only {inversions} of {iterations} iterations inverted"
    );
}
