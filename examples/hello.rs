//! Hello, green threads: spawn a few threads at different priorities on one carrier and
//! watch the scheduler dispatch them highest priority first, then join their results.
//!
//! ```text
//! $ cargo run --release --example hello
//! main: spawning 4 workers on one CPU (Model::None)
//! worker 'rt-90' (priority 90) ran 1st
//! ...
//! ```

use preempt::Priority;
use preempt::thread::{self, Builder};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

fn main() -> std::io::Result<()> {
    let rt = preempt::Runtime::builder().build()?;
    let total = rt.block_on(|| {
        println!("main: spawning 4 workers on one CPU (Model::None)");
        let order = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = [(0, "normal"), (10, "rt-10"), (90, "rt-90"), (50, "rt-50")]
            .into_iter()
            .map(|(p, name)| {
                let order = order.clone();
                Builder::new()
                    .name(name.into())
                    .priority(Priority::new(p))
                    .spawn(move || {
                        let me = thread::current();
                        let n = order.fetch_add(1, Ordering::Relaxed) + 1;
                        println!(
                            "worker '{}' (priority {}) ran {n}{}",
                            me.name().unwrap(),
                            me.priority(),
                            ["st", "nd", "rd", "th"][(n - 1).min(3)]
                        );
                        // Sleeping lets the others run; the timer heap wakes us.
                        thread::sleep(Duration::from_millis(u64::from(p % 7)));
                        u32::from(p)
                    })
                    .expect("spawn")
            })
            .collect();
        // Joining parks `main`, so the workers run, highest priority first.
        handles.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
    });
    println!("main: sum of priorities = {total}");

    // A yield ping-pong, timed.
    let switches = rt.block_on(|| {
        const N: u32 = 1_000_000;
        let peer = thread::spawn(|| {
            for _ in 0..N {
                thread::yield_now();
            }
        });
        let t0 = Instant::now();
        for _ in 0..N {
            thread::yield_now();
        }
        peer.join().unwrap();
        t0.elapsed() / (2 * N)
    });
    println!("yield ping-pong: {switches:?} per switch");
    let s = rt.stats();
    println!(
        "stats: {} threads spawned, {} switches, {} idle waits",
        s.spawned, s.switches_voluntary, s.idle_waits
    );
    Ok(())
}
