//! HAZARDS.md H2: std's stdout lock is re-entrant per OS thread around a `RefCell`, so a
//! green thread preempted inside `println!` would make the next printer on its CPU panic
//! ("already borrowed"). `preempt::println!` writes whole lines with preemption off.

mod support;

use preempt::{Model, Runtime, thread};
use std::time::{Duration, Instant};

const THREADS: usize = 8;

#[test]
fn eight_threads_print_whole_lines_under_a_fast_tick() {
    const T: &str = "eight_threads_print_whole_lines_under_a_fast_tick";
    if support::is_child(T) {
        // SAFETY: the threads print only through preempt::println!.
        let rt = unsafe { Runtime::builder().preemptive(Model::Full) }
            .tick(Duration::from_micros(100))
            .build()
            .unwrap();
        rt.block_on(|| {
            let hs: Vec<_> = (0..THREADS)
                .map(|t| {
                    thread::spawn(move || {
                        let t0 = Instant::now();
                        let mut i = 0;
                        while t0.elapsed() < Duration::from_millis(300) {
                            preempt::println!("LINE {t} {i} {}", "x".repeat(40 + t));
                            i += 1;
                        }
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        });
        let s = rt.stats();
        preempt::println!(
            "SWITCHES {} PREEMPTIONS {} DEFERRED {}",
            s.switches_involuntary,
            s.preemptions,
            s.deferred_atomic
        );
        return;
    }
    let out = support::run_child(T);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", support::stderr(&out));
    let mut next = [0usize; THREADS];
    let mut lines = 0;
    for line in stdout.lines() {
        let Some(rest) = line.split_once("LINE ").map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split(' ').collect();
        assert_eq!(f.len(), 3, "torn line: {line:?}");
        let (t, i): (usize, usize) = (f[0].parse().unwrap(), f[1].parse().unwrap());
        assert_eq!(i, next[t], "thread {t} lost or reordered a line");
        assert_eq!(f[2], "x".repeat(40 + t), "torn line: {line:?}");
        next[t] += 1;
        lines += 1;
    }
    assert!(next.iter().all(|&n| n > 0), "{next:?}");
    // The tick was at work: threads were switched out involuntarily (mostly at the end
    // of a print, where a tick that landed inside it had been deferred).
    let stats = stdout.lines().find(|l| l.contains("SWITCHES")).unwrap();
    let switches: u64 = stats.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(switches > 100, "{stats} ({lines} lines)");
}
