//! Memory per parked green thread: spawn N threads that park, measure the process's
//! resident set growth, then wake and join them all.
//!
//! Run: `cargo bench --bench parked_memory` (N = 30,000 by default; `PARKED_THREADS=n`
//! to change). Each guarded stack takes two memory mappings: N must stay below half of
//! `vm.max_map_count` (65,530 by default).

use preempt::thread;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn main() {
    let n: usize = std::env::var("PARKED_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    let rt = preempt::Runtime::builder().build().expect("runtime");
    let (per_thread, virt) = rt.block_on(move || {
        // Everything the threads cost is charged to them: stack pages touched, the task
        // and result allocations, the handles vector.
        let parked = Arc::new(AtomicUsize::new(0));
        let before = rss();
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let parked = parked.clone();
                thread::spawn(move || {
                    parked.fetch_add(1, Ordering::Relaxed);
                    thread::park();
                })
            })
            .collect();
        // Let every thread run up to its park.
        while parked.load(Ordering::Relaxed) < n {
            thread::yield_now();
        }
        let after = rss();
        let per_thread = (after - before) as f64 / n as f64;
        for h in &handles {
            h.thread().unpark();
        }
        for h in handles {
            h.join().unwrap();
        }
        (per_thread, preempt::DEFAULT_STACK_SIZE)
    });
    println!(
        "{n} parked green threads: {:.2} KiB resident per thread ({} KiB stack reserved each, \
         Go measured here: 2.3 KiB per goroutine, tokio: 0.3 KiB per task)",
        per_thread / 1024.0,
        virt >> 10
    );
}
