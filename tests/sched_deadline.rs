//! The deadline class: admission control, EDF order, throttling of an overrunning
//! thread, and `yield_now` as the end of a job.

mod support;

use preempt::Priority;
use preempt::thread::{self, Policy};
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn deadline(runtime: u64, deadline: u64, period: u64) -> Policy {
    Policy::Deadline {
        runtime: ms(runtime),
        deadline: ms(deadline),
        period: ms(period),
    }
}

use support::spin;

#[test]
fn admission_refuses_an_over_utilised_set_and_frees_bandwidth_at_exit() {
    let _l = support::runtime_lock();
    let rt = support::full(ms(1));
    rt.block_on(|| {
        let (tx, rx) = preempt::sync::mpsc::channel::<()>();
        let a = thread::Builder::new()
            .policy(deadline(6, 10, 10))
            .spawn(move || rx.recv().unwrap())
            .expect("0.6 of the CPU is admitted");
        assert_eq!(a.thread().policy(), deadline(6, 10, 10));
        assert_eq!(a.thread().priority(), Priority::MAX);
        let e = thread::Builder::new()
            .policy(deadline(5, 10, 10))
            .spawn(|| ())
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ResourceBusy, "{e}");
        assert!(e.to_string().contains("admission"), "{e}");
        thread::Builder::new()
            .policy(deadline(4, 10, 10))
            .spawn(|| ())
            .expect("0.6 + 0.4 fits")
            .join()
            .unwrap();
        tx.send(()).unwrap();
        a.join().unwrap();
        // Both exited: all of the CPU is free again.
        thread::Builder::new()
            .policy(deadline(10, 10, 10))
            .spawn(|| ())
            .expect("1.0 fits once the others are gone")
            .join()
            .unwrap();
        for bad in [deadline(0, 5, 5), deadline(6, 5, 5), deadline(2, 6, 5)] {
            let e = thread::Builder::new().policy(bad).spawn(|| ()).unwrap_err();
            assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad:?}: {e}");
        }
    });
}

#[test]
fn the_earliest_deadline_runs_first_whatever_the_wakeup_order() {
    let _l = support::runtime_lock();
    let rt = support::full(ms(1));
    let order = rt.block_on(|| {
        let seq = Arc::new(AtomicUsize::new(0));
        let go = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let hs: Vec<_> = [9u64, 3, 6]
            .into_iter()
            .map(|d| {
                let (seq, go) = (seq.clone(), go.clone());
                thread::Builder::new()
                    .policy(deadline(1, d, 20))
                    .spawn(move || {
                        while !go.load(SeqCst) {
                            thread::park();
                        }
                        (d, seq.fetch_add(1, SeqCst))
                    })
                    .unwrap()
            })
            .collect();
        // All three parked (each outranked the spawner and ran at once). Wake them in
        // spawn order with preemption off, so all are queued before any runs.
        {
            let _p = preempt::disable();
            go.store(true, SeqCst);
            for h in &hs {
                h.thread().unpark();
            }
        }
        hs.into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    let mut by_run: Vec<_> = order.iter().map(|&(d, n)| (n, d)).collect();
    by_run.sort();
    let deadlines: Vec<u64> = by_run.into_iter().map(|(_, d)| d).collect();
    assert_eq!(deadlines, [3, 6, 9], "run order by relative deadline");
}

#[test]
fn an_overrunning_thread_is_throttled_to_its_bandwidth() {
    let _l = support::runtime_lock();
    let rt = support::full(ms(1));
    let throttled0 = rt.stats().deadline_throttled;
    let (share, hog_share) = rt.block_on(|| {
        let hog = thread::spawn(|| {
            let t0 = Instant::now();
            let mut n = 0u64;
            while t0.elapsed() < ms(150) {
                n += 1;
                std::hint::spin_loop();
            }
            (n, thread::current().stats().runtime)
        });
        // 1 ms every 10 ms, but it wants the CPU for 100 ms of wall time straight.
        let h = thread::Builder::new()
            .policy(deadline(1, 10, 10))
            .spawn(|| {
                let t0 = Instant::now();
                spin(ms(100));
                let wall = t0.elapsed();
                thread::yield_now(); // account the last run
                (thread::current().stats().runtime, wall)
            })
            .unwrap();
        let (run, wall) = h.join().unwrap();
        let (_, hog_run) = hog.join().unwrap();
        (
            run.as_secs_f64() / wall.as_secs_f64(),
            hog_run.as_secs_f64(),
        )
    });
    let throttled = rt.stats().deadline_throttled - throttled0;
    // Throttled, it runs 1 ms of each 10 ms period of its 100 ms spin (a share of 0.1);
    // unthrottled, it would have run all 100 ms (a share of 1).
    assert!(throttled >= 5, "throttled only {throttled} times");
    assert!(
        share < 0.2,
        "the deadline thread got {share:.2} of the CPU (reserved 0.1)"
    );
    assert!(hog_share > 0.0);
}

#[test]
fn yield_ends_the_job_until_the_next_period() {
    let _l = support::runtime_lock();
    let rt = support::full(ms(1));
    let gaps = rt.block_on(|| {
        thread::Builder::new()
            .policy(deadline(2, 10, 10))
            .spawn(|| {
                let mut starts = Vec::new();
                for _ in 0..6 {
                    starts.push(Instant::now());
                    spin(Duration::from_micros(200));
                    thread::yield_now();
                }
                starts.iter().map(|s| *s - starts[0]).collect::<Vec<_>>()
            })
            .unwrap()
            .join()
            .unwrap()
    });
    // Job k is released k periods after the first: it may start late (a wakeup from an
    // idle virtual CPU sometimes takes 1–2 ms), never early — not right after the
    // previous job's yield. Measured from the first job's start, itself a little late.
    for (k, since) in gaps.iter().enumerate().skip(1) {
        let release = ms(10) * k as u32;
        assert!(
            *since >= release - ms(1) && *since < release + ms(20),
            "job {k} started {since:?} after the first (released at {release:?}): {gaps:?}"
        );
    }
}
