//! `Model::Full`: the timer interrupt preempts threads that never yield, only where
//! that is safe. (Green threads here follow the `preemptive` contract: atomics only, no
//! std locks or printing shared between them.)

mod support;

use preempt::thread::{self, Builder};
use preempt::{Model, Priority, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Spins until `stop`, counting.
fn spinner(count: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> impl FnOnce() + Send {
    move || {
        while !stop.load(Relaxed) {
            count.fetch_add(1, Relaxed);
        }
    }
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn spinners_that_never_yield_share_the_cpu() {
    let _l = support::runtime_lock();
    // Round-robin at priority 0: a switch at every tick (the fair class's slices are
    // tested in `sched_fair`).
    let rt = support::full_rr(Duration::from_millis(1));
    assert_eq!(rt.model(), Model::Full);
    let (a, b) = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let (a, b) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let h1 = thread::spawn(spinner(a.clone(), stop.clone()));
        let h2 = thread::spawn(spinner(b.clone(), stop.clone()));
        thread::sleep(Duration::from_millis(300));
        stop.store(true, Relaxed);
        h1.join().unwrap();
        h2.join().unwrap();
        (a.load(Relaxed), b.load(Relaxed))
    });
    let s = rt.stats();
    assert!(a > 0 && b > 0, "a={a} b={b}");
    let ratio = a as f64 / b as f64;
    assert!((0.5..2.0).contains(&ratio), "unfair split a={a} b={b}");
    assert!(s.preemptions >= 100, "{s:?}");
    assert!(s.switches_involuntary >= 100, "{s:?}");
    assert!(
        s.preemptions >= s.switches_involuntary - s.deferred_atomic,
        "{s:?}"
    );
    // Ticks taken plus ticks lost account for the ~300 periods that passed (how many
    // are lost depends on the machine's load, so only the sum is checked).
    let periods = s.ticks + s.ticks_lost;
    assert!((200..=450).contains(&periods), "{s:?}");
}

/// A 1 ms periodic priority-50 sleeper beside `hog` (which runs at the default
/// priority until the flag it is given is set): the sleeper's lateness per period, in
/// µs. Missed periods are skipped, not caught up in a burst.
fn sleeper_lateness_beside(
    periods: usize,
    hog: impl FnOnce(Arc<AtomicBool>) + Send + 'static,
) -> Vec<u64> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let hog = thread::spawn(move || hog(s));
    let sampler = Builder::new()
        .priority(Priority::new(50))
        .spawn(move || {
            let mut late = Vec::with_capacity(periods);
            let mut next = Instant::now();
            for _ in 0..periods {
                next += Duration::from_millis(1);
                thread::sleep_until(next);
                late.push(next.elapsed().as_micros() as u64);
                next = next.max(Instant::now());
            }
            late
        })
        .unwrap();
    let late = sampler.join().unwrap();
    stop.store(true, Relaxed);
    hog.join().unwrap();
    late
}

#[test]
fn a_high_priority_sleeper_runs_on_time_beside_a_spinner() {
    let _l = support::runtime_lock();
    // A coarse 10 ms tick: only the one-shot programming of the timer can explain
    // wakeups that are on time.
    let rt = support::full(Duration::from_millis(10));
    let mut lateness = rt.block_on(|| {
        sleeper_lateness_beside(200, |stop| {
            spinner(Arc::new(AtomicU64::new(0)), stop)();
        })
    });
    let p50 = percentile(&mut lateness, 0.5);
    let p90 = percentile(&mut lateness, 0.9);
    eprintln!("sleeper lateness beside a hog, 10 ms tick: p50 {p50} µs, p90 {p90} µs");
    // Well under the 10 ms tick: the sleeper preempts the hog when its timer fires.
    assert!(p50 < 1_000, "p50 lateness {p50} µs");
    assert!(p90 < 3_000, "p90 lateness {p90} µs");
}

#[test]
fn a_timer_interrupt_latched_under_irq_save_is_not_lost() {
    let _l = support::runtime_lock();
    // The hog holds the soft irq mask nearly all the time, so the sleeper's one-shot
    // (programmed a little early: the timer advance) is latched and replayed at the
    // mask's release. The replay must re-arm the device for a timer that is not due
    // yet: the tick is stopped (nothing queued beside the hog), so nothing else would
    // interrupt for it. The hog gives up after 3 s, which bounds the test.
    let rt = support::full(Duration::from_millis(10));
    let mut lateness = rt.block_on(|| {
        sleeper_lateness_beside(100, |stop| {
            let start = Instant::now();
            while !stop.load(Relaxed) && start.elapsed() < Duration::from_secs(3) {
                let _mask = preempt::irq::save();
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_micros(30) {
                    std::hint::spin_loop();
                }
            }
        })
    });
    let p50 = percentile(&mut lateness, 0.5);
    let p90 = percentile(&mut lateness, 0.9);
    eprintln!("sleeper lateness beside an irq-masking hog: p50 {p50} µs, p90 {p90} µs");
    // A mask section lasts 30 µs; a lost interrupt would cost the rest of the 3 s.
    assert!(p50 < 1_000, "p50 lateness {p50} µs");
    assert!(p90 < 3_000, "p90 lateness {p90} µs");
}

/// Spins for `ms` inside `section`, while another thread spins beside it; returns how
/// far the other thread got during the section, and whether a switch happened at the
/// section's end (the involuntary-switch counter moved across the guard's drop).
fn section_defers_and_switches_at_its_end<G: 'static>(
    section: fn() -> G,
) -> (u64, bool, preempt::Stats) {
    let rt = Arc::new(support::full(Duration::from_millis(1)));
    let r = rt.clone();
    let (during, switched) = rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let other = Arc::new(AtomicU64::new(0));
        let h = thread::spawn(spinner(other.clone(), stop.clone()));
        thread::yield_now(); // the spinner is running or runnable
        let o = other.clone();
        let rr = r.clone();
        let critical = thread::spawn(move || {
            let g = section();
            assert!(preempt::in_atomic());
            let before = o.load(Relaxed);
            let t0 = Instant::now();
            while t0.elapsed() < Duration::from_millis(30) {
                std::hint::spin_loop();
            }
            let during = o.load(Relaxed) - before;
            let switches = rr.stats().switches_involuntary;
            drop(g); // the deferred switch happens here
            (during, rr.stats().switches_involuntary > switches)
        });
        let res = critical.join().unwrap();
        stop.store(true, Relaxed);
        h.join().unwrap();
        res
    });
    let stats = rt.stats();
    drop(Arc::into_inner(rt).expect("the runtime is ours again"));
    (during, switched, stats)
}

#[test]
fn disable_defers_preemption_to_the_matching_enable() {
    let _l = support::runtime_lock();
    let (during, switched, s) = section_defers_and_switches_at_its_end(preempt::disable);
    assert_eq!(
        during, 0,
        "the other thread ran inside the disabled section"
    );
    assert!(switched, "no switch at the enable: {s:?}");
    assert!(s.deferred_atomic >= 10, "{s:?}");
}

#[test]
fn irq_save_latches_ticks_and_replays_them() {
    let _l = support::runtime_lock();
    let (during, switched, s) = section_defers_and_switches_at_its_end(|| {
        let g = preempt::irq::save();
        assert!(preempt::irq::irqs_disabled());
        g
    });
    assert_eq!(during, 0, "the other thread ran inside the masked section");
    assert!(
        switched,
        "the latched tick was not replayed at restore: {s:?}"
    );
    assert!(s.deferred_irq_mask >= 10, "{s:?}");
}

#[test]
fn another_sigalrm_handler_is_refused() {
    const T: &str = "another_sigalrm_handler_is_refused";
    if support::is_child(T) {
        extern "C" fn user_alarm(_: libc::c_int) {}
        // SAFETY: installing a trivial handler in a child process.
        unsafe { libc::signal(libc::SIGALRM, user_alarm as *const () as libc::sighandler_t) };
        // SAFETY: never runs threads.
        let e = unsafe { Runtime::builder().preemptive(Model::Full) }
            .build()
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::ResourceBusy);
        assert!(
            e.to_string().contains("SIGALRM already has a handler"),
            "{e}"
        );
        // Model::None takes no ticks and does not need SIGALRM.
        drop(Runtime::builder().build().unwrap());
        return;
    }
    // Holding the lock keeps the child off the CPUs while timing tests run.
    let _l = support::runtime_lock();
    let out = support::run_child(T);
    assert!(out.status.success(), "{}", support::stderr(&out));
}

#[test]
fn the_environment_can_lower_the_model_but_never_raise_it() {
    const T: &str = "the_environment_can_lower_the_model_but_never_raise_it";
    if support::is_child(T) {
        let env = std::env::var(preempt::MODEL_ENV).unwrap();
        let rt = support::full(Duration::from_millis(1));
        match env.as_str() {
            "none" => assert_eq!(rt.model(), Model::None),
            "voluntary" => assert_eq!(rt.model(), Model::Voluntary),
            other => panic!("unexpected {other}"),
        }
        drop(rt);
        if env == "voluntary" {
            // Asking for less than the limit gives what was asked.
            let rt = Runtime::builder().build().unwrap();
            assert_eq!(rt.model(), Model::None);
        }
        return;
    }
    // Holding the lock keeps the children off the CPUs while timing tests run.
    let _l = support::runtime_lock();
    for env in ["none", "voluntary"] {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([T, "--exact", "--nocapture"])
            .env(support::CHILD_ENV, T)
            .env(preempt::MODEL_ENV, env)
            .output()
            .unwrap();
        assert!(out.status.success(), "{env}: {}", support::stderr(&out));
    }
    // A bad value is an error, not silently ignored.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([T, "--exact", "--nocapture"])
        .env(support::CHILD_ENV, T)
        .env(preempt::MODEL_ENV, "fastest")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        support::stderr(&out).contains("PREEMPT_MODEL"),
        "{}",
        support::stderr(&out)
    );
}
