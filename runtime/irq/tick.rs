//! The clock-event device: a per-carrier POSIX timer, or `setitimer(ITIMER_REAL)`.
//!
//! The default device is `timer_create(CLOCK_MONOTONIC)` with `SIGEV_THREAD_ID`: its
//! `SIGALRM` goes to the carrier thread itself, never to another thread of the process
//! (no forwarding, no merged ticks), and its one-shots have nanosecond resolution —
//! DESIGN.md §4's second device, "where per-carrier one-shots need it (hrtimers,
//! tickless, SMP)". If it cannot be created, `setitimer(ITIMER_REAL)` serves, whose
//! process-directed ticks other threads forward to the carrier (`irq::forward`).
//!
//! Programmed only by the carrier (and its handler). It runs periodically while the
//! carrier is busy — at the runtime's tick while a thread that computes is about, and
//! at a backstop period (the default tick) while only threads that block within a tick
//! run (`Cpu::follow_work`) — and is stopped while it idles (tickless idle: an idle
//! carrier waits in epoll with the next timer as its timeout instead). The idle loop
//! leaves it running into its wait and the first tick that finds the carrier idle
//! stops it, so an idle period shorter than a tick costs no re-programming.
//! When a green thread arms a timer that is due before the device's next expiry, the
//! device is re-programmed one-shot for that deadline, with the periodic interval
//! resuming after it (a poor man's hrtimer), so a sleeper wakes on time even beside a
//! thread that never blocks.
//!
//! Tickless full (the kernel's `NO_HZ_FULL`): a tick that finds nothing else to run, no
//! timer pending and no wakeup in flight stops the device. Anything that makes a second
//! thread runnable on the CPU restarts it (`Cpu::activate`), a sleeper's deadline
//! re-programs it, and a remote waker that finds it stopped while the CPU is busy sends
//! the carrier a `SIGALRM` itself (`Cpu::kick`).
//!
//! On this class of machine the tick keeps its period down to ~50 µs, and a late tick
//! can be followed by an early one: nothing may assume even spacing.

use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::time::Duration;

/// Whether the device is stopped (tickless: idle, or a lone runnable thread). Written
/// only by the carrier (and its handler); read by remote wakers, which must then send
/// the carrier a tick themselves (`Cpu::kick`).
static STOPPED: AtomicBool = AtomicBool::new(true);

/// Whether the device's next expiry is a one-shot (a timer's deadline, a retry) rather
/// than a period's: [`start`] keeps a one-shot, not a period. Written only by the
/// carrier and its handler, which clears it at each expiry ([`expired`]). (Under the
/// `setitimer` fallback a forwarded expiry looks like a waker's and leaves it set:
/// `start` then keeps the period's next expiry too, a tick early at worst.)
static ONESHOT: AtomicBool = AtomicBool::new(false);

/// The carrier's POSIX timer, if the default device is in use.
static POSIX_TIMER: AtomicUsize = AtomicUsize::new(0);

/// Which device is programmed: none outside a carrier's run, so that nothing — a
/// handler that runs on the carrier after its device was deleted, above all — can
/// program the process-wide `setitimer` by falling back to it. A periodic
/// `ITIMER_REAL` left armed that way would outlive the runtime and tick into every
/// later one from other threads.
static DEVICE: AtomicU8 = AtomicU8::new(NONE);
const NONE: u8 = 0;
const POSIX: u8 = 1;
const ITIMER: u8 = 2;

/// Whether the device is stopped. ASYNC-SIGNAL-SAFE.
pub(crate) fn is_stopped() -> bool {
    STOPPED.load(Ordering::SeqCst)
}

/// Creates the device for the calling thread (the carrier). Falls back to
/// `setitimer` if the POSIX timer cannot be made.
pub(crate) fn create_for_current_thread() {
    // SAFETY: a zeroed sigevent filled in for SIGEV_THREAD_ID; gettid has no
    // preconditions; timer_create writes the new id into `id`.
    let device = unsafe {
        let mut ev: libc::sigevent = std::mem::zeroed();
        ev.sigev_notify = libc::SIGEV_THREAD_ID;
        ev.sigev_signo = libc::SIGALRM;
        ev.sigev_notify_thread_id = libc::gettid();
        let mut id: libc::timer_t = std::ptr::null_mut();
        if libc::timer_create(libc::CLOCK_MONOTONIC, &mut ev, &mut id) == 0 {
            POSIX_TIMER.store(id as usize, Ordering::Relaxed);
            POSIX
        } else {
            ITIMER
        }
    };
    DEVICE.store(device, Ordering::Release);
}

/// Stops and deletes the device made by [`create_for_current_thread`]; programming
/// it afterwards does nothing. The carrier blocks `SIGALRM` first (`leave_carrier`).
pub(crate) fn delete() {
    stop();
    if DEVICE.swap(NONE, Ordering::AcqRel) == POSIX {
        // SAFETY: the id came from timer_create and is deleted once.
        unsafe { libc::timer_delete(POSIX_TIMER.load(Ordering::Relaxed) as libc::timer_t) };
    }
}

fn timeval(d: Duration) -> libc::timeval {
    libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    }
}

fn timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

/// Programs the device. ASYNC-SIGNAL-SAFE.
fn set(value: Duration, interval: Duration) {
    let device = DEVICE.load(Ordering::Acquire);
    if device == NONE {
        return;
    }
    if device == POSIX {
        let it = libc::itimerspec {
            it_interval: timespec(interval),
            it_value: timespec(value),
        };
        let id = POSIX_TIMER.load(Ordering::Relaxed) as libc::timer_t;
        // SAFETY: a valid itimerspec and our timer's id; the old value is not wanted.
        unsafe { libc::timer_settime(id, 0, &it, std::ptr::null_mut()) };
        return;
    }
    let it = libc::itimerval {
        it_interval: timeval(interval),
        it_value: timeval(value),
    };
    // SAFETY: a valid itimerval; the old value is not wanted.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

/// Starts the periodic tick (late/lost accounting starts afresh). A pending one-shot —
/// a sleeper's deadline, programmed while the CPU ran alone, or a deferred poll's — is
/// kept as the first expiry if it comes before a period would: the device has one
/// expiry, and starting the period over it would wake that sleeper up to a whole tick
/// late. The next expiry of a previous period is not: a fine tick relaxed to the
/// backstop as a batch of request handlers began fired once more at its old phase, in
/// the batch it relaxed for (the HTTP bench's `/` under `/spin`, 50 connections, 100 µs
/// tick: 2,400 interrupts a second, one per `/spin` turn, for nothing).
/// ASYNC-SIGNAL-SAFE.
pub(crate) fn start(period: Duration) {
    super::restart_tick_accounting();
    let kept = ONESHOT
        .load(Ordering::Relaxed)
        .then(remaining)
        .flatten()
        .filter(|&r| r < period);
    ONESHOT.store(kept.is_some(), Ordering::Relaxed);
    STOPPED.store(false, Ordering::SeqCst);
    set(kept.unwrap_or(period), period);
}

/// Stops the tick. ASYNC-SIGNAL-SAFE.
pub(crate) fn stop() {
    STOPPED.store(true, Ordering::SeqCst);
    ONESHOT.store(false, Ordering::Relaxed);
    set(Duration::ZERO, Duration::ZERO);
}

/// The device fired: a one-shot, if it was one, is spent. Called by the handler for
/// the device's own expiries (not for a waker's `SIGALRM`). ASYNC-SIGNAL-SAFE.
pub(crate) fn expired() {
    ONESHOT.store(false, Ordering::Relaxed);
}

/// Time until the device next fires (`None` if stopped). ASYNC-SIGNAL-SAFE.
pub(crate) fn remaining() -> Option<Duration> {
    let device = DEVICE.load(Ordering::Acquire);
    let d = if device == NONE {
        Duration::ZERO
    } else if device == POSIX {
        // SAFETY: timer_gettime fills a zeroed itimerspec for our timer.
        let mut it: libc::itimerspec = unsafe { std::mem::zeroed() };
        let id = POSIX_TIMER.load(Ordering::Relaxed) as libc::timer_t;
        // SAFETY: as above.
        unsafe { libc::timer_gettime(id, &mut it) };
        Duration::new(it.it_value.tv_sec as u64, it.it_value.tv_nsec as u32)
    } else {
        // SAFETY: getitimer fills a zeroed itimerval.
        let mut it: libc::itimerval = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::getitimer(libc::ITIMER_REAL, &mut it) };
        Duration::new(it.it_value.tv_sec as u64, it.it_value.tv_usec as u32 * 1000)
    };
    (!d.is_zero()).then_some(d)
}

/// Programs the device to fire at `delay` from now if that is before its next expiry;
/// returns whether it did. A running tick resumes its period after that; a stopped one
/// stays stopped. ASYNC-SIGNAL-SAFE.
pub(crate) fn fire_by(delay: Duration, period: Duration) -> bool {
    let sooner = remaining().is_none_or(|r| delay < r);
    if sooner {
        if is_stopped() {
            stop_until(delay);
        } else {
            oneshot_then_periodic(delay, period);
        }
    }
    sooner
}

/// Stops the periodic tick but fires once after `delay` (the next timer event, as a
/// `NO_HZ_FULL` kernel programs it). Counts as stopped: remote wakers interrupt the CPU
/// themselves. ASYNC-SIGNAL-SAFE.
pub(crate) fn stop_until(delay: Duration) {
    super::restart_tick_accounting();
    STOPPED.store(true, Ordering::SeqCst);
    ONESHOT.store(true, Ordering::Relaxed);
    set(delay.max(Duration::from_micros(1)), Duration::ZERO);
}

/// Fires once after `delay` (at least 1 µs), then periodically.
pub(crate) fn oneshot_then_periodic(delay: Duration, period: Duration) {
    if STOPPED.swap(false, Ordering::SeqCst) {
        super::restart_tick_accounting();
    }
    ONESHOT.store(true, Ordering::Relaxed);
    set(delay.max(Duration::from_micros(1)), period);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn itimer_real() -> Duration {
        // SAFETY: getitimer fills a zeroed itimerval.
        let mut it: libc::itimerval = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        unsafe { libc::getitimer(libc::ITIMER_REAL, &mut it) };
        timeval_duration(it.it_value) + timeval_duration(it.it_interval)
    }

    fn timeval_duration(t: libc::timeval) -> Duration {
        Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000)
    }

    /// A handler that runs on the carrier after `delete` must not arm the process-wide
    /// `setitimer` in the device's place: its ticks would outlive the runtime.
    #[test]
    fn a_deleted_device_programs_nothing() {
        // This test thread plays the carrier, with SIGALRM blocked: its POSIX timer's
        // expiries stay pending and die with the thread.
        crate::irq::set_sigalrm_blocked(true);
        create_for_current_thread();
        oneshot_then_periodic(Duration::from_millis(1), Duration::from_millis(1));
        assert!(remaining().is_some(), "the device was not programmed");
        delete();
        start(Duration::from_millis(50));
        oneshot_then_periodic(Duration::from_millis(50), Duration::from_millis(50));
        stop_until(Duration::from_millis(50));
        let leaked = itimer_real();
        // SAFETY: disarming ITIMER_REAL with a zeroed itimerval.
        unsafe { libc::setitimer(libc::ITIMER_REAL, &std::mem::zeroed(), std::ptr::null_mut()) };
        assert_eq!(leaked, Duration::ZERO, "ITIMER_REAL armed after delete");
        assert_eq!(remaining(), None);
    }
}
