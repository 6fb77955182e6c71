//! Regression figures for the scheduler's two hottest paths, against OS threads measured
//! in the same run:
//!
//! * yield ping-pong: two green threads on one CPU alternating with `yield_now`; one
//!   iteration is one `yield_now` by the timed thread = two context switches. The
//!   baseline is two OS threads handing a token back and forth over std channels.
//! * spawn + join of an empty thread, against `std::thread::spawn` + `join`.
//!
//! Run: `cargo bench --bench switch`. Figures are medians of criterion's samples; the
//! ratios at the end are what to compare across machines, not the absolute times.

use criterion::Criterion;
use preempt::thread;
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Every (iterations, elapsed) sample criterion asked for, per benchmark.
static SAMPLES: Mutex<Vec<(&'static str, u64, Duration)>> = Mutex::new(Vec::new());

fn record(name: &'static str, iters: u64, d: Duration) -> Duration {
    SAMPLES.lock().unwrap().push((name, iters, d));
    d
}

/// Median nanoseconds per iteration over the last `n` samples of `name`.
fn median_ns(name: &str, n: usize) -> f64 {
    let s = SAMPLES.lock().unwrap();
    let mut v: Vec<f64> = s
        .iter()
        .filter(|(b, _, _)| *b == name)
        .map(|(_, i, d)| d.as_nanos() as f64 / *i as f64)
        .collect();
    let keep = v.len().min(n);
    let mut v = v.split_off(v.len() - keep);
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

const GREEN_YIELD: &str = "green yield round trip (2 switches)";
const OS_PINGPONG: &str = "os threads channel round trip (2 switches)";
const GREEN_SPAWN: &str = "green spawn+join";
const OS_SPAWN: &str = "os thread spawn+join";
const SAMPLE_SIZE: usize = 30;

fn main() {
    let mut c = Criterion::default()
        .sample_size(SAMPLE_SIZE)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let rt = preempt::Runtime::builder().build().expect("runtime");

    c.bench_function(GREEN_YIELD, |b| {
        b.iter_custom(|iters| {
            let d = rt.block_on(move || {
                let peer = thread::spawn(move || {
                    for _ in 0..iters {
                        thread::yield_now();
                    }
                });
                thread::yield_now(); // let the peer start
                let t0 = Instant::now();
                for _ in 0..iters {
                    thread::yield_now();
                }
                let d = t0.elapsed();
                peer.join().unwrap();
                d
            });
            record(GREEN_YIELD, iters, d)
        })
    });

    c.bench_function(OS_PINGPONG, |b| {
        b.iter_custom(|iters| {
            let (ping_tx, ping_rx) = mpsc::channel::<()>();
            let (pong_tx, pong_rx) = mpsc::channel::<()>();
            let peer = std::thread::spawn(move || {
                while ping_rx.recv().is_ok() {
                    pong_tx.send(()).unwrap();
                }
            });
            let t0 = Instant::now();
            for _ in 0..iters {
                ping_tx.send(()).unwrap();
                pong_rx.recv().unwrap();
            }
            let d = t0.elapsed();
            drop(ping_tx);
            peer.join().unwrap();
            record(OS_PINGPONG, iters, d)
        })
    });

    c.bench_function(GREEN_SPAWN, |b| {
        b.iter_custom(|iters| {
            let d = rt.block_on(move || {
                let t0 = Instant::now();
                for _ in 0..iters {
                    thread::spawn(|| std::hint::black_box(())).join().unwrap();
                }
                t0.elapsed()
            });
            record(GREEN_SPAWN, iters, d)
        })
    });

    c.bench_function(OS_SPAWN, |b| {
        b.iter_custom(|iters| {
            let t0 = Instant::now();
            for _ in 0..iters {
                std::thread::spawn(|| std::hint::black_box(()))
                    .join()
                    .unwrap();
            }
            record(OS_SPAWN, iters, t0.elapsed())
        })
    });

    c.final_summary();
    drop(rt);

    let gy = median_ns(GREEN_YIELD, SAMPLE_SIZE) / 2.0;
    let oy = median_ns(OS_PINGPONG, SAMPLE_SIZE) / 2.0;
    let gs = median_ns(GREEN_SPAWN, SAMPLE_SIZE);
    let os = median_ns(OS_SPAWN, SAMPLE_SIZE);
    println!("\nregression figures (medians of {SAMPLE_SIZE} samples, this run):");
    println!("  switch, green yield ping-pong    {gy:>10.1} ns");
    println!(
        "  switch, OS threads + channels    {oy:>10.1} ns   green is {:.0}x faster",
        oy / gy
    );
    println!("  spawn+join, green thread         {gs:>10.1} ns");
    println!(
        "  spawn+join, OS thread            {os:>10.1} ns   green is {:.0}x faster",
        os / gs
    );
}
