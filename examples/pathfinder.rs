//! The Mars Pathfinder priority inversion (1997), re-enacted and measured.
//!
//! Three green threads on one CPU under `Model::Full`:
//!
//! * `T_L` (priority 10, the meteorological data task) takes the bus mutex at t = 0
//!   and needs 3 ms of CPU inside it;
//! * `T_H` (priority 30, the bus manager) wakes at 1.0 ms and needs the mutex; its
//!   deadline is 5 ms after it wakes (the watchdog that reset the spacecraft);
//! * `T_M` (priority 20, communications) wakes at 1.1 ms and computes for 20 ms
//!   without touching the mutex.
//!
//! Without priority inheritance `T_M` preempts `T_L`, which holds what `T_H` needs:
//! `T_H` waits for all of `T_M`'s work and misses its deadline. With inheritance
//! (`preempt::sync::Mutex::new`, the fix JPL uploaded), `T_L` runs at `T_H`'s priority
//! while `T_H` waits, and `T_H` waits only for the rest of the critical section.
//!
//! Run: `cargo run --release --example pathfinder`.
#![allow(dead_code)] // `tests/sync_pathfinder.rs` includes this file for `run`.

use preempt::sync::{Mutex, SpinLock};
use preempt::thread::{self, Builder};
use preempt::{Model, Priority, Runtime};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `T_L`'s critical section (CPU time).
pub const CRITICAL_SECTION: Duration = Duration::from_millis(3);
/// `T_M`'s computation (CPU time).
pub const MEDIUM_WORK: Duration = Duration::from_millis(20);
/// When `T_H` wakes.
pub const HIGH_WAKES: Duration = Duration::from_micros(1000);
/// When `T_M` wakes.
pub const MEDIUM_WAKES: Duration = Duration::from_micros(1100);
/// `T_H`'s deadline, from its wakeup.
pub const DEADLINE: Duration = Duration::from_millis(5);
/// The timer interrupt's period.
pub const TICK: Duration = Duration::from_millis(1);

/// What one run measured.
#[derive(Debug)]
pub struct Report {
    /// How long `T_H` waited for the mutex.
    pub high_blocked: Duration,
    /// `T_M`'s CPU time.
    pub medium_ran: Duration,
    /// `(time since start, event)`, in order.
    pub timeline: Vec<(Duration, &'static str)>,
}

/// Runs on the CPU for `cpu` of *own* time: steps longer than 50 µs are time spent
/// switched out (preempted), not run, and do not count.
fn compute(cpu: Duration) {
    let mut ran = Duration::ZERO;
    let mut last = Instant::now();
    while ran < cpu {
        let now = Instant::now();
        let step = now - last;
        if step < Duration::from_micros(50) {
            ran += step;
        }
        last = now;
    }
}

/// Runs the scenario once, with or without priority inheritance.
pub fn run(inherit: bool) -> Report {
    // SAFETY: the green threads below share only the mutex, a `SpinLock`-protected
    // log and atomics; they touch no thread-local (the `preemptive` contract).
    let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
        .tick(TICK)
        .build()
        .expect("build the runtime");
    rt.block_on(move || {
        let bus = Arc::new(if inherit {
            Mutex::new(())
        } else {
            Mutex::without_inheritance(())
        });
        let log = Arc::new(SpinLock::new(Vec::with_capacity(16)));
        let t0 = Instant::now();
        let note = {
            let log = log.clone();
            move |what: &'static str| log.lock().push((t0.elapsed(), what))
        };
        // The sleepers first: a new thread that outranks its parent runs at once, and
        // these go straight to sleep; then T_L, which takes the mutex.
        let high = {
            let (bus, note) = (bus.clone(), note.clone());
            Builder::new()
                .name("T_H".into())
                .priority(Priority::new(30))
                .spawn(move || {
                    thread::sleep_until(t0 + HIGH_WAKES);
                    note("T_H  wakes, needs the bus mutex");
                    let asked = Instant::now();
                    let _g = bus.lock().unwrap();
                    let blocked = asked.elapsed();
                    note("T_H  gets the bus mutex");
                    blocked
                })
                .unwrap()
        };
        let medium = {
            let note = note.clone();
            Builder::new()
                .name("T_M".into())
                .priority(Priority::new(20))
                .spawn(move || {
                    thread::sleep_until(t0 + MEDIUM_WAKES);
                    note("T_M  runs (woken at 1.1 ms), computes");
                    let start = Instant::now();
                    compute(MEDIUM_WORK);
                    note("T_M  done");
                    start.elapsed()
                })
                .unwrap()
        };
        let low = {
            let (bus, note) = (bus.clone(), note.clone());
            Builder::new()
                .name("T_L".into())
                .priority(Priority::new(10))
                .spawn(move || {
                    let _g = bus.lock().unwrap();
                    note("T_L  takes the bus mutex");
                    compute(CRITICAL_SECTION);
                    note("T_L  releases the bus mutex");
                })
                .unwrap()
        };
        low.join().unwrap();
        let high_blocked = high.join().unwrap();
        let medium_ran = medium.join().unwrap();
        let timeline = std::mem::take(&mut *log.lock());
        Report {
            high_blocked,
            medium_ran,
            timeline,
        }
    })
}

fn main() {
    println!(
        "Mars Pathfinder on one CPU, Model::Full, {TICK:?} tick: T_L (10) holds the bus \
         mutex for {CRITICAL_SECTION:?} of CPU; T_H (30) needs it at {HIGH_WAKES:?}, \
         deadline {DEADLINE:?} later; T_M (20) computes {MEDIUM_WORK:?} from {MEDIUM_WAKES:?}.\n"
    );
    for inherit in [false, true] {
        let r = run(inherit);
        println!(
            "{}:",
            if inherit {
                "with priority inheritance (Mutex::new)"
            } else {
                "without priority inheritance (Mutex::without_inheritance)"
            }
        );
        for (at, what) in &r.timeline {
            println!("  {:>8.3} ms  {what}", at.as_secs_f64() * 1e3);
        }
        let met = r.high_blocked < DEADLINE;
        println!(
            "  T_H blocked {:.3} ms -> deadline {}\n",
            r.high_blocked.as_secs_f64() * 1e3,
            if met {
                "met"
            } else {
                "MISSED (the spacecraft resets)"
            }
        );
    }
}
