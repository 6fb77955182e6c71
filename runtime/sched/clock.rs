//! The scheduler's accounting clock: how long a thread ran or waited, and its virtual
//! runtime, are charged at every switch, so the clock must be cheap. Where the kernel
//! itself keeps time with the time-stamp counter (its clocksource is `tsc`, and the CPU
//! has an invariant TSC) the runtime scales the counter to nanoseconds — a few ns per
//! read, against ~28 ns for `clock_gettime` in this VM — with a ratio measured once
//! per process against the monotonic clock. Elsewhere it reads the monotonic clock.
//!
//! Only differences of this clock are used (run and wait times, charges); deadlines
//! that the timer interrupt compares stay on the CPU's monotonic clock (`Cpu::now_ns`).

use crate::arch;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Nanoseconds per counter tick, as a 32.32 fixed-point number; `None`: use the
/// monotonic clock.
static SCALE: OnceLock<Option<u64>> = OnceLock::new();

/// How long the calibration watches both clocks (once per process).
const CALIBRATION: Duration = Duration::from_millis(2);

fn tsc_is_reliable() -> bool {
    let source =
        std::fs::read_to_string("/sys/devices/system/clocksource/clocksource0/current_clocksource")
            .unwrap_or_default();
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    source.trim() == "tsc" && has("constant_tsc") && has("nonstop_tsc")
}

fn calibrate() -> Option<u64> {
    if !tsc_is_reliable() {
        return None;
    }
    let (t0, c0) = (Instant::now(), arch::cycles());
    while t0.elapsed() < CALIBRATION {
        std::hint::spin_loop();
    }
    let (ns, c1) = (t0.elapsed().as_nanos() as u64, arch::cycles());
    let ticks = c1.checked_sub(c0).filter(|&t| t > 0)?;
    Some(((ns as u128) << 32).checked_div(ticks as u128)? as u64)
}

/// A CPU's accounting clock, zeroed when the CPU is created.
pub(crate) struct Clock {
    scale: Option<u64>,
    base: u64,
    epoch: Instant,
}

impl Clock {
    /// Calibrates on the first call in the process (2 ms), then is free.
    pub(crate) fn new() -> Clock {
        let scale = *SCALE.get_or_init(calibrate);
        Clock {
            scale,
            base: arch::cycles(),
            epoch: Instant::now(),
        }
    }

    /// Nanoseconds since the clock was made. Carrier only (it may read the counter of
    /// whichever CPU the carrier runs on: the check above is what makes that sound).
    #[inline]
    pub(crate) fn now(&self) -> u64 {
        match self.scale {
            Some(s) => ((arch::cycles().wrapping_sub(self.base) as u128 * s as u128) >> 32) as u64,
            None => self.epoch.elapsed().as_nanos() as u64,
        }
    }
}
