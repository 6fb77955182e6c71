//! The stuck-carrier watchdog: the kernel's softlockup detector, for carriers.
//!
//! One OS thread per runtime (`SIGALRM` blocked, like every thread the runtime makes)
//! looks at its CPU every 100 ms. A CPU that has threads queued but has not scheduled —
//! no switch, no idle wait — for [`STALL`] is stuck, and the watchdog says so once per
//! episode on stderr: which carrier, which green thread it is running, and what the
//! carrier is probably doing, read from `/proc/self/task/<tid>/{stat,wchan}`:
//!
//! * blocked in the kernel (state `S`/`D`), typically in a futex: a green thread waits on
//!   an OS lock — `std::sync::Mutex`, `parking_lot` — whose owner is another green thread
//!   of the same CPU, preempted while holding it, which can never run again (HAZARDS.md
//!   H3). Use the runtime's own primitives, or hold preemption off with the lock;
//! * running (state `R`): a green thread computes without reaching a preemption point —
//!   any long computation under `Model::None`, or a long call into foreign code.
//!
//! It only reads: atomics the CPU publishes, and the running task's name, which is read
//! only while the CPU makes no progress and discarded if progress resumed meanwhile.

use crate::loom::sync::atomic::Ordering;
use crate::sched::Cpu;
use crate::sys;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

/// How long a CPU with queued threads may go without scheduling before it is reported.
pub const STALL: Duration = Duration::from_secs(1);
const PERIOD: Duration = Duration::from_millis(100);

/// The watchdog thread of one runtime; stopped and joined on drop.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    pub(crate) fn start(cpu: Arc<Cpu>, name: &str) -> std::io::Result<Watchdog> {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{name}-watchdog"))
            .spawn(move || {
                crate::irq::set_sigalrm_blocked(true);
                watch(&cpu, &s);
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn progress(cpu: &Cpu) -> u64 {
    let s = &cpu.stats;
    s.switches_voluntary.load(Ordering::Relaxed)
        + s.switches_involuntary.load(Ordering::Relaxed)
        + s.idle_waits.load(Ordering::Relaxed)
}

fn watch(cpu: &Cpu, stop: &AtomicBool) {
    let mut last = progress(cpu);
    let mut since = Instant::now();
    let mut reported = false;
    while !stop.load(std::sync::atomic::Ordering::Acquire) {
        std::thread::park_timeout(PERIOD);
        let p = progress(cpu);
        if p != last || cpu.queued.load(Ordering::Relaxed) == 0 {
            (last, since, reported) = (p, Instant::now(), false);
            continue;
        }
        if !reported && since.elapsed() >= STALL {
            reported = true;
            report(cpu, since.elapsed(), last);
        }
    }
}

/// The thread's scheduler state letter and kernel wait channel, from /proc.
fn kernel_state(tid: i32) -> (String, String) {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap_or_default();
    // The state is the field after the parenthesised command name.
    let state = stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    let wchan = std::fs::read_to_string(format!("/proc/self/task/{tid}/wchan"))
        .unwrap_or_default()
        .trim()
        .to_owned();
    (state, wchan)
}

#[cold]
fn report(cpu: &Cpu, stalled: Duration, seen: u64) {
    let running = cpu.running.load(Ordering::Relaxed);
    let name = if running.is_null() {
        "<none>".to_owned()
    } else {
        // SAFETY: the CPU has not switched for a whole STALL, so the task it runs is
        // alive (it is freed only after a switch away from it); the name is discarded
        // below if the CPU made progress while we read it.
        unsafe {
            format!(
                "'{}' (id {})",
                (*running).display_name(),
                (*running).id.as_u64()
            )
        }
    };
    if progress(cpu) != seen {
        return;
    }
    let tid = cpu.tid.load(std::sync::atomic::Ordering::Acquire);
    // A carrier blocked in the kernel still wakes for every tick to run the handler:
    // sample a few times and prefer a blocked sample over a running one.
    let mut sample = ("?".to_owned(), String::new());
    for _ in 0..10 {
        let (state, wchan) = kernel_state(tid);
        let blocked = state == "S" || state == "D";
        sample = (state, wchan);
        if blocked {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let (state, wchan) = sample;
    let doing = match state.as_str() {
        "S" | "D" => format!(
            "blocked in the kernel ({}): probably waiting on an OS lock (std::sync::Mutex, \
             parking_lot) held by a green thread of this CPU that was preempted while holding \
             it and can never run again; use preempt's own locks, or hold preemption off \
             while holding the lock",
            if wchan.is_empty() || wchan == "0" {
                "state ".to_owned() + &state
            } else {
                wchan
            }
        ),
        "R" => "running without reaching a preemption point (a long computation under \
                Model::None, or a long call into foreign code)"
            .to_owned(),
        other => format!("in state {other}"),
    };
    let msg = format!(
        "preempt watchdog: cpu{} (carrier tid {tid}) has not scheduled for {:.1} s although \
         {} thread(s) are runnable; it is running green thread {name}, {doing}\n",
        cpu.id,
        stalled.as_secs_f64(),
        cpu.queued.load(Ordering::Relaxed),
    );
    sys::write_stderr(msg.as_bytes());
}
