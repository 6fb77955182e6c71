//! The timer interrupt's figures, each beside a bare baseline measured in the same run:
//!
//! * (c) one preemption — tick raised, handler, redirect, full register save, switch to
//!   the other thread — against a bare signal round trip (raise + empty handler +
//!   sigreturn);
//! * (a) wakeup lateness of a 1 ms periodic high-priority sleeper beside a CPU hog, per
//!   model and tick, against a bare `setitimer` one-shot waited for with `sigwaitinfo`;
//! * (b) the tick's cost to a CPU-bound loop, against the same loop with no tick and
//!   under a bare `setitimer` with an empty handler at the same period: split between
//!   two threads (the tick runs and switches them; against the same pair under `None`,
//!   run one after the other), and alone (the tick stops: tickless full).
//!
//! Run: `cargo bench --bench preempt`, or one part: `cargo bench --bench preempt -- lateness`
//! (`tick-cost`, `preemption`, `lateness`). Regression figures: medians of repeated runs.

use preempt::{Model, Priority, Runtime, thread};
use std::arch::asm;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Sends `sig` to the calling thread with a `syscall` instruction in this binary's
/// code, so the signal is delivered at a preemptible instruction (libc's `syscall()`
/// wrapper would be outside the executable, where preemption is deferred).
fn raise_here(sig: i32) {
    // SAFETY: getpid/gettid have no preconditions.
    let (pid, tid) = unsafe { (libc::getpid(), libc::gettid()) };
    // SAFETY: tgkill with integer arguments; rcx and r11 are clobbered by `syscall`.
    unsafe {
        asm!(
            "syscall",
            inlateout("rax") libc::SYS_tgkill => _,
            in("rdi") pid,
            in("rsi") tid,
            in("rdx") sig,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
}

extern "C" fn empty_handler(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {}

/// Installs `handler` for `sig`, returning the previous action.
fn set_handler(sig: i32, handler: usize) -> libc::sigaction {
    // SAFETY: plain-data structs; sigaction with valid pointers.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = handler;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(sig, &new, &mut old);
        old
    }
}

fn restore_handler(sig: i32, old: &libc::sigaction) {
    // SAFETY: restoring a disposition read by set_handler.
    unsafe { libc::sigaction(sig, old, std::ptr::null_mut()) };
}

fn set_itimer(value: Duration, interval: Duration) {
    let tv = |d: Duration| libc::timeval {
        tv_sec: d.as_secs() as libc::time_t,
        tv_usec: d.subsec_micros() as libc::suseconds_t,
    };
    let it = libc::itimerval {
        it_interval: tv(interval),
        it_value: tv(value),
    };
    // SAFETY: a valid itimerval.
    unsafe { libc::setitimer(libc::ITIMER_REAL, &it, std::ptr::null_mut()) };
}

fn block_sigalrm(block: bool) {
    // SAFETY: a sigset built with the libc helpers; our own thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGALRM);
        let how = if block {
            libc::SIG_BLOCK
        } else {
            libc::SIG_UNBLOCK
        };
        libc::pthread_sigmask(how, &set, std::ptr::null_mut());
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentiles(mut v: Vec<u64>) -> (u64, u64, u64) {
    v.sort_unstable();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    (at(0.5), at(0.99), *v.last().unwrap())
}

fn full(tick: Duration) -> Runtime {
    // SAFETY: the bench's threads share only atomics.
    unsafe { Runtime::builder().preemptive(Model::Full) }
        .tick(tick)
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- (c) one preemption

const ROUNDS: u64 = 100_000;

fn bare_signal_round_trip_ns() -> f64 {
    let old = set_handler(libc::SIGUSR1, empty_handler as *const () as usize);
    let t0 = Instant::now();
    for _ in 0..ROUNDS {
        raise_here(libc::SIGUSR1);
    }
    let ns = t0.elapsed().as_nanos() as f64 / ROUNDS as f64;
    restore_handler(libc::SIGUSR1, &old);
    ns
}

fn preemption_ns() -> f64 {
    // A 100 ms tick: almost every preemption is one the threads raise themselves.
    let rt = full(preempt::MAX_TICK);
    let ns = rt.block_on(|| {
        let peer = thread::spawn(|| {
            for _ in 0..ROUNDS {
                raise_here(libc::SIGALRM);
            }
        });
        thread::yield_now();
        let t0 = Instant::now();
        for _ in 0..ROUNDS {
            raise_here(libc::SIGALRM); // preempted: the peer runs, raises, switches back
        }
        let d = t0.elapsed();
        peer.join().unwrap();
        d.as_nanos() as f64 / (2 * ROUNDS) as f64
    });
    let s = rt.stats();
    assert!(s.preemptions >= 2 * ROUNDS - 10, "{s:?}");
    ns
}

// ------------------------------------------------------------- (a) wakeup lateness

const PERIODS: usize = 1000;
const HOG_BURST: Duration = Duration::from_millis(5);

fn bare_oneshot_lateness() -> Vec<u64> {
    block_sigalrm(true);
    let mut late = Vec::with_capacity(PERIODS);
    for _ in 0..PERIODS {
        let t0 = Instant::now();
        set_itimer(Duration::from_millis(1), Duration::ZERO);
        // SAFETY: waits for the blocked SIGALRM; the set is built with the helpers.
        unsafe {
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, libc::SIGALRM);
            while libc::sigwaitinfo(&set, std::ptr::null_mut()) < 0 {}
        }
        late.push((t0.elapsed().saturating_sub(Duration::from_millis(1))).as_micros() as u64);
    }
    block_sigalrm(false);
    late
}

fn sleeper_lateness(rt: &Runtime) -> Vec<u64> {
    rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        // The hog yields only every HOG_BURST, which bounds the cooperative models.
        let hog = thread::spawn(move || {
            while !s.load(Relaxed) {
                let t0 = Instant::now();
                while t0.elapsed() < HOG_BURST {
                    std::hint::spin_loop();
                }
                thread::yield_now();
            }
        });
        let sampler = thread::Builder::new()
            .priority(Priority::new(50))
            .spawn(|| {
                let mut late = Vec::with_capacity(PERIODS);
                let mut next = Instant::now();
                for _ in 0..PERIODS {
                    next += Duration::from_millis(1);
                    thread::sleep_until(next);
                    late.push(next.elapsed().as_micros() as u64);
                    // Missed periods are skipped, not caught up in a burst.
                    while next + Duration::from_millis(1) < Instant::now() {
                        next += Duration::from_millis(1);
                    }
                }
                late
            })
            .unwrap();
        let late = sampler.join().unwrap();
        stop.store(true, Relaxed);
        hog.join().unwrap();
        late
    })
}

// -------------------------------------------------------------- (b) the tick's cost

const WORK: u64 = 100_000_000;

/// A CPU-bound loop of `n` iterations.
fn spin_work(n: u64) {
    let mut x = 1u64;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(i));
    }
    std::hint::black_box(x);
}

/// The whole loop; returns its wall time.
fn work() -> Duration {
    let t0 = Instant::now();
    spin_work(WORK);
    t0.elapsed()
}

fn bare_tick_work(period: Duration) -> Duration {
    let old = set_handler(libc::SIGALRM, empty_handler as *const () as usize);
    set_itimer(period, period);
    let d = work();
    set_itimer(Duration::ZERO, Duration::ZERO);
    restore_handler(libc::SIGALRM, &old);
    d
}

/// The loop alone in a green thread: under `Full` the tick stops (tickless full).
fn runtime_work(rt: &Runtime) -> Duration {
    rt.block_on(work)
}

/// The same work split between two green threads: under `Full` the tick runs and
/// switches between them; under `None` they run one after the other, untouched.
fn runtime_work_shared(rt: &Runtime) -> Duration {
    rt.block_on(|| {
        let t0 = Instant::now();
        let other = thread::spawn(|| spin_work(WORK / 2));
        spin_work(WORK / 2);
        other.join().unwrap();
        t0.elapsed()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        return; // cargo bench --no-run / listing: nothing to list
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let run = |part: &str| filters.is_empty() || filters.iter().any(|f| part.contains(f.as_str()));
    let ticks = [
        Duration::from_millis(1),
        Duration::from_micros(250),
        Duration::from_micros(100),
    ];

    if run("tick-cost") {
        tick_cost(&ticks);
    }
    if run("preemption") {
        preemption();
    }
    if run("lateness") {
        lateness(&ticks);
    }
}

/// (b) runs first: its bare baseline replaces the SIGALRM handler for a moment. The four
/// variants are interleaved round by round, so drift in the machine (the other vCPU, the
/// hypervisor) hits them alike; medians of 7 rounds.
fn tick_cost(ticks: &[Duration]) {
    println!("(b) the tick's cost to a CPU-bound loop, medians of 7");
    for &t in ticks {
        let (mut plain, mut bare) = (vec![], vec![]);
        let (mut none_alone, mut none_shared, mut alone, mut shared) =
            (vec![], vec![], vec![], vec![]);
        for _ in 0..7 {
            plain.push(work().as_secs_f64());
            bare.push(bare_tick_work(t).as_secs_f64());
            let rt = Runtime::builder().build().unwrap();
            none_alone.push(runtime_work(&rt).as_secs_f64());
            none_shared.push(runtime_work_shared(&rt).as_secs_f64());
            drop(rt);
            let rt = full(t);
            alone.push(runtime_work(&rt).as_secs_f64());
            shared.push(runtime_work_shared(&rt).as_secs_f64());
            drop(rt);
        }
        let (plain, bare) = (median(plain), median(bare));
        let (none_alone, none_shared) = (median(none_alone), median(none_shared));
        let (alone, shared) = (median(alone), median(shared));
        let (bare_over, ours_over) = (bare / plain - 1.0, shared / none_shared - 1.0);
        println!(
            "    tick {:>6?}: loop {:.1} ms; bare setitimer + empty handler {:+.1} %; \
             Model::Full, two threads sharing the loop, tick running {:+.1} % \
             (overhead ratio {:.2}x); one thread, tick stopped {:+.1} %",
            t,
            plain * 1e3,
            bare_over * 100.0,
            ours_over * 100.0,
            ours_over / bare_over.max(1e-9),
            (alone / none_alone - 1.0) * 100.0,
        );
    }
}

fn preemption() {
    println!("\n(c) one preemption vs a bare signal round trip, medians of 5");
    let bare = median((0..5).map(|_| bare_signal_round_trip_ns()).collect());
    let pre = median((0..5).map(|_| preemption_ns()).collect());
    println!(
        "    bare signal round trip {bare:.0} ns; one preemption (signal to the next thread) \
         {pre:.0} ns = {:.2}x",
        pre / bare
    );
}

fn lateness(ticks: &[Duration]) {
    println!("\n(a) lateness of a 1 ms periodic priority-50 sleeper beside a hog (µs)");
    let (p50, p99, max) = percentiles(bare_oneshot_lateness());
    println!("    bare setitimer one-shot      p50 {p50:>6} p99 {p99:>6} max {max:>6}");
    let base_p99 = p99;
    let rt = Runtime::builder().build().unwrap();
    let (p50, p99, max) = percentiles(sleeper_lateness(&rt));
    drop(rt);
    println!(
        "    Model::None                  p50 {p50:>6} p99 {p99:>6} max {max:>6}   (hog bursts of {HOG_BURST:?})"
    );
    for &t in ticks {
        let rt = Runtime::builder()
            .model(Model::Voluntary)
            .tick(t)
            .build()
            .unwrap();
        let (p50, p99, max) = percentiles(sleeper_lateness(&rt));
        drop(rt);
        println!("    Model::Voluntary, {t:>6?} tick p50 {p50:>6} p99 {p99:>6} max {max:>6}");
    }
    for &t in ticks {
        let rt = full(t);
        let (p50, p99, max) = percentiles(sleeper_lateness(&rt));
        drop(rt);
        println!(
            "    Model::Full,      {t:>6?} tick p50 {p50:>6} p99 {p99:>6} max {max:>6}   \
             p99 = {:.2}x the bare one-shot's",
            p99 as f64 / base_p99.max(1) as f64
        );
    }
}
