//! Tickless operation under `Model::Full`: no ticks while the CPU idles or runs a lone
//! thread with no timer pending; ticks again as soon as a second thread is runnable; a
//! wakeup from another OS thread still reaches a tickless, busy CPU at once; and a tick
//! finer than the default runs at its period only while a thread that computes is about.

mod support;

use preempt::{Priority, thread};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::{Duration, Instant};

use support::spin;

#[test]
fn a_lone_thread_takes_almost_no_ticks_two_take_one_per_period() {
    let _l = support::runtime_lock();
    let rt = support::full(Duration::from_millis(1));
    // Ticks the host holds back while it runs something else are lost: a busy host
    // can take a run's two threads below 150. A second run decides; a tick that stays
    // on for a lone thread, or off for two, fails both.
    let mut runs = Vec::new();
    for _ in 0..2 {
        let t0 = rt.stats().ticks;
        rt.block_on(|| spin(Duration::from_millis(200)));
        let alone = rt.stats().ticks - t0;
        let t1 = rt.stats().ticks;
        rt.block_on(|| {
            let other = preempt::spawn(|| spin(Duration::from_millis(200)));
            spin(Duration::from_millis(200));
            other.join().unwrap();
        });
        let two = rt.stats().ticks - t1;
        if alone <= 5 && two >= 150 {
            return;
        }
        runs.push((alone, two));
    }
    panic!("ticks in 200 ms (a lone thread, two threads), twice: {runs:?}; want ≤ 5 and ≥ 150");
}

#[test]
fn a_remote_wakeup_reaches_a_tickless_busy_cpu() {
    let _l = support::runtime_lock();
    let rt = Arc::new(support::full(Duration::from_millis(1)));
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    let r = rt.clone();
    let latencies = rt.block_on(move || {
        // A high-priority thread parks; the main thread then spins alone (tickless).
        let (tx, rx) = std::sync::mpsc::channel::<Instant>();
        let hi = thread::Builder::new()
            .priority(Priority::new(10))
            .spawn(move || {
                let mut lat = Vec::new();
                while lat.len() < 20 {
                    thread::park(); // may return early; the channel is the truth
                    while let Ok(sent) = rx.try_recv() {
                        lat.push(sent.elapsed());
                    }
                }
                f.store(true, SeqCst);
                lat
            })
            .unwrap();
        let handle = hi.thread().clone();
        // A plain OS thread unparks it 20 times while the CPU is busy with main.
        let waker = std::thread::spawn(move || {
            for _ in 0..20 {
                std::thread::sleep(Duration::from_millis(5));
                tx.send(Instant::now()).unwrap();
                handle.unpark();
            }
        });
        let ticks_before = r.stats().ticks;
        let t0 = Instant::now();
        while !flag.load(SeqCst) {
            std::hint::spin_loop(); // never yields: only an interrupt lets `hi` run
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "the wakeups never arrived"
            );
        }
        let ticks = r.stats().ticks - ticks_before;
        waker.join().unwrap();
        (hi.join().unwrap(), ticks)
    });
    let (mut lat, ticks) = latencies;
    lat.sort();
    let median = lat[lat.len() / 2];
    // Well under the ~100 ms the test spans: each wakeup interrupted the spinner itself
    // (the tick was stopped: two ticks per wakeup at most — the IPI and one more).
    assert!(
        median < Duration::from_millis(2),
        "median wake latency {median:?}"
    );
    assert!(
        ticks <= 70,
        "{ticks} ticks: the tick did not stop between wakeups"
    );
    drop(Arc::into_inner(rt).unwrap());
}

#[test]
fn tickless_full_takes_fewer_ticks_than_periodic() {
    let _l = support::runtime_lock();
    let lone = |tickless: bool| {
        // SAFETY: the green thread touches no thread-local.
        let rt = unsafe { preempt::Runtime::builder().preemptive(preempt::Model::Full) }
            .tick(Duration::from_millis(1))
            .tickless(tickless)
            .build()
            .unwrap();
        let t0 = rt.stats().ticks;
        rt.block_on(|| spin(Duration::from_millis(100)));
        rt.stats().ticks - t0
    };
    let (nohz, periodic) = (lone(true), lone(false));
    assert!(nohz <= 5, "tickless: {nohz} ticks in 100 ms");
    assert!(periodic >= 60, "periodic: only {periodic} ticks in 100 ms");
}

/// The clock-event device has one expiry. While a hog runs alone it is stopped, with a
/// one-shot for the next sleeper; when a second thread becomes runnable the periodic
/// tick starts again — and must keep that one-shot as its first expiry, or the sleeper
/// wakes up to a whole tick late. Each round: `w` wakes 400 µs before `s` and runs
/// 50 µs (its wakeup programs `s`'s one-shot and restarts the tick), then `s` wakes.
#[test]
fn restarting_the_tick_keeps_a_sleepers_one_shot() {
    let _l = support::runtime_lock();
    let rt = support::full_fair(Duration::from_millis(1));
    // A busy host's stalls delay every wakeup alike and can fill a p90 of 200 by
    // themselves: a second run decides. A lost one-shot fails both.
    let p90s: Vec<_> = (0..2)
        .map(|_| one_shot_lateness_p90(&rt))
        .take_while(|p90| *p90 >= Duration::from_micros(300))
        .collect();
    assert!(
        p90s.len() < 2,
        "p90 lateness {p90s:?} in two runs: the sleeper waited for a tick"
    );
}

/// [`restarting_the_tick_keeps_a_sleepers_one_shot`]'s measurement: the p90 lateness of
/// 200 sleeps that end 400 µs after another thread's wakeup restarted the tick.
fn one_shot_lateness_p90(rt: &preempt::Runtime) -> Duration {
    let late = rt.block_on(|| {
        let start = Instant::now() + Duration::from_millis(5);
        let round = move |k: u32| start + Duration::from_micros(2500) * k;
        let done = Arc::new(AtomicBool::new(false));
        let d = done.clone();
        let hog = thread::spawn(move || {
            while !d.load(SeqCst) {
                spin(Duration::from_micros(20));
            }
        });
        let w = thread::spawn(move || {
            for k in 0..200 {
                thread::sleep_until(round(k) + Duration::from_micros(900));
                spin(Duration::from_micros(50));
            }
        });
        let mut late = Vec::new();
        for k in 0..200 {
            let due = round(k) + Duration::from_micros(1300);
            thread::sleep_until(due);
            late.push(due.elapsed());
        }
        w.join().unwrap();
        done.store(true, SeqCst);
        hog.join().unwrap();
        late
    });
    let mut sorted = late;
    sorted.sort();
    sorted[sorted.len() * 9 / 10]
}

/// Ticks taken in 200 ms by four threads that pass two tokens round a ring — each
/// blocks as soon as it has passed its token on, so two are runnable at any time and
/// every burst lasts microseconds — with or without a spinner beside them.
fn ring_ticks(rt: &preempt::Runtime, with_spinner: bool) -> u64 {
    use preempt::sync::mpsc;
    let t0 = rt.stats().ticks;
    rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..4).map(|_| mpsc::channel::<u32>()).unzip();
        txs[0].send(0).unwrap();
        txs[2].send(1).unwrap();
        let ring: Vec<_> = rxs
            .into_iter()
            .enumerate()
            .map(|(i, rx)| {
                let (tx, stop) = (txs[(i + 1) % 4].clone(), stop.clone());
                preempt::spawn(move || {
                    let mut passed = 0u64;
                    while let Ok(token) = rx.recv() {
                        if stop.load(SeqCst) {
                            break; // dropping `tx` ends the next thread's loop
                        }
                        let _ = tx.send(token);
                        passed += 1;
                    }
                    passed
                })
            })
            .collect();
        drop(txs);
        let spinner = with_spinner.then(|| preempt::spawn(|| spin(Duration::from_millis(200))));
        thread::sleep(Duration::from_millis(200));
        stop.store(true, SeqCst);
        if let Some(s) = spinner {
            s.join().unwrap();
        }
        for t in ring {
            assert!(t.join().unwrap() > 0, "a ring thread never ran");
        }
    });
    rt.stats().ticks - t0
}

#[test]
fn a_fine_tick_runs_only_while_a_thread_computes() {
    // At a 100 µs tick, threads that block within microseconds are never cut by a tick:
    // the device runs at the backstop period (1 ms) until a thread that computes is
    // picked, and at the runtime's tick while one is about.
    let _l = support::runtime_lock();
    for build in [support::full_rr, support::full_fair] {
        let rt = build(Duration::from_micros(100));
        let short = ring_ticks(&rt, false);
        let computing = ring_ticks(&rt, true);
        assert!(
            short * 2 < computing,
            "short bursts took {short} ticks in 200 ms, short bursts beside a spinner {computing}"
        );
        assert!(
            computing >= 1000,
            "a spinner among them took only {computing} ticks"
        );
    }
}

/// Ticks taken in 200 ms by a spinner that wakes 32 threads together every 500 µs, each
/// of which runs a few µs and parks again; and the number of such batches.
fn batch_ticks(rt: &preempt::Runtime) -> (u64, u64) {
    const WORKERS: usize = 32;
    let t0 = rt.stats().ticks;
    let batches = rt.block_on(move || {
        let stop = Arc::new(AtomicBool::new(false));
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| {
                let stop = stop.clone();
                preempt::spawn(move || {
                    while !stop.load(SeqCst) {
                        thread::park();
                        spin(Duration::from_micros(5));
                    }
                })
            })
            .collect();
        let threads: Vec<_> = workers.iter().map(|w| w.thread().clone()).collect();
        let s = stop.clone();
        let spinner = preempt::spawn(move || {
            let (start, mut batches) = (Instant::now(), 0u64);
            while start.elapsed() < Duration::from_millis(200) {
                spin(Duration::from_micros(500));
                threads.iter().for_each(|t| t.unpark());
                batches += 1;
            }
            s.store(true, SeqCst);
            threads.iter().for_each(|t| t.unpark());
            batches
        });
        let batches = spinner.join().unwrap();
        workers.into_iter().for_each(|w| w.join().unwrap());
        batches
    });
    (rt.stats().ticks - t0, batches)
}

#[test]
fn a_fine_tick_relaxes_as_a_batch_of_short_bursts_begins() {
    // Per batch, the 100 µs tick cuts the spinner once the workers are queued. The
    // batch (32 × 5 µs and the switches) outlasts a tick with nothing to cut: the device
    // relaxes to the backstop period as its first worker is picked, rather than at a
    // tick in it (3.0 ticks per batch measured against 2.2), and the relaxed period
    // starts then, not at the fine period's next expiry, which fell in the batch
    // (2.1–2.2 against 1.2–1.3).
    let _l = support::runtime_lock();
    let rt = support::full_rr(Duration::from_micros(100));
    let (ticks, batches) = batch_ticks(&rt);
    eprintln!("{ticks} ticks for {batches} batches of short bursts");
    assert!(batches >= 100, "{batches} batches");
    assert!(
        ticks * 10 < batches * 17,
        "{ticks} ticks for {batches} batches of short bursts"
    );
}
