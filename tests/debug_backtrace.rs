//! HAZARDS.md H17: a backtrace taken inside a green thread shows the user's function
//! and ends cleanly at the entry trampoline (CFI), instead of wandering off the stack.

mod support;

use std::backtrace::Backtrace;

#[inline(never)]
fn user_function_for_backtrace() -> String {
    std::hint::black_box(Backtrace::force_capture()).to_string()
}

/// Frame symbols of a rendered backtrace, in order.
fn frames(bt: &str) -> Vec<String> {
    bt.lines()
        .filter_map(|l| {
            let (n, sym) = l.trim_start().split_once(": ")?;
            n.parse::<usize>().ok()?;
            Some(sym.trim().to_owned())
        })
        .collect()
}

#[test]
fn backtrace_ends_at_the_entry_trampoline() {
    let _l = support::runtime_lock();
    let rt = support::runtime();
    let bt = rt.block_on(|| {
        preempt::thread::spawn(user_function_for_backtrace)
            .join()
            .unwrap()
    });
    let frames = frames(&bt);
    assert!(
        frames
            .iter()
            .any(|f| f.contains("user_function_for_backtrace")),
        "user function missing:\n{bt}"
    );
    assert_eq!(
        frames.last().map(String::as_str),
        Some("preempt_thread_entry"),
        "the walk must end at the trampoline:\n{bt}"
    );
    assert_eq!(
        frames
            .iter()
            .filter(|f| f.as_str() == "preempt_thread_entry")
            .count(),
        1
    );
}
