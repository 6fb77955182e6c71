//! The clock-event device: `setitimer(ITIMER_REAL)`.
//!
//! One per process (`ITIMER_REAL` is process-wide, like `SIGALRM`), programmed only by
//! the carrier. It runs periodically at the runtime's tick while the carrier is busy
//! and is stopped while it idles (tickless idle: an idle carrier waits in epoll with the
//! next timer as its timeout instead). When a green thread arms a timer that is due
//! before the next tick, the device is re-programmed one-shot for that deadline, with
//! the periodic interval resuming after it (a poor man's hrtimer), so a sleeper wakes on
//! time even beside a thread that never blocks.
//!
//! Tickless full (the kernel's `NO_HZ_FULL`): a tick that finds nothing else to run, no
//! timer pending and no wakeup in flight stops the device. Anything that makes a second
//! thread runnable on the CPU restarts it (`Cpu::activate`), a sleeper's deadline
//! re-programs it, and a remote waker that finds it stopped while the CPU is busy sends
//! the carrier a `SIGALRM` itself (`Cpu::kick`).
//!
//! On this class of machine `setitimer` keeps its period down to ~50 µs, and a late
//! tick can be followed by an early one: nothing may assume even spacing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Whether the device is stopped (tickless: idle, or a lone runnable thread). Written
/// only by the carrier (and its handler); read by remote wakers, which must then send
/// the carrier a tick themselves (`Cpu::kick`).
static STOPPED: AtomicBool = AtomicBool::new(true);

/// Whether the device is stopped. ASYNC-SIGNAL-SAFE.
pub(crate) fn is_stopped() -> bool {
    STOPPED.load(Ordering::SeqCst)
}

fn timeval(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

fn set(value: Duration, interval: Duration) {
    let it = libc::itimerval {
        it_interval: timeval(interval),
        it_value: timeval(value),
    };
    // SAFETY: a valid itimerval; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

/// Starts the periodic tick (late/lost accounting starts afresh).
pub(crate) fn start(period: Duration) {
    super::restart_tick_accounting();
    STOPPED.store(false, Ordering::SeqCst);
    set(period, period);
}

/// Stops the tick. ASYNC-SIGNAL-SAFE.
pub(crate) fn stop() {
    STOPPED.store(true, Ordering::SeqCst);
    set(Duration::ZERO, Duration::ZERO);
}

/// Time until the device next fires (`None` if stopped). ASYNC-SIGNAL-SAFE.
pub(crate) fn remaining() -> Option<Duration> {
    // SAFETY: getitimer fills a zeroed itimerval.
    let mut it: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    unsafe { libc::getitimer(libc::ITIMER_REAL, &mut it) };
    let d = Duration::new(it.it_value.tv_sec as u64, it.it_value.tv_usec as u32 * 1000);
    (!d.is_zero()).then_some(d)
}

/// Programs the device to fire at `delay` from now if that is before its next expiry.
/// ASYNC-SIGNAL-SAFE.
pub(crate) fn fire_by(delay: Duration, period: Duration) {
    if remaining().is_none_or(|r| delay < r) {
        oneshot_then_periodic(delay, period);
    }
}

/// Fires once after `delay` (at least 1 µs, `setitimer`'s resolution), then
/// periodically.
pub(crate) fn oneshot_then_periodic(delay: Duration, period: Duration) {
    if STOPPED.swap(false, Ordering::SeqCst) {
        super::restart_tick_accounting();
    }
    set(delay.max(Duration::from_micros(1)), period);
}
