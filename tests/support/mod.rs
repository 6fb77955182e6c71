//! Helpers shared by the integration tests.
//!
//! Signals, timers and the one live runtime are process-wide while `cargo test` runs a
//! binary's tests on parallel threads, so every test that builds a runtime holds
//! [`runtime_lock`]. Behaviour that must crash the process runs in a child: the test
//! re-executes its own binary for just itself, with [`CHILD_ENV`] set.
#![allow(dead_code)]

use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

static RUNTIME: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary that start a runtime.
pub fn runtime_lock() -> MutexGuard<'static, ()> {
    RUNTIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// A runtime with the defaults, built under the caller's lock.
pub fn runtime() -> preempt::Runtime {
    preempt::Runtime::builder().build().expect("build runtime")
}

/// The defaults with round-robin at priority 0 stated explicitly: for tests of exact
/// switch orders and counts.
pub fn runtime_rr() -> preempt::Runtime {
    preempt::Runtime::builder()
        .fair(false)
        .build()
        .expect("build runtime")
}

/// Set in a child process to the name of the test it should run.
pub const CHILD_ENV: &str = "PREEMPT_TEST_CHILD";

/// Whether this process is the child run of `test`.
pub fn is_child(test: &str) -> bool {
    std::env::var(CHILD_ENV).is_ok_and(|v| v == test)
}

/// Runs the test named `test` of this binary in a child process and returns its output.
pub fn run_child(test: &str) -> Output {
    Command::new(std::env::current_exe().expect("current_exe"))
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, test)
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("spawn child test process")
}

/// The child's stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The signal that ended the child, if one did.
pub fn signal(out: &Output) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    out.status.signal()
}

/// Fails the test if `progress` stops advancing for `stall` (the watchdog rule of
/// HAZARDS.md), or if `done` is not reached within `limit`. Polls from a plain OS thread.
pub fn watchdog(
    limit: Duration,
    stall: Duration,
    progress: impl Fn() -> u64,
    done: impl Fn() -> bool,
) {
    let start = Instant::now();
    let (mut last, mut last_change) = (progress(), Instant::now());
    while !done() {
        std::thread::sleep(Duration::from_millis(10));
        let p = progress();
        if p != last {
            (last, last_change) = (p, Instant::now());
        }
        assert!(
            last_change.elapsed() < stall,
            "no progress for {stall:?} (stuck at {last})"
        );
        assert!(start.elapsed() < limit, "not done within {limit:?}");
    }
}

/// A `Model::Full` runtime with the given tick.
///
/// Every test that calls this keeps the `preemptive` contract, as its file's docs say:
/// its green threads share only atomics, or touch thread-locals only under
/// `preempt::disable()` (or through task-locals and the wrapped `tracing` subscriber).
pub fn full(tick: Duration) -> preempt::Runtime {
    // SAFETY: the calling tests keep the thread-local contract (above).
    unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Full) }
        .tick(tick)
        .build()
        .expect("build a Full runtime")
}

/// [`full`] with the fair class at priority 0.
pub fn full_fair(tick: Duration) -> preempt::Runtime {
    // SAFETY: as in `full`.
    unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Full) }
        .tick(tick)
        .fair(true)
        .build()
        .expect("build a Full runtime")
}

/// [`full`] with round-robin at priority 0 stated explicitly: every tick switches
/// between spinners, for tests of the tick's preemption mechanics.
pub fn full_rr(tick: Duration) -> preempt::Runtime {
    // SAFETY: as in `full`.
    unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Full) }
        .tick(tick)
        .fair(false)
        .build()
        .expect("build a Full runtime")
}

/// A `Model::Rt` runtime with the given tick (the contract of [`full`]).
pub fn rt(tick: Duration) -> preempt::Runtime {
    // SAFETY: as in `full`.
    unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Rt) }
        .tick(tick)
        .build()
        .expect("build an Rt runtime")
}

/// Burns the CPU for `d` of wall time (a thread that computes).
pub fn spin(d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}
