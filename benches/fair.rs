//! The fair class against the round-robin queue it replaced, in one run:
//!
//! * the cost of a yield (two threads at the default priority alternating with
//!   `yield_now`: ns per switch) and of a wakeup (two threads handing a token back and
//!   forth with `unpark` + `park`: ns per hand-off, a wakeup and a switch);
//! * the lateness of a thread at the default priority that sleeps 1 ms and runs 50 µs
//!   beside three CPU hogs, at ticks of 1 ms and 10 ms, under `Full`.
//!
//! Run: `cargo bench --bench fair`. Costs are medians of 9 runs; lateness percentiles
//! are over 2000 periods.

use preempt::thread;
use preempt::{Model, Runtime};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

const ROUNDS: u64 = 200_000;
const RUNS: usize = 9;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn yield_ns(rt: &Runtime) -> f64 {
    rt.block_on(|| {
        let peer = thread::spawn(|| (0..ROUNDS).for_each(|_| thread::yield_now()));
        thread::yield_now();
        let t0 = Instant::now();
        (0..ROUNDS).for_each(|_| thread::yield_now());
        let d = t0.elapsed();
        peer.join().unwrap();
        d.as_nanos() as f64 / (2 * ROUNDS) as f64
    })
}

fn wakeup_ns(rt: &Runtime) -> f64 {
    rt.block_on(|| {
        let turn = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let me = thread::current();
        let t = turn.clone();
        let peer = thread::spawn(move || {
            for i in 0..ROUNDS {
                while t.load(Relaxed) != 2 * i + 1 {
                    thread::park();
                }
                t.store(2 * i + 2, Relaxed);
                me.unpark();
            }
        });
        let p = peer.thread().clone();
        let t0 = Instant::now();
        for i in 0..ROUNDS {
            turn.store(2 * i + 1, Relaxed);
            p.unpark();
            while turn.load(Relaxed) != 2 * i + 2 {
                thread::park();
            }
        }
        let d = t0.elapsed();
        peer.join().unwrap();
        d.as_nanos() as f64 / (2 * ROUNDS) as f64
    })
}

fn lateness(fair: bool, tick: Duration) -> (u64, u64, u64) {
    // SAFETY: the threads share only atomics.
    let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
        .tick(tick)
        .fair(fair)
        .build()
        .expect("runtime");
    let mut late = rt.block_on(|| {
        let stop = Arc::new(AtomicBool::new(false));
        let hogs: Vec<_> = (0..3)
            .map(|_| {
                let stop = stop.clone();
                thread::spawn(move || {
                    while !stop.load(Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let sleeper = thread::spawn(|| {
            let mut late = Vec::new();
            for _ in 0..2020 {
                let deadline = Instant::now() + Duration::from_millis(1);
                thread::sleep_until(deadline);
                late.push(deadline.elapsed().as_micros() as u64);
                let t0 = Instant::now();
                while t0.elapsed() < Duration::from_micros(50) {
                    std::hint::spin_loop();
                }
            }
            late.split_off(20)
        });
        let late = sleeper.join().unwrap();
        stop.store(true, Relaxed);
        hogs.into_iter().for_each(|h| h.join().unwrap());
        late
    });
    late.sort_unstable();
    let p = |q: f64| late[((late.len() - 1) as f64 * q) as usize];
    (p(0.5), p(0.99), p(0.999))
}

fn main() {
    // One runtime at a time: alternate the two classes, run by run.
    let cost = |f: fn(&Runtime) -> f64| {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            for (fair, v) in [(true, &mut a), (false, &mut b)] {
                let rt = Runtime::builder().fair(fair).build().expect("runtime");
                v.push(f(&rt));
            }
        }
        (median(a), median(b))
    };
    let (yf, yr) = cost(yield_ns);
    let (wf, wr) = cost(wakeup_ns);
    println!("the normal class: fair (EEVDF) against round-robin, medians of {RUNS} runs");
    println!(
        "  yield, ns per switch           fair {yf:>7.1}   round-robin {yr:>7.1}   {:.2}x",
        yf / yr
    );
    println!(
        "  unpark+park, ns per hand-off   fair {wf:>7.1}   round-robin {wr:>7.1}   {:.2}x",
        wf / wr
    );
    println!(
        "\nlateness of a 1 ms sleeper running 50 µs beside three hogs, all at the default \
         priority, Full (2000 periods)"
    );
    println!("  tick     class          p50 µs   p99 µs  p99.9 µs");
    for tick in [Duration::from_millis(1), Duration::from_millis(10)] {
        for fair in [true, false] {
            let (p50, p99, p999) = lateness(fair, tick);
            println!(
                "  {:<8} {:<12} {p50:>8} {p99:>8} {p999:>9}",
                format!("{tick:?}"),
                if fair { "fair" } else { "round-robin" }
            );
        }
    }
}
