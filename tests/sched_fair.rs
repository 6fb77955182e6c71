//! The fair class (priority 0): shares by weight, wakeup preemption that does not depend
//! on the tick, no credit for sleeping, and real-time priorities above it all.
//!
//! Tests under `Model::Full` keep the `preemptive` contract: their green threads share
//! only atomics.

mod support;

use preempt::thread::{self, Builder, ThreadStats};
use preempt::{Priority, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// A CPU hog: spins until `stop`, then reports its statistics.
fn hog(stop: Arc<AtomicBool>) -> impl FnOnce() -> ThreadStats + Send {
    move || {
        while !stop.load(Relaxed) {
            std::hint::spin_loop();
        }
        thread::current().stats()
    }
}

/// Spins for `d` of wall time.
fn spin_for(d: Duration) {
    let t0 = Instant::now();
    while t0.elapsed() < d {
        std::hint::spin_loop();
    }
}

fn full(tick: Duration) -> Runtime {
    support::full_fair(tick)
}

/// Runs hogs at the given nice values for `secs` and returns their CPU times.
fn hog_shares(nices: &[i8], run: Duration) -> Vec<Duration> {
    let rt = full(Duration::from_millis(1));
    let nices = nices.to_vec();
    rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let hs: Vec<_> = nices
            .iter()
            .map(|&n| Builder::new().nice(n).spawn(hog(stop.clone())).unwrap())
            .collect();
        // The block_on thread sleeps (it is a member only while it runs).
        thread::sleep(run);
        stop.store(true, Relaxed);
        hs.into_iter().map(|h| h.join().unwrap().runtime).collect()
    })
}

#[test]
fn hogs_share_by_weight() {
    let _l = support::runtime_lock();
    let t = hog_shares(&[0, 5], Duration::from_secs(2));
    let ratio = t[0].as_secs_f64() / t[1].as_secs_f64();
    // Kernel weights: 1024 and 335.
    let want = 1024.0 / 335.0;
    eprintln!("nice 0 : nice 5 = {ratio:.3} (weights {want:.3}); {t:?}");
    assert!(
        (ratio / want - 1.0).abs() < 0.10,
        "nice 0 : nice 5 got {ratio:.3}, weights say {want:.3} ({t:?})"
    );
}

#[test]
fn eight_equal_hogs_get_an_eighth_each() {
    let _l = support::runtime_lock();
    let t = hog_shares(&[0; 8], Duration::from_secs(2));
    let total: f64 = t.iter().map(Duration::as_secs_f64).sum();
    let shares: Vec<f64> = t.iter().map(|d| d.as_secs_f64() / total).collect();
    eprintln!("shares {shares:.3?}");
    for s in &shares {
        assert!(
            (s * 8.0 - 1.0).abs() < 0.10,
            "a share of {s:.3} (want 0.125 ± 10 %): {shares:.3?}"
        );
    }
}

fn percentile(v: &mut [u64], p: f64) -> u64 {
    v.sort_unstable();
    v[((v.len() - 1) as f64 * p) as usize]
}

/// A thread at the default priority that sleeps 1 ms and then runs 50 µs, beside three
/// hogs: its wakeup lateness in µs (p50, p99).
fn sleeper_lateness(tick: Duration, periods: usize) -> (u64, u64) {
    let rt = full(tick);
    let mut late = rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..3).map(|_| thread::spawn(hog(stop.clone()))).collect();
        let sleeper = thread::spawn(move || {
            let mut late = Vec::with_capacity(periods);
            for _ in 0..periods {
                let deadline = Instant::now() + Duration::from_millis(1);
                thread::sleep_until(deadline);
                late.push(deadline.elapsed().as_micros() as u64);
                spin_for(Duration::from_micros(50));
            }
            late
        });
        let late = sleeper.join().unwrap();
        stop.store(true, Relaxed);
        hogs.into_iter().for_each(|h| {
            h.join().unwrap();
        });
        late
    });
    // The first periods teach the sleeper's request its length.
    let mut late = late.split_off(20);
    (percentile(&mut late, 0.5), percentile(&mut late, 0.99))
}

#[test]
fn a_woken_sleeper_preempts_hogs_at_once_whatever_the_tick() {
    let _l = support::runtime_lock();
    for tick in [Duration::from_millis(1), Duration::from_millis(10)] {
        // A hypervisor stall (1–9 ms, a few a second on a busy host) delays every
        // thread alike and can fill the p99 of a thousand samples by itself: a second
        // run decides. A scheduling fault fails both.
        let passed = (0..2).any(|_| {
            let (p50, p99) = sleeper_lateness(tick, 1000);
            eprintln!("tick {tick:?}: sleeper lateness p50 {p50} µs, p99 {p99} µs");
            p99 < 200
        });
        assert!(
            passed,
            "tick {tick:?}: a sleeper beside three hogs woke with p99 lateness ≥ 200 µs, twice"
        );
    }
}

/// Runs `sleeper` beside a CPU hog at a 1 ms tick; returns both threads' statistics.
fn sleeper_beside_a_hog(sleeper: fn()) -> (ThreadStats, ThreadStats) {
    let rt = full(Duration::from_millis(1));
    rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let h = thread::spawn(hog(stop.clone()));
        let s = thread::spawn(move || {
            sleeper();
            thread::current().stats()
        })
        .join()
        .unwrap();
        stop.store(true, Relaxed);
        (s, h.join().unwrap())
    })
}

/// Steal time: wall time in which the carrier does not run — a hypervisor stall, or
/// here its stand-in, an OS-level sleep that blocks the carrier itself — is charged to
/// nobody, so the thread that happened to be running is not put that far ahead of its
/// share (a request handler charged a stall of a few ms waited behind fifty siblings).
#[test]
fn time_the_carrier_does_not_run_is_charged_to_nobody() {
    let _l = support::runtime_lock();
    let (stalled, hog) = sleeper_beside_a_hog(|| {
        for _ in 0..5 {
            std::thread::sleep(Duration::from_millis(20)); // the whole carrier stops
            spin_for(Duration::from_millis(1));
        }
    });
    eprintln!("stalled {stalled:?}\nhog {hog:?}");
    // 100 ms of stalls and 5 ms of its own computing.
    assert!(
        stalled.runtime < Duration::from_millis(30),
        "charged {:?} for 5 ms of computing and 100 ms of stalls",
        stalled.runtime
    );
}

#[test]
fn a_frequent_sleeper_gets_no_more_than_its_share() {
    let _l = support::runtime_lock();
    let (sleeper, hog) = sleeper_beside_a_hog(|| {
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(1) {
            thread::sleep(Duration::from_micros(10));
            spin_for(Duration::from_micros(10));
        }
    });
    let share = sleeper.runtime.as_secs_f64() / (sleeper.runtime + hog.runtime).as_secs_f64();
    eprintln!("sleeper {sleeper:?}\nhog {hog:?}\nsleeper's share {share:.3}");
    assert!(
        share <= 0.55,
        "the frequent sleeper took {share:.3} of the CPU"
    );
}

#[test]
fn real_time_threads_still_preempt_every_normal_one() {
    let _l = support::runtime_lock();
    let rt = full(Duration::from_millis(1));
    // Two hiccups of the VM's timer delivery decide the p99 of 200 samples (a CI run saw
    // two of ~250 µs; typical p99 23–54 µs): a second run before the test fails.
    let (p99, progress_while_spinning) = rt_sleeper_beside_hogs(&rt);
    let (p99, progress_while_spinning) = if p99 < 200 {
        (p99, progress_while_spinning)
    } else {
        rt_sleeper_beside_hogs(&rt)
    };
    eprintln!("a priority-1 sleeper beside nice -20..-18 hogs: lateness p99 {p99} µs");
    assert!(p99 < 200, "p99 lateness {p99} µs");
    assert_eq!(
        progress_while_spinning, 0,
        "a normal thread ran beside a real-time spinner"
    );
}

/// A priority-1 thread sleeping 1 ms 200 times beside three fair-class hogs at nice
/// −20..−18: its lateness p99 (µs), and the hogs' progress while it then spins 20 ms.
fn rt_sleeper_beside_hogs(rt: &preempt::Runtime) -> (u64, u64) {
    let (mut late, progress_while_spinning) = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let work = Arc::new(AtomicU64::new(0));
        // Normal threads at the highest weights, counting their progress.
        let hogs: Vec<_> = (0..3)
            .map(|i| {
                let (stop, work) = (stop.clone(), work.clone());
                Builder::new()
                    .nice(-20 + i)
                    .spawn(move || {
                        while !stop.load(Relaxed) {
                            work.fetch_add(1, Relaxed);
                        }
                    })
                    .unwrap()
            })
            .collect();
        let w = work.clone();
        let r = Builder::new()
            .priority(Priority::new(1))
            .spawn(move || {
                let mut late = Vec::new();
                for _ in 0..200 {
                    let deadline = Instant::now() + Duration::from_millis(1);
                    thread::sleep_until(deadline);
                    late.push(deadline.elapsed().as_micros() as u64);
                }
                // While a real-time thread runs, no normal thread does.
                let before = w.load(Relaxed);
                spin_for(Duration::from_millis(20));
                (late, w.load(Relaxed) - before)
            })
            .unwrap();
        let out = r.join().unwrap();
        stop.store(true, Relaxed);
        hogs.into_iter().for_each(|h| h.join().unwrap());
        out
    });
    (percentile(&mut late, 0.99), progress_while_spinning)
}

#[test]
fn nice_values_are_validated_and_reported() {
    let _l = support::runtime_lock();
    let rt = full(Duration::from_millis(1));
    rt.block_on(|| {
        let e = Builder::new().nice(20).spawn(|| ()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        assert!(e.to_string().contains("-20..=19"), "{e}");
        let e = thread::set_nice(-21).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{e}");
        let h = Builder::new()
            .nice(7)
            .spawn(|| {
                let before = thread::current().nice();
                thread::set_nice(-3).unwrap();
                (before, thread::current().nice())
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), (7, -3));
    });
}

#[test]
fn thread_stats_count_runs_waits_and_switches() {
    let _l = support::runtime_lock();
    let (sleeper, hog) = sleeper_beside_a_hog(|| {
        for _ in 0..20 {
            thread::sleep(Duration::from_millis(1));
            spin_for(Duration::from_micros(200));
        }
    });
    eprintln!("sleeper {sleeper:?}\nhog {hog:?}");
    // Twenty sleeps are twenty voluntary switches; the spins before the last switch
    // (19 × 200 µs of wall time: stats count up to the thread's last switch) are run time.
    assert!(sleeper.voluntary_switches >= 20, "{sleeper:?}");
    assert!(sleeper.runtime >= Duration::from_millis(3), "{sleeper:?}");
    // The hog ran while the sleeper slept, and was preempted for its wakeups.
    assert!(hog.runtime >= Duration::from_millis(10), "{hog:?}");
    assert!(hog.involuntary_switches >= 10, "{hog:?}");
    assert!(hog.wait_time > Duration::ZERO, "{hog:?}");
}

/// The HTTP server's shape, without the network: four request handlers that wake
/// together every 250 µs (as one softirq pass wakes them) and run 10 µs, beside a thread that computes 5 ms and then sleeps
/// 50 µs, as a `/spin` handler between requests does. When everything sleeps at once
/// the class empties; a handler that joins it then must not be held out of
/// eligibility by siblings that rejoin owed credit from the hog's last burst: every
/// handler's wakeup lateness stays far below the hog's burst.
#[test]
fn short_handlers_beside_a_bursty_hog_all_wake_promptly() {
    let _l = support::runtime_lock();
    // Well under the hog's 5 ms burst, which a handler held out waits for (11–24 ms at
    // p99 before the fixes this test came with). A hypervisor stall delays every
    // thread alike and can fill a p99 by itself: a second run decides.
    let passed = (0..2).any(|_| {
        let (p50, p99) = handler_lateness();
        eprintln!("handlers beside a bursty hog: lateness p50 {p50} µs, p99 {p99} µs");
        p99 < 2000
    });
    assert!(passed, "p99 lateness ≥ 2000 µs, twice");
}

/// [`short_handlers_beside_a_bursty_hog_all_wake_promptly`]'s measurement: the
/// handlers' wakeup lateness in µs (p50, p99).
fn handler_lateness() -> (u64, u64) {
    let rt = full(Duration::from_millis(1));
    let mut late = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let burster = thread::spawn(move || {
            while !s.load(Relaxed) {
                spin_for(Duration::from_millis(5));
                thread::sleep(Duration::from_micros(50));
            }
        });
        let start = Instant::now() + Duration::from_millis(2);
        let handlers: Vec<_> = (0..4)
            .map(|_| {
                thread::spawn(move || {
                    let mut late = Vec::new();
                    for k in 0..2000u32 {
                        let due = start + Duration::from_micros(250) * k;
                        thread::sleep_until(due);
                        late.push(due.elapsed().as_micros() as u64);
                        spin_for(Duration::from_micros(10));
                    }
                    late
                })
            })
            .collect();
        let late: Vec<u64> = handlers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        stop.store(true, Relaxed);
        burster.join().unwrap();
        late
    });
    (percentile(&mut late, 0.5), percentile(&mut late, 0.99))
}

/// Fifty request handlers kept busy by a plain OS thread (a closed loop: each answer
/// brings the next request), every request 15 µs of CPU. Returns the p50 and p99 of
/// the client's round trip.
fn fifty_handlers_round_trip(fair: bool) -> (u64, u64) {
    use preempt::sync::mpsc;
    const HANDLERS: usize = 50;
    // SAFETY: the handlers share only channels and atomics.
    let rt = unsafe { Runtime::builder().preemptive(preempt::Model::Full) }
        .fair(fair)
        .build()
        .expect("build a Full runtime");
    let (answers_tx, answers) = mpsc::channel::<usize>();
    let mut requests = Vec::new();
    let mut handlers = Vec::new();
    for i in 0..HANDLERS {
        let (tx, rx) = mpsc::channel::<()>();
        let answers_tx = answers_tx.clone();
        requests.push(tx);
        handlers.push(rt.spawn(move || {
            while rx.recv().is_ok() {
                spin_for(Duration::from_micros(15));
                if answers_tx.send(i).is_err() {
                    return;
                }
            }
        }));
    }
    drop(answers_tx);
    let mut sent = vec![Instant::now(); HANDLERS];
    for (i, tx) in requests.iter().enumerate() {
        sent[i] = Instant::now();
        tx.send(()).unwrap();
    }
    let mut rtt = Vec::new();
    let until = Instant::now() + Duration::from_millis(1200);
    while Instant::now() < until {
        let i = answers.recv().unwrap();
        rtt.push(sent[i].elapsed().as_micros() as u64);
        sent[i] = Instant::now();
        requests[i].send(()).unwrap();
    }
    drop(requests);
    for h in handlers {
        h.join().unwrap();
    }
    let skip = rtt.len() / 10; // the handlers' first requests
    let v = &mut rtt[skip..];
    (percentile(v, 0.5), percentile(v, 0.99))
}

/// Under a load of request handlers (dozens runnable, each asking for µs at a time)
/// the fair class orders them about as round-robin does: no handler waits for the
/// others to catch up with time it was charged and did not choose — interrupts,
/// stalls — and none is switched out of its request by an interrupt it did not need.
/// Its p99 stays within 3× round-robin's (+0.5 ms); it was 3.7× here (10–20× in the
/// HTTP bench) before those fixes, 1.2–2.3× after. Best of two rounds (a host stall in
/// one run is a p99 by itself).
#[test]
fn fifty_request_handlers_wait_about_as_long_as_under_round_robin() {
    let _l = support::runtime_lock();
    let mut last = (0, 0, 0, 0);
    for _ in 0..2 {
        let (rr50, rr99) = fifty_handlers_round_trip(false);
        let (f50, f99) = fifty_handlers_round_trip(true);
        println!(
            "50 handlers, round trip: round-robin p50 {rr50} µs p99 {rr99} µs; \
             fair p50 {f50} µs p99 {f99} µs"
        );
        if f99 <= 3 * rr99 + 500 {
            return;
        }
        last = (f50, f99, rr50, rr99);
    }
    panic!(
        "fair p99 {} µs against round-robin's {} µs (p50 {} / {})",
        last.1, last.3, last.0, last.2
    );
}
