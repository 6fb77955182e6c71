//! HAZARDS.md H16: a stack overflow in a green thread is reported by name, then aborts;
//! faults elsewhere reach the previous handler. Each crash runs in a child process.

mod support;

use preempt::thread::{self, Builder};
use std::hint::black_box;

fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth; 32]);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(frame[depth as usize % 32])
}

#[inline(never)]
fn big_local() -> u8 {
    // 1 MiB on a 64 KiB stack: stack probes touch it page by page from the top, so the
    // first fault lands in the guard page rather than in some other mapping below.
    let buf = black_box([7u8; 1 << 20]);
    buf[black_box(12345)]
}

fn crash_in_child(test: &str, spawn: impl FnOnce() + Send + 'static) {
    if support::is_child(test) {
        let rt = support::runtime();
        rt.block_on(spawn);
        unreachable!("the child should have aborted");
    }
}

fn assert_overflow_report(test: &str, name: &str, kib: usize) {
    let out = support::run_child(test);
    let err = support::stderr(&out);
    assert_eq!(support::signal(&out), Some(libc::SIGABRT), "{err}");
    let expected = format!("thread '{name}' overflowed its stack ({kib} KiB) at fault address 0x");
    assert!(err.contains(&expected), "missing {expected:?} in:\n{err}");
    assert!(err.contains("fatal runtime error: stack overflow"), "{err}");
}

#[test]
fn overflow_by_recursion_is_reported() {
    const T: &str = "overflow_by_recursion_is_reported";
    crash_in_child(T, || {
        let h = Builder::new()
            .name("deep".into())
            .spawn(|| recurse(0))
            .unwrap();
        let _ = h.join();
    });
    assert_overflow_report(T, "deep", 64);
}

#[test]
fn overflow_by_large_local_is_reported() {
    const T: &str = "overflow_by_large_local_is_reported";
    crash_in_child(T, || {
        let h = Builder::new()
            .name("wide".into())
            .stack_size(96 << 10)
            .spawn(big_local)
            .unwrap();
        let _ = h.join();
    });
    assert_overflow_report(T, "wide", 96);
}

#[test]
fn unnamed_thread_overflow_is_reported() {
    const T: &str = "unnamed_thread_overflow_is_reported";
    crash_in_child(T, || {
        let _ = thread::spawn(|| recurse(0)).join();
    });
    assert_overflow_report(T, "<unnamed>", 64);
}

#[test]
fn other_faults_reach_the_previous_handler() {
    const T: &str = "other_faults_reach_the_previous_handler";
    crash_in_child(T, || {
        // A wild write, nowhere near any guard page: not ours to report.
        let p = black_box(16usize) as *mut u64;
        // SAFETY: none — this deliberately faults, in a child process.
        unsafe { p.write_volatile(1) };
    });
    let out = support::run_child(T);
    let err = support::stderr(&out);
    assert_eq!(support::signal(&out), Some(libc::SIGSEGV), "{err}");
    assert!(!err.contains("overflowed its stack"), "{err}");
}
