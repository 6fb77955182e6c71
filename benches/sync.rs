//! Regression figures for `preempt::sync`, each beside baselines measured in the same
//! run (medians of 15 rounds):
//!
//! * uncontended lock + unlock in a green thread: `preempt::sync::Mutex` and
//!   `SpinLock` against `std::sync::Mutex` and `parking_lot::Mutex` (target: the mutex
//!   within 1.5× of std), under `Model::None` and again under `Model::Full`, where the
//!   mutex fast path must record its owner where the tick cannot preempt (an assembly
//!   window the handler defers in);
//! * contended handoff: two green threads alternate on one mutex (each lock finds it
//!   held, queues, and is handed the lock at the other's unlock), against a plain
//!   `yield_now` ping-pong (the switches alone);
//! * channel ping-pong: a round trip between two green threads over two
//!   `preempt::sync::mpsc` channels, against two OS threads over std's channels.
//!
//! Run: `cargo bench --bench sync`.

use preempt::sync::{Mutex, SpinLock, mpsc};
use preempt::{Runtime, thread};
use std::hint::black_box;
use std::time::{Duration, Instant};

const ROUNDS: usize = 15;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Median ns per iteration of `f(iters)`, which returns its own elapsed time.
fn measure(iters: u64, mut f: impl FnMut(u64) -> Duration) -> f64 {
    f(iters / 10); // warm up
    median(
        (0..ROUNDS)
            .map(|_| f(iters).as_nanos() as f64 / iters as f64)
            .collect(),
    )
}

/// Median ns of one `bump` (a lock + unlock) on a fresh lock, in a green thread.
fn lock_loop<L: 'static, F>(rt: &Runtime, make: fn() -> L, bump: F) -> f64
where
    F: Fn(&L) + Copy + Send + 'static,
{
    measure(2_000_000, |n| {
        rt.block_on(move || {
            let m = make();
            let t0 = Instant::now();
            for _ in 0..n {
                bump(black_box(&m));
            }
            t0.elapsed()
        })
    })
}

fn uncontended(rt: &Runtime, label: &str) {
    let ours = lock_loop(rt, || Mutex::new(0u64), |m| *m.lock().unwrap() += 1);
    let spin = lock_loop(rt, || SpinLock::new(0u64), |m| *m.lock() += 1);
    let std = lock_loop(
        rt,
        || std::sync::Mutex::new(0u64),
        |m| *m.lock().unwrap() += 1,
    );
    let pl = lock_loop(rt, || parking_lot::Mutex::new(0u64), |m| *m.lock() += 1);
    println!("uncontended lock + unlock, in a green thread, {label} (ns)");
    println!(
        "    preempt::sync::Mutex     {ours:6.1}   {:.2}x std",
        ours / std
    );
    println!(
        "    preempt::sync::SpinLock  {spin:6.1}   {:.2}x std",
        spin / std
    );
    println!("    std::sync::Mutex         {std:6.1}");
    println!(
        "    parking_lot::Mutex       {pl:6.1}   {:.2}x std",
        pl / std
    );
}

fn contended(rt: &Runtime) {
    const N: u64 = 200_000;
    let handoff = measure(N, |n| {
        rt.block_on(move || {
            let m = std::sync::Arc::new(Mutex::new(0u64));
            let m2 = m.clone();
            let g = m.lock().unwrap();
            let peer = thread::spawn(move || {
                for _ in 0..n {
                    let mut g = m2.lock().unwrap();
                    *g += 1;
                    thread::yield_now();
                }
            });
            thread::yield_now(); // the peer queues on the mutex
            let t0 = Instant::now();
            drop(g);
            for _ in 0..n {
                let mut g = m.lock().unwrap();
                *g += 1;
                thread::yield_now();
            }
            peer.join().unwrap();
            t0.elapsed() / 2
        })
    });
    let yields = measure(N, |n| {
        rt.block_on(move || {
            let peer = thread::spawn(move || {
                for _ in 0..n {
                    thread::yield_now();
                }
            });
            let t0 = Instant::now();
            for _ in 0..n {
                thread::yield_now();
            }
            peer.join().unwrap();
            t0.elapsed() / 2
        })
    });
    println!("\ncontended handoff between two green threads (ns per lock)");
    println!(
        "    preempt::sync::Mutex     {handoff:6.1}   ({:.2}x a yield_now switch, {yields:.1} ns)",
        handoff / yields
    );
}

fn channels(rt: &Runtime) {
    const N: u64 = 100_000;
    let green = measure(N, |n| {
        rt.block_on(move || {
            let (tx, rx) = mpsc::channel::<u64>();
            let (tx2, rx2) = mpsc::channel::<u64>();
            let peer = thread::spawn(move || {
                for v in rx.iter() {
                    tx2.send(v + 1).unwrap();
                }
            });
            let t0 = Instant::now();
            for i in 0..n {
                tx.send(i).unwrap();
                black_box(rx2.recv().unwrap());
            }
            let d = t0.elapsed();
            drop(tx);
            peer.join().unwrap();
            d
        })
    });
    let os = measure(N / 10, |n| {
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let (tx2, rx2) = std::sync::mpsc::channel::<u64>();
        let peer = std::thread::spawn(move || {
            for v in rx.iter() {
                tx2.send(v + 1).unwrap();
            }
        });
        let t0 = Instant::now();
        for i in 0..n {
            tx.send(i).unwrap();
            black_box(rx2.recv().unwrap());
        }
        let d = t0.elapsed();
        drop(tx);
        peer.join().unwrap();
        d
    });
    println!("\nchannel ping-pong round trip (ns)");
    println!(
        "    preempt::sync::mpsc, green threads {green:8.1}   std mpsc, OS threads {os:8.1}   \
         green is {:.0}x faster",
        os / green
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = Runtime::builder().build().expect("runtime");
    uncontended(&rt, "Model::None");
    contended(&rt);
    channels(&rt);
    drop(rt);
    // SAFETY: the bench's green threads touch no thread-local.
    let rt = unsafe { Runtime::builder().preemptive(preempt::Model::Full) }
        .build()
        .expect("runtime");
    println!();
    uncontended(&rt, "Model::Full");
}
