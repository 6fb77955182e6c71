//! The panic message of a green thread names the green thread.
//!
//! std's default hook names the *OS* thread — here, the carrier. The runtime installs
//! (once per process, chaining to whatever hook was installed before) a hook that, for
//! a panic inside a green thread, prints std's message with the green thread's name;
//! every other panic goes to the previous hook unchanged.

use crate::sched;
use std::io::Write;
use std::panic::{self, PanicHookInfo};
use std::sync::Once;

type Hook = Box<dyn Fn(&PanicHookInfo<'_>) + Sync + Send + 'static>;

pub(crate) fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous: Hook = panic::take_hook();
        panic::set_hook(Box::new(move |info| match sched::current_task() {
            // SAFETY: the current task is alive while it runs.
            Some(t) => report(unsafe { (*t).display_name() }, info),
            None => previous(info),
        }));
    });
}

fn report(name: &str, info: &PanicHookInfo<'_>) {
    let msg = match info.payload().downcast_ref::<&str>() {
        Some(s) => *s,
        None => match info.payload().downcast_ref::<String>() {
            Some(s) => s.as_str(),
            None => "Box<dyn Any>",
        },
    };
    let location = info
        .location()
        .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
        .unwrap_or_else(|| "<unknown>".into());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\nthread '{name}' panicked at {location}:\n{msg}");
    match std::env::var_os("RUST_BACKTRACE").as_deref() {
        Some(v) if v != "0" => {
            let _ = writeln!(
                err,
                "stack backtrace:\n{}",
                std::backtrace::Backtrace::force_capture()
            );
        }
        _ => {
            let _ = writeln!(
                err,
                "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace"
            );
        }
    }
}
