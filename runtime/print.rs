//! Printing from preemptible threads (H2).
//!
//! `std::io::stdout()` is guarded by a lock that is re-entrant *per OS thread* around a
//! `RefCell`. Green threads of one CPU share its OS thread: one preempted in the middle
//! of `println!` leaves the lock held and the cell borrowed, and the next one to print
//! on that CPU re-enters and panics ("already borrowed"). [`println!`](crate::println)
//! and [`print!`](crate::print) format first, then write the whole text with preemption
//! disabled, so the lock is never held across a switch — and each call's text comes out
//! in one piece. Plain `println!` is fine under `Model::None` and `Model::Voluntary`.

use std::io::Write;

#[doc(hidden)]
pub fn write_stdout(text: &str) {
    let _g = crate::preempt::disable();
    let mut out = std::io::stdout().lock();
    // Like std's println!, a closed stdout is a panic; but never with the lock held
    // across a switch.
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        drop(out);
        drop(_g);
        panic!("failed printing to stdout: {e}");
    }
}

/// Like `std::print!`, safe to call from a preemptible green thread.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::print::write_stdout(&::std::format!($($arg)*))
    };
}

/// Like `std::println!`, safe to call from a preemptible green thread; the line is
/// written in one piece.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print::write_stdout("\n")
    };
    ($($arg:tt)*) => {
        $crate::print::write_stdout(&{
            let mut line = ::std::format!($($arg)*);
            line.push('\n');
            line
        })
    };
}
