//! HAZARDS.md H8: a thread resumed after a switch must be preemptible again — a switch
//! that left `SIGALRM` blocked would make it run forever. (The redirect design switches
//! in ordinary context, after sigreturn has restored the thread's mask; this checks it.)

mod support;

use preempt::thread;
use std::time::{Duration, Instant};

#[test]
fn resumed_spinners_are_preempted_again_within_two_ticks() {
    let _l = support::runtime_lock();
    let tick = Duration::from_millis(1);
    // Round-robin at priority 0: every tick is a switch (the fair class would let each
    // spinner finish a slice of several ticks).
    let rt = support::full_rr(tick);
    let runs: Vec<Duration> = rt.block_on(move || {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                thread::spawn(move || {
                    // A gap in this thread's clock readings means it was switched out;
                    // the time between gaps is one uninterrupted run.
                    let end = Instant::now() + Duration::from_millis(600);
                    let mut runs = Vec::new();
                    let (mut start, mut last) = (Instant::now(), Instant::now());
                    loop {
                        let now = Instant::now();
                        if now - last > Duration::from_micros(200) {
                            runs.push(last - start);
                            start = now;
                        }
                        last = now;
                        if now > end {
                            break;
                        }
                    }
                    // The first run began before the others were running.
                    runs.split_off(1.min(runs.len()))
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        runs.len() >= 300,
        "only {} preemptions observed",
        runs.len()
    );
    let within_two = runs.iter().filter(|&&r| r <= 2 * tick).count();
    let longest = runs.iter().max().unwrap();
    assert!(
        within_two * 100 >= runs.len() * 95,
        "only {within_two} of {} runs ended within two ticks",
        runs.len()
    );
    assert!(
        *longest < 50 * tick,
        "a resumed thread ran unpreempted for {longest:?}"
    );
}
